/*
 * The recovery fuzzer's entry: build a log file from the input, point
 * librvm at it (in memory, see memio.h) and run recovery.  libFuzzer
 * (fuzz_main.c) and the corpus replay test (fuzz_replay.c) both call it.
 *
 * Input layout (so that a fuzzer can reach past the checksums):
 *   byte 0     flags: FZ_RAW: the rest is the whole log file, as is;
 *              otherwise the rest is: u16 n (little-endian), n bytes of
 *              status slot 0, then the data area from its start.
 *              FZ_FIX_STATUS: recompute the status CRC;
 *              FZ_FIX_RECORDS: walk the records from the status head and
 *              recompute each plausible one's CRC (FZ_FIX_SEQ: and set its
 *              seq and epoch to the expected ones);
 *              FZ_SHORT: cut the file right after the supplied data;
 *              FZ_SLOT1: put the status in slot 1 too;
 *              FZ_SEGS: segments named by the log exist (empty).
 * Returns 0; aborts (a finding) when an invariant of recovery breaks:
 * a failure other than RVM_ELOG, RVM_ELOG_VERSION_SKEW or RVM_EIO (out of
 * memory included: no input needs more than a few MiB), a failure without
 * an error message, or a second recovery that is not empty after a
 * successful one.
 */
#ifndef TORTURE_FUZZ_RECOVERY_H
#define TORTURE_FUZZ_RECOVERY_H

#include <stddef.h>
#include <stdint.h>

enum {
    FZ_FIX_STATUS = 1,
    FZ_FIX_RECORDS = 2,
    FZ_SHORT = 4,
    FZ_SLOT1 = 8,
    FZ_FIX_SEQ = 16,
    FZ_SEGS = 32,
    FZ_RAW = 128,
};

int fuzz_recovery_one(const uint8_t *data, size_t size);

/* Encode a status block and data area in the input layout above. */
size_t fuzz_encode(uint8_t flags, const void *status, size_t n_status, const void *data,
                   size_t n_data, uint8_t *out, size_t out_cap);

#define FUZZ_LOG_PATH "/fuzz/rvm.log"

#endif
