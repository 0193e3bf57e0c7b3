/* A fake coordinator for libshardz tests: an evhttp server on 127.0.0.1 (port 0) on its own
 * thread that answers registration, namespace, leave, /state and /watch (a real long-poll)
 * the way docs/PROTOCOL.md says, records what the library sent, and lets a test script the
 * replies. Plus a blocking HTTP client (libcurl) for a test to play the coordinator's pings
 * and assignments against a worker. */
#ifndef SHARDZ_TESTS_LIB_FAKE_COORD_H
#define SHARDZ_TESTS_LIB_FAKE_COORD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct fake_coord fake_coord;

/* What the fake answers; set before or while it runs (under fake_lock). */
typedef struct {
    const char *ns;          /* namespace it serves ("kv") */
    const char *consistency; /* in GET /v1/namespaces/{ns}: "strict" or "available" */
    int64_t lease_ms;        /* in the register reply and namespace */
    int64_t ping_interval_ms;
    const char *sharder;  /* in the namespace: "hash" or "replica" */
    uint32_t slots;       /* in the namespace (0: left out) */
    int register_fail;    /* answer this many registrations with 503 first */
    int leave_status;     /* status of the leave reply (0: 200) */
    const char *secret;   /* required bearer secret, or NULL */
    const char *features; /* the register reply's "features", raw JSON (e.g. "[\"delta\"]");
                           * NULL: left out, as an old coordinator does */
} fake_opts;

fake_coord *fake_start(const fake_opts *opts);
void fake_stop(fake_coord *f);
/* "127.0.0.1:<port>", owned by f. */
const char *fake_addr(const fake_coord *f);

/* Recorded traffic (read under fake_lock / fake_unlock). */
typedef struct {
    int registrations;        /* register requests answered 200 */
    int register_attempts;    /* all register requests */
    int ns_reads;             /* GET /v1/namespaces/{ns} */
    int leaves;               /* leave requests */
    int watches;              /* watch requests */
    int watches_held;         /* watch requests held open (nothing newer yet) */
    int watches_released;     /* held watches answered: a change, a timeout or the fake's stop */
    int watches_unchanged;    /* held watches answered "unchanged" (timeout, or the fake's stop) */
    int unauthorized;         /* requests refused for the secret */
    char last_register[2048]; /* body of the last register request */
    char last_leave_path[512];
} fake_record;

void fake_lock(fake_coord *f);
void fake_unlock(fake_coord *f);
fake_record *fake_rec(fake_coord *f);
fake_opts *fake_options(fake_coord *f);
/* Replaces the /state body (copied); wakes pending watches whose revision is older. */
void fake_set_state(fake_coord *f, int64_t revision, const char *state_json);

/* Blocking request for tests: POST (body) or GET (body NULL) to "http://addr path" with an
 * optional Authorization value. Returns the HTTP status (0 on transport failure); *reply is
 * malloc'd (free it) when reply is not NULL. */
long tc_request(const char *addr, const char *method, const char *path, const char *auth,
                const char *body, size_t len, char **reply);

/* Monotonic milliseconds, and a sleep. */
uint64_t tc_now_ms(void);
void tc_sleep_ms(unsigned ms);

#endif
