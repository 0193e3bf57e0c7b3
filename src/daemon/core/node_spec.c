/* The node registration parser (node_spec.h), pure: the body of POST .../nodes and a node's
 * store record in, a szd_node_spec or a reason out. Any thread (the loop calls it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/node_spec.h"
#include "shardz/error.h"

int szd_parse_address(const char *addr, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    if (!colon || colon == addr || (size_t)(colon - addr) >= hostlen) {
        return SHARDZ_EINVAL;
    }
    /* 1-5 digits, nothing else (no sign, no space) */
    size_t nd = strlen(colon + 1);
    if (nd < 1 || nd > 5 || strspn(colon + 1, "0123456789") != nd) {
        return SHARDZ_EINVAL;
    }
    long p = strtol(colon + 1, NULL, 10);
    if (p < 1 || p > 65535) {
        return SHARDZ_EINVAL;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    *port = (uint16_t)p;
    return 0;
}

/* "capacity": {dim: number}, every dimension of cfg up to the last one given. */
static int parse_capacity(json_t *cap, const szd_ns_config *cfg, szd_node_spec *out, char *err,
                          size_t errlen)
{
    out->ncap = 0;
    if (!cap) {
        return 0;
    }
    if (!json_is_object(cap)) {
        snprintf(err, errlen, "capacity must be an object of dimension: number");
        return SHARDZ_EINVAL;
    }
    bool given[SHARDZ_MAX_DIMS] = {false};
    const char *k;
    json_t *v;
    json_object_foreach(cap, k, v)
    {
        size_t i = 0;
        while (i < cfg->ndims && strcmp(cfg->dims[i], k) != 0) {
            i++;
        }
        if (i == cfg->ndims) {
            snprintf(err, errlen, "capacity: unknown dimension '%s'", k);
            return SHARDZ_EINVAL;
        }
        double x = json_number_value(v);
        /* bounded: a capacity near DBL_MAX overflows the weighted sums placement takes */
        if (!json_is_number(v) || !isfinite(x) || x <= 0 || x > SZD_CAPACITY_MAX) {
            snprintf(err, errlen, "capacity '%s' must be a number above 0 and at most %g", k,
                     SZD_CAPACITY_MAX);
            return SHARDZ_EINVAL;
        }
        given[i] = true;
        out->cap[i] = x;
        out->ncap = i + 1 > out->ncap ? i + 1 : out->ncap;
    }
    for (size_t i = 0; i < out->ncap; i++) {
        if (!given[i]) {
            snprintf(err, errlen, "capacity: give every dimension up to '%s'",
                     cfg->dims[out->ncap - 1]);
            return SHARDZ_EINVAL;
        }
    }
    for (size_t i = out->ncap; i < SHARDZ_MAX_DIMS; i++) {
        out->cap[i] = 0;
    }
    return 0;
}

int szd_node_fields_parse(json_t *j, const szd_ns_config *cfg, szd_node_spec *out, char *err,
                          size_t errlen)
{
    const char *addr = json_string_value(json_object_get(j, "address"));
    if (!addr || strlen(addr) > SZD_ADDR_MAX ||
        szd_parse_address(addr, out->host, sizeof out->host, &out->port) != 0) {
        snprintf(err, errlen, "address must be \"host:port\"");
        return SHARDZ_EINVAL;
    }
    snprintf(out->address, sizeof out->address, "%s", addr);
    json_t *z = json_object_get(j, "zone");
    if (z && (!json_is_string(z) ||
              (json_string_length(z) > 0 && !szd_valid_id(json_string_value(z))))) {
        snprintf(err, errlen, "zone must be an id");
        return SHARDZ_EINVAL;
    }
    snprintf(out->zone, sizeof out->zone, "%s", z ? json_string_value(z) : "");
    return parse_capacity(json_object_get(j, "capacity"), cfg, out, err, errlen);
}

int szd_node_spec_parse(json_t *j, const szd_ns_config *cfg, szd_node_spec *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof *out);
    const char *id = json_string_value(json_object_get(j, "id"));
    if (!szd_valid_id(id)) {
        snprintf(err, errlen, "id must be 1-%d bytes of [A-Za-z0-9._:-]", SHARDZ_MAX_ID);
        return SHARDZ_EINVAL;
    }
    snprintf(out->id, sizeof out->id, "%s", id);
    int rc = szd_node_fields_parse(j, cfg, out, err, errlen);
    if (rc) {
        return rc;
    }
    json_t *feat = json_object_get(j, "features");
    if (feat && !json_is_array(feat)) {
        snprintf(err, errlen, "features must be a list of names");
        return SHARDZ_EINVAL;
    }
    size_t fi;
    json_t *fv;
    json_array_foreach(feat, fi, fv)
    {
        if (!json_is_string(fv)) {
            snprintf(err, errlen, "features must be a list of names");
            return SHARDZ_EINVAL;
        }
        out->delta = out->delta || strcmp(json_string_value(fv), "delta") == 0;
        out->transfer = out->transfer || strcmp(json_string_value(fv), "transfer") == 0;
    }
    json_t *incj = json_object_get(j, "incarnation");
    if (incj && !szd_valid_id(json_string_value(incj))) {
        snprintf(err, errlen, "incarnation must be 1-%d bytes of [A-Za-z0-9._:-]", SHARDZ_MAX_ID);
        return SHARDZ_EINVAL;
    }
    snprintf(out->incarnation, sizeof out->incarnation, "%s", incj ? json_string_value(incj) : "");
    json_t *stampj = json_object_get(j, "stamp");
    if (stampj && (!json_is_integer(stampj) || json_integer_value(stampj) < 0)) {
        snprintf(err, errlen, "stamp must be an integer >= 0 (the worker's clock, ms)");
        return SHARDZ_EINVAL;
    }
    out->stamp = stampj ? (int64_t)json_integer_value(stampj) : -1;
    return 0;
}
