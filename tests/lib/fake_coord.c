/* The fake coordinator of the libshardz tests (fake_coord.h): evhttp on its own thread, one
 * mutex over what it records and answers. Watches are held until the state's revision moves
 * past theirs or their timeout passes, like shardzd's long-poll. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include "fake_coord.h"

/* A watch held open. */
typedef struct fk_watch {
    struct fk_watch *next;
    struct evhttp_request *req;
    struct event *timer;
    int64_t revision;
    struct fake_coord *f;
} fk_watch;

struct fake_coord {
    fake_opts opts;
    char ns[64];
    char consistency[16];
    char sharder[16];
    char secret[128];
    char addr[64];
    struct event_base *base;
    struct evhttp *http;
    struct event *wake;
    pthread_t thr;
    pthread_mutex_t mu;
    fake_record rec;
    int64_t revision;
    char *state;
    fk_watch *watches; /* event thread only */
};

void fake_lock(fake_coord *f)
{
    pthread_mutex_lock(&f->mu);
}

void fake_unlock(fake_coord *f)
{
    pthread_mutex_unlock(&f->mu);
}

fake_record *fake_rec(fake_coord *f)
{
    return &f->rec;
}

fake_opts *fake_options(fake_coord *f)
{
    return &f->opts;
}

const char *fake_addr(const fake_coord *f)
{
    return f->addr;
}

static void fk_reply(struct evhttp_request *req, int status, const char *body)
{
    struct evbuffer *b = evbuffer_new();

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add(b, body, strlen(body));
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Error", b);
    evbuffer_free(b);
}

/* Under mu: the state body for a watch or /state reply (malloc'd). */
static char *fk_state(fake_coord *f)
{
    return strdup(f->state != NULL ? f->state : "{\"revision\": 0, \"partitions\": []}");
}

static void fk_watch_done(fk_watch *wt, bool unchanged)
{
    fake_coord *f = wt->f;
    fk_watch **p = &f->watches;
    char *body;

    while (*p != wt) {
        p = &(*p)->next;
    }
    *p = wt->next;
    pthread_mutex_lock(&f->mu);
    f->rec.watches_released++;
    f->rec.watches_unchanged += unchanged ? 1 : 0;
    pthread_mutex_unlock(&f->mu);
    if (unchanged) {
        char buf[96];
        snprintf(buf, sizeof buf, "{\"revision\": %lld, \"unchanged\": true}",
                 (long long)wt->revision);
        fk_reply(wt->req, 200, buf);
    } else {
        pthread_mutex_lock(&f->mu);
        body = fk_state(f);
        pthread_mutex_unlock(&f->mu);
        fk_reply(wt->req, 200, body);
        free(body);
    }
    event_free(wt->timer);
    free(wt);
}

static void fk_watch_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    fk_watch_done(arg, true);
}

/* Answers every watch older than the current revision. */
static void fk_wake(evutil_socket_t fd, short what, void *arg)
{
    fake_coord *f = arg;
    int64_t rev;
    fk_watch *wt;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&f->mu);
    rev = f->revision;
    pthread_mutex_unlock(&f->mu);
    wt = f->watches;
    while (wt != NULL) {
        fk_watch *next = wt->next;
        if (wt->revision < rev) {
            fk_watch_done(wt, false);
        }
        wt = next;
    }
}

static void fk_cb(struct evhttp_request *req, void *arg)
{
    fake_coord *f = arg;
    const char *uri = evhttp_request_get_uri(req);
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char body[2048] = "";
    char prefix[128];
    char buf[1024];
    size_t pl;

    if (len >= sizeof body) {
        len = sizeof body - 1;
    }
    evbuffer_copyout(in, body, len);
    body[len] = '\0';
    pthread_mutex_lock(&f->mu);
    if (f->secret[0] != '\0') {
        char want[160];
        snprintf(want, sizeof want, "Bearer %s", f->secret);
        if (auth == NULL || strcmp(auth, want) != 0) {
            f->rec.unauthorized++;
            pthread_mutex_unlock(&f->mu);
            fk_reply(req, 401, "{\"code\":\"EPROTO\",\"message\":\"bad or missing secret\"}");
            return;
        }
    }
    snprintf(prefix, sizeof prefix, "/v1/namespaces/%s", f->ns);
    pl = strlen(prefix);
    if (strncmp(uri, prefix, pl) != 0) {
        pthread_mutex_unlock(&f->mu);
        fk_reply(req, 404, "{\"code\":\"ENOENT\",\"message\":\"unknown namespace\"}");
        return;
    }
    uri += pl;
    if (strcmp(uri, "") == 0) {
        f->rec.ns_reads++;
        snprintf(buf, sizeof buf,
                 "{\"name\":\"%s\",\"sharder\":\"%s\",\"consistency\":\"%s\",\"lease_ms\":%lld,"
                 "\"ping_interval_ms\":%lld%s%.0u,\"revision\":%lld}",
                 f->ns, f->sharder, f->consistency, (long long)f->opts.lease_ms,
                 (long long)f->opts.ping_interval_ms, f->opts.slots != 0 ? ",\"slots\":" : "",
                 f->opts.slots, (long long)f->revision);
        pthread_mutex_unlock(&f->mu);
        fk_reply(req, 200, buf);
        return;
    }
    if (strcmp(uri, "/nodes") == 0 && evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        f->rec.register_attempts++;
        if (f->opts.register_fail > 0) {
            f->opts.register_fail--;
            pthread_mutex_unlock(&f->mu);
            fk_reply(req, 503, "{\"code\":\"ENOTLEADER\",\"message\":\"try later\"}");
            return;
        }
        f->rec.registrations++;
        snprintf(f->rec.last_register, sizeof f->rec.last_register, "%s", body);
        snprintf(buf, sizeof buf,
                 "{\"node\":{\"id\":\"x\"},\"ping_interval_ms\":%lld,\"lease_ms\":%lld,"
                 "\"revision\":%lld%s%s}",
                 (long long)f->opts.ping_interval_ms, (long long)f->opts.lease_ms,
                 (long long)f->revision, f->opts.features != NULL ? ",\"features\":" : "",
                 f->opts.features != NULL ? f->opts.features : "");
        pthread_mutex_unlock(&f->mu);
        fk_reply(req, 200, buf);
        return;
    }
    if (strncmp(uri, "/nodes/", 7) == 0 && strstr(uri, "/leave") != NULL) {
        int st = f->opts.leave_status != 0 ? f->opts.leave_status : 200;
        f->rec.leaves++;
        snprintf(f->rec.last_leave_path, sizeof f->rec.last_leave_path, "%s%s", prefix, uri);
        pthread_mutex_unlock(&f->mu);
        fk_reply(req, st,
                 st == 200 ? "{\"revision\":1}"
                           : "{\"code\":\"ENOENT\",\"message\":\"unknown node\"}");
        return;
    }
    if (strcmp(uri, "/state") == 0) {
        char *s = fk_state(f);
        pthread_mutex_unlock(&f->mu);
        fk_reply(req, 200, s);
        free(s);
        return;
    }
    if (strncmp(uri, "/watch?", 7) == 0) {
        struct evkeyvalq q;
        const char *rv;
        const char *tv;
        long long rev = 0;
        long tmo = 30000;
        f->rec.watches++;
        evhttp_parse_query_str(uri + 7, &q);
        rv = evhttp_find_header(&q, "revision");
        tv = evhttp_find_header(&q, "timeout_ms");
        if (rv != NULL) {
            rev = atoll(rv);
        }
        if (tv != NULL) {
            tmo = atol(tv);
        }
        evhttp_clear_headers(&q);
        if (f->revision > rev) {
            char *s = fk_state(f);
            pthread_mutex_unlock(&f->mu);
            fk_reply(req, 200, s);
            free(s);
        } else {
            fk_watch *wt = calloc(1, sizeof *wt);
            struct timeval t = {.tv_sec = tmo / 1000, .tv_usec = (tmo % 1000) * 1000};
            f->rec.watches_held++;
            pthread_mutex_unlock(&f->mu);
            wt->req = req;
            wt->revision = rev;
            wt->f = f;
            wt->timer = evtimer_new(f->base, fk_watch_timeout, wt);
            evtimer_add(wt->timer, &t);
            wt->next = f->watches;
            f->watches = wt;
        }
        return;
    }
    pthread_mutex_unlock(&f->mu);
    fk_reply(req, 404, "{\"code\":\"ENOENT\",\"message\":\"no such route\"}");
}

static void *fk_main(void *arg)
{
    fake_coord *f = arg;

    event_base_loop(f->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void fk_copy(char *dst, size_t n, const char *src, const char *dflt)
{
    snprintf(dst, n, "%s", src != NULL ? src : dflt);
}

fake_coord *fake_start(const fake_opts *opts)
{
    fake_coord *f = calloc(1, sizeof *f);
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sin;
    socklen_t sl = sizeof sin;

    evthread_use_pthreads();
    f->opts = *opts;
    fk_copy(f->ns, sizeof f->ns, opts->ns, "kv");
    fk_copy(f->consistency, sizeof f->consistency, opts->consistency, "available");
    fk_copy(f->sharder, sizeof f->sharder, opts->sharder, "replica");
    fk_copy(f->secret, sizeof f->secret, opts->secret, "");
    if (f->opts.lease_ms == 0) {
        f->opts.lease_ms = 1000;
    }
    if (f->opts.ping_interval_ms == 0) {
        f->opts.ping_interval_ms = 200;
    }
    pthread_mutex_init(&f->mu, NULL);
    f->base = event_base_new();
    f->http = evhttp_new(f->base);
    evhttp_set_gencb(f->http, fk_cb, f);
    f->wake = event_new(f->base, -1, 0, fk_wake, f);
    bs = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
    if (bs == NULL) {
        abort();
    }
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &sl);
    snprintf(f->addr, sizeof f->addr, "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    pthread_create(&f->thr, NULL, fk_main, f);
    return f;
}

static void fk_break(evutil_socket_t fd, short what, void *arg)
{
    fake_coord *f = arg;

    (void)fd;
    (void)what;
    while (f->watches != NULL) {
        fk_watch_done(f->watches, true);
    }
    event_base_loopbreak(f->base);
}

void fake_stop(fake_coord *f)
{
    struct timeval zero = {0, 0};

    event_base_once(f->base, -1, EV_TIMEOUT, fk_break, f, &zero);
    pthread_join(f->thr, NULL);
    evhttp_free(f->http);
    event_free(f->wake);
    event_base_free(f->base);
    pthread_mutex_destroy(&f->mu);
    free(f->state);
    free(f);
}

void fake_set_state(fake_coord *f, int64_t revision, const char *state_json)
{
    pthread_mutex_lock(&f->mu);
    free(f->state);
    f->state = strdup(state_json);
    f->revision = revision;
    pthread_mutex_unlock(&f->mu);
    event_active(f->wake, 0, 0);
}

/* ---- test client ------------------------------------------------------------------------ */

typedef struct {
    char *buf;
    size_t len;
} tc_sink;

static size_t tc_write(char *data, size_t size, size_t nmemb, void *arg)
{
    tc_sink *s = arg;
    size_t n = size * nmemb;
    char *nb = realloc(s->buf, s->len + n + 1);

    if (nb == NULL) {
        return 0;
    }
    s->buf = nb;
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

long tc_request(const char *addr, const char *method, const char *path, const char *auth,
                const char *body, size_t len, char **reply)
{
    CURL *e = curl_easy_init();
    struct curl_slist *hd = NULL;
    tc_sink sink = {NULL, 0};
    char url[512];
    char ah[512];
    long status = 0;

    snprintf(url, sizeof url, "http://%s%s", addr, path);
    hd = curl_slist_append(hd, "Content-Type: application/json");
    hd = curl_slist_append(hd, "Expect:");
    if (auth != NULL) {
        snprintf(ah, sizeof ah, "Authorization: %s", auth);
        hd = curl_slist_append(hd, ah);
    }
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, tc_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &sink);
    if (body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    if (curl_easy_perform(e) == CURLE_OK) {
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    }
    curl_slist_free_all(hd);
    curl_easy_cleanup(e);
    if (reply != NULL) {
        *reply = sink.buf != NULL ? sink.buf : strdup("");
    } else {
        free(sink.buf);
    }
    return status;
}

uint64_t tc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void tc_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}
