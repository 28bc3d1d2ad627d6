/*
 * Recovery of logs bigger than its read window (16 MiB): the walk reads
 * one piece while it applies the previous one, a record that begins at
 * the end of one piece goes on in the next, the ring wraps between two
 * pieces, and segment write-back runs beside the walk.  A child fills the
 * log and dies without rvm_terminate (a crash); recovery in the parent
 * must rebuild what the child's memory held, byte for byte, also when
 * recoveries before it were killed with SIGKILL half way.
 */
#include "test_util.h"
#include "torture/rng.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LOG_DATA MIB(40)
#define SEG_LEN MIB(8)

/* One transaction of len bytes at a pseudo-random place, of pattern i. */
static void commit_one(char *base, unsigned i, size_t len, rvm_mode_t mode,
                       unsigned char *buf, struct rng *st)
{
    size_t off = (size_t)rng_below(st, SEG_LEN - len);
    t_fill(buf, len, i);
    t_commit_bytes(base + off, buf, len, mode);
}

/*
 * Fill: records of odd sizes from 1 KiB to 1.3 MiB and one of 3 MiB
 * (more than a piece keeps for joining), no_flush batches, a truncation
 * at 28 MiB, then 30 MiB more, which wraps the 40 MiB ring.  Returns the
 * number of records in the log at the end, as the child counted them
 * (flush commits after the truncation, each one record).
 */
static void fill_child(struct tctx *c)
{
    rvm_options_t o;
    t_options(c, &o, 0);
    o.flags = RVM_ALL_OPTIMIZATIONS;
    if (RVM_INIT(&o) != RVM_SUCCESS)
        _exit(2);
    rvm_region_t *r = t_map(c, "seg", 0, SEG_LEN, 0);
    unsigned char *buf = malloc(MIB(3));
    if (!buf)
        _exit(2);
    struct rng st;
    rng_seed(&st, 1);
    size_t logged = 0;
    unsigned i = 0;
    while (logged < MIB(28)) {
        size_t len = KIB(1) + (size_t)rng_below(&st, KIB(1300));
        commit_one(r->vmaddr, i++, len, flush, buf, &st);
        logged += len;
    }
    if (rvm_truncate() != RVM_SUCCESS)
        _exit(3);
    logged = 0;
    while (logged < MIB(30)) {
        size_t len = KIB(1) + (size_t)rng_below(&st, KIB(1300));
        if (i % 17 == 0)
            len = MIB(3);
        if (i % 5 == 0) {
            for (unsigned k = 0; k < 20; k++)
                commit_one(r->vmaddr, i++, KIB(4) + k * 8, no_flush, buf, &st);
            if (rvm_flush() != RVM_SUCCESS)
                _exit(3);
            logged += 20 * KIB(4);
        }
        commit_one(r->vmaddr, i++, len, flush, buf, &st);
        logged += len;
    }
    rvm_stats_t s;
    if (rvm_get_stats(&s) != RVM_SUCCESS || s.bytes_truncated == 0)
        _exit(4);
    t_write_file(t_path(c, "expect"), 0, r->vmaddr, SEG_LEN);
    _exit(0); /* no rvm_terminate: the log holds 30 MiB across its wrap */
}

static int run_child(void (*fn)(struct tctx *), struct tctx *c)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        fn(c);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void recover_child(struct tctx *c)
{
    rvm_options_t o;
    t_options(c, &o, 0);
    _exit(RVM_INIT(&o) == RVM_SUCCESS ? 0 : 1);
}

/* Recover in the parent and compare the segment with the child's memory. */
static void check_recovered(struct tctx *c)
{
    rvm_options_t o;
    t_options(c, &o, 0);
    assert_rvm_ok(RVM_INIT(&o));
    rvm_stats_t s;
    assert_rvm_ok(rvm_get_stats(&s));
    unsigned char *want = malloc(SEG_LEN);
    assert_non_null(want);
    t_read_file(t_path(c, "expect"), 0, want, SEG_LEN);
    rvm_region_t *r = t_map(c, "seg", 0, SEG_LEN, 0);
    size_t bad = 0;
    for (size_t k = 0; k < SEG_LEN; k++)
        bad += (unsigned char)r->vmaddr[k] != want[k];
    assert_int_equal(bad, 0);
    /* The file itself, not only the mapping. */
    unsigned char *file = malloc(SEG_LEN);
    assert_non_null(file);
    t_read_file(t_path(c, "seg"), 0, file, SEG_LEN);
    assert_memory_equal(file, want, SEG_LEN);
    free(file);
    free(want);
}

static void test_recovery_reads_a_wrapped_log_bigger_than_its_window(void **state)
{
    struct tctx *c = *state;
    t_create_log(c, LOG_DATA);
    assert_int_equal(run_child(fill_child, c), 0);
    check_recovered(c);
    rvm_stats_t s;
    assert_rvm_ok(rvm_get_stats(&s));
    /* 30 MiB of records of at most 3 MiB: many of them, two pieces at least. */
    assert_true(s.n_recovered_records > 30);
}

static void test_recovery_killed_half_way_is_redone(void **state)
{
    struct tctx *c = *state;
    t_create_log(c, LOG_DATA);
    assert_int_equal(run_child(fill_child, c), 0);
    uint64_t seed = (uint64_t)time(NULL);
    print_message("seed %llu\n", (unsigned long long)seed);
    struct rng kr;
    rng_seed(&kr, seed);
    int killed = 0;
    for (int round = 0; round < 4; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            recover_child(c);
        /* Recovery of 30 MiB takes tens of milliseconds: kill it inside. */
        usleep((useconds_t)rng_below(&kr, 60000));
        kill(pid, SIGKILL);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        killed += WIFSIGNALED(st);
        /* A recovery that finished moved the head: fill again for the next. */
        if (!WIFSIGNALED(st)) {
            assert_int_equal(WEXITSTATUS(st), 0);
            assert_int_equal(unlink(c->log), 0);
            t_create_log(c, LOG_DATA);
            assert_int_equal(run_child(fill_child, c), 0);
        }
    }
    print_message("%d of 4 recoveries killed half way\n", killed);
    check_recovered(c);
}

#define T(f) cmocka_unit_test_setup_teardown(f, t_setup, t_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_recovery_reads_a_wrapped_log_bigger_than_its_window),
        T(test_recovery_killed_half_way_is_redone),
    };
    return cmocka_run_group_tests_name("librvm big recovery", tests, NULL, NULL);
}
