/* Small helpers of the shell's plumbing, shared by the lanes and the loop: a worker's JSON reply
 * read from an outgoing request, and a non-blocking pipe for waking another thread's loop.
 * Any thread (each call touches only what it is given). */
#ifndef SZD_WIRE_H
#define SZD_WIRE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct evhttp_request;

/* The reply to an outgoing request as a JSON object (new reference), or NULL: no reply, a
 * status other than 200 (or 409 when conflict_ok), a body empty or over max bytes, or not a
 * JSON object. *code receives the status (0 without a reply). */
json_t *szd_reply_object(struct evhttp_request *req, int *code, size_t max, bool conflict_ok);
/* Opens a pipe, both ends non-blocking and close-on-exec. 0 or -1 (errno set). */
int szd_pipe_open(int p[2]);

#endif
