/* shardzd helpers: the clock, logging (one logfmt line per event), string maps, JSON
 * replies and errors, request bodies with a size limit, id validation. Event-loop thread. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "common/clock.h"
#include "daemon/daemon.h"
#include "daemon/wire.h"
#include "common/utf8.h"

int64_t szd_now(const szd *d)
{
    if (d && d->clock_ms) {
        return d->clock_ms();
    }
    return shardz__boot_ms(); /* CLOCK_BOOTTIME: it counts a suspend too */
}

void szd_trim_heap(void)
{
#ifdef __GLIBC__
    (void)malloc_trim(0);
#endif
}

void szd_log(const szd *d, int level, const char *fmt, ...)
{
    if (d && level > d->cfg.log_level) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    szd_log_v(level, fmt, ap);
    va_end(ap);
}

/* ---- maps ---------------------------------------------------------------------------- */

/* FNV-1a, then murmur3's finaliser: FNV's low bits alone cluster for ids that differ only
 * in their last characters ("p000041", "p000042"), and the map masks the low bits. */
static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 16777619u;
    }
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

uint32_t szd_map_find(const szd_map *m, const char *key, szd_keyfn fn, const void *ctx)
{
    if (!m->cap) {
        return UINT32_MAX;
    }
    uint32_t mask = m->cap - 1, h = hash_str(key);
    for (uint32_t i = h & mask;; i = (i + 1) & mask) {
        uint64_t e = m->slots[i];
        if (e == 0) {
            return UINT32_MAX;
        }
        uint32_t idx = (uint32_t)e - 1;
        if ((uint32_t)(e >> 32) == h && strcmp(fn(ctx, idx), key) == 0) {
            return idx;
        }
    }
}

static void map_put(szd_map *m, uint32_t idx, szd_keyfn fn, const void *ctx)
{
    uint32_t mask = m->cap - 1, h = hash_str(fn(ctx, idx));
    uint32_t i = h & mask;
    while (m->slots[i] != 0) {
        i = (i + 1) & mask;
    }
    m->slots[i] = (uint64_t)h << 32 | (uint64_t)(idx + 1);
}

int szd_map_rebuild(szd_map *m, uint32_t count, szd_keyfn fn, const void *ctx)
{
    return szd_map_reserve(m, count, count, fn, ctx);
}

int szd_map_reserve(szd_map *m, uint32_t count, uint32_t room, szd_keyfn fn, const void *ctx)
{
    uint32_t cap = 16;
    room = room > count ? room : count;
    while (cap < 2 * (room + 1)) {
        cap *= 2;
    }
    uint64_t *s = calloc(cap, sizeof *s);
    if (!s) {
        return SHARDZ_ENOMEM;
    }
    free(m->slots);
    m->slots = s;
    m->cap = cap;
    for (uint32_t i = 0; i < count; i++) {
        map_put(m, i, fn, ctx);
    }
    return 0;
}

int szd_map_insert(szd_map *m, uint32_t idx, uint32_t count, szd_keyfn fn, const void *ctx)
{
    if (2 * (count + 1) > m->cap) {
        return szd_map_rebuild(m, count, fn, ctx); /* count includes idx */
    }
    map_put(m, idx, fn, ctx);
    return 0;
}

void szd_map_free(szd_map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = 0;
}

/* ---- replies ------------------------------------------------------------------------- */

void szd_reply_json(struct evhttp_request *req, int status, json_t *body, uint64_t revision)
{
    struct evbuffer *buf = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    if (revision) {
        char rev[32];
        snprintf(rev, sizeof rev, "%llu", (unsigned long long)revision);
        evhttp_add_header(h, "X-Shardz-Revision", rev);
    }
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (buf && text) {
        evbuffer_add(buf, text, strlen(text));
        evbuffer_add(buf, "\n", 1);
    }
    evhttp_send_reply(req, status, status < 300 ? "OK" : "Error", buf);
    free(text);
    if (buf) {
        evbuffer_free(buf);
    }
    json_decref(body);
}

void szd_reply_error(struct evhttp_request *req, int err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    shardz__utf8_clean(msg); /* cut at 512 bytes, maybe inside a character a client sent */
    json_t *body = json_pack("{s:s, s:s}", "code", shardz_err_name(err), "message", msg);
    szd_reply_json(req, shardz_err_http_status(err), body, 0);
}

json_t *szd_read_body(struct evhttp_request *req)
{
    return szd_read_body_max(req, SZD_MAX_BODY);
}

json_t *szd_read_body_max(struct evhttp_request *req, size_t max)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len > max) {
        szd_reply_error(req, SHARDZ_ETOOBIG, "body of %zu bytes is over this route's limit of %zu",
                        len, max);
        return NULL;
    }
    if (len == 0) {
        szd_reply_error(req, SHARDZ_EINVAL, "a JSON body is required");
        return NULL;
    }
    const char *data = (const char *)evbuffer_pullup(in, (ssize_t)len);
    json_error_t jerr;
    json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        szd_reply_error(req, SHARDZ_EINVAL, "malformed JSON at line %d column %d: %s", jerr.line,
                        jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        szd_reply_error(req, SHARDZ_EINVAL, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* ---- sets of ids --------------------------------------------------------------------- */

static uint64_t id_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return h;
}

void szd_idset_clear(szd_idset *set)
{
    for (size_t i = 0; i < set->cap; i++) {
        free(set->slots[i]);
    }
    free(set->slots);
    *set = (szd_idset){0};
}

static size_t idset_pos(const szd_idset *set, const char *id, bool *found)
{
    size_t k = id_hash(id) & (set->cap - 1);
    while (set->slots[k]) {
        if (strcmp(set->slots[k], id) == 0) {
            *found = true;
            return k;
        }
        k = (k + 1) & (set->cap - 1);
    }
    *found = false;
    return k;
}

bool szd_idset_add(szd_idset *set, const char *id)
{
    if (2 * (set->n + 1) > set->cap) {
        size_t ncap = set->cap ? 2 * set->cap : 16;
        char **nslots = calloc(ncap, sizeof *nslots);
        if (!nslots) {
            return false;
        }
        szd_idset grown = {nslots, ncap, set->n};
        for (size_t i = 0; i < set->cap; i++) {
            bool found;
            if (set->slots[i]) {
                nslots[idset_pos(&grown, set->slots[i], &found)] = set->slots[i];
            }
        }
        free(set->slots);
        *set = grown;
    }
    bool found;
    size_t k = idset_pos(set, id, &found);
    if (found) {
        return true;
    }
    set->slots[k] = strdup(id);
    if (!set->slots[k]) {
        return false;
    }
    set->n++;
    return true;
}

void szd_idset_remove(szd_idset *set, const char *id)
{
    bool found;
    if (set->n == 0) {
        return;
    }
    size_t k = idset_pos(set, id, &found);
    if (!found) {
        return;
    }
    free(set->slots[k]);
    set->slots[k] = NULL;
    set->n--;
    /* linear probing: move back the entries after it that belong before the hole */
    size_t mask = set->cap - 1, hole = k;
    for (size_t j = (k + 1) & mask; set->slots[j]; j = (j + 1) & mask) {
        size_t home = id_hash(set->slots[j]) & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            set->slots[hole] = set->slots[j];
            set->slots[j] = NULL;
            hole = j;
        }
    }
}

json_t *szd_reply_object(struct evhttp_request *req, int *code, size_t max, bool conflict_ok)
{
    *code = req ? evhttp_request_get_response_code(req) : 0;
    if (!req || (*code != 200 && !(conflict_ok && *code == 409))) {
        return NULL;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len == 0 || len > max) {
        return NULL;
    }
    json_t *j = json_loadb((const char *)evbuffer_pullup(in, (ssize_t)len), len, 0, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}
