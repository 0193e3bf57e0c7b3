/* Keys and the range table of the "range" kind: key order, the middle of a range, and the
 * table of routed ranges (rtable.h) with its all-or-nothing restore and replace. Pure: no I/O,
 * no clock, no globals; one thread. */
#include <stdlib.h>
#include <string.h>

#include "placement/rtable.h"

int shardz_key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;

    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* true when every byte of k is in [amin, amax]. */
static int in_alphabet(const unsigned char *k, size_t len, int amin, int amax)
{
    for (size_t i = 0; i < len; i++) {
        if (k[i] < amin || k[i] > amax) {
            return 0;
        }
    }
    return 1;
}

int shardz_key_middle(const void *lo, size_t lo_len, const void *hi, size_t hi_len,
                      unsigned char amin, unsigned char amax, char *out, size_t cap,
                      size_t *out_len)
{
    const unsigned char *l = lo, *h = hi;
    int hi_inf = hi_len == 0;
    size_t i = 0, n = 0;

    if ((lo_len > 0 && lo == NULL) || (hi_len > 0 && hi == NULL) || out_len == NULL ||
        (cap > 0 && out == NULL) || amin == 0 || amin > amax) {
        return SHARDZ_EINVAL;
    }
    if (!in_alphabet(l, lo_len, amin, amax) || !in_alphabet(h, hi_len, amin, amax) ||
        (!hi_inf && shardz_key_cmp(lo, lo_len, hi, hi_len) >= 0)) {
        return SHARDZ_EINVAL;
    }
    /* Digits: lo's byte, or amin - 1 once lo ended (below every digit); hi's byte, or
     * amax + 1 once the result went below hi at an earlier digit (+infinity from there). */
    for (;;) {
        int a = i < lo_len ? l[i] : amin - 1;
        int b = hi_inf ? amax + 1 : h[i]; /* i < hi_len: hi is not a prefix of lo (lo < hi) */

        if (n == cap) {
            return SHARDZ_ERANGE;
        }
        if (a == b) { /* the common prefix */
            out[n++] = (char)a;
            i++;
            continue;
        }
        if (b - a >= 2) {
            out[n++] = (char)((a + b) / 2);
            break;
        }
        if (a < amin) {
            return SHARDZ_ERANGE; /* [k, k + amin): nothing of the alphabet in between */
        }
        out[n++] = (char)a; /* b == a + 1: keep lo's digit, then the middle of lo's rest and +inf */
        i++;
        hi_inf = 1;
    }
    *out_len = n;
    return 0;
}

/* ---- the table ------------------------------------------------------------------------- */

void pz_rtable_init(pz_rtable *t)
{
    memset(t, 0, sizeof *t);
}

static void entries_free(pz_rentry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(e[i].lo);
    }
}

void pz_rtable_destroy(pz_rtable *t)
{
    if (t->e != NULL) {
        entries_free(t->e, t->n);
    }
    free(t->e);
    free(t->by_id);
    memset(t, 0, sizeof *t);
}

/* An entry's id and index, sorted by id to build the by-id index (plain qsort: no context). */
typedef struct {
    const char *pid;
    size_t i;
} id_at;

static int cmp_id_at(const void *a, const void *b)
{
    return strcmp(((const id_at *)a)->pid, ((const id_at *)b)->pid);
}

/* Makes e[0..n-1] (taken) the table's entries with a fresh by-id index, and hands the old
 * entry array back in *old (the caller frees what it no longer uses). SHARDZ_EINVAL (an id
 * twice), SHARDZ_ENOMEM: the table is unchanged and e stays the caller's. */
static int install(pz_rtable *t, pz_rentry *e, size_t n, pz_rentry **old)
{
    size_t *ix = malloc((n ? n : 1) * sizeof *ix);
    id_at *ids = malloc((n ? n : 1) * sizeof *ids);

    if (ix == NULL || ids == NULL) {
        free(ix);
        free(ids);
        return SHARDZ_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        ids[i] = (id_at){e[i].pid, i};
    }
    qsort(ids, n, sizeof *ids, cmp_id_at);
    for (size_t i = 0; i < n; i++) {
        ix[i] = ids[i].i;
        if (i > 0 && strcmp(ids[i - 1].pid, ids[i].pid) == 0) {
            free(ix);
            free(ids);
            return SHARDZ_EINVAL;
        }
    }
    free(ids);
    *old = t->e;
    free(t->by_id);
    t->e = e;
    t->n = n;
    t->by_id = ix;
    return 0;
}

size_t pz_rtable_find(const pz_rtable *t, const void *key, size_t len)
{
    size_t lo = 0, hi = t->n;

    if (t->n == 0) {
        return PZ_RT_NONE;
    }
    /* the last entry whose lo <= key (entry 0's lo is empty: always <= key) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (shardz_key_cmp(t->e[mid].lo, t->e[mid].lo_len, key, len) <= 0) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

size_t pz_rtable_index(const pz_rtable *t, const char *pid)
{
    size_t lo = 0, hi = t->n;

    while (pid != NULL && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->e[t->by_id[mid]].pid, pid);

        if (c == 0) {
            return t->by_id[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return PZ_RT_NONE;
}

void pz_rtable_get(const pz_rtable *t, size_t i, shardz_key_range *out)
{
    out->partition = t->e[i].pid;
    out->lo = t->e[i].lo;
    out->lo_len = t->e[i].lo_len;
    out->hi = i + 1 < t->n ? t->e[i + 1].lo : "";
    out->hi_len = i + 1 < t->n ? t->e[i + 1].lo_len : 0;
}

/* A new entry for range r (lo and id copied). */
static int entry_make(pz_rentry *e, const shardz_key_range *r)
{
    size_t idlen = strlen(r->partition);

    e->lo = malloc(r->lo_len + idlen + 1);
    if (e->lo == NULL) {
        return SHARDZ_ENOMEM;
    }
    if (r->lo_len > 0) {
        memcpy(e->lo, r->lo, r->lo_len);
    }
    e->lo_len = r->lo_len;
    e->pid = e->lo + r->lo_len;
    memcpy(e->pid, r->partition, idlen + 1);
    return 0;
}

/* Checks one range's fields: an id, bounds that fit, lo < hi. */
static int range_valid(const shardz_key_range *r)
{
    if (r->partition == NULL || r->partition[0] == '\0' || (r->lo_len > 0 && r->lo == NULL) ||
        (r->hi_len > 0 && r->hi == NULL) || r->lo_len > SHARDZ_RANGE_KEY_MAX ||
        r->hi_len > SHARDZ_RANGE_KEY_MAX) {
        return 0;
    }
    return r->hi_len == 0 || shardz_key_cmp(r->lo, r->lo_len, r->hi, r->hi_len) < 0;
}

static int same_key(const char *a, size_t alen, const char *b, size_t blen)
{
    return shardz_key_cmp(a, alen, b, blen) == 0;
}

static int cmp_by_lo(const void *x, const void *y)
{
    const shardz_key_range *a = x, *b = y;

    return shardz_key_cmp(a->lo, a->lo_len, b->lo, b->lo_len);
}

/* Builds entries for r[0..n-1] (key order, already checked) into a new array of cap. */
static int entries_build(const shardz_key_range *r, size_t n, pz_rentry *out)
{
    for (size_t i = 0; i < n; i++) {
        if (entry_make(&out[i], &r[i]) != 0) {
            entries_free(out, i);
            return SHARDZ_ENOMEM;
        }
    }
    return 0;
}

/* Ranges r[0..n-1] in key order: each valid, contiguous (hi of one is lo of the next). Ids
 * given twice are found by install. */
static int chain_valid(const shardz_key_range *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!range_valid(&r[i])) {
            return 0;
        }
        if (i + 1 < n &&
            (r[i].hi_len == 0 || !same_key(r[i].hi, r[i].hi_len, r[i + 1].lo, r[i + 1].lo_len))) {
            return 0;
        }
    }
    return 1;
}

int pz_rtable_restore(pz_rtable *t, const shardz_key_range *r, size_t n)
{
    shardz_key_range *sorted = NULL;
    pz_rentry *e = NULL;
    int rc = SHARDZ_EINVAL;

    if (n > 0 && r == NULL) {
        return SHARDZ_EINVAL;
    }
    if (n == 0) {
        pz_rtable_destroy(t);
        return 0;
    }
    sorted = malloc(n * sizeof *sorted);
    e = malloc(n * sizeof *e);
    if (sorted == NULL || e == NULL) {
        rc = SHARDZ_ENOMEM;
        goto out;
    }
    memcpy(sorted, r, n * sizeof *sorted);
    for (size_t i = 0; i < n; i++) { /* checked before sorting reads the bounds */
        if (!range_valid(&sorted[i])) {
            goto out;
        }
    }
    qsort(sorted, n, sizeof *sorted, cmp_by_lo);
    if (sorted[0].lo_len != 0 || sorted[n - 1].hi_len != 0 || !chain_valid(sorted, n)) {
        goto out;
    }
    rc = entries_build(sorted, n, e);
    if (rc != 0) {
        goto out;
    }
    {
        size_t oldn = t->n;
        pz_rentry *old = NULL;
        rc = install(t, e, n, &old);
        if (rc != 0) {
            entries_free(e, n);
            goto out;
        }
        if (old != NULL) {
            entries_free(old, oldn);
        }
        free(old);
    }
    e = NULL;
out:
    free(sorted);
    free(e);
    return rc;
}

int pz_rtable_replace(pz_rtable *t, size_t first, size_t nold, const shardz_key_range *r,
                      size_t nnew)
{
    shardz_key_range span;
    pz_rentry *e = NULL;
    size_t n;
    int rc;

    if (nold == 0 || nnew == 0 || r == NULL || first >= t->n || nold > t->n - first ||
        !chain_valid(r, nnew)) {
        return SHARDZ_EINVAL;
    }
    pz_rtable_get(t, first + nold - 1, &span); /* the span's hi */
    if (!same_key(r[0].lo, r[0].lo_len, t->e[first].lo, t->e[first].lo_len) ||
        !same_key(r[nnew - 1].hi, r[nnew - 1].hi_len, span.hi, span.hi_len)) {
        return SHARDZ_EINVAL;
    }
    for (size_t i = 0; i < nnew; i++) {
        if (pz_rtable_index(t, r[i].partition) != PZ_RT_NONE) {
            return SHARDZ_EINVAL;
        }
    }
    n = t->n - nold + nnew;
    e = malloc(n * sizeof *e);
    if (e == NULL) {
        return SHARDZ_ENOMEM;
    }
    rc = entries_build(r, nnew, e + first);
    if (rc != 0) {
        free(e);
        return rc;
    }
    memcpy(e, t->e, first * sizeof *e);
    memcpy(e + first + nnew, t->e + first + nold, (t->n - first - nold) * sizeof *e);
    pz_rentry *old = NULL;
    rc = install(t, e, n, &old); /* new ids were checked against the table and each other */
    if (rc != 0) {
        entries_free(e + first, nnew);
        free(e);
        return rc;
    }
    entries_free(old + first, nold);
    free(old);
    return 0;
}
