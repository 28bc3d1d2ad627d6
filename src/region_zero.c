/*
 * Zero pages in private regions (rvm_zero_pages) and dropping private
 * copies (rvm_release_pages, region_release_clean).
 *
 * The first write to a page of a private file mapping reads the file's
 * page into the page cache (clearing it, for a hole) and then copies it:
 * for a file that grows, two passes over every page before the data goes
 * in, a third of the daemon's CPU under sustained appends.  A caller that
 * knows some bytes to be zero in memory gives them anonymous zero pages
 * instead.  Such pages are no longer backed by the file, so dropping
 * their copies with MADV_DONTNEED would leave zeros where the file has
 * the committed bytes: there the file is mapped again.  rvm_recycle_pages
 * keeps those pages (page_pool.c) for the next rvm_zero_pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "rvm_internal.h"
#include "txn.h"

/* Add [lo, hi) to the exact spans, joined with those it touches; left
 * out when there is no room. */
static void zspan_add(struct region *r, size_t lo, size_t hi)
{
    int i = 0, j;
    while (i < r->nzspans && r->zspans[i].hi < lo)
        i++;
    for (j = i; j < r->nzspans && r->zspans[j].lo <= hi; j++) {
        lo = r->zspans[j].lo < lo ? r->zspans[j].lo : lo;
        hi = r->zspans[j].hi > hi ? r->zspans[j].hi : hi;
    }
    /* spans [i, j) are replaced by one */
    if (i == j && r->nzspans == ZSPANS_MAX)
        return;
    memmove(&r->zspans[i + 1], &r->zspans[j], (size_t)(r->nzspans - j) * sizeof(r->zspans[0]));
    r->nzspans -= j - i - 1;
    r->zspans[i].lo = lo;
    r->zspans[i].hi = hi;
}

/* [lo, hi) is the file's again, or unknown. */
static void zspan_cut(struct region *r, size_t lo, size_t hi)
{
    for (int i = 0; i < r->nzspans; i++) {
        size_t a = r->zspans[i].lo, b = r->zspans[i].hi;
        if (b <= lo || a >= hi)
            continue;
        if (a < lo && b > hi) {
            r->zspans[i].hi = lo;
            if (r->nzspans < ZSPANS_MAX) { /* else the right part is left out */
                memmove(&r->zspans[i + 2], &r->zspans[i + 1],
                        (size_t)(r->nzspans - i - 1) * sizeof(r->zspans[0]));
                r->zspans[i + 1].lo = hi;
                r->zspans[i + 1].hi = b;
                r->nzspans++;
            }
            return;
        }
        if (a < lo) {
            r->zspans[i].hi = lo;
        } else if (b > hi) {
            r->zspans[i].lo = hi;
        } else {
            memmove(&r->zspans[i], &r->zspans[i + 1],
                    (size_t)(r->nzspans - i - 1) * sizeof(r->zspans[0]));
            r->nzspans--;
            i--;
        }
    }
}

struct moved {
    size_t lo[ZSPANS_MAX], hi[ZSPANS_MAX];
    int n;
};

/* Move the zero pages of [a, b) to the pool, the exact spans only (the
 * hull may hold file pages), noting each chunk in *m. */
static void zspan_pool(struct region *r, size_t a, size_t b, struct moved *m)
{
    m->n = 0;
    for (int i = 0; i < r->nzspans; i++) {
        size_t x = r->zspans[i].lo > a ? r->zspans[i].lo : a;
        size_t y = r->zspans[i].hi < b ? r->zspans[i].hi : b;
        if (x >= y)
            continue;
        size_t got = page_pool_put(r->vmaddr + x, y - x);
        if (got) {
            m->lo[m->n] = x;
            m->hi[m->n] = x + got;
            m->n++;
        }
        if (got < y - x)
            break; /* the rest are freed by the mapping of the file */
    }
}

/* Undo zspan_pool: the chunks back where they came from, last first (the
 * pool is a stack). */
static int zspan_unpool(struct region *r, const struct moved *m)
{
    for (int k = m->n - 1; k >= 0; k--) {
        size_t len = m->hi[k] - m->lo[k];
        if (page_pool_take(r->vmaddr + m->lo[k], len, false) != len)
            return -EFAULT;
    }
    return 0;
}

/* Map the segment file again over region offsets [a, b); recycle: the
 * zero pages there go to the pool first. */
static int remap_file(struct region *r, size_t a, size_t b, bool recycle)
{
    int fd = open(r->seg->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    /* A different file under the same name would show other bytes. */
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_dev != r->seg->dev ||
        (uint64_t)st.st_ino != r->seg->ino) {
        rc = -ESTALE;
    } else {
        struct moved m = {.n = 0};
        if (recycle)
            zspan_pool(r, a, b, &m);
        if (mmap(r->vmaddr + a, b - a, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_NORESERVE | MAP_FIXED, fd,
                 (off_t)(r->offset + a)) == MAP_FAILED) {
            rc = -errno;
            /* The pages hold the bytes: back where they were.  (A move
             * that stopped half way left zeros that only this mapping
             * would have covered: then only the caller's promise that the
             * file holds the bytes is left.) */
            if (zspan_unpool(r, &m) < 0)
                rc = -EFAULT;
        }
    }
    close(fd);
    return rc;
}

int region_drop(struct region *r, size_t lo, size_t hi, bool recycle)
{
    size_t a = lo > r->zero_lo ? lo : r->zero_lo;
    size_t b = hi < r->zero_hi ? hi : r->zero_hi;
    /* While regions are armed for auto transactions every page is
     * write-protected; the file mapped again here would not be, and a
     * later auto write there would be neither caught nor logged. */
    if (a < b && auto_armed())
        return -EPERM;
    if (a < b) {
        int rc = remap_file(r, a, b, recycle);
        if (rc < 0)
            return rc; /* the anonymous pages stay: they hold the bytes */
        if (a == r->zero_lo)
            r->zero_lo = b;
        if (b == r->zero_hi)
            r->zero_hi = a;
        if (r->zero_lo >= r->zero_hi)
            r->zero_lo = r->zero_hi = 0;
        zspan_cut(r, a, b);
    } else {
        a = b = hi;
    }
    if (lo < a && madvise(r->vmaddr + lo, a - lo, MADV_DONTNEED) < 0)
        return -errno;
    if (b < hi && madvise(r->vmaddr + b, hi - b, MADV_DONTNEED) < 0)
        return -errno;
    return 0;
}

/* The private region holding the whole pages of [addr, addr + len), as
 * region offsets [*lo, *hi); regions_lock held. */
static rvm_return_t page_span(void *addr, rvm_length_t len, struct region **out,
                              size_t *lo, size_t *hi)
{
    struct region *r = len ? region_find(addr, len) : NULL;
    if (!r)
        return RVM_ENOT_MAPPED;
    if (!r->private_map)
        return RVM_EMODE;
    size_t ps = rvm_page_size();
    size_t off = (size_t)((char *)addr - r->vmaddr);
    *lo = (off + ps - 1) & ~(ps - 1);
    *hi = (off + len) & ~(ps - 1);
    *out = r;
    return RVM_SUCCESS;
}

/* Runs op on the page span of [addr, addr + len) with regions_lock held for
 * writing: both operations replace mappings under the region's readers. */
static rvm_return_t page_op(void *addr, rvm_length_t len,
                            rvm_return_t (*op)(struct region *, size_t, size_t))
{
    rvm_return_t ret = rvm_check_init();
    if (ret)
        return ret;
    struct region *r;
    size_t lo, hi;
    pthread_rwlock_wrlock(&rvm.regions_lock);
    ret = page_span(addr, len, &r, &lo, &hi);
    if (ret == RVM_SUCCESS)
        ret = op(r, lo, hi);
    pthread_rwlock_unlock(&rvm.regions_lock);
    return ret;
}

static rvm_return_t zero_span(struct region *r, size_t lo, size_t hi)
{
    /* New pages would not be write-protected. */
    if (auto_armed())
        return RVM_EMODE;
    if (lo == hi)
        return RVM_SUCCESS;
    /* The span grows first: if the mapping below fails half way, some pages
     * may be anonymous already. */
    if (r->zero_lo == r->zero_hi) {
        r->zero_lo = lo;
        r->zero_hi = hi;
    } else {
        r->zero_lo = lo < r->zero_lo ? lo : r->zero_lo;
        r->zero_hi = hi > r->zero_hi ? hi : r->zero_hi;
    }
    __atomic_store_n(&r->dirty, true, __ATOMIC_RELAXED);
    /* A failed take may leave a hole after the pages it moved: the
     * mapping below fills it. */
    size_t got = page_pool_take(r->vmaddr + lo, hi - lo, true);
    if (got < hi - lo &&
        mmap(r->vmaddr + lo + got, hi - lo - got, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED | MAP_POPULATE,
             -1, 0) == MAP_FAILED) {
        rvm_set_errmsg("cannot map zero pages: %s", strerror(errno));
        return RVM_ENO_MEMORY;
    }
    zspan_add(r, lo, hi);
    return RVM_SUCCESS;
}

static rvm_return_t drop_span(struct region *r, size_t lo, size_t hi, bool recycle)
{
    int rc = lo < hi ? region_drop(r, lo, hi, recycle) : 0;
    if (rc == -EPERM) {
        rvm_set_errmsg("zero pages cannot be dropped while regions are armed for auto transactions");
        return RVM_EMODE;
    }
    if (rc < 0) {
        rvm_set_errmsg("cannot drop private pages: %s", strerror(-rc));
        return RVM_EIO;
    }
    return RVM_SUCCESS;
}

static rvm_return_t release_span(struct region *r, size_t lo, size_t hi)
{
    return drop_span(r, lo, hi, false);
}

static rvm_return_t recycle_span(struct region *r, size_t lo, size_t hi)
{
    return drop_span(r, lo, hi, true);
}

rvm_return_t rvm_zero_pages(void *addr, rvm_length_t len)
{
    return page_op(addr, len, zero_span);
}

rvm_return_t rvm_release_pages(void *addr, rvm_length_t len)
{
    return page_op(addr, len, release_span);
}

rvm_return_t rvm_recycle_pages(void *addr, rvm_length_t len)
{
    return page_op(addr, len, recycle_span);
}
