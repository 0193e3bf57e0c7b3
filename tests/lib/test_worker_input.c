/* Tests for what the worker refuses: every malformed, misaddressed, oversized or
 * unauthenticated message gets a 4xx with a JSON {code, message}, calls no hook and changes
 * nothing (the stale-revision guard included). Also the no-listener handle mode, config
 * validation, and stop answering a queued assignment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shardz/error.h"
#include "worker_env.h"

typedef struct {
    const char *method;
    const char *path;
    const char *body;
    long status;
    const char *code;
} bad_case;

#define A "\"namespace\":\"kv\",\"node\":\"w1\""
#define R1 "{\"partition\":\"p2\",\"generation\":1}"

static const bad_case bad_cases[] = {
    {"POST", "/shardz/v1/assign", "not json", 400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "", 400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "[1,2]", 400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "{}", 400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "{\"namespace\":\"kv\",\"revision\":9,\"replicas\":[]}", 400,
     "EINVAL"},
    {"POST", "/shardz/v1/assign",
     "{\"namespace\":\"other\",\"node\":\"w1\",\"revision\":9,\"replicas\":[]}", 400, "EPROTO"},
    {"POST", "/shardz/v1/assign",
     "{\"namespace\":\"kv\",\"node\":\"w2\",\"revision\":9,\"replicas\":[]}", 400, "EPROTO"},
    {"POST", "/shardz/v1/assign", "{" A ",\"replicas\":[]}", 400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9.0,\"replicas\":[]}", 400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":-1,\"replicas\":[]}", 400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":\"9\",\"replicas\":[]}", 400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"replicas\":{}}", 400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9}", 400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"replicas\":[1]}", 400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"replicas\":[{\"generation\":1}]}", 400,
     "EINVAL"},
    {"POST", "/shardz/v1/assign",
     "{" A ",\"revision\":9,\"replicas\":[{\"partition\":\"a b\",\"generation\":1}]}", 400,
     "EINVAL"},
    {"POST", "/shardz/v1/assign",
     "{" A ",\"revision\":9,\"replicas\":[{\"partition\":\"\",\"generation\":1}]}", 400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"replicas\":[{\"partition\":\"p2\"}]}",
     400, "EINVAL"},
    {"POST", "/shardz/v1/assign",
     "{" A ",\"revision\":9,\"replicas\":[{\"partition\":\"p2\",\"generation\":\"1\"}]}", 400,
     "EINVAL"},
    {"POST", "/shardz/v1/assign",
     "{" A ",\"revision\":9,\"replicas\":[{\"partition\":\"p2\",\"generation\":1,"
     "\"role\":\"pri mary\"}]}",
     400, "EINVAL"},
    {"POST", "/shardz/v1/assign",
     "{" A ",\"revision\":9,\"replicas\":[{\"partition\":\"p2\",\"generation\":1,"
     "\"slot\":999}]}",
     400, "EINVAL"},
    {"POST", "/shardz/v1/assign",
     "{" A ",\"revision\":9,\"replicas\":[{\"partition\":\"p2\",\"generation\":1,"
     "\"range\":{\"lo\":5}}]}",
     400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"lease_ms\":0,\"replicas\":[]}", 400,
     "EINVAL"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"released\":\"yes\",\"replicas\":[]}",
     400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"replicas\":[" R1 "," R1 "]}", 400,
     "EPROTO"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"released\":true,\"replicas\":[" R1 "]}",
     400, "EPROTO"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"revision\":10,\"replicas\":[]}", 400,
     "EINVAL"},
    /* deltas (docs/PROTOCOL.md 4.3): base_revision an integer below revision, removed a list
     * of ids, neither listed twice nor listed and removed, no release, no removed alone */
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"base_revision\":\"5\",\"replicas\":[]}",
     400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"base_revision\":5.0,\"replicas\":[]}",
     400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"base_revision\":null,\"replicas\":[]}",
     400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"base_revision\":-1,\"replicas\":[]}",
     400, "EINVAL"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"base_revision\":9,\"replicas\":[]}", 400,
     "EINVAL"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"base_revision\":10,\"replicas\":[]}",
     400, "EINVAL"},
    {"POST", "/shardz/v1/assign",
     "{" A ",\"revision\":9,\"base_revision\":5,\"replicas\":[],\"removed\":\"p1\"}", 400,
     "EINVAL"},
    {"POST", "/shardz/v1/assign",
     "{" A ",\"revision\":9,\"base_revision\":5,\"replicas\":[],\"removed\":{}}", 400, "EINVAL"},
    {"POST", "/shardz/v1/assign",
     "{" A ",\"revision\":9,\"base_revision\":5,\"replicas\":[],\"removed\":[1]}", 400, "EINVAL"},
    {"POST", "/shardz/v1/assign",
     "{" A ",\"revision\":9,\"base_revision\":5,\"replicas\":[],\"removed\":[\"p1\",null]}", 400,
     "EINVAL"},
    {"POST", "/shardz/v1/assign",
     "{" A ",\"revision\":9,\"base_revision\":5,\"replicas\":[],\"removed\":[\"a b\"]}", 400,
     "EINVAL"},
    {"POST", "/shardz/v1/assign",
     "{" A ",\"revision\":9,\"base_revision\":5,\"replicas\":[],\"removed\":[\"p1\",\"p1\"]}", 400,
     "EPROTO"},
    {"POST", "/shardz/v1/assign",
     "{" A ",\"revision\":9,\"base_revision\":5,\"replicas\":[" R1 "],\"removed\":[\"p2\"]}", 400,
     "EPROTO"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"replicas\":[],\"removed\":[\"p1\"]}",
     400, "EPROTO"},
    {"POST", "/shardz/v1/assign",
     "{" A ",\"revision\":9,\"base_revision\":5,\"released\":true,\"replicas\":[]}", 400, "EPROTO"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"base_revision\":5,\"released\":true}",
     400, "EPROTO"},
    {"POST", "/shardz/v1/assign", "{" A ",\"revision\":9,\"base_revision\":5,\"removed\":[]}", 400,
     "EINVAL"},
    {"POST", "/shardz/v1/ping", "{" A "}", 400, "EINVAL"},
    {"POST", "/shardz/v1/ping", "{\"namespace\":\"kv\",\"node\":\"w9\",\"revision\":1}", 400,
     "EPROTO"},
    {"POST", "/shardz/v1/ping", "{" A ",\"revision\":1,\"lease_ms\":-5}", 400, "EINVAL"},
    {"POST", "/shardz/v1/ping", "{\"namespace\"", 400, "EINVAL"},
    {"GET", "/shardz/v1/ping", NULL, 400, "EPROTO"},
    {"PUT", "/shardz/v1/assign", "{}", 400, "EPROTO"},
    {"POST", "/shardz/v1/nope", "{}", 404, "ENOENT"},
    {"POST", "/", "{}", 404, "ENOENT"},
};

static void check_error_body(const char *text, const char *code)
{
    json_t *j = json_loads(text, 0, NULL);

    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "code")), code);
    assert_non_null(json_string_value(json_object_get(j, "message")));
    json_decref(j);
}

static void test_bad_input(void **state)
{
    fake_opts fo = {.ns = "kv"};
    env e;
    json_t *r;
    char *text;
    char s[128];
    shardz_worker_status st;
    size_t big = SHARDZ_WORKER_MAX_BODY + 10;
    char *body = malloc(big);

    (void)state;
    env_start(&e, &fo, NULL);
    assert_int_equal(assign(&e, 5, P1, &r), 200);
    json_decref(r);
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0"}, 1);

    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        long st_code = tc_request(e.addr, c->method, c->path, NULL, c->body,
                                  c->body != NULL ? strlen(c->body) : 0, &text);
        if (st_code != c->status) {
            fprintf(stderr, "case %zu (%s): %ld %s\n", i, c->body, st_code, text);
        }
        assert_int_equal(st_code, c->status);
        check_error_body(text, c->code);
        free(text);
    }
    /* Over 1 MiB: 413 ETOOBIG. */
    memset(body, ' ', big);
    assert_int_equal(tc_request(e.addr, "POST", "/shardz/v1/assign", NULL, body, big, &text), 413);
    check_error_body(text, "ETOOBIG");
    free(text);
    free(body);

    /* Nothing changed: no hook, same revision, same set; revision 6 is not stale. */
    assert_int_equal(rec_count(), 0);
    shardz_worker_status_get(e.w, &st);
    assert_int_equal(st.applied_revision, 5);
    assert_int_equal(st.serving, 1);
    assert_int_equal(st.deltas, 0);
    assert_int_equal(st.deltas_refused, 0);
    assert_int_equal(ping(&e, 5, &r), 200);
    assert_int_equal(jint(r, "applied_revision"), 5);
    json_decref(r);
    assert_int_equal(assign(&e, 6, P1 "," P8, &r), 200);
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "p1:4 p8:1");
    json_decref(r);
    /* A well-formed delta on the applied revision does apply (the refused ones above were
     * refused for their fields, not their base). */
    assert_int_equal(post(&e, "/shardz/v1/assign",
                          "{" A ",\"revision\":7,\"base_revision\":6,\"replicas\":[],"
                          "\"removed\":[\"p8\"]}",
                          &r),
                     200);
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "");
    json_decref(r);
    shardz_worker_status_get(e.w, &st);
    assert_int_equal(st.deltas, 1);
    assert_int_equal(st.serving, 1);
    env_stop(&e);
}

static void test_secret(void **state)
{
    fake_opts fo = {.ns = "kv", .secret = "s3cr3t"};
    shardz_worker_config c = base_config(NULL);
    env e;
    char *text;
    const char *body = "{" A ",\"revision\":1}";

    (void)state;
    c.secret = "s3cr3t";
    env_start(&e, &fo, &c); /* registration carried the bearer */
    fake_lock(e.f);
    assert_int_equal(fake_rec(e.f)->unauthorized, 0);
    fake_unlock(e.f);
    assert_int_equal(tc_request(e.addr, "POST", "/shardz/v1/ping", NULL, body, strlen(body), &text),
                     401);
    check_error_body(text, "EPROTO");
    free(text);
    assert_int_equal(
        tc_request(e.addr, "POST", "/shardz/v1/ping", "Bearer s3cr3", body, strlen(body), &text),
        401);
    free(text);
    assert_int_equal(
        tc_request(e.addr, "POST", "/shardz/v1/ping", "Bearer s3cr3tX", body, strlen(body), &text),
        401);
    free(text);
    assert_int_equal(
        tc_request(e.addr, "POST", "/shardz/v1/ping", "Bearer s3cr3t", body, strlen(body), &text),
        200);
    free(text);
    env_stop(&e);
}

static void test_handle_mode(void **state)
{
    fake_opts fo = {.ns = "kv"};
    shardz_worker_config c = base_config(NULL);
    env e;
    char *reply;
    size_t len;
    int status;
    json_t *j;
    const char *asg = "{" A ",\"revision\":3,\"replicas\":[" P1 "]}";
    const char *png = "{" A ",\"revision\":3}";

    (void)state;
    c.listen = NULL;
    c.advertise = "127.0.0.1:9";
    env_start(&e, &fo, &c);
    assert_string_equal(e.addr, "127.0.0.1:9");
    fake_lock(e.f);
    j = json_loads(fake_rec(e.f)->last_register, 0, NULL);
    fake_unlock(e.f);
    assert_string_equal(json_string_value(json_object_get(j, "address")), "127.0.0.1:9");
    json_decref(j);

    assert_int_equal(shardz_worker_handle(e.w, "POST", "/shardz/v1/assign", NULL, asg, strlen(asg),
                                          &reply, &len, &status),
                     0);
    assert_int_equal(status, 200);
    assert_int_equal(strlen(reply), len);
    j = json_loads(reply, 0, NULL);
    assert_int_equal(jint(j, "applied_revision"), 3);
    json_decref(j);
    free(reply);
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0"}, 1);

    assert_int_equal(shardz_worker_handle(e.w, "POST", "/shardz/v1/ping?x=1", NULL, png,
                                          strlen(png), &reply, &len, &status),
                     0);
    assert_int_equal(status, 200);
    free(reply);
    assert_int_equal(
        shardz_worker_handle(e.w, "POST", "/shardz/v1/ping", NULL, "{", 1, &reply, &len, &status),
        0);
    assert_int_equal(status, 400);
    check_error_body(reply, "EINVAL");
    free(reply);
    assert_int_equal(
        shardz_worker_handle(e.w, "POST", "/kv/x", NULL, NULL, 0, &reply, &len, &status), 0);
    assert_int_equal(status, 404);
    free(reply);
    assert_int_equal(shardz_worker_handle(e.w, "POST", NULL, NULL, NULL, 0, &reply, &len, &status),
                     SHARDZ_EINVAL);
    env_stop(&e);
}

typedef struct {
    shardz_worker *w;
    long long rev;
    int status;
} handle_arg;

static void *handle_assign(void *arg)
{
    handle_arg *h = arg;
    char body[256];
    char *reply;
    size_t len;

    snprintf(body, sizeof body, "{" A ",\"revision\":%lld,\"replicas\":[" P1 "]}", h->rev);
    assert_int_equal(shardz_worker_handle(h->w, "POST", "/shardz/v1/assign", NULL, body,
                                          strlen(body), &reply, &len, &h->status),
                     0);
    free(reply);
    return NULL;
}

static void *stopper(void *arg)
{
    shardz_worker_stop(arg);
    return NULL;
}

static bool stopping(void *arg)
{
    shardz_worker_status st;

    shardz_worker_status_get(arg, &st);
    return st.stopping != 0;
}

/* Stop while one assignment's hook runs and another waits: the running one finishes (200),
 * the queued one is answered 409 without running. */
static void test_stop_answers_queued(void **state)
{
    fake_opts fo = {.ns = "kv"};
    shardz_worker_config c = base_config(NULL);
    env e;
    pthread_t t1;
    pthread_t t2;
    pthread_t ts;
    handle_arg a1;
    handle_arg a2;
    char *reply;
    size_t len;
    int status;

    (void)state;
    c.listen = NULL;
    c.advertise = "127.0.0.1:9";
    env_start(&e, &fo, &c);
    rec_gate_close();
    a1 = (handle_arg){e.w, 3, 0};
    a2 = (handle_arg){e.w, 4, 0};
    pthread_create(&t1, NULL, handle_assign, &a1);
    assert_true(rec_wait_entered(1, 5000)); /* revision 3's hook runs, held at the gate */
    pthread_create(&t2, NULL, handle_assign, &a2);
    assert_true(wait_queued(e.w, 1, 5000)); /* revision 4 waits behind it */
    pthread_create(&ts, NULL, stopper, e.w);
    assert_true(wait_until(stopping, e.w, 5000)); /* no queued job will be taken any more */
    rec_gate_open();
    pthread_join(ts, NULL);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(a1.status, 200);
    assert_int_equal(a2.status, 409);
    assert_int_equal(
        shardz_worker_handle(e.w, "POST", "/shardz/v1/ping", NULL, "{}", 2, &reply, &len, &status),
        0);
    assert_int_equal(status, 400); /* parsed first: still no state touched */
    free(reply);
    env_stop(&e);
}

static void test_config(void **state)
{
    shardz_worker_config c = base_config(NULL);
    shardz_worker_config b;
    shardz_worker *w = NULL;
    static const shardz_worker_capacity dup[] = {{"cpu", 1}, {"cpu", 2}};
    static const shardz_worker_capacity neg[] = {{"cpu", -1}};

    (void)state;
    assert_int_equal(shardz_worker_create(NULL, &w), SHARDZ_EINVAL);
    b = c;
    b.ns = NULL;
    assert_int_equal(shardz_worker_create(&b, &w), SHARDZ_EINVAL);
    b = c;
    b.ns = "Upper";
    assert_int_equal(shardz_worker_create(&b, &w), SHARDZ_EINVAL);
    b = c;
    b.node_id = "w 1";
    assert_int_equal(shardz_worker_create(&b, &w), SHARDZ_EINVAL);
    b = c;
    b.coordinator = "nohost";
    assert_int_equal(shardz_worker_create(&b, &w), SHARDZ_EINVAL);
    b = c;
    b.coordinator = "h:99999";
    assert_int_equal(shardz_worker_create(&b, &w), SHARDZ_EINVAL);
    b = c;
    b.listen = "0.0.0.0:0";
    assert_int_equal(shardz_worker_create(&b, &w), SHARDZ_EINVAL);
    b = c;
    b.listen = NULL;
    assert_int_equal(shardz_worker_create(&b, &w), SHARDZ_EINVAL);
    b = c;
    b.serve = NULL;
    assert_int_equal(shardz_worker_create(&b, &w), SHARDZ_EINVAL);
    b = c;
    b.capacity = dup;
    b.ncapacity = 2;
    assert_int_equal(shardz_worker_create(&b, &w), SHARDZ_EINVAL);
    b = c;
    b.capacity = neg;
    b.ncapacity = 1;
    assert_int_equal(shardz_worker_create(&b, &w), SHARDZ_EINVAL);
    b = c;
    b.secret = "a\nb";
    assert_int_equal(shardz_worker_create(&b, &w), SHARDZ_EINVAL);
    assert_null(w);
    b = c;
    b.listen = "[::1]:0";
    assert_int_equal(shardz_worker_create(&b, &w), 0);
    shardz_worker_destroy(w);
    /* Start, start again, stop twice, destroy. */
    assert_int_equal(shardz_worker_create(&c, &w), 0);
    assert_int_equal(shardz_worker_start(w), 0);
    assert_int_equal(shardz_worker_start(w), SHARDZ_EBUSY);
    shardz_worker_stop(w);
    shardz_worker_stop(w);
    assert_int_equal(shardz_worker_leave(w, 0), SHARDZ_EINVAL);
    shardz_worker_destroy(w);
    shardz_worker_destroy(NULL);
    /* A port in use fails to start. */
    assert_int_equal(shardz_worker_create(&c, &w), 0);
    assert_int_equal(shardz_worker_start(w), 0);
    {
        shardz_worker *w2 = NULL;
        char addr[64];
        shardz_worker_status st;
        shardz_worker_status_get(w, &st);
        snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)st.port);
        b = c;
        b.listen = addr;
        assert_int_equal(shardz_worker_create(&b, &w2), 0);
        assert_int_equal(shardz_worker_start(w2), SHARDZ_EIO);
        shardz_worker_destroy(w2);
    }
    shardz_worker_destroy(w);
}

/* Log lines captured by test_unprotected_warns. */
static char warned[4][512];
static int nwarned;

static void capture_log(void *user, int level, const char *msg)
{
    (void)user;
    if (level == SHARDZ_LOG_WARN && nwarned < 4) {
        snprintf(warned[nwarned++], sizeof warned[0], "%s", msg);
    }
}

/* Whether creating a worker with cfg warns about a listener open without a secret. */
static bool warns_unprotected(shardz_worker_config cfg)
{
    shardz_worker *w = NULL;

    nwarned = 0;
    cfg.log = capture_log;
    assert_int_equal(shardz_worker_create(&cfg, &w), 0);
    shardz_worker_destroy(w);
    for (int i = 0; i < nwarned; i++) {
        if (strstr(warned[i], "without a secret") != NULL) {
            return true;
        }
    }
    return false;
}

/* Protected mode, the library's half (issue 16): reachable beyond loopback without a secret
 * warns loudly; loopback, or a secret, does not. */
static void test_unprotected_warns(void **state)
{
    (void)state;
    fake_opts fo = {0};
    fake_coord *f = fake_start(&fo);
    assert_non_null(f);
    shardz_worker_config c = base_config(f);

    assert_false(warns_unprotected(c)); /* 127.0.0.1:0 */
    c.listen = "0.0.0.0:0";
    c.advertise = "192.0.2.7:9000";
    assert_true(warns_unprotected(c));
    assert_non_null(strstr(warned[0], "0.0.0.0:0")); /* the listener, first */
    c.listen = NULL; /* the application's own server, at a public address */
    assert_true(warns_unprotected(c));
    c.listen = "[::1]:0";
    c.advertise = "[::1]:9000";
    assert_false(warns_unprotected(c));
    c.listen = "0.0.0.0:0";
    c.advertise = "192.0.2.7:9000";
    c.secret = "s3cret";
    assert_false(warns_unprotected(c));
    fake_stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),   cmocka_unit_test(test_secret),
        cmocka_unit_test(test_handle_mode), cmocka_unit_test(test_stop_answers_queued),
        cmocka_unit_test(test_config),      cmocka_unit_test(test_unprotected_warns),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
