/* redis.h — the Redis module of libcaseflow: one connection, owned replies, TTL on every write.
 *
 * Services never see hiredis: replies come back as struct cf_redis_value, errors as a status
 * plus the caller's errbuf. What the module guarantees, and why:
 *
 *   - Every key written through it has a TTL (DESIGN.md §5). Plain writes take ttl_seconds and
 *     refuse ttl_seconds <= 0 with CF_EINVAL; there is no "SET without EX" and no raw command
 *     call. Scripts cannot be checked, so every shipped script that writes a key must give it a
 *     TTL itself (SET ... EX, or EXPIRE right after the write), with the TTL passed in by the
 *     caller as one of the script's arguments.
 *   - Keys are built from ids (case id, event id, specialist id, slot time), never from personal
 *     data: a key is 1 to CF_REDIS_MAX_KEY bytes of [A-Za-z0-9._:/-], so an email ('@'), a phone
 *     number ('+') or a full name (space, non-ASCII) cannot be a key; anything else is CF_EINVAL.
 *     Because of that rule a key may also be logged with CF_LOG_ID. The module prepends the
 *     configured prefix (CASEFLOW_REDIS_KEY_PREFIX, "caseflow:") to every key it sends, script
 *     keys included; callers pass keys without it.
 *   - Lost connections heal themselves: when Redis restarts or a command times out, the module
 *     drops the connection, reconnects with exponential backoff and jitter (50 ms doubling to
 *     1 s, each delay a random point between half and all of it) and sends the command again,
 *     as long as it is safe to do so and the retry budget (CASEFLOW_REDIS_RETRY_BUDGET_MS)
 *     lasts. A command is resent only when it cannot have run
 *     (the connection failed before it was sent, or Redis said LOADING/BUSY/TRYAGAIN/
 *     MASTERDOWN) or when running it twice is harmless: GET, DEL, SET with a TTL (same value),
 *     SET NX (see cf_redis_set_nx) and scripts created with CF_REDIS_SCRIPT_IDEMPOTENT. When
 *     Redis stays away the call returns CF_EIO or CF_ETIMEOUT after about the budget plus one
 *     connect and one command timeout, so a Kafka transactional loop can abort and retry its
 *     batch. That retry is correct only because every Redis side effect is idempotent and keyed
 *     by event id (DESIGN.md §5): after a failed call the command may or may not have run.
 *   - Scripts are sent with EVALSHA. A script is loaded (SCRIPT LOAD) once per connection, the
 *     first time it is used; if Redis answers NOSCRIPT (restart, SCRIPT FLUSH) the module loads
 *     it again and runs it once more, which is safe because a NOSCRIPT command did not run.
 *
 * SIGPIPE: hiredis writes to the socket with write(2), so writing to a Redis that has just
 * died raises SIGPIPE, which kills a process that has not ignored it (exit 141). Every caseflow
 * program ignores SIGPIPE at start; a new program using this module must do the same.
 *
 * Threads: a struct cf_redis belongs to one thread at a time (hiredis contexts are not
 * thread-safe). A struct cf_redis_script is immutable after cf_redis_script_new() and may be
 * shared by any number of threads and connections.
 *
 * Logging: reconnects and script reloads are logged with CF_LOG (error texts, counts and
 * script SHA1s only; never a key's value). */
#ifndef CF_REDIS_H
#define CF_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "status.h"

/* Limits. A key over CF_REDIS_MAX_KEY (without the prefix) is CF_EINVAL; a value, a script
 * argument or a reply string over CF_REDIS_MAX_STRING, a reply with more than
 * CF_REDIS_MAX_ELEMENTS array elements in all, or nested deeper than CF_REDIS_MAX_DEPTH, is
 * CF_ETOOBIG. A pipeline holds at most CF_REDIS_MAX_PIPELINE commands,
 * CF_REDIS_MAX_PIPELINE_BYTES bytes of encoded commands and CF_REDIS_MAX_PIPELINE_SCRIPTS
 * different scripts (CF_ETOOBIG past any). hiredis itself reads a whole reply before the module
 * sees it; the caps bound what reaches the services, Redis is trusted not to send gigabytes. */
#define CF_REDIS_MAX_KEY 200
#define CF_REDIS_MAX_PREFIX 64
#define CF_REDIS_MAX_STRING (1024 * 1024)
#define CF_REDIS_MAX_ELEMENTS 65536
#define CF_REDIS_MAX_DEPTH 4
#define CF_REDIS_MAX_SCRIPT_ARGS 256 /* nkeys + nargs of one script call */
#define CF_REDIS_MAX_PIPELINE 100000
#define CF_REDIS_MAX_PIPELINE_BYTES (64 * 1024 * 1024)
#define CF_REDIS_MAX_PIPELINE_SCRIPTS 64

/* Defaults used by cf_redis_new(); cf_redis_new_from_config() takes them from the config. */
#define CF_REDIS_DEFAULT_KEY_PREFIX "caseflow:"
#define CF_REDIS_DEFAULT_RETRY_BUDGET_MS 5000

/* Backoff between reconnect attempts: CF_REDIS_BACKOFF_BASE_MS doubling to
 * CF_REDIS_BACKOFF_CAP_MS, see cf_redis_backoff_ms(). */
#define CF_REDIS_BACKOFF_BASE_MS 50
#define CF_REDIS_BACKOFF_CAP_MS 1000

/* The Redis entries of a program's config table; put them after CF_CONFIG_COMMON_ENTRIES in
 * programs that use Redis, and create the connection with cf_redis_new_from_config(). The
 * defaults point at the local stack started by deploy/stack. */
#define CF_CONFIG_REDIS_ENTRIES                                                                  \
    {"CASEFLOW_REDIS_HOST", CF_CONFIG_STRING, "127.0.0.1", 1, 255,                               \
     "Redis host name or address"},                                                              \
    {"CASEFLOW_REDIS_PORT", CF_CONFIG_INT, "16379", 1, 65535, "Redis TCP port"},                 \
    {"CASEFLOW_REDIS_USERNAME", CF_CONFIG_STRING, "", 0, 128,                                    \
     "Redis ACL user for AUTH (empty: the default user)"},                                       \
    {"CASEFLOW_REDIS_PASSWORD", CF_CONFIG_STRING, "", 0, 512,                                    \
     "password for AUTH on every connection (empty: no AUTH)"},                                  \
    {"CASEFLOW_REDIS_CONNECT_TIMEOUT_MS", CF_CONFIG_INT, "1000", 10, 60000,                      \
     "timeout of one connection attempt to Redis"},                                              \
    {"CASEFLOW_REDIS_COMMAND_TIMEOUT_MS", CF_CONFIG_INT, "2000", 10, 600000,                     \
     "timeout of one Redis command or pipeline read/write"},                                     \
    {"CASEFLOW_REDIS_KEY_PREFIX", CF_CONFIG_STRING, CF_REDIS_DEFAULT_KEY_PREFIX, 1,              \
     CF_REDIS_MAX_PREFIX, "prepended to every Redis key; [A-Za-z0-9._:/-] only"},                \
    {"CASEFLOW_REDIS_RETRY_BUDGET_MS", CF_CONFIG_INT, "5000", 0, 600000,                         \
     "how long a Redis call keeps reconnecting (with backoff) before it fails"}

/* One connection to Redis. Opaque. */
struct cf_redis;

/* A reply, owned by the caller. str is NUL-terminated (len does not count the NUL; the bytes
 * may contain NULs) and set for STRING and STATUS; integer for INT; elements[0..count) for
 * ARRAY. An error reply is never a value: it becomes a status and the server's text in errbuf,
 * CF_EIO for states of the server that pass (LOADING, BUSY, TRYAGAIN, MASTERDOWN, OOM,
 * READONLY, MISCONF, ...: the caller retries its batch later), CF_EINVAL for everything else
 * (WRONGTYPE, syntax, script errors: retrying will not help). */
enum cf_redis_type {
    CF_REDIS_NIL = 0,
    CF_REDIS_INT,
    CF_REDIS_STRING,
    CF_REDIS_ARRAY,
    CF_REDIS_STATUS,
};

struct cf_redis_value {
    enum cf_redis_type type;
    long long integer;
    char *str;
    size_t len;
    struct cf_redis_value *elements;
    size_t count;
};

/* Frees a value returned by this module and everything in it. NULL-safe. */
void cf_redis_value_free(struct cf_redis_value *value);

/* Connects to host:port (one attempt, at most connect_timeout_ms) and sets command_timeout_ms
 * as the read/write timeout of every later command. The key prefix is
 * CF_REDIS_DEFAULT_KEY_PREFIX and the retry budget CF_REDIS_DEFAULT_RETRY_BUDGET_MS until
 * changed with the setters below. On success *out is a connection the caller frees with
 * cf_redis_free(); on failure *out is NULL and the status is CF_EINVAL (bad argument), CF_EIO
 * or CF_ETIMEOUT (Redis unreachable) or CF_ENOMEM, with details in errbuf (may be NULL). */
cf_status cf_redis_new(const char *host, int port, int connect_timeout_ms,
                       int command_timeout_ms, struct cf_redis **out, char *errbuf,
                       size_t errlen);

/* cf_redis_new for a Redis that requires AUTH: every connection, the first and each reconnect,
 * sends AUTH [username] password before anything else. username may be NULL or "" (the default
 * user); password NULL or "" means no AUTH (cf_redis_new). Both are copied and never logged.
 * Credentials Redis refuses are CF_ECONFIG (retrying will not help), with Redis's error text. */
cf_status cf_redis_new_auth(const char *host, int port, const char *username,
                            const char *password, int connect_timeout_ms, int command_timeout_ms,
                            struct cf_redis **out, char *errbuf, size_t errlen);

/* The same, with every setting from the CF_CONFIG_REDIS_ENTRIES of config (which must be in the
 * program's table), AUTH included. */
cf_status cf_redis_new_from_config(const struct cf_config *config, struct cf_redis **out,
                                   char *errbuf, size_t errlen);

/* Closes the connection and frees r. NULL-safe. */
void cf_redis_free(struct cf_redis *r);

/* Sets the prefix prepended to every key (copied; 1 to CF_REDIS_MAX_PREFIX bytes of
 * [A-Za-z0-9._:/-], else CF_EINVAL and the old prefix stays). */
cf_status cf_redis_set_key_prefix(struct cf_redis *r, const char *prefix, char *errbuf,
                                  size_t errlen);

/* Sets how long one call may keep reconnecting before it gives up (0: one attempt only). */
void cf_redis_set_retry_budget(struct cf_redis *r, int retry_budget_ms);

/* CF_OK if key is a valid key (see the top of this file), else CF_EINVAL naming the problem
 * (position and kind of the bad byte, never the key itself). Pure; no connection needed. */
cf_status cf_redis_key_check(const char *key, char *errbuf, size_t errlen);

/* The delay before reconnect attempt number attempt (0 for the first retry): "equal jitter"
 * exponential backoff, i.e. d = min(cap_ms, base_ms * 2^attempt), and the result lies in
 * [d/2, d], placed by random (any 32-bit value, e.g. from a PRNG). Pure; safe for any attempt
 * (no overflow). Returns 0 if base_ms or cap_ms is 0. */
unsigned cf_redis_backoff_ms(unsigned attempt, unsigned base_ms, unsigned cap_ms,
                             uint32_t random);

/* PING: CF_OK if Redis answers (after reconnecting if needed, within the retry budget). */
cf_status cf_redis_ping(struct cf_redis *r, char *errbuf, size_t errlen);

/* SET prefix+key value EX ttl_seconds. value[0..len) may hold any bytes (value may be NULL if
 * len is 0); len over CF_REDIS_MAX_STRING is CF_ETOOBIG; ttl_seconds <= 0 is CF_EINVAL. Safe to
 * resend, so it is retried across reconnects. */
cf_status cf_redis_set(struct cf_redis *r, const char *key, const void *value, size_t len,
                       long long ttl_seconds, char *errbuf, size_t errlen);

/* SET prefix+key value NX EX ttl_seconds: an idempotency claim. *was_set is true if this call
 * created the key, false if it already existed (its value and TTL are left alone).
 * If the connection broke after the command was sent, the module cannot know whether the first
 * attempt ran; when the retry finds the key holding exactly value, it reports *was_set = true.
 * So give the value something unique to the claimer (event id plus instance id) and a retried
 * claim is recognised as ours, not as someone else's. */
cf_status cf_redis_set_nx(struct cf_redis *r, const char *key, const void *value, size_t len,
                          long long ttl_seconds, bool *was_set, char *errbuf, size_t errlen);

/* GET prefix+key. On CF_OK *value is a new NUL-terminated copy (the caller frees it with free())
 * and *len its length (len may be NULL). CF_ENOTFOUND if the key does not exist (or expired),
 * CF_ETOOBIG over CF_REDIS_MAX_STRING, CF_EINVAL if the key holds a non-string. */
cf_status cf_redis_get(struct cf_redis *r, const char *key, char **value, size_t *len,
                       char *errbuf, size_t errlen);

/* DEL prefix+key. *deleted (may be NULL) tells whether the key existed. */
cf_status cf_redis_del(struct cf_redis *r, const char *key, bool *deleted, char *errbuf,
                       size_t errlen);

/* TTL prefix+key in seconds: CF_ENOTFOUND if the key does not exist; *ttl_seconds is -1 if it
 * exists without a TTL (which this module never creates). For tests and operators. */
cf_status cf_redis_ttl(struct cf_redis *r, const char *key, long long *ttl_seconds,
                       char *errbuf, size_t errlen);

/* --- Lua scripts --------------------------------------------------------------------------- */

struct cf_redis_script;

/* Running the script twice with the same keys and arguments leaves Redis as running it once
 * (e.g. it records its effect under the event id and returns early the second time), so the
 * module may resend it after a lost connection. Without this flag a script that may or may not
 * have run returns CF_EIO and the caller's transaction is retried instead. */
#define CF_REDIS_SCRIPT_IDEMPOTENT 0x1u

/* Compiles nothing and talks to no server: copies source and computes its SHA1 (the name
 * EVALSHA uses). Every script that writes must give each key it writes a TTL (see the top of
 * this file), taken from an argument: the module cannot check that, review does. Scripts report
 * business outcomes in their return value; an error reply (redis.error_reply, a runtime error)
 * becomes CF_EINVAL with its text in errbuf, so that text must not carry personal data.
 * flags: 0 or CF_REDIS_SCRIPT_IDEMPOTENT. On success *out is owned by the caller and freed
 * with cf_redis_script_free(). */
cf_status cf_redis_script_new(const char *source, unsigned flags, struct cf_redis_script **out,
                              char *errbuf, size_t errlen);

/* NULL-safe. The script must not be in use. */
void cf_redis_script_free(struct cf_redis_script *script);

/* The script's SHA1 as 40 lower-case hex digits; belongs to script. */
const char *cf_redis_script_sha(const struct cf_redis_script *script);

/* SCRIPT LOAD now, so that a syntax error shows at start (CF_EINVAL) instead of at the first
 * run. Optional: cf_redis_script_run() loads the script when needed. */
cf_status cf_redis_script_load(struct cf_redis *r, const struct cf_redis_script *script,
                               char *errbuf, size_t errlen);

/* EVALSHA sha nkeys prefix+keys[0..nkeys) args[0..nargs). Each key is checked like any key and
 * prefixed; arglens[i] is the length of args[i] (arglens may be NULL: the args are then
 * NUL-terminated strings). keys/args may be NULL when nkeys/nargs is 0. On CF_OK *out (if out
 * is not NULL) is the script's reply, freed by the caller with cf_redis_value_free(); on failure
 * *out is NULL. NOSCRIPT is handled here (load, run once more). */
cf_status cf_redis_script_run(struct cf_redis *r, const struct cf_redis_script *script,
                              size_t nkeys, const char *const *keys, size_t nargs,
                              const char *const *args, const size_t *arglens,
                              struct cf_redis_value **out, char *errbuf, size_t errlen);

/* --- Pipelines ----------------------------------------------------------------------------- */

/* A batch of commands sent in one write and answered in one read: one round trip per command
 * does about 10k commands/s, a pipeline of 1,000 about 400k/s (LIBRARY-FACTS). Build it (the
 * append functions validate and encode each command at once and talk to no server), run it
 * with cf_redis_pipeline_exec(), read each command's reply, then cf_redis_pipeline_reset() to
 * reuse it or cf_redis_pipeline_free(). A pipeline is not a transaction: commands run in order
 * but others' commands may run in between, and after a lost connection any prefix of them may
 * have run. Only the commands below can be added, so every key written has a TTL. */
struct cf_redis_pipeline;

/* An empty pipeline, freed by the caller with cf_redis_pipeline_free(). Keys appended to it get
 * r's key prefix as it is now; the pipeline may then be run on any connection. CF_ENOMEM only. */
cf_status cf_redis_pipeline_new(const struct cf_redis *r, struct cf_redis_pipeline **out);

/* NULL-safe; frees the replies too. */
void cf_redis_pipeline_free(struct cf_redis_pipeline *p);

/* Removes every command and reply; keeps the allocated memory. */
void cf_redis_pipeline_reset(struct cf_redis_pipeline *p);

/* Number of commands appended. */
size_t cf_redis_pipeline_count(const struct cf_redis_pipeline *p);

/* Append one command; the arguments are copied and checked as in the single-command functions.
 * On failure nothing is appended. A script must stay alive until the pipeline is reset or
 * freed; a pipeline uses at most CF_REDIS_MAX_PIPELINE_SCRIPTS different scripts. */
cf_status cf_redis_pipeline_set(struct cf_redis_pipeline *p, const char *key, const void *value,
                                size_t len, long long ttl_seconds, char *errbuf, size_t errlen);
cf_status cf_redis_pipeline_get(struct cf_redis_pipeline *p, const char *key, char *errbuf,
                                size_t errlen);
cf_status cf_redis_pipeline_del(struct cf_redis_pipeline *p, const char *key, char *errbuf,
                                size_t errlen);
/* ZRANGEBYSCORE key min (max: the members of the sorted set key scored from min_score up to,
 * not including, max_score; the reply is an ARRAY of STRINGs (empty for no key). Read-only. */
cf_status cf_redis_pipeline_zrange_scores(struct cf_redis_pipeline *p, const char *key,
                                          int64_t min_score, int64_t max_score, char *errbuf,
                                          size_t errlen);
cf_status cf_redis_pipeline_script(struct cf_redis_pipeline *p,
                                   const struct cf_redis_script *script, size_t nkeys,
                                   const char *const *keys, size_t nargs,
                                   const char *const *args, const size_t *arglens, char *errbuf,
                                   size_t errlen);

/* Sends every command and reads every reply. Scripts used in the pipeline are loaded first if
 * this connection has not loaded them yet. If the connection breaks, the whole pipeline is
 * sent again after reconnecting only when every command in it is safe to resend (all but
 * non-idempotent scripts); otherwise, or when the retry budget runs out, it returns CF_EIO or
 * CF_ETIMEOUT and no reply is available. The same holds when Redis answers NOSCRIPT for some
 * command (scripts flushed mid-connection). Otherwise it returns CF_OK if every command
 * succeeded, or the status of the first command that failed (errbuf names its index); the
 * other commands' replies are still available. Running it again sends the same commands. */
cf_status cf_redis_pipeline_exec(struct cf_redis *r, struct cf_redis_pipeline *p, char *errbuf,
                                 size_t errlen);

/* Command index's outcome after cf_redis_pipeline_exec(): its status, and in *value (may be
 * NULL) its reply, which belongs to the pipeline (NULL on failure). SET answers STATUS "OK",
 * GET a STRING or NIL, DEL an INT. CF_EINVAL if index is out of range or exec has not run. */
cf_status cf_redis_pipeline_reply(const struct cf_redis_pipeline *p, size_t index,
                                  const struct cf_redis_value **value);

#endif
