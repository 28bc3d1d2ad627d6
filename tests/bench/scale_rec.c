/*
 * scale_rec.c - recovery of a full log, against a plain read of the same
 * file from a cold page cache.
 *
 * A child process fills a fresh log with committed transactions (no
 * truncation), checksums the committed state of its segment, and exits
 * without rvm_terminate: a crash with a full log.  After the page cache
 * is dropped a second child recovers (rvm_initialize); the segment file
 * must then checksum as the first child's memory did.  The disk's
 * sequential read rate is a read() of the log file in 1 MiB pieces, from
 * a cold cache, before and after the recovery.
 *
 * Shapes: "seq" writes the segment 1 MiB per transaction in order (every
 * record's bytes go to a new place: recovery writes as much as it reads);
 * "rand" writes 4 KiB pages at random places of a segment as big as the
 * log (small records, each page of the segment written about once).
 */
#include "scale.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rvm/rvm.h>

#define FILL_STOP 0.97 /* fraction of the log to fill */

struct fill_out {
    uint64_t log_size, log_used, records, sum;
    double secs;
    int ok;
};

struct rec_out {
    double wall, lib, durable;
    uint64_t records;
    int ok;
    char msg[200];
};

static uint64_t sum_words(uint64_t h, const uint64_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ w[i]) * 0x100000001b3ull;
    return h;
}

static void pattern(uint64_t *w, size_t n, uint64_t a, uint64_t b)
{
    uint64_t x = a * 0x9e3779b97f4a7c15ull ^ (b + 1) * 0xc2b2ae3d27d4eb4full;
    for (size_t i = 0; i < n; i++)
        w[i] = x + i;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int rvm_open(const char *log, rvm_options_t *o)
{
    rvm_init_options(o);
    o->log_dev = (char *)log;
    o->truncate = 0; /* the log must fill: no truncation */
    o->flags |= RVM_MAP_PRIVATE;
    return RVM_INIT(o) == RVM_SUCCESS ? 0 : -1;
}

/* A path inside the work directory; a child cannot go on with a cut one. */
static void path_in(char *buf, size_t n, const char *dir, const char *name)
{
    int w = snprintf(buf, n, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= n) {
        fprintf(stderr, "scale: path too long: %s/%s\n", dir, name);
        _exit(1);
    }
}

/* The child that fills the log; never returns. */
static void fill_child(const char *dir, const char *shape, uint64_t log_size, int fd)
{
    struct fill_out out = {0};
    char log[PATH_MAX], seg[PATH_MAX];
    path_in(log, sizeof log, dir, "rvm.log");
    path_in(seg, sizeof seg, dir, "seg");
    rvm_options_t o;
    rvm_init_options(&o);
    o.log_dev = log;
    rvm_offset_t len = RVM_MK_OFFSET(log_size >> 32, log_size & 0xffffffffu);
    if (rvm_create_log(&o, &len, 0644) != RVM_SUCCESS || rvm_open(log, &o) < 0) {
        fprintf(stderr, "scale: cannot make the log %s: %s\n", log, rvm_errmsg());
        _exit(1);
    }
    int sfd = open(seg, O_RDWR | O_CREAT | O_TRUNC, 0644);
    uint64_t seg_size = log_size;
    if (sfd < 0 || ftruncate(sfd, (off_t)seg_size) < 0) {
        fprintf(stderr, "scale: cannot make %s: %s\n", seg, strerror(errno));
        _exit(1);
    }
    close(sfd);
    rvm_region_t r;
    rvm_init_region(&r);
    r.data_dev = seg;
    r.length = (rvm_length_t)seg_size;
    if (rvm_map(&r, NULL) != RVM_SUCCESS) {
        fprintf(stderr, "scale: cannot map %s: %s\n", seg, rvm_errmsg());
        _exit(1);
    }
    bool seq = strcmp(shape, "seq") == 0;
    size_t chunk = seq ? 1u << 20 : 4096;
    uint64_t nchunks = seg_size / chunk, rng = 88172645463325252ull;
    uint64_t since_check = 0;
    rvm_tid_t tid;
    rvm_init_tid(&tid);
    double t0 = sc_now();
    for (uint64_t k = 0;; k++) {
        uint64_t c = seq ? k % nchunks : xorshift(&rng) % nchunks;
        char *p = (char *)r.vmaddr + c * chunk;
        if (rvm_begin_transaction(&tid, no_restore) != RVM_SUCCESS ||
            rvm_set_range(&tid, p, chunk) != RVM_SUCCESS)
            _exit(1);
        pattern((uint64_t *)p, chunk / 8, c, k);
        if (rvm_end_transaction(&tid, no_flush) != RVM_SUCCESS)
            _exit(1);
        out.records++;
        since_check += chunk;
        if (since_check >= log_size / 64) {
            since_check = 0;
            rvm_stats_t st;
            if (rvm_flush() != RVM_SUCCESS || rvm_get_stats(&st) != RVM_SUCCESS)
                _exit(1);
            if (st.n_truncations) {
                fprintf(stderr, "scale: the log was truncated while filling\n");
                _exit(1);
            }
            if ((double)st.log_used > FILL_STOP * (double)log_size) {
                out.log_size = st.log_size;
                out.log_used = st.log_used;
                break;
            }
        }
    }
    /* Every commit is durable now: memory is what recovery must rebuild. */
    out.secs = sc_now() - t0;
    out.sum = sum_words(0xcbf29ce484222325ull, (const uint64_t *)r.vmaddr,
                        seg_size / 8);
    out.ok = 1;
    if (write(fd, &out, sizeof out) != sizeof out)
        _exit(1);
    _exit(0); /* a crash: the log stays full */
}

static void recover_child(const char *dir, int fd)
{
    struct rec_out out = {0};
    char log[PATH_MAX];
    path_in(log, sizeof log, dir, "rvm.log");
    if (chdir(dir) < 0)
        _exit(1);
    rvm_options_t o;
    double t0 = sc_now();
    int rc = rvm_open(log, &o);
    out.wall = sc_now() - t0;
    snprintf(out.msg, sizeof out.msg, "%s", rvm_errmsg());
    rvm_stats_t st;
    if (rc == 0 && rvm_get_stats(&st) == RVM_SUCCESS) {
        out.lib = (double)st.recovery_usec / 1e6;
        out.records = st.n_recovered_records;
        /* rvm_initialize returns with the segments written but not
         * synced (librvm syncs them in the background, and the log keeps
         * the records until then): a truncation waits for that sync. */
        double t1 = sc_now();
        out.ok = rvm_truncate() == RVM_SUCCESS;
        out.durable = sc_now() - t1;
        out.ok &= rvm_terminate() == RVM_SUCCESS;
    }
    if (write(fd, &out, sizeof out) != sizeof out)
        _exit(1);
    _exit(0);
}

/* Run fn in a child; its fixed-size answer into buf.  0 or -1. */
static int in_child(void (*fn)(int, void *), void *arg, void *buf, size_t len)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        fn(p[1], arg);
        _exit(1);
    }
    close(p[1]);
    ssize_t n = pid < 0 ? -1 : read(p[0], buf, len);
    close(p[0]);
    int st = 0;
    if (pid > 0)
        waitpid(pid, &st, 0);
    return n == (ssize_t)len && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

struct fill_arg {
    const char *dir, *shape;
    uint64_t log_size;
};

static void fill_tramp(int fd, void *a)
{
    struct fill_arg *f = a;
    fill_child(f->dir, f->shape, f->log_size, fd);
}

static void rec_tramp(int fd, void *a)
{
    recover_child(a, fd);
}

static int seg_sum(const char *path, uint64_t *sum)
{
    size_t bs = 1u << 20;
    uint64_t *buf = malloc(bs);
    int fd = open(path, O_RDONLY);
    uint64_t h = 0xcbf29ce484222325ull;
    ssize_t n = -1;
    if (buf && fd >= 0)
        while ((n = read(fd, buf, bs)) > 0)
            h = sum_words(h, buf, (size_t)n / 8);
    if (fd >= 0)
        close(fd);
    free(buf);
    *sum = h;
    return n == 0 ? 0 : -1;
}

int sc_rec_run(struct sc_env *e, const char *shape, uint64_t log_mib,
               struct sc_rec_result *r)
{
    char dir[PATH_MAX], log[PATH_MAX + 16], seg[PATH_MAX + 16];
    memset(r, 0, sizeof *r);
    r->shape = shape;
    snprintf(dir, sizeof dir, "%s/rec-%s", e->work, shape);
    path_in(log, sizeof log, dir, "rvm.log");
    path_in(seg, sizeof seg, dir, "seg");
    if (mkdir(dir, 0755) < 0) {
        fprintf(stderr, "scale: mkdir %s: %s\n", dir, strerror(errno));
        return -1;
    }
    struct fill_arg fa = {dir, shape, log_mib << 20};
    struct fill_out fo;
    if (in_child(fill_tramp, &fa, &fo, sizeof fo) < 0 || !fo.ok) {
        fprintf(stderr, "scale: filling the %s log failed\n", shape);
        return -1;
    }
    r->log_size = fo.log_size;
    r->log_used = fo.log_used;
    r->records = fo.records;
    r->fill_s = fo.secs;

    if (sc_drop_caches() < 0)
        fprintf(stderr, "scale: cannot drop caches (not root?): figures are warm\n");
    r->read_mbs_before = sc_read_rate(log, 1u << 20, NULL);

    struct rec_out ro;
    sc_drop_caches();
    if (in_child(rec_tramp, dir, &ro, sizeof ro) < 0 || !ro.ok) {
        fprintf(stderr, "scale: recovery of the %s log failed\n", shape);
        return -1;
    }
    r->recover_s = ro.wall;
    r->recover_lib_s = ro.lib;
    r->durable_s = ro.durable;
    if (ro.records + 1 < fo.records) /* a no_flush batch is one record */
        fprintf(stderr, "scale: %s: %llu of %llu transactions recovered? (%s)\n",
                shape, (unsigned long long)ro.records,
                (unsigned long long)fo.records, ro.msg);

    sc_drop_caches();
    r->read_mbs_after = sc_read_rate(log, 1u << 20, NULL);

    uint64_t sum;
    r->verified = seg_sum(seg, &sum) == 0 && sum == fo.sum;
    double read = (r->read_mbs_before + r->read_mbs_after) / 2;
    r->mbs = (double)r->log_used / r->recover_s / 1e6;
    r->ratio = read > 0 ? r->mbs / read : 0;
    r->mbs_durable = (double)r->log_used / (r->recover_s + r->durable_s) / 1e6;
    r->ratio_durable = read > 0 ? r->mbs_durable / read : 0;
    unlink(log);
    unlink(seg);
    rmdir(dir);
    return 0;
}
