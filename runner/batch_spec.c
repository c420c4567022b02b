/* runner/batch_spec.c - the batchspec: the buildspec a batch reads in
 * DOWNLOAD_BATCHSPEC (beneath the source directory, as the load-buildspec
 * stage reads a build's), expanded by spec/, and one build of it applied to
 * a build's options (run --batch-build ID). */
#include "runner/batch_internal.h"
#include "runner/launch.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/safeopen.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/banned.h"

/* The buildspec's descriptor: the launcher's inline copy as is, else a
 * regular file beneath the source directory (never a symlink out of it). */
static int open_spec(const runner_opts *o, const char **name, cbl_error **err)
{
	const char *rel = o->buildspec ? o->buildspec : "buildspec.yml";
	*name = rel;
	if (o->buildspec_inline) {
		int fd = open(rel, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return cbl_error_set(err, CBL_EIO, "cannot read the inline buildspec: %s", strerror(errno));
		*name = "buildspec";
		return fd;
	}
	if (!o->source_dir)
		return cbl_error_set(err, CBL_EINVAL,
				     "a batch needs a local source directory (a git URL source runs its phases only)");
	size_t sl = strlen(o->source_dir);
	if (rel[0] == '/') {
		if (strncmp(rel, o->source_dir, sl) || rel[sl] != '/')
			return cbl_error_set(err, CBL_EINVAL, "buildspec %s is outside the source directory", rel);
		rel += sl + 1;
	}
	int sfd = open(o->source_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0)
		return cbl_error_set(err, CBL_ENOENT, "cannot open %s: %s", o->source_dir, strerror(errno));
	int fd = cbl_open_beneath_regular(sfd, rel, 0, NULL, err);
	close(sfd);
	return fd;
}

int runner_batch_load(spec_buildspec **spec, spec_batch_plan **plan, const runner_opts *o, cbl_error **err)
{
	return runner_batch_load_file(spec, plan, o, NULL, err);
}

int runner_batch_load_file(spec_buildspec **spec, spec_batch_plan **plan, const runner_opts *o, const char *spec_file,
			   cbl_error **err)
{
	const char *name = "buildspec";
	*spec = NULL;
	*plan = NULL;
	int fd = spec_file ? open(spec_file, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC) : open_spec(o, &name, err);
	if (spec_file && fd < 0)
		return cbl_error_set(err, CBL_EIO, "cannot read %s: %s", spec_file, strerror(errno));
	if (fd < 0)
		return fd;
	spec_parse_opts po = SPEC_PARSE_OPTS_INIT;
	po.strict = o->strict;
	int rc = spec_parse_fd(spec, NULL, fd, name, &po, err);
	close(fd);
	if (rc)
		return rc;
	rc = spec_batch_plan_new(plan, *spec, err);
	if (rc) {
		spec_buildspec_free(*spec);
		*spec = NULL;
	}
	return rc;
}

bool runner_batch_detect(const runner_opts *o)
{
	if (o->git_url)
		return false;
	const char *name = NULL;
	cbl_error *e = NULL;
	spec_buildspec *bs = NULL;
	int fd = open_spec(o, &name, &e);
	cbl_error_free(e);
	e = NULL;
	if (fd < 0)
		return false;
	int rc = spec_parse_fd(&bs, NULL, fd, name, NULL, &e);
	close(fd);
	cbl_error_free(e);
	bool yes = !rc && bs->batch.present && bs->batch.kind != SPEC_BATCH_NONE;
	spec_buildspec_free(bs);
	return yes;
}

static void push_env(runner_batch_mem *mem, const char *name, const char *value)
{
	cbl_strv_pushf(&mem->env, "%s=%s", name, value);
}

int runner_batch_build_opts(runner_opts *o, runner_batch_mem *mem, const char *identifier, const char *batch_arn,
			    const char *spec_file, cbl_error **err)
{
	spec_buildspec *bs = NULL;
	spec_batch_plan *plan = NULL;
	int rc = runner_batch_load_file(&bs, &plan, o, spec_file, err);
	if (rc)
		return rc;
	const spec_batch_build *t = spec_batch_plan_find(plan, identifier);
	if (!t) {
		cbl_buf ids = CBL_BUF_INIT;
		for (size_t i = 0; i < plan->n && i < 20; i++)
			cbl_buf_printf(&ids, "%s%s", i ? ", " : "", plan->builds[i].identifier);
		rc = cbl_error_set(err, CBL_ENOENT, "the batch has no build '%s' (its builds: %s%s)", identifier,
				   ids.ptr ? ids.ptr : "", plan->n > 20 ? ", ..." : "");
		cbl_buf_release(&ids);
		goto out;
	}
	if (t->buildspec) {
		if (o->buildspec_inline)
			o->buildspec_inline = false;
		cbl_strv_push(&mem->strings, t->buildspec);
		o->buildspec = mem->strings.v[mem->strings.n - 1];
	}
	if (t->image) {
		cbl_strv_push(&mem->strings, t->image);
		o->image = mem->strings.v[mem->strings.n - 1];
	}
	if (t->compute_type) {
		cbl_strv_push(&mem->strings, t->compute_type);
		o->compute_type = mem->strings.v[mem->strings.n - 1];
	}
	o->privileged |= t->privileged_mode;
	/* what a local build cannot do, said in its log */
	for (const char *const *n = o->notes; n && *n; n++)
		cbl_strv_push(&mem->notes, *n);
	if (t->type && strcmp(t->type, "LINUX_CONTAINER"))
		cbl_strv_pushf(&mem->notes, "batch build '%s': env.type %s is not applied; it runs as a "
					    "LINUX_CONTAINER on this machine",
			       t->identifier, t->type);
	if (t->debug_session)
		cbl_strv_pushf(&mem->notes, "batch build '%s': debug-session has no Session Manager locally; "
					    "the build runs without one",
			       t->identifier);
	if (mem->notes.n)
		o->notes = (const char *const *)mem->notes.v;
	for (const char *const *e = o->env_overrides; e && *e; e++)
		cbl_strv_push(&mem->env, *e);
	for (size_t i = 0; i < t->variables.n; i++)
		push_env(mem, t->variables.items[i].key, t->variables.items[i].value);
	push_env(mem, "CODEBUILD_BATCH_BUILD_IDENTIFIER", t->identifier);
	if (t->shard) {
		char num[16], count[16];
		snprintf(num, sizeof(num), "%d", t->shard);
		snprintf(count, sizeof(count), "%d", plan->shards);
		push_env(mem, "CODEBUILD_BATCH_SHARD_NUMBER", num);
		push_env(mem, "CODEBUILD_BATCH_SHARD_COUNT", count);
	}
	o->env_overrides = (const char *const *)mem->env.v;
	o->batch_member = true;
	if (batch_arn) {
		cbl_strv_push(&mem->strings, batch_arn);
		o->batch_arn = mem->strings.v[mem->strings.n - 1];
	}
out:
	spec_batch_plan_free(plan);
	spec_buildspec_free(bs);
	return rc;
}

void runner_batch_mem_release(runner_batch_mem *mem)
{
	cbl_strv_release(&mem->strings);
	cbl_strv_release(&mem->env);
	cbl_strv_release(&mem->notes);
}
