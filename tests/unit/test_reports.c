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
	const char *shared = tap_shared();
	if (!shared) {
		skip("API model: no ../shared here (CBL_SHARED)");
		return;
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/reference/models/codebuild.service-2.json", shared);
	json_t *model = json_load_file(path, 0, NULL);
	if (!model) {
		ok(0, "API model %s loads", path);
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

/* Parses an inline document into rep; the error, if any, is printed. */
static int parse_str(artifacts_report *rep, spec_report_format fmt, const char *doc, const char *name)
{
	cbl_error *err = NULL;
	int rc = artifacts_report_parse_buffer(rep, fmt, doc, strlen(doc), name, &err);
	if (rc < 0)
		printf("# parse %s: %s\n", name, err ? err->msg : "?");
	cbl_error_free(err);
	return rc;
}

/* Layouts Istanbul (nyc, jest, c8) writes besides the usual one: with the
 * "nested" summarizer Cobertura <package>s nest inside <classes> and Clover
 * <package>s inside <package>s; a directory with no files of its own makes
 * Istanbul's Clover writer close <project> early, so later <package>s sit
 * directly under <coverage>.  The shapes are those istanbul-reports 3.2.0
 * wrote for a four-file project; the numbers are made up. */
static void test_coverage_layouts(void)
{
	artifacts_report rep;
	const artifacts_report_coverage *f;
	static const char cob_nested[] =
		"<?xml version=\"1.0\" ?>\n"
		"<!DOCTYPE coverage SYSTEM \"http://cobertura.sourceforge.net/xml/coverage-04.dtd\">\n"
		"<coverage lines-valid=\"7\" lines-covered=\"4\" branches-valid=\"2\" branches-covered=\"1\">\n"
		" <sources><source>/src</source></sources>\n"
		" <packages><package name=\"main\"><classes>\n"
		"  <class name=\"index.js\" filename=\"index.js\">\n"
		"   <methods><method name=\"main\" hits=\"0\" signature=\"()V\"><lines><line number=\"1\" hits=\"0\"/></lines></method></methods>\n"
		"   <lines><line number=\"2\" hits=\"1\" branch=\"false\"/><line number=\"3\" hits=\"0\" branch=\"false\"/></lines>\n"
		"  </class>\n"
		"  <package name=\"lib\"><classes>\n"
		"   <package name=\"a\"><classes>\n"
		"    <class name=\"x.js\" filename=\"lib/a/x.js\"><methods/>\n"
		"     <lines><line number=\"1\" hits=\"2\" branch=\"true\" condition-coverage=\"50% (1/2)\"/></lines>\n"
		"    </class>\n"
		"   </classes></package>\n"
		"   <class name=\"y.js\" filename=\"lib/y.js\"><lines><line number=\"1\" hits=\"0\" branch=\"false\"/></lines></class>\n"
		"  </classes></package>\n"
		" </classes></package>\n"
		" <class name=\"z.js\" filename=\"z.js\"><lines><line number=\"1\" hits=\"1\" branch=\"false\"/>"
		"<line number=\"2\" hits=\"1\" branch=\"false\"/><line number=\"4\" hits=\"0\" branch=\"false\"/></lines></class>\n"
		" </packages>\n"
		"</coverage>\n";
	artifacts_report_init(&rep, SPEC_REPORT_COBERTURAXML);
	is_int(parse_str(&rep, SPEC_REPORT_COBERTURAXML, cob_nested, "cob-nested.xml"), 0, "nested Cobertura parses");
	is_int(rep.nfiles, 4, "cobertura: classes in nested packages and directly under <packages>");
	f = find_cov(&rep, "index.js");
	ok(f && f->lines_covered == 1 && f->lines_missed == 1, "index.js: method lines are not lines of their own");
	f = find_cov(&rep, "lib/a/x.js");
	ok(f && f->lines_covered == 1 && f->branches_covered == 1 && f->branches_missed == 1,
	   "lib/a/x.js: two packages down, branches read");
	f = find_cov(&rep, "z.js");
	ok(f && f->lines_covered == 2 && f->lines_missed == 1, "z.js: a <class> directly under <packages>");
	ok(rep.coverage.lines_covered == 4 && rep.coverage.lines_missed == 3,
	   "totals equal the file's own lines-valid=7 lines-covered=4");
	is_int(rep.nwarnings, 0, "no warning when lines were read");
	artifacts_report_release(&rep);

	static const char clo_istanbul[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<coverage generated=\"1\" clover=\"3.2.0\">\n"
		" <project timestamp=\"1\" name=\"All files\">\n"
		"  <metrics statements=\"7\" coveredstatements=\"4\" conditionals=\"6\" coveredconditionals=\"2\"/>\n"
		"  <file name=\"index.js\" path=\"/src/index.js\">\n"
		"   <metrics statements=\"2\" coveredstatements=\"1\" conditionals=\"0\" coveredconditionals=\"0\"/>\n"
		"   <line num=\"1\" count=\"1\" type=\"stmt\"/><line num=\"2\" count=\"0\" type=\"stmt\"/>\n"
		"  </file>\n"
		"  <package name=\"lib\">\n"
		"   <package name=\"a\">\n"
		"    <file name=\"x.js\" path=\"/src/lib/a/x.js\">\n"
		"     <line num=\"3\" count=\"0\" type=\"cond\" truecount=\"0\" falsecount=\"2\"/>\n"
		"     <line num=\"4\" count=\"3\" type=\"cond\" truecount=\"2\" falsecount=\"2\"/>\n"
		"    </file>\n"
		"   </package>\n"
		"  </package>\n"
		" </project>\n"
		" <package name=\"src\">\n"
		"  <file name=\"m.js\" path=\"/src/src/m.js\"><line num=\"1\" count=\"5\" type=\"stmt\"/>"
		"<line num=\"2\" count=\"1\" type=\"stmt\"/><line num=\"3\" count=\"0\" type=\"stmt\"/></file>\n"
		" </package>\n"
		" <testproject><file name=\"t.js\" path=\"/src/t.js\"><line num=\"1\" count=\"1\" type=\"stmt\"/></file></testproject>\n"
		"</coverage>\n";
	artifacts_report_init(&rep, SPEC_REPORT_CLOVERXML);
	is_int(parse_str(&rep, SPEC_REPORT_CLOVERXML, clo_istanbul, "clover-istanbul.xml"), 0, "Istanbul Clover parses");
	is_int(rep.nfiles, 3, "clover: nested packages and packages after </project>; <testproject> left out");
	f = find_cov(&rep, "/src/lib/a/x.js");
	ok(f && f->lines_covered == 1 && f->lines_missed == 1, "Istanbul cond lines: covered per count");
	ok(f && f->branches_covered == 2 && f->branches_missed == 4,
	   "Istanbul cond lines: truecount covered of truecount + falsecount branches");
	f = find_cov(&rep, "/src/src/m.js");
	ok(f && f->lines_covered == 2 && f->lines_missed == 1, "a file after </project> counts");
	ok(rep.coverage.lines_covered == 4 && rep.coverage.lines_missed == 3 && rep.coverage.branches_covered == 2 &&
		   rep.coverage.branches_missed == 4,
	   "totals equal the project's own <metrics>: 4/7 statements, 2/6 conditionals");
	is_int(rep.nwarnings, 0, "no warning when lines were read");
	artifacts_report_release(&rep);
}

/* A coverage or test file whose own totals count lines or tests of which
 * none could be read is a warning naming the file, not a silent 0%. */
static void test_totals_warnings(void)
{
	artifacts_report rep;
	artifacts_report_init(&rep, SPEC_REPORT_COBERTURAXML);
	is_int(parse_str(&rep, SPEC_REPORT_COBERTURAXML,
			 "<coverage lines-valid=\"71\" lines-covered=\"43\"><packages><package name=\"p\">"
			 "<classes><class name=\"a\"/></classes></package></packages></coverage>",
			 "coverage/cobertura-coverage.xml"),
	       0, "cobertura without readable lines still parses");
	is_int(rep.nwarnings, 1, "cobertura: one warning");
	ok(rep.nwarnings == 1 && starts_with(rep.warnings[0], "coverage/cobertura-coverage.xml: ") &&
		   strstr(rep.warnings[0], "71 lines") && strstr(rep.warnings[0], "lines-covered=\"43\""),
	   "the warning names the file and its totals: %s", rep.nwarnings ? rep.warnings[0] : "");
	is_int(parse_str(&rep, SPEC_REPORT_COBERTURAXML,
			 "<coverage lines-valid=\"0\"><packages/></coverage>", "empty.xml"),
	       0, "cobertura of nothing");
	is_int(rep.nwarnings, 1, "no warning when the totals count no lines either");
	cbl_error *err = NULL;
	ok(artifacts_report_parse_buffer(&rep, SPEC_REPORT_COBERTURAXML, "<coverage lines-valid=\"3\">", 26, "bad.xml",
					 &err) < 0,
	   "a file that does not parse fails");
	cbl_error_free(err);
	is_int(rep.nwarnings, 1, "and adds no warning (the report is unchanged on error)");
	artifacts_report_release(&rep);
	is_int(rep.nwarnings, 0, "release empties the warnings");

	artifacts_report_init(&rep, SPEC_REPORT_CLOVERXML);
	is_int(parse_str(&rep, SPEC_REPORT_CLOVERXML,
			 "<coverage><project><metrics statements=\"12\" coveredstatements=\"2\"/>"
			 "<metrics statements=\"0\"/></project></coverage>",
			 "clover.xml"),
	       0, "clover without files");
	ok(rep.nwarnings == 1 && starts_with(rep.warnings[0], "clover.xml: ") && strstr(rep.warnings[0], "12 statements"),
	   "clover: the project's <metrics> count statements, none read");
	is_int(parse_str(&rep, SPEC_REPORT_CLOVERXML,
			 "<coverage><project><metrics statements=\"3\"/><file name=\"a\"><metrics statements=\"3\" "
			 "coveredstatements=\"1\"/></file></project></coverage>",
			 "clover2.xml"),
	       0, "clover with file metrics only");
	is_int(rep.nwarnings, 1, "file <metrics> count as read");
	artifacts_report_release(&rep);

	artifacts_report_init(&rep, SPEC_REPORT_JACOCOXML);
	is_int(parse_str(&rep, SPEC_REPORT_JACOCOXML,
			 "<report name=\"r\"><package name=\"p\"/><counter type=\"LINE\" missed=\"4\" covered=\"3\"/>"
			 "</report>",
			 "jacoco.xml"),
	       0, "jacoco without source files");
	ok(rep.nwarnings == 1 && starts_with(rep.warnings[0], "jacoco.xml: ") && strstr(rep.warnings[0], "7 lines"),
	   "jacoco: the report's LINE counter counts lines, none read");
	artifacts_report_release(&rep);

	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	is_int(parse_str(&rep, SPEC_REPORT_JUNITXML,
			 "<testsuites tests=\"5\"><suite><testcase name=\"a\"/></suite></testsuites>", "junit.xml"),
	       0, "junit without readable cases");
	ok(rep.nwarnings == 1 && starts_with(rep.warnings[0], "junit.xml: ") && strstr(rep.warnings[0], "5 tests"),
	   "junit: tests=\"5\" but no <testcase> inside <testsuite>s");
	is_int(parse_str(&rep, SPEC_REPORT_JUNITXML, "<testsuite tests=\"0\"/>", "none.xml"), 0, "junit of nothing");
	is_int(rep.nwarnings, 1, "no warning for a file that says it has no tests");
	artifacts_report_release(&rep);
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
	/* retention (report.h): all 600 are counted, the 500 shown are kept */
	ok(rep.test.total == 600 && rep.ncases == 500 && COUNT(&rep, FAILED) == 20 && COUNT(&rep, ERROR) == 5,
	   "600 cases counted (500 retained), 20 failed, 5 errors");
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


/* ------------------------------------------------------------- streaming */

/* Writes len bytes to a new temporary file; returns its path (caller
 * unlinks and frees) or NULL. */
static char *temp_file(const char *data, size_t len)
{
	char *path = cbl_xstrdup("/tmp/cbl-report-test-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0) {
		free(path);
		return NULL;
	}
	bool ok_ = cbl_write_all(fd, data, len) == 0;
	close(fd);
	if (!ok_) {
		unlink(path);
		free(path);
		return NULL;
	}
	return path;
}

/* The status of case i of the generated 20,000-case file. */
static artifacts_report_test_status gen_status(int i)
{
	if (i % 151 == 150)
		return ARTIFACTS_REPORT_FAILED;
	if (i % 409 == 7)
		return ARTIFACTS_REPORT_ERROR;
	if (i % 20 == 3)
		return ARTIFACTS_REPORT_SKIPPED;
	return ARTIFACTS_REPORT_SUCCEEDED;
}

static void gen_junit(cbl_buf *b, int n, const char *tag, bool close)
{
	cbl_buf_puts(b, "<?xml version=\"1.0\"?>\n<testsuites>\n<testsuite name=\"gen\">\n");
	for (int i = 0; i < n; i++) {
		cbl_buf_printf(b, "<testcase classname=\"gen.%s\" name=\"c%05d\" time=\"0.001\">", tag, i);
		switch (gen_status(i)) {
		case ARTIFACTS_REPORT_FAILED:
			cbl_buf_printf(b, "<failure message=\"boom %d\">at gen.%s.c(G.java:%d)</failure>", i, tag,
				       i + 1);
			break;
		case ARTIFACTS_REPORT_ERROR:
			cbl_buf_puts(b, "<error type=\"Crash\"/>");
			break;
		case ARTIFACTS_REPORT_SKIPPED:
			cbl_buf_puts(b, "<skipped/>");
			break;
		default:
			cbl_buf_puts(b, "<system-out><![CDATA[some output]]></system-out>");
			break;
		}
		cbl_buf_puts(b, "</testcase>\n");
	}
	if (close)
		cbl_buf_puts(b, "</testsuite>\n</testsuites>\n");
}

/* Brute force: what select_cases would pick if every case had been kept. */
static size_t expected_selection(const artifacts_report_test_status *st, size_t n, size_t *out)
{
	size_t k = 0;
	for (int rank = 0; rank < 4; rank++)
		for (size_t i = 0; i < n && k < ARTIFACTS_REPORT_MAX_CASES; i++)
			if (artifacts_report_case_rank(st[i]) == rank)
				out[k++] = i;
	return k;
}

static void test_streaming_junit(void)
{
	enum { N = 20000 };
	cbl_buf b = CBL_BUF_INIT;
	gen_junit(&b, N, "A", true);
	char *path = temp_file(b.ptr, b.len);
	ok(path != NULL, "20,000-case JUnit file written (%zu bytes)", b.len);
	cbl_buf_release(&b);
	if (!path)
		return;

	size_t want[ARTIFACTS_REPORT_STATUS_COUNT] = {0};
	for (int i = 0; i < N; i++)
		want[gen_status(i)]++;
	artifacts_report rep;
	cbl_error *err = NULL;
	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	is_int(artifacts_report_parse_file(&rep, SPEC_REPORT_JUNITXML, path, "gen.xml", &err), 0,
	       "20,000-case file streams");
	ok(rep.test.total == N && COUNT(&rep, SUCCEEDED) == want[ARTIFACTS_REPORT_SUCCEEDED] &&
		   COUNT(&rep, FAILED) == want[ARTIFACTS_REPORT_FAILED] &&
		   COUNT(&rep, ERROR) == want[ARTIFACTS_REPORT_ERROR] &&
		   COUNT(&rep, SKIPPED) == want[ARTIFACTS_REPORT_SKIPPED] && COUNT(&rep, UNKNOWN) == 0,
	   "every case counted exactly (%zu failed, %zu errors, %zu skipped)", want[ARTIFACTS_REPORT_FAILED],
	   want[ARTIFACTS_REPORT_ERROR], want[ARTIFACTS_REPORT_SKIPPED]);
	is_int(rep.test.duration_ns, (int64_t)N * 1000000, "duration sums all 20,000 cases");
	is_int(rep.ncases, ARTIFACTS_REPORT_MAX_CASES, "500 cases retained");
	ok(artifacts_report_truncated(&rep), "truncated");
	is_str(artifacts_report_status_name(&rep), "FAILED", "report FAILED");

	artifacts_report_test_status *st = cbl_xreallocarray(NULL, N, sizeof(*st));
	for (int i = 0; i < N; i++)
		st[i] = gen_status(i);
	size_t exp[ARTIFACTS_REPORT_MAX_CASES];
	size_t ne = expected_selection(st, N, exp);
	json_t *cases = artifacts_report_test_cases_json(&rep, NULL);
	bool same = json_array_size(cases) == ne;
	for (size_t k = 0; same && k < ne; k++) {
		char name[16];
		snprintf(name, sizeof(name), "c%05zu", exp[k]);
		const json_t *tc = json_array_get(cases, k);
		same = !strcmp(json_string_value(json_object_get(tc, "name")), name) &&
		       !strcmp(json_string_value(json_object_get(tc, "status")),
			       artifacts_report_test_status_name(st[exp[k]]));
	}
	ok(same, "TestCase list = FAILED, then ERROR, then the first others, each in file order");
	is_str(json_string_value(json_object_get(json_array_get(cases, 0), "status")), "FAILED", "FAILED first");
	json_decref(cases);
	bool in_order = true;
	for (size_t i = 1; i < rep.ncases; i++)
		in_order = in_order && strcmp(rep.cases[i - 1].name, rep.cases[i].name) < 0;
	ok(in_order, "retained cases stay in file order");
	const artifacts_report_case *c = find_case(&rep, "c00150");
	ok(c && c->status == ARTIFACTS_REPORT_FAILED && c->message && !strcmp(c->message, "boom 150\nat gen.A.c(G.java:151)") &&
		   c->file && !strcmp(c->file, "G.java") && c->line == 151 && !strcmp(c->raw_path, "gen.xml"),
	   "a retained failure has its message, location and raw path");

	/* a second file with more failures: FAILED cases of both, in order */
	cbl_buf b2 = CBL_BUF_INIT;
	cbl_buf_puts(&b2, "<testsuite name=\"more\">");
	for (int i = 0; i < 450; i++)
		cbl_buf_printf(&b2, "<testcase name=\"m%03d\"><failure/></testcase>", i);
	cbl_buf_puts(&b2, "</testsuite>");
	is_int(artifacts_report_parse_buffer(&rep, SPEC_REPORT_JUNITXML, b2.ptr, b2.len, "more.xml", &err), 0,
	       "second file merges");
	cbl_buf_release(&b2);
	size_t nf = want[ARTIFACTS_REPORT_FAILED];
	ok(rep.test.total == N + 450 && COUNT(&rep, FAILED) == nf + 450 && rep.ncases == 500,
	   "merged counts; still 500 retained");
	bool all_failed = true;
	for (size_t i = 0; i < rep.ncases; i++)
		all_failed = all_failed && rep.cases[i].status == ARTIFACTS_REPORT_FAILED;
	ok(all_failed && !strcmp(rep.cases[0].name, "c00150") && nf < 500 &&
		   !strcmp(rep.cases[nf - 1].name, "c19931") && !strcmp(rep.cases[nf].name, "m000"),
	   "only FAILED kept: the first file's, then the second's");
	char last[8];
	snprintf(last, sizeof(last), "m%03zu", 500 - nf - 1);
	is_str(rep.cases[499].name, last, "the last retained is the 500th failure");
	const artifacts_report_case **fails = NULL;
	is_int(artifacts_report_failing_cases(&rep, &fails), 500, "failing_cases: the retained failures");
	free(fails);
	free(st);
	cbl_error_free(err);
	artifacts_report_release(&rep);
	unlink(path);
	free(path);
}

/* Random statuses in NUnit 3 files (all five statuses), parsed into one
 * report (evictions inside a file, merges across files), against the
 * brute-force selection. */
static void test_retention_random(void)
{
	enum { N = 6000 };
	static const char *const results[ARTIFACTS_REPORT_STATUS_COUNT] = {
		[ARTIFACTS_REPORT_SUCCEEDED] = "result=\"Passed\"", [ARTIFACTS_REPORT_FAILED] = "result=\"Failed\"",
		[ARTIFACTS_REPORT_ERROR] = "result=\"Failed\" label=\"Error\"",
		[ARTIFACTS_REPORT_SKIPPED] = "result=\"Skipped\"", [ARTIFACTS_REPORT_UNKNOWN] = "result=\"Odd\""};
	artifacts_report_test_status *st = cbl_xreallocarray(NULL, N, sizeof(*st));
	size_t exp[ARTIFACTS_REPORT_MAX_CASES];
	unsigned seed = 12345;
	bool all_ok = true;
	int files = 0;
	for (int round = 0; round < 40 && all_ok; round++) {
		/* skewed mixes: some rounds mostly failures, some mostly passes */
		int mix = round % 5;
		size_t n = (size_t)(round * 137 % N) + 1;
		artifacts_report rep;
		artifacts_report_init(&rep, SPEC_REPORT_NUNIT3XML);
		cbl_buf doc = CBL_BUF_INIT;
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			unsigned r = (seed >> 16) % 100;
			st[i] = mix == 0   ? (r < 50 ? ARTIFACTS_REPORT_FAILED : ARTIFACTS_REPORT_SUCCEEDED)
				: mix == 1 ? (r < 2 ? ARTIFACTS_REPORT_FAILED : r < 4 ? ARTIFACTS_REPORT_UNKNOWN
									: ARTIFACTS_REPORT_SKIPPED)
					   : (artifacts_report_test_status)(r % ARTIFACTS_REPORT_STATUS_COUNT);
			if (mix == 3 && i > n / 2)
				st[i] = ARTIFACTS_REPORT_FAILED; /* late failures evict early passes */
			if (!doc.len)
				cbl_buf_puts(&doc, "<test-run><test-suite name=\"S\">");
			cbl_buf_printf(&doc, "<test-case name=\"%06zu\" %s/>", i, results[st[i]]);
			if ((seed >> 8) % 331 == 0 || i + 1 == n) { /* end of a file */
				cbl_buf_puts(&doc, "</test-suite></test-run>");
				all_ok = all_ok && artifacts_report_parse_buffer(&rep, SPEC_REPORT_NUNIT3XML, doc.ptr,
										 doc.len, "r.xml", NULL) == 0;
				cbl_buf_reset(&doc);
				files++;
			}
		}
		cbl_buf_release(&doc);
		size_t ne = expected_selection(st, n, exp);
		size_t *idx = NULL;
		size_t ns = artifacts_report_select_cases(&rep, 0, &idx);
		bool same = ns == ne && rep.test.total == n && rep.ncases == ne;
		for (size_t k = 0; same && k < ne; k++)
			same = (size_t)atol(rep.cases[idx[k]].name) == exp[k];
		if (!same)
			printf("#   round %d (n=%zu, mix %d): selection differs\n", round, n, mix);
		all_ok = all_ok && same;
		free(idx);
		artifacts_report_release(&rep);
	}
	ok(all_ok, "retention = brute-force selection over 40 random runs (%d files: evictions, merges)", files);
	free(st);
}

static void test_streaming_big_text(void)
{
	/* 20 MB of system-out as text, then as CDATA; a 20 MB stack trace */
	enum { MB20 = 20 * 1000 * 1000 };
	static const char *const forms[] = {"text", "CDATA", "failure"};
	for (int f = 0; f < 3; f++) {
		cbl_buf b = CBL_BUF_INIT;
		cbl_buf_puts(&b, "<?xml version=\"1.0\"?>\n<testsuite name=\"s\">\n<testcase classname=\"k\" name=\"big\">");
		cbl_buf_puts(&b, f == 0 ? "<system-out>" : f == 1 ? "<system-out><![CDATA[" : "<failure message=\"m\">");
		size_t start = b.len;
		while (b.len - start < MB20)
			cbl_buf_puts(&b, "0123456789 \xc3\xa9 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\n");
		cbl_buf_puts(&b, f == 0 ? "</system-out>" : f == 1 ? "]]></system-out>" : "</failure>");
		cbl_buf_puts(&b, "</testcase>\n<testcase classname=\"k\" name=\"after\"/>\n</testsuite>\n");
		char *path = temp_file(b.ptr, b.len);
		cbl_buf_release(&b);
		artifacts_report rep;
		cbl_error *err = NULL;
		artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
		int rc = path ? artifacts_report_parse_file(&rep, SPEC_REPORT_JUNITXML, path, "big.xml", &err) : -1;
		ok(rc == 0 && rep.ncases == 2 && find_case(&rep, "after"), "a 20 MB %s parses (%s)", forms[f],
		   err ? err->msg : "ok");
		if (f == 2) {
			const artifacts_report_case *c = find_case(&rep, "big");
			size_t n = c && c->message ? strlen(c->message) : 0;
			json_t *js = c && c->message ? json_string(c->message) : NULL; /* NULL for bad UTF-8 */
			ok(c && c->status == ARTIFACTS_REPORT_FAILED && n > 60000 && n <= ARTIFACTS_REPORT_MAX_MESSAGE &&
				   js != NULL,
			   "a 20 MB failure text is cut to at most 64 KiB of valid UTF-8 (%zu bytes)", n);
			json_decref(js);
		}
		cbl_error_free(err);
		artifacts_report_release(&rep);
		if (path)
			unlink(path);
		free(path);
	}
}

static void test_streaming_malformed_end(void)
{
	artifacts_report rep;
	cbl_error *err = NULL;
	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	is_int(parse(&rep, SPEC_REPORT_JUNITXML, "junit-pytest.xml"), 0, "setup: one good file");

	/* 20,000 good cases, then the document breaks off in a bad tag */
	cbl_buf b = CBL_BUF_INIT;
	gen_junit(&b, 20000, "B", false);
	cbl_buf_puts(&b, "<testcase name=\"x\"></testsuite>\n");
	size_t lines = 0;
	for (size_t i = 0; i < b.len; i++)
		lines += b.ptr[i] == '\n';
	char *path = temp_file(b.ptr, b.len);
	cbl_buf_release(&b);
	int rc = path ? artifacts_report_parse_file(&rep, SPEC_REPORT_JUNITXML, path, "broken.xml", &err) : 0;
	is_int(rc, CBL_EINVAL, "malformed at the end: CBL_EINVAL");
	ok(err && starts_with(err->msg, "broken.xml:") && strstr(err->msg, "invalid XML") &&
		   (size_t)err->line >= lines - 1 && (size_t)err->line <= lines + 1,
	   "error names the file and the last line, %zu (%s)", lines, err ? err->msg : "");
	ok(rep.ncases == 5 && rep.test.total == 5 && rep.nraw == 1 && COUNT(&rep, FAILED) == 1,
	   "report unchanged: none of the 20,000 cases counted");
	cbl_error_clear(&err);

	/* a non-fatal error (undeclared namespace prefix) before the fatal one */
	static const char ns_then_fatal[] = "<testsuite xsi:type=\"x\">\n<testcase name=\"a\">\n</testsuite>\n";
	rc = artifacts_report_parse_buffer(&rep, SPEC_REPORT_JUNITXML, ns_then_fatal, sizeof(ns_then_fatal) - 1, "ns.xml",
					   &err);
	ok(rc == CBL_EINVAL && err && starts_with(err->msg, "ns.xml:3: invalid XML: Opening and ending tag mismatch"),
	   "the fatal error is reported, not an earlier namespace error (%s)", err ? err->msg : "");
	cbl_error_clear(&err);

	/* an unclosed document */
	static const char unclosed[] = "<testsuite><testcase name=\"a\"/>\n<testcase name=\"b\">\n";
	rc = artifacts_report_parse_buffer(&rep, SPEC_REPORT_JUNITXML, unclosed, sizeof(unclosed) - 1, "u.xml", &err);
	ok(rc == CBL_EINVAL && err && err->line > 0 && rep.test.total == 5, "unclosed document: error at a line (%s)",
	   err ? err->msg : "");
	cbl_error_clear(&err);
	artifacts_report_release(&rep);
	if (path)
		unlink(path);
	free(path);
}

static void test_streaming_formats(void)
{
	/* TRX: definitions first, and definitions after more than 500 results */
	static const char defs_first[] =
		"<TestRun><TestDefinitions><UnitTest id=\"a\"><TestMethod className=\"K, Asm\" codeBase=\"/x/y.dll\"/>"
		"</UnitTest></TestDefinitions><Results><UnitTestResult testId=\"a\" testName=\"K.m\" outcome=\"Failed\">"
		"<Output><ErrorInfo><Message>bad</Message></ErrorInfo></Output></UnitTestResult></Results></TestRun>";
	artifacts_report rep;
	cbl_error *err = NULL;
	artifacts_report_init(&rep, SPEC_REPORT_VISUALSTUDIOTRX);
	is_int(artifacts_report_parse_buffer(&rep, SPEC_REPORT_VISUALSTUDIOTRX, defs_first, sizeof(defs_first) - 1,
					     "d.trx", &err),
	       0, "TRX with definitions before results");
	ok(rep.ncases == 1 && !strcmp(rep.cases[0].prefix, "K") && !strcmp(rep.cases[0].name, "m") &&
		   rep.cases[0].test_suite_name && !strcmp(rep.cases[0].test_suite_name, "y.dll") &&
		   !strcmp(rep.cases[0].message, "bad"),
	   "definition resolved");
	artifacts_report_release(&rep);

	cbl_buf b = CBL_BUF_INIT;
	cbl_buf_puts(&b, "<TestRun><Results>");
	for (int i = 0; i < 2000; i++)
		cbl_buf_printf(&b, "<UnitTestResult testId=\"id%d\" testName=\"Ns.C%d.t%d\" outcome=\"%s\" duration=\"00:00:01\"/>",
			       i, i % 7, i, i % 3 == 0 ? "Failed" : "Passed");
	cbl_buf_puts(&b, "</Results><TestDefinitions>");
	for (int i = 0; i < 2000; i++)
		cbl_buf_printf(&b, "<UnitTest id=\"id%d\" storage=\"/b/T.dll\"><TestMethod className=\"Ns.C%d\"/></UnitTest>", i,
			       i % 7);
	cbl_buf_puts(&b, "</TestDefinitions></TestRun>");
	artifacts_report_init(&rep, SPEC_REPORT_VISUALSTUDIOTRX);
	is_int(artifacts_report_parse_buffer(&rep, SPEC_REPORT_VISUALSTUDIOTRX, b.ptr, b.len, "big.trx", &err), 0,
	       "TRX with 2,000 results then their definitions");
	cbl_buf_release(&b);
	bool resolved = rep.ncases == 500;
	for (size_t i = 0; resolved && i < rep.ncases; i++) {
		const artifacts_report_case *c = &rep.cases[i];
		resolved = !strncmp(c->prefix, "Ns.C", 4) && c->name[0] == 't' && c->test_suite_name &&
			   !strcmp(c->test_suite_name, "T.dll");
	}
	ok(resolved && rep.test.total == 2000 && COUNT(&rep, FAILED) == 667 && rep.test.duration_ns == 2000000000000LL,
	   "TRX: 2,000 counted, the 500 retained resolved against definitions read after them");
	artifacts_report_release(&rep);

	/* TestNG and NUnit 3 beyond 500 cases */
	b = (cbl_buf)CBL_BUF_INIT;
	cbl_buf_puts(&b, "<testng-results><suite name=\"S\"><test name=\"T\"><class name=\"K\">");
	for (int i = 0; i < 1000; i++)
		cbl_buf_printf(&b, "<test-method name=\"m%d\" status=\"%s\" duration-ms=\"1\"/>", i, i == 999 ? "FAIL" : "PASS");
	cbl_buf_puts(&b, "</class></test></suite></testng-results>");
	artifacts_report_init(&rep, SPEC_REPORT_TESTNGXML);
	is_int(artifacts_report_parse_buffer(&rep, SPEC_REPORT_TESTNGXML, b.ptr, b.len, "t.xml", &err), 0, "TestNG, 1,000 methods");
	cbl_buf_release(&b);
	ok(rep.test.total == 1000 && rep.ncases == 500 && rep.cases[499].status == ARTIFACTS_REPORT_FAILED &&
		   !strcmp(rep.cases[499].name, "m999") && !strcmp(rep.cases[498].name, "m498"),
	   "TestNG: the late failure evicted the 500th pass");
	artifacts_report_release(&rep);

	b = (cbl_buf)CBL_BUF_INIT;
	cbl_buf_puts(&b, "<test-run><test-suite type=\"TestFixture\" name=\"F\">");
	for (int i = 0; i < 1000; i++)
		cbl_buf_printf(&b, "<test-case name=\"n%d\" classname=\"K\" result=\"%s\" duration=\"0.5\"/>", i,
			       i % 2 ? "Skipped" : "Passed");
	cbl_buf_puts(&b, "</test-suite></test-run>");
	artifacts_report_init(&rep, SPEC_REPORT_NUNIT3XML);
	is_int(artifacts_report_parse_buffer(&rep, SPEC_REPORT_NUNIT3XML, b.ptr, b.len, "n.xml", &err), 0, "NUnit 3, 1,000 cases");
	cbl_buf_release(&b);
	ok(rep.test.total == 1000 && COUNT(&rep, SKIPPED) == 500 && rep.ncases == 500 &&
		   !strcmp(rep.cases[499].name, "n499") && !strcmp(rep.cases[0].test_suite_name, "F") &&
		   !strcmp(artifacts_report_status_name(&rep), "SUCCEEDED"),
	   "NUnit 3: first 500 kept, all counted, SUCCEEDED");
	artifacts_report_release(&rep);
	cbl_error_free(err);
}


/* ------------------------------------------------------------- chunking, fuzz regressions */

static bool str_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool same_report(const artifacts_report *a, const artifacts_report *b)
{
	if (a->type != b->type || a->ncases != b->ncases || a->nfiles != b->nfiles || a->nraw != b->nraw ||
	    memcmp(&a->test, &b->test, sizeof(a->test)) != 0)
		return false;
	for (size_t i = 0; i < a->ncases; i++) {
		const artifacts_report_case *x = &a->cases[i], *y = &b->cases[i];
		if (!str_same(x->prefix, y->prefix) || !str_same(x->name, y->name) ||
		    !str_same(x->test_suite_name, y->test_suite_name) || x->status != y->status ||
		    x->duration_ns != y->duration_ns || !str_same(x->message, y->message) ||
		    !str_same(x->file, y->file) || x->line != y->line || !str_same(x->raw_path, y->raw_path))
			return false;
	}
	for (size_t i = 0; i < a->nfiles; i++) {
		const artifacts_report_coverage *x = &a->files[i], *y = &b->files[i];
		if (strcmp(x->path, y->path) || x->lines_covered != y->lines_covered ||
		    x->lines_missed != y->lines_missed || x->branches_covered != y->branches_covered ||
		    x->branches_missed != y->branches_missed)
			return false;
	}
	return true;
}

/* Parses data whole and in chunks of 1, 2, 3, 7, 64 and 1000 bytes: same
 * verdict, same report. */
static bool chunking_invariant(spec_report_format fmt, const char *data, size_t len, int *whole_rc)
{
	static const size_t chunks[] = {1, 2, 3, 7, 64, 1000};
	artifacts_report a;
	artifacts_report_init(&a, fmt);
	artifacts_report_input in = {.fd = -1, .data = data, .len = len, .display = "c.xml"};
	int rc = artifacts_report_parse_input(&a, fmt, &in, NULL);
	bool same = true;
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]) && same; i++) {
		artifacts_report b;
		artifacts_report_init(&b, fmt);
		in.chunk = chunks[i];
		int rc2 = artifacts_report_parse_input(&b, fmt, &in, NULL);
		same = (rc2 == 0) == (rc == 0) && same_report(&a, &b);
		if (!same)
			printf("#   chunk %zu differs (rc %d vs %d)\n", chunks[i], rc2, rc);
		artifacts_report_release(&b);
	}
	artifacts_report_release(&a);
	if (whole_rc)
		*whole_rc = rc;
	return same;
}

static void test_chunking(void)
{
	static const struct {
		const char *file;
		spec_report_format fmt;
	} fx[] = {
		{"junit-pytest.xml", SPEC_REPORT_JUNITXML},
		{"TEST-com.example.calc.CalculatorTest.xml", SPEC_REPORT_JUNITXML},
		{"junit-nested.xml", SPEC_REPORT_JUNITXML},
		{"junit-empty.xml", SPEC_REPORT_JUNITXML},
		{"junit-truncated.xml", SPEC_REPORT_JUNITXML},
		{"junit-xxe.xml", SPEC_REPORT_JUNITXML},
		{"junit-billion-laughs.xml", SPEC_REPORT_JUNITXML},
		{"testng-results.xml", SPEC_REPORT_TESTNGXML},
		{"results.trx", SPEC_REPORT_VISUALSTUDIOTRX},
		{"nunit2.xml", SPEC_REPORT_NUNITXML},
		{"nunit3.xml", SPEC_REPORT_NUNIT3XML},
		{"clover.xml", SPEC_REPORT_CLOVERXML},
		{"clover-openclover.xml", SPEC_REPORT_CLOVERXML},
		{"cobertura-coveragepy.xml", SPEC_REPORT_COBERTURAXML},
		{"cobertura-java.xml", SPEC_REPORT_COBERTURAXML},
		{"jacoco.xml", SPEC_REPORT_JACOCOXML},
		{"fuzz/junit-encoding-error-halts.xml", SPEC_REPORT_JUNITXML},
	};
	bool all = true;
	for (size_t i = 0; i < sizeof(fx) / sizeof(fx[0]); i++) {
		char *path = cbl_xasprintf(FX "%s", fx[i].file), *data = NULL;
		size_t len = 0;
		bool same = cbl_read_file(path, 0, &data, &len, NULL) == 0 &&
			    chunking_invariant(fx[i].fmt, data, len, NULL);
		if (!same)
			printf("#   %s: chunking changes the result\n", fx[i].file);
		all = all && same;
		free(data);
		free(path);
	}
	ok(all, "every XML fixture parses the same whole and in chunks of 1..1000 bytes");

	/* text, CDATA and attribute values with '>' split across chunks */
	static const char tricky[] =
		"<?xml version=\"1.0\"?><testsuite name=\"a&gt;b\"><testcase classname=\"x > y\" name=\"n&#10;&#x1F600;\">"
		"<failure message=\"1 &lt; 2 > 0 &amp;&amp; ok\" type=\"T\"><![CDATA[x]]]]><![CDATA[>y <z>]]>tail &amp; "
		"more<!-- c --><?pi x?></failure></testcase></testsuite>";
	int rc = -1;
	ok(chunking_invariant(SPEC_REPORT_JUNITXML, tricky, sizeof(tricky) - 1, &rc) && rc == 0,
	   "quotes, CDATA ends and references across chunk boundaries");
	artifacts_report rep;
	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	artifacts_report_parse_buffer(&rep, SPEC_REPORT_JUNITXML, tricky, sizeof(tricky) - 1, "t.xml", NULL);
	ok(rep.ncases == 1 && !strcmp(rep.cases[0].prefix, "x > y") &&
		   !strcmp(rep.cases[0].name, "n\n\xf0\x9f\x98\x80") &&
		   !strcmp(rep.cases[0].test_suite_name, "a>b") &&
		   !strcmp(rep.cases[0].message, "1 < 2 > 0 && ok\nx]]>y <z>tail & more"),
	   "attribute and text decoding");
	artifacts_report_release(&rep);
}

/* Runs fn with stderr redirected to a temporary file; true when nothing
 * was written to it. */
static bool silent(void (*fn)(void))
{
	char path[] = "/tmp/cbl-report-stderr-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return false;
	fflush(stderr);
	int saved = dup(2);
	dup2(fd, 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	off_t n = lseek(fd, 0, SEEK_END);
	close(fd);
	unlink(path);
	return n == 0;
}

static void parse_bad_inputs(void)
{
	static const char *const bad[] = {"fuzz/junit-encoding-error-halts.xml", "junit-truncated.xml",
					  "junit-billion-laughs.xml", "junit-xxe.xml", "results.trx"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		artifacts_report rep;
		artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
		char *path = cbl_xasprintf(FX "%s", bad[i]);
		artifacts_report_parse_file(&rep, SPEC_REPORT_JUNITXML, path, NULL, NULL);
		free(path);
		artifacts_report_release(&rep);
	}
	char *data = NULL;
	size_t len = 0;
	if (cbl_read_file(FX "fuzz/testng-unknown-encoding-chunked.xml", 0, &data, &len, NULL) == 0) {
		artifacts_report t;
		artifacts_report_input in = {.fd = -1, .data = data, .len = len, .display = "e.xml", .chunk = 8};
		artifacts_report_init(&t, SPEC_REPORT_TESTNGXML);
		artifacts_report_parse_input(&t, SPEC_REPORT_TESTNGXML, &in, NULL);
		artifacts_report_release(&t);
	}
	free(data);
	static const char latin[] = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>";
	artifacts_report rep;
	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	artifacts_report_parse_buffer(&rep, SPEC_REPORT_JUNITXML, latin, sizeof(latin) - 1, "l.xml", NULL);
	artifacts_report_release(&rep);
}

static void test_fuzz_regressions(void)
{
	artifacts_report rep;
	cbl_error *err = NULL;

	/* fuzz_report_junit: a byte sequence the declared encoding cannot
	 * convert halts libxml2's push parser without an error; streamed in
	 * small chunks the file was accepted with 0 cases */
	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	is_int(parse(&rep, SPEC_REPORT_JUNITXML, "junit-pytest.xml"), 0, "setup");
	int rc = artifacts_report_parse_file(&rep, SPEC_REPORT_JUNITXML, FX "fuzz/junit-encoding-error-halts.xml",
					     "enc.xml", &err);
	ok(rc == CBL_EINVAL && err && starts_with(err->msg, "enc.xml:2: invalid XML: input conversion failed"),
	   "encoding error: CBL_EINVAL naming the cause (%s)", err ? err->msg : "");
	ok(rep.test.total == 5 && rep.nraw == 1, "encoding error: report unchanged");
	cbl_error_clear(&err);
	char *data = NULL;
	size_t len = 0;
	cbl_read_file(FX "fuzz/junit-encoding-error-halts.xml", 0, &data, &len, NULL);
	/* (data reused below) */
	int whole = 0;
	ok(data && chunking_invariant(SPEC_REPORT_JUNITXML, data, len, &whole) && whole < 0,
	   "encoding error: refused whole and in every chunking");
	free(data);
	artifacts_report_release(&rep);

	/* fuzz_report_junit: a '>' inside the DOCTYPE's system literal; libxml2
	 * 2.9's push parser only handles it when the DOCTYPE arrives in one
	 * chunk, which the first 64 KiB chunk guarantees */
	artifacts_report_init(&rep, SPEC_REPORT_JUNITXML);
	rc = artifacts_report_parse_file(&rep, SPEC_REPORT_JUNITXML, FX "fuzz/junit-doctype-gt-in-literal.xml", NULL,
					 &err);
	ok(rc == 0 && rep.ncases == 1 && rep.cases[0].status == ARTIFACTS_REPORT_FAILED &&
		   !strcmp(rep.cases[0].message, "leak\ncontents:  end"),
	   "DOCTYPE with '>' in its system literal parses (%s)", err ? err->msg : "ok");
	cbl_error_clear(&err);
	artifacts_report_release(&rep);

	/* fuzz_report_testng: an encoding libxml2 cannot convert the document
	 * from ("UTF08") and a byte it rejects: whether that fails the
	 * document depends on the chunk it arrives in (libxml2 2.9); either
	 * way the parse ends cleanly and the report is consistent */
	data = NULL;
	cbl_read_file(FX "fuzz/testng-unknown-encoding-chunked.xml", 0, &data, &len, NULL);
	bool consistent = data != NULL;
	for (size_t chunk = 0; data && chunk < 100; chunk += 7) {
		artifacts_report_input in = {.fd = -1, .data = data, .len = len, .display = "e.xml", .chunk = chunk};
		artifacts_report_init(&rep, SPEC_REPORT_TESTNGXML);
		rc = artifacts_report_parse_input(&rep, SPEC_REPORT_TESTNGXML, &in, &err);
		consistent = consistent && (rc == 0 ? !err && rep.nraw == 1 && rep.test.total == rep.ncases
					       : err && err->line > 0 && rep.nraw == 0 && rep.test.total == 0);
		cbl_error_clear(&err);
		artifacts_report_release(&rep);
	}
	free(data);
	ok(consistent, "unconvertible bytes: accepted or refused per chunking, consistently");

	ok(silent(parse_bad_inputs), "libxml2 prints nothing for bad input (encoding errors included)");
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
	test_coverage_layouts();
	test_totals_warnings();
	test_json();
	test_truncation();
	test_streaming_junit();
	test_retention_random();
	test_streaming_big_text();
	test_streaming_malformed_end();
	test_streaming_formats();
	test_chunking();
	test_fuzz_regressions();
	return tap_done();
}
