/* A growing text buffer for the bodies and records the daemon writes by hand (pushes, store
 * records): appends never fail (out of memory aborts, oom.h), the text stays NUL-terminated.
 * Used by whichever thread owns the buffer. */
#ifndef SZD_SBUF_H
#define SZD_SBUF_H

#include <stddef.h>

typedef struct {
    char *s; /* owned; NULL until the first append */
    size_t n, cap;
} szd_sbuf;

void szd_sb_add(szd_sbuf *b, const char *p, size_t len);
void szd_sb_str(szd_sbuf *b, const char *s);
void szd_sb_printf(szd_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the text to the caller (free it; an empty buffer gives ""), leaving b empty. */
char *szd_sb_take(szd_sbuf *b);

#endif
