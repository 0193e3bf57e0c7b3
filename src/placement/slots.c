/* The slot table of the "hash" kind (see slots.h): balanced, minimal-movement changes of a
 * slot -> partition-index array. Every change is "compute targets, then one pass over the
 * slots": each partition keeps its lowest slots up to its target and gives the rest to the
 * lowest-indexed partitions still short of theirs. Pure, deterministic, one thread. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "placement/slots.h"
#include "shardz/error.h"
#include "shardz/hash.h"

/* The three thirds of scratch: per-partition targets, per-partition counters, and a map. */
static uint32_t *pz_slots_tgt(pz_slots *t)
{
    return t->scratch;
}
static uint32_t *pz_slots_seen(pz_slots *t)
{
    return t->scratch + t->cap;
}
static uint32_t *pz_slots_map(pz_slots *t)
{
    return t->scratch + 2 * (size_t)t->cap;
}

int pz_slots_init(pz_slots *t, uint32_t nslots)
{
    memset(t, 0, sizeof *t);
    if (nslots == 0 || (nslots & (nslots - 1)) != 0 || nslots > SHARDZ_HASH_SLOTS_MAX) {
        return SHARDZ_EINVAL;
    }
    t->owner = malloc((size_t)nslots * sizeof *t->owner);
    if (t->owner == NULL) {
        return SHARDZ_ENOMEM;
    }
    for (uint32_t i = 0; i < nslots; i++) {
        t->owner[i] = PZ_SLOTS_NONE;
    }
    t->nslots = nslots;
    return 0;
}

void pz_slots_destroy(pz_slots *t)
{
    if (t == NULL) {
        return;
    }
    free(t->owner);
    free(t->count);
    free(t->scratch);
    memset(t, 0, sizeof *t);
}

int pz_slots_reserve(pz_slots *t, uint32_t nparts)
{
    uint32_t ncap;
    uint32_t *count = NULL;
    uint32_t *scratch = NULL;

    if (nparts > t->nslots) {
        return SHARDZ_ENOSPC;
    }
    if (nparts <= t->cap) {
        return 0;
    }
    /* Double, at least 16, never beyond S (a table never holds more partitions than slots). */
    ncap = t->cap < 16 ? 16 : t->cap;
    while (ncap < nparts) {
        ncap = ncap > UINT32_MAX / 2 ? UINT32_MAX : ncap * 2;
    }
    if (ncap > t->nslots) {
        ncap = t->nslots;
    }
    count = calloc(ncap, sizeof *count);
    scratch = calloc((size_t)ncap * 3, sizeof *scratch);
    if (count == NULL || scratch == NULL) {
        free(count);
        free(scratch);
        return SHARDZ_ENOMEM;
    }
    if (t->nparts > 0) {
        memcpy(count, t->count, (size_t)t->nparts * sizeof *count);
    }
    free(t->count);
    free(t->scratch);
    t->count = count;
    t->scratch = scratch;
    t->cap = ncap;
    return 0;
}

/* Sets the targets of partitions 0..n-1 (tgt[i]; the live ones are those with live == NULL or
 * live[i] != PZ_SLOTS_NONE, the others get 0): floor(S/L) each, and the S mod L extra slots to
 * live partitions already holding more than the floor, then to the others, in index order.
 * Giving the extra slots to those holding more first maximises the slots that stay, which is
 * what makes the pass minimal. count[0..n-1] must be current (0 for partitions being added). */
static void pz_slots_targets(pz_slots *t, uint32_t n, const uint32_t *live)
{
    uint32_t *tgt = pz_slots_tgt(t);
    uint32_t nlive = 0;
    uint32_t q, r;

    for (uint32_t i = 0; i < n; i++) {
        if (live == NULL || live[i] != PZ_SLOTS_NONE) {
            nlive++;
        }
    }
    if (nlive == 0) {
        memset(tgt, 0, (size_t)n * sizeof *tgt);
        return;
    }
    q = t->nslots / nlive;
    r = t->nslots % nlive;
    for (uint32_t i = 0; i < n; i++) {
        tgt[i] = (live == NULL || live[i] != PZ_SLOTS_NONE) ? q : 0;
    }
    for (uint32_t i = 0; i < n && r > 0; i++) {
        if (tgt[i] == q && t->count[i] > q && (live == NULL || live[i] != PZ_SLOTS_NONE)) {
            tgt[i]++;
            r--;
        }
    }
    for (uint32_t i = 0; i < n && r > 0; i++) {
        if (tgt[i] == q && t->count[i] <= q && (live == NULL || live[i] != PZ_SLOTS_NONE)) {
            tgt[i]++;
            r--;
        }
    }
}

/* One pass over the slots moving them to the targets (sum of tgt[0..n-1] must be S, and
 * count[0..n-1] current): each partition keeps its lowest tgt slots, the rest (and unowned
 * slots) go to the lowest-indexed partition still short of its target. Returns slots moved. */
static uint32_t pz_slots_move(pz_slots *t, uint32_t n)
{
    const uint32_t *tgt = pz_slots_tgt(t);
    uint32_t *seen = pz_slots_seen(t);
    uint32_t rcv = 0;
    uint32_t moved = 0;

    memset(seen, 0, (size_t)n * sizeof *seen);
    for (uint32_t s = 0; s < t->nslots; s++) {
        uint32_t o = t->owner[s];

        if (o != PZ_SLOTS_NONE && seen[o] < tgt[o]) {
            seen[o]++;
            continue;
        }
        /* A surplus slot: total surplus equals total shortfall, so a receiver exists. A
         * source is never its own receiver: it stays above its target until its last give. */
        while (t->count[rcv] >= tgt[rcv]) {
            rcv++;
        }
        if (o != PZ_SLOTS_NONE) {
            t->count[o]--;
        }
        t->owner[s] = rcv;
        t->count[rcv]++;
        moved++;
    }
    return moved;
}

/* Rewrites partition indices: i becomes map[i] (map[i] < nnew for every i < nparts that still
 * owns slots), counts follow, and nparts becomes nnew. Uses the seen third of scratch. */
static void pz_slots_apply_map(pz_slots *t, const uint32_t *map, uint32_t nnew)
{
    uint32_t *ncount = pz_slots_seen(t);

    if (nnew == 0) {
        for (uint32_t s = 0; s < t->nslots; s++) {
            t->owner[s] = PZ_SLOTS_NONE;
        }
        t->nparts = 0;
        return;
    }
    for (uint32_t s = 0; s < t->nslots; s++) {
        t->owner[s] = map[t->owner[s]];
    }
    memset(ncount, 0, (size_t)nnew * sizeof *ncount);
    for (uint32_t i = 0; i < t->nparts; i++) {
        if (map[i] != PZ_SLOTS_NONE) {
            ncount[map[i]] = t->count[i];
        }
    }
    memcpy(t->count, ncount, (size_t)nnew * sizeof *ncount);
    t->nparts = nnew;
}

/* Checks a remove/renumber map: the indices that stay go exactly onto 0..nstay-1. Sets
 * *nstay. Uses the seen third of scratch as a bitmap. */
static bool pz_slots_map_valid(pz_slots *t, const uint32_t *map, uint32_t *nstay)
{
    uint32_t *hit = pz_slots_seen(t);
    uint32_t n = 0;

    for (uint32_t i = 0; i < t->nparts; i++) {
        if (map[i] != PZ_SLOTS_NONE) {
            n++;
        }
    }
    memset(hit, 0, (size_t)t->nparts * sizeof *hit);
    for (uint32_t i = 0; i < t->nparts; i++) {
        if (map[i] == PZ_SLOTS_NONE) {
            continue;
        }
        if (map[i] >= n || hit[map[i]] != 0) {
            return false;
        }
        hit[map[i]] = 1;
    }
    *nstay = n;
    return true;
}

int pz_slots_add(pz_slots *t, uint32_t k)
{
    uint32_t n;
    int rc;

    if (k == 0) {
        return 0;
    }
    if (k > t->nslots || t->nparts > t->nslots - k) {
        return SHARDZ_ENOSPC;
    }
    n = t->nparts + k;
    rc = pz_slots_reserve(t, n);
    if (rc != 0) {
        return rc;
    }
    memset(t->count + t->nparts, 0, (size_t)k * sizeof *t->count);
    pz_slots_targets(t, n, NULL);
    t->nparts = n;
    (void)pz_slots_move(t, n);
    return 0;
}

int pz_slots_remove(pz_slots *t, const uint32_t *newidx)
{
    uint32_t nstay;

    if (t->nparts == 0) {
        return 0;
    }
    if (newidx == NULL || !pz_slots_map_valid(t, newidx, &nstay)) {
        return SHARDZ_EINVAL;
    }
    if (nstay > 0) {
        pz_slots_targets(t, t->nparts, newidx);
        (void)pz_slots_move(t, t->nparts);
    }
    pz_slots_apply_map(t, newidx, nstay);
    return 0;
}

int pz_slots_remove_one(pz_slots *t, uint32_t pidx, uint32_t *moved)
{
    uint32_t *map;
    uint32_t last;

    if (pidx >= t->nparts) {
        return SHARDZ_EINVAL;
    }
    map = pz_slots_map(t);
    last = t->nparts - 1;
    for (uint32_t i = 0; i < t->nparts; i++) {
        map[i] = i;
    }
    map[pidx] = PZ_SLOTS_NONE;
    if (pidx != last) {
        map[last] = pidx;
    }
    *moved = pidx != last ? last : PZ_SLOTS_NONE;
    /* The map is valid by construction; pz_slots_remove only reads it. */
    return pz_slots_remove(t, map);
}

int pz_slots_renumber(pz_slots *t, const uint32_t *map)
{
    uint32_t nstay;

    if (t->nparts == 0) {
        return 0;
    }
    if (map == NULL || !pz_slots_map_valid(t, map, &nstay) || nstay != t->nparts) {
        return SHARDZ_EINVAL;
    }
    pz_slots_apply_map(t, map, nstay);
    return 0;
}

uint32_t pz_slots_balance(pz_slots *t)
{
    if (t->nparts == 0) {
        return 0;
    }
    pz_slots_targets(t, t->nparts, NULL);
    return pz_slots_move(t, t->nparts);
}

int pz_slots_restore(pz_slots *t, const uint32_t *owner, uint32_t nparts)
{
    int rc;

    if (nparts > t->nslots || (nparts == 0) != (owner == NULL)) {
        return SHARDZ_EINVAL;
    }
    for (uint32_t s = 0; s < t->nslots && nparts > 0; s++) {
        if (owner[s] >= nparts) {
            return SHARDZ_EINVAL;
        }
    }
    rc = pz_slots_reserve(t, nparts);
    if (rc != 0) {
        return rc;
    }
    if (nparts == 0) {
        for (uint32_t s = 0; s < t->nslots; s++) {
            t->owner[s] = PZ_SLOTS_NONE;
        }
    } else {
        memcpy(t->owner, owner, (size_t)t->nslots * sizeof *owner);
        memset(t->count, 0, (size_t)nparts * sizeof *t->count);
        for (uint32_t s = 0; s < t->nslots; s++) {
            t->count[owner[s]]++;
        }
    }
    t->nparts = nparts;
    return 0;
}

size_t pz_slots_ranges(const pz_slots *t, uint32_t pidx, pz_slot_range *out, size_t cap)
{
    size_t n = 0;
    uint32_t s = 0;

    if (pidx >= t->nparts) {
        return 0;
    }
    while (s < t->nslots) {
        uint32_t lo;

        if (t->owner[s] != pidx) {
            s++;
            continue;
        }
        lo = s;
        while (s < t->nslots && t->owner[s] == pidx) {
            s++;
        }
        if (n < cap) {
            out[n].lo = lo;
            out[n].hi = s;
        }
        n++;
    }
    return n;
}
