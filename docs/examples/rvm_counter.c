/*
 * rvm_counter: a persistent counter kept in recoverable memory.
 *
 *   rvm_counter DIR          add one to the counter, print it
 *   rvm_counter DIR loop     add one forever, printing each value once it
 *                            is durable (kill -9 it whenever you like)
 *   rvm_counter DIR show     print the counter
 *   rvm_counter DIR auto     add one in an auto transaction (no set_range)
 *
 * DIR holds the RVM log (DIR/counter.log, created on first use) and the
 * segment with the data (DIR/counter.seg).  Every increment is one
 * transaction; after a crash, rvm_initialize() replays the log, so the
 * counter is the last value printed (or one more, if the process died
 * after the commit but before printf).
 *
 * Build:  cc -o rvm_counter rvm_counter.c $(pkg-config --cflags --libs rvm)
 */
#include <rvm/rvm.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What lives in the segment.  It is plain memory once mapped. */
struct counter {
    uint64_t magic;     /* "RVMCOUNT" once initialized */
    uint64_t count;
    uint64_t history[8]; /* the last values, to show a multi-range update */
};
#define COUNTER_MAGIC 0x544e554f434d5652ull

static int die(const char *what, rvm_return_t rc)
{
    fprintf(stderr, "rvm_counter: %s: %s %s\n", what, rvm_return(rc), rvm_errmsg());
    return 1;
}

static rvm_return_t increment(struct counter *c)
{
    rvm_tid_t tid;
    rvm_init_tid(&tid);
    rvm_return_t rc = rvm_begin_transaction(&tid, restore);
    if (rc != RVM_SUCCESS)
        return rc;
    /* Declare every byte the transaction changes, then change it. */
    uint64_t next = c->count + 1;
    if ((rc = rvm_set_range(&tid, &c->count, sizeof c->count)) != RVM_SUCCESS ||
        (rc = rvm_modify_bytes(&tid, &c->history[next % 8], &next,
                               sizeof next)) != RVM_SUCCESS) {
        rvm_abort_transaction(&tid);
        return rc;
    }
    c->count = next;
    /* flush: returns once the new count is on disk */
    return rvm_end_transaction(&tid, flush);
}

/* The same without declaring anything: librvm write-protects the region,
 * notices the writes and logs the bytes that changed. */
static rvm_return_t increment_auto(struct counter *c)
{
    rvm_tid_t tid;
    rvm_init_tid(&tid);
    rvm_return_t rc = rvm_begin_auto_transaction(&tid, restore);
    if (rc != RVM_SUCCESS)
        return rc;
    uint64_t next = c->count + 1;
    c->history[next % 8] = next;
    c->count = next;
    return rvm_end_transaction(&tid, flush);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: rvm_counter DIR [loop|show|auto]\n");
        return 2;
    }
    const char *cmd = argc == 3 ? argv[2] : "once";
    char log[4096], seg[4096];
    snprintf(log, sizeof log, "%s/counter.log", argv[1]);
    snprintf(seg, sizeof seg, "%s/counter.seg", argv[1]);

    /* 1. Initialize: open (or create) the log and recover it. */
    rvm_options_t *opts = rvm_malloc_options();
    if (!opts)
        return die("rvm_malloc_options", RVM_ENO_MEMORY);
    opts->log_dev = strdup(log);
    opts->create_log_file = rvm_true;
    opts->create_log_size = RVM_MK_OFFSET(0, 1024 * 1024);
    rvm_return_t rc = RVM_INIT(opts);
    rvm_free_options(opts);
    if (rc != RVM_SUCCESS)
        return die("rvm_initialize", rc);

    /* 2. Map one page of the segment; RVM picks the address. */
    rvm_region_t *region = rvm_malloc_region();
    if (!region)
        return die("rvm_malloc_region", RVM_ENO_MEMORY);
    region->data_dev = strdup(seg);
    region->offset = RVM_MK_OFFSET(0, 0);
    region->length = RVM_PAGE_SIZE;
    if ((rc = rvm_map(region, NULL)) != RVM_SUCCESS)
        return die("rvm_map", rc);
    struct counter *c = (struct counter *)region->vmaddr;

    /* 3. First use: initialize the structure in a transaction too. */
    if (c->magic != COUNTER_MAGIC) {
        rvm_tid_t tid;
        rvm_init_tid(&tid);
        struct counter fresh = {.magic = COUNTER_MAGIC};
        if ((rc = rvm_begin_transaction(&tid, no_restore)) != RVM_SUCCESS ||
            (rc = rvm_modify_bytes(&tid, c, &fresh, sizeof fresh)) != RVM_SUCCESS ||
            (rc = rvm_end_transaction(&tid, flush)) != RVM_SUCCESS)
            return die("initializing the counter", rc);
    }

    if (strcmp(cmd, "show") == 0) {
        printf("%llu\n", (unsigned long long)c->count);
    } else if (strcmp(cmd, "loop") == 0) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        for (;;) {
            if ((rc = increment(c)) != RVM_SUCCESS)
                return die("increment", rc);
            printf("%llu\n", (unsigned long long)c->count);
        }
    } else if (strcmp(cmd, "once") == 0 || strcmp(cmd, "auto") == 0) {
        rc = strcmp(cmd, "auto") == 0 ? increment_auto(c) : increment(c);
        if (rc != RVM_SUCCESS)
            return die("increment", rc);
        printf("%llu\n", (unsigned long long)c->count);
    } else {
        fprintf(stderr, "rvm_counter: unknown command %s\n", cmd);
        return 2;
    }

    /* 4. Unmap and shut down (flushes, closes the log). */
    if ((rc = rvm_unmap(region)) != RVM_SUCCESS)
        return die("rvm_unmap", rc);
    rvm_free_region(region);
    if ((rc = rvm_terminate()) != RVM_SUCCESS)
        return die("rvm_terminate", rc);
    return 0;
}
