/* runner/fidelity.c - what a local run of a buildspec fakes or skips, the
 * report `validate --strict` prints (issue: every difference from the
 * service is said, never silent).  Each finding names the buildspec
 * position it comes from and what to do; docs/fidelity.md is the same list
 * for the reference's statements. */
#include "runner/runner_internal.h"
#include "images/images.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/json.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static void add(runner_findings *f, spec_pos pos, const char *todo, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void add(runner_findings *f, spec_pos pos, const char *todo, const char *fmt, ...)
{
	va_list ap;
	f->items = cbl_xreallocarray(f->items, f->n + 1, sizeof(*f->items));
	runner_finding *x = &f->items[f->n++];
	x->pos = pos;
	cbl_buf what = CBL_BUF_INIT;
	va_start(ap, fmt);
	cbl_buf_vprintf(&what, fmt, ap);
	va_end(ap);
	x->what = cbl_buf_detach(&what);
	x->todo = cbl_xstrdup(todo);
}

void runner_findings_release(runner_findings *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->items[i].what);
		free(f->items[i].todo);
	}
	free(f->items);
	f->items = NULL;
	f->n = 0;
}

static bool host_image(const char *image)
{
	return !image || images_classify(image) == IMAGES_KIND_HOST;
}

/* The image the build would run on: -i, else the project's. */
static const char *build_image(const runner_fidelity_opts *o)
{
	if (o->image)
		return o->image;
	return o->project ? cbl_json_str_nonempty(json_object_get(o->project, "environment"), "image") : NULL;
}

/* The image, and the runtimes it would not have. */
static void check_image(const spec_buildspec *bs, const runner_fidelity_opts *o, runner_findings *f)
{
	const spec_kvlist *rv = &bs->phases[SPEC_PHASE_INSTALL].runtime_versions;
	const char *image = build_image(o);
	if (!host_image(image)) {
		if (images_classify(image) == IMAGES_KIND_DIR)
			add(f, bs->version_pos, "pass -i with the image the project names (a curated name is pulled once)",
			    "the build's root is the directory %s, not a CodeBuild image", image);
		return;
	}
	add(f, bs->version_pos,
	    "pass -i aws/codebuild/standard:7.0 (or the image the project names; pulled once, then reused)",
	    "the host image: the build runs on this machine's programs and libraries, not on a CodeBuild image");
	for (size_t i = 0; i < rv->n; i++) {
		const spec_kv *kv = &rv->items[i];
		cbl_error *e = NULL;
		if (kv->value[0] == '$') {
			add(f, kv->pos, "pass -i with a curated image to have it installed as the service does",
			    "runtime-versions %s: %s: its value is known only when the build runs; the host's %s is used, "
			    "nothing is installed", kv->key, kv->value, kv->key);
			continue;
		}
		if (runner_host_runtime_check(kv->key, kv->value, &e) < 0) {
			add(f, kv->pos, "pass -i with a curated image that has it, or run --host-runtimes to go on",
			    "runtime-versions %s %s: the host lacks it, run fails DOWNLOAD_SOURCE (%s)", kv->key,
			    kv->value, e ? e->msg : "unknown");
			cbl_error_free(e);
		} else {
			add(f, kv->pos, "pass -i with a curated image to have it installed as the service does",
			    "runtime-versions %s %s: the host's own %s is used, nothing is installed from a runtimes.yml",
			    kv->key, kv->value, kv->key);
		}
	}
}

/* parameter-store and secrets-manager: from the secrets file, offline. */
static void check_secrets(const spec_buildspec *bs, const runner_fidelity_opts *o, runner_findings *f)
{
	runner_secrets *s = NULL;
	cbl_error *e = NULL;
	if (!bs->env.parameter_store.n && !bs->env.secrets_manager.n)
		return;
	if (!o->secrets_file) {
		const spec_kv *kv = bs->env.parameter_store.n ? &bs->env.parameter_store.items[0]
							      : &bs->env.secrets_manager.items[0];
		add(f, kv->pos,
		    "give --secrets-file FILE ({\"parameter-store\": {NAME: VALUE}, \"secrets-manager\": {ID: VALUE}})",
		    "%s%s%s: no secrets file, so nothing resolves them (values are never fetched from AWS): "
		    "the run fails DOWNLOAD_SOURCE",
		    bs->env.parameter_store.n ? "parameter-store" : "", bs->env.parameter_store.n && bs->env.secrets_manager.n ? " and " : "",
		    bs->env.secrets_manager.n ? "secrets-manager" : "");
		return;
	}
	if (runner_secrets_load(&s, o->secrets_file, &e) < 0) {
		add(f, bs->env.parameter_store.n ? bs->env.parameter_store.items[0].pos : bs->env.secrets_manager.items[0].pos,
		    "fix the secrets file", "the secrets file cannot be used: %s", e->msg);
		cbl_error_free(e);
		return;
	}
	for (size_t i = 0; i < bs->env.parameter_store.n + bs->env.secrets_manager.n; i++) {
		bool ps = i < bs->env.parameter_store.n;
		const spec_kv *kv = ps ? &bs->env.parameter_store.items[i]
				       : &bs->env.secrets_manager.items[i - bs->env.parameter_store.n];
		char *v = NULL;
		int rc = ps ? runner_secrets_parameter(s, kv->value, &v, &e) : runner_secrets_secret(s, kv->value, &v, &e);
		if (rc < 0) {
			add(f, kv->pos, "add it to the secrets file", "%s %s: %s: the run fails DOWNLOAD_SOURCE",
			    ps ? "parameter-store" : "secrets-manager", kv->key, e->msg);
			cbl_error_clear(&e);
		}
		if (v) {
			explicit_bzero(v, strlen(v));
			free(v);
		}
	}
	runner_secrets_free(s);
}

/* A batch runs locally, each build of its own (README "Batch builds"): only
 * what it does otherwise than the service is a finding. */
static void check_batch_tasks(const spec_batch *b, runner_findings *f)
{
	for (size_t i = 0; i < b->ntasks; i++) {
		const spec_batch_task *t = &b->tasks[i];
		if (t->env.type && strcmp(t->env.type, "LINUX_CONTAINER"))
			add(f, t->pos, "run it on a machine of that kind, or use the service for that task",
			    "batch task %s: env.type %s is not applied: the build is a LINUX_CONTAINER on this "
			    "machine's architecture", t->identifier, t->env.type);
		if (t->debug_session)
			add(f, t->pos, "run --batch-build ID --debug pauses that build at a failing command",
			    "batch task %s: debug-session: there is no Session Manager session; the build runs "
			    "without one", t->identifier);
	}
	if (b->kind == SPEC_BATCH_MATRIX && b->matrix_static_env.type &&
	    strcmp(b->matrix_static_env.type, "LINUX_CONTAINER"))
		add(f, b->pos, "run it on a machine of that kind, or use the service",
		    "batch: build-matrix static env.type %s is not applied: the builds are LINUX_CONTAINERs on "
		    "this machine's architecture", b->matrix_static_env.type);
}

static void check_batch(const spec_buildspec *bs, const runner_fidelity_opts *o, runner_findings *f)
{
	const spec_batch *b = &bs->batch;
	if (!b->present)
		return;
	check_batch_tasks(b, f);
	if (b->kind == SPEC_BATCH_MATRIX || b->kind == SPEC_BATCH_FANOUT) {
		spec_batch_plan *plan = NULL;
		cbl_error *e = NULL;
		const char *kind = b->kind == SPEC_BATCH_MATRIX ? "matrix" : "shard";
		if (spec_batch_plan_new(&plan, bs, &e) == 0)
			add(f, b->pos, "read CODEBUILD_BATCH_BUILD_IDENTIFIER rather than expecting a name; "
			    "run --batch-build ID runs one of them",
			    "batch: %s: its %zu builds are named %s_1 .. %s_%zu, our naming (the service documents "
			    "none for generated builds)", b->kind == SPEC_BATCH_MATRIX ? "build-matrix" : "build-fanout",
			    plan->n, kind, kind, plan->n);
		cbl_error_free(e);
		spec_batch_plan_free(plan);
	}
	if (b->kind == SPEC_BATCH_FANOUT && !host_image(build_image(o)))
		add(f, b->pos, "run the shards on the host image (no -i), or install the helpers in the image",
		    "batch: build-fanout: codebuild-tests-run and codebuild-glob-search are on the PATH of "
		    "host-image builds only, not in the image %s", build_image(o));
	const json_t *cfg = o->project ? json_object_get(o->project, "buildBatchConfig") : NULL;
	if (bs->artifacts.nsecondary && (!o->project || json_is_true(json_object_get(cfg, "combineArtifacts"))))
		add(f, bs->artifacts.primary.pos,
		    "collect the secondary artifacts from each build's folder (-a DIR/<identifier>/)",
		    "batch: combined artifacts (run --combine-artifacts, the project's combineArtifacts) hold each "
		    "build's primary artifact only, not its secondary artifacts");
	if (bs->nreports && cbl_json_str_nonempty(cfg, "batchReportMode") &&
	    !strcmp(cbl_json_str(cfg, "batchReportMode"), "REPORT_AGGREGATED_BATCH"))
		add(f, b->pos, "read each build's reports (batch-get-builds reportArns)",
		    "batch: the project's batchReportMode REPORT_AGGREGATED_BATCH is not applied: each build of the "
		    "batch keeps its own reports (REPORT_INDIVIDUAL_BUILDS)");
}

static void check_outputs(const spec_buildspec *bs, runner_findings *f)
{
	const spec_artifacts *a = &bs->artifacts;
	if (a->present) {
		add(f, a->primary.pos, "pass -a DIR to collect them where you want",
		    "artifacts: written to the build's directory (or -a DIR), not uploaded to S3: no bucket, no "
		    "namespaceType, no encryption%s", a->nsecondary ? "; each secondary artifact in a folder of its own" : "");
		if (a->primary.s3_prefix)
			add(f, a->primary.pos, "nothing", "artifacts/s3-prefix %s: used only for S3 uploads, ignored",
			    a->primary.s3_prefix);
	}
	if (bs->cache.present)
		add(f, bs->cache.pos, "nothing; --no-cache shows a cold build, `cache ls` what is stored",
		    "cache: kept in this machine's cache store, not in the project's S3 bucket or on a LOCAL-cache build "
		    "host: other machines do not share it%s", bs->cache.key ? " (the key and fallback-keys work as on S3)" : "");
	if (bs->proxy.pos.line && (bs->proxy.upload_artifacts || bs->proxy.logs))
		add(f, bs->proxy.pos, "nothing", "proxy: there is no explicit proxy to go through locally; ignored");
	if (bs->env.git_credential_helper)
		add(f, bs->env.git_credential_helper_pos, "keep the source's credentials in ~/.git-credentials",
		    "git-credential-helper: the build's git gets this user's ~/.git-credentials, not the credentials "
		    "CodeBuild holds for the source");
}

/* Variables a local build leaves empty because their event never happens
 * here: the first command that reads one.  (CODEBUILD_BATCH_BUILD_IDENTIFIER
 * is not one: a local batch sets it, and a build outside a batch has none on
 * the service either.) */
static void check_commands(const spec_buildspec *bs, runner_findings *f)
{
	static const struct { const char *var, *what, *todo; } empty[] = {
		{"CODEBUILD_WEBHOOK_", "webhook variables (CODEBUILD_WEBHOOK_*) are empty unless the build is run as a "
		 "webhook's: no repository event starts a local build",
		 "run --webhook-event EVENT (--head-ref, --base-ref, --pr N ...) sets them as the event's build has them"},
		{"CODEBUILD_PUBLIC_BUILD_URL", "CODEBUILD_PUBLIC_BUILD_URL is empty: there are no public builds locally",
		 "set it with -e if the build needs one"},
	};
	for (size_t k = 0; k < sizeof(empty) / sizeof(empty[0]); k++) {
		bool found = false;
		for (int p = 0; p < SPEC_PHASE_COUNT && !found; p++) {
			const spec_strlist *lists[] = {&bs->phases[p].commands, &bs->phases[p].finally};
			for (size_t l = 0; l < 2 && !found; l++)
				for (size_t i = 0; i < lists[l]->n && !found; i++)
					if (strstr(lists[l]->items[i].s, empty[k].var)) {
						add(f, lists[l]->items[i].pos, empty[k].todo, "%s", empty[k].what);
						found = true;
					}
		}
	}
}

static bool has_secret_vars(const json_t *env)
{
	size_t i;
	const json_t *v;
	json_array_foreach(json_object_get(env, "environmentVariables"), i, v) {
		const char *t = cbl_json_str(v, "type");
		if (t && (!strcmp(t, "PARAMETER_STORE") || !strcmp(t, "SECRETS_MANAGER")))
			return true;
	}
	return false;
}

/* The project's webhook (CreateWebhook keeps it in the project): stored,
 * never delivered. */
static void check_webhook(const json_t *p, runner_findings *f)
{
	const spec_pos none = {0, 0};
	const char *name = cbl_json_str_nonempty(p, "name") ? cbl_json_str(p, "name") : "NAME";
	size_t groups = json_array_size(json_object_get(json_object_get(p, "webhook"), "filterGroups"));
	char *todo = cbl_xasprintf("simulate an event: `codebuild-local webhook test --project %s --event EVENT ...` "
				   "says whether it would start a build, `codebuild-local run --webhook-event EVENT ...` "
				   "runs that build with its CODEBUILD_WEBHOOK_* variables", name);
	add(f, none, todo, "webhook (%zu filter group%s): webhooks are not delivered locally: no repository event "
	    "reaches this machine, so no push or pull request starts a build", groups, groups == 1 ? "" : "s");
	free(todo);
}

static const char *type_of(const json_t *p, const char *key)
{
	return cbl_json_str_nonempty(json_object_get(p, key), "type");
}

/* What the project holds that a local build does without (no buildspec
 * position: line 0). */
static void check_project(const runner_fidelity_opts *o, runner_findings *f)
{
	const json_t *p = o->project, *vpc = json_object_get(p, "vpcConfig");
	const json_t *env = json_object_get(p, "environment"), *logs = json_object_get(p, "logsConfig");
	const spec_pos none = {0, 0};
	const char *t;
	if (!p)
		return;
	if (json_is_object(vpc) && (cbl_json_str_nonempty(vpc, "vpcId") || json_array_size(json_object_get(vpc, "subnets"))))
		add(f, none, "make what the build reaches in the VPC reachable from this machine",
		    "vpcConfig %s: the build is not placed in the VPC (subnets, security groups): it uses this "
		    "machine's network", cbl_json_str_nonempty(vpc, "vpcId") ? cbl_json_str(vpc, "vpcId") : "");
	if (json_is_object(json_object_get(p, "webhook")))
		check_webhook(p, f);
	if ((t = cbl_json_str_nonempty(env, "type")) && !strncmp(t, "WINDOWS", 7))
		add(f, none, "use the service for Windows builds", "environment type %s: Windows images do not run locally", t);
	else if (t && strstr(t, "ARM"))
		add(f, none, "run on an arm64 machine to match", "environment type %s: the build runs on this machine's "
		    "architecture", t);
	if (has_secret_vars(env) && !o->secrets_file)
		add(f, none, "give --secrets-file FILE (serve --secrets-file for API builds)",
		    "environment variables of type PARAMETER_STORE / SECRETS_MANAGER: no secrets file resolves them: "
		    "the build fails DOWNLOAD_SOURCE");
	if ((t = type_of(p, "artifacts")) && !strcmp(t, "S3"))
		add(f, none, "read them from the build's directory (batch-get-builds names it)",
		    "artifacts type S3 (%s): written to the build's directory, not uploaded",
		    cbl_json_str_nonempty(json_object_get(p, "artifacts"), "location") ? cbl_json_str(json_object_get(p, "artifacts"), "location") : "no location");
	if ((t = type_of(p, "source")) && !strcmp(t, "S3"))
		add(f, none, "build from a directory or a git URL", "source type S3: S3 sources are not fetched");
	if ((t = type_of(p, "cache")) && strcmp(t, "NO_CACHE"))
		add(f, none, "nothing; `cache ls` shows what is stored",
		    "cache type %s: kept in this machine's cache store%s", t,
		    !strcmp(t, "LOCAL") ? " (LOCAL_DOCKER_LAYER_CACHE is not implemented)" : ", not in S3");
	if (cbl_json_str_nonempty(json_object_get(logs, "s3Logs"), "status") &&
	    !strcmp(cbl_json_str(json_object_get(logs, "s3Logs"), "status"), "ENABLED"))
		add(f, none, "read the log with `logs` or GetLogEvents", "logsConfig s3Logs: the log is not written to S3");
	if (json_array_size(json_object_get(p, "fileSystemLocations")))
		add(f, none, "mount the data with --mount", "fileSystemLocations: EFS file systems are not mounted");
}

static int by_position(const void *a, const void *b)
{
	const runner_finding *x = a, *y = b;
	if (x->pos.line != y->pos.line)
		return x->pos.line < y->pos.line ? -1 : 1;
	return (x->pos.col > y->pos.col) - (x->pos.col < y->pos.col);
}

void runner_fidelity_check(const spec_buildspec *bs, const runner_fidelity_opts *o, runner_findings *out)
{
	size_t first = out->n;
	check_image(bs, o, out);
	check_secrets(bs, o, out);
	check_batch(bs, o, out);
	check_outputs(bs, out);
	check_commands(bs, out);
	/* in buildspec order (findings on one position keep no set order) */
	if (out->n > first)
		qsort(out->items + first, out->n - first, sizeof(*out->items), by_position);
	check_project(o, out); /* then the project's, which have no line */
}
