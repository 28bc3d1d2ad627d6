/*
 * seg.c - one file's segment: its librvm region and the bytes in it.
 *
 * Each regular file is the segment seg/<ino>, mapped whole as one region
 * (RVM_MAP_PRIVATE: a private file mapping read lazily).  The region
 * starts with the header page whose size field is the file's logical size,
 * so size changes are ranges of the same transaction as the bytes.
 *
 * Capacity: the region covers more address space than the file needs,
 * max(256 MiB, 2 * size), over a sparse backing file.  Outside a
 * transaction a file that outgrows it is remapped bigger (flush, truncate
 * the log, unmap, map).  Inside a transaction a region with ranges cannot
 * be unmapped, so a write past the capacity fails with EFBIG: the
 * documented limit of one transaction's growth.
 *
 * Invariant: bytes past the logical size are zero, in memory and (after
 * recovery) on disk, so extending a file never has to zero anything.
 * Shrinking zeroes them in the same transaction (seg_resize), except for
 * a big shrink outside any transaction, which punches them out of the
 * backing file instead of logging zeros (seg_shrink).
 *
 * Memory: the region is read lazily, page by page, so a segment larger
 * than memory costs only the pages touched.  Every page written gets a
 * private copy, which librvm drops after a truncation only when nothing of
 * the segment is left in the log, a moment that never comes while the file
 * is written without pause.  So the daemon counts the pages it writes
 * (n->dirty), and between two transactions of a file past SEG_DIRTY_MAX
 * (seg_idle) hands those pages to librvm's own truncation: once it has
 * applied every commit made until then (rvm_mark_applied), the copies are
 * dropped, with no force or truncation on the writer's path.  Only when
 * another SEG_DIRTY_MAX is written before that does the writer flush,
 * truncate and drop them itself.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SEG_MAX_CAP (1ull << 40)
#define DIFF_GAP 32 /* equal bytes that may sit inside one logged range */
#define SEG_DIRTY_MAX (64ull << 20)   /* per file */
#define SEG_DIRTY_ALL (256ull << 20)  /* all files together */

static atomic_uint_fast64_t dirty_all; /* sum of every node's dirty */
static atomic_int rel_files;           /* nodes with pages handed off */
/* user.rvm.stat: hand-offs, their drops, and drops the writer made */
static atomic_uint_fast64_t n_handoffs, n_handoff_drops, n_writer_drops;

void seg_copies_stats(struct seg_copies *c)
{
    c->bytes = atomic_load(&dirty_all);
    c->handoffs = atomic_load(&n_handoffs);
    c->dropped = atomic_load(&n_handoff_drops);
    c->dropped_by_writer = atomic_load(&n_writer_drops);
}

int rvm_errno(rvm_return_t rc)
{
    switch (rc) {
    case RVM_SUCCESS:
        return 0;
    case RVM_ENO_MEMORY:
        return ENOMEM;
    case RVM_ETOO_BIG:
    case RVM_ELOG:
        return ENOSPC;
    case RVM_ETID:
        return ENOENT;
    case RVM_EMODE:
        return EINVAL;
    case RVM_EVM_OVERLAP:
    case RVM_EOVERLAP:
        return EBUSY;
    default:
        return EIO;
    }
}

static uint64_t page_up(uint64_t x)
{
    uint64_t p = (uint64_t)rvm_page_size();
    return (x + p - 1) & ~(p - 1);
}

static struct seg_hdr *hdr(const struct node *n)
{
    return (struct seg_hdr *)n->base;
}

uint64_t seg_size(const struct node *n)
{
    if (!n->base)
        return 0;
    return __atomic_load_n(&hdr(n)->size, __ATOMIC_ACQUIRE);
}

static void rel_clear(struct node *n)
{
    if (n->rel_bytes)
        atomic_fetch_sub(&rel_files, 1);
    n->rel_lo = n->rel_hi = n->rel_bytes = 0;
    n->rel_remark = false;
}

/* The mapping is new or gone: no private copies left. */
static void dirty_reset(struct node *n)
{
    atomic_fetch_sub(&dirty_all, n->dirty + n->rel_bytes);
    n->dirty = n->dirty_lo = n->dirty_hi = 0;
    rel_clear(n);
}

/* The pages handed to truncation count as written again, to be dropped
 * by the writer itself (dirty_all counts them all along). */
static void rel_fold(struct node *n)
{
    if (n->rel_bytes == 0)
        return;
    if (n->dirty == 0 || n->rel_lo < n->dirty_lo)
        n->dirty_lo = n->rel_lo;
    if (n->dirty == 0 || n->rel_hi > n->dirty_hi)
        n->dirty_hi = n->rel_hi;
    n->dirty += n->rel_bytes;
    rel_clear(n);
}

/* Region bytes [a, b) are about to be written: count their pages. */
static void dirty_note(struct node *n, uint64_t a, uint64_t b)
{
    uint64_t p = (uint64_t)rvm_page_size();
    a &= ~(p - 1);
    b = (b + p - 1) & ~(p - 1);
    /* A page handed to truncation gets bytes that the mark does not
     * cover: the copies wait for a mark past this transaction, taken
     * once it has ended (seg_idle). */
    if (n->rel_bytes && a < n->rel_hi && b > n->rel_lo)
        n->rel_remark = true;
    if (n->dirty == 0 || a < n->dirty_lo)
        n->dirty_lo = a;
    if (n->dirty == 0 || b > n->dirty_hi)
        n->dirty_hi = b;
    n->dirty += b - a; /* pages written twice count twice: an upper bound */
    atomic_fetch_add(&dirty_all, b - a);
}

static int seg_map_cap(struct node *n, uint64_t cap)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/seg/%s", fs.store, n->segname);
    rvm_init_region(&n->region);
    n->region.data_dev = strdup(path); /* kept while mapped */
    if (!n->region.data_dev)
        return -ENOMEM;
    n->region.offset = RVM_MK_OFFSET(0, 0);
    n->region.length = (rvm_length_t)(SEG_HDR + cap);
    n->region.vmaddr = NULL;
    rvm_return_t rc = rvm_map(&n->region, NULL);
    if (rc != RVM_SUCCESS) {
        free(n->region.data_dev);
        n->region.data_dev = NULL;
        say("cannot map segment %s: %s %s\n", path,
                rvm_return(rc), rvm_errmsg());
        return -rvm_errno(rc);
    }
    n->base = n->region.vmaddr;
    n->cap = cap;
    dirty_reset(n);
    /* The region is touched a few bytes at a time (diffs, headers): no
     * readahead, which would fill the page cache with the sparse holes. */
    madvise(n->base, SEG_HDR + cap, MADV_RANDOM);
    return 0;
}

/* Map the segment of a regular-file node.  Called before the node is
 * visible, or with maplock write-held. */
int seg_map(struct node *n)
{
    struct stat st;
    struct seg_hdr h = {0, 0, 0};
    int fd = openat(fs.seg_fd, n->segname, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || st.st_ino != n->bino) {
        close(fd);
        return -ESTALE;
    }
    ssize_t got = pread(fd, &h, sizeof(h), 0);
    if (got < (ssize_t)sizeof(h) || (h.magic == 0 && h.version == 0)) {
        /* A header that never reached the disk (the file is new, or a
         * power loss took the header but not the records that recovery
         * applied).  Log records never cover the magic and version, so
         * writing them directly is safe; the size stays what it is. */
        if (got < (ssize_t)sizeof(h))
            memset(&h, 0, sizeof(h));
        h.magic = SEG_MAGIC;
        h.version = SEG_VERSION;
        if (pwrite(fd, &h, sizeof(h), 0) != sizeof(h)) {
            close(fd);
            return -EIO;
        }
    } else if (h.magic != SEG_MAGIC) {
        close(fd);
        return -EIO; /* not a segment */
    }
    close(fd);
    uint64_t cap = SEG_MIN_CAP;
    if (h.size * 2 > cap)
        cap = h.size * 2;
    if (st.st_size > (off_t)SEG_HDR && (uint64_t)st.st_size - SEG_HDR > cap)
        cap = (uint64_t)st.st_size - SEG_HDR;
    cap = page_up(cap);
    int rc = seg_map_cap(n, cap);
    if (rc < 0)
        return rc;
    /* The log may have held a bigger size than the header on disk. */
    uint64_t size = seg_size(n);
    if (size > n->cap) {
        rvm_unmap(&n->region);
        free(n->region.data_dev);
        n->region.data_dev = NULL;
        n->base = NULL;
        rc = seg_map_cap(n, page_up(size * 2));
    }
    return rc;
}

void seg_unmap(struct node *n)
{
    if (!n->base)
        return;
    rvm_return_t rc = rvm_unmap(&n->region);
    if (rc != RVM_SUCCESS &&
        !(rc == RVM_EUNCOMMIT && atomic_load(&fs.dropped_no_restore)))
        say("unmap of segment %s failed: %s\n",
                n->segname, rvm_return(rc));
    free(n->region.data_dev);
    n->region.data_dev = NULL;
    n->base = NULL;
    dirty_reset(n);
}

/* Drop the private copies of [p, p + len), keeping the zero pages of
 * appends for the next ones (rvm_recycle_pages): readers are kept out
 * meanwhile, since the span reads zeros for a moment.  wait false: not
 * while readers hold the file (1), for the lock prefers readers and the
 * caller holds n->mu meanwhile.  0 dropped, -1 the copies stay. */
static int drop_copies(struct node *n, char *p, size_t len, bool wait)
{
    if (!wait && pthread_rwlock_trywrlock(&n->maplock) != 0)
        return 1;
    if (wait)
        pthread_rwlock_wrlock(&n->maplock);
    rvm_return_t rc = rvm_recycle_pages(p, len);
    pthread_rwlock_unlock(&n->maplock);
    if (rc != RVM_SUCCESS)
        return -1;
    madvise(p, len, MADV_RANDOM); /* a new mapping: see seg_map_cap */
    return 0;
}

void seg_release_applied(struct node *n)
{
    if (!n->base)
        return;
    if (n->rel_remark && rvm_commit_mark(&n->rel_mark) != RVM_SUCCESS)
        rel_fold(n);
    n->rel_remark = false;
    if (!n->rel_bytes || !rvm_mark_applied(n->rel_mark))
        return;
    /* Every byte committed there is in the file now, and nothing was
     * written there since (dirty_note); with readers of the file now, a
     * later call drops them. */
    int rc = drop_copies(n, n->base + n->rel_lo, n->rel_hi - n->rel_lo, false);
    if (rc == 0) {
        atomic_fetch_sub(&dirty_all, n->rel_bytes);
        rel_clear(n);
        atomic_fetch_add(&n_handoff_drops, 1);
    } else if (rc < 0) {
        rel_fold(n); /* the copies stay: seg_idle tries again */
    }
}

bool seg_release_pending(void)
{
    return atomic_load(&rel_files) > 0;
}

/*
 * Caller holds n->mu and knows that the file is in no active transaction
 * (so no one can change its memory until it lets go): drop the copies
 * truncation has applied, and if the file has written enough pages, hand
 * them to truncation (a commit mark).
 *
 * If pages handed off are still waiting when SEG_DIRTY_MAX more are
 * written, the writer flushes and truncates itself: after the flush every
 * committed byte of the file is durable in the log, and after the
 * truncation in the segment file, so memory and file agree and a dropped
 * page reads back the same bytes.  Readers (maplock only) wait while
 * pages are dropped (drop_copies).
 */
void seg_idle(struct node *n)
{
    if (!n->base)
        return;
    seg_release_applied(n);
    if (n->dirty == 0 ||
        (n->dirty < SEG_DIRTY_MAX && atomic_load(&dirty_all) < SEG_DIRTY_ALL))
        return;
    /* The header page is written by every growth: it stays, and the rest
     * waits for librvm's truncation, which the log's threshold starts. */
    uint64_t lo = n->dirty_lo > SEG_HDR ? n->dirty_lo : SEG_HDR;
    if (n->rel_bytes == 0 && n->dirty_hi > lo &&
        rvm_commit_mark(&n->rel_mark) == RVM_SUCCESS) {
        atomic_fetch_add(&rel_files, 1);
        atomic_fetch_add(&n_handoffs, 1);
        n->rel_lo = lo;
        n->rel_hi = n->dirty_hi;
        n->rel_bytes = n->dirty;
        n->dirty = n->dirty_lo = n->dirty_hi = 0;
        return;
    }
    /* Truncation is behind (or rewrites keep moving the mark): this
     * writer waits for it, and the memory the copies hold stays bounded. */
    rel_fold(n);
    /* Zero pages of appends (rvm_zero_pages) are not the file's: librvm
     * maps the file again over them. */
    char *p = n->base + n->dirty_lo;
    size_t len = n->dirty_hi - n->dirty_lo;
    if (rvm_flush() != RVM_SUCCESS || rvm_truncate() != RVM_SUCCESS ||
        (len && drop_copies(n, p, len, true) != 0)) {
        /* Keep the copies (they hold the only committed bytes that the
         * file lacks); try again after half as much writing. */
        atomic_fetch_sub(&dirty_all, n->dirty);
        n->dirty /= 2;
        atomic_fetch_add(&dirty_all, n->dirty);
        return;
    }
    dirty_reset(n);
    atomic_fetch_add(&n_writer_drops, 1);
}

/* Make room for `end` data bytes.  Caller holds n->mu and knows that the
 * file is in no active transaction. */
int seg_reserve(struct node *n, uint64_t end)
{
    if (end <= n->cap)
        return 0;
    if (end > SEG_MAX_CAP)
        return -EFBIG;
    uint64_t cap = n->cap * 2;
    while (cap < end)
        cap *= 2;
    if (cap > SEG_MAX_CAP)
        cap = SEG_MAX_CAP;
    pthread_rwlock_wrlock(&n->maplock);
    /* Every committed byte of this segment reaches the file before the
     * old mapping goes: the new one reads it back from there. */
    rvm_return_t rc = rvm_flush();
    if (rc == RVM_SUCCESS)
        rc = rvm_truncate();
    if (rc == RVM_SUCCESS)
        rc = rvm_unmap(&n->region);
    int err = -rvm_errno(rc);
    if (rc == RVM_SUCCESS) {
        uint64_t old = n->cap;
        free(n->region.data_dev);
        n->region.data_dev = NULL;
        n->base = NULL;
        err = seg_map_cap(n, cap);
        if (err < 0 && seg_map_cap(n, old) < 0)
            n->base = NULL; /* leaves the file unusable: reported by I/O */
    }
    pthread_rwlock_unlock(&n->maplock);
    if (!n->base)
        return -EIO;
    return err;
}

static int set_size(struct node *n, rvm_tid_t *tid, uint64_t size,
                    uint64_t *ranges, uint64_t *bytes)
{
    dirty_note(n, 0, sizeof(struct seg_hdr));
    rvm_return_t rc = rvm_set_range(tid, &hdr(n)->size, sizeof(uint64_t));
    if (rc != RVM_SUCCESS)
        return -rvm_errno(rc);
    __atomic_store_n(&hdr(n)->size, size, __ATOMIC_RELEASE);
    (*ranges)++;
    *bytes += sizeof(uint64_t);
    return 0;
}

/* Log [dst+start, dst+start+run) and copy src's bytes there (src NULL:
 * zeros).  Pages are counted for seg_idle below region offset `counted`;
 * *noted is how far they are counted already (runs come in order, often
 * several to a page: each is counted once). */
static int run_apply(struct node *n, rvm_tid_t *tid, char *dst, const char *src,
                     size_t start, size_t run, uint64_t *noted, uint64_t counted,
                     uint64_t *ranges, uint64_t *bytes)
{
    rvm_return_t rc = rvm_set_range(tid, dst + start, run);
    if (rc != RVM_SUCCESS)
        return -rvm_errno(rc);
    uint64_t a = (uint64_t)(dst + start - n->base) & ~(uint64_t)4095;
    uint64_t b = (uint64_t)(dst + start + run - n->base);
    if (a < *noted)
        a = *noted;
    if (b > counted)
        b = counted;
    if (a < b) {
        dirty_note(n, a, b);
        *noted = (b + 4095) & ~(uint64_t)4095;
    }
    if (src)
        memcpy(dst + start, src + start, run);
    else
        memset(dst + start, 0, run);
    (*ranges)++;
    *bytes += run;
    return 0;
}

/* Log and copy the bytes of [dst, dst+len) that differ from src (src NULL:
 * from zero), one range per run of differences.  Pages written are
 * counted for seg_idle, except from region offset `counted` on. */
static int diff_apply(struct node *n, rvm_tid_t *tid, char *dst, const char *src, size_t len,
                      uint64_t *ranges, uint64_t *bytes, uint64_t counted)
{
    static const char zeros[64];
    size_t i = 0;
    uint64_t noted = 0; /* region offset up to which pages are counted */
    while (i < len) {
        while (i + 64 <= len &&
               memcmp(dst + i, src ? src + i : zeros, 64) == 0)
            i += 64;
        while (i < len && dst[i] == (src ? src[i] : 0))
            i++;
        if (i == len)
            break;
        size_t start = i, last = i;
        size_t j = i + 1;
        while (j < len && j - last <= DIFF_GAP) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            /* Eight bytes a step (a byte loop was a tenth of the daemon's
             * CPU); same runs as the byte loop: a word's differing bytes
             * are less than DIFF_GAP apart, so only its first one needs
             * the gap test. */
            if (j + 8 <= len) {
                uint64_t a, b = 0;
                memcpy(&a, dst + j, 8);
                if (src)
                    memcpy(&b, src + j, 8);
                uint64_t x = a ^ b;
                if (x) {
                    if (j + (size_t)__builtin_ctzll(x) / 8 - last > DIFF_GAP)
                        break;
                    last = j + (size_t)(63 - __builtin_clzll(x)) / 8;
                }
                j += 8;
                continue;
            }
#endif
            if (dst[j] != (src ? src[j] : 0))
                last = j;
            j++;
        }
        int rc = run_apply(n, tid, dst, src, start, last + 1 - start, &noted, counted,
                           ranges, bytes);
        if (rc < 0)
            return rc;
        i = last + 1;
    }
    return 0;
}

#define APPEND_BLOCK 4096

/*
 * diff_apply for bytes past the size, which are zero in the region: a
 * block of src with a byte not zero differs from them without a byte-wise
 * comparison (the test stops at that byte, at once for most data), so
 * runs of such blocks are logged whole, a few zero bytes with them.  An
 * all-zero block goes through diff_apply, which compares it with the
 * region and so logs nothing while the region keeps the invariant.
 * A tenth of the daemon's CPU for appends was the byte-wise diff.
 */
static int append_apply(struct node *n, rvm_tid_t *tid, char *dst, const char *src, size_t len,
                        uint64_t *ranges, uint64_t *bytes, uint64_t counted)
{
    static const char zeros[APPEND_BLOCK];
    uint64_t noted = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len) {
            size_t blk = len - j < APPEND_BLOCK ? len - j : APPEND_BLOCK;
            if (memcmp(src + j, zeros, blk) == 0)
                break;
            j += blk;
        }
        if (j > i) {
            int rc = run_apply(n, tid, dst, src, i, j - i, &noted, counted, ranges, bytes);
            if (rc < 0)
                return rc;
            i = j;
            continue;
        }
        size_t blk = len - i < APPEND_BLOCK ? len - i : APPEND_BLOCK;
        int rc = diff_apply(n, tid, dst + i, src + i, blk, ranges, bytes, counted);
        if (rc < 0)
            return rc;
        i += blk;
    }
    return 0;
}

/* Caller holds n->mu, maplock (read) and the tid; off + len <= n->cap. */
int seg_write(struct node *n, rvm_tid_t *tid, const char *buf, size_t len,
              uint64_t off, uint64_t *ranges, uint64_t *bytes)
{
    if (off + len > n->cap)
        return -EFBIG;
    uint64_t size = seg_size(n);
    if (len >= 8192 && off < size) { /* old bytes to compare: fetch at once */
        uintptr_t a = (uintptr_t)(n->base + SEG_HDR + off) & ~(uintptr_t)4095;
        uintptr_t b = (uintptr_t)(n->base + SEG_HDR + (off + len < size ? off + len : size));
        madvise((void *)a, b - a, MADV_WILLNEED);
    }
    uint64_t counted = UINT64_MAX;
    if (len >= 8192 && off + len > size) {
        /* Bytes past the size are zero, and new data will replace them:
         * fresh zero pages, made in one call, rather than copies of the
         * segment file's pages (its holes read into the page cache and
         * copied: a third of the daemon's CPU for appends). */
        uint64_t from = off > size ? off : size;
        uintptr_t a = ((uintptr_t)(n->base + SEG_HDR + from) + 4095) & ~(uintptr_t)4095;
        uintptr_t b = (uintptr_t)(n->base + SEG_HDR + off + len) & ~(uintptr_t)4095;
        /* Counted even if the data is zeros and nothing is logged, so
         * that seg_idle drops these pages too. */
        if (b > a && (rvm_zero_pages((void *)a, b - a) == RVM_SUCCESS ||
                      madvise((void *)a, b - a, MADV_POPULATE_WRITE) == 0)) {
            counted = (uint64_t)(a - (uintptr_t)n->base);
            /* With the partial page after them, which the runs from
             * `counted` on do not count either: a page handed to
             * truncation must not take bytes unnoted (seg_idle). */
            dirty_note(n, counted, SEG_HDR + off + len);
        }
    }
    /* Only bytes below the size have old values worth comparing with. */
    size_t below = off >= size ? 0 : off + len <= size ? len : (size_t)(size - off);
    int rc = diff_apply(n, tid, n->base + SEG_HDR + off, buf, below, ranges, bytes, counted);
    if (rc == 0 && below < len)
        rc = append_apply(n, tid, n->base + SEG_HDR + off + below, buf + below, len - below,
                          ranges, bytes, counted);
    if (rc == 0 && off + len > size)
        rc = set_size(n, tid, off + len, ranges, bytes);
    return rc;
}

/* Caller holds n->mu, maplock (read) and the tid; size <= n->cap. */
int seg_resize(struct node *n, rvm_tid_t *tid, uint64_t size,
               uint64_t *ranges, uint64_t *bytes)
{
    uint64_t cur = seg_size(n);
    if (size > n->cap)
        return -EFBIG;
    if (size == cur)
        return 0;
    if (size < cur) {
        int rc = diff_apply(n, tid, n->base + SEG_HDR + size, NULL, cur - size,
                            ranges, bytes, UINT64_MAX);
        if (rc < 0)
            return rc;
    }
    return set_size(n, tid, size, ranges, bytes);
}

/* Zero a segment's bytes past `size` on disk: a hole from the next page
 * on, zeros written in the last partial page.  Only while no log record
 * names the segment. */
static int trim_file(int fd, uint64_t size)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    uint64_t keep = SEG_HDR + page_up(size);
    if ((uint64_t)st.st_size > keep &&
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)keep,
                  st.st_size - (off_t)keep) < 0)
        return -errno;
    static const char zeros[4096];
    size_t tail = (size_t)(page_up(size) - size);
    if (tail && pwrite(fd, zeros, tail, (off_t)(SEG_HDR + size)) != (ssize_t)tail)
        return -EIO;
    return fsync(fd) < 0 ? -errno : 0;
}

static void marker_name(char *buf, size_t len, const char *segname)
{
    snprintf(buf, len, ".trim.%s", segname);
}

/*
 * Shrink a file by a lot without logging its bytes as zeros: commit the
 * new size, apply the log to the segments, then punch the bytes past the
 * size out of the backing file and map it afresh.  Caller holds n->mu and
 * knows that the file is in no active transaction.
 *
 * Crash safety: the new size commits atomically; a crash before the punch
 * leaves stale bytes past the size, which the marker seg/.trim.<ino>
 * (made durable first) tells the next mount to zero (seg_trim_repair).
 */
int seg_shrink(struct node *n, uint64_t size)
{
    char marker[48];
    uint64_t ranges = 0, bytes = 0;
    marker_name(marker, sizeof(marker), n->segname);
    int mfd = openat(fs.seg_fd, marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (mfd < 0)
        return -errno;
    close(mfd);
    if (fsync(fs.seg_fd) < 0) /* after this the marker survives a crash */
        return -errno;

    pthread_rwlock_wrlock(&n->maplock);
    rvm_tid_t tid;
    rvm_init_tid(&tid);
    rvm_return_t rc = rvm_begin_transaction(&tid, restore);
    int err = -rvm_errno(rc);
    if (rc == RVM_SUCCESS) {
        err = set_size(n, &tid, size, &ranges, &bytes);
        rc = err == 0 ? rvm_end_transaction(&tid, no_flush) : RVM_SUCCESS;
        if (err == 0)
            err = -rvm_errno(rc);
        if (err < 0)
            rvm_abort_transaction(&tid);
    }
    /* After the truncation the segment file holds every committed byte and
     * the log none of this segment, so the file may be written directly. */
    if (err == 0)
        err = -rvm_errno(rvm_flush());
    if (err == 0)
        err = -rvm_errno(rvm_truncate());
    if (err == 0) {
        uint64_t cap = n->cap;
        rc = rvm_unmap(&n->region);
        err = -rvm_errno(rc);
        if (err == 0) {
            free(n->region.data_dev);
            n->region.data_dev = NULL;
            n->base = NULL;
            int fd = openat(fs.seg_fd, n->segname, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
            err = fd < 0 ? -errno : trim_file(fd, size);
            if (fd >= 0)
                close(fd);
            int merr = seg_map_cap(n, cap);
            if (err == 0)
                err = merr;
        }
    }
    pthread_rwlock_unlock(&n->maplock);
    if (err == 0)
        unlinkat(fs.seg_fd, marker, 0);
    return err;
}

/* At mount, with the log empty: finish a shrink that a crash interrupted. */
void seg_trim_repair(const char *marker)
{
    const char *segname = marker + strlen(".trim.");
    int fd = openat(fs.seg_fd, segname, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        struct seg_hdr h;
        if (pread(fd, &h, sizeof(h), 0) == sizeof(h) && h.magic == SEG_MAGIC)
            trim_file(fd, h.size);
        close(fd);
    }
    unlinkat(fs.seg_fd, marker, 0);
}
