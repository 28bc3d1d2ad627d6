/*
 * librvm peer: the four tables are one recoverable region of one segment.
 * A transaction is begin(no_restore), four set_ranges (100, 100, 100 and
 * 50 bytes) with the record writes, end(flush) or end(no_flush) followed
 * by rvm_flush() every K commits.
 *
 * After the run the in-memory image is checked, RVM is terminated and
 * initialized again, and the region is mapped anew (recovery from the
 * log): the recovered image must hold every committed transaction.
 */
#include <stdio.h>
#include <stdlib.h>

#include "rvm/rvm.h"
#include "tpca.h"

struct rvm_ctx {
    rvm_length_t flags;
    char logp[4096], segp[4096];
    rvm_length_t len;
    uint64_t log_bytes;
    unsigned char *base;
};

unsigned char *tpca_rvm_base(void *ctx)
{
    return ((struct rvm_ctx *)ctx)->base;
}

static int rvm_fail(char *buf, size_t n, const char *what, rvm_return_t r)
{
    snprintf(buf, n, "%s: %s %s", what, rvm_return(r), rvm_errmsg());
    return -1;
}

static int rvm_start(struct rvm_ctx *x, bool create, char *err, size_t n)
{
    rvm_options_t o;
    rvm_init_options(&o);
    o.log_dev = x->logp;
    o.flags = x->flags;
    rvm_return_t r;
    if (create) {
        rvm_offset_t len = RVM_LENGTH_TO_OFFSET((rvm_length_t)x->log_bytes);
        if ((r = rvm_create_log(&o, &len, 0600)) != RVM_SUCCESS)
            return rvm_fail(err, n, "rvm_create_log", r);
    }
    if ((r = RVM_INIT(&o)) != RVM_SUCCESS)
        return rvm_fail(err, n, "rvm_initialize", r);
    rvm_region_t reg;
    rvm_init_region(&reg);
    reg.data_dev = x->segp;
    reg.length = x->len;
    if ((r = rvm_map(&reg, NULL)) != RVM_SUCCESS) {
        rvm_terminate();
        return rvm_fail(err, n, "rvm_map", r);
    }
    x->base = (unsigned char *)reg.vmaddr;
    return 0;
}

static void rvm_stop(struct rvm_ctx *x)
{
    rvm_region_t reg;
    rvm_init_region(&reg);
    reg.data_dev = x->segp;
    reg.vmaddr = (char *)x->base;
    reg.length = x->len;
    rvm_unmap(&reg);
    rvm_terminate();
    x->base = NULL;
}

static int rvm_setup_flags(const struct tpca_cell *c, void **ctx, char *err, size_t n,
                           rvm_length_t flags)
{
    struct rvm_ctx *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    x->flags = flags;
    tpca_path(x->logp, sizeof x->logp, c->cfg, "rvm.log");
    tpca_path(x->segp, sizeof x->segp, c->cfg, "rvm.seg");
    tpca_rm(c->cfg, "rvm.log");
    tpca_rm(c->cfg, "rvm.seg");
    x->log_bytes = c->cfg->log_bytes;
    x->len = RVM_ROUND_LENGTH_UP_TO_PAGE_SIZE(tpca_layout_size(c->cfg));
    if (rvm_start(x, true, err, n) < 0) {
        free(x);
        return -1;
    }
    *ctx = x;
    return 0;
}

static int rvm_setup_opt(const struct tpca_cell *c, void **ctx, char *err, size_t n)
{
    return rvm_setup_flags(c, ctx, err, n, RVM_ALL_OPTIMIZATIONS);
}

static int rvm_setup_noopt(const struct tpca_cell *c, void **ctx, char *err, size_t n)
{
    return rvm_setup_flags(c, ctx, err, n, 0);
}

static int rvm_thread_init(void *ctx, struct tpca_thread *th)
{
    (void)ctx;
    th->p = rvm_malloc_tid();
    if (!th->p) {
        snprintf(th->errmsg, sizeof th->errmsg, "rvm_malloc_tid failed");
        return -1;
    }
    return 0;
}

static void rvm_thread_fini(void *ctx, struct tpca_thread *th)
{
    (void)ctx;
    rvm_free_tid(th->p);
    th->p = NULL;
}

static int rvm_txn(void *ctx, struct tpca_thread *th, const struct tpca_op *op, bool durable)
{
    struct rvm_ctx *x = ctx;
    rvm_tid_t *tid = th->p;
    const struct tpca_config *cfg = th->cell->cfg;
    rvm_return_t r = rvm_begin_transaction(tid, no_restore);
    if (r != RVM_SUCCESS)
        return rvm_fail(th->errmsg, sizeof th->errmsg, "begin", r);
    for (int t = 0; t < 3; t++) {
        unsigned char *rec = x->base + tpca_offset(cfg, (enum tpca_table)t, op->idx[t]);
        if ((r = rvm_set_range(tid, rec, TPCA_REC)) != RVM_SUCCESS)
            return rvm_fail(th->errmsg, sizeof th->errmsg, "set_range", r);
        tpca_rec_update(rec, op->idx[t], op->delta, op->seq);
    }
    unsigned char *h = x->base + tpca_offset(cfg, TAB_HISTORY, op->idx[TAB_HISTORY]);
    if ((r = rvm_set_range(tid, h, TPCA_HIST)) != RVM_SUCCESS)
        return rvm_fail(th->errmsg, sizeof th->errmsg, "set_range", r);
    tpca_hist_fill(h, op);
    bool nf = th->cell->mode == MODE_NO_FLUSH;
    if ((r = rvm_end_transaction(tid, nf ? no_flush : flush)) != RVM_SUCCESS)
        return rvm_fail(th->errmsg, sizeof th->errmsg, "end_transaction", r);
    if (nf && durable && (r = rvm_flush()) != RVM_SUCCESS)
        return rvm_fail(th->errmsg, sizeof th->errmsg, "rvm_flush", r);
    return 0;
}

static int rvm_flush_all(void *ctx, struct tpca_thread *th)
{
    (void)ctx;
    rvm_return_t r = rvm_flush();
    return r == RVM_SUCCESS ? 0 : rvm_fail(th->errmsg, sizeof th->errmsg, "rvm_flush", r);
}

static int rvm_finish(void *ctx, const struct tpca_cell *c, int64_t expected, struct tpca_result *res)
{
    struct rvm_ctx *x = ctx;
    int rc = tpca_check_image(c->cfg, x->base, expected, res->note, sizeof res->note);
    rvm_stats_t st;
    if (rvm_get_stats(&st) == RVM_SUCCESS && res->ntx) {
        double n = (double)res->ntx;
        res->has_log = true;
        res->set_range_b = (double)st.bytes_set_range / n;
        res->logged_b = (double)st.bytes_logged / n;
        res->log_written_b = (double)st.log_bytes_written / n;
        res->forces = (double)st.n_forces;
        res->group_commits = (double)st.n_group_commits;
        res->truncations = (double)st.n_truncations;
    }
    rvm_stop(x);
    if (rc == 0) {
        /* Recover from the log into fresh memory and check again. */
        char err[160];
        if (rvm_start(x, false, err, sizeof err) < 0) {
            snprintf(res->note, sizeof res->note, "after restart: %s", err);
            rc = -1;
        } else {
            char note[150];
            rc = tpca_check_image(c->cfg, x->base, expected, note, sizeof note);
            if (rc < 0)
                snprintf(res->note, sizeof res->note, "recovered image: %s", note);
            rvm_stop(x);
        }
    }
    tpca_rm(c->cfg, "rvm.log");
    tpca_rm(c->cfg, "rvm.seg");
    free(x);
    return rc;
}

const struct tpca_peer tpca_peer_rvm = {
    .name = "rvm",
    .setup = rvm_setup_opt,
    .thread_init = rvm_thread_init,
    .txn = rvm_txn,
    .flush = rvm_flush_all,
    .thread_fini = rvm_thread_fini,
    .finish = rvm_finish,
};

const struct tpca_peer tpca_peer_rvm_noopt = {
    .name = "rvm-noopt",
    .setup = rvm_setup_noopt,
    .thread_init = rvm_thread_init,
    .txn = rvm_txn,
    .flush = rvm_flush_all,
    .thread_fini = rvm_thread_fini,
    .finish = rvm_finish,
};
