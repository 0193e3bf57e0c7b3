/* bench_lookup: key -> partition lookups of the "hash" kind (shardz_sharder_partition_for_key),
 * in ns per lookup over many distinct keys, beside the cost of hashing alone (shardz_key_slot)
 * and of a full key -> nodes route (partition_for_key + nodes_of_partition). Checks first that
 * the answers agree with the slot table and that hash tags colocate keys. Skips with a message
 * when the kind is not available. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shardz/error.h"
#include "shardz/hash.h"
#include "shardz/placement.h"
#include "sim/simkit.h"

#define L_KEY_STRIDE 24

typedef struct {
    size_t partitions, nodes, keys, lookups;
    unsigned replicas;
    uint32_t slots;
} l_params;

/* Keys "user:<n>" at a fixed stride, with their lengths. */
typedef struct {
    char *buf;
    size_t *len;
    size_t n;
} l_keys;

static const char *l_key(const l_keys *k, size_t i)
{
    return k->buf + i * L_KEY_STRIDE;
}

static int l_setup(const l_params *lp, shardz_sharder **out)
{
    shardz_sharder_config cfg;
    shardz_sharder *s = NULL;
    shardz_node_spec *nodes = calloc(lp->nodes, sizeof *nodes);
    shardz_partition_spec *parts = calloc(lp->partitions, sizeof *parts);
    char(*nids)[16] = calloc(lp->nodes, sizeof *nids);
    char(*pids)[16] = calloc(lp->partitions, sizeof *pids);
    static const char *const zones[3] = {"z0", "z1", "z2"};
    shardz_plan *plan = NULL;
    int rc = SHARDZ_ENOMEM;

    if (nodes == NULL || parts == NULL || nids == NULL || pids == NULL) {
        goto out;
    }
    memset(&cfg, 0, sizeof cfg);
    cfg.kind = "hash";
    cfg.replicas = lp->replicas;
    cfg.slots = lp->slots;
    rc = shardz_sharder_new(&cfg, &s);
    if (rc != 0) {
        fprintf(stderr, "sharder_new(hash): %s\n", shardz_strerror(rc));
        goto out;
    }
    for (size_t i = 0; i < lp->nodes; i++) {
        snprintf(nids[i], sizeof nids[i], "n%05u", (unsigned)i);
        nodes[i].id = nids[i];
        nodes[i].zone = zones[i % 3];
        nodes[i].state = SHARDZ_NODE_ALIVE;
    }
    for (size_t i = 0; i < lp->partitions; i++) {
        snprintf(pids[i], sizeof pids[i], "p%06u", (unsigned)i);
        parts[i].id = pids[i];
        parts[i].replicas = lp->replicas;
    }
    rc = shardz_sharder_register_nodes(s, nodes, lp->nodes);
    if (rc == 0) {
        rc = shardz_sharder_register_partitions(s, parts, lp->partitions);
    }
    if (rc == 0) {
        rc = shardz_sharder_rebalance(s, 0, &plan);
    }
    if (rc != 0) {
        fprintf(stderr, "setting up the hash sharder: %s\n", shardz_strerror(rc));
        goto out;
    }
    *out = s;
    s = NULL;
out:
    shardz_plan_free(plan);
    shardz_sharder_free(s);
    free(pids);
    free(nids);
    free(parts);
    free(nodes);
    return rc;
}

/* Checks partition_for_key against the slot table for every key, and hash-tag colocation.
 * Returns the number of disagreements, or -1 when the table cannot be read. */
static long l_verify(const shardz_sharder *s, const l_keys *k, uint32_t slots)
{
    shardz_slot_range *ranges = NULL;
    const char **table = calloc(slots, sizeof *table);
    size_t n = 0;
    long bad = -1;

    if (table == NULL || shardz_sharder_slot_ranges(s, NULL, NULL, 0, &n) != 0 || n == 0) {
        goto out;
    }
    ranges = calloc(n, sizeof *ranges);
    if (ranges == NULL || shardz_sharder_slot_ranges(s, NULL, ranges, n, &n) != 0) {
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        for (uint32_t sl = ranges[i].lo; sl < ranges[i].hi && sl < slots; sl++) {
            table[sl] = ranges[i].partition;
        }
    }
    bad = 0;
    for (size_t i = 0; i < k->n; i++) {
        const char *p = NULL;
        const char *want = table[shardz_key_slot(l_key(k, i), k->len[i], slots)];
        if (shardz_sharder_partition_for_key(s, l_key(k, i), k->len[i], &p) != 0 || p == NULL ||
            want == NULL || strcmp(p, want) != 0) {
            bad++;
        }
    }
    for (unsigned u = 0; u < 1000; u++) {
        char a[48], b[48];
        const char *pa = NULL, *pb = NULL;
        int la = snprintf(a, sizeof a, "{user:%u}:cart", u);
        int lb = snprintf(b, sizeof b, "orders:{user:%u}", u);
        if (shardz_sharder_partition_for_key(s, a, (size_t)la, &pa) != 0 ||
            shardz_sharder_partition_for_key(s, b, (size_t)lb, &pb) != 0 || pa == NULL ||
            pb == NULL || strcmp(pa, pb) != 0) {
            bad++;
        }
    }
out:
    free(ranges);
    free(table);
    return bad;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"partitions", required_argument, NULL, 'p'},
        {"nodes", required_argument, NULL, 'n'},
        {"keys", required_argument, NULL, 'k'},
        {"lookups", required_argument, NULL, 'l'},
        {"slots", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    l_params lp = {1024, 100, 1000000, 20000000, 3, 0};
    l_keys k = {NULL, NULL, 0};
    shardz_sharder *s = NULL;
    shardz_replica reps[SHARDZ_MAX_REPLICAS];
    uint32_t slots = 0;
    uint64_t sink = 0;
    int c, rc = 1;

    while ((c = getopt_long(argc, argv, "p:n:k:l:S:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            lp.partitions = strtoull(optarg, NULL, 10);
            break;
        case 'n':
            lp.nodes = strtoull(optarg, NULL, 10);
            break;
        case 'k':
            lp.keys = strtoull(optarg, NULL, 10);
            break;
        case 'l':
            lp.lookups = strtoull(optarg, NULL, 10);
            break;
        case 'S':
            lp.slots = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        default:
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: bench_lookup [--partitions N] [--nodes N] [--keys N] [--lookups N] "
                    "[--slots S]\ndefaults: 1024 partitions x 3 replicas on 100 nodes, 1000000 "
                    "distinct keys, 20000000 lookups,\nthe default slot count\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (lp.partitions == 0 || lp.nodes < lp.replicas || lp.keys == 0 || lp.lookups == 0 ||
        lp.partitions > 1000000 || lp.keys > 100000000) {
        fprintf(stderr, "bench_lookup: bad parameters\n");
        return 2;
    }

    printf("bench_lookup: \"hash\" kind, %zu partitions x %u replicas on %zu nodes, %zu distinct "
           "keys \"user:<n>\", %zu lookups\n",
           lp.partitions, lp.replicas, lp.nodes, lp.keys, lp.lookups);
    printf("machine: %ld cores online (single-threaded run)\n", simkit_cores());
    if (l_setup(&lp, &s) != 0) {
        printf("skipped: the \"hash\" kind is not available in this build\n");
        return 0;
    }
    if (shardz_sharder_slot_count(s, &slots) != 0 || slots == 0) {
        printf("skipped: shardz_sharder_slot_count failed\n");
        rc = 0;
        goto out;
    }
    printf("slots: %u\n", slots);

    k.n = lp.keys;
    k.buf = malloc(lp.keys * L_KEY_STRIDE);
    k.len = malloc(lp.keys * sizeof *k.len);
    if (k.buf == NULL || k.len == NULL) {
        fprintf(stderr, "bench_lookup: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < lp.keys; i++) {
        int n = snprintf(k.buf + i * L_KEY_STRIDE, L_KEY_STRIDE, "user:%u", (unsigned)i);
        k.len[i] = (size_t)n;
    }
    {
        const char *p = NULL;
        int lrc = shardz_sharder_partition_for_key(s, l_key(&k, 0), k.len[0], &p);
        if (lrc != 0) {
            printf("skipped: partition_for_key: %s\n", shardz_strerror(lrc));
            rc = 0;
            goto out;
        }
    }
    long bad = l_verify(s, &k, slots);
    printf("check: partition_for_key agrees with the slot table for every key and hash tags "
           "colocate: %s",
           bad == 0 ? "yes\n" : "NO");
    if (bad != 0) {
        printf(" (%ld disagreements%s)\n", bad, bad < 0 ? ", slot table unreadable" : "");
    }

    /* Hashing alone. */
    uint64_t w0 = simkit_wall_ns(), c0 = simkit_cpu_ns();
    for (size_t i = 0, j = 0; i < lp.lookups; i++) {
        sink += shardz_key_slot(l_key(&k, j), k.len[j], slots);
        j = j + 1 == lp.keys ? 0 : j + 1;
    }
    double hash_wall = (double)(simkit_wall_ns() - w0) / (double)lp.lookups;
    double hash_cpu = (double)(simkit_cpu_ns() - c0) / (double)lp.lookups;

    /* key -> partition. */
    w0 = simkit_wall_ns();
    c0 = simkit_cpu_ns();
    for (size_t i = 0, j = 0; i < lp.lookups; i++) {
        const char *p = NULL;
        (void)shardz_sharder_partition_for_key(s, l_key(&k, j), k.len[j], &p);
        sink += (uintptr_t)p;
        j = j + 1 == lp.keys ? 0 : j + 1;
    }
    double part_wall = (double)(simkit_wall_ns() - w0) / (double)lp.lookups;
    double part_cpu = (double)(simkit_cpu_ns() - c0) / (double)lp.lookups;

    /* key -> nodes: partition_for_key + nodes_of_partition (a tenth of the lookups). */
    size_t nroute = lp.lookups / 10 > 0 ? lp.lookups / 10 : 1;
    w0 = simkit_wall_ns();
    c0 = simkit_cpu_ns();
    for (size_t i = 0, j = 0; i < nroute; i++) {
        const char *p = NULL;
        size_t n = 0;
        if (shardz_sharder_partition_for_key(s, l_key(&k, j), k.len[j], &p) == 0 &&
            shardz_sharder_nodes_of_partition(s, p, reps, SHARDZ_MAX_REPLICAS, &n) == 0 && n > 0) {
            sink += (uintptr_t)reps[0].node;
        }
        j = j + 1 == lp.keys ? 0 : j + 1;
    }
    double route_wall = (double)(simkit_wall_ns() - w0) / (double)nroute;
    double route_cpu = (double)(simkit_cpu_ns() - c0) / (double)nroute;

    printf("%-44s %10s %10s\n", "", "wall ns", "cpu ns");
    printf("%-44s %10.2f %10.2f\n", "shardz_key_slot (hash only)", hash_wall, hash_cpu);
    printf("%-44s %10.2f %10.2f\n", "partition_for_key (key -> partition)", part_wall, part_cpu);
    printf("%-44s %10.2f %10.2f\n", "  minus hashing (the table read)", part_wall - hash_wall,
           part_cpu - hash_cpu);
    printf("%-44s %10.2f %10.2f\n", "partition_for_key + nodes_of_partition", route_wall,
           route_cpu);
    printf("(checksum %llx)\n", (unsigned long long)sink);
    rc = bad == 0 ? 0 : 1;
out:
    free(k.len);
    free(k.buf);
    shardz_sharder_free(s);
    return rc;
}
