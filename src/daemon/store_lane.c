/* The store lane (store_lane.h): one thread owns the store handle and runs the loop's writes
 * and calls in order. Completions of batches go back through a queue and a pipe; synchronous
 * calls wait on a condition variable. After a failed write, every batch the loop queued
 * before it learned of the failure is not written (SHARDZ_ESTALE): the loop marks its records
 * dirty again and writes them with the next batch, so a batch never proves durable a state
 * whose earlier records are not. Lane thread, except the szd_sl_* calls (loop thread). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "daemon/oom.h"
#include "daemon/log.h"
#include "daemon/store_lane.h"
#include "daemon/testhook.h"
#include "daemon/wire.h"

/* ---- batches ------------------------------------------------------------------------- */

struct szd_batch {
    shardz_op *ops;
    char **bufs; /* 2 per op: key and value (NULL for a delete), owned */
    size_t n, cap;
};

szd_batch *szd_batch_new(void)
{
    return calloc(1, sizeof(szd_batch));
}

static int batch_add(szd_batch *b, shardz_op_type type, char *key, char *value, size_t vlen)
{
    if (!b || !key || (type == SHARDZ_OP_PUT && !value)) {
        goto fail;
    }
    if (b->n == b->cap) {
        size_t ncap = b->cap ? 2 * b->cap : 64;
        shardz_op *no = realloc(b->ops, ncap * sizeof *no);
        if (!no) {
            goto fail;
        }
        b->ops = no;
        char **nb = realloc(b->bufs, 2 * ncap * sizeof *nb);
        if (!nb) {
            goto fail;
        }
        b->bufs = nb;
        b->cap = ncap;
    }
    b->ops[b->n] = (shardz_op){type, key, strlen(key), value, value ? vlen : 0, 0};
    b->bufs[2 * b->n] = key;
    b->bufs[2 * b->n + 1] = value;
    b->n++;
    return 0;
fail:
    free(key);
    free(value);
    return SHARDZ_ENOMEM;
}

int szd_batch_put(szd_batch *b, char *key, char *value)
{
    return batch_add(b, SHARDZ_OP_PUT, key, value, value ? strlen(value) : 0);
}

int szd_batch_put_n(szd_batch *b, char *key, char *value, size_t vlen)
{
    return batch_add(b, SHARDZ_OP_PUT, key, value, vlen);
}

int szd_batch_delete(szd_batch *b, char *key)
{
    return batch_add(b, SHARDZ_OP_DELETE, key, NULL, 0);
}

size_t szd_batch_count(const szd_batch *b)
{
    return b ? b->n : 0;
}

void szd_batch_free(szd_batch *b)
{
    if (!b) {
        return;
    }
    for (size_t i = 0; i < 2 * b->n; i++) {
        free(b->bufs[i]);
    }
    free(b->bufs);
    free(b->ops);
    free(b);
}

/* ---- the lane ------------------------------------------------------------------------ */

struct szd_sl_durable {
    uint64_t seq;
};

uint64_t szd_sl_durable_seq(const szd_sl_durable *p)
{
    return p->seq;
}

typedef enum { JOB_WRITE = 0, JOB_CALL, JOB_STOP } job_kind;

typedef struct job {
    struct job *next;
    job_kind kind;
    bool sync;        /* the loop waits for it (finished under mu) */
    uint64_t seq;     /* JOB_WRITE (async): its batch's number */
    uint64_t epoch;   /* the failures the loop knew of when it queued this */
    szd_batch *batch; /* JOB_WRITE: owned when async, borrowed when sync */
    void *msgs;       /* async: handed back with the completion */
    szd_sl_done_fn done;
    void *arg;
    int (*fn)(shardz_store *st, void *arg); /* JOB_CALL */
    void *fnarg;
    /* the outcome */
    bool finished;
    int rc;
    char errmsg[256];
    int64_t revision;
    int64_t write_ms;
} job;

/* The pieces SHARDZ_TEST_CRASH_PIECES counts (lane thread only). */
typedef struct {
    long count;
} test_pieces;

struct szd_sl {
    pthread_t thread;
    bool started;
    shardz_store *st; /* the lane thread's once started */
    int64_t (*clock_ms)(void);
    int log_level;
    pthread_mutex_t mu;
    pthread_cond_t work, finished;
    job *q_head, *q_tail;       /* under mu: to run */
    job *d_head, *d_tail;       /* under mu: async jobs run, completions to dispatch */
    bool done_signalled;        /* under mu */
    size_t queued;              /* under mu: async jobs not yet dispatched */
    szd_sl_counts counts;       /* under mu: what the lane wrote */
    uint64_t epoch;             /* under mu: write failures so far */
    shardz_store_status status; /* under mu */
    int done_pipe[2];
    /* loop thread only */
    bool stopped; /* the thread is gone: the caller owns the handle, calls run inline */
    uint64_t next_seq;
    uint64_t loop_epoch; /* the failures the loop has learned of */
    test_pieces pieces;  /* lane thread: the crash hook's count */
};

static int64_t now_ms(const szd_sl *sl)
{
    if (sl->clock_ms) {
        return sl->clock_ms();
    }
    return shardz__boot_ms(); /* CLOCK_BOOTTIME: it counts a suspend too */
}

/* Test hooks (testhook.h): SHARDZ_TEST_STORE_HOLD=<path> holds every store write while that
 * file exists, as a stalled disk or etcd would (the health lane keeps pinging, no push leaves
 * before its batch is durable); SHARDZ_TEST_STORE_FAIL=<path> fails every store write
 * (SHARDZ_EIO, nothing written) while it exists (no route answers 2xx for a change that is not
 * durable). Tests only. */
/* Test hook: SHARDZ_TEST_CRASH_PIECES=<path>. While that file exists and holds a number N, a
 * batch on a backend that writes in pieces (etcd) is written piece by piece
 * (SHARDZ_STORE_MAX_TXN_OPS operations each, as shardz_store_write_batch cuts it) and the daemon
 * kills itself with SIGKILL once N pieces have committed since the file appeared: a crash
 * between two transactions of one write. Other backends write a batch as one piece. Tests
 * only; returns the write's result when the hook is off (*used false). */
static int crash_pieces_write(szd_sl *sl, const szd_batch *b, int64_t *rev, bool *used)
{
    *used = false;
    const char *path = getenv("SHARDZ_TEST_CRASH_PIECES");
    FILE *f = path ? fopen(path, "r") : NULL;
    long want = 0;
    if (!f) {
        sl->pieces.count = 0; /* counted from the file's appearance */
        return 0;
    }
    bool got = fscanf(f, "%ld", &want) == 1;
    fclose(f);
    if (!got || want < 1) {
        return 0;
    }
    *used = true;
    bool whole = strcmp(sl->status.backend ? sl->status.backend : "", "etcd") != 0;
    size_t step = whole ? b->n : SHARDZ_STORE_MAX_TXN_OPS;
    int rc = 0;
    for (size_t at = 0; at < b->n && rc == 0; at += step) {
        size_t k = b->n - at < step ? b->n - at : step;
        rc = shardz_store_write_batch(sl->st, NULL, 0, b->ops + at, k, NULL, rev, NULL);
        if (rc == 0 && ++sl->pieces.count >= want) {
            szd_log_at(sl->log_level, SZD_WARN,
                       "msg=\"test crash: killed after a store piece\" pieces=%ld", want);
            raise(SIGKILL);
        }
    }
    return rc;
}

static void run_write(szd_sl *sl, job *j)
{
    szd_test_hold("SHARDZ_TEST_STORE_HOLD", "store write", sl->clock_ms, sl->log_level);
    int64_t t0 = now_ms(sl), rev = 0;
    j->rc = 0;
    if (j->batch && j->batch->n > 0 && szd_test_file("SHARDZ_TEST_STORE_FAIL")) {
        j->rc = SHARDZ_EIO;
        szd_log_at(sl->log_level, SZD_WARN, "msg=\"test fail: store write failed\"");
    } else if (j->batch && j->batch->n > 0) {
        bool hooked = false;
        j->rc = crash_pieces_write(sl, j->batch, &rev, &hooked);
        if (!hooked) {
            j->rc = shardz_store_write_batch(sl->st, NULL, 0, j->batch->ops, j->batch->n, NULL,
                                             &rev, NULL); /* one commit on SQLite; etcd: pieces */
        }
    }
    j->write_ms = now_ms(sl) - t0;
    j->revision = rev;
    if (j->rc == 0 && j->batch && j->batch->n > 0) {
        uint64_t bytes = 0;
        for (size_t i = 0; i < j->batch->n; i++) {
            bytes += j->batch->ops[i].key_len + j->batch->ops[i].value_len;
        }
        pthread_mutex_lock(&sl->mu);
        sl->counts.batches++;
        sl->counts.records += j->batch->n;
        sl->counts.bytes += bytes;
        pthread_mutex_unlock(&sl->mu);
    }
    snprintf(j->errmsg, sizeof j->errmsg, "%s", j->rc ? shardz_store_errmsg(sl->st) : "");
}

static void run_job(szd_sl *sl, job *j)
{
    if (j->kind == JOB_WRITE) {
        run_write(sl, j);
    } else {
        j->rc = j->fn(sl->st, j->fnarg);
        snprintf(j->errmsg, sizeof j->errmsg, "%s", j->rc ? shardz_store_errmsg(sl->st) : "");
    }
}

static void *lane_main(void *arg)
{
    szd_sl *sl = arg;
    for (;;) {
        pthread_mutex_lock(&sl->mu);
        while (!sl->q_head) {
            pthread_cond_wait(&sl->work, &sl->mu);
        }
        job *j = sl->q_head;
        sl->q_head = j->next;
        if (!sl->q_head) {
            sl->q_tail = NULL;
        }
        j->next = NULL;
        bool stale = j->kind == JOB_WRITE && !j->sync && j->epoch < sl->epoch;
        pthread_mutex_unlock(&sl->mu);
        if (j->kind == JOB_STOP) {
            free(j);
            return NULL;
        }
        if (stale) {
            j->rc = SHARDZ_ESTALE; /* an earlier batch failed: written again later */
            snprintf(j->errmsg, sizeof j->errmsg, "an earlier batch failed");
        } else {
            run_job(sl, j);
        }
        pthread_mutex_lock(&sl->mu);
        if (j->kind == JOB_WRITE && j->rc == 0 && j->revision > 0) {
            sl->status.revision = j->revision;
        }
        if (j->kind == JOB_WRITE && !j->sync && j->rc != 0 && !stale) {
            sl->epoch++;
        }
        j->epoch = sl->epoch; /* what the loop learns of with this completion */
        bool signal = false;
        if (j->sync) {
            j->finished = true;
            pthread_cond_broadcast(&sl->finished);
        } else {
            if (sl->d_tail) {
                sl->d_tail->next = j;
            } else {
                sl->d_head = j;
            }
            sl->d_tail = j;
            signal = !sl->done_signalled;
            sl->done_signalled = true;
        }
        pthread_mutex_unlock(&sl->mu);
        if (signal) {
            char b = 1;
            while (write(sl->done_pipe[1], &b, 1) < 0 && errno == EINTR) {
                ;
            }
        }
    }
}

static void enqueue(szd_sl *sl, job *j)
{
    pthread_mutex_lock(&sl->mu);
    if (sl->q_tail) {
        sl->q_tail->next = j;
    } else {
        sl->q_head = j;
    }
    sl->q_tail = j;
    if (!j->sync && j->kind == JOB_WRITE) {
        sl->queued++;
    }
    pthread_cond_signal(&sl->work);
    pthread_mutex_unlock(&sl->mu);
}

static job *job_new(job_kind kind)
{
    job *j = szd_xcalloc(1, sizeof *j);
    j->kind = kind;
    return j;
}

uint64_t szd_sl_submit(szd_sl *sl, szd_batch *b, void *msgs, szd_sl_done_fn done, void *arg)
{
    job *j = job_new(JOB_WRITE);
    j->seq = ++sl->next_seq;
    j->epoch = sl->loop_epoch;
    j->batch = b;
    j->msgs = msgs;
    j->done = done;
    j->arg = arg;
    enqueue(sl, j);
    return j->seq;
}

/* Queues j (sync) and waits until the lane finished it. */
static void run_sync(szd_sl *sl, job *j)
{
    j->sync = true;
    if (sl->stopped) { /* a completion run while stopping asks for more: done here */
        run_job(sl, j);
        return;
    }
    enqueue(sl, j);
    pthread_mutex_lock(&sl->mu);
    while (!j->finished) {
        pthread_cond_wait(&sl->finished, &sl->mu);
    }
    pthread_mutex_unlock(&sl->mu);
}

int szd_sl_call(szd_sl *sl, int (*fn)(shardz_store *st, void *arg), void *arg)
{
    job *j = job_new(JOB_CALL);
    j->fn = fn;
    j->fnarg = arg;
    run_sync(sl, j);
    int rc = j->rc;
    free(j);
    return rc;
}

int szd_sl_write(szd_sl *sl, const szd_batch *b, char *errmsg, size_t errlen, int64_t *revision)
{
    job *j = job_new(JOB_WRITE);
    j->batch = (szd_batch *)b; /* borrowed: a sync job never frees it */
    run_sync(sl, j);
    int rc = j->rc;
    if (errmsg && errlen) {
        snprintf(errmsg, errlen, "%s", j->errmsg);
    }
    if (revision) {
        *revision = j->revision;
    }
    free(j);
    return rc;
}

static int set_guard(shardz_store *st, void *arg)
{
    return shardz_store_set_guard(st, arg);
}

int szd_sl_set_guard(szd_sl *sl, const shardz_compare *g)
{
    return szd_sl_call(sl, set_guard, (void *)g);
}

void szd_sl_status(szd_sl *sl, shardz_store_status *out)
{
    pthread_mutex_lock(&sl->mu);
    *out = sl->status;
    pthread_mutex_unlock(&sl->mu);
}

size_t szd_sl_queued(szd_sl *sl)
{
    pthread_mutex_lock(&sl->mu);
    size_t n = sl->queued;
    pthread_mutex_unlock(&sl->mu);
    return n;
}

szd_sl_counts szd_sl_counts_get(szd_sl *sl)
{
    pthread_mutex_lock(&sl->mu);
    szd_sl_counts c = sl->counts;
    pthread_mutex_unlock(&sl->mu);
    return c;
}

int szd_sl_done_fd(const szd_sl *sl)
{
    return sl->done_pipe[0];
}

void szd_sl_dispatch(szd_sl *sl)
{
    char buf[64];
    while (read(sl->done_pipe[0], buf, sizeof buf) > 0) {
        ;
    }
    pthread_mutex_lock(&sl->mu);
    job *j = sl->d_head;
    sl->d_head = sl->d_tail = NULL;
    sl->done_signalled = false;
    pthread_mutex_unlock(&sl->mu);
    while (j) {
        job *next = j->next;
        /* the proof: this batch is durable, and no batch the loop queued before it failed
         * unseen (those after a failure are not written: SHARDZ_ESTALE) */
        szd_sl_durable proof = {j->seq};
        szd_sl_result r = {.seq = j->seq,
                           .rc = j->rc,
                           .errmsg = j->errmsg,
                           .durable = j->rc == 0 ? &proof : NULL,
                           .write_ms = j->write_ms};
        if (j->rc != 0 && j->epoch > sl->loop_epoch) {
            sl->loop_epoch = j->epoch; /* batches queued from now on carry what failed */
        }
        if (j->done) {
            j->done(j->arg, &r, j->msgs);
        }
        szd_batch_free(j->batch);
        free(j);
        pthread_mutex_lock(&sl->mu);
        sl->queued--;
        pthread_mutex_unlock(&sl->mu);
        j = next;
    }
}

int szd_sl_start(shardz_store *store, int64_t (*clock_ms)(void), int log_level, szd_sl **out)
{
    szd_sl *sl = calloc(1, sizeof *sl);
    if (!sl) {
        return SHARDZ_ENOMEM;
    }
    sl->st = store;
    sl->clock_ms = clock_ms;
    sl->log_level = log_level;
    sl->done_pipe[0] = sl->done_pipe[1] = -1;
    pthread_mutex_init(&sl->mu, NULL);
    pthread_cond_init(&sl->work, NULL);
    pthread_cond_init(&sl->finished, NULL);
    (void)shardz_store_status_get(store, &sl->status); /* before the thread: no race */
    if (szd_pipe_open(sl->done_pipe) != 0 ||
        pthread_create(&sl->thread, NULL, lane_main, sl) != 0) {
        szd_sl_stop(sl);
        return SHARDZ_EIO;
    }
    sl->started = true;
    *out = sl;
    return 0;
}

void szd_sl_stop(szd_sl *sl)
{
    if (!sl) {
        return;
    }
    if (sl->started) {
        enqueue(sl, job_new(JOB_STOP));
        pthread_join(sl->thread, NULL);
        sl->stopped = true;
        szd_sl_dispatch(sl); /* completions of what ran before the stop */
    }
    for (job *j = sl->q_head; j;) { /* nothing is queued after a stop; defensive */
        job *next = j->next;
        szd_batch_free(j->sync ? NULL : j->batch);
        free(j);
        j = next;
    }
    for (int i = 0; i < 2; i++) {
        if (sl->done_pipe[i] >= 0) {
            close(sl->done_pipe[i]);
        }
    }
    pthread_cond_destroy(&sl->work);
    pthread_cond_destroy(&sl->finished);
    pthread_mutex_destroy(&sl->mu);
    free(sl);
}
