/* Helpers of the fault tests; see fault_util.h. */
#include "fault_util.h"

#include <stdlib.h>
#include <sys/wait.h>

#define LOG_LEN FAULT_LOG_LEN

/* Returns 0 or CHILD_ACKED; any other end of the child fails the test. */
int run_in_child(void (*fn)(struct store *, unsigned), struct store *s,
                        unsigned arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn(s, arg);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) ||
        (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != CHILD_ACKED))
        fail_msg("child failed (status 0x%x), arg %u", status, arg);
    return WEXITSTATUS(status);
}

/* Recover in this process with POSIX I/O; return the whole state. */
void recover_and_check(struct store *s, uint64_t *k, uint64_t *life)
{
    const char *why;
    rvm_io_set(NULL);
    rvm_return_t rc = store_open(s, LOG_LEN, 0, 0, &why);
    if (rc != RVM_SUCCESS)
        fail_msg("recovery: %s: %s [%s]", why, rvm_return(rc), rvm_errmsg());
    char err[256];
    if (store_check(s, k, life, err, sizeof err) != 0) {
        store_close(s);
        fail_msg("recovered state is not whole: %s", err);
    }
    assert_rvm_ok(store_close(s));
}

/* Seeds vary the options too: coalescing and private mappings. */
void child_open(struct store *s, unsigned seed, long trunc)
{
    fault_io_install(seed);
    static const rvm_length_t flag_sets[] = {0, RVM_ALL_OPTIMIZATIONS,
                                             RVM_COALESCE_TRANS, RVM_MAP_PRIVATE};
    const char *why;
    rvm_return_t rc = store_open(s, LOG_LEN, trunc, flag_sets[(seed / 4) % 4], &why);
    CHILD_CHECK(rc == RVM_SUCCESS, "%s: %s", why, rvm_return(rc));
}

void child_commits(struct store *s, uint64_t from, uint64_t to,
                          rvm_mode_t end_mode)
{
    for (uint64_t k = from; k <= to; k++) {
        rvm_return_t rc = store_txn(s, k, 1, k % 2 ? restore : no_restore,
                                    end_mode, k % 3 == 0);
        CHILD_CHECK(rc == RVM_SUCCESS, "commit %llu: %s", (unsigned long long)k,
                    rvm_return(rc));
    }
}

void child_recover(struct store *s, uint64_t *k, uint64_t *life)
{
    const char *why;
    rvm_return_t rc = store_open(s, LOG_LEN, 0, 0, &why);
    CHILD_CHECK(rc == RVM_SUCCESS, "%s: %s", why, rvm_return(rc));
    char err[256];
    CHILD_CHECK(store_check(s, k, life, err, sizeof err) == 0, "%s", err);
}

/* arg = life * 100 + number of commits */
void child_commits_then_die(struct store *s, unsigned arg)
{
    unsigned life = arg / 100, n = arg % 100;
    uint64_t k, l;
    child_recover(s, &k, &l);
    for (uint64_t i = k + 1; i <= k + n; i++) {
        rvm_return_t rc = store_txn(s, i, life, restore, flush, false);
        CHILD_CHECK(rc == RVM_SUCCESS, "commit: %s", rvm_return(rc));
    }
    /* no terminate: the records stay in the log */
}

int fault_teardown(void **state)
{
    int rc = t_teardown(state);
    fault_io_uninstall();
    return rc;
}
