/* spec/parse.c - spec_parse_buffer/spec_parse_file: libyaml loading, YAML
 * syntax errors, and the top of the grammar (version, run-as, env, proxy,
 * phases).  artifacts/reports/cache/batch live in sections.c.
 *
 * CodeBuild compatibility choices (see shared/reference/buildspec.md):
 * - Only the first YAML document is used (with a warning), like a decoder
 *   that reads one value.
 * - Unknown keys are warnings: the service ignores them, and real projects
 *   carry typos ("finaly", "comands") that silently do nothing.  Unknown
 *   phase names are errors, as in the service ("Invalid buildspec phase
 *   name: ...").
 * - A phase without commands, `commands:` as one string, and null list items
 *   are warnings: long-lived real buildspecs have them and build fine.
 * - Type errors point at the key whose value has the wrong type (the line a
 *   user looks for); errors about a scalar's content point at the scalar.
 * - Under opts.strict every warning is an error.
 */
#include "spec/spec_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/banned.h"

static const char *const phase_names[] = {"install", "pre_build", "build", "post_build", NULL};
static const char *const top_keys[] = {"version", "run-as",  "env",   "proxy",
				       "batch",   "phases",  "reports", "artifacts",
				       "cache",   "environment_variables", NULL};
static const char *const env_keys[] = {"shell",		    "variables",		"parameter-store",
				       "secrets-manager", "exported-variables", "git-credential-helper",
				       NULL};
static const char *const phase_keys[] = {"run-as", "on-failure", "runtime-versions", "commands", "finally",
					 NULL};

/* on-failure ------------------------------------------------------------------- */

/* glibc's regcomp copies the operand of a repetition (`x+` becomes `xx*`,
 * `x{m,n}` n copies of x), and stacked repetitions such as `x*+++++++++++`
 * make its epsilon-closure pass run for many seconds (fuzzer finds).  So:
 * adjacent repetition operators, which POSIX leaves undefined in an ERE, are
 * refused, and the size glibc would expand to is estimated and capped at
 * far more than a retry regex could sensibly need. */
#define REGEX_MAX_LEN 256
#define REGEX_MAX_COST 10000

static unsigned long read_bound(const char **pp)
{
	unsigned long v = 0;
	while (**pp >= '0' && **pp <= '9') {
		if (v < REGEX_MAX_COST)
			v = v * 10 + (unsigned long)(**pp - '0');
		(*pp)++;
	}
	return v;
}

/* NULL when the regex is acceptable, else why not. */
static const char *regex_too_complex(const char *re)
{
	struct {
		unsigned long sum, last;
	} st[REGEX_MAX_LEN + 1];
	size_t sp = 0;
	const char *p = re;
	bool after_rep = false;

	if (strlen(re) > REGEX_MAX_LEN)
		return "the regex is longer than 256 characters";
	st[0].sum = st[0].last = 0;
	while (*p) {
		unsigned long factor = 0; /* 0: not a repetition */
		if (*p == '(') {
			st[++sp].sum = 0;
			st[sp].last = 0;
			p++;
			after_rep = false;
			continue;
		}
		if (*p == ')' && sp > 0) {
			unsigned long g = st[sp--].sum + 1;
			st[sp].sum += g;
			st[sp].last = g;
			p++;
		} else if (*p == '*' || *p == '?') {
			factor = 1;
			p++;
		} else if (*p == '+') {
			factor = 2;
			p++;
		} else if (*p == '{') {
			const char *q = p + 1;
			unsigned long m = read_bound(&q), n = m;
			if (*q == ',') {
				q++;
				n = *q == '}' ? m : read_bound(&q);
			}
			factor = (m > n ? m : n) + 1;
			p = *q ? q + 1 : q;
		} else if (*p == '[') {
			/* a bracket expression is one atom: skip to its ']' */
			const char *q = p + 1;
			if (*q == '^')
				q++;
			if (*q == ']')
				q++;
			while (*q && *q != ']') {
				if (*q == '[' && (q[1] == ':' || q[1] == '.' || q[1] == '=')) {
					const char *e = strchr(q + 2, q[1]);
					q = e && e[1] == ']' ? e + 2 : q + 1;
				} else {
					q++;
				}
			}
			p = *q ? q + 1 : q;
			st[sp].sum += 1;
			st[sp].last = 1;
		} else {
			if (*p == '\\' && p[1])
				p++;
			p++;
			st[sp].sum += 1;
			st[sp].last = 1;
		}
		if (factor) {
			if (after_rep)
				return "the regex repeats a repetition (like 'a+*'), which POSIX leaves undefined";
			unsigned long grown = st[sp].last * factor;
			if (grown > REGEX_MAX_COST)
				return "the regex is too complex";
			st[sp].sum += grown - st[sp].last;
			st[sp].last = grown;
		}
		after_rep = factor != 0;
		if (st[sp].sum > REGEX_MAX_COST)
			return "the regex is too complex";
	}
	while (sp > 0) {
		unsigned long g = st[sp--].sum + 1;
		st[sp].sum += g;
	}
	return st[0].sum > REGEX_MAX_COST ? "the regex is too complex" : NULL;
}

static bool parse_retry_count(const char *s, size_t n, int *out)
{
	if (n == 0 || n > 3)
		return false;
	int v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	if (v > 100)
		return false;
	*out = v;
	return true;
}

bool spec_parse_on_failure(const char *s, spec_on_failure *out, cbl_buf *why)
{
	memset(out, 0, sizeof(*out));
	if (!strcmp(s, "ABORT")) {
		out->kind = SPEC_ON_FAILURE_ABORT;
		return true;
	}
	if (!strcmp(s, "CONTINUE")) {
		out->kind = SPEC_ON_FAILURE_CONTINUE;
		return true;
	}
	if (!strcmp(s, "RETRY")) {
		out->kind = SPEC_ON_FAILURE_RETRY;
		out->retry_count = 3;
		return true;
	}
	if (strncmp(s, "RETRY-", 6) != 0)
		return false;

	const char *rest = s + 6, *re = NULL;
	size_t digits = strspn(rest, "0123456789");
	int count = 3;
	if (*rest == '\0') {
		if (why)
			cbl_buf_puts(why, "RETRY- needs a count or a regex");
		return false;
	}
	if (digits > 0 && (rest[digits] == '\0' || rest[digits] == '-')) {
		if (!parse_retry_count(rest, digits, &count)) {
			if (why)
				cbl_buf_puts(why, "the retry count must be from 0 to 100");
			return false;
		}
		if (rest[digits] == '-') {
			re = rest + digits + 1;
			if (*re == '\0') {
				if (why)
					cbl_buf_puts(why, "the regex after the count is empty");
				return false;
			}
		}
	} else {
		re = rest;
	}
	if (re) {
		regex_t rx;
		const char *too = regex_too_complex(re);
		if (too) {
			if (why)
				cbl_buf_puts(why, too);
			return false;
		}
		int rc = regcomp(&rx, re, REG_EXTENDED | REG_NOSUB);
		if (rc != 0) {
			if (why) {
				char msg[128];
				regerror(rc, &rx, msg, sizeof(msg));
				cbl_buf_printf(why, "the regex does not compile: %s", msg);
			}
			return false;
		}
		regfree(&rx);
	}
	out->kind = SPEC_ON_FAILURE_RETRY;
	out->retry_count = count;
	out->retry_regex = re ? cbl_xstrdup(re) : NULL;
	return true;
}

static void walk_on_failure(spec_ctx *c, const spec_pair *e, const char *path, spec_on_failure *of)
{
	if (!spec_is_scalar(e->val)) {
		spec_err(c, spec_key_pos(e),
			 "%s must be one of ABORT, CONTINUE, RETRY, RETRY-<count>, RETRY-<regex> or RETRY-<count>-<regex>, not %s",
			 path, spec_kind(e->val));
		return;
	}
	const char *s = (const char *)e->val->data.scalar.value;
	size_t len = e->val->data.scalar.length;
	cbl_buf why = CBL_BUF_INIT;
	spec_on_failure parsed;
	if (strlen(s) != len || !spec_parse_on_failure(s, &parsed, &why)) {
		char *d = spec_disp(s, len);
		spec_err(c, spec_node_pos(e->val),
			 "invalid on-failure value '%s' (expected ABORT, CONTINUE, RETRY, RETRY-<count>, RETRY-<regex> or RETRY-<count>-<regex>)%s%s",
			 d, why.len ? ": " : "", cbl_buf_cstr(&why));
		free(d);
		cbl_buf_release(&why);
		return;
	}
	cbl_buf_release(&why);
	free(of->retry_regex);
	*of = parsed;
	of->pos = spec_node_pos(e->val);
}

/* phases ------------------------------------------------------------------------- */

/* `python: 3.10` is the float 3.1 to a YAML reader; CodeBuild then selects
 * (or fails to find) 3.1.  Warn when the plain text has a non-zero fraction
 * that ends in 0, i.e. when the number reads differently from the text.
 * (`6.0` reads as 6, which selects the same major, so it is left alone.) */
static void check_runtime_version(spec_ctx *c, const spec_pair *e, const char *epath)
{
	const yaml_node_t *v = e->val;
	const char *s = (const char *)v->data.scalar.value;
	size_t len = v->data.scalar.length;
	if (v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || len > 32)
		return;
	size_t ip = strspn(s, "0123456789");
	if (ip == 0 || s[ip] != '.')
		return;
	size_t fp = strspn(s + ip + 1, "0123456789");
	if (fp == 0 || ip + 1 + fp != len || s[len - 1] != '0')
		return;
	size_t end = len;
	while (end > ip + 1 && s[end - 1] == '0')
		end--;
	if (end == ip + 1)
		return; /* 6.0, 8.00: all zeros */
	spec_warn(c, spec_node_pos(v),
		  "%s: %s is an unquoted number that CodeBuild reads as %.*s; quote it (\"%s\") to select version %s",
		  epath, s, (int)end, s, s, s);
}

static void walk_runtime_versions(spec_ctx *c, const spec_pair *e, spec_phase_id id, spec_phase *ph)
{
	const char *name = spec_phase_yaml_name(id);
	if (id != SPEC_PHASE_INSTALL) {
		spec_warn(c, spec_key_pos(e),
			  "runtime-versions is only used in the install phase; ignored in phase '%s'", name);
		return;
	}
	const char *path = "phases.install.runtime-versions";
	if (spec_is_null(e->val) ||
	    (spec_is_map(e->val) && e->val->data.mapping.pairs.top == e->val->data.mapping.pairs.start)) {
		spec_err(c, spec_key_pos(e), "%s must name at least one runtime (e.g. python: \"3.12\")", path);
		return;
	}
	if (!spec_is_map(e->val)) {
		spec_err(c, spec_key_pos(e), "%s must be a mapping of runtime: version, not %s", path,
			 spec_kind(e->val));
		return;
	}
	spec_get_kvlist(c, e, path, &ph->runtime_versions, check_runtime_version);
}

static void walk_phase(spec_ctx *c, spec_phase_id id, const spec_pair *p)
{
	spec_buildspec *bs = c->bs;
	spec_phase *ph = &bs->phases[id];
	const char *name = spec_phase_yaml_name(id);
	char *path = cbl_xasprintf("phases.%s", name);
	bool has_commands = false;
	spec_map m = {0};

	ph->present = true;
	ph->pos = spec_key_pos(p);
	if (spec_is_null(p->val)) {
		spec_warn(c, ph->pos, "phase '%s' is empty", name);
		goto out;
	}
	if (!spec_is_map(p->val)) {
		spec_err(c, ph->pos, "phase '%s' must be a mapping (with commands:), not %s", name, spec_kind(p->val));
		goto out;
	}
	spec_map_get(c, p->val, path, &m);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		char *kpath = cbl_xasprintf("%s.%s", path, e->disp);
		if (spec_name_is(e, "run-as")) {
			spec_get_str(c, e, kpath, &ph->run_as);
			ph->run_as_pos = spec_val_pos(e);
		} else if (spec_name_is(e, "on-failure")) {
			if (bs->version == SPEC_VERSION_0_1)
				spec_warn(c, spec_key_pos(e), "on-failure is a version 0.2 key");
			walk_on_failure(c, e, kpath, &ph->on_failure);
		} else if (spec_name_is(e, "runtime-versions")) {
			walk_runtime_versions(c, e, id, ph);
		} else if (spec_name_is(e, "commands")) {
			has_commands = true;
			spec_get_strlist(c, e, kpath, SPEC_LIST_COMMANDS | SPEC_LIST_SCALAR_OK, &ph->commands);
		} else if (spec_name_is(e, "finally")) {
			if (bs->version == SPEC_VERSION_0_1)
				spec_warn(c, spec_key_pos(e), "finally is a version 0.2 key");
			spec_get_strlist(c, e, kpath, SPEC_LIST_COMMANDS | SPEC_LIST_SCALAR_OK, &ph->finally);
		} else {
			spec_unknown_key(c, e, path, phase_keys);
		}
		free(kpath);
	}
	if (!has_commands && ph->commands.n == 0 && ph->finally.n == 0 &&
	    !(id == SPEC_PHASE_INSTALL && ph->runtime_versions.n > 0))
		spec_warn(c, ph->pos, "phase '%s' has no commands", name);
out:
	spec_map_release(&m);
	free(path);
}

static void walk_phases(spec_ctx *c, const spec_pair *p)
{
	spec_map m;
	if (!spec_is_map(p->val)) {
		spec_err(c, spec_key_pos(p),
			 "phases must be a mapping of phase names (install, pre_build, build, post_build), not %s",
			 spec_kind(p->val));
		return;
	}
	c->bs->has_phases = true;
	spec_map_get(c, p->val, "phases", &m);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		int id = -1;
		for (int k = 0; k < SPEC_PHASE_COUNT; k++)
			if (spec_name_is(e, phase_names[k]))
				id = k;
		if (id < 0) {
			/* the agent's words, as a 2020 log has them (the name as
			 * written, the list in lower case; a 2019 agent wrote both
			 * upper-cased: reference §1.3, docs/fidelity.md) */
			cbl_buf b = CBL_BUF_INIT, hint = CBL_BUF_INIT;
			cbl_buf_printf(&b, "Invalid buildspec phase name: %s. Expecting: build,install,post_build,pre_build",
				       e->disp);
			if (strlen(e->name) == e->len)
				spec_hint(&hint, e->name, phase_names);
			spec_err_service(c, spec_key_pos(e), cbl_buf_cstr(&b), hint.len ? cbl_buf_cstr(&hint) : NULL);
			cbl_buf_release(&b);
			cbl_buf_release(&hint);
			continue;
		}
		walk_phase(c, (spec_phase_id)id, e);
	}
	spec_map_release(&m);
}

/* env ------------------------------------------------------------------------------ */

static void walk_exported(spec_ctx *c, const spec_pair *e)
{
	spec_strlist *l = &c->bs->env.exported_variables;
	size_t before = l->n;
	spec_get_strlist(c, e, "env.exported-variables", SPEC_LIST_SCALAR_OK, l);
	for (size_t i = before; i < l->n; i++) {
		if (strncmp(l->items[i].s, "AWS_", 4) != 0)
			continue;
		char *d = spec_disp(l->items[i].s, strlen(l->items[i].s));
		spec_warn(c, l->items[i].pos,
			  "env.exported-variables: '%s' starts with AWS_; CodeBuild cannot export such variables", d);
		free(d);
	}
}

static void check_misplaced_env_keys(spec_ctx *c, const spec_pair *p)
{
	spec_map m;
	if (!spec_is_map(p->val))
		return;
	spec_map_get(c, p->val, "env.variables", &m);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		for (size_t k = 0; env_keys[k]; k++)
			if (spec_name_is(e, env_keys[k]) && !spec_is_scalar(e->val))
				spec_warn(c, spec_key_pos(e),
					  "'%s' is indented under env.variables; it belongs directly under env",
					  env_keys[k]);
	}
	spec_map_release(&m);
}

static void walk_shell(spec_ctx *c, const spec_pair *e)
{
	char **shell = &c->bs->env.shell;
	if (!spec_get_str(c, e, "env.shell", shell))
		return;
	if (!strcmp(*shell, "bash") || !strcmp(*shell, "/bin/sh"))
		return;
	char *d = spec_disp(*shell, strlen(*shell));
	if (!strcmp(*shell, "powershell.exe") || !strcmp(*shell, "cmd.exe"))
		spec_warn(c, spec_node_pos(e->val), "env.shell '%s' is a Windows shell; this runner uses /bin/sh", d);
	else
		spec_warn(c, spec_node_pos(e->val),
			  "env.shell '%s' is not one of bash, /bin/sh (Linux) or powershell.exe, cmd.exe (Windows)", d);
	free(d);
}

static void walk_env(spec_ctx *c, const spec_pair *p)
{
	spec_buildspec *bs = c->bs;
	spec_map m;
	if (spec_is_null(p->val)) {
		spec_warn(c, spec_key_pos(p), "env is empty (null)");
		return;
	}
	if (!spec_is_map(p->val)) {
		spec_err(c, spec_key_pos(p), "env must be a mapping, not %s", spec_kind(p->val));
		return;
	}
	if (bs->version == SPEC_VERSION_0_1)
		spec_warn(c, spec_key_pos(p), "env is a version 0.2 key; version 0.1 uses environment_variables");
	spec_map_get(c, p->val, "env", &m);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		if (spec_name_is(e, "shell")) {
			walk_shell(c, e);
		} else if (spec_name_is(e, "variables")) {
			check_misplaced_env_keys(c, e);
			spec_get_kvlist(c, e, "env.variables", &bs->env.variables, NULL);
		} else if (spec_name_is(e, "parameter-store")) {
			spec_get_kvlist(c, e, "env.parameter-store", &bs->env.parameter_store, NULL);
		} else if (spec_name_is(e, "secrets-manager")) {
			spec_get_kvlist(c, e, "env.secrets-manager", &bs->env.secrets_manager, NULL);
		} else if (spec_name_is(e, "exported-variables")) {
			walk_exported(c, e);
		} else if (spec_name_is(e, "git-credential-helper")) {
			spec_get_bool(c, e, "env.git-credential-helper", &bs->env.git_credential_helper);
			bs->env.git_credential_helper_pos = spec_key_pos(e);
		} else {
			spec_unknown_key(c, e, "env", env_keys);
		}
	}
	spec_map_release(&m);
}

static void walk_env01(spec_ctx *c, const spec_pair *p)
{
	static const char *const keys[] = {"plaintext", NULL};
	spec_map m;
	if (spec_is_null(p->val)) {
		spec_warn(c, spec_key_pos(p), "environment_variables is empty (null)");
		return;
	}
	if (!spec_is_map(p->val)) {
		spec_err(c, spec_key_pos(p), "environment_variables must be a mapping, not %s", spec_kind(p->val));
		return;
	}
	if (c->bs->version == SPEC_VERSION_0_2)
		spec_warn(c, spec_key_pos(p),
			  "environment_variables is a version 0.1 key; version 0.2 uses env.variables");
	spec_map_get(c, p->val, "environment_variables", &m);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		if (spec_name_is(e, "plaintext"))
			spec_get_kvlist(c, e, "environment_variables.plaintext", &c->bs->env.variables, NULL);
		else
			spec_unknown_key(c, e, "environment_variables", keys);
	}
	spec_map_release(&m);
}

static bool valid_var_name(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '_'))
			return false;
	return true;
}

static void check_var_names(spec_ctx *c, const spec_kvlist *l, const char *path)
{
	for (size_t i = 0; i < l->n; i++) {
		const spec_kv *kv = &l->items[i];
		char *d = spec_disp(kv->key, strlen(kv->key));
		if (!strncmp(kv->key, "CODEBUILD_", 10))
			spec_warn(c, kv->pos, "%s.%s: names starting with CODEBUILD_ are reserved by CodeBuild", path,
				  d);
		else if (!valid_var_name(kv->key))
			spec_warn(c, kv->pos, "%s.%s: '%s' is not a valid shell variable name", path, d, d);
		free(d);
	}
}

static void walk_proxy(spec_ctx *c, const spec_pair *p)
{
	static const char *const keys[] = {"upload-artifacts", "logs", NULL};
	spec_map m;
	if (spec_is_null(p->val)) {
		spec_warn(c, spec_key_pos(p), "proxy is empty (null)");
		return;
	}
	if (!spec_is_map(p->val)) {
		spec_err(c, spec_key_pos(p), "proxy must be a mapping, not %s", spec_kind(p->val));
		return;
	}
	spec_map_get(c, p->val, "proxy", &m);
	c->bs->proxy.pos = spec_key_pos(p);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *e = &m.p[i];
		if (spec_name_is(e, "upload-artifacts"))
			spec_get_bool(c, e, "proxy.upload-artifacts", &c->bs->proxy.upload_artifacts);
		else if (spec_name_is(e, "logs"))
			spec_get_bool(c, e, "proxy.logs", &c->bs->proxy.logs);
		else
			spec_unknown_key(c, e, "proxy", keys);
	}
	spec_map_release(&m);
}

/* top level -------------------------------------------------------------------- */

static void walk_version(spec_ctx *c, const spec_pair *vp, const yaml_node_t *root)
{
	spec_buildspec *bs = c->bs;
	bs->version = SPEC_VERSION_0_2; /* assumed for the rest of the walk if invalid */
	if (!vp) {
		spec_err(c, spec_node_pos(root), "missing required 'version' (expected 0.1 or 0.2)");
		return;
	}
	bs->version_pos = spec_key_pos(vp);
	if (!spec_is_scalar(vp->val)) {
		spec_err(c, spec_key_pos(vp), "version must be 0.1 or 0.2, not %s", spec_kind(vp->val));
		return;
	}
	const char *s = (const char *)vp->val->data.scalar.value;
	size_t len = vp->val->data.scalar.length;
	if (len == 3 && !strcmp(s, "0.1")) {
		bs->version = SPEC_VERSION_0_1;
		return;
	}
	if (len == 3 && !strcmp(s, "0.2"))
		return;
	/* A plain scalar is a YAML float: 0.20 is 0.2. */
	if (vp->val->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && len > 0 && len < 32 &&
	    strspn(s, "0123456789.") == len) {
		char *end = NULL;
		double d = strtod(s, &end);
		if (end == s + len && d == 0.1) {
			bs->version = SPEC_VERSION_0_1;
			return;
		}
		if (end == s + len && d == 0.2)
			return;
	}
	char *d = spec_disp(s, len);
	spec_err(c, spec_node_pos(vp->val), "unsupported version '%s' (expected 0.1 or 0.2)", d);
	free(d);
}

static bool is_phase_name(const spec_pair *p)
{
	for (size_t k = 0; phase_names[k]; k++)
		if (spec_name_is(p, phase_names[k]))
			return true;
	return false;
}

static void walk_root(spec_ctx *c, yaml_node_t *root)
{
	spec_buildspec *bs = c->bs;
	spec_map m;
	bool phases_key = false;

	if (!spec_is_map(root)) {
		spec_err(c, spec_node_pos(root),
			 "the buildspec must be a mapping (version:, phases:, ...), not %s", spec_kind(root));
		return;
	}
	spec_map_get(c, root, "the top level", &m);
	walk_version(c, spec_map_find(&m, "version"), root);
	for (size_t i = 0; i < m.n; i++) {
		const spec_pair *p = &m.p[i];
		if (spec_name_is(p, "version")) {
			continue;
		} else if (spec_name_is(p, "run-as")) {
			spec_get_str(c, p, "run-as", &bs->run_as);
			bs->run_as_pos = spec_val_pos(p);
		} else if (spec_name_is(p, "env")) {
			walk_env(c, p);
		} else if (spec_name_is(p, "environment_variables")) {
			walk_env01(c, p);
		} else if (spec_name_is(p, "proxy")) {
			walk_proxy(c, p);
		} else if (spec_name_is(p, "batch")) {
			spec_walk_batch(c, p);
		} else if (spec_name_is(p, "phases")) {
			phases_key = true;
			walk_phases(c, p);
		} else if (spec_name_is(p, "reports")) {
			spec_walk_reports(c, p);
		} else if (spec_name_is(p, "artifacts")) {
			spec_walk_artifacts(c, p);
		} else if (spec_name_is(p, "cache")) {
			spec_walk_cache(c, p);
		} else if (is_phase_name(p)) {
			spec_warn(c, spec_key_pos(p),
				  "unknown key '%s' at the top level: phases belong under 'phases:' (check the indentation)",
				  p->disp);
		} else {
			spec_unknown_key(c, p, "the top level", top_keys);
		}
	}
	if (!phases_key) {
		if (bs->batch.present)
			spec_warn(c, spec_node_pos(root), "no 'phases' section: this buildspec only defines batch builds");
		else
			spec_err(c, spec_node_pos(root), "no 'phases' section (required)");
	}
	check_var_names(c, &bs->env.variables,
			bs->version == SPEC_VERSION_0_1 ? "environment_variables.plaintext" : "env.variables");
	check_var_names(c, &bs->env.parameter_store, "env.parameter-store");
	check_var_names(c, &bs->env.secrets_manager, "env.secrets-manager");
	spec_map_release(&m);
}

/* loading ---------------------------------------------------------------------- */

static void move_diags(spec_diags *from, spec_diags *to)
{
	if (!to) {
		spec_diags_release(from);
		return;
	}
	for (size_t i = 0; i < from->n; i++) {
		CBL_GROW(to->items, to->n + 1, to->cap);
		to->items[to->n++] = from->items[i];
		if (from->items[i].severity == SPEC_DIAG_ERROR)
			to->nerrors++;
		else
			to->nwarnings++;
	}
	free(to->file);
	to->file = from->file;
	free(from->items);
	memset(from, 0, sizeof(*from));
	spec_diags_sort(to);
}

int spec_parse_buffer(spec_buildspec **out, spec_diags *diags, const char *display_name, const char *data,
		      size_t len, const spec_parse_opts *opts, cbl_error **err)
{
	spec_diags local = SPEC_DIAGS_INIT;
	spec_ctx c = {0};
	yaml_parser_t parser;
	yaml_document_t doc;
	bool have_doc = false, have_parser = false;
	const char *name = display_name ? display_name : "buildspec.yml";
	spec_buildspec *bs = cbl_xcalloc(1, sizeof(*bs));
	int rc = 0;

	if (out)
		*out = NULL;
	bs->file = cbl_xstrdup(name);
	bs->version = SPEC_VERSION_0_2;
	c.diags = &local;
	c.strict = opts && opts->strict;
	c.upload_time = opts && opts->upload_time;
	c.bs = bs;

	if (data && len > SPEC_MAX_FILE) {
		spec_err(&c, (spec_pos){1, 1}, "buildspec is larger than %u bytes", SPEC_MAX_FILE);
		goto finish;
	}
	if (!yaml_parser_initialize(&parser)) {
		spec_buildspec_free(bs);
		spec_diags_release(&local);
		return cbl_error_set(err, CBL_ENOMEM, "cannot initialize the YAML parser");
	}
	have_parser = true;
	yaml_parser_set_input_string(&parser, (const unsigned char *)(data ? data : ""), data ? len : 0);
	if (!spec_load_yaml(&c, &parser, &doc, data ? data : "", data ? len : 0))
		goto finish;
	have_doc = true;
	c.doc = &doc;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (!root || spec_is_null(root)) {
		spec_err(&c, root ? spec_node_pos(root) : (spec_pos){1, 1},
			 "the buildspec is empty (expected a mapping with version: and phases:)");
		goto finish;
	}
	if (spec_check_graph(&c, root))
		walk_root(&c, root);

finish:
	if (c.truncated) {
		/* Past the cap on purpose: one closing note. */
		CBL_GROW(local.items, local.n + 1, local.cap);
		spec_diag *g = &local.items[local.n++];
		g->severity = SPEC_DIAG_WARNING;
		g->line = 0;
		g->col = 0;
		g->msg = cbl_xasprintf("too many problems; only the first %d are listed", SPEC_MAX_DIAGS);
		local.nwarnings++;
	}
	spec_diags_sort(&local);
	local.file = cbl_xstrdup(name);
	if (c.nerrors > 0) {
		for (size_t i = 0; i < local.n; i++) {
			if (local.items[i].severity == SPEC_DIAG_ERROR) {
				cbl_error_set_at(err, CBL_ESPEC, name, local.items[i].line, local.items[i].col, "%s",
						 local.items[i].msg);
				break;
			}
		}
		rc = CBL_ESPEC;
		spec_buildspec_free(bs);
	} else if (out) {
		*out = bs;
	} else {
		spec_buildspec_free(bs);
	}
	move_diags(&local, diags);
	if (have_doc)
		yaml_document_delete(&doc);
	if (have_parser)
		yaml_parser_delete(&parser);
	return rc;
}

int spec_parse_fd(spec_buildspec **out, spec_diags *diags, int fd, const char *display_name,
		  const spec_parse_opts *opts, cbl_error **err)
{
	struct stat st;
	cbl_buf b = CBL_BUF_INIT;
	int rc;
	const char *name = display_name ? display_name : "buildspec";

	if (out)
		*out = NULL;
	if (fstat(fd, &st) < 0)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot stat %s", name);
	/* only a regular file: a FIFO or a device would block or never end */
	if (!S_ISREG(st.st_mode))
		return cbl_error_set(err, CBL_EIO, "cannot read %s: %s", name,
				     S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
	for (;;) {
		char chunk[65536];
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = cbl_error_set_errno(err, CBL_EIO, errno, "cannot read %s", name);
			goto out;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > SPEC_MAX_FILE) {
			rc = cbl_error_set_at(err, CBL_ESPEC, name, 0, 0, "buildspec is larger than %u bytes",
					      SPEC_MAX_FILE);
			goto out;
		}
		cbl_buf_append(&b, chunk, (size_t)n);
	}
	rc = spec_parse_buffer(out, diags, name, b.ptr ? b.ptr : "", b.len, opts, err);
out:
	cbl_buf_release(&b);
	return rc;
}

int spec_parse_file(spec_buildspec **out, spec_diags *diags, const char *path, const char *display_name,
		    const spec_parse_opts *opts, cbl_error **err)
{
	if (out)
		*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return cbl_error_set_errno(err, errno == ENOENT ? CBL_ENOENT : CBL_EIO, errno, "cannot open %s",
					   path);
	int rc = spec_parse_fd(out, diags, fd, display_name ? display_name : path, opts, err);
	close(fd);
	return rc;
}
