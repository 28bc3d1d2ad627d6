/* mount_util.c - see mount_util.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "mount_util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define FUSE_SUPER_MAGIC 0x65735546

#define URING_PARAM "/sys/module/fuse/parameters/enable_uring"

bool rmount_uring(void)
{
    const char *u = getenv("RVMFS_TEST_URING");
    return u && *u && strcmp(u, "0") != 0;
}

/* The daemon asks for io_uring only with -o uring, so turning the kernel's
 * switch on changes nothing for other mounts. */
static void require_uring(void)
{
    char v = 0;
    FILE *f = fopen(URING_PARAM, "r");
    if (!f) {
        printf("SKIP: this kernel has no FUSE over io_uring (%s)\n", URING_PARAM);
        exit(77);
    }
    if (fread(&v, 1, 1, f) != 1)
        v = 0;
    fclose(f);
    if (v == 'Y')
        return;
    f = fopen(URING_PARAM, "w");
    if (!f || fputs("Y\n", f) == EOF || fclose(f) != 0) {
        printf("SKIP: FUSE over io_uring is off and cannot be turned on (%s)\n",
               URING_PARAM);
        exit(77);
    }
    printf("note: turned on %s for the -o uring mounts\n", URING_PARAM);
}

void rmount_require_fuse(void)
{
    if (access("/dev/fuse", R_OK | W_OK) != 0) {
        printf("SKIP: /dev/fuse is not usable here\n");
        exit(77);
    }
    if (!getenv("RVMFS_BIN")) {
        printf("SKIP: RVMFS_BIN is not set (run through meson test)\n");
        exit(77);
    }
    if (rmount_uring())
        require_uring();
}

/* With RVMFS_TEST_URING the test is about the io_uring transport: a mount
 * that fell back to /dev/fuse would pass without testing it. */
static int check_transport(const struct rmount *m)
{
    if (!rmount_uring())
        return 0;
    char buf[8192];
    for (int i = 0; i < 200; i++) {
        ssize_t n = getxattr(m->mnt, "user.rvm.stat", buf, sizeof(buf) - 1);
        if (n > 0) {
            buf[n] = 0;
            if (strstr(buf, "transport=io_uring\n"))
                return 0;
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "mount_util: %s is not served over io_uring\n", m->mnt);
    return -1;
}

int rmount_init(struct rmount *m, const char *opts)
{
    memset(m, 0, sizeof(*m));
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(m->dir, sizeof(m->dir), "%s/rvmfs-test.XXXXXX", tmp);
    if (!mkdtemp(m->dir))
        return -1;
    snprintf(m->store, sizeof(m->store), "%s/store", m->dir);
    snprintf(m->mnt, sizeof(m->mnt), "%s/mnt", m->dir);
    const char *sep = opts && *opts ? "," : "";
    if (rmount_uring())
        snprintf(m->opts, sizeof(m->opts), "%s%suring", opts ? opts : "", sep);
    else
        snprintf(m->opts, sizeof(m->opts), "%s", opts ? opts : "");
    return mkdir(m->mnt, 0755);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static bool mounted(const char *mnt)
{
    struct statfs sf;
    return statfs(mnt, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC;
}

int rmount_spawn(struct rmount *m)
{
    char log[PATH_MAX];
    snprintf(log, sizeof(log), "%s/daemon.log", m->dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        const char *bin = getenv("RVMFS_BIN");
        if (m->opts[0])
            execl(bin, "rvmfs", m->store, m->mnt, "-f", "-o", m->opts, (char *)NULL);
        else
            execl(bin, "rvmfs", m->store, m->mnt, "-f", (char *)NULL);
        _exit(127);
    }
    m->pid = pid;
    return 0;
}

int rmount_start(struct rmount *m)
{
    if (rmount_spawn(m) < 0)
        return -1;
    pid_t pid = m->pid;
    for (int i = 0; i < 1000; i++) {
        if (mounted(m->mnt)) {
            if (check_transport(m) == 0)
                return 0;
            rmount_dump_log(m);
            return -1;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            m->pid = 0;
            rmount_dump_log(m);
            return -1;
        }
        sleep_ms(5);
    }
    rmount_kill(m);
    return -1;
}

static int run(const char *a, const char *b, const char *c, const char *d)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 2);
        execlp(a, a, b, c, d, (char *)NULL);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int rmount_stop(struct rmount *m)
{
    if (!m->pid)
        return -1;
    for (int i = 0; i < 200 && run("fusermount3", "-u", m->mnt, NULL) != 0; i++)
        sleep_ms(20); /* busy: a test's child may still close its files */
    int st = 0;
    /* the daemon flushes and truncates, then exits */
    for (int i = 0; i < 3000; i++) {
        if (waitpid(m->pid, &st, WNOHANG) == m->pid) {
            m->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        sleep_ms(10);
    }
    rmount_kill(m);
    return -1;
}

void rmount_kill(struct rmount *m)
{
    if (m->pid) {
        kill(m->pid, SIGKILL);
        waitpid(m->pid, NULL, 0);
        m->pid = 0;
    }
    run("fusermount3", "-u", "-z", m->mnt);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)f;
    return (flag == FTW_DP ? rmdir(p) : unlink(p)) < 0 && errno != ENOENT ? -1 : 0;
}

int rm_rf(const char *path)
{
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void rmount_cleanup(struct rmount *m)
{
    if (!m->dir[0])
        return;
    if (m->pid && rmount_stop(m) != 0)
        rmount_kill(m);
    if (mounted(m->mnt))
        run("fusermount3", "-u", "-z", m->mnt);
    rm_rf(m->dir);
    m->dir[0] = 0;
}

const char *rmount_path(const struct rmount *m, const char *name, char *buf)
{
    snprintf(buf, PATH_MAX, "%s/%s", m->mnt, name);
    return buf;
}

void rmount_dump_log(const struct rmount *m)
{
    char log[PATH_MAX], line[512];
    snprintf(log, sizeof(log), "%s/daemon.log", m->dir);
    FILE *f = fopen(log, "r");
    if (!f)
        return;
    fprintf(stderr, "--- rvmfs daemon log ---\n");
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fclose(f);
}
