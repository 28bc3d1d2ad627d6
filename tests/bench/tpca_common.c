/*
 * The workload generator, the thread runner and the checks shared by all
 * peers of the TPC-A-like benchmark.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "tpca.h"

const char *tpca_mode_name(enum tpca_mode m)
{
    return m == MODE_FLUSH ? "flush" : "no_flush";
}

const char *tpca_pattern_name(enum tpca_pattern p)
{
    static const char *names[] = {"seq", "random", "local"};
    return names[p];
}

void tpca_rec_update(void *rec, uint32_t id, int64_t delta, uint64_t seq)
{
    unsigned char *r = rec;
    int64_t b = tpca_balance(r) + delta;
    memcpy(r, &b, 8);
    memcpy(r + 8, &seq, 8);
    memcpy(r + 16, &id, 4);
    memset(r + 20, (int)(seq & 0xff), TPCA_REC - 20);
}

void tpca_hist_fill(void *hist, const struct tpca_op *op)
{
    unsigned char *h = hist;
    memcpy(h, &op->idx[TAB_ACCOUNT], 4);
    memcpy(h + 4, &op->idx[TAB_TELLER], 4);
    memcpy(h + 8, &op->idx[TAB_BRANCH], 4);
    memcpy(h + 12, &op->delta, 8);
    memcpy(h + 20, &op->seq, 8);
    memcpy(h + 28, &op->thread, 4);
    memset(h + 32, (int)(op->seq & 0xff), TPCA_HIST - 32);
}

static const uint32_t rec_size[TAB_COUNT] = {TPCA_REC, TPCA_REC, TPCA_REC, TPCA_HIST};

uint64_t tpca_offset(const struct tpca_config *cfg, enum tpca_table t, uint32_t idx)
{
    uint64_t off = 0;
    for (int k = 0; k < (int)t; k++)
        off += (uint64_t)cfg->n[k] * rec_size[k];
    return off + (uint64_t)idx * rec_size[t];
}

uint64_t tpca_layout_size(const struct tpca_config *cfg)
{
    return tpca_offset(cfg, TAB_HISTORY, cfg->n[TAB_HISTORY]);
}

int tpca_check_sums(const int64_t sums[3], int64_t expected, char *note, size_t n)
{
    if (sums[0] == expected && sums[1] == expected && sums[2] == expected)
        return 0;
    snprintf(note, n, "balance sums account=%" PRId64 " teller=%" PRId64 " branch=%" PRId64
             " expected %" PRId64, sums[0], sums[1], sums[2], expected);
    return -1;
}

int tpca_check_image(const struct tpca_config *cfg, const unsigned char *base,
                     int64_t expected, char *note, size_t n)
{
    int64_t sums[3] = {0, 0, 0};
    for (int t = 0; t < 3; t++)
        for (uint32_t i = 0; i < cfg->n[t]; i++)
            sums[t] += tpca_balance(base + tpca_offset(cfg, (enum tpca_table)t, i));
    return tpca_check_sums(sums, expected, note, n);
}

void tpca_path(char *buf, size_t n, const struct tpca_config *cfg, const char *name)
{
    snprintf(buf, n, "%s/%s", cfg->dir, name);
}

void tpca_rm(const struct tpca_config *cfg, const char *name)
{
    char p[4096];
    tpca_path(p, sizeof p, cfg, name);
    unlink(p);
}

/* ---- generator ---- */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static uint32_t below(uint64_t *s, uint32_t n)
{
    return n ? (uint32_t)(((rng_next(s) >> 32) * (uint64_t)n) >> 32) : 0;
}

/*
 * Localized, as in the LRVM paper: 70% of the picks fall in the first 5%
 * of the records, 25% in the next 15%, 5% in the remaining 80%.
 */
static uint32_t pick_local(uint64_t *s, uint32_t n)
{
    if (n < 3)
        return below(s, n);
    uint32_t a = n / 20 ? n / 20 : 1;
    uint32_t b = n / 5 > a ? n / 5 : a + 1;
    uint32_t r = below(s, 100);
    if (r < 70)
        return below(s, a);
    if (r < 95)
        return a + below(s, b - a);
    return b + below(s, n - b);
}

static void op_next(struct tpca_thread *th, struct tpca_op *op)
{
    uint64_t seq = th->ntx + 1;
    op->seq = seq;
    op->thread = (uint32_t)th->id;
    for (int t = 0; t < 3; t++) {
        uint32_t n = th->cnt[t], i;
        switch (th->cell->pattern) {
        case PAT_SEQ: i = (uint32_t)((seq - 1) % n); break;
        case PAT_RANDOM: i = below(&th->rng, n); break;
        default: i = pick_local(&th->rng, n); break;
        }
        op->idx[t] = th->lo[t] + i;
    }
    op->idx[TAB_HISTORY] = th->lo[TAB_HISTORY] + (uint32_t)((seq - 1) % th->cnt[TAB_HISTORY]);
    op->delta = (int64_t)below(&th->rng, 1999) - 999;
    if (op->delta == 0)
        op->delta = 1000;
}

/* ---- runner ---- */

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct runner {
    const struct tpca_peer *peer;
    void *ctx;
    const struct tpca_cell *cell;
    volatile int stop;
    pthread_barrier_t start;
};

struct worker {
    struct runner *run;
    struct tpca_thread th;
    pthread_t tid;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct runner *run = w->run;
    struct tpca_thread *th = &w->th;
    if (run->peer->thread_init && run->peer->thread_init(run->ctx, th) < 0 && !th->err)
        th->err = -1;
    pthread_barrier_wait(&run->start);
    if (th->err)
        return NULL;
    bool nf = run->cell->mode == MODE_NO_FLUSH;
    uint32_t K = run->cell->cfg->flush_every, since = 0;
    struct tpca_op op;
    while (!__atomic_load_n(&run->stop, __ATOMIC_RELAXED)) {
        op_next(th, &op);
        bool durable = !nf || ++since >= K;
        if (durable)
            since = 0;
        if (run->peer->txn(run->ctx, th, &op, durable) < 0) {
            th->err = -1;
            break;
        }
        th->ntx++;
        th->sum_delta += op.delta;
    }
    if (!th->err && nf && run->peer->flush && run->peer->flush(run->ctx, th) < 0)
        th->err = -1;
    if (run->peer->thread_fini)
        run->peer->thread_fini(run->ctx, th);
    return NULL;
}

static void partition(const struct tpca_config *cfg, int nthreads, int i, struct tpca_thread *th)
{
    for (int t = 0; t < TAB_COUNT; t++) {
        uint64_t lo = (uint64_t)cfg->n[t] * (uint64_t)i / (uint64_t)nthreads;
        uint64_t hi = (uint64_t)cfg->n[t] * (uint64_t)(i + 1) / (uint64_t)nthreads;
        th->lo[t] = (uint32_t)lo;
        th->cnt[t] = (uint32_t)(hi - lo);
    }
}

void tpca_run_cell(const struct tpca_peer *peer, const struct tpca_cell *c, struct tpca_result *res)
{
    memset(res, 0, sizeof *res);
    if (peer->missing) {
        snprintf(res->note, sizeof res->note, "%s", peer->missing);
        return;
    }
    if ((peer->single_thread && c->nthreads > 1) || (peer->flush_only && c->mode != MODE_FLUSH)) {
        snprintf(res->note, sizeof res->note, "n/a");
        return;
    }
    res->ran = true;
    struct runner run = {.peer = peer, .cell = c};
    if (peer->setup(c, &run.ctx, res->note, sizeof res->note) < 0)
        return;
    /* Start every cell with no dirty data of earlier cells or of this
     * setup still going to the disk. */
    int dfd = open(c->cfg->dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        syncfs(dfd);
        close(dfd);
    }
    int n = c->nthreads;
    struct worker *w = calloc((size_t)n, sizeof *w);
    if (!w) {
        snprintf(res->note, sizeof res->note, "out of memory");
        return;
    }
    pthread_barrier_init(&run.start, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++) {
        w[i].run = &run;
        w[i].th.id = i;
        w[i].th.cell = c;
        w[i].th.rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1) + (uint64_t)c->pattern;
        partition(c->cfg, n, i, &w[i].th);
        pthread_create(&w[i].tid, NULL, worker_main, &w[i]);
    }
    pthread_barrier_wait(&run.start);
    double t0 = now_sec();
    struct timespec ts = {.tv_sec = (time_t)c->cfg->seconds,
                          .tv_nsec = (long)((c->cfg->seconds - (double)(time_t)c->cfg->seconds) * 1e9)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    __atomic_store_n(&run.stop, 1, __ATOMIC_RELAXED);
    int64_t expected = 0;
    bool failed = false;
    for (int i = 0; i < n; i++) {
        pthread_join(w[i].tid, NULL);
        res->ntx += w[i].th.ntx;
        expected += w[i].th.sum_delta;
        if (w[i].th.err && !failed) {
            failed = true;
            snprintf(res->note, sizeof res->note, "thread %d: %s", i, w[i].th.errmsg);
        }
    }
    res->secs = now_sec() - t0;
    res->tps = (double)res->ntx / res->secs;
    pthread_barrier_destroy(&run.start);
    free(w);
    char saved[sizeof res->note];
    memcpy(saved, res->note, sizeof saved);
    int rc = peer->finish(run.ctx, c, expected, res);
    if (failed)
        memcpy(res->note, saved, sizeof saved);
    else
        res->ok = rc == 0;
}
