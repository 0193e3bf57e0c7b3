/* shardzctl: the command line for operators of a shardz coordinator. This file parses the
 * command line against the tables of spec.c (global flags anywhere, a command's own flags
 * after its name), prints help, resolves the endpoint, secret and namespace from flags and the
 * environment, and runs the command. Nothing is sent before the whole command line checked. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "shardz/error.h"

#define FLAG_COL 28 /* help text column in flag lists */

static cli *sigint_cli; /* the session the SIGINT handler cancels */

/* ---- help -------------------------------------------------------------------------------- */

static void print_flag(FILE *f, int id)
{
    const cli_flag *fl = &cli_flags[id];
    char head[64];

    if (fl->short_name != 0) {
        snprintf(head, sizeof head, "-%c, --%s%s%s", fl->short_name, fl->name,
                 fl->metavar != NULL ? " " : "", fl->metavar != NULL ? fl->metavar : "");
    } else {
        snprintf(head, sizeof head, "    --%s%s%s", fl->name, fl->metavar != NULL ? " " : "",
                 fl->metavar != NULL ? fl->metavar : "");
    }
    if (strlen(head) >= FLAG_COL) { /* a long flag: its help on the next line */
        fprintf(f, "  %s\n  %*s%s\n", head, FLAG_COL, "", fl->help);
    } else {
        fprintf(f, "  %-*s%s\n", FLAG_COL, head, fl->help);
    }
}

static void print_global_flags(FILE *f)
{
    fprintf(f, "\nGlobal flags:\n");
    for (int i = 0; i < F_NGLOBAL; i++) {
        print_flag(f, i);
    }
}

static void cmd_name(const cli_cmd *cmd, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s", cmd->group, cmd->verb != NULL ? " " : "",
             cmd->verb != NULL ? cmd->verb : "");
}

static void print_cmd_usage(FILE *f, const cli_cmd *cmd)
{
    char name[64];

    cmd_name(cmd, name, sizeof name);
    fprintf(f, "Usage: shardzctl %s%s%s [flags]\n", name, cmd->args[0] != '\0' ? " " : "",
            cmd->args);
    if (cmd->summary != NULL) {
        fprintf(f, "\n%c%s.\n", cmd->summary[0] - 'a' + 'A', cmd->summary + 1);
    }
    if (cmd->details != NULL) {
        fprintf(f, "%s\n", cmd->details);
    }
    if (cmd->needs_ns) {
        fprintf(f, "Needs a namespace: -n NS or SHARDZ_NAMESPACE.\n");
    }
    if (cmd->flags[0] >= 0) {
        fprintf(f, "\nFlags:\n");
        for (const int *fl = cmd->flags; *fl >= 0; fl++) {
            print_flag(f, *fl);
        }
    }
    print_global_flags(f);
}

static void print_cmd_list(FILE *f, const char *group)
{
    for (size_t i = 0; i < cli_ncmds; i++) {
        const cli_cmd *cmd = &cli_cmds[i];
        char head[96];
        if (cmd->summary == NULL || (group != NULL && strcmp(cmd->group, group) != 0)) {
            continue;
        }
        cmd_name(cmd, head, sizeof head);
        if (cmd->args[0] != '\0') {
            size_t n = strlen(head);
            snprintf(head + n, sizeof head - n, " %s", cmd->args);
        }
        fprintf(f, "  %-*s%s\n", FLAG_COL, head, cmd->summary);
    }
}

static void print_group_usage(FILE *f, const cli_group *g)
{
    fprintf(f, "Usage: shardzctl %s COMMAND [flags]\n\n%c%s.\n", g->name, g->summary[0] - 'a' + 'A',
            g->summary + 1);
    if (g->aliases[0] != NULL) {
        fprintf(f, "Also spelled:");
        for (size_t i = 0; i < 3 && g->aliases[i] != NULL; i++) {
            fprintf(f, " %s", g->aliases[i]);
        }
        fprintf(f, "\n");
    }
    fprintf(f, "\nCommands:\n");
    print_cmd_list(f, g->name);
    fprintf(f, "\nRun 'shardzctl %s COMMAND --help' for a command's flags.\n", g->name);
}

static void print_top_usage(FILE *f)
{
    fprintf(f, "shardzctl: operate a shardz coordinator (shardzd) over its HTTP API.\n\n"
               "Usage: shardzctl COMMAND [ARGS] [flags]\n\nCommands:\n");
    print_cmd_list(f, NULL);
    print_global_flags(f);
    fprintf(f, "\nOutput: aligned tables, or the coordinator's JSON with --json.\nExit codes:");
    for (size_t i = 0; i < cli_nexit_codes; i++) {
        fprintf(f, "%s %d %s", i > 0 ? "," : "", cli_exit_codes[i].code, cli_exit_codes[i].meaning);
    }
    fprintf(f, ".\nRun 'shardzctl COMMAND --help' for a command's flags.\n");
}

int cli_usage_error(const cli *c, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n");
    if (c != NULL && c->cmd != NULL) {
        print_cmd_usage(stderr, c->cmd);
    } else {
        print_top_usage(stderr);
    }
    return CLI_EUSAGE;
}

/* ---- parsing ----------------------------------------------------------------------------- */

static const cli_group *find_group(const char *w)
{
    for (size_t i = 0; i < cli_ngroups; i++) {
        const cli_group *g = &cli_groups[i];
        if (strcmp(g->name, w) == 0) {
            return g;
        }
        for (size_t k = 0; k < 3 && g->aliases[k] != NULL; k++) {
            if (strcmp(g->aliases[k], w) == 0) {
                return g;
            }
        }
    }
    return NULL;
}

static const cli_cmd *find_cmd(const char *group, const char *verb)
{
    for (size_t i = 0; i < cli_ncmds; i++) {
        const cli_cmd *cmd = &cli_cmds[i];
        if (strcmp(cmd->group, group) != 0) {
            continue;
        }
        if ((verb == NULL && cmd->verb == NULL) ||
            (verb != NULL && cmd->verb != NULL && strcmp(cmd->verb, verb) == 0)) {
            return cmd;
        }
    }
    return NULL;
}

static int find_flag(const char *name, size_t len, char short_name)
{
    for (int i = 0; i < F_NFLAGS; i++) {
        const cli_flag *f = &cli_flags[i];
        if (short_name != 0 ? f->short_name == short_name
                            : strlen(f->name) == len && strncmp(f->name, name, len) == 0) {
            return i;
        }
    }
    return -1;
}

static bool cmd_takes(const cli_cmd *cmd, int f)
{
    if (f < F_NGLOBAL) {
        return true;
    }
    if (cmd == NULL) {
        return false;
    }
    for (const int *p = cmd->flags; *p >= 0; p++) {
        if (*p == f) {
            return true;
        }
    }
    return false;
}

/* Where parsing got to: what help to print, and the first problem found. */
typedef struct {
    const cli_group *group;
    bool help;       /* --help / -h, or the "help" command */
    char error[512]; /* "" when none */
} parse_state;

/* One flag argument at argv[*i]; may consume argv[*i + 1]. */
static void parse_flag(cli *c, parse_state *ps, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char *value = NULL;
    bool attached = false;
    char shown[80];
    int f;

    if (a[1] == '-') {
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        f = find_flag(name, len, 0);
        snprintf(shown, sizeof shown, "--%.*s", (int)(len < 60 ? len : 60), name);
        if (eq != NULL) {
            value = eq + 1;
            attached = true;
        }
    } else {
        f = find_flag(NULL, 0, a[1]);
        snprintf(shown, sizeof shown, "-%c", a[1]);
        if (a[2] != '\0') {
            value = a + 2;
            attached = true;
        }
    }
    if (f < 0) {
        snprintf(ps->error, sizeof ps->error, "unknown flag '%s'", shown);
        return;
    }
    if (!cmd_takes(c->cmd, f)) {
        if (c->cmd == NULL) {
            snprintf(ps->error, sizeof ps->error,
                     "flag '%s' belongs to a command: put it after the command's name", shown);
        } else {
            char name[64];
            cmd_name(c->cmd, name, sizeof name);
            snprintf(ps->error, sizeof ps->error, "unknown flag '%s' for 'shardzctl %s'", shown,
                     name);
        }
        return;
    }
    if (cli_flags[f].takes_value && !attached) {
        if (*i + 1 >= argc) {
            snprintf(ps->error, sizeof ps->error, "flag '%s' needs a value (%s)", shown,
                     cli_flags[f].metavar);
            return;
        }
        value = argv[++*i];
    } else if (!cli_flags[f].takes_value && attached && a[1] != '-') {
        snprintf(ps->error, sizeof ps->error, "unknown flag '%s'", a);
        return;
    }
    c->set[f] = true;
    c->val[f] = value;
    if (f == F_HELP) {
        ps->help = true;
    }
}

/* One positional word: a command word until the command is known, then an argument. */
static void parse_word(cli *c, parse_state *ps, const char *w)
{
    if (c->cmd != NULL) {
        if (c->nargs == CLI_MAX_ARGS) {
            snprintf(ps->error, sizeof ps->error, "too many arguments");
            return;
        }
        c->args[c->nargs++] = w;
        return;
    }
    if (ps->group == NULL) {
        if (strcmp(w, "help") == 0 && !ps->help) {
            ps->help = true;
            return;
        }
        ps->group = find_group(w);
        if (ps->group != NULL) {
            return;
        }
        c->cmd = find_cmd(w, NULL);
        if (c->cmd == NULL || (c->cmd->summary == NULL && ps->help)) {
            c->cmd = NULL;
            snprintf(ps->error, sizeof ps->error, "unknown command '%.60s'", w);
        }
        return;
    }
    c->cmd = find_cmd(ps->group->name, w);
    if (c->cmd == NULL) {
        snprintf(ps->error, sizeof ps->error, "unknown command '%s %.60s'", ps->group->name, w);
    }
}

/* True when --help or -h appears before any "--": help then wins over a bad flag. */
static bool asks_help(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return true;
        }
    }
    return false;
}

static void parse_args(cli *c, parse_state *ps, int argc, char **argv)
{
    bool words_only = false;

    for (int i = 1; i < argc && ps->error[0] == '\0'; i++) {
        const char *a = argv[i];
        if (!words_only && strcmp(a, "--") == 0) {
            words_only = true;
        } else if (!words_only && a[0] == '-' && a[1] != '\0') {
            parse_flag(c, ps, argc, argv, &i);
        } else {
            parse_word(c, ps, a);
        }
    }
}

/* ---- running ----------------------------------------------------------------------------- */

static void on_sigint(int sig)
{
    (void)sig;
    if (sigint_cli != NULL) {
        sigint_cli->interrupted = 1;
        if (sigint_cli->client != NULL) {
            shardz_client_cancel(sigint_cli->client);
        }
    }
}

void cli_catch_sigint(cli *c)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C ends the process at once */
    sigemptyset(&sa.sa_mask);
    sigint_cli = c;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : fallback;
}

/* Fills the global settings from flags and the environment, checking each. */
static int resolve_globals(cli *c)
{
    int rc;

    rc = cli_flag_bool(c, F_JSON, &c->json);
    if (rc != 0) {
        return rc;
    }
    c->timeout_ms = SHARDZ_CLIENT_TIMEOUT_MS;
    rc = cli_flag_duration(c, F_TIMEOUT, 1, 3600L * 1000, &c->timeout_ms);
    if (rc != 0) {
        return rc;
    }
    c->endpoint =
        c->set[F_ENDPOINT] ? c->val[F_ENDPOINT] : env_or("SHARDZ_ENDPOINT", CLI_DEFAULT_ENDPOINT);
    if (!c->set[F_SECRET]) {
        c->val[F_SECRET] = env_or("SHARDZ_SECRET", NULL);
    }
    c->ns = c->set[F_NAMESPACE] ? c->val[F_NAMESPACE] : env_or("SHARDZ_NAMESPACE", NULL);
    if (c->ns != NULL && !shardz_client_valid_ns(c->ns)) {
        return cli_usage_error(c,
                               "namespace '%s' is not a valid name (1-63 bytes of [a-z0-9._-], "
                               "starting with a letter or digit)",
                               c->ns);
    }
    if (c->cmd->needs_ns && c->ns == NULL) {
        return cli_usage_error(c, "no namespace: give -n NS or set SHARDZ_NAMESPACE");
    }
    rc = shardz_client_new(c->endpoint, c->val[F_SECRET], &c->client);
    if (rc == SHARDZ_EINVAL) {
        return cli_usage_error(c, "endpoint '%s' is not HOST:PORT (or the secret is too long)",
                               c->endpoint);
    }
    if (rc != 0) {
        fprintf(stderr, "error: %s\n", shardz_strerror(rc));
        return CLI_ESERVER;
    }
    shardz_client_set_timeout(c->client, c->timeout_ms);
    return 0;
}

static void print_help(const cli *c, const parse_state *ps)
{
    if (c->cmd != NULL) {
        print_cmd_usage(stdout, c->cmd);
    } else if (ps->group != NULL) {
        print_group_usage(stdout, ps->group);
    } else {
        print_top_usage(stdout);
    }
}

int main(int argc, char **argv)
{
    cli c;
    parse_state ps;
    int rc;

    memset(&c, 0, sizeof c);
    memset(&ps, 0, sizeof ps);
    parse_args(&c, &ps, argc, argv);
    if ((ps.help && ps.error[0] == '\0') || (ps.error[0] != '\0' && asks_help(argc, argv))) {
        /* Help wins over a bad flag further on: print what was understood. */
        print_help(&c, &ps);
        return CLI_OK;
    }
    if (ps.error[0] != '\0') {
        if (c.cmd == NULL && ps.group != NULL) {
            fprintf(stderr, "error: %s\n\n", ps.error);
            print_group_usage(stderr, ps.group);
            return CLI_EUSAGE;
        }
        return cli_usage_error(&c, "%s", ps.error);
    }
    if (c.cmd == NULL) {
        if (ps.group != NULL) {
            fprintf(stderr, "error: '%s' needs a command\n\n", ps.group->name);
            print_group_usage(stderr, ps.group);
            return CLI_EUSAGE;
        }
        return cli_usage_error(&c, "no command given");
    }
    if (c.nargs < c.cmd->min_args) {
        return cli_usage_error(&c, "missing argument %s", c.cmd->args);
    }
    if (c.nargs > c.cmd->max_args) {
        return cli_usage_error(&c, "unexpected argument '%s'", c.args[c.cmd->max_args]);
    }
    rc = resolve_globals(&c);
    if (rc == 0) {
        rc = c.cmd->run(&c);
    }
    sigint_cli = NULL;
    shardz_client_destroy(c.client);
    if (fflush(stdout) != 0 && rc == 0) {
        rc = CLI_ESERVER;
    }
    return rc;
}
