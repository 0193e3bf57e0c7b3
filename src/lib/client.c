/* The public client (include/shardz/client.h): a thin owner of the library's blocking HTTP
 * client (http.c) with a timeout, a reply limit and a cancel flag, plus the escaping and id
 * checks tools need before they send anything. Runs on the caller's thread; no state shared
 * between clients. */
#include <stdlib.h>
#include <string.h>

#include "lib/lib_int.h"
#include "shardz/client.h"
#include "shardz/error.h"

struct shardz_client {
    szl_http http;                    /* connection and headers (secret) */
    atomic_bool cancel;               /* set by shardz_client_cancel: calls return SHARDZ_EBUSY */
    long timeout_ms;                  /* per call */
    size_t max_reply;                 /* largest reply body accepted */
    char endpoint[SZL_HOST_MAX + 16]; /* "host:port" as given, without "http://" */
};

int shardz_client_new(const char *endpoint, const char *secret, shardz_client **out)
{
    static const char scheme[] = "http://";
    shardz_client *c = NULL;
    int rc;

    *out = NULL;
    if (endpoint == NULL) {
        return SHARDZ_EINVAL;
    }
    if (strncmp(endpoint, scheme, sizeof scheme - 1) == 0) {
        endpoint += sizeof scheme - 1;
    }
    if (strlen(endpoint) >= sizeof c->endpoint) {
        return SHARDZ_EINVAL;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        return SHARDZ_ENOMEM;
    }
    atomic_init(&c->cancel, false);
    c->timeout_ms = SHARDZ_CLIENT_TIMEOUT_MS;
    c->max_reply = SHARDZ_CLIENT_MAX_REPLY;
    memcpy(c->endpoint, endpoint, strlen(endpoint) + 1);
    if (secret != NULL && secret[0] == '\0') {
        secret = NULL;
    }
    rc = szl_http_init(&c->http, c->endpoint, secret, &c->cancel);
    if (rc != 0) {
        goto fail;
    }
    *out = c;
    return 0;
fail:
    szl_http_free(&c->http);
    free(c);
    return rc;
}

void shardz_client_set_timeout(shardz_client *c, long timeout_ms)
{
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : SHARDZ_CLIENT_TIMEOUT_MS;
}

void shardz_client_set_max_reply(shardz_client *c, size_t max_bytes)
{
    c->max_reply = max_bytes > 0 ? max_bytes : SHARDZ_CLIENT_MAX_REPLY;
}

int shardz_client_call(shardz_client *c, const char *method, const char *path,
                       const char *json_body, int *status, char **json_reply)
{
    szl_http_resp resp;
    int rc;

    *status = 0;
    *json_reply = NULL;
    if (method == NULL || path == NULL || path[0] != '/' || strlen(path) > SHARDZ_CLIENT_PATH_MAX) {
        return SHARDZ_EINVAL;
    }
    if (atomic_load(&c->cancel)) {
        return SHARDZ_EBUSY;
    }
    rc = szl_http_request(&c->http, method, path, json_body,
                          json_body != NULL ? strlen(json_body) : 0, c->timeout_ms, c->max_reply,
                          &resp);
    if (rc != 0) {
        return rc;
    }
    *status = (int)resp.status;
    *json_reply = resp.body;
    return 0;
}

void shardz_client_cancel(shardz_client *c)
{
    atomic_store(&c->cancel, true);
}

const char *shardz_client_endpoint(const shardz_client *c)
{
    return c->endpoint;
}

void shardz_client_destroy(shardz_client *c)
{
    if (c == NULL) {
        return;
    }
    szl_http_free(&c->http);
    free(c);
}

int shardz_client_escape(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    if (outlen == 0) {
        return SHARDZ_ETOOBIG;
    }
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                     (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '~' || ch == '-';
        size_t need = plain ? 1 : 3;
        if (o + need >= outlen) {
            out[0] = '\0';
            return SHARDZ_ETOOBIG;
        }
        if (plain) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
    return 0;
}

bool shardz_client_valid_id(const char *s)
{
    return szl_valid_id(s, SZL_ID_MAX);
}

bool shardz_client_valid_ns(const char *s)
{
    return szl_valid_ns(s);
}
