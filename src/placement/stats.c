/* Load statistics (DESIGN.md section 6, seed 000): the time-aware EWMA that smooths the load
 * samples of a partition. Owned here so the coordinator (src/daemon) and the simulator
 * (src/sim) smooth with one implementation. Pure: no I/O, no clock (times are passed in). */
#include <math.h>

#include "shardz/placement.h"

size_t shardz_load_smooth(double *load, int64_t *updated_ms, const double *sample, const bool *have,
                          size_t n, int64_t now_ms, int64_t tau_ms)
{
    bool first = *updated_ms == 0;
    double alpha = 1;
    if (!first && tau_ms > 0) {
        double dt = (double)(now_ms - *updated_ms);
        alpha = dt <= 0 ? 0 : 1 - exp(-dt / (double)tau_ms);
    }
    size_t changed = 0;
    for (size_t d = 0; d < n && d < SHARDZ_MAX_DIMS; d++) {
        if (have && !have[d]) {
            continue;
        }
        load[d] = first ? sample[d] : load[d] + alpha * (sample[d] - load[d]);
        changed++;
    }
    if (changed > 0) {
        *updated_ms = now_ms;
    }
    return changed;
}
