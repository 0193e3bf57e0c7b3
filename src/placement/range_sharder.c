/* The "range" kind: the replica kind's node placement (the generic membership calls and
 * pz_replica_plan) plus a range table (rtable.h) in s->kind that routes keys to partitions.
 * Owns the public range accessors (include/shardz/range.h). The table names partitions by id,
 * so the model renumbering its partitions never touches it. Pure, one thread (the sharder's). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "placement/model.h"
#include "placement/rtable.h"

static int pz_range_init(shardz_sharder *s)
{
    pz_rtable *t = calloc(1, sizeof *t);

    if (t == NULL) {
        return SHARDZ_ENOMEM;
    }
    pz_rtable_init(t);
    s->kind = t;
    return 0;
}

/* Accepts a sharder whose init failed (s->kind NULL). */
static void pz_range_destroy(shardz_sharder *s)
{
    if (s->kind != NULL) {
        pz_rtable_destroy(s->kind);
    }
    free(s->kind);
    s->kind = NULL;
}

/* A routed partition stays registered until the table lets it go. */
static int pz_range_unregister_partitions(shardz_sharder *s, const char *const *ids, size_t n)
{
    for (size_t i = 0; ids != NULL && i < n; i++) {
        if (ids[i] != NULL && pz_rtable_index(s->kind, ids[i]) != PZ_RT_NONE) {
            return SHARDZ_EBUSY;
        }
    }
    return pz_generic_unregister_partitions(s, ids, n);
}

static int pz_range_partition_for_key(const shardz_sharder *s, const void *key, size_t len,
                                      const char **partition)
{
    size_t i = pz_rtable_find(s->kind, key, len);

    if (i == PZ_RT_NONE) {
        return SHARDZ_ENOENT;
    }
    *partition = ((const pz_rtable *)s->kind)->e[i].pid;
    return 0;
}

const pz_ops pz_range_ops = {
    .version = PZ_OPS_VERSION,
    .name = "range",
    .init = pz_range_init,
    .destroy = pz_range_destroy,
    .register_nodes = pz_generic_register_nodes,
    .unregister_nodes = pz_generic_unregister_nodes,
    .register_partitions = pz_generic_register_partitions,
    .unregister_partitions = pz_range_unregister_partitions,
    .partitions_of_node = pz_generic_partitions_of_node,
    .nodes_of_partition = pz_generic_nodes_of_partition,
    .plan = pz_replica_plan,
    .partition_for_key = pz_range_partition_for_key,
};

/* ---- public accessors (include/shardz/range.h) ------------------------------------------ */

int shardz_sharder_range_list(const shardz_sharder *s, shardz_key_range *out, size_t cap, size_t *n)
{
    const pz_rtable *t;

    if (s == NULL || n == NULL || (cap > 0 && out == NULL)) {
        return SHARDZ_EINVAL;
    }
    if (s->ops != &pz_range_ops) {
        return SHARDZ_ENOTSUP;
    }
    t = s->kind;
    for (size_t i = 0; i < t->n && i < cap; i++) {
        pz_rtable_get(t, i, &out[i]);
    }
    *n = t->n;
    return 0;
}

int shardz_sharder_range_of(const shardz_sharder *s, const char *partition, shardz_key_range *out)
{
    size_t i;

    if (s == NULL || partition == NULL || out == NULL) {
        return SHARDZ_EINVAL;
    }
    if (s->ops != &pz_range_ops) {
        return SHARDZ_ENOTSUP;
    }
    i = pz_rtable_index(s->kind, partition);
    if (i == PZ_RT_NONE) {
        return SHARDZ_ENOENT;
    }
    pz_rtable_get(s->kind, i, out);
    return 0;
}

/* Every range names a registered partition. */
static int all_registered(const shardz_sharder *s, const shardz_key_range *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (r[i].partition == NULL) {
            return SHARDZ_EINVAL;
        }
        if (pz_part_find(&s->m, r[i].partition) == PZ_NONE) {
            return SHARDZ_ENOENT;
        }
    }
    return 0;
}

int shardz_sharder_range_restore(shardz_sharder *s, const shardz_key_range *ranges, size_t n)
{
    int rc;

    if (s == NULL || (n > 0 && ranges == NULL)) {
        return SHARDZ_EINVAL;
    }
    if (s->ops != &pz_range_ops) {
        return SHARDZ_ENOTSUP;
    }
    rc = all_registered(s, ranges, n);
    if (rc == 0) {
        rc = pz_rtable_restore(s->kind, ranges, n);
    }
    if (rc == 0) {
        s->m.revision++;
    }
    return rc;
}

int shardz_sharder_range_replace(shardz_sharder *s, const char *const *old, size_t nold,
                                 const shardz_key_range *ranges, size_t nnew)
{
    pz_rtable *t;
    size_t first;
    int rc;

    if (s == NULL || old == NULL || nold == 0 || ranges == NULL || nnew == 0) {
        return SHARDZ_EINVAL;
    }
    if (s->ops != &pz_range_ops) {
        return SHARDZ_ENOTSUP;
    }
    t = s->kind;
    first = pz_rtable_index(t, old[0]);
    if (first == PZ_RT_NONE) {
        return SHARDZ_ENOENT;
    }
    for (size_t i = 1; i < nold; i++) {
        size_t k = pz_rtable_index(t, old[i]);

        if (k == PZ_RT_NONE) {
            return SHARDZ_ENOENT;
        }
        if (k != first + i) {
            return SHARDZ_EINVAL; /* not the next neighbour in key order */
        }
    }
    rc = all_registered(s, ranges, nnew);
    if (rc == 0) {
        rc = pz_rtable_replace(t, first, nold, ranges, nnew);
    }
    if (rc == 0) {
        s->m.revision++;
    }
    return rc;
}

/* A hot range and its load, for sorting. */
typedef struct {
    const char *pid;
    double load;
} hot_range;

static int hotter_first(const void *a, const void *b)
{
    const hot_range *x = a, *y = b;
    if (x->load != y->load) {
        return x->load > y->load ? -1 : 1;
    }
    return strcmp(x->pid, y->pid); /* deterministic */
}

int shardz_sharder_range_hot(const shardz_sharder *s, double band, size_t dim, const char **out,
                             size_t cap, size_t *n)
{
    const pz_rtable *t;
    const pz_model *m;
    hot_range *hot;
    double total = 0;
    size_t k = 0;
    uint32_t eligible = 0;

    if (s == NULL || n == NULL || (cap > 0 && out == NULL) || !isfinite(band) || band < 0 ||
        band > 1) {
        return SHARDZ_EINVAL;
    }
    if (s->ops != &pz_range_ops) {
        return SHARDZ_ENOTSUP;
    }
    m = &s->m;
    if (dim >= m->ndims) {
        return SHARDZ_EINVAL;
    }
    t = s->kind;
    *n = 0;
    for (uint32_t i = 0; i < m->nnodes; i++) {
        if (m->nodes[i].id != NULL && pz_node_eligible(m, i)) {
            eligible++;
            total += m->nodes[i].load[dim];
        }
    }
    if (eligible == 0 || total <= 0 || t->n == 0) {
        return 0;
    }
    hot = malloc(t->n * sizeof *hot);
    if (hot == NULL) {
        return SHARDZ_ENOMEM;
    }
    for (size_t i = 0; i < t->n; i++) {
        uint32_t p = pz_part_find(m, t->e[i].pid);
        double load = p == PZ_NONE ? 0 : pz_part_load(m, p)[dim];
        if (load > (1 + band) * total / eligible) {
            hot[k++] = (hot_range){t->e[i].pid, load};
        }
    }
    qsort(hot, k, sizeof *hot, hotter_first);
    for (size_t i = 0; i < k && i < cap; i++) {
        out[i] = hot[i].pid;
    }
    *n = k;
    free(hot);
    return 0;
}
