/* store/logs.c - CloudWatch Logs GetLogEvents over the builds' log files.
 *
 * A build's log stream is its build.log (group /aws/codebuild/<project>,
 * stream = the build's uuid, indexed in log_streams); each line is one event.
 * Events carry CloudWatch's millisecond timestamps: an agent line
 * "[Container] YYYY/MM/DD HH:MM:SS.ffffff ..." has its own, any other line
 * (command output) takes the one of the nearest agent line before it, or
 * the build's start time.  As CodeBuild's events do, a message keeps its
 * line's trailing newline.  While the build runs, an unfinished last line
 * is not an event yet.
 *
 * Tokens: "f/<n>" / "b/<n>" (n in 56 digits, as the service prints them) are
 * positions between events: a forward page starts at n, a backward page
 * ends at n.  At either end of the stream the token passed in comes back,
 * which is how SDK paginators know to stop.
 */
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/banned.h"

#define LOGS_MAX_EVENTS 10000
#define LOGS_MAX_BYTES (1024 * 1024)
#define LOGS_EVENT_OVERHEAD 26 /* CloudWatch counts 26 bytes per event */

static int logs_invalid(cbl_error **err, const char *msg)
{
	return cbl_error_set(err, CBL_EINVAL, "%s", msg);
}

bool store_logs_group_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '-' || c == '_' || c == '/' || c == '#'))
			return false;
	}
	return true;
}

bool store_logs_stream_ok(const char *s) { return !strchr(s, ':') && !strchr(s, '*'); }

/* "[Container] 2024/01/02 03:04:05.678901 ..." -> ms, or -1. */
int64_t store_logs_agent_time(const char *p, size_t len)
{
	static const char prefix[] = "[Container] ";
	const size_t pl = sizeof(prefix) - 1;
	if (len < pl + 19 || memcmp(p, prefix, pl))
		return -1;
	p += pl;
	int v[6];
	static const int pos[6] = {0, 5, 8, 11, 14, 17};
	static const int width[6] = {4, 2, 2, 2, 2, 2};
	for (int i = 0; i < 6; i++) {
		int x = 0;
		for (int k = 0; k < width[i]; k++) {
			char c = p[pos[i] + k];
			if (c < '0' || c > '9')
				return -1;
			x = x * 10 + (c - '0');
		}
		v[i] = x;
	}
	if (p[4] != '/' || p[7] != '/' || p[10] != ' ' || p[13] != ':' || p[16] != ':')
		return -1;
	struct tm tm = {.tm_year = v[0] - 1900, .tm_mon = v[1] - 1, .tm_mday = v[2],
			.tm_hour = v[3], .tm_min = v[4], .tm_sec = v[5]};
	int64_t ms = (int64_t)timegm(&tm) * 1000;
	if (len > pl + 20 && p[19] == '.') {
		int64_t frac = 0;
		int digits = 0;
		for (size_t k = 20; k < len - pl && digits < 3 && p[k] >= '0' && p[k] <= '9'; k++, digits++)
			frac = frac * 10 + (p[k] - '0');
		while (digits > 0 && digits < 3) {
			frac *= 10;
			digits++;
		}
		ms += frac;
	}
	return ms;
}

static int parse_token(const char *s, char *dir, long long *pos)
{
	if (!s || (s[0] != 'f' && s[0] != 'b') || s[1] != '/' || !s[2])
		return -1;
	long long v = 0;
	for (const char *p = s + 2; *p; p++) {
		if (*p < '0' || *p > '9' || v > 100000000000000LL)
			return -1;
		v = v * 10 + (*p - '0');
	}
	*dir = s[0];
	*pos = v;
	return 0;
}

static json_t *token(char dir, size_t pos)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%c/%056zu", dir, pos);
	return json_string(buf);
}

/* A build's output is bytes: invalid UTF-8 becomes U+FFFD, as CloudWatch does. */
json_t *store_logs_message(const char *p, size_t len)
{
	json_t *j = json_stringn(p, len);
	if (j)
		return j;
	cbl_buf b = CBL_BUF_INIT;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)p[i];
		size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
		json_t *ok = n && i + n <= len ? json_stringn(p + i, n) : NULL;
		if (ok) {
			cbl_buf_append(&b, p + i, n);
			json_decref(ok);
			i += n;
		} else {
			cbl_buf_puts(&b, "\xef\xbf\xbd");
			i++;
		}
	}
	j = json_stringn(cbl_buf_cstr(&b), b.len);
	cbl_buf_release(&b);
	return j ? j : json_string("");
}

static const store_field req_f[] = {
	{"logGroupName", SF_STR, .min = 1, .max = 512, .pattern = store_logs_group_ok,
	 .pattern_text = "[\\.\\-_/#A-Za-z0-9]+"},
	{"logGroupIdentifier", SF_STR, .min = 1, .max = 2048},
	{"logStreamName", SF_STR, true, .min = 1, .max = 512, .pattern = store_logs_stream_ok,
	 .pattern_text = "[^:*]*"},
	{"startTime", SF_INT, .min = 0},
	{"endTime", SF_INT, .min = 0},
	{"nextToken", SF_STR, .min = 1},
	{"limit", SF_INT, .min = 1, .max = LOGS_MAX_EVENTS},
	{"startFromHead", SF_BOOL},
	{"unmask", SF_BOOL},
};
static const store_shape req_s = {req_f, ARRAY_SIZE(req_f)};

int store_logs_group_exists(store_db *h, const char *group, bool *out, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	/* a project's group exists before its first build: `aws logs tail
	 * --follow` may start before the build does */
	int rc = store_prepare(h->db,
			       "SELECT 1 FROM log_streams WHERE group_name = ?1"
			       " UNION ALL SELECT 1 FROM projects WHERE '/aws/codebuild/' || name = ?1"
			       "   OR json_extract(record, '$.logsConfig.cloudWatchLogs.groupName') = ?1"
			       " LIMIT 1",
			       &st, err);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	*out = s == SQLITE_ROW;
	if (s != SQLITE_ROW && s != SQLITE_DONE)
		rc = store_sql_error(h->db, err, "cannot read the log stream index");
	sqlite3_finalize(st);
	return rc;
}

/* Finds the stream's file, its build's start time and whether it is complete. */
static int find_stream(store_db *h, const char *group, const char *stream, char **path,
		       int64_t *start_ms, bool *complete, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	char *build_id = NULL;
	int rc = store_prepare(h->db, "SELECT build_id, path FROM log_streams"
				      " WHERE group_name = ?1 AND stream_name = ?2",
			       &st, err);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, stream, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		build_id = cbl_xstrdup((const char *)sqlite3_column_text(st, 0));
		*path = cbl_xstrdup((const char *)sqlite3_column_text(st, 1));
	} else if (s != SQLITE_DONE) {
		rc = store_sql_error(h->db, err, "cannot read the log stream index");
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc)
		goto out;
	if (!build_id) {
		/* which error: no such group, or no such stream in it */
		bool group_exists = false;
		rc = store_logs_group_exists(h, group, &group_exists, err);
		if (!rc)
			rc = cbl_error_set(err, CBL_ENOENT, group_exists ? "The specified log stream does not exist."
									 : "The specified log group does not exist.");
		goto out;
	}
	rc = store_db_recover(h, build_id, err);
	if (rc < 0)
		goto out;
	rc = store_prepare(h->db, "SELECT start_ms, complete FROM builds WHERE id = ?1", &st, err);
	if (rc)
		goto out;
	sqlite3_bind_text(st, 1, build_id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*start_ms = sqlite3_column_int64(st, 0);
		*complete = sqlite3_column_int(st, 1) != 0;
	} else {
		*start_ms = 0;
		*complete = true;
	}
out:
	sqlite3_finalize(st);
	free(build_id);
	if (rc) {
		free(*path);
		*path = NULL;
	}
	return rc;
}

/* The log group a request names, by logGroupName or logGroupIdentifier (a
 * name or an ARN); *out caller-freed. */
int store_logs_request_group(const json_t *in, char **out, cbl_error **err)
{
	const char *gname = cbl_json_str(in, "logGroupName");
	const char *gid = cbl_json_str(in, "logGroupIdentifier");
	if (gname && gid)
		return logs_invalid(err, "LogGroupName and LogGroupIdentifier are mutually exclusive "
					 "parameters.");
	if (!gname && !gid)
		return logs_invalid(err, "Either LogGroupName or LogGroupIdentifier must be specified.");
	if (gid && !strncmp(gid, "arn:", 4)) {
		/* arn:aws:logs:<region>:<account>:log-group:<name>[:*] */
		const char *p = strstr(gid, ":log-group:");
		if (!p)
			return logs_invalid(err, "The specified logGroupIdentifier is not a valid log group "
						 "name or ARN.");
		char *group = cbl_xstrdup(p + 11);
		size_t gl = strlen(group);
		if (gl >= 2 && !strcmp(group + gl - 2, ":*"))
			group[gl - 2] = '\0';
		*out = group;
	} else {
		*out = cbl_xstrdup(gname ? gname : gid);
	}
	return 0;
}

/* Maps the log file (a missing or empty one: *map NULL, *len 0). */
int store_logs_map(const char *path, int *fd, char **map, size_t *len, cbl_error **err)
{
	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat sb;
	if (*fd >= 0 && fstat(*fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) {
		*len = (size_t)sb.st_size;
		*map = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, *fd, 0);
		if (*map == MAP_FAILED) {
			*map = NULL;
			return cbl_error_set_errno(err, CBL_EIO, errno, "cannot read '%s'", path);
		}
	} else if (*fd < 0 && errno != ENOENT) {
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot open '%s'", path);
	}
	return 0;
}

/* The events of a log, one per line, in [t0, t1): a line without an agent
 * time stamp has the time of the one before it (the first ones the build's
 * start).  The last line of an incomplete log may be half written: left
 * out. */
void store_logs_scan(const char *map, size_t map_len, bool complete, int64_t start_ms, int64_t t0,
			int64_t t1, store_log_event **ev, size_t *nev)
{
	size_t cap = 0;
	int64_t cur_ts = start_ms;
	for (size_t off = 0; off < map_len;) {
		const char *nl = memchr(map + off, '\n', map_len - off);
		size_t len = nl ? (size_t)(nl - (map + off)) + 1 : map_len - off;
		if (!nl && !complete)
			break; /* still being written */
		int64_t t = store_logs_agent_time(map + off, nl ? len - 1 : len);
		if (t >= 0)
			cur_ts = t;
		if (cur_ts >= t0 && cur_ts < t1) {
			CBL_GROW(*ev, *nev + 1, cap);
			(*ev)[(*nev)++] = (store_log_event){off, len, cur_ts};
		}
		off += len;
	}
}

/* The page [*lo, *hi) from anchor, forward or backward, within the
 * service's count and size limits. */
static void page_range(const store_log_event *ev, size_t nev, bool forward, size_t anchor, size_t limit,
		       size_t *lo, size_t *hi)
{
	size_t bytes = 0;
	*lo = *hi = anchor;
	if (forward) {
		while (*hi < nev && *hi - *lo < limit &&
		       bytes + ev[*hi].len + LOGS_EVENT_OVERHEAD <= LOGS_MAX_BYTES)
			bytes += ev[(*hi)++].len + LOGS_EVENT_OVERHEAD;
	} else {
		while (*lo > 0 && *hi - *lo < limit &&
		       bytes + ev[*lo - 1].len + LOGS_EVENT_OVERHEAD <= LOGS_MAX_BYTES)
			bytes += ev[--(*lo)].len + LOGS_EVENT_OVERHEAD;
	}
}

/* The response for the page [lo, hi). */
static json_t *page_json(const char *map, const store_log_event *ev, size_t lo, size_t hi, const char *tok,
			 bool forward)
{
	json_t *events = json_array();
	for (size_t i = lo; i < hi; i++) {
		json_t *e = json_object();
		json_object_set_new(e, "timestamp", json_integer(ev[i].ts));
		json_object_set_new(e, "message", store_logs_message(map + ev[i].off, ev[i].len));
		json_object_set_new(e, "ingestionTime", json_integer(ev[i].ts));
		json_array_append_new(events, e);
	}
	json_t *out = json_object();
	json_object_set_new(out, "events", events);
	/* at an end of the stream, the caller's own token comes back */
	if (tok && forward && hi == lo)
		json_object_set_new(out, "nextForwardToken", json_string(tok));
	else
		json_object_set_new(out, "nextForwardToken", token('f', hi));
	if (tok && !forward && hi == lo)
		json_object_set_new(out, "nextBackwardToken", json_string(tok));
	else
		json_object_set_new(out, "nextBackwardToken", token('b', lo));
	return out;
}

int store_op_get_log_events(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	store_verr v = STORE_VERR_INIT;
	json_t *in = NULL;
	char *path = NULL, *group = NULL;
	store_log_event *ev = NULL;
	size_t nev = 0;
	char *map = NULL;
	size_t map_len = 0;
	int fd = -1;
	store_shape_check(&req_s, "", req, &in, &v);
	int rc = store_verr_finish(&v, err);
	if (rc)
		goto out;
	rc = store_logs_request_group(in, &group, err);
	if (rc)
		goto out;
	const char *stream = cbl_json_str(in, "logStreamName");
	const char *tok = cbl_json_str(in, "nextToken");
	char tdir = 0;
	long long tpos = 0;
	if (tok && parse_token(tok, &tdir, &tpos) < 0) {
		rc = logs_invalid(err, "The specified nextToken is invalid.");
		goto out;
	}
	json_t *jlimit = json_object_get(in, "limit");
	size_t limit = jlimit ? (size_t)json_integer_value(jlimit) : LOGS_MAX_EVENTS;
	bool from_head = json_is_true(json_object_get(in, "startFromHead"));
	json_t *jst = json_object_get(in, "startTime"), *jet = json_object_get(in, "endTime");
	int64_t t0 = jst ? (int64_t)json_integer_value(jst) : INT64_MIN;
	int64_t t1 = jet ? (int64_t)json_integer_value(jet) : INT64_MAX;

	int64_t start_ms = 0;
	bool complete = true;
	rc = find_stream(h, group, stream, &path, &start_ms, &complete, err);
	if (rc)
		goto out;
	rc = store_logs_map(path, &fd, &map, &map_len, err);
	if (rc)
		goto out;
	store_logs_scan(map, map_len, complete, start_ms, t0, t1, &ev, &nev);

	size_t lo, hi;
	bool forward = tok ? tdir == 'f' : from_head;
	size_t anchor = tok ? (tpos > (long long)nev ? nev : (size_t)tpos) : (from_head ? 0 : nev);
	page_range(ev, nev, forward, anchor, limit, &lo, &hi);
	*out = page_json(map, ev, lo, hi, tok, forward);
out:
	if (map)
		munmap(map, map_len);
	if (fd >= 0)
		close(fd);
	free(ev);
	free(path);
	free(group);
	json_decref(in);
	return rc;
}
