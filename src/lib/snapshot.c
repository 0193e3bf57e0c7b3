/* Router snapshots: an immutable, reference-counted copy of a namespace's /state (PROTOCOL.md
 * section 7) laid out for lookups: partitions in id order with an open-addressing index by id,
 * and in a hash namespace a flat slot -> partition array, so a key lookup is the key's hash
 * plus one array read. Built once by the router thread (or shardz_snapshot_from_state), then
 * only read: every lookup is thread-safe without a lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "lib/lib_int.h"
#include "shardz/error.h"
#include "shardz/hash.h"

#define S_NONE SZL_SLOT_NONE
#define S_CHUNK 65536
#define S_ADDR_MAX 300

static const char *s_str(shardz_snapshot *s, const char *str)
{
    size_t n = strlen(str) + 1;
    szl_chunk *c = s->strings;
    char *p;

    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > S_CHUNK ? n : S_CHUNK;
        c = malloc(sizeof *c + cap);
        if (c == NULL) {
            return NULL;
        }
        c->next = s->strings;
        c->used = 0;
        c->cap = cap;
        s->strings = c;
    }
    p = c->data + c->used;
    memcpy(p, str, n);
    c->used += n;
    return p;
}

static void s_free(shardz_snapshot *s)
{
    if (s == NULL) {
        return;
    }
    while (s->strings != NULL) {
        szl_chunk *c = s->strings;
        s->strings = c->next;
        free(c);
    }
    free(s->slot_part);
    free(s->ranges);
    free(s->parts);
    free(s->phash);
    free(s->reps);
    free(s->idx);
    free(s);
}

/* A partition of the state, sorted by id before the snapshot is laid out. */
typedef struct {
    const char *id;
    const json_t *obj;
} s_part;

static int s_part_cmp(const void *a, const void *b)
{
    return strcmp(((const s_part *)a)->id, ((const s_part *)b)->id);
}

static int s_rep_cmp(const void *a, const void *b)
{
    const shardz_route_replica *x = a;
    const shardz_route_replica *y = b;

    return x->slot < y->slot ? -1 : x->slot > y->slot;
}

/* One element of a partition's "slots": n (one slot), [lo, hi] or {"lo", "hi"}, half-open. */
static int s_slot_elem(const json_t *e, int64_t *lo, int64_t *hi)
{
    if (json_is_integer(e)) {
        *lo = json_integer_value(e);
        *hi = *lo + 1;
    } else if (json_is_array(e) && json_array_size(e) == 2 &&
               json_is_integer(json_array_get(e, 0)) && json_is_integer(json_array_get(e, 1))) {
        *lo = json_integer_value(json_array_get(e, 0));
        *hi = json_integer_value(json_array_get(e, 1));
    } else if (json_is_object(e) && szl_get_int(e, "lo", 0, INT64_MAX - 1, lo) &&
               szl_get_int(e, "hi", 0, INT64_MAX - 1, hi)) {
        /* read */
    } else {
        return SHARDZ_EINVAL;
    }
    if (*lo < 0 || *hi <= *lo || *hi > (int64_t)SHARDZ_HASH_SLOTS_MAX) {
        return SHARDZ_EINVAL;
    }
    return 0;
}

/* A string member, or dflt when absent; NULL when present but not a bounded string. */
static const char *s_member(const json_t *o, const char *key, const char *dflt, size_t max)
{
    const json_t *v = json_object_get(o, key);

    if (v == NULL || json_is_null(v)) {
        return dflt;
    }
    if (!json_is_string(v) || json_string_length(v) > max) {
        return NULL;
    }
    return json_string_value(v);
}

/* Lays out partition i's replicas at reps (room for all of them). */
static int s_replicas(shardz_snapshot *s, const json_t *nodes, const s_part *sp, shardz_route *rt,
                      shardz_route_replica *reps, char *err, size_t errlen)
{
    const json_t *arr = json_object_get(sp->obj, "replicas");
    int primary = -1;

    rt->replicas = reps;
    rt->nreplicas = json_array_size(arr);
    rt->target = -1;
    for (size_t k = 0; k < rt->nreplicas; k++) {
        const json_t *o = json_array_get(arr, k);
        const json_t *node;
        const char *nid = json_string_value(json_object_get(o, "node"));
        const char *addr;
        const char *role;
        const char *state;
        const char *nstate;
        int64_t v;
        shardz_route_replica *r = &reps[k];

        if (!json_is_object(o) || nid == NULL || !szl_valid_id(nid, SZL_ID_MAX)) {
            snprintf(err, errlen, "partition %s: replica %zu needs a node id", sp->id, k);
            return SHARDZ_EINVAL;
        }
        node = json_object_get(nodes, nid);
        addr = s_member(o, "address", s_member(node, "address", "", S_ADDR_MAX), S_ADDR_MAX);
        role = s_member(o, "role", "none", SZL_NAME_MAX);
        state = s_member(o, "state", "serving", SZL_NAME_MAX);
        nstate = s_member(node, "state", "", SZL_NAME_MAX);
        if (addr == NULL || role == NULL || state == NULL || nstate == NULL) {
            snprintf(err, errlen, "partition %s: replica %zu has a bad string field", sp->id, k);
            return SHARDZ_EINVAL;
        }
        r->node = s_str(s, nid);
        r->address = s_str(s, addr);
        r->role = s_str(s, role);
        r->state = s_str(s, state);
        r->node_state = s_str(s, nstate);
        if (r->node == NULL || r->address == NULL || r->role == NULL || r->state == NULL ||
            r->node_state == NULL) {
            return SHARDZ_ENOMEM;
        }
        r->slot = (unsigned)k;
        if (json_object_get(o, "slot") != NULL) {
            if (!szl_get_int(o, "slot", 0, 255, &v)) {
                snprintf(err, errlen, "partition %s: replica %zu has a bad slot", sp->id, k);
                return SHARDZ_EINVAL;
            }
            r->slot = (unsigned)v;
        }
        r->generation = rt->generation;
        if (json_object_get(o, "generation") != NULL) {
            if (!szl_get_int(o, "generation", 0, INT64_MAX, &v)) {
                snprintf(err, errlen, "partition %s: replica %zu has a bad generation", sp->id, k);
                return SHARDZ_EINVAL;
            }
            r->generation = v;
        }
    }
    if (rt->nreplicas > 1) {
        qsort(reps, rt->nreplicas, sizeof *reps, s_rep_cmp);
    }
    for (size_t k = 0; k < rt->nreplicas; k++) {
        if (strcmp(reps[k].state, "serving") != 0) {
            continue;
        }
        if (rt->target < 0) {
            rt->target = (int)k;
        }
        if (primary < 0 && strcmp(reps[k].role, "primary") == 0) {
            primary = (int)k;
        }
    }
    if (primary >= 0) {
        rt->target = primary;
    }
    return 0;
}

/* A bound of a "range" object: a string without NUL (may be ""), or null (+infinity, hi only). */
static bool s_bound(const json_t *v, bool may_be_null)
{
    if (json_is_null(v)) {
        return may_be_null;
    }
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

static int s_range_cmp(const void *a, const void *b)
{
    const szl_range *x = a, *y = b;
    size_t n = x->lo_len < y->lo_len ? x->lo_len : y->lo_len;
    int c = n > 0 ? memcmp(x->lo, y->lo, n) : 0;

    if (c != 0) {
        return c;
    }
    return x->lo_len < y->lo_len ? -1 : x->lo_len > y->lo_len;
}

/* A range namespace: the routed partitions' ranges ("range": {"lo", "hi"}, not "routed":
 * false) sorted by lo, checked to cover the key space once (each hi the next lo, the first lo
 * "", the last hi null). Runs after the partitions are laid out (sp in the same order). */
static int s_ranges(shardz_snapshot *s, const s_part *sp, char *err, size_t errlen)
{
    size_t n = 0;

    for (size_t i = 0; i < s->nparts; i++) {
        n += json_object_get(sp[i].obj, "range") != NULL &&
             !json_is_false(json_object_get(sp[i].obj, "routed"));
    }
    if (!s->range || n == 0) {
        return 0;
    }
    s->ranges = calloc(n, sizeof *s->ranges);
    if (s->ranges == NULL) {
        return SHARDZ_ENOMEM;
    }
    for (size_t i = 0; i < s->nparts; i++) {
        const json_t *r = json_object_get(sp[i].obj, "range");
        if (r == NULL || json_is_false(json_object_get(sp[i].obj, "routed"))) {
            continue;
        }
        if (!s_bound(json_object_get(r, "lo"), false) || !s_bound(json_object_get(r, "hi"), true)) {
            snprintf(err, errlen, "partition %s: \"range\" must be {lo: string, hi: string|null}",
                     sp[i].id);
            return SHARDZ_EINVAL;
        }
        szl_range *e = &s->ranges[s->nranges++];
        e->lo = s_str(s, json_string_value(json_object_get(r, "lo")));
        e->lo_len = json_string_length(json_object_get(r, "lo"));
        e->pfx = e->lo != NULL ? szl_key_prefix(e->lo, e->lo_len) : 0;
        e->part = (uint32_t)i;
        if (e->lo == NULL) {
            return SHARDZ_ENOMEM;
        }
    }
    qsort(s->ranges, n, sizeof *s->ranges, s_range_cmp);
    for (size_t k = 0; k < n; k++) {
        const json_t *hi =
            json_object_get(json_object_get(sp[s->ranges[k].part].obj, "range"), "hi");
        bool ok = k + 1 < n
                      ? json_is_string(hi) && json_string_length(hi) == s->ranges[k + 1].lo_len &&
                            memcmp(json_string_value(hi), s->ranges[k + 1].lo,
                                   s->ranges[k + 1].lo_len) == 0
                      : json_is_null(hi);
        if ((k == 0 && s->ranges[0].lo_len != 0) || !ok) {
            snprintf(err, errlen, "the ranges do not cover the key space once (at partition %s)",
                     sp[s->ranges[k].part].id);
            return SHARDZ_EPROTO;
        }
    }
    return 0;
}

/* Decides the kind and the slot count: the state's own fields, then the namespace's, then
 * (slot count only) the end of the highest slot range. */
static int s_kind(const json_t *state, const szl_ns_info *ns, const s_part *sp, size_t n,
                  bool *hash, uint32_t *nslots, char *err, size_t errlen)
{
    const char *sharder = json_string_value(json_object_get(state, "sharder"));
    bool any_slots = false;
    int64_t top = 0;
    int64_t v;

    for (size_t i = 0; i < n; i++) {
        const json_t *sl = json_object_get(sp[i].obj, "slots");
        if (sl == NULL || json_is_null(sl)) {
            continue;
        }
        if (!json_is_array(sl)) {
            snprintf(err, errlen, "partition %s: \"slots\" must be an array", sp[i].id);
            return SHARDZ_EINVAL;
        }
        any_slots = true;
        for (size_t k = 0; k < json_array_size(sl); k++) {
            int64_t lo;
            int64_t hi;
            if (s_slot_elem(json_array_get(sl, k), &lo, &hi) != 0) {
                snprintf(err, errlen,
                         "partition %s: slots[%zu] is not a slot, [lo, hi] or "
                         "{lo, hi} within [0, %u]",
                         sp[i].id, k, SHARDZ_HASH_SLOTS_MAX);
                return SHARDZ_EINVAL;
            }
            top = hi > top ? hi : top;
        }
    }
    if (sharder != NULL) {
        *hash = strcmp(sharder, "hash") == 0;
    } else if (ns != NULL && ns->kind >= 0) {
        *hash = ns->kind == 1;
    } else {
        *hash = any_slots;
    }
    *nslots = 0;
    if (!*hash) {
        return 0;
    }
    if (json_object_get(state, "slots") != NULL) {
        if (!szl_get_int(state, "slots", 1, SHARDZ_HASH_SLOTS_MAX, &v)) {
            snprintf(err, errlen, "\"slots\" must be an integer in [1, %u]", SHARDZ_HASH_SLOTS_MAX);
            return SHARDZ_EINVAL;
        }
        *nslots = (uint32_t)v;
    } else if (ns != NULL && ns->slots != 0) {
        *nslots = ns->slots;
    } else {
        *nslots = (uint32_t)top;
    }
    if (*nslots != 0 && (*nslots & (*nslots - 1)) != 0) {
        snprintf(err, errlen, "slot count %u is not a power of two", *nslots);
        return SHARDZ_EINVAL;
    }
    if ((int64_t)*nslots < top) {
        snprintf(err, errlen, "a slot range ends at %lld, past the slot count %u", (long long)top,
                 *nslots);
        return SHARDZ_EINVAL;
    }
    return 0;
}

/* Fills the slot table from the (sorted) partitions' ranges; overlaps are a protocol error. */
static int s_slots(shardz_snapshot *s, const s_part *sp, char *err, size_t errlen)
{
    if (s->nslots == 0) {
        return 0;
    }
    s->slot_part = malloc((size_t)s->nslots * sizeof *s->slot_part);
    if (s->slot_part == NULL) {
        return SHARDZ_ENOMEM;
    }
    memset(s->slot_part, 0xff, (size_t)s->nslots * sizeof *s->slot_part);
    for (size_t i = 0; i < s->nparts; i++) {
        const json_t *sl = json_object_get(sp[i].obj, "slots");
        for (size_t k = 0; k < json_array_size(sl); k++) {
            int64_t lo;
            int64_t hi;
            s_slot_elem(json_array_get(sl, k), &lo, &hi); /* checked by s_kind */
            for (int64_t x = lo; x < hi; x++) {
                if (s->slot_part[x] != S_NONE) {
                    snprintf(err, errlen, "slot %lld is held by %s and %s", (long long)x,
                             s->parts[s->slot_part[x]].partition, sp[i].id);
                    return SHARDZ_EPROTO;
                }
                s->slot_part[x] = (uint32_t)i;
            }
        }
    }
    return 0;
}

static int s_index(shardz_snapshot *s)
{
    size_t cap = 16;

    while (cap < 2 * s->nparts) {
        cap *= 2;
    }
    s->idx = calloc(cap, sizeof *s->idx);
    s->phash = calloc(s->nparts + 1, sizeof *s->phash);
    if (s->idx == NULL || s->phash == NULL) {
        return SHARDZ_ENOMEM;
    }
    s->idx_mask = cap - 1;
    for (size_t i = 0; i < s->nparts; i++) {
        const char *id = s->parts[i].partition;
        uint64_t h = XXH3_64bits(id, strlen(id));
        size_t k = (size_t)h & s->idx_mask;
        s->phash[i] = h;
        while (s->idx[k] != 0) {
            k = (k + 1) & s->idx_mask;
        }
        s->idx[k] = (uint32_t)i + 1;
    }
    return 0;
}

int szl_snapshot_build(const json_t *state, const szl_ns_info *ns, shardz_snapshot **out, char *err,
                       size_t errlen)
{
    shardz_snapshot *s = NULL;
    json_t *nodes = NULL;
    s_part *sp = NULL;
    const json_t *parts;
    const json_t *narr;
    size_t n;
    size_t nreps = 0;
    size_t at = 0;
    int rc = SHARDZ_EINVAL;

    *out = NULL;
    err[0] = '\0';
    if (!json_is_object(state)) {
        snprintf(err, errlen, "the state is not a JSON object");
        goto out;
    }
    s = calloc(1, sizeof *s);
    nodes = json_object();
    if (s == NULL || nodes == NULL) {
        rc = SHARDZ_ENOMEM;
        goto out;
    }
    atomic_init(&s->refs, 1);
    if (!szl_get_int(state, "revision", 0, INT64_MAX, &s->revision)) {
        snprintf(err, errlen, "\"revision\" must be an integer >= 0");
        goto out;
    }
    narr = json_object_get(state, "nodes");
    for (size_t i = 0; i < json_array_size(narr); i++) {
        const json_t *o = json_array_get(narr, i);
        const char *id = json_string_value(json_object_get(o, "id"));
        if (id != NULL && szl_valid_id(id, SZL_ID_MAX)) {
            json_object_set(nodes, id, (json_t *)o);
        }
    }
    parts = json_object_get(state, "partitions");
    if (!json_is_array(parts)) {
        snprintf(err, errlen, "\"partitions\" must be an array");
        goto out;
    }
    n = json_array_size(parts);
    if (n >= S_NONE) {
        snprintf(err, errlen, "too many partitions");
        goto out;
    }
    sp = calloc(n + 1, sizeof *sp);
    if (sp == NULL) {
        rc = SHARDZ_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *p = json_array_get(parts, i);
        const json_t *reps = json_object_get(p, "replicas");
        sp[i].obj = p;
        sp[i].id = json_string_value(json_object_get(p, "id"));
        if (sp[i].id == NULL) {
            sp[i].id = json_string_value(json_object_get(p, "partition"));
        }
        if (!json_is_object(p) || sp[i].id == NULL || !szl_valid_id(sp[i].id, SZL_ID_MAX)) {
            snprintf(err, errlen, "partitions[%zu] needs an \"id\"", i);
            goto out;
        }
        if (reps != NULL && !json_is_array(reps)) {
            snprintf(err, errlen, "partition %s: \"replicas\" must be an array", sp[i].id);
            goto out;
        }
        nreps += json_array_size(reps);
    }
    qsort(sp, n, sizeof *sp, s_part_cmp);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(sp[i - 1].id, sp[i].id) == 0) {
            snprintf(err, errlen, "partition %s is listed twice", sp[i].id);
            rc = SHARDZ_EPROTO;
            goto out;
        }
    }
    rc = s_kind(state, ns, sp, n, &s->hash, &s->nslots, err, errlen);
    if (rc != 0) {
        goto out;
    }
    {
        const char *sharder = json_string_value(json_object_get(state, "sharder"));
        s->range = sharder != NULL ? strcmp(sharder, "range") == 0 : ns != NULL && ns->kind == 2;
    }
    s->nparts = n;
    s->parts = calloc(n + 1, sizeof *s->parts);
    s->reps = calloc(nreps + 1, sizeof *s->reps);
    if (s->parts == NULL || s->reps == NULL) {
        rc = SHARDZ_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        shardz_route *rt = &s->parts[i];
        int64_t gen = 0;
        if (json_object_get(sp[i].obj, "generation") != NULL &&
            !szl_get_int(sp[i].obj, "generation", 0, INT64_MAX, &gen)) {
            snprintf(err, errlen, "partition %s: bad \"generation\"", sp[i].id);
            rc = SHARDZ_EINVAL;
            goto out;
        }
        rt->generation = gen;
        rt->partition = s_str(s, sp[i].id);
        if (rt->partition == NULL) {
            rc = SHARDZ_ENOMEM;
            goto out;
        }
        rc = s_replicas(s, nodes, &sp[i], rt, &s->reps[at], err, errlen);
        if (rc != 0) {
            goto out;
        }
        at += rt->nreplicas;
    }
    rc = s_slots(s, sp, err, errlen);
    if (rc == 0) {
        rc = s_ranges(s, sp, err, errlen);
    }
    if (rc == 0) {
        rc = s_index(s);
    }
out:
    if (rc == SHARDZ_ENOMEM) {
        snprintf(err, errlen, "out of memory");
    }
    json_decref(nodes);
    free(sp);
    if (rc != 0) {
        s_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int shardz_snapshot_from_state(const char *json, size_t len, uint32_t slots, shardz_snapshot **out)
{
    szl_ns_info ns = {.kind = -1, .slots = slots};
    char err[256];
    json_t *root;
    int rc;

    if (out == NULL) {
        return SHARDZ_EINVAL;
    }
    *out = NULL;
    if (json == NULL) {
        return SHARDZ_EINVAL;
    }
    root = json_loadb(json, len, 0, NULL);
    if (root == NULL) {
        return SHARDZ_EINVAL;
    }
    rc = szl_snapshot_build(root, &ns, out, err, sizeof err);
    json_decref(root);
    return rc;
}

shardz_snapshot *shardz_snapshot_ref(shardz_snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void shardz_snapshot_release(shardz_snapshot *s)
{
    if (s != NULL && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        s_free(s);
    }
}

int64_t shardz_snapshot_revision(const shardz_snapshot *s)
{
    return s->revision;
}

uint32_t shardz_snapshot_slots(const shardz_snapshot *s)
{
    return s->hash ? s->nslots : 0;
}

size_t shardz_snapshot_partition_count(const shardz_snapshot *s)
{
    return s->nparts;
}

const shardz_route *shardz_snapshot_partition_at(const shardz_snapshot *s, size_t i)
{
    return i < s->nparts ? &s->parts[i] : NULL;
}

int shardz_snapshot_lookup_partition(const shardz_snapshot *s, const char *partition,
                                     const shardz_route **out)
{
    size_t len;
    uint64_t h;

    *out = NULL;
    if (partition == NULL) {
        return SHARDZ_EINVAL;
    }
    len = strlen(partition);
    h = XXH3_64bits(partition, len);
    for (size_t k = (size_t)h & s->idx_mask;; k = (k + 1) & s->idx_mask) {
        uint32_t i = s->idx[k];
        if (i == 0) {
            return SHARDZ_ENOENT;
        }
        if (s->phash[i - 1] == h && strcmp(s->parts[i - 1].partition, partition) == 0) {
            *out = &s->parts[i - 1];
            return 0;
        }
    }
}

int shardz_snapshot_lookup_slot(const shardz_snapshot *s, uint32_t slot, const shardz_route **out)
{
    *out = NULL;
    if (!s->hash) {
        return SHARDZ_ENOTSUP;
    }
    if (slot >= s->nslots) {
        return SHARDZ_ENOENT;
    }
    return szl_slot_route(s, slot, out);
}

int shardz_snapshot_lookup_key(const shardz_snapshot *s, const void *key, size_t len,
                               uint32_t *slot, const shardz_route **out)
{
    uint32_t sl;

    *out = NULL;
    if (s->range) {
        return szl_range_route(s, key, len, slot, out);
    }
    if (!s->hash) {
        return SHARDZ_ENOTSUP;
    }
    if (s->nslots == 0) {
        return SHARDZ_ENOENT;
    }
    sl = shardz_key_slot(key, len, s->nslots);
    if (slot != NULL) {
        *slot = sl;
    }
    return szl_slot_route(s, sl, out);
}
