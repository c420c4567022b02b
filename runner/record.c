/* runner/record.c - the phases' records (start, end, context) and the Build record in the API's shape. */
#include "runner/runner_internal.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/json.h"
#include <stdio.h>
#include "util/time.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/array.h"

#include "util/banned.h"


static const char *const status_names[] = {"SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT", "IN_PROGRESS",
					   "STOPPED"};
static const char *const phase_names[] = {"SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE",
					  "INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD",
					  "UPLOAD_ARTIFACTS", "FINALIZING", "COMPLETED"};

const char *runner_status_name(runner_status s)
{
	return (unsigned)s < ARRAY_SIZE(status_names) ? status_names[s] : "UNKNOWN";
}

const char *runner_phase_name(runner_phase_type p)
{
	return (unsigned)p < RUNNER_PHASE_COUNT ? phase_names[p] : "UNKNOWN";
}

/* ---------------------------------------------------------------- record */


static json_t *jtime(int64_t us) { return json_real((double)(us / 1000) / 1e3); }


static json_t *record_phases(const runner_build *b)
{
	json_t *phases = json_array();
	for (int p = 0; p < RUNNER_PHASE_COUNT; p++) {
		const phase_rec *pr = &b->phases[p];
		if (!pr->started)
			continue;
		json_t *ph = json_object();
		json_object_set_new(ph, "phaseType", json_string(phase_names[p]));
		if (p != RUNNER_PHASE_COMPLETED && pr->ended)
			json_object_set_new(ph, "phaseStatus", json_string(runner_status_name(pr->status)));
		json_object_set_new(ph, "startTime", jtime(pr->start_us));
		if (p != RUNNER_PHASE_COMPLETED && pr->ended) {
			json_object_set_new(ph, "endTime", jtime(pr->end_us));
			json_object_set_new(ph, "durationInSeconds",
					    json_integer((pr->end_us - pr->start_us) / 1000000));
			/* SUBMITTED and QUEUED carry no contexts on the service */
			if (p >= RUNNER_PHASE_PROVISIONING) {
				json_t *ctxs = json_array();
				json_t *c = json_object();
				json_object_set_new(c, "statusCode", json_string(pr->ctx.code ? pr->ctx.code : ""));
				json_object_set_new(c, "message", json_string(pr->ctx.message ? pr->ctx.message : ""));
				json_array_append_new(ctxs, c);
				json_object_set_new(ph, "contexts", ctxs);
			}
		}
		json_array_append_new(phases, ph);
	}
	return phases;
}

/* artifacts, secondaryArtifacts and cache */
static void record_outputs(const runner_build *b, json_t *r)
{
	if (b->up.artifacts_rec) {
		json_object_set(r, "artifacts", b->up.artifacts_rec);
	} else {
		json_t *art = json_object();
		json_object_set_new(art, "location", json_string(""));
		json_object_set_new(r, "artifacts", art);
	}
	json_object_set_new(r, "secondaryArtifacts",
			    b->up.secondary_recs ? json_deep_copy(b->up.secondary_recs) : json_array());

	json_t *cache = json_object();
	if (b->cache.sess) {
		/* the local store, keyed like the service's S3 caches */
		json_object_set_new(cache, "type", json_string("LOCAL"));
		json_t *modes = json_array();
		json_array_append_new(modes, json_string("LOCAL_CUSTOM_CACHE"));
		json_object_set_new(cache, "modes", modes);
	} else {
		json_object_set_new(cache, "type", json_string("NO_CACHE"));
	}
	json_object_set_new(r, "cache", cache);

}

static json_t *record_environment(const runner_build *b)
{
	json_t *env = json_object();
	json_object_set_new(env, "type", json_string("LINUX_CONTAINER"));
	json_object_set_new(env, "image", json_string(b->cfg.image));
	json_object_set_new(env, "computeType", json_string(b->cfg.compute_type));
	json_t *evs = json_array();
	for (size_t i = 0; i < b->vars.project_env.n; i++) {
		const char *eq = strchr(b->vars.project_env.v[i], '=');
		json_t *e = json_object();
		json_object_set_new(e, "name", json_stringn(b->vars.project_env.v[i],
							     (size_t)(eq - b->vars.project_env.v[i])));
		json_object_set_new(e, "value", json_string(eq + 1));
		json_object_set_new(e, "type", json_string("PLAINTEXT"));
		json_array_append_new(evs, e);
	}
	json_object_set_new(env, "environmentVariables", evs);
	json_object_set_new(env, "privilegedMode", json_boolean(b->cfg.privileged));
	json_object_set_new(env, "imagePullCredentialsType", json_string("CODEBUILD"));

	return env;
}

static json_t *record_logs(const runner_build *b)
{
	json_t *logs = json_object();
	char *group = b->cfg.log_group ? cbl_xstrdup(b->cfg.log_group)
				       : cbl_xasprintf("/aws/codebuild/%s", b->ident.project);
	const char *stream = b->cfg.log_stream ? b->cfg.log_stream : b->ident.uuid;
	char *deep = cbl_xasprintf("file://%s", b->ident.log_path);
	char *lgarn = cbl_xasprintf("arn:aws:logs:%s:%s:log-group:%s:log-stream:%s", b->ident.region,
				    b->ident.account, group, stream);
	json_object_set_new(logs, "groupName", json_string(group));
	json_object_set_new(logs, "streamName", json_string(stream));
	json_object_set_new(logs, "deepLink", json_string(deep));
	json_object_set_new(logs, "cloudWatchLogsArn", json_string(lgarn));
	json_t *cwl = json_object();
	json_object_set_new(cwl, "status", json_string("ENABLED"));
	json_object_set_new(cwl, "groupName", json_string(group));
	json_object_set_new(cwl, "streamName", json_string(stream));
	json_object_set_new(logs, "cloudWatchLogs", cwl);
	json_t *s3l = json_object();
	json_object_set_new(s3l, "status", json_string("DISABLED"));
	json_object_set_new(s3l, "encryptionDisabled", json_false());
	json_object_set_new(logs, "s3Logs", s3l);
	free(group);
	free(deep);
	free(lgarn);

	return logs;
}

static json_t *record_exported(const runner_build *b)
{
	json_t *exp = json_array();
	for (size_t i = 0; i < b->vars.exported_names.n; i++) {
		json_t *e = json_object();
		json_object_set_new(e, "name", json_string(b->vars.exported_names.v[i]));
		char *m = runner_mask_apply(&b->log.mask, b->vars.exported_values.v[i],
					    strlen(b->vars.exported_values.v[i]));
		json_object_set_new(e, "value", json_string(m));
		free(m);
		json_array_append_new(exp, e);
	}
	return exp;
}

/* A launched build: the fields the service takes from the project and the
 * request replace what the run made of them (local paths, a guessed source
 * type); the log's deepLink stays the local file. */
static void record_overlay(const runner_build *b, json_t *r)
{
	static const char *const keys[] = {"source", "sourceVersion", "serviceRole", "environment",
					   "timeoutInMinutes", "queuedTimeoutInMinutes", "cache",
					   "encryptionKey", "initiator"};
	const json_t *base = b->cfg.record_base;
	if (!json_is_object(base))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		json_t *v = json_object_get(base, keys[i]);
		if (v)
			json_object_set_new(r, keys[i], json_deep_copy(v));
	}
	if (b->cfg.batch_arn || b->cfg.batch_member)
		return; /* the batch's launch names its logs, not this build's */
	json_t *logs = json_object_get(r, "logs");
	const char *lk;
	json_t *lv;
	json_object_foreach(json_object_get(base, "logs"), lk, lv) json_object_set_new(logs, lk, json_deep_copy(lv));
}

/* "codebuildLocal": resource use (with the phases'), cost, advice. */
static json_t *record_local(const runner_build *b)
{
	json_t *local = runner_usage_json(b);
	json_t *usage = json_object_get(local, "resourceUsage");
	if (usage) {
		json_t *ph = json_object();
		for (int p = 0; p < RUNNER_PHASE_COUNT; p++) {
			json_t *u = runner_usage_phase_json(b, p);
			if (u)
				json_object_set_new(ph, phase_names[p], u);
		}
		json_object_set_new(usage, "phases", ph);
	}
	return local;
}

static json_t *build_record(runner_build *b)
{
	json_t *r = json_object();
	json_object_set_new(r, "id", json_string(b->ident.id));
	json_object_set_new(r, "arn", json_string(b->ident.arn));
	json_object_set_new(r, "buildNumber", json_integer(b->ident.number));
	json_object_set_new(r, "startTime", jtime(b->start_us));
	if (b->end_us)
		json_object_set_new(r, "endTime", jtime(b->end_us));
	json_object_set_new(r, "currentPhase", json_string(runner_phase_name(b->current)));
	json_object_set_new(r, "buildStatus", json_string(runner_status_name(b->status)));
	if (b->cfg.source_version)
		json_object_set_new(r, "sourceVersion", json_string(b->cfg.source_version));
	if (b->src.resolved_version)
		json_object_set_new(r, "resolvedSourceVersion", json_string(b->src.resolved_version));
	json_object_set_new(r, "projectName", json_string(b->ident.project));

	json_t *phases = record_phases(b);
	json_object_set_new(r, "phases", phases);

	json_t *src = runner_source_json(b->src.git_url, b->src.source_dir, b->src.clone_depth, b->src.fetch_submodules);
	json_object_set_new(src, "buildspec", json_string(b->src.buildspec_display ? b->src.buildspec_display : ""));
	json_object_set_new(src, "insecureSsl", json_false());
	json_object_set_new(r, "source", src);
	runner_sources_record(b, r);

	record_outputs(b, r);

	json_object_set_new(r, "environment", record_environment(b));
	json_object_set_new(r, "logs", record_logs(b));
	if (b->debug) {
		/* the service names a Session Manager target; locally the
		 * build's id is what attach and exec take */
		json_t *ds = json_object();
		json_object_set_new(ds, "sessionEnabled", json_true());
		json_object_set_new(ds, "sessionTarget", json_string(b->ident.id));
		json_object_set_new(r, "debugSession", ds);
	}

	json_object_set_new(r, "timeoutInMinutes", json_integer((b->cfg.timeout_ms + 59999) / 60000));
	json_object_set_new(r, "queuedTimeoutInMinutes", json_integer(480));
	json_object_set_new(r, "buildComplete", json_boolean(b->end_us != 0));
	json_object_set_new(r, "initiator", json_string(b->ident.initiator));
	char *kms = cbl_xasprintf("arn:aws:kms:%s:%s:alias/aws/s3", b->ident.region, b->ident.account);
	json_object_set_new(r, "encryptionKey", json_string(kms));
	free(kms);
	json_object_set_new(r, "exportedEnvironmentVariables", record_exported(b));
	json_t *rarns = json_array();
	for (size_t i = 0; i < b->up.report_arns.n; i++)
		json_array_append_new(rarns, json_string(b->up.report_arns.v[i]));
	json_object_set_new(r, "reportArns", rarns);
	json_object_set_new(r, "fileSystemLocations", json_array());
	record_overlay(b, r);
	if (b->cfg.batch_arn)
		json_object_set_new(r, "buildBatchArn", json_string(b->cfg.batch_arn));
	/* ours, not the service's: resource use, cost, right-sizing */
	json_object_set_new(r, "codebuildLocal", record_local(b));
	return r;
}

void runner_record_save(runner_build *b, bool durable, cbl_error **err)
{
	json_decref(b->record);
	b->record = build_record(b);
	store_build_save(b->ident.dir, b->record, durable, err);
}

/* ---------------------------------------------------------------- phases */

void runner_phase_start(runner_build *b, runner_phase_type p)
{
	phase_rec *pr = &b->phases[p];
	pr->started = true;
	pr->start_us = cbl_now_us();
	b->current = p;
	runner_event ev = {.kind = RUNNER_EV_PHASE_START, .phase = p, .time_us = pr->start_us};
	runner_emit(b, &ev);
	if (p >= RUNNER_PHASE_DOWNLOAD_SOURCE && p <= RUNNER_PHASE_UPLOAD_ARTIFACTS) {
		/* readers (BatchGetBuilds) see the phase that runs now */
		cbl_error *e = NULL;
		runner_record_save(b, false, &e);
		cbl_error_free(e);
	}
}




/* Ends phase p; agent lines only for the phases the service logs them for. */
void runner_phase_end(runner_build *b, runner_phase_type p, runner_status st, bool log)
{
	phase_rec *pr = &b->phases[p];
	runner_usage_sample(b);
	pr->ended = true;
	pr->status = st;
	pr->end_us = cbl_now_us();
	if (log) {
		runner_agent(b, "Phase complete: %s State: %s", phase_names[p], runner_status_name(st));
		char *m = runner_mask_apply(&b->log.mask, pr->ctx.message ? pr->ctx.message : "",
					    pr->ctx.message ? strlen(pr->ctx.message) : 0);
		runner_agent(b, "Phase context status code: %s Message: %s", pr->ctx.code ? pr->ctx.code : "", m);
		free(m);
	}
	runner_event ev = {.kind = RUNNER_EV_PHASE_END,
			   .phase = p,
			   .status = st,
			   .time_us = pr->end_us,
			   .context_code = pr->ctx.code ? pr->ctx.code : "",
			   .context_message = pr->ctx.message ? pr->ctx.message : ""};
	runner_emit(b, &ev);
	if (st != RUNNER_STATUS_SUCCEEDED && b->status == RUNNER_STATUS_IN_PROGRESS)
		b->status = st;
}

json_t *runner_build_record(runner_build *b)
{
	if (!b->record)
		b->record = build_record(b);
	return b->record;
}

/* ---------------------------------------------------------------- summary */

static void human_bytes(char *out, size_t n, double v)
{
	const char *units[] = {"B", "KB", "MB", "GB", "TB"};
	size_t i = 0;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(out, n, i ? "%.1f %s" : "%.0f %s", v, units[i]);
}

char *runner_build_usage_text(runner_build *b)
{
	const json_t *o = json_object_get(runner_build_record(b), "codebuildLocal");
	const json_t *u = json_object_get(o, "resourceUsage");
	const json_t *cost = json_object_get(o, "cost");
	const json_t *rec = json_object_get(o, "recommendation");
	if (!u && !cost)
		return NULL;
	cbl_buf out = CBL_BUF_INIT;
	if (u) {
		char peak[32], rd[32], wr[32];
		human_bytes(peak, sizeof(peak), (double)json_integer_value(json_object_get(u, "memoryPeakBytes")));
		human_bytes(rd, sizeof(rd), (double)json_integer_value(json_object_get(u, "readBytes")));
		human_bytes(wr, sizeof(wr), (double)json_integer_value(json_object_get(u, "writeBytes")));
		cbl_buf_printf(&out, "Resources: CPU %.2f s (%.2f vCPUs on average), memory peak %s, read %s, written %s (%s)\n",
			       json_number_value(json_object_get(u, "cpuSeconds")),
			       json_number_value(json_object_get(u, "averageVcpus")), peak, rd, wr,
			       cbl_json_str_or_empty(u, "source"));
		/* the phases that ran commands: CPU and peak of each */
		const char *k;
		json_t *ph;
		const char *sep = "  by phase:";
		json_object_foreach(json_object_get(u, "phases"), k, ph)
		{
			char pk[32];
			human_bytes(pk, sizeof(pk), (double)json_integer_value(json_object_get(ph, "memoryPeakBytes")));
			cbl_buf_printf(&out, "%s %s %.2f s %s", sep, k, json_number_value(json_object_get(ph, "cpuSeconds")),
				       pk);
			sep = ",";
		}
		if (strcmp(sep, "  by phase:"))
			cbl_buf_puts(&out, "\n");
	}
	if (cost && json_is_number(json_object_get(cost, "amount")))
		cbl_buf_printf(&out, "Cost:      %.4f %s on %s (price table of %s)\n",
			       json_number_value(json_object_get(cost, "amount")), cbl_json_str_or_empty(cost, "currency"),
			       cbl_json_str_or_empty(cost, "computeType"), cbl_json_str_or_empty(cost, "priceDate"));
	else if (cost)
		cbl_buf_printf(&out, "Cost:      unknown: %s\n",
			       cbl_json_str(cost, "reason") ? cbl_json_str(cost, "reason") : cbl_json_str_or_empty(cost, "error"));
	if (rec)
		cbl_buf_printf(&out, "Right-size: %s\n", cbl_json_str_or_empty(rec, "reason"));
	return cbl_buf_detach(&out);
}
