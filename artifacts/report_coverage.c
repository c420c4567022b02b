/* artifacts/report_coverage.c - CLOVERXML, COBERTURAXML, JACOCOXML, SIMPLECOV.
 *
 * Every format is reduced to per-source-file line and branch counts.  Where
 * a format lists lines, they are kept per line number so the same line seen
 * twice (Cobertura <class>es sharing a filename, two files of one report
 * group) counts once: covered if any occurrence was hit, the larger branch
 * counts win.
 *
 * Clover (OpenClover, PHPUnit --coverage-clover, Istanbul's clover reporter):
 *   <coverage><project>(<package>)?<file name path?>
 *     <line num type="stmt|method|cond" count truecount falsecount/>
 *     <metrics statements coveredstatements conditionals coveredconditionals/>
 * - path = the path attribute, else name; files directly under <project> and
 *   inside <package> both count; <testproject> (coverage of the test code
 *   itself) does not.
 * - Lines of every type are lines (covered when count > 0; a cond line when
 *   either outcome was seen); a cond line has two branches, covered per
 *   truecount > 0 and falsecount > 0.
 * - A file without <line> elements uses its <metrics>: statements /
 *   coveredstatements as lines, conditionals / coveredconditionals as
 *   branches.
 *
 * Cobertura (coverage.py, gcovr, Istanbul, cobertura itself):
 *   <coverage><packages><package><classes><class filename>
 *     <lines><line number hits branch="true" condition-coverage="50% (1/2)"/>
 * - path = filename as written (relative to <sources>); methods/method/lines
 *   repeat the class lines and are not read.
 *
 * JaCoCo: <report>(<group>)*<package name><sourcefile name>
 *     <line nr mi ci mb cb/>  <counter type="LINE|BRANCH" missed covered/>
 * - path = package name + "/" + source file name (just the name in the
 *   default package); lines are used when present, else the sourcefile's
 *   LINE and BRANCH counters; a package without <sourcefile>s (report made
 *   without source info) falls back to its <class sourcefilename> counters.
 * - The DOCTYPE naming report.dtd is never loaded (see artifacts_report_xml.c).
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

enum { C_OTHER = 0, C_ROOT, C_PROJECT, C_PACKAGE, C_FILE };

struct clover {
	artifacts_report *rep;
	struct kinds fr;
	int root_line;
	bool project_seen, packages_seen;
	/* the open <file> */
	artifacts_report_coverage *c;
	bool any_line, metrics_seen;
	int64_t st, cst, co, cco;
};

static int clover_start(artifacts_report_xml *x, void *user, const char *el, int depth)
{
	struct clover *cl = user;
	int p = depth ? kind_of(&cl->fr, depth - 1) : C_OTHER, k = C_OTHER;
	if (depth == 0) {
		k = C_ROOT;
		cl->root_line = artifacts_report_xml_line(x);
	} else if (p == C_ROOT) {
		if (!strcmp(el, "project")) {
			k = C_PROJECT;
			cl->project_seen = true;
		} else if (!strcmp(el, "packages")) {
			cl->packages_seen = true;
		}
	} else if ((p == C_PROJECT || p == C_PACKAGE) && !strcmp(el, "file")) {
		const char *path = artifacts_report_xml_attr(x, "path");
		if (!path || !*path)
			path = artifacts_report_xml_attr(x, "name");
		if (path && *path) {
			k = C_FILE;
			cl->c = artifacts_report_cov_get(cl->rep, path);
			cl->any_line = cl->metrics_seen = false;
		}
	} else if (p == C_PROJECT && !strcmp(el, "package")) {
		k = C_PACKAGE;
	} else if (p == C_FILE && !strcmp(el, "line")) {
		uint32_t nr = u32(artifacts_report_parse_int(artifacts_report_xml_attr(x, "num")));
		const char *type = artifacts_report_xml_attr(x, "type");
		cl->any_line = true;
		if (type && !strcmp(type, "cond")) {
			int64_t tc = artifacts_report_parse_int(artifacts_report_xml_attr(x, "truecount"));
			int64_t fc = artifacts_report_parse_int(artifacts_report_xml_attr(x, "falsecount"));
			artifacts_report_cov_add_line(cl->c, nr, tc > 0 || fc > 0, (tc > 0) + (fc > 0), 2);
		} else {
			artifacts_report_cov_add_line(
				cl->c, nr, artifacts_report_parse_int(artifacts_report_xml_attr(x, "count")) > 0, 0,
				0);
		}
	} else if (p == C_FILE && !strcmp(el, "metrics") && !cl->metrics_seen) {
		cl->metrics_seen = true;
		cl->st = artifacts_report_parse_int(artifacts_report_xml_attr(x, "statements"));
		cl->cst = artifacts_report_parse_int(artifacts_report_xml_attr(x, "coveredstatements"));
		cl->co = artifacts_report_parse_int(artifacts_report_xml_attr(x, "conditionals"));
		cl->cco = artifacts_report_parse_int(artifacts_report_xml_attr(x, "coveredconditionals"));
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
	}
	cl->c = NULL;
}

static int clover_finish(artifacts_report_xml *x, void *user)
{
	struct clover *cl = user;
	if (!cl->project_seen && cl->packages_seen)
		return artifacts_report_xml_fail(
			x, cl->root_line, "<coverage> has <packages> but no <project>: a Cobertura file, not Clover");
	return 0;
}

int artifacts_report_parse_clover(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err)
{
	static const char *const roots[] = {"coverage", NULL};
	static const artifacts_report_xml_ops ops = {
		.roots = roots, .start = clover_start, .end = clover_end, .finish = clover_finish};
	struct clover cl = {.rep = rep};
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

enum { B_OTHER = 0, B_ROOT, B_PACKAGES, B_PACKAGE, B_CLASSES, B_CLASS, B_LINES };

struct cobertura {
	artifacts_report *rep;
	struct kinds fr;
	int root_line;
	bool project_seen, packages_seen;
	artifacts_report_coverage *c; /* the open <class> */
};

static int cobertura_start(artifacts_report_xml *x, void *user, const char *el, int depth)
{
	struct cobertura *cb = user;
	int p = depth ? kind_of(&cb->fr, depth - 1) : B_OTHER, k = B_OTHER;
	if (depth == 0) {
		k = B_ROOT;
		cb->root_line = artifacts_report_xml_line(x);
	} else if (p == B_ROOT) {
		if (!strcmp(el, "packages")) {
			k = B_PACKAGES;
			cb->packages_seen = true;
		} else if (!strcmp(el, "project")) {
			cb->project_seen = true;
		}
	} else if (p == B_PACKAGES && !strcmp(el, "package")) {
		k = B_PACKAGE;
	} else if (p == B_PACKAGE && !strcmp(el, "classes")) {
		k = B_CLASSES;
	} else if (p == B_CLASSES && !strcmp(el, "class")) {
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
	}
	kind_set(&cb->fr, depth, k);
	return 0;
}

static int cobertura_finish(artifacts_report_xml *x, void *user)
{
	struct cobertura *cb = user;
	if (!cb->packages_seen && cb->project_seen)
		return artifacts_report_xml_fail(
			x, cb->root_line, "<coverage> has <project> but no <packages>: a Clover file, not Cobertura");
	return 0;
}

int artifacts_report_parse_cobertura(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err)
{
	static const char *const roots[] = {"coverage", NULL};
	static const artifacts_report_xml_ops ops = {
		.roots = roots, .start = cobertura_start, .finish = cobertura_finish};
	struct cobertura cb = {.rep = rep};
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
	struct kinds fr;
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
		if (!j->any_line)
			artifacts_report_cov_add_counters(j->c, j->n.lc, j->n.lm, j->n.bc, j->n.bm);
		j->c = NULL;
		break;
	case J_PACKAGE:
		/* no <sourcefile>s (a report made without source info) */
		for (size_t i = 0; !j->any_sourcefile && i < j->nclasses; i++) {
			const struct jacoco_class *k = &j->classes[i];
			artifacts_report_cov_add_counters(artifacts_report_cov_get(j->rep, k->path), k->n.lc,
							  k->n.lm, k->n.bc, k->n.bm);
		}
		jacoco_drop_classes(j);
		break;
	default:
		break;
	}
}

int artifacts_report_parse_jacoco(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err)
{
	static const char *const roots[] = {"report", NULL};
	static const artifacts_report_xml_ops ops = {.roots = roots, .start = jacoco_start, .end = jacoco_end};
	struct jacoco j = {.rep = rep};
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
