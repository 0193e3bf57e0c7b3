/* The worker side of the protocol's messages (docs/PROTOCOL.md 4.2, 4.3): parses and validates
 * a ping or an assignment (full or delta) addressed to this worker. Pure: no thread, socket or
 * clock; every field is bounded; a message that fails any check is rejected whole, with a
 * reason. Runs on whichever thread hands it a body (the worker's event thread, a fuzzer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/lib_int.h"
#include "shardz/error.h"

#define P_LEASE_MAX 86400000 /* a day: anything longer is a typo */
#define P_SLOT_MAX 255
#define P_GEN_MAX INT64_MAX

int szl_consistency(const json_t *obj)
{
    const json_t *v = json_object_get(obj, "consistency");
    const char *s;

    if (v == NULL) {
        return -1;
    }
    s = json_string_value(v);
    return s != NULL && strcmp(s, "available") == 0 ? 0 : 1;
}

/* Loads body as a JSON object addressed to (ns, node). */
static int p_load(const char *body, size_t len, const char *ns, const char *node, json_t **out,
                  char *msg, size_t msglen)
{
    json_error_t jerr;
    json_t *root;
    const char *mns;
    const char *mnode;

    *out = NULL;
    if (body == NULL || len == 0) {
        snprintf(msg, msglen, "empty body");
        return SHARDZ_EINVAL;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        snprintf(msg, msglen, "malformed JSON: %s (line %d)", jerr.text, jerr.line);
        return SHARDZ_EINVAL;
    }
    if (!json_is_object(root)) {
        snprintf(msg, msglen, "the body is not a JSON object");
        goto einval;
    }
    mns = json_string_value(json_object_get(root, "namespace"));
    mnode = json_string_value(json_object_get(root, "node"));
    if (mns == NULL || mnode == NULL) {
        snprintf(msg, msglen, "\"namespace\" and \"node\" are required strings");
        goto einval;
    }
    if (strcmp(mns, ns) != 0 || strcmp(mnode, node) != 0) {
        snprintf(msg, msglen, "addressed to %.63s/%.255s, this is %s/%s", mns, mnode, ns, node);
        json_decref(root);
        return SHARDZ_EPROTO;
    }
    *out = root;
    return 0;
einval:
    json_decref(root);
    return SHARDZ_EINVAL;
}

/* "revision" (required), "lease_ms", "lease_stamp" and "term" (optional; lease_stamp and term
 * -1 when absent; lease_stamp is ignored without lease_ms). */
static int p_common(const json_t *root, int64_t *revision, int64_t *lease_ms, int64_t *lease_stamp,
                    int64_t *term, char *msg, size_t msglen)
{
    *lease_ms = 0;
    *lease_stamp = -1;
    *term = -1;
    if (json_object_get(root, "term") != NULL && !szl_get_int(root, "term", 0, INT64_MAX, term)) {
        snprintf(msg, msglen, "\"term\" must be an integer >= 0");
        return SHARDZ_EINVAL;
    }
    if (!szl_get_int(root, "revision", 0, INT64_MAX, revision)) {
        snprintf(msg, msglen, "\"revision\" must be an integer >= 0");
        return SHARDZ_EINVAL;
    }
    if (json_object_get(root, "lease_ms") != NULL &&
        !szl_get_int(root, "lease_ms", 1, P_LEASE_MAX, lease_ms)) {
        snprintf(msg, msglen, "\"lease_ms\" must be an integer in [1, %d]", P_LEASE_MAX);
        return SHARDZ_EINVAL;
    }
    if (json_object_get(root, "lease_stamp") != NULL &&
        !szl_get_int(root, "lease_stamp", 0, INT64_MAX, lease_stamp)) {
        snprintf(msg, msglen, "\"lease_stamp\" must be an integer >= 0");
        return SHARDZ_EINVAL;
    }
    return 0;
}

int szl_parse_ping(const char *body, size_t len, const char *ns, const char *node, szl_ping *out,
                   char *msg, size_t msglen)
{
    json_t *root;
    int rc;

    memset(out, 0, sizeof *out);
    rc = p_load(body, len, ns, node, &root, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    rc = p_common(root, &out->revision, &out->lease_ms, &out->lease_stamp, &out->term, msg, msglen);
    out->consistency = szl_consistency(root);
    json_decref(root);
    if (rc != 0) {
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* A short name field (role, state): 1-63 bytes of id characters. */
static int p_name(const json_t *rep, const char *key, const char *dflt, char *dst, size_t i,
                  char *msg, size_t msglen)
{
    const json_t *v = json_object_get(rep, key);
    const char *s;

    if (v == NULL && dflt != NULL) {
        s = dflt;
    } else {
        s = json_string_value(v);
        if (s == NULL || !szl_valid_id(s, SZL_NAME_MAX)) {
            snprintf(msg, msglen, "replicas[%zu].%s must be a name of 1-%d id characters", i, key,
                     SZL_NAME_MAX);
            return SHARDZ_EINVAL;
        }
    }
    strcpy(dst, s);
    return 0;
}

/* An optional range bound: a string of at most SZL_RANGE_MAX bytes, or null. */
static int p_bound(const json_t *range, const char *key, char **dst, size_t i, char *msg,
                   size_t msglen)
{
    const json_t *v = json_object_get(range, key);

    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_string(v) || json_string_length(v) > SZL_RANGE_MAX ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(msg, msglen, "replicas[%zu].range.%s must be a string of at most %d bytes", i, key,
                 SZL_RANGE_MAX);
        return SHARDZ_EINVAL;
    }
    *dst = strdup(json_string_value(v));
    return *dst == NULL ? SHARDZ_ENOMEM : 0;
}

/* The optional "from" of a replica (state transfer, PROTOCOL.md 4.3): {"node": id, "address":
 * "host:port"}. */
static int p_from(const json_t *from, szl_rep *r, size_t i, char *msg, size_t msglen)
{
    const char *node, *addr;

    if (from == NULL || json_is_null(from)) {
        return 0;
    }
    node = json_string_value(json_object_get(from, "node"));
    addr = json_string_value(json_object_get(from, "address"));
    if (!json_is_object(from) || node == NULL || !szl_valid_id(node, SZL_ID_MAX) || addr == NULL ||
        addr[0] == '\0' || strlen(addr) > SZL_HOST_MAX + 6) {
        snprintf(msg, msglen, "replicas[%zu].from must be {\"node\": id, \"address\": host:port}",
                 i);
        return SHARDZ_EINVAL;
    }
    r->from_node = strdup(node);
    r->from_address = strdup(addr);
    return r->from_node == NULL || r->from_address == NULL ? SHARDZ_ENOMEM : 0;
}

static int p_replica(const json_t *rep, size_t i, szl_rep *r, char *msg, size_t msglen)
{
    const char *pid;
    const json_t *range;
    int64_t slot;
    int rc;

    if (!json_is_object(rep)) {
        snprintf(msg, msglen, "replicas[%zu] is not an object", i);
        return SHARDZ_EINVAL;
    }
    pid = json_string_value(json_object_get(rep, "partition"));
    if (pid == NULL || !szl_valid_id(pid, SZL_ID_MAX)) {
        snprintf(msg, msglen, "replicas[%zu].partition must be an id (1-255 of [A-Za-z0-9._:-])",
                 i);
        return SHARDZ_EINVAL;
    }
    if (!szl_get_int(rep, "generation", 0, P_GEN_MAX, &r->generation)) {
        snprintf(msg, msglen, "replicas[%zu].generation must be an integer >= 0", i);
        return SHARDZ_EINVAL;
    }
    slot = 0;
    if (json_object_get(rep, "slot") != NULL && !szl_get_int(rep, "slot", 0, P_SLOT_MAX, &slot)) {
        snprintf(msg, msglen, "replicas[%zu].slot must be an integer in [0, %d]", i, P_SLOT_MAX);
        return SHARDZ_EINVAL;
    }
    r->slot = (unsigned)slot;
    rc = p_name(rep, "role", "none", r->role, i, msg, msglen);
    if (rc == 0) {
        rc = p_name(rep, "state", "serving", r->state, i, msg, msglen);
    }
    if (rc != 0) {
        return rc;
    }
    range = json_object_get(rep, "range");
    if (range != NULL && !json_is_null(range)) {
        if (!json_is_object(range)) {
            snprintf(msg, msglen, "replicas[%zu].range must be an object {lo, hi}", i);
            return SHARDZ_EINVAL;
        }
        rc = p_bound(range, "lo", &r->range_lo, i, msg, msglen);
        if (rc == 0) {
            rc = p_bound(range, "hi", &r->range_hi, i, msg, msglen);
        }
        if (rc != 0) {
            return rc;
        }
    }
    rc = p_from(json_object_get(rep, "from"), r, i, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    r->partition = strdup(pid);
    return r->partition == NULL ? SHARDZ_ENOMEM : 0;
}

static int p_rep_cmp(const void *a, const void *b)
{
    return strcmp(((const szl_rep *)a)->partition, ((const szl_rep *)b)->partition);
}

static int p_str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A delta's "base_revision" and "removed" (docs/PROTOCOL.md 4.3), after the replicas. A message
 * with neither is a full assignment. */
static int p_delta(const json_t *root, szl_assign *out, char *msg, size_t msglen)
{
    const json_t *base = json_object_get(root, "base_revision");
    const json_t *rm = json_object_get(root, "removed");

    if (base == NULL) {
        if (rm != NULL) {
            snprintf(msg, msglen, "\"removed\" is only for a delta (with \"base_revision\")");
            return SHARDZ_EPROTO;
        }
        return 0;
    }
    if (!szl_get_int(root, "base_revision", 0, INT64_MAX, &out->base_revision)) {
        snprintf(msg, msglen, "\"base_revision\" must be an integer >= 0");
        return SHARDZ_EINVAL;
    }
    if (out->base_revision >= out->revision) {
        snprintf(msg, msglen, "\"base_revision\" (%lld) must be below \"revision\" (%lld)",
                 (long long)out->base_revision, (long long)out->revision);
        return SHARDZ_EINVAL;
    }
    out->delta = true;
    if (out->released) {
        snprintf(msg, msglen, "a release is never a delta");
        return SHARDZ_EPROTO;
    }
    if (rm == NULL) {
        return 0;
    }
    if (!json_is_array(rm)) {
        snprintf(msg, msglen, "\"removed\" must be an array of partition ids");
        return SHARDZ_EINVAL;
    }
    if (json_array_size(rm) > 0) {
        out->removed = calloc(json_array_size(rm), sizeof *out->removed);
        if (out->removed == NULL) {
            return SHARDZ_ENOMEM;
        }
    }
    for (size_t i = 0; i < json_array_size(rm); i++) {
        const char *pid = json_string_value(json_array_get(rm, i));
        if (pid == NULL || !szl_valid_id(pid, SZL_ID_MAX)) {
            snprintf(msg, msglen, "removed[%zu] must be an id (1-255 of [A-Za-z0-9._:-])", i);
            return SHARDZ_EINVAL;
        }
        out->removed[i] = strdup(pid);
        if (out->removed[i] == NULL) {
            return SHARDZ_ENOMEM;
        }
        out->nremoved = i + 1; /* freed by szl_assign_free even when half filled */
    }
    if (out->nremoved > 1) {
        qsort(out->removed, out->nremoved, sizeof *out->removed, p_str_cmp);
    }
    for (size_t i = 0; i < out->nremoved; i++) {
        if (i > 0 && strcmp(out->removed[i - 1], out->removed[i]) == 0) {
            snprintf(msg, msglen, "partition %s is removed twice", out->removed[i]);
            return SHARDZ_EPROTO;
        }
        if (szl_assign_find(out, out->removed[i]) != NULL) {
            snprintf(msg, msglen, "partition %s is both listed and removed", out->removed[i]);
            return SHARDZ_EPROTO;
        }
    }
    return 0;
}

int szl_parse_assign(const char *body, size_t len, const char *ns, const char *node,
                     szl_assign *out, char *msg, size_t msglen)
{
    json_t *root;
    const json_t *reps;
    const json_t *rel;
    int rc;

    memset(out, 0, sizeof *out);
    rc = p_load(body, len, ns, node, &root, msg, msglen);
    if (rc != 0) {
        return rc;
    }
    rc = p_common(root, &out->revision, &out->lease_ms, &out->lease_stamp, &out->term, msg, msglen);
    if (rc != 0) {
        goto out;
    }
    out->consistency = szl_consistency(root);
    rel = json_object_get(root, "released");
    if (rel != NULL && !json_is_boolean(rel)) {
        snprintf(msg, msglen, "\"released\" must be a boolean");
        rc = SHARDZ_EINVAL;
        goto out;
    }
    out->released = json_is_true(rel);
    if (json_object_get(root, "resync_from") != NULL &&
        (!szl_get_int(root, "resync_from", 1, INT64_MAX, &out->resync_from) ||
         json_object_get(root, "base_revision") != NULL)) {
        snprintf(msg, msglen, "\"resync_from\" must be an integer >= 1, on a full assignment");
        rc = SHARDZ_EINVAL;
        goto out;
    }
    reps = json_object_get(root, "replicas");
    if (reps == NULL && out->released) {
        goto delta; /* a release may leave the list out */
    }
    if (!json_is_array(reps)) {
        snprintf(msg, msglen, "\"replicas\" must be an array");
        rc = SHARDZ_EINVAL;
        goto out;
    }
    if (out->released && json_array_size(reps) > 0) {
        snprintf(msg, msglen, "a release must carry no replicas");
        rc = SHARDZ_EPROTO;
        goto out;
    }
    if (json_array_size(reps) > 0) {
        out->reps = calloc(json_array_size(reps), sizeof *out->reps);
        if (out->reps == NULL) {
            rc = SHARDZ_ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < json_array_size(reps); i++) {
        rc = p_replica(json_array_get(reps, i), i, &out->reps[i], msg, msglen);
        out->n = i + 1; /* freed by szl_assign_free even when half filled */
        if (rc != 0) {
            goto out;
        }
    }
    if (out->n > 1) {
        qsort(out->reps, out->n, sizeof *out->reps, p_rep_cmp);
    }
    for (size_t i = 1; i < out->n; i++) {
        if (strcmp(out->reps[i - 1].partition, out->reps[i].partition) == 0) {
            snprintf(msg, msglen, "partition %s is listed twice", out->reps[i].partition);
            rc = SHARDZ_EPROTO;
            goto out;
        }
    }
delta:
    rc = p_delta(root, out, msg, msglen);
out:
    json_decref(root);
    if (rc != 0) {
        if (rc == SHARDZ_ENOMEM) {
            snprintf(msg, msglen, "out of memory");
        }
        szl_assign_free(out);
    }
    return rc;
}

void szl_assign_free(szl_assign *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->reps[i].partition);
        free(a->reps[i].range_lo);
        free(a->reps[i].range_hi);
        free(a->reps[i].from_node);
        free(a->reps[i].from_address);
    }
    free(a->reps);
    for (size_t i = 0; i < a->nremoved; i++) {
        free(a->removed[i]);
    }
    free(a->removed);
    memset(a, 0, sizeof *a);
}

bool szl_assign_removes(const szl_assign *a, const char *partition)
{
    return a->nremoved > 0 &&
           bsearch(&partition, a->removed, a->nremoved, sizeof *a->removed, p_str_cmp) != NULL;
}

const szl_rep *szl_assign_find(const szl_assign *a, const char *partition)
{
    size_t lo = 0;
    size_t hi = a->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(partition, a->reps[mid].partition);
        if (c == 0) {
            return &a->reps[mid];
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}
