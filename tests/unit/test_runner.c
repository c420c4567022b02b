/* Unit tests for runner/ internals: secret masking, secret references, the
 * offline secrets file, and the command model of runner/shell.c. */
#include "tests/unit/tap.h"
#include "runner/runner_internal.h"
#include "runner/batch.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void test_mask(void)
{
	runner_mask m = {0};
	runner_mask_add(&m, "pw");
	runner_mask_add(&m, "hunter2-pw");
	runner_mask_add(&m, "");
	runner_mask_add(&m, "pw");
	is_int(m.secrets.n, 2, "empty and duplicate secrets ignored");
	char *s = runner_mask_apply(&m, "x hunter2-pw y pw z", 19);
	is_str(s, "x *** y *** z", "longest secret masked whole");
	free(s);
	s = runner_mask_apply(&m, "nothing", 7);
	is_str(s, "nothing", "no secret, no change");
	free(s);
	runner_mask_release(&m);
	/* access key ids are masked by their shape, with no secret registered */
	const char *in = "id=AKIAIOSFODNN7EXAMPLE,ASIA0123456789ABCDEF;xAKIAIOSFODNN7EXAMPLEx";
	s = runner_mask_apply(&m, in, strlen(in));
	is_str(s, "id=***,***;x***x", "AKIA/ASIA key ids masked inside longer text");
	free(s);
	in = "AKIAIOSFODNN7EXAMPLEZ AKIAIOSFODNN7EXAMPL XAKIAIOSFODNN7EXAMPLE AKIAiosfodnn7example";
	s = runner_mask_apply(&m, in, strlen(in));
	is_str(s, in, "longer, shorter or lower-case runs are not key ids");
	free(s);
}

static void test_secret_ref(void)
{
	char *id, *key, *stage, *ver;
	cbl_error *e = NULL;
	ok(runner_secret_ref_parse("prod/db:password", &id, &key, &stage, &ver, &e) == 0, "id:key");
	is_str(id, "prod/db", "id");
	is_str(key, "password", "json key");
	ok(stage == NULL && ver == NULL, "no stage/version");
	free(id); free(key);
	ok(runner_secret_ref_parse("name::AWSPREVIOUS", &id, &key, &stage, &ver, &e) == 0, "empty middle field");
	is_str(key, "", "empty key");
	is_str(stage, "AWSPREVIOUS", "stage");
	free(id); free(key); free(stage); free(ver);
	ok(runner_secret_ref_parse("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:user",
				   &id, &key, &stage, &ver, &e) == 0, "ARN reference");
	is_str(id, "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf", "ARN id kept whole");
	is_str(key, "user", "key after ARN");
	free(id); free(key);
	ok(runner_secret_ref_parse("plain", &id, &key, &stage, &ver, &e) == 0 && !key, "id only");
	free(id);
	ok(runner_secret_ref_parse("a:b:c:d:e", &id, &key, &stage, &ver, &e) == CBL_EINVAL, "five fields rejected");
	cbl_error_clear(&e);
}

static void test_secrets_file(void)
{
	char path[] = "/tmp/cbl-secrets-XXXXXX";
	int fd = mkstemp(path);
	const char *json = "{\"parameter-store\": {\"/app/pw\": \"s3cr3t\"},"
			   " \"secrets-manager\": {\"prod/db\": \"{\\\"username\\\": \\\"app\\\", \\\"port\\\": 5432}\","
			   " \"plain\": \"just-a-string\"}}";
	ok(write(fd, json, strlen(json)) == (ssize_t)strlen(json), "write secrets file");
	close(fd);
	runner_secrets *s = NULL;
	cbl_error *e = NULL;
	char *v = NULL;
	ok(runner_secrets_load(&s, path, &e) == 0, "load");
	ok(runner_secrets_parameter(s, "/app/pw", &v, &e) == 0 && !strcmp(v, "s3cr3t"), "parameter");
	free(v);
	ok(runner_secrets_parameter(s, "/does/not/exist", &v, &e) == CBL_ENOENT, "missing parameter");
	ok(e && strstr(e->msg, "/does/not/exist"), "message names the parameter");
	cbl_error_clear(&e);
	ok(runner_secrets_secret(s, "prod/db:username", &v, &e) == 0 && !strcmp(v, "app"), "json key");
	free(v);
	ok(runner_secrets_secret(s, "prod/db:port", &v, &e) == 0 && !strcmp(v, "5432"), "non-string json value");
	free(v);
	ok(runner_secrets_secret(s, "plain", &v, &e) == 0 && !strcmp(v, "just-a-string"), "whole secret");
	free(v);
	ok(runner_secrets_secret(s, "prod/db:nokey", &v, &e) == CBL_ENOENT, "missing json key");
	cbl_error_clear(&e);
	ok(runner_secrets_secret(s, "plain:key", &v, &e) == CBL_EINVAL, "json key of a non-JSON secret");
	cbl_error_clear(&e);
	ok(runner_secrets_secret(s, "nope", &v, &e) == CBL_ENOENT, "missing secret");
	cbl_error_clear(&e);
	runner_secrets_free(s);
	FILE *f = fopen(path, "w");
	fputs("{\"other\": {}}", f);
	fclose(f);
	ok(runner_secrets_load(&s, path, &e) == CBL_EINVAL, "unknown section rejected");
	cbl_error_clear(&e);
	f = fopen(path, "w");
	fputs("{not json", f);
	fclose(f);
	ok(runner_secrets_load(&s, path, &e) == CBL_EINVAL && strstr(e->msg, path), "syntax error names the file");
	cbl_error_clear(&e);
	unlink(path);
}

/* command model ------------------------------------------------------ */

typedef struct lines {
	cbl_strv v;
} lines;

static void collect(const char *line, size_t len, void *payload)
{
	lines *l = payload;
	cbl_strv_push_take(&l->v, cbl_xstrndup(line, len));
}

static bool has_line(lines *l, const char *s)
{
	for (size_t i = 0; i < l->v.n; i++)
		if (strstr(l->v.v[i], s))
			return true;
	return false;
}

static int run(runner_shell *sh, const char *cmd, char **envp)
{
	runner_cmd_outcome how;
	int status = -1;
	cbl_error *e = NULL;
	int rc = runner_shell_exec(sh, cmd, envp, &how, &status, &e);
	cbl_error_free(e);
	return rc < 0 ? -1000 : status;
}

/* The state letter of /proc/<pid>/stat ('S', 'Z', ...), 0 when it is gone. */
static char proc_state(long pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

static void test_shell(bool carry)
{
	char tmpl[] = "/tmp/cbl-shell-XXXXXX";
	char *dir = mkdtemp(tmpl);
	char *tmp = cbl_path_join(dir, "tmp");
	char *src = cbl_path_join(dir, "src");
	cbl_error *e = NULL;
	cbl_mkdir_p(src, 0755, &e);
	char *envp[] = {(char *)"PATH=/usr/bin:/bin", (char *)"BASE=base", NULL};
	runner_shell sh;
	lines out = {CBL_STRV_INIT};
	ok(runner_shell_init(&sh, tmp, NULL, carry, src, (const char *const *)envp, &e) == 0, "init (%s)",
	   carry ? "0.2" : "0.1");
	sh.on_line = collect;
	sh.payload = &out;
	is_int(run(&sh, "mkdir -p sub && cd sub", envp), 0, "cd");
	is_int(run(&sh, "export X=1; Y=2; f() { echo fn; }; set -e", envp), 0, "assign");
	is_int(run(&sh, "echo \"pwd=$(basename $PWD) x=[$X] y=[$Y] base=$BASE\"; f || echo nofn", envp), 0, "read back");
	if (carry)
		ok(has_line(&out, "pwd=sub x=[1] y=[2] base=base"), "0.2: cwd, exports and assignments carry");
	else
		ok(has_line(&out, "pwd=src x=[] y=[] base=base"), "0.1: nothing carries");
	ok(has_line(&out, "nofn"), "functions never carry");
	is_int(run(&sh, "false; true", envp), 0, "status is the last command's");
	is_int(run(&sh, "true\nfalse", envp), 1, "multi-line: last line decides");
	is_int(run(&sh, "exit 7", envp), 7, "exit N is the status");
	is_int(run(&sh, "export LOST=yes; cd /; exit 0", envp), 0, "exit 0 succeeds");
	is_int(run(&sh, "echo \"lost=[$LOST] $(pwd)\"", envp), 0, "after exit");
	ok(has_line(&out, carry ? "lost=[] " : "lost=[] "), "exit discards that command's changes");
	is_int(run(&sh, "nosuchcommand-xyz", envp), 127, "command not found is 127");
	ok(has_line(&out, "script.sh: 4:") || has_line(&out, "script.sh: line 4:"),
	   "errors point at line 4 of script.sh like the service's");
	is_int(run(&sh, "echo to-stderr >&2", envp), 0, "stderr");
	ok(has_line(&out, "to-stderr"), "stderr is captured");
	is_int(run(&sh, "printf 'no newline'", envp), 0, "partial line");
	ok(has_line(&out, "no newline"), "a last line without newline is emitted");
	if (carry) {
		ok(runner_shell_set_var(&sh, "CODEBUILD_BUILD_SUCCEEDING", "0", &e) == 0, "set var");
		const char *names[] = {"CODEBUILD_BUILD_SUCCEEDING", "X", "NOPE", "BAD-NAME"};
		char **vals = NULL;
		ok(runner_shell_read_vars(&sh, envp, names, 4, &vals, &e) == 0, "read vars");
		if (vals) {
			is_str(vals[0], "0", "set var visible");
			is_str(vals[1], "1", "carried var readable");
			is_str(vals[2], "", "unset is empty");
			is_str(vals[3], "", "invalid name is empty");
			for (int i = 0; i < 4; i++)
				free(vals[i]);
			free(vals);
		}
	}
	if (carry) {
		const char *in[] = {"out-$X-$(echo sub)-$((1+2))", "*.zip $NOPE", "'quoted' \"dq\" \\$X"};
		char **exp = NULL;
		ok(runner_shell_expand(&sh, envp, in, 3, &exp, &e) == 0, "expand");
		if (exp) {
			is_str(exp[0], "out-1-sub-3", "variables, command substitution, arithmetic");
			is_str(exp[1], "*.zip ", "no globbing, unset is empty");
			is_str(exp[2], "'quoted' \"dq\" $X", "quotes kept, \\$ escapes");
			for (int i = 0; i < 3; i++)
				free(exp[i]);
			free(exp);
		}
		const char *bad[] = {"two\nlines"};
		ok(runner_shell_expand(&sh, envp, bad, 1, &exp, &e) == CBL_EINVAL, "multi-line rejected");
		cbl_error_clear(&e);
	}
	/* a background job outlives its command and does not block the runner */
	is_int(run(&sh, "sleep 30 & echo \"bg-pid=$!\"", envp), 0, "background job");
	long bg = 0;
	for (size_t i = 0; i < out.v.n; i++)
		if (!strncmp(out.v.v[i], "bg-pid=", 7))
			bg = strtol(out.v.v[i] + 7, NULL, 10);
	char before = bg > 0 ? proc_state(bg) : 0;
	ok(before && before != 'Z', "the background job runs after its command (%c)", before ? before : '-');
	runner_shell_kill_all(&sh);
	char after = bg > 0 ? proc_state(bg) : 0;
	for (int i = 0; i < 200 && after && after != 'Z'; i++) {
		usleep(10000);
		after = proc_state(bg);
	}
	ok(bg > 0 && (!after || after == 'Z'), "kill_all killed the background job (%c)", after ? after : '-');
	runner_shell_release(&sh);
	cbl_strv_release(&out.v);
	cbl_rm_rf(dir, &e);
	free(tmp);
	free(src);
}

static void test_timeout(void)
{
	char tmpl[] = "/tmp/cbl-shell-XXXXXX";
	char *dir = mkdtemp(tmpl);
	char *tmp = cbl_path_join(dir, "tmp");
	cbl_error *e = NULL;
	char *envp[] = {(char *)"PATH=/usr/bin:/bin", NULL};
	runner_shell sh;
	lines out = {CBL_STRV_INIT};
	runner_shell_init(&sh, tmp, NULL, true, dir, (const char *const *)envp, &e);
	sh.on_line = collect;
	sh.payload = &out;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sh.deadline_mono_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 + 300000;
	runner_cmd_outcome how = RUNNER_CMD_EXITED;
	int status = 0;
	ok(runner_shell_exec(&sh, "sleep 30", envp, &how, &status, &e) == 0, "exec");
	is_int(how, RUNNER_CMD_TIMED_OUT, "a hanging command is ended by the deadline");
	runner_shell_kill_all(&sh);
	runner_shell_release(&sh);
	cbl_strv_release(&out.v);
	cbl_rm_rf(dir, &e);
	free(tmp);
}


/* Secrets reach commands through their environment only; the scratch
 * directory's files are never followed. */
static void test_shell_scratch(void)
{
	char tmpl[] = "/tmp/cbl-scratch-XXXXXX";
	char *dir = mkdtemp(tmpl);
	char *tmp = cbl_path_join(dir, "tmp"), *src = cbl_path_join(dir, "src");
	char *host = cbl_path_join(dir, "host-secret");
	cbl_error *e = NULL;
	cbl_mkdir_p(src, 0755, &e);
	cbl_write_file_atomic(host, "host", 4, 0600, false, &e);
	char *envp[] = {(char *)"PATH=/usr/bin:/bin", (char *)"DB_PASS=hunter2-xyz", (char *)"PLAIN=p", NULL};
	runner_shell sh;
	lines out = {CBL_STRV_INIT};
	ok(runner_shell_init(&sh, tmp, NULL, true, src, (const char *const *)envp, &e) == 0, "init");
	sh.on_line = collect;
	sh.payload = &out;
	const char *names[] = {"DB_PASS", "not a name"};
	runner_shell_set_secrets(&sh, names, 2);
	struct stat st;
	ok(stat(tmp, &st) == 0 && (st.st_mode & 07777) == 0700, "the scratch directory is 0700");
	char *envsh = cbl_path_join(tmp, "env.sh"), *data = NULL;
	is_int(run(&sh, "export MINE=1; echo \"pw=[$DB_PASS]\"", envp), 0, "a command reads the secret");
	ok(has_line(&out, "pw=[hunter2-xyz]"), "the secret is in the command's environment");
	ok(cbl_read_file(envsh, 0, &data, NULL, &e) == 0 && strstr(data, "MINE") && !strstr(data, "hunter2"),
	   "env.sh carries the build's variables, not the secret");
	free(data);
	is_int(run(&sh, "echo \"again=[$DB_PASS] mine=[$MINE]\"", envp), 0, "next command");
	ok(has_line(&out, "again=[hunter2-xyz] mine=[1]"), "the secret and the carried state both reach it");
	const char *want[] = {"DB_PASS"};
	char **vals = NULL;
	ok(runner_shell_read_vars(&sh, envp, want, 1, &vals, &e) == 0 && vals && !strcmp(vals[0], "hunter2-xyz"),
	   "read_vars sees the secret (through the FIFO)");
	if (vals) {
		free(vals[0]);
		free(vals);
	}
	is_int(run(&sh, "DB_PASS=reassigned", envp), 0, "the build reassigns the secret");
	is_int(run(&sh, "echo \"now=[$DB_PASS]\"", envp), 0, "next command");
	ok(has_line(&out, "now=[reassigned]"), "a reassigned secret carries over like any variable");
	/* nothing of the values rests in the scratch directory */
	bool values_left = false;
	DIR *d = opendir(tmp);
	for (struct dirent *de; d && (de = readdir(d));)
		values_left |= !strncmp(de->d_name, "values", 6);
	if (d)
		closedir(d);
	ok(!values_left, "no values file or FIFO left in the scratch directory");

	/* script.sh swapped for a symlink to a 0600 host file */
	char *script = cbl_path_join(tmp, "script.sh");
	unlink(script);
	ok(symlink(host, script) == 0, "script.sh is now a symlink to a host file");
	is_int(run(&sh, "echo ran-after-swap", envp), 0, "the next command runs");
	ok(has_line(&out, "ran-after-swap"), "its own script");
	ok(stat(host, &st) == 0 && (st.st_mode & 07777) == 0600, "the host file is still 0600");
	ok(cbl_read_file(host, 0, &data, NULL, &e) == 0 && !strcmp(data, "host"), "and unchanged");
	free(data);

	/* dir.txt a FIFO: the command's own `pwd >` blocks on it, the runner
	 * does not (the deadline ends the command), nor does set_var */
	char *dirtxt = cbl_path_join(tmp, "dir.txt");
	pid_t kid = fork();
	if (kid == 0) {
		alarm(20);
		cbl_error *ce = NULL;
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		sh.deadline_mono_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000 + 1500000;
		unlink(dirtxt);
		mkfifo(dirtxt, 0666);
		runner_cmd_outcome how = RUNNER_CMD_EXITED;
		int status = 0;
		runner_shell_exec(&sh, "true", envp, &how, &status, &ce);
		runner_shell_set_var(&sh, "X", "1", &ce);
		_exit(how == RUNNER_CMD_TIMED_OUT ? 0 : 1);
	}
	int ws = 0;
	waitpid(kid, &ws, 0);
	ok(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "a FIFO at dir.txt does not block the runner past the deadline");
	unlink(dirtxt);
	unlink(envsh);
	ok(symlink(host, envsh) == 0, "env.sh is now a symlink to the host file");
	ok(runner_shell_set_var(&sh, "X", "1", &e) < 0, "set_var refuses to follow it");
	cbl_error_clear(&e);
	ok(cbl_read_file(host, 0, &data, NULL, &e) == 0 && !strcmp(data, "host"), "the host file is unchanged");
	free(data);
	runner_shell_release(&sh);
	cbl_strv_release(&out.v);
	cbl_rm_rf(dir, &e);
	cbl_error_free(e);
	free(tmp); free(src); free(host); free(envsh); free(script); free(dirtxt);
}

/* Every file in exactly one shard; equal-distribution's sizes differ by at
 * most one; stability moves no file when another is added. */
static void test_shards(void)
{
	char *files[41];
	for (int i = 0; i < 41; i++)
		files[i] = cbl_xasprintf("t/%02d_test.sh", 40 - i); /* not in name order */
	for (int strat = 0; strat < 2; strat++) {
		int owner[41], owner40[41];
		size_t out[41], total = 0, min = 41, max = 0;
		for (int pass = 0; pass < 2; pass++) {
			size_t n = pass ? 41 : 40;
			for (int s = 1; s <= 4; s++) {
				size_t k = runner_shard_select((const char *const *)files, n, s, 4, strat, out);
				if (!pass) {
					total += k;
					min = k < min ? k : min;
					max = k > max ? k : max;
				}
				for (size_t i = 0; i < k; i++)
					(pass ? owner40 : owner)[out[i]] = s;
				for (size_t i = 1; i < k; i++)
					ok(strcmp(files[out[i - 1]], files[out[i]]) < 0 || pass, "a shard's files in name order");
			}
		}
		is_int((long)total, 40, "every file in one shard");
		if (strat == RUNNER_SHARD_EQUAL) {
			ok(max - min <= 1, "equal-distribution: sizes differ by at most one");
		} else {
			int moved = 0;
			for (int i = 0; i < 40; i++)
				moved += owner[i] != owner40[i];
			is_int(moved, 0, "stability: adding a file moves no other");
		}
	}
	size_t out[2];
	is_int((long)runner_shard_select((const char *const *)files, 2, 5, 4, RUNNER_SHARD_EQUAL, out), 0,
	       "a shard beyond the count gets nothing");
	for (int i = 0; i < 41; i++)
		free(files[i]);
}

/* The batch scheduler with stand-in builds (a shell that prints a build's
 * JSON stream): dependencies, a failure's dependents never started,
 * --max-parallel, fast-fail and the record. */
typedef struct sched_probe {
	runner_batch *b;
	size_t max_running;
	char order[64];
} sched_probe;

static void sched_event(const runner_batch_event *ev, void *payload)
{
	sched_probe *p = payload;
	if (ev->kind != RUNNER_BATCH_EV_BUILD || !p->b)
		return;
	size_t running = 0;
	for (size_t i = 0; i < runner_batch_count(p->b); i++) {
		runner_batch_info in;
		runner_batch_build_info(p->b, i, &in);
		running += !strcmp(in.state, "RUNNING");
	}
	p->max_running = running > p->max_running ? running : p->max_running;
	runner_batch_info in;
	runner_batch_build_info(p->b, ev->index, &in);
	if (!strcmp(in.state, "RUNNING") && in.phase && !strcmp(in.phase, "SUBMITTED") &&
	    strlen(p->order) + 2 < sizeof(p->order)) {
		strncat(p->order, in.identifier, 1);
	}
}

static runner_status run_sched(const char *dir, int max_parallel, bool fast_fail, sched_probe *p)
{
	char *spec = cbl_xasprintf("version: 0.2\nbatch:\n  fast-fail: %s\n  build-graph:\n"
				   "    - identifier: A\n    - identifier: B\n      depend-on: [A]\n"
				   "    - identifier: C\n      depend-on: [A]\n    - identifier: D\n"
				   "      depend-on: [B, C]\n    - identifier: E\n",
				   fast_fail ? "true" : "false");
	char *path = cbl_path_join(dir, "buildspec.yml");
	cbl_write_file_atomic(path, spec, strlen(spec), 0644, false, NULL);
	free(path);
	free(spec);
	/* $2 is the identifier (--batch-build ID); C fails at once, B is slow */
	static const char script[] =
		"id=$2; st=SUCCEEDED; t=0.1; [ $id = C ] && st=FAILED t=0; [ $id = B ] && t=1;"
		"printf '{\"event\":\"phase-start\",\"phase\":\"BUILD\"}\\n'; sleep $t;"
		"printf '{\"build\":{\"id\":\"p:%s\",\"arn\":\"arn:p:%s\",\"buildStatus\":\"%s\"}}\\n' $id $id $st";
	const char *argv[] = {"/bin/sh", "-c", script, "sh", NULL};
	char *home = cbl_path_join(dir, "home");
	runner_opts o = RUNNER_OPTS_INIT;
	o.source_dir = dir;
	o.home = home;
	o.project_name = "sched";
	runner_batch_opts bo = {.build = &o, .child_argv = argv, .max_parallel = max_parallel,
				.on_event = sched_event, .payload = p};
	cbl_error *e = NULL;
	runner_status st = RUNNER_STATUS_FAULT;
	if (runner_batch_new(&p->b, &bo, &e) == 0 && runner_batch_run(p->b, &e) == 0)
		st = runner_batch_status(p->b);
	cbl_error_free(e);
	free(home);
	return st;
}

static void test_batch_scheduler(void)
{
	char tmpl[] = "/tmp/test_batch.XXXXXX";
	char *dir = mkdtemp(tmpl);
	sched_probe p = {0};
	is_int(run_sched(dir, 1, false, &p), RUNNER_STATUS_FAILED, "a graph with a failure fails");
	is_int((long)p.max_running, 1, "--max-parallel 1: one build at a time");
	ok(p.order[0] == 'A' || p.order[0] == 'E', "A (or the independent E) first");
	ok(!strchr(p.order, 'D'), "D, after the failed C, never starts");
	runner_batch_info in;
	runner_batch_build_info(p.b, 3, &in);
	ok(!strcmp(in.state, "NOT_STARTED") && !in.status, "D is NOT_STARTED, without a status");
	runner_batch_build_info(p.b, 1, &in);
	ok(in.status && !strcmp(in.status, "SUCCEEDED"), "without fast-fail the slow B finishes");
	json_t *rec = runner_batch_record(p.b);
	json_t *groups = json_object_get(rec, "buildGroups");
	ok(json_array_size(groups) == 5 &&
		   !json_object_get(json_array_get(groups, 3), "currentBuildSummary") &&
		   json_is_true(json_object_get(rec, "complete")),
	   "the record: five groups, D without a build");
	runner_batch_free(p.b);

	memset(&p, 0, sizeof(p));
	is_int(run_sched(dir, 0, true, &p), RUNNER_STATUS_FAILED, "fast-fail fails the batch");
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	ok(p.max_running >= 1 && (long)p.max_running <= (ncpu > 1 ? ncpu : 1),
	   "the default budget: at most one small build per CPU");
	runner_batch_build_info(p.b, 1, &in);
	ok(ncpu < 2 || (in.status && !strcmp(in.status, "STOPPED")), "fast-fail stops the running B");
	runner_batch_free(p.b);
	cbl_error *e = NULL;
	cbl_rm_rf(dir, &e);
	cbl_error_free(e);
}

/* codebuild-breakpoint is recognised as the whole command only. */
static void test_breakpoint(void)
{
	ok(runner_is_breakpoint("codebuild-breakpoint"), "breakpoint");
	ok(runner_is_breakpoint("  codebuild-breakpoint ;\n"), "breakpoint, with blanks");
	ok(!runner_is_breakpoint("codebuild-breakpoints"), "not a longer name");
	ok(!runner_is_breakpoint("codebuild-breakpoint && make"), "not part of a command");
	ok(!runner_is_breakpoint("echo codebuild-breakpoint"), "not an argument");
}

/* The debug socket's wire: a request and its descriptors round-trip; a
 * malformed one is refused, never trusted. */
static void test_debug_wire(void)
{
	int sv[2];
	ok(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	const char *argv[] = {"make", "test", NULL};
	int fds[3] = {0, 1, 2}, got[3] = {-1, -1, -1}, n = 0;
	cbl_error *e = NULL;
	is_int(runner_attach_send(sv[0], RUNNER_DEBUG_EXEC, RUNNER_DEBUG_TTY, argv, fds, 3, &e), 0, "a request sent");
	runner_debug_request rq;
	char *strs = NULL, **args = NULL;
	is_int(runner_debug_recv(sv[1], &rq, got, &n, &strs, &args, &e), 0, "and read");
	ok(rq.kind == RUNNER_DEBUG_EXEC && rq.flags == RUNNER_DEBUG_TTY && rq.argc == 2 && n == 3 &&
	   !strcmp(args[0], "make") && !strcmp(args[1], "test"), "kind, flags, argv and 3 descriptors");
	for (int i = 0; i < n; i++)
		close(got[i]);
	free(args);
	free(strs);
	/* argc beyond the strings, a bad magic, a short header */
	runner_debug_request bad = {.magic = RUNNER_DEBUG_MAGIC, .kind = RUNNER_DEBUG_EXEC, .argc = 3, .len = 2};
	(void)!write(sv[0], &bad, sizeof(bad));
	(void)!write(sv[0], "a", 2);
	is_int(runner_debug_recv(sv[1], &rq, got, &n, &strs, &args, &e), CBL_EINVAL, "argc past the strings: refused");
	cbl_error_clear(&e);
	bad.magic = 1;
	bad.argc = 0;
	bad.len = 0;
	(void)!write(sv[0], &bad, sizeof(bad));
	is_int(runner_debug_recv(sv[1], &rq, got, &n, &strs, &args, &e), CBL_EINVAL, "a bad magic: refused");
	cbl_error_clear(&e);
	bad.magic = RUNNER_DEBUG_MAGIC;
	bad.len = 1u << 30;
	(void)!write(sv[0], &bad, sizeof(bad));
	is_int(runner_debug_recv(sv[1], &rq, got, &n, &strs, &args, &e), CBL_EINVAL, "a huge length: refused");
	cbl_error_clear(&e);
	close(sv[0]);
	is_int(runner_debug_recv(sv[1], &rq, got, &n, &strs, &args, &e), CBL_EINVAL, "a closed peer: refused");
	cbl_error_clear(&e);
	close(sv[1]);
}

int main(void)
{
	test_batch_scheduler();
	test_shards();
	test_breakpoint();
	test_debug_wire();
	test_mask();
	test_secret_ref();
	test_secrets_file();
	test_shell(true);
	test_shell(false);
	test_shell_scratch();
	test_timeout();
	return tap_done();
}
