/* runner/launchrec.c - the Build record's fields that a launched build takes
 * from its project and StartBuild request, as the service writes them
 * (runner_launch_record, launch.h).
 *
 * What the service shows is the project with the request's overrides
 * applied, not what the local run made of it: source.buildspec is the
 * buildspec text or path as the project (or buildspecOverride) gives it,
 * source.location / type the project's; environment is the project's with
 * imageOverride & co., its environmentVariables the project's with
 * environmentVariablesOverride replacing a variable of the same name and
 * adding the others (types and values as given: a PARAMETER_STORE variable
 * shows the parameter's name); logs follow logsConfig (groupName, and a
 * streamName is a prefix: the stream is "<prefix>/<uuid>").  The shapes
 * follow the model (ProjectSource, ProjectEnvironment, ProjectCache,
 * LogsLocation) and aws-cli's documented start-build and batch-get-builds
 * examples.
 */
#include "runner/launch.h"
#include "util/alloc.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

/* The request's override of key, when it gives one (not null). */
static const json_t *ovr(const json_t *req, const char *key)
{
	const json_t *v = json_object_get(req, key);
	return v && !json_is_null(v) ? v : NULL;
}

static void set_ovr(json_t *o, const char *key, const json_t *req, const char *okey)
{
	const json_t *v = ovr(req, okey);
	if (v)
		json_object_set_new(o, key, json_deep_copy(v));
}

static json_t *record_source(const json_t *proj, const json_t *req)
{
	const json_t *ps = json_object_get(proj, "source");
	json_t *src = json_is_object(ps) ? json_deep_copy(ps) : json_object();
	set_ovr(src, "type", req, "sourceTypeOverride");
	set_ovr(src, "location", req, "sourceLocationOverride");
	set_ovr(src, "gitCloneDepth", req, "gitCloneDepthOverride");
	set_ovr(src, "gitSubmodulesConfig", req, "gitSubmodulesConfigOverride");
	set_ovr(src, "buildspec", req, "buildspecOverride");
	set_ovr(src, "auth", req, "sourceAuthOverride");
	set_ovr(src, "reportBuildStatus", req, "reportBuildStatusOverride");
	set_ovr(src, "buildStatusConfig", req, "buildStatusConfigOverride");
	set_ovr(src, "insecureSsl", req, "insecureSslOverride");
	if (!json_object_get(src, "type"))
		json_object_set_new(src, "type", json_string("NO_SOURCE"));
	if (!json_object_get(src, "insecureSsl"))
		json_object_set_new(src, "insecureSsl", json_false());
	return src;
}

/* The project's variables, an override replacing the one of its name. */
static json_t *record_env_vars(const json_t *penv, const json_t *req)
{
	json_t *out = json_array();
	const json_t *over = ovr(req, "environmentVariablesOverride");
	size_t i, j;
	const json_t *v, *w;
	json_array_foreach(json_object_get(penv, "environmentVariables"), i, v) {
		const char *name = cbl_json_str_or_empty(v, "name");
		bool replaced = false;
		json_array_foreach(over, j, w) replaced |= !strcmp(cbl_json_str_or_empty(w, "name"), name);
		if (!replaced)
			json_array_append_new(out, json_deep_copy(v));
	}
	json_array_foreach(over, j, w) {
		json_t *e = json_deep_copy(w);
		if (!json_object_get(e, "type"))
			json_object_set_new(e, "type", json_string("PLAINTEXT"));
		json_array_append_new(out, e);
	}
	return out;
}

static json_t *record_environment(const json_t *proj, const json_t *req)
{
	const json_t *pe = json_object_get(proj, "environment");
	json_t *env = json_is_object(pe) ? json_deep_copy(pe) : json_object();
	set_ovr(env, "type", req, "environmentTypeOverride");
	set_ovr(env, "image", req, "imageOverride");
	set_ovr(env, "computeType", req, "computeTypeOverride");
	set_ovr(env, "certificate", req, "certificateOverride");
	set_ovr(env, "privilegedMode", req, "privilegedModeOverride");
	set_ovr(env, "imagePullCredentialsType", req, "imagePullCredentialsTypeOverride");
	set_ovr(env, "registryCredential", req, "registryCredentialOverride");
	if (ovr(req, "fleetOverride"))
		set_ovr(env, "fleet", req, "fleetOverride");
	json_object_set_new(env, "environmentVariables", record_env_vars(pe, req));
	if (!json_object_get(env, "privilegedMode"))
		json_object_set_new(env, "privilegedMode", json_false());
	if (!json_object_get(env, "imagePullCredentialsType"))
		json_object_set_new(env, "imagePullCredentialsType", json_string("CODEBUILD"));
	return env;
}

/* logsConfig (with logsConfigOverride): the group and stream names. */
static json_t *record_logs(const json_t *proj, const json_t *req, const runner_launch_info *info)
{
	const json_t *cfg = ovr(req, "logsConfigOverride");
	if (!cfg)
		cfg = json_object_get(proj, "logsConfig");
	const json_t *cwl = json_object_get(cfg, "cloudWatchLogs"), *s3l = json_object_get(cfg, "s3Logs");
	const char *name = cbl_json_str_or_empty(proj, "name");
	const char *gname = cbl_json_str_nonempty(cwl, "groupName");
	const char *sprefix = cbl_json_str_nonempty(cwl, "streamName");
	char *group = gname ? cbl_xstrdup(gname) : cbl_xasprintf("/aws/codebuild/%s", name);
	char *stream = sprefix ? cbl_xasprintf("%s/%s", sprefix, info->uuid ? info->uuid : "")
			       : cbl_xstrdup(info->uuid ? info->uuid : "");
	json_t *logs = json_object();
	json_object_set_new(logs, "groupName", json_string(group));
	json_object_set_new(logs, "streamName", json_string(stream));
	json_object_set_new(logs, "cloudWatchLogsArn",
			    json_sprintf("arn:aws:logs:%s:%s:log-group:%s:log-stream:%s",
					 info->region ? info->region : "us-east-1",
					 info->account ? info->account : "000000000000", group, stream));
	json_t *c = json_is_object(cwl) ? json_deep_copy(cwl) : json_object();
	if (!json_object_get(c, "status"))
		json_object_set_new(c, "status", json_string("ENABLED"));
	json_object_set_new(logs, "cloudWatchLogs", c);
	json_t *s = json_is_object(s3l) ? json_deep_copy(s3l) : json_object();
	if (!json_object_get(s, "status"))
		json_object_set_new(s, "status", json_string("DISABLED"));
	if (!json_object_get(s, "encryptionDisabled"))
		json_object_set_new(s, "encryptionDisabled", json_false());
	json_object_set_new(logs, "s3Logs", s);
	free(group);
	free(stream);
	return logs;
}

static json_t *int_or(const json_t *proj, const char *key, const json_t *req, const char *okey, int dflt)
{
	const json_t *v = ovr(req, okey);
	if (!v)
		v = json_object_get(proj, key);
	return json_is_integer(v) ? json_incref((json_t *)v) : json_integer(dflt);
}

json_t *runner_launch_record(const json_t *proj, const json_t *req, const runner_launch_info *info)
{
	json_t *r = json_object();
	const char *region = info->region ? info->region : "us-east-1";
	const char *account = info->account ? info->account : "000000000000";
	json_object_set_new(r, "source", record_source(proj, req));
	const json_t *sv = ovr(req, "sourceVersion");
	if (!sv)
		sv = json_object_get(proj, "sourceVersion");
	if (json_is_string(sv) && *json_string_value(sv))
		json_object_set_new(r, "sourceVersion", json_deep_copy(sv));
	const json_t *role = ovr(req, "serviceRoleOverride");
	if (!role)
		role = json_object_get(proj, "serviceRole");
	if (json_is_string(role))
		json_object_set_new(r, "serviceRole", json_deep_copy(role));
	json_object_set_new(r, "environment", record_environment(proj, req));
	json_object_set_new(r, "logs", record_logs(proj, req, info));
	json_object_set_new(r, "timeoutInMinutes", int_or(proj, "timeoutInMinutes", req, "timeoutInMinutesOverride", 60));
	json_object_set_new(r, "queuedTimeoutInMinutes",
			    int_or(proj, "queuedTimeoutInMinutes", req, "queuedTimeoutInMinutesOverride", 480));
	const json_t *cache = ovr(req, "cacheOverride");
	if (!cache)
		cache = json_object_get(proj, "cache");
	json_object_set_new(r, "cache", json_is_object(cache) ? json_deep_copy(cache)
							      : json_pack("{s:s}", "type", "NO_CACHE"));
	const json_t *kms = ovr(req, "encryptionKeyOverride");
	if (!kms)
		kms = json_object_get(proj, "encryptionKey");
	json_object_set_new(r, "encryptionKey",
			    json_is_string(kms) ? json_deep_copy(kms)
						: json_sprintf("arn:aws:kms:%s:%s:alias/aws/s3", region, account));
	if (info->initiator)
		json_object_set_new(r, "initiator", json_string(info->initiator));
	return r;
}
