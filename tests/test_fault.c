/*
 * Faults under librvm, injected through the I/O layer (fault_io.c): torn
 * and lost log writes, a corrupted log, crashes during truncation, and
 * EIO/ENOSPC from the log and the segments.
 *
 * Crashes happen in a forked child (RVM's state in that process is
 * abandoned, as at a power loss); the parent then recovers the files with
 * plain POSIX I/O and checks what survived.
 */
#include "test_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault_io.h"
#include "log_format.h"
#include "store.h"

#define PS ((size_t)rvm_page_size())
#define LOG_LEN KIB(256)

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

/* Returns 0 or CHILD_ACKED; any other end of the child fails the test. */
static int run_in_child(void (*fn)(struct store *, unsigned), struct store *s,
                        unsigned arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn(s, arg);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) ||
        (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != CHILD_ACKED))
        fail_msg("child failed (status 0x%x), arg %u", status, arg);
    return WEXITSTATUS(status);
}

/* Recover in this process with POSIX I/O; return the whole state. */
static void recover_and_check(struct store *s, uint64_t *k, uint64_t *life)
{
    const char *why;
    rvm_io_set(NULL);
    rvm_return_t rc = store_open(s, LOG_LEN, 0, 0, &why);
    if (rc != RVM_SUCCESS)
        fail_msg("recovery: %s: %s [%s]", why, rvm_return(rc), rvm_errmsg());
    char err[256];
    if (store_check(s, k, life, err, sizeof err) != 0) {
        store_close(s);
        fail_msg("recovered state is not whole: %s", err);
    }
    assert_rvm_ok(store_close(s));
}

/* Seeds vary the options too: coalescing and private mappings. */
static void child_open(struct store *s, unsigned seed, long trunc)
{
    fault_io_install(seed);
    static const rvm_length_t flag_sets[] = {0, RVM_ALL_OPTIMIZATIONS,
                                             RVM_COALESCE_TRANS, RVM_MAP_PRIVATE};
    const char *why;
    rvm_return_t rc = store_open(s, LOG_LEN, trunc, flag_sets[(seed / 4) % 4], &why);
    CHILD_CHECK(rc == RVM_SUCCESS, "%s: %s", why, rvm_return(rc));
}

static void child_commits(struct store *s, uint64_t from, uint64_t to,
                          rvm_mode_t end_mode)
{
    for (uint64_t k = from; k <= to; k++) {
        rvm_return_t rc = store_txn(s, k, 1, k % 2 ? restore : no_restore,
                                    end_mode, k % 3 == 0);
        CHILD_CHECK(rc == RVM_SUCCESS, "commit %llu: %s", (unsigned long long)k,
                    rvm_return(rc));
    }
}

/* 5 flush commits, then a 6th whose log sync is the power loss. */
static long tear_of(unsigned arg)
{
    static const long tears[] = {0, 1, 7, 8, 47, 48, 100, FAULT_TEAR_RANDOM,
                                 FAULT_TEAR_RANDOM, FAULT_TEAR_RANDOM};
    return tears[arg % (sizeof tears / sizeof tears[0])];
}

static void child_torn_last_record(struct store *s, unsigned arg)
{
    child_open(s, arg, 0);
    child_commits(s, 1, 5, flush);
    fault_io_crash_at_sync("rvm.log", 1, arg < 10 ? FAULT_KEEP_ALL : FAULT_KEEP_NONE,
                           tear_of(arg));
    rvm_return_t rc = store_txn(s, 6, 1, restore, flush, false);
    CHILD_CHECK(rc == RVM_EIO, "commit at the crash: %s", rvm_return(rc));
    CHILD_CHECK(fault_io_crashed(), "no crash happened");
}

static void test_torn_last_record_is_ignored(void **state)
{
    struct tctx *c = *state;
    for (unsigned arg = 0; arg < 12; arg++) {
        char sub[64];
        snprintf(sub, sizeof sub, "torn%u", arg);
        struct store s;
        store_paths(&s, t_path(c, sub));
        assert_int_equal(mkdir(s.dir, 0700), 0);
        run_in_child(child_torn_last_record, &s, arg);
        uint64_t k, life;
        recover_and_check(&s, &k, &life);
        if (arg >= 10)
            assert_int_equal(k, 5); /* nothing of the 6th reached the disk */
        else if (k != 5 && k != 6)
            fail_msg("tear %ld: recovered k=%llu, expected 5 (or 6)", tear_of(arg),
                     (unsigned long long)k);
    }
}

static void child_lost_unsynced(struct store *s, unsigned arg)
{
    child_open(s, arg, 0);
    child_commits(s, 1, 5, flush);
    child_commits(s, 6, 20, no_flush);
    static const enum fault_keep keeps[] = {FAULT_KEEP_NONE, FAULT_KEEP_RANDOM,
                                            FAULT_KEEP_PREFIX, FAULT_KEEP_ALL};
    enum fault_keep keep = keeps[arg % 4];
    long tear = arg % 3 == 0 ? FAULT_TEAR_RANDOM : FAULT_NO_TEAR;
    if (arg % 2) {
        fault_io_crash(keep, tear);
    } else {
        /* the power goes while rvm_flush forces the log */
        fault_io_crash_at_sync("rvm.log", 1, keep, tear);
        rvm_return_t rc = rvm_flush();
        CHILD_CHECK(rc == RVM_EIO || (rc == RVM_SUCCESS && !fault_io_crashed()),
                    "rvm_flush at the crash: %s", rvm_return(rc));
        fault_io_crash(keep, tear);
        if (rc == RVM_SUCCESS)
            _exit(CHILD_ACKED);
    }
}

static void test_lost_unsynced_writes_leave_a_prefix_of_commits(void **state)
{
    struct tctx *c = *state;
    for (unsigned arg = 0; arg < 24; arg++) {
        char sub[64];
        snprintf(sub, sizeof sub, "lost%u", arg);
        struct store s;
        store_paths(&s, t_path(c, sub));
        assert_int_equal(mkdir(s.dir, 0700), 0);
        int acked = run_in_child(child_lost_unsynced, &s, arg) == CHILD_ACKED;
        uint64_t k, life;
        recover_and_check(&s, &k, &life);
        if (acked && k != 20)
            fail_msg("seed %u: rvm_flush returned before the crash, recovered k=%llu",
                     arg, (unsigned long long)k);
        if (k < 5 || k > 20)
            fail_msg("seed %u: recovered k=%llu, expected 5..20", arg,
                     (unsigned long long)k);
    }
}

/* Crash at the nth sync of a file while rvm_truncate() runs. */
static void child_crash_in_truncate(struct store *s, unsigned arg)
{
    child_open(s, arg, 0);
    child_commits(s, 1, 10, arg % 2 ? flush : no_flush);
    CHILD_CHECK(rvm_flush() == RVM_SUCCESS, "flush");
    static const char *files[] = {"seg-A", "seg-B", "rvm.log"};
    const char *file = files[arg % 3];
    unsigned nth = 1 + (arg / 3) % 2;
    enum fault_keep keep = arg % 4 < 2 ? FAULT_KEEP_RANDOM : FAULT_KEEP_PREFIX;
    fault_io_crash_at_sync(file, nth, keep, FAULT_TEAR_RANDOM);
    rvm_return_t rc = rvm_truncate();
    CHILD_CHECK(rc == RVM_EIO || (rc == RVM_SUCCESS && !fault_io_crashed()),
                "truncate at the crash: %s", rvm_return(rc));
    fault_io_crash(keep, FAULT_TEAR_RANDOM);
}

static void test_crash_during_truncation_loses_nothing(void **state)
{
    struct tctx *c = *state;
    for (unsigned arg = 0; arg < 12; arg++) {
        char sub[64];
        snprintf(sub, sizeof sub, "trunc%u", arg);
        struct store s;
        store_paths(&s, t_path(c, sub));
        assert_int_equal(mkdir(s.dir, 0700), 0);
        run_in_child(child_crash_in_truncate, &s, arg);
        uint64_t k, life;
        recover_and_check(&s, &k, &life);
        assert_int_equal(k, 10);
    }
}

/* Logical position -> physical record offsets of the TRANS records of the
 * live log, in order; returns how many were found (at most max). */
static int log_records(const char *path, uint64_t *phys, uint64_t *len, int max)
{
    struct log_status st[2];
    t_read_file(path, 0, &st[0], sizeof st[0]);
    uint64_t S = st[0].magic == LOG_STATUS_MAGIC ? st[0].status_size
                                                  : LOG_STATUS_SIZE_DEFAULT;
    t_read_file(path, S, &st[1], sizeof st[1]);
    int cur = -1;
    for (int i = 0; i < 2; i++)
        if (st[i].magic == LOG_STATUS_MAGIC && (cur < 0 || st[i].gen > st[cur].gen))
            cur = i;
    assert_true(cur >= 0);
    uint64_t D = st[cur].data_size, pos = st[cur].head, seq = st[cur].head_seq;
    int n = 0;
    for (int guard = 0; guard < 100000 && n < max; guard++) {
        uint64_t rem = D - pos % D;
        if (rem < LOG_REC_MIN) {
            pos += rem;
            continue;
        }
        struct log_rec_hdr h;
        t_read_file(path, 2 * S + pos % D, &h, sizeof h);
        if (h.magic != LOG_RECORD_MAGIC || h.epoch != st[cur].epoch ||
            h.seq != seq || h.len < LOG_REC_MIN || h.len > rem)
            break;
        if (h.type == LOG_REC_TRANS) {
            phys[n] = 2 * S + pos % D;
            len[n] = h.len;
            n++;
        }
        pos += h.len;
        seq++;
    }
    return n;
}

/* arg = life * 100 + number of commits */
static void child_commits_then_die(struct store *s, unsigned arg)
{
    unsigned life = arg / 100, n = arg % 100;
    const char *why;
    rvm_return_t rc = store_open(s, LOG_LEN, 0, 0, &why);
    CHILD_CHECK(rc == RVM_SUCCESS, "%s: %s", why, rvm_return(rc));
    uint64_t k, l;
    char err[256];
    CHILD_CHECK(store_check(s, &k, &l, err, sizeof err) == 0, "%s", err);
    for (uint64_t i = k + 1; i <= k + n; i++) {
        rc = store_txn(s, i, life, restore, flush, false);
        CHILD_CHECK(rc == RVM_SUCCESS, "commit: %s", rvm_return(rc));
    }
    /* no terminate: the records stay in the log */
}

static void test_corrupt_byte_in_log_stops_recovery_there(void **state)
{
    struct tctx *c = *state;
    struct store s;
    store_paths(&s, c->dir);
    run_in_child(child_commits_then_die, &s, 110);

    uint64_t phys[16], len[16];
    int n = log_records(s.log, phys, len, 16);
    assert_int_equal(n, 10);
    /* flip one byte in the middle of the 6th record */
    unsigned char b;
    uint64_t at = phys[5] + len[5] / 2;
    t_read_file(s.log, at, &b, 1);
    b ^= 0x40;
    t_write_file(s.log, at, &b, 1);

    rvm_options_t o;
    rvm_init_options(&o);
    o.log_dev = s.log;
    o.truncate = 0;
    assert_rvm_ok(RVM_INIT(&o));
    /* rvm_errmsg() tells about the last recovery */
    char msg[512];
    snprintf(msg, sizeof msg, "%s", rvm_errmsg());
    const char *why;
    rvm_return_t rc = store_open(&s, LOG_LEN, 0, 0, &why); /* initialized: maps only */
    if (rc != RVM_SUCCESS)
        fail_msg("%s: %s [%s]", why, rvm_return(rc), rvm_errmsg());
    rvm_stats_t st = t_stats();
    uint64_t k, life;
    char err[256];
    int whole = store_check(&s, &k, &life, err, sizeof err);
    assert_rvm_ok(store_close(&s));
    if (whole != 0)
        fail_msg("%s", err);
    assert_int_equal(k, 5);
    assert_int_equal(life, 1);
    assert_int_equal(st.n_recovered_records, 5);
    print_message("recovery said: %s\n", msg);
    if (!msg[0])
        fail_msg("rvm_errmsg() is empty after a recovery that stopped early");
    if (!strcasestr(msg, "checksum") && !strcasestr(msg, "crc"))
        fail_msg("rvm_errmsg() does not say why recovery stopped: \"%s\"", msg);

    /* A new life writes one record over the corrupt one.  The stale
     * records 7..10 of life 1 right behind it carry the very sequence
     * numbers that come next: only the epoch tells them apart. */
    run_in_child(child_commits_then_die, &s, 201);
    recover_and_check(&s, &k, &life);
    assert_int_equal(k, 6);
    assert_int_equal(life, 2);
    run_in_child(child_commits_then_die, &s, 310);
    recover_and_check(&s, &k, &life);
    assert_int_equal(k, 16);
    assert_int_equal(life, 3);
    recover_and_check(&s, &k, &life);
    assert_int_equal(k, 16);
}

/* In process: an I/O error fails the commit; the transaction can be
 * aborted; a later commit succeeds; the failed one never reappears. */
static void log_error_then_go_on(struct tctx *c, enum fault_op op, int err)
{
    struct store s;
    store_paths(&s, c->dir);
    fault_io_install(1);
    const char *why;
    rvm_return_t rc = store_open(&s, LOG_LEN, 0, 0, &why);
    if (rc != RVM_SUCCESS)
        fail_msg("%s: %s", why, rvm_return(rc));
    assert_rvm_ok(store_txn(&s, 1, 1, restore, flush, false));

    rvm_tid_t tid;
    rvm_init_tid(&tid);
    assert_rvm_ok(store_txn_open(&s, &tid, 2, 1, restore));
    fault_io_fail(op, "rvm.log", 1, err, 0);
    rc = rvm_end_transaction(&tid, flush);
    if (rc != RVM_EIO) {
        if (rvm_tid_active(&tid))
            rvm_abort_transaction(&tid);
        store_close(&s);
        fault_io_uninstall();
        fail_msg("commit with %s failing: %s, expected RVM_EIO",
                 strerror(err), rvm_return(rc));
    }
    assert_true(rvm_tid_active(&tid));
    uint64_t k, life;
    char msg[256];
    assert_int_equal(store_check(&s, &k, &life, msg, sizeof msg), 0);
    assert_int_equal(k, 2); /* memory keeps the transaction's bytes */
    assert_rvm_ok(rvm_abort_transaction(&tid));
    assert_int_equal(store_check(&s, &k, &life, msg, sizeof msg), 0);
    assert_int_equal(k, 1);

    /* the process goes on */
    assert_rvm_ok(store_txn(&s, 2, 2, restore, flush, false));
    assert_rvm_ok(store_txn(&s, 3, 2, no_restore, no_flush, false));
    assert_rvm_ok(rvm_flush());
    assert_rvm_ok(store_close(&s));
    fault_io_uninstall();
    recover_and_check(&s, &k, &life);
    assert_int_equal(k, 3);
    assert_int_equal(life, 2);
}

static void test_eio_on_log_write_fails_commit_and_process_goes_on(void **state)
{
    log_error_then_go_on(*state, FAULT_PWRITE, EIO);
}

static void test_enospc_on_log_write_fails_commit_and_process_goes_on(void **state)
{
    log_error_then_go_on(*state, FAULT_PWRITE, ENOSPC);
}

static void test_eio_on_log_sync_fails_commit_and_abort_sticks(void **state)
{
    log_error_then_go_on(*state, FAULT_SYNC, EIO);
}

static void child_failed_flush(struct store *s, unsigned arg)
{
    child_open(s, arg, 0);
    child_commits(s, 1, 4, no_flush);
    fault_io_fail(FAULT_PWRITE, "rvm.log", 1, EIO, 2);
    rvm_return_t rc = rvm_flush();
    CHILD_CHECK(rc == RVM_EIO, "rvm_flush with failing writes: %s", rvm_return(rc));
    rvm_stats_t st;
    CHILD_CHECK(rvm_get_stats(&st) == RVM_SUCCESS, "stats");
    CHILD_CHECK(st.no_flush_pending > 0, "no_flush_pending %llu after a failed flush",
                (unsigned long long)st.no_flush_pending);
    fault_io_reset();
    rc = rvm_flush();
    CHILD_CHECK(rc == RVM_SUCCESS, "rvm_flush retry: %s", rvm_return(rc));
    CHILD_CHECK(rvm_get_stats(&st) == RVM_SUCCESS, "stats");
    CHILD_CHECK(st.no_flush_pending == 0, "no_flush_pending %llu after flush",
                (unsigned long long)st.no_flush_pending);
    /* power loss now loses nothing: the flush made all four durable */
    fault_io_crash(FAULT_KEEP_NONE, FAULT_NO_TEAR);
}

static void test_failed_flush_keeps_no_flush_commits_queued(void **state)
{
    struct tctx *c = *state;
    struct store s;
    store_paths(&s, c->dir);
    run_in_child(child_failed_flush, &s, 5);
    uint64_t k, life;
    recover_and_check(&s, &k, &life);
    assert_int_equal(k, 4);
}

static void test_segment_write_error_in_truncate_keeps_log(void **state)
{
    struct tctx *c = *state;
    struct store s;
    store_paths(&s, c->dir);
    fault_io_install(3);
    const char *why;
    rvm_return_t rc = store_open(&s, LOG_LEN, 0, 0, &why);
    if (rc != RVM_SUCCESS)
        fail_msg("%s: %s", why, rvm_return(rc));
    for (uint64_t k = 1; k <= 3; k++)
        assert_rvm_ok(store_txn(&s, k, 1, restore, flush, false));
    fault_io_fail(FAULT_PWRITE, "seg-B", 1, EIO, 0);
    assert_rvm(rvm_truncate(), RVM_EIO);
    rvm_options_t *q = t_query(NULL);
    assert_false(q->log_empty);
    rvm_free_options(q);
    fault_io_fail(FAULT_SYNC, "seg-A", 1, ENOSPC, 0);
    assert_rvm(rvm_truncate(), RVM_EIO);
    q = t_query(NULL);
    assert_false(q->log_empty);
    rvm_free_options(q);
    assert_rvm_ok(store_txn(&s, 4, 1, restore, flush, false));
    assert_rvm_ok(rvm_truncate());
    q = t_query(NULL);
    assert_true(q->log_empty);
    rvm_free_options(q);
    assert_rvm_ok(store_close(&s));
    fault_io_uninstall();
    uint64_t v;
    t_read_file(s.segb, PS, &v, 8);
    assert_int_equal(v, 4);
    uint64_t k, life;
    recover_and_check(&s, &k, &life);
    assert_int_equal(k, 4);
}


/* Crash during the very first commit of a fresh store: the dictionary
 * entries of the segments and the record race the power loss. */
static void child_crash_in_first_commit(struct store *s, unsigned arg)
{
    child_open(s, arg, 0);
    static const enum fault_keep keeps[] = {FAULT_KEEP_NONE, FAULT_KEEP_RANDOM,
                                            FAULT_KEEP_PREFIX, FAULT_KEEP_ALL};
    fault_io_crash_at_sync(NULL, 1 + arg / 4, keeps[arg % 4], FAULT_TEAR_RANDOM);
    rvm_return_t rc = store_txn(s, 1, 1, restore, flush, false);
    CHILD_CHECK(rc == RVM_EIO || (rc == RVM_SUCCESS && !fault_io_crashed()),
                "first commit at the crash: %s", rvm_return(rc));
    fault_io_crash(FAULT_KEEP_NONE, FAULT_NO_TEAR);
    if (rc == RVM_SUCCESS)
        _exit(CHILD_ACKED);
}

static void test_crash_in_first_commit_of_fresh_store(void **state)
{
    struct tctx *c = *state;
    for (unsigned arg = 0; arg < 12; arg++) {
        char sub[64];
        snprintf(sub, sizeof sub, "first%u", arg);
        struct store s;
        store_paths(&s, t_path(c, sub));
        assert_int_equal(mkdir(s.dir, 0700), 0);
        int acked = run_in_child(child_crash_in_first_commit, &s, arg) == CHILD_ACKED;
        uint64_t k, life;
        recover_and_check(&s, &k, &life);
        if (acked && k != 1)
            fail_msg("arg %u: the first commit returned before the crash, "
                     "recovered k=%llu", arg, (unsigned long long)k);
        if (k > 1)
            fail_msg("arg %u: recovered k=%llu, expected 0 or 1", arg,
                     (unsigned long long)k);
    }
}

static void test_segment_read_error_fails_map_with_eio(void **state)
{
    struct tctx *c = *state;
    unsigned char page[4096];
    t_fill(page, sizeof page, 31);
    const char *seg = t_path(c, "seg-R");
    t_write_file(seg, 0, page, sizeof page);
    t_create_log(c, LOG_LEN);
    fault_io_install(4);
    rvm_options_t o;
    t_options(c, &o, 0);
    assert_rvm_ok(RVM_INIT(&o));
    fault_io_fail(FAULT_PREAD, "seg-R", 1, EIO, -1);
    rvm_region_t *r;
    assert_rvm(t_try_map(c, "seg-R", 0, PS, NULL, 0, &r), RVM_EIO);
    fault_io_reset();
    r = t_map(c, "seg-R", 0, PS, 0);
    assert_memory_equal(r->vmaddr, page, sizeof page < PS ? sizeof page : PS);
}

static void test_log_read_error_fails_initialize_with_eio(void **state)
{
    struct tctx *c = *state;
    struct store s;
    store_paths(&s, c->dir);
    run_in_child(child_commits_then_die, &s, 110);
    fault_io_install(5);
    fault_io_fail(FAULT_PREAD, "rvm.log", 1, EIO, -1);
    rvm_options_t o;
    rvm_init_options(&o);
    o.log_dev = s.log;
    assert_rvm(RVM_INIT(&o), RVM_EIO);
    fault_io_reset();
    /* recovery failing half way in the segments: the log keeps it all */
    fault_io_fail(FAULT_PWRITE, "seg-B", 1, EIO, -1);
    rvm_return_t rc = RVM_INIT(&o);
    if (rc == RVM_SUCCESS) {
        rvm_terminate();
        fail_msg("rvm_initialize succeeded although it could not write a segment");
    }
    assert_int_equal(rc, RVM_EIO);
    fault_io_uninstall();
    uint64_t k, life;
    recover_and_check(&s, &k, &life);
    assert_int_equal(k, 10);
}

static void test_write_error_while_creating_log_removes_it(void **state)
{
    struct tctx *c = *state;
    fault_io_install(6);
    rvm_options_t o;
    rvm_init_options(&o);
    o.log_dev = (char *)t_path(c, "new.log");
    fault_io_fail(FAULT_PWRITE, "new.log", 2, ENOSPC, -1);
    rvm_offset_t len = RVM_MK_OFFSET(0, MIB(1));
    assert_rvm(rvm_create_log(&o, &len, 0600), RVM_EIO);
    assert_false(t_file_exists(o.log_dev));
    fault_io_reset();
    assert_rvm_ok(rvm_create_log(&o, &len, 0600));
    assert_true(t_file_exists(o.log_dev));
}

/* The force of a commit fails; the caller aborts; then the power goes.
 * The record may have reached the disk anyway (a failed fsync says
 * nothing about what was written): it must not be replayed. */
static void child_abort_after_failed_sync(struct store *s, unsigned arg)
{
    child_open(s, arg, 0);
    child_commits(s, 1, 3, flush);
    rvm_tid_t tid;
    rvm_init_tid(&tid);
    rvm_return_t rc = store_txn_open(s, &tid, 4, 1, restore);
    CHILD_CHECK(rc == RVM_SUCCESS, "open txn: %s", rvm_return(rc));
    fault_io_fail(FAULT_SYNC, "rvm.log", 1, EIO, arg % 2 ? 0 : 2);
    rc = rvm_end_transaction(&tid, flush);
    CHILD_CHECK(rc == RVM_EIO, "commit with a failing force: %s", rvm_return(rc));
    rc = rvm_abort_transaction(&tid);
    CHILD_CHECK(rc == RVM_SUCCESS || rc == RVM_EIO, "abort: %s", rvm_return(rc));
    if (rc == RVM_EIO) {
        /* not healed yet: a retry once the disk is back must work */
        fault_io_reset();
        rc = rvm_abort_transaction(&tid);
        CHILD_CHECK(rc == RVM_SUCCESS, "abort retry: %s", rvm_return(rc));
    }
    static const enum fault_keep keeps[] = {FAULT_KEEP_ALL, FAULT_KEEP_RANDOM,
                                            FAULT_KEEP_PREFIX, FAULT_KEEP_NONE};
    fault_io_crash(keeps[(arg / 2) % 4], FAULT_NO_TEAR);
}

static void test_aborted_commit_after_failed_force_never_comes_back(void **state)
{
    struct tctx *c = *state;
    for (unsigned arg = 0; arg < 16; arg++) {
        char sub[64];
        snprintf(sub, sizeof sub, "heal%u", arg);
        struct store s;
        store_paths(&s, t_path(c, sub));
        assert_int_equal(mkdir(s.dir, 0700), 0);
        run_in_child(child_abort_after_failed_sync, &s, arg);
        uint64_t k, life;
        recover_and_check(&s, &k, &life);
        if (k != 3)
            fail_msg("arg %u: recovered k=%llu, expected 3 (4 was aborted)", arg,
                     (unsigned long long)k);
    }
}

static int f_teardown(void **state)
{
    int rc = t_teardown(state);
    fault_io_uninstall();
    return rc;
}

#define T(f) cmocka_unit_test_setup_teardown(f, t_setup, f_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_torn_last_record_is_ignored),
        T(test_lost_unsynced_writes_leave_a_prefix_of_commits),
        T(test_crash_during_truncation_loses_nothing),
        T(test_corrupt_byte_in_log_stops_recovery_there),
        T(test_eio_on_log_write_fails_commit_and_process_goes_on),
        T(test_enospc_on_log_write_fails_commit_and_process_goes_on),
        T(test_eio_on_log_sync_fails_commit_and_abort_sticks),
        T(test_aborted_commit_after_failed_force_never_comes_back),
        T(test_failed_flush_keeps_no_flush_commits_queued),
        T(test_segment_write_error_in_truncate_keeps_log),
        T(test_crash_in_first_commit_of_fresh_store),
        T(test_segment_read_error_fails_map_with_eio),
        T(test_log_read_error_fails_initialize_with_eio),
        T(test_write_error_while_creating_log_removes_it),
    };
    return cmocka_run_group_tests_name("librvm faults", tests, NULL, NULL);
}
