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
 * the committed bytes: there the file is mapped again.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "rvm_internal.h"
#include "txn.h"

/* Map the segment file again over region offsets [a, b). */
static int remap_file(struct region *r, size_t a, size_t b)
{
    int fd = open(r->seg->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int rc = 0;
    /* A different file under the same name would show other bytes. */
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_dev != r->seg->dev ||
        (uint64_t)st.st_ino != r->seg->ino)
        rc = -ESTALE;
    else if (mmap(r->vmaddr + a, b - a, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_NORESERVE | MAP_FIXED, fd,
                  (off_t)(r->offset + a)) == MAP_FAILED)
        rc = -errno;
    close(fd);
    return rc;
}

int region_drop(struct region *r, size_t lo, size_t hi)
{
    size_t a = lo > r->zero_lo ? lo : r->zero_lo;
    size_t b = hi < r->zero_hi ? hi : r->zero_hi;
    if (a < b) {
        int rc = remap_file(r, a, b);
        if (rc < 0)
            return rc; /* the anonymous pages stay: they hold the bytes */
        if (a == r->zero_lo)
            r->zero_lo = b;
        if (b == r->zero_hi)
            r->zero_hi = a;
        if (r->zero_lo >= r->zero_hi)
            r->zero_lo = r->zero_hi = 0;
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
    if (mmap(r->vmaddr + lo, hi - lo, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED | MAP_POPULATE,
             -1, 0) == MAP_FAILED) {
        rvm_set_errmsg("cannot map zero pages: %s", strerror(errno));
        return RVM_ENO_MEMORY;
    }
    return RVM_SUCCESS;
}

static rvm_return_t release_span(struct region *r, size_t lo, size_t hi)
{
    int rc = lo < hi ? region_drop(r, lo, hi) : 0;
    if (rc < 0) {
        rvm_set_errmsg("cannot drop private pages: %s", strerror(-rc));
        return RVM_EIO;
    }
    return RVM_SUCCESS;
}

rvm_return_t rvm_zero_pages(void *addr, rvm_length_t len)
{
    return page_op(addr, len, zero_span);
}

rvm_return_t rvm_release_pages(void *addr, rvm_length_t len)
{
    return page_op(addr, len, release_span);
}

rvm_return_t rvm_commit_mark(uint64_t *mark)
{
    rvm_return_t ret = rvm_check_init();
    if (ret)
        return ret;
    if (!mark)
        return RVM_ERANGE;
    *mark = rvm.log ? log_commit_mark(rvm.log) : 0;
    return RVM_SUCCESS;
}

rvm_bool_t rvm_mark_applied(uint64_t mark)
{
    if (rvm_check_init() != RVM_SUCCESS || !rvm.log)
        return rvm_false;
    return log_mark_applied(rvm.log, mark) ? rvm_true : rvm_false;
}
