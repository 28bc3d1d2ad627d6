/*
 * The raw limit: one 4 KiB overwrite of a preallocated (zero-written,
 * synced) file plus fdatasync per transaction, walking the file like a
 * log.  No records are kept; this is the best a commit that needs one
 * synchronous write can do on this disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tpca.h"

#define RAW_FILE_BYTES (64u << 20)
#define RAW_BLOCK 4096u

struct raw_ctx {
    int fd;
    uint64_t pos;
    unsigned char *blk;
};

static int raw_setup(const struct tpca_cell *c, void **ctx, char *err, size_t n)
{
    char p[4096];
    tpca_path(p, sizeof p, c->cfg, "raw.dat");
    unlink(p);
    struct raw_ctx *x = calloc(1, sizeof *x);
    if (!x || posix_memalign((void **)&x->blk, 4096, 1u << 20)) {
        free(x);
        snprintf(err, n, "out of memory");
        return -1;
    }
    memset(x->blk, 0, 1u << 20);
    x->fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (x->fd < 0)
        goto fail;
    for (uint64_t off = 0; off < RAW_FILE_BYTES; off += 1u << 20)
        if (pwrite(x->fd, x->blk, 1u << 20, (off_t)off) != 1 << 20)
            goto fail;
    if (fsync(x->fd) < 0)
        goto fail;
    *ctx = x;
    return 0;
fail:
    snprintf(err, n, "%s: %s", p, strerror(errno));
    if (x->fd >= 0)
        close(x->fd);
    free(x->blk);
    free(x);
    return -1;
}

static int raw_txn(void *ctx, struct tpca_thread *th, const struct tpca_op *op, bool durable)
{
    struct raw_ctx *x = ctx;
    (void)durable;
    memcpy(x->blk, op, sizeof *op);
    if (pwrite(x->fd, x->blk, RAW_BLOCK, (off_t)x->pos) != RAW_BLOCK || fdatasync(x->fd) < 0) {
        snprintf(th->errmsg, sizeof th->errmsg, "raw write: %s", strerror(errno));
        return -1;
    }
    x->pos = (x->pos + RAW_BLOCK) % RAW_FILE_BYTES;
    return 0;
}

static int raw_finish(void *ctx, const struct tpca_cell *c, int64_t expected, struct tpca_result *res)
{
    struct raw_ctx *x = ctx;
    (void)expected;
    (void)res;
    close(x->fd);
    free(x->blk);
    free(x);
    tpca_rm(c->cfg, "raw.dat");
    return 0;
}

const struct tpca_peer tpca_peer_raw = {
    .name = "raw",
    .single_thread = true,
    .flush_only = true,
    .setup = raw_setup,
    .txn = raw_txn,
    .finish = raw_finish,
};
