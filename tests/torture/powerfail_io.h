/*
 * A power-failure I/O layer for the torture harness (rvm_io_methods).
 *
 * Model of the disk: every write goes through to the real file at once
 * (so reads and mmap see it, as they see the page cache) and is also
 * remembered as *pending* with the bytes it overwrote.  A sync of a file
 * makes that file's pending writes durable (forgets them), whichever
 * descriptor of the same path they were written through; the real
 * fdatasync is not called, since the power loss is simulated.
 *
 * Every pwrite and sync counts as one I/O.  At the chosen I/O (or when
 * the caller says so) the power fails: every pending write is undone,
 * newest first; then, in issue order, each pending write is kept, dropped
 * or torn (a prefix cut at a byte or a 512-byte sector, or a random subset
 * of its sectors) according to the policy, and the crashing write itself
 * (if the I/O was a pwrite) is treated as the last pending one.  The files
 * are left in that state and the process ends with _exit(PF_CRASH_EXIT):
 * nothing librvm does afterwards can reach the files.
 *
 * Besides power loss: fail chosen I/Os with -EIO or -ENOSPC (a failed
 * pwrite writes nothing; a failed sync makes nothing durable).
 *
 * Thread-safe: one mutex serializes every method, so the crash is atomic
 * with respect to librvm's threads.  Files are never shrunk by the undo;
 * resize is taken as durable at once.
 */
#ifndef TORTURE_POWERFAIL_IO_H
#define TORTURE_POWERFAIL_IO_H

#include <stdbool.h>
#include <stdint.h>

#include "rvm_io.h"

#define PF_CRASH_EXIT 42

enum pf_keep {
    PF_KEEP_NONE,    /* every pending write is lost */
    PF_KEEP_ALL,     /* every pending write reached the disk */
    PF_KEEP_RANDOM,  /* each one independently, kept, dropped or torn */
    PF_KEEP_PREFIX,  /* a prefix in issue order; the last of it may be torn */
    PF_KEEP_N
};

/* Which I/Os count toward the crash point. */
enum pf_class {
    PF_CLASS_ANY,     /* every pwrite and sync */
    PF_CLASS_APPLY,   /* segment writes and syncs, and log status writes
                       * (what truncation and recovery do) */
};

struct pf_config {
    uint64_t seed;
    uint64_t crash_at;      /* crash at this I/O (1 = first counted); 0: never */
    enum pf_class crash_class;
    enum pf_keep keep;
    int tear_pct;           /* chance that the last kept write is torn */
    uint64_t fail_at;       /* fail this I/O (counted over all I/Os); 0: never */
    bool fail_syncs_only;   /* count only syncs toward fail_at */
    uint64_t *failed_out;   /* if set, incremented (atomically) at each injected failure */
    int fail_err;           /* EIO or ENOSPC */
    int fail_times;         /* how many I/Os in a row fail from fail_at */
    const char *log_path;   /* the log: status writes are told apart by offset */
    uint64_t status_area;   /* bytes of the two status slots */
};

/* Reset and rvm_io_set() the methods.  Only while RVM is not initialized. */
void pf_install(const struct pf_config *cfg);
/* rvm_io_set(NULL). */
void pf_uninstall(void);
/* Power loss now (the policy of the config); never returns. */
void pf_crash_now(void) __attribute__((noreturn));
/* I/Os counted so far (all, and of the crash class). */
uint64_t pf_count(void);
uint64_t pf_count_class(void);
/* I/Os failed by injection so far. */
uint64_t pf_failed(void);

#endif
