/* sandbox/sandbox_internal.h - the plan, and what the files of sandbox/
 * share: plan.c builds the plan, exec.c runs its steps, init.c is the init
 * process, cgroup.c the limits, net.c the NAT helper and the resolver
 * configuration, sandbox.c the handle.  Tests include it to
 * inspect plans without running them.
 *
 * A plan is a list of typed steps.  Each kind of step runs in one place
 * (sandbox_step_side): at the clone (namespaces), in the parent while the
 * init waits (id maps, cgroups), or in the init, in order.  A new isolation
 * feature is a new step kind: a line in the kinds table of plan.c, a case in
 * the plan builder and one in its executor.
 */
#ifndef SANDBOX_SANDBOX_INTERNAL_H
#define SANDBOX_SANDBOX_INTERNAL_H

#include "sandbox/sandbox.h"
#include "util/buf.h"
#include "util/strv.h"

/* ---- namespaces: a table in plan.c */
typedef enum sandbox_ns {
	SANDBOX_NS_MOUNT,
	SANDBOX_NS_PID,
	SANDBOX_NS_IPC,
	SANDBOX_NS_UTS,
	SANDBOX_NS_USER,
	SANDBOX_NS_NET,
	SANDBOX_NS_COUNT
} sandbox_ns;

/* Its clone flag (CLONE_NEW*) and its name ("mount", "pid", ...). */
int sandbox_ns_flag(sandbox_ns ns);
const char *sandbox_ns_name(sandbox_ns ns);

/* ---- steps */
typedef enum sandbox_side {
	SANDBOX_AT_CLONE,   /* a flag of the clone */
	SANDBOX_IN_PARENT,  /* by the parent after the clone, before the init goes on */
	SANDBOX_IN_INIT,    /* by the init, in plan order */
} sandbox_side;

/* arg, path and num of each kind; paths of IN_INIT steps before PIVOT are
 * as the parent sees them (under the new root), after it as inside. */
typedef enum sandbox_step_kind {
	SANDBOX_STEP_NAMESPACE,    /* num = sandbox_ns */
	SANDBOX_STEP_UID_MAP,      /* num = the outer uid that is 0 inside; arg = NULL: that one
				    * id, written by the parent; or the caller's subordinate
				    * ids "1 START COUNT" (inside, outside, count), then path
				    * = the setuid helper that writes the map (newuidmap),
				    * run as `path PID 0 num 1 ... arg's fields` (idmap.c) */
	SANDBOX_STEP_GID_MAP,      /* the same for gids (newgidmap); with one id setgroups is
				    * denied first (the kernel's rule), with the range it is
				    * allowed */
	SANDBOX_STEP_MEMORY_LIMIT, /* arg = cgroup name, num = bytes (RLIMIT_AS without cgroup) */
	SANDBOX_STEP_PIDS_LIMIT,   /* arg = cgroup name, num = processes (RLIMIT_NPROC without) */
	SANDBOX_STEP_PRIVATE,      /* make / recursively private */
	SANDBOX_STEP_MKDIR,        /* path (mkdir -p); num = 0, or the mode path gets
				    * (chmod, whatever the umask) */
	SANDBOX_STEP_TMPFS,        /* path, num = mode; arg = more tmpfs options (uid=,gid=) or NULL */
	SANDBOX_STEP_OVERLAY,      /* arg = overlayfs options, path; num = 0, or 1 + the index
				    * of the caller's optional mount: its failure is reported
				    * (SANDBOX_REC_MOUNT_ERR) and the setup goes on */
	SANDBOX_STEP_BIND,         /* arg = source, path (recursive); a source that is not a
				    * directory is bound onto a file (created empty if missing) */
	SANDBOX_STEP_REMOUNT_RO,   /* path: the mount at path and every mount under it become
				    * read-only */
	SANDBOX_STEP_SUBMOUNT,     /* src = a host mount point, path, num = its MS_NOSUID,
				    * MS_NODEV, MS_NOEXEC; arg = overlayfs options (src as the
				    * lower layer), or NULL (or overlayfs refuses src): src bound
				    * read-only, alone; nothing when src or path is gone */
	SANDBOX_STEP_PROC,         /* path */
	SANDBOX_STEP_DEVPTS,       /* path */
	SANDBOX_STEP_DEVNODE,      /* arg = host device node, path = file bound onto */
	SANDBOX_STEP_SYMLINK,      /* arg = link text, path */
	SANDBOX_STEP_WRITE,        /* arg = content of the file path (replaced, never followed),
				    * num = its mode (0 = 0644) */
	SANDBOX_STEP_HOSTS,        /* arg = line appended to path (an /etc/hosts) */
	SANDBOX_STEP_HOSTNAME,     /* arg = name */
	SANDBOX_STEP_LOOPBACK,     /* bring lo up */
	SANDBOX_STEP_PIVOT,        /* path = new root */
	SANDBOX_STEP_CHDIR,        /* path */
	SANDBOX_STEP_CPUS,         /* num = CPUs kept in the affinity mask */
	SANDBOX_STEP_NO_NEW_PRIVS,
	SANDBOX_STEP_SECCOMP,      /* the deny list of exec.c */
	SANDBOX_STEP_NAT,          /* arg = the helper (slirp4netns), num = MTU: started by the
				    * parent on the init's network namespace (net.c) */
	SANDBOX_STEP_RESOLV,       /* arg = a file in the private tmpfs, path = the new root:
				    * its /etc/resolv.conf shows arg's content (net.c) */
	SANDBOX_STEP_MASK,         /* path hidden: a file gets /dev/null bound over it, a
				    * directory an empty read-only tmpfs; absent: nothing */
	SANDBOX_STEP_READONLY,     /* path bound over itself read-only (and nosuid, nodev,
				    * noexec), submounts too; absent: nothing */
	SANDBOX_STEP_CAPS,         /* num = the capabilities kept (bit n = capability n) in the
				    * bounding and inheritable sets; ambient cleared.  The init
				    * keeps its own permitted set, a command run as root gets
				    * exactly num at its exec (caps.c) */
	SANDBOX_STEP_WHITEOUT,     /* arg = an overlay's lower layer, path = its upper layer, src =
				    * a path relative to both: a whiteout for it in the upper
				    * layer (its parents made with the lower's modes), before
				    * the overlay is mounted (exec.c) */
	SANDBOX_STEP_NOFILE,       /* num = the soft open files limit the commands start with
				    * (sandbox_nofile_target(); the hard limit is kept) */
	SANDBOX_STEP_FUSE_ROOT,    /* src = fuse-overlayfs, arg = its options, path = the new
				    * root (made): the init asks the parent, which mounts it
				    * in the init's namespaces and starts the daemon (fuse.c) */
	SANDBOX_STEP_HOLD_SCRATCH, /* path = the private tmpfs (mounted): the init asks the
				    * parent, which opens it through /proc/<init>/root and
				    * keeps the descriptor (sandbox_opts.keep_scratch) */
	SANDBOX_STEP_KIND_COUNT
} sandbox_step_kind;

typedef struct sandbox_step {
	sandbox_step_kind kind;
	char *arg;    /* owned; NULL when the kind has none */
	char *path;   /* owned; NULL when the kind has none */
	int64_t num;
	char *src;    /* owned; SUBMOUNT's host mount point, else NULL */
} sandbox_step;

typedef struct sandbox_plan {
	sandbox_step *v;
	size_t n, cap;
} sandbox_plan;

#define SANDBOX_PLAN_INIT {NULL, 0, 0}

/* Turns opts into steps for a caller with effective ids uid and gid (not 0:
 * an unprivileged user namespace) without running anything; it only reads
 * the host (rootfs's top level, /etc/resolv.conf).  *out must be
 * SANDBOX_PLAN_INIT; release it with sandbox_plan_release, on failure too.
 * Invalid options: CBL_EINVAL. */
int sandbox_plan_build(sandbox_plan *out, const sandbox_opts *opts, uid_t uid, gid_t gid, cbl_error **err);
/* The same for the ids of sandbox_ids_probe (uid not 0: a user namespace,
 * whose maps take the caller's subordinate ids when sandbox_ids_full);
 * sandbox_plan_build maps the caller alone. */
int sandbox_plan_build_ids(sandbox_plan *out, const sandbox_opts *opts, const sandbox_ids *ids,
			   cbl_error **err);
void sandbox_plan_release(sandbox_plan *p);

/* Appends a step (arg and path copied; NULL = none); _in: path is rel (absolute,
 * as inside) under root. */
void sandbox_plan_add(sandbox_plan *p, sandbox_step_kind k, const char *arg, const char *path, int64_t num);
void sandbox_plan_add_in(sandbox_plan *p, const char *root, sandbox_step_kind k, const char *arg,
			 const char *rel, int64_t num);

/* The clone flags of the plan's NAMESPACE steps. */
unsigned long sandbox_plan_clone_flags(const sandbox_plan *p);

sandbox_side sandbox_step_side(sandbox_step_kind kind);
const char *sandbox_step_name(sandbox_step_kind kind); /* "bind", "tmpfs", ... */
/* True for a kind that mounts something where device nodes do not work
 * (nodev): every mount but the minimal /dev's (its bound nodes, devpts) and
 * the /dev/null bound over masked files.  The executor applies it. */
bool sandbox_step_nodev(sandbox_step_kind kind);
/* What the step does, for error messages: "bind /a on /b". */
const char *sandbox_step_describe(const sandbox_step *s, char *buf, size_t len);

/* ---- the host's view (hostview.c): with rootfs NULL the view is the host's /
 * minus what is private to the host: /root, /home, /run, /tmp, /var/tmp, /srv,
 * /mnt and /media are fresh tmpfs, the files that hold secrets (shadow,
 * sudoers, ssh host keys, ...) are masked, and as root the host's other
 * mounts (a separate /opt, a bind mount) are overlaid like the root. */

/* One mount of the host a root sandbox shows besides the root. */
typedef struct sandbox_submount {
	char *path;            /* its mount point */
	unsigned long flags;   /* MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC of the mount */
	bool overlay;          /* read-write and overlayfs takes it as a lower layer;
				* false: bound read-only */
} sandbox_submount;

typedef struct sandbox_submounts {
	sandbox_submount *v;
	size_t n, cap;
} sandbox_submounts;

#define SANDBOX_SUBMOUNTS_INIT {NULL, 0, 0}

/* The mounts of /proc/self/mountinfo text that a host view shows, in mount
 * order: real filesystems (no proc, sysfs, cgroup, ...), not the root, not
 * at or under one of hidden (NULL-terminated absolute paths) or a private
 * directory, not covered by a later mount on the same point, not on a mount
 * that is left out.  *out must be SANDBOX_SUBMOUNTS_INIT. */
void sandbox_submounts_parse(sandbox_submounts *out, const char *mountinfo, const char *const *hidden);
void sandbox_submounts_release(sandbox_submounts *s);

/* The mount points of mountinfo's mounts that fuse-overlayfs could take for
 * another name of a directory it sees elsewhere (a bind of a directory, a
 * filesystem mounted twice), each without mounts beneath it: the daemon's
 * namespace covers each with a read-only overlay of itself, whose
 * directories have a device of their own (sandbox/fuse.c). */
void sandbox_fuse_aliases(const char *mountinfo, cbl_strv *out);

/* True when path is (or is under) a private directory of the host view. */
bool sandbox_host_private(const char *path);
/* True when name (a top-level entry of the host's /) is a private directory
 * of the host view, so an unprivileged sandbox does not carry it over. */
bool sandbox_host_private_top(const char *name);
/* Steps of the host view (rootfs NULL): the host's other mounts (root only,
 * after the root overlay), then (after the system mounts) the private
 * directories, the masked files and the view's users. */
void sandbox_plan_submounts(sandbox_plan *p, const sandbox_opts *o, const char *root);
void sandbox_plan_host_private(sandbox_plan *p, const sandbox_opts *o, const char *root, bool userns,
			       bool in_userns);
/* After the tmpfs of mode mode on path (inside) for the private directory
 * dir (the same, or where a symlink dir points): opts->private_lower/<dir's
 * name> (when that is a directory) as the lower layer of an overlay on
 * path, upper and work in the tmpfs; in_userns: in a user namespace
 * ("userxattr"). */
void sandbox_plan_private_lower(sandbox_plan *p, const sandbox_opts *o, const char *root, const char *dir,
				const char *path, unsigned mode, bool in_userns);
/* A SANDBOX_MOUNT_MASK: the host path target (symlinks resolved) hidden
 * under root: a directory by an empty tmpfs of its mode, a file by an empty
 * read-only file; nothing when target does not exist. */
void sandbox_plan_mask(sandbox_plan *p, const sandbox_opts *o, const char *root, const char *target);

/* The plan as bytes, to hand it to the init, a fresh exec that shares no
 * memory with the parent.  encode: caller frees, *len its size.  decode:
 * *out must be SANDBOX_PLAN_INIT (release it on failure too); -1 when buf is
 * not a whole encoded plan. */
char *sandbox_plan_encode(const sandbox_plan *p, size_t *len);
int sandbox_plan_decode(sandbox_plan *out, const char *buf, size_t len);

/* ---- confinement (caps.c, seccomp.c) */
/* The container engines' default capability set: CHOWN DAC_OVERRIDE FOWNER
 * FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT
 * MKNOD AUDIT_WRITE SETFCAP (bit n = capability n). */
uint64_t sandbox_caps_default(void);
/* Drops every capability not in keep from the bounding set, sets the
 * inheritable set to keep, clears the ambient set: 0, or -1 with errno. */
int sandbox_caps_limit(uint64_t keep);

/* One syscall the filter refuses: by name, always, or when its argument
 * arg masked with mask equals value (arg < 0 = always).  ENOSYS for clone3
 * (so libc falls back to clone, whose flags the filter can see). */
typedef struct sandbox_syscall_rule {
	const char *name;
	int err;
	int arg;
	uint64_t mask, value;
} sandbox_syscall_rule;

/* The rules, for the tests and the README: *n of them. */
const sandbox_syscall_rule *sandbox_seccomp_rules(size_t *n);
/* Loads the filter into the calling thread: 0, or -1 with errno. */
int sandbox_seccomp_load(void);

/* The build's open files limit, the same rule as root or not: the soft
 * limit raised to the caller's hard limit (what a normal user's login
 * session gets is 1024 soft under a higher hard limit; root's is often
 * both at once), at most 1048576 (docker's nofile for a container) and
 * fs.nr_open.  0 when it cannot be read. */
int64_t sandbox_nofile_target(void);

/* ---- executing (exec.c) */
/* Runs one IN_INIT step in the calling process: 0, or -1 with errno. */
int sandbox_step_run(const sandbox_step *s);
/* Runs the IN_PARENT steps for the init pid: the id maps, then the cgroup
 * limits (what cgroups cannot take sets s->rlim_fallback and a warning). */
int sandbox_plan_run_parent(sandbox_handle *s, const sandbox_plan *p, pid_t pid, cbl_error **err);

/* ---- id maps (idmap.c) */
/* Writes pid's uid_map or gid_map for a UID_MAP / GID_MAP step: itself for
 * one id, else through the step's setuid helper, run with an empty
 * environment, nothing open but /dev/null and a pipe for its complaint,
 * and at most SANDBOX_IDMAP_TIMEOUT_MS to do it (then killed). */
enum { SANDBOX_IDMAP_TIMEOUT_MS = 5000 };
int sandbox_idmap_write(const sandbox_step *st, pid_t pid, cbl_error **err);
/* The lines of /etc/subuid-format text for a user (name or uid, as the file
 * may name either): the first range's start and count, 0 and 0 when none. */
void sandbox_subids_parse(const char *text, const char *name, unsigned long id, uint32_t *start, uint32_t *count);

/* ---- the init (init.c)
 * A fresh exec, started by sandbox_start's clone: of the embedded init
 * program from a sealed memfd, or where the kernel refuses that of the
 * calling program (both run sandbox_init_main), with exactly these
 * descriptors: 0 /dev/null, 1 and 2
 * the commands' output, SANDBOX_INIT_SOCK the socket to the parent.  On that
 * socket the parent sends, once its IN_PARENT steps are done: the go byte
 * (read before the exec), the sync byte (SANDBOX_SYNC_BASE | which limits the
 * init applies as rlimits), the plan's length (uint32_t) and the encoded
 * plan.  Then the records below flow back, and the requests of
 * sandbox_spawn / sandbox_kill_all forth. */
enum { SANDBOX_RLIM_AS = 1, SANDBOX_RLIM_NPROC = 2, SANDBOX_SYNC_BASE = 0x40 };
/* The init program (sandbox/initexe/main.c), embedded by initbin.c. */
extern const char sandbox_init_elf[];
extern const char sandbox_init_elf_end[];
enum { SANDBOX_INIT_SOCK = 3, SANDBOX_INIT_OUT = 1 };
enum { SANDBOX_PLAN_MAX = 64 << 20 };

/* ---- records from the init to the parent (and the protocol's helpers) */
/* MOUNT_ERR: an optional overlay failed during setup (status = the caller's
 * mount index, err = errno, msg = what failed); READY or SETUP_ERR follows */
enum { SANDBOX_REC_READY = 1, SANDBOX_REC_SETUP_ERR, SANDBOX_REC_STARTED, SANDBOX_REC_EXITED,
       SANDBOX_REC_SPAWN_ERR, SANDBOX_REC_MOUNT_ERR,
       SANDBOX_REC_PARENT_STEP, /* during setup: status = the index of a step the parent does
				 * (FUSE_ROOT); the parent answers one byte, 'c' to go on */
       SANDBOX_REC_SESSION_EXITED, /* status = the wait status, err = the session's pid */
};
/* Sessions the init serves at once (sandbox_session_start). */
enum { SANDBOX_MAX_SESSIONS = 32 };

typedef struct sandbox_rec {
	int32_t kind;
	int32_t status;
	int32_t err;
	char msg[244];
} sandbox_rec;

/* In a SANDBOX_REC_EXITED record's msg: the command's resource use as wait4
 * counts it (the command and the descendants it waited for). */
typedef struct sandbox_rec_usage {
	int64_t utime_us, stime_us;
	int64_t maxrss_kb;
	int64_t inblock, oublock; /* 512-byte blocks */
} sandbox_rec_usage;

int sandbox_send_rec(int fd, int kind, int status, int err, const char *msg);
int sandbox_read_full(int fd, void *buf, size_t len);
/* Writes s to the existing file path: 0, or -1 with errno. */
int sandbox_write_str(const char *path, const char *s);

/* ---- work in a sandbox's namespaces (nschild.c) */
/* Runs in the child: fills report (zeroed); failed names the namespace it
 * could not join (errno set), NULL once in them. */
typedef void (*sandbox_ns_fn)(void *arg, void *report, const char *failed);
/* fn in a forked child (killed with this process, not traceable from the
 * build) that joined s's user namespace when s has one and, when mnt, its
 * mount namespace; the child's report (size bytes) comes back in report.
 * 0, or an error "who: ..." when the child cannot run or report. */
int sandbox_in_namespaces(sandbox_handle *s, bool mnt, sandbox_ns_fn fn, void *arg, void *report, size_t size,
			  const char *who, cbl_error **err);

/* ---- the network (net.c) */
/* slirp4netns's fixed addresses (its defaults for 10.0.2.0/24) */
#define SANDBOX_NAT_DNS "10.0.2.3"
#define SANDBOX_NAT_GATEWAY "10.0.2.2"

/* The resolver configuration inside: host_conf (the host's resolv.conf, may
 * be NULL) with its nameservers replaced by the NAT's DNS forwarder.
 * Caller frees. */
char *sandbox_nat_resolv_conf(const char *host_conf);
/* Starts the helper of a SANDBOX_STEP_NAT step for the init pid, its
 * descriptors in s (nat_*).  CBL_EIO when it cannot be started. */
int sandbox_nat_start(sandbox_handle *s, const sandbox_step *st, pid_t pid, cbl_error **err);
/* Waits (at most timeout_ms) until the helper has configured the namespace.
 * No helper: 0 at once.  CBL_EIO with its own message when it failed. */
int sandbox_nat_wait(sandbox_handle *s, int timeout_ms, cbl_error **err);
/* Kills the helper and reaps it (a detached thread waits for its end when
 * it is still tearing its network device down), closes its descriptors.
 * Idempotent. */
void sandbox_nat_stop(sandbox_handle *s);
/* Runs a SANDBOX_STEP_RESOLV step: 0, or -1 with errno. */
int sandbox_resolv_put(const char *src, const char *root);

/* ---- the host's / writable unprivileged (fuse.c) */
enum { SANDBOX_FUSE_TIMEOUT_MS = 10000 };
/* Fills ids->fuse_overlayfs (or ids->fuse_missing). */
void sandbox_fuse_probe(sandbox_ids *ids);
/* Runs a FUSE_ROOT step for the init pid: the daemon started, the mount
 * there.  CBL_EIO with what the daemon said otherwise. */
int sandbox_fuse_start(sandbox_handle *s, const sandbox_step *st, pid_t init, cbl_error **err);
/* Kills and reaps the daemon.  Idempotent. */
void sandbox_fuse_stop(sandbox_handle *s);

/* ---- cgroups (cgroup.c) */
void sandbox_cgroups_apply(sandbox_handle *s, pid_t pid, const char *name, int64_t memory_bytes,
			   int64_t pids_max);
void sandbox_cgroups_remove(sandbox_handle *s);
/* The cgroup's counters into *u (fields it has not left as they are);
 * false without a cgroup that counts. */
bool sandbox_cgroups_usage(const sandbox_handle *s, sandbox_usage *u);
/* Starts a new peak (cgroup v1 memory.max_usage_in_bytes). */
void sandbox_cgroups_reset_peak(const sandbox_handle *s);

struct sandbox_handle {
	pid_t init;
	int sock;
	bool running;          /* a command is running */
	bool cmd_ended;        /* its EXITED record was read already: cmd_ws */
	int cmd_ws;
	bool gone;             /* the init's socket hit EOF */
	pid_t sess_pid[SANDBOX_MAX_SESSIONS]; /* ended sessions not yet popped */
	int sess_ws[SANDBOX_MAX_SESSIONS];
	size_t n_sess;
	int rlim_fallback;     /* SANDBOX_RLIM_* to apply in the init */
	char *cg_mem, *cg_pids, *cg_v2; /* cgroup dirs we created */
	char *cg_v2_parent;
	cbl_strv warnings;
	sandbox_usage last;    /* the last command's use (its process tree) */
	sandbox_usage sum;     /* every command's, added up (peak: the highest) */
	bool userns;           /* an unprivileged user namespace */
	char **mount_errs;     /* per caller's mount: why an optional overlay is not there */
	size_t n_mounts;
	bool ids_full;         /* ... mapping the caller's subordinate ids too */
	long failed_step;      /* the plan's step the init failed on, or -1 */
	pid_t fuse_pid;        /* the root's fuse-overlayfs (fuse.c), or -1 */
	int fuse_pidfd;        /* a pidfd of it, or -1 */
	int fuse_log;          /* its stderr (read end, never read once it runs), or -1 */
	bool root_ro;          /* the build's / is read-only */
	int scratch_fd;        /* the private tmpfs (O_PATH), kept_scratch; or -1 */
	char **mount_upper;    /* per caller's mount: its overlay's upper layer in the
				* private tmpfs (a name in it), or NULL */
	char *root_upper_name; /* the root overlay's upper layer in it, or NULL */
	pid_t nat_pid;         /* the NAT helper (net.c), or -1 */
	int nat_pidfd;         /* a pidfd of it (signals never reach a reused pid), or -1 */
	int nat_ready;         /* its readiness pipe (read end), or -1 */
	int nat_exit;          /* closing it tells the helper to exit (write end), or -1 */
	int nat_log;           /* its stdout and stderr (read end, for errors), or -1 */
};

/* Appends path to overlayfs options, its '\\', ',' and ':' escaped (steps.c). */
void sandbox_put_escaped(cbl_buf *b, const char *path);

#endif
