/* cli/cmd_validate.c - `codebuild-local validate`: offline buildspec check. */
#include "cli/cli.h"
#include "images/images.h"
#include "runner/runner.h"
#include "sandbox/sandbox.h"
#include "spec/spec.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/json.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static const char validate_usage[] =
	"usage: codebuild-local validate [-b FILE] [-i IMAGE] [--strict [--secrets-file F]] [DIR]\n"
	"\n"
	"Checks a buildspec against CodeBuild's grammar (versions 0.1 and 0.2) without\n"
	"running anything, and prints every problem as FILE:LINE:COL: error|warning: ...\n"
	"\n"
	"  -b, --buildspec FILE  the buildspec (default DIR/buildspec.yml)\n"
	"  -i, --image IMAGE     check install runtime-versions and run-as users against\n"
	"                        IMAGE: a curated image (aws/codebuild/standard:7.0, ...)\n"
	"                        by its catalog, or host by this machine (errors); without\n"
	"                        -i, against the host, run's default (warnings)\n"
	"      --strict          the fidelity report: also lists everything a local run\n"
	"                        would fake or skip (the host image instead of a CodeBuild\n"
	"                        one, runtimes the host lacks, S3 cache and artifacts,\n"
	"                        secrets without a secrets file, batch settings, webhook\n"
	"                        variables), each as FILE:LINE:COL: differs: ... (to do: ...)\n"
	"      --secrets-file F  with --strict: the secrets file run would get\n"
	"      --project NAME    with --strict: also what the stored project holds that a\n"
	"                        local build does without (VPC, webhook, S3 artifacts,\n"
	"                        cache, logs, batch settings, secrets), and its image\n"
	"  -q, --quiet           print only errors\n"
	"  -h, --help            this help\n"
	"\n"
	"Exit status: 0 valid (warnings allowed; with --strict: nothing would be faked and\n"
	"no warning), 1 with --strict: valid, but the report lists something, 2 any error.\n";

static const struct option validate_options[] = {
	{"buildspec", required_argument, NULL, 'b'},
	{"strict", no_argument, NULL, 's'},
	{"secrets-file", required_argument, NULL, 'S'},
	{"project", required_argument, NULL, 'P'},
	{"image", required_argument, NULL, 'i'},
	{"quiet", no_argument, NULL, 'q'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* What validate checks beyond the grammar, against the image the build
 * would run on (-i, else the host like run): found problems counted. */
typedef struct image_check {
	const char *display;     /* the buildspec as the user named it */
	const char *image;       /* -i, or NULL: the host, run's default */
	bool strict, quiet;
	int errors, warnings;
} image_check;

static void say(image_check *x, spec_pos pos, bool error, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void say(image_check *x, spec_pos pos, bool error, const char *fmt, ...)
{
	va_list ap;
	error |= x->strict;
	if (error)
		x->errors++;
	else
		x->warnings++;
	if (x->quiet && !error)
		return;
	FILE *f = error ? stderr : stdout;
	if (pos.line)
		fprintf(f, "%s:%d:%d: %s: ", x->display, pos.line, pos.col, error ? "error" : "warning");
	else
		fprintf(f, "%s: %s: ", x->display, error ? "error" : "warning");
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fputc('\n', f);
}

/* runtime-versions against the image: the catalog for curated images, this
 * machine for the host (warnings without -i, where run would exit 2 unless
 * --host-runtimes; errors with -i host); other images cannot be checked
 * offline.  -1: no catalog. */
static int check_runtimes(const spec_buildspec *bs, image_check *x)
{
	const spec_kvlist *rv = &bs->phases[SPEC_PHASE_INSTALL].runtime_versions;
	images_catalog *cat = NULL;
	const images_curated *ci = NULL;
	cbl_error *e = NULL;
	bool host = !x->image || images_classify(x->image) == IMAGES_KIND_HOST;
	if (!rv->n)
		return 0;
	if (!host) {
		if (images_catalog_default(&cat, &e) < 0) {
			cli_report_clear(&e);
			return -1;
		}
		ci = images_catalog_find(cat, x->image);
		if (!ci) {
			printf("%s: warning: %s is not a curated image: its runtime-versions cannot be checked "
			       "offline\n", x->display, x->image);
			goto out;
		}
	}
	for (size_t i = 0; i < rv->n; i++) {
		const spec_kv *kv = &rv->items[i];
		if (kv->value[0] == '$')
			continue; /* a variable: known only when the build runs */
		int rc = host ? runner_host_runtime_check(kv->key, kv->value, &e)
			      : images_runtime_check(ci, kv->key, kv->value, NULL, &e);
		if (rc < 0) {
			if (x->image)
				say(x, kv->pos, true, "%s", e->msg);
			else
				say(x, kv->pos, false, "the host image (run's default): %s", e->msg);
			cbl_error_clear(&e);
		}
	}
out:
	images_catalog_free(cat);
	return 0;
}

/* True when root's etc/passwd names user ("/" = this machine's; the
 * sandbox shows the build the host's own /etc/passwd). */
static bool passwd_has(const char *root, const char *user)
{
	char *path = cbl_xasprintf("%s/etc/passwd", strcmp(root, "/") ? root : "");
	FILE *f = fopen(path, "re");
	char line[1024];
	size_t ul = strlen(user);
	bool found = false;
	while (f && !found && fgets(line, sizeof(line), f))
		found = !strncmp(line, user, ul) && line[ul] == ':';
	if (f)
		fclose(f);
	free(path);
	return found;
}

/* One run-as user against the image: the host's /etc/passwd and the users
 * the host view adds (codebuild-user), a directory image's, or the
 * catalog's users of a curated image; other images cannot be checked
 * offline. */
static void check_user(image_check *x, const images_catalog *cat, const char *user, spec_pos pos)
{
	const images_curated *ci = NULL;
	images_kind kind = x->image ? images_classify(x->image) : IMAGES_KIND_HOST;
	if (!user || !*user || strspn(user, "0123456789:") == strlen(user))
		return; /* a uid is not looked up */
	if (kind == IMAGES_KIND_HOST || kind == IMAGES_KIND_DIR) {
		if (passwd_has(kind == IMAGES_KIND_HOST ? "/" : x->image, user) ||
		    (kind == IMAGES_KIND_HOST && sandbox_host_view_user(user)))
			return;
		cbl_strv with = CBL_STRV_INIT;
		images_catalog_with_user(cat, user, &with);
		if (with.n)
			say(x, pos, false, "run-as '%s': %s has no user '%s' (not in its /etc/passwd): the phase would fault; "
					   "the curated images have it (-i %s)",
			    user, kind == IMAGES_KIND_HOST ? "the host image" : x->image, user, with.v[0]);
		else
			say(x, pos, false, "run-as '%s': %s has no user '%s' (not in its /etc/passwd): the phase would fault",
			    user, kind == IMAGES_KIND_HOST ? "the host image" : x->image, user);
		cbl_strv_release(&with);
		return;
	}
	ci = images_catalog_find(cat, x->image);
	if (!ci || images_curated_has_user(ci, user))
		return;
	cbl_buf users = CBL_BUF_INIT;
	for (const char *const *u = images_curated_users(ci); *u; u++)
		cbl_buf_printf(&users, "%s%s", users.len ? ", " : "", *u);
	say(x, pos, false, "run-as '%s': %s has no user '%s' (its users: %s)", user, x->image, user,
	    users.len ? users.ptr : "none known");
	cbl_buf_release(&users);
}

static void check_run_as(const spec_buildspec *bs, image_check *x)
{
	images_catalog *cat = NULL;
	cbl_error *e = NULL;
	if (images_catalog_default(&cat, &e) < 0)
		cbl_error_clear(&e); /* only the hints need it */
	if (bs->run_as)
		check_user(x, cat, bs->run_as, bs->run_as_pos);
	for (int p = 0; p < SPEC_PHASE_COUNT; p++)
		if (bs->phases[p].present && bs->phases[p].run_as)
			check_user(x, cat, bs->phases[p].run_as, bs->phases[p].run_as_pos);
	images_catalog_free(cat);
}

/* The fidelity report (--strict): the findings, one line each, and how
 * many. */
static size_t print_report(const spec_buildspec *bs, const char *display, const char *image,
			   const char *secrets_file, const json_t *project, const char *pname)
{
	runner_findings f = RUNNER_FINDINGS_INIT;
	runner_fidelity_opts o = RUNNER_FIDELITY_OPTS_INIT;
	o.image = image;
	o.secrets_file = secrets_file;
	o.project = project;
	runner_fidelity_check(bs, &o, &f);
	for (size_t i = 0; i < f.n; i++) {
		const runner_finding *x = &f.items[i];
		if (x->pos.line)
			printf("%s:%d:%d: differs: %s (to do: %s)\n", display, x->pos.line, x->pos.col, x->what, x->todo);
		else
			printf("%s: differs: %s%s%s%s (to do: %s)\n", display, pname ? "project " : "", pname ? pname : "",
			       pname ? ": " : "", x->what, x->todo);
	}
	size_t n = f.n;
	runner_findings_release(&f);
	return n;
}

int cmd_validate(int argc, char **argv)
{
	const char *file = NULL, *image = NULL, *secrets_file = NULL, *project_name = NULL;
	json_t *project = NULL;
	spec_parse_opts po = SPEC_PARSE_OPTS_INIT;
	bool quiet = false, strict = false;
	int opt;
	optind = 1;
	while ((opt = cli_getopt("validate", argc, argv, "b:i:qh", validate_options)) != -1) {
		switch (opt) {
		case 'b': file = optarg; break;
		case 'i': image = optarg; break;
		case 's': strict = true; break;
		case 'S': secrets_file = optarg; break;
		case 'P': project_name = optarg; break;
		case 'q': quiet = true; break;
		case 'h': fputs(validate_usage, stdout); return CLI_EXIT_OK;
		default: return CLI_EXIT_USAGE; /* said in one line by cli_getopt */
		}
	}
	if (argc - optind > 1) {
		cli_error("validate takes at most one directory");
		return CLI_EXIT_USAGE;
	}
	if (project_name) {
		cbl_error *pe = NULL;
		char *home = store_default_home();
		int prc = store_project_get(home, project_name, &project, &pe);
		free(home);
		if (prc < 0) {
			cli_report_clear(&pe);
			return CLI_EXIT_USAGE;
		}
		/* the project's image, unless -i names another */
		if (!image)
			image = cbl_json_str_nonempty(json_object_get(project, "environment"), "image");
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
	image_check x = {.display = display, .image = image, .quiet = quiet};
	/* with --strict the report says what the host lacks */
	bool host = !image || images_classify(image) == IMAGES_KIND_HOST;
	int no_catalog = rc == 0 && !(strict && host) ? check_runtimes(bs, &x) : 0;
	if (rc == 0)
		check_run_as(bs, &x);
	if (no_catalog || x.errors) {
		fprintf(stderr, "%s: invalid for %s (%d error%s against the image)\n", display, image ? image : "host",
			x.errors, x.errors == 1 ? "" : "s");
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
		size_t warnings = diags.nwarnings + (size_t)x.warnings;
		size_t found = strict ? print_report(bs, display, image, secrets_file, project, project_name) : 0;
		if (!quiet)
			printf("%s: valid (version %s, %zu warning%s)\n", display,
			       bs->version == SPEC_VERSION_0_1 ? "0.1" : "0.2", warnings, warnings == 1 ? "" : "s");
		if (strict)
			printf("%s: %s%zu thing%s a local run would fake or skip\n", display, found ? "" : "nothing: ",
			       found, found == 1 ? "" : "s");
		rc = strict && (found || warnings) ? 1 : CLI_EXIT_OK;
	}
out:
	json_decref(project);
	spec_buildspec_free(bs);
	spec_diags_release(&diags);
	cbl_error_free(err);
	free(path);
	return rc;
}
