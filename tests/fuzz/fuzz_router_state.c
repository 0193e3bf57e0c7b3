/* libFuzzer target: the router's reading of GET /state and /watch replies (src/lib/snapshot.c),
 * as its watch loop does it: a reply with "unchanged": true is ignored, anything else is built
 * into a snapshot. The first byte picks what the router knows of the namespace beforehand
 * (kind, slots); the rest is the reply. A built snapshot must answer every lookup of its own
 * partitions, slots and a few keys consistently. Single-threaded: libFuzzer's thread. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/lib_int.h"
#include "shardz/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const shardz_snapshot *s, const uint8_t *data, size_t size)
{
    size_t n = shardz_snapshot_partition_count(s);
    uint32_t slots = shardz_snapshot_slots(s);
    const shardz_route *rt;
    uint32_t slot;

    for (size_t i = 0; i < n; i++) {
        const shardz_route *p = shardz_snapshot_partition_at(s, i);
        if (p == NULL || shardz_snapshot_lookup_partition(s, p->partition, &rt) != 0 || rt != p) {
            abort();
        }
    }
    for (uint32_t i = 0; i < slots && i < 4096; i++) {
        (void)shardz_snapshot_lookup_slot(s, i, &rt);
    }
    /* keys: every prefix of the input (range routing compares bytes, hash routing hashes) */
    for (size_t len = 0; len <= size && len < 64; len++) {
        if (shardz_snapshot_lookup_key(s, data, len, &slot, &rt) == 0 && rt == NULL) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint32_t slot_choices[] = {0, 1, 64, 16384};
    szl_ns_info ns;
    shardz_snapshot *s = NULL;
    json_t *root;
    char err[256];

    if (size < 1) {
        return 0;
    }
    ns.kind = (int)(data[0] & 3u) - 1;
    ns.slots = slot_choices[(data[0] >> 2) & 3u];
    root = json_loadb((const char *)data + 1, size - 1, 0, NULL);
    if (root == NULL) {
        return 0;
    }
    if (!json_is_true(json_object_get(root, "unchanged")) &&
        szl_snapshot_build(root, &ns, &s, err, sizeof err) == 0) {
        check(s, data + 1, size - 1);
        shardz_snapshot_release(s);
    }
    json_decref(root);
    return 0;
}
