/* runner/batch_launched.c - a batch started through the API
 * (StartBuildBatch, RetryBuildBatch: runner/launch.c): its options from the
 * launch document (the project's buildBatchConfig, or the request's
 * buildBatchConfigOverride) and, for a retry, the batch's record so far. */
#include "runner/batch_internal.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/json.h"

#include <string.h>
#include <unistd.h>

#include "util/banned.h"

int runner_batch_launched_opts(runner_batch_opts *bo, runner_batch_mem *mem, const json_t *doc, const char *home,
			       const char *batch_id, const char *retry_type, json_t **prior, cbl_error **err)
{
	const json_t *req = json_object_get(doc, "request");
	const json_t *cfg = json_object_get(req, "buildBatchConfigOverride");
	if (!json_is_object(cfg))
		cfg = json_object_get(json_object_get(doc, "project"), "buildBatchConfig");
	bo->combine_artifacts = json_is_true(json_object_get(cfg, "combineArtifacts"));
	const json_t *r = json_object_get(cfg, "restrictions");
	json_t *max = json_object_get(r, "maximumBuildsAllowed");
	bo->max_builds = json_is_integer(max) ? (int)json_integer_value(max) : 0;
	json_t *cts = json_object_get(r, "computeTypesAllowed");
	if (json_is_array(cts) && json_array_size(cts)) {
		size_t i;
		json_t *t;
		json_array_foreach(cts, i, t)
		{
			if (json_is_string(t))
				cbl_strv_push(&mem->env, json_string_value(t));
		}
		bo->compute_types_allowed = (const char *const *)mem->env.v;
	}
	json_t *to = json_object_get(cfg, "timeoutInMins");
	bo->timeout_minutes = json_is_integer(to) ? (int)json_integer_value(to) : 0;
	const char *mode = cbl_json_str_nonempty(cfg, "batchReportMode");
	if (mode) {
		cbl_strv_push(&mem->strings, mode);
		bo->report_mode = mem->strings.v[mem->strings.n - 1];
	}
	*prior = NULL;
	if (!retry_type)
		return 0;
	int rc = store_batch_load(home, batch_id, prior, err);
	if (rc)
		return rc;
	bo->prior = *prior;
	bo->retry_failed_only = !strcmp(retry_type, "RETRY_FAILED_BUILDS");
	return 0;
}
