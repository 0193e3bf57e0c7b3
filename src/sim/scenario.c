/* Scenarios of the placement simulator: defaults, parsing of the event list and of the
 * distribution names, and the seeded draws of partition loads and node weights. Everything
 * here is deterministic for a given scenario, so every kind sees the same cluster and events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardz/hash.h"
#include "sim/sim.h"
#include "sim/simkit.h"

/* PRNG streams: one per purpose, so adding events never changes the initial loads. */
#define SIM_STREAM_LOADS 1u

void sim_scenario_defaults(sim_scenario *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->partitions = 100000;
    sc->replicas = 3;
    sc->nodes = 100;
    sc->zones = 3;
    sc->cap = SIM_CAP_EQUAL;
    sc->headroom = 0.0;
    sc->load = SIM_LOAD_LOGNORMAL;
    sc->sigma = 1.0;
    sc->zipf_s = 1.1;
    sc->band = 0.0;
    sc->seed = 1;
    (void)sim_parse_events("join:5,leave:3,zoneloss:1,loadshift,rebalance", sc);
}

static const struct {
    const char *name;
    sim_event_kind kind;
    unsigned dflt; /* count when none is given; 0: the event takes no count */
} sim_events[] = {
    {"initial", SIM_EV_INITIAL, 0},     {"join", SIM_EV_JOIN, 1},
    {"leave", SIM_EV_LEAVE, 1},         {"zoneloss", SIM_EV_ZONELOSS, 1},
    {"drain", SIM_EV_DRAIN, 1},         {"loadshift", SIM_EV_LOADSHIFT, 0},
    {"rebalance", SIM_EV_REBALANCE, 0},
};

const char *sim_event_name(sim_event_kind k)
{
    for (size_t i = 0; i < sizeof sim_events / sizeof sim_events[0]; i++) {
        if (sim_events[i].kind == k) {
            return sim_events[i].name;
        }
    }
    return "unknown";
}

static int sim_parse_one_event(const char *tok, size_t len, sim_event *ev)
{
    const char *colon = memchr(tok, ':', len);
    size_t namelen = colon != NULL ? (size_t)(colon - tok) : len;

    for (size_t i = 1; i < sizeof sim_events / sizeof sim_events[0]; i++) {
        if (strlen(sim_events[i].name) != namelen ||
            strncmp(sim_events[i].name, tok, namelen) != 0) {
            continue;
        }
        ev->kind = sim_events[i].kind;
        ev->count = sim_events[i].dflt;
        if (colon == NULL) {
            return 0;
        }
        if (sim_events[i].dflt == 0) {
            fprintf(stderr, "shardz-sim: event %s takes no count\n", sim_events[i].name);
            return -1;
        }
        char num[16];
        size_t nlen = len - namelen - 1;
        if (nlen == 0 || nlen >= sizeof num) {
            break;
        }
        memcpy(num, colon + 1, nlen);
        num[nlen] = '\0';
        char *end;
        unsigned long v = strtoul(num, &end, 10);
        if (*end != '\0' || v == 0 || v > 100000) {
            break;
        }
        ev->count = (unsigned)v;
        return 0;
    }
    fprintf(stderr,
            "shardz-sim: bad event '%.*s' (expected join[:k], leave[:k], zoneloss[:k], "
            "drain[:k], loadshift, rebalance)\n",
            (int)len, tok);
    return -1;
}

int sim_parse_events(const char *text, sim_scenario *sc)
{
    size_t n = 0;
    const char *p = text;

    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        if (len > 0) {
            if (n == SIM_MAX_EVENTS) {
                fprintf(stderr, "shardz-sim: at most %d events\n", SIM_MAX_EVENTS);
                return -1;
            }
            if (sim_parse_one_event(p, len, &sc->events[n]) != 0) {
                return -1;
            }
            n++;
        }
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    sc->nevents = n;
    return 0;
}

static const char *const sim_load_names[] = {"equal", "uniform", "lognormal", "zipf"};
static const char *const sim_cap_names[] = {"equal", "mixed"};

const char *sim_load_name(sim_load_dist d)
{
    return (unsigned)d < 4 ? sim_load_names[d] : "unknown";
}

const char *sim_cap_name(sim_cap_dist c)
{
    return (unsigned)c < 2 ? sim_cap_names[c] : "unknown";
}

int sim_parse_load(const char *text, sim_load_dist *out)
{
    for (unsigned i = 0; i < 4; i++) {
        if (strcmp(text, sim_load_names[i]) == 0) {
            *out = (sim_load_dist)i;
            return 0;
        }
    }
    return -1;
}

int sim_parse_cap(const char *text, sim_cap_dist *out)
{
    for (unsigned i = 0; i < 2; i++) {
        if (strcmp(text, sim_cap_names[i]) == 0) {
            *out = (sim_cap_dist)i;
            return 0;
        }
    }
    return -1;
}

void sim_draw_loads(const sim_scenario *sc, uint64_t stream, double *load)
{
    simkit_rng rng;
    size_t n = sc->partitions;

    simkit_rng_seed(&rng, sc->seed, SIM_STREAM_LOADS + 1000u * stream);
    switch (sc->load) {
    case SIM_LOAD_EQUAL:
        for (size_t i = 0; i < n; i++) {
            load[i] = 1.0;
        }
        return; /* exactly 1.0: no normalisation rounding */
    case SIM_LOAD_UNIFORM:
        for (size_t i = 0; i < n; i++) {
            load[i] = 0.5 + simkit_uniform(&rng);
        }
        break;
    case SIM_LOAD_LOGNORMAL:
        for (size_t i = 0; i < n; i++) {
            load[i] = simkit_lognormal(&rng, sc->sigma);
        }
        break;
    case SIM_LOAD_ZIPF:
        simkit_zipf_fill(&rng, load, n, sc->zipf_s);
        break;
    }
    simkit_normalise_mean(load, n);
}

double sim_node_weight(const sim_scenario *sc, size_t index)
{
    static const double mixed[3] = {1.0, 2.0, 4.0};
    size_t zones = sc->zones > 0 ? sc->zones : 1;

    if (sc->cap == SIM_CAP_EQUAL) {
        return 1.0;
    }
    /* Nodes go round-robin over zones; the weight changes every round so each zone gets
     * every size. */
    return mixed[(index / zones) % 3];
}

uint32_t sim_hash_slots(const sim_scenario *sc)
{
    uint32_t slots = SHARDZ_HASH_SLOTS_DEFAULT;

    if (sc->slots != 0) {
        return sc->slots;
    }
    /* Every partition needs a slot of its own. */
    while (slots < sc->partitions && slots < SHARDZ_HASH_SLOTS_MAX) {
        slots <<= 1;
    }
    return slots;
}
