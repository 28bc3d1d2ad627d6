/*
 * Newest-wins merging as a skyline sweep: ranges sorted by (segment,
 * start), a max-heap of the ranges covering the sweep position keyed by
 * age; the heap's top owns the bytes until it ends or a newer range
 * starts.  O(n log n) however the ranges overlap.
 */
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
    free(m->in);
    free(m->p);
    merge_init(m);
}

int merge_add(struct merge *m, uint64_t seg, uint64_t off, uint64_t len,
              const unsigned char *data)
{
    if (!len)
        return 0;
    if (m->nin == m->incap) {
        size_t nc = m->incap ? m->incap * 2 : 64;
        struct merge_piece *nv = realloc(m->in, nc * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        m->in = nv;
        m->incap = nc;
    }
    /* Added newest first: the index is the age. */
    m->in[m->nin++] = (struct merge_piece){seg, off, len, data};
    return 0;
}

struct aged {
    uint64_t seg, off;
    size_t age;
};

static inline int aged_less(const struct aged *x, const struct aged *y)
{
    return x->seg < y->seg || (x->seg == y->seg && x->off < y->off);
}

/* qsort's indirect calls cost more than the merge itself: an inlined
 * quicksort (median of three, insertion sort below 16). */
static void aged_sort(struct aged *a, size_t n)
{
    while (n > 16) {
        size_t m = n / 2;
        if (aged_less(&a[m], &a[0])) { struct aged t = a[m]; a[m] = a[0]; a[0] = t; }
        if (aged_less(&a[n - 1], &a[0])) { struct aged t = a[n - 1]; a[n - 1] = a[0]; a[0] = t; }
        if (aged_less(&a[n - 1], &a[m])) { struct aged t = a[n - 1]; a[n - 1] = a[m]; a[m] = t; }
        struct aged pivot = a[m];
        size_t i = 0, j = n - 1;
        for (;;) {
            while (aged_less(&a[i], &pivot))
                i++;
            while (aged_less(&pivot, &a[j]))
                j--;
            if (i >= j)
                break;
            struct aged t = a[i]; a[i] = a[j]; a[j] = t;
            i++;
            j--;
        }
        /* Recurse into the smaller side, loop on the larger. */
        size_t left = j + 1;
        if (left < n - left) {
            aged_sort(a, left);
            a += left;
            n -= left;
        } else {
            aged_sort(a + left, n - left);
            n = left;
        }
    }
    for (size_t i = 1; i < n; i++) {
        struct aged x = a[i];
        size_t j = i;
        while (j && aged_less(&x, &a[j - 1])) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

/* Heap of indices into in[]; smaller index = newer = higher priority. */
struct heap {
    size_t *v;
    size_t n;
};

static void heap_push(struct heap *h, size_t x)
{
    size_t i = h->n++;
    while (i && h->v[(i - 1) / 2] > x) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = x;
}

static void heap_pop(struct heap *h)
{
    size_t x = h->v[--h->n], i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->v[c + 1] < h->v[c])
            c++;
        if (h->v[c] >= x)
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = x;
}

/*
 * LSD radix sort on (seg, off) packed into one key, 11 bits a pass, as
 * many passes as the largest key needs: batches of small updates to a
 * few segments sort in two or three linear passes.  -1 when the key does
 * not fit in 64 bits or memory is short (the caller then quicksorts).
 */
static int radix_sort(struct aged *a, size_t n)
{
    if (n < 64)
        return -1;
    uint64_t max_off = 0, max_seg = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i].off > max_off)
            max_off = a[i].off;
        if (a[i].seg > max_seg)
            max_seg = a[i].seg;
    }
    unsigned obits = max_off ? 64 - (unsigned)__builtin_clzll(max_off) : 1;
    unsigned sbits = max_seg ? 64 - (unsigned)__builtin_clzll(max_seg) : 1;
    if (obits + sbits > 64)
        return -1;
    struct aged *tmp = malloc(n * sizeof *tmp);
    size_t *cnt = malloc(2048 * sizeof *cnt);
    if (!tmp || !cnt) {
        free(tmp);
        free(cnt);
        return -1;
    }
#define KEY(x) (((x).seg << obits) | (x).off)
    struct aged *src = a, *dst = tmp;
    for (unsigned shift = 0; shift < obits + sbits; shift += 11) {
        memset(cnt, 0, 2048 * sizeof *cnt);
        for (size_t i = 0; i < n; i++)
            cnt[(KEY(src[i]) >> shift) & 2047]++;
        size_t sum = 0;
        for (size_t d = 0; d < 2048; d++) {
            size_t c = cnt[d];
            cnt[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[cnt[(KEY(src[i]) >> shift) & 2047]++] = src[i];
        struct aged *t = src;
        src = dst;
        dst = t;
    }
#undef KEY
    if (src != a)
        memcpy(a, src, n * sizeof *a);
    free(tmp);
    free(cnt);
    return 0;
}

static int piece_add(struct merge *m, uint64_t seg, uint64_t off, uint64_t len,
                     const unsigned char *data)
{
    if (m->np && m->p[m->np - 1].seg == seg &&
        m->p[m->np - 1].off + m->p[m->np - 1].len == off &&
        m->p[m->np - 1].data + m->p[m->np - 1].len == data) {
        m->p[m->np - 1].len += len; /* one source run */
        m->bytes += len;
        return 0;
    }
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

int merge_sort(struct merge *m)
{
    size_t n = m->nin;
    struct aged *a = malloc((n + 1) * sizeof *a);
    struct heap h = {malloc((n + 1) * sizeof *h.v), 0};
    int rc = 0;
    if (!a || !h.v) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        a[i] = (struct aged){m->in[i].seg, m->in[i].off, i};
    if (radix_sort(a, n) < 0)
        aged_sort(a, n);
    /* m->in[age] stays the range of that age for the heap. */
    size_t i = 0;
    while (i < n && rc == 0) {
        uint64_t seg = a[i].seg;
        uint64_t pos = a[i].off;
        h.n = 0;
        for (;;) {
            while (i < n && a[i].seg == seg && a[i].off <= pos)
                heap_push(&h, a[i++].age);
            while (h.n && m->in[h.v[0]].off + m->in[h.v[0]].len <= pos)
                heap_pop(&h);
            if (!h.n) {
                if (i < n && a[i].seg == seg) {
                    pos = a[i].off;
                    continue;
                }
                break;
            }
            const struct merge_piece *top = &m->in[h.v[0]];
            uint64_t next = top->off + top->len;
            if (i < n && a[i].seg == seg && a[i].off < next)
                next = a[i].off;
            if ((rc = piece_add(m, seg, pos, next - pos, top->data + (pos - top->off))) < 0)
                break;
            pos = next;
        }
    }
out:
    free(a);
    free(h.v);
    return rc;
}
