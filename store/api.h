/* store/api.h - the CodeBuild / CloudWatch Logs data operations behind one
 * dispatcher, shared by the HTTP server (server/) and the CLI faces (cli/),
 * so both behave identically.
 *
 * Operations (X-Amz-Target values):
 *   CodeBuild_20161006.CreateProject, UpdateProject, DeleteProject,
 *   BatchGetProjects, ListProjects, BatchGetBuilds, ListBuilds,
 *   ListBuildsForProject, BatchDeleteBuilds, ListReportGroups,
 *   BatchGetReportGroups, ListReports, ListReportsForReportGroup,
 *   BatchGetReports, DescribeTestCases, DescribeCodeCoverages,
 *   GetReportGroupTrend, CreateReportGroup, UpdateReportGroup,
 *   DeleteReportGroup, DeleteReport (store/reportgroups.c), CreateWebhook,
 *   UpdateWebhook, DeleteWebhook (store/webhooks.c), ImportSourceCredentials,
 *   ListSourceCredentials, DeleteSourceCredentials (store/credentials.c);
 *   Logs_20140328.GetLogEvents.
 * StartBuild / StopBuild / RetryBuild launch builds and live in runner/
 * (launch.c), InvalidateProjectCache and ListCuratedEnvironmentImages too
 * (apiops.c: they need the cache and the image catalog).
 *
 * Every request is first checked against the service models
 * (store_api_validate below: required members, enums, lengths, ranges,
 * patterns, nested structures and lists, with the service's wording); the
 * operations then check types and their local rules (build ids
 * <project>:<uuid>, a build ARN accepted too).  Unknown members are ignored.
 *
 * Behaviour a caller may rely on (and local choices where the service
 * documents none):
 *   - Lists page by 100 with an opaque nextToken (keyset: stable while
 *     records come and go); no nextToken on the last page.
 *   - ListBuildsForProject sorts by build number (DESCENDING by default, as
 *     the model documents); ListBuilds by start time (DESCENDING by
 *     default); ListProjects by NAME, ASCENDING unless sortBy / sortOrder
 *     say otherwise.
 *   - Projects: region us-east-1, account 000000000000 in ARNs.  serviceRole
 *     is optional (no IAM locally).  Source types: the git types (GITHUB,
 *     GITLAB, GITLAB_SELF_MANAGED, BITBUCKET, CODECOMMIT, GITHUB_ENTERPRISE)
 *     take any git URL or a file:// path as location; NO_SOURCE takes an
 *     inline buildspec, or - the model has no local type - a local
 *     directory as location "file:///abs/dir" (the `run` of a directory).
 *     S3 and CODEPIPELINE are refused (InvalidInputException).
 *     environment.image "host" means the host image.
 *   - DeleteProject of an unknown project: ResourceNotFoundException; a
 *     project's builds stay (as on the service) and its build numbers are
 *     never reused.
 *   - BatchDeleteBuilds: a running build is not deleted (statusCode
 *     BUILD_IN_PROGRESS), an unknown one neither (BUILD_NOT_FOUND);
 *     deleting removes the build's directory (record, log, artifacts).
 *   - Reads finish builds whose runner died: FAULT (context INTERNAL_ERROR,
 *     "Build runner exited unexpectedly" on the phase that was running),
 *     or STOPPED if a stop had been requested.
 *   - Reports (store/reports.c): a build's reports enter the store when its
 *     record is saved complete, from what the runner wrote under
 *     <build dir>/reports/ (only the ARNs the record's reportArns lists, so
 *     BatchGetBuilds and BatchGetReports agree).  A buildspec's report group
 *     <name> is the group "<project>-<name>", a group named by ARN keeps its
 *     ARN; a group is created by its first report (type, created =
 *     lastModified = that report's creation; status ACTIVE, NO_EXPORT) and
 *     keeps its type.  Report ARNs: arn:aws:codebuild:<r>:<a>:report/
 *     <group name>:<uuid>.
 *   - Reports outlive their build and project, as on the service (reports
 *     belong to their report group): BatchDeleteBuilds and DeleteProject
 *     leave report groups, reports, test cases and coverages in place.
 *     Reports are not hidden after their `expired` time (30 days) either.
 *   - Local orders where the service documents none: ListReportGroups by
 *     NAME ascending; ListReports / ListReportsForReportGroup by creation,
 *     newest first (sortOrder ASCENDING: oldest first); DescribeTestCases
 *     in the report's order (FAILED, ERROR, UNKNOWN first, then the rest,
 *     each in file order); DescribeCodeCoverages by FILE_PATH ascending.
 *     Pages default to and are capped at 100 (maxResults 1..100).
 *   - DescribeTestCases: filter.status is one of the five TestCase statuses
 *     (else InvalidInputException), filter.keyword a case-sensitive
 *     substring of the name or the prefix; an unknown report is
 *     ResourceNotFoundException.  DescribeCodeCoverages of an unknown
 *     report is an empty list (the model lists no ResourceNotFound).
 *     ListReportsForReportGroup / GetReportGroupTrend of an unknown group:
 *     ResourceNotFoundException.
 *   - GetReportGroupTrend: over the most recent numOfReports (default 100)
 *     reports that have the field (PASS_RATE = SUCCEEDED / total * 100);
 *     values as text, whole numbers exactly, others with two decimals;
 *     stats {} and rawData [] when no report has the field.
 *   - GetLogEvents: see store/logs.c (one event per log line, message with
 *     its trailing newline, f/ b/ tokens, same token back at the end).
 *
 * Thread safety: any thread may call these; a process keeps one database
 * connection per home (see store_internal.h), used by one caller at a time.
 */
#ifndef STORE_API_H
#define STORE_API_H

#include <jansson.h>
#include <stdbool.h>

#include "util/error.h"

/* The X-Amz-Target prefixes of the two services (with the dot), the one
 * spelling of the API versions: STORE_TARGET_CODEBUILD "ListProjects". */
#define STORE_TARGET_CODEBUILD "CodeBuild_20161006."
#define STORE_TARGET_LOGS "Logs_20140328."
/* CloudWatch's JSON-protocol prefix (store/cloudwatch.c); server/query.c
 * maps its query protocol's Action onto it */
#define STORE_TARGET_CLOUDWATCH "GraniteServiceVersion20100801."

/* True if target (the X-Amz-Target value) is one of the operations above. */
bool store_api_known(const char *target);

/* target = the X-Amz-Target value, e.g. "CodeBuild_20161006.ListProjects" or
 * "Logs_20140328.GetLogEvents". request = the parsed JSON body (borrowed;
 * NULL = {}). On success *out is a new reference to the response object.
 * Errors: CBL_EINVAL, CBL_ENOENT, CBL_EEXIST, CBL_ELIMIT, anything else an
 * internal failure (store_api_error_type names their AWS exceptions); the
 * message is the AWS-style text. */
int store_api_dispatch(const char *home, const char *target, json_t *request, json_t **out,
		       cbl_error **err);

/* The same on behalf of a caller: the region its request was signed for and
 * its account go into the ARNs the operation creates (CreateProject); NULL,
 * or a region / account of the wrong shape, = the defaults. */
int store_api_dispatch_as(const char *home, const char *target, json_t *request, const char *region,
			  const char *account, json_t **out, cbl_error **err);

/* The same, with the response serialized (compact JSON, UTF-8, timestamps
 * as epoch-second numbers; *out caller-freed, *len its length).  The HTTP
 * server's fast path: BatchGetBuilds splices the stored records into the
 * text without parsing them (~10x cheaper than building a json_t). */
int store_api_dispatch_text(const char *home, const char *target, json_t *request, char **out,
			    size_t *len, cbl_error **err);

/* Checks request (a JSON object; borrowed) against target's input shape in
 * the service models (store/validate.c): required members, enums, lengths,
 * ranges, patterns, nested structures, lists and maps.  0 if it conforms
 * or the model does not know target; else CBL_EINVAL with the service's
 * wording ("1 validation error detected: Value 'FOO' at
 * 'environmentTypeOverride' failed to satisfy constraint: Member must
 * satisfy enum value set: [...]", "2 validation errors detected: ...; ...").
 * store_api_dispatch calls it; the faces call it for the launcher's
 * operations (StartBuild, StopBuild, RetryBuild). */
int store_api_validate(const char *target, const json_t *request, cbl_error **err);

/* The one error -> AWS exception table (the server's and the CLI faces'),
 * for an error code from store_api_dispatch or a StartBuild / StopBuild /
 * RetryBuild launch on target:
 *
 *   code        CodeBuild_20161006.*            Logs_20140328.*
 *   CBL_EINVAL  InvalidInputException           InvalidParameterException
 *   CBL_ESPEC   InvalidInputException           InvalidParameterException
 *   CBL_ENOENT  ResourceNotFoundException       ResourceNotFoundException
 *   CBL_EEXIST  ResourceAlreadyExistsException  ResourceAlreadyExistsException
 *   CBL_ELIMIT  AccountLimitExceededException   InvalidParameterException
 *   other       InternalFailure                 ServiceUnavailableException
 *
 * store_api_error_type gives the "__type" (static string), and
 * store_api_error_status its HTTP status: 400, or 500 for the last row
 * (internal faults only: the clients retry 5xx). */
const char *store_api_error_type(const char *target, int code);
unsigned store_api_error_status(int code);

/* The operation name of a target ("ListProjects"), borrowed from target. */
const char *store_api_operation(const char *target);

#endif
