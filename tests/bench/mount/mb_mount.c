/*
 * mb_mount.c - the work directory, the rvmfs daemon, and clean-up.
 *
 * The daemon runs with -f in its own process group (so that a ^C reaches
 * the benchmark, which unmounts in order), its stdout and stderr in
 * WORK/daemon.log.  mb_env_cleanup() runs at every exit: it unmounts with
 * fusermount3 -u, kills the daemon if it does not stop, detaches the mount
 * lazily as a last resort, and removes the work directory.
 */
#include "mb.h"

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
#include <time.h>
#include <unistd.h>

#define FUSE_SUPER_MAGIC 0x65735546
#define TMPFS_MAGIC 0x01021994
#define RAMFS_MAGIC 0x858458f6

static struct mb_env *the_env; /* for mb_env_cleanup() at exit */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static bool is_fuse(const char *path)
{
    struct statfs sf;
    return statfs(path, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC;
}

/* Run fusermount3 ARG MNT [ARG2], stderr to /dev/null; its exit status. */
static int fusermount(const char *a, const char *b, const char *mnt)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (b)
            execlp("fusermount3", "fusermount3", a, b, mnt, (char *)NULL);
        else
            execlp("fusermount3", "fusermount3", a, mnt, (char *)NULL);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int mb_env_setup(struct mb_env *e, const char *dir)
{
    struct statfs sf;
    if (statfs(dir, &sf) < 0) {
        fprintf(stderr, "mount_bench: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC) {
        fprintf(stderr, "mount_bench: %s is in memory (tmpfs); give a "
                "directory on a disk with --dir\n", dir);
        return -1;
    }
    snprintf(e->work, sizeof e->work, "%s/rvmfs-mbench.XXXXXX", dir);
    if (!mkdtemp(e->work)) {
        fprintf(stderr, "mount_bench: mkdtemp in %s: %s\n", dir, strerror(errno));
        return -1;
    }
    the_env = e;
    snprintf(e->plain, sizeof e->plain, "%s/plain", e->work);
    snprintf(e->store, sizeof e->store, "%s/store", e->work);
    snprintf(e->mnt, sizeof e->mnt, "%s/mnt", e->work);
    snprintf(e->daemon_log, sizeof e->daemon_log, "%s/daemon.log", e->work);
    if (mkdir(e->plain, 0755) < 0 || mkdir(e->store, 0755) < 0 ||
        mkdir(e->mnt, 0755) < 0) {
        fprintf(stderr, "mount_bench: mkdir in %s: %s\n", e->work, strerror(errno));
        return -1;
    }
    struct stat a, b;
    if (stat(e->plain, &a) == 0 && stat(e->store, &b) == 0 && a.st_dev != b.st_dev) {
        fprintf(stderr, "mount_bench: %s and %s are on different devices\n",
                e->plain, e->store);
        return -1;
    }
    return 0;
}

int mb_daemon_start(struct mb_env *e)
{
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "mount_bench: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(e->daemon_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (e->mount_opts && e->mount_opts[0])
            execl(e->daemon, "rvmfs", e->store, e->mnt, "-f", "-o",
                  e->mount_opts, (char *)NULL);
        else
            execl(e->daemon, "rvmfs", e->store, e->mnt, "-f", (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", e->daemon, strerror(errno));
        _exit(127);
    }
    e->daemon_pid = pid;
    for (int i = 0; i < 2000; i++) { /* up to 10 s */
        if (is_fuse(e->mnt)) {
            e->mounted = true;
            return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            e->daemon_pid = 0;
            fprintf(stderr, "mount_bench: the daemon exited before mounting\n");
            mb_dump_daemon_log(e);
            return -1;
        }
        sleep_ms(5);
    }
    fprintf(stderr, "mount_bench: %s did not mount in 10 s\n", e->mnt);
    mb_dump_daemon_log(e);
    return -1;
}

/* Unmount and wait for the daemon's orderly exit (it flushes and
 * truncates the log).  0 when it exited with status 0. */
int mb_daemon_stop(struct mb_env *e)
{
    if (!e->daemon_pid)
        return -1;
    for (int i = 0; i < 100 && e->mounted; i++) {
        if (fusermount("-u", NULL, e->mnt) == 0 || !is_fuse(e->mnt))
            e->mounted = false;
        else
            sleep_ms(20); /* busy: a descriptor is still being closed */
    }
    int st = 0;
    for (int i = 0; i < 6000; i++) { /* up to 60 s */
        if (waitpid(e->daemon_pid, &st, WNOHANG) == e->daemon_pid) {
            e->daemon_pid = 0;
            if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                return 0;
            fprintf(stderr, "mount_bench: the daemon ended with %s %d\n",
                    WIFEXITED(st) ? "status" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            return -1;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "mount_bench: the daemon did not stop in 60 s; killing it\n");
    kill(e->daemon_pid, SIGKILL);
    waitpid(e->daemon_pid, NULL, 0);
    e->daemon_pid = 0;
    return -1;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)f;
    if ((flag == FTW_DP ? rmdir(p) : unlink(p)) < 0 && errno != ENOENT)
        fprintf(stderr, "mount_bench: cannot remove %s: %s\n", p, strerror(errno));
    return 0;
}

void mb_env_cleanup(bool keep)
{
    struct mb_env *e = the_env;
    if (!e)
        return;
    the_env = NULL;
    mb_rvm_stop(e);
    if (e->daemon_pid && mb_daemon_stop(e) != 0 && e->daemon_pid) {
        kill(e->daemon_pid, SIGKILL);
        waitpid(e->daemon_pid, NULL, 0);
        e->daemon_pid = 0;
    }
    if (is_fuse(e->mnt)) {
        fprintf(stderr, "mount_bench: %s still mounted: lazy unmount\n", e->mnt);
        fusermount("-u", "-z", e->mnt);
    }
    if (keep)
        fprintf(stderr, "mount_bench: kept %s\n", e->work);
    else if (!is_fuse(e->mnt))
        nftw(e->work, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void mb_dump_daemon_log(const struct mb_env *e)
{
    char line[512];
    FILE *f = fopen(e->daemon_log, "r");
    if (!f)
        return;
    fprintf(stderr, "--- %s ---\n", e->daemon_log);
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

int mb_make_file(const char *path)
{
    static unsigned char chunk[MB_MAP];
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        goto fail;
    memset(chunk, 0x5a, sizeof chunk);
    for (unsigned off = 0; off < MB_FILE; off += sizeof chunk)
        if (pwrite(fd, chunk, sizeof chunk, off) != (ssize_t)sizeof chunk)
            goto fail_fd;
    if (fsync(fd) < 0)
        goto fail_fd;
    return close(fd) < 0 ? -1 : 0;
fail_fd:
    close(fd);
fail:
    fprintf(stderr, "mount_bench: cannot make %s: %s\n", path, strerror(errno));
    return -1;
}
