/*
 * A tiny recoverable "store" for the fault and crash tests: two segments,
 * three regions, and transactions that write one counter value k (and
 * the "life" L of the process that wrote it) into several places of every
 * region, plus patterns derived from (k, L).  A recovered store is whole
 * when every place agrees; any partial transaction shows as disagreement.
 *
 * No cmocka here: children of fork() use it too and report by exit code.
 */
#ifndef RVM_TEST_STORE_H
#define RVM_TEST_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rvm/rvm.h"

/* Lanes: independent counters, one page of each region apiece, so that
 * several threads can commit without sharing bytes. */
#define STORE_LANES 4

struct store {
    char dir[4096];
    char log[4200], sega[4200], segb[4200];
    rvm_region_t *a0, *a1, *b;
};

/* Fill in the paths: <dir>/rvm.log, <dir>/seg-A.dat, <dir>/seg-B.dat. */
void store_paths(struct store *s, const char *dir);
/* Create the log if missing (log_len data bytes), RVM_INIT, map the
 * regions.  flags: the RVM_COALESCE_* bits go to rvm_initialize,
 * RVM_MAP_PRIVATE to rvm_map.  On failure *why names the failing step. */
rvm_return_t store_open(struct store *s, size_t log_len, long truncate,
                        rvm_length_t flags, const char **why);
/* Unmap and rvm_terminate. */
rvm_return_t store_close(struct store *s);
/* Free the region records without unmapping (after a simulated crash). */
void store_forget(struct store *s);

/* One transaction writing value k of life L.  With abort_first, a
 * restore transaction writes junk everywhere and aborts first. */
rvm_return_t store_txn(struct store *s, uint64_t k, uint64_t life,
                       rvm_mode_t begin_mode, rvm_mode_t end_mode,
                       bool abort_first);
/* The same for one lane (0 <= lane < STORE_LANES); the calls above use
 * lane 0. */
rvm_return_t store_txn_lane(struct store *s, int lane, uint64_t k, uint64_t life,
                            rvm_mode_t begin_mode, rvm_mode_t end_mode,
                            bool abort_first);
int store_check_lane(const struct store *s, int lane, uint64_t *k,
                     uint64_t *life, char *err, size_t errlen);

/* Begin a transaction that writes k everywhere but leave it open; *tid
 * must be initialized.  Used to check that aborted/failed commits vanish. */
rvm_return_t store_txn_open(struct store *s, rvm_tid_t *tid, uint64_t k,
                            uint64_t life, rvm_mode_t begin_mode);

/* Check the mapped state: 0 and *k, *life when whole; -1 and a message
 * in err otherwise. */
int store_check(const struct store *s, uint64_t *k, uint64_t *life,
                char *err, size_t errlen);

#endif
