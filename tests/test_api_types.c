/*
 * The value types of the classic interface: offsets and their macros,
 * tid/options/region records, and the names of codes, modes and types.
 * None of these needs rvm_initialize().
 */
#include "test_util.h"

#include <limits.h>
#include <string.h>
#include <unistd.h>

static void test_mk_offset_keeps_both_words(void **state)
{
    (void)state;
    rvm_offset_t o = RVM_MK_OFFSET(3, 77);
    assert_int_equal(o.high, 3);
    assert_int_equal(o.low, 77);
    rvm_offset_t z = RVM_ZERO_OFFSET;
    assert_true(RVM_OFFSET_EQL_ZERO(z));
    rvm_offset_t init = RVM_OFFSET_INITIALIZER;
    assert_true(RVM_OFFSET_EQL_ZERO(init));
    rvm_offset_t l = RVM_LENGTH_TO_OFFSET(12345);
    assert_int_equal(l.high, 0);
    assert_int_equal(RVM_OFFSET_TO_LENGTH(l), 12345);
    assert_int_equal(RVM_OFFSET_HIGH_BITS_TO_LENGTH(o), 3);
}

static void test_offset_arithmetic_carries_and_borrows(void **state)
{
    (void)state;
    rvm_offset_t a = RVM_MK_OFFSET(0, ULONG_MAX);
    rvm_offset_t b = RVM_MK_OFFSET(0, 1);
    rvm_offset_t s = RVM_ADD_OFFSETS(a, b);
    assert_int_equal(s.high, 1);
    assert_int_equal(s.low, 0);

    rvm_offset_t s2 = RVM_ADD_LENGTH_TO_OFFSET(a, 2);
    assert_int_equal(s2.high, 1);
    assert_int_equal(s2.low, 1);

    rvm_offset_t d = RVM_SUB_OFFSETS(s, b);
    assert_true(RVM_OFFSET_EQL(d, a));
    rvm_offset_t d2 = RVM_SUB_LENGTH_FROM_OFFSET(s2, 2);
    assert_true(RVM_OFFSET_EQL(d2, a));

    rvm_offset_t x = RVM_MK_OFFSET(5, 100), y = RVM_MK_OFFSET(2, 300);
    rvm_offset_t sum = RVM_ADD_OFFSETS(x, y);
    assert_int_equal(sum.high, 7);
    assert_int_equal(sum.low, 400);
    rvm_offset_t diff = RVM_SUB_OFFSETS(x, y);
    assert_int_equal(diff.high, 2);
    assert_int_equal(diff.low, (rvm_length_t)100 - 300);
}

static void test_offset_comparisons_order_high_then_low(void **state)
{
    (void)state;
    rvm_offset_t a = RVM_MK_OFFSET(1, 0), b = RVM_MK_OFFSET(0, ULONG_MAX);
    rvm_offset_t c = RVM_MK_OFFSET(1, 0);
    assert_true(RVM_OFFSET_GTR(a, b));
    assert_true(RVM_OFFSET_LSS(b, a));
    assert_false(RVM_OFFSET_LSS(a, c));
    assert_true(RVM_OFFSET_LEQ(a, c));
    assert_true(RVM_OFFSET_GEQ(a, c));
    assert_true(RVM_OFFSET_EQL(a, c));
    assert_false(RVM_OFFSET_EQL(a, b));
    assert_true(RVM_OFFSET_LEQ(b, a));
    assert_false(RVM_OFFSET_GEQ(b, a));
    assert_false(RVM_OFFSET_EQL_ZERO(a));
}

static void test_page_macros_match_the_system_page(void **state)
{
    (void)state;
    rvm_length_t ps = (rvm_length_t)sysconf(_SC_PAGESIZE);
    assert_int_equal(RVM_PAGE_SIZE, ps);
    assert_int_equal(rvm_page_size(), ps);
    assert_int_equal(rvm_page_mask(), ~(ps - 1));
    assert_int_equal(RVM_ROUND_LENGTH_UP_TO_PAGE_SIZE(1), ps);
    assert_int_equal(RVM_ROUND_LENGTH_UP_TO_PAGE_SIZE(0), 0);
    assert_int_equal(RVM_ROUND_LENGTH_UP_TO_PAGE_SIZE(ps), ps);
    assert_int_equal(RVM_ROUND_LENGTH_UP_TO_PAGE_SIZE(ps + 1), 2 * ps);
    assert_int_equal(RVM_ROUND_LENGTH_DOWN_TO_PAGE_SIZE(2 * ps - 1), ps);
    char *p = (char *)(uintptr_t)(3 * ps + 5);
    assert_ptr_equal(RVM_ROUND_ADDR_UP_TO_PAGE_SIZE(p), (char *)(uintptr_t)(4 * ps));
    assert_ptr_equal(RVM_ROUND_ADDR_DOWN_TO_PAGE_SIZE(p), (char *)(uintptr_t)(3 * ps));
    assert_ptr_equal(RVM_ADD_LENGTH_TO_ADDR(p, 3), (char *)(uintptr_t)(3 * ps + 8));
    assert_ptr_equal(RVM_SUB_LENGTH_FROM_ADDR(p, 5), (char *)(uintptr_t)(3 * ps));

    rvm_offset_t o = RVM_MK_OFFSET(2, ps + 1);
    rvm_offset_t up = RVM_ROUND_OFFSET_UP_TO_PAGE_SIZE(o);
    assert_int_equal(up.high, 2);
    assert_int_equal(up.low, 2 * ps);
    rvm_offset_t down = RVM_ROUND_OFFSET_DOWN_TO_PAGE_SIZE(o);
    assert_int_equal(down.high, 2);
    assert_int_equal(down.low, ps);
    rvm_offset_t top = RVM_MK_OFFSET(0, ULONG_MAX);
    rvm_offset_t top_up = RVM_ROUND_OFFSET_UP_TO_PAGE_SIZE(top);
    assert_int_equal(top_up.high, 1);
    assert_int_equal(top_up.low, 0);
}

static void test_malloc_tid_is_initialized_and_from_heap(void **state)
{
    (void)state;
    rvm_tid_t *t = rvm_malloc_tid();
    assert_non_null(t);
    assert_int_equal(t->struct_id, rvm_tid_id);
    assert_int_equal(t->from_heap, rvm_true);
    assert_null(t->tid);
    assert_false(rvm_tid_active(t));
    rvm_free_tid(t);
}

static void test_init_tid_on_stack(void **state)
{
    (void)state;
    rvm_tid_t t;
    memset(&t, 0xa5, sizeof t);
    rvm_init_tid(&t);
    assert_int_equal(t.struct_id, rvm_tid_id);
    assert_int_equal(t.from_heap, rvm_false);
    assert_null(t.tid);
    assert_false(rvm_tid_active(&t));
    rvm_free_tid(&t); /* not from the heap: must not free */
    rvm_init_tid(NULL);
    rvm_free_tid(NULL);
    assert_false(rvm_tid_active(NULL));
}

static void test_copy_tid_is_a_heap_copy(void **state)
{
    (void)state;
    rvm_tid_t t;
    rvm_init_tid(&t);
    t.uname.tv_sec = 1234;
    t.uname.tv_usec = 56;
    rvm_tid_t *c = rvm_copy_tid(&t);
    assert_non_null(c);
    assert_ptr_not_equal(c, &t);
    assert_int_equal(c->struct_id, rvm_tid_id);
    assert_int_equal(c->from_heap, rvm_true);
    assert_int_equal(c->uname.tv_sec, 1234);
    assert_int_equal(c->uname.tv_usec, 56);
    rvm_free_tid(c);
}

static void test_options_defaults(void **state)
{
    (void)state;
    rvm_options_t *o = rvm_malloc_options();
    assert_non_null(o);
    assert_int_equal(o->struct_id, rvm_options_id);
    assert_int_equal(o->from_heap, rvm_true);
    assert_null(o->log_dev);
    assert_null(o->pager);
    assert_null(o->tid_array);
    assert_int_equal(o->n_uncommit, 0);
    assert_int_equal(o->truncate, TRUNCATE);
    assert_int_equal(o->recovery_buf_len, RECOVERY_BUF_LEN);
    assert_int_equal(o->flush_buf_len, FLUSH_BUF_LEN);
    assert_int_equal(o->max_read_len, MAX_READ_LEN);
    assert_int_equal(o->create_log_file, rvm_false);
    assert_true(RECOVERY_BUF_LEN >= MIN_RECOVERY_BUF_LEN);
    assert_true(FLUSH_BUF_LEN >= MIN_FLUSH_BUF_LEN);
    assert_int_equal(RVM_ALL_OPTIMIZATIONS, RVM_COALESCE_RANGES | RVM_COALESCE_TRANS);
    assert_int_equal(RVM_COALESCE_RANGES, 1);
    assert_int_equal(RVM_COALESCE_TRANS, 2);
    assert_int_equal(RVM_MAP_PRIVATE, 8);
    rvm_free_options(o);

    rvm_options_t s;
    memset(&s, 0x5a, sizeof s);
    rvm_init_options(&s);
    assert_int_equal(s.struct_id, rvm_options_id);
    assert_int_equal(s.from_heap, rvm_false);
    assert_null(s.log_dev);
    assert_int_equal(s.truncate, TRUNCATE);
    rvm_free_options(&s); /* caller-owned: frees only tid_array */
}

static void test_copy_options_is_deep(void **state)
{
    (void)state;
    rvm_options_t *o = rvm_malloc_options();
    assert_non_null(o);
    o->log_dev = strdup("/some/log");
    o->truncate = 33;
    o->flags = RVM_MAP_PRIVATE;
    rvm_options_t *c = rvm_copy_options(o);
    assert_non_null(c);
    assert_int_equal(c->from_heap, rvm_true);
    assert_ptr_not_equal(c->log_dev, o->log_dev);
    assert_string_equal(c->log_dev, "/some/log");
    assert_int_equal(c->truncate, 33);
    assert_int_equal(c->flags, RVM_MAP_PRIVATE);
    rvm_free_options(o); /* frees its log_dev; the copy keeps its own */
    assert_string_equal(c->log_dev, "/some/log");
    rvm_free_options(c);
    rvm_free_options(NULL);
}

static void test_region_records(void **state)
{
    (void)state;
    rvm_region_t *r = rvm_malloc_region();
    assert_non_null(r);
    assert_int_equal(r->struct_id, rvm_region_id);
    assert_int_equal(r->from_heap, rvm_true);
    assert_null(r->data_dev);
    assert_null(r->vmaddr);
    assert_int_equal(r->length, 0);
    assert_true(RVM_OFFSET_EQL_ZERO(r->offset));
    assert_true(RVM_OFFSET_EQL_ZERO(r->dev_length));
    assert_int_equal(r->no_copy, rvm_false);
    r->data_dev = strdup("/some/segment");
    r->offset = RVM_MK_OFFSET(0, 8192);
    r->length = 4096;
    rvm_region_t *c = rvm_copy_region(r);
    assert_non_null(c);
    assert_int_equal(c->from_heap, rvm_true);
    assert_ptr_not_equal(c->data_dev, r->data_dev);
    assert_string_equal(c->data_dev, "/some/segment");
    assert_int_equal(c->offset.low, 8192);
    assert_int_equal(c->length, 4096);
    rvm_free_region(r);
    assert_string_equal(c->data_dev, "/some/segment");
    rvm_free_region(c);

    rvm_region_t s;
    memset(&s, 0x77, sizeof s);
    rvm_init_region(&s);
    assert_int_equal(s.struct_id, rvm_region_id);
    assert_int_equal(s.from_heap, rvm_false);
    assert_null(s.data_dev);
    assert_null(s.vmaddr);
    rvm_free_region(NULL);
}

static void test_return_code_names(void **state)
{
    (void)state;
    static const struct { rvm_return_t code; const char *name; } names[] = {
        {RVM_SUCCESS, "RVM_SUCCESS"},
        {RVM_EINIT, "RVM_EINIT"},
        {RVM_EINTERNAL, "RVM_EINTERNAL"},
        {RVM_EIO, "RVM_EIO"},
        {RVM_ELOG, "RVM_ELOG"},
        {RVM_ELOG_VERSION_SKEW, "RVM_ELOG_VERSION_SKEW"},
        {RVM_EMODE, "RVM_EMODE"},
        {RVM_ENAME_TOO_LONG, "RVM_ENAME_TOO_LONG"},
        {RVM_ENO_MEMORY, "RVM_ENO_MEMORY"},
        {RVM_ENOT_MAPPED, "RVM_ENOT_MAPPED"},
        {RVM_EOFFSET, "RVM_EOFFSET"},
        {RVM_EOPTIONS, "RVM_EOPTIONS"},
        {RVM_EOVERLAP, "RVM_EOVERLAP"},
        {RVM_EPAGER, "RVM_EPAGER"},
        {RVM_ERANGE, "RVM_ERANGE"},
        {RVM_EREGION, "RVM_EREGION"},
        {RVM_EREGION_DEF, "RVM_EREGION_DEF"},
        {RVM_ESRC, "RVM_ESRC"},
        {RVM_ESTATISTICS, "RVM_ESTATISTICS"},
        {RVM_ESTAT_VERSION_SKEW, "RVM_ESTAT_VERSION_SKEW"},
        {RVM_ETERMINATED, "RVM_ETERMINATED"},
        {RVM_ETHREADS, "RVM_ETHREADS"},
        {RVM_ETID, "RVM_ETID"},
        {RVM_ETOO_BIG, "RVM_ETOO_BIG"},
        {RVM_EUNCOMMIT, "RVM_EUNCOMMIT"},
        {RVM_EVERSION_SKEW, "RVM_EVERSION_SKEW"},
        {RVM_EVM_OVERLAP, "RVM_EVM_OVERLAP"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_string_equal(rvm_return(names[i].code), names[i].name);
    assert_string_equal(rvm_return(-1), "Invalid RVM return code");
    assert_string_equal(rvm_return(rvm_last_code), "Invalid RVM return code");
    assert_string_equal(rvm_return(100000), "Invalid RVM return code");
    /* the classic numbering */
    assert_int_equal(RVM_EINIT, 200);
    assert_int_equal(RVM_ELOG, 204);
    assert_int_equal(RVM_ETID, 222);
    assert_int_equal(RVM_EVM_OVERLAP, 226);
}

static void test_mode_and_type_names(void **state)
{
    (void)state;
    assert_int_equal(restore, 140);
    assert_int_equal(no_restore, 141);
    assert_int_equal(flush, 142);
    assert_int_equal(no_flush, 143);
    assert_string_equal(rvm_mode(restore), "restore");
    assert_string_equal(rvm_mode(no_restore), "no_restore");
    assert_string_equal(rvm_mode(flush), "flush");
    assert_string_equal(rvm_mode(no_flush), "no_flush");
    assert_string_equal(rvm_mode((rvm_mode_t)7), "Invalid RVM transaction mode");
    assert_string_equal(rvm_mode(rvm_last_mode), "Invalid RVM transaction mode");
    assert_string_equal(rvm_type(rvm_region_id), "rvm_region_id");
    assert_string_equal(rvm_type(rvm_options_id), "rvm_options_id");
    assert_string_equal(rvm_type(rvm_tid_id), "rvm_tid_id");
    assert_string_equal(rvm_type(rvm_statistics_id), "rvm_statistics_id");
    assert_string_equal(rvm_type((rvm_struct_id_t)0), "Invalid RVM structure type");
    assert_string_equal(rvm_type(rvm_last_struct_id), "Invalid RVM structure type");
}

static void test_booleans(void **state)
{
    (void)state;
    assert_int_equal(rvm_false, 0);
    assert_int_equal(rvm_true, 1);
    assert_int_equal(TRUE, 1);
    assert_int_equal(FALSE, 0);
    assert_non_null(strstr(RVM_VERSION, "RVM"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mk_offset_keeps_both_words),
        cmocka_unit_test(test_offset_arithmetic_carries_and_borrows),
        cmocka_unit_test(test_offset_comparisons_order_high_then_low),
        cmocka_unit_test(test_page_macros_match_the_system_page),
        cmocka_unit_test(test_malloc_tid_is_initialized_and_from_heap),
        cmocka_unit_test(test_init_tid_on_stack),
        cmocka_unit_test(test_copy_tid_is_a_heap_copy),
        cmocka_unit_test(test_options_defaults),
        cmocka_unit_test(test_copy_options_is_deep),
        cmocka_unit_test(test_region_records),
        cmocka_unit_test(test_return_code_names),
        cmocka_unit_test(test_mode_and_type_names),
        cmocka_unit_test(test_booleans),
    };
    return cmocka_run_group_tests_name("librvm types", tests, NULL, NULL);
}
