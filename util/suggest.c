/* util/suggest.c - the nearest of a few names (see suggest.h). */
#include "util/suggest.h"
#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

size_t cbl_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	/* three rows of the dynamic programme: i-2, i-1, i */
	size_t *d = cbl_xcalloc(3 * (lb + 1), sizeof(*d));
	size_t *pp = d, *p = d + lb + 1, *c = d + 2 * (lb + 1);
	for (size_t j = 0; j <= lb; j++)
		p[j] = j;
	for (size_t i = 1; i <= la; i++) {
		c[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t v = p[j - 1] + cost;
			if (p[j] + 1 < v)
				v = p[j] + 1;
			if (c[j - 1] + 1 < v)
				v = c[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			c[j] = v;
		}
		size_t *t = pp;
		pp = p;
		p = c;
		c = t;
	}
	size_t r = p[lb];
	free(d);
	return r;
}

const char *cbl_suggest(const char *word, const char *const *names, size_t n)
{
	size_t wl = strlen(word);
	size_t limit = wl / 3 > 1 ? wl / 3 : 1;
	const char *best = NULL, *prefix_of = NULL;
	size_t best_d = limit + 1, n_prefix = 0;
	if (!wl)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(word, names[i]))
			continue;
		size_t d = cbl_edit_distance(word, names[i]);
		if (d < best_d) {
			best_d = d;
			best = names[i];
		}
		if (wl >= 2 && !strncmp(names[i], word, wl)) {
			prefix_of = names[i];
			n_prefix++;
		}
	}
	if (best)
		return best;
	return n_prefix == 1 ? prefix_of : NULL;
}
