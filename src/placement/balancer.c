/* The load balancer round (DESIGN.md section 6, seed 003): moves replicas off the most loaded
 * node, one step at a time, within churn limits (dead band, move budget, per-partition
 * cooldown, hysteresis, nothing while degraded). Pure: no I/O, no clock (now is passed in),
 * deterministic for a given state and policy. Works on the model of any kind.
 *
 * Relative load: rel(n, d) = load(n, d) / share(n, d), share = total_d * w(n, d) / W_d over
 * the eligible nodes, w = capacity[d] (1 when unlimited), as the replica planner does for
 * dimension 0. rel = 1 is the mean; max over nodes is max/mean.
 *
 * Every move keeps the hard rules (distinct nodes, zone spread by pz_zone_move_ok,
 * capacity) and never raises max(rel_donor, rel_receiver) in any dimension, so max/mean never
 * increases in any dimension; in the dimension being balanced it strictly drops.
 *
 * Search (fast; the same decisions as the brute-force scans kept for the tests,
 * pz_balance_round_brute): the hot nodes sit in a max-heap by their greatest weighted excess;
 * each donor's candidates are sorted once per round and dimension; the receivers of each
 * dimension are kept sorted by relative load, so the search for a receiver walks up from the
 * coldest and stops as soon as no later node can beat the best found or pass the thresholds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "placement/heap.h"
#include "placement/model.h"

/* Partition states within a round. */
enum { PS_UNKNOWN = 0, PS_FREE, PS_COOLING, PS_MOVED };

typedef struct {
    double key;   /* the candidate's load in the dimension being balanced */
    uint32_t rid; /* replica id */
} cand;

/* A donor's candidates in one dimension, sorted once per round (hottest first). Replicas moved
 * or found cooling later stay in the list and are skipped. */
typedef struct {
    cand *a;
    uint32_t n;
    uint32_t start; /* once sorted: the candidates before it were moved */
    bool built, sorted;
} cand_list;

typedef struct {
    pz_model *m;
    shardz_plan *plan;
    bool brute; /* the reference scans (tests): every node per receiver search and per step */
    const shardz_balance_policy *pol;
    uint32_t nn;
    size_t nd;
    double w[SHARDZ_MAX_DIMS];
    double *inv;     /* nn x nd: rel = load * inv; 0 for ineligible nodes and empty dims */
    uint8_t *done;   /* per node: ineligible, or found no move this round */
    uint8_t *pstate; /* per partition: PS_* */
    cand *cands;
    size_t capcands;
    /* Fast search state (brute == false): */
    cand_list *lists; /* nn x nd, built on first use */
    uint32_t *ord;    /* nd x nelig: eligible nodes by rel ascending (ties: index) */
    uint32_t *opos;   /* nd x nn: position in ord, PZ_NONE when ineligible */
    uint32_t nelig;
    double irmin[SHARDZ_MAX_DIMS]; /* least inv over eligible nodes, per dimension */
    pz_heap hot;                   /* max-heap of hot nodes still in the round, by their excess */
    uint64_t *hkey;                /* per node: pz_key_of(its greatest weighted excess) */
    uint8_t *hdim;                 /* per node: the dimension of that excess */
    uint32_t *ha, *hpos;
    int64_t now;
    shardz_last_move_fn last_move;
    void *ctx;
    size_t cooling;
} bal;

void shardz_balance_policy_default(shardz_balance_policy *pol)
{
    if (!pol) {
        return;
    }
    memset(pol, 0, sizeof *pol);
    pol->band = SHARDZ_BALANCE_BAND_DEFAULT;
    pol->max_moves_fraction = SHARDZ_BALANCE_MOVES_DEFAULT;
    pol->cooldown_ms = SHARDZ_BALANCE_COOLDOWN_DEFAULT;
    pol->hysteresis = SHARDZ_BALANCE_HYSTERESIS_DEFAULT;
    pol->ndims_weight = 0;
    for (size_t d = 0; d < SHARDZ_MAX_DIMS; d++) {
        pol->dims_weight[d] = 1.0;
    }
}

const char *shardz_balance_stop_name(shardz_balance_stop stop)
{
    static const char *const names[] = {"balanced", "budget", "stuck", "degraded", "off"};
    return (unsigned)stop < sizeof names / sizeof names[0] ? names[stop] : "unknown";
}

static bool fraction_ok(double v)
{
    return isfinite(v) && v >= 0 && v <= 1;
}

int shardz_balance_policy_validate(const shardz_balance_policy *pol)
{
    if (!pol) {
        return SHARDZ_EINVAL;
    }
    if (!fraction_ok(pol->band) || !fraction_ok(pol->max_moves_fraction) ||
        !fraction_ok(pol->hysteresis) || pol->cooldown_ms < 0 ||
        pol->ndims_weight > SHARDZ_MAX_DIMS) {
        return SHARDZ_EINVAL;
    }
    for (size_t d = 0; d < pol->ndims_weight; d++) {
        if (!isfinite(pol->dims_weight[d]) || pol->dims_weight[d] < 0) {
            return SHARDZ_EINVAL;
        }
    }
    return 0;
}

/* Fills inv (nn x nd) for the model's current loads; returns the number of eligible nodes. */
static uint32_t compute_inv(const pz_model *m, double *inv)
{
    size_t nd = m->ndims;
    double total[SHARDZ_MAX_DIMS] = {0}, wsum[SHARDZ_MAX_DIMS] = {0};
    uint32_t k = 0;
    for (uint32_t n = 0; n < m->nnodes; n++) {
        if (!pz_node_eligible(m, n)) {
            continue;
        }
        k++;
        for (size_t d = 0; d < nd; d++) {
            double c = m->nodes[n].cap[d];
            total[d] += m->nodes[n].load[d];
            wsum[d] += isfinite(c) ? c : 1.0;
        }
    }
    for (uint32_t n = 0; n < m->nnodes; n++) {
        for (size_t d = 0; d < nd; d++) {
            double c = m->nodes[n].cap[d], *v = &inv[(size_t)n * nd + d];
            *v = 0;
            if (pz_node_eligible(m, n) && total[d] > 0) {
                *v = wsum[d] / (total[d] * (isfinite(c) ? c : 1.0));
            }
        }
    }
    return k;
}

static void max_rel(const pz_model *m, const double *inv, double *out)
{
    size_t nd = m->ndims;
    for (size_t d = 0; d < nd; d++) {
        out[d] = 0;
    }
    for (uint32_t n = 0; n < m->nnodes; n++) {
        for (size_t d = 0; d < nd; d++) {
            double r = m->nodes[n].load[d] * inv[(size_t)n * nd + d];
            if (r > out[d]) {
                out[d] = r;
            }
        }
    }
}

/* Degraded: a node that must give replicas away (or may be failing) still holds some, or a
 * replica slot is vacant. Load moves wait until the repair is done. */
static bool degraded(const pz_model *m)
{
    if (m->nvacant > 0) {
        return true;
    }
    for (uint32_t n = 0; n < m->nnodes; n++) {
        const pz_node *nd = &m->nodes[n];
        if (!nd->id || nd->nlist == 0) {
            continue;
        }
        if (nd->gone || nd->state == SHARDZ_NODE_DEAD || nd->state == SHARDZ_NODE_DRAINING ||
            nd->state == SHARDZ_NODE_SUSPECT) {
            return true;
        }
    }
    return false;
}

static bool cooling(bal *b, uint32_t pidx)
{
    uint8_t *st = &b->pstate[pidx];
    if (*st == PS_UNKNOWN) {
        *st = PS_FREE;
        if (b->last_move) {
            int64_t last = b->last_move(pz_part_id(b->m->parts[pidx]), b->ctx);
            if (last != SHARDZ_NEVER_MOVED) {
                /* now - last without overflow; a last move in the future is cooling. */
                if (last > b->now ||
                    (uint64_t)b->now - (uint64_t)last < (uint64_t)b->pol->cooldown_ms) {
                    *st = PS_COOLING;
                }
            }
        }
        if (*st == PS_COOLING) {
            b->cooling++;
        }
    }
    return *st == PS_COOLING;
}

static int by_key_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->key != y->key) {
        return x->key > y->key ? -1 : 1;
    }
    return x->rid < y->rid ? -1 : x->rid > y->rid;
}

/* Weighs receiver r for replica rid (partition pidx) moving off donor n while balancing
 * dimension d, against the best so far (*best, *best_gain, *best_newr): the receiver that
 * lowers max(rel_n, rel_r) in d most (ties: the one left least loaded, then the lower index),
 * by more than hysteresis * the donor's drop (a partition about as large as the gap,
 * which would only make the receiver the next donor, does not move), without raising
 * max(rel_n, rel_r) in any other dimension; alive, not holding the partition, within capacity,
 * keeping the zone spread. */
static void consider(const bal *b, uint32_t n, uint32_t r, uint32_t pidx, size_t d, uint32_t *best,
                     double *best_gain, double *best_newr)
{
    const pz_model *m = b->m;
    size_t nd = b->nd;
    const double *x = pz_part_load(m, pidx);
    const double *ln = m->nodes[n].load, *in = b->inv + (size_t)n * nd;
    if (r == n || !pz_node_eligible(m, r)) {
        return;
    }
    const double *lr = m->nodes[r].load, *ir = b->inv + (size_t)r * nd;
    double reln = ln[d] * in[d], relr = lr[d] * ir[d];
    double gap = reln - relr;
    if (!(gap > 0)) {
        return;
    }
    double newr = (lr[d] + x[d]) * ir[d];
    double after = fmax((ln[d] - x[d]) * in[d], newr);
    double gain = reln - after;
    if (!(gain > 1e-12 * reln) || !(gain > b->pol->hysteresis * x[d] * in[d])) {
        return;
    }
    /* Ties: the receiver left least loaded, then the lower index (stated, not left to the
     * order of weighing: the fast search weighs in another order than the index). */
    if (gain < *best_gain ||
        (gain == *best_gain && (newr > *best_newr || (newr == *best_newr && r > *best)))) {
        return;
    }
    for (size_t e = 0; e < nd; e++) {
        if (e == d || ir[e] == 0) {
            continue;
        }
        double before = fmax(ln[e] * in[e], lr[e] * ir[e]);
        if (!((lr[e] + x[e]) * ir[e] <= before)) {
            return;
        }
    }
    if (pz_part_on_node(m, pidx, r) || !pz_fits(m, r, pidx) || !pz_zone_move_ok(m, pidx, n, r)) {
        return;
    }
    *best_gain = gain;
    *best_newr = newr;
    *best = r;
}

/* The receiver for replica rid moving off donor n while balancing dimension d, or PZ_NONE
 * (see consider): every node weighed, in index order. The reference for the fast search. */
static uint32_t best_receiver_brute(const bal *b, uint32_t n, uint32_t rid, size_t d)
{
    double best_gain = 0, best_newr = INFINITY;
    uint32_t best = PZ_NONE;
    for (uint32_t r = 0; r < b->nn; r++) {
        consider(b, n, r, PZ_RID_PART(rid), d, &best, &best_gain, &best_newr);
    }
    return best;
}

/* The same receiver as best_receiver_brute, walking dimension d's receivers from the coldest
 * (ord: rel ascending, ties by index). The winner is the receiver with the least
 * newr = (load_r + x) * inv_r, ties to the lower index: the gain only falls as newr grows.
 * Node k of the walk and every later one have newr >= rel_k + x * irmin; once that bound (less
 * a margin far above the rounding error) exceeds the best newr found, or is too high for the
 * gain thresholds, no later node can win and the walk stops. */
/* The walk's stopping test for a candidate of load x in d off donor n, at receiver r: true
 * when neither r nor any warmer receiver can beat best_newr or pass the gain thresholds. */
static bool walk_stops(const bal *b, uint32_t n, size_t d, double x, uint32_t r, double best_newr)
{
    const pz_model *m = b->m;
    size_t nd = b->nd;
    const double *ln = m->nodes[n].load, *in = b->inv + (size_t)n * nd;
    double reln = ln[d] * in[d], newn = (ln[d] - x) * in[d];
    double thr = fmax(1e-12 * reln, b->pol->hysteresis * x * in[d]);
    double lb = (m->nodes[r].load[d] * b->inv[(size_t)r * nd + d] + x * b->irmin[d]) * (1 - 1e-9);
    return lb > best_newr || !(reln - fmax(newn, lb) > thr);
}

/* Half of walk_stops' gain test: a load of x moved off n to r (or any warmer receiver) would
 * leave r too loaded for the gain thresholds. Monotone in x: false below some load, true
 * above (every operation here is monotone, rounding included). When it holds, walk_stops
 * does too. */
static bool too_large(const bal *b, uint32_t n, size_t d, double x, uint32_t r)
{
    const pz_model *m = b->m;
    size_t nd = b->nd;
    const double *ln = m->nodes[n].load, *in = b->inv + (size_t)n * nd;
    double reln = ln[d] * in[d];
    double thr = fmax(1e-12 * reln, b->pol->hysteresis * x * in[d]);
    double lb = (m->nodes[r].load[d] * b->inv[(size_t)r * nd + d] + x * b->irmin[d]) * (1 - 1e-9);
    return !(reln - lb > thr);
}

static uint32_t best_receiver_fast(const bal *b, uint32_t n, const cand *c, size_t d)
{
    uint32_t pidx = PZ_RID_PART(c->rid);
    double x = c->key; /* the partition's load in d (loads do not change within a round) */
    double best_gain = 0, best_newr = INFINITY;
    uint32_t best = PZ_NONE;
    const uint32_t *ord = b->ord + d * b->nelig;
    for (uint32_t k = 0; k < b->nelig; k++) {
        uint32_t r = ord[k];
        if (walk_stops(b, n, d, x, r, best_newr)) {
            break;
        }
        /* Moved this round (read only now: most candidates stop at the bound above). */
        if (k == 0 && b->pstate[pidx] == PS_MOVED) {
            return PZ_NONE;
        }
        consider(b, n, r, pidx, d, &best, &best_gain, &best_newr);
    }
    return best;
}

/* ---- the fast search's structures --------------------------------------------------------- */

static double rel_of(const bal *b, uint32_t n, size_t d)
{
    return b->m->nodes[n].load[d] * b->inv[(size_t)n * b->nd + d];
}

static bool ord_before(const bal *b, size_t d, uint32_t x, uint32_t y)
{
    double rx = rel_of(b, x, d), ry = rel_of(b, y, d);
    return rx < ry || (rx == ry && x < y);
}

/* Node n's load changed: restores its place in every dimension's order. */
static void ord_fix(bal *b, uint32_t n)
{
    for (size_t d = 0; d < b->nd; d++) {
        uint32_t *o = b->ord + d * b->nelig, *pos = b->opos + d * b->nn;
        uint32_t i = pos[n];
        while (i > 0 && ord_before(b, d, n, o[i - 1])) {
            o[i] = o[i - 1];
            pos[o[i]] = i;
            i--;
        }
        while (i + 1 < b->nelig && ord_before(b, d, o[i + 1], n)) {
            o[i] = o[i + 1];
            pos[o[i]] = i;
            i++;
        }
        o[i] = n;
        pos[n] = i;
    }
}

typedef struct {
    double rel;
    uint32_t n;
} relnode;

static int by_rel(const void *a, const void *b)
{
    const relnode *x = a, *y = b;
    if (x->rel != y->rel) {
        return x->rel < y->rel ? -1 : 1;
    }
    return x->n < y->n ? -1 : x->n > y->n;
}

/* The greatest weighted excess w * (rel - 1) of node n among its hot dimensions (the first
 * dimension on ties) into *imp and *dim; false when n is hot in none. */
static bool node_excess(const bal *b, uint32_t n, double *imp, size_t *dim)
{
    const double *l = b->m->nodes[n].load, *iv = b->inv + (size_t)n * b->nd;
    bool found = false;
    for (size_t d = 0; d < b->nd; d++) {
        if (b->w[d] <= 0 || iv[d] == 0) {
            continue;
        }
        double ex = l[d] * iv[d] - 1;
        if (!(ex > b->pol->band)) {
            continue;
        }
        double v = b->w[d] * ex;
        if (!found || v > *imp) {
            *imp = v;
            *dim = d;
            found = true;
        }
    }
    return found;
}

/* Node n's excess changed (or it left the round): its place in the hot heap. */
static void hot_fix(bal *b, uint32_t n)
{
    double imp = 0;
    size_t d = 0;
    bool hot = !b->done[n] && node_excess(b, n, &imp, &d);
    bool in = pz_heap_has(&b->hot, n);
    if (!hot) {
        if (in) {
            pz_heap_remove(&b->hot, n);
        }
        return;
    }
    b->hkey[n] = pz_key_of(imp);
    b->hdim[n] = (uint8_t)d;
    if (in) {
        pz_heap_update(&b->hot, n);
    } else {
        pz_heap_push(&b->hot, n);
    }
}

/* Builds the fast search's state for the round (after compute_inv and the done flags). */
static int fast_init(bal *b)
{
    pz_model *m = b->m;
    size_t nn = b->nn ? b->nn : 1;
    relnode *tmp = malloc(nn * sizeof *tmp);
    b->lists = calloc(nn * b->nd, sizeof *b->lists);
    b->ord = malloc(nn * b->nd * sizeof *b->ord);
    b->opos = malloc(nn * b->nd * sizeof *b->opos);
    b->hkey = calloc(nn, sizeof *b->hkey);
    b->hdim = calloc(nn, sizeof *b->hdim);
    b->ha = malloc(nn * sizeof *b->ha);
    b->hpos = malloc(nn * sizeof *b->hpos);
    if (!tmp || !b->lists || !b->ord || !b->opos || !b->hkey || !b->hdim || !b->ha || !b->hpos) {
        free(tmp);
        return SHARDZ_ENOMEM;
    }
    memset(b->opos, 0xff, nn * b->nd * sizeof *b->opos);
    memset(b->hpos, 0xff, nn * sizeof *b->hpos);
    b->hot = (pz_heap){.a = b->ha, .pos = b->hpos, .key = b->hkey, .max = true};
    b->nelig = 0;
    for (uint32_t n = 0; n < b->nn; n++) {
        b->nelig += pz_node_eligible(m, n);
    }
    for (size_t d = 0; d < b->nd; d++) {
        uint32_t k = 0;
        b->irmin[d] = INFINITY;
        for (uint32_t n = 0; n < b->nn; n++) {
            if (!pz_node_eligible(m, n)) {
                continue;
            }
            tmp[k++] = (relnode){.rel = rel_of(b, n, d), .n = n};
            b->irmin[d] = fmin(b->irmin[d], b->inv[(size_t)n * b->nd + d]);
        }
        qsort(tmp, k, sizeof *tmp, by_rel);
        for (uint32_t i = 0; i < k; i++) {
            b->ord[d * b->nelig + i] = tmp[i].n;
            b->opos[d * b->nn + tmp[i].n] = i;
        }
    }
    free(tmp);
    for (uint32_t n = 0; n < b->nn; n++) {
        hot_fix(b, n);
    }
    return 0;
}

static void fast_free(bal *b)
{
    if (b->lists) {
        for (size_t i = 0; i < (size_t)b->nn * b->nd; i++) {
            free(b->lists[i].a);
        }
    }
    free(b->lists);
    free(b->ord);
    free(b->opos);
    free(b->hkey);
    free(b->hdim);
    free(b->ha);
    free(b->hpos);
}

/* ---- steps -------------------------------------------------------------------------------- */

/* Node n's candidates in dimension d: its replicas not moved this round, not cooling, with load
 * in d, into b->cands (*k of them); sorted hottest first (ties: replica id) when asked. */
static int collect(bal *b, uint32_t n, size_t d, bool sort, size_t *k)
{
    pz_model *m = b->m;
    const pz_node *nd = &m->nodes[n];
    if (nd->nlist > b->capcands) {
        cand *nc = realloc(b->cands, nd->nlist * sizeof *nc);
        if (!nc) {
            return SHARDZ_ENOMEM;
        }
        b->cands = nc;
        b->capcands = nd->nlist;
    }
    *k = 0;
    for (uint32_t i = 0; i < nd->nlist; i++) {
        uint32_t rid = nd->list[i], pidx = PZ_RID_PART(rid);
        if (b->pstate[pidx] == PS_MOVED || cooling(b, pidx)) {
            continue;
        }
        double key = pz_part_load(m, pidx)[d];
        if (key <= 0) {
            continue;
        }
        b->cands[(*k)++] = (cand){.key = key, .rid = rid};
    }
    if (sort) {
        qsort(b->cands, *k, sizeof *b->cands, by_key_desc);
    }
    return 0;
}

/* One step on donor n, dimension d: moves its hottest movable replica that has a receiver.
 * *moved false: no replica of n can move (the caller retires n for the round). The brute
 * search collects and sorts the candidates at every step; the fast one collects them once per
 * round and dimension (later steps only lose candidates: moved partitions, skipped here) and
 * sorts them the first time any of them could get past the coldest receiver. */
static int step(bal *b, uint32_t n, size_t d, bool *moved)
{
    pz_model *m = b->m;
    const cand *cs;
    size_t k = 0, first = 0;
    int rc;
    *moved = false;
    if (b->brute) {
        rc = collect(b, n, d, true, &k);
        if (rc) {
            return rc;
        }
        cs = b->cands;
    } else {
        cand_list *l = &b->lists[(size_t)n * b->nd + d];
        if (!l->built) {
            rc = collect(b, n, d, false, &k);
            if (rc) {
                return rc;
            }
            l->a = malloc((k ? k : 1) * sizeof *l->a);
            if (!l->a) {
                return SHARDZ_ENOMEM;
            }
            memcpy(l->a, b->cands, k * sizeof *l->a);
            l->n = (uint32_t)k;
            l->built = true;
        }
        if (!l->sorted) {
            /* No candidate gets past the coldest receiver: no move now, no need to sort. */
            bool any = false;
            for (uint32_t i = 0; i < l->n && !any; i++) {
                any = !walk_stops(b, n, d, l->a[i].key, b->ord[d * b->nelig], INFINITY);
            }
            if (!any) {
                return 0;
            }
            qsort(l->a, l->n, sizeof *l->a, by_key_desc);
            l->sorted = true;
        }
        /* Moved candidates at the head are skipped for the rest of the round. */
        while (l->start < l->n && b->pstate[PZ_RID_PART(l->a[l->start].rid)] == PS_MOVED) {
            l->start++;
        }
        cs = l->a;
        k = l->n;
        first = l->start;
        /* Skip the head too large for even the coldest receiver: a monotone test in the
         * load (see too_large), so a binary search finds where it turns false. */
        size_t lo = first, hi = k;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (too_large(b, n, d, cs[mid].key, b->ord[d * b->nelig])) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        first = lo;
    }
    for (size_t i = first; i < k; i++) {
        uint32_t rid = cs[i].rid;
        uint32_t r =
            b->brute ? best_receiver_brute(b, n, rid, d) : best_receiver_fast(b, n, &cs[i], d);
        if (r == PZ_NONE) {
            continue;
        }
        rc = pz_plan_move(m, b->plan, PZ_RID_PART(rid), PZ_RID_SLOT(rid), r, SHARDZ_REASON_LOAD);
        if (rc) {
            return rc;
        }
        b->pstate[PZ_RID_PART(rid)] = PS_MOVED;
        *moved = true;
        if (!b->brute) {
            ord_fix(b, n);
            ord_fix(b, r);
            hot_fix(b, n);
            hot_fix(b, r);
        }
        return 0;
    }
    return 0;
}

/* The hot (node, dimension) with the greatest weighted excess among nodes still in the round
 * (ties: the lower node, then the lower dimension); false when none is hot. */
static bool hottest(const bal *b, uint32_t *node, size_t *dim)
{
    if (!b->brute) {
        if (b->hot.n == 0) {
            return false;
        }
        *node = b->hot.a[0];
        *dim = b->hdim[*node];
        return true;
    }
    double best = 0;
    bool found = false;
    for (uint32_t n = 0; n < b->nn; n++) {
        double imp = 0;
        size_t d = 0;
        if (b->done[n] || !node_excess(b, n, &imp, &d)) {
            continue;
        }
        if (!found || imp > best) {
            best = imp;
            *node = n;
            *dim = d;
            found = true;
        }
    }
    return found;
}

/* Whether any eligible node is hot in a weighted dimension. */
static bool any_hot(const bal *b)
{
    for (uint32_t n = 0; n < b->nn; n++) {
        double imp;
        size_t d;
        if (pz_node_eligible(b->m, n) && node_excess(b, n, &imp, &d)) {
            return true;
        }
    }
    return false;
}

static int run(bal *b, size_t budget, shardz_balance_report *rep)
{
    pz_model *m = b->m;
    for (uint32_t n = 0; n < b->nn; n++) {
        b->done[n] = !pz_node_eligible(m, n);
    }
    if (!b->brute) {
        int rc = fast_init(b);
        if (rc) {
            return rc;
        }
    }
    while (b->plan->n < budget) {
        uint32_t n = PZ_NONE;
        size_t d = 0;
        if (!hottest(b, &n, &d)) {
            rep->stop = any_hot(b) ? SHARDZ_BALANCE_STUCK : SHARDZ_BALANCE_BALANCED;
            return 0;
        }
        bool moved;
        int rc = step(b, n, d, &moved);
        if (rc) {
            return rc;
        }
        if (!moved) {
            b->done[n] = 1;
            if (!b->brute) {
                hot_fix(b, n);
            }
        }
    }
    rep->stop = SHARDZ_BALANCE_BUDGET;
    return 0;
}

static int balance_round(shardz_sharder *s, const shardz_balance_policy *pol, int64_t now_ms,
                         shardz_last_move_fn last_move, void *ctx, unsigned flags,
                         shardz_plan **out, shardz_balance_report *report, bool brute)
{
    if (!s || !out || (flags & ~SHARDZ_PLAN_DRY_RUN) || shardz_balance_policy_validate(pol)) {
        return SHARDZ_EINVAL;
    }
    *out = NULL;
    pz_model *m = &s->m;
    if (pol->ndims_weight > m->ndims) {
        return SHARDZ_EINVAL;
    }
    shardz_balance_report rep = {.ndims = m->ndims};
    bal b = {.m = m,
             .pol = pol,
             .nn = m->nnodes,
             .nd = m->ndims,
             .now = now_ms,
             .last_move = last_move,
             .ctx = ctx,
             .brute = brute};
    for (size_t d = 0; d < b.nd; d++) {
        b.w[d] = d < pol->ndims_weight ? pol->dims_weight[d] : 1.0;
    }
    size_t nn = b.nn ? b.nn : 1;
    b.inv = malloc(nn * b.nd * sizeof *b.inv);
    b.done = malloc(nn);
    b.pstate = calloc(m->nparts ? m->nparts : 1, 1);
    b.plan = pz_plan_new(m);
    int rc = 0;
    if (!b.inv || !b.done || !b.pstate || !b.plan) {
        rc = SHARDZ_ENOMEM;
        goto out;
    }
    rc = pz_plan_snapshot(m, b.plan);
    if (rc) {
        goto out;
    }
    b.plan->logging = (flags & SHARDZ_PLAN_DRY_RUN) != 0;

    uint32_t eligible = compute_inv(m, b.inv);
    max_rel(m, b.inv, rep.before);
    size_t budget = 0;
    if (pol->max_moves_fraction > 0 && m->nparts > 0) {
        budget = (size_t)floor(pol->max_moves_fraction * (double)m->nparts);
        if (budget == 0) {
            budget = 1;
        }
    }
    rep.budget = budget;
    bool any_load = false;
    for (size_t d = 0; d < b.nd; d++) {
        any_load |= rep.before[d] > 0 && b.w[d] > 0;
    }
    if (degraded(m)) {
        rep.stop = SHARDZ_BALANCE_DEGRADED;
    } else if (budget == 0 || eligible < 2 || !any_load) {
        rep.stop = SHARDZ_BALANCE_OFF;
    } else {
        rc = run(&b, budget, &rep);
    }
    if (rc) {
        pz_plan_revert(m, b.plan);
        goto out;
    }
    rep.moves = b.plan->n;
    rep.cooling = b.cooling;
    memcpy(rep.after, rep.before, sizeof rep.after);
    if (b.plan->n > 0) {
        max_rel(m, b.inv, rep.after);
        if (flags & SHARDZ_PLAN_DRY_RUN) {
            pz_plan_revert(m, b.plan);
        } else {
            pz_plan_commit(m, b.plan);
        }
    }
    /* As in shardz_sharder_rebalance: a dry run keeps its log for shardz_sharder_apply. */
    b.plan->logging = false;
    free(b.plan->node_load);
    b.plan->node_load = NULL;
    *out = b.plan;
    b.plan = NULL;
    if (report) {
        *report = rep;
    }
out:
    shardz_plan_free(b.plan);
    free(b.inv);
    free(b.done);
    free(b.pstate);
    free(b.cands);
    fast_free(&b);
    return rc;
}

int shardz_sharder_balance_round(shardz_sharder *s, const shardz_balance_policy *pol,
                                 int64_t now_ms, shardz_last_move_fn last_move, void *ctx,
                                 unsigned flags, shardz_plan **out, shardz_balance_report *report)
{
    return balance_round(s, pol, now_ms, last_move, ctx, flags, out, report, false);
}

int pz_balance_round_brute(shardz_sharder *s, const shardz_balance_policy *pol, int64_t now_ms,
                           shardz_last_move_fn last_move, void *ctx, unsigned flags,
                           shardz_plan **out, shardz_balance_report *report)
{
    return balance_round(s, pol, now_ms, last_move, ctx, flags, out, report, true);
}

int shardz_sharder_load_imbalance(const shardz_sharder *s, double *out, size_t cap, size_t *ndims)
{
    if (!s || !ndims || (cap > 0 && !out)) {
        return SHARDZ_EINVAL;
    }
    const pz_model *m = &s->m;
    double *inv = malloc((m->nnodes ? m->nnodes : 1) * m->ndims * sizeof *inv);
    if (!inv) {
        return SHARDZ_ENOMEM;
    }
    double r[SHARDZ_MAX_DIMS];
    compute_inv(m, inv);
    max_rel(m, inv, r);
    free(inv);
    for (size_t d = 0; d < cap && d < m->ndims; d++) {
        out[d] = r[d];
    }
    *ndims = m->ndims;
    return 0;
}
