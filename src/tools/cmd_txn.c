/*
 * The rvmctl commands that talk to a mounted rvmfs through its xattrs
 * (see the spec's "Interfaces"): user.rvm.txn takes `begin`,
 * `begin no_restore`, `join <tid>`, `commit`, `commit no_flush`, `abort`
 * and reads back `none` or `<tid> ranges=<n> bytes=<n>`; user.rvm.stat is
 * read-only; any write to user.rvm.flush forces the log.
 */
#include "rvmctl.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#define XA_TXN "user.rvm.txn"
#define XA_STAT "user.rvm.stat"
#define XA_FLUSH "user.rvm.flush"

/* The whole value of an xattr, NUL-terminated and malloc'd; NULL with
 * errno set on failure. */
static char *xattr_get(const char *path, const char *name)
{
    for (int tries = 0; tries < 8; tries++) {
        ssize_t n = getxattr(path, name, NULL, 0), m;
        char *buf;

        if (n < 0)
            return NULL;
        buf = malloc((size_t)n + 1);
        if (!buf)
            return NULL;
        m = getxattr(path, name, buf, (size_t)n);
        if (m >= 0) {
            buf[m] = 0;
            return buf;
        }
        free(buf);
        if (errno != ERANGE)    /* ERANGE: it grew in between */
            return NULL;
    }
    return NULL;
}

/* One line on why an xattr call on path failed, with what to do. */
static int xattr_fail(const char *cmd, const char *path, int err, uint64_t tid)
{
    struct stat sb;

    if (stat(path, &sb) < 0)
        return ctl_err("%s: cannot open %s: %s; give an existing file of an rvmfs "
                       "mount (create it first, e.g. 'touch %s')", cmd, path,
                       strerror(errno), path);
    switch (err) {
    case ENOTSUP:
    case ENODATA:
        return ctl_err("%s: %s is not on an rvmfs mount; mount a store with "
                       "'rvmfs STORE MOUNTPOINT' and use its files", cmd, path);
    case EBUSY:
        return ctl_err("%s: %s is already in a transaction; commit or abort "
                       "it first ('rvmctl commit %s')", cmd, path, path);
    case ENOENT:
        return ctl_err("%s: no active transaction %" PRIu64 " on the mount of "
                       "%s; begin one with 'rvmctl begin FILE'", cmd, tid, path);
    case ENOSPC:
        return ctl_err("%s: the log is full even after truncation (%s); "
                       "commit smaller transactions or mount with a larger "
                       "logsize", cmd, path);
    case EISDIR:
        return ctl_err("%s: %s is a directory; give regular files", cmd, path);
    case EPERM:
    case EACCES:
        return ctl_err("%s: %s: %s; check the file's permissions", cmd, path,
                       strerror(err));
    default:
        return ctl_err("%s: %s: %s", cmd, path, strerror(err));
    }
}

/*
 * Set user.rvm.txn.  On another filesystem that would store a plain
 * xattr and succeed, so first make sure path is on an rvmfs mount (there,
 * user.rvm.stat answers on every file).
 */
static int txn_set(const char *path, const char *value)
{
    if (!ctl_is_mount(path))
        return -1;
    return setxattr(path, XA_TXN, value, strlen(value), 0) < 0 ? -1 : 0;
}

/* The tid path is in: 0 and *tid (0 when none), or -1 with errno. */
static int txn_of(const char *path, uint64_t *tid)
{
    char *v = xattr_get(path, XA_TXN), *end;

    if (!v)
        return -1;
    *tid = 0;
    if (strncmp(v, "none", 4) != 0) {
        errno = 0;
        *tid = strtoull(v, &end, 10);
        if (errno || end == v) {
            free(v);
            errno = EPROTO;
            return -1;
        }
    }
    free(v);
    return 0;
}

int cmd_begin(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"no-restore", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int opt, no_restore = 0;
    uint64_t tid;
    char join[64];

    while ((opt = getopt_long(argc, argv, ":nh", lopts, NULL)) != -1) {
        if (opt == 'n')
            no_restore = 1;
        else
            return ctl_common_opt("begin", opt, argv);
    }
    if (optind == argc)
        return ctl_usage("begin", "give at least one FILE of an rvmfs mount");
    if (txn_set(argv[optind], no_restore ? "begin no_restore" : "begin") < 0)
        return xattr_fail("begin", argv[optind], errno, 0);
    if (txn_of(argv[optind], &tid) < 0 || tid == 0)
        return ctl_err("begin: began a transaction on %s but cannot read its "
                       "id back (%s); abort it with 'rvmctl abort %s'",
                       argv[optind], strerror(errno), argv[optind]);
    snprintf(join, sizeof join, "join %" PRIu64, tid);
    for (int i = optind + 1; i < argc; i++) {
        if (txn_set(argv[i], join) < 0) {
            int e = errno;

            /* All files or none: undo the begin when that is possible. */
            if (!no_restore && txn_set(argv[optind], "abort") == 0)
                fprintf(stderr, "rvmctl: begin: aborted transaction %" PRIu64
                        "\n", tid);
            return xattr_fail("begin", argv[i], e, tid);
        }
    }
    printf("%" PRIu64 "\n", tid);
    return EXIT_OK;
}

int cmd_join(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int opt;
    uint64_t tid;
    char join[64];

    while ((opt = getopt_long(argc, argv, ":h", lopts, NULL)) != -1)
        return ctl_common_opt("join", opt, argv);
    if (argc - optind < 2)
        return ctl_usage("join", "give a TID and at least one FILE");
    if (ctl_parse_u64(argv[optind], &tid) < 0 || tid == 0)
        return ctl_usage("join", "bad transaction id '%s' (the number "
                         "'rvmctl begin' printed)", argv[optind]);
    snprintf(join, sizeof join, "join %" PRIu64, tid);
    for (int i = optind + 1; i < argc; i++)
        if (txn_set(argv[i], join) < 0)
            return xattr_fail("join", argv[i], errno, tid);
    return EXIT_OK;
}

/* commit and abort: each distinct transaction of the files once. */
static int end_txns(const char *cmd, int argc, char **argv, int first,
                    const char *value, const char *done)
{
    int n = argc - first;
    uint64_t *tids = calloc((size_t)n, sizeof *tids);

    if (!tids)
        return ctl_err("%s: out of memory", cmd);
    /* Read every state first: once a transaction ends, all its files
     * read `none`. */
    for (int i = 0; i < n; i++) {
        if (txn_of(argv[first + i], &tids[i]) < 0) {
            int e = errno;
            free(tids);
            return xattr_fail(cmd, argv[first + i], e, 0);
        }
        if (tids[i] == 0) {
            free(tids);
            return ctl_err("%s: %s is in no transaction; begin one with "
                           "'rvmctl begin %s'", cmd, argv[first + i],
                           argv[first + i]);
        }
    }
    for (int i = 0; i < n; i++) {
        int seen = 0;

        for (int j = 0; j < i; j++)
            seen |= tids[j] == tids[i];
        if (seen)
            continue;
        if (txn_set(argv[first + i], value) < 0) {
            int e = errno;
            uint64_t t = tids[i];
            free(tids);
            if (e == EINVAL || e == EPERM)
                return ctl_err("%s: transaction %" PRIu64 " of %s refused "
                               "(%s)%s", cmd, t, argv[first + i], strerror(e),
                               strcmp(cmd, "abort") ? "" :
                               "; a no_restore transaction cannot be "
                               "aborted: commit it");
            return xattr_fail(cmd, argv[first + i], e, t);
        }
        printf("%s %" PRIu64 "\n", done, tids[i]);
    }
    free(tids);
    return EXIT_OK;
}

int cmd_commit(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"no-flush", no_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int opt, no_flush = 0;

    while ((opt = getopt_long(argc, argv, ":Nh", lopts, NULL)) != -1) {
        if (opt == 'N')
            no_flush = 1;
        else
            return ctl_common_opt("commit", opt, argv);
    }
    if (optind == argc)
        return ctl_usage("commit", "give at least one FILE in a transaction");
    return end_txns("commit", argc, argv, optind,
                    no_flush ? "commit no_flush" : "commit", "committed");
}

int cmd_abort(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int opt;

    while ((opt = getopt_long(argc, argv, ":h", lopts, NULL)) != -1)
        return ctl_common_opt("abort", opt, argv);
    if (optind == argc)
        return ctl_usage("abort", "give at least one FILE in a transaction");
    return end_txns("abort", argc, argv, optind, "abort", "aborted");
}

static int print_stat(const char *cmd, const char *path, const char *label)
{
    char *v = xattr_get(path, XA_STAT);
    size_t n;

    if (!v)
        return xattr_fail(cmd, path, errno, 0);
    if (label)
        printf("%s=%s\n", label, path);
    n = strlen(v);
    fputs(v, stdout);
    if (n && v[n - 1] != '\n')
        putchar('\n');
    free(v);
    return EXIT_OK;
}

int cmd_stat(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int opt, rv = EXIT_OK;

    while ((opt = getopt_long(argc, argv, ":h", lopts, NULL)) != -1)
        return ctl_common_opt("stat", opt, argv);
    if (optind == argc)
        return ctl_usage("stat", "give at least one FILE of an rvmfs mount");
    for (int i = optind; i < argc; i++)
        if (print_stat("stat", argv[i], argc - optind > 1 ? "file" : NULL))
            rv = EXIT_FAIL;
    return rv;
}

int cmd_flush(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    int opt;

    while ((opt = getopt_long(argc, argv, ":h", lopts, NULL)) != -1)
        return ctl_common_opt("flush", opt, argv);
    if (optind != argc - 1)
        return ctl_usage("flush", "give one PATH on an rvmfs mount");
    if (!ctl_is_mount(argv[optind]) ||
        setxattr(argv[optind], XA_FLUSH, "1", 1, 0) < 0)
        return xattr_fail("flush", argv[optind], errno, 0);
    return EXIT_OK;
}

int status_mount(const char *mnt)
{
    return print_stat("status", mnt, "mount");
}
