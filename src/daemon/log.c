/* shardzd's log (log.h): one logfmt line per event on stderr, written with one call. Any
 * thread. */
#include <stdarg.h>
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
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}

void szd_log_at(int threshold, int level, const char *fmt, ...)
{
    if (level > threshold)
        return;
    va_list ap;
    va_start(ap, fmt);
    szd_log_v(level, fmt, ap);
    va_end(ap);
}
