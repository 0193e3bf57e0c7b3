/* The "hash" kind: the replica kind's node placement (the generic membership calls and
 * pz_replica_plan) plus a slot table (slots.h) that maps the hashed key space onto the
 * partitions. The table lives in s->kind and its partition indices are kept equal to the
 * model's on every register / unregister, all or nothing. Also the public slot-table accessors
 * (shardz_sharder_slot_*). Pure, one thread (the sharder's). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "placement/model.h"
#include "placement/slots.h"
#include "shardz/hash.h"

static int pz_hash_init(shardz_sharder *s)
{
    uint32_t n = s->cfg.slots != 0 ? s->cfg.slots : SHARDZ_HASH_SLOTS_DEFAULT;
    pz_slots *t;
    int rc;

    if (n < SHARDZ_HASH_SLOTS_MIN || n > SHARDZ_HASH_SLOTS_MAX || (n & (n - 1)) != 0) {
        return SHARDZ_EINVAL;
    }
    t = calloc(1, sizeof *t);
    if (t == NULL) {
        return SHARDZ_ENOMEM;
    }
    rc = pz_slots_init(t, n);
    if (rc != 0) {
        free(t);
        return rc;
    }
    s->cfg.slots = n; /* the effective size, for whoever reads the config copy */
    s->kind = t;
    return 0;
}

/* Accepts a sharder whose init failed (s->kind NULL). */
static void pz_hash_destroy(shardz_sharder *s)
{
    pz_slots_destroy(s->kind);
    free(s->kind);
    s->kind = NULL;
}

/* New partitions are appended by the model (dense indices nparts..nparts+n-1), so the table
 * appends as many. The room is reserved first, so once the model has changed the table's
 * change cannot fail. More partitions than slots: SHARDZ_ENOSPC, checked before the model's
 * own validation. */
static int pz_hash_register_partitions(shardz_sharder *s, const shardz_partition_spec *parts,
                                       size_t n)
{
    pz_slots *t = s->kind;
    uint32_t before = s->m.nparts;
    int rc;

    assert(t->nparts == before);
    if (n > (size_t)(t->nslots - before)) {
        return SHARDZ_ENOSPC;
    }
    rc = pz_slots_reserve(t, before + (uint32_t)n);
    if (rc != 0) {
        return rc;
    }
    rc = pz_generic_register_partitions(s, parts, n);
    if (rc != 0) {
        return rc; /* the table is unchanged (only its capacity grew) */
    }
    rc = pz_slots_add(t, s->m.nparts - before);
    assert(rc == 0); /* reserved: cannot fail */
    return rc;
}

/* The model removes each partition by moving the last record (pointer) into the hole; records
 * that stay are never freed or reallocated. So: mark the indices that go, remember the records
 * of the indices that will be renumbered (those at P' and above), let the model remove them,
 * then find where each remembered record went by its id, and remove + renumber the table in
 * one pass. Only the scratch allocation can fail, before anything changed. */
static int pz_hash_unregister_partitions(shardz_sharder *s, const char *const *ids, size_t n)
{
    pz_model *m = &s->m;
    pz_slots *t = s->kind;
    uint32_t P = m->nparts;
    uint32_t ngone = 0;
    uint32_t nstay;
    uint32_t *newidx = NULL;
    pz_part **high = NULL;
    int rc;

    assert(t->nparts == P);
    if (n == 0 || ids == NULL || P == 0) {
        /* Nothing to remove, or a call the model refuses: the table has nothing to follow. */
        return pz_generic_unregister_partitions(s, ids, n);
    }
    newidx = malloc((size_t)P * sizeof *newidx);
    if (newidx == NULL) {
        rc = SHARDZ_ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < P; i++) {
        newidx[i] = i;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t p = ids[i] != NULL ? pz_part_find(m, ids[i]) : PZ_NONE;

        /* Unknown or NULL ids make the model's call fail; repeated ids count once. */
        if (p != PZ_NONE && newidx[p] != PZ_SLOTS_NONE) {
            newidx[p] = PZ_SLOTS_NONE;
            ngone++;
        }
    }
    nstay = P - ngone;
    high = malloc(((size_t)ngone + 1) * sizeof *high);
    if (high == NULL) {
        rc = SHARDZ_ENOMEM;
        goto out;
    }
    for (uint32_t i = nstay; i < P; i++) {
        high[i - nstay] = m->parts[i];
    }

    rc = pz_generic_unregister_partitions(s, ids, n);
    if (rc != 0) {
        goto out; /* the model and the table are unchanged */
    }
    assert(m->nparts == nstay);
    /* Indices below P' that stay were never moved; the others went into holes below P'. */
    for (uint32_t i = nstay; i < P; i++) {
        if (newidx[i] != PZ_SLOTS_NONE) {
            newidx[i] = pz_part_find(m, pz_part_id(high[i - nstay]));
            assert(newidx[i] < nstay);
        }
    }
    rc = pz_slots_remove(t, newidx);
    assert(rc == 0); /* a valid map by construction: cannot fail */
out:
    free(newidx);
    free(high);
    return rc;
}

static int pz_hash_partition_for_key(const shardz_sharder *s, const void *key, size_t len,
                                     const char **partition)
{
    const pz_slots *t = s->kind;
    uint32_t p;

    if (partition == NULL || (key == NULL && len > 0)) {
        return SHARDZ_EINVAL;
    }
    if (t->nparts == 0) {
        return SHARDZ_ENOENT;
    }
    p = pz_slots_owner(t, shardz_key_slot(key, len, t->nslots));
    assert(p < s->m.nparts);
    *partition = pz_part_id(pz_part_at(&s->m, p));
    return 0;
}

const pz_ops pz_hash_ops = {
    .version = PZ_OPS_VERSION,
    .name = "hash",
    .init = pz_hash_init,
    .destroy = pz_hash_destroy,
    .register_nodes = pz_generic_register_nodes,
    .unregister_nodes = pz_generic_unregister_nodes,
    .register_partitions = pz_hash_register_partitions,
    .unregister_partitions = pz_hash_unregister_partitions,
    .partitions_of_node = pz_generic_partitions_of_node,
    .nodes_of_partition = pz_generic_nodes_of_partition,
    .plan = pz_replica_plan,
    .partition_for_key = pz_hash_partition_for_key,
};

/* ---- public slot-table accessors (include/shardz/placement.h, "hash" section) ---------- */

int shardz_sharder_slot_count(const shardz_sharder *s, uint32_t *slots)
{
    if (s == NULL || slots == NULL) {
        return SHARDZ_EINVAL;
    }
    if (s->ops != &pz_hash_ops) {
        return SHARDZ_ENOTSUP;
    }
    *slots = ((const pz_slots *)s->kind)->nslots;
    return 0;
}

int shardz_sharder_slot_ranges(const shardz_sharder *s, const char *partition,
                               shardz_slot_range *out, size_t cap, size_t *n)
{
    const pz_slots *t;
    size_t k = 0;
    uint32_t want = PZ_SLOTS_NONE;
    uint32_t slot = 0;

    if (s == NULL || n == NULL || (cap > 0 && out == NULL)) {
        return SHARDZ_EINVAL;
    }
    if (s->ops != &pz_hash_ops) {
        return SHARDZ_ENOTSUP;
    }
    t = s->kind;
    if (partition != NULL) {
        want = pz_part_find(&s->m, partition);
        if (want == PZ_NONE) {
            return SHARDZ_ENOENT;
        }
    }
    /* One pass over the slots: each maximal run of one owner (of the wanted one, if any). */
    while (slot < t->nslots && t->nparts > 0) {
        uint32_t owner = t->owner[slot];
        uint32_t lo = slot;

        while (slot < t->nslots && t->owner[slot] == owner) {
            slot++;
        }
        if (want != PZ_SLOTS_NONE && owner != want) {
            continue;
        }
        if (k < cap) {
            out[k].partition = pz_part_id(pz_part_at(&s->m, owner));
            out[k].lo = lo;
            out[k].hi = slot;
        }
        k++;
    }
    *n = k;
    return 0;
}

int shardz_sharder_restore_slots(shardz_sharder *s, const shardz_slot_range *ranges, size_t n)
{
    pz_slots *t;
    uint32_t *owner = NULL;
    uint32_t covered = 0;
    int rc = 0;

    if (s == NULL || (n > 0 && ranges == NULL)) {
        return SHARDZ_EINVAL;
    }
    if (s->ops != &pz_hash_ops) {
        return SHARDZ_ENOTSUP;
    }
    t = s->kind;
    if (s->m.nparts == 0) {
        return n == 0 ? 0 : SHARDZ_EINVAL;
    }
    owner = malloc((size_t)t->nslots * sizeof *owner);
    if (owner == NULL) {
        return SHARDZ_ENOMEM;
    }
    for (uint32_t i = 0; i < t->nslots; i++) {
        owner[i] = PZ_SLOTS_NONE;
    }
    for (size_t i = 0; i < n; i++) {
        const shardz_slot_range *r = &ranges[i];
        uint32_t p;

        if (r->partition == NULL || r->lo >= r->hi || r->hi > t->nslots) {
            rc = SHARDZ_EINVAL;
            goto out;
        }
        p = pz_part_find(&s->m, r->partition);
        if (p == PZ_NONE) {
            rc = SHARDZ_ENOENT;
            goto out;
        }
        for (uint32_t slot = r->lo; slot < r->hi; slot++) {
            if (owner[slot] != PZ_SLOTS_NONE) {
                rc = SHARDZ_EINVAL; /* overlap */
                goto out;
            }
            owner[slot] = p;
        }
        covered += r->hi - r->lo;
    }
    if (covered != t->nslots) {
        rc = SHARDZ_EINVAL; /* a gap */
        goto out;
    }
    rc = pz_slots_restore(t, owner, s->m.nparts);
    if (rc == 0) {
        s->m.revision++; /* routing changed: watchers must see it */
    }
out:
    free(owner);
    return rc;
}
