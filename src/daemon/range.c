/* shardzd range namespaces: split and merge tasks, carried out make-before-break and persisted
 * one step per store transaction (docs/PROTOCOL.md section 9):
 *   split  planned -> split  -> moved -> done
 *   merge  planned -> merged -> moved -> done
 * planned: the task is recorded. split/merged: the successors exist, placed on the nodes that
 * serve the (first) predecessor, told to serve their ranges; routing is unchanged. moved: every
 * successor replica serves, the range table routes to the successors, the predecessors are
 * told to delete. done: the predecessors are gone. The table changes in one step only, so no
 * key is ever unrouted or routed twice. Event-loop thread. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "daemon/core/range_task.h"
#include "daemon/oom.h"
#include "daemon/range.h"
#include "shardz/range.h"

/* One split (1 -> 2) or merge (2 -> 1). */
typedef struct {
    char id[32];
    bool merge;
    szd_rt_state state;
    size_t nold, nnew;
    char old[2][SHARDZ_MAX_ID + 1]; /* predecessors, in key order */
    char neu[2][SHARDZ_MAX_ID + 1]; /* successors, in key order */
    char *lo[2], *hi[2];            /* the successors' ranges (owned; "" is -inf / +inf) */
    int64_t created_ms;             /* wall clock */
    bool unsaved; /* its state is ahead of the store (a step's write failed): written again */
} rtask;

struct szd_range {
    rtask **t; /* owned */
    size_t n, cap;
    uint64_t next_task;
    json_t *restore; /* while loading: [[partition, lo, hi], ...] of routed partitions */
    json_t *hints;   /* {partition: key}: the latest split key a worker suggested (owned) */
};

static const char *state_name(const rtask *t)
{
    static const char *const names[] = {"planned", "split", "moved", "done"};
    return t->state == SZD_RT_CREATED && t->merge ? "merged" : names[t->state];
}

bool szd_is_range(const szd_ns *ns)
{
    return strcmp(ns->cfg.sharder, "range") == 0;
}

static void task_free(rtask *t)
{
    for (int i = 0; t && i < 2; i++) {
        free(t->lo[i]);
        free(t->hi[i]);
    }
    free(t);
}

void szd_range_free(szd_ns *ns)
{
    struct szd_range *r = ns->range;
    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        task_free(r->t[i]);
    }
    free(r->t);
    json_decref(r->restore);
    json_decref(r->hints);
    free(r);
    ns->range = NULL;
}

static struct szd_range *range_state(szd_ns *ns)
{
    if (!ns->range) {
        ns->range = szd_xcalloc(1, sizeof *ns->range);
    }
    return ns->range;
}

static int task_add(szd_ns *ns, rtask *t)
{
    struct szd_range *r = range_state(ns);
    if (r->n == r->cap) {
        size_t ncap = r->cap ? 2 * r->cap : 8;
        rtask **nt = realloc(r->t, ncap * sizeof *nt);
        if (!nt) {
            return SHARDZ_ENOMEM;
        }
        r->t = nt;
        r->cap = ncap;
    }
    r->t[r->n++] = t;
    return 0;
}

/* The task not done that names partition pid (as a predecessor or successor), or NULL. */
static rtask *task_of(const szd_ns *ns, const char *pid)
{
    const struct szd_range *r = ns->range;
    for (size_t i = 0; r && i < r->n; i++) {
        rtask *t = r->t[i];
        if (t->state == SZD_RT_DONE) {
            continue;
        }
        for (size_t k = 0; k < t->nold; k++) {
            if (strcmp(t->old[k], pid) == 0) {
                return t;
            }
        }
        for (size_t k = 0; k < t->nnew; k++) {
            if (strcmp(t->neu[k], pid) == 0) {
                return t;
            }
        }
    }
    return NULL;
}

/* ---- creation ---------------------------------------------------------------------------- */

int szd_range_init(szd_ns *ns, char *err, size_t errlen)
{
    uint32_t n = ns->nparts;
    if (n > 95) {
        snprintf(err, errlen,
                 "a range namespace starts with at most 95 partitions (split them "
                 "later)");
        return SHARDZ_EINVAL;
    }
    range_state(ns);
    if (n == 0) {
        return 0;
    }
    /* bound k is the single byte 0x20 + k * 95 / n: an even cut of printable keys */
    char(*b)[2] = calloc(n + 1, sizeof *b);
    shardz_key_range *r = calloc(n, sizeof *r);
    int rc = SHARDZ_ENOMEM;
    if (!b || !r) {
        goto out;
    }
    for (uint32_t k = 1; k < n; k++) {
        b[k][0] = (char)(0x20 + k * 95 / n);
    }
    for (uint32_t k = 0; k < n; k++) {
        r[k].partition = ns->parts[k].id;
        r[k].lo = b[k];
        r[k].lo_len = k == 0 ? 0 : 1;
        r[k].hi = b[k + 1];
        r[k].hi_len = k + 1 == n ? 0 : 1;
    }
    rc = shardz_sharder_range_restore(ns->sh, r, n);
    if (rc) {
        snprintf(err, errlen, "range table: %s", shardz_strerror(rc));
    }
out:
    free(b);
    free(r);
    return rc;
}

/* ---- records ----------------------------------------------------------------------------- */

/* {"lo", "hi"}: an unbounded hi (+infinity) is null; lo "" is -infinity, below every key. */
static json_t *bounds_json(const char *lo, size_t lolen, const char *hi, size_t hilen)
{
    return json_pack("{s:s%, s:o}", "lo", lo, lolen, "hi",
                     hilen ? json_stringn(hi, hilen) : json_null());
}

/* A bound from JSON: a string, or null for "" (unbounded); NULL when neither. */
static const char *bound_of(json_t *v, size_t *len)
{
    *len = json_string_length(v);
    return json_is_null(v) ? "" : json_string_value(v);
}

void szd_range_fields(const szd_ns *ns, const char *partition, json_t *j, bool record)
{
    shardz_key_range kr;
    if (!szd_is_range(ns)) {
        return;
    }
    bool routed = shardz_sharder_range_of(ns->sh, partition, &kr) == 0;
    json_t *b = NULL;
    if (routed) {
        b = bounds_json(kr.lo, kr.lo_len, kr.hi, kr.hi_len);
    } else {
        rtask *t = task_of(ns, partition);
        for (size_t k = 0; t && k < t->nnew; k++) {
            if (strcmp(t->neu[k], partition) == 0) {
                b = bounds_json(t->lo[k], strlen(t->lo[k]), t->hi[k], strlen(t->hi[k]));
            }
        }
    }
    if (b) {
        json_object_set_new(j, "range", b);
    }
    if (record || !routed) {
        json_object_set_new(j, "routed", json_boolean(routed));
    }
}

static json_t *task_json(const rtask *t)
{
    json_t *from = json_array(), *to = json_array();
    for (size_t k = 0; k < t->nold; k++) {
        json_array_append_new(from, json_string(t->old[k]));
    }
    for (size_t k = 0; k < t->nnew; k++) {
        json_t *e = bounds_json(t->lo[k], strlen(t->lo[k]), t->hi[k], strlen(t->hi[k]));
        json_object_set_new(e, "partition", json_string(t->neu[k]));
        json_array_append_new(to, e);
    }
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:I}", "id", t->id, "type",
                     t->merge ? "merge" : "split", "state", state_name(t), "from", from, "to", to,
                     "created_ms", (json_int_t)t->created_ms);
}

json_t *szd_range_tasks_json(const szd_ns *ns)
{
    json_t *list = json_array();
    for (size_t i = 0; ns->range && i < ns->range->n; i++) {
        json_array_append_new(list, task_json(ns->range->t[i]));
    }
    return list;
}

/* Test hook: SHARDZ_TEST_CRASH_AFTER="<type>:<state>" (e.g. "split:moved") kills the daemon
 * with SIGKILL right after that step is on disk, as a crash there would. Tests only. */
static void crash_hook(const szd_ns *ns, const rtask *t)
{
    const char *want = getenv("SHARDZ_TEST_CRASH_AFTER");
    char have[32];
    snprintf(have, sizeof have, "%s:%s", t->merge ? "merge" : "split", state_name(t));
    if (want && strcmp(want, have) == 0) {
        szd_log(ns->d, SZD_WARN, "msg=\"test crash\" ns=%s task=%s at=%s", ns->cfg.name, t->id,
                have);
        raise(SIGKILL);
    }
}

#define MAX_STEP_OPS 16

/* Writes one step atomically: the task record, the records of parts[0..np-1], and deletes of
 * the assignment and statistics of gone[0..ngone-1]. 0 or the store's error (nothing
 * written). */
static int step_persist(szd_ns *ns, const rtask *t, szd_part *const *parts, size_t np,
                        const char *const *gone, size_t ngone)
{
    shardz_op ops[MAX_STEP_OPS];
    char keys[MAX_STEP_OPS][SHARDZ_KEY_BUF];
    char *vals[MAX_STEP_OPS] = {0};
    size_t n = 0;
    int rc = 0;
    json_t *tj = task_json(t);
    vals[n] = json_dumps(tj, JSON_COMPACT);
    json_decref(tj);
    int len = shardz_key_task(keys[n], sizeof keys[n], ns->cfg.name, t->id);
    if (len < 0 || !vals[n]) {
        rc = len < 0 ? len : SHARDZ_ENOMEM;
        goto out;
    }
    ops[n] = (shardz_op){SHARDZ_OP_PUT, keys[n], (size_t)len, vals[n], strlen(vals[n]), 0};
    n++;
    for (size_t i = 0; i < np; i++, n++) {
        vals[n] = szd_apage_override_text(ns, parts[i]); /* its own key: one transaction */
        len = shardz_key_assign(keys[n], sizeof keys[n], ns->cfg.name, parts[i]->id);
        if (len < 0 || !vals[n]) {
            rc = len < 0 ? len : SHARDZ_ENOMEM;
            goto out;
        }
        ops[n] = (shardz_op){SHARDZ_OP_PUT, keys[n], (size_t)len, vals[n], strlen(vals[n]), 0};
    }
    for (size_t i = 0; i < ngone; i++) {
        /* the assignment's removal mark (its page may hold its line), the statistics' delete */
        const szd_part *g = szd_part_find(ns, gone[i]);
        char *mkey = NULL;
        if (g) {
            rc = szd_apage_mark(ns, g, &mkey, &vals[n]);
            if (rc) {
                goto out;
            }
            snprintf(keys[n], sizeof keys[n], "%s", mkey);
            free(mkey);
            ops[n] =
                (shardz_op){SHARDZ_OP_PUT, keys[n], strlen(keys[n]), vals[n], strlen(vals[n]), 0};
            n++;
        }
        len = shardz_key_stats(keys[n], sizeof keys[n], ns->cfg.name, gone[i]);
        if (len < 0) {
            rc = len;
            goto out;
        }
        ops[n] = (shardz_op){SHARDZ_OP_DELETE, keys[n], (size_t)len, NULL, 0, 0};
        n++;
    }
    char detail[256];
    rc = szd_store_txn(ns->d, ops, n, detail, sizeof detail);
    if (rc) {
        szd_log(ns->d, SZD_ERROR,
                "msg=\"task step not written\" ns=%s task=%s err=%s detail=\"%s\"", ns->cfg.name,
                t->id, shardz_err_name(rc), detail);
        goto out;
    }
    for (size_t i = 0; i < np; i++) {
        parts[i]->dirty = false;
    }
    szd_log(ns->d, SZD_INFO, "msg=\"task step\" ns=%s task=%s type=%s state=%s", ns->cfg.name,
            t->id, t->merge ? "merge" : "split", state_name(t));
    szd_event(ns, "task", task_json(t));
    crash_hook(ns, t);
out:
    for (size_t i = 0; i < MAX_STEP_OPS; i++) {
        free(vals[i]);
    }
    return rc;
}

/* ---- steps ------------------------------------------------------------------------------- */

static bool node_gone(const szd_ns *ns, int32_t i)
{
    return i < 0 || ns->nodes[i]->state == SZD_NODE_DEAD || ns->nodes[i]->state == SZD_NODE_LEFT;
}

/* planned -> split/merged: the successors, placed where the first predecessor is served. */
static int step_create(szd_ns *ns, rtask *t)
{
    szd_part *like = szd_part_find(ns, t->old[0]);
    szd_part *made[2] = {NULL, NULL};
    int rc = 0;
    if (!like) {
        return SHARDZ_ENOENT;
    }
    for (size_t k = 0; k < t->nnew && rc == 0; k++) {
        rc = szd_part_add_like(ns, t->neu[k], szd_part_find(ns, t->old[0]));
    }
    for (size_t k = 0; k < t->nnew && rc == 0; k++) { /* found after the appends moved them */
        made[k] = szd_part_find(ns, t->neu[k]);
    }
    if (rc == 0) {
        t->state = szd_rt_after(t->state, SZD_RT_CREATE);
        rc = step_persist(ns, t, made, t->nnew, NULL, 0);
    }
    if (rc == 0) {
        szd_ns_changed(ns);
    }
    if (rc) { /* undo: nothing of this step stays */
        t->state = SZD_RT_PLANNED;
        for (size_t k = 0; k < t->nnew; k++) {
            szd_part *p = szd_part_find(ns, t->neu[k]);
            if (p) {
                szd_part_remove(ns, p);
            }
        }
    }
    return rc;
}

/* split/merged -> moved: routing switches to the successors; the predecessors drop. */
static int step_switch(szd_ns *ns, rtask *t)
{
    shardz_key_range nr[2];
    const char *old[2] = {t->old[0], t->old[1]};
    for (size_t k = 0; k < t->nnew; k++) {
        nr[k] =
            (shardz_key_range){t->neu[k], t->lo[k], strlen(t->lo[k]), t->hi[k], strlen(t->hi[k])};
    }
    int rc = shardz_sharder_range_replace(ns->sh, old, t->nold, nr, t->nnew);
    if (rc) {
        szd_log(ns->d, SZD_ERROR, "msg=\"range switch refused\" ns=%s task=%s err=%s", ns->cfg.name,
                t->id, shardz_err_name(rc));
        return rc;
    }
    szd_part *rec[4];
    size_t nrec = 0;
    for (size_t k = 0; k < t->nold; k++) {
        szd_part *p = szd_part_find(ns, t->old[k]);
        (void)shardz_sharder_unregister_partitions(ns->sh, &old[k], 1);
        for (unsigned s = 0; p && s < p->nrep; s++) {
            szd_slot *sl = &p->slots[s];
            if (sl->owner >= 0 && !node_gone(ns, sl->owner)) {
                sl->prev = sl->owner;
                sl->prev_generation = sl->generation;
                sl->prev_state = SZD_R_DROPPING;
                szd_push_changed(ns->nodes[sl->owner], p->id);
                if (!szd_idset_add(&ns->nodes[sl->owner]->drops, p->id)) {
                    szd_oom();
                }
            }
            sl->owner = -1;
            sl->owner_state = SZD_R_NONE;
            sl->reason = SHARDZ_REASON_SPLIT;
        }
        if (p) {
            rec[nrec++] = p;
        }
    }
    for (size_t k = 0; k < t->nnew; k++) {
        rec[nrec++] = szd_part_find(ns, t->neu[k]);
    }
    /* Routing switched in memory: the state stays moved even when the write fails (it is
     * written again by the next pass; a restart in between finds the records ahead of the task
     * and catches up, see szd_range_restore). */
    t->state = szd_rt_after(t->state, SZD_RT_SWITCH);
    rc = step_persist(ns, t, rec, nrec, NULL, 0);
    t->unsaved = rc != 0;
    ns->want_rebalance = true; /* the successors sit where their predecessor was: rebalance */
    szd_ns_changed(ns);
    return rc;
}

/* Done tasks kept (in memory and in the store) for the task list; older ones are forgotten. */
#define DONE_KEPT 64

/* Forgets the oldest done tasks beyond DONE_KEPT (their records are deleted). */
static void prune_done(szd_ns *ns)
{
    struct szd_range *r = ns->range;
    size_t done = 0;
    for (size_t i = 0; i < r->n; i++) {
        done += r->t[i]->state == SZD_RT_DONE;
    }
    for (size_t i = 0; i < r->n && done > DONE_KEPT;) {
        rtask *t = r->t[i];
        char key[SHARDZ_KEY_BUF];
        int len =
            t->state == SZD_RT_DONE ? shardz_key_task(key, sizeof key, ns->cfg.name, t->id) : -1;
        shardz_op op = {SHARDZ_OP_DELETE, key, len > 0 ? (size_t)len : 0, NULL, 0, 0};
        if (len < 0 || szd_store_txn(ns->d, &op, 1, NULL, 0) != 0) {
            i++;
            continue;
        }
        task_free(t);
        memmove(&r->t[i], &r->t[i + 1], (r->n - i - 1) * sizeof *r->t);
        r->n--;
        done--;
    }
}

/* moved -> done: the predecessors' records go. */
static int step_finish(szd_ns *ns, rtask *t)
{
    const char *gone[2] = {t->old[0], t->old[1]};
    t->state = szd_rt_after(t->state, SZD_RT_FINISH);
    int rc = step_persist(ns, t, NULL, 0, gone, t->nold);
    if (rc) {
        t->state = SZD_RT_MOVED;
        return rc;
    }
    for (size_t k = 0; k < t->nold; k++) {
        szd_part *p = szd_part_find(ns, t->old[k]);
        if (p) {
            szd_part_remove(ns, p);
        }
    }
    prune_done(ns);
    return 0;
}

/* Writes a task whose last step's write failed again, with its partitions' records. */
static void step_retry(szd_ns *ns, rtask *t)
{
    szd_part *rec[4];
    size_t n = 0;
    for (size_t k = 0; k < t->nold; k++) {
        if (szd_part_find(ns, t->old[k])) {
            rec[n++] = szd_part_find(ns, t->old[k]);
        }
    }
    for (size_t k = 0; k < t->nnew; k++) {
        if (szd_part_find(ns, t->neu[k])) {
            rec[n++] = szd_part_find(ns, t->neu[k]);
        }
    }
    t->unsaved = step_persist(ns, t, rec, n, NULL, 0) != 0;
}

/* The machine's view of task t (core/range_task.c): its partitions' slots, found again for
 * each step (a step that adds partitions moves them). */
static szd_rt_view task_view(szd_ns *ns, const rtask *t, const szd_slot_env *env,
                             szd_rt_part parts[4])
{
    for (size_t k = 0; k < t->nold + t->nnew; k++) {
        szd_part *p = szd_part_find(ns, k < t->nold ? t->old[k] : t->neu[k - t->nold]);
        parts[k] = (szd_rt_part){p ? p->slots : NULL, p ? p->nrep : 0};
    }
    return (szd_rt_view){.state = t->state,
                         .unsaved = t->unsaved,
                         .old = parts,
                         .nold = t->nold,
                         .neu = parts + t->nold,
                         .nnew = t->nnew,
                         .env = env};
}

void szd_range_advance(szd_ns *ns)
{
    szd_slot_env env = szd_ns_slot_env(ns);
    for (size_t i = 0; ns->range && i < ns->range->n; i++) {
        rtask *t = ns->range->t[i];
        /* the steps due now, one after another, until one must wait or its write failed */
        for (;;) {
            szd_rt_part parts[4];
            szd_rt_view v = task_view(ns, t, &env, parts);
            szd_rt_step step = szd_rt_next(&v);
            int rc = 0;
            if (step == SZD_RT_WAIT) {
                break;
            } else if (step == SZD_RT_REWRITE) {
                step_retry(ns, t);
                rc = t->unsaved ? SHARDZ_EIO : 0;
            } else if (step == SZD_RT_CREATE) {
                rc = step_create(ns, t);
            } else if (step == SZD_RT_SWITCH) {
                rc = step_switch(ns, t);
            } else {
                (void)step_finish(ns, t); /* may forget done tasks, t among them: last */
                break;
            }
            if (rc) {
                break;
            }
        }
    }
}

/* ---- operator requests ------------------------------------------------------------------- */

/* Raises *max to id's number when id is all digits (*any: a number was seen). */
static void numeric_max(const char *id, unsigned long long *max, bool *any)
{
    char *end;
    unsigned long long x = strtoull(id, &end, 10);
    if (*id && !*end && (!*any || x > *max)) {
        *max = x;
        *any = true;
    }
}

/* A new partition id: one above the largest numeric id of the namespace and its tasks. */
static void next_part_id(const szd_ns *ns, char *out, size_t cap, unsigned extra)
{
    unsigned long long max = 0;
    bool any = false;
    for (uint32_t i = 0; i < ns->nparts; i++) {
        numeric_max(ns->parts[i].id, &max, &any);
    }
    for (size_t i = 0; ns->range && i < ns->range->n; i++) {
        for (size_t k = 0; k < ns->range->t[i]->nnew; k++) {
            numeric_max(ns->range->t[i]->neu[k], &max, &any);
        }
    }
    snprintf(out, cap, "%llu", (any ? max + 1 : 0) + extra);
}

static rtask *task_new(szd_ns *ns, bool merge)
{
    rtask *t = calloc(1, sizeof *t);
    if (!t) {
        return NULL;
    }
    struct szd_range *r = range_state(ns);
    snprintf(t->id, sizeof t->id, "t%06llu", (unsigned long long)++r->next_task);
    t->merge = merge;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    t->created_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return t;
}

static char *dup_bytes(const char *s, size_t n)
{
    char *d = szd_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* Records a new task (state planned) and schedules its first step; frees t on error. */
static int task_start(szd_ns *ns, rtask *t, json_t **out, char *err, size_t errlen)
{
    int rc = step_persist(ns, t, NULL, 0, NULL, 0);
    if (rc == 0) {
        rc = task_add(ns, t);
    }
    if (rc) {
        snprintf(err, errlen, "could not record the task: %s", shardz_strerror(rc));
        task_free(t);
        return rc;
    }
    *out = task_json(t);
    szd_ns_changed(ns);
    return 0;
}

/* Whether pid is in a task not done (err then names the task). */
static bool in_task(const szd_ns *ns, const char *pid, char *err, size_t errlen)
{
    rtask *t = task_of(ns, pid);
    if (t) {
        snprintf(err, errlen, "range '%s' is in task %s (%s, %s)", pid, t->id,
                 t->merge ? "merge" : "split", state_name(t));
    }
    return t != NULL;
}

/* The routed partition pid with its range, or an error naming the problem. */
static int routed_part(szd_ns *ns, const char *pid, shardz_key_range *kr, char *err, size_t errlen)
{
    if (!szd_is_range(ns)) {
        snprintf(err, errlen, "namespace '%s' is not a range namespace", ns->cfg.name);
        return SHARDZ_ENOTSUP;
    }
    if (ns->cfg.strict) {
        /* make-before-break has the successors serve beside their predecessors */
        snprintf(err, errlen, "splits and merges are not supported in strict namespaces yet");
        return SHARDZ_ENOTSUP;
    }
    if (!pid || !szd_part_find(ns, pid)) {
        snprintf(err, errlen, "no range '%s' in namespace '%s'", pid ? pid : "", ns->cfg.name);
        return SHARDZ_ENOENT;
    }
    if (in_task(ns, pid, err, errlen)) {
        return SHARDZ_EBUSY;
    }
    if (shardz_sharder_range_of(ns->sh, pid, kr) != 0) {
        snprintf(err, errlen, "partition '%s' is not routed", pid);
        return SHARDZ_EBUSY;
    }
    return 0;
}

/* Printable keys (0x20-0x7e) get a printable middle; others one over the bytes 0x01-0xff,
 * which must then be valid UTF-8 to travel in JSON. */
static int middle_of(const shardz_key_range *kr, char *out, size_t cap, size_t *n)
{
    bool printable = true;
    for (size_t i = 0; i < kr->lo_len; i++) {
        printable &= kr->lo[i] >= 0x20 && kr->lo[i] <= 0x7e;
    }
    for (size_t i = 0; i < kr->hi_len; i++) {
        printable &= kr->hi[i] >= 0x20 && kr->hi[i] <= 0x7e;
    }
    int rc = shardz_key_middle(kr->lo, kr->lo_len, kr->hi, kr->hi_len, printable ? 0x20 : 0x01,
                               printable ? 0x7e : 0xff, out, cap, n);
    if (rc == 0 && !printable) {
        json_t *probe = json_stringn(out, *n); /* NULL unless valid UTF-8 */
        rc = probe ? 0 : SHARDZ_ERANGE;
        json_decref(probe);
    }
    return rc;
}

int szd_range_split(szd_ns *ns, const char *pid, json_t *at, json_t **task, char *err,
                    size_t errlen)
{
    shardz_key_range kr;
    char mid[SHARDZ_RANGE_KEY_MAX + 1];
    const char *b;
    size_t blen;
    int rc = routed_part(ns, pid, &kr, err, errlen);
    if (rc) {
        return rc;
    }
    if (at && !json_is_null(at)) {
        b = json_string_value(at);
        blen = b ? json_string_length(at) : 0;
        if (!b || blen == 0 || blen > SHARDZ_RANGE_KEY_MAX || strlen(b) != blen) {
            snprintf(err, errlen, "at must be a key: a string of 1-%d bytes without NUL",
                     SHARDZ_RANGE_KEY_MAX);
            return SHARDZ_EINVAL;
        }
        bool above_lo = shardz_key_cmp(b, blen, kr.lo, kr.lo_len) > 0;
        bool below_hi = kr.hi_len == 0 || shardz_key_cmp(b, blen, kr.hi, kr.hi_len) < 0;
        if (!above_lo || !below_hi) {
            snprintf(err, errlen, "split bound '%s' is %s range '%s' [\"%.*s\", \"%.*s\")", b,
                     shardz_key_cmp(b, blen, kr.lo, kr.lo_len) == 0 ? "the lower bound of"
                                                                    : "outside",
                     pid, (int)kr.lo_len, kr.lo, (int)kr.hi_len, kr.hi);
            return SHARDZ_EINVAL;
        }
    } else {
        rc = middle_of(&kr, mid, sizeof mid - 1, &blen);
        if (rc) {
            snprintf(err, errlen, "range '%s' has no middle key to split at; give \"at\"", pid);
            return SHARDZ_EINVAL;
        }
        b = mid;
    }
    rtask *t = task_new(ns, false);
    if (!t) {
        return SHARDZ_ENOMEM;
    }
    t->nold = 1;
    t->nnew = 2;
    snprintf(t->old[0], sizeof t->old[0], "%s", pid);
    next_part_id(ns, t->neu[0], sizeof t->neu[0], 0);
    next_part_id(ns, t->neu[1], sizeof t->neu[1], 1);
    t->lo[0] = dup_bytes(kr.lo, kr.lo_len);
    t->hi[0] = dup_bytes(b, blen);
    t->lo[1] = dup_bytes(b, blen);
    t->hi[1] = dup_bytes(kr.hi, kr.hi_len);
    return task_start(ns, t, task, err, errlen);
}

int szd_range_merge(szd_ns *ns, json_t *partitions, json_t **task, char *err, size_t errlen)
{
    shardz_key_range a, b;
    if (!json_is_array(partitions) || json_array_size(partitions) != 2 ||
        !json_is_string(json_array_get(partitions, 0)) ||
        !json_is_string(json_array_get(partitions, 1))) {
        snprintf(err, errlen, "partitions must be a list of two range ids");
        return SHARDZ_EINVAL;
    }
    const char *pa = json_string_value(json_array_get(partitions, 0));
    const char *pb = json_string_value(json_array_get(partitions, 1));
    int rc = routed_part(ns, pa, &a, err, errlen);
    if (rc == 0) {
        rc = routed_part(ns, pb, &b, err, errlen);
    }
    if (rc) {
        return rc;
    }
    if (shardz_key_cmp(b.lo, b.lo_len, a.lo, a.lo_len) < 0) { /* key order: a first */
        shardz_key_range x = a;
        const char *px = pa;
        a = b;
        pa = pb;
        b = x;
        pb = px;
    }
    if (a.hi_len == 0 || shardz_key_cmp(a.hi, a.hi_len, b.lo, b.lo_len) != 0) {
        snprintf(err, errlen, "ranges '%s' and '%s' are not neighbours", pa, pb);
        return SHARDZ_EINVAL;
    }
    rtask *t = task_new(ns, true);
    if (!t) {
        return SHARDZ_ENOMEM;
    }
    t->nold = 2;
    t->nnew = 1;
    snprintf(t->old[0], sizeof t->old[0], "%s", pa);
    snprintf(t->old[1], sizeof t->old[1], "%s", pb);
    next_part_id(ns, t->neu[0], sizeof t->neu[0], 0);
    t->lo[0] = dup_bytes(a.lo, a.lo_len);
    t->hi[0] = dup_bytes(b.hi, b.hi_len);
    return task_start(ns, t, task, err, errlen);
}

/* ---- loading ----------------------------------------------------------------------------- */

int szd_range_load_part(szd_ns *ns, const char *partition, json_t *rec)
{
    if (!szd_is_range(ns) || !json_is_true(json_object_get(rec, "routed"))) {
        return 0;
    }
    json_t *b = json_object_get(rec, "range");
    size_t lolen, hilen;
    const char *lo = bound_of(json_object_get(b, "lo"), &lolen);
    const char *hi = bound_of(json_object_get(b, "hi"), &hilen);
    if (!lo || !hi) {
        return SHARDZ_EINVAL;
    }
    struct szd_range *r = range_state(ns);
    if (!r->restore) {
        r->restore = json_array();
    }
    json_array_append_new(r->restore, json_pack("[s, s%, s%]", partition, lo, lolen, hi, hilen));
    return 0;
}

int szd_range_load_task(szd_ns *ns, json_t *rec)
{
    static const char *const states[] = {"planned", "split", "moved", "done", "merged"};
    const char *id = json_string_value(json_object_get(rec, "id"));
    const char *type = json_string_value(json_object_get(rec, "type"));
    const char *st = json_string_value(json_object_get(rec, "state"));
    json_t *from = json_object_get(rec, "from"), *to = json_object_get(rec, "to");
    if (!szd_is_range(ns) || !id || strlen(id) >= sizeof((rtask *)0)->id || !type || !st ||
        !json_is_array(from) || !json_is_array(to)) {
        return SHARDZ_EINVAL;
    }
    bool merge = strcmp(type, "merge") == 0;
    size_t nold = json_array_size(from), nnew = json_array_size(to);
    if ((!merge && strcmp(type, "split") != 0) || nold != (merge ? 2u : 1u) ||
        nnew != (merge ? 1u : 2u)) {
        return SHARDZ_EINVAL;
    }
    int state = -1;
    for (int i = 0; i < 5; i++) {
        if (strcmp(st, states[i]) == 0) {
            state = i == 4 ? SZD_RT_CREATED : i;
        }
    }
    if (state < 0) {
        return SHARDZ_EINVAL;
    }
    rtask *t = calloc(1, sizeof *t);
    if (!t) {
        return SHARDZ_ENOMEM;
    }
    snprintf(t->id, sizeof t->id, "%s", id);
    t->merge = merge;
    t->state = (szd_rt_state)state;
    t->nold = nold;
    t->nnew = nnew;
    t->created_ms = json_integer_value(json_object_get(rec, "created_ms"));
    int rc = 0;
    for (size_t k = 0; k < nold; k++) {
        const char *p = json_string_value(json_array_get(from, k));
        if (!szd_valid_id(p)) {
            rc = SHARDZ_EINVAL;
        }
        snprintf(t->old[k], sizeof t->old[k], "%s", p ? p : "");
    }
    for (size_t k = 0; k < nnew; k++) {
        json_t *e = json_array_get(to, k);
        const char *p = json_string_value(json_object_get(e, "partition"));
        size_t lolen, hilen;
        const char *lo = bound_of(json_object_get(e, "lo"), &lolen);
        const char *hi = bound_of(json_object_get(e, "hi"), &hilen);
        if (!szd_valid_id(p) || !lo || !hi) {
            rc = SHARDZ_EINVAL;
            break;
        }
        snprintf(t->neu[k], sizeof t->neu[k], "%s", p);
        t->lo[k] = dup_bytes(lo, lolen);
        t->hi[k] = dup_bytes(hi, hilen);
    }
    if (rc == 0) {
        rc = task_add(ns, t);
    }
    if (rc) {
        task_free(t);
        return rc;
    }
    unsigned long long seq = strtoull(id + (id[0] == 't'), NULL, 10);
    if (seq > ns->range->next_task) {
        ns->range->next_task = seq;
    }
    return 0;
}

void szd_range_restore(szd_ns *ns)
{
    struct szd_range *r = ns->range;
    if (!szd_is_range(ns)) {
        return;
    }
    r = range_state(ns);
    if (!r->restore) {
        return; /* restored already (a follower's cache taken over by a new leader) */
    }
    size_t n = json_array_size(r->restore);
    shardz_key_range *kr = calloc(n ? n : 1, sizeof *kr);
    int rc = kr ? 0 : SHARDZ_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *e = json_array_get(r->restore, i);
        kr[i] = (shardz_key_range){
            json_string_value(json_array_get(e, 0)), json_string_value(json_array_get(e, 1)),
            json_string_length(json_array_get(e, 1)), json_string_value(json_array_get(e, 2)),
            json_string_length(json_array_get(e, 2))};
    }
    if (rc == 0) {
        rc = shardz_sharder_range_restore(ns->sh, kr, n);
    }
    if (rc) {
        szd_log(ns->d, SZD_ERROR, "msg=\"range table not restored\" ns=%s ranges=%zu err=%s",
                ns->cfg.name, n, shardz_err_name(rc));
    }
    free(kr);
    json_decref(r->restore);
    r->restore = NULL;
    /* Predecessors past the switch are out of the placement: they only wait for their drops. */
    for (size_t i = 0; i < r->n; i++) {
        rtask *t = r->t[i];
        shardz_key_range one;
        if (t->state == SZD_RT_CREATED &&
            shardz_sharder_range_of(ns->sh, t->neu[0], &one) == 0) { /* records ahead */
            szd_log(ns->d, SZD_WARN, "msg=\"task behind its records: moved\" ns=%s task=%s",
                    ns->cfg.name, t->id);
            t->state = SZD_RT_MOVED;
            t->unsaved = true;
        }
        for (size_t k = 0; t->state >= SZD_RT_MOVED && k < t->nold; k++) {
            const char *id = t->old[k];
            (void)shardz_sharder_unregister_partitions(ns->sh, &id, 1);
        }
    }
}

/* ---- API routes (docs/PROTOCOL.md section 8) ---------------------------------------------- */

/* A task request's reply: 202 with the task, or the error. Takes task. */
static void reply_task(szd_ns *ns, struct evhttp_request *req, int rc, json_t *task,
                       const char *err)
{
    if (rc) {
        szd_reply_error(req, rc, "%s", err);
        return;
    }
    szd_reply_json(req, 202,
                   json_pack("{s:o, s:I}", "task", task, "revision", (json_int_t)ns->revision),
                   ns->revision);
}

void szd_range_api_split(szd_ns *ns, struct evhttp_request *req, const char *pid)
{
    char err[512] = "";
    json_t *body = NULL, *task = NULL;
    /* the body is optional: without one (or without "at") the range splits at its middle */
    if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) > 0) {
        body = szd_read_body(req);
        if (!body) {
            return;
        }
    }
    int rc = szd_range_split(ns, pid, json_object_get(body, "at"), &task, err, sizeof err);
    json_decref(body);
    reply_task(ns, req, rc, task, err);
}

void szd_range_api_merge(szd_ns *ns, struct evhttp_request *req)
{
    char err[512] = "";
    json_t *task = NULL, *body = szd_read_body(req);
    if (!body) {
        return;
    }
    int rc = szd_range_merge(ns, json_object_get(body, "partitions"), &task, err, sizeof err);
    json_decref(body);
    reply_task(ns, req, rc, task, err);
}

void szd_range_api_tasks(szd_ns *ns, struct evhttp_request *req)
{
    szd_reply_json(req, 200,
                   json_pack("{s:o, s:I}", "tasks", szd_range_tasks_json(ns), "revision",
                             (json_int_t)ns->revision),
                   ns->revision);
}

/* ---- hot ranges (the load balancer's splits) ----------------------------------------------- */

void szd_range_split_keys(szd_ns *ns, const szd_node *n, json_t *keys)
{
    const char *pid;
    json_t *v;
    if (!json_is_object(keys)) {
        return;
    }
    json_object_foreach(keys, pid, v)
    {
        szd_part *p = szd_is_range(ns) ? szd_part_find(ns, pid) : NULL;
        bool holds = false;
        for (unsigned s = 0; p && s < p->nrep && !holds; s++) {
            holds = p->slots[s].owner >= 0 && ns->nodes[p->slots[s].owner] == n;
        }
        size_t len = json_string_length(v);
        if (!holds || !json_is_string(v) || len == 0 || len > SHARDZ_RANGE_KEY_MAX) {
            ns->load_rejected++;
            szd_log(ns->d, SZD_DEBUG,
                    "msg=\"split key rejected\" ns=%s node=%s partition=%s why=\"%s\"",
                    ns->cfg.name, n->id, pid,
                    !holds ? "not a range replica it holds" : "not a 1-1024-byte string");
            continue;
        }
        struct szd_range *r = range_state(ns);
        if (!r->hints) {
            r->hints = json_object();
        }
        if (r->hints) {
            json_object_set(r->hints, pid, v);
        }
    }
}

void szd_range_balance(szd_ns *ns, json_t *reply, bool apply)
{
    size_t n = 0;
    if (!szd_is_range(ns) ||
        shardz_sharder_range_hot(ns->sh, ns->cfg.balance.band, 0, NULL, 0, &n) != 0) {
        return;
    }
    const char **hot = calloc(n ? n : 1, sizeof *hot);
    json_t *list = json_array();
    if (!hot || shardz_sharder_range_hot(ns->sh, ns->cfg.balance.band, 0, hot, n, &n) != 0) {
        n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        szd_part *p = szd_part_find(ns, hot[i]);
        /* only a measured load makes a range hot: without samples the placement counts each
         * partition as 1.0, which says nothing about the range (a fresh merge, say) */
        if (!p || p->load_ms == 0) {
            continue;
        }
        json_t *e = json_pack("{s:s, s:f}", "partition", hot[i], "load", p->load[0]);
        rtask *busy = task_of(ns, hot[i]);
        if (busy) {
            json_object_set_new(e, "task", json_string(busy->id));
        } else if (apply) {
            /* at the key a worker suggested (its own key histogram), else at the middle */
            char err[256];
            json_t *task = NULL;
            struct szd_range *r = range_state(ns);
            json_t *hint = r->hints ? json_object_get(r->hints, hot[i]) : NULL;
            int rc = SHARDZ_EINVAL;
            if (hint) {
                rc = szd_range_split(ns, hot[i], hint, &task, err, sizeof err);
                if (rc == 0) {
                    json_object_set_new(e, "at", json_copy(hint));
                } else if (rc == SHARDZ_EINVAL) {
                    szd_log(ns->d, SZD_INFO,
                            "msg=\"split key not used\" ns=%s partition=%s why=\"%s\"",
                            ns->cfg.name, hot[i], err);
                }
            }
            if (rc == SHARDZ_EINVAL) { /* no key, or one outside the range: the middle */
                rc = szd_range_split(ns, hot[i], NULL, &task, err, sizeof err);
            }
            if (rc == 0) {
                json_object_set_new(e, "task",
                                    json_string(json_string_value(json_object_get(task, "id"))));
                if (r->hints) {
                    json_object_del(r->hints, hot[i]);
                }
            } else {
                json_object_set_new(e, "error", json_string(err));
            }
            json_decref(task);
        }
        json_array_append_new(list, e);
    }
    free(hot);
    json_object_set_new(reply, "splits", list);
}

int szd_range_parts_change(szd_ns *ns, const char *partition, char *err, size_t errlen)
{
    if (!szd_is_range(ns)) {
        return 0;
    }
    if (!partition) {
        snprintf(err, errlen, "a range namespace gets new partitions by splitting its ranges");
        return SHARDZ_ENOTSUP;
    }
    if (in_task(ns, partition, err, errlen)) {
        return SHARDZ_EBUSY;
    }
    shardz_key_range kr;
    if (shardz_sharder_range_of(ns->sh, partition, &kr) == 0) {
        snprintf(err, errlen, "range '%s' is routed: merge it into a neighbour instead", partition);
        return SHARDZ_EBUSY;
    }
    return 0;
}
