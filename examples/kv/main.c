/* shardz-kv: a sharded in-memory key-value worker on libshardz. It serves GET/PUT /kv/<key>
 * only for keys whose partition the coordinator assigned to it (409 with a JSON error and the
 * owner it knows of otherwise), logs every serve/delete with timestamps and generations as JSON
 * lines (--log, read by the integration tests to prove owners never overlap in strict mode),
 * and on SIGTERM leaves gracefully, then exits 0. A partition added from another node is copied
 * from it (GET /kv-partition/<pid> there: state transfer, docs/PROTOCOL.md 4.3) before the
 * coordinator routes to it. Threads: the main thread runs the HTTP server (and hands
 * /shardz/v1/ requests to the library unless --shardz-listen gives the library its own
 * listener); the library's hook thread calls kv_serve / kv_delete; a leave thread; a copy
 * thread per partition being transferred. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <netdb.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <jansson.h>

#include "shardz/error.h"
#include "shardz/hash.h"
#include "shardz/router.h"
#include "shardz/worker.h"
#include "store.h"

#define KV_MAX_CAPS SHARDZ_WORKER_MAX_DIMS

/* A partition this worker serves. */
typedef struct {
    char *partition;
    int64_t generation;
    unsigned slot;
    char role[64];
} kv_part;

/* The program's state, passed to every callback. */
typedef struct {
    const char *node, *ns;
    shardz_worker *w;
    shardz_router *r;
    kv_store *store;
    struct event_base *base;
    bool handle_mode; /* /shardz/v1/ arrives on our server */
    bool verbose;
    int leave_timeout_ms;
    pthread_mutex_t mu; /* guards parts */
    kv_part *parts;
    size_t nparts, cap;
    pthread_mutex_t log_mu;
    FILE *log;
    atomic_bool leaving;
    pthread_t leave_thr;
    bool leave_started;
    int leave_rc;
} kv_app;

/* ---- logs ------------------------------------------------------------------------------- */

static const char *kv_cause(shardz_cause c)
{
    switch (c) {
    case SHARDZ_CAUSE_LEASE:
        return "lease";
    case SHARDZ_CAUSE_RELEASE:
        return "release";
    default:
        return "assign";
    }
}

/* One JSON line: {"t_us" (CLOCK_MONOTONIC, comparable across processes on one host),
 * "wall_ms", "event", "node", "namespace", ...fields}. Consumes fields. */
static void kv_log_event(kv_app *a, const char *event, json_t *fields)
{
    struct timespec mono;
    struct timespec wall;
    char *line;

    if (a->log == NULL) {
        json_decref(fields);
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &wall);
    json_object_set_new(fields, "t_us",
                        json_integer((json_int_t)mono.tv_sec * 1000000 + mono.tv_nsec / 1000));
    json_object_set_new(fields, "wall_ms",
                        json_integer((json_int_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000));
    json_object_set_new(fields, "event", json_string(event));
    json_object_set_new(fields, "node", json_string(a->node));
    json_object_set_new(fields, "namespace", json_string(a->ns));
    line = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(fields);
    if (line == NULL) {
        return;
    }
    pthread_mutex_lock(&a->log_mu);
    fprintf(a->log, "%s\n", line);
    fflush(a->log);
    pthread_mutex_unlock(&a->log_mu);
    free(line);
}

static void kv_log_replica(kv_app *a, const char *event, const shardz_worker_replica *r,
                           const char *cause)
{
    kv_log_event(a, event,
                 json_pack("{s:s, s:i, s:s, s:s, s:I, s:I, s:s, s:b, s:I}", "partition",
                           r->partition, "slot", (int)r->slot, "role", r->role, "state", r->state,
                           "generation", (json_int_t)r->generation, "revision",
                           (json_int_t)r->revision, "cause", cause, "update", r->update,
                           "old_generation", (json_int_t)r->old_generation));
}

static void kv_lib_log(void *user, int level, const char *msg)
{
    kv_app *a = user;

    if (level <= SHARDZ_LOG_WARN || a->verbose) {
        fprintf(stderr, "shardz-kv %s: %s\n", a->node, msg);
    }
}

/* ---- the served set (hook thread writes, HTTP thread reads) ----------------------------- */

/* Under mu: the index of partition, or nparts. */
static size_t kv_find(const kv_app *a, const char *partition)
{
    size_t i;

    for (i = 0; i < a->nparts && strcmp(a->parts[i].partition, partition) != 0; i++) {
    }
    return i;
}

/* ---- state transfer ---------------------------------------------------------------------- */

#define KV_DUMP_MAX (256u << 20) /* the largest partition dump a copy reads */

/* One partition copied from the node it comes from, on a thread of its own. */
typedef struct {
    kv_app *a;
    char *partition, *from_node, *from_address;
    int64_t generation;
} kv_copy;

static void kv_copy_free(kv_copy *c)
{
    free(c->partition);
    free(c->from_node);
    free(c->from_address);
    free(c);
}

static void kv_hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int kv_unhex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes hex (n digits, even) into out (n / 2 bytes); false when it is not hex. */
static bool kv_unhex(const char *hex, size_t n, unsigned char *out)
{
    if (n % 2 != 0) {
        return false;
    }
    for (size_t i = 0; i < n / 2; i++) {
        int hi = kv_unhex_digit(hex[2 * i]);
        int lo = kv_unhex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

/* One GET http://address/path with a blocking socket (HTTP/1.0: the body ends at close); the
 * status and body (malloc'd, *len bytes) out. A copy runs on its own thread and may block. */
static int kv_http_get(const char *address, const char *path, int *status, char **body, size_t *len)
{
    char host[256];
    const char *colon = strrchr(address, ':');
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int fd = -1;
    int rc = -1;

    if (colon == NULL || (size_t)(colon - address) >= sizeof host) {
        return -1;
    }
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0) {
        return -1;
    }
    fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        goto out;
    }
    char req[512];
    int m = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, address);
    if (m < 0 || (size_t)m >= sizeof req || write(fd, req, (size_t)m) != m) {
        goto out;
    }
    for (;;) {
        if (n == cap) {
            char *nb = cap < KV_DUMP_MAX ? realloc(buf, cap ? cap * 2 : 65536) : NULL;
            if (nb == NULL) {
                goto out;
            }
            buf = nb;
            cap = cap ? cap * 2 : 65536;
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0) {
            goto out;
        }
        if (got == 0) {
            break;
        }
        n += (size_t)got;
    }
    char *sep = NULL; /* the end of the headers */
    for (size_t i = 0; i + 4 <= n && sep == NULL; i++) {
        sep = memcmp(buf + i, "\r\n\r\n", 4) == 0 ? buf + i : NULL;
    }
    if (sep == NULL || sscanf(buf, "HTTP/%*s %d", status) != 1) {
        goto out;
    }
    *len = n - (size_t)(sep + 4 - buf);
    *body = malloc(*len + 1);
    if (*body == NULL) {
        goto out;
    }
    memcpy(*body, sep + 4, *len);
    (*body)[*len] = '\0';
    rc = 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    freeaddrinfo(ai);
    free(buf);
    return rc;
}

/* Reads a dump ({"keys": [{"k": hex, "v": hex}]}) into the store under partition: the number
 * of keys, or -1 when it is malformed or does not fit. */
static long kv_load_dump(kv_app *a, const char *partition, const char *text, size_t len)
{
    json_t *j = json_loadb(text, len, 0, NULL);
    json_t *keys = json_object_get(j, "keys");
    unsigned char *k = malloc(KV_KEY_MAX);
    unsigned char *v = malloc(KV_VALUE_MAX);
    long count = -1;
    size_t i;
    json_t *e;

    if (!json_is_array(keys) || k == NULL || v == NULL) {
        goto out;
    }
    json_array_foreach(keys, i, e)
    {
        const char *kh = json_string_value(json_object_get(e, "k"));
        const char *vh = json_string_value(json_object_get(e, "v"));
        size_t kl = kh ? strlen(kh) : 0, vl = vh ? strlen(vh) : 0;
        if (kh == NULL || vh == NULL || kl == 0 || kl > 2 * KV_KEY_MAX || vl > 2 * KV_VALUE_MAX ||
            !kv_unhex(kh, kl, k) || !kv_unhex(vh, vl, v) ||
            kv_store_put(a->store, (const char *)k, kl / 2, partition, v, vl / 2) != 0) {
            goto out;
        }
    }
    count = (long)json_array_size(keys);
out:
    free(k);
    free(v);
    json_decref(j);
    return count;
}

/* The copy thread: fetches the partition's keys from the node it comes from (three tries),
 * stores them, and reports the replica ready. When every try failed it stays not ready: the
 * coordinator routes to it once the namespace's transfer_timeout_ms ran out (without the
 * keys, logged here). */
static void *kv_copy_main(void *arg)
{
    kv_copy *c = arg;
    char path[64 + 3 * 255];
    long keys = -1;

    snprintf(path, sizeof path, "/kv-partition/%s", c->partition);
    for (int attempt = 0; attempt < 3 && keys < 0; attempt++) {
        int status = 0;
        char *body = NULL;
        size_t len = 0;
        if (attempt > 0) {
            usleep(200 * 1000);
        }
        if (kv_http_get(c->from_address, path, &status, &body, &len) == 0 && status == 200) {
            keys = kv_load_dump(c->a, c->partition, body, len);
        }
        free(body);
    }
    int rc = keys >= 0 ? shardz_worker_ready(c->a->w, c->partition, c->generation) : -1;
    kv_log_event(c->a, keys >= 0 ? "transfer" : "transfer-failed",
                 json_pack("{s:s, s:s, s:s, s:I, s:I, s:i}", "partition", c->partition, "from",
                           c->from_node, "from_address", c->from_address, "generation",
                           (json_int_t)c->generation, "keys", (json_int_t)keys, "ready_rc", rc));
    kv_copy_free(c);
    return NULL;
}

/* From kv_serve: a new replica that comes from another node is not ready until its keys are
 * copied from there. False when the copy could not start (then it is ready at once, empty). */
static bool kv_copy_start(kv_app *a, const shardz_worker_replica *r)
{
    kv_copy *c = calloc(1, sizeof *c);
    pthread_t thr;
    pthread_attr_t attr;

    if (c == NULL) {
        return false;
    }
    c->a = a;
    c->generation = r->generation;
    c->partition = strdup(r->partition);
    c->from_node = strdup(r->from_node);
    c->from_address = strdup(r->from_address);
    if (c->partition == NULL || c->from_node == NULL || c->from_address == NULL ||
        shardz_worker_not_ready(a->w, r->partition) != 0) {
        kv_copy_free(c);
        return false;
    }
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&thr, &attr, kv_copy_main, c);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        (void)shardz_worker_ready(a->w, r->partition, r->generation);
        kv_copy_free(c);
        return false;
    }
    return true;
}

/* Appends one key of a dump (kv_store_foreach's callback). */
static void kv_dump_one(void *ctx, const char *key, size_t klen, const void *value, size_t vlen)
{
    json_t *keys = ctx;
    char *kh = malloc(2 * klen + 1);
    char *vh = malloc(2 * vlen + 1);
    if (kh != NULL && vh != NULL) {
        kv_hex((const unsigned char *)key, klen, kh);
        kv_hex(value, vlen, vh);
        json_array_append_new(keys, json_pack("{s:s, s:s}", "k", kh, "v", vh));
    }
    free(kh);
    free(vh);
}

static int kv_serve(const shardz_worker_replica *r, char *err, size_t errlen, void *user)
{
    kv_app *a = user;
    size_t i;
    int rc = 0;

    /* Logged before the partition becomes visible: a conservative start of ownership. */
    kv_log_replica(a, "serve", r, kv_cause(r->cause));
    pthread_mutex_lock(&a->mu);
    i = kv_find(a, r->partition);
    if (i == a->nparts) {
        if (a->nparts == a->cap) {
            size_t cap = a->cap != 0 ? a->cap * 2 : 16;
            kv_part *p = realloc(a->parts, cap * sizeof *p);
            if (p == NULL) {
                rc = -1;
                goto out;
            }
            a->parts = p;
            a->cap = cap;
        }
        a->parts[i].partition = strdup(r->partition);
        if (a->parts[i].partition == NULL) {
            rc = -1;
            goto out;
        }
        a->nparts++;
    }
    a->parts[i].generation = r->generation;
    a->parts[i].slot = r->slot;
    snprintf(a->parts[i].role, sizeof a->parts[i].role, "%s", r->role);
out:
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    /* state transfer: a new replica that comes from another node copies its keys first */
    if (!r->update && r->from_address != NULL && strcmp(r->state, "adding") == 0 &&
        !kv_copy_start(a, r)) {
        kv_log_event(a, "transfer-failed",
                     json_pack("{s:s, s:s}", "partition", r->partition, "error", "not started"));
    }
    return 0;
}

static int kv_delete(const shardz_worker_replica *r, char *err, size_t errlen, void *user)
{
    kv_app *a = user;
    size_t i;

    (void)err;
    (void)errlen;
    pthread_mutex_lock(&a->mu);
    i = kv_find(a, r->partition);
    if (i < a->nparts) {
        free(a->parts[i].partition);
        a->parts[i] = a->parts[--a->nparts];
    }
    pthread_mutex_unlock(&a->mu);
    kv_store_drop_partition(a->store, r->partition);
    /* Logged once no request can see the partition: a conservative end of ownership. */
    kv_log_replica(a, "delete", r, kv_cause(r->cause));
    return 0;
}

/* ---- HTTP ------------------------------------------------------------------------------- */

static void kv_reply(struct evhttp_request *req, int status, const char *type, const void *body,
                     size_t len)
{
    struct evbuffer *b = evbuffer_new();

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
    if (b != NULL) {
        evbuffer_add(b, body, len);
    }
    evhttp_send_reply(req, status, status < 300 ? "OK" : "Error", b);
    if (b != NULL) {
        evbuffer_free(b);
    }
}

/* Replies with a JSON object (consumed). */
static void kv_json(struct evhttp_request *req, int status, json_t *j)
{
    char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

    if (s == NULL) {
        kv_reply(req, 503, "application/json", "{\"code\":\"ENOMEM\"}", 17);
    } else {
        kv_reply(req, status, "application/json", s, strlen(s));
    }
    free(s);
    json_decref(j);
}

static void kv_error(struct evhttp_request *req, int err, const char *msg)
{
    kv_json(req, shardz_err_http_status(err),
            json_pack("{s:s, s:s}", "code", shardz_err_name(err), "message", msg));
}

/* The partition of a key: the slot table in a hash namespace; elsewhere the
 * (hash mod count)-th partition in id order. *rt is the partition's route (thread cache). */
static int kv_partition(kv_app *a, const char *key, size_t klen, const shardz_route **rt)
{
    shardz_snapshot *s;
    char pid[256];
    size_t n;
    int rc = shardz_router_lookup_key(a->r, key, klen, NULL, rt);

    if (rc != SHARDZ_ENOTSUP) {
        return rc;
    }
    s = shardz_router_snapshot(a->r);
    n = s != NULL ? shardz_snapshot_partition_count(s) : 0;
    if (n == 0) {
        shardz_snapshot_release(s);
        return SHARDZ_ENOENT;
    }
    snprintf(pid, sizeof pid, "%s",
             shardz_snapshot_partition_at(s, shardz_key_hash(key, klen) % n)->partition);
    shardz_snapshot_release(s);
    return shardz_router_lookup_partition(a->r, pid, rt);
}

static void kv_not_here(kv_app *a, struct evhttp_request *req, const shardz_route *rt)
{
    json_t *j =
        json_pack("{s:s, s:s, s:s}", "code", "ESTALE", "message",
                  "this node does not serve the key's partition", "partition", rt->partition);

    (void)a;
    if (rt->target >= 0) {
        json_object_set_new(j, "owner", json_string(rt->replicas[rt->target].node));
        json_object_set_new(j, "address", json_string(rt->replicas[rt->target].address));
    }
    kv_json(req, 409, j);
}

static void kv_handle_kv(kv_app *a, struct evhttp_request *req, const char *path)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    size_t klen = 0;
    char *key = evhttp_uridecode(path, 0, &klen);
    const shardz_route *rt = NULL;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    int64_t gen = 0;
    size_t i;
    int rc;

    if (key == NULL || klen == 0 || klen > KV_KEY_MAX || strlen(key) != klen) {
        kv_error(req, SHARDZ_EINVAL, "a key is 1-1024 bytes (URL-encoded, no NUL)");
        goto out;
    }
    rc = kv_partition(a, key, klen, &rt);
    if (rc != 0) {
        kv_error(req, SHARDZ_ESTALE, "no routing state for this key yet");
        goto out;
    }
    pthread_mutex_lock(&a->mu);
    i = kv_find(a, rt->partition);
    if (i < a->nparts) {
        gen = a->parts[i].generation;
    }
    pthread_mutex_unlock(&a->mu);
    if (i == a->nparts) {
        kv_not_here(a, req, rt);
        goto out;
    }
    if (!shardz_worker_lease_ok(a->w)) {
        /* strict mode: the lease ran out (a pause, a lost coordinator); the drop is coming */
        kv_error(req, SHARDZ_ESTALE, "the lease lapsed: not serving until the coordinator is back");
        goto out;
    }
    if (cmd == EVHTTP_REQ_GET) {
        size_t vlen = 0;
        void *v = kv_store_get(a->store, key, klen, &vlen);
        char g[32];
        if (v == NULL) {
            kv_error(req, SHARDZ_ENOENT, "no such key");
            goto out;
        }
        snprintf(g, sizeof g, "%" PRId64, gen);
        evhttp_add_header(evhttp_request_get_output_headers(req), "X-Shardz-Partition",
                          rt->partition);
        evhttp_add_header(evhttp_request_get_output_headers(req), "X-Shardz-Generation", g);
        kv_reply(req, 200, "application/octet-stream", v, vlen);
        free(v);
    } else if (cmd == EVHTTP_REQ_PUT || cmd == EVHTTP_REQ_POST) {
        size_t vlen = evbuffer_get_length(in);
        const unsigned char *v;
        if (vlen > KV_VALUE_MAX) {
            kv_error(req, SHARDZ_ETOOBIG, "values are at most 1 MiB");
            goto out;
        }
        v = vlen > 0 ? evbuffer_pullup(in, -1) : (const unsigned char *)"";
        rc = v != NULL ? kv_store_put(a->store, key, klen, rt->partition, v, vlen) : -1;
        if (rc != 0) {
            kv_error(req, rc == -2 ? SHARDZ_ENOSPC : SHARDZ_ENOMEM, "cannot store the value");
            goto out;
        }
        kv_json(req, 200,
                json_pack("{s:s%, s:s, s:I}", "key", key, klen, "partition", rt->partition,
                          "generation", (json_int_t)gen));
    } else {
        kv_error(req, SHARDZ_EPROTO, "GET or PUT");
    }
out:
    free(key);
}

/* GET /kv-partition/<pid>: every key of a partition served here, hex-encoded, for the node
 * that takes it over (state transfer). */
static void kv_handle_dump(kv_app *a, struct evhttp_request *req, const char *pid)
{
    size_t i;
    json_t *keys;

    pthread_mutex_lock(&a->mu);
    i = kv_find(a, pid);
    pthread_mutex_unlock(&a->mu);
    if (i == a->nparts || evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        kv_error(req, SHARDZ_ENOENT, "partition not served here (GET /kv-partition/<pid>)");
        return;
    }
    keys = json_array();
    kv_store_foreach(a->store, pid, kv_dump_one, keys);
    kv_json(req, 200, json_pack("{s:s, s:o}", "partition", pid, "keys", keys));
}

static void kv_handle_status(kv_app *a, struct evhttp_request *req)
{
    shardz_worker_status st;
    json_t *parts = json_array();

    shardz_worker_status_get(a->w, &st);
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->nparts; i++) {
        json_array_append_new(
            parts, json_pack("{s:s, s:I, s:s}", "partition", a->parts[i].partition, "generation",
                             (json_int_t)a->parts[i].generation, "role", a->parts[i].role));
    }
    pthread_mutex_unlock(&a->mu);
    kv_json(req, 200,
            json_pack("{s:s, s:s, s:b, s:b, s:b, s:I, s:I, s:o, s:I, s:s}", "node", a->node,
                      "address", shardz_worker_address(a->w), "registered", st.registered,
                      "leaving", st.leaving, "released", st.released, "applied_revision",
                      (json_int_t)st.applied_revision, "keys", (json_int_t)kv_store_count(a->store),
                      "serving", parts, "lease_expiries", (json_int_t)st.lease_expiries,
                      "last_error", st.last_error));
}

static void kv_handle_shardz(kv_app *a, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    const char *method = evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "OTHER";
    const unsigned char *body = NULL;
    char *reply = NULL;
    size_t rlen = 0;
    int status = 500;

    if (len > 0 && len <= SHARDZ_WORKER_MAX_BODY) {
        body = evbuffer_pullup(in, -1);
    }
    if (shardz_worker_handle(a->w, method, evhttp_request_get_uri(req), auth, body, len, &reply,
                             &rlen, &status) != 0) {
        kv_error(req, SHARDZ_ENOMEM, "out of memory");
        return;
    }
    kv_reply(req, status, "application/json", reply, rlen);
    free(reply);
}

static void kv_http(struct evhttp_request *req, void *arg)
{
    kv_app *a = arg;
    const char *uri = evhttp_request_get_uri(req);
    char path[KV_KEY_MAX * 3 + 16];
    size_t plen = strcspn(uri, "?");

    if (plen >= sizeof path) {
        kv_error(req, SHARDZ_EINVAL, "path too long");
        return;
    }
    memcpy(path, uri, plen);
    path[plen] = '\0';
    if (strncmp(path, "/shardz/v1/", 11) == 0 && a->handle_mode) {
        kv_handle_shardz(a, req);
    } else if (strncmp(path, "/kv/", 4) == 0) {
        kv_handle_kv(a, req, path + 4);
    } else if (strncmp(path, "/kv-partition/", 14) == 0) {
        kv_handle_dump(a, req, path + 14);
    } else if (strcmp(path, "/healthz") == 0) {
        kv_reply(req, 200, "application/json", "{\"ok\":true}", 11);
    } else if (strcmp(path, "/status") == 0) {
        kv_handle_status(a, req);
    } else {
        kv_error(req, SHARDZ_ENOENT, "routes: /kv/<key>, /kv-partition/<pid>, /status, /healthz");
    }
}

/* ---- leaving ---------------------------------------------------------------------------- */

static void *kv_leave_main(void *arg)
{
    kv_app *a = arg;

    kv_log_event(a, "leave", json_object());
    a->leave_rc = shardz_worker_leave(a->w, a->leave_timeout_ms);
    if (a->leave_rc != 0) {
        fprintf(stderr, "shardz-kv %s: leave: %s; exiting anyway\n", a->node,
                shardz_strerror(a->leave_rc));
    }
    kv_log_event(a, "released", json_pack("{s:b}", "timed_out", a->leave_rc == SHARDZ_ETIMEDOUT));
    event_base_loopbreak(a->base);
    return NULL;
}

static void kv_signal(evutil_socket_t sig, short what, void *arg)
{
    kv_app *a = arg;

    (void)what;
    if (atomic_exchange(&a->leaving, true)) {
        fprintf(stderr, "shardz-kv %s: signal %d again: exiting without waiting\n", a->node,
                (int)sig);
        event_base_loopbreak(a->base);
        return;
    }
    fprintf(stderr, "shardz-kv %s: signal %d: leaving\n", a->node, (int)sig);
    if (pthread_create(&a->leave_thr, NULL, kv_leave_main, a) == 0) {
        a->leave_started = true;
    } else {
        event_base_loopbreak(a->base);
    }
}

/* ---- main ------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shardz-kv --id ID --listen HOST:PORT [options]\n"
            "  --coordinator HOST:PORT[,HOST:PORT...]  shardzd (default 127.0.0.1:7557; several\n"
            "                       coordinators: any of them)\n"
            "  --namespace NS           namespace (default kv)\n"
            "  --id ID                  node id (required)\n"
            "  --listen HOST:PORT       HTTP server for /kv/<key>, /status, /healthz and, unless\n"
            "                           --shardz-listen is given, the worker protocol /shardz/v1/\n"
            "  --shardz-listen H:P      give the library its own listener for /shardz/v1/\n"
            "  --advertise HOST:PORT    address registered with the coordinator\n"
            "  --zone ZONE              fault domain\n"
            "  --capacity NAME=VALUE    capacity in a load dimension (repeatable, up to 8)\n"
            "  --secret SECRET          shared secret (default: $SHARDZ_SECRET)\n"
            "  --log FILE               serve/delete log, one JSON object per line\n"
            "  --lease auto|on|off      strict-mode lease enforcement (default auto)\n"
            "  --leave-timeout-ms MS    how long SIGTERM waits to be released (default 30000)\n"
            "  --verbose                log the library's informational messages\n");
}

/* Binds evhttp on hp; fills the bound port. */
static int kv_bind(struct evhttp *http, const char *hp, char *host, size_t hostlen, unsigned *port)
{
    const char *colon = strrchr(hp, ':');
    struct evhttp_bound_socket *bs;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;

    if (colon == NULL || (size_t)(colon - hp) >= hostlen) {
        return -1;
    }
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = '\0';
    bs = evhttp_bind_socket_with_handle(http, host, (ev_uint16_t)atoi(colon + 1));
    if (bs == NULL ||
        getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) != 0) {
        return -1;
    }
    *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"coordinator", required_argument, NULL, 'c'},
        {"namespace", required_argument, NULL, 'n'},
        {"id", required_argument, NULL, 'i'},
        {"listen", required_argument, NULL, 'l'},
        {"shardz-listen", required_argument, NULL, 'L'},
        {"advertise", required_argument, NULL, 'a'},
        {"zone", required_argument, NULL, 'z'},
        {"capacity", required_argument, NULL, 'C'},
        {"secret", required_argument, NULL, 's'},
        {"log", required_argument, NULL, 'o'},
        {"lease", required_argument, NULL, 'e'},
        {"leave-timeout-ms", required_argument, NULL, 't'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    kv_app a;
    shardz_worker_config wc;
    shardz_router_config rc_cfg;
    shardz_worker_capacity caps[KV_MAX_CAPS];
    char cap_names[KV_MAX_CAPS][64];
    const char *listen = NULL;
    const char *logpath = NULL;
    char host[256];
    char advertise[300];
    unsigned port = 0;
    struct evhttp *http = NULL;
    struct event *sigterm = NULL;
    struct event *sigint = NULL;
    int c;
    int rc;
    int exit_code = 1;

    memset(&a, 0, sizeof a);
    memset(&wc, 0, sizeof wc);
    memset(&rc_cfg, 0, sizeof rc_cfg);
    a.ns = "kv";
    a.leave_timeout_ms = 30000;
    wc.coordinator = "127.0.0.1:7557";
    wc.secret = getenv("SHARDZ_SECRET");
    while ((c = getopt_long(argc, argv, "c:n:i:l:L:a:z:C:s:o:e:t:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            wc.coordinator = optarg;
            break;
        case 'n':
            a.ns = optarg;
            break;
        case 'i':
            a.node = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'L':
            wc.listen = optarg;
            break;
        case 'a':
            wc.advertise = optarg;
            break;
        case 'z':
            wc.zone = optarg;
            break;
        case 'C': {
            const char *eq = strchr(optarg, '=');
            if (eq == NULL || wc.ncapacity == KV_MAX_CAPS ||
                (size_t)(eq - optarg) >= sizeof cap_names[0]) {
                fprintf(stderr, "shardz-kv: --capacity NAME=VALUE, at most %d\n", KV_MAX_CAPS);
                return 2;
            }
            memcpy(cap_names[wc.ncapacity], optarg, (size_t)(eq - optarg));
            cap_names[wc.ncapacity][eq - optarg] = '\0';
            caps[wc.ncapacity].name = cap_names[wc.ncapacity];
            caps[wc.ncapacity].value = strtod(eq + 1, NULL);
            wc.ncapacity++;
            break;
        }
        case 's':
            wc.secret = optarg;
            break;
        case 'o':
            logpath = optarg;
            break;
        case 'e':
            wc.lease_mode = strcmp(optarg, "on") == 0    ? SHARDZ_LEASE_ON
                            : strcmp(optarg, "off") == 0 ? SHARDZ_LEASE_OFF
                                                         : SHARDZ_LEASE_AUTO;
            break;
        case 't':
            a.leave_timeout_ms = atoi(optarg);
            break;
        case 'v':
            a.verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (a.node == NULL || listen == NULL) {
        usage(stderr);
        return 2;
    }
    if (wc.secret != NULL && wc.secret[0] == '\0') {
        wc.secret = NULL;
    }
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    pthread_mutex_init(&a.mu, NULL);
    pthread_mutex_init(&a.log_mu, NULL);
    atomic_init(&a.leaving, false);
    a.store = kv_store_new();
    a.base = event_base_new();
    http = a.base != NULL ? evhttp_new(a.base) : NULL;
    if (a.store == NULL || http == NULL) {
        fprintf(stderr, "shardz-kv: out of memory\n");
        goto out;
    }
    if (logpath != NULL) {
        a.log = fopen(logpath, "a");
        if (a.log == NULL) {
            fprintf(stderr, "shardz-kv: %s: %s\n", logpath, strerror(errno));
            goto out;
        }
    }
    evhttp_set_max_body_size(http, 2u * KV_VALUE_MAX);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_PUT | EVHTTP_REQ_POST |
                                         EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(http, kv_http, &a);
    if (kv_bind(http, listen, host, sizeof host, &port) != 0) {
        fprintf(stderr, "shardz-kv: cannot listen on %s\n", listen);
        goto out;
    }
    a.handle_mode = wc.listen == NULL;
    if (a.handle_mode && wc.advertise == NULL) {
        snprintf(advertise, sizeof advertise, "%s:%u", host, port);
        wc.advertise = advertise;
    }

    wc.ns = a.ns;
    wc.node_id = a.node;
    wc.capacity = wc.ncapacity > 0 ? caps : NULL;
    wc.serve = kv_serve;
    wc.del = kv_delete;
    wc.user = &a;
    wc.log = kv_lib_log;
    wc.log_user = &a;
    rc = shardz_worker_create(&wc, &a.w);
    if (rc != 0) {
        fprintf(stderr, "shardz-kv: bad worker configuration: %s\n", shardz_strerror(rc));
        goto out;
    }
    rc_cfg.coordinator = wc.coordinator;
    rc_cfg.ns = a.ns;
    rc_cfg.secret = wc.secret;
    rc_cfg.start_timeout_ms = 100; /* do not wait: requests answer 409 until routing exists */
    rc_cfg.log = kv_lib_log;
    rc_cfg.log_user = &a;
    rc = shardz_router_create(&rc_cfg, &a.r);
    if (rc != 0) {
        fprintf(stderr, "shardz-kv: router: %s\n", shardz_strerror(rc));
        goto out;
    }
    rc = shardz_worker_start(a.w);
    if (rc != 0) {
        fprintf(stderr, "shardz-kv: cannot start the worker: %s\n", shardz_strerror(rc));
        goto out;
    }
    rc = shardz_router_start(a.r);
    if (rc != 0 && rc != SHARDZ_ETIMEDOUT) {
        fprintf(stderr, "shardz-kv: cannot start the router: %s\n", shardz_strerror(rc));
        goto out;
    }
    sigterm = evsignal_new(a.base, SIGTERM, kv_signal, &a);
    sigint = evsignal_new(a.base, SIGINT, kv_signal, &a);
    if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm, NULL) != 0 ||
        evsignal_add(sigint, NULL) != 0) {
        goto out;
    }
    snprintf(advertise, sizeof advertise, "%s:%u", host, port);
    kv_log_event(&a, "start",
                 json_pack("{s:s, s:s}", "address", shardz_worker_address(a.w), "http", advertise));
    printf("shardz-kv %s: http %s:%u, worker address %s, namespace %s, coordinator %s\n", a.node,
           host, port, shardz_worker_address(a.w), a.ns, wc.coordinator);
    fflush(stdout);

    event_base_loop(a.base, EVLOOP_NO_EXIT_ON_EMPTY);
    exit_code = 0;
out:
    shardz_worker_stop(a.w); /* a leave still waiting (second signal) returns now */
    if (a.leave_started) {
        pthread_join(a.leave_thr, NULL);
    }
    /* Whatever is still served ends with the process: close its interval in the log. */
    pthread_mutex_lock(&a.mu);
    for (size_t i = 0; i < a.nparts; i++) {
        kv_log_event(&a, "delete",
                     json_pack("{s:s, s:i, s:s, s:I, s:s}", "partition", a.parts[i].partition,
                               "slot", (int)a.parts[i].slot, "role", a.parts[i].role, "generation",
                               (json_int_t)a.parts[i].generation, "cause", "exit"));
        free(a.parts[i].partition);
    }
    a.nparts = 0;
    pthread_mutex_unlock(&a.mu);
    if (exit_code == 0) {
        kv_log_event(&a, "exit", json_object());
    }
    shardz_worker_destroy(a.w);
    shardz_router_destroy(a.r);
    shardz_router_thread_release();
    if (sigterm != NULL) {
        event_free(sigterm);
    }
    if (sigint != NULL) {
        event_free(sigint);
    }
    if (http != NULL) {
        evhttp_free(http);
    }
    if (a.base != NULL) {
        event_base_free(a.base);
    }
    kv_store_free(a.store);
    free(a.parts);
    if (a.log != NULL) {
        fclose(a.log);
    }
    pthread_mutex_destroy(&a.mu);
    pthread_mutex_destroy(&a.log_mu);
    return exit_code;
}
