/* shardzctl's human output: aligned tables, JSON values as short text, "key: value" blocks,
 * durations, and the replica table several commands share. Everything goes to stdout; cells
 * are copied, so callers may format into stack buffers. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

void *cli_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n != 0 ? n : 1, size != 0 ? size : 1);

    if (p == NULL) {
        fprintf(stderr, "error: out of memory\n");
        exit(CLI_ESERVER);
    }
    return p;
}

char *cli_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = cli_xcalloc(n, 1);

    memcpy(p, s, n);
    return p;
}

/* ---- tables ------------------------------------------------------------------------------ */

void cli_table_init(cli_table *t, size_t ncols, const char *const *headers)
{
    t->ncols = ncols;
    t->nrows = 0;
    t->cap = 16;
    t->cells = cli_xcalloc(t->cap * ncols, sizeof *t->cells);
    for (size_t i = 0; i < ncols; i++) {
        t->cells[i] = cli_xstrdup(headers[i]);
    }
}

void cli_table_add(cli_table *t, const char *const *cells)
{
    size_t at;

    if (t->nrows + 2 > t->cap) {
        char **n = cli_xcalloc(t->cap * 2 * t->ncols, sizeof *n);
        memcpy(n, t->cells, (t->nrows + 1) * t->ncols * sizeof *n);
        free(t->cells);
        t->cells = n;
        t->cap *= 2;
    }
    t->nrows++;
    at = t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        t->cells[at + i] = cli_xstrdup(cells[i] != NULL && cells[i][0] != '\0' ? cells[i] : "-");
    }
}

void cli_table_print(const cli_table *t, FILE *f)
{
    size_t *w = cli_xcalloc(t->ncols, sizeof *w);

    for (size_t r = 0; r <= t->nrows; r++) {
        for (size_t i = 0; i < t->ncols; i++) {
            size_t n = strlen(t->cells[r * t->ncols + i]);
            if (n > w[i]) {
                w[i] = n;
            }
        }
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (size_t i = 0; i < t->ncols; i++) {
            const char *s = t->cells[r * t->ncols + i];
            if (i + 1 == t->ncols) {
                fprintf(f, "%s\n", s);
            } else {
                fprintf(f, "%-*s  ", (int)w[i], s);
            }
        }
    }
    free(w);
}

void cli_table_free(cli_table *t)
{
    if (t->cells == NULL) {
        return;
    }
    for (size_t i = 0; i < (t->nrows + 1) * t->ncols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    t->cells = NULL;
}

/* ---- values ------------------------------------------------------------------------------ */

static void fmt_scalar(const json_t *v, char *buf, size_t len)
{
    if (v == NULL) {
        snprintf(buf, len, "-");
        return;
    }
    switch (json_typeof(v)) {
    case JSON_STRING:
        snprintf(buf, len, "%s", json_string_value(v));
        break;
    case JSON_INTEGER:
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        snprintf(buf, len, "%g", json_real_value(v));
        break;
    case JSON_TRUE:
        snprintf(buf, len, "true");
        break;
    case JSON_FALSE:
        snprintf(buf, len, "false");
        break;
    default:
        snprintf(buf, len, "-");
        break;
    }
}

static bool is_scalar(const json_t *v)
{
    return !json_is_object(v) && !json_is_array(v);
}

/* Appends s to buf (len bytes, holding n); false when cut. */
static bool append(char *buf, size_t len, size_t *n, const char *s)
{
    int w = snprintf(buf + *n, len - *n, "%s", s);

    if (w < 0 || (size_t)w >= len - *n) {
        *n = len - 1;
        return false;
    }
    *n += (size_t)w;
    return true;
}

/* Scalars joined with ","; an array holding objects or arrays as compact JSON. */
static void fmt_array(const json_t *v, char *buf, size_t len)
{
    char item[256];
    size_t n = 0;
    size_t i;
    const json_t *e;

    json_array_foreach(v, i, e)
    {
        if (!is_scalar(e)) {
            char *s = json_dumps(v, JSON_COMPACT);
            snprintf(buf, len, "%s", s != NULL ? s : "?");
            free(s);
            return;
        }
        fmt_scalar(e, item, sizeof item);
        if ((i > 0 && !append(buf, len, &n, ",")) || !append(buf, len, &n, item)) {
            return;
        }
    }
}

/* "k=v,k=v" (nested values as "..."). */
static void fmt_object(const json_t *v, char *buf, size_t len)
{
    char item[256];
    char kv[300];
    size_t n = 0;
    bool first = true;
    const char *k;
    const json_t *e;

    json_object_foreach((json_t *)v, k, e)
    {
        fmt_scalar(e, item, sizeof item);
        snprintf(kv, sizeof kv, "%s%s=%s", first ? "" : ",", k, is_scalar(e) ? item : "...");
        first = false;
        if (!append(buf, len, &n, kv)) {
            return;
        }
    }
}

#define WALL_MS_MIN 1000000000000LL /* 2001: smaller times are not wall-clock times */

const char *cli_fmt_time(const json_t *v, char *buf, size_t len)
{
    long long ms = json_integer_value(v);
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    if (!json_is_integer(v) || ms < WALL_MS_MIN || gmtime_r(&secs, &tm) == NULL) {
        return cli_fmt(v, buf, len);
    }
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
    return buf;
}

const char *cli_fmt(const json_t *v, char *buf, size_t len)
{
    buf[0] = '\0';
    if (v == NULL || is_scalar(v)) {
        fmt_scalar(v, buf, len);
    } else if (json_is_array(v)) {
        fmt_array(v, buf, len);
    } else {
        fmt_object(v, buf, len);
    }
    if (buf[0] == '\0') {
        snprintf(buf, len, "-"); /* "", [] and {} */
    }
    return buf;
}
const char *cli_field(const json_t *obj, const char *key, char *buf, size_t len)
{
    return cli_fmt(json_object_get(obj, key), buf, len);
}

static bool skipped(const char *key, const char *const *skip)
{
    for (size_t i = 0; skip != NULL && skip[i] != NULL; i++) {
        if (strcmp(skip[i], key) == 0) {
            return true;
        }
    }
    return false;
}

void cli_print_fields(const json_t *obj, const char *const *skip)
{
    const char *k;
    const json_t *v;
    int width = 0;
    char buf[1024];

    json_object_foreach((json_t *)obj, k, v)
    {
        if (!skipped(k, skip) && (int)strlen(k) > width) {
            width = (int)strlen(k);
        }
    }
    json_object_foreach((json_t *)obj, k, v)
    {
        if (!skipped(k, skip)) {
            printf("%s:%*s %s\n", k, width - (int)strlen(k), "", cli_fmt(v, buf, sizeof buf));
        }
    }
}

const char *cli_fmt_ms(long long ms, char *buf, size_t len)
{
    if (ms < 0) {
        snprintf(buf, len, "-");
    } else if (ms < 1000) {
        snprintf(buf, len, "%lldms", ms);
    } else if (ms < 60000) {
        snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
    } else if (ms < 3600000) {
        snprintf(buf, len, "%lldm%02llds", ms / 60000, ms / 1000 % 60);
    } else {
        snprintf(buf, len, "%lldh%02lldm", ms / 3600000, ms / 60000 % 60);
    }
    return buf;
}

void cli_print_replicas(const json_t *replicas)
{
    static const char *const head[] = {"SLOT",  "NODE",       "ADDRESS",  "ROLE",
                                       "STATE", "GENERATION", "MOVING_TO"};
    static const char *const keys[] = {"slot",  "node",       "address",  "role",
                                       "state", "generation", "moving_to"};
    enum { NCOL = sizeof head / sizeof head[0] };
    char buf[NCOL][300];
    const char *cells[NCOL];
    cli_table t;
    size_t i;
    const json_t *r;

    if (json_array_size(replicas) == 0) {
        printf("no replicas\n");
        return;
    }
    cli_table_init(&t, NCOL, head);
    json_array_foreach(replicas, i, r)
    {
        for (size_t k = 0; k < NCOL; k++) {
            cells[k] = cli_field(r, keys[k], buf[k], sizeof buf[k]);
        }
        cli_table_add(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}
