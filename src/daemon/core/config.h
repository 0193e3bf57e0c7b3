/* A namespace's configuration and the parser of its JSON (POST /v1/namespaces, and the
 * config record read back from the store), pure: JSON in, a config or an error message out;
 * no clock, no I/O, no globals (tests/daemon/core_is_pure.sh). jansson only reads memory here.
 * Any thread; fuzzed by tests/fuzz/fuzz_ns_config.c. */
#ifndef SZD_CORE_CONFIG_H
#define SZD_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "shardz/placement.h"

#define SZD_MAX_NS_NAME 63

/* A namespace's configuration (docs/PROTOCOL.md section 3). */
typedef struct {
    char name[SZD_MAX_NS_NAME + 1];
    char sharder[16]; /* "replica" | "hash" */
    unsigned replicas;
    bool roles;
    bool strict;
    int64_t ping_interval_ms, dead_after_ms, lease_ms;
    size_t ndims;
    char dims[SHARDZ_MAX_DIMS][64];
    uint32_t slots; /* hash only */
    double band;
    int64_t load_tau_ms; /* load statistics: the EWMA's time constant */
    /* State transfer: how long routing waits for a new owner that serves but is not ready
     * (0: it never waits), from the start of its move (docs/PROTOCOL.md 4.3) */
    int64_t transfer_timeout_ms;
    /* The load balancer (docs/PROTOCOL.md section 3): a round every balance_interval_ms (0:
     * only on request), with this policy. */
    int64_t balance_interval_ms;
    shardz_balance_policy balance;
    /* Planned maintenance (docs/OPERATIONS.md, core/gate.h): replicas of each partition that
     * must stay serving during planned moves (default replicas - 1, at least 0), and the
     * planned moves in flight at once (0: no limit). */
    uint32_t min_available;
    uint32_t max_moves_in_flight;
    /* Live configuration (PATCH, docs/OPERATIONS.md): frozen stops every automatic move but
     * the replacement of dead nodes' replicas (operator moves still run); the first placement
     * after a start or a create waits startup_grace_ms, or until min_nodes nodes are alive. */
    bool frozen;
    int64_t startup_grace_ms;
    uint32_t min_nodes;
} szd_ns_config;

/* Fills *cfg from j (borrowed): every field checked against docs/PROTOCOL.md section 3,
 * defaults for those left out, an unknown field refused. 0, or SHARDZ_EINVAL with the reason
 * in err (errlen bytes, NUL-terminated) and *cfg unspecified. */
int szd_ns_config_parse(json_t *j, szd_ns_config *cfg, char *err, size_t errlen);
/* A PATCH of a namespace's config: `patch` (borrowed) merged over `cur` into *out, checked as
 * a whole by szd_ns_config_parse. Only the live fields may change (replicas, ping_interval_ms,
 * dead_after_ms, lease_ms, load_tau_ms, balance, min_available, max_moves_in_flight, frozen,
 * startup_grace_ms, min_nodes); a strict namespace keeps its timings (leases were granted under
 * them); replicas change only in `replica` namespaces. 0, or SHARDZ_EINVAL with the field named
 * in err (*out unspecified). */
int szd_ns_config_patch(const szd_ns_config *cur, json_t *cur_json, json_t *patch,
                        szd_ns_config *out, char *err, size_t errlen);
/* An id (node, partition, zone, dimension): 1-SHARDZ_MAX_ID bytes of [A-Za-z0-9._:-]. */
bool szd_valid_id(const char *s);
/* A namespace name: 1-63 bytes of [a-z0-9._-], starting with a letter or digit. */
bool szd_valid_ns_name(const char *s);

#endif
