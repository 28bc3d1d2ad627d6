/*
 * The log's state, shared by log.c (write path), log_status.c (status
 * block, create, open and recover), log_truncate.c and log_batch.c.
 */
#ifndef RVM_LOG_IMPL_H
#define RVM_LOG_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "log_ahead.h"
#include "merge.h"
#include "rvm_internal.h"

#define WBUF_MAX (1u << 20)

struct rvm_log {
    const rvm_io_methods *io;
    rvm_io_file *f;
    uint64_t S, D;

    pthread_mutex_t status_mu;  /* serializes status writes; gen */
    uint64_t gen;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    uint64_t head, head_seq, epoch;
    uint64_t durable_pos, durable_seq;
    uint64_t live_records;
    /* [head, applied_end) is in the segments and synced, but the status
     * write that would have moved head there failed (it may be on disk
     * anyway).  The next truncation starts at applied_end: applying those
     * records again could be cut by a crash half way, leaving older bytes
     * that a status naming applied_end as head would never repair. */
    bool applied_valid;
    uint64_t applied_head, applied_epoch, applied_end, applied_seq, applied_n;
    /* Recovery applied [head, rec_end) to the segments in rec_segs but
     * did not sync them: the status on disk still names head and the
     * old epoch, so a crash recovers those records again.  Until
     * log_recovery_finish syncs them and writes the status (head =
     * rec_end, the new epoch), no status is written and nothing forced:
     * a record of the new epoch forced before would be lost, since the
     * old status's walk stops at it.  rec_pending: status_mu to change,
     * atomic to read. */
    bool rec_pending;
    int rec_err;                /* a sync of rec_segs failed: pending for good
                                 * (written under status_mu, read atomically) */
    uint64_t rec_end, rec_end_seq;
    struct seg **rec_segs;
    size_t n_rec_segs;
    struct log_img *qh, *qt;
    size_t q_bytes;
    uint64_t q_count;
    uint64_t q_waiters;         /* flush commits in the queue */
    /* Written to the log by a no_flush write-out but not forced yet,
     * oldest first: they stay until a force covers them (log.c). */
    struct log_img *wh, *wt;
    size_t w_bytes;
    uint64_t w_nrec;            /* log records they were written as */
    uint64_t w_end;             /* tail after the last of them */
    /* Group commit: before it leads, a flush commit may wait on cond for
     * the rest of its group (gathering; gather_gen tells one wait from
     * the next). */
    bool gathering;
    uint64_t gather_gen;
    uint64_t gather_target;     /* flush commits expected in the next group */
    uint64_t next_ticket, durable_ticket, fail_gen;
    /* Every commit up to this ticket is in its segment file: a truncation
     * that began after it was durable has completed (atomic to read). */
    uint64_t applied_ticket;
    bool leader, truncating;
    bool poisoned;              /* a write or force failed: log_heal first */

    /* leader only */
    uint64_t tail, next_seq;
    uint64_t force_usec;        /* recent duration of a log force */
    unsigned char *wbuf;
    size_t wlen, wcap;
    uint64_t wstart;            /* logical position of wbuf[0] */
    bool wb_hint;               /* a write-out wrote: writeback_hint due */
    struct merge bm;            /* batch_coalesce's working memory */
    struct log_img **bv;
    size_t bv_cap;

    pthread_t thr;
    bool thr_running, stop, trunc_wanted;
    pthread_cond_t tcond;
    struct ahead_keep trunc_bufs; /* the walk's read buffers; truncating owns them */

    /* The writer thread leads no_flush write-outs (log.c). */
    pthread_t wthr;
    bool wthr_running, wr_wanted;
    pthread_cond_t wcond;
};


int status_write(struct rvm_log *L, uint64_t head, uint64_t head_seq,
                 uint64_t epoch, struct seg **drop, size_t ndrop);
void *trunc_thread(void *arg);
void *log_writer(void *arg);
int recovery_finish_locked(struct rvm_log *L);
struct log_img *batch_coalesce(struct rvm_log *L, struct log_img *batch);

#endif
