/* shardzd namespaces: configuration, nodes, partitions and their replica slots; turning the
 * placement library's plans into moves (make-before-break, or break-before-make in strict
 * mode) and advancing them as workers acknowledge; persisting every record to the store
 * before the step it enables is pushed to workers; loading it all back after a restart.
 * Event-loop thread. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/oom.h"
#include "daemon/core/apage.h"
#include "daemon/core/lease.h"
#include "daemon/core/record.h"
#include "daemon/daemon.h"
#include "daemon/testhook.h"
#include "daemon/health_lane.h"
#include "daemon/range.h"
#include "daemon/sbuf.h"
#include "daemon/store_lane.h"

static const char *node_key(const void *ctx, uint32_t i)
{
    return ((const szd_ns *)ctx)->nodes[i]->id;
}

static const char *part_key(const void *ctx, uint32_t i)
{
    return ((const szd_ns *)ctx)->parts[i].id;
}

static const char *const rstate_names[] = {"none",    "pending",  "adding",
                                           "serving", "dropping", "retired"};

static int rstate_parse(const char *s)
{
    for (int i = 0; s && i <= SZD_R_RETIRED; i++) {
        if (strcmp(s, rstate_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static int reason_parse(const char *s)
{
    for (int i = 0; s && i < SHARDZ_REASON__COUNT; i++) {
        if (strcmp(s, shardz_reason_name((shardz_reason)i)) == 0) {
            return i;
        }
    }
    return -1;
}

szd_node *szd_node_find(szd_ns *ns, const char *id)
{
    uint32_t i = szd_map_find(&ns->node_map, id, node_key, ns);
    return i == UINT32_MAX ? NULL : ns->nodes[i];
}

static int32_t node_index(szd_ns *ns, const char *id)
{
    uint32_t i = szd_map_find(&ns->node_map, id, node_key, ns);
    return i == UINT32_MAX ? -1 : (int32_t)i;
}

szd_part *szd_part_find(szd_ns *ns, const char *id)
{
    uint32_t i = szd_map_find(&ns->part_map, id, part_key, ns);
    return i == UINT32_MAX ? NULL : &ns->parts[i];
}

szd_ns *szd_ns_find(szd *d, const char *name)
{
    for (uint32_t i = 0; i < d->nns; i++) {
        if (strcmp(d->ns[i]->cfg.name, name) == 0) {
            return d->ns[i];
        }
    }
    return NULL;
}

/* ---- configuration ------------------------------------------------------------------- */

json_t *szd_ns_config_json(const szd_ns *ns)
{
    const szd_ns_config *c = &ns->cfg;
    json_t *dims = json_array();
    for (size_t i = 0; i < c->ndims; i++) {
        json_array_append_new(dims, json_string(c->dims[i]));
    }
    json_t *j =
        json_pack("{s:s, s:s, s:i, s:b, s:s, s:I, s:I, s:I, s:o, s:f}", "name", c->name, "sharder",
                  c->sharder, "replicas", (int)c->replicas, "roles", c->roles, "consistency",
                  c->strict ? "strict" : "available", "ping_interval_ms",
                  (json_int_t)c->ping_interval_ms, "dead_after_ms", (json_int_t)c->dead_after_ms,
                  "lease_ms", (json_int_t)c->lease_ms, "dimensions", dims, "band", c->band);
    json_object_set_new(j, "load_tau_ms", json_integer((json_int_t)c->load_tau_ms));
    json_object_set_new(j, "transfer_timeout_ms", json_integer((json_int_t)c->transfer_timeout_ms));
    json_object_set_new(j, "min_available", json_integer((json_int_t)c->min_available));
    json_object_set_new(j, "max_moves_in_flight", json_integer((json_int_t)c->max_moves_in_flight));
    json_object_set_new(j, "frozen", json_boolean(c->frozen));
    json_object_set_new(j, "startup_grace_ms", json_integer((json_int_t)c->startup_grace_ms));
    json_object_set_new(j, "min_nodes", json_integer((json_int_t)c->min_nodes));
    json_t *w = json_object();
    for (size_t d = 0; d < c->ndims; d++) {
        json_object_set_new(w, c->dims[d],
                            json_real(d < c->balance.ndims_weight ? c->balance.dims_weight[d] : 1));
    }
    json_object_set_new(j, "balance",
                        json_pack("{s:I, s:f, s:f, s:I, s:f, s:o}", "interval_ms",
                                  (json_int_t)c->balance_interval_ms, "band", c->balance.band,
                                  "max_moves_fraction", c->balance.max_moves_fraction,
                                  "cooldown_ms", (json_int_t)c->balance.cooldown_ms, "hysteresis",
                                  c->balance.hysteresis, "weights", w));
    if (strcmp(c->sharder, "hash") == 0) {
        json_object_set_new(j, "slots", json_integer(c->slots));
    }
    return j;
}

json_t *szd_ns_config_record(const szd_ns *ns)
{
    json_t *j = szd_ns_config_json(ns);
    json_object_set_new(j, "generation_floor", json_integer((json_int_t)ns->gen_floor));
    if (ns->slots && ns->slots->m.page_slots > 0) { /* the committed slot table (persist.c) */
        json_object_set_new(j, "slot_table", szd_slot_manifest_json(&ns->slots->m));
    }
    return j;
}

/* ---- persistence --------------------------------------------------------------------- */

static int runs_cmp(const void *a, const void *b)
{
    const shardz_slot_range *x = a, *y = b;
    int c = strcmp(x->partition, y->partition);
    return c ? c : (x->lo > y->lo) - (x->lo < y->lo);
}

int szd_runs_load(const szd_ns *ns, szd_runs *out)
{
    *out = (szd_runs){0};
    size_t n = 0;
    if (strcmp(ns->cfg.sharder, "hash") != 0 ||
        shardz_sharder_slot_ranges(ns->sh, NULL, NULL, 0, &n) != 0 || n == 0) {
        return 0;
    }
    out->r = calloc(n, sizeof *out->r);
    if (!out->r) {
        return SHARDZ_ENOMEM;
    }
    if (shardz_sharder_slot_ranges(ns->sh, NULL, out->r, n, &n) != 0) {
        szd_runs_free(out);
        return SHARDZ_EIO;
    }
    out->n = n;
    qsort(out->r, n, sizeof *out->r, runs_cmp);
    return 0;
}

void szd_runs_free(szd_runs *runs)
{
    free(runs->r);
    *runs = (szd_runs){0};
}

/* A partition's slot runs [[lo, hi), ...] in a hash namespace: from the table (a binary
 * search). */
static json_t *slot_runs_json(const szd_runs *runs, const char *id)
{
    json_t *arr = json_array();
    size_t lo = 0, hi = runs->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(runs->r[mid].partition, id) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (size_t k = lo; k < runs->n && strcmp(runs->r[k].partition, id) == 0; k++) {
        json_array_append_new(
            arr, json_pack("[I, I]", (json_int_t)runs->r[k].lo, (json_int_t)runs->r[k].hi));
    }
    return arr;
}

/* Written by hand, not through a jansson tree: a million of these follow a bulk add. Ids are
 * plain ([A-Za-z0-9._:-], checked on the way in) and need no escaping; fields at their default
 * (no previous owner, reason "new") are left out, as the loader (parse_slots) reads them. The
 * move history and range bounds, when it has them, go through jansson. */
char *szd_part_record_text(const szd_ns *ns, const szd_part *p, uint64_t w)
{
    szd_sbuf b = {0};
    szd_sb_printf(&b, "{\"id\":\"%s\",\"slots\":[", p->id);
    for (unsigned s = 0; s < p->nrep; s++) {
        const szd_slot *sl = &p->slots[s];
        szd_sb_str(&b, s ? ",{" : "{");
        if (sl->owner >= 0) {
            szd_sb_printf(&b, "\"owner\":\"%s\",", ns->nodes[sl->owner]->id);
        }
        szd_sb_printf(&b, "\"state\":\"%s\",\"generation\":%llu",
                      szd_rstate_name((szd_rstate)sl->owner_state),
                      (unsigned long long)sl->generation);
        if (sl->prev >= 0) {
            szd_sb_printf(&b, ",\"prev\":\"%s\",\"prev_state\":\"%s\",\"prev_generation\":%llu",
                          ns->nodes[sl->prev]->id, szd_rstate_name((szd_rstate)sl->prev_state),
                          (unsigned long long)sl->prev_generation);
        }
        if (sl->reason != SHARDZ_REASON_NEW) {
            szd_sb_printf(&b, ",\"reason\":\"%s\"", shardz_reason_name((shardz_reason)sl->reason));
        }
        szd_sb_str(&b, "}");
    }
    szd_sb_str(&b, "]");
    if (w) {
        szd_sb_printf(&b, ",\"w\":%llu", (unsigned long long)w);
    }
    json_t *extra = json_object(); /* no hash slots: the table has keys of its own (STORE.md 5) */
    if (p->history) {
        json_object_set_new(extra, "history", szd_history_json(p));
    }
    szd_range_fields(ns, p->id, extra, true);
    if (json_object_size(extra) > 0) {
        char *t = json_dumps(extra, JSON_COMPACT); /* "{...}": its members follow ours */
        if (!t) {
            szd_oom();
        }
        szd_sb_str(&b, ",");
        szd_sb_str(&b, t + 1);
        free(t);
    } else {
        szd_sb_str(&b, "}");
    }
    json_decref(extra);
    return szd_sb_take(&b);
}

json_t *szd_node_record(const szd_ns *ns, const szd_node *n)
{
    json_t *cap = json_object();
    for (size_t i = 0; i < n->ncap; i++) {
        json_object_set_new(cap, ns->cfg.dims[i], json_real(n->cap[i]));
    }
    json_t *rec =
        json_pack("{s:s, s:s, s:s, s:o, s:b, s:b}", "id", n->id, "address", n->address, "zone",
                  n->zone, "capacity", cap, "leaving", n->leaving, "drained", n->drained);
    if (n->incarnation[0]) {
        json_object_set_new(rec, "incarnation", json_string(n->incarnation));
    }
    if (n->drain_reason[0]) {
        json_object_set_new(rec, "drain_reason", json_string(n->drain_reason));
    }
    return rec;
}

/* ---- namespaces ---------------------------------------------------------------------- */

static void on_tick(evutil_socket_t fd, short what, void *arg);
/* Strict mode: a holder of a removed partition (a node that may still serve its replica of
 * slot `slot` at generation `gen`), kept until it answers without it or its lease has
 * certainly ended, and given back to the partition's slot if the id is added again
 * (core/slot.c: szd_slot_holder, szd_slot_held_by). Memory only. */
typedef struct szd_ghost {
    char *id;
    int32_t node;
    uint16_t slot;
    bool retired; /* an earlier process of the node holds it (SZD_R_RETIRED) */
    uint64_t gen;
} szd_ghost;

static void ghosts_restore(szd_ns *ns, szd_part *p);
static void slot_applied(szd_ns *ns, szd_part *p, unsigned s, const szd_slot_out *out);
static int ns_rebalance(szd_ns *ns);
static bool node_gone(const szd_ns *ns, int32_t i);
static void maybe_balance(szd_ns *ns);
static int32_t idx_of(const szd_ns *ns, const szd_node *n);
static void on_work(evutil_socket_t fd, short what, void *arg);

static szd_ns *ns_new(szd *d, const szd_ns_config *cfg)
{
    szd_ns *ns = calloc(1, sizeof *ns);
    if (!ns) {
        return NULL;
    }
    ns->d = d;
    ns->key = ++d->ns_keys;
    ns->cfg = *cfg;
    ns->revision = 1;
    shardz_sharder_config sc = {.kind = cfg->sharder,
                                .replicas = cfg->replicas,
                                .ndims = cfg->ndims,
                                .roles = cfg->roles,
                                .band = cfg->band,
                                .seed = 1,
                                .slots = cfg->slots};
    if (shardz_sharder_new(&sc, &ns->sh) != 0) {
        goto err;
    }
    ns->events = calloc(SZD_EVENTS, sizeof *ns->events);
    if (!ns->events) {
        goto err;
    }
    ns->event_seq = 1;
    if (strcmp(cfg->sharder, "hash") == 0) {
        ns->slots = calloc(1, sizeof *ns->slots);
        if (!ns->slots) {
            goto err;
        }
    }
    szd_live_start_grace(ns); /* a create, or a coordinator's start: the first placement waits */
    ns->tick = event_new(d->base, -1, EV_PERSIST, on_tick, ns);
    ns->work = event_new(d->base, -1, 0, on_work, ns);
    if (!ns->tick || !ns->work) {
        goto err;
    }
    struct timeval tv = {cfg->ping_interval_ms / 1000, (cfg->ping_interval_ms % 1000) * 1000};
    event_add(ns->tick, &tv);
    szd_hl_ns_set(d->hl, ns->key, cfg->name, cfg->ping_interval_ms, cfg->dead_after_ms,
                  cfg->lease_ms, cfg->strict);
    return ns;
err:
    szd_ns_free(ns);
    return NULL;
}

void szd_ns_free(szd_ns *ns)
{
    if (!ns) {
        return;
    }
    if (ns->key) {
        szd_hl_ns_del(ns->d->hl, ns->key);
    }
    szd_ns_forget_flights(ns);
    szd_state_body_release(ns);
    szd_watch_cancel_all(ns);
    if (ns->tick) {
        event_free(ns->tick);
    }
    if (ns->work) {
        event_free(ns->work);
    }
    for (uint32_t i = 0; i < ns->nnodes; i++) {
        szd_node_close(ns->nodes[i]);
        szd_push_node_free(ns->nodes[i]);
        free(ns->nodes[i]);
    }
    free(ns->nodes);
    for (uint32_t i = 0; i < ns->nparts; i++) {
        szd_history_free(&ns->parts[i]);
        free(ns->parts[i].load);
    }
    free(ns->parts);
    free(ns->dirty_idx);
    for (size_t i = 0; i < ns->nghosts; i++) {
        free(ns->ghosts[i].id);
    }
    free(ns->ghosts);
    szd_idset_clear(&ns->transfers);
    szd_gate_free(ns);
    szd_map_free(&ns->node_map);
    szd_map_free(&ns->part_map);
    shardz_sharder_free(ns->sh);
    szd_range_free(ns);
    json_decref(ns->restore);
    szd_slot_table_free(ns->slots);
    szd_apages_free(ns);
    for (uint32_t i = 0; ns->events && i < SZD_EVENTS; i++) {
        json_decref(ns->events[i]);
    }
    free(ns->events);
    free(ns);
}

/* ---- events -------------------------------------------------------------------------- */

void szd_event(szd_ns *ns, const char *type, json_t *fields)
{
    if (!fields) {
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_object_set_new(fields, "seq", json_integer((json_int_t)ns->event_seq));
    json_object_set_new(fields, "time_ms",
                        json_integer((json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
    json_object_set_new(fields, "type", json_string(type));
    json_t **slot = &ns->events[ns->event_seq % SZD_EVENTS];
    json_decref(*slot);
    *slot = fields;
    ns->event_seq++;
}

json_t *szd_events_json(const szd_ns *ns, uint64_t since, size_t limit)
{
    json_t *list = json_array();
    uint64_t first = ns->event_seq > SZD_EVENTS ? ns->event_seq - SZD_EVENTS : 1;
    uint64_t seq = since + 1 > first ? since + 1 : first;
    for (; seq < ns->event_seq && json_array_size(list) < limit; seq++) {
        json_array_append(list, ns->events[seq % SZD_EVENTS]);
    }
    return json_pack("{s:o, s:I, s:I}", "events", list, "next", (json_int_t)(seq - 1), "first",
                     (json_int_t)first);
}

static int ns_attach(szd *d, szd_ns *ns)
{
    if (d->nns == d->capns) {
        uint32_t ncap = d->capns ? 2 * d->capns : 8;
        szd_ns **nn = realloc(d->ns, ncap * sizeof *nn);
        if (!nn) {
            return SHARDZ_ENOMEM;
        }
        d->ns = nn;
        d->capns = ncap;
    }
    d->ns[d->nns++] = ns;
    return 0;
}

/* Adds partition records (vacant) to the daemon side; the sharder already has them. */
/* ---- the dirty list: the partitions whose records the next batch writes ---------------- */

void szd_parts_dirty_push(szd_ns *ns, uint32_t idx)
{
    ns->parts_dirty = true;
    if (ns->dirty_scan) {
        return;
    }
    if (ns->ndirty == ns->capdirty) {
        /* past half the partitions a list costs more than looking at every flag */
        size_t cap = ns->capdirty ? 2 * ns->capdirty : 64;
        uint32_t *nd =
            cap / 2 <= ns->nparts / 2 + 64 ? realloc(ns->dirty_idx, cap * sizeof *nd) : NULL;
        if (!nd) {
            szd_parts_dirty_all(ns);
            return;
        }
        ns->dirty_idx = nd;
        ns->capdirty = cap;
    }
    ns->dirty_idx[ns->ndirty++] = idx;
}

void szd_part_mark_dirty(szd_ns *ns, szd_part *p)
{
    if (!p->dirty) {
        p->dirty = true;
        szd_parts_dirty_push(ns, (uint32_t)(p - ns->parts));
    }
    ns->parts_dirty = true;
}

void szd_parts_dirty_all(szd_ns *ns)
{
    ns->dirty_scan = true;
    ns->ndirty = 0;
    ns->parts_dirty = true;
}

/* Room for `more` partitions past those held, in the array and its map, at once (a load knows
 * how many records come: no doubling and rebuilding on the way). */
static int parts_reserve(szd_ns *ns, uint32_t more)
{
    if (ns->nparts + more <= ns->capparts) {
        return 0;
    }
    szd_part *np = realloc(ns->parts, (size_t)(ns->nparts + more) * sizeof *np);
    if (!np) {
        return SHARDZ_ENOMEM;
    }
    ns->parts = np;
    ns->capparts = ns->nparts + more;
    return szd_map_reserve(&ns->part_map, ns->nparts, ns->nparts + more, part_key, ns);
}

static int parts_append(szd_ns *ns, const char *const *ids, size_t n, unsigned nrep)
{
    if (ns->nparts + n > ns->capparts) {
        uint32_t ncap = ns->capparts ? ns->capparts : 64;
        while (ncap < ns->nparts + n) {
            ncap *= 2;
        }
        szd_part *np = realloc(ns->parts, ncap * sizeof *np);
        if (!np) {
            return SHARDZ_ENOMEM;
        }
        ns->parts = np;
        ns->capparts = ncap;
    }
    for (size_t i = 0; i < n; i++) {
        szd_part *p = &ns->parts[ns->nparts + i];
        size_t idlen = strlen(ids[i]);
        memset(p, 0, sizeof *p);
        size_t nd = ns->cfg.ndims;
        p->load = calloc(1, nd * sizeof(double) + nrep * sizeof(szd_slot) + idlen + 1);
        if (!p->load) {
            while (i-- > 0) {
                free(ns->parts[ns->nparts + i].load);
            }
            return SHARDZ_ENOMEM;
        }
        p->slots = (szd_slot *)(p->load + nd);
        p->id = (char *)(p->slots + nrep);
        memcpy(p->id, ids[i], idlen + 1);
        p->nrep = (uint16_t)nrep;
        for (unsigned s = 0; s < nrep; s++) {
            p->slots[s].owner = -1;
            p->slots[s].prev = -1;
        }
        p->dirty = true;
        szd_apage_join(ns, p);
        szd_parts_dirty_push(ns, ns->nparts + (uint32_t)i);
    }
    ns->parts_dirty = true;
    ns->nparts += (uint32_t)n;
    /* one by one (the map grows by doubling): a load appending 100,000 partitions one at a
     * time stays linear */
    for (uint32_t idx = ns->nparts - (uint32_t)n; idx < ns->nparts; idx++) {
        int rc = szd_map_insert(&ns->part_map, idx, idx + 1, part_key, ns);
        if (rc) {
            return rc;
        }
    }
    return 0;
}

/* Registers partitions (ids checked by the caller) with the sharder, all slots vacant. */
static int sharder_add_parts(szd_ns *ns, const char *const *ids, size_t n)
{
    const char *vacant[SHARDZ_MAX_REPLICAS] = {0};
    shardz_partition_spec *specs = calloc(n ? n : 1, sizeof *specs);
    if (!specs) {
        return SHARDZ_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        specs[i].id = ids[i];
        specs[i].replicas = ns->cfg.replicas;
        specs[i].nnodes = ns->cfg.replicas; /* all vacant: placed by the next rebalance */
        specs[i].nodes = vacant;
        specs[i].generation = ns->gen_floor; /* its first owner gets gen_floor + 1 */
    }
    int rc = shardz_sharder_register_partitions(ns->sh, specs, n);
    free(specs);
    return rc;
}

/* Validates a partitions argument (a count or a list of ids) into a list of ids. */
static int parse_part_ids(szd_ns *ns, json_t *arg, char ***out, size_t *n, char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!arg) {
        return 0;
    }
    size_t count;
    if (json_is_integer(arg)) {
        if (json_integer_value(arg) < 0 || json_integer_value(arg) > 1000000) {
            snprintf(err, errlen, "partitions must be a count in [0, 1000000] or a list of ids");
            return SHARDZ_EINVAL;
        }
        count = (size_t)json_integer_value(arg);
    } else if (json_is_array(arg)) {
        count = json_array_size(arg);
    } else {
        snprintf(err, errlen, "partitions must be a count or a list of ids");
        return SHARDZ_EINVAL;
    }
    char **ids = calloc(count ? count : 1, sizeof *ids);
    if (!ids) {
        return SHARDZ_ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        char num[32];
        const char *id = num;
        if (json_is_integer(arg)) {
            snprintf(num, sizeof num, "%zu", i);
        } else {
            id = json_string_value(json_array_get(arg, i));
        }
        if (!szd_valid_id(id)) {
            snprintf(err, errlen, "partition %zu: ids are 1-%d bytes of [A-Za-z0-9._:-]", i,
                     SHARDZ_MAX_ID);
            goto bad;
        }
        if (szd_part_find(ns, id)) {
            snprintf(err, errlen, "partition '%s' already exists", id);
            for (size_t k = 0; k < i; k++) {
                free(ids[k]);
            }
            free(ids);
            return SHARDZ_EEXIST;
        }
        ids[i] = strdup(id);
        if (!ids[i]) {
            goto nomem;
        }
    }
    /* duplicates inside a list are refused by the sharder (SHARDZ_EEXIST) */
    *out = ids;
    *n = count;
    return 0;
nomem:
    for (size_t k = 0; k < count; k++) {
        free(ids[k]);
    }
    free(ids);
    return SHARDZ_ENOMEM;
bad:
    for (size_t k = 0; k < count; k++) {
        free(ids[k]);
    }
    free(ids);
    return SHARDZ_EINVAL;
}

static void free_ids(char **ids, size_t n)
{
    for (size_t i = 0; ids && i < n; i++) {
        free(ids[i]);
    }
    free(ids);
}

/* What a deleted namespace of this name left (its gone/<name> mark: the revision and the
 * generation floor the next one starts above); zeros when none. */
typedef struct {
    char key[SHARDZ_KEY_BUF];
    int klen;
    uint64_t revision, gen_floor;
} gone_read;

static int run_gone_read(shardz_store *st, void *arg)
{
    gone_read *g = arg;
    shardz_kv *kv = NULL;
    int rc = shardz_store_get(st, g->key, (size_t)g->klen, &kv, NULL);
    if (rc == SHARDZ_ENOENT) {
        return 0;
    }
    if (rc) {
        return rc;
    }
    json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);
    json_int_t rev = json_integer_value(json_object_get(j, "revision"));
    json_int_t floor = json_integer_value(json_object_get(j, "generation_floor"));
    g->revision = rev > 0 ? (uint64_t)rev : 0;
    g->gen_floor = floor > 0 ? (uint64_t)floor : 0;
    json_decref(j);
    shardz_kv_free(kv);
    return 0;
}

int szd_ns_create(szd *d, const szd_ns_config *cfg, json_t *partitions, szd_ns **out, char *err,
                  size_t errlen)
{
    if (szd_ns_find(d, cfg->name)) {
        snprintf(err, errlen, "namespace '%s' already exists", cfg->name);
        return SHARDZ_EEXIST;
    }
    szd_ns *ns = ns_new(d, cfg);
    if (!ns) {
        snprintf(err, errlen, "out of memory");
        return SHARDZ_ENOMEM;
    }
    char **ids = NULL;
    size_t n = 0;
    /* a namespace of this name deleted before: this one starts above its revision and its
     * generations (docs/PROTOCOL.md 6) */
    gone_read g = {0};
    g.klen = shardz_key_build(g.key, sizeof g.key, SHARDZ_KEY_GONE, cfg->name, NULL);
    int rc = g.klen < 0 ? g.klen : szd_sl_call(d->sl, run_gone_read, &g);
    if (rc) {
        snprintf(err, errlen, "store: %s", shardz_strerror(rc));
        goto fail;
    }
    ns->revision = g.revision + 1 > ns->revision ? g.revision + 1 : ns->revision;
    ns->gen_floor = g.gen_floor;
    rc = parse_part_ids(ns, partitions, &ids, &n, err, errlen);
    if (rc) {
        goto fail;
    }
    rc = sharder_add_parts(ns, (const char *const *)ids, n);
    if (rc) {
        snprintf(err, errlen, "partitions: %s", shardz_strerror(rc));
        goto fail;
    }
    rc = parts_append(ns, (const char *const *)ids, n, cfg->replicas);
    if (rc == 0 && szd_is_range(ns)) {
        rc = szd_range_init(ns, err, errlen);
    }
    if (rc) {
        goto fail;
    }
    rc = szd_ns_flush(ns, true, err, errlen, NULL);
    if (rc) {
        goto fail;
    }
    rc = ns_attach(d, ns);
    if (rc) {
        goto fail;
    }
    free_ids(ids, n);
    szd_log(d, SZD_INFO, "msg=\"namespace created\" ns=%s sharder=%s partitions=%zu replicas=%u",
            cfg->name, cfg->sharder, n, cfg->replicas);
    *out = ns;
    return 0;
fail:
    free_ids(ids, n);
    szd_ns_free(ns);
    return rc;
}

/* The highest generation ns ever gave: its floor and every partition's. */
static uint64_t ns_top_generation(const szd_ns *ns)
{
    uint64_t top = ns->gen_floor;
    for (uint32_t i = 0; i < ns->nparts; i++) {
        uint64_t gen = 0;
        (void)shardz_sharder_generation(ns->sh, ns->parts[i].id, &gen);
        top = gen > top ? gen : top;
        for (unsigned s = 0; s < ns->parts[i].nrep; s++) {
            const szd_slot *sl = &ns->parts[i].slots[s];
            top = sl->generation > top ? sl->generation : top;
            top = sl->prev_generation > top ? sl->prev_generation : top;
        }
    }
    return top;
}

int szd_ns_delete(szd *d, szd_ns *ns)
{
    char prefix[SHARDZ_KEY_BUF], gone[SHARDZ_KEY_BUF];
    int len = shardz_key_ns_prefix(prefix, sizeof prefix, ns->cfg.name);
    if (len < 0) {
        return len;
    }
    int glen = shardz_key_build(gone, sizeof gone, SHARDZ_KEY_GONE, ns->cfg.name, NULL);
    if (glen < 0) {
        return glen;
    }
    /* the workers' last assignment of it, and the mark its name's next namespace starts above
     * (revisions and generations keep growing per name: a worker can tell them apart) */
    uint64_t last = ns->revision + 1;
    json_t *mark = json_pack("{s:I, s:I}", "revision", (json_int_t)last, "generation_floor",
                             (json_int_t)ns_top_generation(ns));
    char *text = json_dumps(mark, JSON_COMPACT);
    json_decref(mark);
    if (!text) {
        szd_oom();
    }
    shardz_op ops[2] = {{SHARDZ_OP_DELETE_PREFIX, prefix, (size_t)len, NULL, 0, 0},
                        {SHARDZ_OP_PUT, gone, (size_t)glen, text, strlen(text), 0}};
    int rc = szd_store_txn(d, ops, 2, NULL, 0);
    free(text);
    if (rc) {
        return rc;
    }
    for (uint32_t i = 0; i < d->nns; i++) {
        if (d->ns[i] == ns) {
            d->ns[i] = d->ns[--d->nns];
            break;
        }
    }
    /* Tell the workers to delete everything (a strict worker's lease would lapse anyway; an
     * available one would serve forever), then free. */
    szd_push_farewell(d, ns, last, ns->cfg.lease_ms + ns->cfg.dead_after_ms + 30000);
    szd_log(d, SZD_INFO, "msg=\"namespace deleted\" ns=%s revision=%llu", ns->cfg.name,
            (unsigned long long)last);
    szd_ns_free(ns);
    return 0;
}

json_t *szd_ns_summary_json(const szd_ns *ns)
{
    json_t *j = szd_ns_config_json(ns);
    json_t *states = json_object();
    size_t cnt[SZD_NODE_LEFT + 1] = {0};
    for (uint32_t i = 0; i < ns->nnodes; i++) {
        cnt[ns->nodes[i]->state]++;
    }
    for (int s = 0; s <= SZD_NODE_LEFT; s++) {
        json_object_set_new(states, szd_node_state_name((szd_node_state)s),
                            json_integer((json_int_t)cnt[s]));
    }
    size_t missing = 0, moves = 0, below = 0;
    for (uint32_t i = 0; i < ns->nparts; i++) {
        uint32_t nserving = 0;
        for (unsigned s = 0; s < ns->parts[i].nrep; s++) {
            const szd_slot *sl = &ns->parts[i].slots[s];
            bool serving = sl->owner_state == SZD_R_SERVING || sl->prev_state == SZD_R_SERVING;
            missing += !serving;
            nserving += !node_gone(ns, szd_slot_serving_node(sl)); /* dead ones serve nothing */
            moves += sl->owner >= 0 && sl->owner_state != SZD_R_SERVING;
        }
        below += nserving < ns->cfg.min_available;
    }
    json_object_set_new(j, "revision", json_integer((json_int_t)ns->revision));
    json_object_set_new(j, "nodes", states);
    json_object_set_new(j, "partitions", json_integer(ns->nparts));
    json_object_set_new(j, "missing", json_integer((json_int_t)missing));
    json_object_set_new(j, "moves", json_integer((json_int_t)moves));
    json_object_set_new(j, "queued_moves", json_integer((json_int_t)ns->nqueue));
    json_object_set_new(j, "below_floor", json_integer((json_int_t)below));
    return j;
}

/* ---- nodes --------------------------------------------------------------------------- */

shardz_node_state szd_sharder_state(szd_node_state st)
{
    switch (st) {
    case SZD_NODE_JOINING:
        return SHARDZ_NODE_JOINING;
    case SZD_NODE_ALIVE:
        return SHARDZ_NODE_ALIVE;
    case SZD_NODE_SUSPECT:
        return SHARDZ_NODE_SUSPECT;
    case SZD_NODE_DRAINING:
        return SHARDZ_NODE_DRAINING;
    default:
        return SHARDZ_NODE_DEAD;
    }
}

/* Sets a node's state, in the sharder too, and schedules what follows. */
void szd_node_set_state(szd_ns *ns, szd_node *n, szd_node_state st)
{
    if (n->state == st) {
        return;
    }
    szd_log(ns->d, SZD_INFO, "msg=\"node state\" ns=%s node=%s from=%s to=%s", ns->cfg.name, n->id,
            szd_node_state_name(n->state), szd_node_state_name(st));
    szd_node_state old = n->state;
    n->state = st;
    n->since_ms = szd_now(ns->d);
    szd_event(ns, "node-state",
              json_pack("{s:s, s:s, s:s}", "node", n->id, "from", szd_node_state_name(old), "to",
                        szd_node_state_name(st)));
    if (st == SZD_NODE_LEFT) {
        const char *id = n->id;
        szd_hl_node_del(ns->d->hl, ns->key, n->id); /* no more pings */
        if (old != SZD_NODE_LEFT) {
            (void)shardz_sharder_unregister_nodes(ns->sh, &id, 1, SHARDZ_REASON_LEAVE);
        }
    } else {
        (void)shardz_sharder_set_node_state(ns->sh, n->id, szd_sharder_state(st));
    }
    /* Placement changes only when eligibility or eviction changes. */
    if (st != SZD_NODE_SUSPECT && !(old == SZD_NODE_SUSPECT && st == SZD_NODE_ALIVE)) {
        ns->want_rebalance = true;
    }
    szd_ns_changed(ns);
}

/* Copies what a registration says (address, zone, capacity) from a parsed node. */
static void node_take_fields(szd_node *n, const szd_node_spec *from)
{
    snprintf(n->address, sizeof n->address, "%s", from->address);
    snprintf(n->host, sizeof n->host, "%s", from->host);
    n->port = from->port;
    n->ncap = from->ncap;
    memcpy(n->cap, from->cap, sizeof n->cap);
    snprintf(n->zone, sizeof n->zone, "%s", from->zone);
}

static int sharder_add_node(szd_ns *ns, szd_node *n, shardz_node_state st)
{
    shardz_node_spec spec = {.id = n->id, .zone = n->zone, .ncapacity = n->ncap, .state = st};
    memcpy(spec.capacity, n->cap, sizeof spec.capacity);
    return shardz_sharder_register_nodes(ns->sh, &spec, 1);
}

static szd_node *node_append(szd_ns *ns, const char *id)
{
    if (ns->nnodes == ns->capnodes) {
        uint32_t ncap = ns->capnodes ? 2 * ns->capnodes : 16;
        szd_node **nn = realloc(ns->nodes, ncap * sizeof *nn);
        if (!nn) {
            return NULL;
        }
        ns->nodes = nn;
        ns->capnodes = ncap;
    }
    szd_node *n = calloc(1, sizeof *n);
    if (!n) {
        return NULL;
    }
    n->ns = ns;
    snprintf(n->id, sizeof n->id, "%s", id);
    n->state = SZD_NODE_JOINING;
    n->since_ms = szd_now(ns->d);
    n->stamp = -1;
    ns->nodes[ns->nnodes] = n;
    if (szd_map_insert(&ns->node_map, ns->nnodes, ns->nnodes + 1, node_key, ns) != 0) {
        free(n);
        return NULL;
    }
    ns->nnodes++;
    return n;
}

/* Node n registers as a new process (incarnation) while its earlier one may live on: that
 * one is a holder apart (core/slot.c szd_slot_reincarnated). Strict: what it may hold waits
 * for its lease to end certainly, which runs at the latest from the last lease-granting
 * message that may reach it (a ping sent until now arrives within its timeout, the ping
 * interval; pushes as core/lease.c counts them); the new process is given what it owned
 * with new, higher generations once that lease ended. Costs one pass over the partitions
 * (a new process is rare; a registration of the same process skips it). */
static void node_reborn(szd_ns *ns, szd_node *n)
{
    int64_t now = szd_now(ns->d);
    int32_t me = idx_of(ns, n);
    szd_lease_facts facts = {.last_ok_ms = n->last_ok_ms,
                             .lease_from_ms = n->lease_from_ms,
                             .push_reach_ms = n->assign_reach_ms,
                             .failed_reach_ms = n->reach_ms};
    int64_t from = szd_lease_from(&facts);
    from = from > now + ns->cfg.ping_interval_ms ? from : now + ns->cfg.ping_interval_ms;
    int64_t until = from + ns->cfg.lease_ms;
    szd_slot_env env = szd_ns_slot_env(ns);
    size_t touched = 0;
    for (uint32_t k = 0; k < ns->nparts; k++) {
        szd_part *p = &ns->parts[k];
        for (unsigned s = 0; s < p->nrep; s++) {
            szd_slot *sl = &p->slots[s];
            if (sl->owner != me && sl->prev != me) {
                continue;
            }
            uint64_t gen = sl->generation;
            if (sl->owner == me &&
                (sl->owner_state == SZD_R_ADDING || sl->owner_state == SZD_R_SERVING)) {
                (void)shardz_sharder_bump_generation(ns->sh, p->id, &gen);
            }
            szd_slot_out out;
            szd_slot_out_init(&out);
            szd_slot_reincarnated(sl, &env, me, gen, (uint8_t)SHARDZ_REASON_REPAIR, &out);
            slot_applied(ns, p, s, &out);
            touched += out.changed;
        }
    }
    if (ns->cfg.strict && touched > 0) {
        n->retired_until_ms = until > n->retired_until_ms ? until : n->retired_until_ms;
    }
    /* what it holds is unknown: nothing it acknowledged counts (a ping of the new process
     * saying 0 is then no news, health.c) until it acknowledges a whole set again */
    n->applied_revision = 0;
    szd_log(ns->d, SZD_INFO,
            "msg=\"node restarted as a new process\" ns=%s node=%s replicas=%zu "
            "old_lease_ends_in_ms=%lld",
            ns->cfg.name, n->id, touched, (long long)(ns->cfg.strict ? until - now : 0));
    szd_event(ns, "node-reborn",
              json_pack("{s:s, s:I}", "node", n->id, "replicas", (json_int_t)touched));
}

void szd_node_state_unknown(szd_ns *ns, szd_node *n)
{
    node_reborn(ns, n);
}

int szd_node_register(szd_ns *ns, json_t *body, szd_node **out, char *err, size_t errlen)
{
    szd_node_spec tmp;
    int rc = szd_node_spec_parse(body, &ns->cfg, &tmp, err, errlen);
    if (rc) {
        return rc;
    }
    const char *id = tmp.id;
    const char *inc = tmp.incarnation[0] ? tmp.incarnation : NULL;
    szd_node *n = szd_node_find(ns, id);
    /* a new process under a known id is a new holder (docs/PROTOCOL.md 4.1): another
     * incarnation, or, from a worker that says none, another address */
    bool reborn = n && n->state != SZD_NODE_LEFT &&
                  (inc ? strcmp(n->incarnation, inc) != 0
                       : n->incarnation[0] || strcmp(n->address, tmp.address) != 0);
    /* the same worker registering again with nothing new (it lost contact, or restarted at
     * the same address): no change anyone else needs to hear of, so no new revision (routers
     * would all fetch the state again); it still gets its whole set */
    bool same = n && !reborn && n->state != SZD_NODE_LEFT && !n->leaving &&
                strcmp(n->address, tmp.address) == 0 && strcmp(n->zone, tmp.zone) == 0 &&
                n->ncap == tmp.ncap && memcmp(n->cap, tmp.cap, sizeof n->cap) == 0;
    /* the same process with nothing new, which spoke deltas and still offers them, and whose
     * acknowledged set nothing in flight can have changed: it goes on from that set (deltas
     * from its acknowledged base) instead of a whole set, which for a node of thousands of
     * replicas costs the loop a whole body to write and a whole reply to read. A worker that
     * lost its set meanwhile (a lease lapse, a release) reports applied revision 0 and refuses
     * a delta (409), and gets the whole set then (docs/PROTOCOL.md 4.1, 4.3). */
    bool go_on = same && n->delta_ok && tmp.delta && n->transfer_ok == tmp.transfer &&
                 !szd_is_range(ns) && n->state != SZD_NODE_DEAD && !n->need_full &&
                 !n->assign_inflight && !n->push_pending && n->base_revision > 0 &&
                 n->resync_from == 0;
    if (!same) {
        /* what it registers is durable before anything in memory changes: a failed write
         * answers 5xx and leaves the namespace as it was (issue 15) */
        szd_node cand = {0};
        if (n) {
            cand = *n; /* a copy to read its record from: no field of it is freed here */
        } else {
            snprintf(cand.id, sizeof cand.id, "%s", id);
        }
        node_take_fields(&cand, &tmp);
        cand.leaving = false;
        snprintf(cand.incarnation, sizeof cand.incarnation, "%s", inc ? inc : "");
        rc = szd_ns_write_node(ns, &cand, err, errlen);
        if (rc) {
            return rc;
        }
    }
    if (reborn) {
        node_reborn(ns, n);
    }
    if (n) {
        /* A worker registering again (a restart): new address, same replicas unless it was
         * declared dead or left in the meantime. */
        szd_node_close(n);
        node_take_fields(n, &tmp);
        n->released_sent = false;
        n->leaving = false;
        n->dirty = n->dirty || !go_on; /* going on: only what changed since its base */
        if (n->state == SZD_NODE_LEFT) {
            /* comes back as a new node of the sharder */
            rc = sharder_add_node(ns, n, SHARDZ_NODE_JOINING);
            if (rc) {
                snprintf(err, errlen, "placement: %s", shardz_strerror(rc));
                return rc;
            }
            n->state = SZD_NODE_JOINING;
        } else {
            /* new zone or capacity: updated in place, the placement decides what moves */
            shardz_node_spec spec = {.id = n->id,
                                     .zone = n->zone,
                                     .ncapacity = n->ncap,
                                     .state = szd_sharder_state(n->state)};
            memcpy(spec.capacity, n->cap, sizeof spec.capacity);
            rc = shardz_sharder_update_node(ns->sh, &spec);
            if (rc) {
                snprintf(err, errlen, "placement: %s", shardz_strerror(rc));
                return rc;
            }
            if (n->state == SZD_NODE_DRAINING && !n->drained) {
                szd_node_set_state(ns, n, SZD_NODE_JOINING);
            }
            /* registering is contact: a suspect node is alive (and eligible for its new share
             * now: suspect -> alive alone would not plan again) */
            if (n->state == SZD_NODE_SUSPECT) {
                szd_node_set_state(ns, n, SZD_NODE_ALIVE);
            }
        }
        if (!same) {
            ns->want_rebalance = true; /* new zone or capacity, or back from a leave */
        }
    } else {
        n = node_append(ns, id);
        if (!n) {
            snprintf(err, errlen, "out of memory");
            return SHARDZ_ENOMEM;
        }
        node_take_fields(n, &tmp);
        rc = sharder_add_node(ns, n, SHARDZ_NODE_JOINING);
        if (rc) {
            /* undo the append */
            ns->nnodes--;
            free(n);
            szd_map_rebuild(&ns->node_map, ns->nnodes, node_key, ns);
            snprintf(err, errlen, "placement: %s", shardz_strerror(rc));
            return rc;
        }
        n->dirty = true;
    }
    snprintf(n->incarnation, sizeof n->incarnation, "%s", inc ? inc : "");
    n->stamp = tmp.stamp;
    n->stamp_era++;
    /* deltas when it speaks them (docs/PROTOCOL.md 4.3; range namespaces: whole sets), from a
     * whole set after every registration but one that goes on (above) */
    n->delta_ok = tmp.delta && !szd_is_range(ns);
    n->transfer_ok = tmp.transfer; /* state transfer (4.3) */
    if (!go_on) {
        szd_push_full(n);
    } /* else what changed since its acknowledged base goes as a delta, as before (nothing when
       * nothing did: a worker that lost its set says applied revision 0 in its next ping, and
       * gets the whole set then, health.c) */
    /* heard from now: dead only after dead_after_ms without an answer */
    n->last_ok_ms = szd_now(ns->d);
    if (!same) {
        n->record_dirty = true;
        ns->nodes_dirty = true;
    }
    rc = szd_ns_flush(ns, false, err, errlen, NULL);
    if (rc) {
        return rc; /* its record is durable, what else changed is not: not kept (reload) */
    }
    szd_hl_node_set(ns->d->hl, ns->key, n->id, n->address, n->stamp);
    char zq[256];
    szd_log(ns->d, SZD_INFO, "msg=\"node registered\" ns=%s node=%s address=%s zone=\"%s\"",
            ns->cfg.name, n->id, n->address, szd_logq(zq, sizeof zq, n->zone));
    szd_event(ns, "node-registered",
              json_pack("{s:s, s:s, s:s}", "node", n->id, "address", n->address, "zone", n->zone));
    if (same) {
        szd_ns_schedule(ns); /* its whole set goes out; nothing else changed */
    } else {
        szd_ns_changed(ns);
    }
    *out = n;
    return 0;
}

int szd_node_leave(szd_ns *ns, szd_node *n)
{
    if (n->state == SZD_NODE_LEFT) {
        return 0;
    }
    n->leaving = true;
    n->record_dirty = true;
    ns->nodes_dirty = true;
    int rc = szd_ns_flush(ns, false, NULL, 0, NULL);
    if (rc) {
        return rc; /* not durable: not kept (szd_ns_reload) */
    }
    szd_node_set_state(ns, n, SZD_NODE_DRAINING);
    return 0;
}

/* A node as the API shows it, given its replica count. */
/* A node's summary; load (ndims values: the smoothed loads of the replicas it owns, summed)
 * may be NULL when unknown. */
static json_t *node_summary(const szd_ns *ns, const szd_node *n, size_t replicas,
                            const double *load)
{
    json_t *cap = json_object(), *lj = json_object();
    for (size_t i = 0; i < n->ncap; i++) {
        json_object_set_new(cap, ns->cfg.dims[i], json_real(n->cap[i]));
    }
    for (size_t d = 0; load && d < ns->cfg.ndims; d++) {
        json_object_set_new(lj, ns->cfg.dims[d], json_real(load[d]));
    }
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:I, s:b, s:b}", "id", n->id, "address",
                          n->address, "zone", n->zone, "state", szd_node_state_name(n->state),
                          "capacity", cap, "load", lj, "replicas", (json_int_t)replicas, "leaving",
                          n->leaving, "drained", n->drained);
    if (n->drained && n->drain_reason[0]) {
        json_object_set_new(j, "drain_reason", json_string(n->drain_reason));
    }
    return j;
}

static int32_t idx_of(const szd_ns *ns, const szd_node *n)
{
    for (uint32_t i = 0; i < ns->nnodes; i++) {
        if (ns->nodes[i] == n) {
            return (int32_t)i;
        }
    }
    return -1;
}

json_t *szd_nodes_json(const szd_ns *ns)
{
    /* replica counts and loads in one pass over the slots, not one pass per node */
    size_t nn = ns->nnodes ? ns->nnodes : 1, nd = ns->cfg.ndims;
    size_t *count = calloc(nn, sizeof *count);
    double *load = calloc(nn * (nd ? nd : 1), sizeof *load);
    json_t *list = json_array();
    for (uint32_t i = 0; count && load && i < ns->nparts; i++) {
        for (unsigned s = 0; s < ns->parts[i].nrep; s++) {
            const szd_slot *sl = &ns->parts[i].slots[s];
            if (sl->owner >= 0 && sl->owner_state != SZD_R_NONE) {
                count[sl->owner]++;
                for (size_t d = 0; d < nd; d++) {
                    load[(size_t)sl->owner * nd + d] += ns->parts[i].load[d];
                }
            }
            if (sl->prev >= 0 && sl->prev_state != SZD_R_NONE) {
                count[sl->prev]++;
            }
        }
    }
    for (uint32_t i = 0; i < ns->nnodes; i++) {
        json_t *j = node_summary(ns, ns->nodes[i], count && load ? count[i] : 0,
                                 count && load ? load + (size_t)i * nd : NULL);
        json_array_append_new(list, j);
    }
    free(count);
    free(load);
    return list;
}

json_t *szd_node_json(const szd_ns *ns, const szd_node *n, bool with_partitions)
{
    size_t replicas = 0;
    double load[SHARDZ_MAX_DIMS] = {0};
    int32_t me = idx_of(ns, n);
    json_t *parts = with_partitions ? json_array() : NULL;
    for (uint32_t i = 0; i < ns->nparts; i++) {
        const szd_part *p = &ns->parts[i];
        for (unsigned s = 0; s < p->nrep; s++) {
            const szd_slot *sl = &p->slots[s];
            szd_rstate st = SZD_R_NONE;
            if (sl->owner == me) {
                st = (szd_rstate)sl->owner_state;
                for (size_t d = 0; st != SZD_R_NONE && d < ns->cfg.ndims; d++) {
                    load[d] += p->load[d];
                }
            } else if (sl->prev == me) {
                st = (szd_rstate)sl->prev_state;
            }
            if (st == SZD_R_NONE) {
                continue;
            }
            replicas++;
            if (parts) {
                json_array_append_new(parts, json_pack("{s:s, s:i, s:s, s:s, s:I}", "partition",
                                                       p->id, "slot", (int)s, "role",
                                                       !ns->cfg.roles ? "none"
                                                       : s == 0       ? "primary"
                                                                      : "secondary",
                                                       "state", szd_rstate_name(st), "generation",
                                                       (json_int_t)sl->generation));
            }
        }
    }
    json_t *j = node_summary(ns, n, replicas, load);
    if (parts) {
        json_object_set_new(j, "partitions", parts);
    }
    return j;
}

/* ---- partitions ---------------------------------------------------------------------- */

int szd_parts_add(szd_ns *ns, json_t *arg, char *err, size_t errlen)
{
    char **ids = NULL;
    size_t n = 0;
    if (!json_is_array(arg)) {
        snprintf(err, errlen, "ids must be a list of partition ids");
        return SHARDZ_EINVAL;
    }
    int rc = parse_part_ids(ns, arg, &ids, &n, err, errlen);
    if (rc) {
        return rc;
    }
    rc = sharder_add_parts(ns, (const char *const *)ids, n);
    if (rc) {
        snprintf(err, errlen, "%s",
                 rc == SHARDZ_EEXIST ? "a partition id is given twice" : shardz_strerror(rc));
        goto out;
    }
    rc = parts_append(ns, (const char *const *)ids, n, ns->cfg.replicas);
    if (rc) {
        goto out;
    }
    for (size_t i = 0; i < n && ns->nghosts > 0; i++) {
        ghosts_restore(ns, &ns->parts[ns->nparts - n + i]);
    }
    szd_ns_slots_changed(ns); /* hash: slots moved between partitions (written as pages) */
    /* placed before the write, so that a new partition's first record already names its
     * owners: one write of each, not two (the pass pushes them once it is durable) */
    if (ns_rebalance(ns) != 0) {
        ns->want_rebalance = true; /* the pass tries again */
    }
    rc = szd_ns_flush(ns, false, err, errlen, NULL);
    if (rc) {
        goto out; /* added in memory but not durable: not kept (szd_ns_reload) */
    }
    szd_event(ns, "partitions-added", json_pack("{s:I}", "count", (json_int_t)n));
    szd_ns_changed(ns);
out:
    free_ids(ids, n);
    return rc;
}

/* Node n may have to drop its replica of p: looked at when it answers (or its lease ends). */
static void node_drops(szd_node *n, const szd_part *p)
{
    if (!szd_idset_add(&n->drops, p->id)) {
        szd_oom();
    }
}

/* The replica of p node `node` (-1: none) should hold changed: it is pushed again. */
static void mark_dirty(szd_ns *ns, int32_t node, const szd_part *p)
{
    if (node >= 0) {
        szd_push_changed(ns->nodes[node], p->id);
    }
}

/* Forgets the ghosts of partition `id` (NULL: any) held by node `node`: its answers or its
 * lease say it holds them no more. Not those of its earlier process (expire_retired). */
static void ghosts_forget(szd_ns *ns, const char *id, int32_t node)
{
    for (size_t i = 0; i < ns->nghosts;) {
        szd_ghost *g = &ns->ghosts[i];
        if (g->node == node && !g->retired && (!id || strcmp(g->id, id) == 0)) {
            free(g->id);
            *g = ns->ghosts[--ns->nghosts];
        } else {
            i++;
        }
    }
}

/* Whether node `node` may still hold removed partition `id`: it says it serves it
 * (`served`), or its earlier process may. */
static bool ghost_held(const szd_ns *ns, const char *id, int32_t node, bool served)
{
    for (size_t i = 0; i < ns->nghosts; i++) {
        if (ns->ghosts[i].node == node && strcmp(ns->ghosts[i].id, id) == 0 &&
            (served || ns->ghosts[i].retired)) {
            return true;
        }
    }
    return false;
}

/* p is being removed: each slot's holder that may still serve it is kept as a ghost. */
static void ghosts_keep(szd_ns *ns, const szd_part *p)
{
    szd_slot_env env = szd_ns_slot_env(ns);
    for (unsigned s = 0; s < p->nrep; s++) {
        uint64_t gen = 0;
        bool retired = false;
        int32_t h = szd_slot_holder(&p->slots[s], &env, &gen, &retired);
        if (h < 0) {
            continue;
        }
        if (ns->nghosts == ns->capghosts) {
            ns->capghosts = ns->capghosts ? 2 * ns->capghosts : 8;
            ns->ghosts = szd_xrealloc(ns->ghosts, ns->capghosts * sizeof *ns->ghosts);
        }
        char *id = strdup(p->id);
        if (!id) {
            szd_oom();
        }
        ns->ghosts[ns->nghosts++] =
            (szd_ghost){.id = id, .node = h, .slot = (uint16_t)s, .retired = retired, .gen = gen};
        node_drops(ns->nodes[h], p); /* its answers (or its lease) end the ghost */
        szd_log(ns->d, SZD_INFO,
                "msg=\"removed partition still held\" ns=%s partition=%s slot=%u node=%s "
                "generation=%llu",
                ns->cfg.name, p->id, s, ns->nodes[h]->id, (unsigned long long)gen);
    }
}

/* p was added again: the holders of its earlier incarnation that may still serve it hold its
 * slots (a move waits for them). */
static void ghosts_restore(szd_ns *ns, szd_part *p)
{
    for (size_t i = 0; i < ns->nghosts;) {
        szd_ghost *g = &ns->ghosts[i];
        if (strcmp(g->id, p->id) != 0) {
            i++;
            continue;
        }
        if (g->slot < p->nrep) {
            szd_slot_out out;
            szd_slot_out_init(&out);
            szd_slot_held_by(&p->slots[g->slot], g->node, g->gen, g->retired, &out);
            slot_applied(ns, p, g->slot, &out);
        }
        free(g->id);
        *g = ns->ghosts[--ns->nghosts];
    }
}

/* Frees partition idx; the last partition takes its place, in the map too (no rebuild:
 * removing partitions one by one from a million must not rebuild a million-entry map). */
static void part_swap_remove(szd_ns *ns, uint32_t idx)
{
    szd_part *p = &ns->parts[idx];
    uint32_t last = ns->nparts - 1;
    szd_map_remove(&ns->part_map, p->id, idx);
    if (idx != last) {
        szd_map_move(&ns->part_map, ns->parts[last].id, last, idx);
    }
    szd_apage_leave(ns, p);
    szd_history_free(p);
    free(p->load); /* the slots and the id go with it */
    ns->parts[idx] = ns->parts[last];
    ns->nparts--;
}

/* A hash namespace's removal: its slots are dealt to the others first, then the table is
 * written with the record's removal mark (ops[0]) and the config (floor) in its switch transaction
 * (docs/STORE.md 5). Failed, memory is read again from the store (the sharder dealt already). */
static int remove_with_slots(szd_ns *ns, const char *id, const shardz_op *ops, uint64_t floor,
                             char *detail, size_t dlen)
{
    int rc = shardz_sharder_unregister_partitions(ns->sh, &id, 1);
    if (rc) {
        snprintf(detail, dlen, "%s", shardz_strerror(rc));
        return rc;
    }
    szd_ns_slots_changed(ns);
    uint64_t old_floor = ns->gen_floor;
    ns->gen_floor = floor;
    rc = szd_ns_write(ns, false, ops, 1, detail, dlen, NULL); /* failed: reload (persist.c) */
    ns->gen_floor = old_floor;
    return rc;
}

int szd_part_remove(szd_ns *ns, szd_part *p)
{
    const char *id = p->id;
    /* its generations stay below any the id gets if added again: the floor goes up with the
     * removal, in the same transaction */
    uint64_t floor = ns->gen_floor, gen = 0;
    (void)shardz_sharder_generation(ns->sh, id, &gen);
    floor = gen > floor ? gen : floor;
    for (unsigned s = 0; s < p->nrep; s++) {
        floor = p->slots[s].generation > floor ? p->slots[s].generation : floor;
        floor = p->slots[s].prev_generation > floor ? p->slots[s].prev_generation : floor;
    }
    char ckey[SHARDZ_KEY_BUF];
    int clen = shardz_key_build(ckey, sizeof ckey, SHARDZ_KEY_CONFIG, ns->cfg.name, NULL);
    if (clen < 0) {
        return clen;
    }
    /* its removal mark: a page may still hold its line (docs/STORE.md 5, "Assignment pages") */
    char *key = NULL, *mark = NULL;
    int rc = szd_apage_mark(ns, p, &key, &mark);
    if (rc) {
        return rc;
    }
    uint64_t old_floor = ns->gen_floor;
    ns->gen_floor = floor;
    json_t *rec = szd_ns_config_record(ns);
    char *cfg = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    ns->gen_floor = old_floor;
    if (!cfg) {
        szd_oom();
    }
    /* the store first: a removal that did not reach it changes nothing */
    shardz_op ops[2] = {{SHARDZ_OP_PUT, key, strlen(key), mark, strlen(mark), 0},
                        {SHARDZ_OP_PUT, ckey, (size_t)clen, cfg, strlen(cfg), 0}};
    char detail[256] = "";
    rc = ns->slots ? remove_with_slots(ns, id, ops, floor, detail, sizeof detail)
                   : szd_store_txn(ns->d, ops, floor > old_floor ? 2 : 1, detail, sizeof detail);
    free(cfg);
    free(mark);
    if (rc) {
        szd_log(ns->d, SZD_ERROR, "msg=\"store delete failed\" key=%s err=%s detail=\"%s\"", key,
                shardz_err_name(rc), detail);
        free(key);
        return rc;
    }
    free(key);
    ns->gen_floor = floor;
    rc = ns->slots ? 0 : shardz_sharder_unregister_partitions(ns->sh, &id, 1);
    if (rc && !(rc == SHARDZ_ENOENT && szd_is_range(ns))) { /* a range task unregistered it */
        return rc;
    }
    for (unsigned s = 0; s < p->nrep; s++) {
        mark_dirty(ns, p->slots[s].owner, p);
        mark_dirty(ns, p->slots[s].prev, p);
    }
    ghosts_keep(ns, p);
    szd_event(ns, "partitions-removed", json_pack("{s:s}", "partition", p->id));
    uint32_t idx = (uint32_t)(p - ns->parts), last = ns->nparts - 1;
    part_swap_remove(ns, idx);
    if (idx != last && ns->parts[idx].dirty) {
        szd_parts_dirty_push(ns, idx); /* the dirty list names it at its new place */
    }
    ns->want_rebalance = true; /* (hash: the table was written with the delete) */
    szd_ns_changed(ns);
    return rc;
}

static const char *role_name(const szd_ns *ns, unsigned slot)
{
    return !ns->cfg.roles ? "none" : slot == 0 ? "primary" : "secondary";
}

/* A partition's routing: id, generation, replicas (and its range): what /state shows of it,
 * which changes only with the namespace's revision. */
static json_t *part_routing_json(const szd_ns *ns, const szd_part *p)
{
    json_t *reps = json_array();
    uint64_t gen = 0;
    for (unsigned s = 0; s < p->nrep; s++) {
        const szd_slot *sl = &p->slots[s];
        gen = sl->generation > gen ? sl->generation : gen;
        /* routing: the serving replica of the slot (the old owner while the new one adds) */
        int32_t node = -1;
        szd_rstate st = SZD_R_NONE;
        uint64_t gen_shown = sl->generation;
        if (sl->owner_state == SZD_R_SERVING) {
            node = sl->owner;
            st = SZD_R_SERVING;
        } else if (sl->prev >= 0 && sl->prev_state == SZD_R_SERVING) {
            node = sl->prev;
            st = SZD_R_SERVING;
            gen_shown = sl->prev_generation;
        } else if (sl->owner >= 0) {
            node = sl->owner;
            st = (szd_rstate)sl->owner_state;
        }
        if (node < 0) {
            continue;
        }
        json_t *r =
            json_pack("{s:s, s:s, s:i, s:s, s:s, s:I}", "node", ns->nodes[node]->id, "address",
                      ns->nodes[node]->address, "slot", (int)s, "role", role_name(ns, s), "state",
                      szd_rstate_name(st), "generation", (json_int_t)gen_shown);
        if (sl->owner >= 0 && sl->owner != node) {
            json_object_set_new(r, "moving_to", json_string(ns->nodes[sl->owner]->id));
        }
        json_array_append_new(reps, r);
    }
    json_t *j = json_pack("{s:s, s:I, s:o}", "partition", p->id, "generation", (json_int_t)gen,
                          "replicas", reps);
    szd_range_fields(ns, p->id, j, false);
    return j;
}

json_t *szd_part_json(const szd_ns *ns, const szd_part *p)
{
    json_t *j = part_routing_json(ns, p);
    if (p->load_ms > 0) {
        json_t *load = json_object();
        for (size_t d = 0; d < ns->cfg.ndims; d++) {
            json_object_set_new(load, ns->cfg.dims[d], json_real(p->load[d]));
        }
        json_object_set_new(j, "load", load);
        json_object_set_new(j, "load_age_ms",
                            json_integer((json_int_t)(szd_now(ns->d) - p->load_ms)));
    }
    if (p->moved_ms > 0) {
        json_object_set_new(j, "moved_age_ms",
                            json_integer((json_int_t)(szd_now(ns->d) - p->moved_ms)));
    }
    return j;
}

json_t *szd_state_json(const szd_ns *ns)
{
    json_t *nodes = json_array();
    for (uint32_t i = 0; i < ns->nnodes; i++) {
        const szd_node *n = ns->nodes[i];
        json_array_append_new(nodes,
                              json_pack("{s:s, s:s, s:s, s:s}", "id", n->id, "address", n->address,
                                        "zone", n->zone, "state", szd_node_state_name(n->state)));
    }
    json_t *parts = json_array();
    bool hash = strcmp(ns->cfg.sharder, "hash") == 0;
    szd_runs runs = {0};
    if (hash) {
        (void)szd_runs_load(ns, &runs); /* one pass over the slots for every partition */
    }
    for (uint32_t i = 0; i < ns->nparts; i++) {
        /* no statistics (loads, ages): they change without a revision, and /state is built
         * once per revision and shared (api.c); GET .../partitions shows them */
        json_t *pj = part_routing_json(ns, &ns->parts[i]);
        json_object_set_new(pj, "id", json_string(ns->parts[i].id));
        json_object_del(pj, "partition");
        if (hash) {
            json_object_set_new(pj, "slots", slot_runs_json(&runs, ns->parts[i].id));
        }
        json_array_append_new(parts, pj);
    }
    szd_runs_free(&runs);
    json_t *j = json_pack("{s:s, s:I, s:s, s:o, s:o}", "namespace", ns->cfg.name, "revision",
                          (json_int_t)ns->revision, "sharder", ns->cfg.sharder, "nodes", nodes,
                          "partitions", parts);
    if (hash) {
        json_object_set_new(j, "slots", json_integer(ns->cfg.slots));
    }
    return j;
}

/* ---- plans -> moves ------------------------------------------------------------------ */

static bool node_gone(const szd_ns *ns, int32_t i)
{
    return i < 0 || ns->nodes[i]->state == SZD_NODE_DEAD || ns->nodes[i]->state == SZD_NODE_LEFT;
}

static uint8_t node_state_of(const void *ctx, int32_t i)
{
    return (uint8_t)((const szd_ns *)ctx)->nodes[i]->state;
}

szd_slot_env szd_ns_slot_env(const szd_ns *ns)
{
    return (szd_slot_env){.strict = ns->cfg.strict, .node_state = node_state_of, .ctx = ns};
}

static void move_done(szd_ns *ns, szd_part *p, unsigned s);

/* Carries out what the slot machine (core/slot.c) says changed for slot s of p. */
static void slot_applied(szd_ns *ns, szd_part *p, unsigned s, const szd_slot_out *out)
{
    for (int i = 0; i < 3; i++) {
        mark_dirty(ns, out->push[i], p);
    }
    if (out->drop_watch >= 0) {
        node_drops(ns->nodes[out->drop_watch], p);
    }
    if (out->started) {
        ns->moves_started++;
    }
    if (out->changed) {
        szd_part_mark_dirty(ns, p);
    }
    if (out->done) {
        move_done(ns, p, s);
    }
}

void szd_ns_slot_applied(szd_ns *ns, szd_part *p, unsigned s, const szd_slot_out *out)
{
    slot_applied(ns, p, s, out);
}

void szd_move_start(szd_ns *ns, const shardz_move *mv)
{
    szd_part *p = szd_part_find(ns, mv->partition);
    if (!p || mv->slot >= p->nrep) {
        szd_log(ns->d, SZD_ERROR, "msg=\"plan names an unknown replica\" partition=%s slot=%u",
                mv->partition, mv->slot);
        return;
    }
    int32_t to = mv->to ? node_index(ns, mv->to) : -1;
    if (mv->reason != SHARDZ_REASON_NODE_DEAD && szd_handoff_try(ns, p, mv, to)) {
        return; /* a secondary promoted instead (handoff.c) */
    }
    uint64_t gen = 0;
    (void)shardz_sharder_generation(ns->sh, p->id, &gen);
    ns->moves_by_reason[mv->reason]++;
    /* a first placement (reason new) is not an event of its own: a bulk add would bury every
     * other event under a million of them; ns_rebalance tells their number once */
    bool first = mv->reason == SHARDZ_REASON_NEW;
    if (!first) {
        szd_event(ns, "move",
                  json_pack("{s:s, s:i, s:s?, s:s?, s:s, s:I}", "partition", p->id, "slot",
                            (int)mv->slot, "from", mv->from, "to", mv->to, "reason",
                            shardz_reason_name(mv->reason), "generation", (json_int_t)gen));
    }
    szd_log(ns->d, first ? SZD_DEBUG : SZD_INFO,
            "msg=\"move\" ns=%s partition=%s slot=%u from=%s to=%s reason=%s generation=%llu",
            ns->cfg.name, p->id, mv->slot, mv->from ? mv->from : "-", mv->to ? mv->to : "-",
            shardz_reason_name(mv->reason), (unsigned long long)gen);
    if (!first) {
        szd_history_add(p, szd_wall_ms(), mv->slot, mv->from, mv->to, (uint8_t)mv->reason, gen);
    }
    szd_slot_env env = szd_ns_slot_env(ns);
    szd_slot_out out;
    szd_slot_out_init(&out);
    szd_slot_move(&p->slots[mv->slot], &env, to, gen, (uint8_t)mv->reason, szd_now(ns->d), &out);
    out.done = false; /* a move starts here; it is done when acknowledged */
    slot_applied(ns, p, mv->slot, &out);
}

/* A move of a plan: started now, or queued by the drain gate (maint.c) until the floor and the
 * in-flight limit allow it. True when started. */
static bool apply_move(szd_ns *ns, const shardz_move *mv)
{
    if (!szd_gate_admit(ns, mv)) {
        return false;
    }
    szd_move_start(ns, mv);
    return true;
}

static int ns_rebalance(szd_ns *ns)
{
    shardz_plan *plan = NULL;
    int rc = shardz_sharder_rebalance(ns->sh, 0, &plan);
    if (rc) {
        szd_log(ns->d, SZD_ERROR, "msg=\"rebalance failed\" ns=%s err=%s", ns->cfg.name,
                shardz_err_name(rc));
        return rc;
    }
    size_t n = shardz_plan_count(plan), placed = 0;
    for (size_t i = 0; i < n; i++) {
        shardz_move mv;
        shardz_plan_move(plan, i, &mv);
        placed += mv.reason == SHARDZ_REASON_NEW;
        apply_move(ns, &mv);
    }
    if (n > 0 || shardz_plan_missing(plan) > 0) {
        szd_log(ns->d, SZD_INFO, "msg=\"plan\" ns=%s moves=%zu missing=%zu", ns->cfg.name, n,
                shardz_plan_missing(plan));
    }
    shardz_plan_free(plan);
    if (placed > 0) {
        szd_event(ns, "placed", json_pack("{s:I}", "count", (json_int_t)placed));
    }
    if (n > 0) {
        szd_ns_changed(ns);
    }
    return 0;
}

/* A new partition `id` placed on the nodes serving `like` now (replica states adding, reason
 * split); slots without a serving node stay vacant for the placement to fill. */
int szd_part_add_like(szd_ns *ns, const char *id, const szd_part *like)
{
    const char *owners[SHARDZ_MAX_REPLICAS] = {0};
    int32_t at[SHARDZ_MAX_REPLICAS];
    unsigned nrep = like->nrep; /* `like` moves with the appends below: read it first */
    bool vacant = false;
    for (unsigned s = 0; s < nrep; s++) {
        at[s] = szd_slot_serving_node(&like->slots[s]);
        if (node_gone(ns, at[s])) {
            at[s] = -1;
        }
        owners[s] = at[s] >= 0 ? ns->nodes[at[s]]->id : NULL;
        vacant |= at[s] < 0;
    }
    shardz_partition_spec spec = {.id = id,
                                  .replicas = nrep,
                                  .nnodes = nrep,
                                  .nodes = owners,
                                  .generation = ns->gen_floor + 1};
    int rc = shardz_sharder_register_partitions(ns->sh, &spec, 1);
    if (rc == 0) {
        rc = parts_append(ns, &id, 1, nrep);
        if (rc) {
            (void)shardz_sharder_unregister_partitions(ns->sh, &id, 1);
        }
    }
    if (rc) {
        return rc;
    }
    szd_part *p = &ns->parts[ns->nparts - 1];
    uint64_t gen = 1;
    (void)shardz_sharder_generation(ns->sh, id, &gen);
    for (unsigned s = 0; s < nrep; s++) {
        if (at[s] < 0) {
            continue;
        }
        p->slots[s].owner = at[s];
        p->slots[s].owner_state = SZD_R_ADDING;
        p->slots[s].generation = gen;
        p->slots[s].reason = SHARDZ_REASON_SPLIT;
        p->slots[s].started_ms = szd_now(ns->d);
        mark_dirty(ns, at[s], p);
    }
    ns->want_rebalance |= vacant;
    return 0;
}

/* A worker's reply to an assignment: what it serves. Advances the moves it acknowledges. */
/* A move finished: count it, time it, record it. */
static void move_done(szd_ns *ns, szd_part *p, unsigned s)
{
    szd_slot *sl = &p->slots[s];
    ns->moves_done++;
    p->moved_ms = szd_now(ns->d);
    /* a first placement is not worth a statistics record (a million of them after a bulk
     * add); its time is kept in memory for the cooldown */
    if (sl->reason != SHARDZ_REASON_NEW) {
        p->stats_dirty = true;
    }
    double secs = (double)(szd_now(ns->d) - sl->started_ms) / 1000.0;
    szd_hist_add(&ns->move_hist, secs);
    if (sl->reason == SHARDZ_REASON_NEW) {
        return; /* as its start, a first placement's end is no event (apply_move) */
    }
    szd_event(ns, "move-done",
              json_pack("{s:s, s:i, s:s?, s:s, s:f}", "partition", p->id, "slot", (int)s, "node",
                        sl->owner >= 0 ? ns->nodes[sl->owner]->id : NULL, "reason",
                        shardz_reason_name((shardz_reason)sl->reason), "seconds", secs));
}

/* The new owner acknowledged serving: routing switches to it, the old owner drops. */
static bool ack_serving(szd_ns *ns, szd_part *p, int32_t me, uint64_t served_gen)
{
    bool changed = false;
    szd_slot_env env = szd_ns_slot_env(ns);
    bool adding[SHARDZ_MAX_REPLICAS], waited[SHARDZ_MAX_REPLICAS];
    for (unsigned s = 0; s < p->nrep; s++) {
        adding[s] = p->slots[s].owner == me && p->slots[s].owner_state == SZD_R_ADDING;
        waited[s] = p->slots[s].unready;
    }
    if (szd_handoff_ack(ns, p, me, served_gen)) {
        changed = true; /* a promoted primary serves (handoff.c) */
    }
    for (unsigned s = 0; s < p->nrep; s++) {
        szd_slot_out out;
        szd_slot_out_init(&out);
        szd_slot_serving(&p->slots[s], &env, me, served_gen, &out);
        slot_applied(ns, p, s, &out);
        changed |= out.changed;
    }
    for (unsigned s = 0; s < p->nrep; s++) {
        const szd_slot *sl = &p->slots[s];
        if (!adding[s] || sl->owner != me || sl->owner_state != SZD_R_SERVING) {
            continue;
        }
        /* routing switched to it: the handoff latency (a first placement is none) */
        if (sl->reason != SHARDZ_REASON_NEW) {
            szd_hist_add(&ns->handoff_hist, (double)(szd_now(ns->d) - sl->started_ms) / 1000.0);
        }
        if (waited[s]) {
            mark_dirty(ns, me, p); /* it reported ready: told it serves (it stops reporting) */
            szd_transfer_settled(ns, p);
        }
    }
    return changed;
}

bool szd_ns_ack_serving(szd_ns *ns, szd_part *p, int32_t me, uint64_t served_gen)
{
    return ack_serving(ns, p, me, served_gen);
}

/* Node `me` is told to drop its replica of p (slot prev, dropping): once it no longer serves
 * it, the move goes on (strict: the new owner may start; otherwise it is done). True when it
 * still serves one it must drop. A worker holds one replica of a partition, whatever its
 * slot: once `me` serves p as another slot's owner (acknowledged at that slot's generation:
 * that slot's earlier holder had stopped before it was told), the copy it serves is that
 * slot's, and the slot it was told to leave is left (otherwise neither move could finish). */
static bool check_drops(szd_ns *ns, szd_part *p, int32_t me, bool still_served, bool *changed)
{
    bool pending = false;
    for (unsigned s = 0; s < p->nrep; s++) {
        bool elsewhere = false;
        for (unsigned t = 0; t < p->nrep; t++) {
            elsewhere |=
                t != s && p->slots[t].owner == me && p->slots[t].owner_state == SZD_R_SERVING;
        }
        szd_slot_out out;
        szd_slot_out_init(&out);
        pending |= szd_slot_dropped(&p->slots[s], me, still_served && !elsewhere, &out);
        slot_applied(ns, p, s, &out);
        *changed |= out.changed;
    }
    return pending;
}

/* Reads a reply's serving list into partition -> generation (malformed entries logged and
 * skipped). New reference. */
static json_t *served_map(szd_ns *ns, szd_node *n, json_t *serving)
{
    json_t *served = json_object();
    size_t k;
    json_t *e;
    json_array_foreach(serving, k, e)
    {
        const char *pid = json_string_value(json_object_get(e, "partition"));
        json_t *gen = json_object_get(e, "generation");
        if (!pid || !json_is_integer(gen)) {
            szd_log(ns->d, SZD_WARN, "msg=\"ignoring a malformed serving entry\" ns=%s node=%s",
                    ns->cfg.name, n->id);
            continue;
        }
        json_object_set(served, pid, gen);
    }
    return served;
}

/* A worker's reply to a whole assignment: what it serves (partition -> generation). Advances
 * the moves it acknowledges: adds it now serves, and drops it no longer serves. Costs the size
 * of the reply, plus one scan of the slots only while the node has drops pending. */
void szd_apply_serving(szd_ns *ns, szd_node *n, json_t *serving)
{
    int32_t me = idx_of(ns, n);
    bool changed = false;
    json_t *served = served_map(ns, n, serving);
    json_t *unready = szd_transfer_unready_of(n, serving); /* serving, not ready yet */
    const char *pid;
    json_t *gen;
    json_object_foreach(served, pid, gen)
    {
        szd_part *p = szd_part_find(ns, pid);
        uint64_t g = (uint64_t)json_integer_value(gen);
        if (p) {
            changed |= json_object_get(unready, pid) ? szd_transfer_unready(ns, p, me, g)
                                                     : ack_serving(ns, p, me, g);
        }
    }
    json_decref(unready);
    /* only the partitions it may still have to drop: proportional to the moves, not to the
     * namespace */
    szd_idset keep = {0};
    for (size_t i = 0; i < n->drops.cap; i++) {
        const char *id = n->drops.slots[i];
        szd_part *p = id ? szd_part_find(ns, id) : NULL;
        bool still = id && json_object_get(served, id) != NULL;
        bool pending = p ? check_drops(ns, p, me, still, &changed)
                         : id && ghost_held(ns, id, me, still); /* removed, still held */
        if (id && !p && !pending) {
            ghosts_forget(ns, id, me);
        }
        if (pending && !szd_idset_add(&keep, id)) {
            szd_oom();
        }
    }
    szd_idset_clear(&n->drops);
    n->drops = keep;
    json_decref(served);
    if (changed) {
        szd_ns_changed(ns);
    }
}

/* A worker's reply to a delta: it names only the partitions the delta named, so only those
 * are looked at: proportional to the change, not to what the node holds. */
void szd_apply_serving_delta(szd_ns *ns, szd_node *n, json_t *serving, const char *const *named,
                             size_t nnamed)
{
    int32_t me = idx_of(ns, n);
    bool changed = false;
    json_t *served = served_map(ns, n, serving);
    json_t *unready = szd_transfer_unready_of(n, serving); /* serving, not ready yet */
    for (size_t i = 0; i < nnamed; i++) {
        szd_part *p = szd_part_find(ns, named[i]);
        json_t *gen = json_object_get(served, named[i]);
        if (!p) { /* removed: a holder that no longer serves it is rid of it */
            if (!ghost_held(ns, named[i], me, gen != NULL)) {
                ghosts_forget(ns, named[i], me);
                szd_idset_remove(&n->drops, named[i]);
            }
            continue;
        }
        if (gen) {
            uint64_t g = (uint64_t)json_integer_value(gen);
            changed |= json_object_get(unready, named[i]) ? szd_transfer_unready(ns, p, me, g)
                                                          : ack_serving(ns, p, me, g);
        }
        if (!check_drops(ns, p, me, gen != NULL, &changed)) {
            szd_idset_remove(&n->drops, named[i]);
        }
    }
    json_decref(unready);
    json_decref(served);
    if (changed) {
        szd_ns_changed(ns);
    }
}

/* Whether node `me` holds a replica of p (serving, or being told to). */
static bool holds_replica(const szd_part *p, int32_t me)
{
    for (unsigned s = 0; s < p->nrep; s++) {
        const szd_slot *sl = &p->slots[s];
        if ((sl->owner == me && sl->owner_state != SZD_R_NONE) ||
            (sl->prev == me && sl->prev_state == SZD_R_SERVING)) {
            return true;
        }
    }
    return false;
}

void szd_load_samples(szd_ns *ns, szd_node *n, json_t *load)
{
    if (!json_is_object(load)) {
        return;
    }
    int32_t me = idx_of(ns, n);
    int64_t now = szd_now(ns->d);
    const char *pid;
    json_t *dims;
    json_object_foreach(load, pid, dims)
    {
        szd_part *p = szd_part_find(ns, pid);
        if (!p || !holds_replica(p, me) || !json_is_object(dims)) {
            ns->load_rejected++;
            szd_log(ns->d, SZD_DEBUG,
                    "msg=\"load sample rejected\" ns=%s node=%s partition=%s "
                    "why=\"not a replica it holds\"",
                    ns->cfg.name, n->id, pid);
            continue;
        }
        double sample[SHARDZ_MAX_DIMS];
        bool have[SHARDZ_MAX_DIMS] = {0}, bad = false;
        const char *dim;
        json_t *v;
        json_object_foreach(dims, dim, v)
        {
            size_t d = 0;
            while (d < ns->cfg.ndims && strcmp(ns->cfg.dims[d], dim) != 0) {
                d++;
            }
            double x = json_number_value(v);
            if (d == ns->cfg.ndims || !json_is_number(v) || !isfinite(x) || x < 0) {
                bad = true;
                continue;
            }
            sample[d] = x;
            have[d] = true;
        }
        if (bad) { /* the whole sample goes: nothing of it is applied */
            ns->load_rejected++;
            szd_log(ns->d, SZD_DEBUG,
                    "msg=\"load sample rejected\" ns=%s node=%s partition=%s "
                    "why=\"unknown dimension or a value not finite and >= 0\"",
                    ns->cfg.name, n->id, pid);
            continue;
        }
        /* alpha by the time since the last sample: irregular samples weigh by elapsed time */
        if (shardz_load_smooth(p->load, &p->load_ms, sample, have, ns->cfg.ndims, now,
                               ns->cfg.load_tau_ms) == 0) {
            continue;
        }
        ns->load_samples++;
        p->stats_dirty = true;
        (void)shardz_sharder_set_partition_load(ns->sh, p->id, p->load, ns->cfg.ndims);
    }
}

/* Strict mode: the earlier processes of nodes whose lease certainly ended hold nothing. */
static void expire_retired(szd_ns *ns, int64_t now)
{
    for (uint32_t i = 0; i < ns->nnodes; i++) {
        szd_node *n = ns->nodes[i];
        if (n->retired_until_ms == 0 || now < n->retired_until_ms) {
            continue;
        }
        n->retired_until_ms = 0;
        for (size_t x = 0; x < n->drops.cap; x++) {
            szd_part *p = n->drops.slots[x] ? szd_part_find(ns, n->drops.slots[x]) : NULL;
            for (unsigned s = 0; p && s < p->nrep; s++) {
                szd_slot_out out;
                szd_slot_out_init(&out);
                szd_slot_retired_gone(&p->slots[s], (int32_t)i, &out);
                slot_applied(ns, p, s, &out);
                if (out.changed) {
                    szd_ns_changed(ns);
                }
            }
        }
        /* removed partitions its earlier process held */
        for (size_t g = 0; g < ns->nghosts;) {
            if (ns->ghosts[g].node == (int32_t)i && ns->ghosts[g].retired) {
                free(ns->ghosts[g].id);
                ns->ghosts[g] = ns->ghosts[--ns->nghosts];
            } else {
                g++;
            }
        }
    }
}

/* Strict mode: a dead node whose lease expired no longer holds anything. */
static void expire_leases(szd_ns *ns)
{
    int64_t now = szd_now(ns->d);
    expire_retired(ns, now);
    /* only a dead (or gone) node's pending drops wait for its lease: their partitions only */
    for (uint32_t i = 0; i < ns->nnodes; i++) {
        szd_node *old = ns->nodes[i];
        if (old->drops.n == 0 || (old->state != SZD_NODE_DEAD && old->state != SZD_NODE_LEFT)) {
            continue;
        }
        /* its lease runs from the last lease-granting message that may have reached it
         * (core/lease.c) */
        szd_lease_facts facts = {.last_ok_ms = old->last_ok_ms,
                                 .lease_from_ms = old->lease_from_ms,
                                 .push_reach_ms = old->assign_reach_ms,
                                 .failed_reach_ms = old->reach_ms};
        if (!szd_lease_over((uint8_t)old->state, &facts, ns->cfg.lease_ms, now)) {
            continue;
        }
        for (size_t x = 0; x < old->drops.cap; x++) {
            szd_part *p = old->drops.slots[x] ? szd_part_find(ns, old->drops.slots[x]) : NULL;
            for (unsigned s = 0; p && s < p->nrep; s++) {
                szd_slot_out out;
                szd_slot_out_init(&out);
                szd_slot_holder_gone(&p->slots[s], (int32_t)i, &out);
                slot_applied(ns, p, s, &out);
                if (out.changed) {
                    szd_ns_changed(ns);
                }
            }
        }
        ghosts_forget(ns, NULL, (int32_t)i);
        szd_idset_clear(&old->drops); /* its lease ran out: it holds nothing any more */
    }
}

/* Draining nodes that hold nothing any more are released. */
static void release_drained(szd_ns *ns)
{
    for (uint32_t i = 0; i < ns->nnodes; i++) {
        szd_node *n = ns->nodes[i];
        if (n->state != SZD_NODE_DRAINING || !n->leaving) {
            continue; /* an operator's drain keeps the node registered */
        }
        bool holds = false;
        for (uint32_t k = 0; k < ns->nparts && !holds; k++) {
            for (unsigned s = 0; s < ns->parts[k].nrep && !holds; s++) {
                holds = ns->parts[k].slots[s].owner == (int32_t)i ||
                        ns->parts[k].slots[s].prev == (int32_t)i;
            }
        }
        if (holds) {
            continue;
        }
        szd_node_set_state(ns, n, SZD_NODE_LEFT);
        n->dirty = true;
        n->record_dirty = true;
        ns->nodes_dirty = true;
    }
}

void szd_ns_changed(szd_ns *ns)
{
    ns->revision++;
    szd_ns_schedule(ns);
}

void szd_ns_schedule(szd_ns *ns)
{
    if (!event_pending(ns->work, EV_TIMEOUT, NULL)) {
        event_active(ns->work, 0, 0);
    }
}

static void on_work(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    szd_ns *ns = arg;
    if (!szd_acting(ns->d)) {
        return; /* a follower's cache: the leader decides */
    }
    if (ns->reload) {
        if (szd_now(ns->d) - ns->reload_tried_ms >= 1000) {
            (void)szd_ns_reload(ns); /* ns is freed when read again; kept (and idle) if not */
        }
        return;
    }
    if (ns->want_rebalance && !szd_live_in_grace(ns)) {
        ns->want_rebalance = false;
        ns_rebalance(ns);
    }
    if (ns->shrink_pending) {
        szd_live_shrink(ns); /* replicas lowered: slots emptied go */
    }
    if (ns->nqueue > 0) {
        szd_gate_pump(ns); /* planned moves the floor or the limit held back */
    }
    expire_leases(ns);
    release_drained(ns);
    szd_range_advance(ns);
    /* every step is on disk before a worker hears of it: the pushes travel with their batch
     * and leave when the store lane proves it durable (persist.c) */
    szd_ns_persist(ns);
    szd_ns_flush_stats(ns, false);
    if (ns->lane_revision != ns->revision) {
        ns->lane_revision = ns->revision;
        szd_hl_ns_revision(ns->d->hl, ns->key, ns->revision);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    szd_ns *ns = arg;
    if (!szd_acting(ns->d)) {
        return;
    }
    if (ns->reload) {
        szd_ns_schedule(ns); /* the work pass reads it again */
        return;
    }
    maybe_balance(ns);
    szd_transfer_tick(ns);
    szd_ns_schedule(ns);
}

/* ---- operator actions ---------------------------------------------------------------- */

int szd_node_drain(szd_ns *ns, szd_node *n, bool drain)
{
    return szd_nodes_drain(ns, &n, 1, drain, NULL);
}

int szd_nodes_drain(szd_ns *ns, szd_node *const *nodes, size_t count, bool drain,
                    const char *reason)
{
    bool *was = szd_xcalloc(count ? count : 1, sizeof *was);
    bool *chg = szd_xcalloc(count ? count : 1, sizeof *chg);
    char(*old_reason)[SZD_DRAIN_REASON_MAX + 1] =
        szd_xcalloc(count ? count : 1, sizeof *old_reason);
    bool any = false;
    for (size_t i = 0; i < count; i++) {
        szd_node *n = nodes[i];
        was[i] = n->drained;
        memcpy(old_reason[i], n->drain_reason, sizeof old_reason[i]);
        if (n->state == SZD_NODE_LEFT) {
            continue;
        }
        bool reason_changed = drain && reason && strcmp(reason, n->drain_reason) != 0;
        if (n->drained == drain && !reason_changed) {
            continue;
        }
        n->drained = drain;
        snprintf(n->drain_reason, sizeof n->drain_reason, "%s", drain && reason ? reason : "");
        n->record_dirty = true;
        any = chg[i] = true;
    }
    int rc = 0;
    if (any) {
        ns->nodes_dirty = true;
        rc = szd_ns_flush(ns, false, NULL, 0, NULL);
    }
    for (size_t i = 0; any && i < count; i++) {
        szd_node *n = nodes[i];
        if (rc && chg[i]) {
            n->drained = was[i];
            memcpy(n->drain_reason, old_reason[i], sizeof n->drain_reason);
            continue;
        }
        if (!chg[i]) {
            continue;
        }
        szd_log(ns->d, SZD_INFO, "msg=\"node %s\" ns=%s node=%s reason=\"%s\"",
                drain ? "drained" : "undrained", ns->cfg.name, n->id, n->drain_reason);
        szd_event(ns, drain ? "drain" : "undrain",
                  json_pack("{s:s, s:s?}", "node", n->id, "reason",
                            drain && n->drain_reason[0] ? n->drain_reason : NULL));
        if (drain) {
            szd_node_set_state(ns, n, SZD_NODE_DRAINING);
        } else if (!n->leaving && n->state == SZD_NODE_DRAINING) {
            szd_node_set_state(ns, n, SZD_NODE_ALIVE);
        }
    }
    free(was);
    free(chg);
    free(old_reason);
    return rc;
}

static json_t *move_json(const shardz_move *mv)
{
    return json_pack("{s:s, s:i, s:s?, s:s?, s:s}", "partition", mv->partition, "slot",
                     (int)mv->slot, "from", mv->from, "to", mv->to, "reason",
                     shardz_reason_name(mv->reason));
}

/* A plan's moves as the API shows them (a dry run: nothing is carried out). */
static json_t *plan_moves_json(shardz_plan *plan)
{
    json_t *list = json_array();
    for (size_t i = 0; i < shardz_plan_count(plan); i++) {
        shardz_move mv;
        shardz_plan_move(plan, i, &mv);
        json_array_append_new(list, move_json(&mv));
    }
    return list;
}

/* Carries out a plan's moves (the placement already applied them to its target), through the
 * drain gate when `gated` (a move it holds back is listed with "waiting": why). */
static json_t *apply_plan(szd_ns *ns, shardz_plan *plan, bool gated)
{
    json_t *list = json_array();
    size_t n = shardz_plan_count(plan);
    for (size_t i = 0; i < n; i++) {
        shardz_move mv;
        shardz_plan_move(plan, i, &mv);
        json_t *mj = move_json(&mv);
        if (!gated) {
            szd_gate_forget(ns, mv.partition, mv.slot);
            szd_move_start(ns, &mv);
        } else if (!apply_move(ns, &mv)) {
            json_object_set_new(mj, "waiting", json_string("gate"));
        }
        json_array_append_new(list, mj);
    }
    if (n > 0) {
        szd_ns_changed(ns);
    }
    return list;
}

int szd_operator_move(szd_ns *ns, szd_part *p, unsigned slot, szd_node *to, char *err,
                      size_t errlen)
{
    if (slot >= p->nrep) {
        snprintf(err, errlen, "partition '%s' has slots 0..%u", p->id, p->nrep - 1);
        return SHARDZ_ENOENT;
    }
    shardz_plan *plan = NULL;
    int rc = shardz_sharder_move(ns->sh, p->id, slot, to->id, &plan);
    if (rc == SHARDZ_EEXIST) {
        snprintf(err, errlen, "slot %u of '%s' is on '%s' already", slot, p->id, to->id);
        return SHARDZ_EEXIST;
    }
    if (rc) {
        snprintf(err, errlen, "'%s' may not take slot %u of '%s' (not alive, holds it, or no room)",
                 to->id, slot, p->id);
        return rc == SHARDZ_ENOENT ? rc : SHARDZ_EINVAL;
    }
    json_decref(apply_plan(ns, plan, true));
    shardz_plan_free(plan);
    return 0;
}

int szd_cancel_move(szd_ns *ns, szd_part *p, unsigned slot, char *err, size_t errlen)
{
    if (slot >= p->nrep) {
        snprintf(err, errlen, "partition '%s' has slots 0..%u", p->id, p->nrep - 1);
        return SHARDZ_ENOENT;
    }
    szd_slot *sl = &p->slots[slot];
    if (sl->owner < 0 || sl->prev < 0) {
        snprintf(err, errlen, "no move in flight on slot %u of '%s'", slot, p->id);
        return SHARDZ_ENOENT;
    }
    if (sl->prev_state != SZD_R_SERVING || node_gone(ns, sl->prev)) {
        snprintf(err, errlen, "the old owner no longer serves slot %u of '%s'", slot, p->id);
        return SHARDZ_ECONFLICT;
    }
    shardz_plan *plan = NULL;
    int rc = shardz_sharder_move(ns->sh, p->id, slot, ns->nodes[sl->prev]->id, &plan);
    if (rc) {
        snprintf(err, errlen, "the old owner may not take it back: %s", shardz_strerror(rc));
        return rc == SHARDZ_ENOENT ? rc : SHARDZ_ECONFLICT;
    }
    json_decref(apply_plan(ns, plan, false)); /* a cancel frees: never gated */
    shardz_plan_free(plan);
    return 0;
}

json_t *szd_plan_json(szd_ns *ns, bool apply)
{
    shardz_plan *plan = NULL;
    int rc = shardz_sharder_rebalance(ns->sh, apply ? 0 : SHARDZ_PLAN_DRY_RUN, &plan);
    if (rc) {
        return NULL;
    }
    json_t *moves;
    if (apply) {
        moves = apply_plan(ns, plan, true);
    } else {
        moves = plan_moves_json(plan);
    }
    json_t *j = json_pack("{s:I, s:o, s:I}", "revision", (json_int_t)ns->revision, "moves", moves,
                          "missing", (json_int_t)shardz_plan_missing(plan));
    shardz_plan_free(plan);
    return j;
}

static int64_t last_move_of(const char *partition, void *ctx)
{
    szd_part *p = szd_part_find(ctx, partition);
    return p && p->moved_ms > 0 ? p->moved_ms : SHARDZ_NEVER_MOVED;
}

json_t *szd_balance_json(szd_ns *ns, bool apply)
{
    shardz_plan *plan = NULL;
    shardz_balance_report rep;
    int rc = shardz_sharder_balance_round(ns->sh, &ns->cfg.balance, szd_now(ns->d), last_move_of,
                                          ns, apply ? 0 : SHARDZ_PLAN_DRY_RUN, &plan, &rep);
    if (rc) {
        return NULL;
    }
    json_t *moves;
    if (apply) {
        moves = apply_plan(ns, plan, true);
        ns->last_round = rep;
        ns->balanced_ms = szd_now(ns->d);
    } else {
        moves = plan_moves_json(plan);
    }
    shardz_plan_free(plan);
    json_t *before = json_object(), *after = json_object();
    for (size_t d = 0; d < ns->cfg.ndims && d < rep.ndims; d++) {
        json_object_set_new(before, ns->cfg.dims[d], json_real(rep.before[d]));
        json_object_set_new(after, ns->cfg.dims[d], json_real(rep.after[d]));
    }
    return json_pack("{s:I, s:o, s:s, s:I, s:I, s:o, s:o}", "revision", (json_int_t)ns->revision,
                     "moves", moves, "stopped", shardz_balance_stop_name(rep.stop), "budget",
                     (json_int_t)rep.budget, "cooling", (json_int_t)rep.cooling,
                     "max_over_mean_before", before, "max_over_mean_after", after);
}

/* The periodic load balancer round (from the tick). */
static void maybe_balance(szd_ns *ns)
{
    int64_t now = szd_now(ns->d);
    if (ns->cfg.balance_interval_ms <= 0 || now - ns->balanced_ms < ns->cfg.balance_interval_ms ||
        ns->cfg.frozen) {
        return; /* frozen: no automatic round at all (its moves would only wait) */
    }
    json_t *j = szd_balance_json(ns, true);
    const char *stopped = j ? json_string_value(json_object_get(j, "stopped")) : NULL;
    /* range namespaces: a range hot by itself is split (not while degraded, like moves) */
    if (j && !(stopped && strcmp(stopped, "degraded") == 0)) {
        szd_range_balance(ns, j, true);
    }
    size_t nsplit = j ? json_array_size(json_object_get(j, "splits")) : 0;
    if (j && (json_array_size(json_object_get(j, "moves")) > 0 || nsplit > 0)) {
        szd_log(ns->d, SZD_INFO, "msg=\"balancer round\" ns=%s moves=%zu splits=%zu stopped=%s",
                ns->cfg.name, json_array_size(json_object_get(j, "moves")), nsplit,
                stopped ? stopped : "?");
    }
    json_decref(j);
    ns->balanced_ms = now;
}

/* ---- loading after a restart --------------------------------------------------------- */

/* The flags a node's record carries beside its fields (address, zone, capacity): a leave, a
 * drain and its reason, the incarnation (an unreadable one as none). */
static void node_take_record_flags(szd_node *n, json_t *j)
{
    n->leaving = json_is_true(json_object_get(j, "leaving"));
    n->drained = json_is_true(json_object_get(j, "drained"));
    const char *why = json_string_value(json_object_get(j, "drain_reason"));
    snprintf(n->drain_reason, sizeof n->drain_reason, "%s", n->drained && why ? why : "");
    const char *inc = json_string_value(json_object_get(j, "incarnation"));
    snprintf(n->incarnation, sizeof n->incarnation, "%s", inc && szd_valid_id(inc) ? inc : "");
}

static int load_node(szd_ns *ns, json_t *j)
{
    char err[256];
    const char *id = json_string_value(json_object_get(j, "id"));
    if (!szd_valid_id(id) || szd_node_find(ns, id)) {
        return SHARDZ_EINVAL;
    }
    szd_node_spec tmp = {0};
    if (szd_node_fields_parse(j, &ns->cfg, &tmp, err, sizeof err) != 0) {
        return SHARDZ_EINVAL;
    }
    szd_node *n = node_append(ns, id);
    if (!n) {
        return SHARDZ_ENOMEM;
    }
    node_take_fields(n, &tmp);
    node_take_record_flags(n, j);
    n->state = n->leaving || n->drained ? SZD_NODE_DRAINING : SZD_NODE_JOINING;
    /* until it answers a ping it counts from now: a worker that is gone is declared dead
     * dead_after_ms after the restart */
    n->last_ok_ms = szd_now(ns->d);
    n->dirty = true;
    szd_hl_node_set(ns->d->hl, ns->key, n->id, n->address, n->stamp);
    return sharder_add_node(
        ns, n, n->state == SZD_NODE_DRAINING ? SHARDZ_NODE_DRAINING : SHARDZ_NODE_JOINING);
}

/* Sets p's slots from a record's "slots" (nrep entries): owners (by id) and the highest
 * generation come back for the sharder. */
static void parse_slots(szd_ns *ns, szd_part *p, const szd_rec_part *rec, const char **owners,
                        uint64_t *gen)
{
    *gen = 0;
    for (unsigned s = 0; s < p->nrep; s++) {
        const szd_rec_slot *e = &rec->slots[s];
        szd_slot *sl = &p->slots[s];
        const char *owner = e->owner;
        int os = rstate_parse(e->state);
        int ps = rstate_parse(e->prev_state);
        int why = reason_parse(e->reason);
        owners[s] = NULL;
        sl->owner = owner[0] ? node_index(ns, owner) : -1;
        sl->prev = e->prev[0] ? node_index(ns, e->prev) : -1;
        sl->owner_state = (uint8_t)(sl->owner >= 0 && os > 0 ? os : SZD_R_NONE);
        sl->prev_state = (uint8_t)(sl->prev >= 0 && ps > 0 ? ps : SZD_R_NONE);
        if (sl->prev >= 0) {
            node_drops(ns->nodes[sl->prev], p);
        }
        if (sl->prev >= 0 && sl->prev_state == SZD_R_RETIRED) {
            /* when its earlier process's lease ends is not kept: a full lease from now */
            szd_node *old = ns->nodes[sl->prev];
            int64_t until = szd_now(ns->d) + ns->cfg.ping_interval_ms + ns->cfg.lease_ms;
            old->retired_until_ms = until > old->retired_until_ms ? until : old->retired_until_ms;
        }
        sl->reason = (uint8_t)(why >= 0 ? why : SHARDZ_REASON_NEW);
        sl->generation = e->generation;
        sl->prev_generation = e->prev_generation;
        sl->started_ms = szd_now(ns->d);
        *gen = sl->generation > *gen ? sl->generation : *gen;
        if (sl->owner >= 0) {
            for (unsigned t = 0; t < s; t++) {
                if (owners[t] && strcmp(owners[t], owner) == 0) {
                    sl->owner = -1; /* corrupt: two slots on one node */
                }
            }
            if (sl->owner >= 0) {
                owners[s] = ns->nodes[sl->owner]->id;
            }
        }
        if (sl->owner < 0) {
            sl->owner_state = SZD_R_NONE;
            if (sl->prev < 0) {
                sl->prev_state = SZD_R_NONE;
            }
        }
    }
}

/* Loaded partitions wait here to be registered with the sharder together: a registration
 * costs a pass over the nodes a call (with 1,000 nodes, a million calls were a billion
 * steps), and in a hash namespace a deal of the slots to the new partitions (a million
 * partitions in calls of 256 spent 35 s there at a restart, for a table restored afterwards),
 * so one call per LOAD_BATCH partitions (3 MB of specs, allocated once per load). */
#define LOAD_BATCH 16384
typedef struct load_batch {
    szd_ns *ns; /* the namespace of the partitions waiting */
    shardz_partition_spec spec[LOAD_BATCH];
    const char *owners[LOAD_BATCH][SHARDZ_MAX_REPLICAS]; /* node ids (borrowed) */
    size_t n;
    szd_rec_part rec; /* the record being read (too large for the stack of every caller) */
} load_batch;

static void load_batch_flush(load_batch *lb)
{
    szd_ns *ns = lb->ns;
    if (lb->n > 0 && shardz_sharder_register_partitions(ns->sh, lb->spec, lb->n) != 0) {
        for (size_t i = 0; i < lb->n; i++) { /* one by one: the one refused is named */
            int rc = shardz_sharder_register_partitions(ns->sh, &lb->spec[i], 1);
            if (rc) {
                szd_log(ns->d, SZD_WARN,
                        "msg=\"partition not placed again\" ns=%s partition=%s err=%s",
                        ns->cfg.name, lb->spec[i].id, shardz_err_name(rc));
            }
        }
    }
    lb->n = 0;
}

/* Loads one assignment record; its registration with the sharder waits in lb. */
/* A partition's assignment record: rec as read (szd_rec_part_parse or _from_json) and, when it
 * was not in the plain form, j, its JSON (hash slot runs, range bounds); NULL otherwise. */
static int load_part(szd_ns *ns, const szd_rec_part *rec, json_t *j, load_batch *lb)
{
    const char *id = rec->id;
    if (!szd_valid_id(id) || szd_part_find(ns, id)) {
        return SHARDZ_EINVAL;
    }
    unsigned nrep = rec->nslots;
    int rc = parts_append(ns, &id, 1, nrep);
    if (rc) {
        return rc;
    }
    szd_part *p = &ns->parts[ns->nparts - 1];
    p->dirty = false;
    if (lb->ns != ns || lb->n == LOAD_BATCH) {
        if (lb->ns) {
            load_batch_flush(lb);
        }
        lb->ns = ns;
    }
    const char **owners = lb->owners[lb->n];
    uint64_t gen = 0;
    parse_slots(ns, p, rec, owners, &gen);
    lb->spec[lb->n++] = (shardz_partition_spec){
        .id = p->id, .replicas = nrep, .nnodes = nrep, .nodes = owners, .generation = gen};
    if (rc == 0 && j) { /* a routed range's bounds: never in the plain form */
        rc = szd_range_load_part(ns, p->id, j);
    }
    /* a moved partition's history: never in the plain form */
    if (rc == 0 && j && szd_history_load(p, json_object_get(j, "history")) != 0) {
        szd_log(ns->d, SZD_WARN, "msg=\"malformed move history dropped\" ns=%s partition=%s",
                ns->cfg.name, p->id);
    }
    /* the old layout's slot runs, read only while the config names no slot table (STORE.md 5) */
    json_t *runs =
        j && ns->slots && ns->slots->m.page_slots == 0 ? json_object_get(j, "hash_slots") : NULL;
    if (rc == 0 && json_is_array(runs)) {
        if (!ns->restore) {
            ns->restore = json_array();
        }
        size_t k;
        json_t *e;
        json_array_foreach(runs, k, e)
        {
            json_array_append_new(ns->restore,
                                  json_pack("[I, O, O]", (json_int_t)(ns->nparts - 1),
                                            json_array_get(e, 0), json_array_get(e, 1)));
        }
    }
    return rc;
}

/* A partition's persisted statistics (ages were stored in wall-clock time). */
static int load_stats(szd_ns *ns, json_t *j)
{
    szd_part *p = szd_part_find(ns, json_string_value(json_object_get(j, "id")) ?: "");
    json_t *load = json_object_get(j, "load");
    if (!p || !json_is_object(load)) {
        return SHARDZ_EINVAL;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, now = szd_now(ns->d);
    for (size_t d = 0; d < ns->cfg.ndims; d++) {
        double x = json_number_value(json_object_get(load, ns->cfg.dims[d]));
        p->load[d] = isfinite(x) && x >= 0 ? x : 0;
    }
    int64_t upd = json_integer_value(json_object_get(j, "updated_ms"));
    int64_t mov = json_integer_value(json_object_get(j, "moved_ms"));
    p->load_ms = upd > 0 ? now - (wall - upd) : 0;
    p->moved_ms = mov > 0 ? now - (wall - mov) : 0;
    if (p->load_ms > 0) {
        (void)shardz_sharder_set_partition_load(ns->sh, p->id, p->load, ns->cfg.ndims);
    }
    return 0;
}

/* A record's text (len bytes) read into rec: the plain form scanned by hand, anything else
 * through jansson, whose tree (*j, the caller's to free; NULL for the plain form) carries what
 * the plain form never has (history, range bounds). 0 or SHARDZ_EINVAL. */
static int rec_read(const char *text, size_t len, szd_rec_part *rec, json_t **j)
{
    *j = NULL;
    if (szd_rec_part_parse(text, len, rec) == 0) {
        return 0;
    }
    *j = json_loadb(text, len, 0, NULL);
    return json_is_object(*j) ? szd_rec_part_from_json(*j, rec) : SHARDZ_EINVAL;
}

/* A record's text (len bytes) applied in place to partition id (idlen bytes), in a follower's
 * cache of a replica namespace: 0, or SHARDZ_ESTALE when it cannot be (an unknown partition,
 * another shape, a removal mark): the namespace is loaded again. */
static int apply_record(szd_ns *ns, const char *text, size_t len, const char *id_in, size_t idlen)
{
    char idz[SHARDZ_KEY_MAX_ID + 1];
    if (idlen > SHARDZ_KEY_MAX_ID) {
        return SHARDZ_ESTALE;
    }
    memcpy(idz, id_in, idlen);
    idz[idlen] = '\0';
    szd_part *p = szd_part_find(ns, idz);
    json_t *j = NULL;
    szd_rec_part *rec = NULL;
    int rc = SHARDZ_ESTALE;
    if (!p) {
        goto out;
    }
    rec = szd_xmalloc(sizeof *rec);
    if (rec_read(text, len, rec, &j) != 0) {
        goto out;
    }
    if (rec->removed || strcmp(rec->id, idz) != 0 || rec->nslots != p->nrep) {
        goto out;
    }
    /* the sharder follows the record too (a follower taking over plans from it) */
    const char *owners[SHARDZ_MAX_REPLICAS] = {0};
    uint64_t gen = 0;
    const char *id = p->id;
    int32_t before[SHARDZ_MAX_REPLICAS];
    uint64_t gen_before = 0;
    for (unsigned s = 0; s < p->nrep; s++) {
        before[s] = p->slots[s].owner;
        gen_before = p->slots[s].generation > gen_before ? p->slots[s].generation : gen_before;
    }
    parse_slots(ns, p, rec, owners, &gen);
    /* the sharder holds owners and generation only: a record that changed neither (a slot's
     * state, an acknowledgement) leaves it as it is (a page rewrite re-applies 256 lines) */
    bool same = gen == gen_before;
    for (unsigned s = 0; s < p->nrep && same; s++) {
        same = p->slots[s].owner == before[s];
    }
    shardz_partition_spec spec = {
        .id = id, .replicas = p->nrep, .nnodes = p->nrep, .nodes = owners, .generation = gen};
    if (!same && (shardz_sharder_unregister_partitions(ns->sh, &id, 1) != 0 ||
                  shardz_sharder_register_partitions(ns->sh, &spec, 1) != 0)) {
        goto out;
    }
    if (!same && p->load_ms > 0) {
        (void)shardz_sharder_set_partition_load(ns->sh, p->id, p->load, ns->cfg.ndims);
    }
    if (szd_history_load(p, json_object_get(j, "history")) != 0) {
        szd_log(ns->d, SZD_WARN, "msg=\"malformed move history dropped\" ns=%s partition=%s",
                ns->cfg.name, p->id);
    }
    rc = 0;
out:
    free(rec);
    json_decref(j);
    return rc;
}

static int load_part_text(szd_ns *ns, const char *text, size_t len, struct load_batch *lb,
                          szd_part **out);

/* A follower's cache: the partition a record (text, n bytes) names, unknown to ns, added as a
 * load adds it: its line in page `page`, or (UINT32_MAX) an override placed as the loader places
 * one. 0, or SHARDZ_ESTALE (unreadable, or a removal mark: the namespace is loaded again). */
static int follow_add(szd *d, szd_ns *ns, const char *text, size_t n, uint32_t page)
{
    if (!d->follow_lb) {
        d->follow_lb = szd_xcalloc(1, sizeof *d->follow_lb);
    }
    load_batch *lb = d->follow_lb;
    szd_part *p;
    int rc = load_part_text(ns, text, n, lb, &p);
    if (rc == 0) {
        szd_apage_place(ns, p, page != UINT32_MAX ? page : p->page, page == UINT32_MAX);
        p->dirty = false;
    }
    return rc ? SHARDZ_ESTALE : 0;
}

/* The partitions follow_add added are registered with the sharder, before anything reads them
 * (once per record or page: a page's are registered together). */
static void follow_flush(szd *d)
{
    load_batch *lb = d->follow_lb;
    if (lb && lb->ns) {
        load_batch_flush(lb);
        lb->ns = NULL;
    }
}

/* A follower's cache: a node's record (text, n bytes) applied in place: a node it does not
 * know is added as a load adds it (a worker registering), a known one takes the record's
 * fields (a worker registering again: a new process, address, zone or capacity; a leave or a
 * drain) and the sharder its zone, capacity and draining state. 0, or SHARDZ_ESTALE
 * (unreadable: the namespace is read again). */
static int follow_node(szd_ns *ns, const char *id, const char *text, size_t n)
{
    char err[256];
    json_t *j = json_loadb(text, n, 0, NULL);
    int rc = SHARDZ_ESTALE;
    if (!json_is_object(j) || strcmp(json_string_value(json_object_get(j, "id")) ?: "", id) != 0) {
        goto out;
    }
    szd_node *nd = szd_node_find(ns, id);
    if (!nd) {
        rc = load_node(ns, j) == 0 ? 0 : SHARDZ_ESTALE;
        goto out;
    }
    szd_node_spec tmp = {0};
    if (szd_node_fields_parse(j, &ns->cfg, &tmp, err, sizeof err) != 0) {
        goto out;
    }
    node_take_fields(nd, &tmp);
    node_take_record_flags(nd, j);
    /* as a load reads it (a follower's states are a cache's: a new leader counts every node
     * as joining until it answers); no event, no new revision: the store's is the cache's */
    if (nd->leaving || nd->drained) {
        nd->state = SZD_NODE_DRAINING;
    } else if (nd->state == SZD_NODE_DRAINING) {
        nd->state = SZD_NODE_JOINING;
    }
    shardz_node_spec spec = {.id = nd->id,
                             .zone = nd->zone,
                             .ncapacity = nd->ncap,
                             .state = szd_sharder_state(nd->state)};
    memcpy(spec.capacity, nd->cap, sizeof spec.capacity);
    if (shardz_sharder_update_node(ns->sh, &spec) != 0 ||
        shardz_sharder_set_node_state(ns->sh, nd->id, szd_sharder_state(nd->state)) != 0) {
        goto out;
    }
    szd_hl_node_set(ns->d->hl, ns->key, nd->id, nd->address, nd->stamp);
    rc = 0;
out:
    json_decref(j);
    return rc;
}

int szd_ns_apply_change(szd *d, const shardz_event *ev)
{
    shardz_key_parts kp;
    if (shardz_key_parse(ev->kv.key, ev->kv.key_len, &kp) != 0) {
        return 0; /* not a namespace record */
    }
    szd_ns *ns = szd_ns_find(d, kp.ns);
    bool put = ev->type == SHARDZ_EVENT_PUT;
    if (!ns || strcmp(ns->cfg.sharder, "replica") != 0) {
        return SHARDZ_ESTALE; /* anything else: the namespace is loaded again */
    }
    if (kp.kind == SHARDZ_KEY_ASSIGN && !put) {
        /* an override's delete drops a copy a newer page line holds, or a removal mark no line
         * needs (a removal itself is a mark: a put): nothing changes */
        return 0;
    }
    if (kp.kind == SHARDZ_KEY_NODE && put) {
        return follow_node(ns, kp.id, ev->kv.value, ev->kv.value_len);
    }
    if (!put || (kp.kind != SHARDZ_KEY_ASSIGN && kp.kind != SHARDZ_KEY_STATS &&
                 kp.kind != SHARDZ_KEY_APAGE)) {
        return SHARDZ_ESTALE;
    }
    if (kp.kind == SHARDZ_KEY_ASSIGN) {
        if (!szd_part_find(ns, kp.id)) {
            /* a partition joining a page that holds others is written as an override first */
            int rc = follow_add(d, ns, ev->kv.value, ev->kv.value_len, UINT32_MAX);
            follow_flush(d);
            return rc;
        }
        return apply_record(ns, ev->kv.value, ev->kv.value_len, kp.id, strlen(kp.id));
    }
    if (kp.kind == SHARDZ_KEY_APAGE) {
        /* each line in place; a partition the cache does not know is added (a bulk add writes
         * new pages: loading a million partitions again per page would not keep up) */
        uint64_t w;
        size_t off = 0, n, idn, tlen;
        const char *line, *id, *text;
        char *inflated = NULL;
        int rc = 0;
        if (kp.page >= SZD_APAGE_MAX_PAGES ||
            szd_apage_lines(ev->kv.value, ev->kv.value_len, &w, &text, &tlen, &inflated) != 0) {
            return SHARDZ_ESTALE;
        }
        while (rc == 0 && szd_apage_next(text, tlen, &off, &line, &n)) {
            char idz[SHARDZ_KEY_MAX_ID + 1];
            if (!szd_apage_line_id(line, n, &id, &idn) || idn > SHARDZ_KEY_MAX_ID) {
                rc = SHARDZ_ESTALE;
                break;
            }
            memcpy(idz, id, idn);
            idz[idn] = '\0';
            rc = szd_part_find(ns, idz) ? apply_record(ns, line, n, id, idn)
                                        : follow_add(d, ns, line, n, kp.page);
        }
        follow_flush(d);
        free(inflated);
        return rc;
    }
    szd_part *p = szd_part_find(ns, kp.id);
    json_t *j = json_loadb(ev->kv.value, ev->kv.value_len, 0, NULL);
    int rc = SHARDZ_ESTALE;
    if (p && json_is_object(j) &&
        strcmp(json_string_value(json_object_get(j, "id")) ?: "", kp.id) == 0) {
        rc = load_stats(ns, j) == 0 ? 0 : SHARDZ_ESTALE;
    }
    json_decref(j);
    return rc;
}

/* ---- the slot table's pages (docs/STORE.md 5) ------------------------------------------ */

/* Remembers key (len bytes, borrowed) for the next write to delete. */
static void slots_stale_add(szd_slot_table *t, const char *key, size_t len)
{
    char *k = strndup(key, len);
    if (!k) {
        szd_oom();
    }
    szd_slots_stale_take(t, k);
}

/* A hash namespace's config record read: its "slot_table" (NULL: the old layout, or a
 * namespace never written) says which pages make its committed table. */
static void slots_manifest_load(szd_ns *ns, const json_t *table)
{
    szd_slot_table *t = ns->slots;
    uint32_t nslots = 0;
    if (!t || !table) {
        return;
    }
    (void)shardz_sharder_slot_count(ns->sh, &nslots);
    int rc = szd_slot_manifest_parse(table, nslots, &t->m);
    if (rc) {
        /* unreadable: no page is trusted, the table is dealt again (and written anew) */
        szd_log(ns->d, SZD_WARN, "msg=\"slot table manifest unreadable\" ns=%s err=%s",
                ns->cfg.name, shardz_err_name(rc));
        t->m = (szd_slot_manifest){.page_slots = szd_slot_page_slots(nslots)};
        t->broken = true;
        t->loading = true;
        return;
    }
    t->loading = true;
    t->hash = szd_xcalloc(t->m.npages ? t->m.npages : 1, sizeof *t->hash);
    for (uint32_t k = 0; k < t->m.npages; k++) {
        t->epoch_max = t->m.epoch[k] > t->epoch_max ? t->m.epoch[k] : t->epoch_max;
    }
}

/* One page key read: a page of the committed table is parsed (its lines kept until
 * slots_settle), any other is stale (an unfinished write's, or a replaced epoch's whose
 * delete did not happen) and deleted by the next table write. */
static void slots_page_load(szd *d, const shardz_key_parts *kp, const shardz_kv *kv)
{
    szd_ns *ns = szd_ns_find(d, kp->ns);
    szd_slot_table *t = ns ? ns->slots : NULL;
    if (!t) {
        szd_log(d, SZD_WARN, "msg=\"skipping a corrupt record\" key=\"%.*s\" err=%s",
                (int)kv->key_len, kv->key, shardz_err_name(SHARDZ_ENOENT));
        return;
    }
    t->epoch_max = kp->epoch > t->epoch_max ? kp->epoch : t->epoch_max;
    if (t->m.page_slots == 0 || t->broken || kp->page >= t->m.npages ||
        t->m.epoch[kp->page] != kp->epoch) {
        slots_stale_add(t, kv->key, kv->key_len);
        return;
    }
    uint32_t w = t->m.page_slots, lo = kp->page * w;
    if (t->caplines - t->nlines < w) {
        t->caplines = t->caplines + w > 2 * t->caplines ? t->caplines + w : 2 * t->caplines;
        t->lines = szd_xrealloc(t->lines, t->caplines * sizeof *t->lines);
    }
    size_t n = 0;
    int rc = szd_slot_page_parse(kv->value, kv->value_len, lo, lo + w, t->lines + t->nlines, w, &n);
    if (rc) {
        szd_log(d, SZD_WARN, "msg=\"slot table page unreadable\" key=\"%.*s\" err=%s",
                (int)kv->key_len, kv->key, shardz_err_name(rc));
        t->broken = true;
        return;
    }
    /* pages come in key order (epochs as text), not by number: put this one in place */
    t->nlines += n;
    t->hash[kp->page] = szd_slot_page_hash(kv->value, kv->value_len);
    t->pages_read++;
}

static int line_cmp(const void *a, const void *b)
{
    const szd_slot_line *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

/* A partition dropped at load: its record was written ahead of a table switch that did not
 * happen (an add cut short), so the committed namespace never had it. */
static void part_drop_uncommitted(szd_ns *ns, uint32_t idx)
{
    const szd_part *p = &ns->parts[idx];
    char key[SHARDZ_KEY_BUF];
    int len = shardz_key_assign(key, sizeof key, ns->cfg.name, p->id);
    if (len > 0) {
        slots_stale_add(ns->slots, key, (size_t)len);
    }
    szd_log(ns->d, SZD_WARN,
            "msg=\"partition not in the committed slot table: an unfinished add, dropped\" "
            "ns=%s partition=%s",
            ns->cfg.name, p->id);
    if (p->page < ns->npages && ns->pages[p->page].based) {
        szd_apage_found(ns, p->page, true); /* its line goes with the page's next rewrite */
    }
    part_swap_remove(ns, idx);
}

/* After the assignments: the committed table's lines resolved to partitions (runs for
 * restore_slots), and the partitions it does not name dropped. A table that is incomplete or
 * names an unknown partition is not trusted: nothing is dropped, the slots are dealt again. */
static void slots_settle(szd_ns *ns)
{
    szd_slot_table *t = ns->slots;
    if (!t || !t->loading) {
        return; /* not a hash namespace, the old layout, or settled already */
    }
    t->loading = false;
    t->restore_due = true;
    if (!t->broken && t->pages_read != t->m.npages) {
        szd_log(ns->d, SZD_WARN, "msg=\"slot table pages missing\" ns=%s found=%u of=%u",
                ns->cfg.name, t->pages_read, t->m.npages);
        t->broken = true;
    }
    uint8_t *named = t->broken ? NULL : szd_xcalloc(ns->nparts ? ns->nparts : 1, 1);
    t->runs = szd_xmalloc((t->nlines ? t->nlines : 1) * sizeof *t->runs);
    if (t->nlines > 1) { /* (none: an empty table, no line array) */
        qsort(t->lines, t->nlines, sizeof *t->lines, line_cmp);
    }
    for (size_t i = 0; named && i < t->nlines; i++) {
        char id[SHARDZ_MAX_ID + 1];
        memcpy(id, t->lines[i].id, t->lines[i].id_len);
        id[t->lines[i].id_len] = '\0';
        szd_part *p = szd_part_find(ns, id);
        if (!p) {
            szd_log(ns->d, SZD_WARN,
                    "msg=\"slot table names an unknown partition\" ns=%s partition=%s",
                    ns->cfg.name, id);
            t->broken = true;
            break;
        }
        uint32_t pi = (uint32_t)(p - ns->parts);
        named[pi] = 1;
        t->runs[t->nruns++] = (szd_slot_run){t->lines[i].lo, t->lines[i].hi, pi};
    }
    free(t->lines);
    t->lines = NULL;
    t->nlines = t->caplines = 0;
    if (t->broken) {
        free(named);
        t->nruns = 0;
        return;
    }
    /* drop from the highest index down: a swap-remove then never moves one still to drop */
    uint32_t *drop = szd_xmalloc((ns->nparts ? ns->nparts : 1) * sizeof *drop);
    const char **ids = szd_xmalloc((ns->nparts ? ns->nparts : 1) * sizeof *ids);
    uint32_t ndrop = 0;
    for (uint32_t i = 0; i < ns->nparts; i++) {
        if (!named[i]) {
            ids[ndrop] = ns->parts[i].id;
            drop[ndrop++] = i;
        }
    }
    if (ndrop > 0 && shardz_sharder_unregister_partitions(ns->sh, ids, ndrop) != 0) {
        ndrop = 0; /* cannot happen (they were registered): kept, and the table dealt again */
        t->broken = true;
    }
    /* a run's partition index moves with a swap-remove: where[first index] = index now, and
     * at[index now] = first index */
    uint32_t n0 = ns->nparts ? ns->nparts : 1;
    uint32_t *where = szd_xmalloc(n0 * sizeof *where), *at = szd_xmalloc(n0 * sizeof *at);
    for (uint32_t i = 0; i < ns->nparts; i++) {
        where[i] = at[i] = i;
    }
    for (uint32_t k = ndrop; k-- > 0;) {
        uint32_t idx = drop[k], last = ns->nparts - 1;
        where[at[last]] = idx; /* the partition at `last` now sits at idx */
        at[idx] = at[last];
        part_drop_uncommitted(ns, idx);
    }
    for (size_t i = 0; i < t->nruns; i++) {
        t->runs[i].part = where[t->runs[i].part];
    }
    t->nruns = szd_slot_runs_merge(t->runs, t->nruns);
    free(at);
    free(where);
    free(ids);
    free(drop);
    free(named);
}

/* The committed table put back (slots_settle resolved it), or, when it could not be, the
 * slots as the sharder dealt them, written as a new table with the next write. */
static void restore_slot_pages(szd_ns *ns)
{
    szd_slot_table *t = ns->slots;
    if (!t->restore_due) {
        return; /* restored already (a follower's namespaces at a takeover) */
    }
    t->restore_due = false;
    int rc = t->broken ? SHARDZ_EINVAL : 0;
    shardz_slot_range *r = NULL;
    if (rc == 0 && t->nruns > 0) {
        r = szd_xmalloc(t->nruns * sizeof *r);
        for (size_t i = 0; i < t->nruns; i++) {
            r[i] = (shardz_slot_range){ns->parts[t->runs[i].part].id, t->runs[i].lo, t->runs[i].hi};
        }
        rc = shardz_sharder_restore_slots(ns->sh, r, t->nruns);
    } else if (rc == 0 && ns->nparts > 0) {
        rc = SHARDZ_EINVAL; /* partitions, but an empty table */
    }
    if (rc) {
        szd_log(ns->d, SZD_WARN, "msg=\"slot table not restored, slots re-dealt\" ns=%s err=%s",
                ns->cfg.name, shardz_err_name(rc));
        szd_ns_slots_changed(ns);
        /* no page is trusted: the next write writes every page */
        for (uint32_t k = 0; k < t->m.npages; k++) {
            t->hash[k] = 0;
        }
        t->broken = false;
    }
    free(r);
    free(t->runs);
    t->runs = NULL;
    t->nruns = 0;
    json_decref(ns->restore); /* old-layout runs in records are not read with a manifest */
    ns->restore = NULL;
}

/* Hash namespaces: put back the slot table the partitions had (registering them again in
 * store order would deal slots differently when partitions had come and gone). */
static void restore_slots(szd_ns *ns)
{
    szd_slot_table *t = ns->slots;
    if (t && t->m.page_slots > 0) { /* the new layout: the committed table's pages */
        restore_slot_pages(ns);
        return;
    }
    if (t) {
        szd_ns_slots_changed(ns); /* the old layout: written as pages with the next write */
    }
    if (!ns->restore) {
        return;
    }
    size_t n = json_array_size(ns->restore);
    shardz_slot_range *r = calloc(n ? n : 1, sizeof *r);
    int rc = r ? 0 : SHARDZ_ENOMEM;
    for (size_t i = 0; r && i < n; i++) {
        json_t *e = json_array_get(ns->restore, i);
        json_int_t pi = json_integer_value(json_array_get(e, 0));
        r[i].partition = pi >= 0 && pi < ns->nparts ? ns->parts[pi].id : "";
        r[i].lo = (uint32_t)json_integer_value(json_array_get(e, 1));
        r[i].hi = (uint32_t)json_integer_value(json_array_get(e, 2));
    }
    if (rc == 0) {
        rc = shardz_sharder_restore_slots(ns->sh, r, n);
    }
    if (rc) {
        szd_log(ns->d, SZD_WARN, "msg=\"slot table not restored, slots re-dealt\" ns=%s err=%s",
                ns->cfg.name, shardz_err_name(rc));
    } else {
        szd_log(ns->d, SZD_INFO,
                "msg=\"slot table read from the old layout\" ns=%s runs=%zu (written as pages "
                "with the next write)",
                ns->cfg.name, n);
    }
    free(r);
    json_decref(ns->restore);
    ns->restore = NULL;
}

/* Builds the namespaces held in r (configs, then nodes, then assignments, which name nodes,
 * then statistics). A foreign or corrupt record is logged with its key and skipped. */
/* Keys read per range request while loading: smaller answers than 10,000 keys' few MB, each
 * of which is fresh memory to fault in (bench/daemon/restart.sh gives the restart's CPU). */
#define LOAD_PAGE 1000

/* Reads every key under prefix in pages of LOAD_PAGE (a load longer than the lease TTL keeps
 * the lease: the keeper renews it on its own thread). *pages (NULL-terminated) is the
 * caller's (free_pages). Pages are separate reads: only the leader writes namespaces, and a
 * follower reads again what changed since the revision of the first page. */
static int range_paged(szd *d, shardz_store *st, const char *prefix, size_t plen,
                       shardz_range ***pages)
{
    shardz_range **pg = NULL;
    size_t n = 0;
    int rc = 0;
    *pages = NULL;
    for (;;) {
        shardz_range **np = realloc(pg, (n + 2) * sizeof *np);
        if (!np) {
            rc = SHARDZ_ENOMEM;
            break;
        }
        pg = np;
        const shardz_kv *last = n ? &pg[n - 1]->kvs[pg[n - 1]->count - 1] : NULL;
        rc = shardz_store_range(st, prefix, plen, last ? last->key : NULL, last ? last->key_len : 0,
                                LOAD_PAGE, &pg[n]);
        if (rc) {
            break;
        }
        n++;
        pg[n] = NULL;
        if (!pg[n - 1]->more || pg[n - 1]->count == 0) {
            break;
        }
    }
    if (rc) {
        for (size_t i = 0; i < n; i++) {
            shardz_range_free(pg[i]);
        }
        free(pg);
        return rc;
    }
    *pages = pg;
    return 0;
}

static void free_pages(shardz_range **pages)
{
    for (size_t i = 0; pages && pages[i]; i++) {
        shardz_range_free(pages[i]);
    }
    free(pages);
}

/* One record to load, found in a first pass over the keys (its kind only: a parsed key is half
 * a kilobyte, a million of them would be half a gigabyte). */
typedef struct {
    const shardz_kv *kv;
    shardz_key_kind kind;
} load_item;

static void load_one(szd *d, const load_item *item, load_batch *lb)
{
    const shardz_kv *kv = item->kv;
    shardz_key_parts kp;
    (void)shardz_key_parse(kv->key, kv->key_len, &kp); /* it parsed in the first pass */
    if (item->kind == SHARDZ_KEY_SLOTS) {
        slots_page_load(d, &kp, kv);
        return;
    }
    json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);
    int lrc = j && json_is_object(j) ? 0 : SHARDZ_EINVAL;
    if (lrc == 0 && item->kind == SHARDZ_KEY_CONFIG) {
        szd_ns_config cfg;
        char err[256];
        /* what the store alone keeps is not config (szd_ns_config_record) */
        json_int_t floor = json_integer_value(json_object_get(j, "generation_floor"));
        json_object_del(j, "generation_floor");
        json_t *table = json_incref(json_object_get(j, "slot_table"));
        json_object_del(j, "slot_table");
        lrc = szd_ns_config_parse(j, &cfg, err, sizeof err);
        szd_ns *ns = NULL;
        if (lrc == 0 && !szd_ns_find(d, cfg.name)) {
            ns = ns_new(d, &cfg);
            lrc = ns ? ns_attach(d, ns) : SHARDZ_ENOMEM;
            if (lrc && ns) {
                szd_ns_free(ns);
            } else if (ns) {
                ns->gen_floor = floor > 0 ? (uint64_t)floor : 0;
                slots_manifest_load(ns, table);
            }
        }
        json_decref(table);
    } else if (lrc == 0) {
        szd_ns *ns = szd_ns_find(d, kp.ns);
        if (!ns) {
            lrc = SHARDZ_ENOENT;
        } else {
            lrc = item->kind == SHARDZ_KEY_NODE    ? load_node(ns, j)
                  : item->kind == SHARDZ_KEY_STATS ? load_stats(ns, j)
                                                   : szd_range_load_task(ns, j);
        }
    }
    if (lrc) {
        szd_log(d, SZD_WARN, "msg=\"skipping a corrupt record\" key=\"%.*s\" err=%s",
                (int)kv->key_len, kv->key, shardz_err_name(lrc));
    }
    json_decref(j);
}

/* ---- assignments at load: pages and overrides (docs/STORE.md 5, "Assignment pages") ------ */

/* One record's text (plain form scanned, anything else through jansson) loaded into ns: 0 and
 * *out, or an error (corrupt, a removal mark, a repeat). */
static int load_part_text(szd_ns *ns, const char *text, size_t len, load_batch *lb, szd_part **out)
{
    json_t *j;
    int rc = rec_read(text, len, &lb->rec, &j);
    *out = NULL;
    rc = rc ? rc : lb->rec.removed ? SHARDZ_EINVAL : load_part(ns, &lb->rec, j, lb);
    json_decref(j);
    if (rc == 0) {
        *out = &ns->parts[ns->nparts - 1];
    }
    return rc;
}

/* The id an override's key names (borrowed from the key). */
static const char *key_id(const shardz_kv *kv, size_t *n)
{
    size_t k = kv->key_len;
    while (k > 0 && kv->key[k - 1] != '/') {
        k--;
    }
    *n = kv->key_len - k;
    return kv->key + k;
}

static void load_corrupt(szd *d, const shardz_kv *kv, int rc)
{
    szd_log(d, SZD_WARN, "msg=\"skipping a corrupt record\" key=\"%.*s\" err=%s", (int)kv->key_len,
            kv->key, shardz_err_name(rc));
}

/* The override's record: its write number and whether it is a removal mark. false: corrupt
 * (logged). */
static bool override_read(szd *d, const shardz_kv *kv, load_batch *lb)
{
    size_t idn;
    const char *id = key_id(kv, &idn);
    json_t *j;
    int rc = rec_read(kv->value, kv->value_len, &lb->rec, &j);
    json_decref(j);
    if (rc == 0 && (strlen(lb->rec.id) != idn || memcmp(lb->rec.id, id, idn) != 0)) {
        rc = SHARDZ_EINVAL; /* a record under another partition's key */
    }
    if (rc) {
        load_corrupt(d, kv, rc);
    }
    return rc == 0;
}

/* A page's number, write number and lines (*text, *len; *buf the inflated lines of a
 * compressed page, the caller's to free); false: not a page to read (logged). */
static bool page_open(szd *d, const shardz_kv *kv, uint32_t *page, uint64_t *w, const char **text,
                      size_t *len, char **buf)
{
    shardz_key_parts kp;
    *buf = NULL;
    if (shardz_key_parse(kv->key, kv->key_len, &kp) != 0 || kp.page >= SZD_APAGE_MAX_PAGES ||
        szd_apage_lines(kv->value, kv->value_len, w, text, len, buf) != 0) {
        load_corrupt(d, kv, SHARDZ_EINVAL);
        return false;
    }
    *page = kp.page;
    return true;
}

/* A line of `page` (write w) for a partition loaded already from another page's line (an id
 * removed and added again, whose old page is not rewritten yet): the newer line holds, the
 * older line's page is rewritten. lw: the write of each loaded partition's line. */
static void load_line_again(szd_ns *ns, szd_part *p, uint64_t *lw, const char *line, size_t n,
                            uint32_t page, uint64_t w, load_batch *lb)
{
    uint32_t idx = (uint32_t)(p - ns->parts);
    if (w <= lw[idx]) {
        szd_apage_found(ns, page, true); /* this line is the older */
        return;
    }
    if (lb->ns) {
        load_batch_flush(lb); /* registered, so that the record can replace its own */
        lb->ns = NULL;
    }
    if (apply_record(ns, line, n, p->id, strlen(p->id)) != 0) {
        szd_log(ns->d, SZD_WARN, "msg=\"skipping a corrupt record\" ns=%s partition=%s",
                ns->cfg.name, p->id);
        szd_apage_found(ns, page, true);
        return;
    }
    szd_apage_found(ns, p->page, true);
    szd_apage_place(ns, p, page, false);
    lw[idx] = w;
}

/* The assignments of one namespace, items[a..z) (its pages, then its overrides: keys come
 * sorted). Each partition gets the newest of its page lines and its override (the write number
 * decides, whatever a crash cut short); older copies are deleted or rewritten by later writes.
 * The map holds the overrides only (few: under a quarter of each page), so a million lines cost
 * no map of a million. */
static void load_assignments_of(szd_ns *ns, const load_item *items, size_t a, size_t z,
                                load_batch *lb)
{
    szd *d = ns->d;
    size_t nlines = 0, npages = 0, nover = 0;
    for (size_t i = a; i < z; i++) {
        const shardz_kv *kv = items[i].kv;
        if (items[i].kind == SHARDZ_KEY_APAGE) {
            npages++;
            if (kv->value_len > 14 && memcmp(kv->value, "shardz-apage 2", 14) == 0) {
                nlines += SZD_APAGE_PARTS; /* compressed: as many as a page is filled with */
                continue;
            }
            for (const char *c = kv->value, *e = c + kv->value_len;
                 (c = memchr(c, '\n', (size_t)(e - c))) != NULL; c++) {
                nlines++;
            }
        } else {
            nover++;
        }
    }
    if (nlines + nover > 1 && nlines + nover < UINT32_MAX) {
        (void)parts_reserve(ns, (uint32_t)(nlines + nover)); /* appends grow one by one else */
    }
    szd_part *p;
    if (npages == 0) { /* the layout before pages: every record under its own key */
        for (size_t i = a; i < z; i++) {
            const shardz_kv *kv = items[i].kv;
            int rc = load_part_text(ns, kv->value, kv->value_len, lb, &p);
            if (rc == 0) {
                szd_apage_place(ns, p, p->page, true);
                ns->wseq = lb->rec.w > ns->wseq ? lb->rec.w : ns->wseq;
            } else if (!override_read(d, kv, lb)) {
                continue; /* logged */
            } else if (lb->rec.removed) {
                szd_apage_stale(ns, kv->key, kv->key_len); /* a mark of nothing */
            } else {
                load_corrupt(d, kv, rc);
            }
        }
        return;
    }
    szd_apage_map m;
    if (szd_apage_map_init(&m, nover) != 0) {
        szd_oom();
    }
    for (size_t i = a; i < z; i++) { /* the overrides: their write numbers */
        const shardz_kv *kv = items[i].kv;
        if (items[i].kind != SHARDZ_KEY_ASSIGN || !override_read(d, kv, lb)) {
            continue;
        }
        size_t idn;
        const char *id = key_id(kv, &idn);
        szd_apage_entry *e = szd_apage_map_get(&m, id, idn);
        szd_apage_see_override(e, (int64_t)i, lb->rec.w, lb->rec.removed);
        ns->wseq = lb->rec.w > ns->wseq ? lb->rec.w : ns->wseq;
    }
    uint64_t *lw = szd_xcalloc(ns->capparts ? ns->capparts : 1, sizeof *lw);
    uint32_t caplw = ns->capparts ? ns->capparts : 1;
    for (size_t i = a; i < z; i++) { /* the page lines, loaded unless an override is newer */
        const shardz_kv *kv = items[i].kv;
        uint32_t page;
        uint64_t w;
        size_t off = 0, n, idn, tlen;
        const char *line, *id, *text;
        char *inflated;
        if (items[i].kind != SHARDZ_KEY_APAGE ||
            !page_open(d, kv, &page, &w, &text, &tlen, &inflated)) {
            continue;
        }
        szd_apage_found(ns, page, false);
        ns->wseq = w > ns->wseq ? w : ns->wseq;
        while (szd_apage_next(text, tlen, &off, &line, &n)) {
            if (!szd_apage_line_id(line, n, &id, &idn)) {
                load_corrupt(d, kv, SHARDZ_EINVAL);
                szd_apage_found(ns, page, true); /* rewritten without it */
                continue;
            }
            szd_apage_entry *e = szd_apage_map_find(&m, id, idn);
            if (e && e->best >= 0 && e->w > w) { /* its override (or mark) is newer */
                uint32_t loser = szd_apage_see_line(e, page, w);
                if (loser != UINT32_MAX) {
                    szd_apage_found(ns, loser, true);
                }
                continue;
            }
            if (e && e->best >= 0) {
                e->best = -1; /* the line is newer: the override is stale */
                e->w = w;
            }
            char idz[SHARDZ_KEY_MAX_ID + 1];
            snprintf(idz, sizeof idz, "%.*s", (int)idn, id);
            szd_part *had = szd_part_find(ns, idz);
            if (had) {
                load_line_again(ns, had, lw, line, n, page, w, lb);
                continue;
            }
            int rc = load_part_text(ns, line, n, lb, &p);
            if (rc) {
                load_corrupt(d, kv, rc);
                szd_apage_found(ns, page, true);
                continue;
            }
            szd_apage_place(ns, p, page, false);
            uint32_t idx = (uint32_t)(p - ns->parts);
            if (idx >= caplw) {
                uint32_t nc = caplw * 2 > idx + 1 ? caplw * 2 : idx + 1;
                lw = szd_xrealloc(lw, nc * sizeof *lw);
                memset(lw + caplw, 0, (nc - caplw) * sizeof *lw);
                caplw = nc;
            }
            lw[idx] = w;
        }
        free(inflated); /* the lines were copied by what loaded them */
    }
    free(lw);
    for (size_t i = a; i < z; i++) { /* the overrides that are the newest */
        const shardz_kv *kv = items[i].kv;
        size_t idn;
        const char *id = key_id(kv, &idn);
        if (items[i].kind != SHARDZ_KEY_ASSIGN) {
            continue;
        }
        szd_apage_entry *e = szd_apage_map_get(&m, id, idn);
        if (!e || e->best != (int64_t)i) {
            /* older than a line (or corrupt): deleted by a later write */
            szd_apage_stale(ns, kv->key, kv->key_len);
            continue;
        }
        if (e->removed) {
            char idz[SHARDZ_KEY_MAX_ID + 1];
            snprintf(idz, sizeof idz, "%.*s", (int)idn, id);
            if (e->page != UINT32_MAX) {
                szd_apage_dead(ns, e->page, idz); /* its page still holds its line */
            } else {
                szd_apage_stale(ns, kv->key, kv->key_len); /* a mark of nothing now */
            }
            continue;
        }
        int rc = load_part_text(ns, kv->value, kv->value_len, lb, &p);
        if (rc) {
            load_corrupt(d, kv, rc);
            continue;
        }
        szd_apage_place(ns, p, e->page != UINT32_MAX ? e->page : p->page, true);
    }
    szd_apage_map_free(&m);
}

/* Every namespace's assignments: each namespace's pages and overrides are one run of keys. */
static void load_assignments(szd *d, const load_item *items, size_t n, load_batch *lb)
{
    shardz_key_parts *kp = szd_xmalloc(sizeof *kp);
    for (size_t i = 0; i < n;) {
        if (items[i].kind != SHARDZ_KEY_ASSIGN && items[i].kind != SHARDZ_KEY_APAGE) {
            i++;
            continue;
        }
        const shardz_kv *first = items[i].kv;
        (void)shardz_key_parse(first->key, first->key_len, kp); /* it parsed in the first pass */
        size_t pl = 3 + strlen(kp->ns) + 1;                     /* "ns/<ns>/" */
        size_t j = i + 1;
        while (j < n && (items[j].kind == SHARDZ_KEY_ASSIGN || items[j].kind == SHARDZ_KEY_APAGE) &&
               items[j].kv->key_len > pl && memcmp(items[j].kv->key, first->key, pl) == 0) {
            j++;
        }
        szd_ns *ns = szd_ns_find(d, kp->ns);
        if (ns) {
            load_assignments_of(ns, items, i, j, lb);
        } else {
            for (size_t k = i; k < j; k++) {
                load_corrupt(d, items[k].kv, SHARDZ_ENOENT);
            }
        }
        i = j;
    }
    free(kp);
}

static void load_records(szd *d, shardz_range *const *pages)
{
    /* the keys parsed once, the records then loaded kind by kind: configs, then nodes, then
     * the slot table's pages (hash), then assignments (they name nodes; in a hash namespace
     * only the partitions its committed table names), then statistics, then tasks */
    static const shardz_key_kind order[] = {SHARDZ_KEY_CONFIG, SHARDZ_KEY_NODE,  SHARDZ_KEY_SLOTS,
                                            SHARDZ_KEY_ASSIGN, SHARDZ_KEY_STATS, SHARDZ_KEY_TASK};
    size_t total = 0, n = 0;
    for (size_t pi = 0; pages[pi]; pi++) {
        total += pages[pi]->count;
    }
    load_item *items = szd_xmalloc((total ? total : 1) * sizeof *items);
    shardz_key_parts *kp = szd_xmalloc(sizeof *kp);
    for (size_t pi = 0; pages[pi]; pi++) {
        const shardz_range *r = pages[pi];
        for (size_t i = 0; i < r->count; i++) {
            const shardz_kv *kv = &r->kvs[i];
            if (shardz_key_parse(kv->key, kv->key_len, kp) != 0) {
                szd_log(d, SZD_WARN, "msg=\"skipping a foreign key\" key=\"%.*s\"",
                        (int)kv->key_len, kv->key);
                continue;
            }
            items[n++] = (load_item){kv, kp->kind};
        }
    }
    free(kp);
    load_batch *lb = szd_xcalloc(1, sizeof *lb);
    for (size_t o = 0; o < sizeof order / sizeof order[0]; o++) {
        if (order[o] == SHARDZ_KEY_ASSIGN) {
            load_assignments(d, items, n, lb); /* with the pages, namespace by namespace */
        }
        for (size_t i = 0; i < n && order[o] != SHARDZ_KEY_ASSIGN; i++) {
            if (items[i].kind == order[o]) {
                load_one(d, &items[i], lb);
            }
        }
        if (lb->ns) { /* every assignment registered before the statistics come */
            load_batch_flush(lb);
        }
        if (order[o] == SHARDZ_KEY_ASSIGN) {
            for (uint32_t i = 0; i < d->nns; i++) {
                slots_settle(d->ns[i]); /* while the pages read are still in memory */
            }
        }
    }
    free(lb);
    free(items);
}

/* Detaches ns from d (not freed). */
static void ns_detach(szd *d, szd_ns *ns)
{
    for (uint32_t i = 0; i < d->nns; i++) {
        if (d->ns[i] == ns) {
            d->ns[i] = d->ns[--d->nns];
            return;
        }
    }
}

void szd_ns_free_all(szd *d)
{
    free(d->follow_lb);
    d->follow_lb = NULL;
    while (d->nns > 0) {
        szd_ns_free(d->ns[--d->nns]);
    }
}

int szd_ns_read_all(shardz_store *st, shardz_range ***pages)
{
    char prefix[SHARDZ_KEY_BUF];
    int plen = shardz_key_ns_prefix(prefix, sizeof prefix, NULL);
    if (plen < 0) {
        return plen;
    }
    return range_paged(NULL, st, prefix, (size_t)plen, pages);
}

void szd_ns_pages_free(shardz_range **pages)
{
    free_pages(pages);
}

int szd_ns_load_cache(szd *d, const char *name)
{
    char prefix[SHARDZ_KEY_BUF];
    int plen = shardz_key_ns_prefix(prefix, sizeof prefix, name);
    shardz_range **r = NULL;
    if (plen < 0) {
        return plen;
    }
    int rc = range_paged(d, d->ha_store, prefix, (size_t)plen, &r);
    if (rc) {
        return rc;
    }
    return szd_ns_load_cache_pages(d, name, r);
}

int szd_ns_load_cache_pages(szd *d, const char *name, shardz_range **r)
{
    int64_t revision = r[0] ? r[0]->revision : 0;
    /* the old copies are detached, the new ones loaded, then the watchers move over */
    szd_ns **olds = calloc(d->nns ? d->nns : 1, sizeof *olds);
    if (!olds) {
        free_pages(r);
        return SHARDZ_ENOMEM;
    }
    uint32_t nold = 0;
    for (uint32_t i = d->nns; i-- > 0;) {
        if (name && strcmp(d->ns[i]->cfg.name, name) != 0) {
            continue;
        }
        olds[nold++] = d->ns[i];
        ns_detach(d, d->ns[i]);
    }
    load_records(d, r);
    for (uint32_t i = 0; i < d->nns; i++) {
        szd_ns *ns = d->ns[i];
        if (name && strcmp(ns->cfg.name, name) != 0) {
            continue;
        }
        restore_slots(ns);
        szd_range_restore(ns);
        ns->revision = ((uint64_t)revision + 1) << 32;
    }
    free_pages(r);
    szd_trim_heap();
    for (uint32_t k = 0; k < nold; k++) {
        szd_ns *ns = szd_ns_find(d, olds[k]->cfg.name);
        while (ns && olds[k]->waiters) {
            szd_waiter *w = olds[k]->waiters;
            olds[k]->waiters = w->next;
            w->ns = ns;
            w->next = ns->waiters;
            ns->waiters = w;
        }
        szd_ns_free(olds[k]); /* cancels the watchers of a namespace that is gone */
    }
    free(olds);
    for (uint32_t i = 0; i < d->nns; i++) {
        szd_watch_notify(d->ns[i]);
    }
    return 0;
}

/* Reading everything, on the store lane (which owns the handle). */
typedef struct {
    szd *d;
    char prefix[SHARDZ_KEY_BUF];
    size_t plen;
    shardz_range **pages;
} read_call;

static int run_read(shardz_store *st, void *arg)
{
    read_call *c = arg;
    /* test hook (testhook.h): reads fail while the file SHARDZ_TEST_STORE_READ_FAIL names
     * exists, as an unreachable etcd's would */
    if (szd_test_file("SHARDZ_TEST_STORE_READ_FAIL")) {
        return SHARDZ_EIO;
    }
    return range_paged(c->d, st, c->prefix, c->plen, &c->pages);
}

int szd_ns_load_all(szd *d)
{
    read_call c = {.d = d};
    int plen = shardz_key_ns_prefix(c.prefix, sizeof c.prefix, NULL);
    if (plen < 0) {
        return plen;
    }
    c.plen = (size_t)plen;
    int rc = szd_sl_call(d->sl, run_read, &c);
    if (rc) {
        return rc;
    }
    load_records(d, c.pages);
    free_pages(c.pages);
    szd_trim_heap();
    return szd_ns_take_over(d);
}

int szd_ns_reload(szd_ns *ns)
{
    szd *d = ns->d;
    if (!szd_acting(d)) {
        return 0; /* deposed: a follower's cache is read again as such (ha.c) */
    }
    read_call c = {.d = d};
    int plen = shardz_key_ns_prefix(c.prefix, sizeof c.prefix, ns->cfg.name);
    if (plen < 0) {
        return plen;
    }
    c.plen = (size_t)plen;
    int rc = szd_sl_call(d->sl, run_read, &c);
    if (rc) {
        ns->reload = true; /* holds everything until read (on_work tries again) */
        ns->reload_tried_ms = szd_now(d);
        szd_log(d, SZD_ERROR, "msg=\"namespace not read again after a failed write\" ns=%s err=%s",
                ns->cfg.name, shardz_err_name(rc));
        return rc;
    }
    char name[sizeof ns->cfg.name];
    memcpy(name, ns->cfg.name, sizeof name);
    ns_detach(d, ns);
    load_records(d, c.pages);
    free_pages(c.pages);
    szd_ns *nn = szd_ns_find(d, name);
    if (!nn) {
        /* not in the store (deleted by another writer meanwhile): gone here too */
        szd_log(d, SZD_WARN, "msg=\"namespace gone from the store\" ns=%s", name);
        szd_ns_free(ns);
        return 0;
    }
    restore_slots(nn);
    szd_range_restore(nn);
    int64_t now = szd_now(d);
    for (uint32_t k = 0; k < nn->nnodes; k++) {
        szd_node *n = nn->nodes[k];
        n->last_ok_ms = n->since_ms = n->reach_ms = n->lease_from_ms = now;
        szd_node *old = szd_node_find(ns, n->id);
        if (old && old->retired_until_ms > n->retired_until_ms) {
            n->retired_until_ms = old->retired_until_ms; /* an earlier process may still hold */
        }
        /* what the pings found stays (an observation, not a change to make durable): a node
         * alive is not joining again, one dead is not alive until it answers */
        if (old && n->state == SZD_NODE_JOINING && old->state != SZD_NODE_LEFT &&
            old->state != SZD_NODE_DRAINING && old->state != n->state) {
            n->state = old->state;
            n->since_ms = old->since_ms;
            (void)shardz_sharder_set_node_state(nn->sh, n->id, szd_sharder_state(n->state));
        }
        szd_push_full(n);
    }
    /* revisions only grow: workers ignore an older assignment, routers watch from the last */
    nn->revision = ns->revision + 1 > nn->revision ? ns->revision + 1 : nn->revision;
    nn->wseq = ns->wseq > nn->wseq ? ns->wseq : nn->wseq; /* records' write numbers grow too */
    nn->balanced_ms = ns->balanced_ms;
    /* statistics are written apart, now and then: the latest stay (they survive a move, and
     * a reload too) */
    for (uint32_t i = 0; i < nn->nparts; i++) {
        szd_part *np = &nn->parts[i];
        const szd_part *op = szd_part_find(ns, np->id);
        if (op && op->load_ms > np->load_ms) {
            memcpy(np->load, op->load, nn->cfg.ndims * sizeof *np->load);
            np->load_ms = op->load_ms;
            np->stats_dirty = op->stats_dirty;
            (void)shardz_sharder_set_partition_load(nn->sh, np->id, np->load, nn->cfg.ndims);
        }
    }
    while (ns->waiters) {
        szd_waiter *w = ns->waiters;
        ns->waiters = w->next;
        w->ns = nn;
        w->next = nn->waiters;
        nn->waiters = w;
    }
    szd_log(d, SZD_WARN,
            "msg=\"namespace read again after a failed write\" ns=%s nodes=%u partitions=%u "
            "revision=%llu",
            name, nn->nnodes, nn->nparts, (unsigned long long)nn->revision);
    /* the placement plans again what only memory held: a rebalance the pass had still to
     * run, moves the drain gate held back (its queue is not kept), or the decisions of a pass
     * whose write failed; not a refused operator's rebalance (it is not carried out later) */
    nn->want_rebalance = ns->want_rebalance || ns->nqueue > 0 || ns->pass_unwritten;
    szd_ns_free(ns);
    szd_trim_heap();
    szd_watch_notify(nn);
    szd_ns_schedule(nn);
    return 0;
}

int szd_ns_take_over(szd *d)
{
    int rc;
    /* every node is heard from now on: dead only dead_after_ms from now without an answer, and
     * a strict lease is counted from now (the previous coordinator may have granted it) */
    int64_t now = szd_now(d);
    for (uint32_t i = 0; i < d->nns; i++) {
        for (uint32_t k = 0; k < d->ns[i]->nnodes; k++) {
            szd_node *n = d->ns[i]->nodes[k];
            n->last_ok_ms = n->since_ms = n->reach_ms = n->lease_from_ms = now;
        }
    }
    szd_hl_heard_all(d->hl); /* the lane's detectors too */
    for (uint32_t i = 0; i < d->nns; i++) {
        /* a queue left from an earlier leadership of this process is stale: the placement
         * plans again from the records (the first rebalance below) */
        szd_gate_free(d->ns[i]);
        szd_live_start_grace(d->ns[i]); /* a new leader is a coordinator's start too */
    }
    /* Revisions must keep growing across restarts (workers ignore an assignment older than
     * the last they applied; routers watch from the last they saw), but they are not stored
     * on every change. Every start rewrites the configs, so the store revision grows, and
     * each namespace restarts from (store revision << 32): above anything the previous run
     * could have reached short of 2^32 changes. */
    for (uint32_t i = 0; i < d->nns; i++) {
        restore_slots(d->ns[i]);
        szd_range_restore(d->ns[i]);
        rc = szd_ns_flush(d->ns[i], true, NULL, 0, NULL);
        if (rc) {
            return rc;
        }
    }
    shardz_store_status st = {0};
    szd_store_status(d, &st);
    for (uint32_t i = 0; i < d->nns; i++) {
        szd_ns *ns = d->ns[i];
        ns->revision = ((uint64_t)st.revision + 1) << 32;
        ns->want_rebalance = true;
        szd_log(d, SZD_INFO, "msg=\"namespace loaded\" ns=%s nodes=%u partitions=%u", ns->cfg.name,
                ns->nnodes, ns->nparts);
        szd_ns_schedule(ns);
    }
    return 0;
}
