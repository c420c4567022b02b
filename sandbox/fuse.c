/* sandbox/fuse.c - a writable host root for a normal user: fuse-overlayfs.
 *
 * overlayfs will not take the host's / as a lower layer in a user namespace
 * (its submounts are locked there), so an unprivileged sandbox shows the
 * host's / read-only.  fuse-overlayfs, the user-space overlay rootless
 * podman used before kernel 5.11, takes it: with squash_to_root every file
 * shows as root's, so the build's root may write anywhere, copy-up landing
 * in the upper layer in the build's private tmpfs.  It needs /dev/fuse
 * opened read-write by the user (Debian makes it 0600 root: usually not)
 * and costs a daemon in the path of every file operation on the root
 * (bench/fuse-overlay.sh measures it).
 *
 * The daemon runs in the sandbox's user and mount namespaces but not its
 * PID namespace: the build cannot see, signal or trace it, nor reach the
 * host's / it holds, and a kill of everything inside (a timeout) leaves it.
 * The init, reaching the FUSE_ROOT step of its plan (its mount point made in
 * the private tmpfs), asks the parent over its socket; the parent forks a
 * child that joins the init's user and mount namespaces, mounts the fuse
 * filesystem there itself on a /dev/fuse it opened, moves to a mount
 * namespace of its own (a copy: the init's pivot_root and unmount of the old
 * root would otherwise take the daemon's lower layer, the host's /, from
 * under it) and execs the daemon on that descriptor, with an empty
 * environment and nothing else open but /dev/null and a pipe for its
 * complaint.  The parent waits until the mount shows in the init's
 * mountinfo or the child dies (at most SANDBOX_FUSE_TIMEOUT_MS), then lets
 * the init go on.  The daemon stays the parent's child (-f) until
 * sandbox_free.
 *
 * fuse-overlayfs knows a directory by its device and inode: a bind mount
 * of a directory of the root's filesystem (or a filesystem mounted twice)
 * is to it a second name of the same directory, taken for a hard link, and
 * one of the two names is lost (the build saw an empty mount point).  In
 * its own mount namespace, before the exec, each such mount is covered by
 * a read-only overlay of itself (sandbox_fuse_aliases, cover_aliases):
 * the same files, directories of a device of their own.
 */
#include "sandbox/sandbox_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/banned.h"

void sandbox_fuse_probe(sandbox_ids *ids)
{
	static const char *const dirs[] = {"/usr/bin", "/bin", "/usr/local/bin"};
	ids->fuse_overlayfs[0] = '\0';
	ids->fuse_missing[0] = '\0';
	char p[64] = "";
	struct stat st;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs) && !*p; i++) {
		snprintf(p, sizeof(p), "%s/fuse-overlayfs", dirs[i]);
		if (stat(p, &st) < 0 || !S_ISREG(st.st_mode) || access(p, X_OK) < 0)
			p[0] = '\0';
	}
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	int e = errno;
	if (fd >= 0)
		close(fd);
	if (fd < 0 && !*p)
		snprintf(ids->fuse_missing, sizeof(ids->fuse_missing), "fuse-overlayfs is not installed and /dev/fuse "
								       "cannot be opened: %s", strerror(e));
	else if (fd < 0)
		snprintf(ids->fuse_missing, sizeof(ids->fuse_missing), "/dev/fuse cannot be opened: %s", strerror(e));
	else if (!*p)
		snprintf(ids->fuse_missing, sizeof(ids->fuse_missing), "fuse-overlayfs is not installed");
	else
		snprintf(ids->fuse_overlayfs, sizeof(ids->fuse_overlayfs), "%s", p);
}

/* path as /proc/PID/mountinfo writes it (space, tab, newline and
 * backslash as \ooo) */
static void mountinfo_escape(cbl_buf *b, const char *path)
{
	for (const char *c = path; *c; c++) {
		if (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\\')
			cbl_buf_printf(b, "\\%03o", (unsigned char)*c);
		else
			cbl_buf_putc(b, *c);
	}
}

/* True once pid's mount namespace has a fuse mount at path. */
static bool fuse_mounted(pid_t pid, const char *path)
{
	char proc[64], *text = NULL;
	size_t len = 0;
	snprintf(proc, sizeof(proc), "/proc/%ld/mountinfo", (long)pid);
	if (cbl_read_file(proc, 16 << 20, &text, &len, NULL) < 0)
		return false;
	cbl_buf want = CBL_BUF_INIT;
	cbl_buf_putc(&want, ' ');
	mountinfo_escape(&want, path);
	cbl_buf_putc(&want, ' ');
	bool yes = false;
	for (char *line = text; *line && !yes;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		/* id parent maj:min root MOUNTPOINT ... - fstype ... */
		char *f = line;
		for (int i = 0; i < 4 && f; i++)
			f = strchr(f + 1, ' ');
		char *sep = strstr(line, " - ");
		yes = f && sep && !strncmp(f, want.ptr, want.len) && !strncmp(sep + 3, "fuse", 4);
		line = nl ? nl + 1 : line + strlen(line);
	}
	cbl_buf_release(&want);
	free(text);
	return yes;
}

/* What the daemon's namespace covers (cover_aliases), made before the
 * fork. */
typedef struct fuse_covers {
	char *empty;  /* an empty directory in the scratch */
	char **paths; /* the mount points */
	char **opts;  /* each one's overlay options */
	size_t n;
} fuse_covers;

static void covers_make(fuse_covers *c, pid_t init, const char *mountpoint)
{
	char proc[64], *text = NULL;
	size_t len = 0;
	memset(c, 0, sizeof(*c));
	snprintf(proc, sizeof(proc), "/proc/%ld/mountinfo", (long)init);
	if (cbl_read_file(proc, 16 << 20, &text, &len, NULL) < 0)
		return;
	cbl_strv paths = CBL_STRV_INIT;
	sandbox_fuse_aliases(text, &paths);
	free(text);
	const char *slash = strrchr(mountpoint, '/');
	c->empty = cbl_xasprintf("%.*s/fuse-empty", slash ? (int)(slash - mountpoint) : 0, mountpoint);
	c->paths = cbl_xcalloc(paths.n + 1, sizeof(char *));
	c->opts = cbl_xcalloc(paths.n + 1, sizeof(char *));
	for (size_t i = 0; i < paths.n; i++) {
		cbl_buf b = CBL_BUF_INIT;
		cbl_buf_puts(&b, "lowerdir=");
		sandbox_put_escaped(&b, paths.v[i]);
		cbl_buf_putc(&b, ':');
		sandbox_put_escaped(&b, c->empty);
		c->opts[i] = cbl_buf_detach(&b);
		c->paths[i] = cbl_xstrdup(paths.v[i]);
	}
	c->n = paths.n;
	cbl_strv_release(&paths);
}

static void covers_release(fuse_covers *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->paths[i]);
		free(c->opts[i]);
	}
	free(c->paths);
	free(c->opts);
	free(c->empty);
	memset(c, 0, sizeof(*c));
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The forked child: into the init's namespaces, the fuse mount made at
 * the new root on a /dev/fuse it opens, then into a mount namespace of its
 * own, a copy of the init's as it is now (the host's / and the private
 * tmpfs): the init's pivot_root and its unmount of the old root (the
 * daemon's lower layer) must not reach the daemon.  Then the daemon on that
 * descriptor (libfuse's /dev/fd/N mount point). */
/* In the daemon's own mount namespace: each mount that could be another
 * name of a directory (sandbox_fuse_aliases) covered by a read-only
 * overlay of itself and an empty directory, whose directories have the
 * overlay's device: fuse-overlayfs then sees one directory per name.  One
 * the kernel refuses stays as it is. */
static void cover_aliases(const fuse_covers *c)
{
	if (!c->n)
		return;
	if (mkdir(c->empty, 0755) < 0 && errno != EEXIST)
		return;
	for (size_t i = 0; i < c->n; i++) {
		struct stat st;
		if (stat(c->paths[i], &st) == 0 && S_ISDIR(st.st_mode))
			(void)!mount("overlay", c->paths[i], "overlay", MS_RDONLY | MS_NODEV, c->opts[i]);
	}
}

static __attribute__((noreturn)) void fuse_child(int userfd, int mntfd, int log_w, const char *mountpoint,
						 char *const argv[], const fuse_covers *covers)
{
	const char *what = "join the sandbox's namespaces";
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if ((userfd >= 0 && setns(userfd, CLONE_NEWUSER) < 0) || setns(mntfd, CLONE_NEWNS) < 0)
		goto fail;
	what = "open /dev/fuse";
	int dev = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		goto fail;
	char opts[160];
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions", dev);
	/* allow_other: run-as users are other uids of the namespace; nodev
	 * like every mount inside */
	what = "mount the root";
	if (mount("fuse-overlayfs", mountpoint, "fuse.fuse-overlayfs", MS_NODEV, opts) < 0)
		goto fail;
	what = "make its own mount namespace";
	if (unshare(CLONE_NEWNS) < 0 || chdir("/") < 0)
		goto fail;
	cover_aliases(covers);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	what = "set up its descriptors";
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(log_w, 2) < 0 || dup2(dev, 3) < 0)
		goto fail;
	syscall(SYS_close_range, 4, ~0U, 0);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	char *envp[] = {NULL};
	execve(argv[0], argv, envp);
	dprintf(2, "cannot run %s: %s", argv[0], strerror(errno));
	_exit(127);
fail:
	dprintf(log_w, "cannot %s: %s", what, strerror(errno));
	_exit(126);
}

static void read_log(int fd, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t got;
	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (n + 1 < size && (got = read(fd, buf + n, size - 1 - n)) > 0)
		n += (size_t)got;
	buf[n] = '\0';
	/* one line: newlines joined */
	for (char *c = buf; *c; c++)
		if (*c == '\n')
			*c = (c[1] ? ';' : '\0');
}

int sandbox_fuse_start(sandbox_handle *s, const sandbox_step *st, pid_t init, cbl_error **err)
{
	int userfd = -1, mntfd = -1, logp[2] = {-1, -1}, rc = 0;
	fuse_covers covers = {0};
	char path[64];
	if (s->userns) {
		snprintf(path, sizeof(path), "/proc/%ld/ns/user", (long)init);
		userfd = open(path, O_RDONLY | O_CLOEXEC);
	}
	snprintf(path, sizeof(path), "/proc/%ld/ns/mnt", (long)init);
	mntfd = open(path, O_RDONLY | O_CLOEXEC);
	if (mntfd < 0 || (s->userns && userfd < 0) || pipe2(logp, O_CLOEXEC) < 0 ||
	    fcntl(logp[1], F_SETFL, O_NONBLOCK) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: fuse-overlayfs: cannot reach the sandbox's "
							      "namespaces");
		goto out;
	}
	char *argv[] = {st->src, (char *)"-f", (char *)"-o", st->arg, (char *)"/dev/fd/3", NULL};
	covers_make(&covers, init, st->path);
	/* fork: the child only joins namespaces, mounts and execs */
	pid_t pid = fork();
	if (pid < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: fuse-overlayfs: fork");
		goto out;
	}
	if (pid == 0)
		fuse_child(userfd, mntfd, logp[1], st->path, argv, &covers);
	close_fd(&logp[1]);
	/* its stderr stays ours while it runs (no SIGPIPE for a word it says
	 * later), never read again: a chatty daemon gets EAGAIN, not blocked */
	fcntl(logp[0], F_SETFL, O_NONBLOCK);
	s->fuse_pid = pid;
	s->fuse_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int64_t deadline = cbl_mono_us() + (int64_t)SANDBOX_FUSE_TIMEOUT_MS * 1000;
	for (;;) {
		if (fuse_mounted(init, st->path))
			break;
		int ws;
		if (waitpid(pid, &ws, WNOHANG) == pid) {
			char log[256];
			s->fuse_pid = -1;
			read_log(logp[0], log, sizeof(log));
			rc = cbl_error_set(err, CBL_EIO, "sandbox: fuse-overlayfs exited (status %d) before mounting the "
							 "root%s%s",
					   WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws), *log ? ": " : "", log);
			goto out;
		}
		if (cbl_mono_us() > deadline) {
			rc = cbl_error_set(err, CBL_EIO, "sandbox: fuse-overlayfs did not mount the root within %d ms",
					   SANDBOX_FUSE_TIMEOUT_MS);
			sandbox_fuse_stop(s);
			goto out;
		}
		usleep(1000);
	}
	s->fuse_log = logp[0];
	logp[0] = -1;
out:
	covers_release(&covers);
	close_fd(&userfd);
	close_fd(&mntfd);
	close_fd(&logp[0]);
	close_fd(&logp[1]);
	return rc;
}

void sandbox_fuse_stop(sandbox_handle *s)
{
	if (s->fuse_pid > 0) {
		if (s->fuse_pidfd >= 0)
			syscall(SYS_pidfd_send_signal, s->fuse_pidfd, SIGKILL, NULL, 0);
		else
			kill(s->fuse_pid, SIGKILL);
		while (waitpid(s->fuse_pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	s->fuse_pid = -1;
	close_fd(&s->fuse_pidfd);
	close_fd(&s->fuse_log);
}
