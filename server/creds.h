/* server/creds.h - the access keys the API server accepts.
 *
 * Sources: a key pair given explicitly (the server's own environment,
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, read by cli/cmd_serve.c) and
 * AWS CLI credentials files (`~/.aws/credentials` INI format; every
 * profile's aws_access_key_id / aws_secret_access_key pair is accepted).
 *
 * Thread safety: build the set first, then share it read-only between
 * connection threads (server_creds_lookup only reads).
 */
#ifndef SERVER_CREDS_H
#define SERVER_CREDS_H

#include <stddef.h>

#include "util/error.h"

typedef struct server_creds server_creds;

/* An empty set; never NULL. */
server_creds *server_creds_new(void);
void server_creds_free(server_creds *c);

/* Adds a key pair (copied).  The same key twice with the same secret is
 * fine; with a different secret it is CBL_EINVAL (which one would win?). */
int server_creds_add(server_creds *c, const char *access_key_id, const char *secret,
		     cbl_error **err);

/* Adds every complete pair of an AWS credentials file: "[profile]" sections,
 * "key = value" lines, '#' / ';' comment lines, keys case-insensitive.
 * Profiles with only one of the two keys are an error naming the profile
 * and line.  aws_session_token is ignored (requests may carry one; it is not
 * checked).  CBL_ENOENT / CBL_EIO when unreadable, CBL_EINVAL when
 * malformed; *out_added (optional) counts the pairs it found. */
int server_creds_load_file(server_creds *c, const char *path, size_t *out_added,
			   cbl_error **err);

/* The secret of access_key_id (borrowed, valid while c lives) or NULL. */
const char *server_creds_lookup(const server_creds *c, const char *access_key_id);

size_t server_creds_count(const server_creds *c);

#endif
