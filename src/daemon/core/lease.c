/* The strict-mode lease rule (lease.h): pure, deterministic. Run on the loop thread by ns.c
 * (expire_leases); tested by tests/daemon/test_lease.c. */
#include "daemon/core/lease.h"
#include "daemon/core/slot.h"

int64_t szd_lease_from(const szd_lease_facts *f)
{
    int64_t from = f->last_ok_ms;
    const int64_t reach[] = {f->lease_from_ms, f->push_reach_ms, f->failed_reach_ms};
    for (int k = 0; k < 3; k++) {
        from = reach[k] > from ? reach[k] : from;
    }
    return from;
}

bool szd_lease_over(uint8_t node_state, const szd_lease_facts *f, int64_t lease_ms, int64_t now)
{
    if (node_state == SZD_NODE_LEFT) {
        return true;
    }
    if (node_state != SZD_NODE_DEAD) {
        return false;
    }
    return now >= szd_lease_from(f) + lease_ms;
}
