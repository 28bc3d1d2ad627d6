/*
 * rvmctl: make, inspect and recover rvmfs stores, and run transactions on
 * files of an rvmfs mount from the shell.  rvmctl(1) is the manual.
 *
 * This file: the command table, help, shared helpers, `init` and `recover`.
 * cmd_log.c: `status` of a store and `log`.  cmd_txn.c: the commands that
 * talk to a mount through the user.rvm.* xattrs.
 */
#include "rvmctl.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <rvm/rvm.h>

#include "logread.h"

#ifndef RVMFS_VERSION
#define RVMFS_VERSION "0.1.0"
#endif

#define DEFAULT_LOG_SIZE (64ull << 20)

static const struct ctl_cmd commands[] = {
    {"init", cmd_init, "[--log-size SIZE] STORE",
     "Create a new rvmfs store: the directories STORE/tree and STORE/seg, the\n"
     "file STORE/rvmfs.conf (version=1) and the preallocated log STORE/rvm.log.\n"
     "STORE must not exist yet or be an empty directory.\n"
     "\n"
     "  -s, --log-size SIZE  size of the log's data area (default 64M, at least\n"
     "                       64K; suffixes K, M, G are powers of 1024)\n"},
    {"status", cmd_status, "[--log PATH] STORE|MOUNTPOINT",
     "For a store: read its log without changing it and print key=value lines:\n"
     "log size, bytes in use, records and transactions pending, how the log\n"
     "ends.  Exit status 1 when the log is damaged.\n"
     "For a mount: print the daemon's statistics (the user.rvm.stat attribute\n"
     "of the mount root), active transactions included.\n"
     "\n"
     "  -l, --log PATH       the store's log is PATH (default STORE/rvm.log)\n"},
    {"log", cmd_log, "[--segment NAME] [--tid N] [--bytes] [--log PATH] STORE",
     "List the records of the log from head to tail without changing it, one\n"
     "line per range: sequence number, tid, record type, log position, record\n"
     "length, checksum status, segment id, offset and length in the segment,\n"
     "and the segment's path from the dictionary.  The last two lines, starting\n"
     "with '#', sum up and say how the log ends.  Exit status 1 when a damaged\n"
     "record hides later ones.\n"
     "\n"
     "  -S, --segment NAME   only ranges of this segment: its id, its path in\n"
     "                       the dictionary, or any name of its file (e.g.\n"
     "                       STORE/tree/notes.txt or STORE/seg/1234)\n"
     "  -t, --tid N          only records whose tid is N\n"
     "  -x, --bytes          hex dump the new bytes of each range\n"
     "  -l, --log PATH       the store's log is PATH (default STORE/rvm.log)\n"},
    {"recover", cmd_recover, "[--force] [--log PATH] STORE",
     "Offline recovery: apply every committed record of the log to its\n"
     "segment, make the segments durable and leave the log empty.  The store\n"
     "must not be mounted.  When a damaged record in the middle of the log\n"
     "would make recovery drop the valid records after it, nothing is changed\n"
     "and the exit status is 1, unless --force is given.\n"
     "\n"
     "  -f, --force          recover up to the damaged record anyway\n"
     "  -l, --log PATH       the store's log is PATH (default STORE/rvm.log)\n"},
    {"begin", cmd_begin, "[--no-restore] FILE...",
     "Begin a transaction on the first FILE (a file of an rvmfs mount) and\n"
     "join the other FILEs to it; print its transaction id.  Until someone\n"
     "commits or aborts it, every write to these files belongs to it.\n"
     "\n"
     "  -n, --no-restore     keep no old bytes: faster, but abort is refused\n"},
    {"join", cmd_join, "TID FILE...",
     "Add FILEs to the active transaction TID of the same mount: its commit\n"
     "is then atomic across all of them.\n"},
    {"commit", cmd_commit, "[--no-flush] FILE...",
     "Commit the transaction each FILE is in (each transaction once).  Returns\n"
     "when the transaction is durable.\n"
     "\n"
     "  -N, --no-flush       return at once; durable at the next flush\n"},
    {"abort", cmd_abort, "FILE...",
     "Abort the transaction each FILE is in: every byte and the size of every\n"
     "member file are put back.\n"},
    {"stat", cmd_stat, "FILE...",
     "Print the statistics of a file of an rvmfs mount (its user.rvm.stat\n"
     "attribute: key=value lines); on the mount root, those of the store.\n"},
    {"flush", cmd_flush, "PATH",
     "Make every committed transaction of the mount that holds PATH durable.\n"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const struct ctl_cmd *cmd_find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int ctl_err(const char *fmt, ...)
{
    va_list ap;

    fputs("rvmctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_FAIL;
}

int ctl_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "rvmctl %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "; see 'rvmctl %s --help'\n", cmd);
    return EXIT_USAGE;
}

int ctl_help(const char *name)
{
    const struct ctl_cmd *c = cmd_find(name);

    printf("Usage: rvmctl %s %s\n\n%s\n  -h, --help           show this help\n",
           c->name, c->usage, c->help);
    return EXIT_OK;
}

int ctl_common_opt(const char *cmd, int opt, char **argv)
{
    const char *word = optind > 0 ? argv[optind - 1] : "?";

    if (opt == 'h')
        return ctl_help(cmd);
    if (opt == ':')
        return ctl_usage(cmd, "option '%s' needs a value", word);
    if (optopt && word[0] == '-' && word[1] != '-')
        return ctl_usage(cmd, "unknown option '-%c'", optopt);
    return ctl_usage(cmd, "unknown option '%s'", word);
}

int ctl_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int ctl_parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    switch (toupper((unsigned char)*end)) {
    case 0: break;
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default: return -1;
    }
    if (shift && (*end == 'i' || *end == 'I') && toupper((unsigned char)end[1]) == 'B')
        end += 2;
    else if (shift && toupper((unsigned char)*end) == 'B')
        end++;
    if (*end || (shift && v > (UINT64_MAX >> shift)))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

const char *ctl_human(uint64_t n, char *buf, size_t len)
{
    static const char *unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    unsigned u = 0;
    double v = (double)n;

    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu bytes", (unsigned long long)n);
    else if (v == (double)(uint64_t)v)
        snprintf(buf, len, "%.0f %s", v, unit[u]);
    else
        snprintf(buf, len, "%.1f %s", v, unit[u]);
    return buf;
}

static int path_join(char *out, size_t len, const char *dir, const char *name)
{
    if ((size_t)snprintf(out, len, "%s/%s", dir, name) >= len)
        return ctl_err("path too long: %s/%s; use a shorter store path", dir, name);
    return 0;
}

int ctl_is_store(const char *path)
{
    char p[PATH_MAX];
    struct stat sb;

    if (path_join(p, sizeof p, path, STORE_LOG) == 0 && stat(p, &sb) == 0)
        return 1;
    return path_join(p, sizeof p, path, STORE_CONF) == 0 && stat(p, &sb) == 0;
}

int ctl_is_mount(const char *path)
{
    return getxattr(path, "user.rvm.stat", NULL, 0) >= 0;
}

int ctl_store_log(const char *store, const char *log_opt, char *out, size_t len)
{
    struct stat sb;

    if (stat(store, &sb) < 0)
        return ctl_err("cannot open store %s: %s; create one with 'rvmctl init %s'",
                       store, strerror(errno), store);
    if (S_ISREG(sb.st_mode) && !log_opt)
        log_opt = store;            /* a log file given directly */
    else if (!S_ISDIR(sb.st_mode))
        return ctl_err("%s is not a store directory; give the directory made "
                       "by 'rvmctl init'", store);
    if (log_opt) {
        if ((size_t)snprintf(out, len, "%s", log_opt) >= len)
            return ctl_err("log path too long: %s", log_opt);
    } else if (path_join(out, len, store, STORE_LOG)) {
        return EXIT_FAIL;
    }
    if (stat(out, &sb) < 0) {
        if (errno == ENOENT && !log_opt)
            return ctl_err("%s is not an rvmfs store (no %s in it); create one "
                           "with 'rvmctl init %s'", store, STORE_LOG, store);
        return ctl_err("cannot open log %s: %s; check the path (--log PATH names "
                       "the log file itself)", out, strerror(errno));
    }
    return 0;
}

/* ---- init ---- */

static int write_conf(const char *store)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    static const char text[] = "version=1\n";
    int fd;

    if (path_join(tmp, sizeof tmp, store, STORE_CONF ".tmp") ||
        path_join(dst, sizeof dst, store, STORE_CONF))
        return -1;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (write(fd, text, sizeof text - 1) != (ssize_t)(sizeof text - 1) ||
        fsync(fd) < 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    close(fd);
    /* The conf file appears last and whole: a store with rvmfs.conf is
     * complete. */
    if (rename(tmp, dst) < 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int empty = 1;

    if (!d)
        return 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = 0;
            break;
        }
    closedir(d);
    return empty;
}

int cmd_init(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"log-size", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    uint64_t size = DEFAULT_LOG_SIZE;
    char tree[PATH_MAX], seg[PATH_MAX], log[PATH_MAX], hb[32];
    const char *store;
    int opt, made_store = 0, made_tree = 0, made_seg = 0;
    struct stat sb;
    rvm_options_t o;
    rvm_offset_t len;
    rvm_return_t rc;

    while ((opt = getopt_long(argc, argv, ":s:h", lopts, NULL)) != -1) {
        if (opt == 's') {
            if (ctl_parse_size(optarg, &size) < 0)
                return ctl_usage("init", "bad log size '%s' (examples: 64M, "
                                 "1G, 65536)", optarg);
            continue;
        }
        return ctl_common_opt("init", opt, argv);
    }
    if (optind != argc - 1)
        return ctl_usage("init", optind == argc ? "give the STORE directory to "
                         "create" : "give exactly one STORE");
    store = argv[optind];
    if (size < LOG_MIN_DATA_SIZE)
        return ctl_usage("init", "log size %llu is below the minimum 64K",
                         (unsigned long long)size);
    if (path_join(tree, sizeof tree, store, "tree") ||
        path_join(seg, sizeof seg, store, "seg") ||
        path_join(log, sizeof log, store, STORE_LOG))
        return EXIT_FAIL;

    if (stat(store, &sb) == 0) {
        if (!S_ISDIR(sb.st_mode))
            return ctl_err("%s exists and is not a directory; give a new or "
                           "empty directory", store);
        if (ctl_is_store(store))
            return ctl_err("%s is already an rvmfs store; inspect it with "
                           "'rvmctl status %s'", store, store);
        if (!dir_is_empty(store))
            return ctl_err("%s is not empty; give a new or empty directory",
                           store);
    } else if (errno != ENOENT) {
        return ctl_err("cannot use %s: %s", store, strerror(errno));
    } else if (mkdir(store, 0755) < 0) {
        return ctl_err("cannot create %s: %s%s", store, strerror(errno),
                       errno == ENOENT ? "; create its parent directory first" : "");
    } else {
        made_store = 1;
    }
    if (mkdir(tree, 0755) < 0 || !(made_tree = 1) || mkdir(seg, 0755) < 0) {
        ctl_err("cannot create %s: %s", made_tree ? seg : tree, strerror(errno));
        goto undo;
    }
    made_seg = 1;

    rvm_init_options(&o);
    o.log_dev = log;
    len = RVM_LENGTH_TO_OFFSET(size);
    rc = rvm_create_log(&o, &len, 0600);
    if (rc != RVM_SUCCESS) {
        const char *m = rvm_errmsg();
        ctl_err("cannot create the log %s: %s%s%s%s", log, rvm_return(rc),
                *m ? " (" : "", m, *m ? ")" : "");
        goto undo;
    }
    if (write_conf(store) < 0) {
        ctl_err("cannot write %s/%s: %s", store, STORE_CONF, strerror(errno));
        unlink(log);
        goto undo;
    }
    sync_dir(store);
    printf("created store %s: log %s (%s), %s/tree, %s/seg\n", store, log,
           ctl_human(size, hb, sizeof hb), store, store);
    printf("mount it with: rvmfs %s MOUNTPOINT\n", store);
    return EXIT_OK;

undo:
    if (made_seg)
        rmdir(seg);
    if (made_tree)
        rmdir(tree);
    if (made_store)
        rmdir(store);
    return EXIT_FAIL;
}

/* ---- recover ---- */

struct progress {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int done;
    uint64_t walked, total;
};

/* librvm's callback, in the recovering thread: only note the figures, the
 * drawing thread shows them (so a slow terminal never slows recovery). */
static void progress_note(uint64_t done, uint64_t total, void *arg)
{
    struct progress *p = arg;
    pthread_mutex_lock(&p->lock);
    p->walked = done;
    p->total = total;
    pthread_mutex_unlock(&p->lock);
}

/* On a terminal: one line redrawn five times a second while librvm
 * recovers: a bar of the log bytes walked, the rate and the time. */
static void *progress_main(void *arg)
{
    struct progress *p = arg;
    struct timespec start, now, until;
    char bar[41];

    clock_gettime(CLOCK_MONOTONIC, &start);
    pthread_mutex_lock(&p->lock);
    while (!p->done) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        double secs = (double)(now.tv_sec - start.tv_sec) +
                      (double)(now.tv_nsec - start.tv_nsec) / 1e9;
        double frac = p->total ? (double)p->walked / (double)p->total : 0.0;
        size_t fill = (size_t)(frac * (sizeof bar - 1));
        memset(bar, '#', fill);
        memset(bar + fill, '.', sizeof bar - 1 - fill);
        bar[sizeof bar - 1] = '\0';
        fprintf(stderr, "\rrecovering [%s] %3.0f%% %.1f MiB/s %.1f s ", bar,
                frac * 100.0,
                secs > 0 ? (double)p->walked / 1048576.0 / secs : 0.0, secs);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 200000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&p->cond, &p->lock, &until);
    }
    pthread_mutex_unlock(&p->lock);
    fputs("\r\033[K", stderr);
    return NULL;
}

/*
 * One program per log: the rvmfs daemon holds an exclusive flock on its
 * log while it runs, and recover holds one until it exits, so neither can
 * start under the other.  Returns 0 when locked (or when locks are not
 * supported there), -1 when the log is in use.
 */
static int log_lock(const char *log)
{
    int fd = open(log, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return 0;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int busy = errno == EWOULDBLOCK;
        close(fd);
        return busy ? -1 : 0;
    }
    return 0;   /* fd stays open: the lock lasts until exit */
}

int cmd_recover(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"force", no_argument, NULL, 'f'},
        {"log", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *log_opt = NULL, *store, *msg;
    char log[PATH_MAX], abslog[PATH_MAX], hb[32];
    int opt, force = 0, tty = isatty(STDERR_FILENO), rv;
    struct logread lr;
    struct logread_result res;
    struct progress prog = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};
    pthread_t thr;
    int have_thr = 0;
    rvm_options_t o;
    rvm_stats_t stats;
    rvm_return_t rc;

    while ((opt = getopt_long(argc, argv, ":fl:h", lopts, NULL)) != -1) {
        if (opt == 'f')
            force = 1;
        else if (opt == 'l')
            log_opt = optarg;
        else
            return ctl_common_opt("recover", opt, argv);
    }
    if (optind != argc - 1)
        return ctl_usage("recover", optind == argc ? "give the STORE to recover"
                         : "give exactly one STORE");
    store = argv[optind];
    if ((rv = ctl_store_log(store, log_opt, log, sizeof log)))
        return rv;
    if (!realpath(log, abslog))
        return ctl_err("cannot resolve %s: %s", log, strerror(errno));
    if (log_lock(abslog) < 0)
        return ctl_err("the log %s is in use; unmount the store first "
                       "(fusermount3 -u MOUNTPOINT)", log);

    if (logread_open(&lr, abslog) < 0) {
        ctl_err("%s; nothing was changed", lr.err);
        logread_close(&lr);
        return EXIT_FAIL;
    }
    if (logread_scan(&lr, NULL, NULL, &res) < 0) {
        ctl_err("%s; nothing was changed", lr.err);
        logread_close(&lr);
        return EXIT_FAIL;
    }
    logread_close(&lr);
    printf("log %s: %llu records (%llu transactions, %s of new data) to apply\n",
           log, (unsigned long long)(res.records - res.wraps),
           (unsigned long long)res.transactions,
           ctl_human(res.range_bytes, hb, sizeof hb));
    if (res.end == LOGREAD_END_CORRUPT && !force)
        return ctl_err("the record at log position %llu (file offset %llu) is "
                       "damaged (%s) and valid records follow it (seq %llu); "
                       "recovery would drop them; nothing was changed; rerun "
                       "with --force to apply the %llu records before it",
                       (unsigned long long)res.bad_pos,
                       (unsigned long long)res.bad_phys, res.bad_reason,
                       (unsigned long long)res.later_seq,
                       (unsigned long long)(res.records - res.wraps));
    if (res.end == LOGREAD_END_CORRUPT)
        printf("warning: dropping the damaged record at log position %llu and "
               "everything after it (--force)\n", (unsigned long long)res.bad_pos);
    else if (res.end == LOGREAD_END_TORN)
        printf("note: the last record (at log position %llu) was cut short "
               "by a crash before it was acknowledged; it is dropped\n",
               (unsigned long long)res.bad_pos);

    /* Relative dictionary paths name files of the store. */
    if (chdir(store) < 0)
        return ctl_err("cannot enter %s: %s", store, strerror(errno));
    if (tty) {
        rvm_set_progress(progress_note, &prog);
        have_thr = pthread_create(&thr, NULL, progress_main, &prog) == 0;
    } else {
        printf("applying the log to the segments...\n");
        fflush(stdout);
    }
    rvm_init_options(&o);
    o.log_dev = abslog;
    o.truncate = 0;
    rc = RVM_INIT(&o);
    if (have_thr) {
        pthread_mutex_lock(&prog.lock);
        prog.done = 1;
        pthread_cond_signal(&prog.cond);
        pthread_mutex_unlock(&prog.lock);
        pthread_join(thr, NULL);
    }
    rvm_set_progress(NULL, NULL);
    if (rc != RVM_SUCCESS) {
        msg = rvm_errmsg();
        return ctl_err("recovery failed: %s%s%s; the log still holds the "
                       "records; fix the cause (e.g. a missing or read-only "
                       "segment file) and run 'rvmctl recover' again",
                       rvm_return(rc), *msg ? ": " : "", msg);
    }
    msg = rvm_errmsg();
    memset(&stats, 0, sizeof stats);
    rvm_get_stats(&stats);
    rc = rvm_terminate();
    if (*msg && res.end != LOGREAD_END_CLEAN && res.end != LOGREAD_END_FULL)
        printf("librvm: %s\n", msg);
    if (rc != RVM_SUCCESS)
        return ctl_err("recovery applied the log, but closing it failed: %s; "
                       "run 'rvmctl recover' again", rvm_return(rc));
    printf("recovered %llu records in %.1f ms; the log is empty\n",
           (unsigned long long)stats.n_recovered_records,
           (double)stats.recovery_usec / 1000.0);
    return EXIT_OK;
}

/* ---- main ---- */

static void usage_all(FILE *f)
{
    fprintf(f, "Usage: rvmctl COMMAND [ARGS]\n"
            "       rvmctl COMMAND --help | rvmctl --version\n\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].usage);
    fprintf(f, "\nExit status: 0 ok, 1 failure, 2 usage.  See rvmctl(1).\n");
}

int main(int argc, char **argv)
{
    const struct ctl_cmd *c;

    if (argc < 2) {
        fprintf(stderr, "rvmctl: give a command; run 'rvmctl --help' for the "
                "list\n");
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        printf("rvmctl (rvmfs) %s\n", RVMFS_VERSION);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage_all(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "help")) {
        if (argc == 2) {
            usage_all(stdout);
            return EXIT_OK;
        }
        if (!cmd_find(argv[2])) {
            fprintf(stderr, "rvmctl: no command '%s'; run 'rvmctl --help' for "
                    "the list\n", argv[2]);
            return EXIT_USAGE;
        }
        return ctl_help(argv[2]);
    }
    c = cmd_find(argv[1]);
    if (!c) {
        fprintf(stderr, "rvmctl: no command '%s'; run 'rvmctl --help' for the "
                "list\n", argv[1]);
        return EXIT_USAGE;
    }
    opterr = 0;     /* ctl_common_opt says what was wrong, in one line */
    return c->run(argc - 1, argv + 1);
}
