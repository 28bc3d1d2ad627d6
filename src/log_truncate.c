/*
 * Truncation: apply durable records to their segments, then free their
 * log space.  Runs in its own thread past the threshold, and on demand.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "log_apply.h"
#include "log_format.h"
#include "log_impl.h"
#include "log_scan.h"
#include "merge.h"
#include "rvm_internal.h"

/* ---- truncation ---- */

/*
 * Apply [head, durable_pos) to the segments, then move head.  One at a
 * time; a caller that finds one running waits for it and runs its own so
 * that everything durable when it was called gets applied.
 */
int log_truncate(struct rvm_log *L, bool automatic)
{
    /* Records recovery applied come first: their segments are synced and
     * head moves past them before this walk starts at head. */
    int frc = log_recovery_finish(L);
    if (frc < 0) {
        rvm_set_errmsg("cannot sync the segments recovery wrote: %s", strerror(-frc));
        return frc;
    }
    pthread_mutex_lock(&L->mu);
    while (L->truncating)
        pthread_cond_wait(&L->cond, &L->mu);
    L->truncating = true;
    struct log_status st = {.status_size = L->S, .data_size = L->D,
                            .head = L->head, .head_seq = L->head_seq, .epoch = L->epoch};
    uint64_t end = L->durable_pos, end_seq = L->durable_seq;
    /* Set after the records up to durable_pos: never ahead of end. */
    uint64_t end_ticket = L->durable_ticket;
    struct log_status from = st;
    uint64_t n_before = 0;
    if (L->applied_valid && L->applied_head == L->head && L->applied_epoch == L->epoch &&
        L->applied_end <= end) {
        from.head = L->applied_end;
        from.head_seq = L->applied_seq;
        n_before = L->applied_n;
    }
    pthread_mutex_unlock(&L->mu);

    int rc = 0;
    uint64_t n_applied = 0, n_skipped = 0;
    if (end != from.head) {
        struct log_scan scan;
        log_scan_init(&scan, L->io, L->f, &from, end, OPT(recovery_buf_len));
        log_scan_reuse(&scan, &L->trunc_bufs);
        /* Recovery's records are behind head now (log_recovery_finish):
         * from here to end, every record is one this process forced. */
        scan.trusted_end = end;
        rc = log_apply_walk(&scan, &n_applied, &n_skipped, NULL, NULL);
        if (rc == 0 && scan.pos < end) {
            rvm_set_errmsg("truncation found a bad record: %s", scan.why);
            rc = -EINVAL;
        }
        log_scan_done(&scan);
    }
    if (rc == 0) {
        /* Segments with nothing left in the log leave the dictionary with
         * this status write (mapped or not: a later commit adds them
         * again), so it holds only what live records name.  Not while the
         * log is poisoned: records of the failed batch, still reachable
         * until log_heal, may name them. */
        pthread_mutex_lock(&L->status_mu);
        struct seg **drop = NULL;
        size_t ndrop = 0, cap = 0;
        pthread_mutex_lock(&L->mu);
        /* The epoch now, not at the start: heal() may have moved on, and
         * writing the old one back would hide every record since. */
        uint64_t epoch = L->epoch;
        bool poisoned = L->poisoned;
        pthread_mutex_lock(&rvm.seg_mu);
        for (struct seg *s = rvm.segs; s && !poisoned; s = s->next) {
            if (!s->in_dict || s->queued || s->last_seq >= end_seq)
                continue;
            if (ndrop == cap) {
                cap = cap ? cap * 2 : 16;
                struct seg **nd = realloc(drop, cap * sizeof *nd);
                if (!nd)
                    break;
                drop = nd;
            }
            drop[ndrop++] = s;
        }
        pthread_mutex_unlock(&rvm.seg_mu);
        pthread_mutex_unlock(&L->mu);
        rc = status_write(L, end, end_seq, epoch, drop, ndrop);
        pthread_mutex_lock(&L->mu);
        pthread_mutex_lock(&rvm.seg_mu);
        /* Even when the sync failed, the status may reach the disk with
         * the next sync of the log: the dropped segments count as absent
         * either way, so a commit naming them writes them back first. */
        for (size_t i = 0; i < ndrop; i++)
            drop[i]->in_dict = false;
        if (rc == 0)
            seg_gc_locked();
        pthread_mutex_unlock(&rvm.seg_mu);
        n_applied += n_before;
        if (rc < 0) {
            L->applied_valid = true;
            L->applied_head = L->head;
            L->applied_epoch = st.epoch;
            L->applied_end = end;
            L->applied_seq = end_seq;
            L->applied_n = n_applied;
        }
        if (rc == 0) {
            L->applied_valid = false;
            /* Under status_mu, so that no later status write can carry
             * the old head: the log may reuse [old head, end) from now. */
            STATS_ADD(bytes_truncated, end - L->head);
            L->head = end;
            L->head_seq = end_seq;
            L->live_records -= n_applied < L->live_records ? n_applied : L->live_records;
            STATS_ADD(n_truncations, 1);
            if (end_ticket > L->applied_ticket)
                __atomic_store_n(&L->applied_ticket, end_ticket, __ATOMIC_RELEASE);
            if (automatic)
                STATS_ADD(n_auto_truncations, 1);
        }
        pthread_mutex_unlock(&L->mu);
        free(drop);
        pthread_mutex_unlock(&L->status_mu);
    }
    pthread_mutex_lock(&L->mu);
    L->truncating = false;
    pthread_cond_broadcast(&L->cond);
    pthread_mutex_unlock(&L->mu);
    if (rc == 0 && n_applied)
        region_release_clean(L);
    return rc;
}

uint64_t log_commit_mark(struct rvm_log *L)
{
    pthread_mutex_lock(&L->mu);
    uint64_t t = L->next_ticket;
    pthread_mutex_unlock(&L->mu);
    return t;
}

bool log_mark_applied(struct rvm_log *L, uint64_t mark)
{
    return __atomic_load_n(&L->applied_ticket, __ATOMIC_ACQUIRE) >= mark;
}

void *trunc_thread(void *arg)
{
    struct rvm_log *L = arg;
    /* The rest of recovery, in the background: a failure stays pending,
     * and the first force or truncation tries again and reports it. */
    log_recovery_finish(L);
    pthread_mutex_lock(&L->mu);
    while (!L->stop) {
        if (!L->trunc_wanted) {
            pthread_cond_wait(&L->tcond, &L->mu);
            continue;
        }
        L->trunc_wanted = false;
        pthread_mutex_unlock(&L->mu);
        log_truncate(L, true);
        pthread_mutex_lock(&L->mu);
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

