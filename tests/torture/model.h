/*
 * The model of a torture scenario, kept in memory shared between the
 * workload process (which dies at the power loss) and the parent (which
 * recovers and checks).
 *
 * Each workload thread owns a slice of every segment and records each
 * transaction it commits as an *entry*: the final bytes of every range.
 * The first 8 bytes of the thread's slice of segment 0 are its counter
 * cell: every transaction writes its own entry number there, so after a
 * recovery the counter says which prefix of the thread's entries survived
 * and the slice must equal exactly that prefix applied to zeros.
 *
 * Publication order (the process may die between any two stores): the
 * entry is filled, n is incremented (release), then the commit is
 * called; end is stored only after it returned success.  An entry with
 * end == 0 is in doubt: it may or may not have survived.
 */
#ifndef TORTURE_MODEL_H
#define TORTURE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#define T_MAX_THREADS 4
#define T_MAX_SEGS 3
#define T_MAX_ENTRIES 4096
#define T_MAX_BARRIERS 1024
#define T_DATA_PER_THREAD (3u << 20)

struct t_entry {
    uint64_t start;      /* clock before the commit call */
    uint64_t end;        /* clock after it returned success; 0: in doubt */
    uint32_t flush;      /* committed with flush */
    uint32_t aborted;    /* the commit failed and the transaction was aborted */
    uint32_t nranges;
    uint32_t pad;
    uint64_t data_off;   /* into the thread's data: nranges of t_range + bytes */
};

struct t_range {
    uint32_t seg;
    uint32_t off;        /* in the thread's slice */
    uint32_t len;
    uint32_t pad;
    /* then len bytes, padded to 8 */
};

enum t_barrier_kind { T_BAR_FLUSH = 1, T_BAR_TRUNCATE = 2 };

struct t_barrier {
    uint64_t start, end;
    uint32_t kind;
    uint32_t pad;
};

struct t_thread_model {
    uint64_t n;          /* entries published (atomic) */
    uint64_t nb;         /* barriers published (atomic) */
    uint64_t data_used;
    struct t_entry e[T_MAX_ENTRIES];
    struct t_barrier b[T_MAX_BARRIERS];
    unsigned char data[T_DATA_PER_THREAD];
};

/* The parameters of one scenario, all derived from its seed. */
struct t_params {
    uint64_t seed;
    int nthreads, nsegs;
    uint32_t slice;          /* bytes per thread per segment, multiple of 64 */
    uint32_t seg_size;       /* page multiple >= nthreads * slice */
    uint32_t log_size;       /* log data area */
    long truncate_pct;
    unsigned long flags;     /* RVM_COALESCE_* */
    unsigned long flush_buf_len;
    int ops;                 /* per thread */
    int crash_kind;          /* T_CRASH_* */
    uint64_t crash_at;
    int keep, tear_pct;
    uint64_t fail_at;
    int fail_err, fail_times;
    int fail_syncs_only;
    int recovery_crashes;
    int clean_end;           /* at the end of the workload: terminate first */
    int map_private;
};

enum { T_CRASH_ANY, T_CRASH_APPLY, T_CRASH_END };

struct t_shared {
    uint64_t clock;          /* atomic; stamps start from 1 */
    int violation;           /* found in the workload process */
    char msg[2048];
    char recovery_msg[512];  /* rvm_errmsg() of the last recovery */
    uint64_t io_count;       /* I/Os counted by a recovery (for crash points) */
    uint64_t stats_commits, stats_aborts, stats_truncations, stats_flushes;
    uint64_t stats_failed_io;
    struct t_params p;
    struct t_thread_model t[T_MAX_THREADS];
};

static inline uint64_t t_align8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

/* workload.c: run the scenario's workload; exits the process. */
void workload_run(struct t_shared *sh, const char *dir) __attribute__((noreturn));

/* check.c: check recovered segment images against the model.  Returns
 * 0, or 1 with a description of the violation in msg. */
int check_state(const struct t_shared *sh, unsigned char *const seg[T_MAX_SEGS],
                char *msg, size_t msglen);

#endif
