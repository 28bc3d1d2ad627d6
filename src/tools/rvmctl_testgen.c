/*
 * rvmctl-testgen: leaves records in a log for test_rvmctl.sh, through
 * librvm as any program would.
 *
 *   rvmctl-testgen LOG SEGMENT N [RANGE_BYTES]
 *
 * Maps the first 64 KiB of SEGMENT (created if missing), then commits N
 * flush transactions: transaction i (1..N) writes the u64 i at offset 0
 * and RANGE_BYTES (default 16) bytes of the letter 'a' + i % 26 at offset
 * 4096.  Then it exits without rvm_terminate, as if it had crashed: every
 * commit is durable, and the records not yet truncated stay in the log.
 * Automatic truncation is off, so with a log large enough all N records
 * stay; with a small one the log truncates when full and wraps.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rvm/rvm.h>

#define REGION_LEN (64u * 1024u)

static void check(rvm_return_t rc, const char *what)
{
    if (rc != RVM_SUCCESS) {
        fprintf(stderr, "rvmctl-testgen: %s: %s (%s)\n", what, rvm_return(rc),
                rvm_errmsg());
        _exit(1);
    }
}

int main(int argc, char **argv)
{
    rvm_options_t o;
    rvm_region_t r;
    rvm_tid_t tid;
    unsigned long n, range = 16;

    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: rvmctl-testgen LOG SEGMENT N [RANGE_BYTES]\n");
        return 2;
    }
    n = strtoul(argv[3], NULL, 10);
    if (argc == 5)
        range = strtoul(argv[4], NULL, 10);
    if (range < 1 || range > REGION_LEN - 4096) {
        fprintf(stderr, "rvmctl-testgen: RANGE_BYTES must be 1..%u\n",
                REGION_LEN - 4096);
        return 2;
    }
    rvm_init_options(&o);
    o.log_dev = argv[1];
    o.truncate = 0;
    check(RVM_INIT(&o), "rvm_initialize");

    rvm_init_region(&r);
    r.data_dev = argv[2];
    r.length = REGION_LEN;
    check(rvm_map(&r, NULL), "rvm_map");

    for (unsigned long i = 1; i <= n; i++) {
        uint64_t v = i;

        rvm_init_tid(&tid);
        check(rvm_begin_transaction(&tid, restore), "rvm_begin_transaction");
        check(rvm_modify_bytes(&tid, r.vmaddr, &v, sizeof v), "rvm_modify_bytes");
        check(rvm_set_range(&tid, r.vmaddr + 4096, range), "rvm_set_range");
        memset(r.vmaddr + 4096, 'a' + (int)(i % 26), range);
        check(rvm_end_transaction(&tid, flush), "rvm_end_transaction");
    }
    /* A crash: no rvm_terminate, no truncation at exit. */
    _exit(0);
}
