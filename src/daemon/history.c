/* Why did it move? Each partition's last SZD_HISTORY moves (wall time, slot, from, to, reason,
 * generation), kept in memory with the partition and written in its assignment record, so
 * they survive a restart and a failover (docs/STORE.md). First placements are not moves and
 * are not kept. Event-loop thread. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/daemon.h"
#include "daemon/oom.h"

/* One move as kept. */
typedef struct {
    int64_t time_ms; /* wall clock, ms since the Unix epoch */
    uint64_t generation;
    char *from, *to; /* owned; NULL: none (a vacant slot filled, a slot vacated) */
    uint8_t slot, reason;
} move_rec;

/* A ring of the last SZD_HISTORY moves: r[(first + i) % SZD_HISTORY], i < n, oldest first. */
struct szd_history {
    uint8_t first, n;
    move_rec r[SZD_HISTORY];
};

int64_t szd_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_or_null(const char *s)
{
    if (!s) {
        return NULL;
    }
    char *c = strdup(s);
    if (!c) {
        szd_oom();
    }
    return c;
}

void szd_history_add(szd_part *p, int64_t time_ms, unsigned slot, const char *from, const char *to,
                     uint8_t reason, uint64_t generation)
{
    if (!p->history) {
        p->history = szd_xcalloc(1, sizeof *p->history);
    }
    struct szd_history *h = p->history;
    move_rec *r;
    if (h->n < SZD_HISTORY) {
        r = &h->r[(h->first + h->n++) % SZD_HISTORY];
    } else {
        r = &h->r[h->first]; /* the oldest goes */
        free(r->from);
        free(r->to);
        h->first = (uint8_t)((h->first + 1) % SZD_HISTORY);
    }
    *r = (move_rec){.time_ms = time_ms,
                    .generation = generation,
                    .from = dup_or_null(from),
                    .to = dup_or_null(to),
                    .slot = (uint8_t)slot,
                    .reason = reason};
}

void szd_history_free(szd_part *p)
{
    struct szd_history *h = p->history;
    for (uint8_t i = 0; h && i < h->n; i++) {
        free(h->r[(h->first + i) % SZD_HISTORY].from);
        free(h->r[(h->first + i) % SZD_HISTORY].to);
    }
    free(h);
    p->history = NULL;
}

json_t *szd_history_json(const szd_part *p)
{
    json_t *list = json_array();
    const struct szd_history *h = p->history;
    for (uint8_t i = 0; h && i < h->n; i++) {
        const move_rec *r = &h->r[(h->first + i) % SZD_HISTORY];
        json_array_append_new(list, json_pack("{s:I, s:i, s:s?, s:s?, s:s, s:I}", "time_ms",
                                              (json_int_t)r->time_ms, "slot", (int)r->slot, "from",
                                              r->from, "to", r->to, "reason",
                                              shardz_reason_name((shardz_reason)r->reason),
                                              "generation", (json_int_t)r->generation));
    }
    return list;
}

int szd_history_load(szd_part *p, json_t *list)
{
    szd_history_free(p);
    if (!list) {
        return 0;
    }
    if (!json_is_array(list)) {
        return SHARDZ_EINVAL;
    }
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        json_t *t = json_object_get(e, "time_ms"), *g = json_object_get(e, "generation");
        json_t *s = json_object_get(e, "slot");
        const char *from = json_string_value(json_object_get(e, "from"));
        const char *to = json_string_value(json_object_get(e, "to"));
        const char *why = json_string_value(json_object_get(e, "reason"));
        int reason = -1;
        for (int k = 0; why && k < SHARDZ_REASON__COUNT; k++) {
            reason = strcmp(shardz_reason_name((shardz_reason)k), why) == 0 ? k : reason;
        }
        if (!json_is_integer(t) || !json_is_integer(g) || !json_is_integer(s) || reason < 0 ||
            json_integer_value(s) < 0 || json_integer_value(s) >= p->nrep ||
            (from && !szd_valid_id(from)) || (to && !szd_valid_id(to))) {
            szd_history_free(p);
            return SHARDZ_EINVAL; /* the caller logs it; the partition loads without it */
        }
        szd_history_add(p, json_integer_value(t), (unsigned)json_integer_value(s), from, to,
                        (uint8_t)reason, (uint64_t)json_integer_value(g));
    }
    return 0;
}
