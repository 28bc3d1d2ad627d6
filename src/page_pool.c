/*
 * A pool of anonymous pages kept for rvm_zero_pages (rvm_recycle_pages
 * fills it).
 *
 * Why: a page the process has not had before is dear on the virtual
 * machines this runs on (the host hands it out and clears it; the guest
 * reports freed memory back): making fresh zero pages ran at 3.4 GB/s,
 * half of rvmfs's request thread under sustained appends, where clearing
 * pages it already has runs at 25 GB/s and more.
 *
 * The pool is a stack of chunks in a stretch of address space reserved
 * PROT_NONE, each chunk pages moved in by one call (mremap, no copy),
 * taken from the top.  Moves use MREMAP_DONTUNMAP, which leaves an empty
 * mapping behind instead of a hole.  Some kernels unmap a move's
 * destination before they find that the move cannot be done, and since
 * 6.17 a move may stop half way: after any failed move into the stretch
 * its hole is filled again where it can be, and the pool takes no more
 * pages; its stretch is then never unmapped as a whole (another mapping
 * could have taken a hole), only its chunks.  A hole in a region is the
 * caller's to fill.
 *
 * Every call with regions_lock held for writing.
 */
#include <string.h>
#include <sys/mman.h>

#include "rvm_internal.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define POOL_MAX ((size_t)128 << 20) /* bytes of pages kept at most */
#define POOL_CHUNKS 64

static struct {
    char *base;  /* POOL_MAX of address space, reserved at the first put */
    bool broken; /* a hole in it was taken: no more moves, no munmap */
    struct { char *addr; size_t len; } chunk[POOL_CHUNKS];
    int n;
} pool;

static char *pool_top(void)
{
    return pool.n ? pool.chunk[pool.n - 1].addr + pool.chunk[pool.n - 1].len : pool.base;
}

static bool move(void *from, size_t len, void *to)
{
    return mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, to) !=
           MAP_FAILED;
}

/* After a failed move into the stretch: its destination may be a hole,
 * whole or in part (since 6.17 a move may stop half way), which is
 * filled again where it can be; and the pool stops, since what is left of
 * the stretch is no longer known. */
static void reserve_again(char *to, size_t len)
{
    pool.broken = true;
    void *p = mmap(to, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
                   MAP_FIXED_NOREPLACE, -1, 0);
    if (p != MAP_FAILED && p != to)
        munmap(p, len); /* a kernel without MAP_FIXED_NOREPLACE put it elsewhere */
}

/*
 * Part of a span too long for the room left is taken all the same: drops
 * come 64 MiB at a time in rvmfs, and refusing whole spans left the pool
 * short while appends made fresh pages.
 */
size_t page_pool_put(char *addr, size_t len)
{
    if (pool.broken || len == 0)
        return 0;
    if (!pool.base) {
        void *b = mmap(NULL, POOL_MAX, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (b == MAP_FAILED)
            return 0;
        pool.base = b;
    }
    char *to = pool_top();
    size_t room = (size_t)(pool.base + POOL_MAX - to);
    if (pool.n == POOL_CHUNKS || room == 0)
        return 0;
    if (len > room)
        len = room; /* both whole pages: the stretch is filled page by page */
    if (!move(addr, len, to)) {
        reserve_again(to, len);
        return 0;
    }
    pool.chunk[pool.n].addr = to;
    pool.chunk[pool.n].len = len;
    pool.n++;
    return len;
}

size_t page_pool_take(char *dest, size_t len, bool zero)
{
    size_t done = 0;
    /* Even when broken: the chunks are whole and ours. */
    while (done < len && pool.n) {
        size_t *clen = &pool.chunk[pool.n - 1].len;
        size_t piece = len - done < *clen ? len - done : *clen;
        char *from = pool.chunk[pool.n - 1].addr + *clen - piece;
        /* Cleared where they are, so that dest shows its old bytes or
         * zeros, never a page's earlier life. */
        if (zero)
            memset(from, 0, piece);
        if (!move(from, piece, dest + done))
            break; /* dest may have a hole: the caller maps it */
        *clen -= piece;
        if (*clen == 0)
            pool.n--;
        done += piece;
    }
    return done;
}

void page_pool_free(void)
{
    if (pool.base && !pool.broken)
        munmap(pool.base, POOL_MAX);
    else
        for (int i = 0; i < pool.n; i++)
            munmap(pool.chunk[i].addr, pool.chunk[i].len);
    memset(&pool, 0, sizeof(pool));
}
