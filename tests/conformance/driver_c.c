/* shardz-conformance-c: the C library's conformance driver (tests/conformance/README.md, "The
 * driver contract"): an example worker on libshardz's worker.h that logs its hooks as JSON
 * event lines and takes commands on stdin, a router on router.h that answers lookups on stdin,
 * and the key -> slot vectors of hash.h. Threads: the main thread reads stdin and answers; the
 * library's hook thread writes serve / delete events (under ev_mu). */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "shardz/error.h"
#include "shardz/hash.h"
#include "shardz/router.h"
#include "shardz/worker.h"

#define MAX_COORD_LIST 1024
#define MAX_LINE 8192

/* The worker's event file and what the driver remembers between events. */
typedef struct {
    FILE *events;
    pthread_mutex_t ev_mu; /* guards events and lapse_open */
    bool lapse_open;       /* a lease_lapse event was written and no serve since */
} drv_worker;

/* CLOCK_MONOTONIC in ms: the clock the runner compares t_ms with (not the library's clock). */
static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int usage(void)
{
    fprintf(stderr, "usage: shardz-conformance-c worker|router|hash ... "
                    "(tests/conformance/README.md)\n");
    return 2;
}

/* Writes one JSON object (taken: decref'd here) as a line and flushes. */
static void put_line(FILE *f, json_t *obj)
{
    char *s = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (s) {
        fprintf(f, "%s\n", s);
        fflush(f);
        free(s);
    }
    json_decref(obj);
}

/* Writes an event without replica fields; called with ev_mu held. */
static void plain_event(drv_worker *d, const char *ev)
{
    put_line(d->events, json_pack("{s:s, s:f}", "ev", ev, "t_ms", mono_ms()));
}

static const char *cause_name(shardz_cause c)
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

/* A serve or delete event from a hook's replica (borrowed). */
static void replica_event(drv_worker *d, const char *ev, const shardz_worker_replica *r)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:I}", "ev", ev, "ns", r->ns, "partition",
                          r->partition, "slot", (json_int_t)r->slot, "role", r->role, "generation",
                          (json_int_t)r->generation);
    if (!o) {
        return;
    }
    if (r->range_lo) {
        json_object_set_new(o, "lo", json_string(r->range_lo));
        json_object_set_new(o, "hi", r->range_hi ? json_string(r->range_hi) : json_null());
    }
    if (strcmp(ev, "delete") == 0) {
        json_object_set_new(o, "cause", json_string(cause_name(r->cause)));
    }
    json_object_set_new(o, "t_ms", json_real(mono_ms()));
    put_line(d->events, o);
}

static int on_serve(const shardz_worker_replica *r, char *err, size_t errlen, void *user)
{
    drv_worker *d = user;
    (void)err;
    (void)errlen;
    pthread_mutex_lock(&d->ev_mu);
    d->lapse_open = false;
    replica_event(d, "serve", r);
    pthread_mutex_unlock(&d->ev_mu);
    return 0;
}

static int on_delete(const shardz_worker_replica *r, char *err, size_t errlen, void *user)
{
    drv_worker *d = user;
    (void)err;
    (void)errlen;
    pthread_mutex_lock(&d->ev_mu);
    if (r->cause == SHARDZ_CAUSE_LEASE && !d->lapse_open) {
        plain_event(d, "lease_lapse");
        d->lapse_open = true;
    }
    replica_event(d, "delete", r);
    pthread_mutex_unlock(&d->ev_mu);
    return 0;
}

static void answer(const char *fmt, const char *arg)
{
    printf(fmt, arg);
    fflush(stdout);
}

/* Reads commands from stdin until EOF or a successful leave. Returns the exit status. */
static int worker_commands(shardz_worker *w, drv_worker *d)
{
    char line[MAX_LINE];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        char ns[256], part[256], dim[64], key[1100];
        double value;
        if (sscanf(line, "load %255s %255s %63s %lf", ns, part, dim, &value) == 4) {
            int rc = shardz_worker_report_load(w, part, dim, value);
            answer(rc == 0 ? "ok%s\n" : "error %s\n", rc == 0 ? "" : shardz_strerror(rc));
        } else if (sscanf(line, "split %255s %255s %1099s", ns, part, key) == 3) {
            int rc = shardz_worker_report_split_key(w, part, key);
            answer(rc == 0 ? "ok%s\n" : "error %s\n", rc == 0 ? "" : shardz_strerror(rc));
        } else if (sscanf(line, "lease_ok %255s %255s", ns, part) == 2) {
            answer("%s\n", shardz_worker_lease_ok(w) ? "true" : "false");
        } else if (strcmp(line, "leave") == 0) {
            int rc = shardz_worker_leave(w, 30000);
            if (rc != 0) {
                answer("error %s\n", shardz_strerror(rc));
                return 1;
            }
            pthread_mutex_lock(&d->ev_mu);
            plain_event(d, "left");
            pthread_mutex_unlock(&d->ev_mu);
            answer("%s\n", "left");
            return 0;
        } else {
            answer("error unknown command: %s\n", line);
        }
    }
    return 0;
}

/* Logs the library's warnings and errors to stderr, and writes the registered event once. */
static void worker_log(void *user, int level, const char *msg)
{
    (void)user;
    if (level <= SHARDZ_LOG_INFO) {
        fprintf(stderr, "shardz[%d]: %s\n", level, msg);
    }
}

static int run_worker(int argc, char **argv)
{
    shardz_worker_config c = {0};
    shardz_worker_capacity caps[SHARDZ_WORKER_MAX_DIMS];
    char capnames[SHARDZ_WORKER_MAX_DIMS][64];
    const char *events = NULL;
    drv_worker d = {.lapse_open = false};
    shardz_worker *w = NULL;
    int status = 1;

    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--coordinator") == 0) {
            c.coordinator = v;
        } else if (strcmp(k, "--ns") == 0) {
            c.ns = v;
        } else if (strcmp(k, "--node") == 0) {
            c.node_id = v;
        } else if (strcmp(k, "--listen") == 0) {
            c.listen = v;
        } else if (strcmp(k, "--advertise") == 0) {
            c.advertise = v; /* tests/integration: the address of a fault proxy before it */
        } else if (strcmp(k, "--zone") == 0) {
            c.zone = v;
        } else if (strcmp(k, "--secret") == 0) {
            c.secret = v;
        } else if (strcmp(k, "--events") == 0) {
            events = v;
        } else if (strcmp(k, "--capacity") == 0 && c.ncapacity < SHARDZ_WORKER_MAX_DIMS) {
            const char *eq = strchr(v, '=');
            if (!eq || (size_t)(eq - v) >= sizeof capnames[0]) {
                return usage();
            }
            memcpy(capnames[c.ncapacity], v, (size_t)(eq - v));
            capnames[c.ncapacity][eq - v] = '\0';
            caps[c.ncapacity].name = capnames[c.ncapacity];
            caps[c.ncapacity].value = strtod(eq + 1, NULL);
            c.ncapacity++;
        } else {
            return usage();
        }
    }
    if (!c.coordinator || !c.ns || !c.node_id || !c.listen || !events) {
        return usage();
    }
    c.capacity = c.ncapacity ? caps : NULL;
    c.serve = on_serve;
    c.del = on_delete;
    c.user = &d;
    c.log = worker_log;
    d.events = fopen(events, "a");
    if (!d.events) {
        perror(events);
        return 1;
    }
    pthread_mutex_init(&d.ev_mu, NULL);
    if (shardz_worker_create(&c, &w) != 0 || shardz_worker_start(w) != 0) {
        fprintf(stderr, "worker: create/start failed\n");
        goto out;
    }
    /* The registered event: written when the library says so (no limit: the runner has one). */
    if (shardz_worker_wait_registered(w, -1) == 0) {
        pthread_mutex_lock(&d.ev_mu);
        plain_event(&d, "registered");
        pthread_mutex_unlock(&d.ev_mu);
    }
    status = worker_commands(w, &d);
out:
    shardz_worker_destroy(w);
    fclose(d.events);
    pthread_mutex_destroy(&d.ev_mu);
    return status;
}

/* Answers one lookup (`key K` or `partition P`) from one snapshot. */
static void router_answer(shardz_snapshot *s, bool by_key, const char *arg)
{
    const shardz_route *rt = NULL;
    uint32_t slot = 0;
    int rc = by_key ? shardz_snapshot_lookup_key(s, arg, strlen(arg), &slot, &rt)
                    : shardz_snapshot_lookup_partition(s, arg, &rt);
    json_t *o = json_object();
    json_object_set_new(o, by_key ? "key" : "partition", json_string(arg));
    if (rc != 0) {
        json_object_set_new(o, "error", json_string(shardz_err_name(rc)));
    } else {
        json_t *nodes = json_array();
        for (size_t i = 0; i < rt->nreplicas; i++) {
            const shardz_route_replica *rr = &rt->replicas[i];
            if (strcmp(rr->state, "serving") == 0) {
                json_array_append_new(nodes, json_pack("{s:s, s:s, s:s}", "node", rr->node, "addr",
                                                       rr->address, "role", rr->role));
            }
        }
        if (by_key) {
            json_object_set_new(o, "partition", json_string(rt->partition));
            if (shardz_snapshot_slots(s) > 0) {
                json_object_set_new(o, "slot", json_integer(slot));
            }
        }
        json_object_set_new(o, "nodes", nodes);
    }
    json_object_set_new(o, "revision", json_integer(shardz_snapshot_revision(s)));
    put_line(stdout, o);
}

static int run_router(int argc, char **argv)
{
    shardz_router_config c = {0};
    shardz_router *r = NULL;
    char line[MAX_LINE];
    int status = 1;

    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--coordinator") == 0) {
            c.coordinator = argv[i + 1];
        } else if (strcmp(argv[i], "--ns") == 0) {
            c.ns = argv[i + 1];
        } else if (strcmp(argv[i], "--secret") == 0) {
            c.secret = argv[i + 1];
        } else {
            return usage();
        }
    }
    if (!c.coordinator || !c.ns) {
        return usage();
    }
    c.start_timeout_ms = 20000;
    if (shardz_router_create(&c, &r) != 0 || shardz_router_start(r) != 0) {
        fprintf(stderr, "router: no first snapshot\n");
        goto out;
    }
    answer("%s\n", "ready");
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "key ", 4) == 0 || strncmp(line, "partition ", 10) == 0) {
            bool by_key = line[0] == 'k';
            shardz_snapshot *s = shardz_router_snapshot(r);
            router_answer(s, by_key, line + (by_key ? 4 : 10));
            shardz_snapshot_release(s);
        } else if (strncmp(line, "wait ", 5) == 0) {
            shardz_router_wait(r, strtoll(line + 5, NULL, 10), -1);
            answer("%s\n", "ok");
        } else if (strcmp(line, "revision") == 0) {
            printf("%" PRId64 "\n", shardz_router_revision(r));
            fflush(stdout);
        } else {
            answer("error unknown command: %s\n", line);
        }
    }
    status = 0;
out:
    shardz_router_destroy(r);
    return status;
}

static int run_hash(int argc, char **argv)
{
    uint32_t slots = SHARDZ_HASH_SLOTS_DEFAULT;
    int i = 2;
    if (i + 1 < argc && strcmp(argv[i], "--slots") == 0) {
        slots = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        i += 2;
    }
    for (; i < argc; i++) {
        char hex[17];
        size_t len = strlen(argv[i]);
        snprintf(hex, sizeof hex, "%016" PRIx64, shardz_key_hash(argv[i], len));
        put_line(stdout, json_pack("{s:s, s:s, s:I}", "key", argv[i], "hash", hex, "slot",
                                   (json_int_t)shardz_key_slot(argv[i], len, slots)));
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        return usage();
    }
    if (strcmp(argv[1], "prepare") == 0) {
        return 0;
    }
    if (strcmp(argv[1], "worker") == 0) {
        return run_worker(argc, argv);
    }
    if (strcmp(argv[1], "router") == 0) {
        return run_router(argc, argv);
    }
    if (strcmp(argv[1], "hash") == 0) {
        return run_hash(argc, argv);
    }
    return usage();
}
