/* The strict-mode lease rule, pure: from when a node's lease may have run (the latest
 * lease-granting message that may have reached it), and whether it has certainly ended, so
 * that its replicas may go to someone else. No I/O, no clock (now is an argument), no globals;
 * tests/daemon/test_lease.c. */
#ifndef SZD_CORE_LEASE_H
#define SZD_CORE_LEASE_H

#include <stdbool.h>
#include <stdint.h>

/* What is known of the lease-granting messages sent to one node (0: none). */
typedef struct {
    int64_t last_ok_ms;      /* its last reply the loop saw (a message answered arrived) */
    int64_t lease_from_ms;   /* the health lane's pings: the latest that may have reached it
                              * (given with the dead verdict; the lane grants no more after) */
    int64_t push_reach_ms;   /* a lease-granting push in flight may arrive until then */
    int64_t failed_reach_ms; /* a lease-granting push that failed may have arrived until then */
} szd_lease_facts;

/* The latest moment the node's lease may have started. */
int64_t szd_lease_from(const szd_lease_facts *f);
/* Whether the lease of a node in state node_state (szd_node_state) has certainly ended at
 * now: a node that left holds none; a dead one once lease_ms has passed since
 * szd_lease_from; a node in any other state may still hold it (it is waited for by its own
 * answers instead). */
bool szd_lease_over(uint8_t node_state, const szd_lease_facts *f, int64_t lease_ms, int64_t now);

#endif
