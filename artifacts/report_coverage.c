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

/* --------------------------------------------------------------- Clover */

static void clover_file(artifacts_report *rep, artifacts_report_xml *x, xmlNode *f)
{
	const char *path = artifacts_report_xml_attr(x, f, "path");
	if (!path || !*path)
		path = artifacts_report_xml_attr(x, f, "name");
	if (!path || !*path)
		return;
	artifacts_report_coverage *c = artifacts_report_cov_get(rep, path);
	bool any = false;
	for (xmlNode *l = artifacts_report_xml_child(f, "line"); l;
	     l = artifacts_report_xml_next(l, "line")) {
		uint32_t nr = u32(artifacts_report_parse_int(artifacts_report_xml_attr(x, l, "num")));
		const char *type = artifacts_report_xml_attr(x, l, "type");
		any = true;
		if (type && !strcmp(type, "cond")) {
			int64_t tc = artifacts_report_parse_int(artifacts_report_xml_attr(x, l, "truecount"));
			int64_t fc =
				artifacts_report_parse_int(artifacts_report_xml_attr(x, l, "falsecount"));
			artifacts_report_cov_add_line(c, nr, tc > 0 || fc > 0, (tc > 0) + (fc > 0), 2);
		} else {
			artifacts_report_cov_add_line(
				c, nr,
				artifacts_report_parse_int(artifacts_report_xml_attr(x, l, "count")) > 0, 0,
				0);
		}
	}
	if (any)
		return;
	xmlNode *m = artifacts_report_xml_child(f, "metrics");
	if (!m)
		return;
	int64_t st = artifacts_report_parse_int(artifacts_report_xml_attr(x, m, "statements"));
	int64_t cst = artifacts_report_parse_int(artifacts_report_xml_attr(x, m, "coveredstatements"));
	int64_t co = artifacts_report_parse_int(artifacts_report_xml_attr(x, m, "conditionals"));
	int64_t cco = artifacts_report_parse_int(artifacts_report_xml_attr(x, m, "coveredconditionals"));
	if (cst > st)
		cst = st;
	if (cco > co)
		cco = co;
	artifacts_report_cov_add_counters(c, cst, st - cst, cco, co - cco);
}

int artifacts_report_parse_clover(artifacts_report *rep, artifacts_report_xml *x, cbl_error **err)
{
	static const char *const roots[] = {"coverage", NULL};
	xmlNode *root;
	int rc = artifacts_report_xml_root(x, roots, &root, err);
	if (rc < 0)
		return rc;
	if (!artifacts_report_xml_child(root, "project") && artifacts_report_xml_child(root, "packages"))
		return artifacts_report_fail(
			err, x->display, artifacts_report_xml_line(root),
			"<coverage> has <packages> but no <project>: a Cobertura file, not Clover");
	for (xmlNode *p = artifacts_report_xml_child(root, "project"); p;
	     p = artifacts_report_xml_next(p, "project"))
		for (xmlNode *ch = artifacts_report_xml_child(p, NULL); ch;
		     ch = artifacts_report_xml_next(ch, NULL)) {
			if (artifacts_report_xml_is(ch, "file"))
				clover_file(rep, x, ch);
			else if (artifacts_report_xml_is(ch, "package"))
				for (xmlNode *f = artifacts_report_xml_child(ch, "file"); f;
				     f = artifacts_report_xml_next(f, "file"))
					clover_file(rep, x, f);
		}
	return 0;
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

int artifacts_report_parse_cobertura(artifacts_report *rep, artifacts_report_xml *x, cbl_error **err)
{
	static const char *const roots[] = {"coverage", NULL};
	xmlNode *root;
	int rc = artifacts_report_xml_root(x, roots, &root, err);
	if (rc < 0)
		return rc;
	if (!artifacts_report_xml_child(root, "packages") && artifacts_report_xml_child(root, "project"))
		return artifacts_report_fail(
			err, x->display, artifacts_report_xml_line(root),
			"<coverage> has <project> but no <packages>: a Clover file, not Cobertura");
	for (xmlNode *pkgs = artifacts_report_xml_child(root, "packages"); pkgs;
	     pkgs = artifacts_report_xml_next(pkgs, "packages"))
		for (xmlNode *pkg = artifacts_report_xml_child(pkgs, "package"); pkg;
		     pkg = artifacts_report_xml_next(pkg, "package"))
			for (xmlNode *cls = artifacts_report_xml_child(pkg, "classes"); cls;
			     cls = artifacts_report_xml_next(cls, "classes"))
				for (xmlNode *k = artifacts_report_xml_child(cls, "class"); k;
				     k = artifacts_report_xml_next(k, "class")) {
					const char *fn = artifacts_report_xml_attr(x, k, "filename");
					if (!fn || !*fn)
						continue;
					artifacts_report_coverage *c = artifacts_report_cov_get(rep, fn);
					for (xmlNode *ls = artifacts_report_xml_child(k, "lines"); ls;
					     ls = artifacts_report_xml_next(ls, "lines"))
						for (xmlNode *l = artifacts_report_xml_child(ls, "line"); l;
						     l = artifacts_report_xml_next(l, "line")) {
							uint32_t nr = u32(artifacts_report_parse_int(
								artifacts_report_xml_attr(x, l, "number")));
							bool hit = artifacts_report_parse_int(
									   artifacts_report_xml_attr(
										   x, l, "hits")) > 0;
							uint32_t bc = 0, bt = 0;
							const char *br =
								artifacts_report_xml_attr(x, l, "branch");
							if (br && !strcmp(br, "true"))
								condition_coverage(
									artifacts_report_xml_attr(
										x, l, "condition-coverage"),
									&bc, &bt);
							artifacts_report_cov_add_line(c, nr, hit, bc, bt);
						}
				}
	return 0;
}

/* --------------------------------------------------------------- JaCoCo */

static void jacoco_counters(artifacts_report_xml *x, xmlNode *n, artifacts_report_coverage *c)
{
	for (xmlNode *k = artifacts_report_xml_child(n, "counter"); k;
	     k = artifacts_report_xml_next(k, "counter")) {
		const char *type = artifacts_report_xml_attr(x, k, "type");
		int64_t mi = artifacts_report_parse_int(artifacts_report_xml_attr(x, k, "missed"));
		int64_t co = artifacts_report_parse_int(artifacts_report_xml_attr(x, k, "covered"));
		if (type && !strcmp(type, "LINE"))
			artifacts_report_cov_add_counters(c, co, mi, 0, 0);
		else if (type && !strcmp(type, "BRANCH"))
			artifacts_report_cov_add_counters(c, 0, 0, co, mi);
	}
}

static char *jacoco_path(const char *pkg, const char *file)
{
	if (!pkg || !*pkg)
		return cbl_xstrdup(file);
	return cbl_xasprintf("%s/%s", pkg, file);
}

static void jacoco_package(artifacts_report *rep, artifacts_report_xml *x, xmlNode *pkg)
{
	const char *pname = artifacts_report_xml_attr(x, pkg, "name");
	bool any = false;
	for (xmlNode *sf = artifacts_report_xml_child(pkg, "sourcefile"); sf;
	     sf = artifacts_report_xml_next(sf, "sourcefile")) {
		const char *name = artifacts_report_xml_attr(x, sf, "name");
		if (!name || !*name)
			continue;
		any = true;
		char *path = jacoco_path(pname, name);
		artifacts_report_coverage *c = artifacts_report_cov_get(rep, path);
		free(path);
		xmlNode *l = artifacts_report_xml_child(sf, "line");
		if (!l) {
			jacoco_counters(x, sf, c);
			continue;
		}
		for (; l; l = artifacts_report_xml_next(l, "line")) {
			uint32_t nr = u32(artifacts_report_parse_int(artifacts_report_xml_attr(x, l, "nr")));
			int64_t ci = artifacts_report_parse_int(artifacts_report_xml_attr(x, l, "ci"));
			int64_t mb = artifacts_report_parse_int(artifacts_report_xml_attr(x, l, "mb"));
			int64_t cb = artifacts_report_parse_int(artifacts_report_xml_attr(x, l, "cb"));
			artifacts_report_cov_add_line(c, nr, ci > 0, u32(cb), u32(mb + cb));
		}
	}
	if (any)
		return;
	for (xmlNode *k = artifacts_report_xml_child(pkg, "class"); k;
	     k = artifacts_report_xml_next(k, "class")) {
		const char *sfn = artifacts_report_xml_attr(x, k, "sourcefilename");
		if (!sfn || !*sfn)
			continue;
		char *path = jacoco_path(pname, sfn);
		jacoco_counters(x, k, artifacts_report_cov_get(rep, path));
		free(path);
	}
}

static void jacoco_group(artifacts_report *rep, artifacts_report_xml *x, xmlNode *g, int depth)
{
	if (depth > 64)
		return;
	for (xmlNode *ch = artifacts_report_xml_child(g, NULL); ch;
	     ch = artifacts_report_xml_next(ch, NULL)) {
		if (artifacts_report_xml_is(ch, "package"))
			jacoco_package(rep, x, ch);
		else if (artifacts_report_xml_is(ch, "group"))
			jacoco_group(rep, x, ch, depth + 1);
	}
}

int artifacts_report_parse_jacoco(artifacts_report *rep, artifacts_report_xml *x, cbl_error **err)
{
	static const char *const roots[] = {"report", NULL};
	xmlNode *root;
	int rc = artifacts_report_xml_root(x, roots, &root, err);
	if (rc < 0)
		return rc;
	jacoco_group(rep, x, root, 0);
	return 0;
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
