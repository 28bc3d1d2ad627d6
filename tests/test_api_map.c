/*
 * rvm_map / rvm_unmap: what gets mapped where, and every error code.
 */
#include "test_util.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PS ((size_t)rvm_page_size())

static char *anon_pages(size_t n)
{
    void *p = mmap(NULL, n * PS, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    return p;
}

static void test_map_creates_missing_segment_zeroed(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 2 * PS, 0);
    assert_int_equal(r->length, 2 * PS);
    for (size_t i = 0; i < 2 * PS; i++)
        assert_int_equal(r->vmaddr[i], 0);
    assert_true(t_file_exists(t_path(c, "seg")));
    assert_true(t_file_size(t_path(c, "seg")) >= 2 * PS);
}

static void test_map_reads_segment_bytes_at_offset(void **state)
{
    struct tctx *c = *state;
    unsigned char *buf = malloc(4 * PS);
    assert_non_null(buf);
    t_fill(buf, 4 * PS, 7);
    t_write_file(t_path(c, "seg"), 0, buf, 4 * PS);
    t_init(c, MIB(1), 50);
    rvm_region_t *r = t_map(c, "seg", PS, 2 * PS, 0);
    assert_memory_equal(r->vmaddr, buf + PS, 2 * PS);
    free(buf);
}

static void test_map_reads_a_region_larger_than_max_read_len(void **state)
{
    struct tctx *c = *state;
    size_t len = 4 * MAX_READ_LEN + PS;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    t_fill(buf, len, 41);
    t_write_file(t_path(c, "big"), 0, buf, len);
    t_init(c, MIB(1), 50);
    rvm_region_t *r = t_map(c, "big", 0, len, 0);
    assert_memory_equal(r->vmaddr, buf, len);
    free(buf);
}

static void test_map_length_zero_extends_to_segment_end(void **state)
{
    struct tctx *c = *state;
    unsigned char *buf = malloc(3 * PS);
    assert_non_null(buf);
    t_fill(buf, 3 * PS, 8);
    t_write_file(t_path(c, "seg"), 0, buf, 3 * PS);
    t_init(c, MIB(1), 50);
    rvm_region_t *r = t_map(c, "seg", PS, 0, 0);
    assert_int_equal(r->length, 2 * PS);
    assert_memory_equal(r->vmaddr, buf + PS, 2 * PS);
    free(buf);
}

static void test_map_extends_short_segment(void **state)
{
    struct tctx *c = *state;
    t_write_file(t_path(c, "seg"), 0, "short", 5);
    t_init(c, MIB(1), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 3 * PS, 0);
    assert_memory_equal(r->vmaddr, "short", 5);
    assert_int_equal(r->vmaddr[5], 0);
    assert_int_equal(r->vmaddr[3 * PS - 1], 0);
    assert_true(t_file_size(t_path(c, "seg")) >= 3 * PS);
}

static void test_map_at_caller_memory_leaves_it_after_unmap(void **state)
{
    struct tctx *c = *state;
    unsigned char buf[64];
    t_fill(buf, sizeof buf, 9);
    t_write_file(t_path(c, "seg"), 0, buf, sizeof buf);
    t_init(c, MIB(1), 50);
    char *mem = anon_pages(2);
    rvm_region_t *r;
    assert_rvm_ok(t_try_map(c, "seg", 0, 2 * PS, mem, 0, &r));
    assert_ptr_equal(r->vmaddr, mem);
    assert_memory_equal(mem, buf, sizeof buf);
    t_commit_bytes(mem + 100, "caller", 6, flush);
    t_unmap(c, r);
    /* still ours and readable */
    assert_memory_equal(mem + 100, "caller", 6);
    mem[0] = 1;
    munmap(mem, 2 * PS);
}

static void test_map_no_copy_succeeds(void **state)
{
    struct tctx *c = *state;
    t_write_file(t_path(c, "seg"), 0, "data", 4);
    t_init(c, MIB(1), 50);
    rvm_region_t *r = rvm_malloc_region();
    assert_non_null(r);
    r->data_dev = strdup(t_path(c, "seg"));
    r->length = PS;
    r->no_copy = rvm_true;
    assert_rvm_ok(rvm_map(r, NULL));
    assert_non_null(r->vmaddr);
    c->regions[0] = r;
}

static void test_map_unaligned_offset_is_eoffset(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *r;
    assert_rvm(t_try_map(c, "seg", 100, PS, NULL, 0, &r), RVM_EOFFSET);
    assert_rvm(t_try_map(c, "seg", PS + 1, PS, NULL, 0, &r), RVM_EOFFSET);
}

static void test_map_unaligned_length_or_vmaddr_is_erange(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *r;
    assert_rvm(t_try_map(c, "seg", 0, 100, NULL, 0, &r), RVM_ERANGE);
    assert_rvm(t_try_map(c, "seg", 0, PS + 8, NULL, 0, &r), RVM_ERANGE);
    char *mem = anon_pages(3);
    assert_rvm(t_try_map(c, "seg", 0, PS, mem + 8, 0, &r), RVM_ERANGE);
    munmap(mem, 3 * PS);
}

static void test_map_overlapping_segment_range_is_eoverlap(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    t_map(c, "seg", PS, 2 * PS, 0);
    rvm_region_t *r;
    assert_rvm(t_try_map(c, "seg", 0, 2 * PS, NULL, 0, &r), RVM_EOVERLAP);
    assert_rvm(t_try_map(c, "seg", 2 * PS, 2 * PS, NULL, 0, &r), RVM_EOVERLAP);
    assert_rvm(t_try_map(c, "seg", PS, 2 * PS, NULL, 0, &r), RVM_EOVERLAP);
    /* adjacent ranges are fine */
    assert_rvm_ok(t_try_map(c, "seg", 0, PS, NULL, 0, &r));
    assert_rvm_ok(t_try_map(c, "seg", 3 * PS, PS, NULL, 0, &r));
}

static void test_map_same_segment_by_other_name_is_eoverlap(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    t_map(c, "seg", 0, PS, 0);
    rvm_region_t *r;
    /* "./seg" names the same file */
    assert_rvm(t_try_map(c, "./seg", 0, PS, NULL, 0, &r), RVM_EOVERLAP);
}

static void test_map_same_segment_through_symlink_is_eoverlap(void **state)
{
    struct tctx *c = *state;
    t_write_file(t_path(c, "seg"), 0, "x", 1);
    assert_int_equal(symlink(t_path(c, "seg"), t_path(c, "link")), 0);
    t_init(c, MIB(1), 50);
    t_map(c, "seg", 0, PS, 0);
    rvm_region_t *r;
    assert_rvm(t_try_map(c, "link", 0, PS, NULL, 0, &r), RVM_EOVERLAP);
}

static void test_map_name_too_long_is_ename_too_long(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    size_t n = PATH_MAX + 10;
    char *name = malloc(n + 1);
    assert_non_null(name);
    memset(name, 'b', n);
    name[0] = '/';
    name[n] = 0;
    rvm_region_t r;
    rvm_init_region(&r);
    r.data_dev = name;
    r.length = PS;
    assert_rvm(rvm_map(&r, NULL), RVM_ENAME_TOO_LONG);
    free(name);
}

static void test_map_overlapping_memory_is_evm_overlap(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *a = t_map(c, "a", 0, 2 * PS, 0);
    rvm_region_t *r;
    assert_rvm(t_try_map(c, "b", 0, PS, a->vmaddr + PS, 0, &r), RVM_EVM_OVERLAP);
    assert_rvm(t_try_map(c, "b", 0, 2 * PS, a->vmaddr, 0, &r), RVM_EVM_OVERLAP);
    /* the failed maps changed nothing */
    t_commit_bytes(a->vmaddr + PS, "ok", 2, flush);
}

static void test_unmap_of_unmapped_region_is_eregion(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *a = t_map(c, "a", 0, 2 * PS, 0);

    rvm_region_t r;
    rvm_init_region(&r);
    r.data_dev = (char *)t_path(c, "a");
    char *mem = anon_pages(1);
    r.vmaddr = mem;
    r.length = PS;
    assert_rvm(rvm_unmap(&r), RVM_EREGION);
    /* the right address but not the mapping's length */
    r.vmaddr = a->vmaddr;
    r.length = PS;
    assert_rvm(rvm_unmap(&r), RVM_EREGION);
    assert_rvm(rvm_unmap(NULL), RVM_EREGION);
    assert_rvm(rvm_map(NULL, NULL), RVM_EREGION);
    r.struct_id = rvm_tid_id;
    assert_rvm(rvm_map(&r, NULL), RVM_EREGION);

    rvm_region_t *copy = rvm_copy_region(a);
    assert_non_null(copy);
    t_unmap(c, a);
    assert_rvm(rvm_unmap(copy), RVM_EREGION); /* twice */
    rvm_free_region(copy);
    munmap(mem, PS);
}

static void test_unmap_with_uncommitted_changes_is_euncommit(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *a = t_map(c, "a", 0, PS, 0);
    rvm_region_t *b = t_map(c, "b", 0, PS, 0);
    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_modify_bytes(tid, a->vmaddr, "pending", 7));
    assert_rvm(rvm_unmap(a), RVM_EUNCOMMIT);
    assert_memory_equal(a->vmaddr, "pending", 7); /* still mapped */
    t_unmap(c, b); /* the other region has no ranges of the transaction */
    assert_rvm_ok(rvm_end_transaction(tid, flush));
    t_unmap(c, a);
}

static void test_remap_after_unmap_shows_committed_bytes(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *a = t_map(c, "seg", 0, 2 * PS, 0);
    t_commit_bytes(a->vmaddr + PS + 10, "committed", 9, flush);
    t_unmap(c, a);
    /* the record is still in the log: the map must apply it */
    a = t_map(c, "seg", 0, 2 * PS, 0);
    assert_memory_equal(a->vmaddr + PS + 10, "committed", 9);
    rvm_region_t *b = t_map(c, "seg", 4 * PS, PS, 0);
    (void)b;
    t_unmap(c, a);
    a = t_map(c, "seg", PS, PS, 0); /* a part of the old range */
    assert_memory_equal(a->vmaddr + 10, "committed", 9);
}

static void test_remap_applies_queued_no_flush_commits(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 0);
    rvm_region_t *a = t_map(c, "seg", 0, PS, 0);
    t_commit_bytes(a->vmaddr + 5, "queued", 6, no_flush);
    t_unmap(c, a);
    a = t_map(c, "seg", 0, PS, 0);
    assert_memory_equal(a->vmaddr + 5, "queued", 6);
    t_unmap(c, a);
    a = t_map(c, "seg", 0, PS, RVM_MAP_PRIVATE);
    assert_memory_equal(a->vmaddr + 5, "queued", 6);
}

static void test_map_far_beyond_4_gib(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 0);
    size_t off = (size_t)5 << 30; /* 5 GiB: the file stays sparse */
    rvm_region_t *r;
    rvm_return_t rc = t_try_map(c, "far", off, 2 * PS, NULL, 0, &r);
    if (rc == RVM_EIO)
        skip(); /* the file system cannot hold such a file */
    assert_rvm_ok(rc);
    t_commit_bytes(r->vmaddr + PS + 3, "far away", 8, flush);
    assert_rvm_ok(rvm_truncate());
    char b[8];
    t_read_file(t_path(c, "far"), off + PS + 3, b, 8);
    assert_memory_equal(b, "far away", 8);
    t_reinit(c, 0);
    r = t_map(c, "far", off, 2 * PS, 0);
    assert_memory_equal(r->vmaddr + PS + 3, "far away", 8);
}

static void test_map_private_behaves_like_map(void **state)
{
    struct tctx *c = *state;
    unsigned char *buf = malloc(4 * PS);
    assert_non_null(buf);
    t_fill(buf, 4 * PS, 21);
    t_write_file(t_path(c, "seg"), 0, buf, 4 * PS);
    t_init(c, MIB(1), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 4 * PS, RVM_MAP_PRIVATE);
    assert_memory_equal(r->vmaddr, buf, 4 * PS);

    /* commit */
    t_commit_bytes(r->vmaddr + 3 * PS + 1, "private!", 8, flush);
    memcpy(buf + 3 * PS + 1, "private!", 8);
    /* abort */
    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_set_range(tid, r->vmaddr + PS, PS));
    memset(r->vmaddr + PS, 0xee, PS);
    assert_rvm_ok(rvm_abort_transaction(tid));
    assert_memory_equal(r->vmaddr, buf, 4 * PS);

    /* truncation writes the segment; the mapping still shows the bytes */
    assert_rvm_ok(rvm_truncate());
    unsigned char back[8];
    t_read_file(t_path(c, "seg"), 3 * PS + 1, back, 8);
    assert_memory_equal(back, "private!", 8);
    assert_memory_equal(r->vmaddr, buf, 4 * PS);

    /* a no_restore commit survives terminate and a private remap */
    assert_rvm_ok(rvm_begin_transaction(tid, no_restore));
    assert_rvm_ok(rvm_modify_bytes(tid, r->vmaddr, "NEW", 3));
    assert_rvm_ok(rvm_end_transaction(tid, flush));
    memcpy(buf, "NEW", 3);
    t_reinit(c, 50);
    r = t_map(c, "seg", 0, 4 * PS, RVM_MAP_PRIVATE);
    assert_memory_equal(r->vmaddr, buf, 4 * PS);
    free(buf);
}

static void test_map_private_from_initialize_flags(void **state)
{
    struct tctx *c = *state;
    t_create_log(c, MIB(1));
    rvm_options_t o;
    t_options(c, &o, 50);
    o.flags = RVM_MAP_PRIVATE;
    assert_rvm_ok(RVM_INIT(&o));
    rvm_region_t *r = t_map(c, "seg", 0, 8 * PS, 0);
    for (size_t p = 0; p < 8; p++)
        t_commit_bytes(r->vmaddr + p * PS + p, "pg", 2, p % 2 ? flush : no_flush);
    assert_rvm_ok(rvm_flush());
    assert_rvm_ok(rvm_truncate());
    for (size_t p = 0; p < 8; p++) {
        char b[2];
        t_read_file(t_path(c, "seg"), p * PS + p, b, 2);
        assert_memory_equal(b, "pg", 2);
        assert_memory_equal(r->vmaddr + p * PS + p, "pg", 2);
    }
}

/* Is [addr, addr+len) a file mapping of path, per /proc/self/maps? */
static int is_file_mapping(const void *addr, size_t len, const char *path)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    char line[8192];
    int found = 0;
    uintptr_t a = (uintptr_t)addr;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) != 2)
            continue;
        if (a >= lo && a + len <= hi) {
            found = strstr(line, path) != NULL;
            break;
        }
    }
    fclose(f);
    return found;
}

static void test_map_private_is_a_lazy_file_mapping(void **state)
{
    struct tctx *c = *state;
    if (access("/proc/self/maps", R_OK) != 0)
        skip();
    t_init(c, MIB(1), 50);
    rvm_region_t *p = t_map(c, "priv", 0, 4 * PS, RVM_MAP_PRIVATE);
    rvm_region_t *n = t_map(c, "plain", 0, 4 * PS, 0);
    assert_int_equal(is_file_mapping(p->vmaddr, 4 * PS, t_path(c, "priv")), 1);
    assert_int_equal(is_file_mapping(n->vmaddr, 4 * PS, t_path(c, "plain")), 0);
}

static void test_set_options_map_private_applies_to_later_maps(void **state)
{
    struct tctx *c = *state;
    if (access("/proc/self/maps", R_OK) != 0)
        skip();
    t_init(c, MIB(1), 50);
    rvm_region_t *before = t_map(c, "before", 0, PS, 0);
    rvm_options_t o;
    rvm_init_options(&o);
    o.flags = RVM_MAP_PRIVATE;
    assert_rvm_ok(rvm_set_options(&o));
    rvm_region_t *after = t_map(c, "after", 0, PS, 0);
    assert_int_equal(is_file_mapping(before->vmaddr, PS, t_path(c, "before")), 0);
    assert_int_equal(is_file_mapping(after->vmaddr, PS, t_path(c, "after")), 1);
    t_commit_bytes(after->vmaddr, "late", 4, flush);
    t_commit_bytes(before->vmaddr, "early", 5, flush);
    assert_rvm_ok(rvm_truncate());
    char b[5];
    t_read_file(t_path(c, "after"), 0, b, 4);
    assert_memory_equal(b, "late", 4);
    t_read_file(t_path(c, "before"), 0, b, 5);
    assert_memory_equal(b, "early", 5);
}

#define T(f) cmocka_unit_test_setup_teardown(f, t_setup, t_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_map_creates_missing_segment_zeroed),
        T(test_map_reads_segment_bytes_at_offset),
        T(test_map_reads_a_region_larger_than_max_read_len),
        T(test_map_length_zero_extends_to_segment_end),
        T(test_map_extends_short_segment),
        T(test_map_at_caller_memory_leaves_it_after_unmap),
        T(test_map_no_copy_succeeds),
        T(test_map_unaligned_offset_is_eoffset),
        T(test_map_unaligned_length_or_vmaddr_is_erange),
        T(test_map_overlapping_segment_range_is_eoverlap),
        T(test_map_same_segment_by_other_name_is_eoverlap),
        T(test_map_same_segment_through_symlink_is_eoverlap),
        T(test_map_name_too_long_is_ename_too_long),
        T(test_map_overlapping_memory_is_evm_overlap),
        T(test_unmap_of_unmapped_region_is_eregion),
        T(test_unmap_with_uncommitted_changes_is_euncommit),
        T(test_remap_after_unmap_shows_committed_bytes),
        T(test_remap_applies_queued_no_flush_commits),
        T(test_map_far_beyond_4_gib),
        T(test_map_private_behaves_like_map),
        T(test_map_private_from_initialize_flags),
        T(test_map_private_is_a_lazy_file_mapping),
        T(test_set_options_map_private_applies_to_later_maps),
    };
    return cmocka_run_group_tests_name("librvm map", tests, NULL, NULL);
}
