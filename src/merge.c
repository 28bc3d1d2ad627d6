#include "merge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void merge_init(struct merge *m)
{
    memset(m, 0, sizeof *m);
}

void merge_free(struct merge *m)
{
    free(m->cov);
    free(m->p);
    merge_init(m);
}

static int piece_add(struct merge *m, uint64_t seg, uint64_t off, uint64_t len,
                     const unsigned char *data)
{
    if (!len)
        return 0;
    if (m->np == m->pcap) {
        size_t nc = m->pcap ? m->pcap * 2 : 64;
        struct merge_piece *nv = realloc(m->p, nc * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        m->p = nv;
        m->pcap = nc;
    }
    m->p[m->np++] = (struct merge_piece){seg, off, len, data};
    m->bytes += len;
    return 0;
}

static int span_less(const struct merge_span *a, uint64_t seg, uint64_t pos)
{
    return a->seg < seg || (a->seg == seg && a->end < pos);
}

int merge_add(struct merge *m, uint64_t seg, uint64_t off, uint64_t len,
              const unsigned char *data)
{
    if (!len)
        return 0;
    uint64_t end = off + len;
    /* First covered span of this segment that ends at or after off. */
    size_t lo = 0, hi = m->ncov;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (span_less(&m->cov[mid], seg, off))
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t i = lo, j = lo;
    uint64_t cur = off;
    while (j < m->ncov && m->cov[j].seg == seg && m->cov[j].start <= end) {
        if (m->cov[j].start > cur &&
            piece_add(m, seg, cur, m->cov[j].start - cur, data + (cur - off)) < 0)
            return -ENOMEM;
        if (m->cov[j].end > cur)
            cur = m->cov[j].end;
        j++;
    }
    if (cur < end && piece_add(m, seg, cur, end - cur, data + (cur - off)) < 0)
        return -ENOMEM;
    /* Cover [off, end) joined with the spans [i, j) it touches. */
    uint64_t ns = off, ne = end;
    if (j > i) {
        if (m->cov[i].start < ns)
            ns = m->cov[i].start;
        if (m->cov[j - 1].end > ne)
            ne = m->cov[j - 1].end;
    } else {
        if (m->ncov == m->covcap) {
            size_t nc = m->covcap ? m->covcap * 2 : 64;
            struct merge_span *nv = realloc(m->cov, nc * sizeof *nv);
            if (!nv)
                return -ENOMEM;
            m->cov = nv;
            m->covcap = nc;
        }
        memmove(&m->cov[i + 1], &m->cov[i], (m->ncov - i) * sizeof *m->cov);
        m->ncov++;
        j = i + 1;
    }
    memmove(&m->cov[i + 1], &m->cov[j], (m->ncov - j) * sizeof *m->cov);
    m->ncov -= j - i - 1;
    m->cov[i] = (struct merge_span){seg, ns, ne};
    return 0;
}

static int piece_cmp(const void *a, const void *b)
{
    const struct merge_piece *x = a, *y = b;
    if (x->seg != y->seg)
        return x->seg < y->seg ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

void merge_sort(struct merge *m)
{
    qsort(m->p, m->np, sizeof *m->p, piece_cmp);
    size_t k = 0;
    for (size_t i = 0; i < m->np; i++) {
        if (k && m->p[k - 1].seg == m->p[i].seg &&
            m->p[k - 1].off + m->p[k - 1].len == m->p[i].off &&
            m->p[k - 1].data + m->p[k - 1].len == m->p[i].data)
            m->p[k - 1].len += m->p[i].len;
        else
            m->p[k++] = m->p[i];
    }
    m->np = k;
}
