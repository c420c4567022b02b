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
 *
 * All three are read in one streaming pass (report_xml.c).  TRX names a
 * result's class and assembly only in <TestDefinitions>, which vstest
 * writes after <Results>: a retained case carries its testId in
 * test_suite_name until the document ends, then gets prefix, name and suite
 * from its definition.  Definitions read before any result are all kept
 * (one small entry per test, class and assembly strings shared); once
 * results have been seen, only those of retained cases are.
 */
#include "artifacts/report_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/array.h"
#include "util/buf.h"

#include "util/banned.h"

/* ------------------------------------------------------------ string map */

/* Open addressing, keys owned by the map, values borrowed/owned by the user. */
struct strmap {
	char **keys;
	void **vals;
	size_t n, cap; /* cap: 0 or a power of two */
};

static uint64_t str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static size_t strmap_find(const struct strmap *m, const char *key)
{
	size_t mask = m->cap - 1, i = (size_t)str_hash(key) & mask;
	while (m->keys[i] && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & mask;
	return i;
}

static void *strmap_get(const struct strmap *m, const char *key)
{
	if (!m->cap || !key)
		return NULL;
	size_t i = strmap_find(m, key);
	return m->keys[i] ? m->vals[i] : NULL;
}

static bool strmap_has(const struct strmap *m, const char *key)
{
	return m->cap && key && m->keys[strmap_find(m, key)];
}

/* The stored key equal to key, inserted with val when new (*fresh). */
static const char *strmap_put(struct strmap *m, const char *key, void *val, bool *fresh)
{
	if ((m->n + 1) * 2 > m->cap) {
		struct strmap g = {.cap = m->cap ? m->cap * 2 : 64};
		g.keys = cbl_xcalloc(g.cap, sizeof(*g.keys));
		g.vals = cbl_xcalloc(g.cap, sizeof(*g.vals));
		for (size_t i = 0; i < m->cap; i++)
			if (m->keys[i]) {
				size_t j = strmap_find(&g, m->keys[i]);
				g.keys[j] = m->keys[i];
				g.vals[j] = m->vals[i];
			}
		g.n = m->n;
		free(m->keys);
		free(m->vals);
		*m = g;
	}
	size_t i = strmap_find(m, key);
	*fresh = !m->keys[i];
	if (*fresh) {
		m->keys[i] = cbl_xstrdup(key);
		m->vals[i] = val;
		m->n++;
	}
	return m->keys[i];
}

static void strmap_release(struct strmap *m, bool free_vals)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->keys[i]);
		if (free_vals)
			free(m->vals[i]);
	}
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* ------------------------------------------------------------------ TRX */

enum trx_frame {
	T_OTHER = 0,
	T_ROOT,
	T_RESULTS,   /* <Results> under the root */
	T_RESULT,    /* a UnitTestResult (level in the frame) */
	T_INNER,     /* the first <InnerResults> of a result */
	T_OUTPUT,    /* the first <Output> of a result */
	T_ERRORINFO, /* the first <ErrorInfo> of that */
	T_DEFS,	     /* <TestDefinitions> under the root */
	T_UNITTEST,  /* a definition with an id */
};

#define TRX_LEVELS 9 /* a result and up to 8 levels of InnerResults */

struct trx_frame_s {
	unsigned char kind;
	unsigned char level;
};

struct trx_result {
	artifacts_report_slot id, name, outcome, duration;
	bool has_inner, inner_seen, output_seen, errorinfo_seen, msg_seen, stack_seen;
	cbl_buf msg, stack;
};

struct trx_def {
	const char *cls;      /* interned, cut at ',' */
	const char *assembly; /* interned base name */
};

struct trx {
	artifacts_report *rep;
	const char *display;
	struct trx_frame_s *fr;
	size_t frcap;
	struct trx_result res[TRX_LEVELS];
	bool results_seen;
	struct strmap defs;   /* id -> struct trx_def * */
	struct strmap strs;   /* interned class and assembly names */
	struct strmap wanted; /* ids of retained cases, while reading definitions after results */
	/* the open definition */
	artifacts_report_slot def_id, def_storage, def_cls, def_codebase;
	bool def_method_seen;
};

static void trx_frame(struct trx *t, int depth, enum trx_frame k, int level)
{
	CBL_GROW(t->fr, (size_t)depth + 1, t->frcap);
	t->fr[depth] = (struct trx_frame_s){.kind = (unsigned char)k, .level = (unsigned char)level};
}

static struct trx_frame_s trx_frame_of(const struct trx *t, int depth)
{
	if (depth < 0 || (size_t)depth >= t->frcap)
		return (struct trx_frame_s){T_OTHER, 0};
	return t->fr[depth];
}

static const char *base_name(const char *p)
{
	const char *b = p;
	for (const char *s = p; *s; s++)
		if (*s == '/' || *s == '\\')
			b = s + 1;
	return b;
}

static const char *intern(struct trx *t, const char *s)
{
	bool fresh;
	return s ? strmap_put(&t->strs, s, NULL, &fresh) : NULL;
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
	for (size_t i = 0; o && i < ARRAY_SIZE(map); i++)
		if (!strcmp(o, map[i].name))
			return map[i].st;
	return ARTIFACTS_REPORT_UNKNOWN;
}

static void trx_result_begin(struct trx *t, artifacts_report_xml *x, int level)
{
	struct trx_result *r = &t->res[level];
	artifacts_report_slot_set(&r->id, artifacts_report_xml_attr(x, "testId"));
	artifacts_report_slot_set(&r->name, artifacts_report_xml_attr(x, "testName"));
	artifacts_report_slot_set(&r->outcome, artifacts_report_xml_attr(x, "outcome"));
	artifacts_report_slot_set(&r->duration, artifacts_report_xml_attr(x, "duration"));
	r->has_inner = r->inner_seen = r->output_seen = r->errorinfo_seen = r->msg_seen = r->stack_seen = false;
	cbl_buf_reset(&r->msg);
	cbl_buf_reset(&r->stack);
	t->results_seen = true;
}

/* Definitions read after results: only those of the retained cases. */
static void trx_wanted_ids(struct trx *t)
{
	strmap_release(&t->wanted, false);
	for (size_t i = 0; i < t->rep->ncases; i++) {
		bool fresh;
		if (t->rep->cases[i].test_suite_name)
			strmap_put(&t->wanted, t->rep->cases[i].test_suite_name, NULL, &fresh);
	}
}

static int trx_start(artifacts_report_xml *x, void *user, const char *el, int depth)
{
	struct trx *t = user;
	struct trx_frame_s p = depth ? trx_frame_of(t, depth - 1) : (struct trx_frame_s){T_OTHER, 0};
	enum trx_frame k = T_OTHER;
	int level = 0;
	if (depth == 0) {
		k = T_ROOT;
	} else if (p.kind == T_ROOT) {
		if (!strcmp(el, "Results")) {
			k = T_RESULTS;
		} else if (!strcmp(el, "TestDefinitions")) {
			k = T_DEFS;
			if (t->results_seen)
				trx_wanted_ids(t);
		}
	} else if (p.kind == T_RESULTS && !strcmp(el, "UnitTestResult")) {
		k = T_RESULT;
		trx_result_begin(t, x, 0);
	} else if (p.kind == T_RESULT) {
		struct trx_result *r = &t->res[p.level];
		if (!strcmp(el, "InnerResults") && !r->inner_seen) {
			r->inner_seen = true;
			k = T_INNER;
			level = p.level;
		} else if (!strcmp(el, "Output") && !r->output_seen) {
			r->output_seen = true;
			k = T_OUTPUT;
			level = p.level;
		}
	} else if (p.kind == T_INNER && p.level + 1 < TRX_LEVELS) {
		/* any element in it replaces the parent by its inner results */
		t->res[p.level].has_inner = true;
		if (!strcmp(el, "UnitTestResult")) {
			k = T_RESULT;
			level = p.level + 1;
			trx_result_begin(t, x, level);
		}
	} else if (p.kind == T_OUTPUT && !strcmp(el, "ErrorInfo") && !t->res[p.level].errorinfo_seen) {
		t->res[p.level].errorinfo_seen = true;
		k = T_ERRORINFO;
		level = p.level;
	} else if (p.kind == T_ERRORINFO) {
		struct trx_result *r = &t->res[p.level];
		if (!strcmp(el, "Message") && !r->msg_seen) {
			r->msg_seen = true;
			artifacts_report_xml_capture(x, &r->msg);
		} else if (!strcmp(el, "StackTrace") && !r->stack_seen) {
			r->stack_seen = true;
			artifacts_report_xml_capture(x, &r->stack);
		}
	} else if (p.kind == T_DEFS) {
		const char *id = artifacts_report_xml_attr(x, "id");
		if (id) {
			k = T_UNITTEST;
			artifacts_report_slot_set(&t->def_id, id);
			artifacts_report_slot_set(&t->def_storage, artifacts_report_xml_attr(x, "storage"));
			artifacts_report_slot_clear(&t->def_cls);
			artifacts_report_slot_clear(&t->def_codebase);
			t->def_method_seen = false;
		}
	} else if (p.kind == T_UNITTEST && !strcmp(el, "TestMethod") && !t->def_method_seen) {
		t->def_method_seen = true;
		artifacts_report_slot_set(&t->def_cls, artifacts_report_xml_attr(x, "className"));
		artifacts_report_slot_set(&t->def_codebase, artifacts_report_xml_attr(x, "codeBase"));
	}
	trx_frame(t, depth, k, level);
	return 0;
}

static void trx_result_end(struct trx *t, int level)
{
	struct trx_result *r = &t->res[level];
	if (r->has_inner)
		return;
	const char *dur = artifacts_report_slot_get(&r->duration);
	artifacts_report_case c = {.status = trx_status(artifacts_report_slot_get(&r->outcome)),
				   .duration_ns = artifacts_report_parse_timespan_ns(dur)};
	if (artifacts_report_case_wanted(t->rep, c.status)) {
		const char *name = artifacts_report_slot_get(&r->name);
		c.name = cbl_xstrdup(name ? name : "");
		/* the testId until trx_finish resolves it */
		artifacts_report_str_set(&c.test_suite_name, artifacts_report_slot_get(&r->id));
		if (r->errorinfo_seen) {
			const char *stack = artifacts_report_trimmed(&r->stack);
			c.message = artifacts_report_message(artifacts_report_trimmed(&r->msg), stack);
			artifacts_report_stack_location(stack, NULL, &c.file, &c.line);
		}
	}
	artifacts_report_case_push(t->rep, &c, t->display);
}

static void trx_def_end(struct trx *t)
{
	const char *id = artifacts_report_slot_get(&t->def_id);
	if (!id || (t->results_seen && !strmap_has(&t->wanted, id)))
		return;
	const char *cls = artifacts_report_slot_get(&t->def_cls);
	const char *asm_path = artifacts_report_slot_get(&t->def_codebase);
	if (!asm_path || !*asm_path)
		asm_path = artifacts_report_slot_get(&t->def_storage);
	struct trx_def *d = cbl_xcalloc(1, sizeof(*d));
	if (cls) {
		const char *comma = strchr(cls, ',');
		if (comma) {
			char *cut = cbl_xstrndup(cls, (size_t)(comma - cls));
			d->cls = intern(t, cut);
			free(cut);
		} else {
			d->cls = intern(t, cls);
		}
	}
	d->assembly = asm_path && *asm_path ? intern(t, base_name(asm_path)) : NULL;
	bool fresh;
	strmap_put(&t->defs, id, d, &fresh);
	if (!fresh)
		free(d); /* the first definition of an id wins */
}

static void trx_end(artifacts_report_xml *x, void *user, const char *el, int depth)
{
	(void)x;
	(void)el;
	struct trx *t = user;
	struct trx_frame_s f = trx_frame_of(t, depth);
	if (f.kind == T_RESULT)
		trx_result_end(t, f.level);
	else if (f.kind == T_UNITTEST)
		trx_def_end(t);
}

static int trx_finish(artifacts_report_xml *x, void *user)
{
	(void)x;
	struct trx *t = user;
	for (size_t i = 0; i < t->rep->ncases; i++) {
		artifacts_report_case *c = &t->rep->cases[i];
		const struct trx_def *d = strmap_get(&t->defs, c->test_suite_name);
		free(c->test_suite_name);
		c->test_suite_name = NULL;
		if (!d)
			continue;
		if (d->cls) {
			size_t cn = strlen(d->cls);
			if (!strncmp(c->name, d->cls, cn) && c->name[cn] == '.' && c->name[cn + 1])
				memmove(c->name, c->name + cn + 1, strlen(c->name + cn + 1) + 1);
			artifacts_report_str_set(&c->prefix, d->cls);
		}
		if (d->assembly)
			artifacts_report_str_set(&c->test_suite_name, d->assembly);
	}
	return 0;
}

int artifacts_report_parse_trx(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err)
{
	static const char *const roots[] = {"TestRun", NULL};
	static const artifacts_report_xml_ops ops = {
		.roots = roots, .start = trx_start, .end = trx_end, .finish = trx_finish};
	struct trx t = {.rep = rep, .display = in->display};
	int rc = artifacts_report_xml_run(in, &ops, &t, err);
	free(t.fr);
	for (int i = 0; i < TRX_LEVELS; i++) {
		struct trx_result *r = &t.res[i];
		artifacts_report_slot_release(&r->id);
		artifacts_report_slot_release(&r->name);
		artifacts_report_slot_release(&r->outcome);
		artifacts_report_slot_release(&r->duration);
		cbl_buf_release(&r->msg);
		cbl_buf_release(&r->stack);
	}
	strmap_release(&t.defs, true);
	strmap_release(&t.strs, false);
	strmap_release(&t.wanted, false);
	artifacts_report_slot_release(&t.def_id);
	artifacts_report_slot_release(&t.def_storage);
	artifacts_report_slot_release(&t.def_cls);
	artifacts_report_slot_release(&t.def_codebase);
	return rc;
}

/* ---------------------------------------------------------------- NUnit */

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

static artifacts_report_test_status nunit2_status(const char *r, const char *ex, const char *ok)
{
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
	if (ex && !strcasecmp(ex, "False"))
		return ARTIFACTS_REPORT_SKIPPED;
	if (ok)
		return !strcasecmp(ok, "True") ? ARTIFACTS_REPORT_SUCCEEDED : ARTIFACTS_REPORT_FAILED;
	return ARTIFACTS_REPORT_UNKNOWN;
}

static artifacts_report_test_status nunit3_status(const char *r, const char *label)
{
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

enum nunit_frame {
	N_OTHER = 0,
	N_WALK,	   /* the root, a <test-suite> or <results> being walked */
	N_CASE,	   /* a <test-case> */
	N_FAILURE, /* its first <failure> */
	N_REASON,  /* its first <reason> */
};

#define NUNIT_MAX_WALK 200 /* suites nested deeper are not walked */

struct nunit_level {
	char *fixture; /* innermost *Fixture suite's name (NULL = none) */
	char *nearest; /* innermost suite's name */
};

struct nunit {
	artifacts_report *rep;
	const char *display;
	bool v3;
	unsigned char *fr;
	size_t frcap;
	struct nunit_level *walk; /* one per open N_WALK frame */
	size_t nwalk, walkcap;
	/* the open <test-case> */
	artifacts_report_test_status status;
	int64_t duration_ns;
	artifacts_report_slot name, cls, full;
	bool failure_seen, reason_seen, fmsg_seen, fstack_seen, rmsg_seen;
	cbl_buf fmsg, fstack, rmsg;
};

static enum nunit_frame nunit_frame_of(const struct nunit *n, int depth)
{
	return depth >= 0 && (size_t)depth < n->frcap ? (enum nunit_frame)n->fr[depth] : N_OTHER;
}

static char *dup_or_null(const char *s)
{
	return s ? cbl_xstrdup(s) : NULL;
}

static void nunit_push_walk(struct nunit *n, const char *fixture, const char *nearest)
{
	CBL_GROW(n->walk, n->nwalk + 1, n->walkcap);
	n->walk[n->nwalk++] = (struct nunit_level){dup_or_null(fixture), dup_or_null(nearest)};
}

static int nunit_start(artifacts_report_xml *x, void *user, const char *el, int depth)
{
	struct nunit *n = user;
	enum nunit_frame p = depth ? nunit_frame_of(n, depth - 1) : N_OTHER;
	enum nunit_frame k = N_OTHER;
	if (depth == 0) {
		k = N_WALK;
		nunit_push_walk(n, NULL, NULL);
	} else if (p == N_WALK && depth - 1 <= NUNIT_MAX_WALK && n->nwalk) {
		const struct nunit_level *up = &n->walk[n->nwalk - 1];
		if (!strcmp(el, "test-case")) {
			k = N_CASE;
			const char *name = artifacts_report_xml_attr(x, "name");
			artifacts_report_slot_set(&n->name, name);
			if (n->v3) {
				artifacts_report_slot_set(&n->cls, artifacts_report_xml_attr(x, "classname"));
				artifacts_report_slot_set(&n->full, artifacts_report_xml_attr(x, "fullname"));
				n->status = nunit3_status(artifacts_report_xml_attr(x, "result"),
							  artifacts_report_xml_attr(x, "label"));
				n->duration_ns =
					artifacts_report_parse_seconds_ns(artifacts_report_xml_attr(x, "duration"));
			} else {
				n->status = nunit2_status(artifacts_report_xml_attr(x, "result"),
							  artifacts_report_xml_attr(x, "executed"),
							  artifacts_report_xml_attr(x, "success"));
				n->duration_ns =
					artifacts_report_parse_seconds_ns(artifacts_report_xml_attr(x, "time"));
			}
			n->failure_seen = n->reason_seen = n->fmsg_seen = n->fstack_seen = n->rmsg_seen = false;
			cbl_buf_reset(&n->fmsg);
			cbl_buf_reset(&n->fstack);
			cbl_buf_reset(&n->rmsg);
		} else if (!strcmp(el, "test-suite")) {
			k = N_WALK;
			const char *name = artifacts_report_xml_attr(x, "name");
			bool fx = is_fixture(artifacts_report_xml_attr(x, "type"));
			/* copies first: up may move when the stack grows */
			char *fixture = dup_or_null(fx ? name : up->fixture);
			char *nearest = dup_or_null(name ? name : up->nearest);
			CBL_GROW(n->walk, n->nwalk + 1, n->walkcap);
			n->walk[n->nwalk++] = (struct nunit_level){fixture, nearest};
		} else if (!strcmp(el, "results")) {
			k = N_WALK;
			char *fixture = dup_or_null(up->fixture), *nearest = dup_or_null(up->nearest);
			CBL_GROW(n->walk, n->nwalk + 1, n->walkcap);
			n->walk[n->nwalk++] = (struct nunit_level){fixture, nearest};
		}
	} else if (p == N_CASE) {
		if (!strcmp(el, "failure") && !n->failure_seen) {
			n->failure_seen = true;
			k = N_FAILURE;
		} else if (!strcmp(el, "reason") && !n->reason_seen) {
			n->reason_seen = true;
			k = N_REASON;
		}
	} else if (p == N_FAILURE) {
		if (!strcmp(el, "message") && !n->fmsg_seen) {
			n->fmsg_seen = true;
			artifacts_report_xml_capture(x, &n->fmsg);
		} else if (!strcmp(el, "stack-trace") && !n->fstack_seen) {
			n->fstack_seen = true;
			artifacts_report_xml_capture(x, &n->fstack);
		}
	} else if (p == N_REASON && !strcmp(el, "message") && !n->rmsg_seen) {
		n->rmsg_seen = true;
		artifacts_report_xml_capture(x, &n->rmsg);
	}
	CBL_GROW(n->fr, (size_t)depth + 1, n->frcap);
	n->fr[depth] = (unsigned char)k;
	return 0;
}

static void nunit_case(struct nunit *n)
{
	artifacts_report_case c = {.status = n->status, .duration_ns = n->duration_ns};
	if (!artifacts_report_case_wanted(n->rep, c.status)) {
		artifacts_report_case_push(n->rep, &c, n->display);
		return;
	}
	const struct nunit_level *up = n->nwalk ? &n->walk[n->nwalk - 1] : NULL;
	const char *name = artifacts_report_slot_get(&n->name);
	if (n->v3) {
		const char *cls = artifacts_report_slot_get(&n->cls);
		if (cls && *cls) {
			c.prefix = cbl_xstrdup(cls);
			c.name = cbl_xstrdup(name ? name : "");
		} else {
			const char *full = artifacts_report_slot_get(&n->full);
			split_qualified(full ? full : name ? name : "", &c);
		}
	} else {
		split_qualified(name ? name : "", &c);
	}
	if (up)
		artifacts_report_str_set(&c.test_suite_name, up->fixture ? up->fixture : up->nearest);
	if (n->failure_seen) {
		const char *stack = artifacts_report_trimmed(&n->fstack);
		c.message = artifacts_report_message(artifacts_report_trimmed(&n->fmsg), stack);
		artifacts_report_stack_location(stack, NULL, &c.file, &c.line);
	} else if (n->reason_seen) {
		c.message = artifacts_report_message(artifacts_report_trimmed(&n->rmsg), NULL);
	}
	artifacts_report_case_push(n->rep, &c, n->display);
}

static void nunit_end(artifacts_report_xml *x, void *user, const char *el, int depth)
{
	(void)x;
	(void)el;
	struct nunit *n = user;
	switch (nunit_frame_of(n, depth)) {
	case N_WALK:
		if (n->nwalk) {
			n->nwalk--;
			free(n->walk[n->nwalk].fixture);
			free(n->walk[n->nwalk].nearest);
		}
		break;
	case N_CASE:
		nunit_case(n);
		break;
	default:
		break;
	}
}

static int nunit_parse(artifacts_report *rep, const artifacts_report_input *in, bool v3, cbl_error **err)
{
	static const char *const roots2[] = {"test-results", NULL};
	static const char *const roots3[] = {"test-run", NULL};
	static const artifacts_report_xml_ops ops2 = {.roots = roots2, .start = nunit_start, .end = nunit_end};
	static const artifacts_report_xml_ops ops3 = {.roots = roots3, .start = nunit_start, .end = nunit_end};
	struct nunit n = {.rep = rep, .display = in->display, .v3 = v3};
	int rc = artifacts_report_xml_run(in, v3 ? &ops3 : &ops2, &n, err);
	while (n.nwalk) {
		n.nwalk--;
		free(n.walk[n.nwalk].fixture);
		free(n.walk[n.nwalk].nearest);
	}
	free(n.walk);
	free(n.fr);
	artifacts_report_slot_release(&n.name);
	artifacts_report_slot_release(&n.cls);
	artifacts_report_slot_release(&n.full);
	cbl_buf_release(&n.fmsg);
	cbl_buf_release(&n.fstack);
	cbl_buf_release(&n.rmsg);
	return rc;
}

int artifacts_report_parse_nunit2(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err)
{
	return nunit_parse(rep, in, false, err);
}

int artifacts_report_parse_nunit3(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err)
{
	return nunit_parse(rep, in, true, err);
}
