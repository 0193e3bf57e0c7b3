/* The namespace config parser (config.h), pure. Any thread. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "daemon/core/config.h"
#include "shardz/error.h"

bool szd_valid_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > SHARDZ_MAX_ID) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-') {
            return false;
        }
    }
    return true;
}

bool szd_valid_ns_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > SZD_MAX_NS_NAME || !isalnum((unsigned char)s[0])) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isdigit(c) || (c >= 'a' && c <= 'z')) && c != '.' && c != '_' && c != '-') {
            return false;
        }
    }
    return true;
}

static bool json_int_in(json_t *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (!json_is_integer(v)) {
        return false;
    }
    int64_t x = json_integer_value(v);
    if (x < lo || x > hi) {
        return false;
    }
    *out = x;
    return true;
}

/* The "balance" object: {"interval_ms", "band", "max_moves_fraction", "cooldown_ms",
 * "hysteresis", "weights": {dim: w}}; every field optional. */
static int parse_balance(json_t *b, szd_ns_config *c, char *err, size_t errlen)
{
    shardz_balance_policy_default(&c->balance);
    c->balance_interval_ms = 30000;
    if (!b) {
        return 0;
    }
    if (!json_is_object(b)) {
        snprintf(err, errlen, "balance must be an object");
        return SHARDZ_EINVAL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v)
    {
        bool ok = true;
        if (strcmp(k, "interval_ms") == 0) {
            ok = json_int_in(v, 0, 86400000, &c->balance_interval_ms);
        } else if (strcmp(k, "cooldown_ms") == 0) {
            ok = json_int_in(v, 0, 86400000, &c->balance.cooldown_ms);
        } else if (strcmp(k, "band") == 0 || strcmp(k, "max_moves_fraction") == 0 ||
                   strcmp(k, "hysteresis") == 0) {
            double x = json_number_value(v);
            ok = json_is_number(v);
            if (strcmp(k, "band") == 0) {
                c->balance.band = x;
            } else if (strcmp(k, "max_moves_fraction") == 0) {
                c->balance.max_moves_fraction = x;
            } else {
                c->balance.hysteresis = x;
            }
        } else if (strcmp(k, "weights") == 0 && json_is_object(v)) {
            const char *dn;
            json_t *w;
            c->balance.ndims_weight = c->ndims;
            for (size_t d = 0; d < SHARDZ_MAX_DIMS; d++) {
                c->balance.dims_weight[d] = 1;
            }
            json_object_foreach(v, dn, w)
            {
                size_t d = 0;
                while (d < c->ndims && strcmp(c->dims[d], dn) != 0) {
                    d++;
                }
                if (d == c->ndims || !json_is_number(w)) {
                    snprintf(err, errlen, "balance.weights: '%s' is not a dimension with a number",
                             dn);
                    return SHARDZ_EINVAL;
                }
                c->balance.dims_weight[d] = json_number_value(w);
            }
        } else {
            snprintf(err, errlen, "balance: unknown field '%s'", k);
            return SHARDZ_EINVAL;
        }
        if (!ok) {
            snprintf(err, errlen, "balance.%s is out of range", k);
            return SHARDZ_EINVAL;
        }
    }
    if (shardz_balance_policy_validate(&c->balance) != 0) {
        snprintf(err, errlen,
                 "balance: band, max_moves_fraction and hysteresis must be in [0, 1], "
                 "weights >= 0");
        return SHARDZ_EINVAL;
    }
    return 0;
}

int szd_ns_config_parse(json_t *j, szd_ns_config *c, char *err, size_t errlen)
{
    static const char *const known[] = {
        "name",        "sharder",          "replicas",      "roles",
        "consistency", "ping_interval_ms", "dead_after_ms", "lease_ms",
        "dimensions",  "partitions",       "slots",         "band",
        "load_tau_ms", "balance",          "min_available", "max_moves_in_flight",
        "frozen",      "startup_grace_ms", "min_nodes",     "transfer_timeout_ms"};
    memset(c, 0, sizeof *c);
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(known[i], k) != 0) {
            i++;
        }
        if (i == sizeof known / sizeof known[0]) {
            snprintf(err, errlen, "unknown field '%s'", k);
            return SHARDZ_EINVAL;
        }
    }
    const char *name = json_string_value(json_object_get(j, "name"));
    if (!szd_valid_ns_name(name)) {
        snprintf(err, errlen,
                 "name must be 1-%d bytes of [a-z0-9._-] starting with a letter or "
                 "digit",
                 SZD_MAX_NS_NAME);
        return SHARDZ_EINVAL;
    }
    snprintf(c->name, sizeof c->name, "%s", name);
    v = json_object_get(j, "sharder");
    const char *kind = v ? json_string_value(v) : "replica";
    if (!kind ||
        (strcmp(kind, "replica") != 0 && strcmp(kind, "hash") != 0 && strcmp(kind, "range") != 0)) {
        snprintf(err, errlen, "sharder must be \"replica\", \"hash\" or \"range\"");
        return SHARDZ_EINVAL;
    }
    snprintf(c->sharder, sizeof c->sharder, "%s", kind);
    int64_t x = 1;
    v = json_object_get(j, "replicas");
    if (v && !json_int_in(v, 1, SHARDZ_MAX_REPLICAS, &x)) {
        snprintf(err, errlen, "replicas must be an integer in [1, %d]", SHARDZ_MAX_REPLICAS);
        return SHARDZ_EINVAL;
    }
    c->replicas = (unsigned)x;
    v = json_object_get(j, "roles");
    if (v && !json_is_boolean(v)) {
        snprintf(err, errlen, "roles must be true or false");
        return SHARDZ_EINVAL;
    }
    c->roles = v && json_is_true(v);
    v = json_object_get(j, "consistency");
    const char *cons = v ? json_string_value(v) : "available";
    if (!cons || (strcmp(cons, "available") != 0 && strcmp(cons, "strict") != 0)) {
        snprintf(err, errlen, "consistency must be \"available\" or \"strict\"");
        return SHARDZ_EINVAL;
    }
    c->strict = strcmp(cons, "strict") == 0;
    c->ping_interval_ms = 200;
    v = json_object_get(j, "ping_interval_ms");
    if (v && !json_int_in(v, 10, 60000, &c->ping_interval_ms)) {
        snprintf(err, errlen, "ping_interval_ms must be an integer in [10, 60000]");
        return SHARDZ_EINVAL;
    }
    c->dead_after_ms = v ? 4 * c->ping_interval_ms : 800;
    v = json_object_get(j, "dead_after_ms");
    if (v && !json_int_in(v, c->ping_interval_ms + 1, 3600000, &c->dead_after_ms)) {
        snprintf(err, errlen, "dead_after_ms must be an integer above ping_interval_ms (%lld)",
                 (long long)c->ping_interval_ms);
        return SHARDZ_EINVAL;
    }
    c->lease_ms = c->dead_after_ms + c->ping_interval_ms;
    v = json_object_get(j, "lease_ms");
    /* up to the largest default (dead_after_ms + ping_interval_ms at their bounds): the config
     * record holds the lease in effect, and the load must take every value a create made */
    if (v && !json_int_in(v, c->ping_interval_ms + 1, 3600000 + 60000, &c->lease_ms)) {
        snprintf(err, errlen,
                 "lease_ms must be an integer above ping_interval_ms (%lld), at most 3660000",
                 (long long)c->ping_interval_ms);
        return SHARDZ_EINVAL;
    }
    v = json_object_get(j, "dimensions");
    if (!v) {
        c->ndims = 1;
        snprintf(c->dims[0], sizeof c->dims[0], "load");
    } else {
        if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > SHARDZ_MAX_DIMS) {
            snprintf(err, errlen, "dimensions must be a list of 1 to %d names", SHARDZ_MAX_DIMS);
            return SHARDZ_EINVAL;
        }
        c->ndims = json_array_size(v);
        for (size_t i = 0; i < c->ndims; i++) {
            const char *dn = json_string_value(json_array_get(v, i));
            if (!szd_valid_id(dn) || strlen(dn) >= sizeof c->dims[0]) {
                snprintf(err, errlen, "dimension %zu is not a valid name", i);
                return SHARDZ_EINVAL;
            }
            for (size_t k2 = 0; k2 < i; k2++) {
                if (strcmp(c->dims[k2], dn) == 0) {
                    snprintf(err, errlen, "dimension '%s' is given twice", dn);
                    return SHARDZ_EINVAL;
                }
            }
            snprintf(c->dims[i], sizeof c->dims[i], "%s", dn);
        }
    }
    x = 16384;
    v = json_object_get(j, "slots");
    if (v && (!json_int_in(v, 64, 1 << 20, &x) || (x & (x - 1)) != 0)) {
        snprintf(err, errlen, "slots must be a power of two in [64, 1048576]");
        return SHARDZ_EINVAL;
    }
    c->slots = (uint32_t)x;
    v = json_object_get(j, "band");
    if (v) {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1) {
            snprintf(err, errlen, "band must be a number in [0, 1]");
            return SHARDZ_EINVAL;
        }
        c->band = json_number_value(v);
    }
    c->load_tau_ms = 60000;
    v = json_object_get(j, "load_tau_ms");
    if (v && !json_int_in(v, 100, 86400000, &c->load_tau_ms)) {
        snprintf(err, errlen, "load_tau_ms must be an integer in [100, 86400000]");
        return SHARDZ_EINVAL;
    }
    c->transfer_timeout_ms = 30000;
    v = json_object_get(j, "transfer_timeout_ms");
    if (v && !json_int_in(v, 0, 3600000, &c->transfer_timeout_ms)) {
        snprintf(err, errlen, "transfer_timeout_ms must be an integer in [0, 3600000]");
        return SHARDZ_EINVAL;
    }
    x = c->replicas > 1 ? (int64_t)c->replicas - 1 : 0;
    v = json_object_get(j, "min_available");
    if (v && !json_int_in(v, 0, c->replicas, &x)) {
        snprintf(err, errlen, "min_available must be an integer in [0, replicas (%u)]",
                 c->replicas);
        return SHARDZ_EINVAL;
    }
    c->min_available = (uint32_t)x;
    x = 0;
    v = json_object_get(j, "max_moves_in_flight");
    if (v && !json_int_in(v, 0, 1000000, &x)) {
        snprintf(err, errlen,
                 "max_moves_in_flight must be an integer in [0, 1000000] (0: no limit)");
        return SHARDZ_EINVAL;
    }
    c->max_moves_in_flight = (uint32_t)x;
    v = json_object_get(j, "frozen");
    if (v && !json_is_boolean(v)) {
        snprintf(err, errlen, "frozen must be true or false");
        return SHARDZ_EINVAL;
    }
    c->frozen = v && json_is_true(v);
    v = json_object_get(j, "startup_grace_ms");
    if (v && !json_int_in(v, 0, 3600000, &c->startup_grace_ms)) {
        snprintf(err, errlen, "startup_grace_ms must be an integer in [0, 3600000]");
        return SHARDZ_EINVAL;
    }
    x = 0;
    v = json_object_get(j, "min_nodes");
    if (v && !json_int_in(v, 0, 100000, &x)) {
        snprintf(err, errlen, "min_nodes must be an integer in [0, 100000]");
        return SHARDZ_EINVAL;
    }
    c->min_nodes = (uint32_t)x;
    return parse_balance(json_object_get(j, "balance"), c, err, errlen);
}

int szd_ns_config_patch(const szd_ns_config *cur, json_t *cur_json, json_t *patch,
                        szd_ns_config *out, char *err, size_t errlen)
{
    static const char *const live[] = {
        "replicas",    "ping_interval_ms", "dead_after_ms", "lease_ms",
        "load_tau_ms", "balance",          "min_available", "max_moves_in_flight",
        "frozen",      "startup_grace_ms", "min_nodes",     "transfer_timeout_ms"};
    static const char *const timings[] = {"ping_interval_ms", "dead_after_ms", "lease_ms"};
    if (!json_is_object(patch) || json_object_size(patch) == 0) {
        snprintf(err, errlen, "the body must be an object of the fields to change");
        return SHARDZ_EINVAL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(patch, k, v)
    {
        size_t i = 0;
        while (i < sizeof live / sizeof live[0] && strcmp(live[i], k) != 0) {
            i++;
        }
        if (i == sizeof live / sizeof live[0]) {
            snprintf(err, errlen,
                     "field '%s' cannot be changed (live: replicas, timings, balance, "
                     "min_available, max_moves_in_flight, frozen, startup_grace_ms, min_nodes, "
                     "transfer_timeout_ms)",
                     k);
            return SHARDZ_EINVAL;
        }
        for (size_t t = 0; cur->strict && t < sizeof timings / sizeof timings[0]; t++) {
            if (strcmp(timings[t], k) == 0) {
                snprintf(err, errlen,
                         "%s cannot be changed in a strict namespace (its leases were granted "
                         "under the current timings)",
                         k);
                return SHARDZ_EINVAL;
            }
        }
    }
    json_t *rep = json_object_get(patch, "replicas");
    bool same = json_is_integer(rep) && json_integer_value(rep) == (json_int_t)cur->replicas;
    if (rep && !same && strcmp(cur->sharder, "replica") != 0) {
        snprintf(err, errlen, "replicas can be changed only in replica namespaces (this one is %s)",
                 cur->sharder);
        return SHARDZ_EINVAL;
    }
    if (json_is_integer(rep) && !json_object_get(patch, "min_available") &&
        json_integer_value(rep) >= 1 && json_integer_value(rep) < (json_int_t)cur->min_available) {
        snprintf(err, errlen,
                 "replicas (%lld) would be below min_available (%u): lower min_available in the "
                 "same patch",
                 (long long)json_integer_value(rep), cur->min_available);
        return SHARDZ_EINVAL;
    }
    json_t *merged = json_deep_copy(cur_json);
    if (!merged) {
        snprintf(err, errlen, "out of memory");
        return SHARDZ_ENOMEM;
    }
    json_object_update(merged, patch); /* every other field as it is now */
    int rc = szd_ns_config_parse(merged, out, err, errlen);
    json_decref(merged);
    return rc;
}
