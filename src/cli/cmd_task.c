/* shardzctl plan, rebalance and task list|show|cancel: the balancer's dry run and run, and the
 * moves in flight (PROTOCOL.md sections 7 and 8). task show filters GET /moves on the client;
 * task cancel is DELETE /moves/{pid}/{slot}. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

void cli_print_moves(const json_t *moves, bool with_flight)
{
    static const char *const head[] = {"PARTITION",  "SLOT",     "FROM",       "TO", "REASON",
                                       "FROM_STATE", "TO_STATE", "GENERATION", "AGE"};
    static const char *const keys[] = {"partition",  "slot",     "from",       "to", "reason",
                                       "from_state", "to_state", "generation", NULL};
    enum { NCOL = sizeof head / sizeof head[0] };
    size_t ncol = with_flight ? NCOL : 5;
    char buf[NCOL][300];
    const char *cells[NCOL];
    cli_table t;
    size_t i;
    const json_t *m;

    cli_table_init(&t, ncol, head);
    json_array_foreach(moves, i, m)
    {
        for (size_t k = 0; k < ncol; k++) {
            if (keys[k] == NULL) {
                const json_t *age = json_object_get(m, "age_ms");
                cells[k] = json_is_integer(age)
                               ? cli_fmt_ms(json_integer_value(age), buf[k], sizeof buf[k])
                               : "-";
            } else {
                cells[k] = cli_field(m, keys[k], buf[k], sizeof buf[k]);
            }
        }
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

/* "/plan" or "/rebalance", with ?balancer=load when asked; 0, or 2 for a bad value. */
static int balancer_path(cli *c, char *path, size_t cap, const char *what)
{
    const char *b = c->val[F_BALANCER];
    if (b != NULL && strcmp(b, "load") != 0) {
        return cli_usage_error(c, "--balancer takes 'load', not '%s'", b);
    }
    char suffix[64];
    snprintf(suffix, sizeof suffix, "%s%s", what, b != NULL ? "?balancer=load" : "");
    cli_ns_path(c, path, cap, "%s", suffix);
    return 0;
}

/* Calls /plan or /rebalance (with --balancer) and prints the moves of the reply. *r is
 * the caller's (json_decref) when the call succeeded; 0 or the exit code. */
static int call_moves(cli *c, const char *method, const char *what, json_t **r, size_t *n)
{
    char path[128];
    int rc = balancer_path(c, path, sizeof path, what);
    if (rc != 0) {
        return rc;
    }
    rc = cli_call_show(c, method, path, NULL, r);
    if (rc != 0 || *r == NULL) {
        return rc;
    }
    *n = json_array_size(json_object_get(*r, "moves"));
    if (*n > 0) {
        cli_print_moves(json_object_get(*r, "moves"), false);
        printf("\n");
    }
    return 0;
}

int cmd_plan(cli *c)
{
    char rev[32], missing[32];
    json_t *r = NULL;
    size_t n;
    int rc;

    rc = call_moves(c, "GET", "/plan", &r, &n);
    if (rc != 0 || r == NULL) {
        return rc;
    }
    if (c->val[F_BALANCER] != NULL) {
        char stopped[32], budget[32];
        printf("%zu load moves planned (stopped: %s, budget %s), at revision %s (dry run: "
               "nothing changed)\n",
               n, cli_field(r, "stopped", stopped, sizeof stopped),
               cli_field(r, "budget", budget, sizeof budget),
               cli_field(r, "revision", rev, sizeof rev));
    } else {
        printf("%zu moves planned, %s replica slots missing, at revision %s (dry run: nothing "
               "changed)\n",
               n, cli_field(r, "missing", missing, sizeof missing),
               cli_field(r, "revision", rev, sizeof rev));
    }
    json_decref(r);
    return 0;
}

int cmd_rebalance(cli *c)
{
    char rev[32];
    json_t *r = NULL;
    size_t n;
    int rc;

    rc = call_moves(c, "POST", "/rebalance", &r, &n);
    if (rc != 0 || r == NULL) {
        return rc;
    }
    printf("%zu moves started at revision %s%s\n", n, cli_field(r, "revision", rev, sizeof rev),
           n > 0 ? ": follow with 'shardzctl task list'" : "");
    json_decref(r);
    return 0;
}

int cmd_task_list(cli *c)
{
    char path[128];
    char rev[32];
    json_t *r = NULL;
    int rc;

    cli_ns_path(c, path, sizeof path, "/moves");
    rc = cli_call_show(c, "GET", path, NULL, &r);
    if (rc != 0 || r == NULL) {
        return rc;
    }
    if (json_array_size(json_object_get(r, "moves")) == 0) {
        printf("no moves in flight (revision %s)\n", cli_field(r, "revision", rev, sizeof rev));
    } else {
        cli_print_moves(json_object_get(r, "moves"), true);
    }
    json_decref(r);
    return 0;
}

/* The PARTITION argument and --slot (-1 when not given). */
static int task_args(cli *c, const char **pid, long long *slot)
{
    *slot = -1;
    if (!shardz_client_valid_id(c->args[0])) {
        return cli_usage_error(c, "'%s' is not a valid partition id", c->args[0]);
    }
    *pid = c->args[0];
    return cli_flag_int(c, F_SLOT, 0, CLI_MAX_REPLICAS - 1, slot);
}

int cmd_task_show(cli *c)
{
    const char *pid = NULL;
    long long slot = -1;
    char path[128];
    json_t *r = NULL;
    json_t *keep = NULL;
    json_t *m;
    size_t i;
    int rc;

    rc = task_args(c, &pid, &slot);
    if (rc != 0) {
        return rc;
    }
    cli_ns_path(c, path, sizeof path, "/moves");
    rc = cli_call(c, "GET", path, NULL, &r, NULL);
    if (rc != 0 || r == NULL) {
        return rc;
    }
    keep = json_array();
    json_array_foreach(json_object_get(r, "moves"), i, m)
    {
        const char *p = json_string_value(json_object_get(m, "partition"));
        if (p != NULL && strcmp(p, pid) == 0 &&
            (slot < 0 || json_integer_value(json_object_get(m, "slot")) == slot)) {
            json_array_append(keep, m);
        }
    }
    if (json_array_size(keep) == 0) {
        rc = slot < 0
                 ? cli_error("ENOENT", "no move in flight for partition '%s'", pid)
                 : cli_error("ENOENT", "no move in flight for partition '%s' slot %lld", pid, slot);
    } else if (c->json) {
        json_t *doc =
            json_pack("{s:O, s:O}", "moves", keep, "revision", json_object_get(r, "revision"));
        cli_print_json(doc);
        json_decref(doc);
    } else {
        json_array_foreach(keep, i, m)
        {
            if (i > 0) {
                printf("\n");
            }
            cli_print_fields(m, NULL);
        }
    }
    json_decref(keep);
    json_decref(r);
    return rc;
}

int cmd_task_cancel(cli *c)
{
    const char *pid = NULL;
    long long slot = -1;
    char path[512];
    json_t *r = NULL;
    int rc;

    rc = task_args(c, &pid, &slot);
    if (rc != 0) {
        return rc;
    }
    if (slot < 0) {
        slot = 0;
    }
    cli_ns_path(c, path, sizeof path, "/moves/%s/%lld", pid, slot);
    rc = cli_call_show(c, "DELETE", path, NULL, &r);
    if (rc == 0 && r != NULL) {
        printf("move of partition %s slot %lld cancelled\n", pid, slot);
        if (json_is_array(json_object_get(r, "replicas"))) {
            printf("\n");
            cli_print_replicas(json_object_get(r, "replicas"));
        }
    }
    json_decref(r);
    return rc;
}
