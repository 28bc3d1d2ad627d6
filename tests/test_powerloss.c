/*
 * Power loss under librvm, simulated by the I/O layer (fault_io.c): torn
 * and lost log writes, a corrupted log, crashes during truncation and
 * during the first commit, and a failed force followed by an abort.
 * Each scenario runs in a forked child; the parent recovers with POSIX
 * I/O and checks what survived.
 */
#include "fault_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_format.h"

#define PS ((size_t)rvm_page_size())
#define LOG_LEN FAULT_LOG_LEN

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

/* A record this process forced reads back as written: its truncation
 * applies it without computing its checksum again.  Recovery, which meets
 * torn records, checks every one (the test above).  Here a record's
 * trailer checksum is changed in the file after the force: the
 * truncation still applies all three records. */
static void test_truncation_applies_its_own_records_unchecksummed(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 0);
    rvm_region_t *r = t_map(c, "seg", 0, 3 * 4096, 0);
    char buf[3 * 4096];
    for (int i = 0; i < 3; i++) {
        memset(buf, 'a' + i, 4096);
        t_commit_bytes(r->vmaddr + i * 4096, buf, 4096, flush);
    }
    uint64_t phys[8], len[8];
    assert_int_equal(log_records(c->log, phys, len, 8), 3);
    struct log_rec_trailer t;
    uint64_t at = phys[1] + len[1] - sizeof t;
    t_read_file(c->log, at, &t, sizeof t);
    t.crc ^= 1;
    t_write_file(c->log, at, &t, sizeof t);
    assert_rvm_ok(rvm_truncate());
    t_read_file(t_path(c, "seg"), 0, buf, sizeof buf);
    for (size_t i = 0; i < sizeof buf; i++)
        if (buf[i] != 'a' + (int)(i / 4096))
            fail_msg("segment byte %zu is 0x%02x", i, (unsigned char)buf[i]);
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

/* Records bigger than the recovery buffer: one 192 KiB transaction and
 * a few small ones, left in the log by a process that dies. */
static void child_big_record_then_die(struct store *s, unsigned arg)
{
    (void)arg;
    rvm_options_t o;
    rvm_init_options(&o);
    o.log_dev = s->log;
    o.truncate = 0;
    o.create_log_file = rvm_true;
    o.create_log_size = RVM_MK_OFFSET(0, MIB(1));
    rvm_return_t rc = RVM_INIT(&o);
    CHILD_CHECK(rc == RVM_SUCCESS, "init: %s", rvm_return(rc));
    rvm_region_t r;
    rvm_init_region(&r);
    r.data_dev = s->sega;
    r.length = KIB(256);
    rc = rvm_map(&r, NULL);
    CHILD_CHECK(rc == RVM_SUCCESS, "map: %s", rvm_return(rc));
    rvm_tid_t tid;
    rvm_init_tid(&tid);
    CHILD_CHECK(rvm_begin_transaction(&tid, no_restore) == RVM_SUCCESS, "begin");
    CHILD_CHECK(rvm_set_range(&tid, r.vmaddr, KIB(192)) == RVM_SUCCESS, "set_range");
    t_fill(r.vmaddr, KIB(192), 77);
    CHILD_CHECK(rvm_end_transaction(&tid, flush) == RVM_SUCCESS, "end");
    for (unsigned i = 0; i < 3; i++) {
        CHILD_CHECK(rvm_begin_transaction(&tid, restore) == RVM_SUCCESS, "begin");
        CHILD_CHECK(rvm_modify_bytes(&tid, r.vmaddr + KIB(200) + i * 8, "smallrec", 8) ==
                        RVM_SUCCESS, "modify");
        CHILD_CHECK(rvm_end_transaction(&tid, flush) == RVM_SUCCESS, "end");
    }
}

static void test_recovery_reads_records_bigger_than_its_buffer(void **state)
{
    struct tctx *c = *state;
    struct store s;
    store_paths(&s, c->dir);
    run_in_child(child_big_record_then_die, &s, 0);
    rvm_options_t o;
    rvm_init_options(&o);
    o.log_dev = s.log;
    o.recovery_buf_len = MIN_RECOVERY_BUF_LEN;
    assert_rvm_ok(RVM_INIT(&o));
    rvm_stats_t st = t_stats();
    assert_int_equal(st.n_recovered_records, 4);
    assert_true(st.recovery_usec > 0);
    unsigned char *buf = malloc(KIB(256));
    assert_non_null(buf);
    t_read_file(s.sega, 0, buf, KIB(256));
    assert_true(t_check_fill(buf, KIB(192), 77));
    for (unsigned i = 0; i < 3; i++)
        assert_memory_equal(buf + KIB(200) + i * 8, "smallrec", 8);
    free(buf);
}

/* Power loss while rvm_initialize recovers: at its nth sync. */
static void child_crash_in_recovery(struct store *s, unsigned arg)
{
    fault_io_install(arg);
    static const enum fault_keep keeps[] = {FAULT_KEEP_NONE, FAULT_KEEP_RANDOM,
                                            FAULT_KEEP_PREFIX, FAULT_KEEP_ALL};
    fault_io_crash_at_sync(NULL, 1 + arg % 3, keeps[(arg / 3) % 4], FAULT_TEAR_RANDOM);
    const char *why;
    rvm_return_t rc = store_open(s, LOG_LEN, 0, 0, &why);
    CHILD_CHECK(rc == RVM_SUCCESS || rc == RVM_EIO, "%s: %s", why, rvm_return(rc));
    fault_io_crash(FAULT_KEEP_NONE, FAULT_NO_TEAR);
}

static void test_power_loss_during_recovery_loses_nothing(void **state)
{
    struct tctx *c = *state;
    struct store s;
    store_paths(&s, c->dir);
    run_in_child(child_commits_then_die, &s, 112);
    for (unsigned arg = 0; arg < 12; arg++)
        run_in_child(child_crash_in_recovery, &s, arg);
    uint64_t k, life;
    recover_and_check(&s, &k, &life);
    assert_int_equal(k, 12);
}

/*
 * rvm_initialize returns before the segments that recovery wrote are
 * synced (the truncation thread, or the first force, syncs them and only
 * then writes the status that frees the records).  A power loss in that
 * window loses the segment writes: the old status must recover them
 * again.  arg picks the policy and whether a flush commit comes first;
 * an acknowledged commit must survive too (its force waits for the sync).
 */
static void child_power_loss_after_recovery(struct store *s, unsigned arg)
{
    fault_io_install(arg);
    static const enum fault_keep keeps[] = {FAULT_KEEP_NONE, FAULT_KEEP_RANDOM,
                                            FAULT_KEEP_PREFIX, FAULT_KEEP_ALL};
    uint64_t k, life;
    child_recover(s, &k, &life);
    bool commit = arg % 2;
    if (commit) {
        rvm_return_t rc = store_txn(s, k + 1, life + 1, restore, flush, false);
        CHILD_CHECK(rc == RVM_SUCCESS, "commit after recovery: %s", rvm_return(rc));
    }
    fault_io_crash(keeps[(arg / 2) % 4], FAULT_TEAR_RANDOM);
    if (commit)
        _exit(CHILD_ACKED);
}

static void test_power_loss_before_recovery_is_synced_loses_nothing(void **state)
{
    struct tctx *c = *state;
    struct store s;
    store_paths(&s, c->dir);
    uint64_t want = 0;
    for (unsigned arg = 0; arg < 16; arg++) {
        /* Records in the log for the next recovery to apply (this
         * parent's recoveries finish theirs at rvm_terminate). */
        run_in_child(child_commits_then_die, &s, 100 * (2 * arg + 1) + 5);
        want += 5;
        int r = run_in_child(child_power_loss_after_recovery, &s, arg);
        want += r == CHILD_ACKED;
        uint64_t k, life;
        recover_and_check(&s, &k, &life);
        assert_int_equal(k, want);
    }
}

/* A segment leaves the log's dictionary when a truncation finds it
 * unmapped with no records left; mapped again, its next record must find
 * it back in the dictionary, durably, before a power loss. */
static void child_segment_rejoins_dictionary(struct store *s, unsigned arg)
{
    fault_io_install(arg);
    rvm_options_t o;
    rvm_init_options(&o);
    o.log_dev = s->log;
    o.truncate = 0;
    o.create_log_file = rvm_true;
    o.create_log_size = RVM_MK_OFFSET(0, FAULT_LOG_LEN);
    rvm_return_t rc = RVM_INIT(&o);
    CHILD_CHECK(rc == RVM_SUCCESS, "init: %s", rvm_return(rc));
    const char *segs[2] = {s->sega, s->segb};
    for (unsigned round = 1; round <= 3; round++) {
        for (int i = 0; i < 2; i++) {
            rvm_region_t r;
            rvm_init_region(&r);
            r.data_dev = (char *)segs[i];
            r.length = PS;
            CHILD_CHECK(rvm_map(&r, NULL) == RVM_SUCCESS, "map");
            rvm_tid_t tid;
            rvm_init_tid(&tid);
            CHILD_CHECK(rvm_begin_transaction(&tid, restore) == RVM_SUCCESS, "begin");
            CHILD_CHECK(rvm_modify_bytes(&tid, r.vmaddr, &round, sizeof round) ==
                            RVM_SUCCESS, "modify");
            rc = rvm_end_transaction(&tid, flush);
            CHILD_CHECK(rc == RVM_SUCCESS, "commit round %u: %s", round, rvm_return(rc));
            CHILD_CHECK(rvm_unmap(&r) == RVM_SUCCESS, "unmap");
        }
        if (round < 3) {
            rc = rvm_truncate();
            CHILD_CHECK(rc == RVM_SUCCESS, "truncate: %s", rvm_return(rc));
        }
    }
    fault_io_crash(arg % 2 ? FAULT_KEEP_NONE : FAULT_KEEP_RANDOM, FAULT_TEAR_RANDOM);
}

static void test_segment_back_in_the_dictionary_survives_power_loss(void **state)
{
    struct tctx *c = *state;
    for (unsigned arg = 0; arg < 6; arg++) {
        char sub[64];
        snprintf(sub, sizeof sub, "dict%u", arg);
        struct store s;
        store_paths(&s, t_path(c, sub));
        assert_int_equal(mkdir(s.dir, 0700), 0);
        run_in_child(child_segment_rejoins_dictionary, &s, arg);
        rvm_options_t o;
        rvm_init_options(&o);
        o.log_dev = s.log;
        assert_rvm_ok(RVM_INIT(&o));
        assert_rvm_ok(rvm_terminate());
        unsigned va, vb;
        t_read_file(s.sega, 0, &va, sizeof va);
        t_read_file(s.segb, 0, &vb, sizeof vb);
        if (va != 3 || vb != 3)
            fail_msg("arg %u: segments hold %u and %u after recovery, expected 3",
                     arg, va, vb);
    }
}

/*
 * A coalesced batch (RVM_COALESCE_TRANS) is one log record for commits
 * 6..20, whose bytes overwritten by later commits of the batch are not
 * logged at all: recovering part of it would show commits that never
 * existed on their own.  The power goes while rvm_flush forces it, and
 * the write reaches the disk torn at byte arg, for every byte of the
 * record; at its length it is whole.
 */
static void child_torn_coalesced_batch(struct store *s, unsigned arg)
{
    fault_io_install(arg);
    const char *why;
    rvm_return_t rc = store_open(s, LOG_LEN, 0, RVM_ALL_OPTIMIZATIONS, &why);
    CHILD_CHECK(rc == RVM_SUCCESS, "%s: %s", why, rvm_return(rc));
    child_commits(s, 1, 5, flush);
    child_commits(s, 6, 20, no_flush);
    CHILD_CHECK(fault_io_pending() == 0, "the no_flush commits were written early");
    fault_io_crash_at_sync("rvm.log", 1, FAULT_KEEP_ALL, (long)arg);
    rc = rvm_flush();
    CHILD_CHECK(rc == RVM_EIO, "rvm_flush at the crash: %s", rvm_return(rc));
    if (fault_io_last_crash_tear() == FAULT_NO_TEAR)
        _exit(CHILD_ACKED); /* arg is the length: the batch is whole */
}

static void test_coalesced_batch_torn_anywhere_is_all_or_nothing(void **state)
{
    struct tctx *c = *state;
    struct store s;
    store_paths(&s, t_path(c, "batch"));
    assert_int_equal(mkdir(s.dir, 0700), 0);
    unsigned t = 0;
    for (;; t++) {
        unlink(s.log);
        unlink(s.sega);
        unlink(s.segb);
        bool whole = run_in_child(child_torn_coalesced_batch, &s, t) == CHILD_ACKED;
        uint64_t k, life;
        recover_and_check(&s, &k, &life);
        if (k != (whole ? 20 : 5))
            fail_msg("batch %s at byte %u: recovered k=%llu, expected %d",
                     whole ? "whole" : "torn", t, (unsigned long long)k, whole ? 20 : 5);
        if (whole)
            break;
    }
    print_message("coalesced batch of %u bytes: torn at each of them, all or nothing\n", t);
    assert_true(t > 512);
}

#define T(f) cmocka_unit_test_setup_teardown(f, t_setup, fault_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_torn_last_record_is_ignored),
        T(test_lost_unsynced_writes_leave_a_prefix_of_commits),
        T(test_crash_during_truncation_loses_nothing),
        T(test_corrupt_byte_in_log_stops_recovery_there),
        T(test_truncation_applies_its_own_records_unchecksummed),
        T(test_crash_in_first_commit_of_fresh_store),
        T(test_power_loss_before_recovery_is_synced_loses_nothing),
        T(test_aborted_commit_after_failed_force_never_comes_back),
        T(test_recovery_reads_records_bigger_than_its_buffer),
        T(test_power_loss_during_recovery_loses_nothing),
        T(test_segment_back_in_the_dictionary_survives_power_loss),
        T(test_coalesced_batch_torn_anywhere_is_all_or_nothing),
    };
    return cmocka_run_group_tests_name("librvm power loss", tests, NULL, NULL);
}
