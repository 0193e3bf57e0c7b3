/* bench_range: key -> range lookups of a "range" namespace, in libshardz's router snapshot
 * (binary search over the routed ranges) and in the placement library's range table
 * (include/shardz/range.h), plus building each from N ranges.
 * Usage: bench_range [--ranges N] [--lookups M] [--keys K] */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shardz/range.h"
#include "shardz/router.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Range i starts at "user:" + 6 digits of i * 100 (range 0 at -inf). */
static void lo_of(int i, char *buf, size_t cap)
{
    if (i == 0) {
        buf[0] = '\0';
    } else {
        snprintf(buf, cap, "user:%06d", (i * 100) % 1000000);
    }
}

int main(int argc, char **argv)
{
    int nranges = 10000, nkeys = 100000;
    long lookups = 20000000;
    static const struct option opts[] = {{"ranges", 1, NULL, 'r'},
                                         {"lookups", 1, NULL, 'l'},
                                         {"keys", 1, NULL, 'k'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'r') {
            nranges = atoi(optarg);
        } else if (c == 'l') {
            lookups = atol(optarg);
        } else if (c == 'k') {
            nkeys = atoi(optarg);
        } else {
            return 2;
        }
    }
    if (nranges < 1 || nranges > 10000 || nkeys < 1 || lookups < 1) {
        fprintf(stderr, "ranges 1-10000, keys and lookups >= 1\n");
        return 2;
    }
    size_t cap = (size_t)nranges * 160 + 128, n = 0;
    char *state = malloc(cap), lo[32], hi[32];
    char(*keys)[16] = malloc((size_t)nkeys * sizeof *keys);
    shardz_key_range *kr = calloc((size_t)nranges, sizeof *kr);
    char(*ids)[16] = malloc((size_t)nranges * sizeof *ids);
    char(*los)[16] = malloc((size_t)nranges * sizeof *los);
    shardz_partition_spec *ps = calloc((size_t)nranges, sizeof *ps);
    if (!state || !keys || !kr || !ids || !los || !ps) {
        return 1;
    }
    n += (size_t)snprintf(state + n, cap - n,
                          "{\"revision\": 1, \"sharder\": \"range\", \"partitions\": [");
    for (int i = 0; i < nranges; i++) {
        lo_of(i, lo, sizeof lo);
        if (i + 1 == nranges) {
            snprintf(hi, sizeof hi, "null");
        } else {
            snprintf(hi, sizeof hi, "\"user:%06d\"", ((i + 1) * 100) % 1000000);
        }
        n += (size_t)snprintf(state + n, cap - n,
                              "%s{\"id\": \"r%d\", \"range\": {\"lo\": \"%s\", \"hi\": %s}, "
                              "\"replicas\": [{\"node\": \"w%d\", \"address\": \"127.0.0.1:1\"}]}",
                              i ? "," : "", i, lo, hi, i % 100);
        snprintf(ids[i], sizeof ids[i], "r%d", i);
        lo_of(i, los[i], sizeof los[i]);
        ps[i].id = ids[i];
    }
    snprintf(state + n, cap - n, "]}");
    for (int i = 0; i < nkeys; i++) { /* spread over the key space, in no order */
        snprintf(keys[i], sizeof keys[i], "user:%06d", (int)(((long)i * 7919) % 1000000));
    }

    shardz_snapshot *s = NULL;
    double t0 = now_s();
    if (shardz_snapshot_from_state(state, strlen(state), 0, &s) != 0) {
        return 1;
    }
    double t1 = now_s();
    const shardz_route *rt;
    uintptr_t sink = 0;
    for (long i = 0; i < lookups; i++) {
        const char *k = keys[i % nkeys];
        shardz_snapshot_lookup_key(s, k, strlen(k), NULL, &rt);
        sink += (uintptr_t)rt;
    }
    double t2 = now_s();
    printf("router snapshot, %d ranges: build %.1f ms, lookup_key %.1f ns\n", nranges,
           (t1 - t0) * 1e3, (t2 - t1) / (double)lookups * 1e9);

    shardz_sharder *sh = NULL;
    shardz_sharder_config cfg = {.kind = "range"};
    shardz_node_spec node = {.id = "n1", .state = SHARDZ_NODE_ALIVE};
    if (shardz_sharder_new(&cfg, &sh) != 0 || shardz_sharder_register_nodes(sh, &node, 1) != 0 ||
        shardz_sharder_register_partitions(sh, ps, (size_t)nranges) != 0) {
        return 1;
    }
    for (int i = 0; i < nranges; i++) {
        const char *h = i + 1 < nranges ? los[i + 1] : "";
        kr[i] = (shardz_key_range){ids[i], los[i], strlen(los[i]), h, strlen(h)};
    }
    t0 = now_s();
    if (shardz_sharder_range_restore(sh, kr, (size_t)nranges) != 0) {
        return 1;
    }
    t1 = now_s();
    const char *pid;
    for (long i = 0; i < lookups; i++) {
        const char *k = keys[i % nkeys];
        shardz_sharder_partition_for_key(sh, k, strlen(k), &pid);
        sink += (uintptr_t)pid;
    }
    t2 = now_s();
    printf("placement range table, %d ranges: restore %.2f ms, partition_for_key %.1f ns\n",
           nranges, (t1 - t0) * 1e3, (t2 - t1) / (double)lookups * 1e9);
    shardz_sharder_free(sh);
    shardz_snapshot_release(s);
    free(state);
    free(keys);
    free(kr);
    free(ids);
    free(los);
    free(ps);
    return sink == 1; /* keeps the lookups */
}
