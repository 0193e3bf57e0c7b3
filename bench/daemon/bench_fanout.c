/* bench_fanout: many simulated workers in one process against a real shardzd (one HTTP listener
 * each on 127.0.0.1, answering pings and assignments per docs/PROTOCOL.md), then changes that
 * touch every worker, measuring how long until each is told. Two threads ("Threads" below): the
 * ping thread owns every listener and connection and answers pings; the main thread applies
 * the assignments it hands over, calls the coordinator and measures. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#define ID_MAX 24

typedef struct {
    char id[ID_MAX];
    long num; /* the id as a number (ids made here are numbers), -1 otherwise */
    long long gen;
    uint64_t hash; /* of id, for the index */
} held_t;

/* One simulated worker. Its fields are grouped by the thread that may touch them. */
typedef struct {
    /* set before the ping thread starts, read only afterwards */
    char id[16];
    uint16_t port;
    struct evhttp *http; /* on the ping base */
    /* the main thread writes, the ping thread reads (every ping reply carries it) */
    _Atomic long long applied;
    /* the ping thread writes, the main thread reads */
    atomic_ulong pings;
    /* the ping thread only */
    double last_ping_ms;
    /* the main thread only */
    bool delta_agreed; /* the register reply agreed to send deltas */
    held_t *held;      /* the replicas held, in no order */
    size_t nheld, capheld;
    uint32_t *idx;  /* open addressing (linear probing) over held: position + 1, 0 empty */
    size_t nidx;    /* a power of two above 2 * nheld, or 0 */
    double told_ms; /* when the first assignment naming a new partition arrived (0: not yet) */
    unsigned long assigns, assigns_in_phase;
} worker_t;

typedef struct {
    char coord_host[64];
    uint16_t coord_port;
    long pid;
    int workers;
    long partitions, add, chunk;
    int replicas;
    long ping_interval_ms;
    char ns[64];
    double timeout_s;
    double hold_s; /* after the check: the workers stay this long (0: none) */
    bool no_delta; /* workers that predate deltas: offer none */
} params_t;

/* ---- Threads ----------------------------------------------------------------------------
 * A real worker answers pings apart from its assignment work (libshardz on a thread of its own),
 * so the simulator does too, or 1,000 workers in one loop would be late for pings whenever
 * they parse 1,000 assignments at once, and the daemon would rightly declare them dead:
 * - the ping thread runs g_ping_base: every worker's evhttp listener and the connections the
 *   daemon opens to it (pings and assignments come to the same address, on connections of
 *   their own). It answers /shardz/v1/ping at once (measuring the gap since the worker's last
 *   ping where the ping arrives), copies an assignment's body into a job for the main thread,
 *   and sends the reply the main thread put in the job. Every event it runs is short, and it
 *   runs every ready event in each turn of its loop: no priorities, no callback limit (a limit
 *   of one callback per turn sent the loop back to epoll_wait, which reported every ready
 *   socket again, so under load thousands of closed connections stayed unread in CLOSE-WAIT
 *   until the descriptors ran out). It runs at nice PING_NICE when it may, and a probe timer
 *   measures how late it runs (busy, or waiting for a core).
 * - the main thread runs g_base: the jobs (parsing and applying assignments, building replies),
 *   the client connection to the coordinator, and the measuring.
 * Jobs travel in two mailboxes (a locked list and a wake-up pipe). Shared counters are atomics. */

/* An assignment on its way: the ping thread fills the request part, the main thread the reply. */
typedef struct job {
    struct job *next;
    worker_t *w;                /* NULL: a request to the ping thread to stop */
    struct evhttp_request *req; /* owned by the ping thread's evhttp; only that thread uses it */
    char *body;                 /* the request body (owned; the main thread frees it) */
    size_t len;
    double arrived_ms;      /* when the ping thread had read it whole */
    struct evbuffer *reply; /* owned; NULL when it could not be made */
    int status;
} job_t;

/* A one-way queue of jobs to the thread running `ev`'s base. */
typedef struct {
    pthread_mutex_t mu;
    job_t *head, *tail;
    bool signalled; /* a byte is in the pipe: the receiver will look */
    int fds[2];     /* non-blocking pipe: [0] read by the receiver, [1] written by senders */
    struct event *ev;
    void (*take)(job_t *); /* runs on the receiver's thread, owns the job */
} mailbox_t;

static struct event_base *g_base;      /* the main thread's */
static struct event_base *g_ping_base; /* the ping thread's */
static pthread_t g_ping_tid;
static bool g_ping_running;
static mailbox_t g_to_main, g_to_ping;
static struct evhttp_connection *g_conn; /* main thread: to the coordinator */
static params_t g_p;                     /* set before the ping thread starts */
static worker_t *g_w;
/* main thread only */
static bool g_phase;    /* a change is being measured */
static long g_lo, g_hi; /* partitions [lo, hi) are the new ones of the phase */
static int g_told;      /* workers told in the phase */
/* assignments received in the phase: full, delta, deltas refused (409), body bytes */
static unsigned long g_fulls, g_deltas, g_refused;
static unsigned long long g_assign_bytes;
static double g_wait_max; /* the longest an assignment waited for the main thread, in the phase */
static long g_fds_max;    /* the most descriptors seen open in this process, in the phase */
static double g_fds_at;   /* when they were last counted */
static double g_daemon_gap_max; /* the daemon's longest interval between ping rounds, ms */
/* both threads */
static atomic_ulong g_bad;        /* malformed messages received */
static atomic_llong g_max_gap_us; /* the longest interval between two pings to one worker */
/* the ping thread's probe timer: how late it ran at most, and how much of that interval's wall
 * time the thread itself was running (busy) rather than waiting for a core (starved) */
typedef struct {
    double late_ms, ran_ms, interval_ms;
} probe_max_t;
static pthread_mutex_t g_probe_mu = PTHREAD_MUTEX_INITIALIZER;
static probe_max_t g_probe_max; /* under g_probe_mu */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- the daemon's memory and CPU ------------------------------------------------------ */

static long proc_status_kb(long pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    size_t n = strlen(field);
    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* utime + stime of the daemon, in ms (clock-tick resolution, usually 10 ms). */
static double proc_cpu_ms(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) {
        return -1;
    }
    return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void print_memory(const char *when)
{
    if (g_p.pid <= 0) {
        return;
    }
    printf("daemon memory %-34s VmRSS %7.1f MB  VmHWM %7.1f MB\n", when,
           proc_status_kb(g_p.pid, "VmRSS") / 1024.0, proc_status_kb(g_p.pid, "VmHWM") / 1024.0);
    fflush(stdout);
}

/* The CPU time of one thread of this process, in ms. */
static double thread_cpu_ms(clockid_t clk)
{
    struct timespec ts;
    if (clock_gettime(clk, &ts) != 0) {
        return -1;
    }
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The ping thread's CPU time in ms (-1 when it does not run). Main thread. */
static double ping_cpu_ms(void)
{
    clockid_t clk;
    return g_ping_running && pthread_getcpuclockid(g_ping_tid, &clk) == 0 ? thread_cpu_ms(clk) : -1;
}

/* The descriptors this process holds open now (-1 when /proc cannot tell). */
static long fds_open(void)
{
    DIR *d = opendir("/proc/self/fd");
    long n = -1; /* the directory's own descriptor is listed too */
    if (!d) {
        return -1;
    }
    while (readdir(d)) {
        n++;
    }
    closedir(d);
    return n - 2; /* . and .. */
}

/* Counts the descriptors at most every 200 ms and keeps the phase's highest. Main thread. */
static void fds_note(void)
{
    double t = now_ms();
    if (t - g_fds_at < 200) {
        return;
    }
    g_fds_at = t;
    long n = fds_open();
    g_fds_max = n > g_fds_max ? n : g_fds_max;
}

/* ---- mailboxes between the two threads -------------------------------------------------- */

static void mailbox_post(mailbox_t *m, job_t *j)
{
    j->next = NULL;
    pthread_mutex_lock(&m->mu);
    if (m->tail) {
        m->tail->next = j;
    } else {
        m->head = j;
    }
    m->tail = j;
    bool wake = !m->signalled;
    m->signalled = true;
    pthread_mutex_unlock(&m->mu);
    if (wake) {
        /* one byte at most is in the pipe, so it never fills */
        ssize_t rc;
        do {
            rc = write(m->fds[1], "", 1);
        } while (rc < 0 && errno == EINTR);
    }
}

/* Takes every job queued (oldest first), or NULL. */
static job_t *mailbox_take_all(mailbox_t *m)
{
    pthread_mutex_lock(&m->mu);
    job_t *j = m->head;
    m->head = m->tail = NULL;
    m->signalled = false;
    pthread_mutex_unlock(&m->mu);
    return j;
}

static void on_mailbox(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    mailbox_t *m = arg;
    char buf[64];
    /* drained before the list is taken: a job posted after this point either is in the list
     * taken below or writes a new byte */
    while (read(fd, buf, sizeof buf) > 0) {
    }
    job_t *j = mailbox_take_all(m);
    while (j) {
        job_t *next = j->next;
        m->take(j);
        j = next;
    }
}

/* Readies m for jobs to the thread running base; take runs there for each. 0 or -1. */
static int mailbox_init(mailbox_t *m, struct event_base *base, void (*take)(job_t *))
{
    memset(m, 0, sizeof *m);
    m->fds[0] = m->fds[1] = -1;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        return -1;
    }
    m->take = take; /* from here on mailbox_free frees it */
    if (pipe(m->fds) != 0) {
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        if (fcntl(m->fds[i], F_SETFL, O_NONBLOCK) != 0 ||
            fcntl(m->fds[i], F_SETFD, FD_CLOEXEC) != 0) {
            return -1;
        }
    }
    m->ev = event_new(base, m->fds[0], EV_READ | EV_PERSIST, on_mailbox, m);
    if (!m->ev || event_add(m->ev, NULL) != 0) {
        return -1;
    }
    return 0;
}

/* Frees m's event and pipe, and the jobs still queued (not their requests: evhttp_free frees
 * those). Once neither thread uses m; m may be all zero (never readied). */
static void mailbox_free(mailbox_t *m)
{
    if (!m->take) {
        return;
    }
    job_t *j = mailbox_take_all(m);
    while (j) {
        job_t *next = j->next;
        free(j->body);
        if (j->reply) {
            evbuffer_free(j->reply);
        }
        free(j);
        j = next;
    }
    if (m->ev) {
        event_free(m->ev);
    }
    for (int i = 0; i < 2; i++) {
        if (m->fds[i] >= 0) {
            close(m->fds[i]);
        }
    }
    pthread_mutex_destroy(&m->mu);
}

/* ---- the simulated workers ------------------------------------------------------------ */

/* An error body ({"code", "message"}) into out, counted as a malformed message. Either thread. */
static void error_body(struct evbuffer *out, const char *msg)
{
    if (out) {
        evbuffer_add_printf(out, "{\"code\":\"EINVAL\",\"message\":\"%s\"}", msg);
    }
    atomic_fetch_add(&g_bad, 1);
}

/* Sends the reply (buf may be NULL: no body). Ping thread. */
static void reply_text(struct evhttp_request *req, int status, struct evbuffer *buf)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, status, status == 200 ? "OK" : "Error", buf);
}

/* Ping thread. */
static void reply_error(struct evhttp_request *req, int status, const char *msg)
{
    struct evbuffer *b = evbuffer_new();
    error_body(b, msg);
    reply_text(req, status, b);
    if (b) {
        evbuffer_free(b);
    }
}

static uint64_t id_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return h;
}

/* The index slot holding id, or the empty one where it would go (nidx > 0). */
static size_t held_slot(const worker_t *w, const char *id, uint64_t h)
{
    size_t mask = w->nidx - 1, i = h & mask;
    while (w->idx[i] && strcmp(w->held[w->idx[i] - 1].id, id) != 0) {
        i = (i + 1) & mask;
    }
    return i;
}

static int held_reindex(worker_t *w, size_t nidx)
{
    uint32_t *idx = calloc(nidx, sizeof *idx);
    if (!idx) {
        return -1;
    }
    free(w->idx);
    w->idx = idx;
    w->nidx = nidx;
    for (size_t k = 0; k < w->nheld; k++) {
        w->idx[held_slot(w, w->held[k].id, w->held[k].hash)] = (uint32_t)k + 1;
    }
    return 0;
}

/* Holds partition pid at generation gen (added, or its generation updated). */
static held_t *held_put(worker_t *w, const char *pid, long long gen)
{
    uint64_t h = id_hash(pid);
    if ((w->nheld + 1) * 2 > w->nidx && held_reindex(w, w->nidx ? w->nidx * 2 : 64) != 0) {
        return NULL;
    }
    size_t i = held_slot(w, pid, h);
    if (w->idx[i]) {
        w->held[w->idx[i] - 1].gen = gen;
        return &w->held[w->idx[i] - 1];
    }
    if (w->nheld == w->capheld) {
        size_t cap = w->capheld ? w->capheld * 2 : 64;
        held_t *nh = realloc(w->held, cap * sizeof *nh);
        if (!nh) {
            return NULL;
        }
        w->held = nh;
        w->capheld = cap;
    }
    held_t *e = &w->held[w->nheld];
    snprintf(e->id, sizeof e->id, "%s", pid);
    char *end;
    e->num = strtol(pid, &end, 10);
    if (*end || !*pid) {
        e->num = -1;
    }
    e->gen = gen;
    e->hash = h;
    w->idx[i] = (uint32_t)++w->nheld;
    return e;
}

/* Drops partition pid if held: backward-shift deletion in the index, swap-remove in held. */
static void held_del(worker_t *w, const char *pid)
{
    if (!w->nidx) {
        return;
    }
    size_t mask = w->nidx - 1, i = held_slot(w, pid, id_hash(pid)), j = i;
    if (!w->idx[i]) {
        return;
    }
    size_t pos = w->idx[i] - 1;
    w->idx[i] = 0;
    for (;;) {
        j = (j + 1) & mask;
        if (!w->idx[j]) {
            break;
        }
        size_t k = w->held[w->idx[j] - 1].hash & mask; /* its home slot */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            w->idx[i] = w->idx[j];
            w->idx[j] = 0;
            i = j;
        }
    }
    size_t last = --w->nheld;
    if (pos != last) {
        w->held[pos] = w->held[last];
        w->idx[held_slot(w, w->held[pos].id, w->held[pos].hash)] = (uint32_t)pos + 1;
    }
}

/* Takes the replicas of an assignment that arrived at `arrived` (ms): all of them for a full one
 * (what is not listed goes), only those listed for a delta (its removed ones are dropped by the
 * caller). Main thread. */
static int worker_take(worker_t *w, json_t *replicas, bool full, double arrived)
{
    bool is_new = false;
    size_t k;
    json_t *e;
    json_array_foreach(replicas, k, e)
    {
        const char *pid = json_string_value(json_object_get(e, "partition"));
        json_t *g = json_object_get(e, "generation");
        if (!pid || !*pid || strlen(pid) >= ID_MAX || !json_is_integer(g)) {
            return -1;
        }
    }
    if (full) {
        w->nheld = 0;
        if (w->nidx) {
            memset(w->idx, 0, w->nidx * sizeof *w->idx);
        }
    }
    json_array_foreach(replicas, k, e)
    {
        held_t *h = held_put(w, json_string_value(json_object_get(e, "partition")),
                             json_integer_value(json_object_get(e, "generation")));
        if (!h) {
            return -1;
        }
        if (h->num >= g_lo && h->num < g_hi) {
            is_new = true;
        }
    }
    if (g_phase && is_new && w->told_ms == 0) {
        w->told_ms = arrived; /* when it reached the worker, not when this thread got to it */
        g_told++;
    }
    return 0;
}

/* The reply to a whole assignment (or a stale delta): everything the worker serves. Main
 * thread. */
static void reply_whole_set(const worker_t *w, struct evbuffer *out)
{
    evbuffer_add_printf(out, "{\"node\":\"%s\",\"applied_revision\":%lld,\"serving\":[", w->id,
                        (long long)atomic_load(&w->applied));
    for (size_t i = 0; i < w->nheld; i++) {
        evbuffer_add_printf(out, "%s{\"partition\":\"%s\",\"generation\":%lld}", i ? "," : "",
                            w->held[i].id, w->held[i].gen);
    }
    evbuffer_add_printf(out, "],\"failed\":[]}");
}

/* A delta's fields (PROTOCOL.md 4.3): base_revision an integer below revision, removed an
 * array of ids. */
static bool delta_ok(json_t *j, json_t *rev, json_t *base, json_t *removed)
{
    size_t k;
    json_t *e;
    if (!json_is_integer(base) || json_integer_value(base) < 0 ||
        json_integer_value(base) >= json_integer_value(rev) ||
        json_is_true(json_object_get(j, "released"))) {
        return false;
    }
    if (removed && !json_is_array(removed)) {
        return false;
    }
    json_array_foreach(removed, k, e)
    {
        if (!json_is_string(e) || !*json_string_value(e)) {
            return false;
        }
    }
    return true;
}

/* Answers a delta assignment that arrived at `arrived`: stale (everything held), 409 on another
 * base, or applied (only the named partitions held now). -1 (nothing written to out) when it is
 * malformed. Main thread. */
static int worker_delta(worker_t *w, json_t *j, double arrived, struct evbuffer *out, int *status)
{
    long long applied = atomic_load(&w->applied);
    json_t *rev = json_object_get(j, "revision");
    json_t *base = json_object_get(j, "base_revision");
    json_t *reps = json_object_get(j, "replicas");
    json_t *removed = json_object_get(j, "removed");
    size_t k;
    json_t *e;
    if (!delta_ok(j, rev, base, removed)) {
        return -1;
    }
    *status = 200;
    if (json_integer_value(rev) < applied) { /* stale: answered like a full one */
        reply_whole_set(w, out);
        return 0;
    }
    if (json_integer_value(base) != applied) {
        g_refused++;
        *status = 409;
        evbuffer_add_printf(out,
                            "{\"code\":\"ESTALE\",\"message\":\"delta on %lld, applied %lld\","
                            "\"applied_revision\":%lld}",
                            (long long)json_integer_value(base), applied, applied);
        return 0;
    }
    g_deltas++;
    json_array_foreach(removed, k, e)
    {
        held_del(w, json_string_value(e));
    }
    if (worker_take(w, reps, false, arrived) != 0) {
        return -1;
    }
    atomic_store(&w->applied, (long long)json_integer_value(rev));
    /* serving: the listed ones (all held now); the removed ones are gone */
    evbuffer_add_printf(out,
                        "{\"node\":\"%s\",\"applied_revision\":%lld,\"delta\":true,\"serving\":[",
                        w->id, (long long)json_integer_value(rev));
    json_array_foreach(reps, k, e)
    {
        evbuffer_add_printf(out, "%s{\"partition\":\"%s\",\"generation\":%lld}", k ? "," : "",
                            json_string_value(json_object_get(e, "partition")),
                            (long long)json_integer_value(json_object_get(e, "generation")));
    }
    evbuffer_add_printf(out, "],\"failed\":[]}");
    return 0;
}

/* Applies one assignment (its body) to w and writes the reply into out; returns the reply's
 * status. Main thread. */
static int worker_assign(worker_t *w, const char *body, size_t len, double arrived,
                         struct evbuffer *out)
{
    int status = 400;
    json_t *j = len ? json_loadb(body, len, 0, NULL) : NULL;
    const char *node = j ? json_string_value(json_object_get(j, "node")) : NULL;
    if (!node || strcmp(node, w->id) != 0) {
        error_body(out, "malformed message");
        goto done;
    }
    w->assigns++;
    if (g_phase) {
        w->assigns_in_phase++;
    }
    g_assign_bytes += len;
    json_t *rev = json_object_get(j, "revision");
    json_t *reps = json_object_get(j, "replicas");
    if (!json_is_integer(rev) || !json_is_array(reps)) {
        error_body(out, "malformed assignment");
        goto done;
    }
    if (!g_p.no_delta && (json_object_get(j, "base_revision") || json_object_get(j, "removed"))) {
        if (worker_delta(w, j, arrived, out, &status) != 0) {
            status = 400;
            error_body(out, "malformed delta");
        }
        goto done;
    }
    g_fulls++;
    /* an assignment older than the last applied is ignored (docs/PROTOCOL.md 4.3) */
    if (json_integer_value(rev) >= atomic_load(&w->applied)) {
        if (worker_take(w, reps, true, arrived) != 0) {
            error_body(out, "malformed replica");
            goto done;
        }
        atomic_store(&w->applied, (long long)json_integer_value(rev));
    }
    reply_whole_set(w, out);
    status = 200;
done:
    json_decref(j);
    return status;
}

/* A job from the ping thread: applies it and sends the reply back. Main thread. */
static void on_assignment(job_t *j)
{
    double wait = now_ms() - j->arrived_ms;
    if (g_phase && wait > g_wait_max) {
        g_wait_max = wait;
    }
    j->reply = evbuffer_new();
    if (j->reply) {
        j->status = worker_assign(j->w, j->body, j->len, j->arrived_ms, j->reply);
    } else {
        j->status = 500;
        error_body(NULL, "out of memory");
    }
    free(j->body);
    j->body = NULL;
    mailbox_post(&g_to_ping, j);
}

/* A reply made by the main thread (or the request to stop). Ping thread. */
static void on_reply(job_t *j)
{
    if (!j->w) {
        event_base_loopbreak(g_ping_base);
        free(j);
        return;
    }
    reply_text(j->req, j->status, j->reply);
    if (j->reply) {
        evbuffer_free(j->reply);
    }
    free(j);
}

/* Raises *max to ms (kept in microseconds) if it is higher. Either thread. */
static void atomic_max_ms(atomic_llong *max, double ms)
{
    long long us = (long long)(ms * 1000), cur = atomic_load(max);
    while (us > cur && !atomic_compare_exchange_weak(max, &cur, us)) {
    }
}

#define PROBE_MS 50 /* the ping thread's probe timer: how late its loop runs */

/* The probe's previous run (ping thread). */
typedef struct {
    double wall_ms, cpu_ms;
} probe_t;

/* Every PROBE_MS: how late this timer runs is how late a ping arriving now would be read.
 * The thread's CPU time over the interval tells whether it was busy or waiting for a core.
 * Ping thread. */
static void on_probe(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    probe_t *last = arg;
    double t = now_ms(), cpu = thread_cpu_ms(CLOCK_THREAD_CPUTIME_ID);
    if (last->wall_ms > 0) {
        probe_max_t m = {t - last->wall_ms - PROBE_MS, cpu - last->cpu_ms, t - last->wall_ms};
        pthread_mutex_lock(&g_probe_mu);
        if (m.late_ms > g_probe_max.late_ms) {
            g_probe_max = m;
        }
        pthread_mutex_unlock(&g_probe_mu);
    }
    last->wall_ms = t;
    last->cpu_ms = cpu;
}

/* The probe's worst run since the last call, and restarts it. Main thread. */
static probe_max_t probe_take(void)
{
    pthread_mutex_lock(&g_probe_mu);
    probe_max_t m = g_probe_max;
    g_probe_max = (probe_max_t){0};
    pthread_mutex_unlock(&g_probe_mu);
    return m;
}

/* Answers a ping at once, with the revision the main thread applied last. Ping thread. */
static void worker_ping(worker_t *w, struct evhttp_request *req)
{
    double t = now_ms(); /* when the ping arrived (read whole) */
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_t *j =
        len ? json_loadb((const char *)evbuffer_pullup(in, (ssize_t)len), len, 0, NULL) : NULL;
    const char *node = j ? json_string_value(json_object_get(j, "node")) : NULL;
    if (!node || strcmp(node, w->id) != 0) {
        reply_error(req, 400, "malformed message");
        goto done;
    }
    struct evbuffer *out = evbuffer_new();
    if (!out) {
        reply_error(req, 500, "out of memory");
        goto done;
    }
    if (w->last_ping_ms > 0) {
        atomic_max_ms(&g_max_gap_us, t - w->last_ping_ms);
    }
    w->last_ping_ms = t;
    atomic_fetch_add_explicit(&w->pings, 1, memory_order_relaxed);
    evbuffer_add_printf(out, "{\"node\":\"%s\",\"applied_revision\":%lld}", w->id,
                        (long long)atomic_load(&w->applied));
    reply_text(req, 200, out);
    evbuffer_free(out);
done:
    json_decref(j);
}

/* Hands an assignment to the main thread, which sends the reply back (on_reply). Ping thread. */
static void hand_over(worker_t *w, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    job_t *j = calloc(1, sizeof *j);
    char *body = malloc(len ? len : 1);
    if (!j || !body) {
        free(j);
        free(body);
        reply_error(req, 500, "out of memory");
        return;
    }
    evbuffer_remove(in, body, len);
    j->w = w;
    j->req = req;
    j->body = body;
    j->len = len;
    j->arrived_ms = now_ms();
    mailbox_post(&g_to_main, j);
}

/* Every request to a worker's address. Ping thread. */
static void on_worker_request(struct evhttp_request *req, void *arg)
{
    worker_t *w = arg;
    const char *uri = evhttp_request_get_uri(req);
    if (strcmp(uri, "/shardz/v1/ping") == 0) {
        worker_ping(w, req);
    } else if (strcmp(uri, "/shardz/v1/assign") == 0) {
        hand_over(w, req);
    } else {
        reply_error(req, 404, "no such route");
    }
}

#define PING_NICE -10 /* the ping thread's nice value, when this process may raise it */

static atomic_int g_ping_nice = INT_MIN; /* the ping thread's nice value once it runs */

static void *ping_main(void *arg)
{
    (void)arg;
    /* 1,000 workers on machines of their own never wait for a core to answer a ping; here
     * they share 2 cores with the daemon, so their one ping thread goes first (it needs about
     * a quarter of a core). Linux: a thread's nice value is its own. */
    id_t tid = (id_t)syscall(SYS_gettid);
    if (setpriority(PRIO_PROCESS, tid, PING_NICE) == 0) {
        atomic_store(&g_ping_nice, PING_NICE);
    } else {
        atomic_store(&g_ping_nice, getpriority(PRIO_PROCESS, tid));
    }
    event_base_dispatch(g_ping_base);
    return NULL;
}

static int workers_open(void)
{
    g_w = calloc((size_t)g_p.workers, sizeof *g_w);
    if (!g_w) {
        return -1;
    }
    for (int i = 0; i < g_p.workers; i++) {
        worker_t *w = &g_w[i];
        snprintf(w->id, sizeof w->id, "w%04d", i);
        w->http = evhttp_new(g_ping_base);
        if (!w->http) {
            return -1;
        }
        evhttp_set_timeout(w->http, 3600); /* the assignment lane may idle for a while */
        evhttp_set_allowed_methods(w->http, EVHTTP_REQ_POST);
        evhttp_set_gencb(w->http, on_worker_request, w);
        struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(w->http, "127.0.0.1", 0);
        if (!bs) {
            fprintf(stderr, "bench_fanout: cannot listen (worker %d): %s\n", i, strerror(errno));
            return -1;
        }
        struct sockaddr_in sa;
        socklen_t sl = sizeof sa;
        if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl) != 0) {
            return -1;
        }
        w->port = ntohs(sa.sin_port);
    }
    return 0;
}

/* ---- calls to the coordinator (run the loop until the reply, so workers keep answering) -- */

typedef struct {
    bool done;
    int status;
    json_t *body;
    char *text; /* the raw body, when asked for (metrics) */
    bool want_text;
} call_t;

static void on_call(struct evhttp_request *req, void *arg)
{
    call_t *c = arg;
    c->done = true;
    c->status = req ? evhttp_request_get_response_code(req) : 0;
    if (!req) {
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len && c->want_text) {
        c->text = malloc(len + 1);
        if (c->text) {
            evbuffer_remove(in, c->text, len);
            c->text[len] = '\0';
        }
    } else if (len) {
        c->body = json_loadb((const char *)evbuffer_pullup(in, (ssize_t)len), len, 0, NULL);
    }
}

/* Sends a request and runs the loop until its reply. The reply's status (0: no reply). */
/* Sends a request and runs the loop until its reply lands in *c. false when it could not leave. */
static bool send_call(call_t *c, enum evhttp_cmd_type method, const char *path, const char *body)
{
    struct evhttp_request *req = evhttp_request_new(on_call, c);
    if (!req) {
        return false;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char host[96];
    snprintf(host, sizeof host, "%s:%u", g_p.coord_host, g_p.coord_port);
    evhttp_add_header(h, "Host", host);
    evhttp_add_header(h, "Content-Type", "application/json");
    if (body) {
        evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    }
    if (evhttp_make_request(g_conn, req, method, path) != 0) {
        return false;
    }
    while (!c->done) {
        event_base_loop(g_base, EVLOOP_ONCE);
    }
    return true;
}

static int call(enum evhttp_cmd_type method, const char *path, const char *body, json_t **out)
{
    call_t c = {0};
    if (out) {
        *out = NULL;
    }
    if (!send_call(&c, method, path, body)) {
        return 0;
    }
    if (out) {
        *out = c.body;
    } else {
        json_decref(c.body);
    }
    return c.status;
}

/* The value of one unlabelled metric in a /metrics text, or -1. */
static double metric_in(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, name, n) == 0 && l[n] == ' ') {
            return strtod(l + n + 1, NULL);
        }
    }
    return -1;
}

/* The coordinator's /metrics text (the caller frees it), or NULL. Every read also notes the
 * daemon's own longest interval between two rounds of pings since the last read (the gauge
 * restarts when read), so a phase can tell a late daemon from a late simulator. */
static char *metrics_text(void)
{
    call_t c = {.want_text = true};
    char *t = send_call(&c, EVHTTP_REQ_GET, "/metrics", NULL) ? c.text : NULL;
    double gap = metric_in(t, "shardz_ping_round_gap_max_seconds") * 1e3;
    g_daemon_gap_max = gap > g_daemon_gap_max ? gap : g_daemon_gap_max;
    return t;
}

/* What the coordinator counted so far: what its store lane wrote (records, batches, bytes),
 * and its pings to the namespace's workers: answered, answered after more than 100 ms, failed
 * (no valid answer within the interval). */
typedef struct {
    double records, batches, bytes;
    double pings, pings_slow, pings_failed;
} store_counts;

/* The value of one metric of the namespace, `name{ns="NS"<more>}`, or -1. */
static double ns_metric_in(const char *text, const char *name, const char *more)
{
    char full[256];
    snprintf(full, sizeof full, "%s{ns=\"%s\"%s}", name, g_p.ns, more);
    return metric_in(text, full);
}

static store_counts store_counts_now(void)
{
    char *t = metrics_text();
    double pings = ns_metric_in(t, "shardz_ping_duration_seconds_count", "");
    store_counts sc = {
        metric_in(t, "shardz_store_records_total"),
        metric_in(t, "shardz_store_batches_total"),
        metric_in(t, "shardz_store_bytes_total"),
        pings,
        pings - ns_metric_in(t, "shardz_ping_duration_seconds_bucket", ",le=\"0.1\""),
        ns_metric_in(t, "shardz_pings_failed_total", ""),
    };
    free(t);
    return sc;
}

/* Runs the main loop (assignments applied) for ms milliseconds. */
static void run_for(double ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((long)ms % 1000) * 1000};
    event_base_loopexit(g_base, &tv);
    event_base_dispatch(g_base);
    fds_note();
}

typedef struct {
    long alive, suspect, dead, partitions, missing, moves;
    long long revision;
} summary_t;

static int summary(summary_t *s)
{
    char path[128];
    json_t *j = NULL;
    snprintf(path, sizeof path, "/v1/namespaces/%s", g_p.ns);
    int st = call(EVHTTP_REQ_GET, path, NULL, &j);
    if (st != 200 || !j) {
        json_decref(j);
        return -1;
    }
    json_t *nodes = json_object_get(j, "nodes");
    s->alive = (long)json_integer_value(json_object_get(nodes, "alive"));
    s->suspect = (long)json_integer_value(json_object_get(nodes, "suspect"));
    s->dead = (long)json_integer_value(json_object_get(nodes, "dead"));
    s->partitions = (long)json_integer_value(json_object_get(j, "partitions"));
    s->missing = (long)json_integer_value(json_object_get(j, "missing"));
    s->moves = (long)json_integer_value(json_object_get(j, "moves"));
    s->revision = json_integer_value(json_object_get(j, "revision"));
    json_decref(j);
    return 0;
}

/* ---- stages --------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double q)
{
    if (n == 0) {
        return 0;
    }
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static int register_all(void)
{
    char path[160], body[256];
    snprintf(path, sizeof path, "/v1/namespaces/%s/nodes", g_p.ns);
    double t0 = now_ms(), c0 = proc_cpu_ms(g_p.pid);
    double slowest = 0, first = 0, last = 0;
    int tenth = g_p.workers / 10 ? g_p.workers / 10 : 1;
    int agreed = 0;
    for (int i = 0; i < g_p.workers; i++) {
        snprintf(body, sizeof body, "{\"id\":\"%s\",\"address\":\"127.0.0.1:%u\"%s}", g_w[i].id,
                 g_w[i].port, g_p.no_delta ? "" : ",\"features\":[\"delta\"]");
        double t = now_ms();
        json_t *reply = NULL;
        int st = call(EVHTTP_REQ_POST, path, body, &reply);
        if (st != 200) {
            json_decref(reply);
            fprintf(stderr, "bench_fanout: registering %s: HTTP %d\n", g_w[i].id, st);
            return -1;
        }
        size_t k;
        json_t *f;
        json_array_foreach(json_object_get(reply, "features"), k, f)
        {
            if (json_is_string(f) && strcmp(json_string_value(f), "delta") == 0) {
                g_w[i].delta_agreed = true;
            }
        }
        agreed += g_w[i].delta_agreed;
        json_decref(reply);
        double dt = now_ms() - t;
        slowest = dt > slowest ? dt : slowest;
        if (i < tenth) {
            first += dt;
        }
        if (i >= g_p.workers - tenth) {
            last += dt;
        }
    }
    double took = now_ms() - t0;
    printf("registered %d workers one after another: %.0f ms (daemon CPU %.0f ms); per "
           "registration: mean %.2f ms, first %d mean %.2f ms, last %d mean %.2f ms, slowest "
           "%.1f ms\n",
           g_p.workers, took, proc_cpu_ms(g_p.pid) - c0, took / g_p.workers, tenth, first / tenth,
           tenth, last / tenth, slowest);
    printf("workers %s delta assignments; the coordinator agreed for %d of %d\n",
           g_p.no_delta ? "do not offer" : "offer", agreed, g_p.workers);
    /* wait until every node answered a ping */
    double t1 = now_ms();
    summary_t s = {0};
    while (now_ms() - t1 < g_p.timeout_s * 1000) {
        if (summary(&s) == 0 && s.alive == g_p.workers) {
            break;
        }
        run_for(50);
    }
    if (s.alive != g_p.workers) {
        fprintf(stderr, "bench_fanout: only %ld of %d nodes alive\n", s.alive, g_p.workers);
        return -1;
    }
    printf("all %d nodes alive %.0f ms after the last registration\n", g_p.workers, now_ms() - t1);
    return 0;
}

/* Adds partitions [lo, hi) in one request and measures until every worker that receives one
 * of them was told, and until the coordinator shows them all served. Prints a block, or one
 * line when `brief`. */
static int phase(const char *name, long lo, long hi, bool brief)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        return -1;
    }
    evbuffer_add_printf(b, "{\"ids\":[");
    for (long i = lo; i < hi; i++) {
        evbuffer_add_printf(b, "%s\"%ld\"", i > lo ? "," : "", i);
    }
    evbuffer_add_printf(b, "]}");
    evbuffer_add(b, "", 1);
    char *body = (char *)evbuffer_pullup(b, -1);
    char path[160];
    snprintf(path, sizeof path, "/v1/namespaces/%s/partitions", g_p.ns);
    for (int i = 0; i < g_p.workers; i++) {
        g_w[i].told_ms = 0;
        g_w[i].assigns_in_phase = 0;
    }
    g_lo = lo;
    g_hi = hi;
    g_told = 0;
    g_fulls = g_deltas = g_refused = 0;
    g_assign_bytes = 0;
    g_wait_max = 0;
    g_fds_max = fds_open();
    g_fds_at = now_ms();
    g_phase = true;
    store_counts sc0 = store_counts_now(); /* also restarts the daemon's ping round gauge */
    g_daemon_gap_max = 0;
    atomic_store(&g_max_gap_us, 0);
    probe_take();
    double c0 = proc_cpu_ms(g_p.pid), s0 = self_cpu_ms();
    double pc0 = ping_cpu_ms(), mc0 = thread_cpu_ms(CLOCK_THREAD_CPUTIME_ID);
    double t0 = now_ms();
    int st = call(EVHTTP_REQ_POST, path, body, NULL);
    double t_reply = now_ms();
    evbuffer_free(b);
    if (st != 201) {
        fprintf(stderr, "bench_fanout: adding partitions: HTTP %d\n", st);
        return -1;
    }
    /* settled: the coordinator shows every replica served and no move in flight */
    summary_t s = {0};
    double t_settled = 0;
    long max_suspect = 0, max_dead = 0;
    while (now_ms() - t0 < g_p.timeout_s * 1000) {
        if (summary(&s) == 0) {
            max_suspect = s.suspect > max_suspect ? s.suspect : max_suspect;
            max_dead = s.dead > max_dead ? s.dead : max_dead;
            if (s.partitions == hi && s.missing == 0 && s.moves == 0) {
                t_settled = now_ms();
                break;
            }
        }
        run_for(5);
    }
    /* the store caught up: no batch queued on the coordinator's store lane */
    double t_stored = 0;
    while (t_settled > 0 && now_ms() - t0 < g_p.timeout_s * 1000) {
        char *t = metrics_text();
        double queued = metric_in(t, "shardz_store_batches_queued");
        free(t);
        if (queued == 0) {
            t_stored = now_ms();
            break;
        }
        run_for(5);
    }
    store_counts sc1 = store_counts_now();
    double recs = sc1.records - sc0.records, batches = sc1.batches - sc0.batches,
           sbytes = sc1.bytes - sc0.bytes;
    double pings = sc1.pings - sc0.pings, pings_slow = sc1.pings_slow - sc0.pings_slow,
           pings_failed = sc1.pings_failed - sc0.pings_failed;
    g_phase = false;
    double gap = (double)atomic_load(&g_max_gap_us) / 1e3;
    probe_max_t late = probe_take();
    double cpu = proc_cpu_ms(g_p.pid) - c0, self = self_cpu_ms() - s0;
    double pcpu = ping_cpu_ms() - pc0, mcpu = thread_cpu_ms(CLOCK_THREAD_CPUTIME_ID) - mc0;
    long fds = fds_open();
    g_fds_max = fds > g_fds_max ? fds : g_fds_max;
    /* who holds a new partition now, and when each was told */
    double *lat = calloc((size_t)g_p.workers, sizeof *lat);
    if (!lat) {
        return -1;
    }
    size_t nlat = 0;
    int holders = 0, untold_holders = 0;
    unsigned long msgs = 0, max_msgs = 0;
    for (int i = 0; i < g_p.workers; i++) {
        worker_t *w = &g_w[i];
        bool holds = false;
        for (size_t k = 0; k < w->nheld && !holds; k++) {
            holds = w->held[k].num >= lo && w->held[k].num < hi;
        }
        holders += holds;
        if (w->told_ms > 0) {
            lat[nlat++] = w->told_ms - t0;
        } else if (holds) {
            untold_holders++;
        }
        msgs += w->assigns_in_phase;
        if (w->assigns_in_phase > max_msgs) {
            max_msgs = w->assigns_in_phase;
        }
    }
    qsort(lat, nlat, sizeof *lat, cmp_double);
    double last = nlat ? lat[nlat - 1] : 0;
    if (brief) {
        printf("%s: +%ld partitions (%ld..%ld): answered %.1f ms, %zu/%d workers told, last "
               "%.1f ms, settled %.1f ms, %lu messages, nodes suspect/dead seen %ld/%ld, pings "
               "answered/over 100 ms/failed %.0f/%.0f/%.0f, longest ping interval %.0f ms (the "
               "daemon's longest between ping rounds %.0f ms, the ping thread late at most %.0f "
               "ms, running %.0f of those %.0f ms), daemon CPU %.0f ms, assignments "
               "full/delta/refused "
               "%lu/%lu/%lu, %.1f MB, store idle %.1f ms, %.0f records in %.0f batches, daemon "
               "RSS %.0f MB; simulator: longest wait of an assignment for its main thread %.0f "
               "ms, CPU ping/main thread %.0f/%.0f ms, descriptors %ld (most %ld)\n",
               name, hi - lo, lo, hi - 1, t_reply - t0, nlat, holders, last,
               t_settled > 0 ? t_settled - t0 : -1.0, msgs, max_suspect, max_dead, pings,
               pings_slow, pings_failed, gap, g_daemon_gap_max, late.late_ms, late.ran_ms,
               late.interval_ms, cpu, g_fulls, g_deltas, g_refused, (double)g_assign_bytes / 1e6,
               t_stored > 0 ? t_stored - t0 : -1.0, recs, batches,
               g_p.pid > 0 ? proc_status_kb(g_p.pid, "VmRSS") / 1024.0 : -1.0, g_wait_max, pcpu,
               mcpu, fds, g_fds_max);
    } else {
        printf("\n== %s: add %ld partitions (ids %ld..%ld) in one request, %d workers, "
               "replicas %d\n",
               name, hi - lo, lo, hi - 1, g_p.workers, g_p.replicas);
        printf("request answered (201)                     %9.1f ms\n", t_reply - t0);
        printf("workers told / workers holding a new one   %5zu / %d%s\n", nlat, holders,
               untold_holders ? "  (some holders never told in the phase!)" : "");
        printf("last worker told (arrival, from the request) %7.1f ms\n", last);
        printf("per-worker latency p50 / p95 / max         %9.1f / %.1f / %.1f ms\n",
               pct(lat, nlat, 0.50), pct(lat, nlat, 0.95), last);
        printf("first worker told                          %9.1f ms\n", nlat ? lat[0] : 0);
        if (t_settled > 0) {
            printf("coordinator shows all served, no moves    %9.1f ms (polled every 5 ms)\n",
                   t_settled - t0);
        }
        printf("assignment messages received               %9lu (at most %lu by one worker)\n",
               msgs, max_msgs);
        printf("  of which full / delta / delta refused    %lu / %lu / %lu, bodies %.1f MB\n",
               g_fulls, g_deltas, g_refused, (double)g_assign_bytes / 1e6);
        printf("nodes suspect / dead seen while polling    %5ld / %ld\n", max_suspect, max_dead);
        printf("pings (the daemon's count): %.0f answered, %.0f of them after over 100 ms; %.0f "
               "failed\n",
               pings, pings_slow, pings_failed);
        printf("longest interval between two pings to one worker %.1f ms (nominal %ld)\n", gap,
               g_p.ping_interval_ms ? g_p.ping_interval_ms : 200L);
        printf("  the daemon's longest between two ping rounds %.1f ms; the ping thread ran late "
               "by at most %.1f ms (running %.1f of those %.1f ms)\n",
               g_daemon_gap_max, late.late_ms, late.ran_ms, late.interval_ms);
        if (t_stored > 0) {
            printf("store lane idle (every batch durable)      %9.1f ms\n", t_stored - t0);
        }
        printf("store writes: %.0f records in %.0f batches, %.1f MB\n", recs, batches,
               sbytes / 1e6);
        printf("CPU during the phase: daemon %.0f ms, this program %.0f ms (ping thread %.0f, "
               "main thread %.0f)\n",
               cpu, self, pcpu, mcpu);
        printf("simulator: longest wait of an assignment for its main thread %.1f ms; "
               "descriptors open %ld (most seen %ld)\n",
               g_wait_max, fds, g_fds_max);
    }
    if (t_settled == 0) {
        printf("NOT SETTLED within %.0f s: missing %ld, moves %ld, nodes alive %ld suspect %ld "
               "dead %ld\n",
               g_p.timeout_s, s.missing, s.moves, s.alive, s.suspect, s.dead);
    }
    fflush(stdout);
    free(lat);
    return t_settled > 0 ? 0 : -1;
}

/* Runs the loop for ms and prints the daemon's CPU meanwhile (pings and health ticks only). */
static void quiet(double ms)
{
    free(metrics_text()); /* restarts the daemon's ping round gauge */
    double c0 = proc_cpu_ms(g_p.pid), pc0 = ping_cpu_ms(), t0 = now_ms();
    unsigned long p0 = 0, p1 = 0;
    g_daemon_gap_max = 0;
    atomic_store(&g_max_gap_us, 0);
    probe_take();
    for (int i = 0; i < g_p.workers; i++) {
        p0 += atomic_load_explicit(&g_w[i].pings, memory_order_relaxed);
    }
    run_for(ms);
    for (int i = 0; i < g_p.workers; i++) {
        p1 += atomic_load_explicit(&g_w[i].pings, memory_order_relaxed);
    }
    double dt = now_ms() - t0, pcpu = ping_cpu_ms() - pc0;
    free(metrics_text());
    probe_max_t late = probe_take();
    printf("quiet %.0f ms (pings only): %lu pings answered (%.0f/s), longest interval between "
           "two pings to one worker %.1f ms (the daemon's longest between ping rounds %.1f ms, "
           "the ping thread late at most %.1f ms), daemon CPU %.0f ms (%.0f%% of one core), "
           "ping thread CPU %.0f ms (%.0f%%)\n",
           dt, p1 - p0, (double)(p1 - p0) * 1000 / dt, (double)atomic_load(&g_max_gap_us) / 1e3,
           g_daemon_gap_max, late.late_ms, proc_cpu_ms(g_p.pid) - c0,
           (proc_cpu_ms(g_p.pid) - c0) * 100 / dt, pcpu, pcpu * 100 / dt);
    fflush(stdout);
}

/* Every partition [0, total) is held by exactly `replicas` workers, from the workers' view. */
static int verify(long total)
{
    unsigned char *cnt = calloc((size_t)total, 1);
    if (!cnt) {
        return -1;
    }
    long foreign = 0, bad = 0;
    for (int i = 0; i < g_p.workers; i++) {
        for (size_t k = 0; k < g_w[i].nheld; k++) {
            long n = g_w[i].held[k].num;
            if (n < 0 || n >= total) {
                foreign++;
            } else if (cnt[n] < 255) {
                cnt[n]++;
            }
        }
    }
    for (long i = 0; i < total; i++) {
        bad += cnt[i] != g_p.replicas;
    }
    free(cnt);
    size_t mn = SIZE_MAX, mx = 0;
    for (int i = 0; i < g_p.workers; i++) {
        mn = g_w[i].nheld < mn ? g_w[i].nheld : mn;
        mx = g_w[i].nheld > mx ? g_w[i].nheld : mx;
    }
    printf("\ncheck (the workers' own view): %ld partitions held by %d workers each: %s "
           "(%ld wrong, %ld unknown); replicas per worker min %zu max %zu; malformed messages "
           "%lu\n",
           total, g_p.replicas, bad || foreign ? "FAILED" : "ok", bad, foreign, mn, mx,
           atomic_load(&g_bad));
    return bad || foreign || atomic_load(&g_bad) ? -1 : 0;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: bench_fanout [--coordinator HOST:PORT] [--pid PID] [--workers N]\n"
        "         [--partitions N] [--add N] [--replicas R] [--namespace NAME]\n"
        "         [--ping-interval-ms MS] [--timeout-s S] [--chunk N] [--no-delta] [--hold-s S]\n"
        "Registers N simulated workers (one process: a ping thread answers their pings, the\n"
        "main thread their assignments), then adds --partitions\n"
        "in one request (phase 1; in requests of --chunk ids when given, each settled\n"
        "before the next) and, once settled, --add more (phase 2); measures when each\n"
        "worker is told. --pid: the daemon's pid, for its memory and CPU. --timeout-s: how\n"
        "long one phase may take to settle (default 120). The coordinator and the pid\n"
        "default to $SHARDZ_COORDINATOR and $SHARDZD_PID (set by with-shardzd.sh).\n"
        "Workers offer delta assignments when they register (docs/PROTOCOL.md 4.3) and\n"
        "apply them; --no-delta makes them workers that predate deltas (full sets only).\n");
}

static int parse(int argc, char **argv)
{
    static const struct option opts[] = {{"coordinator", required_argument, 0, 'c'},
                                         {"pid", required_argument, 0, 'p'},
                                         {"workers", required_argument, 0, 'w'},
                                         {"partitions", required_argument, 0, 'n'},
                                         {"add", required_argument, 0, 'a'},
                                         {"replicas", required_argument, 0, 'r'},
                                         {"namespace", required_argument, 0, 's'},
                                         {"ping-interval-ms", required_argument, 0, 'i'},
                                         {"timeout-s", required_argument, 0, 't'},
                                         {"chunk", required_argument, 0, 'k'},
                                         {"no-delta", no_argument, 0, 'D'},
                                         {"hold-s", required_argument, 0, 'H'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *coord = getenv("SHARDZ_COORDINATOR");
    g_p.workers = 1000;
    g_p.partitions = 10000;
    g_p.add = 1000;
    g_p.replicas = 1;
    g_p.timeout_s = 120;
    snprintf(g_p.ns, sizeof g_p.ns, "fanout");
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            coord = optarg;
            break;
        case 'p':
            g_p.pid = atol(optarg);
            break;
        case 'w':
            g_p.workers = atoi(optarg);
            break;
        case 'n':
            g_p.partitions = atol(optarg);
            break;
        case 'a':
            g_p.add = atol(optarg);
            break;
        case 'r':
            g_p.replicas = atoi(optarg);
            break;
        case 's':
            snprintf(g_p.ns, sizeof g_p.ns, "%s", optarg);
            break;
        case 'i':
            g_p.ping_interval_ms = atol(optarg);
            break;
        case 't':
            g_p.timeout_s = atof(optarg);
            break;
        case 'H':
            g_p.hold_s = atof(optarg);
            break;
        case 'k':
            g_p.chunk = atol(optarg);
            break;
        case 'D':
            g_p.no_delta = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    const char *colon = coord ? strrchr(coord, ':') : NULL;
    if (!colon || (size_t)(colon - coord) >= sizeof g_p.coord_host) {
        return -1;
    }
    memcpy(g_p.coord_host, coord, (size_t)(colon - coord));
    g_p.coord_host[colon - coord] = 0;
    g_p.coord_port = (uint16_t)atoi(colon + 1);
    if (!g_p.pid && getenv("SHARDZD_PID")) {
        g_p.pid = atol(getenv("SHARDZD_PID"));
    }
    if (g_p.chunk <= 0) {
        g_p.chunk = g_p.partitions;
    }
    if (!g_p.coord_port || g_p.workers < 1 || g_p.partitions < 1 || g_p.add < 0 ||
        g_p.replicas < 1 || g_p.replicas > 16) {
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int status = 1;
    struct event *probe = NULL;
    /* a worker's peer (the coordinator) may close a connection while a reply is written: that
     * is an error on that connection, not the end of the run */
    signal(SIGPIPE, SIG_IGN);
    if (parse(argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    printf("bench_fanout: %d workers, %ld partitions (requests of %ld) then +%ld, replicas %d, "
           "namespace %s, ping interval %s%ld ms; %s\n",
           g_p.workers, g_p.partitions, g_p.chunk, g_p.add, g_p.replicas, g_p.ns,
           g_p.ping_interval_ms ? "" : "default ",
           g_p.ping_interval_ms ? g_p.ping_interval_ms : 200L,
           g_p.no_delta ? "workers take full sets only (--no-delta)" : "workers offer deltas");
    fflush(stdout);
    json_object_seed(0); /* before any JSON value, while one thread runs (jansson) */
    g_base = event_base_new();
    /* the ping base folds the add/remove pairs evhttp makes on each request into one epoll
     * change per turn of the loop (a ping costs fewer system calls) */
    struct event_config *cfg = event_config_new();
    if (cfg) {
        event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        g_ping_base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    if (!g_base || !g_ping_base) {
        goto cleanup;
    }
    if (mailbox_init(&g_to_main, g_base, on_assignment) != 0 ||
        mailbox_init(&g_to_ping, g_ping_base, on_reply) != 0) {
        goto cleanup;
    }
    if (workers_open() != 0) {
        goto cleanup;
    }
    static probe_t probe_last; /* the ping thread's */
    probe = event_new(g_ping_base, -1, EV_PERSIST, on_probe, &probe_last);
    struct timeval probe_tv = {0, PROBE_MS * 1000};
    if (!probe || event_add(probe, &probe_tv) != 0) {
        goto cleanup;
    }
    /* the ping base and the workers' listeners are ready: from here on only the ping thread
     * touches them (pthread_create orders what was done before it) */
    if (pthread_create(&g_ping_tid, NULL, ping_main, NULL) != 0) {
        goto cleanup;
    }
    g_ping_running = true;
    for (int i = 0; i < 1000 && atomic_load(&g_ping_nice) == INT_MIN; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    struct rlimit nofile = {0};
    getrlimit(RLIMIT_NOFILE, &nofile);
    printf(
        "cores online %ld; this program runs 2 threads: a ping thread (every worker's listener "
        "and connections: answers pings, hands assignments over and sends their replies) and "
        "the main thread (applies assignments, calls the coordinator, measures); the ping thread "
        "at nice %d%s; descriptor limit %llu\n",
        sysconf(_SC_NPROCESSORS_ONLN), atomic_load(&g_ping_nice),
        atomic_load(&g_ping_nice) == PING_NICE ? "" : " (it could not be raised)",
        (unsigned long long)nofile.rlim_cur);
    fflush(stdout);
    g_conn = evhttp_connection_base_new(g_base, NULL, g_p.coord_host, g_p.coord_port);
    if (!g_conn) {
        goto cleanup;
    }
    evhttp_connection_set_timeout(g_conn, 300);
    print_memory("at start");
    char body[512];
    int n = snprintf(body, sizeof body, "{\"name\":\"%s\",\"replicas\":%d,\"partitions\":0", g_p.ns,
                     g_p.replicas);
    if (g_p.ping_interval_ms) {
        n += snprintf(body + n, sizeof body - (size_t)n,
                      ",\"ping_interval_ms\":%ld,\"dead_after_ms\":%ld", g_p.ping_interval_ms,
                      4 * g_p.ping_interval_ms);
    }
    snprintf(body + n, sizeof body - (size_t)n, "}");
    int st = call(EVHTTP_REQ_POST, "/v1/namespaces", body, NULL);
    if (st != 201) {
        fprintf(stderr, "bench_fanout: creating namespace %s: HTTP %d\n", g_p.ns, st);
        goto cleanup;
    }
    if (register_all() != 0) {
        goto cleanup;
    }
    print_memory("after registration (0 partitions)");
    if (g_p.chunk >= g_p.partitions) {
        if (phase("phase 1 (first placement)", 0, g_p.partitions, false) != 0) {
            goto cleanup;
        }
    } else {
        printf("\n== phase 1: %ld partitions added in requests of %ld, each settled before the "
               "next\n",
               g_p.partitions, g_p.chunk);
        double t0 = now_ms();
        for (long lo = 0; lo < g_p.partitions; lo += g_p.chunk) {
            long hi = lo + g_p.chunk < g_p.partitions ? lo + g_p.chunk : g_p.partitions;
            if (phase("  chunk", lo, hi, true) != 0) {
                goto cleanup;
            }
        }
        printf("phase 1 total: %.0f ms\n", now_ms() - t0);
    }
    print_memory("after phase 1, settled");
    quiet(2000);
    if (g_p.add > 0) {
        if (phase("phase 2 (a change on a settled namespace)", g_p.partitions,
                  g_p.partitions + g_p.add, false) != 0) {
            goto cleanup;
        }
        print_memory("after phase 2, settled");
    }
    if (verify(g_p.partitions + g_p.add) != 0) {
        goto cleanup;
    }
    unsigned long pings = 0;
    for (int i = 0; i < g_p.workers; i++) {
        pings += atomic_load_explicit(&g_w[i].pings, memory_order_relaxed);
    }
    printf("pings answered in all: %lu\n", pings);
    if (g_p.hold_s > 0) {
        /* the workers stay (pings and assignments answered) while the caller acts on the
         * coordinators, e.g. kills the leader (bench/daemon/etcd_million.py) */
        printf("holding the workers for %.0f s\n", g_p.hold_s);
        fflush(stdout);
        run_for(g_p.hold_s * 1000);
        printf("held\n");
    }
    status = 0;
cleanup:
    if (g_ping_running) {
        job_t *stop = calloc(1, sizeof *stop); /* w NULL: stop */
        if (!stop) {
            abort(); /* the thread cannot be stopped: its evhttps cannot be freed */
        }
        mailbox_post(&g_to_ping, stop);
        pthread_join(g_ping_tid, NULL);
        g_ping_running = false;
    }
    if (g_conn) {
        evhttp_connection_free(g_conn);
    }
    for (int i = 0; g_w && i < g_p.workers; i++) {
        if (g_w[i].http) {
            evhttp_free(g_w[i].http);
        }
        free(g_w[i].held);
        free(g_w[i].idx);
    }
    free(g_w);
    mailbox_free(&g_to_main);
    mailbox_free(&g_to_ping);
    if (probe) {
        event_free(probe);
    }
    if (g_ping_base) {
        event_base_free(g_ping_base);
    }
    if (g_base) {
        event_base_free(g_base);
    }
    return status;
}
