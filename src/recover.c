/*
 * Applying log records to segments: recovery at rvm_initialize and
 * truncation at run time walk the same records and write them the same
 * way.  Redo records are idempotent, so a crash in the middle of either
 * only means the next recovery applies some records twice.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "log_apply.h"
#include "merge.h"
#include "rvm_internal.h"
#include "txn.h"
#include "worker.h"

struct touched {
    struct seg **v;
    size_t n, cap;
};

static int touched_add(struct touched *t, struct seg *s)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i] == s)
            return 0;
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        struct seg **nv = realloc(t->v, nc * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        t->v = nv;
        t->cap = nc;
    }
    t->v[t->n++] = s;
    return 0;
}

/*
 * Records are applied a window at a time: the window's ranges are merged
 * newest first (a byte overwritten later in the window is written once),
 * sorted by segment and offset, and runs of adjacent bytes go out as one
 * write.  This turns a log of small scattered updates into few, ordered
 * segment writes.
 *
 * A window is the records that one read of the log holds: the walk reads
 * WINDOW_BYTES at a time and the window points into the scan's buffer
 * (no copy), so it is applied before the scan reads again.
 */
#define WINDOW_BYTES (16u << 20)
#define STAGE_BYTES (1u << 20)
#define DIRECT_BYTES (64u << 10) /* pieces this big are written in place */

struct window {
    const unsigned char **recs; /* records, in the scan's buffer */
    size_t n, rcap;
};

static int window_add(struct window *w, const unsigned char *rec)
{
    if (w->n == w->rcap) {
        size_t nc = w->rcap ? w->rcap * 2 : 256;
        const unsigned char **nv = realloc(w->recs, nc * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        w->recs = nv;
        w->rcap = nc;
    }
    w->recs[w->n++] = rec;
    return 0;
}

static int write_run(struct seg *s, const unsigned char *p, size_t len, uint64_t off)
{
    ssize_t n = s->io->pwrite(s->file, p, len, off);
    return n < 0 ? (int)n : 0;
}

/*
 * Pieces less than this apart go out as one write, the bytes between them
 * read back from the segment first: scattered small updates (a record
 * here and there in every page) cost one pread and one pwrite per span
 * instead of one pwrite per piece.  Rewriting those bytes unchanged is
 * harmless: only recovery and truncation, one at a time, write segment
 * files, and mappings are private.
 */
#define GAP_FILL 4096u

/* buf gets the segment's bytes at [off, off+len); zeros past its end. */
static int read_span(struct seg *s, unsigned char *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = s->io->pread(s->file, buf + got, len - got, off + got);
        if (n < 0)
            return (int)n;
        if (n == 0) {
            memset(buf + got, 0, len - got);
            break;
        }
        got += (size_t)n;
    }
    return 0;
}

/*
 * Truncation writes long runs (a 1 MiB write through rvmfs, and the next
 * ones after it) past the page cache: buffered, each 4 KiB went into a
 * page new to the cache, and on this kind of host a fresh page costs
 * more than the copy (the truncating thread took more CPU than the
 * daemon's requests).  The run's aligned middle is copied to a bounce
 * buffer that stays warm and written with O_DIRECT; its unaligned ends
 * go through the page cache.  Recovery keeps buffered writes: it returns
 * before its segments are synced, and waiting for the disk here would
 * be its time.
 */
#define BOUNCE_BYTES (4u << 20)

struct bounce {
    unsigned char *buf;         /* BOUNCE_BYTES, aligned; NULL until used */
};

/* Write the bytes of pieces p[0..n) that fall in [lo, hi), buffered. */
static int write_pieces(struct seg *s, const struct merge_piece *p, size_t n, uint64_t lo,
                        uint64_t hi)
{
    for (size_t k = 0; k < n; k++) {
        uint64_t a = p[k].off > lo ? p[k].off : lo;
        uint64_t e = p[k].off + p[k].len < hi ? p[k].off + p[k].len : hi;
        if (a < e) {
            int rc = write_run(s, p[k].data + (a - p[k].off), (size_t)(e - a), a);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* Pieces p[0..n), adjacent, as one run: -EOPNOTSUPP when the run cannot
 * go direct (then nothing was written). */
static int write_direct(struct seg *s, struct bounce *b, const struct merge_piece *p, size_t n)
{
    uint64_t off = p[0].off, end = p[n - 1].off + p[n - 1].len;
    uint64_t lo = (off + RVM_IO_DIRECT_ALIGN - 1) / RVM_IO_DIRECT_ALIGN * RVM_IO_DIRECT_ALIGN;
    uint64_t hi = end / RVM_IO_DIRECT_ALIGN * RVM_IO_DIRECT_ALIGN;
    if (!s->io->pwrite_direct || hi < lo + DIRECT_BYTES)
        return -EOPNOTSUPP;
    if (!b->buf && posix_memalign((void **)&b->buf, RVM_IO_DIRECT_ALIGN, BOUNCE_BYTES) != 0) {
        b->buf = NULL;
        return -EOPNOTSUPP;
    }
    if (!auto_direct_enter())
        return -EOPNOTSUPP;
    int rc = 0;
    uint64_t c = lo;
    for (; c < hi && rc == 0; c += BOUNCE_BYTES) {
        uint64_t ce = hi - c < BOUNCE_BYTES ? hi : c + BOUNCE_BYTES;
        for (size_t k = 0; k < n; k++) {
            uint64_t a = p[k].off > c ? p[k].off : c;
            uint64_t e = p[k].off + p[k].len < ce ? p[k].off + p[k].len : ce;
            if (a < e)
                memcpy(b->buf + (a - c), p[k].data + (a - p[k].off), (size_t)(e - a));
        }
        ssize_t w = s->io->pwrite_direct(s->file, b->buf, (size_t)(ce - c), c);
        rc = w < 0 ? (int)w : 0;
    }
    auto_direct_exit();
    if (rc == -EOPNOTSUPP && c == lo + BOUNCE_BYTES)
        return rc; /* the first chunk: nothing written */
    if (rc == -EOPNOTSUPP) {
        /* Refused part way: the rest through the page cache. */
        c -= BOUNCE_BYTES;
        rc = write_pieces(s, p, n, c, hi);
    }
    if (rc == 0)
        rc = write_pieces(s, p, n, off, lo);
    return rc < 0 ? rc : write_pieces(s, p, n, hi, end);
}

static int window_apply(struct window *w, struct touched *t, uint64_t *skipped,
                        struct bounce *bounce)
{
    struct merge m;
    merge_init(&m);
    int rc = 0;
    for (size_t x = w->n; x-- > 0 && rc == 0;) {
        const unsigned char *rec = w->recs[x];
        struct log_rec_hdr h;
        memcpy(&h, rec, sizeof h);
        const unsigned char *rp = rec + sizeof h;
        const unsigned char *dp = rp + (size_t)h.nranges * sizeof(struct log_rec_range);
        for (uint32_t i = 0; i < h.nranges && rc == 0; i++) {
            struct log_rec_range r;
            memcpy(&r, rp + i * sizeof r, sizeof r);
            rc = merge_add(&m, r.seg_id, r.offset, r.len, dp);
            dp += r.len;
        }
    }
    if (rc == 0)
        rc = merge_sort(&m);
    unsigned char *stage = rc == 0 ? malloc(STAGE_BYTES) : NULL;
    if (rc == 0 && !stage)
        rc = -ENOMEM;
    struct seg *s = NULL;
    uint64_t sid = 0;
    for (size_t i = 0; i < m.np && rc == 0; i++) {
        struct merge_piece *p = &m.p[i];
        if (!s || p->seg != sid) {
            sid = p->seg;
            s = seg_by_id(sid);
            /* A segment whose file is gone has no reader left: skip it
             * rather than bring a deleted file back. */
            int orc = s ? seg_open(s, false) : -ENOENT;
            if (orc == -ENOENT) {
                s = NULL;
            } else if (orc < 0) {
                rc = orc;
                break;
            } else if ((rc = touched_add(t, s)) < 0) {
                break;
            }
        }
        if (!s) {
            (*skipped)++;
            continue;
        }
        /* A big piece costs one write on its own: no copy to the stage;
         * in a truncation it and the pieces right after it go direct. */
        if (p->len >= DIRECT_BYTES) {
            size_t j = i + 1;
            uint64_t end = p->off + p->len;
            while (bounce && j < m.np && m.p[j].seg == sid && m.p[j].off == end) {
                end += m.p[j].len;
                j++;
            }
            if (bounce && (rc = write_direct(s, bounce, p, j - i)) != -EOPNOTSUPP) {
                i = j - 1;
                continue;
            }
            rc = write_run(s, p->data, (size_t)p->len, p->off);
            continue;
        }
        /* The span: the next small pieces of this segment that fit in the
         * stage with at most GAP_FILL bytes between two (pieces are sorted
         * and disjoint). */
        size_t j = i + 1;
        uint64_t end = p->off + p->len;
        bool gaps = false;
        while (j < m.np && m.p[j].seg == sid && m.p[j].len < DIRECT_BYTES &&
               m.p[j].off - end <= GAP_FILL && m.p[j].off + m.p[j].len - p->off <= STAGE_BYTES) {
            gaps |= m.p[j].off != end;
            end = m.p[j].off + m.p[j].len;
            j++;
        }
        size_t span = (size_t)(end - p->off);
        if (j == i + 1) {
            /* A piece alone (random updates, mostly): no copy to the stage. */
            rc = write_run(s, p->data, (size_t)p->len, p->off);
            continue;
        }
        if (gaps && (rc = read_span(s, stage, span, p->off)) < 0)
            break;
        for (size_t k = i; k < j; k++)
            memcpy(stage + (m.p[k].off - p->off), m.p[k].data, (size_t)m.p[k].len);
        if ((rc = write_run(s, stage, span, p->off)) < 0)
            break;
        i = j - 1;
    }
    free(stage);
    merge_free(&m);
    w->n = 0;
    return rc;
}

static rvm_progress_fn progress_fn;
static void *progress_arg;
static pthread_mutex_t progress_mu = PTHREAD_MUTEX_INITIALIZER;

void rvm_set_progress(rvm_progress_fn fn, void *arg)
{
    pthread_mutex_lock(&progress_mu);
    progress_fn = fn;
    progress_arg = arg;
    pthread_mutex_unlock(&progress_mu);
}

static void progress(struct log_scan *s, uint64_t start)
{
    pthread_mutex_lock(&progress_mu);
    rvm_progress_fn fn = progress_fn;
    void *arg = progress_arg;
    pthread_mutex_unlock(&progress_mu);
    if (fn) {
        uint64_t total = s->end == UINT64_MAX ? s->data_size : s->end - start;
        uint64_t done = s->pos - start;
        fn(done < total ? done : total, total, arg);
    }
}

/* The walk's end is known now: all of it is done. */
static void progress_done(uint64_t walked)
{
    pthread_mutex_lock(&progress_mu);
    rvm_progress_fn fn = progress_fn;
    void *arg = progress_arg;
    pthread_mutex_unlock(&progress_mu);
    if (fn)
        fn(walked, walked, arg);
}

/*
 * Write-back while the walk goes on: after each window a thread asks the
 * kernel to start writing the segments' dirty pages, so that the disk
 * writes them while the walk reads and applies the next windows, and the
 * sync at the end waits for the last window only.  Its own thread, as
 * starting the write-back of scattered pages waits for the disk's queue.
 * For truncation only: recovery returns before its segments are synced,
 * and its walk is faster with the disk left to the log's reads.
 */
struct fd_list {
    size_t n;
    int fd[];
};

static void writeback_run(void *arg, void *msg)
{
    (void)arg;
    struct fd_list *l = msg;
    for (size_t i = 0; i < l->n; i++)
        sync_file_range(l->fd[i], 0, 0, SYNC_FILE_RANGE_WRITE);
    free(l);
}

/* Ask for the write-back of the touched segments (those with a descriptor). */
static void writeback_kick(struct worker *wb, const struct touched *t)
{
    if (!wb->running && worker_start(wb, "rvm-recwrite", writeback_run, NULL) < 0)
        return;
    struct fd_list *l = malloc(sizeof *l + t->n * sizeof l->fd[0]);
    if (!l)
        return;
    l->n = 0;
    for (size_t i = 0; i < t->n; i++) {
        int fd = t->v[i]->io->fd ? t->v[i]->io->fd(t->v[i]->file) : -1;
        if (fd >= 0)
            l->fd[l->n++] = fd;
    }
    free(worker_post(wb, l));
}

int log_apply_walk(struct log_scan *s, uint64_t *n_applied, uint64_t *n_skipped,
                   struct seg ***unsynced, size_t *n_unsynced)
{
    uint64_t start = s->pos;
    struct touched t = {0};
    struct window w = {0};
    struct worker wb = {0};
    struct bounce bounce = {0};
    const unsigned char *rec;
    size_t len;
    int rc;
    *n_applied = 0;
    *n_skipped = 0;
    if (s->buf_want < WINDOW_BYTES)
        s->buf_want = WINDOW_BYTES;
    for (;;) {
        if (w.n && !log_scan_buffered(s)) {
            if ((rc = window_apply(&w, &t, n_skipped, unsynced ? NULL : &bounce)) < 0)
                break;
            /* A walk whose segments are synced later (recovery) leaves
             * the disk to its reads. */
            if (!unsynced)
                writeback_kick(&wb, &t);
            progress(s, start);
        }
        if ((rc = log_scan_next(s, &rec, &len)) != 1)
            break;
        if ((rc = window_add(&w, rec)) < 0)
            break;
        (*n_applied)++;
    }
    if (rc == 0 && w.n)
        rc = window_apply(&w, &t, n_skipped, unsynced ? NULL : &bounce);
    if (rc == 0)
        progress_done(s->pos - start);
    free(worker_stop(&wb));
    free(w.recs);
    free(bounce.buf);
    if (rc == 0 && unsynced) {
        pthread_mutex_lock(&rvm.seg_mu);
        for (size_t i = 0; i < t.n; i++)
            t.v[i]->refs++;
        pthread_mutex_unlock(&rvm.seg_mu);
        *unsynced = t.v;
        *n_unsynced = t.n;
        return 0;
    }
    /* Durability point: after these syncs the applied records are in the
     * segments, and only then may the caller free their log space. */
    for (size_t i = 0; rc == 0 && i < t.n; i++)
        rc = t.v[i]->io->sync(t.v[i]->file);
    free(t.v);
    return rc;
}
