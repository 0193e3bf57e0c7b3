/* shardzd: the coordinator. Reads its configuration (flags, then environment, then an
 * optional key=value file), opens the store, loads every namespace, serves the HTTP API on
 * one libevent loop until SIGTERM/SIGINT, then shuts down cleanly. Main thread only. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "common/auth.h"
#include "daemon/daemon.h"
#include "daemon/health_lane.h"
#include "daemon/oom.h"
#include "daemon/options.h"
#include "daemon/store_lane.h"
#include "daemon/testhook.h"
#include "shardz/version.h"

#define SZD_OPT_CODE 256 /* getopt codes above any character */

static int parse_level(const char *s)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* Applies one setting; returns 0 or prints why and returns -1. */
static int set_option(szd_config *c, const char *key, const char *val)
{
    if (strcmp(key, "listen") == 0) {
        if (strlen(val) >= sizeof c->listen || !strchr(val, ':')) {
            fprintf(stderr, "shardzd: --listen wants HOST:PORT, got '%s'\n", val);
            return -1;
        }
        snprintf(c->listen, sizeof c->listen, "%s", val);
    } else if (strcmp(key, "data") == 0) {
        if (!*val || strlen(val) >= sizeof c->data) {
            fprintf(stderr, "shardzd: --data wants a directory\n");
            return -1;
        }
        snprintf(c->data, sizeof c->data, "%s", val);
    } else if (strcmp(key, "fsync") == 0) {
        if (shardz_store_sync_parse(val, &c->sync) != 0 || c->sync == SHARDZ_STORE_SYNC_NONE) {
            fprintf(stderr, "shardzd: --fsync wants full or normal, got '%s'\n", val);
            return -1;
        }
    } else if (strcmp(key, "secret") == 0) {
        if (strlen(val) >= sizeof c->secret) {
            fprintf(stderr, "shardzd: --secret is too long\n");
            return -1;
        }
        snprintf(c->secret, sizeof c->secret, "%s", val);
    } else if (strcmp(key, "store") == 0) {
        if (strncmp(val, "etcd://", 7) != 0 || !strchr(val + 7, ':') ||
            strlen(val) >= sizeof c->store) {
            fprintf(stderr, "shardzd: --store wants etcd://HOST:PORT[/PREFIX], got '%s'\n", val);
            return -1;
        }
        snprintf(c->store, sizeof c->store, "%s", val);
    } else if (strcmp(key, "advertise") == 0) {
        if (strlen(val) >= sizeof c->advertise || !strchr(val, ':')) {
            fprintf(stderr, "shardzd: --advertise wants HOST:PORT, got '%s'\n", val);
            return -1;
        }
        snprintf(c->advertise, sizeof c->advertise, "%s", val);
    } else if (strcmp(key, "id") == 0) {
        if (!shardz_key_id_valid(val) || strlen(val) > SHARDZ_MAX_ID) {
            fprintf(stderr,
                    "shardzd: --id wants 1-%d characters without '/' or control "
                    "characters\n",
                    SHARDZ_MAX_ID);
            return -1;
        }
        snprintf(c->id, sizeof c->id, "%s", val);
    } else if (strcmp(key, "lease-ttl") == 0) {
        char *end = NULL;
        long long v = strtoll(val, &end, 10);
        if (!*val || *end || v < 2000 || v > 600000) {
            fprintf(stderr,
                    "shardzd: --lease-ttl wants milliseconds in [2000, 600000], got "
                    "'%s'\n",
                    val);
            return -1;
        }
        c->lease_ttl_ms = v;
    } else if (strcmp(key, "max-watches") == 0) {
        char *end = NULL;
        long long v = strtoll(val, &end, 10);
        if (!*val || *end || v < 0 || v > 1000000) {
            fprintf(stderr, "shardzd: --max-watches wants a count in [0, 1000000], got '%s'\n",
                    val);
            return -1;
        }
        c->max_watches = (size_t)v;
    } else if (strcmp(key, "max-connections") == 0) {
        char *end = NULL;
        long long v = strtoll(val, &end, 10);
        if (!*val || *end || v < 1 || v > 1000000) {
            fprintf(stderr, "shardzd: --max-connections wants a count in [1, 1000000], got '%s'\n",
                    val);
            return -1;
        }
        c->max_connections = (size_t)v;
    } else if (strcmp(key, "log-level") == 0) {
        c->log_level = parse_level(val);
        if (c->log_level < 0) {
            fprintf(stderr, "shardzd: --log-level wants error|warn|info|debug\n");
            return -1;
        }
    } else {
        fprintf(stderr, "shardzd: unknown setting '%s'\n", key);
        return -1;
    }
    return 0;
}

static int read_config_file(szd_config *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "shardzd: cannot read config %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        char *k = line + strspn(line, " \t");
        if (!*k || *k == '#') {
            continue;
        }
        char *eq = strchr(k, '=');
        if (!eq) {
            fprintf(stderr, "shardzd: %s:%d: expected key=value\n", path, lineno);
            rc = -1;
            break;
        }
        *eq = 0;
        char *v = eq + 1;
        for (char *e = eq - 1; e >= k && (*e == ' ' || *e == '\t'); e--) {
            *e = 0;
        }
        v += strspn(v, " \t");
        rc = set_option(c, k, v);
    }
    fclose(f);
    return rc;
}

/* Raises the open-file limit to its hard limit and fits the default --max-connections below
 * it: the rest is for the store, the lanes' pipes and every worker's ping and push connections.
 * A cap that leaves less than a quarter of the limit (and 64) for them is kept, with a warning:
 * past the limit, accept() fails and accepting pauses (conns.c). */
static int fd_budget(szd_config *c)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "shardzd: getrlimit: %s\n", strerror(errno));
        return -1;
    }
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 1048576 ? 1048576 : rl.rlim_max;
    if (want > rl.rlim_cur) {
        struct rlimit up = {want, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &up) == 0) {
            rl.rlim_cur = want;
        }
    }
    size_t limit = rl.rlim_cur == RLIM_INFINITY ? 1048576 : (size_t)rl.rlim_cur;
    size_t reserve = limit / 4 > 64 ? limit / 4 : 64;
    if (!c->max_connections) {
        c->max_connections = limit / 2 < 10000 ? limit / 2 : 10000;
        if (!c->max_connections) {
            c->max_connections = 1;
        }
    } else if (c->max_connections + reserve > limit) {
        fprintf(stderr,
                "shardzd: warning: --max-connections %zu leaves too few of the %zu open files "
                "this process may have for the store and the workers' connections (keep %zu "
                "free, or raise the limit: ulimit -n); past the limit accepting pauses\n",
                c->max_connections, limit, reserve);
    }
    return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    szd *d = arg;
    szd_log(d, SZD_INFO, "msg=\"shutting down\" signal=%d", (int)sig);
    event_base_loopexit(d->base, NULL);
}

/* Test hook (testhook.h): SHARDZ_TEST_LOOP_HOLD=<path> holds the loop while that file exists,
 * as placement, JSON or a load of a million records would: tests show that the lanes (pings,
 * the lease keeper) go on. Tests only. */
static void on_loop_hold(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    szd *d = arg;
    szd_test_hold("SHARDZ_TEST_LOOP_HOLD", "loop", d->clock_ms, d->cfg.log_level);
}

int main(int argc, char **argv)
{
    szd d = {0};
    snprintf(d.cfg.listen, sizeof d.cfg.listen, "127.0.0.1:7557");
    snprintf(d.cfg.data, sizeof d.cfg.data, "./shardz-data");
    d.cfg.log_level = SZD_INFO;
    d.cfg.sync = SHARDZ_STORE_SYNC_FULL;
    d.cfg.lease_ttl_ms = 5000;
    d.cfg.max_watches = 10000;

    /* getopt's table from szd_options: option i returns SZD_OPT_CODE + i */
    struct option opts[64] = {{0}};
    for (size_t i = 0; i < szd_noptions && i + 1 < sizeof opts / sizeof opts[0]; i++) {
        opts[i] = (struct option){szd_options[i].name,
                                  szd_options[i].metavar ? required_argument : no_argument, 0,
                                  SZD_OPT_CODE + (int)i};
    }
    /* the file first, then the environment, then flags */
    for (int i = 1; i < argc; i++) {
        const char *file = strncmp(argv[i], "--config=", 9) == 0              ? argv[i] + 9
                           : strcmp(argv[i], "--config") == 0 && i + 1 < argc ? argv[i + 1]
                                                                              : NULL;
        if (file && read_config_file(&d.cfg, file) != 0) {
            return 2;
        }
    }
    for (size_t i = 0; i < szd_noptions; i++) {
        const char *v = szd_options[i].env ? getenv(szd_options[i].env) : NULL;
        if (v && set_option(&d.cfg, szd_options[i].name, v) != 0) {
            return 2;
        }
    }
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        o -= SZD_OPT_CODE; /* '?' (an unknown option, a missing value) goes negative */
        const char *name = o >= 0 && (size_t)o < szd_noptions ? szd_options[o].name : "";
        if (o < 0 || (size_t)o >= szd_noptions) {
            szd_options_usage(stderr);
            return 2;
        } else if (strcmp(name, "config") == 0) {
            continue; /* read above */
        } else if (szd_options[o].in_config) {
            if (set_option(&d.cfg, name, optarg) != 0) {
                return 2;
            }
        } else if (strcmp(name, "memory") == 0) {
            d.cfg.memory = true;
        } else if (strcmp(name, "insecure") == 0) {
            d.cfg.insecure = true;
        } else if (strcmp(name, "routes") == 0) {
            szd_api_print_routes(stdout);
            return 0;
        } else if (strcmp(name, "version") == 0) {
            printf("shardzd %s\n", shardz_version());
            return 0;
        } else if (strcmp(name, "man") == 0) {
            szd_options_man(stdout, shardz_version());
            return 0;
        } else {
            szd_options_usage(strcmp(name, "help") == 0 ? stdout : stderr);
            return strcmp(name, "help") == 0 ? 0 : 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "shardzd: unexpected argument '%s'\n", argv[optind]);
        szd_options_usage(stderr);
        return 2;
    }
    /* HOST:PORT, [IPV6]:PORT, IPV6:PORT (the last colon ends the host), or :PORT (every
     * interface) */
    char host[256];
    const char *colon = strrchr(d.cfg.listen, ':');
    char *pend = NULL;
    long port = colon ? strtol(colon + 1, &pend, 10) : -1;
    size_t hostlen = colon ? (size_t)(colon - d.cfg.listen) : 0;
    if (!colon || !colon[1] || *pend || hostlen >= sizeof host || port < 0 || port > 65535) {
        fprintf(stderr, "shardzd: bad listen address '%s' (want HOST:PORT, [IPV6]:PORT or :PORT)\n",
                d.cfg.listen);
        return 2;
    }
    const char *h = d.cfg.listen;
    if (hostlen >= 2 && h[0] == '[' && h[hostlen - 1] == ']') {
        h++;
        hostlen -= 2;
    }
    if (hostlen == 0) {
        snprintf(host, sizeof host, "0.0.0.0");
    } else {
        snprintf(host, sizeof host, "%.*s", (int)hostlen, h);
    }
    /* protected mode (as Redis's): beyond loopback, anyone who reaches the port could move or
     * delete every partition; without a secret that takes --insecure */
    if (!shardz__host_is_loopback(host) && !d.cfg.secret[0] && !d.cfg.insecure) {
        fprintf(stderr,
                "shardzd: refusing to listen on %s without a secret: anyone who reaches it could "
                "move or delete every partition. Set one (SHARDZ_SECRET, or secret= in a "
                "--config file) or, on a network you trust, pass --insecure\n",
                d.cfg.listen);
        return 2;
    }

    if (fd_budget(&d.cfg) != 0) {
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* one out-of-memory policy: jansson allocates through it too, so a failed json_pack
     * aborts instead of leaving part of a message or record out */
    json_set_alloc_funcs(szd_xmalloc, free);
    int status = 1;
    struct event *sigterm = NULL, *sigint = NULL, *loop_hold = NULL;
    char errbuf[512] = "";
    shardz_store *keeper_store = NULL; /* etcd: the lease keeper's handle until it takes it */
    shardz_store *follow_store = NULL; /* etcd: the follow lane's handle until it takes it */
    shardz_store_options so = {.sync = d.cfg.sync, .errbuf = errbuf, .errbuf_size = sizeof errbuf};
    if (!d.cfg.advertise[0]) {
        snprintf(d.cfg.advertise, sizeof d.cfg.advertise, "%s", d.cfg.listen);
    }
    if (!d.cfg.id[0]) {
        snprintf(d.cfg.id, sizeof d.cfg.id, "%s", d.cfg.advertise);
    }
    int rc;
    if (d.cfg.store[0]) {
        /* etcd://H:P[,H:P...][/PREFIX] -> http://H:P[,http://H:P...] and /PREFIX/ */
        char endpoint[8 * sizeof d.cfg.store], prefix[sizeof d.cfg.store + 2];
        const char *hp = d.cfg.store + 7, *slash = strchr(hp, '/');
        size_t hlen = slash ? (size_t)(slash - hp) : strlen(hp), w = 0;
        for (size_t i = 0; i < hlen; i++) {
            if (i == 0 || hp[i - 1] == ',') {
                w += (size_t)snprintf(endpoint + w, sizeof endpoint - w, "http://");
            }
            endpoint[w++] = hp[i];
        }
        endpoint[w] = 0;
        if (slash && slash[1]) {
            snprintf(prefix, sizeof prefix, "%.*s%s", (int)strnlen(slash, SZD_ADDR_MAX), slash,
                     slash[strlen(slash) - 1] == '/' ? "" : "/");
        } else {
            snprintf(prefix, sizeof prefix, "/shardz/");
        }
        rc = shardz_store_open_etcd(endpoint, prefix, &so, &d.store);
        if (rc == 0) { /* the role loop's own handle: the store lane owns the other */
            rc = shardz_store_open_etcd(endpoint, prefix, &so, &d.ha_store);
        }
        if (rc == 0) { /* and the lease keeper's (its own thread) */
            rc = shardz_store_open_etcd(endpoint, prefix, &so, &keeper_store);
        }
        if (rc == 0) { /* and the follow lane's (its own thread) */
            rc = shardz_store_open_etcd(endpoint, prefix, &so, &follow_store);
        }
        if (rc) {
            shardz_store_close(d.store);
            shardz_store_close(d.ha_store);
            shardz_store_close(keeper_store);
            fprintf(stderr, "shardzd: cannot open the store at %s: %s (%s)\n", endpoint,
                    shardz_strerror(rc), errbuf);
            return 1;
        }
    } else {
        rc = d.cfg.memory ? shardz_store_open_memory(&so, &d.store)
                          : shardz_store_open_sqlite(d.cfg.data, &so, &d.store);
        if (rc) {
            fprintf(stderr, "shardzd: cannot open the store in %s: %s (%s)\n",
                    d.cfg.memory ? "memory" : d.cfg.data, shardz_strerror(rc), errbuf);
            return 1;
        }
    }
    d.base = event_base_new();
    d.http = d.base ? evhttp_new(d.base) : NULL;
    if (!d.http) {
        fprintf(stderr, "shardzd: out of memory\n");
        goto out;
    }
    d.started_ms = szd_now(&d);
    /* the store lane owns the store handle from now on; the health lane comes before loading,
     * which registers every node with it */
    rc = szd_sl_start(d.store, d.clock_ms, d.cfg.log_level, &d.sl);
    if (rc) {
        fprintf(stderr, "shardzd: cannot start the store lane: %s\n", shardz_strerror(rc));
        goto out;
    }
    d.sl_done =
        event_new(d.base, szd_sl_done_fd(d.sl), EV_READ | EV_PERSIST, szd_store_on_done, &d);
    if (!d.sl_done || event_add(d.sl_done, NULL) != 0) {
        fprintf(stderr, "shardzd: out of memory\n");
        goto out;
    }
    rc = szd_hl_start(d.cfg.secret, d.clock_ms, d.cfg.log_level, &d.hl);
    if (rc) {
        fprintf(stderr, "shardzd: cannot start the health lane: %s\n", shardz_strerror(rc));
        goto out;
    }
    d.hl_reports =
        event_new(d.base, szd_hl_report_fd(d.hl), EV_READ | EV_PERSIST, szd_health_on_reports, &d);
    if (!d.hl_reports || event_add(d.hl_reports, NULL) != 0) {
        fprintf(stderr, "shardzd: out of memory\n");
        goto out;
    }
    rc = d.cfg.store[0] ? szd_ha_start(&d, keeper_store, follow_store) : szd_ns_load_all(&d);
    keeper_store = follow_store = NULL; /* taken */
    if (rc) {
        fprintf(stderr, "shardzd: cannot load the state: %s\n", shardz_strerror(rc));
        goto out;
    }
    if (!d.cfg.store[0]) {
        d.ha.term = 1; /* the only coordinator: one leadership, always acting */
        szd_hl_set_acting_until(d.hl, INT64_MAX, d.ha.term);
    }
    /* libevent refuses bodies past the bulk limit (and 1 MiB more) itself, with a bare 413;
     * up to that, each route answers the JSON 413 of szd_read_body over its own limit */
    evhttp_set_max_body_size(d.http, SZD_MAX_BULK_BODY + SZD_MAX_BODY);
    evhttp_set_max_headers_size(d.http, 16 * 1024);
    evhttp_set_timeout(d.http, 330);
    /* every method reaches the route table, which answers a JSON 400 (method not allowed
     * on a known path) or 404 (no such route) rather than libevent's 501 page */
    evhttp_set_allowed_methods(d.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
                                           EVHTTP_REQ_PUT | EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS |
                                           EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
                                           EVHTTP_REQ_PATCH);
    evhttp_set_gencb(d.http, szd_api_handle, &d);
    struct evhttp_bound_socket *bound =
        evhttp_bind_socket_with_handle(d.http, host, (ev_uint16_t)port);
    if (!bound) {
        fprintf(stderr, "shardzd: cannot listen on %s: %s\n", d.cfg.listen, strerror(errno));
        goto out;
    }
    if (szd_conns_start(&d, evhttp_bound_socket_get_listener(bound), d.cfg.max_connections,
                        &d.conns) != 0) {
        fprintf(stderr, "shardzd: out of memory\n");
        goto out;
    }
    if (getenv("SHARDZ_TEST_LOOP_HOLD")) { /* tests only: a loop held as a long request would */
        loop_hold = event_new(d.base, -1, EV_PERSIST, on_loop_hold, &d);
        struct timeval tv = {0, 50 * 1000};
        if (!loop_hold || event_add(loop_hold, &tv) != 0) {
            goto out;
        }
    }
    sigterm = evsignal_new(d.base, SIGTERM, on_signal, &d);
    sigint = evsignal_new(d.base, SIGINT, on_signal, &d);
    if (!sigterm || !sigint) {
        goto out;
    }
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);
    d.ready = true;
    shardz_store_status st = {0};
    szd_store_status(&d, &st);
    szd_log(&d, SZD_INFO,
            "msg=\"listening\" listen=%s store=%s fsync=%s namespaces=%u id=%s role=%s "
            "max_connections=%zu",
            d.cfg.listen, st.backend, shardz_store_sync_name(st.sync), d.nns, d.cfg.id,
            szd_role_name(d.ha.role), d.cfg.max_connections);
    event_base_dispatch(d.base);
    status = 0;
out:
    for (uint32_t i = 0; i < d.nns && d.sl; i++) {
        if (status == 0 && szd_acting(&d)) {
            szd_ns_flush_stats(d.ns[i], true);
        }
    }
    /* the writes queued finish (a leader's before its lease is given back), their
     * completions run while the namespaces still exist */
    szd_sl_stop(d.sl);
    d.sl = NULL;
    if (d.sl_done) {
        event_free(d.sl_done);
    }
    szd_ha_stop(&d);
    szd_push_farewells_free(&d);
    szd_ns_free_all(&d);
    free(d.ns);
    if (d.hl_reports) {
        event_free(d.hl_reports);
    }
    szd_hl_stop(d.hl); /* after the namespaces: freeing them posts to it */
    if (sigterm) {
        event_free(sigterm);
    }
    if (loop_hold) {
        event_free(loop_hold);
    }
    if (sigint) {
        event_free(sigint);
    }
    szd_conns_stop(d.conns); /* evhttp_free frees the listener, then closes every client */
    if (d.http) {
        evhttp_free(d.http);
    }
    szd_conns_free(d.conns);
    if (d.base) {
        event_base_free(d.base);
    }
    shardz_store_close(d.store);
    shardz_store_close(d.ha_store);
    shardz_store_close(keeper_store);
    shardz_store_close(follow_store);
    return status;
}
