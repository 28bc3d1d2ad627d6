#ifndef RVM_LOG_APPLY_H
#define RVM_LOG_APPLY_H
#include <stddef.h>
#include <stdint.h>
#include "log_scan.h"

struct seg;

/*
 * Apply every record of the walk to its segment, then sync the segments
 * written.  0 when the walk ended normally (s->why says where), -errno on
 * an I/O error.  n_skipped counts ranges of segments whose file is gone.
 * With unsynced non-NULL the segments written are not synced but handed
 * to the caller (*unsynced, malloc'd, *n_unsynced of them, each pinned
 * against seg_gc_locked: seg_unpin), who must sync them before the log
 * space of the records is reused.
 */
int log_apply_walk(struct log_scan *s, uint64_t *n_applied, uint64_t *n_skipped,
                   struct seg ***unsynced, size_t *n_unsynced);
#endif
