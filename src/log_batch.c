#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "log_apply.h"
#include "log_format.h"
#include "log_impl.h"
#include "log_scan.h"
#include "merge.h"
#include "rvm_internal.h"

/*
 * Inter-transaction coalescing: the batch as one record in which each
 * byte appears once, with its newest value.  One CRC covers it, so
 * recovery takes the whole batch or none of it.  NULL when not worth it
 * (or out of memory: the batch is then written record by record).
 *
 * Not worth it: records of COALESCE_BIG bytes or more on average that
 * overlap by less than an eighth (a stream of 1 MiB writes through
 * rvmfs).  The merged record is a second copy of every byte, in a block
 * of its own, on the writer's thread, and saves only their headers.
 */
#define COALESCE_BIG ((uint64_t)64 << 10)

struct log_img *batch_coalesce(struct rvm_log *L, struct log_img *batch)
{
    size_t n = 0;
    for (struct log_img *i = batch; i; i = i->next)
        n++;
    if (n < 2)
        return NULL;
    /* The leader's own memory, kept from one write-out to the next. */
    if (n > L->bv_cap) {
        struct log_img **nv = realloc(L->bv, n * sizeof *nv);
        if (!nv)
            return NULL;
        L->bv = nv;
        L->bv_cap = n;
    }
    struct log_img **v = L->bv;
    size_t k = 0, nsegs = 0, ntrans = 0, nranges = 0;
    uint64_t data = 0;
    for (struct log_img *i = batch; i; i = i->next) {
        v[k++] = i;
        data += i->data_len;
        nsegs += i->nsegs;
        ntrans += i->ntrans;
        struct log_rec_hdr h;
        memcpy(&h, i->buf, sizeof h);
        nranges += h.nranges;
    }
    struct merge m = L->bm;
    merge_reset(&m);
    merge_reserve(&m, nranges); /* no regrowth copies; merge_add grows if this failed */
    int rc = 0;
    for (size_t x = n; x-- > 0 && rc == 0;) {
        struct log_rec_hdr h;
        memcpy(&h, v[x]->buf, sizeof h);
        const unsigned char *rp = v[x]->buf + sizeof h;
        const unsigned char *dp = rp + (size_t)h.nranges * sizeof(struct log_rec_range);
        for (uint32_t r = 0; r < h.nranges && rc == 0; r++) {
            struct log_rec_range d;
            memcpy(&d, rp + r * sizeof d, sizeof d);
            rc = merge_add(&m, d.seg_id, d.offset, d.len, dp);
            dp += d.len;
        }
    }
    struct log_img *img = NULL;
    if (rc == 0)
        rc = merge_sort(&m);
    if (rc == 0 && data / n >= COALESCE_BIG && data - m.bytes < data / 8) {
        L->bm = m;
        return NULL;
    }
    size_t len = sizeof(struct log_rec_hdr) + m.np * sizeof(struct log_rec_range) +
                 log_align(m.bytes) + sizeof(struct log_rec_trailer);
    if (rc == 0 && len <= L->D / 4)
        img = img_alloc(len, nsegs);
    if (img) {
        struct log_rec_hdr h0;
        memcpy(&h0, batch->buf, sizeof h0);
        struct log_rec_hdr h = {.type = LOG_REC_TRANS, .flags = LOG_REC_F_BATCH,
                                .tid = h0.tid, .nranges = (uint32_t)m.np,
                                .ntrans = (uint32_t)ntrans, .len = len};
        memcpy(img->buf, &h, sizeof h);
        unsigned char *rp = img->buf + sizeof h;
        unsigned char *dp = rp + m.np * sizeof(struct log_rec_range);
        /* Pieces that touch in the segment share one descriptor. */
        size_t nd = 0;
        struct log_rec_range d = {0};
        for (size_t p = 0; p < m.np; p++) {
            if (nd && d.seg_id == m.p[p].seg && d.offset + d.len == m.p[p].off) {
                d.len += m.p[p].len;
            } else {
                if (nd)
                    memcpy(rp + (nd - 1) * sizeof d, &d, sizeof d);
                d = (struct log_rec_range){m.p[p].seg, m.p[p].off, m.p[p].len};
                nd++;
            }
        }
        if (nd)
            memcpy(rp + (nd - 1) * sizeof d, &d, sizeof d);
        /* Fewer descriptors: the data moves up behind them. */
        dp = rp + nd * sizeof(struct log_rec_range);
        for (size_t p = 0; p < m.np; p++) {
            memcpy(dp, m.p[p].data, m.p[p].len);
            dp += m.p[p].len;
        }
        len = sizeof(struct log_rec_hdr) + nd * sizeof(struct log_rec_range) +
              log_align(m.bytes) + sizeof(struct log_rec_trailer);
        h.nranges = (uint32_t)nd;
        h.len = len;
        memcpy(img->buf, &h, sizeof h);
        memset(dp, 0, (size_t)(log_align(m.bytes) - m.bytes));
        for (size_t x = 0; x < n; x++)
            for (size_t s = 0; s < v[x]->nsegs; s++) {
                bool dup = false;
                for (size_t t = 0; t < img->nsegs; t++)
                    dup |= img->segs[t] == v[x]->segs[s];
                if (!dup)
                    img->segs[img->nsegs++] = v[x]->segs[s];
            }
        img->len = len;
        img->data_len = m.bytes;
        img->ntrans = ntrans;
    }
    L->bm = m;
    return img;
}

