/* Key hashing for "hash" namespaces (include/shardz/hash.h): the Redis Cluster hash-tag rule,
 * XXH3-64 with seed 0 from libxxhash, and the slot as the hash's low bits.
 * Pure and thread-safe: no state, no allocation. */
#include <string.h>

#include <xxhash.h>

#include "shardz/hash.h"

void shardz_key_hashtag(const void *key, size_t len, const void **tag, size_t *taglen)
{
    const unsigned char *k = key;
    const unsigned char *open;
    const unsigned char *close;

    *tag = key;
    *taglen = len;
    if (len == 0) {
        return; /* memchr on a possibly NULL key is undefined even for 0 bytes */
    }
    open = memchr(k, '{', len);
    if (open == NULL) {
        return;
    }
    /* The first '}' after the first '{'; the tag counts only when it is not empty. */
    close = memchr(open + 1, '}', len - (size_t)(open + 1 - k));
    if (close == NULL || close == open + 1) {
        return;
    }
    *tag = open + 1;
    *taglen = (size_t)(close - (open + 1));
}

uint64_t shardz_key_hash(const void *key, size_t len)
{
    const void *tag;
    size_t taglen;

    shardz_key_hashtag(key, len, &tag, &taglen);
    return (uint64_t)XXH3_64bits(tag, taglen);
}

uint32_t shardz_key_slot(const void *key, size_t len, uint32_t slots)
{
    return (uint32_t)(shardz_key_hash(key, len) & (uint64_t)(slots - 1u));
}
