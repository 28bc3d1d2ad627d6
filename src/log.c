/*
 * The log: creation, the status block, recovery at open, and the write
 * path (queue, group commit, force).
 *
 * Commit records are queued as images.  One thread at a time is the
 * *leader*: it takes the whole queue, places the records at the tail
 * (sequence numbers, epoch, CRC), writes them and forces the log once.
 * Flush commits that arrive while a leader forces wait and are written
 * together by the next leader: that is group commit.
 *
 * Positions: head <= durable_pos <= tail.  Records in [head, durable_pos)
 * are durable and not yet truncated; [durable_pos, tail) are being written
 * by the leader.  Only truncation moves head; only the leader moves tail.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "log_apply.h"
#include "log_format.h"
#include "log_scan.h"
#include "log_impl.h"
#include "rvm_internal.h"

uint64_t log_data_size(struct rvm_log *L)
{
    return L->D;
}

/* ---- writing ---- */

static int wbuf_write(struct rvm_log *L)
{
    if (!L->wlen)
        return 0;
    uint64_t phys = 2 * L->S + L->wstart % L->D;
    ssize_t n = L->io->pwrite(L->f, L->wbuf, L->wlen, phys);
    if (n < 0)
        return (int)n;
    STATS_ADD(log_bytes_written, L->wlen);
    L->wlen = 0;
    return 0;
}

#define WBUF_DIRECT (16u << 10)

static int wbuf_put(struct rvm_log *L, const void *p, size_t len)
{
    /* A record that starts a lap is not contiguous with the buffer. */
    if (L->wlen && L->tail % L->D == 0) {
        int rc = wbuf_write(L);
        if (rc < 0)
            return rc;
    }
    if (L->wlen == 0 && len >= WBUF_DIRECT) {
        /* A coalesced batch: written from its image, not copied first. */
        ssize_t n = L->io->pwrite(L->f, p, len, 2 * L->S + L->tail % L->D);
        if (n < 0)
            return (int)n;
        STATS_ADD(log_bytes_written, len);
        L->tail += len;
        return 0;
    }
    if (L->wlen == 0)
        L->wstart = L->tail;
    if (L->wlen + len > L->wcap) {
        size_t nc = L->wcap ? L->wcap : 65536;
        while (nc < L->wlen + len)
            nc *= 2;
        unsigned char *nb = realloc(L->wbuf, nc);
        if (!nb)
            return -ENOMEM;
        L->wbuf = nb;
        L->wcap = nc;
    }
    memcpy(L->wbuf + L->wlen, p, len);
    L->wlen += len;
    L->tail += len;
    return 0;
}

static void seal(struct rvm_log *L, unsigned char *rec, size_t len)
{
    struct log_rec_hdr h;
    memcpy(&h, rec, sizeof h);
    h.magic = LOG_RECORD_MAGIC;
    h.seq = L->next_seq++;
    h.epoch = L->epoch;
    h.len = len;
    memcpy(rec, &h, sizeof h);
    struct log_rec_trailer t = {.crc = crc32c(0, rec, len - sizeof t), .magic = LOG_RECORD_MAGIC};
    memcpy(rec + len - sizeof t, &t, sizeof t);
}

/* Put a WRAP record (or nothing, if there is no room for one) at the tail. */
static int place_wrap(struct rvm_log *L)
{
    uint64_t left = L->D - L->tail % L->D;
    uint64_t next_lap = L->tail + left;
    int rc = 0;
    if (left >= LOG_REC_MIN) {
        unsigned char rec[LOG_REC_MIN] = {0};
        struct log_rec_hdr h = {.type = LOG_REC_WRAP};
        memcpy(rec, &h, sizeof h);
        seal(L, rec, sizeof rec);
        rc = wbuf_put(L, rec, sizeof rec);
    }
    /* The next record starts a new lap: not contiguous with the buffer. */
    if (rc == 0)
        rc = wbuf_write(L);
    L->tail = next_lap;
    return rc;
}

/* Write, force, and publish the new durable position. */
static int force(struct rvm_log *L)
{
    /* No record of this epoch is durable before its status is. */
    int rc = log_recovery_finish(L);
    if (rc == 0)
        rc = wbuf_write(L);
    uint64_t t0 = rvm_now_usec();
    if (rc == 0)
        rc = L->io->sync(L->f);
    if (rc < 0)
        return rc;
    uint64_t dt = rvm_now_usec() - t0;
    L->force_usec = L->force_usec ? (3 * L->force_usec + dt) / 4 : dt;
    STATS_ADD(n_forces, 1);
    pthread_mutex_lock(&L->mu);
    L->durable_pos = L->tail;
    L->durable_seq = L->next_seq;
    pthread_mutex_unlock(&L->mu);
    return 0;
}

/* Add the batch's new segments to the dictionary before any record names them. */
static int dict_add(struct rvm_log *L, struct log_img *batch)
{
    struct seg *added[64];
    size_t nadded = 0;
    bool any = false;
    pthread_mutex_lock(&L->status_mu);
    /* The status this writes must carry the epoch's head. */
    int frc = recovery_finish_locked(L);
    if (frc < 0) {
        pthread_mutex_unlock(&L->status_mu);
        return frc;
    }
    pthread_mutex_lock(&rvm.seg_mu);
    for (struct log_img *i = batch; i; i = i->next)
        for (size_t k = 0; k < i->nsegs; k++)
            if (!i->segs[k]->in_dict) {
                i->segs[k]->in_dict = true;
                any = true;
                if (nadded < 64)
                    added[nadded++] = i->segs[k];
            }
    pthread_mutex_unlock(&rvm.seg_mu);
    int rc = 0;
    if (any) {
        pthread_mutex_lock(&L->mu);
        uint64_t h = L->head, hs = L->head_seq;
        pthread_mutex_unlock(&L->mu);
        rc = status_write(L, h, hs, L->epoch, NULL, 0);
        if (rc < 0) {
            /* Not durable: the next batch must try again.  With more than
             * 64 new segments some stay marked; mark them all back. */
            pthread_mutex_lock(&rvm.seg_mu);
            for (size_t k = 0; k < nadded; k++)
                added[k]->in_dict = false;
            for (struct log_img *i = batch; i && nadded == 64; i = i->next)
                for (size_t k = 0; k < i->nsegs; k++)
                    i->segs[k]->in_dict = false;
            pthread_mutex_unlock(&rvm.seg_mu);
        }
    }
    pthread_mutex_unlock(&L->status_mu);
    return rc;
}

/*
 * After a failed write or force: apply the durable records, then start a
 * new epoch with a forced status write.  Records of the failed batch keep
 * the old epoch, so recovery can never follow them.  Leader only.
 */
static int heal(struct rvm_log *L)
{
    pthread_mutex_lock(&L->mu);
    bool poisoned = L->poisoned;
    pthread_mutex_unlock(&L->mu);
    if (!poisoned)
        return 0;
    int rc = log_truncate(L, false);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&L->status_mu);
    pthread_mutex_lock(&L->mu);
    uint64_t h = L->head, hs = L->head_seq, epoch = L->epoch + 1;
    pthread_mutex_unlock(&L->mu);
    rc = h == L->tail ? status_write(L, h, hs, epoch, NULL, 0) : -EIO;
    if (rc == 0) {
        pthread_mutex_lock(&L->mu);
        L->epoch = epoch;
        L->poisoned = false;
        pthread_mutex_unlock(&L->mu);
    }
    pthread_mutex_unlock(&L->status_mu);
    return rc;
}

int log_heal(struct rvm_log *L)
{
    pthread_mutex_lock(&L->mu);
    while (L->leader)
        pthread_cond_wait(&L->cond, &L->mu);
    L->leader = true;
    pthread_mutex_unlock(&L->mu);
    int rc = heal(L);
    pthread_mutex_lock(&L->mu);
    L->leader = false;
    pthread_cond_broadcast(&L->cond);
    pthread_mutex_unlock(&L->mu);
    return rc;
}

/*
 * Place and write the batch, and force it when do_force.  *durable_upto
 * is set to the last image of the batch known durable (NULL for none)
 * even on failure; a full log forces along the way.
 */
static int batch_write(struct rvm_log *L, struct log_img *batch, struct log_img **durable_upto,
                       bool do_force)
{
    *durable_upto = NULL;
    int rc = heal(L);
    if (rc < 0)
        return rc;
    rc = dict_add(L, batch);
    if (rc == -ENOSPC) {
        /* The dictionary is full of segments named by live records: apply
         * them, which empties it of all but this batch's segments. */
        if ((rc = log_truncate(L, false)) == 0)
            rc = dict_add(L, batch);
    }
    if (rc < 0)
        return rc;
    struct log_img *placed = NULL;
    for (struct log_img *img = batch; img; img = img->next) {
        for (;;) {
            pthread_mutex_lock(&L->mu);
            uint64_t head = L->head;
            pthread_mutex_unlock(&L->mu);
            uint64_t left = L->D - L->tail % L->D;
            uint64_t waste = img->len > left ? left : 0;
            if (L->tail + waste + img->len - head <= L->D) {
                if (waste && (rc = place_wrap(L)) < 0)
                    return rc;
                break;
            }
            /* Full: make what is placed durable, truncate, retry. */
            if ((rc = force(L)) < 0)
                return rc;
            *durable_upto = placed;
            if (head == L->tail && waste) {
                if ((rc = place_wrap(L)) < 0 || (rc = force(L)) < 0)
                    return rc;
            }
            if ((rc = log_truncate(L, false)) < 0)
                return rc;
            pthread_mutex_lock(&L->mu);
            bool moved = L->head != head;
            pthread_mutex_unlock(&L->mu);
            if (!moved && !(head == L->tail && waste))
                return -ENOSPC;
        }
        seal(L, img->buf, img->len);
        if ((rc = wbuf_put(L, img->buf, img->len)) < 0)
            return rc;
        STATS_ADD(bytes_logged, img->data_len);
        placed = img;
        if (L->wlen >= WBUF_MAX && (rc = wbuf_write(L)) < 0)
            return rc;
    }
    if (!do_force) {
        if ((rc = wbuf_write(L)) < 0)
            return rc;
        L->wb_hint = true; /* see writeback_hint */
        return 0;
    }
    if ((rc = force(L)) < 0)
        return rc;
    *durable_upto = placed;
    return 0;
}

/*
 * Start the write-back of what a no_flush write-out wrote, so that the
 * force that will cover it finds it on its way.  A hint: the force stays
 * the durability point.  Called after the write-out has given up the
 * leader's role, with mu not held: sync_file_range can block for 150 us
 * and more, and an rvm_flush that came meanwhile waited for it before it
 * could write and force.
 */
static void writeback_hint(struct rvm_log *L)
{
    int fd = L->io->fd ? L->io->fd(L->f) : -1;
    if (fd >= 0)
        sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/*
 * Written-but-unforced no_flush images are forced by the next write-out
 * once they pass this many times flush_buf_len, or W_MAX_MIN bytes if
 * that is more: it bounds the memory they hold and the work a failed
 * force sends back to the queue.  The floor is for big transactions
 * (a 1 MiB write through rvmfs is one): 8 x 256 KiB forced the log every
 * second one, 600 fdatasyncs per GiB written.
 */
#define W_MAX_FACTOR 8
#define W_MAX_MIN ((size_t)32 << 20)

static size_t w_max(void)
{
    size_t m = W_MAX_FACTOR * (size_t)OPT(flush_buf_len);
    return m > W_MAX_MIN ? m : W_MAX_MIN;
}

/*
 * Group commit: a flush commit that would lead waits briefly for the rest
 * of its group.  The commits a force releases need some CPU each before
 * they commit again (on 2 vCPUs, one after the other); a leader that
 * forced at once would carry only those that queued during the last
 * force and leave the others a whole force behind, and the writers then
 * settle into two halves that take turns, half a group per force.
 *
 * The group expected is everyone who took part in the last force: its
 * own commits and those that queued while it ran (gather_target).  The
 * commit that completes the group leads at once, rather than waking the
 * one that waits, whose wake-up (a halted vCPU's, on these machines) cost
 * 50 us and more before the force could begin; the waiting one wakes
 * with the rest of the group after the force.  The wait lasts at most
 * one force: forcing twice is better than waiting longer.  A lone writer
 * never pays it (its groups are of one), and writers that went away cost
 * one wait at most, since the target then shrinks to the group that
 * came.  With 8 writers through rvmfs a force carried 7 commits instead
 * of 4.  mu held.
 */
static bool gather_wanted(const struct rvm_log *L)
{
    return L->gather_target >= 2 && L->q_waiters < L->gather_target && L->force_usec;
}

/* Ends when the group came, when another leader carried it (its
 * broadcast wakes this wait too), or on the timer. */
static void gather(struct rvm_log *L)
{
    uint64_t f = L->force_usec;
    uint64_t until = rvm_now_usec() + (f < 2000 ? f : 2000);
    struct timespec ts = {.tv_sec = (time_t)(until / 1000000),
                          .tv_nsec = (long)(until % 1000000) * 1000};
    uint64_t gen = ++L->gather_gen;
    L->gathering = true;
    while (L->gathering && L->gather_gen == gen && !L->leader &&
           pthread_cond_clockwait(&L->cond, &L->mu, CLOCK_MONOTONIC, &ts) == 0)
        ;
    if (L->gather_gen == gen)
        L->gathering = false;
}

/*
 * Be the leader for one batch: the whole queue.  Called and returns with
 * mu held; drops it for the I/O.
 *
 * A batch is forced when a flush commit or rvm_flush waits for it
 * (must_force, or flush commits in it), or when too much is written and
 * not forced.  Otherwise (a no_flush write-out because the queue is
 * full) it is only written: its images move to the written list (wh) and
 * the next force covers them.  A record is acknowledged only after a
 * force that began after it and everything before it were written.
 * True when the caller should give writeback_hint once mu is released.
 *
 * The waiters are woken here, or with wake_later by the caller once it
 * has released mu: woken under mu, each of them ran into the held mutex,
 * slept again and needed a second wake-up when the leader let go of it,
 * two context switches per commit of the group right after the force.
 */
static bool lead(struct rvm_log *L, bool must_force, bool wake_later)
{
    L->leader = true;
    struct log_img *batch = L->qh;
    L->qh = L->qt = NULL;
    size_t bytes = L->q_bytes;
    L->q_bytes = 0;
    uint64_t waiters = L->q_waiters;
    L->q_waiters = 0;
    /* The written list stays in place (only leaders change it); a force
     * now covers it too. */
    struct log_img *w = L->wh;
    uint64_t w_end = L->w_end;
    bool do_force = must_force || waiters ||
                    L->w_bytes + bytes >= w_max();
    pthread_mutex_unlock(&L->mu);

    struct log_img *upto = NULL;
    int rc = 0;
    bool coalesced = false;
    if (batch) {
        struct log_img *merged =
            (OPT(flags) & RVM_COALESCE_TRANS) ? batch_coalesce(L, batch) : NULL;
        coalesced = merged != NULL;
        if (coalesced) {
            rc = batch_write(L, merged, &upto, do_force);
            /* The batch stands or falls as one record. */
            upto = upto ? batch : NULL;
            while (upto && upto->next)
                upto = upto->next;
            img_free(merged);
        } else {
            rc = batch_write(L, batch, &upto, do_force);
        }
    } else if (w && do_force) {
        /* Nothing new: the written list is in the file; sync it.  It is
         * never there while the log is poisoned (a failure requeues it). */
        rc = force(L);
    }
    if (rc < 0) {
        /* What was written after the last force may or may not be on disk,
         * each record whole or not.  Rewind, and poison the log: no record
         * goes out again until a new epoch makes those stale records
         * unreachable (log_heal), or a rewritten record could chain into
         * one of them. */
        pthread_mutex_lock(&L->mu);
        L->tail = L->durable_pos;
        L->next_seq = L->durable_seq;
        L->poisoned = true;
        pthread_mutex_unlock(&L->mu);
        L->wlen = 0;
    }

    pthread_mutex_lock(&L->mu);
    /* Any force during this batch (at its end, or for a full log) came
     * after the written list reached the file: it covers it. */
    bool w_durable = w && L->durable_pos >= w_end;
    uint64_t nrec = w_durable ? L->w_nrec : 0;
    uint64_t new_w_nrec = w_durable ? 0 : L->w_nrec;
    struct log_img *i = batch, *requeue_h = NULL, *requeue_t = NULL;
    if (w) {
        L->wt->next = batch;
        i = w;
    }
    L->wh = L->wt = NULL;
    L->w_bytes = 0;
    bool in_batch = !w;
    bool durable = w ? w_durable : upto != NULL;
    while (i) {
        struct log_img *next = i->next;
        i->next = NULL;
        if (i == batch) {
            in_batch = true;
            durable = upto != NULL;
        }
        if (durable) {
            for (size_t k = 0; k < i->nsegs; k++) {
                i->segs[k]->queued--;
                i->segs[k]->last_seq = L->durable_seq - 1; /* an upper bound is enough */
            }
            L->durable_ticket = i->ticket;
            nrec += in_batch && !coalesced ? 1 : 0;
            if (i->waiter)
                i->state = IMG_DURABLE;
            else
                img_free(i);
        } else if (rc == 0) {
            /* Written, not forced (never a flush commit's: those force). */
            if (L->wt)
                L->wt->next = i;
            else
                L->wh = i;
            L->wt = i;
            L->w_bytes += i->len;
            new_w_nrec += in_batch && !coalesced ? 1 : 0;
        } else if (i->waiter) {
            for (size_t k = 0; k < i->nsegs; k++)
                i->segs[k]->queued--;
            i->state = IMG_FAILED;
            i->err = rc;
        } else {
            if (requeue_t)
                requeue_t->next = i;
            else
                requeue_h = i;
            requeue_t = i;
            L->q_bytes += i->len;
        }
        if (i == upto)
            durable = false;
        i = next;
    }
    if (coalesced && upto)
        nrec += 1;
    else if (coalesced && rc == 0)
        new_w_nrec += 1;
    if (L->wh) {
        L->w_nrec = new_w_nrec;
        L->w_end = L->tail;
    } else {
        L->w_nrec = 0;
    }
    if (requeue_h) {
        requeue_t->next = L->qh;
        if (!L->qh)
            L->qt = requeue_t;
        L->qh = requeue_h;
    }
    L->live_records += nrec;
    STATS_ADD(n_records, nrec);
    if (rc < 0)
        L->fail_gen++;
    L->leader = false;
    /* Those that queued during this force and this batch's own commits,
     * released now, make up the next group (gather). */
    if (waiters)
        L->gather_target = waiters + L->q_waiters;
    bool hint = L->wb_hint;
    L->wb_hint = false;
    long pct = OPT(truncate_pct);
    if (pct > 0 && (L->durable_pos - L->head) * 100 > (uint64_t)pct * L->D) {
        L->trunc_wanted = true;
        pthread_cond_signal(&L->tcond);
    }
    if (!wake_later)
        pthread_cond_broadcast(&L->cond);
    return hint && rc == 0;
}

/* How many write-outs' worth of no_flush commits may wait for the writer
 * thread before committers write themselves, and the floor of that in
 * bytes: a 1 MiB write through rvmfs is one commit that alone fills four
 * 256 KiB write-outs, and without the floor every such commit wrote the
 * log itself instead of handing it to the writer thread. */
#define Q_AHEAD 4
#define Q_AHEAD_MIN ((size_t)8 << 20)

static size_t q_ahead(void)
{
    size_t m = Q_AHEAD * (size_t)OPT(flush_buf_len);
    return m > Q_AHEAD_MIN ? m : Q_AHEAD_MIN;
}

/* L->mu held. */
static void enqueue(struct rvm_log *L, struct log_img *img, bool flush_it)
{
    img->ticket = ++L->next_ticket;
    img->waiter = flush_it;
    img->state = IMG_QUEUED;
    img->next = NULL;
    if (L->qt)
        L->qt->next = img;
    else
        L->qh = img;
    L->qt = img;
    L->q_bytes += img->len;
    /* Counted now, not when its committer waits: a leader that takes it
     * before then must force it (log_enqueue). */
    L->q_waiters += flush_it ? 1 : 0;
    for (size_t k = 0; k < img->nsegs; k++)
        img->segs[k]->queued++;
}

void log_enqueue(struct rvm_log *L, struct log_img *img, bool flush_it)
{
    pthread_mutex_lock(&L->mu);
    enqueue(L, img, flush_it);
    pthread_mutex_unlock(&L->mu);
}

/* Called with L->mu held, which it releases.  A no_flush image may be
 * written and freed by another thread from the moment it is queued, so
 * only a flush commit's image is touched here. */
static int commit_queued(struct rvm_log *L, struct log_img *img, bool flush_it)
{
    int rc = 0;
    bool hint = false, wake = false;
    /* After a failed sync of what recovery wrote no write-out can
     * succeed in this run: do not retry one (and coalesce the whole
     * queue) at every commit. */
    if (!flush_it && log_recovery_failed(L)) {
        /* queued until rvm_terminate */
    } else if (!flush_it) {
        size_t lim = (size_t)OPT(flush_buf_len);
        if (L->q_bytes >= lim && L->wthr_running && L->q_bytes < q_ahead()) {
            if (!L->wr_wanted) {
                L->wr_wanted = true;
                pthread_cond_signal(&L->wcond);
            }
        } else if (L->q_bytes >= lim) {
            /* No writer, or committers outrun it: the committer writes,
             * which bounds the memory the queue holds. */
            while (L->leader && L->wthr_running)
                pthread_cond_wait(&L->cond, &L->mu);
            if (!L->leader && L->q_bytes >= lim)
                hint = lead(L, false, false); /* a failure leaves the commit queued for a later flush */
        }
    } else {
        bool shared = false, gathered = false;
        while (img->state == IMG_QUEUED) {
            if (wake) {
                pthread_cond_broadcast(&L->cond); /* before this thread waits */
                wake = false;
            }
            if (L->leader || (L->gathering && L->q_waiters < L->gather_target)) {
                shared = true;
                pthread_cond_wait(&L->cond, &L->mu);
                continue;
            }
            if (L->gathering) {
                /* This commit completes the group: it leads, and the
                 * wait of the one gathering is over (see gather). */
                L->gathering = false;
            } else if (!gathered && gather_wanted(L)) {
                gathered = true;
                gather(L);
                continue;
            }
            lead(L, true, true);
            wake = true;
        }
        if (shared && img->state == IMG_DURABLE)
            STATS_ADD(n_group_commits, 1);
        rc = img->state == IMG_DURABLE ? 0 : img->err;
    }
    pthread_mutex_unlock(&L->mu);
    if (wake)
        pthread_cond_broadcast(&L->cond);
    if (hint)
        writeback_hint(L);
    return rc;
}

int log_commit(struct rvm_log *L, struct log_img *img, bool flush_it)
{
    pthread_mutex_lock(&L->mu);
    enqueue(L, img, flush_it);
    return commit_queued(L, img, flush_it);
}

int log_commit_queued(struct rvm_log *L, struct log_img *img, bool flush_it)
{
    pthread_mutex_lock(&L->mu);
    return commit_queued(L, img, flush_it);
}

/*
 * The writer thread: a no_flush write-out (coalescing, placing, writing,
 * starting the write-back) runs here rather than on the committing
 * thread, which goes on with its next transactions meanwhile.  With a
 * flush every thousand transactions that was a third of a committing
 * thread's time, half of it waiting in the kernel.  A write-out that
 * fails leaves its commits queued and the log poisoned: the next commit
 * past the threshold asks again, and a flush heals the log first.
 */
void *log_writer(void *arg)
{
    struct rvm_log *L = arg;
    pthread_mutex_lock(&L->mu);
    while (!L->stop) {
        if (!L->wr_wanted) {
            pthread_cond_wait(&L->wcond, &L->mu);
            continue;
        }
        if (L->leader) {
            pthread_cond_wait(&L->cond, &L->mu);
            continue;
        }
        L->wr_wanted = false;
        if (L->q_bytes < OPT(flush_buf_len))
            continue;
        uint64_t g = L->fail_gen;
        if (lead(L, false, false)) {
            pthread_mutex_unlock(&L->mu);
            writeback_hint(L);
            pthread_mutex_lock(&L->mu);
        }
        /* Commits that arrived while it wrote may have filled the queue
         * again; after a failure wait for a commit to ask. */
        if (L->fail_gen == g && L->q_bytes >= OPT(flush_buf_len))
            L->wr_wanted = true;
    }
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

int log_flush(struct rvm_log *L)
{
    /* Also what recovery applied is durable when this returns. */
    int rc = log_recovery_finish(L);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&L->mu);
    uint64_t target = L->next_ticket, g = L->fail_gen;
    bool wrote = L->qh != NULL || L->wh != NULL;
    while (L->durable_ticket < target) {
        if (L->fail_gen != g) {
            rc = -EIO;
            break;
        }
        if (!L->qh && !L->wh && !L->leader)
            break;
        if (!L->leader)
            lead(L, true, false);
        else
            pthread_cond_wait(&L->cond, &L->mu);
    }
    pthread_mutex_unlock(&L->mu);
    if (wrote && rc == 0)
        STATS_ADD(n_flushes, 1);
    return rc;
}

void log_lock(struct rvm_log *L)
{
    pthread_mutex_lock(&L->mu);
}

void log_unlock(struct rvm_log *L)
{
    pthread_mutex_unlock(&L->mu);
}

uint64_t log_head_seq(struct rvm_log *L)
{
    return L->head_seq;
}

bool log_seg_pending(struct rvm_log *L, struct seg *s)
{
    pthread_mutex_lock(&L->mu);
    bool p = s->queued > 0 || (s->last_seq && s->last_seq >= L->head_seq);
    pthread_mutex_unlock(&L->mu);
    return p;
}

void log_stats(struct rvm_log *L, rvm_stats_t *st)
{
    pthread_mutex_lock(&L->mu);
    st->log_size = L->D;
    st->log_used = L->durable_pos - L->head;
    st->log_records = L->live_records;
    st->no_flush_pending = 0;
    for (struct log_img *i = L->qh; i; i = i->next)
        st->no_flush_pending++;
    for (struct log_img *i = L->wh; i; i = i->next)
        st->no_flush_pending++;
    pthread_mutex_unlock(&L->mu);
}
