/* The failure detector of one node, as a pure state machine: (state, input, now) -> what
 * changed. It says when to ping, whether that ping grants the strict-mode lease, when the node
 * becomes suspect or dead, and from when a dead node's lease may have run. No I/O, no clock
 * (now is an argument), no globals: the health lane runs it, tests drive it with tables. */
#ifndef SZD_CORE_FAILURE_H
#define SZD_CORE_FAILURE_H

#include <stdbool.h>
#include <stdint.h>

/* The verdict on a node. */
typedef enum {
    SZD_FD_OK = 0,  /* answering (or not yet missed twice) */
    SZD_FD_SUSPECT, /* two pings in a row missed */
    SZD_FD_DEAD,    /* no successful ping for dead_after_ms */
} szd_fd_verdict;

/* The timings it judges by: the namespace's. */
typedef struct {
    int64_t interval_ms;   /* a ping every interval; a ping unanswered after it is missed */
    int64_t dead_after_ms; /* dead after this long without a successful ping */
    bool strict;           /* pings grant the lease (lease_ms is the caller's to send) */
} szd_fd_config;

/* One node's detector. Zeroed and then szd_fd_init. */
typedef struct {
    int64_t last_ok_ms;    /* the last successful ping reply (or registration, take-over) */
    int64_t lease_from_ms; /* the latest time a lease-granting ping may have reached the node:
                            * a dead node's lease has surely run out lease_ms after it */
    int64_t sent_ms;       /* when the ping in flight left */
    int64_t reach_ms;      /* the ping in flight grants a lease: it may arrive until then */
    int32_t missed;        /* pings missed in a row */
    bool inflight;         /* a ping is in flight */
    bool grant;            /* its pings may grant the lease: cleared by the dead verdict, set
                            * again only by szd_fd_allow_grant (the caller decides when a node
                            * that came back may hold a lease again) */
    uint8_t verdict;       /* szd_fd_verdict */
} szd_fd;

/* What a tick asks for. */
typedef struct {
    bool changed;          /* the verdict changed to `verdict` */
    uint8_t verdict;       /* szd_fd_verdict, when changed */
    bool ping;             /* send a ping now (and report it with szd_fd_sent) */
    bool grants;           /* that ping carries lease_ms */
    int64_t lease_from_ms; /* with a dead verdict: its lease ran lease_ms after this at most */
} szd_fd_out;

/* A node heard from at `now` (a new registration, or every node at a take-over): OK, no
 * misses, leases allowed, and a lease counted as granted now (a previous coordinator may
 * have granted one). */
void szd_fd_init(szd_fd *f, int64_t now);
/* A registration again: heard from now, misses forgotten; the verdict and the lease
 * permission stay (a dead node is revived by its next ping reply, not by registering). */
void szd_fd_heard(szd_fd *f, int64_t now);
/* The periodic look: declares suspect (OK and missed >= 2) or dead (not dead, and
 * dead_after_ms without a successful reply), and asks for a ping when none is in flight. A
 * ping grants the lease only in strict mode, with no miss pending, not dead, and while the
 * permission holds. */
void szd_fd_tick(szd_fd *f, const szd_fd_config *c, int64_t now, szd_fd_out *out);
/* The ping asked for left at `now` (grants: as the tick said; stamped: it carries lease_stamp,
 * so its grant runs from before now on the worker's clock, however late it arrives, and it may
 * start a lease until now only; otherwise until its timeout). A ping that could not be sent is
 * a miss (szd_fd_reply with ok false) instead. */
void szd_fd_sent(szd_fd *f, const szd_fd_config *c, int64_t now, bool grants, bool stamped);
/* The ping in flight was answered (ok) or failed (a timeout, a refusal, a bad answer). A
 * failed lease-granting ping may have arrived all the same: its reach counts. Returns true
 * when an OK answer revives a suspect or dead node (the verdict is then OK). */
bool szd_fd_reply(szd_fd *f, bool ok, int64_t now);
/* The caller saw the node come back (its state machine no longer counts on the dead node's
 * lease running out): its pings may grant the lease again. */
void szd_fd_allow_grant(szd_fd *f);
/* The latest moment the node's lease may have started: every lease-granting message the
 * detector knows of (answered, failed, or in flight). */
int64_t szd_fd_lease_from(const szd_fd *f);
const char *szd_fd_verdict_name(szd_fd_verdict v);

#endif
