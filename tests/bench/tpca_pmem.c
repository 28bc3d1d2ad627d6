/*
 * PMDK libpmemobj peer: the four tables are the root object of a pool on a
 * regular file; a transaction is pmemobj_tx_begin, pmemobj_tx_add_range
 * of each record (undo log), the writes, pmemobj_tx_commit.
 *
 * On a file that is not persistent memory (pmem_is_pmem() == 0, as on
 * any disk file system) libpmemobj makes every persist an msync(2) of the
 * touched pages, several per transaction.  libpmemobj has no deferred
 * commit, so no_flush cells run the same durable transactions.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tpca.h"

int tpca_pmem_is_pmem = -1;

#ifndef HAVE_PMEMOBJ
const struct tpca_peer tpca_peer_pmem = {.name = "pmemobj",
                                         .missing = "not built (no libpmemobj found)"};
#else
#include <libpmem.h>
#include <libpmemobj.h>

struct pm_ctx {
    PMEMobjpool *pop;
    PMEMoid root;
    unsigned char *base;
};

static int pm_setup(const struct tpca_cell *c, void **ctx, char *err, size_t n)
{
    const struct tpca_config *cfg = c->cfg;
    char path[4096];
    tpca_path(path, sizeof path, cfg, "pmem.pool");
    tpca_rm(cfg, "pmem.pool");
    struct pm_ctx *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    uint64_t size = tpca_layout_size(cfg);
    size_t pool = (size_t)(size * 2 + (64u << 20));
    x->pop = pmemobj_create(path, "tpca", pool, 0600);
    if (!x->pop) {
        snprintf(err, n, "pmemobj_create: %s", pmemobj_errormsg());
        free(x);
        return -1;
    }
    x->root = pmemobj_root(x->pop, (size_t)size); /* zeroed */
    x->base = pmemobj_direct(x->root);
    if (!x->base) {
        snprintf(err, n, "pmemobj_root: %s", pmemobj_errormsg());
        pmemobj_close(x->pop);
        free(x);
        tpca_rm(cfg, "pmem.pool");
        return -1;
    }
    tpca_pmem_is_pmem = pmem_is_pmem(x->base, (size_t)size);
    *ctx = x;
    return 0;
}

static int pm_txn(void *ctx, struct tpca_thread *th, const struct tpca_op *op, bool durable)
{
    struct pm_ctx *x = ctx;
    const struct tpca_config *cfg = th->cell->cfg;
    (void)durable;
    if (pmemobj_tx_begin(x->pop, NULL, TX_PARAM_NONE) != 0) {
        pmemobj_tx_end();
        goto fail;
    }
    for (int t = 0; t < 3; t++) {
        uint64_t off = tpca_offset(cfg, (enum tpca_table)t, op->idx[t]);
        if (pmemobj_tx_add_range(x->root, off, TPCA_REC) != 0) {
            pmemobj_tx_end();
            goto fail;
        }
        tpca_rec_update(x->base + off, op->idx[t], op->delta, op->seq);
    }
    uint64_t off = tpca_offset(cfg, TAB_HISTORY, op->idx[TAB_HISTORY]);
    if (pmemobj_tx_add_range(x->root, off, TPCA_HIST) != 0) {
        pmemobj_tx_end();
        goto fail;
    }
    tpca_hist_fill(x->base + off, op);
    pmemobj_tx_commit();
    if (pmemobj_tx_end() != 0)
        goto fail;
    return 0;
fail:
    snprintf(th->errmsg, sizeof th->errmsg, "pmemobj tx: %s", pmemobj_errormsg());
    return -1;
}

static int pm_finish(void *ctx, const struct tpca_cell *c, int64_t expected, struct tpca_result *res)
{
    struct pm_ctx *x = ctx;
    int rc = tpca_check_image(c->cfg, x->base, expected, res->note, sizeof res->note);
    pmemobj_close(x->pop);
    free(x);
    tpca_rm(c->cfg, "pmem.pool");
    return rc;
}

const struct tpca_peer tpca_peer_pmem = {
    .name = "pmemobj",
    .setup = pm_setup,
    .txn = pm_txn,
    .finish = pm_finish,
};
#endif
