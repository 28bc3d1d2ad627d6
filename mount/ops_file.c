/*
 * ops_file.c - file data: open, read, write, truncate, fsync.
 *
 * Reads are served from the region's memory.  A write becomes, inside the
 * file's transaction or in one of its own (committed no_flush), a
 * set_range of every run of bytes that differ from the region followed by
 * the copy: page writeback of shared mappings rewrites whole pages, and
 * only the bytes that really changed are logged.
 *
 * Writeback (fi->writepage) that arrives while an abort's invalidation is
 * under way carries aborted bytes and is discarded (see txn.c, bg.c).
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

struct wr {
    const char *buf;
    size_t len;
    uint64_t off;
};

static int write_fn(struct node *n, rvm_tid_t *tid, uint64_t *ranges,
                    uint64_t *bytes, void *arg)
{
    struct wr *w = arg;
    return seg_write(n, tid, w->buf, w->len, w->off, ranges, bytes);
}

static int resize_fn(struct node *n, rvm_tid_t *tid, uint64_t *ranges,
                     uint64_t *bytes, void *arg)
{
    return seg_resize(n, tid, *(uint64_t *)arg, ranges, bytes);
}

/* What the kernel leaves to the daemon under FUSE_HANDLE_KILLPRIV_V2
 * (chan.c): a write or truncation by a caller without CAP_FSETID drops
 * set-user-ID, and set-group-ID when the group may execute. */
static void kill_suidgid(struct node *n)
{
    struct stat st;
    if (fstatat(fs.seg_fd, n->segname, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    mode_t kill = S_ISUID;
    if ((st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
        kill |= S_ISGID;
    if (st.st_mode & kill)
        fchmodat(fs.seg_fd, n->segname, st.st_mode & 07777 & ~kill, 0);
}

int file_truncate(struct node *n, uint64_t size)
{
    if (chan_kill_suidgid()) /* an O_TRUNC open or a setattr */
        kill_suidgid(n);
    /* A big shrink outside a transaction: no need to log the zeros. */
    pthread_mutex_lock(&n->mu);
    if (n->base && !node_busy(n) && seg_size(n) > size &&
        seg_size(n) - size >= SEG_SHRINK_MIN) {
        int rc = seg_shrink(n, size);
        pthread_mutex_unlock(&n->mu);
        if (rc == 0) {
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            atomic_store(&n->mtime_ns, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
        }
        return rc;
    }
    pthread_mutex_unlock(&n->mu);
    int rc = txn_with(n, resize_fn, &size, false, size);
    return rc > 0 ? 0 : rc;
}

static struct node *reg_or_reply(fuse_req_t req, fuse_ino_t ino)
{
    struct node *n = node_find(ino);
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return NULL;
    }
    if (n->kind != NODE_REG) {
        fuse_reply_err(req, n->kind == NODE_DIR ? EISDIR : EINVAL);
        return NULL;
    }
    return n;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct node *n = reg_or_reply(req, ino);
    if (!n)
        return;
    if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY) {
        int rc = file_truncate(n, 0);
        if (rc < 0) {
            fuse_reply_err(req, -rc);
            return;
        }
    }
    /* Page cache on (mmap needs it), not kept across opens: an abort's
     * invalidation covers open files, a new open starts afresh. */
    fi->keep_cache = 0;
    fi->direct_io = 0;
    fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)fi;
    struct node *n = reg_or_reply(req, ino);
    if (!n)
        return;
    pthread_rwlock_rdlock(&n->maplock);
    uint64_t fsize = seg_size(n);
    if (!n->base) {
        pthread_rwlock_unlock(&n->maplock);
        fuse_reply_err(req, EIO);
        return;
    }
    if (off < 0 || (uint64_t)off >= fsize) {
        fuse_reply_buf(req, NULL, 0);
    } else {
        uint64_t len = fsize - (uint64_t)off;
        if (len > size)
            len = size;
        /* The region has no readahead (seg.c); ask for this range at once
         * rather than page fault by page fault. */
        uintptr_t a = (uintptr_t)(n->base + SEG_HDR + off) & ~(uintptr_t)4095;
        uintptr_t b = (uintptr_t)(n->base + SEG_HDR + off + len);
        if (len >= 8192)
            madvise((void *)a, b - a, MADV_WILLNEED);
        fuse_reply_buf(req, n->base + SEG_HDR + off, len);
    }
    pthread_rwlock_unlock(&n->maplock);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi)
{
    struct node *n = reg_or_reply(req, ino);
    if (!n)
        return;
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (chan_kill_suidgid() && !fi->writepage)
        kill_suidgid(n);
    struct wr w = {buf, size, (uint64_t)off};
    int rc = txn_with(n, write_fn, &w, fi->writepage, (uint64_t)off + size);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_write(req, size); /* rc 1: aborted writeback, dropped */
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    (void)fi;
    fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    (void)fi;
    fuse_reply_err(req, 0); /* a transaction outlives its descriptors */
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                     struct fuse_file_info *fi)
{
    (void)ino;
    (void)datasync;
    (void)fi;
    /* After rvm_flush every committed transaction (of every file) is
     * durable: the log is forced. */
    fuse_reply_err(req, -do_flush());
}

void ops_file_init(struct fuse_lowlevel_ops *ops)
{
    ops->open = op_open;
    ops->read = op_read;
    ops->write = op_write;
    ops->flush = op_flush;
    ops->release = op_release;
    ops->fsync = op_fsync;
}
