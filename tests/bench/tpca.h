/*
 * TPC-A-like benchmark shared by the driver (tpca.c) and one file per
 * store ("peer"): librvm, SQLite, LMDB, PMDK libpmemobj and the raw disk.
 *
 * The logical workload is the same for every peer: account, teller and
 * branch records of TPCA_REC bytes and a circular history area of
 * TPCA_HIST bytes per entry.  A transaction adds one delta to the balance
 * of one account, one teller and one branch (rewriting each whole record)
 * and writes one history entry.  Thread i owns a disjoint partition of
 * every table, so each thread's work is checkable on its own and the sums
 * of the three balance columns must all equal the sum of committed deltas.
 */
#ifndef TPCA_H
#define TPCA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TPCA_REC 100  /* account, teller, branch record */
#define TPCA_HIST 50  /* history entry */
#define TPCA_MAX_THREADS 64

enum tpca_mode { MODE_FLUSH, MODE_NO_FLUSH, MODE_COUNT };
enum tpca_pattern { PAT_SEQ, PAT_RANDOM, PAT_LOCAL, PAT_COUNT };
enum tpca_table { TAB_ACCOUNT, TAB_TELLER, TAB_BRANCH, TAB_HISTORY, TAB_COUNT };

/* Sizes of the tables; the same for every peer of a run. */
struct tpca_config {
    uint32_t n[TAB_COUNT];      /* records per table */
    uint32_t flush_every;       /* K: no_flush mode makes every K-th commit durable */
    double seconds;             /* measured time per cell */
    const char *dir;            /* where stores are made (a real disk) */
    uint64_t log_bytes;         /* librvm log data size */
};

/* One configuration to measure. */
struct tpca_cell {
    const struct tpca_config *cfg;
    enum tpca_mode mode;
    enum tpca_pattern pattern;
    int nthreads;
};

/* One transaction as the generator chose it. */
struct tpca_op {
    uint32_t idx[TAB_COUNT];    /* record of each table (history: slot) */
    int64_t delta;
    uint64_t seq;               /* thread's transaction number, from 1 */
    uint32_t thread;
};

struct tpca_thread {
    int id;
    const struct tpca_cell *cell;
    uint32_t lo[TAB_COUNT], cnt[TAB_COUNT]; /* this thread's partition */
    uint64_t rng;
    uint64_t ntx;               /* committed transactions */
    int64_t sum_delta;          /* sum of their deltas */
    int err;                    /* first failure, stops the thread */
    char errmsg[160];
    void *p;                    /* the peer's per-thread state */
};

/* What one cell measured. */
struct tpca_result {
    bool ran;                   /* false: peer missing or cell not applicable */
    bool ok;                    /* ran, and the check after the run passed */
    double tps;
    double secs;
    uint64_t ntx;
    char note[200];
    /* librvm counters, per committed transaction */
    bool has_log;
    double set_range_b, logged_b, log_written_b, forces, group_commits;
    double truncations;
};

/* A store under test.  Every call returns 0 or -1 (the message is put in
 * errbuf, th->errmsg or res->note). */
struct tpca_peer {
    const char *name;
    const char *missing;        /* NULL, or why the peer is not built */
    bool single_thread;         /* only 1-thread cells make sense */
    bool flush_only;            /* no_flush cells do not apply */
    /* Make a fresh store in cfg->dir with every record zero. */
    int (*setup)(const struct tpca_cell *c, void **ctx, char *errbuf, size_t n);
    int (*thread_init)(void *ctx, struct tpca_thread *th);
    /* One transaction.  durable: the commit must be on disk when it
     * returns (flush mode, or every K-th commit in no_flush mode). */
    int (*txn)(void *ctx, struct tpca_thread *th, const struct tpca_op *op, bool durable);
    /* Make every commit of this thread durable (end of a no_flush run). */
    int (*flush)(void *ctx, struct tpca_thread *th);
    void (*thread_fini)(void *ctx, struct tpca_thread *th);
    /* Check the balances against expected_sum (and whatever else the
     * peer can check), fill librvm counters, free everything and remove
     * the store's files. */
    int (*finish)(void *ctx, const struct tpca_cell *c, int64_t expected_sum,
                  struct tpca_result *res);
};

extern const struct tpca_peer tpca_peer_rvm, tpca_peer_rvm_noopt, tpca_peer_sqlite,
    tpca_peer_lmdb, tpca_peer_pmem, tpca_peer_raw;

/* The mapped region of a librvm peer's context (tpca_peer_rvm*), for
 * drivers that write it their own way (auto_bench.c). */
unsigned char *tpca_rvm_base(void *ctx);

/* pmem_is_pmem() of the last libpmemobj pool (-1: none opened). */
extern int tpca_pmem_is_pmem;

/* ---- helpers shared by the peers (tpca_common.c) ---- */

/* Record images.  A balance record is: int64 balance, uint64 seq of the
 * last transaction, uint32 id, then filler bytes derived from seq. */
static inline int64_t tpca_balance(const void *rec)
{
    int64_t b;
    memcpy(&b, rec, sizeof b);
    return b;
}
void tpca_rec_update(void *rec, uint32_t id, int64_t delta, uint64_t seq);
void tpca_hist_fill(void *hist, const struct tpca_op *op);

/* Byte offset of record idx of table t in the one-region layout used by
 * librvm and libpmemobj; total size of that layout. */
uint64_t tpca_offset(const struct tpca_config *cfg, enum tpca_table t, uint32_t idx);
uint64_t tpca_layout_size(const struct tpca_config *cfg);

/* Sum of balances of each table in a one-region image; -1 with a message
 * in note unless the three sums equal expected. */
int tpca_check_image(const struct tpca_config *cfg, const unsigned char *base,
                     int64_t expected, char *note, size_t n);
int tpca_check_sums(const int64_t sums[3], int64_t expected, char *note, size_t n);

void tpca_path(char *buf, size_t n, const struct tpca_config *cfg, const char *name);
void tpca_rm(const struct tpca_config *cfg, const char *name);

/* Run the cell: setup, threads for cfg->seconds, finish.  Fills res. */
void tpca_run_cell(const struct tpca_peer *peer, const struct tpca_cell *c,
                   struct tpca_result *res);

const char *tpca_mode_name(enum tpca_mode m);
const char *tpca_pattern_name(enum tpca_pattern p);

#endif
