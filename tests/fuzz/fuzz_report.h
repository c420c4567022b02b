/* tests/fuzz/fuzz_report.h - the body of the libFuzzer targets for the
 * report parsers; each tests/fuzz/fuzz_report_<format>.c defines
 * FUZZ_REPORT_FORMAT and includes this file once.
 *
 * Each input is parsed as a report file of that format, then:
 * - the result agrees with the return code (an error leaves the report
 *   untouched, a success counts one file);
 * - the retention invariants hold (report.h): counts add up, at most 500
 *   cases kept, exactly the ones the counts say, every string set, no
 *   message above ARTIFACTS_REPORT_MAX_MESSAGE, no negative line;
 * - coverage entries are sorted, numbers are not negative;
 * - the same input streamed in small chunks (1..97 bytes per xmlParseChunk)
 *   gives the same verdict and the same report.  Two libxml2 2.9 push
 *   parser quirks make the verdict depend on where chunks end, so inputs
 *   that could hit them are left out of this comparison (they are still
 *   parsed both ways, under the sanitizers):
 *   - a DOCTYPE: its end is found with a plain search for '>', so a '>'
 *     inside a quoted system literal split from the end of the DOCTYPE
 *     fails a document that parses whole (in production the first chunk is
 *     64 KiB, which holds the DOCTYPE);
 *   - an encoding other than UTF-8 (an encoding declaration, a byte order
 *     mark or no '<' first): whether bytes the encoding cannot convert fail
 *     the document depends on the chunk they arrive in;
 * - the same input parsed again into the same report doubles the counts and
 *   keeps the invariants (the merge path);
 * - every JSON shape and the summary line are rendered.
 * Everything is freed; LeakSanitizer checks the rest.
 */
#ifndef FUZZ_REPORT_H
#define FUZZ_REPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "artifacts/report.h"
#include "artifacts/report_internal.h"
#include "util/buf.h"
#include "util/error.h"

#include "util/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static void check_report(const artifacts_report *rep)
{
	size_t sum = 0, keep[4] = {0}, have[4] = {0};
	for (int s = 0; s < ARTIFACTS_REPORT_STATUS_COUNT; s++)
		sum += rep->test.counts[s];
	CHECK(sum == rep->test.total);
	CHECK(rep->test.duration_ns >= 0);
	if (rep->type == ARTIFACTS_REPORT_CODE_COVERAGE) {
		CHECK(rep->ncases == 0 && rep->test.total == 0);
		for (size_t i = 0; i < rep->nfiles; i++) {
			const artifacts_report_coverage *c = &rep->files[i];
			CHECK(c->path != NULL);
			CHECK(i == 0 || strcmp(rep->files[i - 1].path, c->path) < 0);
			CHECK(c->lines_covered >= 0 && c->lines_missed >= 0 && c->branches_covered >= 0 &&
			      c->branches_missed >= 0);
			double lp = artifacts_report_coverage_line_pct(c), bp = artifacts_report_coverage_branch_pct(c);
			CHECK(lp >= 0 && lp <= 100 && bp >= 0 && bp <= 100);
		}
		CHECK(!strcmp(artifacts_report_status_name(rep), "SUCCEEDED"));
		return;
	}
	CHECK(rep->nfiles == 0);
	CHECK(rep->ncases == (rep->test.total < ARTIFACTS_REPORT_MAX_CASES ? rep->test.total
									   : ARTIFACTS_REPORT_MAX_CASES));
	CHECK(artifacts_report_truncated(rep) == (rep->test.total > ARTIFACTS_REPORT_MAX_CASES));
	/* what the counts say each rank keeps */
	size_t by_rank[4] = {rep->test.counts[ARTIFACTS_REPORT_FAILED], rep->test.counts[ARTIFACTS_REPORT_ERROR],
			     rep->test.counts[ARTIFACTS_REPORT_UNKNOWN],
			     rep->test.counts[ARTIFACTS_REPORT_SUCCEEDED] + rep->test.counts[ARTIFACTS_REPORT_SKIPPED]};
	size_t left = ARTIFACTS_REPORT_MAX_CASES;
	for (int r = 0; r < 4; r++) {
		keep[r] = by_rank[r] < left ? by_rank[r] : left;
		left -= keep[r];
	}
	bool fails = false;
	for (size_t i = 0; i < rep->ncases; i++) {
		const artifacts_report_case *c = &rep->cases[i];
		CHECK((unsigned)c->status < ARTIFACTS_REPORT_STATUS_COUNT);
		CHECK(c->prefix && c->name && c->raw_path);
		CHECK(c->duration_ns >= 0 && c->line >= 0);
		CHECK(!c->message || (*c->message && strlen(c->message) <= ARTIFACTS_REPORT_MAX_MESSAGE));
		have[artifacts_report_case_rank(c->status)]++;
		char *loc = artifacts_report_case_location(c);
		free(loc);
	}
	for (int r = 0; r < 4; r++)
		CHECK(have[r] == keep[r]);
	fails = rep->test.counts[ARTIFACTS_REPORT_FAILED] || rep->test.counts[ARTIFACTS_REPORT_ERROR] ||
		rep->test.counts[ARTIFACTS_REPORT_UNKNOWN];
	CHECK(!strcmp(artifacts_report_status_name(rep), fails ? "FAILED" : "SUCCEEDED"));
	size_t *idx = NULL;
	size_t n = artifacts_report_select_cases(rep, 0, &idx);
	CHECK(n == rep->ncases);
	for (size_t k = 1; k < n; k++)
		CHECK(artifacts_report_case_rank(rep->cases[idx[k - 1]].status) <=
		      artifacts_report_case_rank(rep->cases[idx[k]].status));
	free(idx);
	const artifacts_report_case **fc = NULL;
	size_t nf = artifacts_report_failing_cases(rep, &fc);
	CHECK(nf == have[0] + have[1] + have[2]);
	free(fc);
}

static bool same_report(const artifacts_report *a, const artifacts_report *b)
{
	if (a->type != b->type || a->ncases != b->ncases || a->nfiles != b->nfiles || a->nraw != b->nraw ||
	    memcmp(&a->test, &b->test, sizeof(a->test)) != 0)
		return false;
	for (size_t i = 0; i < a->ncases; i++) {
		const artifacts_report_case *x = &a->cases[i], *y = &b->cases[i];
		if (!str_eq(x->prefix, y->prefix) || !str_eq(x->name, y->name) ||
		    !str_eq(x->test_suite_name, y->test_suite_name) || x->status != y->status ||
		    x->duration_ns != y->duration_ns || !str_eq(x->message, y->message) || !str_eq(x->file, y->file) ||
		    x->line != y->line || !str_eq(x->raw_path, y->raw_path))
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

static void render(const artifacts_report *rep)
{
	artifacts_report_meta meta = ARTIFACTS_REPORT_META_INIT;
	meta.arn = "arn:aws:codebuild:us-east-1:000000000000:report/g:fuzz";
	meta.created_us = 1715684400000000LL;
	json_t *j[3] = {artifacts_report_to_json(rep, &meta), artifacts_report_test_cases_json(rep, &meta),
			artifacts_report_coverages_json(rep, &meta)};
	for (int i = 0; i < 3; i++) {
		CHECK(j[i] != NULL);
		char *s = json_dumps(j[i], JSON_COMPACT);
		CHECK(s != NULL);
		free(s);
		json_decref(j[i]);
	}
	cbl_buf b = CBL_BUF_INIT;
	artifacts_report_summary_line(rep, &b);
	cbl_buf_release(&b);
}

static bool is_empty(const artifacts_report *rep)
{
	return rep->ncases == 0 && rep->nfiles == 0 && rep->nraw == 0 && rep->test.total == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const spec_report_format fmt = FUZZ_REPORT_FORMAT;
	const char *d = (const char *)data;
	artifacts_report a, b;
	cbl_error *err = NULL;

	artifacts_report_init(&a, fmt);
	int rc = artifacts_report_parse_buffer(&a, fmt, d, size, "fuzz.report", &err);
	CHECK(rc == 0 || rc == CBL_EINVAL);
	CHECK((rc == 0) == (err == NULL));
	if (err)
		CHECK(err->msg && strstr(err->msg, "fuzz.report") && err->line >= 0);
	CHECK(rc == 0 ? a.nraw == 1 : is_empty(&a));
	check_report(&a);
	render(&a);
	cbl_error_clear(&err);

	if (fmt != SPEC_REPORT_CUCUMBERJSON && fmt != SPEC_REPORT_SIMPLECOV) {
		bool comparable = size && d[0] == '<' && !memmem(d, size, "<!DOCTYPE", 9) &&
				  !memmem(d, size, "encoding", 8);
		artifacts_report_input in = {.fd = -1, .data = d, .len = size, .display = "fuzz.report",
					     .chunk = 1 + size % 97};
		artifacts_report_init(&b, fmt);
		int rc2 = artifacts_report_parse_input(&b, fmt, &in, &err);
		CHECK((rc2 == 0) == (err == NULL));
		if (comparable) {
			CHECK((rc2 == 0) == (rc == 0));
			CHECK(same_report(&a, &b));
		}
		check_report(&b);
		artifacts_report_release(&b);
		cbl_error_clear(&err);
	}

	if (rc == 0) {
		artifacts_report_test_summary once = a.test;
		int rc3 = artifacts_report_parse_buffer(&a, fmt, d, size, "fuzz.report", &err);
		CHECK(rc3 == 0 && a.nraw == 2 && a.test.total == 2 * once.total);
		for (int s = 0; s < ARTIFACTS_REPORT_STATUS_COUNT; s++)
			CHECK(a.test.counts[s] == 2 * once.counts[s]);
		check_report(&a);
		render(&a);
		cbl_error_clear(&err);
	}
	artifacts_report_release(&a);
	return 0;
}

#endif
