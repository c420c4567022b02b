/* remote/remote.h - talking to AWS (or anything that speaks its protocol,
 * such as `codebuild-local serve`): credentials from the standard chain and
 * a JSON 1.1 client signed with SigV4 (server/sigv4.h's primitives, the ones
 * the server verifies with), with the SDKs' retry behaviour.
 *
 * Credentials, in the AWS CLI's order: an explicit profile (--profile) from
 * the shared files; else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
 * (/ AWS_SESSION_TOKEN); else the profile AWS_PROFILE names (or "default")
 * in AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials), then in
 * AWS_CONFIG_FILE (~/.aws/config, "[profile NAME]").  A profile that needs
 * anything else (SSO, credential_process, role_arn, web identity) is an
 * error saying how to get static keys for it; nothing is guessed.
 *
 * Retries: connection failures, 5xx answers and throttling errors are
 * retried up to 4 attempts with exponential backoff and full jitter (base
 * 100 ms, cap 20 s), as the SDKs' standard mode does; other errors at once.
 *
 * Thread safety: a client belongs to one thread. */
#ifndef REMOTE_REMOTE_H
#define REMOTE_REMOTE_H

#include <jansson.h>
#include <stdbool.h>

#include "util/error.h"

typedef struct remote_creds {
	char *access_key_id;
	char *secret_access_key;
	char *session_token;  /* NULL = none */
	char *region;         /* the flag, AWS_REGION, AWS_DEFAULT_REGION, the profile's; NULL = none */
	char *source;         /* where the keys came from, for messages */
} remote_creds;

/* profile: --profile (NULL = none); region: --region (NULL = from the chain).
 * Errors: CBL_ENOENT (no credentials anywhere, an unknown profile),
 * CBL_EINVAL (a profile this reader cannot use, a broken file). */
int remote_creds_load(remote_creds *out, const char *profile, const char *region, cbl_error **err);
void remote_creds_release(remote_creds *c);

typedef struct remote_client remote_client;

/* endpoint_url: NULL = https://<service>.<region>.amazonaws.com per
 * service; else every service at that URL (as --endpoint-url does). */
int remote_client_new(remote_client **out, const remote_creds *c, const char *endpoint_url, cbl_error **err);
void remote_client_free(remote_client *c);

/* One JSON 1.1 call: service "codebuild" (CodeBuild_20161006.OPERATION) or
 * "logs" (Logs_20140328.OPERATION).  *out = the answer's JSON object.  An
 * AWS error: CBL_ENOENT for ResourceNotFoundException, CBL_EINVAL for
 * InvalidInputException / validation / authentication errors, CBL_EIO for
 * the others and for transport failures; the message is "<Type>: <message>"
 * and remote_last_error_type() gives the type. */
int remote_call(remote_client *c, const char *service, const char *operation, const json_t *request,
		json_t **out, cbl_error **err);

/* The AWS error type of the last failed call ("" when none), and how many
 * attempts the last call made. */
const char *remote_last_error_type(const remote_client *c);
int remote_last_attempts(const remote_client *c);

#endif
