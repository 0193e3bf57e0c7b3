/* shardzd's log: one logfmt line per event on stderr, written with one call so that lines
 * from the loop and from the lanes never interleave. Any thread. */
#ifndef SZD_LOG_H
#define SZD_LOG_H

#include <stdarg.h>
#include <stddef.h>

#define SZD_ERROR 0
#define SZD_WARN 1
#define SZD_INFO 2
#define SZD_DEBUG 3

/* Writes one line at `level` (no threshold check). */
void szd_log_v(int level, const char *fmt, va_list ap);
/* Logs when level <= threshold (the configured level). */
void szd_log_at(int threshold, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A value for a quoted logfmt field ("...%s..."): s with '"' and '\\' escaped, cut to fit
 * buf (size bytes), which it returns. Control bytes are escaped by the log itself. */
const char *szd_logq(char *buf, size_t size, const char *s);

#endif
