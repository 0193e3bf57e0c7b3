/* The load simulator's reports: a table (one row per step, the strategies side by side) with a
 * summary per strategy (moves, moved load, convergence time, moves within the cooldown), and
 * one JSON document with every figure. Prints only what the runs measured. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardz/error.h"
#include "sim/loadsim.h"
#include "sim/simkit.h"

/* A run's totals. */
typedef struct {
    size_t moves, repeats, rounds, max_round_moves, errors;
    double moved, peak[SHARDZ_MAX_DIMS], round_med, round_max;
    double floor;   /* at the last step: max(1, largest partition / mean node load) */
    long converged; /* step, or -1 */
} lsim_totals;

static int lsim_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void lsim_total(const lsim_config *cfg, const lsim_run *r, lsim_totals *t)
{
    double *times = calloc(r->nsteps ? r->nsteps : 1, sizeof *times);
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < r->nsteps; i++) {
        const lsim_step *s = &r->steps[i];
        t->moves += s->moves;
        t->repeats += s->repeats;
        t->moved += s->moved;
        t->errors += s->errors;
        t->max_round_moves = s->moves > t->max_round_moves ? s->moves : t->max_round_moves;
        if (s->round && times != NULL) {
            times[t->rounds++] = s->round_ms;
        }
        for (size_t d = 0; d < cfg->ndims && i >= cfg->event_step; d++) {
            double v = s->before[d] > s->ratio[d] ? s->before[d] : s->ratio[d];
            t->peak[d] = v > t->peak[d] ? v : t->peak[d];
        }
    }
    if (t->rounds > 0) {
        qsort(times, t->rounds, sizeof *times, lsim_cmp_double);
        t->round_med = times[t->rounds / 2];
        t->round_max = times[t->rounds - 1];
    }
    free(times);
    t->converged = r->status == 0 ? lsim_converged_at(cfg, r) : -1;
    t->floor = r->nsteps > 0 && r->steps[r->nsteps - 1].largest > 1.0
                   ? r->steps[r->nsteps - 1].largest
                   : 1.0;
}

static void lsim_scenario_text(const lsim_config *c, char *buf, size_t cap)
{
    switch (c->scenario) {
    case LSIM_HOTSPOT:
        snprintf(buf, cap, "hotspot: %.1f%% of the partitions x%.2f from step %zu",
                 100.0 * c->hot_fraction, c->hot_factor, c->event_step);
        break;
    case LSIM_DIURNAL:
        snprintf(buf, cap, "diurnal: every partition x (1 + %.2f sin(2 pi t / %lld s + phase))",
                 c->diurnal_amp, (long long)(c->diurnal_period_ms / 1000));
        break;
    case LSIM_ZIPF:
        snprintf(buf, cap, "zipf: from step %zu, loads from %zu keys of zipf popularity (s %.2f)",
                 c->event_step, c->zipf_keys > 0 ? c->zipf_keys : 100 * c->partitions,
                 c->zipf_keys_s);
        break;
    case LSIM_HALFCAP:
        snprintf(buf, cap, "halfcap: one node loses half its capacity at step %zu", c->event_step);
        break;
    }
}

void lsim_report_table(FILE *out, const lsim_config *c, const lsim_run *runs, size_t nruns)
{
    char scen[160];
    lsim_scenario_text(c, scen, sizeof scen);
    fprintf(out,
            "shardz-sim load: %s\n%zu partitions x %u on %zu nodes in %u zones, %zu dimension(s), "
            "load %s, capacity %.2fx the fair share, seed %llu, %ld cores\n"
            "clock: %zu steps of %lld s, rounds every %lld s, statistics tau %lld s; policy: band "
            "%.3f, budget %.1f%%, cooldown %lld s, hysteresis %.2f\n",
            scen, c->partitions, c->replicas, c->nodes, c->zones, c->ndims, sim_load_name(c->load),
            c->headroom, (unsigned long long)c->seed, simkit_cores(), c->steps,
            (long long)(c->step_ms / 1000), (long long)(c->round_ms / 1000),
            (long long)(c->tau_ms / 1000), c->policy.band, 100.0 * c->policy.max_moves_fraction,
            (long long)(c->policy.cooldown_ms / 1000), c->policy.hysteresis);
    fprintf(out,
            "max/mean, cv: true node loads against capacity-weighted shares (per dimension); "
            "moves: the round's replica moves;\ntwice: moves of a partition moved within the "
            "cooldown before; * marks a round; rows: the start, the event, the rounds; "
            "floor:\nmax(1, the "
            "largest partition / the mean node load), below which no assignment gets\n\n%5s %6s",
            "step", "t s");
    for (size_t k = 0; k < nruns; k++) {
        fprintf(out, " | %-*s", (int)(c->ndims * 14 + 13), lsim_strategy_name(runs[k].strategy));
    }
    fprintf(out, "\n%5s %6s", "", "");
    for (size_t k = 0; k < nruns; k++) {
        fprintf(out, " |");
        for (size_t d = 0; d < c->ndims; d++) {
            fprintf(out, " %6s %6s", d == 0 ? "max/mn" : "", d == 0 ? "cv" : "");
        }
        fprintf(out, " %6s %5s", "moves", "twice");
    }
    fprintf(out, "\n");
    size_t nsteps = 0;
    for (size_t k = 0; k < nruns; k++) {
        nsteps = runs[k].nsteps > nsteps ? runs[k].nsteps : nsteps;
    }
    for (size_t i = 0; i < nsteps; i++) {
        /* Rows where something can happen: the start, the event and every round (the JSON
         * has every step). */
        if (i != 0 && i != c->event_step && (((int64_t)i * c->step_ms) % c->round_ms) != 0) {
            continue;
        }
        fprintf(out, "%5zu %6lld", i, (long long)i * (long long)(c->step_ms / 1000));
        for (size_t k = 0; k < nruns; k++) {
            const lsim_step *s = i < runs[k].nsteps ? &runs[k].steps[i] : NULL;
            if (s == NULL || s->rc != 0) {
                fprintf(out, " | %-*s", (int)(c->ndims * 14 + 13),
                        s == NULL ? "(not run)" : shardz_err_name(s->rc));
                continue;
            }
            fprintf(out, " |");
            for (size_t d = 0; d < c->ndims; d++) {
                fprintf(out, " %6.3f %6.3f", s->ratio[d], s->cv[d]);
            }
            fprintf(out, " %5zu%c %5zu", s->moves, s->round ? '*' : ' ', s->repeats);
        }
        fprintf(out, "\n");
    }
    fprintf(out,
            "\nsummary (after step %zu; convergence: from the event until max/mean stays "
            "within 1 + band to the end;\npeak, final, final cv: the worst dimension)\n",
            c->event_step);
    fprintf(out, "  %-10s %7s %7s %9s %8s %9s %9s %7s %8s %6s %8s  %s\n", "strategy", "moves",
            "max/rnd", "moved", "twice", "peak", "final", "floor", "final cv", "conv s", "round ms",
            "status");
    for (size_t k = 0; k < nruns; k++) {
        const lsim_run *r = &runs[k];
        lsim_totals t;
        lsim_total(c, r, &t);
        const lsim_step *last = r->nsteps > 0 ? &r->steps[r->nsteps - 1] : NULL;
        double peak = 0.0, fin = 0.0, fcv = 0.0;
        for (size_t d = 0; d < c->ndims; d++) {
            peak = t.peak[d] > peak ? t.peak[d] : peak;
            fin = last != NULL && last->ratio[d] > fin ? last->ratio[d] : fin;
            fcv = last != NULL && last->cv[d] > fcv ? last->cv[d] : fcv;
        }
        char conv[24];
        if (t.converged >= 0) {
            snprintf(
                conv, sizeof conv, "%lld",
                (long long)(((size_t)t.converged - c->event_step) * (size_t)c->step_ms / 1000));
        } else {
            snprintf(conv, sizeof conv, "never");
        }
        fprintf(out, "  %-10s %7zu %6.2f%% %8.2f%% %8zu %9.4f %9.4f %7.3f %8.4f %6s %8.2f  %s\n",
                lsim_strategy_name(r->strategy), t.moves,
                100.0 * (double)t.max_round_moves / (double)c->partitions, 100.0 * t.moved,
                t.repeats, peak, fin, t.floor, fcv, conv, t.round_med,
                r->status == 0 ? (t.errors ? "FAILED CHECKS" : "completed") : r->error);
    }
}

void lsim_report_json(FILE *out, const lsim_config *c, const lsim_run *runs, size_t nruns)
{
    char scen[160];
    lsim_scenario_text(c, scen, sizeof scen);
    fprintf(out,
            "{\"load_scenario\": {\"scenario\": \"%s\", \"description\": \"%s\", "
            "\"partitions\": %zu, \"replicas\": %u, \"nodes\": %zu, \"zones\": %u, "
            "\"dimensions\": %zu, \"load\": \"%s\", \"sigma\": %.3f, \"headroom\": %.3f, "
            "\"event_step\": %zu, \"steps\": %zu, \"step_ms\": %lld, \"round_ms\": %lld, "
            "\"tau_ms\": %lld, \"policy\": {\"band\": %.4f, \"max_moves_fraction\": %.4f, "
            "\"cooldown_ms\": %lld, \"hysteresis\": %.4f}, \"seed\": %llu},\n \"cores\": %ld,\n"
            " \"runs\": [",
            lsim_scenario_name(c->scenario), scen, c->partitions, c->replicas, c->nodes, c->zones,
            c->ndims, sim_load_name(c->load), c->sigma, c->headroom, c->event_step, c->steps,
            (long long)c->step_ms, (long long)c->round_ms, (long long)c->tau_ms, c->policy.band,
            c->policy.max_moves_fraction, (long long)c->policy.cooldown_ms, c->policy.hysteresis,
            (unsigned long long)c->seed, simkit_cores());
    for (size_t k = 0; k < nruns; k++) {
        const lsim_run *r = &runs[k];
        lsim_totals t;
        lsim_total(c, r, &t);
        fprintf(out,
                "%s\n  {\"strategy\": \"%s\", \"completed\": %s, \"error\": \"%s\", "
                "\"moves\": %zu, \"moved_load_share\": %.6f, \"moved_twice_within_cooldown\": "
                "%zu, \"failed_checks\": %zu, \"round_ms_median\": %.3f, \"round_ms_max\": %.3f, ",
                k ? "," : "", lsim_strategy_name(r->strategy), r->status == 0 ? "true" : "false",
                r->error, t.moves, t.moved, t.repeats, t.errors, t.round_med, t.round_max);
        if (t.converged >= 0) {
            fprintf(out, "\"converged_step\": %ld, \"convergence_ms\": %lld, ", t.converged,
                    (long long)((size_t)t.converged - c->event_step) * (long long)c->step_ms);
        } else {
            fprintf(out, "\"converged_step\": null, \"convergence_ms\": null, ");
        }
        fprintf(out, "\"steps\": [");
        for (size_t i = 0; i < r->nsteps; i++) {
            const lsim_step *s = &r->steps[i];
            fprintf(out, "%s\n    {\"step\": %zu, \"t_ms\": %lld, \"ok\": %s", i ? "," : "", i,
                    (long long)s->t_ms, s->rc == 0 ? "true" : "false");
            if (s->rc != 0) {
                fprintf(out, ", \"failed_call\": \"%s\", \"error\": \"%s\"}", s->failed_call,
                        shardz_err_name(s->rc));
                continue;
            }
            fprintf(out,
                    ", \"round\": %s, \"round_ms\": %.3f, \"moves\": %zu, \"moved_load_share\": "
                    "%.6f, \"moved_twice_within_cooldown\": %zu, \"stop\": \"%s\", "
                    "\"seen_max_over_mean\": %.5f, \"largest_partition_over_mean_node\": %.5f, "
                    "\"failed_checks\": %zu, \"max_over_mean\": [",
                    s->round ? "true" : "false", s->round_ms, s->moves, s->moved, s->repeats,
                    s->stop, s->seen_ratio, s->largest, s->errors);
            for (size_t d = 0; d < c->ndims; d++) {
                fprintf(out, "%s%.5f", d ? ", " : "", s->ratio[d]);
            }
            fprintf(out, "], \"cv\": [");
            for (size_t d = 0; d < c->ndims; d++) {
                fprintf(out, "%s%.5f", d ? ", " : "", s->cv[d]);
            }
            fprintf(out, "]}");
        }
        fprintf(out, "]}");
    }
    fprintf(out, "\n]}\n");
}
