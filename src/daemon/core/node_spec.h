/* A node's registration (POST /v1/namespaces/NS/nodes) and its store record, parsed: the
 * parser of the body's JSON, pure: JSON in, a spec or an error message out; no clock, no I/O,
 * no globals (tests/daemon/core_is_pure.sh). Any thread (the loop calls it); fuzzed by
 * tests/fuzz/fuzz_node_spec.c. */
#ifndef SZD_CORE_NODE_SPEC_H
#define SZD_CORE_NODE_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "daemon/core/config.h"

/* The longest "host:port" a node (or a coordinator) may give. */
#define SZD_ADDR_MAX 255
/* The largest capacity a node may declare in one dimension (docs/PROTOCOL.md 4.1). */
#define SZD_CAPACITY_MAX 1e12

/* What a node says of itself (docs/PROTOCOL.md 4.1). */
typedef struct {
    char id[SHARDZ_MAX_ID + 1];
    char address[SZD_ADDR_MAX + 1];      /* host:port, as given */
    char host[SZD_ADDR_MAX + 1];         /* address up to its last ':' */
    uint16_t port;                       /* 1-65535 */
    char zone[SHARDZ_MAX_ID + 1];        /* "" = none */
    size_t ncap;                         /* capacities given: dimensions 0..ncap-1 of the config */
    double cap[SHARDZ_MAX_DIMS];         /* each finite, > 0, <= SZD_CAPACITY_MAX */
    char incarnation[SHARDZ_MAX_ID + 1]; /* "" = none said */
    int64_t stamp;                       /* the worker's clock (ms), -1 = none sent */
    bool delta;                          /* "features" names "delta" */
    bool transfer;                       /* "features" names "transfer" (state transfer) */
} szd_node_spec;

/* Splits addr (borrowed; NULL refused) "host:port" at its last ':' (so "::1:80" is host
 * "::1"): host non-empty and shorter than hostlen, port 1-5 digits in 1-65535. 0 with host
 * and *port set, or SHARDZ_EINVAL and both untouched. */
int szd_parse_address(const char *addr, char *host, size_t hostlen, uint16_t *port);

/* Fills the fields a node's store record and its registration share (address, zone,
 * capacity) of *out from j (borrowed), checked against cfg's dimensions (borrowed). 0, or
 * SHARDZ_EINVAL with the reason in err (errlen bytes, NUL-terminated); *out's other fields
 * untouched, these unspecified on failure. */
int szd_node_fields_parse(json_t *j, const szd_ns_config *cfg, szd_node_spec *out, char *err,
                          size_t errlen);

/* Fills *out from a registration body j (borrowed): id, address, zone, capacity, features,
 * incarnation, stamp, each checked (docs/PROTOCOL.md 4.1). 0, or SHARDZ_EINVAL with the
 * reason in err (errlen bytes, NUL-terminated) and *out unspecified. */
int szd_node_spec_parse(json_t *j, const szd_ns_config *cfg, szd_node_spec *out, char *err,
                        size_t errlen);

#endif
