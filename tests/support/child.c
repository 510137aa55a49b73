/* child.c — child processes for integration tests (see child.h). */
#include "child.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_env.h"

extern char **environ;

pid_t cf_test_spawn(const char *path, char *const *argv, const char *const *extra,
                    const char *out_path)
{
    const char *envp[640];
    size_t n = 0;
    for (char **e = environ; *e != NULL && n < 600; e++)
        if (strncmp(*e, "CASEFLOW_", 9) != 0)
            envp[n++] = *e;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 638; i++)
        envp[n++] = extra[i];
    envp[n] = NULL;
    int fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    assert_true(fd >= 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        (void)dup2(devnull, 0);
        (void)dup2(fd, 1);
        (void)dup2(fd, 2);
        execve(path, argv, (char *const *)envp);
        _exit(127);
    }
    close(fd);
    return pid;
}

pid_t cf_test_spawn_service(const char *path, char (*env)[160], size_t ne, const char *log_path)
{
    const char *extra[CF_TEST_SERVICE_ENV_MAX + 3];
    size_t n = 0;
    for (size_t i = 0; i < ne && n < CF_TEST_SERVICE_ENV_MAX; i++)
        extra[n++] = env[i];
    if (getenv("ASAN_OPTIONS") == NULL)
        extra[n++] = "ASAN_OPTIONS=exitcode=86";
    if (getenv("UBSAN_OPTIONS") == NULL)
        extra[n++] = "UBSAN_OPTIONS=exitcode=86:print_stacktrace=1";
    extra[n] = NULL;
    char *argv[] = {(char *)path, NULL};
    return cf_test_spawn(path, argv, extra, log_path);
}

int cf_test_wait_child(pid_t pid, int timeout_ms)
{
    int64_t deadline = cf_clock_mono_ms() + timeout_ms;
    int wstatus = 0;
    for (;;) {
        pid_t w = waitpid(pid, &wstatus, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            return -1;
        if (cf_clock_mono_ms() > deadline) {
            (void)kill(pid, SIGKILL);
            (void)waitpid(pid, &wstatus, 0);
            return -1;
        }
        cf_clock_sleep_ms(50);
    }
    return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}

int cf_test_stop_child(pid_t *pid, int timeout_ms)
{
    assert_int_equal(kill(*pid, SIGTERM), 0);
    int status = cf_test_wait_child(*pid, timeout_ms);
    *pid = -1;
    return status;
}

void cf_test_kill_child(pid_t pid)
{
    if (pid > 0) {
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, NULL, 0);
    }
}

char *cf_test_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[8192];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        (void)fwrite(chunk, 1, got, m);
    fclose(f);
    fclose(m);
    return buf;
}

char *cf_test_ctl(const char *ctl_path, const char *const *args, const char *tmp_template,
                  int timeout_ms)
{
    char out_path[128];
    (void)snprintf(out_path, sizeof(out_path), "%s", tmp_template);
    int fd = mkstemp(out_path);
    assert_true(fd >= 0);
    close(fd);
    char *argv[16] = {(char *)ctl_path};
    size_t n = 1;
    for (size_t i = 0; args[i] != NULL && n < 15; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    int status = cf_test_wait_child(cf_test_spawn(ctl_path, argv, NULL, out_path), timeout_ms);
    char *out = cf_test_slurp(out_path);
    unlink(out_path);
    if (status != 0)
        fail_msg("caseflowctl %s: status %d\n%s", args[0], status, out);
    return out;
}

void cf_test_ctl_json(const char *ctl_path, const char *cmd, const char *arg, const json_t *doc,
                      const char *tmp_template, int timeout_ms)
{
    char path[128];
    (void)snprintf(path, sizeof(path), "%s", tmp_template);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(json_dump_file(doc, path, 0), 0);
    const char *args[] = {cmd, arg != NULL ? arg : path, arg != NULL ? path : NULL, NULL};
    free(cf_test_ctl(ctl_path, args, tmp_template, timeout_ms));
    unlink(path);
}
