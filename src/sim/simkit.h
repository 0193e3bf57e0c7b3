/* simkit: the measuring kit the simulator (src/sim) and the benchmarks (bench/) share:
 * a seeded PRNG (splitmix64 + xoshiro256**) with uniform, normal, lognormal and zipf draws,
 * wall and CPU clocks, heap and RSS probes, and a runner that executes a measurement in a forked
 * child so each one gets its own peak RSS and a crash is reported instead of ending the run.
 * Header-only (static inline): the simulator and each benchmark are separate executables. */
#ifndef SHARDZ_SIM_SIMKIT_H
#define SHARDZ_SIM_SIMKIT_H

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- PRNG ------------------------------------------------------------------------------ */

/* xoshiro256** state; seeded through splitmix64 so any 64-bit seed (0 included) is fine. */
typedef struct {
    uint64_t s[4];
} simkit_rng;

static inline uint64_t simkit_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Seeds a generator for one purpose: `stream` keeps the draws of different purposes (loads,
 * events, a load shift) independent of each other for the same scenario seed. */
static inline void simkit_rng_seed(simkit_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ull);
    for (int i = 0; i < 4; i++) {
        r->s[i] = simkit_splitmix64(&x);
    }
}

static inline uint64_t simkit_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t simkit_next(simkit_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = simkit_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = simkit_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static inline double simkit_uniform(simkit_rng *r)
{
    return (double)(simkit_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; the bias is below 2^-32 for the
 * sizes used here). */
static inline uint64_t simkit_below(simkit_rng *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)simkit_next(r) * n) >> 64);
}

/* Standard normal by Box-Muller (one of the pair; simple and reproducible). */
static inline double simkit_normal(simkit_rng *r)
{
    double u1 = simkit_uniform(r);
    double u2 = simkit_uniform(r);
    if (u1 < 0x1.0p-60) {
        u1 = 0x1.0p-60; /* log(0) */
    }
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Lognormal with mu = 0 and the given sigma. */
static inline double simkit_lognormal(simkit_rng *r, double sigma)
{
    return exp(sigma * simkit_normal(r));
}

/* Fills load[0..n-1] with zipf weights over rank (rank k gets k^-s, k = 1..n), the ranks
 * shuffled over the indices so the hot items are not neighbours. */
static inline void simkit_zipf_fill(simkit_rng *r, double *load, size_t n, double s)
{
    for (size_t i = 0; i < n; i++) {
        load[i] = pow((double)(i + 1), -s);
    }
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)simkit_below(r, i);
        double t = load[i - 1];
        load[i - 1] = load[j];
        load[j] = t;
    }
}

/* Scales load[0..n-1] to a mean of 1 (no-op for an empty or all-zero array). */
static inline void simkit_normalise_mean(double *load, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        sum += load[i];
    }
    if (n == 0 || sum <= 0.0) {
        return;
    }
    double k = (double)n / sum;
    for (size_t i = 0; i < n; i++) {
        load[i] *= k;
    }
}

/* ---- clocks ---------------------------------------------------------------------------- */

static inline uint64_t simkit_clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Wall clock (monotonic), ns. */
static inline uint64_t simkit_wall_ns(void)
{
    return simkit_clock_ns(CLOCK_MONOTONIC);
}

/* CPU time of the process, ns (steadier than the wall clock on a shared machine). */
static inline uint64_t simkit_cpu_ns(void)
{
    return simkit_clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

/* ---- memory ---------------------------------------------------------------------------- */

/* Bytes the program holds through malloc right now (in use, mmap'd blocks included), or -1
 * when the C library cannot tell (glibc < 2.33 has no mallinfo2). */
static inline long long simkit_heap_bytes(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    return (long long)(mi.uordblks + mi.hblkhd);
#else
    return -1;
#endif
}

/* Peak resident set size of this process so far, KiB. */
static inline long simkit_maxrss_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return -1;
    }
    return ru.ru_maxrss;
}

/* Resident set size right now, KiB (from /proc/self/statm), or -1. */
static inline long simkit_rss_kb(void)
{
    long pages = -1;
    long size = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) {
        return -1;
    }
    if (fscanf(f, "%ld %ld", &size, &pages) != 2) {
        pages = -1;
    }
    fclose(f);
    return pages < 0 ? -1 : pages * (sysconf(_SC_PAGESIZE) / 1024);
}

static inline long simkit_cores(void)
{
    return sysconf(_SC_NPROCESSORS_ONLN);
}

/* ---- isolated runs --------------------------------------------------------------------- */

/* Writes one fixed-size record to the parent (from inside simkit_isolated's child).
 * Returns 0 or -1 (the parent is gone). */
static inline int simkit_emit(int fd, const void *rec, size_t size)
{
    const char *p = rec;
    while (size > 0) {
        ssize_t w = write(fd, p, size);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        size -= (size_t)w;
    }
    return 0;
}

/* Runs fn(arg, fd) in a forked child that emits records of `size` bytes on fd (simkit_emit);
 * the parent collects up to `cap` of them into out and sets *nrec. Returns the child's status
 * as waitpid reports it (0: it exited with 0), or -1 if the child could not be started.
 * Records are streamed, so those emitted before a crash survive it. */
static inline int simkit_isolated(int (*fn)(void *arg, int fd), void *arg, void *out, size_t size,
                                  size_t cap, size_t *nrec)
{
    int fds[2];
    int status = -1;
    pid_t pid;
    char *dst = out;
    size_t got = 0; /* bytes received */

    *nrec = 0;
    if (pipe(fds) != 0) {
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        int rc = fn(arg, fds[1]);
        close(fds[1]);
        /* exit, not _exit: stdio was flushed before the fork, and a leak checker (ASan's
         * LeakSanitizer) runs at exit. */
        exit(rc == 0 ? 0 : 1);
    }
    close(fds[1]);
    for (;;) {
        char sink[4096];
        char *to = got < size * cap ? dst + got : sink;
        size_t room = got < size * cap ? size * cap - got : sizeof sink;
        ssize_t r = read(fds[0], to, room);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        if (to != sink) {
            got += (size_t)r;
        }
    }
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    *nrec = got / size;
    return status;
}

#endif
