/* A namespace's persistence: its dirty records (config, nodes, assignments; statistics apart)
 * turned into batches for the store lane, either waited for (an API reply that must follow a
 * durable write) or queued with the pushes built from the same state (the work pass), which
 * leave only when the lane proves the batch durable. A failed batch marks the records dirty
 * again and drops its pushes; the next pass writes and builds them again. A hash namespace's
 * slot table is written here too, atomically on every backend: pages of a new epoch, then one
 * transaction switching the config record to it, then the old pages deleted (docs/STORE.md 5).
 * Event-loop thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/oom.h"
#include "daemon/daemon.h"
#include "daemon/store_lane.h"

/* A batch of one namespace on the store lane. */
typedef struct szd_flight {
    struct szd_flight *next;
    szd_ns *ns; /* NULL once the namespace is freed */
    bool stats; /* statistics only */
} szd_flight;

#define STATS_BATCH 20000 /* statistics records per flush, at most (but at shutdown) */

static char *key_of(shardz_key_kind kind, const char *ns, const char *id)
{
    char buf[SHARDZ_KEY_BUF];
    if (shardz_key_build(buf, sizeof buf, kind, ns, id) < 0) {
        return NULL;
    }
    return strdup(buf);
}

static int put_json(szd_batch *b, shardz_key_kind kind, const szd_ns *ns, const char *id,
                    json_t *rec)
{
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    return szd_batch_put(b, key_of(kind, ns->cfg.name, id), text);
}

/* The config record's text (taken) as a put. */
static int put_json_text(szd_batch *b, shardz_key_kind kind, const szd_ns *ns, char *text)
{
    return szd_batch_put(b, key_of(kind, ns->cfg.name, NULL), text);
}

static int idx_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The dirty list sorted, without repeats (a partition cleaned by a range step and marked
 * again is named twice): a batch holds each key once. */
static void dirty_list_tidy(szd_ns *ns)
{
    if (ns->ndirty < 2) {
        return;
    }
    qsort(ns->dirty_idx, ns->ndirty, sizeof *ns->dirty_idx, idx_cmp);
    size_t w = 1;
    for (size_t r = 1; r < ns->ndirty; r++) {
        if (ns->dirty_idx[r] != ns->dirty_idx[w - 1]) {
            ns->dirty_idx[w++] = ns->dirty_idx[r];
        }
    }
    ns->ndirty = w;
}

/* The partitions to look at: every one, or those the dirty list names (work proportional to
 * the change, not to the namespace). *n entries of *idx, or idx NULL for 0..nparts-1. */
static void dirty_span(szd_ns *ns, const uint32_t **idx, size_t *n)
{
    if (ns->dirty_scan) {
        *idx = NULL;
        *n = ns->nparts;
        return;
    }
    dirty_list_tidy(ns);
    *idx = ns->dirty_idx;
    *n = ns->ndirty;
}

/* The dirty records (and the config when asked) as a batch; flags untouched. */
static int collect(szd_ns *ns, bool config, szd_batch **out)
{
    szd_batch *b = szd_batch_new();
    int rc = b ? 0 : SHARDZ_ENOMEM;
    if (rc == 0 && config) {
        rc = put_json(b, SHARDZ_KEY_CONFIG, ns, NULL, szd_ns_config_record(ns));
    }
    for (uint32_t i = 0; i < ns->nnodes && rc == 0 && ns->nodes_dirty; i++) {
        if (ns->nodes[i]->record_dirty) {
            rc = put_json(b, SHARDZ_KEY_NODE, ns, ns->nodes[i]->id,
                          szd_node_record(ns, ns->nodes[i]));
        }
    }
    const uint32_t *list = NULL;
    size_t nlist = 0;
    if (ns->parts_dirty) {
        dirty_span(ns, &list, &nlist);
    }
    if (rc == 0) {
        /* (a stale name, removed or written since it was named, is skipped there) */
        rc = szd_apage_collect(ns, b, list, nlist);
    }
    if (rc) {
        szd_batch_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

static void mark_clean(szd_ns *ns)
{
    for (uint32_t i = 0; i < ns->nnodes && ns->nodes_dirty; i++) {
        ns->nodes[i]->record_dirty = false;
    }
    ns->nodes_dirty = false;
    /* the list as it is (collect tidied it; a repeat clears a flag twice) */
    size_t nlist = !ns->parts_dirty ? 0 : ns->dirty_scan ? ns->nparts : ns->ndirty;
    for (size_t k = 0; k < nlist; k++) {
        uint32_t i = ns->dirty_scan ? (uint32_t)k : ns->dirty_idx[k];
        if (i < ns->nparts) {
            ns->parts[i].dirty = false;
        }
    }
    ns->ndirty = 0;
    ns->dirty_scan = false;
    ns->parts_dirty = false;
}

/* After a failed batch: every record is written again (which ones the batch held is not
 * kept; a failure is rare, and rewriting more than needed is safe). */
static void mark_all_dirty(szd_ns *ns)
{
    for (uint32_t i = 0; i < ns->nnodes; i++) {
        ns->nodes[i]->record_dirty = true;
    }
    ns->nodes_dirty = ns->nnodes > 0;
    for (uint32_t i = 0; i < ns->nparts; i++) {
        ns->parts[i].dirty = true;
    }
    szd_parts_dirty_all(ns);
}

static void write_failed(szd_ns *ns, int rc, const char *detail)
{
    szd_log(ns->d, rc == SHARDZ_ESTALE ? SZD_DEBUG : SZD_ERROR,
            "msg=\"store write failed\" ns=%s err=%s detail=\"%s\"", ns->cfg.name,
            shardz_err_name(rc), detail);
    if (rc == SHARDZ_ENOTLEADER) {
        szd_ha_deposed(ns->d, "a write was fenced: another coordinator leads");
    }
}

/* ---- the hash slot table (docs/STORE.md 5) -------------------------------------------- */

static void keys_add(char ***list, size_t *n, size_t *cap, char *key);

/* Frees a list of n keys and the list. */
static void keys_free(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i]);
    }
    free(list);
}

void szd_slot_table_free(szd_slot_table *t)
{
    if (!t) {
        return;
    }
    szd_slot_manifest_free(&t->m);
    free(t->hash);
    keys_free(t->stale, t->nstale);
    keys_free(t->retired, t->nretired);
    free(t->lines);
    free(t->runs);
    free(t);
}

void szd_slots_stale_take(szd_slot_table *t, char *key)
{
    keys_add(&t->stale, &t->nstale, &t->capstale, key);
}

void szd_ns_slots_changed(szd_ns *ns)
{
    if (ns->slots) {
        ns->slots->dirty = true;
    }
}

/* Whether the next write writes the table: it changed, or the store has none in pages yet (a
 * namespace being created, or a store of the old layout). */
static bool slots_due(const szd_ns *ns)
{
    return ns->slots && (ns->slots->dirty || ns->slots->m.page_slots == 0);
}

static char *slots_key(const szd_ns *ns, uint64_t epoch, uint32_t page)
{
    char buf[SHARDZ_KEY_BUF];
    if (shardz_key_slots(buf, sizeof buf, ns->cfg.name, epoch, page) < 0) {
        return NULL;
    }
    return strdup(buf);
}

/* A table write in the making: the manifest and page hashes the switch commits, the pages it
 * writes (their keys: stale if it never commits) and the keys it frees. */
typedef struct {
    szd_slot_manifest m;
    uint64_t *hash;
    uint64_t epoch; /* the epoch of the pages it writes */
    char **written; /* keys of the pages put (owned) */
    size_t nwritten;
    char **freed; /* keys to delete after the switch (owned) */
    size_t nfreed, capfreed;
    char **replaced; /* keys of the committed pages the switch replaces (owned) */
    size_t nreplaced, capreplaced;
    bool changed; /* a page written or dropped, or the first manifest: a switch is due */
} slot_plan;

static void plan_free(slot_plan *pl)
{
    szd_slot_manifest_free(&pl->m);
    free(pl->hash);
    keys_free(pl->written, pl->nwritten);
    keys_free(pl->freed, pl->nfreed);
    keys_free(pl->replaced, pl->nreplaced);
    *pl = (slot_plan){0};
}

/* Appends key (taken; NULL: out of memory) to a list of keys. */
static void keys_add(char ***list, size_t *n, size_t *cap, char *key)
{
    if (!key) {
        szd_oom();
    }
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        *list = szd_xrealloc(*list, *cap * sizeof **list);
    }
    (*list)[(*n)++] = key;
}

static void plan_free_key(slot_plan *pl, char *key)
{
    keys_add(&pl->freed, &pl->nfreed, &pl->capfreed, key);
}

static void plan_replaced_key(slot_plan *pl, char *key)
{
    keys_add(&pl->replaced, &pl->nreplaced, &pl->capreplaced, key);
}

/* Whether a stale key may still be deleted: not the record of a partition that exists now
 * (one dropped at load as an unfinished add, then added again). */
static bool stale_still_stale(szd_ns *ns, const char *key)
{
    shardz_key_parts kp;
    if (shardz_key_parse(key, strlen(key), &kp) != 0 || kp.kind != SHARDZ_KEY_ASSIGN) {
        return true;
    }
    return szd_part_find(ns, kp.id) == NULL;
}

/* The pages of memory's table that differ from the committed ones, put into b under a new
 * epoch; pl gets the manifest to switch to and the keys the switch frees (the replaced pages,
 * and the stale keys the load found). */
static int slots_plan(szd_ns *ns, szd_batch *b, slot_plan *pl)
{
    szd_slot_table *t = ns->slots;
    uint32_t nslots = 0;
    size_t n = 0;
    shardz_slot_range *runs = NULL;
    int rc = shardz_sharder_slot_count(ns->sh, &nslots);
    if (rc == 0) {
        rc = shardz_sharder_slot_ranges(ns->sh, NULL, NULL, 0, &n);
    }
    if (rc == 0 && n > 0) {
        runs = szd_xmalloc(n * sizeof *runs);
        rc = shardz_sharder_slot_ranges(ns->sh, NULL, runs, n, &n); /* in slot order */
    }
    uint32_t w = t->m.page_slots ? t->m.page_slots : szd_slot_page_slots(nslots);
    uint32_t np = rc == 0 && n > 0 ? nslots / w : 0;
    pl->epoch = t->epoch_max + 1;
    pl->m = (szd_slot_manifest){
        .page_slots = w, .npages = np, .epoch = szd_xcalloc(np ? np : 1, sizeof *pl->m.epoch)};
    pl->hash = szd_xcalloc(np ? np : 1, sizeof *pl->hash);
    pl->written = szd_xcalloc(np ? np : 1, sizeof *pl->written);
    size_t first = 0;
    for (uint32_t k = 0; k < np && rc == 0; k++) {
        size_t len = 0;
        char *text = szd_slot_page_text(runs, n, &first, k * w, (k + 1) * w, &len);
        if (!text) {
            rc = SHARDZ_EIO; /* the sharder's runs do not cover the slots: a bug, not written */
            break;
        }
        uint64_t h = szd_slot_page_hash(text, len);
        pl->hash[k] = h;
        if (k < t->m.npages && t->hash[k] == h) {
            pl->m.epoch[k] = t->m.epoch[k]; /* unchanged: the committed page stays */
            free(text);
            continue;
        }
        pl->m.epoch[k] = pl->epoch;
        pl->changed = true;
        char *key = slots_key(ns, pl->epoch, k);
        char *copy = key ? strdup(key) : NULL;
        if (!copy) {
            szd_oom();
        }
        pl->written[pl->nwritten++] = copy;
        rc = szd_batch_put(b, key, text);
        if (rc == 0 && k < t->m.npages) {
            plan_replaced_key(pl, slots_key(ns, t->m.epoch[k], k));
        }
    }
    for (uint32_t k = np; rc == 0 && k < t->m.npages; k++) {
        plan_replaced_key(pl, slots_key(ns, t->m.epoch[k], k));
        pl->changed = true;
    }
    pl->changed = pl->changed || t->m.page_slots == 0 || np != t->m.npages;
    for (size_t i = 0; rc == 0 && i < t->nstale; i++) {
        if (stale_still_stale(ns, t->stale[i])) {
            plan_free_key(pl, strdup(t->stale[i]));
        }
    }
    free(runs);
    return rc;
}

/* Writes b (borrowed) on the lane and waits. */
static int lane_write(szd_ns *ns, const szd_batch *b, char *detail, size_t dlen, int64_t *revision)
{
    int64_t t0 = szd_now(ns->d);
    int rc = szd_sl_write(ns->d->sl, b, detail, dlen, revision);
    szd_hist_add(&ns->d->store_hist, (double)(szd_now(ns->d) - t0) / 1000.0);
    return rc;
}

/* The switch: `with` and the config record naming manifest m (NULL: the committed one) as
 * one batch small enough to be one transaction on every backend. */
static int switch_write(szd_ns *ns, const shardz_op *with, size_t n_with,
                        const szd_slot_manifest *m, char *detail, size_t dlen, int64_t *revision)
{
    szd_batch *b = szd_batch_new();
    int rc = b ? 0 : SHARDZ_ENOMEM;
    size_t bytes = 0;
    for (size_t i = 0; i < n_with && rc == 0; i++) {
        char *key = strndup(with[i].key, with[i].key_len);
        bytes += with[i].key_len + with[i].value_len;
        if (with[i].type == SHARDZ_OP_PUT) {
            char *val = strndup(with[i].value, with[i].value_len);
            rc = szd_batch_put(b, key, val);
        } else {
            rc = szd_batch_delete(b, key);
        }
    }
    json_t *rec = szd_ns_config_record(ns);
    if (m) {
        json_object_set_new(rec, "slot_table", szd_slot_manifest_json(m));
    }
    char *text = json_dumps(rec, JSON_COMPACT);
    json_decref(rec);
    bytes += text ? strlen(text) : 0;
    if (rc == 0) {
        rc = put_json_text(b, SHARDZ_KEY_CONFIG, ns, text);
    } else {
        free(text);
    }
    /* one transaction: under the operation and byte limits, no backend cuts it */
    if (rc == 0 && (szd_batch_count(b) > SHARDZ_STORE_MAX_TXN_OPS ||
                    bytes + 4096 > SHARDZ_STORE_MAX_TXN_BYTES)) {
        snprintf(detail, dlen, "the slot table's switch exceeds one transaction");
        rc = SHARDZ_ETOOBIG;
    }
    if (rc == 0) {
        rc = lane_write(ns, b, detail, dlen, revision);
    }
    szd_batch_free(b);
    return rc;
}

/* After the switch: the pages the switch before it replaced and the stale keys deleted (this
 * switch's replaced pages stay until the next one: a follower that read the config before
 * this switch may still be reading them). A failure leaves them for the next write (nothing
 * reads them: they are no committed epoch's). */
static void slots_cleanup(szd_ns *ns, slot_plan *pl)
{
    szd_slot_table *t = ns->slots;
    for (size_t i = 0; i < t->nstale; i++) {
        free(t->stale[i]);
    }
    t->nstale = 0;
    if (pl->nfreed == 0) {
        return;
    }
    szd_batch *b = szd_batch_new();
    int rc = b ? 0 : SHARDZ_ENOMEM;
    for (size_t i = 0; i < pl->nfreed && rc == 0; i++) {
        char *key = strdup(pl->freed[i]);
        rc = key ? szd_batch_delete(b, key) : SHARDZ_ENOMEM;
    }
    char detail[256] = "";
    if (rc == 0) {
        rc = lane_write(ns, b, detail, sizeof detail, NULL);
    }
    szd_batch_free(b);
    if (rc) {
        szd_log(ns->d, SZD_WARN,
                "msg=\"old slot table pages not deleted\" ns=%s keys=%zu err=%s detail=\"%s\"",
                ns->cfg.name, pl->nfreed, shardz_err_name(rc), detail);
        for (size_t i = 0; i < pl->nfreed; i++) { /* the next write tries again */
            szd_slots_stale_take(t, pl->freed[i]);
            pl->freed[i] = NULL;
        }
    }
}

int szd_ns_write(szd_ns *ns, bool config, const shardz_op *with, size_t n_with, char *err,
                 size_t errlen, int64_t *revision)
{
    szd_batch *b = NULL;
    char detail[256] = "";
    slot_plan pl = {0};
    if (ns->reload) { /* it holds a change that is not durable: nothing is written over it */
        if (err && errlen) {
            snprintf(err, errlen,
                     "store: namespace '%s' is still to be read again after a "
                     "failed write",
                     ns->cfg.name);
        }
        return SHARDZ_EIO;
    }
    bool table = slots_due(ns);
    /* the records (a new partition's among them: the committed table does not name it until
     * the switch) and the new pages, then the switch when the table changed */
    int rc = collect(ns, config && !table && n_with == 0, &b);
    if (rc == 0 && table) {
        rc = slots_plan(ns, b, &pl);
    }
    bool sw = (table && pl.changed) || n_with > 0;
    if (rc == 0 && table && config && !sw) { /* the table as it was: the config goes along */
        rc = put_json(b, SHARDZ_KEY_CONFIG, ns, NULL, szd_ns_config_record(ns));
    }
    if (rc == 0 && szd_batch_count(b) > 0) {
        rc = lane_write(ns, b, detail, sizeof detail, revision);
    }
    if (rc && table && ns->slots) { /* pages of this epoch may be in the store: never reused */
        szd_slot_table *t = ns->slots;
        t->epoch_max = pl.epoch > t->epoch_max ? pl.epoch : t->epoch_max;
        for (size_t i = 0; i < pl.nwritten; i++) {
            szd_slots_stale_take(t, pl.written[i]);
            pl.written[i] = NULL;
        }
    }
    szd_batch_free(b);
    if (rc == 0 && sw) {
        rc = switch_write(ns, with, n_with, table && pl.changed ? &pl.m : NULL, detail,
                          sizeof detail, revision);
    }
    if (rc == 0) {
        mark_clean(ns);
        if (table) {
            szd_slot_table *t = ns->slots;
            szd_slot_manifest_free(&t->m);
            free(t->hash);
            t->m = pl.m;
            t->hash = pl.hash;
            pl.m = (szd_slot_manifest){0};
            pl.hash = NULL;
            if (pl.changed) { /* (unchanged: nothing was written at pl.epoch) */
                t->epoch_max = pl.epoch > t->epoch_max ? pl.epoch : t->epoch_max;
            }
            t->dirty = false;
            for (size_t i = 0; i < t->nretired; i++) {
                plan_free_key(&pl, t->retired[i]);
            }
            free(t->retired);
            t->retired = pl.replaced; /* deleted with the next switch (or a restart) */
            t->nretired = pl.nreplaced;
            pl.replaced = NULL;
            pl.nreplaced = 0;
            slots_cleanup(ns, &pl);
        } else if (ns->slots && ns->slots->nstale > 0) {
            /* stale keys a load found (an unfinished write's): deleted with the first write */
            for (size_t i = 0; i < ns->slots->nstale; i++) {
                if (stale_still_stale(ns, ns->slots->stale[i])) {
                    plan_free_key(&pl, strdup(ns->slots->stale[i]));
                }
            }
            slots_cleanup(ns, &pl);
        }
        plan_free(&pl);
        return 0;
    }
    plan_free(&pl);
    /* Memory holds what the caller changed for this write and the caller is refused: the
     * change is not kept. The namespace is read again from the store (szd_ns_reload: the API
     * dispatcher at once, else the work pass), which holds whatever the write left, a switch
     * of unknown outcome included (docs/PROTOCOL.md 8). */
    ns->reload = true;
    write_failed(ns, rc, detail);
    if (err && errlen) {
        snprintf(err, errlen, "store: %s", detail[0] ? detail : shardz_strerror(rc));
    }
    return rc;
}

int szd_ns_flush(szd_ns *ns, bool config, char *err, size_t errlen, int64_t *revision)
{
    return szd_ns_write(ns, config, NULL, 0, err, errlen, revision);
}

int szd_ns_write_node(szd_ns *ns, const szd_node *n, char *err, size_t errlen)
{
    char detail[256] = "";
    szd_batch *b = szd_batch_new();
    int rc = b ? put_json(b, SHARDZ_KEY_NODE, ns, n->id, szd_node_record(ns, n)) : SHARDZ_ENOMEM;
    if (rc == 0) {
        rc = szd_sl_write(ns->d->sl, b, detail, sizeof detail, NULL);
    }
    szd_batch_free(b);
    if (rc) {
        write_failed(ns, rc, detail);
        snprintf(err, errlen, "store: %s", detail[0] ? detail : shardz_strerror(rc));
    }
    return rc;
}

static void flight_unlink(szd_flight *f)
{
    if (!f->ns) {
        return;
    }
    for (szd_flight **pp = &f->ns->flights; *pp; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    f->ns = NULL;
}

static void on_durable(void *arg, const szd_sl_result *r, void *msgs)
{
    szd_flight *f = arg;
    szd_ns *ns = f->ns;
    bool stats = f->stats;
    flight_unlink(f);
    free(f);
    if (!ns) { /* the namespace is gone */
        szd_push_drop(NULL, msgs);
        return;
    }
    szd_hist_add(&ns->d->store_hist, (double)r->write_ms / 1000.0);
    if (r->durable && !szd_acting(ns->d)) {
        /* durable, but this coordinator no longer acts: the next leader tells the workers */
        szd_push_drop(ns, msgs);
        return;
    }
    if (r->durable) {
        szd_push_release(ns, msgs, r->durable);
        if (!stats) {
            ns->pass_unwritten = false;
            szd_watch_notify(ns);
            szd_ns_schedule(ns); /* what gathered meanwhile (szd_ns_persist) */
        }
        return;
    }
    szd_push_drop(ns, msgs);
    if (stats) {
        for (uint32_t i = 0; i < ns->nparts; i++) {
            ns->parts[i].stats_dirty = true;
        }
    } else {
        mark_all_dirty(ns);
        ns->pass_unwritten = true;
    }
    write_failed(ns, r->rc, r->errmsg);
}

static void submit(szd_ns *ns, szd_batch *b, szd_pushes *p, bool stats)
{
    szd_flight *f = calloc(1, sizeof *f);
    if (!f) {
        szd_oom();
    }
    f->ns = ns;
    f->stats = stats;
    f->next = ns->flights;
    ns->flights = f;
    szd_push_attach(p, szd_sl_submit(ns->d->sl, b, p, on_durable, f));
}

/* true while a batch of records (not statistics) is on the store lane */
static bool records_in_flight(const szd_ns *ns)
{
    for (const szd_flight *f = ns->flights; f; f = f->next) {
        if (!f->stats) {
            return true;
        }
    }
    return false;
}

void szd_ns_persist(szd_ns *ns)
{
    /* Group commit: while one batch is on the lane, the changes after it gather in the dirty
     * records and the nodes' changed sets; when it is durable, on_durable schedules the pass
     * that writes them all as one batch. Under a stream of acknowledgements this turns a
     * batch per reply into a batch per commit, and rewrites a record once, not per reply. */
    if (records_in_flight(ns) || ns->reload) {
        return; /* reload: held until read again (szd_ns_reload) */
    }
    if (slots_due(ns) && szd_ns_write(ns, false, NULL, 0, NULL, 0, NULL) != 0) {
        /* the slot table (a table dealt again at load, or converted from the old layout) is
         * written in its three steps and waited for; failed, nothing else goes before it */
        return;
    }
    szd_batch *b = NULL;
    int rc = collect(ns, false, &b);
    if (rc) {
        write_failed(ns, rc, "out of memory");
        return;
    }
    mark_clean(ns);
    szd_pushes *p = szd_push_build(ns);
    if (szd_batch_count(b) == 0 && !p && ns->revision == ns->persisted_revision) {
        /* nothing to write, push or tell watchers */
        szd_batch_free(b);
        return;
    }
    ns->persisted_revision = ns->revision;
    submit(ns, b, p, false);
}

void szd_ns_forget_flights(szd_ns *ns)
{
    while (ns->flights) {
        flight_unlink(ns->flights);
    }
}

/* Writes the statistics that changed, every few seconds: they are soft state, and a sample
 * per ping per partition is far more than the store needs to see. Ages are stored in
 * wall-clock milliseconds so they mean something after a restart. */
void szd_ns_flush_stats(szd_ns *ns, bool force)
{
    int64_t now = szd_now(ns->d);
    if (!force && now - ns->stats_flushed_ms < 5000) {
        return;
    }
    ns->stats_flushed_ms = now;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    szd_batch *b = szd_batch_new();
    int rc = b ? 0 : SHARDZ_ENOMEM;
    /* at most STATS_BATCH records a flush (the rest the next time): soft state never holds
     * the loop or the store lane for long, whatever moved at once */
    size_t taken = 0;
    uint32_t last = 0;
    for (uint32_t i = 0; i < ns->nparts && rc == 0 && (force || taken < STATS_BATCH); i++) {
        szd_part *p = &ns->parts[i];
        if (!p->stats_dirty) {
            continue;
        }
        taken++;
        last = i;
        json_t *load = json_object();
        for (size_t d = 0; d < ns->cfg.ndims; d++) {
            json_object_set_new(load, ns->cfg.dims[d], json_real(p->load[d]));
        }
        json_t *rec =
            json_pack("{s:s, s:o, s:I, s:I}", "id", p->id, "load", load, "updated_ms",
                      (json_int_t)(p->load_ms ? wall - (now - p->load_ms) : 0), "moved_ms",
                      (json_int_t)(p->moved_ms ? wall - (now - p->moved_ms) : 0));
        rc = put_json(b, SHARDZ_KEY_STATS, ns, p->id, rec);
    }
    if (rc || szd_batch_count(b) == 0) {
        if (rc) {
            szd_log(ns->d, SZD_WARN, "msg=\"statistics not written\" ns=%s err=%s", ns->cfg.name,
                    shardz_err_name(rc));
        }
        szd_batch_free(b);
        return;
    }
    for (uint32_t i = 0; i <= last && i < ns->nparts; i++) {
        ns->parts[i].stats_dirty = false;
    }
    submit(ns, b, NULL, true);
}

void szd_store_on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    szd *d = arg;
    szd_sl_dispatch(d->sl);
}

/* One atomic transaction run on the store lane (szd_store_txn). */
typedef struct {
    const shardz_op *ops;
    size_t n;
    char *err;
    size_t errlen;
} txn_call;

static int run_txn(shardz_store *st, void *arg)
{
    txn_call *c = arg;
    int rc = shardz_store_txn(st, NULL, 0, c->ops, c->n, NULL, NULL);
    if (rc && c->err && c->errlen) {
        snprintf(c->err, c->errlen, "%s", shardz_store_errmsg(st));
    }
    return rc;
}

int szd_store_txn(szd *d, const shardz_op *ops, size_t n, char *err, size_t errlen)
{
    txn_call c = {ops, n, err, errlen};
    if (err && errlen) {
        err[0] = '\0';
    }
    int rc = szd_sl_call(d->sl, run_txn, &c);
    if (rc == SHARDZ_ENOTLEADER) {
        szd_ha_deposed(d, "a write was fenced: another coordinator leads");
    }
    return rc;
}
