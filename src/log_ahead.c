/*
 * Double-buffered log reads with a reader thread; see log_ahead.h.
 */
#include "log_ahead.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* O_DIRECT wants offsets, lengths and buffers aligned to the device's
 * logical block; 4 KiB covers every device Linux has. */
#define DIO_ALIGN 4096u

/* Room before a buffer's bytes for the piece of a record that begins at
 * the end of the other buffer: the walk goes on without reading again. */
#define JOIN_ROOM (2u << 20)

struct ahead_thread {
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool busy, stop;
    /* The request, copied so that the thread never reads the walk's state. */
    const rvm_io_methods *io;
    rvm_io_file *f;
    bool direct;
    struct ahead_buf *b;
    uint64_t off;
    size_t want;
    ssize_t got;
};

void ahead_init(struct log_ahead *a, const rvm_io_methods *io, rvm_io_file *f)
{
    memset(a, 0, sizeof *a);
    a->io = io;
    a->f = f;
}

void ahead_direct(struct log_ahead *a, const char *path)
{
    rvm_io_file *d;
    if (!a->direct && a->io->open(path, O_RDONLY | O_DIRECT, 0, &d) == 0)
        a->direct = d;
}

/* Fill b with [off, off + want): 0..want bytes at off, or -errno. */
static ssize_t buf_fill(const rvm_io_methods *io, rvm_io_file *f, bool direct,
                        struct ahead_buf *b, uint64_t off, size_t want)
{
    uint64_t start = direct ? off & ~(uint64_t)(DIO_ALIGN - 1) : off;
    size_t lead = (size_t)(off - start);
    size_t n = lead + want;
    if (direct)
        n = (n + DIO_ALIGN - 1) & ~(size_t)(DIO_ALIGN - 1);
    if (JOIN_ROOM + n > b->cap) {
        void *m;
        if (posix_memalign(&m, DIO_ALIGN, JOIN_ROOM + n) != 0)
            return -ENOMEM;
        free(b->mem);
        b->mem = m;
        b->cap = JOIN_ROOM + n;
    }
    b->len = 0;
    ssize_t got = io->pread(f, b->mem + JOIN_ROOM, n, start);
    if (got < 0)
        return got;
    b->off = off;
    b->data = b->mem + JOIN_ROOM + lead;
    b->len = (size_t)got <= lead ? 0 : (size_t)got - lead;
    if (b->len > want)
        b->len = want;
    return (ssize_t)b->len;
}

static void *ahead_main(void *arg)
{
    struct ahead_thread *t = arg;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (!t->busy && !t->stop)
            pthread_cond_wait(&t->cv, &t->mu);
        if (t->stop)
            break;
        pthread_mutex_unlock(&t->mu);
        ssize_t got = buf_fill(t->io, t->f, t->direct, t->b, t->off, t->want);
        pthread_mutex_lock(&t->mu);
        t->got = got;
        t->busy = false;
        pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* Wait for the background read; its result, or -ECANCELED if none. */
static ssize_t ahead_wait(struct log_ahead *a)
{
    if (!a->pending)
        return -ECANCELED;
    struct ahead_thread *t = a->t;
    pthread_mutex_lock(&t->mu);
    while (t->busy)
        pthread_cond_wait(&t->cv, &t->mu);
    ssize_t got = t->got;
    pthread_mutex_unlock(&t->mu);
    a->pending = false;
    return got;
}

/* A direct read refused (alignment the file system does not take): fall
 * back to buffered reads for the rest of the walk. */
static bool direct_refused(struct log_ahead *a, ssize_t got)
{
    if (got != -EINVAL || !a->direct)
        return false;
    a->io->close(a->direct);
    a->direct = NULL;
    return true;
}

ssize_t ahead_get(struct log_ahead *a, uint64_t off, size_t want)
{
    struct ahead_buf *spare = &a->b[!a->cur], *cur = &a->b[a->cur];
    ssize_t got = ahead_wait(a);
    if (got > 0 && spare->off == off && spare->len >= want) {
        a->cur = !a->cur;
        return (ssize_t)spare->len;
    }
    /* A record that begins at the end of this buffer and goes on in the
     * prefetched one: its beginning is copied in front of the rest. */
    if (got > 0 && cur->len && off >= cur->off && off < spare->off &&
        cur->off + cur->len == spare->off &&
        spare->off - off <= (size_t)(spare->data - spare->mem) &&
        spare->off - off + spare->len >= want) {
        size_t piece = (size_t)(spare->off - off);
        unsigned char *d = (unsigned char *)spare->data - piece;
        memcpy(d, cur->data + (off - cur->off), piece);
        spare->data = d;
        spare->off = off;
        spare->len += piece;
        a->cur = !a->cur;
        return (ssize_t)spare->len;
    }
    direct_refused(a, got);
    for (;;) {
        rvm_io_file *f = a->direct ? a->direct : a->f;
        got = buf_fill(a->io, f, a->direct != NULL, spare, off, want);
        if (!direct_refused(a, got))
            break;
    }
    if (got >= 0)
        a->cur = !a->cur;
    return got;
}

void ahead_start(struct log_ahead *a, uint64_t off, size_t want)
{
    if (a->pending)
        return;
    if (!a->t) {
        struct ahead_thread *t = calloc(1, sizeof *t);
        if (!t)
            return;
        pthread_mutex_init(&t->mu, NULL);
        pthread_cond_init(&t->cv, NULL);
        if (pthread_create(&t->thr, NULL, ahead_main, t) != 0) {
            pthread_mutex_destroy(&t->mu);
            pthread_cond_destroy(&t->cv);
            free(t);
            return; /* reads stay in the walk's thread */
        }
        a->t = t;
    }
    struct ahead_thread *t = a->t;
    pthread_mutex_lock(&t->mu);
    t->io = a->io;
    t->f = a->direct ? a->direct : a->f;
    t->direct = a->direct != NULL;
    t->b = &a->b[!a->cur];
    t->off = off;
    t->want = want;
    t->busy = true;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    a->pending = true;
}

void ahead_done(struct log_ahead *a)
{
    ahead_wait(a);
    if (a->t) {
        pthread_mutex_lock(&a->t->mu);
        a->t->stop = true;
        pthread_cond_signal(&a->t->cv);
        pthread_mutex_unlock(&a->t->mu);
        pthread_join(a->t->thr, NULL);
        pthread_mutex_destroy(&a->t->mu);
        pthread_cond_destroy(&a->t->cv);
        free(a->t);
        a->t = NULL;
    }
    if (a->direct)
        a->io->close(a->direct);
    a->direct = NULL;
    for (int i = 0; i < 2; i++) {
        free(a->b[i].mem);
        a->b[i].mem = NULL;
        a->b[i].cap = a->b[i].len = 0;
    }
}
