/* shardzctl range list|split|merge|tasks: the key ranges of a range namespace and their split
 * and merge tasks (docs/PROTOCOL.md sections 8 and 9). list reads GET .../state and keeps the
 * routed ranges; split and merge start tasks; tasks reads GET .../tasks. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

/* A bound for a table: "-inf" / "+inf" for the unbounded ends, else the key. */
static const char *bound(const json_t *v, const char *inf)
{
    const char *s = json_string_value(v);
    return s == NULL || s[0] == '\0' ? inf : s;
}

static int by_lo(const void *a, const void *b)
{
    const char *x =
        json_string_value(json_object_get(json_object_get(*(json_t *const *)a, "range"), "lo"));
    const char *y =
        json_string_value(json_object_get(json_object_get(*(json_t *const *)b, "range"), "lo"));
    return strcmp(x ? x : "", y ? y : "");
}

int cmd_range_list(cli *c)
{
    static const char *const head[] = {"LO", "HI", "PARTITION", "REPLICAS"};
    char path[128], reps[2048];
    json_t *r = NULL;
    json_t **rows = NULL;
    size_t n = 0, i;
    const json_t *p;
    cli_table t;

    cli_ns_path(c, path, sizeof path, "/state");
    int rc = cli_call_show(c, "GET", path, NULL, &r);
    if (rc != 0 || r == NULL) {
        return rc;
    }
    const json_t *parts = json_object_get(r, "partitions");
    rows = cli_xcalloc(json_array_size(parts) + 1, sizeof *rows);
    json_array_foreach(parts, i, p)
    {
        if (json_object_get(p, "range") != NULL && !json_is_false(json_object_get(p, "routed"))) {
            rows[n++] = (json_t *)p;
        }
    }
    qsort(rows, n, sizeof *rows, by_lo);
    cli_table_init(&t, 4, head);
    for (i = 0; i < n; i++) {
        const json_t *kr = json_object_get(rows[i], "range");
        size_t k, len = 0;
        const json_t *rep;
        reps[0] = '\0';
        json_array_foreach(json_object_get(rows[i], "replicas"), k, rep)
        {
            int w = snprintf(reps + len, sizeof reps - len, "%s%s:%s", k ? " " : "",
                             json_string_value(json_object_get(rep, "node")),
                             json_string_value(json_object_get(rep, "state")));
            if (w < 0 || (size_t)w >= sizeof reps - len) {
                break;
            }
            len += (size_t)w;
        }
        const char *cells[4] = {bound(json_object_get(kr, "lo"), "-inf"),
                                bound(json_object_get(kr, "hi"), "+inf"),
                                json_string_value(json_object_get(rows[i], "id")), reps};
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    free(rows);
    json_decref(r);
    return 0;
}

/* Prints a started task: "split task t000001 started: 0 -> 2 ["", "G") 3 ["G", "O")". */
static void print_task(const json_t *task)
{
    size_t i;
    const json_t *e;
    printf("%s task %s started:", json_string_value(json_object_get(task, "type")),
           json_string_value(json_object_get(task, "id")));
    json_array_foreach(json_object_get(task, "from"), i, e) printf(" %s", json_string_value(e));
    printf(" ->");
    json_array_foreach(json_object_get(task, "to"), i, e)
    {
        printf(" %s [%s, %s)", json_string_value(json_object_get(e, "partition")),
               bound(json_object_get(e, "lo"), "-inf"), bound(json_object_get(e, "hi"), "+inf"));
    }
    printf("\nfollow it with 'shardzctl range tasks'\n");
}

/* POSTs body to path and prints the task it started. Takes body. */
static int start_task(cli *c, const char *path, json_t *body)
{
    json_t *r = NULL;
    int rc = cli_call_show(c, "POST", path, body, &r);
    if (rc == 0 && r != NULL) {
        print_task(json_object_get(r, "task"));
    }
    json_decref(body);
    json_decref(r);
    return rc;
}

int cmd_range_split(cli *c)
{
    char path[512];
    if (!shardz_client_valid_id(c->args[0])) {
        return cli_usage_error(c, "'%s' is not a valid partition id", c->args[0]);
    }
    json_t *body = json_object();
    if (c->val[F_AT] != NULL) {
        json_t *at = json_string(c->val[F_AT]); /* NULL unless UTF-8 */
        if (at == NULL) {
            json_decref(body);
            return cli_usage_error(c, "--at must be UTF-8 text");
        }
        json_object_set_new(body, "at", at);
    }
    cli_ns_path(c, path, sizeof path, "/partitions/%s/split", c->args[0]);
    return start_task(c, path, body);
}

int cmd_range_merge(cli *c)
{
    char path[128];
    for (int i = 0; i < 2; i++) {
        if (!shardz_client_valid_id(c->args[i])) {
            return cli_usage_error(c, "'%s' is not a valid partition id", c->args[i]);
        }
    }
    cli_ns_path(c, path, sizeof path, "/merge");
    return start_task(c, path, json_pack("{s:[s, s]}", "partitions", c->args[0], c->args[1]));
}

int cmd_range_tasks(cli *c)
{
    static const char *const head[] = {"ID", "TYPE", "STATE", "FROM", "TO"};
    char path[128], from[600], to[2048], rev[32];
    json_t *r = NULL;
    const json_t *t;
    size_t i;
    cli_table tab;

    cli_ns_path(c, path, sizeof path, "/tasks");
    int rc = cli_call_show(c, "GET", path, NULL, &r);
    if (rc != 0 || r == NULL) {
        return rc;
    }
    if (json_array_size(json_object_get(r, "tasks")) == 0) {
        printf("no split or merge tasks (revision %s)\n",
               cli_field(r, "revision", rev, sizeof rev));
        json_decref(r);
        return 0;
    }
    cli_table_init(&tab, 5, head);
    json_array_foreach(json_object_get(r, "tasks"), i, t)
    {
        size_t k, len = 0;
        const json_t *e;
        to[0] = '\0';
        json_array_foreach(json_object_get(t, "to"), k, e)
        {
            int w = snprintf(to + len, sizeof to - len, "%s%s[%s,%s)", k ? " " : "",
                             json_string_value(json_object_get(e, "partition")),
                             bound(json_object_get(e, "lo"), "-inf"),
                             bound(json_object_get(e, "hi"), "+inf"));
            if (w < 0 || (size_t)w >= sizeof to - len) {
                break;
            }
            len += (size_t)w;
        }
        const char *cells[5] = {json_string_value(json_object_get(t, "id")),
                                json_string_value(json_object_get(t, "type")),
                                json_string_value(json_object_get(t, "state")),
                                cli_field(t, "from", from, sizeof from), to};
        cli_table_add(&tab, cells);
    }
    cli_table_print(&tab, stdout);
    cli_table_free(&tab);
    json_decref(r);
    return 0;
}
