/* sandbox/sandbox.h - run commands inside Linux namespaces, with no daemon.
 *
 * bubblewrap's model, plan then execute: sandbox_start() turns the options
 * into a typed list of setup steps (sandbox_internal.h), clones an init
 * process into new mount, PID, IPC, UTS and network namespaces (plus a user
 * namespace when not root, mapping the caller's subordinate ids when it has
 * them: sandbox_ids; no network namespace with SANDBOX_NET_HOST), and the
 * init replays the steps:
 *   - the root filesystem: `rootfs` (NULL = the host's /) as the read-only
 *     lower layer of an overlay whose upper layer is a private tmpfs on
 *     `scratch`, so a command may write anywhere and nothing reaches the
 *     host.  Unprivileged, an image's root is such an overlay too
 *     (overlayfs's userxattr; its files belong to the caller and its
 *     subordinate ids, sandbox_ids); the host's / is fuse-overlayfs where the
 *     caller may open /dev/fuse (sandbox/fuse.c), else (overlayfs refuses /
 *     in a user namespace) a tmpfs root holding its top-level directories
 *     bound read-only (recursively, with the mounts under them), as is an
 *     image's root that overlayfs refuses (ro_root, with a warning);
 *   - the host's view (rootfs NULL) shows nothing private to the host: /root,
 *     /home, /run, /var/run, /tmp, /var/tmp, /srv, /mnt and /media are empty
 *     tmpfs, /etc/shadow, /etc/gshadow, /etc/sudoers*, the ssh host keys and
 *     a few more are masked (hostview.c has the lists), the curated images'
 *     codebuild-user is added when the host has none, and as root the
 *     host's other mounts (a separate /opt, a bind mount) are overlaid like
 *     the root (read-only ones bound read-only), so none is silently empty;
 *   - fresh /proc, a minimal /dev (null zero full random urandom tty, devpts,
 *     /dev/shm), private /tmp (and /root, /var/tmp in an image's root when
 *     unprivileged: the rest of it is read-only);
 *   - the caller's mounts (`mounts`, in order; a target is resolved as
 *     inside the view: a mount on /var/run/x lands on /run/x when /var/run is
 *     a link to /run; unprivileged, an overlay is mounted in the user
 *     namespace, with the caller's own directories as layers), the
 *     hostname, loopback;
 *   - the network (`network`): by default outbound access through a
 *     user-space NAT, slirp4netns, started by the parent on the init's
 *     network namespace (see sandbox/net.c for why slirp4netns), with
 *     /etc/resolv.conf naming its DNS forwarder;
 *   - /proc/sys, /proc/sysrq-trigger, /proc/irq, /proc/bus, /proc/fs
 *     read-only; /proc/kcore, /proc/keys, /proc/timer_list, /sys/firmware
 *     and the like masked; every mount nodev but the minimal /dev's;
 *   - pivot_root, chdir `cwd`, CPU affinity, the container engines' default
 *     capability set (sandbox_internal.h), no_new_privs and a seccomp filter
 *     in the spirit of their default profile (no mounts or new namespaces,
 *     no clock setting, module loading, kexec, keyring, bpf, perf events,
 *     userfaultfd, open_by_handle_at, block device nodes; seccomp.c);
 * then serves requests: start a command, kill everything.  `privileged`
 * leaves out the masks, the capability drop, no_new_privs and the filter
 * (docker's --privileged, for docker-in-docker builds).
 *
 * The init is out of the commands' reach: it is a fresh exec, not a fork of
 * the caller, of a small program embedded in the library
 * (sandbox/initexe/main.c) from a sealed memfd, so it holds none of the
 * caller's memory, an empty environment (the commands get theirs from
 * sandbox_spawn) and only the descriptors it needs (/dev/null, the output,
 * its socket); it is not dumpable, so the commands cannot ptrace it or read
 * its /proc/1/{environ,mem,fd}.  Where the kernel will not exec a memfd
 * (vm.memfd_noexec = 2) the caller's own program runs as the init instead
 * (/proc/self/exe, opened before the clone): every program that calls
 * sandbox_start must therefore hand its arguments to sandbox_init_main
 * first thing in main() when argv[1] is SANDBOX_INIT_ARG (cli/main.c and
 * tests/unit/test_sandbox.c do).
 *
 * It knows nothing of builds: the caller says what goes where.
 *
 * No orphans: the init has PR_SET_PDEATHSIG(SIGKILL), so when the caller
 * dies for any reason the kernel kills the whole PID namespace.
 *
 * Errors: functions returning int return 0 or a negative CBL_E* code and set
 * *err (the caller frees it); messages start with "sandbox: " and name the
 * setup step that failed, e.g. "sandbox: mount overlay on /x: permission
 * denied"; those of the default network's NAT start with "sandbox: network: "
 * (another network mode needs no NAT).  Nothing here prints or exits (the init and its helpers report to
 * the parent, then _exit).
 *
 * Ownership: sandbox_start() hands out a handle the caller frees with
 * sandbox_free(); options and their strings are borrowed only during
 * sandbox_start().  Returned strings and arrays are borrowed from the handle.
 *
 * Thread safety: a handle is used by one thread at a time; handles are
 * independent (no global state).  sandbox_start() and
 * sandbox_mount_overlay() fork the calling process without running
 * pthread_atfork handlers: as with any fork of a threaded program, the
 * child must not need a lock another thread holds.
 */
#ifndef SANDBOX_SANDBOX_H
#define SANDBOX_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/error.h"

typedef struct sandbox_handle sandbox_handle;

/* One of the caller's mounts.  Its target (created if missing, like every
 * directory leading to it) is an absolute path as the sandbox sees it. */
typedef enum sandbox_mount_kind {
	SANDBOX_MOUNT_BIND,     /* source (a host directory), read-write, submounts too */
	SANDBOX_MOUNT_BIND_RO,  /* the same, then remounted read-only */
	SANDBOX_MOUNT_TMPFS,    /* a fresh tmpfs of the given mode (0 = 0755) */
	SANDBOX_MOUNT_OVERLAY,  /* source as the read-only lower layer of an overlay whose
				 * upper layer is in the private tmpfs: writes vanish with
				 * the sandbox.  Unprivileged it is mounted in the sandbox's
				 * user namespace ("userxattr"), which the kernel allows when
				 * source belongs to the caller and no mount lies under it */
	SANDBOX_MOUNT_DIR,      /* only the directory */
	SANDBOX_MOUNT_MASK,     /* the host's view only (ignored with rootfs): target, a host
				 * path (symlinks resolved), hidden: a directory by an empty
				 * tmpfs, a file by an empty read-only file; nothing when it
				 * does not exist.  For what the caller keeps to itself (its
				 * state) */
} sandbox_mount_kind;

typedef struct sandbox_mount {
	sandbox_mount_kind kind;
	const char *source;        /* host path (BIND, BIND_RO, OVERLAY): a directory, or for
				    * the binds a file (bound onto a file) */
	const char *target;        /* absolute path inside */
	unsigned mode;             /* TMPFS */
	bool optional;             /* OVERLAY: when the kernel refuses the overlay the target
				    * stays an empty directory, the start goes on, and
				    * sandbox_mount_error() says why (the caller falls back) */
	const char *const *hide;   /* OVERLAY: NULL-terminated paths relative to source that the
				    * view leaves out (a whiteout each in the upper layer: a
				    * directory costs one entry, never read), or NULL */
	const char *lower_top;     /* OVERLAY: a second read-only layer above source (an overlay
				    * upper layer kept from an earlier sandbox, e.g. by
				    * sandbox_copy_out: whiteouts and opaque directories
				    * apply), or NULL.  Unprivileged it must be the caller's */
} sandbox_mount;

/* The network a sandbox gets.  The zero value is the default. */
typedef enum sandbox_network {
	SANDBOX_NET_NAT = 0,  /* its own network namespace, outbound through slirp4netns
			       * (10.0.2.100/24, gateway 10.0.2.2, DNS 10.0.2.3): the host's
			       * loopback, abstract unix sockets and network configuration are
			       * out of reach.  Needs slirp4netns in PATH (and, unprivileged, a
			       * usable /dev/net/tun): CBL_EIO naming it otherwise */
	SANDBOX_NET_HOST,     /* the host's network namespace, shared */
	SANDBOX_NET_NONE,     /* its own network namespace, loopback only */
} sandbox_network;

typedef struct sandbox_opts {
	const char *rootfs;        /* root of the image (read-only lower layer); NULL = the host's / */
	const char *scratch;       /* host dir the private tmpfs is mounted on (must exist) */
	const sandbox_mount *mounts; /* n_mounts mounts, after the system ones, in order; in an
				      * unprivileged sandbox the top-level directory of a target
				      * that rootfs lacks is not carried over from rootfs (it is
				      * read-only: the target could not be created in it) */
	size_t n_mounts;
	const char *cwd;           /* the init's working directory; NULL = "/" */
	const char *hostname;      /* NULL = "sandbox" */
	sandbox_network network;   /* SANDBOX_NET_NAT (the zero value) = own namespace + NAT */
	int out_fd;                /* commands' stdout and stderr */
	int64_t memory_bytes;      /* 0 = no limit */
	int64_t pids_max;          /* 0 = no limit */
	int cpus;                  /* CPUs the commands may use (nproc); 0 = all */
	const char *cgroup_name;   /* unique name for the cgroups; required with a limit */
	bool privileged;           /* all capabilities, no seccomp filter, no masks (docker's
				    * --privileged); the init stays out of reach */
	bool fuse_root;            /* as root too, the host's / as fuse-overlayfs (as it is
				    * unprivileged where fuse-overlayfs is usable): tests and
				    * bench/fuse-overlay.sh */
	bool ro_root;              /* unprivileged with rootfs: its top-level directories bound
				    * read-only on a tmpfs root instead of an overlay (what
				    * sandbox_start falls back to, with a warning, when
				    * overlayfs refuses rootfs in a user namespace) */
	const char *root_upper;    /* as root with the kernel's overlay at the root: a
				    * directory of the caller's (0700, empty, on a
				    * filesystem with trusted.* xattrs) that gets upper/
				    * (the root overlay's upper layer, readable by the
				    * caller: what the commands wrote outside the mounts,
				    * /root included), work/ and mask/ (an opaque root/
				    * that hides the host's /root instead of a tmpfs);
				    * NULL = all in the private tmpfs.  Ignored
				    * unprivileged and with fuse-overlayfs */
	const char *root_lower;    /* with root_upper: an overlay upper layer kept from
				    * an earlier sandbox (whiteouts, opaque directories),
				    * stacked read-only above the root; unprivileged the
				    * same above an image's root (rootfs: the caller's
				    * files, user.* overlay attributes); with fuse-overlayfs
				    * at the root, its lower layer above the host's / (a
				    * layer fuse-overlayfs wrote: SANDBOX_COPY_ROOT_UPPER;
				    * no ':' in its path); NULL = none */
	bool keep_scratch;         /* the private tmpfs stays reachable by sandbox_copy_out
				    * (the caller's overlays' upper layers, an image's root
				    * overlay's): the parent holds a descriptor of it */
	const char *root_upper_in; /* with root_upper: the directory that holds upper/ and
				    * work/ instead of root_upper (whose mask stays
				    * there), e.g. on another filesystem: overlayfs
				    * refuses a lower layer on the filesystem of / (it
				    * lies under /, another lower layer), not an upper
				    * one.  An upper/ already there is the upper layer as
				    * it is (a writable copy of a kept layer, with its
				    * whiteouts and opaque directories: nothing to stack
				    * read-only or to copy at the start).  NULL = in
				    * root_upper */
	const char *private_lower; /* a host directory holding, for each private directory
				    * of the view (sandbox_private_dirs(): /tmp as "tmp",
				    * /var/tmp as "var-tmp", /home as "home", ...) that
				    * should not start empty, a subdirectory of that name:
				    * the read-only lower layer of an overlay mounted on
				    * the directory's fresh tmpfs, whose upper and work
				    * directories are in that tmpfs (writes vanish with
				    * the sandbox; "userxattr" in a user namespace).  An
				    * absent subdirectory: the plain tmpfs.  NULL = none */
} sandbox_opts;

/* The private directories of a sandbox (fresh tmpfs mounts: the host's
 * view's /tmp, /var/tmp, /home, /run, /srv, /mnt, /media; an image's /tmp)
 * whose contents a caller may keep (sandbox_copy_out, SANDBOX_COPY_PATH) and
 * give back to a later sandbox as sandbox_opts.private_lower/<name>.  /root
 * is one where it is a private tmpfs (unprivileged: the host's view, an
 * image's read-only root); as root with root_upper it is in that layer. */
typedef struct sandbox_private_dir {
	const char *path; /* inside, absolute: "/var/tmp" */
	const char *name; /* its subdirectory of private_lower: "var-tmp" */
} sandbox_private_dir;

/* The table above: *n entries, static. */
const sandbox_private_dir *sandbox_private_dirs(size_t *n);

#define SANDBOX_OPTS_INIT {0}

/* Starts the sandbox.  Limits that cgroups cannot enforce fall back to
 * rlimits, with a warning (sandbox_warnings).  Invalid options (a relative
 * target, a limit without cgroup_name): CBL_EINVAL; a failed setup step
 * (but an optional overlay's): CBL_EIO. */
int sandbox_start(sandbox_handle **out, const sandbox_opts *opts, cbl_error **err);

/* Why the optional overlay opts->mounts[i] is not mounted (the step and the
 * kernel's error, e.g. "mount overlay on /x: Invalid argument"), or NULL
 * when it is (or i is not an optional overlay).  Borrowed from the handle. */
const char *sandbox_mount_error(const sandbox_handle *s, size_t i);

/* Warnings from start (limits that could not be applied as asked);
 * NULL-terminated, borrowed. */
const char *const *sandbox_warnings(const sandbox_handle *s);

/* Starts `path arg` (a shell and its script) inside, in cwd (or / when cwd
 * is missing), as user (a name in the sandbox's /etc/passwd; NULL = root),
 * with exactly envp, stdin /dev/null, stdout and stderr out_fd, in a new
 * session.  One command at a time. */
int sandbox_spawn(sandbox_handle *s, const char *path, const char *arg, const char *cwd,
		  const char *user, char *const envp[], cbl_error **err);

/* Readable when the running command has ended. */
int sandbox_fd(const sandbox_handle *s);

/* Reads the end of the running command: its wait status (as waitpid's).
 * When the init is gone: CBL_EIO, and *wstatus says "killed by SIGKILL". */
int sandbox_wait(sandbox_handle *s, int *wstatus, cbl_error **err);

/* ---- sessions: processes started next to the running command (a debug
 * shell, an exec into the build), with descriptors of the caller's choosing.
 * They run under the init's confinement (namespaces, capabilities, seccomp,
 * limits) like the commands; several at once, while a command runs or not.
 * Their ends come back on sandbox_fd too: call sandbox_service when it is
 * readable, then sandbox_session_ended. */
typedef struct sandbox_session_opts {
	const char *const *argv;   /* argv[0] is an absolute path inside; NULL-terminated */
	const char *cwd;           /* / when missing */
	const char *user;          /* NULL = root */
	char *const *envp;         /* exactly this environment */
	int fds[3];                /* its stdin, stdout, stderr (sent, not kept by the sandbox) */
	bool tty;                  /* fds[0] is a terminal: it becomes the controlling terminal
				    * of the session's new session (job control works) */
} sandbox_session_opts;

/* Starts a session; *pid is its PID inside the sandbox's PID namespace (an
 * id for sandbox_session_kill / sandbox_session_ended).  CBL_EIO. */
int sandbox_session_start(sandbox_handle *s, const sandbox_session_opts *o, pid_t *pid, cbl_error **err);

/* Kills a session's process group (SIGKILL). */
void sandbox_session_kill(sandbox_handle *s, pid_t pid);

/* Reads the records waiting on sandbox_fd without blocking: sessions' ends
 * are kept for sandbox_session_ended, the command's for sandbox_wait.
 * Returns 1 when the running command has ended (sandbox_wait then returns at
 * once), 0 when not, CBL_EIO when the init is gone. */
int sandbox_service(sandbox_handle *s, cbl_error **err);

/* True when the running command's end was read already (by
 * sandbox_service, or while a session started): sandbox_wait returns at once. */
bool sandbox_command_ended(const sandbox_handle *s);

/* Pops one session's end: true with its pid and wait status, false when
 * none has ended since. */
bool sandbox_session_ended(sandbox_handle *s, pid_t *pid, int *wstatus);

/* Kills every process inside except the init (SIGKILL). */
void sandbox_kill_all(sandbox_handle *s);

/* True when the memory limit was hit (an OOM kill happened). */
bool sandbox_oom(sandbox_handle *s);

/* Resource use, as the kernel counts it.  With a cgroup (a memory limit
 * was asked for) it is the whole sandbox's, daemons included; without,
 * the commands' process trees as wait4 reports them (what a command
 * leaves running, unwaited, is not counted; the peak is the largest
 * single process's resident set, not the tree's sum). */
typedef struct sandbox_usage {
	int64_t cpu_us;      /* user + system CPU time */
	int64_t user_us, system_us;
	int64_t mem_peak;    /* bytes */
	int64_t read_bytes;  /* from storage (not the page cache) */
	int64_t write_bytes;
	const char *source;  /* static: "cgroup v2", "cgroup v1", "process tree" */
} sandbox_usage;

/* The last command's use (its process tree).  Zeros before any. */
void sandbox_usage_last(const sandbox_handle *s, sandbox_usage *out);

/* The sandbox's use since it started: its cgroup's counters where it has
 * one, else every command's added up. */
void sandbox_usage_total(const sandbox_handle *s, sandbox_usage *out);

/* Starts a new memory peak for sandbox_usage_total (cgroup v1 only: the
 * others keep the highest since the start). */
void sandbox_usage_reset_peak(sandbox_handle *s);

/* True when the build's / is read-only: unprivileged with the host's /
 * and no usable fuse-overlayfs, or an image whose overlay was refused. */
bool sandbox_root_readonly(const sandbox_handle *s);

/* True when the build's / is the host's through fuse-overlayfs. */
bool sandbox_root_fuse(const sandbox_handle *s);

/* PID (in the caller's namespace) of the init: /proc/PID/root is the
 * sandbox's view of its files. */
pid_t sandbox_pid(const sandbox_handle *s);

/* True when pid is a child of the caller that the sandbox owns (its init,
 * its NAT helper): the sandbox kills and reaps it, nobody else should. */
bool sandbox_owns(const sandbox_handle *s, pid_t pid);

/* True when the host's view (rootfs NULL) has the user name even if the
 * host has not: the curated images' codebuild-user (uid and gid 1000, home
 * /home/codebuild-user), added to the view's /etc/passwd and /etc/group
 * when the host's lack it.  The host's files are never changed. */
bool sandbox_host_view_user(const char *name);

/* True when the caller may mount overlays in its own mount namespace
 * (root).  Unprivileged, overlays are mounted inside the sandbox's user
 * namespace instead (SANDBOX_MOUNT_OVERLAY, sandbox_mount_overlay), where
 * the kernel allows layers that belong to the caller; a caller that must
 * read such an overlay opens it with sandbox_open_dir. */
bool sandbox_can_overlay(void);

/* Opens the directory path (absolute, as the sandbox sees it; no symlink
 * followed, not even in its leading components) for reading: *out is a
 * descriptor (close-on-exec, the caller closes it) that reaches the files
 * of the mount it lies on from the caller's namespace, and keeps that
 * mount alive, detached, once the sandbox has ended: an overlay of
 * SANDBOX_MOUNT_OVERLAY stays readable with the changes the build made
 * (not the mounts under path: they go with the sandbox).  CBL_EIO. */
int sandbox_open_dir(sandbox_handle *s, const char *path, int *out, cbl_error **err);

/* What sandbox_copy_out copies. */
typedef enum sandbox_copy_from {
	SANDBOX_COPY_MOUNT_UPPER, /* the upper layer of the caller's SANDBOX_MOUNT_OVERLAY
				   * mounts[index] (needs keep_scratch) */
	SANDBOX_COPY_ROOT_UPPER,  /* the root overlay's upper layer when it is in the private
				   * tmpfs: an image's root (also unprivileged), the host's /
				   * as root without root_upper, fuse-overlayfs's upper layer
				   * (its own format: sandbox/fuse.c) (needs keep_scratch) */
	SANDBOX_COPY_PATH,        /* the directory path as the sandbox sees it (absolute; no
				   * symlink followed, not even in its leading components) */
} sandbox_copy_from;

typedef struct sandbox_copy_stats {
	uint64_t files, bytes;    /* regular files and symlinks copied, and the files' bytes */
} sandbox_copy_stats;

/* Copies a directory of the sandbox into dest_fd (an empty directory of the
 * caller's, opened by it) as an overlay layer: directories, regular files,
 * symlinks as symlinks (never followed), whiteouts (character devices 0:0)
 * and opaque directories (the overlay.opaque xattrs), with their modes,
 * owners (as ids of the sandbox's user namespace: the caller's subordinate
 * ids where they are mapped) and modification times; FIFOs, sockets and
 * other devices are left out, and so is a file that changes type while it
 * is copied (the commands may still be running).  The copy runs in a child
 * that joined the sandbox's user namespace (and its mount namespace for a
 * path), so that files of its other ids that the caller could not read are
 * copied too; nothing is ever read on the caller's side of the namespace.
 * 256 directories deep at most.  *st (may be NULL): what was copied.
 * CBL_ENOENT when the source directory does not exist (nothing copied),
 * CBL_EIO (dest_fd may then hold a part: the caller removes it). */
int sandbox_copy_out(sandbox_handle *s, sandbox_copy_from from, size_t index, const char *path, int dest_fd,
		     sandbox_copy_stats *st, cbl_error **err);

/* sandbox_layer_merge's flags. */
enum {
	SANDBOX_MERGE_USER_XATTR = 1, /* an opaque mark it adds is user.overlay.opaque (an
				       * overlay with "userxattr"), else trusted.* */
	SANDBOX_MERGE_NO_LINKS = 2,   /* copies only, no hard link to the old layer */
	SANDBOX_MERGE_FUSE = 4,       /* fuse-overlayfs's layers: a directory holding a
				       * ".wh..wh..opq" file is opaque (the mark it adds), a
				       * ".wh.NAME" file hides NAME */
};

/* Flattens two overlay layers: dest_fd holds the upper one (a copy), old_fd
 * is the read-only layer that was below it; every entry of old_fd that
 * dest_fd does not hide is added to dest_fd, so that dest_fd alone shows
 * what the two showed.  An entry dest_fd lacks is taken from old_fd (a hard
 * link where the kernel allows it: old_fd must never change afterwards;
 * else a copy with its owner, mode and times; a directory with its opaque
 * mark); a directory in both, non-opaque in dest_fd, is merged recursively
 * (and made opaque when old_fd's is); dest_fd's file, symlink, whiteout or
 * opaque directory wins (a whiteout stays one: it still hides what is below
 * both); a directory of dest_fd over a non-directory of old_fd is made
 * opaque (the old entry hid what is below).  Nothing is followed; 256
 * levels at most.  *st (may be NULL) is added what was taken from old_fd.
 * CBL_EIO (dest_fd may hold a part). */
int sandbox_layer_merge(int old_fd, int dest_fd, unsigned flags, sandbox_copy_stats *st, cbl_error **err);

/* sandbox_layer_merge in a child that joined the sandbox's user namespace
 * (as sandbox_copy_out: old_fd's files of the caller's subordinate ids,
 * unreadable or not the caller's to link, are taken too); in this process
 * when the sandbox has no user namespace of its own. */
int sandbox_merge_out(sandbox_handle *s, int old_fd, int dest_fd, unsigned flags, sandbox_copy_stats *st,
		      cbl_error **err);

/* overlayfs mount options for one lower layer, with '\\', ',' and ':' in the
 * paths escaped as overlayfs expects.  Caller frees. */
char *sandbox_overlay_opts(const char *lower, const char *upper, const char *work);
/* The same with a second read-only layer, top, above lower (NULL: none). */
char *sandbox_overlay_opts2(const char *top, const char *lower, const char *upper, const char *work);

/* Mounts an overlay (lower read-only; upper and work: host directories) at
 * target, a path as the sandbox sees it, in the running sandbox's mount
 * namespace (target is created if missing).  The layers are opened on the
 * host side, so they need not be visible inside.  Unprivileged the overlay
 * belongs to the sandbox's user namespace ("userxattr": the upper layer
 * marks opaque directories and whiteouts with user.overlay.* attributes),
 * which needs layers that belong to the caller.  CBL_EIO. */
int sandbox_mount_overlay(sandbox_handle *s, const char *lower, const char *upper, const char *work,
			  const char *target, cbl_error **err);

/* Ends the sandbox: kills everything, reaps the init and the NAT helper,
 * removes the cgroups.  NULL is fine. */
void sandbox_free(sandbox_handle *s);

/* ---- ids as a normal user (sandbox/idmap.c)
 * Root inside an unprivileged user namespace is the caller outside.  With
 * subordinate ids (/etc/subuid and /etc/subgid name the caller, as useradd
 * gives every new user 65,536 of each) and the setuid helpers
 * newuidmap/newgidmap (Debian's uidmap package), the namespace also maps
 * ids 1..N onto that range: other users exist inside (run-as switches to a
 * real uid, files keep distinct owners, setgroups works, so does a tool that
 * drops privileges, like apt's _apt sandbox).  Without them only the caller
 * is mapped: everything inside runs as root, files of other owners show as
 * nobody, and setgroups is denied. */
typedef struct sandbox_ids {
	uid_t uid;              /* the caller's effective ids, 0 inside */
	gid_t gid;
	uint32_t subuid, nsubuid; /* its first subordinate uid and how many (0: none) */
	uint32_t subgid, nsubgid;
	char newuidmap[64];     /* the helpers' paths, "" when not installed */
	char newgidmap[64];
	char missing[256];      /* "" when the whole range is mapped; else what is
				 * missing, in words for a log line */
	char fuse_overlayfs[64]; /* fuse-overlayfs when the caller can use it (installed,
				  * and /dev/fuse opens read-write): the host's / is then
				  * a writable root unprivileged (sandbox/fuse.c); "" if not */
	char fuse_missing[160];  /* why not, in words for a log line; "" when usable */
} sandbox_ids;

/* Reads the caller's subordinate ids and looks for the helpers and
 * fuse-overlayfs (a few small reads and an open of /dev/fuse; nothing runs).
 * As root, no id is missing (no user namespace is needed). */
void sandbox_ids_probe(sandbox_ids *out);

/* True when a sandbox started now maps more than the caller: run as root,
 * or with subordinate ids and the helpers. */
bool sandbox_ids_full(const sandbox_ids *ids);

/* Runs fn(payload) in a child process that is root of a new user
 * namespace with ids' whole range mapped (sandbox_ids_full must hold), so
 * it can create files of any owner of the range and remove them (an image
 * root unpacked with its owners belongs to them).  The child is a fork of
 * the caller: what fn changes in memory stays in the child, so its results
 * go back through payload in MAP_SHARED memory, and its return value
 * (0..125) becomes *status.  CBL_EIO (nothing run) when the namespace
 * cannot be made or mapped; when the child dies of a signal too. */
int sandbox_ids_run(const sandbox_ids *ids, int (*fn)(void *payload), void *payload, int *status,
		    cbl_error **err);

/* rm -rf of a tree a sandbox of the caller could write to (a bound
 * directory, the build's scratch): what the caller cannot remove itself, a
 * directory of another owner of its range (a build's `chown nobody d; chmod
 * 700 d`), is removed as root of a namespace with the range mapped.  Never
 * follows symlinks; a missing path is fine.  Forks (sandbox_ids_run) only
 * when the plain removal fails. */
int sandbox_ids_rm_rf(const char *path, cbl_error **err);

/* How sandbox_start would enforce the limits on this machine, for the
 * caller to say before it starts (a fallback at start is then a
 * sandbox_warnings line): what it tries first that the machine offers
 * writable.  Strings are static. */
typedef struct sandbox_limit_methods {
	const char *memory; /* "cgroup v2 memory.max", "cgroup v1 memory.limit_in_bytes" or "RLIMIT_AS" */
	const char *pids;   /* "cgroup v2 pids.max", "cgroup v1 pids.max" or "RLIMIT_NPROC" */
	const char *cpus;   /* "CPU affinity" (sched_setaffinity: what nproc counts) */
	int cpus_available; /* CPUs this process may use, the most the affinity can give */
} sandbox_limit_methods;

void sandbox_limit_methods_probe(sandbox_limit_methods *out);

/* The hidden argument that makes a program the sandbox's init: sandbox_start
 * runs `<init program> SANDBOX_INIT_ARG` in the new namespaces, the embedded
 * one or /proc/self/exe. */
#define SANDBOX_INIT_ARG "__codebuild-local-sandbox-init"

/* The init's entry point (PID 1 of the sandbox): call it with main's
 * arguments when argv[1] is SANDBOX_INIT_ARG, before anything else.  Never
 * returns when started by sandbox_start; returns 2 at once (printing
 * nothing) when the process was not, e.g. run by hand. */
int sandbox_init_main(int argc, char **argv);

#endif
