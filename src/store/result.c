/* Helpers every store backend shares: the result builder that packs answers into one
 * allocation, kv allocation, the key order, range bounds and error details. Pure functions on
 * caller memory; thread-safe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* One entry while building: offsets into the arena, since the arena moves as it grows. */
struct store_bent {
    shardz_event_type type;
    size_t koff, klen, voff, vlen;
    int64_t create, mod, version;
};

void store_seterr(shardz_store *st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(st->errmsg, sizeof st->errmsg, fmt, ap);
    va_end(ap);
}

int store_keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;

    if (c != 0) {
        return c;
    }
    if (alen == blen) {
        return 0;
    }
    return alen < blen ? -1 : 1;
}

void store_bounds_make(store_bounds *b, const void *prefix, size_t prefix_len, const void *after,
                       size_t after_len)
{
    const unsigned char *p = prefix;
    size_t i;

    if (after) {
        memcpy(b->lo, after, after_len);
        b->lo[after_len] = 0;
        b->lo_len = after_len + 1;
    } else {
        if (prefix_len) {
            memcpy(b->lo, prefix, prefix_len);
        }
        b->lo_len = prefix_len;
    }
    b->hi_set = false;
    b->hi_len = 0;
    for (i = prefix_len; i > 0; i--) {
        if (p[i - 1] != 0xff) {
            memcpy(b->hi, p, i);
            b->hi[i - 1]++;
            b->hi_len = i;
            b->hi_set = true;
            break;
        }
    }
}

bool store_bounds_has(const store_bounds *b, const void *key, size_t key_len)
{
    if (store_keycmp(key, key_len, b->lo, b->lo_len) < 0) {
        return false;
    }
    return !b->hi_set || store_keycmp(key, key_len, b->hi, b->hi_len) < 0;
}

/* Copies key and value, each NUL-terminated, to dst; returns the bytes written. */
static size_t pack_kv(char *dst, shardz_kv *kv, const void *key, size_t key_len, const void *value,
                      size_t value_len)
{
    char *k = dst, *v = dst + key_len + 1;

    if (key_len) {
        memcpy(k, key, key_len);
    }
    k[key_len] = '\0';
    if (value_len) {
        memcpy(v, value, value_len);
    }
    v[value_len] = '\0';
    kv->key = k;
    kv->key_len = key_len;
    kv->value = v;
    kv->value_len = value_len;
    return key_len + value_len + 2;
}

shardz_kv *store_kv_new(const void *key, size_t key_len, const void *value, size_t value_len,
                        int64_t create, int64_t mod, int64_t version)
{
    shardz_kv *kv = malloc(sizeof *kv + key_len + value_len + 2);

    if (!kv) {
        return NULL;
    }
    pack_kv((char *)(kv + 1), kv, key, key_len, value, value_len);
    kv->create_revision = create;
    kv->mod_revision = mod;
    kv->version = version;
    return kv;
}

int store_builder_add(store_builder *b, shardz_event_type type, const void *key, size_t key_len,
                      const void *value, size_t value_len, int64_t create, int64_t mod,
                      int64_t version)
{
    size_t need = key_len + value_len;
    store_bent *e;

    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        store_bent *ents = realloc(b->ents, cap * sizeof *ents);

        if (!ents) {
            return SHARDZ_ENOMEM;
        }
        b->ents = ents;
        b->cap = cap;
    }
    if (b->acap - b->alen < need) {
        size_t acap = b->acap ? b->acap : 1024;
        char *arena;

        while (acap - b->alen < need) {
            acap *= 2;
        }
        arena = realloc(b->arena, acap);
        if (!arena) {
            return SHARDZ_ENOMEM;
        }
        b->arena = arena;
        b->acap = acap;
    }
    e = &b->ents[b->n++];
    e->type = type;
    e->koff = b->alen;
    e->klen = key_len;
    if (key_len) {
        memcpy(b->arena + b->alen, key, key_len);
    }
    b->alen += key_len;
    e->voff = b->alen;
    e->vlen = value_len;
    if (value_len) {
        memcpy(b->arena + b->alen, value, value_len);
    }
    b->alen += value_len;
    e->create = create;
    e->mod = mod;
    e->version = version;
    return 0;
}

void store_builder_free(store_builder *b)
{
    free(b->ents);
    free(b->arena);
    memset(b, 0, sizeof *b);
}

/* Fills kv from entry e, packing its bytes at *dst. */
static void unpack(const store_builder *b, const store_bent *e, shardz_kv *kv, char **dst)
{
    *dst += pack_kv(*dst, kv, b->arena + e->koff, e->klen, b->arena + e->voff, e->vlen);
    kv->create_revision = e->create;
    kv->mod_revision = e->mod;
    kv->version = e->version;
}

int store_builder_range(store_builder *b, int64_t revision, bool more, shardz_range **out)
{
    size_t head = sizeof(shardz_range) + b->n * sizeof(shardz_kv);
    shardz_range *r = malloc(head + b->alen + 2 * b->n);
    char *dst;
    size_t i;

    *out = NULL;
    if (!r) {
        store_builder_free(b);
        return SHARDZ_ENOMEM;
    }
    r->revision = revision;
    r->more = more;
    r->count = b->n;
    r->kvs = b->n ? (shardz_kv *)(r + 1) : NULL;
    dst = (char *)r + head;
    for (i = 0; i < b->n; i++) {
        unpack(b, &b->ents[i], &r->kvs[i], &dst);
    }
    store_builder_free(b);
    *out = r;
    return 0;
}

int store_builder_changes(store_builder *b, int64_t revision, bool more, shardz_changes **out)
{
    size_t head = sizeof(shardz_changes) + b->n * sizeof(shardz_event);
    shardz_changes *c = malloc(head + b->alen + 2 * b->n);
    char *dst;
    size_t i;

    *out = NULL;
    if (!c) {
        store_builder_free(b);
        return SHARDZ_ENOMEM;
    }
    c->revision = revision;
    c->more = more;
    c->count = b->n;
    c->events = b->n ? (shardz_event *)(c + 1) : NULL;
    dst = (char *)c + head;
    for (i = 0; i < b->n; i++) {
        c->events[i].type = b->ents[i].type;
        unpack(b, &b->ents[i], &c->events[i].kv, &dst);
    }
    store_builder_free(b);
    *out = c;
    return 0;
}
