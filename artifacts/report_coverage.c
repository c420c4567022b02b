/* artifacts/report_coverage.c - CLOVERXML, COBERTURAXML, JACOCOXML, SIMPLECOV.
 *
 * Every format is reduced to per-source-file line and branch counts.  Where
 * a format lists lines, they are kept per line number so the same line seen
 * twice (Cobertura <class>es sharing a filename, two files of one report
 * group) counts once: covered if any occurrence was hit, the larger branch
 * counts win.
 *
 * Clover (OpenClover, PHPUnit --coverage-clover, Istanbul's clover reporter):
 *   <coverage><project>(<package>)*<file name path?>
 *     <line num type="stmt|method|cond" count truecount falsecount/>
 *     <metrics statements coveredstatements conditionals coveredconditionals/>
 * - path = the path attribute, else name; a <file> counts wherever it is
 *   (directly under <project>, in <package>s nested to any depth, even
 *   directly under <coverage>: Istanbul's writer closes <project> early when
 *   a directory has no files of its own and sub-directories, and nests
 *   packages with its "nested" summarizer), except inside <testproject>
 *   (coverage of the test code itself) or another <file>.
 * - Lines of every type are lines.  A cond line means two things:
 *   OpenClover writes no count and truecount / falsecount = times the
 *   condition was true / false (two branches, covered per count > 0; the
 *   line is covered when either was seen); Istanbul writes count (the line's
 *   hits) and truecount / falsecount = covered / uncovered branches of the
 *   line, so its totals match the tool's own (nyc's "Branches: 1/4").
 * - A file without <line> elements uses its <metrics>: statements /
 *   coveredstatements as lines, conditionals / coveredconditionals as
 *   branches.
 * - The project's first direct <metrics> are the file's own totals: when
 *   they count statements but no <file> gave any, the report gets a
 *   warning naming the file (a layout not read here must not pass for 0%).
 *
 * Cobertura (coverage.py, gcovr, Istanbul, cobertura itself):
 *   <coverage lines-valid lines-covered><packages><package><classes><class filename>
 *     <lines><line number hits branch="true" condition-coverage="50% (1/2)"/>
 * - path = filename as written (relative to <sources>); a <class filename>
 *   counts wherever it is (Istanbul's "nested" summarizer puts <package>s
 *   inside <classes>), except inside another <class>; only the class's own
 *   <lines> are read: methods/method/lines repeat them.
 * - When the root's lines-valid counts lines but no <line> was read, the
 *   report gets a warning naming the file.
 *
 * JaCoCo: <report>(<group>)*<package name><sourcefile name>
 *     <line nr mi ci mb cb/>  <counter type="LINE|BRANCH" missed covered/>
 * - path = package name + "/" + source file name (just the name in the
 *   default package); lines are used when present, else the sourcefile's
 *   LINE and BRANCH counters; a package without <sourcefile>s (report made
 *   without source info) falls back to its <class sourcefilename> counters.
 * - The DOCTYPE naming report.dtd is never loaded (see artifacts_report_xml.c).
 * - When the <report>'s own LINE counter counts lines but no source file or
 *   class gave any, the report gets a warning naming the file.
 *
 * The three XML formats are read in one streaming pass (report_xml.c); what
 * a format only knows at the end of an element (a Clover file's <metrics>
 * used when it has no <line>s, a JaCoCo package's <class> counters used when
 * it has no <sourcefile>s) is held until that element ends.
 *
 * SimpleCov's own .resultset.json:
 *   {"<command>": {"coverage": {"<file>": {"lines": [null, 1, 0, "ignored"],
 *                                           "branches": {"[:if, 0, 3, 4, 7, 7]":
 *                                               {"[:then, 1, 4, 6, 4, 15]": 1, …}}}},
 *                  "timestamp": …}, …}
 *   and the pre-0.18 form where a file maps straight to its lines array.
 * - lines[i] is line i+1: an integer counts (covered when > 0), null and
 *   strings ("ignored", :nocov:) do not.
 * - Each inner entry of a "branches" condition is one branch (covered when
 *   its count > 0), attributed to the condition's start line (third element
 *   of the condition key).
 * - Several commands (RSpec + Minitest) are merged first by summing the
 *   counts per line and per branch, as SimpleCov's own ResultMerger does.
 */
#include "artifacts/report_internal.h"

#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"

#include "util/banned.h"

static uint32_t u32(int64_t v)
{
	return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

static int64_t add_sat(int64_t a, int64_t b)
{
	return b > 0 && a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* What an open element is to a coverage parser, by depth. */
struct kinds {
	unsigned char *k;
	size_t cap;
};

static void kind_set(struct kinds *f, int depth, int k)
{
	CBL_GROW(f->k, (size_t)depth + 1, f->cap);
	f->k[depth] = (unsigned char)k;
}

static int kind_of(const struct kinds *f, int depth)
{
	return depth >= 0 && (size_t)depth < f->cap ? f->k[depth] : 0;
}

/* --------------------------------------------------------------- Clover */

enum { C_OTHER = 0, C_ROOT, C_PROJECT, C_TEST, C_FILE };

struct clover {
	artifacts_report *rep;
	const char *display;
	struct kinds fr;
	int root_line;
	bool project_seen, packages_seen;
	/* the project's own totals (its first direct <metrics>) */
	bool totals_seen;
	int64_t total_st, total_cst;
	size_t nread; /* <line>s and <metrics> fallbacks read from <file>s */
	/* the open <file> */
	artifacts_report_coverage *c;
	bool any_line, metrics_seen;
	int64_t st, cst, co, cco;
};

static void clover_metrics(artifacts_report_xml *x, int64_t *st, int64_t *cst, int64_t *co, int64_t *cco)
{
	*st = artifacts_report_parse_int(artifacts_report_xml_attr(x, "statements"));
	*cst = artifacts_report_parse_int(artifacts_report_xml_attr(x, "coveredstatements"));
	if (co) {
		*co = artifacts_report_parse_int(artifacts_report_xml_attr(x, "conditionals"));
		*cco = artifacts_report_parse_int(artifacts_report_xml_attr(x, "coveredconditionals"));
	}
}

static void clover_line(artifacts_report_xml *x, struct clover *cl)
{
	uint32_t nr = u32(artifacts_report_parse_int(artifacts_report_xml_attr(x, "num")));
	const char *type = artifacts_report_xml_attr(x, "type");
	const char *count = artifacts_report_xml_attr(x, "count");
	cl->any_line = true;
	cl->nread++;
	if (type && !strcmp(type, "cond")) {
		int64_t tc = artifacts_report_parse_int(artifacts_report_xml_attr(x, "truecount"));
		int64_t fc = artifacts_report_parse_int(artifacts_report_xml_attr(x, "falsecount"));
		if (count) /* Istanbul: covered / uncovered branches of the line */
			artifacts_report_cov_add_line(cl->c, nr, artifacts_report_parse_int(count) > 0, u32(tc),
						      u32(add_sat(tc, fc)));
		else /* OpenClover: times the condition was true / false */
			artifacts_report_cov_add_line(cl->c, nr, tc > 0 || fc > 0, (tc > 0) + (fc > 0), 2);
	} else {
		artifacts_report_cov_add_line(cl->c, nr, artifacts_report_parse_int(count) > 0, 0, 0);
	}
}

static int clover_start(artifacts_report_xml *x, void *user, const char *el, int depth)
{
	struct clover *cl = user;
	int p = depth ? kind_of(&cl->fr, depth - 1) : C_OTHER, k = C_OTHER;
	if (depth == 0) {
		k = C_ROOT;
		cl->root_line = artifacts_report_xml_line(x);
	} else if (p == C_TEST || (p == C_ROOT && !strcmp(el, "testproject"))) {
		k = C_TEST; /* coverage of the test code itself: not counted */
	} else if (p == C_ROOT && !strcmp(el, "project")) {
		k = C_PROJECT;
		cl->project_seen = true;
	} else if (p == C_ROOT && !strcmp(el, "packages")) {
		cl->packages_seen = true;
	} else if (p == C_PROJECT && !strcmp(el, "metrics") && !cl->totals_seen) {
		cl->totals_seen = true;
		clover_metrics(x, &cl->total_st, &cl->total_cst, NULL, NULL);
	} else if (!cl->c && !strcmp(el, "file")) {
		const char *path = artifacts_report_xml_attr(x, "path");
		if (!path || !*path)
			path = artifacts_report_xml_attr(x, "name");
		if (path && *path) {
			k = C_FILE;
			cl->c = artifacts_report_cov_get(cl->rep, path);
			cl->any_line = cl->metrics_seen = false;
		}
	} else if (p == C_FILE && !strcmp(el, "line")) {
		clover_line(x, cl);
	} else if (p == C_FILE && !strcmp(el, "metrics") && !cl->metrics_seen) {
		cl->metrics_seen = true;
		clover_metrics(x, &cl->st, &cl->cst, &cl->co, &cl->cco);
	}
	kind_set(&cl->fr, depth, k);
	return 0;
}

static void clover_end(artifacts_report_xml *x, void *user, const char *el, int depth)
{
	(void)x;
	(void)el;
	struct clover *cl = user;
	if (kind_of(&cl->fr, depth) != C_FILE)
		return;
	if (!cl->any_line && cl->metrics_seen) {
		int64_t cst = cl->cst > cl->st ? cl->st : cl->cst;
		int64_t cco = cl->cco > cl->co ? cl->co : cl->cco;
		artifacts_report_cov_add_counters(cl->c, cst, cl->st - cst, cco, cl->co - cco);
		cl->nread += cl->st > 0;
	}
	cl->c = NULL;
}

static int clover_finish(artifacts_report_xml *x, void *user)
{
	struct clover *cl = user;
	if (!cl->project_seen && cl->packages_seen)
		return artifacts_report_xml_fail(
			x, cl->root_line, "<coverage> has <packages> but no <project>: a Cobertura file, not Clover");
	if (cl->total_st > 0 && !cl->nread)
		artifacts_report_warn(cl->rep, cl->display,
				      "the project's own totals count %" PRId64 " statements (%" PRId64
				      " covered) but no <file> with <line>s or <metrics> was found: this "
				      "file adds no coverage to the report",
				      cl->total_st, cl->total_cst);
	return 0;
}

int artifacts_report_parse_clover(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err)
{
	static const char *const roots[] = {"coverage", NULL};
	static const artifacts_report_xml_ops ops = {
		.roots = roots, .start = clover_start, .end = clover_end, .finish = clover_finish};
	struct clover cl = {.rep = rep, .display = in->display};
	int rc = artifacts_report_xml_run(in, &ops, &cl, err);
	free(cl.fr.k);
	return rc;
}

/* ------------------------------------------------------------ Cobertura */

/* "50% (1/2)" -> 1, 2 */
static bool condition_coverage(const char *s, uint32_t *cov, uint32_t *tot)
{
	const char *p = s ? strchr(s, '(') : NULL;
	if (!p)
		return false;
	char *end;
	long a = strtol(p + 1, &end, 10);
	if (*end != '/')
		return false;
	long b = strtol(end + 1, &end, 10);
	if (a < 0 || b <= 0)
		return false;
	*cov = u32(a);
	*tot = u32(b);
	return true;
}

enum { B_OTHER = 0, B_ROOT, B_CLASS, B_LINES };

struct cobertura {
	artifacts_report *rep;
	const char *display;
	struct kinds fr;
	int root_line;
	bool project_seen, packages_seen;
	/* the root's own totals */
	int64_t lines_valid, lines_covered;
	size_t nread; /* <line>s read from <class>es */
	artifacts_report_coverage *c; /* the open <class> */
};

static int cobertura_start(artifacts_report_xml *x, void *user, const char *el, int depth)
{
	struct cobertura *cb = user;
	int p = depth ? kind_of(&cb->fr, depth - 1) : B_OTHER, k = B_OTHER;
	if (depth == 0) {
		k = B_ROOT;
		cb->root_line = artifacts_report_xml_line(x);
		cb->lines_valid = artifacts_report_parse_int(artifacts_report_xml_attr(x, "lines-valid"));
		cb->lines_covered = artifacts_report_parse_int(artifacts_report_xml_attr(x, "lines-covered"));
	} else if (p == B_ROOT && !strcmp(el, "packages")) {
		cb->packages_seen = true;
	} else if (p == B_ROOT && !strcmp(el, "project")) {
		cb->project_seen = true;
	} else if (!cb->c && !strcmp(el, "class")) {
		const char *fn = artifacts_report_xml_attr(x, "filename");
		if (fn && *fn) {
			k = B_CLASS;
			cb->c = artifacts_report_cov_get(cb->rep, fn);
		}
	} else if (p == B_CLASS && !strcmp(el, "lines")) {
		k = B_LINES;
	} else if (p == B_LINES && !strcmp(el, "line")) {
		uint32_t nr = u32(artifacts_report_parse_int(artifacts_report_xml_attr(x, "number")));
		bool hit = artifacts_report_parse_int(artifacts_report_xml_attr(x, "hits")) > 0;
		uint32_t bc = 0, bt = 0;
		const char *br = artifacts_report_xml_attr(x, "branch");
		if (br && !strcmp(br, "true"))
			condition_coverage(artifacts_report_xml_attr(x, "condition-coverage"), &bc, &bt);
		artifacts_report_cov_add_line(cb->c, nr, hit, bc, bt);
		cb->nread++;
	}
	kind_set(&cb->fr, depth, k);
	return 0;
}

static void cobertura_end(artifacts_report_xml *x, void *user, const char *el, int depth)
{
	(void)x;
	(void)el;
	struct cobertura *cb = user;
	if (kind_of(&cb->fr, depth) == B_CLASS)
		cb->c = NULL;
}

static int cobertura_finish(artifacts_report_xml *x, void *user)
{
	struct cobertura *cb = user;
	if (!cb->packages_seen && cb->project_seen)
		return artifacts_report_xml_fail(
			x, cb->root_line, "<coverage> has <project> but no <packages>: a Clover file, not Cobertura");
	if (cb->lines_valid > 0 && !cb->nread)
		artifacts_report_warn(cb->rep, cb->display,
				      "its own totals count %" PRId64 " lines (lines-valid=\"%" PRId64
				      "\", lines-covered=\"%" PRId64
				      "\") but no <class filename> with <lines><line> was found: this file "
				      "adds no coverage to the report",
				      cb->lines_valid, cb->lines_valid, cb->lines_covered);
	return 0;
}

int artifacts_report_parse_cobertura(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err)
{
	static const char *const roots[] = {"coverage", NULL};
	static const artifacts_report_xml_ops ops = {
		.roots = roots, .start = cobertura_start, .end = cobertura_end, .finish = cobertura_finish};
	struct cobertura cb = {.rep = rep, .display = in->display};
	int rc = artifacts_report_xml_run(in, &ops, &cb, err);
	free(cb.fr.k);
	return rc;
}

/* --------------------------------------------------------------- JaCoCo */

enum { J_OTHER = 0, J_GROUP, J_PACKAGE, J_SOURCEFILE, J_CLASS };

#define JACOCO_MAX_GROUP 64 /* groups nested deeper are not read */

struct jacoco_counts {
	int64_t lc, lm, bc, bm;
};

struct jacoco_class {
	char *path;
	struct jacoco_counts n;
};

struct jacoco {
	artifacts_report *rep;
	const char *display;
	struct kinds fr;
	struct jacoco_counts totals; /* the <report>'s own counters */
	size_t nread;		     /* <line>s and LINE counters read from source files or classes */
	unsigned char *glevel; /* group nesting of J_GROUP frames, by depth */
	size_t glevel_cap;
	/* the open <package> */
	cbl_buf pname;
	bool any_sourcefile;
	struct jacoco_class *classes; /* counters of its <class sourcefilename>es */
	size_t nclasses, classes_cap;
	/* the open <sourcefile> or <class> */
	artifacts_report_coverage *c;
	bool any_line;
	struct jacoco_counts n;
};

static char *jacoco_path(const char *pkg, const char *file)
{
	if (!pkg || !*pkg)
		return cbl_xstrdup(file);
	return cbl_xasprintf("%s/%s", pkg, file);
}

static void jacoco_counter(artifacts_report_xml *x, struct jacoco_counts *n)
{
	const char *type = artifacts_report_xml_attr(x, "type");
	int64_t mi = artifacts_report_parse_int(artifacts_report_xml_attr(x, "missed"));
	int64_t co = artifacts_report_parse_int(artifacts_report_xml_attr(x, "covered"));
	if (type && !strcmp(type, "LINE")) {
		n->lc = add_sat(n->lc, co);
		n->lm = add_sat(n->lm, mi);
	} else if (type && !strcmp(type, "BRANCH")) {
		n->bc = add_sat(n->bc, co);
		n->bm = add_sat(n->bm, mi);
	}
}

static void jacoco_drop_classes(struct jacoco *j)
{
	for (size_t i = 0; i < j->nclasses; i++)
		free(j->classes[i].path);
	j->nclasses = 0;
}

static int jacoco_start(artifacts_report_xml *x, void *user, const char *el, int depth)
{
	struct jacoco *j = user;
	int p = depth ? kind_of(&j->fr, depth - 1) : J_OTHER, k = J_OTHER, level = 0;
	if (depth == 0) {
		k = J_GROUP;
	} else if (depth == 1 && !strcmp(el, "counter")) {
		jacoco_counter(x, &j->totals);
	} else if (p == J_GROUP && j->glevel[depth - 1] <= JACOCO_MAX_GROUP) {
		if (!strcmp(el, "package")) {
			k = J_PACKAGE;
			const char *name = artifacts_report_xml_attr(x, "name");
			cbl_buf_reset(&j->pname);
			cbl_buf_puts(&j->pname, name ? name : "");
			j->any_sourcefile = false;
			jacoco_drop_classes(j);
		} else if (!strcmp(el, "group")) {
			k = J_GROUP;
			level = j->glevel[depth - 1] + 1;
		}
	} else if (p == J_PACKAGE && !strcmp(el, "sourcefile")) {
		const char *name = artifacts_report_xml_attr(x, "name");
		if (name && *name) {
			k = J_SOURCEFILE;
			j->any_sourcefile = true;
			char *path = jacoco_path(cbl_buf_cstr(&j->pname), name);
			j->c = artifacts_report_cov_get(j->rep, path);
			free(path);
			j->any_line = false;
			j->n = (struct jacoco_counts){0};
		}
	} else if (p == J_PACKAGE && !strcmp(el, "class") && !j->any_sourcefile) {
		const char *sfn = artifacts_report_xml_attr(x, "sourcefilename");
		if (sfn && *sfn) {
			k = J_CLASS;
			CBL_GROW(j->classes, j->nclasses + 1, j->classes_cap);
			j->classes[j->nclasses++] = (struct jacoco_class){
				.path = jacoco_path(cbl_buf_cstr(&j->pname), sfn)};
		}
	} else if (p == J_SOURCEFILE && !strcmp(el, "line")) {
		uint32_t nr = u32(artifacts_report_parse_int(artifacts_report_xml_attr(x, "nr")));
		int64_t ci = artifacts_report_parse_int(artifacts_report_xml_attr(x, "ci"));
		int64_t mb = artifacts_report_parse_int(artifacts_report_xml_attr(x, "mb"));
		int64_t cb = artifacts_report_parse_int(artifacts_report_xml_attr(x, "cb"));
		j->any_line = true;
		j->nread++;
		artifacts_report_cov_add_line(j->c, nr, ci > 0, u32(cb), u32(add_sat(mb, cb)));
	} else if (p == J_SOURCEFILE && !strcmp(el, "counter")) {
		jacoco_counter(x, &j->n);
	} else if (p == J_CLASS && !strcmp(el, "counter") && j->nclasses) {
		jacoco_counter(x, &j->classes[j->nclasses - 1].n);
	}
	kind_set(&j->fr, depth, k);
	CBL_GROW(j->glevel, (size_t)depth + 1, j->glevel_cap);
	j->glevel[depth] = (unsigned char)(level > 255 ? 255 : level);
	return 0;
}

static void jacoco_end(artifacts_report_xml *x, void *user, const char *el, int depth)
{
	(void)x;
	(void)el;
	struct jacoco *j = user;
	switch (kind_of(&j->fr, depth)) {
	case J_SOURCEFILE:
		if (!j->any_line) {
			artifacts_report_cov_add_counters(j->c, j->n.lc, j->n.lm, j->n.bc, j->n.bm);
			j->nread += j->n.lc > 0 || j->n.lm > 0;
		}
		j->c = NULL;
		break;
	case J_PACKAGE:
		/* no <sourcefile>s (a report made without source info) */
		for (size_t i = 0; !j->any_sourcefile && i < j->nclasses; i++) {
			const struct jacoco_class *k = &j->classes[i];
			artifacts_report_cov_add_counters(artifacts_report_cov_get(j->rep, k->path), k->n.lc,
							  k->n.lm, k->n.bc, k->n.bm);
			j->nread += k->n.lc > 0 || k->n.lm > 0;
		}
		jacoco_drop_classes(j);
		break;
	default:
		break;
	}
}

static int jacoco_finish(artifacts_report_xml *x, void *user)
{
	(void)x;
	struct jacoco *j = user;
	int64_t lines = add_sat(j->totals.lc, j->totals.lm);
	if (lines > 0 && !j->nread)
		artifacts_report_warn(j->rep, j->display,
				      "the report's own LINE counter counts %" PRId64 " lines (%" PRId64
				      " covered) but no <sourcefile> or <class sourcefilename> with lines was "
				      "found: this file adds no coverage to the report",
				      lines, j->totals.lc);
	return 0;
}

int artifacts_report_parse_jacoco(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err)
{
	static const char *const roots[] = {"report", NULL};
	static const artifacts_report_xml_ops ops = {
		.roots = roots, .start = jacoco_start, .end = jacoco_end, .finish = jacoco_finish};
	struct jacoco j = {.rep = rep, .display = in->display};
	int rc = artifacts_report_xml_run(in, &ops, &j, err);
	jacoco_drop_classes(&j);
	free(j.classes);
	free(j.fr.k);
	free(j.glevel);
	cbl_buf_release(&j.pname);
	return rc;
}

/* ------------------------------------------------------------ SimpleCov */

/* "[:if, 0, 3, 4, 7, 7]" -> 3 */
static uint32_t branch_line(const char *key)
{
	const char *p = strchr(key, ',');
	p = p ? strchr(p + 1, ',') : NULL;
	if (!p)
		return 0;
	return u32(strtol(p + 1, NULL, 10));
}

static int64_t jcount(const json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (int64_t)json_real_value(v);
	return -1;
}

static void simplecov_file(artifacts_report *rep, const char *path, const json_t *v)
{
	const json_t *lines = json_is_array(v) ? v : json_object_get(v, "lines");
	const json_t *branches = json_is_object(v) ? json_object_get(v, "branches") : NULL;
	if (!json_is_array(lines) && !json_is_object(branches))
		return;
	artifacts_report_coverage *c = artifacts_report_cov_get(rep, path);
	size_t i;
	const json_t *e;
	json_array_foreach(lines, i, e)
	{
		int64_t n = jcount(e);
		if (n >= 0 && i < UINT32_MAX)
			artifacts_report_cov_add_line(c, (uint32_t)(i + 1), n > 0, 0, 0);
	}
	const char *ck;
	const json_t *cond;
	json_object_foreach((json_t *)branches, ck, cond)
	{
		if (!json_is_object(cond))
			continue;
		uint32_t cov = 0, tot = 0;
		const char *bk;
		const json_t *cnt;
		json_object_foreach((json_t *)cond, bk, cnt)
		{
			int64_t n = jcount(cnt);
			if (n < 0)
				continue;
			tot++;
			cov += n > 0;
		}
		if (tot)
			artifacts_report_cov_add_branches(c, branch_line(ck), cov, tot);
	}
}

static json_int_t sum_counts(int64_t a, int64_t b)
{
	return (json_int_t)(a > INT64_MAX - b ? INT64_MAX : a + b);
}

/* Adds one command's file entry into acc ({"lines": [...], "branches":
 * {cond: {branch: n}}}), summing counts like SimpleCov's ResultMerger. */
static void simplecov_merge(json_t *acc, const json_t *v)
{
	const json_t *lines = json_is_array(v) ? v : json_object_get(v, "lines");
	const json_t *branches = json_is_object(v) ? json_object_get(v, "branches") : NULL;
	json_t *al = json_object_get(acc, "lines"), *ab = json_object_get(acc, "branches");
	size_t i;
	const json_t *e;
	json_array_foreach(lines, i, e)
	{
		int64_t n = jcount(e);
		if (n < 0)
			continue;
		while (json_array_size(al) <= i)
			json_array_append_new(al, json_null());
		int64_t cur = jcount(json_array_get(al, i));
		json_array_set_new(al, i, json_integer(cur >= 0 ? sum_counts(cur, n) : (json_int_t)n));
	}
	const char *ck;
	const json_t *cond;
	json_object_foreach((json_t *)branches, ck, cond)
	{
		if (!json_is_object(cond))
			continue;
		json_t *ac = json_object_get(ab, ck);
		if (!ac) {
			ac = json_object();
			json_object_set_new(ab, ck, ac);
		}
		const char *bk;
		const json_t *cnt;
		json_object_foreach((json_t *)cond, bk, cnt)
		{
			int64_t n = jcount(cnt);
			if (n < 0)
				continue;
			int64_t cur = jcount(json_object_get(ac, bk));
			json_object_set_new(ac, bk, json_integer(cur >= 0 ? sum_counts(cur, n) : (json_int_t)n));
		}
	}
}

int artifacts_report_parse_simplecov(artifacts_report *rep, const char *data, size_t len, const char *display,
				     cbl_error **err)
{
	json_error_t je;
	json_t *root = json_loadb(data, len, 0, &je);
	json_t *merged = json_object();
	int rc = 0;
	if (!root) {
		rc = artifacts_report_fail(err, display, je.line, "invalid JSON: %s", je.text);
		goto out;
	}
	if (!json_is_object(root)) {
		rc = artifacts_report_fail(
			err, display, 0,
			"expected a SimpleCov .resultset.json object ({\"<command>\": {\"coverage\": …}})");
		goto out;
	}
	const char *cmd;
	json_t *run;
	size_t nruns = 0;
	json_object_foreach(root, cmd, run)
	{
		json_t *cov = json_object_get(run, "coverage");
		if (!json_is_object(cov))
			continue;
		nruns++;
		const char *path;
		json_t *v;
		json_object_foreach(cov, path, v)
		{
			if (!json_is_array(v) && !json_is_object(v))
				continue;
			json_t *acc = json_object_get(merged, path);
			if (!acc) {
				acc = json_object();
				json_object_set_new(acc, "lines", json_array());
				json_object_set_new(acc, "branches", json_object());
				json_object_set_new(merged, path, acc);
			}
			simplecov_merge(acc, v);
		}
	}
	if (!nruns && json_object_size(root)) {
		rc = artifacts_report_fail(err, display, 0,
					   "no \"coverage\" object under any command: not a SimpleCov "
					   ".resultset.json (simplecov-json's coverage.json is not supported)");
		goto out;
	}
	const char *path;
	json_t *v;
	json_object_foreach(merged, path, v)
		simplecov_file(rep, path, v);
out:
	json_decref(merged);
	json_decref(root);
	return rc;
}
