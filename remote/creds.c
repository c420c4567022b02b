/* remote/creds.c - the standard credential chain, static keys only (see
 * remote.h). */
#include "remote/remote.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/strv.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

/* One profile's keys, as NAME=VALUE. */
static void trim(char **s, char **e)
{
	while (*s < *e && isspace((unsigned char)**s))
		(*s)++;
	while (*e > *s && isspace((unsigned char)(*e)[-1]))
		(*e)--;
}

/* Reads section `want` of an INI file into kv (NAME=VALUE).  0 found,
 * 1 no such section (or no file), <0 error. */
static int read_section(const char *path, const char *want, cbl_strv *kv, cbl_error **err)
{
	char *data = NULL;
	size_t len = 0;
	cbl_error *e = NULL;
	if (cbl_read_file(path, 1 << 20, &data, &len, &e) < 0) {
		bool missing = e->code == CBL_ENOENT;
		if (missing) {
			cbl_error_free(e);
			return 1;
		}
		int rc = cbl_error_set(err, CBL_EINVAL, "cannot read %s: %s", path, e->msg);
		cbl_error_free(e);
		return rc;
	}
	bool in = false, found = false;
	char *line = data;
	while (line && *line) {
		char *nl = strchr(line, '\n');
		char *end = nl ? nl : line + strlen(line);
		char *s = line, *t = end;
		trim(&s, &t);
		if (s < t && *s == '[' && t[-1] == ']') {
			char *a = s + 1, *b = t - 1;
			trim(&a, &b);
			in = (size_t)(b - a) == strlen(want) && !strncmp(a, want, (size_t)(b - a));
			found |= in;
		} else if (in && s < t && *s != '#' && *s != ';') {
			char *eq = memchr(s, '=', (size_t)(t - s));
			if (eq) {
				char *ks = s, *ke = eq, *vs = eq + 1, *ve = t;
				trim(&ks, &ke);
				trim(&vs, &ve);
				cbl_strv_pushf(kv, "%.*s=%.*s", (int)(ke - ks), ks, (int)(ve - vs), vs);
			}
		}
		line = nl ? nl + 1 : NULL;
	}
	explicit_bzero(data, len);
	free(data);
	return found ? 0 : 1;
}

static const char *kv_get(const cbl_strv *kv, const char *name)
{
	return cbl_env_get(kv, name);
}

static char *home_file(const char *env, const char *rel)
{
	const char *v = getenv(env);
	if (v && *v)
		return cbl_xstrdup(v);
	const char *home = getenv("HOME");
	return cbl_path_join(home && *home ? home : "/", rel);
}

/* What a profile needs that we do not read: a message, else NULL. */
static int unsupported(const cbl_strv *kv, const char *profile, const char *path, cbl_error **err)
{
	static const char *const keys[][2] = {
		{"sso_start_url", "SSO"},         {"sso_session", "SSO"},
		{"credential_process", "a credential process"}, {"role_arn", "an assumed role"},
		{"web_identity_token_file", "web identity"},
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (kv_get(kv, keys[i][0]))
			return cbl_error_set(err, CBL_EINVAL,
					     "profile %s (%s) uses %s (%s): codebuild-local reads static keys "
					     "only; export them with `aws configure export-credentials --profile "
					     "%s --format env` and run again",
					     profile, path, keys[i][1], keys[i][0], profile);
	return 0;
}

static int take_keys(remote_creds *out, const cbl_strv *kv, const char *profile, const char *path,
		     cbl_error **err)
{
	const char *id = kv_get(kv, "aws_access_key_id");
	const char *secret = kv_get(kv, "aws_secret_access_key");
	if (!id && !secret)
		return 1;
	if (!id || !secret || !*id || !*secret)
		return cbl_error_set(err, CBL_EINVAL,
				     "profile %s (%s) has only one of aws_access_key_id and "
				     "aws_secret_access_key",
				     profile, path);
	out->access_key_id = cbl_xstrdup(id);
	out->secret_access_key = cbl_xstrdup(secret);
	const char *tok = kv_get(kv, "aws_session_token");
	out->session_token = tok && *tok ? cbl_xstrdup(tok) : NULL;
	out->source = cbl_xasprintf("profile %s in %s", profile, path);
	return 0;
}

/* The profile's keys from the credentials file, then the config file; the
 * region from the config file. */
static int from_profile(remote_creds *out, const char *profile, cbl_error **err)
{
	char *cred_path = home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
	char *conf_path = home_file("AWS_CONFIG_FILE", ".aws/config");
	char *conf_section = !strcmp(profile, "default") ? cbl_xstrdup("default")
							 : cbl_xasprintf("profile %s", profile);
	cbl_strv ckv = CBL_STRV_INIT, fkv = CBL_STRV_INIT;
	int rc = read_section(cred_path, profile, &ckv, err);
	int rc2 = rc < 0 ? 1 : read_section(conf_path, conf_section, &fkv, err);
	if (rc < 0 || rc2 < 0) {
		rc = rc < 0 ? rc : rc2;
		goto out;
	}
	if (rc == 1 && rc2 == 1) {
		rc = cbl_error_set(err, CBL_ENOENT, "the config profile (%s) could not be found (%s, %s)", profile,
				   cred_path, conf_path);
		goto out;
	}
	const char *region = kv_get(&fkv, "region");
	if (region && *region && !out->region)
		out->region = cbl_xstrdup(region);
	if ((rc = take_keys(out, &ckv, profile, cred_path, err)) <= 0)
		goto out;
	if ((rc = unsupported(&ckv, profile, cred_path, err)) < 0 ||
	    (rc = unsupported(&fkv, profile, conf_path, err)) < 0)
		goto out;
	if ((rc = take_keys(out, &fkv, profile, conf_path, err)) <= 0)
		goto out;
	rc = cbl_error_set(err, CBL_ENOENT, "profile %s has no aws_access_key_id / aws_secret_access_key (%s, %s)",
			   profile, cred_path, conf_path);
out:
	cbl_strv_release(&ckv);
	cbl_strv_release(&fkv);
	free(cred_path);
	free(conf_path);
	free(conf_section);
	return rc;
}

int remote_creds_load(remote_creds *out, const char *profile, const char *region, cbl_error **err)
{
	memset(out, 0, sizeof(*out));
	const char *r = region && *region ? region : getenv("AWS_REGION");
	if (!r || !*r)
		r = getenv("AWS_DEFAULT_REGION");
	if (r && *r)
		out->region = cbl_xstrdup(r);
	const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
	int rc;
	if (!(profile && *profile) && id && *id && secret && *secret) {
		out->access_key_id = cbl_xstrdup(id);
		out->secret_access_key = cbl_xstrdup(secret);
		const char *tok = getenv("AWS_SESSION_TOKEN");
		out->session_token = tok && *tok ? cbl_xstrdup(tok) : NULL;
		out->source = cbl_xstrdup("the environment (AWS_ACCESS_KEY_ID)");
		rc = 0;
		/* the region may still come from the default profile's config */
		if (!out->region) {
			remote_creds tmp;
			memset(&tmp, 0, sizeof(tmp));
			cbl_error *ignored = NULL;
			const char *p = getenv("AWS_PROFILE");
			from_profile(&tmp, p && *p ? p : "default", &ignored);
			cbl_error_free(ignored);
			out->region = tmp.region;
			tmp.region = NULL;
			remote_creds_release(&tmp);
		}
	} else {
		const char *p = profile && *profile ? profile : getenv("AWS_PROFILE");
		rc = from_profile(out, p && *p ? p : "default", err);
		if (rc == CBL_ENOENT && !(profile && *profile) && !(getenv("AWS_PROFILE") && *getenv("AWS_PROFILE"))) {
			if (err) {
				cbl_error_free(*err);
				*err = NULL;
			}
			rc = cbl_error_set(err, CBL_ENOENT,
					   "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
					   "or configure a profile (aws configure) and pass --profile");
		}
	}
	if (rc < 0)
		remote_creds_release(out);
	return rc;
}

void remote_creds_release(remote_creds *c)
{
	if (c->secret_access_key)
		explicit_bzero(c->secret_access_key, strlen(c->secret_access_key));
	if (c->session_token)
		explicit_bzero(c->session_token, strlen(c->session_token));
	free(c->access_key_id);
	free(c->secret_access_key);
	free(c->session_token);
	free(c->region);
	free(c->source);
	memset(c, 0, sizeof(*c));
}
