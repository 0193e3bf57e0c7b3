/* The library's HTTP client: one blocking request at a time on libcurl's multi interface, so
 * another thread can interrupt a request in flight (a long-poll, a registration retry) with
 * curl_multi_wakeup. Each client belongs to one thread; connections are kept alive between
 * requests. Replies are bounded by the caller's max_reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "lib/lib_int.h"
#include "shardz/error.h"

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static CURLcode http_global_rc = CURLE_FAILED_INIT;

static void http_global_init(void)
{
    http_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The response being read: bounded by max. */
typedef struct {
    char *buf;
    size_t len, cap, max;
    bool too_big;
    bool nomem;
} http_sink;

static size_t http_write(char *data, size_t size, size_t nmemb, void *arg)
{
    http_sink *s = arg;
    size_t n = size * nmemb;

    if (n > s->max - s->len) { /* len never exceeds max */
        s->too_big = true;
        return 0; /* aborts the transfer */
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap != 0 ? s->cap : 4096;
        char *nb;
        while (cap < s->len + n + 1) {
            cap *= 2;
        }
        nb = realloc(s->buf, cap);
        if (nb == NULL) {
            s->nomem = true;
            return 0;
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

int szl_http_init(szl_http *h, const char *hostport, const char *secret, atomic_bool *stop)
{
    struct curl_slist *hd = NULL;
    struct curl_slist *t;
    char auth[1024];
    char host[SZL_HOST_MAX + 1];
    uint16_t port;
    bool v6;

    memset(h, 0, sizeof *h);
    h->stop = stop;
    if (szl_hostport(hostport, host, sizeof host, &port) != 0) {
        return SHARDZ_EINVAL;
    }
    v6 = strchr(host, ':') != NULL;
    snprintf(h->base, sizeof h->base, v6 ? "http://[%s]:%u" : "http://%s:%u", host, (unsigned)port);
    pthread_once(&http_once, http_global_init);
    if (http_global_rc != CURLE_OK) {
        return SHARDZ_ENOMEM;
    }
    t = curl_slist_append(hd, "Content-Type: application/json");
    if (t == NULL) {
        goto nomem;
    }
    hd = t;
    t = curl_slist_append(hd, "Expect:"); /* no 100-continue round trip */
    if (t == NULL) {
        goto nomem;
    }
    hd = t;
    if (secret != NULL) {
        if (strlen(secret) > sizeof auth - 32) {
            curl_slist_free_all(hd);
            return SHARDZ_EINVAL;
        }
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", secret);
        t = curl_slist_append(hd, auth);
        if (t == NULL) {
            goto nomem;
        }
        hd = t;
    }
    h->headers = hd;
    h->multi = curl_multi_init();
    h->easy = curl_easy_init();
    if (h->multi == NULL || h->easy == NULL) {
        szl_http_free(h);
        return SHARDZ_ENOMEM;
    }
    return 0;
nomem:
    curl_slist_free_all(hd);
    return SHARDZ_ENOMEM;
}

int szl_http_request(szl_http *h, const char *method, const char *path, const char *body,
                     size_t len, long timeout_ms, size_t max_reply, szl_http_resp *resp)
{
    CURL *e = h->easy;
    CURLM *m = h->multi;
    http_sink sink = {.max = max_reply};
    char url[1024];
    CURLcode cc = CURLE_OK;
    bool done = false;
    int rc = 0;

    memset(resp, 0, sizeof *resp);
    if ((size_t)snprintf(url, sizeof url, "%s%s", h->base, path) >= sizeof url) {
        return SHARDZ_EINVAL;
    }
    curl_easy_reset(e);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, (struct curl_slist *)h->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 3000 ? timeout_ms : 3000L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &sink);
    if (body != NULL) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "POST") == 0) {
        if (body == NULL) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        }
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    if (curl_multi_add_handle(m, e) != CURLM_OK) {
        return SHARDZ_ENOMEM;
    }
    while (!done) {
        int running = 0;
        int left = 0;
        CURLMsg *msg;

        if (atomic_load(h->stop)) {
            rc = SHARDZ_EBUSY;
            break;
        }
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            rc = SHARDZ_EIO;
            break;
        }
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == e) {
                cc = msg->data.result;
                done = true;
            }
        }
        if (!done && curl_multi_poll(m, NULL, 0, 1000, NULL) != CURLM_OK) {
            rc = SHARDZ_EIO;
            break;
        }
    }
    curl_multi_remove_handle(m, e);
    if (rc == 0) {
        if (sink.nomem) {
            rc = SHARDZ_ENOMEM;
        } else if (sink.too_big) {
            rc = SHARDZ_ETOOBIG;
        } else if (cc == CURLE_OPERATION_TIMEDOUT) {
            rc = SHARDZ_ETIMEDOUT;
        } else if (cc != CURLE_OK) {
            rc = SHARDZ_EIO;
        }
    }
    if (rc != 0) {
        free(sink.buf);
        return rc;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
    if (sink.buf == NULL) {
        sink.buf = calloc(1, 1);
        if (sink.buf == NULL) {
            return SHARDZ_ENOMEM;
        }
    }
    resp->body = sink.buf;
    resp->len = sink.len;
    return 0;
}

void szl_http_wakeup(szl_http *h)
{
    if (h->multi != NULL) {
        curl_multi_wakeup(h->multi);
    }
}

void szl_http_free(szl_http *h)
{
    if (h->easy != NULL) {
        curl_easy_cleanup(h->easy);
    }
    if (h->multi != NULL) {
        curl_multi_cleanup(h->multi);
    }
    curl_slist_free_all(h->headers);
    h->easy = NULL;
    h->multi = NULL;
    h->headers = NULL;
}
