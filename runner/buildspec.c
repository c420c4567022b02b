/* runner/buildspec.c - the load-buildspec stage (DOWNLOAD_SOURCE). */
#include "runner/runner_internal.h"
#include "util/alloc.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "util/banned.h"

static void log_diags(runner_build *b)
{
	for (size_t i = 0; i < b->diags.n; i++) {
		cbl_buf s = CBL_BUF_INIT;
		spec_diag_format(&b->diags, &b->diags.items[i], &s);
		if (b->diags.items[i].severity == SPEC_DIAG_WARNING) {
			runner_agent(b, "[codebuild-local] %s", s.ptr);
			runner_event ev = {.kind = RUNNER_EV_WARNING, .phase = b->current, .text = s.ptr};
			runner_emit(b, &ev);
		} else {
			runner_agent(b, "%s", s.ptr);
		}
		cbl_buf_release(&s);
	}
}

/* The load-buildspec stage: the file (as the build sees its path), parsed
 * and validated into the typed spec; its diagnostics logged. */
runner_status runner_stage_buildspec(runner_build *b, runner_outcome *o)
{
	cbl_error *e = NULL;
	struct stat st;
	/* the path as the build sees it */
	size_t sl = strlen(b->src.source_dir);
	char *inner = !strncmp(b->src.buildspec_path, b->src.source_dir, sl) && b->src.buildspec_path[sl] == '/'
			      ? cbl_xasprintf("%s%s", b->src.src_inner, b->src.buildspec_path + sl)
			      : cbl_xstrdup(b->src.buildspec_path);
	if (stat(b->src.buildspec_path, &st) < 0) {
		/* the service says only "YAML file does not exist"; the paths
		 * (the build's, and this machine's when it differs) are ours */
		if (errno == ENOENT && !strcmp(inner, b->src.buildspec_path))
			runner_outcome_setf(b, o, "YAML_FILE_ERROR", "YAML file does not exist: %s", inner);
		else if (errno == ENOENT)
			runner_outcome_setf(b, o, "YAML_FILE_ERROR", "YAML file does not exist: %s (on this machine: %s)",
					    inner, b->src.buildspec_path);
		else
			runner_outcome_setf(b, o, "YAML_FILE_ERROR", "stat %s: %s", inner, strerror(errno));
		free(inner);
		o->spec_invalid = true;
		return RUNNER_STATUS_FAILED;
	}
	runner_agent(b, "YAML location is %s", inner);
	free(inner);
	spec_parse_opts po = SPEC_PARSE_OPTS_INIT;
	po.strict = b->cfg.strict;
	if (spec_parse_file(&b->spec, &b->diags, b->src.buildspec_path, b->src.buildspec_display, &po, &e) < 0) {
		log_diags(b);
		if (e->file && e->line)
			runner_outcome_setf(b, o, "YAML_FILE_ERROR", "%s:%d:%d: %s", e->file, e->line, e->col, e->msg);
		else
			runner_outcome_set(b, o, "YAML_FILE_ERROR", e->msg);
		cbl_error_free(e);
		o->spec_invalid = true;
		return RUNNER_STATUS_FAILED;
	}
	log_diags(b);
	if (b->spec->has_phases == false && b->spec->batch.present)
		runner_warn(b, "this buildspec only defines a batch; batch builds are not run by codebuild-local yet, "
			       "so no phase has commands");
	return RUNNER_STATUS_SUCCEEDED;
}
