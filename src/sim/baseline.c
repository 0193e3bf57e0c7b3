/* The load simulator's two baselines, set beside the real balancer in the same run: the seed's
 * 1.3x work stealing (by load rather than by count) and a Cadence-like greedy band. They live
 * in the simulator, not in the product: they read the simulator's view (lsim_view) and move
 * through its move function. Deterministic: ties go to the lower index. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sim/loadsim.h"

/* A node's replicas (p * replicas + slot), kept up to date as the baseline moves them. */
typedef struct {
    uint32_t *a;
    size_t n, cap;
} lsim_list;

/* The baselines' working state: node loads per dimension, shares of dimension 0, lists. */
typedef struct {
    const lsim_view *v;
    double *nl;    /* nnodes x ndims */
    double *share; /* nnodes: fair share of dimension 0 */
    lsim_list *lists;
} lsim_bstate;

static void bstate_free(lsim_bstate *b)
{
    if (b->lists != NULL) {
        for (size_t n = 0; n < b->v->nnodes; n++) {
            free(b->lists[n].a);
        }
    }
    free(b->lists);
    free(b->nl);
    free(b->share);
}

static int list_push(lsim_list *l, uint32_t rid)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        uint32_t *a = realloc(l->a, cap * sizeof *a);
        if (a == NULL) {
            return SHARDZ_ENOMEM;
        }
        l->a = a;
        l->cap = cap;
    }
    l->a[l->n++] = rid;
    return 0;
}

static int bstate_init(lsim_bstate *b, const lsim_view *v)
{
    size_t nd = v->ndims;
    double total = 0.0, wsum = 0.0;

    memset(b, 0, sizeof *b);
    b->v = v;
    b->nl = calloc(v->nnodes * nd, sizeof *b->nl);
    b->share = calloc(v->nnodes, sizeof *b->share);
    b->lists = calloc(v->nnodes, sizeof *b->lists);
    if (b->nl == NULL || b->share == NULL || b->lists == NULL) {
        goto fail;
    }
    for (size_t p = 0; p < v->nparts; p++) {
        for (unsigned s = 0; s < v->replicas; s++) {
            uint32_t n = v->owner[p * v->replicas + s];
            for (size_t d = 0; d < nd; d++) {
                b->nl[n * nd + d] += v->load[p * nd + d];
            }
            total += v->load[p * nd];
            if (list_push(&b->lists[n], (uint32_t)(p * v->replicas + s)) != 0) {
                goto fail;
            }
        }
    }
    for (size_t n = 0; n < v->nnodes; n++) {
        double c = v->cap[n * nd];
        wsum += isfinite(c) ? c : 1.0;
    }
    for (size_t n = 0; n < v->nnodes; n++) {
        double c = v->cap[n * nd];
        b->share[n] = total * (isfinite(c) ? c : 1.0) / wsum;
    }
    return 0;
fail:
    bstate_free(b);
    return SHARDZ_ENOMEM;
}

static double rel(const lsim_bstate *b, size_t n)
{
    return b->share[n] > 0.0 ? b->nl[n * b->v->ndims] / b->share[n] : 0.0;
}

static bool holds(const lsim_view *v, size_t p, size_t n)
{
    for (unsigned s = 0; s < v->replicas; s++) {
        if (v->owner[p * v->replicas + s] == n) {
            return true;
        }
    }
    return false;
}

static bool fits(const lsim_bstate *b, size_t p, size_t n)
{
    const lsim_view *v = b->v;
    for (size_t d = 0; d < v->ndims; d++) {
        if (b->nl[n * v->ndims + d] + v->load[p * v->ndims + d] > v->cap[n * v->ndims + d]) {
            return false;
        }
    }
    return true;
}

/* Moves list entry i of node `from` to node `to`: the caller's move, then loads and lists. */
static int bmove(lsim_bstate *b, size_t from, size_t i, size_t to, lsim_move_fn move, void *ctx)
{
    const lsim_view *v = b->v;
    lsim_list *l = &b->lists[from];
    uint32_t rid = l->a[i];
    size_t p = rid / v->replicas;
    int rc = move(ctx, p, rid % v->replicas, (uint32_t)to);
    if (rc != 0) {
        return rc;
    }
    for (size_t d = 0; d < v->ndims; d++) {
        b->nl[from * v->ndims + d] -= v->load[p * v->ndims + d];
        b->nl[to * v->ndims + d] += v->load[p * v->ndims + d];
    }
    l->a[i] = l->a[--l->n];
    return list_push(&b->lists[to], rid);
}

int lsim_seed_steal(const lsim_view *v, lsim_move_fn move, void *ctx)
{
    lsim_bstate b;
    int rc = bstate_init(&b, v);
    if (rc != 0) {
        return rc;
    }
    for (size_t d = 0; d < v->nnodes && rc == 0; d++) {
        if (rel(&b, d) <= LSIM_SEED_FACTOR) {
            continue;
        }
        while (rc == 0 && b.lists[d].n > 0 && b.nl[d * v->ndims] > b.share[d]) {
            size_t i = b.lists[d].n - 1;
            size_t p = b.lists[d].a[i] / v->replicas;
            size_t to = SIZE_MAX;
            for (size_t n = 0; n < v->nnodes; n++) {
                if (n != d && !holds(v, p, n) && fits(&b, p, n) &&
                    (to == SIZE_MAX || rel(&b, n) < rel(&b, to))) {
                    to = n;
                }
            }
            if (to == SIZE_MAX) {
                break;
            }
            rc = bmove(&b, d, i, to, move, ctx);
        }
    }
    bstate_free(&b);
    return rc;
}

int lsim_greedy_band(const lsim_view *v, lsim_move_fn move, void *ctx)
{
    lsim_bstate b;
    size_t budget = (size_t)floor(LSIM_GREEDY_FRACTION * (double)v->nparts);
    size_t moves = 0;
    bool *retired = calloc(v->nnodes ? v->nnodes : 1, sizeof *retired);
    int rc = retired != NULL ? bstate_init(&b, v) : SHARDZ_ENOMEM;

    if (rc != 0) {
        free(retired);
        return rc;
    }
    budget = budget > 0 ? budget : 1;
    while (rc == 0 && moves < budget) {
        size_t donor = SIZE_MAX, recv = SIZE_MAX;
        for (size_t n = 0; n < v->nnodes; n++) {
            double r = rel(&b, n);
            if (!retired[n] && r > LSIM_GREEDY_HIGH && (donor == SIZE_MAX || r > rel(&b, donor))) {
                donor = n;
            }
            if (r < LSIM_GREEDY_LOW && (recv == SIZE_MAX || r < rel(&b, recv))) {
                recv = n;
            }
        }
        if (donor == SIZE_MAX || recv == SIZE_MAX) {
            break;
        }
        /* The donor's largest replica the receiver can take and stay within the band. */
        const lsim_list *l = &b.lists[donor];
        size_t best = SIZE_MAX;
        double bestx = -1.0;
        for (size_t i = 0; i < l->n; i++) {
            size_t p = l->a[i] / v->replicas;
            double x = v->load[p * v->ndims];
            int64_t last = v->last_move[p];
            if (x <= bestx || (x == bestx && l->a[i] > l->a[best])) {
                continue;
            }
            if (last != SHARDZ_NEVER_MOVED && v->now_ms - last < v->cooldown_ms) {
                continue;
            }
            if (holds(v, p, recv) || !fits(&b, p, recv) ||
                (b.nl[recv * v->ndims] + x) / b.share[recv] > LSIM_GREEDY_HIGH) {
                continue;
            }
            best = i;
            bestx = x;
        }
        if (best == SIZE_MAX) {
            retired[donor] = true;
            continue;
        }
        rc = bmove(&b, donor, best, recv, move, ctx);
        moves++;
    }
    bstate_free(&b);
    free(retired);
    return rc;
}
