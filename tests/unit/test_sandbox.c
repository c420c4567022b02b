/* Unit tests for sandbox/: the plan for several option sets (root and
 * unprivileged, the host's / and an image's root, network none, read-only
 * binds, tmpfs, overlays, limits, invalid options, the confinement steps and
 * privileged), read off its step list without running it; the plan as bytes;
 * the capability and seccomp tables; then a real sandbox running a few
 * commands (confined, then privileged), when this machine allows
 * namespaces. */
#include "tests/unit/tap.h"
#include "sandbox/sandbox_internal.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH "/sbx-scratch"
#define ROOT SCRATCH "/root"

/* index of the first step of kind k on path (NULL: any), from start; -1 */
static long find_from(const sandbox_plan *p, size_t start, sandbox_step_kind k, const char *path)
{
	for (size_t i = start; i < p->n; i++)
		if (p->v[i].kind == k && (!path || (p->v[i].path && !strcmp(p->v[i].path, path))))
			return (long)i;
	return -1;
}

static long find(const sandbox_plan *p, sandbox_step_kind k, const char *path)
{
	return find_from(p, 0, k, path);
}

static size_t count(const sandbox_plan *p, sandbox_step_kind k)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n; i++)
		n += p->v[i].kind == k;
	return n;
}

static bool has_ns(const sandbox_plan *p, sandbox_ns ns)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].kind == SANDBOX_STEP_NAMESPACE && p->v[i].num == ns)
			return true;
	return false;
}

/* steps of the clone, then of the parent, then of the init */
static bool sides_in_order(const sandbox_plan *p)
{
	for (size_t i = 1; i < p->n; i++)
		if (sandbox_step_side(p->v[i].kind) < sandbox_step_side(p->v[i - 1].kind))
			return false;
	return true;
}

/* /proc/sys & co read-only and /proc/kcore & co masked, after every mount
 * (over whatever is there) and before the pivot */
static void check_masks(const sandbox_plan *p, const char *root)
{
	char path[256];
	long last_mount = -1;
	for (size_t i = 0; i < p->n; i++)
		if ((p->v[i].kind == SANDBOX_STEP_BIND || p->v[i].kind == SANDBOX_STEP_TMPFS ||
		     p->v[i].kind == SANDBOX_STEP_OVERLAY || p->v[i].kind == SANDBOX_STEP_PROC))
			last_mount = (long)i;
	long pivot = find(p, SANDBOX_STEP_PIVOT, NULL);
	const char *ro[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"};
	bool all = true;
	for (size_t i = 0; i < sizeof(ro) / sizeof(*ro); i++) {
		snprintf(path, sizeof(path), "%s%s", root, ro[i]);
		long k = find(p, SANDBOX_STEP_READONLY, path);
		all &= k > last_mount && k < pivot;
	}
	ok(all, "/proc/sys, sysrq-trigger, irq, bus read-only, after the mounts, before the pivot");
	const char *masked[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"};
	all = true;
	for (size_t i = 0; i < sizeof(masked) / sizeof(*masked); i++) {
		snprintf(path, sizeof(path), "%s%s", root, masked[i]);
		long k = find(p, SANDBOX_STEP_MASK, path);
		all &= k > last_mount && k < pivot;
	}
	ok(all, "/proc/kcore, keys, timer_list and /sys/firmware masked");
}

static void test_tables(void)
{
	is_int(sandbox_ns_flag(SANDBOX_NS_MOUNT), CLONE_NEWNS, "mount namespace flag");
	is_int(sandbox_ns_flag(SANDBOX_NS_USER), CLONE_NEWUSER, "user namespace flag");
	is_int(sandbox_ns_flag(SANDBOX_NS_NET), CLONE_NEWNET, "network namespace flag");
	is_str(sandbox_ns_name(SANDBOX_NS_PID), "pid", "namespace names");
	bool named = true;
	for (int k = 0; k < SANDBOX_STEP_KIND_COUNT; k++)
		named &= sandbox_step_name((sandbox_step_kind)k) != NULL &&
			 strcmp(sandbox_step_name((sandbox_step_kind)k), "?") != 0;
	ok(named, "every step kind has a name in the table");
	is_int(sandbox_step_side(SANDBOX_STEP_NAMESPACE), SANDBOX_AT_CLONE, "namespaces: at the clone");
	is_int(sandbox_step_side(SANDBOX_STEP_UID_MAP), SANDBOX_IN_PARENT, "id maps: in the parent");
	is_int(sandbox_step_side(SANDBOX_STEP_PIDS_LIMIT), SANDBOX_IN_PARENT, "limits: in the parent");
	is_int(sandbox_step_side(SANDBOX_STEP_BIND), SANDBOX_IN_INIT, "mounts: in the init");
	ok(sandbox_step_nodev(SANDBOX_STEP_TMPFS) && sandbox_step_nodev(SANDBOX_STEP_OVERLAY) &&
	   sandbox_step_nodev(SANDBOX_STEP_BIND) && sandbox_step_nodev(SANDBOX_STEP_PROC) &&
	   sandbox_step_nodev(SANDBOX_STEP_READONLY), "every mount kind is nodev ...");
	ok(!sandbox_step_nodev(SANDBOX_STEP_DEVNODE) && !sandbox_step_nodev(SANDBOX_STEP_DEVPTS),
	   "... but the minimal /dev's nodes and devpts");
	is_int(sandbox_step_side(SANDBOX_STEP_CAPS), SANDBOX_IN_INIT, "capabilities: in the init");
	char *o = sandbox_overlay_opts("/a,b:c\\d", "/u", "/w");
	is_str(o, "lowerdir=/a\\,b\\:c\\\\d,upperdir=/u,workdir=/w", "overlay options escape , : and \\");
	free(o);
}

static void test_plan_root_host(void)
{
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	o.network = SANDBOX_NET_HOST; /* the default network: test_net_* at the end */
	sandbox_plan p = SANDBOX_PLAN_INIT;
	cbl_error *e = NULL;
	is_int(sandbox_plan_build(&p, &o, 0, 0, &e), 0, "root, host's /: planned");
	ok(has_ns(&p, SANDBOX_NS_MOUNT) && has_ns(&p, SANDBOX_NS_PID) && has_ns(&p, SANDBOX_NS_IPC) &&
	   has_ns(&p, SANDBOX_NS_UTS), "mount, pid, ipc and uts namespaces");
	ok(!has_ns(&p, SANDBOX_NS_USER) && !has_ns(&p, SANDBOX_NS_NET), "no user or network namespace as root");
	is_int(sandbox_plan_clone_flags(&p), CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS,
	       "clone flags from the table");
	ok(count(&p, SANDBOX_STEP_UID_MAP) == 0 && count(&p, SANDBOX_STEP_GID_MAP) == 0, "no id maps as root");
	ok(count(&p, SANDBOX_STEP_MEMORY_LIMIT) == 0 && count(&p, SANDBOX_STEP_CPUS) == 0, "no limits asked, none");
	ok(sides_in_order(&p), "clone steps, then parent steps, then init steps");
	long priv = find(&p, SANDBOX_STEP_PRIVATE, NULL);
	long tmp = find(&p, SANDBOX_STEP_TMPFS, SCRATCH);
	ok(priv >= 0 && tmp > priv, "/ private, then the private tmpfs on scratch");
	long ov = find(&p, SANDBOX_STEP_OVERLAY, ROOT);
	ok(ov > tmp, "the root is an overlay");
	is_str(ov >= 0 ? p.v[ov].arg : NULL,
	       "lowerdir=/,upperdir=" SCRATCH "/upper,workdir=" SCRATCH "/work", "host's / is its lower layer");
	ok(find(&p, SANDBOX_STEP_WRITE, ROOT "/etc/resolv.conf") < 0, "the host's own resolv.conf is kept");
	long hosts = find(&p, SANDBOX_STEP_HOSTS, ROOT "/etc/hosts");
	is_str(hosts >= 0 ? p.v[hosts].arg : NULL, "127.0.1.1\tsandbox\n", "the default hostname resolves");
	ok(find(&p, SANDBOX_STEP_PROC, ROOT "/proc") > ov, "fresh /proc");
	ok(find(&p, SANDBOX_STEP_DEVNODE, ROOT "/dev/null") > find(&p, SANDBOX_STEP_TMPFS, ROOT "/dev"),
	   "/dev/null bound into a /dev tmpfs");
	is_int(count(&p, SANDBOX_STEP_DEVNODE), 6, "six device nodes");
	long t = find(&p, SANDBOX_STEP_TMPFS, ROOT "/tmp");
	ok(t >= 0 && p.v[t].num == 01777, "/tmp: a sticky tmpfs");
	long r = find(&p, SANDBOX_STEP_TMPFS, ROOT "/root");
	ok(r > t && p.v[r].num == 0700, "the host's /root: a private tmpfs");
	if (access("/home", F_OK) == 0)
		ok(find(&p, SANDBOX_STEP_TMPFS, ROOT "/home") > t, "the host's /home: a private tmpfs");
	if (access("/etc/shadow", F_OK) == 0) {
		long sh = find(&p, SANDBOX_STEP_WRITE, ROOT "/etc/shadow");
		ok(sh > ov && p.v[sh].arg && !*p.v[sh].arg, "/etc/shadow: replaced by an empty file in the overlay");
	}
	ok(count(&p, SANDBOX_STEP_LOOPBACK) == 0, "no loopback step without network none");
	long hn = find(&p, SANDBOX_STEP_HOSTNAME, NULL);
	is_str(hn >= 0 ? p.v[hn].arg : NULL, "sandbox", "default hostname");
	long pv = find(&p, SANDBOX_STEP_PIVOT, ROOT);
	long cd = find(&p, SANDBOX_STEP_CHDIR, "/");
	ok(pv > hn && cd == pv + 1, "pivot into the root, then chdir / (the default)");
	ok(p.n >= 3 && p.v[p.n - 3].kind == SANDBOX_STEP_CAPS && p.v[p.n - 2].kind == SANDBOX_STEP_NO_NEW_PRIVS &&
	   p.v[p.n - 1].kind == SANDBOX_STEP_SECCOMP, "capabilities, no_new_privs and seccomp come last");
	is_int(p.v[p.n - 3].num, 0xa80425fb, "the default capability set is kept");
	check_masks(&p, ROOT);
	char d[256];
	is_str(sandbox_step_describe(&p.v[ov], d, sizeof(d)), "mount overlay on " ROOT, "a step describes itself");
	sandbox_plan_release(&p);
	ok(p.v == NULL && p.n == 0, "released plan is empty");
}

/* root_upper: the root's upper layer in the caller's directory, the mask
 * hiding the host's /root instead of a tmpfs, the kept layer on top; an
 * image keeps its /root; unprivileged, ignored */
static void test_plan_root_upper(void)
{
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	o.network = SANDBOX_NET_HOST;
	o.root_upper = "/keep";
	sandbox_plan p = SANDBOX_PLAN_INIT;
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), 0, "root_upper: planned");
	long ov = find(&p, SANDBOX_STEP_OVERLAY, ROOT);
	is_str(ov >= 0 ? p.v[ov].arg : NULL, "lowerdir=/keep/mask:/,upperdir=/keep/upper,workdir=/keep/work,redirect_dir=off,metacopy=off",
	       "root_upper: the upper layer and work directory the caller reads, the mask above /");
	struct stat rst, st;
	if (stat("/", &rst) == 0 && lstat("/root", &st) == 0 && S_ISDIR(st.st_mode) && st.st_dev == rst.st_dev)
		ok(find(&p, SANDBOX_STEP_TMPFS, ROOT "/root") < 0, "root_upper: /root hidden by the mask, no tmpfs");
	ok(find(&p, SANDBOX_STEP_TMPFS, ROOT "/tmp") >= 0, "root_upper: /tmp still a private tmpfs");
	sandbox_plan_release(&p);
	o.root_upper_in = "/store/tmp/claimed";
	sandbox_plan_build(&p, &o, 0, 0, NULL);
	ov = find(&p, SANDBOX_STEP_OVERLAY, ROOT);
	is_str(ov >= 0 ? p.v[ov].arg : NULL,
	       "lowerdir=/keep/mask:/,upperdir=/store/tmp/claimed/upper,workdir=/store/tmp/claimed/work,"
	       "redirect_dir=off,metacopy=off",
	       "root_upper_in: the upper layer and work directory there, the mask still in root_upper");
	sandbox_plan_release(&p);
	o.root_upper_in = NULL;
	o.root_lower = "/ckpt/root-layer";
	sandbox_plan_build(&p, &o, 0, 0, NULL);
	ov = find(&p, SANDBOX_STEP_OVERLAY, ROOT);
	is_str(ov >= 0 ? p.v[ov].arg : NULL,
	       "lowerdir=/ckpt/root-layer:/keep/mask:/,upperdir=/keep/upper,workdir=/keep/work,redirect_dir=off,"
	       "metacopy=off",
	       "root_lower: the kept layer on top");
	sandbox_plan_release(&p);
	o.rootfs = "/images/x/rootfs";
	sandbox_plan_build(&p, &o, 0, 0, NULL);
	ov = find(&p, SANDBOX_STEP_OVERLAY, ROOT);
	is_str(ov >= 0 ? p.v[ov].arg : NULL,
	       "lowerdir=/ckpt/root-layer:/images/x/rootfs,upperdir=/keep/upper,workdir=/keep/work,"
	       "redirect_dir=off,metacopy=off",
	       "an image: no mask, its own /root shows");
	sandbox_plan_release(&p);
	sandbox_plan_build(&p, &o, 1000, 1000, NULL);
	ov = find(&p, SANDBOX_STEP_OVERLAY, ROOT);
	ok(ov < 0 || !strstr(p.v[ov].arg, "/keep"), "unprivileged: root_upper ignored");
	o.rootfs = NULL;
	sandbox_plan_release(&p);
	sandbox_plan_build(&p, &o, 1000, 1000, NULL);
	ok(find(&p, SANDBOX_STEP_TMPFS, ROOT "/root") >= 0 || lstat("/root", &st) < 0,
	   "unprivileged: the host's /root still a private tmpfs");
	sandbox_plan_release(&p);
}

/* a normal user's checkpoints: keep_scratch holds the private tmpfs before
 * the pivot, lower_top goes above a source overlay's directory, root_lower
 * above an image's root in a user namespace (never the host's) */
static void test_plan_checkpoint_layers(void)
{
	sandbox_mount m[] = {{SANDBOX_MOUNT_OVERLAY, "/src", "/codebuild/src", 0, true, NULL, "/ckpt/layer"}};
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	o.network = SANDBOX_NET_HOST;
	o.mounts = m;
	o.n_mounts = 1;
	o.keep_scratch = true;
	sandbox_plan p = SANDBOX_PLAN_INIT;
	is_int(sandbox_plan_build(&p, &o, 1000, 1000, NULL), 0, "checkpoint layers: planned");
	long hold = find(&p, SANDBOX_STEP_HOLD_SCRATCH, SCRATCH), tm = find(&p, SANDBOX_STEP_TMPFS, SCRATCH);
	ok(hold > tm && tm >= 0 && hold < find(&p, SANDBOX_STEP_PIVOT, ROOT), "keep_scratch: held after its mount");
	long ov = find(&p, SANDBOX_STEP_OVERLAY, ROOT "/codebuild/src");
	is_str(ov >= 0 ? p.v[ov].arg : NULL,
	       "lowerdir=/ckpt/layer:/src,upperdir=" SCRATCH "/overlay0-upper,workdir=" SCRATCH "/overlay0-work,userxattr",
	       "lower_top: the kept layer above the source, in the user namespace");
	sandbox_plan_release(&p);
	o.keep_scratch = false;
	o.root_lower = "/ckpt/root-layer";
	sandbox_plan_build(&p, &o, 1000, 1000, NULL);
	ok(find(&p, SANDBOX_STEP_HOLD_SCRATCH, SCRATCH) < 0, "keep_scratch: nothing held unless asked");
	ov = find(&p, SANDBOX_STEP_OVERLAY, ROOT);
	ok(ov < 0 || !strstr(p.v[ov].arg, "/ckpt/root-layer"), "root_lower: never above the host's / unprivileged");
	sandbox_plan_release(&p);
	o.rootfs = "/images/x/rootfs";
	sandbox_plan_build(&p, &o, 1000, 1000, NULL);
	ov = find(&p, SANDBOX_STEP_OVERLAY, ROOT);
	is_str(ov >= 0 ? p.v[ov].arg : NULL,
	       "lowerdir=/ckpt/root-layer:/images/x/rootfs,upperdir=" SCRATCH "/upper,workdir=" SCRATCH "/work,userxattr",
	       "root_lower: above an image's root in a user namespace");
	sandbox_plan_release(&p);
}

/* private_lower: a kept copy as the lower layer of a private directory's
 * tmpfs (upper and work in it, the directory's mode on the upper), absent
 * subdirectories a plain tmpfs; userxattr in a user namespace */
static void test_plan_private_lower(void)
{
	char t[] = "/var/tmp/cbl-sbx-pl-XXXXXX";
	char *base = mkdtemp(t);
	char *tmpd = cbl_path_join(base, "tmp"), *vt = cbl_path_join(base, "var-tmp");
	mkdir(tmpd, 0755);
	mkdir(vt, 0755);
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	o.network = SANDBOX_NET_HOST;
	o.private_lower = base;
	sandbox_plan p = SANDBOX_PLAN_INIT;
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), 0, "private_lower: planned");
	long tm = find(&p, SANDBOX_STEP_TMPFS, ROOT "/tmp"), ov = find(&p, SANDBOX_STEP_OVERLAY, ROOT "/tmp");
	char *want = cbl_xasprintf("lowerdir=%s,upperdir=" ROOT "/tmp/.cbl-upper,workdir=" ROOT "/tmp/.cbl-work", tmpd);
	is_str(ov >= 0 ? p.v[ov].arg : NULL, want, "private_lower: /tmp's kept copy below its tmpfs");
	free(want);
	ok(tm >= 0 && ov > tm, "private_lower: the overlay after the tmpfs it keeps its layers in");
	long mk = find(&p, SANDBOX_STEP_MKDIR, ROOT "/tmp/.cbl-upper");
	ok(mk > tm && mk < ov && p.v[mk].num == 01777, "private_lower: the upper layer gets /tmp's mode");
	ok(find(&p, SANDBOX_STEP_OVERLAY, ROOT "/home") < 0, "private_lower: no home/ kept, /home a plain tmpfs");
	struct stat st;
	if (lstat("/var/tmp", &st) == 0 && S_ISDIR(st.st_mode))
		ok(find(&p, SANDBOX_STEP_OVERLAY, ROOT "/var/tmp") >= 0, "private_lower: var-tmp/ for /var/tmp");
	sandbox_plan_release(&p);
	sandbox_plan_build(&p, &o, 1000, 1000, NULL);
	ov = find(&p, SANDBOX_STEP_OVERLAY, ROOT "/tmp");
	ok(ov >= 0 && strstr(p.v[ov].arg, ",userxattr"), "private_lower: userxattr in a user namespace");
	sandbox_plan_release(&p);
	char *cu = cbl_path_join(base, "home/codebuild-user");
	cbl_mkdir_p(cu, 0750, NULL);
	sandbox_plan_build(&p, &o, 0, 0, NULL);
	if (lstat("/home", &st) == 0 && S_ISDIR(st.st_mode) && find(&p, SANDBOX_STEP_MKDIR, ROOT "/home/codebuild-user") >= 0)
		ok(find(&p, SANDBOX_STEP_TMPFS, ROOT "/home/codebuild-user") < 0 &&
		   find(&p, SANDBOX_STEP_OVERLAY, ROOT "/home") >= 0,
		   "private_lower: a kept home of codebuild-user, not a fresh tmpfs of its own");
	sandbox_plan_release(&p);
	free(cu);
	o.rootfs = "/images/x/rootfs";
	sandbox_plan_build(&p, &o, 0, 0, NULL);
	ok(find(&p, SANDBOX_STEP_OVERLAY, ROOT "/tmp") >= 0, "private_lower: an image's /tmp too");
	sandbox_plan_release(&p);
	o.rootfs = NULL;
	o.private_lower = "rel";
	cbl_error *e = NULL;
	is_int(sandbox_plan_build(&p, &o, 0, 0, &e), CBL_EINVAL, "private_lower: a relative path refused");
	cbl_error_free(e);
	sandbox_plan_release(&p);
	size_t n = 0;
	const sandbox_private_dir *d = sandbox_private_dirs(&n);
	bool root_kept = false;
	for (size_t i = 0; i < n; i++)
		root_kept |= !strcmp(d[i].path, "/root");
	/* /root: a private tmpfs where a normal user's / is read-only */
	ok(n == 8 && !strcmp(d[0].name, "tmp") && root_kept, "private_lower: the names, /root one of them");
	cbl_rm_rf(base, NULL);
	free(tmpd);
	free(vt);
}

static void test_plan_root_image(void)
{
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	o.rootfs = "/images/x/rootfs";
	o.hostname = "box";
	o.cwd = "/data";
	o.cpus = 2;
	o.network = SANDBOX_NET_HOST; /* the resolver behind the NAT: test_net_* */
	sandbox_plan p = SANDBOX_PLAN_INIT;
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), 0, "root, image rootfs: planned");
	long ov = find(&p, SANDBOX_STEP_OVERLAY, ROOT);
	is_str(ov >= 0 ? p.v[ov].arg : NULL,
	       "lowerdir=/images/x/rootfs,upperdir=" SCRATCH "/upper,workdir=" SCRATCH "/work",
	       "the image is the lower layer");
	if (access("/etc/resolv.conf", R_OK) == 0)
		ok(find(&p, SANDBOX_STEP_WRITE, ROOT "/etc/resolv.conf") > ov, "the host's resolv.conf is written in");
	else
		ok(find(&p, SANDBOX_STEP_WRITE, NULL) < 0, "no host resolv.conf, nothing written");
	long hosts = find(&p, SANDBOX_STEP_HOSTS, ROOT "/etc/hosts");
	is_str(hosts >= 0 ? p.v[hosts].arg : NULL, "127.0.1.1\tbox\n", "the hostname resolves");
	ok(find(&p, SANDBOX_STEP_CHDIR, "/data") > find(&p, SANDBOX_STEP_PIVOT, NULL), "chdir cwd after pivot");
	long c = find(&p, SANDBOX_STEP_CPUS, NULL);
	ok(c > 0 && p.v[c].num == 2, "cpus: an affinity step");
	sandbox_plan_release(&p);
}

/* an image root: usr/ etc/ proc/ codebuild/ lib -> usr/lib, file */
static char *make_rootfs(void)
{
	char tmpl[] = "/tmp/cbl-sbx-rootfs-XXXXXX";
	char *dir = cbl_xstrdup(mkdtemp(tmpl));
	const char *dirs[] = {"usr", "usr/lib", "etc", "proc", "data"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
		char *p = cbl_path_join(dir, dirs[i]);
		mkdir(p, 0755);
		free(p);
	}
	char *p = cbl_path_join(dir, "lib");
	ok(symlink("usr/lib", p) == 0, "fixture: symlink");
	free(p);
	p = cbl_path_join(dir, "file");
	cbl_write_file_atomic(p, "x", 1, 0644, false, NULL);
	free(p);
	return dir;
}

static void test_plan_unprivileged(void)
{
	char *rootfs = make_rootfs();
	sandbox_mount m[] = {{SANDBOX_MOUNT_BIND, "/host/src", "/data/src", 0}};
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	o.rootfs = rootfs;
	o.mounts = m;
	o.n_mounts = 1;
	o.ro_root = true; /* the read-only root (an overlay: test_plan_ids) */
	sandbox_plan p = SANDBOX_PLAN_INIT;
	is_int(sandbox_plan_build(&p, &o, 1000, 1001, NULL), 0, "unprivileged, image rootfs: planned");
	ok(has_ns(&p, SANDBOX_NS_USER), "a user namespace");
	ok(sandbox_plan_clone_flags(&p) & CLONE_NEWUSER, "CLONE_NEWUSER in the clone flags");
	long um = find(&p, SANDBOX_STEP_UID_MAP, NULL), gm = find(&p, SANDBOX_STEP_GID_MAP, NULL);
	ok(um >= 0 && p.v[um].num == 1000 && gm >= 0 && p.v[gm].num == 1001, "uid and gid maps of the caller");
	ok(sides_in_order(&p), "clone steps, then parent steps, then init steps");
	ok(count(&p, SANDBOX_STEP_OVERLAY) == 0, "no overlay unprivileged");
	long root = find(&p, SANDBOX_STEP_TMPFS, ROOT);
	ok(root >= 0, "the root is a tmpfs");
	char *host = cbl_path_join(rootfs, "usr");
	long b = find(&p, SANDBOX_STEP_BIND, ROOT "/usr");
	is_str(b >= 0 ? p.v[b].arg : NULL, host, "the image's /usr bound");
	ok(b > 0 && b + 1 < (long)p.n && p.v[b + 1].kind == SANDBOX_STEP_REMOUNT_RO &&
	   !strcmp(p.v[b + 1].path, ROOT "/usr"), "then remounted read-only");
	free(host);
	long l = find(&p, SANDBOX_STEP_SYMLINK, ROOT "/lib");
	is_str(l >= 0 ? p.v[l].arg : NULL, "usr/lib", "top-level symlinks copied");
	ok(find(&p, SANDBOX_STEP_BIND, ROOT "/proc") < 0, "the image's /proc not carried over");
	ok(find(&p, SANDBOX_STEP_BIND, ROOT "/file") < 0 && find(&p, SANDBOX_STEP_MKDIR, ROOT "/file") < 0,
	   "top-level files ignored");
	ok(find(&p, SANDBOX_STEP_BIND, ROOT "/data") < 0, "a mount target's top-level directory not carried over");
	long sys = find(&p, SANDBOX_STEP_BIND, ROOT "/sys");
	ok(sys >= 0 && p.v[sys + 1].kind == SANDBOX_STEP_REMOUNT_RO, "/sys bound read-only");
	long r = find(&p, SANDBOX_STEP_TMPFS, ROOT "/root");
	ok(r >= 0 && p.v[r].num == 0700, "a private /root");
	long src = find(&p, SANDBOX_STEP_BIND, ROOT "/data/src");
	ok(src > r && find(&p, SANDBOX_STEP_MKDIR, ROOT "/data/src") == src - 1, "the caller's bind, after the system");
	ok(find(&p, SANDBOX_STEP_HOSTS, NULL) < 0, "no /etc/hosts edit on a read-only /etc");
	ok(find(&p, SANDBOX_STEP_CAPS, NULL) >= 0 && find(&p, SANDBOX_STEP_SECCOMP, NULL) >= 0 &&
	   find(&p, SANDBOX_STEP_NO_NEW_PRIVS, NULL) >= 0, "the same confinement in a user namespace");
	check_masks(&p, ROOT);
	sandbox_plan_release(&p);

	/* an overlay of the caller's own directory: in the user namespace,
	 * with user.* attributes for whiteouts and opaque directories */
	sandbox_mount ov[] = {{SANDBOX_MOUNT_OVERLAY, "/host/src", "/src", 0, true},
			      {SANDBOX_MOUNT_OVERLAY, "/host/other", "/other", 0}};
	o.mounts = ov;
	o.n_mounts = 2;
	is_int(sandbox_plan_build(&p, &o, 1000, 1000, NULL), 0, "unprivileged overlays: planned");
	long ovs = find(&p, SANDBOX_STEP_OVERLAY, ROOT "/src");
	is_str(ovs >= 0 ? p.v[ovs].arg : NULL,
	       "lowerdir=/host/src,upperdir=" SCRATCH "/overlay0-upper,workdir=" SCRATCH "/overlay0-work,userxattr",
	       "an overlay in the user namespace: userxattr, upper in the private tmpfs");
	ok(ovs >= 0 && p.v[ovs].num == 1, "optional: the step names the caller's mount (1 + index)");
	long ovo = find(&p, SANDBOX_STEP_OVERLAY, ROOT "/other");
	ok(ovo > ovs && p.v[ovo].num == 0, "not optional: a failure fails the start");
	sandbox_plan_release(&p);
	cbl_rm_rf(rootfs, NULL);
	free(rootfs);
}

static void test_plan_network_none(void)
{
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	o.network = SANDBOX_NET_NONE;
	sandbox_plan p = SANDBOX_PLAN_INIT;
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), 0, "network none: planned");
	ok(has_ns(&p, SANDBOX_NS_NET) && (sandbox_plan_clone_flags(&p) & CLONE_NEWNET), "a network namespace");
	long lo = find(&p, SANDBOX_STEP_LOOPBACK, NULL);
	ok(lo >= 0 && lo < find(&p, SANDBOX_STEP_PIVOT, NULL), "loopback brought up before the pivot");
	sandbox_plan_release(&p);
}

static void test_plan_mounts(void)
{
	sandbox_mount m[] = {
		{SANDBOX_MOUNT_TMPFS, NULL, "/out", 0},
		{SANDBOX_MOUNT_BIND_RO, "/host/data", "/out/data", 0},
		{SANDBOX_MOUNT_BIND, "/host/rw", "/out/rw", 0},
		{SANDBOX_MOUNT_OVERLAY, "/host/tree", "/out/tree", 0},
		{SANDBOX_MOUNT_TMPFS, NULL, "/cache", 0700},
		{SANDBOX_MOUNT_DIR, NULL, "/made"},
	};
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	o.mounts = m;
	o.n_mounts = sizeof(m) / sizeof(*m);
	sandbox_plan p = SANDBOX_PLAN_INIT;
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), 0, "mounts: planned");
	long t = find(&p, SANDBOX_STEP_TMPFS, ROOT "/out");
	ok(t > find(&p, SANDBOX_STEP_TMPFS, ROOT "/tmp"), "the caller's mounts follow the system ones");
	ok(t >= 0 && p.v[t].num == 0755 && p.v[t - 1].kind == SANDBOX_STEP_MKDIR, "tmpfs: 0755 by default, mkdir first");
	long ro = find(&p, SANDBOX_STEP_BIND, ROOT "/out/data");
	ok(ro > t && !strcmp(p.v[ro].arg, "/host/data"), "read-only bind: a bind");
	ok(find(&p, SANDBOX_STEP_REMOUNT_RO, ROOT "/out/data") == ro + 1, "then a read-only remount");
	long rw = find(&p, SANDBOX_STEP_BIND, ROOT "/out/rw");
	ok(rw > ro && find(&p, SANDBOX_STEP_REMOUNT_RO, ROOT "/out/rw") < 0, "read-write bind: no remount");
	long ov = find(&p, SANDBOX_STEP_OVERLAY, ROOT "/out/tree");
	is_str(ov >= 0 ? p.v[ov].arg : NULL,
	       "lowerdir=/host/tree,upperdir=" SCRATCH "/overlay3-upper,workdir=" SCRATCH "/overlay3-work",
	       "overlay: upper and work in the private tmpfs (root: trusted.* attributes)");
	ok(ov > rw && find(&p, SANDBOX_STEP_MKDIR, SCRATCH "/overlay3-upper") > rw, "its layers created first");
	long c = find(&p, SANDBOX_STEP_TMPFS, ROOT "/cache");
	ok(c > ov && p.v[c].num == 0700, "tmpfs with a mode");
	long md = find(&p, SANDBOX_STEP_MKDIR, ROOT "/made");
	ok(md > c && p.v[md + 1].kind == SANDBOX_STEP_READONLY, "dir: only a mkdir, and the mounts are over "
								   "(the masks follow)");
	sandbox_plan_release(&p);
}

/* the host view's private directories, masks and file binds, as root and not */
static void test_plan_host_view(void)
{
	sandbox_mount m[] = {
		{SANDBOX_MOUNT_MASK, NULL, "/usr/share", 0},
		{SANDBOX_MOUNT_MASK, NULL, "/etc/passwd", 0},
		{SANDBOX_MOUNT_MASK, NULL, "/tmp", 0},
		{SANDBOX_MOUNT_MASK, NULL, "/no/such/cbl-path", 0},
		{SANDBOX_MOUNT_BIND_RO, "/etc/passwd", "/x/y/passwd", 0},
		{SANDBOX_MOUNT_BIND, "/usr/bin", "/root/bin", 0},
	};
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	o.mounts = m;
	o.n_mounts = sizeof(m) / sizeof(*m);
	sandbox_plan p = SANDBOX_PLAN_INIT;
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), 0, "host view with masks: planned");
	long md = find(&p, SANDBOX_STEP_TMPFS, ROOT "/usr/share");
	struct stat st;
	stat("/usr/share", &st);
	ok(md > find(&p, SANDBOX_STEP_TMPFS, ROOT "/root") && p.v[md].num == (st.st_mode & 07777),
	   "a masked directory: an empty tmpfs of its mode, after the private directories");
	long mf = find(&p, SANDBOX_STEP_BIND, ROOT "/etc/passwd");
	is_str(mf >= 0 ? p.v[mf].arg : NULL, SCRATCH "/mask-file", "a masked file: the empty file bound over it");
	ok(mf > 0 && p.v[mf + 1].kind == SANDBOX_STEP_REMOUNT_RO, "read-only");
	long ef = find(&p, SANDBOX_STEP_WRITE, SCRATCH "/mask-file");
	ok(ef >= 0 && ef < mf && p.v[ef].arg && !*p.v[ef].arg, "the empty file made in the scratch first");
	size_t tmpfs_tmp = 0;
	for (size_t i = 0; i < p.n; i++)
		tmpfs_tmp += p.v[i].kind == SANDBOX_STEP_TMPFS && !strcmp(p.v[i].path, ROOT "/tmp");
	is_int((int)tmpfs_tmp, 1, "a mask under a private directory: nothing more");
	ok(find(&p, SANDBOX_STEP_MKDIR, ROOT "/no/such/cbl-path") < 0, "a missing mask: nothing");
	long fb = find(&p, SANDBOX_STEP_BIND, ROOT "/x/y/passwd");
	ok(fb > 0 && find(&p, SANDBOX_STEP_MKDIR, ROOT "/x/y") == fb - 1 &&
	   find(&p, SANDBOX_STEP_MKDIR, ROOT "/x/y/passwd") < 0,
	   "a bind of a file: its parent directory made, not the target");
	ok(find(&p, SANDBOX_STEP_BIND, ROOT "/root/bin") > find(&p, SANDBOX_STEP_TMPFS, ROOT "/root"),
	   "a caller's bind into a private directory comes after its tmpfs");
	sandbox_plan_release(&p);

	/* unprivileged: private directories not carried, masks bound */
	is_int(sandbox_plan_build(&p, &o, 1000, 1000, NULL), 0, "unprivileged host view: planned");
	if (access("/home", F_OK) == 0) {
		ok(find(&p, SANDBOX_STEP_BIND, ROOT "/home") < 0, "/home not carried over");
		ok(find(&p, SANDBOX_STEP_TMPFS, ROOT "/home") > 0, "but a private tmpfs");
	}
	ok(find(&p, SANDBOX_STEP_BIND, ROOT "/usr") > 0, "/usr carried over (a mask under it does not change that)");
	ok(find(&p, SANDBOX_STEP_BIND, ROOT "/etc") > 0, "/etc carried over (a file bound into it exists there)");
	if (access("/etc/shadow", F_OK) == 0) {
		long sh = find(&p, SANDBOX_STEP_BIND, ROOT "/etc/shadow");
		is_str(sh >= 0 ? p.v[sh].arg : NULL, SCRATCH "/mask-file", "/etc/shadow: covered (read-only view)");
	}
	ok(find(&p, SANDBOX_STEP_SUBMOUNT, NULL) < 0, "no submount steps: the binds are recursive");
	sandbox_plan_release(&p);

	/* an image: none of it */
	char *rootfs = make_rootfs();
	o.rootfs = rootfs;
	o.n_mounts = 2;
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), 0, "image with masks: planned");
	ok(find(&p, SANDBOX_STEP_TMPFS, ROOT "/usr/share") < 0 && find(&p, SANDBOX_STEP_BIND, ROOT "/etc/passwd") < 0,
	   "masks are for the host's view only");
	ok(find(&p, SANDBOX_STEP_TMPFS, ROOT "/root") < 0 && find(&p, SANDBOX_STEP_WRITE, ROOT "/etc/shadow") < 0,
	   "the image's /root and /etc are its own");
	ok(find(&p, SANDBOX_STEP_SUBMOUNT, NULL) < 0, "no host submounts in an image");
	sandbox_plan_release(&p);
	cbl_rm_rf(rootfs, NULL);
	free(rootfs);
}

/* targets resolved as inside: absolute links from the view's root */
static void test_plan_targets_through_links(void)
{
	char *rootfs = make_rootfs();
	char *p1 = cbl_path_join(rootfs, "run"), *p2 = cbl_path_join(rootfs, "var"), *p3 = cbl_path_join(rootfs, "var/run");
	mkdir(p1, 0755);
	mkdir(p2, 0755);
	ok(symlink("/run", p3) == 0, "fixture: var/run -> /run");
	sandbox_mount m[] = {
		{SANDBOX_MOUNT_BIND, "/etc/passwd", "/var/run/x.sock", 0},
		{SANDBOX_MOUNT_BIND, "/usr/bin", "/lib/../lib/tools", 0},
	};
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	o.rootfs = rootfs;
	o.mounts = m;
	o.n_mounts = 2;
	sandbox_plan p = SANDBOX_PLAN_INIT;
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), 0, "targets through links: planned");
	ok(find(&p, SANDBOX_STEP_BIND, ROOT "/run/x.sock") > 0, "an absolute link: from the view's root");
	ok(find(&p, SANDBOX_STEP_BIND, ROOT "/usr/lib/tools") > 0, "a relative link and '..'");
	sandbox_plan_release(&p);
	cbl_rm_rf(rootfs, NULL);
	free(rootfs);
	free(p1);
	free(p2);
	free(p3);
}

static const char mountinfo[] =
	"22 27 0:21 / /proc rw,relatime - proc proc rw\n"
	"24 27 0:6 / /dev rw - devtmpfs devtmpfs rw\n"
	"27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
	"40 27 254:1 / /opt rw,nosuid,nodev - ext4 /dev/vdb rw\n"
	"41 40 0:50 / /opt/x\\040y rw - tmpfs tmpfs rw\n"
	"42 27 254:2 / /home rw - ext4 /dev/vdc rw\n"
	"43 42 254:2 /u /home/u/bind rw - ext4 /dev/vdc rw\n"
	"44 27 0:51 / /boot/efi rw - vfat /dev/vdd1 rw\n"
	"45 27 7:0 / /snap/core/1 ro,nodev - squashfs /dev/loop0 ro\n"
	"46 27 0:52 / /srv/data rw - ext4 /dev/vde rw\n"
	"47 27 0:53 / /var/lib/cbl-state rw - ext4 /dev/vdf rw\n"
	"48 47 0:54 / /var/lib/cbl-state/sub rw - tmpfs tmpfs rw\n"
	"49 27 0:55 / /data rw - ext4 /dev/vdg rw\n"
	"50 27 0:56 / /data rw - xfs /dev/vdh rw\n"
	"51 49 0:57 / /data/inner rw - ext4 /dev/vdi rw\n"
	"52 27 0:58 / /etc/hosts rw - ext4 /dev/vdj rw\n"
	"53 27 0:59 / /etc/resolv.conf ro - ext4 /dev/vdj rw\n"
	"54 27 0:60 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw\n"
	"31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
	"55 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
	"56 27 0:61 / /auto rw - autofs systemd-1 rw\n"
	"57 56 0:63 / /auto/real rw - ext4 /dev/vdk rw\n"
	"58 27 0:62 / /usr/local rw shared:5 master:1 - ext4 /dev/vdl rw\n"
	"not a mountinfo line\n";

/* The mounts fuse-overlayfs would take for another name of a directory
 * (sandbox/fuse.c covers each in the daemon's namespace). */
static void test_fuse_aliases(void)
{
	static const char text[] =
		"27 1 254:0 / / rw - ext4 /dev/vda rw\n"
		"22 27 0:21 / /proc rw - proc proc rw\n"
		"60 27 254:0 /var/lib/x/src /opt/y rw - ext4 /dev/vda rw\n"
		"62 27 254:3 / /data1 rw - ext4 /dev/vdb rw\n"
		"63 27 254:3 / /data\\0402 rw - ext4 /dev/vdb rw\n"
		"64 27 254:0 /var/lib/x/other /opt/z rw - ext4 /dev/vda rw\n"
		"65 64 0:70 / /opt/z/in rw - tmpfs tmpfs rw\n"
		"66 27 254:0 /srv/a /home/u/b rw - ext4 /dev/vda rw\n"
		"68 27 254:0 /var/lib/x/src /opt/w rw - ext4 /dev/vda rw\n"
		"69 27 0:71 / /opt/w rw - tmpfs tmpfs rw\n"
		"70 27 0:72 / /usr/local rw - ext4 /dev/vdc rw\n"
		"not a mountinfo line\n";
	cbl_strv v = CBL_STRV_INIT;
	sandbox_fuse_aliases(text, &v);
	is_int((int)v.n, 3, "fuse aliases: a bind of a directory, a filesystem mounted twice");
	ok(v.n == 3 && !strcmp(v.v[0], "/opt/y") && !strcmp(v.v[1], "/data1") && !strcmp(v.v[2], "/data 2"),
	   "fuse aliases: not the root, a pseudo filesystem, one with a mount beneath, a private one, a covered "
	   "one, a filesystem mounted once");
	cbl_strv_release(&v);
	sandbox_fuse_aliases("", &v);
	is_int((int)v.n, 0, "fuse aliases: none in nothing");
	cbl_strv_release(&v);
}

static void test_submounts_parse(void)
{
	const char *hidden[] = {"/var/lib/cbl-state", NULL};
	sandbox_submounts s = SANDBOX_SUBMOUNTS_INIT;
	sandbox_submounts_parse(&s, mountinfo, hidden);
	static const struct {
		const char *path;
		bool overlay;
		unsigned long flags;
	} want[] = {
		{"/opt", true, MS_NOSUID | MS_NODEV},
		{"/opt/x y", true, 0},
		{"/boot/efi", false, 0},
		{"/snap/core/1", false, MS_RDONLY | MS_NODEV},
		{"/data", true, 0},
		{"/etc/resolv.conf", false, MS_RDONLY},
		{"/usr/local", true, 0},
	};
	is_int((int)s.n, (int)(sizeof(want) / sizeof(*want)), "the mounts a host view shows");
	for (size_t i = 0; i < s.n && i < sizeof(want) / sizeof(*want); i++) {
		is_str(s.v[i].path, want[i].path, "submount %zu, in mount order", i);
		ok(s.v[i].overlay == want[i].overlay && s.v[i].flags == want[i].flags, "%s: %s, flags %lx", want[i].path,
		   want[i].overlay ? "overlaid" : "bound read-only", want[i].flags);
	}
	for (size_t i = 0; i < s.n; i++)
		ok(strncmp(s.v[i].path, "/home", 5) && strncmp(s.v[i].path, "/srv", 4) &&
		   strncmp(s.v[i].path, "/var/lib", 8) && strncmp(s.v[i].path, "/sys", 4) &&
		   strncmp(s.v[i].path, "/auto", 5) && strcmp(s.v[i].path, "/etc/hosts") &&
		   strcmp(s.v[i].path, "/data/inner") && strcmp(s.v[i].path, "/proc"),
		   "%s: not a private, hidden, pseudo, covered or engine mount", s.v[i].path);
	sandbox_submounts_release(&s);
	sandbox_submounts_parse(&s, "", NULL);
	ok(s.n == 0, "empty mountinfo: nothing");
	sandbox_submounts_release(&s);
}

static void test_plan_limits(void)
{
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	o.memory_bytes = 3LL << 30;
	o.pids_max = 100;
	o.cgroup_name = "job-1";
	sandbox_plan p = SANDBOX_PLAN_INIT;
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), 0, "limits: planned");
	long m = find(&p, SANDBOX_STEP_MEMORY_LIMIT, NULL), n = find(&p, SANDBOX_STEP_PIDS_LIMIT, NULL);
	ok(m >= 0 && p.v[m].num == 3LL << 30 && !strcmp(p.v[m].arg, "job-1"), "memory limit with its cgroup");
	ok(n >= 0 && p.v[n].num == 100, "pids limit");
	ok(m < find(&p, SANDBOX_STEP_PRIVATE, NULL), "limits before the init's steps");
	sandbox_plan_release(&p);
	o.cgroup_name = NULL;
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), CBL_EINVAL, "a limit without a cgroup name");
	sandbox_plan_release(&p);
}

static void test_plan_invalid(void)
{
	sandbox_plan p = SANDBOX_PLAN_INIT;
	sandbox_opts o = SANDBOX_OPTS_INIT;
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), CBL_EINVAL, "no scratch");
	o.scratch = SCRATCH;
	o.cwd = "rel";
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), CBL_EINVAL, "relative cwd");
	o.cwd = NULL;
	sandbox_mount rel[] = {{SANDBOX_MOUNT_BIND, "/a", "a", 0}};
	o.mounts = rel;
	o.n_mounts = 1;
	cbl_error *e = NULL;
	is_int(sandbox_plan_build(&p, &o, 0, 0, &e), CBL_EINVAL, "relative target");
	ok(e && !strncmp(e->msg, "sandbox: ", 9), "errors start with sandbox:");
	cbl_error_free(e);
	sandbox_mount nosrc[] = {{SANDBOX_MOUNT_BIND_RO, NULL, "/a", 0}};
	o.mounts = nosrc;
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), CBL_EINVAL, "a bind without source");
	ok(p.n == 0, "nothing planned on invalid options");
	sandbox_plan_release(&p);
}


static void test_plan_privileged(void)
{
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	o.privileged = true;
	sandbox_plan p = SANDBOX_PLAN_INIT;
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), 0, "privileged: planned");
	ok(count(&p, SANDBOX_STEP_CAPS) == 0 && count(&p, SANDBOX_STEP_SECCOMP) == 0 &&
	   count(&p, SANDBOX_STEP_NO_NEW_PRIVS) == 0, "privileged: every capability, no filter, no_new_privs unset");
	ok(count(&p, SANDBOX_STEP_MASK) == 0 && count(&p, SANDBOX_STEP_READONLY) == 0,
	   "privileged: /proc/sys writable, nothing masked");
	ok(find(&p, SANDBOX_STEP_PIVOT, ROOT) >= 0 && find(&p, SANDBOX_STEP_PROC, ROOT "/proc") >= 0,
	   "privileged: still its own root and /proc");
	ok(p.v[p.n - 1].kind == SANDBOX_STEP_CHDIR, "privileged: the chdir is the last step");
	sandbox_plan_release(&p);
}

/* the plan crosses the exec as bytes */
static void test_plan_bytes(void)
{
	sandbox_mount m[] = {{SANDBOX_MOUNT_BIND_RO, "/host/a,b", "/x", 0}, {SANDBOX_MOUNT_TMPFS, NULL, "/t", 0700}};
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	o.mounts = m;
	o.n_mounts = 2;
	o.memory_bytes = 1LL << 40;
	o.cgroup_name = "c";
	sandbox_plan p = SANDBOX_PLAN_INIT, q = SANDBOX_PLAN_INIT;
	is_int(sandbox_plan_build(&p, &o, 1000, 1000, NULL), 0, "bytes: planned");
	size_t len = 0;
	char *buf = sandbox_plan_encode(&p, &len);
	is_int(sandbox_plan_decode(&q, buf, len), 0, "bytes: decoded");
	bool same = p.n == q.n;
	for (size_t i = 0; same && i < p.n; i++) {
		const sandbox_step *a = &p.v[i], *b = &q.v[i];
		same = a->kind == b->kind && a->num == b->num && !a->arg == !b->arg && !a->path == !b->path &&
		       (!a->arg || !strcmp(a->arg, b->arg)) && (!a->path || !strcmp(a->path, b->path));
	}
	ok(same, "bytes: the same %zu steps, arguments, paths and numbers", p.n);
	sandbox_plan_release(&q);
	is_int(sandbox_plan_decode(&q, buf, len - 1), -1, "bytes: a truncated plan is refused");
	sandbox_plan_release(&q);
	buf[0] = 'X';
	is_int(sandbox_plan_decode(&q, buf, len), -1, "bytes: a foreign buffer is refused");
	sandbox_plan_release(&q);
	buf[0] = 'C';
	int32_t bad = SANDBOX_STEP_KIND_COUNT;
	memcpy(buf + 8, &bad, sizeof(bad));
	is_int(sandbox_plan_decode(&q, buf, len), -1, "bytes: an unknown step kind is refused");
	ok(q.n == 0, "and nothing decoded is kept");
	sandbox_plan_release(&q);
	free(buf);
	sandbox_plan_release(&p);
}

static const sandbox_syscall_rule *rule_for(const char *name)
{
	size_t n = 0;
	const sandbox_syscall_rule *r = sandbox_seccomp_rules(&n);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(r[i].name, name))
			return &r[i];
	return NULL;
}

static void test_confinement_tables(void)
{
	uint64_t caps = sandbox_caps_default();
	ok((caps & (1ULL << CAP_CHOWN)) && (caps & (1ULL << CAP_MKNOD)) && (caps & (1ULL << CAP_SETFCAP)) &&
	   (caps & (1ULL << CAP_NET_RAW)), "kept: CHOWN, MKNOD, SETFCAP, NET_RAW, ...");
	ok(!(caps & (1ULL << CAP_SYS_ADMIN)) && !(caps & (1ULL << CAP_NET_ADMIN)) &&
	   !(caps & (1ULL << CAP_SYS_PTRACE)) && !(caps & (1ULL << CAP_SYS_MODULE)) &&
	   !(caps & (1ULL << CAP_SYS_TIME)) && !(caps & (1ULL << CAP_DAC_READ_SEARCH)),
	   "dropped: SYS_ADMIN, NET_ADMIN, SYS_PTRACE, SYS_MODULE, SYS_TIME, DAC_READ_SEARCH");
	static const char *const denied[] = {
		"clock_settime", "settimeofday", "adjtimex", "clock_adjtime", "fsopen", "fspick", "fsconfig",
		"fsmount", "move_mount", "open_tree", "open_by_handle_at", "bpf", "perf_event_open", "keyctl",
		"add_key", "request_key", "userfaultfd", "kexec_load", "kexec_file_load", "init_module",
		"finit_module", "delete_module", "mount", "umount2", "pivot_root", "setns", "swapon", "reboot",
	};
	bool all = true;
	for (size_t i = 0; i < sizeof(denied) / sizeof(*denied); i++) {
		const sandbox_syscall_rule *r = rule_for(denied[i]);
		bool good = r && r->err == EPERM && r->arg < 0 && seccomp_syscall_resolve_name(denied[i]) >= 0;
		if (!good)
			printf("# %s: not denied outright with EPERM on this architecture\n", denied[i]);
		all &= good;
	}
	ok(all, "seccomp: clock setting, the new mount API, handles, bpf, perf, keyrings, userfaultfd, "
		"kexec, modules, mounts, setns denied (EPERM)");
	const sandbox_syscall_rule *u = rule_for("unshare"), *c = rule_for("clone"), *c3 = rule_for("clone3");
	ok(u && u->arg == 0 && (u->mask & CLONE_NEWUSER) && (u->mask & CLONE_NEWNS) && !(u->mask & CLONE_FILES),
	   "seccomp: unshare of a namespace denied, unshare(CLONE_FILES) allowed");
	ok(c && (c->mask & CLONE_NEWUSER) && !(c->mask & CLONE_VM), "seccomp: clone with a namespace flag denied");
	ok(c3 && c3->err == ENOSYS, "seccomp: clone3 is ENOSYS (libc falls back to clone)");
	const sandbox_syscall_rule *mk = rule_for("mknodat");
	ok(mk && mk->arg == 2 && mk->mask == S_IFMT && mk->value == S_IFBLK, "seccomp: block device nodes denied");
	ok(!rule_for("ptrace") && !rule_for("chroot") && !rule_for("name_to_handle_at"),
	   "seccomp: ptrace, chroot, name_to_handle_at stay (debuggers, sysroots)");
}

/* ---------------------------------------------------------------- a real one */

static char *slurp_nonblock(int fd)
{
	char buf[8192];
	size_t len = 0;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return cbl_xstrdup(buf);
}

static int run(sandbox_handle *s, const char *script, char *const envp[], int *ws)
{
	cbl_error *e = NULL;
	int rc = sandbox_spawn(s, "/bin/sh", script, "/", NULL, envp, &e);
	if (rc == 0)
		rc = sandbox_wait(s, ws, &e);
	if (rc)
		printf("# %s\n", e ? e->msg : "?");
	cbl_error_free(e);
	return rc;
}

static void write_script(const char *dir, const char *name, const char *body)
{
	char *p = cbl_path_join(dir, name);
	cbl_write_file_atomic(p, body, strlen(body), 0755, false, NULL);
	free(p);
}

/* Seen from the caller: the init's environment is empty (the dynamic
 * loader's LD_LIBRARY_PATH aside) and it holds nothing of ours but its
 * socket and the output; a descriptor we leave inheritable does not reach
 * it. */
static void check_init(pid_t init, const char *leak_path)
{
	char path[64], *env = NULL;
	size_t len = 0;
	snprintf(path, sizeof(path), "/proc/%ld/environ", (long)init);
	ok(cbl_read_file(path, 1 << 20, &env, &len, NULL) == 0, "the init's environ is readable by its caller");
	ok(env && (len == 0 || !strncmp(env, "LD_LIBRARY_PATH=", 16)) && !memmem(env, len, "CBL_UNIT", 8),
	   "the init's environment is empty");
	free(env);
	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)init);
	DIR *d = opendir(path);
	int n = 0;
	bool leaked = false;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		n++;
		char link[512], target[512];
		snprintf(link, sizeof(link), "%s/%s", path, de->d_name);
		ssize_t l = readlink(link, target, sizeof(target) - 1);
		target[l > 0 ? l : 0] = '\0';
		leaked |= !strcmp(target, leak_path);
	}
	if (d)
		closedir(d);
	ok(d && n <= 5, "the init holds %d descriptors (0-3 and its signalfd)", n);
	ok(!leaked, "an inheritable descriptor of the caller does not reach the init");
	char exe[256];
	snprintf(path, sizeof(path), "/proc/%ld/exe", (long)init);
	ssize_t l = readlink(path, exe, sizeof(exe) - 1);
	exe[l > 0 ? l : 0] = '\0';
	ok(!strncmp(exe, "/memfd:codebuild-local-init", 27), "the init runs the embedded program (%s)", exe);
}

/* Sessions next to a running command: their own descriptors, the
 * confinement of the commands, their ends apart from the command's. */
static void check_sessions(sandbox_handle *s, char *const env[], const char *rw)
{
	cbl_error *e = NULL;
	int sp[2], ws = -1;
	ok(pipe2(sp, O_CLOEXEC) == 0, "a session's pipe");
	/* the command runs on while the session comes and goes */
	write_script(rw, "slow.sh", "sleep 1; exit 9\n");
	is_int(sandbox_spawn(s, "/bin/sh", "/rw/slow.sh", "/", NULL, env, &e), 0, "a command runs");
	cbl_error_clear(&e);
	const char *argv[] = {"/bin/sh", "-c", "echo in-session $FOO $(pwd); grep -E '^Seccomp:' /proc/self/status; exit 5",
			      NULL};
	int dn = open("/dev/null", O_RDONLY | O_CLOEXEC);
	sandbox_session_opts so = {.argv = argv, .cwd = "/rw", .envp = env, .fds = {dn, sp[1], sp[1]}};
	pid_t pid = 0;
	is_int(sandbox_session_start(s, &so, &pid, &e), 0, "a session starts");
	cbl_error_clear(&e);
	close(sp[1]);
	close(dn);
	ok(pid > 1, "its pid inside");
	pid_t got = 0;
	int sws = -1;
	for (int i = 0; i < 200 && !sandbox_session_ended(s, &got, &sws); i++) {
		struct pollfd p = {.fd = sandbox_fd(s), .events = POLLIN};
		poll(&p, 1, 50);
		sandbox_service(s, &e);
		cbl_error_clear(&e);
	}
	ok(got == pid && WIFEXITED(sws) && WEXITSTATUS(sws) == 5, "its end, with its exit status");
	ok(!sandbox_command_ended(s), "the command still runs");
	char buf[256] = "";
	ssize_t n = read(sp[0], buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	ok(strstr(buf, "in-session bar /rw\nSeccomp:\t2\n") != NULL, "its descriptors, cwd, environment, filter");
	close(sp[0]);
	/* one that runs on: killed by its pid */
	const char *argv2[] = {"/bin/sleep", "600", NULL};
	int dn2 = open("/dev/null", O_RDWR | O_CLOEXEC);
	sandbox_session_opts so2 = {.argv = argv2, .envp = env, .fds = {dn2, dn2, dn2}};
	is_int(sandbox_session_start(s, &so2, &pid, &e), 0, "another session");
	cbl_error_clear(&e);
	close(dn2);
	sandbox_session_kill(s, pid);
	got = 0;
	for (int i = 0; i < 200 && !sandbox_session_ended(s, &got, &sws); i++) {
		struct pollfd p = {.fd = sandbox_fd(s), .events = POLLIN};
		poll(&p, 1, 50);
		sandbox_service(s, &e);
		cbl_error_clear(&e);
	}
	ok(got == pid && WIFSIGNALED(sws) && WTERMSIG(sws) == SIGKILL, "sandbox_session_kill ends it");
	is_int(sandbox_wait(s, &ws, &e), 0, "the command's end");
	cbl_error_clear(&e);
	ok(WIFEXITED(ws) && WEXITSTATUS(ws) == 9, "its own exit status, not a session's");
}

static void test_real(void)
{
	char t1[] = "/tmp/cbl-sbx-scratch-XXXXXX", t2[] = "/tmp/cbl-sbx-data-XXXXXX", t3[] = "/tmp/cbl-sbx-rw-XXXXXX";
	char *scratch = mkdtemp(t1), *data = mkdtemp(t2), *rw = mkdtemp(t3);
	char *f = cbl_path_join(data, "f");
	cbl_write_file_atomic(f, "from-host\n", 10, 0644, false, NULL);
	free(f);
	write_script(rw, "main.sh",
		     "echo hi; cat /data/f; (echo x > /data/g) 2>/dev/null || echo ro-ok; echo pid=$$; "
		     "hostname; pwd; echo env=$FOO; touch /cbl-sbx-escape && echo wrote-root; exit 3\n");
	write_script(rw, "kill.sh", "kill -9 $$\n");
	write_script(rw, "mem.sh", "python3 -c \"b = b'x' * (64 << 20); print(len(b))\"\n");
	write_script(rw, "confined.sh",
		     "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; "
		     "cat /proc/1/environ >/dev/null 2>&1 || echo environ-denied; "
		     "readlink /proc/1/fd/3 >/dev/null 2>&1 || echo fd-denied; "
		     "(echo 10 > /proc/sys/kernel/printk_ratelimit) 2>/dev/null || echo sys-ro; "
		     "mknod /tmp/blk b 7 0 2>/dev/null || echo mknod-denied; "
		     "echo keys=$(cat /proc/keys 2>/dev/null | wc -c)\n");
	/* what the init must not inherit: an environment variable and a
	 * descriptor without close-on-exec */
	setenv("CBL_UNIT_INIT_MARKER", "leaked", 1);
	char leak_path[] = "/tmp/cbl-sbx-leak-XXXXXX";
	int leak = mkstemp(leak_path);
	int out[2];
	ok(pipe2(out, O_CLOEXEC) == 0, "output pipe");
	sandbox_mount m[] = {
		{SANDBOX_MOUNT_BIND_RO, data, "/data", 0},
		{SANDBOX_MOUNT_BIND, rw, "/rw", 0},
	};
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = scratch;
	o.mounts = m;
	o.n_mounts = 2;
	o.cwd = "/rw";
	o.hostname = "unit-box";
	o.network = SANDBOX_NET_NONE;
	o.out_fd = out[1];
	sandbox_handle *s = NULL;
	cbl_error *e = NULL;
	if (sandbox_start(&s, &o, &e) < 0) {
		/* no namespaces on this machine (a container without the rights) */
		printf("# skipped the real sandbox: %s\n", e ? e->msg : "?");
		cbl_error_free(e);
		goto out;
	}
	ok(sandbox_pid(s) > 0, "an init process");
	check_init(sandbox_pid(s), leak_path);
	ok(sandbox_warnings(s)[0] == NULL, "no warnings without limits");
	char foo[] = "FOO=bar", path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	char *env[] = {foo, path, NULL};
	int ws = -1;
	is_int(run(s, "/rw/main.sh", env, &ws), 0, "spawn and wait");
	ok(WIFEXITED(ws) && WEXITSTATUS(ws) == 3, "its exit status");
	char *text = slurp_nonblock(out[0]);
	ok(strstr(text, "hi\nfrom-host\nro-ok\npid=") != NULL, "read-only bind readable, not writable");
	ok(strstr(text, "unit-box\n/\nenv=bar\n") != NULL, "hostname, cwd of the spawn, exactly envp");
	ok(strstr(text, "wrote-root") != NULL || geteuid() != 0, "as root, / is writable inside (the overlay)");
	printf("# output: %s", text);
	free(text);
	ok(access("/cbl-sbx-escape", F_OK) != 0, "nothing written to the host's /");
	char *g = cbl_path_join(data, "g");
	ok(access(g, F_OK) != 0, "nothing written through the read-only bind");
	free(g);
	is_int(run(s, "/rw/confined.sh", env, &ws), 0, "the confinement, seen from inside");
	text = slurp_nonblock(out[0]);
	printf("# output: %s", text);
	ok(strstr(text, "CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n") != NULL,
	   "the commands' root has the default capability set");
	ok(strstr(text, "NoNewPrivs:\t1\nSeccomp:\t2\n") != NULL, "no_new_privs and a seccomp filter");
	ok(strstr(text, "environ-denied\nfd-denied\n") != NULL, "the init's environ and descriptors: not for them");
	ok(strstr(text, "sys-ro\nmknod-denied\nkeys=0\n") != NULL,
	   "/proc/sys read-only, no block device nodes, /proc/keys masked");
	free(text);
	is_int(run(s, "/rw/kill.sh", env, &ws), 0, "a command killed by a signal");
	ok(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL, "its wait status says so");
	sandbox_usage before, u, total;
	sandbox_usage_total(s, &before);
	is_int(run(s, "/rw/mem.sh", env, &ws), 0, "a command that allocates 64 MB");
	sandbox_usage_last(s, &u);
	sandbox_usage_total(s, &total);
	free(slurp_nonblock(out[0]));
	ok(u.mem_peak >= 64 << 20 && u.mem_peak < (64 << 20) * 11 / 10 + (16 << 20),
	   "its peak, as wait4 counts it: %lld bytes", (long long)u.mem_peak);
	ok(u.cpu_us > 0 && u.cpu_us == u.user_us + u.system_us, "its CPU time: %lld us", (long long)u.cpu_us);
	ok(u.source && !strcmp(u.source, "process tree"), "counted from the process tree");
	ok(total.cpu_us >= before.cpu_us + u.cpu_us && total.mem_peak >= u.mem_peak,
	   "the sandbox's total adds it up (no cgroup without a limit)");
	sandbox_usage_reset_peak(s);
	sandbox_usage_total(s, &total);
	ok(total.mem_peak == 0, "a new peak starts");
	is_int(sandbox_spawn(s, "/bin/sh", "/rw/main.sh", "/", "no-such-user-cbl", env, &e), CBL_EIO,
	       "an unknown user");
	ok(e && strstr(e->msg, "no-such-user-cbl"), "the error names it");
	cbl_error_clear(&e);
	check_sessions(s, env, rw);
	pid_t init = sandbox_pid(s);
	sandbox_free(s);
	ok(kill(init, 0) < 0 && errno == ESRCH, "the init is gone after free");
out:
	unsetenv("CBL_UNIT_INIT_MARKER");
	if (leak >= 0)
		close(leak);
	unlink(leak_path);
	close(out[0]);
	close(out[1]);
	cbl_rm_rf(scratch, NULL);
	cbl_rm_rf(data, NULL);
	cbl_rm_rf(rw, NULL);
}

/* An overlay of dir at /src (optional) and one of a missing directory
 * (optional: reported, the start goes on); a command writes into the
 * overlay; the runner's descriptor of it outlives the sandbox, the build's
 * file readable through it, dir untouched; then an overlay mounted later
 * (sandbox_mount_overlay) with host layers.  Returns what went wrong, or
 * NULL.  Runs as the caller's user: the test runs it as root and, in a
 * child that dropped to nobody, as a normal user (the user namespace's
 * overlays). */
static const char *overlay_scenario(const char *scratch, const char *dir, const char *layers)
{
	static char why[256];
	int out[2] = {-1, -1};
	sandbox_handle *s = NULL;
	cbl_error *e = NULL;
	int fd = -1;
	const char *res = NULL;
	char *missing = cbl_path_join(dir, "no-such-dir");
	sandbox_mount m[] = {
		{SANDBOX_MOUNT_OVERLAY, dir, "/src", 0, true},
		{SANDBOX_MOUNT_OVERLAY, missing, "/gone", 0, true},
		{SANDBOX_MOUNT_BIND_RO, layers, "/t", 0},
	};
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = scratch;
	o.mounts = m;
	o.n_mounts = 3;
	o.network = SANDBOX_NET_NONE;
	if (pipe2(out, O_CLOEXEC) < 0)
		return "pipe";
	o.out_fd = out[1];
	if (sandbox_start(&s, &o, &e) < 0) {
		snprintf(why, sizeof(why), "start: %s", e ? e->msg : "?");
		res = why;
		goto done;
	}
	if (sandbox_mount_error(s, 0)) {
		snprintf(why, sizeof(why), "the overlay of a directory of ours failed: %s", sandbox_mount_error(s, 0));
		res = why;
		goto done;
	}
	if (!sandbox_mount_error(s, 1) || !strstr(sandbox_mount_error(s, 1), missing)) {
		res = "the failed optional overlay is not reported";
		goto done;
	}
	if (sandbox_open_dir(s, "/src", &fd, &e) < 0) {
		snprintf(why, sizeof(why), "open_dir: %s", e ? e->msg : "?");
		res = why;
		goto done;
	}
	char path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	char *env[] = {path, NULL};
	int ws = -1;
	static const char w_sh[] = "echo built > /src/new && rm /src/old\n";
	static const char m2_sh[] = "cat /root/.m2/cached && echo saved > /root/.m2/new\n";
	char *f = cbl_path_join(layers, "w.sh");
	cbl_write_file_atomic(f, w_sh, strlen(w_sh), 0755, false, NULL);
	if (sandbox_spawn(s, "/bin/sh", "/t/w.sh", "/", NULL, env, &e) < 0 || sandbox_wait(s, &ws, &e) < 0 ||
	    !WIFEXITED(ws) || WEXITSTATUS(ws)) {
		free(f);
		res = "the command writing into the overlay failed";
		goto done;
	}
	free(f);
	/* an overlay mounted into the running sandbox, layers on the host */
	char *lower = cbl_path_join(layers, "lower"), *upper = cbl_path_join(layers, "upper"),
	     *work = cbl_path_join(layers, "work");
	int mrc = sandbox_mount_overlay(s, lower, upper, work, "/root/.m2", &e);
	free(lower);
	free(work);
	if (mrc < 0) {
		free(upper);
		snprintf(why, sizeof(why), "mount_overlay: %s", e ? e->msg : "?");
		res = why;
		goto done;
	}
	f = cbl_path_join(layers, "m2.sh");
	cbl_write_file_atomic(f, m2_sh, strlen(m2_sh), 0755, false, NULL);
	mrc = sandbox_spawn(s, "/bin/sh", "/t/m2.sh", "/", NULL, env, &e) < 0 || sandbox_wait(s, &ws, &e) < 0 ||
	      !WIFEXITED(ws) || WEXITSTATUS(ws);
	free(f);
	char *nf = cbl_path_join(upper, "new");
	bool saved = access(nf, F_OK) == 0;
	free(nf);
	free(upper);
	if (mrc || !saved) {
		res = "the overlay mounted later: not readable, or the write is not in its upper layer";
		goto done;
	}
	sandbox_free(s);
	s = NULL;
	/* the sandbox is gone: its view, through the descriptor, is not */
	char buf[64] = "";
	int nfd = openat(fd, "new", O_RDONLY | O_CLOEXEC);
	ssize_t n = nfd >= 0 ? read(nfd, buf, sizeof(buf) - 1) : -1;
	if (nfd >= 0)
		close(nfd);
	if (n != 6 || memcmp(buf, "built\n", 6) || faccessat(fd, "old", F_OK, 0) == 0) {
		res = "the build's changes are not readable through the descriptor after the end";
		goto done;
	}
	char *old = cbl_path_join(dir, "old"), *newf = cbl_path_join(dir, "new");
	bool untouched = access(old, F_OK) == 0 && access(newf, F_OK) != 0;
	free(old);
	free(newf);
	if (!untouched)
		res = "the directory under the overlay changed";
done:
	if (fd >= 0)
		close(fd);
	sandbox_free(s);
	cbl_error_free(e);
	close(out[0]);
	close(out[1]);
	free(missing);
	return res;
}

/* A sandbox with private_lower: its /tmp and /home show the kept files
 * (mode 1777 for /tmp), take writes and deletions, and the kept copy stays
 * as it was.  NULL when so, else why not. */
static const char *private_scenario(const char *scratch, const char *pl)
{
	static char why[256];
	int out[2] = {-1, -1};
	sandbox_handle *s = NULL;
	cbl_error *e = NULL;
	const char *res = NULL;
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = scratch;
	o.network = SANDBOX_NET_NONE;
	o.private_lower = pl;
	if (pipe2(out, O_CLOEXEC) < 0)
		return "pipe";
	o.out_fd = out[1];
	if (sandbox_start(&s, &o, &e) < 0) {
		snprintf(why, sizeof(why), "start: %s", e ? e->msg : "?");
		res = why;
		goto done;
	}
	char path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	char *env[] = {path, NULL};
	int ws = -1;
	if (sandbox_spawn(s, "/bin/sh", "/tmp/s.sh", "/", NULL, env, &e) < 0 || sandbox_wait(s, &ws, &e) < 0 ||
	    !WIFEXITED(ws) || WEXITSTATUS(ws)) {
		snprintf(why, sizeof(why), "the script's check %d failed", WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
		res = why;
	}
done:
	cbl_error_free(e);
	sandbox_free(s);
	close(out[0]);
	close(out[1]);
	return res;
}

/* sandbox_copy_out on a real sandbox: the source overlay's upper layer
 * (from the held private tmpfs) and /tmp (a path inside), as layers: a
 * whiteout, an opaque directory, a symlink never followed, owners and
 * modes, no FIFO; the copy happens while the sandbox runs. */
static void test_real_copy_out(void)
{
	char t1[] = "/var/tmp/cbl-sbx-co-XXXXXX";
	char *base = mkdtemp(t1);
	char *scratch = cbl_path_join(base, "scratch"), *src = cbl_path_join(base, "src");
	char *d1 = cbl_path_join(base, "d1"), *d2 = cbl_path_join(base, "d2");
	cbl_mkdir_p(scratch, 0755, NULL);
	cbl_mkdir_p(src, 0755, NULL);
	mkdir(d1, 0755);
	mkdir(d2, 0755);
	char *old = cbl_path_join(src, "old"), *dd = cbl_path_join(src, "dir");
	cbl_write_file_atomic(old, "old", 3, 0644, false, NULL);
	mkdir(dd, 0755);
	char *ddf = cbl_path_join(dd, "under");
	cbl_write_file_atomic(ddf, "u", 1, 0644, false, NULL);
	sandbox_mount m[] = {{SANDBOX_MOUNT_OVERLAY, src, "/src", 0, false, NULL, NULL}};
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = scratch;
	o.network = SANDBOX_NET_NONE;
	o.out_fd = -1;
	o.mounts = m;
	o.n_mounts = 1;
	o.keep_scratch = true;
	sandbox_handle *s = NULL;
	cbl_error *e = NULL;
	if (sandbox_start(&s, &o, &e) < 0) {
		printf("# skipped the real copy out: %s\n", e ? e->msg : "no sandbox here");
		cbl_error_free(e);
		goto out;
	}
	char path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	char *env[] = {path, NULL};
	int ws = -1;
	const char *script = "rm /src/old && rm -r /src/dir && mkdir /src/dir && echo new > /src/dir/new && "
			     "ln -s /etc/hostname /src/link && mkfifo /src/fifo /tmp/fifo && "
			     "echo secret > /tmp/t && chmod 600 /tmp/t && chown 1234:1234 /tmp/t || exit 1";
	/* sandbox_spawn runs `path arg`: the script goes through a file */
	char *sf = cbl_path_join(src, "s.sh");
	cbl_write_file_atomic(sf, script, strlen(script), 0644, false, NULL);
	ok(sandbox_spawn(s, "/bin/sh", "/src/s.sh", "/", NULL, env, &e) == 0 && sandbox_wait(s, &ws, &e) == 0 &&
	       WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
	   "copy out: the build changed its source and /tmp");
	cbl_error_clear(&e);
	int f1 = open(d1, O_RDONLY | O_DIRECTORY), f2 = open(d2, O_RDONLY | O_DIRECTORY);
	sandbox_copy_stats cs = {0};
	is_int(sandbox_copy_out(s, SANDBOX_COPY_MOUNT_UPPER, 0, NULL, f1, &cs, &e), 0, "copy out: the upper layer");
	cbl_error_clear(&e);
	is_int(sandbox_copy_out(s, SANDBOX_COPY_PATH, 0, "/tmp", f2, NULL, &e), 0, "copy out: /tmp");
	cbl_error_clear(&e);
	is_int(sandbox_copy_out(s, SANDBOX_COPY_PATH, 0, "/no-such-dir", f2, NULL, &e), CBL_ENOENT,
	       "copy out: a missing path is CBL_ENOENT");
	cbl_error_clear(&e);
	struct stat st;
	char v[4] = "", target[64] = "";
	ok(fstatat(f1, "old", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == 0,
	   "copy out: a deletion is a whiteout");
	int dfd = openat(f1, "dir", O_RDONLY | O_DIRECTORY);
	ok(dfd >= 0 && (fgetxattr(dfd, "trusted.overlay.opaque", v, sizeof(v)) == 1 ||
			fgetxattr(dfd, "user.overlay.opaque", v, sizeof(v)) == 1) && v[0] == 'y' &&
	       faccessat(dfd, "new", F_OK, 0) == 0,
	   "copy out: a directory made again is opaque");
	ok(readlinkat(f1, "link", target, sizeof(target) - 1) > 0 && !strcmp(target, "/etc/hostname"),
	   "copy out: a symlink stays a link");
	ok(fstatat(f1, "fifo", &st, AT_SYMLINK_NOFOLLOW) < 0 && fstatat(f2, "fifo", &st, AT_SYMLINK_NOFOLLOW) < 0,
	   "copy out: FIFOs left out");
	ok(fstatat(f2, "t", &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & 07777) == 0600 &&
	       (geteuid() != 0 || st.st_uid == 1234),
	   "copy out: a file keeps its mode and owner");
	ok(cs.files == 2 && cs.bytes == 4, "copy out: counted (dir/new and the link)");
	if (dfd >= 0)
		close(dfd);
	close(f1);
	close(f2);
	free(sf);
	sandbox_free(s);
out:
	cbl_rm_rf(base, NULL);
	free(scratch);
	free(src);
	free(d1);
	free(d2);
	free(old);
	free(dd);
	free(ddf);
}

static void test_real_private_lower(void)
{
	char t1[] = "/var/tmp/cbl-sbx-pv-XXXXXX";
	char *base = mkdtemp(t1);
	char *scratch = cbl_path_join(base, "scratch"), *pl = cbl_path_join(base, "pl");
	static const char sh[] = "test \"$(cat /tmp/x)\" = kept || exit 1\n"
				 "test \"$(cat /home/u/y)\" = y || exit 2\n"
				 "test \"$(stat -c %a /tmp)\" = 1777 || exit 3\n"
				 "echo new > /tmp/x && rm /home/u/y && echo z > /tmp/z || exit 4\n"
				 "test \"$(cat /tmp/x)\" = new && ! test -e /home/u/y || exit 5\n";
	const char *files[][2] = {{"tmp/x", "kept"}, {"home/u/y", "y"}, {"tmp/s.sh", sh}};
	for (int pass = 0; pass < 2; pass++) {
		cbl_rm_rf(scratch, NULL);
		cbl_rm_rf(pl, NULL);
		cbl_mkdir_p(scratch, 0755, NULL);
		cbl_mkdir_p(pl, 0755, NULL);
		for (size_t i = 0; i < 3; i++) {
			char *f = cbl_path_join(pl, files[i][0]), *d = cbl_xstrdup(f);
			*strrchr(d, '/') = '\0';
			cbl_mkdir_p(d, 0755, NULL);
			cbl_write_file_atomic(f, files[i][1], strlen(files[i][1]), 0644, false, NULL);
			free(f);
			free(d);
		}
		if (pass == 0) {
			sandbox_handle *probe = NULL;
			sandbox_opts po = SANDBOX_OPTS_INIT;
			po.scratch = scratch;
			po.network = SANDBOX_NET_NONE;
			po.out_fd = -1;
			if (sandbox_start(&probe, &po, NULL) < 0) {
				printf("# skipped the real private_lower: no sandbox here\n");
				break;
			}
			sandbox_free(probe);
			const char *why = private_scenario(scratch, pl);
			ok(!why, "private_lower: the kept /tmp and /home, writable, the copy unchanged%s%s",
			   why ? ": " : "", why ? why : "");
		} else {
			if (geteuid() != 0)
				break;
			/* as a normal user (nobody), whose directories these are */
			const char *own[] = {base, scratch, pl, "tmp", "home", "home/u", "tmp/x", "tmp/s.sh", "home/u/y"};
			bool chowned = true;
			for (size_t i = 0; i < sizeof(own) / sizeof(*own); i++) {
				char *p = i < 3 ? cbl_xstrdup(own[i]) : cbl_path_join(pl, own[i]);
				chowned &= chown(p, 65534, 65534) == 0;
				free(p);
			}
			if (!chowned)
				break;
			int rp[2];
			if (pipe(rp) < 0)
				break;
			pid_t pid = fork();
			if (pid == 0) {
				close(rp[0]);
				const char *r = "cannot become nobody";
				if (setgroups(0, NULL) == 0 && setresgid(65534, 65534, 65534) == 0 &&
				    setresuid(65534, 65534, 65534) == 0 && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0)
					r = private_scenario(scratch, pl);
				if (r)
					cbl_write_all(rp[1], r, strlen(r));
				_exit(0);
			}
			close(rp[1]);
			char msg[512] = "";
			ssize_t n = read(rp[0], msg, sizeof(msg) - 1);
			msg[n > 0 ? n : 0] = '\0';
			close(rp[0]);
			waitpid(pid, NULL, 0);
			ok(!*msg, "private_lower as a normal user, in the user namespace%s%s", *msg ? ": " : "", msg);
		}
		char *x = NULL, *z = cbl_path_join(pl, "tmp/z"), *y = cbl_path_join(pl, "home/u/y"),
		     *xp = cbl_path_join(pl, "tmp/x");
		size_t len = 0;
		cbl_read_file(xp, 64, &x, &len, NULL);
		ok(x && !strcmp(x, "kept") && access(z, F_OK) < 0 && access(y, F_OK) == 0,
		   "private_lower (%s): the kept copy is unchanged", pass ? "normal user" : "root");
		free(x);
		free(z);
		free(y);
		free(xp);
	}
	cbl_rm_rf(base, NULL);
	free(scratch);
	free(pl);
}

static void test_real_overlays(void)
{
	char t1[] = "/var/tmp/cbl-sbx-ov-XXXXXX";
	char *base = mkdtemp(t1);
	char *dirs[4];
	const char *names[] = {"scratch", "src", "layers", "layers/lower"};
	for (int i = 0; i < 4; i++) {
		dirs[i] = cbl_path_join(base, names[i]);
		cbl_mkdir_p(dirs[i], 0755, NULL);
	}
	char *p = cbl_path_join(dirs[1], "old");
	cbl_write_file_atomic(p, "x", 1, 0644, false, NULL);
	free(p);
	p = cbl_path_join(dirs[3], "cached");
	cbl_write_file_atomic(p, "from-cache\n", 11, 0644, false, NULL);
	free(p);
	for (int i = 0; i < 2; i++) {
		p = cbl_path_join(dirs[2], i ? "work" : "upper");
		mkdir(p, 0755);
		free(p);
	}
	sandbox_handle *probe = NULL;
	sandbox_opts po = SANDBOX_OPTS_INIT;
	po.scratch = dirs[0];
	po.network = SANDBOX_NET_NONE;
	po.out_fd = -1;
	if (sandbox_start(&probe, &po, NULL) < 0) {
		printf("# skipped the real overlays: no sandbox here\n");
		goto out;
	}
	sandbox_free(probe);
	const char *why = overlay_scenario(dirs[0], dirs[1], dirs[2]);
	ok(!why, "as root: an optional overlay, its view outliving the sandbox, an overlay mounted later%s%s",
	   why ? ": " : "", why ? why : "");
	if (geteuid() != 0)
		goto out;
	/* the same as a normal user (nobody), whose directories these are */
	p = cbl_path_join(dirs[1], "new");
	unlink(p);
	free(p);
	cbl_rm_rf(dirs[2], NULL);
	cbl_mkdir_p(dirs[3], 0755, NULL);
	p = cbl_path_join(dirs[3], "cached");
	cbl_write_file_atomic(p, "from-cache\n", 11, 0644, false, NULL);
	free(p);
	for (int i = 0; i < 2; i++) {
		p = cbl_path_join(dirs[2], i ? "work" : "upper");
		mkdir(p, 0755);
		free(p);
	}
	const char *all[] = {base, dirs[0], dirs[1], dirs[2], dirs[3]};
	for (size_t i = 0; i < 5; i++)
		if (chown(all[i], 65534, 65534) < 0)
			goto out;
	const char *files[] = {"src/old", "layers/upper", "layers/work", "layers/lower/cached"};
	for (size_t i = 0; i < 4; i++) {
		p = cbl_path_join(base, files[i]);
		if (chown(p, 65534, 65534) < 0) {
			free(p);
			goto out;
		}
		free(p);
	}
	int rp[2];
	if (pipe(rp) < 0)
		goto out;
	pid_t pid = fork();
	if (pid == 0) {
		close(rp[0]);
		const char *r = "cannot become nobody";
		/* dumpable again, as after the exec of a normal user's program:
		 * the parent writes the id maps of the sandbox's namespace */
		if (setgroups(0, NULL) == 0 && setresgid(65534, 65534, 65534) == 0 &&
		    setresuid(65534, 65534, 65534) == 0 && prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0)
			r = overlay_scenario(dirs[0], dirs[1], dirs[2]);
		if (r)
			cbl_write_all(rp[1], r, strlen(r));
		_exit(0);
	}
	close(rp[1]);
	char msg[512] = "";
	ssize_t n = read(rp[0], msg, sizeof(msg) - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(rp[0]);
	waitpid(pid, NULL, 0);
	ok(!*msg, "as a normal user: the same, in the user namespace%s%s", *msg ? ": " : "", msg);
out:
	cbl_rm_rf(base, NULL);
	for (int i = 0; i < 4; i++)
		free(dirs[i]);
}

/* ---------------------------------------------------------------- the network
 * (issue 13): the default is the sandbox's own network namespace behind
 * slirp4netns; host shares the host's; none is loopback only. */

static long find_kind_arg(const sandbox_plan *p, sandbox_step_kind k, const char *arg)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].kind == k && p->v[i].arg && !strcmp(p->v[i].arg, arg))
			return (long)i;
	return -1;
}

static void test_net_plan_default(void)
{
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	sandbox_plan p = SANDBOX_PLAN_INIT;
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), 0, "net default (root): planned");
	ok(has_ns(&p, SANDBOX_NS_NET) && (sandbox_plan_clone_flags(&p) & CLONE_NEWNET),
	   "net default: a network namespace step");
	long nat = find(&p, SANDBOX_STEP_NAT, NULL);
	ok(nat >= 0 && !strcmp(p.v[nat].arg, "slirp4netns") && p.v[nat].num == 65520,
	   "net default: the NAT helper is slirp4netns, MTU 65520");
	is_int(sandbox_step_side(SANDBOX_STEP_NAT), SANDBOX_IN_PARENT, "net: the NAT starts in the parent");
	is_int(sandbox_step_side(SANDBOX_STEP_RESOLV), SANDBOX_IN_INIT, "net: resolv.conf in the init");
	ok(sides_in_order(&p), "net default: clone, parent, init steps in order");
	long w = find(&p, SANDBOX_STEP_WRITE, SCRATCH "/resolv.conf");
	ok(w >= 0 && !strncmp(p.v[w].arg, "nameserver " SANDBOX_NAT_DNS "\n", 20) &&
	   !strstr(p.v[w].arg + 20, "nameserver"), "net default: resolv.conf names only the NAT's DNS");
	long r = find_kind_arg(&p, SANDBOX_STEP_RESOLV, SCRATCH "/resolv.conf");
	long pv = find(&p, SANDBOX_STEP_PIVOT, NULL);
	ok(r > w && r > find(&p, SANDBOX_STEP_TMPFS, ROOT "/tmp") && r < pv && !strcmp(p.v[r].path, ROOT),
	   "net default: resolv.conf placed in the new root after the mounts, before the pivot");
	long lo = find(&p, SANDBOX_STEP_LOOPBACK, NULL);
	ok(lo >= 0 && lo < pv, "net default: loopback up");
	char d[256];
	is_str(sandbox_step_describe(&p.v[nat], d, sizeof(d)), "start slirp4netns for the network namespace",
	       "net: the NAT step describes itself");
	sandbox_plan_release(&p);

	/* unprivileged: the helper joins the user namespace, so after its maps */
	is_int(sandbox_plan_build(&p, &o, 1000, 1000, NULL), 0, "net default (unprivileged): planned");
	nat = find(&p, SANDBOX_STEP_NAT, NULL);
	ok(nat > find(&p, SANDBOX_STEP_UID_MAP, NULL) && nat > find(&p, SANDBOX_STEP_GID_MAP, NULL) &&
	   has_ns(&p, SANDBOX_NS_USER) && has_ns(&p, SANDBOX_NS_NET), "net default unprivileged: NAT after the id maps");
	sandbox_plan_release(&p);

	/* an image: the NAT's resolver replaces the host's copy */
	o.rootfs = "/images/x/rootfs";
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), 0, "net default with an image: planned");
	ok(find(&p, SANDBOX_STEP_WRITE, ROOT "/etc/resolv.conf") < 0 && find(&p, SANDBOX_STEP_RESOLV, ROOT) >= 0,
	   "net default with an image: the NAT's resolv.conf, not the host's");
	sandbox_plan_release(&p);
}

static void test_net_plan_host_none(void)
{
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	o.network = SANDBOX_NET_HOST;
	sandbox_plan p = SANDBOX_PLAN_INIT;
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), 0, "net host: planned");
	ok(!has_ns(&p, SANDBOX_NS_NET) && !(sandbox_plan_clone_flags(&p) & CLONE_NEWNET),
	   "net host: no network namespace step");
	ok(count(&p, SANDBOX_STEP_NAT) == 0 && count(&p, SANDBOX_STEP_RESOLV) == 0 &&
	   count(&p, SANDBOX_STEP_LOOPBACK) == 0, "net host: no NAT, resolv.conf or loopback step");
	sandbox_plan_release(&p);
	is_int(sandbox_plan_build(&p, &o, 1000, 1000, NULL), 0, "net host (unprivileged): planned");
	ok(!has_ns(&p, SANDBOX_NS_NET), "net host unprivileged: no network namespace");
	sandbox_plan_release(&p);

	o.network = SANDBOX_NET_NONE;
	is_int(sandbox_plan_build(&p, &o, 1000, 1000, NULL), 0, "net none (unprivileged): planned");
	ok(has_ns(&p, SANDBOX_NS_NET) && count(&p, SANDBOX_STEP_LOOPBACK) == 1 && count(&p, SANDBOX_STEP_NAT) == 0 &&
	   count(&p, SANDBOX_STEP_RESOLV) == 0, "net none: a namespace with loopback, no NAT");
	sandbox_plan_release(&p);

	o.network = (sandbox_network)7;
	is_int(sandbox_plan_build(&p, &o, 0, 0, NULL), CBL_EINVAL, "net: an unknown mode is invalid");
	sandbox_plan_release(&p);
}

static void test_net_resolv_conf(void)
{
	char *c = sandbox_nat_resolv_conf("# generated\nnameserver 127.0.0.53\noptions edns0 trust-ad\n"
					  "nameserver\t10.1.1.1\nsearch example.com\n\n");
	is_str(c, "nameserver 10.0.2.3\n# generated\noptions edns0 trust-ad\nsearch example.com\n",
	       "net resolv.conf: the host's nameservers out, its options and search in");
	free(c);
	c = sandbox_nat_resolv_conf(NULL);
	is_str(c, "nameserver 10.0.2.3\n", "net resolv.conf: no host file");
	free(c);
	c = sandbox_nat_resolv_conf("nameservers-are-not-this x\nnameserver 1.1.1.1");
	is_str(c, "nameserver 10.0.2.3\nnameservers-are-not-this x\n", "net resolv.conf: last line unterminated");
	free(c);
}

/* The init's step on a root whose /etc is its own (same filesystem):
 * a symlink is replaced, never written through. */
static void test_net_resolv_put(void)
{
	char t[] = "/tmp/cbl-sbx-resolv-XXXXXX";
	char *dir = mkdtemp(t);
	char *root = cbl_path_join(dir, "root"), *etc = cbl_path_join(dir, "root/etc");
	char *src = cbl_path_join(dir, "resolv.conf"), *victim = cbl_path_join(dir, "victim");
	char *link = cbl_path_join(etc, "resolv.conf");
	cbl_mkdir_p(etc, 0755, NULL);
	cbl_write_file_atomic(src, "nameserver 10.0.2.3\n", 20, 0644, false, NULL);
	cbl_write_file_atomic(victim, "untouched\n", 10, 0644, false, NULL);
	ok(symlink(victim, link) == 0, "net resolv put: /etc/resolv.conf is a symlink out of the root");
	is_int(sandbox_resolv_put(src, root), 0, "net resolv put: placed");
	struct stat st;
	char *data = NULL, *vdata = NULL;
	size_t len = 0;
	ok(lstat(link, &st) == 0 && S_ISREG(st.st_mode), "net resolv put: now a regular file");
	cbl_read_file(link, 4096, &data, &len, NULL);
	is_str(data, "nameserver 10.0.2.3\n", "net resolv put: with the NAT's resolver");
	cbl_read_file(victim, 4096, &vdata, &len, NULL);
	is_str(vdata, "untouched\n", "net resolv put: the link's target untouched");
	free(data);
	free(vdata);
	cbl_rm_rf(dir, NULL);
	free(root);
	free(etc);
	free(src);
	free(victim);
	free(link);
}

/* A real sandbox behind the NAT, when this machine has slirp4netns (and,
 * unprivileged, /dev/net/tun): eth0 configured, the resolver, the helper
 * gone with the sandbox. */
static void test_net_real(void)
{
	if (system("command -v slirp4netns >/dev/null 2>&1") != 0) {
		skip("net real: slirp4netns is not installed");
		return;
	}
	if (geteuid() != 0 && access("/dev/net/tun", R_OK | W_OK) != 0) {
		skip("net real: /dev/net/tun is not usable by this user");
		return;
	}
	char t1[] = "/tmp/cbl-sbx-nat-XXXXXX", t2[] = "/tmp/cbl-sbx-natrw-XXXXXX";
	char *scratch = mkdtemp(t1), *rw = mkdtemp(t2);
	write_script(rw, "net.sh", "cat /etc/resolv.conf; cat /proc/net/route | awk '$1 == \"eth0\" && $2 == "
				   "\"00000000\" {print \"default-route-eth0\"}'\n");
	int out[2];
	ok(pipe2(out, O_CLOEXEC) == 0, "net real: output pipe");
	sandbox_mount m[] = {{SANDBOX_MOUNT_BIND, rw, "/rw", 0}};
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = scratch;
	o.mounts = m;
	o.n_mounts = 1;
	o.out_fd = out[1];
	sandbox_handle *s = NULL;
	cbl_error *e = NULL;
	if (sandbox_start(&s, &o, &e) < 0) {
		ok(0, "net real: started: %s", e ? e->msg : "?");
		cbl_error_free(e);
		goto out;
	}
	pid_t helper = s->nat_pid;
	ok(helper > 0 && kill(helper, 0) == 0, "net real: the helper runs");
	char path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	char *env[] = {path, NULL};
	int ws = -1;
	is_int(run(s, "/rw/net.sh", env, &ws), 0, "net real: spawn and wait");
	char *text = slurp_nonblock(out[0]);
	ok(!strncmp(text, "nameserver 10.0.2.3\n", 20), "net real: resolv.conf names the NAT's DNS");
	ok(strstr(text, "default-route-eth0\n") != NULL, "net real: the default route is eth0's (configured)");
	printf("# output: %s", text);
	free(text);
	sandbox_free(s);
	/* its tap device goes down after free returns (a thread reaps it) */
	for (int i = 0; i < 200 && kill(helper, 0) == 0; i++)
		usleep(10000);
	ok(kill(helper, 0) < 0 && errno == ESRCH, "net real: the helper is killed and reaped with the sandbox");
out:
	close(out[0]);
	close(out[1]);
	cbl_rm_rf(scratch, NULL);
	cbl_rm_rf(rw, NULL);
}

static void test_net(void)
{
	test_net_plan_default();
	test_net_plan_host_none();
	test_net_resolv_conf();
	test_net_resolv_put();
	test_net_real();
}

/* A line of /proc/self/status (the value, caller frees), NULL if absent. */
static char *status_field(const char *name)
{
	char *data = NULL, *val = NULL;
	size_t len = 0;
	if (cbl_read_file("/proc/self/status", 1 << 16, &data, &len, NULL) < 0)
		return NULL;
	size_t nl = strlen(name);
	for (char *l = data; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, name, nl) && l[nl] == ':') {
			char *v = l + nl + 1;
			while (*v == '\t' || *v == ' ')
				v++;
			val = cbl_xstrndup(v, strcspn(v, "\n"));
			break;
		}
	free(data);
	return val;
}

/* privileged: the build's root keeps what the caller's bounding set has,
 * and runs without a filter */
static void test_real_privileged(void)
{
	char t1[] = "/tmp/cbl-sbx-scratch-XXXXXX", t2[] = "/tmp/cbl-sbx-rw-XXXXXX";
	char *scratch = mkdtemp(t1), *rw = mkdtemp(t2);
	write_script(rw, "priv.sh", "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; "
				    "(echo 5 > /proc/sys/kernel/printk_ratelimit) 2>/dev/null && echo sys-rw\n");
	int out[2];
	ok(pipe2(out, O_CLOEXEC) == 0, "privileged: output pipe");
	sandbox_mount m[] = {{SANDBOX_MOUNT_BIND, rw, "/rw", 0}};
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = scratch;
	o.mounts = m;
	o.n_mounts = 1;
	o.out_fd = out[1];
	o.privileged = true;
	sandbox_handle *s = NULL;
	cbl_error *e = NULL;
	char *bnd = status_field("CapBnd");
	char *before = NULL;
	size_t blen = 0;
	cbl_read_file("/proc/sys/kernel/printk_ratelimit", 64, &before, &blen, NULL);
	if (sandbox_start(&s, &o, &e) < 0) {
		printf("# skipped the privileged sandbox: %s\n", e ? e->msg : "?");
		cbl_error_free(e);
		goto out;
	}
	char path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	char *env[] = {path, NULL};
	int ws = -1;
	is_int(run(s, "/rw/priv.sh", env, &ws), 0, "privileged: spawn and wait");
	char *text = slurp_nonblock(out[0]);
	printf("# output: %s", text);
	const char *eff = strstr(text, "CapEff:\t");
	uint64_t caps = eff ? strtoull(eff + 8, NULL, 16) : 0;
	/* as root, the caller's bounding set; in a user namespace all of them */
	ok(geteuid() == 0 ? bnd && caps == strtoull(bnd, NULL, 16) : (caps & (1ULL << CAP_SYS_ADMIN)) != 0,
	   "privileged: every capability (%#llx)", (unsigned long long)caps);
	ok(strstr(text, "NoNewPrivs:\t0\nSeccomp:\t0\n") != NULL, "privileged: no no_new_privs, no filter");
	ok(geteuid() != 0 || strstr(text, "sys-rw") != NULL, "privileged: /proc/sys writable as root");
	free(text);
	sandbox_free(s);
	if (before)
		sandbox_write_str("/proc/sys/kernel/printk_ratelimit", before);
out:
	free(before);
	free(bnd);
	close(out[0]);
	close(out[1]);
	cbl_rm_rf(scratch, NULL);
	cbl_rm_rf(rw, NULL);
}

/* ---------------------------------------------------------------- a normal user's ids
 * (sandbox/idmap.c): /etc/subuid parsing, the plan's maps with and without
 * subordinate ids, an image's root as an overlay in a user namespace, the
 * open files limit, and the map writer against a real (empty) user
 * namespace: the single map, a helper that fails, one that writes nothing,
 * one that hangs (killed at the deadline), and what a helper inherits. */

static sandbox_ids ids_of(uid_t uid, gid_t gid, bool full)
{
	sandbox_ids ids;
	memset(&ids, 0, sizeof(ids));
	ids.uid = uid;
	ids.gid = gid;
	if (full) {
		ids.subuid = 100000;
		ids.nsubuid = 65536;
		ids.subgid = 200000;
		ids.nsubgid = 65536;
		snprintf(ids.newuidmap, sizeof(ids.newuidmap), "/usr/bin/newuidmap");
		snprintf(ids.newgidmap, sizeof(ids.newgidmap), "/usr/bin/newgidmap");
	} else {
		snprintf(ids.missing, sizeof(ids.missing), "u has no subordinate ids in /etc/subuid and /etc/subgid");
	}
	return ids;
}

static void test_ids_subids_parse(void)
{
	const char *text = "# comment\nalice:100000:65536\n1001:165536:65536\nbob:x:1\ncarol:5:0\n"
			   "dave:4294967295:2\nalice:300000:10\n";
	uint32_t s = 0, n = 0;
	sandbox_subids_parse(text, "alice", 1000, &s, &n);
	ok(s == 100000 && n == 65536, "subuid: by name, the first range");
	sandbox_subids_parse(text, "nobody-here", 1001, &s, &n);
	ok(s == 165536 && n == 65536, "subuid: by uid");
	sandbox_subids_parse(text, "bob", 2000, &s, &n);
	ok(s == 0 && n == 0, "subuid: a malformed line is no range");
	sandbox_subids_parse(text, "carol", 2001, &s, &n);
	ok(s == 0 && n == 0, "subuid: a count of 0 is no range");
	sandbox_subids_parse(text, "dave", 2002, &s, &n);
	ok(s == 0 && n == 0, "subuid: a range past the last id is refused");
	sandbox_subids_parse("", "alice", 1000, &s, &n);
	ok(s == 0 && n == 0, "subuid: an empty file");
	sandbox_subids_parse("alice:7:3", "alice", 1000, &s, &n);
	ok(s == 7 && n == 3, "subuid: a last line without a newline");
	sandbox_subids_parse("alicex:7:3\nalic:8:3\n", "alice", 1000, &s, &n);
	ok(s == 0 && n == 0, "subuid: only the whole name matches");
}

static void test_ids_plan_maps(void)
{
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	sandbox_plan p = SANDBOX_PLAN_INIT;
	sandbox_ids full = ids_of(1000, 1001, true);
	is_int(sandbox_plan_build_ids(&p, &o, &full, NULL), 0, "ids: subordinate ids, planned");
	long um = find(&p, SANDBOX_STEP_UID_MAP, NULL), gm = find(&p, SANDBOX_STEP_GID_MAP, NULL);
	ok(um >= 0 && p.v[um].num == 1000, "the uid map: 0 is the caller");
	is_str(um >= 0 ? p.v[um].arg : NULL, "1 100000 65536", "then 1.. its subordinate uids");
	is_str(um >= 0 ? p.v[um].path : NULL, "/usr/bin/newuidmap", "written by newuidmap");
	ok(gm >= 0 && p.v[gm].num == 1001, "the gid map: 0 is the caller's gid");
	is_str(gm >= 0 ? p.v[gm].arg : NULL, "1 200000 65536", "then 1.. its subordinate gids");
	is_str(gm >= 0 ? p.v[gm].path : NULL, "/usr/bin/newgidmap", "written by newgidmap");
	ok(sandbox_step_side(SANDBOX_STEP_UID_MAP) == SANDBOX_IN_PARENT && sides_in_order(&p),
	   "by the parent, before the init goes on");
	long nat = find(&p, SANDBOX_STEP_NAT, NULL);
	ok(nat > um && nat > gm, "the NAT helper joins the namespace after its maps");
	char buf[200];
	ok(um >= 0 && strstr(sandbox_step_describe(&p.v[um], buf, sizeof(buf)), "newuidmap"),
	   "a failure names the helper");
	/* through the bytes the init gets */
	size_t len = 0;
	char *bytes = sandbox_plan_encode(&p, &len);
	sandbox_plan q = SANDBOX_PLAN_INIT;
	is_int(sandbox_plan_decode(&q, bytes, len), 0, "ids: the plan decodes");
	ok(um >= 0 && q.n == p.n && q.v[um].arg && !strcmp(q.v[um].arg, p.v[um].arg) && q.v[um].path &&
	   !strcmp(q.v[um].path, p.v[um].path), "the maps' ranges and helpers survive the bytes");
	sandbox_plan_release(&q);
	free(bytes);
	sandbox_plan_release(&p);

	sandbox_ids single = ids_of(1000, 1001, false);
	ok(!sandbox_ids_full(&single) && sandbox_ids_full(&full), "full: with the range only");
	is_int(sandbox_plan_build_ids(&p, &o, &single, NULL), 0, "ids: no subordinate ids, planned");
	um = find(&p, SANDBOX_STEP_UID_MAP, NULL);
	gm = find(&p, SANDBOX_STEP_GID_MAP, NULL);
	ok(um >= 0 && p.v[um].num == 1000 && !p.v[um].arg && !p.v[um].path && gm >= 0 && p.v[gm].num == 1001 &&
	   !p.v[gm].arg && !p.v[gm].path, "the single mapping, written by the parent itself");
	sandbox_plan_release(&p);

	sandbox_ids root = ids_of(0, 0, false);
	root.missing[0] = '\0';
	is_int(sandbox_plan_build_ids(&p, &o, &root, NULL), 0, "ids: root, planned");
	ok(count(&p, SANDBOX_STEP_UID_MAP) == 0 && !has_ns(&p, SANDBOX_NS_USER), "root: no user namespace, no maps");
	sandbox_plan_release(&p);
}

static void test_ids_plan_image_overlay(void)
{
	char *rootfs = make_rootfs();
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	o.rootfs = rootfs;
	o.network = SANDBOX_NET_NONE;
	sandbox_plan p = SANDBOX_PLAN_INIT;
	sandbox_ids full = ids_of(1000, 1000, true);
	is_int(sandbox_plan_build_ids(&p, &o, &full, NULL), 0, "ids: an image's root unprivileged, planned");
	long ov = find(&p, SANDBOX_STEP_OVERLAY, ROOT);
	ok(ov >= 0, "the image's root is an overlay");
	char *lower = cbl_xasprintf("lowerdir=%s,", rootfs);
	ok(ov >= 0 && !strncmp(p.v[ov].arg, lower, strlen(lower)), "its lower layer is the image's root");
	ok(ov >= 0 && strstr(p.v[ov].arg, "upperdir=" SCRATCH "/upper") && strstr(p.v[ov].arg, "workdir=" SCRATCH "/work"),
	   "its upper layer in the private tmpfs");
	ok(ov >= 0 && strstr(p.v[ov].arg, ",userxattr"), "with userxattr (no trusted.* xattrs in a user namespace)");
	free(lower);
	ok(find(&p, SANDBOX_STEP_TMPFS, ROOT) < 0 && find(&p, SANDBOX_STEP_BIND, ROOT "/usr") < 0,
	   "no tmpfs root, no read-only binds");
	ok(find(&p, SANDBOX_STEP_TMPFS, ROOT "/root") < 0, "the image's own /root (writable)");
	ok(find(&p, SANDBOX_STEP_HOSTS, ROOT "/etc/hosts") > ov, "the hostname in its /etc/hosts");
	ok(find(&p, SANDBOX_STEP_CAPS, NULL) >= 0 && find(&p, SANDBOX_STEP_SECCOMP, NULL) >= 0,
	   "the same confinement");
	check_masks(&p, ROOT);
	sandbox_plan_release(&p);

	o.ro_root = true;
	is_int(sandbox_plan_build_ids(&p, &o, &full, NULL), 0, "ids: the read-only fallback, planned");
	ok(find(&p, SANDBOX_STEP_OVERLAY, ROOT) < 0 && find(&p, SANDBOX_STEP_TMPFS, ROOT) >= 0 &&
	   find(&p, SANDBOX_STEP_TMPFS, ROOT "/root") >= 0, "ro_root: a tmpfs root, a private /root");
	sandbox_plan_release(&p);

	/* the host's / stays read-only unprivileged (overlayfs refuses it) */
	o.rootfs = NULL;
	o.ro_root = false;
	is_int(sandbox_plan_build_ids(&p, &o, &full, NULL), 0, "ids: the host's / unprivileged, planned");
	ok(find(&p, SANDBOX_STEP_OVERLAY, ROOT) < 0 && find(&p, SANDBOX_STEP_TMPFS, ROOT) >= 0,
	   "the host's /: no overlay");
	sandbox_plan_release(&p);
	cbl_rm_rf(rootfs, NULL);
	free(rootfs);
}

static void test_ids_plan_nofile(void)
{
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	sandbox_plan p = SANDBOX_PLAN_INIT;
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	int64_t want = sandbox_nofile_target();
	ok(want > 0 && (rl.rlim_max == RLIM_INFINITY || (uint64_t)want <= (uint64_t)rl.rlim_max) && want <= 1048576,
	   "nofile: the hard limit, at most 1048576");
	for (int mode = 0; mode < 2; mode++) {
		sandbox_ids ids = ids_of(mode ? 1000 : 0, mode ? 1000 : 0, mode == 1);
		if (!mode)
			ids.missing[0] = '\0';
		sandbox_plan_build_ids(&p, &o, &ids, NULL);
		long nf = find(&p, SANDBOX_STEP_NOFILE, NULL);
		ok(nf >= 0 && p.v[nf].num == want && nf < find(&p, SANDBOX_STEP_PIVOT, NULL),
		   "nofile: raised the same way %s", mode ? "unprivileged" : "as root");
		sandbox_plan_release(&p);
	}
	o.privileged = true;
	sandbox_plan_build(&p, &o, 0, 0, NULL);
	ok(find(&p, SANDBOX_STEP_NOFILE, NULL) >= 0, "nofile: privileged too");
	sandbox_plan_release(&p);
}

/* a child in a new user namespace whose maps are still empty, waiting */
static pid_t empty_userns(int *hold)
{
	int pp[2];
	if (pipe(pp) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(pp[1]);
		if (unshare(CLONE_NEWUSER) < 0)
			_exit(1);
		char c;
		while (read(pp[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(pp[0]);
	*hold = pp[1];
	/* until its namespace is there */
	for (int i = 0; i < 200; i++) {
		char a[64], b[64];
		snprintf(a, sizeof(a), "/proc/%ld/ns/user", (long)pid);
		ssize_t la = readlink(a, b, sizeof(b));
		char mine[64];
		ssize_t lm = readlink("/proc/self/ns/user", mine, sizeof(mine));
		if (la > 0 && lm > 0 && (la != lm || memcmp(b, mine, (size_t)la)))
			break;
		usleep(5000);
	}
	return pid;
}

static void end_child(pid_t pid, int hold)
{
	close(hold);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_ids_map_writer(void)
{
	if (geteuid() != 0) {
		skip("ids: the map writer tests need root (a child's maps written from outside)");
		return;
	}
	int hold = -1;
	pid_t pid = empty_userns(&hold);
	if (pid < 0) {
		skip("ids: no user namespace here");
		return;
	}
	cbl_error *e = NULL;
	/* the single map, written by the parent */
	sandbox_step one = {SANDBOX_STEP_UID_MAP, NULL, NULL, 0, NULL};
	is_int(sandbox_idmap_write(&one, pid, &e), 0, "the single uid map is written");
	char path[64], *text = NULL;
	size_t len = 0;
	snprintf(path, sizeof(path), "/proc/%ld/uid_map", (long)pid);
	cbl_read_file(path, 4096, &text, &len, NULL);
	ok(text && strstr(text, "0") && len > 0, "and is there");
	free(text);
	cbl_error_clear(&e);

	/* a helper that fails: its status in the error */
	sandbox_step f = {SANDBOX_STEP_GID_MAP, (char *)"1 200000 10", (char *)"/bin/false", 0, NULL};
	ok(sandbox_idmap_write(&f, pid, &e) == CBL_EIO && e && strstr(e->msg, "/bin/false") &&
	   strstr(e->msg, "exit status 1"), "a failing helper: its exit status");
	cbl_error_clear(&e);
	/* one that succeeds and writes nothing */
	sandbox_step t = {SANDBOX_STEP_GID_MAP, (char *)"1 200000 10", (char *)"/bin/true", 0, NULL};
	ok(sandbox_idmap_write(&t, pid, &e) == CBL_EIO && e && strstr(e->msg, "not written"),
	   "a helper that writes no map: an error all the same");
	cbl_error_clear(&e);

	/* what a helper gets: a script that records its environment and descriptors */
	char dir[] = "/tmp/cbl-ids-XXXXXX";
	if (mkdtemp(dir)) {
		char *script = cbl_xasprintf("%s/helper", dir);
		char *body = cbl_xasprintf("#!/bin/sh\n/usr/bin/env > %s/env\nls -l /proc/$$/fd/ > %s/fds\n"
					   "echo nope >&2\nexit 3\n", dir, dir);
		cbl_write_file_atomic(script, body, strlen(body), 0755, false, NULL);
		char *marker = cbl_xasprintf("%s/marker", dir);
		cbl_write_file_atomic(marker, "", 0, 0644, false, NULL);
		/* not close-on-exec: it must not reach the helper all the same */
		int leak = open(marker, O_RDONLY);
		free(marker);
		setenv("CBL_IDS_SECRET", "s3cr3t", 1);
		sandbox_step h = {SANDBOX_STEP_GID_MAP, (char *)"1 200000 10", script, 0, NULL};
		ok(sandbox_idmap_write(&h, pid, &e) == CBL_EIO && e && strstr(e->msg, "exit status 3") &&
		   strstr(e->msg, "nope"), "the helper's complaint is in the error");
		cbl_error_clear(&e);
		unsetenv("CBL_IDS_SECRET");
		char *p2 = cbl_xasprintf("%s/env", dir), *env = NULL;
		cbl_read_file(p2, 1 << 16, &env, &len, NULL);
		ok(env && !strstr(env, "CBL_IDS_SECRET") && !strstr(env, "HOME="), "the helper gets no environment of ours");
		free(env);
		free(p2);
		p2 = cbl_xasprintf("%s/fds", dir);
		char *fds = NULL;
		cbl_read_file(p2, 1 << 16, &fds, &len, NULL);
		ok(fds && strstr(fds, "/dev/null") && !strstr(fds, "marker"),
		   "no descriptor of ours reaches the helper");
		free(fds);
		free(p2);
		close(leak);
		free(body);
		free(script);
		cbl_rm_rf(dir, NULL);
	}

	/* one that hangs: killed at the deadline */
	sandbox_step sl = {SANDBOX_STEP_UID_MAP, (char *)"1 1 1", (char *)"/bin/sleep", 100, NULL};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ok(sandbox_idmap_write(&sl, pid, &e) == CBL_EIO && e && strstr(e->msg, "did not finish"),
	   "a hanging helper is killed");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ok(secs < SANDBOX_IDMAP_TIMEOUT_MS / 1000.0 + 2, "within the deadline (%.1f s)", secs);
	cbl_error_clear(&e);
	end_child(pid, hold);

	sandbox_ids me;
	sandbox_ids_probe(&me);
	ok(me.uid == 0 && sandbox_ids_full(&me) && !me.missing[0], "probe as root: nothing missing");
	int status = 0;
	ok(sandbox_ids_run(&me, NULL, NULL, &status, &e) == CBL_EINVAL, "ids_run: root needs no namespace");
	cbl_error_clear(&e);
}

/* The host's / through fuse-overlayfs, as an unprivileged sandbox gets it
 * where /dev/fuse is usable; run here as root with fuse_root (the same
 * steps but for the user namespace). */
static void test_ids_fuse_plan(void)
{
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = SCRATCH;
	sandbox_plan p = SANDBOX_PLAN_INIT;
	sandbox_ids ids = ids_of(1000, 1000, true);
	snprintf(ids.fuse_overlayfs, sizeof(ids.fuse_overlayfs), "/usr/bin/fuse-overlayfs");
	is_int(sandbox_plan_build_ids(&p, &o, &ids, NULL), 0, "fuse: the host's / unprivileged, planned");
	long fr = find(&p, SANDBOX_STEP_FUSE_ROOT, ROOT);
	ok(fr >= 0 && p.v[fr].src && !strcmp(p.v[fr].src, "/usr/bin/fuse-overlayfs"), "the root is fuse-overlayfs");
	ok(fr >= 0 && strstr(p.v[fr].arg, "lowerdir=/,") && strstr(p.v[fr].arg, "squash_to_root") &&
	   strstr(p.v[fr].arg, "upperdir=" SCRATCH "/upper"), "of the host's /, squash_to_root, upper in the tmpfs");
	ok(fr > find(&p, SANDBOX_STEP_MKDIR, ROOT) && find(&p, SANDBOX_STEP_TMPFS, ROOT) < 0 &&
	   find(&p, SANDBOX_STEP_BIND, ROOT "/usr") < 0, "its mount point made first; no read-only pieces");
	ok(find(&p, SANDBOX_STEP_TMPFS, ROOT "/home") > fr, "the host's private directories on top");
	ok(find(&p, SANDBOX_STEP_BIND, ROOT "/etc/shadow") > fr || access("/etc/shadow", F_OK) != 0,
	   "secret files covered (the daemon, the user outside, cannot open them to replace them)");
	size_t len = 0;
	char *bytes = sandbox_plan_encode(&p, &len);
	sandbox_plan q = SANDBOX_PLAN_INIT;
	ok(sandbox_plan_decode(&q, bytes, len) == 0 && fr >= 0 && q.v[fr].src && !strcmp(q.v[fr].src, p.v[fr].src),
	   "the helper survives the bytes");
	sandbox_plan_release(&q);
	free(bytes);
	sandbox_plan_release(&p);
	/* a kept fuse-overlayfs layer above the host's / (a checkpoint) */
	o.root_lower = "/var/cache/cbl,ck/root-layer";
	is_int(sandbox_plan_build_ids(&p, &o, &ids, NULL), 0, "fuse: with a kept layer, planned");
	fr = find(&p, SANDBOX_STEP_FUSE_ROOT, ROOT);
	ok(fr >= 0 && strstr(p.v[fr].arg, "lowerdir=/var/cache/cbl\\,ck/root-layer:/,upperdir="),
	   "the kept layer above the host's /, its comma escaped");
	sandbox_plan_release(&p);
	o.root_lower = "/var/cache/a:b/root-layer";
	cbl_error *e = NULL;
	is_int(sandbox_plan_build_ids(&p, &o, &ids, &e), CBL_EINVAL, "fuse: a layer path with ':' refused");
	ok(e && strstr(e->msg, "no escape for ':'"), "and why");
	cbl_error_free(e);
	sandbox_plan_release(&p);
	o.root_lower = NULL;
	ids.fuse_overlayfs[0] = '\0';
	is_int(sandbox_plan_build_ids(&p, &o, &ids, NULL), 0, "fuse: not usable, planned");
	ok(find(&p, SANDBOX_STEP_FUSE_ROOT, NULL) < 0 && find(&p, SANDBOX_STEP_TMPFS, ROOT) >= 0,
	   "without fuse-overlayfs: the read-only root");
	sandbox_plan_release(&p);
}

static void test_ids_fuse_real(void)
{
	sandbox_ids me;
	sandbox_ids_probe(&me);
	if (geteuid() != 0 || !me.fuse_overlayfs[0]) {
		skip("fuse: a real fuse-overlayfs root needs root and fuse-overlayfs here (%s)",
		     me.fuse_missing[0] ? me.fuse_missing : "not root");
		return;
	}
	char t1[] = "/tmp/cbl-sbx-fuse-XXXXXX";
	char *scratch = mkdtemp(t1);
	int out[2];
	if (!scratch || pipe2(out, O_CLOEXEC) < 0)
		return;
	char *rw = cbl_xasprintf("%s-rw", scratch);
	mkdir(rw, 0755);
	write_script(rw, "fuse.sh", "awk '$5 == \"/\" {print \"rootfs=\" $9}' /proc/self/mountinfo | tail -1; "
				    "echo x > /usr/cbl-sbx-fuse && echo wrote-usr; cat /usr/cbl-sbx-fuse; "
				    "ps -e -o comm= | grep -c fuse-overlayfs; ls /home | grep -vxc codebuild-user\n");
	sandbox_mount m[] = {{SANDBOX_MOUNT_BIND, rw, "/rw", 0}};
	sandbox_opts o = SANDBOX_OPTS_INIT;
	o.scratch = scratch;
	o.mounts = m;
	o.n_mounts = 1;
	o.network = SANDBOX_NET_NONE;
	o.out_fd = out[1];
	o.fuse_root = true;
	sandbox_handle *s = NULL;
	cbl_error *e = NULL;
	is_int(sandbox_start(&s, &o, &e), 0, "fuse: a sandbox on fuse-overlayfs starts");
	if (e)
		printf("# %s\n", e->msg);
	cbl_error_clear(&e);
	if (s) {
		ok(sandbox_warnings(s)[0] == NULL, "fuse: no fallback");
		ok(s->fuse_pid > 0 && sandbox_owns(s, s->fuse_pid), "fuse: the daemon is the sandbox's");
		char path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
		char *env[] = {path, NULL};
		int ws = -1;
		is_int(run(s, "/rw/fuse.sh", env, &ws), 0, "fuse: a command runs");
		char *text = slurp_nonblock(out[0]);
		printf("# output: %s", text);
		ok(strstr(text, "rootfs=fuse") != NULL, "fuse: / is the fuse mount");
		ok(strstr(text, "wrote-usr\nx\n0\n0\n") != NULL,
		   "fuse: /usr writable; the daemon out of the build's sight; /home still private");
		free(text);
		pid_t daemon = s->fuse_pid;
		sandbox_free(s);
		ok(kill(daemon, 0) < 0 && errno == ESRCH, "fuse: the daemon is gone after free");
	}
	ok(access("/usr/cbl-sbx-fuse", F_OK) != 0, "fuse: nothing written to the host's /usr");
	close(out[0]);
	close(out[1]);
	cbl_rm_rf(scratch, NULL);
	cbl_rm_rf(rw, NULL);
	free(rw);
}

static void test_ids(void)
{
	test_ids_subids_parse();
	test_ids_plan_maps();
	test_ids_plan_image_overlay();
	test_ids_plan_nofile();
	test_ids_map_writer();
	test_ids_fuse_plan();
	test_ids_fuse_real();
}

int main(int argc, char **argv)
{
	/* the real sandbox's init is this program exec'd again */
	if (argc > 1 && !strcmp(argv[1], SANDBOX_INIT_ARG))
		return sandbox_init_main(argc, argv);
	test_tables();
	test_plan_root_host();
	test_plan_root_image();
	test_plan_root_upper();
	test_plan_private_lower();
	test_plan_checkpoint_layers();
	test_plan_unprivileged();
	test_plan_network_none();
	test_plan_mounts();
	test_plan_host_view();
	test_plan_targets_through_links();
	test_submounts_parse();
	test_fuse_aliases();
	test_plan_limits();
	test_plan_invalid();
	test_plan_privileged();
	test_plan_bytes();
	test_confinement_tables();
	test_real();
	test_real_overlays();
	test_real_private_lower();
	test_real_copy_out();
	test_net();
	test_real_privileged();
	test_ids();
	return tap_done();
}
