/* libFuzzer target: the coordinator's node registration parser (src/daemon/core/node_spec.c),
 * which reads the body of POST /v1/namespaces/NS/nodes and the node records loaded from the
 * store. Input: the body's bytes, read as shardzd reads them (json_loadb, duplicates refused),
 * against a namespace of three load dimensions. The parser must never crash; what it accepts
 * must be in the documented ranges (docs/PROTOCOL.md 4.1) and read back the same when written
 * out again; a refusal must say why. Single-threaded: libFuzzer's thread. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/node_spec.h"
#include "shardz/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether an accepted spec keeps every documented bound. */
static int spec_sane(const szd_node_spec *s, const szd_ns_config *cfg)
{
    if (!szd_valid_id(s->id) || (s->zone[0] && !szd_valid_id(s->zone))) {
        return 0;
    }
    if (s->incarnation[0] && !szd_valid_id(s->incarnation)) {
        return 0;
    }
    if (s->host[0] == '\0' || s->port == 0 || strlen(s->address) > SZD_ADDR_MAX ||
        strncmp(s->address, s->host, strlen(s->host)) != 0) {
        return 0;
    }
    if (s->stamp < -1 || s->ncap > cfg->ndims) {
        return 0;
    }
    for (size_t i = 0; i < s->ncap; i++) {
        if (!isfinite(s->cap[i]) || s->cap[i] <= 0 || s->cap[i] > SZD_CAPACITY_MAX) {
            return 0;
        }
    }
    return 1;
}

/* The registration body that says what s says. */
static json_t *spec_json(const szd_node_spec *s, const szd_ns_config *cfg)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:I}", "id", s->id, "address", s->address, "zone",
                          s->zone, "stamp", (json_int_t)s->stamp);
    if (j == NULL) {
        abort();
    }
    if (s->stamp < 0) {
        json_object_del(j, "stamp");
    }
    if (s->incarnation[0]) {
        json_object_set_new(j, "incarnation", json_string(s->incarnation));
    }
    json_t *feat = json_array();
    if (s->delta) {
        json_array_append_new(feat, json_string("delta"));
    }
    if (s->transfer) {
        json_array_append_new(feat, json_string("transfer"));
    }
    json_object_set_new(j, "features", feat);
    json_t *cap = json_object();
    for (size_t i = 0; i < s->ncap; i++) {
        json_object_set_new(cap, cfg->dims[i], json_real(s->cap[i]));
    }
    json_object_set_new(j, "capacity", cap);
    return j;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    szd_ns_config cfg = {.ndims = 3};
    strcpy(cfg.dims[0], "load");
    strcpy(cfg.dims[1], "mem");
    strcpy(cfg.dims[2], "disk");
    json_error_t jerr;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        return 0;
    }
    szd_node_spec s;
    char err[512] = "";
    int rc = szd_node_spec_parse(j, &cfg, &s, err, sizeof err);
    json_decref(j);
    if (rc != 0) {
        if (rc != SHARDZ_EINVAL || err[0] == '\0' || memchr(err, 0, sizeof err) == NULL) {
            abort(); /* a refusal without its reason */
        }
        return 0;
    }
    if (!spec_sane(&s, &cfg)) {
        abort(); /* accepted a registration outside its documented ranges */
    }
    json_t *again = spec_json(&s, &cfg);
    szd_node_spec s2;
    if (szd_node_spec_parse(again, &cfg, &s2, err, sizeof err) != 0 ||
        memcmp(&s, &s2, sizeof s) != 0) {
        abort(); /* what it accepted does not read back the same */
    }
    json_decref(again);
    return 0;
}
