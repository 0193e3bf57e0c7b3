/* shardzctl internals: the command and flag tables (spec.c), the parsed command line, the
 * request helpers that turn replies into exit codes (request.c), output helpers (output.c) and
 * each command group's run functions (cmd_*.c). Single-threaded; a SIGINT handler only sets
 * flags. Exit codes: 0 ok, 1 the coordinator said error, 2 usage, 3 coordinator unreachable. */
#ifndef SHARDZ_CLI_H
#define SHARDZ_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "shardz/client.h"

/* Exit codes. */
enum {
    CLI_OK = 0,
    CLI_ESERVER = 1,       /* the coordinator answered with an error (or an unusable reply) */
    CLI_EUSAGE = 2,        /* bad command line: nothing was sent */
    CLI_EUNREACHABLE = 3,  /* could not connect, or timed out */
    CLI_ENOTSTOPPABLE = 4, /* node stoppable: some of the nodes may not stop now */
};

#define CLI_DEFAULT_ENDPOINT "127.0.0.1:7557"
#define CLI_MAX_ARGS 8          /* positional arguments kept (more is a usage error) */
#define CLI_MAX_REPLICAS 16     /* PROTOCOL.md section 3: replicas 1-16, so slots 0-15 */
#define CLI_WATCH_POLL_MS 30000 /* the long-poll's timeout_ms */

/* Every flag of every command; the global ones first. */
typedef enum {
    F_ENDPOINT,
    F_SECRET,
    F_JSON,
    F_TIMEOUT,
    F_NAMESPACE,
    F_HELP,
    F_NGLOBAL, /* marker: flags below are per command */
    F_SHARDER = F_NGLOBAL,
    F_REPLICAS,
    F_ROLES,
    F_CONSISTENCY,
    F_PING,
    F_DEAD,
    F_LEASE,
    F_DIMS,
    F_PARTS,
    F_SLOTS,
    F_SLOT,
    F_TO,
    F_SINCE,
    F_LIMIT,
    F_FOLLOW,
    F_INTERVAL,
    F_COUNT,
    F_BALANCER,
    F_AT,
    F_ZONE,
    F_REASON,
    F_DRY_RUN,
    F_TRANSFER,
    F_NFLAGS
} cli_flag_id;

/* One flag as the user types it. */
typedef struct {
    const char *name; /* long name, without "--" */
    char short_name;  /* 0: none */
    bool takes_value; /* false: a boolean (--x, --x=true, --x=false) */
    const char *metavar;
    const char *help;
} cli_flag;

typedef struct cli cli;

/* One command ("namespace create"); verb is NULL for a one-word command ("status"). */
typedef struct {
    const char *group;
    const char *verb;
    const char *args; /* positional arguments for the usage line ("NAME"), or "" */
    int min_args, max_args;
    bool needs_ns;      /* -n/--namespace (or SHARDZ_NAMESPACE) is required */
    const int *flags;   /* its own flags (cli_flag_id), terminated by -1 */
    int (*run)(cli *c); /* returns the exit code */
    const char *summary;
    const char *details; /* more help text, or NULL */
} cli_cmd;

/* A group's name and its aliases ("namespace", "ns", "namespaces"). */
typedef struct {
    const char *name;
    const char *aliases[3];
    const char *summary;
} cli_group;

extern const cli_flag cli_flags[F_NFLAGS];
extern const cli_cmd cli_cmds[];
extern const size_t cli_ncmds;
extern const cli_group cli_groups[];
extern const size_t cli_ngroups;

/* The exit codes and what each means (--help and the manual page print them). */
typedef struct {
    int code;
    const char *meaning;
} cli_exit_code;
extern const cli_exit_code cli_exit_codes[];
extern const size_t cli_nexit_codes;

/* The parsed command line and the session. */
struct cli {
    const cli_cmd *cmd;
    const char *val[F_NFLAGS]; /* flag values (borrowed from argv or the environment) */
    bool set[F_NFLAGS];        /* given on the command line */
    const char *args[CLI_MAX_ARGS];
    int nargs;
    const char *ns;       /* namespace, when the command needs one */
    const char *endpoint; /* as given (flag, SHARDZ_ENDPOINT or the default) */
    bool json;
    long timeout_ms;
    shardz_client *client;
    volatile sig_atomic_t interrupted; /* SIGINT seen (watch, events --follow) */
};

/* ---- main.c ------------------------------------------------------------------------------ */

/* Prints "error: <message>", a blank line and the command's usage to stderr; returns
 * CLI_EUSAGE. */
int cli_usage_error(const cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Installs the SIGINT handler that cancels the client's call and sets c->interrupted (for the
 * commands that run until Ctrl-C). */
void cli_catch_sigint(cli *c);

/* ---- spec.c: flag values ----------------------------------------------------------------- */

/* An integer flag within [lo, hi]: 0 with *out set, or the usage error's exit code. *out is
 * untouched when the flag is absent. */
int cli_flag_int(const cli *c, int f, long long lo, long long hi, long long *out);
/* A boolean flag value: "true"/"false"/"1"/"0"/"yes"/"no"; an absent value (--x) is true. */
int cli_flag_bool(const cli *c, int f, bool *out);
/* A duration flag ("250ms", "10s", "2m", or seconds) within [lo_ms, hi_ms], in ms. */
int cli_flag_duration(const cli *c, int f, long lo_ms, long hi_ms, long *out);
int cli_parse_duration(const char *s, long *out_ms);

/* ---- request.c --------------------------------------------------------------------------- */

/* Sends method to path with body (NULL for none; borrowed), and parses the reply. CLI_OK with
 * *reply (owned by the caller: json_decref) and, when raw is not NULL, the body text (free()).
 * Otherwise prints the problem ("error: CODE: message", or "cannot reach the coordinator at
 * HOST:PORT") and returns CLI_ESERVER or CLI_EUNREACHABLE; with interrupted set and the call
 * cancelled, returns CLI_OK with *reply NULL. */
int cli_call(cli *c, const char *method, const char *path, const json_t *body, json_t **reply,
             char **raw);
/* The same, for a command whose --json output is the reply itself: prints the body with --json
 * and hands *reply over only in human mode (NULL after a --json print). */
int cli_call_show(cli *c, const char *method, const char *path, const json_t *body, json_t **reply);
/* Formats "/v1/namespaces/<ns>" + suffix into buf; suffix may be "". */
void cli_ns_path(const cli *c, char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prints "error: CODE: message" to stderr and returns CLI_ESERVER (client-side findings that
 * read like the server's, e.g. no move in flight for a partition). */
int cli_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints text and a newline unless it ends in one. */
void cli_print_text(const char *text);
/* Prints j as one compact JSON document and a newline. */
void cli_print_json(const json_t *j);

/* ---- output.c ---------------------------------------------------------------------------- */

/* An aligned table: rows of ncols strings (copied), printed with two spaces between columns. */
typedef struct {
    size_t ncols;
    size_t nrows, cap;
    char **cells; /* (nrows + 1) * ncols: the header first */
} cli_table;

void cli_table_init(cli_table *t, size_t ncols, const char *const *headers);
/* Adds a row of t->ncols strings (NULL prints as "-"). */
void cli_table_add(cli_table *t, const char *const *cells);
void cli_table_print(const cli_table *t, FILE *f);
void cli_table_free(cli_table *t);

/* A JSON value as text: strings raw, null or absent "-", numbers and booleans as JSON, arrays
 * of scalars joined with ",", objects "k=v,k=v", longer ones cut at len. Returns buf. */
const char *cli_fmt(const json_t *v, char *buf, size_t len);
/* A wall-clock time in ms since the epoch as ISO 8601 UTC ("2026-12-06T20:40:45.123Z"); other
 * values as cli_fmt. */
const char *cli_fmt_time(const json_t *v, char *buf, size_t len);
/* The text of obj[key] (as cli_fmt) in buf. */
const char *cli_field(const json_t *obj, const char *key, char *buf, size_t len);
/* "key: value" lines for each member of obj, aligned, except those named in skip (NULL-
 * terminated, may be NULL). */
void cli_print_fields(const json_t *obj, const char *const *skip);
/* Milliseconds as "850ms", "12.3s", "4m05s", "2h03m". */
const char *cli_fmt_ms(long long ms, char *buf, size_t len);
/* A table of moves (PARTITION SLOT FROM TO REASON; with_flight adds the states, generation and
 * age of a move in flight) from a moves array (cmd_task.c). */
void cli_print_moves(const json_t *moves, bool with_flight);
/* A replica table (SLOT NODE ADDRESS ROLE STATE GENERATION MOVING_TO) from a replicas array. */
void cli_print_replicas(const json_t *replicas);

/* Memory for the tool: aborts with a message when out of memory. */
void *cli_xcalloc(size_t n, size_t size);
char *cli_xstrdup(const char *s);

/* ---- commands ---------------------------------------------------------------------------- */

int cmd_ns_create(cli *c);
int cmd_ns_list(cli *c);
int cmd_ns_show(cli *c);
int cmd_ns_delete(cli *c);
int cmd_ns_set(cli *c);
int cmd_node_list(cli *c);
int cmd_node_show(cli *c);
int cmd_node_drain(cli *c);
int cmd_node_stoppable(cli *c);
int cmd_part_history(cli *c);
int cmd_node_undrain(cli *c);
int cmd_part_list(cli *c);
int cmd_part_show(cli *c);
int cmd_part_move(cli *c);
int cmd_where(cli *c);
int cmd_plan(cli *c);
int cmd_rebalance(cli *c);
int cmd_task_list(cli *c);
int cmd_task_show(cli *c);
int cmd_task_cancel(cli *c);
int cmd_range_list(cli *c);
int cmd_range_split(cli *c);
int cmd_range_merge(cli *c);
int cmd_range_tasks(cli *c);
int cmd_events(cli *c);
int cmd_watch(cli *c);
int cmd_status(cli *c);
int cmd_completion(cli *c);
int cmd_complete_words(cli *c);
/* cmd_man.c: the shardzctl(1) manual page (hidden __man) */
int cmd_man(cli *c);

#endif
