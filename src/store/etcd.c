/* The etcd store: the ops table over etcd v3's JSON gateway (/v3/kv/range, put, txn,
 * deleterange, compaction, and /v3/watch for changes since a revision) with libcurl, JSON by
 * jansson. Keys are the store's prefix plus the store key; keys and values travel base64-encoded;
 * 64-bit numbers arrive as JSON strings and are parsed as integers, absent fields as zero.
 * Revisions: etcd's revisions shifted by one (an empty etcd is at revision 1, an empty store at
 * 0), so store revision s is etcd revision s + 1 for every handle on every process. One thread
 * per handle. docs/STORE.md, section 6. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "shardz/store.h"
#include "store/store_int.h"

#define ETCD_CONNECT_TIMEOUT_MS 2000L
#define ETCD_TIMEOUT_MS 10000L
#define ETCD_SHORT_TIMEOUT_MS                                                                      \
    2000L /* small requests (revision, leases): a lost etcd is seen soon */
#define ETCD_WATCH_TIMEOUT_MS 5000L
#define ETCD_MAX_RESPONSE (256u * 1024 * 1024)

typedef struct {
    shardz_store base;
    CURL *curl;
    char *endpoint; /* the endpoint in use (one of eps), without a trailing '/' */
    char **eps;     /* every endpoint given (the cluster's members) */
    size_t neps, cur;
    unsigned char *pfx; /* the key prefix */
    size_t pfx_len;
    unsigned char *pend; /* range_end of the prefix ("\0" for the whole keyspace) */
    size_t pend_len;
    int64_t history; /* revisions of history kept (compacting etcd behind) */
    int64_t compact; /* the store compact revision last known */
} etcd_store;

/* ---- small helpers ---- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* A JSON string holding the base64 of a and then b (either may be empty). NULL on ENOMEM. */
static json_t *jb64(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen + blen, i, o = 0;
    char *s = malloc((n + 2) / 3 * 4 + 1);
    json_t *j;

    if (!s) {
        return NULL;
    }
    for (i = 0; i < n; i += 3) {
        unsigned v = 0, k, m = n - i < 3 ? (unsigned)(n - i) : 3;

        for (k = 0; k < 3; k++) {
            unsigned char c = 0;

            if (k < m) {
                c = i + k < alen ? ((const unsigned char *)a)[i + k]
                                 : ((const unsigned char *)b)[i + k - alen];
            }
            v = v << 8 | c;
        }
        s[o++] = b64chars[v >> 18 & 63];
        s[o++] = b64chars[v >> 12 & 63];
        s[o++] = m > 1 ? b64chars[v >> 6 & 63] : '=';
        s[o++] = m > 2 ? b64chars[v & 63] : '=';
    }
    s[o] = '\0';
    j = json_string(s);
    free(s);
    return j;
}

static int b64val(int c)
{
    const char *p;

    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    p = c ? strchr(b64chars, c) : NULL;
    return p ? (int)(p - b64chars) : -1;
}

/* Decodes base64 text (absent: empty) into a new buffer with a NUL after it. 0, SHARDZ_EIO on
 * bad text, SHARDZ_ENOMEM. */
static int b64dec(const char *s, unsigned char **out, size_t *len)
{
    size_t n = s ? strlen(s) : 0, i, o = 0;
    unsigned v = 0, bits = 0;
    unsigned char *d = malloc(n / 4 * 3 + 4);

    if (!d) {
        return SHARDZ_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        int c = b64val((unsigned char)s[i]);

        if (s[i] == '=') {
            break;
        }
        if (c < 0) {
            free(d);
            return SHARDZ_EIO;
        }
        v = v << 6 | (unsigned)c;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[o++] = (unsigned char)(v >> bits & 0xff);
        }
    }
    d[o] = '\0';
    *out = d;
    *len = o;
    return 0;
}

/* A 64-bit field: a JSON string of digits or a JSON integer; absent or null is 0. */
static int64_t jint(const json_t *obj, const char *field)
{
    const json_t *v = obj ? json_object_get(obj, field) : NULL;

    if (json_is_integer(v)) {
        return (int64_t)json_integer_value(v);
    }
    if (json_is_string(v)) {
        char *end = NULL;
        long long x;

        errno = 0;
        x = strtoll(json_string_value(v), &end, 10);
        if (errno == 0 && end && *end == '\0') {
            return (int64_t)x;
        }
    }
    return 0;
}

/* An etcd revision as the store's (0 stays 0: an absent key's revisions). */
static int64_t s_rev(int64_t erev)
{
    return erev > 0 ? erev - 1 : 0;
}

/* The header revision of a response, as the store's. */
static int64_t hdr_rev(const json_t *resp)
{
    return s_rev(jint(json_object_get(resp, "header"), "revision"));
}

/* The range end of every key starting with p: p with its last non-0xff byte incremented and the
 * bytes after it dropped; "\0" (the whole keyspace) when there is none. New buffer. */
static unsigned char *prefix_end(const void *a, size_t alen, const void *b, size_t blen,
                                 size_t *out_len)
{
    size_t n = alen + blen;
    unsigned char *e = malloc(n ? n : 1);

    if (!e) {
        return NULL;
    }
    if (alen) {
        memcpy(e, a, alen);
    }
    if (blen) {
        memcpy(e + alen, b, blen);
    }
    while (n > 0 && e[n - 1] == 0xff) {
        n--;
    }
    if (n == 0) {
        e[0] = 0;
        *out_len = 1;
        return e;
    }
    e[n - 1]++;
    *out_len = n;
    return e;
}

/* A prefixed key as a JSON base64 string. */
static json_t *jkey(const etcd_store *e, const void *k, size_t n)
{
    return jb64(e->pfx, e->pfx_len, k, n);
}

/* ---- HTTP ---- */

typedef struct {
    char *buf;
    size_t len, cap;
} membuf;

static size_t write_mem(char *p, size_t size, size_t nmemb, void *ud)
{
    membuf *m = ud;
    size_t n = size * nmemb;

    if (m->len + n + 1 > ETCD_MAX_RESPONSE) {
        return 0;
    }
    if (m->len + n + 1 > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        char *nb;

        while (cap < m->len + n + 1) {
            cap *= 2;
        }
        nb = realloc(m->buf, cap);
        if (!nb) {
            return 0;
        }
        m->buf = nb;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, p, n);
    m->len += n;
    m->buf[m->len] = '\0';
    return n;
}

/* Sets up a POST of body to endpoint + path. */
static void http_setup(etcd_store *e, const char *path, const char *body, char *url, size_t ucap,
                       long timeout_ms)
{
    snprintf(url, ucap, "%s%s", e->endpoint, path);
    curl_easy_reset(e->curl);
    curl_easy_setopt(e->curl, CURLOPT_URL, url);
    curl_easy_setopt(e->curl, CURLOPT_POST, 1L);
    curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, ETCD_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
}

/* Maps an etcd error message to a store error (and sets the detail). */
static int etcd_error(etcd_store *e, const char *path, long code, const json_t *resp,
                      const char *raw)
{
    const char *msg = json_string_value(json_object_get(resp, "message"));

    if (!msg) {
        msg = json_string_value(json_object_get(resp, "error"));
    }
    if (!msg) {
        msg = raw && *raw ? raw : "no detail";
    }
    store_seterr(&e->base, "etcd at %s: %s: HTTP %ld: %.160s", e->endpoint, path, code, msg);
    if (strstr(msg, "compacted")) {
        return SHARDZ_STORE_ECOMPACTED;
    }
    if (strstr(msg, "future revision")) {
        return SHARDZ_EINVAL;
    }
    if (strstr(msg, "too many operations") || strstr(msg, "too large")) {
        return SHARDZ_ETOOBIG;
    }
    if (strstr(msg, "duplicate key")) {
        return SHARDZ_EINVAL;
    }
    if (strstr(msg, "lease not found")) {
        return SHARDZ_ENOENT;
    }
    return SHARDZ_EIO;
}

/* POSTs body (consumed) to path and parses the answer into *resp (caller's). */
static int post_t(etcd_store *e, const char *path, json_t *body, json_t **resp, long timeout_ms)
{
    char url[1024];
    char *text;
    membuf m = {0};
    CURLcode cc;
    long code = 0;
    json_error_t jerr;
    json_t *r;
    int rc;

    *resp = NULL;
    if (!body) {
        return SHARDZ_ENOMEM;
    }
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) {
        return SHARDZ_ENOMEM;
    }
    /* A member that refuses the connection never saw the request: the next member is tried
     * at once. Other failures (a timeout: the request may have been applied) are returned, and
     * the next call starts at the next member. */
    for (size_t attempt = 0;; attempt++) {
        http_setup(e, path, text, url, sizeof url, timeout_ms);
        curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, write_mem);
        curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &m);
        cc = curl_easy_perform(e->curl);
        if (cc == CURLE_OK) {
            break;
        }
        store_seterr(&e->base, "etcd at %s: %s: %s", e->endpoint, path, curl_easy_strerror(cc));
        e->cur = (e->cur + 1) % e->neps;
        e->endpoint = e->eps[e->cur];
        if (cc != CURLE_COULDNT_CONNECT || attempt + 1 >= e->neps) {
            free(text);
            free(m.buf);
            return SHARDZ_EIO;
        }
        free(m.buf);
        m = (membuf){0};
    }
    free(text);
    curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &code);
    r = m.buf ? json_loadb(m.buf, m.len, 0, &jerr) : NULL;
    if (code != 200 || !json_is_object(r)) {
        rc = code == 200 ? SHARDZ_EIO : etcd_error(e, path, code, r, m.buf);
        if (code == 200) {
            store_seterr(&e->base, "etcd at %s: %s: unreadable answer", e->endpoint, path);
        }
        json_decref(r);
        free(m.buf);
        return rc;
    }
    if (json_object_get(r, "error")) {
        rc = etcd_error(e, path, code, r, m.buf);
        json_decref(r);
        free(m.buf);
        return rc;
    }
    free(m.buf);
    *resp = r;
    return 0;
}

static int post(etcd_store *e, const char *path, json_t *body, json_t **resp)
{
    return post_t(e, path, body, resp, ETCD_TIMEOUT_MS);
}

/* Adds one etcd kv to b when it lies under the prefix (a foreign key is skipped). */
static int add_kv(etcd_store *e, store_builder *b, shardz_event_type type, const json_t *kv)
{
    unsigned char *k = NULL, *v = NULL;
    size_t klen = 0, vlen = 0;
    int rc;

    rc = b64dec(json_string_value(json_object_get(kv, "key")), &k, &klen);
    if (rc == 0) {
        rc = b64dec(json_string_value(json_object_get(kv, "value")), &v, &vlen);
    }
    if (rc == SHARDZ_EIO) {
        store_seterr(&e->base, "etcd at %s: bad base64 in an answer", e->endpoint);
    }
    if (rc == 0 && klen > e->pfx_len && memcmp(k, e->pfx, e->pfx_len) == 0) {
        rc = store_builder_add(b, type, k + e->pfx_len, klen - e->pfx_len, v, vlen,
                               s_rev(jint(kv, "create_revision")), s_rev(jint(kv, "mod_revision")),
                               jint(kv, "version"));
    }
    free(k);
    free(v);
    return rc;
}

/* true when an etcd kv's key lies under the prefix (and is longer than it). */
static bool kv_in_prefix(const etcd_store *e, const json_t *kv)
{
    unsigned char *k = NULL;
    size_t klen = 0;
    bool in;

    if (b64dec(json_string_value(json_object_get(kv, "key")), &k, &klen)) {
        return false;
    }
    in = klen > e->pfx_len && memcmp(k, e->pfx, e->pfx_len) == 0;
    free(k);
    return in;
}

/* A range request body over [key, end) of etcd keys (already prefixed, raw bytes). */
static json_t *range_body(const void *k, size_t klen, const void *end, size_t elen)
{
    json_t *b = json_object();

    if (b) {
        json_object_set_new(b, "key", jb64(k, klen, NULL, 0));
        json_object_set_new(b, "range_end", jb64(end, elen, NULL, 0));
    }
    return b;
}

/* The current etcd revision: a count-only read of one key (the header carries the revision;
 * counting the whole prefix would cost O(keys) in etcd on every call). */
static int current_erev(etcd_store *e, int64_t *erev)
{
    json_t *b = json_object(), *r = NULL;
    int rc;

    if (b) {
        json_object_set_new(b, "key",
                            e->pfx_len ? jb64(e->pfx, e->pfx_len, NULL, 0) : jb64("", 1, NULL, 0));
        json_object_set_new(b, "count_only", json_true());
    }
    rc = post_t(e, "/v3/kv/range", b, &r, ETCD_SHORT_TIMEOUT_MS);
    if (rc == 0) {
        *erev = jint(json_object_get(r, "header"), "revision");
    }
    json_decref(r);
    return rc;
}

/* 0 when a read at etcd revision erev is still possible, SHARDZ_STORE_ECOMPACTED when not. */
static int probe_erev(etcd_store *e, int64_t erev)
{
    json_t *b = range_body("", 1, "", 1), *r = NULL;
    int rc;

    if (b) {
        json_object_set_new(b, "count_only", json_true());
        json_object_set_new(b, "limit", json_integer(1));
        json_object_set_new(b, "revision", json_integer((json_int_t)erev));
    }
    rc = post(e, "/v3/kv/range", b, &r);
    json_decref(r);
    return rc;
}

/* Refreshes e->compact from etcd: the smallest etcd revision still readable is the store's
 * compact revision + 1. cur is the current etcd revision. */
static int refresh_compact(etcd_store *e, int64_t cur)
{
    int64_t lo, hi;
    int rc = probe_erev(e, e->compact + 1);

    if (rc != SHARDZ_STORE_ECOMPACTED) {
        return rc;
    }
    lo = e->compact + 2; /* the answer lies in [lo, hi] */
    hi = cur;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;

        rc = probe_erev(e, mid);
        if (rc == 0) {
            hi = mid;
        } else if (rc == SHARDZ_STORE_ECOMPACTED) {
            lo = mid + 1;
        } else {
            return rc;
        }
    }
    e->compact = s_rev(lo);
    e->base.errmsg[0] = '\0';
    return 0;
}

/* ---- ops ---- */

static int etcd_get(shardz_store *st, const void *key, size_t key_len, shardz_kv **out,
                    int64_t *revision)
{
    etcd_store *e = (etcd_store *)st;
    json_t *b = json_object(), *r = NULL, *kvs;
    store_builder bl = {0};
    shardz_range *rg = NULL;
    int rc;

    *out = NULL;
    if (b) {
        json_object_set_new(b, "key", jkey(e, key, key_len));
    }
    rc = post(e, "/v3/kv/range", b, &r);
    if (rc) {
        return rc;
    }
    *revision = hdr_rev(r);
    kvs = json_object_get(r, "kvs");
    if (json_array_size(kvs) == 0) {
        json_decref(r);
        return SHARDZ_ENOENT;
    }
    rc = add_kv(e, &bl, SHARDZ_EVENT_PUT, json_array_get(kvs, 0));
    json_decref(r);
    if (rc == 0 && bl.n == 0) {
        store_builder_free(&bl);
        return SHARDZ_ENOENT;
    }
    if (rc == 0) {
        rc = store_builder_range(&bl, *revision, false, &rg);
    } else {
        store_builder_free(&bl);
    }
    if (rc) {
        return rc;
    }
    *out = store_kv_new(rg->kvs[0].key, rg->kvs[0].key_len, rg->kvs[0].value, rg->kvs[0].value_len,
                        rg->kvs[0].create_revision, rg->kvs[0].mod_revision, rg->kvs[0].version);
    shardz_range_free(rg);
    return *out ? 0 : SHARDZ_ENOMEM;
}

static int etcd_range(shardz_store *st, const void *lo, size_t lo_len, const void *hi,
                      size_t hi_len, size_t limit, shardz_range **out)
{
    etcd_store *e = (etcd_store *)st;
    json_t *b = json_object(), *r = NULL, *kvs;
    store_builder bl = {0};
    size_t i;
    int rc = 0;

    *out = NULL;
    if (b) {
        /* etcd refuses an empty key: the whole keyspace starts at "\0". */
        json_object_set_new(b, "key",
                            e->pfx_len + lo_len ? jkey(e, lo, lo_len) : jb64("", 1, NULL, 0));
        json_object_set_new(b, "range_end",
                            hi ? jkey(e, hi, hi_len) : jb64(e->pend, e->pend_len, NULL, 0));
        if (limit) {
            json_object_set_new(b, "limit", json_integer((json_int_t)limit));
        }
    }
    rc = post(e, "/v3/kv/range", b, &r);
    if (rc) {
        return rc;
    }
    kvs = json_object_get(r, "kvs");
    for (i = 0; rc == 0 && i < json_array_size(kvs); i++) {
        rc = add_kv(e, &bl, SHARDZ_EVENT_PUT, json_array_get(kvs, i));
    }
    if (rc == 0) {
        rc = store_builder_range(&bl, hdr_rev(r), json_is_true(json_object_get(r, "more")), out);
    } else {
        store_builder_free(&bl);
    }
    json_decref(r);
    return rc;
}

/* A compared revision as etcd's (0 and negatives unchanged). */
static json_int_t e_rev(int64_t srev)
{
    return (json_int_t)(srev > 0 ? srev + 1 : srev);
}

static json_t *compare_json(const etcd_store *e, const shardz_compare *c)
{
    json_t *j = json_object();
    const char *target = "CREATE", *result = "EQUAL", *field = "create_revision";
    json_t *val = NULL;

    if (!j) {
        return NULL;
    }
    switch (c->target) {
    case SHARDZ_CMP_ABSENT:
        val = json_string("0");
        break;
    case SHARDZ_CMP_EXISTS:
        result = "GREATER";
        val = json_string("0");
        break;
    case SHARDZ_CMP_VERSION:
        target = "VERSION";
        field = "version";
        val = json_integer((json_int_t)c->number);
        break;
    case SHARDZ_CMP_CREATE:
        val = json_integer(e_rev(c->number));
        break;
    case SHARDZ_CMP_MOD:
        target = "MOD";
        field = "mod_revision";
        val = json_integer(e_rev(c->number));
        break;
    case SHARDZ_CMP_VALUE:
        target = "VALUE";
        field = "value";
        val = jb64(c->value, c->value_len, NULL, 0);
        break;
    }
    json_object_set_new(j, "key", jkey(e, c->key, c->key_len));
    json_object_set_new(j, "target", json_string(target));
    json_object_set_new(j, "result", json_string(result));
    json_object_set_new(j, field, val);
    return j;
}

static json_t *op_json(const etcd_store *e, const shardz_op *o)
{
    json_t *j = json_object(), *req = json_object();

    if (!j || !req) {
        json_decref(j);
        json_decref(req);
        return NULL;
    }
    json_object_set_new(req, "key", jkey(e, o->key, o->key_len));
    if (o->type == SHARDZ_OP_PUT) {
        json_object_set_new(req, "value", jb64(o->value, o->value_len, NULL, 0));
        if (o->lease) {
            json_object_set_new(req, "lease", json_integer((json_int_t)o->lease));
        }
        json_object_set_new(j, "request_put", req);
    } else {
        if (o->type == SHARDZ_OP_DELETE_PREFIX) {
            size_t n = 0;
            unsigned char *end = prefix_end(e->pfx, e->pfx_len, o->key, o->key_len, &n);

            json_object_set_new(req, "range_end", end ? jb64(end, n, NULL, 0) : NULL);
            free(end);
        }
        json_object_set_new(j, "request_delete_range", req);
    }
    return j;
}

static int etcd_compact_to(etcd_store *e, int64_t revision, int64_t cur_erev);

static int etcd_txn(shardz_store *st, const shardz_compare *cmps, size_t ncmps,
                    const shardz_op *ops, size_t nops, size_t *deleted, int64_t *revision)
{
    etcd_store *e = (etcd_store *)st;
    json_t *b = json_object(), *ca = json_array(), *sa = json_array(), *r = NULL, *resps;
    size_t i;
    int rc;

    *deleted = 0;
    if (!b || !ca || !sa) {
        json_decref(b);
        json_decref(ca);
        json_decref(sa);
        return SHARDZ_ENOMEM;
    }
    for (i = 0; i < ncmps; i++) {
        json_array_append_new(ca, compare_json(e, &cmps[i]));
    }
    for (i = 0; i < nops; i++) {
        json_array_append_new(sa, op_json(e, &ops[i]));
    }
    json_object_set_new(b, "compare", ca);
    json_object_set_new(b, "success", sa);
    rc = post(e, "/v3/kv/txn", b, &r);
    if (rc) {
        return rc;
    }
    *revision = hdr_rev(r);
    if (!json_is_true(json_object_get(r, "succeeded"))) {
        store_seterr(st, "a compare did not hold (etcd does not say which); nothing changed");
        json_decref(r);
        return SHARDZ_ECONFLICT;
    }
    resps = json_object_get(r, "responses");
    for (i = 0; i < json_array_size(resps); i++) {
        json_t *d = json_object_get(json_array_get(resps, i), "response_delete_range");

        if (d) {
            *deleted += (size_t)jint(d, "deleted");
        }
    }
    json_decref(r);
    /* The history window: compact etcd behind, in steps of a hundredth of the window. */
    if (e->history > 0) {
        int64_t step = e->history / 100 > 0 ? e->history / 100 : 1;

        if (*revision - e->history - e->compact >= step) {
            (void)etcd_compact_to(e, *revision - e->history, *revision + 1);
        }
        e->base.errmsg[0] = '\0';
    }
    return 0;
}

/* Compacts to store revision `revision` (<= the current one, cur_erev being etcd's). */
static int etcd_compact_to(etcd_store *e, int64_t revision, int64_t cur_erev)
{
    json_t *b, *r = NULL;
    int rc;

    if (revision > s_rev(cur_erev)) {
        store_seterr(&e->base, "compact revision %lld is after the current revision %lld",
                     (long long)revision, (long long)s_rev(cur_erev));
        return SHARDZ_EINVAL;
    }
    if (revision <= e->compact) {
        return 0;
    }
    b = json_object();
    if (b) {
        json_object_set_new(b, "revision", json_integer(e_rev(revision)));
    }
    rc = post(e, "/v3/kv/compaction", b, &r);
    json_decref(r);
    if (rc == SHARDZ_STORE_ECOMPACTED) { /* someone compacted further already */
        e->base.errmsg[0] = '\0';
        return refresh_compact(e, cur_erev);
    }
    if (rc == 0) {
        e->compact = revision;
    }
    return rc;
}

static int etcd_compact(shardz_store *st, int64_t revision)
{
    etcd_store *e = (etcd_store *)st;
    int64_t cur = 0;
    int rc = current_erev(e, &cur);

    if (rc == 0) {
        rc = refresh_compact(e, cur);
    }
    return rc ? rc : etcd_compact_to(e, revision, cur);
}

static int etcd_status(shardz_store *st, shardz_store_status *out)
{
    etcd_store *e = (etcd_store *)st;
    int64_t cur = 0;
    int rc = current_erev(e, &cur);

    if (rc == 0) {
        rc = refresh_compact(e, cur);
    }
    if (rc) {
        return rc;
    }
    out->backend = "etcd";
    out->sync = SHARDZ_STORE_SYNC_FULL;
    out->revision = s_rev(cur);
    out->compact_revision = e->compact;
    return 0;
}

/* ---- changes since: a watch from since + 1, read up to the current revision ---- */

/* A watch stream's bytes and how far they are read (the changes read and the follow). */
typedef struct {
    membuf m;
    size_t used;    /* bytes of m parsed */
    size_t scanned; /* bytes of m searched for a message's end */
} msg_reader;

/* Appends a chunk of the stream: 0, or SHARDZ_ENOMEM (or over ETCD_MAX_RESPONSE). */
static int reader_add(msg_reader *r, char *p, size_t n)
{
    return write_mem(p, 1, n, &r->m) == n ? 0 : SHARDZ_ENOMEM;
}

/* The next whole message of a watch stream: 1 with *msg (the caller's) and *res (its
 * "result", borrowed from it); 0 when none has fully arrived; or the error that ends the
 * stream, its detail set: a message unreadable or without a result (an error's), or a cancel,
 * SHARDZ_EIO; a cancel for compaction SHARDZ_STORE_ECOMPACTED, e->compact raised to it. The
 * gateway ends each message with a newline: one is parsed once that has arrived (or the bytes
 * end as an object may), not the whole remainder at every chunk (a message of a few MB, pages
 * of assignments, arrives in hundreds of chunks: quadratic). */
static int next_result(etcd_store *e, msg_reader *r, json_t **msg, json_t **res)
{
    json_error_t jerr;

    while (r->used < r->m.len && strchr(" \t\r\n", r->m.buf[r->used])) {
        r->used++;
    }
    if (r->used >= r->m.len) {
        return 0;
    }
    size_t from = r->scanned > r->used ? r->scanned : r->used;
    const char *nl = memchr(r->m.buf + from, '\n', r->m.len - from);
    r->scanned = nl ? (size_t)(nl - r->m.buf) + 1 : r->m.len;
    if (!nl && r->m.buf[r->m.len - 1] != '}') {
        return 0; /* incomplete: wait for more */
    }
    size_t end = nl ? (size_t)(nl - r->m.buf) + 1 : r->m.len;
    *msg = json_loadb(r->m.buf + r->used, end - r->used, JSON_DISABLE_EOF_CHECK, &jerr);
    if (!*msg) {
        if (!nl) {
            return 0; /* an object not yet whole */
        }
        store_seterr(&e->base, "etcd at %s: watch: unreadable message", e->endpoint);
        return SHARDZ_EIO;
    }
    r->used += (size_t)jerr.position;
    *res = json_object_get(*msg, "result");
    int rc = 0;
    if (!*res) {
        store_seterr(&e->base, "etcd at %s: watch: %.160s", e->endpoint,
                     json_string_value(json_object_get(json_object_get(*msg, "error"), "message"))
                         ?: "no result");
        rc = SHARDZ_EIO;
    } else if (json_is_true(json_object_get(*res, "canceled"))) {
        int64_t compacted = s_rev(jint(*res, "compact_revision"));

        if (compacted > 0) {
            e->compact = compacted > e->compact ? compacted : e->compact;
            store_seterr(&e->base, "the watch's start is compacted (history starts after %lld)",
                         (long long)e->compact);
            rc = SHARDZ_STORE_ECOMPACTED;
        } else {
            store_seterr(&e->base, "etcd at %s: watch canceled: %.160s", e->endpoint,
                         json_string_value(json_object_get(*res, "cancel_reason")) ?: "");
            rc = SHARDZ_EIO;
        }
    }
    if (rc) {
        json_decref(*msg);
        *msg = NULL;
        return rc;
    }
    /* what was parsed is dropped: the buffer holds about one message */
    memmove(r->m.buf, r->m.buf + r->used, r->m.len - r->used);
    r->m.len -= r->used;
    r->scanned = r->scanned > r->used ? r->scanned - r->used : 0;
    r->used = 0;
    r->m.buf[r->m.len] = '\0';
    return 1;
}

typedef struct {
    etcd_store *e;
    msg_reader r;
    int64_t until;  /* etcd revision to read up to */
    json_t *events; /* every event received, in order */
    bool done;
    int rc;       /* the error that ended the stream (its detail set), 0 for none */
    size_t limit; /* 0, or stop after the message that brings the events of the prefix to it */
    size_t kept;  /* events of the prefix received */
    bool limited; /* stopped by limit before until */
} watch_ctx;

static size_t write_watch(char *p, size_t size, size_t nmemb, void *ud)
{
    watch_ctx *w = ud;
    json_t *msg, *res;
    int got = 0;

    w->rc = reader_add(&w->r, p, size * nmemb);
    while (w->rc == 0 && (got = next_result(w->e, &w->r, &msg, &res)) == 1) {
        json_t *evs = json_object_get(res, "events");

        for (size_t i = 0; i < json_array_size(evs); i++) {
            json_t *ev = json_array_get(evs, i);

            json_array_append(w->events, ev);
            if (jint(json_object_get(ev, "kv"), "mod_revision") >= w->until) {
                w->done = true;
            }
            w->kept += w->limit && kv_in_prefix(w->e, json_object_get(ev, "kv")) ? 1 : 0;
        }
        json_decref(msg);
        /* A message holds whole revisions (etcd splits one only with "fragment", not asked
         * for): with limit events of the prefix in hand, the rest is not read at all. Far
         * behind, reading up to until would cost the whole backlog per call. */
        if (!w->done && w->limit && w->kept >= w->limit) {
            w->done = w->limited = true;
        }
        if (w->done) {
            return 0;
        }
    }
    if (w->rc == 0 && got < 0) {
        w->rc = got;
    }
    return w->rc ? 0 : size * nmemb;
}

static int etcd_changes(shardz_store *st, int64_t since, size_t limit, shardz_changes **out)
{
    etcd_store *e = (etcd_store *)st;
    watch_ctx w = {0};
    store_builder bl = {0};
    json_t *b, *cr;
    char *text;
    char url[1024];
    int64_t cur = 0, last = -1;
    CURLcode cc;
    size_t i;
    bool more = false;
    int rc;

    *out = NULL;
    rc = current_erev(e, &cur);
    if (rc) {
        return rc;
    }
    if (s_rev(cur) <= since) {
        return store_builder_changes(&bl, s_rev(cur), false, out);
    }
    /* Store revision since is etcd's since + 1: readable unless compacted. */
    rc = since < e->compact ? SHARDZ_STORE_ECOMPACTED : probe_erev(e, since + 1);
    if (rc == SHARDZ_STORE_ECOMPACTED) {
        (void)refresh_compact(e, cur);
        store_seterr(st, "revision %lld is compacted (history starts after %lld)", (long long)since,
                     (long long)e->compact);
    }
    if (rc) {
        return rc;
    }
    /* The whole keyspace is watched so that every revision up to cur has an event (a revision
     * may touch only keys outside the prefix); foreign keys are dropped below. */
    b = json_object();
    cr = json_object();
    if (!b || !cr) {
        json_decref(b);
        json_decref(cr);
        return SHARDZ_ENOMEM;
    }
    json_object_set_new(cr, "key", jb64("", 1, NULL, 0));
    json_object_set_new(cr, "range_end", jb64("", 1, NULL, 0));
    json_object_set_new(cr, "start_revision", json_integer((json_int_t)(since + 2)));
    json_object_set_new(b, "create_request", cr);
    text = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    w.e = e;
    w.until = cur;
    w.limit = limit;
    w.events = json_array();
    if (!text || !w.events) {
        free(text);
        json_decref(w.events);
        return SHARDZ_ENOMEM;
    }
    http_setup(e, "/v3/watch", text, url, sizeof url, ETCD_WATCH_TIMEOUT_MS);
    curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, write_watch);
    curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &w);
    cc = curl_easy_perform(e->curl);
    free(text);
    free(w.r.m.buf);
    if (!w.done) {
        rc = w.rc; /* its detail set */
        if (rc == 0) {
            store_seterr(st, "etcd at %s: /v3/watch: %s", e->endpoint,
                         cc == CURLE_OK ? "the stream ended early" : curl_easy_strerror(cc));
            rc = SHARDZ_EIO;
        }
        json_decref(w.events);
        return rc;
    }
    e->base.errmsg[0] = '\0';
    for (i = 0; rc == 0 && i < json_array_size(w.events); i++) {
        json_t *ev = json_array_get(w.events, i), *kv = json_object_get(ev, "kv");
        const char *type = json_string_value(json_object_get(ev, "type"));
        int64_t rev = jint(kv, "mod_revision");
        size_t before = bl.n;

        if (rev > cur) {
            break;
        }
        if (!kv_in_prefix(e, kv)) {
            continue;
        }
        if (limit && bl.n >= limit && rev != last) {
            more = true;
            break;
        }
        rc = add_kv(e, &bl,
                    type && strcmp(type, "DELETE") == 0 ? SHARDZ_EVENT_DELETE : SHARDZ_EVENT_PUT,
                    kv);
        if (bl.n > before) {
            last = rev;
        }
    }
    json_decref(w.events);
    if (rc) {
        store_builder_free(&bl);
        return rc;
    }
    /* stopped at the limit on a message's end: revisions after the last event are unread */
    more = more || (w.limited && last < cur);
    return store_builder_changes(&bl, s_rev(cur), more, out);
}

/* ---- watch: one stream from since + 1, handed over a revision boundary at a time ---- */

typedef struct {
    etcd_store *e;
    msg_reader r;
    size_t limit;
    shardz_watch_fn fn;
    shardz_watch_poll_fn poll;
    void *arg;
    int stop;        /* what stopped the stream: fn's or poll's value, or an error */
    json_t *pending; /* events received and not handed over (the last revision's, in a fragment) */
} stream_ctx;

/* Hands the pending events over, in chunks of whole revisions of about limit events: all of
 * them, or (a fragment: the last revision may go on in the next message) those before the last
 * revision. 0, or what stopped the stream. */
static int stream_deliver(stream_ctx *w, bool all)
{
    size_t n = json_array_size(w->pending), cut = n, i, from = 0;
    int64_t last_rev = 0;

    if (n == 0) {
        return 0;
    }
    if (!all) {
        int64_t top =
            jint(json_object_get(json_array_get(w->pending, n - 1), "kv"), "mod_revision");
        while (cut > 0 && jint(json_object_get(json_array_get(w->pending, cut - 1), "kv"),
                               "mod_revision") == top) {
            cut--;
        }
    }
    while (from < cut) {
        store_builder bl = {0};
        shardz_changes *c = NULL;
        int rc = 0;

        for (i = from; i < cut && rc == 0; i++) {
            json_t *ev = json_array_get(w->pending, i), *kv = json_object_get(ev, "kv");
            const char *type = json_string_value(json_object_get(ev, "type"));
            int64_t rev = jint(kv, "mod_revision");

            if (w->limit && bl.n >= w->limit && rev != last_rev) {
                break;
            }
            last_rev = rev;
            rc = add_kv(
                w->e, &bl,
                type && strcmp(type, "DELETE") == 0 ? SHARDZ_EVENT_DELETE : SHARDZ_EVENT_PUT, kv);
        }
        if (rc == 0) {
            rc = store_builder_changes(&bl, s_rev(last_rev), false, &c);
        } else {
            store_builder_free(&bl);
        }
        if (rc == 0) {
            rc = w->fn(w->arg, c);
        }
        if (rc) {
            return rc;
        }
        from = i;
    }
    if (cut == n) {
        json_array_clear(w->pending);
    } else {
        json_t *rest = json_array();

        for (i = cut; i < n && rest; i++) {
            json_array_append(rest, json_array_get(w->pending, i));
        }
        if (!rest) {
            return SHARDZ_ENOMEM;
        }
        json_decref(w->pending);
        w->pending = rest;
    }
    return 0;
}

static size_t write_stream(char *p, size_t size, size_t nmemb, void *ud)
{
    stream_ctx *w = ud;
    json_t *msg, *res;
    int got = 0;

    w->stop = reader_add(&w->r, p, size * nmemb);
    while (w->stop == 0 && (got = next_result(w->e, &w->r, &msg, &res)) == 1) {
        json_t *evs = json_object_get(res, "events");

        for (size_t i = 0; i < json_array_size(evs); i++) {
            json_array_append(w->pending, json_array_get(evs, i));
        }
        bool fragment = json_is_true(json_object_get(res, "fragment"));
        json_decref(msg);
        w->stop = stream_deliver(w, !fragment);
        if (w->stop == 0) {
            w->stop = w->poll(w->arg);
        }
    }
    if (w->stop == 0 && got < 0) {
        w->stop = got;
    }
    return w->stop ? 0 : size * nmemb;
}

static int stream_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    stream_ctx *w = ud;

    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    if (w->stop == 0) {
        w->stop = w->poll(w->arg);
    }
    return w->stop != 0;
}

static int etcd_watch(shardz_store *st, int64_t since, size_t limit, shardz_watch_fn fn,
                      shardz_watch_poll_fn poll, void *arg)
{
    etcd_store *e = (etcd_store *)st;
    stream_ctx w = {.e = e, .limit = limit, .fn = fn, .poll = poll, .arg = arg};
    json_t *b = json_object(), *cr = json_object();
    char url[1024];
    char *text = NULL;
    CURLcode cc;

    if (since < e->compact) {
        store_seterr(st, "revision %lld is compacted (history starts after %lld)", (long long)since,
                     (long long)e->compact);
        json_decref(b);
        json_decref(cr);
        return SHARDZ_STORE_ECOMPACTED;
    }
    w.pending = json_array();
    if (b && cr) {
        /* The whole keyspace, so that every revision has an event and the revision read up to
         * is known (a revision may touch only keys outside the prefix); fragments keep one
         * message near etcd's request limit however large a revision is. */
        json_object_set_new(cr, "key", jb64("", 1, NULL, 0));
        json_object_set_new(cr, "range_end", jb64("", 1, NULL, 0));
        json_object_set_new(cr, "start_revision", json_integer((json_int_t)(since + 2)));
        json_object_set_new(cr, "fragment", json_true());
        json_object_set_new(b, "create_request", cr);
        cr = NULL;
        text = json_dumps(b, JSON_COMPACT);
    }
    json_decref(b);
    json_decref(cr);
    if (!text || !w.pending) {
        free(text);
        json_decref(w.pending);
        return SHARDZ_ENOMEM;
    }
    http_setup(e, "/v3/watch", text, url, sizeof url, 0L);
    curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, write_stream);
    curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &w);
    curl_easy_setopt(e->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e->curl, CURLOPT_XFERINFOFUNCTION, stream_progress);
    curl_easy_setopt(e->curl, CURLOPT_XFERINFODATA, &w);
    /* a member gone silent (no FIN: a partition) is seen by TCP keepalive */
    curl_easy_setopt(e->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e->curl, CURLOPT_TCP_KEEPIDLE, 2L);
    curl_easy_setopt(e->curl, CURLOPT_TCP_KEEPINTVL, 1L);
    cc = curl_easy_perform(e->curl);
    free(text);
    free(w.r.m.buf);
    json_decref(w.pending);
    if (w.stop) {
        return w.stop;
    }
    store_seterr(st, "etcd at %s: /v3/watch: %s", e->endpoint,
                 cc == CURLE_OK ? "the stream ended" : curl_easy_strerror(cc));
    if (cc == CURLE_COULDNT_CONNECT) {
        e->cur = (e->cur + 1) % e->neps; /* the next call tries the next member */
        e->endpoint = e->eps[e->cur];
    }
    return SHARDZ_EIO;
}

static void etcd_close(shardz_store *st)
{
    etcd_store *e = (etcd_store *)st;

    curl_easy_cleanup(e->curl);
    for (size_t i = 0; i < e->neps; i++) {
        free(e->eps[i]);
    }
    free(e->eps);
    free(e->pfx);
    free(e->pend);
    free(e);
    curl_global_cleanup();
}

/* ---- leases: /v3/lease/grant, keepalive (one request, one answer), revoke ---- */

static int etcd_lease_grant(shardz_store *st, int64_t ttl_ms, int64_t *id, int64_t *granted_ms)
{
    etcd_store *e = (etcd_store *)st;
    json_t *r = NULL;
    int rc = post_t(
        e, "/v3/lease/grant",
        json_pack("{s:I, s:I}", "TTL", (json_int_t)((ttl_ms + 999) / 1000), "ID", (json_int_t)0),
        &r, ETCD_SHORT_TIMEOUT_MS);

    if (rc) {
        return rc;
    }
    *id = jint(r, "ID");
    *granted_ms = jint(r, "TTL") * 1000;
    json_decref(r);
    if (*id <= 0) {
        store_seterr(st, "etcd at %s: a lease grant without an id", e->endpoint);
        return SHARDZ_EIO;
    }
    return 0;
}

static int etcd_lease_keepalive(shardz_store *st, int64_t id, int64_t *ttl_ms)
{
    etcd_store *e = (etcd_store *)st;
    json_t *r = NULL;
    int rc = post_t(e, "/v3/lease/keepalive", json_pack("{s:I}", "ID", (json_int_t)id), &r,
                    ETCD_SHORT_TIMEOUT_MS);
    int64_t ttl;

    if (rc) {
        return rc;
    }
    ttl = jint(json_object_get(r, "result"), "TTL");
    json_decref(r);
    if (ttl <= 0) { /* etcd answers an expired lease with no TTL */
        store_seterr(st, "etcd at %s: lease %lld has expired", e->endpoint, (long long)id);
        return SHARDZ_ENOENT;
    }
    *ttl_ms = ttl * 1000;
    return 0;
}

static int etcd_lease_revoke(shardz_store *st, int64_t id)
{
    etcd_store *e = (etcd_store *)st;
    json_t *r = NULL;
    int rc = post_t(e, "/v3/lease/revoke", json_pack("{s:I}", "ID", (json_int_t)id), &r,
                    ETCD_SHORT_TIMEOUT_MS);

    json_decref(r);
    return rc;
}

static const store_ops etcd_ops = {
    .version = STORE_OPS_VERSION,
    .name = "etcd",
    .get = etcd_get,
    .range = etcd_range,
    .txn = etcd_txn,
    .changes = etcd_changes,
    .compact = etcd_compact,
    .status = etcd_status,
    .close = etcd_close,
    .lease_grant = etcd_lease_grant,
    .lease_keepalive = etcd_lease_keepalive,
    .lease_revoke = etcd_lease_revoke,
    .watch = etcd_watch,
};

static void open_err(const shardz_store_options *opt, const char *msg)
{
    if (opt && opt->errbuf && opt->errbuf_size) {
        snprintf(opt->errbuf, opt->errbuf_size, "%s", msg);
    }
}

int shardz_store_open_etcd(const char *endpoint, const char *prefix,
                           const shardz_store_options *opt, shardz_store **out)
{
    etcd_store *e;
    size_t elen;
    int64_t cur = 0;
    int rc;

    if (!out) {
        return SHARDZ_EINVAL;
    }
    *out = NULL;
    if (opt && opt->errbuf && opt->errbuf_size) {
        opt->errbuf[0] = '\0';
    }
    if (!endpoint || !*endpoint || (opt && (opt->history < 0 || opt->busy_timeout_ms < 0))) {
        open_err(opt, !endpoint || !*endpoint ? "no etcd endpoint" : "negative option");
        return SHARDZ_EINVAL;
    }
    for (const char *p = endpoint; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        if (strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0) {
            char msg[300];

            snprintf(msg, sizeof msg, "etcd endpoint %.200s: not an http:// or https:// URL",
                     endpoint);
            open_err(opt, msg);
            return SHARDZ_EINVAL;
        }
    }
    if (!prefix) {
        prefix = "";
    }
    if (strlen(prefix) > 256) {
        open_err(opt, "etcd key prefix too long");
        return SHARDZ_EINVAL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        open_err(opt, "libcurl initialisation failed");
        return SHARDZ_ENOMEM;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        curl_global_cleanup();
        return SHARDZ_ENOMEM;
    }
    e->base.ops = &etcd_ops;
    for (const char *p = endpoint; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        e->neps++;
    }
    e->eps = calloc(e->neps, sizeof *e->eps);
    if (!e->eps) {
        free(e);
        curl_global_cleanup();
        return SHARDZ_ENOMEM;
    }
    {
        size_t i = 0;

        for (const char *p = endpoint; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
            elen = strchr(p, ',') ? (size_t)(strchr(p, ',') - p) : strlen(p);
            while (elen > 0 && p[elen - 1] == '/') {
                elen--;
            }
            e->eps[i] = strndup(p, elen);
            if (!e->eps[i]) {
                e->neps = i;
                etcd_close(&e->base);
                return SHARDZ_ENOMEM;
            }
            i++;
        }
    }
    e->endpoint = e->eps[0];
    e->pfx_len = strlen(prefix);
    e->pfx = (unsigned char *)strdup(prefix);
    e->pend = prefix_end(prefix, e->pfx_len, NULL, 0, &e->pend_len);
    e->history = opt && opt->history ? opt->history : SHARDZ_STORE_HISTORY_DEFAULT;
    e->curl = curl_easy_init();
    if (!e->pfx || !e->pend || !e->curl) {
        etcd_close(&e->base);
        return SHARDZ_ENOMEM;
    }
    rc = current_erev(e, &cur);
    if (rc == 0) {
        rc = refresh_compact(e, cur);
    }
    if (rc) {
        open_err(opt, e->base.errmsg);
        etcd_close(&e->base);
        return rc == SHARDZ_ENOMEM ? rc : SHARDZ_EIO;
    }
    e->base.errmsg[0] = '\0';
    *out = &e->base;
    return 0;
}
