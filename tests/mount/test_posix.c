/*
 * test_posix.c - rvmfs behaves like a plain filesystem: every scenario
 * runs the same system calls in a temporary directory on the local disk
 * and in an rvmfs mount, records what each call returned (value, errno,
 * bytes read, directory listings) and compares the two records.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "mount_util.h"

static struct rmount M;
static char plain[PATH_MAX - 128];

/* The record of one run. */
struct trace {
    char *buf;
    size_t len, cap;
    const char *root;
};

static void tr(struct trace *t, const char *fmt, ...)
{
    va_list ap;
    char line[1024];
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = sizeof(line) - 1;
    if (t->len + (size_t)n + 2 > t->cap) {
        t->cap = (t->cap + (size_t)n + 2) * 2;
        t->buf = realloc(t->buf, t->cap);
    }
    memcpy(t->buf + t->len, line, (size_t)n);
    t->len += (size_t)n;
    t->buf[t->len++] = '\n';
    t->buf[t->len] = 0;
}

static const char *P(struct trace *t, const char *name)
{
    static __thread char b[4][PATH_MAX];
    static __thread int i;
    i = (i + 1) % 4;
    snprintf(b[i], PATH_MAX, "%s/%s", t->root, name);
    return b[i];
}

/* Record a call's result: the value, or -errno. */
#define R(t, what, call)                                              \
    do {                                                              \
        errno = 0;                                                    \
        long r_ = (long)(call);                                       \
        tr(t, "%s = %ld", what, r_ < 0 ? -(long)errno : r_);          \
    } while (0)

static void rec_file(struct trace *t, const char *name)
{
    int fd = open(P(t, name), O_RDONLY);
    if (fd < 0) {
        tr(t, "content %s: -%d", name, errno);
        return;
    }
    struct stat st;
    fstat(fd, &st);
    char *buf = malloc((size_t)st.st_size + 1);
    ssize_t n = pread(fd, buf, (size_t)st.st_size + 1, 0);
    uint32_t h = 2166136261u;
    for (ssize_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)buf[i]) * 16777619u;
    tr(t, "content %s: size %lld read %zd hash %08x mode %o nlink %lu", name,
       (long long)st.st_size, n, h, st.st_mode, (unsigned long)st.st_nlink);
    free(buf);
    close(fd);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void rec_dir(struct trace *t, const char *name)
{
    DIR *d = opendir(P(t, name));
    if (!d) {
        tr(t, "dir %s: -%d", name, errno);
        return;
    }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256)
        names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof(names[0]), cmp_str);
    char line[4096] = "";
    for (int i = 0; i < n; i++) {
        strncat(line, names[i], sizeof(line) - strlen(line) - 2);
        strcat(line, " ");
        free(names[i]);
    }
    tr(t, "dir %s: %s", name, line);
}

typedef void (*scenario)(struct trace *t);

static void run_both(scenario s, const char *dir)
{
    struct trace a = {NULL, 0, 0, NULL}, b = {NULL, 0, 0, NULL};
    char ra[PATH_MAX], rb[PATH_MAX];
    snprintf(ra, sizeof(ra), "%s/%s", plain, dir);
    snprintf(rb, sizeof(rb), "%s/%s", M.mnt, dir);
    assert_int_equal(mkdir(ra, 0755), 0);
    assert_int_equal(mkdir(rb, 0755), 0);
    a.root = ra;
    b.root = rb;
    s(&a);
    s(&b);
    if (getenv("RVMFS_TEST_VERBOSE"))
        fprintf(stderr, "--- %s ---\n%s", dir, b.buf);
    if (strcmp(a.buf, b.buf) != 0) {
        fprintf(stderr, "--- plain directory ---\n%s--- rvmfs ---\n%s", a.buf, b.buf);
        fail_msg("rvmfs differs from a plain directory in %s", dir);
    }
    free(a.buf);
    free(b.buf);
}

static void sc_write_pwrite_read(struct trace *t)
{
    int fd = open(P(t, "f"), O_RDWR | O_CREAT | O_EXCL, 0640);
    tr(t, "open %d", fd >= 0);
    R(t, "write", write(fd, "hello", 5));
    R(t, "pwrite hole", pwrite(fd, "world", 5, 100));
    R(t, "pwrite inside", pwrite(fd, "HE", 2, 0));
    char buf[200];
    R(t, "pread all", pread(fd, buf, sizeof(buf), 0));
    R(t, "pread past end", pread(fd, buf, 10, 1000));
    R(t, "lseek end", lseek(fd, 0, SEEK_END));
    R(t, "write at end", write(fd, "!", 1));
    close(fd);
    rec_file(t, "f");
    R(t, "open excl again", open(P(t, "f"), O_RDWR | O_CREAT | O_EXCL, 0640));
    fd = open(P(t, "f"), O_WRONLY | O_APPEND);
    R(t, "append", write(fd, "tail", 4));
    close(fd);
    rec_file(t, "f");
    fd = open(P(t, "f"), O_WRONLY | O_TRUNC);
    close(fd);
    rec_file(t, "f");
}

static void sc_truncate(struct trace *t)
{
    int fd = open(P(t, "f"), O_RDWR | O_CREAT, 0644);
    char big[10000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    R(t, "write", write(fd, big, sizeof(big)));
    R(t, "shrink", ftruncate(fd, 3000));
    rec_file(t, "f");
    R(t, "extend", ftruncate(fd, 8000));
    rec_file(t, "f"); /* the bytes past 3000 read as zeros */
    R(t, "truncate by path", truncate(P(t, "f"), 10));
    rec_file(t, "f");
    R(t, "truncate dir", truncate(t->root, 0));
    R(t, "truncate missing", truncate(P(t, "nope"), 0));
    close(fd);
}

static void sc_large(struct trace *t)
{
    size_t len = 3 << 20;
    char *buf = malloc(len);
    uint32_t x = 12345;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (char)(x >> 24);
    }
    int fd = open(P(t, "big"), O_RDWR | O_CREAT, 0644);
    R(t, "write 3M", write(fd, buf, len));
    R(t, "rewrite middle", pwrite(fd, buf, 100000, 1000000));
    close(fd);
    rec_file(t, "big");
    free(buf);
}

static void sc_dirs(struct trace *t)
{
    R(t, "mkdir", mkdir(P(t, "d"), 0750));
    R(t, "mkdir again", mkdir(P(t, "d"), 0750));
    R(t, "mkdir nested", mkdir(P(t, "d/e"), 0755));
    R(t, "mkdir in missing", mkdir(P(t, "x/y"), 0755));
    int fd = open(P(t, "d/e/f"), O_WRONLY | O_CREAT, 0644);
    close(fd);
    R(t, "file as dir", mkdir(P(t, "d/e/f/g"), 0755));
    R(t, "rmdir nonempty", rmdir(P(t, "d")));
    R(t, "rmdir file", rmdir(P(t, "d/e/f")));
    R(t, "unlink dir", unlink(P(t, "d/e")));
    R(t, "open dir for write", open(P(t, "d"), O_WRONLY));
    rec_dir(t, ".");
    rec_dir(t, "d");
    rec_dir(t, "d/e");
    R(t, "unlink", unlink(P(t, "d/e/f")));
    R(t, "rmdir e", rmdir(P(t, "d/e")));
    R(t, "rmdir d", rmdir(P(t, "d")));
    rec_dir(t, ".");
    for (int i = 0; i < 60; i++) {
        char n[32];
        snprintf(n, sizeof(n), "many%02d", i);
        close(open(P(t, n), O_WRONLY | O_CREAT, 0644));
    }
    rec_dir(t, ".");
}

static void sc_rename_unlink(struct trace *t)
{
    mkdir(P(t, "a"), 0755);
    mkdir(P(t, "b"), 0755);
    int fd = open(P(t, "a/x"), O_RDWR | O_CREAT, 0644);
    R(t, "write x", write(fd, "xxxx", 4));
    int fd2 = open(P(t, "b/y"), O_RDWR | O_CREAT, 0644);
    R(t, "write y", write(fd2, "yy", 2));
    R(t, "rename across dirs", rename(P(t, "a/x"), P(t, "b/x")));
    R(t, "write after rename", pwrite(fd, "X", 1, 0));
    rec_file(t, "b/x");
    R(t, "noreplace", renameat2(AT_FDCWD, P(t, "b/x"), AT_FDCWD, P(t, "b/y"),
                                RENAME_NOREPLACE));
    R(t, "rename over", rename(P(t, "b/x"), P(t, "b/y")));
    char buf[16];
    R(t, "read replaced fd", pread(fd2, buf, sizeof(buf), 0));
    rec_file(t, "b/y");
    rec_dir(t, "b");
    R(t, "rename missing", rename(P(t, "b/x"), P(t, "b/z")));
    R(t, "exchange", renameat2(AT_FDCWD, P(t, "a"), AT_FDCWD, P(t, "b"),
                               RENAME_EXCHANGE));
    rec_dir(t, "a");
    R(t, "unlink open file", unlink(P(t, "a/y")));
    R(t, "read unlinked", pread(fd, buf, sizeof(buf), 0));
    R(t, "write unlinked", pwrite(fd, "zz", 2, 10));
    R(t, "open unlinked", open(P(t, "a/y"), O_RDONLY));
    close(fd);
    close(fd2);
    rec_dir(t, "a");
}

static void sc_links(struct trace *t)
{
    int fd = open(P(t, "f"), O_RDWR | O_CREAT, 0644);
    R(t, "write", write(fd, "data", 4));
    close(fd);
    R(t, "symlink", symlink("f", P(t, "s")));
    R(t, "symlink dangling", symlink("nowhere", P(t, "dangling")));
    char buf[64] = "";
    R(t, "readlink", readlink(P(t, "s"), buf, sizeof(buf)));
    tr(t, "target %s", buf);
    R(t, "readlink file", readlink(P(t, "f"), buf, sizeof(buf)));
    rec_file(t, "s");
    R(t, "open dangling", open(P(t, "dangling"), O_RDONLY));
    struct stat st;
    R(t, "lstat symlink", lstat(P(t, "s"), &st));
    tr(t, "is link %d size %lld", S_ISLNK(st.st_mode), (long long)st.st_size);
    R(t, "link", link(P(t, "f"), P(t, "h")));
    fd = open(P(t, "h"), O_WRONLY);
    R(t, "write via link", pwrite(fd, "DA", 2, 0));
    close(fd);
    rec_file(t, "f");
    R(t, "unlink first", unlink(P(t, "f")));
    rec_file(t, "h");
    rec_dir(t, ".");
}

static void sc_attrs(struct trace *t)
{
    int fd = open(P(t, "f"), O_RDWR | O_CREAT, 0600);
    R(t, "write", write(fd, "data", 4));
    R(t, "chmod", chmod(P(t, "f"), 0604));
    R(t, "fchmod", fchmod(fd, 0640));
    struct timespec ts[2] = {{1000000000, 5}, {1100000000, 7}};
    R(t, "utimens", futimens(fd, ts));
    struct stat st;
    R(t, "fstat", fstat(fd, &st));
    tr(t, "mode %o atime %ld mtime %ld.%09ld size %lld", st.st_mode,
       (long)st.st_atim.tv_sec, (long)st.st_mtim.tv_sec,
       (long)st.st_mtim.tv_nsec, (long long)st.st_size);
    R(t, "chmod dir", chmod(t->root, 0711));
    R(t, "stat dir", stat(t->root, &st));
    tr(t, "dir mode %o", st.st_mode);
    chmod(t->root, 0755);
    R(t, "stat missing", stat(P(t, "missing"), &st));
    close(fd);
    struct statvfs sv;
    R(t, "statvfs", statvfs(t->root, &sv) == 0 && sv.f_bsize > 0);
}

/* fsx-like: random writes, truncations, reads and writes through a shared
 * mapping, the same sequence on both sides. */
static void sc_random(struct trace *t)
{
    enum { MAXLEN = 1 << 20, OPS = 3000 };
    int fd = open(P(t, "r"), O_RDWR | O_CREAT, 0644);
    char *map = mmap(NULL, MAXLEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    static char buf[65536];
    if (map == MAP_FAILED)
        fail_msg("mmap failed");
    uint32_t x = 777;
    off_t size = 0;
#define RND() (x = x * 1103515245u + 12345u, x >> 8)
    for (int op = 0; op < OPS; op++) {
        uint32_t r = RND() % 10;
        off_t off = RND() % MAXLEN;
        size_t len = 1 + RND() % 65536;
        if (off + (off_t)len > MAXLEN)
            len = (size_t)(MAXLEN - off);
        if (r < 4) {
            memset(buf, (int)(RND() & 0xff), len);
            buf[0] = (char)op;
            R(t, "pwrite", pwrite(fd, buf, len, off));
            if (off + (off_t)len > size)
                size = off + (off_t)len;
        } else if (r < 5) {
            off_t ns = RND() % 5 ? RND() % MAXLEN : 0;
            R(t, "ftruncate", ftruncate(fd, ns));
            size = ns;
        } else if (r < 8) {
            ssize_t n = pread(fd, buf, len, off);
            uint32_t h = 2166136261u;
            for (ssize_t i = 0; i < n; i++)
                h = (h ^ (uint8_t)buf[i]) * 16777619u;
            tr(t, "pread %zd %08x", n, h);
        } else if (r < 9 && size > 0) {
            off_t o = RND() % size;
            size_t l = 1 + RND() % 4096;
            if (o + (off_t)l > size)
                l = (size_t)(size - o);
            memset(map + o, (int)(RND() & 0xff), l);
        } else {
            R(t, "msync", msync(map, MAXLEN, MS_SYNC));
        }
    }
#undef RND
    R(t, "msync", msync(map, MAXLEN, MS_SYNC));
    munmap(map, MAXLEN);
    close(fd);
    rec_file(t, "r");
}

static void test_random_operations_like_plain_fs(void **s)
{
    (void)s;
    run_both(sc_random, "random");
}

static void test_write_pwrite_read_like_plain_fs(void **s)
{
    (void)s;
    run_both(sc_write_pwrite_read, "rw");
}

static void test_truncate_like_plain_fs(void **s)
{
    (void)s;
    run_both(sc_truncate, "trunc");
}

static void test_large_files_like_plain_fs(void **s)
{
    (void)s;
    run_both(sc_large, "large");
}

static void test_directories_and_readdir_like_plain_fs(void **s)
{
    (void)s;
    run_both(sc_dirs, "dirs");
}

static void test_rename_and_unlink_like_plain_fs(void **s)
{
    (void)s;
    run_both(sc_rename_unlink, "rename");
}

static void test_symlinks_and_hard_links_like_plain_fs(void **s)
{
    (void)s;
    run_both(sc_links, "links");
}

static void test_chmod_utimens_statfs_like_plain_fs(void **s)
{
    (void)s;
    run_both(sc_attrs, "attrs");
}

static void test_everything_survives_remount(void **s)
{
    (void)s;
    /* the scenarios above left their files; a clean unmount and a new
     * mount must show exactly the same tree and bytes */
    struct trace a = {NULL, 0, 0, M.mnt}, b = {NULL, 0, 0, M.mnt};
    const char *files[] = {"rw/f", "trunc/f", "large/big", "rename/b/y",
                           "links/h", "attrs/f", "random/r"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        rec_file(&a, files[i]);
    rec_dir(&a, "dirs");
    rec_dir(&a, "rename/a");
    assert_int_equal(rmount_stop(&M), 0);
    assert_int_equal(rmount_start(&M), 0);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        rec_file(&b, files[i]);
    rec_dir(&b, "dirs");
    rec_dir(&b, "rename/a");
    assert_string_equal(a.buf, b.buf);
    free(a.buf);
    free(b.buf);
}

static int setup(void **state)
{
    (void)state;
    if (rmount_init(&M, NULL) < 0 || rmount_start(&M) < 0)
        return -1;
    snprintf(plain, sizeof(plain), "%s/plain", M.dir);
    return mkdir(plain, 0755);
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

int main(void)
{
    rmount_require_fuse();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_pwrite_read_like_plain_fs),
        cmocka_unit_test(test_truncate_like_plain_fs),
        cmocka_unit_test(test_large_files_like_plain_fs),
        cmocka_unit_test(test_directories_and_readdir_like_plain_fs),
        cmocka_unit_test(test_rename_and_unlink_like_plain_fs),
        cmocka_unit_test(test_symlinks_and_hard_links_like_plain_fs),
        cmocka_unit_test(test_chmod_utimens_statfs_like_plain_fs),
        cmocka_unit_test(test_random_operations_like_plain_fs),
        cmocka_unit_test(test_everything_survives_remount),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
