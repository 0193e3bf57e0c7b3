/* The daemon's out-of-memory policy (oom.h). Any thread. */
#include <stdio.h>
#include <stdlib.h>

#include "daemon/oom.h"

void szd_oom(void)
{
    static const char msg[] = "shardzd: out of memory\n";
    fwrite(msg, 1, sizeof msg - 1, stderr);
    abort();
}

void *szd_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p) {
        szd_oom();
    }
    return p;
}

void *szd_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        szd_oom();
    }
    return p;
}

void *szd_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q) {
        szd_oom();
    }
    return q;
}
