/* The growing text buffer (sbuf.h): doubling storage, printf appends through a stack buffer
 * for the usual short pieces. Thread of the caller. */
#include "daemon/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/oom.h"

void szd_sb_add(szd_sbuf *b, const char *p, size_t len)
{
    if (b->n + len + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->n + len + 1) {
            ncap *= 2;
        }
        b->s = szd_xrealloc(b->s, ncap);
        b->cap = ncap;
    }
    memcpy(b->s + b->n, p, len);
    b->n += len;
    b->s[b->n] = 0;
}

void szd_sb_str(szd_sbuf *b, const char *s)
{
    szd_sb_add(b, s, strlen(s));
}

void szd_sb_printf(szd_sbuf *b, const char *fmt, ...)
{
    char tmp[768];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (len < 0) {
        return;
    }
    if ((size_t)len < sizeof tmp) {
        szd_sb_add(b, tmp, (size_t)len);
        return;
    }
    char *big = szd_xmalloc((size_t)len + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)len + 1, fmt, ap);
    va_end(ap);
    szd_sb_add(b, big, (size_t)len);
    free(big);
}

char *szd_sb_take(szd_sbuf *b)
{
    char *s = b->s ? b->s : szd_xmalloc(1);
    if (!b->s) {
        s[0] = '\0';
    }
    b->s = NULL;
    b->n = b->cap = 0;
    return s;
}
