/* sandbox/net.c - the default network: the sandbox's own network namespace
 * with outbound access through a user-space NAT, and the resolver
 * configuration that goes with it.
 *
 * Why slirp4netns rather than passt/pasta.  Measured on Debian 12
 * (slirp4netns 1.2.0 with libslirp 4.7.0; passt 0.0~git20230309) on a
 * 2-vCPU VM, a namespace downloading from an HTTP server on a non-loopback
 * address of the host (a veth address; bench/nat.sh), medians:
 *   - startup, from spawning the helper to a configured namespace:
 *     slirp4netns 3.2 ms (3.8 ms with --enable-sandbox --enable-seccomp, as
 *     used here), pasta 21.8 ms; on the machine busy with other work (load
 *     4-5): 6.8 ms vs 48 ms;
 *   - 100 MB download: 757 MB/s through slirp4netns, 777 MB/s through pasta
 *     (1361 MB/s on the host itself); busy: 606 vs 632 (856) MB/s;
 *   - connect + small GET + close: 382 us vs 334 us (host: 156 us); busy:
 *     440 vs 371 (192) us.
 * Throughput and latency are about the same for what a build downloads; the
 * startup, which every build pays, is a sixth of pasta's, so the helper
 * starts while the init sets up its mounts and is ready before the init is
 * (no need to overlap it with the rest of the provisioning).  Its lifecycle
 * also fits: slirp4netns stays our child, says when the namespace is
 * configured (--ready-fd) and exits when the runner dies (--exit-fd); pasta
 * forks to the background and, as root, drops to nobody, after which it may
 * not open /proc/PID/ns/net of a process with more capabilities.
 *
 * What the build can reach through it: the host's non-loopback addresses and
 * the outside, as from a docker bridge.  Not the host's loopback:
 * --disable-host-loopback refuses the gateway (10.0.2.2, which slirp maps
 * to the host's 127.0.0.1), and the DNS forwarder (10.0.2.3) forwards port 53
 * only (libslirp 4.7), to the host's resolver, even when that is a loopback
 * address such as systemd-resolved's 127.0.0.53.  Hence /etc/resolv.conf
 * inside names 10.0.2.3, whatever the host's says.  --enable-sandbox and
 * --enable-seccomp confine the helper itself (a mount namespace with only
 * /etc and /run of the host; a syscall filter).
 */
#include "sandbox/sandbox_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/spawn.h"

#include "util/banned.h"

/* ---------------------------------------------------------------- resolv.conf */

char *sandbox_nat_resolv_conf(const char *host_conf)
{
	cbl_buf b = CBL_BUF_INIT;
	cbl_buf_puts(&b, "nameserver " SANDBOX_NAT_DNS "\n");
	/* the host's search domains and options still apply */
	for (const char *line = host_conf; line && *line;) {
		size_t len = strcspn(line, "\n");
		const char *word = line + strspn(line, " \t");
		bool ns = !strncmp(word, "nameserver", 10) && (word[10] == ' ' || word[10] == '\t');
		if (!ns && len) {
			cbl_buf_append(&b, line, len);
			cbl_buf_putc(&b, '\n');
		}
		line += len + (line[len] == '\n');
	}
	return cbl_buf_detach(&b);
}

static int open_in_root(int rootfd, const char *rel, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	return (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof(how));
}

/* Runs in the init before the pivot: root is the new root as the init sees
 * it, src the content in the private tmpfs. */
int sandbox_resolv_put(const char *src, const char *root)
{
	int rootfd = -1, etc = -1, fd = -1, rc = -1;
	char *data = NULL;
	size_t len = 0;
	struct stat rst, est, st;
	char proc[64];
	if (cbl_read_file(src, 1 << 17, &data, &len, NULL) < 0)
		goto out;
	rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		goto out;
	etc = openat(rootfd, "etc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (etc < 0 && errno == ENOENT && mkdirat(rootfd, "etc", 0755) == 0)
		etc = openat(rootfd, "etc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (etc < 0) {
		/* an image without a usable /etc: nothing names a resolver */
		rc = 0;
		goto out;
	}
	if (fstat(rootfd, &rst) < 0 || fstat(etc, &est) < 0)
		goto out;
	if (rst.st_dev == est.st_dev) {
		/* /etc belongs to the sandbox's own root (its overlay, its
		 * tmpfs): a regular file replaces what is there, a symlink
		 * included, never written through; unless the file is a mount
		 * point of its own (the host's bind-mounted resolv.conf, shown
		 * as a submount): then it is bound over, below */
		if (unlinkat(etc, "resolv.conf", 0) == 0 || errno == ENOENT) {
			fd = openat(etc, "resolv.conf", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (fd < 0)
				goto out;
			rc = cbl_write_all(fd, data, len);
			goto out;
		}
		if (errno != EBUSY)
			goto out;
	}
	/* /etc is a mount of its own (the host's, read-only, in an unprivileged
	 * sandbox; a directory the caller bound): it is never changed, the
	 * file is bound over the one /etc/resolv.conf names, followed inside
	 * the root as docker does.  A name that leads nowhere is left as it is
	 * (nothing to bind onto). */
	fd = open_in_root(rootfd, "etc/resolv.conf", O_PATH);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = 0;
		goto out;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	rc = mount(src, proc, NULL, MS_BIND, NULL);
out:;
	int e = errno;
	free(data);
	if (fd >= 0)
		close(fd);
	if (etc >= 0)
		close(etc);
	if (rootfd >= 0)
		close(rootfd);
	errno = e;
	return rc;
}

/* ---------------------------------------------------------------- the helper */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The helper's descriptors: stdin /dev/null, stdout and stderr the log pipe,
 * 3 the readiness pipe, 4 the exit pipe, nothing else (posix_spawn: safe in
 * a threaded caller). */
static int spawn_helper(sandbox_handle *s, const sandbox_step *st, pid_t pid, int ready_w, int exit_r,
			int log_w, cbl_error **err)
{
	char mtu[32], target[32];
	snprintf(mtu, sizeof(mtu), "--mtu=%lld", (long long)st->num);
	snprintf(target, sizeof(target), "%ld", (long)pid);
	/* unprivileged, slirp4netns joins the user namespace of the target
	 * (/proc/PID/ns/user) to configure its network namespace */
	char *argv[] = {st->arg, (char *)"--configure", mtu, (char *)"--disable-host-loopback",
			(char *)"--enable-sandbox", (char *)"--enable-seccomp", (char *)"--ready-fd=3",
			(char *)"--exit-fd=4", target, (char *)"eth0", NULL};
	char *envp[] = {NULL}; /* nothing of the runner's environment */
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	posix_spawn_file_actions_init(&fa);
	/* its own process group: a terminal's ^C reaches the runner, which
	 * ends the build and then the helper */
	cbl_spawnattr_clean(&at, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&at, 0);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, log_w, 1);
	posix_spawn_file_actions_adddup2(&fa, log_w, 2);
	posix_spawn_file_actions_adddup2(&fa, ready_w, 3);
	posix_spawn_file_actions_adddup2(&fa, exit_r, 4);
	posix_spawn_file_actions_addclosefrom_np(&fa, 5);
	/* found in the runner's PATH; started with no environment */
	int rc = posix_spawnp(&s->nat_pid, st->arg, &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc == 0)
		return 0;
	s->nat_pid = -1;
	if (rc == ENOENT)
		return cbl_error_set(err, CBL_EIO, "sandbox: network: the NAT needs %s, which is not installed "
						   "(not found in PATH)",
				     st->arg);
	return cbl_error_set_errno(err, CBL_EIO, rc, "sandbox: network: cannot start %s", st->arg);
}

int sandbox_nat_start(sandbox_handle *s, const sandbox_step *st, pid_t pid, cbl_error **err)
{
	int ready[2] = {-1, -1}, quit[2] = {-1, -1}, log[2] = {-1, -1};
	int ready_w = -1, exit_r = -1, rc;
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(quit, O_CLOEXEC) < 0 || pipe2(log, O_CLOEXEC) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: network: cannot create the NAT helper's pipes");
		goto out;
	}
	/* the helper's 3 and 4 come from above 4, so that neither dup2
	 * overwrites the other's source */
	ready_w = fcntl(ready[1], F_DUPFD_CLOEXEC, 5);
	exit_r = fcntl(quit[0], F_DUPFD_CLOEXEC, 5);
	if (ready_w < 0 || exit_r < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: network: cannot create the NAT helper's pipes");
		goto out;
	}
	/* a chatty helper never blocks on a log read only when it fails; the
	 * read end is ours until it is reaped, so it never gets SIGPIPE */
	fcntl(log[1], F_SETFL, O_NONBLOCK);
	fcntl(log[0], F_SETFL, O_NONBLOCK);
	rc = spawn_helper(s, st, pid, ready_w, exit_r, log[1], err);
	if (rc)
		goto out;
	/* our unreaped child: its pid cannot be reused before this */
	s->nat_pidfd = (int)syscall(SYS_pidfd_open, s->nat_pid, 0);
	s->nat_ready = ready[0];
	s->nat_exit = quit[1];
	s->nat_log = log[0];
	ready[0] = quit[1] = log[0] = -1;
out:
	close_fd(&ready_w);
	close_fd(&exit_r);
	for (int i = 0; i < 2; i++) {
		close_fd(&ready[i]);
		close_fd(&quit[i]);
		close_fd(&log[i]);
	}
	return rc;
}

/* Through the pidfd when there is one: if something else reaped the helper
 * (a subreaper's waitpid(-1)), its pid may be another process's by now. */
static void kill_helper(sandbox_handle *s)
{
	if (s->nat_pidfd >= 0)
		syscall(SYS_pidfd_send_signal, s->nat_pidfd, SIGKILL, NULL, 0);
	else
		kill(s->nat_pid, SIGKILL);
}

/* What the helper said, on one line, without the warning it always gives
 * with --enable-seccomp. */
static void read_log(int fd, char *buf, size_t size)
{
	char raw[2048];
	size_t n = 0, out = 0;
	ssize_t got;
	while (n + 1 < sizeof(raw) && (got = read(fd, raw + n, sizeof(raw) - 1 - n)) > 0)
		n += (size_t)got;
	raw[n] = '\0';
	buf[0] = '\0';
	for (char *line = raw; *line;) {
		size_t len = strcspn(line, "\n");
		if (len && strncmp(line, "WARNING: Support for seccomp is experimental", 44) != 0 && out + 3 < size) {
			int w = snprintf(buf + out, size - out, "%s%.*s", out ? "; " : "", (int)len, line);
			out = w > 0 && (size_t)w < size - out ? out + (size_t)w : size - 1;
		}
		line += len + (line[len] == '\n');
	}
}

int sandbox_nat_wait(sandbox_handle *s, int timeout_ms, cbl_error **err)
{
	if (s->nat_ready < 0)
		return 0;
	int64_t deadline = cbl_mono_us() / 1000 + timeout_ms;
	struct pollfd pf = {.fd = s->nat_ready, .events = POLLIN};
	int n;
	for (;;) {
		int64_t left = deadline - cbl_mono_us() / 1000;
		n = poll(&pf, 1, left > 0 ? (int)left : 0);
		if (n >= 0 || errno != EINTR)
			break;
	}
	char c = 0;
	ssize_t got = n > 0 ? read(s->nat_ready, &c, 1) : -1;
	close_fd(&s->nat_ready);
	if (got == 1 && c == '1')
		return 0;
	/* it failed, or hangs: it is gone, then what it said */
	char log[512];
	kill_helper(s);
	while (waitpid(s->nat_pid, NULL, 0) < 0 && errno == EINTR)
		;
	s->nat_pid = -1;
	read_log(s->nat_log, log, sizeof(log));
	sandbox_nat_stop(s);
	const char *hint = strstr(log, "/dev/net/tun") && s->userns
				   ? " (an unprivileged user needs read and write access to /dev/net/tun, "
				     "which Debian's udev rules give everyone: mode 0666)"
				   : "";
	if (n == 0)
		return cbl_error_set(err, CBL_EIO, "sandbox: network: the NAT helper did not configure the "
						   "network namespace within %d ms%s%s",
				     timeout_ms, *log ? ": " : "", log);
	return cbl_error_set(err, CBL_EIO, "sandbox: network: the NAT helper failed: %s%s", *log ? log : "it exited",
			     hint);
}

static void *reap_helper(void *arg)
{
	pid_t pid = (pid_t)(intptr_t)arg;
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return NULL;
}

/* The helper's end takes its tap device down (unregister_netdevice and an
 * rcu_barrier: 15-40 ms on a small VM, measured), and waitpid returns only
 * then: a detached thread waits for it so that the build does not (the
 * runner exits or goes on meanwhile; a process that exits first leaves it to
 * init).  Without a thread, the wait happens here. */
static void reap_later(pid_t pid)
{
	if (waitpid(pid, NULL, WNOHANG) != 0)
		return; /* reaped, or not ours any more */
	pthread_attr_t at;
	pthread_t t;
	bool started = pthread_attr_init(&at) == 0 && pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED) == 0 &&
		       pthread_create(&t, &at, reap_helper, (void *)(intptr_t)pid) == 0;
	pthread_attr_destroy(&at);
	if (!started)
		reap_helper((void *)(intptr_t)pid);
}

void sandbox_nat_stop(sandbox_handle *s)
{
	/* closing the exit pipe would end it; SIGKILL does at once, and it
	 * holds nothing that needs a clean exit */
	close_fd(&s->nat_exit);
	if (s->nat_pid > 0) {
		kill_helper(s);
		reap_later(s->nat_pid);
	}
	s->nat_pid = -1;
	close_fd(&s->nat_pidfd);
	close_fd(&s->nat_ready);
	close_fd(&s->nat_log);
}
