/* artifacts/report.c - the report model: building, merging, numbers, and the
 * CodeBuild API shapes (Report, TestCase, CodeCoverage).
 *
 * Compatibility choices (the service does not document them):
 * - Report status: a TEST report is FAILED when any case is FAILED, ERROR or
 *   UNKNOWN ("SUCCEEDED: all cases passed", skipped ones do not count);
 *   CODE_COVERAGE reports are SUCCEEDED.
 * - testSummary.durationInNanoSeconds is the sum of the case durations, not a
 *   suite's wall time (suites run in parallel would otherwise disagree).
 * - Percentages are plain doubles, covered * 100 / (covered + missed); with
 *   nothing to cover the percentage is 0 (the API's Percentage shape is a
 *   0..100 double, so no NaN and no null).
 * - Retention (report.h): the cases a report keeps are exactly the ones
 *   artifacts_report_select_cases() would pick from all of them, so they are
 *   decided as cases arrive.  The retained cases of each rank are then the
 *   first min(count, room left by the better ranks) of that rank, which the
 *   summary counts alone determine (retained_by_rank).  An eviction lowers
 *   the sum of the retained ranks, which never exceeds 3 * 500, so a report
 *   sees at most 1,500 of them however many cases it counts.
 */
#include "artifacts/report_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/safeopen.h"

#include "util/banned.h"

static const char *const status_names[ARTIFACTS_REPORT_STATUS_COUNT] = {
	[ARTIFACTS_REPORT_SUCCEEDED] = "SUCCEEDED", [ARTIFACTS_REPORT_FAILED] = "FAILED",
	[ARTIFACTS_REPORT_ERROR] = "ERROR",	    [ARTIFACTS_REPORT_SKIPPED] = "SKIPPED",
	[ARTIFACTS_REPORT_UNKNOWN] = "UNKNOWN",
};

const char *artifacts_report_test_status_name(artifacts_report_test_status s)
{
	return (unsigned)s < ARTIFACTS_REPORT_STATUS_COUNT ? status_names[s] : "?";
}

/* ------------------------------------------------------------ lifecycle */

void artifacts_report_init(artifacts_report *rep, spec_report_format fmt)
{
	memset(rep, 0, sizeof(*rep));
	rep->format = fmt;
	rep->type =
		spec_report_format_is_coverage(fmt) ? ARTIFACTS_REPORT_CODE_COVERAGE : ARTIFACTS_REPORT_TEST;
}

static void cov_release(artifacts_report_coverage *c)
{
	free(c->path);
	if (c->priv) {
		free(c->priv->lines);
		free(c->priv);
	}
}

void artifacts_report_release(artifacts_report *rep)
{
	if (!rep)
		return;
	for (size_t i = 0; i < rep->ncases; i++)
		artifacts_report_case_release(&rep->cases[i]);
	free(rep->cases);
	for (size_t i = 0; i < rep->nfiles; i++)
		cov_release(&rep->files[i]);
	free(rep->files);
	for (size_t i = 0; i < rep->nwarnings; i++)
		free(rep->warnings[i]);
	free(rep->warnings);
	spec_report_format fmt = rep->format;
	artifacts_report_init(rep, fmt);
}

/* ------------------------------------------------------------ builders */

int artifacts_report_case_rank(artifacts_report_test_status s)
{
	switch (s) {
	case ARTIFACTS_REPORT_FAILED:
		return 0;
	case ARTIFACTS_REPORT_ERROR:
		return 1;
	case ARTIFACTS_REPORT_UNKNOWN:
		return 2;
	default:
		return 3;
	}
}

#define NRANKS 4

/* How many cases of each rank the retention rule keeps, given the counts of
 * every case the report has seen. */
static size_t retained_by_rank(const artifacts_report_test_summary *t, size_t keep[NRANKS])
{
	size_t by_rank[NRANKS] = {
		t->counts[ARTIFACTS_REPORT_FAILED],
		t->counts[ARTIFACTS_REPORT_ERROR],
		t->counts[ARTIFACTS_REPORT_UNKNOWN],
		t->counts[ARTIFACTS_REPORT_SUCCEEDED] + t->counts[ARTIFACTS_REPORT_SKIPPED],
	};
	size_t left = ARTIFACTS_REPORT_MAX_CASES;
	for (int r = 0; r < NRANKS; r++) {
		keep[r] = by_rank[r] < left ? by_rank[r] : left;
		left -= keep[r];
	}
	return ARTIFACTS_REPORT_MAX_CASES - left;
}

static artifacts_report_test_status valid_status(artifacts_report_test_status s)
{
	return (unsigned)s < ARTIFACTS_REPORT_STATUS_COUNT ? s : ARTIFACTS_REPORT_UNKNOWN;
}

bool artifacts_report_case_wanted(const artifacts_report *rep, artifacts_report_test_status s)
{
	size_t keep[NRANKS];
	if (retained_by_rank(&rep->test, keep) < ARTIFACTS_REPORT_MAX_CASES)
		return true;
	for (int r = NRANKS - 1; r > artifacts_report_case_rank(valid_status(s)); r--)
		if (keep[r])
			return true;
	return false;
}

void artifacts_report_case_release(artifacts_report_case *c)
{
	free(c->prefix);
	free(c->name);
	free(c->test_suite_name);
	free(c->message);
	free(c->file);
	free(c->raw_path);
	memset(c, 0, sizeof(*c));
}

static int64_t sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	return a + b;
}

/* Drops the last retained case of the worst rank. */
static void evict_one(artifacts_report *rep)
{
	size_t victim = 0;
	int worst = -1;
	for (size_t i = rep->ncases; i-- > 0;) {
		int r = artifacts_report_case_rank(rep->cases[i].status);
		if (r > worst) {
			worst = r;
			victim = i;
		}
	}
	if (worst < 0)
		return;
	artifacts_report_case_release(&rep->cases[victim]);
	memmove(&rep->cases[victim], &rep->cases[victim + 1],
		(rep->ncases - victim - 1) * sizeof(rep->cases[0]));
	rep->ncases--;
}

void artifacts_report_case_push(artifacts_report *rep, artifacts_report_case *c, const char *raw_path)
{
	c->status = valid_status(c->status);
	if (c->duration_ns < 0)
		c->duration_ns = 0;
	bool keep = artifacts_report_case_wanted(rep, c->status);
	rep->test.total++;
	rep->test.counts[c->status]++;
	rep->test.duration_ns = sat_add(rep->test.duration_ns, c->duration_ns);
	if (!keep) {
		artifacts_report_case_release(c);
		return;
	}
	if (rep->ncases >= ARTIFACTS_REPORT_MAX_CASES)
		evict_one(rep);
	CBL_GROW(rep->cases, rep->ncases + 1, rep->cases_cap);
	artifacts_report_case *d = &rep->cases[rep->ncases++];
	*d = *c;
	memset(c, 0, sizeof(*c));
	if (!d->prefix)
		d->prefix = cbl_xstrdup("");
	if (!d->name)
		d->name = cbl_xstrdup("");
	free(d->raw_path);
	d->raw_path = cbl_xstrdup(raw_path ? raw_path : "");
}

void artifacts_report_warn(artifacts_report *rep, const char *display, const char *fmt, ...)
{
	cbl_buf b = CBL_BUF_INIT;
	va_list ap;
	cbl_buf_printf(&b, "%s: ", display ? display : "(report)");
	va_start(ap, fmt);
	cbl_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	CBL_GROW(rep->warnings, rep->nwarnings + 1, rep->warnings_cap);
	rep->warnings[rep->nwarnings++] = cbl_buf_detach(&b);
}

void artifacts_report_str_set(char **dst, const char *s)
{
	char *n = s ? cbl_xstrdup(s) : NULL;
	free(*dst);
	*dst = n;
}

static void trim_span(const char **s, size_t *n)
{
	while (*n && isspace((unsigned char)**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

/* At most max bytes of s, not splitting a UTF-8 sequence. */
static size_t utf8_prefix(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
		max--;
	return max;
}

static char *message_dup(const char *s, size_t n)
{
	return cbl_xstrndup(s, utf8_prefix(s, n, ARTIFACTS_REPORT_MAX_MESSAGE));
}

char *artifacts_report_message(const char *message, const char *details)
{
	const char *m = message ? message : "", *d = details ? details : "";
	size_t mn = strlen(m), dn = strlen(d);
	trim_span(&m, &mn);
	trim_span(&d, &dn);
	if (!mn && !dn)
		return NULL;
	if (!dn || (mn && dn >= mn && !memcmp(d, m, mn) && dn == mn))
		return message_dup(m, mn);
	if (!mn)
		return message_dup(d, dn);
	/* details that already start with the message (a stack trace whose
	 * first line is the message) replace it */
	if (dn > mn && !memcmp(d, m, mn))
		return message_dup(d, dn);
	mn = utf8_prefix(m, mn, ARTIFACTS_REPORT_MAX_MESSAGE);
	cbl_buf b = CBL_BUF_INIT;
	cbl_buf_append(&b, m, mn);
	if (mn + 1 < ARTIFACTS_REPORT_MAX_MESSAGE) {
		cbl_buf_putc(&b, '\n');
		cbl_buf_append(&b, d, utf8_prefix(d, dn, ARTIFACTS_REPORT_MAX_MESSAGE - mn - 1));
	}
	return cbl_buf_detach(&b);
}

const char *artifacts_report_trimmed(cbl_buf *b)
{
	if (!b->len)
		return NULL;
	size_t start = 0, end = b->len;
	while (start < end && strchr(" \t\r\n", b->ptr[start]))
		start++;
	while (end > start && strchr(" \t\r\n", b->ptr[end - 1]))
		end--;
	if (start == end)
		return NULL;
	b->ptr[end] = '\0';
	b->len = end;
	return b->ptr + start;
}

void artifacts_report_slot_set(artifacts_report_slot *s, const char *v)
{
	cbl_buf_reset(&s->b);
	s->set = v != NULL;
	if (v)
		cbl_buf_puts(&s->b, v);
}

void artifacts_report_slot_clear(artifacts_report_slot *s)
{
	cbl_buf_reset(&s->b);
	s->set = false;
}

const char *artifacts_report_slot_get(const artifacts_report_slot *s)
{
	return s->set ? cbl_buf_cstr(&s->b) : NULL;
}

void artifacts_report_slot_release(artifacts_report_slot *s)
{
	cbl_buf_release(&s->b);
	s->set = false;
}

/* ------------------------------------------------------------ coverage */

static size_t cov_find(const artifacts_report *rep, const char *path, bool *found)
{
	size_t lo = 0, hi = rep->nfiles;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(rep->files[mid].path, path);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

artifacts_report_coverage *artifacts_report_cov_get(artifacts_report *rep, const char *path)
{
	bool found;
	size_t at = cov_find(rep, path, &found);
	if (found)
		return &rep->files[at];
	CBL_GROW(rep->files, rep->nfiles + 1, rep->files_cap);
	memmove(&rep->files[at + 1], &rep->files[at], (rep->nfiles - at) * sizeof(rep->files[0]));
	rep->nfiles++;
	artifacts_report_coverage *c = &rep->files[at];
	memset(c, 0, sizeof(*c));
	c->path = cbl_xstrdup(path);
	return c;
}

static struct artifacts_report_covpriv *cov_priv(artifacts_report_coverage *c)
{
	if (!c->priv)
		c->priv = cbl_xcalloc(1, sizeof(*c->priv));
	return c->priv;
}

void artifacts_report_cov_add_line(artifacts_report_coverage *c, uint32_t nr, bool hit, uint32_t bcov,
				   uint32_t btot)
{
	struct artifacts_report_covpriv *p = cov_priv(c);
	CBL_GROW(p->lines, p->nlines + 1, p->cap);
	if (bcov > btot)
		bcov = btot;
	p->lines[p->nlines++] = (struct artifacts_report_covline){
		.nr = nr, .hit = hit ? 1 : 0, .has_line = 1, .bcov = bcov, .btot = btot};
}

void artifacts_report_cov_add_branches(artifacts_report_coverage *c, uint32_t nr, uint32_t bcov,
				       uint32_t btot)
{
	struct artifacts_report_covpriv *p = cov_priv(c);
	CBL_GROW(p->lines, p->nlines + 1, p->cap);
	if (bcov > btot)
		bcov = btot;
	p->lines[p->nlines++] = (struct artifacts_report_covline){
		.nr = nr, .hit = 0, .has_line = 0, .bcov = bcov, .btot = btot};
}

void artifacts_report_cov_add_counters(artifacts_report_coverage *c, int64_t lc, int64_t lm, int64_t bc,
				       int64_t bm)
{
	struct artifacts_report_covpriv *p = cov_priv(c);
	p->lc = sat_add(p->lc, lc < 0 ? 0 : lc);
	p->lm = sat_add(p->lm, lm < 0 ? 0 : lm);
	p->bc = sat_add(p->bc, bc < 0 ? 0 : bc);
	p->bm = sat_add(p->bm, bm < 0 ? 0 : bm);
}

static int covline_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct artifacts_report_covline *)a)->nr;
	uint32_t y = ((const struct artifacts_report_covline *)b)->nr;
	return x < y ? -1 : x > y;
}

/* Sorts and merges the per-line data (a line is covered if any source
 * covered it; branch counts take the larger), then recomputes the counts. */
static void cov_normalize(artifacts_report_coverage *c)
{
	struct artifacts_report_covpriv *p = c->priv;
	c->lines_covered = c->lines_missed = c->branches_covered = c->branches_missed = 0;
	if (!p)
		return;
	if (p->nlines > 1) {
		qsort(p->lines, p->nlines, sizeof(p->lines[0]), covline_cmp);
		size_t w = 0;
		for (size_t r = 1; r < p->nlines; r++) {
			struct artifacts_report_covline *a = &p->lines[w], *b = &p->lines[r];
			if (a->nr == b->nr) {
				a->hit |= b->hit;
				a->has_line |= b->has_line;
				if (b->btot > a->btot)
					a->btot = b->btot;
				if (b->bcov > a->bcov)
					a->bcov = b->bcov;
			} else {
				p->lines[++w] = *b;
			}
		}
		p->nlines = w + 1;
	}
	int64_t lc = p->lc, lm = p->lm, bc = p->bc, bm = p->bm;
	for (size_t i = 0; i < p->nlines; i++) {
		const struct artifacts_report_covline *l = &p->lines[i];
		if (l->has_line) {
			if (l->hit)
				lc = sat_add(lc, 1);
			else
				lm = sat_add(lm, 1);
		}
		uint32_t cov = l->bcov > l->btot ? l->btot : l->bcov;
		bc = sat_add(bc, cov);
		bm = sat_add(bm, l->btot - cov);
	}
	c->lines_covered = lc;
	c->lines_missed = lm;
	c->branches_covered = bc;
	c->branches_missed = bm;
}

static double pct(int64_t covered, int64_t missed)
{
	if (covered <= 0 && missed <= 0)
		return 0.0;
	double tot = (double)covered + (double)missed;
	return tot > 0 ? (double)covered * 100.0 / tot : 0.0;
}

double artifacts_report_coverage_line_pct(const artifacts_report_coverage *c)
{
	return pct(c->lines_covered, c->lines_missed);
}

double artifacts_report_coverage_branch_pct(const artifacts_report_coverage *c)
{
	return pct(c->branches_covered, c->branches_missed);
}

/* ------------------------------------------------------------ merging */

static void recompute_coverage_summary(artifacts_report *rep)
{
	artifacts_report_coverage_summary *s = &rep->coverage;
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < rep->nfiles; i++) {
		const artifacts_report_coverage *c = &rep->files[i];
		s->lines_covered = sat_add(s->lines_covered, c->lines_covered);
		s->lines_missed = sat_add(s->lines_missed, c->lines_missed);
		s->branches_covered = sat_add(s->branches_covered, c->branches_covered);
		s->branches_missed = sat_add(s->branches_missed, c->branches_missed);
	}
	s->line_pct = pct(s->lines_covered, s->lines_missed);
	s->branch_pct = pct(s->branches_covered, s->branches_missed);
}

/* Moves everything of the scratch report src into rep; src is left empty. */
static void merge_into(artifacts_report *rep, artifacts_report *src)
{
	/* the counts first: they decide what both sets of retained cases keep */
	rep->test.total += src->test.total;
	for (int st = 0; st < ARTIFACTS_REPORT_STATUS_COUNT; st++)
		rep->test.counts[st] += src->test.counts[st];
	rep->test.duration_ns = sat_add(rep->test.duration_ns, src->test.duration_ns);
	if (src->ncases) {
		CBL_GROW(rep->cases, rep->ncases + src->ncases, rep->cases_cap);
		memcpy(&rep->cases[rep->ncases], src->cases, src->ncases * sizeof(src->cases[0]));
		size_t n = rep->ncases + src->ncases, w = 0, keep[NRANKS], seen[NRANKS] = {0};
		src->ncases = 0;
		retained_by_rank(&rep->test, keep);
		for (size_t i = 0; i < n; i++) {
			int r = artifacts_report_case_rank(rep->cases[i].status);
			if (seen[r] < keep[r]) {
				seen[r]++;
				rep->cases[w++] = rep->cases[i];
			} else {
				artifacts_report_case_release(&rep->cases[i]);
			}
		}
		rep->ncases = w;
	}
	for (size_t i = 0; i < src->nfiles; i++) {
		artifacts_report_coverage *from = &src->files[i];
		artifacts_report_coverage *to = artifacts_report_cov_get(rep, from->path);
		if (from->priv) {
			struct artifacts_report_covpriv *fp = from->priv, *tp = cov_priv(to);
			if (fp->nlines) {
				CBL_GROW(tp->lines, tp->nlines + fp->nlines, tp->cap);
				memcpy(&tp->lines[tp->nlines], fp->lines, fp->nlines * sizeof(fp->lines[0]));
				tp->nlines += fp->nlines;
			}
			artifacts_report_cov_add_counters(to, fp->lc, fp->lm, fp->bc, fp->bm);
		}
		cov_normalize(to);
	}
	recompute_coverage_summary(rep);
	if (src->nwarnings) {
		CBL_GROW(rep->warnings, rep->nwarnings + src->nwarnings, rep->warnings_cap);
		memcpy(&rep->warnings[rep->nwarnings], src->warnings, src->nwarnings * sizeof(src->warnings[0]));
		rep->nwarnings += src->nwarnings;
		src->nwarnings = 0;
	}
	rep->nraw++;
}

/* ------------------------------------------------------------ parsing */

int artifacts_report_fail(cbl_error **err, const char *display, int line, const char *fmt, ...)
{
	cbl_buf b = CBL_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cbl_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	int rc;
	if (line > 0)
		rc = cbl_error_set_at(err, CBL_EINVAL, display, line, 0, "%s:%d: %s", display, line,
				      cbl_buf_cstr(&b));
	else
		rc = cbl_error_set_at(err, CBL_EINVAL, display, 0, 0, "%s: %s", display, cbl_buf_cstr(&b));
	cbl_buf_release(&b);
	return rc;
}

/* What one parsed document adds to rep: its coverage normalised, then
 * merged (report_parse.c parses into a scratch report first). */
void artifacts_report_merge_parsed(artifacts_report *rep, artifacts_report *scratch)
{
	for (size_t i = 0; i < scratch->nfiles; i++)
		cov_normalize(&scratch->files[i]);
	merge_into(rep, scratch);
}

/* ------------------------------------------------------------ numbers */

/* Parses an unsigned decimal "123.456" (',' grouping ignored) scaled by
 * 10^digits, rounding; exponents go through strtod.  Garbage and negative
 * numbers give 0, overflow saturates. */
static int64_t parse_scaled(const char *s, int digits)
{
	if (!s)
		return 0;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '-')
		return 0;
	if (*s == '+')
		s++;
	if (strpbrk(s, "eE")) {
		cbl_buf b = CBL_BUF_INIT;
		for (const char *p = s; *p; p++)
			if (*p != ',')
				cbl_buf_putc(&b, *p);
		errno = 0;
		double v = strtod(cbl_buf_cstr(&b), NULL);
		cbl_buf_release(&b);
		if (!(v > 0) || !isfinite(v))
			return 0;
		for (int i = 0; i < digits; i++)
			v *= 10.0;
		return v >= 9.2e18 ? INT64_MAX : (int64_t)(v + 0.5); /* no libm: round by hand */
	}
	int64_t ip = 0;
	bool sat = false;
	for (; *s == ',' || isdigit((unsigned char)*s); s++) {
		if (*s == ',')
			continue;
		if (ip > (INT64_MAX - 9) / 10)
			sat = true;
		else
			ip = ip * 10 + (*s - '0');
	}
	int64_t scale = 1;
	for (int i = 0; i < digits; i++)
		scale *= 10;
	if (sat || ip > INT64_MAX / scale)
		return INT64_MAX;
	int64_t frac = 0;
	if (*s == '.') {
		s++;
		int n = 0;
		for (; isdigit((unsigned char)*s); s++, n++) {
			if (n < digits)
				frac = frac * 10 + (*s - '0');
			else if (n == digits && *s >= '5')
				frac++; /* round half up on the first dropped digit */
		}
		for (; n < digits; n++)
			frac *= 10;
	}
	int64_t v = ip * scale;
	return v > INT64_MAX - frac ? INT64_MAX : v + frac;
}

int64_t artifacts_report_parse_int(const char *s)
{
	return parse_scaled(s, 0);
}

int64_t artifacts_report_parse_seconds_ns(const char *s)
{
	return parse_scaled(s, 9);
}

int64_t artifacts_report_parse_ms_ns(const char *s)
{
	return parse_scaled(s, 6);
}

int64_t artifacts_report_parse_timespan_ns(const char *s)
{
	if (!s)
		return 0;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '-')
		return 0;
	const char *c1 = strchr(s, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c1 || !c2)
		return artifacts_report_parse_seconds_ns(s); /* no colons: plain seconds */
	int64_t days = 0, hours = 0;
	const char *dot = memchr(s, '.', (size_t)(c1 - s));
	char *end;
	if (dot) {
		days = strtoll(s, &end, 10);
		hours = strtoll(dot + 1, &end, 10);
	} else {
		hours = strtoll(s, &end, 10);
	}
	int64_t minutes = strtoll(c1 + 1, &end, 10);
	if (days < 0 || hours < 0 || minutes < 0 || days > 100000 || hours > 1000000 || minutes > 1000000)
		return 0;
	int64_t secs = ((days * 24 + hours) * 60 + minutes) * 60;
	int64_t frac = artifacts_report_parse_seconds_ns(c2 + 1);
	if (secs > INT64_MAX / 1000000000LL - 1)
		return INT64_MAX;
	return sat_add(secs * 1000000000LL, frac);
}

/* "\tat com.example.CalcTest.testDivide(CalcTest.java:25)" for class cls */
static bool java_location(const char *stack, const char *cls, char **file, int *line)
{
	size_t cn = strlen(cls);
	for (const char *p = strstr(stack, "at "); p; p = strstr(p + 1, "at ")) {
		const char *q = p + 3;
		if (strncmp(q, cls, cn) != 0 || q[cn] != '.')
			continue;
		const char *open = strchr(q, '('), *nl = strchr(q, '\n');
		if (!open || (nl && open > nl))
			continue;
		const char *close = strchr(open, ')');
		if (!close || (nl && close > nl))
			continue;
		const char *colon = memchr(open, ':', (size_t)(close - open));
		if (!colon || colon == open + 1)
			continue;
		long n = strtol(colon + 1, NULL, 10);
		if (n <= 0 || n > INT_MAX)
			continue;
		*file = cbl_xstrndup(open + 1, (size_t)(colon - open - 1));
		*line = (int)n;
		return true;
	}
	return false;
}

/* "   at Ns.Class.Method() in /src/File.cs:line 25" */
static bool dotnet_location(const char *stack, char **file, int *line)
{
	for (const char *p = strstr(stack, ":line "); p; p = strstr(p + 1, ":line ")) {
		const char *ls = p;
		while (ls > stack && ls[-1] != '\n')
			ls--;
		const char *in = NULL;
		for (const char *q = ls; q + 4 <= p; q++)
			if (!memcmp(q, " in ", 4))
				in = q;
		if (!in || in + 4 >= p)
			continue;
		long n = strtol(p + 6, NULL, 10);
		if (n <= 0 || n > INT_MAX)
			continue;
		*file = cbl_xstrndup(in + 4, (size_t)(p - in - 4));
		*line = (int)n;
		return true;
	}
	return false;
}

bool artifacts_report_stack_location(const char *stack, const char *java_class, char **file, int *line)
{
	if (!stack)
		return false;
	if (java_class && *java_class && java_location(stack, java_class, file, line))
		return true;
	return dotnet_location(stack, file, line);
}

/* ------------------------------------------------------------ status */

static bool case_fails(const artifacts_report_case *c)
{
	return c->status == ARTIFACTS_REPORT_FAILED || c->status == ARTIFACTS_REPORT_ERROR ||
	       c->status == ARTIFACTS_REPORT_UNKNOWN;
}

const char *artifacts_report_status_name(const artifacts_report *rep)
{
	if (rep->type == ARTIFACTS_REPORT_CODE_COVERAGE)
		return "SUCCEEDED";
	const size_t *n = rep->test.counts;
	if (n[ARTIFACTS_REPORT_FAILED] || n[ARTIFACTS_REPORT_ERROR] || n[ARTIFACTS_REPORT_UNKNOWN])
		return "FAILED";
	return "SUCCEEDED";
}

bool artifacts_report_truncated(const artifacts_report *rep)
{
	return rep->type == ARTIFACTS_REPORT_TEST &&
	       (rep->test.total > ARTIFACTS_REPORT_MAX_CASES || rep->ncases > ARTIFACTS_REPORT_MAX_CASES);
}

size_t artifacts_report_select_cases(const artifacts_report *rep, size_t max, size_t **out)
{
	*out = NULL;
	if (!max)
		max = ARTIFACTS_REPORT_MAX_CASES;
	size_t n = rep->ncases < max ? rep->ncases : max;
	if (!n)
		return 0;
	size_t *idx = cbl_xreallocarray(NULL, n, sizeof(*idx));
	size_t k = 0;
	for (int rank = 0; rank <= 3 && k < n; rank++)
		for (size_t i = 0; i < rep->ncases && k < n; i++)
			if (artifacts_report_case_rank(rep->cases[i].status) == rank)
				idx[k++] = i;
	*out = idx;
	return k;
}

size_t artifacts_report_failing_cases(const artifacts_report *rep, const artifacts_report_case ***out)
{
	*out = NULL;
	size_t n = 0;
	for (size_t i = 0; i < rep->ncases; i++)
		n += case_fails(&rep->cases[i]);
	if (!n)
		return 0;
	const artifacts_report_case **v = cbl_xreallocarray(NULL, n, sizeof(*v));
	size_t k = 0;
	for (size_t i = 0; i < rep->ncases; i++)
		if (case_fails(&rep->cases[i]))
			v[k++] = &rep->cases[i];
	*out = v;
	return k;
}

char *artifacts_report_case_location(const artifacts_report_case *c)
{
	if (!c->file || !*c->file)
		return NULL;
	if (c->line > 0)
		return cbl_xasprintf("%s:%d", c->file, c->line);
	return cbl_xstrdup(c->file);
}

void artifacts_report_summary_line(const artifacts_report *rep, cbl_buf *out)
{
	if (rep->type == ARTIFACTS_REPORT_CODE_COVERAGE) {
		const artifacts_report_coverage_summary *s = &rep->coverage;
		cbl_buf_printf(out,
			       "line coverage %.2f%% (%" PRId64 "/%" PRId64
			       "), branch coverage %.2f%% (%" PRId64 "/%" PRId64 "), %zu file%s",
			       s->line_pct, s->lines_covered, sat_add(s->lines_covered, s->lines_missed),
			       s->branch_pct, s->branches_covered,
			       sat_add(s->branches_covered, s->branches_missed), rep->nfiles,
			       rep->nfiles == 1 ? "" : "s");
		return;
	}
	const artifacts_report_test_summary *t = &rep->test;
	cbl_buf_printf(out,
		       "%zu test%s: %zu succeeded, %zu failed, %zu error%s, %zu skipped, %zu unknown "
		       "(%" PRId64 ".%03" PRId64 "s)",
		       t->total, t->total == 1 ? "" : "s", t->counts[ARTIFACTS_REPORT_SUCCEEDED],
		       t->counts[ARTIFACTS_REPORT_FAILED], t->counts[ARTIFACTS_REPORT_ERROR],
		       t->counts[ARTIFACTS_REPORT_ERROR] == 1 ? "" : "s", t->counts[ARTIFACTS_REPORT_SKIPPED],
		       t->counts[ARTIFACTS_REPORT_UNKNOWN], t->duration_ns / (int64_t)1000000000,
		       (t->duration_ns / (int64_t)1000000) % 1000);
}

/* ------------------------------------------------------------ JSON */

static json_t *jtime(int64_t us)
{
	return json_real((double)us / 1e6);
}

static void set_jstr(json_t *o, const char *key, const char *v)
{
	if (v)
		json_object_set_new(o, key, cbl_json_string_lossy(v));
}

static json_t *jint(int64_t v)
{
	return json_integer((json_int_t)v);
}

json_t *artifacts_report_to_json(const artifacts_report *rep, const artifacts_report_meta *meta)
{
	static const artifacts_report_meta none = ARTIFACTS_REPORT_META_INIT;
	if (!meta)
		meta = &none;
	json_t *r = json_object();
	cbl_json_set_str(r, "arn", meta->arn);
	json_object_set_new(r, "type",
			    json_string(rep->type == ARTIFACTS_REPORT_TEST ? "TEST" : "CODE_COVERAGE"));
	set_jstr(r, "name", meta->name);
	cbl_json_set_str(r, "reportGroupArn", meta->report_group_arn);
	cbl_json_set_str(r, "executionId", meta->execution_id);
	json_object_set_new(r, "status",
			    json_string(meta->status ? meta->status : artifacts_report_status_name(rep)));
	if (meta->created_us) {
		json_object_set_new(r, "created", jtime(meta->created_us));
		json_object_set_new(r, "expired", jtime(meta->created_us + ARTIFACTS_REPORT_EXPIRY_US));
	}
	json_t *ec = json_object();
	json_object_set_new(ec, "exportConfigType", json_string("NO_EXPORT"));
	json_object_set_new(r, "exportConfig", ec);
	json_object_set_new(r, "truncated", json_boolean(artifacts_report_truncated(rep)));
	if (rep->type == ARTIFACTS_REPORT_TEST) {
		json_t *ts = json_object(), *sc = json_object();
		json_object_set_new(ts, "total", jint((int64_t)rep->test.total));
		for (int s = 0; s < ARTIFACTS_REPORT_STATUS_COUNT; s++)
			json_object_set_new(sc, status_names[s], jint((int64_t)rep->test.counts[s]));
		json_object_set_new(ts, "statusCounts", sc);
		json_object_set_new(ts, "durationInNanoSeconds", jint(rep->test.duration_ns));
		json_object_set_new(r, "testSummary", ts);
	} else {
		const artifacts_report_coverage_summary *s = &rep->coverage;
		json_t *cs = json_object();
		json_object_set_new(cs, "lineCoveragePercentage", json_real(s->line_pct));
		json_object_set_new(cs, "linesCovered", jint(s->lines_covered));
		json_object_set_new(cs, "linesMissed", jint(s->lines_missed));
		json_object_set_new(cs, "branchCoveragePercentage", json_real(s->branch_pct));
		json_object_set_new(cs, "branchesCovered", jint(s->branches_covered));
		json_object_set_new(cs, "branchesMissed", jint(s->branches_missed));
		json_object_set_new(r, "codeCoverageSummary", cs);
	}
	return r;
}

json_t *artifacts_report_test_cases_json(const artifacts_report *rep, const artifacts_report_meta *meta)
{
	static const artifacts_report_meta none = ARTIFACTS_REPORT_META_INIT;
	if (!meta)
		meta = &none;
	json_t *a = json_array();
	size_t *idx = NULL;
	size_t n = artifacts_report_select_cases(rep, 0, &idx);
	for (size_t k = 0; k < n; k++) {
		const artifacts_report_case *c = &rep->cases[idx[k]];
		json_t *o = json_object();
		cbl_json_set_str(o, "reportArn", meta->arn);
		set_jstr(o, "testRawDataPath", c->raw_path);
		set_jstr(o, "prefix", c->prefix);
		set_jstr(o, "name", c->name);
		json_object_set_new(o, "status", json_string(artifacts_report_test_status_name(c->status)));
		json_object_set_new(o, "durationInNanoSeconds", jint(c->duration_ns));
		set_jstr(o, "message", c->message);
		if (meta->created_us)
			json_object_set_new(o, "expired",
					    jtime(meta->created_us + ARTIFACTS_REPORT_EXPIRY_US));
		set_jstr(o, "testSuiteName", c->test_suite_name);
		json_array_append_new(a, o);
	}
	free(idx);
	return a;
}

/* FNV-1a, 64 bit, from a given basis. */
static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void coverage_id(char out[40], const char *arn, const char *path)
{
	const char *a = arn ? arn : "";
	uint64_t h1 = fnv1a(0xcbf29ce484222325ULL, a, strlen(a) + 1);
	h1 = fnv1a(h1, path, strlen(path));
	uint64_t h2 = fnv1a(0x84222325cbf29ce4ULL, path, strlen(path) + 1);
	h2 = fnv1a(h2, a, strlen(a));
	snprintf(out, 40, "%08" PRIx32 "-%04" PRIx32 "-%04" PRIx32 "-%04" PRIx32 "-%012" PRIx64,
		 (uint32_t)(h1 >> 32), (uint32_t)(h1 >> 16) & 0xffff, (uint32_t)h1 & 0xffff,
		 (uint32_t)(h2 >> 48), (uint64_t)(h2 & 0xffffffffffffULL));
}

json_t *artifacts_report_coverages_json(const artifacts_report *rep, const artifacts_report_meta *meta)
{
	static const artifacts_report_meta none = ARTIFACTS_REPORT_META_INIT;
	if (!meta)
		meta = &none;
	json_t *a = json_array();
	for (size_t i = 0; i < rep->nfiles; i++) {
		const artifacts_report_coverage *c = &rep->files[i];
		char id[40];
		coverage_id(id, meta->arn, c->path);
		json_t *o = json_object();
		json_object_set_new(o, "id", json_string(id));
		cbl_json_set_str(o, "reportARN", meta->arn);
		set_jstr(o, "filePath", c->path);
		json_object_set_new(o, "lineCoveragePercentage",
				    json_real(artifacts_report_coverage_line_pct(c)));
		json_object_set_new(o, "linesCovered", jint(c->lines_covered));
		json_object_set_new(o, "linesMissed", jint(c->lines_missed));
		json_object_set_new(o, "branchCoveragePercentage",
				    json_real(artifacts_report_coverage_branch_pct(c)));
		json_object_set_new(o, "branchesCovered", jint(c->branches_covered));
		json_object_set_new(o, "branchesMissed", jint(c->branches_missed));
		if (meta->created_us)
			json_object_set_new(o, "expired",
					    jtime(meta->created_us + ARTIFACTS_REPORT_EXPIRY_US));
		json_array_append_new(a, o);
	}
	return a;
}
