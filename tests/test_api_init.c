/*
 * Life cycle: rvm_initialize and its errors, rvm_terminate, rvm_create_log,
 * rvm_set_options, and RVM_EINIT from every call made before
 * initialization.
 */
#include "test_util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "log_format.h"

/* RVM is not initialized: never was (RVM_EINIT) or was terminated
 * (RVM_EINIT or RVM_ETERMINATED). */
static void assert_not_initialized(void)
{
    rvm_return_t rc = rvm_flush();
    if (rc != RVM_EINIT && rc != RVM_ETERMINATED)
        fail_msg("rvm_flush() after a failed rvm_initialize: %s, expected "
                 "RVM_EINIT or RVM_ETERMINATED", rvm_return(rc));
}

/* Must run first: RVM has never been initialized in this process. */
static void test_calls_before_initialize_return_einit(void **state)
{
    (void)state;
    rvm_tid_t tid;
    rvm_init_tid(&tid);
    char buf[64];
    rvm_region_t r;
    rvm_init_region(&r);
    r.data_dev = "/nonexistent/seg";
    r.length = rvm_page_size();
    rvm_options_t o;
    rvm_init_options(&o);
    rvm_stats_t st;

    assert_rvm(rvm_map(&r, NULL), RVM_EINIT);
    assert_rvm(rvm_unmap(&r), RVM_EINIT);
    assert_rvm(rvm_begin_transaction(&tid, restore), RVM_EINIT);
    assert_rvm(rvm_set_range(&tid, buf, 8), RVM_EINIT);
    assert_rvm(rvm_modify_bytes(&tid, buf, "x", 1), RVM_EINIT);
    assert_rvm(rvm_abort_transaction(&tid), RVM_EINIT);
    assert_rvm(rvm_end_transaction(&tid, flush), RVM_EINIT);
    assert_rvm(rvm_flush(), RVM_EINIT);
    assert_rvm(rvm_truncate(), RVM_EINIT);
    assert_rvm(rvm_query(&o, NULL), RVM_EINIT);
    assert_rvm(rvm_set_options(&o), RVM_EINIT);
    assert_rvm(rvm_get_stats(&st), RVM_EINIT);
    assert_rvm(rvm_terminate(), RVM_EINIT);
    rvm_free_options(&o);
}

static void test_calls_after_terminate_are_refused(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    assert_rvm_ok(rvm_terminate());
    rvm_tid_t tid;
    rvm_init_tid(&tid);
    rvm_return_t rc = rvm_begin_transaction(&tid, restore);
    if (rc != RVM_EINIT && rc != RVM_ETERMINATED)
        fail_msg("begin after terminate: %s", rvm_return(rc));
    rc = rvm_flush();
    if (rc != RVM_EINIT && rc != RVM_ETERMINATED)
        fail_msg("flush after terminate: %s", rvm_return(rc));
    rc = rvm_terminate();
    if (rc != RVM_EINIT && rc != RVM_ETERMINATED)
        fail_msg("terminate twice: %s", rvm_return(rc));
}

static void test_initialize_with_other_version_is_version_skew(void **state)
{
    (void)state;
    assert_rvm(rvm_initialize("RVM Interface Version 0.9", NULL), RVM_EVERSION_SKEW);
    assert_rvm(rvm_initialize("", NULL), RVM_EVERSION_SKEW);
    assert_not_initialized();
}

static void test_initialize_with_pager_is_epager(void **state)
{
    (void)state;
    rvm_options_t o;
    rvm_init_options(&o);
    o.pager = "/bin/pager";
    assert_rvm(RVM_INIT(&o), RVM_EPAGER);
    assert_not_initialized();
}

static void test_initialize_with_bad_options_record_is_eoptions(void **state)
{
    (void)state;
    rvm_options_t o;
    rvm_init_options(&o);
    o.struct_id = rvm_region_id;
    assert_rvm(RVM_INIT(&o), RVM_EOPTIONS);
    rvm_init_options(&o);
    o.truncate = 101;
    assert_rvm(RVM_INIT(&o), RVM_EOPTIONS);
    rvm_init_options(&o);
    o.truncate = -1;
    assert_rvm(RVM_INIT(&o), RVM_EOPTIONS);
    assert_not_initialized();
}

static void test_initialize_with_null_options_works_in_memory(void **state)
{
    struct tctx *c = *state;
    assert_rvm_ok(RVM_INIT(NULL));
    rvm_region_t *r = t_map(c, "seg", 0, rvm_page_size(), 0);
    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_modify_bytes(tid, r->vmaddr, "abc", 3));
    assert_rvm_ok(rvm_end_transaction(tid, flush));
    assert_memory_equal(r->vmaddr, "abc", 3);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_modify_bytes(tid, r->vmaddr, "xyz", 3));
    assert_rvm_ok(rvm_abort_transaction(tid));
    assert_memory_equal(r->vmaddr, "abc", 3);
    assert_rvm_ok(rvm_flush());
}

static void test_initialize_twice_succeeds_and_changes_nothing(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 30);
    rvm_options_t o;
    rvm_init_options(&o);
    o.truncate = 70;
    assert_rvm_ok(RVM_INIT(&o));
    rvm_options_t *q = t_query(NULL);
    assert_int_equal(q->truncate, 30);
    rvm_free_options(q);
}

static void test_missing_log_without_create_is_elog(void **state)
{
    struct tctx *c = *state;
    rvm_options_t o;
    t_options(c, &o, 50);
    assert_rvm(RVM_INIT(&o), RVM_ELOG);
    assert_false(t_file_exists(c->log));
    assert_not_initialized();
}

static void test_create_log_file_option_creates_the_log(void **state)
{
    struct tctx *c = *state;
    rvm_options_t o;
    t_options(c, &o, 50);
    o.create_log_file = rvm_true;
    o.create_log_size = RVM_MK_OFFSET(0, MIB(1));
    o.create_log_mode = 0640;
    assert_rvm_ok(RVM_INIT(&o));
    assert_true(t_file_exists(c->log));
    assert_true(t_file_size(c->log) >= MIB(1));
    rvm_stats_t st = t_stats();
    assert_int_equal(st.log_size, MIB(1));
    assert_int_equal(st.log_used, 0);
    rvm_options_t *q = t_query(NULL);
    assert_true(q->log_empty);
    assert_non_null(q->log_dev);
    rvm_free_options(q);
}

static void test_file_that_is_not_a_log_is_elog(void **state)
{
    struct tctx *c = *state;
    size_t n = MIB(1);
    unsigned char *junk = malloc(n);
    assert_non_null(junk);
    t_fill(junk, n, 99);
    t_write_file(c->log, 0, junk, n);
    free(junk);
    rvm_options_t o;
    t_options(c, &o, 50);
    assert_rvm(RVM_INIT(&o), RVM_ELOG);
    o.create_log_file = rvm_true; /* exists: must not be overwritten */
    assert_rvm(RVM_INIT(&o), RVM_ELOG);

    const char *small = t_path(c, "small");
    t_write_file(small, 0, "hello\n", 6);
    o.log_dev = (char *)small;
    o.create_log_file = rvm_false;
    assert_rvm(RVM_INIT(&o), RVM_ELOG);

    const char *zeros = t_path(c, "zeros");
    assert_int_equal(truncate(zeros, 0), -1); /* does not exist yet */
    int fd = open(zeros, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)MIB(1)), 0);
    close(fd);
    o.log_dev = (char *)zeros;
    assert_rvm(RVM_INIT(&o), RVM_ELOG);
    assert_not_initialized();
}

static void test_log_that_is_a_directory_is_elog(void **state)
{
    struct tctx *c = *state;
    assert_int_equal(mkdir(c->log, 0700), 0);
    rvm_options_t o;
    t_options(c, &o, 50);
    assert_rvm(RVM_INIT(&o), RVM_ELOG);
    assert_not_initialized();
}

static void test_terminate_leaves_memory_readable_and_reinit_maps_again(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *r = rvm_malloc_region();
    assert_non_null(r);
    r->data_dev = strdup(t_path(c, "seg"));
    r->length = rvm_page_size();
    assert_rvm_ok(rvm_map(r, NULL));
    t_commit_bytes(r->vmaddr, "still here", 10, flush);
    assert_rvm_ok(rvm_terminate()); /* without rvm_unmap */
    assert_memory_equal(r->vmaddr, "still here", 10);
    rvm_free_region(r);
    rvm_options_t o;
    t_options(c, &o, 50);
    assert_rvm_ok(RVM_INIT(&o));
    rvm_region_t *again = t_map(c, "seg", 0, rvm_page_size(), 0);
    assert_memory_equal(again->vmaddr, "still here", 10);
}

static void test_log_name_too_long_is_ename_too_long(void **state)
{
    (void)state;
    size_t n = PATH_MAX + 16;
    char *name = malloc(n + 1);
    assert_non_null(name);
    memset(name, 'a', n);
    name[0] = '/';
    name[n] = '\0';
    rvm_options_t o;
    rvm_init_options(&o);
    o.log_dev = name;
    assert_rvm(RVM_INIT(&o), RVM_ENAME_TOO_LONG);
    rvm_offset_t len = RVM_MK_OFFSET(0, MIB(1));
    assert_rvm(rvm_create_log(&o, &len, 0600), RVM_ENAME_TOO_LONG);
    free(name);
}

/* Rewrite the version of every valid status slot, with a correct CRC. */
static void set_log_version(const char *path, uint32_t version)
{
    struct log_status st;
    t_read_file(path, 0, &st, sizeof st);
    uint64_t S = st.magic == LOG_STATUS_MAGIC ? st.status_size : LOG_STATUS_SIZE_DEFAULT;
    int valid = 0;
    for (int slot = 0; slot < 2; slot++) {
        unsigned char *blk = malloc(S);
        assert_non_null(blk);
        t_read_file(path, slot * S, blk, S);
        struct log_status s;
        memcpy(&s, blk, sizeof s);
        if (s.magic == LOG_STATUS_MAGIC && s.used >= sizeof s && s.used <= S) {
            s.version = version;
            s.crc = 0;
            memcpy(blk, &s, sizeof s);
            s.crc = crc32c(0, blk, s.used);
            memcpy(blk, &s, sizeof s);
            t_write_file(path, slot * S, blk, s.used);
            valid++;
        }
        free(blk);
    }
    assert_true(valid > 0);
}

static void test_log_of_another_version_is_log_version_skew(void **state)
{
    struct tctx *c = *state;
    t_create_log(c, MIB(1));
    set_log_version(c->log, LOG_VERSION + 7);
    rvm_options_t o;
    t_options(c, &o, 50);
    assert_rvm(RVM_INIT(&o), RVM_ELOG_VERSION_SKEW);
    assert_not_initialized();
}

static void test_create_log_makes_a_usable_preallocated_log(void **state)
{
    struct tctx *c = *state;
    rvm_options_t o;
    t_options(c, &o, 50);
    rvm_offset_t len = RVM_MK_OFFSET(0, KIB(512));
    assert_rvm_ok(rvm_create_log(&o, &len, 0600));
    assert_true(t_file_size(c->log) >= KIB(512));
    assert_rvm_ok(RVM_INIT(&o));
    rvm_stats_t st = t_stats();
    assert_int_equal(st.log_size, KIB(512));
}

static void test_create_log_errors(void **state)
{
    struct tctx *c = *state;
    rvm_options_t o;
    t_options(c, &o, 50);
    rvm_offset_t len = RVM_MK_OFFSET(0, MIB(1));
    assert_rvm_ok(rvm_create_log(&o, &len, 0600));
    assert_rvm(rvm_create_log(&o, &len, 0600), RVM_ELOG); /* exists */

    o.log_dev = (char *)t_path(c, "tiny");
    rvm_offset_t tiny = RVM_MK_OFFSET(0, 4096);
    assert_rvm(rvm_create_log(&o, &tiny, 0600), RVM_ERANGE);
    assert_false(t_file_exists(o.log_dev));

    o.log_dev = (char *)t_path(c, "nodir/log");
    assert_rvm(rvm_create_log(&o, &len, 0600), RVM_ELOG);

    o.log_dev = NULL;
    assert_rvm(rvm_create_log(&o, &len, 0600), RVM_EOPTIONS);
}

static void test_terminate_then_initialize_again(void **state)
{
    struct tctx *c = *state;
    for (int i = 0; i < 5; i++) {
        t_init(c, MIB(1), 50);
        assert_rvm_ok(rvm_terminate());
    }
}

static void test_set_options_changes_truncate_and_refuses_other_log(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_options_t *o = t_query(NULL);
    assert_int_equal(o->truncate, 50);
    assert_non_null(o->log_dev);
    assert_string_equal(o->log_dev, c->log);
    rvm_free_options(o);

    rvm_options_t n;
    rvm_init_options(&n);
    n.truncate = 25;
    assert_rvm_ok(rvm_set_options(&n));
    rvm_options_t *q = t_query(NULL);
    assert_int_equal(q->truncate, 25);
    rvm_free_options(q);

    n.log_dev = (char *)t_path(c, "otherlog");
    assert_rvm(rvm_set_options(&n), RVM_EOPTIONS);
    n.log_dev = NULL;
    n.struct_id = rvm_tid_id;
    assert_rvm(rvm_set_options(&n), RVM_EOPTIONS);
    assert_rvm(rvm_set_options(NULL), RVM_EOPTIONS);
    assert_rvm(rvm_query(NULL, NULL), RVM_EOPTIONS);
}

static void test_get_stats_null_is_estatistics(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    assert_rvm(rvm_get_stats(NULL), RVM_ESTATISTICS);
}

#define T(f) cmocka_unit_test_setup_teardown(f, t_setup, t_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_calls_before_initialize_return_einit),
        T(test_calls_after_terminate_are_refused),
        T(test_initialize_with_other_version_is_version_skew),
        T(test_initialize_with_pager_is_epager),
        T(test_initialize_with_bad_options_record_is_eoptions),
        T(test_initialize_with_null_options_works_in_memory),
        T(test_initialize_twice_succeeds_and_changes_nothing),
        T(test_missing_log_without_create_is_elog),
        T(test_create_log_file_option_creates_the_log),
        T(test_file_that_is_not_a_log_is_elog),
        T(test_log_that_is_a_directory_is_elog),
        T(test_terminate_leaves_memory_readable_and_reinit_maps_again),
        T(test_log_name_too_long_is_ename_too_long),
        T(test_log_of_another_version_is_log_version_skew),
        T(test_create_log_makes_a_usable_preallocated_log),
        T(test_create_log_errors),
        T(test_terminate_then_initialize_again),
        T(test_set_options_changes_truncate_and_refuses_other_log),
        T(test_get_stats_null_is_estatistics),
    };
    return cmocka_run_group_tests_name("librvm life cycle", tests, NULL, NULL);
}
