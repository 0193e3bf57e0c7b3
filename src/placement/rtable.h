/* The range table of the "range" kind: routed key ranges kept by their lower bounds in key
 * order, so the ranges cover the key space by construction (entry i is [lo_i, lo_{i+1}), the
 * first lo is -infinity, the last range ends at +infinity): no gap, no overlap. Lookups are a
 * binary search. Pure, one thread (the sharder's). */
#ifndef SHARDZ_PLACEMENT_RTABLE_H
#define SHARDZ_PLACEMENT_RTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "shardz/range.h"

/* One routed range: its lower bound and its partition. One allocation holds both, owned by
 * the table (lo first, then the id's NUL-terminated bytes). */
typedef struct {
    char *lo; /* lo_len bytes; the first entry's is empty (-infinity) */
    size_t lo_len;
    char *pid; /* NUL-terminated, inside the same allocation */
} pz_rentry;

typedef struct {
    pz_rentry *e; /* n entries in key order of lo, owned */
    size_t n;
    size_t *by_id; /* n entry indices in id order (binary search by id), owned */
} pz_rtable;

#define PZ_RT_NONE SIZE_MAX

void pz_rtable_init(pz_rtable *t);
/* Frees the entries; accepts a zeroed table. */
void pz_rtable_destroy(pz_rtable *t);
/* The entry whose range holds key, or PZ_RT_NONE when the table is empty. */
size_t pz_rtable_find(const pz_rtable *t, const void *key, size_t len);
/* The entry of partition pid, or PZ_RT_NONE (a binary search by id). */
size_t pz_rtable_index(const pz_rtable *t, const char *pid);
/* Entry i (< n) as a range; pointers borrowed from the table until it changes. */
void pz_rtable_get(const pz_rtable *t, size_t i, shardz_key_range *out);
/* Replaces everything by r[0..n-1] (any order): lo < hi each, together the whole key space
 * once, no id twice, bounds at most SHARDZ_RANGE_KEY_MAX bytes. SHARDZ_EINVAL, SHARDZ_ENOMEM;
 * on error the table is unchanged. r is borrowed. */
int pz_rtable_restore(pz_rtable *t, const shardz_key_range *r, size_t n);
/* Replaces entries first..first+nold-1 by r[0..nnew-1] (key order) spanning the same keys:
 * contiguous, each lo < hi, ids neither twice nor already in the table. SHARDZ_EINVAL,
 * SHARDZ_ENOMEM; on error unchanged. r is borrowed. */
int pz_rtable_replace(pz_rtable *t, size_t first, size_t nold, const shardz_key_range *r,
                      size_t nnew);

#endif
