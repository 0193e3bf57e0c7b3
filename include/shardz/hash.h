/* Key hashing for "hash" namespaces: key -> hash tag -> 64-bit hash -> slot.
 * The hash is XXH3-64 (seed 0) of the hash tag, the slot its low bits. Redis Cluster's hash-tag
 * rule decides what is hashed, so related keys can be colocated on purpose. Pure, thread-safe. */
#ifndef SHARDZ_HASH_H
#define SHARDZ_HASH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The default size of the slot space (a power of two). */
#define SHARDZ_HASH_SLOTS_DEFAULT 16384u
#define SHARDZ_HASH_SLOTS_MIN 64u
#define SHARDZ_HASH_SLOTS_MAX (1u << 20)

/* The part of a key that is hashed: if the key holds a '{' and, after it, a '}' with at least
 * one byte between them, the bytes between the first '{' and the first '}' after it;
 * otherwise the whole key. *tag points into key (borrowed). */
void shardz_key_hashtag(const void *key, size_t len, const void **tag, size_t *taglen);
/* XXH3-64 (seed 0) of the key's hash tag. */
uint64_t shardz_key_hash(const void *key, size_t len);
/* The slot of a key: shardz_key_hash(key) & (slots - 1). slots must be a power of two. */
uint32_t shardz_key_slot(const void *key, size_t len, uint32_t slots);

#ifdef __cplusplus
}
#endif
#endif
