/* The slot table's pages and manifest (slot_page.h): text written and read by hand (a million
 * runs at a restart: no JSON tree per run), the manifest through jansson. Pure; any thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/slot_page.h"

uint32_t szd_slot_page_slots(uint32_t nslots)
{
    return nslots < SZD_SLOT_PAGE_SLOTS ? nslots : SZD_SLOT_PAGE_SLOTS;
}

/* Appends the decimal digits of v at p; returns the position after them. */
static char *put_u32(char *p, uint32_t v)
{
    char tmp[10];
    size_t k = 0;
    do {
        tmp[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k) {
        *p++ = tmp[--k];
    }
    return p;
}

char *szd_slot_page_text(const shardz_slot_range *runs, size_t n, size_t *first, uint32_t lo,
                         uint32_t hi, size_t *len)
{
    size_t i = *first;
    while (i < n && runs[i].hi <= lo) {
        i++;
    }
    *first = i;
    /* the size first: each line at most 10 + 1 + 10 + 1 + id + 1 bytes */
    size_t need = 1, k;
    uint32_t at = lo;
    for (k = i; k < n && runs[k].lo < hi; k++) {
        if (runs[k].lo > at || !runs[k].partition) {
            return NULL; /* a hole: the runs do not cover the page */
        }
        need += 23 + strlen(runs[k].partition);
        at = runs[k].hi;
    }
    if (at < hi || lo >= hi) {
        return NULL;
    }
    char *text = malloc(need), *p = text;
    if (!text) {
        return NULL;
    }
    for (k = i; k < n && runs[k].lo < hi; k++) {
        uint32_t a = runs[k].lo > lo ? runs[k].lo : lo, b = runs[k].hi < hi ? runs[k].hi : hi;
        size_t idl = strlen(runs[k].partition);
        p = put_u32(p, a);
        *p++ = ' ';
        p = put_u32(p, b);
        *p++ = ' ';
        memcpy(p, runs[k].partition, idl);
        p += idl;
        *p++ = '\n';
    }
    *p = '\0';
    *len = (size_t)(p - text);
    return text;
}

/* A canonical decimal uint32 at *pp up to the byte `stop`; advances *pp past it. */
static bool get_u32(const char **pp, const char *end, char stop, uint32_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;
    size_t digits = 0;
    while (p < end && *p != stop) {
        unsigned d = (unsigned)(unsigned char)*p - '0';
        if (d > 9 || (digits == 1 && v == 0)) {
            return false; /* not a digit, or a leading zero */
        }
        v = v * 10 + d;
        if (v > UINT32_MAX) {
            return false;
        }
        digits++;
        p++;
    }
    if (digits == 0 || p == end) {
        return false;
    }
    *out = (uint32_t)v;
    *pp = p + 1;
    return true;
}

int szd_slot_page_parse(const char *text, size_t len, uint32_t lo, uint32_t hi, szd_slot_line *out,
                        size_t cap, size_t *n)
{
    const char *p = text, *end = text + len;
    uint32_t at = lo;
    size_t k = 0;
    while (p < end) {
        szd_slot_line l;
        if (k == cap || !get_u32(&p, end, ' ', &l.lo) || !get_u32(&p, end, ' ', &l.hi)) {
            return SHARDZ_EINVAL;
        }
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl || l.lo != at || l.hi <= l.lo || l.hi > hi) {
            return SHARDZ_EINVAL;
        }
        l.id = p;
        l.id_len = (size_t)(nl - p);
        if (l.id_len == 0 || l.id_len > SHARDZ_MAX_ID) {
            return SHARDZ_EINVAL;
        }
        for (size_t c = 0; c < l.id_len; c++) {
            unsigned char ch = (unsigned char)l.id[c];
            if (ch == '/' || ch < 0x20 || ch == 0x7f) {
                return SHARDZ_EINVAL;
            }
        }
        out[k++] = l;
        at = l.hi;
        p = nl + 1;
    }
    if (at != hi || lo >= hi) {
        return SHARDZ_EINVAL;
    }
    *n = k;
    return 0;
}

size_t szd_slot_runs_merge(szd_slot_run *runs, size_t n)
{
    size_t w = 0;
    for (size_t r = 0; r < n; r++) {
        if (w > 0 && runs[w - 1].part == runs[r].part && runs[w - 1].hi == runs[r].lo) {
            runs[w - 1].hi = runs[r].hi;
        } else {
            runs[w++] = runs[r];
        }
    }
    return w;
}

uint64_t szd_slot_page_hash(const char *text, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)text[i];
        h *= 1099511628211ull;
    }
    return h;
}

json_t *szd_slot_manifest_json(const szd_slot_manifest *m)
{
    json_t *pages = json_array();
    for (uint32_t k = 0; k < m->npages; k++) {
        json_array_append_new(pages, json_integer((json_int_t)m->epoch[k]));
    }
    return json_pack("{s:I, s:o}", "page_slots", (json_int_t)m->page_slots, "pages", pages);
}

int szd_slot_manifest_parse(const json_t *j, uint32_t nslots, szd_slot_manifest *out)
{
    *out = (szd_slot_manifest){0};
    json_t *w = json_object_get(j, "page_slots"), *pages = json_object_get(j, "pages");
    json_int_t ps = json_integer_value(w);
    if (!json_is_integer(w) || !json_is_array(pages) || ps < 1 || ps > (json_int_t)nslots ||
        (ps & (ps - 1)) != 0) {
        return SHARDZ_EINVAL;
    }
    size_t np = json_array_size(pages);
    if (np != 0 && np != nslots / (uint32_t)ps) {
        return SHARDZ_EINVAL;
    }
    uint64_t *e = calloc(np ? np : 1, sizeof *e);
    if (!e) {
        return SHARDZ_ENOMEM;
    }
    for (size_t k = 0; k < np; k++) {
        json_t *x = json_array_get(pages, k);
        if (!json_is_integer(x) || json_integer_value(x) < 1) {
            free(e);
            return SHARDZ_EINVAL;
        }
        e[k] = (uint64_t)json_integer_value(x);
    }
    *out = (szd_slot_manifest){.page_slots = (uint32_t)ps, .npages = (uint32_t)np, .epoch = e};
    return 0;
}

int szd_slot_manifest_copy(szd_slot_manifest *dst, const szd_slot_manifest *src)
{
    uint64_t *e = malloc((src->npages ? src->npages : 1) * sizeof *e);
    if (!e) {
        return SHARDZ_ENOMEM;
    }
    if (src->npages) {
        memcpy(e, src->epoch, src->npages * sizeof *e);
    }
    free(dst->epoch);
    *dst = *src;
    dst->epoch = e;
    return 0;
}

void szd_slot_manifest_free(szd_slot_manifest *m)
{
    if (m) {
        free(m->epoch);
        *m = (szd_slot_manifest){0};
    }
}
