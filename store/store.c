#include "store/store.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

char *store_default_home(void)
{
	const char *h = getenv("CODEBUILD_LOCAL_HOME");
	if (h && *h)
		return cbl_xstrdup(h);
	const char *xdg = getenv("XDG_DATA_HOME");
	if (xdg && *xdg)
		return cbl_xasprintf("%s/codebuild-local", xdg);
	const char *home = getenv("HOME");
	return cbl_xasprintf("%s/.local/share/codebuild-local", home && *home ? home : "/tmp");
}

bool store_project_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n < 2 || n > 255 || !isalnum((unsigned char)name[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '-' && name[i] != '_')
			return false;
	return true;
}

char *store_project_name_from_dir(const char *dir)
{
	const char *base = strrchr(dir, '/');
	base = base && base[1] ? base + 1 : dir;
	cbl_buf b = CBL_BUF_INIT;
	for (const char *p = base; *p && b.len < 255; p++) {
		unsigned char c = (unsigned char)*p;
		if (isalnum(c) || c == '-' || c == '_')
			cbl_buf_putc(&b, (char)c);
		else
			cbl_buf_putc(&b, '-');
	}
	while (b.len && !isalnum((unsigned char)b.ptr[0]))
		cbl_buf_consume(&b, 1);
	if (b.len < 2) {
		cbl_buf_reset(&b);
		cbl_buf_puts(&b, "local");
	}
	return cbl_buf_detach(&b);
}

static char *project_dir(const char *home, const char *project)
{
	return cbl_xasprintf("%s/builds/%s", home, project);
}

int store_next_build_number(const char *home, const char *project, int64_t *out, cbl_error **err)
{
	char *dir = project_dir(home, project);
	char *path = NULL;
	int fd = -1, rc;
	rc = cbl_mkdir_p(dir, 0755, err);
	if (rc)
		goto out;
	path = cbl_xasprintf("%s/.counter", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot open '%s'", path);
		goto out;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot lock '%s'", path);
			goto out;
		}
	}
	char buf[32] = {0};
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	long long cur = n > 0 ? strtoll(buf, NULL, 10) : 0;
	if (cur < 0)
		cur = 0;
	cur++;
	int len = snprintf(buf, sizeof(buf), "%lld\n", cur);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot update '%s'", path);
		goto out;
	}
	*out = cur;
out:
	if (fd >= 0)
		close(fd); /* releases the lock */
	free(path);
	free(dir);
	return rc;
}

int store_build_dir_create(const char *home, const char *project, const char *uuid, char **out,
			   cbl_error **err)
{
	char *dir = cbl_xasprintf("%s/builds/%s/%s", home, project, uuid);
	/* private: it holds the build's carried environment (secrets included) */
	int rc = cbl_mkdir_p(dir, 0700, err);
	if (rc) {
		free(dir);
		return rc;
	}
	*out = dir;
	return 0;
}

int store_build_save(const char *build_dir, json_t *record, bool durable, cbl_error **err)
{
	char *s = json_dumps(record, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	if (!s)
		return cbl_error_set(err, CBL_EINTERNAL, "cannot serialize build record");
	char *path = cbl_path_join(build_dir, "build.json");
	int rc = cbl_write_file_atomic(path, s, strlen(s), 0644, durable, err);
	free(path);
	free(s);
	return rc;
}

static int split_id(const char *build_id, char **project, char **uuid, cbl_error **err)
{
	const char *colon = strrchr(build_id, ':');
	if (!colon || colon == build_id || !colon[1])
		return cbl_error_set(err, CBL_ENOENT, "invalid build id '%s' (expected <project>:<uuid>)",
				     build_id);
	*project = cbl_xstrndup(build_id, (size_t)(colon - build_id));
	*uuid = cbl_xstrdup(colon + 1);
	/* no path tricks through ids */
	if (strchr(*project, '/') || strchr(*uuid, '/') || !strcmp(*uuid, "..") ||
	    !strcmp(*uuid, ".") || !strcmp(*project, "..") || !strcmp(*project, ".")) {
		free(*project);
		free(*uuid);
		return cbl_error_set(err, CBL_ENOENT, "invalid build id '%s'", build_id);
	}
	return 0;
}

int store_build_load(const char *home, const char *build_id, json_t **out, cbl_error **err)
{
	char *project = NULL, *uuid = NULL, *path = NULL;
	int rc = split_id(build_id, &project, &uuid, err);
	if (rc)
		return rc;
	path = cbl_xasprintf("%s/builds/%s/%s/build.json", home, project, uuid);
	json_error_t jerr;
	json_t *j = json_load_file(path, 0, &jerr);
	if (!j) {
		if (access(path, F_OK) < 0)
			rc = cbl_error_set(err, CBL_ENOENT, "build '%s' not found", build_id);
		else
			rc = cbl_error_set(err, CBL_EIO, "cannot read build record '%s': %s", path, jerr.text);
	} else {
		*out = j;
	}
	free(path);
	free(project);
	free(uuid);
	return rc;
}

int store_build_log_path(const char *home, const char *build_id, char **out, cbl_error **err)
{
	char *project = NULL, *uuid = NULL;
	int rc = split_id(build_id, &project, &uuid, err);
	if (rc)
		return rc;
	char *path = cbl_xasprintf("%s/builds/%s/%s/build.log", home, project, uuid);
	free(project);
	free(uuid);
	if (access(path, F_OK) < 0) {
		free(path);
		return cbl_error_set(err, CBL_ENOENT, "build '%s' has no log", build_id);
	}
	*out = path;
	return 0;
}
