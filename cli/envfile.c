/* cli/envfile.c - KEY=VALUE files, as docker's --env-file and AWS's local
 * agent read them: '#' comments and blank lines ignored, no quote processing. */
#include "cli/cli.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

int cli_read_env_file(const char *path, cbl_strv *out, cbl_error **err)
{
	char *data = NULL;
	size_t len = 0;
	int rc = cbl_read_file(path, 0, &data, &len, err);
	if (rc)
		return rc;
	int lineno = 0;
	char *p = data;
	while (p && *p) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		lineno++;
		size_t l = strlen(p);
		if (l && p[l - 1] == '\r')
			p[--l] = '\0';
		char *s = p;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s && *s != '#') {
			char *eq = strchr(s, '=');
			if (!eq && !strpbrk(s, " \t")) {
				/* a bare NAME takes the value from our environment (docker) */
				const char *v = getenv(s);
				if (v)
					cbl_strv_pushf(out, "%s=%s", s, v);
				p = nl ? nl + 1 : NULL;
				continue;
			}
			if (!eq || eq == s) {
				rc = cbl_error_set_at(err, CBL_EINVAL, path, lineno, 1,
						      "expected NAME=VALUE, got '%s'", s);
				break;
			}
			cbl_strv_push(out, s);
		}
		p = nl ? nl + 1 : NULL;
	}
	free(data);
	return rc;
}
