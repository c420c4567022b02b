/* sandbox/exec.c - running the steps of a plan: the init's (mounts, names,
 * the new root, restrictions) and the parent's (id maps, limits). */
#include "sandbox/sandbox_internal.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statvfs.h>
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

/* One of the host's mounts in the view: an overlay like the root's, or a
 * read-only bind of it alone when it is read-only or overlayfs refuses it
 * (a file, a filesystem overlayfs does not take).  A mount point that is
 * gone (the mount was covered since) shows nothing. */
static int submount(const sandbox_step *s)
{
	/* nodev like every mount but the minimal /dev's */
	unsigned long flags = ((unsigned long)s->num & (MS_NOSUID | MS_NOEXEC)) | MS_NODEV;
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

/* Adds attributes to the mount at path (all the mounts under it too with
 * AT_RECURSIVE).  mount_setattr changes only those, keeping the flags a
 * user namespace locked (a remount that forgot one would fail there);
 * before Linux 5.12, a remount of the top mount with its current flags. */
static int mount_add_attr(const char *path, unsigned recursive, uint64_t attr)
{
	struct mount_attr a = {.attr_set = attr};
	if (mount_setattr(AT_FDCWD, path, recursive, &a, sizeof(a)) == 0)
		return 0;
	if (errno != ENOSYS)
		return -1;
	struct statvfs sv;
	if (statvfs(path, &sv) < 0)
		return -1;
	static const struct {
		unsigned long st, ms;
		uint64_t attr;
	} flags[] = {
		{ST_RDONLY, MS_RDONLY, MOUNT_ATTR_RDONLY}, {ST_NOSUID, MS_NOSUID, MOUNT_ATTR_NOSUID},
		{ST_NODEV, MS_NODEV, MOUNT_ATTR_NODEV},    {ST_NOEXEC, MS_NOEXEC, MOUNT_ATTR_NOEXEC},
		{ST_NOATIME, MS_NOATIME, 0},               {ST_NODIRATIME, MS_NODIRATIME, 0},
		{ST_RELATIME, MS_RELATIME, 0},
	};
	unsigned long f = MS_REMOUNT | MS_BIND;
	for (size_t i = 0; i < sizeof(flags) / sizeof(*flags); i++)
		if ((sv.f_flag & flags[i].st) || (attr & flags[i].attr))
			f |= flags[i].ms;
	return mount(NULL, path, NULL, f, NULL);
}

/* A file gets /dev/null (the host's: this runs before the pivot) bound over
 * it, a directory an empty read-only tmpfs; what this kernel does not have
 * needs no hiding. */
static int mask_path(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (S_ISDIR(st.st_mode))
		return mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			     "mode=0555,size=4k");
	return mount("/dev/null", path, NULL, MS_BIND, NULL);
}

/* path bound over itself, then read-only: writes fail with EROFS whoever
 * makes them, and the commands cannot unmount it (no SYS_ADMIN, and the
 * seccomp filter) */
static int readonly_path(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
		return -1;
	return mount_add_attr(path, AT_RECURSIVE,
			      MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
}

/* A whiteout for rel in the upper layer of an overlay not mounted yet: its
 * parent directories made as in the lower layer (mode), then a 0/0
 * character device (allowed unprivileged since Linux 5.8).  A path that
 * is not a plain relative one is skipped. */
static int whiteout(const char *lower, const char *upper, const char *rel)
{
	if (!rel || !*rel || rel[0] == '/' || strstr(rel, ".."))
		return 0;
	char *dup = cbl_xstrdup(rel);
	size_t l = strlen(dup);
	while (l && dup[l - 1] == '/')
		dup[--l] = '\0';
	int rc = 0;
	for (char *c = strchr(dup, '/'); c && !rc; c = strchr(c + 1, '/')) {
		*c = '\0';
		char *lp = cbl_path_join(lower, dup), *up = cbl_path_join(upper, dup);
		struct stat st;
		mode_t mode = stat(lp, &st) == 0 ? st.st_mode & 07777 : 0755;
		if (mkdir(up, mode) < 0 && errno != EEXIST)
			rc = -1;
		free(lp);
		free(up);
		*c = '/';
	}
	if (!rc) {
		char *up = cbl_path_join(upper, dup);
		rc = mknod(up, S_IFCHR | 0000, makedev(0, 0)) < 0 && errno != EEXIST ? -1 : 0;
		free(up);
	}
	free(dup);
	return rc;
}

static int run_mount_step(const sandbox_step *s)
{
	unsigned long nodev = sandbox_step_nodev(s->kind) ? MS_NODEV : 0;
	switch (s->kind) {
	case SANDBOX_STEP_PRIVATE:
		return mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	case SANDBOX_STEP_TMPFS: {
		char opts[96];
		snprintf(opts, sizeof(opts), "mode=%llo%s%s", (unsigned long long)s->num, s->arg ? "," : "",
			 s->arg ? s->arg : "");
		return mount("tmpfs", s->path, "tmpfs", MS_NOSUID | nodev, opts);
	}
	case SANDBOX_STEP_OVERLAY:
		return mount("overlay", s->path, "overlay", nodev, s->arg);
	case SANDBOX_STEP_BIND:
		if (bind_target(s->arg, s->path) < 0)
			return -1;
		/* the bind keeps its source's flags: a host directory where
		 * device nodes work would let the build's root use one it made
		 * (CAP_MKNOD is in the default set) */
		if (mount(s->arg, s->path, NULL, MS_BIND | MS_REC, NULL) < 0)
			return -1;
		return nodev ? mount_add_attr(s->path, AT_RECURSIVE, MOUNT_ATTR_NODEV) : 0;
	case SANDBOX_STEP_REMOUNT_RO:
		/* submounts too (a read-only --mount of a tree with mounts) */
		return mount_add_attr(s->path, AT_RECURSIVE, MOUNT_ATTR_RDONLY);
	case SANDBOX_STEP_SUBMOUNT:
		return submount(s);
	case SANDBOX_STEP_MASK:
		return mask_path(s->path);
	case SANDBOX_STEP_READONLY:
		return readonly_path(s->path);
	case SANDBOX_STEP_PROC:
		return mount("proc", s->path, "proc", MS_NOSUID | nodev | MS_NOEXEC, NULL);
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


/* the soft limit up to num, within the hard limit (never lowered) */
static int raise_nofile(int64_t num)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	rlim_t want = (rlim_t)num;
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max)
		want = rl.rlim_max;
	if (want <= rl.rlim_cur)
		return 0;
	rl.rlim_cur = want;
	return setrlimit(RLIMIT_NOFILE, &rl);
}

int sandbox_step_run(const sandbox_step *s)
{
	switch (s->kind) {
	case SANDBOX_STEP_MKDIR:
		if (cbl_mkdir_p(s->path, 0755, NULL) < 0)
			return -1;
		return s->num ? chmod(s->path, (mode_t)s->num) : 0;
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
		return sandbox_seccomp_load();
	case SANDBOX_STEP_RESOLV:
		return sandbox_resolv_put(s->arg, s->path);
	case SANDBOX_STEP_CAPS:
		return sandbox_caps_limit((uint64_t)s->num);
	case SANDBOX_STEP_WHITEOUT:
		return whiteout(s->arg, s->path, s->src);
	case SANDBOX_STEP_NOFILE:
		return raise_nofile(s->num);
	default:
		return run_mount_step(s);
	}
}

/* ---------------------------------------------------------------- in the parent */

int sandbox_plan_run_parent(sandbox_handle *s, const sandbox_plan *p, pid_t pid, cbl_error **err)
{
	const char *cgroup = NULL;
	int64_t memory = 0, pids = 0;
	for (size_t i = 0; i < p->n; i++) {
		const sandbox_step *st = &p->v[i];
		switch (st->kind) {
		case SANDBOX_STEP_UID_MAP:
		case SANDBOX_STEP_GID_MAP:
			if (sandbox_idmap_write(st, pid, err) < 0)
				return CBL_EIO;
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
