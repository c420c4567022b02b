/* sandbox/steps.c - the plan's storage: adding and releasing steps, and the
 * overlay option string; what plan.c and hostview.c build plans with. */
#include "sandbox/sandbox_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/fs.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "util/banned.h"

void sandbox_plan_add(sandbox_plan *p, sandbox_step_kind k, const char *arg, const char *path, int64_t num)
{
	CBL_GROW(p->v, p->n + 1, p->cap);
	p->v[p->n++] = (sandbox_step){k, arg ? cbl_xstrdup(arg) : NULL, path ? cbl_xstrdup(path) : NULL, num};
}

/* a step on rel (absolute, as inside) under the new root */
void sandbox_plan_add_in(sandbox_plan *p, const char *root, sandbox_step_kind k, const char *arg, const char *rel,
			 int64_t num)
{
	char *path = cbl_xasprintf("%s%s", root, rel);
	sandbox_plan_add(p, k, arg, path, num);
	free(path);
}

void sandbox_plan_release(sandbox_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].arg);
		free(p->v[i].path);
		free(p->v[i].src);
	}
	free(p->v);
	*p = (sandbox_plan)SANDBOX_PLAN_INIT;
}

void sandbox_put_escaped(cbl_buf *b, const char *path)
{
	for (const char *c = path; *c; c++) {
		if (*c == '\\' || *c == ',' || *c == ':')
			cbl_buf_putc(b, '\\');
		cbl_buf_putc(b, *c);
	}
}

char *sandbox_overlay_opts(const char *lower, const char *upper, const char *work)
{
	return sandbox_overlay_opts2(NULL, lower, upper, work);
}

char *sandbox_overlay_opts2(const char *top, const char *lower, const char *upper, const char *work)
{
	cbl_buf b = CBL_BUF_INIT;
	cbl_buf_puts(&b, "lowerdir=");
	if (top) {
		sandbox_put_escaped(&b, top);
		cbl_buf_putc(&b, ':');
	}
	sandbox_put_escaped(&b, lower);
	cbl_buf_puts(&b, ",upperdir=");
	sandbox_put_escaped(&b, upper);
	cbl_buf_puts(&b, ",workdir=");
	sandbox_put_escaped(&b, work);
	return cbl_buf_detach(&b);
}

/* The soft open files limit a sandbox's commands start with: the hard
 * limit, at most nr_open and 1048576 (the same as root's or not). */
int64_t sandbox_nofile_target(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	uint64_t want = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_max;
	uint64_t cap = 1048576;
	char *text = NULL;
	size_t len = 0;
	if (cbl_read_file("/proc/sys/fs/nr_open", 64, &text, &len, NULL) == 0) {
		unsigned long long nr = strtoull(text, NULL, 10);
		if (nr && nr < cap)
			cap = nr;
	}
	free(text);
	return (int64_t)(want < cap ? want : cap);
}
