/* bench_placement: the placement targets of DESIGN.md section 9, measured on the real library,
 * each sharder kind side by side in one run (ours beside the seed baseline): full assignment of
 * P partitions x R replicas on N nodes (time, malloc-level bytes and RSS per replica, balance),
 * then one node joining and one leaving (re-plan time, moves against the lower bound, balance),
 * for equal and for lognormal loads. Every measurement runs in its own forked child. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "shardz/error.h"
#include "shardz/hash.h"
#include "shardz/placement.h"
#include "sim/simkit.h"

#define B_BATCH 8192
#define B_MAX_KINDS 4
#define B_MAX_LOADS 4

/* What is measured, one value per (kind, load set); NAN when not measured. */
enum {
    M_ASSIGN_WALL,
    M_ASSIGN_CPU,
    M_REG_PARTS,
    M_PLAN,
    M_HEAP_BPR,
    M_PLAN_MB,
    M_RSS_BPR,
    M_PEAK_RSS,
    M_MISSING,
    M_ZONE_VIOL,
    M_CNT_SPREAD,
    M_CNT_RATIO,
    M_LOAD_RATIO,
    M_LOAD_DEV,
    M_JOIN_WALL,
    M_JOIN_CPU,
    M_JOIN_MOVES,
    M_JOIN_BOUND,
    M_JOIN_RATIO,
    M_JOIN_LRATIO,
    M_JOIN_CNT_SPREAD,
    M_JOIN_LOAD_RATIO,
    M_LEAVE_WALL,
    M_LEAVE_CPU,
    M_LEAVE_MOVES,
    M_LEAVE_BOUND,
    M_LEAVE_RATIO,
    M_LEAVE_CNT_SPREAD,
    M_LEAVE_LOAD_RATIO,
    M__COUNT
};

typedef enum { T_NONE, T_LT, T_LE } b_op;

/* How a metric prints, and its target when the issue sets one. */
static const struct {
    int id;
    const char *label;
    const char *fmt;
    b_op op;
    double target;
    int loads_only; /* 1: only meaningful with unequal loads; 2: only with equal loads */
} b_metrics[] = {
    {M_ASSIGN_WALL, "assign: wall ms", "%.1f", T_LT, 500.0, 0},
    {M_ASSIGN_CPU, "assign: cpu ms", "%.1f", T_NONE, 0, 0},
    {M_REG_PARTS, "  of which register partitions ms", "%.1f", T_NONE, 0, 0},
    {M_PLAN, "  of which rebalance (plan) ms", "%.1f", T_NONE, 0, 0},
    {M_HEAP_BPR, "heap bytes per replica (mallinfo2)", "%.1f", T_LT, 100.0, 0},
    {M_PLAN_MB, "initial plan heap MB (freed after)", "%.1f", T_NONE, 0, 0},
    {M_RSS_BPR, "RSS delta bytes per replica", "%.1f", T_NONE, 0, 0},
    {M_PEAK_RSS, "peak RSS MB (whole process)", "%.1f", T_NONE, 0, 0},
    {M_MISSING, "missing replicas", "%.0f", T_LE, 0, 0},
    {M_ZONE_VIOL, "zone-spread violations", "%.0f", T_LE, 0, 0},
    {M_CNT_SPREAD, "replicas per node max-min", "%.0f", T_LE, 1.0, 2},
    {M_CNT_RATIO, "replicas per node max/mean", "%.4f", T_NONE, 0, 0},
    {M_LOAD_RATIO, "load per node max/mean", "%.4f", T_LE, 1.05, 1},
    {M_LOAD_DEV, "load max-mean in largest partitions", "%.2f", T_LE, 1.0, 1},
    {M_JOIN_WALL, "join 1 node: wall ms", "%.2f", T_LT, 50.0, 0},
    {M_JOIN_CPU, "join 1 node: cpu ms", "%.2f", T_NONE, 0, 0},
    {M_JOIN_MOVES, "join: moves", "%.0f", T_NONE, 0, 0},
    {M_JOIN_BOUND, "join: lower bound floor(total/N)", "%.0f", T_NONE, 0, 0},
    {M_JOIN_RATIO, "join: moves/bound", "%.4f", T_LE, 1.01, 2},
    {M_JOIN_LRATIO, "join: load moved/load bound", "%.4f", T_LE, 1.01, 1},
    {M_JOIN_CNT_SPREAD, "join: replicas per node max-min", "%.0f", T_LE, 1.0, 2},
    {M_JOIN_LOAD_RATIO, "join: load per node max/mean", "%.4f", T_LE, 1.05, 1},
    {M_LEAVE_WALL, "leave 1 node: wall ms", "%.2f", T_LT, 50.0, 0},
    {M_LEAVE_CPU, "leave 1 node: cpu ms", "%.2f", T_NONE, 0, 0},
    {M_LEAVE_MOVES, "leave: moves", "%.0f", T_NONE, 0, 0},
    {M_LEAVE_BOUND, "leave: lower bound (replicas held)", "%.0f", T_NONE, 0, 0},
    {M_LEAVE_RATIO, "leave: moves/bound", "%.4f", T_LE, 1.01, 0},
    {M_LEAVE_CNT_SPREAD, "leave: replicas per node max-min", "%.0f", T_LE, 1.0, 2},
    {M_LEAVE_LOAD_RATIO, "leave: load per node max/mean", "%.4f", T_LE, 1.05, 1},
};

typedef struct {
    size_t partitions, nodes;
    unsigned replicas, zones;
    double sigma;
    uint64_t seed;
} b_params;

/* One measurement's result (crosses the pipe from the child). */
typedef struct {
    double m[M__COUNT];
    int rc;
    char failed[48];
} b_result;

typedef struct {
    const b_params *bp;
    const char *kind;
    const char *load; /* "equal" or "lognormal" */
} b_job;

/* Per-run scratch owned by the child. */
typedef struct {
    const b_params *bp;
    shardz_sharder *s;
    double *load;
    size_t *cnt;
    double *nload;
    shardz_replica *reps;
    size_t capreps;
    char (*nids)[16];
    size_t nnodes;
} b_ctx;

static double b_ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void b_pid(char *buf, size_t cap, size_t i)
{
    snprintf(buf, cap, "p%08u", (unsigned)i);
}

static size_t b_part_index(const char *id, size_t n)
{
    char *end;
    unsigned long long v = id != NULL && id[0] == 'p' ? strtoull(id + 1, &end, 10) : n;
    return v < n ? (size_t)v : SIZE_MAX;
}

/* Reads back every node's replicas: count and load per node (independent of the library's own
 * statistics), over the nodes alive[0..nnodes-1] != 0. */
static int b_balance(b_ctx *c, const unsigned char *alive, double *cnt_spread, double *cnt_ratio,
                     double *load_ratio, double *load_dev)
{
    size_t cmin = SIZE_MAX, cmax = 0, total = 0, nalive = 0;
    double lmax = 0.0, ltotal = 0.0, pmax = 0.0;

    for (size_t i = 0; i < c->nnodes; i++) {
        size_t n = 0;
        if (!alive[i]) {
            continue;
        }
        if (shardz_sharder_partitions_of_node(c->s, c->nids[i], NULL, 0, &n) != 0) {
            return -1;
        }
        if (n > c->capreps) {
            shardz_replica *grown = realloc(c->reps, n * sizeof *grown);
            if (grown == NULL) {
                return -1;
            }
            c->reps = grown;
            c->capreps = n;
        }
        if (shardz_sharder_partitions_of_node(c->s, c->nids[i], c->reps, c->capreps, &n) != 0) {
            return -1;
        }
        double l = 0.0;
        for (size_t r = 0; r < n; r++) {
            size_t p = b_part_index(c->reps[r].partition, c->bp->partitions);
            l += p != SIZE_MAX ? c->load[p] : 0.0;
        }
        cmin = n < cmin ? n : cmin;
        cmax = n > cmax ? n : cmax;
        lmax = l > lmax ? l : lmax;
        total += n;
        ltotal += l;
        nalive++;
    }
    for (size_t p = 0; p < c->bp->partitions; p++) {
        pmax = c->load[p] > pmax ? c->load[p] : pmax;
    }
    if (nalive == 0) {
        return -1;
    }
    *cnt_spread = (double)(cmax - cmin);
    *cnt_ratio = (double)cmax / ((double)total / (double)nalive);
    *load_ratio = lmax / (ltotal / (double)nalive);
    *load_dev = pmax > 0.0 ? (lmax - ltotal / (double)nalive) / pmax : NAN;
    return 0;
}

/* Rebalances (timed) and sums the load of the plan's moves. */
static int b_rebalance(b_ctx *c, uint64_t *wall, uint64_t *cpu, size_t *moves, double *load)
{
    shardz_plan *p = NULL;
    uint64_t w0 = simkit_wall_ns(), c0 = simkit_cpu_ns();
    int rc = shardz_sharder_rebalance(c->s, 0, &p);
    *wall += simkit_wall_ns() - w0;
    *cpu += simkit_cpu_ns() - c0;
    if (rc != 0) {
        return rc;
    }
    *moves = shardz_plan_count(p);
    *load = 0.0;
    for (size_t i = 0; i < *moves; i++) {
        shardz_move m;
        shardz_plan_move(p, i, &m);
        size_t pi = b_part_index(m.partition, c->bp->partitions);
        *load += pi != SIZE_MAX ? c->load[pi] : 0.0;
    }
    shardz_plan_free(p);
    return 0;
}

static int b_fail(b_result *r, const char *what, int rc)
{
    r->rc = rc;
    snprintf(r->failed, sizeof r->failed, "%s", what);
    return rc;
}

static int b_child(void *arg, int fd)
{
    const b_job *job = arg;
    const b_params *bp = job->bp;
    b_ctx c;
    b_result res;
    shardz_partition_spec *batch = NULL;
    shardz_node_spec *nspec = NULL;
    char(*pids)[16] = NULL;
    unsigned char *alive = NULL;
    shardz_sharder_config cfg;
    shardz_sharder_stats st;
    simkit_rng rng;
    int rc = -1;

    memset(&c, 0, sizeof c);
    for (int i = 0; i < M__COUNT; i++) {
        res.m[i] = NAN;
    }
    res.rc = 0;
    res.failed[0] = '\0';
    c.bp = bp;
    c.nnodes = bp->nodes + 1;
    c.load = malloc(bp->partitions * sizeof *c.load);
    c.nids = calloc(c.nnodes, sizeof *c.nids);
    alive = calloc(c.nnodes, 1);
    nspec = calloc(c.nnodes, sizeof *nspec);
    batch = calloc(B_BATCH, sizeof *batch);
    pids = calloc(B_BATCH, sizeof *pids);
    if (c.load == NULL || c.nids == NULL || alive == NULL || nspec == NULL || batch == NULL ||
        pids == NULL) {
        b_fail(&res, "calloc", SHARDZ_ENOMEM);
        goto out;
    }
    simkit_rng_seed(&rng, bp->seed, 1);
    for (size_t i = 0; i < bp->partitions; i++) {
        c.load[i] = strcmp(job->load, "lognormal") == 0 ? simkit_lognormal(&rng, bp->sigma) : 1.0;
    }
    if (strcmp(job->load, "lognormal") == 0) {
        simkit_normalise_mean(c.load, bp->partitions);
    }
    static char zones[64][16];
    for (unsigned z = 0; z < bp->zones && z < 64; z++) {
        snprintf(zones[z], sizeof zones[z], "z%u", z);
    }
    for (size_t i = 0; i < c.nnodes; i++) {
        snprintf(c.nids[i], sizeof c.nids[i], "n%05u", (unsigned)i);
        memset(&nspec[i], 0, sizeof nspec[i]);
        nspec[i].id = c.nids[i];
        nspec[i].zone = zones[i % bp->zones % 64];
        nspec[i].state = SHARDZ_NODE_ALIVE;
    }

    /* ---- full assignment ---- */
    memset(&cfg, 0, sizeof cfg);
    cfg.kind = job->kind;
    cfg.replicas = bp->replicas;
    cfg.ndims = 1;
    cfg.seed = bp->seed;
    if (strcmp(job->kind, "hash") == 0) {
        /* Every partition needs a slot of its own. */
        cfg.slots = SHARDZ_HASH_SLOTS_DEFAULT;
        while (cfg.slots < bp->partitions && cfg.slots < SHARDZ_HASH_SLOTS_MAX) {
            cfg.slots <<= 1;
        }
    }
    long long heap0 = simkit_heap_bytes();
    long rss0 = simkit_rss_kb();
    uint64_t w0 = simkit_wall_ns(), c0 = simkit_cpu_ns(), wparts = 0;
    rc = shardz_sharder_new(&cfg, &c.s);
    if (rc != 0) {
        b_fail(&res, "sharder_new", rc);
        goto out;
    }
    rc = shardz_sharder_register_nodes(c.s, nspec, bp->nodes);
    if (rc != 0) {
        b_fail(&res, "register_nodes", rc);
        goto out;
    }
    for (size_t first = 0; first < bp->partitions; first += B_BATCH) {
        size_t n = bp->partitions - first < B_BATCH ? bp->partitions - first : B_BATCH;
        uint64_t t0 = simkit_wall_ns();
        for (size_t i = 0; i < n; i++) {
            b_pid(pids[i], sizeof pids[i], first + i);
            memset(&batch[i], 0, sizeof batch[i]);
            batch[i].id = pids[i];
            batch[i].replicas = bp->replicas;
            batch[i].nload = 1;
            batch[i].load[0] = c.load[first + i];
        }
        rc = shardz_sharder_register_partitions(c.s, batch, n);
        wparts += simkit_wall_ns() - t0;
        if (rc != 0) {
            b_fail(&res, "register_partitions", rc);
            goto out;
        }
    }
    shardz_plan *plan = NULL;
    uint64_t wp = simkit_wall_ns();
    rc = shardz_sharder_rebalance(c.s, 0, &plan);
    uint64_t wend = simkit_wall_ns(), cend = simkit_cpu_ns();
    if (rc != 0) {
        b_fail(&res, "rebalance", rc);
        goto out;
    }
    long long heap_plan = simkit_heap_bytes();
    shardz_plan_free(plan);
    long long heap1 = simkit_heap_bytes();
    long rss1 = simkit_rss_kb();
    double replicas = (double)bp->partitions * bp->replicas;
    res.m[M_ASSIGN_WALL] = b_ms(wend - w0);
    res.m[M_ASSIGN_CPU] = b_ms(cend - c0);
    res.m[M_REG_PARTS] = b_ms(wparts);
    res.m[M_PLAN] = b_ms(wend - wp);
    if (heap0 >= 0 && heap1 >= 0) {
        res.m[M_HEAP_BPR] = (double)(heap1 - heap0) / replicas;
        res.m[M_PLAN_MB] = (double)(heap_plan - heap1) / (1024.0 * 1024.0);
    }
    if (rss0 >= 0 && rss1 >= 0) {
        res.m[M_RSS_BPR] = (double)(rss1 - rss0) * 1024.0 / replicas;
    }
    res.m[M_PEAK_RSS] = (double)simkit_maxrss_kb() / 1024.0;
    shardz_sharder_get_stats(c.s, &st);
    res.m[M_MISSING] = (double)st.missing;
    res.m[M_ZONE_VIOL] = (double)st.zone_violations;
    for (size_t i = 0; i < bp->nodes; i++) {
        alive[i] = 1;
    }
    if (b_balance(&c, alive, &res.m[M_CNT_SPREAD], &res.m[M_CNT_RATIO], &res.m[M_LOAD_RATIO],
                  &res.m[M_LOAD_DEV]) != 0) {
        b_fail(&res, "reading the assignment back", SHARDZ_EIO);
        goto out;
    }
    simkit_emit(fd, &res, sizeof res);

    /* ---- one node joins ---- */
    uint64_t wall = 0, cpu = 0;
    size_t moves = 0;
    double lmoved = 0.0, ltotal = 0.0;
    for (size_t p = 0; p < bp->partitions; p++) {
        ltotal += c.load[p] * bp->replicas;
    }
    w0 = simkit_wall_ns();
    c0 = simkit_cpu_ns();
    rc = shardz_sharder_register_nodes(c.s, &nspec[bp->nodes], 1);
    wall += simkit_wall_ns() - w0;
    cpu += simkit_cpu_ns() - c0;
    if (rc != 0) {
        b_fail(&res, "register_nodes (join)", rc);
        goto out;
    }
    rc = b_rebalance(&c, &wall, &cpu, &moves, &lmoved);
    if (rc != 0) {
        b_fail(&res, "rebalance (join)", rc);
        goto out;
    }
    alive[bp->nodes] = 1;
    double jbound = floor(replicas / (double)(bp->nodes + 1));
    res.m[M_JOIN_WALL] = b_ms(wall);
    res.m[M_JOIN_CPU] = b_ms(cpu);
    res.m[M_JOIN_MOVES] = (double)moves;
    res.m[M_JOIN_BOUND] = jbound;
    res.m[M_JOIN_RATIO] = jbound > 0 ? (double)moves / jbound : NAN;
    res.m[M_JOIN_LRATIO] = lmoved / (ltotal / (double)(bp->nodes + 1));
    double dummy;
    if (b_balance(&c, alive, &res.m[M_JOIN_CNT_SPREAD], &dummy, &res.m[M_JOIN_LOAD_RATIO],
                  &dummy) != 0) {
        b_fail(&res, "reading the assignment back", SHARDZ_EIO);
        goto out;
    }
    simkit_emit(fd, &res, sizeof res);

    /* ---- one random node (of the original ones) leaves ---- */
    size_t victim = (size_t)simkit_below(&rng, bp->nodes);
    const char *vid = c.nids[victim];
    size_t held = 0;
    if (shardz_sharder_partitions_of_node(c.s, vid, NULL, 0, &held) != 0) {
        b_fail(&res, "partitions_of_node", SHARDZ_EIO);
        goto out;
    }
    wall = cpu = 0;
    w0 = simkit_wall_ns();
    c0 = simkit_cpu_ns();
    rc = shardz_sharder_unregister_nodes(c.s, &vid, 1, SHARDZ_REASON_LEAVE);
    wall += simkit_wall_ns() - w0;
    cpu += simkit_cpu_ns() - c0;
    if (rc != 0) {
        b_fail(&res, "unregister_nodes (leave)", rc);
        goto out;
    }
    rc = b_rebalance(&c, &wall, &cpu, &moves, &lmoved);
    if (rc != 0) {
        b_fail(&res, "rebalance (leave)", rc);
        goto out;
    }
    alive[victim] = 0;
    res.m[M_LEAVE_WALL] = b_ms(wall);
    res.m[M_LEAVE_CPU] = b_ms(cpu);
    res.m[M_LEAVE_MOVES] = (double)moves;
    res.m[M_LEAVE_BOUND] = (double)held;
    res.m[M_LEAVE_RATIO] = held > 0 ? (double)moves / (double)held : NAN;
    if (b_balance(&c, alive, &res.m[M_LEAVE_CNT_SPREAD], &dummy, &res.m[M_LEAVE_LOAD_RATIO],
                  &dummy) != 0) {
        b_fail(&res, "reading the assignment back", SHARDZ_EIO);
        goto out;
    }
    rc = 0;
out:
    simkit_emit(fd, &res, sizeof res);
    shardz_sharder_free(c.s);
    free(c.reps);
    free(pids);
    free(batch);
    free(nspec);
    free(alive);
    free(c.nids);
    free(c.load);
    return rc;
}

static int b_split(const char *arg, char out[][16], int cap)
{
    int n = 0;
    while (*arg != '\0' && n < cap) {
        size_t len = strcspn(arg, ",");
        if (len > 0 && len < 16) {
            memcpy(out[n], arg, len);
            out[n][len] = '\0';
            n++;
        }
        arg += len + (arg[len] == ',');
    }
    return n;
}

static void b_usage(FILE *out)
{
    fprintf(out, "usage: bench_placement [--partitions N] [--nodes N] [--replicas R] [--zones Z]\n"
                 "                       [--kinds replica,seed] [--loads equal,lognormal]\n"
                 "                       [--sigma S] [--seed N] [--quick]\n"
                 "defaults: 1000000 partitions x 3 replicas on 1000 nodes, 5 zones, kinds "
                 "replica,seed,hash,\nloads equal,lognormal (sigma 1); --quick: 100000 on "
                 "100.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"partitions", required_argument, NULL, 'p'},
        {"nodes", required_argument, NULL, 'n'},
        {"replicas", required_argument, NULL, 'r'},
        {"zones", required_argument, NULL, 'z'},
        {"kinds", required_argument, NULL, 'k'},
        {"loads", required_argument, NULL, 'l'},
        {"sigma", required_argument, NULL, 'S'},
        {"seed", required_argument, NULL, 's'},
        {"quick", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    b_params bp = {1000000, 1000, 3, 5, 1.0, 1};
    char kinds[B_MAX_KINDS][16] = {"replica", "seed", "hash"};
    char loads[B_MAX_LOADS][16] = {"equal", "lognormal"};
    int nkinds = 3, nloads = 2, c;
    static b_result res[B_MAX_LOADS][B_MAX_KINDS];
    int failed = 0;

    while ((c = getopt_long(argc, argv, "p:n:r:z:k:l:s:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            bp.partitions = strtoull(optarg, NULL, 10);
            break;
        case 'n':
            bp.nodes = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            bp.replicas = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'z':
            bp.zones = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'k':
            nkinds = b_split(optarg, kinds, B_MAX_KINDS);
            break;
        case 'l':
            nloads = b_split(optarg, loads, B_MAX_LOADS);
            break;
        case 'S':
            bp.sigma = strtod(optarg, NULL);
            break;
        case 's':
            bp.seed = strtoull(optarg, NULL, 10);
            break;
        case 'q':
            bp.partitions = 100000;
            bp.nodes = 100;
            break;
        case 'h':
            b_usage(stdout);
            return 0;
        default:
            b_usage(stderr);
            return 2;
        }
    }
    if (bp.partitions == 0 || bp.partitions > 100000000 || bp.nodes == 0 || bp.nodes > 1000000 ||
        bp.replicas == 0 || bp.replicas > SHARDZ_MAX_REPLICAS || bp.zones == 0 || bp.zones > 64 ||
        nkinds == 0 || nloads == 0 || !(bp.sigma > 0.0)) {
        b_usage(stderr);
        return 2;
    }
    for (int l = 0; l < nloads; l++) {
        if (strcmp(loads[l], "equal") != 0 && strcmp(loads[l], "lognormal") != 0) {
            fprintf(stderr, "bench_placement: loads are equal or lognormal\n");
            return 2;
        }
    }

    printf("bench_placement: %zu partitions x %u replicas on %zu nodes in %u zones, seed %llu\n",
           bp.partitions, bp.replicas, bp.nodes, bp.zones, (unsigned long long)bp.seed);
    printf("machine: %ld cores online (runs are single-threaded; the machine may be shared)\n",
           simkit_cores());
#ifdef __OPTIMIZE__
    printf("build: optimised\n");
#else
    printf("build: NOT optimised (numbers are not representative)\n");
#endif
    printf("each (load, kind) runs in its own child process; times are of the library calls\n"
           "only; join = register 1 node + rebalance; leave = unregister 1 node + rebalance.\n");

    for (int l = 0; l < nloads; l++) {
        for (int k = 0; k < nkinds; k++) {
            b_job job = {&bp, kinds[k], loads[l]};
            b_result got[4];
            size_t n = 0;
            int status = simkit_isolated(b_child, &job, got, sizeof got[0], 4, &n);
            if (n > 0) {
                res[l][k] = got[n - 1];
            } else {
                for (int i = 0; i < M__COUNT; i++) {
                    res[l][k].m[i] = NAN;
                }
                res[l][k].rc = SHARDZ_EIO;
            }
            if (status != 0 && res[l][k].rc == 0) {
                res[l][k].rc = SHARDZ_EIO;
                snprintf(res[l][k].failed, sizeof res[l][k].failed, "child status %d", status);
            }
        }
    }

    for (int l = 0; l < nloads; l++) {
        int lognormal = strcmp(loads[l], "lognormal") == 0;
        printf("\n== %s loads", loads[l]);
        if (lognormal) {
            printf(" (lognormal sigma %.2f, mean 1)", bp.sigma);
        }
        printf(" ==\n%-38s", "");
        for (int k = 0; k < nkinds; k++) {
            printf(" %14s", kinds[k]);
        }
        printf("   target (first kind)\n");
        for (size_t i = 0; i < sizeof b_metrics / sizeof b_metrics[0]; i++) {
            int id = b_metrics[i].id;
            if ((b_metrics[i].loads_only == 1 && !lognormal) ||
                (b_metrics[i].loads_only == 2 && lognormal)) {
                continue;
            }
            printf("%-38s", b_metrics[i].label);
            for (int k = 0; k < nkinds; k++) {
                char buf[32];
                double v = res[l][k].m[id];
                if (isnan(v)) {
                    snprintf(buf, sizeof buf, "-");
                } else {
                    snprintf(buf, sizeof buf, b_metrics[i].fmt, v);
                }
                printf(" %14s", buf);
            }
            if (b_metrics[i].op != T_NONE) {
                double v = res[l][0].m[id];
                double t = b_metrics[i].target;
                int met = !isnan(v) && (b_metrics[i].op == T_LT ? v < t : v <= t);
                printf("   %s %g: %s", b_metrics[i].op == T_LT ? "<" : "<=", t,
                       isnan(v) ? "-"
                       : met    ? "met"
                                : "NOT met");
            }
            printf("\n");
        }
        for (int k = 0; k < nkinds; k++) {
            if (res[l][k].rc != 0) {
                printf("%s: stopped at %s: %s\n", kinds[k], res[l][k].failed,
                       shardz_strerror(res[l][k].rc));
                failed = 1;
            }
        }
    }
    return failed;
}
