/*
 * The statistics: counters each thread adds to its own block, summed by
 * rvm_get_stats.  A shared counter cost an atomic add (a locked
 * instruction) per count, five per no_flush commit; a thread's own block
 * takes a plain add.  The blocks of exited threads are folded into
 * rvm.stats, so no count is lost; rvm_initialize zeroes them all.
 */
#include <stdlib.h>
#include <string.h>

#include "rvm_internal.h"

struct stats_block {
    rvm_stats_t s;              /* first: the owner's pointer is to s */
    struct stats_block *prev, *next;
};

__thread rvm_stats_t *rvm_tstats __attribute__((tls_model("initial-exec")));

/* Guards the list and folding; readers sum under it. */
static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;
static struct stats_block *blocks;
static pthread_key_t stats_key;
static pthread_once_t stats_once = PTHREAD_ONCE_INIT;

#define NCOUNT (sizeof(rvm_stats_t) / sizeof(uint64_t))

/* At thread exit: the counts go to the shared totals, atomically with
 * the block leaving the list (a reader sees them in one place or the
 * other, never both or neither). */
static void block_fold(void *p)
{
    struct stats_block *b = p;
    pthread_mutex_lock(&stats_mu);
    uint64_t *src = (uint64_t *)&b->s, *dst = (uint64_t *)&rvm.stats;
    for (size_t i = 0; i < NCOUNT; i++)
        __atomic_fetch_add(&dst[i], __atomic_load_n(&src[i], __ATOMIC_RELAXED), __ATOMIC_RELAXED);
    if (b->prev)
        b->prev->next = b->next;
    else
        blocks = b->next;
    if (b->next)
        b->next->prev = b->prev;
    pthread_mutex_unlock(&stats_mu);
    if (rvm_tstats == &b->s)
        rvm_tstats = NULL;
    free(b);
}

static void key_init(void)
{
    pthread_key_create(&stats_key, block_fold);
}

rvm_stats_t *stats_block_new(void)
{
    pthread_once(&stats_once, key_init);
    /* A line of its own: threads' blocks do not share cache lines. */
    struct stats_block *b = aligned_alloc(64, (sizeof *b + 63) & ~(size_t)63);
    if (!b)
        return NULL;
    memset(b, 0, sizeof *b);
    if (pthread_setspecific(stats_key, b) != 0) {
        free(b);
        return NULL;
    }
    pthread_mutex_lock(&stats_mu);
    b->next = blocks;
    if (blocks)
        blocks->prev = b;
    blocks = b;
    pthread_mutex_unlock(&stats_mu);
    rvm_tstats = &b->s;
    return &b->s;
}

void stats_reset(void)
{
    pthread_mutex_lock(&stats_mu);
    uint64_t *g = (uint64_t *)&rvm.stats;
    for (size_t i = 0; i < NCOUNT; i++)
        __atomic_store_n(&g[i], 0, __ATOMIC_RELAXED);
    for (struct stats_block *b = blocks; b; b = b->next) {
        uint64_t *c = (uint64_t *)&b->s;
        for (size_t i = 0; i < NCOUNT; i++)
            __atomic_store_n(&c[i], 0, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&stats_mu);
}

void stats_sum(rvm_stats_t *st)
{
    uint64_t *dst = (uint64_t *)st;
    pthread_mutex_lock(&stats_mu);
    const uint64_t *g = (const uint64_t *)&rvm.stats;
    for (size_t i = 0; i < NCOUNT; i++)
        dst[i] = __atomic_load_n(&g[i], __ATOMIC_RELAXED);
    for (struct stats_block *b = blocks; b; b = b->next) {
        const uint64_t *c = (const uint64_t *)&b->s;
        for (size_t i = 0; i < NCOUNT; i++)
            dst[i] += __atomic_load_n(&c[i], __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&stats_mu);
}
