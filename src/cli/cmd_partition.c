/* shardzctl partition list|show|move and where KEY: partitions and their replicas (PROTOCOL.md
 * sections 3 and 7), the operator's move (section 8) and the key lookup. Ids, slots and the
 * key's encoded length are checked before anything is sent. */
#include <string.h>

#include "cli/cli.h"
#include "shardz/error.h"

static int part_arg(cli *c, const char **out)
{
    if (!shardz_client_valid_id(c->args[0])) {
        return cli_usage_error(c,
                               "'%s' is not a valid partition id (1-255 bytes of "
                               "[A-Za-z0-9._:-])",
                               c->args[0]);
    }
    *out = c->args[0];
    return 0;
}

/* "w1:serving w2:serving->w3" for a partition's replicas. */
static const char *replica_summary(const json_t *reps, char *buf, size_t len)
{
    size_t n = 0;
    size_t i;
    const json_t *r;
    char node[300], st[64], to[300];

    buf[0] = '\0';
    json_array_foreach(reps, i, r)
    {
        int w;
        cli_field(r, "node", node, sizeof node);
        cli_field(r, "state", st, sizeof st);
        if (json_object_get(r, "moving_to") != NULL) {
            cli_field(r, "moving_to", to, sizeof to);
            w = snprintf(buf + n, len - n, "%s%s:%s->%s", i > 0 ? " " : "", node, st, to);
        } else {
            w = snprintf(buf + n, len - n, "%s%s:%s", i > 0 ? " " : "", node, st);
        }
        if (w < 0 || (size_t)w >= len - n) {
            break;
        }
        n += (size_t)w;
    }
    return buf;
}

int cmd_part_list(cli *c)
{
    static const char *const head[] = {"PARTITION", "GENERATION", "REPLICAS"};
    char path[128];
    char id[300], gen[32], reps[2048];
    const char *cells[3];
    json_t *r = NULL;
    const json_t *p;
    cli_table t;
    size_t i;
    int rc;

    cli_ns_path(c, path, sizeof path, "/partitions");
    rc = cli_call_show(c, "GET", path, NULL, &r);
    if (rc != 0 || r == NULL) {
        return rc;
    }
    if (json_array_size(json_object_get(r, "partitions")) == 0) {
        printf("no partitions in namespace %s\n", c->ns);
        json_decref(r);
        return 0;
    }
    cli_table_init(&t, 3, head);
    json_array_foreach(json_object_get(r, "partitions"), i, p)
    {
        cells[0] = cli_field(p, json_object_get(p, "partition") != NULL ? "partition" : "id", id,
                             sizeof id);
        cells[1] = cli_field(p, "generation", gen, sizeof gen);
        cells[2] = replica_summary(json_object_get(p, "replicas"), reps, sizeof reps);
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    json_decref(r);
    return 0;
}

int cmd_part_show(cli *c)
{
    static const char *const skip[] = {"replicas", NULL};
    const char *pid = NULL;
    char path[512];
    json_t *r = NULL;
    int rc;

    rc = part_arg(c, &pid);
    if (rc != 0) {
        return rc;
    }
    cli_ns_path(c, path, sizeof path, "/partitions/%s", pid);
    rc = cli_call_show(c, "GET", path, NULL, &r);
    if (rc == 0 && r != NULL) {
        cli_print_fields(r, skip);
        printf("\n");
        cli_print_replicas(json_object_get(r, "replicas"));
    }
    json_decref(r);
    return rc;
}

int cmd_part_history(cli *c)
{
    static const char *const head[] = {"TIME", "SLOT", "FROM", "TO", "REASON", "GENERATION"};
    static const char *const keys[] = {"time_ms", "slot", "from", "to", "reason", "generation"};
    enum { NCOL = sizeof head / sizeof head[0] };
    const char *pid = NULL;
    char path[512];
    char buf[NCOL][300];
    const char *cells[NCOL];
    json_t *r = NULL;
    const json_t *e;
    cli_table t;
    size_t i;
    int rc;

    rc = part_arg(c, &pid);
    if (rc != 0) {
        return rc;
    }
    cli_ns_path(c, path, sizeof path, "/partitions/%s/history", pid);
    rc = cli_call_show(c, "GET", path, NULL, &r);
    if (rc != 0 || r == NULL) {
        return rc;
    }
    if (json_array_size(json_object_get(r, "history")) == 0) {
        printf("partition %s has not moved since it was placed\n", pid);
        json_decref(r);
        return 0;
    }
    cli_table_init(&t, NCOL, head);
    json_array_foreach(json_object_get(r, "history"), i, e)
    {
        for (size_t k = 0; k < NCOL; k++) {
            const json_t *v = json_object_get(e, keys[k]);
            cells[k] = k == 0 ? cli_fmt_time(v, buf[k], sizeof buf[k])
                       : v    ? cli_field(e, keys[k], buf[k], sizeof buf[k])
                              : "-";
        }
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    json_decref(r);
    return 0;
}

int cmd_part_move(cli *c)
{
    const char *pid = NULL;
    long long slot = 0;
    char path[512];
    char from[300], to[300], reason[64];
    json_t *body = NULL;
    json_t *r = NULL;
    int rc;

    rc = part_arg(c, &pid);
    if (rc == 0) {
        rc = cli_flag_int(c, F_SLOT, 0, CLI_MAX_REPLICAS - 1, &slot);
    }
    if (rc == 0 && c->val[F_TO] == NULL) {
        rc = cli_usage_error(c, "--to NODE is required");
    }
    if (rc == 0 && !shardz_client_valid_id(c->val[F_TO])) {
        rc = cli_usage_error(c, "--to: '%s' is not a valid node id", c->val[F_TO]);
    }
    if (rc != 0) {
        return rc;
    }
    body = json_pack("{s:I, s:s}", "slot", (json_int_t)slot, "to", c->val[F_TO]);
    cli_ns_path(c, path, sizeof path, "/partitions/%s/move", pid);
    rc = cli_call_show(c, "POST", path, body, &r);
    if (rc == 0 && r != NULL) {
        /* The reply is the partition with its replicas (PROTOCOL.md says "the move"; a reply
         * with from/to is printed as such). */
        printf("move started: partition %s slot %lld to %s (reason %s)\n", pid, slot,
               json_object_get(r, "to") != NULL ? cli_field(r, "to", to, sizeof to) : c->val[F_TO],
               json_object_get(r, "reason") != NULL ? cli_field(r, "reason", reason, sizeof reason)
                                                    : "operator");
        if (json_object_get(r, "from") != NULL) {
            printf("from: %s\n", cli_field(r, "from", from, sizeof from));
        }
        if (json_is_array(json_object_get(r, "replicas"))) {
            printf("\n");
            cli_print_replicas(json_object_get(r, "replicas"));
        }
    }
    json_decref(body);
    json_decref(r);
    return rc;
}

int cmd_where(cli *c)
{
    static const char *const skip[] = {"replicas", NULL};
    char path[SHARDZ_CLIENT_PATH_MAX + 1];
    char key[SHARDZ_CLIENT_PATH_MAX + 1];
    json_t *r = NULL;
    int rc;

    if (shardz_client_escape(c->args[0], key, sizeof key) != 0 || strlen(key) + 128 > sizeof path) {
        return cli_usage_error(c, "KEY is too long (at most about %d bytes once URL-encoded)",
                               SHARDZ_CLIENT_PATH_MAX - 128);
    }
    cli_ns_path(c, path, sizeof path, "/lookup?key=%s", key);
    rc = cli_call_show(c, "GET", path, NULL, &r);
    if (rc == 0 && r != NULL) {
        cli_print_fields(r, skip);
        printf("\n");
        cli_print_replicas(json_object_get(r, "replicas"));
    }
    json_decref(r);
    return rc;
}
