/* The slot table of the "hash" kind: S slots (a power of two) -> a dense partition index.
 * Pure and deterministic, one thread, no dependency on the model: it only knows partition
 * indices 0..nparts-1, and the hash sharder keeps them equal to the model's. Every change
 * leaves each partition with floor(S/P) or ceil(S/P) slots and moves the fewest slots that
 * such a balance allows; lookups are a plain array read. */
#ifndef SHARDZ_PLACEMENT_SLOTS_H
#define SHARDZ_PLACEMENT_SLOTS_H

#include <stddef.h>
#include <stdint.h>

/* "No partition" (equal to PZ_NONE): the owner of every slot while the table is empty, and the
 * new index of a removed partition in pz_slots_remove. */
#define PZ_SLOTS_NONE UINT32_MAX

/* The table. Owned by whoever embeds it; fields are read-only outside slots.c. */
typedef struct {
    uint32_t nslots;   /* S: a power of two in [1, SHARDZ_HASH_SLOTS_MAX] */
    uint32_t nparts;   /* P: partitions, indices 0..P-1; P <= S */
    uint32_t cap;      /* entries allocated in count, and in each third of scratch */
    uint32_t *owner;   /* S entries: partition index, PZ_SLOTS_NONE when P == 0 (owned) */
    uint32_t *count;   /* cap entries: slots each partition holds (owned) */
    uint32_t *scratch; /* 3 * cap entries for one call's targets, counters and maps (owned):
                          remove, renumber and balance never allocate */
} pz_slots;

/* A run of slots [lo, hi) held by one partition. */
typedef struct {
    uint32_t lo, hi;
} pz_slot_range;

/* Creates an empty table of nslots slots (no partition: every slot is PZ_SLOTS_NONE).
 * SHARDZ_EINVAL unless nslots is a power of two in [1, SHARDZ_HASH_SLOTS_MAX];
 * SHARDZ_ENOMEM. On error *t is zeroed (pz_slots_destroy accepts it). */
int pz_slots_init(pz_slots *t, uint32_t nslots);
/* Frees what the table owns and zeroes it; accepts a zeroed table (and NULL). */
void pz_slots_destroy(pz_slots *t);

/* Makes room for nparts partitions, so that adding up to that many never allocates.
 * SHARDZ_ENOSPC when nparts > S, SHARDZ_ENOMEM; on error the table is unchanged. */
int pz_slots_reserve(pz_slots *t, uint32_t nparts);

/* Appends k partitions (indices P..P+k-1). They take slots from the partitions holding the
 * most, each source giving its highest slots, so that every partition ends with floor(S/P')
 * or ceil(S/P') slots (P' = P + k) and the fewest slots move: only to new partitions when the
 * table was balanced. SHARDZ_ENOSPC when P' > S, SHARDZ_ENOMEM (unless reserved); on error
 * the table is unchanged. k == 0 is a no-op. */
int pz_slots_add(pz_slots *t, uint32_t k);

/* Removes partitions and renumbers the others in one step. newidx has P entries:
 * PZ_SLOTS_NONE for a partition removed, its new index for one that stays; the new indices of
 * those that stay must be exactly 0..P'-1 (P' = those that stay). The removed partitions'
 * slots go to the partitions holding the fewest, so that every partition ends with floor/ceil
 * of S/P' and the fewest slots move (only the removed ones' when the table was balanced).
 * When nothing stays, every slot becomes PZ_SLOTS_NONE. newidx is borrowed for the call.
 * SHARDZ_EINVAL (bad newidx: the table is unchanged). Never allocates. */
int pz_slots_remove(pz_slots *t, const uint32_t *newidx);

/* Removes partition pidx the way pz_model_remove_part does: its slots go to the others as in
 * pz_slots_remove, then the last partition takes index pidx. *moved is the index the moved
 * partition had (PZ_SLOTS_NONE when pidx was the last). SHARDZ_EINVAL (pidx >= P: the table
 * is unchanged). Never allocates. */
int pz_slots_remove_one(pz_slots *t, uint32_t pidx, uint32_t *moved);

/* Renumbers the partitions without moving a slot: partition i becomes map[i]; map (P entries,
 * borrowed) must be a permutation of 0..P-1. SHARDZ_EINVAL (the table is unchanged). Never
 * allocates. */
int pz_slots_renumber(pz_slots *t, const uint32_t *map);

/* Brings the table to floor/ceil balance with the fewest moves (a no-op when balanced: only a
 * restored table can be unbalanced). Returns the number of slots moved. Never allocates. */
uint32_t pz_slots_balance(pz_slots *t);

/* Replaces the whole mapping with a preset one (restoring a persisted state): owner has S
 * entries, each < nparts, borrowed for the call; nparts == 0 requires owner == NULL. The preset
 * is taken as it is, balanced or not (a partition may even hold no slot).
 * SHARDZ_EINVAL (an entry >= nparts, or nparts > S), SHARDZ_ENOMEM; on error the table is
 * unchanged. */
int pz_slots_restore(pz_slots *t, const uint32_t *owner, uint32_t nparts);

/* The slots partition pidx holds, as maximal runs in increasing order: fills out[0..cap-1]
 * and returns the total number of runs (call with cap 0 to size out). 0 when pidx >= P. */
size_t pz_slots_ranges(const pz_slots *t, uint32_t pidx, pz_slot_range *out, size_t cap);

/* The partition that owns a slot (slot < S): a plain array read. PZ_SLOTS_NONE when P == 0. */
static inline uint32_t pz_slots_owner(const pz_slots *t, uint32_t slot)
{
    return t->owner[slot];
}

/* How many slots partition pidx holds (pidx < P). */
static inline uint32_t pz_slots_count(const pz_slots *t, uint32_t pidx)
{
    return t->count[pidx];
}

#endif
