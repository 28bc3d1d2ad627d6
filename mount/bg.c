/*
 * bg.c - the daemon's background threads.
 *
 * inval: drops the kernel's cached pages of files whose transaction was
 *   aborted (fuse_lowlevel_notify_inval_inode).  It runs apart from the
 *   request handlers because a notify sent from inside a handler for the
 *   same inode can deadlock; the handler that aborted waits for it, with
 *   no lock held, so that the abort is visible when the call returns.
 * timer: makes no_flush commits durable every flush_interval ms, aborts
 *   transactions idle longer than txn_timeout, removes the segments of
 *   unlinked files once the log has no record of them, and drops the
 *   private copies of files no longer written once truncation has
 *   applied them (seg.c).
 */
#include "daemon.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct inval {
    struct inval *next;
    fuse_ino_t ino;
    struct node *n;   /* holds a transaction reference until done */
    int refs;         /* queue + waiter (bg_mu) */
    bool done;
};

static pthread_mutex_t bg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t bg_cv = PTHREAD_COND_INITIALIZER;   /* work queued */
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER; /* work done */
static struct inval *q_head, **q_tail = &q_head;
static bool bg_quit;
static pthread_t inval_thr, timer_thr;
static bool started;

static void inval_release(struct inval *iv)
{
    /* caller holds bg_mu */
    if (--iv->refs == 0)
        free(iv);
}

/* The kernel keeps its cached file size after an invalidation, and a
 * mapping faults against it without asking: after an abort that made the
 * file longer again, pages past the stale size would SIGBUS.  Storing the
 * file's last page (its true bytes) raises the kernel's size to ours. */
static void size_push(fuse_ino_t ino, struct node *n)
{
    char page[4096];
    pthread_rwlock_rdlock(&n->maplock);
    uint64_t size = seg_size(n), start = 0;
    if (size && n->base) {
        start = (size - 1) & ~(uint64_t)(sizeof(page) - 1);
        memcpy(page, n->base + SEG_HDR + start, size - start);
    }
    pthread_rwlock_unlock(&n->maplock);
    if (!size)
        return;
    struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size - start);
    bv.buf[0].mem = page;
    fuse_lowlevel_notify_store(fs.se, ino, (off_t)start, &bv, 0);
}

/* The invalidation writes back the aborted transaction's dirty mapped
 * pages as WRITE requests, and the handler of the abort (over io_uring,
 * one of its queue's entries) waits until they are done: with every entry
 * of the queue the kernel picks taken by such waiters, the writeback would
 * wait for an entry that never comes.  Run where an entry is free.
 * *home: the thread's CPUs before, when it moved (true). */
static bool inval_place(cpu_set_t *home)
{
    int q = uring_idle_queue();
    if (q < 0 || q >= CPU_SETSIZE ||
        pthread_getaffinity_np(pthread_self(), sizeof(*home), home) != 0 ||
        !CPU_ISSET(q, home))
        return false;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(q, &one);
    return pthread_setaffinity_np(pthread_self(), sizeof(one), &one) == 0;
}

static void *inval_main(void *arg)
{
    (void)arg;
    cpu_set_t home;
    rcu_thread_online();
    pthread_mutex_lock(&bg_mu);
    for (;;) {
        while (!q_head && !bg_quit)
            pthread_cond_wait(&bg_cv, &bg_mu);
        if (!q_head)
            break;
        struct inval *iv = q_head;
        q_head = iv->next;
        if (!q_head)
            q_tail = &q_head;
        pthread_mutex_unlock(&bg_mu);
        /* Returns once the kernel dropped the pages; their writeback (aborted
         * bytes) reached the write handler, which discarded it. */
        if (!atomic_load(&fs.stopping) && fs.se) {
            bool moved = inval_place(&home);
            fuse_lowlevel_notify_inval_inode(fs.se, iv->ino, 0, 0);
            if (moved)
                pthread_setaffinity_np(pthread_self(), sizeof(home), &home);
            size_push(iv->ino, iv->n);
        }
        atomic_fetch_sub(&iv->n->discard_wb, 1);
        node_txn_unref(iv->n);
        pthread_mutex_lock(&bg_mu);
        iv->done = true;
        pthread_cond_broadcast(&done_cv);
        inval_release(iv);
    }
    pthread_mutex_unlock(&bg_mu);
    return NULL;
}

void bg_invalidate(fuse_ino_t ino, struct node *n, bool wait)
{
    struct inval *iv = calloc(1, sizeof(*iv));
    pthread_mutex_lock(&n->mu);
    node_txn_ref(n);
    pthread_mutex_unlock(&n->mu);
    pthread_mutex_lock(&bg_mu);
    if (!iv || !started) {
        pthread_mutex_unlock(&bg_mu);
        free(iv);
        atomic_fetch_sub(&n->discard_wb, 1);
        node_txn_unref(n);
        return;
    }
    iv->ino = ino;
    iv->n = n;
    iv->refs = wait ? 2 : 1;
    *q_tail = iv;
    q_tail = &iv->next;
    pthread_cond_broadcast(&bg_cv);
    if (wait) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 10; /* never hang a caller on a stuck kernel */
        while (!iv->done &&
               pthread_cond_timedwait(&done_cv, &bg_mu, &dl) != ETIMEDOUT)
            ;
        inval_release(iv);
    }
    pthread_mutex_unlock(&bg_mu);
}

static void *timer_main(void *arg)
{
    (void)arg;
    rcu_thread_online();
    struct timespec last_flush;
    clock_gettime(CLOCK_MONOTONIC, &last_flush);
    pthread_mutex_lock(&bg_mu);
    while (!bg_quit) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        unsigned tick = fs.flush_interval_ms && fs.flush_interval_ms < 200
                            ? fs.flush_interval_ms : 200;
        dl.tv_nsec += (long)tick * 1000000;
        dl.tv_sec += dl.tv_nsec / 1000000000;
        dl.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&bg_cv, &bg_mu, &dl);
        if (bg_quit)
            break;
        pthread_mutex_unlock(&bg_mu);
        if (fs.flush_interval_ms &&
            ts_ms_since(&last_flush) >= fs.flush_interval_ms) {
            rvm_stats_t st;
            /* After this, every no_flush commit so far is durable. */
            if (rvm_get_stats(&st) == RVM_SUCCESS && st.no_flush_pending)
                rvm_flush();
            clock_gettime(CLOCK_MONOTONIC, &last_flush);
        }
        if (fs.txn_timeout_s)
            txn_expire(fs.txn_timeout_s);
        store_orphans_collect();
        nodes_release_applied();
        pthread_mutex_lock(&bg_mu);
    }
    pthread_mutex_unlock(&bg_mu);
    return NULL;
}

int bg_start(void)
{
    int rc = pthread_create(&inval_thr, NULL, inval_main, NULL);
    if (rc)
        return -rc;
    pthread_setname_np(inval_thr, "rvmfs-inval");
    rc = pthread_create(&timer_thr, NULL, timer_main, NULL);
    if (rc == 0)
        pthread_setname_np(timer_thr, "rvmfs-timer");
    if (rc) {
        pthread_mutex_lock(&bg_mu);
        bg_quit = true;
        pthread_cond_broadcast(&bg_cv);
        pthread_mutex_unlock(&bg_mu);
        pthread_join(inval_thr, NULL);
        return -rc;
    }
    pthread_mutex_lock(&bg_mu);
    started = true;
    pthread_mutex_unlock(&bg_mu);
    return 0;
}

void bg_stop(void)
{
    pthread_mutex_lock(&bg_mu);
    if (!started) {
        pthread_mutex_unlock(&bg_mu);
        return;
    }
    bg_quit = true;
    started = false;
    pthread_cond_broadcast(&bg_cv);
    pthread_mutex_unlock(&bg_mu);
    pthread_join(timer_thr, NULL);
    pthread_join(inval_thr, NULL);
}
