/* runner/batch_record.c - the BuildBatch record (the API's shape) and the
 * batch's phases. */
#include "runner/batch_internal.h"
#include "runner/runner_internal.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static json_t *jtime(int64_t us) { return json_real((double)(us / 1000) / 1e3); }

void runner_batch_emit(runner_batch *b, runner_batch_event_kind kind, size_t index, const char *line)
{
	if (!b->o.on_event)
		return;
	runner_batch_event ev = {kind, b->phase, index, line};
	b->o.on_event(&ev, b->o.payload);
}

void runner_batch_enter(runner_batch *b, const char *next, const char *status, const char *code, const char *msg)
{
	int64_t now = cbl_now_us();
	size_t n = json_array_size(b->phases);
	json_t *cur = n ? json_array_get(b->phases, n - 1) : NULL;
	if (cur && status) {
		json_object_set_new(cur, "phaseStatus", json_string(status));
		json_object_set_new(cur, "endTime", jtime(now));
		json_object_set_new(cur, "durationInSeconds", json_integer((now - b->phase_start_us) / 1000000));
		json_t *ctx = json_array();
		if (code || msg) {
			json_t *c = json_object();
			json_object_set_new(c, "statusCode", json_string(code ? code : ""));
			json_object_set_new(c, "message", json_string(msg ? msg : ""));
			json_array_append_new(ctx, c);
		}
		json_object_set_new(cur, "contexts", ctx);
	}
	json_t *ph = json_object();
	json_object_set_new(ph, "phaseType", json_string(next));
	json_object_set_new(ph, "startTime", jtime(now));
	json_array_append_new(b->phases, ph);
	free(b->phase);
	b->phase = cbl_xstrdup(next);
	b->phase_start_us = now;
	runner_batch_save(b);
	runner_batch_emit(b, RUNNER_BATCH_EV_PHASE, 0, NULL);
}

static json_t *summary(const runner_bb *x)
{
	json_t *s = json_object();
	cbl_json_set_str(s, "arn", x->build_arn);
	if (x->requested_us)
		json_object_set_new(s, "requestedOn", jtime(x->requested_us));
	json_object_set_new(s, "buildStatus", json_string(x->status ? x->status : "IN_PROGRESS"));
	json_t *art = json_object();
	json_object_set_new(art, "type", json_string("NO_ARTIFACTS"));
	if (x->artifacts_dir) {
		json_object_set_new(art, "type", json_string("LOCAL"));
		json_object_set_new(art, "location", json_string(x->artifacts_dir));
	}
	json_object_set_new(s, "primaryArtifact", art);
	json_object_set_new(s, "secondaryArtifacts", json_array());
	return s;
}

static json_t *build_groups(const runner_batch *b)
{
	json_t *groups = json_array();
	for (size_t i = 0; i < b->n; i++) {
		const runner_bb *x = &b->b[i];
		json_t *g = json_object();
		json_object_set_new(g, "identifier", json_string(x->spec->identifier));
		json_t *deps = json_array();
		for (size_t k = 0; k < x->spec->ndepend_on; k++)
			json_array_append_new(deps, json_string(x->spec->depend_on[k]));
		json_object_set_new(g, "dependsOn", deps);
		json_object_set_new(g, "ignoreFailure", json_boolean(x->spec->ignore_failure));
		if (x->build_arn)
			json_object_set_new(g, "currentBuildSummary", summary(x));
		json_object_set_new(g, "priorBuildSummaryList", x->prior ? json_incref(x->prior) : json_array());
		json_array_append_new(groups, g);
	}
	return groups;
}

static json_t *batch_config(const runner_batch *b)
{
	json_t *c = json_object();
	json_object_set_new(c, "combineArtifacts", json_boolean(b->o.combine_artifacts));
	json_t *r = json_object();
	json_object_set_new(r, "maximumBuildsAllowed", json_integer(b->o.max_builds > 0 ? b->o.max_builds : 100));
	if (b->o.compute_types_allowed) {
		json_t *ct = json_array();
		for (const char *const *t = b->o.compute_types_allowed; *t; t++)
			json_array_append_new(ct, json_string(*t));
		json_object_set_new(r, "computeTypesAllowed", ct);
	}
	json_object_set_new(c, "restrictions", r);
	if (b->o.timeout_minutes > 0)
		json_object_set_new(c, "timeoutInMins", json_integer(b->o.timeout_minutes));
	json_object_set_new(c, "batchReportMode",
			    json_string(b->o.report_mode ? b->o.report_mode : "REPORT_INDIVIDUAL_BUILDS"));
	return c;
}

static json_t *make_record(const runner_batch *b)
{
	const runner_opts *o = &b->build;
	json_t *r = json_object();
	json_object_set_new(r, "id", json_string(b->id));
	json_object_set_new(r, "arn", json_string(b->arn));
	json_object_set_new(r, "startTime", jtime(b->start_us));
	if (b->end_us)
		json_object_set_new(r, "endTime", jtime(b->end_us));
	json_object_set_new(r, "currentPhase", json_string(b->phase ? b->phase : "SUBMITTED"));
	json_object_set_new(r, "buildBatchStatus", json_string(runner_status_name(b->status)));
	cbl_json_set_str(r, "sourceVersion", o->source_version);
	json_object_set_new(r, "projectName", json_string(b->project));
	json_object_set_new(r, "phases", json_deep_copy(b->phases));
	json_t *src = runner_source_json(o->git_url, o->source_dir, o->clone_depth, o->fetch_submodules);
	json_object_set_new(src, "buildspec", json_string(o->buildspec ? o->buildspec : ""));
	json_object_set_new(r, "source", src);
	json_object_set_new(r, "secondarySources", json_array());
	json_object_set_new(r, "secondarySourceVersions", json_array());
	json_t *art = json_object();
	json_object_set_new(art, "location", json_string(b->art_dir ? b->art_dir : ""));
	json_object_set_new(r, "artifacts", art);
	json_object_set_new(r, "secondaryArtifacts", json_array());
	json_t *cache = json_object();
	json_object_set_new(cache, "type", json_string("NO_CACHE"));
	json_object_set_new(r, "cache", cache);
	json_t *env = json_object();
	json_object_set_new(env, "type", json_string("LINUX_CONTAINER"));
	json_object_set_new(env, "image", json_string(o->image ? o->image : "host"));
	json_object_set_new(env, "computeType", json_string(o->compute_type ? o->compute_type : "BUILD_GENERAL1_SMALL"));
	json_object_set_new(env, "environmentVariables", json_array());
	json_object_set_new(env, "privilegedMode", json_boolean(o->privileged));
	json_object_set_new(env, "imagePullCredentialsType", json_string("CODEBUILD"));
	json_object_set_new(r, "environment", env);
	json_object_set_new(r, "buildTimeoutInMinutes",
			    json_integer(o->timeout_ms > 0 ? (o->timeout_ms + 59999) / 60000 : 60));
	json_object_set_new(r, "queuedTimeoutInMinutes", json_integer(480));
	json_object_set_new(r, "complete", json_boolean(b->end_us != 0));
	json_object_set_new(r, "initiator", json_string(b->initiator));
	char *kms = cbl_xasprintf("arn:aws:kms:%s:%s:alias/aws/s3", b->region, b->account);
	json_object_set_new(r, "encryptionKey", json_string(kms));
	free(kms);
	json_object_set_new(r, "buildBatchNumber", json_integer(b->number));
	json_object_set_new(r, "fileSystemLocations", json_array());
	json_object_set_new(r, "buildBatchConfig", batch_config(b));
	json_object_set_new(r, "buildGroups", build_groups(b));
	json_object_set_new(r, "debugSessionEnabled", json_false());
	json_object_set_new(r, "reportArns", json_array());
	return r;
}

void runner_batch_save(runner_batch *b)
{
	cbl_error *e = NULL;
	json_decref(b->record);
	b->record = make_record(b);
	store_batch_save(b->home, b->record, &e);
	cbl_error_free(e);
}
