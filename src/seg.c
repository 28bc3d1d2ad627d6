/*
 * Segments: the files behind regions, named in the log by a small id.
 * The table is a list: processes map few segments, and the daemon keeps
 * its own index of files; lookups by path happen at map time only.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "rvm_internal.h"

static uint64_t next_id = 1;

static struct seg *seg_new(uint64_t id, const char *path)
{
    struct seg *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->path = strdup(path);
    if (!s->path) {
        free(s);
        return NULL;
    }
    s->id = id;
    s->io = rvm_io();
    if (id >= next_id)
        next_id = id + 1;
    s->next = rvm.segs;
    rvm.segs = s;
    return s;
}

/*
 * A segment is a file, whatever its name: two names of one file (a
 * symlink, a hard link) are one segment, found by device and inode.
 */
struct seg *seg_get(const char *path, int *err)
{
    pthread_mutex_lock(&rvm.seg_mu);
    struct seg *s;
    for (s = rvm.segs; s; s = s->next)
        if (strcmp(s->path, path) == 0)
            break;
    if (s) {
        s->refs++;
        pthread_mutex_unlock(&rvm.seg_mu);
        int rc = seg_open(s, true);
        if (rc < 0) {
            seg_unpin(s);
            *err = rc;
            return NULL;
        }
        return s;
    }
    pthread_mutex_unlock(&rvm.seg_mu);
    const rvm_io_methods *io = rvm_io();
    rvm_io_file *f;
    int rc = io->open(path, O_RDWR | O_CREAT, 0600, &f);
    if (rc < 0) {
        *err = rc;
        return NULL;
    }
    struct stat st;
    int fd = io->fd(f);
    bool known = fd >= 0 && fstat(fd, &st) == 0;
    pthread_mutex_lock(&rvm.seg_mu);
    for (s = rvm.segs; s && known; s = s->next)
        if (s->file && s->dev == (uint64_t)st.st_dev && s->ino == (uint64_t)st.st_ino)
            break;
    if (s) {
        io->close(f);
    } else if ((s = seg_new(next_id, path))) {
        s->file = f;
        if (known) {
            s->dev = st.st_dev;
            s->ino = st.st_ino;
        }
    } else {
        io->close(f);
    }
    if (s)
        s->refs++;
    pthread_mutex_unlock(&rvm.seg_mu);
    if (!s)
        *err = -ENOMEM;
    return s;
}

void seg_unpin(struct seg *s)
{
    pthread_mutex_lock(&rvm.seg_mu);
    s->refs--;
    pthread_mutex_unlock(&rvm.seg_mu);
}

/*
 * Forget segments nothing refers to any more: not mapped, not being
 * mapped, not in the dictionary (so no live record names them), nothing
 * queued; and close the files of mapped ones in that state.  A daemon
 * that maps many files holds descriptors only for those with records in
 * flight.
 */
void seg_gc_locked(void)
{
    struct seg **pp = &rvm.segs;
    while (*pp) {
        struct seg *s = *pp;
        if (s->refs || s->in_dict || s->queued) {
            pp = &s->next;
            continue;
        }
        if (s->nmapped) {
            /* Mapped but idle: its descriptor is not needed until a
             * truncation writes to it again (seg_open reopens it). */
            if (s->file) {
                s->io->close(s->file);
                s->file = NULL;
            }
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        if (s->file)
            s->io->close(s->file);
        free(s->path);
        free(s);
    }
}

struct seg *seg_add_known(uint64_t id, const char *path)
{
    pthread_mutex_lock(&rvm.seg_mu);
    struct seg *s;
    for (s = rvm.segs; s; s = s->next)
        if (s->id == id)
            break;
    if (!s)
        s = seg_new(id, path);
    if (s)
        s->in_dict = true;
    pthread_mutex_unlock(&rvm.seg_mu);
    return s;
}

/*
 * Ids are never handed out twice in a log's life, even after the
 * segment that had one is forgotten: records of a previous lap can name
 * it, and the status block carries the counter across restarts.
 */
uint64_t seg_next_id_locked(void)
{
    return next_id;
}

void seg_reserve_ids(uint64_t next)
{
    pthread_mutex_lock(&rvm.seg_mu);
    /* An absurd counter (a corrupt but checksummed status) is ignored
     * rather than letting ids wrap. */
    if (next > next_id && next < (UINT64_C(1) << 48))
        next_id = next;
    pthread_mutex_unlock(&rvm.seg_mu);
}

struct seg *seg_by_id(uint64_t id)
{
    pthread_mutex_lock(&rvm.seg_mu);
    struct seg *s;
    for (s = rvm.segs; s; s = s->next)
        if (s->id == id)
            break;
    pthread_mutex_unlock(&rvm.seg_mu);
    return s;
}

int seg_open(struct seg *s, bool create)
{
    pthread_mutex_lock(&rvm.seg_mu);
    int rc = 0;
    if (!s->file) {
        rc = s->io->open(s->path, O_RDWR | (create ? O_CREAT : 0), 0600, &s->file);
        struct stat st;
        int fd = rc == 0 ? s->io->fd(s->file) : -1;
        if (fd >= 0 && fstat(fd, &st) == 0) {
            s->dev = st.st_dev;
            s->ino = st.st_ino;
        }
    }
    pthread_mutex_unlock(&rvm.seg_mu);
    return rc;
}

void seg_free_all(void)
{
    pthread_mutex_lock(&rvm.seg_mu);
    while (rvm.segs) {
        struct seg *s = rvm.segs;
        rvm.segs = s->next;
        if (s->file)
            s->io->close(s->file);
        free(s->path);
        free(s);
    }
    next_id = 1;
    pthread_mutex_unlock(&rvm.seg_mu);
}
