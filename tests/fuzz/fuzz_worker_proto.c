/* libFuzzer target: the worker's side of the protocol (src/lib/proto.c). Untrusted bytes from
 * the network as a ping body and as an assignment body (full or delta) addressed to ns "kv",
 * node "w1"; a parsed assignment must be sorted without duplicates, each replica found by its
 * id, a delta's removed ids sorted, unique and not listed, and everything freed whole.
 * Single-threaded: libFuzzer's thread calls it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/lib_int.h"
#include "shardz/worker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    szl_ping p;
    szl_assign a;
    char msg[256];

    if (size > SHARDZ_WORKER_MAX_BODY) {
        return 0; /* the listener refuses bigger bodies before parsing */
    }
    (void)szl_parse_ping(body, size, "kv", "w1", &p, msg, sizeof msg);
    memset(&a, 0, sizeof a);
    if (szl_parse_assign(body, size, "kv", "w1", &a, msg, sizeof msg) == 0) {
        for (size_t i = 0; i < a.n; i++) {
            if (i > 0 && strcmp(a.reps[i - 1].partition, a.reps[i].partition) >= 0) {
                abort(); /* promised: sorted by partition id, no duplicates */
            }
            if (szl_assign_find(&a, a.reps[i].partition) != &a.reps[i]) {
                abort();
            }
        }
        /* a delta: base below revision, removed sorted, unique, none of them listed; a full
         * assignment removes nothing */
        if (a.delta ? a.base_revision >= a.revision || a.released : a.nremoved != 0) {
            abort();
        }
        for (size_t i = 0; i < a.nremoved; i++) {
            if ((i > 0 && strcmp(a.removed[i - 1], a.removed[i]) >= 0) ||
                !szl_assign_removes(&a, a.removed[i]) ||
                szl_assign_find(&a, a.removed[i]) != NULL) {
                abort();
            }
        }
        szl_assign_free(&a);
    } else if (a.n != 0 || a.reps != NULL || a.nremoved != 0 || a.removed != NULL) {
        abort(); /* promised: *out is empty on error */
    }
    return 0;
}
