/* bench_router: key -> partition lookups in libshardz's router cache (include/shardz/router.h).
 * Builds a synthetic /state of a "hash" namespace (P partitions x R replicas on N nodes, slots
 * split in contiguous runs), checks every key lookup against shardz_key_slot and the runs, then
 * prints ns per lookup: hashing alone, the slot read alone, a snapshot lookup, the router's
 * lock-free lookup on one thread, and on every core at once (quiet, then with a new snapshot
 * swapped in every 10 ms). Prints the core count. */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "shardz/error.h"
#include "shardz/hash.h"
#include "shardz/router.h"

#define B_KEY_STRIDE 24

typedef struct {
    size_t partitions, nodes, keys, lookups;
    unsigned replicas, threads;
    uint32_t slots;
} b_params;

static uint64_t b_ns(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The synthetic state: partition i holds slots [i*S/P, (i+1)*S/P). */
static char *b_state(const b_params *bp, int64_t revision)
{
    json_t *root = json_pack("{s:I, s:i, s:s, s:[], s:[]}", "revision", (json_int_t)revision,
                             "slots", (int)bp->slots, "sharder", "hash", "nodes", "partitions");
    json_t *nodes = json_object_get(root, "nodes");
    json_t *parts = json_object_get(root, "partitions");
    char *out;

    for (size_t i = 0; i < bp->nodes; i++) {
        char id[32];
        char addr[32];
        snprintf(id, sizeof id, "n%05zu", i);
        snprintf(addr, sizeof addr, "10.0.%zu.%zu:9100", i / 250, i % 250);
        json_array_append_new(
            nodes, json_pack("{s:s, s:s, s:s}", "id", id, "address", addr, "state", "alive"));
    }
    for (size_t i = 0; i < bp->partitions; i++) {
        char id[32];
        uint32_t lo = (uint32_t)((uint64_t)i * bp->slots / bp->partitions);
        uint32_t hi = (uint32_t)((uint64_t)(i + 1) * bp->slots / bp->partitions);
        json_t *reps = json_array();
        snprintf(id, sizeof id, "p%06zu", i);
        for (unsigned r = 0; r < bp->replicas; r++) {
            char nid[32];
            snprintf(nid, sizeof nid, "n%05zu", (i + r) % bp->nodes);
            json_array_append_new(reps, json_pack("{s:s, s:i, s:s, s:s}", "node", nid, "slot",
                                                  (int)r, "role", r == 0 ? "primary" : "secondary",
                                                  "state", "serving"));
        }
        json_array_append_new(parts, json_pack("{s:s, s:I, s:[[i, i]], s:o}", "id", id,
                                               "generation", (json_int_t)revision, "slots", (int)lo,
                                               (int)hi, "replicas", reps));
    }
    out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return out;
}

typedef struct {
    const b_params *bp;
    const char *keys;
    const size_t *len;
    shardz_router *r;
    atomic_bool *go;
    atomic_bool fin; /* set when the thread's lookups are done */
    double ns;
    uint64_t sink;
} b_thread;

static void *b_reader(void *arg)
{
    b_thread *t = arg;
    const shardz_route *rt = NULL;
    uint64_t t0;

    while (!atomic_load(t->go)) {
    }
    t0 = b_ns(CLOCK_MONOTONIC);
    for (size_t i = 0, j = 0; i < t->bp->lookups; i++) {
        (void)shardz_router_lookup_key(t->r, t->keys + j * B_KEY_STRIDE, t->len[j], NULL, &rt);
        t->sink += (uintptr_t)rt;
        j = j + 1 == t->bp->keys ? 0 : j + 1;
    }
    t->ns = (double)(b_ns(CLOCK_MONOTONIC) - t0) / (double)t->bp->lookups;
    atomic_store(&t->fin, true);
    shardz_router_thread_release();
    return NULL;
}

/* Every thread looks up lookups keys at once; with swap, the main thread installs a new
 * snapshot every 10 ms meanwhile. Returns the mean ns per lookup per thread. */
static double b_parallel(const b_params *bp, shardz_router *r, const char *keys, const size_t *len,
                         bool swap, int64_t *rev, uint64_t *sink, int *swaps)
{
    b_thread *t = calloc(bp->threads, sizeof *t);
    pthread_t *th = calloc(bp->threads, sizeof *th);
    atomic_bool go = false;
    double sum = 0;
    char *st = NULL;
    unsigned done = 0;

    *swaps = 0;
    for (unsigned i = 0; i < bp->threads; i++) {
        t[i] = (b_thread){.bp = bp, .keys = keys, .len = len, .r = r, .go = &go};
        atomic_init(&t[i].fin, false);
        pthread_create(&th[i], NULL, b_reader, &t[i]);
    }
    atomic_store(&go, true);
    if (swap) {
        /* Swap until every reader is done. */
        while (done < bp->threads) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            st = b_state(bp, ++*rev);
            if (shardz_router_load_state(r, st, strlen(st)) == 0) {
                ++*swaps;
            }
            free(st);
            done = 0;
            for (unsigned i = 0; i < bp->threads; i++) {
                done += atomic_load(&t[i].fin) ? 1u : 0u;
            }
        }
    }
    for (unsigned i = 0; i < bp->threads; i++) {
        pthread_join(th[i], NULL);
        sum += t[i].ns;
        *sink += t[i].sink;
    }
    free(t);
    free(th);
    return sum / bp->threads;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"partitions", required_argument, NULL, 'p'},
        {"nodes", required_argument, NULL, 'n'},
        {"replicas", required_argument, NULL, 'r'},
        {"keys", required_argument, NULL, 'k'},
        {"lookups", required_argument, NULL, 'l'},
        {"slots", required_argument, NULL, 'S'},
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    b_params bp = {1024, 100, 100000, 20000000, 3, 0, SHARDZ_HASH_SLOTS_DEFAULT};
    shardz_router_config rc_cfg;
    shardz_router *r = NULL;
    shardz_snapshot *snap = NULL;
    char *keys = NULL;
    size_t *len = NULL;
    uint32_t *slots = NULL;
    char *ids = NULL;
    char *st = NULL;
    uint64_t sink = 0;
    uint64_t t0;
    int64_t rev = 1;
    long bad = 0;
    int c;
    int swaps = 0;
    int rc = 1;

    while ((c = getopt_long(argc, argv, "p:n:r:k:l:S:t:h", opts, NULL)) != -1) {
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
        case 'k':
            bp.keys = strtoull(optarg, NULL, 10);
            break;
        case 'l':
            bp.lookups = strtoull(optarg, NULL, 10);
            break;
        case 'S':
            bp.slots = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 't':
            bp.threads = (unsigned)strtoul(optarg, NULL, 10);
            break;
        default:
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: bench_router [--partitions N] [--nodes N] [--replicas R] [--keys N] "
                    "[--lookups N] [--slots S] [--threads T]\ndefaults: 1024 partitions x 3 "
                    "replicas on 100 nodes, 16384 slots, 100000 distinct keys,\n20000000 lookups "
                    "per measurement, one thread per core for the parallel runs\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (bp.threads == 0) {
        bp.threads = cores > 0 ? (unsigned)cores : 1;
    }
    if (bp.partitions == 0 || bp.partitions > bp.slots || bp.nodes == 0 || bp.keys == 0 ||
        bp.lookups == 0 || bp.replicas == 0 || bp.replicas > 16 || bp.threads > 256 ||
        bp.slots < SHARDZ_HASH_SLOTS_MIN || bp.slots > SHARDZ_HASH_SLOTS_MAX ||
        (bp.slots & (bp.slots - 1)) != 0 || bp.keys > 100000000) {
        fprintf(stderr, "bench_router: bad parameters\n");
        return 2;
    }
    printf("bench_router: \"hash\" namespace, %zu partitions x %u replicas on %zu nodes, %u "
           "slots, %zu distinct keys \"user:<n>\", %zu lookups per run\n",
           bp.partitions, bp.replicas, bp.nodes, bp.slots, bp.keys, bp.lookups);
    printf("machine: %ld cores online; parallel runs use %u threads\n", cores, bp.threads);

    keys = malloc(bp.keys * B_KEY_STRIDE);
    len = malloc(bp.keys * sizeof *len);
    slots = malloc(bp.keys * sizeof *slots);
    ids = malloc(bp.partitions * 8);
    st = b_state(&bp, rev);
    if (keys == NULL || len == NULL || slots == NULL || ids == NULL || st == NULL) {
        fprintf(stderr, "bench_router: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < bp.partitions; i++) {
        snprintf(ids + i * 8, 8, "p%06u", (unsigned)(i % 1000000));
    }
    for (size_t i = 0; i < bp.keys; i++) {
        len[i] = (size_t)snprintf(keys + i * B_KEY_STRIDE, B_KEY_STRIDE, "user:%zu", i);
        slots[i] = shardz_key_slot(keys + i * B_KEY_STRIDE, len[i], bp.slots);
    }

    /* Snapshot build time, from JSON text. */
    t0 = b_ns(CLOCK_MONOTONIC);
    if (shardz_snapshot_from_state(st, strlen(st), 0, &snap) != 0) {
        fprintf(stderr, "bench_router: the synthetic state was refused\n");
        goto out;
    }
    printf("snapshot from a %zu-byte state: %.2f ms\n", strlen(st),
           (double)(b_ns(CLOCK_MONOTONIC) - t0) / 1e6);
    memset(&rc_cfg, 0, sizeof rc_cfg);
    rc_cfg.coordinator = "127.0.0.1:1"; /* never started: states are loaded by hand */
    rc_cfg.ns = "bench";
    if (shardz_router_create(&rc_cfg, &r) != 0 ||
        shardz_router_load_state(r, st, strlen(st)) != 0) {
        fprintf(stderr, "bench_router: router setup failed\n");
        goto out;
    }

    /* Check: every key's partition is the one whose run holds shardz_key_slot(key). */
    for (size_t i = 0; i < bp.keys; i++) {
        const shardz_route *a = NULL;
        const shardz_route *b = NULL;
        uint32_t sl = 0;
        char want[32];
        size_t p = (size_t)(((uint64_t)slots[i] * bp.partitions + bp.partitions - 1) / bp.slots);
        while (p > 0 && (uint64_t)p * bp.slots / bp.partitions > slots[i]) {
            p--;
        }
        while ((uint64_t)(p + 1) * bp.slots / bp.partitions <= slots[i]) {
            p++;
        }
        snprintf(want, sizeof want, "p%06zu", p);
        if (shardz_snapshot_lookup_key(snap, keys + i * B_KEY_STRIDE, len[i], &sl, &a) != 0 ||
            shardz_router_lookup_key(r, keys + i * B_KEY_STRIDE, len[i], NULL, &b) != 0 ||
            sl != slots[i] || strcmp(a->partition, want) != 0 || strcmp(b->partition, want) != 0 ||
            a->target != 0) {
            bad++;
        }
    }
    printf("check: router and snapshot lookups agree with shardz_key_slot and the slot runs for "
           "every key: %s\n",
           bad == 0 ? "yes" : "NO");

    printf("%-52s %10s %10s\n", "", "wall ns", "cpu ns");
#define B_RUN(label, body)                                                                         \
    do {                                                                                           \
        uint64_t w0 = b_ns(CLOCK_MONOTONIC);                                                       \
        uint64_t c0 = b_ns(CLOCK_THREAD_CPUTIME_ID);                                               \
        for (size_t i = 0, j = 0; i < bp.lookups; i++) {                                           \
            body;                                                                                  \
            j = j + 1 == bp.keys ? 0 : j + 1;                                                      \
        }                                                                                          \
        printf("%-52s %10.2f %10.2f\n", label,                                                     \
               (double)(b_ns(CLOCK_MONOTONIC) - w0) / (double)bp.lookups,                          \
               (double)(b_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / (double)bp.lookups);                 \
    } while (0)

    B_RUN("shardz_key_slot (hashing alone)",
          sink += shardz_key_slot(keys + j * B_KEY_STRIDE, len[j], bp.slots));
    B_RUN("snapshot_lookup_slot (after hashing: the table read)", {
        const shardz_route *rt = NULL;
        (void)shardz_snapshot_lookup_slot(snap, slots[j], &rt);
        sink += (uintptr_t)rt;
    });
    B_RUN("snapshot_lookup_key (hash + table read)", {
        const shardz_route *rt = NULL;
        (void)shardz_snapshot_lookup_key(snap, keys + j * B_KEY_STRIDE, len[j], NULL, &rt);
        sink += (uintptr_t)rt;
    });
    B_RUN("router_lookup_key (thread cache + hash + read)", {
        const shardz_route *rt = NULL;
        (void)shardz_router_lookup_key(r, keys + j * B_KEY_STRIDE, len[j], NULL, &rt);
        sink += (uintptr_t)rt;
    });
    B_RUN("router_lookup_partition (by id \"p000123\")", {
        const shardz_route *rt = NULL;
        (void)shardz_router_lookup_partition(r, ids + (j % bp.partitions) * 8, &rt);
        sink += (uintptr_t)rt;
    });
    printf("%-52s %10.2f\n", "router_lookup_key, all threads at once (per thread)",
           b_parallel(&bp, r, keys, len, false, &rev, &sink, &swaps));
    {
        double ns = b_parallel(&bp, r, keys, len, true, &rev, &sink, &swaps);
        char label[96];
        snprintf(label, sizeof label, "  same, a new snapshot every 10 ms (%d swaps)", swaps);
        printf("%-52s %10.2f\n", label, ns);
    }
    printf("(checksum %llx)\n", (unsigned long long)sink);
    rc = bad == 0 ? 0 : 1;
out:
    shardz_snapshot_release(snap);
    shardz_router_destroy(r);
    shardz_router_thread_release();
    free(st);
    free(ids);
    free(slots);
    free(len);
    free(keys);
    return rc;
}
