/*
 * Transactions: begin/set_range/modify_bytes/abort/end, their error codes,
 * rvm_query and the counters of rvm_get_stats.
 */
#include "test_util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PS ((size_t)rvm_page_size())

static rvm_region_t *init_and_map(struct tctx *c, size_t pages)
{
    t_init(c, MIB(1), 50);
    return t_map(c, "seg", 0, pages * PS, 0);
}

static void test_begin_end_marks_tid_active_then_inactive(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 1);
    rvm_tid_t tid;
    rvm_init_tid(&tid);
    assert_false(rvm_tid_active(&tid));
    assert_rvm_ok(rvm_begin_transaction(&tid, restore));
    assert_true(rvm_tid_active(&tid));
    assert_true(tid.uname.tv_sec != 0 || tid.uname.tv_usec != 0);
    assert_rvm_ok(rvm_set_range(&tid, r->vmaddr, 16));
    memcpy(r->vmaddr, "0123456789abcdef", 16);
    assert_rvm_ok(rvm_end_transaction(&tid, flush));
    assert_false(rvm_tid_active(&tid));
    assert_memory_equal(r->vmaddr, "0123456789abcdef", 16);
    /* a stack tid can be reused */
    assert_rvm_ok(rvm_begin_transaction(&tid, no_restore));
    assert_rvm_ok(rvm_end_transaction(&tid, no_flush));
}

static void test_bad_tid_is_etid(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 1);
    assert_rvm(rvm_begin_transaction(NULL, restore), RVM_ETID);

    rvm_tid_t junk;
    memset(&junk, 0x5a, sizeof junk);
    assert_rvm(rvm_begin_transaction(&junk, restore), RVM_ETID);
    assert_rvm(rvm_set_range(&junk, r->vmaddr, 4), RVM_ETID);
    assert_rvm(rvm_end_transaction(&junk, flush), RVM_ETID);
    assert_rvm(rvm_abort_transaction(&junk), RVM_ETID);

    rvm_tid_t idle;
    rvm_init_tid(&idle);
    assert_rvm(rvm_set_range(&idle, r->vmaddr, 4), RVM_ETID);
    assert_rvm(rvm_modify_bytes(&idle, r->vmaddr, "abcd", 4), RVM_ETID);
    assert_rvm(rvm_end_transaction(&idle, flush), RVM_ETID);
    assert_rvm(rvm_abort_transaction(&idle), RVM_ETID);
    assert_rvm(rvm_set_range(NULL, r->vmaddr, 4), RVM_ETID);
    assert_rvm(rvm_end_transaction(NULL, flush), RVM_ETID);
    assert_rvm(rvm_abort_transaction(NULL), RVM_ETID);

    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm(rvm_begin_transaction(tid, restore), RVM_ETID); /* active */
    assert_rvm_ok(rvm_end_transaction(tid, flush));
    assert_rvm(rvm_end_transaction(tid, flush), RVM_ETID);    /* ended */
    assert_rvm(rvm_set_range(tid, r->vmaddr, 4), RVM_ETID);

    /* a copy names the transaction but cannot drive it */
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    rvm_tid_t *copy = rvm_copy_tid(tid);
    assert_non_null(copy);
    rvm_return_t rc = rvm_end_transaction(copy, flush);
    rvm_free_tid(copy);
    assert_rvm_ok(rvm_end_transaction(tid, flush));
    assert_int_equal(rc, RVM_ETID);
}

static void test_bad_mode_is_emode(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 1);
    rvm_tid_t *tid = t_tid(c);
    assert_rvm(rvm_begin_transaction(tid, flush), RVM_EMODE);
    assert_rvm(rvm_begin_transaction(tid, no_flush), RVM_EMODE);
    assert_rvm(rvm_begin_transaction(tid, (rvm_mode_t)12345), RVM_EMODE);
    assert_false(rvm_tid_active(tid));
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_modify_bytes(tid, r->vmaddr, "mode", 4));
    assert_rvm(rvm_end_transaction(tid, restore), RVM_EMODE);
    assert_rvm(rvm_end_transaction(tid, (rvm_mode_t)0), RVM_EMODE);
    assert_true(rvm_tid_active(tid));
    assert_rvm_ok(rvm_end_transaction(tid, flush));
    assert_memory_equal(r->vmaddr, "mode", 4);
}

static void test_abort_of_no_restore_is_emode_and_stays_active(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 1);
    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, no_restore));
    assert_rvm_ok(rvm_modify_bytes(tid, r->vmaddr, "keep", 4));
    assert_rvm(rvm_abort_transaction(tid), RVM_EMODE);
    assert_true(rvm_tid_active(tid));
    assert_rvm_ok(rvm_end_transaction(tid, flush));
    assert_memory_equal(r->vmaddr, "keep", 4);
    t_reinit(c, 50);
    r = t_map(c, "seg", 0, PS, 0);
    assert_memory_equal(r->vmaddr, "keep", 4);
}

static void test_set_range_outside_regions_is_enot_mapped(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *a = t_map(c, "a", 0, PS, 0);
    rvm_region_t *b = t_map(c, "b", 0, PS, 0);
    char local[32];
    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm(rvm_set_range(tid, local, sizeof local), RVM_ENOT_MAPPED);
    assert_rvm(rvm_modify_bytes(tid, local, "x", 1), RVM_ENOT_MAPPED);
    /* runs past the end of the region */
    assert_rvm(rvm_set_range(tid, a->vmaddr + PS - 4, 8), RVM_ENOT_MAPPED);
    /* starts before it */
    assert_rvm(rvm_set_range(tid, a->vmaddr - 4, 8), RVM_ENOT_MAPPED);
    /* spans two regions even if they happen to be adjacent */
    char *lo = a->vmaddr < b->vmaddr ? a->vmaddr : b->vmaddr;
    assert_rvm(rvm_set_range(tid, lo + PS - 4, 8), RVM_ENOT_MAPPED);
    /* exactly the whole region is fine; length 0 is accepted */
    assert_rvm_ok(rvm_set_range(tid, a->vmaddr, PS));
    assert_rvm_ok(rvm_set_range(tid, a->vmaddr + 5, 0));
    assert_true(rvm_tid_active(tid));
    assert_rvm_ok(rvm_end_transaction(tid, flush));
}

static void test_stale_copy_of_a_tid_is_etid(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 1);
    rvm_tid_t a, b, other, b2;
    rvm_init_tid(&a);
    rvm_init_tid(&other);
    assert_rvm_ok(rvm_begin_transaction(&a, restore));
    b = a; /* a struct copy names the same live transaction */
    assert_rvm(rvm_set_range(&b, r->vmaddr, 4), RVM_ETID);
    assert_rvm_ok(rvm_begin_transaction(&other, restore));
    b2 = other;
    assert_rvm_ok(rvm_modify_bytes(&a, r->vmaddr, "aaaa", 4));
    assert_rvm_ok(rvm_end_transaction(&a, flush));
    assert_rvm_ok(rvm_end_transaction(&other, flush));
    /* b still points at a transaction that is gone */
    for (int i = 0; i < 3; i++) {
        rvm_tid_t t;
        rvm_init_tid(&t);
        assert_rvm_ok(rvm_begin_transaction(&t, restore));
        assert_rvm_ok(rvm_end_transaction(&t, no_flush));
    }
    assert_rvm(rvm_set_range(&b, r->vmaddr, 4), RVM_ETID);
    assert_rvm(rvm_abort_transaction(&b), RVM_ETID);
    assert_rvm(rvm_end_transaction(&b, flush), RVM_ETID);
    assert_rvm(rvm_set_range(&b2, r->vmaddr, 4), RVM_ETID);
    assert_rvm(rvm_abort_transaction(&b2), RVM_ETID);
    assert_rvm(rvm_end_transaction(&b2, flush), RVM_ETID);
    assert_memory_equal(r->vmaddr, "aaaa", 4);
}

static void test_modify_bytes_null_src_is_esrc(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 1);
    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm(rvm_modify_bytes(tid, r->vmaddr, NULL, 4), RVM_ESRC);
    assert_rvm_ok(rvm_modify_bytes(tid, r->vmaddr, "src", 3));
    assert_memory_equal(r->vmaddr, "src", 3);
    /* overlapping source and destination: memmove semantics */
    assert_rvm_ok(rvm_modify_bytes(tid, r->vmaddr + 1, r->vmaddr, 3));
    assert_memory_equal(r->vmaddr, "ssrc", 4);
    assert_rvm_ok(rvm_end_transaction(tid, flush));
}

/* After a truncation the segment file holds want. */
static void truncate_and_check_segment(struct tctx *c, const unsigned char *want, size_t len)
{
    assert_rvm_ok(rvm_truncate());
    unsigned char *disk = malloc(len);
    assert_non_null(disk);
    t_read_file(t_path(c, "seg"), 0, disk, len);
    assert_memory_equal(disk, want, len);
    free(disk);
}

static void test_abort_restores_old_bytes(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 4);
    unsigned char *orig = malloc(4 * PS);
    assert_non_null(orig);
    t_fill(orig, 4 * PS, 3);
    t_commit_bytes(r->vmaddr, orig, 4 * PS, flush);

    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_set_range(tid, r->vmaddr + 10, 3 * PS));
    memset(r->vmaddr + 10, 0, 3 * PS);
    assert_rvm_ok(rvm_modify_bytes(tid, r->vmaddr + 4 * PS - 1, "z", 1));
    assert_rvm_ok(rvm_abort_transaction(tid));
    assert_false(rvm_tid_active(tid));
    assert_memory_equal(r->vmaddr, orig, 4 * PS);

    /* and nothing of it reaches the segment */
    truncate_and_check_segment(c, orig, 4 * PS);
    free(orig);
}

/* Ranges of zeros save nothing (src/txn.c, OLD_ZERO_MIN): an abort still
 * puts the zeros back, alone or after a later range merged with them. */
static void test_abort_restores_zero_ranges(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 8);
    unsigned char *orig = malloc(8 * PS);
    assert_non_null(orig);
    memset(orig, 0, 4 * PS);
    t_fill(orig + 4 * PS, 4 * PS, 5);
    t_commit_bytes(r->vmaddr + 4 * PS, orig + 4 * PS, 4 * PS, flush);
    assert_memory_equal(r->vmaddr, orig, 8 * PS);

    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_set_range(tid, r->vmaddr + 100, 3 * PS)); /* zeros */
    memset(r->vmaddr + 100, 'X', 3 * PS);
    /* Overlaps the zeros saved as nothing and reaches the pattern. */
    assert_rvm_ok(rvm_set_range(tid, r->vmaddr + 2 * PS, 4 * PS));
    memset(r->vmaddr + 2 * PS, 'Y', 4 * PS);
    assert_rvm_ok(rvm_abort_transaction(tid));
    assert_memory_equal(r->vmaddr, orig, 8 * PS);

    /* Alone, then committed: the new bytes stay. */
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_set_range(tid, r->vmaddr, 2 * PS));
    memset(r->vmaddr, 'Z', 2 * PS);
    assert_rvm_ok(rvm_abort_transaction(tid));
    assert_memory_equal(r->vmaddr, orig, 8 * PS);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_set_range(tid, r->vmaddr, 2 * PS));
    memset(r->vmaddr, 'Z', 2 * PS);
    assert_rvm_ok(rvm_end_transaction(tid, flush));
    memset(orig, 'Z', 2 * PS);
    truncate_and_check_segment(c, orig, 8 * PS);
    free(orig);
}

static void test_set_range_saves_old_bytes_once_per_byte(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 1);
    char *p = r->vmaddr + 100;
    memset(p - 50, 'A', 300); /* outside any transaction: memory only */
    t_commit_bytes(p - 50, p - 50, 300, flush);

    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_set_range(tid, p, 100));
    memset(p, 'X', 100);
    assert_rvm_ok(rvm_set_range(tid, p + 50, 100)); /* half already declared */
    memset(p + 50, 'Y', 100);
    assert_rvm_ok(rvm_set_range(tid, p - 20, 200)); /* covers both */
    memset(p - 20, 'Z', 200);
    assert_rvm_ok(rvm_abort_transaction(tid));
    for (int i = -50; i < 250; i++)
        if (p[i] != 'A')
            fail_msg("byte %d is '%c' after abort, expected 'A'", i, p[i]);
}

static void test_set_range_saves_old_bytes_once_across_regions(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *x = t_map(c, "x", 0, PS, 0);
    rvm_region_t *y = t_map(c, "y", 0, PS, 0);
    char *hi = x->vmaddr > y->vmaddr ? x->vmaddr : y->vmaddr;
    char *lo = x->vmaddr > y->vmaddr ? y->vmaddr : x->vmaddr;
    rvm_tid_t *tid = t_tid(c);
    /* declare in the higher region, then the lower, then inside the first */
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_set_range(tid, hi, PS));
    memset(hi, 0xaa, PS);
    assert_rvm_ok(rvm_set_range(tid, lo + 100, 8));
    memset(lo + 100, 0xbb, 8);
    assert_rvm_ok(rvm_set_range(tid, hi + 1000, 100));
    memset(hi + 1000, 0xcc, 100);
    assert_rvm_ok(rvm_set_range(tid, lo, 200));
    memset(lo, 0xdd, 200);
    assert_rvm_ok(rvm_abort_transaction(tid));
    for (size_t i = 0; i < PS; i++) {
        if (hi[i] != 0)
            fail_msg("higher region byte %zu is 0x%02x after abort", i, (unsigned char)hi[i]);
        if (lo[i] != 0)
            fail_msg("lower region byte %zu is 0x%02x after abort", i, (unsigned char)lo[i]);
    }
    /* and the same transaction committed writes the final bytes */
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_set_range(tid, hi, PS));
    memset(hi, 0xaa, PS);
    assert_rvm_ok(rvm_set_range(tid, lo + 100, 8));
    memset(lo + 100, 0xbb, 8);
    assert_rvm_ok(rvm_set_range(tid, hi + 1000, 100));
    memset(hi + 1000, 0xcc, 100);
    assert_rvm_ok(rvm_end_transaction(tid, flush));
    assert_rvm_ok(rvm_truncate());
    unsigned char disk[4096];
    t_read_file(t_path(c, hi == x->vmaddr ? "x" : "y"), 0, disk, sizeof disk);
    assert_int_equal(disk[0], 0xaa);
    assert_int_equal(disk[1000], 0xcc);
    assert_int_equal(disk[1099], 0xcc);
    assert_int_equal(disk[1100], 0xaa);
    t_read_file(t_path(c, lo == x->vmaddr ? "x" : "y"), 0, disk, sizeof disk);
    assert_int_equal(disk[99], 0);
    assert_int_equal(disk[100], 0xbb);
    assert_int_equal(disk[108], 0);
}

static void test_commit_of_overlapping_ranges_logs_final_bytes(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 1);
    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_modify_bytes(tid, r->vmaddr, "aaaaaaaa", 8));
    assert_rvm_ok(rvm_modify_bytes(tid, r->vmaddr + 4, "bbbbbbbb", 8));
    assert_rvm_ok(rvm_modify_bytes(tid, r->vmaddr + 2, "cc", 2));
    assert_rvm_ok(rvm_end_transaction(tid, flush));
    assert_rvm_ok(rvm_truncate());
    char disk[12];
    t_read_file(t_path(c, "seg"), 0, disk, 12);
    assert_memory_equal(disk, "aaccbbbbbbbb", 12);
}

static void test_multi_region_multi_segment_transaction(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *a0 = t_map(c, "a", 0, PS, 0);
    rvm_region_t *a1 = t_map(c, "a", 4 * PS, 2 * PS, 0);
    rvm_region_t *b = t_map(c, "b", PS, PS, 0);
    rvm_region_t *d = t_map(c, "d", 0, PS, 0);

    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_modify_bytes(tid, a0->vmaddr + 1, "a0", 2));
    assert_rvm_ok(rvm_modify_bytes(tid, a1->vmaddr + PS + 2, "a1", 2));
    assert_rvm_ok(rvm_modify_bytes(tid, b->vmaddr + 3, "bb", 2));
    assert_rvm_ok(rvm_modify_bytes(tid, d->vmaddr + 4, "dd", 2));
    assert_rvm_ok(rvm_end_transaction(tid, flush));

    /* an aborted one across the same regions changes nothing */
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_modify_bytes(tid, a0->vmaddr + 1, "XX", 2));
    assert_rvm_ok(rvm_modify_bytes(tid, a1->vmaddr + PS + 2, "XX", 2));
    assert_rvm_ok(rvm_modify_bytes(tid, b->vmaddr + 3, "XX", 2));
    assert_rvm_ok(rvm_modify_bytes(tid, d->vmaddr + 4, "XX", 2));
    assert_rvm_ok(rvm_abort_transaction(tid));

    assert_rvm_ok(rvm_truncate());
    char x[2];
    t_read_file(t_path(c, "a"), 1, x, 2);
    assert_memory_equal(x, "a0", 2);
    t_read_file(t_path(c, "a"), 5 * PS + 2, x, 2);
    assert_memory_equal(x, "a1", 2);
    t_read_file(t_path(c, "b"), PS + 3, x, 2);
    assert_memory_equal(x, "bb", 2);
    t_read_file(t_path(c, "d"), 4, x, 2);
    assert_memory_equal(x, "dd", 2);
}

static void test_commit_survives_terminate_and_reinitialize(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 2);
    t_commit_bytes(r->vmaddr + PS + 7, "durable", 7, flush);
    t_commit_bytes(r->vmaddr + 3, "lazy", 4, no_flush);
    t_reinit(c, 50); /* terminate flushes no_flush commits */
    r = t_map(c, "seg", 0, 2 * PS, 0);
    assert_memory_equal(r->vmaddr + PS + 7, "durable", 7);
    assert_memory_equal(r->vmaddr + 3, "lazy", 4);
}

static void test_terminate_with_open_transaction_is_euncommit(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 1);
    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_modify_bytes(tid, r->vmaddr, "open", 4));
    assert_rvm(rvm_terminate(), RVM_EUNCOMMIT);
    /* nothing changed: RVM still works and the transaction can commit */
    assert_rvm_ok(rvm_modify_bytes(tid, r->vmaddr + 4, "ed", 2));
    assert_rvm_ok(rvm_end_transaction(tid, flush));
    t_reinit(c, 50);
    r = t_map(c, "seg", 0, PS, 0);
    assert_memory_equal(r->vmaddr, "opened", 6);
}

static void test_query_counts_uncommitted_transactions(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *a = t_map(c, "a", 0, PS, 0);
    rvm_region_t *b = t_map(c, "b", 0, PS, 0);
    rvm_options_t *q = t_query(NULL);
    assert_int_equal(q->n_uncommit, 0);
    assert_null(q->tid_array);
    rvm_free_options(q);

    rvm_tid_t *t1 = t_tid(c), *t2 = t_tid(c), *t3 = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(t1, restore));
    assert_rvm_ok(rvm_begin_transaction(t2, no_restore));
    assert_rvm_ok(rvm_begin_transaction(t3, restore));
    assert_rvm_ok(rvm_set_range(t1, a->vmaddr, 8));
    assert_rvm_ok(rvm_set_range(t2, a->vmaddr + 8, 8));
    assert_rvm_ok(rvm_set_range(t3, b->vmaddr, 8));

    q = t_query(NULL);
    assert_int_equal(q->n_uncommit, 3);
    assert_non_null(q->tid_array);
    int found = 0;
    for (long i = 0; i < q->n_uncommit; i++)
        if (q->tid_array[i].uname.tv_sec == t3->uname.tv_sec &&
            q->tid_array[i].uname.tv_usec == t3->uname.tv_usec)
            found = 1;
    assert_true(found);
    rvm_free_options(q);

    q = t_query(a);
    assert_int_equal(q->n_uncommit, 2);
    rvm_free_options(q);
    q = t_query(b);
    assert_int_equal(q->n_uncommit, 1);
    rvm_free_options(q);

    rvm_region_t unmapped;
    rvm_init_region(&unmapped);
    unmapped.data_dev = (char *)t_path(c, "zzz");
    unmapped.vmaddr = (char *)(uintptr_t)PS;
    unmapped.length = PS;
    rvm_options_t *o = rvm_malloc_options();
    assert_rvm(rvm_query(o, &unmapped), RVM_EREGION);
    rvm_free_options(o);

    assert_rvm_ok(rvm_end_transaction(t1, flush));
    assert_rvm_ok(rvm_end_transaction(t2, no_flush));
    assert_rvm_ok(rvm_abort_transaction(t3));
    q = t_query(NULL);
    assert_int_equal(q->n_uncommit, 0);
    rvm_free_options(q);
}

static void test_query_reports_log_empty(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 1);
    rvm_options_t *q = t_query(NULL);
    assert_true(q->log_empty);
    rvm_free_options(q);
    t_commit_bytes(r->vmaddr, "x", 1, flush);
    q = t_query(NULL);
    assert_false(q->log_empty);
    rvm_free_options(q);
    assert_rvm_ok(rvm_truncate());
    q = t_query(NULL);
    assert_true(q->log_empty);
    rvm_free_options(q);
}

/* Counts are kept per thread (src/stats.c): a thread's own, those of a
 * thread still alive, those of exited threads, and none from before the
 * last rvm_initialize. */
struct stats_arg {
    char *base;
    int n;
    pthread_barrier_t *park;    /* NULL: exit at once */
};

static void *stats_committer(void *p)
{
    struct stats_arg *a = p;
    rvm_tid_t *tid = rvm_malloc_tid();
    assert_non_null(tid);
    for (int i = 0; i < a->n; i++) {
        assert_rvm_ok(rvm_begin_transaction(tid, no_restore));
        assert_rvm_ok(rvm_set_range(tid, a->base, 8));
        assert_rvm_ok(rvm_set_range(tid, a->base + 64, 4));
        assert_rvm_ok(rvm_end_transaction(tid, no_flush));
    }
    rvm_free_tid(tid);
    if (a->park) {
        pthread_barrier_wait(a->park); /* counted */
        pthread_barrier_wait(a->park); /* RVM initialized again */
        a->park = NULL;
        stats_committer(a);
    }
    return NULL;
}

static void test_stats_count_every_thread(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 1);
    rvm_stats_t s0 = t_stats();
    pthread_barrier_t park;
    pthread_barrier_init(&park, NULL, 2);
    struct stats_arg a[4];
    pthread_t th[4];
    for (int k = 0; k < 4; k++) {
        a[k] = (struct stats_arg){r->vmaddr + 128 * k, 100 + k, k == 0 ? &park : NULL};
        assert_int_equal(pthread_create(&th[k], NULL, stats_committer, &a[k]), 0);
    }
    for (int k = 1; k < 4; k++)
        pthread_join(th[k], NULL);
    pthread_barrier_wait(&park);
    rvm_stats_t s1 = t_stats();
    uint64_t n = 100 + 101 + 102 + 103;
    assert_int_equal(s1.n_begin - s0.n_begin, n);
    assert_int_equal(s1.n_no_flush_commit - s0.n_no_flush_commit, n);
    assert_int_equal(s1.n_set_range - s0.n_set_range, 2 * n);
    assert_int_equal(s1.bytes_set_range - s0.bytes_set_range, 12 * n);
    assert_int_equal(s1.bytes_after_ranges - s0.bytes_after_ranges, 12 * n);
    t_reinit(c, 0);
    r = t_map(c, "seg", 0, PS, 0);
    rvm_stats_t s2 = t_stats();
    assert_int_equal(s2.n_begin, 0);
    assert_int_equal(s2.n_set_range, 0);
    assert_int_equal(s2.bytes_set_range, 0);
    a[0].base = r->vmaddr;
    pthread_barrier_wait(&park);
    pthread_join(th[0], NULL);
    rvm_stats_t s3 = t_stats();
    assert_int_equal(s3.n_begin, 100);
    assert_int_equal(s3.n_no_flush_commit, 100);
    assert_int_equal(s3.bytes_set_range, 1200);
    pthread_barrier_destroy(&park);
}

static void test_get_stats_counters_move(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 1);
    rvm_stats_t s0 = t_stats();
    rvm_tid_t *tid = t_tid(c);

    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_modify_bytes(tid, r->vmaddr, "0123456789", 10));
    assert_rvm_ok(rvm_set_range(tid, r->vmaddr + 100, 20));
    assert_rvm_ok(rvm_end_transaction(tid, flush));

    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_set_range(tid, r->vmaddr, 4));
    assert_rvm_ok(rvm_abort_transaction(tid));

    assert_rvm_ok(rvm_begin_transaction(tid, no_restore));
    assert_rvm_ok(rvm_set_range(tid, r->vmaddr + 200, 8));
    assert_rvm_ok(rvm_end_transaction(tid, no_flush));

    rvm_stats_t s1 = t_stats();
    assert_int_equal(s1.n_begin - s0.n_begin, 3);
    assert_int_equal(s1.n_flush_commit - s0.n_flush_commit, 1);
    assert_int_equal(s1.n_no_flush_commit - s0.n_no_flush_commit, 1);
    assert_int_equal(s1.n_abort - s0.n_abort, 1);
    assert_int_equal(s1.n_set_range - s0.n_set_range, 4);
    assert_int_equal(s1.bytes_set_range - s0.bytes_set_range, 10 + 20 + 4 + 8);
    assert_true(s1.bytes_logged - s0.bytes_logged >= 30);
    assert_true(s1.log_bytes_written > s0.log_bytes_written);
    assert_true(s1.n_records > s0.n_records);
    assert_true(s1.n_forces > s0.n_forces);
    assert_true(s1.log_used > 0);
    assert_true(s1.log_records > 0);
    assert_int_equal(s1.log_size, MIB(1));

    assert_rvm_ok(rvm_flush());
    rvm_stats_t s2 = t_stats();
    assert_int_equal(s2.no_flush_pending, 0);
    assert_true(s2.bytes_logged - s0.bytes_logged >= 38);

    assert_rvm_ok(rvm_truncate());
    rvm_stats_t s3 = t_stats();
    assert_int_equal(s3.n_truncations - s2.n_truncations, 1);
    assert_true(s3.bytes_truncated > s2.bytes_truncated);
    assert_int_equal(s3.log_used, 0);
    assert_int_equal(s3.log_records, 0);
}

static void test_no_flush_commits_become_durable_at_flush(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 1);
    for (int i = 0; i < 10; i++) {
        char v = (char)('0' + i);
        t_commit_bytes(r->vmaddr + i, &v, 1, no_flush);
    }
    rvm_stats_t s = t_stats();
    assert_int_equal(s.n_no_flush_commit, 10);
    assert_true(s.no_flush_pending <= 10);
    assert_rvm_ok(rvm_flush());
    s = t_stats();
    assert_int_equal(s.no_flush_pending, 0);
    assert_rvm_ok(rvm_flush()); /* nothing to do */
    assert_memory_equal(r->vmaddr, "0123456789", 10);
    t_reinit(c, 50);
    r = t_map(c, "seg", 0, PS, 0);
    assert_memory_equal(r->vmaddr, "0123456789", 10);
}

/* A flush commit promises that every earlier commit is durable, even when it
 * declared nothing of its own. */
static void test_empty_flush_commit_forces_earlier_no_flush_commits(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = init_and_map(c, 1);
    t_commit_bytes(r->vmaddr, "abc", 3, no_flush);
    assert_true(t_stats().no_flush_pending > 0);
    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_end_transaction(tid, flush));
    assert_int_equal(t_stats().no_flush_pending, 0);
    t_reinit(c, 50);
    r = t_map(c, "seg", 0, PS, 0);
    assert_memory_equal(r->vmaddr, "abc", 3);
}

#define T(f) cmocka_unit_test_setup_teardown(f, t_setup, t_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_begin_end_marks_tid_active_then_inactive),
        T(test_bad_tid_is_etid),
        T(test_bad_mode_is_emode),
        T(test_abort_of_no_restore_is_emode_and_stays_active),
        T(test_set_range_outside_regions_is_enot_mapped),
        T(test_modify_bytes_null_src_is_esrc),
        T(test_abort_restores_old_bytes),
        T(test_abort_restores_zero_ranges),
        T(test_set_range_saves_old_bytes_once_per_byte),
        T(test_set_range_saves_old_bytes_once_across_regions),
        T(test_commit_of_overlapping_ranges_logs_final_bytes),
        T(test_multi_region_multi_segment_transaction),
        T(test_commit_survives_terminate_and_reinitialize),
        T(test_terminate_with_open_transaction_is_euncommit),
        T(test_query_counts_uncommitted_transactions),
        T(test_query_reports_log_empty),
        T(test_get_stats_counters_move),
        T(test_stats_count_every_thread),
        T(test_no_flush_commits_become_durable_at_flush),
        T(test_empty_flush_commit_forces_earlier_no_flush_commits),
        /* last: a use-after-free here ends the program under ASan */
        T(test_stale_copy_of_a_tid_is_etid),
    };
    return cmocka_run_group_tests_name("librvm transactions", tests, NULL, NULL);
}
