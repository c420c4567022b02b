/* runner/sandbox.c - the build's namespaces (see sandbox.h).
 *
 * Plan, then execute (bubblewrap's model): the parent turns the options into
 * a list of typed setup steps; the cloned child replays them and, on the
 * first failure, sends a typed error record (step + errno) back over the
 * socketpair and exits, so the parent can say exactly what failed.
 *
 * Why an init process serves the commands instead of the runner spawning
 * them with setns(): joining a PID namespace only affects later children and
 * a mount namespace cannot be joined by a multi-threaded process, while a
 * long-lived PID 1 inside the namespaces can fork each command cheaply,
 * reaps every orphan, and takes the whole build down with it.
 */
#include "runner/sandbox.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/strv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/banned.h"

/* ---------------------------------------------------------------- plan */

typedef enum step_kind {
	STEP_PRIVATE,   /* make / recursively private */
	STEP_TMPFS,     /* b = target, flags = mode */
	STEP_MKDIR,     /* b = path (mkdir -p) */
	STEP_OVERLAY,   /* a = options, b = target */
	STEP_RBIND,     /* a = source, b = target */
	STEP_RBIND_RO,  /* a = source, b = target, then read-only */
	STEP_PROC,      /* b = target */
	STEP_DEVPTS,    /* b = target */
	STEP_DEVNODE,   /* a = host node, b = target file */
	STEP_SYMLINK,   /* a = link text, b = path */
	STEP_HOSTNAME,  /* a = name */
	STEP_LOOPBACK,  /* bring lo up */
	STEP_PIVOT,     /* b = new root */
	STEP_CHDIR,     /* b = dir */
	STEP_HOSTS,     /* a = line appended to b (the build's /etc/hosts) */
	STEP_WRITE,     /* a = content of the file b (created or replaced) */
} step_kind;

typedef struct step {
	step_kind kind;
	char *a, *b;
	unsigned long flags;
} step;

typedef struct plan {
	step *v;
	size_t n, cap;
} plan;

static void add(plan *p, step_kind k, const char *a, const char *b, unsigned long flags)
{
	CBL_GROW(p->v, p->n + 1, p->cap);
	p->v[p->n++] = (step){k, a ? cbl_xstrdup(a) : NULL, b ? cbl_xstrdup(b) : NULL, flags};
}

static void plan_release(plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].a);
		free(p->v[i].b);
	}
	free(p->v);
}

static const char *step_desc(const step *s, char *buf, size_t len)
{
	switch (s->kind) {
	case STEP_PRIVATE: snprintf(buf, len, "make / private"); break;
	case STEP_TMPFS: snprintf(buf, len, "mount tmpfs on %s", s->b); break;
	case STEP_MKDIR: snprintf(buf, len, "create directory %s", s->b); break;
	case STEP_OVERLAY: snprintf(buf, len, "mount overlay on %s", s->b); break;
	case STEP_RBIND: snprintf(buf, len, "bind %s on %s", s->a, s->b); break;
	case STEP_RBIND_RO: snprintf(buf, len, "bind %s read-only on %s", s->a, s->b); break;
	case STEP_PROC: snprintf(buf, len, "mount proc on /proc"); break;
	case STEP_DEVPTS: snprintf(buf, len, "mount devpts on /dev/pts"); break;
	case STEP_DEVNODE: snprintf(buf, len, "bind %s", s->a); break;
	case STEP_SYMLINK: snprintf(buf, len, "symlink %s", s->b); break;
	case STEP_HOSTNAME: snprintf(buf, len, "set hostname"); break;
	case STEP_LOOPBACK: snprintf(buf, len, "bring up loopback"); break;
	case STEP_PIVOT: snprintf(buf, len, "pivot_root into the build root"); break;
	case STEP_CHDIR: snprintf(buf, len, "chdir %s", s->b); break;
	case STEP_HOSTS: snprintf(buf, len, "add the hostname to /etc/hosts"); break;
	case STEP_WRITE: snprintf(buf, len, "write %s", s->b); break;
	}
	return buf;
}

/* ---------------------------------------------------------------- records */

enum { REC_READY = 1, REC_SETUP_ERR, REC_STARTED, REC_EXITED, REC_SPAWN_ERR };

/* the sync byte's low bits: rlimit fallbacks the init applies */
enum { RLIM_FALLBACK_AS = 1, RLIM_FALLBACK_NPROC = 2, SYNC_BASE = 0x40 };

typedef struct rec {
	int32_t kind;
	int32_t status;
	int32_t err;
	char msg[244];
} rec;

struct runner_sandbox {
	pid_t init;
	int sock;
	bool running;          /* a command is running */
	int rlim_fallback;     /* RLIM_FALLBACK_* to apply in the init */
	char *cg_mem, *cg_pids, *cg_v2; /* cgroup dirs we created */
	char *cg_v2_parent;
	cbl_strv warnings;
	bool userns;           /* an unprivileged user namespace */
};

static int send_rec(int fd, int kind, int status, int err, const char *msg)
{
	rec r = {kind, status, err, {0}};
	if (msg)
		snprintf(r.msg, sizeof(r.msg), "%s", msg);
	return cbl_write_all(fd, &r, sizeof(r));
}

static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---------------------------------------------------------------- child side */

static int loopback_up(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
	if (rc == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
	return rc;
}

static int run_step(const step *s)
{
	switch (s->kind) {
	case STEP_PRIVATE:
		return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	case STEP_TMPFS: {
		char opts[32];
		snprintf(opts, sizeof(opts), "mode=%lo", s->flags);
		return mount("tmpfs", s->b, "tmpfs", MS_NOSUID | MS_NODEV, opts);
	}
	case STEP_MKDIR:
		return cbl_mkdir_p(s->b, 0755, NULL) < 0 ? -1 : 0;
	case STEP_OVERLAY:
		return mount("overlay", s->b, "overlay", 0, s->a);
	case STEP_RBIND:
		return mount(s->a, s->b, NULL, MS_BIND | MS_REC, NULL);
	case STEP_RBIND_RO:
		if (mount(s->a, s->b, NULL, MS_BIND | MS_REC, NULL) < 0)
			return -1;
		return mount(NULL, s->b, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
	case STEP_PROC:
		return mount("proc", s->b, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	case STEP_DEVPTS:
		return mount("devpts", s->b, "devpts", MS_NOSUID | MS_NOEXEC,
			     "newinstance,ptmxmode=0666,mode=620");
	case STEP_DEVNODE: {
		int fd = open(s->b, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
		if (fd < 0)
			return -1;
		close(fd);
		return mount(s->a, s->b, NULL, MS_BIND, NULL);
	}
	case STEP_SYMLINK:
		return symlink(s->a, s->b) < 0 && errno != EEXIST ? -1 : 0;
	case STEP_HOSTNAME:
		return sethostname(s->a, strlen(s->a));
	case STEP_LOOPBACK:
		return loopback_up();
	case STEP_PIVOT: {
		char old[4096];
		snprintf(old, sizeof(old), "%s/.oldroot", s->b);
		if (mkdir(old, 0700) < 0 && errno != EEXIST)
			return -1;
		if (syscall(SYS_pivot_root, s->b, old) < 0)
			return -1;
		if (chdir("/") < 0)
			return -1;
		if (umount2("/.oldroot", MNT_DETACH) < 0)
			return -1;
		rmdir("/.oldroot");
		return 0;
	}
	case STEP_CHDIR:
		return chdir(s->b);
	case STEP_HOSTS: {
		/* copy-up into the overlay: the host's (the image's) file is
		 * untouched; an image without one gets localhost too */
		int fd = open(s->b, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return errno == ENOENT ? 0 : -1;
		struct stat st;
		int rc = 0;
		if (fstat(fd, &st) == 0 && st.st_size == 0)
			rc = cbl_write_all(fd, "127.0.0.1\tlocalhost\n::1\tlocalhost\n", 33);
		if (rc == 0)
			rc = cbl_write_all(fd, s->a, strlen(s->a));
		close(fd);
		return rc;
	}
	case STEP_WRITE: {
		/* replaces whatever is there, a symlink included, never through it */
		unlink(s->b);
		int fd = open(s->b, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0)
			return errno == ENOENT ? 0 : -1;
		int rc = cbl_write_all(fd, s->a, strlen(s->a));
		close(fd);
		return rc;
	}
	}
	errno = EINVAL;
	return -1;
}

/* What a build never needs and a breakout would (kernel modules, kexec,
 * handle-based opens, the kernel keyring, new mounts). */
static int apply_seccomp(void)
{
	static const int denied[] = {
		SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load), SCMP_SYS(init_module),
		SCMP_SYS(finit_module), SCMP_SYS(delete_module), SCMP_SYS(open_by_handle_at),
		SCMP_SYS(keyctl), SCMP_SYS(add_key), SCMP_SYS(request_key), SCMP_SYS(mount),
		SCMP_SYS(umount2), SCMP_SYS(pivot_root), SCMP_SYS(swapon), SCMP_SYS(swapoff),
		SCMP_SYS(reboot), SCMP_SYS(fsopen), SCMP_SYS(fsmount), SCMP_SYS(move_mount),
		SCMP_SYS(open_tree),
	};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < sizeof(denied) / sizeof(*denied) && !rc; i++)
		if (denied[i] >= 0)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), denied[i], 0);
	if (!rc)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc) {
		errno = -rc;
		return -1;
	}
	return 0;
}

/* Reads one length-prefixed request. */
static char *read_request(int fd, uint32_t *len)
{
	if (read_full(fd, len, sizeof(*len)) < 0 || *len > (64u << 20))
		return NULL;
	char *buf = malloc(*len + 1);
	if (!buf)
		return NULL;
	if (read_full(fd, buf, *len) < 0) {
		free(buf);
		return NULL;
	}
	buf[*len] = '\0';
	return buf;
}

static void spawn_command(int sock, int out_fd, char *req, uint32_t len, pid_t *cmd_pid)
{
	/* S \0 shell \0 script \0 cwd \0 run_as \0 env... */
	char *f[4];
	char *p = req + 2, *end = req + len;
	for (int i = 0; i < 4; i++) {
		f[i] = p;
		p += strlen(p) + 1;
		if (p > end) {
			send_rec(sock, REC_SPAWN_ERR, 0, EINVAL, "malformed request");
			return;
		}
	}
	size_t nenv = 0;
	for (char *q = p; q < end; q += strlen(q) + 1)
		nenv++;
	char **envp = calloc(nenv + 1, sizeof(char *));
	if (!envp) {
		send_rec(sock, REC_SPAWN_ERR, 0, ENOMEM, "out of memory");
		return;
	}
	size_t k = 0;
	for (char *q = p; q < end; q += strlen(q) + 1)
		envp[k++] = q;
	struct passwd *pw = NULL;
	if (*f[3]) {
		pw = getpwnam(f[3]);
		if (!pw) {
			char m[200];
			snprintf(m, sizeof(m), "run-as: no user '%s' in the build image", f[3]);
			free(envp);
			send_rec(sock, REC_SPAWN_ERR, 0, ENOENT, m);
			return;
		}
	}
	pid_t pid = fork();
	if (pid < 0) {
		free(envp);
		send_rec(sock, REC_SPAWN_ERR, 0, errno, "fork failed");
		return;
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		setsid(); /* no controlling terminal: /dev/tty fails as on the service */
		int dn = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (dn >= 0)
			dup2(dn, 0);
		dup2(out_fd, 1);
		dup2(out_fd, 2);
		/* nothing the runner (or its caller) had open leaks into the build */
		syscall(SYS_close_range, 3, ~0U, 0);
		if (chdir(f[2]) < 0 && chdir("/") < 0)
			_exit(126);
		if (pw) {
			if (setgroups(0, NULL) < 0 && errno != EPERM)
				_exit(126);
			initgroups(pw->pw_name, pw->pw_gid);
			if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
				dprintf(2, "run-as %s: %s\n", pw->pw_name, strerror(errno));
				_exit(126);
			}
		}
		char *argv[] = {f[0], f[1], NULL};
		execve(f[0], argv, envp);
		dprintf(2, "%s: %s\n", f[0], strerror(errno));
		_exit(127);
	}
	free(envp);
	*cmd_pid = pid;
	send_rec(sock, REC_STARTED, pid, 0, NULL);
}

static void kill_everything(void)
{
	/* as PID 1 of the namespace, -1 reaches every other process in it */
	kill(-1, SIGKILL);
}

static __attribute__((noreturn)) void init_main(const plan *p, int sock, int sync_fd,
						 const runner_sandbox_opts *o)
{
	char buf[256], desc[200];
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* wait until the parent has written the id maps and joined the cgroups */
	char c;
	if (read(sync_fd, &c, 1) != 1)
		_exit(1);
	close(sync_fd);
	/* limits the cgroups could not take: rlimits instead (inherited by
	 * every command; the parent has warned about their weaknesses) */
	if (c & RLIM_FALLBACK_AS) {
		struct rlimit rl = {(rlim_t)o->memory_bytes, (rlim_t)o->memory_bytes};
		setrlimit(RLIMIT_AS, &rl);
	}
	if (c & RLIM_FALLBACK_NPROC) {
		struct rlimit rl = {(rlim_t)o->pids_max, (rlim_t)o->pids_max};
		setrlimit(RLIMIT_NPROC, &rl);
	}
	for (size_t i = 0; i < p->n; i++) {
		if (run_step(&p->v[i]) < 0) {
			int e = errno;
			snprintf(buf, sizeof(buf), "%s: %s", step_desc(&p->v[i], desc, sizeof(desc)),
				 strerror(e));
			send_rec(sock, REC_SETUP_ERR, (int)i, e, buf);
			_exit(1);
		}
	}
	if (o->cpus > 0) {
		cpu_set_t set, use;
		CPU_ZERO(&use);
		if (sched_getaffinity(0, sizeof(set), &set) == 0) {
			int got = 0;
			for (int cpu = 0; cpu < CPU_SETSIZE && got < o->cpus; cpu++)
				if (CPU_ISSET(cpu, &set)) {
					CPU_SET(cpu, &use);
					got++;
				}
			sched_setaffinity(0, sizeof(use), &use);
		}
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || apply_seccomp() < 0) {
		snprintf(buf, sizeof(buf), "install the seccomp filter: %s", strerror(errno));
		send_rec(sock, REC_SETUP_ERR, -1, errno, buf);
		_exit(1);
	}
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	send_rec(sock, REC_READY, 0, 0, NULL);

	pid_t cmd_pid = -1;
	for (;;) {
		struct pollfd pf[2] = {{.fd = sock, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			break;
		if (pf[1].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si))
				;
		}
		/* reap everything: commands and orphaned daemons alike */
		for (;;) {
			int ws;
			pid_t w = waitpid(-1, &ws, WNOHANG);
			if (w <= 0)
				break;
			if (w == cmd_pid) {
				cmd_pid = -1;
				send_rec(sock, REC_EXITED, ws, 0, NULL);
			}
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			uint32_t len = 0;
			char *req = read_request(sock, &len);
			if (!req)
				break; /* the runner went away */
			if (len >= 1 && req[0] == 'S')
				spawn_command(sock, o->out_fd, req, len, &cmd_pid);
			else if (len >= 1 && req[0] == 'K')
				kill_everything();
			free(req);
		}
	}
	kill_everything();
	_exit(0);
}

/* ---------------------------------------------------------------- cgroups */

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = cbl_write_all(fd, s, strlen(s));
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

static bool read_counter(const char *path, const char *key, long long *out)
{
	char *data = NULL;
	size_t len = 0;
	cbl_error *e = NULL;
	bool found = false;
	if (cbl_read_file(path, 1 << 16, &data, &len, &e) == 0) {
		size_t kl = strlen(key);
		for (char *l = data; l && *l;) {
			if (!strncmp(l, key, kl) && l[kl] == ' ') {
				*out = strtoll(l + kl + 1, NULL, 10);
				found = true;
				break;
			}
			l = strchr(l, '\n');
			if (l)
				l++;
		}
	}
	cbl_error_free(e);
	free(data);
	return found;
}

/* A cgroup v1 directory codebuild-local/<name> of controller with file set
 * to value and pid in it; NULL (nothing left behind) when that fails. */
static char *v1_limit(const char *controller, const char *file, int64_t value, const char *name,
		      const char *pid)
{
	char *dir = cbl_xasprintf("/sys/fs/cgroup/%s/codebuild-local/%s", controller, name);
	cbl_error *e = NULL;
	bool ok = false;
	if (cbl_mkdir_p(dir, 0755, &e) == 0) {
		char v[32];
		snprintf(v, sizeof(v), "%lld", (long long)value);
		char *f = cbl_path_join(dir, file);
		char *t = cbl_path_join(dir, "cgroup.procs");
		ok = write_str(f, v) == 0 && write_str(t, pid) == 0;
		free(f);
		free(t);
	}
	cbl_error_free(e);
	if (!ok) {
		rmdir(dir);
		free(dir);
		dir = NULL;
	}
	return dir;
}

/* Puts pid into memory and pids cgroups (v2 if the host has its memory
 * controller there, else v1).  What cannot be applied becomes a warning. */
static void setup_cgroups(runner_sandbox *s, pid_t pid, const runner_sandbox_opts *o)
{
	char num[32];
	snprintf(num, sizeof(num), "%ld", (long)pid);
	if (!o->memory_bytes && !o->pids_max)
		return;
	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
		char *ctl = NULL;
		size_t len = 0;
		cbl_error *e = NULL;
		bool mem = false;
		if (cbl_read_file("/sys/fs/cgroup/cgroup.controllers", 4096, &ctl, &len, &e) == 0)
			mem = strstr(ctl, "memory") != NULL;
		free(ctl);
		cbl_error_free(e);
		if (mem) {
			s->cg_v2_parent = cbl_xstrdup("/sys/fs/cgroup/codebuild-local");
			mkdir(s->cg_v2_parent, 0755);
			write_str("/sys/fs/cgroup/cgroup.subtree_control", "+memory +pids");
			char *sub = cbl_path_join(s->cg_v2_parent, "cgroup.subtree_control");
			write_str(sub, "+memory +pids");
			free(sub);
			s->cg_v2 = cbl_path_join(s->cg_v2_parent, o->cgroup_name);
			if (mkdir(s->cg_v2, 0755) == 0) {
				char *f = cbl_path_join(s->cg_v2, "memory.max");
				char v[32];
				snprintf(v, sizeof(v), "%lld", (long long)o->memory_bytes);
				bool ok_mem = !o->memory_bytes || write_str(f, v) == 0;
				free(f);
				f = cbl_path_join(s->cg_v2, "pids.max");
				snprintf(v, sizeof(v), "%lld", (long long)o->pids_max);
				bool ok_pids = !o->pids_max || write_str(f, v) == 0;
				free(f);
				f = cbl_path_join(s->cg_v2, "cgroup.procs");
				bool joined = write_str(f, num) == 0;
				free(f);
				if (joined && ok_mem && ok_pids)
					return;
			}
			rmdir(s->cg_v2);
			free(s->cg_v2);
			s->cg_v2 = NULL;
		}
	}
	/* cgroup v1 */
	if (o->memory_bytes) {
		s->cg_mem = v1_limit("memory", "memory.limit_in_bytes", o->memory_bytes, o->cgroup_name, num);
		if (!s->cg_mem) {
			s->rlim_fallback |= RLIM_FALLBACK_AS;
			cbl_strv_push(&s->warnings, "no writable memory cgroup on this host: the compute type's "
						    "memory limit is applied as RLIMIT_AS (address space), which "
						    "runtimes that reserve large address ranges (JVM, Go) may hit "
						    "below the limit, and an out-of-memory kill is not reported as such");
		}
	}
	if (o->pids_max) {
		s->cg_pids = v1_limit("pids", "pids.max", o->pids_max, o->cgroup_name, num);
		if (!s->cg_pids) {
			s->rlim_fallback |= RLIM_FALLBACK_NPROC;
			cbl_strv_push(&s->warnings, "no writable pids cgroup on this host: the process limit is "
						    "applied as RLIMIT_NPROC, which counts all processes of the "
						    "invoking user, not only the build's (and not at all for root)");
		}
	}
}

bool runner_sandbox_oom(runner_sandbox *s)
{
	long long n = 0;
	if (s->cg_v2) {
		char *f = cbl_path_join(s->cg_v2, "memory.events");
		bool hit = read_counter(f, "oom_kill", &n) && n > 0;
		free(f);
		return hit;
	}
	if (s->cg_mem) {
		char *f = cbl_path_join(s->cg_mem, "memory.oom_control");
		bool hit = read_counter(f, "oom_kill", &n) && n > 0;
		free(f);
		if (hit)
			return true;
		f = cbl_path_join(s->cg_mem, "memory.failcnt");
		char *data = NULL;
		size_t len = 0;
		cbl_error *e = NULL;
		if (cbl_read_file(f, 64, &data, &len, &e) == 0)
			hit = strtoll(data, NULL, 10) > 0;
		cbl_error_free(e);
		free(data);
		free(f);
		return hit;
	}
	return false;
}

/* ---------------------------------------------------------------- parent side */

static void put_escaped(cbl_buf *b, const char *path)
{
	for (const char *c = path; *c; c++) {
		if (*c == '\\' || *c == ',' || *c == ':')
			cbl_buf_putc(b, '\\');
		cbl_buf_putc(b, *c);
	}
}

char *runner_overlay_opts(const char *lower, const char *upper, const char *work)
{
	cbl_buf b = CBL_BUF_INIT;
	cbl_buf_puts(&b, "lowerdir=");
	put_escaped(&b, lower);
	cbl_buf_puts(&b, ",upperdir=");
	put_escaped(&b, upper);
	cbl_buf_puts(&b, ",workdir=");
	put_escaped(&b, work);
	return cbl_buf_detach(&b);
}

static void build_plan(plan *p, const runner_sandbox_opts *o, bool userns)
{
	char *upper = cbl_path_join(o->scratch, "upper");
	char *work = cbl_path_join(o->scratch, "work");
	char *root = cbl_path_join(o->scratch, "root");
	char path[4096];
	add(p, STEP_PRIVATE, NULL, NULL, 0);
	add(p, STEP_TMPFS, NULL, o->scratch, 0755);
	add(p, STEP_MKDIR, NULL, upper, 0);
	add(p, STEP_MKDIR, NULL, work, 0);
	add(p, STEP_MKDIR, NULL, root, 0);
	const char *lower = o->rootfs ? o->rootfs : "/";
	if (!userns) {
		/* the host's / (or the image's root) is the read-only lower layer;
		 * every write lands in the private tmpfs and vanishes with the
		 * namespace */
		char *opts = runner_overlay_opts(lower, upper, work);
		add(p, STEP_OVERLAY, opts, root, 0);
		free(opts);
		if (o->rootfs) {
			/* names resolve as on the host, as docker gives a container
			 * the host's resolver configuration */
			char *data = NULL;
			size_t dlen = 0;
			if (cbl_read_file("/etc/resolv.conf", 1 << 16, &data, &dlen, NULL) == 0) {
				char *etc = cbl_path_join(root, "etc");
				char *rc = cbl_path_join(root, "etc/resolv.conf");
				add(p, STEP_MKDIR, NULL, etc, 0);
				add(p, STEP_WRITE, data, rc, 0);
				free(etc);
				free(rc);
				free(data);
			}
		}
		/* the build's hostname resolves, as in a container */
		char *hosts = cbl_path_join(root, "etc/hosts");
		char *line = cbl_xasprintf("127.0.1.1\t%s\n", o->hostname ? o->hostname : "codebuild-local");
		add(p, STEP_HOSTS, line, hosts, 0);
		free(hosts);
		free(line);
	} else {
		/* an unprivileged user namespace cannot clone / into an overlay
		 * (its submounts are locked): a tmpfs root holding the host's
		 * top-level directories bound read-only, and its symlinks */
		add(p, STEP_TMPFS, NULL, root, 0755);
		DIR *d = opendir(lower);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			const char *n = de->d_name;
			static const char *const skip[] = {".", "..", "proc", "dev", "sys", "tmp", "root",
							   "codebuild", "lost+found", NULL};
			bool skipped = false;
			for (const char *const *k = skip; *k; k++)
				skipped |= !strcmp(n, *k);
			if (skipped)
				continue;
			char host[4096], target[4096];
			snprintf(host, sizeof(host), "%s/%s", o->rootfs ? o->rootfs : "", n);
			snprintf(path, sizeof(path), "%s/%s", root, n);
			struct stat st;
			if (lstat(host, &st) < 0)
				continue;
			if (S_ISLNK(st.st_mode)) {
				ssize_t l = readlink(host, target, sizeof(target) - 1);
				if (l > 0) {
					target[l] = '\0';
					add(p, STEP_SYMLINK, target, path, 0);
				}
			} else if (S_ISDIR(st.st_mode)) {
				add(p, STEP_MKDIR, NULL, path, 0);
				add(p, STEP_RBIND_RO, host, path, 0);
			}
		}
		if (d)
			closedir(d);
		snprintf(path, sizeof(path), "%s/sys", root);
		add(p, STEP_MKDIR, NULL, path, 0);
		add(p, STEP_RBIND_RO, "/sys", path, 0);
		snprintf(path, sizeof(path), "%s/root", root);
		add(p, STEP_MKDIR, NULL, path, 0);
	}
#define AT(rel) (snprintf(path, sizeof(path), "%s%s", root, rel), path)
	add(p, STEP_MKDIR, NULL, AT("/proc"), 0);
	add(p, STEP_PROC, NULL, AT("/proc"), 0);
	add(p, STEP_MKDIR, NULL, AT("/dev"), 0);
	add(p, STEP_TMPFS, NULL, AT("/dev"), 0755);
	static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
	for (size_t i = 0; i < sizeof(nodes) / sizeof(*nodes); i++) {
		char host[64], rel[64];
		snprintf(host, sizeof(host), "/dev/%s", nodes[i]);
		snprintf(rel, sizeof(rel), "/dev/%s", nodes[i]);
		add(p, STEP_DEVNODE, host, AT(rel), 0);
	}
	add(p, STEP_MKDIR, NULL, AT("/dev/pts"), 0);
	add(p, STEP_DEVPTS, NULL, AT("/dev/pts"), 0);
	add(p, STEP_SYMLINK, "pts/ptmx", AT("/dev/ptmx"), 0);
	add(p, STEP_MKDIR, NULL, AT("/dev/shm"), 0);
	add(p, STEP_TMPFS, NULL, AT("/dev/shm"), 01777);
	add(p, STEP_SYMLINK, "/proc/self/fd", AT("/dev/fd"), 0);
	add(p, STEP_SYMLINK, "/proc/self/fd/0", AT("/dev/stdin"), 0);
	add(p, STEP_SYMLINK, "/proc/self/fd/1", AT("/dev/stdout"), 0);
	add(p, STEP_SYMLINK, "/proc/self/fd/2", AT("/dev/stderr"), 0);
	add(p, STEP_MKDIR, NULL, AT("/tmp"), 0);
	add(p, STEP_TMPFS, NULL, AT("/tmp"), 01777);
	if (userns) {
		add(p, STEP_TMPFS, NULL, AT("/root"), 0700);
		if (access("/var/tmp", F_OK) == 0)
			add(p, STEP_TMPFS, NULL, AT("/var/tmp"), 01777);
	}
	add(p, STEP_MKDIR, NULL, AT("/codebuild/output"), 0);
	add(p, STEP_TMPFS, NULL, AT("/codebuild/output"), 0755);
	if (o->src_parent_host) {
		char parent[4096];
		snprintf(parent, sizeof(parent), "%s", o->src_inner);
		char *slash = strrchr(parent, '/');
		if (slash && slash != parent)
			*slash = '\0';
		add(p, STEP_MKDIR, NULL, AT(parent), 0);
		add(p, STEP_RBIND, o->src_parent_host, AT(parent), 0);
	} else if (add(p, STEP_MKDIR, NULL, AT(o->src_inner), 0), o->src_snapshot && !userns) {
		/* the working tree is the read-only lower layer: the build may
		 * delete and rewrite anything, the tree stays as it was, and it
		 * costs the same for 10 files or 100,000 */
		char *su = cbl_path_join(o->scratch, "src-upper");
		char *sw = cbl_path_join(o->scratch, "src-work");
		add(p, STEP_MKDIR, NULL, su, 0);
		add(p, STEP_MKDIR, NULL, sw, 0);
		char *opts = runner_overlay_opts(o->src_host, su, sw);
		add(p, STEP_OVERLAY, opts, AT(o->src_inner), 0);
		free(opts);
		free(su);
		free(sw);
	} else {
		add(p, STEP_RBIND, o->src_host, AT(o->src_inner), 0);
	}
	for (const char *const *bd = o->binds; bd && bd[0] && bd[1]; bd += 2) {
		add(p, STEP_MKDIR, NULL, AT(bd[1]), 0);
		add(p, STEP_RBIND, bd[0], AT(bd[1]), 0);
	}
	add(p, STEP_MKDIR, NULL, AT(o->tmp_inner), 0);
	add(p, STEP_RBIND, o->tmp_host, AT(o->tmp_inner), 0);
	add(p, STEP_MKDIR, NULL, AT("/codebuild/readonly"), 0);
#undef AT
	add(p, STEP_HOSTNAME, o->hostname ? o->hostname : "codebuild-local", NULL, 0);
	if (o->network_none)
		add(p, STEP_LOOPBACK, NULL, NULL, 0);
	add(p, STEP_PIVOT, NULL, root, 0);
	/* a source that arrives later (git clone) is not there yet */
	add(p, STEP_CHDIR, NULL, o->src_parent_host ? "/" : o->src_inner, 0);
	free(upper);
	free(work);
	free(root);
}

static int write_maps(pid_t pid, uid_t uid, gid_t gid)
{
	char path[64], line[64];
	snprintf(path, sizeof(path), "/proc/%ld/setgroups", (long)pid);
	write_str(path, "deny");
	snprintf(path, sizeof(path), "/proc/%ld/uid_map", (long)pid);
	snprintf(line, sizeof(line), "0 %ld 1\n", (long)uid);
	if (write_str(path, line) < 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%ld/gid_map", (long)pid);
	snprintf(line, sizeof(line), "0 %ld 1\n", (long)gid);
	return write_str(path, line);
}

int runner_sandbox_start(runner_sandbox **out, const runner_sandbox_opts *o, cbl_error **err)
{
	runner_sandbox *s = cbl_xcalloc(1, sizeof(*s));
	plan p = {0};
	int sv[2] = {-1, -1}, sync[2] = {-1, -1};
	int rc = 0;
	bool userns = geteuid() != 0;
	s->userns = userns;
	s->init = -1;
	s->sock = -1;
	build_plan(&p, o, userns);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(sync, O_CLOEXEC) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: cannot create a socket pair");
		goto fail;
	}
	unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD;
	if (userns)
		flags |= CLONE_NEWUSER;
	if (o->network_none)
		flags |= CLONE_NEWNET;
	/* a fork-like clone (no new stack): the child runs on a copy of ours */
	pid_t pid = (pid_t)syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
	if (pid < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno,
					 "sandbox: cannot create the build's namespaces (clone)");
		goto fail;
	}
	if (pid == 0) {
		close(sv[0]);
		close(sync[1]);
		init_main(&p, sv[1], sync[0], o);
	}
	s->init = pid;
	close(sv[1]);
	sv[1] = -1;
	close(sync[0]);
	sync[0] = -1;
	s->sock = sv[0];
	if (userns && write_maps(pid, geteuid(), getegid()) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: cannot write the user namespace's id maps");
		goto fail;
	}
	setup_cgroups(s, pid, o);
	char go = (char)(SYNC_BASE | s->rlim_fallback);
	if (write(sync[1], &go, 1) != 1) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: the init process died");
		goto fail;
	}
	close(sync[1]);
	sync[1] = -1;
	rec r;
	if (read_full(s->sock, &r, sizeof(r)) < 0) {
		rc = cbl_error_set(err, CBL_EIO, "sandbox: the init process died during setup");
		goto fail;
	}
	if (r.kind == REC_SETUP_ERR) {
		rc = cbl_error_set(err, CBL_EIO, "sandbox: %s", r.msg);
		goto fail;
	}
	if (r.kind != REC_READY) {
		rc = cbl_error_set(err, CBL_EIO, "sandbox: unexpected record %d from init", r.kind);
		goto fail;
	}
	plan_release(&p);
	*out = s;
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0 && sv[i] != s->sock)
			close(sv[i]);
		if (sync[i] >= 0)
			close(sync[i]);
	}
	plan_release(&p);
	runner_sandbox_free(s);
	return rc;
}

const char *const *runner_sandbox_warnings(const runner_sandbox *s)
{
	static const char *const none[] = {NULL};
	return s->warnings.n ? (const char *const *)s->warnings.v : none;
}

int runner_sandbox_spawn(runner_sandbox *s, const char *shell, const char *script, const char *cwd,
			 const char *run_as, char *const envp[], cbl_error **err)
{
	cbl_buf req = CBL_BUF_INIT;
	cbl_buf_append(&req, "\0\0\0\0S", 5);
	cbl_buf_append(&req, "", 1);
	const char *fields[] = {shell, script, cwd, run_as ? run_as : ""};
	for (int i = 0; i < 4; i++)
		cbl_buf_append(&req, fields[i], strlen(fields[i]) + 1);
	for (size_t i = 0; envp && envp[i]; i++)
		cbl_buf_append(&req, envp[i], strlen(envp[i]) + 1);
	uint32_t len = (uint32_t)(req.len - 4);
	memcpy(req.ptr, &len, 4);
	int rc = 0;
	if (cbl_write_all(s->sock, req.ptr, req.len) < 0) {
		rc = cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: the build's init is gone");
		goto out;
	}
	rec r;
	if (read_full(s->sock, &r, sizeof(r)) < 0) {
		rc = cbl_error_set(err, CBL_EIO, "sandbox: the build's init is gone");
		goto out;
	}
	if (r.kind == REC_SPAWN_ERR) {
		rc = cbl_error_set(err, CBL_EIO, "%s", r.msg);
		goto out;
	}
	s->running = true;
out:
	cbl_buf_release(&req);
	return rc;
}

int runner_sandbox_fd(const runner_sandbox *s) { return s->sock; }
pid_t runner_sandbox_pid(const runner_sandbox *s) { return s->init; }
bool runner_sandbox_can_overlay_source(void) { return geteuid() == 0; }

int runner_sandbox_wait(runner_sandbox *s, int *wstatus, cbl_error **err)
{
	rec r;
	for (;;) {
		if (read_full(s->sock, &r, sizeof(r)) < 0) {
			s->running = false;
			*wstatus = SIGKILL; /* as if killed: the namespace is gone */
			return cbl_error_set(err, CBL_EIO, "sandbox: the build's init is gone");
		}
		if (r.kind == REC_EXITED) {
			s->running = false;
			*wstatus = r.status;
			return 0;
		}
	}
}

void runner_sandbox_kill_all(runner_sandbox *s)
{
	if (s->sock < 0)
		return;
	uint32_t len = 1;
	char msg[5];
	memcpy(msg, &len, 4);
	msg[4] = 'K';
	cbl_write_all(s->sock, msg, sizeof(msg));
}

/* The new mount API builds the overlay in the runner's namespace (where the
 * layers' host paths resolve), then the detached mount is moved into the
 * sandbox's namespace by a child that joined it (setns needs a
 * single-threaded caller; the init itself runs under a seccomp filter that
 * forbids mounts, which the build inherits). */
int runner_sandbox_mount_overlay(runner_sandbox *s, const char *lower, const char *upper, const char *work,
				 const char *target, cbl_error **err)
{
	if (s->userns)
		return cbl_error_set(err, CBL_EINVAL, "sandbox: no overlay mounts in an unprivileged sandbox");
	char ns[64];
	snprintf(ns, sizeof(ns), "/proc/%ld/ns/mnt", (long)s->init);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: pipe");
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return cbl_error_set_errno(err, CBL_EIO, errno, "sandbox: fork");
	}
	if (pid == 0) {
		close(p[0]);
		const char *what = "open the overlay";
		int fs = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
		int nsfd = open(ns, O_RDONLY | O_CLOEXEC);
		int mfd = -1;
		if (fs < 0 || nsfd < 0)
			goto fail;
		what = "configure the overlay";
		if (syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "lowerdir", lower, 0) < 0 ||
		    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "upperdir", upper, 0) < 0 ||
		    syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "workdir", work, 0) < 0 ||
		    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
			goto fail;
		what = "create the overlay";
		mfd = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0);
		if (mfd < 0)
			goto fail;
		what = "join the build's mount namespace";
		if (setns(nsfd, CLONE_NEWNS) < 0)
			goto fail;
		what = "create the mount point";
		if (cbl_mkdir_p(target, 0755, NULL) < 0)
			goto fail;
		what = "attach the overlay";
		if (syscall(SYS_move_mount, mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			goto fail;
		_exit(0);
	fail:;
		int e = errno;
		dprintf(p[1], "%s: %s", what, strerror(e));
		_exit(1);
	}
	close(p[1]);
	char msg[256];
	ssize_t n = read(p[0], msg, sizeof(msg) - 1);
	close(p[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	msg[n > 0 ? n : 0] = '\0';
	return cbl_error_set(err, CBL_EIO, "sandbox: mount overlay on %s: %s", target,
			     n > 0 ? msg : "the helper process failed");
}

void runner_sandbox_free(runner_sandbox *s)
{
	if (!s)
		return;
	if (s->init > 0) {
		/* closing the socket ends the init, which takes the namespace
		 * down; SIGKILL makes sure of it */
		if (s->sock >= 0)
			close(s->sock);
		s->sock = -1;
		kill(s->init, SIGKILL);
		while (waitpid(s->init, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (s->sock >= 0)
		close(s->sock);
	/* cgroups empty once the namespace is gone; give the kernel a moment */
	char *dirs[] = {s->cg_v2, s->cg_mem, s->cg_pids};
	for (size_t i = 0; i < 3; i++) {
		if (!dirs[i])
			continue;
		for (int tries = 0; tries < 100 && rmdir(dirs[i]) < 0 && errno == EBUSY; tries++)
			usleep(2000);
		free(dirs[i]);
	}
	free(s->cg_v2_parent);
	cbl_strv_release(&s->warnings);
	free(s);
}
