/*
 * fuzz_mkcorpus OUTDIR: write the seed corpus of the recovery fuzzer.
 * Each seed is a real log made by librvm (in memory) and left with live
 * records, encoded in the fuzzer's input layout (fuzz_recovery.h); a few
 * are garbage.  The checked-in tests/torture/corpus/ came from this.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_recovery.h"
#include "log_format.h"
#include "memio.h"
#include "rvm/rvm.h"
#include "rvm_io.h"

#define S LOG_STATUS_SIZE_DEFAULT

static const char *outdir;

static void save(const char *name, const uint8_t *b, size_t n)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", outdir, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(b, 1, n, f) != n) {
        perror(p);
        exit(1);
    }
    fclose(f);
    printf("%s: %zu bytes\n", name, n);
}

/* Encode the in-memory log as a seed: newest status slot, data to its last byte. */
static void save_log(const char *name, uint8_t flags)
{
    size_t len;
    const unsigned char *f = memio_get(FUZZ_LOG_PATH, &len);
    struct log_status a, b;
    memcpy(&a, f, sizeof a);
    memcpy(&b, f + S, sizeof b);
    const unsigned char *slot = b.magic == LOG_STATUS_MAGIC && b.gen > a.gen ? f + S : f;
    struct log_status st;
    memcpy(&st, slot, sizeof st);
    size_t dlen = (size_t)st.data_size;
    const unsigned char *data = f + 2 * S;
    while (dlen && !data[dlen - 1])
        dlen--;
    dlen = (dlen + 7) & ~(size_t)7;
    size_t cap = 3 + st.used + dlen;
    uint8_t *out = malloc(cap);
    size_t n = fuzz_encode(flags, slot, st.used, data, dlen, out, cap);
    save(name, out, n);
    free(out);
}

static char *map_seg(const char *path, size_t len)
{
    rvm_region_t *r = rvm_malloc_region();
    r->data_dev = (char *)path;
    r->length = len;
    if (rvm_map(r, NULL) != RVM_SUCCESS) {
        fprintf(stderr, "map %s: %s\n", path, rvm_errmsg());
        exit(1);
    }
    char *m = r->vmaddr;
    r->data_dev = NULL;
    rvm_free_region(r);
    return m;
}

static void txn(char *m, size_t off, size_t len, int byte, rvm_mode_t mode)
{
    rvm_tid_t t;
    rvm_init_tid(&t);
    rvm_begin_transaction(&t, restore);
    rvm_set_range(&t, m + off, len);
    memset(m + off, byte, len);
    if (rvm_end_transaction(&t, mode) != RVM_SUCCESS) {
        fprintf(stderr, "commit: %s\n", rvm_errmsg());
        exit(1);
    }
}

/* A fresh in-memory log of data size D, initialized. */
static void start(size_t D, unsigned long flags)
{
    memio_reset(false);
    rvm_io_set(memio_methods());
    rvm_options_t o;
    rvm_init_options(&o);
    o.log_dev = (char *)FUZZ_LOG_PATH;
    rvm_offset_t len = RVM_MK_OFFSET(0, D);
    if (rvm_create_log(&o, &len, 0600) != RVM_SUCCESS)
        exit(1);
    o.truncate = 0;
    o.flags = flags;
    if (RVM_INIT(&o) != RVM_SUCCESS)
        exit(1);
}

/* Leave the records in the log: no terminate, as after a crash.  The
 * next start() re-initializes librvm after a terminate of its own. */
static void stop(void)
{
    rvm_flush();
    rvm_terminate();
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_mkcorpus OUTDIR\n");
        return 2;
    }
    outdir = argv[1];

    start(64 * 1024, 0);
    stop();
    save_log("empty-log", 0);

    start(64 * 1024, 0);
    char *m = map_seg("/tmp/rvm-fuzz-seg-a", 16384);
    txn(m, 0, 8, 'a', flush);
    txn(m, 100, 300, 'b', flush);
    txn(m, 8000, 17, 'c', flush);
    save_log("three-flush-commits", 0);
    stop();

    start(64 * 1024, RVM_COALESCE_TRANS);
    m = map_seg("/tmp/rvm-fuzz-seg-a", 16384);
    char *m2 = map_seg("/tmp/rvm-fuzz-seg-b", 8192);
    for (int i = 0; i < 20; i++)
        txn(i % 2 ? m : m2, (size_t)(i * 97) % 4000, 40, 'A' + i, no_flush);
    txn(m, 5000, 3, 'z', flush);
    save_log("two-segments-batch", FZ_SEGS);
    stop();

    /* Many commits through a 64 KiB log: truncations and a wrap. */
    start(64 * 1024, 0);
    m = map_seg("/tmp/rvm-fuzz-seg-a", 65536);
    for (int i = 0; i < 60; i++)
        txn(m, (size_t)(i * 1031) % 60000, 3000, i, flush);
    save_log("wrapped", FZ_SEGS);
    stop();

    start(64 * 1024, RVM_ALL_OPTIMIZATIONS);
    m = map_seg("/tmp/rvm-fuzz-seg-a", 16384);
    for (int i = 0; i < 10; i++)
        txn(m, (size_t)i * 50, 100, i, no_flush);
    rvm_truncate();
    txn(m, 10, 10, 'q', flush);
    save_log("after-truncate", FZ_SEGS | FZ_FIX_STATUS | FZ_FIX_RECORDS);
    stop();

    rvm_io_set(NULL);
    uint8_t g[64] = {FZ_RAW};
    save("raw-empty", g, 1);
    for (int i = 1; i < 64; i++)
        g[i] = (uint8_t)(i * 37 + 11);
    save("raw-garbage", g, sizeof g);
    uint8_t z[3 + 80] = {FZ_FIX_STATUS, 80, 0};
    save("zero-status-fixed", z, sizeof z);
    return 0;
}
