/*
 * Log reads for walks (src/log_ahead.c): the bytes a walk gets are the
 * file's, and buffers lent by an ahead_keep serve the next walk as well
 * (truncation walks often; fresh buffers cost a page clearing per 4 KiB
 * read).  A walk in kept buffers must not show a byte of the walk before.
 */
#include "test_util.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "log_ahead.h"
#include "log_impl.h"
#include "rvm_internal.h"

#define FILE_BYTES MIB(6)

static rvm_io_file *open_filled(struct tctx *c, const char *name, unsigned seed)
{
    unsigned char *buf = malloc(FILE_BYTES);
    assert_non_null(buf);
    t_fill(buf, FILE_BYTES, seed);
    const char *path = t_path(c, name);
    t_write_file(path, 0, buf, FILE_BYTES);
    free(buf);
    rvm_io_file *f;
    assert_int_equal(rvm_io_posix()->open(path, O_RDWR, 0, &f), 0);
    return f;
}

/* The file's bytes [off, off + len), as t_fill made them with seed. */
static void check_bytes(const unsigned char *got, uint64_t off, size_t len, unsigned seed)
{
    unsigned char *want = malloc(off + len);
    assert_non_null(want);
    t_fill(want, off + len, seed);
    assert_memory_equal(got, want + off, len);
    free(want);
}

/* One walk: a read now, one ahead, taken; every byte checked. */
static void walk(struct log_ahead *a, uint64_t off, size_t want, unsigned seed)
{
    ssize_t n = ahead_get(a, off, want);
    assert_int_equal(n, (ssize_t)want);
    check_bytes(a->b[a->cur].data, off, want, seed);
    ahead_start(a, off + want, want);
    n = ahead_get(a, off + want, want);
    assert_int_equal(n, (ssize_t)want);
    check_bytes(a->b[a->cur].data, off + want, want, seed);
}

static void test_kept_buffers_serve_the_next_walk(void **state)
{
    struct tctx *c = *state;
    rvm_io_file *f1 = open_filled(c, "one", 1), *f2 = open_filled(c, "two", 2);
    const rvm_io_methods *io = rvm_io_posix();
    struct ahead_keep k = {0};
    struct log_ahead a;

    ahead_init(&a, io, f1);
    ahead_reuse(&a, &k);
    walk(&a, 0, MIB(2), 1);
    ahead_done(&a);
    assert_non_null(k.mem[0]);
    assert_non_null(k.mem[1]);
    unsigned char *m0 = k.mem[0], *m1 = k.mem[1];

    /* Another file, shorter reads at other offsets: the same memory, and
     * only this file's bytes in it. */
    ahead_init(&a, io, f2);
    ahead_reuse(&a, &k);
    walk(&a, 4097, MIB(1), 2);
    assert_true((a.b[0].mem == m0 && a.b[1].mem == m1) ||
                (a.b[0].mem == m1 && a.b[1].mem == m0));
    /* Past the end: a short read in a kept buffer shows no older bytes. */
    ssize_t n = ahead_get(&a, FILE_BYTES - 100, MIB(1));
    assert_int_equal(n, 100);
    check_bytes(a.b[a.cur].data, FILE_BYTES - 100, 100, 2);
    ahead_done(&a);
    assert_true((k.mem[0] == m0 && k.mem[1] == m1) || (k.mem[0] == m1 && k.mem[1] == m0));
    ahead_keep_free(&k);
    assert_null(k.mem[0]);

    /* Without a keep, a walk frees its own buffers and touches no k. */
    ahead_init(&a, io, f1);
    walk(&a, 0, MIB(1), 1);
    ahead_done(&a);
    assert_null(k.mem[0]);
    io->close(f1);
    io->close(f2);
}

/* Truncation lends the log's buffers to its walk and gets them back. */
static void test_truncation_keeps_its_read_buffers(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(8), 0);
    rvm_region_t *r = t_map(c, "seg", 0, MIB(1), 0);
    unsigned char *buf = malloc(KIB(64));
    assert_non_null(buf);
    void *kept = NULL;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 16; i++) {
            t_fill(buf, KIB(64), (unsigned)(round * 16 + i));
            t_commit_bytes(r->vmaddr + (size_t)i * KIB(64), buf, KIB(64), no_flush);
        }
        assert_rvm_ok(rvm_flush());
        assert_rvm_ok(rvm_truncate());
        /* A walk of one read fills one of the two buffers. */
        struct ahead_keep *k = &rvm.log->trunc_bufs;
        void *now = k->mem[0] ? k->mem[0] : k->mem[1];
        assert_non_null(now);
        if (round > 0)
            assert_true(k->mem[0] == kept || k->mem[1] == kept);
        kept = now;
        for (int i = 0; i < 16; i++) {
            t_read_file(t_path(c, "seg"), (size_t)i * KIB(64), buf, KIB(64));
            assert_true(t_check_fill(buf, KIB(64), (unsigned)(round * 16 + i)));
        }
    }
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kept_buffers_serve_the_next_walk, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_truncation_keeps_its_read_buffers, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
