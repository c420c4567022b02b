/* store/api.c - the dispatcher of the data operations (store/api.h). */
#include "store/api.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/array.h"

#include <stdlib.h>
#include <string.h>

#include "util/banned.h"


static const struct {
	const char *target;
	store_op_fn fn;
} ops[] = {
	{STORE_TARGET_CODEBUILD "CreateProject", store_op_create_project},
	{STORE_TARGET_CODEBUILD "UpdateProject", store_op_update_project},
	{STORE_TARGET_CODEBUILD "DeleteProject", store_op_delete_project},
	{STORE_TARGET_CODEBUILD "BatchGetProjects", store_op_batch_get_projects},
	{STORE_TARGET_CODEBUILD "ListProjects", store_op_list_projects},
	{STORE_TARGET_CODEBUILD "BatchGetBuilds", store_op_batch_get_builds},
	{STORE_TARGET_CODEBUILD "ListBuilds", store_op_list_builds},
	{STORE_TARGET_CODEBUILD "ListBuildsForProject", store_op_list_builds_for_project},
	{STORE_TARGET_CODEBUILD "BatchDeleteBuilds", store_op_batch_delete_builds},
	{STORE_TARGET_CODEBUILD "ListReportGroups", store_op_list_report_groups},
	{STORE_TARGET_CODEBUILD "BatchGetReportGroups", store_op_batch_get_report_groups},
	{STORE_TARGET_CODEBUILD "ListReports", store_op_list_reports},
	{STORE_TARGET_CODEBUILD "ListReportsForReportGroup", store_op_list_reports_for_report_group},
	{STORE_TARGET_CODEBUILD "BatchGetReports", store_op_batch_get_reports},
	{STORE_TARGET_CODEBUILD "DescribeTestCases", store_op_describe_test_cases},
	{STORE_TARGET_CODEBUILD "DescribeCodeCoverages", store_op_describe_code_coverages},
	{STORE_TARGET_CODEBUILD "GetReportGroupTrend", store_op_get_report_group_trend},
	{STORE_TARGET_CODEBUILD "CreateReportGroup", store_op_create_report_group},
	{STORE_TARGET_CODEBUILD "UpdateReportGroup", store_op_update_report_group},
	{STORE_TARGET_CODEBUILD "DeleteReportGroup", store_op_delete_report_group},
	{STORE_TARGET_CODEBUILD "DeleteReport", store_op_delete_report},
	{STORE_TARGET_CODEBUILD "CreateWebhook", store_op_create_webhook},
	{STORE_TARGET_CODEBUILD "UpdateWebhook", store_op_update_webhook},
	{STORE_TARGET_CODEBUILD "DeleteWebhook", store_op_delete_webhook},
	{STORE_TARGET_CODEBUILD "ImportSourceCredentials", store_op_import_source_credentials},
	{STORE_TARGET_CODEBUILD "ListSourceCredentials", store_op_list_source_credentials},
	{STORE_TARGET_CODEBUILD "DeleteSourceCredentials", store_op_delete_source_credentials},
	{STORE_TARGET_CODEBUILD "BatchGetBuildBatches", store_op_batch_get_build_batches},
	{STORE_TARGET_CODEBUILD "ListBuildBatches", store_op_list_build_batches},
	{STORE_TARGET_CODEBUILD "ListBuildBatchesForProject", store_op_list_build_batches_for_project},
	{STORE_TARGET_CODEBUILD "DeleteBuildBatch", store_op_delete_build_batch},
	{STORE_TARGET_LOGS "GetLogEvents", store_op_get_log_events},
	{STORE_TARGET_LOGS "FilterLogEvents", store_op_filter_log_events},
	{STORE_TARGET_LOGS "DescribeLogStreams", store_op_describe_log_streams},
	{STORE_TARGET_LOGS "DescribeLogGroups", store_op_describe_log_groups},
	{STORE_TARGET_CLOUDWATCH "GetMetricStatistics", store_op_get_metric_statistics},
	{STORE_TARGET_CLOUDWATCH "GetMetricData", store_op_get_metric_data},
	{STORE_TARGET_CLOUDWATCH "ListMetrics", store_op_list_metrics},
	{STORE_TARGET_CLOUDWATCH "PutMetricAlarm", store_op_put_metric_alarm},
	{STORE_TARGET_CLOUDWATCH "DescribeAlarms", store_op_describe_alarms},
	{STORE_TARGET_CLOUDWATCH "DeleteAlarms", store_op_delete_alarms},
	{STORE_TARGET_CLOUDWATCH "SetAlarmState", store_op_set_alarm_state},
};

static store_op_fn find(const char *target)
{
	if (!target)
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
		if (!strcmp(ops[i].target, target))
			return ops[i].fn;
	return NULL;
}

bool store_api_known(const char *target) { return find(target) != NULL; }

const char *store_api_operation(const char *target)
{
	const char *dot = target ? strrchr(target, '.') : NULL;
	return dot ? dot + 1 : target ? target : "";
}

/* The one error -> AWS exception table, for the server and the CLI faces.
 * Per the service models (../shared/reference/models): every CodeBuild
 * operation may answer InvalidInputException, the creating ones
 * ResourceAlreadyExistsException / AccountLimitExceededException;
 * GetLogEvents only InvalidParameterException, ResourceNotFoundException
 * and the fault ServiceUnavailableException, so on Logs a limit is an
 * invalid parameter (LimitExceededException would be retried by the
 * clients) and an internal failure is ServiceUnavailableException.  A bad
 * buildspec (CBL_ESPEC) is bad input.  Everything but an internal fault is
 * HTTP 400: the clients retry 5xx. */
static const struct {
	int code;
	const char *codebuild;
	const char *logs;
} error_types[] = {
	{CBL_EINVAL, "InvalidInputException", "InvalidParameterException"},
	{CBL_ESPEC, "InvalidInputException", "InvalidParameterException"},
	{CBL_ENOENT, "ResourceNotFoundException", "ResourceNotFoundException"},
	{CBL_EEXIST, "ResourceAlreadyExistsException", "ResourceAlreadyExistsException"},
	{CBL_ELIMIT, "AccountLimitExceededException", "InvalidParameterException"},
};

static bool is_logs(const char *target)
{
	return target && !strncmp(target, STORE_TARGET_LOGS, strlen(STORE_TARGET_LOGS));
}

const char *store_api_error_type(const char *target, int code)
{
	/* CloudWatch's query-protocol codes (its JSON protocol keeps them) */
	if (target && !strncmp(target, STORE_TARGET_CLOUDWATCH, strlen(STORE_TARGET_CLOUDWATCH)))
		return code == CBL_EINVAL || code == CBL_ESPEC ? "InvalidParameterValue"
		       : code == CBL_ENOENT		      ? "ResourceNotFound"
		       : code == CBL_ELIMIT		      ? "LimitExceeded"
							      : "InternalServiceFault";
	for (size_t i = 0; i < ARRAY_SIZE(error_types); i++)
		if (error_types[i].code == code)
			return is_logs(target) ? error_types[i].logs : error_types[i].codebuild;
	return is_logs(target) ? "ServiceUnavailableException" : "InternalFailure";
}

unsigned store_api_error_status(int code)
{
	for (size_t i = 0; i < ARRAY_SIZE(error_types); i++)
		if (error_types[i].code == code)
			return 400;
	return 500;
}

static bool token_ok(const char *s, const char *chars, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	return n > 0 && n <= max && strspn(s, chars) == n;
}

int store_api_dispatch(const char *home, const char *target, json_t *request, json_t **out,
		       cbl_error **err)
{
	return store_api_dispatch_as(home, target, request, NULL, NULL, out, err);
}

int store_api_dispatch_as(const char *home, const char *target, json_t *request, const char *region,
			  const char *account, json_t **out, cbl_error **err)
{
	store_op_fn fn = find(target);
	if (!fn)
		return cbl_error_set(err, CBL_EINVAL, "Unknown operation %s", target ? target : "(none)");
	json_t *empty = NULL;
	if (!request)
		request = empty = json_object();
	if (!json_is_object(request)) {
		json_decref(empty);
		return cbl_error_set(err, CBL_EINVAL, "The request body must be a JSON object");
	}
	int vrc = store_api_validate(target, request, err);
	if (vrc) {
		json_decref(empty);
		return vrc;
	}
	store_db *h = NULL;
	int rc = store_db_acquire(home, &h, err);
	if (!rc) {
		json_t *res = NULL;
		h->caller_region = token_ok(region, "abcdefghijklmnopqrstuvwxyz0123456789-", 32) ? region : NULL;
		h->caller_account = token_ok(account, "0123456789", 12) ? account : NULL;
		rc = fn(h, request, &res, err);
		h->caller_region = h->caller_account = NULL;
		store_db_release(h);
		if (!rc)
			*out = res;
		else
			json_decref(res);
	}
	json_decref(empty);
	return rc < 0 ? rc : 0;
}

int store_api_dispatch_text(const char *home, const char *target, json_t *request, char **out,
			    size_t *len, cbl_error **err)
{
	if (!target || strcmp(target, STORE_TARGET_CODEBUILD "BatchGetBuilds") || !json_is_object(request)) {
		json_t *res = NULL;
		int rc = store_api_dispatch(home, target, request, &res, err);
		if (rc)
			return rc;
		char *s = json_dumps(res, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
		json_decref(res);
		if (!s)
			return cbl_error_set(err, CBL_EINTERNAL, "cannot serialize the response");
		*len = strlen(s);
		*out = s;
		return 0;
	}
	store_db *h = NULL;
	cbl_buf b = CBL_BUF_INIT;
	int rc = store_api_validate(target, request, err);
	if (!rc)
		rc = store_db_acquire(home, &h, err);
	if (rc)
		return rc;
	rc = store_op_batch_get_builds_text(h, request, &b, err);
	store_db_release(h);
	if (rc) {
		cbl_buf_release(&b);
		return rc;
	}
	*len = b.len;
	*out = cbl_buf_detach(&b);
	return 0;
}
