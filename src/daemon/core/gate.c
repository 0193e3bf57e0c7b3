/* The drain gate and the availability floor (gate.h), pure. Any thread. */
#include <string.h>

#include "daemon/core/gate.h"
#include "shardz/placement.h"

bool szd_gate_planned(uint8_t reason)
{
    switch ((shardz_reason)reason) {
    case SHARDZ_REASON_LEAVE:
    case SHARDZ_REASON_DRAIN:
    case SHARDZ_REASON_JOIN:
    case SHARDZ_REASON_REBALANCE:
    case SHARDZ_REASON_LOAD:
    case SHARDZ_REASON_OPERATOR:
        return true;
    default:
        return false;
    }
}

szd_gate_verdict szd_gate_check(const szd_gate_in *in)
{
    if (!szd_gate_planned(in->reason) || in->source_gone) {
        return SZD_GATE_START;
    }
    if (in->frozen && in->reason != SHARDZ_REASON_OPERATOR) {
        return SZD_GATE_FROZEN;
    }
    if (in->max_in_flight > 0 && in->in_flight >= in->max_in_flight) {
        return SZD_GATE_LIMIT;
    }
    uint32_t lost = (in->strict || in->vacate) && in->source_serving ? 1 : 0;
    uint32_t after = in->serving >= lost ? in->serving - lost : 0;
    if (lost > 0 && after < in->min_available) {
        return SZD_GATE_FLOOR;
    }
    return SZD_GATE_START;
}

const char *szd_gate_verdict_name(szd_gate_verdict v)
{
    switch (v) {
    case SZD_GATE_START:
        return "start";
    case SZD_GATE_FLOOR:
        return "floor";
    case SZD_GATE_LIMIT:
        return "limit";
    case SZD_GATE_FROZEN:
        return "frozen";
    }
    return "?";
}

bool szd_gate_stop_ok(uint32_t kept, uint32_t taken, uint32_t min_available)
{
    return taken == 0 || kept >= min_available;
}

bool szd_gate_zone_ok(const char *set_zone, const char *zone)
{
    if (!set_zone || !set_zone[0]) {
        return true;
    }
    return strcmp(set_zone, zone ? zone : "") == 0;
}
