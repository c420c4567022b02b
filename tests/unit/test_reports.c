/* Unit tests for artifacts/report*.c: every test and coverage format,
 * malformed input, XML safety, truncation and the API JSON shapes. */
#include "tests/unit/tap.h"
#include "artifacts/report.h"
#include "artifacts/report_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/error.h"
#include "util/fs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FX "tests/fixtures/reports/"

static const artifacts_report_case *find_case(const artifacts_report *rep, const char *name)
{
	for (size_t i = 0; i < rep->ncases; i++)
		if (!strcmp(rep->cases[i].name, name))
			return &rep->cases[i];
	return NULL;
}

static const artifacts_report_coverage *find_cov(const artifacts_report *rep, const char *path)
{
	for (size_t i = 0; i < rep->nfiles; i++)
		if (!strcmp(rep->files[i].path, path))
			return &rep->files[i];
	return NULL;
}

static bool starts_with(const char *s, const char *p)
{
	return s && !strncmp(s, p, strlen(p));
}

static bool near(double a, double b)
{
	return a - b < 1e-6 && b - a < 1e-6;
}

/* Parses one fixture into a fresh report; prints the error if any. */
static int parse(artifacts_report *rep, spec_report_format fmt, const char *name)
{
	cbl_error *err = NULL;
	char *path = cbl_xasprintf(FX "%s", name);
	int rc = artifacts_report_parse_file(rep, fmt, path, name, &err);
	if (rc < 0)
		printf("# parse %s: %s\n", name, err ? err->msg : "?");
	cbl_error_free(err);
	free(path);
	return rc;
}

#define COUNT(rep, st) ((rep)->test.counts[ARTIFACTS_REPORT_##st])

/* ------------------------------------------------------------- JUnit */

static void test_junit_pytest(void)
{
	artifacts_report rep;
	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	is_int(parse(&rep, SPEC_REPORT_JUNITXML, "junit-pytest.xml"), 0, "pytest junit parses");
	is_int(rep.ncases, 5, "pytest: 5 cases");
	ok(COUNT(&rep, SUCCEEDED) == 2 && COUNT(&rep, FAILED) == 1 && COUNT(&rep, ERROR) == 1 &&
		   COUNT(&rep, SKIPPED) == 1 && COUNT(&rep, UNKNOWN) == 0,
	   "pytest: 2 succeeded, 1 failed, 1 error, 1 skipped");
	is_int(rep.test.duration_ns, 18512000, "pytest: duration is the sum of case times in ns");
	is_str(artifacts_report_status_name(&rep), "FAILED", "pytest: report FAILED");

	const artifacts_report_case *c = find_case(&rep, "test_divide_by_zero");
	ok(c != NULL, "pytest: failing case found");
	if (c) {
		is_int(c->status, ARTIFACTS_REPORT_FAILED, "failure child -> FAILED");
		is_str(c->prefix, "tests.test_calc", "classname -> prefix");
		is_str(c->test_suite_name, "pytest", "testsuite name -> testSuiteName");
		is_str(c->file, "tests/test_calc.py", "file attribute kept");
		is_int(c->line, 9, "pytest's 0-based line 8 becomes 1-based 9");
		is_int(c->duration_ns, 2000000, "time=0.002 -> 2 ms");
		ok(starts_with(c->message, "assert 0 == 1\n +  where 0 = divide(1, 0)\ndef test_divide_by_zero():"),
		   "message attribute (with &#10;) then the failure text");
		ok(strstr(c->message, "tests/test_calc.py:10: AssertionError") != NULL, "details kept");
		is_str(c->raw_path, "junit-pytest.xml", "raw_path is the display path");
	}
	c = find_case(&rep, "test_power[2-3-8]");
	ok(c && c->duration_ns == 512000 && c->status == ARTIFACTS_REPORT_SUCCEEDED && !c->message,
	   "parametrized pytest case: 0.000512 s, no message");
	c = find_case(&rep, "test_windows_only");
	ok(c && c->status == ARTIFACTS_REPORT_SKIPPED, "skipped child -> SKIPPED");
	is_str(c ? c->message : NULL, "requires Windows\ntests/test_calc.py:19: requires Windows",
	       "skip reason is the message");
	c = find_case(&rep, "test_query");
	ok(c && c->status == ARTIFACTS_REPORT_ERROR &&
		   starts_with(c->message, "failed on setup with \"ConnectionRefusedError"),
	   "error child -> ERROR with its message");
	artifacts_report_release(&rep);
}

static void test_junit_surefire(void)
{
	artifacts_report rep;
	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	is_int(parse(&rep, SPEC_REPORT_JUNITXML, "TEST-com.example.calc.CalculatorTest.xml"), 0,
	       "surefire junit parses (root <testsuite>)");
	is_int(rep.ncases, 5, "surefire: 5 cases");
	ok(COUNT(&rep, SUCCEEDED) == 2 && COUNT(&rep, FAILED) == 1 && COUNT(&rep, ERROR) == 1 &&
		   COUNT(&rep, SKIPPED) == 1,
	   "surefire: flakyFailure counts as passed");
	is_int(rep.test.duration_ns, 71000000, "surefire: 71 ms");

	const artifacts_report_case *c = find_case(&rep, "dividesEvenly");
	ok(c && c->status == ARTIFACTS_REPORT_FAILED, "dividesEvenly FAILED");
	if (c) {
		ok(starts_with(c->message, "expected: <2> but was: <3>\norg.opentest4j.AssertionFailedError"),
		   "entities decoded, message then CDATA stack");
		is_str(c->file, "CalculatorTest.java", "file from the test class's stack frame");
		is_int(c->line, 27, "line from the test class's stack frame (not the framework's)");
		is_str(c->test_suite_name, "com.example.calc.CalculatorTest", "suite name");
	}
	c = find_case(&rep, "handlesNull");
	ok(c && c->status == ARTIFACTS_REPORT_ERROR && c->line == 34, "error frame of the test class: line 34");
	c = find_case(&rep, "runsOnWindows");
	ok(c && c->status == ARTIFACTS_REPORT_SKIPPED && c->message && !strcmp(c->message, "Disabled on Linux"),
	   "skipped with message");

	/* summary helpers */
	const artifacts_report_case **fails = NULL;
	size_t nf = artifacts_report_failing_cases(&rep, &fails);
	is_int(nf, 2, "two failing cases");
	if (nf == 2) {
		is_str(fails[0]->name, "dividesEvenly", "failing cases in file order");
		char *loc = artifacts_report_case_location(fails[0]);
		is_str(loc, "CalculatorTest.java:27", "location file:line");
		free(loc);
	}
	free(fails);
	cbl_buf b = CBL_BUF_INIT;
	artifacts_report_summary_line(&rep, &b);
	is_str(cbl_buf_cstr(&b), "5 tests: 2 succeeded, 1 failed, 1 error, 1 skipped, 0 unknown (0.071s)",
	       "summary line");
	cbl_buf_release(&b);

	/* a report aggregates many files of one group */
	is_int(parse(&rep, SPEC_REPORT_JUNITXML, "junit-pytest.xml"), 0, "second file appends");
	ok(rep.ncases == 10 && rep.nraw == 2 && rep.test.total == 10 && COUNT(&rep, FAILED) == 2,
	   "two files: 10 cases, summary updated");
	artifacts_report_release(&rep);
}

static void test_junit_nested_and_empty(void)
{
	artifacts_report rep;
	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	is_int(parse(&rep, SPEC_REPORT_JUNITXML, "junit-nested.xml"), 0, "nested testsuites parse");
	is_int(rep.ncases, 3, "nested: 3 cases");
	const artifacts_report_case *c = find_case(&rep, "creates a user");
	ok(c && !strcmp(c->prefix, "api/users") && !strcmp(c->test_suite_name, "api/users"),
	   "no classname: prefix is the innermost suite");
	c = find_case(&rep, "rejects duplicates");
	ok(c && c->status == ARTIFACTS_REPORT_FAILED && starts_with(c->message, "Error: expect(received)"),
	   "failure without message attribute: text is the message");
	c = find_case(&rep, "health check");
	ok(c && !strcmp(c->test_suite_name, "api") && !strcmp(c->prefix, "api"), "outer suite's case");
	is_int(rep.test.duration_ns, 810000000, "nested: 0.81 s");
	artifacts_report_release(&rep);

	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	is_int(parse(&rep, SPEC_REPORT_JUNITXML, "junit-empty.xml"), 0, "empty testsuite parses");
	ok(rep.ncases == 0 && rep.nraw == 1, "empty testsuite: 0 cases");
	is_str(artifacts_report_status_name(&rep), "SUCCEEDED", "no cases: SUCCEEDED");
	json_t *j = artifacts_report_to_json(&rep, NULL);
	is_int(json_integer_value(json_object_get(json_object_get(j, "testSummary"), "total")), 0,
	       "empty: testSummary.total 0");
	json_decref(j);
	artifacts_report_release(&rep);
}

/* ------------------------------------------------------------- errors */

static void test_errors(void)
{
	artifacts_report rep;
	cbl_error *err = NULL;
	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	is_int(parse(&rep, SPEC_REPORT_JUNITXML, "TEST-com.example.calc.CalculatorTest.xml"), 0, "setup");

	int rc = artifacts_report_parse_file(&rep, SPEC_REPORT_JUNITXML, FX "junit-truncated.xml",
					     "reports/junit-truncated.xml", &err);
	is_int(rc, CBL_EINVAL, "truncated XML: CBL_EINVAL");
	ok(err && starts_with(err->msg, "reports/junit-truncated.xml:") && strstr(err->msg, "invalid XML") &&
		   err->line >= 4,
	   "truncated XML: file:line and reason (%s)", err ? err->msg : "");
	ok(rep.ncases == 5 && rep.nraw == 1 && rep.test.total == 5, "report unchanged after a failed file");
	cbl_error_clear(&err);

	rc = artifacts_report_parse_file(&rep, SPEC_REPORT_JUNITXML, FX "testng-results.xml", NULL, &err);
	ok(rc == CBL_EINVAL && err &&
		   strstr(err->msg, "expected root element <testsuites> or <testsuite>, found <testng-results>"),
	   "wrong root names the expected one (%s)", err ? err->msg : "");
	ok(err && err->line == 2 && strstr(err->msg, FX "testng-results.xml:2:"), "wrong root: file:line");
	cbl_error_clear(&err);

	rc = artifacts_report_parse_file(&rep, SPEC_REPORT_JUNITXML, FX "no-such-file.xml", NULL, &err);
	is_int(rc, CBL_ENOENT, "missing file: CBL_ENOENT");
	cbl_error_clear(&err);

	rc = artifacts_report_parse_buffer(&rep, SPEC_REPORT_JUNITXML, "", 0, "empty.xml", &err);
	ok(rc == CBL_EINVAL && err && strstr(err->msg, "empty.xml"), "empty file is an error");
	cbl_error_clear(&err);

	rc = artifacts_report_parse_file(&rep, SPEC_REPORT_COBERTURAXML, FX "cobertura-java.xml", NULL, &err);
	ok(rc == CBL_EINVAL && err && strstr(err->msg, "code coverage format"),
	   "coverage format into a test report is refused");
	cbl_error_clear(&err);
	is_int(rep.ncases, 5, "still unchanged");
	artifacts_report_release(&rep);

	artifacts_report_init(&rep, SPEC_REPORT_NUNIT3XML);
	rc = artifacts_report_parse_file(&rep, SPEC_REPORT_NUNIT3XML, FX "nunit2.xml", NULL, &err);
	ok(rc < 0 && err && strstr(err->msg, "expected root element <test-run>, found <test-results>"),
	   "NUnit 2 file given as NUNIT3XML");
	cbl_error_clear(&err);
	artifacts_report_release(&rep);

	artifacts_report_init(&rep, SPEC_REPORT_CUCUMBERJSON);
	static const char bad_json[] = "[\n  {\"name\": \"F\",\n   \"elements\": [\n}\n";
	rc = artifacts_report_parse_buffer(&rep, SPEC_REPORT_CUCUMBERJSON, bad_json, sizeof(bad_json) - 1,
					   "cucumber.json", &err);
	ok(rc == CBL_EINVAL && err && starts_with(err->msg, "cucumber.json:4: invalid JSON"),
	   "malformed JSON: file:line (%s)", err ? err->msg : "");
	cbl_error_clear(&err);
	rc = artifacts_report_parse_buffer(&rep, SPEC_REPORT_CUCUMBERJSON, "{}", 2, "c.json", &err);
	ok(rc == CBL_EINVAL && err && strstr(err->msg, "expected a JSON array"), "cucumber: object root refused");
	cbl_error_clear(&err);
	artifacts_report_release(&rep);

	artifacts_report_init(&rep, SPEC_REPORT_CLOVERXML);
	rc = artifacts_report_parse_file(&rep, SPEC_REPORT_CLOVERXML, FX "cobertura-coveragepy.xml", NULL, &err);
	ok(rc == CBL_EINVAL && err && strstr(err->msg, "a Cobertura file, not Clover"),
	   "Cobertura given as CLOVERXML is named");
	cbl_error_clear(&err);
	rc = artifacts_report_parse_file(&rep, SPEC_REPORT_JACOCOXML, FX "clover.xml", NULL, &err);
	ok(rc == CBL_EINVAL && err && strstr(err->msg, "expected root element <report>, found <coverage>"),
	   "Clover given as JACOCOXML");
	cbl_error_clear(&err);
	static const char sc_json[] = "{\"timestamp\": 1, \"files\": [{\"filename\": \"a.rb\"}]}";
	rc = artifacts_report_parse_buffer(&rep, SPEC_REPORT_SIMPLECOV, sc_json, sizeof(sc_json) - 1,
					   "coverage.json", &err);
	ok(rc == CBL_EINVAL && err && strstr(err->msg, "not a SimpleCov .resultset.json"),
	   "simplecov-json output is refused with a reason");
	cbl_error_clear(&err);
	ok(rep.nfiles == 0 && rep.nraw == 0, "coverage report untouched by failures");
	artifacts_report_release(&rep);
}

/* ------------------------------------------------------------- safety */

static void test_xml_safety(void)
{
	artifacts_report rep;
	cbl_error *err = NULL;
	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	is_int(parse(&rep, SPEC_REPORT_JUNITXML, "junit-xxe.xml"), 0,
	       "DOCTYPE with external DTD + external entities parses");
	ok(rep.ncases == 1 && rep.cases[0].message && !strstr(rep.cases[0].message, "root:"),
	   "external entity (/etc/passwd) not expanded");
	is_str(rep.ncases ? rep.cases[0].message : NULL, "leak\ncontents:  end", "entity reference dropped");
	artifacts_report_release(&rep);

	/* a listening socket: nothing may connect to it while parsing */
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	bool sock_ok = ls >= 0 && bind(ls, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(ls, 8) == 0 &&
		       getsockname(ls, (struct sockaddr *)&sa, &sl) == 0;
	ok(sock_ok, "listening socket for the no-network check");
	char secret[] = "/tmp/cbl-report-secret-XXXXXX";
	int sfd = mkstemp(secret);
	ok(sfd >= 0 && write(sfd, "SECRET-MARKER-42\n", 17) == 17, "secret file");
	if (sfd >= 0)
		close(sfd);
	int port = ntohs(sa.sin_port);
	char *doc = cbl_xasprintf(
		"<?xml version=\"1.0\"?>\n"
		"<!DOCTYPE testsuite SYSTEM \"http://127.0.0.1:%d/junit.dtd\" [\n"
		"  <!ENTITY secret SYSTEM \"file://%s\">\n"
		"  <!ENTITY net SYSTEM \"http://127.0.0.1:%d/entity.xml\">\n"
		"  <!ENTITY %% pe SYSTEM \"http://127.0.0.1:%d/pe.dtd\">\n"
		"  %%pe;\n"
		"]>\n"
		"<testsuite name=\"s\"><testcase classname=\"c\" name=\"n\">"
		"<failure message=\"m\">a &secret; b &net; c</failure></testcase></testsuite>\n",
		port, secret, port, port);
	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	int rc = artifacts_report_parse_buffer(&rep, SPEC_REPORT_JUNITXML, doc, strlen(doc), "xxe.xml", &err);
	is_int(rc, 0, "XXE document parses");
	ok(rep.ncases == 1 && rep.cases[0].message && !strstr(rep.cases[0].message, "SECRET-MARKER"),
	   "local external entity not read");
	struct sockaddr_in peer;
	socklen_t pl = sizeof(peer);
	int cfd = sock_ok ? accept(ls, (struct sockaddr *)&peer, &pl) : -1;
	ok(sock_ok && cfd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK),
	   "no network connection was attempted (DTD, entity, parameter entity)");
	if (cfd >= 0)
		close(cfd);
	if (ls >= 0)
		close(ls);
	unlink(secret);
	free(doc);
	cbl_error_clear(&err);
	artifacts_report_release(&rep);

	/* billion laughs: refused or bounded, never expanded */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	rc = artifacts_report_parse_file(&rep, SPEC_REPORT_JUNITXML, FX "junit-billion-laughs.xml", NULL, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ok(rc < 0 || (rep.ncases == 1 && (!rep.cases[0].message || strlen(rep.cases[0].message) < 100)),
	   "billion laughs not expanded (%s)", err ? err->msg : "parsed");
	ok((t1.tv_sec - t0.tv_sec) < 5, "billion laughs handled quickly");
	cbl_error_clear(&err);
	artifacts_report_release(&rep);

	/* JaCoCo's DOCTYPE names report.dtd, which does not exist here */
	artifacts_report_init(&rep, SPEC_REPORT_JACOCOXML);
	is_int(parse(&rep, SPEC_REPORT_JACOCOXML, "jacoco.xml"), 0, "JaCoCo with DOCTYPE parses without the DTD");
	artifacts_report_release(&rep);
}

/* ------------------------------------------------------------- other test formats */

static void test_cucumber(void)
{
	artifacts_report rep;
	artifacts_report_init(&rep, SPEC_REPORT_CUCUMBERJSON);
	is_int(parse(&rep, SPEC_REPORT_CUCUMBERJSON, "cucumber.json"), 0, "cucumber json parses");
	is_int(rep.ncases, 5, "cucumber: 5 scenarios (backgrounds are not cases)");
	ok(COUNT(&rep, SUCCEEDED) == 1 && COUNT(&rep, FAILED) == 1 && COUNT(&rep, ERROR) == 1 &&
		   COUNT(&rep, SKIPPED) == 1 && COUNT(&rep, UNKNOWN) == 1,
	   "cucumber: one of each status");
	is_int(rep.test.duration_ns, 5950100, "cucumber: step + hook durations (ns)");
	const artifacts_report_case *c = find_case(&rep, "Add two numbers");
	ok(c && c->status == ARTIFACTS_REPORT_SUCCEEDED && c->duration_ns == 2400000 && !c->message,
	   "passing scenario includes its background's duration");
	ok(c && !strcmp(c->prefix, "Calculator") && !strcmp(c->test_suite_name, "Calculator") &&
		   !strcmp(c->file, "features/calculator.feature") && c->line == 6,
	   "feature name as prefix, uri without file: scheme, scenario line");
	c = find_case(&rep, "Divide by zero");
	ok(c && c->status == ARTIFACTS_REPORT_FAILED && c->line == 14 && c->duration_ns == 3500000,
	   "failed step -> FAILED at the step's line");
	ok(c && starts_with(c->message, "java.lang.ArithmeticException: / by zero"), "error_message");
	c = find_case(&rep, "Export to PDF");
	ok(c && c->status == ARTIFACTS_REPORT_UNKNOWN && c->line == 5, "undefined step -> UNKNOWN");
	is_str(c ? c->message : NULL, "undefined step: When I export it as PDF", "undefined step message");
	c = find_case(&rep, "Print report");
	ok(c && c->status == ARTIFACTS_REPORT_SKIPPED && c->duration_ns == 50000, "all skipped -> SKIPPED");
	c = find_case(&rep, "Email report");
	ok(c && c->status == ARTIFACTS_REPORT_ERROR && strstr(c->message, "AmbiguousStepDefinitionsException"),
	   "ambiguous -> ERROR");
	artifacts_report_release(&rep);
}

static void test_testng(void)
{
	artifacts_report rep;
	artifacts_report_init(&rep, SPEC_REPORT_TESTNGXML);
	is_int(parse(&rep, SPEC_REPORT_TESTNGXML, "testng-results.xml"), 0, "testng parses");
	is_int(rep.ncases, 4, "testng: config methods ignored, 4 cases");
	ok(!find_case(&rep, "setUp") && !find_case(&rep, "tearDown"), "is-config methods are not cases");
	ok(COUNT(&rep, SUCCEEDED) == 2 && COUNT(&rep, FAILED) == 1 && COUNT(&rep, SKIPPED) == 1,
	   "testng: PASS/FAIL/SKIP");
	is_int(rep.test.duration_ns, 19000000, "testng: duration-ms summed");
	ok(find_case(&rep, "testAdd(1, 2, 3)") && find_case(&rep, "testAdd(2, 2, 4)"),
	   "data-provider parameters in the name");
	const artifacts_report_case *c = find_case(&rep, "testDivide");
	ok(c && c->status == ARTIFACTS_REPORT_FAILED && !strcmp(c->prefix, "com.example.calc.CalculatorTest") &&
		   !strcmp(c->test_suite_name, "Calculator Suite"),
	   "class name prefix, suite name");
	ok(c && starts_with(c->message, "expected [2] but found [3]\njava.lang.AssertionError"),
	   "exception message + stack trace");
	ok(c && c->file && !strcmp(c->file, "CalculatorTest.java") && c->line == 41, "file:line from the stack");
	c = find_case(&rep, "testSquareRoot");
	ok(c && c->status == ARTIFACTS_REPORT_SKIPPED && starts_with(c->message, "Not implemented yet"),
	   "SKIP with its SkipException message");
	artifacts_report_release(&rep);
}

static void test_trx(void)
{
	artifacts_report rep;
	artifacts_report_init(&rep, SPEC_REPORT_VISUALSTUDIOTRX);
	is_int(parse(&rep, SPEC_REPORT_VISUALSTUDIOTRX, "results.trx"), 0, "trx parses (default namespace)");
	is_int(rep.ncases, 6, "trx: data-driven parent replaced by its 2 rows");
	ok(COUNT(&rep, SUCCEEDED) == 2 && COUNT(&rep, FAILED) == 3 && COUNT(&rep, SKIPPED) == 1,
	   "trx: Passed/Failed/Timeout/NotExecuted");
	is_int(rep.test.duration_ns, 64016234500LL, "trx: hh:mm:ss.fffffff durations");
	const artifacts_report_case *c = find_case(&rep, "Divides");
	ok(c && !strcmp(c->prefix, "Calc.Tests.CalculatorTests"), "className via testId; class stripped from name");
	ok(c && c->test_suite_name && !strcmp(c->test_suite_name, "Calc.Tests.dll"), "assembly as suite name");
	ok(c && starts_with(c->message, "Assert.Equal() Failure: Values differ\nExpected: 2\nActual:   3\nat "),
	   "ErrorInfo Message + StackTrace");
	ok(c && c->file && !strcmp(c->file, "/codebuild/output/src/Calc.Tests/CalculatorTests.cs") && c->line == 25,
	   "file:line from the .NET frame");
	c = find_case(&rep, "Multiplies (2,2,5)");
	ok(c && c->status == ARTIFACTS_REPORT_FAILED && !strcmp(c->prefix, "Calc.Tests.MsTests") &&
		   c->duration_ns == 1000000000 && c->line == 18,
	   "inner result: assembly-qualified className cut at the comma");
	c = find_case(&rep, "RunsOnWindows");
	ok(c && c->status == ARTIFACTS_REPORT_SKIPPED && c->message && !strcmp(c->message, "Windows only"),
	   "NotExecuted -> SKIPPED");
	c = find_case(&rep, "LongRunning");
	ok(c && c->status == ARTIFACTS_REPORT_FAILED && c->duration_ns == 62500000000LL, "Timeout -> FAILED, 62.5 s");
	artifacts_report_release(&rep);
}

static void test_nunit(void)
{
	artifacts_report rep;
	artifacts_report_init(&rep, SPEC_REPORT_NUNITXML);
	is_int(parse(&rep, SPEC_REPORT_NUNITXML, "nunit2.xml"), 0, "nunit 2 parses");
	is_int(rep.ncases, 5, "nunit2: 5 cases");
	ok(COUNT(&rep, SUCCEEDED) == 2 && COUNT(&rep, FAILED) == 1 && COUNT(&rep, ERROR) == 1 &&
		   COUNT(&rep, SKIPPED) == 1,
	   "nunit2: Success/Failure/Error/Ignored");
	is_int(rep.test.duration_ns, 64000000, "nunit2: time in seconds");
	const artifacts_report_case *c = find_case(&rep, "Divides");
	ok(c && !strcmp(c->prefix, "Calc.Tests.CalculatorTests") && !strcmp(c->test_suite_name, "CalculatorTests"),
	   "qualified name split into prefix + name; fixture is the suite");
	ok(c && starts_with(c->message, "Expected: 2\n  But was:  3\nat Calc.Tests.CalculatorTests.Divides()") &&
		   c->line == 31,
	   "failure message + stack-trace, line 31");
	c = find_case(&rep, "Overflows");
	ok(c && c->status == ARTIFACTS_REPORT_ERROR && c->file && !strcmp(c->file, "/src/Calc/Calculator.cs") &&
		   c->line == 12,
	   "Error -> ERROR, first frame with a file");
	c = find_case(&rep, "Squares(1.5)");
	ok(c && !strcmp(c->prefix, "Calc.Tests.CalculatorTests") && !strcmp(c->test_suite_name, "CalculatorTests"),
	   "parameterized: the dot inside the arguments is not a separator");
	c = find_case(&rep, "Later");
	ok(c && c->status == ARTIFACTS_REPORT_SKIPPED && c->message && !strcmp(c->message, "Not implemented"),
	   "Ignored -> SKIPPED with reason");
	artifacts_report_release(&rep);

	artifacts_report_init(&rep, SPEC_REPORT_NUNIT3XML);
	is_int(parse(&rep, SPEC_REPORT_NUNIT3XML, "nunit3.xml"), 0, "nunit 3 parses");
	is_int(rep.ncases, 6, "nunit3: 6 cases");
	ok(COUNT(&rep, SUCCEEDED) == 2 && COUNT(&rep, FAILED) == 1 && COUNT(&rep, ERROR) == 1 &&
		   COUNT(&rep, SKIPPED) == 2,
	   "nunit3: Passed/Failed/Failed+Error/Skipped/Inconclusive");
	is_int(rep.test.duration_ns, 63345000, "nunit3: duration attribute");
	c = find_case(&rep, "Divides");
	ok(c && !strcmp(c->prefix, "Calc.Tests.CalculatorTests") && c->line == 31 &&
		   starts_with(c->message, "Expected: 2"),
	   "nunit3 failure");
	c = find_case(&rep, "Overflows");
	ok(c && c->status == ARTIFACTS_REPORT_ERROR, "label=Error -> ERROR");
	c = find_case(&rep, "Squares(-2)");
	ok(c && c->status == ARTIFACTS_REPORT_SKIPPED && !strcmp(c->test_suite_name, "CalculatorTests") &&
		   c->message && !strcmp(c->message, "negative input"),
	   "Inconclusive -> SKIPPED; fixture suite, not the parameterized method");
	artifacts_report_release(&rep);
}

/* ------------------------------------------------------------- coverage */

static void test_coverage(void)
{
	artifacts_report rep;
	const artifacts_report_coverage *f;

	artifacts_report_init(&rep, SPEC_REPORT_CLOVERXML);
	ok(rep.type == ARTIFACTS_REPORT_CODE_COVERAGE, "coverage format -> CODE_COVERAGE report");
	is_int(parse(&rep, SPEC_REPORT_CLOVERXML, "clover.xml"), 0, "clover (PHPUnit) parses");
	is_int(rep.nfiles, 2, "clover: files in and outside <package>");
	f = find_cov(&rep, "/codebuild/output/src/src/Calculator.php");
	ok(f && f->lines_covered == 2 && f->lines_missed == 4 && f->branches_covered == 0 && f->branches_missed == 0,
	   "Calculator.php: 2/6 lines");
	f = find_cov(&rep, "/codebuild/output/src/src/Formatter.php");
	ok(f && f->lines_covered == 4 && f->lines_missed == 1 && f->branches_covered == 1 && f->branches_missed == 1,
	   "Formatter.php: cond line truecount/falsecount -> 1/2 branches");
	ok(near(rep.coverage.line_pct, 600.0 / 11) && near(rep.coverage.branch_pct, 50.0),
	   "clover totals: 54.55%% lines, 50%% branches");
	is_str(artifacts_report_status_name(&rep), "SUCCEEDED", "coverage report SUCCEEDED");
	artifacts_report_release(&rep);

	artifacts_report_init(&rep, SPEC_REPORT_CLOVERXML);
	is_int(parse(&rep, SPEC_REPORT_CLOVERXML, "clover-openclover.xml"), 0, "clover (OpenClover) parses");
	f = rep.nfiles == 1 ? &rep.files[0] : NULL;
	ok(f && !strcmp(f->path, "/codebuild/output/src/src/main/java/com/example/calc/Util.java"),
	   "path attribute preferred; <testproject> ignored");
	ok(f && f->lines_covered == 7 && f->lines_missed == 3 && f->branches_covered == 3 && f->branches_missed == 1,
	   "no <line>s: metrics used");
	ok(f && near(artifacts_report_coverage_line_pct(f), 70.0) && near(artifacts_report_coverage_branch_pct(f), 75.0),
	   "per-file percentages");
	artifacts_report_release(&rep);

	artifacts_report_init(&rep, SPEC_REPORT_COBERTURAXML);
	is_int(parse(&rep, SPEC_REPORT_COBERTURAXML, "cobertura-coveragepy.xml"), 0, "cobertura (coverage.py)");
	f = find_cov(&rep, "calc/ops.py");
	ok(f && f->lines_covered == 7 && f->lines_missed == 4 && f->branches_covered == 3 && f->branches_missed == 3,
	   "ops.py: hits and condition-coverage");
	ok(rep.coverage.lines_covered == 8 && rep.coverage.lines_missed == 4 && near(rep.coverage.line_pct, 200.0 / 3),
	   "coverage.py totals: 8/12 = 66.67%%");
	cbl_buf b = CBL_BUF_INIT;
	artifacts_report_summary_line(&rep, &b);
	is_str(cbl_buf_cstr(&b), "line coverage 66.67% (8/12), branch coverage 50.00% (3/6), 2 files",
	       "coverage summary line");
	cbl_buf_release(&b);
	is_int(parse(&rep, SPEC_REPORT_COBERTURAXML, "cobertura-coveragepy.xml"), 0, "same file again");
	ok(rep.nfiles == 2 && rep.coverage.lines_covered == 8 && rep.coverage.lines_missed == 4 &&
		   rep.coverage.branches_covered == 3,
	   "line data merges per line: same file twice counts once");
	artifacts_report_release(&rep);

	artifacts_report_init(&rep, SPEC_REPORT_COBERTURAXML);
	is_int(parse(&rep, SPEC_REPORT_COBERTURAXML, "cobertura-java.xml"), 0, "cobertura (java, DOCTYPE)");
	f = rep.nfiles == 1 ? &rep.files[0] : NULL;
	ok(f && !strcmp(f->path, "com/example/calc/Calculator.java") && f->lines_covered == 5 &&
		   f->lines_missed == 2 && f->branches_covered == 1 && f->branches_missed == 1,
	   "classes of the same filename aggregated");
	artifacts_report_release(&rep);

	artifacts_report_init(&rep, SPEC_REPORT_JACOCOXML);
	is_int(parse(&rep, SPEC_REPORT_JACOCOXML, "jacoco.xml"), 0, "jacoco parses");
	f = find_cov(&rep, "com/example/calc/Calculator.java");
	ok(f && f->lines_covered == 4 && f->lines_missed == 1 && f->branches_covered == 1 && f->branches_missed == 1,
	   "package/sourcefile path; lines from <line nr mi ci mb cb>");
	f = find_cov(&rep, "Main.java");
	ok(f && f->lines_covered == 6 && f->lines_missed == 2 && f->branches_covered == 1 && f->branches_missed == 3,
	   "default package, counters only, inside <group>");
	ok(rep.coverage.lines_covered == 10 && rep.coverage.lines_missed == 3 &&
		   near(rep.coverage.line_pct, 1000.0 / 13) && near(rep.coverage.branch_pct, 100.0 / 3),
	   "jacoco totals");
	is_int(parse(&rep, SPEC_REPORT_JACOCOXML, "jacoco.xml"), 0, "jacoco twice");
	f = find_cov(&rep, "Main.java");
	ok(f && f->lines_covered == 12 && find_cov(&rep, "com/example/calc/Calculator.java")->lines_covered == 4,
	   "counters sum, lines merge (documented)");
	artifacts_report_release(&rep);

	artifacts_report_init(&rep, SPEC_REPORT_SIMPLECOV);
	is_int(parse(&rep, SPEC_REPORT_SIMPLECOV, "simplecov/.resultset.json"), 0, "simplecov .resultset.json");
	f = find_cov(&rep, "/codebuild/output/src/lib/calculator.rb");
	ok(f && f->lines_covered == 6 && f->lines_missed == 1, "two commands merged per line: 6/7");
	ok(f && f->branches_covered == 2 && f->branches_missed == 0, "branches merged per branch: 2/2");
	f = find_cov(&rep, "/codebuild/output/src/lib/formatter.rb");
	ok(f && f->lines_covered == 2 && f->lines_missed == 2 && f->branches_covered + f->branches_missed == 0,
	   "null entries are not lines");
	ok(near(rep.coverage.line_pct, 800.0 / 11) && near(rep.coverage.branch_pct, 100.0), "simplecov totals");
	artifacts_report_release(&rep);

	artifacts_report_init(&rep, SPEC_REPORT_SIMPLECOV);
	is_int(parse(&rep, SPEC_REPORT_SIMPLECOV, "simplecov-0.17.json"), 0, "pre-0.18 simplecov format");
	f = rep.nfiles == 1 ? &rep.files[0] : NULL;
	ok(f && f->lines_covered == 2 && f->lines_missed == 1 && near(artifacts_report_coverage_branch_pct(f), 0.0),
	   "file -> array form; no branches -> 0%%");
	artifacts_report_release(&rep);
}

/* ------------------------------------------------------------- JSON */

/* Member names from shared/reference/models/codebuild.service-2.json. */
static const char *const report_members[] = {"arn", "type", "name", "reportGroupArn", "executionId", "status",
					     "created", "expired", "exportConfig", "truncated", "testSummary",
					     "codeCoverageSummary", NULL};
static const char *const testcase_members[] = {"reportArn", "testRawDataPath", "prefix", "name", "status",
					       "durationInNanoSeconds", "message", "expired", "testSuiteName", NULL};
static const char *const coverage_members[] = {"id", "reportARN", "filePath", "lineCoveragePercentage",
					       "linesCovered", "linesMissed", "branchCoveragePercentage",
					       "branchesCovered", "branchesMissed", "expired", NULL};
static const char *const summary_members[] = {"total", "statusCounts", "durationInNanoSeconds", NULL};
static const char *const covsum_members[] = {"lineCoveragePercentage", "linesCovered", "linesMissed",
					     "branchCoveragePercentage", "branchesCovered", "branchesMissed", NULL};

static bool in_list(const char *const *l, const char *k)
{
	for (; *l; l++)
		if (!strcmp(*l, k))
			return true;
	return false;
}

/* every key of o is a member; with exact, every member is a key */
static bool keys_ok(const json_t *o, const char *const *members, bool exact)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)o, k, v)
		if (!in_list(members, k)) {
			printf("#   unexpected member %s\n", k);
			return false;
		}
	if (exact)
		for (const char *const *m = members; *m; m++)
			if (!json_object_get(o, *m)) {
				printf("#   missing member %s\n", *m);
				return false;
			}
	return true;
}

/* Cross-checks the lists above against the model when it is around. */
static void check_model(void)
{
	static const char *const paths[] = {"../shared/reference/models/codebuild.service-2.json",
					    "/work/shared/reference/models/codebuild.service-2.json", NULL};
	json_t *model = NULL;
	for (size_t i = 0; paths[i] && !model; i++)
		if (access(paths[i], R_OK) == 0)
			model = json_load_file(paths[i], 0, NULL);
	if (!model) {
		ok(1, "# skip: API model not found");
		return;
	}
	json_t *shapes = json_object_get(model, "shapes");
	struct {
		const char *shape;
		const char *const *members;
	} checks[] = {{"Report", report_members},
		      {"TestCase", testcase_members},
		      {"CodeCoverage", coverage_members},
		      {"TestReportSummary", summary_members},
		      {"CodeCoverageReportSummary", covsum_members}};
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		json_t *m = json_object_get(json_object_get(shapes, checks[i].shape), "members");
		size_t n = 0;
		for (const char *const *p = checks[i].members; *p; p++)
			n++;
		ok(m && json_object_size(m) == n && keys_ok(m, checks[i].members, true),
		   "model's %s members are the ones the test checks", checks[i].shape);
	}
	json_decref(model);
}

static void test_json(void)
{
	check_model();

	artifacts_report rep;
	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	parse(&rep, SPEC_REPORT_JUNITXML, "junit-pytest.xml");
	artifacts_report_meta meta = ARTIFACTS_REPORT_META_INIT;
	meta.arn = "arn:aws:codebuild:us-east-1:000000000000:report/demo-unit:0b0b0b0b-1111-2222-3333-444444444444";
	meta.name = "demo-unit";
	meta.report_group_arn = "arn:aws:codebuild:us-east-1:000000000000:report-group/demo-unit";
	meta.execution_id = "arn:aws:codebuild:us-east-1:000000000000:build/demo:1234";
	meta.created_us = 1715684400000000LL;

	json_t *r = artifacts_report_to_json(&rep, &meta);
	ok(keys_ok(r, report_members, false), "Report: only model member names");
	ok(!json_object_get(r, "codeCoverageSummary") && json_object_get(r, "testSummary"),
	   "TEST report has testSummary only");
	is_str(json_string_value(json_object_get(r, "type")), "TEST", "type TEST");
	is_str(json_string_value(json_object_get(r, "status")), "FAILED", "status FAILED");
	ok(json_is_false(json_object_get(r, "truncated")), "not truncated");
	ok(near(json_real_value(json_object_get(r, "expired")) - json_real_value(json_object_get(r, "created")),
		30 * 86400.0),
	   "expires 30 days after created");
	json_t *ts = json_object_get(r, "testSummary");
	ok(keys_ok(ts, summary_members, true), "testSummary members");
	json_t *sc = json_object_get(ts, "statusCounts");
	ok(json_object_size(sc) == 5 && json_integer_value(json_object_get(sc, "FAILED")) == 1 &&
		   json_integer_value(json_object_get(sc, "UNKNOWN")) == 0,
	   "statusCounts has all five keys");
	is_int(json_integer_value(json_object_get(ts, "durationInNanoSeconds")), 18512000, "durationInNanoSeconds");
	is_str(json_string_value(json_object_get(json_object_get(r, "exportConfig"), "exportConfigType")),
	       "NO_EXPORT", "exportConfig NO_EXPORT");
	json_decref(r);

	meta.status = "INCOMPLETE";
	r = artifacts_report_to_json(&rep, &meta);
	is_str(json_string_value(json_object_get(r, "status")), "INCOMPLETE", "status override");
	json_decref(r);
	meta.status = NULL;

	json_t *cases = artifacts_report_test_cases_json(&rep, &meta);
	is_int(json_array_size(cases), 5, "5 TestCase objects");
	bool all_ok = true;
	size_t i;
	json_t *tc;
	json_array_foreach(cases, i, tc) all_ok = all_ok && keys_ok(tc, testcase_members, false);
	ok(all_ok, "TestCase: only model member names");
	tc = json_array_get(cases, 0);
	is_str(json_string_value(json_object_get(tc, "status")), "FAILED", "FAILED cases first");
	ok(json_object_get(tc, "reportArn") && json_object_get(tc, "testRawDataPath") &&
		   json_object_get(tc, "durationInNanoSeconds") && json_object_get(tc, "expired") &&
		   json_object_get(tc, "testSuiteName") && json_object_get(tc, "message"),
	   "failing TestCase carries arn, raw path, duration, expiry, suite, message");
	ok(!json_object_get(json_array_get(cases, 2), "message"), "no message member when there is none");
	json_decref(cases);
	artifacts_report_release(&rep);

	artifacts_report_init(&rep, SPEC_REPORT_COBERTURAXML);
	parse(&rep, SPEC_REPORT_COBERTURAXML, "cobertura-coveragepy.xml");
	r = artifacts_report_to_json(&rep, &meta);
	is_str(json_string_value(json_object_get(r, "type")), "CODE_COVERAGE", "type CODE_COVERAGE");
	is_str(json_string_value(json_object_get(r, "status")), "SUCCEEDED", "coverage report SUCCEEDED");
	json_t *cs = json_object_get(r, "codeCoverageSummary");
	ok(keys_ok(cs, covsum_members, true) && !json_object_get(r, "testSummary"), "codeCoverageSummary members");
	ok(near(json_real_value(json_object_get(cs, "lineCoveragePercentage")), 200.0 / 3) &&
		   json_integer_value(json_object_get(cs, "branchesMissed")) == 3,
	   "codeCoverageSummary values");
	json_decref(r);
	json_t *covs = artifacts_report_coverages_json(&rep, &meta);
	is_int(json_array_size(covs), 2, "2 CodeCoverage objects");
	json_t *c0 = json_array_get(covs, 0);
	ok(keys_ok(c0, coverage_members, true), "CodeCoverage: exactly the model's members");
	is_str(json_string_value(json_object_get(c0, "filePath")), "calc/__init__.py", "sorted by path");
	const char *id = json_string_value(json_object_get(c0, "id"));
	ok(id && strlen(id) == 36 && id[8] == '-' && id[13] == '-', "id is UUID-shaped");
	json_t *covs2 = artifacts_report_coverages_json(&rep, &meta);
	is_str(json_string_value(json_object_get(json_array_get(covs2, 0), "id")), id, "id is stable");
	ok(strcmp(id, json_string_value(json_object_get(json_array_get(covs, 1), "id"))) != 0, "ids differ per file");
	json_decref(covs2);
	json_decref(covs);
	artifacts_report_release(&rep);
}

static void test_truncation(void)
{
	cbl_buf b = CBL_BUF_INIT;
	cbl_buf_puts(&b, "<?xml version=\"1.0\"?>\n<testsuite name=\"big\">\n");
	for (int i = 0; i < 600; i++) {
		cbl_buf_printf(&b, "<testcase classname=\"big.Test\" name=\"case%03d\" time=\"0.001\">", i);
		if (i % 30 == 29)
			cbl_buf_printf(&b, "<failure message=\"boom %d\"/>", i);
		else if (i % 100 == 0 && i)
			cbl_buf_puts(&b, "<error message=\"crash\"/>");
		cbl_buf_puts(&b, "</testcase>\n");
	}
	cbl_buf_puts(&b, "</testsuite>\n");
	artifacts_report rep;
	cbl_error *err = NULL;
	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	is_int(artifacts_report_parse_buffer(&rep, SPEC_REPORT_JUNITXML, b.ptr, b.len, "big.xml", &err), 0,
	       "600-case report parses");
	cbl_buf_release(&b);
	ok(rep.ncases == 600 && COUNT(&rep, FAILED) == 20 && COUNT(&rep, ERROR) == 5, "600 cases, 20 failed, 5 errors");
	ok(artifacts_report_truncated(&rep), "more than 500: truncated");
	json_t *r = artifacts_report_to_json(&rep, NULL);
	ok(json_is_true(json_object_get(r, "truncated")), "Report.truncated true");
	is_int(json_integer_value(json_object_get(json_object_get(r, "testSummary"), "total")), 600,
	       "testSummary.total counts truncated cases");
	json_decref(r);
	json_t *cases = artifacts_report_test_cases_json(&rep, NULL);
	is_int(json_array_size(cases), 500, "500 TestCase objects kept");
	bool failed_first = true, errors_next = true, rest_ok = true;
	for (size_t i = 0; i < json_array_size(cases); i++) {
		const char *st = json_string_value(json_object_get(json_array_get(cases, i), "status"));
		if (i < 20)
			failed_first = failed_first && !strcmp(st, "FAILED");
		else if (i < 25)
			errors_next = errors_next && !strcmp(st, "ERROR");
		else
			rest_ok = rest_ok && !strcmp(st, "SUCCEEDED");
	}
	ok(failed_first, "the 20 FAILED cases come first");
	ok(errors_next && rest_ok, "then ERROR, then the passing ones");
	is_str(json_string_value(json_object_get(json_array_get(cases, 0), "name")), "case029",
	       "failed cases keep file order");
	is_str(json_string_value(json_object_get(json_array_get(cases, 25), "name")), "case000",
	       "passing cases keep file order");
	json_decref(cases);
	size_t *idx = NULL;
	size_t n = artifacts_report_select_cases(&rep, 10, &idx);
	ok(n == 10 && rep.cases[idx[0]].status == ARTIFACTS_REPORT_FAILED &&
		   rep.cases[idx[9]].status == ARTIFACTS_REPORT_FAILED,
	   "select_cases with a smaller limit");
	free(idx);
	cbl_error_free(err);
	artifacts_report_release(&rep);

	/* only skipped cases do not fail a report */
	static const char skipped[] = "<testsuite><testcase name=\"a\"><skipped/></testcase></testsuite>";
	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	artifacts_report_parse_buffer(&rep, SPEC_REPORT_JUNITXML, skipped, sizeof(skipped) - 1, "s.xml", NULL);
	is_str(artifacts_report_status_name(&rep), "SUCCEEDED", "skipped cases do not fail the report");
	artifacts_report_release(&rep);
}

static void test_numbers(void)
{
	is_int(artifacts_report_parse_seconds_ns("0.001"), 1000000, "0.001 s");
	is_int(artifacts_report_parse_seconds_ns("1,204.5"), 1204500000000LL, "surefire grouping comma");
	is_int(artifacts_report_parse_seconds_ns("0.0000000015"), 2, "rounds the 10th digit");
	is_int(artifacts_report_parse_seconds_ns("1e-3"), 1000000, "exponent");
	ok(artifacts_report_parse_seconds_ns("-1") == 0 && artifacts_report_parse_seconds_ns("abc") == 0 &&
		   artifacts_report_parse_seconds_ns(NULL) == 0,
	   "negative / garbage / absent -> 0");
	is_int(artifacts_report_parse_ms_ns("12.5"), 12500000, "12.5 ms");
	is_int(artifacts_report_parse_timespan_ns("00:00:00.0012345"), 1234500, "TimeSpan 7 digits");
	is_int(artifacts_report_parse_timespan_ns("1.02:03:04.5"), 93784500000000LL, "TimeSpan with days");
	char *file = NULL;
	int line = 0;
	ok(artifacts_report_stack_location("   at A.B() in C:\\src\\a.cs:line 7\n", NULL, &file, &line) &&
		   file && !strcmp(file, "C:\\src\\a.cs") && line == 7,
	   "Windows .NET frame");
	free(file);
}

int main(void)
{
	test_numbers();
	test_junit_pytest();
	test_junit_surefire();
	test_junit_nested_and_empty();
	test_errors();
	test_xml_safety();
	test_cucumber();
	test_testng();
	test_trx();
	test_nunit();
	test_coverage();
	test_json();
	test_truncation();
	return tap_done();
}
