/* cli/cmd_hash_files.c - `codebuild-hash-files PATTERN...` (also
 * `codebuild-local hash-files`): the SHA-256 over the matched files of the
 * current directory, as the curated images' command prints it for cache
 * keys.  The input format is defined at cache_hash_files (cache/cache.h). */
#include "cli/cli.h"
#include "cache/cache.h"

#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static const char hash_usage[] =
	"usage: codebuild-hash-files PATTERN [PATTERN...]\n"
	"       codebuild-local hash-files PATTERN [PATTERN...]\n"
	"\n"
	"Prints the SHA-256 over the files the glob patterns select in the current\n"
	"directory (CodeBuild's artifact glob rules: 'dir/" "**" "/*' is the whole tree),\n"
	"for cache keys such as npm-$(codebuild-hash-files package-lock.json).\n"
	"The files are taken in byte order of their relative paths; each contributes\n"
	"'<path>\\0<hex SHA-256 of its content>\\n' to the hashed input.\n"
	"\n"
	"Exit status: 0 printed a hash, 1 no file matched (nothing printed), 2 usage,\n"
	"3 a file could not be read.\n";

int cmd_hash_files(int argc, char **argv); /* called from cli/main.c */

int cmd_hash_files(int argc, char **argv)
{
	int first = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(hash_usage, stdout);
			return CLI_EXIT_OK;
		}
		if (!strcmp(argv[i], "--")) {
			first = i + 1;
			break;
		}
	}
	if (first >= argc) {
		fputs(hash_usage, stderr);
		return CLI_EXIT_USAGE;
	}
	char hex[65];
	size_t n = 0;
	cbl_error *err = NULL;
	int rc = cache_hash_files(".", (const char *const *)(argv + first), (size_t)(argc - first), hex, &n,
				  &err);
	if (rc < 0) {
		cli_report_clear(&err);
		return CLI_EXIT_FAULT;
	}
	if (!n) {
		fprintf(stderr, "codebuild-hash-files: no file matched\n");
		return CLI_EXIT_FAILED;
	}
	printf("%s\n", hex);
	return CLI_EXIT_OK;
}
