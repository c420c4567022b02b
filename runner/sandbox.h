/* runner/sandbox.h - every command of a build runs inside Linux namespaces,
 * with no Docker daemon (bubblewrap's model: the parent builds a typed plan,
 * the child replays it).
 *
 * runner_sandbox_start() clones a process into new mount, PID, IPC and UTS
 * namespaces (plus a user namespace when not root, and a network namespace
 * for --network none).  It becomes PID 1 of the build: it sets up the root
 * filesystem (the host's / as the read-only lower layer of an overlay whose
 * upper layer is a private tmpfs, so a build may write anywhere and nothing
 * reaches the host), fresh /proc, minimal /dev, /tmp, the source at
 * /codebuild/output/srcN/src and the scratch at /codebuild/output/tmp, then
 * serves requests from the runner: start a command, kill everything.
 *
 * No orphans: the init has PR_SET_PDEATHSIG(SIGKILL), so when the runner
 * dies for any reason the kernel kills the whole PID namespace.
 *
 * Thread safety: one sandbox per build, used by one thread.
 */
#ifndef RUNNER_SANDBOX_H
#define RUNNER_SANDBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/error.h"

typedef struct runner_sandbox runner_sandbox;

typedef struct runner_sandbox_opts {
	const char *rootfs;        /* the build image's root (read-only lower layer);
				      NULL = the host's / */
	const char *scratch;       /* host dir the private tmpfs is mounted on (must exist) */
	const char *src_host;      /* primary source directory on the host */
	const char *src_inner;     /* where the build sees it: /codebuild/output/srcN/src */
	bool src_snapshot;         /* overlay src_host (read-only lower) instead of binding it */
	const char *src_parent_host; /* bind this at dirname(src_inner) instead (the source
				      * appears in it later: a git clone renamed into place) */
	const char *const *binds;  /* NULL-terminated pairs: host dir, inner path, bound
				      * read-write after the source (secondary sources in
				      * mount mode); inner paths lie inside src_inner */
	const char *tmp_host;      /* build scratch (script.sh, env.sh, ...) on the host */
	const char *tmp_inner;     /* /codebuild/output/tmp */
	const char *hostname;
	bool network_none;         /* private network namespace, loopback only */
	int out_fd;                /* commands' stdout and stderr */
	int64_t memory_bytes;      /* 0 = no limit */
	int64_t pids_max;          /* 0 = no limit */
	int cpus;                  /* CPUs visible to the build (nproc); 0 = all */
	const char *cgroup_name;   /* unique name for the build's cgroups */
} runner_sandbox_opts;

/* Starts the sandbox.  On failure *err says which setup step failed, e.g.
 * "sandbox: mount overlay on /: permission denied". */
int runner_sandbox_start(runner_sandbox **out, const runner_sandbox_opts *opts, cbl_error **err);

/* Warnings from start (limits that could not be applied); NULL-terminated,
 * borrowed. */
const char *const *runner_sandbox_warnings(const runner_sandbox *s);

/* Starts `shell script` inside, in cwd, as run_as (NULL = root) with envp. */
int runner_sandbox_spawn(runner_sandbox *s, const char *shell, const char *script, const char *cwd,
			 const char *run_as, char *const envp[], cbl_error **err);

/* Readable when the running command has ended. */
int runner_sandbox_fd(const runner_sandbox *s);

/* Reads the end of the running command: its wait status (as waitpid's). */
int runner_sandbox_wait(runner_sandbox *s, int *wstatus, cbl_error **err);

/* Kills every process of the build except the init (SIGKILL). */
void runner_sandbox_kill_all(runner_sandbox *s);

/* True when the memory limit was hit (an OOM kill happened). */
bool runner_sandbox_oom(runner_sandbox *s);

/* PID (in our namespace) of the build's init: /proc/PID/root is the build's
 * view of its files. */
pid_t runner_sandbox_pid(const runner_sandbox *s);
/* False when the sandbox could not overlay the source (unprivileged), so
 * the caller must give it a copy instead. */
bool runner_sandbox_can_overlay_source(void);

/* overlayfs mount options for one lower layer, with '\\', ',' and ':' in the
 * paths escaped as overlayfs expects.  Caller frees. */
char *runner_overlay_opts(const char *lower, const char *upper, const char *work);

/* Mounts an overlay (lower read-only; upper and work: host directories) at
 * target, a path as the build sees it, in the running sandbox's mount
 * namespace (target is created if missing).  The layers are opened on the
 * host side, so they need not be visible inside.  Root only (not in an
 * unprivileged user namespace): CBL_EINVAL there. */
int runner_sandbox_mount_overlay(runner_sandbox *s, const char *lower, const char *upper, const char *work,
				 const char *target, cbl_error **err);

/* Ends the sandbox: kills everything, reaps the init, removes cgroups. */
void runner_sandbox_free(runner_sandbox *s);

#endif
