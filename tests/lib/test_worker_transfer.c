/* libshardz's state transfer (docs/PROTOCOL.md 4.3): a serve hook of an adding replica sees
 * the node it comes from, may say "not ready" (shardz_worker_not_ready), and the worker then
 * answers "ready": false for it until shardz_worker_ready, after which its ping replies list
 * it in "ready" until an assignment shows it serving. With a coordinator that did not agree to
 * "transfer", nothing of it reaches the wire. Against the fake coordinator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "shardz/error.h"
#include "worker_env.h"

static shardz_worker *the_worker;
static char seen_from[128];
static int not_ready_rc;

/* Serve: remembers where the replica comes from, and says not ready when it comes from
 * somewhere (the application copies its data meanwhile). */
static int serve_copying(const shardz_worker_replica *r, char *err, size_t errlen, void *user)
{
    (void)err;
    (void)errlen;
    (void)user;
    snprintf(seen_from, sizeof seen_from, "%s@%s", r->from_node ? r->from_node : "-",
             r->from_address ? r->from_address : "-");
    if (r->from_node != NULL) {
        not_ready_rc = shardz_worker_not_ready(the_worker, r->partition);
    }
    return 0;
}

#define P5_FROM                                                                                    \
    "{\"partition\":\"p5\",\"slot\":0,\"role\":\"none\",\"generation\":7,\"state\":\"adding\","    \
    "\"from\":{\"node\":\"w0\",\"address\":\"127.0.0.1:9100\"}}"
#define P5_SERVING                                                                                 \
    "{\"partition\":\"p5\",\"slot\":0,\"role\":\"none\",\"generation\":7,\"state\":\"serving\"}"

/* The "ready" field of p5 in a reply's serving list: 1 absent (ready), 0 false, -1 not listed. */
static int ready_of(const json_t *reply)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(reply, "serving"), i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "partition")), "p5") == 0) {
            return json_is_false(json_object_get(e, "ready")) ? 0 : 1;
        }
    }
    return -1;
}

static size_t ping_ready(env *e, long long rev)
{
    json_t *r = NULL;
    assert_int_equal(ping(e, rev, &r), 200);
    json_t *ready = json_object_get(r, "ready");
    size_t n = json_array_size(ready);
    if (n > 0) {
        assert_string_equal(
            json_string_value(json_object_get(json_array_get(ready, 0), "partition")), "p5");
        assert_int_equal(
            json_integer_value(json_object_get(json_array_get(ready, 0), "generation")), 7);
    }
    json_decref(r);
    return n;
}

static void test_not_ready_then_ready(void **state)
{
    fake_opts fo = {.ns = "kv", .features = "[\"transfer\"]"};
    shardz_worker_config c = base_config(NULL);
    env e;
    json_t *r = NULL;

    (void)state;
    c.serve = serve_copying;
    env_start(&e, &fo, &c);
    the_worker = e.w;
    assert_int_equal(assign(&e, 10, P5_FROM, &r), 200);
    assert_int_equal(not_ready_rc, 0);
    assert_string_equal(seen_from, "w0@127.0.0.1:9100");
    assert_int_equal(ready_of(r), 0); /* served, not ready */
    json_decref(r);
    assert_int_equal(ping_ready(&e, 10), 0);
    /* the wrong generation, an unknown partition: refused, nothing changes */
    assert_int_equal(shardz_worker_ready(e.w, "p5", 6), SHARDZ_ENOENT);
    assert_int_equal(shardz_worker_ready(e.w, "p6", 7), SHARDZ_ENOENT);
    assert_int_equal(shardz_worker_ready(e.w, "p 5", 7), SHARDZ_EINVAL);
    assert_int_equal(ping_ready(&e, 10), 0);
    assert_int_equal(shardz_worker_ready(e.w, "p5", 7), 0);
    /* reported in every ping until an assignment shows it serving */
    assert_int_equal(ping_ready(&e, 10), 1);
    assert_int_equal(ping_ready(&e, 10), 1);
    assert_int_equal(assign(&e, 11, P5_SERVING, &r), 200);
    assert_int_equal(ready_of(r), 1);
    json_decref(r);
    assert_int_equal(ping_ready(&e, 11), 0);
    env_stop(&e);
}

/* A coordinator that did not agree to "transfer": the hook may say not ready, but the wire
 * shows a replica ready at once (what the coordinator expects), and pings list nothing. */
static void test_not_agreed(void **state)
{
    fake_opts fo = {.ns = "kv", .features = "[\"delta\"]"};
    shardz_worker_config c = base_config(NULL);
    env e;
    json_t *r = NULL;

    (void)state;
    c.serve = serve_copying;
    env_start(&e, &fo, &c);
    the_worker = e.w;
    assert_int_equal(assign(&e, 10, P5_FROM, &r), 200);
    assert_int_equal(not_ready_rc, 0);
    assert_int_equal(ready_of(r), 1);
    json_decref(r);
    assert_int_equal(shardz_worker_ready(e.w, "p5", 7), 0);
    assert_int_equal(ping_ready(&e, 10), 0);
    env_stop(&e);
}

/* A malformed "from" is refused (400) and changes nothing; a hook's not_ready for another
 * partition than one served is refused. */
static void test_bad_from(void **state)
{
    fake_opts fo = {.ns = "kv", .features = "[\"transfer\"]"};
    env e;
    json_t *r = NULL;

    (void)state;
    env_start(&e, &fo, NULL);
    assert_int_equal(assign(&e, 10,
                            "{\"partition\":\"p5\",\"generation\":7,\"state\":\"adding\","
                            "\"from\":{\"node\":\"w 0\",\"address\":\"x:1\"}}",
                            &r),
                     400);
    json_decref(r);
    assert_int_equal(rec_count(), 0);
    assert_int_equal(shardz_worker_not_ready(e.w, "p5"), SHARDZ_ENOENT);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_ready_then_ready),
        cmocka_unit_test(test_not_agreed),
        cmocka_unit_test(test_bad_from),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
