/* deploy/caseflow.env.example documents every setting of the library and of every service: it
 * must hold exactly what their config tables say (names, defaults, bounds, help). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "assignment.h"
#include "config.h"
#include "http.h"
#include "intake.h"
#include "kafka.h"
#include "notifier.h"
#include "redis.h"
#include "scheduler.h"
#include "validation.h"

/* The example file as text (a static buffer). */
static const char *example_file(void)
{
    static char have[64 * 1024];
    FILE *file = fopen(CF_TESTS_DIR "/../deploy/caseflow.env.example", "r");
    assert_non_null(file);
    size_t n = fread(have, 1, sizeof(have) - 1, file);
    fclose(file);
    have[n] = '\0';
    return have;
}

/* Fails unless the example file holds table's example text, naming what. */
static void assert_documented(const char *what, const struct cf_config_entry *table, size_t n)
{
    char *want = NULL;
    size_t want_len = 0;
    FILE *f = open_memstream(&want, &want_len);
    assert_non_null(f);
    cf_config_write_example(table, n, f);
    assert_int_equal(fclose(f), 0);
    if (strstr(example_file(), want) == NULL)
        fail_msg("deploy/caseflow.env.example is out of date (%s); it should contain:\n%s", what,
                 want);
    free(want);
}

static void test_example_file_matches_tables(void **state)
{
    (void)state;
    const struct cf_config_entry library[] = {CF_CONFIG_COMMON_ENTRIES, CF_CONFIG_KAFKA_ENTRIES,
                                              CF_CONFIG_REDIS_ENTRIES};
    const struct cf_config_entry intake[] = {INTAKE_CONFIG_ENTRIES, INTAKE_HTTP_CONFIG_ENTRIES};
    const struct cf_config_entry validation[] = {
        VALIDATION_CONFIG_ENTRIES, CF_HTTP_OPS_CONFIG_ENTRIES("CASEFLOW_VALIDATION", "18082")};
    assert_documented("library", library, sizeof(library) / sizeof(library[0]));
    assert_documented("intake", intake, sizeof(intake) / sizeof(intake[0]));
    const struct cf_config_entry assignment[] = {
        ASSIGNMENT_CONFIG_ENTRIES, CF_HTTP_OPS_CONFIG_ENTRIES("CASEFLOW_ASSIGNMENT", "18083")};
    const struct cf_config_entry scheduler[] = {
        SCHEDULER_CONFIG_ENTRIES, CF_HTTP_OPS_CONFIG_ENTRIES("CASEFLOW_SCHEDULER", "18084")};
    const struct cf_config_entry notifier[] = {
        NOTIFIER_CONFIG_ENTRIES, CF_HTTP_OPS_CONFIG_ENTRIES("CASEFLOW_NOTIFIER", "18085")};
    assert_documented("validation", validation, sizeof(validation) / sizeof(validation[0]));
    assert_documented("assignment", assignment, sizeof(assignment) / sizeof(assignment[0]));
    assert_documented("scheduler", scheduler, sizeof(scheduler) / sizeof(scheduler[0]));
    assert_documented("notifier", notifier, sizeof(notifier) / sizeof(notifier[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_file_matches_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
