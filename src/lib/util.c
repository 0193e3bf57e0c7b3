/* libshardz helpers: id and "host:port" checks, the lease clock and deadlines, the secret
 * check, logging and JSON error bodies. Pure or thread-safe; no state of their own. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/utf8.h"
#include "lib/lib_int.h"
#include "shardz/error.h"

static bool id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '-';
}

bool szl_valid_id(const char *s, size_t max)
{
    size_t n = 0;

    if (s == NULL) {
        return false;
    }
    for (; s[n] != '\0'; n++) {
        if (n >= max || !id_char((unsigned char)s[n])) {
            return false;
        }
    }
    return n > 0;
}

bool szl_valid_ns(const char *s)
{
    size_t n = 0;

    if (s == NULL) {
        return false;
    }
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (n >= SZL_NS_MAX || (!alnum && (n == 0 || (c != '.' && c != '_' && c != '-')))) {
            return false;
        }
    }
    return n > 0;
}

int szl_hostport(const char *hp, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon;
    const char *h = hp;
    size_t hl;
    char *end;
    unsigned long p;

    if (hp == NULL || hp[0] == '\0') {
        return SHARDZ_EINVAL;
    }
    if (hp[0] == '[') {
        const char *close = strchr(hp, ']');
        if (close == NULL || close[1] != ':') {
            return SHARDZ_EINVAL;
        }
        h = hp + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(hp, ':');
        if (colon == NULL || memchr(hp, ':', (size_t)(colon - hp)) != NULL) {
            return SHARDZ_EINVAL; /* no port, or an unbracketed IPv6 address */
        }
        hl = (size_t)(colon - hp);
    }
    if (hl == 0 || hl >= hostlen || hl > SZL_HOST_MAX) {
        return SHARDZ_EINVAL;
    }
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c <= ' ' || c >= 0x7f || c == '/' || c == '@' || c == '?' || c == '#') {
            return SHARDZ_EINVAL;
        }
    }
    if (colon[1] < '0' || colon[1] > '9') {
        return SHARDZ_EINVAL;
    }
    errno = 0;
    p = strtoul(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || p > 65535 || end - (colon + 1) > 5) {
        return SHARDZ_EINVAL;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}

uint64_t szl_boot_ms(void)
{
    return (uint64_t)shardz__boot_ms();
}

struct timespec szl_deadline(int64_t timeout_ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(timeout_ms / 1000);
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int szl_cond_init(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    int rc;

    if (pthread_condattr_init(&attr) != 0) {
        return SHARDZ_ENOMEM;
    }
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    rc = pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
    return rc == 0 ? 0 : SHARDZ_ENOMEM;
}

void szl_log(szl_log_fn fn, void *user, int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (fn == NULL && level > SHARDZ_LOG_WARN) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (fn != NULL) {
        fn(user, level, msg);
    } else {
        fprintf(stderr, "shardz: %s: %s\n", level == SHARDZ_LOG_ERROR ? "error" : "warning", msg);
    }
}

char *szl_dump(const json_t *j, size_t *len)
{
    char *s = json_dumps(j, JSON_COMPACT);

    if (s != NULL && len != NULL) {
        *len = strlen(s);
    }
    return s;
}

char *szl_error_body(int err, const char *msg, size_t *len)
{
    char clean[512];
    snprintf(clean, sizeof clean, "%s", msg != NULL ? msg : shardz_strerror(err));
    shardz__utf8_clean(clean); /* quoted bytes, maybe cut inside a character */
    json_t *j = json_pack("{s:s, s:s}", "code", shardz_err_name(err), "message", clean);
    char *s;

    if (j == NULL) {
        return NULL;
    }
    s = szl_dump(j, len);
    json_decref(j);
    return s;
}

int szl_error_code(const char *body, size_t len)
{
    json_t *j;
    const char *code;
    int rc = 0;

    if (body == NULL || len == 0) {
        return 0;
    }
    j = json_loadb(body, len, 0, NULL);
    if (j == NULL) {
        return 0;
    }
    code = json_string_value(json_object_get(j, "code"));
    if (code != NULL) {
#define X(name, val, http, m)                                                                      \
    if (strcmp(code, #name) == 0) {                                                                \
        rc = val;                                                                                  \
    }
        SHARDZ_ERRNO_MAP(X)
#undef X
    }
    json_decref(j);
    return rc;
}

bool szl_get_int(const json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    json_int_t x;

    if (!json_is_integer(v)) {
        return false;
    }
    x = json_integer_value(v);
    if (x < lo || x > hi) {
        return false;
    }
    *out = (int64_t)x;
    return true;
}
