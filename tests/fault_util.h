/*
 * Helpers of the fault tests (test_powerloss.c, test_io_errors.c): run a
 * scenario in a forked child (whose RVM state is abandoned, as at a power
 * loss), then recover the files in the parent with POSIX I/O and check
 * the store (store.h).  Children report by exit code, not with cmocka.
 */
#ifndef RVM_FAULT_UTIL_H
#define RVM_FAULT_UTIL_H

#include <stdio.h>
#include <unistd.h>

#include "fault_io.h"
#include "store.h"
#include "test_util.h"

#define FAULT_LOG_LEN KIB(256)

/* In a child: report and leave. */
#define CHILD_CHECK(cond, ...) do { \
        if (!(cond)) { \
            fprintf(stderr, "child, line %d: ", __LINE__); \
            fprintf(stderr, __VA_ARGS__); \
            fprintf(stderr, " [%s]\n", rvm_errmsg()); \
            _exit(3); \
        } \
    } while (0)

/* A child exits with CHILD_ACKED when the operation the power loss was
 * aimed at returned success before the crash (it is then durable). */
#define CHILD_ACKED 10

/* Fork, run fn(s, arg) in the child, wait.  Returns 0 or CHILD_ACKED;
 * any other end of the child fails the test. */
int run_in_child(void (*fn)(struct store *, unsigned), struct store *s,
                 unsigned arg);

/* Recover in this process with POSIX I/O; the state must be whole. */
void recover_and_check(struct store *s, uint64_t *k, uint64_t *life);

/* In a child: install fault_io (seeded) and open the store; the seed
 * also picks options (coalescing, private mappings). */
void child_open(struct store *s, unsigned seed, long trunc);

/* In a child: open the store with the I/O methods in force (recovering
 * it) and check that it is whole; its k and life. */
void child_recover(struct store *s, uint64_t *k, uint64_t *life);
/* In a child: commit k = from..to (life 1) with this end mode. */
void child_commits(struct store *s, uint64_t from, uint64_t to, rvm_mode_t end_mode);
/* A child body: open with POSIX I/O, commit arg % 100 transactions of
 * life arg / 100 after the recovered k, and return without terminating. */
void child_commits_then_die(struct store *s, unsigned arg);

/* Teardown of the fault tests: t_teardown, then back to POSIX I/O. */
int fault_teardown(void **state);

#endif
