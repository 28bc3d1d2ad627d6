/*
 * test_crash.c - rvmfs across kill -9 of the daemon: joined files are all
 * or nothing, and during a stream of committed transactions every
 * acknowledged flush commit survives and no transaction is partial.
 *
 * RVMFS_KILL_POINTS (default 100) sets how many times the stream is killed;
 * every other stream writes through shared mappings.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
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
    return rmount_init(&M, "logsize=8M") < 0 || rmount_start(&M) < 0 ? -1 : 0;
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

static int openf(const char *name, int flags)
{
    char p[PATH_MAX];
    return open(rmount_path(&M, name, p), flags, 0644);
}

static void fill_file(const char *name, size_t len, char c)
{
    int fd = openf(name, O_RDWR | O_CREAT | O_TRUNC);
    assert_true(fd >= 0);
    char buf[4096];
    memset(buf, c, sizeof(buf));
    for (size_t off = 0; off < len; off += sizeof(buf))
        assert_int_equal(pwrite(fd, buf, sizeof(buf), (off_t)off), (ssize_t)sizeof(buf));
    assert_int_equal(fsync(fd), 0);
    close(fd);
}

static void check_file(const char *name, size_t len, char c)
{
    int fd = openf(name, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, (off_t)len);
    char *buf = malloc(len);
    assert_int_equal(pread(fd, buf, len, 0), (ssize_t)len);
    for (size_t i = 0; i < len; i++)
        if (buf[i] != c)
            fail_msg("%s: byte %zu is '%c', expected '%c'", name, i, buf[i], c);
    free(buf);
    close(fd);
}

static void crash_and_remount(void)
{
    rmount_kill(&M);
    assert_int_equal(rmount_start(&M), 0);
}

static void test_uncommitted_joined_transaction_vanishes_in_crash(void **state)
{
    (void)state;
    fill_file("j1", 8192, 'a');
    fill_file("j2", 4096, 'a');
    int f1 = openf("j1", O_RDWR), f2 = openf("j2", O_RDWR);
    uint64_t tid = 0;
    assert_int_equal(rvmfs_begin(f1, 0, &tid), 0);
    assert_int_equal(rvmfs_join(f2, tid), 0);
    char b[12288];
    memset(b, 'b', sizeof(b));
    assert_int_equal(pwrite(f1, b, 8192, 0), 8192);
    assert_int_equal(pwrite(f2, b, sizeof(b), 0), (ssize_t)sizeof(b));
    assert_int_equal(fsync(f1), 0); /* flushes committed work only */
    close(f1);
    close(f2);
    crash_and_remount();
    check_file("j1", 8192, 'a');
    check_file("j2", 4096, 'a');
}

static void test_committed_joined_transaction_survives_crash_whole(void **state)
{
    (void)state;
    fill_file("k1", 8192, 'a');
    fill_file("k2", 4096, 'a');
    int f1 = openf("k1", O_RDWR), f2 = openf("k2", O_RDWR);
    uint64_t tid = 0;
    assert_int_equal(rvmfs_begin(f2, 0, &tid), 0);
    assert_int_equal(rvmfs_join(f1, tid), 0);
    char b[12288];
    memset(b, 'c', sizeof(b));
    assert_int_equal(ftruncate(f1, 100), 0);
    assert_int_equal(pwrite(f1, b, 100, 0), 100);
    assert_int_equal(pwrite(f2, b, sizeof(b), 0), (ssize_t)sizeof(b));
    assert_int_equal(rvmfs_commit(f1, 0), 0);
    close(f1);
    close(f2);
    crash_and_remount();
    check_file("k1", 100, 'c');
    check_file("k2", sizeof(b), 'c');
}

static void test_no_flush_commit_made_durable_by_fsync_survives_crash(void **state)
{
    (void)state;
    fill_file("nf", 4096, 'a');
    int fd = openf("nf", O_RDWR);
    assert_int_equal(rvmfs_begin(fd, 0, NULL), 0);
    char b[4096];
    memset(b, 'n', sizeof(b));
    assert_int_equal(pwrite(fd, b, sizeof(b), 0), 4096);
    assert_int_equal(rvmfs_commit(fd, RVMFS_NO_FLUSH), 0);
    assert_int_equal(fdatasync(fd), 0);
    close(fd);
    crash_and_remount();
    check_file("nf", 4096, 'n');
}

static int count_segments(void)
{
    char p[PATH_MAX + 8];
    snprintf(p, sizeof(p), "%s/seg", M.store);
    DIR *d = opendir(p);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    if (d)
        closedir(d);
    return n;
}

static void test_renamed_and_unlinked_files_recover_to_the_right_names(void **state)
{
    (void)state;
    char p[PATH_MAX], q[PATH_MAX];
    assert_int_equal(mkdir(rmount_path(&M, "ns", p), 0755), 0);
    int before = count_segments();
    fill_file("ns/a", 4096, 'A');
    fill_file("ns/b", 4096, 'B');
    assert_int_equal(rename(rmount_path(&M, "ns/a", p), rmount_path(&M, "ns/c", q)), 0);
    assert_int_equal(unlink(rmount_path(&M, "ns/b", p)), 0);
    for (int i = 0; i < 20; i++) { /* new files may get the old inode numbers */
        char name[32];
        snprintf(name, sizeof(name), "ns/n%d", i);
        fill_file(name, 4096, 'N');
    }
    fill_file("ns/a", 8192, 'a'); /* a new file under the old name */
    crash_and_remount();
    check_file("ns/c", 4096, 'A');
    check_file("ns/a", 8192, 'a');
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof(name), "ns/n%d", i);
        check_file(name, 4096, 'N');
    }
    assert_int_equal(access(rmount_path(&M, "ns/b", p), F_OK), -1);
    assert_int_equal(count_segments(), before + 22); /* b's segment is gone */
}

/* The stream: transaction i makes both files pattern(i), of size len(i). */
#define S_MAX 12288
static size_t s_len(uint64_t i)
{
    return 16 + (size_t)((i * 2654435761u) % (S_MAX - 16));
}

static void s_fill(uint64_t i, char *buf, size_t len)
{
    memcpy(buf, &i, 8);
    for (size_t j = 8; j < len; j++)
        buf[j] = (char)((i * 131 + j * 7) & 0xff);
}

struct ack {
    uint64_t i;
    uint64_t durable;
};

static void bus_exit(int sig)
{
    (void)sig;
    _exit(0); /* a mapped page of the dead mount: the daemon is gone */
}

/* Transactions first, first+1, ... until the daemon dies; each acknowledged
 * on ackfd.  With use_map the bytes go through shared mappings, msync'd
 * before the commit. */
static void stream_child(int ackfd, uint64_t first, bool use_map)
{
    char buf[S_MAX];
    int f1 = openf("s1", O_RDWR), f2 = openf("s2", O_RDWR);
    if (f1 < 0 || f2 < 0)
        /* killed before we began (ENOENT: the dead mount is already
         * detached and the bare mountpoint shows through) */
        _exit(errno == ENOTCONN || errno == ECONNABORTED || errno == ENOENT
                  ? 0 : 100 + errno);
    char *m1 = NULL, *m2 = NULL;
    if (use_map) {
        signal(SIGBUS, bus_exit);
        m1 = mmap(NULL, S_MAX, PROT_READ | PROT_WRITE, MAP_SHARED, f1, 0);
        m2 = mmap(NULL, S_MAX, PROT_READ | PROT_WRITE, MAP_SHARED, f2, 0);
        if (m1 == MAP_FAILED || m2 == MAP_FAILED)
            _exit(0);
    }
    for (uint64_t i = first;; i++) {
        uint64_t tid;
        size_t len = s_len(i);
        s_fill(i, buf, len);
        bool durable = i % 3 != 0; /* every third commit is no_flush */
        if (rvmfs_begin(f1, 0, &tid) < 0 || rvmfs_join(f2, tid) < 0 ||
            ftruncate(f1, (off_t)len) < 0 || ftruncate(f2, (off_t)len) < 0)
            _exit(0); /* the daemon is gone */
        if (use_map) {
            memcpy(m1, buf, len);
            memcpy(m2, buf, len);
            if (msync(m2, S_MAX, MS_SYNC) < 0 ||
                rvmfs_commit_mapped(f1, m1, S_MAX, durable ? 0 : RVMFS_NO_FLUSH) < 0)
                _exit(0);
        } else if (pwrite(f1, buf, len, 0) != (ssize_t)len ||
                   pwrite(f2, buf, len, 0) != (ssize_t)len ||
                   rvmfs_commit(f1, durable ? 0 : RVMFS_NO_FLUSH) < 0) {
            _exit(0);
        }
        struct ack a = {i, durable};
        if (write(ackfd, &a, sizeof(a)) != sizeof(a))
            _exit(3);
    }
}

/* Read s1 and s2; both must hold pattern(i) for one i.  Returns i. */
static uint64_t stream_check(void)
{
    char buf[2][S_MAX + 1], want[S_MAX];
    uint64_t i[2];
    const char *names[2] = {"s1", "s2"};
    for (int k = 0; k < 2; k++) {
        int fd = openf(names[k], O_RDONLY);
        assert_true(fd >= 0);
        ssize_t n = pread(fd, buf[k], sizeof(buf[k]), 0);
        close(fd);
        assert_true(n >= 8);
        memcpy(&i[k], buf[k], 8);
        if ((size_t)n != s_len(i[k]))
            fail_msg("%s holds transaction %llu with size %zd, not %zu",
                     names[k], (unsigned long long)i[k], n, s_len(i[k]));
        s_fill(i[k], want, (size_t)n);
        if (memcmp(buf[k], want, (size_t)n) != 0)
            fail_msg("%s: transaction %llu is partial", names[k],
                     (unsigned long long)i[k]);
    }
    if (i[0] != i[1])
        fail_msg("joined files disagree: s1 at %llu, s2 at %llu",
                 (unsigned long long)i[0], (unsigned long long)i[1]);
    return i[0];
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static void test_kill_during_commit_stream_keeps_every_acknowledged_commit(void **state)
{
    (void)state;
    int points = getenv("RVMFS_KILL_POINTS") ? atoi(getenv("RVMFS_KILL_POINTS")) : 100;
    char buf[S_MAX];
    size_t len0 = s_len(0);
    s_fill(0, buf, len0);
    for (int k = 0; k < 2; k++) {
        int fd = openf(k ? "s2" : "s1", O_RDWR | O_CREAT | O_TRUNC);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, buf, len0, 0), (ssize_t)len0);
        assert_int_equal(fsync(fd), 0);
        close(fd);
    }
    uint64_t durable = 0, last = 0, total = 0;
    srand(42);
    for (int p = 0; p < points; p++) {
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            stream_child(pfd[1], last + 1, p % 2 == 1);
        }
        close(pfd[1]);
        sleep_us(2000 + rand() % 30000);
        rmount_kill(&M);
        struct ack a;
        while (read(pfd[0], &a, sizeof(a)) == sizeof(a)) {
            last = a.i;
            total++;
            if (a.durable)
                durable = a.i;
        }
        close(pfd[0]);
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_msg("kill point %d: writer ended with status 0x%x", p, st);
        assert_int_equal(rmount_start(&M), 0);
        uint64_t found = stream_check();
        if (found < durable)
            fail_msg("kill point %d: acknowledged flush commit %llu lost "
                     "(store holds %llu)", p, (unsigned long long)durable,
                     (unsigned long long)found);
        if (found > last + 1)
            fail_msg("kill point %d: store holds %llu, never begun", p,
                     (unsigned long long)found);
        last = found; /* the next stream goes on from what survived */
        durable = found;
    }
    printf("%d kill points, %llu acknowledged commits\n", points,
           (unsigned long long)total);
}

int main(void)
{
    rmount_require_fuse();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uncommitted_joined_transaction_vanishes_in_crash),
        cmocka_unit_test(test_committed_joined_transaction_survives_crash_whole),
        cmocka_unit_test(test_no_flush_commit_made_durable_by_fsync_survives_crash),
        cmocka_unit_test(test_renamed_and_unlinked_files_recover_to_the_right_names),
        cmocka_unit_test(test_kill_during_commit_stream_keeps_every_acknowledged_commit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
