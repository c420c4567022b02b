/* runner/upload.c - UPLOAD_ARTIFACTS: the primary and secondary artifacts,
 * then the reports, then report auto-discover (reference buildspec.md §5,
 * §6.1; the service's "Auto-discover reports" page).
 *
 * Artifact strings (files, base-directory, name) are shell-expanded first,
 * as the service does (§1.8).  Nothing matched fails the phase with
 * CLIENT_ERROR "no matching artifact paths found".  Output layout follows
 * AWS's local agent so its users' scripts keep working: DIR/artifacts.zip
 * (or DIR/artifacts/ with packaging NONE) and DIR/<artifactIdentifier>.zip
 * per secondary artifact.
 *
 * Reports never change the build status (§6.1): a file that cannot be
 * parsed marks its report FAILED with the reason, and that is all.
 *
 * What is read is the build's (its view of the source): artifacts_collect_in
 * walks it by descriptors beneath the view (and, with secondary sources,
 * beneath each source's directory), and every file, report included, is
 * opened through its entry (artifacts_entry_open: no symlink, regular files
 * only, never blocking).  What is written is named by identifiers and group
 * names checked as names (spec_identifier_valid, spec_report_group_valid),
 * never paths.  The deadline is checked between artifacts and reports.
 */
#include "runner/runner_internal.h"
#include "artifacts/artifacts.h"
#include "artifacts/report.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/safeopen.h"
#include "util/time.h"

#include <errno.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "util/json.h"
#include "util/banned.h"

/* Artifact lines name paths as the build sees them: the host path the
 * runner reads (its view of the source) is shown as the inner one. */
static void collect_log(const char *line, void *payload)
{
	runner_build *b = payload;
	const char *one_inner[] = {b->src.src_inner}, *one_host[] = {b->src.view};
	const char *const *inner = b->src.map_inner.n ? (const char *const *)b->src.map_inner.v : one_inner;
	const char *const *host = b->src.map_inner.n ? (const char *const *)b->src.map_host.v : one_host;
	size_t n = b->src.map_inner.n ? b->src.map_inner.n : 1;
	for (size_t i = 0; b->sandbox && i < n; i++) {
		const char *at = strstr(line, host[i]);
		size_t hl = strlen(host[i]);
		if (at && (at[hl] == '\0' || at[hl] == '/')) {
			runner_agent(b, "%.*s%s%s", (int)(at - line), line, inner[i], at + hl);
			return;
		}
	}
	runner_agent(b, "%s", line);
}

/* An absolute path the build wrote ($CODEBUILD_SRC_DIR/dist) names a place
 * in its own view of the source: map it to where we can read that view. */
/* Lexically normalises an absolute path: "." and ".." resolved, "//"
 * folded ("/a/b/../c" -> "/a/c"; ".." never climbs above "/"). */
static char *normalize_abs(const char *path)
{
	cbl_strv parts = CBL_STRV_INIT;
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == 0)
			break;
		if (l == 1 && p[0] == '.') {
			/* nothing */
		} else if (l == 2 && p[0] == '.' && p[1] == '.') {
			if (parts.n) {
				free(parts.v[--parts.n]);
				parts.v[parts.n] = NULL;
			}
		} else {
			cbl_strv_push_take(&parts, cbl_xstrndup(p, l));
		}
		p += l;
	}
	cbl_buf out = CBL_BUF_INIT;
	for (size_t i = 0; i < parts.n; i++)
		cbl_buf_printf(&out, "/%s", parts.v[i]);
	if (!out.len)
		cbl_buf_putc(&out, '/');
	cbl_strv_release(&parts);
	return cbl_buf_detach(&out);
}

/* An absolute base directory must name a place in the build's source: with
 * the sandbox, any other absolute path is the build's own filesystem, which
 * the runner does not read (it would read the host's instead). */
static bool under(const char *path, const char *dir)
{
	size_t l = strlen(dir);
	return !strncmp(path, dir, l) && (path[l] == '\0' || path[l] == '/');
}

static int check_base(runner_build *b, const char *base, cbl_error **err)
{
	if (!base || base[0] != '/' || !b->sandbox)
		return 0;
	char *n = normalize_abs(base);
	bool inside = under(n, b->src.view);
	for (size_t i = 0; !inside && i < b->src.map_host.n; i++)
		inside = under(n, b->src.map_host.v[i]);
	free(n);
	if (inside)
		return 0;
	return cbl_error_set(err, CBL_EINVAL,
			     "base-directory %s is outside CODEBUILD_SRC_DIR: codebuild-local packages "
			     "artifacts and reports from the source directories only",
			     base);
}

static void map_inner(runner_build *b, char **path)
{
	if (!*path || (*path)[0] != '/')
		return;
	{
		/* "$CODEBUILD_SRC_DIR/../.." must not climb out before mapping */
		char *n = normalize_abs(*path);
		free(*path);
		*path = n;
	}
	/* one source: its inner path and its view; with secondary sources, the
	 * table (bound directories first, then the sources root) */
	const char *one_inner[] = {b->src.src_inner}, *one_host[] = {b->src.view};
	const char *const *inner = b->src.map_inner.n ? (const char *const *)b->src.map_inner.v : one_inner;
	const char *const *host = b->src.map_inner.n ? (const char *const *)b->src.map_host.v : one_host;
	size_t n = b->src.map_inner.n ? b->src.map_inner.n : 1;
	for (size_t i = 0; i < n; i++) {
		if (!under(*path, inner[i]))
			continue;
		char *m = cbl_xasprintf("%s%s", host[i], *path + strlen(inner[i]));
		free(*path);
		*path = m;
		return;
	}
}

/* Expands the artifact's strings: files, base-directory, name. */
static int expand_artifact(runner_build *b, const spec_artifact *a, char ***files, char **base,
			   char **name, cbl_error **err)
{
	size_t n = a->files.n + 2;
	const char **in = cbl_xcalloc(n, sizeof(char *));
	char **out = NULL;
	for (size_t i = 0; i < a->files.n; i++)
		in[i] = a->files.items[i].s;
	in[a->files.n] = a->base_directory ? a->base_directory : "";
	in[a->files.n + 1] = a->name ? a->name : "";
	int rc = runner_shell_expand(&b->sh, b->vars.env.v, in, n, &out, err);
	free(in);
	if (rc)
		return rc;
	*files = out; /* first a->files.n entries (NULL-terminated after we cut) */
	*base = a->base_directory ? out[a->files.n] : NULL;
	if (!a->base_directory)
		free(out[a->files.n]);
	*name = a->name ? out[a->files.n + 1] : NULL;
	if (!a->name)
		free(out[a->files.n + 1]);
	out[a->files.n] = NULL;
	out[a->files.n + 1] = NULL;
	return 0;
}

static void free_strs(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* Collects one artifact's or report's files from the build's view: beneath
 * the view and, in the sandbox, beneath the source directories an absolute
 * base-directory may name (without the sandbox the build runs on the host
 * itself: no bound). */
static int collect(runner_build *b, const spec_artifact *a, char **files, const char *base, artifacts_list **list,
		   cbl_error **err)
{
	artifacts_roots where = ARTIFACTS_ROOTS_INIT;
	const char *const none[] = {NULL};
	if (b->sandbox)
		where.bounds = b->src.map_host.n ? (const char *const *)b->src.map_host.v : none;
	return artifacts_collect_in(list, b->src.view, &where, a, (const char *const *)files, base, collect_log, b,
				    err);
}

static bool past_deadline(const runner_build *b)
{
	return b->deadline_mono_us && cbl_mono_us() >= b->deadline_mono_us;
}

/* Collects and packages one artifact.  Returns 0, or CBL_ENOENT when nothing
 * matched (the caller fails the phase), or another error. */
static int one_artifact(runner_build *b, const spec_artifact *a, const char *out_name, json_t **rec,
			cbl_error **err)
{
	char **files = NULL, *base = NULL, *name = NULL, *dest = NULL;
	artifacts_list *list = NULL;
	char sha[65] = "", md5[33] = "";
	int rc = 0;
	/* the artifact's file or directory is named after it: a name, never a path */
	if (a->identifier && !spec_identifier_valid(a->identifier)) {
		rc = cbl_error_set(err, CBL_EINVAL, "invalid artifact identifier '%s' (1-127 letters, digits, '-' or '_')",
				   a->identifier);
		goto out;
	}
	rc = expand_artifact(b, a, &files, &base, &name, err);
	if (rc)
		goto out;
	if (!a->identifier && b->up.project_artifacts && !b->up.override_artifact_name) {
		/* the project's name: the buildspec's only with overrideArtifactName */
		free(name);
		name = b->up.project_artifact_name ? cbl_xstrdup(b->up.project_artifact_name) : NULL;
	}
	map_inner(b, &base);
	rc = check_base(b, base, err);
	if (rc)
		goto out;
	rc = collect(b, a, files, base, &list, err);
	if (rc)
		goto out;
	rc = cbl_mkdir_p(b->up.artifacts_dir, 0755, err);
	if (rc)
		goto out;
	if (b->up.packaging_none) {
		dest = cbl_path_join(b->up.artifacts_dir, out_name);
		rc = artifacts_write_dir_deadline(list, dest, a->enable_symlinks, b->deadline_mono_us, err);
	} else {
		char *fname = cbl_xasprintf("%s.zip", out_name);
		dest = cbl_path_join(b->up.artifacts_dir, fname);
		free(fname);
		/* symlinks are kept in ZIP output only with enable-symlinks (§5.1);
		 * the build's deadline bounds the packaging of its files */
		artifacts_zip_opts zo = ARTIFACTS_ZIP_OPTS_INIT;
		zo.deadline_mono_us = b->deadline_mono_us;
		rc = artifacts_write_zip_opts(list, dest, a->enable_symlinks, &zo, sha, md5, err);
	}
	if (rc)
		goto out;
	runner_agent(b, "[codebuild-local] Uploading artifact %s (%zu file(s)) to %s", a->identifier ? a->identifier : "primary",
		     list->n, dest);
	const char *location = dest;
	char *named = NULL;
	if (name && *name && !b->up.packaging_none) {
		/* artifacts.name is the object's key on the service (S3): the
		 * artifact is also published under it in DIR (a hard link to
		 * the local agent's file name), and the record's location
		 * names it, as the cloud's would */
		if (spec_artifact_name_escapes(name)) {
			runner_warn(b, "artifact name '%s' would leave %s: kept as %s only", name,
				    b->up.artifacts_dir, dest);
		} else {
			named = cbl_path_join(b->up.artifacts_dir, name);
			char *slash = strrchr(named, '/');
			cbl_error *e2 = NULL;
			*slash = '\0';
			cbl_mkdir_p(named, 0755, &e2);
			*slash = '/';
			cbl_error_free(e2);
			char *tmp = cbl_xasprintf("%s.tmp.%ld", named, (long)getpid());
			unlink(tmp);
			if (link(dest, tmp) == 0 && rename(tmp, named) == 0) {
				location = named;
			} else {
				unlink(tmp);
				runner_warn(b, "cannot publish the artifact as %s: %s", named, strerror(errno));
			}
			free(tmp);
		}
	}
	*rec = json_object();
	json_object_set_new(*rec, "location", json_string(location));
	if (!b->up.packaging_none) {
		json_object_set_new(*rec, "sha256sum", json_string(sha));
		json_object_set_new(*rec, "md5sum", json_string(md5));
	}
	json_object_set_new(*rec, "overrideArtifactName",
			    json_boolean(b->up.project_artifacts && !a->identifier ? b->up.override_artifact_name : name != NULL));
	json_object_set_new(*rec, "encryptionDisabled", json_false());
	if (a->identifier)
		json_object_set_new(*rec, "artifactIdentifier", json_string(a->identifier));
	if (name)
		runner_agent(b, "[codebuild-local] Artifact name resolved to %s", name);
	free(named);
out:
	artifacts_list_free(list);
	free_strs(files);
	free(base);
	free(name);
	free(dest);
	return rc;
}

/* A failed artifact: the deadline or a stop end the phase as such; "no
 * matching artifact paths found" and packaging failures alike are the
 * service's CLIENT_ERROR (naming a secondary artifact's identifier).
 * Frees e. */
static runner_status artifact_failed(runner_build *b, runner_outcome *o, cbl_error *e, const char *secondary)
{
	runner_status st = RUNNER_STATUS_FAILED;
	if (e->code == CBL_ETIMEDOUT || e->code == CBL_ESTOPPED) {
		bool t = e->code == CBL_ETIMEDOUT;
		st = t ? RUNNER_STATUS_TIMED_OUT : RUNNER_STATUS_STOPPED;
		runner_outcome_set(b, o, t ? "BUILD_TIMED_OUT" : "BUILD_STOPPED",
				   t ? "Build has timed out. " : "Build was stopped");
	} else if (secondary) {
		runner_outcome_setf(b, o, "CLIENT_ERROR", "%s (secondary artifact %s)", e->msg, secondary);
	} else {
		runner_outcome_set(b, o, "CLIENT_ERROR", e->msg);
	}
	cbl_error_free(e);
	return st;
}

static runner_status upload_artifacts(runner_build *b, runner_outcome *o)
{
	const spec_artifacts *arts = &b->spec->artifacts;
	cbl_error *e = NULL;
	if (arts->primary_files_missing) {
		/* the service's agent at this phase (reference §4.3, §5.3) */
		runner_outcome_set(b, o, "CLIENT_ERROR", "no definition for primary artifacts in buildspec");
		return RUNNER_STATUS_FAILED;
	}
	if (!arts->present || !arts->primary.files.n) {
		if (!arts->nsecondary)
			return RUNNER_STATUS_SUCCEEDED;
	}
	if (arts->present && arts->primary.files.n) {
		json_t *rec = NULL;
		if (one_artifact(b, &arts->primary, "artifacts", &rec, &e) < 0)
			return artifact_failed(b, o, e, NULL);
		json_decref(b->up.artifacts_rec);
		b->up.artifacts_rec = rec;
	}
	/* the agent says both when there are none (its logs, 2019-2024) */
	runner_agent(b, "Preparing to copy secondary artifacts");
	if (!arts->nsecondary) {
		runner_agent(b, "No secondary artifacts defined in buildspec");
		return RUNNER_STATUS_SUCCEEDED;
	}
	for (size_t i = 0; i < arts->nsecondary; i++) {
		const spec_artifact *a = &arts->secondary[i];
		json_t *rec = NULL;
		if (past_deadline(b)) {
			runner_outcome_set(b, o, "BUILD_TIMED_OUT", "Build has timed out. ");
			return RUNNER_STATUS_TIMED_OUT;
		}
		if (one_artifact(b, a, a->identifier, &rec, &e) < 0)
			return artifact_failed(b, o, e, a->identifier);
		json_array_append_new(b->up.secondary_recs, rec);
	}
	return RUNNER_STATUS_SUCCEEDED;
}

/* ---------------------------------------------------------------- reports */

static int write_json(const char *dir, const char *file, const char *key, json_t *value, cbl_error **err)
{
	json_t *wrap = json_object();
	json_object_set(wrap, key, value);
	char *s = json_dumps(wrap, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	json_decref(wrap);
	char *path = cbl_path_join(dir, file);
	int rc = cbl_write_file_atomic(path, s, strlen(s), 0644, false, err);
	free(path);
	free(s);
	return rc;
}

/* Copies a report file (read through its entry, never by path) to
 * dst_dir/<its name>. */
static void copy_raw(const artifacts_entry *src, const char *dst_dir)
{
	char *data = NULL;
	size_t len = 0;
	cbl_error *e = NULL;
	struct stat st;
	int fd = -1;
	char *dst = cbl_path_join(dst_dir, src->name);
	char *slash = strrchr(dst, '/');
	if (slash) {
		*slash = '\0';
		cbl_mkdir_p(dst, 0755, &e);
		*slash = '/';
	}
	if (!e && artifacts_entry_open(src, &fd, &st, &e) == 0 && cbl_read_fd(fd, src->name, 256u << 20, &data, &len, &e) == 0)
		cbl_write_file_atomic(dst, data, len, 0644, false, &e);
	if (fd >= 0)
		close(fd);
	cbl_error_free(e);
	free(data);
	free(dst);
}

/* Writes one report's JSON (and raw files) into dir/<group name>/. */
static void save_report(runner_build *b, const char *root, const char *group_name, json_t *report,
			json_t *cases, json_t *cov, const artifacts_list *files)
{
	cbl_error *e = NULL;
	char *dir = cbl_xasprintf("%s/%s", root, group_name);
	if (cbl_mkdir_p(dir, 0755, &e) == 0) {
		json_t *arr = json_array();
		json_array_append(arr, report);
		write_json(dir, "report.json", "reports", arr, &e);
		json_decref(arr);
		if (cases)
			write_json(dir, "test-cases.json", "testCases", cases, &e);
		if (cov)
			write_json(dir, "code-coverages.json", "codeCoverages", cov, &e);
		char *raw = cbl_path_join(dir, "raw");
		for (size_t i = 0; files && i < files->n; i++)
			copy_raw(&files->items[i], raw);
		free(raw);
	}
	if (e) {
		runner_warn_drop(b, &e, "cannot write report %s into %s: %s", group_name, root, e->msg);
	}
	free(dir);
}

/* The group's name and ARN: an ARN as given, a plain name becomes the
 * group <project>-<name> (§6.1). */
static void report_group_names(const runner_build *b, const char *key, char **name, char **arn)
{
	if (!strncmp(key, "arn:", 4)) {
		const char *slash = strstr(key, "report-group/");
		*name = cbl_xstrdup(slash ? slash + strlen("report-group/") : key);
		*arn = cbl_xstrdup(key);
	} else {
		*name = cbl_xasprintf("%s-%s", b->ident.project, key);
		*arn = cbl_xasprintf("arn:aws:codebuild:%s:%s:report-group/%s", b->ident.region, b->ident.account,
				     *name);
	}
}

/* The files the buildspec's report groups read (by device and inode):
 * auto-discover leaves them to their groups. */
typedef struct upload_claims {
	struct stat *v;
	size_t n, cap;
} upload_claims;

static void claim(upload_claims *c, const struct stat *st)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->v = cbl_xrealloc(c->v, c->cap * sizeof(*c->v));
	}
	c->v[c->n++] = *st;
}

static bool claimed(const upload_claims *c, const struct stat *st)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].st_dev == st->st_dev && c->v[i].st_ino == st->st_ino)
			return true;
	return false;
}

/* The report's files found and parsed into rep; returns the status that
 * overrides the parsed one (INCOMPLETE: files missing, FAILED: a file does
 * not parse), with the reason, or NULL. */
static const char *report_parse(runner_build *b, const spec_report *r, char **exp, const char *group_name,
				artifacts_report *rep, artifacts_list **list, cbl_buf *reason, upload_claims *cl)
{
	const char *status = NULL;
	cbl_error *e = NULL;
	spec_artifact sa = {0};
	sa.files = r->files;
	sa.base_directory = r->base_directory;
	sa.discard_paths = r->discard_paths;
	char *rbase = r->base_directory ? cbl_xstrdup(exp[1]) : NULL;
	map_inner(b, &rbase);
	int rc = check_base(b, rbase, &e);
	if (!rc)
		rc = collect(b, &sa, exp + 2, rbase, list, &e);
	free(rbase);
	if (rc) {
		status = "INCOMPLETE";
		cbl_buf_printf(reason, "%s", e->msg);
		runner_agent(b, "[codebuild-local] Report group %s: %s", group_name, e->msg);
		cbl_error_clear(&e);
	}
	for (size_t i = 0; *list && i < (*list)->n; i++) {
		const artifacts_entry *it = &(*list)->items[i];
		struct stat st;
		int fd = -1;
		int prc = artifacts_entry_open(it, &fd, &st, &e);
		if (prc == 0) {
			claim(cl, &st);
			prc = artifacts_report_parse_fd(rep, r->format, fd, it->name, &e);
		}
		if (fd >= 0)
			close(fd);
		if (prc < 0) {
			status = "FAILED";
			runner_agent(b, "[codebuild-local] Report %s: cannot parse %s: %s", group_name, it->name, e->msg);
			if (reason->len)
				cbl_buf_puts(reason, "; ");
			cbl_buf_puts(reason, e->msg);
			cbl_error_clear(&e);
		}
	}
	return status;
}

/* The CLI's summary: the Report plus what failed, where. */
static json_t *report_entry(const json_t *report, const artifacts_report *rep, const char *summary,
			    const cbl_buf *reason)
{
	json_t *entry = json_deep_copy(report);
	json_object_set_new(entry, "summary", json_string(summary ? summary : ""));
	if (reason->len)
		json_object_set_new(entry, "statusReason", json_string(reason->ptr));
	json_t *failing = json_array();
	const artifacts_report_case **fc = NULL;
	size_t nf = artifacts_report_failing_cases(rep, &fc);
	for (size_t i = 0; i < nf; i++) {
		json_t *f = json_object();
		char *loc = artifacts_report_case_location(fc[i]);
		json_object_set_new(f, "status", json_string(artifacts_report_test_status_name(fc[i]->status)));
		json_object_set_new(f, "prefix", json_string(fc[i]->prefix ? fc[i]->prefix : ""));
		json_object_set_new(f, "name", json_string(fc[i]->name ? fc[i]->name : ""));
		json_object_set_new(f, "message", json_string(fc[i]->message ? fc[i]->message : ""));
		if (loc)
			json_object_set_new(f, "location", json_string(loc));
		free(loc);
		json_array_append_new(failing, f);
	}
	free(fc);
	json_object_set_new(entry, "failingCases", failing);
	return entry;
}

static void publish_report(runner_build *b, const char *group_name, const char *group_arn, artifacts_report *rep,
			   const artifacts_list *list, const char *status, cbl_buf *reason);

static void one_report(runner_build *b, const spec_report *r, upload_claims *cl)
{
	cbl_error *e = NULL;
	char **exp = NULL;
	artifacts_list *list = NULL;
	artifacts_report rep;
	cbl_buf reason = CBL_BUF_INIT;
	artifacts_report_init(&rep, r->format);

	/* group name ($VARS allowed), files and base-directory, expanded */
	size_t n = r->files.n + 2;
	const char **in = cbl_xcalloc(n, sizeof(char *));
	in[0] = r->group;
	in[1] = r->base_directory ? r->base_directory : "";
	for (size_t i = 0; i < r->files.n; i++)
		in[i + 2] = r->files.items[i].s;
	int rc = runner_shell_expand(&b->sh, b->vars.env.v, in, n, &exp, &e);
	free(in);
	if (rc) {
		runner_warn_drop(b, &e, "report group %s: %s", r->group, e->msg);
		artifacts_report_release(&rep);
		return;
	}
	if (!spec_report_group_valid(exp[0])) {
		runner_warn(b, "report group '%s' is not a valid report group name or ARN (letters, "
			       "digits, '-' and '_'): skipped",
			    exp[0]);
		free_strs(exp);
		artifacts_report_release(&rep);
		return;
	}
	char *group_name, *group_arn;
	report_group_names(b, exp[0], &group_name, &group_arn);
	runner_agent(b, "[codebuild-local] Preparing to upload report group %s (%s)", group_name, spec_report_format_name(r->format));
	const char *status = report_parse(b, r, exp, group_name, &rep, &list, &reason, cl);
	publish_report(b, group_name, group_arn, &rep, list, status, &reason);
	cbl_buf_release(&reason);
	free(group_name);
	free(group_arn);
	free_strs(exp);
	artifacts_list_free(list);
	artifacts_report_release(&rep);
}

/* Stores one parsed report (the build's record, the reports directories)
 * for its group: the buildspec's groups and the auto-discovered ones. */
static void publish_report(runner_build *b, const char *group_name, const char *group_arn, artifacts_report *rep,
			   const artifacts_list *list, const char *status, cbl_buf *reason)
{
	char uuid[37];
	cbl_uuid4(uuid);
	char *arn = cbl_xasprintf("arn:aws:codebuild:%s:%s:report/%s:%s", b->ident.region, b->ident.account,
				  group_name, uuid);
	artifacts_report_meta meta = ARTIFACTS_REPORT_META_INIT;
	meta.status = status;
	for (size_t i = 0; i < rep->nwarnings; i++) {
		runner_warn(b, "report %s: %s", group_name, rep->warnings[i]);
		cbl_buf_printf(reason, "%s%s", reason->len ? "; " : "", rep->warnings[i]);
	}
	meta.arn = arn;
	meta.name = group_name;
	meta.report_group_arn = group_arn;
	meta.execution_id = b->ident.arn;
	meta.created_us = cbl_now_us();
	json_t *report = artifacts_report_to_json(rep, &meta);
	json_t *cases = rep->type == ARTIFACTS_REPORT_TEST ? artifacts_report_test_cases_json(rep, &meta) : NULL;
	json_t *cov = rep->type == ARTIFACTS_REPORT_TEST ? NULL : artifacts_report_coverages_json(rep, &meta);

	cbl_buf summary = CBL_BUF_INIT;
	artifacts_report_summary_line(rep, &summary);
	runner_agent(b, "[codebuild-local] Report %s %s: %s", group_name, cbl_json_str(report, "status"),
		     summary.ptr ? summary.ptr : "");

	char *root = cbl_path_join(b->ident.dir, "reports");
	save_report(b, root, group_name, report, cases, cov, NULL);
	free(root);
	if (b->up.reports_dir)
		save_report(b, b->up.reports_dir, group_name, report, cases, cov, list);
	json_array_append_new(b->up.reports, report_entry(report, rep, summary.ptr, reason));
	cbl_strv_push(&b->up.report_arns, arn);

	cbl_buf_release(&summary);
	json_decref(report);
	json_decref(cases);
	json_decref(cov);
	free(arn);
}

/* ---------------------------------------------------------- auto-discover */

/* The formats auto-discover tries, tests first; a file is the first format
 * it parses as (its root element or JSON shape decides). */
static const spec_report_format discover_formats[] = {
	SPEC_REPORT_JUNITXML,	  SPEC_REPORT_NUNIT3XML,    SPEC_REPORT_NUNITXML,	 SPEC_REPORT_TESTNGXML,
	SPEC_REPORT_VISUALSTUDIOTRX, SPEC_REPORT_CUCUMBERJSON, SPEC_REPORT_COBERTURAXML, SPEC_REPORT_JACOCOXML,
	SPEC_REPORT_CLOVERXML,	  SPEC_REPORT_SIMPLECOV,
};
#define NDISCOVER (sizeof(discover_formats) / sizeof(discover_formats[0]))
#define DISCOVER_TIMEOUT_US (5LL * 1000000)

typedef struct discovered {
	artifacts_report rep[NDISCOVER];
	artifacts_list files[NDISCOVER]; /* entries borrowed from the walk's list */
} discovered;

/* The walk's lines as the service prints them for auto-discover: two
 * spaces after "path:". */
static void discover_log(const char *line, void *payload)
{
	static const char pre[] = "Expanding base directory path: ";
	if (!strncmp(line, pre, sizeof(pre) - 1))
		runner_agent(payload, "Expanding base directory path:  %s", line + sizeof(pre) - 1);
	else
		collect_log(line, payload);
}

/* Only names a supported format can have are read. */
static bool discover_candidate(const artifacts_entry *it)
{
	const char *dot = strrchr(it->name, '.');
	return !it->is_symlink && dot && (!strcmp(dot, ".xml") || !strcmp(dot, ".trx") || !strcmp(dot, ".json"));
}

/* Parses one file as each format in turn: the first it parses as, with at
 * least one test case or covered file, takes it. */
static void discover_file(const artifacts_entry *it, discovered *d, const upload_claims *cl)
{
	struct stat st;
	int fd = -1;
	cbl_error *e = NULL;
	if (artifacts_entry_open(it, &fd, &st, &e) < 0 || claimed(cl, &st)) {
		cbl_error_free(e);
		if (fd >= 0)
			close(fd);
		return;
	}
	for (size_t f = 0; f < NDISCOVER; f++) {
		if (lseek(fd, 0, SEEK_SET) != 0)
			break;
		artifacts_report one;
		artifacts_report_init(&one, discover_formats[f]);
		int rc = artifacts_report_parse_fd(&one, discover_formats[f], fd, it->name, &e);
		bool some = one.test.total || one.nfiles; /* a "[]" or "<testsuites/>" is no report */
		artifacts_report_release(&one);
		if (rc == 0 && some && lseek(fd, 0, SEEK_SET) == 0 &&
		    artifacts_report_parse_fd(&d->rep[f], discover_formats[f], fd, it->name, &e) == 0) {
			artifacts_list *l = &d->files[f];
			l->items = cbl_xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
			l->items[l->n++] = *it;
			break;
		}
		cbl_error_clear(&e);
	}
	close(fd);
}

/* CODEBUILD_CONFIG_AUTO_DISCOVER and _DIR as the build's shell last had
 * them (the buildspec may change them); false when it is "false". */
static bool discover_enabled(runner_build *b, char **dir)
{
	const char *names[] = {"CODEBUILD_CONFIG_AUTO_DISCOVER", "CODEBUILD_CONFIG_AUTO_DISCOVER_DIR"};
	char **vals = NULL;
	cbl_error *e = NULL;
	*dir = NULL;
	if (!b->shell_ready || runner_shell_read_vars(&b->sh, b->vars.env.v, names, 2, &vals, &e) < 0) {
		cbl_error_free(e);
		return false;
	}
	bool on = strcasecmp(vals[0], "false") != 0;
	if (on && vals[1][0])
		*dir = cbl_xstrdup(vals[1]);
	free(vals[0]);
	free(vals[1]);
	free(vals);
	return on;
}

static void discover_publish(runner_build *b, discovered *d)
{
	for (size_t f = 0; f < NDISCOVER; f++) {
		if (!d->files[f].n)
			continue;
		char *key = cbl_xasprintf("%s-AutoDiscovered", spec_report_format_name(discover_formats[f]));
		char *group_name, *group_arn;
		cbl_buf reason = CBL_BUF_INIT;
		report_group_names(b, key, &group_name, &group_arn);
		runner_agent(b, "[codebuild-local] Preparing to upload report group %s (%s, %zu auto-discovered file(s))",
			     group_name, spec_report_format_name(discover_formats[f]), d->files[f].n);
		publish_report(b, group_name, group_arn, &d->rep[f], &d->files[f], NULL, &reason);
		cbl_buf_release(&reason);
		free(group_name);
		free(group_arn);
		free(key);
	}
}

/* Report auto-discover (the service's "Auto-discover reports"): every file
 * under the source (or CODEBUILD_CONFIG_AUTO_DISCOVER_DIR) that parses as
 * a supported format and no buildspec report group read becomes part of
 * the report of the group <project>-<FORMAT>-AutoDiscovered.  Symlinks are
 * never followed; the walk and the parsing stop after 5 seconds. */
static void auto_discover(runner_build *b, const upload_claims *cl)
{
	char *dir = NULL;
	if (!discover_enabled(b, &dir))
		return;
	int64_t t0 = cbl_mono_us(), end = t0 + DISCOVER_TIMEOUT_US;
	if (b->deadline_mono_us && b->deadline_mono_us < end)
		end = b->deadline_mono_us;
	runner_agent(b, "Set report auto-discover timeout to 5 seconds");
	spec_str pat = {0};
	pat.s = dir ? dir : (char *)"**/*";
	char *files[] = {NULL, NULL};
	files[0] = cbl_xstrdup(pat.s);
	map_inner(b, &files[0]);
	spec_artifact sa = {0};
	sa.files.items = &pat;
	sa.files.n = 1;
	sa.enable_symlinks = true; /* a symlink is an entry, never followed */
	artifacts_list *list = NULL;
	cbl_error *e = NULL;
	artifacts_roots where = ARTIFACTS_ROOTS_INIT;
	const char *const none[] = {NULL};
	if (b->sandbox)
		where.bounds = none;
	where.deadline_mono_us = end; /* the walk too is bounded */
	discovered d;
	memset(&d, 0, sizeof(d));
	for (size_t f = 0; f < NDISCOVER; f++)
		artifacts_report_init(&d.rep[f], discover_formats[f]);
	size_t found = 0;
	if (artifacts_collect_in(&list, b->src.view, &where, &sa, (const char *const *)files, ".", discover_log, b,
				 &e) == 0) {
		for (size_t i = 0; i < list->n && cbl_mono_us() < end; i++)
			if (discover_candidate(&list->items[i]))
				discover_file(&list->items[i], &d, cl);
	}
	cbl_error_free(e);
	for (size_t f = 0; f < NDISCOVER; f++)
		found += d.files[f].n;
	if (cbl_mono_us() >= end)
		runner_agent(b, "[codebuild-local] Report auto-discover stopped after its timeout");
	if (!found)
		runner_agent(b, "No matching auto-discover report paths found");
	runner_agent(b, "Report auto-discover file discovery took %.6f seconds", (double)(cbl_mono_us() - t0) / 1e6);
	discover_publish(b, &d);
	for (size_t f = 0; f < NDISCOVER; f++) {
		free(d.files[f].items);
		artifacts_report_release(&d.rep[f]);
	}
	artifacts_list_free(list);
	free(files[0]);
	free(dir);
}

runner_status runner_upload(runner_build *b, runner_outcome *o)
{
	if (!b->up.secondary_recs)
		b->up.secondary_recs = json_array();
	if (!b->up.reports)
		b->up.reports = json_array();
	runner_status st = upload_artifacts(b, o);
	upload_claims cl = {0};
	/* reports are uploaded whether or not the artifacts were, within the
	 * build's time */
	for (size_t i = 0; i < b->spec->nreports; i++) {
		if (past_deadline(b)) {
			runner_warn(b, "the build timed out: report group %s and the ones after it are not uploaded",
				    b->spec->reports[i].group);
			break;
		}
		one_report(b, &b->spec->reports[i], &cl);
	}
	/* the service's logs of a failed artifact upload end at its failure:
	 * auto-discover runs after artifacts that were uploaded (reference §4.4) */
	if (st == RUNNER_STATUS_SUCCEEDED && !past_deadline(b))
		auto_discover(b, &cl);
	free(cl.v);
	if (st == RUNNER_STATUS_SUCCEEDED && past_deadline(b)) {
		runner_outcome_set(b, o, "BUILD_TIMED_OUT", "Build has timed out. ");
		st = RUNNER_STATUS_TIMED_OUT;
	}
	return st;
}
