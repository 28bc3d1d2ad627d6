/*
 * The memory of commit images (src/log_img.c): a large image freed on one
 * thread comes back to a commit on another (the log writer frees what
 * committers made), each block holds the record it is given, and the
 * shared cache keeps no more than its bound.
 */
#include "test_util.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rvm_internal.h"

/* Fill the whole record: under ASan a block shorter than asked fails. */
static struct log_img *alloc_filled(size_t len, int byte)
{
    struct log_img *img = img_alloc(len, 2);
    assert_non_null(img);
    memset(img->buf, byte, len);
    img->segs[0] = img->segs[1] = NULL;
    return img;
}

static void *free_on_thread(void *arg)
{
    img_free(arg);
    return NULL;
}

static void test_large_block_comes_back_across_threads(void **state)
{
    (void)state;
    img_cache_free();
    struct log_img *a = alloc_filled((1u << 20) + 200, 1); /* a 1 MiB write */
    void *buf = a->buf;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, free_on_thread, a), 0);
    pthread_join(t, NULL);
    size_t kept = img_cache_bytes();
    assert_true(kept >= (1u << 20) + 200 && kept <= (5u << 20) / 4 + 4096);
    /* A record of a little more still fits the same block, and takes it. */
    struct log_img *b = alloc_filled((1u << 20) + 4000, 2);
    assert_ptr_equal(b->buf, buf);
    assert_int_equal(img_cache_bytes(), 0);
    img_free(b);
    assert_int_equal(img_cache_bytes(), kept);
}

static void test_every_size_holds_its_record(void **state)
{
    (void)state;
    /* Class edges from 8 KiB (the small classes' end) to 32 MiB, and
     * random sizes between: each block must hold the whole record. */
    size_t sizes[64];
    size_t n = 0;
    for (unsigned e = 13; e < 25; e++)
        for (unsigned q = 1; q <= 4 && n < 48; q++) {
            size_t edge = ((size_t)1 << e) + q * ((size_t)1 << (e - 2)) - 512;
            sizes[n++] = edge;
        }
    srand(7);
    while (n < 64)
        sizes[n++] = 8192 + (size_t)rand() % (4u << 20);
    for (size_t i = 0; i < n; i++) {
        struct log_img *img = alloc_filled(sizes[i], (int)i);
        assert_int_equal(img->buf[sizes[i] - 1], (unsigned char)i);
        img_free(img);
        /* Again, now from the cache. */
        img = alloc_filled(sizes[i], (int)i + 1);
        img_free(img);
    }
    /* Past 32 MiB: not cached, still whole. */
    struct log_img *big = alloc_filled((33u << 20) + 1, 3);
    img_free(big);
}

static void test_cache_is_bounded(void **state)
{
    (void)state;
    /* 80 blocks of 1.25 MiB = 100 MiB freed at once: the cache keeps 38
     * of them (47.5 MiB of its 48), and gives them back before making
     * new ones.  Blocks of other classes already there (a writer's
     * coalesced batches) make room for them. */
    enum { N = 80 };
    const size_t cap = (5u << 20) / 4;
    img_cache_free(); /* whatever the tests before left */
    struct log_img *img[N];
    for (int i = 0; i < N; i++)
        img[i] = alloc_filled((1u << 20) + 100, 4);
    assert_int_equal(img_cache_bytes(), 0);
    img_free(alloc_filled((20u << 20) - 4096, 6)); /* a 20 MiB block */
    img_free(alloc_filled((6u << 20) - 4096, 7));  /* a 6 MiB block */
    assert_int_equal(img_cache_bytes(), 26u << 20);
    for (int i = 0; i < N; i++)
        img_free(img[i]);
    assert_int_equal(img_cache_bytes(), 38 * cap);
    for (int i = 0; i < 39; i++) /* 38 from the cache, one new */
        img[i] = alloc_filled((1u << 20) + 100, 5);
    assert_int_equal(img_cache_bytes(), 0);
    for (int i = 0; i < 38; i++)
        img_free(img[i]);
    assert_int_equal(img_cache_bytes(), 38 * cap);

    /* A block of another class fits beside them; one more of theirs
     * would not fit even with that one gone, so that one stays. */
    img_free(alloc_filled(9000, 8)); /* a 10 KiB block */
    assert_int_equal(img_cache_bytes(), 38 * cap + (10u << 10));
    img_free(img[38]);
    assert_int_equal(img_cache_bytes(), 38 * cap + (10u << 10));
    img_cache_free();
    assert_int_equal(img_cache_bytes(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_block_comes_back_across_threads),
        cmocka_unit_test(test_every_size_holds_its_record),
        cmocka_unit_test(test_cache_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
