/* server/sigv4.h - AWS Signature Version 4 verification (header signing).
 *
 * What a server needs to check the `Authorization: AWS4-HMAC-SHA256 ...`
 * header the AWS CLI, boto3 and the JS SDK send: parse it, rebuild the
 * canonical request and the string to sign, derive the signing key, compare
 * in constant time.  Verified against every case of AWS's official test
 * suite (../shared/reference/sigv4-test-suite, tests/unit/test_sigv4.c).
 * Presigned URLs (query-string signing) and SigV4a are not supported.
 *
 * Thread safety: every function is reentrant; nothing is shared.
 * Errors: cbl_error convention (util/error.h); rejections of a request are
 * CBL_EINVAL with an AWS-worded message and a status telling which AWS
 * exception to answer with (server_sigv4_status_type()).
 */
#ifndef SERVER_SIGV4_H
#define SERVER_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/strv.h"

/* One request header as it arrived: names in any case, duplicates allowed,
 * in arrival order (multi-value headers are joined with ',' in that order). */
struct server_sigv4_header {
	const char *name;
	const char *value;
};

/* The request as the server saw it (everything borrowed). */
struct server_sigv4_request {
	const char *method;                       /* "POST" */
	const char *path;                         /* raw path, still percent-encoded, no query */
	const char *query;                        /* raw query without '?'; NULL or "" = none */
	const struct server_sigv4_header *headers;
	size_t nheaders;
	const void *body;
	size_t body_len;
};

/* Why a request was rejected; maps to the AWS exception name. */
enum server_sigv4_status {
	SERVER_SIGV4_OK = 0,
	SERVER_SIGV4_MISSING,        /* MissingAuthenticationTokenException: no Authorization */
	SERVER_SIGV4_INCOMPLETE,     /* IncompleteSignatureException: malformed header / date */
	SERVER_SIGV4_UNKNOWN_KEY,    /* UnrecognizedClientException: access key not configured */
	SERVER_SIGV4_BAD_SIGNATURE,  /* InvalidSignatureException: mismatch, scope, expired */
};

/* "InvalidSignatureException" etc.; "" for SERVER_SIGV4_OK. */
const char *server_sigv4_status_type(enum server_sigv4_status st);

/* The parsed Authorization header. Release with server_sigv4_auth_release. */
struct server_sigv4_auth {
	char *access_key_id;
	char *date;            /* YYYYMMDD of the credential scope */
	char *region;
	char *service;
	char *terminator;      /* "aws4_request" */
	char *scope;           /* "date/region/service/terminator" */
	char *signed_headers;  /* "host;x-amz-date" as sent */
	cbl_strv headers;      /* the same, split */
	char *signature;       /* hex as sent */
};

#define SERVER_SIGV4_AUTH_INIT {0}

/* Parses "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request,
 * SignedHeaders=host;x-amz-date, Signature=<hex>" (components in any order,
 * spaces after commas optional).  CBL_EINVAL with AWS's wording when
 * something is missing or malformed. */
int server_sigv4_parse_authorization(const char *value, struct server_sigv4_auth *out,
				     cbl_error **err);
void server_sigv4_auth_release(struct server_sigv4_auth *a);

/* Canonical request (SigV4 task 1).  signed_headers: lowercase names
 * joined with ';' as in the Authorization header; payload_hash: 64 hex
 * chars.  normalize: RFC 3986 remove_dot_segments + collapse of empty
 * segments (every service except S3).  The path is URI-encoded once more
 * from its wire form (non-S3 services "double-encode"); query parameters
 * are decoded, re-encoded and sorted.  Header values are trimmed and runs
 * of whitespace squeezed to one space; a signed header the request lacks
 * contributes an empty value.  Never fails; caller frees. */
char *server_sigv4_canonical_request(const struct server_sigv4_request *req,
				     const char *signed_headers, const char *payload_hash,
				     bool normalize);

/* "AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex sha256(creq)>"; caller frees. */
char *server_sigv4_string_to_sign(const char *amz_date, const char *scope, const char *creq);

/* HMAC chain: kSecret="AWS4"+secret, date, region, service, "aws4_request";
 * then hex(HMAC(k, string_to_sign)) into out (64 hex + NUL). */
void server_sigv4_signature(const char *secret, const char *date, const char *region,
			    const char *service, const char *string_to_sign, char out[65]);

/* Lowercase hex SHA-256 of data into out (64 hex + NUL). */
void server_sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* Looks an access key up: returns its secret (borrowed) or NULL if unknown. */
typedef const char *(*server_sigv4_secret_fn)(const char *access_key_id, void *payload);

struct server_sigv4_opts {
	const char *service;    /* scope service the request must carry; NULL = any */
	const char *region;     /* scope region the request must carry; NULL = any */
	int64_t now;            /* seconds since the epoch, to check X-Amz-Date against */
	int64_t max_skew;       /* seconds of allowed clock skew; <= 0 = no check */
	bool normalize;         /* path normalization (true for every non-S3 service) */
	/* Lowercase header names that, when the request carries them, must be
	 * among the signed headers (NULL-terminated; NULL = none): the JSON
	 * protocol's x-amz-target and content-type, so a signature made for one
	 * operation cannot be replayed with another target. */
	const char *const *must_sign;
	/* Everything but the body hash and the signature: what can be checked
	 * once the head has arrived, before reading a body from someone whose
	 * key is unknown. */
	bool head_only;
};

#define SERVER_SIGV4_OPTS_INIT {NULL, NULL, 0, 900, true, NULL, false}

/* Verifies a request: Authorization header, X-Amz-Date (format, scope date,
 * skew), scope (terminator, service, region), Host signed, every header
 * named in SignedHeaders present in the request, opts->must_sign headers
 * signed, the body against
 * x-amz-content-sha256 when present, then the signature (CRYPTO_memcmp).
 * Returns 0 when the request is authentic (*out_status = SERVER_SIGV4_OK),
 * else CBL_EINVAL with *out_status saying which exception to answer and
 * *err the message (for a signature mismatch it includes the canonical
 * request and the string to sign the server computed, as AWS does).
 * out_akid (optional): the request's access key id when the header parsed
 * (caller frees), for logging. */
int server_sigv4_verify(const struct server_sigv4_request *req,
			const struct server_sigv4_opts *opts, server_sigv4_secret_fn lookup,
			void *payload, enum server_sigv4_status *out_status, char **out_akid,
			cbl_error **err);

#endif
