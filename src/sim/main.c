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
            "  -h, --help\n",
            SHARDZ_MAX_REPLICAS);
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

    sim_scenario_defaults(&sc);
    strcpy(kinds[0], "replica");
    strcpy(kinds[1], "seed");
    strcpy(kinds[2], "hash");
    while ((c = getopt_long(argc, argv, "p:r:n:z:l:e:k:s:jh", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'p':
            bad = sim_parse_size(optarg, "partitions", 1, 100000000, &sc.partitions);
            break;
        case 'r':
            bad = sim_parse_size(optarg, "replicas", 1, SHARDZ_MAX_REPLICAS, &v);
            sc.replicas = (unsigned)v;
            break;
        case 'n':
            bad = sim_parse_size(optarg, "nodes", 1, 1000000, &sc.nodes);
            break;
        case 'z':
            bad = sim_parse_size(optarg, "zones", 1, 100000, &v);
            sc.zones = (unsigned)v;
            break;
        case 'C':
            bad = sim_parse_cap(optarg, &sc.cap);
            if (bad) {
                fprintf(stderr, "shardz-sim: --capacity is equal or mixed\n");
            }
            break;
        case 'H':
            bad = sim_parse_double(optarg, "headroom", 0.0, 1e6, &sc.headroom);
            break;
        case 'l':
            bad = sim_parse_load(optarg, &sc.load);
            if (bad) {
                fprintf(stderr, "shardz-sim: --load is equal, uniform, lognormal or zipf\n");
            }
            break;
        case 'S':
            bad = sim_parse_double(optarg, "sigma", 0.0, 10.0, &sc.sigma);
            break;
        case 'Z':
            bad = sim_parse_double(optarg, "zipf-s", 0.0, 10.0, &sc.zipf_s);
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
        default:
            bad = 1;
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
