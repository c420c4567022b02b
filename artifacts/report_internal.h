/* artifacts/report_internal.h - shared by artifacts/report*.c and the unit
 * tests; not part of the library's contract. */
#ifndef ARTIFACTS_REPORT_INTERNAL_H
#define ARTIFACTS_REPORT_INTERNAL_H

#include <libxml/tree.h>
#include <stdint.h>

#include "artifacts/report.h"
#include "util/strv.h"

/* Per-line coverage kept inside artifacts_report_coverage so that the same
 * source line seen in two files (or two Cobertura <class>es) counts once. */
struct artifacts_report_covline {
	uint32_t nr;
	uint16_t hit;	   /* 0 / 1 */
	uint16_t has_line; /* 0: an entry that only carries branches (SimpleCov) */
	uint32_t bcov;	   /* branches covered on this line */
	uint32_t btot;	   /* branches on this line */
};

/* The private part of a coverage entry (allocated lazily). */
struct artifacts_report_covpriv {
	struct artifacts_report_covline *lines;
	size_t nlines, cap;
	/* counter-only data (JaCoCo counters, Clover metrics): summed */
	int64_t lc, lm, bc, bm;
};

/* ---- model helpers (report.c) ---- */

/* Appends a zeroed case with name/prefix "" and raw_path set. */
artifacts_report_case *artifacts_report_case_add(artifacts_report *rep, const char *raw_path);
/* Replaces *dst with a copy of s (NULL allowed). */
void artifacts_report_str_set(char **dst, const char *s);
/* Builds "message\ndetails" (either may be NULL/blank; details equal to the
 * message, or starting with it, are not repeated).  NULL when both blank. */
char *artifacts_report_message(const char *message, const char *details);

/* The coverage entry of path in rep (created, kept sorted by path). */
artifacts_report_coverage *artifacts_report_cov_get(artifacts_report *rep, const char *path);
void artifacts_report_cov_add_line(artifacts_report_coverage *c, uint32_t nr, bool hit, uint32_t bcov,
				   uint32_t btot);
/* Branches on a line without counting the line itself. */
void artifacts_report_cov_add_branches(artifacts_report_coverage *c, uint32_t nr, uint32_t bcov,
				       uint32_t btot);
void artifacts_report_cov_add_counters(artifacts_report_coverage *c, int64_t lc, int64_t lm, int64_t bc,
				       int64_t bm);
/* True when the entry has per-line data. */
bool artifacts_report_cov_has_lines(const artifacts_report_coverage *c);

/* ---- number parsing (report.c): lenient, never negative, 0 on garbage ---- */
int64_t artifacts_report_parse_int(const char *s);
/* "0.123", "1,234.5" (surefire's grouping), "1e-3" seconds -> ns */
int64_t artifacts_report_parse_seconds_ns(const char *s);
/* "12" / "12.5" milliseconds -> ns */
int64_t artifacts_report_parse_ms_ns(const char *s);
/* .NET TimeSpan "[d.]hh:mm:ss[.fffffff]" -> ns */
int64_t artifacts_report_parse_timespan_ns(const char *s);
/* Finds the source position in a stack trace: the first frame of java_class
 * ("at <java_class>.m(<File>.java:<n>)") when given, else the first .NET
 * frame " in <file>:line <n>".  Sets *file (caller frees) and *line. */
bool artifacts_report_stack_location(const char *stack, const char *java_class, char **file, int *line);

/* Sets a CBL_EINVAL error "<display>:<line>: <message>" (or "<display>:
 * <message>" when line <= 0) with err->file/line; returns CBL_EINVAL. */
int artifacts_report_fail(cbl_error **err, const char *display, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- XML (artifacts_report_xml.c) ---- */
typedef struct artifacts_report_xml {
	xmlDoc *doc;
	const char *display; /* borrowed */
	cbl_strv pool;	     /* strings handed out by artifacts_report_xml_attr/text */
} artifacts_report_xml;

/* Parses an XML document safely (see report.h).  On success x->doc is set. */
int artifacts_report_xml_parse(artifacts_report_xml *x, const char *data, size_t len, const char *display,
			       cbl_error **err);
void artifacts_report_xml_release(artifacts_report_xml *x);
/* Checks the root element's local name against a NULL-terminated list;
 * error "…: expected root element <a> or <b>, found <c>" otherwise. */
int artifacts_report_xml_root(artifacts_report_xml *x, const char *const *names, xmlNode **out,
			      cbl_error **err);
/* Local-name test of an element node. */
bool artifacts_report_xml_is(const xmlNode *n, const char *name);
/* First element child with this local name (NULL = any element). */
xmlNode *artifacts_report_xml_child(const xmlNode *n, const char *name);
/* Next element sibling with this local name (NULL = any element). */
xmlNode *artifacts_report_xml_next(const xmlNode *n, const char *name);
/* Attribute value (no namespace check), borrowed until artifacts_report_xml_release;
 * NULL when absent.  Entity references are dropped, not expanded. */
const char *artifacts_report_xml_attr(artifacts_report_xml *x, const xmlNode *n, const char *name);
/* Concatenated text/CDATA of n's subtree, trimmed; NULL when blank. */
const char *artifacts_report_xml_text(artifacts_report_xml *x, const xmlNode *n);
int artifacts_report_xml_line(const xmlNode *n);

/* ---- format parsers: fill a scratch report ---- */
int artifacts_report_parse_junit(artifacts_report *rep, artifacts_report_xml *x, cbl_error **err);
int artifacts_report_parse_testng(artifacts_report *rep, artifacts_report_xml *x, cbl_error **err);
int artifacts_report_parse_trx(artifacts_report *rep, artifacts_report_xml *x, cbl_error **err);
int artifacts_report_parse_nunit2(artifacts_report *rep, artifacts_report_xml *x, cbl_error **err);
int artifacts_report_parse_nunit3(artifacts_report *rep, artifacts_report_xml *x, cbl_error **err);
int artifacts_report_parse_clover(artifacts_report *rep, artifacts_report_xml *x, cbl_error **err);
int artifacts_report_parse_cobertura(artifacts_report *rep, artifacts_report_xml *x, cbl_error **err);
int artifacts_report_parse_jacoco(artifacts_report *rep, artifacts_report_xml *x, cbl_error **err);
int artifacts_report_parse_cucumber(artifacts_report *rep, const char *data, size_t len, const char *display,
				    cbl_error **err);
int artifacts_report_parse_simplecov(artifacts_report *rep, const char *data, size_t len, const char *display,
				     cbl_error **err);

#endif
