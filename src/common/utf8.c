/* UTF-8 validation and repair for outgoing messages (utf8.h). Pure; any thread. */
#include "common/utf8.h"

#include <string.h>

/* The length of the valid sequence at s (n bytes left), 0 when none starts there; *cut is set
 * when the bytes are a valid beginning that the end of the string cut short. */
static size_t seq_len(const unsigned char *s, size_t n, int *cut)
{
    unsigned char c = s[0];
    size_t len;
    unsigned min;
    *cut = 0;
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    unsigned cp = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if (i >= n) {
            *cut = 1;
            return 0;
        }
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return len;
}

size_t shardz__utf8_clean(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t n = strlen(s), i = 0;
    while (i < n) {
        int cut;
        size_t len = seq_len(p + i, n - i, &cut);
        if (len > 0) {
            i += len;
            continue;
        }
        if (cut) { /* the rest is a sequence the end of the buffer cut short */
            p[i] = '\0';
            return i;
        }
        p[i++] = '?';
    }
    return n;
}
