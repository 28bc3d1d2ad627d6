/*
 * The power-failure I/O layer; see powerfail_io.h for the disk model.
 */
#include "powerfail_io.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rng.h"

#define SECTOR 512u

struct rvm_io_file {
    rvm_io_file *real;
    char *path;
    bool is_log;
    bool status_dirty;      /* a status write is pending on this file */
};

struct pending {
    struct rvm_io_file *f;
    uint64_t off;
    size_t len;
    unsigned char *old;     /* bytes before the write (zeros past old EOF) */
    unsigned char *new;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct pf_config cfg;
static struct rng rng;
static uint64_t n_io, n_class, n_sync, n_failed;
static struct pending *pend;
static size_t npend, pend_cap;
/* Every file ever opened, for the undo after a close. */
static struct rvm_io_file **files;
static size_t nfiles, files_cap;

static const rvm_io_methods *posix(void)
{
    return rvm_io_posix();
}

static void pending_forget(size_t i)
{
    free(pend[i].old);
    free(pend[i].new);
}

/* Raw write for the crash: the descriptors of librvm may be closed. */
static void raw_write(struct rvm_io_file *f, const unsigned char *p, size_t len, uint64_t off)
{
    int fd = open(f->path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, p + done, len - done, (off_t)(off + done));
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    close(fd);
}

/* Apply part of a pending write as it may reach a disk that loses power. */
static void apply_torn(struct pending *w)
{
    switch (rng_below(&rng, 3)) {
    case 0: { /* prefix cut at any byte */
        size_t cut = (size_t)rng_below(&rng, w->len);
        raw_write(w->f, w->new, cut, w->off);
        break;
    }
    case 1: { /* prefix cut at a sector boundary of the file */
        uint64_t first = (w->off + SECTOR) / SECTOR * SECTOR;
        uint64_t end = w->off + w->len;
        uint64_t nsect = end > first ? (end - first) / SECTOR + 1 : 1;
        uint64_t cut = first + rng_below(&rng, nsect) * SECTOR;
        if (cut > end)
            cut = end;
        if (cut > w->off)
            raw_write(w->f, w->new, (size_t)(cut - w->off), w->off);
        break;
    }
    default: { /* any subset of its sectors */
        uint64_t pos = w->off, end = w->off + w->len;
        while (pos < end) {
            uint64_t next = (pos / SECTOR + 1) * SECTOR;
            if (next > end)
                next = end;
            if (rng_below(&rng, 2))
                raw_write(w->f, w->new + (pos - w->off), (size_t)(next - pos), pos);
            pos = next;
        }
        break;
    }
    }
}

/* The power fails.  Called with mu held; never returns. */
static void __attribute__((noreturn)) crash_locked(void)
{
    for (size_t i = npend; i-- > 0;)
        raw_write(pend[i].f, pend[i].old, pend[i].len, pend[i].off);
    bool *keep = calloc(npend ? npend : 1, sizeof *keep);
    if (!keep)
        _exit(PF_CRASH_EXIT + 1);
    size_t prefix = npend ? (size_t)rng_below(&rng, npend + 1) : 0;
    for (size_t i = 0; i < npend; i++) {
        switch (cfg.keep) {
        case PF_KEEP_NONE: keep[i] = false; break;
        case PF_KEEP_ALL: keep[i] = true; break;
        case PF_KEEP_RANDOM: keep[i] = rng_below(&rng, 2); break;
        default: keep[i] = i < prefix; break;
        }
    }
    ssize_t last = -1;
    for (size_t i = 0; i < npend; i++)
        if (keep[i])
            last = (ssize_t)i;
    for (size_t i = 0; i < npend; i++) {
        if (!keep[i])
            continue;
        bool tear = ((ssize_t)i == last && (int)rng_below(&rng, 100) < cfg.tear_pct) ||
                    (cfg.keep == PF_KEEP_RANDOM && rng_below(&rng, 10) == 0);
        if (tear && pend[i].len > 1)
            apply_torn(&pend[i]);
        else
            raw_write(pend[i].f, pend[i].new, pend[i].len, pend[i].off);
    }
    _exit(PF_CRASH_EXIT);
}

void pf_crash_now(void)
{
    pthread_mutex_lock(&mu);
    crash_locked();
}

/*
 * Count one I/O.  Returns 0 to go on, -err to fail it, or 1 when the
 * power fails at it (the caller then records what it must and crashes).
 */
static int trace = -1;

static int io_tick(bool in_class, bool is_sync)
{
    n_io++;
    if (trace < 0)
        trace = getenv("TORTURE_TRACE") != NULL;
    if (is_sync)
        n_sync++;
    if (in_class)
        n_class++;
    if (cfg.crash_at && (cfg.crash_class == PF_CLASS_ANY ? n_io : n_class) == cfg.crash_at &&
        (cfg.crash_class == PF_CLASS_ANY || in_class))
        return 1;
    uint64_t nf = cfg.fail_syncs_only ? n_sync : n_io;
    if (cfg.fail_at && (is_sync || !cfg.fail_syncs_only) && nf >= cfg.fail_at &&
        nf < cfg.fail_at + (uint64_t)(cfg.fail_times > 0 ? cfg.fail_times : 1)) {
        n_failed++;
        if (cfg.failed_out)
            __atomic_add_fetch(cfg.failed_out, 1, __ATOMIC_RELAXED);
        return -(cfg.fail_err ? cfg.fail_err : EIO);
    }
    return 0;
}

static int pf_open(const char *path, int flags, mode_t mode, rvm_io_file **out)
{
    struct rvm_io_file *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->path = strdup(path);
    if (!f->path) {
        free(f);
        return -ENOMEM;
    }
    int rc = posix()->open(path, flags, mode, &f->real);
    if (rc < 0) {
        free(f->path);
        free(f);
        return rc;
    }
    f->is_log = cfg.log_path && strcmp(cfg.log_path, path) == 0;
    pthread_mutex_lock(&mu);
    if (nfiles == files_cap) {
        size_t nc = files_cap ? files_cap * 2 : 16;
        struct rvm_io_file **nv = realloc(files, nc * sizeof *nv);
        if (!nv) {
            pthread_mutex_unlock(&mu);
            posix()->close(f->real);
            free(f->path);
            free(f);
            return -ENOMEM;
        }
        files = nv;
        files_cap = nc;
    }
    files[nfiles++] = f;
    pthread_mutex_unlock(&mu);
    *out = f;
    return 0;
}

static ssize_t pf_pread(rvm_io_file *f, void *buf, size_t len, uint64_t off)
{
    return posix()->pread(f->real, buf, len, off);
}

static ssize_t pf_pwrite(rvm_io_file *f, const void *buf, size_t len, uint64_t off)
{
    pthread_mutex_lock(&mu);
    bool status = f->is_log && off < cfg.status_area;
    int t = io_tick(!f->is_log || status, false);
    if (trace)
        fprintf(stderr, "io %llu pwrite %s off %llu len %zu%s\n", (unsigned long long)n_io,
                f->path, (unsigned long long)off, len,
                t == 1 ? " CRASH" : t < 0 ? " FAILS" : "");
    if (t < 0) {
        pthread_mutex_unlock(&mu);
        return t;
    }
    if (npend == pend_cap) {
        size_t nc = pend_cap ? pend_cap * 2 : 64;
        struct pending *nv = realloc(pend, nc * sizeof *nv);
        if (!nv) {
            pthread_mutex_unlock(&mu);
            return -ENOMEM;
        }
        pend = nv;
        pend_cap = nc;
    }
    struct pending *w = &pend[npend];
    w->f = f;
    w->off = off;
    w->len = len;
    w->old = calloc(1, len ? len : 1);
    w->new = malloc(len ? len : 1);
    if (!w->old || !w->new) {
        free(w->old);
        free(w->new);
        pthread_mutex_unlock(&mu);
        return -ENOMEM;
    }
    memcpy(w->new, buf, len);
    ssize_t n = posix()->pread(f->real, w->old, len, off);
    if (n < 0) {
        pending_forget(npend);
        pthread_mutex_unlock(&mu);
        return n;
    }
    npend++;
    if (status)
        f->status_dirty = true;
    if (t == 1) {
        /* The crashing write is the last pending one: the policy decides
         * how much of it reached the disk. */
        raw_write(f, w->new, len, off);
        crash_locked();
    }
    n = posix()->pwrite(f->real, buf, len, off);
    pthread_mutex_unlock(&mu);
    return n;
}

static int pf_sync(rvm_io_file *f)
{
    pthread_mutex_lock(&mu);
    int t = io_tick(!f->is_log || f->status_dirty, true);
    if (trace)
        fprintf(stderr, "io %llu sync %s%s\n", (unsigned long long)n_io, f->path,
                t == 1 ? " CRASH" : t < 0 ? " FAILS" : "");
    if (t == 1)
        crash_locked();
    if (t < 0) {
        pthread_mutex_unlock(&mu);
        return t;
    }
    /* Durability point of the simulated disk: the file's writes are
     * stable, whichever descriptor they went through (fdatasync flushes
     * the file, as on Linux). */
    size_t j = 0;
    for (size_t i = 0; i < npend; i++) {
        if (pend[i].f == f || strcmp(pend[i].f->path, f->path) == 0)
            pending_forget(i);
        else
            pend[j++] = pend[i];
    }
    npend = j;
    f->status_dirty = false;
    pthread_mutex_unlock(&mu);
    return 0;
}

static int pf_size(rvm_io_file *f, uint64_t *out)
{
    return posix()->size(f->real, out);
}

static int pf_resize(rvm_io_file *f, uint64_t size)
{
    return posix()->resize(f->real, size);
}

static int pf_close(rvm_io_file *f)
{
    /* Keep the record (path, pending writes); drop the descriptor. */
    pthread_mutex_lock(&mu);
    int rc = posix()->close(f->real);
    f->real = NULL;
    pthread_mutex_unlock(&mu);
    return rc;
}

static int pf_fd(rvm_io_file *f)
{
    return posix()->fd(f->real);
}

static const rvm_io_methods pf_methods = {
    .open = pf_open,
    .pread = pf_pread,
    .pwrite = pf_pwrite,
    .sync = pf_sync,
    .size = pf_size,
    .resize = pf_resize,
    .close = pf_close,
    .fd = pf_fd,
};

void pf_install(const struct pf_config *c)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < npend; i++)
        pending_forget(i);
    npend = 0;
    for (size_t i = 0; i < nfiles; i++) {
        if (files[i]->real)
            posix()->close(files[i]->real);
        free(files[i]->path);
        free(files[i]);
    }
    nfiles = 0;
    cfg = *c;
    rng_seed(&rng, c->seed ^ 0x9e3779b97f4a7c15ull);
    n_io = n_class = n_sync = n_failed = 0;
    pthread_mutex_unlock(&mu);
    rvm_io_set(&pf_methods);
}

void pf_uninstall(void)
{
    rvm_io_set(NULL);
}

uint64_t pf_count(void)
{
    pthread_mutex_lock(&mu);
    uint64_t n = n_io;
    pthread_mutex_unlock(&mu);
    return n;
}

uint64_t pf_count_class(void)
{
    pthread_mutex_lock(&mu);
    uint64_t n = n_class;
    pthread_mutex_unlock(&mu);
    return n;
}

uint64_t pf_failed(void)
{
    pthread_mutex_lock(&mu);
    uint64_t n = n_failed;
    pthread_mutex_unlock(&mu);
    return n;
}
