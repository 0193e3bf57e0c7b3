/* A bucket queue of nodes by integer level (their replica count), for placing equal-load
 * partitions: moving a node one level up or down is O(1), where a heap pays O(log N) on
 * every placement. The nodes sit in one array sorted by level; start[i] is where level
 * base + i begins. Picks inside the lowest level start at a caller-given offset, so equally
 * loaded nodes take turns in a changing order. Header-only; one per zone. */
#ifndef SHARDZ_PLACEMENT_BUCKET_H
#define SHARDZ_PLACEMENT_BUCKET_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shardz/error.h"

typedef struct {
    uint32_t *ord; /* the nodes, ascending by level (borrowed slice of a shared array) */
    uint32_t n;
    uint32_t *pos;   /* pos[node]: index in ord (borrowed, shared by all zones) */
    uint32_t *level; /* level[node] (borrowed, shared) */
    uint32_t base;   /* the level of start[0] */
    uint32_t *start; /* start[0..nlev], start[nlev] == n (owned) */
    uint32_t nlev, caplev;
} pz_bq;

static inline int pz_bq_cmp_level(const void *a, const void *b, const uint32_t *level)
{
    uint32_t x = level[*(const uint32_t *)a], y = level[*(const uint32_t *)b];
    if (x != y) {
        return x < y ? -1 : 1;
    }
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

/* Sorts ord[0..n-1] by level (insertion sort over a counting pass would do; n is a zone's
 * node count, so a simple merge-free approach is enough) and builds the level index. */
static inline int pz_bq_init(pz_bq *q, uint32_t *ord, uint32_t n, uint32_t *pos, uint32_t *level)
{
    memset(q, 0, sizeof *q);
    q->ord = ord;
    q->n = n;
    q->pos = pos;
    q->level = level;
    /* insertion sort: zones are small next to the replicas placed through them */
    for (uint32_t i = 1; i < n; i++) {
        uint32_t v = ord[i], j = i;
        while (j > 0 && pz_bq_cmp_level(&ord[j - 1], &v, level) > 0) {
            ord[j] = ord[j - 1];
            j--;
        }
        ord[j] = v;
    }
    for (uint32_t i = 0; i < n; i++) {
        pos[ord[i]] = i;
    }
    uint32_t lo = n ? level[ord[0]] : 0, hi = n ? level[ord[n - 1]] : 0;
    q->base = lo;
    q->nlev = hi - lo + 1;
    q->caplev = q->nlev + 16;
    q->start = malloc((q->caplev + 1) * sizeof *q->start);
    if (!q->start) {
        return SHARDZ_ENOMEM;
    }
    for (uint32_t i = 0, k = 0; i <= q->nlev; i++) {
        while (k < n && level[ord[k]] < lo + i) {
            k++;
        }
        q->start[i] = k;
    }
    q->start[q->nlev] = n;
    return 0;
}

static inline void pz_bq_free(pz_bq *q)
{
    free(q->start);
    q->start = NULL;
}

static inline void pz_bq_swap(pz_bq *q, uint32_t i, uint32_t j)
{
    uint32_t a = q->ord[i], b = q->ord[j];
    q->ord[i] = b;
    q->ord[j] = a;
    q->pos[b] = i;
    q->pos[a] = j;
}

static inline int pz_bq_grow(pz_bq *q)
{
    if (q->nlev + 1 < q->caplev) {
        return 0;
    }
    uint32_t ncap = 2 * q->caplev;
    uint32_t *ns = realloc(q->start, (ncap + 1) * sizeof *ns);
    if (!ns) {
        return SHARDZ_ENOMEM;
    }
    q->start = ns;
    q->caplev = ncap;
    return 0;
}

/* Node moves one level up. */
static inline int pz_bq_inc(pz_bq *q, uint32_t node)
{
    uint32_t i = q->level[node] - q->base;
    if (i + 1 == q->nlev) {
        int rc = pz_bq_grow(q);
        if (rc) {
            return rc;
        }
        q->start[q->nlev + 1] = q->n;
        q->nlev++;
    }
    uint32_t last = q->start[i + 1] - 1;
    pz_bq_swap(q, q->pos[node], last);
    q->start[i + 1]--;
    q->level[node]++;
    return 0;
}

/* Node moves one level down. */
static inline int pz_bq_dec(pz_bq *q, uint32_t node)
{
    uint32_t i = q->level[node] - q->base;
    if (i == 0) {
        int rc = pz_bq_grow(q);
        if (rc) {
            return rc;
        }
        memmove(q->start + 1, q->start, (q->nlev + 1) * sizeof *q->start);
        q->start[0] = 0;
        q->nlev++;
        q->base--;
        i = 1;
    }
    uint32_t first = q->start[i];
    pz_bq_swap(q, q->pos[node], first);
    q->start[i]++;
    q->level[node]--;
    return 0;
}

/* The lowest level holding a node. */
static inline uint32_t pz_bq_min_level(const pz_bq *q)
{
    return q->n ? q->level[q->ord[0]] : UINT32_MAX;
}

#endif
