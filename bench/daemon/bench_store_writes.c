/* bench_store_writes: writes per second to a store through the store API, one put per
 * transaction against puts batched 128 to a transaction (shardz_store_txn_batched), each write a
 * partition-assignment-sized record under a fresh key; optionally with the leader guard every
 * coordinator write carries. On etcd (--etcd URL, started by the caller) or SQLite (--sqlite DIR,
 * fsync full). Prints what it measured and the machine's core count. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shardz/error.h"
#include "shardz/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes n records "bench/<round>/<i>" (value of vbytes), per_txn to a transaction (1: one put
 * each, through shardz_store_put). Returns writes per second, or -1 on an error. */
static double run(shardz_store *st, int round, size_t n, size_t vbytes, size_t per_txn)
{
    char(*keys)[48] = calloc(n, sizeof *keys);
    shardz_op *ops = calloc(n, sizeof *ops);
    char *value = malloc(vbytes);
    double t0, rate = -1;
    int rc = 0;

    if (!keys || !ops || !value) {
        goto out;
    }
    memset(value, 'v', vbytes);
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "bench/%d/p%07zu", round, i);
        ops[i] = (shardz_op){SHARDZ_OP_PUT, keys[i], strlen(keys[i]), value, vbytes, 0};
    }
    t0 = now_s();
    if (per_txn == 1) {
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = shardz_store_put(st, keys[i], strlen(keys[i]), value, vbytes, NULL);
        }
    } else {
        rc = shardz_store_txn_batched(st, NULL, 0, ops, n, per_txn, NULL, NULL);
    }
    if (rc) {
        fprintf(stderr, "write failed: %s (%s)\n", shardz_strerror(rc), shardz_store_errmsg(st));
        goto out;
    }
    rate = (double)n / (now_s() - t0);
out:
    free(keys);
    free(ops);
    free(value);
    return rate;
}

int main(int argc, char **argv)
{
    const char *etcd = NULL, *sqlite = NULL;
    size_t single = 2000, batched = 100000, vbytes = 200;
    int guard = 0, o;
    static const struct option opts[] = {{"etcd", required_argument, 0, 'e'},
                                         {"sqlite", required_argument, 0, 's'},
                                         {"single", required_argument, 0, '1'},
                                         {"batched", required_argument, 0, 'b'},
                                         {"value-bytes", required_argument, 0, 'v'},
                                         {"guard", no_argument, 0, 'g'},
                                         {0, 0, 0, 0}};
    shardz_store *st = NULL;
    char err[512] = "";
    shardz_store_options so = {.errbuf = err, .errbuf_size = sizeof err};
    int rc;

    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'e':
            etcd = optarg;
            break;
        case 's':
            sqlite = optarg;
            break;
        case '1':
            single = strtoul(optarg, NULL, 10);
            break;
        case 'b':
            batched = strtoul(optarg, NULL, 10);
            break;
        case 'v':
            vbytes = strtoul(optarg, NULL, 10);
            break;
        case 'g':
            guard = 1;
            break;
        default:
            fprintf(stderr, "usage: bench_store_writes --etcd URL | --sqlite DIR [--single N] "
                            "[--batched N] [--value-bytes B] [--guard]\n");
            return 2;
        }
    }
    if (!etcd == !sqlite || single == 0 || batched == 0) {
        fprintf(stderr, "give exactly one of --etcd URL and --sqlite DIR\n");
        return 2;
    }
    rc = etcd ? shardz_store_open_etcd(etcd, "/bench/", &so, &st)
              : shardz_store_open_sqlite(sqlite, &so, &st);
    if (rc) {
        fprintf(stderr, "cannot open the store: %s (%s)\n", shardz_strerror(rc), err);
        return 1;
    }
    if (guard) { /* the leader guard, as a coordinator's writes carry it */
        int64_t rev = 0;
        shardz_compare g = {SHARDZ_CMP_CREATE, "leader", 6, 0, NULL, 0};

        shardz_store_put(st, "leader", 6, "me", 2, &rev);
        g.number = rev;
        shardz_store_set_guard(st, &g);
    }
    printf("cores online: %ld\nstore: %s%s, value %zu bytes%s\n", sysconf(_SC_NPROCESSORS_ONLN),
           etcd ? "etcd " : "sqlite ", etcd ? etcd : sqlite, vbytes,
           guard ? ", every transaction guarded" : "");
    double one = run(st, 1, single, vbytes, 1);
    double many = run(st, 2, batched, vbytes, SHARDZ_STORE_MAX_TXN_OPS);
    if (one < 0 || many < 0) {
        shardz_store_close(st);
        return 1;
    }
    printf("one put per transaction: %zu writes, %.0f writes/s\n", single, one);
    printf("batched, %d per transaction: %zu writes, %.0f writes/s (%.1fx)\n",
           SHARDZ_STORE_MAX_TXN_OPS, batched, many, many / one);
    shardz_store_close(st);
    return 0;
}
