/* shardz-sim: the placement simulator's command line. Parses a scenario, runs it on each
 * requested sharder kind of the real library (each in its own child process, so every kind gets
 * its own peak RSS and a crash in one does not hide the others), and prints the table or the
 * JSON report. Exit status 0 when every run completed and passed its checks, 1 otherwise. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shardz/error.h"
#include "shardz/hash.h"
#include "sim/loadsim.h"
#include "sim/sim.h"
#include "sim/simkit.h"

static void sim_usage(FILE *out)
{
    fprintf(out,
            "usage: shardz-sim [options]\n"
            "Runs the placement library on a scenario and reports each step.\n\n"
            "  -p, --partitions N   partitions (default 100000)\n"
            "  -r, --replicas R     replicas per partition, 1..%d (default 3)\n"
            "  -n, --nodes N        nodes at start (default 100)\n"
            "  -z, --zones Z        zones; nodes go round-robin over them (default 3)\n"
            "      --capacity D     equal | mixed (1x/2x/4x nodes in every zone) (default equal)\n"
            "      --headroom H     make capacity a hard limit: H x the fair share of the\n"
            "                       initial load (default: no limit)\n"
            "  -l, --load D         equal | uniform | lognormal | zipf (default lognormal)\n"
            "      --sigma S        lognormal sigma (default 1.0)\n"
            "      --zipf-s S       zipf exponent (default 1.1)\n"
            "  -e, --events LIST    comma-separated, in order: join[:k] leave[:k] zoneloss[:k]\n"
            "                       drain[:k] loadshift rebalance\n"
            "                       (default join:5,leave:3,zoneloss:1,loadshift,rebalance)\n"
            "  -k, --kind K         replica | seed | hash | all, or a comma list (default all)\n"
            "      --band B         the sharders' dead band, 0..1 (default 0)\n"
            "      --slots S        \"hash\" slot count, a power of two (default: the smallest\n"
            "                       >= max(partitions, 16384))\n"
            "  -s, --seed N         seed of every random draw (default 1)\n"
            "  -j, --json           one JSON document instead of the table\n"
            "  -h, --help\n"
            "\nLoad scenarios over time (--scenario; then the defaults are 10000 partitions x 1\n"
            "on 100 nodes, lognormal, headroom 2): the real balancer beside two baselines.\n"
            "      --scenario S     hotspot | diurnal | zipf | halfcap\n"
            "      --strategies L   balancer,seed-1.3x,greedy (default all three)\n"
            "      --steps N        simulated steps (default 60, at most %d)\n"
            "      --step-s S       simulated seconds per step (default 10)\n"
            "      --round-s S      a round every S seconds, a multiple of --step-s (default 30)\n"
            "      --tau-s S        the statistics' EWMA time constant, 0 = none (default 60)\n"
            "      --event-step K   the step of the hotspot, zipf loads or lost capacity (6)\n"
            "      --dims D         load dimensions, each its own draw (default 1)\n"
            "      --hot-fraction F hotspot: share of partitions (default 0.01)\n"
            "      --hot-factor X   hotspot: their load multiplier (default 2)\n"
            "      --diurnal-amp A  diurnal: amplitude in [0, 1) (default 0.5)\n"
            "      --diurnal-period-s S  diurnal: period (default 3600)\n"
            "      --zipf-keys K    zipf: keys (default 100 per partition)\n"
            "      --zipf-keys-s S  zipf: key popularity exponent (default 0.8)\n"
            "      --policy-band B, --policy-moves F, --policy-cooldown-s S,\n"
            "      --policy-hysteresis H   the balancer's policy (defaults 0.05, 0.02, 60, 0.1)\n",
            SHARDZ_MAX_REPLICAS, LSIM_MAX_STEPS);
}

static int sim_parse_size(const char *arg, const char *name, size_t lo, size_t hi, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(arg, &end, 10);
    if (*arg == '\0' || *end != '\0' || arg[0] == '-' || v < lo || v > hi) {
        fprintf(stderr, "shardz-sim: --%s must be an integer in [%zu, %zu]\n", name, lo, hi);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

static int sim_parse_double(const char *arg, const char *name, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(arg, &end);
    if (*arg == '\0' || *end != '\0' || !(v >= lo && v <= hi)) {
        fprintf(stderr, "shardz-sim: --%s must be a number in [%g, %g]\n", name, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* Splits "replica,seed" (or "all") into kinds; returns how many, or -1. */
static int sim_parse_kinds(const char *arg, char kinds[][16], size_t cap)
{
    size_t n = 0;
    if (strcmp(arg, "all") == 0) {
        arg = "replica,seed,hash";
    }
    while (*arg != '\0') {
        size_t len = strcspn(arg, ",");
        if (len > 0) {
            if (n == cap || len >= 16) {
                fprintf(stderr, "shardz-sim: bad --kind list\n");
                return -1;
            }
            memcpy(kinds[n], arg, len);
            kinds[n][len] = '\0';
            n++;
        }
        arg += len;
        if (*arg == ',') {
            arg++;
        }
    }
    if (n == 0) {
        fprintf(stderr, "shardz-sim: --kind is empty\n");
        return -1;
    }
    return (int)n;
}

typedef struct {
    const sim_scenario *sc;
    const char *kind;
} sim_child_arg;

static int sim_child(void *arg, int fd)
{
    const sim_child_arg *a = arg;
    return sim_run_kind(a->sc, a->kind, fd);
}

/* Runs one kind in a child and describes how it ended. */
static void sim_run_one(const sim_scenario *sc, sim_run *r)
{
    sim_child_arg a = {sc, r->kind};
    int status =
        simkit_isolated(sim_child, &a, r->steps, sizeof r->steps[0], SIM_MAX_STEPS, &r->nsteps);
    const sim_step *last = r->nsteps > 0 ? &r->steps[r->nsteps - 1] : NULL;

    r->status = status;
    r->error[0] = '\0';
    if (status == 0) {
        return;
    }
    if (status == -1) {
        snprintf(r->error, sizeof r->error, "could not start a child process");
    } else if (WIFSIGNALED(status)) {
        snprintf(r->error, sizeof r->error, "crashed (signal %d) after %zu steps", WTERMSIG(status),
                 r->nsteps);
    } else if (last != NULL && last->rc != 0) {
        snprintf(r->error, sizeof r->error, "stopped at %s: %s: %s (%s)", last->label,
                 last->failed_call, shardz_strerror(last->rc), shardz_err_name(last->rc));
    } else {
        snprintf(r->error, sizeof r->error, "exited with status %d after %zu steps",
                 WIFEXITED(status) ? WEXITSTATUS(status) : status, r->nsteps);
    }
}

typedef struct {
    const lsim_config *cfg;
    lsim_strategy strategy;
} lsim_child_arg;

static int lsim_child(void *arg, int fd)
{
    const lsim_child_arg *a = arg;
    return lsim_run_strategy(a->cfg, a->strategy, fd);
}

/* Splits "balancer,greedy" (or "all") into strategies; returns how many, or -1. */
static int lsim_parse_strategies(const char *arg, lsim_strategy *out)
{
    int n = 0;
    if (strcmp(arg, "all") == 0) {
        arg = "balancer,seed-1.3x,greedy";
    }
    while (*arg != '\0') {
        size_t len = strcspn(arg, ",");
        char name[16];
        if (len > 0) {
            if (n == LSIM_MAX_STRATEGIES || len >= sizeof name) {
                return -1;
            }
            memcpy(name, arg, len);
            name[len] = '\0';
            if (lsim_parse_strategy(name, &out[n]) != 0) {
                return -1;
            }
            n++;
        }
        arg += len;
        arg += *arg == ',';
    }
    return n > 0 ? n : -1;
}

/* The load mode: every strategy on the same load scenario, each in its own child. */
static int lsim_main(const lsim_config *cfg, const lsim_strategy *strategies, int n, int json)
{
    lsim_run *runs = calloc((size_t)n, sizeof *runs);
    int rc = 0;
    if (runs == NULL) {
        fprintf(stderr, "shardz-sim: out of memory\n");
        return 1;
    }
    for (int k = 0; k < n; k++) {
        lsim_run *r = &runs[k];
        lsim_child_arg a = {cfg, strategies[k]};
        r->strategy = strategies[k];
        if (!json && isatty(STDERR_FILENO)) {
            fprintf(stderr, "shardz-sim: running %s...\n", lsim_strategy_name(r->strategy));
        }
        r->status = simkit_isolated(lsim_child, &a, r->steps, sizeof r->steps[0],
                                    LSIM_MAX_STEPS + 1, &r->nsteps);
        if (r->status != 0) {
            const lsim_step *last = r->nsteps > 0 ? &r->steps[r->nsteps - 1] : NULL;
            if (last != NULL && last->rc != 0) {
                snprintf(r->error, sizeof r->error, "stopped at step %zu: %s: %s", r->nsteps - 1,
                         last->failed_call, shardz_err_name(last->rc));
            } else {
                snprintf(r->error, sizeof r->error, "exited with status %d after %zu steps",
                         r->status, r->nsteps);
            }
            rc = 1;
        }
        for (size_t i = 0; i < r->nsteps; i++) {
            rc |= r->steps[i].errors > 0;
        }
    }
    if (json) {
        lsim_report_json(stdout, cfg, runs, (size_t)n);
    } else {
        lsim_report_table(stdout, cfg, runs, (size_t)n);
    }
    free(runs);
    return rc;
}

/* Load-mode options: 0, 1 when c is not one of them, -1 on a bad value. */
static int lsim_option(int c, const char *arg, lsim_config *lc, int *load_mode)
{
    size_t v = 0;
    double x = 0.0;
    int bad = 0;
    switch (c) {
    case 1000:
        bad = lsim_parse_scenario(arg, &lc->scenario);
        if (bad) {
            fprintf(stderr, "shardz-sim: --scenario is hotspot, diurnal, zipf or halfcap\n");
        }
        *load_mode = 1;
        break;
    case 1002:
        bad = sim_parse_size(arg, "steps", 1, LSIM_MAX_STEPS, &lc->steps);
        break;
    case 1003:
        bad = sim_parse_size(arg, "step-s", 1, 86400, &v);
        lc->step_ms = (int64_t)v * 1000;
        break;
    case 1004:
        bad = sim_parse_size(arg, "round-s", 1, 86400, &v);
        lc->round_ms = (int64_t)v * 1000;
        break;
    case 1005:
        bad = sim_parse_size(arg, "tau-s", 0, 86400, &v);
        lc->tau_ms = (int64_t)v * 1000;
        break;
    case 1006:
        bad = sim_parse_size(arg, "event-step", 0, LSIM_MAX_STEPS, &lc->event_step);
        break;
    case 1007:
        bad = sim_parse_size(arg, "dims", 1, SHARDZ_MAX_DIMS, &lc->ndims);
        break;
    case 1008:
        bad = sim_parse_double(arg, "hot-fraction", 0.0, 1.0, &lc->hot_fraction);
        break;
    case 1009:
        bad = sim_parse_double(arg, "hot-factor", 0.0, 1000.0, &lc->hot_factor);
        break;
    case 1010:
        bad = sim_parse_double(arg, "diurnal-amp", 0.0, 0.999, &lc->diurnal_amp);
        break;
    case 1011:
        bad = sim_parse_size(arg, "diurnal-period-s", 1, 10000000, &v);
        lc->diurnal_period_ms = (int64_t)v * 1000;
        break;
    case 1012:
        bad = sim_parse_size(arg, "zipf-keys", 1, 1000000000, &lc->zipf_keys);
        break;
    case 1013:
        bad = sim_parse_double(arg, "zipf-keys-s", 0.0, 10.0, &lc->zipf_keys_s);
        break;
    case 1014:
        bad = sim_parse_double(arg, "policy-band", 0.0, 1.0, &lc->policy.band);
        break;
    case 1015:
        bad = sim_parse_double(arg, "policy-moves", 0.0, 1.0, &lc->policy.max_moves_fraction);
        break;
    case 1016:
        bad = sim_parse_double(arg, "policy-cooldown-s", 0.0, 86400.0, &x);
        lc->policy.cooldown_ms = (int64_t)(x * 1000.0);
        break;
    case 1017:
        bad = sim_parse_double(arg, "policy-hysteresis", 0.0, 1.0, &lc->policy.hysteresis);
        break;
    default:
        return 1;
    }
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"partitions", required_argument, NULL, 'p'},
        {"replicas", required_argument, NULL, 'r'},
        {"nodes", required_argument, NULL, 'n'},
        {"zones", required_argument, NULL, 'z'},
        {"capacity", required_argument, NULL, 'C'},
        {"headroom", required_argument, NULL, 'H'},
        {"load", required_argument, NULL, 'l'},
        {"sigma", required_argument, NULL, 'S'},
        {"zipf-s", required_argument, NULL, 'Z'},
        {"events", required_argument, NULL, 'e'},
        {"kind", required_argument, NULL, 'k'},
        {"band", required_argument, NULL, 'B'},
        {"seed", required_argument, NULL, 's'},
        {"slots", required_argument, NULL, 'L'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"scenario", required_argument, NULL, 1000},
        {"strategies", required_argument, NULL, 1001},
        {"steps", required_argument, NULL, 1002},
        {"step-s", required_argument, NULL, 1003},
        {"round-s", required_argument, NULL, 1004},
        {"tau-s", required_argument, NULL, 1005},
        {"event-step", required_argument, NULL, 1006},
        {"dims", required_argument, NULL, 1007},
        {"hot-fraction", required_argument, NULL, 1008},
        {"hot-factor", required_argument, NULL, 1009},
        {"diurnal-amp", required_argument, NULL, 1010},
        {"diurnal-period-s", required_argument, NULL, 1011},
        {"zipf-keys", required_argument, NULL, 1012},
        {"zipf-keys-s", required_argument, NULL, 1013},
        {"policy-band", required_argument, NULL, 1014},
        {"policy-moves", required_argument, NULL, 1015},
        {"policy-cooldown-s", required_argument, NULL, 1016},
        {"policy-hysteresis", required_argument, NULL, 1017},
        {NULL, 0, NULL, 0},
    };
    sim_scenario sc;
    char kinds[SIM_MAX_KINDS][16] = {{0}};
    int nkinds = 3;
    int json = 0;
    int c;
    int rc = 1;
    sim_run *runs = NULL;
    size_t v;
    lsim_config lc;
    lsim_strategy strategies[LSIM_MAX_STRATEGIES] = {LSIM_BALANCER, LSIM_SEED, LSIM_GREEDY};
    int nstrategies = LSIM_MAX_STRATEGIES;
    int load_mode = 0;

    sim_scenario_defaults(&sc);
    lsim_config_defaults(&lc);
    strcpy(kinds[0], "replica");
    strcpy(kinds[1], "seed");
    strcpy(kinds[2], "hash");
    while ((c = getopt_long(argc, argv, "p:r:n:z:l:e:k:s:jh", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'p':
            bad = sim_parse_size(optarg, "partitions", 1, 100000000, &sc.partitions);
            lc.partitions = sc.partitions;
            break;
        case 'r':
            bad = sim_parse_size(optarg, "replicas", 1, SHARDZ_MAX_REPLICAS, &v);
            sc.replicas = (unsigned)v;
            lc.replicas = sc.replicas;
            break;
        case 'n':
            bad = sim_parse_size(optarg, "nodes", 1, 1000000, &sc.nodes);
            lc.nodes = sc.nodes;
            break;
        case 'z':
            bad = sim_parse_size(optarg, "zones", 1, 100000, &v);
            sc.zones = (unsigned)v;
            lc.zones = sc.zones;
            break;
        case 'C':
            bad = sim_parse_cap(optarg, &sc.cap);
            if (bad) {
                fprintf(stderr, "shardz-sim: --capacity is equal or mixed\n");
            }
            break;
        case 'H':
            bad = sim_parse_double(optarg, "headroom", 0.0, 1e6, &sc.headroom);
            lc.headroom = sc.headroom;
            break;
        case 'l':
            bad = sim_parse_load(optarg, &sc.load);
            if (bad) {
                fprintf(stderr, "shardz-sim: --load is equal, uniform, lognormal or zipf\n");
            }
            lc.load = sc.load;
            break;
        case 'S':
            bad = sim_parse_double(optarg, "sigma", 0.0, 10.0, &sc.sigma);
            lc.sigma = sc.sigma;
            break;
        case 'Z':
            bad = sim_parse_double(optarg, "zipf-s", 0.0, 10.0, &sc.zipf_s);
            lc.zipf_s = sc.zipf_s;
            break;
        case 'e':
            bad = sim_parse_events(optarg, &sc);
            break;
        case 'k':
            nkinds = sim_parse_kinds(optarg, kinds, SIM_MAX_KINDS);
            bad = nkinds < 0;
            break;
        case 'B':
            bad = sim_parse_double(optarg, "band", 0.0, 1.0, &sc.band);
            break;
        case 's':
            bad = sim_parse_size(optarg, "seed", 0, SIZE_MAX, &v);
            sc.seed = (uint64_t)v;
            lc.seed = sc.seed;
            break;
        case 'L':
            bad = sim_parse_size(optarg, "slots", SHARDZ_HASH_SLOTS_MIN, SHARDZ_HASH_SLOTS_MAX, &v);
            bad = bad || (v & (v - 1)) != 0;
            sc.slots = (uint32_t)v;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            sim_usage(stdout);
            return 0;
        case 1001:
            nstrategies = lsim_parse_strategies(optarg, strategies);
            bad = nstrategies < 0;
            if (bad) {
                fprintf(stderr, "shardz-sim: --strategies is a list of balancer, seed-1.3x, "
                                "greedy\n");
            }
            break;
        default:
            bad = lsim_option(c, optarg, &lc, &load_mode) != 0;
            break;
        }
        if (bad) {
            sim_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "shardz-sim: unexpected argument '%s'\n", argv[optind]);
        sim_usage(stderr);
        return 2;
    }

    if (load_mode) {
        const char *why = NULL;
        if (lc.round_ms % lc.step_ms != 0) {
            why = "--round-s must be a multiple of --step-s";
        } else if (lc.replicas > lc.nodes) {
            why = "--replicas must not exceed --nodes";
        } else if (lc.scenario == LSIM_HALFCAP && !(lc.headroom > 0.0)) {
            why = "halfcap needs a capacity (--headroom > 0)";
        }
        if (why != NULL) {
            fprintf(stderr, "shardz-sim: %s\n", why);
            return 2;
        }
        return lsim_main(&lc, strategies, nstrategies, json);
    }

    runs = calloc((size_t)nkinds, sizeof *runs);
    if (runs == NULL) {
        fprintf(stderr, "shardz-sim: out of memory\n");
        return 1;
    }
    rc = 0;
    for (int k = 0; k < nkinds; k++) {
        memcpy(runs[k].kind, kinds[k], sizeof runs[k].kind); /* both 16 bytes, NUL-ended */
        if (!json && isatty(STDERR_FILENO)) {
            fprintf(stderr, "shardz-sim: running %s...\n", kinds[k]);
        }
        sim_run_one(&sc, &runs[k]);
        if (runs[k].status != 0) {
            rc = 1;
        }
        for (size_t i = 0; i < runs[k].nsteps; i++) {
            if (runs[k].steps[i].errors > 0) {
                rc = 1;
            }
        }
    }
    if (json) {
        sim_report_json(stdout, &sc, runs, (size_t)nkinds);
    } else {
        sim_report_table(stdout, &sc, runs, (size_t)nkinds);
    }
    free(runs);
    return rc;
}
