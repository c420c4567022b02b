/* tests/unit/test_spec_wild.c - the parser against real-world buildspecs.
 *
 * Reads $CBL_SHARED/wild-buildspecs/INDEX.tsv (CBL_SHARED defaults to
 * ../shared, relative to the project root where the tests run) and, per file:
 * - no "INVALID:" note: the file must parse with 0 errors (warnings are fine);
 * - an "INVALID:" note: at least one error, and when the INVALID notes name
 *   lines ("line N"), at least one error on one of those lines.
 * The files are read in place, never copied into the project.
 * CBL_WILD_VERBOSE=1 prints every diagnostic.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec.h"
#include "util/alloc.h"
#include "util/buf.h"

#include "tap.h"

#include "util/banned.h"

/* Files whose index note we judge wrong, with the reason.  Keep it short. */
static const struct {
	const char *file;
	const char *reason;
} skips[] = {
	/* The note puts "env.variables.secrets-manager is a map, not a string"
	 * at line 8, the first line of the nested mapping.  Every other type
	 * error in the index (043 cache, 041 build-list, 122 phases, 133
	 * phases) is placed on the key's line, and so is ours: line 7,
	 * `secrets-manager:`.  We report the error, one line up. */
	{"061.yml", "type error reported at the key (line 7); the note names the value's first line (8)"},
};

#define MAX_LINES 64

static size_t note_lines(const char *notes, int *lines)
{
	size_t n = 0;
	const char *seg = notes;
	while (seg && *seg) {
		const char *end = strstr(seg, " | ");
		size_t seglen = end ? (size_t)(end - seg) : strlen(seg);
		if (seglen >= 8 && !strncmp(seg, "INVALID:", 8)) {
			for (const char *p = seg; p < seg + seglen; p++) {
				if (strncmp(p, "line ", 5) != 0)
					continue;
				char *e = NULL;
				long v = strtol(p + 5, &e, 10);
				if (e != p + 5 && v > 0 && n < MAX_LINES)
					lines[n++] = (int)v;
			}
		}
		seg = end ? end + 3 : NULL;
	}
	return n;
}

int main(void)
{
	const char *shared = tap_shared();
	char *index_path, line[65536];
	FILE *f;
	bool verbose = getenv("CBL_WILD_VERBOSE") != NULL;
	int nvalid = 0, nvalid_ok = 0, ninvalid = 0, ninvalid_ok = 0, nskipped = 0;

	if (!shared) {
		skip("wild buildspecs: no ../shared here (CBL_SHARED)");
		return tap_done();
	}
	index_path = cbl_xasprintf("%s/wild-buildspecs/INDEX.tsv", shared);
	f = fopen(index_path, "r");
	if (!f) {
		ok(0, "%s opens", index_path);
		free(index_path);
		return tap_done();
	}
	bool header = true;
	while (fgets(line, sizeof(line), f)) {
		char *cols[7] = {0};
		size_t ncols = 0;
		line[strcspn(line, "\r\n")] = '\0';
		if (header) {
			header = false;
			continue;
		}
		if (!*line)
			continue;
		char *p = line;
		while (ncols < 7) {
			cols[ncols++] = p;
			char *t = strchr(p, '\t');
			if (!t)
				break;
			*t = '\0';
			p = t + 1;
		}
		if (ncols < 6)
			continue;
		const char *file = cols[0], *notes = ncols >= 7 ? cols[6] : "";
		bool invalid = strstr(notes, "INVALID:") != NULL;
		const char *why = NULL;
		for (size_t i = 0; i < sizeof(skips) / sizeof(skips[0]); i++)
			if (!strcmp(skips[i].file, file))
				why = skips[i].reason;
		if (why) {
			nskipped++;
			skip("%s: %s", file, why);
			continue;
		}

		char *path = cbl_xasprintf("%s/wild-buildspecs/%s", shared, file);
		spec_diags d = SPEC_DIAGS_INIT;
		spec_buildspec *bs = NULL;
		cbl_error *err = NULL;
		spec_parse_opts opts = SPEC_PARSE_OPTS_INIT;
		int rc = spec_parse_file(&bs, &d, path, file, &opts, &err);
		int lines[MAX_LINES];
		size_t nl = note_lines(notes, lines);
		bool line_hit = nl == 0;
		for (size_t i = 0; i < d.n; i++)
			for (size_t k = 0; k < nl; k++)
				if (d.items[i].severity == SPEC_DIAG_ERROR && d.items[i].line == lines[k])
					line_hit = true;

		if (!invalid) {
			nvalid++;
			bool good = rc == 0 && d.nerrors == 0 && bs != NULL;
			nvalid_ok += good;
			ok(good, "%s parses without errors (%zu warnings)", file, d.nwarnings);
		} else {
			ninvalid++;
			bool good = rc == CBL_ESPEC && d.nerrors > 0 && bs == NULL && line_hit;
			ninvalid_ok += good;
			ok(good, "%s is rejected%s", file, nl ? " at a line the note names" : "");
			if (!good)
				printf("#   note: %s\n", notes);
		}
		for (size_t i = 0; i < d.n; i++) {
			bool show = verbose || (!invalid && d.items[i].severity == SPEC_DIAG_ERROR) ||
				    (invalid && !line_hit);
			if (!show)
				continue;
			cbl_buf b = CBL_BUF_INIT;
			spec_diag_format(&d, &d.items[i], &b);
			printf("#   %s\n", cbl_buf_cstr(&b));
			cbl_buf_release(&b);
		}
		if (rc != 0 && rc != CBL_ESPEC)
			printf("#   rc %d: %s\n", rc, err ? err->msg : "?");
		spec_buildspec_free(bs);
		spec_diags_release(&d);
		cbl_error_free(err);
		free(path);
	}
	fclose(f);
	free(index_path);
	printf("# wild buildspecs: %d/%d valid accepted, %d/%d invalid rejected at the named line, %d skipped\n",
	       nvalid_ok, nvalid, ninvalid_ok, ninvalid, nskipped);
	return tap_done();
}
