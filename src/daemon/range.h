/* shardzd range namespaces (sharder "range", seed 003): the daemon side of key ranges. Owns the
 * split and merge tasks (persisted as ns/<ns>/task/<id>, one step per store transaction), the
 * range fields of partition records and of worker assignments, and the range routes of the
 * API. The placement library keeps the routed range table (include/shardz/range.h); this layer
 * carries splits and merges out make-before-break. Event-loop thread. */
#ifndef SHARDZ_DAEMON_RANGE_H
#define SHARDZ_DAEMON_RANGE_H

#include "daemon/daemon.h"

/* Creates the range state of a new range namespace and cuts the key space evenly over the
 * first byte of printable keys between its partitions (registered already, at most 95).
 * SHARDZ_EINVAL (err says why), SHARDZ_ENOMEM. */
int szd_range_init(szd_ns *ns, char *err, size_t errlen);
/* Frees the range state; accepts a namespace without one. */
void szd_range_free(szd_ns *ns);

/* Adds "range": {"lo", "hi"} (and "routed" when record) to a partition's JSON when the
 * partition has a range: routed, or a successor of a task in flight. j is borrowed. */
void szd_range_fields(const szd_ns *ns, const char *partition, json_t *j, bool record);

/* Loading (after a restart): a partition record's range fields, a task record, then the
 * table and the tasks' effects once everything is loaded. Records are borrowed. */
int szd_range_load_part(szd_ns *ns, const char *partition, json_t *rec);
int szd_range_load_task(szd_ns *ns, json_t *rec);
void szd_range_restore(szd_ns *ns);

/* Advances every task whose step is ready (the work pass, before the flush and the push). */
void szd_range_advance(szd_ns *ns);

/* Operator requests: a split of a routed partition at `at` (NULL: the middle), a merge of two
 * routed neighbours. 0 with the new task's JSON in *task (the caller's), or an error with err
 * naming the problem; on error nothing changed. */
int szd_range_split(szd_ns *ns, const char *partition, json_t *at, json_t **task, char *err,
                    size_t errlen);
int szd_range_merge(szd_ns *ns, json_t *partitions, json_t **task, char *err, size_t errlen);
/* {"tasks": [...]} of the namespace's split and merge tasks. */
json_t *szd_range_tasks_json(const szd_ns *ns);
/* Routes: POST .../partitions/{pid}/split, POST .../merge, GET .../tasks (reply sent). */
void szd_range_api_split(szd_ns *ns, struct evhttp_request *req, const char *pid);
void szd_range_api_merge(szd_ns *ns, struct evhttp_request *req);
void szd_range_api_tasks(szd_ns *ns, struct evhttp_request *req);

/* A load balancer round's reply (dry run or not) gains "splits": the hot ranges, each a routed
 * partition whose own load exceeds the band above a node's mean (shardz_sharder_range_hot),
 * with the task splitting it: started at its middle when apply, else one already in flight.
 * Nothing for other namespaces. reply is borrowed. */
void szd_range_balance(szd_ns *ns, json_t *reply, bool apply);
/* A ping reply's "split_at" ({partition: key}): the latest key each worker suggests for
 * splitting a range it holds, used by the next load split of that range. A key for a range the
 * node does not hold, or not a 1-1024-byte string, is logged and counted as a rejected sample. */
void szd_range_split_keys(szd_ns *ns, const szd_node *n, json_t *keys);

/* Whether an operator may add partitions (partition NULL) or remove one: 0 outside range
 * namespaces; in them adding is SHARDZ_ENOTSUP (ranges come from splits) and removing a
 * partition in a split or merge SHARDZ_EBUSY (a routed one is refused by the placement too:
 * merge it away). err names the problem. */
int szd_range_parts_change(szd_ns *ns, const char *partition, char *err, size_t errlen);

/* Whether the namespace is a range namespace. */
bool szd_is_range(const szd_ns *ns);

#endif
