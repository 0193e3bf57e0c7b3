/* The state-transfer gate (transfer.h): an adding owner that is not ready holds routing back
 * until it is, or its time ran out. Pure; run on the loop thread; tests/daemon/test_transfer.c. */
#include "daemon/core/transfer.h"

szd_tr_step szd_transfer_answer(szd_slot *sl, int32_t me, uint64_t served_gen, bool ready,
                                int64_t timeout_ms)
{
    if (sl->owner != me || sl->owner_state != SZD_R_ADDING || served_gen < sl->generation) {
        return SZD_TR_NONE;
    }
    if (ready || timeout_ms <= 0) {
        sl->unready = 0;
        return SZD_TR_SERVE;
    }
    sl->unready = 1;
    return SZD_TR_WAIT;
}

bool szd_transfer_waiting(const szd_slot *sl)
{
    return sl->unready && sl->owner >= 0 && sl->owner_state == SZD_R_ADDING;
}

bool szd_transfer_expired(const szd_slot *sl, int64_t timeout_ms, int64_t now)
{
    return szd_transfer_waiting(sl) && now - sl->started_ms >= timeout_ms;
}
