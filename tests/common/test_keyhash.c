/* Tests for src/common/keyhash.c: the Redis Cluster hash-tag rule as a table, XXH3-64 (seed 0)
 * vectors as literal constants produced with `xxhsum -H3` (xxhash 0.8.1), and slot vectors
 * for 16384, 1024 and 64 slots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shardz/hash.h"

/* One hash-tag case: the key and the bytes that must be hashed. */
typedef struct {
    const char *key;
    size_t len; /* 0: strlen(key) */
    const char *tag;
    size_t taglen; /* 0 with tag == NULL: the whole key */
} tag_case;

static const tag_case tag_cases[] = {
    /* The examples of the Redis Cluster specification. */
    {"{user1000}.following", 0, "user1000", 8},
    {"{user1000}.followers", 0, "user1000", 8},
    {"foo{}{bar}", 0, NULL, 0},
    {"foo{{bar}}zap", 0, "{bar", 4},
    {"foo{bar}{zap}", 0, "bar", 3},
    /* No tag: the whole key. */
    {"", 0, NULL, 0},
    {"plain", 0, NULL, 0},
    {"{", 0, NULL, 0},
    {"}", 0, NULL, 0},
    {"{}", 0, NULL, 0},
    {"abc{", 0, NULL, 0},
    {"abc{def", 0, NULL, 0},
    {"abc}def{", 0, NULL, 0},
    {"}{", 0, NULL, 0},
    {"{}x}", 0, NULL, 0},
    /* Tags anywhere, of any length. */
    {"{a}", 0, "a", 1},
    {"x{a}", 0, "a", 1},
    {"}{a}", 0, "a", 1},
    {"abc{d}", 0, "d", 1},
    {"{ab}}", 0, "ab", 2},
    {"{{}", 0, "{", 1},
    {"{{{}}}", 0, "{{", 2},
    {"a{b{c}d}e", 0, "b{c", 3},
    {"pre{ with space }post", 0, " with space ", 12},
    /* Bytes, not C strings: a NUL before the tag, a NUL inside it, a '}' past len. */
    {"a\0{b}", 5, "b", 1},
    {"{a\0b}", 5, "a\0b", 3},
    {"{ab}", 3, NULL, 0},
};

static void test_hashtag_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof tag_cases / sizeof tag_cases[0]; i++) {
        const tag_case *c = &tag_cases[i];
        size_t len = c->len != 0 ? c->len : strlen(c->key);
        const void *tag = NULL;
        size_t taglen = 12345;

        shardz_key_hashtag(c->key, len, &tag, &taglen);
        if (c->tag == NULL) {
            assert_ptr_equal(tag, c->key);
            assert_int_equal(taglen, len);
        } else {
            /* The tag points into the key, right where the expected bytes are. */
            assert_true((const char *)tag > c->key);
            assert_true((const char *)tag + taglen <= c->key + len);
            assert_int_equal(taglen, c->taglen);
            assert_memory_equal(tag, c->tag, taglen);
        }
    }
}

static void test_hashtag_null_empty(void **state)
{
    const void *tag = (const void *)1;
    size_t taglen = 7;

    (void)state;
    shardz_key_hashtag(NULL, 0, &tag, &taglen);
    assert_null(tag);
    assert_int_equal(taglen, 0);
    assert_int_equal(shardz_key_hash(NULL, 0), 0x2D06800538D394C2ull);
}

/* A key of n bytes 'a' + (i * 7) % 26: no braces, so the whole key is hashed. */
static void pattern(char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        buf[i] = (char)('a' + (i * 7) % 26);
    }
}

/* XXH3-64 vectors over every length class of the algorithm (0, 1-3, 4-8, 9-16, 17-128,
 * 129-240, >240), from `python3 -c "print(pattern)" | xxhsum -H3`. */
static void test_xxh3_vectors(void **state)
{
    static const struct {
        size_t len;
        uint64_t hash;
    } v[] = {
        {0, 0x2d06800538d394c2ull},    {1, 0xe6c632b61e964e1full},   {3, 0x7ea47a004f34273cull},
        {4, 0xa02b1fe01d5e8c68ull},    {8, 0xae512ee33cb829a3ull},   {9, 0x8a413b4d39e87b1dull},
        {16, 0xdfd4b837b7921abfull},   {17, 0x93e37276a1b3d25eull},  {128, 0xb2750a05a86bd144ull},
        {129, 0x7944327491a28ad0ull},  {240, 0x42b550f096408b23ull}, {241, 0x58129d823c648ff5ull},
        {1000, 0x039339db9bd0dbd8ull},
    };
    char buf[1000];

    (void)state;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        pattern(buf, v[i].len);
        assert_int_equal(shardz_key_hash(buf, v[i].len), v[i].hash);
    }
}

/* Named keys, their XXH3-64 and their slots. */
static const struct {
    const char *key;
    uint64_t hash;
    uint32_t s16384, s1024, s64;
} key_vectors[] = {
    {"", 0x2d06800538d394c2ull, 5314, 194, 2},
    {"a", 0xe6c632b61e964e1full, 3615, 543, 31},
    {"abc", 0x78af5f94892f3950ull, 14672, 336, 16},
    {"foo", 0xab6e5f64077e7d8aull, 15754, 394, 10},
    {"bar", 0xd463c860a032d362ull, 4962, 866, 34},
    {"user1000", 0xb03c8988cdc1c874ull, 2164, 116, 52},
    {"hello world", 0xd447b1ea40e6988bull, 6283, 139, 11},
    {"key:42", 0x62dcd25e1b11dfedull, 8173, 1005, 45},
};

static void test_key_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof key_vectors / sizeof key_vectors[0]; i++) {
        const char *k = key_vectors[i].key;
        size_t len = strlen(k);

        assert_int_equal(shardz_key_hash(k, len), key_vectors[i].hash);
        assert_int_equal(shardz_key_slot(k, len, 16384), key_vectors[i].s16384);
        assert_int_equal(shardz_key_slot(k, len, 1024), key_vectors[i].s1024);
        assert_int_equal(shardz_key_slot(k, len, 64), key_vectors[i].s64);
        assert_int_equal(shardz_key_slot(k, len, SHARDZ_HASH_SLOTS_DEFAULT), key_vectors[i].s16384);
        assert_int_equal(shardz_key_slot(k, len, SHARDZ_HASH_SLOTS_MAX),
                         (uint32_t)(key_vectors[i].hash & (SHARDZ_HASH_SLOTS_MAX - 1)));
    }
}

/* A key with a tag hashes exactly as its tag: XXH3("{user1000}.following") as a whole is
 * 0xf01a3a54c0f468a5, but the key hashes as "user1000". */
static void test_tag_hashing(void **state)
{
    static const char *const same[] = {"{user1000}.following", "{user1000}.followers",
                                       "x{user1000}", "{user1000}{other}", "}{user1000}"};

    (void)state;
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        assert_int_equal(shardz_key_hash(same[i], strlen(same[i])), 0xb03c8988cdc1c874ull);
        assert_int_equal(shardz_key_slot(same[i], strlen(same[i]), 16384), 2164);
    }
    assert_int_not_equal(shardz_key_hash("{user1000}.following", 20), 0xf01a3a54c0f468a5ull);
    /* "foo{}{bar}" has no tag: the whole key, not "bar", is hashed. */
    assert_int_not_equal(shardz_key_hash("foo{}{bar}", 10), 0xd463c860a032d362ull);
    assert_int_equal(shardz_key_hash("{foo}", 5), 0xab6e5f64077e7d8aull);
    assert_int_equal(shardz_key_hash("{{foo}", 6), shardz_key_hash("{foo", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hashtag_table), cmocka_unit_test(test_hashtag_null_empty),
        cmocka_unit_test(test_xxh3_vectors),  cmocka_unit_test(test_key_vectors),
        cmocka_unit_test(test_tag_hashing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
