/* shardzctl node list|show|drain|undrain: the nodes of a namespace (PROTOCOL.md section 7) and
 * the operator's drain and undrain (section 8). Node ids are checked before anything is sent. */
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

/* POST .../nodes/{id}/{action}; prints the node's new state. */
static int node_action(cli *c, const char *action)
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
    rc = cli_call_show(c, "POST", path, NULL, &r);
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

int cmd_node_drain(cli *c)
{
    return node_action(c, "drain");
}

int cmd_node_undrain(cli *c)
{
    return node_action(c, "undrain");
}
