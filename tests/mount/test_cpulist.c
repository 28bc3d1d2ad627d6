/*
 * test_cpulist.c - the daemon's cpulist parser (mount/cpulist.c): full
 * Linux lists give their highest CPU, garbage is refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cpulist.h"

static void expect_highest(const char *s, unsigned want)
{
    unsigned got = 9999;
    int rc = cpulist_parse(s, 1024, &got);
    if (rc != 0 || got != want)
        fail_msg("\"%s\": rc %d highest %u, expected 0 and %u", s, rc, got, want);
}

static void expect_error(const char *s, int want)
{
    unsigned got = 9999;
    int rc = cpulist_parse(s, 1024, &got);
    if (rc != want || got != 9999)
        fail_msg("\"%s\": rc %d highest %u, expected %d and untouched", s ? s : "(null)",
                 rc, got, want);
}

static void test_lists_give_their_highest_cpu(void **state)
{
    (void)state;
    expect_highest("0", 0);
    expect_highest("0\n", 0);
    expect_highest("0-1\n", 1);
    expect_highest("0,2-3,5", 5);
    expect_highest("0-3,8-11\n", 11);
    expect_highest("7,0-2", 7);
    expect_highest("3-3", 3);
    expect_highest("1023", 1023);
}

static void test_garbage_is_refused(void **state)
{
    (void)state;
    expect_error(NULL, -EINVAL);
    expect_error("", -EINVAL);
    expect_error("\n", -EINVAL);
    expect_error("a", -EINVAL);
    expect_error("0-", -EINVAL);
    expect_error("-1", -EINVAL);
    expect_error("3-1", -EINVAL);
    expect_error("0,,1", -EINVAL);
    expect_error("0,", -EINVAL);
    expect_error("0 1", -EINVAL);
    expect_error("0\n\n", -EINVAL);
    expect_error("0-1x", -EINVAL);
    expect_error("1024", -ERANGE);
    expect_error("0-99999999999999999999", -ERANGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lists_give_their_highest_cpu),
        cmocka_unit_test(test_garbage_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
