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
    struct merge_piece *p;       /* the result, after merge_sort */
    size_t np, pcap;
    uint64_t bytes;              /* bytes in the pieces */
};

void merge_init(struct merge *m);
/* Add a range; newer ranges must come first.  0 or -ENOMEM. */
int merge_add(struct merge *m, uint64_t seg, uint64_t off, uint64_t len,
              const unsigned char *data);
/* Resolve: pieces sorted by (seg, off), each byte once, newest value.
 * 0 or -ENOMEM. */
int merge_sort(struct merge *m);
void merge_free(struct merge *m);

#endif
