/* The follow lane: on a follower, one thread reads the store for the loop through a handle of
 * its own: the change feed as one watch stream (shardz_store_watch: a backlog however large is
 * read once, never again per chunk), and everything when the loop asks for a full load. What it
 * reads waits in a queue, bounded in bytes, until the loop takes it and applies it to the
 * namespaces (the lane never touches them). Calls below: the loop thread; the lane: its own
 * thread. docs/ARCHITECTURE.md, the lanes; docs/OPERATIONS.md, "High availability". */
#ifndef SZD_FOLLOW_LANE_H
#define SZD_FOLLOW_LANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shardz/store.h"

typedef struct szd_fl szd_fl;

/* Reads every record a full load needs with st (on the lane's thread): a NULL-terminated array
 * of range pages, all at one revision (pages[0]->revision), into *pages (the caller's, freed
 * with free_pages). 0 or the store's error. */
typedef int (*szd_fl_read_fn)(shardz_store *st, shardz_range ***pages);
typedef void (*szd_fl_free_fn)(shardz_range **pages);

typedef enum {
    SZD_FL_CHANGES, /* changes: whole revisions, in order, up to changes->revision */
    SZD_FL_PAGES,   /* pages: a full read at revision; the lane follows from there */
    SZD_FL_ERROR,   /* rc and err: the stream or the read failed; the lane idles */
} szd_fl_kind;

typedef struct {
    szd_fl_kind kind;
    shardz_changes *changes; /* CHANGES: the taker's (shardz_changes_free) */
    shardz_range **pages;    /* PAGES: the taker's (the free_fn given at start) */
    int64_t revision;        /* PAGES: the revision read at */
    int rc;                  /* ERROR: SHARDZ_STORE_ECOMPACTED, SHARDZ_EIO, ... */
    char err[256];           /* ERROR: the store's detail */
} szd_fl_item;

/* Starts the lane, idle. `store` is taken (closed by szd_fl_stop, also when this fails);
 * read/free are the full load's; limit is the events per CHANGES item (whole revisions) and
 * max_bytes the queue's bound (the stream waits meanwhile). 0, SHARDZ_ENOMEM, SHARDZ_EIO. */
int szd_fl_start(shardz_store *store, szd_fl_read_fn read, szd_fl_free_fn free_pages, size_t limit,
                 size_t max_bytes, szd_fl **out);
/* Stops the thread (within about a second: a stream notices at its next poll), frees what is
 * queued and the lane. Accepts NULL. */
void szd_fl_stop(szd_fl *fl);
/* The fd that becomes readable when items wait (drained by szd_fl_take). */
int szd_fl_fd(const szd_fl *fl);

/* Each of these drops what is queued and replaces what the lane was asked before. */
/* Follow the changes after revision since. */
void szd_fl_follow(szd_fl *fl, int64_t since);
/* Read everything (one SZD_FL_PAGES item), then follow from the revision read at. */
void szd_fl_load(szd_fl *fl);
/* Stop reading. */
void szd_fl_pause(szd_fl *fl);

/* Takes the oldest item into *out: true, or false when none waits. */
bool szd_fl_take(szd_fl *fl, szd_fl_item *out);
/* Bytes of keys and values queued (a gauge). Any thread. */
size_t szd_fl_queued_bytes(szd_fl *fl);

/* test hook: the stream fails (as a watch broken by etcd would) while the file
 * SHARDZ_TEST_CHANGES_FAIL names exists. */

#endif
