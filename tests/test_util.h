/*
 * Helpers shared by the librvm cmocka tests: a private temporary
 * directory per test, a log in it, and bookkeeping of the regions and
 * tids a test uses so that the teardown can always leave RVM terminated
 * (the next test initializes it again).
 */
#ifndef RVM_TEST_UTIL_H
#define RVM_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rvm/rvm.h"

#define T_MAX_REGIONS 256
#define T_MAX_TIDS 64
#define T_MAX_PATHS 256

#define KIB(n) ((size_t)(n) * 1024u)
#define MIB(n) ((size_t)(n) * 1024u * 1024u)

struct tctx {
    char dir[4096];
    char *log;                          /* <dir>/log */
    rvm_region_t *regions[T_MAX_REGIONS];
    rvm_tid_t *tids[T_MAX_TIDS];
    char *paths[T_MAX_PATHS];
    int npaths;
};

/* cmocka setup/teardown: state is a struct tctx. */
int t_setup(void **state);
int t_teardown(void **state);

/* A path inside the test's directory (owned by ctx). */
const char *t_path(struct tctx *c, const char *name);

/* Create ctx->log with this data size (rvm_create_log); asserts. */
void t_create_log(struct tctx *c, size_t data_len);

/* Options naming ctx->log, truncate as given.  Caller-owned record. */
void t_options(struct tctx *c, rvm_options_t *o, long truncate);

/* Create the log when missing and initialize RVM with it; asserts. */
void t_init(struct tctx *c, size_t log_data_len, long truncate);

/* Unmap every tracked region, terminate, initialize again (same log). */
void t_reinit(struct tctx *c, long truncate);

/* Map [offset, offset+length) of segment file <dir>/<seg>; asserts
 * success; the region is tracked (unmapped by the teardown). */
rvm_region_t *t_map(struct tctx *c, const char *seg, size_t offset,
                    size_t length, rvm_length_t flags);
/* Like t_map but returns the code and leaves *out NULL on failure. */
rvm_return_t t_try_map(struct tctx *c, const char *seg, size_t offset,
                       size_t length, char *vmaddr, rvm_length_t flags,
                       rvm_region_t **out);
/* Unmap and forget a tracked region; asserts. */
void t_unmap(struct tctx *c, rvm_region_t *r);

/* A heap tid tracked by ctx (aborted/ended and freed by the teardown). */
rvm_tid_t *t_tid(struct tctx *c);

/* One transaction: modify_bytes(dest, src, len), commit with mode. */
void t_commit_bytes(void *dest, const void *src, size_t len, rvm_mode_t mode);

/* Whole-file helpers (plain POSIX, outside RVM). */
void t_read_file(const char *path, size_t off, void *buf, size_t len);
void t_write_file(const char *path, size_t off, const void *buf, size_t len);
uint64_t t_file_size(const char *path);
int t_file_exists(const char *path);

/* Deterministic fill: byte i of a pattern with seed s. */
void t_fill(void *buf, size_t len, unsigned seed);
int t_check_fill(const void *buf, size_t len, unsigned seed);

/* rm -rf */
void t_rmtree(const char *dir);
/* mkdtemp under $TMPDIR or /tmp into buf; returns 0 or -1. */
int t_mkdtemp(char *buf, size_t size, const char *prefix);

/* rvm_query into a heap record (free it with rvm_free_options); asserts. */
rvm_options_t *t_query(rvm_region_t *region);

/* Current counters; asserts. */
rvm_stats_t t_stats(void);

#define assert_rvm(call, code) do { \
        rvm_return_t rc_ = (call); \
        if (rc_ != (code)) \
            fail_msg("%s: got %s (%d), expected %s (%d); errmsg: %s", #call, \
                     rvm_return(rc_), rc_, rvm_return(code), (int)(code), \
                     rvm_errmsg()); \
    } while (0)
#define assert_rvm_ok(call) assert_rvm(call, RVM_SUCCESS)

#endif
