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
#include <sys/vfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mount_util.h"
#include "rvmfs.h"

static struct rmount M;

static int setup(void **state)
{
    (void)state;
    /* a small log: truncations happen often, so kills hit them */
    return rmount_init(&M, "logsize=2M") < 0 || rmount_start(&M) < 0 ? -1 : 0;
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

/*
 * The kill test.  At every kill point four writers run at once over the
 * mount, each on its own files, and the daemon is killed after a random
 * 1-40 ms; each writer acknowledges on a pipe what returned to it:
 *
 *   ioctl  transaction i makes s1 and s2 (joined) pattern(i) of size
 *          len(i): ftruncate + pwrite, or, at every other kill point,
 *          ftruncate + stores into shared mappings + msync; commits are
 *          flush, or no_flush (every third), half of these followed by
 *          fdatasync;
 *   xattr  the same on x1 and x2 through user.rvm.txn (begin, read the
 *          tid, join, commit or commit no_flush, then fsync);
 *   plain  write i, outside any transaction, is one pwrite of a stamped
 *          record into slot i % P_SLOTS of p1; every fourth is followed
 *          by fsync or fdatasync;
 *   rename file i is created as n/t<i>, written (fsync'ed every fourth
 *          time) and renamed over n/f<i % N_SLOTS>: the replaced file's
 *          segment is an orphan with records still in the log, and new
 *          files get the inode numbers of removed ones.
 *
 * Every fifth kill comes in the middle of the orderly stop (SIGTERM:
 * abort the open transactions, flush, truncate the log; then SIGKILL
 * 0-5 ms later); at every fifth kill point the next daemon is killed once
 * more 0-20 ms after it starts (recovery or mount), before the remount.
 * The store's log is 2 MiB, so truncations are frequent and kills hit
 * them too.
 *
 * After the remount (which runs recovery) the checks are:
 *   - no partial transaction: s1/s2 (x1/x2) hold pattern(i) whole, at
 *     its size, and the same i in both files (joined commits are atomic);
 *   - every write record is whole, and the records form a prefix of the
 *     writes (the no_flush commits of plain writes survive in order);
 *   - every n/f<k> holds a whole file of its own slot, or is empty because
 *     a rename whose bytes were not durable replaced it: never the bytes
 *     of another file;
 *   - durability: nothing at or before the last acknowledged durable
 *     point (a flush commit, or a write or no_flush commit followed by
 *     a returned fsync/fdatasync) is lost;
 *   - nothing that was never issued appears (at most one in flight);
 *   - a writer ends only because the daemon is gone (ENOTCONN and the
 *     like), never on another error.
 * A violation is printed and counted, the writers go on from what
 * survived, and the test fails at the end if any was seen.
 *
 * RVMFS_KILL_POINTS (default 100) sets the number of kills, e.g.
 *   RVMFS_KILL_POINTS=1000 meson test -C build mount_crash -t 10 -v
 */
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

#define P_REC 1024
#define P_SLOTS 64
static void p_fill(uint64_t i, char *buf)
{
    memcpy(buf, &i, 8);
    for (size_t j = 8; j < P_REC; j++)
        buf[j] = (char)((i * 31 + j * 13) & 0xff);
}

enum wl { WL_IOCTL, WL_XATTR, WL_PLAIN, WL_NS, WL_N };
static const char *const wl_name[WL_N] = {"ioctl", "xattr", "plain", "rename"};
static const char *const wl_files[WL_N][2] = {{"s1", "s2"}, {"x1", "x2"},
                                              {"p1", NULL}, {NULL, NULL}};

struct ack {
    uint64_t i;
    uint64_t durable; /* i and everything before it is durable */
};

static int ack_fd;

static void ack(uint64_t i, bool durable)
{
    struct ack a = {i, durable};
    if (write(ack_fd, &a, sizeof(a)) != sizeof(a))
        _exit(3);
}

/* Over io_uring a request caught in a ring thread that a kill -9 ends
 * fails with ECANCELED or EINTR, from the dying thread, while the daemon's
 * other threads may still answer for a moment.  The daemon itself never
 * says either (the kernel's fuse_request_end trace shows them only in runs
 * with kills, ended by the exiting daemon threads). */
static bool killed_on_ring(int err)
{
    return (err == ECANCELED || err == EINTR) && rmount_uring();
}

/* A call on fd failed: fine if the daemon is gone (requests in flight end
 * with ECONNABORTED, later ones with ENOTCONN; a write cut by the kill
 * may say EIO, msync says EIO for the writeback the dead mount could not
 * take), anything else is a finding.  A live mount answers fstatfs. */
static void gone(int fd, const char *what)
{
    int err = errno;
    struct statfs sf;
    if (err == ENOTCONN || err == ECONNABORTED)
        _exit(0);
    if (killed_on_ring(err))
        _exit(0);
    if (fstatfs(fd, &sf) < 0 && (errno == ENOTCONN || errno == ECONNABORTED)) {
        if (err != EIO)
            fprintf(stderr, "writer: %s: %s as the daemon died\n", what,
                    strerror(err));
        _exit(0);
    }
    fprintf(stderr, "writer: %s: %s (the daemon is alive)\n", what, strerror(err));
    _exit(100);
}

static void bus_exit(int sig)
{
    (void)sig;
    _exit(0); /* a mapped page of the dead mount: the daemon is gone */
}

static int open_or_exit(const char *name)
{
    int fd = openf(name, O_RDWR);
    if (fd < 0) {
        /* killed before we began (ENOENT: the dead mount is already
         * detached and the bare mountpoint shows through) */
        if (errno == ENOENT || errno == ENOTCONN || errno == ECONNABORTED ||
            killed_on_ring(errno))
            _exit(0);
        fprintf(stderr, "writer: open %s: %s\n", name, strerror(errno));
        _exit(100);
    }
    return fd;
}

static void ioctl_child(uint64_t first, bool use_map)
{
    char buf[S_MAX];
    int f1 = open_or_exit("s1"), f2 = open_or_exit("s2");
    char *m1 = NULL, *m2 = NULL;
    if (use_map) {
        signal(SIGBUS, bus_exit);
        m1 = mmap(NULL, S_MAX, PROT_READ | PROT_WRITE, MAP_SHARED, f1, 0);
        m2 = mmap(NULL, S_MAX, PROT_READ | PROT_WRITE, MAP_SHARED, f2, 0);
        if (m1 == MAP_FAILED || m2 == MAP_FAILED)
            gone(f1, "mmap");
    }
    for (uint64_t i = first;; i++) {
        uint64_t tid;
        size_t len = s_len(i);
        s_fill(i, buf, len);
        bool flush = i % 3 != 0, sync = i % 6 == 0;
        if (rvmfs_begin(f1, 0, &tid) < 0)
            gone(f1, "begin");
        if (rvmfs_join(f2, tid) < 0)
            gone(f1, "join");
        if (ftruncate(f1, (off_t)len) < 0 || ftruncate(f2, (off_t)len) < 0)
            gone(f1, "ftruncate");
        if (use_map) {
            memcpy(m1, buf, len);
            memcpy(m2, buf, len);
            if (msync(m1, S_MAX, MS_SYNC) < 0 || msync(m2, S_MAX, MS_SYNC) < 0)
                gone(f1, "msync");
            if (rvmfs_commit(f1, flush ? 0 : RVMFS_NO_FLUSH) < 0)
                gone(f1, "commit");
        } else {
            if (pwrite(f1, buf, len, 0) != (ssize_t)len ||
                pwrite(f2, buf, len, 0) != (ssize_t)len)
                gone(f1, "pwrite");
            if (rvmfs_commit(f1, flush ? 0 : RVMFS_NO_FLUSH) < 0)
                gone(f1, "commit");
        }
        if (sync && fdatasync(f2) < 0)
            gone(f1, "fdatasync");
        ack(i, flush || sync);
    }
}

static int x_set(int fd, const char *cmd)
{
    return fsetxattr(fd, RVMFS_XATTR_TXN, cmd, strlen(cmd), 0);
}

static void xattr_child(uint64_t first)
{
    char buf[S_MAX], val[128];
    int f1 = open_or_exit("x1"), f2 = open_or_exit("x2");
    for (uint64_t i = first;; i++) {
        size_t len = s_len(i);
        s_fill(i, buf, len);
        bool flush = i % 3 != 0, sync = i % 6 == 0;
        if (x_set(f1, "begin") < 0)
            gone(f1, "setxattr begin");
        ssize_t n = fgetxattr(f1, RVMFS_XATTR_TXN, val, sizeof(val) - 1);
        if (n < 0)
            gone(f1, "getxattr");
        val[n] = 0;
        char join[64];
        snprintf(join, sizeof(join), "join %llu", strtoull(val, NULL, 10));
        if (x_set(f2, join) < 0)
            gone(f1, "setxattr join");
        if (ftruncate(f1, (off_t)len) < 0 || ftruncate(f2, (off_t)len) < 0)
            gone(f1, "ftruncate");
        if (pwrite(f1, buf, len, 0) != (ssize_t)len ||
            pwrite(f2, buf, len, 0) != (ssize_t)len)
            gone(f1, "pwrite");
        if (x_set(f2, flush ? "commit" : "commit no_flush") < 0)
            gone(f1, "setxattr commit");
        if (sync && fsync(f1) < 0)
            gone(f1, "fsync");
        ack(i, flush || sync);
    }
}

static void plain_child(uint64_t first)
{
    char rec[P_REC];
    int fd = open_or_exit("p1");
    for (uint64_t i = first;; i++) {
        p_fill(i, rec);
        if (pwrite(fd, rec, P_REC, (off_t)(i % P_SLOTS) * P_REC) != P_REC)
            gone(fd, "pwrite");
        bool sync = i % 4 == 0;
        if (sync && ((i % 8 == 0) ? fsync(fd) : fdatasync(fd)) < 0)
            gone(fd, i % 8 == 0 ? "fsync" : "fdatasync");
        ack(i, sync);
    }
}

/* File i of the rename writer: n/t<i>, s_fill(i) of n_len(i) bytes, then
 * renamed over n/f<i % N_SLOTS>. */
#define N_SLOTS 8
static size_t n_len(uint64_t i)
{
    return 2048 + (size_t)((i * 40503u) % 6144);
}

static void ns_child(uint64_t first)
{
    char buf[S_MAX], tmp[PATH_MAX], dst[PATH_MAX], name[64];
    for (uint64_t i = first;; i++) {
        size_t len = n_len(i);
        s_fill(i, buf, len);
        snprintf(name, sizeof(name), "n/t%llu", (unsigned long long)i);
        rmount_path(&M, name, tmp);
        snprintf(name, sizeof(name), "n/f%llu", (unsigned long long)(i % N_SLOTS));
        rmount_path(&M, name, dst);
        int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL, 0644);
        if (fd < 0) {
            struct statfs sf; /* ENOENT: the bare mountpoint shows through */
            if (statfs(M.mnt, &sf) < 0 || sf.f_type != 0x65735546)
                _exit(0);
            fprintf(stderr, "writer: create %s: %s\n", tmp, strerror(errno));
            _exit(100);
        }
        if (pwrite(fd, buf, len, 0) != (ssize_t)len)
            gone(fd, "pwrite");
        bool sync = i % 4 == 0; /* then the bytes are durable before the name */
        if (sync && fsync(fd) < 0)
            gone(fd, "fsync");
        if (rename(tmp, dst) < 0) /* the old file's segment becomes an orphan */
            gone(fd, "rename");
        close(fd);
        ack(i, sync);
    }
}

static int violations;

static void violation(int point, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "VIOLATION at kill point %d: ", point);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    violations++;
}

/* The transaction both files of a stream hold, or 0 after a violation. */
static uint64_t stream_check(enum wl w, int point)
{
    static char buf[2][S_MAX + 1], want[S_MAX];
    uint64_t i[2];
    for (int k = 0; k < 2; k++) {
        const char *name = wl_files[w][k];
        int fd = openf(name, O_RDONLY);
        ssize_t n = fd < 0 ? -1 : pread(fd, buf[k], sizeof(buf[k]), 0);
        if (fd >= 0)
            close(fd);
        if (n < 8) {
            violation(point, "%s: cannot read (%zd, %s)", name, n, strerror(errno));
            return 0;
        }
        memcpy(&i[k], buf[k], 8);
        if ((size_t)n != s_len(i[k])) {
            violation(point, "%s holds transaction %llu with size %zd, not %zu",
                      name, (unsigned long long)i[k], n, s_len(i[k]));
            return 0;
        }
        s_fill(i[k], want, (size_t)n);
        if (memcmp(buf[k], want, (size_t)n) != 0) {
            violation(point, "%s: transaction %llu is partial", name,
                      (unsigned long long)i[k]);
            return 0;
        }
    }
    if (i[0] != i[1]) {
        violation(point, "joined files disagree: %s at %llu, %s at %llu",
                  wl_files[w][0], (unsigned long long)i[0], wl_files[w][1],
                  (unsigned long long)i[1]);
        return 0;
    }
    return i[0];
}

/* The last write p1 holds, or 0 after a violation. */
static uint64_t plain_check(int point)
{
    static char buf[P_SLOTS * P_REC + 1];
    char want[P_REC];
    int fd = openf("p1", O_RDONLY);
    ssize_t n = fd < 0 ? -1 : pread(fd, buf, sizeof(buf), 0);
    if (fd >= 0)
        close(fd);
    if (n != P_SLOTS * P_REC) {
        violation(point, "p1: read %zd bytes, not %d", n, P_SLOTS * P_REC);
        return 0;
    }
    uint64_t r[P_SLOTS], max = 0;
    for (int k = 0; k < P_SLOTS; k++) {
        memcpy(&r[k], buf + k * P_REC, 8);
        p_fill(r[k], want);
        if (r[k] % P_SLOTS != (uint64_t)k || memcmp(buf + k * P_REC, want, P_REC)) {
            violation(point, "p1: slot %d holds a torn or misplaced write "
                      "(stamp %llu)", k, (unsigned long long)r[k]);
            return 0;
        }
        if (r[k] > max)
            max = r[k];
    }
    /* a prefix of the writes: every slot holds its latest write <= max */
    for (int k = 0; k < P_SLOTS; k++)
        if (r[k] + P_SLOTS <= max) {
            violation(point, "p1: write %llu survived but write %llu (slot %d) "
                      "did not: not a prefix", (unsigned long long)max,
                      (unsigned long long)(r[k] + P_SLOTS), k);
            return 0;
        }
    return max;
}

/* Some i in [lo, hi] falls on slot k. */
static bool slot_hit(uint64_t lo, uint64_t hi, uint64_t k)
{
    for (uint64_t i = lo; i <= hi && i < lo + N_SLOTS; i++)
        if (i % N_SLOTS == k)
            return true;
    return false;
}

/*
 * The rename writer's files after a kill.  Renames are done by the backing
 * file system, which a kill does not undo, so every renamed name stays;
 * its bytes are there if they were durable.  seen[k] is what n/f<k> held
 * at the last check (0: empty); this round issued first..acked+1, and
 * everything up to `durable` was fsync'ed before its rename.  Bytes of
 * another file (j % N_SLOTS != k) would be records applied to a segment
 * through a reused inode number.
 */
static void ns_check(int point, uint64_t first, uint64_t acked, uint64_t durable,
                     uint64_t seen[N_SLOTS])
{
    static char buf[S_MAX + 1], want[S_MAX];
    for (uint64_t k = 0; k < N_SLOTS; k++) {
        char name[32];
        snprintf(name, sizeof(name), "n/f%llu", (unsigned long long)k);
        int fd = openf(name, O_RDONLY);
        ssize_t n = fd < 0 ? -1 : pread(fd, buf, sizeof(buf), 0);
        if (fd >= 0)
            close(fd);
        bool touched = slot_hit(first, acked + 1, k);
        uint64_t j = 0, floor = seen[k]; /* it cannot go back */
        for (uint64_t i = first; i <= durable; i++)
            if (i % N_SLOTS == k && i > floor)
                floor = i;
        if (n < 0) {
            violation(point, "%s: %s", name, strerror(errno));
            continue;
        }
        if (n == 0) {
            /* empty before and untouched, or a later rename whose bytes
             * were not durable yet */
            if (!(seen[k] == 0 && !touched) &&
                !slot_hit(durable >= first ? durable + 1 : first, acked + 1, k))
                violation(point, "%s is empty; it held %llu", name,
                          (unsigned long long)seen[k]);
            seen[k] = 0;
            continue;
        }
        memcpy(&j, buf, 8);
        s_fill(j, want, (size_t)n);
        if (n < 8 || (size_t)n != n_len(j) || memcmp(buf, want, (size_t)n) ||
            j % N_SLOTS != k)
            violation(point, "%s: %zd bytes that are not file %llu's (bytes "
                      "of another file, or torn)", name, n, (unsigned long long)j);
        else if (!touched && j != seen[k])
            violation(point, "%s changed from %llu to %llu, untouched", name,
                      (unsigned long long)seen[k], (unsigned long long)j);
        else if (j < floor || j > acked + 1)
            violation(point, "%s holds file %llu; durable %llu, last issued "
                      "%llu", name, (unsigned long long)j,
                      (unsigned long long)floor, (unsigned long long)acked + 1);
        seen[k] = j;
    }
    /* files a kill left before their rename: removing them makes orphans
     * (with records in the log) for the next round */
    char path[PATH_MAX];
    DIR *d = opendir(rmount_path(&M, "n", path));
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] == 't') {
            char name[300];
            snprintf(name, sizeof(name), "n/%s", e->d_name);
            unlink(rmount_path(&M, name, path));
        }
    if (d)
        closedir(d);
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_kill_during_workload_keeps_every_acknowledged_commit(void **state)
{
    (void)state;
    int points = getenv("RVMFS_KILL_POINTS") ? atoi(getenv("RVMFS_KILL_POINTS")) : 100;
    double t0 = now_s();
    char buf[S_MAX];
    size_t len0 = s_len(0);
    s_fill(0, buf, len0);
    for (int w = WL_IOCTL; w <= WL_XATTR; w++)
        for (int k = 0; k < 2; k++) {
            int fd = openf(wl_files[w][k], O_RDWR | O_CREAT | O_TRUNC);
            assert_true(fd >= 0);
            assert_int_equal(pwrite(fd, buf, len0, 0), (ssize_t)len0);
            assert_int_equal(fsync(fd), 0);
            close(fd);
        }
    int pfd = openf("p1", O_RDWR | O_CREAT | O_TRUNC);
    assert_true(pfd >= 0);
    for (uint64_t i = 1; i <= P_SLOTS; i++) { /* writes 1..P_SLOTS fill it */
        p_fill(i, buf);
        assert_int_equal(pwrite(pfd, buf, P_REC, (off_t)(i % P_SLOTS) * P_REC), P_REC);
    }
    assert_int_equal(fsync(pfd), 0);
    close(pfd);

    char dpath[PATH_MAX];
    assert_int_equal(mkdir(rmount_path(&M, "n", dpath), 0755), 0);
    uint64_t seen[N_SLOTS];
    for (uint64_t i = 1; i <= N_SLOTS; i++) { /* files 1..N_SLOTS fill them */
        char name[32];
        snprintf(name, sizeof(name), "n/f%llu", (unsigned long long)(i % N_SLOTS));
        int fd = openf(name, O_RDWR | O_CREAT | O_TRUNC);
        assert_true(fd >= 0);
        s_fill(i, buf, n_len(i));
        assert_int_equal(pwrite(fd, buf, n_len(i), 0), (ssize_t)n_len(i));
        assert_int_equal(fsync(fd), 0);
        close(fd);
        seen[i % N_SLOTS] = i;
    }
    uint64_t last[WL_N] = {0, 0, P_SLOTS, N_SLOTS}, total[WL_N] = {0};
    int stop_kills = 0, start_kills = 0;
    srand(42);
    for (int p = 0; p < points; p++) {
        int afd[WL_N][2];
        pid_t pid[WL_N];
        for (int w = 0; w < WL_N; w++) {
            assert_int_equal(pipe(afd[w]), 0);
            pid[w] = fork();
            assert_true(pid[w] >= 0);
            if (pid[w] == 0) {
                for (int v = 0; v <= w; v++)
                    close(afd[v][0]);
                ack_fd = afd[w][1];
                if (w == WL_IOCTL)
                    ioctl_child(last[w] + 1, p % 2 == 1);
                else if (w == WL_XATTR)
                    xattr_child(last[w] + 1);
                else if (w == WL_PLAIN)
                    plain_child(last[w] + 1);
                else
                    ns_child(last[w] + 1);
            }
            close(afd[w][1]);
        }
        sleep_us(1000 + rand() % 40000);
        if (p % 5 == 4) { /* in the middle of the orderly stop */
            kill(M.pid, SIGTERM);
            sleep_us(rand() % 5000);
            stop_kills++;
        }
        rmount_kill(&M);
        uint64_t durable[WL_N] = {0}, acked[WL_N];
        for (int w = 0; w < WL_N; w++) { /* all writers end before the remount */
            acked[w] = last[w];
            struct ack a;
            while (read(afd[w][0], &a, sizeof(a)) == sizeof(a)) {
                acked[w] = a.i;
                total[w]++;
                if (a.durable)
                    durable[w] = a.i;
            }
            close(afd[w][0]);
            int st;
            waitpid(pid[w], &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                violation(p, "%s writer ended with status 0x%x", wl_name[w], st);
        }
        if (p % 5 == 2) { /* during recovery or the mount of the next daemon */
            assert_int_equal(rmount_spawn(&M), 0);
            sleep_us(rand() % 20000);
            rmount_kill(&M);
            start_kills++;
        }
        if (rmount_start(&M) != 0) {
            rmount_dump_log(&M);
            fail_msg("kill point %d: the store does not mount again", p);
        }
        ns_check(p, last[WL_NS] + 1, acked[WL_NS], durable[WL_NS], seen);
        /* ids are never reused: the one in flight may have been renamed */
        last[WL_NS] = acked[WL_NS] + 1;
        for (int w = 0; w < WL_NS; w++) {
            uint64_t found = w == WL_PLAIN ? plain_check(p) : stream_check(w, p);
            if (found == 0)
                continue; /* reported; go on from the last known state */
            if (found < durable[w])
                violation(p, "%s: acknowledged durable %llu lost (store holds "
                          "%llu)", wl_name[w], (unsigned long long)durable[w],
                          (unsigned long long)found);
            if (found > acked[w] + 1)
                violation(p, "%s: store holds %llu, never issued (last "
                          "acknowledged %llu)", wl_name[w],
                          (unsigned long long)found, (unsigned long long)acked[w]);
            last[w] = found; /* the next writer goes on from what survived */
        }
    }
    printf("kill test: %d kills (%d under load, %d of these in an orderly "
           "stop; %d during start-up), %d violations; acknowledged: %llu ioctl "
           "and %llu xattr transactions, %llu plain writes, %llu renamed "
           "files; %.1f s\n",
           points + start_kills, points, stop_kills, start_kills, violations,
           (unsigned long long)total[WL_IOCTL],
           (unsigned long long)total[WL_XATTR],
           (unsigned long long)total[WL_PLAIN], (unsigned long long)total[WL_NS],
           now_s() - t0);
    assert_int_equal(violations, 0);
}

int main(void)
{
    rmount_require_fuse();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uncommitted_joined_transaction_vanishes_in_crash),
        cmocka_unit_test(test_committed_joined_transaction_survives_crash_whole),
        cmocka_unit_test(test_no_flush_commit_made_durable_by_fsync_survives_crash),
        cmocka_unit_test(test_renamed_and_unlinked_files_recover_to_the_right_names),
        cmocka_unit_test(test_kill_during_workload_keeps_every_acknowledged_commit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
