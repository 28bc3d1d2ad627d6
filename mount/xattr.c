/*
 * xattr.c - user.rvm.txn, user.rvm.flush, user.rvm.stat, and other user.*
 * attributes stored on the backing file.
 *
 * xattr requests carry only the inode, so the transaction calls act on the
 * file, like the ioctls.  No handler returns ENOSYS: the kernel would turn
 * xattrs off for the whole mount.
 */
#include "daemon.h"
#include "rvmfs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

static bool is_user(const char *name)
{
    return strncmp(name, "user.", 5) == 0;
}

static bool is_rvm(const char *name)
{
    return strncmp(name, RVMFS_XATTR_PREFIX, strlen(RVMFS_XATTR_PREFIX)) == 0;
}

/* A path that reaches the backing inode (segment, or the node's fd
 * through /proc, followed). */
static void backing_path(struct node *n, char *buf, size_t len)
{
    if (n->kind == NODE_REG)
        snprintf(buf, len, "%s/seg/%s", fs.store, n->segname);
    else
        snprintf(buf, len, "/proc/self/fd/%d", n->fd);
}

static ssize_t b_get(struct node *n, const char *path, const char *name,
                     void *v, size_t size)
{
    return n->kind == NODE_REG ? lgetxattr(path, name, v, size)
                               : getxattr(path, name, v, size);
}

static ssize_t b_list(struct node *n, const char *path, char *v, size_t size)
{
    return n->kind == NODE_REG ? llistxattr(path, v, size)
                               : listxattr(path, v, size);
}

/*
 * The value of a user.rvm.txn write: exactly one of the words, with at
 * most one trailing newline (what `echo` and setfattr give).  The value
 * comes with a length and no terminator, so any NUL inside it, a second
 * newline, spaces or any other byte make it EINVAL: a command is never
 * guessed from a prefix of the bytes.
 */
static int txn_command(struct node *n, const char *value, size_t size)
{
    char cmd[64];
    if (size && value[size - 1] == '\n')
        size--;
    if (size == 0 || size >= sizeof(cmd) || memchr(value, 0, size))
        return -EINVAL;
    memcpy(cmd, value, size);
    cmd[size] = 0;
    if (n->kind != NODE_REG)
        return -EINVAL;
    uint64_t id;
    if (!strcmp(cmd, "begin"))
        return txn_begin(n, 0, &id);
    if (!strcmp(cmd, "begin no_restore"))
        return txn_begin(n, RVMFS_NO_RESTORE, &id);
    if (!strcmp(cmd, "commit"))
        return txn_commit(n, 0);
    if (!strcmp(cmd, "commit no_flush"))
        return txn_commit(n, RVMFS_NO_FLUSH);
    if (!strcmp(cmd, "abort"))
        return txn_abort(n);
    if (!strncmp(cmd, "join ", 5)) {
        /* decimal digits only: strtoull alone would take a sign, spaces
         * and 0x */
        const char *d = cmd + 5;
        size_t nd = strspn(d, "0123456789");
        if (nd == 0 || d[nd] != 0)
            return -EINVAL;
        char *end;
        errno = 0;
        id = strtoull(d, &end, 10);
        if (errno)
            return -EINVAL; /* more than 64 bits */
        return txn_join(n, id); /* 0 names no transaction: ENOENT */
    }
    return -EINVAL;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        const char *value, size_t size, int flags)
{
    struct node *n = node_find(ino);
    int rc;
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (!strcmp(name, RVMFS_XATTR_TXN)) {
        rc = txn_command(n, value, size);
    } else if (!strcmp(name, RVMFS_XATTR_FLUSH)) {
        rc = do_flush();
    } else if (is_rvm(name)) {
        rc = -EINVAL;
    } else if (!is_user(name)) {
        rc = -ENOTSUP;
    } else {
        char path[4096];
        backing_path(n, path, sizeof(path));
        rc = (n->kind == NODE_REG ? lsetxattr(path, name, value, size, flags)
                                   : setxattr(path, name, value, size, flags)) < 0
                 ? -errno : 0;
    }
    fuse_reply_err(req, -rc);
}

static int file_stat_text(struct node *n, char *buf, size_t len)
{
    uint64_t tid, ranges, bytes, age;
    txn_info(n, &tid, &ranges, &bytes, &age);
    pthread_rwlock_rdlock(&n->maplock);
    uint64_t size = seg_size(n), cap = n->cap;
    pthread_rwlock_unlock(&n->maplock);
    return snprintf(buf, len,
                    "segment=seg/%s\nsize=%llu\ncapacity=%llu\ntxn=%llu\n"
                    "txn_ranges=%llu\ntxn_bytes=%llu\ntxn_age_ms=%llu\n",
                    n->segname, (unsigned long long)size,
                    (unsigned long long)cap, (unsigned long long)tid,
                    (unsigned long long)ranges, (unsigned long long)bytes,
                    (unsigned long long)age);
}

static int store_stat_text(char *buf, size_t len)
{
    rvm_stats_t s;
    if (rvm_get_stats(&s) != RVM_SUCCESS)
        return -EIO;
    uint64_t ring_requests;
    bool ring = uring_served(&ring_requests);
    struct seg_copies cp;
    seg_copies_stats(&cp);
#define U(x) ((unsigned long long)(x))
    int n = snprintf(buf, len,
        "store=%s\nlog=%s\nlog_size=%llu\nlog_used=%llu\nlog_records=%llu\n"
        "records_written=%llu\ntruncations=%llu\nauto_truncations=%llu\n"
        "bytes_truncated=%llu\nbegun=%llu\ncommitted=%llu\n"
        "committed_flush=%llu\ncommitted_no_flush=%llu\naborted=%llu\n"
        "active=%d\nset_ranges=%llu\nbytes_set_range=%llu\n"
        "bytes_after_ranges=%llu\nbytes_logged=%llu\nlog_bytes_written=%llu\n"
        "flushes=%llu\nforces=%llu\ngroup_commits=%llu\n"
        "no_flush_pending=%llu\nrecovered_records=%llu\nrecovery_usec=%llu\n"
        "transport=%s\nuring_requests=%llu\n"
        "copies_bytes=%llu\ncopies_handed_off=%llu\ncopies_dropped=%llu\n"
        "copies_dropped_by_writer=%llu\n",
        fs.store, fs.log_path, U(s.log_size), U(s.log_used), U(s.log_records),
        U(s.n_records), U(s.n_truncations), U(s.n_auto_truncations),
        U(s.bytes_truncated), U(s.n_begin),
        U(s.n_flush_commit + s.n_no_flush_commit), U(s.n_flush_commit),
        U(s.n_no_flush_commit), U(s.n_abort), atomic_load(&fs.n_active),
        U(s.n_set_range), U(s.bytes_set_range), U(s.bytes_after_ranges),
        U(s.bytes_logged), U(s.log_bytes_written), U(s.n_flushes),
        U(s.n_forces), U(s.n_group_commits), U(s.no_flush_pending),
        U(s.n_recovered_records), U(s.recovery_usec),
        ring ? "io_uring" : "dev_fuse", U(ring_requests), U(cp.bytes),
        U(cp.handoffs), U(cp.dropped), U(cp.dropped_by_writer));
#undef U
    if (n < 0 || (size_t)n >= len)
        return n;
    return n + (int)txn_list(buf + n, len - (size_t)n);
}

static void reply_value(fuse_req_t req, const char *val, size_t len, size_t size)
{
    if (size == 0)
        fuse_reply_xattr(req, len);
    else if (len > size)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, val, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        size_t size)
{
    struct node *n = node_find(ino);
    static __thread char buf[65536]; /* the store's text lists transactions */
    int len = -ENODATA;
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (!strcmp(name, RVMFS_XATTR_TXN)) {
        if (n->kind == NODE_REG)
            len = txn_describe(n, buf, sizeof(buf));
    } else if (!strcmp(name, RVMFS_XATTR_STAT)) {
        if (n->kind == NODE_REG)
            len = file_stat_text(n, buf, sizeof(buf));
        else if (n->ino == FUSE_ROOT_ID)
            len = store_stat_text(buf, sizeof(buf));
        else /* answers on every file: tools use it to recognise a mount */
            len = snprintf(buf, sizeof(buf), "type=%s\nstore=%s\n",
                           n->kind == NODE_DIR ? "directory" : "other", fs.store);
    } else if (is_user(name) && !is_rvm(name)) {
        char path[4096];
        backing_path(n, path, sizeof(path));
        ssize_t got = b_get(n, path, name, NULL, 0);
        if (got < 0) {
            fuse_reply_err(req, errno == ENOTSUP ? ENODATA : errno);
            return;
        }
        char *v = malloc(got ? (size_t)got : 1);
        if (!v) {
            fuse_reply_err(req, ENOMEM);
            return;
        }
        got = b_get(n, path, name, v, (size_t)got);
        if (got < 0)
            fuse_reply_err(req, errno == ERANGE ? EAGAIN : errno);
        else
            reply_value(req, v, (size_t)got, size);
        free(v);
        return;
    }
    if (len < 0)
        fuse_reply_err(req, -len);
    else
        reply_value(req, buf, (size_t)len < sizeof(buf) ? (size_t)len : sizeof(buf) - 1,
                    size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct node *n = node_find(ino);
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    static const char reg_names[] = RVMFS_XATTR_TXN "\0" RVMFS_XATTR_STAT;
    static const char other_names[] = RVMFS_XATTR_STAT;
    const char *ours = other_names;
    size_t ourlen = sizeof(other_names);
    if (n->kind == NODE_REG) {
        ours = reg_names;
        ourlen = sizeof(reg_names);
    }
    char path[4096];
    backing_path(n, path, sizeof(path));
    ssize_t got = b_list(n, path, NULL, 0);
    if (got < 0)
        got = 0;
    char *v = malloc((size_t)got + ourlen + 1);
    if (!v) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (got > 0) {
        got = b_list(n, path, v, (size_t)got);
        if (got < 0)
            got = 0;
    }
    if (ourlen)
        memcpy(v + got, ours, ourlen);
    reply_value(req, v, (size_t)got + ourlen, size);
    free(v);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    struct node *n = node_find(ino);
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (is_rvm(name)) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (!is_user(name)) {
        fuse_reply_err(req, ENOTSUP);
        return;
    }
    char path[4096];
    backing_path(n, path, sizeof(path));
    fuse_reply_err(req, (n->kind == NODE_REG ? lremovexattr(path, name)
                                             : removexattr(path, name)) < 0 ? errno : 0);
}

void ops_xattr_init(struct fuse_lowlevel_ops *ops)
{
    ops->setxattr = op_setxattr;
    ops->getxattr = op_getxattr;
    ops->listxattr = op_listxattr;
    ops->removexattr = op_removexattr;
}
