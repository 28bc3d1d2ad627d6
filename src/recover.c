/*
 * Applying log records to segments: recovery at rvm_initialize and
 * truncation at run time walk the same records and write them the same
 * way.  Redo records are idempotent, so a crash in the middle of either
 * only means the next recovery applies some records twice.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log_apply.h"
#include "rvm_internal.h"

struct touched {
    struct seg **v;
    size_t n, cap;
};

static int touched_add(struct touched *t, struct seg *s)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i] == s)
            return 0;
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 16;
        struct seg **nv = realloc(t->v, nc * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        t->v = nv;
        t->cap = nc;
    }
    t->v[t->n++] = s;
    return 0;
}

static int apply_record(const unsigned char *rec, struct touched *t, uint64_t *skipped)
{
    struct log_rec_hdr h;
    memcpy(&h, rec, sizeof h);
    const unsigned char *rp = rec + sizeof h;
    const unsigned char *data = rp + (size_t)h.nranges * sizeof(struct log_rec_range);
    for (uint32_t i = 0; i < h.nranges; i++) {
        struct log_rec_range r;
        memcpy(&r, rp + i * sizeof r, sizeof r);
        struct seg *s = seg_by_id(r.seg_id);
        /* A segment whose file is gone has no reader left: skip it rather
         * than bring a deleted file back. */
        int rc = s ? seg_open(s, false) : -ENOENT;
        if (rc == -ENOENT) {
            (*skipped)++;
        } else if (rc < 0) {
            return rc;
        } else {
            ssize_t n = s->io->pwrite(s->file, data, (size_t)r.len, r.offset);
            if (n < 0)
                return (int)n;
            rc = touched_add(t, s);
            if (rc < 0)
                return rc;
        }
        data += r.len;
    }
    return 0;
}

int log_apply_walk(struct log_scan *s, uint64_t *n_applied, uint64_t *n_skipped)
{
    struct touched t = {0};
    const unsigned char *rec;
    size_t len;
    int rc;
    *n_applied = 0;
    *n_skipped = 0;
    while ((rc = log_scan_next(s, &rec, &len)) == 1) {
        rc = apply_record(rec, &t, n_skipped);
        if (rc < 0)
            break;
        (*n_applied)++;
    }
    /* Durability point: after these syncs the applied records are in the
     * segments, and only then may the caller free their log space. */
    for (size_t i = 0; rc == 0 && i < t.n; i++)
        rc = t.v[i]->io->sync(t.v[i]->file);
    free(t.v);
    return rc;
}
