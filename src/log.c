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
    struct log_img *qh, *qt;
    size_t q_bytes;
    uint64_t q_count;
    uint64_t next_ticket, durable_ticket, fail_gen;
    bool leader, truncating;

    /* leader only */
    uint64_t tail, next_seq;
    unsigned char *wbuf;
    size_t wlen, wcap;
    uint64_t wstart;            /* logical position of wbuf[0] */

    pthread_t thr;
    bool thr_running, stop, trunc_wanted;
    pthread_cond_t tcond;
};

uint64_t log_data_size(struct rvm_log *L)
{
    return L->D;
}

void img_free(struct log_img *img)
{
    if (img) {
        free(img->buf);
        free(img->segs);
        free(img);
    }
}

/* ---- status block ---- */

/*
 * Write the status with the given head to slot (gen % 2) and force it.
 * Caller holds status_mu.  drop[] lists segments to leave out of the
 * dictionary.  Durability point: after the sync, recovery starts at head.
 */
static int status_write(struct rvm_log *L, uint64_t head, uint64_t head_seq,
                        uint64_t epoch, struct seg **drop, size_t ndrop)
{
    size_t cap = L->S;
    unsigned char *buf = calloc(1, cap);
    if (!buf)
        return -ENOMEM;
    struct log_status st = {
        .magic = LOG_STATUS_MAGIC, .version = LOG_VERSION, .gen = L->gen + 1,
        .status_size = L->S, .data_size = L->D, .head = head,
        .head_seq = head_seq, .epoch = epoch,
    };
    size_t used = sizeof st;
    int rc = 0;
    pthread_mutex_lock(&rvm.seg_mu);
    uint64_t max_id = 0;
    for (struct seg *s = rvm.segs; s; s = s->next) {
        if (s->id > max_id)
            max_id = s->id;
        if (!s->in_dict)
            continue;
        bool dropped = false;
        for (size_t i = 0; i < ndrop; i++)
            dropped |= drop[i] == s;
        if (dropped)
            continue;
        size_t plen = strlen(s->path);
        size_t need = sizeof(struct log_dict_entry) + log_align(plen);
        if (used + need > cap) {
            rc = -ENOSPC; /* too many segments with live records */
            break;
        }
        struct log_dict_entry e = {.seg_id = s->id, .path_len = (uint32_t)plen};
        memcpy(buf + used, &e, sizeof e);
        memcpy(buf + used + sizeof e, s->path, plen);
        used += need;
        st.n_segs++;
    }
    pthread_mutex_unlock(&rvm.seg_mu);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    st.next_seg_id = max_id + 1;
    st.used = (uint32_t)used;
    memcpy(buf, &st, sizeof st);
    uint32_t crc = crc32c(0, buf, used);
    memcpy(buf + offsetof(struct log_status, crc), &crc, sizeof crc);
    size_t wlen = (used + 4095) & ~(size_t)4095;
    uint64_t off = ((L->gen + 1) % 2) * L->S;
    ssize_t n = L->io->pwrite(L->f, buf, wlen, off);
    free(buf);
    if (n < 0)
        return (int)n;
    rc = L->io->sync(L->f);
    if (rc == 0) {
        L->gen++;
        STATS_ADD(n_forces, 1);
    }
    return rc;
}

int log_create(const char *path, uint64_t data_size, long mode)
{
    const rvm_io_methods *io = rvm_io();
    rvm_io_file *f;
    data_size = (data_size + 4095) & ~(uint64_t)4095;
    if (data_size < LOG_MIN_DATA_SIZE)
        return -ERANGE;
    int rc = io->open(path, O_RDWR | O_CREAT | O_EXCL, (mode_t)mode, &f);
    if (rc < 0)
        return rc;
    uint64_t S = LOG_STATUS_SIZE_DEFAULT;
    uint64_t total = 2 * S + data_size;
    size_t chunk = 1u << 20;
    unsigned char *zero = calloc(1, chunk);
    if (!zero) {
        rc = -ENOMEM;
        goto fail;
    }
    /* Write real zeros rather than fallocate: overwriting blocks that are
     * already allocated and written is what makes forces cheap. */
    for (uint64_t off = 0; off < total && rc == 0; off += chunk) {
        size_t n = total - off < chunk ? (size_t)(total - off) : chunk;
        ssize_t w = io->pwrite(f, zero, n, off);
        if (w < 0)
            rc = (int)w;
    }
    free(zero);
    if (rc < 0)
        goto fail;
    struct rvm_log L = {.io = io, .f = f, .S = S, .D = data_size, .gen = 0};
    rc = status_write(&L, 0, 1, 1, NULL, 0);
    if (rc < 0)
        goto fail;
    return io->close(f);
fail:
    io->close(f);
    unlink(path);
    return rc;
}

/* ---- open and recover ---- */

static int read_status(struct rvm_log *L, struct log_status *best, unsigned char **best_slot)
{
    unsigned char *slot[2] = {malloc(L->S), malloc(L->S)};
    int ok[2] = {0, 0};
    char why[2][100] = {"", ""};
    int vrc = 0;
    if (!slot[0] || !slot[1]) {
        free(slot[0]);
        free(slot[1]);
        return -ENOMEM;
    }
    for (int i = 0; i < 2; i++) {
        ssize_t n = L->io->pread(L->f, slot[i], L->S, (uint64_t)i * L->S);
        if (n < 0) {
            free(slot[0]);
            free(slot[1]);
            return (int)n;
        }
        if ((uint64_t)n == L->S) {
            int c = log_status_check(slot[i], L->S, why[i], sizeof why[i]);
            ok[i] = c == 0;
            if (c == -EPROTO)
                vrc = c;
        } else {
            snprintf(why[i], sizeof why[i], "file too short");
        }
    }
    int pick = -1;
    struct log_status st[2];
    for (int i = 0; i < 2; i++)
        if (ok[i]) {
            memcpy(&st[i], slot[i], sizeof st[i]);
            if (pick < 0 || st[i].gen > st[pick].gen)
                pick = i;
        }
    if (pick < 0) {
        rvm_set_errmsg("not an RVM log: status slot 0: %s; slot 1: %s", why[0], why[1]);
        free(slot[0]);
        free(slot[1]);
        return vrc ? vrc : -EINVAL;
    }
    *best = st[pick];
    *best_slot = slot[pick];
    free(slot[1 - pick]);
    return 0;
}

static void *trunc_thread(void *arg);

int log_open(const char *path, struct rvm_log **out)
{
    struct rvm_log *L = calloc(1, sizeof *L);
    if (!L)
        return -ENOMEM;
    L->io = rvm_io();
    L->S = LOG_STATUS_SIZE_DEFAULT;
    pthread_mutex_init(&L->mu, NULL);
    pthread_mutex_init(&L->status_mu, NULL);
    pthread_cond_init(&L->cond, NULL);
    pthread_cond_init(&L->tcond, NULL);
    int rc = L->io->open(path, O_RDWR, 0, &L->f);
    if (rc < 0) {
        rvm_set_errmsg("cannot open log %s: %s", path, strerror(-rc));
        free(L);
        return rc == -ENOENT ? -ENOENT : rc;
    }
    struct log_status st;
    unsigned char *slot = NULL;
    rc = read_status(L, &st, &slot);
    if (rc < 0)
        goto fail;
    L->D = st.data_size;
    L->gen = st.gen;
    uint64_t fsize;
    rc = L->io->size(L->f, &fsize);
    if (rc == 0 && fsize < 2 * L->S + L->D) {
        rvm_set_errmsg("log %s is shorter than its status block says", path);
        rc = -EINVAL;
    }
    /* The dictionary names the segments that live records refer to. */
    size_t p = sizeof st;
    for (uint32_t i = 0; rc == 0 && i < st.n_segs; i++) {
        struct log_dict_entry e;
        memcpy(&e, slot + p, sizeof e);
        if (p + sizeof e + e.path_len > st.used || e.path_len >= 4096) {
            rvm_set_errmsg("log %s: corrupt segment dictionary", path);
            rc = -EINVAL;
            break;
        }
        char name[4096];
        memcpy(name, slot + p + sizeof e, e.path_len);
        name[e.path_len] = 0;
        if (!seg_add_known(e.seg_id, name))
            rc = -ENOMEM;
        p += sizeof e + log_align(e.path_len);
    }
    free(slot);
    if (rc < 0)
        goto fail;

    uint64_t t0 = rvm_now_usec();
    struct log_scan scan;
    log_scan_init(&scan, L->io, L->f, &st, UINT64_MAX, rvm.recovery_buf_len);
    uint64_t n_applied, n_skipped;
    rc = log_apply_walk(&scan, &n_applied, &n_skipped);
    log_scan_done(&scan);
    if (rc < 0) {
        rvm_set_errmsg("recovery failed after %llu records: %s",
                       (unsigned long long)n_applied, strerror(-rc));
        goto fail;
    }
    /* A new epoch: records left beyond the end of this walk can never be
     * taken for live ones, whatever their sequence numbers. */
    L->head = L->durable_pos = L->tail = scan.pos;
    L->head_seq = L->durable_seq = L->next_seq = scan.seq;
    L->epoch = st.epoch + 1;
    pthread_mutex_lock(&rvm.seg_mu);
    for (struct seg *s = rvm.segs; s; s = s->next)
        s->in_dict = false;
    pthread_mutex_unlock(&rvm.seg_mu);
    pthread_mutex_lock(&L->status_mu);
    rc = status_write(L, L->head, L->head_seq, L->epoch, NULL, 0);
    pthread_mutex_unlock(&L->status_mu);
    if (rc < 0) {
        rvm_set_errmsg("recovery could not write the log status: %s", strerror(-rc));
        goto fail;
    }
    rvm.stats.n_recovered_records = n_applied;
    rvm.stats.recovery_usec = rvm_now_usec() - t0;
    if (n_applied || n_skipped)
        rvm_set_errmsg("recovered %llu records (%llu ranges of missing segments skipped); %s",
                       (unsigned long long)n_applied, (unsigned long long)n_skipped, scan.why);
    else
        rvm_set_errmsg("log empty; %s", scan.why);
    *out = L;
    if (pthread_create(&L->thr, NULL, trunc_thread, L) == 0)
        L->thr_running = true;
    return 0;
fail:
    L->io->close(L->f);
    free(L);
    return rc;
}

int log_close(struct rvm_log *L)
{
    if (L->thr_running) {
        pthread_mutex_lock(&L->mu);
        L->stop = true;
        pthread_cond_signal(&L->tcond);
        pthread_mutex_unlock(&L->mu);
        pthread_join(L->thr, NULL);
    }
    while (L->qh) {
        struct log_img *i = L->qh;
        L->qh = i->next;
        img_free(i);
    }
    int rc = L->io->close(L->f);
    free(L->wbuf);
    pthread_mutex_destroy(&L->mu);
    pthread_mutex_destroy(&L->status_mu);
    pthread_cond_destroy(&L->cond);
    pthread_cond_destroy(&L->tcond);
    free(L);
    return rc;
}

/* ---- truncation ---- */

/*
 * Apply [head, durable_pos) to the segments, then move head.  One at a
 * time; a caller that finds one running waits for it and runs its own so
 * that everything durable when it was called gets applied.
 */
int log_truncate(struct rvm_log *L, bool automatic)
{
    pthread_mutex_lock(&L->mu);
    while (L->truncating)
        pthread_cond_wait(&L->cond, &L->mu);
    L->truncating = true;
    struct log_status st = {.status_size = L->S, .data_size = L->D,
                            .head = L->head, .head_seq = L->head_seq, .epoch = L->epoch};
    uint64_t end = L->durable_pos, end_seq = L->durable_seq;
    pthread_mutex_unlock(&L->mu);

    int rc = 0;
    uint64_t n_applied = 0, n_skipped = 0;
    if (end != st.head) {
        struct log_scan scan;
        log_scan_init(&scan, L->io, L->f, &st, end, rvm.recovery_buf_len);
        rc = log_apply_walk(&scan, &n_applied, &n_skipped);
        if (rc == 0 && scan.pos < end) {
            rvm_set_errmsg("truncation found a bad record: %s", scan.why);
            rc = -EINVAL;
        }
        log_scan_done(&scan);
    }
    if (rc == 0) {
        /* Segments with nothing left in the log and no mapping leave the
         * dictionary with this status write. */
        pthread_mutex_lock(&L->status_mu);
        struct seg **drop = NULL;
        size_t ndrop = 0, cap = 0;
        pthread_mutex_lock(&L->mu);
        pthread_mutex_lock(&rvm.seg_mu);
        for (struct seg *s = rvm.segs; s; s = s->next) {
            if (!s->in_dict || s->nmapped || s->queued || s->last_seq >= end_seq)
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
        rc = status_write(L, end, end_seq, st.epoch, drop, ndrop);
        if (rc == 0) {
            pthread_mutex_lock(&rvm.seg_mu);
            for (size_t i = 0; i < ndrop; i++)
                drop[i]->in_dict = false;
            pthread_mutex_unlock(&rvm.seg_mu);
        }
        free(drop);
        pthread_mutex_unlock(&L->status_mu);
    }
    pthread_mutex_lock(&L->mu);
    if (rc == 0) {
        STATS_ADD(bytes_truncated, end - L->head);
        L->head = end;
        L->head_seq = end_seq;
        L->live_records -= n_applied < L->live_records ? n_applied : L->live_records;
        STATS_ADD(n_truncations, 1);
        if (automatic)
            STATS_ADD(n_auto_truncations, 1);
    }
    L->truncating = false;
    pthread_cond_broadcast(&L->cond);
    pthread_mutex_unlock(&L->mu);
    return rc;
}

static void *trunc_thread(void *arg)
{
    struct rvm_log *L = arg;
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
static int batch_write(struct rvm_log *L, struct log_img *batch, struct log_img **durable_upto)
{
    *durable_upto = NULL;
    int rc = dict_add(L, batch);
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
    int rc = batch ? batch_write(L, batch, &upto) : (upto = NULL, 0);
    if (rc < 0) {
        /* Forget what was written after the last force: the next leader
         * overwrites it with the same sequence numbers.  Clear the first
         * header there so that a record that did reach the disk is not
         * replayed if nothing overwrites it. */
        pthread_mutex_lock(&L->mu);
        L->tail = L->durable_pos;
        L->next_seq = L->durable_seq;
        pthread_mutex_unlock(&L->mu);
        L->wlen = 0;
        unsigned char zero[LOG_REC_MIN] = {0};
        if (L->D - L->tail % L->D >= LOG_REC_MIN &&
            L->io->pwrite(L->f, zero, sizeof zero, 2 * L->S + L->tail % L->D) >= 0)
            L->io->sync(L->f);
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
            nrec++;
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
    L->live_records += nrec;
    STATS_ADD(n_records, nrec);
    if (rc < 0)
        L->fail_gen++;
    L->leader = false;
    if (rvm.truncate_pct > 0 &&
        (L->durable_pos - L->head) * 100 > (uint64_t)rvm.truncate_pct * L->D) {
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
        if (L->q_bytes >= rvm.flush_buf_len && !L->leader)
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
