/* The replica sharder's planner (kind "replica"; "hash" reuses it for node placement).
 * Three phases, each move recorded in the plan with its reason:
 *   1. evict: replicas on gone, dead or draining nodes move to the best eligible node;
 *   2. fill: vacant slots get the least loaded eligible node that keeps the partition's
 *      replicas on distinct nodes, spread over zones, within capacity (largest loads first);
 *   3. balance: replicas move from nodes above their fair share to nodes below it until every
 *      node is within (band * share + largest partition load) of its share, which for equal
 *      loads is the integer optimum (max - min <= 1, weighted by capacity[0]).
 * Preconditions: a consistent model. Guarantee: hard constraints are never broken by a move. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "placement/bucket.h"
#include "placement/heap.h"
#include "placement/model.h"

typedef struct {
    pz_model *m;
    shardz_plan *plan;
    uint32_t nn, nz;
    uint64_t *key;  /* fill key: load[0] / weight, then the salt (pz_key_pack) */
    uint32_t *salt; /* fill tie-break per node: a hash of its id and replica count, so
                       equally loaded nodes take turns in an order that keeps changing
                       (replicas of one node get partners all over the cluster instead
                       of the same few: a failure's repair load spreads) */

    uint32_t *npos;      /* node positions, shared by the zone heaps */
    uint32_t *nheap_mem; /* the zone heaps' arrays, carved out of one block */
    pz_heap *zh;         /* per zone: its eligible nodes by util (heap mode) */
    bool bucket;         /* equal loads and, per zone, equal weights: buckets, not heaps */
    pz_bq *bq;           /* per zone: its eligible nodes by replica count (bucket mode) */
    uint32_t *level;     /* bucket mode: the count each node sits at */
    uint64_t pick_rng;   /* bucket mode: where a pick starts inside a level */
    uint32_t *zsize;     /* per zone: eligible nodes */
    double *zweight;     /* bucket mode: the weight shared by a zone's nodes */
    pz_heap zones;       /* live zones by their best node's util */
    uint64_t *zkey;      /* a zone's key: its best node's */
    uint32_t *zpos, *za;
    uint32_t *scratch; /* popped items (nodes or zones) */
    uint32_t *scratch2;
    uint16_t *cnt;    /* zone counts of one partition */
    uint8_t *touched; /* bitmap by partition: some slot of it moved in this plan */
    uint8_t *moved;   /* bitmap by replica id: this slot moved in this plan */
    double xmax;      /* the largest partition load (dimension 0) */
    bool equal_loads;
} rctx;

static uint32_t node_salt(const pz_node *nd)
{
    uint64_t z = ((uint64_t)nd->hash << 32) ^ (nd->nlist * 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)(z ^ (z >> 31));
}

static void rctx_free(rctx *c)
{
    free(c->key);
    free(c->salt);
    for (uint32_t z = 0; c->bq && z < c->nz; z++) {
        pz_bq_free(&c->bq[z]);
    }
    free(c->bq);
    free(c->level);
    free(c->zsize);
    free(c->zweight);
    free(c->npos);
    free(c->nheap_mem);
    free(c->zh);
    free(c->zkey);
    free(c->zpos);
    free(c->za);
    free(c->scratch);
    free(c->scratch2);
    free(c->cnt);
    free(c->touched);
    free(c->moved);
}

static bool touched(const rctx *c, uint32_t p)
{
    return (c->touched[p >> 3] >> (p & 7)) & 1;
}

static bool slot_moved(const rctx *c, uint32_t rid)
{
    return (c->moved[rid >> 3] >> (rid & 7)) & 1;
}

/* Records that slot `slot` of partition p moved in this plan. */
static void touch(rctx *c, uint32_t p, unsigned slot)
{
    uint32_t rid = PZ_RID(p, slot);
    c->touched[p >> 3] |= (uint8_t)(1u << (p & 7));
    c->moved[rid >> 3] |= (uint8_t)(1u << (rid & 7));
}

/* A fixed shuffle of replica ids: ties between equally good candidates fall on partitions
 * spread over the id space instead of always the lowest ones. */
static uint32_t rid_mix(uint32_t rid)
{
    uint32_t x = rid * 0x9E3779B1u;
    x ^= x >> 15;
    x *= 0x85EBCA77u;
    return x ^ (x >> 13);
}

static uint32_t mix32(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)(z ^ (z >> 31));
}

/* A zone's place among zones: its least loaded node's key. In bucket mode, the lowest
 * level's load, with a tie-break that changes with the level (zones take turns). */
static uint64_t zone_key(const rctx *c, uint32_t z)
{
    if (!c->bucket) {
        return c->key[c->zh[z].a[0]];
    }
    uint32_t lv = pz_bq_min_level(&c->bq[z]);
    return pz_key_pack(lv * c->xmax / c->zweight[z], mix32(((uint64_t)z << 32) ^ lv));
}

static int rctx_init(rctx *c, pz_model *m, shardz_plan *plan)
{
    memset(c, 0, sizeof *c);
    c->m = m;
    c->plan = plan;
    c->nn = m->nnodes;
    c->nz = m->nzones;
    size_t nn = c->nn ? c->nn : 1, nz = c->nz;
    c->key = calloc(nn, sizeof *c->key);
    c->salt = calloc(nn, sizeof *c->salt);
    c->bq = calloc(nz, sizeof *c->bq);
    c->level = calloc(nn, sizeof *c->level);
    c->zsize = calloc(nz, sizeof *c->zsize);
    c->zweight = calloc(nz, sizeof *c->zweight);
    c->npos = malloc(nn * sizeof *c->npos);
    c->nheap_mem = malloc(nn * sizeof *c->nheap_mem);
    c->zh = calloc(nz, sizeof *c->zh);
    c->zkey = calloc(nz, sizeof *c->zkey);
    c->zpos = malloc(nz * sizeof *c->zpos);
    c->za = malloc(nz * sizeof *c->za);
    c->scratch = malloc((nn > nz ? nn : nz) * sizeof *c->scratch);
    c->scratch2 = malloc((nn > nz ? nn : nz) * sizeof *c->scratch2);
    c->cnt = calloc(nz, sizeof *c->cnt);
    c->touched = calloc(m->nparts / 8 + 1, 1);
    c->moved = calloc(((size_t)m->nparts * 16) / 8 + 1, 1);
    if (!c->key || !c->salt || !c->bq || !c->level || !c->zsize || !c->zweight || !c->npos ||
        !c->nheap_mem || !c->zh || !c->zkey || !c->zpos || !c->za || !c->scratch || !c->scratch2 ||
        !c->cnt || !c->touched || !c->moved) {
        return SHARDZ_ENOMEM;
    }
    memset(c->npos, 0xff, nn * sizeof *c->npos);
    memset(c->zpos, 0xff, nz * sizeof *c->zpos);

    /* Largest and smallest partition load (dimension 0). */
    double lo = INFINITY, hi = 0;
    for (uint32_t p = 0; p < m->nparts; p++) {
        double l = m->load[(size_t)p * m->ndims];
        lo = l < lo ? l : lo;
        hi = l > hi ? l : hi;
    }
    c->xmax = hi;
    c->equal_loads = m->nparts == 0 || lo == hi;

    /* Per zone: size, and whether its nodes share one weight (then, with equal loads, the
     * order by load is the order by replica count: buckets). */
    c->bucket = c->equal_loads;
    for (uint32_t n = 0; n < c->nn; n++) {
        if (!pz_node_eligible(m, n)) {
            continue;
        }
        uint32_t z = m->nodes[n].zone;
        if (c->zsize[z]++ == 0) {
            c->zweight[z] = m->nodes[n].weight;
        } else if (c->zweight[z] != m->nodes[n].weight) {
            c->bucket = false;
        }
    }
    /* Carve one array by zone sizes, fill it with each zone's nodes. */
    uint32_t off = 0;
    for (uint32_t z = 0; z < nz; z++) {
        c->zh[z] = (pz_heap){.a = c->nheap_mem + off, .pos = c->npos, .key = c->key};
        off += c->zsize[z];
    }
    for (uint32_t n = 0; n < c->nn; n++) {
        if (!pz_node_eligible(m, n)) {
            continue;
        }
        pz_heap *h = &c->zh[m->nodes[n].zone];
        c->salt[n] = node_salt(&m->nodes[n]);
        c->key[n] = pz_key_pack(m->nodes[n].load[0] / m->nodes[n].weight, c->salt[n]);
        c->level[n] = m->nodes[n].nlist;
        if (c->bucket) {
            h->a[h->n++] = n; /* sorted by pz_bq_init below */
        } else {
            pz_heap_push(h, n);
        }
    }
    c->pick_rng = m->revision * 0x9E3779B97F4A7C15ull + 1;
    c->zones = (pz_heap){.a = c->za, .pos = c->zpos, .key = c->zkey};
    for (uint32_t z = 0; z < nz; z++) {
        if (c->zsize[z] == 0) {
            continue;
        }
        if (c->bucket) {
            int rc = pz_bq_init(&c->bq[z], c->zh[z].a, c->zsize[z], c->npos, c->level);
            if (rc) {
                return rc;
            }
        }
        c->zkey[z] = zone_key(c, z);
        pz_heap_push(&c->zones, z);
    }
    return 0;
}

/* Node n's load changed: refresh its place in the fill structures. */
static int fill_update(rctx *c, uint32_t n)
{
    if (!pz_node_eligible(c->m, n)) {
        return 0;
    }
    uint32_t z = c->m->nodes[n].zone;
    if (c->bucket) {
        uint32_t was = pz_bq_min_level(&c->bq[z]);
        while (c->level[n] < c->m->nodes[n].nlist) {
            int rc = pz_bq_inc(&c->bq[z], n);
            if (rc) {
                return rc;
            }
        }
        while (c->level[n] > c->m->nodes[n].nlist) {
            int rc = pz_bq_dec(&c->bq[z], n);
            if (rc) {
                return rc;
            }
        }
        if (c->zones.n > 1 && pz_bq_min_level(&c->bq[z]) != was) {
            c->zkey[z] = zone_key(c, z);
            pz_heap_update(&c->zones, z);
        }
        return 0;
    }
    c->salt[n] = node_salt(&c->m->nodes[n]);
    c->key[n] = pz_key_pack(c->m->nodes[n].load[0] / c->m->nodes[n].weight, c->salt[n]);
    pz_heap_update(&c->zh[z], n);
    if (c->zones.n > 1) {
        c->zkey[z] = zone_key(c, z);
        pz_heap_update(&c->zones, z);
    }
    return 0;
}

static bool may_take(const rctx *c, uint32_t n, uint32_t pidx)
{
    return !pz_part_on_node(c->m, pidx, n) && pz_fits(c->m, n, pidx);
}

/* The least loaded node of zone z that may take a replica of pidx, or PZ_NONE. */
static uint32_t zone_pick(rctx *c, uint32_t z, uint32_t pidx)
{
    if (c->bucket) {
        /* lowest level first; inside a level, start at a pseudo-random place */
        const pz_bq *q = &c->bq[z];
        uint32_t r = mix32(c->pick_rng++);
        for (uint32_t li = pz_bq_min_level(q) - q->base; li < q->nlev; li++) {
            uint32_t lo = q->start[li], size = q->start[li + 1] - lo;
            for (uint32_t k = 0; k < size; k++) {
                uint32_t n = q->ord[lo + (r + k) % size];
                if (may_take(c, n, pidx)) {
                    return n;
                }
            }
        }
        return PZ_NONE;
    }
    pz_heap *h = &c->zh[z];
    uint32_t npop = 0, found = PZ_NONE;
    while (h->n > 0) {
        uint32_t n = h->a[0];
        if (may_take(c, n, pidx)) {
            found = n;
            break;
        }
        c->scratch[npop++] = pz_heap_pop(h);
    }
    while (npop > 0) {
        pz_heap_push(h, c->scratch[--npop]);
    }
    return found;
}

/* The best node for slot `slot` of pidx: a zone holding the fewest of its replicas (so they
 * spread), and in it the least loaded node that does not hold it and has room. */
static uint32_t pick_node(rctx *c, uint32_t pidx, unsigned slot)
{
    pz_model *m = c->m;
    const pz_part *p = m->parts[pidx];
    pz_zone_counts(m, pidx, slot, c->cnt);
    /* Fewest replicas in a live zone: 0 unless the partition already uses every live zone. */
    uint32_t seen[SHARDZ_MAX_REPLICAS];
    unsigned used = 0;
    for (unsigned s = 0; s < p->nrep; s++) {
        uint32_t n = p->slots[s].node;
        if (s == slot || n == PZ_NONE || c->zsize[m->nodes[n].zone] == 0) {
            continue;
        }
        unsigned k = 0;
        while (k < used && seen[k] != m->nodes[n].zone) {
            k++;
        }
        if (k == used) {
            seen[used++] = m->nodes[n].zone;
        }
    }
    unsigned cmin = 0;
    if (used >= c->zones.n) {
        cmin = UINT16_MAX;
        for (uint32_t i = 0; i < c->zones.n; i++) {
            cmin = c->cnt[c->za[i]] < cmin ? c->cnt[c->za[i]] : cmin;
        }
    }
    uint32_t npop = 0, best = PZ_NONE;
    unsigned bestc = UINT32_MAX;
    /* Zones in order of their best node's load; stop at the first fit on the lowest level. */
    while (c->zones.n > 0) {
        uint32_t z = c->zones.a[0];
        if (c->cnt[z] == cmin) {
            uint32_t n = zone_pick(c, z, pidx);
            if (n != PZ_NONE) {
                best = n;
                bestc = cmin;
                break;
            }
        }
        c->scratch2[npop++] = pz_heap_pop(&c->zones);
    }
    if (best == PZ_NONE) {
        /* No room on the lowest level: the fewest replicas among the zones that fit. */
        for (uint32_t i = 0; i < npop; i++) {
            uint32_t z = c->scratch2[i];
            if (c->cnt[z] <= cmin || c->cnt[z] >= bestc) {
                continue;
            }
            uint32_t n = zone_pick(c, z, pidx);
            if (n != PZ_NONE) {
                best = n;
                bestc = c->cnt[z];
            }
        }
    }
    while (npop > 0) {
        pz_heap_push(&c->zones, c->scratch2[--npop]);
    }
    return best;
}

/* ---- phases 1 and 2: evict and fill ---------------------------------------------------- */

typedef struct {
    uint64_t key;
    uint32_t pidx;
} sortitem;

/* LSD radix sort on 64-bit keys, 16 bits a pass (stable). */
static int radix_sort(sortitem *a, size_t n)
{
    sortitem *tmp = malloc(n * sizeof *tmp);
    size_t *count = malloc(65536 * sizeof *count);
    if (!tmp || !count) {
        free(tmp);
        free(count);
        return SHARDZ_ENOMEM;
    }
    for (int shift = 0; shift < 64; shift += 16) {
        memset(count, 0, 65536 * sizeof *count);
        for (size_t i = 0; i < n; i++) {
            count[(a[i].key >> shift) & 0xffff]++;
        }
        size_t sum = 0;
        for (size_t i = 0; i < 65536; i++) {
            size_t c = count[i];
            count[i] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            tmp[count[(a[i].key >> shift) & 0xffff]++] = a[i];
        }
        memcpy(a, tmp, n * sizeof *a);
    }
    free(tmp);
    free(count);
    return 0;
}

/* Slot needs work: vacant, or on a node that must give it away. */
static bool slot_needs_work(const pz_model *m, const pz_slot *sl)
{
    return sl->node == PZ_NONE || pz_node_evicting(m, sl->node);
}

/* The partitions with a slot needing work, largest load first, ties in index order: the
 * order depends on the state only, never on the order of the nodes' replica lists. */
static int collect_work(rctx *c, sortitem **out, size_t *nout)
{
    pz_model *m = c->m;
    size_t nbytes = m->nparts / 8 + 1, n = 0;
    uint8_t *queued = calloc(nbytes, 1);
    sortitem *w = NULL;
    int rc = 0;
    if (!queued) {
        return SHARDZ_ENOMEM;
    }
    for (uint32_t nd = 0; nd < m->nnodes; nd++) {
        if (!m->nodes[nd].id || !pz_node_evicting(m, nd)) {
            continue;
        }
        for (uint32_t i = 0; i < m->nodes[nd].nlist; i++) {
            uint32_t p = PZ_RID_PART(m->nodes[nd].list[i]);
            queued[p >> 3] |= (uint8_t)(1u << (p & 7));
        }
    }
    if (m->nvacant > 0) {
        for (size_t b = 0; b < (m->nparts + 7) / 8; b++) {
            queued[b] |= m->vacbits[b];
        }
    }
    for (size_t b = 0; b < nbytes; b++) {
        n += (size_t)__builtin_popcount(queued[b]);
    }
    w = malloc((n ? n : 1) * sizeof *w);
    if (!w) {
        rc = SHARDZ_ENOMEM;
        goto out;
    }
    n = 0;
    for (uint32_t b = 0; b < nbytes; b++) {
        if (!queued[b]) {
            continue;
        }
        for (uint32_t p = b * 8; p < b * 8 + 8 && p < m->nparts; p++) {
            if (!((queued[b] >> (p & 7)) & 1)) {
                continue;
            }
            double l = m->load[(size_t)p * m->ndims];
            uint64_t bits;
            memcpy(&bits, &l, sizeof bits);
            w[n].key = ~bits; /* loads are >= 0: bit order is numeric order; ~ sorts descending */
            w[n].pidx = p;
            n++;
        }
    }
    if (!c->equal_loads && n > 1) {
        rc = radix_sort(w, n); /* stable: ties stay in index order */
    }
out:
    free(queued);
    if (rc) {
        free(w);
        return rc;
    }
    *out = w;
    *nout = n;
    return 0;
}

/* Places or moves one slot (phase 1 and 2). */
static int fill_slot(rctx *c, uint32_t pidx, unsigned slot)
{
    pz_model *m = c->m;
    pz_slot *sl = &m->parts[pidx]->slots[slot];
    uint32_t from = sl->node;
    shardz_reason reason = from == PZ_NONE ? (shardz_reason)sl->pos : pz_evict_reason(m, from);
    uint32_t to = pick_node(c, pidx, slot);
    int rc;
    if (to == PZ_NONE) {
        if (from == PZ_NONE) {
            c->plan->missing++;
            return 0;
        }
        if (m->nodes[from].state == SHARDZ_NODE_DRAINING && !m->nodes[from].gone) {
            return 0; /* nowhere to drain to: it keeps serving */
        }
        /* A dead or unregistered node's replica can't stay: the slot becomes vacant (the
         * vacancy pass that follows tries again and counts it missing). */
        rc = pz_plan_move(m, c->plan, pidx, slot, PZ_NONE, reason);
        if (rc) {
            return rc;
        }
        touch(c, pidx, slot);
        return 0;
    }
    rc = pz_plan_move(m, c->plan, pidx, slot, to, reason);
    if (rc) {
        return rc;
    }
    touch(c, pidx, slot);
    rc = fill_update(c, to);
    if (rc == 0 && from != PZ_NONE) {
        rc = fill_update(c, from);
    }
    return rc;
}

static int evict_and_fill(rctx *c)
{
    sortitem *work = NULL;
    size_t nwork = 0;
    int rc = collect_work(c, &work, &nwork);
    if (rc) {
        return rc;
    }
    rc = pz_plan_reserve(c->plan, c->m->nvacant + nwork);
    if (rc) {
        free(work);
        return rc;
    }
    for (size_t i = 0; i < nwork && rc == 0; i++) {
        uint32_t pidx = work[i].pidx;
        /* Sorted by load, the records come in random order: fetch ahead (two stages, the
         * pointer and then the record) so the loop is not bound by memory latency. */
        if (i + 32 < nwork) {
            __builtin_prefetch(&c->m->parts[work[i + 32].pidx]);
        }
        if (i + 16 < nwork) {
            __builtin_prefetch(c->m->parts[work[i + 16].pidx]);
        }
        const pz_part *p = c->m->parts[pidx];
        /* Evictions first (so a freed zone can take the vacancy's place), then vacancies. */
        for (unsigned s = 0; s < p->nrep && rc == 0; s++) {
            if (p->slots[s].node != PZ_NONE && slot_needs_work(c->m, &p->slots[s])) {
                rc = fill_slot(c, pidx, s);
            }
        }
        for (unsigned s = 0; s < p->nrep && rc == 0; s++) {
            if (p->slots[s].node == PZ_NONE) {
                rc = fill_slot(c, pidx, s);
            }
        }
    }
    free(work);
    return rc;
}

/* ---- phase 2b: re-spread -------------------------------------------------------------- */

/* Whether a zone that held fewer eligible nodes than a partition may have replicas now holds
 * more: only then can a partition's spread have become improvable (a zone came back, or a
 * small zone grew), so only then is every partition checked. */
static bool spread_may_improve(const rctx *c)
{
    const pz_model *m = c->m;
    for (uint32_t z = 0; z < c->nz; z++) {
        if (c->zsize[z] > m->zone_room[z] && m->zone_room[z] < m->max_nrep) {
            return true;
        }
    }
    return false;
}

/* Moves replicas out of zones holding two or more above a zone with room for them. */
static int respread(rctx *c)
{
    pz_model *m = c->m;
    if (c->zones.n < 2 || !spread_may_improve(c)) {
        return 0;
    }
    for (uint32_t p = 0; p < m->nparts; p++) {
        const pz_part *pp = m->parts[p];
        for (int guard = 0; guard < SHARDZ_MAX_REPLICAS; guard++) {
            pz_zone_counts(m, p, pp->nrep, c->cnt);
            /* the fullest zone's most loaded replica is the one to move */
            unsigned hi = 0, lo = UINT32_MAX;
            for (uint32_t i = 0; i < c->zones.n; i++) {
                uint32_t z = c->za[i];
                hi = c->cnt[z] > hi ? c->cnt[z] : hi;
                lo = c->cnt[z] < lo ? c->cnt[z] : lo;
            }
            if (hi < lo + 2) {
                break;
            }
            int slot = -1;
            for (unsigned sl = 0; sl < pp->nrep; sl++) {
                uint32_t n = pp->slots[sl].node;
                if (n == PZ_NONE || touched(c, p) || c->cnt[m->nodes[n].zone] != hi) {
                    continue;
                }
                const pz_node *a = &m->nodes[n];
                const pz_node *cur = slot < 0 ? NULL : &m->nodes[pp->slots[slot].node];
                if (!cur || a->load[0] / a->weight > cur->load[0] / cur->weight) {
                    slot = (int)sl;
                }
            }
            if (slot < 0) {
                break;
            }
            uint32_t from = pp->slots[slot].node;
            uint32_t to = pick_node(c, p, (unsigned)slot);
            if (to == PZ_NONE) {
                break;
            }
            pz_zone_counts(m, p, pp->nrep, c->cnt);
            if ((unsigned)c->cnt[m->nodes[to].zone] + 1 >= hi) {
                break; /* the best place would not spread it better */
            }
            shardz_reason why = m->nodes[to].joined ? SHARDZ_REASON_JOIN : SHARDZ_REASON_REBALANCE;
            int rc = pz_plan_move(m, c->plan, p, (unsigned)slot, to, why);
            if (rc) {
                return rc;
            }
            touch(c, p, (unsigned)slot);
            rc = fill_update(c, to);
            if (rc == 0) {
                rc = fill_update(c, from);
            }
            if (rc) {
                return rc;
            }
        }
    }
    return 0;
}

/* ---- phase 3: balance ------------------------------------------------------------------ */

typedef struct {
    double key;
    uint32_t node;
} keyed;

typedef struct {
    rctx *c;
    double *dev;   /* per node: load[0] - fair share (absolute deviation D) */
    double *theta; /* per node: dead band, band * share + xmax (same unit) */
    double *z;     /* per node: D / theta, how far out of band */
    uint64_t *zk;  /* pz_key_of(z): the heaps' key */
    pz_heap donors, receivers;
    uint32_t *dpos, *rpos, *da, *ra;
    keyed *order;    /* scratch for sorted scans */
    uint8_t *zblock; /* per zone: no receiver there can take from the current giver */
    /* Replica id -> index of the plan move that put it where it is, built on first use: a
     * replica this plan already moved can be re-routed for free instead of moved twice. */
    uint64_t *rmap; /* rid << 32 | move index; UINT64_MAX empty */
    size_t rcap, rn;
    /* Chains of re-routes (equal loads): BFS scratch, by node, and a work budget. */
    uint32_t *parent, *prid, *queue, *elig;
    uint8_t *seen;
    uint32_t nelig;
    size_t aug_budget;   /* hop checks left for chains of free re-routes */
    size_t fresh_budget; /* hop checks left for chains of fresh moves */
    size_t first_moves;  /* moves made before the balance phase (evictions and fills) */
    bool free_only;      /* consider only free re-routes (the first pass of each step) */
    bool per_zone;       /* shares per zone: replicas never change zones, partners share one */
} bctx;

static int rmap_put(bctx *b, uint32_t rid, uint32_t move)
{
    if (2 * (b->rn + 1) > b->rcap) {
        size_t ncap = b->rcap ? 2 * b->rcap : 1024;
        uint64_t *ns = malloc(ncap * sizeof *ns);
        if (!ns) {
            return SHARDZ_ENOMEM;
        }
        memset(ns, 0xff, ncap * sizeof *ns);
        for (size_t i = 0; i < b->rcap; i++) {
            if (b->rmap[i] == UINT64_MAX) {
                continue;
            }
            size_t j = ((uint32_t)(b->rmap[i] >> 32) * 2654435761u) & (ncap - 1);
            while (ns[j] != UINT64_MAX) {
                j = (j + 1) & (ncap - 1);
            }
            ns[j] = b->rmap[i];
        }
        free(b->rmap);
        b->rmap = ns;
        b->rcap = ncap;
    }
    size_t j = (rid * 2654435761u) & (b->rcap - 1);
    while (b->rmap[j] != UINT64_MAX && (uint32_t)(b->rmap[j] >> 32) != rid) {
        j = (j + 1) & (b->rcap - 1);
    }
    if (b->rmap[j] == UINT64_MAX) {
        b->rn++;
    }
    b->rmap[j] = ((uint64_t)rid << 32) | move;
    return 0;
}

/* Index of the move that put replica rid on node `on` in this plan, or PZ_NONE. */
static uint32_t rmap_moved_to(bctx *b, uint32_t rid, uint32_t on)
{
    const shardz_plan *plan = b->c->plan;
    if (!b->rmap) {
        for (size_t i = 0; i < plan->n; i++) {
            const pz_move *mv = &plan->moves[i];
            if (mv->to != PZ_NONE && rmap_put(b, PZ_RID(mv->pidx, mv->slot), (uint32_t)i)) {
                return PZ_NONE; /* out of memory: no re-routing, only fresh moves */
            }
        }
        if (!b->rmap) {
            return PZ_NONE;
        }
    }
    size_t j = (rid * 2654435761u) & (b->rcap - 1);
    for (; b->rmap[j] != UINT64_MAX; j = (j + 1) & (b->rcap - 1)) {
        if ((uint32_t)(b->rmap[j] >> 32) != rid) {
            continue;
        }
        uint32_t k = (uint32_t)b->rmap[j];
        return plan->moves[k].to == on ? k : PZ_NONE;
    }
    return PZ_NONE;
}

/* Best replica on d to give to r, or PZ_NONE: strictly lowers max(|dev_d|, |dev_r|). When
 * it finds none, *node_specific says whether some replica failed for a reason that belongs to
 * r itself (holds the partition, no room) rather than to r's zone or to the gain, which only
 * shrinks for receivers with a higher deviation. */
/* How far a deviation D lies outside its dead band theta (0 inside; a hair above 0 on the
 * band's edge, which counts as outside). */
#define BAND_EDGE 1e-6 /* relative: a deviation this close to the band counts as on it */

static double band_excess(double D, double theta)
{
    double a = fabs(D) - theta * (1 - BAND_EDGE);
    return a > 0 ? a : 0;
}

/* The two-level change a move of load x from d to r makes: first the total band excess
 * (getting every node within its band is the goal), then the potential sum(D^2 / w) (among
 * states as good on the first, the one closest to proportional shares). Moves must lower the
 * pair lexicographically, so no sequence of moves can cycle. */
typedef struct {
    double excess, potential;
} gain;

static gain move_gain(const bctx *b, uint32_t d, uint32_t r, double x)
{
    const pz_model *m = b->c->m;
    double wd = m->nodes[d].weight, wr = m->nodes[r].weight;
    double Dd = b->dev[d], Dr = b->dev[r];
    gain g;
    g.excess = band_excess(Dd - x, b->theta[d]) - band_excess(Dd, b->theta[d]) +
               band_excess(Dr + x, b->theta[r]) - band_excess(Dr, b->theta[r]);
    g.potential = x * (x * (1 / wd + 1 / wr) - 2 * (Dd / wd - Dr / wr));
    return g;
}

/* a better than b (a tie on the first level within tol goes to the second). */
static bool gain_better(gain a, gain b, double tol)
{
    if (a.excess < b.excess - tol) {
        return true;
    }
    if (a.excess > b.excess + tol) {
        return false;
    }
    return a.potential < b.potential;
}

static gain no_gain(const bctx *b, uint32_t d, uint32_t r)
{
    const pz_model *m = b->c->m;
    double wd = m->nodes[d].weight, wr = m->nodes[r].weight;
    gain g = {0, -1e-12 * (fabs(b->dev[d]) + fabs(b->dev[r]) + 1) / (wd < wr ? wd : wr)};
    return g;
}

static uint32_t best_candidate(bctx *b, uint32_t d, uint32_t r, bool *node_specific,
                               uint32_t *reroute)
{
    rctx *c = b->c;
    pz_model *m = c->m;
    double wd = m->nodes[d].weight, wr = m->nodes[r].weight;
    double gap = b->dev[d] / wd - b->dev[r] / wr, inv = 1 / wd + 1 / wr;
    double tol = 1e-9 * (b->theta[d] + b->theta[r]);
    gain none = no_gain(b, d, r);
    /* Three classes, best first: 0 = a replica this plan already moved here (re-routing it
     * costs no extra move), 1 = a partition the plan has not touched, 2 = another slot of a
     * touched partition (moving several replicas of one partition at once is the last
     * resort). A slot that moved elsewhere in this plan never moves again. In each class the
     * smallest (resulting imbalance, shuffled replica id) wins: a choice that depends on the
     * state only, never on list order, so the same state always gives the same plan. */
    uint32_t best[3] = {PZ_NONE, PZ_NONE, PZ_NONE}, bestmix[3] = {0, 0, 0}, bestk = PZ_NONE;
    gain bestv[3] = {none, none, none}; /* must beat doing nothing */
    unsigned valid = 0;
    const pz_node *nd = &m->nodes[d];
    *reroute = PZ_NONE;
    for (uint32_t i = 0; i < nd->nlist; i++) {
        uint32_t rid = nd->list[i];
        uint32_t pidx = PZ_RID_PART(rid);
        double x = m->load[(size_t)pidx * m->ndims];
        gain v = move_gain(b, d, r, x);
        int cls = slot_moved(c, rid) ? 0 : touched(c, pidx) ? 2 : 1;
        if (b->free_only && cls != 0) {
            continue;
        }
        uint32_t mix = rid_mix(rid);
        if (!gain_better(v, bestv[cls], tol)) {
            /* equal gains: the smaller shuffled id wins (strictly better than nothing only) */
            if (gain_better(bestv[cls], v, tol) || best[cls] == PZ_NONE || mix >= bestmix[cls]) {
                continue;
            }
        }
        if (!pz_zone_move_ok(c->m, pidx, d, r)) {
            continue;
        }
        if (pz_part_on_node(m, pidx, r) || !pz_fits(m, r, pidx)) {
            *node_specific = true;
            continue;
        }
        if (cls == 0) {
            uint32_t k = rmap_moved_to(b, rid, d);
            if (k == PZ_NONE || c->plan->moves[k].from == r) {
                continue; /* not movable for free (or it would undo its own move) */
            }
            bestk = k;
        }
        best[cls] = rid;
        bestv[cls] = v;
        bestmix[cls] = mix;
        /* With no eviction or fill before the balance, a free re-route is all but
         * impossible: take the first good untouched replica (equal loads: any; else a
         * perfect fit), in list order, which a dry run's exact revert keeps stable. */
        if (cls == 1 && b->first_moves == 0 &&
            (c->equal_loads || fabs(x - gap / inv) <= 1e-9 * (x + 1) || ++valid >= 256)) {
            break;
        }
    }
    for (int cls = 0; cls < 3; cls++) {
        if (best[cls] == PZ_NONE) {
            continue;
        }
        if (cls == 0) {
            *reroute = bestk;
        }
        return best[cls];
    }
    return PZ_NONE;
}

static void balance_update(bctx *b, uint32_t n, double delta)
{
    b->dev[n] += delta;
    b->z[n] = b->dev[n] / b->theta[n];
    b->zk[n] = pz_key_of(b->z[n]);
    if (pz_heap_has(&b->donors, n)) {
        pz_heap_update(&b->donors, n);
    }
    if (pz_heap_has(&b->receivers, n)) {
        pz_heap_update(&b->receivers, n);
    }
}

/* Points a recorded move at a new destination. A balancing move's reason follows the new
 * destination (join if it joined); an eviction or placement keeps its own. */
static void reroute_to(rctx *c, pz_move *mv, uint32_t to)
{
    mv->to = to;
    if (mv->reason == SHARDZ_REASON_JOIN || mv->reason == SHARDZ_REASON_REBALANCE) {
        mv->reason = c->m->nodes[to].joined ? SHARDZ_REASON_JOIN : SHARDZ_REASON_REBALANCE;
    }
}

/* Whether the replica rid, now on u, may move to v (v != u). */
static bool hop_ok(rctx *c, uint32_t rid, uint32_t u, uint32_t v)
{
    uint32_t pidx = PZ_RID_PART(rid);
    return !pz_part_on_node(c->m, pidx, v) && pz_fits(c->m, v, pidx) &&
           pz_zone_move_ok(c->m, pidx, u, v);
}

/* Moving one unit of load from d to v is an improvement (see move_gain). */
static bool unit_improves(const bctx *b, uint32_t d, uint32_t v)
{
    return gain_better(move_gain(b, d, v, 1), no_gain(b, d, v), 1e-9 * (b->theta[d] + b->theta[v]));
}

/* The replica on u that may hop to v: in `fresh` mode any replica that did not move in this
 * plan (each costs a move), otherwise one this plan already moved to u (re-routing it costs
 * nothing). PZ_NONE if none; *k gets the move record of a re-route. */
static uint32_t hop_replica(bctx *b, uint32_t u, uint32_t v, bool fresh, uint32_t *k)
{
    rctx *c = b->c;
    const pz_node *nu = &c->m->nodes[u];
    size_t *budget = fresh ? &b->fresh_budget : &b->aug_budget;
    for (uint32_t i = 0; i<nu->nlist && * budget> 0; i++) {
        uint32_t rid = nu->list[i];
        (*budget)--;
        if (slot_moved(c, rid) == fresh) {
            continue;
        }
        *k = PZ_NONE;
        if (!fresh) {
            *k = rmap_moved_to(b, rid, u);
            if (*k == PZ_NONE || c->plan->moves[*k].from == v) {
                continue;
            }
        }
        if (hop_ok(c, rid, u, v)) {
            return rid;
        }
    }
    return PZ_NONE;
}

/* Moves replica rid from u to v as one hop of a chain (a re-route or a fresh move). */
static int apply_hop(bctx *b, uint32_t rid, uint32_t v)
{
    rctx *c = b->c;
    uint32_t pidx = PZ_RID_PART(rid);
    unsigned slot = PZ_RID_SLOT(rid);
    uint32_t u = c->m->parts[pidx]->slots[slot].node;
    if (slot_moved(c, rid)) {
        uint32_t k = rmap_moved_to(b, rid, u);
        int rc =
            pz_plan_assign(c->m, c->plan, pidx, slot, v, (shardz_reason)c->plan->moves[k].reason);
        if (rc == 0) {
            reroute_to(c, &c->plan->moves[k], v);
        }
        return rc;
    }
    shardz_reason why = c->m->nodes[v].joined ? SHARDZ_REASON_JOIN : SHARDZ_REASON_REBALANCE;
    int rc = pz_plan_move(c->m, c->plan, pidx, slot, v, why);
    if (rc) {
        return rc;
    }
    touch(c, pidx, slot);
    return b->rmap ? rmap_put(b, rid, (uint32_t)(c->plan->n - 1)) : 0;
}

/* Equal loads: finds a chain d -> k1 -> ... -> r, r being any node that taking one replica
 * from d would improve, and applies it: d loses one replica, r gains one, the nodes between
 * keep their count. Without `fresh`, every hop re-routes a replica this plan already moved,
 * so the chain costs no extra move: it finds the free fix a greedy placement missed (a
 * leaver's replicas that fit only in some zones), and a node leaving moves its own replicas
 * only. With `fresh` (a node with no direct partner), hops are ordinary moves: the shortest
 * chain, a few moves, instead of leaving the imbalance. Breadth-first over the nodes, within
 * a per-plan budget of checks. */
static int augment(bctx *b, uint32_t d, bool fresh, bool *moved)
{
    rctx *c = b->c;
    uint32_t r = PZ_NONE;
    *moved = false;
    size_t *budget = fresh ? &b->fresh_budget : &b->aug_budget;
    if (!c->equal_loads || *budget == 0 || (!fresh && b->first_moves == 0)) {
        return 0;
    }
    memset(b->seen, 0, c->nn);
    uint32_t head = 0, tail = 0;
    b->queue[tail++] = d;
    b->seen[d] = 1;
    while (head < tail && r == PZ_NONE && *budget > 0) {
        uint32_t u = b->queue[head++];
        for (uint32_t j = 0; j < b->nelig && r == PZ_NONE; j++) {
            uint32_t v = b->elig[j], k;
            if (b->seen[v]) {
                continue;
            }
            uint32_t rid = hop_replica(b, u, v, fresh, &k);
            if (rid == PZ_NONE) {
                continue;
            }
            b->seen[v] = 1;
            b->parent[v] = u;
            b->prid[v] = rid;
            if (unit_improves(b, d, v)) {
                r = v;
            } else {
                b->queue[tail++] = v;
            }
        }
    }
    if (r == PZ_NONE) {
        return 0;
    }
    /* Apply from r back to d, checking each hop again on the state as it is now. */
    uint32_t v = r;
    while (v != d) {
        uint32_t u = b->parent[v], rid = b->prid[v];
        if (c->m->parts[PZ_RID_PART(rid)]->slots[PZ_RID_SLOT(rid)].node != u ||
            !hop_ok(c, rid, u, v)) {
            break; /* two hops on one partition went stale: stop here, still consistent */
        }
        int rc = apply_hop(b, rid, v);
        if (rc) {
            return rc;
        }
        balance_update(b, u, -1);
        balance_update(b, v, 1);
        *moved = true;
        v = u;
    }
    return 0;
}

static int try_move(bctx *b, uint32_t d, uint32_t r, bool *moved, bool *node_specific)
{
    rctx *c = b->c;
    pz_model *m = c->m;
    *moved = false;
    *node_specific = false;
    if (d == r || b->dev[d] / m->nodes[d].weight <= b->dev[r] / m->nodes[r].weight) {
        return 0;
    }
    if (b->per_zone && m->nodes[d].zone != m->nodes[r].zone) {
        return 0;
    }
    uint32_t k;
    uint32_t rid = best_candidate(b, d, r, node_specific, &k);
    if (k == PZ_NONE) {
        /* No free re-route straight to r: a chain of them beats a fresh move. */
        int rc = augment(b, d, false, moved);
        if (rc || *moved) {
            return rc;
        }
    }
    if (rid == PZ_NONE) {
        return 0;
    }
    uint32_t pidx = PZ_RID_PART(rid);
    unsigned slot = PZ_RID_SLOT(rid);
    double x = m->load[(size_t)pidx * m->ndims];
    int rc;
    if (k != PZ_NONE) {
        /* Re-route: the replica goes straight from where it was to r, still one move. */
        pz_move *mv = &c->plan->moves[k];
        rc = pz_plan_assign(m, c->plan, pidx, slot, r, (shardz_reason)mv->reason);
        if (rc) {
            return rc;
        }
        reroute_to(c, mv, r);
    } else {
        shardz_reason reason = m->nodes[r].joined ? SHARDZ_REASON_JOIN : SHARDZ_REASON_REBALANCE;
        rc = pz_plan_move(m, c->plan, pidx, slot, r, reason);
        if (rc) {
            return rc;
        }
        touch(c, pidx, slot);
        if (b->rmap) {
            rc = rmap_put(b, rid, (uint32_t)(c->plan->n - 1));
            if (rc) {
                return rc;
            }
        }
    }
    balance_update(b, d, -x);
    balance_update(b, r, x);
    *moved = true;
    return 0;
}

static int by_key_asc(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key) {
        return x->key < y->key ? -1 : 1;
    }
    return x->node < y->node ? -1 : (x->node > y->node);
}

/* Tries every partner of `n` (receivers by ascending deviation when n gives, donors by
 * descending deviation when n takes). */
static int try_all(bctx *b, uint32_t n, bool giving, bool *moved)
{
    pz_heap *h = giving ? &b->receivers : &b->donors;
    uint32_t k = h->n, nsame = 0;
    uint32_t zn = b->c->m->nodes[n].zone;
    /* Partners in n's own zone first (a move inside a zone never breaks the spread), each
     * group by deviation: ascending for receivers, descending (negated key) for donors. */
    for (int pass = 0; pass < 2; pass++) {
        uint32_t start = pass ? nsame : 0, j = start;
        for (uint32_t i = 0; i < k; i++) {
            uint32_t o = h->a[i];
            if ((b->c->m->nodes[o].zone == zn) != (pass == 0)) {
                continue;
            }
            double u = b->dev[o] / b->c->m->nodes[o].weight;
            b->order[j++] = (keyed){giving ? u : -u, o};
        }
        qsort(b->order + start, j - start, sizeof *b->order, by_key_asc);
        if (pass == 0) {
            nsame = j;
        }
    }
    *moved = false;
    /* A giver's replicas are the same for every receiver: once a zone failed for reasons
     * that do not depend on the node, the zone's other receivers fail too. */
    memset(b->zblock, 0, b->c->nz);
    for (uint32_t i = 0; i < k && !*moved; i++) {
        if (b->per_zone && i >= nsame) {
            break; /* no replica can change zones */
        }
        uint32_t other = b->order[i].node;
        /* Sorted: once a partner cannot gain, neither can the rest of its group. */
        double uo = b->dev[other] / b->c->m->nodes[other].weight;
        double un = b->dev[n] / b->c->m->nodes[n].weight;
        if (giving ? uo >= un : uo <= un) {
            if (i >= nsame || b->per_zone) {
                break;
            }
            i = nsame - 1;
            continue;
        }
        uint32_t oz = b->c->m->nodes[other].zone;
        if (giving && b->zblock[oz]) {
            continue;
        }
        bool node_specific;
        int rc = giving ? try_move(b, n, other, moved, &node_specific)
                        : try_move(b, other, n, moved, &node_specific);
        if (rc) {
            return rc;
        }
        if (giving && !*moved && !node_specific) {
            b->zblock[oz] = 1;
        }
    }
    return 0;
}

static int balance(rctx *c, double band)
{
    pz_model *m = c->m;
    bctx b = {.c = c, .first_moves = c->plan->n};
    int rc = 0;
    size_t nn = c->nn ? c->nn : 1;
    b.dev = calloc(nn, sizeof *b.dev);
    b.theta = calloc(nn, sizeof *b.theta);
    b.z = calloc(nn, sizeof *b.z);
    b.zk = calloc(nn, sizeof *b.zk);
    b.dpos = malloc(nn * sizeof *b.dpos);
    b.rpos = malloc(nn * sizeof *b.rpos);
    b.da = malloc(nn * sizeof *b.da);
    b.ra = malloc(nn * sizeof *b.ra);
    b.order = malloc(nn * sizeof *b.order);
    b.zblock = malloc(c->nz);
    b.parent = malloc(nn * sizeof *b.parent);
    b.prid = malloc(nn * sizeof *b.prid);
    b.queue = malloc(nn * sizeof *b.queue);
    b.elig = malloc(nn * sizeof *b.elig);
    b.seen = malloc(nn);
    b.aug_budget = 4u << 20;
    b.fresh_budget = 1u << 18;
    if (!b.parent || !b.prid || !b.queue || !b.elig || !b.seen) {
        rc = SHARDZ_ENOMEM;
        goto out;
    }
    if (!b.zblock || !b.dev || !b.theta || !b.z || !b.zk || !b.dpos || !b.rpos || !b.da || !b.ra ||
        !b.order) {
        rc = SHARDZ_ENOMEM;
        goto out;
    }
    memset(b.dpos, 0xff, nn * sizeof *b.dpos);
    memset(b.rpos, 0xff, nn * sizeof *b.rpos);
    /* Fair shares: over all eligible nodes, or per zone when every partition's replica count
     * is a multiple of the live zones. Then spread puts the same share of every partition in
     * each zone, the zones' totals are fixed, and no replica can change zones: balancing
     * against global shares would only chase moves the spread forbids. */
    bool per_zone = c->zones.n > 1;
    for (unsigned r = 1; per_zone && r <= SHARDZ_MAX_REPLICAS; r++) {
        if (m->nrep_count[r] > 0 && r % c->zones.n != 0) {
            per_zone = false;
        }
    }
    b.per_zone = per_zone;
    double *ztotal = calloc(c->nz, sizeof *ztotal), *zw = calloc(c->nz, sizeof *zw);
    double total = 0, wsum = 0;
    if (!ztotal || !zw) {
        free(ztotal);
        free(zw);
        rc = SHARDZ_ENOMEM;
        goto out;
    }
    for (uint32_t n = 0; n < c->nn; n++) {
        if (pz_node_eligible(m, n)) {
            uint32_t z = per_zone ? m->nodes[n].zone : 0;
            ztotal[z] += m->nodes[n].load[0];
            zw[z] += m->nodes[n].weight;
            total += m->nodes[n].load[0];
            wsum += m->nodes[n].weight;
        }
    }
    if (wsum <= 0 || total <= 0) {
        free(ztotal);
        free(zw);
        goto out;
    }
    b.donors = (pz_heap){.a = b.da, .pos = b.dpos, .key = b.zk, .max = true};
    b.receivers = (pz_heap){.a = b.ra, .pos = b.rpos, .key = b.zk, .max = false};
    /* Water-filling: a node can hold at most one replica of each partition (and no more
     * than its capacity), so a share above that is capped and the rest goes to the others
     * in proportion to their weights. share[] is kept in b.theta until the loop below. */
    double most = 0;
    for (uint32_t p = 0; p < m->nparts; p++) {
        most += m->load[(size_t)p * m->ndims];
    }
    bool *fixed = calloc(c->nn ? c->nn : 1, sizeof *fixed);
    if (!fixed) {
        free(ztotal);
        free(zw);
        rc = SHARDZ_ENOMEM;
        goto out;
    }
    for (bool again = true; again;) {
        again = false;
        for (uint32_t n = 0; n < c->nn; n++) {
            if (!pz_node_eligible(m, n) || fixed[n]) {
                continue;
            }
            uint32_t zz = per_zone ? m->nodes[n].zone : 0;
            double cap = fmin(most, m->nodes[n].cap[0]);
            b.theta[n] = ztotal[zz] * m->nodes[n].weight / zw[zz];
            if (b.theta[n] > cap * (1 + 1e-12) && zw[zz] > m->nodes[n].weight) {
                b.theta[n] = cap;
                fixed[n] = true;
                ztotal[zz] -= cap;
                zw[zz] -= m->nodes[n].weight;
                again = true;
            }
        }
    }
    free(fixed);
    for (uint32_t n = 0; n < c->nn; n++) {
        if (!pz_node_eligible(m, n)) {
            continue;
        }
        double share = b.theta[n];
        b.dev[n] = m->nodes[n].load[0] - share;
        /* one partition's load of slack (the integer optimum for equal loads); but when
         * unequal loads are so skewed (zipf) that the largest partition outweighs a node's
         * whole share, half the share, or an empty node would never be out of band */
        double slack = c->equal_loads || c->xmax <= share ? c->xmax : fmax(share / 2, 1e-12);
        b.theta[n] = band * share + slack;
        b.z[n] = b.dev[n] / b.theta[n];
        b.zk[n] = pz_key_of(b.z[n]);
        b.elig[b.nelig++] = n;
        pz_heap_push(&b.donors, n);
        pz_heap_push(&b.receivers, n);
    }
    free(ztotal);
    free(zw);
    /* A node with no valid partner leaves the heaps; it comes back once other moves have
     * changed the picture (each return needs a move since the last, so the loop ends). */
    uint32_t *stuck = b.order ? (uint32_t *)malloc(2 * nn * sizeof *stuck) : NULL;
    size_t nstuck = 0, moves_since = 0;
    if (!stuck) {
        rc = SHARDZ_ENOMEM;
        goto out;
    }
    size_t budget = 4 * (size_t)m->nparts * SHARDZ_MAX_REPLICAS + 4 * nn + 64;
    while (budget-- > 0) {
        bool done = b.donors.n == 0 || b.receivers.n == 0;
        uint32_t d = 0, r = 0;
        bool dout = false, rout = false;
        if (!done) {
            d = b.donors.a[0];
            r = b.receivers.a[0];
            dout = b.z[d] >= 1 - BAND_EDGE;
            rout = b.z[r] <= -1 + BAND_EDGE;
            done = !dout && !rout;
        }
        if (done) {
            if (nstuck == 0 || moves_since == 0) {
                break;
            }
            for (size_t i = 0; i < nstuck; i++) {
                uint32_t n = stuck[i] >> 1;
                pz_heap *h = (stuck[i] & 1) ? &b.receivers : &b.donors;
                if (!pz_heap_has(h, n)) {
                    pz_heap_push(h, n);
                }
            }
            nstuck = 0;
            moves_since = 0;
            continue;
        }
        bool moved = false, node_specific;
        /* Free re-routes first, from any partner: a replica this plan already moves costs
         * nothing to send elsewhere, so a node leaving moves its replicas and no others. */
        for (int pass = b.first_moves > 0 ? 0 : 1; pass < 2 && rc == 0 && !moved; pass++) {
            b.free_only = pass == 0;
            rc = try_move(&b, d, r, &moved, &node_specific);
            if (rc == 0 && !moved) {
                rc = try_all(&b, dout ? d : r, dout, &moved);
            }
        }
        b.free_only = false;
        if (rc == 0 && !moved) {
            rc = augment(&b, d, true, &moved);
        }
        if (rc) {
            break;
        }
        if (moved) {
            moves_since++;
            continue;
        }
        uint32_t n = dout ? d : r;
        pz_heap_remove(dout ? &b.donors : &b.receivers, n);
        stuck[nstuck++] = (n << 1) | (dout ? 0u : 1u);
    }
    free(stuck);
out:
    free(b.dev);
    free(b.theta);
    free(b.z);
    free(b.zk);
    free(b.dpos);
    free(b.rpos);
    free(b.da);
    free(b.ra);
    free(b.order);
    free(b.zblock);
    free(b.rmap);
    free(b.parent);
    free(b.prid);
    free(b.queue);
    free(b.elig);
    free(b.seen);
    return rc;
}

int pz_replica_plan(shardz_sharder *s, shardz_plan *plan)
{
    rctx c;
    int rc = rctx_init(&c, &s->m, plan);
    if (rc) {
        goto out;
    }
    rc = evict_and_fill(&c);
    if (rc) {
        goto out;
    }
    rc = respread(&c);
    if (rc) {
        goto out;
    }
    rc = balance(&c, s->cfg.band);
out:
    rctx_free(&c);
    return rc;
}

const pz_ops pz_replica_ops = {
    .version = PZ_OPS_VERSION,
    .name = "replica",
    .register_nodes = pz_generic_register_nodes,
    .unregister_nodes = pz_generic_unregister_nodes,
    .register_partitions = pz_generic_register_partitions,
    .unregister_partitions = pz_generic_unregister_partitions,
    .partitions_of_node = pz_generic_partitions_of_node,
    .nodes_of_partition = pz_generic_nodes_of_partition,
    .plan = pz_replica_plan,
};
