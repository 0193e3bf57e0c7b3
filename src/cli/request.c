/* shardzctl's requests: one call through libshardz's client, and the mapping of its outcome
 * to what the user sees: the reply parsed as JSON, "error: CODE: message" from an error body
 * (exit 1), or "cannot reach the coordinator at HOST:PORT" (exit 3). Also the path builder and
 * the JSON printers used for --json. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "shardz/error.h"

int cli_error(const char *code, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "error: %s: ", code);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return CLI_ESERVER;
}

void cli_print_text(const char *text)
{
    size_t n = strlen(text);

    fputs(text, stdout);
    if (n == 0 || text[n - 1] != '\n') {
        fputc('\n', stdout);
    }
}

void cli_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);

    if (s == NULL) {
        fprintf(stderr, "error: out of memory\n");
        exit(CLI_ESERVER);
    }
    cli_print_text(s);
    free(s);
}

void cli_ns_path(const cli *c, char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(buf, len, "/v1/namespaces/%s", c->ns);

    if (n < 0 || (size_t)n >= len) {
        buf[0] = '\0';
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf + n, len - (size_t)n, fmt, ap);
    va_end(ap);
}

/* An error reply: the body's code and message, or the status and the start of the text. */
static int print_error_reply(int status, const char *body)
{
    json_t *j = json_loads(body, 0, NULL);
    const char *code = json_string_value(json_object_get(j, "code"));
    const char *msg = json_string_value(json_object_get(j, "message"));
    int rc;

    if (code != NULL) {
        rc = cli_error(code, "%s", msg != NULL ? msg : "(no message)");
    } else {
        char head[200];
        size_t n = strcspn(body, "\r\n");
        snprintf(head, sizeof head, "%.*s", (int)(n < 190 ? n : 190), body);
        rc = cli_error("HTTP", "status %d: %s", status, head[0] != '\0' ? head : "(no body)");
    }
    json_decref(j);
    return rc;
}

int cli_call(cli *c, const char *method, const char *path, const json_t *body, json_t **reply,
             char **raw)
{
    char *text = NULL;
    char *req = NULL;
    json_t *j = NULL;
    json_error_t jerr;
    int status = 0;
    int rc;

    *reply = NULL;
    if (raw != NULL) {
        *raw = NULL;
    }
    if (body != NULL) {
        req = json_dumps(body, JSON_COMPACT);
        if (req == NULL) {
            fprintf(stderr, "error: out of memory\n");
            return CLI_ESERVER;
        }
    }
    rc = shardz_client_call(c->client, method, path, req, &status, &text);
    free(req);
    if (rc == SHARDZ_EBUSY && c->interrupted) {
        return CLI_OK; /* Ctrl-C: the caller stops */
    }
    if (rc == SHARDZ_EIO || rc == SHARDZ_ETIMEDOUT) {
        fprintf(stderr, "error: cannot reach the coordinator at %s: %s\n",
                shardz_client_endpoint(c->client),
                rc == SHARDZ_EIO ? "connection failed" : "timed out");
        return CLI_EUNREACHABLE;
    }
    if (rc == SHARDZ_EINVAL) {
        fprintf(stderr, "error: request path too long: %.80s...\n", path);
        return CLI_EUSAGE;
    }
    if (rc != 0) {
        fprintf(stderr, "error: %s: %s (from %s)\n", shardz_err_name(rc), shardz_strerror(rc),
                shardz_client_endpoint(c->client));
        return CLI_ESERVER;
    }
    if (status < 200 || status > 299) {
        rc = print_error_reply(status, text);
        goto out;
    }
    j = json_loads(text, 0, &jerr);
    if (j == NULL) {
        rc = cli_error("EPROTO", "the reply to %s %s is not JSON: %s", method, path, jerr.text);
        goto out;
    }
    *reply = j;
    if (raw != NULL) {
        *raw = text;
        text = NULL;
    }
    rc = CLI_OK;
out:
    free(text);
    return rc;
}

int cli_call_show(cli *c, const char *method, const char *path, const json_t *body, json_t **reply)
{
    char *raw = NULL;
    int rc = cli_call(c, method, path, body, reply, c->json ? &raw : NULL);

    if (rc == CLI_OK && c->json && raw != NULL) {
        cli_print_text(raw);
        json_decref(*reply);
        *reply = NULL;
    }
    free(raw);
    return rc;
}
