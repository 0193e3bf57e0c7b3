/* bench_balancer: the load balancer's targets of issue 4, measured on the real library.
 * (a) A hotspot: P partitions with lognormal loads on N nodes, placed and balanced, then 1% of
 *     them double; max/mean after each of 3 rounds, the share of partitions each round moved,
 *     moves within the cooldown; the real balancer beside the simulator's two baselines
 *     (src/sim/baseline.c), all in this run, through the simulator's engine (src/sim/loadsim.c).
 * (b) One balancer round at scale (1M partitions, 1,000 nodes): median and max of dry runs;
 *     with --brute also the brute-force reference search (src/placement/balancer.c) on the same
 *     state, and whether its plan is the same. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement/model.h" /* pz_balance_round_brute, the reference timed by --brute */
#include "shardz/error.h"
#include "shardz/placement.h"
#include "sim/loadsim.h"
#include "sim/simkit.h"

#define B_MAX_ROUNDS 16

/* (a): one strategy's figures. */
typedef struct {
    double before;                  /* max/mean once the hotspot is there */
    double after[B_MAX_ROUNDS];     /* max/mean after each round */
    double moved[B_MAX_ROUNDS];     /* share of the partitions moved by each round */
    size_t twice, rounds_to_target; /* rounds_to_target: 0 = never */
    double round_ms[B_MAX_ROUNDS];
    int rc;
} b_hot;

static int b_hotspot_one(const lsim_config *cfg, lsim_strategy strategy, size_t rounds,
                         double target, b_hot *out)
{
    lsim *L = NULL;
    lsim_step st;
    memset(out, 0, sizeof *out);
    out->rc = lsim_new(cfg, strategy, &L, &st);
    for (size_t r = 0; r < rounds && out->rc == 0; r++) {
        out->rc = lsim_step_once(L, &st);
        if (r == 0) {
            out->before = st.before[0];
        }
        out->after[r] = st.ratio[0];
        out->moved[r] = (double)st.moves / (double)cfg->partitions;
        out->twice += st.repeats;
        out->round_ms[r] = st.round_ms;
        if (out->rounds_to_target == 0 && st.ratio[0] <= target) {
            out->rounds_to_target = r + 1;
        }
    }
    lsim_free(L);
    return out->rc;
}

static void b_hotspot(size_t partitions, size_t nodes, unsigned replicas, double factor,
                      size_t rounds, uint64_t seed)
{
    static const lsim_strategy strategies[] = {LSIM_BALANCER, LSIM_SEED, LSIM_GREEDY};
    b_hot res[3];
    lsim_config cfg;
    lsim_config_defaults(&cfg);
    cfg.partitions = partitions;
    cfg.nodes = nodes;
    cfg.replicas = replicas;
    cfg.scenario = LSIM_HOTSPOT;
    cfg.hot_factor = factor;
    cfg.event_step = 1; /* the hotspot comes at step 1, and every step is a round */
    cfg.steps = rounds;
    cfg.step_ms = 30000;
    cfg.round_ms = 30000;
    cfg.tau_ms = 0; /* the statistics already show the hotspot: rounds, not EWMA lag, count */
    cfg.seed = seed;
    double target = 1.0 + cfg.policy.band;

    printf("\n(a) hotspot: %zu partitions x %u (lognormal, sigma %.1f) on %zu nodes in %u zones, "
           "placed by the replica planner;\n    then %.0f%% of the partitions x%.1f; a round every "
           "%lld s, default policy (band %.2f, budget %.0f%%, cooldown %lld s, hysteresis %.2f)\n",
           partitions, replicas, cfg.sigma, nodes, cfg.zones, 100 * cfg.hot_fraction, factor,
           (long long)(cfg.round_ms / 1000), cfg.policy.band, 100 * cfg.policy.max_moves_fraction,
           (long long)(cfg.policy.cooldown_ms / 1000), cfg.policy.hysteresis);
    for (size_t k = 0; k < 3; k++) {
        b_hotspot_one(&cfg, strategies[k], rounds, target, &res[k]);
    }
    printf("    %-34s %10s %10s %10s  %s\n", "", "balancer", "seed-1.3x", "greedy", "target");
    for (size_t k = 0; k < 3; k++) {
        if (res[k].rc != 0) {
            printf("    %s failed: %s\n", lsim_strategy_name(strategies[k]),
                   shardz_strerror(res[k].rc));
        }
    }
    printf("    %-34s %10.4f %10.4f %10.4f\n", "max/mean with the hotspot", res[0].before,
           res[1].before, res[2].before);
    for (size_t r = 0; r < rounds; r++) {
        char label[64];
        snprintf(label, sizeof label, "max/mean after round %zu", r + 1);
        printf("    %-34s %10.4f %10.4f %10.4f  %s\n", label, res[0].after[r], res[1].after[r],
               res[2].after[r], r + 1 == 3 ? "<= 1.05 within 3 rounds" : "");
    }
    for (size_t r = 0; r < rounds; r++) {
        char label[64];
        snprintf(label, sizeof label, "moved in round %zu, %% of partitions", r + 1);
        printf("    %-34s %9.2f%% %9.2f%% %9.2f%%  %s\n", label, 100 * res[0].moved[r],
               100 * res[1].moved[r], 100 * res[2].moved[r], r == 0 ? "<= 2% per round" : "");
    }
    printf("    %-34s %10zu %10zu %10zu  0\n", "moved twice within the cooldown", res[0].twice,
           res[1].twice, res[2].twice);
    char got[3][32];
    for (size_t k = 0; k < 3; k++) {
        if (res[k].rounds_to_target > 0) {
            snprintf(got[k], sizeof got[k], "%zu", res[k].rounds_to_target);
        } else {
            snprintf(got[k], sizeof got[k], "not in %zu", rounds);
        }
    }
    printf("    %-34s %10s %10s %10s  <= 3\n", "rounds to max/mean <= 1.05", got[0], got[1],
           got[2]);
    printf("    %-34s %10.3f %10.3f %10.3f\n", "round 1 time, ms (wall)", res[0].round_ms[0],
           res[1].round_ms[0], res[2].round_ms[0]);
}

static int b_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* (b): the hotspot at scale, then `reps` dry-run rounds on the same state, timed. */
static void b_scale(size_t partitions, size_t nodes, unsigned replicas, double factor, double band,
                    size_t reps, bool brute, uint64_t seed)
{
    lsim_config cfg;
    lsim_config_defaults(&cfg);
    cfg.partitions = partitions;
    cfg.nodes = nodes;
    cfg.replicas = replicas;
    cfg.zones = 5;
    cfg.scenario = LSIM_HOTSPOT;
    cfg.event_step = 1;
    cfg.steps = 1;
    cfg.step_ms = 30000;
    cfg.round_ms = 3600000; /* no round in the step: the rounds below are timed alone */
    cfg.tau_ms = 0;
    cfg.seed = seed;
    cfg.hot_factor = factor;
    cfg.policy.band = band;
    printf("\n(b) one balancer round: %zu partitions x %u (lognormal) on %zu nodes in %u zones "
           "after a 1%% x%.1f hotspot,\n    band %.3f, budget %.0f%% = %zu moves; %zu dry "
           "runs of the same round\n",
           partitions, replicas, nodes, cfg.zones, factor, band,
           100 * cfg.policy.max_moves_fraction,
           (size_t)(cfg.policy.max_moves_fraction * (double)partitions), reps);
    fflush(stdout);
    lsim *L = NULL;
    lsim_step st;
    double *wall = calloc(reps, sizeof *wall), *cpu = calloc(reps, sizeof *cpu);
    int rc = wall && cpu ? lsim_new(&cfg, LSIM_BALANCER, &L, &st) : SHARDZ_ENOMEM;
    if (rc == 0) {
        rc = lsim_step_once(L, &st);
    }
    shardz_balance_report rep = {0};
    for (size_t i = 0; i < reps && rc == 0; i++) {
        shardz_plan *plan = NULL;
        uint64_t w0 = simkit_wall_ns(), c0 = simkit_cpu_ns();
        rc = shardz_sharder_balance_round(lsim_sharder(L), &cfg.policy, 1000000, NULL, NULL,
                                          SHARDZ_PLAN_DRY_RUN, &plan, &rep);
        wall[i] = (double)(simkit_wall_ns() - w0) / 1e6;
        cpu[i] = (double)(simkit_cpu_ns() - c0) / 1e6;
        shardz_plan_free(plan);
    }
    if (rc == 0 && brute) {
        /* The brute-force reference on the same state: its time, and the same plan. */
        shardz_plan *pf = NULL, *pb = NULL;
        shardz_balance_report rb;
        uint64_t w0 = simkit_wall_ns();
        rc = pz_balance_round_brute(lsim_sharder(L), &cfg.policy, 1000000, NULL, NULL,
                                    SHARDZ_PLAN_DRY_RUN, &pb, &rb);
        double ms = (double)(simkit_wall_ns() - w0) / 1e6;
        if (rc == 0) {
            rc = shardz_sharder_balance_round(lsim_sharder(L), &cfg.policy, 1000000, NULL, NULL,
                                              SHARDZ_PLAN_DRY_RUN, &pf, &rep);
        }
        bool same = rc == 0 && shardz_plan_count(pf) == shardz_plan_count(pb);
        for (size_t i = 0; same && i < shardz_plan_count(pf); i++) {
            shardz_move a, b;
            shardz_plan_move(pf, i, &a);
            shardz_plan_move(pb, i, &b);
            same = strcmp(a.partition, b.partition) == 0 && a.slot == b.slot &&
                   strcmp(a.to, b.to) == 0;
        }
        printf("    brute-force reference (every node per candidate): %.2f ms wall, %zu moves, "
               "plan %s\n",
               ms, shardz_plan_count(pb), same ? "identical" : "DIFFERENT");
        shardz_plan_free(pf);
        shardz_plan_free(pb);
    }
    if (rc != 0) {
        printf("    failed: %s\n", shardz_strerror(rc));
    } else {
        qsort(wall, reps, sizeof *wall, b_cmp);
        qsort(cpu, reps, sizeof *cpu, b_cmp);
        printf("    max/mean before %.4f, after %.4f (expected); %zu moves, stopped: %s\n",
               rep.before[0], rep.after[0], rep.moves, shardz_balance_stop_name(rep.stop));
        printf("    round time, ms: median %.2f wall (%.2f cpu), max %.2f wall (%.2f cpu), "
               "min %.2f wall; target < 100\n",
               wall[reps / 2], cpu[reps / 2], wall[reps - 1], cpu[reps - 1], wall[0]);
    }
    lsim_free(L);
    free(wall);
    free(cpu);
}

static void b_usage(FILE *out)
{
    fprintf(out, "usage: bench_balancer [--partitions P] [--nodes N] [--replicas R] "
                 "[--hot-factor X] [--rounds K]\n"
                 "                      [--scale-partitions P] [--scale-nodes N] [--reps K] "
                 "[--scale-factor X] [--scale-band B]\n"
                 "                      [--brute] [--seed S] [--quick]\n"
                 "defaults: (a) 10000 x 1 on 100 nodes, x2, 3 rounds; (b) 1000000 x 1 on 1000 "
                 "nodes, x2, band 0.05, 7 dry runs\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"partitions", required_argument, NULL, 'p'},
        {"nodes", required_argument, NULL, 'n'},
        {"replicas", required_argument, NULL, 'r'},
        {"hot-factor", required_argument, NULL, 'x'},
        {"rounds", required_argument, NULL, 'k'},
        {"scale-partitions", required_argument, NULL, 'P'},
        {"scale-nodes", required_argument, NULL, 'N'},
        {"reps", required_argument, NULL, 'R'},
        {"scale-factor", required_argument, NULL, 'X'},
        {"scale-band", required_argument, NULL, 'B'},
        {"seed", required_argument, NULL, 's'},
        {"quick", no_argument, NULL, 'q'},
        {"brute", no_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    size_t parts = 10000, nodes = 100, rounds = 3, sparts = 1000000, snodes = 1000, reps = 7;
    unsigned replicas = 1;
    double factor = 2.0, sfactor = 2.0, sband = SHARDZ_BALANCE_BAND_DEFAULT;
    uint64_t seed = 1;
    bool brute = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            parts = strtoul(optarg, NULL, 10);
            break;
        case 'n':
            nodes = strtoul(optarg, NULL, 10);
            break;
        case 'r':
            replicas = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'x':
            factor = strtod(optarg, NULL);
            break;
        case 'k':
            rounds = strtoul(optarg, NULL, 10);
            break;
        case 'P':
            sparts = strtoul(optarg, NULL, 10);
            break;
        case 'N':
            snodes = strtoul(optarg, NULL, 10);
            break;
        case 'R':
            reps = strtoul(optarg, NULL, 10);
            break;
        case 'X':
            sfactor = strtod(optarg, NULL);
            break;
        case 'B':
            sband = strtod(optarg, NULL);
            break;
        case 's':
            seed = strtoull(optarg, NULL, 10);
            break;
        case 'b':
            brute = true;
            break;
        case 'q':
            sparts = 100000;
            snodes = 100;
            reps = 3;
            break;
        case 'h':
            b_usage(stdout);
            return 0;
        default:
            b_usage(stderr);
            return 2;
        }
    }
    if (parts == 0 || nodes == 0 || replicas == 0 || replicas > nodes || rounds == 0 ||
        rounds > B_MAX_ROUNDS || sparts == 0 || snodes < replicas || reps == 0 || !(factor > 0)) {
        b_usage(stderr);
        return 2;
    }
    printf("bench_balancer: machine: %ld cores online (single-threaded; the machine may be "
           "shared), seed %llu\n",
           simkit_cores(), (unsigned long long)seed);
    b_hotspot(parts, nodes, replicas, factor, rounds, seed);
    b_scale(sparts, snodes, replicas, sfactor, sband, reps, brute, seed);
    return 0;
}
