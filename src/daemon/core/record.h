/* The assignment record (one partition's replica slots, as szd_part_record_text writes it),
 * read back without building a JSON tree: the plain form shardzd writes is scanned by hand,
 * anything else (escapes, whitespace, other fields, hash slot runs, range bounds) is left to
 * jansson, and both give the same szd_rec_part. Pure: memory in, memory out; any thread.
 * docs/STORE.md, "Records"; fuzzed by tests/fuzz/fuzz_part_record.c (the two readers agree). */
#ifndef SZD_CORE_RECORD_H
#define SZD_CORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "shardz/placement.h"

#define SZD_REC_WORD 16 /* the longest state or reason name kept, with its NUL */

/* One slot as the record has it. A field the record lacks (or has of another type) reads as
 * absent: "" for a string, 0 for a generation; a string too long to be a valid value too. */
typedef struct {
    char owner[SHARDZ_MAX_ID + 1];
    char state[SZD_REC_WORD];
    char prev[SHARDZ_MAX_ID + 1];
    char prev_state[SZD_REC_WORD];
    char reason[SZD_REC_WORD];
    uint64_t generation, prev_generation;
} szd_rec_slot;

typedef struct {
    char id[SHARDZ_MAX_ID + 1];
    unsigned nslots; /* 1..SHARDZ_MAX_REPLICAS; 0 for a removal mark */
    szd_rec_slot slots[SHARDZ_MAX_REPLICAS];
    uint64_t w;   /* "w": the write that made an override record (docs/STORE.md 5, pages); 0:
                   * none (a page line, or a record of the layout before pages) */
    bool removed; /* "removed": true: a removal mark (a tombstone), no slots */
} szd_rec_part;

#define SZD_REC_OTHER 1 /* not in the plain form: read it with szd_rec_part_from_json */

/* Scans text (len bytes, no NUL needed) in the plain form: {"id":"..","slots":[{..},..]} with
 * slot fields owner, state, generation, prev, prev_state, prev_generation and reason, each at
 * most once, then optionally "w":N, strings of printable ASCII without quotes or backslashes,
 * numbers of at most 18 digits, nothing else and no whitespace. 0 and *out filled, or SZD_REC_OTHER
 * (*out then undefined). Never reads past len. */
int szd_rec_part_parse(const char *text, size_t len, szd_rec_part *out);

/* The same from a parsed record (the general form; other members ignored): 0, or
 * SHARDZ_EINVAL when the id is not a string or slots not an array of 1..SHARDZ_MAX_REPLICAS.
 * A removal mark ({"id":..,"removed":true,"w":N}) reads with removed set and no slots. */
int szd_rec_part_from_json(json_t *j, szd_rec_part *out);

/* Whether two reads say the same (the id, w, removed and each slot's fields; what lies past
 * them in the buffers does not count). */
bool szd_rec_part_same(const szd_rec_part *a, const szd_rec_part *b);

#endif
