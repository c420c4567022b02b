/* server/dash_html.c - the dashboard's HTML pieces: escaping, the page
 * frame, durations and times, status badges, forms, and sending pages with
 * their security headers.  Assets (web/dash.css, web/dash.js) are linked in
 * with the assembler's .incbin, like images/catalog.json. */
#include "server/dashboard.h"
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/banned.h"

__asm__(".pushsection .rodata\n"
	".global server_dash_css_start\n"
	"server_dash_css_start:\n"
	".incbin \"web/dash.css\"\n"
	".global server_dash_css_end\n"
	"server_dash_css_end:\n"
	".byte 0\n"
	".global server_dash_js_start\n"
	"server_dash_js_start:\n"
	".incbin \"web/dash.js\"\n"
	".global server_dash_js_end\n"
	"server_dash_js_end:\n"
	".byte 0\n"
	".popsection\n");
extern const char server_dash_css_start[], server_dash_css_end[];
extern const char server_dash_js_start[], server_dash_js_end[];

/* Nothing is fetched from anywhere but this server; no inline script. */
#define CSP "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " \
	    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

const char *dash_asset(const char *name, size_t *len, const char **type)
{
	if (!strcmp(name, "dash.css")) {
		*len = (size_t)(server_dash_css_end - server_dash_css_start);
		*type = "text/css; charset=utf-8";
		return server_dash_css_start;
	}
	if (!strcmp(name, "dash.js")) {
		*len = (size_t)(server_dash_js_end - server_dash_js_start);
		*type = "text/javascript; charset=utf-8";
		return server_dash_js_start;
	}
	return NULL;
}

void dash_esc(cbl_buf *b, const char *s)
{
	if (!s)
		return;
	for (; *s; s++) {
		switch (*s) {
		case '&': cbl_buf_puts(b, "&amp;"); break;
		case '<': cbl_buf_puts(b, "&lt;"); break;
		case '>': cbl_buf_puts(b, "&gt;"); break;
		case '"': cbl_buf_puts(b, "&quot;"); break;
		case '\'': cbl_buf_puts(b, "&#39;"); break;
		default: cbl_buf_putc(b, *s);
		}
	}
}

void dash_head(struct dash_page *p, const char *title, const char *crumb_html)
{
	cbl_buf *b = &p->b;
	cbl_buf_puts(b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
			"<title>");
	dash_esc(b, title);
	cbl_buf_puts(b, " - codebuild-local</title><link rel=\"stylesheet\" href=\"/assets/dash.css\">"
			"<script src=\"/assets/dash.js\" defer></script></head><body>"
			"<a class=\"skip\" href=\"#main\">Skip to content</a>"
			"<header><nav aria-label=\"Main\"><a class=\"brand\" href=\"/\">codebuild-local</a> "
			"<a href=\"/\">Projects</a> <a href=\"/trends\">Trends</a></nav>");
	if (crumb_html)
		cbl_buf_printf(b, "<nav aria-label=\"Breadcrumb\" class=\"crumbs\">%s</nav>", crumb_html);
	cbl_buf_puts(b, "</header><main id=\"main\" tabindex=\"-1\"><h1>");
	dash_esc(b, title);
	cbl_buf_puts(b, "</h1>");
}

void dash_crumb_project(cbl_buf *crumb, const char *project)
{
	cbl_buf_puts(crumb, "<a href=\"/\">Projects</a> / <a href=\"/projects/");
	dash_esc(crumb, project);
	cbl_buf_puts(crumb, "\">");
	dash_esc(crumb, project);
	cbl_buf_puts(crumb, "</a>");
}

void dash_head_record(struct dash_page *p, const char *what, const char *project, long long number,
		      const char *extra_crumb)
{
	char *title = cbl_xasprintf("%s %s #%lld", what, project ? project : "", number);
	cbl_buf crumb = CBL_BUF_INIT;
	dash_crumb_project(&crumb, project);
	if (extra_crumb)
		cbl_buf_puts(&crumb, extra_crumb);
	dash_head(p, title, cbl_buf_cstr(&crumb));
	free(title);
	cbl_buf_release(&crumb);
}

int dash_load_failed(int rc, cbl_error *err, const char *fallback, char **errmsg)
{
	*errmsg = cbl_xstrdup(err ? err->msg : fallback);
	cbl_error_free(err);
	return rc == CBL_ENOENT ? -2 : -1;
}

void dash_foot(struct dash_page *p)
{
	cbl_buf_puts(&p->b, "</main></body></html>\n");
}

void dash_duration(cbl_buf *b, long long ms)
{
	if (ms < 0)
		cbl_buf_puts(b, "-");
	else if (ms < 1000)
		cbl_buf_printf(b, "%lld ms", ms);
	else if (ms < 60000)
		cbl_buf_printf(b, "%.1f s", (double)ms / 1000.0);
	else if (ms < 3600000)
		cbl_buf_printf(b, "%lldm %02llds", ms / 60000, ms / 1000 % 60);
	else
		cbl_buf_printf(b, "%lldh %02lldm", ms / 3600000, ms / 60000 % 60);
}

void dash_time(cbl_buf *b, long long ms)
{
	char s[40];
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S", &tm);
	char iso[40];
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	cbl_buf_printf(b, "<time datetime=\"%s\">%s UTC</time>", iso, s);
}

void dash_status(cbl_buf *b, const char *status)
{
	if (!status)
		status = "NONE";
	cbl_buf_puts(b, "<span class=\"st st-");
	dash_esc(b, status);
	cbl_buf_puts(b, "\">");
	dash_esc(b, status);
	cbl_buf_puts(b, "</span>");
}

void dash_form(struct dash_page *p, const char *action, const char *cls)
{
	cbl_buf_printf(&p->b, "<form method=\"post\" action=\"%s\" class=\"%s\">"
			      "<input type=\"hidden\" name=\"csrf\" value=\"",
		       action, cls);
	dash_esc(&p->b, p->csrf);
	cbl_buf_puts(&p->b, "\">");
}

enum MHD_Result dash_send(struct MHD_Connection *c, unsigned status, const char *type,
			  char *body, size_t len, const char *extra_name, const char *extra_value)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Content-Security-Policy", CSP);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "same-origin");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (extra_name)
		MHD_add_response_header(r, extra_name, extra_value);
	enum MHD_Result res = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return res;
}

enum MHD_Result dash_send_page(struct MHD_Connection *c, unsigned status, struct dash_page *p)
{
	size_t len = p->b.len;
	return dash_send(c, status, "text/html; charset=utf-8", cbl_buf_detach(&p->b), len, NULL,
			 NULL);
}

enum MHD_Result dash_send_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
	struct dash_page p = {CBL_BUF_INIT, ""};
	char title[32];
	snprintf(title, sizeof(title), "Error %u", status);
	cbl_buf_puts(&p.b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
	cbl_buf_puts(&p.b, title);
	cbl_buf_puts(&p.b, "</title><link rel=\"stylesheet\" href=\"/assets/dash.css\"></head>"
			   "<body><main id=\"main\"><h1>");
	cbl_buf_puts(&p.b, title);
	cbl_buf_puts(&p.b, "</h1><p class=\"error\" role=\"alert\">");
	dash_esc(&p.b, msg);
	cbl_buf_puts(&p.b, "</p><p><a href=\"/\">Projects</a></p></main></body></html>\n");
	return dash_send_page(c, status, &p);
}
