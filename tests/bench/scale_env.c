/*
 * scale_env.c - the work directory, the rvmfs daemon and its memory,
 * timing, and dropping the page cache, for the scale benchmark.
 *
 * The daemon runs with -f in its own process group, output to
 * WORK/daemon.log.  sc_env_cleanup() runs at every exit: it unmounts,
 * kills a daemon that does not stop, detaches the mount lazily as a last
 * resort, and removes the work directory (64 GiB sparse segments, 1 GiB
 * logs: nothing big is left behind).
 */
#include "scale.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
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

static struct sc_env *the_env;

double sc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static bool is_fuse(const char *path)
{
    struct statfs sf;
    return statfs(path, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC;
}

int sc_run(char *const argv[], bool quiet)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (quiet) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
            }
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int fusermount_u(const char *mnt, bool lazy)
{
    char *lz[] = {"fusermount3", "-u", "-z", (char *)mnt, NULL};
    char *plain[] = {"fusermount3", "-u", (char *)mnt, NULL};
    return sc_run(lazy ? lz : plain, true);
}

int sc_env_setup(struct sc_env *e, const char *dir, const char *daemon)
{
    struct statfs sf;
    memset(e, 0, sizeof *e);
    e->daemon = daemon;
    if (statfs(dir, &sf) < 0) {
        fprintf(stderr, "scale: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    if (sf.f_type == TMPFS_MAGIC) {
        fprintf(stderr, "scale: %s is in memory (tmpfs); give a directory "
                "on a disk with --dir\n", dir);
        return -1;
    }
    snprintf(e->work, sizeof e->work, "%s/rvmfs-scale.XXXXXX", dir);
    if (!mkdtemp(e->work)) {
        fprintf(stderr, "scale: mkdtemp in %s: %s\n", dir, strerror(errno));
        return -1;
    }
    the_env = e;
    snprintf(e->store, sizeof e->store, "%s/store", e->work);
    snprintf(e->mnt, sizeof e->mnt, "%s/mnt", e->work);
    snprintf(e->plain, sizeof e->plain, "%s/plain", e->work);
    snprintf(e->daemon_log, sizeof e->daemon_log, "%s/daemon.log", e->work);
    if (mkdir(e->mnt, 0755) < 0 || mkdir(e->plain, 0755) < 0) {
        fprintf(stderr, "scale: mkdir in %s: %s\n", e->work, strerror(errno));
        return -1;
    }
    return 0;
}

int sc_daemon_start(struct sc_env *e, const char *opts, double *secs)
{
    double t0 = sc_now();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "scale: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(e->daemon_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (opts && opts[0])
            execl(e->daemon, "rvmfs", e->store, e->mnt, "-f", "-o", opts,
                  (char *)NULL);
        else
            execl(e->daemon, "rvmfs", e->store, e->mnt, "-f", (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", e->daemon, strerror(errno));
        _exit(127);
    }
    e->daemon_pid = pid;
    /* Polled every 0.2 ms: the mount time is a figure of this benchmark. */
    for (int i = 0; i < 300000; i++) { /* up to 60 s (recovery) */
        if (is_fuse(e->mnt)) {
            e->mounted = true;
            if (secs)
                *secs = sc_now() - t0;
            return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            e->daemon_pid = 0;
            fprintf(stderr, "scale: the daemon exited before mounting\n");
            sc_dump_daemon_log(e);
            return -1;
        }
        sleep_us(200);
    }
    fprintf(stderr, "scale: %s did not mount in 60 s\n", e->mnt);
    sc_dump_daemon_log(e);
    return -1;
}

int sc_daemon_stop(struct sc_env *e)
{
    if (!e->daemon_pid)
        return -1;
    for (int i = 0; i < 500 && e->mounted; i++) {
        if (fusermount_u(e->mnt, false) == 0 || !is_fuse(e->mnt))
            e->mounted = false;
        else
            sleep_us(20000); /* busy: a descriptor is still being closed */
    }
    int st = 0;
    for (int i = 0; i < 30000; i++) { /* up to 300 s: it truncates the log */
        if (waitpid(e->daemon_pid, &st, WNOHANG) == e->daemon_pid) {
            e->daemon_pid = 0;
            if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                return 0;
            fprintf(stderr, "scale: the daemon ended with %s %d\n",
                    WIFEXITED(st) ? "status" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            return -1;
        }
        sleep_us(10000);
    }
    fprintf(stderr, "scale: the daemon did not stop in 300 s; killing it\n");
    sc_daemon_kill(e);
    return -1;
}

void sc_daemon_kill(struct sc_env *e)
{
    if (e->daemon_pid) {
        kill(e->daemon_pid, SIGKILL);
        waitpid(e->daemon_pid, NULL, 0);
        e->daemon_pid = 0;
    }
    if (is_fuse(e->mnt))
        fusermount_u(e->mnt, true);
    e->mounted = false;
}

void sc_dump_daemon_log(const struct sc_env *e)
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

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)f;
    if ((flag == FTW_DP ? rmdir(p) : unlink(p)) < 0 && errno != ENOENT)
        fprintf(stderr, "scale: cannot remove %s: %s\n", p, strerror(errno));
    return 0;
}

void sc_env_cleanup(bool keep)
{
    struct sc_env *e = the_env;
    if (!e)
        return;
    the_env = NULL;
    sc_mem_stop();
    if (e->daemon_pid && sc_daemon_stop(e) != 0)
        sc_daemon_kill(e);
    if (is_fuse(e->mnt)) {
        fprintf(stderr, "scale: %s still mounted: lazy unmount\n", e->mnt);
        fusermount_u(e->mnt, true);
    }
    if (keep)
        fprintf(stderr, "scale: kept %s\n", e->work);
    else if (!is_fuse(e->mnt))
        nftw(e->work, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the daemon's memory ---- */

void sc_mem_sample(pid_t pid, struct sc_mem *m)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    unsigned long long v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %llu", &v) == 1 && v > m->rss_max_kb)
            m->rss_max_kb = v;
        else if (sscanf(line, "RssAnon: %llu", &v) == 1 && v > m->anon_max_kb)
            m->anon_max_kb = v;
        else if (sscanf(line, "VmHWM: %llu", &v) == 1)
            m->hwm_kb = v;
    }
    fclose(f);
    m->samples++;
}

static struct {
    pthread_t thr;
    bool running;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop;
    pid_t pid;
    struct sc_mem *m;
} sampler = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *sampler_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&sampler.mu);
    while (!sampler.stop) {
        sc_mem_sample(sampler.pid, sampler.m);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&sampler.cond, &sampler.mu, &until);
    }
    pthread_mutex_unlock(&sampler.mu);
    return NULL;
}

int sc_mem_start(pid_t pid, struct sc_mem *m)
{
    memset(m, 0, sizeof *m);
    sampler.pid = pid;
    sampler.m = m;
    sampler.stop = false;
    if (pthread_create(&sampler.thr, NULL, sampler_main, NULL) != 0)
        return -1;
    sampler.running = true;
    return 0;
}

void sc_mem_stop(void)
{
    if (!sampler.running)
        return;
    pthread_mutex_lock(&sampler.mu);
    sampler.stop = true;
    pthread_cond_signal(&sampler.cond);
    pthread_mutex_unlock(&sampler.mu);
    pthread_join(sampler.thr, NULL);
    sampler.running = false;
    sc_mem_sample(sampler.pid, sampler.m);
}

/* ---- the disk ---- */

int sc_drop_caches(void)
{
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, "3\n", 2);
    close(fd);
    return n == 2 ? 0 : -1;
}

double sc_read_rate(const char *path, size_t bs, uint64_t *len)
{
    char *buf = malloc(bs);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (!buf || fd < 0) {
        free(buf);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    uint64_t total = 0;
    double t0 = sc_now();
    ssize_t n;
    while ((n = read(fd, buf, bs)) > 0)
        total += (uint64_t)n;
    double t = sc_now() - t0;
    close(fd);
    free(buf);
    if (len)
        *len = total;
    return n < 0 || t <= 0 ? -1 : (double)total / t / 1e6;
}
