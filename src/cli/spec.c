/* shardzctl's commands and flags, described once: the parser, every --help text and the bash
 * completion are generated from these tables, so they cannot disagree. Also the checks that
 * turn flag strings into numbers, booleans and durations (a bad value is a usage error). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

const cli_flag cli_flags[F_NFLAGS] = {
    [F_ENDPOINT] = {"endpoint", 0, true, "HOST:PORT",
                    "coordinator address (env SHARDZ_ENDPOINT; default " CLI_DEFAULT_ENDPOINT ")"},
    [F_SECRET] = {"secret", 0, true, "SECRET", "shared secret (env SHARDZ_SECRET)"},
    [F_JSON] = {"json", 0, false, NULL, "print the coordinator's JSON instead of a table"},
    [F_TIMEOUT] = {"timeout", 0, true, "DURATION",
                   "per-request timeout: 500ms, 10s, 1m (default 10s)"},
    [F_NAMESPACE] = {"namespace", 'n', true, "NS", "namespace (env SHARDZ_NAMESPACE)"},
    [F_HELP] = {"help", 'h', false, NULL, "show help for the command"},
    [F_SHARDER] = {"sharder", 0, true, "KIND", "replica, hash or range (default replica)"},
    [F_REPLICAS] = {"replicas", 0, true, "N", "replicas per partition, 1-16 (default 1)"},
    [F_ROLES] = {"roles", 0, false, NULL,
                 "slot 0 is the primary, the others secondaries (--roles=false: none)"},
    [F_CONSISTENCY] = {"consistency", 0, true, "MODE", "available or strict (default available)"},
    [F_PING] = {"ping-interval-ms", 0, true, "MS", "ping period, 10-60000 (default 200)"},
    [F_DEAD] = {"dead-after-ms", 0, true, "MS",
                "a node is dead after this long without a ping reply (default 800)"},
    [F_LEASE] = {"lease-ms", 0, true, "MS", "strict mode lease (default 1000)"},
    [F_DIMS] = {"dimensions", 0, true, "A,B",
                "load dimensions, 1-8 names; the first is balanced on (default load)"},
    [F_PARTS] = {"partitions", 0, true, "N|A,B,C",
                 "a count N (ids 0..N-1) or a list of partition ids (default 0)"},
    [F_SLOTS] = {"slots", 0, true, "N",
                 "hash only: slot space, a power of two in [64, 1048576] (default 16384)"},
    [F_SLOT] = {"slot", 0, true, "N", "replica slot, 0-15 (default 0)"},
    [F_TO] = {"to", 0, true, "NODE", "the node to move the replica to (required)"},
    [F_SINCE] = {"since", 0, true, "SEQ", "events after this sequence number (default 0)"},
    [F_LIMIT] = {"limit", 0, true, "N",
                 "at most N events per request, 1-10000 (coordinator default 1000)"},
    [F_FOLLOW] = {"follow", 'f', false, NULL, "keep polling for new events until Ctrl-C"},
    [F_INTERVAL] = {"interval", 0, true, "DURATION", "--follow poll period (default 1s)"},
    [F_COUNT] = {"count", 0, true, "N", "exit after N new revisions (default: until Ctrl-C)"},
    [F_BALANCER] = {"balancer", 0, true, "load",
                    "load: one round of the load balancer (reported loads, budget, cooldown) "
                    "instead of the placement"},
    [F_AT] = {"at", 0, true, "KEY", "split bound, inside the range (default: its middle)"},
    [F_ZONE] = {"zone", 0, true, "ZONE", "drain every node of this zone instead of one node"},
    [F_REASON] = {"reason", 0, true, "TEXT",
                  "why: shown with the node, in events and on the dashboard (at most 200 bytes)"},
    [F_TRANSFER] = {"transfer-timeout-ms", 0, true, "MS",
                    "state transfer: how long routing waits for a new owner not ready yet, "
                    "0-3600000 (default 30000)"},
    [F_DRY_RUN] = {"dry-run", 0, false, NULL,
                   "show the config and the moves the change would make; nothing changes"},
};

const cli_group cli_groups[] = {
    {"namespace", {"ns", "namespaces", NULL}, "create, list, show, change and delete namespaces"},
    {"node", {"nodes", NULL, NULL}, "list, show, drain and undrain nodes; may they stop now?"},
    {"partition", {"partitions", "part", NULL}, "list, show and move partitions"},
    {"task", {"tasks", "moves", NULL}, "the moves in flight: list, show, cancel"},
    {"range", {"ranges", NULL, NULL}, "key ranges of a range namespace: list, split, merge, tasks"},
};
const size_t cli_ngroups = sizeof cli_groups / sizeof cli_groups[0];

static const int no_flags[] = {-1};
static const int create_flags[] = {F_SHARDER, F_REPLICAS, F_ROLES, F_CONSISTENCY, F_PING,  F_DEAD,
                                   F_LEASE,   F_TRANSFER, F_DIMS,  F_PARTS,       F_SLOTS, -1};
static const int move_flags[] = {F_SLOT, F_TO, -1};
static const int slot_flags[] = {F_SLOT, -1};
static const int events_flags[] = {F_SINCE, F_LIMIT, F_FOLLOW, F_INTERVAL, -1};
static const int watch_flags[] = {F_COUNT, -1};
static const int balancer_flags[] = {F_BALANCER, -1};
static const int at_flags[] = {F_AT, -1};
static const int drain_flags[] = {F_ZONE, F_REASON, -1};
static const int set_flags[] = {F_DRY_RUN, -1};

const cli_cmd cli_cmds[] = {
    {"namespace", "create", "NAME", 1, 1, false, create_flags, cmd_ns_create, "create a namespace",
     "Flags left out take the coordinator's defaults (docs/PROTOCOL.md section 3)."},
    {"namespace", "list", "", 0, 0, false, no_flags, cmd_ns_list, "list the namespaces", NULL},
    {"namespace", "show", "[NAME]", 0, 1, false, no_flags, cmd_ns_show,
     "show a namespace's config and health", "NAME defaults to -n/--namespace."},
    {"namespace", "set", "[NAME] FIELD=VALUE...", 1, CLI_MAX_ARGS, false, set_flags, cmd_ns_set,
     "change a namespace's live configuration (PATCH)",
     "Fields as the API names them (docs/PROTOCOL.md section 3.1): replicas, ping_interval_ms,\n"
     "dead_after_ms, lease_ms, load_tau_ms, balance (a JSON object, replaced whole),\n"
     "min_available, max_moves_in_flight, frozen, startup_grace_ms, min_nodes,\n"
     "transfer_timeout_ms. A VALUE is read\n"
     "as JSON (3, true, {\"band\":0.1}) and otherwise taken as a string. NAME defaults to\n"
     "-n/--namespace. A lower replicas empties slots through the drain gate; --dry-run first."},
    {"namespace", "delete", "[NAME]", 0, 1, false, no_flags, cmd_ns_delete,
     "delete a namespace (its workers are told to delete everything)",
     "NAME defaults to -n/--namespace."},
    {"node", "list", "", 0, 0, true, no_flags, cmd_node_list, "list the nodes", NULL},
    {"node", "show", "ID", 1, 1, true, no_flags, cmd_node_show,
     "show a node and the replicas it holds", NULL},
    {"node", "drain", "[ID]", 0, 1, true, drain_flags, cmd_node_drain,
     "move every replica off a node, or off every node of --zone (they stay registered)",
     "The node becomes draining; its replicas move away with reason drain, through the drain\n"
     "gate: no partition drops below its namespace's min_available, at most\n"
     "max_moves_in_flight at once; moves held back wait in 'shardzctl task list'. Give ID or\n"
     "--zone, not both. Follow them with 'shardzctl task list' or 'shardzctl watch'."},
    {"node", "stoppable", "ID...", 1, CLI_MAX_ARGS, false, no_flags, cmd_node_stoppable,
     "which of these nodes may stop now, together, and why not",
     "Asks across every namespace the nodes serve: a node may stop when, with the ones before\n"
     "it, every partition keeps its namespace's min_available replicas serving, and it is in\n"
     "their zone. Dead nodes count as gone. Exits 4 when some node may not stop now."},
    {"node", "undrain", "ID", 1, 1, true, no_flags, cmd_node_undrain,
     "make a drained node alive again: it is eligible for replicas again", NULL},
    {"partition", "list", "", 0, 0, true, no_flags, cmd_part_list,
     "list the partitions and their replicas", NULL},
    {"partition", "show", "PARTITION", 1, 1, true, no_flags, cmd_part_show,
     "show a partition's replicas", NULL},
    {"partition", "move", "PARTITION", 1, 1, true, move_flags, cmd_part_move,
     "move one replica of a partition to another node", NULL},
    {"partition", "history", "PARTITION", 1, 1, true, no_flags, cmd_part_history,
     "why did it move: the partition's last 32 moves, oldest first",
     "Time (UTC), slot, from, to, reason and generation of each move; kept in the store."},
    {"where", NULL, "KEY", 1, 1, true, no_flags, cmd_where,
     "the partition and nodes serving a key (hash and range namespaces)", NULL},
    {"plan", NULL, "", 0, 0, true, balancer_flags, cmd_plan,
     "dry run of the balancer: the moves it would start and why", "Nothing changes."},
    {"rebalance", NULL, "", 0, 0, true, balancer_flags, cmd_rebalance,
     "run the balancer now and print the moves it started", NULL},
    {"task", "list", "", 0, 0, true, no_flags, cmd_task_list, "list the moves in flight", NULL},
    {"task", "show", "PARTITION", 1, 1, true, slot_flags, cmd_task_show,
     "show the moves in flight of one partition",
     "Without --slot every slot of the partition is shown. Exits 1 (ENOENT) when none is in\n"
     "flight."},
    {"task", "cancel", "PARTITION", 1, 1, true, slot_flags, cmd_task_cancel,
     "cancel a move in flight: the slot goes back to the node still serving it", NULL},
    {"range", "list", "", 0, 0, true, no_flags, cmd_range_list,
     "the routed key ranges in key order, with their replicas", NULL},
    {"range", "split", "PARTITION", 1, 1, true, at_flags, cmd_range_split,
     "split a range in two at --at KEY (or its middle)",
     "Starts a split task (docs/PROTOCOL.md section 9); follow it with 'shardzctl range tasks'."},
    {"range", "merge", "A B", 2, 2, true, no_flags, cmd_range_merge,
     "merge two neighbouring ranges into one", "Starts a merge task."},
    {"range", "tasks", "", 0, 0, true, no_flags, cmd_range_tasks,
     "the split and merge tasks: in flight and recently done", NULL},
    {"events", NULL, "", 0, 0, true, events_flags, cmd_events,
     "recent moves and state changes with their reasons, oldest first",
     "With --follow it polls every --interval and prints new events until Ctrl-C; with --json\n"
     "and --follow each event is printed as one JSON line."},
    {"watch", NULL, "", 0, 0, true, watch_flags, cmd_watch,
     "print every change of nodes and routing as it happens, one line per change",
     "Long-polls the namespace's watch; stops on Ctrl-C or after --count revisions. With\n"
     "--json each new state is printed as one JSON line."},
    {"status", NULL, "", 0, 0, false, no_flags, cmd_status,
     "the coordinator: role, store, fsync mode, uptime", NULL},
    {"completion", NULL, "bash", 1, 1, false, no_flags, cmd_completion,
     "print a bash completion script", "Load it with: source <(shardzctl completion bash)"},
    /* Hidden, for the completion script: ids for the word being completed. */
    {"__complete", NULL, "namespaces|nodes", 1, 1, false, no_flags, cmd_complete_words, NULL, NULL},
    /* Hidden, for the build: the shardzctl(1) manual page from these tables (cmd_man.c). */
    {"__man", NULL, "", 0, 0, false, no_flags, cmd_man, NULL, NULL},
};
const size_t cli_ncmds = sizeof cli_cmds / sizeof cli_cmds[0];

const cli_exit_code cli_exit_codes[] = {
    {CLI_OK, "ok"},
    {CLI_ESERVER, "the coordinator answered with an error"},
    {CLI_EUSAGE, "bad usage (nothing sent)"},
    {CLI_EUNREACHABLE, "the coordinator could not be reached"},
    {CLI_ENOTSTOPPABLE, "node stoppable: some of the nodes may not stop now"},
};
const size_t cli_nexit_codes = sizeof cli_exit_codes / sizeof cli_exit_codes[0];

int cli_flag_int(const cli *c, int f, long long lo, long long hi, long long *out)
{
    const char *s = c->val[f];
    char *end = NULL;
    long long v;

    if (s == NULL) {
        return 0;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (s[0] == '\0' || end == NULL || *end != '\0' || errno != 0 || v < lo || v > hi) {
        return cli_usage_error(c, "--%s: '%s' is not an integer in [%lld, %lld]", cli_flags[f].name,
                               s, lo, hi);
    }
    *out = v;
    return 0;
}

int cli_flag_bool(const cli *c, int f, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    const char *s = c->val[f];

    if (!c->set[f]) {
        return 0;
    }
    if (s == NULL) {
        *out = true;
        return 0;
    }
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return cli_usage_error(c, "--%s: '%s' is not true or false", cli_flags[f].name, s);
}

int cli_parse_duration(const char *s, long *out_ms)
{
    char *end = NULL;
    double v;
    double scale;

    if (s == NULL || s[0] < '0' || s[0] > '9') {
        return -1;
    }
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s) {
        return -1;
    }
    if (strcmp(end, "ms") == 0) {
        scale = 1;
    } else if (strcmp(end, "s") == 0 || *end == '\0') {
        scale = 1000;
    } else if (strcmp(end, "m") == 0) {
        scale = 60000;
    } else if (strcmp(end, "h") == 0) {
        scale = 3600000;
    } else {
        return -1;
    }
    v *= scale;
    if (v > (double)LONG_MAX / 2) {
        return -1;
    }
    *out_ms = (long)v;
    return 0;
}

int cli_flag_duration(const cli *c, int f, long lo_ms, long hi_ms, long *out)
{
    long ms = 0;

    if (c->val[f] == NULL) {
        return 0;
    }
    if (cli_parse_duration(c->val[f], &ms) != 0 || ms < lo_ms || ms > hi_ms) {
        return cli_usage_error(c, "--%s: '%s' is not a duration in [%ldms, %lds] (e.g. 500ms, 10s)",
                               cli_flags[f].name, c->val[f], lo_ms, hi_ms / 1000);
    }
    *out = ms;
    return 0;
}
