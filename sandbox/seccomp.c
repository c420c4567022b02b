/* sandbox/seccomp.c - the syscalls a build cannot make.
 *
 * In the spirit of the container engines' default profile, written as a
 * deny list (everything else is allowed, so a new harmless syscall never
 * breaks a build): what a container's default profile allows only with a
 * capability it does not have, or not at all.  The capability drop
 * (caps.c) already stops most of these for the build's root as root; the
 * filter matters as well where capabilities do not: in an unprivileged
 * user namespace the build's root has every capability over its own
 * namespaces, and some calls need none (unshare(CLONE_NEWUSER), keyctl,
 * userfaultfd, bpf, perf_event_open).  Denied calls fail with EPERM, as in
 * a container, so tools take their usual "not permitted" path; clone3
 * fails with ENOSYS so that libc falls back to clone, whose flags the
 * filter can read.
 *
 * Normal builds keep working: ptrace (debuggers, strace of their own
 * children: the kernel's ptrace rules still apply, and PID 1 is not
 * dumpable), chroot (SYS_CHROOT is kept, for tools that build a sysroot),
 * character device nodes (harmless: every mount but the minimal /dev is
 * nodev), io_uring, name_to_handle_at, and the other architectures' ABIs
 * of the machine (i386 programs on x86-64) under the same rules.
 */
#include "sandbox/sandbox_internal.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "util/banned.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

#define NS_FLAGS                                                                                   \
	((uint64_t)(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | \
		    CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWTIME))
#define ALWAYS -1, 0, 0
/* value meaning "any bit of mask set" (one rule per bit) */
#define ANY_BIT UINT64_MAX

#if defined(__s390__) || defined(__s390x__)
#define CLONE_FLAGS_ARG 1 /* s390 swaps clone's first two arguments */
#else
#define CLONE_FLAGS_ARG 0
#endif

static const sandbox_syscall_rule rules[] = {
	/* the clock is the host's */
	{"settimeofday", EPERM, ALWAYS},
	{"stime", EPERM, ALWAYS},
	{"clock_settime", EPERM, ALWAYS},
	{"clock_settime64", EPERM, ALWAYS},
	{"adjtimex", EPERM, ALWAYS},
	{"clock_adjtime", EPERM, ALWAYS},
	{"clock_adjtime64", EPERM, ALWAYS},
	/* the view of the files stays the one the sandbox made: no mounts,
	 * no detached mount trees of host filesystems */
	{"mount", EPERM, ALWAYS},
	{"umount", EPERM, ALWAYS},
	{"umount2", EPERM, ALWAYS},
	{"pivot_root", EPERM, ALWAYS},
	{"fsopen", EPERM, ALWAYS},
	{"fsconfig", EPERM, ALWAYS},
	{"fsmount", EPERM, ALWAYS},
	{"fspick", EPERM, ALWAYS},
	{"move_mount", EPERM, ALWAYS},
	{"open_tree", EPERM, ALWAYS},
	{"mount_setattr", EPERM, ALWAYS},
	/* handles name files outside the mount namespace */
	{"open_by_handle_at", EPERM, ALWAYS},
	/* no new namespaces (a new user namespace would give back every
	 * capability over them), no joining others */
	{"unshare", EPERM, 0, NS_FLAGS, ANY_BIT},
	{"clone", EPERM, CLONE_FLAGS_ARG, NS_FLAGS, ANY_BIT},
	{"clone3", ENOSYS, ALWAYS},
	{"setns", EPERM, ALWAYS},
	/* the kernel itself: modules, kexec, swap, reboot, accounting, the
	 * kernel log, I/O ports, quotas, obsolete interfaces */
	{"init_module", EPERM, ALWAYS},
	{"finit_module", EPERM, ALWAYS},
	{"delete_module", EPERM, ALWAYS},
	{"create_module", EPERM, ALWAYS},
	{"query_module", EPERM, ALWAYS},
	{"get_kernel_syms", EPERM, ALWAYS},
	{"kexec_load", EPERM, ALWAYS},
	{"kexec_file_load", EPERM, ALWAYS},
	{"reboot", EPERM, ALWAYS},
	{"swapon", EPERM, ALWAYS},
	{"swapoff", EPERM, ALWAYS},
	{"acct", EPERM, ALWAYS},
	{"syslog", EPERM, ALWAYS},
	{"iopl", EPERM, ALWAYS},
	{"ioperm", EPERM, ALWAYS},
	{"quotactl", EPERM, ALWAYS},
	{"quotactl_fd", EPERM, ALWAYS},
	{"lookup_dcookie", EPERM, ALWAYS},
	{"vhangup", EPERM, ALWAYS},
	{"_sysctl", EPERM, ALWAYS},
	{"uselib", EPERM, ALWAYS},
	{"nfsservctl", EPERM, ALWAYS},
	{"vm86", EPERM, ALWAYS},
	{"vm86old", EPERM, ALWAYS},
	/* the kernel's attack surface that builds do not need */
	{"bpf", EPERM, ALWAYS},
	{"perf_event_open", EPERM, ALWAYS},
	{"userfaultfd", EPERM, ALWAYS},
	{"fanotify_init", EPERM, ALWAYS},
	/* the keyrings are not namespaced: the host's keys */
	{"keyctl", EPERM, ALWAYS},
	{"add_key", EPERM, ALWAYS},
	{"request_key", EPERM, ALWAYS},
	/* no block devices, even on a mount where they would work */
	{"mknod", EPERM, 1, S_IFMT, S_IFBLK},
	{"mknodat", EPERM, 2, S_IFMT, S_IFBLK},
	/* vsock reaches the hypervisor's services, past any network namespace */
	{"socket", EPERM, 0, 0xffffffffu, AF_VSOCK},
};

const sandbox_syscall_rule *sandbox_seccomp_rules(size_t *n)
{
	*n = sizeof(rules) / sizeof(*rules);
	return rules;
}

/* The other ABIs of this machine's architecture, so that a 32-bit program
 * runs (without them the kernel would kill it) and under the same rules. */
static int add_arches(scmp_filter_ctx ctx)
{
	uint32_t native = seccomp_arch_native();
	uint32_t extra[2] = {0, 0};
	if (native == SCMP_ARCH_X86_64) {
		extra[0] = SCMP_ARCH_X86;
		extra[1] = SCMP_ARCH_X32;
	} else if (native == SCMP_ARCH_AARCH64) {
		extra[0] = SCMP_ARCH_ARM;
	}
	for (int i = 0; i < 2; i++) {
		if (!extra[i])
			continue;
		int rc = seccomp_arch_add(ctx, extra[i]);
		if (rc < 0 && rc != -EEXIST)
			return rc;
	}
	return 0;
}

static int add_rule(scmp_filter_ctx ctx, const sandbox_syscall_rule *r)
{
	int nr = seccomp_syscall_resolve_name(r->name);
	if (nr == __NR_SCMP_ERROR)
		return 0; /* unknown to this libseccomp: no architecture of ours has it */
	int rc = 0;
	if (r->arg < 0) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(r->err), nr, 0);
	} else if (r->value == ANY_BIT) {
		for (int bit = 0; bit < 64 && !rc; bit++) {
			uint64_t m = UINT64_C(1) << bit;
			if (r->mask & m)
				rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(r->err), nr, 1,
						      SCMP_CMP((unsigned)r->arg, SCMP_CMP_MASKED_EQ, m, m));
		}
	} else {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(r->err), nr, 1,
				      SCMP_CMP((unsigned)r->arg, SCMP_CMP_MASKED_EQ, r->mask, r->value));
	}
	/* a pseudo number: a syscall of another architecture only (stime,
	 * vm86 on x86-64), which libseccomp may refuse for this one */
	return rc < 0 && nr < 0 ? 0 : rc;
}

int sandbox_seccomp_load(void)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx) {
		errno = ENOMEM;
		return -1;
	}
	int rc = add_arches(ctx);
	for (size_t i = 0; i < sizeof(rules) / sizeof(*rules) && !rc; i++)
		rc = add_rule(ctx, &rules[i]);
	if (!rc)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc) {
		errno = -rc;
		return -1;
	}
	return 0;
}
