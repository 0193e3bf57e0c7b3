/* shardzd internals: the daemon, its namespaces, nodes and replica slots. One libevent loop
 * (one thread) owns all of it: HTTP requests, pings, assignment pushes, timers and store
 * writes run there, one at a time, so nothing here needs a lock.
 * The placement library decides where replicas go; this layer carries plans out step by step
 * (docs/PROTOCOL.md section 5), persisting each step before the next starts. */
#ifndef SHARDZ_DAEMON_H
#define SHARDZ_DAEMON_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "daemon/core/config.h"
#include "daemon/core/map.h"
#include "daemon/core/node_spec.h"
#include "daemon/core/slot.h"
#include "daemon/core/slot_page.h"
#include "daemon/log.h"
#include "shardz/placement.h"
#include "shardz/store.h"
#include "daemon/conns.h"

#define SZD_MAX_BODY (1024 * 1024) /* a request body, most routes */
#define SZD_MAX_BULK_BODY                                                                          \
    (64 * 1024 * 1024)                   /* creating a namespace, adding partitions: a             \
                                          * million ids in one request */
#define SZD_MAX_REPLY (64 * 1024 * 1024) /* a worker's reply to a whole assignment */

/* ---- metrics ------------------------------------------------------------------------- */

/* A Prometheus histogram of seconds with fixed buckets (szd_hist_bounds). */
#define SZD_HIST_N 12
typedef struct {
    uint64_t b[SZD_HIST_N]; /* observations <= szd_hist_bounds[i] (not cumulative) */
    uint64_t count;
    double sum;
} szd_hist;
extern const double szd_hist_bounds[SZD_HIST_N];
void szd_hist_add(szd_hist *h, double seconds);

/* Recent events kept per namespace (GET .../events). */
#define SZD_EVENTS 10000

/* A set of ids (owned copies; open addressing, linear probing). Zeroed is empty. */
typedef struct szd_idset {
    char **slots; /* cap entries, NULL = empty */
    size_t cap, n;
} szd_idset;
/* Adds a copy of id (nothing when present); false when out of memory (unchanged). */
bool szd_idset_add(szd_idset *set, const char *id);
void szd_idset_remove(szd_idset *set, const char *id);
/* Frees every entry; the set is empty again. */
void szd_idset_clear(szd_idset *set);

/* The longest reason an operator may give a drain (bytes). */
#define SZD_DRAIN_REASON_MAX 200

/* ---- configuration ------------------------------------------------------------------- */

typedef struct {
    char listen[SZD_ADDR_MAX + 1]; /* host:port */
    char data[4096];               /* data directory */
    char secret[256];              /* "" = none */
    shardz_store_sync sync;
    bool memory;                  /* in-memory store (tests) */
    bool insecure;                /* listen beyond loopback without a secret (protected mode off) */
    char store[SZD_ADDR_MAX + 1]; /* "" (SQLite in data, or memory) or etcd://HOST:PORT[/PFX] */
    char advertise[SZD_ADDR_MAX + 1]; /* host:port the other coordinators reach us at */
    char id[SHARDZ_MAX_ID + 1];       /* this coordinator's name (default: advertise) */
    int64_t lease_ttl_ms;             /* etcd: the leader lease's TTL */
    size_t max_watches;               /* watches parked at once, at most (all namespaces) */
    size_t max_connections;           /* client connections at once, at most (conns.c) */
    int log_level;                    /* 0 error, 1 warn, 2 info, 3 debug */
} szd_config;

/* ---- nodes --------------------------------------------------------------------------- */

struct szd_ns;

typedef struct szd_node {
    struct szd_ns *ns;
    char id[SHARDZ_MAX_ID + 1];
    char address[SZD_ADDR_MAX + 1]; /* host:port of its shardz endpoint */
    char host[SZD_ADDR_MAX + 1];
    uint16_t port;
    char zone[SHARDZ_MAX_ID + 1];
    size_t ncap;
    double cap[SHARDZ_MAX_DIMS];
    szd_node_state state;
    bool leaving;
    int64_t last_ok_ms; /* when the loop last heard from it (a ping report, an assign reply) */
    /* Strict leases: the latest time a lease-granting message may still reach the node. The
     * health lane's pings: lease_from_ms, given with its dead verdict (the lane grants no
     * lease to a node it declared dead). The pushes: a push in flight counts until its
     * timeout (assign_reach_ms); one answered arrived before the reply (last_ok_ms covers
     * it); one that failed keeps counting (reach_ms). The lease may run from the latest. */
    int64_t lease_from_ms, reach_ms, assign_reach_ms;
    int64_t since_ms; /* when it entered its state */
    uint64_t applied_revision;
    /* the push connection (pings travel on the health lane's own, so a ping never waits
     * behind a push: seed 004) */
    struct evhttp_connection *assign_conn;
    bool assign_inflight;
    void *assign_ctx;  /* owned while a push is in flight */
    bool dirty;        /* its desired replicas changed since the last acked push */
    bool push_pending; /* an assignment is built and waits for its batch to be durable */
    /* Delta assignments (docs/PROTOCOL.md 4.3, push.c): */
    bool delta_ok;           /* it speaks them (said so when it registered) */
    bool transfer_ok;        /* it offered "transfer" (docs/PROTOCOL.md 4.3, state transfer):
                              * its adding replicas name where they come from, and its "not
                              * ready" answers hold routing back */
    bool need_full;          /* its next assignment is the whole set */
    uint64_t base_revision;  /* the assignment it acknowledged last: the next delta's base */
    int64_t acked_ms;        /* when that acknowledgement arrived */
    szd_idset changed;       /* partitions whose replica for it changed since the last
                              * assignment built for it */
    int64_t assign_retry_ms; /* no push before this time (after a failure) */
    bool released_sent;
    szd_idset drops;   /* partitions where a slot may wait for this node to drop its
                        * replica (a superset: checked when it answers, or its lease
                        * runs out) */
    bool record_dirty; /* its store record must be written */
    bool drained;      /* an operator drained it: it keeps no replicas until undrained */
    char drain_reason[SZD_DRAIN_REASON_MAX + 1]; /* the operator's words ("": none given) */
    char incarnation[SHARDZ_MAX_ID + 1];         /* the process registered under the id ("": none
                                                  * said; docs/PROTOCOL.md 4.1) */
    int64_t retired_until_ms; /* strict: an earlier process of this node may hold replicas
                               * (retired slots) until then; 0: none */
    int64_t stamp;        /* the worker's clock in its latest registration or assignment reply (-1:
                           * it sends none): lease-granting pushes carry it (lease_stamp) */
    uint32_t stamp_era;   /* bumped by every registration (maybe a process with another clock):
                           * a push built before counts as carrying no stamp of this clock */
    uint64_t resync_from; /* the applied revision it reported ahead of every one this
                           * coordinator issued (a forged assignment): its next whole set
                           * carries "resync_from" so that it applies it; 0: none */
} szd_node;

typedef struct {
    /* One allocation, owned through load (free(p->load)), holds the load (the namespace's
     * ndims values), then the slots, then the id: a partition costs one malloc, and no room
     * for dimensions it does not have (docs/BENCHMARKS.md, memory at a million). */
    double *load;    /* Statistics (seed 000), kept apart from the assignment so they survive
                      * a move: the smoothed load per dimension (EWMA, alpha =
                      * 1 - exp(-dt / tau)) */
    szd_slot *slots; /* nrep */
    char *id;
    uint16_t nrep;
    bool dirty; /* to persist */
    bool stats_dirty;
    uint32_t page : 31;        /* its assignment page (apage.c): the one its line is written to */
    uint32_t over : 1;         /* its own key (assign/<p>) holds its record, overriding the page */
    int64_t load_ms, moved_ms; /* when the load was last updated and when a replica of it last
                                * moved (0: never; monotonic ms) */
    struct szd_history *history; /* its last moves (history.c), owned; NULL: none yet */
} szd_part;

/* Move history (history.c): the last SZD_HISTORY moves of each partition. */
#define SZD_HISTORY 32
/* Wall-clock milliseconds since the Unix epoch (what history and events show). */
int64_t szd_wall_ms(void);
/* Appends a move to p's history (the oldest goes past SZD_HISTORY); copies the ids. */
void szd_history_add(szd_part *p, int64_t time_ms, unsigned slot, const char *from, const char *to,
                     uint8_t reason, uint64_t generation);
/* p's history oldest first, as the API and the store record show it (new reference). */
json_t *szd_history_json(const szd_part *p);
/* Replaces p's history by a record's "history" (borrowed; NULL: none). SHARDZ_EINVAL for a
 * malformed one: p is left with none. */
int szd_history_load(szd_part *p, json_t *list);
/* Frees p's history (p->history NULL after). */
void szd_history_free(szd_part *p);

/* ---- namespaces ---------------------------------------------------------------------- */

struct szd;

typedef struct szd_waiter {
    struct szd_waiter *next;
    struct evhttp_request *req;
    struct szd_ns *ns;
    uint64_t since;
    struct event *timer;
    struct event *eof; /* the client's socket readable: it may have gone away */
} szd_waiter;

/* A hash namespace's slot table as the store has it (docs/STORE.md 5): persist.c writes it,
 * ns.c's loader reads it. Event-loop thread. */
typedef struct szd_slot_table {
    szd_slot_manifest m; /* the committed manifest (m.page_slots 0: none yet, a namespace not
                          * yet written or a store of the old layout: the next write writes
                          * the whole table) */
    uint64_t *hash;      /* m.npages entries: each committed page's text hash (owned) */
    uint64_t epoch_max;  /* the highest epoch seen in the store or written: the next is above */
    bool dirty;          /* memory's table may differ from the committed one */
    char **stale;        /* keys the next write deletes after its switch: pages of no committed
                          * epoch, records of partitions the committed table lacks (owned) */
    size_t nstale, capstale;
    char **retired; /* the pages the last switch replaced: deleted with the next switch, so
                     * that a follower loading across one switch still finds them (owned) */
    size_t nretired;
    /* while loading (ns.c): the committed pages' lines (ids point into the pages read),
     * then the runs resolved to partition indices, for restore_slots */
    szd_slot_line *lines;
    size_t nlines, caplines;
    bool loading;        /* its config was read: slots_settle is due after the assignments */
    bool restore_due;    /* settled: restore_slots puts the runs back */
    uint32_t pages_read; /* committed pages found */
    bool broken;         /* a committed page missing or unreadable: the table is dealt again */
    szd_slot_run *runs;
    size_t nruns;
} szd_slot_table;

/* One assignment page of a namespace as memory knows the store's (apage.c; docs/STORE.md 5,
 * "Assignment pages"). Event-loop thread. */
typedef struct {
    uint32_t nlive; /* live partitions whose page it is */
    uint32_t nover; /* of them, those whose own key holds their record */
    bool based;     /* the page key exists in the store */
    bool refold;    /* the store's page holds a line memory does not: the next write rewrites it */
    char **dead;    /* ids whose removal marks wait for this page's rewrite (owned) */
    uint32_t ndead, capdead;
    /* scratch of one write (szd_apage_collect) */
    uint32_t ndirty, nfresh;
    bool touched, fold;
} szd_apage;

typedef struct szd_ns {
    struct szd *d;
    uint64_t key; /* unique in this process: names it to the health lane */
    szd_ns_config cfg;
    shardz_sharder *sh;
    uint64_t revision;
    szd_node **nodes;
    uint32_t nnodes, capnodes;
    szd_map node_map;
    szd_part *parts;
    uint32_t nparts, capparts;
    szd_map part_map;
    bool want_rebalance;
    bool nodes_dirty;    /* some node's record_dirty is set */
    uint32_t *dirty_idx; /* the partitions marked dirty since the last write (indices,
                          * maybe repeated or stale: the flag decides), owned */
    size_t ndirty, capdirty;
    bool dirty_scan;             /* more than the list holds may be dirty: the next write
                                  * looks at every partition */
    bool parts_dirty;            /* some partition's dirty may be set (a pass with nothing to
                                  * write skips the scan) */
    uint64_t lane_revision;      /* the revision the health lane's pings carry */
    uint64_t persisted_revision; /* the revision of the last batch queued (its watchers woken
                                  * once it is durable) */
    struct event *tick;          /* the periodic balancer round's check, every ping interval */
    struct event *work;          /* rebalance, persist, push: run once after changes */
    szd_waiter *waiters;
    uint64_t moves_started, moves_done;
    uint64_t moves_by_reason[SHARDZ_REASON__COUNT];
    bool deleted;
    json_t *restore;              /* while loading: hash slot runs [partition index, lo, hi] from
                                   * records of the old layout (hash_slots) */
    struct szd_slot_table *slots; /* hash namespaces: the slot table as the store has it
                                   * (persist.c, ns.c's loader), owned; NULL for other kinds */
    json_t **events;              /* ring of SZD_EVENTS, oldest overwritten (owned) */
    uint64_t event_seq;           /* the next event's sequence number (the first is 1) */
    szd_hist move_hist;           /* move durations, start to done */
    szd_hist handoff_hist;        /* moves from start to routing switched to the new owner */
    szd_idset transfers;          /* partitions with a slot waiting for a not-ready owner */
    uint64_t transfer_timeouts;   /* routing switched to a not-ready owner at the timeout */
    szd_hist ping_hist;           /* ping round trips (as the health lane measured them) */
    uint64_t pings_failed;
    uint64_t load_samples, load_rejected;
    int64_t stats_flushed_ms; /* statistics are written every few seconds, not per sample */
    int64_t balanced_ms;      /* when the last balancer round ran */
    shardz_balance_report last_round;
    struct szd_range *range;     /* range namespaces: tasks and loading state (range.c), owned */
    struct szd_flight *flights;  /* batches on the store lane for this namespace (persist.c) */
    struct szd_body *state_body; /* its /state serialised, shared by replies (api.c), owned */
    uint64_t gen_floor;          /* the highest generation a removed partition had: one added
                                  * (again) starts above it, so a partition id's generations
                                  * never go backwards (the config record's "generation_floor") */
    struct szd_ghost *ghosts;    /* strict: holders of removed partitions that may still serve
                                  * them, until they drop them or their lease ends (ns.c), owned */
    size_t nghosts, capghosts;
    /* The drain gate (maint.c): planned moves waiting for the floor or the in-flight limit,
     * in the order they were planned (owned), and the in-flight count cached for a pass. */
    struct szd_queued *queue;
    size_t nqueue, capqueue;
    bool gate_cache_ok;
    uint64_t gate_cache_rev, gate_cache_done, gate_cache_n;
    /* Live configuration (live.c): some partition has slots above the replica count still to
     * empty; the first placement waits until grace_until_ms (0: no grace). */
    bool shrink_pending;
    int64_t grace_until_ms;
    /* A write an API caller was refused for failed, and reading the store again failed too:
     * the namespace holds a change that is not durable. Until it is read again (szd_ns_reload,
     * retried by the work pass) it writes nothing and tells no worker anything. */
    bool reload;
    int64_t reload_tried_ms; /* its last try (the work pass tries at most once a second) */
    bool pass_unwritten;     /* the work pass's last batch failed: its decisions are in memory
                              * only (a reload plans them again) */
    /* Assignment pages (apage.c): pages[k] is page k; new partitions join page_open */
    szd_apage *pages;
    uint32_t npages, cappages, page_open;
    uint32_t nrefold;   /* pages with refold set */
    uint64_t wseq;      /* the last write number given (records' "w", pages' headers) */
    json_t *dead_refs;  /* id -> how many pages' rewrites its removal mark waits for */
    char **apage_stale; /* override keys the next write deletes (lost to a newer line or
                         * marks of nothing, found by a load), owned */
    size_t napage_stale, capapage_stale;
} szd_ns;

/* ---- high availability (ha.c): the coordinator's role on a shared store ------------- */

typedef enum {
    SZD_ROLE_SOLO = 0, /* the only coordinator (SQLite or memory store): always acts */
    SZD_ROLE_FOLLOWER, /* serves reads from its cache, forwards writes to the leader */
    SZD_ROLE_LEADER,   /* decides, pings, writes: only while its lease is known fresh */
} szd_role;

typedef struct {
    szd_role role;
    int64_t term;           /* the leadership every message to a worker carries (PROTOCOL.md
                             * 4.2: "term"): solo 1; a leader its leader key's create revision
                             * (only grows); 0 before the first leadership */
    int64_t lease_id;       /* 0: none held */
    int64_t lease_ttl_ms;   /* as granted */
    int64_t fresh_until_ms; /* leader: the lease is known alive until then (monotonic) */
    int64_t role_since_ms;  /* when this role began (monotonic) */
    int64_t next_keepalive_ms;
    int64_t next_refresh_ms;           /* follower: no cache refresh before then (throttled) */
    int64_t next_members_ms;           /* leader: the coordinators' features read again then */
    char leader_id[SHARDZ_MAX_ID + 1]; /* "" none known */
    char leader_addr[SZD_ADDR_MAX + 1];
    int64_t leader_since_wall_ms; /* when that leader was elected (wall clock) */
    int64_t cache_rev;            /* follower: the store revision its cache reflects */
    bool cache_stale;             /* follower: the last refresh failed (reads may be stale) */
    bool full_reload;             /* follower: reload every namespace at the next refresh */
    uint64_t leader_changes;      /* leaders seen (metric) */
    uint64_t cache_applied;       /* follower: records applied to the cache in place */
    uint64_t cache_reloads;       /* follower: namespaces loaded again whole */
    int follow;                   /* follower: what the follow lane was asked (ha.c) */
    int64_t follow_retry_ms;      /* follower: no new request to the lane before then */
    int follow_failures;          /* follower: streams failed in a row without progress */
    int64_t leader_read_ms;       /* follower: when the leader key was last read */
    int64_t load_asked_ms;        /* follower: when the running full load was asked */
    struct event *timer;          /* the role loop: keepalive, refresh, campaign */
    struct event *follow_ev;      /* the follow lane's wake-up */
    struct szd_fwd *fwds;         /* writes forwarded to the leader (in flight or done), owned */
} szd_ha;

typedef struct szd {
    szd_config cfg;
    szd_ha ha;
    struct event_base *base;
    struct evhttp *http;
    shardz_store *store;       /* the store lane's once it runs: never used on the loop */
    shardz_store *ha_store;    /* etcd: the role loop's own handle (leases, campaign, reads) */
    struct szd_keeper *keeper; /* etcd: the lease keeper (keeper.c), owned; NULL when solo */
    struct szd_fl *fl;         /* etcd: the follow lane (follow_lane.c), owned; NULL when solo */
    struct szd_sl *sl;         /* the store lane (every namespace write), owned */
    struct event *sl_done;     /* its completions are readable */
    szd_ns **ns;
    uint32_t nns, capns;
    int64_t started_ms;
    bool ready;
    struct load_batch *follow_lb; /* follower: registrations of partitions a page adds (ns.c),
                                   * owned, allocated at the first */
    bool apage_off;  /* a coordinator sharing the store does not read assignment pages: none is
                      * written (ha.c; docs/STORE.md 5), every record under its own key */
    bool apagez_off; /* one does not read compressed pages (format 2): they are written as
                      * text (format 1) */
    int64_t (*clock_ms)(void);      /* injectable clock, NULL: CLOCK_BOOTTIME (the lanes too) */
    struct szd_hl *hl;              /* the health lane (pings, verdicts), owned */
    struct event *hl_reports;       /* its reports are readable */
    uint64_t ns_keys;               /* the last szd_ns.key given */
    struct szd_farewell *farewells; /* deleted namespaces' last assignments, still being
                                     * delivered (push.c), owned */
    size_t nwaiters;                /* watches parked, every namespace (cfg.max_watches) */
    struct szd_conns *conns;        /* the API listener's connections (conns.c), owned */
    szd_hist store_hist;            /* store write durations */
} szd;

/* ---- shared helpers ------------------------------------------------------------------ */

int64_t szd_now(const szd *d);
/* Gives the heap's free memory back to the system (glibc's malloc_trim; nothing elsewhere):
 * after a load, whose read answers were freed in pieces the allocator would otherwise keep. */
void szd_trim_heap(void);
void szd_log(const szd *d, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* HTTP replies. */
void szd_reply_json(struct evhttp_request *req, int status, json_t *body, uint64_t revision);
void szd_reply_error(struct evhttp_request *req, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Reads a request's JSON body (at most SZD_MAX_BODY, or max bytes). NULL after replying with
 * an error (413 ETOOBIG over the limit, 400 for bad JSON). */
json_t *szd_read_body(struct evhttp_request *req);
json_t *szd_read_body_max(struct evhttp_request *req, size_t max);

/* Namespaces (ns.c). */
int szd_ns_create(szd *d, const szd_ns_config *cfg, json_t *partitions, szd_ns **out, char *err,
                  size_t errlen);
szd_ns *szd_ns_find(szd *d, const char *name);
int szd_ns_delete(szd *d, szd_ns *ns);
int szd_ns_load_all(szd *d);
/* The follower's cache: replaces namespace `name` (every namespace when NULL) by what the store
 * holds, moving its watchers over; writes nothing. 0 or the store's error (nothing changed). */
int szd_ns_load_cache(szd *d, const char *name);
/* As szd_ns_load_cache, from pages already read (taken, also on failure). */
int szd_ns_load_cache_pages(szd *d, const char *name, shardz_range **pages);
/* Reads every namespace record with st in pages at one revision (any thread: nothing of a
 * daemon is touched); *pages the caller's (szd_ns_pages_free). 0 or the store's error. */
int szd_ns_read_all(shardz_store *st, shardz_range ***pages);
void szd_ns_pages_free(shardz_range **pages);
/* The follower's cache: applies one change of the store in place (a replica namespace's
 * assignment or statistics record of a partition it has). 0 when applied (or not a namespace
 * record), SHARDZ_ESTALE when the namespace must be loaded again instead. */
int szd_ns_apply_change(szd *d, const shardz_event *ev);
/* The namespaces in memory (just loaded, or a follower's cache brought up to the store) become
 * the leader's: nodes counted as heard from now, configs rewritten (revisions jump ahead),
 * a rebalance and the work pass scheduled. 0 or the store's error. */
int szd_ns_take_over(szd *d);
/* After a failed write whose change an API caller is refused (a 5xx): what the store holds is
 * the truth (the write did not happen, or, when its outcome is unknown, may have), so the
 * namespace is read again from it and replaces the copy in memory, which held the change: a
 * failed write leaves memory as the store has it, and no later pass writes or carries out
 * what the caller was told failed (docs/PROTOCOL.md 8). Like a new leader's take-over, for one
 * namespace: its nodes are heard from now (strict leases counted from now), the placement
 * plans again, its revision goes on growing and its watchers move over; nothing is written.
 * ns is freed: the caller must not use it after. A coordinator that no longer acts does
 * nothing (its cache is read again as a follower's). When the read fails, ns stays, marked
 * `reload`, and the work pass tries again. 0 or the store's read error. */
int szd_ns_reload(szd_ns *ns);
/* Frees every namespace (their watchers are cancelled). */
void szd_ns_free_all(szd *d);
void szd_ns_free(szd_ns *ns);
json_t *szd_ns_config_json(const szd_ns *ns);
/* A deleted namespace's last words: each of its nodes (not left) is sent an empty, whole
 * assignment at `revision` with "namespace_deleted" (docs/PROTOCOL.md 4.3), retried until it
 * answers 200 or for `for_ms`. Copies what it needs: ns may be freed at once. */
void szd_push_farewell(szd *d, const szd_ns *ns, uint64_t revision, int64_t for_ms);
/* Drops the farewells still in flight (shutdown). */
void szd_push_farewells_free(szd *d);
/* The namespace's config record as stored: its config plus what the store alone keeps
 * (generation_floor). New reference. */
json_t *szd_ns_config_record(const szd_ns *ns);
json_t *szd_ns_summary_json(const szd_ns *ns);

szd_node *szd_node_find(szd_ns *ns, const char *id);
/* What node n serves is unknown (it reported a revision never sent): its replicas are
 * handled as those of an earlier process (see szd_push_check_ahead). */
void szd_node_state_unknown(szd_ns *ns, szd_node *n);
int szd_node_register(szd_ns *ns, json_t *body, szd_node **out, char *err, size_t errlen);
int szd_node_leave(szd_ns *ns, szd_node *n);
json_t *szd_node_json(const szd_ns *ns, const szd_node *n, bool with_partitions);
json_t *szd_nodes_json(const szd_ns *ns);

szd_part *szd_part_find(szd_ns *ns, const char *id);
int szd_parts_add(szd_ns *ns, json_t *ids, char *err, size_t errlen);
int szd_part_remove(szd_ns *ns, szd_part *p);
json_t *szd_part_json(const szd_ns *ns, const szd_part *p);
/* Every slot run of a hash namespace (none for other kinds), sorted by partition id: one pass
 * over the slots serves every partition's runs. Valid until the sharder changes. */
typedef struct {
    shardz_slot_range *r; /* owned */
    size_t n;
} szd_runs;
int szd_runs_load(const szd_ns *ns, szd_runs *out);
void szd_runs_free(szd_runs *runs);
/* A partition's store record as JSON text (the caller's, free it). */
char *szd_part_record_text(const szd_ns *ns, const szd_part *p, uint64_t w);

/* ---- assignment pages (apage.c; docs/STORE.md 5) --------------------------------------- */

struct szd_batch;

/* p (just appended) joins the open page. */
void szd_apage_join(szd_ns *ns, szd_part *p);
/* p (about to be freed) leaves its page. */
void szd_apage_leave(szd_ns *ns, szd_part *p);
/* A load: p's record came from page `page` (its line) or, over, from its own key. */
void szd_apage_place(szd_ns *ns, szd_part *p, uint32_t page, bool over);
/* A load found page `page` (number < SZD_APAGE_MAX_PAGES) in the store. */
void szd_apage_found(szd_ns *ns, uint32_t page, bool refold);
/* A load: the removal mark of id waits for page's rewrite (the page holds the id's line). */
void szd_apage_dead(szd_ns *ns, uint32_t page, const char *id);
/* A load: key (copied) is deleted with the next write, unless it then holds a live record. */
void szd_apage_stale(szd_ns *ns, const char *key, size_t len);
/* Frees what the pages hold. */
void szd_apages_free(szd_ns *ns);
/* The dirty partitions (list: nlist indices, or NULL for every partition) into b: pages
 * rewritten where szd_apage_fold says so, the others' records under their own keys, then the
 * overrides and removal marks the rewritten pages replace deleted. Updates what memory knows
 * of the store as if b were durable (a failed write reads the namespace again). 0 or
 * SHARDZ_ENOMEM. */
int szd_apage_collect(szd_ns *ns, struct szd_batch *b, const uint32_t *list, size_t nlist);
/* A stored page's lines as text: *text and *len point into value (format 1, after its header)
 * or into *buf, the lines inflated (format 2; *buf malloc'd, the caller frees it, NULL for
 * format 1); *w its write number. 0, or -1 when value is no page or its stream is corrupt. */
int szd_apage_lines(const char *value, size_t vlen, uint64_t *w, const char **text, size_t *len,
                    char **buf);
/* The removal mark of p (about to be removed) as a put: *key and *val malloc'd (the caller
 * frees them); 0 or SHARDZ_ENOMEM. Its page's rewrite deletes it later. */
int szd_apage_mark(szd_ns *ns, const szd_part *p, char **key, char **val);
/* p's record under its own key, numbered (a range step's atomic write): malloc'd text; p is
 * then counted as overridden. */
char *szd_apage_override_text(szd_ns *ns, szd_part *p);
/* A new partition placed on the nodes serving `like` (range splits and merges). */
int szd_part_add_like(szd_ns *ns, const char *id, const szd_part *like);
/* What the core's slot and range task machines read of the namespace: its mode and its nodes'
 * states (valid while ns lives). */
szd_slot_env szd_ns_slot_env(const szd_ns *ns);
/* Partition p changed: its record is written by the next batch (the dirty list). */
void szd_part_mark_dirty(szd_ns *ns, szd_part *p);
/* Partition index idx is dirty: names it in the dirty list. */
void szd_parts_dirty_push(szd_ns *ns, uint32_t idx);
/* Every partition is dirty (flags set by the caller): the next write looks at them all. */
void szd_parts_dirty_all(szd_ns *ns);
json_t *szd_state_json(const szd_ns *ns);

/* Records an event (takes `fields`, adds seq, time_ms and type). */
void szd_event(szd_ns *ns, const char *type, json_t *fields);
json_t *szd_events_json(const szd_ns *ns, uint64_t since, size_t limit);
/* Operator actions (ns.c). */
int szd_node_drain(szd_ns *ns, szd_node *n, bool drain);
/* Drains (or undrains) several nodes in one durable write, with the operator's reason (may be
 * NULL; kept while drained, shown in the node and the "drain" event). Nodes that left are
 * skipped. 0, or the store's error and nothing changed. */
int szd_nodes_drain(szd_ns *ns, szd_node *const *nodes, size_t count, bool drain,
                    const char *reason);
int szd_operator_move(szd_ns *ns, szd_part *p, unsigned slot, szd_node *to, char *err,
                      size_t errlen);
int szd_cancel_move(szd_ns *ns, szd_part *p, unsigned slot, char *err, size_t errlen);
json_t *szd_plan_json(szd_ns *ns, bool apply);
/* One load balancer round (dry run or not): its moves, why it stopped, imbalance before and
 * after (expected, for a dry run). NULL on failure. */
json_t *szd_balance_json(szd_ns *ns, bool apply);
void szd_node_set_state(szd_ns *ns, szd_node *n, szd_node_state st);
/* Prometheus text for every namespace (metrics.c); the caller frees. */
char *szd_metrics_text(szd *d, size_t *len);

/* Starts one move of a plan on its slot now, ungated (ns.c). */
void szd_move_start(szd_ns *ns, const shardz_move *mv);
/* The drain gate (maint.c, core/gate.h). Admits a move of a plan: true when it may start now
 * (the caller starts it), false when it was queued (it starts in a later szd_gate_pump). */
bool szd_gate_admit(szd_ns *ns, const shardz_move *mv);
/* Starts the queued moves the gate allows now, in order; drops those whose partition or
 * destination went (the placement plans them again). */
void szd_gate_pump(szd_ns *ns);
/* Drops the queued move of (partition, slot), if any (a newer move supersedes it). */
void szd_gate_forget(szd_ns *ns, const char *partition, unsigned slot);
/* The queue as the API shows it (new reference). */
json_t *szd_gate_queue_json(const szd_ns *ns);
void szd_gate_free(szd_ns *ns);
/* Live configuration (live.c). PATCH of ns's config (borrowed): checked (400 naming the
 * field, nothing changed), a dry run's plan in *reply, or the config made durable and carried
 * out (*reply: the namespace and the moves that empty slots). 0, or an error with err. */
int szd_ns_patch(szd_ns *ns, json_t *patch, bool dry_run, json_t **reply, char *err, size_t errlen);
/* Drops slots above the replica count once empty (from the work pass). */
void szd_live_shrink(szd_ns *ns);
/* The startup grace: begins now (a create, a load); true while the first placement waits. */
void szd_live_start_grace(szd_ns *ns);
bool szd_live_in_grace(szd_ns *ns);
/* The placement's state of a node in state st. */
shardz_node_state szd_sharder_state(szd_node_state st);
/* POST /v1/stoppable (maint.c): answers req. */
void szd_api_stoppable(szd *d, struct evhttp_request *req);

/* Changes: bump the revision, wake watchers, and schedule the work pass. */
void szd_ns_changed(szd_ns *ns);
void szd_ns_schedule(szd_ns *ns);

/* The health lane's reports (health.c): applied to the namespaces. */
void szd_health_on_reports(evutil_socket_t fd, short what, void *arg);
/* The node was heard from (ping: a ping reply through the health lane; else an assign reply):
 * joining or suspect -> alive or draining; dead too, but only by a ping reply (the lane's
 * verdict and the loop's state must agree). */
void szd_node_contact(szd_ns *ns, szd_node *n, bool ping);
/* Workers (push.c): assignment pushes and their replies. An assignment is built from the
 * state a batch persists and sent only once that batch is durable: szd_push_release wants the
 * store lane's proof (store_lane.h) and refuses (aborts) without it. */
typedef struct szd_pushes szd_pushes;
struct szd_sl_durable;
/* The replica of `partition` that node n should hold changed (or went): its next delta names
 * it (the whole set goes instead past a few thousand changes, or when it needs one). */
void szd_push_changed(szd_node *n, const char *partition);
/* n's next assignment is the whole set (a registration, a refusal, a failed push). */
void szd_push_full(szd_node *n);
/* Node n reports `applied`, a revision this coordinator never issued (above the namespace's):
 * nothing it says about its replicas can be trusted. Handled as a new process of the node
 * (its replicas not served until it serves them again: missing counts them, routing leaves
 * them out; strict: its lease must certainly end first) and sent the whole set with
 * "resync_from" (docs/PROTOCOL.md 4.3). True when applied was ahead (the caller then takes
 * nothing else from the message). */
bool szd_push_check_ahead(szd_ns *ns, szd_node *n, uint64_t applied);
/* Frees what the push side keeps for n. */
void szd_push_node_free(szd_node *n);
/* Builds the assignment of every node whose desired replicas changed and that may be pushed
 * now; NULL when none. The caller's (released or dropped). */
szd_pushes *szd_push_build(szd_ns *ns);
/* The batch (sequence number) the pushes wait for. */
void szd_push_attach(szd_pushes *p, uint64_t seq);
/* Sends them: durable must prove their batch durable. Frees p. */
void szd_push_release(szd_ns *ns, szd_pushes *p, const struct szd_sl_durable *durable);
/* Their batch failed: nothing is sent, the nodes are pushed again later (ns NULL: the namespace
 * is gone, only p is freed). Frees p. */
void szd_push_drop(szd_ns *ns, szd_pushes *p);

/* Persistence (persist.c): records -> batches on the store lane. */
/* Writes every dirty record (and the config when `config`) and waits: 0 or the store's error
 * (err gets a detail). A failure sets ns->reload: what memory changed for the write is not
 * kept (szd_ns_reload). *revision (may be NULL): the store's after it. */
int szd_ns_flush(szd_ns *ns, bool config, char *err, size_t errlen, int64_t *revision);
/* The same, with the slot table when it changed (szd_ns_slots_changed) written atomically
 * (docs/STORE.md 5): the changed pages of a new epoch and the dirty records first, then one
 * transaction of `with` (n_with operations, borrowed: e.g. a removed partition's delete) and
 * the config record switched to the new epoch, then the old epoch's pages deleted. With a
 * changed table or `with` the config record is always written. A failure before the switch
 * commits leaves the store's table as it was; any failure sets ns->reload, as above. 0 or the
 * store's error (err as above). */
int szd_ns_write(szd_ns *ns, bool config, const shardz_op *with, size_t n_with, char *err,
                 size_t errlen, int64_t *revision);
/* The hash slot table changed in memory (partitions added or removed, a table dealt again):
 * the next write of ns writes it. */
void szd_ns_slots_changed(szd_ns *ns);
/* Frees a slot table (persist.c); accepts NULL. */
void szd_slot_table_free(szd_slot_table *t);
/* Adds key (taken: malloc'd) to the keys the next write of the namespace deletes. */
void szd_slots_stale_take(szd_slot_table *t, char *key);
/* Writes n's record (n borrowed: read only; it need not be in ns yet) alone and waits: 0, or
 * the store's error with a detail in err (errlen bytes). Nothing else is marked or changed. */
int szd_ns_write_node(szd_ns *ns, const szd_node *n, char *err, size_t errlen);
/* The lease_ms a strict namespace created without one gets (issue 15 case 5): the
 * configuration's default, and with several coordinators (etcd) at least what spans a leader
 * failover (3/2 of --lease-ttl + two pings), so the workers keep serving through one. */
int64_t szd_strict_lease_default(const szd *d, const szd_ns_config *cfg);
/* The work pass's write: every dirty record, and the pushes built from them, queued on the
 * store lane; the pushes leave when the batch is durable, watchers are woken then. */
void szd_ns_persist(szd_ns *ns);
/* A namespace being freed: its batches in flight complete without it. */
void szd_ns_forget_flights(szd_ns *ns);
/* The store lane's completions are readable. */
void szd_store_on_done(evutil_socket_t fd, short what, void *arg);
/* One atomic transaction (puts, deletes, prefix deletes; borrowed) run on the store lane after
 * everything queued before it, waited for: 0 or the store's error (err: its detail; a fenced
 * write also deposes this coordinator). */
int szd_store_txn(szd *d, const shardz_op *ops, size_t n, char *err, size_t errlen);
/* A node's store record (new reference). */
json_t *szd_node_record(const szd_ns *ns, const szd_node *n);
/* The store's status: the role loop's handle on etcd, else the store lane's cached one. 0 or
 * SHARDZ_EIO (unreachable). */
int szd_store_status(szd *d, shardz_store_status *st);
void szd_node_close(szd_node *n);
void szd_apply_serving(szd_ns *ns, szd_node *n, json_t *serving);
/* Carries out what a slot machine step said changed for slot s of p (pushes, drops watched,
 * persistence, a move done). */
void szd_ns_slot_applied(szd_ns *ns, szd_part *p, unsigned s, const szd_slot_out *out);
/* Node `me` serves p at served_gen (ready): adds it serves advance (ns.c). True when
 * something changed. */
bool szd_ns_ack_serving(szd_ns *ns, szd_part *p, int32_t me, uint64_t served_gen);
/* State transfer (transfer.c). A worker that speaks "transfer" answered that it serves p at
 * served_gen but is not ready: routing waits for it (or the namespace's timeout). True when
 * something changed. */
bool szd_transfer_unready(szd_ns *ns, szd_part *p, int32_t me, uint64_t served_gen);
/* The partitions a reply's serving list (borrowed) marks "ready": false, as an object (new
 * reference), or NULL when there are none or node n does not speak "transfer". */
json_t *szd_transfer_unready_of(const szd_node *n, json_t *serving);
/* A ping reply's "ready" list from node n: the replicas whose transfer is done switch. */
void szd_transfer_ready(szd_ns *ns, szd_node *n, json_t *ready);
/* p no longer waits for a not-ready owner in any slot: it leaves the waiting set. */
void szd_transfer_settled(szd_ns *ns, const szd_part *p);
/* The periodic look: routing switches to the not-ready owners whose time ran out (logged,
 * counted, an event). */
void szd_transfer_tick(szd_ns *ns);
/* The source of a replica node `me` is adding in slot s of p (the slot's previous owner
 * while it serves, else another node serving p), or -1. */
int32_t szd_transfer_source(const szd_ns *ns, const szd_part *p, unsigned s, int32_t me);
/* Primary handoff (handoff.c). A planned move mv of p's primary slot to node index `to`:
 * when a serving secondary may take over, it is promoted instead and `to` takes its slot;
 * true then (the move is carried out), false when the move goes ahead as planned. */
bool szd_handoff_try(szd_ns *ns, szd_part *p, const shardz_move *mv, int32_t to);
/* Node `me` serves p at served_gen: when it is a handoff's promoted primary, the handoff
 * switches (the old primary demoted in place). True when something changed. */
bool szd_handoff_ack(szd_ns *ns, szd_part *p, int32_t me, uint64_t served_gen);
/* A reply to a delta: serving lists the partitions named (the nnamed of `named`) it serves. */
void szd_apply_serving_delta(szd_ns *ns, szd_node *n, json_t *serving, const char *const *named,
                             size_t nnamed);
/* A ping reply's per-partition load samples (PROTOCOL section 4.2). */
void szd_load_samples(szd_ns *ns, szd_node *n, json_t *load);
/* Queues the statistics that changed (every few seconds, or now when force: at shutdown). */
void szd_ns_flush_stats(szd_ns *ns, bool force);

/* The namespace's shared /state body is dropped (it is being freed). */
void szd_state_body_release(szd_ns *ns);
/* Watches (api.c). */
void szd_watch_notify(szd_ns *ns);
void szd_watch_cancel_all(szd_ns *ns);

/* High availability (ha.c). */
/* Starts the role loop on a shared store (etcd) and the lease keeper on keeper_store (taken:
 * a handle of its own, closed by szd_ha_stop, or here on failure): campaigns at once. After
 * the health lane started. 0 or an error. */
int szd_ha_start(szd *d, shardz_store *keeper_store, shardz_store *follow_store);
/* true when this coordinator may act (decide, ping, push, write, answer from memory): always
 * when solo; a leader only while its lease is known fresh (it steps down otherwise). */
bool szd_acting(szd *d);
/* A write found this coordinator deposed (SHARDZ_ENOTLEADER): it steps down at once. */
void szd_ha_deposed(szd *d, const char *why);
/* Sends a request a follower must not answer itself to the leader and relays the answer
 * (a 503 ENOTLEADER when no leader is known or reachable). */
void szd_ha_forward(szd *d, struct evhttp_request *req);
/* The role, leader and coordinators, for /v1/status (new reference). */
json_t *szd_ha_status_json(szd *d);
/* At shutdown: a leader gives its lease back so another takes over at once. */
void szd_ha_stop(szd *d);
const char *szd_role_name(szd_role r);

/* HTTP API (api.c): its route table is the one description of the API. */
void szd_api_handle(struct evhttp_request *req, void *arg);
/* Prints the route table: "METHOD PATTERN read|write|local" lines (shardzd --routes). */
void szd_api_print_routes(FILE *f);

#endif
