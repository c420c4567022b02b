/* server/dashboard.h - the web dashboard `serve` shows under / (server/
 * internal).  A thin face over store/ (store/dash.h's read models, the
 * API's reads) and the API's dispatch callback (start, stop and retry are
 * the StartBuild / StopBuild / RetryBuild requests the API runs).
 *
 * Routing: http.c hands over every request without an X-Amz-Target header
 * that is not a POST to "/" (the API's one path); see server_dash_wants.
 *
 * Access: server_dash_new makes a one-time sign-in token; GET
 * /login?token=T with it (once) starts a session: an HttpOnly,
 * SameSite=Strict cookie.  Every other page, asset and data URL answers 401
 * without a live session.  Every POST (an action) must carry the session's
 * CSRF token as the form field "csrf" and an Origin header naming this
 * server (else 403): a cross-site form cannot stop a build.
 *
 * Thread safety: the handler is called from several connection threads.
 */
#ifndef SERVER_DASHBOARD_H
#define SERVER_DASHBOARD_H

#include <stdbool.h>
#include <stddef.h>

#include "server/dl.h"
#include "server/server.h"
#include "util/buf.h"

typedef struct server_dash server_dash;

/* home: the state directory; the dispatchers and payload are the API's
 * (server_opts), used for the actions. */
server_dash *server_dash_new(const char *home, server_dispatch_fn dispatch,
			     server_dispatch_text_fn dispatch_text, void *payload);
/* The one-time token (hex), borrowed. */
const char *server_dash_token(const server_dash *d);
/* Ends live log streams (server_stop calls it before closing connections). */
void server_dash_shutdown(server_dash *d);
void server_dash_free(server_dash *d);

/* Whether a request is the dashboard's: no X-Amz-Target and not POST /. */
bool server_dash_wants(struct MHD_Connection *c, const char *url, const char *method);

/* Answers one dashboard request (body: the whole request body). */
enum MHD_Result server_dash_handle(server_dash *d, struct MHD_Connection *c, const char *url,
				   const char *method, const cbl_buf *body, unsigned *status);

/* ---- between the dashboard's files ---------------------------------- */

/* sessions (session.c) */
typedef struct server_session server_session;
typedef struct server_sessions server_sessions;
server_sessions *server_sessions_new(void);
void server_sessions_free(server_sessions *s);
const char *server_sessions_token(const server_sessions *s);
/* Consumes the one-time token: true (and a new session id in sid[65]) when
 * token is it and unused. */
bool server_sessions_login(server_sessions *s, const char *token, char sid[65]);
/* The CSRF token of a live session (csrf[65]); false when sid is none. */
bool server_sessions_check(server_sessions *s, const char *sid, char csrf[65]);
/* Constant-time string equality. */
bool server_secret_equal(const char *a, const char *b);

/* pages and their pieces (dash_html.c) */
struct dash_page {
	cbl_buf b;
	const char *csrf; /* the session's */
};
void dash_esc(cbl_buf *b, const char *s);
void dash_head(struct dash_page *p, const char *title, const char *crumb_html);
void dash_foot(struct dash_page *p);
/* "Projects / <project>" as breadcrumb links (escaped), appended to crumb. */
void dash_crumb_project(cbl_buf *crumb, const char *project);
/* A record's page head: the title "<what> <project> #<number>" under the
 * project's breadcrumb, then extra_crumb (HTML, may be NULL). */
void dash_head_record(struct dash_page *p, const char *what, const char *project, long long number,
		      const char *extra_crumb);
/* A record that could not be loaded (rc < 0, err taken): *errmsg, and -2
 * where there is none (a 404), else -1. */
int dash_load_failed(int rc, cbl_error *err, const char *fallback, char **errmsg);
/* "1m 05s", "850 ms"; "-" for < 0 */
void dash_duration(cbl_buf *b, long long ms);
void dash_time(cbl_buf *b, long long ms);
void dash_status(cbl_buf *b, const char *status);
/* A POST form's opening tag with the CSRF field. */
void dash_form(struct dash_page *p, const char *action, const char *cls);
enum MHD_Result dash_send(struct MHD_Connection *c, unsigned status, const char *type,
			  char *body, size_t len, const char *extra_name, const char *extra_value);
enum MHD_Result dash_send_page(struct MHD_Connection *c, unsigned status, struct dash_page *p);
enum MHD_Result dash_send_error(struct MHD_Connection *c, unsigned status, const char *msg);
/* An embedded asset by name ("dash.css"); NULL if none. */
const char *dash_asset(const char *name, size_t *len, const char **type);

/* the build pages (dash_build.c) */
int dash_build_page(const char *home, const char *id, struct dash_page *p, char **errmsg);
/* The build's log as server-sent events from the Last-Event-ID offset:
 * "line" events (id = the offset after the line), then one "end" event.
 * Ends early once *stopping is set. */
enum MHD_Result dash_log_stream(struct MHD_Connection *c, const char *home, const char *id,
				const volatile int *stopping);

/* A build's artifact n (0 = the primary, then the secondary ones in the
 * record's order) as a download, when it is a file in the build's own
 * artifacts/ directory (never a path elsewhere, a link or a non-file). */
enum MHD_Result dash_artifact(struct MHD_Connection *c, const char *home, const char *id,
			      const char *n, unsigned *status);
/* Opens artifact n of a record that way: 0 and *fd, *size, *name (its
 * file name, borrowed from rec), or -1. */
int dash_artifact_open(const char *home, json_t *rec, size_t n, int *fd, long long *size,
		       const char **name);

/* the batch pages (dash_batch.c): a batch's page (its builds by level of
 * the dependency graph) and a project's list rows from BuildBatch records */
int dash_batch_page(const char *home, const char *id, struct dash_page *p, char **errmsg);
void dash_batch_rows(cbl_buf *b, json_t *batches);

/* the reports and trends pages (dash_reports.c) */
int dash_reports_page(const char *home, const char *id, struct dash_page *p, char **errmsg);
int dash_trends_page(const char *home, struct dash_page *p, char **errmsg);

#endif
