/* The failure detector of one node (failure.h): pure, deterministic, no I/O and no clock.
 * Run by the health lane's thread; tested by tests/daemon/test_failure.c. */
#include "daemon/core/failure.h"

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

void szd_fd_init(szd_fd *f, int64_t now)
{
    *f = (szd_fd){.last_ok_ms = now, .lease_from_ms = now, .grant = true};
}

void szd_fd_heard(szd_fd *f, int64_t now)
{
    f->last_ok_ms = max64(f->last_ok_ms, now);
    f->missed = 0;
}

int64_t szd_fd_lease_from(const szd_fd *f)
{
    int64_t from = max64(f->last_ok_ms, f->lease_from_ms);
    if (f->inflight) {
        from = max64(from, f->reach_ms);
    }
    return from;
}

void szd_fd_tick(szd_fd *f, const szd_fd_config *c, int64_t now, szd_fd_out *out)
{
    *out = (szd_fd_out){0};
    if (f->verdict != SZD_FD_DEAD && now - f->last_ok_ms >= c->dead_after_ms) {
        f->verdict = SZD_FD_DEAD;
        f->grant = false; /* from here on its lease may only run out */
        out->changed = true;
        out->verdict = SZD_FD_DEAD;
        out->lease_from_ms = szd_fd_lease_from(f);
    } else if (f->verdict == SZD_FD_OK && f->missed >= 2) {
        f->verdict = SZD_FD_SUSPECT;
        out->changed = true;
        out->verdict = SZD_FD_SUSPECT;
    }
    if (f->inflight) {
        return;
    }
    out->ping = true;
    out->grants = c->strict && f->grant && f->missed == 0 && f->verdict != SZD_FD_DEAD;
}

void szd_fd_sent(szd_fd *f, const szd_fd_config *c, int64_t now, bool grants, bool stamped)
{
    f->inflight = true;
    f->sent_ms = now;
    /* a request times out after the interval: later than that it is assumed never delivered;
     * a grant anchored at the worker's stamp runs from before its sending, however late it
     * arrives (PROTOCOL.md 6) */
    f->reach_ms = !grants ? 0 : stamped ? now : now + c->interval_ms;
}

bool szd_fd_reply(szd_fd *f, bool ok, int64_t now)
{
    int64_t reach = f->inflight ? f->reach_ms : 0;
    f->inflight = false;
    f->reach_ms = 0;
    if (!ok) {
        f->lease_from_ms = max64(f->lease_from_ms, reach); /* it may have arrived */
        f->missed++;
        return false;
    }
    f->last_ok_ms = max64(f->last_ok_ms, now);
    f->lease_from_ms = max64(f->lease_from_ms, now);
    f->missed = 0;
    bool revived = f->verdict != SZD_FD_OK;
    f->verdict = SZD_FD_OK;
    return revived;
}

void szd_fd_allow_grant(szd_fd *f)
{
    if (f->verdict != SZD_FD_DEAD) {
        f->grant = true;
    }
}

const char *szd_fd_verdict_name(szd_fd_verdict v)
{
    switch (v) {
    case SZD_FD_OK:
        return "ok";
    case SZD_FD_SUSPECT:
        return "suspect";
    case SZD_FD_DEAD:
        return "dead";
    }
    return "unknown";
}
