/*
 * log_img.c - the memory of commit images (struct log_img): a per-thread
 * cache of small blocks and a shared one of large blocks.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log_impl.h"
#include "rvm_internal.h"

/*
 * Images are recycled through a per-thread cache of blocks in a few size
 * classes.  A no_flush commit's image is freed by the leader of its
 * write-out, hundreds at a time and usually on the committing thread
 * itself; malloc's per-thread caches hold a handful, so without this
 * every commit went to malloc's slower bins and wrote to cold memory.
 */
struct img_block {
    struct img_block *next;     /* in the cache */
    size_t cap;                 /* bytes of the block, header included */
    _Alignas(16) struct log_img img;
};

#define IMG_CLASS_MIN 10        /* 1 KiB: smaller blocks are rounded up */
#define IMG_NCLASS 4            /* up to 8 KiB; larger images are not cached */
#define IMG_CACHE_MAX (4u << 20) /* bytes a thread keeps */

struct img_cache {
    struct img_block *c[IMG_NCLASS];
    size_t bytes;
};

/*
 * Large images (a 1 MiB write through rvmfs is one) are made on the
 * committing thread and freed by the log writer's, so a per-thread cache
 * never sees them again; malloc gave each one pages fresh from the
 * kernel (it maps such sizes, or trims them off its heaps), and touching
 * those pages cost a fault and a clear per 4 KiB: a tenth of the request
 * thread's time in sequential writes.  Block sizes go in quarter steps
 * between powers of two (at most a quarter wasted).  The cache holds
 * what streaming 1 MiB commits keep in flight: written images wait for
 * the next force (W_MAX_MIN, 32 MiB) behind a queue of up to 8 MiB;
 * with less, half of them came fresh again after each force.
 */
#define IMG_BIG_MIN 13          /* classes from 8 KiB (exclusive) ... */
#define IMG_NBIG (12 * 4)       /* ... to 32 MiB; larger are not cached */
#define IMG_BIG_MAX (48u << 20) /* bytes (block sizes) kept for all threads */

static struct {
    pthread_mutex_t mu;
    struct img_block *c[IMG_NBIG];
    size_t bytes;
} img_big = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The class of a block of at least bytes (> 8 KiB), -1 past the last;
 * *cap its size. */
static int img_big_class(size_t bytes, size_t *cap)
{
    int e = 63 - __builtin_clzll((unsigned long long)(bytes - 1)); /* 2^e < bytes <= 2^(e+1) */
    if (e < IMG_BIG_MIN || e >= IMG_BIG_MIN + IMG_NBIG / 4)
        return -1;
    size_t step = (size_t)1 << (e - 2);
    size_t q = (bytes - ((size_t)1 << e) + step - 1) / step; /* 1..4 */
    *cap = ((size_t)1 << e) + q * step;
    return (e - IMG_BIG_MIN) * 4 + (int)q - 1;
}
/* initial-exec: no __tls_get_addr call per image (a few bytes of static TLS). */
static __thread struct img_cache img_tls __attribute__((tls_model("initial-exec")));
static __thread bool img_tls_keyed __attribute__((tls_model("initial-exec")));
static pthread_key_t img_key;
static pthread_once_t img_once = PTHREAD_ONCE_INIT;

static void img_cache_drop(void *p)
{
    struct img_cache *ic = p;
    for (int k = 0; k < IMG_NCLASS; k++)
        while (ic->c[k]) {
            struct img_block *b = ic->c[k];
            ic->c[k] = b->next;
            free(b);
        }
    ic->bytes = 0;
}

static void img_key_init(void)
{
    pthread_key_create(&img_key, img_cache_drop);
}

static int img_class(size_t bytes)
{
    for (int k = 0; k < IMG_NCLASS; k++)
        if (bytes <= (size_t)1 << (IMG_CLASS_MIN + k))
            return k;
    return -1;
}

/*
 * Ask for the next cached block's lines, for writing, as far as this
 * image reaches (the next commit is likely alike).  A block was last
 * read and written by the leader that wrote its record out, often on the
 * other core: the commit's stores to it each waited for that core to
 * give up the line, and the store buffer drained at the next load that
 * could not be forwarded and at log_commit's mutex.  Fetched now, the
 * lines arrive during the application's work before the next commit.
 * PREFETCHW takes the line exclusive (PREFETCHT0 would get it shared and
 * the store would still wait); older CPUs decode it as a no-op.
 */
static inline void img_prefetch(const struct img_block *b, size_t bytes)
{
    if (!b)
        return;
    if (bytes > b->cap)
        bytes = b->cap;
    for (size_t off = 0; off < bytes; off += 64) {
#if defined(__x86_64__)
        __asm__ volatile("prefetchw %0" : : "m"(*((const char *)b + off)));
#else
        __builtin_prefetch((const char *)b + off, 1, 3);
#endif
    }
}

/* One allocation: the image, its segment list, then the record. */
struct log_img *img_alloc(size_t len, size_t nsegs)
{
    size_t segs_off = (offsetof(struct img_block, img) + sizeof(struct log_img) + 7) & ~(size_t)7;
    size_t buf_off = (segs_off + nsegs * sizeof(struct seg *) + 15) & ~(size_t)15;
    size_t need = buf_off + len;
    int k = img_class(need);
    struct img_block *b = NULL;
    size_t cap = 0;
    if (k >= 0 && (b = img_tls.c[k]) != NULL) {
        img_tls.c[k] = b->next;
        img_tls.bytes -= b->cap;
        img_prefetch(b->next, need);
    } else if (k < 0 && (k = img_big_class(need, &cap)) >= 0) {
        pthread_mutex_lock(&img_big.mu);
        if ((b = img_big.c[k]) != NULL) {
            img_big.c[k] = b->next;
            img_big.bytes -= b->cap;
        }
        pthread_mutex_unlock(&img_big.mu);
        if (!b) {
            b = malloc(cap);
            if (!b)
                return NULL;
            b->cap = cap;
        }
    } else {
        cap = k >= 0 ? (size_t)1 << (IMG_CLASS_MIN + k) : need;
        b = malloc(cap);
        if (!b)
            return NULL;
        b->cap = cap;
    }
    struct log_img *img = &b->img;
    memset(img, 0, sizeof *img);
    img->segs = (struct seg **)((char *)b + segs_off);
    img->buf = (unsigned char *)b + buf_off;
    return img;
}

/*
 * Give b, of large class kb, to the shared cache; false when it does not
 * fit.  When full, blocks of other classes make room, largest first: the
 * writer's coalesced batches come in every size, one block to a class,
 * and once they filled the cache the commits' own class never got in
 * again.  Evicting is pointless when kb's own blocks fill it.
 */
static bool big_put(struct img_block *b, int kb)
{
    struct img_block *evict = NULL;
    pthread_mutex_lock(&img_big.mu);
    if (img_big.bytes + b->cap > IMG_BIG_MAX) {
        size_t own = 0;
        for (struct img_block *x = img_big.c[kb]; x; x = x->next)
            own += x->cap;
        for (int k = IMG_NBIG - 1; k >= 0 && own + b->cap <= IMG_BIG_MAX; k--)
            while (k != kb && img_big.c[k] && img_big.bytes + b->cap > IMG_BIG_MAX) {
                struct img_block *x = img_big.c[k];
                img_big.c[k] = x->next;
                img_big.bytes -= x->cap;
                x->next = evict;
                evict = x;
            }
    }
    bool keep = img_big.bytes + b->cap <= IMG_BIG_MAX;
    if (keep) {
        b->next = img_big.c[kb];
        img_big.c[kb] = b;
        img_big.bytes += b->cap;
    }
    pthread_mutex_unlock(&img_big.mu);
    while (evict) {
        struct img_block *x = evict;
        evict = x->next;
        free(x);
    }
    return keep;
}

void img_free(struct log_img *img)
{
    if (!img)
        return;
    struct img_block *b = (struct img_block *)((char *)img - offsetof(struct img_block, img));
    int k = img_class(b->cap);
    if (k < 0) {
        /* Only blocks made at a class's size go back (a large one may
         * have been made at its exact size: too large to cache). */
        size_t cap;
        int kb = img_big_class(b->cap, &cap);
        if (kb < 0 || b->cap != cap || !big_put(b, kb))
            free(b);
        return;
    }
    if (img_tls.bytes + b->cap > IMG_CACHE_MAX) {
        free(b);
        return;
    }
    if (!img_tls_keyed) {
        /* The key's destructor empties the cache when the thread exits. */
        pthread_once(&img_once, img_key_init);
        pthread_setspecific(img_key, &img_tls);
        img_tls_keyed = true;
    }
    b->next = img_tls.c[k];
    img_tls.c[k] = b;
    img_tls.bytes += b->cap;
}

void img_cache_free(void)
{
    pthread_mutex_lock(&img_big.mu);
    for (int k = 0; k < IMG_NBIG; k++)
        while (img_big.c[k]) {
            struct img_block *b = img_big.c[k];
            img_big.c[k] = b->next;
            free(b);
        }
    img_big.bytes = 0;
    pthread_mutex_unlock(&img_big.mu);
}

size_t img_cache_bytes(void)
{
    pthread_mutex_lock(&img_big.mu);
    size_t n = img_big.bytes;
    pthread_mutex_unlock(&img_big.mu);
    return n;
}
