/* The string -> index map (map.h): linear probing, hashes kept beside the indices, backward-
 * shift removal. Written by hand: a handful of lines over the caller's own array, where a
 * general hash table would own copies of a million keys. Pure; the caller's thread. */
#include <stdlib.h>
#include <string.h>

#include "daemon/core/map.h"
#include "shardz/error.h"

/* FNV-1a, then murmur3's finaliser: FNV's low bits alone cluster for ids that differ only in
 * their last characters ("p000041", "p000042"), and the map masks the low bits. */
static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 16777619u;
    }
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static uint64_t entry(uint32_t h, uint32_t idx)
{
    return (uint64_t)h << 32 | (uint64_t)(idx + 1);
}

/* The slot holding index idx of a key hashing to h, or cap when absent. */
static uint32_t slot_of(const szd_map *m, uint32_t h, uint32_t idx)
{
    if (!m->cap) {
        return 0;
    }
    uint32_t mask = m->cap - 1;
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        if (m->slots[i] == 0) {
            return m->cap;
        }
        if (m->slots[i] == entry(h, idx)) {
            return i;
        }
    }
}

uint32_t szd_map_find(const szd_map *m, const char *key, szd_keyfn fn, const void *ctx)
{
    if (!m->cap) {
        return UINT32_MAX;
    }
    uint32_t mask = m->cap - 1, h = hash_str(key);
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        uint64_t e = m->slots[i];
        if (e == 0) {
            return UINT32_MAX;
        }
        uint32_t idx = (uint32_t)e - 1;
        if ((uint32_t)(e >> 32) == h && strcmp(fn(ctx, idx), key) == 0) {
            return idx;
        }
    }
}

static void put(szd_map *m, uint32_t h, uint32_t idx)
{
    uint32_t mask = m->cap - 1, i = h & mask;
    while (m->slots[i] != 0) {
        i = (i + 1) & mask;
    }
    m->slots[i] = entry(h, idx);
}

int szd_map_reserve(szd_map *m, uint32_t count, uint32_t room, szd_keyfn fn, const void *ctx)
{
    uint32_t cap = 16;
    room = room > count ? room : count;
    while (cap < 2 * (room + 1)) {
        cap *= 2;
    }
    uint64_t *s = calloc(cap, sizeof *s);
    if (!s) {
        return SHARDZ_ENOMEM;
    }
    free(m->slots);
    m->slots = s;
    m->cap = cap;
    for (uint32_t i = 0; i < count; i++) {
        put(m, hash_str(fn(ctx, i)), i);
    }
    return 0;
}

int szd_map_rebuild(szd_map *m, uint32_t count, szd_keyfn fn, const void *ctx)
{
    return szd_map_reserve(m, count, count, fn, ctx);
}

int szd_map_insert(szd_map *m, uint32_t idx, uint32_t count, szd_keyfn fn, const void *ctx)
{
    if (2 * (count + 1) > m->cap) {
        return szd_map_rebuild(m, count, fn, ctx); /* count includes idx */
    }
    put(m, hash_str(fn(ctx, idx)), idx);
    return 0;
}

void szd_map_remove(szd_map *m, const char *key, uint32_t idx)
{
    uint32_t i = slot_of(m, hash_str(key), idx);
    if (i >= m->cap) {
        return;
    }
    /* backward shift: each later entry of the run moves into the hole unless its home slot
     * lies cyclically after the hole (it would then be found before the hole no more) */
    uint32_t mask = m->cap - 1;
    for (uint32_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        uint64_t e = m->slots[j];
        if (e == 0) {
            break;
        }
        uint32_t home = (uint32_t)(e >> 32) & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = e;
            i = j;
        }
    }
    m->slots[i] = 0;
}

void szd_map_move(szd_map *m, const char *key, uint32_t from, uint32_t to)
{
    uint32_t h = hash_str(key), i = slot_of(m, h, from);
    if (i < m->cap) {
        m->slots[i] = entry(h, to);
    }
}

void szd_map_free(szd_map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = 0;
}
