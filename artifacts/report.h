/* artifacts/report.h - test reports and code-coverage reports.
 *
 * A buildspec `reports:` group names files in one `file-format`.  Each file is
 * parsed by artifacts_report_parse_file() into one artifacts_report (a report
 * aggregates every file of its group), which then renders the CodeBuild API
 * shapes `Report`, `TestCase` and `CodeCoverage`
 * (shared/reference/models/codebuild.service-2.json) and a summary for the CLI.
 *
 * Formats (spec_report_format):
 *   test:     JUNITXML, CUCUMBERJSON, TESTNGXML, VISUALSTUDIOTRX, NUNITXML
 *             (NUnit 2), NUNIT3XML
 *   coverage: CLOVERXML, COBERTURAXML, JACOCOXML, SIMPLECOV (simplecov's own
 *             `.resultset.json`, not simplecov-json)
 *
 * Streaming: the XML formats are read in one pass of libxml2's SAX2 push
 * parser, in chunks, without building a tree and without a file size limit;
 * memory depends on the cases retained (below), not on the file.  Text that
 * no field needs (<system-out>, <system-err>, <StdOut>, of any size) is
 * skipped unread; text that is needed (a failure's stack trace) is read up to
 * ARTIFACTS_REPORT_MAX_MESSAGE bytes.  The JSON formats (CUCUMBERJSON,
 * SIMPLECOV) are loaded whole and limited to 64 MiB.
 *
 * XML safety: files are parsed with libxml2 without network access
 * (XML_PARSE_NONET), without loading external DTDs (JaCoCo's DOCTYPE is never
 * fetched), without substituting entities (no XML_PARSE_NOENT) and with
 * libxml2's default size/depth limits (no XML_PARSE_HUGE; text and CDATA of
 * any length are fine, an attribute value or a comment above 10 MB is not).
 * Text is read from text and CDATA only: references to entities declared in
 * a DTD are dropped, never expanded (no XXE, no billion laughs).  The
 * predefined entities (&lt; ...) and character references are ordinary text.
 *
 * Retention: a TEST report counts every case in its summary (test.total,
 * test.counts, test.duration_ns) but keeps at most ARTIFACTS_REPORT_MAX_CASES
 * of them in cases[]: exactly the ones the stored report shows, i.e. the
 * first cases in this order: FAILED, then ERROR, then UNKNOWN, then the rest
 * (SUCCEEDED and SKIPPED together), each group in file order (files in parse
 * order).  Cases are decided as they are parsed: one that cannot make the
 * cut is counted and dropped without its strings being built, and a
 * retained case is evicted (the last one of the worst group) when a better
 * one arrives.  So a 1,000,000-case file costs 500 cases of memory, and
 * cases[], artifacts_report_select_cases() and the TestCase JSON are what
 * they would be if every case had been kept.  A report that counted more
 * than ARTIFACTS_REPORT_MAX_CASES cases is truncated.
 *
 * Ownership: artifacts_report is a transparent value owned by the caller:
 * artifacts_report_init() before use, artifacts_report_release() after.
 * Every string inside is owned by the report.  JSON values returned are new
 * references (json_decref).  Pointers handed out by the summary helpers are
 * borrowed from the report and live until it is released or parsed into.
 *
 * Errors: CBL_EINVAL for a malformed or unexpected file (the message names
 * the file and, for XML and JSON syntax errors, its line; err->file/line are
 * set too), CBL_ENOENT / CBL_EIO when it cannot be read.  On error the report
 * is unchanged: a file is parsed into a scratch report and merged only when
 * it parsed completely.
 *
 * Thread safety: functions are reentrant; distinct reports may be used from
 * distinct threads.  libxml2 is initialised once (pthread_once) and never
 * cleaned up here (xmlCleanupParser is the program's business); while a
 * file is parsed, the calling thread's libxml2 error handlers (thread-local)
 * are replaced by silent ones and restored afterwards.
 */
#ifndef ARTIFACTS_REPORT_H
#define ARTIFACTS_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spec/spec.h"
#include "util/buf.h"
#include "util/error.h"

/* CodeBuild keeps at most this many test cases per report (reference §6.1);
 * so does artifacts_report (see Retention above). */
#define ARTIFACTS_REPORT_MAX_CASES 500

/* TestCase.message is cut to this many bytes (at a UTF-8 character
 * boundary): a message, then as much of the details as fits. */
#define ARTIFACTS_REPORT_MAX_MESSAGE (64 * 1024)

/* Reports expire 30 days after they are created. */
#define ARTIFACTS_REPORT_EXPIRY_US (30LL * 24 * 3600 * 1000000)

typedef enum artifacts_report_type {
	ARTIFACTS_REPORT_TEST = 0,
	ARTIFACTS_REPORT_CODE_COVERAGE,
} artifacts_report_type;

/* TestCase.status values, in the API's spelling order. */
typedef enum artifacts_report_test_status {
	ARTIFACTS_REPORT_SUCCEEDED = 0,
	ARTIFACTS_REPORT_FAILED,
	ARTIFACTS_REPORT_ERROR,
	ARTIFACTS_REPORT_SKIPPED,
	ARTIFACTS_REPORT_UNKNOWN,
	ARTIFACTS_REPORT_STATUS_COUNT
} artifacts_report_test_status;

/* "SUCCEEDED", "FAILED", "ERROR", "SKIPPED", "UNKNOWN" ("?" out of range). */
const char *artifacts_report_test_status_name(artifacts_report_test_status s);

typedef struct artifacts_report_case {
	char *prefix;	       /* class name / feature name (see the format notes); never NULL, may be "" */
	char *name;	       /* test name; never NULL, may be "" */
	char *test_suite_name; /* enclosing suite; NULL when the format has none */
	artifacts_report_test_status status;
	int64_t duration_ns; /* >= 0 */
	char *message;	     /* failure/error/skip message and details (at most
			      * ARTIFACTS_REPORT_MAX_MESSAGE bytes); NULL if none */
	char *file;	     /* source file when the format records one; else NULL */
	int line;	     /* 1-based source line; 0 = unknown */
	char *raw_path;	     /* the report file it came from (display path); never NULL */
} artifacts_report_case;

typedef struct artifacts_report_coverage {
	char *path; /* source file as the format names it; never NULL */
	int64_t lines_covered;
	int64_t lines_missed;
	int64_t branches_covered;
	int64_t branches_missed;
	struct artifacts_report_covpriv *priv; /* internal: per-line data for merging */
} artifacts_report_coverage;

typedef struct artifacts_report_test_summary {
	size_t total;				      /* every case, dropped ones included */
	size_t counts[ARTIFACTS_REPORT_STATUS_COUNT]; /* by artifacts_report_test_status */
	int64_t duration_ns;			      /* sum of the cases' durations */
} artifacts_report_test_summary;

typedef struct artifacts_report_coverage_summary {
	int64_t lines_covered, lines_missed;
	int64_t branches_covered, branches_missed;
	double line_pct;   /* covered / (covered + missed) * 100; 0 when there are no lines */
	double branch_pct; /* same over branches; 0 when there are no branches */
} artifacts_report_coverage_summary;

typedef struct artifacts_report {
	artifacts_report_type type;
	spec_report_format format;    /* format given to init */
	artifacts_report_case *cases; /* TEST: the retained cases (at most
				       * ARTIFACTS_REPORT_MAX_CASES, see Retention),
				       * in file order, files in parse order */
	size_t ncases, cases_cap;
	artifacts_report_coverage *files; /* CODE_COVERAGE: one entry per source path */
	size_t nfiles, files_cap;
	size_t nraw;				    /* report files parsed successfully */
	/* What parse_file noticed about files that did parse but may not have
	 * been read as their tool meant (a coverage file whose own totals count
	 * lines of which none could be read, a JUnit file whose totals count
	 * tests but that has no <testcase>): "<display path>: <message>", in
	 * parse order.  The report keeps them; the caller shows them. */
	char **warnings;
	size_t nwarnings, warnings_cap;
	artifacts_report_test_summary test;	    /* every case parsed; kept up to date by parse_file */
	artifacts_report_coverage_summary coverage; /* kept up to date by parse_file */
} artifacts_report;

/* Sets up an empty report whose type follows fmt (coverage formats make a
 * CODE_COVERAGE report).  Cannot fail. */
void artifacts_report_init(artifacts_report *rep, spec_report_format fmt);
/* Frees everything inside; rep may be re-initialised afterwards. */
void artifacts_report_release(artifacts_report *rep);

/* Parses one report file and adds its cases (TEST: counted, retained as
 * described above) or per-file coverage (CODE_COVERAGE) to rep.  XML files
 * are streamed (no size limit); JSON files may not exceed 64 MiB.
 * display_path (NULL = path) is what messages and TestCase.testRawDataPath
 * show, e.g. the path relative to the source dir.  fmt must be of rep's
 * type (CBL_EINVAL otherwise).
 *
 * Coverage of a source path already in rep (from an earlier file, or another
 * <class> of the same Cobertura file) is added to the existing entry: line
 * counts are merged per line number where the format lists lines (Clover,
 * Cobertura, JaCoCo <line>s, SimpleCov: a line is covered if any file covered
 * it, the larger branch counts win), and summed where it has only counters
 * (JaCoCo counters without lines, Clover <metrics>).
 *
 * Errors as described above; rep is unchanged on error. */
int artifacts_report_parse_file(artifacts_report *rep, spec_report_format fmt, const char *path,
				const char *display_path, cbl_error **err);

/* Same over an open file (a regular file the caller checked, e.g. with
 * artifacts_entry_open: the runner never opens a build's report by path);
 * fd is read from its offset and not closed. */
int artifacts_report_parse_fd(artifacts_report *rep, spec_report_format fmt, int fd, const char *display_path,
			      cbl_error **err);

/* Same over an in-memory document (tests, fuzzing); display_path names it. */
int artifacts_report_parse_buffer(artifacts_report *rep, spec_report_format fmt, const char *data, size_t len,
				  const char *display_path, cbl_error **err);

/* "SUCCEEDED" or "FAILED": a TEST report is SUCCEEDED when no case is FAILED,
 * ERROR or UNKNOWN (SKIPPED cases do not fail it; no cases at all is
 * SUCCEEDED), judged on the counts of all cases; a CODE_COVERAGE report is
 * always SUCCEEDED. */
const char *artifacts_report_status_name(const artifacts_report *rep);

/* True when the report counted more than ARTIFACTS_REPORT_MAX_CASES cases
 * (test.total), i.e. when some were dropped. */
bool artifacts_report_truncated(const artifacts_report *rep);

/* Picks the cases a stored report keeps: at most max (0 = the CodeBuild
 * limit), FAILED first, then ERROR, then UNKNOWN, then the rest, each group in
 * file order, among the retained cases (so a max above
 * ARTIFACTS_REPORT_MAX_CASES gives no more than it).  Writes indexes into
 * rep->cases to *out (caller frees, NULL when none) and returns their
 * number. */
size_t artifacts_report_select_cases(const artifacts_report *rep, size_t max, size_t **out);

/* Who/when a rendered report belongs to; all strings borrowed, NULL = omit. */
typedef struct artifacts_report_meta {
	const char *arn;	      /* Report.arn, TestCase.reportArn, CodeCoverage.reportARN */
	const char *name;	      /* Report.name: the report group name */
	const char *report_group_arn; /* Report.reportGroupArn */
	const char *execution_id;     /* Report.executionId: the build ARN */
	int64_t created_us;	      /* Report.created, µs since the epoch; expired = +30 days */
	const char *status;	      /* NULL = artifacts_report_status_name(); e.g. "FAILED" or
	                               * "INCOMPLETE" when a file could not be parsed */
} artifacts_report_meta;

#define ARTIFACTS_REPORT_META_INIT {NULL, NULL, NULL, NULL, 0, NULL}

/* The API's `Report`: arn, type, name, reportGroupArn, executionId, status,
 * created, expired, exportConfig {exportConfigType: NO_EXPORT}, truncated,
 * and testSummary {total, statusCounts (all five keys), durationInNanoSeconds}
 * for TEST or codeCoverageSummary {lineCoveragePercentage, linesCovered,
 * linesMissed, branchCoveragePercentage, branchesCovered, branchesMissed} for
 * CODE_COVERAGE.  Timestamps are epoch seconds (JSON numbers), as the JSON 1.1
 * protocol sends them.  Never NULL. */
json_t *artifacts_report_to_json(const artifacts_report *rep, const artifacts_report_meta *meta);

/* A JSON array of `TestCase` (reportArn, testRawDataPath, prefix, name,
 * status, durationInNanoSeconds, message, expired, testSuiteName) for the
 * cases artifacts_report_select_cases(rep, 0) keeps, in that order.  message
 * and testSuiteName are omitted when NULL.  Never NULL ([] for coverage). */
json_t *artifacts_report_test_cases_json(const artifacts_report *rep, const artifacts_report_meta *meta);

/* A JSON array of `CodeCoverage` (id, reportARN, filePath, the six numbers,
 * expired), one per source path, sorted by path.  id is a UUID-shaped hash of
 * the report ARN and the path (stable across calls).  Never NULL. */
json_t *artifacts_report_coverages_json(const artifacts_report *rep, const artifacts_report_meta *meta);

/* Line and branch percentages of one file (0 when it has no lines/branches). */
double artifacts_report_coverage_line_pct(const artifacts_report_coverage *c);
double artifacts_report_coverage_branch_pct(const artifacts_report_coverage *c);

/* For the CLI: the retained cases that are not SUCCEEDED or SKIPPED, in
 * file order (all of them unless more than ARTIFACTS_REPORT_MAX_CASES cases
 * failed; test.counts has the full numbers).  *out is a caller-freed array
 * of pointers borrowed from rep (NULL when none); returns the count. */
size_t artifacts_report_failing_cases(const artifacts_report *rep, const artifacts_report_case ***out);

/* "file:line", "file", or NULL when the case has no source position.  Caller
 * frees. */
char *artifacts_report_case_location(const artifacts_report_case *c);

/* Appends a one-line summary to out, e.g.
 *   "12 tests: 9 succeeded, 2 failed, 0 errors, 1 skipped, 0 unknown (1.234s)"
 *   "line coverage 83.33% (10/12), branch coverage 50.00% (1/2), 3 files" */
void artifacts_report_summary_line(const artifacts_report *rep, cbl_buf *out);

#endif
