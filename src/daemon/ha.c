/* shardzd's role among several coordinators sharing an etcd store: the election (the leader key
 * put under this coordinator's lease, only while absent), the lease's freshness (lease reads: a
 * leader acts only until its last renewal's send time + TTL - margin; the renewals run on the
 * lease keeper's thread, keeper.c), stepping down, the follower's cache kept from what the
 * follow lane reads (follow_lane.c), and writes forwarded to the leader. The loop's thread.
 * docs/OPERATIONS.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "daemon/daemon.h"
#include "daemon/follow_lane.h"
#include "daemon/health_lane.h"
#include "daemon/keeper.h"
#include "daemon/store_lane.h"
#include "daemon/testhook.h"

#define HA_LOOP_MS 100              /* the role loop's period: refresh, lease, campaign */
#define HA_FORWARD_TIMEOUT_S 10     /* a forwarded request's timeout */
#define HA_MAX_DIRTY 16             /* namespaces reloaded one by one; more: reload them all */
#define HA_CHANGES_LIMIT 256        /* events per read of the change feed (a page is one) */
#define HA_CATCHUP_MS 100           /* a turn's applying of what the follow lane read */
#define HA_FOLLOW_QUEUE (64u << 20) /* bytes the follow lane reads ahead of the loop */
#define HA_FOLLOW_RETRY_MS 500      /* after the stream or a full read failed */
#define HA_FOLLOW_FAILURES 3        /* streams failed in a row before the cache is loaded whole */
#define HA_LEADER_READ_MS 1000      /* a lagging follower reads the leader key this often */

/* What the follow lane was asked (d->ha.follow). */
enum { FOLLOW_NONE = 0, FOLLOW_STREAM, FOLLOW_LOAD };

static const char member_prefix[] = "coord/";

static void fwd_reap(szd *d, bool all);

const char *szd_role_name(szd_role r)
{
    switch (r) {
    case SZD_ROLE_SOLO:
        return "leader"; /* the only coordinator leads */
    case SZD_ROLE_FOLLOWER:
        return "follower";
    case SZD_ROLE_LEADER:
        return "leader";
    }
    return "unknown";
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_leader(szd *d, const char *id, const char *addr, int64_t since)
{
    if (strcmp(d->ha.leader_id, id) != 0 && *id) {
        d->ha.leader_changes++;
    }
    snprintf(d->ha.leader_id, sizeof d->ha.leader_id, "%s", id);
    snprintf(d->ha.leader_addr, sizeof d->ha.leader_addr, "%s", addr);
    d->ha.leader_since_wall_ms = since;
}

/* A follower's namespace writes (the store lane's handle) carry a guard that never holds
 * (create_revision -1), so that no path can write as if it led. The role loop's own calls
 * (its lease record, a campaign) go through its own handle, which has no guard. */
static void follower_guard(szd *d)
{
    char key[SHARDZ_KEY_BUF];
    int klen = shardz_key_leader(key, sizeof key);
    shardz_compare g = {SHARDZ_CMP_CREATE, key, (size_t)klen, -1, NULL, 0};
    if (d->sl) {
        szd_sl_set_guard(d->sl, &g);
    }
}

/* A transaction of the coordinator's own (not a leader's write), on the role loop's handle. */
static int own_txn(szd *d, const shardz_compare *c, size_t nc, const shardz_op *op, int64_t *rev)
{
    return shardz_store_txn(d->ha_store, c, nc, op, 1, NULL, rev);
}

/* ---- the lease ----------------------------------------------------------------------- */

/* Grants a lease and records this coordinator under it (coord/<id>). */
static int grant(szd *d)
{
    int64_t t0 = szd_now(d), id = 0, granted = 0;
    int rc = shardz_store_lease_grant(d->ha_store, d->cfg.lease_ttl_ms, &id, &granted);
    if (rc) {
        szd_log(d, SZD_WARN, "msg=\"lease grant failed\" err=%s detail=\"%s\"", shardz_err_name(rc),
                shardz_store_errmsg(d->ha_store));
        return rc;
    }
    d->ha.lease_id = id;
    d->ha.lease_ttl_ms = granted > 0 ? granted : d->cfg.lease_ttl_ms;
    d->ha.fresh_until_ms = t0 + d->ha.lease_ttl_ms - szd_lease_margin_ms(d->ha.lease_ttl_ms);
    /* the keeper renews it from now on; only a follower grants (a leader whose lease ended
     * stepped down) */
    szd_keeper_set(d->keeper, id, d->ha.lease_ttl_ms, t0, false, d->ha.term);
    char key[sizeof member_prefix + SHARDZ_MAX_ID];
    snprintf(key, sizeof key, "%s%s", member_prefix, d->cfg.id);
    /* "features": what this release reads that an earlier one does not (the leader writes
     * it only while every coordinator has it) */
    json_t *rec = json_pack(
        "{s:s, s:s, s:I, s:[s,s]}", "id", d->cfg.id, "address", d->cfg.advertise, "started_ms",
        (json_int_t)(wall_ms() - (t0 - d->started_ms)), "features", "apage", "apagez");
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (!text) {
        return SHARDZ_ENOMEM;
    }
    shardz_op op = {SHARDZ_OP_PUT, key, strlen(key), text, strlen(text), id};
    rc = own_txn(d, NULL, 0, &op, NULL);
    free(text);
    if (rc) {
        szd_log(d, SZD_WARN, "msg=\"coordinator record not written\" err=%s", shardz_err_name(rc));
    }
    return 0;
}

static void step_down(szd *d, const char *why);

/* Whether every coordinator recorded on the store reads assignment pages (its record's
 * "features" names "apage"): until then the leader writes every record under its own key, the
 * layout an earlier release reads (a rolling upgrade); and whether every one reads compressed
 * pages ("apagez"): until then pages are written as text. Read at election and every few
 * seconds while leading; an unreadable list keeps the last answer. */
static void members_check(szd *d)
{
    shardz_range *r = NULL;
    d->ha.next_members_ms = szd_now(d) + 2000;
    if (shardz_store_range(d->ha_store, member_prefix, strlen(member_prefix), NULL, 0, 0, &r) !=
        0) {
        return;
    }
    bool off = false, zoff = false;
    for (size_t i = 0; i < r->count && !off; i++) {
        json_t *m = json_loadb(r->kvs[i].value, r->kvs[i].value_len, 0, NULL);
        json_t *f = json_object_get(m, "features"), *e;
        size_t k;
        bool has = false, hasz = false;
        json_array_foreach(f, k, e)
        {
            has = has || strcmp(json_string_value(e) ?: "", "apage") == 0;
            hasz = hasz || strcmp(json_string_value(e) ?: "", "apagez") == 0;
        }
        off = !has;
        zoff = zoff || !hasz;
        json_decref(m);
    }
    shardz_range_free(r);
    if (!off && zoff != d->apagez_off) {
        szd_log(d, SZD_WARN, "msg=\"%s\"",
                zoff ? "a coordinator does not read compressed pages: pages are written as text"
                     : "every coordinator reads compressed pages: they are written compressed");
    }
    d->apagez_off = zoff;
    if (off != d->apage_off) {
        szd_log(d, SZD_WARN, "msg=\"%s\"",
                off ? "a coordinator does not read assignment pages: none is written"
                    : "every coordinator reads assignment pages: they are written again");
    }
    d->apage_off = off;
}

/* Tells the health lane until when it may ping and grant leases: a leader while its lease is
 * known fresh, a follower never. The lane reads it at every tick, so a loop that stalls past
 * it stops the pings on time. */
static void publish_acting(szd *d)
{
    if (d->ha.role == SZD_ROLE_SOLO) {
        szd_hl_set_acting_until(d->hl, INT64_MAX, d->ha.term);
        return;
    }
    /* through the keeper, so that its renewals and this never publish out of order */
    szd_keeper_set(d->keeper, d->ha.lease_id, d->ha.lease_ttl_ms, 0, d->ha.role == SZD_ROLE_LEADER,
                   d->ha.term);
}

/* etcd said the lease no longer exists: a leader steps down, and a new lease is granted at the
 * next role loop. */
static void lease_gone(szd *d)
{
    d->ha.lease_id = 0;
    d->ha.next_keepalive_ms = szd_now(d);
    if (d->ha.role == SZD_ROLE_LEADER) {
        step_down(d, "its lease expired");
    } else {
        publish_acting(d);
    }
}

/* Takes the keeper's word on the lease: how long it is known fresh, or that it is gone. */
static void sync_lease(szd *d)
{
    if (!d->ha.lease_id) {
        return;
    }
    int64_t ttl = 0;
    bool expired = false;
    int64_t fresh = szd_keeper_read(d->keeper, d->ha.lease_id, &ttl, &expired);
    if (expired) {
        lease_gone(d);
    } else if (fresh > d->ha.fresh_until_ms) {
        d->ha.fresh_until_ms = fresh;
        d->ha.lease_ttl_ms = ttl;
    }
}

/* A renewal on the loop's own handle, when the loop must know the lease fresh now (before it
 * campaigns); the keeper renews it otherwise. */
static void keepalive(szd *d)
{
    int64_t t0 = szd_now(d), ttl = 0;
    int rc = shardz_store_lease_keepalive(d->ha_store, d->ha.lease_id, &ttl);
    if (rc == 0) {
        d->ha.lease_ttl_ms = ttl;
        d->ha.fresh_until_ms = t0 + ttl - szd_lease_margin_ms(ttl);
        szd_keeper_set(d->keeper, d->ha.lease_id, ttl, t0, d->ha.role == SZD_ROLE_LEADER,
                       d->ha.term);
        return;
    }
    if (rc == SHARDZ_ENOENT) {
        szd_log(d, SZD_WARN, "msg=\"lease expired\" lease=%lld", (long long)d->ha.lease_id);
        lease_gone(d);
        return;
    }
    szd_log(d, SZD_WARN, "msg=\"lease keepalive failed\" err=%s detail=\"%s\"", shardz_err_name(rc),
            shardz_store_errmsg(d->ha_store));
}

/* ---- roles --------------------------------------------------------------------------- */

static void step_down(szd *d, const char *why)
{
    if (d->ha.role != SZD_ROLE_LEADER) {
        return;
    }
    szd_log(d, SZD_WARN, "msg=\"stepping down\" id=%s reason=\"%s\"", d->cfg.id, why);
    d->ha.role = SZD_ROLE_FOLLOWER;
    d->ha.role_since_ms = szd_now(d);
    /* The lease goes too: a follower must not keep the leader key alive. The keeper stops
     * renewing it and the health lane stops acting first; when etcd cannot be reached the
     * revoke fails and the lease simply runs out. */
    int64_t lease = d->ha.lease_id;
    d->ha.lease_id = 0;
    publish_acting(d);
    follower_guard(d);
    if (lease) {
        (void)shardz_store_lease_revoke(d->ha_store, lease);
    }
    d->ha.leader_id[0] = d->ha.leader_addr[0] = '\0';
    /* the namespaces stay as a (stale) cache until the next refresh reloads them */
    d->ha.full_reload = true;
    d->ha.cache_stale = true;
}

static int cache_update(szd *d, bool *leader_changed);
static int follow_drain(szd *d, bool *leader_changed, int64_t budget_ms);

static void become_leader(szd *d, int64_t create_rev)
{
    shardz_compare g = {SHARDZ_CMP_CREATE, NULL, 0, create_rev, NULL, 0};
    char key[SHARDZ_KEY_BUF];
    int klen = shardz_key_leader(key, sizeof key);
    g.key = key;
    g.key_len = (size_t)klen;
    szd_sl_set_guard(d->sl, &g); /* in order with the writes: every later one is fenced */
    d->ha.role = SZD_ROLE_LEADER;
    d->ha.term = create_rev; /* etcd revisions only grow: a later leader has a higher term */
    d->ha.role_since_ms = szd_now(d);
    set_leader(d, d->cfg.id, d->cfg.advertise, wall_ms());
    members_check(d); /* before its first write: which layout every coordinator reads */
    /* The new leader takes over the state (tasks in flight included) and resumes. Nobody else
     * writes now (the old leader's key is gone, so are its writes), so a cache brought up to
     * the store is exact: it is promoted without loading everything again. */
    int64_t t0 = szd_now(d);
    bool ignored = false, promoted = false;
    int rc = 0;
    /* what the follow lane read is applied, then it stops: the rest is read here */
    (void)follow_drain(d, &ignored, 0);
    szd_fl_pause(d->fl);
    if (d->ha.follow == FOLLOW_LOAD) {
        d->ha.full_reload = true; /* a full read was under way: loaded here instead */
    }
    d->ha.follow = FOLLOW_NONE;
    if (!d->ha.full_reload && d->ha.cache_rev > 0 && cache_update(d, &ignored) == 0) {
        rc = szd_ns_take_over(d);
        promoted = true;
    } else {
        /* loaded again (the watchers of each namespace carry over), then taken over */
        rc = szd_ns_load_cache(d, NULL);
        if (rc == 0) {
            rc = szd_ns_take_over(d);
        }
    }
    if (rc) {
        szd_log(d, SZD_ERROR, "msg=\"leader could not load the state\" err=%s",
                shardz_err_name(rc));
        step_down(d, "the state could not be loaded");
        return;
    }
    d->ha.cache_stale = false;
    publish_acting(d);
    szd_log(d, SZD_INFO,
            "msg=\"elected leader\" id=%s create_revision=%lld namespaces=%u state=%s "
            "load_ms=%lld",
            d->cfg.id, (long long)create_rev, d->nns, promoted ? "cache" : "loaded",
            (long long)(szd_now(d) - t0));
}

/* Puts the leader key under our lease when nobody holds it. */
static void campaign(szd *d)
{
    /* the lease must be fresh before we lead on it: just granted, or renewed now */
    if (!d->ha.lease_id) {
        if (grant(d) != 0) {
            return;
        }
    } else {
        keepalive(d);
        if (!d->ha.lease_id) {
            return;
        }
    }
    char key[SHARDZ_KEY_BUF];
    int klen = shardz_key_leader(key, sizeof key);
    int64_t since = wall_ms();
    json_t *rec = json_pack("{s:s, s:s, s:I, s:I}", "id", d->cfg.id, "address", d->cfg.advertise,
                            "since_ms", (json_int_t)since, "lease", (json_int_t)d->ha.lease_id);
    char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
    json_decref(rec);
    if (!text) {
        return;
    }
    shardz_compare c = {SHARDZ_CMP_ABSENT, key, (size_t)klen, 0, NULL, 0};
    shardz_op op = {SHARDZ_OP_PUT, key, (size_t)klen, text, strlen(text), d->ha.lease_id};
    int64_t rev = 0;
    int rc = own_txn(d, &c, 1, &op, &rev);
    free(text);
    if (rc == 0) {
        become_leader(d, rev);
    } else if (rc != SHARDZ_ECONFLICT) {
        szd_log(d, SZD_WARN, "msg=\"campaign failed\" err=%s detail=\"%s\"", shardz_err_name(rc),
                shardz_store_errmsg(d->ha_store));
    }
}

/* Reads who leads; campaigns when nobody does. */
static void read_leader(szd *d)
{
    char key[SHARDZ_KEY_BUF];
    int klen = shardz_key_leader(key, sizeof key);
    shardz_kv *kv = NULL;
    int rc = shardz_store_get(d->ha_store, key, (size_t)klen, &kv, NULL);
    if (rc == SHARDZ_ENOENT) {
        d->ha.leader_id[0] = d->ha.leader_addr[0] = '\0';
        campaign(d);
        return;
    }
    if (rc) {
        return;
    }
    json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *addr = json_string_value(json_object_get(j, "address"));
    if (id && addr && d->ha.lease_id &&
        (int64_t)json_integer_value(json_object_get(j, "lease")) == d->ha.lease_id) {
        /* our own campaign won though its answer was lost (a timeout): lead */
        json_decref(j);
        int64_t create = kv->create_revision;
        shardz_kv_free(kv);
        become_leader(d, create);
        return;
    }
    if (id && addr) {
        set_leader(d, id, addr, (int64_t)json_integer_value(json_object_get(j, "since_ms")));
    } else {
        szd_log(d, SZD_WARN, "msg=\"unreadable leader record\" key=%s", key);
    }
    json_decref(j);
    shardz_kv_free(kv);
}

/* Applies one read of the change feed to the cache: records of replica namespaces in place; a
 * namespace with any other change is loaded again (after its in-place changes: the load
 * supersedes them). *leader_changed is set when the leader key changed. 0, or the load's
 * error (full_reload is then set). */
static int cache_apply(szd *d, const shardz_changes *c, bool *leader_changed, bool sync_load)
{
    char names[HA_MAX_DIRTY][SHARDZ_KEY_MAX_ID + 1];
    size_t nn = 0;
    for (size_t i = 0; i < c->count && !d->ha.full_reload; i++) {
        shardz_key_parts kp;
        const shardz_kv *kv = &c->events[i].kv;
        if (shardz_key_parse(kv->key, kv->key_len, &kp) != 0) {
            continue; /* coordinator records and foreign keys */
        }
        if (kp.kind == SHARDZ_KEY_LEADER) {
            *leader_changed = true;
            continue;
        }
        size_t k = 0;
        while (k < nn && strcmp(names[k], kp.ns) != 0) {
            k++;
        }
        if (k < nn) {
            continue; /* loaded again anyway */
        }
        int arc = szd_ns_apply_change(d, &c->events[i]);
        szd_log(d, SZD_DEBUG, "msg=\"cache change\" key=\"%.*s\" applied=%d", (int)kv->key_len,
                kv->key, arc == 0);
        if (arc == 0) {
            d->ha.cache_applied++;
            szd_ns *ns = szd_ns_find(d, kp.ns);
            if (ns) {
                ns->revision = ((uint64_t)kv->mod_revision + 1) << 32;
            }
            continue;
        }
        if (!sync_load) {
            /* the follow lane reads everything again (the loop is not held by a read); what
             * follows this change is superseded by that read */
            szd_log(d, SZD_INFO, "msg=\"cache to be loaded again\" ns=%s key=\"%.*s\"", kp.ns,
                    (int)kv->key_len, kv->key);
            d->ha.full_reload = true;
        } else if (nn == HA_MAX_DIRTY) {
            d->ha.full_reload = true;
        } else {
            szd_log(d, SZD_INFO, "msg=\"namespace loaded again\" ns=%s key=\"%.*s\"", kp.ns,
                    (int)kv->key_len, kv->key);
            snprintf(names[nn++], sizeof names[0], "%s", kp.ns);
        }
    }
    for (size_t k = 0; k < nn && !d->ha.full_reload; k++) {
        d->ha.cache_reloads++;
        if (szd_ns_load_cache(d, names[k]) != 0) {
            d->ha.full_reload = true;
        }
    }
    for (uint32_t k = 0; k < d->nns; k++) {
        szd_watch_notify(d->ns[k]);
    }
    return d->ha.full_reload ? SHARDZ_ESTALE : 0;
}

/* Brings the cache up to the store on the loop itself, reading the change feed
 * HA_CHANGES_LIMIT events at a time until current: the first load at start, and a new
 * leader's takeover, which must start from the store's state (the follow lane keeps a follower
 * close to it, so little is left). The cache is loaded whole when it has none yet, its history
 * was compacted away, or a load of one failed. 0 when the cache is current, or the error;
 * *leader_changed is set when the leader key may have changed. */
static int cache_update(szd *d, bool *leader_changed)
{
    while (!d->ha.full_reload && d->ha.cache_rev > 0) {
        shardz_store_status st = {0};
        if (shardz_store_status_get(d->ha_store, &st) != 0) {
            d->ha.cache_stale = true;
            return SHARDZ_EIO;
        }
        if (st.revision <= d->ha.cache_rev) { /* nothing new: no read of the changes */
            d->ha.cache_stale = false;
            return 0;
        }
        shardz_changes *c = NULL;
        /* test hook: SHARDZ_TEST_CHANGES_FAIL=<path> fails the change feed while the file
         * exists (as a watch that times out would) */
        int rc = szd_test_file("SHARDZ_TEST_CHANGES_FAIL")
                     ? SHARDZ_EIO
                     : shardz_store_changes(d->ha_store, d->ha.cache_rev, HA_CHANGES_LIMIT, &c);
        if (rc == SHARDZ_STORE_ECOMPACTED) {
            d->ha.full_reload = true;
            break;
        }
        if (rc) {
            d->ha.cache_stale = true;
            return rc;
        }
        /* with more, the read ended on a revision's end: the next one starts after it */
        int64_t rev = c->more && c->count ? c->events[c->count - 1].kv.mod_revision : c->revision;
        rc = cache_apply(d, c, leader_changed, true);
        shardz_changes_free(c);
        if (rc == 0) {
            d->ha.cache_rev = rev;
        }
    }
    if (d->ha.full_reload || d->ha.cache_rev == 0) {
        int64_t t1 = szd_now(d);
        shardz_store_status st = {0};
        if (shardz_store_status_get(d->ha_store, &st) != 0 || szd_ns_load_cache(d, NULL) != 0) {
            d->ha.cache_stale = true;
            return SHARDZ_EIO;
        }
        d->ha.cache_rev = st.revision > 0 ? st.revision : 1;
        d->ha.full_reload = false;
        szd_log(d, SZD_INFO, "msg=\"cache loaded\" namespaces=%u revision=%lld load_ms=%lld",
                d->nns, (long long)st.revision, (long long)(szd_now(d) - t1));
        d->ha.cache_stale = false;
        *leader_changed = true;
    }
    return 0;
}

/* Applies what the follow lane read, for up to budget_ms (0: everything queued). 0, or the
 * error of a full load's application. */
static int follow_drain(szd *d, bool *leader_changed, int64_t budget_ms)
{
    int64_t t0 = szd_now(d);
    szd_fl_item it;
    int rc = 0;
    while (d->fl && !d->ha.full_reload && (budget_ms == 0 || szd_now(d) - t0 < budget_ms) &&
           szd_fl_take(d->fl, &it)) {
        if (it.kind == SZD_FL_PAGES) {
            int64_t t1 = szd_now(d);
            rc = szd_ns_load_cache_pages(d, NULL, it.pages);
            if (rc) {
                d->ha.full_reload = true;
                d->ha.follow = FOLLOW_NONE;
                d->ha.follow_retry_ms = t1 + HA_FOLLOW_RETRY_MS;
                break;
            }
            d->ha.cache_rev = it.revision > 0 ? it.revision : 1;
            d->ha.follow = FOLLOW_STREAM; /* the lane follows from the read by itself */
            d->ha.follow_failures = 0;
            *leader_changed = true;
            szd_log(d, SZD_INFO,
                    "msg=\"cache loaded\" namespaces=%u revision=%lld load_ms=%lld "
                    "read_ms=%lld",
                    d->nns, (long long)it.revision, (long long)(szd_now(d) - t1),
                    (long long)(t1 - d->ha.load_asked_ms));
        } else if (it.kind == SZD_FL_CHANGES) {
            int64_t rev = it.changes->revision;
            if (cache_apply(d, it.changes, leader_changed, false) == 0) {
                d->ha.cache_rev = rev;
                d->ha.follow_failures = 0;
            }
            shardz_changes_free(it.changes);
        } else {
            /* the stream broke or the read failed: again after a pause; the history compacted
             * away, or a stream that keeps failing: everything read again */
            bool load = it.rc == SHARDZ_STORE_ECOMPACTED || d->ha.follow == FOLLOW_LOAD ||
                        ++d->ha.follow_failures >= HA_FOLLOW_FAILURES;
            szd_log(d, SZD_WARN, "msg=\"%s\" err=%s detail=\"%s\"",
                    load ? "cache not updated: loaded again" : "change feed broke: following again",
                    shardz_err_name(it.rc), it.err);
            d->ha.full_reload = d->ha.full_reload || load;
            d->ha.follow = FOLLOW_NONE;
            d->ha.follow_retry_ms = szd_now(d) + HA_FOLLOW_RETRY_MS;
            d->ha.cache_stale = true;
            *leader_changed = true; /* a lost feed may hide the leader's change */
        }
    }
    return rc;
}

/* The follower's turn: asks the follow lane for what the cache needs, applies what it read
 * (HA_CATCHUP_MS at most; the rest at the next turn), and reads the leader key when it changed
 * or, while the cache lags, every HA_LEADER_READ_MS (a follower far behind still sees a
 * leadership end within about a second of it). */
static void refresh(szd *d)
{
    bool leader_changed = !d->ha.leader_id[0];
    int64_t now = szd_now(d);
    if (d->ha.full_reload && d->ha.follow != FOLLOW_LOAD && now >= d->ha.follow_retry_ms) {
        szd_fl_load(d->fl); /* drops what was queued: the read supersedes it */
        d->ha.follow = FOLLOW_LOAD;
        d->ha.full_reload = false;
        d->ha.load_asked_ms = now;
        d->ha.cache_stale = true;
    } else if (!d->ha.full_reload && d->ha.follow == FOLLOW_NONE && d->ha.cache_rev > 0 &&
               now >= d->ha.follow_retry_ms) {
        szd_fl_follow(d->fl, d->ha.cache_rev);
        d->ha.follow = FOLLOW_STREAM;
    }
    (void)follow_drain(d, &leader_changed, HA_CATCHUP_MS);
    if (d->ha.full_reload && d->ha.follow != FOLLOW_LOAD) {
        return; /* asked at the next turn (the queue it would drop is stale anyway) */
    }
    shardz_store_status st = {0};
    if (shardz_store_status_get(d->ha_store, &st) != 0) {
        d->ha.cache_stale = true;
    } else {
        d->ha.cache_stale = d->ha.follow == FOLLOW_LOAD || st.revision > d->ha.cache_rev;
    }
    if (d->ha.cache_stale && now - d->ha.leader_read_ms >= HA_LEADER_READ_MS) {
        leader_changed = true;
    }
    if (leader_changed) {
        d->ha.leader_read_ms = now;
        read_leader(d);
    }
}

static void on_follow(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    szd *d = arg;
    if (d->ha.role != SZD_ROLE_FOLLOWER) {
        return;
    }
    bool leader_changed = false;
    (void)follow_drain(d, &leader_changed, HA_CATCHUP_MS);
    if (leader_changed) {
        d->ha.leader_read_ms = szd_now(d);
        read_leader(d);
    }
}

static void on_loop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    szd *d = arg;
    int64_t now = szd_now(d);
    sync_lease(d);
    if (d->ha.role == SZD_ROLE_LEADER && now >= d->ha.fresh_until_ms) {
        step_down(d, "its lease is not known fresh");
    }
    if (!d->ha.lease_id && now >= d->ha.next_keepalive_ms && grant(d) != 0) {
        d->ha.next_keepalive_ms = now + 1000; /* etcd unreachable: try again in a second */
    }
    if (d->ha.role == SZD_ROLE_LEADER && now >= d->ha.next_members_ms) {
        members_check(d);
    }
    if (d->ha.role == SZD_ROLE_FOLLOWER && now >= d->ha.next_refresh_ms) {
        refresh(d);
        /* Applying stops after HA_CATCHUP_MS, and the next tick goes on. A full load applied
         * takes longer: then at most a fifth of the loop goes to the cache, so that reads are
         * answered (it lags more meanwhile). */
        int64_t took = szd_now(d) - now;
        d->ha.next_refresh_ms = now + (took > 2 * HA_CATCHUP_MS ? 4 * took : 0);
    }
    fwd_reap(d, false);
}

static void publish_to_lane(void *ctx, int64_t acting_until_ms, int64_t term)
{
    szd_hl_set_acting_until(ctx, acting_until_ms, term);
}

int szd_ha_start(szd *d, shardz_store *keeper_store, shardz_store *follow_store)
{
    int rc = szd_keeper_start(keeper_store, publish_to_lane, d->hl, d->clock_ms, d->cfg.log_level,
                              &d->keeper);
    if (rc) {
        shardz_store_close(follow_store);
        return rc;
    }
    rc = szd_fl_start(follow_store, szd_ns_read_all, szd_ns_pages_free, HA_CHANGES_LIMIT,
                      HA_FOLLOW_QUEUE, &d->fl);
    if (rc) {
        return rc;
    }
    d->ha.follow_ev = event_new(d->base, szd_fl_fd(d->fl), EV_READ | EV_PERSIST, on_follow, d);
    if (!d->ha.follow_ev || event_add(d->ha.follow_ev, NULL) != 0) {
        return SHARDZ_ENOMEM;
    }
    follower_guard(d);
    d->ha.role = SZD_ROLE_FOLLOWER;
    d->ha.role_since_ms = szd_now(d);
    d->ha.full_reload = true;
    d->ha.timer = event_new(d->base, -1, EV_PERSIST, on_loop, d);
    if (!d->ha.timer) {
        return SHARDZ_ENOMEM;
    }
    struct timeval tv = {0, HA_LOOP_MS * 1000};
    event_add(d->ha.timer, &tv);
    /* The first load is read here, on the loop (nothing is served before it): then the lane
     * follows from it. */
    bool ignored = false;
    if (cache_update(d, &ignored) != 0) {
        d->ha.full_reload = true; /* etcd unreachable: the lane reads it when it can */
    }
    refresh(d); /* reads the leader, campaigns when there is none */
    return 0;
}

int64_t szd_strict_lease_default(const szd *d, const szd_ns_config *cfg)
{
    int64_t lease = cfg->lease_ms; /* the configuration's default: dead_after + ping_interval */
    if (d->ha.role == SZD_ROLE_SOLO) {
        return lease;
    }
    /* After the leader's last lease-granting message, its successor acts once the leader key's
     * TTL has run out (a leader killed without stepping down), plus a role loop and the state's
     * load, then grants with its first ping. The worker's lease, less the libraries' margin of
     * a tenth, must span that: 3/2 of the TTL + two pings (docs/OPERATIONS.md, "Strict
     * namespaces and failover"). */
    int64_t failover = d->cfg.lease_ttl_ms * 3 / 2 + 2 * cfg->ping_interval_ms;
    return failover > lease ? failover : lease;
}

bool szd_acting(szd *d)
{
    if (d->ha.role == SZD_ROLE_SOLO) {
        return true;
    }
    if (d->ha.role != SZD_ROLE_LEADER) {
        return false;
    }
    sync_lease(d);
    if (d->ha.role == SZD_ROLE_LEADER && szd_now(d) < d->ha.fresh_until_ms) {
        return true;
    }
    step_down(d, "its lease is not known fresh");
    return false;
}

void szd_ha_deposed(szd *d, const char *why)
{
    step_down(d, why);
}

void szd_ha_stop(szd *d)
{
    fwd_reap(d, true);
    if (d->ha.timer) {
        event_free(d->ha.timer);
        d->ha.timer = NULL;
    }
    if (d->ha.follow_ev) {
        event_free(d->ha.follow_ev);
        d->ha.follow_ev = NULL;
    }
    szd_fl_stop(d->fl);
    d->fl = NULL;
    szd_keeper_stop(d->keeper); /* a renewal in flight ends first; none runs after the revoke */
    d->keeper = NULL;
    if (d->ha.lease_id) {
        int rc = shardz_store_lease_revoke(d->ha_store, d->ha.lease_id);
        szd_log(d, SZD_INFO, "msg=\"lease given back\" role=%s err=%s", szd_role_name(d->ha.role),
                rc ? shardz_err_name(rc) : "none");
        d->ha.lease_id = 0;
    }
}

/* ---- forwarding writes ------------------------------------------------------------------ */

/* One forwarded request and its connection to the leader. A connection cannot be freed from
 * its own callback, so finished ones are freed by the role loop (and all of them at exit). */
typedef struct szd_fwd {
    struct szd_fwd *next;
    szd *d;
    struct evhttp_connection *conn;
    struct evhttp_request *orig; /* NULL once answered or the client went away */
    bool done;
    bool lost; /* failed after the connection was made: the leader may have applied it */
} fwd_ctx;

/* Frees the finished forwards (every one when all). */
static void fwd_reap(szd *d, bool all)
{
    for (fwd_ctx **pp = &d->ha.fwds; *pp;) {
        fwd_ctx *f = *pp;
        if (!f->done && !all) {
            pp = &f->next;
            continue;
        }
        if (f->orig) {
            struct evhttp_connection *c = evhttp_request_get_connection(f->orig);
            if (c) {
                szd_conn_set_closecb(d, c, NULL, NULL);
            }
        }
        *pp = f->next;
        evhttp_connection_free(f->conn); /* drops a request still pending, no callback */
        free(f);
    }
}

static void on_client_close(struct evhttp_connection *c, void *arg)
{
    (void)c;
    fwd_ctx *f = arg;
    f->orig = NULL;
}

static void on_forwarded(struct evhttp_request *resp, void *arg)
{
    fwd_ctx *f = arg;
    if (f->orig) {
        struct evhttp_connection *c = evhttp_request_get_connection(f->orig);
        if (c) {
            szd_conn_set_closecb(f->d, c, NULL, NULL);
        }
        int code = resp ? evhttp_request_get_response_code(resp) : 0;
        if (code == 0 && f->lost) {
            /* it reached the leader, which did not answer: the outcome is unknown, so not
             * ENOTLEADER ("nothing changed", which clients retry elsewhere at once) */
            szd_reply_error(f->orig, SHARDZ_ETIMEDOUT,
                            "the leader %s at %s took the request and did not answer within %d s: "
                            "it may or may not have applied it; read the state before retrying",
                            f->d->ha.leader_id, f->d->ha.leader_addr, HA_FORWARD_TIMEOUT_S);
        } else if (code == 0) {
            szd_reply_error(f->orig, SHARDZ_ENOTLEADER,
                            "the leader %s at %s could not be reached; nothing changed, retry",
                            f->d->ha.leader_id, f->d->ha.leader_addr);
        } else {
            struct evkeyvalq *in = evhttp_request_get_input_headers(resp);
            struct evkeyvalq *out = evhttp_request_get_output_headers(f->orig);
            for (struct evkeyval *h = in->tqh_first; h; h = h->next.tqe_next) {
                if (strcasecmp(h->key, "Content-Type") == 0 ||
                    strncasecmp(h->key, "X-Shardz-", 9) == 0) {
                    evhttp_add_header(out, h->key, h->value);
                }
            }
            evhttp_add_header(out, "X-Shardz-Forwarded-To", f->d->ha.leader_id);
            evhttp_send_reply(f->orig, code, evhttp_request_get_response_code_line(resp),
                              evhttp_request_get_input_buffer(resp));
        }
        f->orig = NULL;
    }
    f->done = true;
}

/* libevent calls this when a request fails once its connection was made (a timeout, the
 * connection closed), not when the connection could not be made at all. */
static void on_forward_error(enum evhttp_request_error err, void *arg)
{
    (void)err;
    fwd_ctx *f = arg;
    f->lost = true;
}

void szd_ha_forward(szd *d, struct evhttp_request *req)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const char *colon = strrchr(d->ha.leader_addr, ':');
    if (!d->ha.leader_id[0] || !colon || strcmp(d->ha.leader_id, d->cfg.id) == 0 ||
        evhttp_find_header(in, "X-Shardz-Forwarded-By")) {
        json_t *body = json_pack("{s:s, s:s, s:s?}", "code", "ENOTLEADER", "message",
                                 !d->ha.leader_id[0] ? "no leader is elected yet; retry shortly"
                                 : strcmp(d->ha.leader_id, d->cfg.id) == 0
                                     ? "the leader key is still held by an earlier run of this "
                                       "coordinator; it expires within the lease TTL"
                                     : "this coordinator is not the leader",
                                 "leader", d->ha.leader_addr[0] ? d->ha.leader_addr : NULL);
        szd_reply_json(req, 503, body, 0);
        return;
    }
    char host[SZD_ADDR_MAX + 1];
    snprintf(host, sizeof host, "%.*s", (int)(colon - d->ha.leader_addr), d->ha.leader_addr);
    int port = atoi(colon + 1);
    fwd_ctx *f = calloc(1, sizeof *f);
    struct evhttp_connection *conn =
        f ? evhttp_connection_base_new(d->base, NULL, host, (ev_uint16_t)port) : NULL;
    struct evhttp_request *out = conn ? evhttp_request_new(on_forwarded, f) : NULL;
    if (!out) {
        if (conn) {
            evhttp_connection_free(conn);
        }
        free(f);
        szd_reply_error(req, SHARDZ_ENOMEM, "out of memory");
        return;
    }
    f->d = d;
    f->orig = req;
    f->conn = conn;
    evhttp_request_set_error_cb(out, on_forward_error);
    evhttp_connection_set_timeout(conn, HA_FORWARD_TIMEOUT_S);
    struct evkeyvalq *oh = evhttp_request_get_output_headers(out);
    for (struct evkeyval *h = in->tqh_first; h; h = h->next.tqe_next) {
        if (strcasecmp(h->key, "Content-Type") == 0 || strcasecmp(h->key, "Authorization") == 0) {
            evhttp_add_header(oh, h->key, h->value);
        }
    }
    evhttp_add_header(oh, "Host", d->ha.leader_addr);
    evhttp_add_header(oh, "X-Shardz-Forwarded-By", d->cfg.id);
    evbuffer_add_buffer(evhttp_request_get_output_buffer(out),
                        evhttp_request_get_input_buffer(req));
    struct evhttp_connection *cc = evhttp_request_get_connection(req);
    if (cc) {
        szd_conn_set_closecb(d, cc, on_client_close, f);
    }
    if (evhttp_make_request(conn, out, evhttp_request_get_command(req),
                            evhttp_request_get_uri(req)) != 0) {
        /* libevent freed out and called nothing */
        if (cc) {
            szd_conn_set_closecb(d, cc, NULL, NULL);
        }
        evhttp_connection_free(conn);
        free(f);
        szd_reply_error(req, SHARDZ_ENOTLEADER, "could not reach the leader at %s",
                        d->ha.leader_addr);
        return;
    }
    f->next = d->ha.fwds;
    d->ha.fwds = f;
}

/* ---- status ---------------------------------------------------------------------------- */

json_t *szd_ha_status_json(szd *d)
{
    int64_t now = szd_now(d);
    bool shared = d->ha.role != SZD_ROLE_SOLO;
    json_t *j = json_pack("{s:s, s:s, s:s, s:b}", "role", szd_role_name(d->ha.role), "id",
                          d->cfg.id, "advertise", d->cfg.advertise, "shared_store", shared);
    if (!j || !shared) {
        return j;
    }
    json_object_set_new(j, "role_since_ms",
                        json_integer((json_int_t)(wall_ms() - (now - d->ha.role_since_ms))));
    sync_lease(d);
    json_object_set_new(j, "lease_ttl_ms", json_integer((json_int_t)d->cfg.lease_ttl_ms));
    uint64_t renewed = 0, failed = 0;
    szd_keeper_counts(d->keeper, &renewed, &failed);
    json_object_set_new(j, "lease_renewals", json_integer((json_int_t)renewed));
    json_object_set_new(j, "lease_renewals_failed", json_integer((json_int_t)failed));
    json_object_set_new(j, "lease_fresh",
                        json_boolean(d->ha.role == SZD_ROLE_LEADER && now < d->ha.fresh_until_ms));
    if (d->ha.leader_id[0]) {
        json_object_set_new(j, "leader",
                            json_pack("{s:s, s:s, s:I}", "id", d->ha.leader_id, "address",
                                      d->ha.leader_addr, "since_ms",
                                      (json_int_t)d->ha.leader_since_wall_ms));
    } else {
        json_object_set_new(j, "leader", json_null());
    }
    json_object_set_new(j, "leader_changes", json_integer((json_int_t)d->ha.leader_changes));
    if (d->ha.role == SZD_ROLE_FOLLOWER) {
        json_object_set_new(j, "cache_revision", json_integer((json_int_t)d->ha.cache_rev));
        json_object_set_new(j, "cache_stale", json_boolean(d->ha.cache_stale));
        json_object_set_new(j, "cache_applied", json_integer((json_int_t)d->ha.cache_applied));
        json_object_set_new(j, "cache_reloads", json_integer((json_int_t)d->ha.cache_reloads));
    }
    /* every coordinator holding a lease on this store */
    json_t *list = json_array();
    shardz_range *r = NULL;
    if (list && shardz_store_range(d->ha_store, member_prefix, strlen(member_prefix), NULL, 0, 0,
                                   &r) == 0) {
        for (size_t i = 0; i < r->count; i++) {
            json_t *m = json_loadb(r->kvs[i].value, r->kvs[i].value_len, 0, NULL);
            const char *id = json_string_value(json_object_get(m, "id"));
            if (!json_is_object(m) || !id) {
                szd_log(d, SZD_WARN, "msg=\"skipping a corrupt record\" key=\"%.*s\"",
                        (int)r->kvs[i].key_len, r->kvs[i].key);
                json_decref(m);
                continue;
            }
            json_object_set_new(
                m, "role", json_string(strcmp(id, d->ha.leader_id) == 0 ? "leader" : "follower"));
            json_array_append_new(list, m);
        }
        shardz_range_free(r);
    }
    json_object_set_new(j, "coordinators", list);
    return j;
}

int szd_store_status(szd *d, shardz_store_status *st)
{
    if (d->ha_store) {
        return shardz_store_status_get(d->ha_store, st);
    }
    szd_sl_status(d->sl, st);
    return 0;
}
