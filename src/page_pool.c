/*
 * A pool of anonymous pages kept for rvm_zero_pages.
 *
 * Why: a page the process has not had before is dear on the virtual
 * machines this runs on (the host hands it out and clears it; the guest
 * reports freed pages back): making fresh zero pages ran at 3.4 GB/s, and
 * was half the time of rvmfs's request thread under sustained appends,
 * where clearing pages it already has runs at 25 GB/s and more.  So the
 * anonymous pages of a dropped zero span (region_drop) are moved here,
 * page tables and all (mremap, no copy), and rvm_zero_pages moves them
 * back and clears them itself before it makes new ones.
 *
 * The pool is a stack of chunks in a reserved stretch of address space,
 * each chunk one mapping as it was moved in, taken from the top.  Moves
 * use MREMAP_DONTUNMAP, so that no move leaves a hole in the address
 * space, which another thread's mmap could take before it is filled.
 * Where the kernel refuses a move (an older kernel, a span of several
 * mappings), pages are freed and made new as before.
 *
 * Every call with regions_lock held for writing.
 */
#include <string.h>
#include <sys/mman.h>

#include "rvm_internal.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define POOL_MAX ((size_t)128 << 20) /* bytes of pages kept at most */
#define POOL_CHUNKS 64

static struct {
    char *base;  /* POOL_MAX of address space, PROT_NONE where unused */
    struct { char *addr; size_t len; } chunk[POOL_CHUNKS];
    int n;
} pool;

static char *pool_top(void)
{
    return pool.n ? pool.chunk[pool.n - 1].addr + pool.chunk[pool.n - 1].len : pool.base;
}

static void *move(void *from, size_t len, void *to)
{
    return mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, to);
}

bool page_pool_put(char *addr, size_t len)
{
    if (!pool.base) {
        void *b = mmap(NULL, POOL_MAX, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (b == MAP_FAILED)
            return false;
        pool.base = b;
    }
    char *to = pool_top();
    if (pool.n == POOL_CHUNKS || len == 0 || len > (size_t)(pool.base + POOL_MAX - to))
        return false;
    if (move(addr, len, to) == MAP_FAILED)
        return false;
    pool.chunk[pool.n].addr = to;
    pool.chunk[pool.n].len = len;
    pool.n++;
    return true;
}

size_t page_pool_take(char *dest, size_t len, bool zero)
{
    size_t done = 0;
    while (done < len && pool.n) {
        size_t *clen = &pool.chunk[pool.n - 1].len;
        size_t piece = len - done < *clen ? len - done : *clen;
        char *from = pool.chunk[pool.n - 1].addr + *clen - piece;
        if (move(from, piece, dest + done) == MAP_FAILED)
            break;
        /* What was left behind is an empty mapping of ours: the next
         * chunk moved in takes its place. */
        *clen -= piece;
        if (*clen == 0)
            pool.n--;
        if (zero)
            memset(dest + done, 0, piece);
        done += piece;
    }
    return done;
}

void page_pool_free(void)
{
    if (pool.base)
        munmap(pool.base, POOL_MAX);
    memset(&pool, 0, sizeof(pool));
}
