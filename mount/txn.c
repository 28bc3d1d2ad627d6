/*
 * txn.c - the daemon's transactions: ids, the table of active ones, their
 * member files, begin/join/commit/abort, and the write path's choice
 * between a file's transaction and a transaction of its own.
 *
 * A transaction owns one librvm tid; t->mu makes sure one thread at a
 * time uses it.  There is no global lock around commit: concurrent flush
 * commits of different transactions share one log force inside librvm.
 *
 * Membership: a member file has n->txn == t (holding a reference to t),
 * appears in t->members, and counts in n->txnrefs, which keeps the node
 * and its mapping alive even if the kernel forgets the inode.  A file
 * whose transaction has ended but is not yet detached counts as free.
 */
#include "daemon.h"
#include "rvmfs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long tid_hash(uint64_t id)
{
    uint64_t x = id * 0x9e3779b97f4a7c15ull;
    return (unsigned long)(x ^ (x >> 31));
}

static int tid_match(struct cds_lfht_node *hn, const void *key)
{
    const struct txn *t = caa_container_of(hn, struct txn, hnode);
    return t->id == *(const uint64_t *)key;
}

int txns_init(void)
{
    rcu_thread_online();
    fs.txns = cds_lfht_new_flavor(64, 64, 0, CDS_LFHT_AUTO_RESIZE,
                                  &urcu_memb_flavor, NULL);
    if (!fs.txns)
        return -ENOMEM;
    /* Ids are unique across mounts too, so that a stale id from an
     * earlier life of the daemon never names a new transaction. */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    atomic_store(&fs.next_tid, ((uint64_t)now.tv_sec << 24) + 1);
    return 0;
}

static void txn_pool_drain(void);

void txns_fini(void)
{
    if (!fs.txns)
        return;
    urcu_memb_barrier();
    cds_lfht_destroy(fs.txns, NULL);
    fs.txns = NULL;
    txn_pool_drain();
}

/* Ended transactions go back to a pool, once no RCU reader can see them,
 * rather than to free(): a begin then allocates nothing.  The pool keeps
 * each one's member array and initialized mutex. */
#define TXN_POOL_MAX 256
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct txn *pool;
static int pool_n;

static void txn_destroy(struct txn *t)
{
    pthread_mutex_destroy(&t->mu);
    free(t->members);
    free(t);
}

/* t is unlocked and unreachable. */
static void txn_recycle(struct txn *t)
{
    pthread_mutex_lock(&pool_mu);
    if (pool_n < TXN_POOL_MAX) {
        t->next_free = pool;
        pool = t;
        pool_n++;
        t = NULL;
    }
    pthread_mutex_unlock(&pool_mu);
    if (t)
        txn_destroy(t);
}

static struct txn *txn_alloc(void)
{
    pthread_mutex_lock(&pool_mu);
    struct txn *t = pool;
    if (t) {
        pool = t->next_free;
        pool_n--;
    }
    pthread_mutex_unlock(&pool_mu);
    if (t) {
        t->id = 0;
        t->active = false;
        t->nmembers = 0;
        t->ranges = t->bytes = 0;
        t->next_free = NULL;
    } else {
        t = calloc(1, sizeof(*t));
        if (!t)
            return NULL;
        pthread_mutex_init(&t->mu, NULL);
    }
    return t;
}

static void txn_pool_drain(void)
{
    pthread_mutex_lock(&pool_mu);
    struct txn *t = pool;
    pool = NULL;
    pool_n = 0;
    pthread_mutex_unlock(&pool_mu);
    while (t) {
        struct txn *next = t->next_free;
        txn_destroy(t);
        t = next;
    }
}

static void txn_free_rcu(struct rcu_head *h)
{
    txn_recycle(caa_container_of(h, struct txn, rcu));
}

void txn_put(struct txn *t)
{
    if (atomic_fetch_sub(&t->refs, 1) == 1)
        urcu_memb_call_rcu(&t->rcu, txn_free_rcu);
}

/* Take a reference unless the last one is gone.  Caller is in an RCU
 * read-side section, so the memory itself is still there. */
static bool txn_tryget(struct txn *t)
{
    int r = atomic_load(&t->refs);
    do {
        if (r == 0)
            return false;
    } while (!atomic_compare_exchange_weak(&t->refs, &r, r + 1));
    return true;
}

static struct txn *txn_get(uint64_t id)
{
    struct cds_lfht_iter it;
    struct txn *t = NULL;
    rcu_thread_online();
    urcu_memb_read_lock();
    cds_lfht_lookup(fs.txns, tid_hash(id), tid_match, &id, &it);
    struct cds_lfht_node *hn = cds_lfht_iter_get_node(&it);
    if (hn) {
        t = caa_container_of(hn, struct txn, hnode);
        if (!txn_tryget(t))
            t = NULL;
    }
    urcu_memb_read_unlock();
    return t;
}

/* Caller holds n->mu.  True when the file is in an active transaction;
 * drops the link to one that has ended. */
bool node_busy(struct node *n)
{
    struct txn *t = n->txn;
    if (!t)
        return false;
    pthread_mutex_lock(&t->mu);
    bool active = t->active;
    pthread_mutex_unlock(&t->mu);
    if (!active) {
        n->txn = NULL;
        txn_put(t);
    }
    return active;
}

/* Caller holds n->mu and t->mu. */
static int txn_add_member(struct txn *t, struct node *n)
{
    if (t->nmembers == t->capmembers) {
        int cap = t->capmembers ? t->capmembers * 2 : 4;
        struct node **m = realloc(t->members, (size_t)cap * sizeof(*m));
        if (!m)
            return -ENOMEM;
        t->members = m;
        t->capmembers = cap;
    }
    t->members[t->nmembers++] = n;
    node_txn_ref(n);
    atomic_fetch_add(&t->refs, 1);
    n->txn = t;
    return 0;
}

int txn_begin(struct node *n, unsigned flags, uint64_t *id)
{
    if (flags & ~RVMFS_NO_RESTORE)
        return -EINVAL;
    struct txn *t = txn_alloc();
    if (!t)
        return -ENOMEM;
    cds_lfht_node_init(&t->hnode);
    rvm_init_tid(&t->tid);
    t->no_restore = flags & RVMFS_NO_RESTORE;
    atomic_store(&t->refs, 1); /* the table's */
    clock_gettime(CLOCK_MONOTONIC, &t->began);
    t->last_use = t->began;

    pthread_mutex_lock(&n->mu);
    if (node_busy(n)) {
        pthread_mutex_unlock(&n->mu);
        txn_recycle(t);
        return -EBUSY;
    }
    seg_idle(n); /* between transactions: may drop written pages' copies */
    rvm_return_t rc = rvm_begin_transaction(&t->tid,
                                            t->no_restore ? no_restore : restore);
    if (rc != RVM_SUCCESS) {
        pthread_mutex_unlock(&n->mu);
        txn_recycle(t);
        return -rvm_errno(rc);
    }
    pthread_mutex_lock(&t->mu);
    t->id = atomic_fetch_add(&fs.next_tid, 1);
    t->active = true;
    int err = txn_add_member(t, n);
    if (err < 0) {
        rvm_abort_transaction(&t->tid);
        t->active = false;
        pthread_mutex_unlock(&t->mu);
        pthread_mutex_unlock(&n->mu);
        txn_put(t);
        return err;
    }
    rcu_thread_online();
    urcu_memb_read_lock();
    cds_lfht_add(fs.txns, tid_hash(t->id), &t->hnode);
    urcu_memb_read_unlock();
    atomic_fetch_add(&fs.n_active, 1);
    *id = t->id;
    pthread_mutex_unlock(&t->mu);
    pthread_mutex_unlock(&n->mu);
    return 0;
}

int txn_join(struct node *n, uint64_t id)
{
    struct txn *t = txn_get(id);
    if (!t)
        return -ENOENT;
    int err = 0;
    pthread_mutex_lock(&n->mu);
    if (n->txn == t) {
        pthread_mutex_lock(&t->mu);
        err = t->active ? 0 : -ENOENT;
        pthread_mutex_unlock(&t->mu);
    } else if (node_busy(n)) {
        err = -EBUSY;
    } else {
        pthread_mutex_lock(&t->mu);
        if (!t->active)
            err = -ENOENT;
        else
            err = txn_add_member(t, n);
        clock_gettime(CLOCK_MONOTONIC, &t->last_use);
        pthread_mutex_unlock(&t->mu);
    }
    pthread_mutex_unlock(&n->mu);
    txn_put(t);
    return err;
}

/* The file's transaction, with a reference, or NULL. */
static struct txn *txn_of(struct node *n)
{
    pthread_mutex_lock(&n->mu);
    struct txn *t = n->txn;
    if (t)
        atomic_fetch_add(&t->refs, 1);
    pthread_mutex_unlock(&n->mu);
    return t;
}

/* Caller holds t->mu; t has just ended.  Take it out of the table. */
static void txn_retire(struct txn *t)
{
    t->active = false;
    atomic_fetch_sub(&fs.n_active, 1);
    rcu_thread_online();
    urcu_memb_read_lock();
    cds_lfht_del(fs.txns, &t->hnode);
    urcu_memb_read_unlock();
}

enum detach_how {
    DETACH_COMMIT,      /* nothing more to do */
    DETACH_ABORT,       /* end the discard window (the kernel is gone) */
    DETACH_ABORT_INVAL, /* drop the kernel's pages, then end the window */
};

/* After t ended: unlink every member (t->members no longer changes). */
static void txn_detach(struct txn *t, enum detach_how how)
{
    for (int i = 0; i < t->nmembers; i++) {
        struct node *m = t->members[i];
        pthread_mutex_lock(&m->mu);
        if (m->txn == t) {
            m->txn = NULL;
            txn_put(t);
        }
        pthread_mutex_unlock(&m->mu);
    }
    for (int i = 0; i < t->nmembers; i++) {
        struct node *m = t->members[i];
        if (how == DETACH_ABORT_INVAL)
            bg_invalidate(m->ino, m, !fs.singlethread);
        else if (how == DETACH_ABORT)
            atomic_fetch_sub(&m->discard_wb, 1);
        node_txn_unref(m);
    }
}

int txn_commit(struct node *n, unsigned flags)
{
    if (flags & ~RVMFS_NO_FLUSH)
        return -EINVAL;
    struct txn *t = txn_of(n);
    if (!t)
        return -ENOENT;
    pthread_mutex_lock(&t->mu);
    if (!t->active) {
        pthread_mutex_unlock(&t->mu);
        txn_put(t);
        return -ENOENT;
    }
    /* With flush: after this returns the transaction's record is durable
     * (librvm forces the log, shared with concurrent commits). */
    if (!(flags & RVMFS_NO_FLUSH))
        chan_yield_reader();
    rvm_return_t rc = rvm_end_transaction(&t->tid,
                                          (flags & RVMFS_NO_FLUSH) ? no_flush : flush);
    if (rc != RVM_SUCCESS) {
        clock_gettime(CLOCK_MONOTONIC, &t->last_use);
        pthread_mutex_unlock(&t->mu);
        txn_put(t);
        return -rvm_errno(rc);
    }
    txn_retire(t);
    pthread_mutex_unlock(&t->mu);
    txn_detach(t, DETACH_COMMIT);
    txn_put(t); /* the table's */
    txn_put(t);
    return 0;
}

/* Abort t.  With `invalidate`, drop the kernel's cached pages of every
 * member, discarding their writeback, before returning. */
static int txn_abort_t(struct txn *t, bool invalidate)
{
    pthread_mutex_lock(&t->mu);
    if (!t->active) {
        pthread_mutex_unlock(&t->mu);
        return -ENOENT;
    }
    if (t->no_restore) {
        pthread_mutex_unlock(&t->mu);
        return -EINVAL;
    }
    /* From here until the invalidation is done, page writeback of a
     * member carries aborted bytes: the write path throws it away. */
    for (int i = 0; i < t->nmembers; i++)
        atomic_fetch_add(&t->members[i]->discard_wb, 1);
    rvm_return_t rc = rvm_abort_transaction(&t->tid);
    if (rc != RVM_SUCCESS) {
        for (int i = 0; i < t->nmembers; i++)
            atomic_fetch_sub(&t->members[i]->discard_wb, 1);
        pthread_mutex_unlock(&t->mu);
        return -rvm_errno(rc);
    }
    txn_retire(t);
    pthread_mutex_unlock(&t->mu);
    txn_detach(t, invalidate ? DETACH_ABORT_INVAL : DETACH_ABORT);
    txn_put(t); /* the table's */
    return 0;
}

int txn_abort(struct node *n)
{
    struct txn *t = txn_of(n);
    if (!t)
        return -ENOENT;
    chan_yield_reader(); /* the invalidation makes the kernel write back */
    int rc = txn_abort_t(t, !atomic_load(&fs.stopping));
    txn_put(t);
    return rc;
}

/* Abort the active transactions idle longer than idle_s seconds (0: all;
 * used at shutdown, without invalidation). */
static void txn_sweep(unsigned idle_s, bool all)
{
    struct cds_lfht_iter it;
    struct txn *victims[64];
    int nv;
    do {
        nv = 0;
        rcu_thread_online();
        urcu_memb_read_lock();
        cds_lfht_first(fs.txns, &it);
        for (struct cds_lfht_node *hn; nv < 64 && (hn = cds_lfht_iter_get_node(&it));
             cds_lfht_next(fs.txns, &it)) {
            struct txn *t = caa_container_of(hn, struct txn, hnode);
            pthread_mutex_lock(&t->mu);
            bool pick = t->active && (all || ts_ms_since(&t->last_use) >=
                                                 (uint64_t)idle_s * 1000);
            if (pick && t->no_restore && !all)
                pick = false;
            pthread_mutex_unlock(&t->mu);
            if (pick && txn_tryget(t))
                victims[nv++] = t;
        }
        urcu_memb_read_unlock();
        int done = 0;
        for (int i = 0; i < nv; i++) {
            struct txn *t = victims[i];
            if (t->no_restore) {
                /* Cannot be undone in memory; never committed, so the
                 * store keeps the old bytes.  Drop it from the table. */
                pthread_mutex_lock(&t->mu);
                if (t->active) {
                    txn_retire(t);
                    pthread_mutex_unlock(&t->mu);
                    say("transaction %llu (no_restore) "
                            "dropped uncommitted at unmount\n",
                            (unsigned long long)t->id);
                    atomic_store(&fs.dropped_no_restore, true);
                    txn_put(t);
                } else {
                    pthread_mutex_unlock(&t->mu);
                }
                done++;
            } else if (txn_abort_t(t, !all) == 0) {
                say("transaction %llu aborted (%s)\n",
                        (unsigned long long)t->id, all ? "unmount" : "idle");
                done++;
            }
            txn_put(t);
        }
        if (done == 0)
            break;
    } while (nv == 64);
}

void txn_abort_all(void)
{
    txn_sweep(0, true);
}

void txn_expire(unsigned idle_s)
{
    txn_sweep(idle_s, false);
}

int txn_info(struct node *n, uint64_t *tid, uint64_t *ranges, uint64_t *bytes,
             uint64_t *age_ms)
{
    *tid = *ranges = *bytes = *age_ms = 0;
    struct txn *t = txn_of(n);
    if (!t)
        return 0;
    pthread_mutex_lock(&t->mu);
    if (t->active) {
        *tid = t->id;
        *ranges = t->ranges;
        *bytes = t->bytes;
        *age_ms = ts_ms_since(&t->began);
    }
    pthread_mutex_unlock(&t->mu);
    txn_put(t);
    return 0;
}

/* One line per active transaction, for the store's user.rvm.stat. */
size_t txn_list(char *buf, size_t len)
{
    struct cds_lfht_iter it;
    size_t used = 0;
    rcu_thread_online();
    urcu_memb_read_lock();
    cds_lfht_first(fs.txns, &it);
    for (struct cds_lfht_node *hn; (hn = cds_lfht_iter_get_node(&it));
         cds_lfht_next(fs.txns, &it)) {
        struct txn *t = caa_container_of(hn, struct txn, hnode);
        pthread_mutex_lock(&t->mu);
        if (t->active && used < len) {
            int n = snprintf(buf + used, len - used,
                             "txn=%llu age_ms=%llu idle_ms=%llu files=%d "
                             "ranges=%llu bytes=%llu%s\n",
                             (unsigned long long)t->id,
                             (unsigned long long)ts_ms_since(&t->began),
                             (unsigned long long)ts_ms_since(&t->last_use),
                             t->nmembers, (unsigned long long)t->ranges,
                             (unsigned long long)t->bytes,
                             t->no_restore ? " no_restore" : "");
            if (n > 0)
                used += (size_t)n < len - used ? (size_t)n : len - used - 1;
        }
        pthread_mutex_unlock(&t->mu);
    }
    urcu_memb_read_unlock();
    return used;
}

int txn_describe(struct node *n, char *buf, size_t len)
{
    uint64_t tid, ranges, bytes, age;
    txn_info(n, &tid, &ranges, &bytes, &age);
    if (!tid)
        return snprintf(buf, len, "none");
    return snprintf(buf, len, "%llu ranges=%llu bytes=%llu",
                    (unsigned long long)tid, (unsigned long long)ranges,
                    (unsigned long long)bytes);
}

int txn_with(struct node *n,
             int (*fn)(struct node *, rvm_tid_t *, uint64_t *, uint64_t *, void *),
             void *arg, bool writepage, uint64_t need)
{
    int rc = 0;
    pthread_mutex_lock(&n->mu);
    if (!n->base) { /* a failed remap left the file without memory */
        pthread_mutex_unlock(&n->mu);
        return -EIO;
    }
    if (writepage && atomic_load(&n->discard_wb) > 0) {
        pthread_mutex_unlock(&n->mu);
        return 1;
    }
    rc = store_seg_durable(atomic_load(&n->seg_gen));
    if (rc < 0) {
        pthread_mutex_unlock(&n->mu);
        return rc;
    }
    bool busy = node_busy(n);
    if (!busy)
        seg_idle(n);
    if (need > n->cap) {
        if (busy) {
            pthread_mutex_unlock(&n->mu);
            return -EFBIG;
        }
        rc = seg_reserve(n, need);
        if (rc < 0) {
            pthread_mutex_unlock(&n->mu);
            return rc;
        }
    }
    pthread_rwlock_rdlock(&n->maplock);
    struct txn *t = n->txn;
    if (t) {
        pthread_mutex_lock(&t->mu);
        if (!t->active) {
            pthread_mutex_unlock(&t->mu);
            t = NULL;
        }
    }
    if (writepage && atomic_load(&n->discard_wb) > 0) {
        rc = 1; /* an abort raced with this writeback */
    } else if (t) {
        rc = fn(n, &t->tid, &t->ranges, &t->bytes, arg);
        clock_gettime(CLOCK_MONOTONIC, &t->last_use);
    } else {
        /* A write of its own: atomic, committed no_flush. */
        rvm_tid_t tid;
        uint64_t ranges = 0, bytes = 0;
        rvm_init_tid(&tid);
        rvm_return_t r = rvm_begin_transaction(&tid, restore);
        if (r != RVM_SUCCESS) {
            rc = -rvm_errno(r);
        } else {
            rc = fn(n, &tid, &ranges, &bytes, arg);
            if (rc == 0) {
                r = rvm_end_transaction(&tid, no_flush);
                rc = -rvm_errno(r);
            }
            if (rc < 0)
                rvm_abort_transaction(&tid);
        }
    }
    if (t)
        pthread_mutex_unlock(&t->mu);
    pthread_rwlock_unlock(&n->maplock);
    pthread_mutex_unlock(&n->mu);
    if (rc == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        atomic_store(&n->mtime_ns, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
    }
    return rc;
}

int do_flush(void)
{
    chan_yield_reader();
    return -rvm_errno(rvm_flush());
}
