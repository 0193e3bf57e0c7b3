/* The store lane: one thread owns the daemon's store handle and runs its writes in order
 * (FIFO), reporting each completion back to the loop. A write's messages (the assignment
 * pushes that depend on it) travel with it and come back only when it is durable: the loop can
 * release them only with the proof the lane hands out for a durable batch (szd_sl_durable).
 * The loop never touches the handle itself once the lane runs; it submits batches (async),
 * runs a function on the lane and waits for it (szd_sl_call, for the rare synchronous paths),
 * and reads a status the lane caches. Calls below: loop thread; the lane: its own thread. */
#ifndef SZD_STORE_LANE_H
#define SZD_STORE_LANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shardz/store.h"

typedef struct szd_sl szd_sl;

/* A batch of records to write: puts and deletes, each key at most once. It owns copies of its
 * keys and values. */
typedef struct szd_batch szd_batch;
szd_batch *szd_batch_new(void);
/* Adds a put (key and value taken: malloc'd, freed with the batch; NULL fails). 0 or
 * SHARDZ_ENOMEM (both freed). */
int szd_batch_put(szd_batch *b, char *key, char *value);
/* As szd_batch_put, for a value of vlen bytes (binary: NULs allowed). */
int szd_batch_put_n(szd_batch *b, char *key, char *value, size_t vlen);
/* Adds a delete (key taken). 0 or SHARDZ_ENOMEM. */
int szd_batch_delete(szd_batch *b, char *key);
size_t szd_batch_count(const szd_batch *b);
void szd_batch_free(szd_batch *b);

/* The proof that a batch is durable: only the lane makes one, and only for a batch whose
 * write returned 0 (and every batch before it too: writes run in order). Valid during the
 * completion callback. */
typedef struct szd_sl_durable szd_sl_durable;
/* The sequence number of the batch it proves durable (batches are numbered from 1). */
uint64_t szd_sl_durable_seq(const szd_sl_durable *p);

/* A write's outcome, handed to its completion on the loop thread. */
typedef struct {
    uint64_t seq;                  /* the batch's sequence number */
    int rc;                        /* 0, the store's error, or SHARDZ_ESTALE: not written,
                                    * because a batch before it failed (its records must be
                                    * written again, with the failed ones) */
    const char *errmsg;            /* the store's detail ("" when none) */
    const szd_sl_durable *durable; /* non-NULL only when this batch and every batch before it
                                    * (since the loop last learned of a failure) are durable */
    int64_t write_ms;              /* how long the write took on the lane */
} szd_sl_result;

/* A completion: `msgs` (opaque here; the pushes built from the state the batch persists) is
 * the callback's; it may release them only with r->durable. */
typedef void (*szd_sl_done_fn)(void *arg, const szd_sl_result *r, void *msgs);

/* Starts the lane's thread, which owns `store` from now on (the caller keeps ownership of the
 * handle and closes it after szd_sl_stop). clock_ms as the daemon's. 0, SHARDZ_ENOMEM,
 * SHARDZ_EIO. */
int szd_sl_start(shardz_store *store, int64_t (*clock_ms)(void), int log_level, szd_sl **out);
/* Finishes the writes queued, stops the thread, frees the lane (completions not yet
 * dispatched are called first). Accepts NULL. */
void szd_sl_stop(szd_sl *sl);
/* The fd that becomes readable when completions wait; szd_sl_dispatch calls them. */
int szd_sl_done_fd(const szd_sl *sl);
void szd_sl_dispatch(szd_sl *sl);

/* Queues a batch (taken; NULL or empty: nothing to write, the completion still comes in
 * order, after every batch before it) with its msgs and callback. Returns its sequence
 * number. */
uint64_t szd_sl_submit(szd_sl *sl, szd_batch *b, void *msgs, szd_sl_done_fn done, void *arg);
/* Runs fn(store, arg) on the lane after everything queued before it, and waits for it: the
 * loop blocks meanwhile (the synchronous paths: a write an API reply waits for, a guard
 * change, a read). Returns fn's result. Completions of earlier batches are not called here. */
int szd_sl_call(szd_sl *sl, int (*fn)(shardz_store *st, void *arg), void *arg);
/* Writes b (borrowed) on the lane and waits: 0 or the store's error, its detail in errmsg
 * (may be NULL; errlen bytes). *revision (may be NULL) receives the store revision after it. */
int szd_sl_write(szd_sl *sl, const szd_batch *b, char *errmsg, size_t errlen, int64_t *revision);
/* Sets (NULL: clears) the guard every later write carries (shardz_store_set_guard), in order
 * with the writes. 0 or the store's error. */
int szd_sl_set_guard(szd_sl *sl, const shardz_compare *g);
/* The store's status as of the lane's last write (backend, sync and compact revision as read
 * at start). Never blocks on the store. */
void szd_sl_status(szd_sl *sl, shardz_store_status *out);
/* Batches queued and not yet completed (a gauge). */
size_t szd_sl_queued(szd_sl *sl);
/* What the lane's batches wrote since it started (writes that succeeded): batches, records
 * (puts and deletes) and bytes of keys and values. Any thread. */
typedef struct {
    uint64_t batches, records, bytes;
} szd_sl_counts;
szd_sl_counts szd_sl_counts_get(szd_sl *sl);

#endif
