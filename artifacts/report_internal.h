/* artifacts/report_internal.h - shared by artifacts/report*.c and the unit
 * tests; not part of the library's contract. */
#ifndef ARTIFACTS_REPORT_INTERNAL_H
#define ARTIFACTS_REPORT_INTERNAL_H

#include <stdint.h>

#include "artifacts/report.h"
#include "util/buf.h"

/* Text gathered from one element (a failure's stack trace, a TRX
 * <Message>): bytes beyond this are dropped while streaming. */
#define ARTIFACTS_REPORT_MAX_TEXT ARTIFACTS_REPORT_MAX_MESSAGE

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

/* Retention rank (report.h): FAILED 0, ERROR 1, UNKNOWN 2, anything else 3. */
int artifacts_report_case_rank(artifacts_report_test_status s);
/* Whether a case of status s, pushed now, would be retained.  Parsers ask
 * before building the strings of a case that would only be counted. */
bool artifacts_report_case_wanted(const artifacts_report *rep, artifacts_report_test_status s);
/* Counts *c in rep->test (duration clamped to >= 0, an out-of-range status
 * becomes UNKNOWN) and retains it when the rule of report.h says so: its
 * strings move into rep->cases (NULL prefix/name become "", raw_path is set
 * to a copy of raw_path), a retained case of a worse rank may be evicted.
 * Otherwise its strings are freed.  *c is zeroed either way. */
void artifacts_report_case_push(artifacts_report *rep, artifacts_report_case *c, const char *raw_path);
/* Frees the strings of a case that was never pushed; zeroes it. */
void artifacts_report_case_release(artifacts_report_case *c);
/* Adds "<display>: <message>" to rep->warnings. */
void artifacts_report_warn(artifacts_report *rep, const char *display, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Replaces *dst with a copy of s (NULL allowed). */
void artifacts_report_str_set(char **dst, const char *s);
/* Builds "message\ndetails" (either may be NULL/blank; details equal to the
 * message, or starting with it, are not repeated), cut to
 * ARTIFACTS_REPORT_MAX_MESSAGE bytes.  NULL when both blank. */
char *artifacts_report_message(const char *message, const char *details);
/* Trims " \t\r\n" from both ends of b in place; returns its text, or NULL
 * when it is blank.  Borrowed from b. */
const char *artifacts_report_trimmed(cbl_buf *b);

/* A reusable copy of an optional string (an attribute value kept from an
 * element's start to its end): no allocation once it has grown. */
typedef struct artifacts_report_slot {
	cbl_buf b;
	bool set;
} artifacts_report_slot;
/* Copies v into s (NULL: s becomes unset). */
void artifacts_report_slot_set(artifacts_report_slot *s, const char *v);
void artifacts_report_slot_clear(artifacts_report_slot *s);
/* The copy, or NULL when unset.  Borrowed from s. */
const char *artifacts_report_slot_get(const artifacts_report_slot *s);
void artifacts_report_slot_release(artifacts_report_slot *s);

/* The coverage entry of path in rep (created, kept sorted by path). */
artifacts_report_coverage *artifacts_report_cov_get(artifacts_report *rep, const char *path);
void artifacts_report_cov_add_line(artifacts_report_coverage *c, uint32_t nr, bool hit, uint32_t bcov,
				   uint32_t btot);
/* Branches on a line without counting the line itself. */
void artifacts_report_cov_add_branches(artifacts_report_coverage *c, uint32_t nr, uint32_t bcov,
				       uint32_t btot);
void artifacts_report_cov_add_counters(artifacts_report_coverage *c, int64_t lc, int64_t lm, int64_t bc,
				       int64_t bm);

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

/* ---- streaming XML (report_xml.c) ----
 *
 * One pass of libxml2's SAX2 push parser over a file descriptor or a buffer,
 * fed in chunks: memory does not depend on the document's size.  The format
 * parsers see element starts and ends (local names, namespaces ignored) and
 * ask for what they need: attribute values while an element starts, the text
 * of an element's subtree (capped at ARTIFACTS_REPORT_MAX_TEXT) until it
 * ends.  Any other text (system-out of any size) is skipped without being
 * stored.  XML safety as described in report.h. */

/* Where a report comes from: fd >= 0 is read to its end (not closed);
 * otherwise data/len.  display names it in messages.  chunk: at most this
 * many bytes per xmlParseChunk call (0 = the default, 64 KiB); tests and
 * fuzzers use small ones to check that chunk boundaries change nothing. */
typedef struct artifacts_report_input {
	int fd;
	const char *data;
	size_t len;
	const char *display;
	size_t chunk;
} artifacts_report_input;

/* artifacts_report_parse_buffer/file over an input (report.c): the type
 * check, a scratch report, the merge.  JSON formats need in->data. */
int artifacts_report_parse_input(artifacts_report *rep, spec_report_format fmt, const artifacts_report_input *in,
				 cbl_error **err);

typedef struct artifacts_report_xml artifacts_report_xml; /* one parse */

typedef struct artifacts_report_xml_ops {
	/* NULL-terminated local names the root element may have; anything
	 * else fails with "expected root element <a> or <b>, found <c>". */
	const char *const *roots;
	/* An element starts; depth 0 is the root.  Return < 0 to stop (after
	 * artifacts_report_xml_fail). */
	int (*start)(artifacts_report_xml *x, void *user, const char *name, int depth);
	/* The element of the matching start ends; NULL = not interested. */
	void (*end)(artifacts_report_xml *x, void *user, const char *name, int depth);
	/* The document was well-formed; < 0 to fail it anyway.  May be NULL. */
	int (*finish)(artifacts_report_xml *x, void *user);
} artifacts_report_xml_ops;

/* Parses in with ops.  Returns 0, or < 0 with *err set: CBL_EINVAL for XML
 * that is not well-formed ("<display>:<line>: invalid XML: <reason>") or
 * refused by a callback, CBL_EIO when the descriptor cannot be read. */
int artifacts_report_xml_run(const artifacts_report_input *in, const artifacts_report_xml_ops *ops, void *user,
			     cbl_error **err);
/* Line of the current event (1-based; 0 unknown). */
int artifacts_report_xml_line(const artifacts_report_xml *x);
/* Only inside start: the value of the attribute with this local name,
 * character and predefined entity references decoded, references to other
 * entities dropped.  NULL when absent.  Borrowed until start returns. */
const char *artifacts_report_xml_attr(artifacts_report_xml *x, const char *name);
/* Only inside start: appends the text and CDATA of the starting element's
 * subtree (up to 64 levels down) to into, at most ARTIFACTS_REPORT_MAX_TEXT
 * bytes in all, until the element ends (before end is called).  false when
 * another capture is running (its text includes this one's). */
bool artifacts_report_xml_capture(artifacts_report_xml *x, cbl_buf *into);
/* artifacts_report_fail() with the parse's error and display; returns
 * CBL_EINVAL. */
int artifacts_report_xml_fail(artifacts_report_xml *x, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- format parsers: fill a scratch report ---- */
int artifacts_report_parse_junit(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err);
int artifacts_report_parse_testng(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err);
int artifacts_report_parse_trx(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err);
int artifacts_report_parse_nunit2(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err);
int artifacts_report_parse_nunit3(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err);
int artifacts_report_parse_clover(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err);
int artifacts_report_parse_cobertura(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err);
int artifacts_report_parse_jacoco(artifacts_report *rep, const artifacts_report_input *in, cbl_error **err);
/* JSON formats: whole documents (jansson) */
int artifacts_report_parse_cucumber(artifacts_report *rep, const char *data, size_t len, const char *display,
				    cbl_error **err);
int artifacts_report_parse_simplecov(artifacts_report *rep, const char *data, size_t len, const char *display,
				     cbl_error **err);

/* report.c: what one parsed document adds to rep (its coverage normalised,
 * then merged); report_parse.c calls it. */
void artifacts_report_merge_parsed(artifacts_report *rep, artifacts_report *scratch);

#endif
