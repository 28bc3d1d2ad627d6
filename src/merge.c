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
    uint64_t seg, off, end;
    size_t age;
};

/* Ties on the start go to the newer range: the sweep's fast path relies
 * on meeting the newest of a common start first. */
static inline int aged_less(const struct aged *x, const struct aged *y)
{
    if (x->seg != y->seg)
        return x->seg < y->seg;
    if (x->off != y->off)
        return x->off < y->off;
    return x->age < y->age;
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
 * LSD radix sort on (seg, off) packed into one key, in as few passes of
 * at most 11 bits as the largest key needs: batches of small updates to a
 * few segments sort in two or three linear passes.  Stable, so ranges
 * with a common start stay newest first (they were added in age order).
 * -1 when the key does not fit in 64 bits or memory is short (the caller
 * then quicksorts).
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
    unsigned bits = obits + sbits;
    if (bits > 64)
        return -1;
    unsigned passes = (bits + 10) / 11;
    unsigned digit = (bits + passes - 1) / passes;
    size_t nb = (size_t)1 << digit, mask = nb - 1;
    struct aged *tmp = malloc(n * sizeof *tmp);
    size_t *cnt = malloc(nb * sizeof *cnt);
    if (!tmp || !cnt) {
        free(tmp);
        free(cnt);
        return -1;
    }
#define KEY(x) (((x).seg << obits) | (x).off)
    struct aged *src = a, *dst = tmp;
    for (unsigned p = 0, shift = 0; p < passes; p++, shift += digit) {
        memset(cnt, 0, nb * sizeof *cnt);
        for (size_t i = 0; i < n; i++)
            cnt[(KEY(src[i]) >> shift) & mask]++;
        size_t sum = 0;
        for (size_t d = 0; d < nb; d++) {
            size_t c = cnt[d];
            cnt[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[cnt[(KEY(src[i]) >> shift) & mask]++] = src[i];
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
    struct heap h = {NULL, 0};
    int rc = 0;
    if (!a)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        a[i] = (struct aged){m->in[i].seg, m->in[i].off, m->in[i].off + m->in[i].len, i};
    if (radix_sort(a, n) < 0)
        aged_sort(a, n);
    /*
     * Invariant at the top of the loop: every range before a[i] ends at or
     * before a[i].off.  Then a[i] is the newest range starting there, and
     * older ones with that start that it contains are dead (the common
     * case: a record rewritten whole by many transactions).  If what
     * follows starts at or after a[i]'s end, a[i] goes out whole with no
     * heap; only clusters of truly overlapping ranges take the sweep.
     */
    size_t i = 0;
    while (i < n && rc == 0) {
        uint64_t seg = a[i].seg, off = a[i].off, end = a[i].end;
        size_t j = i + 1;
        while (j < n && a[j].seg == seg && a[j].off == off && a[j].end <= end)
            j++;
        if (j == n || a[j].seg != seg || a[j].off >= end) {
            rc = piece_add(m, seg, off, end - off, m->in[a[i].age].data);
            i = j;
            continue;
        }
        if (!h.v && !(h.v = malloc((n + 1) * sizeof *h.v))) {
            rc = -ENOMEM;
            break;
        }
        /* The sweep: the heap holds the ranges covering pos, newest on top;
         * it owns the bytes until it ends or a newer range starts.  The
         * cluster ends where nothing covers pos any more: a range that
         * merely touches it starts the next one (so that runs of adjacent
         * records take the fast path). */
        uint64_t pos = off;
        h.n = 0;
        for (;;) {
            while (i < n && a[i].seg == seg && a[i].off <= pos)
                heap_push(&h, a[i++].age);
            const struct merge_piece *top = &m->in[h.v[0]];
            uint64_t next = top->off + top->len;
            if (i < n && a[i].seg == seg && a[i].off < next)
                next = a[i].off;
            if ((rc = piece_add(m, seg, pos, next - pos, top->data + (pos - top->off))) < 0)
                break;
            pos = next;
            while (h.n && m->in[h.v[0]].off + m->in[h.v[0]].len <= pos)
                heap_pop(&h);
            if (!h.n)
                break; /* everything before a[i] ends by pos <= a[i].off */
        }
    }
    free(a);
    free(h.v);
    return rc;
}
