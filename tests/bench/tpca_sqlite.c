/*
 * SQLite peer: WAL mode, one row per record (tables account, teller,
 * branch, history keyed by INTEGER PRIMARY KEY), one connection and
 * prepared statements per thread, BEGIN IMMEDIATE ... COMMIT.
 * flush mode: synchronous=FULL (the WAL is synced at every commit).
 * no_flush mode: synchronous=NORMAL; every K-th commit of a thread runs
 * with synchronous=FULL, which syncs the WAL and so makes it and every
 * earlier commit durable.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tpca.h"

#ifndef HAVE_SQLITE
const struct tpca_peer tpca_peer_sqlite = {.name = "sqlite",
                                           .missing = "not built (no sqlite3 found)"};
#else
#include <sqlite3.h>

static const char *tab_name[TAB_COUNT] = {"account", "teller", "branch", "history"};

struct sq_ctx {
    char path[4096];
    sqlite3 *db;
    bool full;
};

struct sq_thread {
    sqlite3 *db;
    sqlite3_stmt *upd[3], *hist, *begin, *commit;
    unsigned char filler[TPCA_REC];
};

static int sq_fail(char *buf, size_t n, sqlite3 *db, const char *what)
{
    snprintf(buf, n, "%s: %s", what, db ? sqlite3_errmsg(db) : "cannot open");
    return -1;
}

static int sq_exec(sqlite3 *db, const char *sql, char *err, size_t n)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, n, "%s: %s", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static void sq_rm(const struct tpca_config *cfg)
{
    tpca_rm(cfg, "sqlite.db");
    tpca_rm(cfg, "sqlite.db-wal");
    tpca_rm(cfg, "sqlite.db-shm");
}

static int sq_open(const char *path, bool full, sqlite3 **db, char *err, size_t n)
{
    if (sqlite3_open(path, db) != SQLITE_OK)
        return sq_fail(err, n, *db, "sqlite3_open");
    sqlite3_busy_timeout(*db, 60000);
    if (sq_exec(*db, "PRAGMA journal_mode=WAL", err, n) < 0 ||
        sq_exec(*db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", err, n) < 0)
        return -1;
    return 0;
}

static int sq_setup(const struct tpca_cell *c, void **ctx, char *err, size_t n)
{
    const struct tpca_config *cfg = c->cfg;
    struct sq_ctx *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    sq_rm(cfg);
    tpca_path(x->path, sizeof x->path, cfg, "sqlite.db");
    x->full = c->mode == MODE_FLUSH;
    sqlite3_stmt *ins = NULL;
    if (sq_open(x->path, x->full, &x->db, err, n) < 0)
        goto fail;
    char sql[512];
    for (int t = 0; t < 3; t++) {
        snprintf(sql, sizeof sql,
                 "CREATE TABLE %s(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL,"
                 " seq INTEGER NOT NULL, filler BLOB NOT NULL)", tab_name[t]);
        if (sq_exec(x->db, sql, err, n) < 0)
            goto fail;
    }
    if (sq_exec(x->db, "CREATE TABLE history(id INTEGER PRIMARY KEY, acct INTEGER, teller INTEGER,"
                " branch INTEGER, delta INTEGER, seq INTEGER, thread INTEGER, filler BLOB)", err, n) < 0 ||
        sq_exec(x->db, "BEGIN", err, n) < 0)
        goto fail;
    static const unsigned char zero[TPCA_REC];
    for (int t = 0; t < TAB_COUNT; t++) {
        if (t < 3)
            snprintf(sql, sizeof sql, "INSERT INTO %s VALUES(?1, 0, 0, ?2)", tab_name[t]);
        else
            snprintf(sql, sizeof sql, "INSERT INTO history VALUES(?1, 0, 0, 0, 0, 0, 0, ?2)");
        if (sqlite3_prepare_v2(x->db, sql, -1, &ins, NULL) != SQLITE_OK)
            goto fail_db;
        for (uint32_t i = 0; i < cfg->n[t]; i++) {
            sqlite3_bind_int64(ins, 1, i);
            sqlite3_bind_blob(ins, 2, zero, t < 3 ? TPCA_REC - 20 : TPCA_HIST - 32, SQLITE_STATIC);
            if (sqlite3_step(ins) != SQLITE_DONE)
                goto fail_db;
            sqlite3_reset(ins);
        }
        sqlite3_finalize(ins);
        ins = NULL;
    }
    if (sq_exec(x->db, "COMMIT", err, n) < 0 ||
        sq_exec(x->db, "PRAGMA wal_checkpoint(TRUNCATE)", err, n) < 0)
        goto fail;
    *ctx = x;
    return 0;
fail_db:
    sq_fail(err, n, x->db, "load");
fail:
    sqlite3_finalize(ins);
    sqlite3_close(x->db);
    free(x);
    sq_rm(cfg);
    return -1;
}

static int sq_thread_init(void *ctx, struct tpca_thread *th)
{
    struct sq_ctx *x = ctx;
    struct sq_thread *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    th->p = s;
    char *e = th->errmsg;
    size_t n = sizeof th->errmsg;
    if (sq_open(x->path, x->full, &s->db, e, n) < 0)
        return -1;
    char sql[256];
    for (int t = 0; t < 3; t++) {
        snprintf(sql, sizeof sql, "UPDATE %s SET balance=balance+?1, seq=?2, filler=?3 WHERE id=?4",
                 tab_name[t]);
        if (sqlite3_prepare_v2(s->db, sql, -1, &s->upd[t], NULL) != SQLITE_OK)
            return sq_fail(e, n, s->db, "prepare");
    }
    if (sqlite3_prepare_v2(s->db, "UPDATE history SET acct=?1, teller=?2, branch=?3, delta=?4,"
                           " seq=?5, thread=?6, filler=?7 WHERE id=?8", -1, &s->hist, NULL) ||
        sqlite3_prepare_v2(s->db, "BEGIN IMMEDIATE", -1, &s->begin, NULL) ||
        sqlite3_prepare_v2(s->db, "COMMIT", -1, &s->commit, NULL))
        return sq_fail(e, n, s->db, "prepare");
    return 0;
}

static int sq_step(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

static int sq_txn(void *ctx, struct tpca_thread *th, const struct tpca_op *op, bool durable)
{
    struct sq_thread *s = th->p;
    bool nf = !((struct sq_ctx *)ctx)->full;
    /* Not a prepared statement: PRAGMA synchronous takes effect when it
     * is compiled, not when it is stepped. */
    if (nf && durable && sq_exec(s->db, "PRAGMA synchronous=FULL", th->errmsg, sizeof th->errmsg) < 0)
        return -1;
    if (sq_step(s->begin) < 0)
        return sq_fail(th->errmsg, sizeof th->errmsg, s->db, "BEGIN");
    memset(s->filler, (int)(op->seq & 0xff), sizeof s->filler);
    for (int t = 0; t < 3; t++) {
        sqlite3_stmt *u = s->upd[t];
        sqlite3_bind_int64(u, 1, op->delta);
        sqlite3_bind_int64(u, 2, (sqlite3_int64)op->seq);
        sqlite3_bind_blob(u, 3, s->filler, TPCA_REC - 20, SQLITE_STATIC);
        sqlite3_bind_int64(u, 4, op->idx[t]);
        if (sq_step(u) < 0 || sqlite3_changes(s->db) != 1)
            goto fail;
    }
    sqlite3_stmt *h = s->hist;
    for (int t = 0; t < 3; t++)
        sqlite3_bind_int64(h, t + 1, op->idx[t]);
    sqlite3_bind_int64(h, 4, op->delta);
    sqlite3_bind_int64(h, 5, (sqlite3_int64)op->seq);
    sqlite3_bind_int64(h, 6, op->thread);
    sqlite3_bind_blob(h, 7, s->filler, TPCA_HIST - 32, SQLITE_STATIC);
    sqlite3_bind_int64(h, 8, op->idx[TAB_HISTORY]);
    if (sq_step(h) < 0 || sq_step(s->commit) < 0)
        goto fail;
    if (nf && durable && sq_exec(s->db, "PRAGMA synchronous=NORMAL", th->errmsg, sizeof th->errmsg) < 0)
        return -1;
    return 0;
fail:
    sq_fail(th->errmsg, sizeof th->errmsg, s->db, "update");
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static int sq_flush(void *ctx, struct tpca_thread *th)
{
    (void)ctx;
    struct sq_thread *s = th->p;
    /* A checkpoint syncs the WAL first, then the database. */
    return sq_exec(s->db, "PRAGMA wal_checkpoint(PASSIVE)", th->errmsg, sizeof th->errmsg);
}

static void sq_thread_fini(void *ctx, struct tpca_thread *th)
{
    (void)ctx;
    struct sq_thread *s = th->p;
    if (!s)
        return;
    for (int t = 0; t < 3; t++)
        sqlite3_finalize(s->upd[t]);
    sqlite3_finalize(s->hist);
    sqlite3_finalize(s->begin);
    sqlite3_finalize(s->commit);
    sqlite3_close(s->db);
    free(s);
    th->p = NULL;
}

static int sq_finish(void *ctx, const struct tpca_cell *c, int64_t expected, struct tpca_result *res)
{
    struct sq_ctx *x = ctx;
    int64_t sums[3] = {0, 0, 0};
    int rc = 0;
    for (int t = 0; t < 3 && rc == 0; t++) {
        char sql[128];
        sqlite3_stmt *st;
        snprintf(sql, sizeof sql, "SELECT sum(balance) FROM %s", tab_name[t]);
        if (sqlite3_prepare_v2(x->db, sql, -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW)
            rc = sq_fail(res->note, sizeof res->note, x->db, "verify");
        else
            sums[t] = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    if (rc == 0)
        rc = tpca_check_sums(sums, expected, res->note, sizeof res->note);
    sqlite3_close(x->db);
    free(x);
    sq_rm(c->cfg);
    return rc;
}

const struct tpca_peer tpca_peer_sqlite = {
    .name = "sqlite",
    .setup = sq_setup,
    .thread_init = sq_thread_init,
    .txn = sq_txn,
    .flush = sq_flush,
    .thread_fini = sq_thread_fini,
    .finish = sq_finish,
};
#endif
