/* sandbox/exec.c - running the steps of a plan: the init's (mounts, names,
 * the new root, restrictions) and the parent's (id maps, limits). */
#include "sandbox/sandbox_internal.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/banned.h"

/* ---------------------------------------------------------------- in the init */

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

static int pivot_into(const char *root)
{
	char old[4096];
	snprintf(old, sizeof(old), "%s/.oldroot", root);
	if (mkdir(old, 0700) < 0 && errno != EEXIST)
		return -1;
	if (syscall(SYS_pivot_root, root, old) < 0)
		return -1;
	if (chdir("/") < 0)
		return -1;
	if (umount2("/.oldroot", MNT_DETACH) < 0)
		return -1;
	rmdir("/.oldroot");
	return 0;
}

/* Copy-up into the overlay: the host's (the image's) file is untouched; an
 * image without one gets localhost too. */
static int append_hosts(const char *path, const char *line)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) == 0 && st.st_size == 0)
		rc = cbl_write_all(fd, "127.0.0.1\tlocalhost\n::1\tlocalhost\n", 33);
	if (rc == 0)
		rc = cbl_write_all(fd, line, strlen(line));
	close(fd);
	return rc;
}

/* replaces whatever is there, a symlink included, never through it */
static int replace_file(const char *path, const char *content, mode_t mode)
{
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	int rc = cbl_write_all(fd, content, strlen(content));
	/* the exact mode, whatever the umask (sudo insists on 0440) */
	if (rc == 0)
		rc = fchmod(fd, mode);
	close(fd);
	return rc;
}

/* A bind of a file needs a file to cover: created empty when missing. */
static int bind_target(const char *source, const char *target)
{
	struct stat st;
	if (lstat(target, &st) == 0 || stat(source, &st) < 0 || S_ISDIR(st.st_mode))
		return 0;
	int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* Read-only all the way down: a recursive bind brings submounts, which
 * MS_REMOUNT would leave writable (and in a user namespace it must repeat
 * the locked flags of each, which mount_setattr leaves alone). */
static int remount_ro(const char *path)
{
	struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
	if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof(attr)) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
	return mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
}

/* One of the host's mounts in the view: an overlay like the root's, or a
 * read-only bind of it alone when it is read-only or overlayfs refuses it
 * (a file, a filesystem overlayfs does not take).  A mount point that is
 * gone (the mount was covered since) shows nothing. */
static int submount(const sandbox_step *s)
{
	unsigned long flags = (unsigned long)s->num & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
	if (s->arg && mount("overlay", s->path, "overlay", flags, s->arg) == 0)
		return 0;
	if (mount(s->src, s->path, NULL, MS_BIND, NULL) < 0)
		return errno == ENOENT ? 0 : -1;
	return mount(NULL, s->path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, NULL);
}

/* the first n CPUs of the current affinity (nproc counts them) */
static int keep_cpus(int64_t n)
{
	cpu_set_t set, use;
	CPU_ZERO(&use);
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		int got = 0;
		for (int cpu = 0; cpu < CPU_SETSIZE && got < n; cpu++)
			if (CPU_ISSET(cpu, &set)) {
				CPU_SET(cpu, &use);
				got++;
			}
		sched_setaffinity(0, sizeof(use), &use);
	}
	return 0;
}

/* What a sandboxed command never needs and a breakout would (kernel
 * modules, kexec, handle-based opens, the kernel keyring, new mounts). */
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

static int run_mount_step(const sandbox_step *s)
{
	switch (s->kind) {
	case SANDBOX_STEP_PRIVATE:
		return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	case SANDBOX_STEP_TMPFS: {
		char opts[32];
		snprintf(opts, sizeof(opts), "mode=%llo", (unsigned long long)s->num);
		return mount("tmpfs", s->path, "tmpfs", MS_NOSUID | MS_NODEV, opts);
	}
	case SANDBOX_STEP_OVERLAY:
		return mount("overlay", s->path, "overlay", 0, s->arg);
	case SANDBOX_STEP_BIND:
		if (bind_target(s->arg, s->path) < 0)
			return -1;
		return mount(s->arg, s->path, NULL, MS_BIND | MS_REC, NULL);
	case SANDBOX_STEP_REMOUNT_RO:
		return remount_ro(s->path);
	case SANDBOX_STEP_SUBMOUNT:
		return submount(s);
	case SANDBOX_STEP_PROC:
		return mount("proc", s->path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	case SANDBOX_STEP_DEVPTS:
		return mount("devpts", s->path, "devpts", MS_NOSUID | MS_NOEXEC,
			     "newinstance,ptmxmode=0666,mode=620");
	case SANDBOX_STEP_DEVNODE: {
		int fd = open(s->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
		if (fd < 0)
			return -1;
		close(fd);
		return mount(s->arg, s->path, NULL, MS_BIND, NULL);
	}
	default:
		errno = EINVAL;
		return -1;
	}
}

int sandbox_step_run(const sandbox_step *s)
{
	switch (s->kind) {
	case SANDBOX_STEP_MKDIR:
		return cbl_mkdir_p(s->path, 0755, NULL) < 0 ? -1 : 0;
	case SANDBOX_STEP_SYMLINK:
		return symlink(s->arg, s->path) < 0 && errno != EEXIST ? -1 : 0;
	case SANDBOX_STEP_WRITE:
		return replace_file(s->path, s->arg, s->num ? (mode_t)s->num : 0644);
	case SANDBOX_STEP_HOSTS:
		return append_hosts(s->path, s->arg);
	case SANDBOX_STEP_HOSTNAME:
		return sethostname(s->arg, strlen(s->arg));
	case SANDBOX_STEP_LOOPBACK:
		return loopback_up();
	case SANDBOX_STEP_PIVOT:
		return pivot_into(s->path);
	case SANDBOX_STEP_CHDIR:
		return chdir(s->path);
	case SANDBOX_STEP_CPUS:
		return keep_cpus(s->num);
	case SANDBOX_STEP_NO_NEW_PRIVS:
		return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	case SANDBOX_STEP_SECCOMP:
		return apply_seccomp();
	case SANDBOX_STEP_RESOLV:
		return sandbox_resolv_put(s->arg, s->path);
	default:
		return run_mount_step(s);
	}
}

/* ---------------------------------------------------------------- in the parent */

static int write_id_map(pid_t pid, const char *file, int64_t outer)
{
	char path[64], line[64];
	snprintf(path, sizeof(path), "/proc/%ld/%s", (long)pid, file);
	snprintf(line, sizeof(line), "0 %lld 1\n", (long long)outer);
	return sandbox_write_str(path, line);
}

int sandbox_plan_run_parent(sandbox_handle *s, const sandbox_plan *p, pid_t pid, cbl_error **err)
{
	const char *cgroup = NULL;
	int64_t memory = 0, pids = 0;
	char path[64];
	for (size_t i = 0; i < p->n; i++) {
		const sandbox_step *st = &p->v[i];
		switch (st->kind) {
		case SANDBOX_STEP_GID_MAP:
			/* an unprivileged gid_map needs setgroups denied first */
			snprintf(path, sizeof(path), "/proc/%ld/setgroups", (long)pid);
			sandbox_write_str(path, "deny");
			/* fall through */
		case SANDBOX_STEP_UID_MAP:
			if (write_id_map(pid, st->kind == SANDBOX_STEP_UID_MAP ? "uid_map" : "gid_map", st->num) < 0)
				return cbl_error_set_errno(err, CBL_EIO, errno,
							   "sandbox: cannot write the user namespace's id maps");
			break;
		case SANDBOX_STEP_MEMORY_LIMIT:
			cgroup = st->arg;
			memory = st->num;
			break;
		case SANDBOX_STEP_PIDS_LIMIT:
			cgroup = st->arg;
			pids = st->num;
			break;
		case SANDBOX_STEP_NAT:
			if (sandbox_nat_start(s, st, pid, err) < 0)
				return CBL_EIO;
			break;
		default:
			break;
		}
	}
	/* both limits go into one cgroup (v2), so they are applied together */
	if (cgroup)
		sandbox_cgroups_apply(s, pid, cgroup, memory, pids);
	return 0;
}
