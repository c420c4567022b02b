/* runner/build.c - a build object: its identity, inputs and layout from the options (runner_build_new), and its end (runner_build_free). */
#include "runner/runner_internal.h"
#include "cache/cache.h"
#include "sandbox/sandbox.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/time.h"
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/array.h"

#include "util/banned.h"

static int check_assignments(cbl_strv *out, const char *const *list, cbl_error **err)
{
	for (const char *const *e = list; e && *e; e++) {
		if (!strchr(*e, '=') || **e == '=')
			return cbl_error_set(err, CBL_EINVAL, "invalid environment variable '%s' (expected NAME=VALUE)", *e);
		cbl_strv_push(out, *e);
	}
	return 0;
}

static int check_secret_refs(cbl_strv *out, const char *const *list, cbl_error **err)
{
	for (const char *const *e = list; e && *e; e++) {
		if (((*e)[0] != 'P' && (*e)[0] != 'S') || (*e)[1] != ' ' || !strchr(*e + 2, '=') || (*e)[2] == '=')
			return cbl_error_set(err, CBL_EINVAL, "invalid secret variable '%s' (expected P|S NAME=REF)", *e);
		cbl_strv_push(out, *e);
	}
	return 0;
}

/* The primary source (a directory or a git URL) and the buildspec's path. */
static int init_source(runner_build *b, const runner_opts *opts, cbl_error **err)
{
	b->src.clone_depth = opts->clone_depth;
	b->src.fetch_submodules = opts->fetch_submodules;
	if (opts->git_url) {
		b->src.git_url = cbl_xstrdup(opts->git_url);
		if (opts->git_tracked_only || opts->source_mode == RUNNER_SOURCE_MOUNT)
			return cbl_error_set(err, CBL_EINVAL, "--git-tracked-only and --source-mode mount apply to a "
							      "local directory, not to a git URL");
	} else if (!opts->source_dir) {
		return cbl_error_set(err, CBL_EINVAL, "no source directory given");
	} else {
		int rc = cbl_realpath(opts->source_dir, &b->src.source_dir, err);
		if (rc)
			return rc;
		struct stat st;
		if (stat(b->src.source_dir, &st) < 0 || !S_ISDIR(st.st_mode))
			return cbl_error_set(err, CBL_EINVAL, "source '%s' is not a directory", opts->source_dir);
	}
	const char *bs = opts->buildspec ? opts->buildspec : "buildspec.yml";
	b->src.buildspec_arg = cbl_xstrdup(bs);
	b->src.buildspec_inline = opts->buildspec && opts->buildspec_inline;
	if (b->src.source_dir)
		b->src.buildspec_path = bs[0] == '/' ? cbl_xstrdup(bs) : cbl_path_join(b->src.source_dir, bs);
	const char *slash = strrchr(bs, '/');
	b->src.buildspec_display = cbl_xstrdup(opts->buildspec ? bs : (slash ? slash + 1 : bs));
	return 0;
}

/* The project's name: given, or named after the repository or directory. */
static int init_project(runner_build *b, const runner_opts *opts, cbl_error **err)
{
	if (opts->project_name) {
		if (!store_project_name_valid(opts->project_name))
			return cbl_error_set(err, CBL_EINVAL,
					     "invalid project name '%s' (2-255 letters, digits, '-' or '_', "
					     "starting with a letter or digit)",
					     opts->project_name);
		b->ident.project = cbl_xstrdup(opts->project_name);
	} else if (b->src.git_url) {
		/* named after the repository: .../org/app.git -> app */
		char *u = cbl_xstrdup(b->src.git_url);
		size_t ul = strlen(u);
		while (ul && u[ul - 1] == '/')
			u[--ul] = '\0';
		if (ul > 4 && !strcmp(u + ul - 4, ".git"))
			u[ul - 4] = '\0';
		char *base = strrchr(u, '/');
		char *colon = strrchr(u, ':');
		const char *name = base ? base + 1 : colon ? colon + 1 : u;
		b->ident.project = store_project_name_from_dir(name);
		free(u);
	} else {
		b->ident.project = store_project_name_from_dir(b->src.source_dir);
	}
	return 0;
}

/* CODEBUILD_INITIATOR's one rule, root or not: the name of the user who
 * started the build, as AWS's local agent passes $USER (the service gives
 * the IAM user's or role's name): $USER, else the password database's
 * name of the real uid (root's builds say "root"), else "uid-N". */
char *runner_invoking_user(void)
{
	const char *user = getenv("USER");
	if (user && *user)
		return cbl_xstrdup(user);
	char buf[4096];
	struct passwd pw, *pwp = NULL;
	if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &pwp) == 0 && pwp && *pw.pw_name)
		return cbl_xstrdup(pw.pw_name);
	return cbl_xasprintf("uid-%lu", (unsigned long)getuid());
}

/* The environment the build runs in: image, compute type, isolation. */
static int init_environment(runner_build *b, const runner_opts *opts, cbl_error **err)
{
	b->cfg.image = cbl_xstrdup(opts->image ? opts->image : "host");
	if (!runner_image_is_host(b->cfg.image) && opts->sandbox == RUNNER_SANDBOX_NONE)
		return cbl_error_set(err, CBL_EINVAL, "image '%s' needs the sandbox: its root filesystem is what "
						      "the build runs on (--sandbox none runs on this machine)",
				     b->cfg.image);
	const runner_compute *ct = runner_compute_find(opts->compute_type ? opts->compute_type
									  : "BUILD_GENERAL1_SMALL");
	if (!ct)
		/* an API request's value is one of the model's (store_api_validate):
		 * what is left are the service's own (ATTRIBUTE_BASED_COMPUTE,
		 * CUSTOM_INSTANCE_TYPE: fleets and attributes it provisions) */
		return cbl_error_set(err, CBL_EINVAL,
				     "compute type '%s' is not supported by codebuild-local (supported: %s)",
				     opts->compute_type, runner_compute_names());
	b->cfg.compute_type = cbl_xstrdup(ct->name);
	b->cfg.compute_explicit = opts->compute_type != NULL;
	b->cfg.sandbox_mode = opts->sandbox;
	b->src.source_mode = opts->source_mode;
	b->src.include_ignored = opts->include_ignored;
	b->cfg.network = opts->network;
	b->cfg.vpc_config = opts->vpc_config;
	b->cfg.privileged = opts->privileged;
	b->cfg.log_group = opts->log_group ? cbl_xstrdup(opts->log_group) : NULL;
	b->cfg.log_stream = opts->log_stream ? cbl_xstrdup(opts->log_stream) : NULL;
	b->cfg.record_base = opts->record_base ? json_deep_copy(opts->record_base) : NULL;
	b->debug = opts->debug;
	b->ckpt.take = opts->checkpoints; /* a restored build keeps its own too: flattened (runner/checkpoint.c) */
	b->ckpt.with_secrets = opts->checkpoint_secrets;
	b->ckpt.from_phase = opts->from_phase;
	b->ckpt.src_mount = -1;
	b->debug_failures = opts->debug && opts->debug_failures;
	if ((unsigned)opts->network > RUNNER_NETWORK_NONE)
		return cbl_error_set(err, CBL_EINVAL, "unknown network mode %d", (int)opts->network);
	if (b->cfg.network == RUNNER_NETWORK_NONE && b->cfg.sandbox_mode == RUNNER_SANDBOX_NONE)
		return cbl_error_set(err, CBL_EINVAL, "--network none needs the sandbox (it cannot be combined "
						      "with --sandbox none)");
	b->ident.region = cbl_xstrdup(opts->region ? opts->region : "us-east-1");
	b->ident.account = cbl_xstrdup(opts->account_id ? opts->account_id : "000000000000");
	b->ident.initiator = opts->initiator ? cbl_xstrdup(opts->initiator) : runner_invoking_user();
	b->cfg.source_version = opts->source_version ? cbl_xstrdup(opts->source_version) : NULL;
	b->cfg.secrets_file = opts->secrets_file ? cbl_xstrdup(opts->secrets_file) : NULL;
	b->cfg.batch_arn = opts->batch_arn ? cbl_xstrdup(opts->batch_arn) : NULL;
	b->cfg.batch_member = opts->batch_member;
	if (b->cfg.batch_arn || b->cfg.batch_member) {
		/* a batch's launch record names the batch's stream: each build of
		 * it logs to its own (<uuid> under the group) */
		free(b->cfg.log_stream);
		b->cfg.log_stream = NULL;
	}
	for (const char *const *n = opts->notes; n && *n; n++)
		cbl_strv_push(&b->cfg.notes, *n);
	b->cfg.timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 60 * 60000;
	b->cfg.strict = opts->strict;
	b->cfg.host_runtimes = opts->host_runtimes;
	b->log.on_event = opts->on_event;
	b->log.payload = opts->payload;
	int rc = check_assignments(&b->vars.overrides, opts->env_overrides, err);
	if (!rc)
		rc = check_assignments(&b->vars.project_env, opts->project_env, err);
	if (!rc)
		rc = check_assignments(&b->vars.webhook_env, opts->webhook_env, err);
	if (!rc)
		rc = check_secret_refs(&b->vars.project_secrets, opts->project_secrets, err);
	if (!rc)
		rc = check_secret_refs(&b->vars.override_secrets, opts->override_secrets, err);
	return rc ? rc : runner_binds_init(b, opts->mounts, err);
}

/* Where results go: artifacts, reports, the cache and the source cache. */
static void init_outputs(runner_build *b, const runner_opts *opts)
{
	b->up.packaging_none = opts->packaging_none;
	b->up.project_artifacts = opts->project_artifacts;
	b->up.override_artifact_name = opts->override_artifact_name;
	b->up.project_artifact_name = opts->project_artifact_name ? cbl_xstrdup(opts->project_artifact_name) : NULL;
	b->up.reports_dir = opts->reports_dir ? cbl_xstrdup(opts->reports_dir) : NULL;
	b->up.artifacts_dir = opts->artifacts_dir ? cbl_xstrdup(opts->artifacts_dir) : NULL;
	b->cache.off = opts->no_cache || opts->no_buildspec_cache;
	b->cache.off_why = opts->no_cache ? "--no-cache"
					 : "the project's cache type (NO_CACHE, or LOCAL without LOCAL_CUSTOM_CACHE)";
	b->img.insecure_registries = opts->insecure_registries;
	b->cache.dir = opts->cache_dir ? cbl_xstrdup(opts->cache_dir) : NULL;
	if (opts->source_cache && !opts->no_cache) {
		char *root = b->cache.dir ? cbl_xstrdup(b->cache.dir) : cache_default_dir(b->ident.home);
		b->src.source_cache_dir = cbl_path_join(root, "git");
		free(root);
	}
}

/* The build's id, ARN, number and directory in the state directory. */
static int init_identity(runner_build *b, const runner_opts *opts, cbl_error **err)
{
	char uuid[37];
	if (opts->uuid) {
		/* a launcher's (StartBuild): it already answered with this id */
		size_t ul = strlen(opts->uuid);
		if (ul != 36 || strspn(opts->uuid, "0123456789abcdef-") != ul)
			return cbl_error_set(err, CBL_EINVAL, "invalid build uuid '%s'", opts->uuid);
		snprintf(uuid, sizeof(uuid), "%s", opts->uuid);
	} else {
		cbl_uuid4(uuid);
	}
	b->ident.uuid = cbl_xstrdup(uuid);
	b->ident.id = cbl_xasprintf("%s:%s", b->ident.project, uuid);
	b->ident.arn = cbl_xasprintf("arn:aws:codebuild:%s:%s:build/%s", b->ident.region, b->ident.account, b->ident.id);
	runner_sweep_trash(b->ident.home);
	int rc = 0;
	if (opts->number > 0)
		b->ident.number = opts->number;
	else if ((rc = store_next_build_number(b->ident.home, b->ident.project, &b->ident.number, err)))
		return rc;
	rc = store_build_dir_create(b->ident.home, b->ident.project, uuid, &b->ident.dir, err);
	if (rc)
		return rc;
	b->ident.log_path = cbl_path_join(b->ident.dir, "build.log");
	b->ident.tmpdir = cbl_path_join(b->ident.dir, "tmp");
	if (!b->up.artifacts_dir)
		b->up.artifacts_dir = cbl_path_join(b->ident.dir, "artifacts");
	return 0;
}

/* Where the build's source lives on the host and as the build sees it. */
static void init_layout(runner_build *b, const runner_opts *opts)
{
	if (b->src.git_url) {
		/* the clone is private already: no snapshot needed */
		b->src.git_parent = cbl_path_join(b->ident.dir, "git");
		b->src.source_dir = cbl_path_join(b->src.git_parent, "src");
		b->src.buildspec_path = b->src.buildspec_arg[0] == '/' ? cbl_xstrdup(b->src.buildspec_arg)
							       : cbl_path_join(b->src.source_dir, b->src.buildspec_arg);
	} else if (opts->git_tracked_only) {
		b->src.tracked_dir = cbl_path_join(b->ident.dir, "tracked"); /* private already: no snapshot needed */
	} else if (b->src.source_mode == RUNNER_SOURCE_SNAPSHOT && b->cfg.sandbox_mode == RUNNER_SANDBOX_NONE) {
		b->src.src_copy = cbl_path_join(b->ident.dir, "src");
	} else if (b->src.source_mode == RUNNER_SOURCE_SNAPSHOT && !sandbox_can_overlay()) {
		/* not root: the sandbox overlays the tree in its user namespace
		 * (provision.c), as constant in cost as root's overlay */
		b->src.sb_overlay = true;
	}
	const char *host = b->src.tracked_dir ? b->src.tracked_dir : b->src.src_copy ? b->src.src_copy : b->src.source_dir;
	if (b->cfg.sandbox_mode == RUNNER_SANDBOX_NAMESPACES) {
		/* the service's shape: a random number of 2 to 10 digits [obs] */
		uint32_t r = 0;
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint32_t)cbl_mono_us();
		b->src.src_inner = cbl_xasprintf("/codebuild/output/src%u/src", r % 4000000000u + 10);
		b->src.scratch = cbl_path_join(b->ident.dir, "sandbox");
	} else {
		b->src.src_inner = cbl_xstrdup(host);
	}
	b->src.view = cbl_xstrdup(host);
}

int runner_build_new(runner_build **out, const runner_opts *opts, cbl_error **err)
{
	runner_build *b = cbl_xcalloc(1, sizeof(*b));
	int rc = 0;
	b->log.fd = -1;
	b->img.hold = -1;
	b->stop_pipe[0] = b->stop_pipe[1] = -1;
	b->out_pipe[0] = b->out_pipe[1] = -1;
	b->src.view_fd = -1;
	b->status = RUNNER_STATUS_IN_PROGRESS;
	b->ident.home = opts->home ? cbl_xstrdup(opts->home) : store_default_home();
	if ((rc = init_source(b, opts, err)) || (rc = init_project(b, opts, err)) ||
	    (rc = init_environment(b, opts, err)))
		goto fail;
	init_outputs(b, opts);
	if ((rc = init_identity(b, opts, err)))
		goto fail;
	init_layout(b, opts);
	if (opts->n_secondary && (rc = runner_sources_init(b, opts, err)))
		goto fail;
	if (pipe2(b->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot create pipe");
		goto fail;
	}
	*out = b;
	return 0;
fail:
	runner_build_free(b);
	return rc;
}

void runner_build_stop(runner_build *b)
{
	b->stop_requested = 1;
	if (b->stop_pipe[1] >= 0) {
		char c = 's';
		ssize_t r = write(b->stop_pipe[1], &c, 1);
		(void)r;
	}
}

runner_status runner_build_status(const runner_build *b) { return b->status; }
json_t *runner_build_reports(const runner_build *b) { return b->up.reports; }
bool runner_build_spec_invalid(const runner_build *b) { return b->spec_invalid; }
const spec_diags *runner_build_diags(const runner_build *b) { return &b->diags; }
const char *runner_build_id(const runner_build *b) { return b->ident.id; }
const char *runner_build_dir(const runner_build *b) { return b->ident.dir; }
const char *runner_build_log_path(const runner_build *b) { return b->ident.log_path; }


void runner_build_free(runner_build *b)
{
	if (!b)
		return;
	runner_debug_close(b);
	runner_checkpoint_release(b);
	if (b->shell_ready)
		runner_shell_release(&b->sh);
	for (int i = 0; i < RUNNER_PHASE_COUNT; i++) {
		runner_outcome_release(&b->phases[i].ctx);
	}
	char **strs[] = {&b->ident.home, &b->ident.project, &b->ident.uuid, &b->ident.id, &b->ident.arn, &b->ident.dir, &b->ident.log_path,
			 &b->ident.tmpdir, &b->src.source_dir, &b->src.buildspec_path, &b->src.buildspec_display,
			 &b->cfg.image, &b->cfg.compute_type, &b->ident.region, &b->ident.account, &b->ident.initiator,
			 &b->cfg.source_version, &b->cfg.secrets_file, &b->cfg.batch_arn, &b->src.resolved_version, &b->src.repo_url,
			 &b->up.artifacts_dir, &b->up.reports_dir, &b->up.project_artifact_name, &b->src.src_inner, &b->src.scratch, &b->src.src_copy,
			 &b->src.view, &b->src.tracked_dir, &b->src.git_url, &b->src.git_parent, &b->src.buildspec_arg,
			 &b->src.source_cache_dir, &b->cfg.log_group, &b->cfg.log_stream};
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
		free(*strs[i]);
	json_decref(b->cfg.record_base);
	cbl_strv_release(&b->vars.overrides);
	cbl_strv_release(&b->cfg.notes);
	cbl_strv_release(&b->vars.project_env);
	cbl_strv_release(&b->vars.webhook_env);
	cbl_strv_release(&b->vars.project_secrets);
	cbl_strv_release(&b->vars.override_secrets);
	cbl_strv_release(&b->vars.env);
	cbl_strv_release(&b->vars.exported_names);
	cbl_strv_release(&b->vars.exported_values);
	cbl_strv_release(&b->vars.secret_names);
	spec_diags_release(&b->diags);
	spec_buildspec_free(b->spec);
	runner_mask_release(&b->log.mask);
	if (b->log.fd >= 0)
		close(b->log.fd);
	sandbox_free(b->sandbox);
	runner_sandbox_views_close(b);
	for (int i = 0; i < 2; i++)
		if (b->out_pipe[i] >= 0)
			close(b->out_pipe[i]);
	if (b->stop_pipe[0] >= 0)
		close(b->stop_pipe[0]);
	if (b->stop_pipe[1] >= 0)
		close(b->stop_pipe[1]);
	json_decref(b->record);
	json_decref(b->up.artifacts_rec);
	json_decref(b->up.secondary_recs);
	json_decref(b->up.reports);
	cbl_strv_release(&b->up.report_arns);
	cbl_strv_release(&b->src.sandbox_binds);
	runner_sources_free(b);
	runner_binds_free(b);
	runner_image_free(b);
	runner_cache_free(b);
	free(b);
}
