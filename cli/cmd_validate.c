/* cli/cmd_validate.c - `codebuild-local validate`: offline buildspec check. */
#include "cli/cli.h"
#include "images/images.h"
#include "spec/spec.h"
#include "util/alloc.h"
#include "util/buf.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static const char validate_usage[] =
	"usage: codebuild-local validate [-b FILE] [-i IMAGE] [--strict] [DIR]\n"
	"\n"
	"Checks a buildspec against CodeBuild's grammar (versions 0.1 and 0.2) without\n"
	"running anything, and prints every problem as FILE:LINE:COL: error|warning: ...\n"
	"\n"
	"  -b, --buildspec FILE  the buildspec (default DIR/buildspec.yml)\n"
	"  -i, --image IMAGE     also check install runtime-versions against IMAGE: a\n"
	"                        curated image (aws/codebuild/standard:7.0, ...) by its\n"
	"                        catalog, or host (the default for run) by this machine\n"
	"      --strict          warnings (unknown keys, odd shapes CodeBuild tolerates)\n"
	"                        are errors\n"
	"  -q, --quiet           print only errors\n"
	"  -h, --help            this help\n"
	"\n"
	"Exit status: 0 valid (warnings allowed), 2 any error.\n";

static const struct option validate_options[] = {
	{"buildspec", required_argument, NULL, 'b'},
	{"strict", no_argument, NULL, 's'},
	{"image", required_argument, NULL, 'i'},
	{"quiet", no_argument, NULL, 'q'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* runtime-versions against an image: the catalog for curated images, this
 * machine for host; other images cannot be checked offline.  Prints one
 * error per runtime the image lacks and returns how many (-1: no catalog). */
static int check_runtimes(const spec_buildspec *bs, const char *display, const char *image)
{
	const spec_kvlist *rv = &bs->phases[SPEC_PHASE_INSTALL].runtime_versions;
	images_catalog *cat = NULL;
	const images_curated *ci = NULL;
	cbl_error *e = NULL;
	int rc = 0;
	if (!rv->n)
		return 0;
	if (images_classify(image) != IMAGES_KIND_HOST) {
		if (images_catalog_default(&cat, &e) < 0) {
			cli_report_clear(&e);
			return -1;
		}
		ci = images_catalog_find(cat, image);
		if (!ci) {
			printf("%s: warning: %s is not a curated image: its runtime-versions cannot be checked "
			       "offline\n", display, image);
			goto out;
		}
	}
	for (size_t i = 0; i < rv->n; i++) {
		if (rv->items[i].value[0] == '$')
			continue; /* a variable: known only when the build runs */
		if (images_runtime_check(ci, rv->items[i].key, rv->items[i].value, NULL, &e) < 0) {
			fprintf(stderr, "%s:%d:%d: error: %s\n", display, rv->items[i].pos.line, rv->items[i].pos.col,
				e->msg);
			cbl_error_clear(&e);
			rc++;
		}
	}
out:
	images_catalog_free(cat);
	return rc;
}

int cmd_validate(int argc, char **argv)
{
	const char *file = NULL, *image = NULL;
	spec_parse_opts po = SPEC_PARSE_OPTS_INIT;
	bool quiet = false;
	int opt;
	optind = 1;
	while ((opt = cli_getopt("validate", argc, argv, "b:i:qh", validate_options)) != -1) {
		switch (opt) {
		case 'b': file = optarg; break;
		case 'i': image = optarg; break;
		case 's': po.strict = true; break;
		case 'q': quiet = true; break;
		case 'h': fputs(validate_usage, stdout); return CLI_EXIT_OK;
		default: return CLI_EXIT_USAGE; /* said in one line by cli_getopt */
		}
	}
	if (argc - optind > 1) {
		cli_error("validate takes at most one directory");
		return CLI_EXIT_USAGE;
	}
	char *path = NULL;
	if (file && (file[0] == '/' || optind >= argc))
		path = cbl_xstrdup(file);
	else
		path = cbl_xasprintf("%s/%s", optind < argc ? argv[optind] : ".",
				     file ? file : "buildspec.yml");
	/* diagnostics name the file as the user gave it */
	const char *display = file ? file : (optind < argc ? path : "buildspec.yml");

	spec_buildspec *bs = NULL;
	spec_diags diags = SPEC_DIAGS_INIT;
	cbl_error *err = NULL;
	int rc = spec_parse_file(&bs, &diags, path, display, &po, &err);
	if (rc == CBL_ENOENT || rc == CBL_EIO) {
		cli_report(err);
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	for (size_t i = 0; i < diags.n; i++) {
		if (quiet && diags.items[i].severity != SPEC_DIAG_ERROR)
			continue;
		cbl_buf line = CBL_BUF_INIT;
		spec_diag_format(&diags, &diags.items[i], &line);
		fprintf(diags.items[i].severity == SPEC_DIAG_ERROR ? stderr : stdout, "%s\n", line.ptr);
		cbl_buf_release(&line);
	}
	int rt_errors = rc == 0 && image ? check_runtimes(bs, display, image) : 0;
	if (rt_errors) {
		fprintf(stderr, "%s: invalid for %s (%d runtime-versions error%s)\n", display, image,
			rt_errors < 0 ? 0 : rt_errors, rt_errors == 1 ? "" : "s");
		rc = CLI_EXIT_USAGE;
		goto out;
	}
	if (rc < 0) {
		if (!diags.n && err)
			cli_report(err);
		fprintf(stderr, "%s: invalid (%zu error%s, %zu warning%s)\n", display, diags.nerrors,
			diags.nerrors == 1 ? "" : "s", diags.nwarnings, diags.nwarnings == 1 ? "" : "s");
		rc = CLI_EXIT_USAGE;
	} else {
		if (!quiet)
			printf("%s: valid (version %s, %zu warning%s)\n", display,
			       bs->version == SPEC_VERSION_0_1 ? "0.1" : "0.2", diags.nwarnings,
			       diags.nwarnings == 1 ? "" : "s");
		rc = CLI_EXIT_OK;
	}
out:
	spec_buildspec_free(bs);
	spec_diags_release(&diags);
	cbl_error_free(err);
	free(path);
	return rc;
}
