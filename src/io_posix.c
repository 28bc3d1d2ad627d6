/*
 * The POSIX I/O methods, and the switch that lets tests install others.
 */
#include "rvm_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

struct rvm_io_file {
    int fd;
    int dfd;                    /* O_DIRECT descriptor: -2 not tried, -1 none */
};

static int posix_open(const char *path, int flags, mode_t mode, rvm_io_file **out)
{
    rvm_io_file *f = malloc(sizeof *f);
    if (!f)
        return -ENOMEM;
    f->dfd = -2;
    f->fd = open(path, flags | O_CLOEXEC, mode);
    if (f->fd < 0) {
        int e = errno;
        free(f);
        return -e;
    }
    *out = f;
    return 0;
}

static ssize_t posix_pread(rvm_io_file *f, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(f->fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static ssize_t posix_pwrite(rvm_io_file *f, const void *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(f->fd, (const char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static int posix_sync(rvm_io_file *f)
{
    return fdatasync(f->fd) < 0 ? -errno : 0;
}

static int posix_size(rvm_io_file *f, uint64_t *out)
{
    struct stat st;
    if (fstat(f->fd, &st) < 0)
        return -errno;
    if (S_ISBLK(st.st_mode)) {
        off_t end = lseek(f->fd, 0, SEEK_END);
        if (end < 0)
            return -errno;
        *out = (uint64_t)end;
    } else {
        *out = (uint64_t)st.st_size;
    }
    return 0;
}

static int posix_resize(rvm_io_file *f, uint64_t size)
{
    return ftruncate(f->fd, (off_t)size) < 0 ? -errno : 0;
}

/*
 * The O_DIRECT descriptor is opened at the first direct write, as the
 * same open file (/proc/self/fd: the path may have been renamed or
 * reused since), and checked to be the same inode: a flag changed on the
 * shared descriptor would change the reads of other threads too.  A file
 * system that refuses O_DIRECT, or a write it rejects for its alignment,
 * turns direct writes off for the file.
 */
static int direct_open(rvm_io_file *f)
{
    struct stat st, dst;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", f->fd);
    if (fstat(f->fd, &st) < 0 || !S_ISREG(st.st_mode))
        return -1;
    int dfd = open(proc, O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (dfd >= 0 && (fstat(dfd, &dst) < 0 || dst.st_dev != st.st_dev || dst.st_ino != st.st_ino)) {
        close(dfd);
        dfd = -1;
    }
    return dfd < 0 ? -1 : dfd;
}

static ssize_t posix_pwrite_direct(rvm_io_file *f, const void *buf, size_t len, uint64_t off)
{
    if (f->dfd == -2)
        f->dfd = direct_open(f);
    if (f->dfd < 0)
        return -EOPNOTSUPP;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(f->dfd, (const char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EINVAL) {
            close(f->dfd);
            f->dfd = -1;
            if (done == 0)
                return -EOPNOTSUPP;
            /* Refused part way: the rest through the page cache. */
            ssize_t w = posix_pwrite(f, (const char *)buf + done, len - done, off + done);
            return w < 0 ? w : (ssize_t)len;
        }
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        done += (size_t)n;
        /* A short direct write (the disk full part way) may stop off the
         * alignment: the rest goes through the page cache. */
        if (done < len && done % RVM_IO_DIRECT_ALIGN) {
            ssize_t w = posix_pwrite(f, (const char *)buf + done, len - done, off + done);
            return w < 0 ? w : (ssize_t)len;
        }
    }
    return (ssize_t)done;
}

static int posix_close(rvm_io_file *f)
{
    int rc = close(f->fd) < 0 ? -errno : 0;
    if (f->dfd >= 0)
        close(f->dfd);
    free(f);
    return rc;
}

static int posix_fd(rvm_io_file *f)
{
    return f->fd;
}

static const rvm_io_methods posix_methods = {
    .open = posix_open,
    .pread = posix_pread,
    .pwrite = posix_pwrite,
    .sync = posix_sync,
    .size = posix_size,
    .resize = posix_resize,
    .close = posix_close,
    .fd = posix_fd,
    .pwrite_direct = posix_pwrite_direct,
};

static _Atomic(const rvm_io_methods *) current = &posix_methods;

const rvm_io_methods *rvm_io(void)
{
    return atomic_load_explicit(&current, memory_order_acquire);
}

const rvm_io_methods *rvm_io_posix(void)
{
    return &posix_methods;
}

void rvm_io_set(const rvm_io_methods *m)
{
    atomic_store_explicit(&current, m ? m : &posix_methods, memory_order_release);
}
