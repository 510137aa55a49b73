/* child.h — what integration tests share about child processes: starting a program with an
 * extra environment and a log file, waiting for it with a bound, running caseflowctl. */
#ifndef CF_TEST_CHILD_H
#define CF_TEST_CHILD_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

/* Starts path with argv and the environment without CASEFLOW_* plus extra ("NAME=value",
 * NULL-terminated, may be NULL); stdin from /dev/null, stdout and stderr appended to out_path.
 * The environment is built before fork. Asserts (cmocka) that the file opens and fork works. */
pid_t cf_test_spawn(const char *path, char *const *argv, const char *const *extra,
                    const char *out_path);

/* Most settings cf_test_spawn_service passes. */
#define CF_TEST_SERVICE_ENV_MAX 24

/* Starts the service at path (no arguments) with cf_test_spawn: the environment without
 * CASEFLOW_* plus env[0..ne) (ne at most CF_TEST_SERVICE_ENV_MAX) and, unless the environment
 * sets them, ASAN_OPTIONS=exitcode=86 and UBSAN_OPTIONS=exitcode=86:print_stacktrace=1, so that
 * a sanitizer report shows in the exit status; output appended to log_path. */

pid_t cf_test_spawn_service(const char *path, char (*env)[160], size_t ne, const char *log_path);

/* Waits for pid up to timeout_ms; returns the exit status (128 + signal), or -1 after killing
 * a child that overstayed (or when waitpid fails other than by EINTR). */
int cf_test_wait_child(pid_t pid, int timeout_ms);

/* Stops the child *pid with SIGTERM (asserting that the signal is sent), waits for it up to
 * timeout_ms (cf_test_wait_child) and sets *pid to -1 so a teardown leaves it alone; returns its
 * exit status, or -1 if it had to be killed. */
int cf_test_stop_child(pid_t *pid, int timeout_ms);

/* For a teardown: SIGKILLs and reaps pid if it is > 0 (a child a failed test left running). */
void cf_test_kill_child(pid_t pid);

/* Reads a whole file (NUL-terminated, the caller frees); asserts that it opens. */
char *cf_test_slurp(const char *path);

/* Runs the caseflowctl at ctl_path with args (NULL-terminated, at most 14), its output to a
 * fresh temporary file made from tmp_template (e.g. "/tmp/test-x-ctl-XXXXXX", removed after);
 * fails the test (cmocka) unless it exits 0 within timeout_ms. Returns its output (stdout and
 * stderr; the caller frees). */
char *cf_test_ctl(const char *ctl_path, const char *const *args, const char *tmp_template,
                  int timeout_ms);

/* cf_test_ctl for "caseflowctl CMD [ARG] FILE" with doc written to a fresh temporary FILE
 * (made from tmp_template, removed after); arg may be NULL. The output is discarded. */
void cf_test_ctl_json(const char *ctl_path, const char *cmd, const char *arg, const json_t *doc,
                      const char *tmp_template, int timeout_ms);

#endif
