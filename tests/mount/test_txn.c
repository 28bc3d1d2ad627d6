/*
 * test_txn.c - transactions through the ioctls of rvmfs.h on a real mount:
 * commit, abort (bytes, sizes, existing shared mappings), join, mmap,
 * two processes sharing a mapping, and the errors of bad input.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mount_util.h"
#include "rvmfs.h"

static struct rmount M;

static int setup(void **state)
{
    (void)state;
    /* Over io_uring, one entry per CPU queue: an abort's handler then holds
     * the only entry of its queue while the writeback of its dirty mapped
     * pages needs one (test_abort_discards_changes_made_through_mapping). */
    if (rmount_init(&M, rmount_uring() ? "uring_threads=1" : NULL) < 0 ||
        rmount_start(&M) < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = M.pid ? rmount_stop(&M) : 0; /* a failed test may have killed it */
    if (rc != 0)
        rmount_dump_log(&M);
    rmount_cleanup(&M);
    return rc == 0 ? 0 : -1;
}

static int open_new(const char *name, size_t len, char fill)
{
    char p[PATH_MAX];
    int fd = open(rmount_path(&M, name, p), O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    if (len) {
        char *buf = malloc(len);
        memset(buf, fill, len);
        assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
        free(buf);
    }
    return fd;
}

static off_t fsize(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return st.st_size;
}

static void assert_filled(const char *p, size_t len, char c)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] != c)
            fail_msg("byte %zu is 0x%02x, expected 0x%02x", i,
                     (unsigned char)p[i], (unsigned char)c);
}

static void assert_file_filled(int fd, size_t len, char c)
{
    char *buf = malloc(len + 1);
    assert_int_equal(pread(fd, buf, len + 1, 0), (ssize_t)len);
    assert_filled(buf, len, c);
    free(buf);
}

static void test_commit_makes_written_bytes_visible(void **state)
{
    (void)state;
    int fd = open_new("commit", 100, 'a');
    uint64_t tid = 0;
    assert_int_equal(rvmfs_begin(fd, 0, &tid), 0);
    assert_true(tid != 0);
    char b[100];
    memset(b, 'b', sizeof(b));
    assert_int_equal(pwrite(fd, b, sizeof(b), 0), 100);
    assert_int_equal(rvmfs_commit(fd, 0), 0);
    assert_file_filled(fd, 100, 'b');
    struct rvmfs_status st;
    assert_int_equal(rvmfs_status(fd, &st), 0);
    assert_int_equal(st.tid, 0);
    assert_int_equal(st.size, 100);
    close(fd);
}

static void test_abort_restores_bytes_and_size_after_extending_write(void **state)
{
    (void)state;
    int fd = open_new("abort", 100, 'a');
    assert_int_equal(rvmfs_begin(fd, 0, NULL), 0);
    char b[200];
    memset(b, 'b', sizeof(b));
    assert_int_equal(pwrite(fd, b, sizeof(b), 50), 200);
    assert_int_equal(fsize(fd), 250);
    assert_int_equal(rvmfs_abort(fd), 0);
    assert_int_equal(fsize(fd), 100);
    assert_file_filled(fd, 100, 'a');
    close(fd);
}

/* Big writes past the size log their blocks without a byte-wise diff:
 * blocks of zeros, part-zero blocks and a start inside the old bytes. */
static void test_big_extending_write_commits_and_aborts_exactly(void **state)
{
    (void)state;
    int fd = open_new("bigext", 5000, 'a');
    size_t len = 64 * 1024 + 123;
    char *b = malloc(len), *r = malloc(5000 + len + 1);
    for (size_t i = 0; i < len; i++)
        b[i] = (char)((i / 4096) % 3 == 1 ? 0 : (i % 7 == 0 ? 0 : 'a' + i % 26));
    assert_int_equal(rvmfs_begin(fd, 0, NULL), 0);
    assert_int_equal(pwrite(fd, b, len, 3000), (ssize_t)len);
    assert_int_equal(rvmfs_abort(fd), 0);
    assert_int_equal(fsize(fd), 5000);
    assert_file_filled(fd, 5000, 'a');
    /* What the abort left past the size reads back as zeros. */
    assert_int_equal(ftruncate(fd, (off_t)(3000 + len)), 0);
    assert_int_equal(pread(fd, r, len, 5000), (ssize_t)(len - 2000));
    for (size_t i = 0; i < len - 2000; i++)
        if (r[i] != 0)
            fail_msg("byte %zu past the old size is 0x%02x", 5000 + i, (unsigned char)r[i]);
    assert_int_equal(ftruncate(fd, 5000), 0);
    assert_int_equal(rvmfs_begin(fd, 0, NULL), 0);
    assert_int_equal(pwrite(fd, b, len, 3000), (ssize_t)len);
    assert_int_equal(rvmfs_commit(fd, 0), 0);
    assert_int_equal(fsize(fd), (off_t)(3000 + len));
    assert_int_equal(pread(fd, r, 3000 + len + 1, 0), (ssize_t)(3000 + len));
    assert_filled(r, 3000, 'a');
    assert_memory_equal(r + 3000, b, len);
    free(b);
    free(r);
    close(fd);
}

static void test_abort_undoes_ftruncate(void **state)
{
    (void)state;
    int fd = open_new("trunc", 5000, 'a');
    assert_int_equal(rvmfs_begin(fd, 0, NULL), 0);
    assert_int_equal(ftruncate(fd, 10), 0);
    assert_int_equal(fsize(fd), 10);
    assert_int_equal(ftruncate(fd, 6000), 0);
    char buf[6000];
    assert_int_equal(pread(fd, buf, sizeof(buf), 0), 6000);
    assert_filled(buf, 10, 'a');
    assert_filled(buf + 10, 5990, 0);
    assert_int_equal(rvmfs_abort(fd), 0);
    assert_int_equal(fsize(fd), 5000);
    assert_file_filled(fd, 5000, 'a');
    close(fd);
}

static void test_abort_shows_old_bytes_in_existing_shared_mapping(void **state)
{
    (void)state;
    int fd = open_new("abortmap", 8192, 'a');
    char *map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    assert_filled(map, 8192, 'a');
    assert_int_equal(rvmfs_begin(fd, 0, NULL), 0);
    char b[5000];
    memset(b, 'b', sizeof(b));
    assert_int_equal(pwrite(fd, b, sizeof(b), 100), 5000);
    assert_filled(map + 100, 5000, 'b');
    assert_int_equal(rvmfs_abort(fd), 0);
    assert_filled(map, 8192, 'a');
    munmap(map, 8192);
    close(fd);
}

static void test_abort_discards_changes_made_through_mapping(void **state)
{
    (void)state;
    int fd = open_new("mapabort", 3 * 4096, 'a');
    char *map = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    assert_int_equal(rvmfs_begin(fd, 0, NULL), 0);
    memset(map, 'z', 4096);            /* written back by msync: in the txn */
    assert_int_equal(msync(map, 4096, MS_SYNC), 0);
    memset(map + 4096, 'y', 4096);     /* still dirty at the abort */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(rvmfs_abort(fd), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* Not a speed check: an abort whose invalidation waited for a ring
     * entry that never came ends by the daemon's 10 s timeout instead. */
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (took >= 5.0)
        fail_msg("the abort took %.1f s", took);
    assert_filled(map, 3 * 4096, 'a');
    assert_file_filled(fd, 3 * 4096, 'a');
    /* the discarded page must not come back later as a write */
    assert_int_equal(fsync(fd), 0);
    assert_file_filled(fd, 3 * 4096, 'a');
    munmap(map, 3 * 4096);
    close(fd);
}

static void test_mapped_changes_committed_with_helper_are_durable(void **state)
{
    (void)state;
    int fd = open_new("mapcommit", 2 * 4096, 'a');
    char *map = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    assert_int_equal(rvmfs_begin(fd, 0, NULL), 0);
    memset(map + 10, 'm', 5000);
    assert_int_equal(rvmfs_commit_mapped(fd, map, 2 * 4096, 0), 0);
    munmap(map, 2 * 4096);
    close(fd);
    /* kill -9: only what the log holds survives */
    rmount_kill(&M);
    assert_int_equal(rmount_start(&M), 0);
    char p[PATH_MAX], buf[2 * 4096];
    fd = open(rmount_path(&M, "mapcommit", p), O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
    assert_filled(buf, 10, 'a');
    assert_filled(buf + 10, 5000, 'm');
    assert_filled(buf + 5010, sizeof(buf) - 5010, 'a');
    close(fd);
}

static void test_joined_files_commit_together(void **state)
{
    (void)state;
    int f1 = open_new("join1", 10, 'a'), f2 = open_new("join2", 10, 'a');
    uint64_t tid = 0;
    assert_int_equal(rvmfs_begin(f1, 0, &tid), 0);
    assert_int_equal(rvmfs_join(f2, tid), 0);
    assert_int_equal(rvmfs_join(f2, tid), 0); /* again: no change */
    struct rvmfs_status st;
    assert_int_equal(rvmfs_status(f2, &st), 0);
    assert_int_equal(st.tid, tid);
    assert_int_equal(pwrite(f1, "1111", 4, 0), 4);
    assert_int_equal(pwrite(f2, "2222", 4, 0), 4);
    assert_int_equal(rvmfs_commit(f2, 0), 0); /* any member commits */
    assert_int_equal(rvmfs_status(f1, &st), 0);
    assert_int_equal(st.tid, 0);
    char b[10];
    assert_int_equal(pread(f1, b, 10, 0), 10);
    assert_memory_equal(b, "1111aaaaaa", 10);
    assert_int_equal(pread(f2, b, 10, 0), 10);
    assert_memory_equal(b, "2222aaaaaa", 10);
    close(f1);
    close(f2);
}

static void test_joined_files_abort_together(void **state)
{
    (void)state;
    int f1 = open_new("jab1", 10, 'a'), f2 = open_new("jab2", 10, 'a');
    uint64_t tid = 0;
    assert_int_equal(rvmfs_begin(f1, 0, &tid), 0);
    assert_int_equal(rvmfs_join(f2, tid), 0);
    assert_int_equal(pwrite(f1, "1111111111111", 13, 0), 13);
    assert_int_equal(pwrite(f2, "2222", 4, 0), 4);
    assert_int_equal(rvmfs_abort(f1), 0);
    assert_int_equal(fsize(f1), 10);
    assert_file_filled(f1, 10, 'a');
    assert_file_filled(f2, 10, 'a');
    close(f1);
    close(f2);
}

static void test_transaction_outlives_descriptors(void **state)
{
    (void)state;
    char p[PATH_MAX];
    int fd = open_new("outlive", 4, 'a');
    assert_int_equal(rvmfs_begin(fd, 0, NULL), 0);
    close(fd);
    fd = open(rmount_path(&M, "outlive", p), O_WRONLY);
    assert_int_equal(pwrite(fd, "bb", 2, 0), 2);
    close(fd);
    fd = open(p, O_RDONLY);
    assert_int_equal(rvmfs_abort(fd), 0);
    assert_file_filled(fd, 4, 'a');
    close(fd);
}

static void test_write_by_other_process_belongs_to_transaction(void **state)
{
    (void)state;
    char p[PATH_MAX];
    int fd = open_new("other", 4, 'a');
    assert_int_equal(rvmfs_begin(fd, 0, NULL), 0);
    pid_t pid = fork();
    if (pid == 0) {
        int f = open(rmount_path(&M, "other", p), O_WRONLY);
        _exit(f >= 0 && pwrite(f, "cccc", 4, 0) == 4 ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(rvmfs_abort(fd), 0);
    assert_file_filled(fd, 4, 'a');
    close(fd);
}

static void test_two_processes_see_each_others_mapped_bytes(void **state)
{
    (void)state;
    char p[PATH_MAX];
    int fd = open_new("shared", 4096, '.');
    char *map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    int to_child[2], to_parent[2];
    assert_int_equal(pipe(to_child), 0);
    assert_int_equal(pipe(to_parent), 0);
    pid_t pid = fork();
    if (pid == 0) {
        int f = open(rmount_path(&M, "shared", p), O_RDWR);
        char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
        char c;
        if (m == MAP_FAILED)
            _exit(2);
        memcpy(m + 100, "child", 5);
        if (write(to_parent[1], "x", 1) != 1 || read(to_child[0], &c, 1) != 1)
            _exit(3);
        _exit(memcmp(m + 200, "parent", 6) == 0 ? 0 : 1);
    }
    char c;
    assert_int_equal(read(to_parent[0], &c, 1), 1);
    assert_memory_equal(map + 100, "child", 5);
    memcpy(map + 200, "parent", 6);
    assert_int_equal(write(to_child[1], "x", 1), 1);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    /* and the bytes reach the segment */
    assert_int_equal(msync(map, 4096, MS_SYNC), 0);
    char buf[4096];
    assert_int_equal(pread(fd, buf, 4096, 0), 4096);
    assert_memory_equal(buf + 100, "child", 5);
    assert_memory_equal(buf + 200, "parent", 6);
    munmap(map, 4096);
    close(fd);
    close(to_child[0]);
    close(to_child[1]);
    close(to_parent[0]);
    close(to_parent[1]);
}

static void test_begin_on_busy_file_is_ebusy(void **state)
{
    (void)state;
    int fd = open_new("busy", 4, 'a');
    assert_int_equal(rvmfs_begin(fd, 0, NULL), 0);
    assert_int_equal(rvmfs_begin(fd, 0, NULL), -1);
    assert_int_equal(errno, EBUSY);
    int f2 = open_new("busy2", 4, 'a');
    uint64_t t2 = 0;
    assert_int_equal(rvmfs_begin(f2, 0, &t2), 0);
    assert_int_equal(rvmfs_join(fd, t2), -1); /* in another transaction */
    assert_int_equal(errno, EBUSY);
    assert_int_equal(rvmfs_abort(fd), 0);
    assert_int_equal(rvmfs_commit(f2, RVMFS_NO_FLUSH), 0);
    close(fd);
    close(f2);
}

static void test_join_of_unknown_tid_is_enoent(void **state)
{
    (void)state;
    int fd = open_new("unknown", 4, 'a');
    assert_int_equal(rvmfs_join(fd, 12345), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(rvmfs_commit(fd, 0), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(rvmfs_abort(fd), -1);
    assert_int_equal(errno, ENOENT);
    close(fd);
}

static void test_bad_flags_are_einval_and_change_nothing(void **state)
{
    (void)state;
    int fd = open_new("flags", 4, 'a');
    assert_int_equal(rvmfs_begin(fd, 0x80, NULL), -1);
    assert_int_equal(errno, EINVAL);
    struct rvmfs_status st;
    assert_int_equal(rvmfs_status(fd, &st), 0);
    assert_int_equal(st.tid, 0);
    assert_int_equal(rvmfs_begin(fd, 0, NULL), 0);
    assert_int_equal(rvmfs_commit(fd, 0x10), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(rvmfs_status(fd, &st), 0);
    assert_true(st.tid != 0);
    assert_int_equal(rvmfs_commit(fd, 0), 0);
    close(fd);
}

static void test_unknown_ioctl_is_enotty(void **state)
{
    (void)state;
    int fd = open_new("enotty", 4, 'a');
    uint64_t x = 0;
    assert_int_equal(ioctl(fd, _IOW('R', 99, uint64_t), &x), -1);
    assert_int_equal(errno, ENOTTY);
    close(fd);
}

static void test_no_restore_transaction_cannot_abort(void **state)
{
    (void)state;
    int fd = open_new("norestore", 4, 'a');
    assert_int_equal(rvmfs_begin(fd, RVMFS_NO_RESTORE, NULL), 0);
    assert_int_equal(pwrite(fd, "bbbb", 4, 0), 4);
    assert_int_equal(rvmfs_abort(fd), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(rvmfs_commit(fd, 0), 0);
    assert_file_filled(fd, 4, 'b');
    close(fd);
}

static void test_status_and_flush_work_on_the_root_directory(void **state)
{
    (void)state;
    int fd = open(M.mnt, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    struct rvmfs_status st;
    assert_int_equal(rvmfs_status(fd, &st), 0);
    assert_true(st.log_size > 0);
    assert_int_equal(rvmfs_flush(fd), 0);
    close(fd);
}

/* Random writes, truncations and mapped writes, in and out of
 * transactions that commit or abort, checked against a model; then a
 * crash must leave exactly the model's committed state. */
static void test_random_transactions_match_a_model(void **state)
{
    (void)state;
    enum { MAXLEN = 256 << 10, OPS = 2000 };
    static char cur[MAXLEN], com[MAXLEN], buf[MAXLEN];
    size_t cur_size = 0, com_size = 0;
    bool in_txn = false;
    int fd = open_new("model", 0, 0);
    char *map = mmap(NULL, MAXLEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    uint32_t x = getenv("RVMFS_TEST_SEED") ? (uint32_t)atoi(getenv("RVMFS_TEST_SEED")) : 4242;
#define RND() (x = x * 1103515245u + 12345u, x >> 8)
    int ops = getenv("RVMFS_TEST_OPS") ? atoi(getenv("RVMFS_TEST_OPS")) : OPS;
    for (int op = 0; op < ops; op++) {
        uint32_t r = RND() % 12;
        if (getenv("RVMFS_TEST_TRACE"))
            fprintf(stderr, "op %d r %u in_txn %d size %zu\n", op, r, in_txn, cur_size);
        size_t off = RND() % MAXLEN, len = 1 + RND() % 8192;
        if (off + len > MAXLEN)
            len = MAXLEN - off;
        if (r < 4) {
            memset(buf, (int)(RND() & 0xff), len);
            assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
            memcpy(cur + off, buf, len);
            if (off + len > cur_size)
                cur_size = off + len;
        } else if (r < 5) {
            size_t ns = RND() % MAXLEN;
            assert_int_equal(ftruncate(fd, (off_t)ns), 0);
            if (ns < cur_size)
                memset(cur + ns, 0, cur_size - ns);
            cur_size = ns;
        } else if (r < 6 && cur_size > 0) {
            size_t o = RND() % cur_size, l = 1 + RND() % 3000;
            if (o + l > cur_size)
                l = cur_size - o;
            int c = (int)(RND() & 0xff);
            memset(map + o, c, l);
            memset(cur + o, c, l);
            assert_int_equal(msync(map, MAXLEN, MS_SYNC), 0);
        } else if (r < 8) {
            if (!in_txn) {
                assert_int_equal(rvmfs_begin(fd, 0, NULL), 0);
                in_txn = true;
            }
        } else if (r < 9) {
            if (in_txn) {
                assert_int_equal(rvmfs_commit(fd, RND() % 2 ? RVMFS_NO_FLUSH : 0), 0);
                in_txn = false;
            }
        } else if (r < 10) {
            if (in_txn) {
                assert_int_equal(rvmfs_abort(fd), 0);
                in_txn = false;
                memcpy(cur, com, MAXLEN);
                cur_size = com_size;
            }
        } else {
            assert_int_equal(fsize(fd), (off_t)cur_size);
            assert_int_equal(pread(fd, buf, MAXLEN, 0), (ssize_t)cur_size);
            if (memcmp(buf, cur, cur_size) != 0)
                fail_msg("op %d: file differs from the model", op);
            if (cur_size && memcmp(map, cur, cur_size) != 0)
                fail_msg("op %d: mapping differs from the model", op);
        }
        if (!in_txn) {
            memcpy(com, cur, MAXLEN);
            com_size = cur_size;
        }
    }
#undef RND
    if (in_txn)
        assert_int_equal(rvmfs_commit(fd, 0), 0);
    else
        assert_int_equal(fsync(fd), 0);
    assert_int_equal(fsize(fd), (off_t)cur_size);
    assert_int_equal(pread(fd, buf, MAXLEN, 0), (ssize_t)cur_size);
    assert_memory_equal(buf, cur, cur_size);
    munmap(map, MAXLEN);
    close(fd);
    rmount_kill(&M);
    assert_int_equal(rmount_start(&M), 0);
    char p[PATH_MAX];
    fd = open(rmount_path(&M, "model", p), O_RDONLY);
    assert_int_equal(fsize(fd), (off_t)cur_size);
    assert_int_equal(pread(fd, buf, MAXLEN, 0), (ssize_t)cur_size);
    assert_memory_equal(buf, cur, cur_size);
    close(fd);
}

int main(void)
{
    rmount_require_fuse();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_makes_written_bytes_visible),
        cmocka_unit_test(test_abort_restores_bytes_and_size_after_extending_write),
        cmocka_unit_test(test_big_extending_write_commits_and_aborts_exactly),
        cmocka_unit_test(test_abort_undoes_ftruncate),
        cmocka_unit_test(test_abort_shows_old_bytes_in_existing_shared_mapping),
        cmocka_unit_test(test_abort_discards_changes_made_through_mapping),
        cmocka_unit_test(test_mapped_changes_committed_with_helper_are_durable),
        cmocka_unit_test(test_joined_files_commit_together),
        cmocka_unit_test(test_joined_files_abort_together),
        cmocka_unit_test(test_transaction_outlives_descriptors),
        cmocka_unit_test(test_write_by_other_process_belongs_to_transaction),
        cmocka_unit_test(test_two_processes_see_each_others_mapped_bytes),
        cmocka_unit_test(test_begin_on_busy_file_is_ebusy),
        cmocka_unit_test(test_join_of_unknown_tid_is_enoent),
        cmocka_unit_test(test_bad_flags_are_einval_and_change_nothing),
        cmocka_unit_test(test_unknown_ioctl_is_enotty),
        cmocka_unit_test(test_no_restore_transaction_cannot_abort),
        cmocka_unit_test(test_status_and_flush_work_on_the_root_directory),
        cmocka_unit_test(test_random_transactions_match_a_model),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
