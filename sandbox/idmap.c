/* sandbox/idmap.c - the user namespace's id maps as a normal user.
 *
 * A process may write its own user namespace's uid_map with one line, the
 * caller's own id, and gid_map only after denying setgroups: the kernel's
 * rule for an unprivileged map.  Anything more (the caller's subordinate ids
 * from /etc/subuid and /etc/subgid) is written by the setuid helpers of
 * shadow, newuidmap and newgidmap, which check the ranges against those
 * files; rootless podman and buildah map the same way.  The helpers run as
 * root, so they get nothing of ours: an empty environment (no LD_*, no
 * locale or PATH for them to trust), stdin and stdout /dev/null, stderr a
 * pipe we read for their complaint, no other descriptor, and a bounded time
 * (then SIGKILL).  newgidmap leaves setgroups allowed when it maps a range,
 * which is what lets apt (setgroups, then setresuid to _apt) drop
 * privileges inside.
 *
 * Nothing here prints; errors say which helper failed and what it said.
 */
#include "sandbox/sandbox_internal.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/spawn.h"

#include "util/banned.h"

/* ---------------------------------------------------------------- probing */

void sandbox_subids_parse(const char *text, const char *name, unsigned long id, uint32_t *start, uint32_t *count)
{
	char idbuf[32];
	snprintf(idbuf, sizeof(idbuf), "%lu", id);
	*start = *count = 0;
	for (const char *line = text; line && *line;) {
		size_t len = strcspn(line, "\n");
		const char *c1 = memchr(line, ':', len);
		const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
		if (c1 && c2 && line[0] != '#') {
			size_t nl = (size_t)(c1 - line);
			bool me = (name && strlen(name) == nl && !strncmp(line, name, nl)) ||
				  (strlen(idbuf) == nl && !strncmp(line, idbuf, nl));
			char num[32];
			size_t sl = (size_t)(c2 - c1 - 1), cl = len - (size_t)(c2 + 1 - line);
			unsigned long long s = 0, n = 0;
			char *end = NULL;
			bool good = me && sl && sl < sizeof(num) && cl && cl < sizeof(num);
			if (good) {
				memcpy(num, c1 + 1, sl);
				num[sl] = '\0';
				errno = 0;
				s = strtoull(num, &end, 10);
				good = !errno && !*end;
			}
			if (good) {
				memcpy(num, c2 + 1, cl);
				num[cl] = '\0';
				errno = 0;
				n = strtoull(num, &end, 10);
				/* the range's last id must be an id (32 bits, not -1) */
				good = !errno && !*end && n && s + n - 1 < 0xffffffffull;
			}
			if (good) {
				*start = (uint32_t)s;
				*count = (uint32_t)n;
				return;
			}
		}
		line += len + (line[len] == '\n');
	}
}

/* A setuid helper where the distribution puts it: a fixed list of system
 * directories, never the caller's PATH. */
static void find_helper(const char *name, char *out, size_t size)
{
	static const char *const dirs[] = {"/usr/bin", "/bin", "/usr/sbin", "/sbin"};
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
		char p[64];
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s", dirs[i], name);
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0) {
			snprintf(out, size, "%s", p);
			return;
		}
	}
}

static void read_range(const char *file, const char *name, unsigned long id, uint32_t *start, uint32_t *count)
{
	char *text = NULL;
	size_t len = 0;
	*start = *count = 0;
	if (cbl_read_file(file, 4 << 20, &text, &len, NULL) == 0)
		sandbox_subids_parse(text, name, id, start, count);
	free(text);
}

void sandbox_ids_probe(sandbox_ids *out)
{
	memset(out, 0, sizeof(*out));
	out->uid = geteuid();
	out->gid = getegid();
	sandbox_fuse_probe(out);
	if (out->uid == 0)
		return;
	char buf[4096], name[64] = "";
	struct passwd pw, *pwp = NULL;
	if (getpwuid_r(out->uid, &pw, buf, sizeof(buf), &pwp) == 0 && pwp)
		snprintf(name, sizeof(name), "%s", pw.pw_name);
	read_range("/etc/subuid", *name ? name : NULL, out->uid, &out->subuid, &out->nsubuid);
	read_range("/etc/subgid", *name ? name : NULL, out->uid, &out->subgid, &out->nsubgid);
	find_helper("newuidmap", out->newuidmap, sizeof(out->newuidmap));
	find_helper("newgidmap", out->newgidmap, sizeof(out->newgidmap));
	char who[80];
	if (*name)
		snprintf(who, sizeof(who), "%s", name);
	else
		snprintf(who, sizeof(who), "uid %lu", (unsigned long)out->uid);
	const char *ids = !out->nsubuid && !out->nsubgid ? "subordinate ids in /etc/subuid and /etc/subgid"
			  : !out->nsubuid		 ? "subordinate uids in /etc/subuid"
			  : !out->nsubgid		 ? "subordinate gids in /etc/subgid"
							 : NULL;
	const char *helpers = !*out->newuidmap && !*out->newgidmap ? "newuidmap and newgidmap are"
			      : !*out->newuidmap			   ? "newuidmap is"
			      : !*out->newgidmap			   ? "newgidmap is"
									   : NULL;
	if (ids && helpers)
		snprintf(out->missing, sizeof(out->missing), "%s has no %s, and %s not installed (Debian's uidmap)",
			 who, ids, helpers);
	else if (ids)
		snprintf(out->missing, sizeof(out->missing), "%s has no %s", who, ids);
	else if (helpers)
		snprintf(out->missing, sizeof(out->missing), "%s not installed (Debian's uidmap package)", helpers);
}

bool sandbox_ids_full(const sandbox_ids *ids)
{
	return ids->uid == 0 || !ids->missing[0];
}

/* ---------------------------------------------------------------- the maps */

/* One line of the helper's stderr, for the error (the rest is dropped). */
static void first_line(char *s)
{
	s[strcspn(s, "\n")] = '\0';
}

/* Runs the helper argv[0] (absolute) and waits at most timeout_ms for it:
 * its exit status, or -1 with msg saying why it did not run or end. */
static int run_helper(char *const argv[], int timeout_ms, char *msg, size_t msglen)
{
	int errp[2] = {-1, -1}, w = -1, pidfd = -1, status = -1;
	pid_t pid = -1;
	size_t got = 0;
	msg[0] = '\0';
	if (pipe2(errp, O_CLOEXEC) < 0) {
		snprintf(msg, msglen, "pipe: %s", strerror(errno));
		return -1;
	}
	/* the source of the dup2 onto 2 must not be 0..2 itself */
	w = fcntl(errp[1], F_DUPFD_CLOEXEC, 3);
	char *envp[] = {NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	cbl_spawnattr_clean(&at, 0);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, w, 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	int rc = w < 0 ? errno : posix_spawn(&pid, argv[0], &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(errp[1]);
	if (w >= 0)
		close(w);
	if (rc) {
		snprintf(msg, msglen, "cannot run it: %s", strerror(rc));
		close(errp[0]);
		return -1;
	}
	/* our unreaped child: its pid is not reused before the wait below,
	 * the pidfd keeps the kill at the deadline on it if another waiter
	 * (a subreaper's waitpid(-1)) reaped it meanwhile */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int64_t deadline = cbl_mono_us() / 1000 + timeout_ms;
	bool timed_out = false;
	for (;;) {
		int64_t left = deadline - cbl_mono_us() / 1000;
		struct pollfd pf = {.fd = errp[0], .events = POLLIN};
		int n = left > 0 ? poll(&pf, 1, (int)left) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			timed_out = n == 0;
			break;
		}
		char chunk[256];
		ssize_t r = read(errp[0], chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* EOF: it has exited (or closed its stderr) */
		size_t take = (size_t)r < msglen - 1 - got ? (size_t)r : msglen - 1 - got;
		memcpy(msg + got, chunk, take);
		got += take;
		msg[got] = '\0';
	}
	close(errp[0]);
	if (timed_out) {
		if (pidfd >= 0)
			syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
		else
			kill(pid, SIGKILL);
	}
	int ws = 0;
	pid_t wr;
	while ((wr = waitpid(pid, &ws, 0)) < 0 && errno == EINTR)
		;
	if (pidfd >= 0)
		close(pidfd);
	if (timed_out) {
		snprintf(msg, msglen, "it did not finish within %d ms (killed)", timeout_ms);
		return -1;
	}
	if (wr < 0)
		return 0; /* reaped by someone else: the map itself tells (the caller checks) */
	first_line(msg);
	if (WIFEXITED(ws))
		status = WEXITSTATUS(ws);
	else
		snprintf(msg, msglen, "it was killed by signal %d", WTERMSIG(ws));
	return status;
}

static int write_single(const sandbox_step *st, pid_t pid, cbl_error **err)
{
	char path[64], line[64];
	if (st->kind == SANDBOX_STEP_GID_MAP) {
		/* an unprivileged gid_map needs setgroups denied first */
		snprintf(path, sizeof(path), "/proc/%ld/setgroups", (long)pid);
		sandbox_write_str(path, "deny");
	}
	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, st->kind == SANDBOX_STEP_UID_MAP ? "uid_map" : "gid_map");
	snprintf(line, sizeof(line), "0 %lld 1\n", (long long)st->num);
	if (sandbox_write_str(path, line) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: cannot write the user namespace's id maps");
	return 0;
}

/* A map was written when the file is not empty any more. */
static bool map_written(pid_t pid, const char *file)
{
	char path[64], *text = NULL;
	size_t len = 0;
	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, file);
	bool yes = cbl_read_file(path, 1 << 16, &text, &len, NULL) == 0 && len > 0;
	free(text);
	return yes;
}

int sandbox_idmap_write(const sandbox_step *st, pid_t pid, cbl_error **err)
{
	if (!st->path || !st->arg)
		return write_single(st, pid, err);
	/* path PID 0 OUTER 1 then the ranges: at most a few dozen fields */
	enum { MAX_ARGS = 40 };
	char *argv[MAX_ARGS + 1];
	char pidbuf[24], outer[24];
	char *fields = cbl_xstrdup(st->arg);
	size_t n = 0;
	snprintf(pidbuf, sizeof(pidbuf), "%ld", (long)pid);
	snprintf(outer, sizeof(outer), "%lld", (long long)st->num);
	argv[n++] = st->path;
	argv[n++] = pidbuf;
	argv[n++] = (char *)"0";
	argv[n++] = outer;
	argv[n++] = (char *)"1";
	for (char *f = fields; *f && n < MAX_ARGS;) {
		f += strspn(f, " ");
		size_t l = strcspn(f, " ");
		if (!l)
			break;
		argv[n++] = f;
		f += l;
		if (*f)
			*f++ = '\0';
	}
	argv[n] = NULL;
	char msg[256];
	int status = run_helper(argv, SANDBOX_IDMAP_TIMEOUT_MS, msg, sizeof(msg));
	free(fields);
	const char *file = st->kind == SANDBOX_STEP_UID_MAP ? "uid_map" : "gid_map";
	if (status == 0 && map_written(pid, file))
		return 0;
	if (status > 0)
		return cbl_error_set(err, CBL_EIO, "sandbox: %s failed (exit status %d)%s%s", st->path, status,
				     *msg ? ": " : "", msg);
	return cbl_error_set(err, CBL_EIO, "sandbox: %s: %s", st->path, *msg ? msg : "the map was not written");
}

/* ---------------------------------------------------------------- a child in the range */

/* The maps of a namespace with ids' whole range, as steps. */
static void range_steps(const sandbox_ids *ids, sandbox_step out[2], char uidr[64], char gidr[64])
{
	snprintf(uidr, 64, "1 %lu %lu", (unsigned long)ids->subuid, (unsigned long)ids->nsubuid);
	snprintf(gidr, 64, "1 %lu %lu", (unsigned long)ids->subgid, (unsigned long)ids->nsubgid);
	out[0] = (sandbox_step){SANDBOX_STEP_UID_MAP, uidr, (char *)ids->newuidmap, ids->uid, NULL};
	out[1] = (sandbox_step){SANDBOX_STEP_GID_MAP, gidr, (char *)ids->newgidmap, ids->gid, NULL};
}

static __attribute__((noreturn)) void ids_child(int ready, int go, int (*fn)(void *), void *payload)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	char c = unshare(CLONE_NEWUSER) == 0 ? 'u' : 'e';
	if (write(ready, &c, 1) != 1 || c != 'u')
		_exit(126);
	close(ready);
	ssize_t r;
	while ((r = read(go, &c, 1)) < 0 && errno == EINTR)
		;
	if (r != 1 || c != 'g')
		_exit(126);
	close(go);
	int rc = fn(payload);
	_exit(rc < 0 || rc > 125 ? 125 : rc);
}

int sandbox_ids_run(const sandbox_ids *ids, int (*fn)(void *payload), void *payload, int *status, cbl_error **err)
{
	int ready[2] = {-1, -1}, go[2] = {-1, -1}, rc = 0;
	*status = -1;
	if (ids->uid == 0 || !sandbox_ids_full(ids))
		return cbl_error_set(err, CBL_EINVAL, "sandbox: no range of ids to map (%s)",
				     ids->uid == 0 ? "root needs none" : ids->missing);
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(go, O_CLOEXEC) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: pipe");
		goto out;
	}
	/* a fork, not a bare clone: fn may allocate (glibc's fork leaves
	 * malloc usable in the child of a threaded caller) */
	pid_t pid = fork();
	if (pid < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: fork");
		goto out;
	}
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		ids_child(ready[1], go[0], fn, payload);
	}
	close(ready[1]);
	close(go[0]);
	ready[1] = go[0] = -1;
	char c = 0;
	ssize_t r;
	while ((r = read(ready[0], &c, 1)) < 0 && errno == EINTR)
		;
	if (r != 1 || c != 'u') {
		rc = cbl_error_set(err, CBL_EIO, "sandbox: cannot create a user namespace (unshare)");
	} else {
		sandbox_step st[2];
		char uidr[64], gidr[64];
		range_steps(ids, st, uidr, gidr);
		for (int i = 0; i < 2 && !rc; i++)
			rc = sandbox_idmap_write(&st[i], pid, err);
		if (!rc && write(go[1], "g", 1) != 1)
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: the child in the user namespace is gone");
	}
	/* on failure the child reads EOF and exits */
	close(go[1]);
	go[1] = -1;
	int ws = 0;
	pid_t wr;
	while ((wr = waitpid(pid, &ws, 0)) < 0 && errno == EINTR)
		;
	if (!rc && wr < 0)
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: the child in the user namespace was not "
							      "ours to wait for");
	else if (!rc && WIFEXITED(ws) && WEXITSTATUS(ws) == 126)
		rc = cbl_error_set(err, CBL_EIO, "sandbox: the child could not enter its user namespace");
	else if (!rc && WIFEXITED(ws))
		*status = WEXITSTATUS(ws);
	else if (!rc)
		rc = cbl_error_set(err, CBL_EIO, "sandbox: the child in the user namespace was killed by signal %d",
				   WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
out:
	for (int i = 0; i < 2; i++) {
		if (ready[i] >= 0)
			close(ready[i]);
		if (go[i] >= 0)
			close(go[i]);
	}
	return rc;
}

/* ---------------------------------------------------------------- removal */

static int rm_child(void *payload)
{
	return cbl_rm_rf(payload, NULL) == 0 ? 0 : 1;
}

int sandbox_ids_rm_rf(const char *path, cbl_error **err)
{
	cbl_error *first = NULL;
	if (cbl_rm_rf(path, &first) == 0)
		return 0;
	sandbox_ids ids;
	sandbox_ids_probe(&ids);
	if (ids.uid == 0 || !sandbox_ids_full(&ids)) {
		if (err && !*err)
			*err = first;
		else
			cbl_error_free(first);
		return CBL_EIO;
	}
	int status = -1;
	int rc = sandbox_ids_run(&ids, rm_child, (void *)path, &status, err);
	if (!rc && status != 0)
		rc = cbl_error_set(err, CBL_EIO, "%s (in the user namespace of the subordinate ids too)",
				   first ? first->msg : "cannot remove");
	cbl_error_free(first);
	return rc;
}
