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
 * - A root whose tests="N" counts tests while no <testcase> was read (a
 *   layout not read here) gives the report a warning naming the file.
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
 *
 * Both are read in one streaming pass (report_xml.c): a case's attributes
 * are copied into reusable slots when it starts, the text of the one child
 * that decides its status is captured, and the case is pushed when it ends.
 * Strings are only built for cases the report retains (report.h);
 * <system-out>/<system-err> and everything else are skipped unread.
 * pytest's line numbers depend on a suite name that may come after the case
 * (a later <testsuite name="pytest"> under the root), so the raw line is kept
 * encoded as a negative number and fixed when the document ends.
 */
#include "artifacts/report_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"

#include "util/banned.h"

/* What an open element is to the parser, by depth. */
enum frame {
	F_OTHER = 0, /* skipped with its subtree */
	F_SUITE,     /* the root, or a <testsuite(s)> inside a suite */
	F_CASE,	     /* <testcase> directly inside a suite */
	F_CHILD,     /* a direct child of a <testcase> */
	F_METHOD,    /* TestNG: a <test-method> that is a test */
	F_PARAMS,    /* TestNG: the first <params> of a method */
	F_PARAM,     /* TestNG: a <param> of it */
	F_EXCEPTION, /* TestNG: the first <exception> of a method */
};

struct frames {
	unsigned char *kind;
	size_t cap;
};

static void frame_set(struct frames *f, int depth, enum frame k)
{
	CBL_GROW(f->kind, (size_t)depth + 1, f->cap);
	f->kind[depth] = (unsigned char)k;
}

static enum frame frame_of(const struct frames *f, int depth)
{
	return depth >= 0 && (size_t)depth < f->cap ? (enum frame)f->kind[depth] : F_OTHER;
}

/* pytest's 0-based line numbers are kept as -(raw + 1) until the end of the
 * document says whether this is pytest's output. */
static int encode_raw_line(int64_t raw)
{
	return raw >= 0 && raw < 1000000000 ? (int)(-raw - 1) : 0;
}

static void fix_lines(artifacts_report *rep, bool pytest)
{
	for (size_t i = 0; i < rep->ncases; i++) {
		artifacts_report_case *c = &rep->cases[i];
		if (c->line >= 0)
			continue;
		int64_t l = -(int64_t)c->line - 1 + (pytest ? 1 : 0);
		c->line = l > 0 && l < 1000000000 ? (int)l : 0;
	}
}

/* --------------------------------------------------------------- JUnit */

struct junit {
	artifacts_report *rep;
	const char *display;
	struct frames fr;
	char **suites; /* effective suite name per open suite (NULL = none) */
	size_t nsuites, suites_cap;
	bool pytest;
	int64_t root_tests; /* the root's own tests="N" */
	size_t ncases;	    /* <testcase>s read */
	/* the open <testcase> */
	artifacts_report_slot classname, name, file, line, msg, type;
	int64_t duration_ns;
	int rank; /* 0 pass, 1 skipped, 2 error, 3 failure */
	cbl_buf text;
};

static const char *junit_suite_name(const struct junit *j)
{
	return j->nsuites ? j->suites[j->nsuites - 1] : NULL;
}

static int junit_start(artifacts_report_xml *x, void *user, const char *el, int depth)
{
	struct junit *j = user;
	enum frame parent = depth ? frame_of(&j->fr, depth - 1) : F_SUITE;
	enum frame k = F_OTHER;
	if (parent == F_SUITE && (depth == 0 || !strcmp(el, "testsuite") || !strcmp(el, "testsuites"))) {
		k = F_SUITE;
		const char *name = artifacts_report_xml_attr(x, "name");
		if (depth == 0)
			j->root_tests = artifacts_report_parse_int(artifacts_report_xml_attr(x, "tests"));
		if (!strcmp(el, "testsuite") && name && !strcmp(name, "pytest") && depth <= 1)
			j->pytest = true;
		const char *outer = junit_suite_name(j);
		CBL_GROW(j->suites, j->nsuites + 1, j->suites_cap);
		j->suites[j->nsuites++] = name && *name ? cbl_xstrdup(name) : outer ? cbl_xstrdup(outer) : NULL;
	} else if (parent == F_SUITE && !strcmp(el, "testcase")) {
		k = F_CASE;
		artifacts_report_slot_set(&j->classname, artifacts_report_xml_attr(x, "classname"));
		artifacts_report_slot_set(&j->name, artifacts_report_xml_attr(x, "name"));
		artifacts_report_slot_set(&j->file, artifacts_report_xml_attr(x, "file"));
		artifacts_report_slot_set(&j->line, artifacts_report_xml_attr(x, "line"));
		j->duration_ns = artifacts_report_parse_seconds_ns(artifacts_report_xml_attr(x, "time"));
		j->rank = 0;
		artifacts_report_slot_clear(&j->msg);
		artifacts_report_slot_clear(&j->type);
		cbl_buf_reset(&j->text);
	} else if (parent == F_CASE) {
		k = F_CHILD;
		int r = !strcmp(el, "failure") ? 3 : !strcmp(el, "error") ? 2 : !strcmp(el, "skipped") ? 1 : 0;
		if (r > j->rank) {
			j->rank = r;
			artifacts_report_slot_set(&j->msg, artifacts_report_xml_attr(x, "message"));
			artifacts_report_slot_set(&j->type, artifacts_report_xml_attr(x, "type"));
			cbl_buf_reset(&j->text);
			artifacts_report_xml_capture(x, &j->text);
		}
	}
	frame_set(&j->fr, depth, k);
	return 0;
}

static void junit_case(struct junit *j)
{
	static const artifacts_report_test_status by_rank[] = {
		ARTIFACTS_REPORT_SUCCEEDED, ARTIFACTS_REPORT_SKIPPED, ARTIFACTS_REPORT_ERROR,
		ARTIFACTS_REPORT_FAILED};
	artifacts_report_case c = {.status = by_rank[j->rank], .duration_ns = j->duration_ns};
	j->ncases++;
	if (!artifacts_report_case_wanted(j->rep, c.status)) {
		artifacts_report_case_push(j->rep, &c, j->display); /* counted only */
		return;
	}
	const char *suite = junit_suite_name(j);
	const char *classname = artifacts_report_slot_get(&j->classname);
	const char *name = artifacts_report_slot_get(&j->name);
	c.name = cbl_xstrdup(name ? name : "");
	c.prefix = cbl_xstrdup(classname && *classname ? classname : suite ? suite : "");
	artifacts_report_str_set(&c.test_suite_name, suite);
	const char *stack = NULL;
	if (j->rank) {
		stack = artifacts_report_trimmed(&j->text);
		c.message = artifacts_report_message(artifacts_report_slot_get(&j->msg), stack);
		if (!c.message && j->rank > 1)
			c.message = artifacts_report_message(artifacts_report_slot_get(&j->type), NULL);
	}
	const char *file = artifacts_report_slot_get(&j->file);
	const char *line = artifacts_report_slot_get(&j->line);
	if (file && *file) {
		c.file = cbl_xstrdup(file);
		if (line && *line)
			c.line = encode_raw_line(artifacts_report_parse_int(line));
	} else if (stack) {
		artifacts_report_stack_location(stack, classname, &c.file, &c.line);
	}
	artifacts_report_case_push(j->rep, &c, j->display);
}

static void junit_end(artifacts_report_xml *x, void *user, const char *el, int depth)
{
	(void)x;
	(void)el;
	struct junit *j = user;
	switch (frame_of(&j->fr, depth)) {
	case F_SUITE:
		if (j->nsuites)
			free(j->suites[--j->nsuites]);
		break;
	case F_CASE:
		junit_case(j);
		break;
	default:
		break;
	}
}

static int junit_finish(artifacts_report_xml *x, void *user)
{
	(void)x;
	struct junit *j = user;
	fix_lines(j->rep, j->pytest);
	if (j->root_tests > 0 && !j->ncases)
		artifacts_report_warn(j->rep, j->display,
				      "its own totals count %" PRId64 " tests (tests=\"%" PRId64
				      "\") but no <testcase> was found inside <testsuite>s: this file adds "
				      "no test cases to the report",
				      j->root_tests, j->root_tests);
	return 0;
}

int artifacts_report_parse_junit(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err)
{
	static const char *const roots[] = {"testsuites", "testsuite", NULL};
	static const artifacts_report_xml_ops ops = {
		.roots = roots, .start = junit_start, .end = junit_end, .finish = junit_finish};
	struct junit j = {.rep = rep, .display = in->display};
	int rc = artifacts_report_xml_run(in, &ops, &j, err);
	while (j.nsuites)
		free(j.suites[--j.nsuites]);
	free(j.suites);
	free(j.fr.kind);
	artifacts_report_slot_release(&j.classname);
	artifacts_report_slot_release(&j.name);
	artifacts_report_slot_release(&j.file);
	artifacts_report_slot_release(&j.line);
	artifacts_report_slot_release(&j.msg);
	artifacts_report_slot_release(&j.type);
	cbl_buf_release(&j.text);
	return rc;
}

/* --------------------------------------------------------------- TestNG */

struct testng {
	artifacts_report *rep;
	const char *display;
	struct frames fr;
	artifacts_report_slot suite, cls;
	/* the open <test-method> */
	artifacts_report_slot status, exclass;
	cbl_buf name;	 /* method name, then "(p1, p2)" */
	int nparams;	 /* params appended so far */
	bool params_seen, exception_seen, value_seen, msg_seen, stack_seen;
	cbl_buf value; /* text of the current <param>'s first <value> */
	cbl_buf msg, stack;
	int64_t duration_ns;
};

static int testng_start(artifacts_report_xml *x, void *user, const char *el, int depth)
{
	struct testng *t = user;
	enum frame parent = depth ? frame_of(&t->fr, depth - 1) : F_OTHER;
	enum frame k = F_OTHER;
	switch (depth) {
	case 0:
		k = F_SUITE;
		break;
	case 1: /* <suite> */
	case 2: /* <test> */
	case 3: /* <class> */
		if (parent == F_SUITE && !strcmp(el, depth == 1 ? "suite" : depth == 2 ? "test" : "class")) {
			k = F_SUITE;
			if (depth == 1)
				artifacts_report_slot_set(&t->suite, artifacts_report_xml_attr(x, "name"));
			else if (depth == 3)
				artifacts_report_slot_set(&t->cls, artifacts_report_xml_attr(x, "name"));
		}
		break;
	case 4:
		if (parent == F_SUITE && !strcmp(el, "test-method")) {
			const char *cfg = artifacts_report_xml_attr(x, "is-config");
			if (cfg && !strcmp(cfg, "true"))
				break;
			k = F_METHOD;
			const char *name = artifacts_report_xml_attr(x, "name");
			cbl_buf_reset(&t->name);
			cbl_buf_puts(&t->name, name ? name : "");
			t->nparams = 0;
			t->params_seen = t->exception_seen = t->msg_seen = t->stack_seen = false;
			artifacts_report_slot_set(&t->status, artifacts_report_xml_attr(x, "status"));
			artifacts_report_slot_clear(&t->exclass);
			cbl_buf_reset(&t->msg);
			cbl_buf_reset(&t->stack);
			t->duration_ns = artifacts_report_parse_ms_ns(artifacts_report_xml_attr(x, "duration-ms"));
		}
		break;
	default:
		if (parent == F_METHOD && !strcmp(el, "params") && !t->params_seen) {
			t->params_seen = true;
			k = F_PARAMS;
		} else if (parent == F_METHOD && !strcmp(el, "exception") && !t->exception_seen) {
			t->exception_seen = true;
			k = F_EXCEPTION;
			artifacts_report_slot_set(&t->exclass, artifacts_report_xml_attr(x, "class"));
		} else if (parent == F_PARAMS && !strcmp(el, "param")) {
			k = F_PARAM;
			t->value_seen = false;
			cbl_buf_reset(&t->value);
		} else if (parent == F_PARAM && !strcmp(el, "value") && !t->value_seen) {
			t->value_seen = true;
			artifacts_report_xml_capture(x, &t->value);
		} else if (parent == F_EXCEPTION && !strcmp(el, "message") && !t->msg_seen) {
			t->msg_seen = true;
			artifacts_report_xml_capture(x, &t->msg);
		} else if (parent == F_EXCEPTION && !strcmp(el, "full-stacktrace") && !t->stack_seen) {
			t->stack_seen = true;
			artifacts_report_xml_capture(x, &t->stack);
		}
		break;
	}
	frame_set(&t->fr, depth, k);
	return 0;
}

static void testng_method(struct testng *t)
{
	const char *st = artifacts_report_slot_get(&t->status);
	artifacts_report_case c = {
		.status = !st			? ARTIFACTS_REPORT_UNKNOWN
			  : !strcmp(st, "PASS") ? ARTIFACTS_REPORT_SUCCEEDED
			  : !strcmp(st, "FAIL") ? ARTIFACTS_REPORT_FAILED
			  : !strcmp(st, "SKIP") ? ARTIFACTS_REPORT_SKIPPED
						: ARTIFACTS_REPORT_UNKNOWN,
		.duration_ns = t->duration_ns,
	};
	if (!artifacts_report_case_wanted(t->rep, c.status)) {
		artifacts_report_case_push(t->rep, &c, t->display);
		return;
	}
	const char *cls = artifacts_report_slot_get(&t->cls);
	if (t->nparams)
		cbl_buf_putc(&t->name, ')');
	c.name = cbl_xstrdup(cbl_buf_cstr(&t->name));
	c.prefix = cbl_xstrdup(cls ? cls : "");
	artifacts_report_str_set(&c.test_suite_name, artifacts_report_slot_get(&t->suite));
	if (t->exception_seen) {
		const char *msg = artifacts_report_trimmed(&t->msg);
		const char *stack = artifacts_report_trimmed(&t->stack);
		c.message = artifacts_report_message(msg ? msg : artifacts_report_slot_get(&t->exclass), stack);
		artifacts_report_stack_location(stack, cls, &c.file, &c.line);
	}
	artifacts_report_case_push(t->rep, &c, t->display);
}

static void testng_end(artifacts_report_xml *x, void *user, const char *el, int depth)
{
	(void)x;
	(void)el;
	struct testng *t = user;
	switch (frame_of(&t->fr, depth)) {
	case F_PARAM: {
		const char *v = t->value_seen ? artifacts_report_trimmed(&t->value) : NULL;
		cbl_buf_puts(&t->name, t->nparams++ ? ", " : "(");
		cbl_buf_puts(&t->name, v ? v : "null");
		break;
	}
	case F_METHOD:
		testng_method(t);
		break;
	default:
		break;
	}
}

int artifacts_report_parse_testng(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err)
{
	static const char *const roots[] = {"testng-results", NULL};
	static const artifacts_report_xml_ops ops = {.roots = roots, .start = testng_start, .end = testng_end};
	struct testng t = {.rep = rep, .display = in->display};
	int rc = artifacts_report_xml_run(in, &ops, &t, err);
	free(t.fr.kind);
	artifacts_report_slot_release(&t.suite);
	artifacts_report_slot_release(&t.cls);
	artifacts_report_slot_release(&t.status);
	artifacts_report_slot_release(&t.exclass);
	cbl_buf_release(&t.name);
	cbl_buf_release(&t.value);
	cbl_buf_release(&t.msg);
	cbl_buf_release(&t.stack);
	return rc;
}
