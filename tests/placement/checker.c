/* Brute-force checker for sharders (see checker.h). It trusts nothing but the public queries:
 * it mirrors the ids and specs the test registered, rebuilds the assignment from
 * nodes_of_partition and partitions_of_node, and recomputes every property by brute force.
 * The section "What is asserted when" below says which property is checked in which state.
 * Linked into every tests/placement test; no cmocka, one thread, no state outside the world. */
#include "checker.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What is asserted when
 * ---------------------
 * Always (every snapshot): (1) both queries agree (same (partition, slot, node) triples, no
 * duplicates, slots ascending and < replicas, roles: slot 0 primary when the sharder has roles),
 * queries never name an unregistered node or partition, unregistered ids answer ENOENT, and the
 * stats counters agree with the queries.
 * After each rebalance / apply:
 * (2) distinct nodes per partition: always.
 * (3) zones: for each partition, let d_z be its replicas in zone z. A violation is a pair of
 *     zones a, b with d_a >= d_b + 2 where a holds a movable replica of it (not on a suspect
 *     node) and b has an alive node that does not hold it and has room for its load. When every
 *     zone has enough free nodes this is exactly "min(R, Z) distinct zones, per-zone counts
 *     differ by at most 1"; when a zone is too small or full, it asks for the best spread left.
 * (4) capacity: always, per node and capped dimension, sum of loads <= capacity (+1e-9).
 * (6) re-placement: no vacant slot and no replica on a dead or draining node while an alive
 *     node that does not hold the partition has room for it.
 * (5) balance, only when achievable: no vacant slot, nothing left on dead/draining/joining
 *     nodes, capacity not binding (cap0 >= 1.5 * share + 2 * max load, higher dimensions able to
 *     take everything). Balance is over alive nodes (suspect nodes and their replicas are left
 *     out). Groups: one global group when there is at most one zone with alive nodes, or when
 *     the zones have equal alive sizes, equal weights, at least ceil(Rmax/Z) nodes each and
 *     every partition's R is a multiple of Z (then zone totals are forced equal; the option
 *     zone_extras_global extends this to any R for equal loads), or, for equal loads and
 *     weights, when the zones are slack: each zone's ideal total k_z * T (T = replicas / alive
 *     nodes) with its floor/ceil band fits in [sum floor(R/Z), sum ceil(R/Z)], the totals zone
 *     spread allows it; never with zones while non-alive (suspect) nodes hold replicas, as
 *     those pin zone slots. Otherwise each zone is its own group (its total is whatever zone
 *     spread made it). In a group, with equal partition loads:
 *     band 0 and equal weights: max - min <= 1; band 0, weights w_i = capacity[0]: count in
 *     [floor(T_i), ceil(T_i)], T_i = total * w_i / W, water-filled so that T_i <= the partitions
 *     present in the group, and only when the floor targets pass Gale-Ryser (the k largest
 *     fit in sum over partitions of min(replicas in the group, k)); band > 0: |count - T_i| <= band
 * * T_i + 1. With unequal loads: |load_i - share_i| <= band * share_i + max partition load (share_i
 * = total * w_i / W). After a pure leave step balance is asserted only where it does not conflict
 * with "only the leaver's replicas move": when the leave oracle (a max-flow with lower bounds over
 * the leaving replicas, the alive nodes, distinctness, zone spread and the count bounds) finds a
 * placement of only those replicas that meets every bound. (7) movement: a pure leave step (only
 * unregister / dead / draining since the last plan) moves only replicas of those nodes (and fills
 * vacant slots), asserted when the leave oracle proves it compatible with balance and zone spread
 * (see (5)). A pure join step (only alive nodes registered) from a balanced base, equal loads, same
 * zone set, at most one zone or every R a multiple of Z: every move goes to a joiner and moved <=
 * LB + max(joiners, ceil(1% of LB)) with LB = sum over joiners of floor(T_joiner). Transition
 * (every plan): replaying the plan's moves over the previous applied state (plus presets) gives
 * exactly the new state; each move's `from` is the slot's node at that point; `to` is an alive
 * node; no slot moves twice, no move to itself; reasons: new partition -> new; leaver -> its
 * unregister reason; dead node -> node-dead; draining -> drain; alive -> joiner: join; alive ->
 * other alive: rebalance or load (or join in a step where nodes joined); vacant slot: repair (or
 * the reason that vacated it); never off a suspect node. Generations grow when the assignment
 * changed, stay when it did not (gens_flat); the revision grows when anything changed. A dry run
 * changes nothing, is deterministic (twice the same plan) and replays over the previous state. */

#define CK_NONE UINT32_MAX
#define CK_R SHARDZ_MAX_REPLICAS
#define CK_D SHARDZ_MAX_DIMS
#define CK_EPS 1e-6
#define CK_NOSTATE 0xFFu

/* ---- PRNG ---------------------------------------------------------------------------------- */

uint64_t ck_rng_next(ck_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t ck_rng_range(ck_rng *r, uint64_t lo, uint64_t hi)
{
    if (hi <= lo) {
        return lo;
    }
    return lo + ck_rng_next(r) % (hi - lo + 1);
}

double ck_rng_unit(ck_rng *r)
{
    return (double)(ck_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- id map: string -> entry index (latest entry for an id) ---------------------------------- */

typedef struct {
    const char *key; /* borrowed from the entry */
    uint32_t val;
} ck_kv;

typedef struct {
    ck_kv *t;
    size_t cap, count;
} ck_map;

static uint64_t ck_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return h;
}

static uint32_t map_get(const ck_map *m, const char *key)
{
    if (m->cap == 0 || key == NULL) {
        return CK_NONE;
    }
    size_t i = ck_hash(key) & (m->cap - 1);
    while (m->t[i].key) {
        if (strcmp(m->t[i].key, key) == 0) {
            return m->t[i].val;
        }
        i = (i + 1) & (m->cap - 1);
    }
    return CK_NONE;
}

static void map_put(ck_map *m, const char *key, uint32_t val)
{
    if ((m->count + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        ck_kv *nt = calloc(ncap, sizeof(*nt));
        if (!nt) {
            abort();
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (m->t[i].key) {
                size_t j = ck_hash(m->t[i].key) & (ncap - 1);
                while (nt[j].key) {
                    j = (j + 1) & (ncap - 1);
                }
                nt[j] = m->t[i];
            }
        }
        free(m->t);
        m->t = nt;
        m->cap = ncap;
    }
    size_t i = ck_hash(key) & (m->cap - 1);
    while (m->t[i].key) {
        if (strcmp(m->t[i].key, key) == 0) {
            m->t[i].key = key;
            m->t[i].val = val;
            return;
        }
        i = (i + 1) & (m->cap - 1);
    }
    m->t[i].key = key;
    m->t[i].val = val;
    m->count++;
}

/* ---- the mirrored model ------------------------------------------------------------------- */

typedef struct {
    char *id;
    uint32_t zone;
    size_t ncap;
    double cap[CK_D]; /* INFINITY when unlimited */
    double weight;    /* capacity[0], or 1 when unlimited */
    shardz_node_state state;
    bool registered;
    /* since the last applied plan */
    bool joined;       /* registered alive */
    bool became_alive; /* set alive by a state change */
    bool left;         /* unregistered */
    shardz_reason left_reason;
} ck_node;

typedef struct {
    char *id;
    unsigned nrep;
    double load[CK_D];
    bool registered;
    bool added; /* since the last applied plan */
    size_t npreset;
    uint32_t preset[CK_R]; /* node entries, CK_NONE vacant */
    uint64_t preset_gen;
} ck_part;

struct ck_snap {
    uint32_t nparts, nnodes;
    uint32_t *slot; /* nparts * CK_R node entries, CK_NONE vacant */
    uint64_t *gen;
    uint8_t *ppresent;
    uint8_t *nstate; /* CK_NOSTATE: not registered */
    uint32_t *ncount;
    double *nload; /* nnodes * CK_D */
    uint64_t revision;
    shardz_sharder_stats stats;
};

struct ck_world {
    shardz_sharder *s;
    size_t ndims;
    unsigned defrep;
    int roles;
    double band;
    ck_opts opts;

    ck_node *nodes;
    uint32_t nnodes, capnodes;
    ck_map nmap;
    ck_part *parts;
    uint32_t nparts, capparts;
    ck_map pmap;
    char **zones;
    uint32_t nzones;

    ck_snap *base;      /* the state after the last applied plan (or creation) */
    ck_snap *last;      /* the last snapshot taken by a check */
    bool base_balanced; /* count balance was asserted and held at base */

    /* events since base */
    bool ev_any, ev_join, ev_leave, ev_other;

    double *target; /* per node entry: T_i of the last count balance check (NAN: none) */
    bool target_valid;

    ck_last last_step;
    ck_counters counters;
    size_t nsoft;    /* soft findings (counters that disagree with the queries) */
    char soft[1024]; /* the first one */
    shardz_replica *buf;
    size_t capbuf;
    char msg[4096];
};

static const char *fail(ck_world *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
    va_end(ap);
    return w->msg;
}

/* A soft finding: recorded (the first one kept), the checks go on; see ck_soft. */
static void soft(ck_world *w, const char *fmt, ...)
{
    if (w->nsoft++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->soft, sizeof(w->soft), fmt, ap);
        va_end(ap);
    }
}

const char *ck_soft(const ck_world *w)
{
    return w->nsoft ? w->soft : NULL;
}

static char *ck_strdup(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (!d) {
        abort();
    }
    memcpy(d, s, n + 1);
    return d;
}

static void *ck_grow(void *p, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap) {
        return p;
    }
    uint32_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        ncap *= 2;
    }
    void *np = realloc(p, (size_t)ncap * elem);
    if (!np) {
        abort();
    }
    *cap = ncap;
    return np;
}

static uint32_t zone_intern(ck_world *w, const char *z)
{
    if (z == NULL) {
        z = "";
    }
    for (uint32_t i = 0; i < w->nzones; i++) {
        if (strcmp(w->zones[i], z) == 0) {
            return i;
        }
    }
    char **nz = realloc(w->zones, (w->nzones + 1) * sizeof(*nz));
    if (!nz) {
        abort();
    }
    w->zones = nz;
    w->zones[w->nzones] = ck_strdup(z);
    return w->nzones++;
}

ck_world *ck_new(const shardz_sharder_config *cfg, int *rc)
{
    shardz_sharder *s = NULL;
    int r = shardz_sharder_new(cfg, &s);
    if (rc) {
        *rc = r;
    }
    if (r != 0) {
        return NULL;
    }
    ck_world *w = calloc(1, sizeof(*w));
    if (!w) {
        abort();
    }
    w->s = s;
    w->ndims = cfg && cfg->ndims ? cfg->ndims : 1;
    w->defrep = cfg && cfg->replicas ? cfg->replicas : 1;
    w->roles = cfg ? cfg->roles : 0;
    w->band = cfg ? cfg->band : 0.0;
    w->opts = (ck_opts){.zones = true,
                        .capacity = true,
                        .balance = true,
                        .replace = true,
                        .movement = true,
                        .reasons = true,
                        .gens_flat = true,
                        .zone_extras_global = false};
    zone_intern(w, "");
    const char *err = NULL;
    w->base = ck_snap_take(w, &err);
    w->base_balanced = true;
    return w;
}

void ck_free(ck_world *w)
{
    if (!w) {
        return;
    }
    shardz_sharder_free(w->s);
    for (uint32_t i = 0; i < w->nnodes; i++) {
        free(w->nodes[i].id);
    }
    for (uint32_t i = 0; i < w->nparts; i++) {
        free(w->parts[i].id);
    }
    for (uint32_t i = 0; i < w->nzones; i++) {
        free(w->zones[i]);
    }
    free(w->zones);
    free(w->nodes);
    free(w->parts);
    free(w->nmap.t);
    free(w->pmap.t);
    ck_snap_free(w->base);
    ck_snap_free(w->last);
    free(w->target);
    free(w->buf);
    free(w);
}

shardz_sharder *ck_sharder(ck_world *w)
{
    return w->s;
}

ck_opts *ck_options(ck_world *w)
{
    return &w->opts;
}

const ck_last *ck_last_step(const ck_world *w)
{
    return &w->last_step;
}

const ck_counters *ck_counts(const ck_world *w)
{
    return &w->counters;
}

/* SHARDZ_CK_TRACE=1 prints every call the wrappers make, to rebuild a failing sequence. */
static bool tracing(void)
{
    static int on = -1;
    if (on < 0) {
        on = getenv("SHARDZ_CK_TRACE") != NULL;
    }
    return on;
}

static void trace(const char *fmt, ...)
{
    if (!tracing()) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* ---- wrappers ------------------------------------------------------------------------------ */

int ck_add_nodes(ck_world *w, const shardz_node_spec *nodes, size_t n)
{
    int rc = shardz_sharder_register_nodes(w->s, nodes, n);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        trace("trace: register node %s zone '%s' cap0 %.17g state %s\n", nodes[i].id,
              nodes[i].zone ? nodes[i].zone : "", nodes[i].ncapacity ? nodes[i].capacity[0] : 0.0,
              shardz_node_state_name(nodes[i].state));
    }
    for (size_t i = 0; i < n; i++) {
        w->nodes = ck_grow(w->nodes, &w->capnodes, w->nnodes + 1, sizeof(*w->nodes));
        ck_node *e = &w->nodes[w->nnodes];
        memset(e, 0, sizeof(*e));
        e->id = ck_strdup(nodes[i].id);
        e->zone = zone_intern(w, nodes[i].zone);
        e->ncap = nodes[i].ncapacity;
        for (size_t d = 0; d < CK_D; d++) {
            e->cap[d] = d < e->ncap ? nodes[i].capacity[d] : INFINITY;
        }
        e->weight = e->ncap >= 1 ? e->cap[0] : 1.0;
        e->state = nodes[i].state;
        e->registered = true;
        e->joined = e->state == SHARDZ_NODE_ALIVE;
        map_put(&w->nmap, e->id, w->nnodes);
        w->nnodes++;
        w->ev_any = true;
        if (e->joined) {
            w->ev_join = true;
        }
    }
    return 0;
}

int ck_add_node(ck_world *w, const char *id, const char *zone, double cap0, shardz_node_state state)
{
    shardz_node_spec sp;
    memset(&sp, 0, sizeof(sp));
    sp.id = id;
    sp.zone = zone;
    if (cap0 > 0) {
        sp.ncapacity = 1;
        sp.capacity[0] = cap0;
    }
    sp.state = state;
    return ck_add_nodes(w, &sp, 1);
}

int ck_remove_nodes(ck_world *w, const char *const *ids, size_t n, shardz_reason reason)
{
    int rc = shardz_sharder_unregister_nodes(w->s, ids, n, reason);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        trace("trace: unregister node %s %s\n", ids[i], shardz_reason_name(reason));
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t e = map_get(&w->nmap, ids[i]);
        if (e != CK_NONE && w->nodes[e].registered) {
            w->nodes[e].registered = false;
            w->nodes[e].left = true;
            w->nodes[e].left_reason = reason;
        }
    }
    w->ev_any = true;
    w->ev_leave = true;
    return 0;
}

int ck_remove_node(ck_world *w, const char *id, shardz_reason reason)
{
    return ck_remove_nodes(w, &id, 1, reason);
}

int ck_set_state(ck_world *w, const char *id, shardz_node_state state)
{
    int rc = shardz_sharder_set_node_state(w->s, id, state);
    if (rc != 0) {
        return rc;
    }
    trace("trace: node %s %s\n", id, shardz_node_state_name(state));
    uint32_t e = map_get(&w->nmap, id);
    if (e == CK_NONE) {
        return rc;
    }
    ck_node *nd = &w->nodes[e];
    if (nd->state == state) {
        return rc;
    }
    w->ev_any = true;
    if (state == SHARDZ_NODE_DEAD || state == SHARDZ_NODE_DRAINING) {
        w->ev_leave = true;
    } else {
        w->ev_other = true;
        if (state == SHARDZ_NODE_ALIVE) {
            nd->became_alive = true;
        }
    }
    nd->state = state;
    return rc;
}

static unsigned spec_replicas(const ck_world *w, unsigned r)
{
    return r ? r : w->defrep;
}

int ck_add_parts(ck_world *w, const shardz_partition_spec *parts, size_t n)
{
    int rc = shardz_sharder_register_partitions(w->s, parts, n);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        trace("trace: register partition %s replicas %u load0 %.17g presets %zu\n", parts[i].id,
              parts[i].replicas, parts[i].nload ? parts[i].load[0] : -1.0, parts[i].nnodes);
    }
    for (size_t i = 0; i < n; i++) {
        w->parts = ck_grow(w->parts, &w->capparts, w->nparts + 1, sizeof(*w->parts));
        ck_part *p = &w->parts[w->nparts];
        memset(p, 0, sizeof(*p));
        p->id = ck_strdup(parts[i].id);
        p->nrep = spec_replicas(w, parts[i].replicas);
        p->load[0] = 1.0;
        for (size_t d = 0; d < parts[i].nload && d < CK_D; d++) {
            p->load[d] = parts[i].load[d];
        }
        p->registered = true;
        p->added = true;
        p->npreset = parts[i].nnodes;
        for (size_t k = 0; k < CK_R; k++) {
            p->preset[k] = CK_NONE;
        }
        for (size_t k = 0; k < parts[i].nnodes && k < CK_R; k++) {
            p->preset[k] = parts[i].nodes[k] ? map_get(&w->nmap, parts[i].nodes[k]) : CK_NONE;
        }
        p->preset_gen = parts[i].generation;
        map_put(&w->pmap, p->id, w->nparts);
        w->nparts++;
    }
    w->ev_any = true;
    w->ev_other = true;
    return 0;
}

int ck_add_part(ck_world *w, const char *id, unsigned replicas, double load0)
{
    shardz_partition_spec sp;
    memset(&sp, 0, sizeof(sp));
    sp.id = id;
    sp.replicas = replicas;
    if (load0 >= 0) {
        sp.nload = 1;
        sp.load[0] = load0;
    }
    return ck_add_parts(w, &sp, 1);
}

int ck_remove_parts(ck_world *w, const char *const *ids, size_t n)
{
    int rc = shardz_sharder_unregister_partitions(w->s, ids, n);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        trace("trace: unregister partition %s\n", ids[i]);
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t e = map_get(&w->pmap, ids[i]);
        if (e != CK_NONE) {
            w->parts[e].registered = false;
        }
    }
    w->ev_any = true;
    w->ev_other = true;
    return 0;
}

int ck_set_load(ck_world *w, const char *id, const double *load, size_t n)
{
    int rc = shardz_sharder_set_partition_load(w->s, id, load, n);
    if (rc != 0) {
        return rc;
    }
    trace("trace: load %s %.17g (%zu dims)\n", id, n ? load[0] : 0.0, n);
    uint32_t e = map_get(&w->pmap, id);
    if (e != CK_NONE) {
        for (size_t d = 0; d < n && d < CK_D; d++) {
            w->parts[e].load[d] = load[d];
        }
    }
    w->ev_any = true;
    w->ev_other = true;
    return 0;
}

int ck_add_nodes_n(ck_world *w, const char *prefix, size_t first, size_t n, size_t nzones,
                   double cap0)
{
    shardz_node_spec *sp = calloc(n + 1, sizeof(*sp));
    char(*ids)[300] = calloc(n + 1, sizeof(*ids));
    char(*zs)[24] = calloc(n + 1, sizeof(*zs));
    if (!sp || !ids || !zs) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%s%zu", prefix, first + i);
        snprintf(zs[i], sizeof(zs[i]), "z%zu", nzones ? i % nzones : 0);
        sp[i].id = ids[i];
        sp[i].zone = nzones ? zs[i] : NULL;
        if (cap0 > 0) {
            sp[i].ncapacity = 1;
            sp[i].capacity[0] = cap0;
        }
        sp[i].state = SHARDZ_NODE_ALIVE;
    }
    int rc = ck_add_nodes(w, sp, n);
    free(sp);
    free(ids);
    free(zs);
    return rc;
}

int ck_add_parts_n(ck_world *w, const char *prefix, size_t first, size_t n, unsigned replicas,
                   double load0)
{
    shardz_partition_spec *sp = calloc(n + 1, sizeof(*sp));
    char(*ids)[300] = calloc(n + 1, sizeof(*ids));
    if (!sp || !ids) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%s%zu", prefix, first + i);
        sp[i].id = ids[i];
        sp[i].replicas = replicas;
        if (load0 >= 0) {
            sp[i].nload = 1;
            sp[i].load[0] = load0;
        }
    }
    int rc = ck_add_parts(w, sp, n);
    free(sp);
    free(ids);
    return rc;
}

/* ---- snapshots ----------------------------------------------------------------------------- */

void ck_snap_free(ck_snap *s)
{
    if (!s) {
        return;
    }
    free(s->slot);
    free(s->gen);
    free(s->ppresent);
    free(s->nstate);
    free(s->ncount);
    free(s->nload);
    free(s);
}

static void ensure_buf(ck_world *w, size_t n)
{
    if (n <= w->capbuf) {
        return;
    }
    size_t ncap = w->capbuf ? w->capbuf : 64;
    while (ncap < n) {
        ncap *= 2;
    }
    free(w->buf);
    w->buf = calloc(ncap, sizeof(*w->buf));
    if (!w->buf) {
        abort();
    }
    w->capbuf = ncap;
}

static shardz_role expected_role(const ck_world *w, unsigned slot)
{
    if (!w->roles) {
        return SHARDZ_ROLE_NONE;
    }
    return slot == 0 ? SHARDZ_ROLE_PRIMARY : SHARDZ_ROLE_SECONDARY;
}

static const char *snap_fill(ck_world *w, ck_snap *sn)
{
    const shardz_sharder *s = w->s;
    size_t assigned = 0, vacant = 0;
    /* the partition view */
    for (uint32_t i = 0; i < sn->nparts; i++) {
        ck_part *p = &w->parts[i];
        for (unsigned k = 0; k < CK_R; k++) {
            sn->slot[(size_t)i * CK_R + k] = CK_NONE;
        }
        if (!p->registered) {
            if (map_get(&w->pmap, p->id) == i) {
                size_t n = 99;
                int rc = shardz_sharder_nodes_of_partition(s, p->id, w->buf, 0, &n);
                if (rc != SHARDZ_ENOENT) {
                    return fail(w,
                                "nodes_of_partition(%s) of an unregistered partition: %d, "
                                "want ENOENT",
                                p->id, rc);
                }
                uint64_t g;
                rc = shardz_sharder_generation(s, p->id, &g);
                if (rc != SHARDZ_ENOENT) {
                    return fail(w,
                                "generation(%s) of an unregistered partition: %d, want "
                                "ENOENT",
                                p->id, rc);
                }
            }
            continue;
        }
        sn->ppresent[i] = 1;
        size_t n = 0;
        ensure_buf(w, 1);
        int rc = shardz_sharder_nodes_of_partition(s, p->id, w->buf, 0, &n);
        if (rc != 0) {
            return fail(w, "nodes_of_partition(%s, cap 0): %d", p->id, rc);
        }
        if (n > p->nrep) {
            return fail(w, "partition %s: %zu replicas returned, it has %u slots", p->id, n,
                        p->nrep);
        }
        ensure_buf(w, n + 1);
        size_t n2 = 0;
        rc = shardz_sharder_nodes_of_partition(s, p->id, w->buf, w->capbuf, &n2);
        if (rc != 0 || n2 != n) {
            return fail(w, "nodes_of_partition(%s): rc %d, n %zu (sized %zu)", p->id, rc, n2, n);
        }
        long prev = -1;
        for (size_t k = 0; k < n; k++) {
            const shardz_replica *r = &w->buf[k];
            if (!r->partition || strcmp(r->partition, p->id) != 0) {
                return fail(w, "nodes_of_partition(%s)[%zu].partition is %s", p->id, k,
                            r->partition ? r->partition : "(null)");
            }
            if (r->slot >= p->nrep || (long)r->slot <= prev) {
                return fail(w,
                            "nodes_of_partition(%s): slot %u after %ld (replicas %u): not "
                            "in slot order or out of range",
                            p->id, r->slot, prev, p->nrep);
            }
            prev = (long)r->slot;
            uint32_t ne = r->node ? map_get(&w->nmap, r->node) : CK_NONE;
            if (ne == CK_NONE || !w->nodes[ne].registered) {
                return fail(w, "partition %s slot %u is on %s, which is not a registered node",
                            p->id, r->slot, r->node ? r->node : "(null)");
            }
            if (r->role != expected_role(w, r->slot)) {
                return fail(w, "partition %s slot %u: role %d, want %d", p->id, r->slot,
                            (int)r->role, (int)expected_role(w, r->slot));
            }
            sn->slot[(size_t)i * CK_R + r->slot] = ne;
            sn->ncount[ne]++;
            for (size_t d = 0; d < CK_D; d++) {
                sn->nload[(size_t)ne * CK_D + d] += p->load[d];
            }
        }
        assigned += n;
        vacant += p->nrep - n;
        rc = shardz_sharder_generation(s, p->id, &sn->gen[i]);
        if (rc != 0) {
            return fail(w, "generation(%s): %d", p->id, rc);
        }
    }
    /* the node view must be the same set of triples */
    uint8_t *seen = calloc((size_t)sn->nparts * CK_R + 1, 1);
    if (!seen) {
        abort();
    }
    const char *err = NULL;
    for (uint32_t e = 0; e < sn->nnodes && !err; e++) {
        ck_node *nd = &w->nodes[e];
        if (!nd->registered) {
            sn->nstate[e] = CK_NOSTATE;
            if (map_get(&w->nmap, nd->id) == e) {
                size_t n = 99;
                int rc = shardz_sharder_partitions_of_node(s, nd->id, w->buf, 0, &n);
                if (rc != SHARDZ_ENOENT) {
                    err = fail(w,
                               "partitions_of_node(%s) of an unregistered node: %d, want "
                               "ENOENT",
                               nd->id, rc);
                }
            }
            continue;
        }
        sn->nstate[e] = (uint8_t)nd->state;
        size_t n = 0;
        int rc = shardz_sharder_partitions_of_node(s, nd->id, w->buf, 0, &n);
        if (rc != 0) {
            err = fail(w, "partitions_of_node(%s, cap 0): %d", nd->id, rc);
            break;
        }
        if (n != sn->ncount[e]) {
            err = fail(w,
                       "node %s: partitions_of_node says %zu replicas, nodes_of_partition "
                       "says %u",
                       nd->id, n, sn->ncount[e]);
            break;
        }
        ensure_buf(w, n + 1);
        size_t n2 = 0;
        rc = shardz_sharder_partitions_of_node(s, nd->id, w->buf, w->capbuf, &n2);
        if (rc != 0 || n2 != n) {
            err = fail(w, "partitions_of_node(%s): rc %d, n %zu (sized %zu)", nd->id, rc, n2, n);
            break;
        }
        for (size_t k = 0; k < n; k++) {
            const shardz_replica *r = &w->buf[k];
            uint32_t pe = r->partition ? map_get(&w->pmap, r->partition) : CK_NONE;
            if (pe == CK_NONE || !w->parts[pe].registered || pe >= sn->nparts) {
                err = fail(w, "partitions_of_node(%s) names %s, not a registered partition", nd->id,
                           r->partition ? r->partition : "(null)");
                break;
            }
            if (!r->node || strcmp(r->node, nd->id) != 0) {
                err = fail(w, "partitions_of_node(%s)[%zu].node is %s", nd->id, k,
                           r->node ? r->node : "(null)");
                break;
            }
            if (r->slot >= w->parts[pe].nrep) {
                err = fail(w, "partitions_of_node(%s): %s slot %u out of range", nd->id,
                           r->partition, r->slot);
                break;
            }
            size_t si = (size_t)pe * CK_R + r->slot;
            if (sn->slot[si] != e) {
                err = fail(w,
                           "partitions_of_node(%s) lists %s slot %u, nodes_of_partition puts "
                           "that slot on %s",
                           nd->id, r->partition, r->slot,
                           sn->slot[si] == CK_NONE ? "(vacant)" : w->nodes[sn->slot[si]].id);
                break;
            }
            if (seen[si]) {
                err = fail(w, "partitions_of_node(%s) lists %s slot %u twice", nd->id, r->partition,
                           r->slot);
                break;
            }
            seen[si] = 1;
            if (r->role != expected_role(w, r->slot)) {
                err = fail(w, "partitions_of_node(%s): %s slot %u role %d, want %d", nd->id,
                           r->partition, r->slot, (int)r->role, (int)expected_role(w, r->slot));
                break;
            }
        }
    }
    free(seen);
    if (err) {
        return err;
    }
    memset(&sn->stats, 0, sizeof(sn->stats));
    shardz_sharder_get_stats(s, &sn->stats);
    sn->revision = sn->stats.revision;
    /* the counters must agree with the queries */
    size_t nreg = 0, nalive = 0, npart = 0;
    uint32_t minc = UINT32_MAX, maxc = 0;
    double minl = INFINITY, maxl = -INFINITY;
    for (uint32_t e = 0; e < sn->nnodes; e++) {
        if (sn->nstate[e] == CK_NOSTATE) {
            continue;
        }
        nreg++;
        if (sn->nstate[e] == SHARDZ_NODE_ALIVE) {
            nalive++;
            minc = sn->ncount[e] < minc ? sn->ncount[e] : minc;
            maxc = sn->ncount[e] > maxc ? sn->ncount[e] : maxc;
            double l = sn->nload[(size_t)e * CK_D];
            minl = l < minl ? l : minl;
            maxl = l > maxl ? l : maxl;
        }
    }
    for (uint32_t i = 0; i < sn->nparts; i++) {
        npart += sn->ppresent[i];
    }
    const shardz_sharder_stats *st = &sn->stats;
    if (st->nodes != nreg || st->eligible_nodes != nalive || st->partitions != npart ||
        st->replicas != assigned || st->missing != vacant) {
        soft(w,
             "stats: nodes %zu eligible %zu partitions %zu replicas %zu missing %zu; "
             "queries give %zu %zu %zu %zu %zu",
             st->nodes, st->eligible_nodes, st->partitions, st->replicas, st->missing, nreg, nalive,
             npart, assigned, vacant);
    }
    if (nalive > 0) {
        if (st->min_count != minc || st->max_count != maxc) {
            soft(w, "stats: min/max count %zu/%zu, queries give %u/%u", st->min_count,
                 st->max_count, minc, maxc);
        }
        double tol = 1e-6 * (1.0 + fabs(maxl));
        if (fabs(st->min_load - minl) > tol || fabs(st->max_load - maxl) > tol) {
            soft(w, "stats: min/max load %g/%g, queries give %g/%g", st->min_load, st->max_load,
                 minl, maxl);
        }
    }
    return NULL;
}

static ck_snap *snap_alloc(const ck_world *w)
{
    ck_snap *sn = calloc(1, sizeof(*sn));
    if (!sn) {
        abort();
    }
    sn->nparts = w->nparts;
    sn->nnodes = w->nnodes;
    sn->slot = calloc((size_t)sn->nparts * CK_R + 1, sizeof(*sn->slot));
    sn->gen = calloc((size_t)sn->nparts + 1, sizeof(*sn->gen));
    sn->ppresent = calloc((size_t)sn->nparts + 1, 1);
    sn->nstate = calloc((size_t)sn->nnodes + 1, 1);
    sn->ncount = calloc((size_t)sn->nnodes + 1, sizeof(*sn->ncount));
    sn->nload = calloc((size_t)sn->nnodes * CK_D + 1, sizeof(*sn->nload));
    if (!sn->slot || !sn->gen || !sn->ppresent || !sn->nstate || !sn->ncount || !sn->nload) {
        abort();
    }
    return sn;
}

ck_snap *ck_snap_take(ck_world *w, const char **err)
{
    ck_snap *sn = snap_alloc(w);
    *err = snap_fill(w, sn);
    return sn;
}

static uint32_t snap_slot(const ck_snap *sn, uint32_t pe, unsigned k)
{
    if (pe >= sn->nparts) {
        return CK_NONE;
    }
    return sn->slot[(size_t)pe * CK_R + k];
}

const char *ck_snap_diff(const ck_world *wa, const ck_snap *a, const ck_world *wb, const ck_snap *b)
{
    ck_world *w = (ck_world *)wb; /* for the message buffer */
    uint32_t np = a->nparts > b->nparts ? a->nparts : b->nparts;
    for (uint32_t i = 0; i < np; i++) {
        bool pa = i < a->nparts && a->ppresent[i];
        bool pb = i < b->nparts && b->ppresent[i];
        const char *id = i < wb->nparts ? wb->parts[i].id : wa->parts[i].id;
        if (pa != pb) {
            return fail(w, "partition %s registered %d vs %d", id, pa, pb);
        }
        if (!pa) {
            continue;
        }
        for (unsigned k = 0; k < CK_R; k++) {
            uint32_t na = a->slot[(size_t)i * CK_R + k], nb = b->slot[(size_t)i * CK_R + k];
            const char *ida = na == CK_NONE ? "(vacant)" : wa->nodes[na].id;
            const char *idb = nb == CK_NONE ? "(vacant)" : wb->nodes[nb].id;
            if (strcmp(ida, idb) != 0) {
                return fail(w, "partition %s slot %u: %s vs %s", id, k, ida, idb);
            }
        }
        if (a->gen[i] != b->gen[i]) {
            return fail(w, "partition %s generation %llu vs %llu", id,
                        (unsigned long long)a->gen[i], (unsigned long long)b->gen[i]);
        }
    }
    uint32_t nn = a->nnodes > b->nnodes ? a->nnodes : b->nnodes;
    for (uint32_t e = 0; e < nn; e++) {
        uint8_t sa = e < a->nnodes ? a->nstate[e] : CK_NOSTATE;
        uint8_t sb = e < b->nnodes ? b->nstate[e] : CK_NOSTATE;
        if (sa != sb) {
            return fail(w, "node %s state %d vs %d",
                        e < wb->nnodes ? wb->nodes[e].id : wa->nodes[e].id, sa, sb);
        }
    }
    if (a->revision != b->revision) {
        return fail(w, "revision %llu vs %llu", (unsigned long long)a->revision,
                    (unsigned long long)b->revision);
    }
    const shardz_sharder_stats *x = &a->stats, *y = &b->stats;
    if (x->nodes != y->nodes || x->eligible_nodes != y->eligible_nodes ||
        x->partitions != y->partitions || x->replicas != y->replicas || x->missing != y->missing ||
        x->zone_violations != y->zone_violations) {
        return fail(w,
                    "stats differ (nodes %zu/%zu partitions %zu/%zu replicas %zu/%zu missing "
                    "%zu/%zu zone violations %zu/%zu)",
                    x->nodes, y->nodes, x->partitions, y->partitions, x->replicas, y->replicas,
                    x->missing, y->missing, x->zone_violations, y->zone_violations);
    }
    return NULL;
}

const char *ck_same_state(ck_world *a, ck_world *b)
{
    const char *err = NULL;
    ck_snap *sa = ck_snap_take(a, &err);
    if (err) {
        ck_snap_free(sa);
        return fail(b, "first world: %s", err);
    }
    ck_snap *sb = ck_snap_take(b, &err);
    if (!err) {
        err = ck_snap_diff(a, sa, b, sb);
    }
    ck_snap_free(sa);
    ck_snap_free(sb);
    return err;
}

/* ---- state checks ------------------------------------------------------------------------- */

static bool node_alive(const ck_snap *sn, uint32_t e)
{
    return sn->nstate[e] == SHARDZ_NODE_ALIVE;
}

static bool holds(const ck_snap *sn, uint32_t pe, uint32_t e)
{
    for (unsigned k = 0; k < CK_R; k++) {
        if (sn->slot[(size_t)pe * CK_R + k] == e) {
            return true;
        }
    }
    return false;
}

/* Has node e room for one more replica of partition pe (every capped dimension)? */
static bool has_room(const ck_world *w, const ck_snap *sn, uint32_t e, uint32_t pe)
{
    const ck_node *nd = &w->nodes[e];
    for (size_t d = 0; d < nd->ncap && d < CK_D; d++) {
        if (sn->nload[(size_t)e * CK_D + d] + w->parts[pe].load[d] > nd->cap[d] * (1 + 1e-9)) {
            return false;
        }
    }
    return true;
}

/* An alive node that does not hold pe and has room for it, in zone z (or any zone: CK_NONE). */
static uint32_t free_node(const ck_world *w, const ck_snap *sn, uint32_t pe, uint32_t z)
{
    for (uint32_t e = 0; e < sn->nnodes; e++) {
        if (!node_alive(sn, e) || (z != CK_NONE && w->nodes[e].zone != z)) {
            continue;
        }
        if (!holds(sn, pe, e) && has_room(w, sn, e, pe)) {
            return e;
        }
    }
    return CK_NONE;
}

static const char *check_distinct_capacity_replace(ck_world *w, const ck_snap *sn)
{
    size_t nalive = 0;
    for (uint32_t e = 0; e < sn->nnodes; e++) {
        nalive += node_alive(sn, e);
    }
    for (uint32_t i = 0; i < sn->nparts; i++) {
        if (!sn->ppresent[i] || (w->opts.distinct_if_enough && w->parts[i].nrep > nalive)) {
            continue;
        }
        for (unsigned a = 0; a < CK_R; a++) {
            uint32_t na = sn->slot[(size_t)i * CK_R + a];
            if (na == CK_NONE) {
                continue;
            }
            for (unsigned b = a + 1; b < CK_R; b++) {
                if (sn->slot[(size_t)i * CK_R + b] == na) {
                    return fail(w, "(2) partition %s has slots %u and %u on node %s",
                                w->parts[i].id, a, b, w->nodes[na].id);
                }
            }
        }
    }
    if (w->opts.capacity) {
        for (uint32_t e = 0; e < sn->nnodes; e++) {
            if (sn->nstate[e] == CK_NOSTATE) {
                continue;
            }
            const ck_node *nd = &w->nodes[e];
            for (size_t d = 0; d < nd->ncap && d < CK_D; d++) {
                double l = sn->nload[(size_t)e * CK_D + d];
                if (l > nd->cap[d] * (1 + 1e-9) + 1e-9) {
                    return fail(w, "(4) node %s dimension %zu: load %.17g > capacity %.17g", nd->id,
                                d, l, nd->cap[d]);
                }
            }
        }
    }
    if (w->opts.replace) {
        for (uint32_t i = 0; i < sn->nparts; i++) {
            if (!sn->ppresent[i]) {
                continue;
            }
            for (unsigned k = 0; k < w->parts[i].nrep; k++) {
                uint32_t e = sn->slot[(size_t)i * CK_R + k];
                bool stuck = e == CK_NONE || sn->nstate[e] == SHARDZ_NODE_DEAD ||
                             sn->nstate[e] == SHARDZ_NODE_DRAINING;
                if (!stuck) {
                    continue;
                }
                uint32_t f = free_node(w, sn, i, CK_NONE);
                if (f != CK_NONE) {
                    return fail(w,
                                "(6) partition %s slot %u is %s%s%s although alive node %s "
                                "has room and does not hold it",
                                w->parts[i].id, k, e == CK_NONE ? "vacant" : "on ",
                                e == CK_NONE ? "" : w->nodes[e].id,
                                e == CK_NONE                        ? ""
                                : sn->nstate[e] == SHARDZ_NODE_DEAD ? " (dead)"
                                                                    : " (draining)",
                                w->nodes[f].id);
                }
            }
        }
    }
    return NULL;
}

static const char *check_zones(ck_world *w, const ck_snap *sn, bool *clean)
{
    *clean = true;
    if (!w->opts.zones || w->nzones < 2) {
        return NULL;
    }
    uint32_t nz = w->nzones;
    unsigned *d = calloc(nz, sizeof(*d));
    bool *movable = calloc(nz, sizeof(*movable));
    if (!d || !movable) {
        abort();
    }
    const char *err = NULL;
    for (uint32_t i = 0; i < sn->nparts && !err; i++) {
        if (!sn->ppresent[i]) {
            continue;
        }
        memset(d, 0, nz * sizeof(*d));
        memset(movable, 0, nz * sizeof(*movable));
        for (unsigned k = 0; k < CK_R; k++) {
            uint32_t e = sn->slot[(size_t)i * CK_R + k];
            if (e == CK_NONE) {
                continue;
            }
            d[w->nodes[e].zone]++;
            if (sn->nstate[e] != SHARDZ_NODE_SUSPECT) {
                movable[w->nodes[e].zone] = true;
            }
        }
        w->counters.zone_partitions++;
        for (uint32_t a = 0; a < nz && !err; a++) {
            if (!movable[a]) {
                continue;
            }
            for (uint32_t b = 0; b < nz; b++) {
                if (d[a] < d[b] + 2) {
                    continue;
                }
                uint32_t f = free_node(w, sn, i, b);
                if (f != CK_NONE) {
                    err =
                        fail(w,
                             "(3) partition %s has %u replicas in zone '%s' and %u in zone "
                             "'%s', where alive node %s has room",
                             w->parts[i].id, d[a], w->zones[a], d[b], w->zones[b], w->nodes[f].id);
                    break;
                }
            }
        }
    }
    free(d);
    free(movable);
    return err;
}

/* floor / ceil of a target, where a target within 1e-6 of an integer is that integer (so
 * floating noise neither loosens nor tightens [floor(T), ceil(T)]). */
static double t_floor(double t)
{
    double r = round(t);
    return fabs(t - r) < CK_EPS ? r : floor(t);
}

static double t_ceil(double t)
{
    double r = round(t);
    return fabs(t - r) < CK_EPS ? r : ceil(t);
}

/* Water-filling: T_i = min(cap_i, lambda * w_i) with sum T_i = total. */
static void water_fill(size_t n, const double *wt, const double *cap, double total, double *t)
{
    bool *fixed = calloc(n + 1, sizeof(*fixed));
    if (!fixed) {
        abort();
    }
    for (;;) {
        double rest = total, wsum = 0;
        for (size_t i = 0; i < n; i++) {
            if (fixed[i]) {
                rest -= t[i];
            } else {
                wsum += wt[i];
            }
        }
        bool changed = false;
        for (size_t i = 0; i < n; i++) {
            if (!fixed[i]) {
                t[i] = wsum > 0 ? rest * wt[i] / wsum : 0;
                if (t[i] > cap[i] + 1e-12) {
                    t[i] = cap[i];
                    fixed[i] = true;
                    changed = true;
                }
            }
        }
        if (!changed) {
            break;
        }
    }
    free(fixed);
}

typedef struct {
    bool equal_loads;
    double load0;   /* the common load when equal */
    double maxload; /* largest dimension-0 load of a registered partition */
    unsigned rmax;
    bool all_r_multiple; /* every partition's R is a multiple of Z */
    uint32_t zactive;    /* zones with alive nodes */
    bool global;
} ck_bal_info;

static void balance_info(const ck_world *w, const ck_snap *sn, ck_bal_info *bi)
{
    memset(bi, 0, sizeof(*bi));
    bi->equal_loads = true;
    bool first = true;
    uint32_t *zsize = calloc(w->nzones + 1, sizeof(*zsize));
    double *zw = calloc(w->nzones + 1, sizeof(*zw));
    if (!zsize || !zw) {
        abort();
    }
    bool equal_w = true;
    double w0 = -1;
    for (uint32_t e = 0; e < sn->nnodes; e++) {
        if (!node_alive(sn, e)) {
            continue;
        }
        zsize[w->nodes[e].zone]++;
        if (w0 < 0) {
            w0 = w->nodes[e].weight;
        } else if (w->nodes[e].weight != w0) {
            equal_w = false;
        }
    }
    uint32_t k = 0;
    bool equal_sizes = true;
    for (uint32_t z = 0; z < w->nzones; z++) {
        if (zsize[z] == 0) {
            continue;
        }
        bi->zactive++;
        if (k == 0) {
            k = zsize[z];
        } else if (zsize[z] != k) {
            equal_sizes = false;
        }
    }
    bi->all_r_multiple = true;
    for (uint32_t i = 0; i < sn->nparts; i++) {
        if (!sn->ppresent[i]) {
            continue;
        }
        const ck_part *p = &w->parts[i];
        if (first) {
            bi->load0 = p->load[0];
            first = false;
        } else if (p->load[0] != bi->load0) {
            bi->equal_loads = false;
        }
        bi->maxload = p->load[0] > bi->maxload ? p->load[0] : bi->maxload;
        bi->rmax = p->nrep > bi->rmax ? p->nrep : bi->rmax;
        if (bi->zactive > 0 && p->nrep % bi->zactive != 0) {
            bi->all_r_multiple = false;
        }
    }
    /* replicas held by suspect nodes pin zone slots of their partitions: with zones, one
     * global group is then not asserted (each zone is its own group) */
    bool pinned = false;
    for (uint32_t e = 0; e < sn->nnodes && !pinned; e++) {
        pinned =
            sn->nstate[e] != CK_NOSTATE && sn->nstate[e] != SHARDZ_NODE_ALIVE && sn->ncount[e] > 0;
    }
    if (bi->zactive <= 1) {
        bi->global = true;
    } else if (pinned) {
        bi->global = false;
    } else {
        unsigned need = (bi->rmax + bi->zactive - 1) / bi->zactive;
        bool forced = equal_sizes && equal_w && k >= need &&
                      (bi->all_r_multiple || (w->opts.zone_extras_global && bi->equal_loads));
        /* Slack zones (equal loads and weights): every zone's ideal total k_z * T with its
         * floor/ceil band fits in what zone spread allows it, [sum floor(R/Z), sum ceil(R/Z)]:
         * then zone totals can be chosen so that every node is within floor(T)..ceil(T). */
        bool slack = bi->equal_loads && equal_w;
        if (slack) {
            double x = 0, lo = 0, hi = 0;
            size_t nal = 0;
            for (uint32_t e = 0; e < sn->nnodes; e++) {
                if (node_alive(sn, e)) {
                    x += sn->ncount[e];
                    nal++;
                }
            }
            for (uint32_t i = 0; i < sn->nparts; i++) {
                if (sn->ppresent[i]) {
                    lo += w->parts[i].nrep / bi->zactive;
                    hi += (w->parts[i].nrep + bi->zactive - 1) / bi->zactive;
                }
            }
            double t = nal ? x / (double)nal : 0;
            for (uint32_t z = 0; z < w->nzones && slack; z++) {
                if (zsize[z] == 0) {
                    continue;
                }
                slack = zsize[z] >= need && zsize[z] * floor(t) >= lo && zsize[z] * ceil(t) <= hi;
            }
        }
        bi->global = forced || slack;
    }
    free(zsize);
    free(zw);
}

/* Appends "node=count/target" for a group to the message. */
static void group_detail(ck_world *w, const ck_snap *sn, const uint32_t *members, size_t m,
                         const double *t)
{
    size_t len = strlen(w->msg);
    for (size_t j = 0; j < m && len + 40 < sizeof(w->msg); j++) {
        const ck_node *nd = &w->nodes[members[j]];
        snprintf(w->msg + len, sizeof(w->msg) - len, "%s %s(%s)=%u/%.2f",
                 j ? "" : " | nodes:", nd->id, w->zones[nd->zone], sn->ncount[members[j]], t[j]);
        len = strlen(w->msg);
    }
}

/* (5) balance. Sets w->target for count balance. *asserted tells whether it ran. */
static const char *check_balance(ck_world *w, const ck_snap *sn, bool pure_leave, bool *asserted)
/* pure_leave here: skip (a pure leave step the leave oracle could not vouch for) */
{
    *asserted = false;
    w->target_valid = false;
    if (!w->opts.balance) {
        return NULL;
    }
    ck_bal_info bi;
    balance_info(w, sn, &bi);
    /* achievable? */
    size_t nalive = 0;
    for (uint32_t e = 0; e < sn->nnodes; e++) {
        nalive += node_alive(sn, e);
    }
    if (nalive == 0) {
        return NULL;
    }
    bool ok = true;
    double total[CK_D] = {0};
    size_t nreps = 0;
    for (uint32_t i = 0; i < sn->nparts && ok; i++) {
        if (!sn->ppresent[i]) {
            continue;
        }
        for (unsigned k = 0; k < w->parts[i].nrep; k++) {
            uint32_t e = sn->slot[(size_t)i * CK_R + k];
            if (e == CK_NONE) {
                ok = false; /* vacant: not enough room somewhere */
                break;
            }
            uint8_t st = sn->nstate[e];
            if (st == SHARDZ_NODE_DEAD || st == SHARDZ_NODE_DRAINING || st == SHARDZ_NODE_JOINING) {
                ok = false;
                break;
            }
            if (st == SHARDZ_NODE_ALIVE) {
                nreps++;
                for (size_t d = 0; d < CK_D; d++) {
                    total[d] += w->parts[i].load[d];
                }
            }
        }
    }
    if (pure_leave) {
        ok = false; /* the leave oracle found no leavers-only placement meeting the bounds */
    }
    double wall = 0;
    for (uint32_t e = 0; e < sn->nnodes; e++) {
        if (node_alive(sn, e)) {
            wall += w->nodes[e].weight;
        }
    }
    for (uint32_t e = 0; e < sn->nnodes && ok; e++) {
        if (!node_alive(sn, e)) {
            continue;
        }
        const ck_node *nd = &w->nodes[e];
        for (size_t d = 0; d < nd->ncap && d < CK_D; d++) {
            double need = d == 0 ? 1.5 * total[0] * nd->weight / wall + 2 * bi.maxload : total[d];
            if (nd->cap[d] < need) {
                ok = false;
            }
        }
    }
    if (!ok) {
        w->counters.skipped_balance++;
        return NULL;
    }
    *asserted = true;
    if (bi.global) {
        w->counters.balance_global++;
    } else {
        w->counters.balance_zone++;
    }
    if (!bi.equal_loads) {
        w->counters.balance_load++;
    }
    w->last_step.balance_global = bi.global;
    free(w->target);
    w->target = calloc((size_t)w->nnodes + 1, sizeof(*w->target));
    if (!w->target) {
        abort();
    }
    /* groups: all alive nodes, or each zone's alive nodes */
    uint32_t ngroups = bi.global ? 1 : w->nzones;
    uint32_t *members = calloc((size_t)sn->nnodes + 1, sizeof(*members));
    double *wt = calloc((size_t)sn->nnodes + 1, sizeof(*wt));
    double *cap = calloc((size_t)sn->nnodes + 1, sizeof(*cap));
    double *t = calloc((size_t)sn->nnodes + 1, sizeof(*t));
    uint8_t *inpart = calloc((size_t)sn->nparts + 1, 1);
    if (!members || !wt || !cap || !t || !inpart) {
        abort();
    }
    const char *err = NULL;
    bool any_skip = false;
    for (uint32_t g = 0; g < ngroups && !err; g++) {
        size_t m = 0;
        for (uint32_t e = 0; e < sn->nnodes; e++) {
            if (node_alive(sn, e) && (bi.global || w->nodes[e].zone == g)) {
                members[m++] = e;
            }
        }
        if (m == 0) {
            continue;
        }
        /* partitions present in the group, the group's totals and largest load */
        memset(inpart, 0, sn->nparts);
        size_t pin = 0;
        double gcount = 0, gload = 0, gmax = 0, wsum = 0;
        for (size_t j = 0; j < m; j++) {
            uint32_t e = members[j];
            gcount += sn->ncount[e];
            gload += sn->nload[(size_t)e * CK_D];
            wt[j] = w->nodes[e].weight;
            wsum += wt[j];
        }
        size_t hist[CK_R + 1] = {0}; /* partitions by replicas inside the group */
        for (uint32_t i = 0; i < sn->nparts; i++) {
            if (!sn->ppresent[i]) {
                continue;
            }
            unsigned dp = 0;
            for (size_t j = 0; j < m; j++) {
                if (holds(sn, i, members[j])) {
                    dp++;
                }
            }
            if (dp > 0) {
                inpart[i] = 1;
                pin++;
                hist[dp]++;
                gmax = w->parts[i].load[0] > gmax ? w->parts[i].load[0] : gmax;
            }
        }
        if (bi.equal_loads) {
            for (size_t j = 0; j < m; j++) {
                cap[j] = (double)pin;
            }
            water_fill(m, wt, cap, gcount, t);
            /* Gale-Ryser: the k largest floor targets must fit in sum_p min(d_p, k) (a node
             * holds a partition once); when they do not, the weighted target is not
             * realizable (replicas forced onto few nodes) and is not asserted */
            if (w->band == 0) {
                double *fl = calloc(m + 1, sizeof(*fl));
                if (!fl) {
                    abort();
                }
                for (size_t j = 0; j < m; j++) {
                    fl[j] = t_floor(t[j]);
                }
                for (size_t a = 0; a < m; a++) { /* sort descending (m is small) */
                    for (size_t b = a + 1; b < m; b++) {
                        if (fl[b] > fl[a]) {
                            double x = fl[a];
                            fl[a] = fl[b];
                            fl[b] = x;
                        }
                    }
                }
                double top = 0;
                bool realizable = true;
                for (size_t k = 1; k <= m && realizable; k++) {
                    top += fl[k - 1];
                    double room = 0;
                    for (size_t v = 1; v <= CK_R; v++) {
                        room += (double)hist[v] * (double)(v < k ? v : k);
                    }
                    realizable = top <= room + CK_EPS;
                }
                free(fl);
                if (!realizable) {
                    w->counters.skipped_balance++;
                    any_skip = true;
                    continue;
                }
            }
            uint32_t mx = 0, mn = UINT32_MAX;
            size_t imx = 0, imn = 0;
            for (size_t j = 0; j < m; j++) {
                uint32_t c = sn->ncount[members[j]];
                w->target[members[j]] = t[j];
                if (c > mx) {
                    mx = c;
                    imx = j;
                }
                if (c < mn) {
                    mn = c;
                    imn = j;
                }
            }
            bool equal_w = true;
            for (size_t j = 1; j < m; j++) {
                equal_w = equal_w && wt[j] == wt[0];
            }
            if (w->band > 0) {
                for (size_t j = 0; j < m && !err; j++) {
                    double c = sn->ncount[members[j]];
                    if (fabs(c - t[j]) > w->band * t[j] + 1 + CK_EPS) {
                        err = fail(w,
                                   "(5) %s: node %s has %g replicas, fair share %.3f, band "
                                   "%.3f",
                                   bi.global ? "global" : w->zones[g], w->nodes[members[j]].id, c,
                                   t[j], w->band);
                    }
                }
            } else if (equal_w && pin >= (size_t)(gcount / m + 1)) {
                if (mx > mn + 1) {
                    err = fail(w,
                               "(5) balance (%s, %zu nodes, %g replicas): max %u on %s, min %u "
                               "on %s",
                               bi.global ? "global" : w->zones[g], m, gcount, mx,
                               w->nodes[members[imx]].id, mn, w->nodes[members[imn]].id);
                    group_detail(w, sn, members, m, t);
                }
            } else {
                for (size_t j = 0; j < m && !err; j++) {
                    double c = sn->ncount[members[j]];
                    if (c < t_floor(t[j]) || c > t_ceil(t[j])) {
                        err = fail(w,
                                   "(5) weighted balance (%s): node %s (weight %g) has %g "
                                   "replicas, target %.4f",
                                   bi.global ? "global" : w->zones[g], w->nodes[members[j]].id,
                                   wt[j], c, t[j]);
                        group_detail(w, sn, members, m, t);
                    }
                }
            }
        } else {
            for (size_t j = 0; j < m && !err; j++) {
                double share = gload * wt[j] / wsum;
                double l = sn->nload[(size_t)members[j] * CK_D];
                double tol = w->band * share + gmax + CK_EPS * (1 + gload);
                /* a zone group also accepts a node within the global bound */
                double gshare = total[0] * wt[j] / wall;
                double gtol = w->band * gshare + bi.maxload + CK_EPS * (1 + total[0]);
                if (fabs(l - share) > tol && (bi.global || fabs(l - gshare) > gtol)) {
                    err = fail(w,
                               "(5) load balance (%s, %zu nodes): node %s has load %.4f, fair "
                               "share %.4f, largest partition %.4f, band %.3f",
                               bi.global ? "global" : w->zones[g], m, w->nodes[members[j]].id, l,
                               share, gmax, w->band);
                }
            }
        }
    }
    w->target_valid = bi.equal_loads && !err && !any_skip;
    free(members);
    free(wt);
    free(cap);
    free(t);
    free(inpart);
    (void)nreps;
    return err;
}

/* ---- transitions -------------------------------------------------------------------------- */

static bool reason_in(shardz_reason r, const shardz_reason *set, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (set[i] == r) {
            return true;
        }
    }
    return false;
}

static const char *reason_list(char *buf, size_t cap, const shardz_reason *set, size_t n)
{
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, cap - l, "%s%s", i ? "|" : "", shardz_reason_name(set[i]));
    }
    return buf;
}

/* Replays plan over base (+ events) into out (nparts * CK_R), checking every move. */
static const char *replay(ck_world *w, const ck_snap *base, const shardz_plan *plan, uint32_t *out)
{
    for (uint32_t i = 0; i < w->nparts; i++) {
        const ck_part *p = &w->parts[i];
        for (unsigned k = 0; k < CK_R; k++) {
            uint32_t v = CK_NONE;
            if (p->added) {
                v = k < p->npreset ? p->preset[k] : CK_NONE;
            } else if (i < base->nparts && base->ppresent[i]) {
                v = snap_slot(base, i, k);
            }
            out[(size_t)i * CK_R + k] = v;
        }
    }
    size_t nm = shardz_plan_count(plan);
    uint8_t *touched = calloc((size_t)w->nparts * CK_R + 1, 1);
    if (!touched) {
        abort();
    }
    size_t bycount[SHARDZ_REASON__COUNT] = {0};
    const char *err = NULL;
    char rb[128];
    for (size_t m = 0; m < nm && !err; m++) {
        shardz_move mv;
        memset(&mv, 0, sizeof(mv));
        shardz_plan_move(plan, m, &mv);
        if ((unsigned)mv.reason >= SHARDZ_REASON__COUNT) {
            err = fail(w, "move %zu: reason %d out of range", m, (int)mv.reason);
            break;
        }
        bycount[mv.reason]++;
        uint32_t pe = mv.partition ? map_get(&w->pmap, mv.partition) : CK_NONE;
        if (pe == CK_NONE || !w->parts[pe].registered) {
            err = fail(w, "move %zu names partition %s, not registered", m,
                       mv.partition ? mv.partition : "(null)");
            break;
        }
        const ck_part *p = &w->parts[pe];
        if (mv.slot >= p->nrep) {
            err = fail(w, "move %zu: %s slot %u out of range (%u)", m, p->id, mv.slot, p->nrep);
            break;
        }
        size_t si = (size_t)pe * CK_R + mv.slot;
        if (touched[si]) {
            err = fail(w, "move %zu: %s slot %u moves twice in one plan", m, p->id, mv.slot);
            break;
        }
        touched[si] = 1;
        uint32_t cur = out[si];
        /* a slot of an unregistered node is vacant to the queries: `from` may name the node
         * that left or be NULL */
        bool gone_ok = cur != CK_NONE && !w->nodes[cur].registered && mv.from == NULL;
        if (!gone_ok &&
            (cur == CK_NONE ? mv.from != NULL
                            : (mv.from == NULL || strcmp(mv.from, w->nodes[cur].id) != 0))) {
            err = fail(w, "move %zu: %s slot %u from %s, but the slot is %s", m, p->id, mv.slot,
                       mv.from ? mv.from : "(vacant)",
                       cur == CK_NONE ? "(vacant)" : w->nodes[cur].id);
            break;
        }
        uint32_t to = mv.to ? map_get(&w->nmap, mv.to) : CK_NONE;
        if (mv.to && (to == CK_NONE || !w->nodes[to].registered)) {
            err = fail(w, "move %zu: %s slot %u to %s, not a registered node", m, p->id, mv.slot,
                       mv.to);
            break;
        }
        if (to != CK_NONE && w->nodes[to].state != SHARDZ_NODE_ALIVE) {
            err = fail(w, "move %zu: %s slot %u to %s, which is %s (not alive)", m, p->id, mv.slot,
                       mv.to, shardz_node_state_name(w->nodes[to].state));
            break;
        }
        if (to == cur) {
            err = fail(w, "move %zu: %s slot %u from %s to itself", m, p->id, mv.slot,
                       mv.to ? mv.to : "(vacant)");
            break;
        }
        if (w->opts.reasons) {
            shardz_reason ok[6];
            size_t nok = 0;
            const char *why = "";
            bool never = false;
            if (cur == CK_NONE) {
                bool had = false;
                for (unsigned k = 0; k < p->nrep && !p->added; k++) {
                    had = had || snap_slot(base, pe, k) != CK_NONE;
                }
                if (p->added && p->npreset == 0) {
                    ok[nok++] = SHARDZ_REASON_NEW;
                    why = "new partition";
                } else {
                    why = "vacant slot";
                    ok[nok++] = SHARDZ_REASON_REPAIR;
                    ok[nok++] = SHARDZ_REASON_LEAVE;
                    ok[nok++] = SHARDZ_REASON_NODE_DEAD;
                    ok[nok++] = SHARDZ_REASON_DRAIN;
                    if (!had) {
                        ok[nok++] = SHARDZ_REASON_NEW;
                    }
                }
            } else {
                const ck_node *fn = &w->nodes[cur];
                const ck_node *tn = to == CK_NONE ? NULL : &w->nodes[to];
                if (!fn->registered) {
                    ok[nok++] = fn->left_reason;
                    why = "from an unregistered node";
                } else if (fn->state == SHARDZ_NODE_DEAD) {
                    ok[nok++] = SHARDZ_REASON_NODE_DEAD;
                    why = "from a dead node";
                } else if (fn->state == SHARDZ_NODE_DRAINING) {
                    ok[nok++] = SHARDZ_REASON_DRAIN;
                    why = "from a draining node";
                } else if (fn->state == SHARDZ_NODE_SUSPECT) {
                    never = true;
                } else if (fn->state == SHARDZ_NODE_JOINING) {
                    ok[nok++] = SHARDZ_REASON_REBALANCE;
                    ok[nok++] = SHARDZ_REASON_LOAD;
                    ok[nok++] = SHARDZ_REASON_REPAIR;
                    ok[nok++] = SHARDZ_REASON_JOIN;
                    why = "from a joining node";
                } else if (tn && tn->joined) {
                    ok[nok++] = SHARDZ_REASON_JOIN;
                    why = "alive node to a node that joined";
                } else if (tn && tn->became_alive) {
                    ok[nok++] = SHARDZ_REASON_JOIN;
                    ok[nok++] = SHARDZ_REASON_REBALANCE;
                    why = "alive node to a node that became alive";
                } else {
                    ok[nok++] = SHARDZ_REASON_REBALANCE;
                    ok[nok++] = SHARDZ_REASON_LOAD;
                    if (w->ev_join) {
                        ok[nok++] = SHARDZ_REASON_JOIN; /* making room in a join step */
                    }
                    why = "between alive nodes";
                }
            }
            if (never) {
                err = fail(w,
                           "move %zu: %s slot %u off suspect node %s (suspect nodes keep their "
                           "replicas)",
                           m, p->id, mv.slot, w->nodes[cur].id);
                break;
            }
            if (!reason_in(mv.reason, ok, nok)) {
                err = fail(w, "move %zu: %s slot %u %s -> %s (%s): reason %s, want %s", m, p->id,
                           mv.slot, mv.from ? mv.from : "(vacant)", mv.to ? mv.to : "(vacant)", why,
                           shardz_reason_name(mv.reason), reason_list(rb, sizeof(rb), ok, nok));
                break;
            }
        }
        out[si] = to;
    }
    if (!err) {
        for (int r = 0; r < SHARDZ_REASON__COUNT; r++) {
            size_t c = shardz_plan_count_reason(plan, (shardz_reason)r);
            if (c != bycount[r]) {
                err = fail(w, "plan_count_reason(%s) = %zu, the moves say %zu",
                           shardz_reason_name((shardz_reason)r), c, bycount[r]);
                break;
            }
        }
    }
    free(touched);
    /* slots still on unregistered nodes are vacant */
    for (size_t i = 0; i < (size_t)w->nparts * CK_R; i++) {
        if (out[i] != CK_NONE && !w->nodes[out[i]].registered) {
            out[i] = CK_NONE;
        }
    }
    return err;
}

/* Compares the plans of two dry runs on the same state. */
static const char *same_plan(ck_world *w, const shardz_plan *a, const shardz_plan *b)
{
    size_t na = shardz_plan_count(a), nb = shardz_plan_count(b);
    if (na != nb || shardz_plan_missing(a) != shardz_plan_missing(b)) {
        return fail(w,
                    "two dry runs on one state: %zu vs %zu moves, %zu vs %zu missing "
                    "(not deterministic)",
                    na, nb, shardz_plan_missing(a), shardz_plan_missing(b));
    }
    for (size_t i = 0; i < na; i++) {
        shardz_move x, y;
        shardz_plan_move(a, i, &x);
        shardz_plan_move(b, i, &y);
        bool same = strcmp(x.partition, y.partition) == 0 && x.slot == y.slot &&
                    x.reason == y.reason && (!x.from == !y.from) && (!x.to == !y.to) &&
                    (!x.from || strcmp(x.from, y.from) == 0) && (!x.to || strcmp(x.to, y.to) == 0);
        if (!same) {
            return fail(w,
                        "two dry runs on one state differ at move %zu (not deterministic): "
                        "%s/%u %s -> %s (%s) vs %s/%u %s -> %s (%s)",
                        i, x.partition, x.slot, x.from ? x.from : "-", x.to ? x.to : "-",
                        shardz_reason_name(x.reason), y.partition, y.slot, y.from ? y.from : "-",
                        y.to ? y.to : "-", shardz_reason_name(y.reason));
        }
    }
    return NULL;
}

static size_t count_vacant(const ck_world *w, const uint32_t *slots)
{
    size_t v = 0;
    for (uint32_t i = 0; i < w->nparts; i++) {
        if (!w->parts[i].registered) {
            continue;
        }
        for (unsigned k = 0; k < w->parts[i].nrep; k++) {
            v += slots[(size_t)i * CK_R + k] == CK_NONE;
        }
    }
    return v;
}

/* Was node e leaving in this step (unregistered, or dead/draining now but not at base)? */
static bool leaving_node(const ck_world *w, const ck_snap *base, uint32_t e)
{
    const ck_node *nd = &w->nodes[e];
    if (!nd->registered) {
        return true;
    }
    if (nd->state == SHARDZ_NODE_DEAD || nd->state == SHARDZ_NODE_DRAINING) {
        return true;
    }
    (void)base;
    return false;
}

static bool base_clean(const ck_world *w, const ck_snap *base)
{
    for (uint32_t i = 0; i < base->nparts; i++) {
        if (!base->ppresent[i]) {
            continue;
        }
        for (unsigned k = 0; k < w->parts[i].nrep; k++) {
            uint32_t e = base->slot[(size_t)i * CK_R + k];
            if (e == CK_NONE || base->nstate[e] != SHARDZ_NODE_ALIVE) {
                return false;
            }
        }
    }
    return true;
}

static uint32_t zones_active_mask(const ck_world *w, const ck_snap *sn, uint64_t *mask)
{
    uint32_t n = 0;
    *mask = 0;
    for (uint32_t e = 0; e < sn->nnodes; e++) {
        if (node_alive(sn, e)) {
            uint64_t bit = 1ull << (w->nodes[e].zone & 63);
            if (!(*mask & bit)) {
                n++;
            }
            *mask |= bit;
        }
    }
    return n;
}

static const char *check_transition(ck_world *w, const ck_snap *base, const ck_snap *post,
                                    const shardz_plan *plan, bool pure_leave, bool pure_join,
                                    bool balance_ok)
{
    ck_last *ls = &w->last_step;
    uint32_t *rep = calloc((size_t)w->nparts * CK_R + 1, sizeof(*rep));
    if (!rep) {
        abort();
    }
    const char *err = replay(w, base, plan, rep);
    if (err) {
        free(rep);
        return err;
    }
    for (uint32_t i = 0; i < w->nparts && !err; i++) {
        if (!w->parts[i].registered) {
            continue;
        }
        for (unsigned k = 0; k < CK_R; k++) {
            uint32_t a = rep[(size_t)i * CK_R + k], b = snap_slot(post, i, k);
            if (a != b) {
                err = fail(w,
                           "replaying the plan: partition %s slot %u should be %s, the "
                           "sharder has %s",
                           w->parts[i].id, k, a == CK_NONE ? "(vacant)" : w->nodes[a].id,
                           b == CK_NONE ? "(vacant)" : w->nodes[b].id);
                break;
            }
        }
    }
    size_t vac = count_vacant(w, rep);
    free(rep);
    if (err) {
        return err;
    }
    ls->plan_moves = shardz_plan_count(plan);
    ls->missing = vac;
    size_t pm = shardz_plan_missing(plan);
    size_t stuck = 0;
    for (uint32_t i = 0; i < post->nparts; i++) {
        for (unsigned k = 0; k < CK_R && post->ppresent[i]; k++) {
            uint32_t e = post->slot[(size_t)i * CK_R + k];
            stuck += e != CK_NONE && (post->nstate[e] == SHARDZ_NODE_DEAD ||
                                      post->nstate[e] == SHARDZ_NODE_DRAINING);
        }
    }
    if (pm < vac || pm > vac + stuck) {
        return fail(w,
                    "plan_missing %zu, but %zu slots are vacant (%zu stuck on dead/draining "
                    "nodes)",
                    pm, vac, stuck);
    }
    /* generations, movement */
    size_t moved = 0, moved_nonleaver = 0, moved_nonjoiner = 0;
    const char *first_nonleaver = NULL, *first_nonjoiner = NULL;
    for (uint32_t i = 0; i < w->nparts; i++) {
        const ck_part *p = &w->parts[i];
        if (!p->registered) {
            continue;
        }
        if (p->added) {
            bool any = false;
            for (unsigned k = 0; k < p->nrep; k++) {
                any = any || snap_slot(post, i, k) != CK_NONE;
            }
            if (post->gen[i] < p->preset_gen || (any && p->npreset == 0 && post->gen[i] == 0)) {
                return fail(w, "new partition %s: generation %llu (preset %llu)", p->id,
                            (unsigned long long)post->gen[i], (unsigned long long)p->preset_gen);
            }
            continue;
        }
        bool changed = false;
        for (unsigned k = 0; k < p->nrep; k++) {
            uint32_t a = snap_slot(base, i, k), b = snap_slot(post, i, k);
            if (a == b) {
                continue;
            }
            changed = true;
            if (b == CK_NONE) {
                continue; /* a leaver's slot left vacant */
            }
            moved++;
            bool allowed_leave = a == CK_NONE || leaving_node(w, base, a) ||
                                 base->nstate[a] == SHARDZ_NODE_DEAD ||
                                 base->nstate[a] == SHARDZ_NODE_DRAINING;
            if (!allowed_leave) {
                moved_nonleaver++;
                if (!first_nonleaver) {
                    first_nonleaver = p->id;
                }
            }
            if (!w->nodes[b].joined) {
                moved_nonjoiner++;
                if (!first_nonjoiner) {
                    first_nonjoiner = p->id;
                }
            }
        }
        if (post->gen[i] < base->gen[i]) {
            return fail(w, "partition %s: generation went down %llu -> %llu", p->id,
                        (unsigned long long)base->gen[i], (unsigned long long)post->gen[i]);
        }
        if (changed && post->gen[i] == base->gen[i]) {
            return fail(w, "partition %s: assignment changed, generation stayed %llu", p->id,
                        (unsigned long long)post->gen[i]);
        }
        if (!changed && w->opts.gens_flat && post->gen[i] != base->gen[i]) {
            return fail(w, "partition %s: assignment unchanged, generation %llu -> %llu", p->id,
                        (unsigned long long)base->gen[i], (unsigned long long)post->gen[i]);
        }
    }
    ls->moved = moved;
    if (post->revision < base->revision ||
        ((w->ev_any || ls->plan_moves > 0) && post->revision == base->revision)) {
        return fail(w, "revision %llu -> %llu after a change", (unsigned long long)base->revision,
                    (unsigned long long)post->revision);
    }
    if (!w->opts.movement) {
        return NULL;
    }
    if (pure_leave) {
        ls->movement_checked = true;
        w->counters.leave_moves++;
        if (moved_nonleaver > 0) {
            return fail(w,
                        "(7) after nodes left, %zu replicas moved that were not on a leaving "
                        "node (first: partition %s); %zu moved in all",
                        moved_nonleaver, first_nonleaver, moved);
        }
    }
    if (pure_join && w->base_balanced && balance_ok && w->target_valid && base_clean(w, base)) {
        uint64_t mb, mp;
        uint32_t zb = zones_active_mask(w, base, &mb);
        uint32_t zp = zones_active_mask(w, post, &mp);
        ck_bal_info bi;
        balance_info(w, post, &bi);
        bool zones_ok = (zb <= 1 && zp <= 1) || (mb == mp && bi.all_r_multiple);
        if (zones_ok && bi.equal_loads) {
            double lb = 0;
            size_t nj = 0;
            for (uint32_t e = 0; e < w->nnodes; e++) {
                if (w->nodes[e].registered && w->nodes[e].joined &&
                    w->nodes[e].state == SHARDZ_NODE_ALIVE) {
                    lb += t_floor(w->target[e]);
                    nj++;
                }
            }
            ls->join_lb = (size_t)lb;
            ls->movement_checked = true;
            w->counters.join_moves++;
            bool equal_w = true;
            double w0 = -1;
            for (uint32_t e = 0; e < w->nnodes; e++) {
                if (w->nodes[e].registered && w->nodes[e].state == SHARDZ_NODE_ALIVE) {
                    if (w0 < 0) {
                        w0 = w->nodes[e].weight;
                    } else if (w->nodes[e].weight != w0) {
                        equal_w = false;
                    }
                }
            }
            /* with weights, rounding may ask for a move between old nodes: the bound only */
            if (moved_nonjoiner > 0 && equal_w) {
                return fail(w,
                            "(7) after nodes joined, %zu replicas moved to nodes that did not "
                            "join (first: partition %s)",
                            moved_nonjoiner, first_nonjoiner);
            }
            double allow = ceil(0.01 * lb);
            if (allow < (double)nj) {
                allow = (double)nj;
            }
            if ((double)moved > lb + allow) {
                return fail(w,
                            "(7) after %zu nodes joined: %zu replicas moved, lower bound %.0f "
                            "(allowed %.0f)",
                            nj, moved, lb, lb + allow);
            }
        }
    }
    return NULL;
}

/* ---- the leave oracle: could the leavers' replicas alone reach the asserted state? --------- */

/* Dinic max-flow on a small graph (the oracle's). */
typedef struct {
    uint32_t to, next;
    int64_t cap;
} ck_edge;

typedef struct {
    ck_edge *e;
    size_t ne, cape;
    uint32_t *head, *level, *it, *queue;
    uint32_t nv;
} ck_flow;

static void flow_init(ck_flow *f, uint32_t nv)
{
    memset(f, 0, sizeof(*f));
    f->nv = nv;
    f->head = malloc((size_t)nv * sizeof(uint32_t));
    f->level = malloc((size_t)nv * sizeof(uint32_t));
    f->it = malloc((size_t)nv * sizeof(uint32_t));
    f->queue = malloc((size_t)nv * sizeof(uint32_t));
    if (!f->head || !f->level || !f->it || !f->queue) {
        abort();
    }
    for (uint32_t i = 0; i < nv; i++) {
        f->head[i] = CK_NONE;
    }
}

static void flow_free(ck_flow *f)
{
    free(f->e);
    free(f->head);
    free(f->level);
    free(f->it);
    free(f->queue);
}

static void flow_add(ck_flow *f, uint32_t u, uint32_t v, int64_t cap)
{
    if (f->ne + 2 > f->cape) {
        f->cape = f->cape ? f->cape * 2 : 256;
        f->e = realloc(f->e, f->cape * sizeof(*f->e));
        if (!f->e) {
            abort();
        }
    }
    f->e[f->ne] = (ck_edge){v, f->head[u], cap};
    f->head[u] = (uint32_t)f->ne++;
    f->e[f->ne] = (ck_edge){u, f->head[v], 0};
    f->head[v] = (uint32_t)f->ne++;
}

static bool flow_bfs(ck_flow *f, uint32_t s, uint32_t t)
{
    for (uint32_t i = 0; i < f->nv; i++) {
        f->level[i] = CK_NONE;
    }
    uint32_t qh = 0, qt = 0;
    f->level[s] = 0;
    f->queue[qt++] = s;
    while (qh < qt) {
        uint32_t u = f->queue[qh++];
        for (uint32_t k = f->head[u]; k != CK_NONE; k = f->e[k].next) {
            if (f->e[k].cap > 0 && f->level[f->e[k].to] == CK_NONE) {
                f->level[f->e[k].to] = f->level[u] + 1;
                f->queue[qt++] = f->e[k].to;
            }
        }
    }
    return f->level[t] != CK_NONE;
}

static int64_t flow_dfs(ck_flow *f, uint32_t u, uint32_t t, int64_t pushed)
{
    if (u == t) {
        return pushed;
    }
    for (; f->it[u] != CK_NONE; f->it[u] = f->e[f->it[u]].next) {
        ck_edge *e = &f->e[f->it[u]];
        if (e->cap > 0 && f->level[e->to] == f->level[u] + 1) {
            int64_t d = flow_dfs(f, e->to, t, pushed < e->cap ? pushed : e->cap);
            if (d > 0) {
                e->cap -= d;
                f->e[f->it[u] ^ 1u].cap += d;
                return d;
            }
        }
    }
    return 0;
}

static int64_t flow_max(ck_flow *f, uint32_t s, uint32_t t)
{
    int64_t total = 0;
    while (flow_bfs(f, s, t)) {
        memcpy(f->it, f->head, (size_t)f->nv * sizeof(uint32_t));
        int64_t d;
        while ((d = flow_dfs(f, s, t, INT64_MAX)) > 0) {
            total += d;
        }
    }
    return total;
}

/* Is zone z a spread-keeping choice for one more replica of a partition whose kept replicas
 * count d[] per zone (movable[]: zone holds a replica not on a suspect node), with free[]
 * alive nodes not holding it? */
static bool zone_ok(uint32_t nz, const unsigned *d, const bool *movable, const unsigned *freen,
                    uint32_t z)
{
    for (uint32_t a = 0; a < nz; a++) {
        unsigned da = d[a] + (a == z);
        bool mv = movable[a] || a == z;
        if (!mv) {
            continue;
        }
        for (uint32_t b = 0; b < nz; b++) {
            unsigned db = d[b] + (b == z);
            unsigned fb = freen[b] - (b == z);
            if (da >= db + 2 && fb > 0) {
                return false;
            }
        }
    }
    return true;
}

/* After a pure leave step: 1 when some placement of only the leaving (and vacant) replicas
 * meets distinctness, zone spread and the count balance bounds; 0 when none does; -1 when the
 * oracle does not apply (loads, per-zone groups, vacancies, a partition losing two replicas). */
static int leave_oracle(ck_world *w, const ck_snap *base, const ck_snap *post)
{
    ck_bal_info bi;
    balance_info(w, post, &bi);
    /* per-zone groups only when zone totals are forced (every R a multiple of Z) */
    if (!bi.equal_loads || (!bi.global && !bi.all_r_multiple) || post->stats.missing != 0) {
        return -1;
    }
    uint32_t nn = post->nnodes, nz = w->nzones;
    uint32_t *kept = calloc((size_t)nn + 1, sizeof(*kept));
    uint32_t *alive_ix = malloc(((size_t)nn + 1) * sizeof(*alive_ix));
    double *wt = calloc((size_t)nn + 1, sizeof(*wt)), *cap = calloc((size_t)nn + 1, sizeof(*cap));
    double *t = calloc((size_t)nn + 1, sizeof(*t));
    uint32_t *alive = calloc((size_t)nn + 1, sizeof(*alive));
    if (!kept || !alive_ix || !wt || !cap || !t || !alive) {
        abort();
    }
    uint32_t na = 0;
    for (uint32_t e = 0; e < nn; e++) {
        alive_ix[e] = CK_NONE;
        if (node_alive(post, e)) {
            alive_ix[e] = na;
            alive[na++] = e;
        }
    }
    /* kept replicas and items */
    size_t nitems = 0, npres = 0;
    int res = 1;
    uint32_t *item_part = malloc(((size_t)w->nparts * CK_R + 1) * sizeof(*item_part));
    if (!item_part) {
        abort();
    }
    double x = 0;
    for (uint32_t i = 0; i < w->nparts && res == 1; i++) {
        if (!w->parts[i].registered || w->parts[i].added || i >= base->nparts ||
            !base->ppresent[i]) {
            if (w->parts[i].registered) {
                res = -1; /* partitions came in this step: not a pure leave */
            }
            continue;
        }
        npres++;
        unsigned k = 0;
        for (unsigned s = 0; s < w->parts[i].nrep; s++) {
            uint32_t e = base->slot[(size_t)i * CK_R + s];
            bool leaving = e == CK_NONE || !w->nodes[e].registered ||
                           w->nodes[e].state == SHARDZ_NODE_DEAD ||
                           w->nodes[e].state == SHARDZ_NODE_DRAINING;
            if (leaving) {
                item_part[nitems++] = i;
                k++;
                x += 1;
            } else if (alive_ix[e] != CK_NONE) {
                kept[e]++;
                x += 1;
            }
        }
        if (k >= 2) {
            res = -1;
        }
    }
    if (res == 1) {
        if (bi.global) {
            for (uint32_t j = 0; j < na; j++) {
                wt[j] = w->nodes[alive[j]].weight;
                cap[j] = (double)npres;
            }
            water_fill(na, wt, cap, x, t);
        } else {
            /* each zone holds exactly sum(R / Z) replicas */
            double zt = 0;
            for (uint32_t i = 0; i < w->nparts; i++) {
                if (w->parts[i].registered) {
                    zt += w->parts[i].nrep / bi.zactive;
                }
            }
            uint32_t *mem = calloc((size_t)na + 1, sizeof(*mem));
            double *tz = calloc((size_t)na + 1, sizeof(*tz));
            if (!mem || !tz) {
                abort();
            }
            for (uint32_t z = 0; z < nz; z++) {
                uint32_t m = 0;
                for (uint32_t j = 0; j < na; j++) {
                    if (w->nodes[alive[j]].zone == z) {
                        mem[m] = j;
                        wt[m] = w->nodes[alive[j]].weight;
                        cap[m] = (double)npres;
                        m++;
                    }
                }
                if (m == 0) {
                    continue;
                }
                water_fill(m, wt, cap, zt, tz);
                for (uint32_t k = 0; k < m; k++) {
                    t[mem[k]] = tz[k];
                }
            }
            free(mem);
            free(tz);
        }
        /* graph: S, T, S', T', items, alive nodes */
        uint32_t S = 0, T = 1, S2 = 2, T2 = 3, I0 = 4, N0 = I0 + (uint32_t)nitems;
        ck_flow f;
        flow_init(&f, N0 + na);
        int64_t need = 0;
        int64_t *excess = calloc((size_t)N0 + na, sizeof(*excess));
        unsigned *d = calloc(nz + 1, sizeof(*d)), *freen = calloc(nz + 1, sizeof(*freen));
        bool *movable = calloc(nz + 1, sizeof(*movable));
        if (!excess || !d || !freen || !movable) {
            abort();
        }
        for (size_t it = 0; it < nitems; it++) {
            uint32_t pe = item_part[it];
            excess[I0 + it] += 1; /* S -> item with lower bound 1 */
            excess[S] -= 1;
            memset(d, 0, (nz + 1) * sizeof(*d));
            memset(movable, 0, (nz + 1) * sizeof(*movable));
            for (uint32_t z = 0; z < nz; z++) {
                freen[z] = 0;
            }
            for (unsigned s = 0; s < w->parts[pe].nrep; s++) {
                uint32_t e = base->slot[(size_t)pe * CK_R + s];
                if (e == CK_NONE || !w->nodes[e].registered ||
                    w->nodes[e].state == SHARDZ_NODE_DEAD ||
                    w->nodes[e].state == SHARDZ_NODE_DRAINING) {
                    continue;
                }
                d[w->nodes[e].zone]++;
                if (w->nodes[e].state != SHARDZ_NODE_SUSPECT) {
                    movable[w->nodes[e].zone] = true;
                }
            }
            for (uint32_t j = 0; j < na; j++) {
                if (!holds(base, pe, alive[j])) {
                    freen[w->nodes[alive[j]].zone]++;
                }
            }
            for (uint32_t j = 0; j < na; j++) {
                uint32_t e = alive[j];
                if (holds(base, pe, e)) {
                    continue;
                }
                if (w->opts.zones && nz >= 2 && !zone_ok(nz, d, movable, freen, w->nodes[e].zone)) {
                    continue;
                }
                flow_add(&f, I0 + (uint32_t)it, N0 + j, 1);
            }
        }
        for (uint32_t j = 0; j < na && res == 1; j++) {
            double lo = t_floor(t[j]) - kept[alive[j]];
            double hi = t_ceil(t[j]) - kept[alive[j]];
            if (hi < 0) {
                res = 0;
                break;
            }
            if (lo < 0) {
                lo = 0;
            }
            excess[T] += (int64_t)lo;
            excess[N0 + j] -= (int64_t)lo;
            flow_add(&f, N0 + j, T, (int64_t)(hi - lo));
        }
        if (res == 1) {
            flow_add(&f, T, S, INT64_MAX / 4);
            for (uint32_t v = 0; v < N0 + na; v++) {
                if (excess[v] > 0) {
                    flow_add(&f, S2, v, excess[v]);
                    need += excess[v];
                } else if (excess[v] < 0) {
                    flow_add(&f, v, T2, -excess[v]);
                }
            }
            res = flow_max(&f, S2, T2) == need ? 1 : 0;
        }
        flow_free(&f);
        free(excess);
        free(d);
        free(freen);
        free(movable);
    }
    free(item_part);
    free(kept);
    free(alive_ix);
    free(wt);
    free(cap);
    free(t);
    free(alive);
    return res;
}

static void reset_events(ck_world *w)
{
    for (uint32_t e = 0; e < w->nnodes; e++) {
        w->nodes[e].joined = false;
        w->nodes[e].became_alive = false;
        w->nodes[e].left = false;
    }
    for (uint32_t i = 0; i < w->nparts; i++) {
        w->parts[i].added = false;
    }
    w->ev_any = w->ev_join = w->ev_leave = w->ev_other = false;
}

static const char *check_state(ck_world *w, const ck_snap *sn, bool pure_leave, bool *bal)
{
    const char *err = check_distinct_capacity_replace(w, sn);
    if (err) {
        return err;
    }
    bool zclean;
    err = check_zones(w, sn, &zclean);
    if (err) {
        return err;
    }
    w->last_step.zones_checked = w->opts.zones && w->nzones >= 2;
    if (w->last_step.zones_checked && sn->stats.zone_violations != 0) {
        /* counted by the sharder although no partition can be spread better */
        bool plain = sn->stats.missing == 0;
        for (uint32_t e = 0; e < sn->nnodes && plain; e++) {
            plain = sn->nstate[e] == CK_NOSTATE || sn->nstate[e] == SHARDZ_NODE_ALIVE;
        }
        if (plain) {
            soft(w,
                 "stats.zone_violations = %zu, the checker finds no partition that could be "
                 "spread better",
                 sn->stats.zone_violations);
        }
    }
    return check_balance(w, sn, pure_leave, bal);
}

/* After an applied plan: snapshot, transition and state checks, then the new base. */
static const char *after_plan(ck_world *w, const shardz_plan *plan)
{
    ck_last *ls = &w->last_step;
    bool pure_leave = w->ev_leave && !w->ev_join && !w->ev_other;
    bool pure_join = w->ev_join && !w->ev_leave && !w->ev_other;
    ls->pure_leave = pure_leave;
    ls->pure_join = pure_join;
    const char *err = NULL;
    ck_snap *post = ck_snap_take(w, &err);
    ck_snap_free(w->last);
    w->last = post;
    if (err) {
        return err;
    }
    /* after a pure leave, balance and "only the leavers' replicas move" are asserted when the
     * oracle proves both can hold together; when they cannot, neither is asserted */
    int oracle = pure_leave && w->opts.movement ? leave_oracle(w, w->base, post) : -1;
    ls->leave_oracle = oracle;
    if (oracle == 0) {
        w->counters.leave_infeasible++;
    }
    bool bal = false;
    err = check_state(w, post, pure_leave && oracle != 1, &bal);
    ls->balance_checked = bal;
    if (err) {
        return err;
    }
    err = check_transition(w, w->base, post, plan, pure_leave && oracle == 1, pure_join, bal);
    if (err) {
        return err;
    }
    /* new base */
    ck_snap_free(w->base);
    w->base = ck_snap_take(w, &err);
    if (err) {
        return err;
    }
    w->base_balanced = bal && w->target_valid;
    reset_events(w);
    return NULL;
}

const char *ck_rebalance(ck_world *w, unsigned flags, shardz_plan **plan_out)
{
    memset(&w->last_step, 0, sizeof(w->last_step));
    const char *err = NULL;
    ck_snap *pre = ck_snap_take(w, &err);
    if (err) {
        ck_snap_free(pre);
        return err;
    }
    shardz_plan *plan = NULL;
    trace("trace: rebalance%s\n", flags & SHARDZ_PLAN_DRY_RUN ? " (dry run)" : "");
    int rc = shardz_sharder_rebalance(w->s, flags, &plan);
    if (rc != 0 || !plan) {
        ck_snap_free(pre);
        return fail(w, "rebalance: %d (%s)", rc, shardz_err_name(rc));
    }
    w->counters.rebalances++;
    if (flags & SHARDZ_PLAN_DRY_RUN) {
        w->counters.dry_runs++;
        ck_snap *post = ck_snap_take(w, &err);
        if (!err) {
            err = ck_snap_diff(w, pre, w, post);
            if (err) {
                err = fail(w, "a dry run changed the state: %s", w->msg);
            }
        }
        ck_snap_free(post);
        if (!err) {
            shardz_plan *again = NULL;
            rc = shardz_sharder_rebalance(w->s, flags, &again);
            if (rc != 0) {
                err = fail(w, "second dry run: %d", rc);
            } else {
                err = same_plan(w, plan, again);
            }
            shardz_plan_free(again);
        }
        if (!err) {
            uint32_t *rep = calloc((size_t)w->nparts * CK_R + 1, sizeof(*rep));
            if (!rep) {
                abort();
            }
            err = replay(w, w->base, plan, rep);
            free(rep);
        }
    } else {
        err = after_plan(w, plan);
    }
    ck_snap_free(pre);
    if (plan_out) {
        *plan_out = plan;
    } else {
        shardz_plan_free(plan);
    }
    return err;
}

const char *ck_apply(ck_world *w, const shardz_plan *plan)
{
    memset(&w->last_step, 0, sizeof(w->last_step));
    trace("trace: apply\n");
    int rc = shardz_sharder_apply(w->s, plan);
    if (rc != 0) {
        return fail(w, "apply: %d (%s)", rc, shardz_err_name(rc));
    }
    return after_plan(w, plan);
}

const char *ck_apply_stale(ck_world *w, const shardz_plan *plan)
{
    const char *err = NULL;
    ck_snap *pre = ck_snap_take(w, &err);
    if (err) {
        ck_snap_free(pre);
        return err;
    }
    int rc = shardz_sharder_apply(w->s, plan);
    if (rc != SHARDZ_ESTALE) {
        ck_snap_free(pre);
        return fail(w, "apply of a stale plan: %d (%s), want ESTALE", rc, shardz_err_name(rc));
    }
    ck_snap *post = ck_snap_take(w, &err);
    if (!err) {
        err = ck_snap_diff(w, pre, w, post);
        if (err) {
            err = fail(w, "a rejected stale apply changed the state: %s", w->msg);
        }
    }
    ck_snap_free(pre);
    ck_snap_free(post);
    return err;
}

const char *ck_check_now(ck_world *w, bool full)
{
    const char *err = NULL;
    ck_snap *sn = ck_snap_take(w, &err);
    ck_snap_free(w->last);
    w->last = sn;
    if (err) {
        return err;
    }
    if (!full) {
        return NULL;
    }
    bool bal;
    return check_state(w, sn, false, &bal);
}

/* ---- observations ------------------------------------------------------------------------- */

long ck_node_count(const ck_world *w, const char *node)
{
    uint32_t e = map_get(&w->nmap, node);
    if (e == CK_NONE || !w->last || e >= w->last->nnodes || !w->nodes[e].registered) {
        return -1;
    }
    return (long)w->last->ncount[e];
}

double ck_node_load(const ck_world *w, const char *node, size_t dim)
{
    uint32_t e = map_get(&w->nmap, node);
    if (e == CK_NONE || !w->last || e >= w->last->nnodes || dim >= CK_D) {
        return -1;
    }
    return w->last->nload[(size_t)e * CK_D + dim];
}

const char *ck_slot_node(const ck_world *w, const char *part, unsigned slot)
{
    uint32_t pe = map_get(&w->pmap, part);
    if (pe == CK_NONE || !w->last || slot >= CK_R) {
        return NULL;
    }
    uint32_t e = snap_slot(w->last, pe, slot);
    return e == CK_NONE ? NULL : w->nodes[e].id;
}

const char *ck_node_zone(const ck_world *w, const char *node)
{
    uint32_t e = map_get(&w->nmap, node);
    if (e == CK_NONE) {
        return NULL;
    }
    return w->zones[w->nodes[e].zone];
}
