/*
 * LMDB peer: one key per record (a table byte and the big-endian record
 * number) in the main database; a transaction is mdb_txn_begin, a get and
 * a put of each balance record, a put of the history entry, and
 * mdb_txn_commit.  LMDB has one writer at a time, so N threads queue on
 * its writer lock.
 * flush mode: default durability (the commit syncs the data file).
 * no_flush mode: MDB_NOSYNC, and mdb_env_sync(force) every K commits.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tpca.h"

#ifndef HAVE_LMDB
const struct tpca_peer tpca_peer_lmdb = {.name = "lmdb", .missing = "not built (no lmdb found)"};
#else
#include <lmdb.h>

struct lm_ctx {
    MDB_env *env;
    MDB_dbi dbi;
};

static int lm_fail(char *buf, size_t n, const char *what, int rc)
{
    snprintf(buf, n, "%s: %s", what, mdb_strerror(rc));
    return -1;
}

static void lm_key(unsigned char k[5], int table, uint32_t idx)
{
    k[0] = (unsigned char)table;
    k[1] = (unsigned char)(idx >> 24);
    k[2] = (unsigned char)(idx >> 16);
    k[3] = (unsigned char)(idx >> 8);
    k[4] = (unsigned char)idx;
}

static void lm_rm(const struct tpca_config *cfg)
{
    tpca_rm(cfg, "lmdb.mdb");
    tpca_rm(cfg, "lmdb.mdb-lock");
}

static int lm_setup(const struct tpca_cell *c, void **ctx, char *err, size_t n)
{
    const struct tpca_config *cfg = c->cfg;
    struct lm_ctx *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    lm_rm(cfg);
    char path[4096];
    tpca_path(path, sizeof path, cfg, "lmdb.mdb");
    MDB_txn *txn = NULL;
    int rc;
    unsigned flags = MDB_NOSUBDIR | (c->mode == MODE_NO_FLUSH ? MDB_NOSYNC : 0);
    if ((rc = mdb_env_create(&x->env)) || (rc = mdb_env_set_mapsize(x->env, (size_t)1 << 30)) ||
        (rc = mdb_env_set_maxreaders(x->env, 128)) ||
        (rc = mdb_env_open(x->env, path, flags, 0600))) {
        lm_fail(err, n, "mdb_env_open", rc);
        goto fail;
    }
    if ((rc = mdb_txn_begin(x->env, NULL, 0, &txn)) || (rc = mdb_dbi_open(txn, NULL, 0, &x->dbi))) {
        lm_fail(err, n, "mdb_txn_begin", rc);
        goto fail;
    }
    static const unsigned char zero[TPCA_REC];
    for (int t = 0; t < TAB_COUNT; t++)
        for (uint32_t i = 0; i < cfg->n[t]; i++) {
            unsigned char k[5];
            lm_key(k, t, i);
            MDB_val kv = {5, k}, vv = {t < 3 ? TPCA_REC : TPCA_HIST, (void *)zero};
            if ((rc = mdb_put(txn, x->dbi, &kv, &vv, MDB_APPEND))) {
                lm_fail(err, n, "load", rc);
                goto fail;
            }
        }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc || (rc = mdb_env_sync(x->env, 1))) {
        lm_fail(err, n, "load commit", rc);
        goto fail;
    }
    *ctx = x;
    return 0;
fail:
    if (txn)
        mdb_txn_abort(txn);
    if (x->env)
        mdb_env_close(x->env);
    free(x);
    lm_rm(cfg);
    return -1;
}

static int lm_txn(void *ctx, struct tpca_thread *th, const struct tpca_op *op, bool durable)
{
    struct lm_ctx *x = ctx;
    MDB_txn *txn;
    int rc = mdb_txn_begin(x->env, NULL, 0, &txn);
    if (rc)
        return lm_fail(th->errmsg, sizeof th->errmsg, "mdb_txn_begin", rc);
    unsigned char k[5], rec[TPCA_REC];
    MDB_val kv = {5, k}, vv;
    for (int t = 0; t < 3; t++) {
        lm_key(k, t, op->idx[t]);
        if ((rc = mdb_get(txn, x->dbi, &kv, &vv)) || vv.mv_size != TPCA_REC) {
            mdb_txn_abort(txn);
            return lm_fail(th->errmsg, sizeof th->errmsg, "mdb_get", rc ? rc : MDB_CORRUPTED);
        }
        memcpy(rec, vv.mv_data, TPCA_REC);
        tpca_rec_update(rec, op->idx[t], op->delta, op->seq);
        vv.mv_size = TPCA_REC;
        vv.mv_data = rec;
        if ((rc = mdb_put(txn, x->dbi, &kv, &vv, 0))) {
            mdb_txn_abort(txn);
            return lm_fail(th->errmsg, sizeof th->errmsg, "mdb_put", rc);
        }
    }
    lm_key(k, TAB_HISTORY, op->idx[TAB_HISTORY]);
    tpca_hist_fill(rec, op);
    vv.mv_size = TPCA_HIST;
    vv.mv_data = rec;
    if ((rc = mdb_put(txn, x->dbi, &kv, &vv, 0))) {
        mdb_txn_abort(txn);
        return lm_fail(th->errmsg, sizeof th->errmsg, "mdb_put", rc);
    }
    if ((rc = mdb_txn_commit(txn)))
        return lm_fail(th->errmsg, sizeof th->errmsg, "mdb_txn_commit", rc);
    if (th->cell->mode == MODE_NO_FLUSH && durable && (rc = mdb_env_sync(x->env, 1)))
        return lm_fail(th->errmsg, sizeof th->errmsg, "mdb_env_sync", rc);
    return 0;
}

static int lm_flush(void *ctx, struct tpca_thread *th)
{
    struct lm_ctx *x = ctx;
    int rc = mdb_env_sync(x->env, 1);
    return rc ? lm_fail(th->errmsg, sizeof th->errmsg, "mdb_env_sync", rc) : 0;
}

static int lm_finish(void *ctx, const struct tpca_cell *c, int64_t expected, struct tpca_result *res)
{
    struct lm_ctx *x = ctx;
    int64_t sums[3] = {0, 0, 0};
    MDB_txn *txn = NULL;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(x->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        txn = NULL;
    if (!rc && !(rc = mdb_cursor_open(txn, x->dbi, &cur))) {
        MDB_val kv, vv;
        for (int op = MDB_FIRST; (rc = mdb_cursor_get(cur, &kv, &vv, (MDB_cursor_op)op)) == 0;
             op = MDB_NEXT) {
            int t = ((unsigned char *)kv.mv_data)[0];
            if (t < 3)
                sums[t] += tpca_balance(vv.mv_data);
        }
        mdb_cursor_close(cur);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    if (txn)
        mdb_txn_abort(txn);
    int ret = rc ? lm_fail(res->note, sizeof res->note, "verify", rc)
                 : tpca_check_sums(sums, expected, res->note, sizeof res->note);
    mdb_env_close(x->env);
    free(x);
    lm_rm(c->cfg);
    return ret;
}

const struct tpca_peer tpca_peer_lmdb = {
    .name = "lmdb",
    .setup = lm_setup,
    .txn = lm_txn,
    .flush = lm_flush,
    .finish = lm_finish,
};
#endif
