/* sched_token.h — the secrets a booking carries: the join link's unguessable token, and the
 * signed reschedule / cancel tokens a patient sends back in TeleconsultChangeRequested.
 *
 * A change token is base64url (no padding) of HMAC-SHA256(secret, action "\n" teleconsult_id
 * "\n" start_ms), so it names one action on one booking at one start time: once the booking
 * moves, the tokens of its earlier start no longer verify. Verification recomputes the token
 * and compares in constant time (CRYPTO_memcmp), so timing does not reveal how much of a forged
 * token was right. Tokens are never logged. */
#ifndef SCHEDULER_SCHED_TOKEN_H
#define SCHEDULER_SCHED_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* The shortest secret accepted (CASEFLOW_SCHEDULER_TOKEN_SECRET), like intake's. */
#define SCHED_TOKEN_SECRET_MIN 32
/* base64url of 32 bytes without padding is 43 characters; of 16 bytes, 22. */
#define SCHED_TOKEN_LEN 43
#define SCHED_JOIN_TOKEN_LEN 22

/* The two actions a change token can authorise (TeleconsultChangeAction symbols). */
#define SCHED_ACTION_RESCHEDULE "RESCHEDULE"
#define SCHED_ACTION_CANCEL "CANCEL"

/* Signs action for the booking (teleconsult_id, start_ms) into out (SCHED_TOKEN_LEN + 1
 * bytes). CF_EINVAL for NULL arguments or an empty secret, CF_EIO if OpenSSL fails. */
cf_status sched_token_sign(const unsigned char *secret, size_t secret_len, const char *action,
                           const char *teleconsult_id, int64_t start_ms,
                           char out[SCHED_TOKEN_LEN + 1]);

/* True if token is the token sched_token_sign gives for the same arguments. Compares in
 * constant time; any NULL argument, a token of the wrong length or a signing failure is false. */
bool sched_token_verify(const unsigned char *secret, size_t secret_len, const char *action,
                        const char *teleconsult_id, int64_t start_ms, const char *token);

/* 128 random bits from OpenSSL's RAND_bytes as base64url into out (SCHED_JOIN_TOKEN_LEN + 1
 * bytes): the join link's token. CF_EIO if the generator fails. */
cf_status sched_join_token(char out[SCHED_JOIN_TOKEN_LEN + 1]);

/* base64url without padding of in[0..len) into out (4 * ceil(len / 3) + 1 bytes at least);
 * returns the length written (NUL not counted). */
size_t sched_base64url(const unsigned char *in, size_t len, char *out);

#endif
