/* shardz key ranges (seed 003): the "range" sharder kind and its range table. A range
 * namespace cuts the key space (byte strings, compared bytewise, a prefix before the longer
 * key) into contiguous half-open ranges [lo, hi), each one partition placed by the replica
 * planner. The table always covers the whole key space once it has a range: no gap, no
 * overlap. Pure like the rest of placement: no I/O, no clock, no globals; one thread. */
#ifndef SHARDZ_RANGE_H
#define SHARDZ_RANGE_H

#include <stddef.h>

#include "shardz/placement.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The longest range bound, in bytes (the worker library's limit, docs/PROTOCOL.md). */
#define SHARDZ_RANGE_KEY_MAX 1024

/* One range [lo, hi) of a partition. An empty lo (lo_len 0) is -infinity, an empty hi is
 * +infinity. As an output every pointer is borrowed from the sharder and valid until the
 * table or the partition changes; as an input, borrowed for the call. */
typedef struct {
    const char *partition;
    const char *lo;
    size_t lo_len;
    const char *hi;
    size_t hi_len;
} shardz_key_range;

/* Compares two keys bytewise (a proper prefix sorts first): < 0, 0 or > 0. NULL with length 0
 * is the empty key. */
int shardz_key_cmp(const void *a, size_t alen, const void *b, size_t blen);

/* The middle of [lo, hi) (hi_len 0: +infinity): a key m with lo < m < hi, found digit by digit
 * over the byte alphabet [amin, amax] (e.g. 0x20-0x7e keeps printable keys printable, 0x01-0xff
 * is every byte but NUL): at the first digit where lo and hi differ by two or more it takes the
 * mean digit; where they differ by one it keeps lo's digit and takes the middle of the rest of
 * lo and +infinity. So a range of uniformly spread keys is cut about in half. Writes m into
 * out[0..cap-1] (not NUL-terminated) and its length into *out_len. SHARDZ_EINVAL: lo >= hi,
 * a byte of lo or hi outside the alphabet, amin > amax or amin == 0; SHARDZ_ERANGE: no key of
 * the alphabet lies strictly between (e.g. [k, k + amin)) or m would not fit in cap. */
int shardz_key_middle(const void *lo, size_t lo_len, const void *hi, size_t hi_len,
                      unsigned char amin, unsigned char amax, char *out, size_t cap,
                      size_t *out_len);

/* ---- the "range" kind ----------------------------------------------------------------------
 * The replica kind's placement plus a range table. Partitions are registered as usual; a
 * partition is *routed* once the table gives it a range. A partition may be registered and not
 * routed (a split's children being created, a merged range's successor), and a routed one
 * cannot be unregistered (SHARDZ_EBUSY): take it out of the table first
 * (shardz_sharder_range_replace). These calls return SHARDZ_ENOTSUP for the other kinds;
 * shardz_sharder_partition_for_key gives a key's routed partition (SHARDZ_ENOENT while the
 * table is empty). */

/* The routed ranges in key order. Fills out[0..cap-1], sets *n to the total (cap 0 sizes). */
int shardz_sharder_range_list(const shardz_sharder *s, shardz_key_range *out, size_t cap,
                              size_t *n);
/* The range of a routed partition into *out. SHARDZ_ENOENT when it is not routed. */
int shardz_sharder_range_of(const shardz_sharder *s, const char *partition, shardz_key_range *out);
/* Replaces the table with ranges[0..n-1], in any order (restoring a persisted state or
 * creating the namespace): each names a registered partition, at most once, lo < hi, and
 * together they cover the key space exactly once. n == 0 empties the table. SHARDZ_EINVAL
 * (gap, overlap, bad bound, a partition twice), SHARDZ_ENOENT (unknown partition),
 * SHARDZ_ENOMEM; on error nothing changes. Bumps the revision. */
int shardz_sharder_range_restore(shardz_sharder *s, const shardz_key_range *ranges, size_t n);
/* Replaces routed neighbours old[0..nold-1] (given in key order, consecutive in the table) by
 * ranges[0..nnew-1] (in key order) covering exactly the same span: a split is 1 -> 2 with a
 * bound inside, a merge 2 -> 1. The new partitions must be registered and not routed; they may
 * reuse none of the old ids. SHARDZ_ENOENT (an old one not routed, a new one unknown),
 * SHARDZ_EINVAL (old ones not neighbours in order, new ranges not contiguous, not the same
 * span, an empty range, a new one routed already or given twice), SHARDZ_ENOMEM; on error
 * nothing changes. Bumps the revision. */
int shardz_sharder_range_replace(shardz_sharder *s, const char *const *old, size_t nold,
                                 const shardz_key_range *ranges, size_t nnew);

/* Hot ranges (DESIGN.md section 6: range namespaces split hot ranges): the routed partitions
 * whose own load in dimension dim exceeds (1 + band) times an eligible node's mean load in
 * that dimension (the sum of the replicas' loads over the alive nodes, divided by their
 * count). Such a range overloads whichever node holds it: moving it cannot balance the nodes,
 * splitting it can. Hottest first; fills out[0..cap-1] with partition ids (borrowed from the
 * sharder, valid until the table changes) and sets *n to the total. SHARDZ_EINVAL (band not
 * in [0, 1], dim out of range), SHARDZ_ENOTSUP (not a "range" sharder). Nothing changes. */
int shardz_sharder_range_hot(const shardz_sharder *s, double band, size_t dim, const char **out,
                             size_t cap, size_t *n);

#ifdef __cplusplus
}
#endif
#endif
