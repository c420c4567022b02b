/* server/creds.c - access keys from the environment and AWS credentials files.
 *
 * The file format is what botocore reads with RawConfigParser: sections in
 * brackets, "key = value" or "key=value", whole-line comments starting with
 * '#' or ';', no inline comments (a '#' inside a value is part of it),
 * indented lines continue the previous key (nested s3 settings) and are
 * ignored here. */
#include "server/creds.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/banned.h"

struct cred {
	char *akid;
	char *secret;
};

struct server_creds {
	struct cred *v;
	size_t n, cap;
};

server_creds *server_creds_new(void)
{
	return cbl_xcalloc(1, sizeof(server_creds));
}

void server_creds_free(server_creds *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].akid);
		OPENSSL_cleanse(c->v[i].secret, strlen(c->v[i].secret));
		free(c->v[i].secret);
	}
	free(c->v);
	free(c);
}

const char *server_creds_lookup(const server_creds *c, const char *access_key_id)
{
	if (!c || !access_key_id)
		return NULL;
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].akid, access_key_id))
			return c->v[i].secret;
	return NULL;
}

size_t server_creds_count(const server_creds *c)
{
	return c ? c->n : 0;
}

int server_creds_add(server_creds *c, const char *access_key_id, const char *secret,
		     cbl_error **err)
{
	if (!access_key_id || !*access_key_id || !secret || !*secret)
		return cbl_error_set(err, CBL_EINVAL, "an access key id and a secret must not be empty");
	const char *have = server_creds_lookup(c, access_key_id);
	if (have) {
		if (strcmp(have, secret))
			return cbl_error_set(err, CBL_EINVAL,
					     "access key %s is given twice with different secrets",
					     access_key_id);
		return 0;
	}
	CBL_GROW(c->v, c->n + 1, c->cap);
	c->v[c->n].akid = cbl_xstrdup(access_key_id);
	c->v[c->n].secret = cbl_xstrdup(secret);
	c->n++;
	return 0;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* Closes a section: adds its pair, or complains about half a pair. */
static int flush_section(server_creds *c, const char *path, const char *section, int line,
			 char **akid, char **secret, size_t *added, cbl_error **err)
{
	int rc = 0;
	if (*akid && *secret) {
		rc = server_creds_add(c, *akid, *secret, err);
		if (rc < 0)
			cbl_error_wrap(err, "%s: profile [%s]", path, section);
		else
			(*added)++;
	} else if (*akid || *secret) {
		rc = cbl_error_set(err, CBL_EINVAL,
				   "%s:%d: profile [%s] has %s but no %s", path, line, section,
				   *akid ? "aws_access_key_id" : "aws_secret_access_key",
				   *akid ? "aws_secret_access_key" : "aws_access_key_id");
	}
	free(*akid);
	if (*secret)
		OPENSSL_cleanse(*secret, strlen(*secret));
	free(*secret);
	*akid = *secret = NULL;
	return rc;
}

int server_creds_load_file(server_creds *c, const char *path, size_t *out_added,
			   cbl_error **err)
{
	char *data = NULL, *section = cbl_xstrdup(""), *akid = NULL, *secret = NULL;
	size_t len = 0, added = 0;
	int rc, lineno = 0, section_line = 0;

	rc = cbl_read_file(path, 1 << 20, &data, &len, err);
	if (rc < 0)
		goto out;
	char *p = data;
	while (p && *p) {
		char *nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		lineno++;
		char *line = p;
		p = nl ? nl + 1 : NULL;
		if (line[0] == ' ' || line[0] == '\t')
			continue; /* continuation of a nested value */
		line = trim(line);
		if (!*line || *line == '#' || *line == ';')
			continue;
		if (*line == '[') {
			char *close = strchr(line, ']');
			if (!close) {
				rc = cbl_error_set(err, CBL_EINVAL, "%s:%d: section header without ']'",
						   path, lineno);
				goto out;
			}
			rc = flush_section(c, path, section, section_line, &akid, &secret, &added, err);
			if (rc < 0)
				goto out;
			*close = '\0';
			free(section);
			section = cbl_xstrdup(trim(line + 1));
			section_line = lineno;
			continue;
		}
		char *eq = strchr(line, '=');
		if (!eq) {
			rc = cbl_error_set(err, CBL_EINVAL, "%s:%d: expected 'key = value'", path,
					   lineno);
			goto out;
		}
		*eq = '\0';
		char *key = trim(line), *val = trim(eq + 1);
		char **slot = NULL;
		if (!strcasecmp(key, "aws_access_key_id"))
			slot = &akid;
		else if (!strcasecmp(key, "aws_secret_access_key"))
			slot = &secret;
		if (slot) {
			if (*slot)
				free(*slot);
			*slot = *val ? cbl_xstrdup(val) : NULL;
		}
	}
	rc = flush_section(c, path, section, section_line, &akid, &secret, &added, err);
out:
	if (out_added)
		*out_added = added;
	if (data) {
		OPENSSL_cleanse(data, len);
		free(data);
	}
	free(section);
	free(akid);
	if (secret)
		OPENSSL_cleanse(secret, strlen(secret));
	free(secret);
	return rc;
}
