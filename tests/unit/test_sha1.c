/* test_sha1.c (unit) — the SHA1 digest that names Redis scripts: the FIPS 180 examples, lengths
 * on both sides of the padding boundaries, binary input, and the size of what it writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sha1.h"

static void check_sha(const void *data, size_t len, const char *expected)
{
    char out[CF_SHA1_HEX_LEN + 1];
    cf_sha1_hex(data, len, out);
    assert_string_equal(out, expected);
}

static void check_sha_str(const char *s, const char *expected)
{
    check_sha(s, strlen(s), expected);
}

/* A byte pattern for the boundary lengths below (no NULs; binary input is tested separately). */
static void fill(char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v = (unsigned)((i * 7 + 3) % 256);
        buf[i] = (char)(v != 0 ? v : 1);
    }
    buf[n] = '\0';
}

static void test_fips_vectors(void **state)
{
    (void)state;
    /* FIPS 180 examples (and the empty message). */
    check_sha_str("abc", "a9993e364706816aba3e25717850c26c9cd0d89d");
    check_sha_str("", "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    check_sha(NULL, 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    /* 448 bits: exactly 56 bytes, so the padding needs a second block. */
    check_sha_str("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                  "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    /* 896 bits: one whole block, then a tail that again needs two. */
    check_sha_str("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
                  "klmnopqrlmnopqrsmnopqrstnopqrstu",
                  "a49b2446a02c645bf419f995b67091253a04a259");
}

static void test_million_a(void **state)
{
    (void)state;
    char *million = malloc(1000000);
    assert_non_null(million);
    memset(million, 'a', 1000000);
    check_sha(million, 1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(million);
}

static void test_padding_boundaries(void **state)
{
    (void)state;
    /* 55 bytes leave room for the 0x80 marker and the 8-byte length in one final block, 56 do
     * not; 64 fill a block exactly; 119/120 and 128 are the same edges one block later. */
    static const struct {
        size_t n;
        const char *sha;
    } lens[] = {
        {1, "9842926af7ca0a8cca12604f945414f07b01e13d"},
        {55, "ddf57317ef34bfee3b6df83d359098930eb278bc"},
        {56, "a0d492bb0fc889d0eca3bc137066ab6f4f74f369"},
        {57, "11a02dcf95859677a62e75024067c22b165d890f"},
        {63, "c55856749bef509bdfe6bfebfc7bf4e793e82132"},
        {64, "bede92be29c3874e1b54ddc77988d606fc857a8e"},
        {65, "b05a80522b053d6dc7e0a517d0e70212c7dad11f"},
        {119, "504e27376a6e0f0dba8295b85cb25dc4dfa17d23"},
        {120, "82134b02fb3f702491be9bed581eeab59334acb2"},
        {127, "34d5e582029e9b9b85b2febe31da3db7cdabaaea"},
        {128, "a09133e6730ffe899efb70204cb5646cd5dc24ee"},
        {129, "808aea332ce367541d37adae7f94e59c5c1a934e"},
    };
    char buf[130];
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        fill(buf, lens[i].n);
        check_sha(buf, lens[i].n, lens[i].sha);
    }
}

static void test_binary_input(void **state)
{
    (void)state;
    /* The length is what counts, not a terminating NUL. */
    static const unsigned char zeros[64] = {0};
    check_sha(zeros, 1, "5ba93c9db0cff93f52b521d7420e43f6eda2784f");
    check_sha(zeros, 64, "c8d7d0ef0eedfa82d2ea1aa592845b9a6d4b02b7");
    check_sha("abcdef", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
}

static void test_writes_41_bytes(void **state)
{
    (void)state;
    char out[CF_SHA1_HEX_LEN + 2];
    memset(out, 'X', sizeof(out));
    cf_sha1_hex("abc", 3, out);
    assert_int_equal(out[CF_SHA1_HEX_LEN], '\0');
    assert_int_equal(out[CF_SHA1_HEX_LEN + 1], 'X');
    for (size_t i = 0; i < CF_SHA1_HEX_LEN; i++)
        assert_non_null(strchr("0123456789abcdef", out[i]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fips_vectors),       cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_padding_boundaries), cmocka_unit_test(test_binary_input),
        cmocka_unit_test(test_writes_41_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
