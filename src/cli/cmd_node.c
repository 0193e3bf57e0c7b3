/* shardzctl node list|show|drain|undrain|stoppable: the nodes of a namespace (PROTOCOL.md
 * section 7), the operator's drain (of a node or a zone, with a reason) and undrain (section 8),
 * and whether nodes may stop now (section 8.1). Ids are checked before anything is sent. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* The node id argument, checked. */
static int node_arg(cli *c, const char **out)
{
    if (!shardz_client_valid_id(c->args[0])) {
        return cli_usage_error(c, "'%s' is not a valid node id (1-255 bytes of [A-Za-z0-9._:-])",
                               c->args[0]);
    }
    *out = c->args[0];
    return 0;
}

int cmd_node_list(cli *c)
{
    static const char *const head[] = {"ID",       "STATE",    "ADDRESS", "ZONE",
                                       "REPLICAS", "CAPACITY", "LEAVING"};
    static const char *const keys[] = {"id",       "state",    "address", "zone",
                                       "replicas", "capacity", "leaving"};
    enum { NCOL = sizeof head / sizeof head[0] };
    char path[128];
    char buf[NCOL][300];
    const char *cells[NCOL];
    json_t *r = NULL;
    const json_t *n;
    cli_table t;
    size_t i;
    int rc;

    cli_ns_path(c, path, sizeof path, "/nodes");
    rc = cli_call_show(c, "GET", path, NULL, &r);
    if (rc != 0 || r == NULL) {
        return rc;
    }
    if (json_array_size(json_object_get(r, "nodes")) == 0) {
        printf("no nodes in namespace %s\n", c->ns);
        json_decref(r);
        return 0;
    }
    cli_table_init(&t, NCOL, head);
    json_array_foreach(json_object_get(r, "nodes"), i, n)
    {
        for (size_t k = 0; k < NCOL; k++) {
            cells[k] = cli_field(n, keys[k], buf[k], sizeof buf[k]);
        }
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    json_decref(r);
    return 0;
}

int cmd_node_show(cli *c)
{
    static const char *const skip[] = {"partitions", NULL};
    static const char *const head[] = {"PARTITION", "SLOT", "ROLE", "STATE", "GENERATION"};
    static const char *const keys[] = {"partition", "slot", "role", "state", "generation"};
    enum { NCOL = sizeof head / sizeof head[0] };
    const char *id = NULL;
    char path[512];
    char buf[NCOL][300];
    const char *cells[NCOL];
    json_t *r = NULL;
    const json_t *parts;
    const json_t *p;
    cli_table t;
    size_t i;
    int rc;

    rc = node_arg(c, &id);
    if (rc != 0) {
        return rc;
    }
    cli_ns_path(c, path, sizeof path, "/nodes/%s", id);
    rc = cli_call_show(c, "GET", path, NULL, &r);
    if (rc != 0 || r == NULL) {
        return rc;
    }
    cli_print_fields(r, skip);
    parts = json_object_get(r, "partitions");
    printf("\n");
    if (json_array_size(parts) == 0) {
        printf("no replicas on this node\n");
    } else {
        cli_table_init(&t, NCOL, head);
        json_array_foreach(parts, i, p)
        {
            for (size_t k = 0; k < NCOL; k++) {
                cells[k] = cli_field(p, keys[k], buf[k], sizeof buf[k]);
            }
            cli_table_add(&t, cells);
        }
        cli_table_print(&t, stdout);
        cli_table_free(&t);
    }
    json_decref(r);
    return 0;
}

/* POST .../nodes/{id}/{action} (with body, borrowed, may be NULL); prints the node's new
 * state. */
static int node_action(cli *c, const char *action, const json_t *body)
{
    const char *id = NULL;
    char path[512];
    char st[64], reps[32];
    json_t *r = NULL;
    int rc;

    rc = node_arg(c, &id);
    if (rc != 0) {
        return rc;
    }
    cli_ns_path(c, path, sizeof path, "/nodes/%s/%s", id, action);
    rc = cli_call_show(c, "POST", path, body, &r);
    if (rc == 0 && r != NULL) {
        printf("node %s: %s (%s replicas)\n", id, cli_field(r, "state", st, sizeof st),
               cli_field(r, "replicas", reps, sizeof reps));
        if (strcmp(action, "drain") == 0) {
            printf("its replicas move away: follow with 'shardzctl -n %s task list'\n", c->ns);
        }
    }
    json_decref(r);
    return rc;
}

/* shardzctl node drain --zone Z: POST .../drain {"zone", "reason"}. */
static int zone_drain(cli *c, json_t *body)
{
    char path[512], val[300];
    json_t *r = NULL;
    size_t i;
    const json_t *v;
    int rc;

    json_object_set_new(body, "zone", json_string(c->val[F_ZONE]));
    cli_ns_path(c, path, sizeof path, "/drain");
    rc = cli_call_show(c, "POST", path, body, &r);
    if (rc == 0 && r != NULL) {
        printf("zone %s: draining", c->val[F_ZONE]);
        json_array_foreach(json_object_get(r, "drained"), i, v)
        {
            printf(" %s", cli_fmt(v, val, sizeof val));
        }
        printf("\ntheir replicas move away: follow with 'shardzctl -n %s task list'\n", c->ns);
    }
    json_decref(r);
    return rc;
}

int cmd_node_drain(cli *c)
{
    json_t *body = json_object();
    int rc = 0;

    if (c->val[F_REASON] != NULL) {
        if (strlen(c->val[F_REASON]) > 200) {
            rc = cli_usage_error(c, "--reason is at most 200 bytes");
        }
        json_object_set_new(body, "reason", json_string(c->val[F_REASON]));
    }
    if (rc == 0 && (c->nargs == 1) == (c->val[F_ZONE] != NULL)) {
        rc = cli_usage_error(c, "give a node ID or --zone ZONE (one of them)");
    }
    if (rc == 0 && c->val[F_ZONE] != NULL && !shardz_client_valid_id(c->val[F_ZONE])) {
        rc = cli_usage_error(c, "'%s' is not a valid zone name", c->val[F_ZONE]);
    }
    if (rc == 0) {
        rc = c->val[F_ZONE] != NULL
                 ? zone_drain(c, body)
                 : node_action(c, "drain", json_object_size(body) > 0 ? body : NULL);
    }
    json_decref(body);
    return rc;
}

int cmd_node_undrain(cli *c)
{
    return node_action(c, "undrain", NULL);
}

/* The reasons a node may not stop, as one line ("floor ns/p (serving 2, left 0, min 1)"). */
static void why_not(const json_t *reasons, char *out, size_t len)
{
    char a[300], b[300], x[32], y[32], z[32];
    size_t i, used = 0;
    const json_t *r;

    out[0] = '\0';
    json_array_foreach(reasons, i, r)
    {
        const char *rule = json_string_value(json_object_get(r, "rule"));
        int n;
        if (rule != NULL && strcmp(rule, "zone") == 0) {
            n = snprintf(out + used, len - used, "%szone %s (stopping zone %s)", i ? "; " : "",
                         cli_field(r, "zone", a, sizeof a),
                         cli_field(r, "stopping_zone", b, sizeof b));
        } else {
            n = snprintf(out + used, len - used, "%sfloor %s/%s (serving %s, left %s, min %s)",
                         i ? "; " : "", cli_field(r, "namespace", a, sizeof a),
                         cli_field(r, "partition", b, sizeof b),
                         cli_field(r, "serving", x, sizeof x), cli_field(r, "left", y, sizeof y),
                         cli_field(r, "min_available", z, sizeof z));
        }
        if (n < 0 || (size_t)n >= len - used) {
            return;
        }
        used += (size_t)n;
    }
}

int cmd_node_stoppable(cli *c)
{
    static const char *const head[] = {"ID", "STOPPABLE", "REASONS"};
    json_t *body = json_pack("{s:[]}", "nodes");
    json_t *r = NULL;
    const json_t *n;
    char id[300], why[2048];
    const char *cells[3];
    cli_table t;
    size_t i;
    int rc = 0, may = 0, all = 0;

    for (int k = 0; k < c->nargs && rc == 0; k++) {
        if (!shardz_client_valid_id(c->args[k])) {
            rc = cli_usage_error(c, "'%s' is not a valid node id", c->args[k]);
        }
        json_array_append_new(json_object_get(body, "nodes"), json_string(c->args[k]));
    }
    char *raw = NULL;
    if (rc == 0) {
        rc = cli_call(c, "POST", "/v1/stoppable", body, &r, c->json ? &raw : NULL);
    }
    json_decref(body);
    if (rc == 0 && raw != NULL) {
        cli_print_text(raw); /* --json: the reply as it came; the exit code still tells */
    }
    free(raw);
    if (rc != 0 || r == NULL) {
        json_decref(r);
        return rc;
    }
    cli_table_init(&t, 3, head);
    json_array_foreach(json_object_get(r, "nodes"), i, n)
    {
        bool ok = json_is_true(json_object_get(n, "stoppable"));
        why_not(json_object_get(n, "reasons"), why, sizeof why);
        cells[0] = cli_field(n, "id", id, sizeof id);
        cells[1] = ok ? (json_is_true(json_object_get(n, "gone")) ? "yes (gone)" : "yes") : "no";
        cells[2] = ok ? "" : why;
        cli_table_add(&t, cells);
        may += ok;
        all++;
    }
    if (!c->json) {
        cli_table_print(&t, stdout);
    }
    cli_table_free(&t);
    json_decref(r);
    return may == all ? CLI_OK : CLI_ENOTSTOPPABLE;
}
