/*
 * test_stress.c - processes that map one file and race transactions
 * (begin, mapped and plain writes, msync, commit, abort of their own or
 * another's transaction) for a few seconds: nothing hangs, nothing fails
 * but with the errors the interface allows, and the daemon stops cleanly.
 *
 * RVMFS_STRESS_SECONDS (default 3) sets the duration.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <dirent.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mount_util.h"
#include "rvmfs.h"

#define PAGES 16
#define LEN (PAGES * 4096)
#define WORKERS 4

static struct rmount M;

static int setup(void **state)
{
    (void)state;
    return rmount_init(&M, NULL) < 0 || rmount_start(&M) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = M.pid ? rmount_stop(&M) : 0;
    if (rc != 0)
        rmount_dump_log(&M);
    rmount_cleanup(&M);
    return rc == 0 ? 0 : -1;
}

/* Exit status: 0, or the step that failed unexpectedly. */
static int worker(const char *path, int k, int secs)
{
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return 10;
    char *m = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return 11;
    time_t end = time(NULL) + secs;
    unsigned seed = (unsigned)k * 7919u + 1;
    char buf[4096];
    while (time(NULL) < end) {
        int r = (int)(rand_r(&seed) % 6);
        if (r == 0) {
            if (rvmfs_begin(fd, 0, NULL) < 0) {
                if (errno != EBUSY)
                    return 12;
                continue;
            }
            memset(m + (rand_r(&seed) % PAGES) * 4096, 'a' + k, 4096);
            memset(buf, 'A' + k, 100);
            if (pwrite(fd, buf, 100, rand_r(&seed) % (LEN - 100)) != 100)
                return 13;
            /* someone may have ended it already: ENOENT is fine */
            if (rand_r(&seed) % 2) {
                if (rvmfs_abort(fd) < 0 && errno != ENOENT)
                    return 14;
            } else if (rvmfs_commit_mapped(fd, m, LEN, rand_r(&seed) % 2) < 0 &&
                       errno != ENOENT) {
                return 15;
            }
        } else if (r == 1) {
            memset(m + (rand_r(&seed) % PAGES) * 4096 + 17, 'x', 100);
        } else if (r == 2) {
            if (pread(fd, buf, sizeof(buf), (rand_r(&seed) % PAGES) * 4096) !=
                sizeof(buf))
                return 16;
        } else if (r == 3) {
            msync(m, LEN, MS_ASYNC);
        } else if (r == 4) {
            if (rvmfs_abort(fd) < 0 && errno != ENOENT)
                return 17;
        } else {
            volatile char c = m[rand_r(&seed) % LEN];
            (void)c;
        }
    }
    munmap(m, LEN);
    close(fd);
    return 0;
}

static void test_racing_mapped_transactions_neither_hang_nor_fail(void **state)
{
    (void)state;
    int secs = getenv("RVMFS_STRESS_SECONDS") ? atoi(getenv("RVMFS_STRESS_SECONDS")) : 3;
    char p[PATH_MAX];
    rmount_path(&M, "stress", p);
    int fd = open(p, O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, LEN), 0);
    close(fd);
    pid_t pids[WORKERS];
    for (int k = 0; k < WORKERS; k++) {
        pids[k] = fork();
        if (pids[k] == 0)
            _exit(worker(p, k, secs));
    }
    for (int k = 0; k < WORKERS; k++) {
        int st;
        /* a hang shows as the test's timeout; a failure as a status */
        assert_int_equal(waitpid(pids[k], &st, 0), pids[k]);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("worker %d ended with status 0x%x", k, st);
    }
    fd = open(p, O_RDONLY);
    struct rvmfs_status s;
    assert_int_equal(rvmfs_status(fd, &s), 0);
    if (s.tid) /* the last begin may have stayed open */
        assert_int_equal(rvmfs_abort(fd), 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, LEN);
    close(fd);
}

#define FLUSHERS 4
#define FLUSH_TXNS 150

/* Flush commits through xattrs on a file of its own: begin, a 4 KiB
 * pwrite, commit.  Exit status: 0, or the step that failed. */
static int flusher(const char *path, int k)
{
    int fd = open(path, O_RDWR | O_CREAT, 0644);
    if (fd < 0)
        return 20;
    char buf[4096];
    for (int i = 0; i < FLUSH_TXNS; i++) {
        memset(buf, 'a' + (k + i) % 26, sizeof buf);
        if (fsetxattr(fd, "user.rvm.txn", "begin", 5, 0) < 0)
            return 21;
        if (pwrite(fd, buf, sizeof buf, (off_t)(i % 8) * 4096) != sizeof buf)
            return 22;
        if (fsetxattr(fd, "user.rvm.txn", "commit", 6, 0) < 0)
            return 23;
    }
    close(fd);
    return 0;
}

/* A thread of the daemon allowed on one CPU only. */
static bool daemon_thread_pinned(pid_t pid)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool pinned = false;
    for (struct dirent *e; !pinned && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char p[384], line[256];
        snprintf(p, sizeof p, "%s/%s/status", dir, e->d_name);
        FILE *f = fopen(p, "r");
        while (f && fgets(line, sizeof line, f))
            if (strncmp(line, "Cpus_allowed_list:", 18) == 0)
                pinned = strpbrk(line + 18, ",-") == NULL;
        if (f)
            fclose(f);
    }
    closedir(d);
    return pinned;
}

/* Several writers' flush commits all land; over io_uring the daemon pins
 * ring threads to their queue's CPU meanwhile (their requests overlap). */
static void test_concurrent_flush_writers_commit_and_pin_ring_threads(void **state)
{
    (void)state;
    char p[PATH_MAX];
    pid_t pids[FLUSHERS];
    for (int k = 0; k < FLUSHERS; k++) {
        char name[32];
        snprintf(name, sizeof name, "flush%d", k);
        rmount_path(&M, name, p);
        pids[k] = fork();
        if (pids[k] == 0)
            _exit(flusher(p, k));
        assert_true(pids[k] > 0);
    }
    bool pinned = false;
    bool expect_pin = rmount_uring() && sysconf(_SC_NPROCESSORS_ONLN) >= 2;
    for (int k = 0; k < FLUSHERS; k++) {
        int st;
        while (waitpid(pids[k], &st, WNOHANG) == 0) {
            pinned = pinned || daemon_thread_pinned(M.pid);
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    if (expect_pin)
        assert_true(pinned);
    for (int k = 0; k < FLUSHERS; k++) {
        char name[32], buf[4096], want[4096];
        snprintf(name, sizeof name, "flush%d", k);
        int fd = open(rmount_path(&M, name, p), O_RDONLY);
        assert_true(fd >= 0);
        for (int i = FLUSH_TXNS - 8; i < FLUSH_TXNS; i++) {
            memset(want, 'a' + (k + i) % 26, sizeof want);
            assert_int_equal(pread(fd, buf, sizeof buf, (off_t)(i % 8) * 4096),
                             sizeof buf);
            assert_memory_equal(buf, want, sizeof buf);
        }
        close(fd);
    }
}

int main(void)
{
    rmount_require_fuse();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_racing_mapped_transactions_neither_hang_nor_fail),
        cmocka_unit_test(test_concurrent_flush_writers_commit_and_pin_ring_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
