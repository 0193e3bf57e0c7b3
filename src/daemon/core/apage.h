/* Assignment pages (docs/STORE.md 5, "Assignment pages"): a namespace's assignment records live
 * in pages of up to SZD_APAGE_PARTS records (ns/<ns>/apage/<n>), and a partition's own key
 * (assign/<p>) overrides its page line when only a few of a page's partitions changed. This file
 * owns the page text (a header with the write number, then one record per line), the rule that
 * decides when a page is rewritten, and the map a load uses to pick, per partition, the newest
 * of its page line and override. Pure: memory in, memory out (malloc); any thread. */
#ifndef SZD_CORE_APAGE_H
#define SZD_CORE_APAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Partitions a page is filled with (new partitions join the open page until it holds this
 * many): about 30 KB of plain records, so a transaction carries about 40 pages. */
#define SZD_APAGE_PARTS 256u
/* A page's text is never written longer (records with long histories and ids): its changed
 * partitions are written as overrides instead. Under the store's 1 MiB value limit and well
 * under a transaction's 1.25 MiB. */
#define SZD_APAGE_MAX_BYTES (512u * 1024u)
/* Page numbers a load accepts (a larger one is a corrupt key): 2^24 pages of 256. */
#define SZD_APAGE_MAX_PAGES (1u << 24)
/* The header's length at most, with its newline. */
#define SZD_APAGE_HEAD_MAX 40

/* Writes the header of a page written by write number w into buf (at least SZD_APAGE_HEAD_MAX
 * bytes) and returns its length: format 1, "shardz-apage 1 <w>\n", its lines follow as text;
 * or, raw > 0, format 2, "shardz-apage 2 <w> <raw>\n", its lines follow as one zlib stream
 * (RFC 1950) that inflates to raw bytes (at most SZD_APAGE_MAX_BYTES). */
size_t szd_apage_head(char *buf, uint64_t w, size_t raw);

/* Reads a page's header: 0 with *w, *off (where the lines, or their zlib stream, start) and
 * *raw (0: format 1, the lines are text; else format 2 and the length they inflate to), or -1
 * when text is not a page of either format (the caller logs the key and skips it). */
int szd_apage_read_head(const char *text, size_t len, uint64_t *w, size_t *off, size_t *raw);

/* The next line of a page from *off (advanced past it): true with *line and *n (no newline),
 * false at the end. Empty lines are skipped. */
bool szd_apage_next(const char *text, size_t len, size_t *off, const char **line, size_t *n);

/* The id of a record line in the plain form ({"id":"<id>",...): true with *id and *n pointing
 * into line; false when the line does not start so (it is read with jansson instead). */
bool szd_apage_line_id(const char *line, size_t len, const char **id, size_t *n);

/* What a write knows of one page, and the rule for whether it rewrites the page. */
typedef struct {
    uint32_t nlive;  /* live partitions whose page it is */
    uint32_t nover;  /* of them, those with an override key in the store */
    uint32_t ndead;  /* override keys of no live partition (removal marks, stale overrides) */
    uint32_t ndirty; /* partitions of this write */
    uint32_t nfresh; /* of them, those with no override yet (would add one each) */
    bool based;      /* the page key exists in the store */
    bool refold;     /* the store's page holds a line memory does not (a stale line): rewrite */
    bool z;          /* pages are written compressed (format 2) */
} szd_apage_count;

/* A compressed page of plain records costs about as many bytes as this many overrides: a
 * write of that many of its partitions rewrites it instead. */
#define SZD_APAGE_Z_OVERRIDES 25u

/* Whether this write rewrites the page (its live partitions as lines, its overrides and dead
 * keys deleted) rather than writing overrides: when it must (refold), when it has changes and
 * no page yet (a new page, or a store of the layout before pages, converted page by page as its
 * partitions change), when the overrides would reach a quarter of its partitions (a load then
 * reads at most a quarter more keys, and a rewrite costs at most four records per record
 * changed), or, compressed, when this write changes a tenth of its partitions or
 * SZD_APAGE_Z_OVERRIDES of them (the page then costs fewer bytes than their overrides: the
 * acknowledgements of a large add, arriving in many small batches, would otherwise go out as
 * an override each). */
bool szd_apage_fold(const szd_apage_count *c);

/* ---- the load's resolution: per partition id, the newest record ---------------------- */

/* Where a partition's record was found. */
typedef struct {
    const char *id; /* borrowed (into the records read) */
    uint32_t idlen;
    uint32_t page;   /* the page holding a line for it (UINT32_MAX: none) */
    uint64_t w;      /* the newest record's write number */
    uint64_t line_w; /* the write number of that page line */
    int64_t best;    /* the newest: an override's index (>= 0), or -1 for the page line */
    bool removed;    /* the newest is a removal mark */
    bool dup_line;   /* lines in two pages: the older's page must be rewritten */
} szd_apage_entry;

typedef struct {
    szd_apage_entry *e; /* cap entries, id NULL: empty (owned) */
    size_t cap, n;
} szd_apage_map;

/* A map with room for `expect` ids (no growth afterwards: more is SHARDZ_ENOMEM). 0 or
 * SHARDZ_ENOMEM. */
int szd_apage_map_init(szd_apage_map *m, size_t expect);
void szd_apage_map_free(szd_apage_map *m);
/* The entry of id (n bytes), created empty (page UINT32_MAX, best -2: nothing yet) when
 * absent; NULL when the map is full. */
szd_apage_entry *szd_apage_map_get(szd_apage_map *m, const char *id, size_t n);

/* The entry of id (n bytes), or NULL when absent (nothing is created). */
szd_apage_entry *szd_apage_map_find(const szd_apage_map *m, const char *id, size_t n);
/* Records an override (index idx, write w, a removal mark or not) for e. */
void szd_apage_see_override(szd_apage_entry *e, int64_t idx, uint64_t w, bool removed);
/* Records a line of page `page` written by w for e; returns the page whose line lost to another
 * page's (its page must be rewritten), or UINT32_MAX. */
uint32_t szd_apage_see_line(szd_apage_entry *e, uint32_t page, uint64_t w);

#endif
