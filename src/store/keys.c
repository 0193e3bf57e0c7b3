/* The key layout of the coordinator's state: builders and the parser for the per-namespace
 * records (config, nodes, assignments, statistics, tasks, slot table pages), the leader key and the
 * marks deleted namespaces leave (gone), with the id rules that keep the layout unambiguous. Pure
 * and thread-safe. Layout: docs/STORE.md. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "shardz/store.h"

/* The longest key: "ns/" + id + "/assign/" + id + NUL. */
_Static_assert(3 + SHARDZ_KEY_MAX_ID + 8 + SHARDZ_KEY_MAX_ID + 1 <= SHARDZ_KEY_BUF,
               "SHARDZ_KEY_BUF too small");
_Static_assert(SHARDZ_KEY_BUF <= SHARDZ_STORE_MAX_KEY, "layout keys exceed the key limit");

static const char *const kind_names[] = {
    [SHARDZ_KEY_CONFIG] = "config", [SHARDZ_KEY_NODE] = "node",   [SHARDZ_KEY_ASSIGN] = "assign",
    [SHARDZ_KEY_STATS] = "stats",   [SHARDZ_KEY_TASK] = "task",   [SHARDZ_KEY_LEADER] = "leader",
    [SHARDZ_KEY_GONE] = "gone",     [SHARDZ_KEY_SLOTS] = "slots", [SHARDZ_KEY_APAGE] = "apage",
};

#define NKINDS (sizeof kind_names / sizeof kind_names[0])

const char *shardz_key_kind_name(shardz_key_kind kind)
{
    return (unsigned)kind < NKINDS ? kind_names[kind] : "unknown";
}

/* true when the n bytes at s are a valid id. */
static bool id_bytes_valid(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || n > SHARDZ_KEY_MAX_ID) {
        return false;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '/' || c < 0x20 || c == 0x7f) {
            return false;
        }
    }
    return true;
}

bool shardz_key_id_valid(const char *s)
{
    return s && id_bytes_valid(s, strnlen(s, SHARDZ_KEY_MAX_ID + 1));
}

/* Formats into buf; SHARDZ_ERANGE (and "") when it does not fit. */
static int emit(char *buf, size_t cap, const char *a, const char *b, const char *c, const char *d)
{
    int n = snprintf(buf, cap, "%s%s%s%s", a, b, c, d);

    if (n < 0 || (size_t)n >= cap) {
        if (cap) {
            buf[0] = '\0';
        }
        return SHARDZ_ERANGE;
    }
    return n;
}

static int fail(char *buf, size_t cap)
{
    if (buf && cap) {
        buf[0] = '\0';
    }
    return SHARDZ_EINVAL;
}

int shardz_key_build(char *buf, size_t cap, shardz_key_kind kind, const char *ns, const char *id)
{
    if (!buf) {
        return SHARDZ_EINVAL;
    }
    if (kind == SHARDZ_KEY_LEADER) {
        return emit(buf, cap, "leader", "", "", "");
    }
    if ((unsigned)kind >= NKINDS || !shardz_key_id_valid(ns)) {
        return fail(buf, cap);
    }
    if (kind == SHARDZ_KEY_CONFIG) {
        return emit(buf, cap, "ns/", ns, "/config", "");
    }
    if (kind == SHARDZ_KEY_GONE) {
        return emit(buf, cap, "gone/", ns, "", "");
    }
    if (kind == SHARDZ_KEY_SLOTS || kind == SHARDZ_KEY_APAGE || !shardz_key_id_valid(id)) {
        return fail(buf, cap);
    }
    {
        char mid[16];

        snprintf(mid, sizeof mid, "/%s/", kind_names[kind]);
        return emit(buf, cap, "ns/", ns, mid, id);
    }
}

int shardz_key_config(char *buf, size_t cap, const char *ns)
{
    return shardz_key_build(buf, cap, SHARDZ_KEY_CONFIG, ns, NULL);
}

int shardz_key_node(char *buf, size_t cap, const char *ns, const char *node)
{
    return shardz_key_build(buf, cap, SHARDZ_KEY_NODE, ns, node);
}

int shardz_key_assign(char *buf, size_t cap, const char *ns, const char *partition)
{
    return shardz_key_build(buf, cap, SHARDZ_KEY_ASSIGN, ns, partition);
}

int shardz_key_stats(char *buf, size_t cap, const char *ns, const char *partition)
{
    return shardz_key_build(buf, cap, SHARDZ_KEY_STATS, ns, partition);
}

int shardz_key_task(char *buf, size_t cap, const char *ns, const char *task)
{
    return shardz_key_build(buf, cap, SHARDZ_KEY_TASK, ns, task);
}

int shardz_key_leader(char *buf, size_t cap)
{
    return shardz_key_build(buf, cap, SHARDZ_KEY_LEADER, NULL, NULL);
}

int shardz_key_slots(char *buf, size_t cap, const char *ns, uint64_t epoch, uint32_t page)
{
    char num[48];

    if (!buf || epoch == 0 || !shardz_key_id_valid(ns)) {
        return fail(buf, cap);
    }
    snprintf(num, sizeof num, "%" PRIu64 "/%" PRIu32, epoch, page);
    return emit(buf, cap, "ns/", ns, "/slots/", num);
}

int shardz_key_apage(char *buf, size_t cap, const char *ns, uint32_t page)
{
    char num[16];

    if (!buf || !shardz_key_id_valid(ns)) {
        return fail(buf, cap);
    }
    snprintf(num, sizeof num, "%" PRIu32, page);
    return emit(buf, cap, "ns/", ns, "/apage/", num);
}

/* Reads the decimal number of n bytes at s (no sign, no leading zero but "0", at most max).
 * false for anything else. */
static bool number_parse(const char *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;

    if (n == 0 || (n > 1 && s[0] == '0')) {
        return false;
    }
    for (i = 0; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';

        if (d > 9 || v > (max - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* "<epoch>/<page>" of a slot table page's key (the n bytes at s). */
static int slots_parse(const char *s, size_t n, shardz_key_parts *out)
{
    const char *slash = memchr(s, '/', n);
    uint64_t epoch, page;

    if (!slash || !number_parse(s, (size_t)(slash - s), UINT64_MAX, &epoch) || epoch == 0 ||
        !number_parse(slash + 1, n - (size_t)(slash + 1 - s), UINT32_MAX, &page)) {
        return SHARDZ_EINVAL;
    }
    out->kind = SHARDZ_KEY_SLOTS;
    out->epoch = epoch;
    out->page = (uint32_t)page;
    return 0;
}

int shardz_key_kind_prefix(char *buf, size_t cap, shardz_key_kind kind, const char *ns)
{
    char mid[16];

    if (!buf) {
        return SHARDZ_EINVAL;
    }
    if (kind == SHARDZ_KEY_LEADER || kind == SHARDZ_KEY_GONE || (unsigned)kind >= NKINDS ||
        !shardz_key_id_valid(ns)) {
        return fail(buf, cap);
    }
    if (kind == SHARDZ_KEY_CONFIG) {
        return emit(buf, cap, "ns/", ns, "/config", "");
    }
    snprintf(mid, sizeof mid, "/%s/", kind_names[kind]);
    return emit(buf, cap, "ns/", ns, mid, "");
}

int shardz_key_ns_prefix(char *buf, size_t cap, const char *ns)
{
    if (!buf) {
        return SHARDZ_EINVAL;
    }
    if (!ns) {
        return emit(buf, cap, "ns/", "", "", "");
    }
    if (!shardz_key_id_valid(ns)) {
        return fail(buf, cap);
    }
    return emit(buf, cap, "ns/", ns, "/", "");
}

int shardz_key_parse(const void *key, size_t len, shardz_key_parts *out)
{
    const char *k = key, *end, *ns, *slash, *kind;
    size_t ns_len, kind_len, i;

    if (!key || !out) {
        return SHARDZ_EINVAL;
    }
    end = k + len;
    memset(out, 0, sizeof *out);
    if (len == 6 && memcmp(k, "leader", 6) == 0) {
        out->kind = SHARDZ_KEY_LEADER;
        return 0;
    }
    if (len > 5 && memcmp(k, "gone/", 5) == 0) {
        if (!id_bytes_valid(k + 5, len - 5)) {
            return SHARDZ_EINVAL;
        }
        out->kind = SHARDZ_KEY_GONE;
        memcpy(out->ns, k + 5, len - 5);
        return 0;
    }
    if (len < 3 || memcmp(k, "ns/", 3) != 0) {
        return SHARDZ_EINVAL;
    }
    ns = k + 3;
    slash = memchr(ns, '/', (size_t)(end - ns));
    if (!slash) {
        return SHARDZ_EINVAL;
    }
    ns_len = (size_t)(slash - ns);
    if (!id_bytes_valid(ns, ns_len)) {
        return SHARDZ_EINVAL;
    }
    memcpy(out->ns, ns, ns_len);
    kind = slash + 1;
    if (end - kind == 6 && memcmp(kind, "config", 6) == 0) {
        out->kind = SHARDZ_KEY_CONFIG;
        return 0;
    }
    slash = memchr(kind, '/', (size_t)(end - kind));
    if (!slash) {
        return SHARDZ_EINVAL;
    }
    kind_len = (size_t)(slash - kind);
    if (kind_len == 5 && memcmp(kind, "slots", 5) == 0) {
        return slots_parse(slash + 1, (size_t)(end - slash - 1), out);
    }
    if (kind_len == 5 && memcmp(kind, "apage", 5) == 0) {
        uint64_t page;

        if (!number_parse(slash + 1, (size_t)(end - slash - 1), UINT32_MAX, &page)) {
            return SHARDZ_EINVAL;
        }
        out->kind = SHARDZ_KEY_APAGE;
        out->page = (uint32_t)page;
        return 0;
    }
    for (i = SHARDZ_KEY_NODE; i <= SHARDZ_KEY_TASK; i++) {
        if (strlen(kind_names[i]) == kind_len && memcmp(kind, kind_names[i], kind_len) == 0) {
            break;
        }
    }
    if (i > SHARDZ_KEY_TASK || !id_bytes_valid(slash + 1, (size_t)(end - slash - 1))) {
        return SHARDZ_EINVAL;
    }
    out->kind = (shardz_key_kind)i;
    memcpy(out->id, slash + 1, (size_t)(end - slash - 1));
    return 0;
}
