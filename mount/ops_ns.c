/*
 * ops_ns.c - namespace requests: lookup, attributes, create, mkdir,
 * unlink, rmdir, rename, symlink, link, readdir, statfs, forget.
 *
 * The namespace lives in STORE/tree/ as real directories and symlinks; a
 * regular file there is a hard link to its segment seg/<ino>.  So rename
 * and unlink touch only tree/, and the log, which names segments, never
 * sees a path.
 */
#include "daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

static struct node *node_or_reply(fuse_req_t req, fuse_ino_t ino)
{
    struct node *n = node_find(ino);
    if (!n)
        fuse_reply_err(req, ESTALE);
    return n;
}

static struct node *dir_or_reply(fuse_req_t req, fuse_ino_t ino)
{
    struct node *n = node_or_reply(req, ino);
    if (n && n->kind != NODE_DIR) {
        fuse_reply_err(req, ENOTDIR);
        return NULL;
    }
    return n;
}

/* Look `name` up in directory p and take a kernel reference on its node. */
static int do_lookup(struct node *p, const char *name, struct fuse_entry_param *e)
{
    struct stat st;
    struct node *n;
    memset(e, 0, sizeof(*e));
    if (fstatat(p->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    if (S_ISREG(st.st_mode)) {
        char seg[32];
        struct stat ss;
        snprintf(seg, sizeof(seg), "%llu", (unsigned long long)st.st_ino);
        if (fstatat(fs.seg_fd, seg, &ss, AT_SYMLINK_NOFOLLOW) < 0 ||
            ss.st_ino != st.st_ino)
            return -EIO; /* a file that is not a segment of this store */
    }
    int rc = node_get_or_create(st.st_ino, &st, p->fd, name, &n);
    if (rc < 0)
        return rc;
    rc = node_stat(n, &e->attr);
    if (rc < 0) {
        node_forget(n->ino, 1);
        return rc;
    }
    e->ino = n->ino;
    e->attr_timeout = ATTR_TIMEOUT;
    e->entry_timeout = ENTRY_TIMEOUT;
    return 0;
}

static void reply_entry_or_err(fuse_req_t req, struct node *p, const char *name)
{
    struct fuse_entry_param e;
    int rc = do_lookup(p, name, &e);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_entry(req, &e);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct node *p = dir_or_reply(req, parent);
    if (p)
        reply_entry_or_err(req, p, name);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    node_forget(ino, nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++)
        node_forget(forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    struct stat st;
    struct node *n = node_or_reply(req, ino);
    if (!n)
        return;
    int rc = node_stat(n, &st);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

/* fd and name that reach the backing inode for *at() calls. */
static void backing_ref(struct node *n, int *dfd, const char **name,
                        char *proc, size_t plen)
{
    if (n->kind == NODE_REG) {
        *dfd = fs.seg_fd;
        *name = n->segname;
    } else {
        snprintf(proc, plen, "/proc/self/fd/%d", n->fd);
        *dfd = AT_FDCWD;
        *name = proc;
    }
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int to_set, struct fuse_file_info *fi)
{
    (void)fi;
    struct node *n = node_or_reply(req, ino);
    if (!n)
        return;
    int dfd, rc = 0;
    const char *name;
    char proc[64];
    bool is_link = false;
    backing_ref(n, &dfd, &name, proc, sizeof(proc));
    if (n->kind == NODE_OTHER) {
        struct stat st;
        is_link = fstatat(n->fd, "", &st, AT_EMPTY_PATH) == 0 &&
                  S_ISLNK(st.st_mode);
    }
    if (to_set & FUSE_SET_ATTR_MODE) {
        if (is_link)
            rc = -EOPNOTSUPP;
        else if (fchmodat(dfd, name, attr->st_mode & 07777, 0) < 0)
            rc = -errno;
    }
    if (rc == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
        uid_t u = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
        gid_t g = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
        if (n->kind == NODE_REG)
            rc = fchownat(dfd, name, u, g, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
        else
            rc = fchownat(n->fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0
                     ? -errno : 0;
    }
    if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE)) {
        if (n->kind == NODE_DIR)
            rc = -EISDIR;
        else if (n->kind != NODE_REG)
            rc = -EINVAL;
        else if (attr->st_size < 0)
            rc = -EINVAL;
        else
            rc = file_truncate(n, (uint64_t)attr->st_size);
    }
    if (rc == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
        struct timespec tv[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
        if (to_set & FUSE_SET_ATTR_ATIME_NOW)
            tv[0].tv_nsec = UTIME_NOW;
        else if (to_set & FUSE_SET_ATTR_ATIME)
            tv[0] = attr->st_atim;
        if (to_set & FUSE_SET_ATTR_MTIME_NOW)
            tv[1].tv_nsec = UTIME_NOW;
        else if (to_set & FUSE_SET_ATTR_MTIME)
            tv[1] = attr->st_mtim;
        if (n->kind == NODE_DIR)
            rc = futimens(n->fd, tv) < 0 ? -errno : 0;
        else if (n->kind == NODE_REG)
            rc = utimensat(dfd, name, tv, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
        else
            rc = utimensat(n->fd, "", tv, AT_EMPTY_PATH) < 0 ? -errno : 0;
        if (rc == 0 && (to_set & FUSE_SET_ATTR_MTIME))
            atomic_store(&n->mtime_ns, 0); /* an explicit mtime wins */
    }
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    struct stat st;
    rc = node_stat(n, &st);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    char buf[4097];
    struct node *n = node_or_reply(req, ino);
    if (!n)
        return;
    if (n->kind != NODE_OTHER) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    ssize_t len = readlinkat(n->fd, "", buf, sizeof(buf) - 1);
    if (len < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    buf[len] = 0;
    fuse_reply_readlink(req, buf);
}

/* New regular file: a segment first, then its name in tree/. */
static int create_file(fuse_req_t req, struct node *p, const char *name,
                       mode_t mode, struct fuse_entry_param *e)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    struct stat st;
    uint64_t gen = 0;
    int rc = store_new_segment(mode & ~ctx->umask, ctx->uid, ctx->gid, &st, &gen);
    if (rc < 0)
        return rc;
    char seg[32];
    snprintf(seg, sizeof(seg), "%llu", (unsigned long long)st.st_ino);
    if (linkat(fs.seg_fd, seg, p->fd, name, 0) < 0) {
        rc = -errno;
        unlinkat(fs.seg_fd, seg, 0); /* never logged: safe to drop now */
        return rc;
    }
    rc = do_lookup(p, name, e);
    struct node *n = rc == 0 ? node_find(e->ino) : NULL;
    if (n)
        atomic_store(&n->seg_gen, gen);
    return rc;
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, dev_t rdev)
{
    struct node *p = dir_or_reply(req, parent);
    struct fuse_entry_param e;
    if (!p)
        return;
    int rc;
    if (S_ISREG(mode)) {
        rc = create_file(req, p, name, mode, &e);
    } else if (S_ISFIFO(mode) || S_ISSOCK(mode)) {
        const struct fuse_ctx *ctx = fuse_req_ctx(req);
        rc = mknodat(p->fd, name, mode & ~ctx->umask, rdev) < 0 ? -errno : 0;
        if (rc == 0) {
            fchownat(p->fd, name, ctx->uid, ctx->gid, AT_SYMLINK_NOFOLLOW);
            rc = do_lookup(p, name, &e);
        }
    } else {
        rc = -EPERM; /* device nodes do not belong in a store */
    }
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_entry(req, &e);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, struct fuse_file_info *fi)
{
    struct node *p = dir_or_reply(req, parent);
    struct fuse_entry_param e;
    if (!p)
        return;
    int rc = create_file(req, p, name, S_IFREG | (mode & 07777), &e);
    if (rc == -EEXIST && !(fi->flags & O_EXCL)) {
        rc = do_lookup(p, name, &e);
        if (rc == 0 && !S_ISREG(e.attr.st_mode)) {
            node_forget(e.ino, 1);
            rc = S_ISDIR(e.attr.st_mode) ? -EISDIR : -EEXIST;
        }
        if (rc == 0 && (fi->flags & O_TRUNC)) {
            struct node *n = node_find(e.ino);
            rc = n ? file_truncate(n, 0) : -ESTALE;
            if (rc == 0)
                e.attr.st_size = 0;
            else
                node_forget(e.ino, 1);
        }
    }
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    fi->keep_cache = 0;
    fi->direct_io = 0;
    if (fuse_reply_create(req, &e, fi) == -ENOENT)
        node_forget(e.ino, 1); /* interrupted: the kernel holds no reference */
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode)
{
    struct node *p = dir_or_reply(req, parent);
    if (!p)
        return;
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    if (mkdirat(p->fd, name, mode & ~ctx->umask & 07777) < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    fchownat(p->fd, name, ctx->uid, ctx->gid, AT_SYMLINK_NOFOLLOW);
    reply_entry_or_err(req, p, name);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                       const char *name)
{
    struct node *p = dir_or_reply(req, parent);
    if (!p)
        return;
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    if (symlinkat(link, p->fd, name) < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    fchownat(p->fd, name, ctx->uid, ctx->gid, AT_SYMLINK_NOFOLLOW);
    reply_entry_or_err(req, p, name);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                    const char *newname)
{
    struct node *n = node_or_reply(req, ino);
    struct node *np = n ? dir_or_reply(req, newparent) : NULL;
    if (!np)
        return;
    int rc;
    if (n->kind == NODE_REG)
        rc = linkat(fs.seg_fd, n->segname, np->fd, newname, 0);
    else if (n->kind == NODE_OTHER)
        rc = linkat(n->fd, "", np->fd, newname, AT_EMPTY_PATH);
    else {
        fuse_reply_err(req, EPERM);
        return;
    }
    if (rc < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    reply_entry_or_err(req, np, newname);
}

/* After a name of regular file `bino` went away: if it was the last one
 * and no node holds the segment, it is an orphan (see store.c). */
static void check_orphan(ino_t bino)
{
    char seg[32];
    struct stat st;
    snprintf(seg, sizeof(seg), "%llu", (unsigned long long)bino);
    if (fstatat(fs.seg_fd, seg, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        st.st_nlink <= 1 && !node_find(ino_of(bino)))
        store_orphan_later(bino);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct node *p = dir_or_reply(req, parent);
    if (!p)
        return;
    struct stat st;
    bool reg = fstatat(p->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
               S_ISREG(st.st_mode);
    if (unlinkat(p->fd, name, 0) < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    if (reg)
        check_orphan(st.st_ino);
    fuse_reply_err(req, 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct node *p = dir_or_reply(req, parent);
    if (!p)
        return;
    fuse_reply_err(req, unlinkat(p->fd, name, AT_REMOVEDIR) < 0 ? errno : 0);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname,
                      unsigned int flags)
{
    /* RENAME_WHITEOUT would leave a character device in tree/, which
     * mknod refuses: only the flags that move names are taken. */
    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    struct node *p = dir_or_reply(req, parent);
    struct node *np = p ? dir_or_reply(req, newparent) : NULL;
    if (!np)
        return;
    struct stat st;
    bool victim = !(flags & RENAME_EXCHANGE) &&
                  fstatat(np->fd, newname, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                  S_ISREG(st.st_mode);
    if (renameat2(p->fd, name, np->fd, newname, flags) < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    if (victim)
        check_orphan(st.st_ino);
    fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    struct statvfs sv;
    if (fstatvfs(fs.store_fd, &sv) < 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_statfs(req, &sv);
}

struct dirh {
    DIR *d;
    off_t pos;
};

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct node *n = dir_or_reply(req, ino);
    if (!n)
        return;
    struct dirh *h = calloc(1, sizeof(*h));
    int fd = openat(n->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!h || fd < 0 || !(h->d = fdopendir(fd))) {
        int err = h ? errno : ENOMEM;
        if (fd >= 0)
            close(fd);
        free(h);
        fuse_reply_err(req, err ? err : ENOMEM);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)h;
    fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    (void)ino;
    struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;
    char *buf = malloc(size);
    size_t used = 0;
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (off != h->pos) {
        seekdir(h->d, off);
        h->pos = off;
    }
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(h->d);
        if (!e)
            break;
        struct stat st = {.st_ino = ino_of(e->d_ino),
                          .st_mode = (mode_t)e->d_type << 12};
        off_t next = telldir(h->d);
        size_t len = fuse_add_direntry(req, buf + used, size - used, e->d_name,
                                       &st, next);
        if (len > size - used) {
            seekdir(h->d, h->pos);
            break;
        }
        used += len;
        h->pos = next;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;
    closedir(h->d);
    free(h);
    fuse_reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                        struct fuse_file_info *fi)
{
    (void)datasync;
    struct dirh *h = (struct dirh *)(uintptr_t)fi->fh;
    (void)ino;
    fuse_reply_err(req, fsync(dirfd(h->d)) < 0 ? errno : 0);
}

void ops_ns_init(struct fuse_lowlevel_ops *ops)
{
    ops->lookup = op_lookup;
    ops->forget = op_forget;
    ops->forget_multi = op_forget_multi;
    ops->getattr = op_getattr;
    ops->setattr = op_setattr;
    ops->readlink = op_readlink;
    ops->mknod = op_mknod;
    ops->create = op_create;
    ops->mkdir = op_mkdir;
    ops->symlink = op_symlink;
    ops->link = op_link;
    ops->unlink = op_unlink;
    ops->rmdir = op_rmdir;
    ops->rename = op_rename;
    ops->statfs = op_statfs;
    ops->opendir = op_opendir;
    ops->readdir = op_readdir;
    ops->releasedir = op_releasedir;
    ops->fsyncdir = op_fsyncdir;
}
