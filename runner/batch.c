/* runner/batch.c - a batch build's life: its identity and record, the
 * batchspec (DOWNLOAD_BATCHSPEC), its builds (IN_PROGRESS, batch_sched.c),
 * the combined artifacts (COMBINE_ARTIFACTS) and its end. */
#include "runner/batch_internal.h"
#include "runner/runner_internal.h"
#include "artifacts/artifacts.h"
#include "source/source.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include "util/banned.h"

static int init_identity(runner_batch *b, cbl_error **err)
{
	const runner_opts *o = &b->build;
	b->home = o->home ? cbl_xstrdup(o->home) : store_default_home();
	if (o->project_name) {
		if (!store_project_name_valid(o->project_name))
			return cbl_error_set(err, CBL_EINVAL, "invalid project name '%s'", o->project_name);
		b->project = cbl_xstrdup(o->project_name);
	} else {
		char *real = o->source_dir ? realpath(o->source_dir, NULL) : NULL;
		b->project = store_project_name_from_dir(real ? real : (o->source_dir ? o->source_dir : "batch"));
		free(real);
	}
	char uuid[37];
	if (b->o.uuid)
		snprintf(uuid, sizeof(uuid), "%s", b->o.uuid);
	else
		cbl_uuid4(uuid);
	b->uuid = cbl_xstrdup(uuid);
	b->region = cbl_xstrdup(o->region ? o->region : "us-east-1");
	b->account = cbl_xstrdup(o->account_id ? o->account_id : "000000000000");
	b->initiator = o->initiator ? cbl_xstrdup(o->initiator) : runner_invoking_user();
	b->id = cbl_xasprintf("%s:%s", b->project, uuid);
	b->arn = cbl_xasprintf("arn:aws:codebuild:%s:%s:build-batch/%s", b->region, b->account, b->id);
	int rc = 0;
	if (b->o.number > 0)
		b->number = b->o.number;
	else if ((rc = store_batch_next_number(b->home, b->project, &b->number, err)))
		return rc;
	rc = store_batch_dir_create(b->home, b->project, uuid, &b->dir, err);
	if (rc)
		return rc;
	b->art_dir = o->artifacts_dir ? cbl_xstrdup(o->artifacts_dir) : cbl_path_join(b->dir, "artifacts");
	return 0;
}

int runner_batch_new(runner_batch **out, const runner_batch_opts *o, cbl_error **err)
{
	runner_batch *b = cbl_xcalloc(1, sizeof(*b));
	b->o = *o;
	b->build = *o->build;
	b->stop_r = b->stop_w = -1;
	b->status = RUNNER_STATUS_IN_PROGRESS;
	b->phases = json_array();
	b->start_us = cbl_now_us();
	int p[2];
	int rc = init_identity(b, err);
	if (!rc && pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		rc = cbl_error_set(err, CBL_EIO, "pipe: %s", strerror(errno));
	if (rc) {
		runner_batch_free(b);
		return rc;
	}
	b->stop_r = p[0];
	b->stop_w = p[1];
	runner_write_pidfile(b->dir); /* StopBuildBatch signals it */
	runner_batch_enter(b, "SUBMITTED", NULL, NULL, NULL);
	*out = b;
	return 0;
}

void runner_batch_stop(runner_batch *b)
{
	b->stop_requested = 1;
	if (b->stop_w >= 0) {
		ssize_t r = write(b->stop_w, "s", 1);
		(void)r;
	}
}

/* A build's CPU and memory share (runner/batch.h). */
static void costs(runner_batch *b, runner_bb *x)
{
	const char *ct_name = x->spec->compute_type ? x->spec->compute_type : b->build.compute_type;
	const runner_compute *ct = runner_compute_find(ct_name ? ct_name : "BUILD_GENERAL1_SMALL");
	x->cpu = ct && ct->vcpus > 2 ? ct->vcpus / 2 : 1;
	if (x->cpu > b->cpu_budget)
		x->cpu = b->cpu_budget;
	x->mem_gb = ct && ct_name ? ct->memory_gb : 0;
	if (x->mem_gb > b->mem_budget_gb)
		x->mem_gb = (int)b->mem_budget_gb;
}

static long dep_index(const spec_batch_plan *p, const char *id)
{
	for (size_t i = 0; i < p->n; i++)
		if (!strcmp(p->builds[i].identifier, id))
			return (long)i;
	return -1;
}

/* A retry keeps what succeeded (RETRY_FAILED_BUILDS) and moves the
 * earlier summaries into priorBuildSummaryList. */
static void apply_prior(runner_batch *b, runner_bb *x)
{
	json_t *groups = json_object_get(b->o.prior, "buildGroups");
	size_t i;
	json_t *g;
	json_array_foreach(groups, i, g)
	{
		if (strcmp(cbl_json_str_or_empty(g, "identifier"), x->spec->identifier))
			continue;
		json_t *cur = json_object_get(g, "currentBuildSummary");
		const char *st = cbl_json_str(cur, "buildStatus");
		if (b->o.retry_failed_only && st && !strcmp(st, "SUCCEEDED")) {
			x->kept = true;
			x->state = BB_DONE;
			x->status = cbl_xstrdup(st);
			x->build_arn = cbl_xstrdup(cbl_json_str_or_empty(cur, "arn"));
			x->prior = json_incref(json_object_get(g, "priorBuildSummaryList"));
			return;
		}
		x->prior = json_deep_copy(json_object_get(g, "priorBuildSummaryList"));
		if (!json_is_array(x->prior)) {
			json_decref(x->prior);
			x->prior = json_array();
		}
		if (cur)
			json_array_append(x->prior, cur);
		return;
	}
}

static void init_builds(runner_batch *b)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	b->cpu_budget = ncpu > 0 ? (int)ncpu : 1;
	b->mem_budget_gb = pages > 0 && psize > 0 ? (int64_t)pages * psize >> 30 : 4;
	if (b->mem_budget_gb < 1)
		b->mem_budget_gb = 1;
	b->n = b->plan->n;
	b->b = cbl_xcalloc(b->n ? b->n : 1, sizeof(*b->b));
	for (size_t i = 0; i < b->n; i++) {
		runner_bb *x = &b->b[i];
		x->spec = &b->plan->builds[i];
		x->fd = -1;
		x->pid = -1;
		x->deps = cbl_xcalloc(x->spec->ndepend_on ? x->spec->ndepend_on : 1, sizeof(size_t));
		for (size_t k = 0; k < x->spec->ndepend_on; k++) {
			long d = dep_index(b->plan, x->spec->depend_on[k]);
			if (d >= 0)
				x->deps[x->ndeps++] = (size_t)d;
		}
		x->stderr_path = cbl_xasprintf("%s/%s.stderr", b->dir, x->spec->identifier);
		x->artifacts_dir = b->o.combine_artifacts ? cbl_xasprintf("%s/combine/%s", b->dir, x->spec->identifier)
							  : cbl_path_join(b->art_dir, x->spec->identifier);
		costs(b, x);
		if (b->o.prior)
			apply_prior(b, x);
	}
}

/* restrictions: maximumBuildsAllowed and computeTypesAllowed. */
static int check_restrictions(runner_batch *b, cbl_error **err)
{
	int max = b->o.max_builds > 0 ? b->o.max_builds : 100;
	if ((int)b->plan->n > max)
		return cbl_error_set(err, CBL_EINVAL,
				     "Batch build has %zu builds, more than the project allows (maximumBuildsAllowed %d)",
				     b->plan->n, max);
	for (size_t i = 0; b->o.compute_types_allowed && i < b->plan->n; i++) {
		const char *ct = b->plan->builds[i].compute_type ? b->plan->builds[i].compute_type
								 : b->build.compute_type ? b->build.compute_type
											 : "BUILD_GENERAL1_SMALL";
		bool ok = false;
		for (const char *const *t = b->o.compute_types_allowed; *t && !ok; t++)
			ok = !strcmp(*t, ct);
		if (!ok)
			return cbl_error_set(err, CBL_EINVAL,
					     "build '%s' asks for compute type %s, which the project's batch restrictions "
					     "(computeTypesAllowed) do not allow",
					     b->plan->builds[i].identifier, ct);
	}
	return 0;
}

/* COMBINE_ARTIFACTS: every build's primary artifact (packaged NONE into
 * <batch dir>/combine/<identifier>/artifacts/) in one zip, a folder per
 * identifier. */
static int combine(runner_batch *b, cbl_error **err)
{
	char *root = cbl_path_join(b->dir, "combined");
	spec_artifact a = {0};
	spec_str all = {(char *)"**/*", {0, 0}};
	a.files.items = &all;
	a.files.n = 1;
	const char *files[] = {"**/*", NULL};
	artifacts_list *l = NULL;
	int rc = cbl_mkdir_p(root, 0700, err);
	for (size_t i = 0; !rc && i < b->n; i++) {
		char *from = cbl_path_join(b->b[i].artifacts_dir, "artifacts");
		char *to = cbl_path_join(root, b->b[i].spec->identifier);
		if (rename(from, to) < 0 && errno != ENOENT)
			rc = cbl_error_set(err, CBL_EIO, "cannot move %s: %s", from, strerror(errno));
		free(from);
		free(to);
	}
	if (!rc)
		rc = cbl_mkdir_p(b->art_dir, 0755, err);
	if (!rc)
		rc = artifacts_collect(&l, root, &a, files, NULL, NULL, NULL, err);
	char *zip = cbl_path_join(b->art_dir, "artifacts.zip");
	if (!rc)
		rc = artifacts_write_zip(l, zip, false, NULL, NULL, err);
	artifacts_list_free(l);
	free(zip);
	free(root);
	return rc;
}

static void finish(runner_batch *b)
{
	bool not_started = false;
	for (size_t i = 0; i < b->n; i++)
		not_started |= b->b[i].state == BB_NOT_STARTED;
	const char *last = "SUCCEEDED";
	if (b->stopped) {
		b->status = RUNNER_STATUS_STOPPED;
		last = "STOPPED";
	} else if (b->timed_out) {
		b->status = RUNNER_STATUS_TIMED_OUT;
		last = "FAILED";
	} else if (b->failed || not_started || b->error) {
		b->status = RUNNER_STATUS_FAILED;
		last = "FAILED";
	} else {
		b->status = RUNNER_STATUS_SUCCEEDED;
	}
	b->end_us = cbl_now_us();
	runner_batch_enter(b, last, b->status == RUNNER_STATUS_SUCCEEDED ? "SUCCEEDED" : last,
			   b->timed_out ? "BATCH_TIMED_OUT" : NULL,
			   b->timed_out ? "the batch ran longer than its timeoutInMins" : NULL);
}

/* A git source's batchspec: a shallow clone of the commit in the batch's
 * directory (each build clones the source again, as on the service). */
static int load_git(runner_batch *b, cbl_error **err)
{
	source_git_opts go = SOURCE_GIT_OPTS_INIT;
	go.url = b->build.git_url;
	go.version = b->build.source_version;
	go.depth = 1;
	char *dest = cbl_path_join(b->dir, "batchspec-src");
	int rc = cbl_rm_rf(dest, err);
	if (!rc)
		rc = source_git_fetch(&go, dest, NULL, err);
	if (!rc) {
		runner_opts o = b->build;
		o.git_url = NULL;
		o.source_dir = dest;
		rc = runner_batch_load(&b->spec, &b->plan, &o, err);
	}
	/* its builds read it here: they clone the source once they run */
	char *rel = cbl_path_join(dest, b->build.buildspec ? b->build.buildspec : "buildspec.yml");
	char *data = NULL;
	size_t len = 0;
	if (!rc && cbl_read_regular_file(rel, 16u << 20, &data, &len, err) == 0) {
		b->spec_copy = cbl_path_join(b->dir, "batchspec.yml");
		rc = cbl_write_file_atomic(b->spec_copy, data, len, 0600, false, err);
	}
	free(data);
	free(rel);
	cbl_rm_rf(dest, NULL);
	free(dest);
	return rc;
}

int runner_batch_run(runner_batch *b, cbl_error **err)
{
	(void)err;
	cbl_error *e = NULL;
	runner_batch_enter(b, "DOWNLOAD_BATCHSPEC", "SUCCEEDED", NULL, NULL);
	int rc = b->build.git_url && !b->build.buildspec_inline ? load_git(b, &e)
								: runner_batch_load(&b->spec, &b->plan, &b->build, &e);
	if (!rc)
		rc = check_restrictions(b, &e);
	if (rc) {
		b->error = e->file && e->line ? cbl_xasprintf("%s:%d:%d: %s", e->file, e->line, e->col, e->msg)
					      : cbl_xstrdup(e->msg);
		cbl_error_free(e);
		runner_batch_enter(b, "FAILED", "FAILED", "CLIENT_ERROR", b->error);
		b->status = RUNNER_STATUS_FAILED;
		b->end_us = cbl_now_us();
		runner_batch_save(b);
		return 0;
	}
	init_builds(b);
	runner_batch_enter(b, "IN_PROGRESS", "SUCCEEDED", NULL, NULL);
	runner_batch_schedule(b);
	bool ok = !b->stopped && !b->timed_out && !b->failed;
	if (b->o.combine_artifacts && ok) {
		runner_batch_enter(b, "COMBINE_ARTIFACTS", "SUCCEEDED", NULL, NULL);
		if (combine(b, &e) < 0) {
			b->error = cbl_xasprintf("cannot combine the artifacts: %s", e->msg);
			cbl_error_free(e);
			runner_batch_enter(b, "FAILED", "FAILED", "CLIENT_ERROR", b->error);
			b->status = RUNNER_STATUS_FAILED;
			b->end_us = cbl_now_us();
			runner_batch_save(b);
			return 0;
		}
	}
	const char *pstatus = b->stopped ? "STOPPED" : ok ? "SUCCEEDED" : "FAILED";
	json_t *cur = json_array_get(b->phases, json_array_size(b->phases) - 1);
	json_object_set_new(cur, "phaseStatus", json_string(pstatus));
	finish(b);
	return 0;
}

runner_status runner_batch_status(const runner_batch *b) { return b->status; }
const char *runner_batch_id(const runner_batch *b) { return b->id; }
const char *runner_batch_dir(const runner_batch *b) { return b->dir; }
json_t *runner_batch_record(runner_batch *b) { return b->record; }
const char *runner_batch_error(const runner_batch *b) { return b->error; }
size_t runner_batch_count(const runner_batch *b) { return b->n; }

void runner_batch_build_info(const runner_batch *b, size_t i, runner_batch_info *out)
{
	static const char *const states[] = {"PENDING", "RUNNING", "DONE", "NOT_STARTED"};
	const runner_bb *x = &b->b[i];
	*out = (runner_batch_info){x->spec->identifier, x->spec->label, states[x->state], x->phase, x->status,
				   x->build_id, x->log_path, x->stderr_path, x->start_us, x->end_us};
}

void runner_batch_free(runner_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++) {
		runner_bb *x = &b->b[i];
		if (x->fd >= 0)
			close(x->fd);
		if (x->pid > 0) {
			kill(x->pid, SIGKILL);
			waitpid(x->pid, NULL, 0);
		}
		cbl_buf_release(&x->line);
		free(x->deps);
		char *strs[] = {x->phase, x->status, x->build_id, x->build_arn, x->log_path, x->stderr_path,
				x->artifacts_dir};
		for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
			free(strs[k]);
		json_decref(x->prior);
	}
	free(b->b);
	if (b->stop_r >= 0)
		close(b->stop_r);
	if (b->stop_w >= 0)
		close(b->stop_w);
	spec_batch_plan_free(b->plan);
	spec_buildspec_free(b->spec);
	char *strs[] = {b->home, b->project, b->uuid, b->id, b->arn, b->dir, b->region, b->account, b->initiator,
			b->art_dir, b->error, b->phase, b->spec_copy};
	for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
		free(strs[k]);
	json_decref(b->phases);
	json_decref(b->record);
	free(b);
}
