/*
 * librvm's internal state, shared by its modules.  Locking order (never
 * take an earlier lock while holding a later one):
 *   rvm.init_mu -> regions_lock -> log.status_mu -> log.mu -> rvm.seg_mu
 */
#ifndef RVM_INTERNAL_H
#define RVM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "rvm/rvm.h"
#include "rvm_io.h"

/* Options may change under running threads (rvm_set_options). */
#define OPT(field) __atomic_load_n(&rvm.field, __ATOMIC_RELAXED)
#define OPT_SET(field, v) __atomic_store_n(&rvm.field, (v), __ATOMIC_RELAXED)

/* stats.c: counts go to the calling thread's block (a plain add; other
 * threads only read it), or to the shared totals if it has none. */
extern __thread rvm_stats_t *rvm_tstats __attribute__((tls_model("initial-exec")));
rvm_stats_t *stats_block_new(void);
void stats_reset(void);                 /* rvm_initialize */
void stats_sum(rvm_stats_t *st);        /* totals of every thread */
#define STATS_ADD(field, n)                                                                \
    do {                                                                                   \
        rvm_stats_t *s_ = rvm_tstats ? rvm_tstats : stats_block_new();                     \
        uint64_t n_ = (uint64_t)(n);                                                       \
        if (s_)                                                                            \
            __atomic_store_n(&s_->field, __atomic_load_n(&s_->field, __ATOMIC_RELAXED) + n_, \
                             __ATOMIC_RELAXED);                                            \
        else                                                                               \
            __atomic_fetch_add(&rvm.stats.field, n_, __ATOMIC_RELAXED);                    \
    } while (0)

/* A segment known to this process. Never freed before rvm_terminate. */
struct seg {
    uint64_t id;
    char *path;                 /* canonical */
    const rvm_io_methods *io;   /* methods it was opened with */
    rvm_io_file *file;          /* NULL until first needed */
    int nmapped;                /* regions mapped (seg_mu) */
    int refs;                   /* rvm_map calls in progress (seg_mu) */
    uint64_t last_seq;          /* newest log record naming it (log.mu) */
    uint64_t queued;            /* queued images naming it (log.mu) */
    bool in_dict;               /* in the durable dictionary (status_mu) */
    uint64_t dev, ino;          /* identity of the file, once open */
    struct seg *next;
};

#define ZSPANS_MAX 16

struct region {
    char *vmaddr;
    size_t length;
    uint64_t offset;            /* in the segment */
    struct seg *seg;
    bool rvm_alloc;             /* memory is ours to munmap */
    bool private_map;           /* MAP_PRIVATE file mapping */
    bool dirty;                 /* private copies may differ from the file */
    /* [zero_lo, zero_hi): region offsets where rvm_zero_pages may have put
     * anonymous pages (equal: nowhere); regions_lock exclusive to change */
    size_t zero_lo, zero_hi;
    /* Inside those: the exact spans of anonymous pages rvm_zero_pages made
     * and nothing dropped since (sorted, disjoint), the only pages that may
     * go to the page pool; a span that does not fit is left out of it. */
    struct { size_t lo, hi; } zspans[ZSPANS_MAX];
    int nzspans;
    uint64_t n_txn;             /* active transactions with ranges here (atomic) */
};

/* A commit record waiting for, or going through, the log. */
enum img_state { IMG_QUEUED, IMG_DURABLE, IMG_FAILED };
struct log_img {
    struct log_img *next;
    unsigned char *buf;         /* the whole record; seq/epoch/crc filled at write */
    size_t len;
    uint64_t data_len;          /* new-value bytes in it */
    uint64_t ntrans;            /* transactions it carries */
    uint64_t ticket;            /* enqueue order */
    bool waiter;                /* a flush commit waits for it (and owns it) */
    enum img_state state;
    int err;                    /* -errno when FAILED */
    size_t nsegs;
    struct seg **segs;          /* distinct segments named (not owned) */
};

struct rvm_log;

struct rvm_global {
    pthread_mutex_t init_mu;
    int state;                  /* 0 never, 1 initialized, 2 terminated */
    long truncate_pct;
    rvm_length_t flags;
    rvm_length_t flush_buf_len;
    rvm_length_t recovery_buf_len;
    char *log_dev;
    struct rvm_log *log;        /* NULL: memory only */

    pthread_mutex_t seg_mu;
    struct seg *segs;

    pthread_rwlock_t regions_lock;
    struct region **regions;    /* sorted by vmaddr */
    size_t nregions, regions_cap;

    pthread_mutex_t txn_mu;     /* guards the list of active transactions */
    struct rvm_txn *txns;
    uint64_t n_active;
    uint64_t next_tid;

    rvm_stats_t stats;

    /* Tests only: called by an auto transaction's commit between the
     * capture of its new bytes and their place in the log's order, to
     * widen that window (NULL otherwise). */
    void (*hook_captured)(void);
};
extern struct rvm_global rvm;

/* errmsg.c-like helpers live in rvm_api.c */
void rvm_set_errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Inline: it guards every call of a transaction (several per commit). */
static inline rvm_return_t rvm_check_init(void)
{
    int st = __atomic_load_n(&rvm.state, __ATOMIC_ACQUIRE);
    return st == 1 ? RVM_SUCCESS : st == 2 ? RVM_ETERMINATED : RVM_EINIT;
}

/* seg.c */
struct seg *seg_get(const char *canon_path, int *err);   /* pins: seg_unpin */
void seg_unpin(struct seg *s);
void seg_gc_locked(void);                                 /* seg_mu held */
struct seg *seg_by_id(uint64_t id);
struct seg *seg_add_known(uint64_t id, const char *path); /* recovery */
uint64_t seg_next_id_locked(void);                        /* seg_mu held */
void seg_reserve_ids(uint64_t next);                      /* recovery */
int seg_open(struct seg *s, bool create);                 /* -errno */
void seg_free_all(void);

/* region.c */
struct region *region_find(const void *addr, size_t len); /* regions_lock held */
void region_free_all(void);
void region_release_clean(struct rvm_log *log);
/* region_zero.c: drop the private copies of region offsets [lo, hi)
 * (page aligned), mapping the file again over the zero pages; recycle:
 * those go to the page pool (the caller keeps readers away meanwhile).
 * regions_lock held exclusively.  0 or -errno. */
int region_drop(struct region *r, size_t lo, size_t hi, bool recycle);
/* page_pool.c, regions_lock held for writing: anonymous pages kept for
 * reuse.  put moves the first pages of [addr, addr + len), as many as
 * there is room for, and returns how many bytes; take moves up to len
 * bytes of pages to dest (zeroed first if asked) and returns how many;
 * free gives every page back at the end. */
size_t page_pool_put(char *addr, size_t len);
size_t page_pool_take(char *dest, size_t len, bool zero);
void page_pool_free(void);

/* log.c */
int log_create(const char *path, uint64_t data_size, long mode);
int log_open(const char *path, struct rvm_log **out);     /* recovers */
int log_close(struct rvm_log *log);
int log_commit(struct rvm_log *log, struct log_img *img, bool flush);
/* log_commit in two steps: the image takes its place in the log's order
 * (quickly, never waiting on I/O), then the commit completes as
 * log_commit would.  Auto transactions queue while they still own the
 * pages they captured. */
void log_enqueue(struct rvm_log *log, struct log_img *img, bool flush);
int log_commit_queued(struct rvm_log *log, struct log_img *img, bool flush);
int log_flush(struct rvm_log *log);
int log_heal(struct rvm_log *log);      /* after a failed force: new epoch */
int log_truncate(struct rvm_log *log, bool automatic);
uint64_t log_commit_mark(struct rvm_log *log);   /* the last commit's ticket */
bool log_mark_applied(struct rvm_log *log, uint64_t mark);
/* Sync what recovery applied and write the status that frees its log
 * space (log_impl.h: rec_pending); 0 at once when nothing is pending. */
int log_recovery_finish(struct rvm_log *log);
/* True once that sync failed: the log takes no durable commit until the
 * next rvm_initialize, which recovers the same records again. */
bool log_recovery_failed(struct rvm_log *log);
bool log_seg_pending(struct rvm_log *log, struct seg *s);
void log_lock(struct rvm_log *log);    /* guards seg->queued, last_seq */
uint64_t log_head_seq(struct rvm_log *log); /* log_lock held */
void log_unlock(struct rvm_log *log);
void log_stats(struct rvm_log *log, rvm_stats_t *st);
uint64_t log_data_size(struct rvm_log *log);
struct log_img *img_alloc(size_t len, size_t nsegs);
void img_free(struct log_img *img);
/* Give back the blocks the shared cache of large images keeps (thread-safe;
 * blocks still in use come back to it later). */
void img_cache_free(void);
/* Bytes of blocks the shared cache keeps now (for tests). */
size_t img_cache_bytes(void);

/* log_scan.c: walk records from a position; see log_scan.h */


static inline uint64_t rvm_now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

#endif
