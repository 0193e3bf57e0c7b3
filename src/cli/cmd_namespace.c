/* shardzctl namespace create|list|show|set|delete (docs/PROTOCOL.md section 3). create checks
 * every flag against the protocol's ranges and builds the config before anything is sent; the
 * cross-field rules (dead_after_ms > ping_interval_ms, ...) are left to the coordinator, as
 * set's fields are (it sends them as a PATCH, section 3.1). */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

#define DIMS_MAX 8
#define NAME_MAX_LEN 63
#define PARTS_COUNT_MAX 16777216LL
#define MS_MAX (1LL << 40)

/* The namespace a command names: its argument, else -n. */
static int target_ns(cli *c, const char **out)
{
    const char *name = c->nargs > 0 ? c->args[0] : c->ns;

    if (name == NULL) {
        return cli_usage_error(c, "missing argument NAME (or -n NS)");
    }
    if (!shardz_client_valid_ns(name)) {
        return cli_usage_error(c,
                               "'%s' is not a valid namespace name (1-63 bytes of "
                               "[a-z0-9._-], starting with a letter or digit)",
                               name);
    }
    *out = name;
    return 0;
}

static bool one_of(const char *s, const char *a, const char *b)
{
    return strcmp(s, a) == 0 || strcmp(s, b) == 0;
}

/* Splits a comma list into a JSON array of ids (each checked with ok), at most max items. */
static int id_list(cli *c, int f, size_t max, size_t maxlen, json_t **out)
{
    const char *s = c->val[f];
    json_t *arr = json_array();
    char item[256];
    int rc = 0;

    while (arr != NULL) {
        size_t n = strcspn(s, ",");
        if (n == 0 || n >= sizeof item || n > maxlen) {
            rc = cli_usage_error(c, "--%s: '%s' has an empty or too long item (at most %zu bytes)",
                                 cli_flags[f].name, c->val[f], maxlen);
            goto fail;
        }
        memcpy(item, s, n);
        item[n] = '\0';
        if (!shardz_client_valid_id(item)) {
            rc = cli_usage_error(c, "--%s: '%s' is not a valid id (bytes of [A-Za-z0-9._:-])",
                                 cli_flags[f].name, item);
            goto fail;
        }
        if (json_array_size(arr) == max) {
            rc = cli_usage_error(c, "--%s: at most %zu items", cli_flags[f].name, max);
            goto fail;
        }
        json_array_append_new(arr, json_string(item));
        if (s[n] == '\0') {
            break;
        }
        s += n + 1;
    }
    *out = arr;
    return 0;
fail:
    json_decref(arr);
    return rc;
}

/* --partitions: a count when it is all digits, else a list of ids. */
static int parts_value(cli *c, json_t **out)
{
    const char *s = c->val[F_PARTS];
    long long n = 0;
    int rc;

    if (s[0] != '\0' && strspn(s, "0123456789") == strlen(s)) {
        rc = cli_flag_int(c, F_PARTS, 0, PARTS_COUNT_MAX, &n);
        if (rc != 0) {
            return rc;
        }
        *out = json_integer(n);
        return 0;
    }
    return id_list(c, F_PARTS, (size_t)PARTS_COUNT_MAX, 255, out);
}

/* Adds an integer flag to body when given. */
static int add_int(cli *c, json_t *body, int f, const char *key, long long lo, long long hi)
{
    long long v = 0;
    int rc;

    if (c->val[f] == NULL) {
        return 0;
    }
    rc = cli_flag_int(c, f, lo, hi, &v);
    if (rc == 0) {
        json_object_set_new(body, key, json_integer(v));
    }
    return rc;
}

/* The create body from the flags; a usage error on the first bad one. */
static int create_body(cli *c, const char *name, json_t **out)
{
    json_t *body = json_pack("{s:s}", "name", name);
    json_t *v = NULL;
    bool roles = false;
    long long slots = 0;
    int rc = 0;

    if (body == NULL) {
        return cli_error("ENOMEM", "out of memory");
    }
    if (c->val[F_SHARDER] != NULL) {
        if (!one_of(c->val[F_SHARDER], "replica", "hash") &&
            strcmp(c->val[F_SHARDER], "range") != 0) {
            rc = cli_usage_error(c, "--sharder: '%s' is not replica, hash or range",
                                 c->val[F_SHARDER]);
            goto fail;
        }
        json_object_set_new(body, "sharder", json_string(c->val[F_SHARDER]));
    }
    rc = add_int(c, body, F_REPLICAS, "replicas", 1, CLI_MAX_REPLICAS);
    if (rc != 0) {
        goto fail;
    }
    if (c->set[F_ROLES]) {
        rc = cli_flag_bool(c, F_ROLES, &roles);
        if (rc != 0) {
            goto fail;
        }
        json_object_set_new(body, "roles", json_boolean(roles));
    }
    if (c->val[F_CONSISTENCY] != NULL) {
        if (!one_of(c->val[F_CONSISTENCY], "available", "strict")) {
            rc = cli_usage_error(c, "--consistency: '%s' is not available or strict",
                                 c->val[F_CONSISTENCY]);
            goto fail;
        }
        json_object_set_new(body, "consistency", json_string(c->val[F_CONSISTENCY]));
    }
    rc = add_int(c, body, F_PING, "ping_interval_ms", 10, 60000);
    if (rc == 0) {
        rc = add_int(c, body, F_DEAD, "dead_after_ms", 11, MS_MAX);
    }
    if (rc == 0) {
        rc = add_int(c, body, F_LEASE, "lease_ms", 11, MS_MAX);
    }
    if (rc == 0) {
        rc = add_int(c, body, F_TRANSFER, "transfer_timeout_ms", 0, 3600000);
    }
    if (rc != 0) {
        goto fail;
    }
    if (c->val[F_DIMS] != NULL) {
        rc = id_list(c, F_DIMS, DIMS_MAX, NAME_MAX_LEN, &v);
        if (rc != 0) {
            goto fail;
        }
        json_object_set_new(body, "dimensions", v);
    }
    if (c->val[F_PARTS] != NULL) {
        rc = parts_value(c, &v);
        if (rc != 0) {
            goto fail;
        }
        json_object_set_new(body, "partitions", v);
    }
    if (c->val[F_SLOTS] != NULL) {
        rc = cli_flag_int(c, F_SLOTS, 64, 1048576, &slots);
        if (rc == 0 && (slots & (slots - 1)) != 0) {
            rc = cli_usage_error(c, "--slots: %lld is not a power of two", slots);
        }
        if (rc == 0 && (c->val[F_SHARDER] == NULL || strcmp(c->val[F_SHARDER], "hash") != 0)) {
            rc = cli_usage_error(c, "--slots applies to --sharder hash only");
        }
        if (rc != 0) {
            goto fail;
        }
        json_object_set_new(body, "slots", json_integer(slots));
    }
    *out = body;
    return 0;
fail:
    json_decref(body);
    return rc;
}

int cmd_ns_create(cli *c)
{
    const char *name = NULL;
    json_t *body = NULL;
    json_t *r = NULL;
    char a[64], b[64], k[64];
    int rc;

    rc = target_ns(c, &name);
    if (rc == 0) {
        rc = create_body(c, name, &body);
    }
    if (rc != 0) {
        return rc;
    }
    rc = cli_call_show(c, "POST", "/v1/namespaces", body, &r);
    if (rc == 0 && r != NULL) {
        printf("namespace %s created: %s sharder, %s partitions, revision %s\n", name,
               cli_field(r, "sharder", k, sizeof k), cli_field(r, "partitions", a, sizeof a),
               cli_field(r, "revision", b, sizeof b));
    }
    json_decref(body);
    json_decref(r);
    return rc;
}

/* "alive/total" from a summary's node counts (left nodes not counted). */
static void node_counts(const json_t *nodes, char *buf, size_t len)
{
    const char *k;
    const json_t *v;
    long long alive = 0;
    long long total = 0;

    json_object_foreach((json_t *)nodes, k, v)
    {
        if (strcmp(k, "left") == 0) {
            continue;
        }
        total += json_integer_value(v);
        if (strcmp(k, "alive") == 0) {
            alive = json_integer_value(v);
        }
    }
    snprintf(buf, len, "%lld/%lld", alive, total);
}

int cmd_ns_list(cli *c)
{
    static const char *const head[] = {"NAME",  "SHARDER", "REPLICAS", "CONSISTENCY", "PARTITIONS",
                                       "NODES", "MISSING", "MOVES",    "REVISION"};
    static const char *const keys[] = {"name", "sharder", "replicas", "consistency", "partitions",
                                       NULL,   "missing", "moves",    "revision"};
    enum { NCOL = sizeof head / sizeof head[0] };
    json_t *r = NULL;
    const json_t *ns;
    char buf[NCOL][128];
    const char *cells[NCOL];
    cli_table t;
    size_t i;
    int rc;

    rc = cli_call_show(c, "GET", "/v1/namespaces", NULL, &r);
    if (rc != 0 || r == NULL) {
        return rc;
    }
    if (json_array_size(json_object_get(r, "namespaces")) == 0) {
        printf("no namespaces\n");
        json_decref(r);
        return 0;
    }
    cli_table_init(&t, NCOL, head);
    json_array_foreach(json_object_get(r, "namespaces"), i, ns)
    {
        for (size_t k = 0; k < NCOL; k++) {
            if (keys[k] == NULL) {
                node_counts(json_object_get(ns, "nodes"), buf[k], sizeof buf[k]);
                cells[k] = buf[k];
            } else {
                cells[k] = cli_field(ns, keys[k], buf[k], sizeof buf[k]);
            }
        }
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    json_decref(r);
    return 0;
}

int cmd_ns_show(cli *c)
{
    const char *name = NULL;
    char path[128];
    json_t *r = NULL;
    int rc;

    rc = target_ns(c, &name);
    if (rc != 0) {
        return rc;
    }
    snprintf(path, sizeof path, "/v1/namespaces/%s", name);
    rc = cli_call_show(c, "GET", path, NULL, &r);
    if (rc == 0 && r != NULL) {
        cli_print_fields(r, NULL);
    }
    json_decref(r);
    return rc;
}

int cmd_ns_delete(cli *c)
{
    const char *name = NULL;
    char path[128];
    json_t *r = NULL;
    int rc;

    rc = target_ns(c, &name);
    if (rc != 0) {
        return rc;
    }
    snprintf(path, sizeof path, "/v1/namespaces/%s", name);
    rc = cli_call_show(c, "DELETE", path, NULL, &r);
    if (rc == 0 && r != NULL) {
        printf("namespace %s deleted\n", name);
    }
    json_decref(r);
    return rc;
}

/* One FIELD=VALUE of namespace set into patch: the VALUE as JSON, else as a string. */
static int set_field(cli *c, const char *arg, json_t *patch)
{
    const char *eq = strchr(arg, '=');
    char field[64];
    size_t n = eq != NULL ? (size_t)(eq - arg) : 0;

    if (n == 0 || n >= sizeof field || strspn(arg, "abcdefghijklmnopqrstuvwxyz_") != n) {
        return cli_usage_error(c, "'%s' is not FIELD=VALUE (a field name of [a-z_])", arg);
    }
    memcpy(field, arg, n);
    field[n] = '\0';
    if (json_object_get(patch, field) != NULL) {
        return cli_usage_error(c, "field '%s' is given twice", field);
    }
    json_t *v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
    if (v == NULL) {
        v = json_string(eq + 1); /* not JSON: a string (the coordinator checks its type) */
    }
    if (v == NULL) {
        return cli_usage_error(c, "field '%s': the value is not valid UTF-8", field);
    }
    json_object_set_new(patch, field, v);
    return 0;
}

int cmd_ns_set(cli *c)
{
    const char *name = NULL;
    int first = 0;
    bool dry = false;
    char path[160], buf[32];
    json_t *patch = json_object(), *r = NULL;
    int rc = 0;

    if (c->nargs > 0 && strchr(c->args[0], '=') == NULL) {
        first = 1; /* NAME given */
        rc = target_ns(c, &name);
    } else {
        int nargs = c->nargs;
        c->nargs = 0; /* no NAME: target_ns takes -n (or says it is missing) */
        rc = target_ns(c, &name);
        c->nargs = nargs;
    }
    if (rc != 0) {
        goto out;
    }
    if (first >= c->nargs) {
        rc = cli_usage_error(c, "give at least one FIELD=VALUE");
        goto out;
    }
    for (int i = first; i < c->nargs && rc == 0; i++) {
        rc = set_field(c, c->args[i], patch);
    }
    if (rc == 0) {
        rc = cli_flag_bool(c, F_DRY_RUN, &dry);
    }
    if (rc != 0) {
        goto out;
    }
    snprintf(path, sizeof path, "/v1/namespaces/%s%s", name, dry ? "?dry_run=true" : "");
    rc = cli_call_show(c, "PATCH", path, patch, &r);
    if (rc != 0 || r == NULL) {
        goto out;
    }
    const json_t *moves = json_object_get(r, "moves");
    if (dry) {
        printf("dry run: nothing changed. The config would be:\n");
        cli_print_fields(json_object_get(r, "config"), NULL);
    } else {
        static const char *const skip[] = {"moves", NULL};
        cli_print_fields(r, skip);
    }
    if (json_array_size(moves) > 0) {
        printf("\n");
        cli_print_moves(moves, false);
    }
    printf("\n%zu moves %s, at revision %s\n", json_array_size(moves),
           dry ? "it would make" : "started", cli_field(r, "revision", buf, sizeof buf));
out:
    json_decref(patch);
    json_decref(r);
    return rc;
}
