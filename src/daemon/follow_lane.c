/* The follow lane (follow_lane.h): a thread that owns a store handle and, as the loop asks,
 * follows the change feed with one watch stream or reads everything, queueing what it read for
 * the loop. The queue and the request are under one lock; a request bumps a generation, and
 * whatever an older request reads is dropped. Its own thread; the calls: the loop's. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/follow_lane.h"
#include "daemon/testhook.h"
#include "daemon/wire.h"

typedef enum { REQ_IDLE, REQ_FOLLOW, REQ_LOAD } req_kind;

typedef struct fl_node {
    struct fl_node *next;
    szd_fl_item it;
    size_t bytes;
} fl_node;

struct szd_fl {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a request changed, room in the queue, or stop */
    shardz_store *st;  /* owned; the lane's thread only once it runs */
    szd_fl_read_fn read;
    szd_fl_free_fn free_pages;
    size_t limit, max_bytes;
    int wake[2]; /* the lane writes a byte when the queue turns non-empty */
    bool started;
    /* under mu */
    bool stop;
    uint64_t gen; /* bumped by every request */
    req_kind req;
    int64_t since;
    fl_node *head, *tail;
    size_t bytes;
};

static void item_free(szd_fl *fl, szd_fl_item *it)
{
    shardz_changes_free(it->changes);
    if (it->pages) {
        fl->free_pages(it->pages);
    }
    it->changes = NULL;
    it->pages = NULL;
}

/* Under mu: drops the queue. */
static void drop_locked(szd_fl *fl)
{
    while (fl->head) {
        fl_node *n = fl->head;
        fl->head = n->next;
        item_free(fl, &n->it);
        free(n);
    }
    fl->tail = NULL;
    fl->bytes = 0;
}

/* Under mu: queues it (taken) when gen is still the request's; else frees it. */
static void push_locked(szd_fl *fl, uint64_t gen, szd_fl_item *it, size_t bytes)
{
    fl_node *n = gen == fl->gen && !fl->stop ? calloc(1, sizeof *n) : NULL;
    if (!n) {
        item_free(fl, it);
        return;
    }
    n->it = *it;
    n->bytes = bytes;
    bool was_empty = fl->head == NULL;
    if (fl->tail) {
        fl->tail->next = n;
    } else {
        fl->head = n;
    }
    fl->tail = n;
    fl->bytes += bytes;
    if (was_empty) {
        char b = 1;
        while (write(fl->wake[1], &b, 1) < 0 && errno == EINTR) {
        }
    }
}

typedef struct {
    szd_fl *fl;
    uint64_t gen;
} stream_arg;

static int still_wanted_locked(const szd_fl *fl, uint64_t gen)
{
    return !fl->stop && fl->gen == gen;
}

/* The stream's poll: stop when the request changed (or, as a test hook, fail). */
static int on_poll(void *arg)
{
    stream_arg *a = arg;
    if (szd_test_file("SHARDZ_TEST_CHANGES_FAIL")) {
        return SHARDZ_EIO;
    }
    pthread_mutex_lock(&a->fl->mu);
    int rc = still_wanted_locked(a->fl, a->gen) ? 0 : SHARDZ_ESTALE;
    pthread_mutex_unlock(&a->fl->mu);
    return rc;
}

/* The stream's delivery: queued, after waiting for room (the stream then waits too, and etcd
 * holds the rest). */
static int on_changes(void *arg, shardz_changes *c)
{
    stream_arg *a = arg;
    szd_fl *fl = a->fl;
    size_t bytes = sizeof *c;
    for (size_t i = 0; i < c->count; i++) {
        bytes += c->events[i].kv.key_len + c->events[i].kv.value_len;
    }
    pthread_mutex_lock(&fl->mu);
    while (still_wanted_locked(fl, a->gen) && fl->head && fl->bytes + bytes > fl->max_bytes) {
        pthread_cond_wait(&fl->cv, &fl->mu);
    }
    int rc = still_wanted_locked(fl, a->gen) ? 0 : SHARDZ_ESTALE;
    szd_fl_item it = {.kind = SZD_FL_CHANGES, .changes = c};
    push_locked(fl, a->gen, &it, bytes); /* freed when no longer wanted */
    pthread_mutex_unlock(&fl->mu);
    return rc;
}

static void *lane_main(void *arg)
{
    szd_fl *fl = arg;
    pthread_mutex_lock(&fl->mu);
    while (!fl->stop) {
        if (fl->req == REQ_IDLE) {
            pthread_cond_wait(&fl->cv, &fl->mu);
            continue;
        }
        uint64_t gen = fl->gen;
        req_kind req = fl->req;
        int64_t since = fl->since;
        pthread_mutex_unlock(&fl->mu);
        szd_fl_item it = {0};
        int rc;
        if (req == REQ_LOAD) {
            shardz_range **pages = NULL;
            rc = fl->read(fl->st, &pages);
            if (rc == 0) {
                it.kind = SZD_FL_PAGES;
                it.pages = pages;
                it.revision = pages[0] ? pages[0]->revision : 0;
            }
        } else {
            stream_arg a = {fl, gen};
            rc = shardz_store_watch(fl->st, since, fl->limit, on_changes, on_poll, &a);
        }
        pthread_mutex_lock(&fl->mu);
        if (rc == 0 && req == REQ_LOAD) {
            int64_t rev = it.revision;
            push_locked(fl, gen, &it, 0);
            if (fl->gen == gen) { /* the same request goes on: follow from the read */
                fl->req = REQ_FOLLOW;
                fl->since = rev;
            }
        } else if (rc != SHARDZ_ESTALE || fl->gen == gen) {
            it.kind = SZD_FL_ERROR;
            it.rc = rc ? rc : SHARDZ_EIO;
            snprintf(it.err, sizeof it.err, "%s", shardz_store_errmsg(fl->st));
            push_locked(fl, gen, &it, 0);
            if (fl->gen == gen) {
                fl->req = REQ_IDLE; /* the loop decides: again, or a full load */
            }
        }
    }
    pthread_mutex_unlock(&fl->mu);
    return NULL;
}

int szd_fl_start(shardz_store *store, szd_fl_read_fn read, szd_fl_free_fn free_pages, size_t limit,
                 size_t max_bytes, szd_fl **out)
{
    *out = NULL;
    szd_fl *fl = calloc(1, sizeof *fl);
    if (!fl) {
        shardz_store_close(store);
        return SHARDZ_ENOMEM;
    }
    fl->st = store;
    fl->read = read;
    fl->free_pages = free_pages;
    fl->limit = limit;
    fl->max_bytes = max_bytes;
    fl->wake[0] = fl->wake[1] = -1;
    pthread_mutex_init(&fl->mu, NULL);
    pthread_cond_init(&fl->cv, NULL);
    if (szd_pipe_open(fl->wake) != 0 || pthread_create(&fl->thread, NULL, lane_main, fl) != 0) {
        szd_fl_stop(fl);
        return SHARDZ_EIO;
    }
    fl->started = true;
    *out = fl;
    return 0;
}

void szd_fl_stop(szd_fl *fl)
{
    if (!fl) {
        return;
    }
    if (fl->started) {
        pthread_mutex_lock(&fl->mu);
        fl->stop = true;
        pthread_cond_broadcast(&fl->cv);
        pthread_mutex_unlock(&fl->mu);
        pthread_join(fl->thread, NULL);
    }
    drop_locked(fl); /* the thread is gone */
    shardz_store_close(fl->st);
    for (int i = 0; i < 2; i++) {
        if (fl->wake[i] >= 0) {
            close(fl->wake[i]);
        }
    }
    pthread_cond_destroy(&fl->cv);
    pthread_mutex_destroy(&fl->mu);
    free(fl);
}

int szd_fl_fd(const szd_fl *fl)
{
    return fl->wake[0];
}

static void request(szd_fl *fl, req_kind req, int64_t since)
{
    pthread_mutex_lock(&fl->mu);
    drop_locked(fl);
    fl->gen++;
    fl->req = req;
    fl->since = since;
    pthread_cond_broadcast(&fl->cv);
    pthread_mutex_unlock(&fl->mu);
}

void szd_fl_follow(szd_fl *fl, int64_t since)
{
    request(fl, REQ_FOLLOW, since);
}

void szd_fl_load(szd_fl *fl)
{
    request(fl, REQ_LOAD, 0);
}

void szd_fl_pause(szd_fl *fl)
{
    request(fl, REQ_IDLE, 0);
}

bool szd_fl_take(szd_fl *fl, szd_fl_item *out)
{
    char buf[64];
    while (read(fl->wake[0], buf, sizeof buf) > 0) {
    }
    pthread_mutex_lock(&fl->mu);
    fl_node *n = fl->head;
    if (n) {
        fl->head = n->next;
        if (!fl->head) {
            fl->tail = NULL;
        }
        fl->bytes -= n->bytes;
        pthread_cond_broadcast(&fl->cv); /* room for the stream */
    }
    pthread_mutex_unlock(&fl->mu);
    if (!n) {
        return false;
    }
    *out = n->it;
    free(n);
    return true;
}

size_t szd_fl_queued_bytes(szd_fl *fl)
{
    pthread_mutex_lock(&fl->mu);
    size_t b = fl->bytes;
    pthread_mutex_unlock(&fl->mu);
    return b;
}
