/* sandbox/hostview.c - what the host's / shows a sandbox (rootfs NULL), and
 * what it keeps to itself.
 *
 * The host image is the host's system: its programs, libraries and
 * configuration.  It is not the host's people or services: a CodeBuild
 * container has an empty /root and /home, its own /run and /tmp, and no
 * password hashes or host keys.  So the view:
 *   - mounts an empty tmpfs on each private directory (the table below), as
 *     root and unprivileged alike; one that is a symlink (/var/run -> /run,
 *     /home -> /var/home) hides what it points to; with
 *     sandbox_opts.private_lower, the kept contents of one as the read-only
 *     lower layer of an overlay on its tmpfs;
 *   - masks the files that hold secrets: as root (the view is an overlay)
 *     each is replaced by an empty file in the overlay, so a build may still
 *     run useradd or apt-get, which rewrite them; unprivileged (a read-only
 *     view) an empty read-only file is bound over it.  /etc/sudoers keeps one
 *     line, root's, so `sudo` as root works as in the service's images;
 *   - masks the directories that hold secrets with an empty tmpfs;
 *   - has the curated images' build user, codebuild-user (each of their
 *     Dockerfiles runs `useradd codebuild-user` on a base image without
 *     users: uid and gid 1000), when the host lacks it: its lines added to
 *     the view's /etc/passwd and /etc/group (as root written in the overlay,
 *     unprivileged generated files bound over them read-only), before any
 *     host entry with the same id so the id's name is codebuild-user, and
 *     an empty home, /home/codebuild-user (its own tmpfs, owned by it; a
 *     directory of the private /home unprivileged, where 1000 is not mapped;
 *     the kept one when private_lower's home/ has it);
 *   - as root, shows the host's other mounts: the root overlay is one
 *     filesystem, so a separate /opt, /usr/local, /boot or a bind mount
 *     would be an empty directory.  Each real filesystem in
 *     /proc/self/mountinfo is overlaid like the root (its writes vanish with
 *     the sandbox), a read-only one (or one overlayfs refuses as a lower
 *     layer: case-insensitive ones) bound read-only; pseudo filesystems,
 *     mounts under the private directories, under what the caller masks
 *     (its state) and the container engines' storage (other containers'
 *     roots, many and none of the build's business) are left out.
 *     Unprivileged, the top-level binds are recursive: submounts come along.
 * With an image (rootfs) none of this applies: the image is the view, and
 * nothing of the host is in it but what the caller binds.
 */
#include "sandbox/sandbox_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"

#include <dirent.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

#define N(a) (sizeof(a) / sizeof(*(a)))

/* ---------------------------------------------------------------- tables */

static const struct private_dir {
	const char *path;
	unsigned mode;
	bool system;   /* mounted by plan_system already (every sandbox has it) */
} private_dirs[] = {
	{"/root", 0700, false},  {"/home", 0755, false}, {"/run", 0755, false},
	{"/var/run", 0755, false}, {"/tmp", 01777, true}, {"/var/tmp", 01777, false},
	{"/srv", 0755, false},   {"/mnt", 0755, false},  {"/media", 0755, false},
};

/* replaced by content (as root) or an empty file (unprivileged) */
static const struct masked_file {
	const char *path;
	const char *content;
	unsigned mode;
} masked_files[] = {
	{"/etc/shadow", "", 0640},
	{"/etc/shadow-", "", 0640},
	{"/etc/gshadow", "", 0640},
	{"/etc/gshadow-", "", 0640},
	{"/etc/sudoers", "root ALL=(ALL:ALL) ALL\n", 0440},
	{"/etc/security/opasswd", "", 0600},
	{"/var/backups/shadow.bak", "", 0600},
	{"/var/backups/gshadow.bak", "", 0600},
};

/* users every view has, as in the curated images (added when the host has
 * no user of that name) */
static const struct view_user {
	const char *name;
	unsigned uid, gid;
	const char *home, *shell;
} view_users[] = {
	{"codebuild-user", 1000, 1000, "/home/codebuild-user", "/bin/sh"},
};

/* files of /etc/ssh matching this: the host's private keys */
#define SSH_HOST_KEYS "ssh_host_*_key"

static const char *const masked_dirs[] = {"/etc/sudoers.d", "/etc/ssl/private"};

/* not shown as submounts: kernel interfaces (the sandbox has its own /proc,
 * /dev; /sys is the privilege code's), and the container engines' storage */
static const char *const never_shown[] = {
	"/proc", "/sys", "/dev", "/var/lib/docker", "/var/lib/containers", "/var/lib/containerd",
};

static const char *const pseudo_fs[] = {
	"proc",    "sysfs",      "devtmpfs",  "devpts",   "cgroup",     "cgroup2",  "securityfs",
	"debugfs", "tracefs",    "pstore",    "bpf",      "mqueue",     "hugetlbfs", "configfs",
	"fusectl", "binfmt_misc", "autofs",   "efivarfs", "nsfs",       "rpc_pipefs", "selinuxfs",
	"nfsd",    "fuse.lxcfs",
};

/* overlayfs refuses them as lower layers (case-insensitive names) */
static const char *const no_overlay_fs[] = {"vfat", "msdos", "exfat", "ntfs", "ntfs3", "iso9660", "udf", "hfsplus"};

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(s, list[i]))
			return true;
	return false;
}

/* path is prefix or below it */
static bool under(const char *path, const char *prefix)
{
	size_t l = strlen(prefix);
	while (l > 1 && prefix[l - 1] == '/')
		l--;
	if (l == 1 && prefix[0] == '/')
		return true;
	return !strncmp(path, prefix, l) && (path[l] == '\0' || path[l] == '/');
}

static bool under_private(const char *path)
{
	for (size_t i = 0; i < N(private_dirs); i++)
		if (under(path, private_dirs[i].path))
			return true;
	return false;
}

bool sandbox_host_private(const char *path)
{
	return under_private(path);
}

bool sandbox_host_private_top(const char *name)
{
	for (size_t i = 0; i < N(private_dirs); i++) {
		const char *p = private_dirs[i].path + 1;
		if (!strchr(p, '/') && !strcmp(p, name))
			return true;
	}
	return false;
}

/* ---------------------------------------------------------------- mountinfo */

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static char *unescape(const char *s, size_t len)
{
	char *out = cbl_xmalloc(len + 1), *o = out;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' &&
		    s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			*o++ = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

static unsigned long mount_flags(const char *opts, size_t len)
{
	static const struct {
		const char *name;
		unsigned long flag;
	} known[] = {{"ro", MS_RDONLY}, {"nosuid", MS_NOSUID}, {"nodev", MS_NODEV}, {"noexec", MS_NOEXEC}};
	unsigned long flags = 0;
	const char *end = opts + len;
	while (opts < end) {
		const char *c = memchr(opts, ',', (size_t)(end - opts));
		size_t l = c ? (size_t)(c - opts) : (size_t)(end - opts);
		for (size_t i = 0; i < N(known); i++)
			if (strlen(known[i].name) == l && !memcmp(opts, known[i].name, l))
				flags |= known[i].flag;
		opts += l + 1;
	}
	return flags;
}

typedef struct mi_entry {
	long id, parent;
	char *path, *fstype, *root, *dev;
	unsigned long flags;
	enum { MI_UNDECIDED, MI_ROOT, MI_SHOWN, MI_LEFT_OUT } state;
} mi_entry;

/* One line: "id parent maj:min root mountpoint opts [optional...] - fstype
 * source superopts".  False for a line that does not parse. */
static bool parse_line(const char *line, size_t len, mi_entry *e)
{
	const char *f[7];
	size_t fl[7];
	const char *p = line, *end = line + len;
	int n = 0;
	bool dash = false;
	const char *fstype = NULL;
	size_t fstype_len = 0;
	while (p < end) {
		while (p < end && *p == ' ')
			p++;
		const char *s = p;
		while (p < end && *p != ' ')
			p++;
		if (p == s)
			break;
		if (dash) {
			fstype = s;
			fstype_len = (size_t)(p - s);
			break;
		}
		if (n >= 6 && p - s == 1 && *s == '-') {
			dash = true;
			continue;
		}
		if (n < 7) {
			f[n] = s;
			fl[n] = (size_t)(p - s);
		}
		n++;
	}
	if (n < 6 || !fstype)
		return false;
	char *endp;
	e->id = strtol(f[0], &endp, 10);
	if (endp != f[0] + fl[0])
		return false;
	e->parent = strtol(f[1], &endp, 10);
	if (endp != f[1] + fl[1])
		return false;
	e->path = unescape(f[4], fl[4]);
	e->root = unescape(f[3], fl[3]);
	e->dev = cbl_xstrndup(f[2], fl[2]);
	e->fstype = unescape(fstype, fstype_len);
	e->flags = mount_flags(f[5], fl[5]);
	e->state = MI_UNDECIDED;
	return true;
}

static void mi_release(mi_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].path);
		free(v[i].fstype);
		free(v[i].root);
		free(v[i].dev);
	}
	free(v);
}

static mi_entry *find_id(mi_entry *v, size_t n, long id)
{
	for (size_t i = n; i-- > 0;)
		if (v[i].id == id)
			return &v[i];
	return NULL;
}

/* whether entry i is left out on its own account */
static bool left_out(const mi_entry *v, size_t n, size_t i, const char *const *hidden)
{
	const mi_entry *e = &v[i];
	if (e->path[0] != '/' || in_list(e->fstype, pseudo_fs, N(pseudo_fs)) || under_private(e->path))
		return true;
	for (size_t k = 0; k < N(never_shown); k++)
		if (under(e->path, never_shown[k]))
			return true;
	for (const char *const *h = hidden; h && *h; h++)
		if (under(e->path, *h))
			return true;
	/* the sandbox names its own view of these */
	if (!strcmp(e->path, "/etc/hosts") || !strcmp(e->path, "/etc/hostname"))
		return true;
	/* covered by a later mount on the same point */
	for (size_t k = i + 1; k < n; k++)
		if (!strcmp(v[k].path, e->path))
			return true;
	return false;
}

static int decide(mi_entry *v, size_t n, size_t i, const char *const *hidden, int depth)
{
	mi_entry *e = &v[i];
	if (e->state != MI_UNDECIDED)
		return e->state;
	if (!strcmp(e->path, "/")) {
		e->state = MI_ROOT;
		return e->state;
	}
	if (left_out(v, n, i, hidden)) {
		e->state = MI_LEFT_OUT;
		return e->state;
	}
	/* on a mount that is left out (or hidden under one): left out too */
	mi_entry *parent = e->parent != e->id ? find_id(v, n, e->parent) : NULL;
	if (parent && depth < 64 && decide(v, n, (size_t)(parent - v), hidden, depth + 1) == MI_LEFT_OUT)
		e->state = MI_LEFT_OUT;
	else
		e->state = MI_SHOWN;
	return e->state;
}

/* Every line of a mountinfo text that parses (caller releases: mi_release). */
static mi_entry *parse_all(const char *text, size_t *n_out)
{
	mi_entry *v = NULL;
	size_t n = 0, cap = 0;
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		mi_entry e;
		if (parse_line(line, len, &e)) {
			CBL_GROW(v, n + 1, cap);
			v[n++] = e;
		}
		line = nl ? nl + 1 : NULL;
	}
	*n_out = n;
	return v;
}

void sandbox_submounts_parse(sandbox_submounts *out, const char *text, const char *const *hidden)
{
	size_t n = 0;
	mi_entry *v = parse_all(text, &n);
	for (size_t i = 0; i < n; i++) {
		if (decide(v, n, i, hidden, 0) != MI_SHOWN)
			continue;
		CBL_GROW(out->v, out->n + 1, out->cap);
		out->v[out->n++] = (sandbox_submount){
			cbl_xstrdup(v[i].path), v[i].flags,
			!(v[i].flags & MS_RDONLY) && !in_list(v[i].fstype, no_overlay_fs, N(no_overlay_fs))};
	}
	mi_release(v, n);
}

/* A directory reachable under two names, as a bind mount makes it (the same
 * device and inode at its source and at its mount point), is one to
 * fuse-overlayfs: it takes the second for a hard link of the first and
 * keeps one name (register_inode; tried: with /var/lib/X/src bound at
 * /opt/y, /opt/y is gone once /var/lib/X was listed, and a kernel mount on
 * the sandbox's /opt/y is detached with it).  So, for the daemon's own
 * mount namespace (sandbox/fuse.c), the host's mounts that may be such
 * another name: a bind of a directory (root not "/") or a filesystem
 * mounted more than once, topmost on its mount point, with no mount
 * beneath it (an overlay on it would hide those), outside the private
 * directories (covered in the view anyway). */
void sandbox_fuse_aliases(const char *text, cbl_strv *out)
{
	size_t n = 0;
	mi_entry *v = parse_all(text, &n);
	for (size_t i = 0; i < n; i++) {
		const mi_entry *e = &v[i];
		if (e->path[0] != '/' || !strcmp(e->path, "/") || in_list(e->fstype, pseudo_fs, N(pseudo_fs)) ||
		    under_private(e->path))
			continue;
		bool alias = strcmp(e->root, "/") != 0, alone = true;
		for (size_t k = 0; k < n && alone; k++) {
			if (k == i)
				continue;
			if (!strcmp(v[k].dev, e->dev))
				alias = true;
			/* covered later, or a mount beneath it */
			if ((k > i && !strcmp(v[k].path, e->path)) ||
			    (strcmp(v[k].path, e->path) && under(v[k].path, e->path)))
				alone = false;
		}
		if (alias && alone)
			cbl_strv_push(out, e->path);
	}
	mi_release(v, n);
}

void sandbox_submounts_release(sandbox_submounts *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].path);
	free(s->v);
	*s = (sandbox_submounts)SANDBOX_SUBMOUNTS_INIT;
}

/* ---------------------------------------------------------------- steps */

/* The real path of a private directory that is a symlink (what it hides),
 * when it is a directory outside the private ones; NULL otherwise. */
static char *private_target(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISLNK(st.st_mode))
		return NULL;
	char *real = realpath(path, NULL);
	if (real && (stat(real, &st) < 0 || !S_ISDIR(st.st_mode) || under_private(real))) {
		free(real);
		real = NULL;
	}
	return real;
}

/* What the submounts leave out besides the tables: the scratch, the
 * caller's masks, what symlinked private directories point to. */
static void hidden_paths(const sandbox_opts *o, cbl_strv *out)
{
	cbl_strv_push(out, o->scratch);
	for (size_t i = 0; i < o->n_mounts; i++) {
		if (o->mounts[i].kind != SANDBOX_MOUNT_MASK)
			continue;
		char *real = realpath(o->mounts[i].target, NULL);
		cbl_strv_push(out, real ? real : o->mounts[i].target);
		free(real);
	}
	for (size_t i = 0; i < N(private_dirs); i++) {
		char *real = private_target(private_dirs[i].path);
		if (real)
			cbl_strv_push_take(out, real);
	}
}

void sandbox_plan_submounts(sandbox_plan *p, const sandbox_opts *o, const char *root)
{
	char *text = NULL;
	size_t len = 0;
	if (cbl_read_file("/proc/self/mountinfo", 16 << 20, &text, &len, NULL) < 0)
		return;
	cbl_strv hidden = CBL_STRV_INIT;
	hidden_paths(o, &hidden);
	sandbox_submounts subs = SANDBOX_SUBMOUNTS_INIT;
	sandbox_submounts_parse(&subs, text, (const char *const *)hidden.v);
	for (size_t i = 0; i < subs.n; i++) {
		const sandbox_submount *m = &subs.v[i];
		char *opts = NULL;
		if (m->overlay) {
			char name[64];
			snprintf(name, sizeof(name), "sub%zu-upper", i);
			char *upper = cbl_path_join(o->scratch, name);
			snprintf(name, sizeof(name), "sub%zu-work", i);
			char *work = cbl_path_join(o->scratch, name);
			sandbox_plan_add(p, SANDBOX_STEP_MKDIR, NULL, upper, 0);
			sandbox_plan_add(p, SANDBOX_STEP_MKDIR, NULL, work, 0);
			opts = sandbox_overlay_opts(m->path, upper, work);
			free(upper);
			free(work);
		}
		sandbox_plan_add_in(p, root, SANDBOX_STEP_SUBMOUNT, opts, m->path,
				    (int64_t)(m->flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC)));
		p->v[p->n - 1].src = cbl_xstrdup(m->path);
		free(opts);
	}
	sandbox_submounts_release(&subs);
	cbl_strv_release(&hidden);
	free(text);
}

/* the empty file bound over masked files (unprivileged), in the scratch */
static const char *mask_file(sandbox_plan *p, const sandbox_opts *o, char **owned)
{
	if (!*owned) {
		*owned = cbl_path_join(o->scratch, "mask-file");
		bool have = false;
		for (size_t i = 0; i < p->n && !have; i++)
			have = p->v[i].kind == SANDBOX_STEP_WRITE && !strcmp(p->v[i].path, *owned);
		if (!have)
			sandbox_plan_add(p, SANDBOX_STEP_WRITE, "", *owned, 0444);
	}
	return *owned;
}

static void mask_with_file(sandbox_plan *p, const sandbox_opts *o, const char *root, const char *path,
			   char **maskf)
{
	char *parent = cbl_xstrdup(path);
	char *slash = strrchr(parent, '/');
	slash[slash == parent ? 1 : 0] = '\0';
	sandbox_plan_add_in(p, root, SANDBOX_STEP_MKDIR, NULL, parent, 0);
	free(parent);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_BIND, mask_file(p, o, maskf), path, 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_REMOUNT_RO, NULL, path, 0);
}

/* a secret file of the host: as root replaced in the overlay, else covered */
static void mask_host_file(sandbox_plan *p, const sandbox_opts *o, const char *root, const char *path,
			   const char *content, unsigned mode, bool userns, char **maskf)
{
	struct stat st;
	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return;
	if (userns)
		mask_with_file(p, o, root, path, maskf);
	else
		sandbox_plan_add_in(p, root, SANDBOX_STEP_WRITE, content, path, mode);
}

static void mask_dir(sandbox_plan *p, const char *root, const char *path, const struct stat *st)
{
	sandbox_plan_add_in(p, root, SANDBOX_STEP_MKDIR, NULL, path, 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_TMPFS, NULL, path, st->st_mode & 07777);
}

void sandbox_plan_mask(sandbox_plan *p, const sandbox_opts *o, const char *root, const char *target)
{
	char *real = realpath(target, NULL);
	struct stat st;
	char *maskf = NULL;
	bool hidden = false;
	if (!real || stat(real, &st) < 0 || !strcmp(real, "/"))
		goto out; /* nothing there; or all of it, which is no view at all */
	hidden = under_private(real);
	for (size_t i = 0; i < N(never_shown) && !hidden; i++)
		hidden = under(real, never_shown[i]);
	if (hidden)
		goto out; /* not in the view anyway */
	if (S_ISDIR(st.st_mode))
		mask_dir(p, root, real, &st);
	else
		mask_with_file(p, o, root, real, &maskf);
out:
	free(maskf);
	free(real);
}

/* /etc/resolv.conf as a symlink into a private directory (systemd-resolved's
 * ../run/systemd/resolve/stub-resolv.conf): its target, recreated in the
 * private tmpfs, so names still resolve. */
static void keep_resolv_conf(sandbox_plan *p, const char *root)
{
	struct stat st;
	if (lstat("/etc/resolv.conf", &st) < 0 || !S_ISLNK(st.st_mode))
		return;
	char *real = realpath("/etc/resolv.conf", NULL);
	char *data = NULL;
	size_t len = 0;
	if (real && under_private(real) && cbl_read_file(real, 1 << 16, &data, &len, NULL) == 0) {
		char *parent = cbl_xstrdup(real);
		*strrchr(parent, '/') = '\0';
		if (*parent)
			sandbox_plan_add_in(p, root, SANDBOX_STEP_MKDIR, NULL, parent, 0);
		sandbox_plan_add_in(p, root, SANDBOX_STEP_WRITE, data, real, 0644);
		free(parent);
	}
	free(data);
	free(real);
}

static void plan_view_users(sandbox_plan *p, const sandbox_opts *o, const char *root, bool userns);

/* st is on the filesystem of /, not a mount of its own (whose files the
 * root overlay's mask could not hide: the submounts bind it) */
static bool same_fs_as_root(const struct stat *st)
{
	struct stat rst;
	return stat("/", &rst) == 0 && rst.st_dev == st->st_dev;
}

static const sandbox_private_dir kept_private[] = {
	{"/tmp", "tmp"}, {"/var/tmp", "var-tmp"}, {"/root", "root"}, {"/home", "home"},
	{"/run", "run"}, {"/srv", "srv"},         {"/mnt", "mnt"},   {"/media", "media"},
};

const sandbox_private_dir *sandbox_private_dirs(size_t *n)
{
	*n = N(kept_private);
	return kept_private;
}

void sandbox_plan_private_lower(sandbox_plan *p, const sandbox_opts *o, const char *root, const char *dir,
				const char *path, unsigned mode, bool in_userns)
{
	const char *name = NULL;
	for (size_t i = 0; i < N(kept_private) && !name; i++)
		if (!strcmp(kept_private[i].path, dir))
			name = kept_private[i].name;
	if (!o->private_lower || !name)
		return;
	char *lower = cbl_path_join(o->private_lower, name);
	struct stat st;
	if (lstat(lower, &st) == 0 && S_ISDIR(st.st_mode)) {
		/* upper and work in the tmpfs just mounted on path, which the
		 * overlay then covers (overlayfs holds them from its mount);
		 * the upper's root gives the directory its mode */
		char *in_u = cbl_xasprintf("%s/.cbl-upper", path), *in_w = cbl_xasprintf("%s/.cbl-work", path);
		char *u = cbl_xasprintf("%s%s", root, in_u), *w = cbl_xasprintf("%s%s", root, in_w);
		sandbox_plan_add(p, SANDBOX_STEP_MKDIR, NULL, u, mode ? mode : 0755);
		sandbox_plan_add(p, SANDBOX_STEP_MKDIR, NULL, w, 0700);
		char *opts = sandbox_overlay_opts(lower, u, w);
		if (in_userns) {
			char *x = cbl_xasprintf("%s,userxattr", opts);
			free(opts);
			opts = x;
		}
		sandbox_plan_add_in(p, root, SANDBOX_STEP_OVERLAY, opts, path, 0);
		free(opts);
		free(in_u);
		free(in_w);
		free(u);
		free(w);
	}
	free(lower);
}

void sandbox_plan_host_private(sandbox_plan *p, const sandbox_opts *o, const char *root, bool userns,
			       bool in_userns)
{
	struct stat st;
	char *maskf = NULL;
	for (size_t i = 0; i < N(private_dirs); i++) {
		const struct private_dir *d = &private_dirs[i];
		char *real = private_target(d->path);
		const char *path = real ? real : d->path;
		if (!real && (d->system || lstat(d->path, &st) < 0 || !S_ISDIR(st.st_mode)))
			continue;
		if (!real && o->root_upper && !strcmp(d->path, "/root") && same_fs_as_root(&st))
			continue; /* hidden by root_upper's mask: its changes stay readable */
		sandbox_plan_add_in(p, root, SANDBOX_STEP_MKDIR, NULL, path, 0);
		sandbox_plan_add_in(p, root, SANDBOX_STEP_TMPFS, NULL, path, d->mode);
		sandbox_plan_private_lower(p, o, root, d->path, path, d->mode, in_userns);
		free(real);
	}
	keep_resolv_conf(p, root);
	for (size_t i = 0; i < N(masked_files); i++)
		mask_host_file(p, o, root, masked_files[i].path, masked_files[i].content, masked_files[i].mode, userns,
			       &maskf);
	DIR *dir = opendir("/etc/ssh");
	struct dirent *de;
	while (dir && (de = readdir(dir))) {
		if (fnmatch(SSH_HOST_KEYS, de->d_name, 0))
			continue;
		char *path = cbl_path_join("/etc/ssh", de->d_name);
		mask_host_file(p, o, root, path, "", 0600, userns, &maskf);
		free(path);
	}
	if (dir)
		closedir(dir);
	for (size_t i = 0; i < N(masked_dirs); i++)
		if (lstat(masked_dirs[i], &st) == 0 && S_ISDIR(st.st_mode))
			mask_dir(p, root, masked_dirs[i], &st);
	free(maskf);
	plan_view_users(p, o, root, userns);
}

/* ---------------------------------------------------------------- users */

/* The line of text's entry named name ("name:..."), or NULL. */
static const char *db_entry(const char *text, const char *name)
{
	size_t l = strlen(name);
	for (const char *line = text; line && *line;) {
		if (!strncmp(line, name, l) && line[l] == ':')
			return line;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return NULL;
}

/* The third field (uid in passwd, gid in group) of an entry, or -1. */
static long db_id(const char *line)
{
	const char *c = line;
	for (int i = 0; i < 2 && c; i++) {
		c = strchr(c, ':');
		if (c)
			c++;
	}
	if (!c || *c < '0' || *c > '9')
		return -1;
	char *end;
	long v = strtol(c, &end, 10);
	return *end == ':' || *end == '\n' || !*end ? v : -1;
}

/* text with entry inserted before the first entry whose id is id (so a
 * lookup of the id finds it), else at the end.  Caller frees. */
static char *db_insert(const char *text, const char *entry, long id)
{
	cbl_buf b = CBL_BUF_INIT;
	const char *at = NULL;
	for (const char *line = text; line && *line && !at;) {
		if (*line != '#' && db_id(line) == id)
			at = line;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	if (at) {
		cbl_buf_append(&b, text, (size_t)(at - text));
		cbl_buf_puts(&b, entry);
		cbl_buf_puts(&b, at);
	} else {
		cbl_buf_puts(&b, text);
		if (b.len && b.ptr[b.len - 1] != '\n')
			cbl_buf_putc(&b, '\n');
		cbl_buf_puts(&b, entry);
	}
	return cbl_buf_detach(&b);
}

bool sandbox_host_view_user(const char *name)
{
	for (size_t i = 0; i < N(view_users); i++)
		if (!strcmp(view_users[i].name, name))
			return true;
	return false;
}

/* path of the view replaced by content: written in the overlay as root,
 * else a file of the scratch bound over it read-only */
static void replace_view_file(sandbox_plan *p, const sandbox_opts *o, const char *root, const char *path,
			      const char *content, mode_t mode, bool userns)
{
	if (!userns) {
		sandbox_plan_add_in(p, root, SANDBOX_STEP_WRITE, content, path, mode);
		return;
	}
	const char *base = strrchr(path, '/') + 1;
	char *name = cbl_xasprintf("view-%s", base);
	char *file = cbl_path_join(o->scratch, name);
	sandbox_plan_add(p, SANDBOX_STEP_WRITE, content, file, mode);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_BIND, file, path, 0);
	sandbox_plan_add_in(p, root, SANDBOX_STEP_REMOUNT_RO, NULL, path, 0);
	free(file);
	free(name);
}

/* private_lower's /home holds the view user's home (its owner and mode
 * kept): that, not a fresh tmpfs of the user's */
static bool kept_home(const sandbox_opts *o, const char *home)
{
	if (!o->private_lower || strncmp(home, "/home/", 6))
		return false;
	char *p = cbl_path_join(o->private_lower, home + 1);
	struct stat st;
	bool kept = lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
	free(p);
	return kept;
}

static void plan_view_users(sandbox_plan *p, const sandbox_opts *o, const char *root, bool userns)
{
	char *passwd = NULL, *group = NULL;
	size_t len = 0;
	struct stat pst, gst, hst;
	if (lstat("/etc/passwd", &pst) < 0 || !S_ISREG(pst.st_mode) || lstat("/etc/group", &gst) < 0 ||
	    !S_ISREG(gst.st_mode) || cbl_read_file("/etc/passwd", 4 << 20, &passwd, &len, NULL) < 0 ||
	    cbl_read_file("/etc/group", 4 << 20, &group, &len, NULL) < 0)
		goto out;
	bool changed = false;
	bool home_dir = stat("/home", &hst) == 0 && S_ISDIR(hst.st_mode);
	for (size_t i = 0; i < N(view_users); i++) {
		const struct view_user *u = &view_users[i];
		if (db_entry(passwd, u->name))
			continue; /* the host's own */
		long gid = u->gid;
		const char *g = db_entry(group, u->name);
		if (g && db_id(g) >= 0) {
			gid = db_id(g);
		} else {
			char *entry = cbl_xasprintf("%s:x:%u:\n", u->name, u->gid);
			char *ng = db_insert(group, entry, u->gid);
			free(entry);
			free(group);
			group = ng;
		}
		char *entry = cbl_xasprintf("%s:x:%u:%ld::%s:%s\n", u->name, u->uid, gid, u->home, u->shell);
		char *np = db_insert(passwd, entry, u->uid);
		free(entry);
		free(passwd);
		passwd = np;
		changed = true;
		if (home_dir) {
			sandbox_plan_add_in(p, root, SANDBOX_STEP_MKDIR, NULL, u->home, 0);
			if (!userns && !kept_home(o, u->home)) {
				char *own = cbl_xasprintf("uid=%u,gid=%ld", u->uid, gid);
				sandbox_plan_add_in(p, root, SANDBOX_STEP_TMPFS, own, u->home, 0750);
				free(own);
			}
		}
	}
	if (changed) {
		replace_view_file(p, o, root, "/etc/passwd", passwd, pst.st_mode & 07777, userns);
		replace_view_file(p, o, root, "/etc/group", group, gst.st_mode & 07777, userns);
	}
out:
	free(passwd);
	free(group);
}
