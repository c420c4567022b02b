/* runner/buildenv.c - the build-environment stage (DOWNLOAD_SOURCE): CodeBuild's variables, the buildspec's, secrets, overrides. */
#include "runner/runner_internal.h"
#include "util/alloc.h"
#include "util/fs.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/banned.h"

static void apply_assignments(cbl_strv *env, const cbl_strv *list)
{
	for (size_t i = 0; i < list->n; i++) {
		const char *eq = strchr(list->v[i], '=');
		char *name = cbl_xstrndup(list->v[i], (size_t)(eq - list->v[i]));
		cbl_env_set(env, name, eq + 1);
		free(name);
	}
}

static void set_codebuild_env(runner_build *b)
{
	cbl_strv *e = &b->vars.env;
	char buf[64];
	runner_image_base_env(b, e);
	cbl_env_set(e, "AWS_DEFAULT_REGION", b->ident.region);
	cbl_env_set(e, "AWS_REGION", b->ident.region);
	cbl_env_set(e, "CODEBUILD_BUILD_ARN", b->ident.arn);
	cbl_env_set(e, "CODEBUILD_BUILD_ID", b->ident.id);
	cbl_env_set(e, "CODEBUILD_BUILD_IMAGE", b->cfg.image);
	snprintf(buf, sizeof(buf), "%lld", (long long)b->ident.number);
	cbl_env_set(e, "CODEBUILD_BUILD_NUMBER", buf);
	cbl_env_set(e, "CODEBUILD_BUILD_SUCCEEDING", "1");
	char *url = cbl_xasprintf("https://%s.console.aws.amazon.com/codebuild/home?region=%s#/builds/%s/view/new",
				  b->ident.region, b->ident.region, b->ident.id);
	cbl_env_set(e, "CODEBUILD_BUILD_URL", url);
	free(url);
	cbl_env_set(e, "CODEBUILD_CI", "true");
	cbl_env_set(e, "CODEBUILD_CONTAINER_NAME", "default");
	cbl_env_set(e, "CODEBUILD_INITIATOR", b->ident.initiator);
	char *kms = cbl_xasprintf("arn:aws:kms:%s:%s:alias/aws/s3", b->ident.region, b->ident.account);
	cbl_env_set(e, "CODEBUILD_KMS_KEY_ID", kms);
	free(kms);
	cbl_env_set(e, "CODEBUILD_LAST_EXIT", "0");
	cbl_env_set(e, "CODEBUILD_LOCAL_BUILD", "true");
	cbl_env_set(e, "CODEBUILD_LOG_PATH", b->cfg.log_stream ? b->cfg.log_stream : b->ident.uuid);
	/* the project's ARN (a `run` build's project is the implicit one
	 * named after its directory, as in list-projects) */
	char *parn = cbl_xasprintf("arn:aws:codebuild:%s:%s:project/%s", b->ident.region, b->ident.account,
				   b->ident.project);
	cbl_env_set(e, "CODEBUILD_PROJECT_ARN", parn);
	free(parn);
	if (b->src.resolved_version)
		cbl_env_set(e, "CODEBUILD_RESOLVED_SOURCE_VERSION", b->src.resolved_version);
	cbl_env_set(e, "CODEBUILD_SOURCE_REPO_URL", b->src.repo_url ? b->src.repo_url : "");
	cbl_env_set(e, "CODEBUILD_SOURCE_VERSION",
		    b->cfg.source_version ? b->cfg.source_version : (b->src.resolved_version ? b->src.resolved_version : ""));
	cbl_env_set(e, "CODEBUILD_SRC_DIR", b->src.src_inner);
	runner_sources_env(b);
	apply_assignments(e, &b->vars.webhook_env);
	if (b->sandbox) {
		/* inside, the build is root like on the service */
		cbl_env_set(e, "HOME", "/root");
		cbl_env_unset(e, "USER");
		cbl_env_unset(e, "LOGNAME");
		cbl_env_set(e, "OLDPWD", "/codebuild/readonly");
	}
	snprintf(buf, sizeof(buf), "%lld", (long long)(b->start_us / 1000));
	cbl_env_set(e, "CODEBUILD_START_TIME", buf);
}


/* True if StartBuild's overrides name a secret variable called name. */
static bool override_secret(const runner_build *b, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < b->vars.override_secrets.n; i++) {
		const char *r = b->vars.override_secrets.v[i] + 2;
		if (!strncmp(r, name, n) && r[n] == '=')
			return true;
	}
	return false;
}

static bool overridden(const runner_build *b, const char *name)
{
	return cbl_env_get(&b->vars.overrides, name) || cbl_env_get(&b->vars.project_env, name);
}

/* A resolved secret value: masked in the log, the variable's value unless
 * overridden (and then passed to commands only through their environment),
 * the copy wiped. */
static void use_secret(runner_build *b, const char *name, char *v)
{
	runner_mask_add(&b->log.mask, v);
	if (!overridden(b, name)) {
		cbl_env_set(&b->vars.env, name, v);
		cbl_strv_push(&b->vars.secret_names, name);
	}
	explicit_bzero(v, strlen(v));
	free(v);
}

/* Resolves parameter-store and secrets-manager variables (DOWNLOAD_SOURCE).
 * Their values live in the build's environment (b->vars.env, handed to each
 * command's exec) and nowhere on disk: runner/shell.c keeps them out of the
 * carried state, the log masks them. */
static int resolve_secrets(runner_build *b, runner_outcome *o)
{
	const spec_buildspec *bs = b->spec;
	runner_secrets *secrets = NULL;
	cbl_error *e = NULL;
	int rc = 0;
	if (!bs->env.parameter_store.n && !bs->env.secrets_manager.n)
		return 0;
	if (b->cfg.secrets_file && runner_secrets_load(&secrets, b->cfg.secrets_file, &e) < 0) {
		runner_outcome_set(b, o, "CLIENT_ERROR", e->msg);
		cbl_error_free(e);
		return -1;
	}
	if (bs->env.parameter_store.n) {
		runner_agent(b, "Decrypting parameter store environment variables");
		for (size_t i = 0; i < bs->env.parameter_store.n; i++) {
			const spec_kv *kv = &bs->env.parameter_store.items[i];
			char *v = NULL;
			if (runner_secrets_parameter(secrets, kv->value, &v, &e) < 0) {
				char *m = b->cfg.secrets_file
						  ? cbl_xstrdup(e->msg)
						  : cbl_xasprintf("%s (no --secrets-file given: parameter-store "
								  "values are read from it offline)",
								  e->msg);
				runner_outcome_set(b, o, "Decrypted Variables Error", m);
				free(m);
				cbl_error_free(e);
				rc = -1;
				goto out;
			}
			use_secret(b, kv->key, v);
		}
	}
	for (size_t i = 0; i < bs->env.secrets_manager.n; i++) {
		const spec_kv *kv = &bs->env.secrets_manager.items[i];
		char *v = NULL;
		if (runner_secrets_secret(secrets, kv->value, &v, &e) < 0) {
			char *m = b->cfg.secrets_file
					  ? cbl_xasprintf("ResourceNotFoundException: %s", e->msg)
					  : cbl_xasprintf("ResourceNotFoundException: %s (no --secrets-file "
							  "given: secrets-manager values are read from it offline)",
							  e->msg);
			runner_outcome_set(b, o, "Secrets Manager Error", m);
			free(m);
			cbl_error_free(e);
			rc = -1;
			goto out;
		}
		use_secret(b, kv->key, v);
	}
out:
	runner_secrets_free(secrets);
	return rc;
}

/* The PARAMETER_STORE / SECRETS_MANAGER variables of a project (is_project:
 * those an override names are left out) or of StartBuild's overrides, from
 * the secrets file (`serve --secrets-file`), masked like the buildspec's. */
static int resolve_api_secrets(runner_build *b, const cbl_strv *refs, bool is_project, runner_outcome *o)
{
	runner_secrets *secrets = NULL;
	cbl_error *e = NULL;
	int rc = 0;
	if (!refs->n)
		return 0;
	if (b->cfg.secrets_file && runner_secrets_load(&secrets, b->cfg.secrets_file, &e) < 0) {
		runner_outcome_set(b, o, "CLIENT_ERROR", e->msg);
		cbl_error_free(e);
		return -1;
	}
	for (size_t i = 0; i < refs->n && !rc; i++) {
		const char *r = refs->v[i], *eq = strchr(r + 2, '=');
		char *name = cbl_xstrndup(r + 2, (size_t)(eq - (r + 2))), *v = NULL;
		bool param = r[0] == 'P';
		if (is_project && (cbl_env_get(&b->vars.overrides, name) || override_secret(b, name))) {
			free(name);
			continue;
		}
		if ((param ? runner_secrets_parameter(secrets, eq + 1, &v, &e)
			   : runner_secrets_secret(secrets, eq + 1, &v, &e)) < 0) {
			char *m = cbl_xasprintf("%s%s%s", param ? "" : "ResourceNotFoundException: ", e->msg,
						b->cfg.secrets_file ? "" : " (no --secrets-file given to serve: values are "
									   "read from it offline)");
			runner_outcome_set(b, o, param ? "Decrypted Variables Error" : "Secrets Manager Error", m);
			free(m);
			cbl_error_free(e);
			e = NULL;
			rc = -1;
		} else {
			runner_mask_add(&b->log.mask, v);
			cbl_env_set(&b->vars.env, name, v);
			cbl_strv_push(&b->vars.secret_names, name);
			explicit_bzero(v, strlen(v));
			free(v);
		}
		free(name);
	}
	runner_secrets_free(secrets);
	return rc;
}

/* CodeBuild's git-credential-helper hands the source's credentials to the
 * build's git commands; locally those are the user's stored git
 * credentials, offered read-only through git's own store helper. */
static void offer_git_credentials(runner_build *b)
{
	const char *home = getenv("HOME");
	char *creds = home && *home ? cbl_path_join(home, ".git-credentials") : NULL;
	struct stat cst;
	char *data = NULL;
	size_t dlen = 0;
	cbl_error *ce = NULL;
	if (creds && stat(creds, &cst) == 0 && cbl_mkdir_p(b->ident.tmpdir, 0700, &ce) == 0 &&
	    cbl_read_file(creds, 1 << 20, &data, &dlen, &ce) == 0) {
		/* a copy in the build's scratch, where the sandbox shows it */
		char *copy = cbl_path_join(b->ident.tmpdir, "git-credentials");
		cbl_write_file_atomic(copy, data, dlen, 0600, false, &ce);
		free(copy);
		char *inner = cbl_path_join(b->sandbox ? "/codebuild/output/tmp" : b->ident.tmpdir, "git-credentials");
		char *helper = cbl_xasprintf("store --file=%s", inner);
		free(inner);
		cbl_env_set(&b->vars.env, "GIT_CONFIG_COUNT", "1");
		cbl_env_set(&b->vars.env, "GIT_CONFIG_KEY_0", "credential.helper");
		cbl_env_set(&b->vars.env, "GIT_CONFIG_VALUE_0", helper);
		runner_agent(b, "[codebuild-local] git-credential-helper: the build's git uses the credentials in %s", creds);
		free(helper);
	} else {
		runner_warn(b, "git-credential-helper: yes, but there is no ~/.git-credentials to offer "
			       "the build's git commands");
	}
	free(data);
	cbl_error_free(ce);
	free(creds);
}

/* The build-environment stage: CodeBuild's variables, the buildspec's
 * variables and secrets, then the project's and the overrides (highest
 * precedence). */
runner_status runner_stage_env(runner_build *b, runner_outcome *o)
{
	runner_agent(b, "Processing environment variables");
	set_codebuild_env(b);
	for (size_t i = 0; i < b->spec->env.variables.n; i++) {
		const spec_kv *kv = &b->spec->env.variables.items[i];
		cbl_env_set(&b->vars.env, kv->key, kv->value);
	}
	if (resolve_secrets(b, o) < 0)
		return RUNNER_STATUS_FAILED;
	if (b->spec->env.git_credential_helper)
		offer_git_credentials(b);
	runner_cache_hash_files_tool(b);
	apply_assignments(&b->vars.env, &b->vars.project_env);
	if (resolve_api_secrets(b, &b->vars.project_secrets, true, o) < 0)
		return RUNNER_STATUS_FAILED;
	apply_assignments(&b->vars.env, &b->vars.overrides);
	if (resolve_api_secrets(b, &b->vars.override_secrets, false, o) < 0)
		return RUNNER_STATUS_FAILED;
	/* the service hides access key ids in the log, whatever their shape */
	runner_mask_add(&b->log.mask, cbl_env_get(&b->vars.env, "AWS_ACCESS_KEY_ID"));
	return RUNNER_STATUS_SUCCEEDED;
}
