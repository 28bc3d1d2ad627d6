/*
 * Newest-wins merging as a skyline sweep: ranges sorted by (segment,
 * start), a max-heap of the ranges covering the sweep position keyed by
 * age; the heap's top owns the bytes until it ends or a newer range
 * starts.  O(n log n) however the ranges overlap.
 */
#include "merge.h"

#include <errno.h>
#include <stdbool.h>
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
    free(m->keys);
    free(m->slots);
    free(m->cnt);
    free(m->heap);
    merge_init(m);
}

void merge_reset(struct merge *m)
{
    if (m->incap > MERGE_KEEP || m->pcap > 2 * MERGE_KEEP) {
        merge_free(m);
        return;
    }
    m->nin = m->np = 0;
    m->max_seg = m->max_off = 0;
    m->bytes = 0;
}

/* *p with room for n bytes; its contents are not kept. */
static void *scratch(void **p, size_t *cap, size_t n)
{
    if (n <= *cap)
        return *p;
    void *nv = malloc(n);
    if (!nv)
        return NULL;
    free(*p);
    *p = nv;
    *cap = n;
    return nv;
}

int merge_reserve(struct merge *m, size_t n)
{
    if (n <= m->incap)
        return 0;
    struct merge_piece *nv = realloc(m->in, n * sizeof *nv);
    if (!nv)
        return -ENOMEM;
    m->in = nv;
    m->incap = n;
    return 0;
}

int merge_grow(struct merge *m)
{
    return merge_reserve(m, m->incap ? m->incap * 2 : 64);
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

/* What the sort orders: (seg, off) packed into one key, and the age. */
struct skey {
    uint64_t key;
    uint64_t age;
};

/*
 * LSD radix sort of n keys of `bits` bits, in as few passes of at most 11
 * bits as that needs: batches of small updates to a few segments sort in
 * two or three linear passes.  One read counts the digits of every pass;
 * a pass whose digit is the same for all keys is skipped.  Stable, so
 * ranges with a common start stay newest first (they were added in age
 * order).  Returns the sorted array: a or tmp.  NULL when memory is short.
 */
static struct skey *radix_sort(struct merge *m, struct skey *a, struct skey *tmp, size_t n,
                               unsigned bits)
{
    unsigned passes = (bits + 10) / 11;
    unsigned digit = (bits + passes - 1) / passes;
    size_t nb = (size_t)1 << digit, mask = nb - 1;
    size_t *cnt = scratch(&m->cnt, &m->cntcap, passes * nb * sizeof *cnt);
    if (!cnt)
        return NULL;
    memset(cnt, 0, passes * nb * sizeof *cnt);
    if (passes == 3) {
        /* The common width (a segment of up to 2^26 bytes or so): the
         * inner loop unrolled. */
        size_t *c1 = cnt + nb, *c2 = cnt + 2 * nb;
        for (size_t i = 0; i < n; i++) {
            uint64_t k = a[i].key;
            cnt[k & mask]++;
            c1[(k >> digit) & mask]++;
            c2[(k >> (2 * digit)) & mask]++;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            uint64_t k = a[i].key;
            for (unsigned p = 0; p < passes; p++)
                cnt[p * nb + ((k >> (p * digit)) & mask)]++;
        }
    }
    struct skey *src = a, *dst = tmp;
    for (unsigned p = 0; p < passes; p++) {
        size_t *c = cnt + p * nb, sum = 0;
        bool one = false;
        for (size_t d = 0; d < nb; d++) {
            size_t x = c[d];
            one |= x == n;
            c[d] = sum;
            sum += x;
        }
        if (one)
            continue;
        unsigned shift = p * digit;
        for (size_t i = 0; i < n; i++)
            dst[c[(src[i].key >> shift) & mask]++] = src[i];
        struct skey *t = src;
        src = dst;
        dst = t;
    }
    return src;
}

static inline int piece_add(struct merge *m, uint64_t seg, uint64_t off, uint64_t len,
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

/*
 * The ranges that can own a byte, newest first, as ages in out[].age.  A
 * range is dead when a newer one with the same start is at least as
 * long: in a batch, a teller or branch record rewritten by hundreds of
 * transactions.  Dropping those before the sort (a hash of the starts,
 * holding the longest newer length) halves what a TPC-A write-out sorts;
 * the sweep drops any the table misses (it stays correct without it).
 */
static size_t live_ranges(struct merge *m, struct skey *out, unsigned obits)
{
    size_t n = m->nin, nk = 0;
    size_t cap = 64;
    while (cap < 2 * n)
        cap *= 2;
    const struct merge_piece *in = m->in;
    /* Slots hold 1 + the age of the newest range of a start (0: empty),
     * and the longest length of that start so far; only the first array
     * needs clearing. */
    uint32_t *slot = n < UINT32_MAX
                         ? scratch(&m->slots, &m->slotcap, cap * (sizeof *slot + sizeof(uint64_t)))
                         : NULL;
    if (!slot) {
        for (size_t i = 0; i < n; i++)
            out[i] = (struct skey){(in[i].seg << obits) | in[i].off, i};
        return n;
    }
    uint64_t *maxlen = (uint64_t *)(slot + cap);
    memset(slot, 0, cap * sizeof *slot);
    for (size_t i = 0; i < n; i++) {
        uint64_t seg = in[i].seg, off = in[i].off;
        uint64_t hv = (off ^ (seg << 40)) * 0x9E3779B97F4A7C15ULL;
        size_t k = (size_t)(hv >> 32) & (cap - 1);
        while (slot[k] && (in[slot[k] - 1].seg != seg || in[slot[k] - 1].off != off))
            k = (k + 1) & (cap - 1);
        if (!slot[k]) {
            slot[k] = (uint32_t)i + 1;
            maxlen[k] = 0;
        } else if (maxlen[k] >= in[i].len) {
            continue;
        }
        maxlen[k] = in[i].len;
        /* The sort key too, while the range is at hand (meaningless when
         * the key is too wide: merge_sort then sorts by comparison). */
        out[nk++] = (struct skey){(seg << obits) | off, i};
    }
    return nk;
}

int merge_sort(struct merge *m)
{
    size_t n = m->nin;
    const struct merge_piece *in = m->in;
    struct heap h = {NULL, 0};
    int rc = 0;
    struct skey *buf = scratch(&m->keys, &m->keycap, 2 * (n + 1) * sizeof *buf), *a = NULL;
    if (!buf)
        return -ENOMEM;
    unsigned obits = m->max_off ? 64 - (unsigned)__builtin_clzll(m->max_off) : 1;
    unsigned sbits = m->max_seg ? 64 - (unsigned)__builtin_clzll(m->max_seg) : 1;
    size_t nk = live_ranges(m, buf, obits < 64 ? obits : 0);
    if (nk >= 64 && obits + sbits <= 64)
        a = radix_sort(m, buf, buf + nk, nk, obits + sbits);
    /* Most ranges come out as one piece each: no regrowth on the way. */
    if (m->pcap < nk) {
        struct merge_piece *nv = realloc(m->p, nk * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        m->p = nv;
        m->pcap = nk;
    }
    if (!a) {
        /* Small, or keys too wide for one word (or short of memory). */
        struct aged *g = malloc((n + 1) * sizeof *g);
        if (!g)
            return -ENOMEM;
        for (size_t i = 0; i < nk; i++) {
            const struct merge_piece *x = &in[buf[i].age];
            g[i] = (struct aged){x->seg, x->off, x->off + x->len, buf[i].age};
        }
        aged_sort(g, nk);
        for (size_t i = 0; i < nk; i++)
            buf[i].age = g[i].age;
        free(g);
        a = buf;
    }
    n = nk;
#define SEG(i) in[a[i].age].seg
#define OFF(i) in[a[i].age].off
#define END(i) (in[a[i].age].off + in[a[i].age].len)
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
        uint64_t seg = SEG(i), off = OFF(i), end = END(i);
        size_t j = i + 1;
        while (j < n && SEG(j) == seg && OFF(j) == off && END(j) <= end)
            j++;
        if (j == n || SEG(j) != seg || OFF(j) >= end) {
            rc = piece_add(m, seg, off, end - off, in[a[i].age].data);
            i = j;
            continue;
        }
        if (!h.v && !(h.v = scratch(&m->heap, &m->heapcap, (n + 1) * sizeof *h.v))) {
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
            while (i < n && SEG(i) == seg && OFF(i) <= pos)
                heap_push(&h, a[i++].age);
            const struct merge_piece *top = &m->in[h.v[0]];
            uint64_t next = top->off + top->len;
            if (i < n && SEG(i) == seg && OFF(i) < next)
                next = OFF(i);
            if ((rc = piece_add(m, seg, pos, next - pos, top->data + (pos - top->off))) < 0)
                break;
            pos = next;
            while (h.n && m->in[h.v[0]].off + m->in[h.v[0]].len <= pos)
                heap_pop(&h);
            if (!h.n)
                break; /* everything before a[i] ends by pos <= a[i].off */
        }
    }
#undef SEG
#undef OFF
#undef END
    return rc;
}
