/* store/projects.c - build projects (the API's Project shape): validation,
 * CreateProject, UpdateProject, DeleteProject, BatchGetProjects,
 * ListProjects, and the implicit project of `run` without a project. */
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/json.h"
#include "util/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

/* ---------------------------------------------------------------- shapes */

#define SHAPE(f) {f, ARRAY_SIZE(f)}

static const char *const source_types[] = {"CODECOMMIT", "CODEPIPELINE", "GITHUB", "GITLAB",
					   "GITLAB_SELF_MANAGED", "S3", "BITBUCKET",
					   "GITHUB_ENTERPRISE", "NO_SOURCE", NULL};
static const char *const auth_types[] = {"OAUTH", "CODECONNECTIONS", "SECRETS_MANAGER", NULL};
static const char *const artifact_types[] = {"CODEPIPELINE", "S3", "NO_ARTIFACTS", NULL};
static const char *const namespace_types[] = {"NONE", "BUILD_ID", NULL};
static const char *const packagings[] = {"NONE", "ZIP", NULL};
static const char *const owner_access[] = {"NONE", "READ_ONLY", "FULL", NULL};
static const char *const cache_types[] = {"NO_CACHE", "S3", "LOCAL", NULL};
static const char *const cache_modes[] = {"LOCAL_DOCKER_LAYER_CACHE", "LOCAL_SOURCE_CACHE",
					  "LOCAL_CUSTOM_CACHE", NULL};
static const char *const env_types[] = {"WINDOWS_CONTAINER", "LINUX_CONTAINER", "LINUX_GPU_CONTAINER",
				       "ARM_CONTAINER", "WINDOWS_SERVER_2019_CONTAINER",
				       "WINDOWS_SERVER_2022_CONTAINER", "LINUX_LAMBDA_CONTAINER",
				       "ARM_LAMBDA_CONTAINER", "LINUX_EC2", "ARM_EC2", "WINDOWS_EC2",
				       "MAC_ARM", NULL};
static const char *const compute_types[] = {"BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM",
					   "BUILD_GENERAL1_LARGE", "BUILD_GENERAL1_XLARGE",
					   "BUILD_GENERAL1_2XLARGE", "BUILD_LAMBDA_1GB",
					   "BUILD_LAMBDA_2GB", "BUILD_LAMBDA_4GB", "BUILD_LAMBDA_8GB",
					   "BUILD_LAMBDA_10GB", "ATTRIBUTE_BASED_COMPUTE",
					   "CUSTOM_INSTANCE_TYPE", NULL};
static const char *const env_var_types[] = {"PLAINTEXT", "PARAMETER_STORE", "SECRETS_MANAGER", NULL};
static const char *const cred_providers[] = {"SECRETS_MANAGER", NULL};
static const char *const pull_cred_types[] = {"CODEBUILD", "SERVICE_ROLE", NULL};
static const char *const logs_status[] = {"ENABLED", "DISABLED", NULL};
static const char *const sort_by[] = {"NAME", "CREATED_TIME", "LAST_MODIFIED_TIME", NULL};
static const char *const sort_orders[] = {"ASCENDING", "DESCENDING", NULL};

static const store_field submodules_f[] = {{"fetchSubmodules", SF_BOOL, true}};
static const store_shape submodules_s = SHAPE(submodules_f);
static const store_field auth_f[] = {
	{"type", SF_STR, true, NULL, auth_types},
	{"resource", SF_STR},
};
static const store_shape auth_s = SHAPE(auth_f);
static const store_field status_cfg_f[] = {{"context", SF_STR}, {"targetUrl", SF_STR}};
static const store_shape status_cfg_s = SHAPE(status_cfg_f);
static const store_field source_f[] = {
	{"type", SF_STR, true, NULL, source_types},
	{"location", SF_STR},
	{"gitCloneDepth", SF_INT, .min = 0},
	{"gitSubmodulesConfig", SF_STRUCT, .sub = &submodules_s},
	{"buildspec", SF_STR},
	{"auth", SF_STRUCT, .sub = &auth_s},
	{"reportBuildStatus", SF_BOOL},
	{"buildStatusConfig", SF_STRUCT, .sub = &status_cfg_s},
	{"insecureSsl", SF_BOOL},
	{"sourceIdentifier", SF_STR},
};
static const store_shape source_s = SHAPE(source_f);
static const store_field source_version_f[] = {
	{"sourceIdentifier", SF_STR, true},
	{"sourceVersion", SF_STR, true},
};
static const store_shape source_version_s = SHAPE(source_version_f);
static const store_field artifacts_f[] = {
	{"type", SF_STR, true, NULL, artifact_types},
	{"location", SF_STR},
	{"path", SF_STR},
	{"namespaceType", SF_STR, .enumv = namespace_types},
	{"name", SF_STR},
	{"packaging", SF_STR, .enumv = packagings},
	{"overrideArtifactName", SF_BOOL},
	{"encryptionDisabled", SF_BOOL},
	{"artifactIdentifier", SF_STR},
	{"bucketOwnerAccess", SF_STR, .enumv = owner_access},
};
static const store_shape artifacts_s = SHAPE(artifacts_f);
static const store_field cache_f[] = {
	{"type", SF_STR, true, NULL, cache_types},
	{"location", SF_STR},
	{"modes", SF_LIST_STR, .enumv = cache_modes},
	{"cacheNamespace", SF_STR},
};
static const store_shape cache_s = SHAPE(cache_f);
static const store_field env_var_f[] = {
	{"name", SF_STR, true, .min = 1},
	{"value", SF_STR, true},
	{"type", SF_STR, .enumv = env_var_types},
};
static const store_shape env_var_s = SHAPE(env_var_f);
static const store_field registry_f[] = {
	{"credential", SF_STR, true, .min = 1},
	{"credentialProvider", SF_STR, true, NULL, cred_providers},
};
static const store_shape registry_s = SHAPE(registry_f);
static const store_field environment_f[] = {
	{"type", SF_STR, true, NULL, env_types},
	{"image", SF_STR, true, .min = 1},
	{"computeType", SF_STR, true, NULL, compute_types},
	{"computeConfiguration", SF_ANY},
	{"fleet", SF_ANY},
	{"environmentVariables", SF_LIST_STRUCT, .sub = &env_var_s},
	{"privilegedMode", SF_BOOL},
	{"certificate", SF_STR},
	{"registryCredential", SF_STRUCT, .sub = &registry_s},
	{"imagePullCredentialsType", SF_STR, .enumv = pull_cred_types},
	{"dockerServer", SF_ANY},
};
static const store_shape environment_s = SHAPE(environment_f);
static const store_field cwl_f[] = {
	{"status", SF_STR, true, NULL, logs_status},
	{"groupName", SF_STR},
	{"streamName", SF_STR},
};
static const store_shape cwl_s = SHAPE(cwl_f);
static const store_field s3l_f[] = {
	{"status", SF_STR, true, NULL, logs_status},
	{"location", SF_STR},
	{"encryptionDisabled", SF_BOOL},
	{"bucketOwnerAccess", SF_STR, .enumv = owner_access},
};
static const store_shape s3l_s = SHAPE(s3l_f);
static const store_field logs_cfg_f[] = {
	{"cloudWatchLogs", SF_STRUCT, .sub = &cwl_s},
	{"s3Logs", SF_STRUCT, .sub = &s3l_s},
};
static const store_shape logs_cfg_s = SHAPE(logs_cfg_f);
static const store_field tag_f[] = {
	{"key", SF_STR, .min = 1, .max = 127},
	{"value", SF_STR, .max = 255},
};
static const store_shape tag_s = SHAPE(tag_f);

/* CreateProjectInput / UpdateProjectInput.  serviceRole is required by the
 * model; a local runner has no IAM, so it is optional here. */
#define PROJECT_FIELDS(req)                                                                     \
	{"description", SF_STR, .max = 255},                                                    \
	{"source", SF_STRUCT, req, &source_s},                                                  \
	{"secondarySources", SF_LIST_STRUCT, .sub = &source_s, .max = 12},                      \
	{"sourceVersion", SF_STR},                                                              \
	{"secondarySourceVersions", SF_LIST_STRUCT, .sub = &source_version_s, .max = 12},       \
	{"artifacts", SF_STRUCT, req, &artifacts_s},                                            \
	{"secondaryArtifacts", SF_LIST_STRUCT, .sub = &artifacts_s, .max = 12},                 \
	{"cache", SF_STRUCT, .sub = &cache_s},                                                  \
	{"environment", SF_STRUCT, req, &environment_s},                                        \
	{"serviceRole", SF_STR, .min = 1},                                                      \
	{"timeoutInMinutes", SF_INT, .min = 5, .max = 2160},                                    \
	{"queuedTimeoutInMinutes", SF_INT, .min = 5, .max = 480},                               \
	{"encryptionKey", SF_STR, .min = 1},                                                    \
	{"tags", SF_LIST_STRUCT, .sub = &tag_s, .max = 50},                                     \
	{"vpcConfig", SF_ANY},                                                                  \
	{"badgeEnabled", SF_BOOL},                                                              \
	{"logsConfig", SF_STRUCT, .sub = &logs_cfg_s},                                          \
	{"fileSystemLocations", SF_ANY},                                                        \
	{"buildBatchConfig", SF_ANY},                                                           \
	{"concurrentBuildLimit", SF_INT, .min = 1},                                             \
	{"autoRetryLimit", SF_INT, .min = 0, .max = 10}

static const store_field create_f[] = {
	{"name", SF_STR, true, .min = 2, .max = 150, .pattern = store_name_pattern_ok,
	 .pattern_text = "[A-Za-z0-9][A-Za-z0-9\\-_]{1,149}"},
	PROJECT_FIELDS(true),
};
static const store_shape create_s = SHAPE(create_f);
static const store_field update_f[] = {
	{"name", SF_STR, true, .min = 1},
	PROJECT_FIELDS(false),
};
static const store_shape update_s = SHAPE(update_f);

/* ---------------------------------------------------------------- semantics */

static bool is_git_type(const char *t)
{
	static const char *const git[] = {"CODECOMMIT", "GITHUB", "GITLAB", "GITLAB_SELF_MANAGED",
					  "BITBUCKET", "GITHUB_ENTERPRISE", NULL};
	for (size_t i = 0; git[i]; i++)
		if (!strcmp(t, git[i]))
			return true;
	return false;
}

static bool git_location_ok(const char *loc)
{
	if (strstr(loc, "://"))
		return true;
	/* scp-like: [user@]host:path */
	const char *colon = strchr(loc, ':');
	const char *slash = strchr(loc, '/');
	return colon && colon != loc && (!slash || colon < slash);
}

static int check_source(const json_t *src, const char *what, bool secondary, cbl_error **err)
{
	const char *type = cbl_json_str_or_empty(src, "type");
	const char *loc = cbl_json_str_or_empty(src, "location");
	if (!strcmp(type, "S3") || !strcmp(type, "CODEPIPELINE"))
		return cbl_error_set(err, CBL_EINVAL,
				     "Invalid %s: source type %s is not supported by codebuild-local "
				     "(use a git source type with a git URL or file:// path, or NO_SOURCE)",
				     what, type);
	if (secondary && !*cbl_json_str_or_empty(src, "sourceIdentifier"))
		return cbl_error_set(err, CBL_EINVAL, "Invalid %s: sourceIdentifier must be specified",
				     what);
	if (is_git_type(type)) {
		if (!*loc)
			return cbl_error_set(err, CBL_EINVAL,
					     "Invalid %s: location must be specified for source type %s",
					     what, type);
		if (!git_location_ok(loc))
			return cbl_error_set(err, CBL_EINVAL,
					     "Invalid %s: location '%s' is not a git URL or file:// path",
					     what, loc);
		return 0;
	}
	/* NO_SOURCE: an inline buildspec, or a local directory as file:///dir */
	if (*loc) {
		if (strncmp(loc, "file:///", 8))
			return cbl_error_set(err, CBL_EINVAL,
					     "Invalid %s: a NO_SOURCE location must be a local directory "
					     "as file:///absolute/path (got '%s')",
					     what, loc);
		return 0;
	}
	if (!*cbl_json_str_or_empty(src, "buildspec"))
		return cbl_error_set(err, CBL_EINVAL,
				     "Invalid %s: buildspec must be specified for source type NO_SOURCE "
				     "(or a file:// location of a local directory)",
				     what);
	return 0;
}

static int check_semantics(const json_t *p, cbl_error **err)
{
	int rc = check_source(json_object_get(p, "source"), "source", false, err);
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(p, "secondarySources"), i, x) {
		if (rc)
			break;
		rc = check_source(x, "secondary source", true, err);
	}
	const json_t *art = json_object_get(p, "artifacts");
	if (!rc && !strcmp(cbl_json_str_or_empty(art, "type"), "S3") && !*cbl_json_str_or_empty(art, "location"))
		rc = cbl_error_set(err, CBL_EINVAL,
				   "Invalid artifacts: location must be specified for artifacts type S3");
	json_array_foreach(json_object_get(p, "secondaryArtifacts"), i, x) {
		if (rc)
			break;
		if (!*cbl_json_str_or_empty(x, "artifactIdentifier"))
			rc = cbl_error_set(err, CBL_EINVAL,
					   "Invalid secondary artifacts: artifactIdentifier must be specified");
	}
	const json_t *cache = json_object_get(p, "cache");
	if (!rc && !strcmp(cbl_json_str_or_empty(cache, "type"), "LOCAL") && !json_array_size(json_object_get(cache, "modes")))
		rc = cbl_error_set(err, CBL_EINVAL, "Invalid cache: modes must be specified for cache type LOCAL");
	if (!rc && !strcmp(cbl_json_str_or_empty(cache, "type"), "S3") && !*cbl_json_str_or_empty(cache, "location"))
		rc = cbl_error_set(err, CBL_EINVAL, "Invalid cache: location must be specified for cache type S3");
	return rc;
}

/* ---------------------------------------------------------------- record */

static void copy_if(json_t *dst, const json_t *src, const char *k)
{
	json_t *v = json_object_get(src, k);
	if (v && !json_is_null(v))
		json_object_set(dst, k, v);
}

static json_t *obj_or_empty_list(const json_t *src, const char *k)
{
	json_t *v = json_object_get(src, k);
	return json_is_array(v) ? json_incref(v) : json_array();
}

/* The Project as the service returns it, in the model's member order, with
 * the service's defaults, from an input-shaped (validated) object. */
static json_t *project_record(const json_t *in, const char *region, const char *account,
			      int64_t created_ms, int64_t modified_ms)
{
	const char *name = cbl_json_str_or_empty(in, "name");
	json_t *p = json_object();
	json_object_set_new(p, "name", json_string(name));
	char *arn = cbl_xasprintf("arn:aws:codebuild:%s:%s:project/%s", region, account, name);
	json_object_set_new(p, "arn", json_string(arn));
	free(arn);
	copy_if(p, in, "description");

	json_t *src = json_deep_copy(json_object_get(in, "source"));
	if (!json_object_get(src, "insecureSsl"))
		json_object_set_new(src, "insecureSsl", json_false());
	json_object_set_new(p, "source", src);
	json_object_set_new(p, "secondarySources", obj_or_empty_list(in, "secondarySources"));
	copy_if(p, in, "sourceVersion");
	json_object_set_new(p, "secondarySourceVersions", obj_or_empty_list(in, "secondarySourceVersions"));
	json_object_set(p, "artifacts", json_object_get(in, "artifacts"));
	json_object_set_new(p, "secondaryArtifacts", obj_or_empty_list(in, "secondaryArtifacts"));
	json_t *cache = json_object_get(in, "cache");
	if (cache)
		json_object_set(p, "cache", cache);
	else
		json_object_set_new(p, "cache", json_pack("{s:s}", "type", "NO_CACHE"));

	json_t *env = json_object();
	const json_t *ein = json_object_get(in, "environment");
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)ein, k, v)
		json_object_set(env, k, v);
	if (!json_object_get(env, "environmentVariables"))
		json_object_set_new(env, "environmentVariables", json_array());
	if (!json_object_get(env, "privilegedMode"))
		json_object_set_new(env, "privilegedMode", json_false());
	if (!json_object_get(env, "imagePullCredentialsType"))
		json_object_set_new(env, "imagePullCredentialsType", json_string("CODEBUILD"));
	/* model order */
	json_t *env_sorted = json_object();
	for (size_t i = 0; i < ARRAY_SIZE(environment_f); i++)
		copy_if(env_sorted, env, environment_f[i].name);
	json_decref(env);
	json_object_set_new(p, "environment", env_sorted);

	copy_if(p, in, "serviceRole");
	json_t *t = json_object_get(in, "timeoutInMinutes");
	json_object_set_new(p, "timeoutInMinutes", t ? json_incref(t) : json_integer(60));
	t = json_object_get(in, "queuedTimeoutInMinutes");
	json_object_set_new(p, "queuedTimeoutInMinutes", t ? json_incref(t) : json_integer(480));
	if (json_object_get(in, "encryptionKey"))
		copy_if(p, in, "encryptionKey");
	else {
		char *kms = cbl_xasprintf("arn:aws:kms:%s:%s:alias/aws/s3", region, account);
		json_object_set_new(p, "encryptionKey", json_string(kms));
		free(kms);
	}
	json_object_set_new(p, "tags", obj_or_empty_list(in, "tags"));
	json_object_set_new(p, "created", store_json_time(created_ms));
	json_object_set_new(p, "lastModified", store_json_time(modified_ms));
	copy_if(p, in, "webhook"); /* kept by UpdateProject (webhooks.c sets it) */
	copy_if(p, in, "vpcConfig");
	bool badge = json_is_true(json_object_get(in, "badgeEnabled"));
	if (!json_object_get(in, "badgeEnabled"))
		badge = json_is_true(json_object_get(json_object_get(in, "badge"), "badgeEnabled"));
	json_object_set_new(p, "badge", json_pack("{s:b}", "badgeEnabled", badge));
	json_t *logs = json_object_get(in, "logsConfig");
	if (logs && json_object_size(logs))
		json_object_set(p, "logsConfig", logs);
	else
		json_object_set_new(p, "logsConfig",
				    json_pack("{s:{s:s},s:{s:s,s:b}}", "cloudWatchLogs", "status", "ENABLED",
					      "s3Logs", "status", "DISABLED", "encryptionDisabled", 0));
	copy_if(p, in, "fileSystemLocations");
	copy_if(p, in, "buildBatchConfig");
	copy_if(p, in, "concurrentBuildLimit");
	json_object_set_new(p, "projectVisibility", json_string("PRIVATE"));
	copy_if(p, in, "autoRetryLimit");
	return p;
}

/* "arn:aws:codebuild:<r>:<a>:project/<name>" or a plain name -> name. */
static const char *name_of(const char *s)
{
	if (!strncmp(s, "arn:", 4)) {
		const char *p = strstr(s, ":project/");
		if (p)
			return p + 9;
	}
	return s;
}

/* ---------------------------------------------------------------- storage */

int store_db_project_get(store_db *h, const char *name, json_t **out, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = store_prepare(h->db, "SELECT record FROM projects WHERE name = ?1", &st, err);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		json_t *j = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
		if (j)
			*out = j;
		else
			rc = cbl_error_set(err, CBL_EIO, "corrupt project record '%s' in the database", name);
	} else if (s == SQLITE_DONE)
		rc = cbl_error_set(err, CBL_ENOENT, "project '%s' not found", name);
	else
		rc = store_sql_error(h->db, err, "cannot read a project");
	sqlite3_finalize(st);
	return rc;
}

static int project_put(sqlite3 *db, const char *sql, json_t *rec, bool implicit, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	char *text = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	int rc = store_prepare(db, sql, &st, err);
	if (rc)
		goto out;
	sqlite3_bind_text(st, 1, cbl_json_str_or_empty(rec, "name"), -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, store_json_time_ms(json_object_get(rec, "created")));
	sqlite3_bind_int64(st, 3, store_json_time_ms(json_object_get(rec, "lastModified")));
	sqlite3_bind_int(st, 4, implicit);
	sqlite3_bind_text(st, 5, text ? text : "{}", -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if ((s & 0xff) == SQLITE_CONSTRAINT)
		rc = CBL_EEXIST; /* the caller words it */
	else if (s != SQLITE_DONE)
		rc = store_sql_error(db, err, "cannot save a project");
out:
	sqlite3_finalize(st);
	free(text);
	return rc;
}

void store_project_public(json_t *rec)
{
	json_object_del(json_object_get(rec, "webhook"), "secret");
}

int store_db_project_replace(store_db *h, json_t *rec, cbl_error **err)
{
	return project_put(h->db,
			   "UPDATE projects SET created_ms = ?2, modified_ms = ?3, record = ?5"
			   " WHERE name = ?1 AND ?4 = ?4",
			   rec, false, err);
}

static const char sql_project_exists[] = "SELECT 1 FROM projects WHERE name = ?1";

int store_db_project_ensure_implicit_raw(store_db *h, const char *name, const char *location,
					 const char *source_type, const char *region,
					 const char *account, cbl_error **err)
{
	sqlite3 *db = h->db;
	sqlite3_stmt *st = NULL;
	int rc = store_stmt(h, sql_project_exists, &st, err);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	store_stmt_done(st);
	if (s == SQLITE_ROW)
		return 0;
	if (s != SQLITE_DONE)
		return store_sql_error(db, err, "cannot read a project");
	json_t *in = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}, s:{s:s, s:s, s:s}}", "name", name,
			       "description", "Implicit project of codebuild-local run", "source", "type",
			       source_type, "location", location, "artifacts", "type", "NO_ARTIFACTS",
			       "environment", "type", "LINUX_CONTAINER", "image", "host", "computeType",
			       "BUILD_GENERAL1_SMALL");
	int64_t now = cbl_now_us() / 1000;
	json_t *rec = project_record(in, region, account, now, now);
	rc = project_put(db,
			 "INSERT OR IGNORE INTO projects(name, created_ms, modified_ms, implicit, record)"
			 " VALUES(?1, ?2, ?3, ?4, ?5)",
			 rec, true, err);
	json_decref(rec);
	json_decref(in);
	return rc;
}

/* ---------------------------------------------------------------- operations */

int store_op_create_project(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	store_verr v = STORE_VERR_INIT;
	json_t *in = NULL, *rec = NULL;
	store_shape_check(&create_s, "", req, &in, &v);
	int rc = store_verr_finish(&v, err);
	if (!rc)
		rc = check_semantics(in, err);
	if (rc)
		goto out;
	int64_t now = cbl_now_us() / 1000;
	rec = project_record(in, h->caller_region ? h->caller_region : STORE_DEFAULT_REGION,
			     h->caller_account ? h->caller_account : STORE_DEFAULT_ACCOUNT, now, now);
	rc = project_put(h->db,
			 "INSERT INTO projects(name, created_ms, modified_ms, implicit, record)"
			 " VALUES(?1, ?2, ?3, ?4, ?5)",
			 rec, false, err);
	if (rc == CBL_EEXIST) {
		rc = cbl_error_set(err, CBL_EEXIST, "Project already exists: %s", cbl_json_str_or_empty(rec, "arn"));
		goto out;
	}
	if (rc)
		goto out;
	*out = json_object();
	json_object_set(*out, "project", rec);
out:
	json_decref(in);
	json_decref(rec);
	return rc;
}

int store_op_update_project(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	store_verr v = STORE_VERR_INIT;
	json_t *in = NULL, *cur = NULL, *merged = NULL, *rec = NULL;
	store_shape_check(&update_s, "", req, &in, &v);
	int rc = store_verr_finish(&v, err);
	if (rc)
		goto out;
	rc = store_begin(h->db, err);
	if (rc)
		goto out;
	const char *name = name_of(cbl_json_str_or_empty(in, "name"));
	rc = store_db_project_get(h, name, &cur, err);
	if (rc == CBL_ENOENT) {
		cbl_error_clear(err);
		rc = store_project_not_found(name, err);
	}
	if (rc)
		goto out;
	merged = json_deep_copy(cur);
	const char *k;
	json_t *val;
	json_object_foreach(in, k, val) {
		if (!strcmp(k, "name"))
			continue;
		json_object_set(merged, k, val);
	}
	rc = check_semantics(merged, err);
	if (rc)
		goto out;
	char *region = NULL, *account = NULL;
	{
		/* keep the arn's region and account */
		const char *arn = cbl_json_str_or_empty(cur, "arn");
		const char *q = strchr(arn + (strncmp(arn, "arn:", 4) ? 0 : 4), ':');
		q = q ? strchr(q + 1, ':') : NULL;
		const char *r = q ? strchr(q + 1, ':') : NULL;
		const char *a = r ? strchr(r + 1, ':') : NULL;
		if (q && r && a) {
			region = cbl_xstrndup(q + 1, (size_t)(r - q - 1));
			account = cbl_xstrndup(r + 1, (size_t)(a - r - 1));
		} else {
			region = cbl_xstrdup(STORE_DEFAULT_REGION);
			account = cbl_xstrdup(STORE_DEFAULT_ACCOUNT);
		}
	}
	int64_t created = store_json_time_ms(json_object_get(cur, "created"));
	rec = project_record(merged, region, account, created, cbl_now_us() / 1000);
	free(region);
	free(account);
	rc = project_put(h->db,
			 "UPDATE projects SET created_ms = ?2, modified_ms = ?3, implicit = ?4, record = ?5"
			 " WHERE name = ?1",
			 rec, false, err);
	if (!rc)
		rc = store_commit(h->db, err);
	if (rc)
		goto out;
	*out = json_object();
	json_object_set_new(*out, "project", json_deep_copy(rec));
	store_project_public(json_object_get(*out, "project"));
out:
	store_rollback(h->db);
	json_decref(in);
	json_decref(cur);
	json_decref(merged);
	json_decref(rec);
	return rc;
}

static int check_name_member(json_t *req, const char *member, cbl_error **err)
{
	store_verr v = STORE_VERR_INIT;
	json_t *n = json_is_object(req) ? json_object_get(req, member) : NULL;
	if (!json_is_object(req))
		store_verr_add(&v, "input", req, "Member must be a structure");
	else if (!json_is_string(n)) /* present and non-empty: store_api_validate's */
		store_verr_add(&v, member, n, "Member must be a string");
	return store_verr_finish(&v, err);
}

int store_op_delete_project(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = check_name_member(req, "name", err);
	if (rc)
		return rc;
	const char *name = name_of(cbl_json_str(req, "name"));
	rc = store_prepare(h->db, "DELETE FROM projects WHERE name = ?1", &st, err);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = store_sql_error(h->db, err, "cannot delete a project");
	else if (sqlite3_changes(h->db) == 0)
		rc = store_project_not_found(name, err);
	sqlite3_finalize(st);
	if (!rc)
		*out = json_object();
	return rc;
}

int store_op_batch_get_projects(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	/* 1..100 non-empty names: store_api_validate's (the model's); the shape
	 * check, the JSON types */
	static const store_field f[] = {{"names", SF_LIST_STR, true}};
	static const store_shape s = SHAPE(f);
	store_verr v = STORE_VERR_INIT;
	json_t *in = NULL;
	store_shape_check(&s, "", req, &in, &v);
	size_t i;
	json_t *x;
	int rc = store_verr_finish(&v, err);
	if (rc) {
		json_decref(in);
		return rc;
	}
	json_t *found = json_array(), *missing = json_array();
	json_array_foreach(json_object_get(in, "names"), i, x) {
		json_t *rec = NULL;
		cbl_error *e = NULL;
		rc = store_db_project_get(h, name_of(json_string_value(x)), &rec, &e);
		if (rc == CBL_ENOENT) {
			json_array_append(missing, x);
			cbl_error_free(e);
			rc = 0;
			continue;
		}
		if (rc) {
			*err = e;
			break;
		}
		store_project_public(rec);
		json_array_append_new(found, rec);
	}
	if (!rc) {
		*out = json_object();
		json_object_set(*out, "projects", found);
		json_object_set(*out, "projectsNotFound", missing);
	}
	json_decref(found);
	json_decref(missing);
	json_decref(in);
	return rc;
}

int store_op_list_projects(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	static const store_field f[] = {
		{"sortBy", SF_STR, .enumv = sort_by},
		{"sortOrder", SF_STR, .enumv = sort_orders},
		{"nextToken", SF_STR, .min = 1},
	};
	static const store_shape s = SHAPE(f);
	store_verr v = STORE_VERR_INIT;
	json_t *in = NULL;
	sqlite3_stmt *st = NULL;
	store_shape_check(&s, "", req, &in, &v);
	int rc = store_verr_finish(&v, err);
	if (rc)
		goto out;
	/* local choice (the service documents no default): by name, ascending */
	const char *by = json_object_get(in, "sortBy") ? cbl_json_str_or_empty(in, "sortBy") : "NAME";
	bool desc = !strcmp(cbl_json_str_or_empty(in, "sortOrder"), "DESCENDING");
	const char *col = !strcmp(by, "CREATED_TIME") ? "created_ms"
			  : !strcmp(by, "LAST_MODIFIED_TIME") ? "modified_ms"
							      : "0";
	/* token: "<key>.<name>" of the last name returned (keyset paging) */
	bool have = false;
	long long key = 0;
	const char *after = "";
	const char *tok = cbl_json_str(in, "nextToken");
	if (tok) {
		char *end = NULL;
		key = strtoll(tok, &end, 10);
		if (end == tok || *end != '.' || !store_project_name_valid(end + 1)) {
			rc = cbl_error_set(err, CBL_EINVAL, "Invalid next token");
			goto out;
		}
		have = true;
		after = end + 1;
	}
	char sql[512];
	const char *dir = desc ? "DESC" : "ASC";
	if (!strcmp(col, "0"))
		snprintf(sql, sizeof(sql),
			 "SELECT 0, name FROM projects WHERE NOT ?1 OR ?2 = ?2 AND name %s ?3"
			 " ORDER BY name %s LIMIT %d",
			 desc ? "<" : ">", dir, STORE_PAGE_SIZE + 1);
	else
		snprintf(sql, sizeof(sql),
			 "SELECT %s, name FROM projects WHERE NOT ?1 OR (%s, name) %s (?2, ?3)"
			 " ORDER BY %s %s, name %s LIMIT %d",
			 col, col, desc ? "<" : ">", col, dir, dir, STORE_PAGE_SIZE + 1);
	rc = store_prepare(h->db, sql, &st, err);
	if (rc)
		goto out;
	sqlite3_bind_int(st, 1, have);
	sqlite3_bind_int64(st, 2, key);
	sqlite3_bind_text(st, 3, after, -1, SQLITE_STATIC);
	json_t *names = json_array();
	*out = json_object();
	int r;
	long long last_key = 0;
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (json_array_size(names) == STORE_PAGE_SIZE) {
			const char *last = json_string_value(json_array_get(names, STORE_PAGE_SIZE - 1));
			char *t = cbl_xasprintf("%lld.%s", last_key, last);
			json_object_set_new(*out, "nextToken", json_string(t));
			free(t);
			r = SQLITE_DONE;
			break;
		}
		last_key = sqlite3_column_int64(st, 0);
		json_array_append_new(names, json_string((const char *)sqlite3_column_text(st, 1)));
	}
	json_object_set_new(*out, "projects", names);
	if (r != SQLITE_DONE) {
		json_decref(*out);
		*out = NULL;
		rc = store_sql_error(h->db, err, "cannot list projects");
	}
out:
	sqlite3_finalize(st);
	json_decref(in);
	return rc;
}
