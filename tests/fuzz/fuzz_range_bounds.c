/* libFuzzer target: the range bound arithmetic (src/placement, include/shardz/range.h) that
 * splits a key range [lo, hi) at its middle. Input: an alphabet (two bytes), then lo and hi
 * separated by a 0xff 0x00 pair. Whenever shardz_key_middle succeeds, lo < m < hi must hold,
 * m must fit and use only the alphabet; shardz_key_cmp must be antisymmetric. Single-threaded:
 * libFuzzer's thread. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shardz/range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sign(int x)
{
    return (x > 0) - (x < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char amin;
    unsigned char amax;
    const uint8_t *lo;
    const uint8_t *hi = NULL;
    size_t lo_len;
    size_t hi_len = 0;
    char m[SHARDZ_RANGE_KEY_MAX];
    size_t m_len = 0;
    size_t cap;

    if (size < 3) {
        return 0;
    }
    amin = data[0];
    amax = data[1];
    cap = 1 + data[2] % sizeof m;
    lo = data + 3;
    lo_len = size - 3;
    for (size_t i = 0; i + 1 < lo_len; i++) {
        if (lo[i] == 0xff && lo[i + 1] == 0x00) {
            hi = lo + i + 2;
            hi_len = lo_len - i - 2;
            lo_len = i;
            break;
        }
    }
    if (sign(shardz_key_cmp(lo, lo_len, hi, hi_len)) !=
        -sign(shardz_key_cmp(hi, hi_len, lo, lo_len))) {
        abort();
    }
    if (shardz_key_middle(lo, lo_len, hi, hi_len, amin, amax, m, cap, &m_len) != 0) {
        return 0;
    }
    if (m_len > cap || shardz_key_cmp(lo, lo_len, m, m_len) >= 0) {
        abort();
    }
    if (hi_len > 0 && shardz_key_cmp(m, m_len, hi, hi_len) >= 0) {
        abort();
    }
    for (size_t i = 0; i < m_len; i++) {
        if ((unsigned char)m[i] < amin || (unsigned char)m[i] > amax) {
            abort();
        }
    }
    return 0;
}
