/* Table tests of the failure detector (src/daemon/core/failure.c): each table is a script of
 * inputs (tick, sent, reply) at given times, with the output and state expected after each,
 * in the etcd-raft style. Covers suspect and dead verdicts, revival, and every strict-mode
 * lease rule: which pings grant, and from when a dead node's lease may have run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "daemon/core/failure.h"

typedef enum { TICK, SENT, OK, FAIL, GRANT, HEARD } op;

/* One step: the input, then what must hold. -1 in an expectation means "not checked". */
typedef struct {
    op op;
    int64_t now;
    int arg;       /* SENT: grants (1), grants anchored at the worker's stamp (2) */
    int changed;   /* TICK: a verdict change (1) or none (0) */
    int verdict;   /* after the step */
    int ping;      /* TICK: a ping asked for */
    int grants;    /* TICK: that ping grants the lease */
    int64_t lease; /* szd_fd_lease_from after the step (-1: not checked) */
    int missed;    /* after the step */
} step;

/* The tables below are laid out by hand, a column per field. */
/* clang-format off */
#define END {HEARD, -1, 0, 0, 0, 0, 0, 0, 0}

static const szd_fd_config avail = {.interval_ms = 200, .dead_after_ms = 800, .strict = false};
static const szd_fd_config strict = {.interval_ms = 200, .dead_after_ms = 800, .strict = true};

static void run(const szd_fd_config *c, const step *t)
{
    szd_fd f;
    szd_fd_init(&f, 0);
    for (size_t i = 0; t[i].now >= 0; i++) {
        const step *s = &t[i];
        szd_fd_out out = {0};
        bool revived = false;
        switch (s->op) {
        case TICK:
            szd_fd_tick(&f, c, s->now, &out);
            break;
        case SENT:
            szd_fd_sent(&f, c, s->now, s->arg != 0, s->arg == 2);
            break;
        case OK:
            revived = szd_fd_reply(&f, true, s->now);
            break;
        case FAIL:
            szd_fd_reply(&f, false, s->now);
            break;
        case GRANT:
            szd_fd_allow_grant(&f);
            break;
        case HEARD:
            szd_fd_heard(&f, s->now);
            break;
        }
        (void)revived;
        char where[64];
        snprintf(where, sizeof where, "step %zu (t=%lld)", i, (long long)s->now);
        if (s->op == TICK) {
            if ((int)out.changed != s->changed || (int)out.ping != s->ping ||
                (int)out.grants != s->grants)
                fail_msg("%s: changed %d ping %d grants %d, want %d %d %d", where, out.changed,
                         out.ping, out.grants, s->changed, s->ping, s->grants);
            if (out.changed && out.verdict == SZD_FD_DEAD && s->lease >= 0 &&
                out.lease_from_ms != s->lease)
                fail_msg("%s: dead verdict lease_from %lld, want %lld", where,
                         (long long)out.lease_from_ms, (long long)s->lease);
        }
        if (f.verdict != s->verdict)
            fail_msg("%s: verdict %s, want %s", where, szd_fd_verdict_name(f.verdict),
                     szd_fd_verdict_name(s->verdict));
        if (s->lease >= 0 && szd_fd_lease_from(&f) != s->lease)
            fail_msg("%s: lease_from %lld, want %lld", where, (long long)szd_fd_lease_from(&f),
                     (long long)s->lease);
        if (f.missed != s->missed)
            fail_msg("%s: missed %d, want %d", where, f.missed, s->missed);
    }
}

#define V_OK SZD_FD_OK
#define V_SUS SZD_FD_SUSPECT
#define V_DEAD SZD_FD_DEAD

/* An answering node: a ping per tick, none while one is in flight; no lease outside strict. */
static void test_answering(void **state)
{
    (void)state;
    static const step t[] = {
        /* op    now  arg chg verdict ping grants lease missed */
        {TICK, 200, 0, 0, V_OK, 1, 0, 0, 0},
        {SENT, 200, 0, 0, V_OK, 0, 0, 0, 0},
        {TICK, 400, 0, 0, V_OK, 0, 0, 0, 0}, /* in flight: no second ping */
        {OK, 401, 0, 0, V_OK, 0, 0, 401, 0},
        {TICK, 600, 0, 0, V_OK, 1, 0, 401, 0},
        {SENT, 600, 0, 0, V_OK, 0, 0, 401, 0},
        {OK, 650, 0, 0, V_OK, 0, 0, 650, 0},
        {TICK, 1400, 0, 0, V_OK, 1, 0, 650, 0}, /* 750 ms silent: not dead yet */
        END,
    };
    run(&avail, t);
}

/* Two misses make it suspect; dead_after_ms without an answer makes it dead; an answer
 * revives it. */
static void test_suspect_dead_revive(void **state)
{
    (void)state;
    static const step t[] = {
        {TICK, 200, 0, 0, V_OK, 1, 0, -1, 0},
        {SENT, 200, 0, 0, V_OK, 0, 0, -1, 0},
        {FAIL, 400, 0, 0, V_OK, 0, 0, -1, 1},
        {TICK, 400, 0, 0, V_OK, 1, 0, -1, 1}, /* one miss: still OK */
        {SENT, 400, 0, 0, V_OK, 0, 0, -1, 1},
        {FAIL, 600, 0, 0, V_OK, 0, 0, -1, 2},
        {TICK, 600, 0, 1, V_SUS, 1, 0, -1, 2},
        {SENT, 600, 0, 0, V_SUS, 0, 0, -1, 2},
        {FAIL, 800, 0, 0, V_SUS, 0, 0, -1, 3},
        {TICK, 800, 0, 1, V_DEAD, 1, 0, -1, 3}, /* 800 ms since the registration at 0 */
        {SENT, 800, 0, 0, V_DEAD, 0, 0, -1, 3},
        {TICK, 1000, 0, 0, V_DEAD, 0, 0, -1, 3}, /* dead once: no second verdict */
        {OK, 1001, 0, 0, V_OK, 0, 0, -1, 0},
        {TICK, 1200, 0, 0, V_OK, 1, 0, -1, 0},
        END,
    };
    run(&avail, t);
}

/* A silent node is dead after dead_after_ms even with no ping reply at all (a hung request
 * is failed by its timeout, but the verdict does not wait for it). */
static void test_dead_while_in_flight(void **state)
{
    (void)state;
    static const step t[] = {
        {TICK, 200, 0, 0, V_OK, 1, 0, -1, 0},
        {SENT, 200, 0, 0, V_OK, 0, 0, -1, 0},
        {TICK, 800, 0, 1, V_DEAD, 0, 0, -1, 0},
        END,
    };
    run(&avail, t);
}

/* Strict: pings grant the lease only with no miss pending and not dead; a dead node's lease
 * runs from the latest lease-granting ping that may have reached it (a failed one counts
 * until its timeout, one in flight at the verdict too). */
static void test_strict_grants(void **state)
{
    (void)state;
    static const step t[] = {
        {TICK, 200, 0, 0, V_OK, 1, 1, 0, 0},
        {SENT, 200, 1, 0, V_OK, 0, 0, 400, 0}, /* may reach it until 200 + 200 */
        {OK, 250, 0, 0, V_OK, 0, 0, 250, 0},
        {TICK, 400, 0, 0, V_OK, 1, 1, 250, 0},
        {SENT, 400, 1, 0, V_OK, 0, 0, 600, 0},
        {FAIL, 600, 0, 0, V_OK, 0, 0, 600, 1}, /* failed: it may have arrived by 600 */
        {TICK, 600, 0, 0, V_OK, 1, 0, 600, 1}, /* a miss pending: no lease */
        {SENT, 600, 0, 0, V_OK, 0, 0, 600, 1},
        {FAIL, 800, 0, 0, V_OK, 0, 0, 600, 2},
        {TICK, 800, 0, 1, V_SUS, 1, 0, 600, 2},
        {SENT, 800, 0, 0, V_SUS, 0, 0, 600, 2},
        {FAIL, 1000, 0, 0, V_SUS, 0, 0, 600, 3},
        {TICK, 1050, 0, 1, V_DEAD, 1, 0, 600, 3}, /* 800 after the answer at 250 */
        END,
    };
    run(&strict, t);
}

/* Strict, a worker that sends stamps: a grant runs from its lease_stamp, from before the ping
 * left, so a ping may start a lease only until it was sent, failed or in flight at the verdict
 * (PROTOCOL.md 6: a late message cannot resurrect a lease). */
static void test_strict_stamped(void **state)
{
    (void)state;
    static const step t[] = {
        {TICK, 200, 0, 0, V_OK, 1, 1, 0, 0},
        {SENT, 200, 2, 0, V_OK, 0, 0, 200, 0}, /* reaches it until 200 + 200, grants until 200 */
        {OK, 250, 0, 0, V_OK, 0, 0, 250, 0},
        {TICK, 400, 0, 0, V_OK, 1, 1, 250, 0},
        {SENT, 400, 2, 0, V_OK, 0, 0, 400, 0},
        {FAIL, 600, 0, 0, V_OK, 0, 0, 400, 1}, /* failed: its grant ran from 400 at the latest */
        {TICK, 600, 0, 0, V_OK, 1, 0, 400, 1},
        {SENT, 600, 0, 0, V_OK, 0, 0, 400, 1},
        {FAIL, 800, 0, 0, V_OK, 0, 0, 400, 2},
        {TICK, 800, 0, 1, V_SUS, 1, 0, 400, 2},
        {SENT, 800, 0, 0, V_SUS, 0, 0, 400, 2},
        {FAIL, 1000, 0, 0, V_SUS, 0, 0, 400, 3},
        {TICK, 1050, 0, 1, V_DEAD, 1, 0, 400, 3},
        END,
    };
    run(&strict, t);
}

/* Strict: a lease-granting ping in flight when the node is declared dead counts until its
 * timeout. */
static void test_strict_dead_with_grant_in_flight(void **state)
{
    (void)state;
    static const step t[] = {
        {TICK, 200, 0, 0, V_OK, 1, 1, 0, 0},
        {SENT, 700, 1, 0, V_OK, 0, 0, 900, 0}, /* sent late; reaches by 900 at the latest */
        {TICK, 800, 0, 1, V_DEAD, 0, 0, 900, 0},
        {FAIL, 900, 0, 0, V_DEAD, 0, 0, 900, 1},
        END,
    };
    run(&strict, t);
}

/* Strict: a dead node that answers again is OK, but its pings grant no lease until the caller
 * allows it (the slot machine may be counting on its lease running out); a registration does
 * not revive it or restore the permission. */
static void test_strict_revival_waits_for_grant(void **state)
{
    (void)state;
    static const step t[] = {
        {TICK, 800, 0, 1, V_DEAD, 1, 0, 0, 0},
        {SENT, 800, 0, 0, V_DEAD, 0, 0, 0, 0},
        {HEARD, 900, 0, 0, V_DEAD, 0, 0, 900, 0}, /* registered again */
        {TICK, 1000, 0, 0, V_DEAD, 0, 0, 900, 0},
        {OK, 1000, 0, 0, V_OK, 0, 0, 1000, 0},
        {TICK, 1200, 0, 0, V_OK, 1, 0, 1000, 0}, /* alive, but no lease yet */
        {SENT, 1200, 0, 0, V_OK, 0, 0, 1000, 0},
        {OK, 1250, 0, 0, V_OK, 0, 0, 1250, 0},
        {GRANT, 1250, 0, 0, V_OK, 0, 0, 1250, 0},
        {TICK, 1400, 0, 0, V_OK, 1, 1, 1250, 0},
        END,
    };
    run(&strict, t);
}

/* Allowing leases does nothing while the node is still dead. */
static void test_strict_grant_refused_while_dead(void **state)
{
    (void)state;
    static const step t[] = {
        {TICK, 800, 0, 1, V_DEAD, 1, 0, 0, 0},
        {GRANT, 800, 0, 0, V_DEAD, 0, 0, 0, 0},
        {SENT, 800, 0, 0, V_DEAD, 0, 0, 0, 0},
        {OK, 900, 0, 0, V_OK, 0, 0, 900, 0},
        {TICK, 1000, 0, 0, V_OK, 1, 0, 900, 0},
        END,
    };
    run(&strict, t);
}

/* clang-format on */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answering),
        cmocka_unit_test(test_suspect_dead_revive),
        cmocka_unit_test(test_dead_while_in_flight),
        cmocka_unit_test(test_strict_grants),
        cmocka_unit_test(test_strict_stamped),
        cmocka_unit_test(test_strict_dead_with_grant_in_flight),
        cmocka_unit_test(test_strict_revival_waits_for_grant),
        cmocka_unit_test(test_strict_grant_refused_while_dead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
