/*
 * Merging ranges of several transactions so that each byte is written
 * once, with its newest value: inter-transaction coalescing of no_flush
 * batches, and sorted, coalesced writes during recovery.
 *
 * Ranges are added newest first; a byte already covered by a newer range
 * is dropped.  The pieces left are then sorted by (segment, offset).
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

struct merge_span {
    uint64_t seg, start, end;
};

struct merge {
    struct merge_span *cov;      /* covered bytes, sorted, disjoint */
    size_t ncov, covcap;
    struct merge_piece *p;
    size_t np, pcap;
    uint64_t bytes;              /* bytes in the pieces */
};

void merge_init(struct merge *m);
/* Add a range; newer ranges must come first.  0 or -ENOMEM. */
int merge_add(struct merge *m, uint64_t seg, uint64_t off, uint64_t len,
              const unsigned char *data);
/* Sort the pieces by (seg, off) and join ones that touch in memory too. */
void merge_sort(struct merge *m);
void merge_free(struct merge *m);

#endif
