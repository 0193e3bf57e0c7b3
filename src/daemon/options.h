/* shardzd's command line, described once: the option table that the parser (main.c), the
 * environment lookup, --help and the shardzd(8) manual page (--man) all read, so they cannot
 * disagree. Main thread only, at start-up. */
#ifndef SHARDZ_DAEMON_OPTIONS_H
#define SHARDZ_DAEMON_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* One option. Borrowed static strings. */
typedef struct {
    const char *name;    /* the long flag without "--" */
    const char *metavar; /* its value's placeholder ("HOST:PORT"), NULL for a switch */
    const char *env;     /* the environment variable that sets it too, or NULL */
    bool in_config;      /* accepted as "name=value" in a --config file */
    const char *help;    /* one paragraph, no newline, no trailing period */
} szd_option;

extern const szd_option szd_options[];
extern const size_t szd_noptions;

/* The default path of the --config file the packaged service reads. */
#define SZD_CONFIG_PATH "/etc/shardz/shardzd.conf"

/* Prints --help: the usage line and every option, wrapped to 80 columns. */
void szd_options_usage(FILE *f);
/* Prints the shardzd(8) manual page in roff (man(7) macros) for version. */
void szd_options_man(FILE *f, const char *version);

#endif
