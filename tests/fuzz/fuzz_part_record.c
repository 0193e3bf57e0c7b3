/* libFuzzer target: the assignment record's readers (src/daemon/core/record.c), which read
 * every partition record a coordinator loads from its store or follows as a follower. Input: a
 * record's bytes. Differential: whatever the hand scanner takes, jansson must parse too (as
 * shardzd parses records: json_loadb, no flags), and szd_rec_part_from_json must read exactly
 * the same; neither may crash. Single-threaded: libFuzzer's thread. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly size bytes: a read past it is ASan's to report */
    char *text = malloc(size ? size : 1);
    if (!text) {
        return 0;
    }
    memcpy(text, data, size);
    szd_rec_part *fast = malloc(sizeof *fast), *slow = malloc(sizeof *slow);
    if (!fast || !slow) {
        abort();
    }
    int rc = szd_rec_part_parse(text, size, fast);
    json_t *j = json_loadb(text, size, 0, NULL);
    int jrc = j ? szd_rec_part_from_json(j, slow) : -1;
    if (rc == 0 && (jrc != 0 || !szd_rec_part_same(fast, slow))) {
        abort(); /* the scanner took a record jansson reads otherwise */
    }
    json_decref(j);
    free(fast);
    free(slow);
    free(text);
    return 0;
}
