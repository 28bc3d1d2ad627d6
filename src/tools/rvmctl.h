/*
 * rvmctl: shared declarations of the command modules.
 *
 * Every command is `int cmd_NAME(int argc, char **argv)` with argv[0] the
 * command name; it returns the exit status: 0 ok, 1 failure, 2 usage.
 * Errors go to stderr in one line that says what to do next.
 */
#ifndef RVMCTL_H
#define RVMCTL_H

#include <stddef.h>
#include <stdint.h>

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

/* Name of the default log inside a store, and of its configuration file. */
#define STORE_LOG "rvm.log"
#define STORE_CONF "rvmfs.conf"

struct ctl_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *usage;  /* arguments after the command name */
    const char *help;   /* what it does, then its options */
};

/* Print "rvmctl: MSG" (printf-style) to stderr; returns EXIT_FAIL. */
int ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "rvmctl CMD: MSG; see 'rvmctl CMD --help'"; returns EXIT_USAGE. */
int ctl_usage(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print the help of a command to stdout; returns EXIT_OK. */
int ctl_help(const char *cmd);

/*
 * After getopt_long (optstring starting with ':') returned opt for which
 * the command has no case of its own: --help, or a usage error.  Returns
 * the exit status.
 */
int ctl_common_opt(const char *cmd, int opt, char **argv);

/* Parse a size such as 65536, 64K, 64M, 1G (powers of 1024); -1 if bad. */
int ctl_parse_size(const char *s, uint64_t *out);
/* Parse a decimal u64; -1 if bad. */
int ctl_parse_u64(const char *s, uint64_t *out);
/* "64 MiB" style rendering into buf. */
const char *ctl_human(uint64_t n, char *buf, size_t len);

/*
 * The log of STORE: log_opt if given, else STORE/rvm.log.  Returns 0, or
 * EXIT_FAIL after saying why STORE is no store.
 */
int ctl_store_log(const char *store, const char *log_opt, char *out, size_t len);

/* True if STORE looks like a store (has rvm.log or rvmfs.conf). */
int ctl_is_store(const char *path);
/* True if path is on an rvmfs mount (answers user.rvm.stat). */
int ctl_is_mount(const char *path);

int cmd_init(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_recover(int argc, char **argv);
int cmd_begin(int argc, char **argv);
int cmd_join(int argc, char **argv);
int cmd_commit(int argc, char **argv);
int cmd_abort(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_flush(int argc, char **argv);

/* The status of a store (in cmd_log.c) and of a mount (in cmd_txn.c). */
int status_store(const char *store, const char *log_opt);
int status_mount(const char *mnt);

#endif
