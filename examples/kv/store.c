/* shardz-kv's in-memory map (store.h): chained hashing on FNV-1a, grown by doubling, every
 * entry one allocation; all calls under one mutex, so any thread may call them. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

typedef struct kv_ent {
    struct kv_ent *next;
    uint64_t hash;
    size_t klen, vlen;
    char *partition;
    char *key; /* klen bytes, then the value: both inside this allocation */
} kv_ent;

struct kv_store {
    pthread_mutex_t mu;
    kv_ent **b;
    size_t nb, n;
};

static uint64_t kv_hash(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
    }
    return h;
}

kv_store *kv_store_new(void)
{
    kv_store *s = calloc(1, sizeof *s);

    if (s == NULL) {
        return NULL;
    }
    s->nb = 1024;
    s->b = calloc(s->nb, sizeof *s->b);
    if (s->b == NULL) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

static void kv_ent_free(kv_ent *e)
{
    free(e->partition);
    free(e);
}

void kv_store_free(kv_store *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < s->nb; i++) {
        kv_ent *e = s->b[i];
        while (e != NULL) {
            kv_ent *next = e->next;
            kv_ent_free(e);
            e = next;
        }
    }
    pthread_mutex_destroy(&s->mu);
    free(s->b);
    free(s);
}

/* Under mu: the link pointing at key's entry (or at the NULL ending its chain). */
static kv_ent **kv_find(kv_store *s, const char *key, size_t klen, uint64_t h)
{
    kv_ent **p = &s->b[h & (s->nb - 1)];

    while (*p != NULL &&
           ((*p)->hash != h || (*p)->klen != klen || memcmp((*p)->key, key, klen) != 0)) {
        p = &(*p)->next;
    }
    return p;
}

static void kv_grow(kv_store *s)
{
    size_t nb = s->nb * 2;
    kv_ent **b = calloc(nb, sizeof *b);

    if (b == NULL) {
        return; /* longer chains, still correct */
    }
    for (size_t i = 0; i < s->nb; i++) {
        kv_ent *e = s->b[i];
        while (e != NULL) {
            kv_ent *next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(s->b);
    s->b = b;
    s->nb = nb;
}

int kv_store_put(kv_store *s, const char *key, size_t klen, const char *partition,
                 const void *value, size_t vlen)
{
    uint64_t h = kv_hash(key, klen);
    kv_ent *e = malloc(sizeof *e + klen + vlen + 1);
    kv_ent **p;
    int rc = 0;

    if (e == NULL) {
        return -1;
    }
    e->key = (char *)(e + 1);
    e->partition = strdup(partition);
    if (e->partition == NULL) {
        free(e);
        return -1;
    }
    e->hash = h;
    e->klen = klen;
    e->vlen = vlen;
    memcpy(e->key, key, klen);
    memcpy(e->key + klen, value, vlen);
    pthread_mutex_lock(&s->mu);
    p = kv_find(s, key, klen, h);
    if (*p != NULL) {
        kv_ent *old = *p;
        e->next = old->next;
        *p = e;
        kv_ent_free(old);
    } else if (s->n >= KV_ENTRIES_MAX) {
        kv_ent_free(e);
        rc = -2;
    } else {
        e->next = NULL;
        *p = e;
        if (++s->n > s->nb) {
            kv_grow(s);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void *kv_store_get(kv_store *s, const char *key, size_t klen, size_t *vlen)
{
    void *out = NULL;
    kv_ent *e;

    pthread_mutex_lock(&s->mu);
    e = *kv_find(s, key, klen, kv_hash(key, klen));
    if (e != NULL) {
        out = malloc(e->vlen + 1);
        if (out != NULL) {
            memcpy(out, e->key + e->klen, e->vlen);
            *vlen = e->vlen;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return out;
}

size_t kv_store_drop_partition(kv_store *s, const char *partition)
{
    size_t dropped = 0;

    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nb; i++) {
        kv_ent **p = &s->b[i];
        while (*p != NULL) {
            if (strcmp((*p)->partition, partition) == 0) {
                kv_ent *e = *p;
                *p = e->next;
                kv_ent_free(e);
                dropped++;
            } else {
                p = &(*p)->next;
            }
        }
    }
    s->n -= dropped;
    pthread_mutex_unlock(&s->mu);
    return dropped;
}

size_t kv_store_count(kv_store *s)
{
    size_t n;

    pthread_mutex_lock(&s->mu);
    n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void kv_store_foreach(kv_store *s, const char *partition,
                      void (*fn)(void *ctx, const char *key, size_t klen, const void *value,
                                 size_t vlen),
                      void *ctx)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->nb; i++) {
        for (const kv_ent *e = s->b[i]; e != NULL; e = e->next) {
            if (strcmp(e->partition, partition) == 0) {
                fn(ctx, e->key, e->klen, e->key + e->klen, e->vlen);
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
}
