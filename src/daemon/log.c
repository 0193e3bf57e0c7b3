/* shardzd's log (log.h): one logfmt line per event on stderr, written with one call. Any
 * thread. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "daemon/log.h"

void szd_log_v(int level, const char *fmt, va_list ap)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    /* one write per line: the loop and the lanes log from their own threads */
    char line[2048];
    int n = snprintf(line, sizeof line, "ts=%s.%03ldZ level=%s ", when, ts.tv_nsec / 1000000,
                     names[level < 0   ? 0
                           : level > 3 ? 3
                                       : level]);
    char body[1536];
    int m = vsnprintf(body, sizeof body, fmt, ap);
    size_t blen = m < 0 ? 0 : (size_t)m >= sizeof body ? sizeof body - 1 : (size_t)m;
    /* a value may come from a worker or a client (an error text, a zone): a control byte is
     * escaped, so that no value can end the line and forge another */
    size_t len = (size_t)n;
    for (size_t i = 0; i < blen && len < sizeof line - 6; i++) {
        unsigned char c = (unsigned char)body[i];
        if (c >= 0x20 && c != 0x7f) {
            line[len++] = (char)c;
            continue;
        }
        len += (size_t)snprintf(line + len, sizeof line - len, "\\x%02x", c);
    }
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}

const char *szd_logq(char *buf, size_t size, const char *s)
{
    size_t o = 0;
    for (; s && *s && o + 3 < size; s++) {
        if (*s == '"' || *s == '\\') {
            buf[o++] = '\\';
        }
        buf[o++] = *s;
    }
    buf[o] = '\0';
    return buf;
}

void szd_log_at(int threshold, int level, const char *fmt, ...)
{
    if (level > threshold) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    szd_log_v(level, fmt, ap);
    va_end(ap);
}
