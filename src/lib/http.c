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

/* Splits "a:1,b:2" into h->bases (h may be NULL: a check only). */
static int parse_bases(szl_http *h, const char *list)
{
    char item[SZL_HOST_MAX + 16];
    char host[SZL_HOST_MAX + 1];
    uint16_t port;
    int n = 0;

    if (list == NULL || list[0] == '\0') {
        return SHARDZ_EINVAL;
    }
    for (const char *p = list; p != NULL; n++) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);

        if (n == SZL_MAX_COORDS || len == 0 || len >= sizeof item) {
            return SHARDZ_EINVAL;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        if (szl_hostport(item, host, sizeof host, &port) != 0) {
            return SHARDZ_EINVAL;
        }
        if (h != NULL) {
            snprintf(h->bases[n], sizeof h->bases[n],
                     strchr(host, ':') != NULL ? "http://[%s]:%u" : "http://%s:%u", host,
                     (unsigned)port);
        }
        p = comma != NULL ? comma + 1 : NULL;
    }
    if (h != NULL) {
        h->nbases = n;
    }
    return 0;
}

bool szl_hostports_valid(const char *s)
{
    return parse_bases(NULL, s) == 0;
}

int szl_http_init(szl_http *h, const char *hostports, const char *secret, atomic_bool *stop)
{
    struct curl_slist *hd = NULL;
    struct curl_slist *t;
    char auth[1024];

    memset(h, 0, sizeof *h);
    h->stop = stop;
    if (parse_bases(h, hostports) != 0) {
        return SHARDZ_EINVAL;
    }
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

/* One request to one coordinator; *refused is set when the connection was refused (the
 * request never left). */
static int request_one(szl_http *h, const char *base, const char *method, const char *path,
                       const char *body, size_t len, long timeout_ms, size_t max_reply,
                       szl_http_resp *resp, bool *refused)
{
    CURL *e = h->easy;
    CURLM *m = h->multi;
    http_sink sink = {.max = max_reply};
    char url[1024];
    CURLcode cc = CURLE_OK;
    bool done = false;
    int rc = 0;

    memset(resp, 0, sizeof *resp);
    *refused = false;
    if ((size_t)snprintf(url, sizeof url, "%s%s", base, path) >= sizeof url) {
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
            *refused = cc == CURLE_COULDNT_CONNECT;
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

int szl_http_request(szl_http *h, const char *method, const char *path, const char *body,
                     size_t len, long timeout_ms, size_t max_reply, szl_http_resp *resp)
{
    int rc = SHARDZ_EIO;

    for (int i = 0; i < h->nbases; i++) {
        int k = (h->cur + i) % h->nbases;
        bool refused = false;
        bool last = i + 1 == h->nbases;

        rc = request_one(h, h->bases[k], method, path, body, len, timeout_ms, max_reply, resp,
                         &refused);
        if (rc == SHARDZ_EIO && refused && !last) {
            continue; /* never sent: the next coordinator */
        }
        if (rc == 0 && resp->status == 503 && !last && strstr(resp->body, "ENOTLEADER")) {
            free(resp->body); /* nothing changed there: the next one */
            resp->body = NULL;
            continue;
        }
        if (rc == 0) {
            h->cur = k;
        }
        return rc;
    }
    return rc;
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
