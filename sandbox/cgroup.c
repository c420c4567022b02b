/* sandbox/cgroup.c - memory and process limits: a cgroup v2 when the host has
 * its memory controller there, else cgroup v1 directories, else rlimits in
 * the init (with a warning that says what they do not do). */
#include "sandbox/sandbox_internal.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

static bool read_counter(const char *path, const char *key, long long *out)
{
	char *data = NULL;
	size_t len = 0;
	cbl_error *e = NULL;
	bool found = false;
	if (cbl_read_file(path, 1 << 16, &data, &len, &e) == 0) {
		size_t kl = strlen(key);
		for (char *l = data; l && *l;) {
			if (!strncmp(l, key, kl) && l[kl] == ' ') {
				*out = strtoll(l + kl + 1, NULL, 10);
				found = true;
				break;
			}
			l = strchr(l, '\n');
			if (l)
				l++;
		}
	}
	cbl_error_free(e);
	free(data);
	return found;
}

/* A cgroup v1 directory codebuild-local/<name> of controller with file set
 * to value and pid in it; NULL (nothing left behind) when that fails. */
static char *v1_limit(const char *controller, const char *file, int64_t value, const char *name,
		      const char *pid)
{
	char *dir = cbl_xasprintf("/sys/fs/cgroup/%s/codebuild-local/%s", controller, name);
	cbl_error *e = NULL;
	bool ok = false;
	if (cbl_mkdir_p(dir, 0755, &e) == 0) {
		char v[32];
		snprintf(v, sizeof(v), "%lld", (long long)value);
		char *f = cbl_path_join(dir, file);
		char *t = cbl_path_join(dir, "cgroup.procs");
		ok = sandbox_write_str(f, v) == 0 && sandbox_write_str(t, pid) == 0;
		free(f);
		free(t);
	}
	cbl_error_free(e);
	if (!ok) {
		rmdir(dir);
		free(dir);
		dir = NULL;
	}
	return dir;
}

/* An AddressSanitizer build (the tests' second run) reserves terabytes of
 * address space: an RLIMIT_AS would kill it. */
static bool asan_build(void)
{
#ifdef __SANITIZE_ADDRESS__
	return true;
#else
	return false;
#endif
}

static bool v2_has_memory(void)
{
	char *ctl = NULL;
	size_t len = 0;
	cbl_error *e = NULL;
	bool mem = false;
	if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0 &&
	    cbl_read_file("/sys/fs/cgroup/cgroup.controllers", 4096, &ctl, &len, &e) == 0)
		mem = strstr(ctl, "memory") != NULL;
	free(ctl);
	cbl_error_free(e);
	return mem;
}

/* codebuild-local/<name> in the v2 hierarchy with both limits and pid in
 * it; false (nothing left behind but the shared parent) when that fails. */
static bool v2_limits(sandbox_handle *s, const char *pid, const char *name, int64_t memory_bytes,
		      int64_t pids_max)
{
	s->cg_v2_parent = cbl_xstrdup("/sys/fs/cgroup/codebuild-local");
	mkdir(s->cg_v2_parent, 0755);
	sandbox_write_str("/sys/fs/cgroup/cgroup.subtree_control", "+memory +pids");
	char *sub = cbl_path_join(s->cg_v2_parent, "cgroup.subtree_control");
	sandbox_write_str(sub, "+memory +pids");
	sandbox_write_str(sub, "+io"); /* io.stat, for the build's usage; optional */
	free(sub);
	s->cg_v2 = cbl_path_join(s->cg_v2_parent, name);
	if (mkdir(s->cg_v2, 0755) == 0) {
		char *f = cbl_path_join(s->cg_v2, "memory.max");
		char v[32];
		snprintf(v, sizeof(v), "%lld", (long long)memory_bytes);
		bool ok_mem = !memory_bytes || sandbox_write_str(f, v) == 0;
		free(f);
		f = cbl_path_join(s->cg_v2, "pids.max");
		snprintf(v, sizeof(v), "%lld", (long long)pids_max);
		bool ok_pids = !pids_max || sandbox_write_str(f, v) == 0;
		free(f);
		f = cbl_path_join(s->cg_v2, "cgroup.procs");
		bool joined = sandbox_write_str(f, pid) == 0;
		free(f);
		if (joined && ok_mem && ok_pids)
			return true;
	}
	rmdir(s->cg_v2);
	free(s->cg_v2);
	s->cg_v2 = NULL;
	return false;
}

void sandbox_cgroups_apply(sandbox_handle *s, pid_t pid, const char *name, int64_t memory_bytes,
			   int64_t pids_max)
{
	char num[32];
	snprintf(num, sizeof(num), "%ld", (long)pid);
	if (!memory_bytes && !pids_max)
		return;
	if (v2_has_memory() && v2_limits(s, num, name, memory_bytes, pids_max))
		return;
	/* cgroup v1 */
	if (memory_bytes) {
		s->cg_mem = v1_limit("memory", "memory.limit_in_bytes", memory_bytes, name, num);
		if (!s->cg_mem && asan_build()) {
			cbl_strv_push(&s->warnings, "no writable memory cgroup on this host, and this is an "
						    "AddressSanitizer build: the memory limit is not enforced");
		} else if (!s->cg_mem) {
			s->rlim_fallback |= SANDBOX_RLIM_AS;
			cbl_strv_push(&s->warnings, "no writable memory cgroup on this host: the memory limit is "
						    "applied as RLIMIT_AS (address space), which runtimes that "
						    "reserve large address ranges (JVM, Go) may hit below the "
						    "limit, and an out-of-memory kill is not reported as such");
		}
	}
	if (pids_max) {
		s->cg_pids = v1_limit("pids", "pids.max", pids_max, name, num);
		if (!s->cg_pids) {
			s->rlim_fallback |= SANDBOX_RLIM_NPROC;
			cbl_strv_push(&s->warnings, "no writable pids cgroup on this host: the process limit is "
						    "applied as RLIMIT_NPROC, which counts all processes of the "
						    "invoking user, not only the sandbox's (and not at all for root)");
		}
	}
}

bool sandbox_oom(sandbox_handle *s)
{
	long long n = 0;
	if (s->cg_v2) {
		char *f = cbl_path_join(s->cg_v2, "memory.events");
		bool hit = read_counter(f, "oom_kill", &n) && n > 0;
		free(f);
		return hit;
	}
	if (s->cg_mem) {
		char *f = cbl_path_join(s->cg_mem, "memory.oom_control");
		bool hit = read_counter(f, "oom_kill", &n) && n > 0;
		free(f);
		if (hit)
			return true;
		f = cbl_path_join(s->cg_mem, "memory.failcnt");
		char *data = NULL;
		size_t len = 0;
		cbl_error *e = NULL;
		if (cbl_read_file(f, 64, &data, &len, &e) == 0)
			hit = strtoll(data, NULL, 10) > 0;
		cbl_error_free(e);
		free(data);
		free(f);
		return hit;
	}
	return false;
}

/* One number in the file dir/name; false when it is missing. */
static bool read_num(const char *dir, const char *name, long long *out)
{
	char *f = cbl_path_join(dir, name);
	char *data = NULL;
	size_t len = 0;
	cbl_error *e = NULL;
	bool ok = cbl_read_file(f, 64, &data, &len, &e) == 0 && len > 0;
	if (ok)
		*out = strtoll(data, NULL, 10);
	cbl_error_free(e);
	free(data);
	free(f);
	return ok;
}

/* io.stat's rbytes= and wbytes=, added up over its devices. */
static void v2_io(const char *dir, sandbox_usage *u)
{
	char *f = cbl_path_join(dir, "io.stat");
	char *data = NULL;
	size_t len = 0;
	cbl_error *e = NULL;
	if (cbl_read_file(f, 1 << 16, &data, &len, &e) == 0) {
		long long r = 0, w = 0;
		for (const char *p = data; (p = strstr(p, "bytes=")); p += 6) {
			if (p - data >= 1 && p[-1] == 'r')
				r += strtoll(p + 6, NULL, 10);
			else if (p - data >= 1 && p[-1] == 'w')
				w += strtoll(p + 6, NULL, 10);
		}
		u->read_bytes = r;
		u->write_bytes = w;
	}
	cbl_error_free(e);
	free(data);
	free(f);
}

bool sandbox_cgroups_usage(const sandbox_handle *s, sandbox_usage *u)
{
	long long n = 0;
	if (s->cg_v2) {
		char *f = cbl_path_join(s->cg_v2, "cpu.stat");
		if (read_counter(f, "usage_usec", &n)) {
			u->cpu_us = n;
			if (read_counter(f, "user_usec", &n))
				u->user_us = n;
			if (read_counter(f, "system_usec", &n))
				u->system_us = n;
		}
		free(f);
		if (read_num(s->cg_v2, "memory.peak", &n))
			u->mem_peak = n;
		v2_io(s->cg_v2, u);
		u->source = "cgroup v2";
		return true;
	}
	if (s->cg_mem && read_num(s->cg_mem, "memory.max_usage_in_bytes", &n)) {
		u->mem_peak = n;
		u->source = "cgroup v1 memory, process tree CPU and I/O";
		return true;
	}
	return false;
}

void sandbox_cgroups_reset_peak(const sandbox_handle *s)
{
	if (!s->cg_mem)
		return;
	char *f = cbl_path_join(s->cg_mem, "memory.max_usage_in_bytes");
	sandbox_write_str(f, "0");
	free(f);
}

void sandbox_cgroups_remove(sandbox_handle *s)
{
	/* cgroups empty once the namespace is gone; give the kernel a moment */
	char *dirs[] = {s->cg_v2, s->cg_mem, s->cg_pids};
	for (size_t i = 0; i < 3; i++) {
		if (!dirs[i])
			continue;
		for (int tries = 0; tries < 100 && rmdir(dirs[i]) < 0 && errno == EBUSY; tries++)
			usleep(2000);
		free(dirs[i]);
	}
	s->cg_v2 = s->cg_mem = s->cg_pids = NULL;
	free(s->cg_v2_parent);
	s->cg_v2_parent = NULL;
}

void sandbox_limit_methods_probe(sandbox_limit_methods *out)
{
	/* the order of sandbox_cgroups_apply: a writable v2 hierarchy with the
	 * memory controller, else the v1 controllers, else rlimits */
	bool v2 = v2_has_memory() && access("/sys/fs/cgroup", W_OK) == 0;
	out->memory = v2 ? "cgroup v2 memory.max"
		      : access("/sys/fs/cgroup/memory", W_OK) == 0 ? "cgroup v1 memory.limit_in_bytes"
								      : "RLIMIT_AS";
	out->pids = v2 ? "cgroup v2 pids.max" : access("/sys/fs/cgroup/pids", W_OK) == 0 ? "cgroup v1 pids.max"
											  : "RLIMIT_NPROC";
	out->cpus = "CPU affinity";
	cpu_set_t set;
	out->cpus_available = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 0;
}
