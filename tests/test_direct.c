/*
 * Truncation writes long runs of a segment past the page cache
 * (recover.c, write_direct): a run's aligned middle goes out with
 * O_DIRECT through a bounce buffer, in chunks, and its unaligned ends
 * through the page cache.  These tests check the bytes that reach the
 * segment file for runs of every shape, through fault_io (which checks
 * the alignment of each direct write, counts them, and loses them at a
 * simulated power loss like any unsynced write) and through POSIX I/O.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault_util.h"
#include "test_util.h"

#define SEG_LEN MIB(16)
#define LOG_LEN MIB(40)

struct piece {
    size_t off, len;
    const char *why;
};

/* In commit order; later pieces overwrite earlier ones. */
static const struct piece plan[] = {
    {100, MIB(1), "1 MiB, both ends unaligned"},
    {MIB(2) + 17, MIB(6), "longer than the bounce buffer: written in chunks"},
    {MIB(9) + KIB(0), KIB(128), "eight adjacent commits: one run"},
    {MIB(9) + KIB(128), KIB(128), NULL},
    {MIB(9) + KIB(256), KIB(128), NULL},
    {MIB(9) + KIB(384), KIB(128), NULL},
    {MIB(9) + KIB(512), KIB(128), NULL},
    {MIB(9) + KIB(640), KIB(128), NULL},
    {MIB(9) + KIB(768), KIB(128), NULL},
    {MIB(9) + KIB(896), KIB(128), NULL},
    {MIB(2) + 5000, 100, "a later small write inside a run: splits it"},
    {MIB(12), KIB(40), "under the direct size: buffered"},
    {MIB(13) + 4000, KIB(70), "aligned middle just over the direct size"},
    {MIB(14) + 1, KIB(64), "aligned middle under the direct size: buffered"},
    {SEG_LEN - KIB(256) - 3, KIB(256) + 3, "to the end of the segment"},
};
#define NPLAN (sizeof plan / sizeof plan[0])

/* The segment as the plan leaves it. */
static unsigned char *plan_image(void)
{
    unsigned char *img = calloc(1, SEG_LEN);
    assert_non_null(img);
    for (size_t i = 0; i < NPLAN; i++)
        t_fill(img + plan[i].off, plan[i].len, (unsigned)i + 1);
    return img;
}

/* Commit the plan into region memory; 0 or the failing step + 1. */
static int plan_commit(char *mem)
{
    unsigned char *src = malloc(MIB(6));
    if (!src)
        return 1;
    for (size_t i = 0; i < NPLAN; i++) {
        t_fill(src, plan[i].len, (unsigned)i + 1);
        rvm_tid_t tid;
        rvm_init_tid(&tid);
        if (rvm_begin_transaction(&tid, no_restore) != RVM_SUCCESS ||
            rvm_modify_bytes(&tid, mem + plan[i].off, src, plan[i].len) != RVM_SUCCESS ||
            rvm_end_transaction(&tid, no_flush) != RVM_SUCCESS) {
            free(src);
            return (int)i + 2;
        }
    }
    free(src);
    return rvm_flush() == RVM_SUCCESS ? 0 : 1;
}

static void check_file(const char *path, const unsigned char *want)
{
    unsigned char *got = malloc(SEG_LEN);
    assert_non_null(got);
    t_read_file(path, 0, got, SEG_LEN);
    for (size_t i = 0; i < NPLAN; i++) {
        if (memcmp(got + plan[i].off, want + plan[i].off, plan[i].len) != 0)
            fail_msg("piece %zu (%s) differs in the segment file", i,
                     plan[i].why ? plan[i].why : "adjacent");
    }
    if (memcmp(got, want, SEG_LEN) != 0)
        fail_msg("bytes outside the pieces changed");
    free(got);
}

static void test_direct_runs_reach_the_segment(void **state)
{
    struct tctx *c = *state;
    unsigned char *want = plan_image();
    fault_io_install(1);
    t_init(c, LOG_LEN, 0);
    rvm_region_t *r = t_map(c, "seg", 0, SEG_LEN, 0);
    assert_int_equal(plan_commit(r->vmaddr), 0);
    assert_rvm_ok(rvm_truncate());
    /* 1 MiB; the 6 MiB run, less its split head, in 2 chunks; the eight
     * adjacent commits as one; 70 KiB; the tail. */
    unsigned long n = fault_io_count(FAULT_DIRECT, "seg");
    if (n != 6)
        fail_msg("%lu direct writes, expected 6", n);
    check_file(t_path(c, "seg"), want);
    free(want);
}

/* While regions are armed for auto transactions, truncation writes
 * through the page cache: a direct write makes the kernel unmap the
 * file's cached pages from private mappings, write-protect marks and
 * all, and a later auto write there would go unlogged. */
static void test_no_direct_writes_while_armed(void **state)
{
    struct tctx *c = *state;
    unsigned char *want = plan_image();
    fault_io_install(2);
    t_init(c, LOG_LEN, 0);
    rvm_region_t *r = t_map(c, "seg", 0, SEG_LEN, RVM_MAP_PRIVATE);
    rvm_tid_t *t = t_tid(c);
    assert_rvm_ok(rvm_begin_auto_transaction(t, no_restore)); /* arms the regions */
    r->vmaddr[SEG_LEN - 1] = (char)want[SEG_LEN - 1];
    assert_rvm_ok(rvm_end_transaction(t, no_flush));
    assert_int_equal(plan_commit(r->vmaddr), 0);
    assert_rvm_ok(rvm_truncate());
    assert_int_equal(fault_io_count(FAULT_DIRECT, "seg"), 0);
    check_file(t_path(c, "seg"), want);
    /* An auto write after the truncation is caught and logged. */
    assert_rvm_ok(rvm_begin_auto_transaction(t, no_restore));
    r->vmaddr[MIB(3)] = 42;
    assert_rvm_ok(rvm_end_transaction(t, flush));
    want[MIB(3)] = 42;
    t_reinit(c, 0);
    r = t_map(c, "seg", 0, SEG_LEN, RVM_MAP_PRIVATE);
    assert_memory_equal(r->vmaddr, want, SEG_LEN);
    free(want);
}

/* The power goes at the segment's sync after the direct writes: the log
 * still holds every record, and recovery writes them again. */
static void test_direct_writes_lost_before_sync_are_recovered(void **state)
{
    struct tctx *c = *state;
    unsigned char *want = plan_image();
    for (int keep = 0; keep < 3; keep++) {
        unlink(c->log);
        unlink(t_path(c, "seg"));
        t_create_log(c, LOG_LEN);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            fault_io_install((unsigned)keep + 7);
            rvm_options_t o;
            t_options(c, &o, 0);
            rvm_region_t *reg = rvm_malloc_region();
            if (RVM_INIT(&o) != RVM_SUCCESS)
                _exit(2);
            reg->data_dev = (char *)t_path(c, "seg");
            reg->length = SEG_LEN;
            if (rvm_map(reg, NULL) != RVM_SUCCESS)
                _exit(3);
            if (plan_commit(reg->vmaddr) != 0)
                _exit(4);
            fault_io_crash_at_sync("seg", 1,
                                   keep == 2 ? FAULT_KEEP_RANDOM : FAULT_KEEP_NONE,
                                   keep == 2 ? FAULT_TEAR_RANDOM : FAULT_NO_TEAR);
            rvm_return_t rc = rvm_truncate();
            _exit(rc == RVM_EIO && fault_io_crashed() &&
                          fault_io_count(FAULT_DIRECT, "seg") >= 6
                      ? 0
                      : 5);
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        if (WEXITSTATUS(st) != 0)
            fail_msg("round %d: child exited %d", keep, WEXITSTATUS(st));
        /* Recovery, with POSIX I/O, writes what the crash lost again. */
        t_init(c, LOG_LEN, 0);
        check_file(t_path(c, "seg"), want);
        assert_rvm_ok(rvm_terminate());
    }
    free(want);
}

/* Pages of path in the page cache among its first n. */
static size_t resident_pages(const char *path, size_t from, size_t to)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    long ps = sysconf(_SC_PAGESIZE);
    void *m = mmap(NULL, to * (size_t)ps, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(m != MAP_FAILED);
    unsigned char *vec = malloc(to);
    assert_non_null(vec);
    assert_int_equal(mincore(m, to * (size_t)ps, vec), 0);
    size_t n = 0;
    for (size_t p = from; p < to; p++)
        n += vec[p] & 1;
    free(vec);
    munmap(m, to * (size_t)ps);
    close(fd);
    return n;
}

/* Whether a direct write to a file here stays out of the page cache
 * (tmpfs takes O_DIRECT and keeps the pages; some file systems refuse). */
static bool direct_bypasses_cache(const char *path)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_DIRECT | O_CLOEXEC, 0600);
    if (fd < 0)
        return false;
    void *buf = NULL;
    assert_int_equal(posix_memalign(&buf, 4096, 65536), 0);
    memset(buf, 1, 65536);
    bool ok = pwrite(fd, buf, 65536, 0) == 65536;
    free(buf);
    close(fd);
    long ps = sysconf(_SC_PAGESIZE);
    return ok && resident_pages(path, 0, 65536 / (size_t)ps) == 0;
}

/* With POSIX I/O on a file system that takes O_DIRECT, the middle of a
 * long run is not left in the page cache: it went past it. */
static void test_direct_runs_bypass_the_page_cache(void **state)
{
    struct tctx *c = *state;
    if (!direct_bypasses_cache(t_path(c, "probe"))) {
        print_message("the test directory's file system keeps O_DIRECT writes in the "
                      "page cache (or refuses them): page cache check skipped\n");
        skip();
    }
    unsigned char *want = plan_image();
    t_init(c, LOG_LEN, 0);
    rvm_region_t *r = t_map(c, "seg", 0, SEG_LEN, 0);
    assert_int_equal(plan_commit(r->vmaddr), 0);
    assert_rvm_ok(rvm_truncate());
    /* The 6 MiB run's pages (less its split head, and its last page:
     * partial, so buffered), in 4 KiB pages. */
    long ps = sysconf(_SC_PAGESIZE);
    size_t from = (MIB(2) + 8192) / (size_t)ps, to = MIB(8) / (size_t)ps;
    size_t resident = resident_pages(t_path(c, "seg"), from, to);
    if (resident > 0)
        fail_msg("%zu of %zu pages of a direct run are in the page cache", resident, to - from);
    check_file(t_path(c, "seg"), want); /* reads it into the cache: last */
    free(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_direct_runs_reach_the_segment, t_setup,
                                        fault_teardown),
        cmocka_unit_test_setup_teardown(test_direct_writes_lost_before_sync_are_recovered,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_no_direct_writes_while_armed, t_setup,
                                        fault_teardown),
        cmocka_unit_test_setup_teardown(test_direct_runs_bypass_the_page_cache, t_setup,
                                        t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
