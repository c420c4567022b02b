/* runner/buildspec.c - the load-buildspec stage (DOWNLOAD_SOURCE).
 *
 * The buildspec is a file of the source (or a -b / buildspecOverride path in
 * it): the build's own content, read beneath the source directory so that
 * no path or symlink in it reaches a host file. */
#include "runner/runner_internal.h"
#include "util/alloc.h"
#include "util/safeopen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
			runner_agent(b, "%s", s.ptr); /* ours too: FILE:LINE:COL: error: (the TTY view shows them) */
		}
		cbl_buf_release(&s);
	}
}

/* The buildspec named relative to the source directory: as given when
 * relative, an absolute path only when it lies inside the source (lexically);
 * NULL when it is outside.  Caller frees. */
static char *relative_to_source(const char *arg, const char *source_dir)
{
	if (arg[0] != '/')
		return cbl_xstrdup(arg);
	size_t sl = strlen(source_dir);
	while (sl > 1 && source_dir[sl - 1] == '/')
		sl--;
	if (strncmp(arg, source_dir, sl) || (arg[sl] != '/' && arg[sl] != '\0'))
		return NULL;
	const char *rest = arg + sl;
	while (*rest == '/')
		rest++;
	return cbl_xstrdup(*rest ? rest : ".");
}

static runner_status yaml_file_error(runner_build *b, runner_outcome *o, const char *msg)
{
	runner_outcome_set(b, o, "YAML_FILE_ERROR", msg);
	o->spec_invalid = true;
	return RUNNER_STATUS_FAILED;
}

/* Opens the buildspec: a file of the source, beneath its directory (its
 * content is the build's: a symlink to /etc/shadow, `..`, an absolute path
 * elsewhere, a FIFO are refused, never read), or the launcher's own copy of
 * an inline buildspec.  On failure *o and *st are set and -1 returned. */
/* The buildspec's path as the build sees it (caller frees). */
static char *buildspec_inner(const runner_build *b)
{
	/* the service shows an inline (project or override) buildspec there
	 * (reference §1.1) */
	if (b->src.buildspec_inline)
		return cbl_xstrdup("/codebuild/readonly/buildspec.yml");
	size_t sl = strlen(b->src.source_dir);
	if (!strncmp(b->src.buildspec_path, b->src.source_dir, sl) && b->src.buildspec_path[sl] == '/')
		return cbl_xasprintf("%s%s", b->src.src_inner, b->src.buildspec_path + sl);
	return cbl_xstrdup(b->src.buildspec_path);
}

/* The service says only "YAML file does not exist"; the paths (the
 * build's, and this machine's when it differs) are ours. */
static runner_status buildspec_missing(runner_build *b, runner_outcome *o)
{
	char *inner = buildspec_inner(b);
	char *m = !strcmp(inner, b->src.buildspec_path)
			  ? cbl_xasprintf("YAML file does not exist: %s", inner)
			  : cbl_xasprintf("YAML file does not exist: %s (on this machine: %s)", inner,
					  b->src.buildspec_path);
	runner_status st = yaml_file_error(b, o, m);
	free(m);
	free(inner);
	return st;
}

static int open_buildspec(runner_build *b, runner_outcome *o, runner_status *st)
{
	cbl_error *e = NULL;
	int fd = -1, sfd = -1;
	char *rel = NULL;
	if (b->src.buildspec_inline) {
		fd = open(b->src.buildspec_path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			char *m = cbl_xasprintf("cannot read the inline buildspec: %s", strerror(errno));
			*st = yaml_file_error(b, o, m);
			free(m);
		}
		return fd;
	}
	rel = relative_to_source(b->src.buildspec_arg, b->src.source_dir);
	if (!rel) {
		char *m = cbl_xasprintf("buildspec %s is outside the source directory: a buildspec path names "
					"a file in the source",
					b->src.buildspec_arg);
		*st = yaml_file_error(b, o, m);
		free(m);
		goto out;
	}
	sfd = open(b->src.source_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0) {
		*st = buildspec_missing(b, o);
		goto out;
	}
	fd = cbl_open_beneath_regular(sfd, rel, 0, NULL, &e);
	if (fd < 0) {
		int en = errno;
		if (fd == CBL_ENOENT) {
			*st = buildspec_missing(b, o);
		} else {
			const char *why = en == EXDEV ? "it leads outside the source directory"
					  : en == ELOOP ? "too many symlinks"
					  : fd == CBL_EINVAL ? "not a regular file"
							     : e->msg;
			char *m = cbl_xasprintf("cannot read buildspec %s: %s", b->src.buildspec_arg, why);
			*st = yaml_file_error(b, o, m);
			free(m);
		}
		fd = -1;
	}
out:
	cbl_error_free(e);
	if (sfd >= 0)
		close(sfd);
	free(rel);
	return fd;
}

/* The load-buildspec stage: the file (as the build sees its path), parsed
 * and validated into the typed spec; its diagnostics logged. */
runner_status runner_stage_buildspec(runner_build *b, runner_outcome *o)
{
	cbl_error *e = NULL;
	runner_status st = RUNNER_STATUS_FAILED;
	int fd = open_buildspec(b, o, &st);
	if (fd < 0)
		return st;
	char *inner = buildspec_inner(b);
	runner_agent(b, "YAML location is %s", inner);
	free(inner);
	spec_parse_opts po = SPEC_PARSE_OPTS_INIT;
	po.strict = b->cfg.strict;
	po.upload_time = true;
	int rc = spec_parse_fd(&b->spec, &b->diags, fd, b->src.buildspec_display, &po, &e);
	close(fd);
	if (rc < 0) {
		log_diags(b);
		const spec_diag *first = NULL;
		for (size_t i = 0; i < b->diags.n && !first; i++)
			if (b->diags.items[i].severity == SPEC_DIAG_ERROR)
				first = &b->diags.items[i];
		if (first && first->service_len) /* the service's words: its message, as it is */
			runner_outcome_setf(b, o, "YAML_FILE_ERROR", "%.*s", (int)first->service_len, first->msg);
		else if (e->file && e->line)
			runner_outcome_setf(b, o, "YAML_FILE_ERROR", "%s:%d:%d: %s", e->file, e->line, e->col, e->msg);
		else
			runner_outcome_set(b, o, "YAML_FILE_ERROR", e->msg);
		cbl_error_free(e);
		o->spec_invalid = true;
		return RUNNER_STATUS_FAILED;
	}
	log_diags(b);
	/* the agent's line for a phase that is present without commands (only
	 * runtime-versions or finally), right after `YAML location is` */
	for (int i = 0; i < SPEC_PHASE_COUNT; i++)
		if (b->spec->phases[i].present && !b->spec->phases[i].commands.n)
			runner_agent(b, "No commands found for phase name: %s", spec_phase_yaml_name((spec_phase_id)i));
	if (b->spec->batch.present && b->spec->batch.kind != SPEC_BATCH_NONE && !b->cfg.batch_member)
		runner_warn(b, "this buildspec defines a batch: this build runs its top-level phases only%s "
			       "(`run DIR` of a local directory or StartBuildBatch runs the batch)",
			    b->spec->has_phases ? "" : ", and it has none");
	return RUNNER_STATUS_SUCCEEDED;
}

/* The buildspec parsed ahead of its stage, for a checkpoint's key (nothing
 * logged, nothing kept): 0, or -1 with *why (caller frees). */
int runner_buildspec_peek(runner_build *b, spec_buildspec **out, char **why)
{
	runner_outcome o = {0};
	runner_status st = RUNNER_STATUS_FAILED;
	cbl_error *e = NULL;
	int fd = open_buildspec(b, &o, &st);
	if (fd < 0) {
		*why = cbl_xstrdup(o.message ? o.message : "the buildspec cannot be read");
		runner_outcome_release(&o);
		return -1;
	}
	spec_parse_opts po = SPEC_PARSE_OPTS_INIT;
	int rc = spec_parse_fd(out, NULL, fd, b->src.buildspec_display, &po, &e);
	close(fd);
	if (rc < 0) {
		*why = cbl_xasprintf("the buildspec is invalid: %s", e->msg);
		cbl_error_free(e);
		return -1;
	}
	return 0;
}
