/* sandbox/plan.c - the options become a list of typed steps (see
 * sandbox_internal.h).  Nothing here changes the system: the plan is built in
 * the parent before the clone, so it can be inspected (tests) and so the
 * cloned init only replays it, reporting the first step that fails.
 */
#include "sandbox/sandbox_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"

#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

/* ---------------------------------------------------------------- tables */

/* when a namespace is part of the clone */
enum { NS_ALWAYS, NS_UNPRIVILEGED, NS_OWN_NETWORK };

static const struct ns_kind {
	const char *name;
	int flag;
	int when;
} ns_kinds[SANDBOX_NS_COUNT] = {
	[SANDBOX_NS_MOUNT] = {"mount", CLONE_NEWNS, NS_ALWAYS},
	[SANDBOX_NS_PID] = {"pid", CLONE_NEWPID, NS_ALWAYS},
	[SANDBOX_NS_IPC] = {"ipc", CLONE_NEWIPC, NS_ALWAYS},
	[SANDBOX_NS_UTS] = {"uts", CLONE_NEWUTS, NS_ALWAYS},
	/* without root, a user namespace is what allows the mounts at all */
	[SANDBOX_NS_USER] = {"user", CLONE_NEWUSER, NS_UNPRIVILEGED},
	/* every network but the host's: the host's loopback services, abstract
	 * unix sockets and interfaces live in the host's network namespace */
	[SANDBOX_NS_NET] = {"network", CLONE_NEWNET, NS_OWN_NETWORK},
};

int sandbox_ns_flag(sandbox_ns ns)
{
	return (unsigned)ns < SANDBOX_NS_COUNT ? ns_kinds[ns].flag : 0;
}

const char *sandbox_ns_name(sandbox_ns ns)
{
	return (unsigned)ns < SANDBOX_NS_COUNT ? ns_kinds[ns].name : "?";
}

/* nodev: a kind that mounts where device nodes must not work (every mount
 * but the minimal /dev's: its bound nodes and devpts; a mask binds the
 * host's /dev/null, or mounts a nodev tmpfs) */
static const struct step_kind {
	const char *name;
	sandbox_side side;
	bool nodev;
} step_kinds[SANDBOX_STEP_KIND_COUNT] = {
	[SANDBOX_STEP_NAMESPACE] = {"namespace", SANDBOX_AT_CLONE, false},
	[SANDBOX_STEP_UID_MAP] = {"uid-map", SANDBOX_IN_PARENT, false},
	[SANDBOX_STEP_GID_MAP] = {"gid-map", SANDBOX_IN_PARENT, false},
	[SANDBOX_STEP_MEMORY_LIMIT] = {"memory-limit", SANDBOX_IN_PARENT, false},
	[SANDBOX_STEP_PIDS_LIMIT] = {"pids-limit", SANDBOX_IN_PARENT, false},
	[SANDBOX_STEP_PRIVATE] = {"private", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_MKDIR] = {"mkdir", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_TMPFS] = {"tmpfs", SANDBOX_IN_INIT, true},
	[SANDBOX_STEP_OVERLAY] = {"overlay", SANDBOX_IN_INIT, true},
	[SANDBOX_STEP_BIND] = {"bind", SANDBOX_IN_INIT, true},
	[SANDBOX_STEP_REMOUNT_RO] = {"remount-ro", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_SUBMOUNT] = {"submount", SANDBOX_IN_INIT, true},
	[SANDBOX_STEP_PROC] = {"proc", SANDBOX_IN_INIT, true},
	[SANDBOX_STEP_DEVPTS] = {"devpts", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_DEVNODE] = {"devnode", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_SYMLINK] = {"symlink", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_WRITE] = {"write", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_HOSTS] = {"hosts", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_HOSTNAME] = {"hostname", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_LOOPBACK] = {"loopback", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_PIVOT] = {"pivot", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_CHDIR] = {"chdir", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_CPUS] = {"cpus", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_NO_NEW_PRIVS] = {"no-new-privs", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_SECCOMP] = {"seccomp", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_NAT] = {"nat", SANDBOX_IN_PARENT, false},
	[SANDBOX_STEP_RESOLV] = {"resolv", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_MASK] = {"mask", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_READONLY] = {"readonly", SANDBOX_IN_INIT, true},
	[SANDBOX_STEP_CAPS] = {"caps", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_WHITEOUT] = {"whiteout", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_NOFILE] = {"nofile", SANDBOX_IN_INIT, false},
	[SANDBOX_STEP_FUSE_ROOT] = {"fuse-root", SANDBOX_IN_INIT, true},
	[SANDBOX_STEP_HOLD_SCRATCH] = {"hold-scratch", SANDBOX_IN_INIT, false},
};

sandbox_side sandbox_step_side(sandbox_step_kind kind)
{
	return (unsigned)kind < SANDBOX_STEP_KIND_COUNT ? step_kinds[kind].side : SANDBOX_IN_INIT;
}

bool sandbox_step_nodev(sandbox_step_kind kind)
{
	return (unsigned)kind < SANDBOX_STEP_KIND_COUNT && step_kinds[kind].nodev;
}

const char *sandbox_step_name(sandbox_step_kind kind)
{
	return (unsigned)kind < SANDBOX_STEP_KIND_COUNT ? step_kinds[kind].name : "?";
}

const char *sandbox_step_describe(const sandbox_step *s, char *buf, size_t len)
{
	switch (s->kind) {
	case SANDBOX_STEP_NAMESPACE:
		snprintf(buf, len, "create the %s namespace", sandbox_ns_name((sandbox_ns)s->num));
		break;
	case SANDBOX_STEP_UID_MAP:
	case SANDBOX_STEP_GID_MAP:
		snprintf(buf, len, "write the user namespace's %s map%s%s", s->kind == SANDBOX_STEP_UID_MAP ? "uid" : "gid",
			 s->path ? " with " : "", s->path ? s->path : "");
		break;
	case SANDBOX_STEP_MEMORY_LIMIT: snprintf(buf, len, "limit memory to %lld bytes", (long long)s->num); break;
	case SANDBOX_STEP_PIDS_LIMIT: snprintf(buf, len, "limit processes to %lld", (long long)s->num); break;
	case SANDBOX_STEP_PRIVATE: snprintf(buf, len, "make / private"); break;
	case SANDBOX_STEP_MKDIR: snprintf(buf, len, "create directory %s", s->path); break;
	case SANDBOX_STEP_TMPFS: snprintf(buf, len, "mount tmpfs on %s", s->path); break;
	case SANDBOX_STEP_OVERLAY: snprintf(buf, len, "mount overlay on %s", s->path); break;
	case SANDBOX_STEP_BIND: snprintf(buf, len, "bind %s on %s", s->arg, s->path); break;
	case SANDBOX_STEP_REMOUNT_RO: snprintf(buf, len, "remount %s read-only", s->path); break;
	case SANDBOX_STEP_SUBMOUNT: snprintf(buf, len, "show the host's mount %s on %s", s->src, s->path); break;
	case SANDBOX_STEP_PROC: snprintf(buf, len, "mount proc on /proc"); break;
	case SANDBOX_STEP_DEVPTS: snprintf(buf, len, "mount devpts on /dev/pts"); break;
	case SANDBOX_STEP_DEVNODE: snprintf(buf, len, "bind %s", s->arg); break;
	case SANDBOX_STEP_SYMLINK: snprintf(buf, len, "symlink %s", s->path); break;
	case SANDBOX_STEP_WRITE: snprintf(buf, len, "write %s", s->path); break;
	case SANDBOX_STEP_HOSTS: snprintf(buf, len, "add the hostname to /etc/hosts"); break;
	case SANDBOX_STEP_HOSTNAME: snprintf(buf, len, "set hostname"); break;
	case SANDBOX_STEP_LOOPBACK: snprintf(buf, len, "bring up loopback"); break;
	case SANDBOX_STEP_PIVOT: snprintf(buf, len, "pivot_root into the new root"); break;
	case SANDBOX_STEP_CHDIR: snprintf(buf, len, "chdir %s", s->path); break;
	case SANDBOX_STEP_CPUS: snprintf(buf, len, "keep %lld CPUs", (long long)s->num); break;
	case SANDBOX_STEP_NO_NEW_PRIVS: snprintf(buf, len, "set no_new_privs"); break;
	case SANDBOX_STEP_SECCOMP: snprintf(buf, len, "install the seccomp filter"); break;
	case SANDBOX_STEP_NAT: snprintf(buf, len, "start %s for the network namespace", s->arg); break;
	case SANDBOX_STEP_RESOLV: snprintf(buf, len, "point /etc/resolv.conf at the NAT's DNS"); break;
	case SANDBOX_STEP_MASK: snprintf(buf, len, "mask %s", s->path); break;
	case SANDBOX_STEP_READONLY: snprintf(buf, len, "make %s read-only", s->path); break;
	case SANDBOX_STEP_WHITEOUT: snprintf(buf, len, "leave %s out of the overlay of %s", s->src, s->arg); break;
	case SANDBOX_STEP_CAPS:
		snprintf(buf, len, "drop capabilities (keep %#llx)", (unsigned long long)s->num);
		break;
	case SANDBOX_STEP_NOFILE: snprintf(buf, len, "raise the open files limit to %lld", (long long)s->num); break;
	case SANDBOX_STEP_FUSE_ROOT: snprintf(buf, len, "mount the root with %s", s->src ? s->src : "fuse-overlayfs"); break;
	case SANDBOX_STEP_HOLD_SCRATCH: snprintf(buf, len, "keep %s open", s->path); break;
	default: snprintf(buf, len, "step of kind %d", (int)s->kind); break;
	}
	return buf;
}

/* ---------------------------------------------------------------- the list */

unsigned long sandbox_plan_clone_flags(const sandbox_plan *p)
{
	unsigned long flags = 0;
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].kind == SANDBOX_STEP_NAMESPACE)
			flags |= (unsigned long)sandbox_ns_flag((sandbox_ns)p->v[i].num);
	return flags;
}

/* ---------------------------------------------------------------- building */

static int check_opts(const sandbox_opts *o, cbl_error **err)
{
	if (!o->scratch || !*o->scratch)
		return cbl_error_set(err, CBL_EINVAL, "sandbox: no scratch directory");
	if (o->private_lower && o->private_lower[0] != '/')
		return cbl_error_set(err, CBL_EINVAL, "sandbox: the private directories' layers %s are not absolute",
				     o->private_lower);
	if (o->root_upper_in && o->root_upper_in[0] != '/')
		return cbl_error_set(err, CBL_EINVAL, "sandbox: the root's layers %s are not absolute", o->root_upper_in);
	if (o->cwd && o->cwd[0] != '/')
		return cbl_error_set(err, CBL_EINVAL, "sandbox: the working directory %s is not absolute", o->cwd);
	if (o->memory_bytes < 0 || o->pids_max < 0 || o->cpus < 0)
		return cbl_error_set(err, CBL_EINVAL, "sandbox: a negative limit");
	if ((unsigned)o->network > SANDBOX_NET_NONE)
		return cbl_error_set(err, CBL_EINVAL, "sandbox: unknown network mode %d", (int)o->network);
	if ((o->memory_bytes || o->pids_max) && (!o->cgroup_name || !*o->cgroup_name || strchr(o->cgroup_name, '/')))
		return cbl_error_set(err, CBL_EINVAL, "sandbox: a limit needs a cgroup name (without '/')");
	for (size_t i = 0; i < o->n_mounts; i++) {
		const sandbox_mount *m = &o->mounts[i];
		if (!m->target || m->target[0] != '/')
			return cbl_error_set(err, CBL_EINVAL, "sandbox: mount %zu: the target %s is not absolute", i,
					     m->target ? m->target : "(none)");
		if ((unsigned)m->kind > SANDBOX_MOUNT_MASK)
			return cbl_error_set(err, CBL_EINVAL, "sandbox: %s: unknown mount kind %d", m->target,
					     (int)m->kind);
		bool needs_source = m->kind == SANDBOX_MOUNT_BIND || m->kind == SANDBOX_MOUNT_BIND_RO ||
				    m->kind == SANDBOX_MOUNT_OVERLAY;
		if (needs_source && (!m->source || !*m->source))
			return cbl_error_set(err, CBL_EINVAL, "sandbox: %s: no source to mount", m->target);
	}
	return 0;
}

static void plan_clone(sandbox_plan *p, const sandbox_opts *o, const sandbox_ids *ids)
{
	bool userns = ids->uid != 0;
	for (int ns = 0; ns < SANDBOX_NS_COUNT; ns++) {
		int when = ns_kinds[ns].when;
		if (when == NS_ALWAYS || (when == NS_UNPRIVILEGED && userns) ||
		    (when == NS_OWN_NETWORK && o->network != SANDBOX_NET_HOST))
			sandbox_plan_add(p, SANDBOX_STEP_NAMESPACE, NULL, NULL, ns);
	}
	if (userns && sandbox_ids_full(ids)) {
		/* root inside is the caller outside, ids 1..N its subordinate
		 * ids: written by the setuid helpers (idmap.c) */
		char range[64];
		snprintf(range, sizeof(range), "1 %lu %lu", (unsigned long)ids->subuid, (unsigned long)ids->nsubuid);
		sandbox_plan_add(p, SANDBOX_STEP_UID_MAP, range, ids->newuidmap, ids->uid);
		snprintf(range, sizeof(range), "1 %lu %lu", (unsigned long)ids->subgid, (unsigned long)ids->nsubgid);
		sandbox_plan_add(p, SANDBOX_STEP_GID_MAP, range, ids->newgidmap, ids->gid);
	} else if (userns) {
		/* root inside is the caller outside, and nobody else exists */
		sandbox_plan_add(p, SANDBOX_STEP_UID_MAP, NULL, NULL, ids->uid);
		sandbox_plan_add(p, SANDBOX_STEP_GID_MAP, NULL, NULL, ids->gid);
	}
	if (o->memory_bytes)
		sandbox_plan_add(p, SANDBOX_STEP_MEMORY_LIMIT, o->cgroup_name, NULL, o->memory_bytes);
	if (o->pids_max)
		sandbox_plan_add(p, SANDBOX_STEP_PIDS_LIMIT, o->cgroup_name, NULL, o->pids_max);
	/* after the id maps: unprivileged, the helper joins the user namespace */
	if (o->network == SANDBOX_NET_NAT)
		sandbox_plan_add(p, SANDBOX_STEP_NAT, "slirp4netns", NULL, 65520);
}

static const char *hostname_of(const sandbox_opts *o)
{
	return o->hostname ? o->hostname : "sandbox";
}

/* The root's (or the image's) / is the read-only lower layer: every write
 * lands in the private tmpfs and vanishes with the namespace.  In a user
 * namespace (an image's root only: the host's / has mounts under it, which
 * overlayfs refuses to take there), overlayfs keeps its own attributes
 * (opaque directories, redirects) in user.overlay.* xattrs instead of the
 * trusted.* ones only the host's root may set: without userxattr, removing
 * a directory of the image fails with EIO. */
static void plan_root_overlay(sandbox_plan *p, const sandbox_opts *o, const char *root, const char *upper,
			      const char *work, bool userns)
{
	char *opts;
	if (o->root_upper) {
		/* the kept layer, then the mask hiding the host's /root (an
		 * image's own /root shows), then the root
		 * (sandbox_opts.root_upper) */
		cbl_buf b = CBL_BUF_INIT;
		char *mask = cbl_path_join(o->root_upper, "mask");
		cbl_buf_puts(&b, "lowerdir=");
		if (o->root_lower) {
			sandbox_put_escaped(&b, o->root_lower);
			cbl_buf_putc(&b, ':');
		}
		if (!o->rootfs) {
			sandbox_put_escaped(&b, mask);
			cbl_buf_putc(&b, ':');
		}
		sandbox_put_escaped(&b, o->rootfs ? o->rootfs : "/");
		cbl_buf_puts(&b, ",upperdir=");
		sandbox_put_escaped(&b, upper);
		cbl_buf_puts(&b, ",workdir=");
		sandbox_put_escaped(&b, work);
		/* a plain layer the caller can copy: a renamed directory is
		 * copied, not a redirect xattr; no metadata-only copy-up */
		cbl_buf_puts(&b, ",redirect_dir=off,metacopy=off");
		opts = cbl_buf_detach(&b);
		free(mask);
	} else {
		opts = sandbox_overlay_opts2(o->root_lower, o->rootfs ? o->rootfs : "/", upper, work);
	}
	if (userns) {
		char *u = cbl_xasprintf("%s,userxattr", opts);
		free(opts);
		opts = u;
	}
	sandbox_plan_add(p, SANDBOX_STEP_OVERLAY, opts, root, 0);
	free(opts);
	if (o->rootfs && o->network != SANDBOX_NET_NAT) {
		/* names resolve as on the host, as docker gives a container the
		 * host's resolver configuration (behind the NAT: plan_finish) */
		char *data = NULL;
		size_t dlen = 0;
		if (cbl_read_file("/etc/resolv.conf", 1 << 16, &data, &dlen, NULL) == 0) {
			sandbox_plan_add_in(p, root, SANDBOX_STEP_MKDIR, NULL, "/etc", 0);
			sandbox_plan_add_in(p, root, SANDBOX_STEP_WRITE, data, "/etc/resolv.conf", 0);
			free(data);
		}
	}
	/* the hostname resolves, as in a container */
	char *line = cbl_xasprintf("127.0.1.1\t%s\n", hostname_of(o));
	sandbox_plan_add_in(p, root, SANDBOX_STEP_HOSTS, line, "/etc/hosts", 0);
	free(line);
}

/* Unprivileged, the host's / through fuse-overlayfs where the caller can
 * use it (sandbox/fuse.c): writable like root's overlay, every file shown
 * as root's (squash_to_root), the host's submounts seen through it;
 * root_lower (a layer an earlier fuse-overlayfs root left) above it. */
static void plan_root_fuse(sandbox_plan *p, const sandbox_opts *o, const sandbox_ids *ids, const char *root,
			   const char *upper, const char *work)
{
	cbl_buf opts = CBL_BUF_INIT;
	cbl_buf_puts(&opts, "lowerdir=");
	if (o->root_lower) {
		/* a kept upper layer above the host's / (check_opts: no ':') */
		sandbox_put_escaped(&opts, o->root_lower);
		cbl_buf_putc(&opts, ':');
	}
	cbl_buf_puts(&opts, "/,upperdir=");
	sandbox_put_escaped(&opts, upper);
	cbl_buf_puts(&opts, ",workdir=");
	sandbox_put_escaped(&opts, work);
	cbl_buf_puts(&opts, ",squash_to_root");
	sandbox_plan_add(p, SANDBOX_STEP_FUSE_ROOT, opts.ptr, root, 0);
	p->v[p->n - 1].src = cbl_xstrdup(ids->fuse_overlayfs);
	cbl_buf_release(&opts);
	char *line = cbl_xasprintf("127.0.1.1\t%s\n", hostname_of(o));
	sandbox_plan_add_in(p, root, SANDBOX_STEP_HOSTS, line, "/etc/hosts", 0);
	free(line);
}

/* A top-level name of the root not carried over from rootfs: mounted fresh
 * (the host view's private directories too), or holding a caller's mount
 * whose target rootfs lacks (inside a read-only bind it could not be
 * created).  is_dir: name is a directory of rootfs. */
static bool not_carried(const char *name, bool is_dir, const sandbox_opts *o)
{
	static const char *const fresh[] = {".", "..", "proc", "dev", "sys", "tmp", "root", "lost+found"};
	for (size_t i = 0; i < sizeof(fresh) / sizeof(*fresh); i++)
		if (!strcmp(name, fresh[i]))
			return true;
	if (!o->rootfs && is_dir && sandbox_host_private_top(name))
		return true;
	size_t len = strlen(name);
	for (size_t i = 0; i < o->n_mounts; i++) {
		const char *t = o->mounts[i].target + 1;
		if (o->mounts[i].kind == SANDBOX_MOUNT_MASK || strcspn(t, "/") != len || strncmp(t, name, len))
			continue;
		char *in_root = cbl_xasprintf("%s%s", o->rootfs ? o->rootfs : "", o->mounts[i].target);
		struct stat st;
		bool there = lstat(in_root, &st) == 0;
		free(in_root);
		if (!there)
			return true;
	}
	return false;
}

/* An unprivileged user namespace cannot clone / into an overlay (its
 * submounts are locked): a tmpfs root holding rootfs's top-level
 * directories bound read-only, and its symlinks. */
static void plan_root_userns(sandbox_plan *p, const sandbox_opts *o, const char *root)
{
	sandbox_plan_add(p, SANDBOX_STEP_TMPFS, NULL, root, 0755);
	DIR *d = opendir(o->rootfs ? o->rootfs : "/");
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *host = cbl_xasprintf("%s/%s", o->rootfs ? o->rootfs : "", de->d_name);
		char target[4096];
		struct stat st;
		bool found = lstat(host, &st) == 0;
		if (not_carried(de->d_name, found && S_ISDIR(st.st_mode), o)) {
			free(host);
			continue;
		}
		char *path = cbl_xasprintf("%s/%s", root, de->d_name);
		if (found && S_ISLNK(st.st_mode)) {
			ssize_t l = readlink(host, target, sizeof(target) - 1);
			if (l > 0) {
				target[l] = '\0';
				sandbox_plan_add(p, SANDBOX_STEP_SYMLINK, target, path, 0);
			}
		} else if (found && S_ISDIR(st.st_mode)) {
			sandbox_plan_add(p, SANDBOX_STEP_MKDIR, NULL, path, 0);
			sandbox_plan_add(p, SANDBOX_STEP_BIND, host, path, 0);
			sandbox_plan_add(p, SANDBOX_STEP_REMOUNT_RO, NULL, path, 0);
		}
		free(host);
		free(path);
	}
	if (d)
		closedir(d);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_MKDIR, NULL, "/sys", 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_BIND, "/sys", "/sys", 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_REMOUNT_RO, NULL, "/sys", 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_MKDIR, NULL, "/root", 0);
}

/* /proc, a minimal /dev, private /tmp (and /root, /var/tmp in an image's
 * root when it is read-only, o->ro_root; the host's view has its own
 * private directories) */
static void plan_system(sandbox_plan *p, const sandbox_opts *o, const char *root, bool ro_root, bool userns)
{
	sandbox_plan_add_in(p, root, SANDBOX_STEP_MKDIR, NULL, "/proc", 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_PROC, NULL, "/proc", 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_MKDIR, NULL, "/dev", 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_TMPFS, NULL, "/dev", 0755);
	static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
	for (size_t i = 0; i < sizeof(nodes) / sizeof(*nodes); i++) {
		char node[64];
		snprintf(node, sizeof(node), "/dev/%s", nodes[i]);
		sandbox_plan_add_in(p, root, SANDBOX_STEP_DEVNODE, node, node, 0);
	}
	sandbox_plan_add_in(p, root, SANDBOX_STEP_MKDIR, NULL, "/dev/pts", 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_DEVPTS, NULL, "/dev/pts", 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_SYMLINK, "pts/ptmx", "/dev/ptmx", 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_MKDIR, NULL, "/dev/shm", 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_TMPFS, NULL, "/dev/shm", 01777);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_SYMLINK, "/proc/self/fd", "/dev/fd", 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_SYMLINK, "/proc/self/fd/0", "/dev/stdin", 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_SYMLINK, "/proc/self/fd/1", "/dev/stdout", 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_SYMLINK, "/proc/self/fd/2", "/dev/stderr", 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_MKDIR, NULL, "/tmp", 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_TMPFS, NULL, "/tmp", 01777);
	sandbox_plan_private_lower(p, o, root, "/tmp", "/tmp", 01777, userns);
	if (ro_root && o->rootfs) {
		sandbox_plan_add_in(p, root, SANDBOX_STEP_TMPFS, NULL, "/root", 0700);
		sandbox_plan_private_lower(p, o, root, "/root", "/root", 0700, userns);
		char *vt = cbl_path_join(o->rootfs, "var/tmp");
		if (access(vt, F_OK) == 0) {
			sandbox_plan_add_in(p, root, SANDBOX_STEP_TMPFS, NULL, "/var/tmp", 01777);
			sandbox_plan_private_lower(p, o, root, "/var/tmp", "/var/tmp", 01777, userns);
		}
		free(vt);
	}
}

static void buf_truncate(cbl_buf *b, size_t n)
{
	if (b->ptr) {
		b->len = n;
		b->ptr[n] = '\0';
	}
}

/* A caller's target with the symlinks of its existing part resolved as
 * inside the view (an absolute link from the view's root), so that a mount
 * through /var/run -> /run lands on /run of the view, not on whatever the
 * link names from the init's (the host's) /.  A private directory of the
 * host view is empty inside: the walk stops there.  Caller frees. */
static char *resolve_in_view(const sandbox_opts *o, const char *target)
{
	const char *base = o->rootfs ? o->rootfs : "";
	cbl_buf done = CBL_BUF_INIT;
	char *rest = cbl_xstrdup(target), *p = rest;
	int links = 0;
	for (;;) {
		while (*p == '/')
			p++;
		size_t l = strcspn(p, "/");
		if (!l)
			break;
		if (l == 1 && p[0] == '.') {
			p += l;
			continue;
		}
		if (l == 2 && p[0] == '.' && p[1] == '.') {
			char *slash = done.len ? strrchr(done.ptr, '/') : NULL;
			buf_truncate(&done, slash ? (size_t)(slash - done.ptr) : 0);
			p += l;
			continue;
		}
		size_t mark = done.len;
		cbl_buf_putc(&done, '/');
		cbl_buf_append(&done, p, l);
		p += l;
		char *host = cbl_xasprintf("%s%s", base, done.ptr);
		struct stat st;
		char link[4096];
		ssize_t n = -1;
		int r = lstat(host, &st);
		if (r == 0 && S_ISLNK(st.st_mode) && links++ < 40)
			n = readlink(host, link, sizeof(link) - 1);
		free(host);
		if (n > 0) {
			link[n] = '\0';
			buf_truncate(&done, link[0] == '/' ? 0 : mark);
			char *again = cbl_xasprintf("%s/%s", link, p);
			free(rest);
			rest = p = again;
			continue;
		}
		if (r < 0 || !S_ISDIR(st.st_mode) || (!o->rootfs && sandbox_host_private(done.ptr))) {
			cbl_buf_puts(&done, p); /* the rest as given */
			break;
		}
	}
	free(rest);
	if (!done.len)
		cbl_buf_putc(&done, '/');
	return cbl_buf_detach(&done);
}

/* The directory a mount's target needs: the target itself, or for a bind of
 * a file its parent (the file is created by the bind). */
static void plan_mount_point(sandbox_plan *p, const char *root, const sandbox_mount *m, const char *target)
{
	struct stat st;
	bool file = (m->kind == SANDBOX_MOUNT_BIND || m->kind == SANDBOX_MOUNT_BIND_RO) &&
		    stat(m->source, &st) == 0 && !S_ISDIR(st.st_mode);
	if (!file) {
		sandbox_plan_add_in(p, root, SANDBOX_STEP_MKDIR, NULL, target, 0);
		return;
	}
	char *parent = cbl_xstrdup(target);
	char *slash = strrchr(parent, '/');
	slash[slash == parent ? 1 : 0] = '\0';
	sandbox_plan_add_in(p, root, SANDBOX_STEP_MKDIR, NULL, parent, 0);
	free(parent);
}

static void plan_mounts(sandbox_plan *p, const sandbox_opts *o, const char *root, bool userns)
{
	for (size_t i = 0; i < o->n_mounts; i++) {
		const sandbox_mount *m = &o->mounts[i];
		if (m->kind == SANDBOX_MOUNT_MASK) {
			if (!o->rootfs)
				sandbox_plan_mask(p, o, root, m->target);
			continue;
		}
		char *t = resolve_in_view(o, m->target);
		plan_mount_point(p, root, m, t);
		switch (m->kind) {
		case SANDBOX_MOUNT_BIND:
			sandbox_plan_add_in(p, root, SANDBOX_STEP_BIND, m->source, t, 0);
			break;
		case SANDBOX_MOUNT_BIND_RO:
			sandbox_plan_add_in(p, root, SANDBOX_STEP_BIND, m->source, t, 0);
			sandbox_plan_add_in(p, root, SANDBOX_STEP_REMOUNT_RO, NULL, t, 0);
			break;
		case SANDBOX_MOUNT_TMPFS:
			sandbox_plan_add_in(p, root, SANDBOX_STEP_TMPFS, NULL, t, m->mode ? m->mode : 0755);
			break;
		case SANDBOX_MOUNT_OVERLAY: {
			/* the directory is the read-only lower layer: the commands
			 * may delete and rewrite anything, it stays as it was, and
			 * it costs the same for 10 files or 100,000.  In a user
			 * namespace overlayfs cannot write trusted.* attributes:
			 * "userxattr" marks opaque directories with user.* ones */
			char name[64];
			snprintf(name, sizeof(name), "overlay%zu-upper", i);
			char *upper = cbl_path_join(o->scratch, name);
			snprintf(name, sizeof(name), "overlay%zu-work", i);
			char *work = cbl_path_join(o->scratch, name);
			sandbox_plan_add(p, SANDBOX_STEP_MKDIR, NULL, upper, 0);
			sandbox_plan_add(p, SANDBOX_STEP_MKDIR, NULL, work, 0);
			for (const char *const *h = m->hide; h && *h; h++) {
				sandbox_plan_add(p, SANDBOX_STEP_WHITEOUT, m->source, upper, 0);
				p->v[p->n - 1].src = cbl_xstrdup(*h);
			}
			char *opts = sandbox_overlay_opts2(m->lower_top, m->source, upper, work);
			if (userns) {
				char *u = cbl_xasprintf("%s,userxattr", opts);
				free(opts);
				opts = u;
			}
			sandbox_plan_add_in(p, root, SANDBOX_STEP_OVERLAY, opts, t, m->optional ? (int64_t)i + 1 : 0);
			free(opts);
			free(upper);
			free(work);
			break;
		}
		case SANDBOX_MOUNT_DIR:
		case SANDBOX_MOUNT_MASK:
			break;
		}
		free(t);
	}
}

/* What a container engine hides by default: kernel interfaces a build has
 * no use for, some of them ways out (core_pattern runs a program as the
 * host's root; sysrq-trigger; /proc/kcore the kernel's memory), read-only
 * or masked over whatever mounts are there by then. */
static const char *const readonly_paths[] = {
	"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus", "/proc/fs",
};
static const char *const masked_paths[] = {
	"/proc/kcore",       "/proc/keys",        "/proc/timer_list", "/proc/timer_stats",
	"/proc/latency_stats", "/proc/sched_debug", "/proc/acpi",       "/proc/asound",
	"/proc/scsi",        "/sys/firmware",     "/sys/devices/virtual/powercap",
};

static void plan_masks(sandbox_plan *p, const char *root)
{
	for (size_t i = 0; i < sizeof(readonly_paths) / sizeof(*readonly_paths); i++)
		sandbox_plan_add_in(p, root, SANDBOX_STEP_READONLY, NULL, readonly_paths[i], 0);
	for (size_t i = 0; i < sizeof(masked_paths) / sizeof(*masked_paths); i++)
		sandbox_plan_add_in(p, root, SANDBOX_STEP_MASK, NULL, masked_paths[i], 0);
}

/* the last steps: names, then into the new root, then the restrictions the
 * commands inherit (none but the affinity when privileged) */
static void plan_finish(sandbox_plan *p, const sandbox_opts *o, const char *root)
{
	sandbox_plan_add(p, SANDBOX_STEP_HOSTNAME, hostname_of(o), NULL, 0);
	if (o->network == SANDBOX_NET_NAT) {
		/* the host's resolver may be a loopback address (127.0.0.53)
		 * that the namespace cannot reach: names go to the NAT's DNS
		 * forwarder, which asks the host's resolver */
		char *host = NULL, *conf;
		size_t hlen = 0;
		cbl_read_file("/etc/resolv.conf", 1 << 16, &host, &hlen, NULL);
		conf = sandbox_nat_resolv_conf(host);
		char *file = cbl_path_join(o->scratch, "resolv.conf");
		sandbox_plan_add(p, SANDBOX_STEP_WRITE, conf, file, 0);
		sandbox_plan_add(p, SANDBOX_STEP_RESOLV, file, root, 0);
		free(file);
		free(conf);
		free(host);
	}
	if (o->network != SANDBOX_NET_HOST)
		sandbox_plan_add(p, SANDBOX_STEP_LOOPBACK, NULL, NULL, 0);
	/* the same open files limit as root or not (sandbox_nofile_target) */
	int64_t nofile = sandbox_nofile_target();
	if (nofile > 0)
		sandbox_plan_add(p, SANDBOX_STEP_NOFILE, NULL, NULL, nofile);
	sandbox_plan_add(p, SANDBOX_STEP_PIVOT, NULL, root, 0);
	sandbox_plan_add(p, SANDBOX_STEP_CHDIR, NULL, o->cwd ? o->cwd : "/", 0);
	if (o->cpus > 0)
		sandbox_plan_add(p, SANDBOX_STEP_CPUS, NULL, NULL, o->cpus);
	if (o->privileged)
		return;
	sandbox_plan_add(p, SANDBOX_STEP_CAPS, NULL, NULL, (int64_t)sandbox_caps_default());
	sandbox_plan_add(p, SANDBOX_STEP_NO_NEW_PRIVS, NULL, NULL, 0);
	sandbox_plan_add(p, SANDBOX_STEP_SECCOMP, NULL, NULL, 0);
}

int sandbox_plan_build(sandbox_plan *p, const sandbox_opts *o, uid_t uid, gid_t gid, cbl_error **err)
{
	sandbox_ids ids;
	memset(&ids, 0, sizeof(ids));
	ids.uid = uid;
	ids.gid = gid;
	snprintf(ids.missing, sizeof(ids.missing), "only the caller is mapped");
	return sandbox_plan_build_ids(p, o, &ids, err);
}

int sandbox_plan_build_ids(sandbox_plan *p, const sandbox_opts *o, const sandbox_ids *ids, cbl_error **err)
{
	bool userns = ids->uid != 0;
	int rc = check_opts(o, err);
	if (rc)
		return rc;
	/* unprivileged, an image's root is an overlay like root's (its files
	 * belong to the caller and its subordinate ids); the host's / is
	 * fuse-overlayfs where the caller may use it, else bound read-only,
	 * piece by piece */
	bool fuse = !o->rootfs && ids->fuse_overlayfs[0] && (userns || o->fuse_root);
	bool ro_root = userns && !fuse && (!o->rootfs || o->ro_root);
	if (fuse && o->root_lower && strchr(o->root_lower, ':'))
		return cbl_error_set(err, CBL_EINVAL, "sandbox: fuse-overlayfs cannot take the layer %s above the host's "
						      "/: its lowerdir option has no escape for ':'",
				     o->root_lower);
	sandbox_opts kept = *o;
	/* root_lower: also above an image's root in a user namespace */
	bool lower_userns = userns && o->rootfs && !ro_root && o->root_lower && o->root_lower[0] == '/';
	if (userns || fuse || ro_root || (o->root_upper && o->root_upper[0] != '/'))
		kept.root_upper = kept.root_lower = NULL; /* only the kernel's overlay as root */
	if (!kept.root_upper)
		kept.root_lower = lower_userns || (fuse && o->root_lower && o->root_lower[0] == '/') ? o->root_lower
												   : NULL;
	o = &kept;
	const char *layers = o->root_upper ? (o->root_upper_in ? o->root_upper_in : o->root_upper) : o->scratch;
	char *upper = cbl_path_join(layers, "upper");
	char *work = cbl_path_join(layers, "work");
	char *root = cbl_path_join(o->scratch, "root");
	plan_clone(p, o, ids);
	sandbox_plan_add(p, SANDBOX_STEP_PRIVATE, NULL, NULL, 0);
	sandbox_plan_add(p, SANDBOX_STEP_TMPFS, NULL, o->scratch, 0755);
	if (!o->root_upper) { /* else made by sandbox_start */
		sandbox_plan_add(p, SANDBOX_STEP_MKDIR, NULL, upper, 0);
		sandbox_plan_add(p, SANDBOX_STEP_MKDIR, NULL, work, 0);
	}
	sandbox_plan_add(p, SANDBOX_STEP_MKDIR, NULL, root, 0);
	if (o->keep_scratch)
		sandbox_plan_add(p, SANDBOX_STEP_HOLD_SCRATCH, NULL, o->scratch, 0);
	if (fuse)
		plan_root_fuse(p, o, ids, root, upper, work);
	else if (ro_root)
		plan_root_userns(p, o, root);
	else
		plan_root_overlay(p, o, root, upper, work, userns);
	if (!o->rootfs && !userns && !fuse)
		sandbox_plan_submounts(p, o, root);
	plan_system(p, o, root, ro_root, userns);
	/* the secret files covered, not replaced, where the root cannot
	 * replace them: read-only, or fuse-overlayfs, which runs as the user
	 * and cannot open them (/etc/shadow is not the user's to read) */
	if (!o->rootfs)
		sandbox_plan_host_private(p, o, root, ro_root || (fuse && userns), userns);
	plan_mounts(p, o, root, userns);
	if (!o->privileged)
		plan_masks(p, root);
	plan_finish(p, o, root);
	free(upper);
	free(work);
	free(root);
	return 0;
}

/* ---------------------------------------------------------------- as bytes */

/* "CBLP", the step count, then each step: kind (int32), num (int64), arg
 * and path as an int32 length (-1 = none) and their bytes; host order (the
 * init is the same program on the same machine) */
static const char plan_magic[4] = {'C', 'B', 'L', 'P'};

static void put_str(cbl_buf *b, const char *s)
{
	int32_t len = s ? (int32_t)strlen(s) : -1;
	cbl_buf_append(b, (const char *)&len, sizeof(len));
	if (s)
		cbl_buf_append(b, s, (size_t)len);
}

char *sandbox_plan_encode(const sandbox_plan *p, size_t *len)
{
	cbl_buf b = CBL_BUF_INIT;
	uint32_t n = (uint32_t)p->n;
	cbl_buf_append(&b, plan_magic, sizeof(plan_magic));
	cbl_buf_append(&b, (const char *)&n, sizeof(n));
	for (size_t i = 0; i < p->n; i++) {
		int32_t kind = (int32_t)p->v[i].kind;
		cbl_buf_append(&b, (const char *)&kind, sizeof(kind));
		cbl_buf_append(&b, (const char *)&p->v[i].num, sizeof(p->v[i].num));
		put_str(&b, p->v[i].arg);
		put_str(&b, p->v[i].path);
		put_str(&b, p->v[i].src);
	}
	*len = b.len;
	return cbl_buf_detach(&b);
}

typedef struct reader {
	const char *p, *end;
} reader;

static int take(reader *r, void *out, size_t n)
{
	if ((size_t)(r->end - r->p) < n)
		return -1;
	memcpy(out, r->p, n);
	r->p += n;
	return 0;
}

static int take_str(reader *r, char **out)
{
	int32_t len;
	*out = NULL;
	if (take(r, &len, sizeof(len)) < 0 || len < -1 || (len >= 0 && (size_t)(r->end - r->p) < (size_t)len))
		return -1;
	if (len >= 0) {
		if (memchr(r->p, '\0', (size_t)len))
			return -1;
		*out = cbl_xstrndup(r->p, (size_t)len);
		r->p += len;
	}
	return 0;
}

int sandbox_plan_decode(sandbox_plan *out, const char *buf, size_t len)
{
	reader r = {buf, buf + len};
	char magic[4];
	uint32_t n;
	if (take(&r, magic, sizeof(magic)) < 0 || memcmp(magic, plan_magic, sizeof(magic)) ||
	    take(&r, &n, sizeof(n)) < 0 || n > len)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		int32_t kind;
		int64_t num;
		char *arg = NULL, *path = NULL, *src = NULL;
		if (take(&r, &kind, sizeof(kind)) < 0 || kind < 0 || kind >= SANDBOX_STEP_KIND_COUNT ||
		    take(&r, &num, sizeof(num)) < 0 || take_str(&r, &arg) < 0 || take_str(&r, &path) < 0 ||
		    take_str(&r, &src) < 0) {
			free(arg);
			free(path);
			return -1;
		}
		CBL_GROW(out->v, out->n + 1, out->cap);
		out->v[out->n++] = (sandbox_step){(sandbox_step_kind)kind, arg, path, num, src};
	}
	return r.p == r.end ? 0 : -1;
}
