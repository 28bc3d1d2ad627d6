/*
 * The status block (double-written), log creation, and opening a log
 * with recovery.
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

#define RECOVERY_READ ((size_t)64 << 20)

/* ---- status block ---- */

/*
 * Write the status with the given head to slot (gen % 2) and force it.
 * Caller holds status_mu.  drop[] lists segments to leave out of the
 * dictionary.  Durability point: after the sync, recovery starts at head.
 */
int status_write(struct rvm_log *L, uint64_t head, uint64_t head_seq,
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
    st.next_seg_id = seg_next_id_locked();
    for (struct seg *s = rvm.segs; s; s = s->next) {
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

/* Make the new name durable: fsync the directory holding it. */
static void sync_dir_of(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= sizeof dir)
        return;
    if (slash) {
        memcpy(dir, path, n ? n : 1);
        dir[n ? n : 1] = 0;
    } else {
        strcpy(dir, ".");
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/*
 * The log is built under a temporary name and linked into place only
 * when its status block is durable: a crash while creating leaves no
 * file under the log's name that is not a log.
 */
int log_create(const char *path, uint64_t data_size, long mode)
{
    const rvm_io_methods *io = rvm_io();
    rvm_io_file *f;
    data_size = (data_size + 4095) & ~(uint64_t)4095;
    if (data_size < LOG_MIN_DATA_SIZE)
        return -ERANGE;
    if (access(path, F_OK) == 0)
        return -EEXIST;
    char tmp[4096 + 16];
    if (strlen(path) + 10 >= sizeof tmp)
        return -ENAMETOOLONG;
    snprintf(tmp, sizeof tmp, "%s.creating", path);
    int rc = io->open(tmp, O_RDWR | O_CREAT | O_TRUNC, (mode_t)mode, &f);
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
    if ((rc = io->close(f)) < 0) {
        unlink(tmp);
        return rc;
    }
    rc = link(tmp, path) < 0 ? -errno : 0;
    /* Filesystems without hard links: rename (the name was free above). */
    if (rc == -EPERM || rc == -ENOTSUP || rc == -ENOSYS)
        rc = rename(tmp, path) < 0 ? -errno : 0;
    unlink(tmp);
    if (rc == 0)
        sync_dir_of(path);
    return rc;
fail:
    io->close(f);
    unlink(tmp);
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
    pthread_cond_init(&L->wcond, NULL);
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
    if (rc == 0 && (fsize < 2 * L->S || fsize - 2 * L->S < L->D)) {
        rvm_set_errmsg("log %s is shorter than its status block says", path);
        rc = -EINVAL;
    }
    /* The dictionary names the segments that live records refer to. */
    size_t p = sizeof st;
    for (uint32_t i = 0; rc == 0 && i < st.n_segs; i++) {
        struct log_dict_entry e;
        if (p + sizeof e > st.used) {
            rvm_set_errmsg("log %s: corrupt segment dictionary", path);
            rc = -EINVAL;
            break;
        }
        memcpy(&e, slot + p, sizeof e);
        if (e.path_len >= 4096 || p + sizeof e + e.path_len > st.used) {
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
    seg_reserve_ids(st.next_seg_id);

    uint64_t t0 = rvm_now_usec();
    /* Records the crashed process wrote but never forced may be in the
     * page cache only: applied to segments whose pages reach the disk
     * first, they would leave part of a transaction after a power loss
     * that drops them from the log. */
    rc = L->io->sync(L->f);
    if (rc < 0) {
        rvm_set_errmsg("cannot sync log %s: %s", path, strerror(-rc));
        goto fail;
    }
    /* Recovery reads in pieces of at least RECOVERY_READ (two buffers of
     * it, freed when it ends): a direct read of 16 MiB ran at 1.2-1.4
     * GB/s on the disks here, one of 64 MiB at 1.7-1.8, against 2 GB/s
     * for the kernel's own read-ahead. */
    size_t rd = OPT(recovery_buf_len) > RECOVERY_READ ? OPT(recovery_buf_len) : RECOVERY_READ;
    struct log_scan scan;
    log_scan_init(&scan, L->io, L->f, &st, UINT64_MAX, rd);
    log_scan_direct(&scan, path);
    uint64_t n_applied, n_skipped;
    struct seg **unsynced = NULL;
    size_t n_unsynced = 0;
    rc = log_apply_walk(&scan, &n_applied, &n_skipped, &unsynced, &n_unsynced);
    log_scan_done(&scan);
    if (rc < 0) {
        rvm_set_errmsg("recovery failed after %llu records: %s",
                       (unsigned long long)n_applied, strerror(-rc));
        goto fail;
    }
    /* A new epoch: records left beyond the end of this walk can never be
     * taken for live ones, whatever their sequence numbers. */
    L->durable_pos = L->tail = scan.pos;
    L->durable_seq = L->next_seq = scan.seq;
    L->epoch = st.epoch + 1;
    pthread_mutex_lock(&rvm.seg_mu);
    for (struct seg *s = rvm.segs; s; s = s->next)
        s->in_dict = false;
    pthread_mutex_unlock(&rvm.seg_mu);
    /* The recovered state is in the segments' page cache now, and the log
     * keeps it safe until they are synced: that sync and the status write
     * go on in the truncation thread (or the first force), so that the
     * caller starts without waiting for the disk to write what recovery
     * wrote.  The records' log space stays taken until then. */
    L->head = st.head;
    L->head_seq = st.head_seq;
    L->rec_end = scan.pos;
    L->rec_end_seq = scan.seq;
    L->rec_segs = unsynced;
    L->n_rec_segs = n_unsynced;
    L->rec_pending = true;
    if (n_applied == 0) {
        pthread_mutex_lock(&L->status_mu);
        rc = recovery_finish_locked(L);
        pthread_mutex_unlock(&L->status_mu);
        if (rc < 0) {
            rvm_set_errmsg("recovery could not write the log status: %s", strerror(-rc));
            goto fail;
        }
    }
    rvm.stats.n_recovered_records = n_applied;
    rvm.stats.recovery_usec = rvm_now_usec() - t0;
    if (n_applied || n_skipped)
        rvm_set_errmsg("recovered %llu records (%llu ranges of missing segments skipped); %s",
                       (unsigned long long)n_applied, (unsigned long long)n_skipped, scan.why);
    else
        rvm_set_errmsg("log empty; %s", scan.why);
    *out = L;
    /* Named so that top -H and perf tell the log's threads apart. */
    if (pthread_create(&L->thr, NULL, trunc_thread, L) == 0) {
        L->thr_running = true;
        pthread_setname_np(L->thr, "rvm-truncate");
    }
    /* Without it the committing thread writes its no_flush queue itself. */
    if (pthread_create(&L->wthr, NULL, log_writer, L) == 0) {
        L->wthr_running = true;
        pthread_setname_np(L->wthr, "rvm-logwriter");
    }
    return 0;
fail:
    L->io->close(L->f);
    free(L);
    return rc;
}

/* Unpin and forget the segments recovery wrote. */
static void rec_segs_release(struct rvm_log *L)
{
    for (size_t i = 0; i < L->n_rec_segs; i++)
        seg_unpin(L->rec_segs[i]);
    free(L->rec_segs);
    L->rec_segs = NULL;
    L->n_rec_segs = 0;
}

int recovery_finish_locked(struct rvm_log *L)
{
    if (!L->rec_pending)
        return 0;
    /* A failed sync is final: the kernel may have dropped the pages it
     * could not write, and a second sync would then succeed without
     * them.  The old status stays, and the next start recovers again. */
    if (log_recovery_failed(L))
        return L->rec_err;
    for (size_t i = 0; i < L->n_rec_segs; i++) {
        struct seg *s = L->rec_segs[i];
        int rc = s->io->sync(s->file);
        if (rc < 0) {
            __atomic_store_n(&L->rec_err, rc, __ATOMIC_RELAXED);
            return rc;
        }
    }
    int rc = status_write(L, L->rec_end, L->rec_end_seq, L->epoch, NULL, 0);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&L->mu);
    L->head = L->rec_end;
    L->head_seq = L->rec_end_seq;
    pthread_mutex_unlock(&L->mu);
    rec_segs_release(L);
    __atomic_store_n(&L->rec_pending, false, __ATOMIC_RELEASE);
    return 0;
}

int log_recovery_finish(struct rvm_log *L)
{
    if (!__atomic_load_n(&L->rec_pending, __ATOMIC_ACQUIRE))
        return 0;
    pthread_mutex_lock(&L->status_mu);
    int rc = recovery_finish_locked(L);
    pthread_mutex_unlock(&L->status_mu);
    return rc;
}

bool log_recovery_failed(struct rvm_log *L)
{
    /* Set once, while recovery is pending, and never cleared. */
    return __atomic_load_n(&L->rec_err, __ATOMIC_RELAXED) != 0;
}

int log_close(struct rvm_log *L)
{
    pthread_mutex_lock(&L->mu);
    L->stop = true;
    pthread_cond_signal(&L->tcond);
    pthread_cond_signal(&L->wcond);
    pthread_cond_broadcast(&L->cond);
    pthread_mutex_unlock(&L->mu);
    if (L->thr_running)
        pthread_join(L->thr, NULL);
    if (L->wthr_running)
        pthread_join(L->wthr, NULL);
    /* The threads are gone: nothing else touches rec_segs now.  Not
     * needed for safety (the old status recovers the same state again),
     * but it saves the next start a second recovery. */
    int frc = log_recovery_finish(L);
    rec_segs_release(L);
    while (L->qh) {
        struct log_img *i = L->qh;
        L->qh = i->next;
        img_free(i);
    }
    int rc = L->io->close(L->f);
    free(L->wbuf);
    ahead_keep_free(&L->trunc_bufs);
    merge_free(&L->bm);
    free(L->bv);
    pthread_mutex_destroy(&L->mu);
    pthread_mutex_destroy(&L->status_mu);
    pthread_cond_destroy(&L->cond);
    pthread_cond_destroy(&L->tcond);
    pthread_cond_destroy(&L->wcond);
    free(L);
    return rc < 0 ? rc : frc;
}

