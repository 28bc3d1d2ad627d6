/*
 * CRC32C (src/crc32c.c), the checksum of every log record: the
 * three-lane path for long buffers must give the same value as the plain
 * bit-by-bit definition at every length and alignment around its lane
 * boundaries, and when a buffer is checksummed in pieces.
 */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

/* The definition, one bit at a time (reflected Castagnoli). */
static uint32_t crc_bitwise(uint32_t crc, const unsigned char *p, size_t len)
{
    crc = ~crc;
    while (len--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
    }
    return ~crc;
}

static unsigned char *random_bytes(size_t len, unsigned seed)
{
    unsigned char *b = malloc(len);
    assert_non_null(b);
    uint64_t x = 0x9e3779b97f4a7c15ull ^ seed;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (unsigned char)x;
    }
    return b;
}

static void test_known_value(void **state)
{
    (void)state;
    assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c(0, "", 0), 0);
}

static void test_every_length_around_the_lanes_matches_the_definition(void **state)
{
    (void)state;
    size_t max = 3 * 3072 + 64;
    unsigned char *b = random_bytes(max + 8, 1);
    for (size_t off = 0; off < 8; off += 3) {
        for (size_t len = 0; len <= max; len++) {
            /* Every length near the multiples of 3 KiB, a sample elsewhere. */
            size_t r = len % 3072;
            if (len > 64 && r > 16 && r < 3072 - 16 && len % 97)
                continue;
            uint32_t want = crc_bitwise(0, b + off, len);
            if (crc32c(0, b + off, len) != want)
                fail_msg("length %zu at offset %zu differs", len, off);
        }
    }
    free(b);
}

static void test_long_buffer_in_pieces_matches_the_definition(void **state)
{
    (void)state;
    size_t len = (1u << 20) + 777;
    unsigned char *b = random_bytes(len, 2);
    uint32_t want = crc_bitwise(0, b, len);
    assert_int_equal(crc32c(0, b, len), want);
    /* Pieces of every size class, continued from the previous value. */
    static const size_t cuts[] = {1, 7, 3071, 3072, 3073, 9216, 100000, 5};
    uint32_t c = 0;
    size_t done = 0;
    for (size_t i = 0; done < len; i = (i + 1) % (sizeof cuts / sizeof cuts[0])) {
        size_t n = cuts[i] < len - done ? cuts[i] : len - done;
        c = crc32c(c, b + done, n);
        done += n;
    }
    assert_int_equal(c, want);
    /* One flipped bit anywhere changes the value. */
    b[len / 2] ^= 0x10;
    assert_int_not_equal(crc32c(0, b, len), want);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_value),
        cmocka_unit_test(test_every_length_around_the_lanes_matches_the_definition),
        cmocka_unit_test(test_long_buffer_in_pieces_matches_the_definition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
