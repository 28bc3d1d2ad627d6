#ifndef RVM_LOG_APPLY_H
#define RVM_LOG_APPLY_H
#include <stdint.h>
#include "log_scan.h"

/*
 * Apply every record of the walk to its segment, then sync the segments
 * written.  0 when the walk ended normally (s->why says where), -errno on
 * an I/O error.  n_skipped counts ranges of segments whose file is gone.
 */
int log_apply_walk(struct log_scan *s, uint64_t *n_applied, uint64_t *n_skipped);
#endif
