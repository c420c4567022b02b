/* cli/cmd_images.c - `codebuild-local images ls | pull | import | rm | prune`:
 * the local image store (images/images.h). */
#include "cli/cli.h"
#include "images/images.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/buf.h"
#include "util/json.h"
#include "util/strv.h"
#include "util/time.h"
#include "util/suggest.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

/* what unpacking left out (device nodes): on stderr, after the result */
static void print_warnings(const images_root *r)
{
	for (size_t i = 0; i < r->warnings.n; i++)
		fprintf(stderr, "codebuild-local: warning: %s\n", r->warnings.v[i]);
}

int cmd_images(int argc, char **argv);

static const char images_usage[] =
	"usage: codebuild-local images <command> [options]\n"
	"\n"
	"Build images without Docker: pulled from an OCI registry (or imported), unpacked\n"
	"once under $CODEBUILD_LOCAL_HOME/images, and used as the build's root filesystem.\n"
	"\n"
	"commands:\n"
	"  ls [--json]             the stored images: name, digest, size, last use\n"
	"  pull [options] IMAGE    pull and unpack IMAGE (a curated name such as\n"
	"                          aws/codebuild/amazonlinux2-x86_64-standard:5.0, or any\n"
	"                          [registry[:port]/]repo[:tag][@sha256:...])\n"
	"  import [--name NAME] PATH\n"
	"                          import a `docker save` tar or an OCI layout (directory\n"
	"                          or tar), offline\n"
	"  inspect [--offline] IMAGE\n"
	"                          resolve IMAGE as a build would (pulling it if needed)\n"
	"                          and print its root filesystem and config as JSON\n"
	"  rm IMAGE...             forget images (their layers go when nothing uses them)\n"
	"  prune                   delete whatever no image uses (layers, roots, partial\n"
	"                          downloads)\n"
	"\n"
	"pull options:\n"
	"      --insecure-registry HOST  plain HTTP / unverified TLS for HOST[:PORT]\n"
	"                          (loopback registries always may)\n"
	"      --platform OS/ARCH[/VARIANT]  another platform than the host's\n"
	"  -u, --username USER     registry credentials (default: docker's config.json)\n"
	"      --password PASS\n"
	"      --password-stdin    read the password from standard input\n"
	"      --parallel N        concurrent layer downloads (default 3)\n"
	"      --retries N         resumptions of an interrupted download (default 2)\n"
	"  -q, --quiet             no progress\n"
	"\n"
	"Exit status: 0 done, 2 usage or unknown image, 3 failure (network, digest\n"
	"mismatch, disk).\n";

static const struct option images_options[] = {
	{"insecure-registry", required_argument, NULL, 'I'},
	{"platform", required_argument, NULL, 'P'},
	{"username", required_argument, NULL, 'u'},
	{"password", required_argument, NULL, 'p'},
	{"password-stdin", no_argument, NULL, 'S'},
	{"parallel", required_argument, NULL, 'j'},
	{"retries", required_argument, NULL, 'r'},
	{"name", required_argument, NULL, 'n'},
	{"json", no_argument, NULL, 'J'},
	{"offline", no_argument, NULL, 'O'},
	{"quiet", no_argument, NULL, 'q'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

static void human(char out[32], uint64_t n)
{
	static const char *const u[] = {"B", "kB", "MB", "GB", "TB"};
	double v = (double)n;
	int i = 0;
	while (v >= 1000 && i < 4) {
		v /= 1000;
		i++;
	}
	if (i == 0)
		snprintf(out, 32, "%llu B", (unsigned long long)n);
	else
		snprintf(out, 32, "%.1f %s", v, u[i]);
}

static void ago(char out[48], int64_t us)
{
	if (!us) {
		snprintf(out, 48, "never");
		return;
	}
	int64_t s = (cbl_now_us() - us) / 1000000;
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(out, 48, "%lld seconds ago", (long long)s);
	else if (s < 3600)
		snprintf(out, 48, "%lld minutes ago", (long long)(s / 60));
	else if (s < 86400 * 2)
		snprintf(out, 48, "%lld hours ago", (long long)(s / 3600));
	else
		snprintf(out, 48, "%lld days ago", (long long)(s / 86400));
}

struct prog {
	bool tty;
	bool drew;
	int64_t last_us;
};

static void on_progress(const images_progress *p, void *payload)
{
	struct prog *pg = payload;
	char a[32], b[32];
	switch (p->stage) {
	case IMAGES_STAGE_MANIFEST:
		fprintf(stderr, "Resolving %s\n", p->message ? p->message : "");
		return;
	case IMAGES_STAGE_DOWNLOAD:
	case IMAGES_STAGE_BLOB_DONE: {
		if (!pg->tty)
			return;
		int64_t now = cbl_mono_us();
		if (p->stage == IMAGES_STAGE_DOWNLOAD && now - pg->last_us < 100000)
			return;
		pg->last_us = now;
		human(a, p->all_done);
		human(b, p->all_total);
		fprintf(stderr, "\r\033[KDownloading: %s / %s", a, b);
		pg->drew = true;
		return;
	}
	case IMAGES_STAGE_UNPACK:
		if (pg->tty) {
			fprintf(stderr, "\r\033[KUnpacking layer %zu/%zu", p->index + 1, p->count);
			pg->drew = true;
		}
		return;
	case IMAGES_STAGE_DONE:
		if (pg->drew)
			fputs("\r\033[K", stderr);
		pg->drew = false;
		return;
	}
}

static int exit_for(int rc)
{
	return rc == CBL_EINVAL || rc == CBL_ENOENT ? CLI_EXIT_USAGE : CLI_EXIT_FAULT;
}

/* What a subcommand gets: the options (parsed for all of them) and its
 * arguments. */
struct images_args {
	const char *home;
	images_resolve_opts *o;
	struct prog *pg;
	const char *name; /* --name */
	bool json;
	int nargs;
	char **args;
};

static int do_ls(const struct images_args *ia)
{
	images_list *l = NULL;
	cbl_error *err = NULL;
	int rc = images_ls(ia->home, &l, &err);
	if (rc) {
		cli_report_clear(&err);
		return exit_for(rc);
	}
	if (ia->json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < l->n; i++) {
			const images_info *in = &l->items[i];
			json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:b}", "name", in->name, "digest",
							     in->digest, "size", (json_int_t)in->root_bytes, "downloaded",
							     (json_int_t)in->blob_bytes, "created", (json_int_t)(in->created_us / 1000),
							     "lastUsed", (json_int_t)(in->last_used_us / 1000), "unpacked",
							     in->unpacked));
		}
		char *s = json_dumps(arr, JSON_INDENT(2));
		printf("%s\n", s);
		free(s);
		json_decref(arr);
	} else {
		size_t w = 4;
		for (size_t i = 0; i < l->n; i++)
			if (strlen(l->items[i].name) > w)
				w = strlen(l->items[i].name);
		printf("%-*s  %-19s  %10s  %10s  %s\n", (int)w, "NAME", "DIGEST", "SIZE", "DOWNLOADED", "LAST USED");
		for (size_t i = 0; i < l->n; i++) {
			const images_info *in = &l->items[i];
			char a[32], b[32], c[48];
			human(a, in->root_bytes);
			human(b, in->blob_bytes);
			ago(c, in->last_used_us);
			printf("%-*s  %.19s  %10s  %10s  %s\n", (int)w, in->name, in->digest, in->unpacked ? a : "-", b, c);
		}
	}
	images_list_free(l);
	return CLI_EXIT_OK;
}

static int do_pull(const struct images_args *ia)
{
	images_root *r = NULL;
	cbl_error *err = NULL;
	int64_t t0 = cbl_mono_us();
	int lrc = images_pull(ia->home, ia->args[0], ia->o, &r, &err);
	on_progress(&(images_progress){.stage = IMAGES_STAGE_DONE}, ia->pg);
	if (lrc) {
		cli_report_clear(&err);
		return exit_for(lrc);
	}
	printf("%s: %s (%.2f s)\n", r->name, r->digest, (double)(cbl_mono_us() - t0) / 1e6);
	print_warnings(r);
	images_root_free(r);
	return CLI_EXIT_OK;
}

static int do_import(const struct images_args *ia)
{
	images_root *r = NULL;
	cbl_error *err = NULL;
	int lrc = images_import(ia->home, ia->args[0], ia->name, ia->o, &r, &err);
	on_progress(&(images_progress){.stage = IMAGES_STAGE_DONE}, ia->pg);
	if (lrc) {
		cli_report_clear(&err);
		return exit_for(lrc);
	}
	printf("%s: %s\n", r->name, r->digest);
	print_warnings(r);
	images_root_free(r);
	return CLI_EXIT_OK;
}

static int do_inspect(const struct images_args *ia)
{
	images_root *r = NULL;
	cbl_error *err = NULL;
	int lrc = images_resolve(ia->home, ia->args[0], ia->o, &r, &err);
	on_progress(&(images_progress){.stage = IMAGES_STAGE_DONE}, ia->pg);
	if (lrc) {
		cli_report_clear(&err);
		return exit_for(lrc);
	}
	static const char *const kinds[] = {"host", "directory", "image"};
	json_t *j = json_pack("{s:s, s:s}", "name", r->name, "kind", kinds[r->kind]);
	cbl_json_set_str(j, "rootfs", r->rootfs);
	cbl_json_set_str(j, "digest", r->digest);
	json_t *env = json_array();
	for (size_t i = 0; i < r->env.n; i++)
		json_array_append_new(env, json_string(r->env.v[i]));
	json_object_set_new(j, "env", env);
	cbl_json_set_str(j, "workingDir", r->working_dir);
	cbl_json_set_str(j, "user", r->user);
	cbl_json_set_str(j, "os", r->os);
	cbl_json_set_str(j, "architecture", r->arch);
	cbl_json_set_str(j, "variant", r->variant);
	json_object_set_new(j, "pulled", json_boolean(r->pulled));
	char *txt = json_dumps(j, JSON_INDENT(2));
	printf("%s\n", txt);
	print_warnings(r);
	free(txt);
	json_decref(j);
	images_root_free(r);
	return CLI_EXIT_OK;
}

static int do_rm(const struct images_args *ia)
{
	int rc = CLI_EXIT_OK;
	for (int i = 0; i < ia->nargs; i++) {
		uint64_t freed = 0;
		cbl_error *err = NULL;
		int lrc = images_rm(ia->home, ia->args[i], &freed, &err);
		if (lrc) {
			cli_report_clear(&err);
			rc = exit_for(lrc);
			continue;
		}
		char h[32];
		human(h, freed);
		printf("removed %s (%s freed)\n", ia->args[i], h);
	}
	return rc;
}

static int do_prune(const struct images_args *ia)
{
	uint64_t freed = 0;
	cbl_error *err = NULL;
	int lrc = images_prune(ia->home, &freed, &err);
	if (lrc) {
		cli_report_clear(&err);
		return exit_for(lrc);
	}
	char h[32];
	human(h, freed);
	printf("reclaimed %s\n", h);
	return CLI_EXIT_OK;
}

/* The subcommands: name, an alias, how many arguments (max -1 = any) and
 * what to say when the count is wrong. */
static const struct images_cmd {
	const char *name, *alias;
	int min_args, max_args;
	const char *bad_args;
	int (*fn)(const struct images_args *ia);
} images_cmds[] = {
	{"ls", "list", 0, 0, "images ls takes no arguments", do_ls},
	{"pull", NULL, 1, 1, "images pull takes one image", do_pull},
	{"import", NULL, 1, 1, "images import takes one file or directory", do_import},
	{"inspect", NULL, 1, 1, "images inspect takes one image", do_inspect},
	{"rm", "rmi", 1, -1, "images rm takes at least one image", do_rm},
	{"prune", NULL, 0, -1, NULL, do_prune},
};

static const struct images_cmd *images_cmd_find(const char *sub)
{
	for (size_t i = 0; i < ARRAY_SIZE(images_cmds); i++)
		if (!strcmp(sub, images_cmds[i].name) ||
		    (images_cmds[i].alias && !strcmp(sub, images_cmds[i].alias)))
			return &images_cmds[i];
	return NULL;
}

/* The options of every subcommand. */
struct images_opts {
	images_resolve_opts o;
	cbl_strv insecure;
	const char *name;
	char *password;
	bool json, quiet, pw_stdin;
};

/* Parses the options; -1 to go on, else the exit code. */
static int parse_images_options(int argc, char **argv, struct images_opts *io)
{
	int opt;
	optind = 1;
	while ((opt = cli_getopt("images", argc, argv, "u:n:qh", images_options)) != -1) {
		switch (opt) {
		case 'I': cbl_strv_push(&io->insecure, optarg); break;
		case 'P': io->o.platform = optarg; break;
		case 'u': io->o.username = optarg; break;
		case 'p':
			free(io->password);
			io->password = cbl_xstrdup(optarg);
			break;
		case 'S': io->pw_stdin = true; break;
		case 'j': io->o.parallel = atoi(optarg); break;
		case 'r': {
			int n = atoi(optarg);
			io->o.retries = n <= 0 ? -1 : n;
			break;
		}
		case 'n': io->name = optarg; break;
		case 'J': io->json = true; break;
		case 'O': io->o.offline = true; break;
		case 'q': io->quiet = true; break;
		case 'h': fputs(images_usage, stdout); return CLI_EXIT_OK;
		default: return CLI_EXIT_USAGE; /* said in one line by cli_getopt */
		}
	}
	return -1;
}

/* --password-stdin: all of standard input, without its trailing newline. */
static char *read_password_stdin(void)
{
	cbl_buf b = CBL_BUF_INIT;
	char buf[512];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
		cbl_buf_append(&b, buf, n);
	while (b.len && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\r'))
		b.ptr[--b.len] = '\0';
	return cbl_buf_detach(&b);
}

int cmd_images(int argc, char **argv)
{
	struct images_opts io = {.o = IMAGES_RESOLVE_OPTS_INIT, .insecure = CBL_STRV_INIT};
	struct prog pg = {.tty = isatty(2) == 1};
	char *home = NULL;
	int rc;

	if (argc < 2) {
		fputs(images_usage, stderr);
		return CLI_EXIT_USAGE;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
		fputs(images_usage, stdout);
		return CLI_EXIT_OK;
	}
	argc--;
	argv++;
	rc = parse_images_options(argc, argv, &io);
	if (rc >= 0)
		goto out;
	if (io.pw_stdin) {
		free(io.password);
		io.password = read_password_stdin();
	}
	io.o.password = io.password;
	io.o.insecure_registries = io.insecure.n ? (const char *const *)io.insecure.v : NULL;
	if (!io.quiet) {
		io.o.progress = on_progress;
		io.o.payload = &pg;
	}
	home = store_default_home();
	struct images_args ia = {.home = home, .o = &io.o, .pg = &pg, .name = io.name, .json = io.json,
				 .nargs = argc - optind, .args = argv + optind};
	const struct images_cmd *c = images_cmd_find(sub);
	if (!c) {
		const char *names[ARRAY_SIZE(images_cmds)];
		for (size_t i = 0; i < ARRAY_SIZE(images_cmds); i++)
			names[i] = images_cmds[i].name;
		cli_unknown("unknown images command", sub, cbl_suggest(sub, names, ARRAY_SIZE(names)), "images");
		rc = CLI_EXIT_USAGE;
	} else if (ia.nargs < c->min_args || (c->max_args >= 0 && ia.nargs > c->max_args)) {
		cli_error("%s", c->bad_args);
		rc = CLI_EXIT_USAGE;
	} else {
		rc = c->fn(&ia);
	}
out:
	if (io.password) {
		memset(io.password, 0, strlen(io.password));
		free(io.password);
	}
	cbl_strv_release(&io.insecure);
	free(home);
	return rc;
}
