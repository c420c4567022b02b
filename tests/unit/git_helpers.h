/* tests/unit/git_helpers.h - shell and file helpers shared by the git
 * source tests (test_source.c, test_source_cache.c): run a command, capture
 * its output, count a repository's commits, read a file.  Static inline:
 * each test uses what it needs. */
#ifndef TESTS_UNIT_GIT_HELPERS_H
#define TESTS_UNIT_GIT_HELPERS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "util/alloc.h"
#include "util/fs.h"

static inline int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd = NULL;
	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0)
		abort();
	va_end(ap);
	int st = system(cmd);
	free(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* stdout of a shell command, trailing newlines removed; caller frees. */
static inline char *cap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline char *cap(const char *fmt, ...)
{
	va_list ap;
	char *cmd = NULL;
	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0)
		abort();
	va_end(ap);
	FILE *f = popen(cmd, "r");
	free(cmd);
	if (!f)
		return cbl_xstrdup("");
	char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	pclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return cbl_xstrdup(buf);
}

static inline int commits(const char *dir)
{
	char *s = cap("git -C '%s' log --oneline 2>/dev/null | wc -l", dir);
	int n = atoi(s);
	free(s);
	return n;
}

static inline char *file_text(const char *dir, const char *rel)
{
	char *p = cbl_path_join(dir, rel), *data = NULL;
	size_t len;
	if (cbl_read_file(p, 0, &data, &len, NULL) < 0)
		data = NULL;
	free(p);
	return data;
}

static inline bool exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0;
}

#endif
