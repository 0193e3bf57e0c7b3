/* libFuzzer target: the coordinator's namespace config parser (src/daemon/core/config.c), which
 * reads the body of POST /v1/namespaces and the config records loaded from the store. Input: the
 * request body's bytes, read as shardzd reads them (json_loadb, duplicates refused). The parser
 * must never crash, and whatever it accepts must be in the documented ranges
 * (docs/PROTOCOL.md section 3); a refusal must say why. Single-threaded: libFuzzer's thread. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/config.h"
#include "shardz/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether an accepted config keeps every documented bound. */
static int config_sane(const szd_ns_config *c)
{
    if (!szd_valid_ns_name(c->name) || c->replicas < 1 || c->replicas > SHARDZ_MAX_REPLICAS) {
        return 0;
    }
    if (strcmp(c->sharder, "replica") != 0 && strcmp(c->sharder, "hash") != 0 &&
        strcmp(c->sharder, "range") != 0) {
        return 0;
    }
    if (c->ping_interval_ms < 10 || c->ping_interval_ms > 60000 ||
        c->dead_after_ms <= c->ping_interval_ms || c->lease_ms <= c->ping_interval_ms) {
        return 0;
    }
    if (c->ndims < 1 || c->ndims > SHARDZ_MAX_DIMS) {
        return 0;
    }
    for (size_t i = 0; i < c->ndims; i++) {
        if (!szd_valid_id(c->dims[i])) {
            return 0;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(c->dims[i], c->dims[k]) == 0) {
                return 0;
            }
        }
    }
    if (c->slots < 64 || c->slots > (1u << 20) || (c->slots & (c->slots - 1)) != 0) {
        return 0;
    }
    if (!(c->band >= 0 && c->band <= 1) || c->load_tau_ms < 100 || c->load_tau_ms > 86400000) {
        return 0;
    }
    if (c->balance_interval_ms < 0 || c->balance_interval_ms > 86400000) {
        return 0;
    }
    return shardz_balance_policy_validate(&c->balance) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        return 0;
    }
    szd_ns_config c;
    char err[512] = "";
    int rc = szd_ns_config_parse(j, &c, err, sizeof err);
    if (rc == 0 && !config_sane(&c)) {
        abort(); /* accepted a config outside its documented ranges */
    }
    if (rc != 0 && (rc != SHARDZ_EINVAL || err[0] == '\0' || memchr(err, 0, sizeof err) == NULL)) {
        abort(); /* a refusal without its reason */
    }
    json_decref(j);
    return 0;
}
