/*
 * rvm_zero_pages and rvm_release_pages (src/region_zero.c): zero pages
 * that are not the segment file's, committed bytes written into them, and
 * dropping private copies afterwards, by the caller or by librvm after a
 * truncation, which must map the file again there rather than leave
 * zeros (MADV_DONTNEED on an anonymous page); and the commit marks that
 * tell a caller when a truncation has put its commits into the file.
 */
#include "test_util.h"
#include "rvm_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PS 4096u
#define PAGES 16u

static int all_zero(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return 0;
    return 1;
}

/* The segment file's pages 3..12: stale bytes that memory must not show
 * where rvm_zero_pages put zero pages. */
static unsigned char stale[10 * PS];

static const unsigned char *stale_at(size_t off)
{
    return stale + (off - 3 * PS);
}

static rvm_region_t *setup(struct tctx *c)
{
    t_init(c, MIB(8), 0);
    t_fill(stale, sizeof stale, 7);
    t_write_file(t_path(c, "seg"), 3 * PS, stale, sizeof stale);
    rvm_region_t *r = t_map(c, "seg", 0, PAGES * PS, RVM_MAP_PRIVATE);
    assert_memory_equal(r->vmaddr + 3 * PS, stale, sizeof stale);
    return r;
}

/* A transaction with a range in the last page, open: librvm's own
 * release after a truncation leaves the region alone meanwhile. */
static rvm_tid_t *hold_region(struct tctx *c, char *base)
{
    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_set_range(tid, base + (PAGES - 1) * PS, 8));
    return tid;
}

/* Pages 4..11 of the region made zero pages, and 8 pages of data of the
 * given seed to commit there (the caller frees it). */
static unsigned char *zero_eight_pages(char *base, unsigned seed)
{
    assert_rvm_ok(rvm_zero_pages(base + 4 * PS, 8 * PS));
    unsigned char *data = malloc(8 * PS);
    assert_non_null(data);
    t_fill(data, 8 * PS, seed);
    return data;
}

/* zero_eight_pages, the data committed there with a flush. */
static void commit_into_eight_zero_pages(char *base, unsigned seed)
{
    unsigned char *data = zero_eight_pages(base, seed);
    t_commit_bytes(base + 4 * PS, data, 8 * PS, flush);
    free(data);
}

static void test_zero_pages_replace_the_files_until_released(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = setup(c);
    char *base = r->vmaddr;
    /* Whole pages inside the span only: pages 4..11. */
    assert_rvm_ok(rvm_zero_pages(base + 4 * PS - 100, 8 * PS + 200));
    assert_true(all_zero((unsigned char *)base + 4 * PS, 8 * PS));
    assert_memory_equal(base + 4 * PS - 100, stale_at(4 * PS - 100), 100);
    assert_memory_equal(base + 12 * PS, stale_at(12 * PS), 100);

    /* Committed into the zero pages, in the file after a truncation. */
    unsigned char *data = malloc(4 * PS);
    assert_non_null(data);
    t_fill(data, 4 * PS, 3);
    t_commit_bytes(base + 6 * PS, data, 4 * PS, no_flush);
    rvm_tid_t *hold = hold_region(c, base);
    assert_rvm_ok(rvm_flush());
    assert_rvm_ok(rvm_truncate());

    /* The file now: stale at 4-5 and 10-11, the commit at 6-9.  Memory
     * after the release shows the file, not zeros. */
    assert_rvm_ok(rvm_release_pages(base, PAGES * PS));
    assert_true(t_check_fill(base + 6 * PS, 4 * PS, 3));
    unsigned char *file = malloc(PAGES * PS);
    assert_non_null(file);
    t_read_file(t_path(c, "seg"), 0, file, PAGES * PS);
    assert_memory_equal(base, file, PAGES * PS);
    assert_memory_equal(base + 4 * PS, stale_at(4 * PS), 2 * PS);
    assert_rvm_ok(rvm_abort_transaction(hold));
    free(file);
    free(data);
}

/* librvm's own release after a truncation (region_release_clean). */
static void test_truncation_release_keeps_bytes_of_zero_pages(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = setup(c);
    char *base = r->vmaddr;
    commit_into_eight_zero_pages(base, 5);
    assert_rvm_ok(rvm_truncate()); /* nothing left in the log: copies go */
    assert_true(t_check_fill(base + 4 * PS, 8 * PS, 5));
    /* And the mapping is the file's again: a change made to the file
     * outside librvm (never done in earnest) shows through. */
    t_write_file(t_path(c, "seg"), 8 * PS, "Z", 1);
    assert_int_equal(base[8 * PS], 'Z');
}

/* rvm_recycle_pages keeps the zero pages it drops (src/page_pool.c) and
 * rvm_zero_pages gives them out again: cleared, and not in place of the
 * bytes that the dropped span reads from the file again. */
static void test_recycled_zero_pages_come_back_cleared(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = setup(c);
    char *base = r->vmaddr;
    commit_into_eight_zero_pages(base, 13);
    rvm_tid_t *hold = hold_region(c, base);
    assert_rvm_ok(rvm_truncate());
    assert_rvm_ok(rvm_recycle_pages(base + 4 * PS, 8 * PS));
    assert_true(t_check_fill(base + 4 * PS, 8 * PS, 13));
    assert_rvm_ok(rvm_zero_pages(base, 3 * PS));
    assert_true(all_zero((unsigned char *)base, 3 * PS));
    assert_rvm_ok(rvm_zero_pages(base + 13 * PS, 2 * PS));
    assert_true(all_zero((unsigned char *)base + 13 * PS, 2 * PS));
    assert_true(t_check_fill(base + 4 * PS, 8 * PS, 13));
    assert_rvm_ok(rvm_zero_pages(base + 4 * PS, 8 * PS));
    assert_true(all_zero((unsigned char *)base + 4 * PS, 8 * PS));
    assert_memory_equal(base + 3 * PS, stale_at(3 * PS), PS);
    assert_memory_equal(base + 12 * PS, stale_at(12 * PS), PS);
    assert_rvm_ok(rvm_abort_transaction(hold));
}

/* Mappings of the file at path outside [base, base + len): pages of the
 * file that left the region (a pool must hold anonymous pages only). */
static int file_maps_outside(const char *path, const char *base, size_t len)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char *name = strchr(line, '/');
        if (!name || sscanf(line, "%lx-%lx", &lo, &hi) != 2)
            continue;
        name[strcspn(name, "\n")] = '\0';
        if (strcmp(name, path) == 0 &&
            (hi <= (unsigned long)base || lo >= (unsigned long)(base + len)))
            n++;
    }
    fclose(f);
    return n;
}

/* The zero pages' span is a hull: a file page between two runs of zero
 * pages (page 3, written in a transaction: a private copy of the file's
 * page) must stay out of the pool. */
static void test_recycling_keeps_file_pages_out_of_the_pool(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = setup(c);
    char *base = r->vmaddr;
    unsigned char *data = zero_eight_pages(base, 17);
    assert_rvm_ok(rvm_zero_pages(base, 3 * PS));
    unsigned char *low = malloc(4 * PS);
    assert_non_null(low);
    t_fill(low, 4 * PS, 19);
    t_commit_bytes(base, low, 4 * PS, no_flush); /* pages 0..3 */
    t_commit_bytes(base + 4 * PS, data, 8 * PS, no_flush);
    rvm_tid_t *hold = hold_region(c, base);
    assert_rvm_ok(rvm_truncate());
    assert_rvm_ok(rvm_recycle_pages(base, 12 * PS));
    assert_int_equal(file_maps_outside(t_path(c, "seg"), base, PAGES * PS), 0);
    assert_true(t_check_fill(base, 4 * PS, 19));
    assert_true(t_check_fill(base + 4 * PS, 8 * PS, 17));
    assert_rvm_ok(rvm_zero_pages(base + 13 * PS, 2 * PS));
    assert_true(all_zero((unsigned char *)base + 13 * PS, 2 * PS));
    assert_int_equal(file_maps_outside(t_path(c, "seg"), base, PAGES * PS), 0);
    assert_rvm_ok(rvm_abort_transaction(hold));
    free(low);
    free(data);
}

/* A release that covers part of the zero pages leaves the rest alone. */
static void test_partial_release_keeps_other_zero_pages(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = setup(c);
    char *base = r->vmaddr;
    unsigned char *data = zero_eight_pages(base, 9);
    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_modify_bytes(tid, base + 4 * PS, data, 2 * PS));
    assert_rvm_ok(rvm_end_transaction(tid, flush));
    rvm_tid_t *hold = hold_region(c, base);
    assert_rvm_ok(rvm_truncate());
    /* Pages 4..5 in the file; 6..11 zero in memory, stale in the file. */
    assert_rvm_ok(rvm_release_pages(base + 4 * PS, 2 * PS));
    assert_true(t_check_fill(base + 4 * PS, 2 * PS, 9));
    assert_true(all_zero((unsigned char *)base + 6 * PS, 6 * PS));
    /* The rest goes too, with the file's bytes. */
    assert_rvm_ok(rvm_release_pages(base + 6 * PS, 6 * PS));
    assert_memory_equal(base + 6 * PS, stale_at(6 * PS), 6 * PS);
    assert_rvm_ok(rvm_abort_transaction(hold));
    free(data);
}

static void test_refused_outside_private_regions(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(8), 0);
    rvm_region_t *r = t_map(c, "seg", 0, PAGES * PS, 0);
    assert_rvm(rvm_zero_pages(r->vmaddr, PS), RVM_EMODE);
    assert_rvm(rvm_release_pages(r->vmaddr, PS), RVM_EMODE);
    static char other[2 * PS];
    assert_rvm(rvm_zero_pages(other, sizeof other), RVM_ENOT_MAPPED);
}

/* tests/BUGS.md #4: zero pages made before regions were armed for auto
 * transactions stay while armed, neither released by the caller nor
 * dropped after a truncation, so that an auto write there is still
 * caught and logged. */
static void test_zero_pages_stay_while_armed(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = setup(c);
    char *base = r->vmaddr;
    commit_into_eight_zero_pages(base, 9);

    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_auto_transaction(tid, restore)); /* arms */
    base[PAGES * PS - 1] = 'a';
    assert_rvm_ok(rvm_end_transaction(tid, flush));
    assert_rvm(rvm_release_pages(base, PAGES * PS), RVM_EMODE);
    assert_rvm(rvm_recycle_pages(base, PAGES * PS), RVM_EMODE);
    assert_true(t_check_fill(base + 4 * PS, 8 * PS, 9));
    assert_rvm_ok(rvm_truncate()); /* the log is empty: librvm would drop */

    assert_rvm_ok(rvm_begin_auto_transaction(tid, restore));
    memcpy(base + 5 * PS + 10, "caught", 6);
    assert_rvm_ok(rvm_end_transaction(tid, flush));
    t_reinit(c, 0);
    r = t_map(c, "seg", 0, PAGES * PS, RVM_MAP_PRIVATE);
    assert_memory_equal(r->vmaddr + 5 * PS + 10, "caught", 6);
    assert_int_equal(r->vmaddr[PAGES * PS - 1], 'a');
}

/* A mark is applied only once a completed truncation covers every commit
 * before it: not when the commit is merely durable, and not by a
 * truncation that began before a later commit was forced. */
static void test_mark_applied_only_after_a_truncation_past_it(void **state)
{
    struct tctx *c = *state;
    rvm_region_t *r = setup(c);
    char *base = r->vmaddr;
    assert_rvm(rvm_commit_mark(NULL), RVM_ERANGE);

    unsigned char a[PS], b[PS], file[PS];
    t_fill(a, PS, 21);
    t_fill(b, PS, 22);
    uint64_t m0, m1, m2;
    assert_rvm_ok(rvm_commit_mark(&m0));
    t_commit_bytes(base + 4 * PS, a, PS, no_flush);
    assert_rvm_ok(rvm_commit_mark(&m1));
    assert_true(m1 > m0);
    assert_false(rvm_mark_applied(m1));
    assert_rvm_ok(rvm_flush()); /* durable, not yet in the file */
    assert_false(rvm_mark_applied(m1));

    /* b stays queued: the truncation applies what was durable at its
     * start, a but not b. */
    t_commit_bytes(base + 5 * PS, b, PS, no_flush);
    assert_rvm_ok(rvm_commit_mark(&m2));
    assert_true(m2 > m1);
    assert_int_equal(log_truncate(rvm.log, false), 0);
    assert_true(rvm_mark_applied(m0));
    assert_true(rvm_mark_applied(m1));
    assert_false(rvm_mark_applied(m2));
    t_read_file(t_path(c, "seg"), 4 * PS, file, PS);
    assert_memory_equal(file, a, PS);

    assert_rvm_ok(rvm_truncate()); /* flushes b first */
    assert_true(rvm_mark_applied(m2));
    t_read_file(t_path(c, "seg"), 5 * PS, file, PS);
    assert_memory_equal(file, b, PS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_zero_pages_replace_the_files_until_released, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_truncation_release_keeps_bytes_of_zero_pages, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_partial_release_keeps_other_zero_pages, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_recycled_zero_pages_come_back_cleared, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_recycling_keeps_file_pages_out_of_the_pool, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_refused_outside_private_regions, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_zero_pages_stay_while_armed, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_mark_applied_only_after_a_truncation_past_it, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
