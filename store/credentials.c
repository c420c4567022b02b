/* store/credentials.c - ImportSourceCredentials, ListSourceCredentials,
 * DeleteSourceCredentials (store/api.h).
 *
 * One credential per server type, as the service keeps them (ARN
 * arn:aws:codebuild:<r>:<a>:token/<server type, lower case>).  They live in
 * <home>/source-credentials.json, mode 0600 whatever the umask, replaced
 * atomically (written beside it, synced, renamed), read and written inside a
 * write transaction of the database so two processes do not interleave.
 * The token is stored as given (not encrypted: there is no key to keep
 * apart from it on this machine); only the file's owner (and root) can read
 * it, and no operation returns it: ListSourceCredentials gives arn,
 * serverType, authType and - for CODECONNECTIONS / SECRETS_MANAGER, whose
 * token is an ARN - resource.  Builds do not use these yet (git sources
 * authenticate as README says). */
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/json.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/banned.h"

#define CREDS_FILE "source-credentials.json"
#define CREDS_MAX (4u << 20)

static int load(const char *home, json_t **out, cbl_error **err)
{
	char *path = cbl_path_join(home, CREDS_FILE), *data = NULL;
	size_t len = 0;
	struct stat sb;
	if (lstat(path, &sb) < 0 && errno == ENOENT) {
		*out = json_pack("{s:[]}", "credentials");
		free(path);
		return 0;
	}
	int rc = cbl_read_regular_file(path, CREDS_MAX, &data, &len, err);
	if (rc) {
		free(path);
		return rc;
	}
	json_error_t je;
	json_t *j = json_loadb(data, len, 0, &je);
	free(data);
	if (!j || !json_is_array(json_object_get(j, "credentials"))) {
		json_decref(j);
		rc = cbl_error_set(err, CBL_EIO, "%s: damaged (%s): remove it and import the credentials again",
				   path, je.text);
		free(path);
		return rc;
	}
	free(path);
	*out = j;
	return 0;
}

static int save(const char *home, json_t *doc, cbl_error **err)
{
	char *path = cbl_path_join(home, CREDS_FILE);
	char *text = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	int rc = cbl_write_file_atomic(path, text ? text : "{}", text ? strlen(text) : 2, 0600, true, err);
	/* the mode whatever the umask */
	if (!rc && chmod(path, 0600) < 0)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot chmod %s", path);
	free(text);
	free(path);
	return rc;
}

static json_t *find(json_t *list, const char *arn, size_t *index)
{
	size_t i;
	json_t *c;
	json_array_foreach(list, i, c) {
		if (!strcmp(cbl_json_str_or_empty(c, "arn"), arn)) {
			*index = i;
			return c;
		}
	}
	return NULL;
}

static bool token_is_arn(const char *auth)
{
	return !strcmp(auth, "CODECONNECTIONS") || !strcmp(auth, "SECRETS_MANAGER");
}

static int check_import(const json_t *req, cbl_error **err)
{
	const char *auth = cbl_json_str_or_empty(req, "authType");
	if (!strcmp(auth, "OAUTH"))
		return cbl_error_set(err, CBL_EINVAL, "OAUTH credentials cannot be imported through the API: "
						      "use PERSONAL_ACCESS_TOKEN, BASIC_AUTH, CODECONNECTIONS "
						      "or SECRETS_MANAGER");
	if (!strcmp(auth, "BASIC_AUTH") && !cbl_json_str(req, "username"))
		return cbl_error_set(err, CBL_EINVAL, "username is required when authType is BASIC_AUTH");
	if (token_is_arn(auth) && strncmp(cbl_json_str_or_empty(req, "token"), "arn:", 4))
		return cbl_error_set(err, CBL_EINVAL, "token must be an ARN when authType is %s", auth);
	return 0;
}

int store_op_import_source_credentials(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	int rc = check_import(req, err);
	if (rc)
		return rc;
	const char *server = cbl_json_str_or_empty(req, "serverType");
	char *lower = cbl_xstrdup(server);
	for (char *p = lower; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	char *arn = cbl_xasprintf("arn:aws:codebuild:%s:%s:token/%s", STORE_DEFAULT_REGION,
				  STORE_DEFAULT_ACCOUNT, lower);
	free(lower);
	json_t *doc = NULL;
	rc = store_begin(h->db, err);
	if (!rc)
		rc = load(h->home, &doc, err);
	if (rc)
		goto out;
	json_t *list = json_object_get(doc, "credentials");
	size_t at = 0;
	json_t *old = find(list, arn, &at);
	json_t *overwrite = json_object_get(req, "shouldOverwrite");
	if (old && json_is_false(overwrite)) {
		rc = cbl_error_set(err, CBL_EEXIST, "Source credentials already exist: %s", arn);
		goto out;
	}
	json_t *c = json_pack("{s:s, s:s, s:s, s:s}", "arn", arn, "serverType", server, "authType",
			      cbl_json_str_or_empty(req, "authType"), "token",
			      cbl_json_str_or_empty(req, "token"));
	if (cbl_json_str(req, "username"))
		json_object_set(c, "username", json_object_get(req, "username"));
	if (old)
		json_array_set_new(list, at, c);
	else
		json_array_append_new(list, c);
	rc = save(h->home, doc, err);
	if (!rc)
		rc = store_commit(h->db, err);
	if (!rc)
		*out = json_pack("{s:s}", "arn", arn);
out:
	store_rollback(h->db);
	json_decref(doc);
	free(arn);
	return rc;
}

int store_op_list_source_credentials(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	(void)req;
	json_t *doc = NULL;
	int rc = load(h->home, &doc, err);
	if (rc)
		return rc;
	json_t *infos = json_array();
	size_t i;
	json_t *c;
	json_array_foreach(json_object_get(doc, "credentials"), i, c) {
		const char *auth = cbl_json_str_or_empty(c, "authType");
		json_t *info = json_pack("{s:s, s:s, s:s}", "arn", cbl_json_str_or_empty(c, "arn"),
					 "serverType", cbl_json_str_or_empty(c, "serverType"), "authType", auth);
		if (token_is_arn(auth))
			json_object_set(info, "resource", json_object_get(c, "token"));
		json_array_append_new(infos, info);
	}
	json_decref(doc);
	*out = json_pack("{s:o}", "sourceCredentialsInfos", infos);
	return 0;
}

int store_op_delete_source_credentials(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	const char *arn = cbl_json_str_or_empty(req, "arn");
	json_t *doc = NULL;
	int rc = store_begin(h->db, err);
	if (!rc)
		rc = load(h->home, &doc, err);
	if (rc)
		goto out;
	size_t at = 0;
	if (!find(json_object_get(doc, "credentials"), arn, &at)) {
		rc = cbl_error_set(err, CBL_ENOENT, "Source credentials cannot be found: %s", arn);
		goto out;
	}
	json_array_remove(json_object_get(doc, "credentials"), at);
	rc = save(h->home, doc, err);
	if (!rc)
		rc = store_commit(h->db, err);
	if (!rc)
		*out = json_pack("{s:s}", "arn", arn);
out:
	store_rollback(h->db);
	json_decref(doc);
	return rc;
}
