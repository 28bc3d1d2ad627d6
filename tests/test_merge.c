/*
 * Newest-wins merging (src/merge.c), which inter-transaction coalescing
 * and truncation rely on: each byte once, with the value of the newest
 * range that covers it, pieces sorted by (segment, offset).  Checked
 * against a byte-by-byte model on fixed and random batches.
 */
#include "test_util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "merge.h"

#define SEGS 3
#define SPAN 700

struct model {
    unsigned char val[SEGS][SPAN];
    bool set[SEGS][SPAN];
};

/* Ranges were added newest first: replay them oldest first. */
static void model_build(struct model *md, const struct merge *m)
{
    memset(md, 0, sizeof *md);
    for (size_t k = m->nin; k-- > 0;) {
        const struct merge_piece *p = &m->in[k];
        for (uint64_t b = 0; b < p->len; b++) {
            md->val[p->seg][p->off + b] = p->data[b];
            md->set[p->seg][p->off + b] = true;
        }
    }
}

/* The pieces cover exactly the model's bytes, once each, in order. */
static void check_against_model(const struct merge *m, const struct model *md)
{
    static bool seen[SEGS][SPAN];
    memset(seen, 0, sizeof seen);
    uint64_t bytes = 0;
    for (size_t i = 0; i < m->np; i++) {
        const struct merge_piece *p = &m->p[i];
        if (i) {
            const struct merge_piece *q = &m->p[i - 1];
            assert_true(q->seg < p->seg || (q->seg == p->seg && q->off + q->len <= p->off));
        }
        for (uint64_t b = 0; b < p->len; b++) {
            assert_false(seen[p->seg][p->off + b]);
            seen[p->seg][p->off + b] = true;
            assert_int_equal(p->data[b], md->val[p->seg][p->off + b]);
        }
        bytes += p->len;
    }
    for (int s = 0; s < SEGS; s++)
        for (int b = 0; b < SPAN; b++)
            assert_int_equal(seen[s][b], md->set[s][b]);
    assert_int_equal(bytes, m->bytes);
}

static void test_record_rewritten_many_times_keeps_newest_value(void **state)
{
    (void)state;
    unsigned char v[5][16];
    struct merge m;
    merge_init(&m);
    for (int k = 0; k < 5; k++) {
        memset(v[k], 'a' + k, sizeof v[k]);
        assert_int_equal(merge_add(&m, 1, 32, sizeof v[k], v[k]), 0);
    }
    assert_int_equal(merge_sort(&m), 0);
    assert_int_equal(m.np, 1);
    assert_int_equal(m.p[0].off, 32);
    assert_int_equal(m.p[0].len, 16);
    assert_ptr_equal(m.p[0].data, v[0]);
    merge_free(&m);
}

static void test_older_longer_range_shows_past_the_newer_one(void **state)
{
    (void)state;
    unsigned char newer[4] = "NNNN", older[8] = "oooooooo";
    struct merge m;
    merge_init(&m);
    assert_int_equal(merge_add(&m, 0, 100, 4, newer), 0);
    assert_int_equal(merge_add(&m, 0, 100, 8, older), 0);
    assert_int_equal(merge_sort(&m), 0);
    assert_int_equal(m.np, 2);
    assert_int_equal(m.p[0].off, 100);
    assert_int_equal(m.p[0].len, 4);
    assert_ptr_equal(m.p[0].data, newer);
    assert_int_equal(m.p[1].off, 104);
    assert_int_equal(m.p[1].len, 4);
    assert_ptr_equal(m.p[1].data, older + 4);
    merge_free(&m);
}

static unsigned char data[400][64];

/* A random batch into m: some large enough for the radix sort, some small. */
static void random_batch(struct merge *m, int iter)
{
    int n = rand() % (iter % 3 == 0 ? 400 : 40);
    int kind = rand() % 4, nseg = 1 + rand() % SEGS;
    for (int k = 0; k < n; k++) {
        int seg = rand() % nseg;
        int len = 1 + rand() % (kind == 0 ? 8 : 60);
        int off = rand() % (SPAN - 64);
        if (kind == 1 && k && rand() % 2) { /* rewrite an earlier start */
            seg = (int)m->in[rand() % k].seg;
            off = (int)m->in[rand() % k].off;
            if (off + len > SPAN)
                len = SPAN - off;
        }
        if (kind == 2) { /* aligned records, adjacent or equal */
            off = (rand() % ((SPAN - 64) / 16)) * 16;
            len = 16;
        }
        for (int b = 0; b < len; b++)
            data[k][b] = (unsigned char)rand();
        assert_int_equal(merge_add(m, (uint64_t)seg, (uint64_t)off, (uint64_t)len, data[k]), 0);
    }
}

static void test_random_batches_match_a_byte_model(void **state)
{
    (void)state;
    static struct model md;
    srand(7);
    for (int iter = 0; iter < 3000; iter++) {
        struct merge m;
        merge_init(&m);
        random_batch(&m, iter);
        model_build(&md, &m);
        assert_int_equal(merge_sort(&m), 0);
        check_against_model(&m, &md);
        merge_free(&m);
    }
}

/* The log's leader keeps one merge for all its write-outs: nothing of a
 * batch (pieces, byte count, key width, hash slots) may leak into the
 * next, whatever their sizes. */
static void test_reset_merge_serves_batch_after_batch(void **state)
{
    (void)state;
    static struct model md;
    struct merge m;
    merge_init(&m);
    srand(11);
    for (int iter = 0; iter < 3000; iter++) {
        merge_reset(&m);
        assert_int_equal(m.nin, 0);
        assert_int_equal(m.np, 0);
        assert_int_equal(m.bytes, 0);
        random_batch(&m, iter);
        model_build(&md, &m);
        assert_int_equal(merge_sort(&m), 0);
        check_against_model(&m, &md);
    }
    /* A huge batch's memory is not kept for the next one. */
    merge_reset(&m);
    for (size_t k = 0; k <= MERGE_KEEP; k++)
        assert_int_equal(merge_add(&m, 0, 8 * (uint64_t)k, 8, data[0]), 0);
    assert_int_equal(merge_sort(&m), 0);
    assert_int_equal(m.np, MERGE_KEEP + 1);
    merge_reset(&m);
    assert_null(m.in);
    assert_null(m.keys);
    assert_int_equal(m.incap, 0);
    merge_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_rewritten_many_times_keeps_newest_value),
        cmocka_unit_test(test_older_longer_range_shows_past_the_newer_one),
        cmocka_unit_test(test_random_batches_match_a_byte_model),
        cmocka_unit_test(test_reset_merge_serves_batch_after_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
