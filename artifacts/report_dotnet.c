/* artifacts/report_dotnet.c - VISUALSTUDIOTRX, NUNITXML (NUnit 2) and
 * NUNIT3XML.
 *
 * TRX (vstest / `dotnet test --logger trx`, namespace
 * http://microsoft.com/schemas/VisualStudio/TeamTest/2010, matched by local
 * name):
 *   <TestRun><Results><UnitTestResult testId testName outcome duration>
 *       <Output><ErrorInfo><Message/><StackTrace/></ErrorInfo></Output>
 *       <InnerResults>…</InnerResults>?        (data-driven MSTest rows)
 *   <TestDefinitions><UnitTest id storage><TestMethod className codeBase name/>
 * - prefix = TestMethod className of the result's testId (an assembly
 *   qualified "Ns.Class, Assembly, Version=…" is cut at the first comma);
 *   name = testName, minus a leading "<className>." (xUnit writes fully
 *   qualified names); testSuiteName = file name of the test assembly.
 * - A result with InnerResults is replaced by its inner results.
 * - outcome: Passed, Completed, PassedButRunAborted -> SUCCEEDED;
 *   Failed, Timeout -> FAILED; Error, Aborted, NotRunnable, Disconnected ->
 *   ERROR; NotExecuted, Inconclusive -> SKIPPED (neither ran to a verdict, and
 *   vstest does not fail the run for them); anything else -> UNKNOWN.
 * - duration is a .NET TimeSpan "hh:mm:ss.fffffff".
 *
 * NUnit 2 (`test-results`): nested <test-suite><results>…<test-case name
 * executed result success time>; name is fully qualified
 * ("Ns.Class.Method(args)") and is split at its last '.' outside the
 * argument list into prefix and name.  result: Success -> SUCCEEDED;
 * Failure -> FAILED; Error, Cancelled, NotRunnable, Invalid -> ERROR;
 * Ignored, Skipped, Inconclusive -> SKIPPED; without result, executed="False"
 * -> SKIPPED, else success True/False -> SUCCEEDED/FAILED.
 *
 * NUnit 3 (`test-run`): nested <test-suite>…<test-case name fullname
 * classname methodname result label duration>.  result Passed -> SUCCEEDED;
 * Failed -> FAILED, or ERROR when label is Error, Cancelled or Invalid;
 * Skipped, Inconclusive -> SKIPPED; Warning -> SUCCEEDED (NUnit does not fail
 * the run for warnings; the warning is the message); else UNKNOWN.
 * prefix = classname; name = name.
 *
 * Both NUnit formats: testSuiteName = the enclosing TestFixture suite (the
 * nearest suite when there is no fixture); message = failure/message plus
 * failure/stack-trace, or reason/message; file:line from the stack trace.
 */
#include "artifacts/report_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"

#include "util/banned.h"

/* ------------------------------------------------------------------ TRX */

struct trx_def {
	const char *id;
	const char *cls; /* heap copy, cut at ',' */
	const char *assembly;
};

struct trx_ctx {
	artifacts_report *rep;
	artifacts_report_xml *x;
	struct trx_def *defs;
	size_t ndefs, cap;
	cbl_strv owned;
};

static int def_cmp(const void *a, const void *b)
{
	return strcmp(((const struct trx_def *)a)->id, ((const struct trx_def *)b)->id);
}

static const char *base_name(const char *p)
{
	const char *b = p;
	for (const char *s = p; *s; s++)
		if (*s == '/' || *s == '\\')
			b = s + 1;
	return b;
}

static void trx_load_defs(struct trx_ctx *t, xmlNode *root)
{
	artifacts_report_xml *x = t->x;
	for (xmlNode *defs = artifacts_report_xml_child(root, "TestDefinitions"); defs;
	     defs = artifacts_report_xml_next(defs, "TestDefinitions"))
		for (xmlNode *ut = artifacts_report_xml_child(defs, NULL); ut;
		     ut = artifacts_report_xml_next(ut, NULL)) {
			const char *id = artifacts_report_xml_attr(x, ut, "id");
			if (!id)
				continue;
			xmlNode *tm = artifacts_report_xml_child(ut, "TestMethod");
			const char *cls = artifacts_report_xml_attr(x, tm, "className");
			const char *asm_path = artifacts_report_xml_attr(x, tm, "codeBase");
			if (!asm_path || !*asm_path)
				asm_path = artifacts_report_xml_attr(x, ut, "storage");
			CBL_GROW(t->defs, t->ndefs + 1, t->cap);
			struct trx_def *d = &t->defs[t->ndefs++];
			d->id = id;
			d->cls = NULL;
			if (cls) {
				const char *comma = strchr(cls, ',');
				char *c = comma ? cbl_xstrndup(cls, (size_t)(comma - cls)) : cbl_xstrdup(cls);
				cbl_strv_push_take(&t->owned, c);
				d->cls = c;
			}
			d->assembly = asm_path && *asm_path ? base_name(asm_path) : NULL;
		}
	if (t->ndefs > 1)
		qsort(t->defs, t->ndefs, sizeof(t->defs[0]), def_cmp);
}

static const struct trx_def *trx_def(const struct trx_ctx *t, const char *id)
{
	if (!id || !t->ndefs)
		return NULL;
	struct trx_def key = {.id = id};
	return bsearch(&key, t->defs, t->ndefs, sizeof(t->defs[0]), def_cmp);
}

static artifacts_report_test_status trx_status(const char *o)
{
	static const struct {
		const char *name;
		artifacts_report_test_status st;
	} map[] = {
		{"Passed", ARTIFACTS_REPORT_SUCCEEDED},
		{"Completed", ARTIFACTS_REPORT_SUCCEEDED},
		{"PassedButRunAborted", ARTIFACTS_REPORT_SUCCEEDED},
		{"Failed", ARTIFACTS_REPORT_FAILED},
		{"Timeout", ARTIFACTS_REPORT_FAILED},
		{"Error", ARTIFACTS_REPORT_ERROR},
		{"Aborted", ARTIFACTS_REPORT_ERROR},
		{"NotRunnable", ARTIFACTS_REPORT_ERROR},
		{"Disconnected", ARTIFACTS_REPORT_ERROR},
		{"NotExecuted", ARTIFACTS_REPORT_SKIPPED},
		{"Inconclusive", ARTIFACTS_REPORT_SKIPPED},
	};
	for (size_t i = 0; o && i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(o, map[i].name))
			return map[i].st;
	return ARTIFACTS_REPORT_UNKNOWN;
}

static void trx_result(struct trx_ctx *t, xmlNode *r, int depth)
{
	artifacts_report_xml *x = t->x;
	xmlNode *inner = artifacts_report_xml_child(r, "InnerResults");
	if (inner && artifacts_report_xml_child(inner, NULL) && depth < 8) {
		for (xmlNode *ir = artifacts_report_xml_child(inner, NULL); ir;
		     ir = artifacts_report_xml_next(ir, NULL))
			if (artifacts_report_xml_is(ir, "UnitTestResult"))
				trx_result(t, ir, depth + 1);
		return;
	}
	artifacts_report_case *c = artifacts_report_case_add(t->rep, x->display);
	const struct trx_def *d = trx_def(t, artifacts_report_xml_attr(x, r, "testId"));
	const char *name = artifacts_report_xml_attr(x, r, "testName");
	if (!name)
		name = "";
	if (d && d->cls) {
		size_t cn = strlen(d->cls);
		if (!strncmp(name, d->cls, cn) && name[cn] == '.' && name[cn + 1])
			name += cn + 1;
		artifacts_report_str_set(&c->prefix, d->cls);
	}
	artifacts_report_str_set(&c->name, name);
	if (d && d->assembly)
		artifacts_report_str_set(&c->test_suite_name, d->assembly);
	c->status = trx_status(artifacts_report_xml_attr(x, r, "outcome"));
	c->duration_ns = artifacts_report_parse_timespan_ns(artifacts_report_xml_attr(x, r, "duration"));
	xmlNode *ei = artifacts_report_xml_child(artifacts_report_xml_child(r, "Output"), "ErrorInfo");
	if (ei) {
		const char *stack =
			artifacts_report_xml_text(x, artifacts_report_xml_child(ei, "StackTrace"));
		c->message = artifacts_report_message(
			artifacts_report_xml_text(x, artifacts_report_xml_child(ei, "Message")), stack);
		artifacts_report_stack_location(stack, NULL, &c->file, &c->line);
	}
}

int artifacts_report_parse_trx(artifacts_report *rep, artifacts_report_xml *x, cbl_error **err)
{
	static const char *const roots[] = {"TestRun", NULL};
	xmlNode *root;
	int rc = artifacts_report_xml_root(x, roots, &root, err);
	if (rc < 0)
		return rc;
	struct trx_ctx t = {.rep = rep, .x = x};
	trx_load_defs(&t, root);
	for (xmlNode *res = artifacts_report_xml_child(root, "Results"); res;
	     res = artifacts_report_xml_next(res, "Results"))
		for (xmlNode *r = artifacts_report_xml_child(res, "UnitTestResult"); r;
		     r = artifacts_report_xml_next(r, "UnitTestResult"))
			trx_result(&t, r, 0);
	free(t.defs);
	cbl_strv_release(&t.owned);
	return 0;
}

/* ---------------------------------------------------------------- NUnit */

/* failure/message + failure/stack-trace, else reason/message. */
static void nunit_message(artifacts_report_xml *x, xmlNode *tc, artifacts_report_case *c)
{
	xmlNode *f = artifacts_report_xml_child(tc, "failure");
	if (f) {
		const char *stack =
			artifacts_report_xml_text(x, artifacts_report_xml_child(f, "stack-trace"));
		c->message = artifacts_report_message(
			artifacts_report_xml_text(x, artifacts_report_xml_child(f, "message")), stack);
		artifacts_report_stack_location(stack, NULL, &c->file, &c->line);
		return;
	}
	xmlNode *r = artifacts_report_xml_child(tc, "reason");
	if (r)
		c->message = artifacts_report_message(
			artifacts_report_xml_text(x, artifacts_report_xml_child(r, "message")), NULL);
}

static bool is_fixture(const char *type)
{
	size_t n = type ? strlen(type) : 0;
	return n >= 7 && !strcmp(type + n - 7, "Fixture");
}

/* "Ns.Class.Method(1.5, \"a.b\")" -> prefix "Ns.Class", name "Method(…)" */
static void split_qualified(const char *full, artifacts_report_case *c)
{
	const char *paren = strchr(full, '(');
	size_t lim = paren ? (size_t)(paren - full) : strlen(full);
	const char *dot = NULL;
	for (size_t i = 0; i < lim; i++)
		if (full[i] == '.')
			dot = full + i;
	if (!dot) {
		artifacts_report_str_set(&c->name, full);
		return;
	}
	free(c->prefix);
	c->prefix = cbl_xstrndup(full, (size_t)(dot - full));
	artifacts_report_str_set(&c->name, dot + 1);
}

static artifacts_report_test_status nunit2_status(artifacts_report_xml *x, xmlNode *tc)
{
	const char *r = artifacts_report_xml_attr(x, tc, "result");
	if (r) {
		if (!strcmp(r, "Success"))
			return ARTIFACTS_REPORT_SUCCEEDED;
		if (!strcmp(r, "Failure"))
			return ARTIFACTS_REPORT_FAILED;
		if (!strcmp(r, "Error") || !strcmp(r, "Cancelled") || !strcmp(r, "NotRunnable") ||
		    !strcmp(r, "Invalid"))
			return ARTIFACTS_REPORT_ERROR;
		if (!strcmp(r, "Ignored") || !strcmp(r, "Skipped") || !strcmp(r, "Inconclusive"))
			return ARTIFACTS_REPORT_SKIPPED;
		return ARTIFACTS_REPORT_UNKNOWN;
	}
	const char *ex = artifacts_report_xml_attr(x, tc, "executed");
	if (ex && !strcasecmp(ex, "False"))
		return ARTIFACTS_REPORT_SKIPPED;
	const char *ok = artifacts_report_xml_attr(x, tc, "success");
	if (ok)
		return !strcasecmp(ok, "True") ? ARTIFACTS_REPORT_SUCCEEDED : ARTIFACTS_REPORT_FAILED;
	return ARTIFACTS_REPORT_UNKNOWN;
}

static artifacts_report_test_status nunit3_status(artifacts_report_xml *x, xmlNode *tc)
{
	const char *r = artifacts_report_xml_attr(x, tc, "result");
	const char *label = artifacts_report_xml_attr(x, tc, "label");
	if (!r)
		return ARTIFACTS_REPORT_UNKNOWN;
	if (!strcmp(r, "Passed") || !strcmp(r, "Warning"))
		return ARTIFACTS_REPORT_SUCCEEDED;
	if (!strcmp(r, "Failed"))
		return label && (!strcmp(label, "Error") || !strcmp(label, "Cancelled") ||
				 !strcmp(label, "Invalid"))
			       ? ARTIFACTS_REPORT_ERROR
			       : ARTIFACTS_REPORT_FAILED;
	if (!strcmp(r, "Skipped") || !strcmp(r, "Inconclusive"))
		return ARTIFACTS_REPORT_SKIPPED;
	return ARTIFACTS_REPORT_UNKNOWN;
}

struct nunit_ctx {
	artifacts_report *rep;
	artifacts_report_xml *x;
	bool v3;
};

static void nunit_case(struct nunit_ctx *n, xmlNode *tc, const char *suite)
{
	artifacts_report_xml *x = n->x;
	artifacts_report_case *c = artifacts_report_case_add(n->rep, x->display);
	const char *name = artifacts_report_xml_attr(x, tc, "name");
	if (n->v3) {
		const char *cls = artifacts_report_xml_attr(x, tc, "classname");
		if (cls && *cls) {
			artifacts_report_str_set(&c->prefix, cls);
			artifacts_report_str_set(&c->name, name ? name : "");
		} else {
			const char *full = artifacts_report_xml_attr(x, tc, "fullname");
			split_qualified(full ? full : name ? name : "", c);
		}
		c->status = nunit3_status(x, tc);
		c->duration_ns =
			artifacts_report_parse_seconds_ns(artifacts_report_xml_attr(x, tc, "duration"));
	} else {
		split_qualified(name ? name : "", c);
		c->status = nunit2_status(x, tc);
		c->duration_ns = artifacts_report_parse_seconds_ns(artifacts_report_xml_attr(x, tc, "time"));
	}
	artifacts_report_str_set(&c->test_suite_name, suite);
	nunit_message(x, tc, c);
}

/* Walks test-suite / results / test-case.  fixture: the innermost enclosing
 * *Fixture suite's name (NULL when none yet); nearest: the innermost suite's. */
static void nunit_walk(struct nunit_ctx *n, xmlNode *node, const char *fixture, const char *nearest,
		       int depth)
{
	if (depth > 200)
		return;
	for (xmlNode *ch = artifacts_report_xml_child(node, NULL); ch;
	     ch = artifacts_report_xml_next(ch, NULL)) {
		if (artifacts_report_xml_is(ch, "test-case")) {
			nunit_case(n, ch, fixture ? fixture : nearest);
		} else if (artifacts_report_xml_is(ch, "test-suite")) {
			const char *name = artifacts_report_xml_attr(n->x, ch, "name");
			bool fx = is_fixture(artifacts_report_xml_attr(n->x, ch, "type"));
			nunit_walk(n, ch, fx ? name : fixture, name ? name : nearest, depth + 1);
		} else if (artifacts_report_xml_is(ch, "results")) {
			nunit_walk(n, ch, fixture, nearest, depth + 1);
		}
	}
}

int artifacts_report_parse_nunit2(artifacts_report *rep, artifacts_report_xml *x, cbl_error **err)
{
	static const char *const roots[] = {"test-results", NULL};
	xmlNode *root;
	int rc = artifacts_report_xml_root(x, roots, &root, err);
	if (rc < 0)
		return rc;
	struct nunit_ctx n = {.rep = rep, .x = x, .v3 = false};
	nunit_walk(&n, root, NULL, NULL, 0);
	return 0;
}

int artifacts_report_parse_nunit3(artifacts_report *rep, artifacts_report_xml *x, cbl_error **err)
{
	static const char *const roots[] = {"test-run", NULL};
	xmlNode *root;
	int rc = artifacts_report_xml_root(x, roots, &root, err);
	if (rc < 0)
		return rc;
	struct nunit_ctx n = {.rep = rep, .x = x, .v3 = true};
	nunit_walk(&n, root, NULL, NULL, 0);
	return 0;
}
