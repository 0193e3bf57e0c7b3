/* A hash namespace's slot table as the store keeps it (docs/STORE.md 5, "The slot table"):
 * pages of a fixed number of slots, each page's runs as text lines "<lo> <hi> <partition>\n",
 * and the manifest the config record carries (the epoch of every page: which page keys make the
 * committed table). Pure: memory in, memory out (malloc), any thread; the shell (persist.c,
 * ns.c) writes and reads the keys. */
#ifndef SZD_CORE_SLOT_PAGE_H
#define SZD_CORE_SLOT_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "shardz/placement.h"

/* Slots per page (fewer when the table has fewer slots). A page holds at most this many runs:
 * with 255-byte ids about 560 KB, always one operation well under a transaction's 1.25 MiB. */
#define SZD_SLOT_PAGE_SLOTS 2048u

/* One line of a page as read: slots [lo, hi) held by the partition whose id is the id_len
 * bytes at id (borrowed from the page's text, not NUL-terminated). */
typedef struct {
    uint32_t lo, hi;
    const char *id;
    size_t id_len;
} szd_slot_line;

/* A run resolved to a partition index (the loader's form). */
typedef struct {
    uint32_t lo, hi;
    uint32_t part;
} szd_slot_run;

/* Which page keys hold the committed table: page k covers slots [k * page_slots,
 * (k + 1) * page_slots) and lives at ns/<ns>/slots/<epoch[k]>/<k>. npages == 0: an empty table
 * (no partition). */
typedef struct {
    uint32_t page_slots; /* a power of two */
    uint32_t npages;
    uint64_t *epoch; /* npages entries, each >= 1 (owned) */
} szd_slot_manifest;

/* The page width for a table of nslots slots: SZD_SLOT_PAGE_SLOTS or nslots if smaller. */
uint32_t szd_slot_page_slots(uint32_t nslots);

/* Page [lo, hi)'s text from runs (n of them, in slot order, contiguous, covering [lo, hi)): a
 * run crossing the page's bounds is cut at them. *first is the index of the first run that may
 * reach the page (0 for page 0); it is advanced for the next page. Returns the text (the
 * caller's; *len its length) or NULL: out of memory, or runs that do not cover the page. */
char *szd_slot_page_text(const shardz_slot_range *runs, size_t n, size_t *first, uint32_t lo,
                         uint32_t hi, size_t *len);

/* Reads page [lo, hi)'s text (len bytes, no NUL needed) into out (cap entries; hi - lo
 * always suffice), *n lines. The lines must cover [lo, hi) exactly, in order, each with
 * canonical decimal bounds and an id of 1..SHARDZ_MAX_ID bytes without '/' or control bytes,
 * every line ended by '\n'. 0, or SHARDZ_EINVAL (out and *n unspecified). */
int szd_slot_page_parse(const char *text, size_t len, uint32_t lo, uint32_t hi, szd_slot_line *out,
                        size_t cap, size_t *n);

/* Merges neighbouring runs of one partition (a run cut at a page bound is whole again); runs
 * in slot order. Returns the new count. */
size_t szd_slot_runs_merge(szd_slot_run *runs, size_t n);

/* FNV-1a 64 of a page's text: whether a page changed since it was written. */
uint64_t szd_slot_page_hash(const char *text, size_t len);

/* The manifest as the config record's "slot_table": {"page_slots": W, "pages": [e0, ...]}.
 * New reference. */
json_t *szd_slot_manifest_json(const szd_slot_manifest *m);
/* Reads a "slot_table" for a table of nslots slots: page_slots a power of two <= nslots,
 * pages either empty or nslots / page_slots epochs >= 1. 0 (out owns its epochs), SHARDZ_EINVAL
 * or SHARDZ_ENOMEM (out zeroed). */
int szd_slot_manifest_parse(const json_t *j, uint32_t nslots, szd_slot_manifest *out);
/* Copies src into dst (dst's old epochs are freed). 0 or SHARDZ_ENOMEM (dst unchanged). */
int szd_slot_manifest_copy(szd_slot_manifest *dst, const szd_slot_manifest *src);
/* Frees the epochs and zeroes m; accepts a zeroed manifest. */
void szd_slot_manifest_free(szd_slot_manifest *m);

#endif
