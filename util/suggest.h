/* util/suggest.h - "did you mean": the nearest of a few names.
 *
 * Nearness is the optimal-string-alignment distance (Levenshtein plus the
 * transposition of two neighbours, so "valdiate" is one edit from
 * "validate").  A name is suggested when it is at most a third of the
 * word's length away (at least one edit), the nearest winning and the first
 * of equals; failing that, when the word is a prefix of exactly one name
 * ("val" -> "validate").  Pure functions: no state, thread-safe. */
#ifndef CBL_SUGGEST_H
#define CBL_SUGGEST_H

#include <stddef.h>

/* Edits (insert, delete, substitute, swap two neighbours) from a to b. */
size_t cbl_edit_distance(const char *a, const char *b);

/* The name of names[0..n) to suggest for word, borrowed; NULL when none is
 * near enough (or word is one of them). */
const char *cbl_suggest(const char *word, const char *const *names, size_t n);

#endif
