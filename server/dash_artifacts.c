/* server/dash_artifacts.c - a build's artifacts as downloads from its
 * page.  The location comes from the build's record; only a regular file
 * directly in <home>/builds/<project>/<uuid>/artifacts/ is served, opened
 * without following a link (O_NOFOLLOW, then fstat). */
#include "server/dashboard.h"
#include "store/store.h"
#include "util/alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

static const char *location_of(json_t *rec, size_t n)
{
	json_t *a = n == 0 ? json_object_get(rec, "artifacts")
			   : json_array_get(json_object_get(rec, "secondaryArtifacts"), n - 1);
	return json_string_value(json_object_get(a, "location"));
}

int dash_artifact_open(const char *home, json_t *rec, size_t n, int *fd, long long *size,
		       const char **name)
{
	const char *id = json_string_value(json_object_get(rec, "id"));
	const char *loc = location_of(rec, n);
	const char *colon = id ? strchr(id, ':') : NULL;
	char *real = realpath(home, NULL);
	if (!loc || !colon || !real) {
		free(real);
		return -1;
	}
	char *prefix = cbl_xasprintf("%s/builds/%.*s/%s/artifacts/", real, (int)(colon - id), id,
				     colon + 1);
	size_t pl = strlen(prefix);
	const char *rest = !strncmp(loc, prefix, pl) ? loc + pl : NULL;
	free(prefix);
	free(real);
	if (!rest || !*rest || strchr(rest, '/') || !strcmp(rest, ".") || !strcmp(rest, ".."))
		return -1;
	int f = open(loc, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	if (f < 0)
		return -1;
	if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(f);
		return -1;
	}
	*fd = f;
	*size = (long long)st.st_size;
	*name = rest;
	return 0;
}

enum MHD_Result dash_artifact(struct MHD_Connection *c, const char *home, const char *id,
			      const char *n, unsigned *status)
{
	json_t *rec = NULL;
	cbl_error *err = NULL;
	char *end;
	unsigned long idx = strtoul(n, &end, 10);
	int fd = -1;
	long long size = 0;
	const char *name = NULL;
	if (*end || !*n || store_build_load(home, id, &rec, &err) < 0 ||
	    dash_artifact_open(home, rec, idx, &fd, &size, &name) < 0) {
		cbl_error_free(err);
		json_decref(rec);
		*status = 404;
		return dash_send_error(c, 404, "No such artifact file");
	}
	char *disp = cbl_xasprintf("attachment; filename=\"%s\"", name);
	json_decref(rec);
	struct MHD_Response *r = MHD_create_response_from_fd64((uint64_t)size, fd);
	if (!r) {
		close(fd);
		free(disp);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/octet-stream");
	MHD_add_response_header(r, "Content-Disposition", disp);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	free(disp);
	*status = 200;
	enum MHD_Result res = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return res;
}
