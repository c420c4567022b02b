/* cli/cmd_reports.c - `list-report-groups`, `batch-get-report-groups`,
 * `list-reports`, `list-reports-for-report-group`, `batch-get-reports`,
 * `describe-test-cases`, `describe-code-coverages`,
 * `get-report-group-trend`: `aws codebuild`'s flags and output.
 *
 * The AWS CLI's --page-size is maxResults here too; pages are merged as the
 * CLI does (--no-paginate: one page and its nextToken).  --max-items and
 * --starting-token (the CLI's own client-side paging) are not offered:
 * --next-token takes a page's nextToken instead, as in list-builds. */
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "store/api.h"
#include "util/array.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"


#define PAGE_ARGS                                                                                  \
	{"page-size", "maxResults", CA_INT, "items per request, 1..100 (default 100); every page is " \
					    "still fetched"},                                     \
	{"next-token", "nextToken", CA_STR, "continue after a page (implies --no-paginate)"}

static const cli_api_arg list_groups_args[] = {
	{"sort-by", "sortBy", CA_STR, "NAME (default) | CREATED_TIME | LAST_MODIFIED_TIME"},
	{"sort-order", "sortOrder", CA_STR, "ASCENDING (default) | DESCENDING"},
	PAGE_ARGS,
};
static const cli_api_cmd list_groups_cmd = {
	"list-report-groups", STORE_TARGET_CODEBUILD "ListReportGroups",
	"Prints {\"reportGroups\": [ARNs]} (aws codebuild list-report-groups).  A buildspec's\n"
	"report group <name> is the group <project>-<name>, created by its first report.",
	list_groups_args, ARRAY_SIZE(list_groups_args), "reportGroups",
};

static const cli_api_arg batch_get_groups_args[] = {
	{"report-group-arns", "reportGroupArns", CA_LIST_STR, "report group ARNs (1 to 100), required"},
};
static const cli_api_cmd batch_get_groups_cmd = {
	"batch-get-report-groups", STORE_TARGET_CODEBUILD "BatchGetReportGroups",
	"Prints {\"reportGroups\": [...], \"reportGroupsNotFound\": [...]}\n"
	"(aws codebuild batch-get-report-groups).",
	batch_get_groups_args, ARRAY_SIZE(batch_get_groups_args), NULL,
};

static const cli_api_arg list_reports_args[] = {
	{"sort-order", "sortOrder", CA_STR, "DESCENDING (default, newest first) | ASCENDING"},
	{"filter", "filter", CA_STRUCT, "status=SUCCEEDED|FAILED|INCOMPLETE|GENERATING|DELETING"},
	PAGE_ARGS,
};
static const cli_api_cmd list_reports_cmd = {
	"list-reports", STORE_TARGET_CODEBUILD "ListReports",
	"Prints {\"reports\": [ARNs]} of every report, by creation time (aws codebuild list-reports).",
	list_reports_args, ARRAY_SIZE(list_reports_args), "reports",
};

static const cli_api_arg list_group_reports_args[] = {
	{"report-group-arn", "reportGroupArn", CA_STR, "the report group's ARN, required"},
	{"sort-order", "sortOrder", CA_STR, "DESCENDING (default, newest first) | ASCENDING"},
	{"filter", "filter", CA_STRUCT, "status=SUCCEEDED|FAILED|INCOMPLETE|GENERATING|DELETING"},
	PAGE_ARGS,
};
static const cli_api_cmd list_group_reports_cmd = {
	"list-reports-for-report-group", STORE_TARGET_CODEBUILD "ListReportsForReportGroup",
	"Prints {\"reports\": [ARNs]} of a report group's reports, by creation time\n"
	"(aws codebuild list-reports-for-report-group).",
	list_group_reports_args, ARRAY_SIZE(list_group_reports_args), "reports",
};

static const cli_api_arg batch_get_reports_args[] = {
	{"report-arns", "reportArns", CA_LIST_STR, "report ARNs (1 to 100), required; a build's are "
						   "its reportArns"},
};
static const cli_api_cmd batch_get_reports_cmd = {
	"batch-get-reports", STORE_TARGET_CODEBUILD "BatchGetReports",
	"Prints {\"reports\": [...], \"reportsNotFound\": [...]} (aws codebuild batch-get-reports):\n"
	"each Report with its testSummary or codeCoverageSummary.",
	batch_get_reports_args, ARRAY_SIZE(batch_get_reports_args), NULL,
};

static const cli_api_arg test_cases_args[] = {
	{"report-arn", "reportArn", CA_STR, "the (TEST) report's ARN, required"},
	{"filter", "filter", CA_STRUCT, "status=SUCCEEDED|FAILED|ERROR|SKIPPED|UNKNOWN,keyword=TEXT "
					"(a substring of the name or prefix)"},
	PAGE_ARGS,
};
static const cli_api_cmd test_cases_cmd = {
	"describe-test-cases", STORE_TARGET_CODEBUILD "DescribeTestCases",
	"Prints {\"testCases\": [...]} of a test report (aws codebuild describe-test-cases):\n"
	"failed cases first, as the report keeps them (at most 500).",
	test_cases_args, ARRAY_SIZE(test_cases_args), "testCases",
};

static const cli_api_arg coverages_args[] = {
	{"report-arn", "reportArn", CA_STR, "the (CODE_COVERAGE) report's ARN, required"},
	{"sort-order", "sortOrder", CA_STR, "ASCENDING (default) | DESCENDING"},
	{"sort-by", "sortBy", CA_STR, "FILE_PATH (default) | LINE_COVERAGE_PERCENTAGE"},
	{"min-line-coverage-percentage", "minLineCoveragePercentage", CA_STR, "only files at or above, 0..100"},
	{"max-line-coverage-percentage", "maxLineCoveragePercentage", CA_STR, "only files at or below, 0..100"},
	PAGE_ARGS,
};

/* The percentages are doubles: the flags' text becomes a number here (the
 * AWS CLI takes the type from the model), then the store checks it. */
static int coverages_dispatch(const char *home, const char *target, json_t *request, json_t **out,
			      cbl_error **err)
{
	static const char *const members[] = {"minLineCoveragePercentage", "maxLineCoveragePercentage"};
	for (size_t i = 0; i < ARRAY_SIZE(members); i++) {
		const char *s = json_string_value(json_object_get(request, members[i]));
		if (!s)
			continue;
		char *end = NULL;
		errno = 0;
		double v = strtod(s, &end);
		if (*s && !*end && !errno)
			json_object_set_new(request, members[i], json_real(v));
	}
	return store_api_dispatch(home, target, request, out, err);
}

static const cli_api_cmd coverages_cmd = {
	"describe-code-coverages", STORE_TARGET_CODEBUILD "DescribeCodeCoverages",
	"Prints {\"codeCoverages\": [...]}, one per source file of a coverage report\n"
	"(aws codebuild describe-code-coverages).",
	coverages_args, ARRAY_SIZE(coverages_args), "codeCoverages", coverages_dispatch,
};

static const cli_api_arg trend_args[] = {
	{"report-group-arn", "reportGroupArn", CA_STR, "the report group's ARN, required"},
	{"num-of-reports", "numOfReports", CA_INT, "the most recent N reports, 1..100 (default 100)"},
	{"trend-field", "trendField", CA_STR,
	 "required: PASS_RATE, DURATION, TOTAL (test reports), LINE_COVERAGE, LINES_COVERED, "
	 "LINES_MISSED, BRANCH_COVERAGE, BRANCHES_COVERED, BRANCHES_MISSED (coverage reports)"},
};
static const cli_api_cmd trend_cmd = {
	"get-report-group-trend", STORE_TARGET_CODEBUILD "GetReportGroupTrend",
	"Prints {\"stats\": {average, max, min}, \"rawData\": [{reportArn, data}]} over a\n"
	"report group's most recent reports (aws codebuild get-report-group-trend).",
	trend_args, ARRAY_SIZE(trend_args), NULL,
};

int cmd_list_report_groups(int argc, char **argv) { return cli_api_run(&list_groups_cmd, argc, argv); }
int cmd_batch_get_report_groups(int argc, char **argv) { return cli_api_run(&batch_get_groups_cmd, argc, argv); }
int cmd_list_reports(int argc, char **argv) { return cli_api_run(&list_reports_cmd, argc, argv); }
int cmd_list_reports_for_report_group(int argc, char **argv)
{
	return cli_api_run(&list_group_reports_cmd, argc, argv);
}
int cmd_batch_get_reports(int argc, char **argv) { return cli_api_run(&batch_get_reports_cmd, argc, argv); }
int cmd_describe_test_cases(int argc, char **argv) { return cli_api_run(&test_cases_cmd, argc, argv); }
int cmd_describe_code_coverages(int argc, char **argv) { return cli_api_run(&coverages_cmd, argc, argv); }
int cmd_get_report_group_trend(int argc, char **argv) { return cli_api_run(&trend_cmd, argc, argv); }

/* ---- report group CRUD (store/reportgroups.c) */

static const cli_api_arg create_group_args[] = {
	{"name", "name", CA_STR, "the report group's name (2 to 128 characters), required"},
	{"type", "type", CA_STR, "TEST | CODE_COVERAGE, required"},
	{"export-config", "exportConfig", CA_STRUCT,
	 "exportConfigType=NO_EXPORT | S3,s3Destination={...} (stored; nothing is exported), required"},
	{"tags", "tags", CA_LIST_STRUCT, "key=K,value=V ..."},
};
static const cli_api_cmd create_group_cmd = {
	"create-report-group", STORE_TARGET_CODEBUILD "CreateReportGroup",
	"Creates a report group (aws codebuild create-report-group): prints {\"reportGroup\": {...}}.\n"
	"A buildspec's reports join it when they name it by ARN, or by <name> when the group\n"
	"is called <project>-<name>.",
	create_group_args, ARRAY_SIZE(create_group_args), NULL,
};

static const cli_api_arg update_group_args[] = {
	{"arn", "arn", CA_STR, "the report group's ARN, required"},
	{"export-config", "exportConfig", CA_STRUCT, "exportConfigType=NO_EXPORT | S3,s3Destination={...}"},
	{"tags", "tags", CA_LIST_STRUCT, "key=K,value=V ... (replace the group's tags)"},
};
static const cli_api_cmd update_group_cmd = {
	"update-report-group", STORE_TARGET_CODEBUILD "UpdateReportGroup",
	"Changes a report group's export configuration or tags (aws codebuild update-report-group).",
	update_group_args, ARRAY_SIZE(update_group_args), NULL,
};

static const cli_api_arg delete_group_args[] = {
	{"arn", "arn", CA_STR, "the report group's ARN, required"},
	{"delete-reports", "deleteReports", CA_BOOL, "delete its reports too (else a group with reports is refused)"},
};
static const cli_api_cmd delete_group_cmd = {
	"delete-report-group", STORE_TARGET_CODEBUILD "DeleteReportGroup",
	"Deletes a report group (aws codebuild delete-report-group).",
	delete_group_args, ARRAY_SIZE(delete_group_args), NULL,
};

static const cli_api_arg delete_report_args[] = {
	{"arn", "arn", CA_STR, "the report's ARN, required"},
};
static const cli_api_cmd delete_report_cmd = {
	"delete-report", STORE_TARGET_CODEBUILD "DeleteReport",
	"Deletes a report, its test cases and coverages (aws codebuild delete-report).",
	delete_report_args, ARRAY_SIZE(delete_report_args), NULL,
};

int cmd_create_report_group(int argc, char **argv) { return cli_api_run(&create_group_cmd, argc, argv); }
int cmd_update_report_group(int argc, char **argv) { return cli_api_run(&update_group_cmd, argc, argv); }
int cmd_delete_report_group(int argc, char **argv) { return cli_api_run(&delete_group_cmd, argc, argv); }
int cmd_delete_report(int argc, char **argv) { return cli_api_run(&delete_report_cmd, argc, argv); }
