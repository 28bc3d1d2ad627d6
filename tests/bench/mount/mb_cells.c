/*
 * mb_cells.c - one operation of every cell, and the timed loop.
 *
 * Each thread of a cell writes its own file, at a slot that moves on with
 * every operation (the file holds MB_FILE / bytes slots), with contents
 * that differ from what the slot held before: the daemon logs only bytes
 * that change, so rewriting equal bytes would measure nothing.
 *
 * The timed loop: every thread sets up (opens, maps) first; then all
 * start together, run a warm-up that is not counted, and count the
 * operations that end inside the measured window.
 */
#include "mb.h"
#include "rvmfs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

extern atomic_bool mb_stop; /* mount_bench.c: set by ^C */

struct worker {
    struct mb_env *e;
    const struct mb_cell *c;
    int idx;
    int fd;
    unsigned char *map;             /* mapped cells: the whole file */
    unsigned char *buf;             /* MB_MAP bytes, page aligned */
    bool in_txn;                    /* a begin has no commit yet */
    uint64_t ops;                   /* operations in the window */
    uint64_t ops_all;               /* operations, warm-up included */
    double secs[MB_STEPS];          /* time in each step */
    const char *step;               /* the call that failed */
    int err;                        /* its errno, 0: none */
};

/* The window, set by the main thread between the two barriers. */
struct window {
    pthread_barrier_t ready, go;
    double warm_end, end;
};

double mb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Contents no slot held before: every word depends on seq. */
static void fill(unsigned char *p, size_t len, uint64_t seq)
{
    uint64_t v = (seq + 1) * 0x9e3779b97f4a7c15ull;
    uint64_t *w = (uint64_t *)(void *)p;
    for (size_t i = 0; i < len / sizeof *w; i++)
        w[i] = v ^ i;
}

static void cell_file(const struct mb_env *e, const struct mb_cell *c, int idx,
                      char *buf, size_t len)
{
    if (c->kind == K_RAW)
        snprintf(buf, len, "%s/raw.dat", e->plain);
    else
        snprintf(buf, len, "%s/%s.%d", e->mnt, c->key, idx);
}

static int fail(struct worker *w, const char *step)
{
    w->step = step;
    w->err = errno ? errno : EIO;
    return -1;
}

static int xattr_txn(int fd, const char *cmd)
{
    return fsetxattr(fd, RVMFS_XATTR_TXN, cmd, strlen(cmd), 0);
}

static int do_pwrite(int fd, const void *buf, size_t len, off_t off)
{
    ssize_t n = pwrite(fd, buf, len, off);
    if (n == (ssize_t)len)
        return 0;
    if (n >= 0)
        errno = EIO; /* short write */
    return -1;
}

const char *const *mb_step_names(const struct mb_cell *c)
{
    static const char *const sync_[] = {"pwrite", "fdatasync", NULL};
    static const char *const rvm[] = {"begin+set_range+copy", "end(flush)", NULL};
    static const char *const xattr[] = {"setxattr begin", "pwrite",
                                        "setxattr commit", NULL};
    static const char *const ioctl_[] = {"ioctl begin", "pwrite", "ioctl commit",
                                         NULL};
    static const char *const plain[] = {"pwrite", NULL};
    static const char *const mapped[] = {"ioctl begin", "dirty (faults)",
                                         "msync", "ioctl commit", NULL};
    switch (c->kind) {
    case K_RAW: case K_AUTO: return sync_;
    case K_LIBRVM: return rvm;
    case K_XATTR: case K_GROUP: return xattr;
    case K_IOCTL: case K_NF_IOCTL: case K_MAPPED_PWRITE: return ioctl_;
    case K_NF_PWRITE: return plain;
    case K_MAPPED: return mapped;
    }
    return plain;
}

/* End of step i: add its time. */
static void lap(struct worker *w, int i, double *t)
{
    double now = mb_now();
    w->secs[i] += now - *t;
    *t = now;
}

/* One operation of the cell; 0 or -1 (w->step, w->err). */
static int op(struct worker *w, uint64_t seq)
{
    const struct mb_cell *c = w->c;
    off_t off = (off_t)((seq % (MB_FILE / c->bytes)) * c->bytes);
    unsigned char *b = w->buf;
    int fd = w->fd;

    if (c->kind != K_MAPPED)
        fill(b, c->bytes, seq);
    double t = mb_now();
    switch (c->kind) {
    case K_RAW:
    case K_AUTO:
        if (do_pwrite(fd, b, MB_IO, off) < 0)
            return fail(w, "pwrite");
        lap(w, 0, &t);
        if (fdatasync(fd) < 0)
            return fail(w, "fdatasync");
        lap(w, 1, &t);
        return 0;
    case K_LIBRVM: {
        rvm_tid_t *tid = w->e->tid;
        char *dst = w->e->region.vmaddr + off;
        rvm_return_t r = rvm_begin_transaction(tid, restore);
        if (r == RVM_SUCCESS)
            r = rvm_set_range(tid, dst, MB_IO);
        if (r == RVM_SUCCESS) {
            memcpy(dst, b, MB_IO);
            lap(w, 0, &t);
            r = rvm_end_transaction(tid, flush);
            lap(w, 1, &t);
        }
        if (r != RVM_SUCCESS) {
            errno = EIO;
            return fail(w, rvm_return(r));
        }
        return 0;
    }
    case K_XATTR:
    case K_GROUP:
        if (xattr_txn(fd, "begin") < 0)
            return fail(w, "setxattr begin");
        w->in_txn = true;
        lap(w, 0, &t);
        if (do_pwrite(fd, b, MB_IO, off) < 0)
            return fail(w, "pwrite");
        lap(w, 1, &t);
        if (xattr_txn(fd, "commit") < 0)
            return fail(w, "setxattr commit");
        lap(w, 2, &t);
        w->in_txn = false;
        return 0;
    case K_IOCTL:
    case K_NF_IOCTL:
    case K_MAPPED_PWRITE: {
        unsigned flags = c->kind == K_NF_IOCTL ? RVMFS_NO_FLUSH : 0;
        if (rvmfs_begin(fd, 0, NULL) < 0)
            return fail(w, "RVMFS_IOC_BEGIN");
        w->in_txn = true;
        lap(w, 0, &t);
        if (do_pwrite(fd, b, c->bytes, off) < 0)
            return fail(w, "pwrite");
        lap(w, 1, &t);
        if (rvmfs_commit(fd, flags) < 0)
            return fail(w, "RVMFS_IOC_COMMIT");
        lap(w, 2, &t);
        w->in_txn = false;
        return 0;
    }
    case K_NF_PWRITE:
        if (do_pwrite(fd, b, MB_IO, off) < 0)
            return fail(w, "pwrite");
        lap(w, 0, &t);
        return 0;
    case K_MAPPED:
        if (rvmfs_begin(fd, 0, NULL) < 0)
            return fail(w, "RVMFS_IOC_BEGIN");
        w->in_txn = true;
        lap(w, 0, &t);
        fill(w->map + off, MB_MAP, seq);
        lap(w, 1, &t);
        /* rvmfs_commit_mapped(fd, w->map + off, MB_MAP, 0), its two
         * calls timed apart. */
        if (msync(w->map + off, MB_MAP, MS_SYNC) < 0)
            return fail(w, "msync");
        lap(w, 2, &t);
        if (rvmfs_commit(fd, 0) < 0)
            return fail(w, "RVMFS_IOC_COMMIT");
        lap(w, 3, &t);
        w->in_txn = false;
        return 0;
    }
    errno = EINVAL;
    return fail(w, "unknown cell");
}

static int worker_setup(struct worker *w)
{
    char path[PATH_MAX + 64];
    w->fd = -1;
    if (posix_memalign((void **)&w->buf, 4096, MB_MAP) != 0) {
        errno = ENOMEM;
        return fail(w, "posix_memalign");
    }
    if (w->c->kind == K_LIBRVM)
        return 0;
    cell_file(w->e, w->c, w->idx, path, sizeof path);
    w->fd = open(path, O_RDWR);
    if (w->fd < 0)
        return fail(w, "open");
    if (w->c->kind == K_MAPPED) {
        void *m = mmap(NULL, MB_FILE, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd, 0);
        if (m == MAP_FAILED)
            return fail(w, "mmap");
        w->map = m;
    }
    return 0;
}

static void worker_teardown(struct worker *w)
{
    if (w->in_txn && w->fd >= 0) /* a failed operation left it open */
        rvmfs_abort(w->fd);
    if (w->map)
        munmap(w->map, MB_FILE);
    if (w->fd >= 0)
        close(w->fd);
    free(w->buf);
}

struct targ {
    struct worker *w;
    struct window *win;
};

static void *worker_main(void *p)
{
    struct targ *a = p;
    struct worker *w = a->w;
    worker_setup(w);
    pthread_barrier_wait(&a->win->ready);
    pthread_barrier_wait(&a->win->go);
    double warm_end = a->win->warm_end, end = a->win->end;
    /* Threads start far apart in the sequence so that they never write
     * the same contents. */
    uint64_t seq = (uint64_t)w->idx << 40;
    while (!w->err && !atomic_load(&mb_stop)) {
        if (op(w, seq++) < 0)
            break;
        w->ops_all++;
        double t = mb_now();
        if (t >= end)
            break;
        if (t >= warm_end)
            w->ops++;
    }
    worker_teardown(w);
    return NULL;
}

/* The counters of the librvm the cell uses: 0, or -1 (none). */
static int log_counters(const struct mb_env *e, const struct mb_cell *c,
                        uint64_t v[4])
{
    if (c->kind == K_RAW)
        return -1;
    if (c->kind == K_LIBRVM) {
        rvm_stats_t st;
        if (rvm_get_stats(&st) != RVM_SUCCESS)
            return -1;
        v[0] = st.n_flush_commit + st.n_no_flush_commit;
        v[1] = st.n_forces;
        v[2] = st.log_bytes_written;
        v[3] = st.n_truncations;
        return 0;
    }
    static const char *const keys[4] = {"committed=", "forces=",
                                        "log_bytes_written=", "truncations="};
    char buf[8192];
    ssize_t n = getxattr(e->mnt, RVMFS_XATTR_STAT, buf, sizeof buf - 1);
    if (n < 0)
        return -1;
    buf[n] = 0;
    for (int k = 0; k < 4; k++) {
        const char *p = buf;
        size_t kl = strlen(keys[k]);
        while (p && strncmp(p, keys[k], kl) != 0)
            p = (p = strchr(p, '\n')) ? p + 1 : NULL;
        if (!p)
            return -1;
        v[k] = strtoull(p + kl, NULL, 10);
    }
    return 0;
}

int mb_cell_run(struct mb_env *e, const struct mb_cell *c, double warm,
                double seconds, double *rate, struct mb_steps *steps,
                char *err, size_t errlen)
{
    struct worker ws[MB_MAX_THREADS];
    struct targ ta[MB_MAX_THREADS];
    pthread_t th[MB_MAX_THREADS];
    struct window win;
    int n = c->nthreads, started = 0;

    memset(ws, 0, sizeof ws);
    pthread_barrier_init(&win.ready, NULL, (unsigned)n + 1);
    pthread_barrier_init(&win.go, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++) {
        ws[i] = (struct worker){.e = e, .c = c, .idx = i, .fd = -1};
        ta[i] = (struct targ){&ws[i], &win};
        if (pthread_create(&th[i], NULL, worker_main, &ta[i]) != 0) {
            /* The others wait at a barrier for n + 1: give up the run
             * (the exit handler unmounts). */
            fprintf(stderr, "mount_bench: pthread_create failed\n");
            exit(1);
        }
        started++;
    }
    pthread_barrier_wait(&win.ready);
    uint64_t before[4], after[4];
    bool counted = log_counters(e, c, before) == 0;
    double t0 = mb_now();
    win.warm_end = t0 + warm;
    win.end = t0 + warm + seconds;
    pthread_barrier_wait(&win.go);
    uint64_t total = 0;
    int rc = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        total += ws[i].ops;
        steps->ops += ws[i].ops_all;
        for (int k = 0; k < MB_STEPS; k++)
            steps->secs[k] += ws[i].secs[k];
        if (ws[i].err && rc == 0) {
            snprintf(err, errlen, "thread %d: %s: %s", i, ws[i].step,
                     strerror(ws[i].err));
            rc = -1;
        }
    }
    if (counted && log_counters(e, c, after) == 0) {
        steps->has_log = true;
        steps->commits += after[0] - before[0];
        steps->forces += after[1] - before[1];
        steps->log_bytes += after[2] - before[2];
        steps->truncations += after[3] - before[3];
    }
    pthread_barrier_destroy(&win.ready);
    pthread_barrier_destroy(&win.go);
    if (rc == 0 && atomic_load(&mb_stop)) {
        snprintf(err, errlen, "interrupted");
        rc = -1;
    }
    *rate = (double)total / seconds;
    return rc;
}

int mb_cells_prepare(struct mb_env *e, const struct mb_cell *cells, int n)
{
    char path[PATH_MAX + 64];
    for (int i = 0; i < n; i++) {
        if (cells[i].kind == K_LIBRVM)
            continue;
        for (int t = 0; t < cells[i].nthreads; t++) {
            cell_file(e, &cells[i], t, path, sizeof path);
            if (mb_make_file(path) < 0)
                return -1;
        }
    }
    return 0;
}

int mb_rvm_setup(struct mb_env *e)
{
    char logp[PATH_MAX + 16], segp[PATH_MAX + 16];
    snprintf(logp, sizeof logp, "%s/rvm.log", e->plain);
    snprintf(segp, sizeof segp, "%s/rvm.seg", e->plain);
    if (mb_make_file(segp) < 0)
        return -1;
    rvm_options_t o;
    rvm_init_options(&o);
    o.log_dev = logp;
    o.truncate = 50;      /* as the daemon's default */
    o.flags = RVM_ALL_OPTIMIZATIONS | RVM_MAP_PRIVATE; /* as the daemon */
    rvm_offset_t len = RVM_LENGTH_TO_OFFSET((rvm_length_t)64 << 20);
    rvm_return_t r = rvm_create_log(&o, &len, 0600);
    if (r == RVM_SUCCESS)
        r = RVM_INIT(&o);
    if (r != RVM_SUCCESS) {
        fprintf(stderr, "mount_bench: librvm log %s: %s %s\n", logp,
                rvm_return(r), rvm_errmsg());
        return -1;
    }
    e->rvm_up = true;
    rvm_init_region(&e->region);
    e->region.data_dev = strdup(segp);
    e->region.length = MB_FILE;
    if (!e->region.data_dev || (r = rvm_map(&e->region, NULL)) != RVM_SUCCESS) {
        fprintf(stderr, "mount_bench: rvm_map %s: %s %s\n", segp,
                rvm_return(r), rvm_errmsg());
        e->region.vmaddr = NULL;
        return -1;
    }
    e->tid = rvm_malloc_tid();
    if (!e->tid) {
        fprintf(stderr, "mount_bench: rvm_malloc_tid failed\n");
        return -1;
    }
    return 0;
}

void mb_rvm_stop(struct mb_env *e)
{
    if (!e->rvm_up)
        return;
    if (e->region.vmaddr)
        rvm_unmap(&e->region);
    if (e->tid)
        rvm_free_tid(e->tid);
    rvm_terminate();
    free(e->region.data_dev);
    e->region.data_dev = NULL;
    e->tid = NULL;
    e->rvm_up = false;
}
