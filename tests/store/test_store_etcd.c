/* The store conformance suite on the etcd backend, against real etcd processes this test starts
 * itself (Debian's etcd-server, installed by scripts/install-deps.sh): a fresh single-member etcd
 * on free loopback ports for every fresh store directory (revisions are etcd's, so every test
 * needs an etcd of its own), stopped by its process id. Then what only etcd has: an unreachable
 * endpoint named in the error, and two prefixes sharing one etcd without seeing each other.
 * A missing /usr/bin/etcd fails the test; it never skips. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conformance.h"
#include "shardz/store.h"
#include "store/store_int.h"

#ifndef ETCD_BIN
#define ETCD_BIN "/usr/bin/etcd"
#endif

/* The etcd serving the store directory `dir` (one at a time). */
static struct {
    pid_t pid;
    char *dir;    /* the store directory it belongs to */
    char *data;   /* its own data directory */
    char url[64]; /* client URL */
} cur;

static int free_port(void)
{
    struct sockaddr_in a = {0};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    assert_true(fd >= 0);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void etcd_stop(void)
{
    if (cur.pid > 0) {
        kill(cur.pid, SIGTERM);
        waitpid(cur.pid, NULL, 0);
    }
    cur.pid = 0;
    tmpdir_remove(cur.data);
    cur.data = NULL;
    free(cur.dir);
    cur.dir = NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* Starts a fresh etcd and waits until it answers. */
static void etcd_start(const char *dir)
{
    char peer[64], cluster[96], logpath[512];
    int cport = free_port(), pport = free_port(), i;
    shardz_store *st = NULL;

    if (access(ETCD_BIN, X_OK) != 0) {
        fail_msg("%s is missing: install etcd-server (scripts/install-deps.sh)", ETCD_BIN);
    }
    etcd_stop();
    cur.data = tmpdir_make();
    cur.dir = strdup(dir);
    snprintf(cur.url, sizeof cur.url, "http://127.0.0.1:%d", cport);
    snprintf(peer, sizeof peer, "http://127.0.0.1:%d", pport);
    snprintf(cluster, sizeof cluster, "default=%s", peer);
    snprintf(logpath, sizeof logpath, "%s/etcd.log", cur.data);
    cur.pid = fork();
    assert_true(cur.pid >= 0);
    if (cur.pid == 0) {
        char datadir[512];
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        snprintf(datadir, sizeof datadir, "%s/data", cur.data);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl(ETCD_BIN, ETCD_BIN, "--name", "default", "--data-dir", datadir,
              "--listen-client-urls", cur.url, "--advertise-client-urls", cur.url,
              "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
              "--initial-cluster", cluster, "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    for (i = 0; i < 200; i++) {
        if (shardz_store_open_etcd(cur.url, "/shardz/", NULL, &st) == 0) {
            shardz_store_close(st);
            return;
        }
        if (waitpid(cur.pid, NULL, WNOHANG) == cur.pid) {
            cur.pid = 0;
            fail_msg("etcd exited at start; see %s", logpath);
        }
        sleep_ms(50);
    }
    fail_msg("etcd did not answer at %s within 10 s; see %s", cur.url, logpath);
}

static int open_etcd(const char *dir, const shardz_store_options *opt, shardz_store **out)
{
    if (opt && opt->history < 0) { /* refused before any connection */
        return shardz_store_open_etcd("http://127.0.0.1:1", "/shardz/", opt, out);
    }
    if (!cur.dir || strcmp(cur.dir, dir) != 0) {
        etcd_start(dir);
    }
    return shardz_store_open_etcd(cur.url, "/shardz/", opt, out);
}

/* ---- etcd only ---- */

static void test_unreachable_names_endpoint(void **state)
{
    char err[256] = "";
    shardz_store_options opt = {.errbuf = err, .errbuf_size = sizeof err};
    shardz_store *st = NULL;
    char url[64];

    (void)state;
    snprintf(url, sizeof url, "http://127.0.0.1:%d", free_port());
    assert_int_equal(shardz_store_open_etcd(url, "/x/", &opt, &st), SHARDZ_EIO);
    assert_null(st);
    assert_non_null(strstr(err, url));
    assert_int_equal(shardz_store_open_etcd("127.0.0.1:2379", "/x/", &opt, &st), SHARDZ_EINVAL);
    assert_int_equal(shardz_store_open_etcd(NULL, "/x/", &opt, &st), SHARDZ_EINVAL);
}

static void test_prefixes_apart(void **state)
{
    char *dir = tmpdir_make();
    shardz_store *a = NULL, *b = NULL;
    shardz_range *r = NULL;
    shardz_kv *kv = NULL;
    size_t deleted = 0;
    int64_t rev = 0;

    (void)state;
    etcd_start(dir);
    assert_int_equal(shardz_store_open_etcd(cur.url, "/one/", NULL, &a), 0);
    assert_int_equal(shardz_store_open_etcd(cur.url, "/one0", NULL, &b), 0);
    assert_int_equal(shardz_store_put(a, "k", 1, "a", 1, &rev), 0);
    assert_int_equal(rev, 1);
    assert_int_equal(shardz_store_put(b, "k", 1, "b", 1, &rev), 0);
    assert_int_equal(rev, 2); /* one etcd, one revision sequence */
    assert_int_equal(shardz_store_range(a, NULL, 0, NULL, 0, 0, &r), 0);
    assert_int_equal(r->count, 1);
    assert_string_equal(r->kvs[0].key, "k");
    assert_string_equal(r->kvs[0].value, "a");
    assert_int_equal(r->revision, 2);
    shardz_range_free(r);
    assert_int_equal(shardz_store_delete_prefix(a, "k", 1, &deleted, NULL), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(shardz_store_get(b, "k", 1, &kv, NULL), 0);
    assert_string_equal(kv->value, "b");
    shardz_kv_free(kv);
    /* No prefix: the whole keyspace, keys as etcd holds them. */
    {
        shardz_store *all = NULL;
        shardz_changes *c = NULL;

        assert_int_equal(shardz_store_open_etcd(cur.url, NULL, NULL, &all), 0);
        assert_int_equal(shardz_store_range(all, NULL, 0, NULL, 0, 0, &r), 0);
        assert_int_equal(r->count, 1);
        assert_string_equal(r->kvs[0].key, "/one0k");
        shardz_range_free(r);
        assert_int_equal(shardz_store_changes(all, 0, 0, &c), 0);
        assert_int_equal(c->count, 3);
        assert_int_equal(c->events[2].type, SHARDZ_EVENT_DELETE);
        assert_string_equal(c->events[2].kv.key, "/one/k");
        assert_int_equal(c->events[2].kv.mod_revision, 3);
        shardz_changes_free(c);
        shardz_store_close(all);
    }
    /* Changes seen through a prefix leave out the other prefix's revisions. */
    {
        shardz_changes *c = NULL;

        assert_int_equal(shardz_store_changes(a, 0, 1, &c), 0);
        assert_int_equal(c->count, 1);
        assert_true(c->more);
        shardz_changes_free(c);
        assert_int_equal(shardz_store_changes(a, 1, 0, &c), 0);
        assert_int_equal(c->count, 1);
        assert_int_equal(c->events[0].kv.mod_revision, 3);
        assert_int_equal(c->revision, 3);
        shardz_changes_free(c);
    }
    shardz_store_close(a);
    shardz_store_close(b);
    etcd_stop();
    tmpdir_remove(dir);
}

/* Far behind, the change feed is read a limit at a time (the follower's catch-up): a read
 * stops once it holds the limit (etcd's watch is not read to the end), never inside a revision,
 * and says more exactly when revisions follow; reading on from each answer's last event gives
 * every event once, in order, the other prefix's revisions left out. */
static void test_changes_in_chunks(void **state)
{
    char *dir = tmpdir_make();
    shardz_store *a = NULL, *b = NULL;
    shardz_changes *all = NULL, *c = NULL;
    char key[32], value[600];
    int64_t since = 0;
    size_t seen = 0, reads = 0;

    (void)state;
    etcd_start(dir);
    assert_int_equal(shardz_store_open_etcd(cur.url, "/p/", NULL, &a), 0);
    assert_int_equal(shardz_store_open_etcd(cur.url, "/q/", NULL, &b), 0);
    memset(value, 'v', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    for (int i = 0; i < 1200; i++) {
        snprintf(key, sizeof key, "k%d", i % 97);
        if (i % 3 == 0) { /* another prefix's revision between */
            assert_int_equal(shardz_store_put(b, key, strlen(key), "x", 1, NULL), 0);
        }
        shardz_op o[2] = {{SHARDZ_OP_PUT, key, strlen(key), value, (size_t)(i % 500), 0},
                          {SHARDZ_OP_PUT, "two", 3, "2", 1, 0}};
        /* every tenth revision holds two events */
        assert_int_equal(shardz_store_txn(a, NULL, 0, o, i % 10 == 0 ? 2 : 1, NULL, NULL), 0);
    }
    assert_int_equal(shardz_store_changes(a, 0, 0, &all), 0);
    assert_int_equal(all->count, 1200 + 120);
    assert_false(all->more);
    do {
        assert_int_equal(shardz_store_changes(a, since, 50, &c), 0);
        reads++;
        assert_true(c->count > 0);
        if (c->more) {
            assert_true(c->count >= 50);
            assert_true(c->count <= 51); /* up to the end of the revision that reached it */
        }
        for (size_t i = 0; i < c->count; i++, seen++) {
            assert_true(seen < all->count);
            assert_int_equal(c->events[i].kv.mod_revision, all->events[seen].kv.mod_revision);
            assert_string_equal(c->events[i].kv.key, all->events[seen].kv.key);
            assert_int_equal(c->events[i].kv.value_len, all->events[seen].kv.value_len);
        }
        since = c->events[c->count - 1].kv.mod_revision;
        bool more = c->more;
        shardz_changes_free(c);
        c = NULL;
        if (!more) {
            break;
        }
    } while (reads < 1000);
    assert_int_equal(seen, all->count);
    assert_true(reads >= 1320 / 51);
    shardz_changes_free(all);
    shardz_store_close(a);
    shardz_store_close(b);
    etcd_stop();
    tmpdir_remove(dir);
}

/* ---- one watch stream, following a writer on another handle ---- */

typedef struct {
    const char *url;
    int n; /* revisions to write */
} writer_arg;

static void *writer_main(void *arg)
{
    writer_arg *a = arg;
    shardz_store *w = NULL;
    static char value[120000];
    char key[32];

    memset(value, 'w', sizeof value);
    if (shardz_store_open_etcd(a->url, "/p/", NULL, &w) != 0) {
        return (void *)1;
    }
    for (int i = 0; i < a->n; i++) {
        snprintf(key, sizeof key, "k%d", i % 41);
        /* values up to 120 kB: a burst of revisions is far over etcd's message limit, so the
         * stream arrives in fragments */
        size_t len = (size_t)(i * 7919) % sizeof value;
        if (shardz_store_put(w, key, strlen(key), value, len, NULL) != 0) {
            shardz_store_close(w);
            return (void *)1;
        }
    }
    shardz_store_close(w);
    return NULL;
}

typedef struct {
    int64_t revision, last_event, stop_at;
    size_t count, calls;
    int64_t *revs;
    size_t *lens;
    size_t cap;
} follow_seen;

static int follow_fn(void *arg, shardz_changes *c)
{
    follow_seen *f = arg;
    f->calls++;
    assert_true(c->revision > f->revision);
    for (size_t i = 0; i < c->count; i++) {
        assert_true(c->events[i].kv.mod_revision > f->last_event);
        assert_true(f->count < f->cap);
        f->revs[f->count] = c->events[i].kv.mod_revision;
        f->lens[f->count] = c->events[i].kv.value_len;
        f->count++;
        f->last_event = c->events[i].kv.mod_revision;
    }
    f->revision = c->revision;
    int rc = c->revision >= f->stop_at ? 55 : 0;
    shardz_changes_free(c);
    return rc;
}

static int follow_poll(void *arg)
{
    (void)arg;
    return 0;
}

/* A watch started from revision 0 reads a backlog of 400 large revisions (fragments of etcd's
 * stream), then follows 300 more written meanwhile by another handle on another thread: it
 * hands over every event once, in order, equal to what a changes read gives afterwards, and
 * stops when its callback says so. */
static void test_watch_follows_writer(void **state)
{
    char *dir = tmpdir_make();
    shardz_store *a = NULL;
    shardz_changes *all = NULL;
    pthread_t th;
    void *res = NULL;

    (void)state;
    etcd_start(dir);
    writer_arg first = {cur.url, 400}, second = {cur.url, 300};
    assert_null(writer_main(&first));
    assert_int_equal(shardz_store_open_etcd(cur.url, "/p/", NULL, &a), 0);
    follow_seen f = {.stop_at = 700, .cap = 1000};
    f.revs = calloc(f.cap, sizeof *f.revs);
    f.lens = calloc(f.cap, sizeof *f.lens);
    assert_int_equal(pthread_create(&th, NULL, writer_main, &second), 0);
    assert_int_equal(shardz_store_watch(a, 0, 16, follow_fn, follow_poll, &f), 55);
    assert_int_equal(pthread_join(th, &res), 0);
    assert_null(res);
    assert_int_equal(f.revision, 700);
    assert_int_equal(shardz_store_changes(a, 0, 0, &all), 0);
    assert_int_equal(f.count, all->count);
    assert_int_equal(all->count, 700);
    for (size_t i = 0; i < all->count; i++) {
        assert_int_equal(f.revs[i], all->events[i].kv.mod_revision);
        assert_int_equal(f.lens[i], all->events[i].kv.value_len);
    }
    assert_true(f.calls >= 700 / 16);
    shardz_changes_free(all);
    free(f.revs);
    free(f.lens);
    shardz_store_close(a);
    etcd_stop();
    tmpdir_remove(dir);
}

int main(void)
{
    const store_backend etcd = {
        .name = "etcd",
        .open = open_etcd,
        .default_sync = SHARDZ_STORE_SYNC_FULL,
        .fail_inside = NULL, /* one request per transaction: no failure point inside it */
        .leases = true,
    };
    const struct CMUnitTest own[] = {
        cmocka_unit_test(test_unreachable_names_endpoint),
        cmocka_unit_test(test_prefixes_apart),
        cmocka_unit_test(test_changes_in_chunks),
        cmocka_unit_test(test_watch_follows_writer),
    };
    int failed;

    signal(SIGPIPE, SIG_IGN);
    failed = conformance_run(&etcd);
    etcd_stop();
    failed += cmocka_run_group_tests_name("store: etcd only", own, NULL, NULL);
    etcd_stop();
    return failed;
}
