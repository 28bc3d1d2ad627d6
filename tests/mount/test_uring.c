/*
 * test_uring.c - the io_uring transport's hard cases (run with
 * RVMFS_TEST_URING=1; skipped otherwise): an abort whose invalidation
 * needs an entry of a queue that is busy with the abort itself, many
 * FORGETs with one entry per queue.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mount_util.h"
#include "rvmfs.h"

static struct rmount M;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* One ring entry per queue; the daemon (started from here) and this
 * process all on CPU 0, so that the abort, the inval thread and the
 * writeback share queue 0. */
static int setup(void **state)
{
    (void)state;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0)
        return -1;
    if (rmount_init(&M, "uring_threads=1") < 0 || rmount_start(&M) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    double t0 = now_s();
    int rc = M.pid ? rmount_stop(&M) : 0;
    double dt = now_s() - t0;
    if (rc != 0 || dt > 20)
        rmount_dump_log(&M);
    rmount_cleanup(&M);
    if (dt > 20)
        fprintf(stderr, "the unmount took %.1f s\n", dt);
    return rc == 0 && dt <= 20 ? 0 : -1;
}

static int open_new(const char *name, size_t len, char fill)
{
    char p[PATH_MAX];
    int fd = open(rmount_path(&M, name, p), O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    char *buf = malloc(len);
    memset(buf, fill, len);
    assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
    free(buf);
    return fd;
}

static void assert_filled(const char *p, size_t len, char c)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != c)
            fail_msg("byte %zu is 0x%02x, expected 0x%02x", i,
                     (unsigned char)p[i], (unsigned char)c);
}

static void test_abort_after_mapped_write_is_quick_with_one_entry(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        int fd = open_new("mapabort", 2 * 4096, 'a');
        char *map = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        assert_true(map != MAP_FAILED);
        assert_int_equal(rvmfs_begin(fd, 0, NULL), 0);
        memset(map, 'z', 2 * 4096); /* dirty pages: written back by the abort */
        double t0 = now_s();
        assert_int_equal(rvmfs_abort(fd), 0);
        double dt = now_s() - t0;
        if (dt > 2.0)
            fail_msg("round %d: the abort took %.2f s", round, dt);
        assert_filled(map, 2 * 4096, 'a');
        char buf[2 * 4096];
        assert_int_equal(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
        assert_filled(buf, sizeof(buf), 'a');
        munmap(map, 2 * 4096);
        close(fd);
    }
}

/* The kernel forgets the inodes it drops; the FORGETs must not cost an
 * entry for good, or later requests and the unmount (teardown) hang. */
static void test_many_forgets_with_one_entry_leave_requests_served(void **state)
{
    (void)state;
    char p[PATH_MAX], name[64];
    assert_int_equal(mkdir(rmount_path(&M, "many", p), 0755), 0);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "many/f%d", i);
        int fd = open(rmount_path(&M, name, p), O_WRONLY | O_CREAT, 0644);
        assert_true(fd >= 0);
        close(fd);
    }
    for (int pass = 0; pass < 3; pass++) {
        FILE *f = fopen("/proc/sys/vm/drop_caches", "w");
        if (f) {
            fputs("2\n", f);
            fclose(f);
        }
        for (int i = 0; i < 300; i++) {
            struct stat st;
            snprintf(name, sizeof(name), "many/f%d", i);
            assert_int_equal(stat(rmount_path(&M, name, p), &st), 0);
        }
    }
}

int main(void)
{
    rmount_require_fuse();
    if (!rmount_uring()) {
        printf("SKIP: only with RVMFS_TEST_URING=1\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abort_after_mapped_write_is_quick_with_one_entry),
        cmocka_unit_test(test_many_forgets_with_one_entry_leave_requests_served),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
