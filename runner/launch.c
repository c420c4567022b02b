/* runner/launch.c - StartBuild / StopBuild / RetryBuild (see launch.h). */
#include "runner/launch.h"
#include "runner/runner_internal.h"
#include "store/store.h"
#include "store/api.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/strv.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/array.h"

#include "util/json.h"
#include "util/spawn.h"

#include "util/banned.h"

extern char **environ;


typedef struct queued {
	char *id, *dir;
	cbl_strv argv;
	struct queued *next;
} queued;

struct runner_launcher {
	char *home, *exe, *region, *account, *secrets_file;
	int max_running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int running;
	queued *head, *tail;
	cbl_strv adopted; /* directories of builds a previous server started, still running */
	bool resume;
	pid_t *batches;      /* batch runners not reaped yet (they hold no slot) */
	size_t nbatches;
	bool stopping;
	bool reaper_started;
	pthread_t reaper;
	/* StartBuild's idempotency tokens: token -> {"request", "id", "at"} */
	pthread_mutex_t idem_mu;
	json_t *tokens;
};

#define IDEMPOTENCY_MS (5 * 60 * 1000) /* a token is valid for 5 minutes (the model) */

/* ------------------------------------------------------------ pidfile --- */

void runner_write_pidfile(const char *build_dir)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "%ld %lld\n", (long)getpid(), cbl_proc_start_time(getpid()));
	char *path = cbl_path_join(build_dir, "runner.pid");
	cbl_write_file_atomic(path, line, (size_t)n, 0600, false, NULL);
	free(path);
}

/* The runner of a build if it still runs, else 0. */
static pid_t live_runner(const char *build_dir)
{
	char *path = cbl_path_join(build_dir, "runner.pid"), *data = NULL;
	size_t len = 0;
	pid_t pid = 0;
	if (cbl_read_file(path, 4096, &data, &len, NULL) == 0) {
		long p = 0;
		long long st = 0;
		if (sscanf(data, "%ld %lld", &p, &st) == 2 && p > 1 && cbl_proc_start_time((pid_t)p) == st)
			pid = (pid_t)p;
	}
	free(data);
	free(path);
	return pid;
}

/* ----------------------------------------------------------- requests --- */

static int opt_str(const json_t *req, const char *key, const char **out, cbl_error **err)
{
	json_t *v = json_object_get(req, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return cbl_error_set(err, CBL_EINVAL, "%s must be a string", key);
	*out = json_string_value(v);
	return 0;
}

static int opt_int(const json_t *req, const char *key, long long lo, long long hi, long long *out,
		   cbl_error **err)
{
	json_t *v = json_object_get(req, key);
	*out = -1;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return cbl_error_set(err, CBL_EINVAL, "%s must be an integer from %lld to %lld", key, lo, hi);
	*out = json_integer_value(v);
	return 0;
}

/* NAME=VALUE entries from a list of EnvironmentVariable; PARAMETER_STORE and
 * SECRETS_MANAGER ones go to *secrets as "P NAME=REF" / "S NAME=REF" (the
 * runner resolves them from the secrets file). */
static int env_list(const json_t *list, const char *what, cbl_strv *out, cbl_strv *secrets, cbl_error **err)
{
	if (!list || json_is_null(list))
		return 0;
	if (!json_is_array(list))
		return cbl_error_set(err, CBL_EINVAL, "%s must be a list", what);
	size_t i;
	json_t *ev;
	json_array_foreach(list, i, ev) {
		const char *name = cbl_json_str_nonempty(ev, "name");
		json_t *value = json_object_get(ev, "value");
		const char *type = cbl_json_str_nonempty(ev, "type");
		if (!name || !json_is_string(value))
			return cbl_error_set(err, CBL_EINVAL, "%s[%zu] needs a name and a value", what, i);
		if (strchr(name, '='))
			return cbl_error_set(err, CBL_EINVAL, "%s[%zu]: invalid name '%s'", what, i, name);
		if (type && (!strcmp(type, "PARAMETER_STORE") || !strcmp(type, "SECRETS_MANAGER")))
			cbl_strv_push_take(secrets, cbl_xasprintf("%c %s=%s", type[0], name, json_string_value(value)));
		else if (type && strcmp(type, "PLAINTEXT"))
			return cbl_error_set(err, CBL_EINVAL, "%s '%s': type %s is not one of PLAINTEXT, "
							      "PARAMETER_STORE, SECRETS_MANAGER", what, name, type);
		else
			cbl_strv_push_take(out, cbl_xasprintf("%s=%s", name, json_string_value(value)));
	}
	return 0;
}

bool runner_source_is_url(const char *s)
{
	return strstr(s, "://") || (strchr(s, '@') && strchr(s, ':') && access(s, F_OK) < 0);
}

static bool is_git_type(const char *t)
{
	static const char *const git[] = {"GITHUB", "GITHUB_ENTERPRISE", "GITLAB", "GITLAB_SELF_MANAGED",
					  "BITBUCKET", "CODECOMMIT"};
	for (size_t i = 0; i < ARRAY_SIZE(git); i++)
		if (!strcmp(t, git[i]))
			return true;
	return false;
}

static const char *strip_file_url(const char *loc)
{
	return !strncmp(loc, "file://", 7) ? loc + 7 : loc;
}

/* An inline buildspec (YAML text) rather than a path in the source. */
static bool inline_buildspec(const char *bs)
{
	return strchr(bs, '\n') || !strncmp(bs, "version:", 8);
}

/* The state of one mapping, between its steps. */
typedef struct launch_map {
	runner_opts *o;
	runner_launch_mem *mem;
	const json_t *proj, *req, *src;
	const runner_launch_info *info;
	const char *type, *location; /* the primary source, overrides applied */
	bool git;
} launch_map;

static const char *keep(launch_map *m, char *s)
{
	cbl_strv_push_take(&m->mem->strings, s);
	return s;
}

/* The primary source's type and location, and the buildspec. */
static int map_source(launch_map *m, cbl_error **err)
{
	const char *buildspec = cbl_json_str_nonempty(m->src, "buildspec"), *s = NULL;
	int rc;
	m->type = cbl_json_str_nonempty(m->src, "type") ? cbl_json_str_nonempty(m->src, "type") : "NO_SOURCE";
	m->location = cbl_json_str_nonempty(m->src, "location");
	if ((rc = opt_str(m->req, "sourceTypeOverride", &s, err)))
		return rc;
	if (s)
		m->type = s;
	if ((rc = opt_str(m->req, "sourceLocationOverride", &s, err)))
		return rc;
	if (s)
		m->location = s;
	if ((rc = opt_str(m->req, "buildspecOverride", &s, err)))
		return rc;
	if (s && *s)
		buildspec = s;
	m->git = is_git_type(m->type);
	if (!m->git && strcmp(m->type, "NO_SOURCE"))
		return cbl_error_set(err, CBL_EINVAL, "source type %s cannot be built locally (git types and "
						      "NO_SOURCE can)", m->type);
	if (m->git && !m->location)
		return cbl_error_set(err, CBL_EINVAL, "source type %s needs a location", m->type);
	if (m->git && !runner_source_is_url(m->location))
		return cbl_error_set(err, CBL_EINVAL, "source type %s needs a git URL (https://, ssh://, "
						      "git@host:path or file://), got '%s'", m->type, m->location);
	if (buildspec && inline_buildspec(buildspec)) {
		const char *path = keep(m, cbl_path_join(m->info->dir, "buildspec-inline.yml"));
		if ((rc = cbl_write_file_atomic(path, buildspec, strlen(buildspec), 0600, false, err)))
			return rc;
		m->o->buildspec = path;
		m->o->buildspec_inline = true;
	} else if (buildspec) {
		/* a path: read inside the source (runner/buildspec.c), never on the host */
		m->o->buildspec = buildspec;
	} else if (!m->git && !m->location) {
		return cbl_error_set(err, CBL_EINVAL, "a NO_SOURCE project needs a buildspec (inline YAML in "
						      "source.buildspec or buildspecOverride)");
	}
	return 0;
}

/* Image, compute type (checked by runner_build_new), environment variables. */
static int map_environment(launch_map *m, cbl_error **err)
{
	const json_t *env = json_object_get(m->proj, "environment");
	const char *s = NULL;
	int rc;
	m->o->image = cbl_json_str_nonempty(env, "image");
	m->o->compute_type = cbl_json_str_nonempty(env, "computeType");
	if ((rc = opt_str(m->req, "imageOverride", &s, err)))
		return rc;
	if (s)
		m->o->image = s;
	if ((rc = opt_str(m->req, "computeTypeOverride", &s, err)))
		return rc;
	if (s)
		m->o->compute_type = s;
	/* privilegedMode, and StartBuild's privilegedModeOverride beating it */
	json_t *priv = json_object_get(m->req, "privilegedModeOverride");
	if (priv && !json_is_null(priv) && !json_is_boolean(priv))
		return cbl_error_set(err, CBL_EINVAL, "privilegedModeOverride must be a boolean");
	if (!json_is_boolean(priv))
		priv = json_object_get(env, "privilegedMode");
	m->o->privileged = json_is_true(priv);
	/* debugSessionEnabled: codebuild-breakpoint pauses the build (attach /
	 * exec enter it, codebuild-resume goes on), as a Session Manager
	 * session would */
	json_t *dbg = json_object_get(m->req, "debugSessionEnabled");
	if (dbg && !json_is_null(dbg) && !json_is_boolean(dbg))
		return cbl_error_set(err, CBL_EINVAL, "debugSessionEnabled must be a boolean");
	m->o->debug = json_is_true(dbg);
	if ((rc = env_list(json_object_get(env, "environmentVariables"), "environment variable",
			   &m->mem->project_env, &m->mem->project_secrets, err)) ||
	    (rc = env_list(json_object_get(m->req, "environmentVariablesOverride"),
			   "environmentVariablesOverride", &m->mem->env, &m->mem->override_secrets, err)))
		return rc;
	return 0;
}

static int map_timeout(launch_map *m, cbl_error **err)
{
	json_t *t = json_object_get(m->proj, "timeoutInMinutes");
	long long minutes = json_is_integer(t) ? json_integer_value(t) : 60, n = -1;
	int rc = opt_int(m->req, "timeoutInMinutesOverride", 5, 2160, &n, err);
	if (rc)
		return rc;
	if (n > 0)
		minutes = n;
	if (minutes < 1 || minutes > 1000000000)
		return cbl_error_set(err, CBL_EINVAL, "timeoutInMinutes must be a positive number of minutes, "
						      "got %lld", minutes);
	m->o->timeout_ms = (int64_t)minutes * 60000;
	return 0;
}

/* A git primary: the version, clone depth and submodules. */
static int map_git(launch_map *m, cbl_error **err)
{
	const char *version = cbl_json_str_nonempty(m->proj, "sourceVersion"), *s = NULL;
	long long n = -1;
	int rc;
	if (!m->git)
		return 0;
	if ((rc = opt_str(m->req, "sourceVersion", &s, err)))
		return rc;
	if (s && *s)
		version = s;
	m->o->source_version = version;
	json_t *d = json_object_get(m->src, "gitCloneDepth");
	long long depth = json_is_integer(d) ? json_integer_value(d) : 1;
	if ((rc = opt_int(m->req, "gitCloneDepthOverride", 0, 1000000, &n, err)))
		return rc;
	if (n >= 0)
		depth = n;
	if (depth < 0 || depth > 1000000)
		return cbl_error_set(err, CBL_EINVAL, "gitCloneDepth must be from 0 to 1000000 (0 = full "
						      "history), got %lld", depth);
	m->o->clone_depth = (int)depth;
	json_t *sub = json_object_get(m->req, "gitSubmodulesConfigOverride");
	if (!json_is_object(sub))
		sub = json_object_get(m->src, "gitSubmodulesConfig");
	m->o->fetch_submodules = json_is_true(json_object_get(sub, "fetchSubmodules"));
	return 0;
}

/* A secondary source's version: the request's override, else the project's. */
static const char *secondary_version(const launch_map *m, const char *id)
{
	const json_t *lists[] = {json_object_get(m->req, "secondarySourcesVersionOverride"),
				 json_object_get(m->proj, "secondarySourceVersions")};
	const char *ver = NULL;
	for (int k = 0; k < 2 && !ver; k++) {
		size_t j;
		json_t *v;
		json_array_foreach(lists[k], j, v) {
			const char *vid = cbl_json_str_nonempty(v, "sourceIdentifier");
			if (vid && !strcmp(vid, id))
				ver = cbl_json_str_nonempty(v, "sourceVersion");
		}
	}
	return ver;
}

/* Git secondary sources are cloned (at their version); the others are
 * directories (file:// or a path). */
static int map_secondary(launch_map *m, cbl_error **err)
{
	json_t *secs = json_object_get(m->proj, "secondarySources"), *sec;
	size_t n = json_array_size(secs), i;
	if (!n)
		return 0;
	m->mem->secondary = cbl_xcalloc(n, sizeof(*m->mem->secondary));
	json_array_foreach(secs, i, sec) {
		runner_secondary_source *s = &m->mem->secondary[i];
		const char *id = cbl_json_str_nonempty(sec, "sourceIdentifier"), *loc = cbl_json_str_nonempty(sec, "location");
		const char *type = cbl_json_str_nonempty(sec, "type");
		if (!id || !loc)
			return cbl_error_set(err, CBL_EINVAL, "secondary source %zu needs a sourceIdentifier and a "
							      "location", i);
		s->id = id;
		if (type && is_git_type(type) && runner_source_is_url(loc)) {
			s->git_url = loc;
			s->version = secondary_version(m, id);
		} else {
			s->dir = strip_file_url(loc);
		}
	}
	m->o->secondary = m->mem->secondary;
	m->o->n_secondary = n;
	return 0;
}

/* The project's cache: NO_CACHE (the default) ignores the buildspec's cache
 * section, as the service does; S3 and LOCAL with LOCAL_CUSTOM_CACHE use the
 * local store; LOCAL_SOURCE_CACHE is the source cache. */
static void map_cache(launch_map *m)
{
	json_t *cache = json_object_get(m->proj, "cache"), *mode;
	const char *ctype = cbl_json_str_nonempty(cache, "type") ? cbl_json_str_nonempty(cache, "type") : "NO_CACHE";
	bool custom = !strcmp(ctype, "S3"), source = false;
	size_t i;
	if (!strcmp(ctype, "LOCAL")) {
		json_array_foreach(json_object_get(cache, "modes"), i, mode) {
			custom |= json_is_string(mode) && !strcmp(json_string_value(mode), "LOCAL_CUSTOM_CACHE");
			source |= json_is_string(mode) && !strcmp(json_string_value(mode), "LOCAL_SOURCE_CACHE");
		}
	}
	m->o->no_buildspec_cache = !custom;
	m->o->source_cache = source;
}

/* The network: a launched build gets the default (its own namespace, NAT);
 * the project's vpcConfig (subnets of a VPC) has nothing to map to locally
 * and is reported in the build's log as not applied.  StartBuild has no
 * network override. */
static void map_network(launch_map *m)
{
	json_t *vpc = json_object_get(m->proj, "vpcConfig");
	m->o->network = RUNNER_NETWORK_DEFAULT;
	m->o->vpc_config = json_is_object(vpc) && (cbl_json_str_nonempty(vpc, "vpcId") ||
						   json_array_size(json_object_get(vpc, "subnets")) ||
						   json_array_size(json_object_get(vpc, "securityGroupIds")));
}

/* The primary source itself: a git URL (file:///repo stays a URL: a clone,
 * as for a repository), a directory, or an empty one. */
static int map_location(launch_map *m, cbl_error **err)
{
	if (m->git) {
		m->o->git_url = m->location;
	} else if (m->location) {
		m->o->source_dir = strip_file_url(m->location);
	} else {
		const char *empty = keep(m, cbl_path_join(m->info->dir, "nosource"));
		int rc = cbl_mkdir_p(empty, 0755, err);
		if (rc)
			return rc;
		m->o->source_dir = empty;
	}
	/* CodeBuild's default git_clone_depth for git secondaries of a
	 * directory primary */
	for (size_t i = 0; !m->git && i < m->o->n_secondary; i++)
		if (m->o->secondary[i].git_url)
			m->o->clone_depth = 1;
	return 0;
}

int runner_launch_opts(runner_opts *out, runner_launch_mem *mem, const json_t *project,
		       const json_t *request, const runner_launch_info *info, cbl_error **err)
{
	static const runner_opts init = RUNNER_OPTS_INIT;
	*out = init;
	if (!json_is_object(project))
		return cbl_error_set(err, CBL_EINVAL, "the project must be a JSON object");
	if (request && !json_is_object(request))
		return cbl_error_set(err, CBL_EINVAL, "the request must be a JSON object");
	if (!info || !info->dir)
		return cbl_error_set(err, CBL_EINVAL, "a launched build needs its directory");
	launch_map m = {.o = out, .mem = mem, .proj = project, .req = request, .info = info,
			.src = json_object_get(project, "source")};
	int rc;
	if ((rc = map_source(&m, err)) || (rc = map_environment(&m, err)) || (rc = map_timeout(&m, err)) ||
	    (rc = map_git(&m, err)) || (rc = map_secondary(&m, err)))
		return rc;
	map_cache(&m);
	map_network(&m);
	const char *packaging = cbl_json_str_nonempty(json_object_get(project, "artifacts"), "packaging");
	out->packaging_none = packaging && !strcmp(packaging, "NONE");
	const json_t *pa = json_object_get(project, "artifacts");
	out->project_artifacts = true;
	out->override_artifact_name = json_is_true(json_object_get(pa, "overrideArtifactName"));
	out->project_artifact_name = cbl_json_str_nonempty(pa, "name");
	if (!(out->project_name = cbl_json_str_nonempty(project, "name")))
		return cbl_error_set(err, CBL_EINVAL, "the project has no name");
	if ((rc = map_location(&m, err)))
		return rc;
	out->env_overrides = (const char *const *)mem->env.v;
	out->project_env = (const char *const *)mem->project_env.v;
	out->project_secrets = (const char *const *)mem->project_secrets.v;
	out->override_secrets = (const char *const *)mem->override_secrets.v;
	out->secrets_file = info->secrets_file;
	json_decref(mem->record);
	mem->record = runner_launch_record(project, request, info);
	out->record_base = mem->record;
	const json_t *logs = json_object_get(mem->record, "logs");
	out->log_group = cbl_json_str_nonempty(logs, "groupName");
	out->log_stream = cbl_json_str_nonempty(logs, "streamName");
	out->account_id = info->account;
	out->initiator = info->initiator;
	out->region = info->region;
	out->home = info->home;
	out->uuid = info->uuid;
	out->number = info->number;
	return 0;
}

void runner_launch_mem_release(runner_launch_mem *mem)
{
	json_decref(mem->doc);
	json_decref(mem->record);
	cbl_strv_release(&mem->strings);
	cbl_strv_release(&mem->env);
	cbl_strv_release(&mem->project_env);
	cbl_strv_release(&mem->project_secrets);
	cbl_strv_release(&mem->override_secrets);
	free(mem->secondary);
	*mem = (runner_launch_mem)RUNNER_LAUNCH_MEM_INIT;
}

int runner_launch_save(const json_t *project, const json_t *request, const runner_launch_info *info,
		       cbl_error **err)
{
	json_t *doc = json_object();
	json_object_set_new(doc, "project", json_deep_copy(project));
	json_object_set_new(doc, "request", request ? json_deep_copy(request) : json_object());
	if (info->uuid)
		json_object_set_new(doc, "buildUuid", json_string(info->uuid));
	if (info->number > 0)
		json_object_set_new(doc, "buildNumber", json_integer(info->number));
	if (info->region)
		json_object_set_new(doc, "region", json_string(info->region));
	if (info->account)
		json_object_set_new(doc, "account", json_string(info->account));
	if (info->initiator)
		json_object_set_new(doc, "initiator", json_string(info->initiator));
	if (info->secrets_file)
		json_object_set_new(doc, "secretsFile", json_string(info->secrets_file));
	if (info->home)
		json_object_set_new(doc, "home", json_string(info->home));
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	char *path = cbl_path_join(info->dir, "launch.json");
	int rc = text ? cbl_write_file_atomic(path, text, strlen(text), 0600, false, err)
		      : cbl_error_set(err, CBL_EINVAL, "the project or request cannot be written as JSON");
	free(path);
	free(text);
	json_decref(doc);
	return rc;
}

int runner_launch_load(runner_opts *out, runner_launch_mem *mem, const char *dir, cbl_error **err)
{
	static const runner_opts init = RUNNER_OPTS_INIT;
	char *path = cbl_path_join(dir, "launch.json");
	json_error_t je;
	*out = init;
	json_t *doc = json_load_file(path, 0, &je);
	free(path);
	if (!doc)
		return cbl_error_set(err, CBL_EINVAL, "%s/launch.json: %s", dir, je.text);
	mem->doc = doc;
	json_t *num = json_object_get(doc, "buildNumber");
	runner_launch_info info = {
		.dir = dir,
		.home = cbl_json_str_nonempty(doc, "home"),
		.region = cbl_json_str_nonempty(doc, "region"),
		.account = cbl_json_str_nonempty(doc, "account"),
		.initiator = cbl_json_str_nonempty(doc, "initiator"),
		.secrets_file = cbl_json_str_nonempty(doc, "secretsFile"),
		.uuid = cbl_json_str_nonempty(doc, "buildUuid"),
		.number = json_is_integer(num) ? json_integer_value(num) : 0,
	};
	return runner_launch_opts(out, mem, json_object_get(doc, "project"), json_object_get(doc, "request"),
				  &info, err);
}

/* ------------------------------------------------------------ spawning --- */

/* Starts `argv` in a session of its own, stdio on /dev/null, the ready pipe
 * as fd 3.  *ready_r gets the read end when ready_r is not NULL. */
static int spawn_runner(const cbl_strv *argv, int *ready_r, pid_t *pid_out, cbl_error **err)
{
	int p[2] = {-1, -1};
	if (pipe2(p, O_CLOEXEC) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot create a pipe");
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	cbl_spawnattr_clean(&attr, POSIX_SPAWN_SETSID);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 3);
	posix_spawn_file_actions_addclosefrom_np(&fa, 4);
	pid_t pid;
	int rc = posix_spawn(&pid, argv->v[0], &fa, &attr, argv->v, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		return cbl_error_set_errno(err, CBL_EIO, rc, "cannot start %s", argv->v[0]);
	}
	*pid_out = pid;
	if (ready_r)
		*ready_r = p[0];
	else
		close(p[0]);
	return 0;
}

/* Waits for the runner's "ok" (its first record is saved) or its
 * "error: <message>" (it could not start the build). */
static int wait_ready(int fd, cbl_error **err)
{
	cbl_buf b = CBL_BUF_INIT;
	char chunk[4096];
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		cbl_buf_append(&b, chunk, (size_t)n);
	}
	close(fd);
	int rc = 0;
	const char *s = b.len ? cbl_buf_cstr(&b) : "";
	if (!strncmp(s, "ok", 2))
		rc = 0;
	else if (!strncmp(s, "error: ", 7))
		rc = cbl_error_set(err, CBL_EINVAL, "%.*s", (int)strcspn(s + 7, "\n"), s + 7);
	else
		rc = cbl_error_set(err, CBL_EINTERNAL, "the build's runner exited before starting the build");
	cbl_buf_release(&b);
	return rc;
}

/* The record of a build that waits for a free slot: the project's and the
 * request's fields (runner_launch_record), SUBMITTED done and QUEUED open. */
static json_t *queued_record(const json_t *proj, const json_t *req, const runner_launch_info *info,
			     const char *id)
{
	int64_t now = cbl_now_us();
	json_t *r = json_object(), *base = runner_launch_record(proj, req, info);
	json_t *t = json_real((double)(now / 1000) / 1e3);
	json_object_set_new(r, "id", json_string(id));
	json_object_set_new(r, "arn", json_sprintf("arn:aws:codebuild:%s:%s:build/%s",
						   info->region ? info->region : "us-east-1",
						   info->account ? info->account : "000000000000", id));
	json_object_set_new(r, "buildNumber", json_integer(info->number));
	json_object_set(r, "startTime", t);
	json_object_set_new(r, "currentPhase", json_string("QUEUED"));
	json_object_set_new(r, "buildStatus", json_string("IN_PROGRESS"));
	json_object_set(r, "sourceVersion", json_object_get(base, "sourceVersion"));
	if (!json_object_get(base, "sourceVersion"))
		json_object_del(r, "sourceVersion");
	json_object_set_new(r, "projectName", json_string(cbl_json_str_nonempty(proj, "name")));
	json_t *phases = json_array(), *sub = json_object(), *q = json_object();
	json_object_set_new(sub, "phaseType", json_string("SUBMITTED"));
	json_object_set_new(sub, "phaseStatus", json_string("SUCCEEDED"));
	json_object_set(sub, "startTime", t);
	json_object_set(sub, "endTime", t);
	json_object_set_new(sub, "durationInSeconds", json_integer(0));
	json_array_append_new(phases, sub);
	json_object_set_new(q, "phaseType", json_string("QUEUED"));
	json_object_set(q, "startTime", t);
	json_array_append_new(phases, q);
	json_object_set_new(r, "phases", phases);
	static const char *const keys[] = {"source", "serviceRole", "environment", "logs", "timeoutInMinutes",
					   "queuedTimeoutInMinutes", "cache", "encryptionKey", "initiator"};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (json_object_get(base, keys[i]))
			json_object_set(r, keys[i], json_object_get(base, keys[i]));
	json_object_set_new(r, "artifacts", json_pack("{s:s}", "location", ""));
	json_object_set_new(r, "secondaryArtifacts", json_array());
	json_object_set_new(r, "buildComplete", json_false());
	if (!json_object_get(r, "initiator")) {
		char *who = runner_invoking_user();
		json_object_set_new(r, "initiator", json_string(who));
		free(who);
	}
	json_decref(base);
	json_decref(t);
	return r;
}

/* StartBuild's answer, as the service's (aws-cli's documented start-build
 * example): the build as it was queued, currentPhase QUEUED, SUBMITTED done
 * and QUEUED still open, whatever the runner has done since. */
static json_t *start_answer(const json_t *rec)
{
	json_t *r = json_deep_copy(rec), *phases = json_array(), *ph;
	size_t i;
	double sub_end = json_number_value(json_object_get(r, "startTime"));
	json_array_foreach(json_object_get(rec, "phases"), i, ph) {
		const char *type = cbl_json_str_or_empty(ph, "phaseType");
		if (!strcmp(type, "SUBMITTED")) {
			json_array_append_new(phases, json_deep_copy(ph));
			if (json_is_number(json_object_get(ph, "endTime")))
				sub_end = json_number_value(json_object_get(ph, "endTime"));
		}
	}
	json_t *q = json_object();
	json_object_set_new(q, "phaseType", json_string("QUEUED"));
	json_object_set_new(q, "startTime", json_real(sub_end));
	json_array_append_new(phases, q);
	json_object_set_new(r, "phases", phases);
	json_object_set_new(r, "currentPhase", json_string("QUEUED"));
	json_object_set_new(r, "buildStatus", json_string("IN_PROGRESS"));
	json_object_set_new(r, "buildComplete", json_false());
	json_object_del(r, "endTime");
	return r;
}

static void finish_unstarted(const char *dir, json_t *rec, const char *status, const char *code,
			     const char *message)
{
	int64_t now = cbl_now_us();
	json_t *t = json_real((double)(now / 1000) / 1e3);
	json_t *phases = json_object_get(rec, "phases");
	json_t *q = json_array_get(phases, json_array_size(phases) - 1);
	json_object_set_new(q, "phaseStatus", json_string(status));
	json_object_set(q, "endTime", t);
	json_object_set_new(q, "durationInSeconds", json_integer(0));
	json_t *ctxs = json_array(), *c = json_object();
	json_object_set_new(c, "statusCode", json_string(code));
	json_object_set_new(c, "message", json_string(message));
	json_array_append_new(ctxs, c);
	json_object_set_new(q, "contexts", ctxs);
	json_object_set_new(rec, "buildStatus", json_string(status));
	json_object_set_new(rec, "currentPhase", json_string("COMPLETED"));
	json_object_set_new(rec, "buildComplete", json_true());
	json_object_set(rec, "endTime", t);
	json_decref(t);
	store_build_save(dir, rec, false, NULL);
}

/* Starts queued builds while slots are free.  Called with mu held. */
static void start_queued_locked(runner_launcher *l)
{
	while (l->head && (l->max_running <= 0 || l->running < l->max_running)) {
		queued *q = l->head;
		l->head = q->next;
		if (!l->head)
			l->tail = NULL;
		pid_t pid;
		cbl_error *e = NULL;
		if (spawn_runner(&q->argv, NULL, &pid, &e) == 0) {
			l->running++;
		} else {
			json_t *rec = NULL;
			if (store_build_load(l->home, q->id, &rec, NULL) == 0) {
				finish_unstarted(q->dir, rec, "STOPPED", "CLIENT_ERROR", e->msg);
				json_decref(rec);
			}
			cbl_error_free(e);
		}
		free(q->id);
		free(q->dir);
		cbl_strv_release(&q->argv);
		free(q);
	}
}

/* Builds a previous server started are not our children: they count
 * against max_running until their runner is gone.  Called with mu held. */
static void reap_adopted_locked(runner_launcher *l)
{
	size_t j = 0;
	for (size_t i = 0; i < l->adopted.n; i++) {
		if (live_runner(l->adopted.v[i])) {
			l->adopted.v[j++] = l->adopted.v[i];
			continue;
		}
		free(l->adopted.v[i]);
		if (l->running > 0)
			l->running--;
	}
	if (j == l->adopted.n)
		return;
	l->adopted.n = j;
	l->adopted.v[j] = NULL;
	start_queued_locked(l);
}

static void *reaper_main(void *arg)
{
	runner_launcher *l = arg;
	pthread_mutex_lock(&l->mu);
	while (!l->stopping) {
		if (l->running == 0 && l->nbatches == 0) {
			pthread_cond_wait(&l->cv, &l->mu);
			continue;
		}
		pthread_mutex_unlock(&l->mu);
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid <= 0) {
			poll(NULL, 0, 50);
			pthread_mutex_lock(&l->mu);
			reap_adopted_locked(l);
			continue;
		}
		pthread_mutex_lock(&l->mu);
		bool batch = false;
		for (size_t i = 0; i < l->nbatches && !batch; i++)
			if (l->batches[i] == pid) {
				l->batches[i] = l->batches[--l->nbatches];
				batch = true;
			}
		if (!batch && l->running > 0)
			l->running--;
		start_queued_locked(l);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

/* ----------------------------------------------------------- operations --- */

static int load_build(runner_launcher *l, json_t *req, json_t **rec, char **dir, cbl_error **err)
{
	const char *id = cbl_json_str_nonempty(req, "id");
	if (!id)
		return cbl_error_set(err, CBL_EINVAL, "1 validation error detected: Value null at 'id' failed to "
						      "satisfy constraint: Member must not be null");
	const char *b = strstr(id, ":build/");
	if (!strncmp(id, "arn:", 4) && b)
		id = b + 7;
	const char *colon = strchr(id, ':');
	if (!colon || colon == id || !colon[1] || strchr(colon + 1, '/') || strstr(id, ".."))
		return cbl_error_set(err, CBL_EINVAL, "Invalid build ID provided");
	int rc = store_build_load(l->home, id, rec, err);
	if (rc == CBL_ENOENT) {
		cbl_error_clear(err);
		return cbl_error_set(err, CBL_ENOENT, "Build not found: %s", id);
	}
	if (rc)
		return rc;
	*dir = cbl_xasprintf("%s/builds/%.*s/%s", l->home, (int)(colon - id), id, colon + 1);
	return 0;
}

static bool region_name_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '-'))
			return false;
	return n > 0 && n <= 32;
}

/* The caller's region, account and initiator into info (runner_caller);
 * *account and *initiator are the strings it allocates. */
static void caller_info(const runner_caller *caller, runner_launch_info *info, char **account, char **initiator)
{
	if (!caller)
		return;
	if (caller->region && region_name_ok(caller->region))
		info->region = caller->region;
	if (runner_principal_identity(caller->principal, account, initiator) == 0) {
		info->account = *account;
		info->initiator = *initiator;
	}
}

int runner_principal_identity(const char *arn, char **account, char **initiator)
{
	/* arn:<partition>:<iam|sts>::<account>:<resource> */
	const char *p = arn && !strncmp(arn, "arn:", 4) ? strchr(arn + 4, ':') : NULL;
	const char *q = p ? strchr(p + 1, ':') : NULL;
	const char *r = q ? strchr(q + 1, ':') : NULL;
	const char *a = r ? strchr(r + 1, ':') : NULL;
	if (!a || !a[1])
		return -1;
	*account = cbl_xstrndup(r + 1, (size_t)(a - r - 1));
	const char *res = a + 1, *slash = strchr(res, '/');
	if (!strncmp(res, "assumed-role/", 13))
		*initiator = cbl_xstrdup(res + 13);
	else if (slash)
		*initiator = cbl_xstrdup(strrchr(res, '/') + 1);
	else
		*initiator = cbl_xstrdup(res);
	return 0;
}

/* The runner's command line: `exe run --launched DIR`. */
static void launch_argv(const runner_launcher *l, const char *dir, cbl_strv *argv)
{
	cbl_strv_push(argv, l->exe);
	cbl_strv_push(argv, "run");
	cbl_strv_push(argv, "--launched");
	cbl_strv_push(argv, dir);
}

/* Checks the request against the project (the launched runner maps it
 * again, from launch.json), keeps both in the build's directory, and gives
 * the runner's command line. */
static int prepare_launch(runner_launcher *l, json_t *req, json_t *proj, const runner_launch_info *info,
			  cbl_strv *argv, cbl_error **err)
{
	const char *dir = info->dir;
	runner_launch_mem mem = RUNNER_LAUNCH_MEM_INIT;
	runner_opts o;
	int rc = runner_launch_opts(&o, &mem, proj, req, info, err);
	runner_launch_mem_release(&mem);
	if (rc || (rc = runner_launch_save(proj, req, info, err)))
		return rc;
	/* the request alone, for RetryBuild */
	char *rq = json_dumps(req, JSON_COMPACT | JSON_SORT_KEYS);
	char *path = cbl_path_join(dir, "request.json");
	rc = cbl_write_file_atomic(path, rq, strlen(rq), 0600, false, err);
	free(path);
	free(rq);
	if (rc)
		return rc;
	launch_argv(l, dir, argv);
	return 0;
}

/* Appends a build to the queue; takes argv.  Called with mu held. */
static void enqueue_locked(runner_launcher *l, const char *id, const char *dir, cbl_strv *argv)
{
	queued *q = cbl_xcalloc(1, sizeof(*q));
	q->id = cbl_xstrdup(id);
	q->dir = cbl_xstrdup(dir);
	q->argv = *argv;
	*argv = (cbl_strv)CBL_STRV_INIT;
	if (l->tail)
		l->tail->next = q;
	else
		l->head = q;
	l->tail = q;
}

static int start_build(runner_launcher *l, json_t *req, const runner_caller *caller, json_t **out,
		       cbl_error **err)
{
	json_t *proj = NULL, *rec = NULL;
	cbl_strv argv = CBL_STRV_INIT;
	char *dir = NULL, *id = NULL, *who_account = NULL, *who = NULL;
	char uuid[37];
	int64_t number = 0;
	int rc, ready = -1;
	if (!json_is_object(req))
		return cbl_error_set(err, CBL_EINVAL, "the request must be a JSON object");
	const char *name = cbl_json_str_nonempty(req, "projectName");
	if (!name)
		return cbl_error_set(err, CBL_EINVAL, "1 validation error detected: Value null at 'projectName' "
						      "failed to satisfy constraint: Member must not be null");
	if ((rc = store_project_get(l->home, name, &proj, err)))
		return rc;
	cbl_uuid4(uuid);
	id = cbl_xasprintf("%s:%s", name, uuid);
	if ((rc = store_next_build_number(l->home, name, &number, err)) ||
	    (rc = store_build_dir_create(l->home, name, uuid, &dir, err)))
		goto out;
	runner_launch_info info = {.dir = dir, .home = l->home, .region = l->region, .account = l->account,
				   .secrets_file = l->secrets_file, .uuid = uuid, .number = number};
	caller_info(caller, &info, &who_account, &who);
	if ((rc = prepare_launch(l, req, proj, &info, &argv, err)))
		goto fail_dir;
	pthread_mutex_lock(&l->mu);
	bool slot = l->max_running <= 0 || (l->running < l->max_running && !l->head);
	if (!slot) {
		rec = queued_record(proj, req, &info, id);
		rc = store_build_save(dir, rec, false, err);
		if (rc == 0)
			enqueue_locked(l, id, dir, &argv);
		pthread_mutex_unlock(&l->mu);
		if (rc)
			goto fail_dir;
		goto answer;
	}
	pid_t pid;
	rc = spawn_runner(&argv, &ready, &pid, err);
	if (rc == 0 && l->max_running > 0) {
		l->running++;
		pthread_cond_signal(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	if (rc)
		goto fail_dir;
	if ((rc = wait_ready(ready, err))) {
		if (l->max_running <= 0)
			waitpid(pid, NULL, WNOHANG);
		goto fail_dir;
	}
	if ((rc = store_build_load(l->home, id, &rec, err)))
		goto out;
answer:
	*out = json_object();
	json_object_set_new(*out, "build", start_answer(rec));
	goto out;
fail_dir:
	cbl_rm_rf(dir, NULL);
out:
	json_decref(rec);
	json_decref(proj);
	cbl_strv_release(&argv);
	free(dir);
	free(id);
	free(who_account);
	free(who);
	return rc;
}

/* Removes a queued build from the queue (it never starts).  True if it was
 * queued. */
static bool dequeue(runner_launcher *l, const char *id)
{
	bool found = false;
	pthread_mutex_lock(&l->mu);
	for (queued **pp = &l->head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
		queued *q = *pp;
		if (strcmp(q->id, id))
			continue;
		*pp = q->next;
		if (l->tail == q)
			l->tail = prev;
		free(q->id);
		free(q->dir);
		cbl_strv_release(&q->argv);
		free(q);
		found = true;
		break;
	}
	pthread_mutex_unlock(&l->mu);
	return found;
}

static int stop_build(runner_launcher *l, json_t *req, json_t **out, cbl_error **err)
{
	json_t *rec = NULL;
	char *dir = NULL;
	int rc = load_build(l, req, &rec, &dir, err);
	if (rc)
		return rc;
	const char *id = cbl_json_str(rec, "id");
	if (!json_is_true(json_object_get(rec, "buildComplete"))) {
		if (dequeue(l, id)) {
			finish_unstarted(dir, rec, "STOPPED", "BUILD_STOPPED", "Build was stopped");
		} else {
			store_build_request_stop(l->home, id, NULL);
			pid_t pid = live_runner(dir);
			if (pid)
				kill(pid, SIGTERM);
			/* the runner ends every process within a second or two:
			 * answer with the stopped build when it is that quick */
			int64_t until = cbl_mono_us() + 5000000;
			char *idc = cbl_xstrdup(id);
			while (cbl_mono_us() < until) {
				json_t *now = NULL;
				if (store_build_load(l->home, idc, &now, NULL) < 0)
					break;
				json_decref(rec);
				rec = now;
				if (json_is_true(json_object_get(rec, "buildComplete")))
					break;
				poll(NULL, 0, 20);
			}
			free(idc);
		}
		json_t *now = NULL;
		if (store_build_load(l->home, cbl_json_str(rec, "id"), &now, NULL) == 0) {
			json_decref(rec);
			rec = now;
		}
	}
	*out = json_object();
	json_object_set_new(*out, "build", rec);
	free(dir);
	return 0;
}

/* StartBuild with an idempotencyToken: the same token with the same request
 * within 5 minutes answers the build it started; with another request, the
 * service's parameter mismatch.  Such requests are serialized, so two at
 * once start one build. */
static int start_build_once(runner_launcher *l, json_t *req, const runner_caller *caller, json_t **out,
			    cbl_error **err)
{
	const char *tok = json_is_object(req) ? cbl_json_str(req, "idempotencyToken") : NULL;
	if (!tok)
		return start_build(l, req, caller, out, err);
	int64_t now = cbl_now_us() / 1000;
	json_t *bare = json_deep_copy(req);
	json_object_del(bare, "idempotencyToken");
	if (caller && caller->principal)
		json_object_set_new(bare, "@principal", json_string(caller->principal));
	pthread_mutex_lock(&l->idem_mu);
	const char *k;
	json_t *v, *tmp;
	json_object_foreach_safe(l->tokens, tmp, k, v) {
		if (now - json_integer_value(json_object_get(v, "at")) > IDEMPOTENCY_MS)
			json_object_del(l->tokens, k);
	}
	json_t *seen = json_object_get(l->tokens, tok);
	int rc;
	if (seen && !json_equal(json_object_get(seen, "request"), bare)) {
		rc = cbl_error_set(err, CBL_EINVAL, "Idempotency token %s was used with different request "
						    "parameters (parameter mismatch)", tok);
	} else if (seen) {
		json_t *rec = NULL;
		rc = store_build_load(l->home, cbl_json_str(seen, "id"), &rec, err);
		if (!rc) {
			*out = json_object();
			json_object_set_new(*out, "build", rec);
		}
	} else {
		rc = start_build(l, req, caller, out, err);
		const char *id = rc ? NULL : cbl_json_str(json_object_get(*out, "build"), "id");
		if (id)
			json_object_set_new(l->tokens, tok, json_pack("{s:O,s:s,s:I}", "request", bare, "id", id,
								      "at", (json_int_t)now));
	}
	pthread_mutex_unlock(&l->idem_mu);
	json_decref(bare);
	return rc;
}

static int retry_build(runner_launcher *l, json_t *req, const runner_caller *caller, json_t **out,
		       cbl_error **err)
{
	json_t *rec = NULL, *orig = NULL;
	char *dir = NULL, *path = NULL;
	int rc = load_build(l, req, &rec, &dir, err);
	if (rc)
		return rc;
	path = cbl_path_join(dir, "request.json");
	json_error_t je;
	orig = json_load_file(path, 0, &je);
	if (!orig) {
		rc = cbl_error_set(err, CBL_EINVAL,
				   "Build %s cannot be retried: it was not started by StartBuild (a `run` "
				   "build; run it again instead)",
				   cbl_json_str(rec, "id"));
		goto out;
	}
	/* a retry is a new build, whatever token the first one carried */
	json_object_del(orig, "idempotencyToken");
	rc = start_build(l, orig, caller, out, err);
out:
	json_decref(orig);
	json_decref(rec);
	free(path);
	free(dir);
	return rc;
}

/* ------------------------------------------------------------- resume --- */

/* Minutes a build may wait in the queue: the request's override, the
 * project's queuedTimeoutInMinutes, else the service's default (8 hours). */
static int64_t queued_timeout_minutes(const char *dir)
{
	char *path = cbl_path_join(dir, "launch.json");
	json_t *doc = json_load_file(path, 0, NULL);
	free(path);
	json_t *v = json_object_get(json_object_get(doc, "request"), "queuedTimeoutInMinutesOverride");
	if (!json_is_integer(v))
		v = json_object_get(json_object_get(doc, "project"), "queuedTimeoutInMinutes");
	int64_t m = json_is_integer(v) && json_integer_value(v) > 0 ? json_integer_value(v) : 480;
	json_decref(doc);
	return m;
}

/* One build the previous server had queued: back in the queue, or ended
 * with the reason it cannot run.  Called with mu held. */
static void resume_one(runner_launcher *l, const store_unfinished *b)
{
	json_t *rec = NULL;
	runner_launch_mem mem = RUNNER_LAUNCH_MEM_INIT;
	runner_opts o;
	cbl_error *e = NULL;
	if (store_build_load(l->home, b->id, &rec, NULL) < 0)
		return;
	int64_t queued_s = cbl_now_us() / 1000000 -
			   (int64_t)json_number_value(json_object_get(rec, "startTime"));
	if (queued_s > queued_timeout_minutes(b->dir) * 60) {
		finish_unstarted(b->dir, rec, "TIMED_OUT", "BUILD_TIMED_OUT",
				 "Build timed out in the queue (queuedTimeoutInMinutes) while "
				 "codebuild-local serve was not running");
	} else if (runner_launch_load(&o, &mem, b->dir, &e) < 0) {
		char *msg = cbl_xasprintf("codebuild-local serve restarted and cannot run this queued "
					  "build any more: %s", e ? e->msg : "its request is unreadable");
		finish_unstarted(b->dir, rec, "FAILED", "CLIENT_ERROR", msg);
		free(msg);
	} else {
		cbl_strv argv = CBL_STRV_INIT;
		launch_argv(l, b->dir, &argv);
		enqueue_locked(l, b->id, b->dir, &argv);
		/* the row names this server as the build's owner again */
		store_build_save(b->dir, rec, false, NULL);
	}
	runner_launch_mem_release(&mem);
	cbl_error_free(e);
	json_decref(rec);
}

/* A server coming back after a crash or a stop: the builds the previous one
 * had queued wait again, in their order (those whose request cannot be run
 * any more end FAILED, those past their queue timeout TIMED_OUT), and
 * builds it started that still run count against max_running. */
static int resume_queue(runner_launcher *l, cbl_error **err)
{
	store_unfinished *v = NULL;
	size_t n = 0;
	int rc = store_builds_unfinished(l->home, &v, &n, err);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&l->mu);
	for (size_t i = 0; i < n; i++) {
		/* a launched runner (`run` builds of the CLI do not count) */
		bool started = live_runner(v[i].dir) != 0;
		if (!v[i].queued || started) {
			if (started) {
				cbl_strv_push(&l->adopted, v[i].dir);
				l->running++;
			}
			continue;
		}
		if (!v[i].owner_alive) /* else another server still has it queued */
			resume_one(l, &v[i]);
	}
	start_queued_locked(l);
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	store_unfinished_free(v, n);
	return 0;
}

/* ------------------------------------------------------------ batches --- *
 * StartBuildBatch, StopBuildBatch, RetryBuildBatch: a batch runs as
 * `exe run --launched <batch dir> --batch-launched`, whose scheduler runs
 * its builds (runner/batch.h).  Batches are not queued behind max_running:
 * their own scheduler keeps to the machine's budget. */

static int spawn_batch(runner_launcher *l, const char *dir, const char *retry, const char *id, json_t **out,
		       cbl_error **err)
{
	cbl_strv argv = CBL_STRV_INIT;
	cbl_strv_push(&argv, l->exe);
	cbl_strv_push(&argv, "run");
	cbl_strv_push(&argv, "--launched");
	cbl_strv_push(&argv, dir);
	cbl_strv_push(&argv, "--batch-launched");
	if (retry) {
		cbl_strv_push(&argv, "--batch-retry");
		cbl_strv_push(&argv, retry);
	}
	pid_t pid;
	int ready = -1;
	pthread_mutex_lock(&l->mu);
	int rc = spawn_runner(&argv, &ready, &pid, err);
	if (!rc && l->reaper_started) {
		l->batches = cbl_xreallocarray(l->batches, l->nbatches + 1, sizeof(pid_t));
		l->batches[l->nbatches++] = pid;
		pthread_cond_signal(&l->cv);
	}
	pthread_mutex_unlock(&l->mu);
	cbl_strv_release(&argv);
	if (!rc)
		rc = wait_ready(ready, err);
	json_t *rec = NULL;
	if (!rc)
		rc = store_batch_load(l->home, id, &rec, err);
	if (!rc) {
		*out = json_object();
		json_object_set_new(*out, "buildBatch", rec);
	}
	return rc;
}

static int start_build_batch(runner_launcher *l, json_t *req, json_t **out, cbl_error **err)
{
	json_t *proj = NULL;
	char *dir = NULL, *id = NULL;
	char uuid[37];
	int64_t number = 0;
	int rc;
	const char *name = cbl_json_str_nonempty(req, "projectName");
	if (!name)
		return cbl_error_set(err, CBL_EINVAL, "1 validation error detected: Value null at 'projectName' "
						      "failed to satisfy constraint: Member must not be null");
	if ((rc = store_project_get(l->home, name, &proj, err)))
		return rc;
	cbl_uuid4(uuid);
	id = cbl_xasprintf("%s:%s", name, uuid);
	if ((rc = store_batch_next_number(l->home, name, &number, err)) ||
	    (rc = store_batch_dir_create(l->home, name, uuid, &dir, err)))
		goto out;
	runner_launch_info info = {.dir = dir, .home = l->home, .region = l->region, .uuid = uuid, .number = number};
	runner_launch_mem mem = RUNNER_LAUNCH_MEM_INIT;
	runner_opts o;
	/* StartBuildBatch names StartBuild's timeoutInMinutesOverride so */
	json_t *breq = json_deep_copy(req);
	json_t *bto = json_object_get(req, "buildTimeoutInMinutesOverride");
	if (bto)
		json_object_set(breq, "timeoutInMinutesOverride", bto);
	rc = runner_launch_opts(&o, &mem, proj, breq, &info, err);
	runner_launch_mem_release(&mem);
	if (!rc)
		rc = runner_launch_save(proj, breq, &info, err);
	json_decref(breq);
	if (!rc)
		rc = spawn_batch(l, dir, NULL, id, out, err);
	if (rc)
		cbl_rm_rf(dir, NULL);
out:
	json_decref(proj);
	free(dir);
	free(id);
	return rc;
}

/* The batch of request's id: its record and directory. */
static int load_batch(runner_launcher *l, json_t *req, json_t **rec, char **dir, cbl_error **err)
{
	const char *id = cbl_json_str_nonempty(req, "id");
	if (!id)
		return cbl_error_set(err, CBL_EINVAL, "1 validation error detected: Value null at 'id' failed to "
						      "satisfy constraint: Member must not be null");
	int rc = store_batch_dir_of(l->home, id, dir, err);
	if (!rc)
		rc = store_batch_load(l->home, id, rec, err);
	if (rc) {
		free(*dir);
		*dir = NULL;
	}
	return rc;
}

static int stop_build_batch(runner_launcher *l, json_t *req, json_t **out, cbl_error **err)
{
	json_t *rec = NULL;
	char *dir = NULL;
	int rc = load_batch(l, req, &rec, &dir, err);
	if (rc)
		return rc;
	char *id = cbl_xstrdup(cbl_json_str_or_empty(rec, "id"));
	if (!json_is_true(json_object_get(rec, "complete"))) {
		char *stopf = cbl_path_join(dir, "stop");
		cbl_write_file_atomic(stopf, "", 0, 0600, false, NULL);
		free(stopf);
		pid_t pid = live_runner(dir);
		if (pid)
			kill(pid, SIGTERM);
		/* the builds stop within a second or two: answer with the
		 * stopped batch when it is that quick */
		int64_t until = cbl_mono_us() + 10000000;
		while (cbl_mono_us() < until && !json_is_true(json_object_get(rec, "complete"))) {
			poll(NULL, 0, 50);
			json_t *now = NULL;
			if (store_batch_load(l->home, id, &now, NULL) < 0)
				break;
			json_decref(rec);
			rec = now;
		}
	}
	*out = json_object();
	json_object_set_new(*out, "buildBatch", rec);
	free(id);
	free(dir);
	return 0;
}

static int retry_build_batch(runner_launcher *l, json_t *req, json_t **out, cbl_error **err)
{
	json_t *rec = NULL;
	char *dir = NULL;
	/* retryType's enum: store_api_validate's (every face runs it first) */
	const char *type = cbl_json_str_nonempty(req, "retryType");
	int rc = load_batch(l, req, &rec, &dir, err);
	if (rc)
		return rc;
	const char *st = cbl_json_str_or_empty(rec, "buildBatchStatus");
	if (!json_is_true(json_object_get(rec, "complete")) || !strcmp(st, "SUCCEEDED"))
		rc = cbl_error_set(err, CBL_EINVAL, "Only batch builds that have failed can be retried (%s is %s)",
				   cbl_json_str_or_empty(rec, "id"), st);
	else
		rc = spawn_batch(l, dir, type ? type : "RETRY_ALL_BUILDS", cbl_json_str(rec, "id"), out, err);
	json_decref(rec);
	free(dir);
	return rc;
}

/* ------------------------------------------------------------- public --- */

bool runner_launcher_known(const char *target)
{
	static const char *const ops[] = {"StartBuild", "StopBuild", "RetryBuild", "StartBuildBatch",
					  "StopBuildBatch", "RetryBuildBatch", NULL};
	size_t pl = strlen(STORE_TARGET_CODEBUILD);
	for (const char *const *o = ops; target && *o; o++)
		if (!strncmp(target, STORE_TARGET_CODEBUILD, pl) && !strcmp(target + pl, *o))
			return true;
	return false;
}

int runner_launcher_dispatch(runner_launcher *l, const char *target, json_t *request, json_t **out,
			     cbl_error **err)
{
	return runner_launcher_dispatch_as(l, target, request, NULL, out, err);
}

int runner_launcher_dispatch_as(runner_launcher *l, const char *target, json_t *request,
				const runner_caller *caller, json_t **out, cbl_error **err)
{
	json_t *empty = NULL;
	if (!request)
		request = empty = json_object();
	int rc;
	if (!strcmp(target, STORE_TARGET_CODEBUILD "StartBuild"))
		rc = start_build_once(l, request, caller, out, err);
	else if (!strcmp(target, STORE_TARGET_CODEBUILD "StopBuild"))
		rc = stop_build(l, request, out, err);
	else if (!strcmp(target, STORE_TARGET_CODEBUILD "RetryBuild"))
		rc = retry_build(l, request, caller, out, err);
	else if (!strcmp(target, STORE_TARGET_CODEBUILD "StartBuildBatch"))
		rc = start_build_batch(l, request, out, err);
	else if (!strcmp(target, STORE_TARGET_CODEBUILD "StopBuildBatch"))
		rc = stop_build_batch(l, request, out, err);
	else if (!strcmp(target, STORE_TARGET_CODEBUILD "RetryBuildBatch"))
		rc = retry_build_batch(l, request, out, err);
	else
		rc = cbl_error_set(err, CBL_EINVAL, "unknown operation %s", target);
	json_decref(empty);
	return rc;
}

int runner_launcher_new(runner_launcher **out, const runner_launcher_opts *o, cbl_error **err)
{
	if (!o->home || !o->exe)
		return cbl_error_set(err, CBL_EINVAL, "a launcher needs a state directory and the program");
	runner_launcher *l = cbl_xcalloc(1, sizeof(*l));
	l->home = cbl_xstrdup(o->home);
	l->exe = cbl_xstrdup(o->exe);
	l->region = cbl_xstrdup(o->region ? o->region : "us-east-1");
	l->account = o->account ? cbl_xstrdup(o->account) : NULL;
	l->secrets_file = o->secrets_file ? cbl_xstrdup(o->secrets_file) : NULL;
	l->max_running = o->max_running;
	l->resume = o->resume;
	pthread_mutex_init(&l->mu, NULL);
	pthread_mutex_init(&l->idem_mu, NULL);
	l->tokens = json_object();
	pthread_cond_init(&l->cv, NULL);
	if (l->max_running > 0) {
		if (pthread_create(&l->reaper, NULL, reaper_main, l) != 0) {
			runner_launcher_free(l);
			return cbl_error_set(err, CBL_EIO, "cannot start the launcher's thread");
		}
		l->reaper_started = true;
	}
	if (l->resume && resume_queue(l, err) < 0) {
		runner_launcher_free(l);
		return CBL_EIO;
	}
	*out = l;
	return 0;
}

void runner_launcher_free(runner_launcher *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stopping = true;
	pthread_cond_broadcast(&l->cv);
	queued *q = l->head;
	l->head = l->tail = NULL;
	pthread_mutex_unlock(&l->mu);
	if (l->reaper_started)
		pthread_join(l->reaper, NULL);
	while (q) {
		queued *next = q->next;
		json_t *rec = NULL;
		/* a resuming server's queue waits for the next one */
		if (!l->resume && store_build_load(l->home, q->id, &rec, NULL) == 0) {
			finish_unstarted(q->dir, rec, "STOPPED", "BUILD_STOPPED",
					 "codebuild-local serve stopped before the build left the queue");
			json_decref(rec);
		}
		free(q->id);
		free(q->dir);
		cbl_strv_release(&q->argv);
		free(q);
		q = next;
	}
	cbl_strv_release(&l->adopted);
	pthread_mutex_destroy(&l->mu);
	pthread_mutex_destroy(&l->idem_mu);
	json_decref(l->tokens);
	pthread_cond_destroy(&l->cv);
	free(l->batches);
	free(l->home);
	free(l->exe);
	free(l->region);
	free(l->account);
	free(l->secrets_file);
	free(l);
}
