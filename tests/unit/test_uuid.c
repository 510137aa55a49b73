/* test_uuid.c — random and name-based UUIDs: form, version, variant, determinism. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "uuid.h"

static void random_uuids_are_version_4_and_differ(void **state)
{
    (void)state;
    char a[CF_UUID_LEN + 1], b[CF_UUID_LEN + 1];
    assert_int_equal(cf_uuid_v4(a), CF_OK);
    assert_int_equal(cf_uuid_v4(b), CF_OK);
    assert_true(cf_uuid_valid(a));
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
    assert_string_not_equal(a, b);
}

static void a_name_always_gives_the_same_version_5_uuid(void **state)
{
    (void)state;
    char a[CF_UUID_LEN + 1], b[CF_UUID_LEN + 1], c[CF_UUID_LEN + 1];
    cf_uuid_from_name("expired/1", 9, a);
    cf_uuid_from_name("expired/1", 9, b);
    cf_uuid_from_name("expired/2", 9, c);
    assert_true(cf_uuid_valid(a));
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(a[14], '5');
    assert_non_null(strchr("89ab", a[19]));
    /* SHA1("abc") = a9993e36 4706 816a ba3e 2571 7850c26c9cd0d89d: the version nibble (byte 6)
     * and the variant bits (byte 8) are the only changes. */
    cf_uuid_from_name("abc", 3, a);
    assert_string_equal(a, "a9993e36-4706-516a-ba3e-25717850c26c");
}

static void validity_is_the_canonical_form_only(void **state)
{
    (void)state;
    assert_true(cf_uuid_valid("123e4567-e89b-42d3-a456-426614174000"));
    assert_true(cf_uuid_valid("123E4567-E89B-42D3-A456-426614174000"));
    assert_false(cf_uuid_valid(NULL));
    assert_false(cf_uuid_valid(""));
    assert_false(cf_uuid_valid("123e4567e89b42d3a456426614174000"));
    assert_false(cf_uuid_valid("123e4567-e89b-42d3-a456-42661417400g"));
    assert_false(cf_uuid_valid("123e4567-e89b-42d3-a456-4266141740000"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_uuids_are_version_4_and_differ),
        cmocka_unit_test(a_name_always_gives_the_same_version_5_uuid),
        cmocka_unit_test(validity_is_the_canonical_form_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
