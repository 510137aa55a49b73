/* deploy/caseflow.env.example documents every library setting: it must hold exactly what
 * the library's config tables say (names, defaults, bounds, help). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "kafka.h"
#include "redis.h"

static void test_example_file_matches_tables(void **state)
{
    (void)state;
    const struct cf_config_entry table[] = {CF_CONFIG_COMMON_ENTRIES, CF_CONFIG_KAFKA_ENTRIES,
                                            CF_CONFIG_REDIS_ENTRIES};
    char *want = NULL, have[64 * 1024];
    size_t want_len = 0;
    FILE *f = open_memstream(&want, &want_len);
    assert_non_null(f);
    cf_config_write_example(table, sizeof(table) / sizeof(table[0]), f);
    assert_int_equal(fclose(f), 0);

    FILE *file = fopen(CF_TESTS_DIR "/../deploy/caseflow.env.example", "r");
    assert_non_null(file);
    size_t n = fread(have, 1, sizeof(have) - 1, file);
    fclose(file);
    have[n] = '\0';
    if (strstr(have, want) == NULL)
        fail_msg("deploy/caseflow.env.example is out of date; it should contain:\n%s", want);
    free(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_file_matches_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
