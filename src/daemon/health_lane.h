/* The health lane: pings, strict-lease grants and failure verdicts on a thread and event base
 * of their own, so that placement, JSON building, store writes and API requests on the loop
 * never delay a ping (seed 004's dispatcher lanes). Each node's failure detector is the core's
 * pure state machine (core/failure.h); the lane only carries it out.
 * The loop talks to the lane through commands (the szd_hl_* calls below, loop thread only) and
 * reads its reports from a queue it drains when the report fd becomes readable. */
#ifndef SZD_HEALTH_LANE_H
#define SZD_HEALTH_LANE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "daemon/core/failure.h"
#include "shardz/placement.h"

typedef struct szd_hl szd_hl;

typedef enum {
    SZD_HL_PING_OK = 0, /* a valid ping reply (body) */
    SZD_HL_PING_FAILED, /* no valid reply (status: the HTTP status, 0 without one) */
    SZD_HL_VERDICT,     /* the detector's verdict changed (suspect, dead) */
} szd_hl_kind;

/* One report, lane -> loop. Owned by the loop once drained (szd_hl_report_free). */
typedef struct szd_hl_report {
    struct szd_hl_report *next;
    szd_hl_kind kind;
    uint64_t ns_key;              /* the namespace, as given to szd_hl_ns_set */
    char node[SHARDZ_MAX_ID + 1]; /* the node id */
    int64_t at_ms;                /* when the lane saw it (the daemon's clock) */
    int64_t rtt_ms;               /* PING_OK: the round trip */
    bool revived;                 /* PING_OK: the node was suspect or dead until this reply */
    int status;                   /* PING_FAILED */
    json_t *body;                 /* PING_OK: the reply, owned by the report */
    uint8_t verdict;              /* VERDICT: szd_fd_verdict */
    int64_t lease_from_ms;        /* VERDICT dead: its lease ran lease_ms after this at most */
} szd_hl_report;

void szd_hl_report_free(szd_hl_report *r);

/* Starts the lane's thread. secret (borrowed, "" for none) is sent with every ping; clock_ms
 * (NULL: CLOCK_BOOTTIME, common/clock.h) is the daemon's injectable clock, called from the lane's
 * thread; log_level as szd_config's. *out is the caller's (szd_hl_stop). 0, SHARDZ_ENOMEM or
 * SHARDZ_EIO (no thread, no pipe). The lane pings nothing until szd_hl_set_acting_until. */
int szd_hl_start(const char *secret, int64_t (*clock_ms)(void), int log_level, szd_hl **out);
/* Stops the thread, closes every connection, frees everything (reports not drained too).
 * Accepts NULL. */
void szd_hl_stop(szd_hl *hl);
/* The fd that becomes readable when reports wait (the loop watches it, then drains). */
int szd_hl_report_fd(const szd_hl *hl);
/* Takes every waiting report, oldest first (a NULL-terminated list via next, the caller's). */
szd_hl_report *szd_hl_drain(szd_hl *hl);

/* Commands (loop thread). Each is queued and applied by the lane in order; none blocks on it.
 * Out of memory aborts (the daemon's policy). */
/* Creates or updates namespace `key` (name for the ping body and logs; timings from cfg). */
void szd_hl_ns_set(szd_hl *hl, uint64_t key, const char *name, int64_t interval_ms,
                   int64_t dead_after_ms, int64_t lease_ms, bool strict);
/* Forgets namespace `key` and its nodes (their pings in flight are dropped). */
void szd_hl_ns_del(szd_hl *hl, uint64_t key);
/* The revision the namespace's pings carry. */
void szd_hl_ns_revision(szd_hl *hl, uint64_t key, uint64_t revision);
/* Adds a node (heard from now, leases allowed) or, when it exists, takes its new address and
 * counts it heard from now (a registration again: its verdict and lease permission stay).
 * stamp: the worker's clock when it registered (docs/PROTOCOL.md 6), -1 when it sent none;
 * its lease-granting pings carry the latest stamp it sent since. */
void szd_hl_node_set(szd_hl *hl, uint64_t key, const char *node, const char *address,
                     int64_t stamp);
/* Forgets a node (left, or removed): no more pings. */
void szd_hl_node_del(szd_hl *hl, uint64_t key, const char *node);
/* The node came back and its replicas no longer wait for its lease: pings may grant again. */
void szd_hl_node_grant(szd_hl *hl, uint64_t key, const char *node);
/* Every node of every namespace heard from now (a coordinator taking over). */
void szd_hl_heard_all(szd_hl *hl);
/* The longest interval between two rounds of pings of a namespace since the last call (then
 * reset): how regular the pings are, whatever the workers do with them (a worker that
 * answers is pinged once a round). Any thread. */
int64_t szd_hl_ping_gap_max(szd_hl *hl);
/* The lane pings (and grants leases) only while the daemon's clock is before until_ms: the
 * coordinator acts (solo: forever; leader: while its lease is known fresh; follower: 0). Read
 * by the lane at every tick, so a loop stalled past it stops the pings on time. Every ping
 * carries term (the leadership: szd_ha.term; set before the time it covers). */
void szd_hl_set_acting_until(szd_hl *hl, int64_t until_ms, int64_t term);

#endif
