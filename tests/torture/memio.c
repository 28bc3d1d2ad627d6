/*
 * The in-memory I/O layer of the fuzzer; see memio.h.  Single-threaded
 * use from the test, but librvm's truncation thread may call it, so a
 * mutex guards the table.
 */
#include "memio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct mfile {
    char *path;
    unsigned char *b;
    size_t len, cap;
    struct mfile *next;
};

struct rvm_io_file {
    struct mfile *m;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct mfile *files;
static bool auto_create;

static struct mfile *lookup(const char *path)
{
    for (struct mfile *m = files; m; m = m->next)
        if (strcmp(m->path, path) == 0)
            return m;
    return NULL;
}

static struct mfile *create(const char *path)
{
    struct mfile *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return NULL;
    }
    m->next = files;
    files = m;
    return m;
}

static int grow(struct mfile *m, size_t len)
{
    if (len > MEMIO_MAX_FILE)
        return -EFBIG;
    if (len > m->cap) {
        size_t nc = m->cap ? m->cap : 4096;
        while (nc < len)
            nc *= 2;
        unsigned char *nb = realloc(m->b, nc);
        if (!nb)
            return -ENOMEM;
        m->b = nb;
        m->cap = nc;
    }
    if (len > m->len)
        memset(m->b + m->len, 0, len - m->len);
    m->len = len;
    return 0;
}

static int m_open(const char *path, int flags, mode_t mode, rvm_io_file **out)
{
    (void)mode;
    pthread_mutex_lock(&mu);
    struct mfile *m = lookup(path);
    int rc = 0;
    if (m && (flags & O_CREAT) && (flags & O_EXCL))
        rc = -EEXIST;
    else if (!m && !(flags & O_CREAT) && !auto_create)
        rc = -ENOENT;
    else if (!m && !(m = create(path)))
        rc = -ENOMEM;
    rvm_io_file *f = rc ? NULL : malloc(sizeof *f);
    if (!rc && !f)
        rc = -ENOMEM;
    if (f) {
        f->m = m;
        *out = f;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

static ssize_t m_pread(rvm_io_file *f, void *buf, size_t len, uint64_t off)
{
    pthread_mutex_lock(&mu);
    struct mfile *m = f->m;
    size_t n = 0;
    if (off < m->len) {
        n = m->len - (size_t)off;
        if (n > len)
            n = len;
        memcpy(buf, m->b + off, n);
    }
    pthread_mutex_unlock(&mu);
    return (ssize_t)n;
}

static ssize_t m_pwrite(rvm_io_file *f, const void *buf, size_t len, uint64_t off)
{
    pthread_mutex_lock(&mu);
    struct mfile *m = f->m;
    int rc = 0;
    if (off > MEMIO_MAX_FILE || len > MEMIO_MAX_FILE - off)
        rc = -EFBIG;
    else if (off + len > m->len)
        rc = grow(m, (size_t)(off + len));
    if (rc == 0)
        memcpy(m->b + off, buf, len);
    pthread_mutex_unlock(&mu);
    return rc ? rc : (ssize_t)len;
}

static int m_sync(rvm_io_file *f)
{
    (void)f;
    return 0;
}

static int m_size(rvm_io_file *f, uint64_t *out)
{
    pthread_mutex_lock(&mu);
    *out = f->m->len;
    pthread_mutex_unlock(&mu);
    return 0;
}

static int m_resize(rvm_io_file *f, uint64_t size)
{
    pthread_mutex_lock(&mu);
    int rc = size > MEMIO_MAX_FILE ? -EFBIG : 0;
    if (rc == 0 && size > f->m->len)
        rc = grow(f->m, (size_t)size);
    else if (rc == 0)
        f->m->len = (size_t)size;
    pthread_mutex_unlock(&mu);
    return rc;
}

static int m_close(rvm_io_file *f)
{
    free(f);
    return 0;
}

static int m_fd(rvm_io_file *f)
{
    (void)f;
    return -1;
}

static const rvm_io_methods methods = {
    .open = m_open, .pread = m_pread, .pwrite = m_pwrite, .sync = m_sync,
    .size = m_size, .resize = m_resize, .close = m_close, .fd = m_fd,
};

const rvm_io_methods *memio_methods(void)
{
    return &methods;
}

void memio_reset(bool ac)
{
    pthread_mutex_lock(&mu);
    while (files) {
        struct mfile *m = files;
        files = m->next;
        free(m->path);
        free(m->b);
        free(m);
    }
    auto_create = ac;
    pthread_mutex_unlock(&mu);
}

int memio_put(const char *path, const void *data, size_t len)
{
    pthread_mutex_lock(&mu);
    struct mfile *m = lookup(path);
    int rc = 0;
    if (!m && !(m = create(path)))
        rc = -ENOMEM;
    if (rc == 0) {
        m->len = 0;
        rc = grow(m, len);
    }
    if (rc == 0 && len)
        memcpy(m->b, data, len);
    pthread_mutex_unlock(&mu);
    return rc;
}

const unsigned char *memio_get(const char *path, size_t *len)
{
    pthread_mutex_lock(&mu);
    struct mfile *m = lookup(path);
    *len = m ? m->len : 0;
    const unsigned char *b = m ? m->b : NULL;
    pthread_mutex_unlock(&mu);
    return b;
}

void memio_reset_auto(bool ac)
{
    pthread_mutex_lock(&mu);
    auto_create = ac;
    pthread_mutex_unlock(&mu);
}
