/* A namespace's assignment pages in memory (docs/STORE.md 5, "Assignment pages"): which page
 * each partition joins, what memory knows of the store's pages, overrides and removal marks,
 * and the writes built from them: a page rewritten when enough of it changed, a partition's own
 * key otherwise, every record numbered so that a load takes the newest whatever a crash left.
 * The rule and the text are the pure core's (core/apage.c). Event-loop thread. */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "daemon/core/apage.h"
#include "daemon/daemon.h"
#include "daemon/oom.h"
#include "daemon/sbuf.h"
#include "daemon/store_lane.h"

/* A page's value in format 2: the header, then the lines (len bytes) as one zlib stream at
 * level 1 (a page of plain records shrinks about tenfold, at several hundred MB/s: etcd, the
 * followers' streams and SQLite's overflow pages carry a tenth). *out_len its length; malloc'd
 * (aborts on out-of-memory, as every allocation of the loop's). zlib: Debian's zlib1g, the
 * compression curl and half the system already link. */
static char *page_deflate(const char *lines, size_t len, uint64_t w, size_t *out_len)
{
    char head[SZD_APAGE_HEAD_MAX];
    size_t hn = szd_apage_head(head, w, len);
    uLongf zn = compressBound((uLong)len);
    char *v = szd_xmalloc(hn + zn + 1);
    memcpy(v, head, hn);
    if (compress2((Bytef *)v + hn, &zn, (const Bytef *)lines, (uLong)len, 1) != Z_OK) {
        szd_oom(); /* only Z_MEM_ERROR is possible with a large enough buffer */
    }
    v[hn + zn] = '\0';
    *out_len = hn + zn;
    return v;
}

int szd_apage_lines(const char *value, size_t vlen, uint64_t *w, const char **text, size_t *len,
                    char **buf)
{
    size_t off, raw;
    *buf = NULL;
    if (szd_apage_read_head(value, vlen, w, &off, &raw) != 0) {
        return -1;
    }
    if (raw == 0) {
        *text = value + off;
        *len = vlen - off;
        return 0;
    }
    char *out = szd_xmalloc(raw + 1);
    uLongf n = (uLongf)raw;
    if (uncompress((Bytef *)out, &n, (const Bytef *)value + off, (uLong)(vlen - off)) != Z_OK ||
        n != raw) {
        free(out);
        return -1;
    }
    out[raw] = '\0';
    *buf = out;
    *text = out;
    *len = raw;
    return 0;
}

/* Room for page k. */
static void pages_cover(szd_ns *ns, uint32_t k)
{
    if (k < ns->npages) {
        return;
    }
    if (k >= ns->cappages) {
        uint32_t cap = ns->cappages ? ns->cappages : 16;
        while (cap <= k) {
            cap *= 2;
        }
        ns->pages = szd_xrealloc(ns->pages, cap * sizeof *ns->pages);
        ns->cappages = cap;
    }
    memset(&ns->pages[ns->npages], 0, (k + 1 - ns->npages) * sizeof *ns->pages);
    ns->npages = k + 1;
}

void szd_apage_join(szd_ns *ns, szd_part *p)
{
    pages_cover(ns, ns->page_open);
    if (ns->pages[ns->page_open].nlive >= SZD_APAGE_PARTS) {
        /* the next page of none: new partitions fill pages of their own, so a bulk add writes
         * new pages rather than rewriting old ones */
        uint32_t k = ns->page_open + 1;
        while (k < ns->npages && (ns->pages[k].nlive > 0 || ns->pages[k].based)) {
            k++;
        }
        ns->page_open = k;
        pages_cover(ns, k);
    }
    p->page = ns->page_open;
    p->over = 0;
    ns->pages[p->page].nlive++;
}

void szd_apage_leave(szd_ns *ns, szd_part *p)
{
    if (p->page >= ns->npages) {
        return;
    }
    szd_apage *pg = &ns->pages[p->page];
    pg->nlive -= pg->nlive > 0;
    if (p->over) {
        pg->nover -= pg->nover > 0;
    }
}

void szd_apage_place(szd_ns *ns, szd_part *p, uint32_t page, bool over)
{
    szd_apage_leave(ns, p);
    pages_cover(ns, page);
    p->page = page;
    p->over = over;
    ns->pages[page].nlive++;
    ns->pages[page].nover += over;
}

void szd_apage_found(szd_ns *ns, uint32_t page, bool refold)
{
    pages_cover(ns, page);
    szd_apage *pg = &ns->pages[page];
    pg->based = true;
    if (refold && !pg->refold) {
        pg->refold = true;
        ns->nrefold++;
    }
    if (page >= ns->page_open) {
        ns->page_open = page; /* new partitions go after every page the store has */
    }
}

static void refold(szd_ns *ns, szd_apage *pg)
{
    if (!pg->refold) {
        pg->refold = true;
        ns->nrefold++;
    }
}

void szd_apage_dead(szd_ns *ns, uint32_t page, const char *id)
{
    pages_cover(ns, page);
    szd_apage *pg = &ns->pages[page];
    if (pg->ndead == pg->capdead) {
        pg->capdead = pg->capdead ? pg->capdead * 2 : 4;
        pg->dead = szd_xrealloc(pg->dead, pg->capdead * sizeof *pg->dead);
    }
    char *copy = strdup(id);
    if (!copy) {
        szd_oom();
    }
    pg->dead[pg->ndead++] = copy;
    if (!ns->dead_refs) {
        ns->dead_refs = json_object();
    }
    json_int_t n = json_integer_value(json_object_get(ns->dead_refs, id));
    json_object_set_new(ns->dead_refs, id, json_integer(n + 1));
    /* marks waiting are keys a load reads: a page with many is rewritten soon */
    if ((uint64_t)pg->ndead * 4 >= pg->nlive) {
        refold(ns, pg);
    }
}

void szd_apage_stale(szd_ns *ns, const char *key, size_t len)
{
    if (ns->napage_stale == ns->capapage_stale) {
        ns->capapage_stale = ns->capapage_stale ? ns->capapage_stale * 2 : 16;
        ns->apage_stale =
            szd_xrealloc(ns->apage_stale, ns->capapage_stale * sizeof *ns->apage_stale);
    }
    char *copy = strndup(key, len);
    if (!copy) {
        szd_oom();
    }
    ns->apage_stale[ns->napage_stale++] = copy;
}

void szd_apages_free(szd_ns *ns)
{
    for (uint32_t k = 0; k < ns->npages; k++) {
        for (uint32_t i = 0; i < ns->pages[k].ndead; i++) {
            free(ns->pages[k].dead[i]);
        }
        free(ns->pages[k].dead);
    }
    free(ns->pages);
    ns->pages = NULL;
    ns->npages = ns->cappages = 0;
    json_decref(ns->dead_refs);
    ns->dead_refs = NULL;
    for (size_t i = 0; i < ns->napage_stale; i++) {
        free(ns->apage_stale[i]);
    }
    free(ns->apage_stale);
    ns->apage_stale = NULL;
    ns->napage_stale = ns->capapage_stale = 0;
}

static char *assign_key(const szd_ns *ns, const char *id)
{
    char buf[SHARDZ_KEY_BUF];
    if (shardz_key_assign(buf, sizeof buf, ns->cfg.name, id) < 0) {
        return NULL;
    }
    char *k = strdup(buf);
    if (!k) {
        szd_oom();
    }
    return k;
}

/* A list of keys to delete, sorted and made unique before it goes into a batch (a batch holds
 * a key once: two pages may wait on one id's mark). */
typedef struct {
    char **k;
    size_t n, cap;
} keylist;

static void keylist_add(keylist *l, char *key)
{
    if (!key) {
        return;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->k = szd_xrealloc(l->k, l->cap * sizeof *l->k);
    }
    l->k[l->n++] = key;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether the key of id may be deleted now: it does not hold a live record (the partition is
 * gone, or its record is in its page) nor a removal mark another page still waits on. */
static bool key_free(szd_ns *ns, const char *id)
{
    const szd_part *p = szd_part_find(ns, id);
    if (p && p->over) {
        return false;
    }
    return !ns->dead_refs || !json_object_get(ns->dead_refs, id);
}

/* One reference of id's mark released (its page was rewritten without its line). */
static void dead_release(szd_ns *ns, const char *id)
{
    json_int_t n = json_integer_value(json_object_get(ns->dead_refs, id));
    if (n > 1) {
        json_object_set_new(ns->dead_refs, id, json_integer(n - 1));
    } else {
        json_object_del(ns->dead_refs, id);
    }
}

static int put_override(szd_ns *ns, szd_batch *b, szd_part *p, uint64_t w)
{
    char *key = assign_key(ns, p->id);
    int rc = szd_batch_put(b, key, szd_part_record_text(ns, p, w));
    if (rc == 0 && !p->over) {
        p->over = 1;
        ns->pages[p->page].nover++;
    }
    return rc;
}

/* Page k joins this write's touched list (once). */
static void touch(szd_ns *ns, uint32_t k, uint32_t **touched, size_t *n, size_t *cap)
{
    if (ns->pages[k].touched) {
        return;
    }
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *touched = szd_xrealloc(*touched, *cap * sizeof **touched);
    }
    (*touched)[(*n)++] = k;
    ns->pages[k].touched = true;
}

int szd_apage_collect(szd_ns *ns, szd_batch *b, const uint32_t *list, size_t nlist)
{
    uint64_t w = ++ns->wseq;
    uint32_t *touched = NULL;
    size_t ntouched = 0, cap = 0;
    keylist dels = {0};
    szd_sbuf *text = NULL;
    int rc = 0;
    /* 1. the pages this write touches: those of its partitions, and those that must be
     * rewritten */
    for (size_t k = 0; k < nlist; k++) {
        uint32_t i = list ? list[k] : (uint32_t)k;
        if (i >= ns->nparts || !ns->parts[i].dirty) {
            continue;
        }
        szd_part *p = &ns->parts[i];
        szd_apage *pg = &ns->pages[p->page];
        touch(ns, p->page, &touched, &ntouched, &cap);
        pg->ndirty++;
        pg->nfresh += !p->over;
    }
    for (uint32_t k = 0; ns->nrefold > 0 && k < ns->npages; k++) {
        if (ns->pages[k].refold) {
            touch(ns, k, &touched, &ntouched, &cap);
        }
    }
    /* 2. which are rewritten */
    size_t nfold = 0;
    uint32_t refolds = 0;
    for (size_t t = 0; t < ntouched; t++) {
        szd_apage *pg = &ns->pages[touched[t]];
        szd_apage_count c = {.nlive = pg->nlive,
                             .nover = pg->nover,
                             .ndead = pg->ndead,
                             .ndirty = pg->ndirty,
                             .nfresh = pg->nfresh,
                             .based = pg->based,
                             .refold = pg->refold,
                             .z = !ns->d->apagez_off};
        /* (a coordinator that reads no pages shares the store: every record its own key) */
        pg->fold = !ns->d->apage_off && szd_apage_fold(&c);
        nfold += pg->fold;
        refolds += pg->fold && pg->refold;
    }
    /* 3. the rewritten pages' text: every live partition of theirs, in index order; one that
     * would make a page longer than SZD_APAGE_MAX_BYTES keeps (or gets) its own key instead */
    if (nfold > 0) {
        text = szd_xcalloc(ns->npages, sizeof *text); /* indexed by page; few pages per MB */
        for (size_t t = 0; t < ntouched; t++) {
            if (ns->pages[touched[t]].fold && ns->d->apagez_off) {
                char head[SZD_APAGE_HEAD_MAX]; /* format 1 (compressed: the header after) */
                szd_sb_add(&text[touched[t]], head, szd_apage_head(head, w, 0));
            }
        }
        for (uint32_t i = 0; i < ns->nparts && rc == 0; i++) {
            szd_part *p = &ns->parts[i];
            szd_apage *pg = &ns->pages[p->page];
            if (!pg->fold) {
                continue;
            }
            char *line = szd_part_record_text(ns, p, 0);
            size_t len = strlen(line);
            szd_sbuf *sb = &text[p->page];
            if (sb->n + len + 1 > SZD_APAGE_MAX_BYTES) {
                free(line);
                if (p->dirty || !p->over) {
                    rc = put_override(ns, b, p, w);
                }
                continue;
            }
            szd_sb_add(sb, line, len);
            szd_sb_add(sb, "\n", 1);
            free(line);
            if (p->over) {
                keylist_add(&dels, assign_key(ns, p->id)); /* its line is newer now */
                p->over = 0;
                pg->nover--;
            }
        }
    }
    /* 4. the pages: put, or deleted when none of their partitions is left */
    for (size_t t = 0; t < ntouched && rc == 0; t++) {
        uint32_t k = touched[t];
        szd_apage *pg = &ns->pages[k];
        if (!pg->fold) {
            continue;
        }
        char key[SHARDZ_KEY_BUF];
        int len = shardz_key_apage(key, sizeof key, ns->cfg.name, k);
        char *kc = len > 0 ? strdup(key) : NULL;
        if (!kc) {
            rc = len < 0 ? len : SHARDZ_ENOMEM;
            break;
        }
        if (pg->nlive > pg->nover) {
            size_t vlen = text[k].n;
            char *v = szd_sb_take(&text[k]);
            if (!ns->d->apagez_off) {
                char *z = page_deflate(v, vlen, w, &vlen);
                free(v);
                v = z;
            }
            rc = szd_batch_put_n(b, kc, v, vlen);
            pg->based = true;
        } else if (pg->based) {
            rc = szd_batch_delete(b, kc);
            pg->based = false;
        } else {
            free(kc);
        }
    }
    /* 5. the other partitions under their own keys */
    for (size_t k = 0; k < nlist && rc == 0; k++) {
        uint32_t i = list ? list[k] : (uint32_t)k;
        if (i < ns->nparts && ns->parts[i].dirty && !ns->pages[ns->parts[i].page].fold) {
            rc = put_override(ns, b, &ns->parts[i], w);
        }
    }
    /* 6. the marks the rewritten pages no longer need (unless a page still to be rewritten
     * may hold the line), and the stale keys a load found */
    bool marks_free = ns->nrefold == refolds;
    for (size_t t = 0; t < ntouched && rc == 0; t++) {
        szd_apage *pg = &ns->pages[touched[t]];
        if (!pg->fold) {
            continue;
        }
        if (pg->refold) {
            pg->refold = false;
            ns->nrefold--;
        }
        uint32_t kept = 0;
        for (uint32_t i = 0; i < pg->ndead; i++) {
            if (!marks_free) {
                pg->dead[kept++] = pg->dead[i];
                continue;
            }
            dead_release(ns, pg->dead[i]);
            if (key_free(ns, pg->dead[i])) {
                keylist_add(&dels, assign_key(ns, pg->dead[i]));
            }
            free(pg->dead[i]);
        }
        pg->ndead = kept;
    }
    if (rc == 0 && ns->nrefold == 0) {
        for (size_t i = 0; i < ns->napage_stale; i++) {
            shardz_key_parts kp;
            const char *key = ns->apage_stale[i];
            if (shardz_key_parse(key, strlen(key), &kp) == 0 && key_free(ns, kp.id)) {
                keylist_add(&dels, strdup(key));
            }
            free(ns->apage_stale[i]);
        }
        ns->napage_stale = 0;
    }
    if (dels.n > 1) {
        qsort(dels.k, dels.n, sizeof *dels.k, key_cmp);
    }
    const char *prev = NULL; /* the last key handed to b (b owns it: it lives on) */
    for (size_t i = 0; i < dels.n; i++) {
        if (rc == 0 && (!prev || strcmp(dels.k[i], prev) != 0)) {
            prev = dels.k[i];
            rc = szd_batch_delete(b, dels.k[i]);
            dels.k[i] = NULL;
        }
        free(dels.k[i]);
    }
    free(dels.k);
    for (size_t t = 0; t < ntouched; t++) {
        szd_apage *pg = &ns->pages[touched[t]];
        pg->touched = pg->fold = false;
        pg->ndirty = pg->nfresh = 0;
        if (text) {
            free(text[touched[t]].s);
        }
    }
    free(text);
    free(touched);
    return rc;
}

int szd_apage_mark(szd_ns *ns, const szd_part *p, char **key, char **val)
{
    *key = assign_key(ns, p->id);
    szd_sbuf sb = {0};
    szd_sb_printf(&sb, "{\"id\":\"%s\",\"removed\":true,\"w\":%llu}", p->id,
                  (unsigned long long)++ns->wseq);
    *val = szd_sb_take(&sb);
    if (!*key) {
        free(*val);
        *val = NULL;
        return SHARDZ_ENOMEM;
    }
    /* its page may hold its line: the mark stays until that page is rewritten */
    szd_apage_dead(ns, p->page, p->id);
    return 0;
}

char *szd_apage_override_text(szd_ns *ns, szd_part *p)
{
    char *t = szd_part_record_text(ns, p, ++ns->wseq);
    if (!p->over) {
        p->over = 1;
        ns->pages[p->page].nover++;
    }
    return t;
}
