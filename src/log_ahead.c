/*
 * Double-buffered log reads with a reader thread; see log_ahead.h.
 */
#include "log_ahead.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* O_DIRECT wants offsets, lengths and buffers aligned to the device's
 * logical block; 4 KiB covers every device Linux has. */
#define DIO_ALIGN 4096u

/* Room before a buffer's bytes for the piece of a record that begins at
 * the end of the other buffer: the walk goes on without reading again. */
#define JOIN_ROOM (2u << 20)

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

/*
 * The buffers are mapped with huge pages where the kernel gives them
 * (MADV_HUGEPAGE; they are 18-66 MiB): a direct read pins every page of
 * its buffer, and a new buffer's pages are faulted in by that pinning.
 * With 4 KiB pages that was the recovering thread's largest wait after
 * the disk (get_user_pages for 16,384 pages per 64 MiB read).
 */
static void *buf_map(size_t len)
{
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    madvise(m, len, MADV_HUGEPAGE); /* advice: a kernel without it maps 4 KiB pages */
    return m;
}

static void buf_unmap(unsigned char *m, size_t len)
{
    if (m)
        munmap(m, len);
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
        void *m = buf_map(JOIN_ROOM + n);
        if (!m)
            return -ENOMEM;
        buf_unmap(b->mem, b->cap);
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

/* The reader thread's job: one background read. */
static void ahead_run(void *arg, void *msg)
{
    struct log_ahead *a = arg;
    struct ahead_req *r = msg;
    r->got = buf_fill(a->io, r->f, r->direct, r->b, r->off, r->want);
}

/* Wait for the background read; its result, or -ECANCELED if none. */
static ssize_t ahead_wait(struct log_ahead *a)
{
    if (!a->pending)
        return -ECANCELED;
    worker_wait(&a->reader);
    a->pending = false;
    return a->req.got;
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
    if (!a->reader.running && worker_start(&a->reader, "rvm-readahead", ahead_run, a) < 0)
        return; /* reads stay in the walk's thread */
    a->req = (struct ahead_req){
        .f = a->direct ? a->direct : a->f, .direct = a->direct != NULL,
        .b = &a->b[!a->cur], .off = off, .want = want,
    };
    worker_post(&a->reader, &a->req);
    a->pending = true;
}

void ahead_done(struct log_ahead *a)
{
    ahead_wait(a);
    worker_stop(&a->reader);
    if (a->direct)
        a->io->close(a->direct);
    a->direct = NULL;
    for (int i = 0; i < 2; i++) {
        if (a->keep) {
            a->keep->mem[i] = a->b[i].mem;
            a->keep->cap[i] = a->b[i].cap;
        } else {
            buf_unmap(a->b[i].mem, a->b[i].cap);
        }
        a->b[i].mem = NULL;
        a->b[i].cap = a->b[i].len = 0;
    }
    a->keep = NULL;
}

void ahead_reuse(struct log_ahead *a, struct ahead_keep *k)
{
    for (int i = 0; i < 2; i++) {
        buf_unmap(a->b[i].mem, a->b[i].cap);
        a->b[i].mem = k->mem[i];
        a->b[i].cap = k->cap[i];
        a->b[i].len = 0;
        k->mem[i] = NULL;
        k->cap[i] = 0;
    }
    a->keep = k;
}

void ahead_keep_free(struct ahead_keep *k)
{
    for (int i = 0; i < 2; i++) {
        buf_unmap(k->mem[i], k->cap[i]);
        k->mem[i] = NULL;
        k->cap[i] = 0;
    }
}
