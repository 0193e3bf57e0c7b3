/* The lease keeper: one thread renews this coordinator's etcd lease (every third of its TTL,
 * through a store handle of its own) and publishes until when the lease is known fresh, so
 * that a loop held by placement, JSON or a large load neither loses the leadership nor stops
 * the health lane's pings. Calls below: the loop thread; the keeper: its own thread.
 * docs/OPERATIONS.md, "High availability"; docs/ARCHITECTURE.md, the lanes. */
#ifndef SZD_KEEPER_H
#define SZD_KEEPER_H

#include <stdbool.h>
#include <stdint.h>

#include "shardz/store.h"

typedef struct szd_keeper szd_keeper;

/* Where the keeper tells "acting until" (0: not acting) and the term: the health lane while
 * this coordinator leads. Called on the keeper's thread and on the loop's, never both at once
 * (under the keeper's lock). */
typedef void (*szd_keeper_publish)(void *ctx, int64_t acting_until_ms, int64_t term);

/* What a leader keeps back from its TTL: the lease counts as fresh until the last renewal's
 * send time + TTL - margin, covering clock rate differences and the time an answer takes. */
int64_t szd_lease_margin_ms(int64_t ttl_ms);

/* Starts the keeper with no lease. `store` is taken (closed by szd_keeper_stop, also when this
 * fails); publish/ctx are borrowed and must outlive the keeper; clock_ms NULL: CLOCK_BOOTTIME.
 * 0, SHARDZ_ENOMEM or SHARDZ_EIO (no thread). */
int szd_keeper_start(shardz_store *store, szd_keeper_publish publish, void *ctx,
                     int64_t (*clock_ms)(void), int log_level, szd_keeper **out);

/* The lease to keep from now on (0: none; the keeper idles) and the role: leading publishes
 * the lease's freshness, not leading publishes 0 at once. renewed_ms: the send time of a grant
 * or renewal the loop made itself (0: none); the freshness only grows for one lease. */
void szd_keeper_set(szd_keeper *k, int64_t lease_id, int64_t ttl_ms, int64_t renewed_ms,
                    bool leading, int64_t term);

/* Until when `lease_id` is known fresh (0 when the keeper keeps another lease or none), its
 * TTL as last granted, and whether etcd answered that it no longer exists. */
int64_t szd_keeper_read(szd_keeper *k, int64_t lease_id, int64_t *ttl_ms, bool *expired);

/* Renewals made and failed since the start (metrics). */
void szd_keeper_counts(szd_keeper *k, uint64_t *renewed, uint64_t *failed);

/* Stops the thread (a renewal in flight finishes first), closes the store. NULL is a no-op. */
void szd_keeper_stop(szd_keeper *k);

#endif
