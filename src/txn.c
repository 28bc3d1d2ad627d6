/*
 * Transactions: begin, set_range, modify_bytes, abort, end.
 *
 * A transaction keeps its ranges sorted by address and merged, so each
 * byte's old value is saved once however often it is declared, and each
 * byte is logged once at commit (intra-transaction coalescing).  A
 * transaction belongs to one thread at a time and takes no lock of its
 * own; the region table's lock is held only for the lookup.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "log_format.h"
#include "rvm_internal.h"
#include "txn.h"

/* One finished transaction per thread is kept for the next begin, with
 * its arrays and first arena chunk.  The key points at the slot, set once
 * per thread: a pthread_setspecific at every begin and end was 2% of a
 * no_flush commit. */
#define TLS_IE __attribute__((tls_model("initial-exec")))
/* initial-exec: a few bytes of static TLS instead of a __tls_get_addr
 * call per begin and end. */
static __thread struct rvm_txn *spare TLS_IE;
static __thread bool spare_keyed TLS_IE;
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;

/* Records of exited threads and overflow go to a pool, never to free():
 * see tid_check. */
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct rvm_txn *pool;

static void pool_put(struct rvm_txn *t)
{
    pthread_mutex_lock(&pool_mu);
    t->next = pool;
    pool = t;
    pthread_mutex_unlock(&pool_mu);
}

static struct rvm_txn *pool_get(void)
{
    pthread_mutex_lock(&pool_mu);
    struct rvm_txn *t = pool;
    if (t)
        pool = t->next;
    pthread_mutex_unlock(&pool_mu);
    return t;
}

/* At thread exit, with the thread's own slot. */
static void spare_free(void *p)
{
    struct rvm_txn **slot = p;
    if (*slot)
        pool_put(*slot);
    *slot = NULL;
    spare_keyed = false;
}

static void spare_key_init(void)
{
    pthread_key_create(&spare_key, spare_free);
}

static void spare_keep(struct rvm_txn *t)
{
    if (!spare_keyed) {
        pthread_once(&spare_once, spare_key_init);
        pthread_setspecific(spare_key, &spare);
        spare_keyed = true;
    }
    spare = t;
}

static void *arena_alloc(struct rvm_txn *t, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct chunk *c = t->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_SIZE ? n : CHUNK_SIZE;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = t->arena;
        t->arena = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

static rvm_return_t tid_check(rvm_tid_t *tid, struct rvm_txn **out)
{
    rvm_return_t ret = rvm_check_init();
    if (ret)
        return ret;
    if (!tid || tid->struct_id != rvm_tid_id || !tid->tid)
        return RVM_ETID;
    /* Transaction records are never returned to malloc, so a stale copy
     * of a tid still points at readable memory: check it is this very
     * transaction, alive. */
    struct rvm_txn *t = tid->tid;
    if (!t->active || t->tid != tid || t->id != (uint64_t)tid->reserved)
        return RVM_ETID;
    *out = t;
    return RVM_SUCCESS;
}

rvm_bool_t rvm_tid_active(const rvm_tid_t *tid)
{
    if (!tid || tid->struct_id != rvm_tid_id || !tid->tid)
        return rvm_false;
    const struct rvm_txn *t = tid->tid;
    return t->active && t->tid == tid && t->id == (uint64_t)tid->reserved ? rvm_true : rvm_false;
}

/*
 * The tid's unique name: the begin time from the coarse clock (a vDSO
 * read without a timer access: gettimeofday was 3% of a whole no_flush
 * TPC-A transaction), moved on by a microsecond past the last name given
 * so that no two are equal.  txn_mu held.
 */
static struct timeval uname_last;

static struct timeval uname_next(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    struct timeval tv = {.tv_sec = ts.tv_sec, .tv_usec = ts.tv_nsec / 1000};
    if (tv.tv_sec < uname_last.tv_sec ||
        (tv.tv_sec == uname_last.tv_sec && tv.tv_usec <= uname_last.tv_usec)) {
        tv = uname_last;
        if (++tv.tv_usec == 1000000) {
            tv.tv_sec++;
            tv.tv_usec = 0;
        }
    }
    uname_last = tv;
    return tv;
}

rvm_return_t rvm_begin_transaction(rvm_tid_t *tid, rvm_mode_t mode)
{
    rvm_return_t ret = rvm_check_init();
    if (ret)
        return ret;
    if (!tid || tid->struct_id != rvm_tid_id || tid->tid)
        return RVM_ETID;
    if (mode != restore && mode != no_restore)
        return RVM_EMODE;
    struct rvm_txn *t = spare;
    if (t)
        spare = NULL;
    else
        t = pool_get();
    if (!t && !(t = calloc(1, sizeof *t)))
        return RVM_ENO_MEMORY;
    t->mode = mode;
    t->active = true;
    t->commit_failed = false;
    t->tid = tid;
    pthread_mutex_lock(&rvm.txn_mu);
    tid->uname = uname_next();
    t->id = ++rvm.next_tid;
    t->next = rvm.txns;
    if (rvm.txns)
        rvm.txns->prev = t;
    rvm.txns = t;
    rvm.n_active++;
    pthread_mutex_unlock(&rvm.txn_mu);
    tid->tid = t;
    tid->reserved = (rvm_length_t)t->id;
    if (auto_armed())
        auto_barrier();
    STATS_ADD(n_begin, 1);
    return RVM_SUCCESS;
}

int txn_hold_region(struct rvm_txn *t, struct region *r)
{
    for (size_t i = 0; i < t->nregs; i++)
        if (t->regs[i] == r)
            return 0;
    if (t->nregs == t->regcap) {
        size_t nc = t->regcap ? t->regcap * 2 : 4;
        struct region **nv = realloc(t->regs, nc * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        t->regs = nv;
        t->regcap = nc;
    }
    t->regs[t->nregs++] = r;
    __atomic_store_n(&r->dirty, true, __ATOMIC_RELAXED);
    __atomic_fetch_add(&r->n_txn, 1, __ATOMIC_ACQ_REL);
    return 0;
}

unsigned char txn_old_zero[1];

/*
 * Ranges of at least this many bytes whose old bytes are all zero save
 * nothing: an append through rvmfs declares fresh zero pages, and saving
 * them took an allocation of as many new pages (a fault and a clear
 * each) and a copy, per 1 MiB write, where a scan of zeros costs a tenth.
 * The scan of other bytes stops at the first that is not zero.
 */
#define OLD_ZERO_MIN 4096

static bool all_zero(const char *p, size_t len)
{
    static const char zeros[4096];
    while (len) {
        size_t n = len < sizeof zeros ? len : sizeof zeros;
        if (memcmp(p, zeros, n) != 0)
            return false;
        p += n;
        len -= n;
    }
    return true;
}

/* Put the saved old bytes of range r at dst. */
static void old_copy(unsigned char *dst, const struct trange *r)
{
    if (r->old == TXN_OLD_ZERO)
        memset(dst, 0, r->len);
    else
        memcpy(dst, r->old, r->len);
}

/* First range whose end reaches addr (may be adjacent before it). */
static size_t range_lower(struct rvm_txn *t, const char *addr)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->r[mid].addr + t->r[mid].len < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int txn_add_range(struct rvm_txn *t, struct region *reg, char *addr, size_t len,
                  const unsigned char *src_old)
{
    size_t i = range_lower(t, addr);
    /* A range of another region can only touch ours, never overlap it:
     * step over one that ends where ours begins. */
    if (i < t->n && t->r[i].reg != reg && t->r[i].addr + t->r[i].len <= addr)
        i++;
    if (i < t->n && t->r[i].reg == reg && t->r[i].addr <= addr &&
        addr + len <= t->r[i].addr + t->r[i].len)
        return 0; /* already declared: the common repeat */
    size_t j = i;
    while (j < t->n && t->r[j].reg == reg && t->r[j].addr <= addr + len)
        j++;
    char *start = addr, *end = addr + len;
    if (j > i) {
        if (t->r[i].addr < start)
            start = t->r[i].addr;
        if (t->r[j - 1].addr + t->r[j - 1].len > end)
            end = t->r[j - 1].addr + t->r[j - 1].len;
    }
    unsigned char *old = NULL;
    if (t->mode == restore && j == i && !src_old && len >= OLD_ZERO_MIN &&
        all_zero(addr, len)) {
        old = TXN_OLD_ZERO;
    } else if (t->mode == restore) {
        old = arena_alloc(t, (size_t)(end - start));
        if (!old)
            return -ENOMEM;
        memcpy(old, start, (size_t)(end - start));
        if (src_old)
            memcpy(old + (addr - start), src_old, len);
        /* Bytes declared before keep the value saved then. */
        for (size_t k = i; k < j; k++)
            old_copy(old + (t->r[k].addr - start), &t->r[k]);
    }
    if (j == i) {
        if (t->n == t->cap) {
            size_t nc = t->cap ? t->cap * 2 : 8;
            struct trange *nv = realloc(t->r, nc * sizeof *nv);
            if (!nv)
                return -ENOMEM;
            t->r = nv;
            t->cap = nc;
        }
        /* Ranges declared in address order append: no memmove call. */
        if (i < t->n)
            memmove(&t->r[i + 1], &t->r[i], (t->n - i) * sizeof *t->r);
        t->n++;
    } else {
        memmove(&t->r[i + 1], &t->r[j], (t->n - j) * sizeof *t->r);
        t->n -= j - i - 1;
    }
    t->r[i] = (struct trange){.addr = start, .len = (size_t)(end - start), .reg = reg, .old = old};
    return 0;
}

rvm_return_t rvm_set_range(rvm_tid_t *tid, void *dest, rvm_length_t length)
{
    struct rvm_txn *t;
    rvm_return_t ret = tid_check(tid, &t);
    if (ret)
        return ret;
    if (!length)
        return RVM_SUCCESS;
    if (!dest || (uintptr_t)dest + length < (uintptr_t)dest)
        return RVM_ENOT_MAPPED;
    struct region *reg = t->last_reg;
    uintptr_t a = (uintptr_t)dest;
    int rc = 0;
    /* A region this transaction holds cannot be unmapped under it. */
    if (!reg || a - (uintptr_t)reg->vmaddr >= reg->length ||
        length > reg->length - (a - (uintptr_t)reg->vmaddr)) {
        pthread_rwlock_rdlock(&rvm.regions_lock);
        reg = region_find(dest, length);
        rc = reg ? txn_hold_region(t, reg) : 0;
        pthread_rwlock_unlock(&rvm.regions_lock);
        if (!reg)
            return RVM_ENOT_MAPPED;
        t->last_reg = reg;
    }
    if (rc == 0) {
        /* Past every range declared so far (records declared in address
         * order): append, as txn_add_range would, without its search. */
        size_t n = t->n;
        char *d = dest;
        if (t->mode == no_restore && n < t->cap &&
            (n == 0 || t->r[n - 1].addr + t->r[n - 1].len < d)) {
            t->r[n] = (struct trange){.addr = d, .len = length, .reg = reg, .old = NULL};
            t->n = n + 1;
        } else {
            rc = txn_add_range(t, reg, dest, length, NULL);
        }
    }
    if (rc < 0)
        return RVM_ENO_MEMORY;
    t->n_set++;
    t->bytes_set += length;
    return RVM_SUCCESS;
}

rvm_return_t rvm_modify_bytes(rvm_tid_t *tid, void *dest, const void *src, rvm_length_t length)
{
    struct rvm_txn *t;
    rvm_return_t ret = tid_check(tid, &t);
    if (ret)
        return ret;
    if (!src)
        return RVM_ESRC;
    ret = rvm_set_range(tid, dest, length);
    if (ret == RVM_SUCCESS)
        memmove(dest, src, length);
    return ret;
}

static void txn_end(rvm_tid_t *tid, struct rvm_txn *t)
{
    STATS_ADD(n_set_range, t->n_set);
    STATS_ADD(bytes_set_range, t->bytes_set);
    for (size_t k = 0; k < t->nregs; k++)
        __atomic_fetch_sub(&t->regs[k]->n_txn, 1, __ATOMIC_ACQ_REL);
    pthread_mutex_lock(&rvm.txn_mu);
    if (t->prev)
        t->prev->next = t->next;
    else
        rvm.txns = t->next;
    if (t->next)
        t->next->prev = t->prev;
    rvm.n_active--;
    pthread_mutex_unlock(&rvm.txn_mu);
    tid->tid = NULL;
    /* Keep the first chunk only: a huge transaction must not pin memory. */
    struct chunk *c = t->arena;
    while (c && c->next) {
        struct chunk *n = c->next;
        c->next = n->next;
        free(n);
    }
    if (c && c->cap > CHUNK_SIZE) {
        free(c);
        c = NULL;
    }
    if (c)
        c->used = 0;
    /* The id stays: a stale tid copy must still see a different one
     * once the record is reused (see tid_check). */
    if (t->cap > 1024) {
        free(t->r);
        t->r = NULL;
        t->cap = 0;
    }
    t->arena = c;
    t->n = t->nregs = 0;
    t->mode = 0;
    t->prev = t->next = NULL;
    t->tid = NULL;
    t->last_reg = NULL;
    t->pages = NULL;
    t->npages = t->pagecap = 0;
    t->is_auto = t->active = t->commit_failed = false;
    t->n_set = t->bytes_set = 0;
    if (!spare)
        spare_keep(t);
    else
        pool_put(t);
}

rvm_return_t rvm_abort_transaction(rvm_tid_t *tid)
{
    struct rvm_txn *t;
    rvm_return_t ret = tid_check(tid, &t);
    if (ret)
        return ret;
    if (t->mode != restore)
        return RVM_EMODE;
    /* Its record may be on disk: it must become unreachable before the
     * abort can be honest. */
    if (t->commit_failed && rvm.log && log_heal(rvm.log) < 0) {
        rvm_set_errmsg("abort: the log cannot be made to forget the failed commit");
        return RVM_EIO;
    }
    /* Twins first: ranges saved by an earlier, failed commit are older. */
    if (t->is_auto)
        auto_abort(t);
    for (size_t k = 0; k < t->n; k++)
        old_copy((unsigned char *)t->r[k].addr, &t->r[k]);
    if (t->is_auto)
        auto_finish(t);
    txn_end(tid, t);
    STATS_ADD(n_abort, 1);
    return RVM_SUCCESS;
}

/* The commit record of t: header, range descriptors, new bytes. */
static struct log_img *txn_image(struct rvm_txn *t, int *err)
{
    uint64_t data = 0;
    for (size_t k = 0; k < t->n; k++)
        data += t->r[k].len;
    size_t len = sizeof(struct log_rec_hdr) + t->n * sizeof(struct log_rec_range) +
                 log_align(data) + sizeof(struct log_rec_trailer);
    if (len > log_data_size(rvm.log)) {
        *err = -E2BIG;
        return NULL;
    }
    struct log_img *img = img_alloc(len, t->nregs);
    if (!img) {
        *err = -ENOMEM;
        return NULL;
    }
    unsigned char *buf = img->buf;
    struct seg **segs = img->segs;
    /* Stored field by field in place (img->buf is 16-aligned, and the
     * header and descriptors are multiples of 8 bytes): built on the
     * stack and copied, the 16-byte loads of the copy could not be
     * forwarded from the narrower stores that built it, and waited for
     * the store buffer to drain, the largest stall of a commit. */
    _Static_assert(sizeof(struct log_rec_hdr) == 48 && sizeof(struct log_rec_range) == 24,
                   "txn_image stores every field of the header and descriptors");
    struct log_rec_hdr *hp = (struct log_rec_hdr *)(void *)buf;
    hp->magic = 0;
    hp->type = LOG_REC_TRANS;
    hp->flags = 0;
    hp->seq = hp->epoch = 0;
    hp->len = len;
    hp->tid = t->id;
    hp->nranges = (uint32_t)t->n;
    hp->ntrans = 1;
    struct log_rec_range *rp = (struct log_rec_range *)(void *)(buf + sizeof *hp);
    unsigned char *dp = (unsigned char *)(rp + t->n);
    for (size_t k = 0; k < t->n; k++) {
        struct trange *r = &t->r[k];
        rp[k].seg_id = r->reg->seg->id;
        rp[k].offset = r->reg->offset + (uint64_t)(r->addr - r->reg->vmaddr);
        rp[k].len = r->len;
        memcpy(dp, r->addr, r->len);
        dp += r->len;
    }
    memset(dp, 0, (size_t)(log_align(data) - data));
    size_t nsegs = 0;
    for (size_t k = 0; k < t->nregs; k++) {
        struct seg *s = t->regs[k]->seg;
        bool dup = false;
        for (size_t m = 0; m < nsegs; m++)
            dup |= segs[m] == s;
        if (!dup)
            segs[nsegs++] = s;
    }
    img->len = len;
    img->nsegs = nsegs;
    img->data_len = data;
    img->ntrans = 1;
    return img;
}

rvm_return_t rvm_end_transaction(rvm_tid_t *tid, rvm_mode_t mode)
{
    struct rvm_txn *t;
    rvm_return_t ret = tid_check(tid, &t);
    if (ret)
        return ret;
    if (mode != flush && mode != no_flush)
        return RVM_EMODE;
    /* The pages an auto transaction wrote become declared ranges.  Their
     * bytes are captured and queued before it lets the pages go: another
     * thread may write them as soon as it does, and its commit, queued
     * first, would be overwritten at recovery by our older bytes. */
    bool was_auto = t->is_auto;
    if (was_auto && (ret = auto_collect(t)) != RVM_SUCCESS)
        return ret;
    uint64_t after = 0;
    for (size_t k = 0; k < t->n; k++)
        after += t->r[k].len;
    int rc = 0;
    struct log_img *img = rvm.log && t->n ? txn_image(t, &rc) : NULL;
    if (was_auto) {
        if (img) {
            void (*hook)(void) = __atomic_load_n(&rvm.hook_captured, __ATOMIC_RELAXED);
            if (hook)
                hook();
            log_enqueue(rvm.log, img, mode == flush);
        }
        auto_finish(t);
    }
    if (rvm.log && t->n) {
        if (!img) {
            if (rc == -E2BIG) {
                rvm_set_errmsg("transaction of %llu bytes does not fit in the log",
                               (unsigned long long)after);
                return RVM_ETOO_BIG;
            }
            return RVM_ENO_MEMORY;
        }
        rc = was_auto ? log_commit_queued(rvm.log, img, mode == flush)
                      : log_commit(rvm.log, img, mode == flush);
        if (mode == flush) {
            img_free(img);
            if (rc < 0) {
                t->commit_failed = true;
                char prev[256];
                snprintf(prev, sizeof prev, "%s", rvm_errmsg());
                rvm_set_errmsg("commit failed: %s%s%s", strerror(-rc), *prev ? ": " : "", prev);
                return rc == -ENOMEM ? RVM_ENO_MEMORY : RVM_EIO;
            }
        }
    } else if (rvm.log && mode == flush) {
        /* Nothing of its own to log, but a flush commit still promises
         * that every commit before it is durable. */
        int rc = log_flush(rvm.log);
        if (rc < 0) {
            t->commit_failed = true;
            rvm_set_errmsg("commit failed: forcing earlier commits: %s", strerror(-rc));
            return rc == -ENOMEM ? RVM_ENO_MEMORY : RVM_EIO;
        }
    }
    STATS_ADD(bytes_after_ranges, after);
    if (mode == flush)
        STATS_ADD(n_flush_commit, 1);
    else
        STATS_ADD(n_no_flush_commit, 1);
    txn_end(tid, t);
    return RVM_SUCCESS;
}

rvm_return_t txn_query(rvm_options_t *opts, struct region *only)
{
    pthread_mutex_lock(&rvm.txn_mu);
    long n = 0;
    for (struct rvm_txn *t = rvm.txns; t; t = t->next) {
        bool in = !only;
        for (size_t k = 0; !in && k < t->nregs; k++)
            in = t->regs[k] == only;
        n += in;
    }
    rvm_tid_t *arr = n ? calloc((size_t)n, sizeof *arr) : NULL;
    if (n && !arr) {
        pthread_mutex_unlock(&rvm.txn_mu);
        return RVM_ENO_MEMORY;
    }
    long i = 0;
    for (struct rvm_txn *t = rvm.txns; t && i < n; t = t->next) {
        bool in = !only;
        for (size_t k = 0; !in && k < t->nregs; k++)
            in = t->regs[k] == only;
        if (in) {
            arr[i] = *t->tid;
            arr[i].from_heap = rvm_false;
            arr[i].tid = NULL;
            i++;
        }
    }
    pthread_mutex_unlock(&rvm.txn_mu);
    free(opts->tid_array);
    opts->tid_array = arr;
    opts->n_uncommit = n;
    return RVM_SUCCESS;
}
