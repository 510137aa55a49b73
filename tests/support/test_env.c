/* test_env.c — what integration tests share (see test_env.h). */
#include "test_env.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int64_t cf_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cf_test_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void cf_test_run_id(char *buf, size_t len)
{
    (void)snprintf(buf, len, "%ld-%ld", (long)getpid(), (long)time(NULL));
}

struct cf_config *cf_test_kafka_config(const struct cf_config_entry *table, size_t n)
{
    char err[256] = "";
    char *envp[64] = {NULL};
    size_t k = 0;
    struct cf_config *config = NULL;
    for (char **e = environ; *e != NULL && k < 63; e++)
        if (strncmp(*e, "KAFKA_", 6) == 0)
            envp[k++] = *e;
    if (cf_config_load(table, n, envp, &config, err, sizeof(err)) != CF_OK)
        fprintf(stderr, "config: %s\n", err);
    return config;
}

const char *cf_test_registry_url(void)
{
    const char *url = getenv("CASEFLOW_REGISTRY_URL");
    return url != NULL ? url : "http://127.0.0.1:18081/apis/ccompat/v7";
}
