/* shardzd's option table and the two texts made from it: --help and the shardzd(8) manual
 * page (the build runs `shardzd --man`; `man 8 shardzd` shows the result). Main thread only,
 * at start-up. */
#include "daemon/options.h"

#include <string.h>

const szd_option szd_options[] = {
    {"listen", "HOST:PORT", "SHARDZ_LISTEN", true,
     "where the HTTP API listens: HOST:PORT, [IPV6]:PORT, or :PORT for every interface "
     "(default 127.0.0.1:7557)"},
    {"data", "DIR", "SHARDZ_DATA", true,
     "data directory of the embedded SQLite store (default ./shardz-data)"},
    {"fsync", "full|normal", "SHARDZ_FSYNC", true,
     "SQLite durability: full fsyncs every commit (default), normal only at checkpoints"},
    {"memory", NULL, NULL, false, "keep everything in memory (tests only: nothing survives)"},
    {"store", "etcd://HOST:PORT[,HOST:PORT...][/PREFIX]", "SHARDZ_STORE", true,
     "keep the state in etcd (under /PREFIX/, default /shardz/) and run with other "
     "coordinators: one leads, the others follow"},
    {"advertise", "HOST:PORT", "SHARDZ_ADVERTISE", true,
     "where the other coordinators reach this one (default: --listen)"},
    {"id", "NAME", "SHARDZ_ID", true, "this coordinator's name (default: the advertise address)"},
    {"lease-ttl", "MS", "SHARDZ_LEASE_TTL", true,
     "the leader lease's TTL with etcd in milliseconds (default 5000, at least 2000)"},
    {"max-watches", "N", "SHARDZ_MAX_WATCHES", true,
     "watches parked at once, at most (default 10000; past it a watch gets 409 EBUSY)"},
    {"max-connections", "N", "SHARDZ_MAX_CONNECTIONS", true,
     "client connections held at once, at most (default: half the open-file limit, at most "
     "10000; at the cap the client idle longest is closed)"},
    {"secret", "SECRET", "SHARDZ_SECRET", true,
     "require 'Authorization: Bearer SECRET' on every request; prefer the environment or "
     "secret= in the --config file, which stay out of the process list"},
    {"insecure", NULL, NULL, false, "listen beyond loopback without a secret (refused otherwise)"},
    {"log-level", "LEVEL", "SHARDZ_LOG_LEVEL", true, "error, warn, info or debug (default info)"},
    {"config", "FILE", NULL, false,
     "read key=value lines (# starts a comment) naming the options marked 'config key' here; "
     "the environment and flags win over the file (the packaged service reads " SZD_CONFIG_PATH
     ")"},
    {"routes", NULL, NULL, false, "print the HTTP API's routes (method, path, read|write|local)"},
    {"version", NULL, NULL, false, "print the version and exit"},
    {"man", NULL, NULL, false,
     "print the shardzd(8) manual page in roff (what the build installs)"},
    {"help", NULL, NULL, false, "print this help"},
};
const size_t szd_noptions = sizeof szd_options / sizeof szd_options[0];

static const char szd_summary[] = "the shardz coordinator";
static const char szd_description[] =
    "shardzd decides which node serves which partition replica of each namespace, keeps that "
    "decision in its store (an embedded SQLite database by default, or etcd, where several "
    "coordinators elect a leader), tells every worker its assignment, pings the workers and "
    "re-places the replicas of the ones that die. It serves its HTTP API, the dashboard (at /) "
    "and Prometheus metrics (at /metrics) on one address. Settings come from flags, then the "
    "environment, then an optional --config file; the first that sets a value wins.";

#define SZD_HELP_COL 24   /* where option texts start in --help */
#define SZD_HELP_WIDTH 80 /* --help's line width */

/* Prints text from column col (the cursor is there), wrapped at word boundaries. */
static void print_wrapped(FILE *f, const char *text, int col)
{
    int at = col;
    const char *p = text;
    while (*p) {
        size_t w = strcspn(p, " ");
        if (at > col && at + 1 + (int)w > SZD_HELP_WIDTH) {
            fprintf(f, "\n%*s", col, "");
            at = col;
        } else if (at > col) {
            fputc(' ', f);
            at++;
        }
        fprintf(f, "%.*s", (int)w, p);
        at += (int)w;
        p += w;
        p += strspn(p, " ");
    }
    fputc('\n', f);
}

void szd_options_usage(FILE *f)
{
    fprintf(f, "usage: shardzd [options]\nshardzd: %s (man 8 shardzd).\n\n", szd_summary);
    for (size_t i = 0; i < szd_noptions; i++) {
        const szd_option *o = &szd_options[i];
        char head[128], text[512];
        int n = snprintf(head, sizeof head, "  --%s%s%s", o->name, o->metavar ? " " : "",
                         o->metavar ? o->metavar : "");
        snprintf(text, sizeof text, "%s%s%s%s%s%s", o->help, o->env || o->in_config ? " (" : "",
                 o->env ? "env " : "", o->env ? o->env : "",
                 o->env && o->in_config ? ", config key"
                 : o->in_config         ? "config key"
                                        : "",
                 o->env || o->in_config ? ")" : "");
        if (n + 1 < SZD_HELP_COL) {
            fprintf(f, "%-*s", SZD_HELP_COL, head);
        } else {
            fprintf(f, "%s\n%*s", head, SZD_HELP_COL, "");
        }
        print_wrapped(f, text, SZD_HELP_COL);
    }
}

/* Writes s as roff text: '-' as \-, '\' as \e, and a line never starts with '.' or '\''. */
static void roff(FILE *f, const char *s)
{
    if (*s == '.' || *s == '\'') {
        fputs("\\&", f);
    }
    for (; *s; s++) {
        if (*s == '-') {
            fputs("\\-", f);
        } else if (*s == '\\') {
            fputs("\\e", f);
        } else {
            fputc(*s, f);
        }
    }
}

void szd_options_man(FILE *f, const char *version)
{
    fprintf(f,
            ".\\\" shardzd(8), generated by 'shardzd --man' from src/daemon/options.c.\n"
            ".TH SHARDZD 8 \"\" \"shardz %s\" \"System Administration\"\n"
            ".SH NAME\nshardzd \\- ",
            version);
    roff(f, szd_summary);
    fputs("\n.SH SYNOPSIS\n.B shardzd\n.RI [ options ]\n.SH DESCRIPTION\n", f);
    roff(f, szd_description);
    fputs("\n.SH OPTIONS\n", f);
    for (size_t i = 0; i < szd_noptions; i++) {
        const szd_option *o = &szd_options[i];
        fputs(".TP\n.B \\-\\-", f);
        roff(f, o->name);
        if (o->metavar) {
            fputs(" \\fI", f);
            roff(f, o->metavar);
            fputs("\\fR", f);
        }
        fputc('\n', f);
        roff(f, o->help);
        fputs(".", f);
        if (o->env) {
            fputs(" Environment: \\fB", f);
            roff(f, o->env);
            fputs("\\fR.", f);
        }
        if (o->in_config) {
            fputs(" Config key: \\fB", f);
            roff(f, o->name);
            fputs("\\fR.", f);
        }
        fputc('\n', f);
    }
    fputs(".SH ENVIRONMENT\n", f);
    for (size_t i = 0; i < szd_noptions; i++) {
        if (szd_options[i].env) {
            fputs(".TP\n.B ", f);
            roff(f, szd_options[i].env);
            fputs("\nas \\fB\\-\\-", f);
            roff(f, szd_options[i].name);
            fputs("\\fR\n", f);
        }
    }
    fputs(".SH FILES\n.TP\n.I " SZD_CONFIG_PATH "\n"
          "The packaged service's configuration (key=value lines, see \\fB\\-\\-config\\fR); "
          "keep the secret there, readable by root and the shardz group only.\n"
          ".TP\n.I /var/lib/shardz\n"
          "The packaged service's data directory (systemd's StateDirectory): the SQLite "
          "store.\n"
          ".SH SIGNALS\nSIGTERM and SIGINT shut the coordinator down cleanly.\n"
          ".SH EXIT STATUS\n0 after a clean shutdown, 1 when it cannot start (store, "
          "address), 2 on a bad command line or configuration.\n"
          ".SH SEE ALSO\n.BR shardzctl (1),\n.BR systemd.exec (5)\n",
          f);
}
