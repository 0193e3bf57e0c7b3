/* Assignment pages (apage.h): the page text, the rewrite rule and the load's newest-record map.
 * Pure; any thread. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/apage.h"
#include "shardz/error.h"

#define MAGIC "shardz-apage "

size_t szd_apage_head(char *buf, uint64_t w, size_t raw)
{
    int n = raw ? snprintf(buf, SZD_APAGE_HEAD_MAX, MAGIC "2 %" PRIu64 " %zu\n", w, raw)
                : snprintf(buf, SZD_APAGE_HEAD_MAX, MAGIC "1 %" PRIu64 "\n", w);
    return n > 0 ? (size_t)n : 0;
}

/* A decimal number at text[*i] (no leading zero, at most 19 digits): 0 with *v, else -1. */
static int read_num(const char *text, size_t len, size_t *i, uint64_t *v)
{
    size_t s = *i;
    *v = 0;
    for (; *i < len && text[*i] >= '0' && text[*i] <= '9'; (*i)++) {
        if (*i - s >= 19) {
            return -1;
        }
        *v = *v * 10 + (uint64_t)(text[*i] - '0');
    }
    return *i == s || (*i - s > 1 && text[s] == '0') ? -1 : 0;
}

int szd_apage_read_head(const char *text, size_t len, uint64_t *w, size_t *off, size_t *raw)
{
    size_t m = sizeof MAGIC - 1, i = m + 2;
    uint64_t v = 0, r = 0;
    if (!text || len < m + 4 || memcmp(text, MAGIC, m) != 0 || (text[m] != '1' && text[m] != '2') ||
        text[m + 1] != ' ') {
        return -1;
    }
    bool z = text[m] == '2';
    if (read_num(text, len, &i, &v) != 0) {
        return -1;
    }
    if (z && (i >= len || text[i] != ' ' || (i++, read_num(text, len, &i, &r)) != 0 || r == 0 ||
              r > SZD_APAGE_MAX_BYTES)) {
        return -1;
    }
    if (i >= len || text[i] != '\n') {
        return -1;
    }
    *w = v;
    *off = i + 1;
    *raw = (size_t)r;
    return 0;
}

bool szd_apage_next(const char *text, size_t len, size_t *off, const char **line, size_t *n)
{
    while (*off < len) {
        const char *s = text + *off;
        const char *nl = memchr(s, '\n', len - *off);
        size_t k = nl ? (size_t)(nl - s) : len - *off;
        *off += k + (nl ? 1 : 0);
        if (k > 0) {
            *line = s;
            *n = k;
            return true;
        }
    }
    return false;
}

bool szd_apage_line_id(const char *line, size_t len, const char **id, size_t *n)
{
    static const char pre[] = "{\"id\":\"";
    size_t m = sizeof pre - 1;
    if (len <= m || memcmp(line, pre, m) != 0) {
        return false;
    }
    const char *q = memchr(line + m, '"', len - m);
    if (!q || q == line + m || memchr(line + m, '\\', (size_t)(q - line - m))) {
        return false;
    }
    *id = line + m;
    *n = (size_t)(q - *id);
    return true;
}

bool szd_apage_fold(const szd_apage_count *c)
{
    if (c->refold) {
        return true;
    }
    if (c->ndirty == 0) {
        return false;
    }
    if (!c->based) {
        return true;
    }
    if (c->z && ((uint64_t)c->ndirty * 10 >= c->nlive || c->ndirty >= SZD_APAGE_Z_OVERRIDES)) {
        return true;
    }
    if (c->nfresh == 0) {
        return false; /* nothing new would be an override: the page stays as it is */
    }
    uint64_t out = (uint64_t)c->nover + c->ndead + c->nfresh;
    return out * 4 >= c->nlive;
}

/* ---- the load's map ------------------------------------------------------------------- */

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    }
    h ^= h >> 33; /* murmur3's finaliser: ids that differ in their last bytes spread */
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

int szd_apage_map_init(szd_apage_map *m, size_t expect)
{
    size_t cap = 16;
    while (cap < expect * 2 + 1) {
        cap *= 2;
    }
    m->e = calloc(cap, sizeof *m->e);
    m->cap = m->e ? cap : 0;
    m->n = 0;
    return m->e ? 0 : SHARDZ_ENOMEM;
}

void szd_apage_map_free(szd_apage_map *m)
{
    free(m->e);
    m->e = NULL;
    m->cap = m->n = 0;
}

szd_apage_entry *szd_apage_map_get(szd_apage_map *m, const char *id, size_t n)
{
    if (m->cap == 0) {
        return NULL;
    }
    size_t i = (size_t)hash(id, n) & (m->cap - 1);
    for (;;) {
        szd_apage_entry *e = &m->e[i];
        if (!e->id) {
            if ((m->n + 1) * 2 > m->cap) {
                return NULL;
            }
            *e = (szd_apage_entry){.id = id, .idlen = (uint32_t)n, .page = UINT32_MAX, .best = -2};
            m->n++;
            return e;
        }
        if (e->idlen == n && memcmp(e->id, id, n) == 0) {
            return e;
        }
        i = (i + 1) & (m->cap - 1);
    }
}

szd_apage_entry *szd_apage_map_find(const szd_apage_map *m, const char *id, size_t n)
{
    if (m->n == 0) {
        return NULL;
    }
    size_t i = (size_t)hash(id, n) & (m->cap - 1);
    for (; m->e[i].id; i = (i + 1) & (m->cap - 1)) {
        if (m->e[i].idlen == n && memcmp(m->e[i].id, id, n) == 0) {
            return &m->e[i];
        }
    }
    return NULL;
}

void szd_apage_see_override(szd_apage_entry *e, int64_t idx, uint64_t w, bool removed)
{
    if (e->best == -2 || (e->best == -1 && w > e->w)) {
        e->best = idx;
        e->w = w;
        e->removed = removed;
    }
}

uint32_t szd_apage_see_line(szd_apage_entry *e, uint32_t page, uint64_t w)
{
    uint32_t loser = UINT32_MAX;
    if (e->page != UINT32_MAX) {
        if (w <= e->line_w) {
            e->dup_line = true;
            return page; /* an older line than the one held (or a repeat): its page goes */
        }
        loser = e->page;
        e->dup_line = true;
    }
    e->page = page;
    e->line_w = w;
    if (e->best == -2 || e->best == -1 || w >= e->w) {
        e->best = -1;
        e->w = w;
        e->removed = false;
    }
    return loser;
}
