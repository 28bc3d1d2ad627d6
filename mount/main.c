/*
 * main.c - rvmfs: options, store creation, recovery, the session loop and
 * the orderly stop.
 *
 * Order of start-up:
 *   1. parse options; create the store if it does not exist;
 *   2. recover (rvm_initialize replays the log), remove orphan segments
 *      while the log is empty, and rvm_terminate: errors are reported on
 *      the terminal before anything is mounted;
 *   3. mount and daemonize;
 *   4. in the init callback, i.e. after the fork, initialize librvm again
 *      and create the RCU tables and background threads (threads, and
 *      liburcu's call_rcu workers, do not survive fork).
 * Stop (fusermount3 -u, SIGINT, SIGTERM): abort active transactions,
 * flush, truncate the log, unmap, rvm_terminate, exit 0.
 */
#include "daemon.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <stdarg.h>
#include <sys/resource.h>
#include <syslog.h>
#include <unistd.h>

#ifndef RVMFS_VERSION
#define RVMFS_VERSION "0.1.0"
#endif

struct rvmfs fs = {.store_fd = -1, .tree_fd = -1, .seg_fd = -1};
static bool to_syslog;

void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (to_syslog) {
        vsyslog(LOG_ERR, fmt, ap);
    } else {
        fputs("rvmfs: ", stderr);
        vfprintf(stderr, fmt, ap);
    }
    va_end(ap);
}

static void fuse_say(enum fuse_log_level level, const char *fmt, va_list ap)
{
    if (to_syslog)
        vsyslog(level, fmt, ap);
    else
        vfprintf(stderr, fmt, ap);
}

struct cfg {
    char *store;
    char *log;
    char *logsize;
    unsigned truncate;
    unsigned flush_interval;
    unsigned txn_timeout;
    unsigned poll_us;
    int uring;
    unsigned uring_threads;
    int set_truncate, set_flush, set_uring_threads;
};

#define OPT(t, p) {t, offsetof(struct cfg, p), 1}
static const struct fuse_opt cfg_spec[] = {
    OPT("log=%s", log),
    OPT("logsize=%s", logsize),
    OPT("truncate=%u", truncate),
    {"truncate=", offsetof(struct cfg, set_truncate), 1},
    OPT("flush_interval=%u", flush_interval),
    {"flush_interval=", offsetof(struct cfg, set_flush), 1},
    OPT("txn_timeout=%u", txn_timeout),
    OPT("poll_us=%u", poll_us),
    {"uring", offsetof(struct cfg, uring), 1},
    OPT("uring_threads=%u", uring_threads),
    {"uring_threads=", offsetof(struct cfg, set_uring_threads), 1},
    FUSE_OPT_END,
};

static int cfg_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
    (void)out;
    struct cfg *c = data;
    if (key == FUSE_OPT_KEY_NONOPT && !c->store) {
        c->store = strdup(arg);
        return 0; /* ours: the store; the next one is the mountpoint */
    }
    return 1;
}

static void usage(const char *prog)
{
    printf("usage: %s STORE MOUNTPOINT [options]\n\n"
           "Mount the rvmfs store STORE (created if missing) on MOUNTPOINT.\n\n"
           "rvmfs options:\n"
           "    -o log=PATH            log file (default STORE/rvm.log)\n"
           "    -o logsize=SIZE        size of a new log, K/M/G suffixes (64M)\n"
           "    -o truncate=PCT        truncate the log when PCT%% full (50)\n"
           "    -o flush_interval=MS   flush no_flush commits every MS ms;\n"
           "                           0: only on fsync/flush (1000)\n"
           "    -o txn_timeout=S       abort transactions idle S seconds (0: never)\n"
           "    -o poll_us=US          poll for the next request US microseconds\n"
           "                           before sleeping (0: never, the default)\n"
           "    -o uring               take requests over io_uring when the kernel\n"
           "                           offers it (fuse enable_uring=Y), else /dev/fuse\n"
           "    -o uring_threads=N     with uring: threads per CPU (8)\n"
           "    -o max_threads=N       worker threads (64 unless given)\n\n",
           prog);
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'B')
        end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static void rvm_opts(rvm_options_t *o)
{
    rvm_init_options(o);
    o->log_dev = fs.log_path;
    o->truncate = fs.truncate_pct;
    o->flags = RVM_ALL_OPTIMIZATIONS | RVM_MAP_PRIVATE;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    /* Every write() must reach the daemon when it is made: no writeback
     * cache.  Cached pages are dropped only when the daemon says so. */
    conn->want &= ~(unsigned)(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_AUTO_INVAL_DATA);
    if (conn->capable & FUSE_CAP_IOCTL_DIR)
        conn->want |= FUSE_CAP_IOCTL_DIR;
    /* A write() outside a transaction is atomic as far as the kernel
     * sends it in one request: up to 1 MiB (FUSE's largest). */
    conn->max_write = 1u << 20;
    rvm_options_t o;
    rvm_opts(&o);
    rvm_return_t rc = RVM_INIT(&o);
    if (rc != RVM_SUCCESS) {
        say("cannot open the log %s: %s %s\n", fs.log_path, rvm_return(rc),
            rvm_errmsg());
        fuse_session_exit(fs.se);
        return;
    }
    fs.rvm_up = true;
    if (nodes_init() < 0 || txns_init() < 0 || bg_start() < 0) {
        say("out of memory or threads at start\n");
        fuse_session_exit(fs.se);
        return;
    }
    fs.threads_up = true;
}

static void shutdown_store(void)
{
    atomic_store(&fs.stopping, true);
    if (fs.threads_up)
        bg_stop();
    if (!fs.rvm_up)
        return;
    rcu_thread_online();
    txn_abort_all();
    /* After the flush every committed transaction is durable; after the
     * truncation it is in its segment file and the log is empty. */
    rvm_return_t rc = rvm_flush();
    if (rc == RVM_SUCCESS)
        rc = rvm_truncate();
    if (rc != RVM_SUCCESS)
        say("final flush failed: %s %s (the log keeps the commits; the "
            "next mount recovers them)\n",
                rvm_return(rc), rvm_errmsg());
    store_orphans_collect();
    nodes_unmap_all();
    rc = rvm_terminate();
    if (rc != RVM_SUCCESS &&
        !(rc == RVM_EUNCOMMIT && atomic_load(&fs.dropped_no_restore)))
        say("rvm_terminate: %s\n", rvm_return(rc));
    fs.rvm_up = false;
    nodes_fini();
    txns_fini();
}

static bool has_opt(struct fuse_args *args, const char *key)
{
    for (int i = 0; i < args->argc; i++)
        if (strstr(args->argv[i], key))
            return true;
    return false;
}

/* Recovery calls this once per window it applies (16 MiB of log), so
 * drawing at every call is cheap; the line is erased when it is done. */
static void recover_progress(uint64_t done, uint64_t total, void *arg)
{
    (void)arg;
    if (done >= total)
        fputs("\r\033[K", stderr);
    else
        fprintf(stderr, "\rrvmfs: recovering the log: %3.0f%% (%.0f of %.0f MiB)",
                total ? 100.0 * (double)done / (double)total : 0.0,
                (double)done / 1048576.0, (double)total / 1048576.0);
}

/* Recover and tidy the store before mounting, so that failures are seen. */
static int recover_now(void)
{
    rvm_options_t o;
    rvm_opts(&o);
    /* A long recovery on a terminal shows how far it is; logs and pipes
     * get no carriage-return noise. */
    if (isatty(STDERR_FILENO))
        rvm_set_progress(recover_progress, NULL);
    rvm_return_t rc = RVM_INIT(&o);
    rvm_set_progress(NULL, NULL);
    if (rc != RVM_SUCCESS) {
        fprintf(stderr, "rvmfs: recovery of %s failed: %s %s; "
                "inspect it with 'rvmctl log %s'\n", fs.store, rvm_return(rc),
                rvm_errmsg(), fs.store);
        return -1;
    }
    store_sweep_orphans(); /* the log is empty now */
    rc = rvm_terminate();
    if (rc != RVM_SUCCESS) {
        fprintf(stderr, "rvmfs: rvm_terminate after recovery: %s\n",
                rvm_return(rc));
        return -1;
    }
    return 0;
}

int main(int argc, char *argv[])
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct cfg cfg = {0};
    struct fuse_cmdline_opts opts;
    int ret = 1;

    if (fuse_opt_parse(&args, &cfg, cfg_spec, cfg_proc) < 0)
        return 2;
    bool max_threads_given = has_opt(&args, "max_threads=");
    if (fuse_parse_cmdline(&args, &opts) != 0)
        return 2;
    if (opts.show_help) {
        usage(argv[0]);
        fuse_cmdline_help();
        fuse_lowlevel_help();
        ret = 0;
        goto out_args;
    }
    if (opts.show_version) {
        printf("rvmfs version %s\n", RVMFS_VERSION);
        fuse_lowlevel_version();
        ret = 0;
        goto out_args;
    }
    if (!cfg.store || !opts.mountpoint) {
        fprintf(stderr, "usage: %s STORE MOUNTPOINT [-f] [-d] [-s] [-o opt,...]"
                " (see --help)\n", argv[0]);
        ret = 2;
        goto out_args;
    }
    fs.log_size = 64ull << 20;
    if (cfg.logsize && parse_size(cfg.logsize, &fs.log_size) < 0) {
        fprintf(stderr, "rvmfs: bad logsize '%s' (use e.g. 64M)\n", cfg.logsize);
        ret = 2;
        goto out_args;
    }
    fs.truncate_pct = cfg.set_truncate ? cfg.truncate : TRUNCATE;
    if (fs.truncate_pct > 100) {
        fprintf(stderr, "rvmfs: truncate=%u: give a percentage 0..100\n",
                fs.truncate_pct);
        ret = 2;
        goto out_args;
    }
    fs.flush_interval_ms = cfg.set_flush ? cfg.flush_interval : 1000;
    fs.txn_timeout_s = cfg.txn_timeout;
    fs.poll_us = cfg.poll_us; /* off unless asked: it pays only on idle CPUs */
    if (fs.poll_us > 1000000) {
        fprintf(stderr, "rvmfs: poll_us=%u: give at most 1000000 (1 s)\n",
                fs.poll_us);
        ret = 2;
        goto out_args;
    }
    fs.singlethread = opts.singlethread;
    fs.uring = cfg.uring && !opts.singlethread;
    fs.uring_threads = cfg.set_uring_threads ? cfg.uring_threads : 8;
    if (fs.uring_threads < 1 || fs.uring_threads > 64) {
        fprintf(stderr, "rvmfs: uring_threads=%u: give 1..64\n", fs.uring_threads);
        ret = 2;
        goto out_args;
    }
    if (cfg.uring && opts.singlethread)
        fprintf(stderr, "rvmfs: -s: uring ignored (it takes threads of its own)\n");
    pthread_mutex_init(&fs.table_mu, NULL);

    if (mkdir(cfg.store, 0755) < 0 && errno != EEXIST) {
        fprintf(stderr, "rvmfs: cannot create store %s: %s\n", cfg.store,
                strerror(errno));
        goto out_args;
    }
    fs.store = realpath(cfg.store, NULL);
    if (!fs.store) {
        fprintf(stderr, "rvmfs: %s: %s\n", cfg.store, strerror(errno));
        goto out_args;
    }
    if (cfg.log) {
        if (cfg.log[0] == '/') {
            fs.log_path = strdup(cfg.log);
        } else {
            char cwd[PATH_MAX];
            fs.log_path = malloc(2 * PATH_MAX + 2);
            if (fs.log_path && getcwd(cwd, sizeof(cwd)))
                snprintf(fs.log_path, 2 * PATH_MAX + 2, "%s/%s", cwd, cfg.log);
        }
    } else if (asprintf(&fs.log_path, "%s/rvm.log", fs.store) < 0) {
        fs.log_path = NULL;
    }
    if (!fs.log_path)
        goto out_args;
    int rc = store_open(fs.store, true, fs.log_size, fs.log_path);
    if (rc == -ENOTEMPTY) {
        fprintf(stderr, "rvmfs: %s is not empty and not an rvmfs store (no "
                "rvmfs.conf); give an empty directory or one made by "
                "'rvmctl init'\n", fs.store);
        goto out_args;
    } else if (rc == -EPROTO) {
        fprintf(stderr, "rvmfs: %s/rvmfs.conf is not version=1: a store of "
                "another version\n", fs.store);
        goto out_args;
    } else if (rc < 0) {
        fprintf(stderr, "rvmfs: cannot open store %s: %s\n", fs.store,
                strerror(-rc));
        goto out_args;
    }
    /* One daemon per store: the lock lives as long as the daemon (the fd
     * survives daemonizing); rvmctl recover checks the same lock. */
    int lockfd = open(fs.log_path, O_RDONLY | O_CLOEXEC);
    if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
        fprintf(stderr, "rvmfs: %s: %s\n", fs.log_path,
                errno == EWOULDBLOCK ? "in use by another rvmfs or rvmctl; "
                                       "unmount it first" : strerror(errno));
        goto out_args;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* one descriptor per open segment/dir */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (recover_now() < 0)
        goto out_args;

    struct fuse_lowlevel_ops ops = {0};
    ops.init = op_init;
    ops.ioctl = ops_ioctl;
    ops_ns_init(&ops);
    ops_file_init(&ops);
    ops_xattr_init(&ops);
    fs.se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
    if (!fs.se)
        goto out_args;
    if (fuse_set_signal_handlers(fs.se) != 0)
        goto out_session;
    if (fuse_session_mount(fs.se, opts.mountpoint) != 0)
        goto out_signals;
    if (chan_attach(fs.se, !opts.singlethread) < 0)
        say("cannot hook /dev/fuse I/O; every write will cost one more "
            "request (security.capability)\n");
    fuse_daemonize(opts.foreground);
    if (!opts.foreground) {
        openlog("rvmfs", LOG_PID, LOG_DAEMON);
        to_syslog = true;
        fuse_set_log_func(fuse_say);
    }

    if (opts.singlethread) {
        ret = fuse_session_loop(fs.se);
    } else {
        struct fuse_loop_config *lc = fuse_loop_cfg_create();
        fuse_loop_cfg_set_clone_fd(lc, (unsigned)opts.clone_fd);
        if (opts.max_idle_threads != UINT_MAX)
            fuse_loop_cfg_set_idle_threads(lc, opts.max_idle_threads);
        /* Set explicitly: commits block a thread for a log force, and an
         * abort waits while another thread takes the discarded writeback. */
        fuse_loop_cfg_set_max_threads(lc, max_threads_given ? opts.max_threads : 64);
        ret = fuse_session_loop_mt(fs.se, lc);
        fuse_loop_cfg_destroy(lc);
    }
    uring_quiesce(); /* no request may run while the store closes */
    shutdown_store();
    fuse_session_unmount(fs.se);
    uring_stop();
    ret = ret < 0 ? 1 : 0;
out_signals:
    fuse_remove_signal_handlers(fs.se);
out_session:
    fuse_session_destroy(fs.se);
out_args:
    free(opts.mountpoint);
    fuse_opt_free_args(&args);
    free(cfg.store);
    free(cfg.log);
    free(cfg.logsize);
    free(fs.store);
    free(fs.log_path);
    return ret;
}
