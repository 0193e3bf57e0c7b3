/* The assignment record's readers (record.h): a hand scanner for the plain form shardzd
 * writes, and the general reader over a jansson tree, giving the same result. Written by hand
 * because parsing a million records with jansson was about half of a restart's CPU (docs/
 * BENCHMARKS.md, restart); jansson stays the reader of everything else. Pure; any thread. */
#include <string.h>

#include "daemon/core/record.h"
#include "shardz/error.h"

typedef struct {
    const char *p, *end;
} scan;

static bool lit(scan *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) {
        return false;
    }
    s->p += n;
    return true;
}

/* A plain string value "..." into buf (cap bytes with the NUL). */
static bool str(scan *s, char *buf, size_t cap)
{
    if (s->p >= s->end || *s->p != '"') {
        return false;
    }
    const char *b = ++s->p;
    while (s->p < s->end && *s->p != '"') {
        unsigned char c = (unsigned char)*s->p;
        if (c < 0x20 || c >= 0x7f || c == '\\') {
            return false; /* escapes, control bytes, non-ASCII: jansson's */
        }
        s->p++;
    }
    size_t n = (size_t)(s->p - b);
    if (s->p >= s->end || n + 1 > cap) {
        return false;
    }
    memcpy(buf, b, n);
    buf[n] = '\0';
    s->p++;
    return true;
}

/* A generation: 0, or 1-18 digits without a leading zero (jansson's integers, no overflow). */
static bool num(scan *s, uint64_t *v)
{
    const char *b = s->p;
    uint64_t x = 0;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
        x = x * 10 + (uint64_t)(*s->p - '0');
        s->p++;
        if (s->p - b > 18) {
            return false;
        }
    }
    size_t n = (size_t)(s->p - b);
    if (n == 0 || (n > 1 && *b == '0')) {
        return false;
    }
    /* a number runs to a delimiter: "1e3", "1.0" and "-1" are jansson's */
    if (s->p < s->end && *s->p != ',' && *s->p != '}') {
        return false;
    }
    *v = x;
    return true;
}

enum { F_OWNER = 1, F_STATE = 2, F_GEN = 4, F_PREV = 8, F_PSTATE = 16, F_PGEN = 32, F_REASON = 64 };

static bool slot(scan *s, szd_rec_slot *sl)
{
    unsigned seen = 0;
    sl->owner[0] = sl->state[0] = sl->prev[0] = sl->prev_state[0] = sl->reason[0] = '\0';
    sl->generation = sl->prev_generation = 0;
    if (!lit(s, "{")) {
        return false;
    }
    for (bool first = true;; first = false) {
        if (lit(s, "}")) {
            return !first; /* "{}": jansson's (an empty slot reads the same, but keep it plain) */
        }
        if (!first && !lit(s, ",")) {
            return false;
        }
        unsigned f;
        bool ok;
        if (lit(s, "\"owner\":")) {
            f = F_OWNER, ok = str(s, sl->owner, sizeof sl->owner);
        } else if (lit(s, "\"state\":")) {
            f = F_STATE, ok = str(s, sl->state, sizeof sl->state);
        } else if (lit(s, "\"generation\":")) {
            f = F_GEN, ok = num(s, &sl->generation);
        } else if (lit(s, "\"prev\":")) {
            f = F_PREV, ok = str(s, sl->prev, sizeof sl->prev);
        } else if (lit(s, "\"prev_state\":")) {
            f = F_PSTATE, ok = str(s, sl->prev_state, sizeof sl->prev_state);
        } else if (lit(s, "\"prev_generation\":")) {
            f = F_PGEN, ok = num(s, &sl->prev_generation);
        } else if (lit(s, "\"reason\":")) {
            f = F_REASON, ok = str(s, sl->reason, sizeof sl->reason);
        } else {
            return false;
        }
        if (!ok || (seen & f)) {
            return false; /* a repeated member: jansson keeps the last, leave it to jansson */
        }
        seen |= f;
    }
}

int szd_rec_part_parse(const char *text, size_t len, szd_rec_part *out)
{
    scan s = {text, text + len};
    out->nslots = 0; /* no memset: the struct is 9 KB, a load reads a million of them */
    out->w = 0;
    out->removed = false;
    if (!lit(&s, "{\"id\":") || !str(&s, out->id, sizeof out->id) || !lit(&s, ",\"slots\":[")) {
        return SZD_REC_OTHER;
    }
    for (;;) {
        if (out->nslots == SHARDZ_MAX_REPLICAS || !slot(&s, &out->slots[out->nslots])) {
            return SZD_REC_OTHER;
        }
        out->nslots++;
        if (lit(&s, "]")) {
            break;
        }
        if (!lit(&s, ",")) {
            return SZD_REC_OTHER;
        }
    }
    if (lit(&s, ",\"w\":") && !num(&s, &out->w)) {
        return SZD_REC_OTHER;
    }
    return lit(&s, "}") && s.p == s.end ? 0 : SZD_REC_OTHER;
}

static bool same_slot(const szd_rec_slot *a, const szd_rec_slot *b)
{
    return strcmp(a->owner, b->owner) == 0 && strcmp(a->state, b->state) == 0 &&
           strcmp(a->prev, b->prev) == 0 && strcmp(a->prev_state, b->prev_state) == 0 &&
           strcmp(a->reason, b->reason) == 0 && a->generation == b->generation &&
           a->prev_generation == b->prev_generation;
}

bool szd_rec_part_same(const szd_rec_part *a, const szd_rec_part *b)
{
    if (strcmp(a->id, b->id) != 0 || a->nslots != b->nslots || a->w != b->w ||
        a->removed != b->removed) {
        return false;
    }
    for (unsigned i = 0; i < a->nslots; i++) {
        if (!same_slot(&a->slots[i], &b->slots[i])) {
            return false;
        }
    }
    return true;
}

/* A string member into buf, or "" when absent, not a string, or too long. */
static void jstr(json_t *o, const char *key, char *buf, size_t cap)
{
    json_t *v = json_object_get(o, key);
    const char *t = json_string_value(v);
    size_t n = t ? json_string_length(v) : 0;
    if (!t || n + 1 > cap || strlen(t) != n) {
        buf[0] = '\0';
        return;
    }
    memcpy(buf, t, n + 1);
}

int szd_rec_part_from_json(json_t *j, szd_rec_part *out)
{
    memset(out, 0, sizeof *out);
    json_t *id = json_object_get(j, "id");
    json_t *slots = json_object_get(j, "slots");
    size_t n = json_array_size(slots);
    json_int_t w = json_integer_value(json_object_get(j, "w"));
    out->w = w > 0 ? (uint64_t)w : 0;
    if (json_is_string(id) && json_is_true(json_object_get(j, "removed"))) {
        jstr(j, "id", out->id, sizeof out->id);
        out->removed = true;
        return 0;
    }
    if (!json_is_string(id) || !json_is_array(slots) || n < 1 || n > SHARDZ_MAX_REPLICAS) {
        return SHARDZ_EINVAL;
    }
    jstr(j, "id", out->id, sizeof out->id);
    out->nslots = (unsigned)n;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(slots, i);
        szd_rec_slot *sl = &out->slots[i];
        jstr(e, "owner", sl->owner, sizeof sl->owner);
        jstr(e, "state", sl->state, sizeof sl->state);
        jstr(e, "prev", sl->prev, sizeof sl->prev);
        jstr(e, "prev_state", sl->prev_state, sizeof sl->prev_state);
        jstr(e, "reason", sl->reason, sizeof sl->reason);
        sl->generation = (uint64_t)json_integer_value(json_object_get(e, "generation"));
        sl->prev_generation = (uint64_t)json_integer_value(json_object_get(e, "prev_generation"));
    }
    return 0;
}
