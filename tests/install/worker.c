/* A small libshardz worker built by tests/install/test_install.sh against an installed
 * libshardz, with nothing but `pkg-config --cflags --libs shardz`: it registers with the
 * coordinator given, waits (20 s at most) until it serves `want` replicas, prints
 * "serving N version V", stops and exits 0; 1 on any failure (a single node cannot leave
 * gracefully: its partitions have nowhere to go). Main thread plus
 * the library's threads. Usage: worker COORDINATOR NAMESPACE NODE WANT */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <shardz/error.h>
#include <shardz/version.h>
#include <shardz/worker.h>

static int on_serve(const shardz_worker_replica *r, char *err, size_t errlen, void *user)
{
    (void)r;
    (void)err;
    (void)errlen;
    (void)user;
    return 0;
}

static int on_delete(const shardz_worker_replica *r, char *err, size_t errlen, void *user)
{
    (void)r;
    (void)err;
    (void)errlen;
    (void)user;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: worker COORDINATOR NAMESPACE NODE WANT\n");
        return 2;
    }
    size_t want = (size_t)strtoul(argv[4], NULL, 10);
    shardz_worker_capacity cap = {"load", 100};
    shardz_worker_config cfg = {.coordinator = argv[1],
                                .ns = argv[2],
                                .node_id = argv[3],
                                .listen = "127.0.0.1:0",
                                .capacity = &cap,
                                .ncapacity = 1,
                                .serve = on_serve,
                                .del = on_delete};
    shardz_worker *w = NULL;
    shardz_worker_status st;
    int status = 1;
    int rc = shardz_worker_create(&cfg, &w);
    if (rc != 0) {
        fprintf(stderr, "worker: create: %s\n", shardz_strerror(rc));
        goto out;
    }
    rc = shardz_worker_start(w);
    if (rc == 0) {
        rc = shardz_worker_wait_registered(w, 20000);
    }
    if (rc != 0) {
        fprintf(stderr, "worker: start: %s\n", shardz_strerror(rc));
        goto out;
    }
    for (int i = 0; i < 2000; i++) { /* 20 s */
        shardz_worker_status_get(w, &st);
        if (st.serving >= want) {
            break;
        }
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    shardz_worker_status_get(w, &st);
    printf("serving %zu version %s\n", st.serving, shardz_version());
    if (st.serving < want) {
        fprintf(stderr, "worker: serving %zu replicas, want %zu\n", st.serving, want);
        goto out;
    }
    status = 0;
out:
    if (w != NULL) {
        shardz_worker_stop(w);
    }
    shardz_worker_destroy(w);
    return status;
}
