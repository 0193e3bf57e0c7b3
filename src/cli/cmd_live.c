/* shardzctl events and watch: the commands that may run until Ctrl-C. events reads GET /events
 * (and with --follow polls it from the last "next"); watch long-polls /watch and prints what
 * changed between two states, one line per change. SIGINT cancels the call in flight and both
 * exit 0. Output is flushed after each batch so pipes see it at once. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

#define EVENTS_LIMIT_MAX 10000

/* ---- events ------------------------------------------------------------------------------ */

static void sleep_ms(cli *c, long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

    while (!c->interrupted && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* "SEQ TIME TYPE key=value ..." for one event; values with spaces are quoted. */
static void print_event(const json_t *ev)
{
    char seq[32], when[64], type[64], val[512];
    const char *k;
    const json_t *v;

    printf("%6s  %-24s  %-18s", cli_field(ev, "seq", seq, sizeof seq),
           cli_fmt_time(json_object_get(ev, "time_ms"), when, sizeof when),
           cli_field(ev, "type", type, sizeof type));
    json_object_foreach((json_t *)ev, k, v)
    {
        if (strcmp(k, "seq") == 0 || strcmp(k, "time_ms") == 0 || strcmp(k, "type") == 0) {
            continue;
        }
        cli_fmt(v, val, sizeof val);
        printf(strpbrk(val, " \"=") != NULL ? " %s=\"%s\"" : " %s=%s", k, val);
    }
    printf("\n");
}

int cmd_events(cli *c)
{
    long long since = 0;
    long long limit = 0;
    long interval = 1000;
    bool follow = false;
    char path[256];
    char *raw = NULL;
    json_t *r = NULL;
    int rc;

    rc = cli_flag_int(c, F_SINCE, 0, INT64_MAX, &since);
    if (rc == 0) {
        rc = cli_flag_int(c, F_LIMIT, 1, EVENTS_LIMIT_MAX, &limit);
    }
    if (rc == 0) {
        rc = cli_flag_bool(c, F_FOLLOW, &follow);
    }
    if (rc == 0) {
        rc = cli_flag_duration(c, F_INTERVAL, 10, 3600L * 1000, &interval);
    }
    if (rc == 0 && c->set[F_INTERVAL] && !follow) {
        rc = cli_usage_error(c, "--interval applies to --follow only");
    }
    if (rc != 0) {
        return rc;
    }
    if (follow) {
        cli_catch_sigint(c);
    }
    for (;;) {
        const json_t *evs;
        const json_t *ev;
        const json_t *next;
        size_t i;

        if (limit > 0) {
            cli_ns_path(c, path, sizeof path, "/events?since=%lld&limit=%lld", since, limit);
        } else {
            cli_ns_path(c, path, sizeof path, "/events?since=%lld", since);
        }
        rc = cli_call(c, "GET", path, NULL, &r, c->json && !follow ? &raw : NULL);
        if (rc != 0 || r == NULL) {
            break;
        }
        evs = json_object_get(r, "events");
        if (!follow) {
            if (c->json) {
                cli_print_text(raw);
            } else if (json_array_size(evs) == 0) {
                printf("no events since %lld\n", since);
            }
        }
        json_array_foreach(evs, i, ev)
        {
            if (c->json && follow) {
                cli_print_json(ev);
            } else if (!c->json) {
                print_event(ev);
            }
            if (json_integer_value(json_object_get(ev, "seq")) > since) {
                since = json_integer_value(json_object_get(ev, "seq"));
            }
        }
        next = json_object_get(r, "next");
        if (json_is_integer(next) && json_integer_value(next) > since) {
            since = json_integer_value(next);
        }
        json_decref(r);
        r = NULL;
        fflush(stdout);
        if (!follow || c->interrupted) {
            break;
        }
        sleep_ms(c, interval);
        if (c->interrupted) {
            break;
        }
    }
    json_decref(r);
    free(raw);
    return rc;
}

/* ---- watch ------------------------------------------------------------------------------- */

/* id -> object (borrowed references kept alive by the state) for an array of objects. */
static json_t *index_by(const json_t *arr, const char *key, const char *alt)
{
    json_t *m = json_object();
    size_t i;
    const json_t *e;

    json_array_foreach(arr, i, e)
    {
        const char *id = json_string_value(json_object_get(e, key));
        if (id == NULL && alt != NULL) {
            id = json_string_value(json_object_get(e, alt));
        }
        if (id != NULL) {
            json_object_set(m, id, (json_t *)e);
        }
    }
    return m;
}

/* A partition's replicas by slot number ("0", "1", ...). */
static json_t *replicas_by_slot(const json_t *part)
{
    json_t *m = json_object();
    size_t i;
    const json_t *r;

    json_array_foreach(json_object_get(part, "replicas"), i, r)
    {
        char k[32];
        snprintf(k, sizeof k, "%lld", (long long)json_integer_value(json_object_get(r, "slot")));
        json_object_set(m, k, (json_t *)r);
    }
    return m;
}

static const char *replica_desc(const json_t *r, char *buf, size_t len)
{
    char node[300], st[64], gen[32], to[300];

    if (r == NULL) {
        snprintf(buf, len, "none");
        return buf;
    }
    cli_field(r, "node", node, sizeof node);
    cli_field(r, "state", st, sizeof st);
    cli_field(r, "generation", gen, sizeof gen);
    if (json_object_get(r, "moving_to") != NULL) {
        snprintf(buf, len, "%s %s gen %s (moving to %s)", node, st, gen,
                 cli_field(r, "moving_to", to, sizeof to));
    } else {
        snprintf(buf, len, "%s %s gen %s", node, st, gen);
    }
    return buf;
}

static bool same_field(const json_t *a, const json_t *b, const char *key)
{
    const json_t *x = json_object_get(a, key);
    const json_t *y = json_object_get(b, key);

    return (x == NULL && y == NULL) || (x != NULL && y != NULL && json_equal(x, y));
}

/* One change line. */
static void change(long long rev, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void change(long long rev, size_t *n, const char *fmt, ...)
{
    va_list ap;

    printf("rev %lld: ", rev);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    (*n)++;
}

static void diff_nodes(const json_t *before, const json_t *after, long long rev, size_t *n)
{
    json_t *old = index_by(json_object_get(before, "nodes"), "id", NULL);
    json_t *now = index_by(json_object_get(after, "nodes"), "id", NULL);
    const char *id;
    json_t *a;
    char x[300], y[300];

    json_object_foreach(now, id, a)
    {
        const json_t *b = json_object_get(old, id);
        if (b == NULL) {
            change(rev, n, "node %s registered: %s at %s", id, cli_field(a, "state", x, sizeof x),
                   cli_field(a, "address", y, sizeof y));
            continue;
        }
        if (!same_field(a, b, "state")) {
            change(rev, n, "node %s %s -> %s", id, cli_field(b, "state", x, sizeof x),
                   cli_field(a, "state", y, sizeof y));
        }
        if (!same_field(a, b, "address")) {
            change(rev, n, "node %s address %s -> %s", id, cli_field(b, "address", x, sizeof x),
                   cli_field(a, "address", y, sizeof y));
        }
    }
    json_object_foreach(old, id, a)
    {
        if (json_object_get(now, id) == NULL) {
            change(rev, n, "node %s removed", id);
        }
    }
    json_decref(old);
    json_decref(now);
}

static void diff_replicas(const char *pid, const json_t *b, const json_t *a, long long rev,
                          size_t *n)
{
    json_t *old = replicas_by_slot(b);
    json_t *now = replicas_by_slot(a);
    const char *slot;
    json_t *r;
    char x[700], y[700];

    json_object_foreach(now, slot, r)
    {
        const json_t *o = json_object_get(old, slot);
        if (o == NULL || !json_equal(o, r)) {
            change(rev, n, "partition %s slot %s: %s -> %s", pid, slot,
                   replica_desc(o, x, sizeof x), replica_desc(r, y, sizeof y));
        }
    }
    json_object_foreach(old, slot, r)
    {
        if (json_object_get(now, slot) == NULL) {
            change(rev, n, "partition %s slot %s: %s -> none", pid, slot,
                   replica_desc(r, x, sizeof x));
        }
    }
    if (!same_field(a, b, "slots")) {
        change(rev, n, "partition %s hash slots %s -> %s", pid, cli_field(b, "slots", x, sizeof x),
               cli_field(a, "slots", y, sizeof y));
    }
    json_decref(old);
    json_decref(now);
}

static void diff_parts(const json_t *before, const json_t *after, long long rev, size_t *n)
{
    json_t *old = index_by(json_object_get(before, "partitions"), "id", "partition");
    json_t *now = index_by(json_object_get(after, "partitions"), "id", "partition");
    const char *id;
    json_t *a;

    json_object_foreach(now, id, a)
    {
        const json_t *b = json_object_get(old, id);
        if (b == NULL) {
            change(rev, n, "partition %s added", id);
        } else if (!json_equal(a, b)) {
            diff_replicas(id, b, a, rev, n);
        }
    }
    json_object_foreach(old, id, a)
    {
        if (json_object_get(now, id) == NULL) {
            change(rev, n, "partition %s removed", id);
        }
    }
    json_decref(old);
    json_decref(now);
}

int cmd_watch(cli *c)
{
    long long count = 0;
    long long done = 0;
    long long rev;
    char path[256];
    json_t *prev = NULL;
    json_t *r = NULL;
    int rc;

    rc = cli_flag_int(c, F_COUNT, 1, INT32_MAX, &count);
    if (rc != 0) {
        return rc;
    }
    cli_catch_sigint(c);
    cli_ns_path(c, path, sizeof path, "/state");
    rc = cli_call(c, "GET", path, NULL, &prev, NULL);
    if (rc != 0 || prev == NULL) {
        return rc;
    }
    rev = json_integer_value(json_object_get(prev, "revision"));
    if (!c->json) {
        printf("watching namespace %s from revision %lld: %zu nodes, %zu partitions\n", c->ns, rev,
               json_array_size(json_object_get(prev, "nodes")),
               json_array_size(json_object_get(prev, "partitions")));
        fflush(stdout);
    }
    shardz_client_set_timeout(c->client, CLI_WATCH_POLL_MS + c->timeout_ms);
    while (!c->interrupted && (count == 0 || done < count)) {
        long long now;
        size_t n = 0;

        cli_ns_path(c, path, sizeof path, "/watch?revision=%lld&timeout_ms=%d", rev,
                    CLI_WATCH_POLL_MS);
        rc = cli_call(c, "GET", path, NULL, &r, NULL);
        if (rc != 0 || r == NULL) {
            break;
        }
        now = json_integer_value(json_object_get(r, "revision"));
        if (json_is_true(json_object_get(r, "unchanged")) || now <= rev) {
            json_decref(r);
            r = NULL;
            continue;
        }
        if (c->json) {
            cli_print_json(r);
        } else {
            diff_nodes(prev, r, now, &n);
            diff_parts(prev, r, now, &n);
            if (n == 0) {
                change(now, &n, "no change to nodes or routing");
            }
        }
        fflush(stdout);
        json_decref(prev);
        prev = r;
        r = NULL;
        rev = now;
        done++;
    }
    json_decref(prev);
    json_decref(r);
    return rc;
}
