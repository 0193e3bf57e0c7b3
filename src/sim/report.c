/* The simulator's reports: a readable table (steps down, kinds side by side within a step) and
 * one JSON document for scripts. Both print only what the runs measured; nothing is derived
 * here except ratios and unit conversions. */
#include <stdio.h>
#include <string.h>

#include "shardz/error.h"
#include "sim/sim.h"
#include "sim/simkit.h"

static const char *sim_load_desc(const sim_scenario *sc, char *buf, size_t cap)
{
    if (sc->load == SIM_LOAD_LOGNORMAL) {
        snprintf(buf, cap, "lognormal (sigma %.2f)", sc->sigma);
    } else if (sc->load == SIM_LOAD_ZIPF) {
        snprintf(buf, cap, "zipf (s %.2f)", sc->zipf_s);
    } else if (sc->load == SIM_LOAD_UNIFORM) {
        snprintf(buf, cap, "uniform [0.5, 1.5)");
    } else {
        snprintf(buf, cap, "equal");
    }
    return buf;
}

static void sim_events_text(const sim_scenario *sc, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sc->nevents && len < cap; i++) {
        const sim_event *e = &sc->events[i];
        int w;
        if (e->count > 0) {
            w = snprintf(buf + len, cap - len, "%s%s:%u", i ? "," : "", sim_event_name(e->kind),
                         e->count);
        } else {
            w = snprintf(buf + len, cap - len, "%s%s", i ? "," : "", sim_event_name(e->kind));
        }
        if (w < 0) {
            break;
        }
        len += (size_t)w;
    }
}

static double sim_mb(long long bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

/* The step of a run at index i, or NULL when the run stopped before it. */
static const sim_step *sim_step_at(const sim_run *r, size_t i)
{
    return i < r->nsteps ? &r->steps[i] : NULL;
}

void sim_report_table(FILE *out, const sim_scenario *sc, const sim_run *runs, size_t nruns)
{
    char buf[64];
    char events[512];
    size_t nsteps = 0;

    sim_events_text(sc, events, sizeof events);
    fprintf(out,
            "shardz-sim: %zu partitions x %u replicas, %zu nodes in %u zones, capacity %s%s, "
            "load %s, seed %llu, %u hash slots, %ld cores\n",
            sc->partitions, sc->replicas, sc->nodes, sc->zones, sim_cap_name(sc->cap),
            sc->headroom > 0.0 ? " (hard limit)" : "", sim_load_desc(sc, buf, sizeof buf),
            (unsigned long long)sc->seed, sim_hash_slots(sc), simkit_cores());
    fprintf(out, "events: %s\n", sc->nevents > 0 ? events : "(none)");
    fprintf(out,
            "time: the step's library calls (wall clock); moves: replica moves in the plan; "
            "bound: the fewest\nreplicas that must move (initial: P*R; join: what the new nodes "
            "must receive for balance by\ncount; leave, zoneloss, drain: what those nodes held); "
            "load/bound: the same in load (with unequal\nloads moving heavy replicas can beat "
            "the count bound); balance: over alive nodes, each against\nits fair share, by "
            "replica count and by load; heap: what the sharder holds (malloc level).\n");

    for (size_t k = 0; k < nruns; k++) {
        if (runs[k].nsteps > nsteps) {
            nsteps = runs[k].nsteps;
        }
    }
    for (size_t i = 0; i < nsteps; i++) {
        const sim_step *ref = NULL;
        for (size_t k = 0; k < nruns && ref == NULL; k++) {
            const sim_step *s = sim_step_at(&runs[k], i);
            if (s != NULL && s->rc == 0) {
                ref = s;
            }
        }
        fprintf(out, "\nstep %zu: %s", i, ref != NULL ? ref->label : "?");
        if (ref != NULL) {
            fprintf(out,
                    "  (%zu nodes alive, %zu replicas, mean load per node %.1f, "
                    "largest partition %.2f)",
                    ref->eligible_nodes, ref->replicas, ref->mean_load, ref->max_part_load);
            /* Count balance is the goal only when loads are equal (else load balance is). */
            int by_count = sc->load == SIM_LOAD_EQUAL;
            if (by_count && ref->cnt_best_ratio >= 0.0) {
                fprintf(out, "\n  best count balance the zone rule allows: max/mean %.3f",
                        ref->cnt_best_ratio);
            }
            if (by_count && ref->cnt_best_ratio >= 0.0 && ref->cnt_best_spread >= 0.0) {
                fprintf(out, ", max-min %.2f (+1 for whole replicas)", ref->cnt_best_spread);
            }
        }
        fprintf(out, "\n  %-8s %9s %8s %8s %6s %6s | %8s %7s | %8s %8s | %5s %7s | %6s %6s\n", "",
                "", "", "", "moves/", "load/", "count", "count", "load", "load", "zone", "", "heap",
                "peak");
        fprintf(out, "  %-8s %9s %8s %8s %6s %6s | %8s %7s | %8s %8s | %5s %7s | %6s %6s\n", "kind",
                "time ms", "moves", "bound", "bound", "bound", "max/mean", "max-min", "max/mean",
                "max-min", "viol", "missing", "MB", "RSS MB");
        for (size_t k = 0; k < nruns; k++) {
            const sim_step *s = sim_step_at(&runs[k], i);
            if (s == NULL) {
                fprintf(out, "  %-8s (not run: %s)\n", runs[k].kind, runs[k].error);
                continue;
            }
            if (s->rc != 0) {
                fprintf(out, "  %-8s failed: %s: %s\n", runs[k].kind, s->failed_call,
                        shardz_strerror(s->rc));
                continue;
            }
            char bound[24], ratio[16], lratio[16];
            if (s->bound >= 0) {
                snprintf(bound, sizeof bound, "%lld", s->bound);
            } else {
                snprintf(bound, sizeof bound, "-");
            }
            if (s->bound > 0) {
                snprintf(ratio, sizeof ratio, "%.3f", (double)s->moves / (double)s->bound);
            } else {
                snprintf(ratio, sizeof ratio, "-");
            }
            if (s->load_bound > 0.0) {
                snprintf(lratio, sizeof lratio, "%.3f", s->load_moved / s->load_bound);
            } else {
                snprintf(lratio, sizeof lratio, "-");
            }
            fprintf(out,
                    "  %-8s %9.2f %8zu %8s %6s %6s | %8.3f %7.2f | %8.3f %8.2f | %5zu %7zu | "
                    "%6.1f %6.1f\n",
                    runs[k].kind, s->ms, s->moves, bound, ratio, lratio, s->cnt_ratio,
                    s->cnt_spread, s->load_ratio, s->load_spread, s->zone_violations, s->missing,
                    s->heap_bytes >= 0 ? sim_mb(s->heap_bytes) : -1.0,
                    (double)s->maxrss_kb / 1024.0);
        }
        for (size_t k = 0; k < nruns; k++) {
            const sim_step *s = sim_step_at(&runs[k], i);
            if (s == NULL || s->rc != 0) {
                continue;
            }
            fprintf(out, "  %-8s reasons:", runs[k].kind);
            int any = 0;
            for (int r = 0; r < SHARDZ_REASON__COUNT; r++) {
                if (s->by_reason[r] > 0) {
                    fprintf(out, "%s %s %zu", any ? "," : "", shardz_reason_name((shardz_reason)r),
                            s->by_reason[r]);
                    any = 1;
                }
            }
            fprintf(out, "%s", any ? "" : " none");
            if (s->errors > 0) {
                fprintf(out, "   !! %zu failed checks: %s", s->errors, s->note);
            } else if (s->note[0] != '\0') {
                fprintf(out, "   note: %s", s->note);
            }
            fprintf(out, "\n");
        }
    }

    fprintf(out, "\nsummary\n  %-8s %10s %10s %10s %8s %7s  %s\n", "kind", "time ms", "moves",
            "bound", "checks", "steps", "status");
    for (size_t k = 0; k < nruns; k++) {
        const sim_run *r = &runs[k];
        double ms = 0.0;
        size_t moves = 0, errors = 0;
        long long bound = 0;
        for (size_t i = 0; i < r->nsteps; i++) {
            ms += r->steps[i].ms;
            moves += r->steps[i].moves;
            errors += r->steps[i].errors;
            bound += r->steps[i].bound > 0 ? r->steps[i].bound : 0;
        }
        fprintf(out, "  %-8s %10.2f %10zu %10lld %8s %7zu  %s\n", r->kind, ms, moves, bound,
                errors > 0 ? "FAILED" : "ok", r->nsteps, r->status == 0 ? "completed" : r->error);
    }
}

/* Writes s as a JSON string (the texts here are ASCII, but escape anyway). */
static void sim_json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            fprintf(out, "\\%c", ch);
        } else if (ch < 0x20) {
            fprintf(out, "\\u%04x", ch);
        } else {
            fputc(ch, out);
        }
    }
    fputc('"', out);
}

static void sim_json_step(FILE *out, const sim_step *s)
{
    fprintf(out, "{\"step\": ");
    sim_json_str(out, s->label);
    if (s->rc != 0) {
        fprintf(out, ", \"ok\": false, \"failed_call\": ");
        sim_json_str(out, s->failed_call);
        fprintf(out, ", \"error\": ");
        sim_json_str(out, shardz_err_name(s->rc));
        fprintf(out, ", \"message\": ");
        sim_json_str(out, shardz_strerror(s->rc));
        fprintf(out, "}");
        return;
    }
    fprintf(out, ", \"ok\": true, \"time_ms\": %.3f, \"plan_ms\": %.3f, \"moves\": %zu", s->ms,
            s->plan_ms, s->moves);
    if (s->bound >= 0) {
        fprintf(out, ", \"lower_bound\": %lld", s->bound);
    } else {
        fprintf(out, ", \"lower_bound\": null");
    }
    fprintf(out, ", \"load_moved\": %.3f", s->load_moved);
    if (s->load_bound >= 0.0) {
        fprintf(out, ", \"load_lower_bound\": %.3f", s->load_bound);
    } else {
        fprintf(out, ", \"load_lower_bound\": null");
    }
    fprintf(out, ", \"moves_by_reason\": {");
    int any = 0;
    for (int r = 0; r < SHARDZ_REASON__COUNT; r++) {
        if (s->by_reason[r] > 0) {
            fprintf(out, "%s\"%s\": %zu", any ? ", " : "", shardz_reason_name((shardz_reason)r),
                    s->by_reason[r]);
            any = 1;
        }
    }
    fprintf(out,
            "}, \"repeat_moves\": %zu, \"eligible_nodes\": %zu, \"replicas\": %zu, "
            "\"mean_load\": %.4f, \"max_partition_load\": %.4f, \"count_max_over_mean\": %.5f, "
            "\"count_max_minus_min\": %.4f, \"load_max_over_mean\": %.5f, "
            "\"load_max_minus_min\": %.4f, \"count_best_max_over_mean\": %.5f, "
            "\"count_best_max_minus_min\": %.4f, \"zone_violations\": %zu, \"missing\": %zu, "
            "\"over_capacity\": %zu, \"plan_missing\": %zu, \"library_missing\": %zu, "
            "\"library_zone_violations\": %zu, \"failed_checks\": %zu, \"notes\": ",
            s->repeat_moves, s->eligible_nodes, s->replicas, s->mean_load, s->max_part_load,
            s->cnt_ratio, s->cnt_spread, s->load_ratio, s->load_spread, s->cnt_best_ratio,
            s->cnt_best_spread, s->zone_violations, s->missing, s->over_capacity, s->plan_missing,
            s->lib_missing, s->lib_zone_violations, s->errors);
    sim_json_str(out, s->note);
    fprintf(out, ", \"peak_rss_kb\": %ld, \"heap_bytes\": %lld, \"plan_heap_bytes\": %lld",
            s->maxrss_kb, s->heap_bytes, s->plan_bytes);
    if (s->heap_bytes >= 0 && s->replicas > 0) {
        fprintf(out, ", \"heap_bytes_per_replica\": %.2f",
                (double)s->heap_bytes / (double)s->replicas);
    }
    fprintf(out, "}");
}

void sim_report_json(FILE *out, const sim_scenario *sc, const sim_run *runs, size_t nruns)
{
    char events[512];

    sim_events_text(sc, events, sizeof events);
    fprintf(out,
            "{\"scenario\": {\"partitions\": %zu, \"replicas\": %u, \"nodes\": %zu, "
            "\"zones\": %u, \"capacity\": \"%s\", \"headroom\": %.3f, \"load\": \"%s\", "
            "\"sigma\": %.3f, \"zipf_s\": %.3f, \"band\": %.3f, \"seed\": %llu, "
            "\"hash_slots\": %u, \"events\": ",
            sc->partitions, sc->replicas, sc->nodes, sc->zones, sim_cap_name(sc->cap), sc->headroom,
            sim_load_name(sc->load), sc->sigma, sc->zipf_s, sc->band, (unsigned long long)sc->seed,
            sim_hash_slots(sc));
    sim_json_str(out, events);
    fprintf(out, "},\n \"cores\": %ld,\n \"runs\": [", simkit_cores());
    for (size_t k = 0; k < nruns; k++) {
        const sim_run *r = &runs[k];
        fprintf(out, "%s\n  {\"kind\": ", k ? "," : "");
        sim_json_str(out, r->kind);
        fprintf(out, ", \"completed\": %s, \"error\": ", r->status == 0 ? "true" : "false");
        sim_json_str(out, r->error);
        fprintf(out, ", \"steps\": [");
        for (size_t i = 0; i < r->nsteps; i++) {
            fprintf(out, "%s\n    ", i ? "," : "");
            sim_json_step(out, &r->steps[i]);
        }
        fprintf(out, "]}");
    }
    fprintf(out, "\n]}\n");
}
