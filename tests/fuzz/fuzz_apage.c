/* libFuzzer target: an assignment page's text as a load and a follower read it from the store
 * (src/daemon/core/apage.c: the header of either format, the lines, a line's plain id). Input:
 * the page's bytes. Must never crash or read outside the input; a header accepted is the one
 * szd_apage_head writes for what it read (one spelling per page), its lengths in range; every
 * line lies inside the text, holds no newline, and the reading always moves on; an id taken is
 * inside its line and holds no quote or backslash. Single-threaded: libFuzzer's thread. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/apage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    uint64_t w = 0;
    size_t off = 0, raw = 0;
    if (szd_apage_read_head(text, size, &w, &off, &raw) != 0) {
        return 0;
    }
    char head[SZD_APAGE_HEAD_MAX];
    size_t hn = szd_apage_head(head, w, raw);
    if (off > size || raw > SZD_APAGE_MAX_BYTES || hn != off || memcmp(head, text, hn) != 0) {
        abort(); /* a header read otherwise than it is written */
    }
    if (raw != 0) {
        return 0; /* format 2: a zlib stream follows (inflated by the shell, bounded by raw) */
    }
    const char *line, *id;
    size_t n, idn, lines = 0;
    while (szd_apage_next(text, size, &off, &line, &n)) {
        if (line < text || n == 0 || line + n > text + size || off > size ||
            memchr(line, '\n', n) != NULL || ++lines > size) {
            abort(); /* a line outside the text, or a read that does not move on */
        }
        if (szd_apage_line_id(line, n, &id, &idn) &&
            (id <= line || idn == 0 || id + idn > line + n || memchr(id, '"', idn) ||
             memchr(id, '\\', idn))) {
            abort(); /* an id outside its line, or one that is not plain */
        }
    }
    if (off != size) {
        abort(); /* the reading stopped before the end */
    }
    return 0;
}
