/* sandbox/caps.c - the capabilities a build's root keeps.
 *
 * As a container engine does by default (docker, podman, containerd all
 * start from the same list): a root that can own, chmod and chown files,
 * switch users, bind low ports, ping and chroot, but not administer the
 * machine (no SYS_ADMIN, SYS_MODULE, SYS_TIME, SYS_PTRACE, NET_ADMIN,
 * SYS_RAWIO, DAC_READ_SEARCH, ...).
 *
 * Only the bounding and inheritable sets change in the init: a command run
 * as root gets permitted = effective = bounding at its exec (the kernel's
 * rule for uid 0), one run as another user gets nothing, and the init keeps
 * its own permitted set, so a command (with fewer capabilities) can neither
 * ptrace it nor signal it past the PID namespace's protection of PID 1.
 * Raw syscalls: no libcap for five calls.
 */
#include "sandbox/sandbox_internal.h"

#include <errno.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/banned.h"

#define BIT(c) (UINT64_C(1) << (c))

uint64_t sandbox_caps_default(void)
{
	return BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE) | BIT(CAP_FOWNER) | BIT(CAP_FSETID) | BIT(CAP_KILL) |
	       BIT(CAP_SETGID) | BIT(CAP_SETUID) | BIT(CAP_SETPCAP) | BIT(CAP_NET_BIND_SERVICE) |
	       BIT(CAP_NET_RAW) | BIT(CAP_SYS_CHROOT) | BIT(CAP_MKNOD) | BIT(CAP_AUDIT_WRITE) | BIT(CAP_SETFCAP);
}

int sandbox_caps_limit(uint64_t keep)
{
	/* PR_CAPBSET_READ fails with EINVAL past the kernel's last capability */
	for (int c = 0; c < 64; c++) {
		if (prctl(PR_CAPBSET_READ, (unsigned long)c, 0, 0, 0) < 0)
			break;
		if (!(keep & BIT(c)) && prctl(PR_CAPBSET_DROP, (unsigned long)c, 0, 0, 0) < 0)
			return -1;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -1;
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	d[0].inheritable = (uint32_t)(keep & d[0].permitted);
	d[1].inheritable = (uint32_t)((keep >> 32) & d[1].permitted);
	return (int)syscall(SYS_capset, &h, d);
}
