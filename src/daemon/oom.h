/* The daemon's one policy for running out of memory: say so and abort (a coordinator that
 * silently dropped a replica from an assignment, or a record from a batch, would be worse).
 * Libraries return SHARDZ_ENOMEM instead; this is for shardzd only. Any thread. */
#ifndef SZD_OOM_H
#define SZD_OOM_H

#include <stddef.h>

/* Prints "shardzd: out of memory" and aborts. */
void szd_oom(void) __attribute__((noreturn));
/* malloc / calloc / realloc that never return NULL (szd_oom instead). jansson allocates through
 * szd_xmalloc too (main.c), so a failed json_pack cannot drop part of a message. */
void *szd_xmalloc(size_t size);
void *szd_xcalloc(size_t n, size_t size);
void *szd_xrealloc(void *p, size_t size);

#endif
