/* bench_clients_lookup_c: libshardz's router key lookup, for bench/clients/run.py (the
 * side-by-side client benchmark). Reads a /state body and a key file (one key a line), builds
 * a snapshot (include/shardz/router.h), checks every key's partition against its slot, and
 * times ROUNDS passes of shardz_snapshot_lookup_key over the keys. Prints one JSON line: lang,
 * lookups, ns_per_lookup, checksum (the sum of the keys' slots over one pass). One thread. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shardz/hash.h"
#include "shardz/router.h"

/* Reads a whole file into a malloc'd NUL-terminated buffer (owned by the caller). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f) {
        perror(path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        goto out;
    }
    buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
        goto out;
    }
    if (buf) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
out:
    fclose(f);
    return buf;
}

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    size_t slen = 0, klen = 0, nkeys = 0;
    char *state = NULL, *keys = NULL;
    const char **kv = NULL;
    size_t *kl = NULL;
    shardz_snapshot *s = NULL;
    int status = 1;

    if (argc != 4) {
        fprintf(stderr, "usage: %s STATE_JSON KEYS_FILE ROUNDS\n", argv[0]);
        return 2;
    }
    long rounds = strtol(argv[3], NULL, 10);
    state = slurp(argv[1], &slen);
    keys = slurp(argv[2], &klen);
    if (!state || !keys || rounds <= 0) {
        goto out;
    }
    for (size_t i = 0; i < klen; i++) {
        nkeys += keys[i] == '\n';
    }
    kv = calloc(nkeys + 1, sizeof *kv);
    kl = calloc(nkeys + 1, sizeof *kl);
    if (!kv || !kl) {
        goto out;
    }
    nkeys = 0;
    for (char *p = keys, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        kv[nkeys] = p;
        kl[nkeys++] = (size_t)(nl - p);
    }
    if (shardz_snapshot_from_state(state, slen, 0, &s) != 0) {
        fprintf(stderr, "bad state\n");
        goto out;
    }
    uint64_t checksum = 0;
    uint32_t slots = shardz_snapshot_slots(s);
    for (size_t i = 0; i < nkeys; i++) { /* check: each key's route holds its slot */
        const shardz_route *rt, *by_slot;
        uint32_t slot;
        if (shardz_snapshot_lookup_key(s, kv[i], kl[i], &slot, &rt) != 0 ||
            slot != shardz_key_slot(kv[i], kl[i], slots) ||
            shardz_snapshot_lookup_slot(s, slot, &by_slot) != 0 || by_slot != rt) {
            fprintf(stderr, "lookup of key %zu disagrees\n", i);
            goto out;
        }
        checksum += slot;
    }
    const shardz_route *sink = NULL;
    double t0 = now_ns();
    for (long r = 0; r < rounds; r++) {
        for (size_t i = 0; i < nkeys; i++) {
            const shardz_route *rt;
            if (shardz_snapshot_lookup_key(s, kv[i], kl[i], NULL, &rt) == 0) {
                sink = rt;
            }
        }
    }
    double dt = now_ns() - t0;
    printf("{\"lang\": \"c\", \"lookups\": %" PRIu64 ", \"ns_per_lookup\": %.1f, "
           "\"checksum\": %" PRIu64 ", \"last\": \"%s\"}\n",
           (uint64_t)rounds * nkeys, dt / ((double)rounds * (double)nkeys), checksum,
           sink ? sink->partition : "");
    status = 0;
out:
    shardz_snapshot_release(s);
    free(kv);
    free(kl);
    free(state);
    free(keys);
    return status;
}
