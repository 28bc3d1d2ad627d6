/*
 * A fault-injecting rvm_io_methods for tests, wrapping rvm_io_posix().
 *
 * Model of the disk: every write goes through to the real file at once
 * (so reads and mmap see it, as they would see the page cache), and is
 * also remembered as *pending* together with the bytes it overwrote.  A
 * sync of a file makes that file's pending writes durable (forgets them).
 * A simulated power loss, fault_io_crash(), puts the file back in its
 * durable state by undoing every pending write (newest first), then
 * re-applies the pending writes that the chosen policy lets "reach the
 * disk": none, all, a random subset, or a prefix in issue order; the last
 * one re-applied may be torn at a byte.  After a crash every method fails
 * with -EIO, so that nothing RVM does later reaches the files; the test
 * then ends the process (_exit) or fault_io_reset()s and re-initializes.
 *
 * Besides crashes: fail the Nth pwrite, sync or pread (optionally only on files
 * whose path contains a string) with any errno, once or repeatedly; or
 * crash at the Nth sync, before it takes effect.
 *
 * Thread-safe: one mutex serializes every method, so a crash is atomic
 * with respect to RVM's threads.
 */
#ifndef RVM_FAULT_IO_H
#define RVM_FAULT_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rvm_io.h"

enum fault_keep {
    FAULT_KEEP_NONE,    /* every pending write is lost */
    FAULT_KEEP_ALL,     /* every pending write reached the disk */
    FAULT_KEEP_RANDOM,  /* each pending write independently, p = 1/2 */
    FAULT_KEEP_PREFIX,  /* a random prefix, in issue order */
};

#define FAULT_NO_TEAR (-1L)      /* keep the last kept write whole */
#define FAULT_TEAR_RANDOM (-2L)  /* tear it at a random byte in [0, len) */

/* FAULT_DIRECT only counts (fault_io_count): a direct write is a pwrite
 * to the rules, and counts as one too. */
enum fault_op { FAULT_PWRITE, FAULT_SYNC, FAULT_PREAD, FAULT_DIRECT };

/* The methods (for rvm_io_set); fault_io_install() does it for you. */
const rvm_io_methods *fault_io_methods(void);

/* Reset all state, seed the generator and rvm_io_set() the methods.
 * Only while RVM is not initialized. */
void fault_io_install(unsigned seed);
/* rvm_io_set(NULL) and forget everything (pending writes are dropped
 * without being undone: the files keep what was written). */
void fault_io_uninstall(void);
/* Forget pending writes and armed faults, leave the crashed state. */
void fault_io_reset(void);

/* Fail the nth (1 = next) op (pwrite, sync or pread) from now on files whose path contains
 * `match` (NULL: any file) with -err; then `times` more times in a row
 * (0: only once; -1: forever).  A failed pwrite writes nothing. */
void fault_io_fail(enum fault_op op, const char *match, unsigned nth, int err,
                   int times);

/* At the nth (1 = next) sync of a file whose path contains `match`
 * (NULL: any), crash instead of syncing, with this policy; that sync
 * returns -EIO. */
void fault_io_crash_at_sync(const char *match, unsigned nth,
                            enum fault_keep keep, long tear);

/* Power loss now. */
void fault_io_crash(enum fault_keep keep, long tear);

bool fault_io_crashed(void);
/* Pending (unsynced) writes now. */
size_t fault_io_pending(void);
/* pwrites, direct writes or syncs so far (since install/reset) on files
 * whose path contains match (NULL: all files). */
unsigned long fault_io_count(enum fault_op op, const char *match);
/* Bytes kept / writes torn by the last crash (for test messages). */
size_t fault_io_last_crash_kept(void);
long fault_io_last_crash_tear(void);

#endif
