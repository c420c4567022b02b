/* runner/sandboxapi.c - the service's sandbox API on `serve`: StartSandbox,
 * BatchGetSandboxes, ListSandboxes, ListSandboxesForProject, StopSandbox,
 * StartCommandExecution, BatchGetCommandExecutions,
 * ListCommandExecutionsForSandbox (shapes: the newer botocore model's
 * codebuild 2016-10-06, Apache-2.0).
 *
 * A sandbox is a build environment that stays up, made of the machinery
 * builds already use: StartSandbox starts a build of the project (its image,
 * environment, source) whose buildspec is one `codebuild-breakpoint` with
 * debugging on, so it pauses once the environment is ready and waits (until
 * StopSandbox, or the project's timeout).  A command execution is a session
 * in that paused build (runner/debug.c), like `codebuild-local exec`: the
 * build's shell, variables, directory and confinement; its output is kept
 * in the command's record and appended to the sandbox's log.  The sandbox's
 * id is its build's id.
 *
 * Records: <home>/sandboxes/<id>.json (the index: id, project, creation
 * time) and, in the build's directory, commands/<command id>.json (each
 * written whole, by rename).  Statuses (the model documents none): a
 * sandbox is QUEUED, PREPARING, READY (paused, commands run), or once its
 * build ended STOPPED or FAILED; a command execution is SUBMITTED,
 * IN_PROGRESS, SUCCEEDED or FAILED.
 */
#include "runner/runner_internal.h"
#include "runner/launch.h"
#include "store/api.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/time.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

#define T(op) STORE_TARGET_CODEBUILD op
enum { OUTPUT_MAX = 1 << 20, READY_WAIT_S = 300 };

static const char *const ops[] = {T("StartSandbox"),
				  T("BatchGetSandboxes"),
				  T("ListSandboxes"),
				  T("ListSandboxesForProject"),
				  T("StopSandbox"),
				  T("StartCommandExecution"),
				  T("BatchGetCommandExecutions"),
				  T("ListCommandExecutionsForSandbox")};

bool runner_sandbox_api_known(const char *target)
{
	for (size_t i = 0; target && i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strcmp(target, ops[i]))
			return true;
	return false;
}

static int missing(cbl_error **err, const char *member)
{
	return cbl_error_set(err, CBL_EINVAL,
			     "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must "
			     "not be null",
			     member);
}

/* A sandbox (build) id: "<project>:<uuid>", nothing that walks a path. */
static bool id_ok(const char *id)
{
	const char *c = id ? strchr(id, ':') : NULL;
	return c && c != id && c[1] && !strchr(id, '/') && !strstr(id, "..") && strlen(id) < 400;
}

static char *index_path(const char *home, const char *id)
{
	return cbl_xasprintf("%s/sandboxes/%s.json", home, id);
}

static char *build_dir(const char *home, const char *id)
{
	const char *c = strchr(id, ':');
	return cbl_xasprintf("%s/builds/%.*s/%s", home, (int)(c - id), id, c + 1);
}

static bool log_says(const char *dir, const char *what)
{
	char *path = cbl_path_join(dir, "build.log"), *text = NULL;
	size_t len = 0;
	bool yes = cbl_read_file(path, 64 << 20, &text, &len, NULL) == 0 && strstr(text, what);
	free(text);
	free(path);
	return yes;
}

/* The Sandbox shape, from its build's record. */
static json_t *sandbox_of(const char *home, const json_t *b)
{
	const char *id = cbl_json_str(b, "id");
	char *dir = build_dir(home, id);
	const char *bs = cbl_json_str(b, "buildStatus");
	bool done = json_is_true(json_object_get(b, "buildComplete"));
	const char *phase = cbl_json_str(b, "currentPhase");
	const char *status = done ? (bs && !strcmp(bs, "STOPPED") ? "STOPPED" : "FAILED")
			     : phase && !strcmp(phase, "QUEUED") ? "QUEUED"
			     : log_says(dir, "Build paused at a breakpoint") ? "READY"
									     : "PREPARING";
	free(dir);
	const char *arn = cbl_json_str(b, "arn");
	const char *slash = arn ? strstr(arn, ":build/") : NULL;
	char *sarn = slash ? cbl_xasprintf("%.*s:sandbox/%s", (int)(slash - arn), arn, slash + 7) : cbl_xstrdup(id);
	json_t *s = json_object();
	json_object_set_new(s, "id", json_string(id));
	json_object_set_new(s, "arn", json_string(sarn));
	free(sarn);
	static const char *const copy[] = {"projectName", "startTime", "endTime", "source", "sourceVersion",
					   "secondarySources", "secondarySourceVersions", "environment",
					   "timeoutInMinutes", "queuedTimeoutInMinutes", "logs", "serviceRole"};
	for (size_t i = 0; i < sizeof(copy) / sizeof(copy[0]); i++) {
		json_t *v = json_object_get(b, copy[i]);
		if (v && strcmp(copy[i], "logs"))
			json_object_set(s, copy[i], v);
	}
	json_object_set(s, "requestTime", json_object_get(b, "startTime"));
	json_object_set_new(s, "status", json_string(status));
	json_t *sess = json_object();
	json_object_set_new(sess, "id", json_string(id));
	json_object_set_new(sess, "status", json_string(status));
	static const char *const scopy[] = {"startTime", "endTime", "currentPhase", "resolvedSourceVersion", "logs"};
	for (size_t i = 0; i < sizeof(scopy) / sizeof(scopy[0]); i++) {
		json_t *v = json_object_get(b, scopy[i]);
		if (v)
			json_object_set(sess, scopy[i], v);
	}
	json_t *phases = json_array(), *bp = json_object_get(b, "phases");
	size_t i;
	json_t *p;
	json_array_foreach(bp, i, p)
	{
		json_t *q = json_object();
		json_object_set(q, "phaseType", json_object_get(p, "phaseType"));
		static const char *const pc[] = {"phaseStatus", "startTime", "endTime", "durationInSeconds", "contexts"};
		for (size_t k = 0; k < 5; k++)
			if (json_object_get(p, pc[k]))
				json_object_set(q, pc[k], json_object_get(p, pc[k]));
		json_array_append_new(phases, q);
	}
	json_object_set_new(sess, "phases", phases);
	json_object_set_new(s, "currentSession", sess);
	return s;
}

static int load_sandbox(const char *home, const char *id, json_t **out, cbl_error **err)
{
	char *ip = NULL;
	struct stat st;
	int rc = 0;
	json_t *b = NULL;
	if (!id_ok(id) || stat((ip = index_path(home, id)), &st) < 0)
		rc = cbl_error_set(err, CBL_ENOENT, "Sandbox %s does not exist", id ? id : "");
	else if ((rc = store_build_load(home, id, &b, err)) == 0)
		*out = sandbox_of(home, b);
	json_decref(b);
	free(ip);
	return rc;
}

static const char sandbox_buildspec[] = "version: 0.2\n"
					"phases:\n"
					"  build:\n"
					"    commands:\n"
					"      - codebuild-breakpoint\n";

static int start_sandbox(runner_launcher *l, const char *home, json_t *req, json_t **out, cbl_error **err)
{
	const char *name = cbl_json_str_nonempty(req, "projectName");
	if (!name)
		return missing(err, "projectName");
	json_t *breq = json_pack("{s:s, s:b, s:s}", "projectName", name, "debugSessionEnabled", 1,
				 "buildspecOverride", sandbox_buildspec);
	json_t *res = NULL;
	int rc = runner_launcher_dispatch(l, T("StartBuild"), breq, &res, err);
	json_decref(breq);
	if (rc)
		return rc;
	json_t *b = json_object_get(res, "build");
	const char *id = cbl_json_str(b, "id");
	char *dir = cbl_path_join(home, "sandboxes");
	char *ip = index_path(home, id);
	json_t *idx = json_pack("{s:s, s:s, s:I}", "id", id, "projectName", name, "created", (json_int_t)cbl_now_us());
	char *text = json_dumps(idx, JSON_COMPACT);
	if ((rc = cbl_mkdir_p(dir, 0700, err)) == 0)
		rc = cbl_write_file_atomic(ip, text, strlen(text), 0600, false, err);
	if (rc == 0) {
		*out = json_object();
		json_object_set_new(*out, "sandbox", sandbox_of(home, b));
	}
	free(text);
	json_decref(idx);
	free(ip);
	free(dir);
	json_decref(res);
	return rc;
}

static int stop_sandbox(runner_launcher *l, const char *home, json_t *req, json_t **out, cbl_error **err)
{
	const char *id = cbl_json_str_nonempty(req, "id");
	if (!id)
		return missing(err, "id");
	json_t *s = NULL;
	int rc = load_sandbox(home, id, &s, err);
	if (rc)
		return rc;
	json_decref(s);
	json_t *breq = json_pack("{s:s}", "id", id), *res = NULL;
	rc = runner_launcher_dispatch(l, T("StopBuild"), breq, &res, err);
	json_decref(breq);
	if (rc == 0) {
		*out = json_object();
		json_object_set_new(*out, "sandbox", sandbox_of(home, json_object_get(res, "build")));
	}
	json_decref(res);
	return rc;
}

static int batch_get_sandboxes(const char *home, json_t *req, json_t **out, cbl_error **err)
{
	json_t *ids = json_object_get(req, "ids");
	if (!json_is_array(ids))
		return missing(err, "ids");
	json_t *found = json_array(), *nf = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		json_t *s = NULL;
		if (json_is_string(v) && load_sandbox(home, json_string_value(v), &s, NULL) == 0)
			json_array_append_new(found, s);
		else
			json_array_append(nf, v);
	}
	*out = json_pack("{s:o, s:o}", "sandboxes", found, "sandboxesNotFound", nf);
	(void)err;
	return 0;
}

/* Sorted by creation (sortOrder), maxResults a page, nextToken an offset. */
static json_t *page_ids(json_t *items, const json_t *req, const char *idkey, const char *timekey)
{
	size_t n = json_array_size(items);
	bool desc = cbl_json_str(req, "sortOrder") && !strcmp(cbl_json_str(req, "sortOrder"), "DESCENDING");
	/* insertion sort: a few hundred at most */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0; j--) {
			json_int_t a = json_integer_value(json_object_get(json_array_get(items, j - 1), timekey));
			json_int_t b = json_integer_value(json_object_get(json_array_get(items, j), timekey));
			if (desc ? a >= b : a <= b)
				break;
			json_t *t = json_incref(json_array_get(items, j));
			json_array_set(items, j, json_array_get(items, j - 1));
			json_array_set_new(items, j - 1, t);
		}
	long max = json_integer_value(json_object_get(req, "maxResults"));
	if (max <= 0 || max > 100)
		max = 100;
	const char *tok = cbl_json_str(req, "nextToken");
	size_t from = tok ? strtoul(tok, NULL, 10) : 0;
	json_t *ids = json_array();
	size_t i;
	for (i = from; i < n && i < from + (size_t)max; i++) {
		json_t *it = json_array_get(items, i);
		json_array_append(ids, idkey ? json_object_get(it, idkey) : it);
	}
	json_t *res = json_object();
	json_object_set_new(res, idkey ? "ids" : "commandExecutions", ids);
	if (i < n) {
		char t[32];
		snprintf(t, sizeof(t), "%zu", i);
		json_object_set_new(res, "nextToken", json_string(t));
	}
	return res;
}

static int list_sandboxes(const char *home, json_t *req, const char *project, json_t **out, cbl_error **err)
{
	char *dir = cbl_path_join(home, "sandboxes");
	DIR *d = opendir(dir);
	json_t *items = json_array();
	struct dirent *de;
	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json"))
			continue;
		char *p = cbl_path_join(dir, de->d_name);
		json_t *j = json_load_file(p, 0, NULL);
		free(p);
		if (j && (!project || !strcmp(cbl_json_str(j, "projectName") ? cbl_json_str(j, "projectName") : "", project)))
			json_array_append(items, j);
		json_decref(j);
	}
	if (d)
		closedir(d);
	free(dir);
	*out = page_ids(items, req, "id", "created");
	json_decref(items);
	(void)err;
	return 0;
}

/* ------------------------------------------------------------ commands */

typedef struct cmd_job {
	char *home, *sandbox, *dir, *id, *command;
	json_t *rec;
} cmd_job;

static void save_rec(const cmd_job *j)
{
	char *d = cbl_path_join(j->dir, "commands");
	char *name = cbl_xasprintf("%s/%s.json", d, j->id);
	char *text = json_dumps(j->rec, JSON_COMPACT | JSON_REAL_PRECISION(13));
	if (cbl_mkdir_p(d, 0700, NULL) == 0)
		cbl_write_file_atomic(name, text, strlen(text), 0600, false, NULL);
	free(text);
	free(name);
	free(d);
}

static double now_s(void) { return (double)cbl_now_us() / 1e6; }

/* The command's lines in the sandbox's log, as a build's command's are. */
static void append_log(const cmd_job *j, const char *out, int status)
{
	char *path = cbl_path_join(j->dir, "build.log");
	int fd = open(path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return;
	char ts[32];
	cbl_buf b = CBL_BUF_INIT;
	cbl_format_log_time(ts, cbl_now_us());
	cbl_buf_printf(&b, "[Container] %s Running command %s\n%s%s", ts, j->command, out,
		       *out && out[strlen(out) - 1] != '\n' ? "\n" : "");
	cbl_format_log_time(ts, cbl_now_us());
	cbl_buf_printf(&b, "[Container] %s Command execution %s exited with %d\n", ts, j->id, status);
	cbl_write_all(fd, b.ptr, b.len);
	cbl_buf_release(&b);
	close(fd);
}

static void read_some(int *fd, cbl_buf *b)
{
	char buf[8192];
	ssize_t n = read(*fd, buf, sizeof(buf));
	if (n > 0) {
		if (b->len + (size_t)n <= OUTPUT_MAX)
			cbl_buf_append(b, buf, (size_t)n);
	} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
		close(*fd);
		*fd = -1;
	}
}

/* Runs the command in the sandbox and collects its output: its exit
 * status, or -1 with *why. */
static int run_in_sandbox(cmd_job *j, cbl_buf *out, cbl_buf *errb, char **why)
{
	int sock = -1, o[2] = {-1, -1}, e2[2] = {-1, -1}, st = -1;
	cbl_error *e = NULL;
	int dn = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (runner_attach_connect(j->home, j->sandbox, &sock, &e) < 0 || pipe2(o, O_CLOEXEC) < 0 ||
	    pipe2(e2, O_CLOEXEC) < 0) {
		*why = cbl_xstrdup(e ? e->msg : strerror(errno));
		goto out;
	}
	const char *argv[] = {"/bin/sh", "-c", j->command, NULL};
	int fds[3] = {dn, o[1], e2[1]};
	if (runner_attach_send(sock, RUNNER_DEBUG_EXEC, 0, argv, fds, 3, &e) < 0) {
		*why = cbl_xstrdup(e->msg);
		goto out;
	}
	close(o[1]);
	close(e2[1]);
	o[1] = e2[1] = -1;
	bool exited = false;
	int64_t drain_until = 0;
	while (o[0] >= 0 || e2[0] >= 0 || !exited) {
		struct pollfd p[3] = {{.fd = o[0], .events = POLLIN}, {.fd = e2[0], .events = POLLIN},
				      {.fd = exited ? -1 : sock, .events = POLLIN}};
		int to = exited ? 200 : -1;
		if (exited && cbl_mono_us() > drain_until)
			break; /* a background job holds the output open: what came is enough */
		if (poll(p, 3, to) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			read_some(&o[0], out);
		if (p[1].revents)
			read_some(&e2[0], errb);
		if (p[2].revents) {
			runner_debug_reply r;
			if (runner_attach_read(sock, &r, &e) < 0) {
				*why = cbl_xstrdup("the sandbox ended");
				goto out;
			}
			if (r.kind == RUNNER_DEBUG_ERROR) {
				*why = cbl_xstrdup(r.msg);
				goto out;
			}
			if (r.kind == RUNNER_DEBUG_EXITED) {
				st = r.status;
				exited = true;
				drain_until = cbl_mono_us() + 1000000;
			}
		}
	}
out:
	for (int i = 0; i < 2; i++) {
		if (o[i] >= 0)
			close(o[i]);
		if (e2[i] >= 0)
			close(e2[i]);
	}
	if (dn >= 0)
		close(dn);
	if (sock >= 0)
		close(sock);
	cbl_error_free(e);
	return st;
}

static void *cmd_main(void *arg)
{
	cmd_job *j = arg;
	char *why = NULL;
	cbl_buf out = CBL_BUF_INIT, errb = CBL_BUF_INIT;
	/* commands run once the sandbox is READY */
	int64_t until = cbl_mono_us() + (int64_t)READY_WAIT_S * 1000000;
	json_t *s = NULL;
	const char *status = NULL;
	while (cbl_mono_us() < until) {
		json_decref(s);
		s = NULL;
		if (load_sandbox(j->home, j->sandbox, &s, NULL) < 0)
			break;
		status = cbl_json_str(s, "status");
		if (status && strcmp(status, "QUEUED") && strcmp(status, "PREPARING"))
			break;
		poll(NULL, 0, 50);
	}
	int st = -1;
	if (!status || strcmp(status, "READY"))
		why = cbl_xasprintf("the sandbox is %s, not READY", status ? status : "gone");
	else {
		json_object_set_new(j->rec, "status", json_string("IN_PROGRESS"));
		json_object_set_new(j->rec, "startTime", json_real(now_s()));
		save_rec(j);
		st = run_in_sandbox(j, &out, &errb, &why);
	}
	json_decref(s);
	json_object_set_new(j->rec, "endTime", json_real(now_s()));
	json_object_set_new(j->rec, "status", json_string(st == 0 ? "SUCCEEDED" : "FAILED"));
	if (st >= 0) {
		char code[16];
		snprintf(code, sizeof(code), "%d", st);
		json_object_set_new(j->rec, "exitCode", json_string(code));
	}
	if (why)
		cbl_buf_printf(&errb, "%scodebuild-local: %s\n", errb.len ? "\n" : "", why);
	if (out.len)
		json_object_set_new(j->rec, "standardOutputContent", json_stringn(out.ptr, out.len));
	if (errb.len)
		json_object_set_new(j->rec, "standardErrContent", json_stringn(errb.ptr, errb.len));
	append_log(j, cbl_buf_cstr(&out), st);
	save_rec(j);
	cbl_buf_release(&out);
	cbl_buf_release(&errb);
	free(why);
	json_decref(j->rec);
	free(j->home);
	free(j->sandbox);
	free(j->dir);
	free(j->id);
	free(j->command);
	free(j);
	return NULL;
}

static int start_command(const char *home, json_t *req, json_t **out, cbl_error **err)
{
	const char *sid = cbl_json_str_nonempty(req, "sandboxId");
	const char *cmd = cbl_json_str_nonempty(req, "command");
	const char *type = cbl_json_str(req, "type");
	if (!sid)
		return missing(err, "sandboxId");
	if (!cmd)
		return missing(err, "command");
	if (type && strcmp(type, "SHELL"))
		return cbl_error_set(err, CBL_EINVAL,
				     "1 validation error detected: Value '%s' at 'type' failed to satisfy constraint: "
				     "Member must satisfy enum value set: [SHELL]",
				     type);
	json_t *s = NULL;
	int rc = load_sandbox(home, sid, &s, err);
	if (rc)
		return rc;
	const char *status = cbl_json_str(s, "status");
	if (!strcmp(status, "STOPPED") || !strcmp(status, "FAILED")) {
		rc = cbl_error_set(err, CBL_EINVAL, "Sandbox %s is %s: it runs no more commands", sid, status);
		json_decref(s);
		return rc;
	}
	char uuid[37];
	cbl_uuid4(uuid);
	cmd_job *j = cbl_xcalloc(1, sizeof(*j));
	j->home = cbl_xstrdup(home);
	j->sandbox = cbl_xstrdup(sid);
	j->dir = build_dir(home, sid);
	j->id = cbl_xstrdup(uuid);
	j->command = cbl_xstrdup(cmd);
	j->rec = json_pack("{s:s, s:s, s:f, s:s, s:s, s:s, s:O?}", "id", uuid, "sandboxId", sid, "submitTime", now_s(),
			   "status", "SUBMITTED", "command", cmd, "type", "SHELL", "sandboxArn", json_object_get(s, "arn"));
	json_t *logs = json_object_get(json_object_get(s, "currentSession"), "logs");
	if (logs)
		json_object_set(j->rec, "logs", logs);
	json_decref(s);
	save_rec(j);
	*out = json_object();
	json_object_set_new(*out, "commandExecution", json_deep_copy(j->rec));
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&t, &a, cmd_main, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
	if (e) {
		json_decref(*out);
		*out = NULL;
		cmd_main(j); /* runs it here instead */
		return cbl_error_set(err, CBL_EIO, "cannot start the command: %s", strerror(e));
	}
	return 0;
}

static json_t *load_cmd(const char *dir, const char *id)
{
	for (const char *p = id; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || *p == '-'))
			return NULL;
	char *path = cbl_xasprintf("%s/commands/%s.json", dir, id);
	json_t *j = json_load_file(path, 0, NULL);
	free(path);
	return j;
}

static int batch_get_commands(const char *home, json_t *req, json_t **out, cbl_error **err)
{
	const char *sid = cbl_json_str_nonempty(req, "sandboxId");
	json_t *ids = json_object_get(req, "commandExecutionIds");
	if (!sid)
		return missing(err, "sandboxId");
	if (!json_is_array(ids))
		return missing(err, "commandExecutionIds");
	json_t *s = NULL;
	int rc = load_sandbox(home, sid, &s, err);
	if (rc)
		return rc;
	json_decref(s);
	char *dir = build_dir(home, sid);
	json_t *found = json_array(), *nf = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		json_t *c = json_is_string(v) ? load_cmd(dir, json_string_value(v)) : NULL;
		if (c)
			json_array_append_new(found, c);
		else
			json_array_append(nf, v);
	}
	free(dir);
	*out = json_pack("{s:o, s:o}", "commandExecutions", found, "commandExecutionsNotFound", nf);
	return 0;
}

static int list_commands(const char *home, json_t *req, json_t **out, cbl_error **err)
{
	const char *sid = cbl_json_str_nonempty(req, "sandboxId");
	if (!sid)
		return missing(err, "sandboxId");
	json_t *s = NULL;
	int rc = load_sandbox(home, sid, &s, err);
	if (rc)
		return rc;
	json_decref(s);
	char *dir = build_dir(home, sid);
	char *cdir = cbl_path_join(dir, "commands");
	json_t *items = json_array();
	DIR *d = opendir(cdir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json"))
			continue;
		char *id = cbl_xstrndup(de->d_name, l - 5);
		json_t *c = load_cmd(dir, id);
		free(id);
		if (c) {
			/* the sort key: submitTime in microseconds */
			json_object_set_new(c, "_t", json_integer((json_int_t)(json_real_value(json_object_get(c, "submitTime")) * 1e6)));
			json_array_append_new(items, c);
		}
	}
	if (d)
		closedir(d);
	*out = page_ids(items, req, NULL, "_t");
	json_t *list = json_object_get(*out, "commandExecutions");
	size_t i;
	json_t *c;
	json_array_foreach(list, i, c)
	json_object_del(c, "_t");
	json_decref(items);
	free(cdir);
	free(dir);
	return 0;
}

int runner_sandbox_api_dispatch(runner_launcher *l, const char *home, const char *target, json_t *req, json_t **out,
				cbl_error **err)
{
	if (!json_is_object(req))
		return cbl_error_set(err, CBL_EINVAL, "the request must be a JSON object");
	if (!strcmp(target, T("StartSandbox")))
		return start_sandbox(l, home, req, out, err);
	if (!strcmp(target, T("StopSandbox")))
		return stop_sandbox(l, home, req, out, err);
	if (!strcmp(target, T("BatchGetSandboxes")))
		return batch_get_sandboxes(home, req, out, err);
	if (!strcmp(target, T("ListSandboxes")))
		return list_sandboxes(home, req, NULL, out, err);
	if (!strcmp(target, T("ListSandboxesForProject"))) {
		const char *p = cbl_json_str_nonempty(req, "projectName");
		return p ? list_sandboxes(home, req, p, out, err) : missing(err, "projectName");
	}
	if (!strcmp(target, T("StartCommandExecution")))
		return start_command(home, req, out, err);
	if (!strcmp(target, T("BatchGetCommandExecutions")))
		return batch_get_commands(home, req, out, err);
	if (!strcmp(target, T("ListCommandExecutionsForSandbox")))
		return list_commands(home, req, out, err);
	return cbl_error_set(err, CBL_EINVAL, "unknown operation %s", target);
}
