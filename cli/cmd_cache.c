/* cli/cmd_cache.c - `codebuild-local cache ls | explain | prune`: look at
 * and trim the local build cache (cache/cache.h). */
#include "cli/cli.h"
#include "source/source.h"
#include "cache/cache.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/time.h"
#include "util/suggest.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

static const char cache_usage[] =
	"usage: codebuild-local cache ls [--json] [--cache-dir DIR]\n"
	"       codebuild-local cache explain [--project P] [--json] [--cache-dir DIR]\n"
	"       codebuild-local cache prune [--older-than DURATION] [--max-size SIZE] [--cache-dir DIR]\n"
	"\n"
	"The local build cache (buildspec `cache:`): one immutable snapshot per key,\n"
	"restored as an overlay in constant time.\n"
	"\n"
	"  ls        every cache entry: project (or cache namespace), key, paths version,\n"
	"            snapshot, files, size, when it was saved and last restored; then\n"
	"            the source cache's repositories (run --source-cache)\n"
	"  explain   what the last build of a project did with the cache: the keys\n"
	"            tried, hit / fallback / miss, sizes, restore and save times\n"
	"            (--project defaults to the current directory's name, as `run`)\n"
	"  prune     drops entries not restored for DURATION (a number with s, m, h,\n"
	"            d or w: 7d), then the least recently used ones until the cache\n"
	"            holds at most SIZE (bytes, or with K, M, G, T: 5G), then every\n"
	"            snapshot no entry names; --older-than also removes the source\n"
	"            cache's repositories not changed for DURATION (not in use)\n"
	"\n"
	"  --cache-dir DIR  the cache (default $CODEBUILD_LOCAL_HOME/cache)\n"
	"\n"
	"Exit status: 0 done, 1 explain found no record, 2 usage, 3 I/O error.\n";

static int parse_age(const char *s, int64_t *out_ms)
{
	char *end = NULL;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || v <= 0 || v > 1e7 || !*end || end[1])
		return -1;
	double mult;
	switch (*end) {
	case 's': mult = 1e3; break;
	case 'm': mult = 60e3; break;
	case 'h': mult = 3600e3; break;
	case 'd': mult = 86400e3; break;
	case 'w': mult = 7 * 86400e3; break;
	default: return -1;
	}
	*out_ms = (int64_t)(v * mult);
	return *out_ms > 0 ? 0 : -1;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end = NULL;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || v < 0)
		return -1;
	double mult = 1;
	if (*end) {
		const char *u = "KMGT";
		const char *p = strchr(u, *end >= 'a' ? *end - 32 : *end);
		if (!p)
			return -1;
		for (long i = 0; i <= p - u; i++)
			mult *= 1024;
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B") || !*end)
			end += strlen(end);
		if (*end)
			return -1;
	}
	v *= mult;
	if (v > 1.8e19)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

static void fmt_time(cbl_buf *b, int64_t us)
{
	char iso[32];
	if (us <= 0) {
		cbl_buf_puts(b, "-");
		return;
	}
	cbl_format_iso_time(iso, us);
	iso[16] = '\0'; /* YYYY-MM-DDTHH:MM */
	iso[10] = ' ';
	cbl_buf_puts(b, iso);
}

static int do_ls(cache_store *st, bool json)
{
	cache_entry_list *l = NULL;
	cbl_error *err = NULL;
	if (cache_list(st, &l, &err) < 0) {
		cli_report_clear(&err);
		return CLI_EXIT_FAULT;
	}
	if (json) {
		json_t *arr = json_array();
		for (size_t i = 0; i < l->n; i++) {
			const cache_entry_info *e = &l->items[i];
			json_t *o = json_object(), *paths = json_array();
			char iso[32];
			json_object_set_new(o, "scope", json_string(e->scope));
			json_object_set_new(o, "key", e->key ? json_string(e->key) : json_null());
			json_object_set_new(o, "version", json_string(e->version));
			json_object_set_new(o, "object", json_string(e->object));
			json_object_set_new(o, "files", json_integer((json_int_t)e->files));
			json_object_set_new(o, "bytes", json_integer((json_int_t)e->bytes));
			cbl_format_iso_time(iso, e->created_us);
			json_object_set_new(o, "created", json_string(iso));
			cbl_format_iso_time(iso, e->last_used_us);
			json_object_set_new(o, "lastUsed", json_string(iso));
			json_object_set_new(o, "build", e->build_id ? json_string(e->build_id) : json_null());
			for (size_t k = 0; k < e->paths.n; k++)
				json_array_append_new(paths, json_string(e->paths.v[k]));
			json_object_set_new(o, "paths", paths);
			json_array_append_new(arr, o);
		}
		char *s = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", s ? s : "[]");
		free(s);
		json_decref(arr);
	} else if (!l->n) {
		printf("The cache in %s is empty.\n", cache_store_dir(st));
	} else {
		printf("%-24s %-28s %-8s %-8s %7s %10s  %-16s  %-16s  %s\n", "PROJECT/NAMESPACE", "KEY",
		       "VERSION", "OBJECT", "FILES", "SIZE", "SAVED", "LAST RESTORED", "PATHS");
		for (size_t i = 0; i < l->n; i++) {
			const cache_entry_info *e = &l->items[i];
			cbl_buf size = CBL_BUF_INIT, c = CBL_BUF_INIT, u = CBL_BUF_INIT, p = CBL_BUF_INIT;
			cache_format_size(&size, e->bytes);
			fmt_time(&c, e->created_us);
			fmt_time(&u, e->last_used_us);
			for (size_t k = 0; k < e->paths.n; k++)
				cbl_buf_printf(&p, "%s%s", k ? " " : "", e->paths.v[k]);
			printf("%-24s %-28s %-8.8s %-8.8s %7llu %10s  %-16s  %-16s  %s\n", e->scope,
			       e->key ? e->key : "(rolling)", e->version, e->object,
			       (unsigned long long)e->files, cbl_buf_cstr(&size), cbl_buf_cstr(&c),
			       cbl_buf_cstr(&u), cbl_buf_cstr(&p));
			cbl_buf_release(&size);
			cbl_buf_release(&c);
			cbl_buf_release(&u);
			cbl_buf_release(&p);
		}
	}
	cache_entry_list_free(l);
	return CLI_EXIT_OK;
}

static int do_explain(cache_store *st, const char *project, bool json)
{
	char *derived = NULL;
	if (!project) {
		char *cwd = getcwd(NULL, 0);
		derived = store_project_name_from_dir(cwd ? cwd : ".");
		free(cwd);
		project = derived;
	}
	json_t *rec = NULL;
	cbl_error *err = NULL;
	int rc = CLI_EXIT_OK;
	if (cache_explain_load(st, project, &rec, &err) < 0) {
		rc = err->code == CBL_ENOENT ? CLI_EXIT_FAILED : CLI_EXIT_FAULT;
		cli_report_clear(&err);
		goto out;
	}
	if (json) {
		char *s = json_dumps(rec, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", s ? s : "{}");
		free(s);
	} else {
		cbl_buf b = CBL_BUF_INIT;
		cache_explain_format(rec, &b);
		fputs(cbl_buf_cstr(&b), stdout);
		cbl_buf_release(&b);
	}
out:
	json_decref(rec);
	free(derived);
	return rc;
}

static int do_prune(cache_store *st, const cache_prune_opts *po, bool has_age)
{
	cache_prune_result res = {0};
	cbl_error *err = NULL;
	if (cache_prune(st, po, &res, &err) < 0) {
		cli_report_clear(&err);
		return CLI_EXIT_FAULT;
	}
	cbl_buf size = CBL_BUF_INIT;
	cache_format_size(&size, res.bytes_removed);
	printf("Removed %zu cache entr%s and %zu snapshot%s (%s).\n", res.refs_removed,
	       res.refs_removed == 1 ? "y" : "ies", res.objects_removed, res.objects_removed == 1 ? "" : "s",
	       cbl_buf_cstr(&size));
	cbl_buf_release(&size);
	/* phase checkpoints: those a newer one replaced, and by age */
	size_t nc = 0;
	uint64_t cbytes = 0;
	if (cache_checkpoint_prune(st, has_age ? po->older_than_ms : 0, &nc, &cbytes, &err) < 0) {
		cli_report_clear(&err);
		return CLI_EXIT_FAULT;
	}
	cache_format_size(&size, cbytes);
	printf("Removed %zu phase checkpoint%s (%s).\n", nc, nc == 1 ? "" : "s", cbl_buf_cstr(&size));
	cbl_buf_release(&size);
	if (has_age) {
		/* the source cache's stores (run --source-cache) age the same way */
		size_t n = 0;
		uint64_t bytes = 0;
		char *git = cbl_path_join(cache_store_dir(st), "git");
		int rc = source_cache_prune(git, po->older_than_ms, &n, &bytes, &err);
		free(git);
		if (rc < 0) {
			cli_report_clear(&err);
			return CLI_EXIT_FAULT;
		}
		cache_format_size(&size, bytes);
		printf("Removed %zu source cache repositor%s (%s).\n", n, n == 1 ? "y" : "ies", cbl_buf_cstr(&size));
		cbl_buf_release(&size);
	}
	return CLI_EXIT_OK;
}

/* The phase checkpoints (run --from-phase), after the entries. */
static void ls_checkpoints(cache_store *st)
{
	cache_checkpoint_info *l = NULL;
	size_t n = 0;
	cbl_error *err = NULL;
	if (cache_checkpoint_list(st, &l, &n, &err) < 0) {
		cli_report_clear(&err);
		return;
	}
	if (n)
		printf("\nPHASE CHECKPOINTS (run --from-phase)\n%-24s %-10s %-12s %7s %10s  %-16s  %-16s  %s\n", "PROJECT",
		       "END OF", "KEY", "FILES", "SIZE", "TAKEN", "LAST USED", "BUILD");
	for (size_t i = 0; i < n; i++) {
		cbl_buf size = CBL_BUF_INIT, c = CBL_BUF_INIT, u = CBL_BUF_INIT;
		cache_format_size(&size, l[i].bytes);
		fmt_time(&c, l[i].created_us);
		fmt_time(&u, l[i].last_used_us);
		cbl_buf spare = CBL_BUF_INIT;
		if (l[i].spare_bytes) {
			cbl_buf_puts(&spare, " (its size counts a spare copy of ");
			cache_format_size(&spare, l[i].spare_bytes);
			cbl_buf_puts(&spare, ")");
		}
		printf("%-24s %-10s %-12.12s %7llu %10s  %-16s  %-16s  %s%s%s\n", l[i].scope, l[i].phase, l[i].key,
		       (unsigned long long)l[i].files, cbl_buf_cstr(&size), cbl_buf_cstr(&c), cbl_buf_cstr(&u),
		       l[i].build_id ? l[i].build_id : "-", l[i].newest ? "" : " (replaced)", cbl_buf_cstr(&spare));
		cbl_buf_release(&spare);
		cbl_buf_release(&size);
		cbl_buf_release(&c);
		cbl_buf_release(&u);
	}
	cache_checkpoint_list_free(l, n);
}

/* The source cache's stores, after the entries (`cache ls`). */
static void ls_source_caches(cache_store *st)
{
	cbl_strv stores = CBL_STRV_INIT;
	char *git = cbl_path_join(cache_store_dir(st), "git");
	if (source_cache_list(git, &stores, NULL) == 0 && stores.n) {
		printf("\nSOURCE CACHE (git objects, run --source-cache)  SIZE  CHANGED\n");
		for (size_t i = 0; i < stores.n; i++) {
			char key[65], when[32];
			unsigned long long bytes = 0;
			long long us = 0;
			if (sscanf(stores.v[i], "%64[0-9a-f]\t%llu\t%lld", key, &bytes, &us) != 3)
				continue;
			cbl_buf size = CBL_BUF_INIT;
			cache_format_size(&size, bytes);
			cbl_format_iso_time(when, us);
			printf("%.12s  %10s  %s\n", key, cbl_buf_cstr(&size), when);
			cbl_buf_release(&size);
		}
	}
	cbl_strv_release(&stores);
	free(git);
}

static const struct option cache_options[] = {
	{"cache-dir", required_argument, NULL, 'C'},
	{"project", required_argument, NULL, 'p'},
	{"json", no_argument, NULL, 'j'},
	{"older-than", required_argument, NULL, 'o'},
	{"max-size", required_argument, NULL, 'm'},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

int cmd_cache(int argc, char **argv); /* called from cli/main.c */

int cmd_cache(int argc, char **argv)
{
	const char *dir = NULL, *project = NULL;
	bool json = false, has_age = false;
	cache_prune_opts po = {0};
	int opt;
	optind = 1;
	while ((opt = cli_getopt("cache", argc, argv, "p:h", cache_options)) != -1) {
		switch (opt) {
		case 'C': dir = optarg; break;
		case 'p': project = optarg; break;
		case 'j': json = true; break;
		case 'o':
			if (parse_age(optarg, &po.older_than_ms) < 0) {
				cli_error("invalid --older-than '%s' (a number with s, m, h, d or w: 7d)", optarg);
				return CLI_EXIT_USAGE;
			}
			has_age = true;
			break;
		case 'm':
			if (parse_size(optarg, &po.max_bytes) < 0) {
				cli_error("invalid --max-size '%s' (bytes, or a number with K, M, G or T: 5G)", optarg);
				return CLI_EXIT_USAGE;
			}
			po.has_max_bytes = true;
			break;
		case 'h': fputs(cache_usage, stdout); return CLI_EXIT_OK;
		default: return CLI_EXIT_USAGE; /* said in one line by cli_getopt */
		}
	}
	if (optind != argc - 1) {
		cli_error(optind >= argc ? "cache needs a subcommand: ls, explain or prune"
					 : "cache takes one subcommand");
		fputs(cache_usage, stderr);
		return CLI_EXIT_USAGE;
	}
	const char *sub = argv[optind];
	bool is_ls = !strcmp(sub, "ls"), is_explain = !strcmp(sub, "explain"), is_prune = !strcmp(sub, "prune");
	if (!is_ls && !is_explain && !is_prune) {
		static const char *const subs[] = {"ls", "explain", "prune"};
		cli_unknown("unknown cache subcommand", sub, cbl_suggest(sub, subs, 3), "cache");
		return CLI_EXIT_USAGE;
	}
	if (((has_age || po.has_max_bytes) && !is_prune) || (project && !is_explain) || (json && is_prune)) {
		cli_error("option not valid for 'cache %s'", sub);
		return CLI_EXIT_USAGE;
	}
	char *home = NULL, *cdir = NULL;
	if (!dir) {
		home = store_default_home();
		cdir = cache_default_dir(home);
		dir = cdir;
	}
	cache_store *st = NULL;
	cbl_error *err = NULL;
	int rc;
	if (cache_store_open(&st, dir, &err) < 0) {
		cli_report_clear(&err);
		rc = CLI_EXIT_FAULT;
	} else if (is_ls) {
		rc = do_ls(st, json);
		if (rc == CLI_EXIT_OK && !json) {
			ls_checkpoints(st);
			ls_source_caches(st);
		}
	} else if (is_explain) {
		rc = do_explain(st, project, json);
	} else {
		rc = do_prune(st, &po, has_age);
	}
	cache_store_free(st);
	free(home);
	free(cdir);
	return rc;
}
