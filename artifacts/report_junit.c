/* artifacts/report_junit.c - JUNITXML and TESTNGXML.
 *
 * JUnit XML has no single schema; this reads what pytest, Maven Surefire /
 * Failsafe, Gradle, jest-junit, go-junit-report and friends write:
 *   <testsuites>? <testsuite name>* (nested allowed)
 *     <testcase classname name time file? line?>
 *       <failure message type>text</failure> | <error …> | <skipped message>
 * - prefix = classname (the enclosing suite's name when there is none),
 *   testSuiteName = the innermost <testsuite name>.
 * - Status: failure > error > skipped; Surefire's rerunFailure/flaky* children
 *   describe retries of a test that finally passed and are ignored.
 * - message = the message attribute, then the element text (stack trace)
 *   unless it repeats the message; the type when there is neither.
 * - time is seconds ("1,234.5" from old Surefire locales accepted).
 * - file/line attributes when present (pytest's xunit1 family).  pytest
 *   writes 0-based line numbers (its item.location), so for suites named
 *   "pytest" (its default junit_suite_name) the line is made 1-based.  With
 *   no file attribute, the first stack frame of the case's class gives one
 *   ("at com.x.CalcTest.m(CalcTest.java:25)" -> CalcTest.java:25) or a .NET
 *   frame "in <file>:line <n>".
 *
 * TestNG's testng-results.xml:
 *   <testng-results><suite name><test name><class name>
 *     <test-method status=PASS|FAIL|SKIP name duration-ms is-config?>
 *       <params><param><value>…</value></param></params>?
 *       <exception class><message>…</message><full-stacktrace>…</full-stacktrace>
 * - configuration methods (is-config="true": @BeforeMethod and co.) are not
 *   test cases and are skipped even when they failed (their failure shows up
 *   as SKIPs of the tests that depended on them);
 * - name = method name, with data-provider parameters appended "(a, b)";
 *   prefix = class name; testSuiteName = the <suite> name;
 * - status PASS/FAIL/SKIP -> SUCCEEDED/FAILED/SKIPPED, anything else UNKNOWN.
 */
#include "artifacts/report_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"

#include "util/banned.h"

/* --------------------------------------------------------------- JUnit */

struct junit_ctx {
	artifacts_report *rep;
	artifacts_report_xml *x;
	bool pytest;
};

static void junit_case(struct junit_ctx *j, xmlNode *tc, const char *suite)
{
	artifacts_report_xml *x = j->x;
	artifacts_report_case *c = artifacts_report_case_add(j->rep, x->display);
	const char *classname = artifacts_report_xml_attr(x, tc, "classname");
	artifacts_report_str_set(&c->name, artifacts_report_xml_attr(x, tc, "name")
						   ? artifacts_report_xml_attr(x, tc, "name")
						   : "");
	artifacts_report_str_set(&c->prefix, classname && *classname ? classname : suite ? suite : "");
	artifacts_report_str_set(&c->test_suite_name, suite);
	c->duration_ns = artifacts_report_parse_seconds_ns(artifacts_report_xml_attr(x, tc, "time"));

	xmlNode *decisive = NULL;
	int rank = 0; /* 0 pass, 1 skipped, 2 error, 3 failure */
	for (xmlNode *ch = artifacts_report_xml_child(tc, NULL); ch;
	     ch = artifacts_report_xml_next(ch, NULL)) {
		int r = artifacts_report_xml_is(ch, "failure")	 ? 3
			: artifacts_report_xml_is(ch, "error")	 ? 2
			: artifacts_report_xml_is(ch, "skipped") ? 1
								 : 0;
		if (r > rank) {
			rank = r;
			decisive = ch;
		}
	}
	c->status = rank == 3	? ARTIFACTS_REPORT_FAILED
		    : rank == 2 ? ARTIFACTS_REPORT_ERROR
		    : rank == 1 ? ARTIFACTS_REPORT_SKIPPED
				: ARTIFACTS_REPORT_SUCCEEDED;
	const char *stack = NULL;
	if (decisive) {
		const char *msg = artifacts_report_xml_attr(x, decisive, "message");
		stack = artifacts_report_xml_text(x, decisive);
		c->message = artifacts_report_message(msg, stack);
		if (!c->message && rank > 1)
			c->message = artifacts_report_message(artifacts_report_xml_attr(x, decisive, "type"),
							      NULL);
	}

	const char *file = artifacts_report_xml_attr(x, tc, "file");
	const char *line = artifacts_report_xml_attr(x, tc, "line");
	if (file && *file) {
		artifacts_report_str_set(&c->file, file);
		if (line && *line) {
			int64_t l = artifacts_report_parse_int(line) + (j->pytest ? 1 : 0);
			c->line = l > 0 && l < 1000000000 ? (int)l : 0;
		}
	} else if (stack) {
		artifacts_report_stack_location(stack, classname, &c->file, &c->line);
	}
}

static void junit_suite(struct junit_ctx *j, xmlNode *suite, const char *outer)
{
	const char *name = artifacts_report_xml_attr(j->x, suite, "name");
	if (!name || !*name)
		name = outer;
	for (xmlNode *ch = artifacts_report_xml_child(suite, NULL); ch;
	     ch = artifacts_report_xml_next(ch, NULL)) {
		if (artifacts_report_xml_is(ch, "testcase"))
			junit_case(j, ch, name);
		else if (artifacts_report_xml_is(ch, "testsuite") ||
			 artifacts_report_xml_is(ch, "testsuites"))
			junit_suite(j, ch, name);
	}
}

static bool is_pytest(artifacts_report_xml *x, xmlNode *root)
{
	if (artifacts_report_xml_is(root, "testsuite")) {
		const char *n = artifacts_report_xml_attr(x, root, "name");
		return n && !strcmp(n, "pytest");
	}
	for (xmlNode *s = artifacts_report_xml_child(root, "testsuite"); s;
	     s = artifacts_report_xml_next(s, "testsuite")) {
		const char *n = artifacts_report_xml_attr(x, s, "name");
		if (n && !strcmp(n, "pytest"))
			return true;
	}
	return false;
}

int artifacts_report_parse_junit(artifacts_report *rep, artifacts_report_xml *x, cbl_error **err)
{
	static const char *const roots[] = {"testsuites", "testsuite", NULL};
	xmlNode *root;
	int rc = artifacts_report_xml_root(x, roots, &root, err);
	if (rc < 0)
		return rc;
	struct junit_ctx j = {.rep = rep, .x = x, .pytest = is_pytest(x, root)};
	junit_suite(&j, root, NULL);
	return 0;
}

/* --------------------------------------------------------------- TestNG */

static void testng_method(artifacts_report *rep, artifacts_report_xml *x, xmlNode *m, const char *cls,
			  const char *suite)
{
	const char *cfg = artifacts_report_xml_attr(x, m, "is-config");
	if (cfg && !strcmp(cfg, "true"))
		return;
	artifacts_report_case *c = artifacts_report_case_add(rep, x->display);
	const char *name = artifacts_report_xml_attr(x, m, "name");
	cbl_buf nb = CBL_BUF_INIT;
	cbl_buf_puts(&nb, name ? name : "");
	xmlNode *params = artifacts_report_xml_child(m, "params");
	if (params) {
		int np = 0;
		for (xmlNode *p = artifacts_report_xml_child(params, "param"); p;
		     p = artifacts_report_xml_next(p, "param")) {
			const char *v = artifacts_report_xml_text(x, artifacts_report_xml_child(p, "value"));
			cbl_buf_puts(&nb, np++ ? ", " : "(");
			cbl_buf_puts(&nb, v ? v : "null");
		}
		if (np)
			cbl_buf_putc(&nb, ')');
	}
	free(c->name);
	c->name = cbl_buf_detach(&nb);
	artifacts_report_str_set(&c->prefix, cls ? cls : "");
	artifacts_report_str_set(&c->test_suite_name, suite);
	c->duration_ns = artifacts_report_parse_ms_ns(artifacts_report_xml_attr(x, m, "duration-ms"));

	const char *st = artifacts_report_xml_attr(x, m, "status");
	c->status = !st			  ? ARTIFACTS_REPORT_UNKNOWN
		    : !strcmp(st, "PASS") ? ARTIFACTS_REPORT_SUCCEEDED
		    : !strcmp(st, "FAIL") ? ARTIFACTS_REPORT_FAILED
		    : !strcmp(st, "SKIP") ? ARTIFACTS_REPORT_SKIPPED
					  : ARTIFACTS_REPORT_UNKNOWN;

	xmlNode *ex = artifacts_report_xml_child(m, "exception");
	if (ex) {
		const char *msg = artifacts_report_xml_text(x, artifacts_report_xml_child(ex, "message"));
		const char *stack =
			artifacts_report_xml_text(x, artifacts_report_xml_child(ex, "full-stacktrace"));
		c->message = artifacts_report_message(msg ? msg : artifacts_report_xml_attr(x, ex, "class"),
						      stack);
		artifacts_report_stack_location(stack, cls, &c->file, &c->line);
	}
}

int artifacts_report_parse_testng(artifacts_report *rep, artifacts_report_xml *x, cbl_error **err)
{
	static const char *const roots[] = {"testng-results", NULL};
	xmlNode *root;
	int rc = artifacts_report_xml_root(x, roots, &root, err);
	if (rc < 0)
		return rc;
	for (xmlNode *s = artifacts_report_xml_child(root, "suite"); s;
	     s = artifacts_report_xml_next(s, "suite")) {
		const char *suite = artifacts_report_xml_attr(x, s, "name");
		for (xmlNode *t = artifacts_report_xml_child(s, "test"); t;
		     t = artifacts_report_xml_next(t, "test"))
			for (xmlNode *k = artifacts_report_xml_child(t, "class"); k;
			     k = artifacts_report_xml_next(k, "class")) {
				const char *cls = artifacts_report_xml_attr(x, k, "name");
				for (xmlNode *m = artifacts_report_xml_child(k, "test-method"); m;
				     m = artifacts_report_xml_next(m, "test-method"))
					testng_method(rep, x, m, cls, suite);
			}
	}
	return 0;
}
