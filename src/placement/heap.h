/* An indexed 4-ary heap of small integer items (node or zone indices) ordered by an external
 * integer key array, with positions so an item's key can change in place. Used by the planners to
 * find the least / most loaded node in O(log N). Ties break on an optional tie array, then on
 * the item index, so every order is deterministic. Header-only; the caller owns every array. */
#ifndef SHARDZ_PLACEMENT_HEAP_H
#define SHARDZ_PLACEMENT_HEAP_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "placement/model.h"

/* Arity: 4 halves the depth of a binary heap; the children share a cache line. */
#define PZ_HEAP_D 4

typedef struct {
    uint32_t *a;   /* heap array, capacity >= items (borrowed) */
    uint32_t *pos; /* pos[item]: index in a, or PZ_NONE (borrowed, may be shared) */
    uint32_t n;
    const uint64_t *key; /* key[item] (borrowed): an order-preserving integer, see below */
    bool max;            /* max-heap when true */
} pz_heap;

/* An order-preserving integer for a double (x < y  <=>  pz_key_of(x) < pz_key_of(y)). */
static inline uint64_t pz_key_of(double x)
{
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    return (b >> 63) ? ~b : b | (1ull << 63);
}

/* A key ordering by a non-negative value first (as a float: 24 bits of precision are plenty
 * to choose a least loaded node) and by a tie-break word second, in one integer compare. */
static inline uint64_t pz_key_pack(double value, uint32_t tie)
{
    float f = (float)value;
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return ((uint64_t)b << 32) | tie;
}

static inline bool pz_heap_before(const pz_heap *h, uint32_t x, uint32_t y)
{
    uint64_t kx = h->key[x], ky = h->key[y];
    if (kx != ky) {
        return h->max ? kx > ky : kx < ky;
    }
    return x < y;
}

static inline void pz_heap_set(pz_heap *h, uint32_t i, uint32_t item)
{
    h->a[i] = item;
    h->pos[item] = i;
}

static inline void pz_heap_up(pz_heap *h, uint32_t i)
{
    uint32_t item = h->a[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / PZ_HEAP_D;
        if (!pz_heap_before(h, item, h->a[parent])) {
            break;
        }
        pz_heap_set(h, i, h->a[parent]);
        i = parent;
    }
    pz_heap_set(h, i, item);
}

static inline void pz_heap_down(pz_heap *h, uint32_t i)
{
    uint32_t item = h->a[i];
    for (;;) {
        uint32_t first = PZ_HEAP_D * i + 1;
        if (first >= h->n) {
            break;
        }
        uint32_t c = first, last = first + PZ_HEAP_D < h->n ? first + PZ_HEAP_D : h->n;
        for (uint32_t k = first + 1; k < last; k++) {
            if (pz_heap_before(h, h->a[k], h->a[c])) {
                c = k;
            }
        }
        if (!pz_heap_before(h, h->a[c], item)) {
            break;
        }
        pz_heap_set(h, i, h->a[c]);
        i = c;
    }
    pz_heap_set(h, i, item);
}

static inline void pz_heap_push(pz_heap *h, uint32_t item)
{
    h->a[h->n] = item;
    h->pos[item] = h->n;
    h->n++;
    pz_heap_up(h, h->n - 1);
}

static inline bool pz_heap_has(const pz_heap *h, uint32_t item)
{
    uint32_t p = h->pos[item];
    return p != PZ_NONE && p < h->n && h->a[p] == item;
}

static inline void pz_heap_remove(pz_heap *h, uint32_t item)
{
    uint32_t i = h->pos[item];
    h->pos[item] = PZ_NONE;
    h->n--;
    if (i == h->n) {
        return;
    }
    uint32_t x = h->a[h->n];
    pz_heap_set(h, i, x);
    pz_heap_up(h, i);
    pz_heap_down(h, h->pos[x]);
}

static inline uint32_t pz_heap_pop(pz_heap *h)
{
    uint32_t top = h->a[0];
    pz_heap_remove(h, top);
    return top;
}

/* The item's key changed: restore the order. */
static inline void pz_heap_update(pz_heap *h, uint32_t item)
{
    uint32_t i = h->pos[item];
    pz_heap_up(h, i);
    pz_heap_down(h, h->pos[item]);
}

#endif
