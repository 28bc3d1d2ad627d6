/*
 * Merging ranges of several transactions so that each byte is written
 * once, with its newest value: inter-transaction coalescing of no_flush
 * batches, and sorted, coalesced writes during recovery.
 *
 * Ranges are added newest first; merge_sort() then keeps, for every byte,
 * the newest range's value and leaves pieces sorted by (segment, offset).
 */
#ifndef RVM_MERGE_H
#define RVM_MERGE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

struct merge_piece {
    uint64_t seg;
    uint64_t off;
    uint64_t len;
    const unsigned char *data;   /* not owned */
};

struct merge {
    struct merge_piece *in;      /* ranges as added, newest first */
    size_t nin, incap;
    uint64_t max_seg, max_off;   /* of the ranges added: the sort key's width */
    struct merge_piece *p;       /* the result, after merge_sort */
    size_t np, pcap;
    uint64_t bytes;              /* bytes in the pieces */
    /* Working memory of merge_sort, kept by merge_reset for the next
     * merge: a write-out's allocations, clearing and regrowth copies were
     * a sixth of its merge. */
    void *keys, *slots, *cnt, *heap;
    size_t keycap, slotcap, cntcap, heapcap;
};

void merge_init(struct merge *m);
/* Ranges' worth of memory merge_reset keeps (a TPC-A write-out has a
 * few thousand): beyond it, a one-off huge batch gives its memory back. */
#define MERGE_KEEP ((size_t)1 << 16)
/* Empty m for the next merge, keeping its memory unless it grew large. */
void merge_reset(struct merge *m);
int merge_grow(struct merge *m);
/* Room for n ranges in all (a hint: merge_add grows as needed). */
int merge_reserve(struct merge *m, size_t n);
/* Add a range; newer ranges must come first.  0 or -ENOMEM.  Inline: a
 * write-out adds a few ranges per transaction of the batch. */
static inline int merge_add(struct merge *m, uint64_t seg, uint64_t off, uint64_t len,
                            const unsigned char *data)
{
    if (!len)
        return 0;
    if (m->nin == m->incap && merge_grow(m) < 0)
        return -ENOMEM;
    if (seg > m->max_seg)
        m->max_seg = seg;
    if (off > m->max_off)
        m->max_off = off;
    /* Added newest first: the index is the age. */
    m->in[m->nin++] = (struct merge_piece){seg, off, len, data};
    return 0;
}
/* Resolve: pieces sorted by (seg, off), each byte once, newest value.
 * 0 or -ENOMEM. */
int merge_sort(struct merge *m);
void merge_free(struct merge *m);

#endif
