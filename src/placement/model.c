/* The placement model: id maps, nodes, zones, partitions, replica slots and node replica
 * lists, kept in step by pz_assign; plans record moves and can be reverted or committed.
 * Every public mutation validates its whole batch first and changes nothing on error.
 * Pure data structures: no I/O, no clock, no globals; one thread. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "placement/model.h"

/* ---- id maps ------------------------------------------------------------------------- */

uint32_t pz_hash_id(const char *id, size_t len)
{
    return (uint32_t)XXH3_64bits(id, len);
}

typedef const char *(*pz_keyfn)(const pz_model *m, uint32_t idx, uint32_t *hash);

static const char *node_key(const pz_model *m, uint32_t idx, uint32_t *hash)
{
    *hash = m->nodes[idx].hash;
    return m->nodes[idx].id;
}

static const char *part_key(const pz_model *m, uint32_t idx, uint32_t *hash)
{
    *hash = m->parts[idx]->hash;
    return pz_part_id(m->parts[idx]);
}

/* A map slot holds (hash << 32 | index); all ones is empty. */
#define IDMAP_EMPTY UINT64_MAX
#define IDMAP_IDX(e) ((uint32_t)(e))
#define IDMAP_HASH(e) ((uint32_t)((e) >> 32))

/* Slot of `id` in the map (holding it, or the empty slot where it would go). */
static uint32_t idmap_probe(const pz_idmap *map, const pz_model *m, pz_keyfn key, const char *id,
                            uint32_t hash)
{
    uint32_t mask = map->cap - 1, i = hash & mask;
    for (;;) {
        uint64_t e = map->slots[i];
        if (e == IDMAP_EMPTY) {
            return i;
        }
        if (IDMAP_HASH(e) == hash) {
            uint32_t h;
            if (strcmp(key(m, IDMAP_IDX(e), &h), id) == 0) {
                return i;
            }
        }
        i = (i + 1) & mask;
    }
}

static uint32_t idmap_find(const pz_idmap *map, const pz_model *m, pz_keyfn key, const char *id)
{
    if (map->cap == 0) {
        return PZ_NONE;
    }
    uint32_t hash = pz_hash_id(id, strlen(id));
    uint64_t e = map->slots[idmap_probe(map, m, key, id, hash)];
    return e == IDMAP_EMPTY ? PZ_NONE : IDMAP_IDX(e);
}

/* Makes room for `extra` more entries (load factor <= 1/2). */
static int idmap_reserve(pz_idmap *map, const pz_model *m, pz_keyfn key, uint32_t extra)
{
    (void)key;
    (void)m;
    uint64_t need = ((uint64_t)map->count + extra) * 2;
    if (need <= map->cap) {
        return 0;
    }
    uint64_t ncap = map->cap ? map->cap : 16;
    while (ncap < need) {
        ncap *= 2;
    }
    if (ncap > (1ull << 31)) {
        return SHARDZ_ENOMEM;
    }
    uint64_t *ns = malloc(ncap * sizeof *ns);
    if (!ns) {
        return SHARDZ_ENOMEM;
    }
    memset(ns, 0xff, ncap * sizeof *ns);
    uint32_t mask = (uint32_t)ncap - 1;
    for (uint32_t i = 0; i < map->cap; i++) {
        uint64_t e = map->slots[i];
        if (e == IDMAP_EMPTY) {
            continue;
        }
        uint32_t j = IDMAP_HASH(e) & mask;
        while (ns[j] != IDMAP_EMPTY) {
            j = (j + 1) & mask;
        }
        ns[j] = e;
    }
    free(map->slots);
    map->slots = ns;
    map->cap = (uint32_t)ncap;
    return 0;
}

/* Inserts idx (whose key is not in the map; capacity reserved beforehand). */
static void idmap_insert(pz_idmap *map, const pz_model *m, pz_keyfn key, uint32_t idx)
{
    uint32_t h;
    const char *k = key(m, idx, &h);
    map->slots[idmap_probe(map, m, key, k, h)] = ((uint64_t)h << 32) | idx;
    map->count++;
}

/* Removes the entry for `id` (backward-shift deletion keeps probes short without tombstones). */
static void idmap_remove(pz_idmap *map, const pz_model *m, pz_keyfn key, const char *id,
                         uint32_t hash)
{
    uint32_t mask = map->cap - 1, i = idmap_probe(map, m, key, id, hash);
    if (map->slots[i] == IDMAP_EMPTY) {
        return;
    }
    map->slots[i] = IDMAP_EMPTY;
    map->count--;
    for (uint32_t j = (i + 1) & mask; map->slots[j] != IDMAP_EMPTY; j = (j + 1) & mask) {
        uint32_t home = IDMAP_HASH(map->slots[j]) & mask;
        /* Entry j may move into hole i if its home is not cyclically within (i, j]. */
        bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            map->slots[i] = map->slots[j];
            map->slots[j] = IDMAP_EMPTY;
            i = j;
        }
    }
}

/* Points the entry for `id` at a new index. */
static void idmap_renumber(pz_idmap *map, const pz_model *m, pz_keyfn key, const char *id,
                           uint32_t hash, uint32_t nidx)
{
    map->slots[idmap_probe(map, m, key, id, hash)] = ((uint64_t)hash << 32) | nidx;
}

static void vacbit_refresh(pz_model *m, uint32_t pidx);

/* ---- model lifetime ------------------------------------------------------------------ */

int pz_model_init(pz_model *m, size_t ndims, unsigned default_replicas, int roles)
{
    memset(m, 0, sizeof *m);
    m->ndims = ndims;
    m->default_replicas = default_replicas;
    m->roles = roles;
    m->zones = malloc(4 * sizeof *m->zones);
    if (!m->zones) {
        return SHARDZ_ENOMEM;
    }
    m->zones[0] = strdup("");
    if (!m->zones[0]) {
        free(m->zones);
        m->zones = NULL;
        return SHARDZ_ENOMEM;
    }
    m->zone_room = calloc(4, sizeof *m->zone_room);
    if (!m->zone_room) {
        free(m->zones[0]);
        free(m->zones);
        m->zones = NULL;
        return SHARDZ_ENOMEM;
    }
    m->nzones = 1;
    m->capzones = 4;
    return 0;
}

void pz_model_destroy(pz_model *m)
{
    for (uint32_t i = 0; i < m->nnodes; i++) {
        free(m->nodes[i].id);
        free(m->nodes[i].list);
    }
    free(m->nodes);
    free(m->free_nodes);
    free(m->node_map.slots);
    for (uint32_t z = 0; z < m->nzones; z++) {
        free(m->zones[z]);
    }
    free(m->zones);
    free(m->zone_room);
    for (uint32_t p = 0; p < m->nparts; p++) {
        free(m->parts[p]);
    }
    free(m->parts);
    free(m->load);
    free(m->vacbits);
    free(m->part_map.slots);
    memset(m, 0, sizeof *m);
}

static uint32_t node_find_any(const pz_model *m, const char *id)
{
    return idmap_find(&m->node_map, m, node_key, id);
}

uint32_t pz_node_find(const pz_model *m, const char *id)
{
    uint32_t n = node_find_any(m, id);
    return (n != PZ_NONE && !m->nodes[n].gone) ? n : PZ_NONE;
}

uint32_t pz_part_find(const pz_model *m, const char *id)
{
    return idmap_find(&m->part_map, m, part_key, id);
}

static bool valid_id(const char *id)
{
    if (!id) {
        return false;
    }
    size_t len = strnlen(id, SHARDZ_MAX_ID + 1);
    return len >= 1 && len <= SHARDZ_MAX_ID;
}

/* Index of zone `name`, interning it; PZ_NONE on allocation failure. */
static uint32_t zone_intern(pz_model *m, const char *name)
{
    if (!name) {
        name = "";
    }
    for (uint32_t z = 0; z < m->nzones; z++) {
        if (strcmp(m->zones[z], name) == 0) {
            return z;
        }
    }
    if (m->nzones == m->capzones) {
        char **nz = realloc(m->zones, 2 * m->capzones * sizeof *nz);
        if (!nz) {
            return PZ_NONE;
        }
        m->zones = nz;
        uint32_t *nr = realloc(m->zone_room, 2 * m->capzones * sizeof *nr);
        if (!nr) {
            return PZ_NONE;
        }
        memset(nr + m->capzones, 0, m->capzones * sizeof *nr);
        m->zone_room = nr;
        m->capzones *= 2;
    }
    char *copy = strdup(name);
    if (!copy) {
        return PZ_NONE;
    }
    m->zones[m->nzones] = copy;
    return m->nzones++;
}

/* ---- nodes --------------------------------------------------------------------------- */

static int check_node_spec(const pz_model *m, const shardz_node_spec *ns)
{
    if (!valid_id(ns->id)) {
        return SHARDZ_EINVAL;
    }
    if (ns->zone && strnlen(ns->zone, SHARDZ_MAX_ID + 1) > SHARDZ_MAX_ID) {
        return SHARDZ_EINVAL;
    }
    if (ns->ncapacity > m->ndims) {
        return SHARDZ_EINVAL;
    }
    for (size_t d = 0; d < ns->ncapacity; d++) {
        if (!isfinite(ns->capacity[d]) || ns->capacity[d] <= 0) {
            return SHARDZ_EINVAL;
        }
    }
    if ((unsigned)ns->state > SHARDZ_NODE_DEAD) {
        return SHARDZ_EINVAL;
    }
    return 0;
}

/* Fills node fields from a spec (the node's id, map entry and list are left alone). */
static void node_apply_spec(pz_model *m, pz_node *nd, const shardz_node_spec *ns, uint32_t zone)
{
    nd->zone = zone;
    nd->state = ns->state;
    for (size_t d = 0; d < SHARDZ_MAX_DIMS; d++) {
        nd->cap[d] = d < ns->ncapacity ? ns->capacity[d] : INFINITY;
    }
    nd->weight = ns->ncapacity > 0 ? ns->capacity[0] : 1.0;
    (void)m;
}

int pz_model_add_nodes(pz_model *m, const shardz_node_spec *specs, size_t n)
{
    int rc;
    uint32_t *zones = NULL;
    if (n == 0) {
        return 0;
    }
    if (!specs) {
        return SHARDZ_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        rc = check_node_spec(m, &specs[i]);
        if (rc) {
            return rc;
        }
        uint32_t have = node_find_any(m, specs[i].id);
        if (have != PZ_NONE && !m->nodes[have].gone) {
            return SHARDZ_EEXIST;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(specs[i].id, specs[j].id) == 0) {
                return SHARDZ_EEXIST;
            }
        }
    }
    /* Reserve everything that can fail before changing anything. */
    zones = malloc(n * sizeof *zones);
    if (!zones) {
        return SHARDZ_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        zones[i] = zone_intern(m, specs[i].zone); /* an interned zone with no node is harmless */
        if (zones[i] == PZ_NONE) {
            rc = SHARDZ_ENOMEM;
            goto out;
        }
    }
    rc = idmap_reserve(&m->node_map, m, node_key, (uint32_t)n);
    if (rc) {
        goto out;
    }
    if (m->nnodes + n > m->capnodes) {
        uint32_t ncap = m->capnodes ? m->capnodes : 16;
        while (ncap < m->nnodes + n) {
            ncap *= 2;
        }
        pz_node *nn = realloc(m->nodes, ncap * sizeof *nn);
        if (!nn) {
            rc = SHARDZ_ENOMEM;
            goto out;
        }
        m->nodes = nn;
        m->capnodes = ncap;
    }
    char **ids = calloc(n, sizeof *ids);
    if (!ids) {
        rc = SHARDZ_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        ids[i] = strdup(specs[i].id);
        if (!ids[i]) {
            for (size_t j = 0; j < i; j++) {
                free(ids[j]);
            }
            free(ids);
            rc = SHARDZ_ENOMEM;
            goto out;
        }
    }
    /* Commit: nothing below fails. */
    for (size_t i = 0; i < n; i++) {
        uint32_t idx = node_find_any(m, specs[i].id);
        if (idx != PZ_NONE) {
            /* An unregistered node whose replicas have not moved yet registers again: it
             * comes back empty (its old replicas are vacant, with the reason it left) under
             * the same index. Vacating only shrinks lists: it cannot fail. */
            pz_node *nd = &m->nodes[idx];
            free(ids[i]);
            while (nd->nlist > 0) {
                uint32_t rid = nd->list[nd->nlist - 1];
                (void)pz_assign(m, PZ_RID_PART(rid), PZ_RID_SLOT(rid), PZ_NONE,
                                (shardz_reason)nd->gone_reason);
            }
            memset(nd->load, 0, sizeof nd->load);
            nd->gone = false;
            nd->joined = true;
            node_apply_spec(m, nd, &specs[i], zones[i]);
            continue;
        }
        if (m->nfree > 0) {
            idx = m->free_nodes[--m->nfree];
        } else {
            idx = m->nnodes++;
        }
        pz_node *nd = &m->nodes[idx];
        memset(nd, 0, sizeof *nd);
        nd->id = ids[i];
        nd->hash = pz_hash_id(nd->id, strlen(nd->id));
        nd->joined = true;
        node_apply_spec(m, nd, &specs[i], zones[i]);
        idmap_insert(&m->node_map, m, node_key, idx);
    }
    free(ids);
    m->revision++;
out:
    free(zones);
    return rc;
}

/* Frees a gone node that holds nothing and makes its index reusable. */
static int node_recycle(pz_model *m, uint32_t n)
{
    pz_node *nd = &m->nodes[n];
    if (m->nfree == m->capfree) {
        uint32_t ncap = m->capfree ? 2 * m->capfree : 16;
        uint32_t *nf = realloc(m->free_nodes, ncap * sizeof *nf);
        if (!nf) {
            return SHARDZ_ENOMEM; /* the tombstone stays; retried at the next commit */
        }
        m->free_nodes = nf;
        m->capfree = ncap;
    }
    idmap_remove(&m->node_map, m, node_key, nd->id, nd->hash);
    free(nd->id);
    free(nd->list);
    memset(nd, 0, sizeof *nd);
    nd->gone = true;
    nd->state = SHARDZ_NODE_DEAD;
    m->free_nodes[m->nfree++] = n;
    return 0;
}

int pz_model_remove_nodes(pz_model *m, const char *const *ids, size_t n, shardz_reason reason)
{
    if (n == 0) {
        return 0;
    }
    if (!ids) {
        return SHARDZ_EINVAL;
    }
    if (reason != SHARDZ_REASON_LEAVE && reason != SHARDZ_REASON_NODE_DEAD &&
        reason != SHARDZ_REASON_DRAIN && reason != SHARDZ_REASON_OPERATOR) {
        return SHARDZ_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!valid_id(ids[i])) {
            return SHARDZ_EINVAL;
        }
        if (pz_node_find(m, ids[i]) == PZ_NONE) {
            return SHARDZ_ENOENT;
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t idx = pz_node_find(m, ids[i]);
        if (idx == PZ_NONE) {
            continue; /* named twice in the batch */
        }
        pz_node *nd = &m->nodes[idx];
        nd->gone = true;
        nd->joined = false;
        nd->gone_reason = (uint8_t)reason;
        if (nd->nlist == 0) {
            (void)node_recycle(m, idx); /* on failure it stays a tombstone: still correct */
        }
    }
    m->revision++;
    return 0;
}

int pz_model_update_node(pz_model *m, const shardz_node_spec *spec)
{
    if (!spec) {
        return SHARDZ_EINVAL;
    }
    int rc = check_node_spec(m, spec);
    if (rc) {
        return rc;
    }
    uint32_t idx = pz_node_find(m, spec->id);
    if (idx == PZ_NONE) {
        return SHARDZ_ENOENT;
    }
    uint32_t zone = zone_intern(m, spec->zone);
    if (zone == PZ_NONE) {
        return SHARDZ_ENOMEM;
    }
    node_apply_spec(m, &m->nodes[idx], spec, zone);
    m->revision++;
    return 0;
}

int pz_model_set_node_state(pz_model *m, const char *id, shardz_node_state st)
{
    if (!valid_id(id) || (unsigned)st > SHARDZ_NODE_DEAD) {
        return SHARDZ_EINVAL;
    }
    uint32_t idx = pz_node_find(m, id);
    if (idx == PZ_NONE) {
        return SHARDZ_ENOENT;
    }
    if (m->nodes[idx].state != st) {
        m->nodes[idx].state = st;
        m->revision++;
    }
    return 0;
}

/* ---- partitions ---------------------------------------------------------------------- */

static int check_part_spec(const pz_model *m, const shardz_partition_spec *ps, unsigned *nrep,
                           size_t eligible)
{
    if (!valid_id(ps->id)) {
        return SHARDZ_EINVAL;
    }
    unsigned r = ps->replicas ? ps->replicas : m->default_replicas;
    if (r < 1 || r > SHARDZ_MAX_REPLICAS) {
        return SHARDZ_EINVAL;
    }
    if (ps->nload > m->ndims) {
        return SHARDZ_EINVAL;
    }
    for (size_t d = 0; d < ps->nload; d++) {
        if (!isfinite(ps->load[d]) || ps->load[d] < 0) {
            return SHARDZ_EINVAL;
        }
    }
    if (ps->nnodes > 0) {
        if (ps->nnodes != r || !ps->nodes) {
            return SHARDZ_EINVAL;
        }
        for (size_t i = 0; i < ps->nnodes; i++) {
            if (!ps->nodes[i]) {
                continue;
            }
            if (pz_node_find(m, ps->nodes[i]) == PZ_NONE) {
                return SHARDZ_EINVAL;
            }
            for (size_t j = 0; j < i; j++) {
                if (ps->nodes[j] && strcmp(ps->nodes[i], ps->nodes[j]) == 0) {
                    return SHARDZ_EINVAL;
                }
            }
        }
    } else if (r > eligible) {
        return SHARDZ_ENOSPC;
    }
    *nrep = r;
    return 0;
}

static size_t count_eligible(const pz_model *m)
{
    size_t e = 0;
    for (uint32_t i = 0; i < m->nnodes; i++) {
        if (pz_node_eligible(m, i)) {
            e++;
        }
    }
    return e;
}

int pz_model_add_parts(pz_model *m, const shardz_partition_spec *specs, size_t n, uint32_t *first)
{
    int rc = 0;
    pz_part **made = NULL;
    size_t nmade = 0;
    if (first) {
        *first = m->nparts;
    }
    if (n == 0) {
        return 0;
    }
    if (!specs) {
        return SHARDZ_EINVAL;
    }
    if ((uint64_t)m->nparts + n > PZ_MAX_PARTS) {
        return SHARDZ_ENOSPC;
    }
    size_t eligible = count_eligible(m);
    made = calloc(n, sizeof *made);
    if (!made) {
        return SHARDZ_ENOMEM;
    }
    rc = idmap_reserve(&m->part_map, m, part_key, (uint32_t)n);
    if (rc) {
        goto out;
    }
    if (m->nparts + n > m->capparts) {
        uint64_t ncap = m->capparts ? m->capparts : 64;
        while (ncap < m->nparts + n) {
            ncap *= 2;
        }
        pz_part **np = realloc(m->parts, ncap * sizeof *np);
        if (!np) {
            rc = SHARDZ_ENOMEM;
            goto out;
        }
        m->parts = np;
        double *nl = realloc(m->load, ncap * m->ndims * sizeof *nl);
        if (!nl) {
            rc = SHARDZ_ENOMEM;
            goto out;
        }
        m->load = nl;
        uint8_t *nv = realloc(m->vacbits, ncap / 8 + 1);
        if (!nv) {
            rc = SHARDZ_ENOMEM;
            goto out;
        }
        memset(nv + m->capparts / 8, 0, ncap / 8 + 1 - m->capparts / 8);
        m->vacbits = nv;
        m->capparts = (uint32_t)ncap;
    }
    /* Validate and build each record; the records go in only once all are good. Duplicates
     * inside the batch are caught by inserting as we go and undoing on error. */
    for (size_t i = 0; i < n; i++) {
        const shardz_partition_spec *ps = &specs[i];
        unsigned r;
        /* The id map is far larger than the caches: fetch a later id's probe start now, so
         * its miss overlaps this one's work. */
        if (i + 8 < n && specs[i + 8].id) {
            uint32_t h8 = pz_hash_id(specs[i + 8].id, strnlen(specs[i + 8].id, SHARDZ_MAX_ID));
            __builtin_prefetch(&m->part_map.slots[h8 & (m->part_map.cap - 1)]);
        }
        rc = check_part_spec(m, ps, &r, eligible);
        if (rc) {
            goto undo;
        }
        size_t idlen = strlen(ps->id);
        uint32_t hash = pz_hash_id(ps->id, idlen);
        uint32_t where = idmap_probe(&m->part_map, m, part_key, ps->id, hash);
        if (m->part_map.slots[where] != IDMAP_EMPTY) {
            rc = SHARDZ_EEXIST;
            goto undo;
        }
        pz_part *p = malloc(sizeof *p + r * sizeof(pz_slot) + idlen + 1);
        if (!p) {
            rc = SHARDZ_ENOMEM;
            goto undo;
        }
        p->gen = ps->generation;
        p->hash = hash;
        p->nrep = (uint16_t)r;
        p->placed = 0;
        p->idlen = (uint8_t)idlen;
        for (unsigned s = 0; s < r; s++) {
            p->slots[s].node = PZ_NONE;
            p->slots[s].pos = SHARDZ_REASON_NEW;
        }
        memcpy((char *)pz_part_id(p), ps->id, idlen + 1);
        uint32_t idx = m->nparts + (uint32_t)nmade;
        m->parts[idx] = p;
        double *l = m->load + (size_t)idx * m->ndims;
        for (size_t d = 0; d < m->ndims; d++) {
            l[d] = d < ps->nload ? ps->load[d] : (d == 0 ? 1.0 : 0.0);
        }
        made[nmade++] = p;
        if (r > m->max_nrep) {
            m->max_nrep = r;
        }
        m->nrep_count[r]++;
        m->nvacant += r;
        m->vacbits[idx >> 3] |= (uint8_t)(1u << (idx & 7));
        m->part_map.slots[where] = ((uint64_t)hash << 32) | idx; /* the probe's empty slot */
        m->part_map.count++;
    }
    /* Preset assignments: node lists may need to grow, so do them with an undo path. */
    m->nparts += (uint32_t)nmade;
    for (size_t i = 0; i < n; i++) {
        const shardz_partition_spec *ps = &specs[i];
        uint32_t idx = m->nparts - (uint32_t)n + (uint32_t)i;
        for (size_t s = 0; s < ps->nnodes; s++) {
            if (!ps->nodes[s]) {
                continue;
            }
            rc = pz_assign(m, idx, (unsigned)s, pz_node_find(m, ps->nodes[s]), SHARDZ_REASON_NEW);
            if (rc) {
                /* Unassign everything the batch assigned, then drop the records. */
                for (size_t k = 0; k <= i; k++) {
                    uint32_t kidx = m->nparts - (uint32_t)n + (uint32_t)k;
                    for (unsigned t = 0; t < m->parts[kidx]->nrep; t++) {
                        if (m->parts[kidx]->slots[t].node != PZ_NONE) {
                            pz_assign(m, kidx, t, PZ_NONE, SHARDZ_REASON_NEW);
                        }
                    }
                }
                m->nparts -= (uint32_t)nmade;
                goto undo;
            }
        }
        if (ps->nnodes > 0) {
            m->parts[idx]->placed = 1;
        }
    }
    m->revision++;
    goto out;
undo:
    for (size_t i = 0; i < nmade; i++) {
        m->nvacant -= made[i]->nrep;
        m->nrep_count[made[i]->nrep]--;
        idmap_remove(&m->part_map, m, part_key, pz_part_id(made[i]), made[i]->hash);
        free(made[i]);
    }
out:
    free(made);
    return rc;
}

uint32_t pz_model_remove_part(pz_model *m, uint32_t pidx)
{
    pz_part *p = m->parts[pidx];
    for (unsigned s = 0; s < p->nrep; s++) {
        if (p->slots[s].node != PZ_NONE) {
            pz_assign(m, pidx, s, PZ_NONE, SHARDZ_REASON_REBALANCE); /* shrinking: cannot fail */
        }
    }
    idmap_remove(&m->part_map, m, part_key, pz_part_id(p), p->hash);
    m->nvacant -= p->nrep;
    m->nrep_count[p->nrep]--;
    free(p);
    uint32_t last = m->nparts - 1;
    uint32_t moved = PZ_NONE;
    if (pidx != last) {
        pz_part *q = m->parts[last];
        m->parts[pidx] = q;
        memcpy(m->load + (size_t)pidx * m->ndims, m->load + (size_t)last * m->ndims,
               m->ndims * sizeof(double));
        for (unsigned s = 0; s < q->nrep; s++) {
            if (q->slots[s].node == PZ_NONE) {
                continue;
            }
            m->nodes[q->slots[s].node].list[q->slots[s].pos] = PZ_RID(pidx, s);
        }
        idmap_renumber(&m->part_map, m, part_key, pz_part_id(q), q->hash, pidx);
        vacbit_refresh(m, pidx);
        moved = last;
    }
    m->vacbits[last >> 3] &= (uint8_t) ~(1u << (last & 7));
    m->nparts--;
    m->revision++;
    return moved;
}

int pz_model_set_load(pz_model *m, const char *id, const double *load, size_t n)
{
    if (!valid_id(id) || n > m->ndims || (n > 0 && !load)) {
        return SHARDZ_EINVAL;
    }
    for (size_t d = 0; d < n; d++) {
        if (!isfinite(load[d]) || load[d] < 0) {
            return SHARDZ_EINVAL;
        }
    }
    uint32_t pidx = pz_part_find(m, id);
    if (pidx == PZ_NONE) {
        return SHARDZ_ENOENT;
    }
    pz_part *p = m->parts[pidx];
    double *l = m->load + (size_t)pidx * m->ndims;
    for (size_t d = 0; d < n; d++) {
        double delta = load[d] - l[d];
        for (unsigned s = 0; s < p->nrep; s++) {
            if (p->slots[s].node != PZ_NONE) {
                m->nodes[p->slots[s].node].load[d] += delta;
            }
        }
        l[d] = load[d];
    }
    m->revision++;
    return 0;
}

/* ---- assignment ---------------------------------------------------------------------- */

static void vacbit_refresh(pz_model *m, uint32_t pidx)
{
    const pz_part *p = m->parts[pidx];
    bool any = false;
    for (unsigned s = 0; s < p->nrep; s++) {
        any |= p->slots[s].node == PZ_NONE;
    }
    if (any) {
        m->vacbits[pidx >> 3] |= (uint8_t)(1u << (pidx & 7));
    } else {
        m->vacbits[pidx >> 3] &= (uint8_t) ~(1u << (pidx & 7));
    }
}

int pz_assign(pz_model *m, uint32_t pidx, unsigned slot, uint32_t node, shardz_reason reason)
{
    pz_part *p = m->parts[pidx];
    pz_slot *sl = &p->slots[slot];
    const double *l = m->load + (size_t)pidx * m->ndims;
    uint32_t rid = PZ_RID(pidx, slot);
    if (sl->node == node) {
        return 0;
    }
    if (node != PZ_NONE) {
        pz_node *nd = &m->nodes[node];
        if (nd->nlist == nd->caplist) {
            uint32_t ncap = nd->caplist ? nd->caplist + nd->caplist / 2 : 8;
            uint32_t *nl = realloc(nd->list, ncap * sizeof *nl);
            if (!nl) {
                return SHARDZ_ENOMEM;
            }
            nd->list = nl;
            nd->caplist = ncap;
        }
    }
    if (sl->node == PZ_NONE) {
        m->nvacant--;
    } else if (node == PZ_NONE) {
        m->nvacant++;
    }
    if (sl->node != PZ_NONE) {
        pz_node *od = &m->nodes[sl->node];
        uint32_t pos = sl->pos, lastrid = od->list[--od->nlist];
        if (pos != od->nlist) {
            od->list[pos] = lastrid;
            m->parts[PZ_RID_PART(lastrid)]->slots[PZ_RID_SLOT(lastrid)].pos = pos;
        }
        for (size_t d = 0; d < m->ndims; d++) {
            od->load[d] -= l[d];
        }
        if (od->nlist == 0) {
            for (size_t d = 0; d < m->ndims; d++) {
                od->load[d] = 0; /* no float drift on empty nodes */
            }
        }
    }
    if (node != PZ_NONE) {
        pz_node *nd = &m->nodes[node];
        sl->node = node;
        sl->pos = nd->nlist;
        nd->list[nd->nlist++] = rid;
        for (size_t d = 0; d < m->ndims; d++) {
            nd->load[d] += l[d];
        }
        p->placed = 1;
    } else {
        sl->node = PZ_NONE;
        sl->pos = (uint32_t)reason;
    }
    vacbit_refresh(m, pidx);
    return 0;
}

bool pz_part_on_node(const pz_model *m, uint32_t pidx, uint32_t n)
{
    const pz_part *p = m->parts[pidx];
    for (unsigned s = 0; s < p->nrep; s++) {
        if (p->slots[s].node == n) {
            return true;
        }
    }
    return false;
}

bool pz_fits(const pz_model *m, uint32_t n, uint32_t pidx)
{
    const pz_node *nd = &m->nodes[n];
    const double *l = pz_part_load(m, pidx);
    for (size_t d = 0; d < m->ndims; d++) {
        if (nd->load[d] + l[d] > nd->cap[d] * (1 + 1e-12)) {
            return false;
        }
    }
    return true;
}

void pz_zone_counts(const pz_model *m, uint32_t pidx, unsigned skip, uint16_t *cnt)
{
    const pz_part *p = m->parts[pidx];
    memset(cnt, 0, m->nzones * sizeof *cnt);
    for (unsigned s = 0; s < p->nrep; s++) {
        if (s != skip && p->slots[s].node != PZ_NONE) {
            cnt[m->nodes[p->slots[s].node].zone]++;
        }
    }
}

bool pz_zone_move_ok(const pz_model *m, uint32_t pidx, uint32_t d, uint32_t r)
{
    uint32_t zd = m->nodes[d].zone, zr = m->nodes[r].zone;
    if (zd == zr) {
        return true;
    }
    const pz_part *p = m->parts[pidx];
    unsigned in_r = 0, in_d = 0;
    for (unsigned s = 0; s < p->nrep; s++) {
        uint32_t n = p->slots[s].node;
        if (n == PZ_NONE) {
            continue;
        }
        in_r += m->nodes[n].zone == zr;
        in_d += m->nodes[n].zone == zd;
    }
    return in_r < in_d;
}

uint32_t pz_live_zones(const pz_model *m, bool *live)
{
    uint32_t k = 0;
    memset(live, 0, m->nzones * sizeof *live);
    for (uint32_t i = 0; i < m->nnodes; i++) {
        if (pz_node_eligible(m, i) && !live[m->nodes[i].zone]) {
            live[m->nodes[i].zone] = true;
            k++;
        }
    }
    return k;
}

shardz_reason pz_evict_reason(const pz_model *m, uint32_t n)
{
    const pz_node *nd = &m->nodes[n];
    if (nd->gone) {
        return (shardz_reason)nd->gone_reason;
    }
    if (nd->state == SHARDZ_NODE_DRAINING) {
        return SHARDZ_REASON_DRAIN;
    }
    if (nd->state == SHARDZ_NODE_DEAD) {
        return SHARDZ_REASON_NODE_DEAD;
    }
    return SHARDZ_REASON_REBALANCE;
}

/* ---- plans --------------------------------------------------------------------------- */

int pz_plan_reserve(shardz_plan *p, size_t extra)
{
    if (p->n + extra <= p->cap) {
        return 0;
    }
    size_t ncap = p->cap ? p->cap : 64;
    while (ncap < p->n + extra) {
        ncap *= 2;
    }
    pz_move *nm = realloc(p->moves, ncap * sizeof *nm);
    if (!nm) {
        return SHARDZ_ENOMEM;
    }
    p->moves = nm;
    p->cap = ncap;
    return 0;
}

int pz_swap_slots(pz_model *m, uint32_t pidx, unsigned a, unsigned b)
{
    pz_part *p = m->parts[pidx];
    if (a >= p->nrep || b >= p->nrep || a == b) {
        return SHARDZ_ERANGE;
    }
    pz_slot *sa = &p->slots[a], *sb = &p->slots[b];
    if (sa->node == PZ_NONE || sb->node == PZ_NONE) {
        return SHARDZ_EINVAL;
    }
    /* each node's list entry names the replica by slot: it follows its slot */
    m->nodes[sa->node].list[sa->pos] = PZ_RID(pidx, b);
    m->nodes[sb->node].list[sb->pos] = PZ_RID(pidx, a);
    pz_slot t = *sa;
    *sa = *sb;
    *sb = t;
    m->revision++;
    return 0;
}

int pz_plan_move(pz_model *m, shardz_plan *p, uint32_t pidx, unsigned slot, uint32_t to,
                 shardz_reason reason)
{
    if (p->n == p->cap) {
        int rc = pz_plan_reserve(p, 1);
        if (rc) {
            return rc;
        }
    }
    pz_slot *sl = &m->parts[pidx]->slots[slot];
    pz_move mv = {.pidx = pidx,
                  .from = sl->node,
                  .to = to,
                  .slot = (uint8_t)slot,
                  .reason = (uint8_t)reason,
                  .pad = (uint16_t)(sl->node == PZ_NONE ? sl->pos : 0)};
    int rc = pz_plan_assign(m, p, pidx, slot, to, reason);
    if (rc) {
        return rc;
    }
    p->moves[p->n++] = mv;
    return 0;
}

int pz_plan_snapshot(const pz_model *m, shardz_plan *p)
{
    free(p->node_load);
    p->node_load = malloc(((size_t)m->nnodes * m->ndims + 1) * sizeof *p->node_load);
    if (!p->node_load) {
        return SHARDZ_ENOMEM;
    }
    for (uint32_t n = 0; n < m->nnodes; n++) {
        memcpy(p->node_load + (size_t)n * m->ndims, m->nodes[n].load, m->ndims * sizeof(double));
    }
    return 0;
}

int pz_plan_assign(pz_model *m, shardz_plan *p, uint32_t pidx, unsigned slot, uint32_t to,
                   shardz_reason reason)
{
    const pz_slot *sl = &m->parts[pidx]->slots[slot];
    if (sl->node == to) {
        return 0;
    }
    if (p->logging) {
        if (p->nops == p->capops) {
            size_t ncap = p->capops ? 2 * p->capops : 256;
            struct pz_op *no = realloc(p->ops, ncap * sizeof *no);
            if (!no) {
                return SHARDZ_ENOMEM;
            }
            p->ops = no;
            p->capops = ncap;
        }
        p->ops[p->nops] = (struct pz_op){.pidx = pidx,
                                         .from = sl->node,
                                         .to = to,
                                         .aux = sl->pos,
                                         .slot = (uint8_t)slot,
                                         .reason = (uint8_t)reason};
    }
    int rc = pz_assign(m, pidx, slot, to, reason);
    if (rc == 0 && p->logging) {
        p->nops++;
    }
    return rc;
}

/* Undoes one logged assignment exactly: the replica leaves the end of its new node's list
 * (where it was appended; later ones are undone already) and goes back to its old position,
 * whose current holder returns to the end it came from. Loads come back from the snapshot. */
static void undo_op(pz_model *m, const struct pz_op *op)
{
    pz_part *p = m->parts[op->pidx];
    pz_slot *sl = &p->slots[op->slot];
    uint32_t rid = PZ_RID(op->pidx, op->slot);
    if (op->to != PZ_NONE) {
        m->nodes[op->to].nlist--;
    } else {
        m->nvacant--;
    }
    if (op->from == PZ_NONE) {
        sl->node = PZ_NONE;
        sl->pos = op->aux;
        m->nvacant++;
    } else {
        pz_node *f = &m->nodes[op->from];
        if (op->aux < f->nlist) {
            uint32_t other = f->list[op->aux];
            f->list[f->nlist] = other;
            m->parts[PZ_RID_PART(other)]->slots[PZ_RID_SLOT(other)].pos = f->nlist;
        }
        f->list[op->aux] = rid;
        f->nlist++;
        sl->node = op->from;
        sl->pos = op->aux;
    }
    vacbit_refresh(m, op->pidx);
}

void pz_plan_revert(pz_model *m, const shardz_plan *p)
{
    if (p->ops) {
        for (size_t i = p->nops; i-- > 0;) {
            undo_op(m, &p->ops[i]);
        }
        goto loads;
    }
    for (size_t i = p->n; i-- > 0;) {
        const pz_move *mv = &p->moves[i];
        /* Lists only shrink back to sizes they had: no allocation, cannot fail. */
        (void)pz_assign(m, mv->pidx, mv->slot, mv->from, (shardz_reason)mv->pad);
    }
loads:
    if (p->node_load) {
        for (uint32_t n = 0; n < m->nnodes; n++) {
            memcpy(m->nodes[n].load, p->node_load + (size_t)n * m->ndims,
                   m->ndims * sizeof(double));
        }
    }
}

void pz_plan_commit(pz_model *m, shardz_plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        m->parts[p->moves[i].pidx]->gen++;
    }
    memset(m->zone_room, 0, m->capzones * sizeof *m->zone_room);
    for (uint32_t n = 0; n < m->nnodes; n++) {
        pz_node *nd = &m->nodes[n];
        nd->joined = false;
        if (nd->gone && nd->id && nd->nlist == 0) {
            (void)node_recycle(m, n);
        }
        if (nd->id && pz_node_eligible(m, n)) {
            m->zone_room[nd->zone]++;
        }
    }
    m->revision++;
}
