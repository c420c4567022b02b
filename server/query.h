/* server/query.h - CloudWatch's query protocol (the AWS CLI v2's and
 * boto3's for CloudWatch: a form-encoded POST /, XML answers) translated to
 * and from the JSON protocol's target and shapes the store serves
 * (store/cloudwatch.c): no operation logic here. */
#ifndef SERVER_QUERY_H
#define SERVER_QUERY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

/* True for a query-protocol request's Content-Type
 * (application/x-www-form-urlencoded, any parameters). */
bool server_query_is_form(const char *content_type);

/* Parses the form body: *target is the JSON protocol's target of its
 * Action (static; NULL, with CBL_EINVAL, for an Action it does not know),
 * *request the parameters as JSON ("A.member.1.B=x" becomes
 * {"A": [{"B": "x"}]}; every value a string).  CBL_EINVAL for a malformed
 * form. */
int server_query_parse(const char *body, size_t len, const char **target, json_t **request,
		       cbl_error **err);

/* The XML answer of target's operation for its JSON response (timestamps,
 * epoch seconds in JSON, become ISO 8601).  *len set; caller frees. */
char *server_query_response(const char *target, const json_t *response, const char *request_id,
			    size_t *len);

/* The XML error answer: <ErrorResponse><Error><Type>Sender|Receiver</Type>
 * <Code>..</Code><Message>..</Message></Error><RequestId/></ErrorResponse>. */
char *server_query_error(const char *code, const char *message, bool sender, const char *request_id,
			 size_t *len);

#endif
