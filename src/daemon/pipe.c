/* A non-blocking pipe for waking another thread's loop (wire.h). Any thread. */
#include <fcntl.h>
#include <unistd.h>

#include "daemon/wire.h"

int szd_pipe_open(int p[2])
{
    if (pipe(p) != 0) {
        return -1;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
    }
    return 0;
}
