/*
 * torture: crash librvm on purpose, thousands of ways, and check that it
 * never loses a committed byte.
 *
 * Each *scenario* (one seed) runs a random workload in a forked process
 * over the power-failure I/O layer (powerfail_io.h) until the power fails
 * at a chosen I/O; the files stay as the simulated disk left them.  The
 * parent then recovers them (a forked process, plain POSIX I/O), checks
 * the segments against the model (check.c), and, in some scenarios,
 * crashes recovery itself one or more times before a last clean recovery,
 * which must give the same bytes.
 *
 *   torture [--points N] [--base B] [--threads T] [--verbose]
 *   torture --seed S [--repeat N]   one scenario, as printed with a violation
 *                                    (N times, until it fails: threads make
 *                                    the order of I/Os vary a little)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log_format.h"
#include "model.h"
#include "powerfail_io.h"
#include "rng.h"
#include "rvm/rvm.h"

#define CHILD_TIMEOUT 120

/* Under AddressSanitizer: a small quarantine keeps the parent small, and
 * so its forks fast (page tables are copied).  ASAN_OPTIONS overrides it. */
const char *__asan_default_options(void);
__attribute__((used)) const char *__asan_default_options(void)
{
    return "quarantine_size_mb=4";
}

/* Under ThreadSanitizer: the simulated power loss _exits with worker
 * threads unjoined, by design; that is not a leak to report. */
const char *__tsan_default_options(void);
__attribute__((used)) const char *__tsan_default_options(void)
{
    return "report_thread_leaks=0";
}

static struct t_shared *sh;
static char dir[4096];
static int verbose;
static int force_threads;
static long force_flags = -1;

struct totals {
    uint64_t scenarios, points, recovery_points, violations;
    uint64_t commits, aborts, flushes, truncations, failed_io, mt_scenarios;
};

static void make_params(uint64_t seed, struct t_params *p)
{
    struct rng r;
    rng_seed(&r, seed);
    memset(p, 0, sizeof *p);
    p->seed = seed;
    p->nthreads = rng_below(&r, 100) < 60 ? 1 : (int)rng_range(&r, 2, T_MAX_THREADS);
    if (force_threads)
        p->nthreads = force_threads;
    p->nsegs = (int)rng_range(&r, 1, T_MAX_SEGS);
    p->slice = 64u * (uint32_t)rng_range(&r, 64, 512);
    p->seg_size = ((uint32_t)p->nthreads * p->slice + 4095u) & ~4095u;
    p->log_size = 4096u * (uint32_t)rng_range(&r, 16, 64);
    p->truncate_pct = rng_below(&r, 100) < 10 ? 0 : (long)rng_range(&r, 10, 90);
    p->flags = (unsigned long)rng_below(&r, 4);
    if (force_flags >= 0)
        p->flags = (unsigned long)force_flags;
    p->flush_buf_len = 4096u * (unsigned long)rng_range(&r, 16, 64);
    p->ops = (int)rng_range(&r, 10, 200);
    uint64_t k = rng_below(&r, 100);
    p->crash_kind = k < 70 ? T_CRASH_ANY : k < 90 ? T_CRASH_APPLY : T_CRASH_END;
    p->crash_at = p->crash_kind == T_CRASH_APPLY
                      ? rng_range(&r, 1, 40)
                      : rng_range(&r, 1, 4 + (uint64_t)p->ops * (uint64_t)p->nthreads);
    p->keep = (int)rng_below(&r, PF_KEEP_N);
    p->tear_pct = 50;
    if (rng_below(&r, 100) < 30) {
        p->fail_syncs_only = rng_below(&r, 2);
        p->fail_at = rng_range(&r, 1, 2 + (uint64_t)p->ops * (uint64_t)p->nthreads /
                                          (p->fail_syncs_only ? 6 : 2));
        p->fail_err = rng_below(&r, 2) ? EIO : ENOSPC;
        p->fail_times = rng_below(&r, 100) < 70 ? 1 : (int)rng_range(&r, 2, 8);
    }
    p->recovery_crashes = rng_below(&r, 100) < 50 ? 0 : (int)rng_range(&r, 1, 3);
    p->clean_end = rng_below(&r, 100) < 30;
    p->map_private = rng_below(&r, 100) < 20;
}

static void describe(const struct t_params *p, char *out, size_t len)
{
    static const char *kinds[] = {"any I/O", "truncation/recovery I/O", "end of workload"};
    static const char *keeps[] = {"none", "all", "random", "prefix"};
    snprintf(out, len,
             "threads %d, segments %d x %u (slice %u), log %u, truncate %ld%%, flags %lu, "
             "ops %d, crash at %s #%" PRIu64 ", keep %s, fail %s%s at #%" PRIu64 " x%d, "
             "recovery crashes %d, clean end %d, private %d",
             p->nthreads, p->nsegs, p->seg_size, p->slice, p->log_size, p->truncate_pct,
             p->flags, p->ops, kinds[p->crash_kind], p->crash_at, keeps[p->keep],
             p->fail_at ? (p->fail_err == EIO ? "EIO" : "ENOSPC") : "none",
             p->fail_syncs_only ? " (syncs)" : "", p->fail_at,
             p->fail_times, p->recovery_crashes, p->clean_end, p->map_private);
}

static void path_of(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static void remove_files(void)
{
    char path[4200];
    path_of(path, sizeof path, "log");
    unlink(path);
    for (int s = 0; s < T_MAX_SEGS; s++) {
        char name[16];
        snprintf(name, sizeof name, "seg%d", s);
        path_of(path, sizeof path, name);
        unlink(path);
    }
}

/* A whole file (NULL and size 0 when it does not exist). */
static unsigned char *read_file(const char *path, size_t *size)
{
    *size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    struct stat st;
    fstat(fd, &st);
    unsigned char *b = malloc((size_t)st.st_size + 1);
    if (b && pread(fd, b, (size_t)st.st_size, 0) != st.st_size) {
        free(b);
        b = NULL;
    }
    close(fd);
    if (b)
        *size = (size_t)st.st_size;
    return b;
}

static void write_file(const char *path, const unsigned char *b, size_t size)
{
    unlink(path);
    if (!b)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || pwrite(fd, b, size, 0) != (ssize_t)size) {
        perror(path);
        exit(2);
    }
    close(fd);
}

struct snapshot {
    unsigned char *b[1 + T_MAX_SEGS];
    size_t n[1 + T_MAX_SEGS];
};

static const char *file_name(int i, char *buf, size_t len)
{
    if (i == 0)
        snprintf(buf, len, "log");
    else
        snprintf(buf, len, "seg%d", i - 1);
    return buf;
}

static void snap_take(struct snapshot *s)
{
    for (int i = 0; i <= T_MAX_SEGS; i++) {
        char name[16], path[4200];
        path_of(path, sizeof path, file_name(i, name, sizeof name));
        s->b[i] = read_file(path, &s->n[i]);
    }
}

static void snap_put(const struct snapshot *s)
{
    for (int i = 0; i <= T_MAX_SEGS; i++) {
        char name[16], path[4200];
        path_of(path, sizeof path, file_name(i, name, sizeof name));
        write_file(path, s->b[i], s->n[i]);
    }
}

static void snap_free(struct snapshot *s)
{
    for (int i = 0; i <= T_MAX_SEGS; i++)
        free(s->b[i]);
}

/* The segments as they are now, seg_size bytes each (zeros past the end). */
static void read_segments(const struct t_params *p, unsigned char *seg[T_MAX_SEGS])
{
    for (int s = 0; s < T_MAX_SEGS; s++) {
        seg[s] = calloc(1, p->seg_size);
        if (s >= p->nsegs)
            continue;
        char name[16], path[4200];
        path_of(path, sizeof path, file_name(s + 1, name, sizeof name));
        size_t n;
        unsigned char *b = read_file(path, &n);
        if (b)
            memcpy(seg[s], b, n < p->seg_size ? n : p->seg_size);
        free(b);
    }
}

/* Run fn in a child; its exit status (-signal when killed). */
static int run_child(void (*fn)(void *), void *arg)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        alarm(CHILD_TIMEOUT);
        fn(arg);
        _exit(0);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            perror("waitpid");
            exit(2);
        }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

static void child_workload(void *arg)
{
    (void)arg;
    workload_run(sh, dir);
}

struct recovery {
    uint64_t crash_at;       /* 0: recover to the end */
    int keep;
    uint64_t seed;
    bool use_pf;
};

/* Recover the log; with a crash point, the power fails during recovery. */
static void child_recover(void *arg)
{
    struct recovery *r = arg;
    char log[4200];
    path_of(log, sizeof log, "log");
    if (r->use_pf) {
        struct pf_config cfg = {
            .seed = r->seed, .crash_at = r->crash_at, .crash_class = PF_CLASS_ANY,
            .keep = (enum pf_keep)r->keep, .tear_pct = 50, .log_path = log,
            .status_area = 2ull * LOG_STATUS_SIZE_DEFAULT,
        };
        pf_install(&cfg);
    }
    rvm_options_t *o = rvm_malloc_options();
    o->log_dev = strdup(log);
    o->truncate = 0;
    rvm_return_t rc = RVM_INIT(o);
    if (rc != RVM_SUCCESS) {
        snprintf(sh->msg, sizeof sh->msg, "recovery failed: rvm_initialize: %s (%s)",
                 rvm_return(rc), rvm_errmsg());
        _exit(4);
    }
    if (r->use_pf)
        sh->io_count = pf_count();
    snprintf(sh->recovery_msg, sizeof sh->recovery_msg, "%s", rvm_errmsg());
    if (getenv("TORTURE_TRACE"))
        fprintf(stderr, "recovery: %s\n", rvm_errmsg());
    rc = rvm_terminate();
    if (rc != RVM_SUCCESS) {
        snprintf(sh->msg, sizeof sh->msg, "after recovery: rvm_terminate: %s (%s)",
                 rvm_return(rc), rvm_errmsg());
        _exit(4);
    }
    rvm_free_options(o);
    _exit(0);
}

static void reset_model(const struct t_params *p)
{
    sh->clock = 0;
    sh->violation = 0;
    sh->msg[0] = 0;
    sh->io_count = 0;
    sh->stats_commits = sh->stats_aborts = sh->stats_flushes = 0;
    sh->stats_truncations = sh->stats_failed_io = 0;
    sh->p = *p;
    for (int t = 0; t < T_MAX_THREADS; t++) {
        sh->t[t].n = 0;
        sh->t[t].nb = 0;
        sh->t[t].data_used = 0;
    }
}

static void report(const struct t_params *p, const char *what)
{
    char d[600];
    describe(p, d, sizeof d);
    printf("VIOLATION (seed 0x%016" PRIx64 "): %s\n  scenario: %s\n"
           "  reproduce: torture --seed 0x%016" PRIx64 " --repeat 100\n",
           p->seed, what, d, p->seed);
    fflush(stdout);
}

/* One scenario; returns the number of violations (0 or 1). */
static int scenario(uint64_t seed, struct totals *tot)
{
    struct t_params p;
    make_params(seed, &p);
    remove_files();
    reset_model(&p);
    if (verbose) {
        char d[600];
        describe(&p, d, sizeof d);
        printf("scenario 0x%016" PRIx64 ": %s\n", seed, d);
    }
    tot->scenarios++;
    if (p.nthreads > 1)
        tot->mt_scenarios++;

    int st = run_child(child_workload, NULL);
    tot->commits += sh->stats_commits;
    tot->aborts += sh->stats_aborts;
    tot->flushes += sh->stats_flushes;
    tot->truncations += sh->stats_truncations;
    tot->failed_io += sh->stats_failed_io;
    char msg[3000];
    if (st == 3) {
        report(&p, sh->msg);
        return 1;
    }
    if (st != PF_CRASH_EXIT) {
        snprintf(msg, sizeof msg, "the workload process ended with status %d (%s)", st,
                 st == -14 ? "timeout: hang?" : sh->msg);
        report(&p, msg);
        return 1;
    }
    tot->points++;

    struct snapshot snap;
    snap_take(&snap);
    struct recovery rec = {.use_pf = true};
    st = run_child(child_recover, &rec);
    if (st != 0) {
        snprintf(msg, sizeof msg, "first recovery: status %d: %s", st, sh->msg);
        report(&p, msg);
        snap_free(&snap);
        return 1;
    }
    uint64_t io_count = sh->io_count;
    unsigned char *a[T_MAX_SEGS], *b[T_MAX_SEGS];
    read_segments(&p, a);
    int bad = check_state(sh, a, msg, sizeof msg);
    if (bad) {
        size_t l = strlen(msg);
        snprintf(msg + l, sizeof msg - l, "\n  recovery said: %s", sh->recovery_msg);
        report(&p, msg);
    }

    if (!bad && p.recovery_crashes && io_count) {
        /* Crash recovery itself, then recover cleanly: the same bytes. */
        snap_put(&snap);
        struct rng r;
        rng_seed(&r, seed ^ 0x5eed5eed5eedull);
        for (int i = 0; i < p.recovery_crashes && !bad; i++) {
            struct recovery rc = {.use_pf = true, .crash_at = rng_range(&r, 1, io_count),
                                  .keep = (int)rng_below(&r, PF_KEEP_N), .seed = rng_next(&r)};
            st = run_child(child_recover, &rc);
            if (st == PF_CRASH_EXIT) {
                tot->recovery_points++;
            } else if (st != 0) {
                snprintf(msg, sizeof msg, "recovery with a crash at I/O %" PRIu64
                         " of %" PRIu64 ": status %d: %s", rc.crash_at, io_count, st, sh->msg);
                report(&p, msg);
                bad = 1;
            }
        }
        struct recovery clean = {.use_pf = false};
        if (!bad && (st = run_child(child_recover, &clean)) != 0) {
            snprintf(msg, sizeof msg, "recovery after crashed recoveries: status %d: %s", st,
                     sh->msg);
            report(&p, msg);
            bad = 1;
        }
        if (!bad) {
            read_segments(&p, b);
            for (int s = 0; s < p.nsegs && !bad; s++)
                if (memcmp(a[s], b[s], p.seg_size) != 0) {
                    uint32_t i = 0;
                    while (a[s][i] == b[s][i])
                        i++;
                    snprintf(msg, sizeof msg, "recovery crashed %d times gives other bytes "
                             "than one clean recovery: segment %d offset %u: 0x%02x, "
                             "expected 0x%02x", p.recovery_crashes, s, i, b[s][i], a[s][i]);
                    report(&p, msg);
                    bad = 1;
                }
            for (int s = 0; s < T_MAX_SEGS; s++)
                free(b[s]);
        }
    }
    for (int s = 0; s < T_MAX_SEGS; s++)
        free(a[s]);
    snap_free(&snap);
    return bad;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: torture [--points N] [--base B] [--threads T] [--flags F] [--verbose]\n"
            "       torture --seed S [--repeat N] [--threads T]\n"
            "Runs random librvm workloads, simulates a power loss in each, recovers and\n"
            "checks.  A violation prints the seed that reproduces it.\n");
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t points = 1000, base = 1, one_seed = 0, repeat = 1;
    bool single = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--points") && i + 1 < argc)
            points = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--base") && i + 1 < argc)
            base = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            one_seed = strtoull(argv[++i], NULL, 0);
            single = true;
        } else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--flags") && i + 1 < argc)
            force_flags = strtol(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            force_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v"))
            verbose = 1;
        else
            usage();
    }
    if (force_threads < 0 || force_threads > T_MAX_THREADS)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    const char *tmp = getenv("TORTURE_DIR");
    if (!tmp)
        tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/rvm-torture-%d", tmp, (int)getpid());
    if (mkdir(dir, 0700) < 0) {
        perror(dir);
        return 2;
    }
    char *real = realpath(dir, NULL);
    if (real) {
        snprintf(dir, sizeof dir, "%s", real);
        free(real);
    }

    struct totals tot = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (single) {
        /* The truncation thread and group commit make the order of I/Os
         * vary a little from run to run: --repeat tries the seed again. */
        verbose = repeat == 1;
        for (uint64_t i = 0; i < repeat && !tot.violations; i++)
            tot.violations += (uint64_t)scenario(one_seed, &tot);
    } else {
        struct rng master;
        rng_seed(&master, base);
        /* Scenarios that end without a power-loss point (a violation
         * found first) do not count toward the points. */
        while (tot.points < points) {
            tot.violations += (uint64_t)scenario(rng_next(&master), &tot);
            if (tot.violations >= 20) {
                printf("stopping after 20 violations\n");
                break;
            }
            if (tot.scenarios > points * 2 + 100)
                break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    remove_files();
    rmdir(dir);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("torture: %" PRIu64 " scenarios (%" PRIu64 " multithreaded), %" PRIu64
           " power-loss points in workloads + %" PRIu64 " during recovery, %" PRIu64
           " violations; %" PRIu64 " commits, %" PRIu64 " aborts, %" PRIu64 " rvm_flush, %"
           PRIu64 " rvm_truncate, %" PRIu64 " injected I/O errors; %.1f s\n",
           tot.scenarios, tot.mt_scenarios, tot.points, tot.recovery_points, tot.violations,
           tot.commits, tot.aborts, tot.flushes, tot.truncations, tot.failed_io, secs);
    return tot.violations ? 1 : 0;
}
