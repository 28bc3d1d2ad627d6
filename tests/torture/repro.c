/*
 * torture_repro: the librvm bugs the torture harness found (BUGS.md), each
 * as a short deterministic sequence over the power-failure layer.  Each
 * must pass once its bug is fixed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log_format.h"
#include "powerfail_io.h"
#include "rvm/rvm.h"

static char dir[256], logp[300], segp[2][300];

static void fresh(void)
{
    unlink(logp);
    unlink(segp[0]);
    unlink(segp[1]);
    rvm_options_t *o = rvm_malloc_options();
    o->log_dev = strdup(logp);
    rvm_offset_t len = RVM_MK_OFFSET(0, 65536);
    if (rvm_create_log(o, &len, 0600) != RVM_SUCCESS)
        exit(2);
    rvm_free_options(o);
}

static char *map(int i)
{
    rvm_region_t *r = rvm_malloc_region();
    r->data_dev = segp[i];
    r->length = 8192;
    if (rvm_map(r, NULL) != RVM_SUCCESS)
        exit(2);
    char *m = r->vmaddr;
    r->data_dev = NULL;
    rvm_free_region(r);
    return m;
}

/* Start RVM (no automatic truncation) over the power-failure layer. */
static void start_pf(const struct pf_config *c)
{
    pf_install(c);
    rvm_options_t *o = rvm_malloc_options();
    o->log_dev = strdup(logp);
    o->truncate = 0;
    if (RVM_INIT(o) != RVM_SUCCESS)
        exit(2);
    rvm_free_options(o);
}

/* Start RVM over the power-failure layer; the nth I/O fails with EIO. */
static void start(unsigned fail_at)
{
    struct pf_config c = {.seed = 1, .keep = PF_KEEP_ALL, .fail_at = fail_at,
                          .fail_err = EIO, .fail_times = 1, .log_path = logp,
                          .status_area = 2ull * LOG_STATUS_SIZE_DEFAULT};
    start_pf(&c);
}

/* After the child's power loss: recover with plain I/O, return byte off of seg 0. */
static int recovered_byte(size_t off)
{
    rvm_options_t *o = rvm_malloc_options();
    o->log_dev = strdup(logp);
    rvm_return_t rc = RVM_INIT(o);
    if (rc != RVM_SUCCESS) {
        printf("  recovery failed: %s (%s)\n", rvm_return(rc), rvm_errmsg());
        return -1;
    }
    printf("  recovery: %s\n", rvm_errmsg());
    rvm_terminate();
    rvm_free_options(o);
    FILE *f = fopen(segp[0], "rb");
    unsigned char b[8192] = {0};
    if (f) {
        if (fread(b, 1, sizeof b, f) == 0)
            b[off] = 0;
        fclose(f);
    }
    return b[off];
}

static int child_status(void)
{
    int st;
    if (wait(&st) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void set(rvm_tid_t *t, char *p, int c)
{
    rvm_set_range(t, p, 8);
    memset(p, c, 8);
}

/* Bug 1: abort of a transaction with ranges in two regions. */
static int bug1_abort_two_regions(void)
{
    fresh();
    start(0);
    char *a = map(0), *b = map(1);
    char *hi = a > b ? a : b, *lo = a > b ? b : a;
    rvm_tid_t t;
    rvm_init_tid(&t);
    rvm_begin_transaction(&t, restore);
    rvm_set_range(&t, hi, 4096);
    memset(hi, 0xAA, 4096);
    rvm_set_range(&t, lo + 100, 8);
    rvm_set_range(&t, hi + 1000, 100);
    rvm_abort_transaction(&t);
    int ok = hi[1000] == 0;
    printf("  hi[1000] after abort: 0x%02x, expected 0x00\n", (unsigned char)hi[1000]);
    rvm_terminate();
    pf_uninstall();
    return ok;
}

/* Bug 2: flush commit whose force fails, aborted, then rvm_flush, power loss. */
static int bug2_aborted_commit_replayed(void)
{
    fresh();
    if (fork() == 0) {
        start(6); /* I/O 6: the sync of the batch [D, F] */
        char *m = map(0);
        rvm_tid_t t;
        rvm_init_tid(&t);
        rvm_begin_transaction(&t, restore);
        set(&t, m, 'D');
        rvm_end_transaction(&t, no_flush);
        rvm_begin_transaction(&t, restore);
        set(&t, m + 100, 'F');
        rvm_return_t rc = rvm_end_transaction(&t, flush);
        printf("  F flush commit: %s\n", rvm_return(rc));
        if (rc != RVM_SUCCESS)
            printf("  abort F: %s\n", rvm_return(rvm_abort_transaction(&t)));
        printf("  rvm_flush: %s\n", rvm_return(rvm_flush()));
        fflush(stdout);
        pf_crash_now();
    }
    if (child_status() != PF_CRASH_EXIT)
        return 0;
    int c = recovered_byte(100);
    printf("  segment byte 100: 0x%02x, expected not 'F' (0x46)\n", c);
    return c != 'F' && c >= 0;
}

/* Bug 3: rvm_truncate whose status sync fails, then a flush commit. */
static int bug3_failed_status_write_drops_segment(void)
{
    fresh();
    if (fork() == 0) {
        start(10); /* I/O 10: the sync of truncation's status write */
        char *m = map(0);
        rvm_tid_t t;
        rvm_init_tid(&t);
        rvm_begin_transaction(&t, restore);
        set(&t, m, 'A');
        printf("  A flush commit: %s\n", rvm_return(rvm_end_transaction(&t, flush)));
        printf("  rvm_truncate: %s\n", rvm_return(rvm_truncate()));
        rvm_begin_transaction(&t, restore);
        set(&t, m + 100, 'B');
        printf("  B flush commit: %s\n", rvm_return(rvm_end_transaction(&t, flush)));
        fflush(stdout);
        pf_crash_now();
    }
    if (child_status() != PF_CRASH_EXIT)
        return 0;
    int c = recovered_byte(100);
    printf("  segment byte 100: 0x%02x, expected 'B' (0x42)\n", c);
    return c == 'B';
}

/* One flush commit of a whole page of m, filled with c. */
static void page(char *m, int c)
{
    rvm_tid_t t;
    rvm_init_tid(&t);
    rvm_begin_transaction(&t, restore);
    rvm_set_range(&t, m, 4096);
    memset(m, c, 4096);
    rvm_end_transaction(&t, flush);
}

/*
 * Bug 7: a truncation whose status sync failed is tried again.  Its
 * records span a lap of the log, so they are applied in two reads (an
 * old 'X' of page 0 in the first, the newer 'Y' in the second); the retry
 * applies 'X' again and the power fails at its write of 'Y' (torn).  The
 * status of the first try reached the disk anyway, so recovery has
 * nothing to replay.
 */
static int bug7_retried_truncation_cut_by_crash(void)
{
    fresh();
    if (fork() == 0) {
        struct pf_config c = {.seed = 1, .keep = PF_KEEP_ALL, .tear_pct = 100,
                              /* I/O 52: the first truncation's status sync;
                               * 54: the retry's write of the second read */
                              .fail_at = 52, .fail_err = EIO, .fail_times = 1,
                              .crash_at = 54, .log_path = logp,
                              .status_area = 2ull * LOG_STATUS_SIZE_DEFAULT};
        start_pf(&c);
        char *m = map(0);
        for (int i = 0; i < 12; i++)
            page(m + 4096, 'a' + i);
        printf("  rvm_truncate: %s\n", rvm_return(rvm_truncate()));
        page(m, 'X');
        for (int i = 0; i < 4; i++)
            page(m + 4096, 'n' + i);
        page(m, 'Y');
        printf("  rvm_truncate (status sync fails): %s\n", rvm_return(rvm_truncate()));
        printf("  rvm_truncate again: %s\n", rvm_return(rvm_truncate()));
        pf_crash_now();
    }
    if (child_status() != PF_CRASH_EXIT)
        return 0;
    recovered_byte(0);
    FILE *f = fopen(segp[0], "rb");
    unsigned char b[4096] = {0};
    size_t n = f ? fread(b, 1, sizeof b, f) : 0;
    if (f)
        fclose(f);
    size_t y = 0;
    for (size_t i = 0; i < n; i++)
        y += b[i] == 'Y';
    printf("  page 0: %zu of 4096 bytes 'Y' (expected all)\n", y);
    return y == 4096;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof dir, "%s/rvm-repro-%d", tmp, (int)getpid());
    mkdir(dir, 0700);
    snprintf(logp, sizeof logp, "%s/log", dir);
    snprintf(segp[0], sizeof segp[0], "%s/seg0", dir);
    snprintf(segp[1], sizeof segp[1], "%s/seg1", dir);
    struct {
        const char *name;
        int (*fn)(void);
    } cases[] = {
        {"bug1_abort_two_regions", bug1_abort_two_regions},
        {"bug2_aborted_commit_replayed", bug2_aborted_commit_replayed},
        {"bug3_failed_status_write_drops_segment", bug3_failed_status_write_drops_segment},
        {"bug7_retried_truncation_cut_by_crash", bug7_retried_truncation_cut_by_crash},
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        printf("%s:\n", cases[i].name);
        int ok = cases[i].fn();
        printf("%s %s\n", ok ? "ok" : "FAIL", cases[i].name);
        failed += !ok;
    }
    unlink(logp);
    unlink(segp[0]);
    unlink(segp[1]);
    rmdir(dir);
    return failed ? 1 : 0;
}
