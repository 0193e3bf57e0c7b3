/* The memory store: the in-memory twin of the SQLite store for deterministic unit tests. Keys
 * live in a treap ordered bytewise (priorities from a hash of the key, so the shape is
 * deterministic); changes in a log trimmed to the history. A transaction first allocates
 * everything it needs, then commits without a failure point, so any error changes nothing.
 * Runs on the caller's thread; one thread per handle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* One key. The value has its own allocation so a put on an existing key swaps it. */
typedef struct mnode {
    struct mnode *l, *r;
    uint32_t prio;
    bool doomed; /* marked for deletion by the transaction being prepared */
    char *value;
    size_t value_len;
    int64_t create, mod, version;
    size_t key_len;
    char key[];
} mnode;

/* One change in the log: key and value in one allocation. */
typedef struct {
    shardz_event_type type;
    int64_t rev, create, version;
    char *key; /* key_len bytes, then value_len bytes */
    size_t key_len, value_len;
} mevent;

typedef struct {
    shardz_store base;
    mnode *root;
    int64_t revision, compact, history;
    mevent *log; /* events log[head..len) are live */
    size_t head, len, cap;
    long fail_alloc; /* test hook: the nth allocation of a transaction fails */
} mem_store;

/* The per-operation plan a transaction prepares before it commits. */
typedef struct {
    mnode *node;    /* PUT: the existing node, or the new one (fresh) */
    bool fresh;     /* PUT: node is new, to insert */
    char *value;    /* PUT on an existing key: the new value buffer */
    mnode **doomed; /* DELETE, DELETE_PREFIX: the nodes to remove */
    size_t ndoomed;
} mplan;

static const store_ops memory_ops;

static void *mem_alloc(mem_store *m, size_t n)
{
    if (m->fail_alloc > 0 && --m->fail_alloc == 0) {
        return NULL;
    }
    return malloc(n ? n : 1);
}

static uint32_t key_prio(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < len; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

static int node_cmp(const mnode *n, const void *key, size_t len)
{
    return store_keycmp(n->key, n->key_len, key, len);
}

static mnode *find(mnode *t, const void *key, size_t len)
{
    while (t) {
        int c = node_cmp(t, key, len);

        if (c == 0) {
            return t;
        }
        t = c > 0 ? t->l : t->r;
    }
    return NULL;
}

/* Splits t into keys < key (*l) and keys >= key (*r). */
static void split(mnode *t, const void *key, size_t len, mnode **l, mnode **r)
{
    if (!t) {
        *l = *r = NULL;
    } else if (node_cmp(t, key, len) < 0) {
        split(t->r, key, len, &t->r, r);
        *l = t;
    } else {
        split(t->l, key, len, l, &t->l);
        *r = t;
    }
}

/* Joins a and b, every key of a below every key of b. */
static mnode *merge(mnode *a, mnode *b)
{
    if (!a) {
        return b;
    }
    if (!b) {
        return a;
    }
    if (a->prio > b->prio) {
        a->r = merge(a->r, b);
        return a;
    }
    b->l = merge(a, b->l);
    return b;
}

static void insert(mem_store *m, mnode *n)
{
    mnode *l, *r;

    split(m->root, n->key, n->key_len, &l, &r);
    m->root = merge(merge(l, n), r);
}

static mnode *erase(mnode *t, const void *key, size_t len)
{
    int c;

    if (!t) {
        return NULL;
    }
    c = node_cmp(t, key, len);
    if (c > 0) {
        t->l = erase(t->l, key, len);
    } else if (c < 0) {
        t->r = erase(t->r, key, len);
    } else {
        mnode *rest = merge(t->l, t->r);

        free(t->value);
        free(t);
        return rest;
    }
    return t;
}

static void free_tree(mnode *t)
{
    while (t) {
        mnode *r = t->r;

        free_tree(t->l);
        free(t->value);
        free(t);
        t = r;
    }
}

/* In-order walk of the keys in bounds; calls fn until it returns non-zero. */
typedef int (*walk_fn)(mnode *n, void *arg);
static int walk(mnode *t, const void *lo, size_t lo_len, const void *hi, size_t hi_len, walk_fn fn,
                void *arg)
{
    int rc;

    while (t) {
        bool above_lo = node_cmp(t, lo, lo_len) >= 0;

        if (above_lo) {
            rc = walk(t->l, lo, lo_len, hi, hi_len, fn, arg);
            if (rc) {
                return rc;
            }
            if (hi && node_cmp(t, hi, hi_len) >= 0) {
                return 1; /* t and everything right of it are past hi */
            }
            rc = fn(t, arg);
            if (rc) {
                return rc;
            }
        }
        t = t->r;
    }
    return 0;
}

/* ---- reads ---- */

static int mem_get(shardz_store *st, const void *key, size_t key_len, shardz_kv **out,
                   int64_t *revision)
{
    mem_store *m = (mem_store *)st;
    mnode *n = find(m->root, key, key_len);

    *revision = m->revision;
    if (!n) {
        return SHARDZ_ENOENT;
    }
    *out = store_kv_new(n->key, n->key_len, n->value, n->value_len, n->create, n->mod, n->version);
    return *out ? 0 : SHARDZ_ENOMEM;
}

typedef struct {
    store_builder b;
    size_t limit;
    bool more;
    int err;
} range_ctx;

static int range_one(mnode *n, void *arg)
{
    range_ctx *c = arg;

    if (c->limit && c->b.n == c->limit) {
        c->more = true;
        return 1;
    }
    c->err = store_builder_add(&c->b, SHARDZ_EVENT_PUT, n->key, n->key_len, n->value, n->value_len,
                               n->create, n->mod, n->version);
    return c->err;
}

static int mem_range(shardz_store *st, const void *lo, size_t lo_len, const void *hi, size_t hi_len,
                     size_t limit, shardz_range **out)
{
    mem_store *m = (mem_store *)st;
    range_ctx c = {.limit = limit};

    walk(m->root, lo, lo_len, hi, hi_len, range_one, &c);
    if (c.err) {
        store_builder_free(&c.b);
        return c.err;
    }
    return store_builder_range(&c.b, m->revision, c.more, out);
}

static int mem_changes(shardz_store *st, int64_t since, size_t limit, shardz_changes **out)
{
    mem_store *m = (mem_store *)st;
    store_builder b = {0};
    bool more = false;
    size_t lo = m->head, hi = m->len, i;
    int rc;

    if (since < m->compact) {
        store_seterr(st, "revision %lld is compacted (history starts after %lld)", (long long)since,
                     (long long)m->compact);
        return SHARDZ_STORE_ECOMPACTED;
    }
    while (lo < hi) { /* the first event after since */
        size_t mid = lo + (hi - lo) / 2;

        if (m->log[mid].rev <= since) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (i = lo; i < m->len; i++) {
        const mevent *e = &m->log[i];

        if (limit && b.n >= limit && e->rev != m->log[i - 1].rev) {
            more = true;
            break;
        }
        rc = store_builder_add(&b, e->type, e->key, e->key_len, e->key + e->key_len, e->value_len,
                               e->create, e->rev, e->version);
        if (rc) {
            store_builder_free(&b);
            return rc;
        }
    }
    return store_builder_changes(&b, m->revision, more, out);
}

static int mem_status(shardz_store *st, shardz_store_status *out)
{
    mem_store *m = (mem_store *)st;

    out->backend = "memory";
    out->sync = SHARDZ_STORE_SYNC_NONE;
    out->revision = m->revision;
    out->compact_revision = m->compact;
    return 0;
}

/* ---- the change log ---- */

/* Drops the events at or before revision rev and moves the history floor there. */
static void log_trim(mem_store *m, int64_t rev)
{
    if (rev <= m->compact) {
        return;
    }
    while (m->head < m->len && m->log[m->head].rev <= rev) {
        free(m->log[m->head++].key);
    }
    if (m->head == m->len) {
        m->head = m->len = 0;
    } else if (m->head > m->len / 2) {
        memmove(m->log, m->log + m->head, (m->len - m->head) * sizeof *m->log);
        m->len -= m->head;
        m->head = 0;
    }
    m->compact = rev;
}

static int mem_compact(shardz_store *st, int64_t revision)
{
    mem_store *m = (mem_store *)st;

    if (revision > m->revision) {
        store_seterr(st, "revision %lld is in the future (current %lld)", (long long)revision,
                     (long long)m->revision);
        return SHARDZ_EINVAL;
    }
    log_trim(m, revision);
    return 0;
}

/* Makes room for n more events without a later failure point. */
static int log_reserve(mem_store *m, size_t n)
{
    size_t cap;
    mevent *log;

    if (m->cap - m->len >= n) {
        return 0;
    }
    cap = m->cap ? m->cap : 64;
    while (cap - m->len < n) {
        cap *= 2;
    }
    log = mem_alloc(m, cap * sizeof *log);
    if (!log) {
        return SHARDZ_ENOMEM;
    }
    if (m->len) {
        memcpy(log, m->log, m->len * sizeof *log);
    }
    free(m->log);
    m->log = log;
    m->cap = cap;
    return 0;
}

/* ---- transactions ---- */

static bool compare_holds(mem_store *m, const shardz_compare *c)
{
    mnode *n = find(m->root, c->key, c->key_len);

    return n ? store_compare_holds(c, true, n->version, n->create, n->mod, n->value, n->value_len)
             : store_compare_holds(c, false, 0, 0, 0, NULL, 0);
}

typedef struct {
    mnode **v;
    size_t n, cap;
    mem_store *m;
    int err;
} doom_ctx;

static int doom_one(mnode *n, void *arg)
{
    doom_ctx *c = arg;

    if (n->doomed) {
        return 0;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        mnode **v = mem_alloc(c->m, cap * sizeof *v);

        if (!v) {
            c->err = SHARDZ_ENOMEM;
            return 1;
        }
        if (c->n) {
            memcpy(v, c->v, c->n * sizeof *v);
        }
        free(c->v);
        c->v = v;
        c->cap = cap;
    }
    n->doomed = true;
    c->v[c->n++] = n;
    return 0;
}

/* Prepares one operation: allocations and marks only, the tree stays as it is. */
static int prepare_op(mem_store *m, const shardz_op *o, mplan *p)
{
    doom_ctx c = {.m = m};

    if (o->type == SHARDZ_OP_PUT) {
        p->node = find(m->root, o->key, o->key_len);
        if (p->node) {
            p->value = mem_alloc(m, o->value_len);
            if (!p->value) {
                return SHARDZ_ENOMEM;
            }
            if (o->value_len) {
                memcpy(p->value, o->value, o->value_len);
            }
            return 0;
        }
        p->node = mem_alloc(m, sizeof *p->node + o->key_len);
        if (!p->node) {
            return SHARDZ_ENOMEM;
        }
        memset(p->node, 0, sizeof *p->node);
        p->fresh = true;
        p->node->value = mem_alloc(m, o->value_len);
        if (!p->node->value) {
            return SHARDZ_ENOMEM;
        }
        if (o->value_len) {
            memcpy(p->node->value, o->value, o->value_len);
        }
        p->node->value_len = o->value_len;
        memcpy(p->node->key, o->key, o->key_len);
        p->node->key_len = o->key_len;
        p->node->prio = key_prio(o->key, o->key_len);
        return 0;
    }
    if (o->type == SHARDZ_OP_DELETE) {
        mnode *n = find(m->root, o->key, o->key_len);

        if (n && !n->doomed) {
            doom_one(n, &c);
        }
    } else {
        store_bounds b;

        store_bounds_make(&b, o->key, o->key_len, NULL, 0);
        walk(m->root, b.lo, b.lo_len, b.hi_set ? b.hi : NULL, b.hi_len, doom_one, &c);
    }
    p->doomed = c.v;
    p->ndoomed = c.n;
    return c.err;
}

static void plans_free(mplan *plans, size_t nops)
{
    size_t i, j;

    for (i = 0; i < nops; i++) {
        mplan *p = &plans[i];

        if (p->fresh && p->node) {
            free(p->node->value);
            free(p->node);
        }
        free(p->value);
        for (j = 0; j < p->ndoomed; j++) {
            p->doomed[j]->doomed = false;
        }
        free(p->doomed);
    }
    free(plans);
}

/* Makes the event of one change; the key and value are copied. */
static int event_make(mem_store *m, mevent *e, shardz_event_type type, const void *key,
                      size_t key_len, const void *value, size_t value_len)
{
    e->type = type;
    e->key = mem_alloc(m, key_len + value_len);
    if (!e->key) {
        return SHARDZ_ENOMEM;
    }
    memcpy(e->key, key, key_len);
    if (value_len) {
        memcpy(e->key + key_len, value, value_len);
    }
    e->key_len = key_len;
    e->value_len = value_len;
    return 0;
}

static int mem_txn(shardz_store *st, const shardz_compare *cmps, size_t ncmps, const shardz_op *ops,
                   size_t nops, size_t *deleted, int64_t *revision)
{
    mem_store *m = (mem_store *)st;
    mplan *plans = NULL;
    mevent *evs = NULL;
    size_t nev = 0, i, j, k;
    int64_t rev = m->revision + 1;
    int rc = 0;

    *revision = m->revision;
    for (i = 0; i < ncmps; i++) {
        if (!compare_holds(m, &cmps[i])) {
            store_seterr(st, "compare %zu does not hold", i);
            return SHARDZ_ECONFLICT;
        }
    }
    /* Prepare: every allocation happens here; a failure undoes the marks and frees. */
    plans = calloc(nops ? nops : 1, sizeof *plans);
    if (!plans) {
        return SHARDZ_ENOMEM;
    }
    for (i = 0; i < nops; i++) {
        rc = prepare_op(m, &ops[i], &plans[i]);
        if (rc) {
            goto out;
        }
        nev += ops[i].type == SHARDZ_OP_PUT ? 1 : plans[i].ndoomed;
    }
    if (nev == 0) {
        goto out; /* nothing changes: no new revision */
    }
    evs = mem_alloc(m, nev * sizeof *evs);
    if (!evs) {
        rc = SHARDZ_ENOMEM;
        goto out;
    }
    memset(evs, 0, nev * sizeof *evs);
    for (i = 0, k = 0; i < nops; i++) {
        const mplan *p = &plans[i];

        if (ops[i].type == SHARDZ_OP_PUT) {
            rc = event_make(m, &evs[k++], SHARDZ_EVENT_PUT, ops[i].key, ops[i].key_len,
                            ops[i].value, ops[i].value_len);
            if (rc) {
                goto out;
            }
            continue;
        }
        for (j = 0; j < p->ndoomed; j++) {
            rc = event_make(m, &evs[k++], SHARDZ_EVENT_DELETE, p->doomed[j]->key,
                            p->doomed[j]->key_len, NULL, 0);
            if (rc) {
                goto out;
            }
        }
    }
    rc = log_reserve(m, nev);
    if (rc) {
        goto out;
    }

    /* Commit: no failure point from here on. */
    for (i = 0, k = 0; i < nops; i++) {
        mplan *p = &plans[i];

        if (ops[i].type == SHARDZ_OP_PUT) {
            mnode *n = p->node;

            if (p->fresh) {
                n->create = rev;
                n->version = 0;
                insert(m, n);
                p->node = NULL;
            } else {
                free(n->value);
                n->value = p->value;
                n->value_len = ops[i].value_len;
                p->value = NULL;
            }
            n->mod = rev;
            n->version++;
            evs[k].create = n->create;
            evs[k].version = n->version;
            evs[k++].rev = rev;
            continue;
        }
        for (j = 0; j < p->ndoomed; j++) {
            evs[k++].rev = rev;
            m->root = erase(m->root, p->doomed[j]->key, p->doomed[j]->key_len);
        }
        *deleted += p->ndoomed;
        p->ndoomed = 0;
    }
    memcpy(m->log + m->len, evs, nev * sizeof *evs);
    m->len += nev;
    nev = 0; /* the log owns the events now */
    m->revision = rev;
    if (rev - m->history > m->compact) {
        log_trim(m, rev - m->history);
    }
out:
    if (rc) {
        store_seterr(st, "out of memory");
        *deleted = 0;
    }
    for (i = 0; evs && i < nev; i++) {
        free(evs[i].key);
    }
    free(evs);
    plans_free(plans, nops);
    *revision = m->revision;
    return rc;
}

static void mem_close(shardz_store *st)
{
    mem_store *m = (mem_store *)st;
    size_t i;

    free_tree(m->root);
    for (i = m->head; i < m->len; i++) {
        free(m->log[i].key);
    }
    free(m->log);
    free(m);
}

static const store_ops memory_ops = {
    .version = STORE_OPS_VERSION,
    .name = "memory",
    .get = mem_get,
    .range = mem_range,
    .txn = mem_txn,
    .changes = mem_changes,
    .compact = mem_compact,
    .status = mem_status,
    .close = mem_close,
    .txn_whole = mem_txn, /* prepares everything, then commits: any size */
};

int shardz_store_open_memory(const shardz_store_options *opt, shardz_store **out)
{
    shardz_store_options def = {0};
    mem_store *m;

    *out = NULL;
    if (!opt) {
        opt = &def;
    }
    if (opt->history < 0 || opt->busy_timeout_ms < 0) {
        if (opt->errbuf && opt->errbuf_size) {
            snprintf(opt->errbuf, opt->errbuf_size, "invalid option");
        }
        return SHARDZ_EINVAL;
    }
    m = calloc(1, sizeof *m);
    if (!m) {
        return SHARDZ_ENOMEM;
    }
    m->base.ops = &memory_ops;
    m->history = opt->history ? opt->history : SHARDZ_STORE_HISTORY_DEFAULT;
    *out = &m->base;
    return 0;
}

void store_memory_fail_alloc(shardz_store *st, long n)
{
    if (st && st->ops == &memory_ops) {
        ((mem_store *)st)->fail_alloc = n;
    }
}
