/* runner/log.c - the build's log and events, and secret masking.
 * Parameter Store and Secrets Manager values, the value of AWS_ACCESS_KEY_ID
 * and anything shaped like an AWS access key id never reach the log: every
 * occurrence becomes "***", inside longer lines and in the echoed "Running
 * command" text too (the service hides them, reference §3.3; "***" is what
 * its logs show, e.g. `Running command echo "***"`). */
#include "runner/runner_internal.h"
#include "util/alloc.h"
#include "util/fs.h"
#include "util/time.h"

#include <stdarg.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/banned.h"

static void mask_add_one(runner_mask *m, const char *secret);

void runner_mask_add(runner_mask *m, const char *secret)
{
	if (!secret || !*secret)
		return;
	mask_add_one(m, secret);
	/* the log is masked line by line: a multi-line secret (a PEM key) is
	 * also masked one line at a time */
	if (strchr(secret, '\n')) {
		const char *p = secret;
		while (*p) {
			const char *nl = strchr(p, '\n');
			size_t l = nl ? (size_t)(nl - p) : strlen(p);
			if (l && p[l - 1] == '\r')
				l--;
			if (l >= 4) { /* not every short line of a secret is secret */
				char *line = cbl_xstrndup(p, l);
				mask_add_one(m, line);
				free(line);
			}
			p = nl ? nl + 1 : p + strlen(p);
		}
	}
}

static void mask_add_one(runner_mask *m, const char *secret)
{
	for (size_t i = 0; i < m->secrets.n; i++)
		if (!strcmp(m->secrets.v[i], secret))
			return;
	cbl_strv_push(&m->secrets, secret);
	/* longest first, so a secret that contains another is masked whole */
	for (size_t i = m->secrets.n - 1; i > 0; i--) {
		if (strlen(m->secrets.v[i]) <= strlen(m->secrets.v[i - 1]))
			break;
		char *t = m->secrets.v[i];
		m->secrets.v[i] = m->secrets.v[i - 1];
		m->secrets.v[i - 1] = t;
	}
}

static bool key_char(char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

/* The length of an AWS access key id at s[i] (AKIA/ASIA and 16 upper-case
 * letters or digits, not part of a longer such run), else 0. */
static size_t access_key_at(const char *s, size_t i, size_t len)
{
	if (len - i < 20 || (i > 0 && key_char(s[i - 1])))
		return 0;
	if (memcmp(s + i, "AKIA", 4) != 0 && memcmp(s + i, "ASIA", 4) != 0)
		return 0;
	for (size_t k = 4; k < 20; k++)
		if (!key_char(s[i + k]))
			return 0;
	return (i + 20 < len && key_char(s[i + 20])) ? 0 : 20;
}

char *runner_mask_apply(const runner_mask *m, const char *s, size_t len)
{
	cbl_buf out = CBL_BUF_INIT;
	size_t i = 0;
	cbl_buf_append(&out, "", 0);
	while (i < len) {
		bool hit = false;
		for (size_t k = 0; k < m->secrets.n; k++) {
			size_t sl = strlen(m->secrets.v[k]);
			if (sl <= len - i && memcmp(s + i, m->secrets.v[k], sl) == 0) {
				cbl_buf_puts(&out, "***");
				i += sl;
				hit = true;
				break;
			}
		}
		size_t kl = hit ? 0 : access_key_at(s, i, len);
		if (kl) {
			cbl_buf_puts(&out, "***");
			i += kl;
		} else if (!hit) {
			cbl_buf_putc(&out, s[i++]);
		}
	}
	return cbl_buf_detach(&out);
}

void runner_mask_release(runner_mask *m) { cbl_strv_release(&m->secrets); }

/* ---------------------------------------------------------------- the log and events
 * Every line a build logs goes through here: masked, written to the build's
 * log file, and emitted as an event. */

void runner_emit(runner_build *b, runner_event *ev)
{
	if (!ev->time_us)
		ev->time_us = cbl_now_us();
	if (b->log.on_event)
		b->log.on_event(ev, b->log.payload);
}

void runner_log_line(runner_build *b, const char *text, size_t len, bool agent)
{
	char *masked = runner_mask_apply(&b->log.mask, text, len);
	if (b->log.fd >= 0) {
		size_t ml = strlen(masked);
		cbl_write_all(b->log.fd, masked, ml);
		cbl_write_all(b->log.fd, "\n", 1);
	}
	runner_event ev = {.kind = RUNNER_EV_LOG, .phase = b->current, .text = masked, .agent = agent};
	runner_emit(b, &ev);
	free(masked);
}

void runner_agent(runner_build *b, const char *fmt, ...)
{
	char ts[32];
	cbl_buf line = CBL_BUF_INIT;
	cbl_format_log_time(ts, cbl_now_us());
	cbl_buf_printf(&line, "[Container] %s ", ts);
	va_list ap;
	va_start(ap, fmt);
	cbl_buf_vprintf(&line, fmt, ap);
	va_end(ap);
	runner_log_line(b, line.ptr, line.len, true);
	cbl_buf_release(&line);
}

/* Something a local run does differently from the cloud: said loudly, in the
 * log (so it is in the record's log stream too) and as an event. */
void runner_warn(runner_build *b, const char *fmt, ...)
{
	cbl_buf msg = CBL_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cbl_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	runner_agent(b, "[codebuild-local] WARNING: %s", msg.ptr);
	char *masked = runner_mask_apply(&b->log.mask, msg.ptr, msg.len);
	runner_event ev = {.kind = RUNNER_EV_WARNING, .phase = b->current, .text = masked};
	runner_emit(b, &ev);
	free(masked);
	cbl_buf_release(&msg);
}

/* runner_warn, then the error the message was made from is dropped: the
 * build goes on (the arguments, e->msg among them, are used before the free). */
void runner_warn_drop(runner_build *b, cbl_error **e, const char *fmt, ...)
{
	cbl_buf msg = CBL_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cbl_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	runner_warn(b, "%s", msg.ptr);
	cbl_buf_release(&msg);
	cbl_error_clear(e);
}

static bool memmem_ci(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = 0; n <= len && i <= len - n; i++)
		if (!strncasecmp(hay + i, needle, n))
			return true;
	return false;
}

/* Says whether a line of a command's output reports a write refused on a
 * read-only system directory: "Read-only file system" (strerror(EROFS)),
 * node's "EROFS", or a permission denied naming /usr, /etc, /var, /opt,
 * /bin, /sbin or /lib.  Kept simple: a hint, never a verdict. */
bool runner_rofs_line(const char *line, size_t len)
{
	static const char *const sys[] = {"/usr", "/etc", "/var", "/opt", "/bin", "/sbin", "/lib"};
	if (memmem_ci(line, len, "read-only file system") || memmem(line, len, "EROFS", 5))
		return true;
	if (!memmem_ci(line, len, "permission denied") && !memmem(line, len, "EACCES", 6))
		return false;
	for (size_t i = 0; i < sizeof(sys) / sizeof(*sys); i++) {
		size_t l = strlen(sys[i]);
		for (const char *p = line; (p = memmem(p, len - (size_t)(p - line), sys[i], l));) {
			/* at a path's start, then a '/' or the end of the name */
			bool start = p == line || strchr(" '\"`(:=", p[-1]);
			bool end = (size_t)(p - line) + l == len || strchr("/ '\":", p[l]);
			if (start && end)
				return true;
			p += l;
		}
	}
	return false;
}

void runner_log_output(const char *line, size_t len, void *payload)
{
	runner_build *b = payload;
	if (b->ro_root && !b->rofs_seen && runner_rofs_line(line, len))
		b->rofs_seen = true;
	runner_log_line(payload, line, len, false);
}

/* ---------------------------------------------------------------- what may be shown */

void runner_outcome_set(runner_build *b, runner_outcome *o, const char *code, const char *msg)
{
	free(o->code);
	free(o->message);
	o->code = code ? cbl_xstrdup(code) : NULL;
	/* stored masked: the record and events never carry a secret */
	o->message = msg ? runner_mask_apply(&b->log.mask, msg, strlen(msg)) : NULL;
}

void runner_outcome_setf(runner_build *b, runner_outcome *o, const char *code, const char *fmt, ...)
{
	cbl_buf m = CBL_BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	cbl_buf_vprintf(&m, fmt, ap);
	va_end(ap);
	runner_outcome_set(b, o, code, m.ptr);
	cbl_buf_release(&m);
}

void runner_outcome_release(runner_outcome *o)
{
	free(o->code);
	free(o->message);
	o->code = o->message = NULL;
}

/* A URL as it may be shown: credentials replaced by "***". */
char *runner_redact_url(const char *url)
{
	const char *scheme = strstr(url, "://");
	const char *at = scheme ? strchr(scheme + 3, '@') : NULL;
	const char *slash = scheme ? strchr(scheme + 3, '/') : NULL;
	if (!at || (slash && at > slash))
		return cbl_xstrdup(url);
	return cbl_xasprintf("%.*s***%s", (int)(scheme + 3 - url), url, at);
}

