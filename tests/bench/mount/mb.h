/*
 * mb.h - the rvmfs mount benchmark (mount_bench): shared declarations.
 *
 * mount_bench.c  options, the rounds, the table and the RESULT line;
 * mb_mount.c     the work directory, the daemon, clean-up on every exit;
 * mb_cells.c     what one operation of each cell is, and the timed loop.
 *
 * Every cell writes into files of MB_FILE bytes that exist (and are
 * durable) before the first round, so no cell ever extends a file: the
 * figures compare the cost of the commits, not of allocation.
 */
#ifndef MB_H
#define MB_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <rvm/rvm.h>

#define MB_IO 4096u                 /* one write of most cells */
#define MB_MAP 65536u               /* one commit of the mapped cells */
#define MB_FILE (1024u * 1024u)     /* size of every file written */
#define MB_MAX_THREADS 8

/* Everything one run uses; filled by mb_env_setup(). */
struct mb_env {
    char work[PATH_MAX - 64];       /* DIR/rvmfs-mbench.XXXXXX */
    char plain[PATH_MAX];           /* work/plain: raw file, librvm log+segment */
    char store[PATH_MAX];           /* work/store: the rvmfs store */
    char mnt[PATH_MAX];             /* work/mnt: the mount point */
    char daemon_log[PATH_MAX];      /* work/daemon.log */
    const char *daemon;             /* the rvmfs binary */
    const char *mount_opts;         /* -o for the daemon, or NULL */
    pid_t daemon_pid;               /* 0 when not running */
    bool mounted;
    /* librvm used directly, in this process */
    bool rvm_up;
    rvm_region_t region;
    rvm_tid_t *tid;
};

/* One cell: a kind of operation, run by nthreads threads. */
enum mb_kind {
    K_RAW, K_LIBRVM, K_XATTR, K_IOCTL, K_AUTO, K_NF_IOCTL, K_NF_PWRITE,
    K_GROUP, K_MAPPED, K_MAPPED_PWRITE,
};

struct mb_cell {
    const char *key;                /* name in the RESULT line */
    const char *what;               /* one line for the table */
    enum mb_kind kind;
    int nthreads;
    unsigned bytes;                 /* per operation: MB_IO or MB_MAP */
};

/* Where one operation's time goes, seen from the client: each step is a
 * call or two (names by mb_step_names()). */
#define MB_STEPS 4
struct mb_steps {
    uint64_t ops;                   /* operations, warm-up included */
    double secs[MB_STEPS];          /* time in each step, summed */
    /* librvm's counters (the daemon's, or this process's for the librvm
     * cell) over the cell's runs: how commits shared log forces. */
    bool has_log;
    uint64_t commits, forces, log_bytes, truncations;
};

/* mb_mount.c: 0, or -1 with a message on stderr. */
int mb_env_setup(struct mb_env *e, const char *dir);
int mb_daemon_start(struct mb_env *e);
int mb_daemon_stop(struct mb_env *e);
/* Unmount (lazily if it must), stop librvm, remove the work directory
 * unless keep; safe to call more than once and from a signal's exit. */
void mb_env_cleanup(bool keep);
void mb_dump_daemon_log(const struct mb_env *e);
/* Make path a file of MB_FILE written bytes, durable; 0 or -1. */
int mb_make_file(const char *path);

/* mb_cells.c */
int mb_rvm_setup(struct mb_env *e);
void mb_rvm_stop(struct mb_env *e);
/* Create the files every cell uses (before the first round). */
int mb_cells_prepare(struct mb_env *e, const struct mb_cell *cells, int n);
/* Run one cell for warm + seconds; *rate = operations per second of the
 * measured part.  0, or -1 with the reason in err. */
int mb_cell_run(struct mb_env *e, const struct mb_cell *c, double warm,
                double seconds, double *rate, struct mb_steps *steps,
                char *err, size_t errlen);
/* The names of the cell's steps, NULL after the last. */
const char *const *mb_step_names(const struct mb_cell *c);

double mb_now(void);

#endif
