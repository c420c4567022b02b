/* store/ids.c - names and ids: a project's name, a build's id
 * (<project>:<uuid>), and the error for an unknown project.  Every other
 * file of the store uses them; they use nothing of it. */
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static bool uuid_part_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
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

int store_split_build_id(const char *id, char **project, char **uuid, cbl_error **err)
{
	const char *s = id;
	/* the build's ARN names it too: arn:aws:codebuild:<r>:<a>:build/<id> */
	if (!strncmp(s, "arn:", 4)) {
		const char *b = strstr(s, ":build/");
		if (!b)
			goto bad;
		s = b + 7;
	}
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s)
		goto bad;
	char *p = cbl_xstrndup(s, (size_t)(colon - s));
	if (!store_project_name_valid(p) || !uuid_part_ok(colon + 1)) {
		free(p);
		goto bad;
	}
	*project = p;
	*uuid = cbl_xstrdup(colon + 1);
	return 0;
bad:
	return cbl_error_set(err, CBL_EINVAL, "Invalid build ID provided: %s", id);
}

int store_project_not_found(const char *name, cbl_error **err)
{
	return cbl_error_set(err, CBL_ENOENT, "Project cannot be found: arn:aws:codebuild:%s:%s:project/%s",
			     STORE_DEFAULT_REGION, STORE_DEFAULT_ACCOUNT, name);
}
