/* runner/env.c - offline parameter-store / secrets-manager values and the
 * host image's base environment. */
#include "runner/runner_internal.h"
#include "util/alloc.h"
#include "util/json.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

extern char **environ;

struct runner_secrets {
	json_t *root;
};

int runner_secrets_load(runner_secrets **out, const char *path, cbl_error **err)
{
	json_t *root = NULL;
	int rc = cbl_json_load_file(&root, path, 0, "invalid secrets file", err);
	if (rc < 0)
		return rc;
	if (!json_is_object(root)) {
		json_decref(root);
		return cbl_error_set(err, CBL_EINVAL,
				     "%s: the secrets file must be a JSON object with \"parameter-store\" "
				     "and/or \"secrets-manager\" maps",
				     path);
	}
	const char *k;
	json_t *v;
	rc = 0;
	json_object_foreach(root, k, v)
	{
		if (strcmp(k, "parameter-store") && strcmp(k, "secrets-manager")) {
			rc = cbl_error_set(err, CBL_EINVAL,
					   "%s: unknown key \"%s\" (expected \"parameter-store\" or "
					   "\"secrets-manager\")",
					   path, k);
			break;
		}
		if (!json_is_object(v)) {
			rc = cbl_error_set(err, CBL_EINVAL, "%s: \"%s\" must be an object of strings",
					   path, k);
			break;
		}
		const char *k2;
		json_t *v2;
		json_object_foreach(v, k2, v2)
		{
			if (!json_is_string(v2)) {
				rc = cbl_error_set(err, CBL_EINVAL, "%s: \"%s\".\"%s\" must be a string",
						   path, k, k2);
				break;
			}
		}
		if (rc)
			break;
	}
	if (rc) {
		json_decref(root); /* after the message is built: k points into root */
		return rc;
	}
	runner_secrets *s = cbl_xcalloc(1, sizeof(*s));
	s->root = root;
	*out = s;
	return 0;
}

void runner_secrets_free(runner_secrets *s)
{
	if (!s)
		return;
	json_decref(s->root);
	free(s);
}

static const char *lookup(const runner_secrets *s, const char *section, const char *key)
{
	if (!s)
		return NULL;
	json_t *sec = json_object_get(s->root, section);
	json_t *v = sec ? json_object_get(sec, key) : NULL;
	return v ? json_string_value(v) : NULL;
}

int runner_secrets_parameter(const runner_secrets *s, const char *name, char **out, cbl_error **err)
{
	const char *v = lookup(s, "parameter-store", name);
	if (!v)
		/* the service's wording for an unknown SSM parameter */
		return cbl_error_set(err, CBL_ENOENT, "parameter does not exist: %s", name);
	*out = cbl_xstrdup(v);
	return 0;
}

int runner_secret_ref_parse(const char *ref, char **id, char **json_key, char **stage,
			    char **version, cbl_error **err)
{
	/* An ARN has 6 colons of its own (arn:aws:secretsmanager:REGION:ACCT:secret:NAME),
	 * so its first 7 fields are the id ([inferred], reference §1.4). */
	const char *p = ref;
	int skip = strncmp(ref, "arn:", 4) == 0 ? 7 : 1;
	const char *fields_start = ref;
	for (int i = 0; i < skip; i++) {
		const char *c = strchr(p, ':');
		if (!c) {
			p = NULL;
			break;
		}
		if (i < skip - 1)
			p = c + 1;
		else
			p = c;
	}
	const char *id_end = p ? p : ref + strlen(ref);
	if (id_end == fields_start)
		return cbl_error_set(err, CBL_EINVAL, "invalid secrets-manager reference '%s': empty secret id",
				     ref);
	*id = cbl_xstrndup(ref, (size_t)(id_end - ref));
	char *f[3] = {NULL, NULL, NULL};
	if (p && *p == ':') {
		const char *q = p + 1;
		for (int i = 0; i < 3; i++) {
			const char *c = strchr(q, ':');
			size_t n = c ? (size_t)(c - q) : strlen(q);
			f[i] = cbl_xstrndup(q, n);
			if (!c)
				break;
			q = c + 1;
			if (i == 2 && c) {
				/* more than four fields */
				for (int j = 0; j < 3; j++)
					free(f[j]);
				free(*id);
				*id = NULL;
				return cbl_error_set(err, CBL_EINVAL,
						     "invalid secrets-manager reference '%s' (expected "
						     "secret-id:json-key:version-stage:version-id)",
						     ref);
			}
		}
	}
	*json_key = f[0];
	*stage = f[1];
	*version = f[2];
	return 0;
}

int runner_secrets_secret(const runner_secrets *s, const char *ref, char **out, cbl_error **err)
{
	char *id = NULL, *key = NULL, *stage = NULL, *version = NULL;
	int rc = runner_secret_ref_parse(ref, &id, &key, &stage, &version, err);
	if (rc)
		return rc;
	const char *v = lookup(s, "secrets-manager", id);
	if (!v) {
		rc = cbl_error_set(err, CBL_ENOENT,
				   "Secrets Manager can't find the specified secret: %s", id);
		goto out;
	}
	if (stage && *stage && strcmp(stage, "AWSCURRENT")) {
		rc = cbl_error_set(err, CBL_ENOENT,
				   "secret %s: version stage '%s' is not available offline (only "
				   "AWSCURRENT is)",
				   id, stage);
		goto out;
	}
	if (key && *key) {
		json_error_t je;
		json_t *j = json_loads(v, 0, &je);
		if (!j || !json_is_object(j)) {
			json_decref(j);
			rc = cbl_error_set(err, CBL_EINVAL,
					   "secret %s is not a JSON object, so json-key '%s' cannot be "
					   "read from it",
					   id, key);
			goto out;
		}
		json_t *jv = json_object_get(j, key);
		if (!jv) {
			json_decref(j);
			rc = cbl_error_set(err, CBL_ENOENT, "secret %s has no json-key '%s'", id, key);
			goto out;
		}
		if (json_is_string(jv))
			*out = cbl_xstrdup(json_string_value(jv));
		else
			*out = json_dumps(jv, JSON_ENCODE_ANY | JSON_COMPACT);
		json_decref(j);
	} else {
		*out = cbl_xstrdup(v);
	}
out:
	free(id);
	free(key);
	free(stage);
	free(version);
	return rc;
}

void runner_env_host_base(cbl_strv *env)
{
	/* The host "image": what a login shell would need, nothing personal.
	 * The user's other variables (credentials, tokens) stay out of the
	 * build unless passed with -e, like docker's clean container env. */
	static const char *const keep[] = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE",
					   "LC_ALL", "LC_CTYPE", "TZ", "TERM", "TMPDIR", "SHELL",
					   NULL};
	for (const char *const *k = keep; *k; k++) {
		const char *v = getenv(*k);
		if (v)
			cbl_env_set(env, *k, v);
	}
	if (!cbl_env_get(env, "PATH"))
		cbl_env_set(env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
}
