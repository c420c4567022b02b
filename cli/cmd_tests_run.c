/* cli/cmd_tests_run.c - the curated images' parallel-test helpers, on a
 * build's PATH as links to this binary (runner/cache.c, provision.c):
 *   codebuild-glob-search PATTERN...   the files the globs select under the
 *                                      current directory, one per line
 *   codebuild-tests-run --test-command CMD --files-search CMD
 *                       [--sharding-strategy equal-distribution|stability]
 *     runs CMD with this shard's share of the files files-search printed
 *     (one per line): appended to CMD, space-separated and shell-quoted, and
 *     in CODEBUILD_CURRENT_SHARD_FILES (newline-separated).  The shard is
 *     CODEBUILD_BATCH_SHARD_NUMBER of CODEBUILD_BATCH_SHARD_COUNT (a
 *     build-fanout build has them); without them, all files. */
#include "cli/cli.h"
#include "artifacts/artifacts.h"
#include "runner/batch.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/strv.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/banned.h"

int cmd_glob_search(int argc, char **argv);
int cmd_tests_run(int argc, char **argv);

int cmd_glob_search(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs("usage: codebuild-glob-search PATTERN [PATTERN...]\n"
		      "Prints the files of the current directory the glob patterns select (CodeBuild's\n"
		      "artifact glob rules), one per line, sorted.\n",
		      argc < 2 ? stderr : stdout);
		return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
	}
	spec_artifact a = {0};
	spec_str *items = cbl_xcalloc((size_t)argc, sizeof(*items));
	for (int i = 1; i < argc; i++)
		items[i - 1].s = argv[i];
	a.files.items = items;
	a.files.n = (size_t)argc - 1;
	artifacts_list *l = NULL;
	cbl_error *err = NULL;
	int rc = artifacts_collect(&l, ".", &a, (const char *const *)argv + 1, NULL, NULL, NULL, &err);
	free(items);
	if (rc < 0 && rc != CBL_ENOENT) {
		cli_report_clear(&err);
		return CLI_EXIT_FAULT;
	}
	cbl_error_free(err);
	for (size_t i = 0; l && i < l->n; i++)
		printf("%s\n", l->items[i].name);
	artifacts_list_free(l);
	return CLI_EXIT_OK;
}

/* The lines files-search prints (its exit status must be 0). */
static int search_files(const char *cmd, cbl_strv *out)
{
	FILE *p = popen(cmd, "r");
	if (!p) {
		cli_error("codebuild-tests-run: cannot run --files-search");
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, p)) > 0) {
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n)
			cbl_strv_push(out, line);
	}
	free(line);
	int st = pclose(p);
	if (st != 0) {
		cli_error("codebuild-tests-run: --files-search '%s' failed (status %d)", cmd,
			  WIFEXITED(st) ? WEXITSTATUS(st) : 128);
		return -1;
	}
	return 0;
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);
	char *end = NULL;
	long n = v ? strtol(v, &end, 10) : 0;
	return v && *v && !*end && n > 0 && n < 100000 ? (int)n : dflt;
}

static int run_shard(const char *test_cmd, const cbl_strv *files, runner_shard_strategy strat)
{
	int count = env_int("CODEBUILD_BATCH_SHARD_COUNT", 1);
	int shard = env_int("CODEBUILD_BATCH_SHARD_NUMBER", 1);
	size_t *sel = cbl_xcalloc(files->n ? files->n : 1, sizeof(size_t));
	size_t k = runner_shard_select((const char *const *)files->v, files->n, shard, count, strat, sel);
	fprintf(stderr, "codebuild-tests-run: shard %d of %d: %zu of %zu test files\n", shard, count, k, files->n);
	if (!k) {
		free(sel);
		return CLI_EXIT_OK;
	}
	cbl_buf cmd = CBL_BUF_INIT, list = CBL_BUF_INIT;
	cbl_buf_puts(&cmd, test_cmd);
	for (size_t i = 0; i < k; i++) {
		cbl_buf_putc(&cmd, ' ');
		cbl_buf_shquote(&cmd, files->v[sel[i]]);
		cbl_buf_printf(&list, "%s%s", i ? "\n" : "", files->v[sel[i]]);
	}
	free(sel);
	setenv("CODEBUILD_CURRENT_SHARD_FILES", list.ptr, 1);
	fflush(NULL);
	int st = system(cmd.ptr);
	cbl_buf_release(&cmd);
	cbl_buf_release(&list);
	if (st < 0)
		return CLI_EXIT_FAULT;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int cmd_tests_run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"test-command", required_argument, NULL, 't'},
		{"files-search", required_argument, NULL, 'f'},
		{"sharding-strategy", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *test_cmd = NULL, *search = NULL;
	runner_shard_strategy strat = RUNNER_SHARD_EQUAL;
	int c;
	optind = 1;
	while ((c = cli_getopt("tests-run", argc, argv, "h", longopts)) != -1) {
		if (c == 't') {
			test_cmd = optarg;
		} else if (c == 'f') {
			search = optarg;
		} else if (c == 's') {
			if (!strcmp(optarg, "stability"))
				strat = RUNNER_SHARD_STABILITY;
			else if (strcmp(optarg, "equal-distribution"))
				return cli_error("--sharding-strategy takes equal-distribution or stability, got '%s'",
						 optarg),
				       CLI_EXIT_USAGE;
		} else if (c == 'h') {
			puts("usage: codebuild-tests-run --test-command CMD --files-search CMD\n"
			     "                           [--sharding-strategy equal-distribution|stability]");
			return CLI_EXIT_OK;
		} else {
			return CLI_EXIT_USAGE;
		}
	}
	if (!test_cmd || !search) {
		cli_error("codebuild-tests-run needs --test-command and --files-search");
		return CLI_EXIT_USAGE;
	}
	cbl_strv files = CBL_STRV_INIT;
	int rc = search_files(search, &files) < 0 ? CLI_EXIT_FAILED : run_shard(test_cmd, &files, strat);
	cbl_strv_release(&files);
	return rc;
}
