/*
 * Walking the records of a log, from a status head onwards, checking each
 * one: magic, type, epoch, consecutive sequence number, length, CRC32C.
 * The walk ends at the first record that does not check (the normal end
 * of a log is such a record: zeros, or a stale record of an older lap).
 */
#ifndef RVM_LOG_SCAN_H
#define RVM_LOG_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log_ahead.h"
#include "log_format.h"
#include "rvm_io.h"

struct log_scan {
    const rvm_io_methods *io;
    rvm_io_file *f;
    uint64_t status_size, data_size, epoch;
    uint64_t pos;          /* logical position of the next record */
    uint64_t seq;          /* sequence number expected there */
    uint64_t end;          /* stop here (UINT64_MAX: until a record fails) */
    size_t buf_want;       /* read size */
    struct log_ahead rd;   /* the buffers: rd.b[rd.cur] holds the records */
    /* Records that end by here are checked without their checksum: a
     * truncation's, which this process wrote and forced (0: none). */
    uint64_t trusted_end;
    uint64_t n_records;    /* TRANS records returned */
    char why[200];         /* why the walk ended */
};

/* Set up a walk; buf_want is the read size (recovery_buf_len). */
int log_scan_init(struct log_scan *s, const rvm_io_methods *io, rvm_io_file *f,
                  const struct log_status *st, uint64_t end, size_t buf_want);
void log_scan_done(struct log_scan *s);

/*
 * Next TRANS record (WRAP records are followed silently).  Returns 1 and
 * the record (valid until the next call), 0 at the end (s->why says where
 * and why), or -errno for an I/O error.
 */
int log_scan_next(struct log_scan *s, const unsigned char **rec, size_t *len);

/*
 * Read the log through O_DIRECT (path is the log's) when the file system
 * allows it: for a walk over a log not in the page cache (recovery).
 */
void log_scan_direct(struct log_scan *s, const char *path);

/* Read into k's buffers, given back to k by log_scan_done (ahead_reuse). */
void log_scan_reuse(struct log_scan *s, struct ahead_keep *k);

/*
 * True when the next log_scan_next will not read the file, so records it
 * returned before stay valid; false when it may (then they may not).
 */
bool log_scan_buffered(const struct log_scan *s);

/* Check a status slot: 0 if valid, else -EINVAL with why filled. */
int log_status_check(const unsigned char *slot, size_t slot_size, char *why, size_t why_len);

#endif
