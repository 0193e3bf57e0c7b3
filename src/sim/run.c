/* The simulator's runner: drives one sharder kind of the real placement library through a
 * scenario (initial placement, then the events in order), timing the library's calls only, and
 * after each step checks the plan (reasons, endpoints) and the whole assignment against the
 * simulator's own view of the cluster (distinct nodes, zone spread, capacity, balance). It runs
 * inside a forked child and streams one sim_step per step to the parent. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardz/placement.h"
#include "sim/sim.h"
#include "sim/simkit.h"

#define SIM_ID_LEN 16  /* bytes per stored id ("p0000123", "n00042") */
#define SIM_BATCH 8192 /* partitions per register call */
#define SIM_STREAM_EVENTS 2u

typedef enum {
    SIM_NODE_ALIVE = 0,
    SIM_NODE_DEAD,
    SIM_NODE_DRAINING,
    SIM_NODE_GONE,
} sim_node_state;

/* The simulator's own record of a node (the truth the library's answers are checked against). */
typedef struct {
    char id[SIM_ID_LEN];
    char zone[SIM_ID_LEN];
    unsigned zidx;
    double weight;
    double capacity; /* hard limit in dimension 0; 0 = unlimited */
    sim_node_state state;
    bool fresh;   /* joined in the current step */
    bool evicted; /* left, died or started draining in the current step */
} sim_node;

/* One run: the scenario, the sharder, the simulator's view, and scratch space. */
typedef struct {
    const sim_scenario *sc;
    const char *kind;
    shardz_sharder *s;
    sim_node *nodes;
    size_t nnodes, capnodes;
    char *pids;      /* partitions x SIM_ID_LEN */
    double *load;    /* dimension-0 load per partition */
    double unit_cap; /* capacity per unit of weight; 0 = unlimited */
    simkit_rng ev_rng;
    unsigned shifts; /* load shifts so far (each draws a new stream) */
    size_t *cnt;     /* per node: replicas (measurement scratch) */
    double *nload;   /* per node: load (measurement scratch) */
    size_t *pick;    /* node indices (event scratch) */
    shardz_partition_spec *batch;
    long long heap_base;
} sim_ctx;

static void sim_note(sim_step *st, const char *fmt, ...)
{
    size_t len = strlen(st->note);
    va_list ap;

    if (len + 3 >= sizeof st->note) {
        return;
    }
    if (len > 0) {
        memcpy(st->note + len, "; ", 3);
        len += 2;
    }
    va_start(ap, fmt);
    vsnprintf(st->note + len, sizeof st->note - len, fmt, ap);
    va_end(ap);
}

static double sim_ms_since(uint64_t t0)
{
    return (double)(simkit_wall_ns() - t0) / 1e6;
}

static const char *sim_pid(const sim_ctx *c, size_t i)
{
    return c->pids + i * SIM_ID_LEN;
}

/* Index of the node the library names, or SIZE_MAX when it is not one of ours. */
static size_t sim_node_index(const sim_ctx *c, const char *id)
{
    char *end;
    unsigned long long v;

    if (id == NULL || id[0] != 'n') {
        return SIZE_MAX;
    }
    v = strtoull(id + 1, &end, 10);
    if (*end != '\0' || v >= c->nnodes || strcmp(c->nodes[v].id, id) != 0) {
        return SIZE_MAX;
    }
    return (size_t)v;
}

static size_t sim_part_index(const sim_ctx *c, const char *id)
{
    char *end;
    unsigned long long v;

    if (id == NULL || id[0] != 'p') {
        return SIZE_MAX;
    }
    v = strtoull(id + 1, &end, 10);
    if (*end != '\0' || v >= c->sc->partitions || strcmp(sim_pid(c, v), id) != 0) {
        return SIZE_MAX;
    }
    return (size_t)v;
}

static void sim_node_spec_of(const sim_node *n, shardz_node_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->id = n->id;
    spec->zone = n->zone;
    spec->state = SHARDZ_NODE_ALIVE;
    if (n->capacity > 0.0) {
        spec->ncapacity = 1;
        spec->capacity[0] = n->capacity;
    }
}

/* Adds k nodes to the simulator's view (not to the sharder), marked fresh. */
static void sim_add_nodes(sim_ctx *c, size_t k)
{
    const sim_scenario *sc = c->sc;
    for (size_t i = 0; i < k && c->nnodes < c->capnodes; i++) {
        size_t idx = c->nnodes++;
        sim_node *n = &c->nodes[idx];
        memset(n, 0, sizeof *n);
        snprintf(n->id, sizeof n->id, "n%05u", (unsigned)idx);
        n->zidx = (unsigned)(idx % sc->zones);
        snprintf(n->zone, sizeof n->zone, "z%u", n->zidx);
        n->weight = sim_node_weight(sc, idx);
        n->capacity = c->unit_cap > 0.0 ? n->weight * c->unit_cap : 0.0;
        n->state = SIM_NODE_ALIVE;
        n->fresh = true;
    }
}

/* Picks up to k distinct alive nodes at random into c->pick; returns how many. */
static size_t sim_pick_alive(sim_ctx *c, size_t k)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nnodes; i++) {
        if (c->nodes[i].state == SIM_NODE_ALIVE) {
            c->pick[n++] = i;
        }
    }
    if (k > n) {
        k = n;
    }
    for (size_t i = 0; i < k; i++) {
        size_t j = i + (size_t)simkit_below(&c->ev_rng, n - i);
        size_t t = c->pick[i];
        c->pick[i] = c->pick[j];
        c->pick[j] = t;
    }
    return k;
}

/* Replicas (into st->bound) and their load (into st->load_bound) held by the nodes in
 * c->pick[0..k-1]: the lower bound when they go away. */
static void sim_held(const sim_ctx *c, size_t k, sim_step *st)
{
    shardz_replica *reps = NULL;
    size_t cap = 0;

    st->bound = 0;
    st->load_bound = 0.0;
    for (size_t i = 0; i < k; i++) {
        const char *id = c->nodes[c->pick[i]].id;
        size_t n = 0;
        if (shardz_sharder_partitions_of_node(c->s, id, NULL, 0, &n) != 0) {
            continue;
        }
        if (n > cap) {
            shardz_replica *grown = realloc(reps, n * sizeof *reps);
            if (grown == NULL) {
                st->load_bound = -1.0;
                continue;
            }
            reps = grown;
            cap = n;
        }
        if (shardz_sharder_partitions_of_node(c->s, id, reps, cap, &n) != 0) {
            continue;
        }
        st->bound += (long long)n;
        for (size_t r = 0; r < n && r < cap && st->load_bound >= 0.0; r++) {
            size_t p = sim_part_index(c, reps[r].partition);
            st->load_bound += p != SIZE_MAX ? c->load[p] : 0.0;
        }
    }
    free(reps);
}

/* ---- steps: each fills bound and does its timed calls; returns 0 or a library error ---- */

static int sim_fail(sim_step *st, const char *call, int rc)
{
    st->rc = rc;
    snprintf(st->failed_call, sizeof st->failed_call, "%s", call);
    return rc;
}

/* Registers every partition in batches; *ms gets the time of the library calls only. */
static int sim_register_partitions(sim_ctx *c, sim_step *st, double *ms)
{
    const sim_scenario *sc = c->sc;
    for (size_t first = 0; first < sc->partitions; first += SIM_BATCH) {
        size_t n = sc->partitions - first < SIM_BATCH ? sc->partitions - first : SIM_BATCH;
        for (size_t i = 0; i < n; i++) {
            shardz_partition_spec *p = &c->batch[i];
            memset(p, 0, sizeof *p);
            p->id = sim_pid(c, first + i);
            p->replicas = sc->replicas;
            p->nload = 1;
            p->load[0] = c->load[first + i];
        }
        uint64_t t0 = simkit_wall_ns();
        int rc = shardz_sharder_register_partitions(c->s, c->batch, n);
        *ms += sim_ms_since(t0);
        if (rc != 0) {
            return sim_fail(st, "register_partitions", rc);
        }
    }
    return 0;
}

static int sim_do_initial(sim_ctx *c, sim_step *st, double *ms)
{
    const sim_scenario *sc = c->sc;
    shardz_sharder_config cfg;
    shardz_node_spec *specs = NULL;
    uint64_t t0;
    int rc;

    memset(&cfg, 0, sizeof cfg);
    cfg.kind = c->kind;
    cfg.replicas = sc->replicas;
    cfg.ndims = 1;
    cfg.band = sc->band;
    cfg.seed = sc->seed;
    if (strcmp(c->kind, "hash") == 0) {
        cfg.slots = sim_hash_slots(sc);
    }
    sim_add_nodes(c, sc->nodes);
    specs = calloc(sc->nodes, sizeof *specs);
    if (specs == NULL) {
        return sim_fail(st, "calloc", SHARDZ_ENOMEM);
    }
    for (size_t i = 0; i < sc->nodes; i++) {
        sim_node_spec_of(&c->nodes[i], &specs[i]);
    }
    st->bound = (long long)sc->partitions * sc->replicas;
    for (size_t i = 0; i < sc->partitions; i++) {
        st->load_bound += c->load[i] * sc->replicas;
    }

    c->heap_base = simkit_heap_bytes();
    t0 = simkit_wall_ns();
    rc = shardz_sharder_new(&cfg, &c->s);
    if (rc != 0) {
        sim_fail(st, "sharder_new", rc);
        goto out;
    }
    rc = shardz_sharder_register_nodes(c->s, specs, sc->nodes);
    if (rc != 0) {
        sim_fail(st, "register_nodes", rc);
        goto out;
    }
    *ms = sim_ms_since(t0);
    rc = sim_register_partitions(c, st, ms);
out:
    free(specs);
    return rc;
}

static int sim_do_join(sim_ctx *c, sim_step *st, unsigned k, double *ms)
{
    size_t first = c->nnodes;
    shardz_node_spec *specs;
    uint64_t t0;
    int rc;

    sim_add_nodes(c, k);
    specs = calloc(k, sizeof *specs);
    if (specs == NULL) {
        return sim_fail(st, "calloc", SHARDZ_ENOMEM);
    }
    for (size_t i = first; i < c->nnodes; i++) {
        sim_node_spec_of(&c->nodes[i], &specs[i - first]);
    }
    t0 = simkit_wall_ns();
    rc = shardz_sharder_register_nodes(c->s, specs, c->nnodes - first);
    *ms = sim_ms_since(t0);
    free(specs);
    if (rc != 0) {
        return sim_fail(st, "register_nodes", rc);
    }
    return 0; /* the bound needs the settled totals: sim_measure computes it */
}

static int sim_do_leave(sim_ctx *c, sim_step *st, unsigned k, double *ms)
{
    size_t n = sim_pick_alive(c, k);
    const char **ids = calloc(n > 0 ? n : 1, sizeof *ids);
    uint64_t t0;
    int rc;

    if (ids == NULL) {
        return sim_fail(st, "calloc", SHARDZ_ENOMEM);
    }
    sim_held(c, n, st);
    for (size_t i = 0; i < n; i++) {
        ids[i] = c->nodes[c->pick[i]].id;
    }
    t0 = simkit_wall_ns();
    rc = shardz_sharder_unregister_nodes(c->s, ids, n, SHARDZ_REASON_LEAVE);
    *ms = sim_ms_since(t0);
    free(ids);
    if (rc != 0) {
        return sim_fail(st, "unregister_nodes", rc);
    }
    for (size_t i = 0; i < n; i++) {
        c->nodes[c->pick[i]].state = SIM_NODE_GONE;
        c->nodes[c->pick[i]].evicted = true;
    }
    return 0;
}

/* Sets the nodes in c->pick[0..n-1] to a state (dead or draining). */
static int sim_set_states(sim_ctx *c, sim_step *st, size_t n, sim_node_state to, double *ms)
{
    shardz_node_state lib = to == SIM_NODE_DEAD ? SHARDZ_NODE_DEAD : SHARDZ_NODE_DRAINING;
    uint64_t t0;

    sim_held(c, n, st);
    t0 = simkit_wall_ns();
    for (size_t i = 0; i < n; i++) {
        int rc = shardz_sharder_set_node_state(c->s, c->nodes[c->pick[i]].id, lib);
        if (rc != 0) {
            return sim_fail(st, "set_node_state", rc);
        }
        c->nodes[c->pick[i]].state = to;
        c->nodes[c->pick[i]].evicted = true;
    }
    *ms = sim_ms_since(t0);
    return 0;
}

static int sim_do_zoneloss(sim_ctx *c, sim_step *st, unsigned k, double *ms)
{
    size_t n = 0;

    for (unsigned round = 0; round < k; round++) {
        /* A random zone that still has alive nodes (picked through a random alive node). */
        size_t got = sim_pick_alive(c, 1);
        if (got == 0) {
            break;
        }
        unsigned zone = c->nodes[c->pick[0]].zidx;
        for (size_t i = 0; i < c->nnodes; i++) {
            if (c->nodes[i].state == SIM_NODE_ALIVE && c->nodes[i].zidx == zone) {
                c->nodes[i].state = SIM_NODE_DEAD; /* so the next round picks another zone */
                c->nodes[i].evicted = true;
            }
        }
    }
    for (size_t i = 0; i < c->nnodes; i++) {
        if (c->nodes[i].evicted) {
            c->nodes[i].state = SIM_NODE_ALIVE; /* sim_set_states sets it for good */
            c->pick[n++] = i;
        }
    }
    return sim_set_states(c, st, n, SIM_NODE_DEAD, ms);
}

static int sim_do_drain(sim_ctx *c, sim_step *st, unsigned k, double *ms)
{
    size_t n = sim_pick_alive(c, k);
    return sim_set_states(c, st, n, SIM_NODE_DRAINING, ms);
}

static int sim_do_loadshift(sim_ctx *c, sim_step *st, double *ms)
{
    uint64_t t0;

    sim_draw_loads(c->sc, ++c->shifts, c->load);
    st->bound = -1;
    st->load_bound = -1.0;
    t0 = simkit_wall_ns();
    for (size_t i = 0; i < c->sc->partitions; i++) {
        int rc = shardz_sharder_set_partition_load(c->s, sim_pid(c, i), &c->load[i], 1);
        if (rc != 0) {
            return sim_fail(st, "set_partition_load", rc);
        }
    }
    *ms = sim_ms_since(t0);
    return 0;
}

/* ---- checks ---------------------------------------------------------------------------- */

/* Reasons a step's moves may carry. */
static unsigned sim_expected_reasons(sim_event_kind k)
{
    unsigned reb = 1u << SHARDZ_REASON_REBALANCE;
    switch (k) {
    case SIM_EV_INITIAL:
        return 1u << SHARDZ_REASON_NEW;
    case SIM_EV_JOIN:
        return (1u << SHARDZ_REASON_JOIN) | reb;
    case SIM_EV_LEAVE:
        return (1u << SHARDZ_REASON_LEAVE) | reb;
    case SIM_EV_ZONELOSS:
        return (1u << SHARDZ_REASON_NODE_DEAD) | reb;
    case SIM_EV_DRAIN:
        return (1u << SHARDZ_REASON_DRAIN) | reb;
    case SIM_EV_LOADSHIFT:
        return (1u << SHARDZ_REASON_LOAD) | reb;
    case SIM_EV_REBALANCE:
        return reb | (1u << SHARDZ_REASON_LOAD);
    }
    return 0;
}

/* Counts the plan's moves by reason and checks each move's endpoints against the event. */
static void sim_check_plan(const sim_ctx *c, sim_event_kind ev, const shardz_plan *p, sim_step *st)
{
    size_t n = shardz_plan_count(p);
    size_t sum = 0, bad_to = 0, bad_from = 0, bad_part = 0, bad_reason = 0, unexpected = 0;
    unsigned expect = sim_expected_reasons(ev);

    st->moves = n;
    st->plan_missing = shardz_plan_missing(p);
    for (int r = 0; r < SHARDZ_REASON__COUNT; r++) {
        st->by_reason[r] = shardz_plan_count_reason(p, (shardz_reason)r);
        sum += st->by_reason[r];
        if (st->by_reason[r] > 0 && !(expect & (1u << r))) {
            unexpected += st->by_reason[r];
        }
    }
    if (sum != n) {
        st->errors++;
        sim_note(st, "count_reason sums to %zu, plan has %zu moves", sum, n);
    }
    if (unexpected > 0) {
        sim_note(st, "%zu moves with an unexpected reason", unexpected);
    }
    for (size_t i = 0; i < n; i++) {
        shardz_move m;
        shardz_plan_move(p, i, &m);
        size_t pidx = sim_part_index(c, m.partition);
        size_t to = m.to != NULL ? sim_node_index(c, m.to) : SIZE_MAX;
        size_t from = m.from != NULL ? sim_node_index(c, m.from) : SIZE_MAX;
        if (pidx == SIZE_MAX || m.slot >= c->sc->replicas) {
            bad_part++;
            continue;
        }
        st->load_moved += c->load[pidx];
        if (m.to != NULL && (to == SIZE_MAX || c->nodes[to].state != SIM_NODE_ALIVE)) {
            bad_to++;
        }
        if ((m.from != NULL && from == SIZE_MAX) || (m.from == NULL && m.to == NULL) ||
            (from != SIZE_MAX && from == to)) {
            bad_from++;
        }
        if ((m.reason == SHARDZ_REASON_JOIN && (to == SIZE_MAX || !c->nodes[to].fresh)) ||
            /* A move off a node carries the reason the node is evicted for; a vacant slot
             * is filled with the reason that vacated it (from is NULL then). */
            ((m.reason == SHARDZ_REASON_LEAVE || m.reason == SHARDZ_REASON_NODE_DEAD ||
              m.reason == SHARDZ_REASON_DRAIN) &&
             m.from != NULL && (from == SIZE_MAX || c->nodes[from].state == SIM_NODE_ALIVE)) ||
            (m.reason == SHARDZ_REASON_NEW && m.from != NULL)) {
            bad_reason++;
        }
    }
    if (bad_part > 0) {
        st->errors += bad_part;
        sim_note(st, "%zu moves name an unknown partition or slot", bad_part);
    }
    if (bad_to > 0) {
        st->errors += bad_to;
        sim_note(st, "%zu moves go to a node that is not alive", bad_to);
    }
    if (bad_from > 0) {
        st->errors += bad_from;
        sim_note(st, "%zu moves with a bad source", bad_from);
    }
    if (bad_reason > 0) {
        st->errors += bad_reason;
        sim_note(st, "%zu moves whose reason does not match their endpoints", bad_reason);
    }
}

/* The best count balance the zone rule allows. A partition may put at most
 * cz = R - min(R, live zones) + 1 replicas in one zone (the loosest rule that still spreads it
 * over as many zones as it can), so a zone holds at most P * cz replicas; when zones differ in
 * size, the nodes of the smaller zones must carry more than their share. Finds, by bisection,
 * the least x such that sum over zones of min(P * cz, x * share of the zone) >= total: no
 * assignment has max/share below x. With equal weights also the spread of that (continuous)
 * allocation, which none can beat either; the integer optimum can be 1 replica worse. */
static void sim_zone_best(const sim_ctx *c, size_t total, sim_step *st)
{
    const sim_scenario *sc = c->sc;
    double *zw = calloc(sc->zones, sizeof *zw); /* weight of the zone's alive nodes */
    unsigned live = 0;
    double wsum = 0.0, lo = 1.0, hi = 1.0;

    st->cnt_best_ratio = -1.0;
    st->cnt_best_spread = -1.0;
    if (zw == NULL || total == 0) {
        goto out;
    }
    for (size_t i = 0; i < c->nnodes; i++) {
        if (c->nodes[i].state == SIM_NODE_ALIVE) {
            live += zw[c->nodes[i].zidx] == 0.0;
            zw[c->nodes[i].zidx] += c->nodes[i].weight;
            wsum += c->nodes[i].weight;
        }
    }
    unsigned spread = sc->replicas < live ? sc->replicas : live;
    double cap = (double)sc->partitions * (double)(sc->replicas - spread + 1);
    double t = (double)total;
    double room = 0.0;
    for (unsigned z = 0; z < sc->zones; z++) {
        room += zw[z] > 0.0 ? cap : 0.0;
    }
    if (room < t) {
        goto out; /* the zones cannot hold every replica: nothing to compare with */
    }
    for (;;) {
        double held = 0.0;
        for (unsigned z = 0; z < sc->zones; z++) {
            double want = hi * t * zw[z] / wsum;
            held += want < cap ? want : cap;
        }
        if (held >= t * (1.0 - 1e-12) || hi > 1e9) {
            break;
        }
        hi *= 2.0;
    }
    for (int it = 0; it < 100; it++) {
        double mid = (lo + hi) / 2.0, held = 0.0;
        for (unsigned z = 0; z < sc->zones; z++) {
            double want = mid * t * zw[z] / wsum;
            held += want < cap ? want : cap;
        }
        if (held >= t * (1.0 - 1e-12)) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    /* Each node: x * its share, or its zone's cap shared by weight when the zone is full. */
    double dmin = 0.0, dmax = 0.0;
    for (unsigned z = 0; z < sc->zones; z++) {
        if (zw[z] <= 0.0) {
            continue;
        }
        double want = hi * t * zw[z] / wsum;
        /* per unit of weight: allocation minus fair share */
        double dev = ((want < cap ? want : cap) - t * zw[z] / wsum) / zw[z];
        for (size_t i = 0; i < c->nnodes; i++) {
            if (c->nodes[i].state == SIM_NODE_ALIVE && c->nodes[i].zidx == z) {
                double d = dev * c->nodes[i].weight;
                dmin = d < dmin ? d : dmin;
                dmax = d > dmax ? d : dmax;
            }
        }
    }
    st->cnt_best_ratio = hi;
    /* The spread bound holds for equal weights only (then max >= x * share and some node of
     * the largest full zone holds at most its average); with weights only the ratio does. */
    st->cnt_best_spread = sc->cap == SIM_CAP_EQUAL ? dmax - dmin : -1.0;
out:
    free(zw);
}

/* Reads back the whole assignment and measures it against the simulator's view. */
static void sim_measure(sim_ctx *c, sim_event_kind ev, sim_step *st)
{
    const sim_scenario *sc = c->sc;
    shardz_replica reps[SHARDZ_MAX_REPLICAS];
    bool *zone_live = calloc(sc->zones, sizeof *zone_live);
    unsigned live_zones = 0;
    size_t bad_node = 0, dup = 0, qerr = 0, over_cap = 0;
    double wsum = 0.0, total_load = 0.0;
    size_t total = 0;
    shardz_sharder_stats ls;

    if (zone_live == NULL) {
        st->errors++;
        sim_note(st, "out of memory while measuring");
        return;
    }
    for (size_t i = 0; i < c->nnodes; i++) {
        c->cnt[i] = 0;
        c->nload[i] = 0.0;
        if (c->nodes[i].state == SIM_NODE_ALIVE) {
            st->eligible_nodes++;
            wsum += c->nodes[i].weight;
            if (!zone_live[c->nodes[i].zidx]) {
                zone_live[c->nodes[i].zidx] = true;
                live_zones++;
            }
        }
    }
    for (size_t p = 0; p < sc->partitions; p++) {
        size_t n = 0;
        unsigned zones[SHARDZ_MAX_REPLICAS];
        unsigned nz = 0;
        if (c->load[p] > st->max_part_load) {
            st->max_part_load = c->load[p];
        }
        if (shardz_sharder_nodes_of_partition(c->s, sim_pid(c, p), reps, SHARDZ_MAX_REPLICAS, &n) !=
                0 ||
            n > sc->replicas) {
            qerr++;
            continue;
        }
        st->missing += sc->replicas - n;
        for (size_t r = 0; r < n; r++) {
            size_t idx = sim_node_index(c, reps[r].node);
            if (idx == SIZE_MAX || c->nodes[idx].state != SIM_NODE_ALIVE) {
                bad_node++;
                continue;
            }
            for (size_t q = 0; q < r; q++) {
                if (reps[q].node == reps[r].node || strcmp(reps[q].node, reps[r].node) == 0) {
                    dup++;
                }
            }
            c->cnt[idx]++;
            c->nload[idx] += c->load[p];
            unsigned z = c->nodes[idx].zidx;
            unsigned q;
            for (q = 0; q < nz && zones[q] != z; q++) {
            }
            if (q == nz) {
                zones[nz++] = z;
            }
        }
        if (nz < (n < live_zones ? n : live_zones)) {
            st->zone_violations++;
        }
    }
    for (size_t i = 0; i < c->nnodes; i++) {
        total += c->cnt[i];
        total_load += c->nload[i];
        if (c->nodes[i].capacity > 0.0 && c->nload[i] > c->nodes[i].capacity * (1.0 + 1e-9)) {
            over_cap++;
        }
    }
    st->replicas = total;
    st->mean_load = st->eligible_nodes > 0 ? total_load / (double)st->eligible_nodes : 0.0;

    /* Balance against each node's fair share. */
    double cmax = 0.0, lmax = 0.0;
    double cdmin = 0.0, cdmax = 0.0, ldmin = 0.0, ldmax = 0.0;
    bool first = true;
    for (size_t i = 0; i < c->nnodes; i++) {
        if (c->nodes[i].state != SIM_NODE_ALIVE || wsum <= 0.0) {
            continue;
        }
        double f = c->nodes[i].weight / wsum;
        double cs = (double)total * f, lsh = total_load * f;
        double cd = (double)c->cnt[i] - cs, ld = c->nload[i] - lsh;
        double cr = cs > 0.0 ? (double)c->cnt[i] / cs : 0.0;
        double lr = lsh > 0.0 ? c->nload[i] / lsh : 0.0;
        if (first || cr > cmax) {
            cmax = cr;
        }
        if (first || lr > lmax) {
            lmax = lr;
        }
        if (first || cd < cdmin) {
            cdmin = cd;
        }
        if (first || cd > cdmax) {
            cdmax = cd;
        }
        if (first || ld < ldmin) {
            ldmin = ld;
        }
        if (first || ld > ldmax) {
            ldmax = ld;
        }
        first = false;
    }
    st->cnt_ratio = cmax;
    st->cnt_spread = cdmax - cdmin;
    st->load_ratio = lmax;
    st->load_spread = ldmax - ldmin;
    sim_zone_best(c, total, st);

    if (ev == SIM_EV_JOIN && wsum > 0.0) {
        /* What the new nodes must receive for balance: floor(total * w_new / W) replicas each
         * (exact for equal loads), and total_load * w_new / W load. */
        long long bound = 0;
        double lbound = 0.0;
        for (size_t i = 0; i < c->nnodes; i++) {
            if (c->nodes[i].fresh && c->nodes[i].state == SIM_NODE_ALIVE) {
                bound += (long long)((double)total * c->nodes[i].weight / wsum);
                lbound += total_load * c->nodes[i].weight / wsum;
            }
        }
        st->bound = bound;
        st->load_bound = lbound;
    }

    if (qerr > 0) {
        st->errors += qerr;
        sim_note(st, "%zu partitions failed nodes_of_partition", qerr);
    }
    if (bad_node > 0) {
        st->errors += bad_node;
        sim_note(st, "%zu replicas on unknown or non-alive nodes", bad_node);
    }
    if (dup > 0) {
        st->errors += dup;
        sim_note(st, "%zu replicas share a node with another of their partition", dup);
    }
    st->over_capacity = over_cap;
    if (over_cap > 0) {
        /* Measured, not a failed check: a load shift or lost nodes can leave too little room. */
        sim_note(st, "%zu nodes over capacity", over_cap);
    }

    shardz_sharder_get_stats(c->s, &ls);
    st->lib_missing = ls.missing;
    st->lib_zone_violations = ls.zone_violations;
    if (ls.missing != st->missing || ls.zone_violations != st->zone_violations ||
        ls.eligible_nodes != st->eligible_nodes) {
        sim_note(st, "library stats differ: missing %zu, zone violations %zu, eligible %zu",
                 ls.missing, ls.zone_violations, ls.eligible_nodes);
    }
    if (st->plan_missing != st->missing) {
        sim_note(st, "plan reports %zu missing, measured %zu", st->plan_missing, st->missing);
    }
    free(zone_live);
}

/* Runs one step: the event's calls, the rebalance, then every check. */
static int sim_step_run(sim_ctx *c, const sim_event *ev, sim_step *st)
{
    shardz_plan *plan = NULL;
    shardz_plan *again = NULL;
    double ms = 0.0;
    uint64_t t0;
    int rc = 0;

    for (size_t i = 0; i < c->nnodes; i++) {
        c->nodes[i].fresh = false;
        c->nodes[i].evicted = false;
    }
    if (ev->count == 0) {
        snprintf(st->label, sizeof st->label, "%s", sim_event_name(ev->kind));
    } else {
        snprintf(st->label, sizeof st->label, "%s:%u", sim_event_name(ev->kind), ev->count);
    }
    switch (ev->kind) {
    case SIM_EV_INITIAL:
        rc = sim_do_initial(c, st, &ms);
        break;
    case SIM_EV_JOIN:
        rc = sim_do_join(c, st, ev->count, &ms);
        break;
    case SIM_EV_LEAVE:
        rc = sim_do_leave(c, st, ev->count, &ms);
        break;
    case SIM_EV_ZONELOSS:
        rc = sim_do_zoneloss(c, st, ev->count, &ms);
        break;
    case SIM_EV_DRAIN:
        rc = sim_do_drain(c, st, ev->count, &ms);
        break;
    case SIM_EV_LOADSHIFT:
        rc = sim_do_loadshift(c, st, &ms);
        break;
    case SIM_EV_REBALANCE:
        st->bound = 0;
        st->load_bound = 0.0;
        break;
    }
    if (rc != 0) {
        return rc;
    }

    t0 = simkit_wall_ns();
    rc = shardz_sharder_rebalance(c->s, 0, &plan);
    st->plan_ms = sim_ms_since(t0);
    st->ms = ms + st->plan_ms;
    if (rc != 0) {
        return sim_fail(st, "rebalance", rc);
    }
    long long with_plan = simkit_heap_bytes();
    sim_check_plan(c, ev->kind, plan, st);
    shardz_plan_free(plan);
    st->heap_bytes = simkit_heap_bytes();
    st->plan_bytes = with_plan >= 0 ? with_plan - st->heap_bytes : -1;
    st->heap_bytes = st->heap_bytes >= 0 && c->heap_base >= 0 ? st->heap_bytes - c->heap_base : -1;

    /* A settled sharder should not want to move anything more. */
    rc = shardz_sharder_rebalance(c->s, SHARDZ_PLAN_DRY_RUN, &again);
    if (rc != 0) {
        return sim_fail(st, "rebalance (dry run)", rc);
    }
    st->repeat_moves = shardz_plan_count(again);
    shardz_plan_free(again);
    if (st->repeat_moves > 0) {
        sim_note(st, "a second rebalance still plans %zu moves", st->repeat_moves);
    }

    sim_measure(c, ev->kind, st);
    st->maxrss_kb = simkit_maxrss_kb();
    return 0;
}

int sim_run_kind(const sim_scenario *sc, const char *kind, int fd)
{
    sim_ctx c;
    sim_step *st = NULL;
    size_t maxnodes = sc->nodes;
    int rc = -1;

    memset(&c, 0, sizeof c);
    c.sc = sc;
    c.kind = kind;
    for (size_t i = 0; i < sc->nevents; i++) {
        if (sc->events[i].kind == SIM_EV_JOIN) {
            maxnodes += sc->events[i].count;
        }
    }
    c.capnodes = maxnodes;
    c.nodes = calloc(maxnodes, sizeof *c.nodes);
    c.cnt = calloc(maxnodes, sizeof *c.cnt);
    c.nload = calloc(maxnodes, sizeof *c.nload);
    c.pick = calloc(maxnodes, sizeof *c.pick);
    c.pids = malloc(sc->partitions * SIM_ID_LEN);
    c.load = malloc(sc->partitions * sizeof *c.load);
    c.batch = calloc(SIM_BATCH, sizeof *c.batch);
    st = calloc(1, sizeof *st);
    if (c.nodes == NULL || c.cnt == NULL || c.nload == NULL || c.pick == NULL || c.pids == NULL ||
        c.load == NULL || c.batch == NULL || st == NULL) {
        fprintf(stderr, "shardz-sim: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < sc->partitions; i++) {
        snprintf(c.pids + i * SIM_ID_LEN, SIM_ID_LEN, "p%07u", (unsigned)i);
    }
    sim_draw_loads(sc, 0, c.load);
    simkit_rng_seed(&c.ev_rng, sc->seed, SIM_STREAM_EVENTS);
    if (sc->headroom > 0.0) {
        double total = 0.0, w = 0.0;
        for (size_t i = 0; i < sc->partitions; i++) {
            total += c.load[i] * sc->replicas;
        }
        for (size_t i = 0; i < sc->nodes; i++) {
            w += sim_node_weight(sc, i);
        }
        c.unit_cap = w > 0.0 ? sc->headroom * total / w : 0.0;
    } else if (sc->cap == SIM_CAP_MIXED) {
        c.unit_cap = 1e15; /* weights without a binding limit */
    }

    for (size_t i = 0; i <= sc->nevents; i++) {
        sim_event initial = {SIM_EV_INITIAL, 0};
        memset(st, 0, sizeof *st);
        int src = sim_step_run(&c, i == 0 ? &initial : &sc->events[i - 1], st);
        if (simkit_emit(fd, st, sizeof *st) != 0 || src != 0) {
            goto out;
        }
    }
    rc = 0;
out:
    shardz_sharder_free(c.s);
    free(st);
    free(c.batch);
    free(c.load);
    free(c.pids);
    free(c.pick);
    free(c.nload);
    free(c.cnt);
    free(c.nodes);
    return rc;
}
