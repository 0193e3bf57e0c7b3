/* shardz-kv's data: an in-memory map key -> (value, partition), bounded in key size, value size
 * and entry count, behind one mutex (the HTTP thread writes, the hook thread drops partitions). */
#ifndef SHARDZ_KV_STORE_H
#define SHARDZ_KV_STORE_H

#include <stddef.h>

#define KV_KEY_MAX 1024
#define KV_VALUE_MAX (1u << 20)
#define KV_ENTRIES_MAX 1000000

typedef struct kv_store kv_store;

kv_store *kv_store_new(void);
void kv_store_free(kv_store *s);
/* Sets key (klen bytes) to a copy of value in partition. 0, -1 (out of memory), -2 (full). */
int kv_store_put(kv_store *s, const char *key, size_t klen, const char *partition,
                 const void *value, size_t vlen);
/* A malloc'd copy of key's value (*vlen bytes) or NULL when absent. */
void *kv_store_get(kv_store *s, const char *key, size_t klen, size_t *vlen);
/* Removes every key of partition; returns how many. */
size_t kv_store_drop_partition(kv_store *s, const char *partition);
size_t kv_store_count(kv_store *s);
/* Calls fn for every key of partition (key, klen, value, vlen borrowed for the call), under
 * the store's lock: fn must not call the store. */
void kv_store_foreach(kv_store *s, const char *partition,
                      void (*fn)(void *ctx, const char *key, size_t klen, const void *value,
                                 size_t vlen),
                      void *ctx);

#endif
