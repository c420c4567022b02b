/* spec/diag.c - diagnostics: collecting, sorting, formatting, "did you mean". */
#include "spec/spec_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/banned.h"

static void __attribute__((format(printf, 4, 0)))
diag_addv(spec_ctx *c, spec_severity sev, spec_pos pos, const char *fmt, va_list ap)
{
	spec_diags *d = c->diags;

	if (sev == SPEC_DIAG_WARNING && c->strict)
		sev = SPEC_DIAG_ERROR;
	if (sev == SPEC_DIAG_ERROR)
		c->nerrors++;
	/* The first error is always kept, so *err can name it. */
	if (d->n >= SPEC_MAX_DIAGS && (sev == SPEC_DIAG_WARNING || d->nerrors > 0)) {
		c->truncated = true;
		return;
	}
	cbl_buf b = CBL_BUF_INIT;
	cbl_buf_vprintf(&b, fmt, ap);
	CBL_GROW(d->items, d->n + 1, d->cap);
	spec_diag *g = &d->items[d->n++];
	g->severity = sev;
	g->line = pos.line;
	g->col = pos.col;
	g->msg = cbl_buf_detach(&b);
	g->service_len = 0;
	if (sev == SPEC_DIAG_ERROR)
		d->nerrors++;
	else
		d->nwarnings++;
}

void spec_diag_add(spec_ctx *c, spec_severity sev, spec_pos pos, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_addv(c, sev, pos, fmt, ap);
	va_end(ap);
}

void spec_err(spec_ctx *c, spec_pos pos, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_addv(c, SPEC_DIAG_ERROR, pos, fmt, ap);
	va_end(ap);
}

void spec_err_service(spec_ctx *c, spec_pos pos, const char *words, const char *hint)
{
	size_t before = c->diags->n;
	spec_err(c, pos, "%s%s", words, hint ? hint : "");
	if (c->diags->n > before)
		c->diags->items[before].service_len = strlen(words);
}

void spec_warn(spec_ctx *c, spec_pos pos, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_addv(c, SPEC_DIAG_WARNING, pos, fmt, ap);
	va_end(ap);
}

typedef struct {
	spec_diag d;
	size_t seq;
} diag_sort_item;

static int diag_cmp(const void *a, const void *b)
{
	const diag_sort_item *x = a, *y = b;
	/* line 0 (no position) sorts last */
	unsigned xl = (unsigned)x->d.line - 1u, yl = (unsigned)y->d.line - 1u;
	if (xl != yl)
		return xl < yl ? -1 : 1;
	if (x->d.col != y->d.col)
		return x->d.col < y->d.col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void spec_diags_sort(spec_diags *d)
{
	if (!d || d->n < 2)
		return;
	diag_sort_item *tmp = cbl_xreallocarray(NULL, d->n, sizeof(*tmp));
	for (size_t i = 0; i < d->n; i++) {
		tmp[i].d = d->items[i];
		tmp[i].seq = i;
	}
	qsort(tmp, d->n, sizeof(*tmp), diag_cmp);
	for (size_t i = 0; i < d->n; i++)
		d->items[i] = tmp[i].d;
	free(tmp);
}

void spec_diags_release(spec_diags *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->items[i].msg);
	free(d->items);
	free(d->file);
	memset(d, 0, sizeof(*d));
}

void spec_diag_format(const spec_diags *d, const spec_diag *diag, cbl_buf *out)
{
	const char *file = d && d->file ? d->file : "buildspec.yml";
	const char *sev = diag->severity == SPEC_DIAG_ERROR ? "error" : "warning";

	if (diag->line > 0)
		cbl_buf_printf(out, "%s:%d:%d: %s: %s", file, diag->line, diag->col > 0 ? diag->col : 1,
			       sev, diag->msg ? diag->msg : "");
	else
		cbl_buf_printf(out, "%s: %s: %s", file, sev, diag->msg ? diag->msg : "");
}

/* did you mean ------------------------------------------------------------ */

#define DYM_MAX 64

static size_t fold(const char *s, char *out)
{
	size_t n = 0;
	for (; *s && n < DYM_MAX; s++) {
		unsigned char ch = (unsigned char)*s;
		out[n++] = ch == '-' ? '_' : (char)tolower(ch);
	}
	out[n] = '\0';
	return *s ? (size_t)-1 : n;
}

/* Optimal string alignment distance (Levenshtein plus adjacent swaps). */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t d[DYM_MAX + 1][DYM_MAX + 1];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

const char *spec_did_you_mean(const char *word, const char *const *candidates)
{
	char w[DYM_MAX + 1], cand[DYM_MAX + 1];
	size_t lw = fold(word, w);
	if (lw == (size_t)-1 || lw == 0)
		return NULL;
	size_t limit = lw <= 3 ? 0 : lw <= 5 ? 1 : 2;
	const char *best = NULL;
	size_t best_d = limit + 1;
	for (size_t i = 0; candidates[i]; i++) {
		size_t lc = fold(candidates[i], cand);
		if (lc == (size_t)-1)
			continue;
		size_t dist = edit_distance(w, lw, cand, lc);
		if (dist < best_d) {
			best_d = dist;
			best = candidates[i];
		}
	}
	if (best && strcmp(best, word) == 0)
		return NULL;
	return best;
}

void spec_hint(cbl_buf *b, const char *word, const char *const *candidates)
{
	const char *m = spec_did_you_mean(word, candidates);
	if (m)
		cbl_buf_printf(b, " (did you mean '%s'?)", m);
}
