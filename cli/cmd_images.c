/* cli/cmd_images.c - `codebuild-local images ls | pull | import | rm | prune`:
 * the local image store (images/images.h). */
#include "cli/cli.h"
#include "images/images.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/strv.h"
#include "util/time.h"

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

static int do_ls(const char *home, bool json)
{
	images_list *l = NULL;
	cbl_error *err = NULL;
	int rc = images_ls(home, &l, &err);
	if (rc) {
		cli_report(err);
		cbl_error_free(err);
		return exit_for(rc);
	}
	if (json) {
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

int cmd_images(int argc, char **argv)
{
	images_resolve_opts o = IMAGES_RESOLVE_OPTS_INIT;
	cbl_strv insecure = CBL_STRV_INIT;
	const char *name = NULL;
	char *password = NULL;
	bool json = false, quiet = false, pw_stdin = false;
	char *home = NULL;
	cbl_error *err = NULL;
	int opt, rc = CLI_EXIT_OK;
	struct prog pg = {.tty = isatty(2) == 1};

	if (argc < 2) {
		fputs(images_usage, stderr);
		return CLI_EXIT_USAGE;
	}
	const char *sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
		fputs(images_usage, stdout);
		return CLI_EXIT_OK;
	}
	optind = 1;
	argc--;
	argv++;
	while ((opt = getopt_long(argc, argv, "u:n:qh", images_options, NULL)) != -1) {
		switch (opt) {
		case 'I': cbl_strv_push(&insecure, optarg); break;
		case 'P': o.platform = optarg; break;
		case 'u': o.username = optarg; break;
		case 'p':
			free(password);
			password = cbl_xstrdup(optarg);
			break;
		case 'S': pw_stdin = true; break;
		case 'j': o.parallel = atoi(optarg); break;
		case 'r': {
			int n = atoi(optarg);
			o.retries = n <= 0 ? -1 : n;
			break;
		}
		case 'n': name = optarg; break;
		case 'J': json = true; break;
		case 'O': o.offline = true; break;
		case 'q': quiet = true; break;
		case 'h': fputs(images_usage, stdout); rc = CLI_EXIT_OK; goto out;
		default: fputs(images_usage, stderr); rc = CLI_EXIT_USAGE; goto out;
		}
	}
	if (pw_stdin) {
		cbl_buf b = CBL_BUF_INIT;
		char buf[512];
		size_t n;
		while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
			cbl_buf_append(&b, buf, n);
		while (b.len && (b.ptr[b.len - 1] == '\n' || b.ptr[b.len - 1] == '\r'))
			b.ptr[--b.len] = '\0';
		free(password);
		password = cbl_buf_detach(&b);
	}
	o.password = password;
	o.insecure_registries = insecure.n ? (const char *const *)insecure.v : NULL;
	if (!quiet) {
		o.progress = on_progress;
		o.payload = &pg;
	}
	home = store_default_home();
	int nargs = argc - optind;
	char **args = argv + optind;

	if (!strcmp(sub, "ls") || !strcmp(sub, "list")) {
		rc = nargs ? (cli_error("images ls takes no arguments"), CLI_EXIT_USAGE) : do_ls(home, json);
	} else if (!strcmp(sub, "pull")) {
		if (nargs != 1) {
			cli_error("images pull takes one image");
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		images_root *r = NULL;
		int64_t t0 = cbl_mono_us();
		int lrc = images_pull(home, args[0], &o, &r, &err);
		on_progress(&(images_progress){.stage = IMAGES_STAGE_DONE}, &pg);
		if (lrc) {
			cli_report(err);
			rc = exit_for(lrc);
			goto out;
		}
		printf("%s: %s (%.2f s)\n", r->name, r->digest, (double)(cbl_mono_us() - t0) / 1e6);
		print_warnings(r);
		images_root_free(r);
	} else if (!strcmp(sub, "import")) {
		if (nargs != 1) {
			cli_error("images import takes one file or directory");
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		images_root *r = NULL;
		int lrc = images_import(home, args[0], name, &o, &r, &err);
		on_progress(&(images_progress){.stage = IMAGES_STAGE_DONE}, &pg);
		if (lrc) {
			cli_report(err);
			rc = exit_for(lrc);
			goto out;
		}
		printf("%s: %s\n", r->name, r->digest);
		print_warnings(r);
		images_root_free(r);
	} else if (!strcmp(sub, "inspect")) {
		if (nargs != 1) {
			cli_error("images inspect takes one image");
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		images_root *r = NULL;
		int lrc = images_resolve(home, args[0], &o, &r, &err);
		on_progress(&(images_progress){.stage = IMAGES_STAGE_DONE}, &pg);
		if (lrc) {
			cli_report(err);
			rc = exit_for(lrc);
			goto out;
		}
		static const char *const kinds[] = {"host", "directory", "image"};
		json_t *j = json_pack("{s:s, s:s}", "name", r->name, "kind", kinds[r->kind]);
		if (r->rootfs)
			json_object_set_new(j, "rootfs", json_string(r->rootfs));
		if (r->digest)
			json_object_set_new(j, "digest", json_string(r->digest));
		json_t *env = json_array();
		for (size_t i = 0; i < r->env.n; i++)
			json_array_append_new(env, json_string(r->env.v[i]));
		json_object_set_new(j, "env", env);
		if (r->working_dir)
			json_object_set_new(j, "workingDir", json_string(r->working_dir));
		if (r->user)
			json_object_set_new(j, "user", json_string(r->user));
		if (r->os)
			json_object_set_new(j, "os", json_string(r->os));
		if (r->arch)
			json_object_set_new(j, "architecture", json_string(r->arch));
		if (r->variant)
			json_object_set_new(j, "variant", json_string(r->variant));
		json_object_set_new(j, "pulled", json_boolean(r->pulled));
		char *txt = json_dumps(j, JSON_INDENT(2));
		printf("%s\n", txt);
		print_warnings(r);
		free(txt);
		json_decref(j);
		images_root_free(r);
	} else if (!strcmp(sub, "rm") || !strcmp(sub, "rmi")) {
		if (nargs < 1) {
			cli_error("images rm takes at least one image");
			rc = CLI_EXIT_USAGE;
			goto out;
		}
		for (int i = 0; i < nargs; i++) {
			uint64_t freed = 0;
			int lrc = images_rm(home, args[i], &freed, &err);
			if (lrc) {
				cli_report(err);
				cbl_error_clear(&err);
				rc = exit_for(lrc);
				continue;
			}
			char h[32];
			human(h, freed);
			printf("removed %s (%s freed)\n", args[i], h);
		}
	} else if (!strcmp(sub, "prune")) {
		uint64_t freed = 0;
		int lrc = images_prune(home, &freed, &err);
		if (lrc) {
			cli_report(err);
			rc = exit_for(lrc);
			goto out;
		}
		char h[32];
		human(h, freed);
		printf("reclaimed %s\n", h);
	} else {
		cli_error("unknown images command '%s'", sub);
		fputs(images_usage, stderr);
		rc = CLI_EXIT_USAGE;
	}
out:
	if (password) {
		memset(password, 0, strlen(password));
		free(password);
	}
	cbl_strv_release(&insecure);
	cbl_error_free(err);
	free(home);
	return rc;
}
