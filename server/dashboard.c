/* server/dashboard.c - the dashboard's routing, access checks, actions and
 * list pages (server/dashboard.h).  The build, log, reports and trends
 * pages are in dash_build.c and dash_reports.c. */
#include "server/dashboard.h"
#include "store/api.h"
#include "store/dash.h"
#include "util/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

#define COOKIE "cbl_session"
#define PAGE_SIZE 50

struct server_dash {
	char *home;
	server_dispatch_fn dispatch;
	server_dispatch_text_fn dispatch_text;
	void *payload;
	server_sessions *sessions;
	volatile int stopping;
};

server_dash *server_dash_new(const char *home, server_dispatch_fn dispatch,
			     server_dispatch_text_fn dispatch_text, void *payload)
{
	server_sessions *s = server_sessions_new();
	if (!s)
		return NULL;
	server_dash *d = cbl_xcalloc(1, sizeof(*d));
	d->home = cbl_xstrdup(home);
	d->dispatch = dispatch;
	d->dispatch_text = dispatch_text;
	d->payload = payload;
	d->sessions = s;
	return d;
}

const char *server_dash_token(const server_dash *d) { return server_sessions_token(d->sessions); }

void server_dash_shutdown(server_dash *d)
{
	if (d)
		__atomic_store_n(&d->stopping, 1, __ATOMIC_SEQ_CST);
}

void server_dash_free(server_dash *d)
{
	if (!d)
		return;
	server_sessions_free(d->sessions);
	free(d->home);
	free(d);
}

bool server_dash_wants(struct MHD_Connection *c, const char *url, const char *method)
{
	if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Amz-Target"))
		return false;
	return strcmp(method, "POST") || strcmp(url, "/");
}

/* ---- helpers --------------------------------------------------------- */

/* A GET argument, %-decoded (the server keeps URLs as sent); caller frees. */
static char *arg(struct MHD_Connection *c, const char *name)
{
	const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
	if (!v || !*v)
		return NULL;
	char *s = cbl_xstrdup(v);
	for (char *p = s; *p; p++)
		if (*p == '+')
			*p = ' ';
	MHD_http_unescape(s);
	return s;
}

static enum MHD_Result redirect(struct MHD_Connection *c, const char *to)
{
	return dash_send(c, 303, "text/plain; charset=utf-8", cbl_xstrdup(""), 0, "Location", to);
}

/* Runs an API operation the way the API does (the same callback). */
static int api_call(server_dash *d, const char *op, json_t *req, json_t **out, char **errmsg)
{
	cbl_error *err = NULL;
	char *target = cbl_xasprintf("%s%s", STORE_TARGET_CODEBUILD, op);
	int rc;
	*out = NULL;
	if (d->dispatch) {
		rc = d->dispatch(target, req, out, &err, d->payload);
	} else {
		char *text = NULL;
		size_t len = 0;
		rc = d->dispatch_text(target, req, &text, &len, &err, d->payload);
		if (!rc)
			*out = json_loadb(text, len, 0, NULL);
		free(text);
	}
	if (rc < 0)
		*errmsg = cbl_xasprintf("%s: %s", store_api_error_type(target, rc),
					err ? err->msg : "failed");
	cbl_error_free(err);
	free(target);
	return rc;
}

/* ---- list pages ------------------------------------------------------- */

static int projects_page(server_dash *d, struct dash_page *p, char **errmsg)
{
	json_t *list = NULL;
	cbl_error *err = NULL;
	if (store_dash_projects(d->home, &list, &err) < 0) {
		*errmsg = cbl_xstrdup(err ? err->msg : "cannot list projects");
		cbl_error_free(err);
		return -1;
	}
	dash_head(p, "Projects", NULL);
	cbl_buf *b = &p->b;
	if (!json_array_size(list))
		cbl_buf_puts(b, "<p>No projects yet: create one with the API or "
				"<code>codebuild-local run</code> a directory.</p>");
	else
		cbl_buf_puts(b, "<table><caption>Projects, their last build and the success rate "
				"and median duration of their last 100 builds</caption><thead><tr>"
				"<th scope=\"col\">Project</th><th scope=\"col\">Builds</th>"
				"<th scope=\"col\">Last build</th><th scope=\"col\">Success rate</th>"
				"<th scope=\"col\">Median duration</th></tr></thead><tbody>");
	size_t i;
	json_t *o;
	json_array_foreach(list, i, o) {
		const char *name = json_string_value(json_object_get(o, "name"));
		json_t *rate = json_object_get(o, "successRate");
		json_t *med = json_object_get(o, "medianMs");
		const char *last = json_string_value(json_object_get(o, "lastId"));
		cbl_buf_puts(b, "<tr><th scope=\"row\"><a href=\"/projects/");
		dash_esc(b, name);
		cbl_buf_puts(b, "\">");
		dash_esc(b, name);
		cbl_buf_printf(b, "</a></th><td>%lld</td><td>",
			       (long long)json_integer_value(json_object_get(o, "builds")));
		if (last) {
			cbl_buf_puts(b, "<a href=\"/builds/");
			dash_esc(b, last);
			cbl_buf_printf(b, "\">#%lld</a> ",
				       (long long)json_integer_value(json_object_get(o, "lastNumber")));
			dash_status(b, json_string_value(json_object_get(o, "lastStatus")));
		} else {
			cbl_buf_puts(b, "none");
		}
		if (json_is_number(rate))
			cbl_buf_printf(b, "</td><td>%.0f%%</td><td>", json_number_value(rate));
		else
			cbl_buf_puts(b, "</td><td>-</td><td>");
		dash_duration(b, json_is_integer(med) ? json_integer_value(med) : -1);
		cbl_buf_puts(b, "</td></tr>");
	}
	if (json_array_size(list))
		cbl_buf_puts(b, "</tbody></table>");
	dash_foot(p);
	json_decref(list);
	return 0;
}

static const char *const filter_statuses[] = {"SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT",
					      "IN_PROGRESS", "STOPPED"};

static void start_form(struct dash_page *p, const char *project)
{
	cbl_buf *b = &p->b;
	cbl_buf_puts(b, "<section aria-labelledby=\"start-h\"><h2 id=\"start-h\">Start a build</h2>");
	dash_form(p, "/actions/start", "start");
	cbl_buf_puts(b, "<input type=\"hidden\" name=\"project\" value=\"");
	dash_esc(b, project);
	cbl_buf_puts(b, "\"><label for=\"env\">Environment variable overrides, one "
			"<code>NAME=VALUE</code> a line</label><textarea id=\"env\" name=\"env\" "
			"rows=\"3\" cols=\"50\" spellcheck=\"false\"></textarea>"
			"<label for=\"sv\">Source version (optional)</label>"
			"<input id=\"sv\" name=\"sourceVersion\" type=\"text\">"
			"<button type=\"submit\" id=\"start-build\">Start build</button></form></section>");
}

static void filter_form(cbl_buf *b, const char *project, const char *status)
{
	cbl_buf_puts(b, "<form method=\"get\" class=\"filter\" action=\"/projects/");
	dash_esc(b, project);
	cbl_buf_puts(b, "\"><label for=\"status\">Status</label><select id=\"status\" name=\"status\">"
			"<option value=\"\">any</option>");
	for (size_t i = 0; i < sizeof(filter_statuses) / sizeof(*filter_statuses); i++)
		cbl_buf_printf(b, "<option%s>%s</option>",
			       status && !strcmp(status, filter_statuses[i]) ? " selected" : "",
			       filter_statuses[i]);
	cbl_buf_puts(b, "</select><button type=\"submit\">Filter</button></form>");
}

static void build_rows(cbl_buf *b, json_t *builds)
{
	size_t i;
	json_t *o;
	json_array_foreach(builds, i, o) {
		const char *id = json_string_value(json_object_get(o, "id"));
		json_t *dur = json_object_get(o, "durationMs");
		cbl_buf_puts(b, "<tr><td>");
		dash_status(b, json_string_value(json_object_get(o, "status")));
		cbl_buf_puts(b, "</td><th scope=\"row\"><a href=\"/builds/");
		dash_esc(b, id);
		cbl_buf_printf(b, "\">#%lld</a></th><td><code>",
			       (long long)json_integer_value(json_object_get(o, "number")));
		dash_esc(b, json_string_value(json_object_get(o, "sourceVersion")));
		cbl_buf_puts(b, "</code></td><td>");
		dash_esc(b, json_string_value(json_object_get(o, "initiator")));
		cbl_buf_puts(b, "</td><td>");
		dash_duration(b, json_is_integer(dur) ? json_integer_value(dur) : -1);
		cbl_buf_puts(b, "</td><td>");
		dash_time(b, json_integer_value(json_object_get(o, "startMs")));
		cbl_buf_puts(b, "</td></tr>");
	}
}

/* The project's latest batch builds (ListBuildBatchesForProject and
 * BatchGetBuildBatches, as the API answers them). */
static void batches_section(server_dash *d, cbl_buf *b, const char *project)
{
	json_t *req = json_pack("{s:s, s:i}", "projectName", project, "maxResults", 20);
	json_t *ids = NULL, *got = NULL;
	char *errmsg = NULL;
	if (api_call(d, "ListBuildBatchesForProject", req, &ids, &errmsg) == 0 &&
	    json_array_size(json_object_get(ids, "ids"))) {
		json_t *breq = json_pack("{s:O}", "ids", json_object_get(ids, "ids"));
		free(errmsg);
		errmsg = NULL;
		if (api_call(d, "BatchGetBuildBatches", breq, &got, &errmsg) < 0)
			got = NULL;
		json_decref(breq);
	}
	json_decref(req);
	json_t *list = json_object_get(got, "buildBatches");
	cbl_buf_puts(b, "<section aria-labelledby=\"batches-h\"><h2 id=\"batches-h\">Batch builds"
			"</h2>");
	if (!json_array_size(list)) {
		cbl_buf_puts(b, "<p id=\"no-batches\">None.</p>");
	} else {
		cbl_buf_puts(b, "<table id=\"batches\"><caption>The latest batch builds, newest first"
				"</caption><thead><tr><th scope=\"col\">Status</th><th scope=\"col\">"
				"Batch</th><th scope=\"col\">Builds</th><th scope=\"col\">Source "
				"version</th><th scope=\"col\">Duration</th><th scope=\"col\">Started"
				"</th></tr></thead><tbody>");
		dash_batch_rows(b, list);
		cbl_buf_puts(b, "</tbody></table>");
	}
	cbl_buf_puts(b, "</section>");
	free(errmsg);
	json_decref(ids);
	json_decref(got);
}

static int builds_page(server_dash *d, struct MHD_Connection *c, const char *project,
		       struct dash_page *p, char **errmsg)
{
	char *status = arg(c, "status"), *before_s = arg(c, "before");
	long long before = before_s ? strtoll(before_s, NULL, 10) : 0;
	json_t *page = NULL;
	cbl_error *err = NULL;
	free(before_s);
	if (store_dash_builds(d->home, project, status, before, PAGE_SIZE, &page, &err) < 0) {
		*errmsg = cbl_xstrdup(err ? err->msg : "cannot list builds");
		cbl_error_free(err);
		free(status);
		return -1;
	}
	char *title = cbl_xasprintf("Project %s", project);
	dash_head(p, title, "<a href=\"/\">Projects</a>");
	free(title);
	cbl_buf *b = &p->b;
	start_form(p, project);
	cbl_buf_puts(b, "<section aria-labelledby=\"builds-h\"><h2 id=\"builds-h\">Builds</h2>");
	filter_form(b, project, status);
	cbl_buf_puts(b, "<table id=\"builds\"><caption>Builds, newest first");
	if (before > 0)
		cbl_buf_printf(b, ", numbered below %lld", before);
	cbl_buf_puts(b, "</caption><thead><tr><th scope=\"col\">Status</th><th scope=\"col\">"
			"Build</th><th scope=\"col\">Source version</th><th scope=\"col\">Initiator"
			"</th><th scope=\"col\">Duration</th><th scope=\"col\">Started</th></tr>"
			"</thead><tbody>");
	build_rows(b, json_object_get(page, "builds"));
	cbl_buf_puts(b, "</tbody></table><nav aria-label=\"Pages\" class=\"pager\">");
	if (before > 0) {
		cbl_buf_puts(b, "<a href=\"/projects/");
		dash_esc(b, project);
		cbl_buf_puts(b, status ? "?status=" : "");
		dash_esc(b, status);
		cbl_buf_puts(b, "\">Newest</a> ");
	}
	json_t *next = json_object_get(page, "next");
	if (json_is_integer(next)) {
		cbl_buf_puts(b, "<a rel=\"next\" href=\"/projects/");
		dash_esc(b, project);
		cbl_buf_printf(b, "?before=%lld", (long long)json_integer_value(next));
		cbl_buf_puts(b, status ? "&amp;status=" : "");
		dash_esc(b, status);
		cbl_buf_puts(b, "\">Older builds</a>");
	}
	cbl_buf_puts(b, "</nav></section>");
	if (before <= 0)
		batches_section(d, b, project);
	dash_foot(p);
	json_decref(page);
	free(status);
	return 0;
}

/* ---- actions ------------------------------------------------------------ */

static enum MHD_Result form_field(void *cls, enum MHD_ValueKind kind, const char *key,
				  const char *filename, const char *content_type,
				  const char *transfer_encoding, const char *data, uint64_t off,
				  size_t size)
{
	(void)kind, (void)filename, (void)content_type, (void)transfer_encoding;
	json_t *form = cls;
	const char *old = off ? json_string_value(json_object_get(form, key)) : NULL;
	char *v = cbl_xasprintf("%s%.*s", old ? old : "", (int)size, data ? data : "");
	json_t *s = json_string(v);
	free(v);
	if (!s)
		return MHD_NO; /* not UTF-8 */
	json_object_set_new(form, key, s);
	return MHD_YES;
}

/* The url-encoded form of a POST (libmicrohttpd's parser); NULL if garbled. */
static json_t *parse_form(struct MHD_Connection *c, const cbl_buf *body)
{
	json_t *form = json_object();
	struct MHD_PostProcessor *pp = MHD_create_post_processor(c, 4096, form_field, form);
	if (!pp) {
		json_decref(form);
		return NULL;
	}
	enum MHD_Result r = body->len ? MHD_post_process(pp, body->ptr, body->len) : MHD_YES;
	MHD_destroy_post_processor(pp);
	if (r != MHD_YES) {
		json_decref(form);
		return NULL;
	}
	return form;
}

/* environmentVariablesOverride from "NAME=VALUE" lines. */
static json_t *env_overrides(const char *text, char **errmsg)
{
	json_t *list = json_array();
	char *copy = cbl_xstrdup(text ? text : ""), *save = NULL;
	for (char *line = strtok_r(copy, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		while (*line == ' ' || *line == '\t')
			line++;
		if (!*line)
			continue;
		char *eq = strchr(line, '=');
		if (!eq || eq == line) {
			*errmsg = cbl_xasprintf("environment override '%s' is not NAME=VALUE", line);
			json_decref(list);
			free(copy);
			return NULL;
		}
		*eq = '\0';
		json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "name", line, "value",
						      eq + 1, "type", "PLAINTEXT"));
	}
	free(copy);
	return list;
}

static json_t *action_request(const char *action, json_t *form, char **errmsg)
{
	const char *id = json_string_value(json_object_get(form, "id"));
	if (strcmp(action, "start")) {
		if (!id || !*id) {
			*errmsg = cbl_xstrdup("the form names no build");
			return NULL;
		}
		return json_pack("{s:s}", "id", id);
	}
	const char *project = json_string_value(json_object_get(form, "project"));
	const char *sv = json_string_value(json_object_get(form, "sourceVersion"));
	json_t *env = env_overrides(json_string_value(json_object_get(form, "env")), errmsg);
	if (!env)
		return NULL;
	json_t *req = json_pack("{s:s}", "projectName", project ? project : "");
	if (json_array_size(env))
		json_object_set(req, "environmentVariablesOverride", env);
	if (sv && *sv)
		json_object_set_new(req, "sourceVersion", json_string(sv));
	json_decref(env);
	return req;
}

/* The Origin of a browser's POST must be this server (Host as asked). */
static bool same_origin(struct MHD_Connection *c)
{
	const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	const char *site = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
	if (!origin || !host || strncmp(origin, "http://", 7) || strcmp(origin + 7, host))
		return false;
	return !site || !strcmp(site, "same-origin");
}

static enum MHD_Result do_action(server_dash *d, struct MHD_Connection *c, const char *action,
				 const cbl_buf *body, const char *csrf, unsigned *status)
{
	static const char *const ops[][2] = {
		{"start", "StartBuild"}, {"stop", "StopBuild"}, {"retry", "RetryBuild"}};
	const char *op = NULL;
	for (size_t i = 0; i < 3; i++)
		if (!strcmp(action, ops[i][0]))
			op = ops[i][1];
	if (!op)
		return *status = 404, dash_send_error(c, 404, "No such action");
	json_t *form = parse_form(c, body);
	const char *sent = form ? json_string_value(json_object_get(form, "csrf")) : NULL;
	if (!same_origin(c) || !sent || !server_secret_equal(sent, csrf)) {
		json_decref(form);
		*status = 403;
		return dash_send_error(c, 403, "Refused: this action did not come from a page of "
					       "this dashboard (CSRF token or Origin missing or wrong)");
	}
	char *errmsg = NULL;
	json_t *req = action_request(action, form, &errmsg), *res = NULL;
	json_decref(form);
	if (req && api_call(d, op, req, &res, &errmsg) == 0) {
		const char *id = json_string_value(json_object_get(json_object_get(res, "build"), "id"));
		char *to = cbl_xasprintf("/builds/%s", id ? id : "");
		json_decref(req);
		json_decref(res);
		*status = 303;
		enum MHD_Result r = redirect(c, to);
		free(to);
		return r;
	}
	json_decref(req);
	json_decref(res);
	*status = 400;
	enum MHD_Result r = dash_send_error(c, 400, errmsg ? errmsg : "the action failed");
	free(errmsg);
	return r;
}

/* ---- routing -------------------------------------------------------------- */

static enum MHD_Result login(server_dash *d, struct MHD_Connection *c, unsigned *status)
{
	char *token = arg(c, "token");
	char sid[65], csrf[65];
	bool ok = server_sessions_login(d->sessions, token, sid);
	free(token);
	if (!ok && server_sessions_check(d->sessions,
					 MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE), csrf)) {
		*status = 303; /* signed in already (the link opened again) */
		return redirect(c, "/");
	}
	if (!ok) {
		*status = 403;
		return dash_send_error(c, 403, "This sign-in link is wrong or was used already: "
					       "restart `codebuild-local serve` for a new one");
	}
	char *cookie = cbl_xasprintf(COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict", sid);
	*status = 303;
	struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (!r) {
		free(cookie);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Set-Cookie", cookie);
	MHD_add_response_header(r, "Location", "/");
	MHD_add_response_header(r, "Referrer-Policy", "same-origin");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	enum MHD_Result res = MHD_queue_response(c, 303, r);
	MHD_destroy_response(r);
	free(cookie);
	return res;
}

static enum MHD_Result asset(struct MHD_Connection *c, const char *name, unsigned *status)
{
	size_t len;
	const char *type;
	const char *data = dash_asset(name, &len, &type);
	if (!data)
		return *status = 404, dash_send_error(c, 404, "No such asset");
	*status = 200;
	char *copy = cbl_xmalloc(len + 1);
	memcpy(copy, data, len);
	return dash_send(c, 200, type, copy, len, NULL, NULL);
}

/* GET pages after the session check. */
static enum MHD_Result get_page(server_dash *d, struct MHD_Connection *c, const char *path,
				const char *csrf, unsigned *status)
{
	struct dash_page p = {CBL_BUF_INIT, csrf};
	char *errmsg = NULL;
	int rc;
	size_t n = strlen(path);
	if (!strcmp(path, "/")) {
		rc = projects_page(d, &p, &errmsg);
	} else if (!strcmp(path, "/trends")) {
		rc = dash_trends_page(d->home, &p, &errmsg);
	} else if (!strncmp(path, "/projects/", 10) && !strchr(path + 10, '/')) {
		rc = builds_page(d, c, path + 10, &p, &errmsg);
	} else if (!strncmp(path, "/builds/", 8) && n > 4 && !strcmp(path + n - 4, "/log")) {
		char *id = cbl_xstrndup(path + 8, n - 12);
		*status = 200;
		enum MHD_Result r = dash_log_stream(c, d->home, id, &d->stopping);
		free(id);
		return r;
	} else if (!strncmp(path, "/builds/", 8) && n > 8 && !strcmp(path + n - 8, "/reports")) {
		char *id = cbl_xstrndup(path + 8, n - 16);
		rc = dash_reports_page(d->home, id, &p, &errmsg);
		free(id);
	} else if (!strncmp(path, "/builds/", 8) && strstr(path + 8, "/artifacts/")) {
		const char *sl = strstr(path + 8, "/artifacts/");
		char *id = cbl_xstrndup(path + 8, (size_t)(sl - path - 8));
		enum MHD_Result r = dash_artifact(c, d->home, id, sl + 11, status);
		free(id);
		return r;
	} else if (!strncmp(path, "/batches/", 9) && n > 9 && !strchr(path + 9, '/')) {
		rc = dash_batch_page(d->home, path + 9, &p, &errmsg);
	} else if (!strncmp(path, "/builds/", 8) && !strchr(path + 8, '/')) {
		rc = dash_build_page(d->home, path + 8, &p, &errmsg);
	} else {
		return *status = 404, dash_send_error(c, 404, "No such page");
	}
	if (rc < 0) {
		cbl_buf_release(&p.b);
		*status = rc == -2 ? 404 : 400;
		enum MHD_Result r = dash_send_error(c, *status, errmsg ? errmsg : "failed");
		free(errmsg);
		return r;
	}
	*status = 200;
	return dash_send_page(c, 200, &p);
}

enum MHD_Result server_dash_handle(server_dash *d, struct MHD_Connection *c, const char *url,
				   const char *method, const cbl_buf *body, unsigned *status)
{
	bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
	if (!get && strcmp(method, "POST"))
		return *status = 405, dash_send_error(c, 405, "Method not allowed");
	char *path = cbl_xstrdup(url);
	MHD_http_unescape(path);
	enum MHD_Result r;
	char csrf[65];
	if (get && !strcmp(path, "/login")) {
		r = login(d, c, status);
	} else if (get && !strncmp(path, "/assets/", 8)) {
		r = asset(c, path + 8, status);
	} else if (!server_sessions_check(d->sessions,
					  MHD_lookup_connection_value(c, MHD_COOKIE_KIND, COOKIE),
					  csrf)) {
		*status = 401;
		r = dash_send_error(c, 401, "Sign in first: open the dashboard link that "
					    "`codebuild-local serve` printed");
	} else if (get) {
		r = get_page(d, c, path, csrf, status);
	} else if (!strncmp(path, "/actions/", 9)) {
		r = do_action(d, c, path + 9, body, csrf, status);
	} else {
		*status = 404;
		r = dash_send_error(c, 404, "No such page");
	}
	free(path);
	return r;
}
