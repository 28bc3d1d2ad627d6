/*
 * ioctl.c - RVMFS_IOC_* (include/rvmfs.h).
 *
 * FUSE passes only restricted ioctls: the kernel moves _IOC_SIZE(cmd)
 * bytes in (for _IOW) and out (for _IOR), so every argument is a fixed-size
 * struct without pointers.
 */
#include "daemon.h"
#include "rvmfs.h"

#include <errno.h>
#include <string.h>

static void fill_status(struct node *n, struct rvmfs_status *s)
{
    memset(s, 0, sizeof(*s));
    if (n && n->kind == NODE_REG) {
        txn_info(n, &s->tid, &s->ranges, &s->bytes, &s->txn_age_ms);
        pthread_rwlock_rdlock(&n->maplock);
        s->size = seg_size(n);
        s->capacity = n->cap;
        pthread_rwlock_unlock(&n->maplock);
    }
    rvm_stats_t st;
    if (rvm_get_stats(&st) == RVM_SUCCESS) {
        s->log_size = st.log_size;
        s->log_used = st.log_used;
        s->log_records = st.log_records;
    }
    s->active_txns = (uint64_t)atomic_load(&fs.n_active);
}

void ops_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
               struct fuse_file_info *fi, unsigned flags, const void *in_buf,
               size_t in_bufsz, size_t out_bufsz)
{
    (void)arg;
    (void)fi;
    (void)out_bufsz;
    struct node *n = node_find(ino);
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (flags & FUSE_IOCTL_COMPAT) {
        /* our structs have one layout for 32 and 64 bits: go on */
    }
    bool reg = n->kind == NODE_REG;
    int rc;
    switch (cmd) {
    case RVMFS_IOC_BEGIN: {
        struct rvmfs_begin_arg a;
        if (in_bufsz < sizeof(a) || !reg) {
            rc = -EINVAL;
            break;
        }
        memcpy(&a, in_buf, sizeof(a));
        uint64_t id;
        if (a.flags & ~(uint64_t)RVMFS_NO_RESTORE) {
            rc = -EINVAL;
            break;
        }
        rc = txn_begin(n, (unsigned)a.flags, &id);
        if (rc == 0) {
            a.tid = id;
            fuse_reply_ioctl(req, 0, &a, sizeof(a));
            return;
        }
        break;
    }
    case RVMFS_IOC_JOIN: {
        struct rvmfs_join_arg a;
        if (in_bufsz < sizeof(a) || !reg) {
            rc = -EINVAL;
            break;
        }
        memcpy(&a, in_buf, sizeof(a));
        rc = txn_join(n, a.tid);
        break;
    }
    case RVMFS_IOC_COMMIT: {
        struct rvmfs_commit_arg a;
        if (in_bufsz < sizeof(a)) {
            rc = -EINVAL;
            break;
        }
        memcpy(&a, in_buf, sizeof(a));
        if (a.flags & ~(uint64_t)RVMFS_NO_FLUSH)
            rc = -EINVAL;
        else
            rc = reg ? txn_commit(n, (unsigned)a.flags) : -ENOENT;
        break;
    }
    case RVMFS_IOC_ABORT:
        rc = reg ? txn_abort(n) : -ENOENT;
        break;
    case RVMFS_IOC_FLUSH:
        rc = do_flush();
        break;
    case RVMFS_IOC_STATUS: {
        struct rvmfs_status s;
        fill_status(n, &s);
        fuse_reply_ioctl(req, 0, &s, sizeof(s));
        return;
    }
    default:
        rc = -ENOTTY;
        break;
    }
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_ioctl(req, 0, NULL, 0);
}
