/* A string -> index map for the daemon's nodes and partitions: open addressing with linear
 * probing over indices into the caller's array; keys are borrowed through a callback (the
 * array owns them). Each slot keeps the key's hash beside the index, so a probe reads the key
 * only when the hashes agree. Removal shifts back (no tombstones), so a namespace that loses
 * partitions one by one never rebuilds the map. Pure; the caller's thread (the loop's);
 * tested by tests/daemon/test_map.c. */
#ifndef SZD_CORE_MAP_H
#define SZD_CORE_MAP_H

#include <stdint.h>

typedef struct {
    uint64_t *slots; /* hash << 32 | (index + 1); 0 = empty; owned */
    uint32_t cap;    /* a power of two, or 0 */
} szd_map;

/* The key of the caller's entry idx (borrowed: valid while the entry is). */
typedef const char *(*szd_keyfn)(const void *ctx, uint32_t idx);

/* The index of key, or UINT32_MAX. */
uint32_t szd_map_find(const szd_map *m, const char *key, szd_keyfn fn, const void *ctx);
/* Adds entry idx (its key must not be in the map); count: entries after it (to grow). 0 or
 * SHARDZ_ENOMEM (the map is unchanged). */
int szd_map_insert(szd_map *m, uint32_t idx, uint32_t count, szd_keyfn fn, const void *ctx);
/* Rebuilt from entries 0..count-1. 0 or SHARDZ_ENOMEM (unchanged). */
int szd_map_rebuild(szd_map *m, uint32_t count, szd_keyfn fn, const void *ctx);
/* The same, with room for `room` entries (at least count) without growing again. */
int szd_map_reserve(szd_map *m, uint32_t count, uint32_t room, szd_keyfn fn, const void *ctx);
/* Removes the entry of `key` at index idx (key: that entry's key, still readable). */
void szd_map_remove(szd_map *m, const char *key, uint32_t idx);
/* The entry of `key` moved from index from to index to (a swap-remove's last entry). */
void szd_map_move(szd_map *m, const char *key, uint32_t from, uint32_t to);
void szd_map_free(szd_map *m);

#endif
