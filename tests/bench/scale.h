/*
 * scale.h - the scale benchmark (issue 7): segments larger than memory,
 * big logs, fast recovery.
 *
 * scale.c      options, the four cells (big, mount, recover, seq), the
 *              RESULT line;
 * scale_rec.c  the recovery cell: a full log made and recovered by librvm
 *              in child processes, against a plain read of the same file;
 * scale_env.c  the work directory, the rvmfs daemon, its memory, timing,
 *              dropping the page cache, clean-up on every exit.
 */
#ifndef SCALE_H
#define SCALE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct sc_env {
    char work[PATH_MAX - 64];   /* DIR/rvmfs-scale.XXXXXX */
    char store[PATH_MAX];       /* work/store */
    char mnt[PATH_MAX];         /* work/mnt */
    char plain[PATH_MAX];       /* work/plain: files written without rvmfs */
    char daemon_log[PATH_MAX];  /* work/daemon.log */
    const char *daemon;         /* the rvmfs binary */
    pid_t daemon_pid;           /* 0: not running */
    bool mounted;
};

/* The daemon's memory, sampled from /proc/PID/status. */
struct sc_mem {
    uint64_t rss_max_kb;        /* largest VmRSS seen */
    uint64_t anon_max_kb;       /* largest RssAnon seen */
    uint64_t hwm_kb;            /* VmHWM at the last sample */
    uint64_t samples;
};

double sc_now(void);
/* 0, or -1 with a message on stderr. */
int sc_env_setup(struct sc_env *e, const char *dir, const char *daemon);
/* Start the daemon with -o opts (NULL: none) and wait for the mount;
 * *secs (if not NULL) is the time from fork to the mount showing up. */
int sc_daemon_start(struct sc_env *e, const char *opts, double *secs);
/* fusermount3 -u and wait for the daemon's orderly exit; 0 if it exited 0. */
int sc_daemon_stop(struct sc_env *e);
/* SIGKILL the daemon (a crash) and detach the dead mount. */
void sc_daemon_kill(struct sc_env *e);
void sc_dump_daemon_log(const struct sc_env *e);
/* Unmount, stop the daemon, remove the work directory unless keep;
 * safe to call twice and from atexit. */
void sc_env_cleanup(bool keep);

/* Sample the daemon's memory every 100 ms in a thread until stopped. */
int sc_mem_start(pid_t pid, struct sc_mem *m);
void sc_mem_stop(void);
/* One sample now, into m (max fields updated). */
void sc_mem_sample(pid_t pid, struct sc_mem *m);

/* sync, then echo 3 > /proc/sys/vm/drop_caches; 0 or -1 (not root). */
int sc_drop_caches(void);
/* Read path with `bs`-byte read()s; MB/s (1e6 bytes), bytes in *len. */
double sc_read_rate(const char *path, size_t bs, uint64_t *len);
/* Run argv, wait; its exit status or -1. */
int sc_run(char *const argv[], bool quiet);

/* scale_rec.c: the recovery cell; fills res[] (see scale.c). */
struct sc_rec_result {
    const char *shape;
    uint64_t log_size, log_used, records;
    double fill_s;
    double read_mbs_before, read_mbs_after; /* plain read of the log */
    double recover_s, recover_lib_s;        /* wall, and librvm's count */
    double durable_s;   /* after recovery, until the segments are synced and the log freed */
    double mbs, ratio;
    double mbs_durable, ratio_durable;      /* counting durable_s too */
    bool verified;
};
int sc_rec_run(struct sc_env *e, const char *shape, uint64_t log_mib,
               struct sc_rec_result *r);

#endif
