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

/* One allocation: the image, its segment list, then the record. */
struct log_img *img_alloc(size_t len, size_t nsegs)
{
    size_t segs_off = (sizeof(struct log_img) + 7) & ~(size_t)7;
    size_t buf_off = (segs_off + nsegs * sizeof(struct seg *) + 15) & ~(size_t)15;
    struct log_img *img = malloc(buf_off + len);
    if (!img)
        return NULL;
    memset(img, 0, sizeof *img);
    img->segs = (struct seg **)((char *)img + segs_off);
    img->buf = (unsigned char *)img + buf_off;
    return img;
}

void img_free(struct log_img *img)
{
    free(img);
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

static int wbuf_put(struct rvm_log *L, const void *p, size_t len)
{
    /* A record that starts a lap is not contiguous with the buffer. */
    if (L->wlen && L->tail % L->D == 0) {
        int rc = wbuf_write(L);
        if (rc < 0)
            return rc;
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
    int rc = wbuf_write(L);
    if (rc == 0)
        rc = L->io->sync(L->f);
    if (rc < 0)
        return rc;
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
 * Place and write the batch.  *durable_upto is set to the last image
 * known durable (NULL for none) even on failure.
 */
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

static int batch_write(struct rvm_log *L, struct log_img *batch, struct log_img **durable_upto)
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
    if ((rc = force(L)) < 0)
        return rc;
    *durable_upto = placed;
    return 0;
}

/*
 * Be the leader for one batch: the whole queue.  Called and returns with
 * mu held; drops it for the I/O.
 */
static void lead(struct rvm_log *L)
{
    L->leader = true;
    struct log_img *batch = L->qh;
    L->qh = L->qt = NULL;
    L->q_bytes = 0;
    pthread_mutex_unlock(&L->mu);

    struct log_img *upto;
    struct log_img *merged = (OPT(flags) & RVM_COALESCE_TRANS) ? batch_coalesce(L, batch) : NULL;
    int rc;
    bool coalesced = merged != NULL;
    if (coalesced) {
        rc = batch_write(L, merged, &upto);
        /* The batch stands or falls as one record. */
        upto = upto ? batch : NULL;
        while (upto && upto->next)
            upto = upto->next;
        img_free(merged);
    } else {
        rc = batch ? batch_write(L, batch, &upto) : (upto = NULL, 0);
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
    struct log_img *i = batch, *requeue_h = NULL, *requeue_t = NULL;
    bool durable = upto != NULL;
    uint64_t nrec = 0;
    while (i) {
        struct log_img *next = i->next;
        i->next = NULL;
        if (durable) {
            for (size_t k = 0; k < i->nsegs; k++) {
                i->segs[k]->queued--;
                i->segs[k]->last_seq = L->durable_seq - 1; /* an upper bound is enough */
            }
            L->durable_ticket = i->ticket;
            nrec += coalesced ? 0 : 1;
            if (i->waiter)
                i->state = IMG_DURABLE;
            else
                img_free(i);
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
    if (requeue_h) {
        requeue_t->next = L->qh;
        if (!L->qh)
            L->qt = requeue_t;
        L->qh = requeue_h;
    }
    if (coalesced && upto)
        nrec = 1;
    L->live_records += nrec;
    STATS_ADD(n_records, nrec);
    if (rc < 0)
        L->fail_gen++;
    L->leader = false;
    long pct = OPT(truncate_pct);
    if (pct > 0 && (L->durable_pos - L->head) * 100 > (uint64_t)pct * L->D) {
        L->trunc_wanted = true;
        pthread_cond_signal(&L->tcond);
    }
    pthread_cond_broadcast(&L->cond);
}

int log_commit(struct rvm_log *L, struct log_img *img, bool flush_it)
{
    pthread_mutex_lock(&L->mu);
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
    for (size_t k = 0; k < img->nsegs; k++)
        img->segs[k]->queued++;
    int rc = 0;
    if (!flush_it) {
        if (L->q_bytes >= OPT(flush_buf_len) && !L->leader)
            lead(L); /* a failure leaves the commit queued for a later flush */
    } else {
        bool shared = false;
        while (img->state == IMG_QUEUED) {
            if (!L->leader) {
                lead(L);
            } else {
                shared = true;
                pthread_cond_wait(&L->cond, &L->mu);
            }
        }
        if (shared && img->state == IMG_DURABLE)
            STATS_ADD(n_group_commits, 1);
        rc = img->state == IMG_DURABLE ? 0 : img->err;
    }
    pthread_mutex_unlock(&L->mu);
    return rc;
}

int log_flush(struct rvm_log *L)
{
    pthread_mutex_lock(&L->mu);
    uint64_t target = L->next_ticket, g = L->fail_gen;
    int rc = 0;
    bool wrote = L->qh != NULL;
    while (L->durable_ticket < target) {
        if (L->fail_gen != g) {
            rc = -EIO;
            break;
        }
        if (!L->qh && !L->leader)
            break;
        if (!L->leader)
            lead(L);
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
    pthread_mutex_unlock(&L->mu);
}
