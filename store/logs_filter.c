/* store/logs_filter.c - CloudWatch Logs FilterLogEvents, DescribeLogStreams
 * and DescribeLogGroups over the builds' log streams (store/logs.c has
 * GetLogEvents and the event model: one event per line).
 *
 * FilterLogEvents interleaves the group's streams by (timestamp, stream
 * name, position), as the service always does since 2019.  Its nextToken
 * names the last event returned ("<ms>/<byte offset>/<stream>"), so a page
 * goes on after it whatever was appended since; an event's eventId is
 * stable (56 digits: the stream's name hashed, then the line's offset), which
 * is what `aws logs tail --follow` relies on to drop the events it has seen
 * when it asks again from the newest timestamp.
 *
 * Filter patterns: the unstructured-text syntax of the service (terms are
 * case-sensitive substrings; "quoted phrases"; ?a ?b any of; -a none of;
 * "" everything).  JSON ({ $.x = ... }), space-delimited ([a, b]) and
 * regular-expression (%re%) patterns are refused with a clear message.
 */
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/json.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/banned.h"

#define FLE_MAX_EVENTS 10000
#define FLE_MAX_BYTES (1024 * 1024)
#define FLE_EVENT_OVERHEAD 26
#define DESCRIBE_MAX 50

/* ------------------------------------------------------------ patterns */

typedef struct fterm {
	char *s;
	size_t len;
	char kind; /* '+' all of, '?' any of, '-' none of */
} fterm;

typedef struct fpattern {
	fterm *t;
	size_t n, cap, nany;
} fpattern;

static void fpattern_release(fpattern *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->t[i].s);
	free(p->t);
}

static int fpattern_parse(const char *s, fpattern *p, cbl_error **err)
{
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '{' || *s == '[' || *s == '%')
		return cbl_error_set(err, CBL_EINVAL,
				     "Invalid filter pattern: JSON, space-delimited and regular-expression "
				     "patterns are not supported by codebuild-local (terms, \"phrases\", "
				     "?any and -none are)");
	while (*s) {
		if (*s == ' ' || *s == '\t') {
			s++;
			continue;
		}
		char kind = '+';
		if (*s == '?' || *s == '-')
			kind = *s++;
		cbl_buf b = CBL_BUF_INIT;
		if (*s == '"') {
			for (s++; *s && *s != '"'; s++) {
				if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
					s++;
				cbl_buf_putc(&b, *s);
			}
			if (*s != '"') {
				cbl_buf_release(&b);
				return cbl_error_set(err, CBL_EINVAL, "Invalid filter pattern: unterminated quoted term");
			}
			s++;
		} else {
			while (*s && *s != ' ' && *s != '\t')
				cbl_buf_putc(&b, *s++);
		}
		if (kind != '+' && !b.len) {
			cbl_buf_release(&b);
			return cbl_error_set(err, CBL_EINVAL, "Invalid filter pattern: '%c' must precede a term",
					     kind);
		}
		CBL_GROW(p->t, p->n + 1, p->cap);
		p->t[p->n].len = b.len;
		p->t[p->n].s = b.len ? cbl_buf_detach(&b) : cbl_xstrdup("");
		cbl_buf_release(&b);
		p->t[p->n++].kind = kind;
		if (kind == '?')
			p->nany++;
	}
	return 0;
}

static bool fpattern_match(const fpattern *p, const char *line, size_t len)
{
	if (len && line[len - 1] == '\n')
		len--;
	bool any = p->nany == 0;
	for (size_t i = 0; i < p->n; i++) {
		const fterm *t = &p->t[i];
		bool in = !t->len || memmem(line, len, t->s, t->len) != NULL;
		if ((t->kind == '+' && !in) || (t->kind == '-' && in))
			return false;
		if (t->kind == '?' && in)
			any = true;
	}
	return any;
}

/* ------------------------------------------------------------- streams */

typedef struct lstream {
	char *name, *path, *arn; /* arn: the build's */
	int64_t created_ms, start_ms, end_ms; /* end_ms: 0 while running */
	bool complete, mapped;
	char *map;
	size_t map_len;
} lstream;

typedef struct lstreams {
	lstream *s;
	size_t n, cap;
} lstreams;

static void lstreams_release(lstreams *ls)
{
	for (size_t i = 0; i < ls->n; i++) {
		lstream *s = &ls->s[i];
		if (s->map)
			munmap(s->map, s->map_len);
		free(s->name);
		free(s->path);
		free(s->arn);
	}
	free(ls->s);
}

static bool in_names(const json_t *names, const char *name)
{
	size_t i;
	const json_t *x;
	json_array_foreach(names, i, x) if (!strcmp(json_string_value(x), name)) return true;
	return false;
}

/* The group's streams in name order, limited to a prefix or a list of names
 * (NULL: all); CBL_ENOENT if the group does not exist. */
static int load_streams(store_db *h, const char *group, const char *prefix, const json_t *names,
			lstreams *out, cbl_error **err)
{
	sqlite3_stmt *st = NULL;
	int rc = store_db_recover(h, NULL, err);
	if (rc < 0)
		return rc;
	rc = store_prepare(h->db,
			   "SELECT s.stream_name, s.path, s.created_ms, b.start_ms, b.complete,"
			   "       json_extract(b.record, '$.arn'), b.end_ms"
			   " FROM log_streams s LEFT JOIN builds b ON b.id = s.build_id"
			   " WHERE s.group_name = ?1 AND substr(s.stream_name, 1, length(?2)) = ?2"
			   " ORDER BY s.stream_name",
			   &st, err);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, prefix ? prefix : "", -1, SQLITE_STATIC);
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		if (names && !in_names(names, name))
			continue;
		CBL_GROW(out->s, out->n + 1, out->cap);
		lstream *l = &out->s[out->n++];
		const char *arn = (const char *)sqlite3_column_text(st, 5);
		*l = (lstream){.name = cbl_xstrdup(name),
			       .path = cbl_xstrdup((const char *)sqlite3_column_text(st, 1)),
			       .arn = arn ? cbl_xstrdup(arn) : NULL,
			       .created_ms = sqlite3_column_int64(st, 2),
			       .start_ms = sqlite3_column_int64(st, 3),
			       .complete = sqlite3_column_type(st, 4) == SQLITE_NULL || sqlite3_column_int(st, 4),
			       .end_ms = sqlite3_column_int64(st, 6)};
	}
	if (s != SQLITE_DONE)
		rc = store_sql_error(h->db, err, "cannot read the log stream index");
	sqlite3_finalize(st);
	if (!rc && out->n == 0) {
		bool exists = false;
		rc = store_logs_group_exists(h, group, &exists, err);
		if (!rc && !exists)
			rc = cbl_error_set(err, CBL_ENOENT, "The specified log group does not exist.");
	}
	return rc;
}

/* Maps the stream's log once; the descriptor is closed at once (the
 * mapping stays), so a group of many streams holds no descriptors. */
static int lstream_map(lstream *s, cbl_error **err)
{
	if (s->mapped)
		return 0;
	int fd = -1;
	int rc = store_logs_map(s->path, &fd, &s->map, &s->map_len, err);
	if (fd >= 0)
		close(fd);
	s->mapped = rc == 0;
	return rc;
}

static char *log_arn(const char *build_arn, const char *group)
{
	char *account = NULL;
	char *region = store_arn_region_account(build_arn, &account);
	char *arn = cbl_xasprintf("arn:aws:logs:%s:%s:log-group:%s", region, account, group);
	free(region);
	free(account);
	return arn;
}

/* ------------------------------------------------------ FilterLogEvents */

typedef struct fevent {
	int64_t ts;
	size_t si, off, len;
} fevent;

static int fevent_cmp(const void *a, const void *b)
{
	const fevent *x = a, *y = b;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	if (x->si != y->si)
		return x->si < y->si ? -1 : 1;
	return x->off < y->off ? -1 : x->off > y->off;
}

typedef struct ftoken {
	bool set;
	int64_t ts;
	size_t off;
	const char *stream;
} ftoken;

static int ftoken_parse(const char *s, ftoken *t)
{
	char *end = NULL;
	if (!s || !*s || *s < '0' || *s > '9')
		return -1;
	long long ts = strtoll(s, &end, 10);
	if (*end != '/' || end[1] < '0' || end[1] > '9')
		return -1;
	unsigned long long off = strtoull(end + 1, &end, 10);
	if (*end != '/' || !end[1])
		return -1;
	*t = (ftoken){true, ts, (size_t)off, end + 1};
	return 0;
}

/* Is event e (of stream name) after the token's event? */
static bool after_token(const ftoken *t, const fevent *e, const char *name)
{
	if (!t->set || e->ts != t->ts)
		return !t->set || e->ts > t->ts;
	int c = strcmp(name, t->stream);
	return c != 0 ? c > 0 : e->off > t->off;
}

static uint64_t name_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static json_t *fevent_json(const lstreams *ls, const fevent *e)
{
	const lstream *s = &ls->s[e->si];
	char id[64];
	snprintf(id, sizeof(id), "%020llu%036zu", (unsigned long long)name_hash(s->name), e->off);
	json_t *j = json_object();
	json_object_set_new(j, "logStreamName", json_string(s->name));
	json_object_set_new(j, "timestamp", json_integer(e->ts));
	json_object_set_new(j, "message", store_logs_message(s->map + e->off, e->len));
	json_object_set_new(j, "ingestionTime", json_integer(e->ts));
	json_object_set_new(j, "eventId", json_string(id));
	return j;
}

/* A slack for the stream's bounds: its first lines carry the build's start
 * time, its agent lines the runner's clock. */
#define STREAM_SLACK_MS 60000

/* False when the stream has no event in [t0, t1] for sure (a finished
 * build ended before t0, or a build started after t1): not read at all,
 * so a tail --since 10m of a group with thousands of builds reads only the
 * recent ones. */
static bool stream_in_window(const lstream *s, int64_t t0, int64_t t1)
{
	if (s->complete && s->end_ms > 0 && t0 != INT64_MIN && s->end_ms < t0 - STREAM_SLACK_MS)
		return false;
	return t1 == INT64_MAX || s->start_ms <= t1 + STREAM_SLACK_MS;
}

/* The matching events of every stream after the token, in [t0, t1]. */
static int collect(lstreams *ls, const fpattern *p, const ftoken *tok, int64_t t0, int64_t t1,
		   fevent **out, size_t *nout, cbl_error **err)
{
	size_t cap = 0;
	for (size_t si = 0; si < ls->n; si++) {
		lstream *s = &ls->s[si];
		if (!stream_in_window(s, t0, t1))
			continue;
		int rc = lstream_map(s, err);
		if (rc)
			return rc;
		store_log_event *ev = NULL;
		size_t nev = 0;
		store_logs_scan(s->map, s->map_len, s->complete, s->start_ms, t0,
				t1 == INT64_MAX ? t1 : t1 + 1, &ev, &nev);
		for (size_t i = 0; i < nev; i++) {
			fevent e = {ev[i].ts, si, ev[i].off, ev[i].len};
			if (!after_token(tok, &e, s->name) || !fpattern_match(p, s->map + e.off, e.len))
				continue;
			CBL_GROW(*out, *nout + 1, cap);
			(*out)[(*nout)++] = e;
		}
		free(ev);
	}
	if (*nout)
		qsort(*out, *nout, sizeof(**out), fevent_cmp);
	return 0;
}

static const char *const order_by_enum[] = {"LogStreamName", "LastEventTime", NULL};

static const store_field fle_f[] = {
	{"logGroupName", SF_STR, .min = 1, .max = 512, .pattern = store_logs_group_ok,
	 .pattern_text = "[\\.\\-_/#A-Za-z0-9]+"},
	{"logGroupIdentifier", SF_STR, .min = 1, .max = 2048},
	{"logStreamNames", SF_LIST_STR, .min = 1, .max = 100},
	{"logStreamNamePrefix", SF_STR, .min = 1, .max = 512, .pattern = store_logs_stream_ok,
	 .pattern_text = "[^:*]*"},
	{"startTime", SF_INT, .min = 0},
	{"endTime", SF_INT, .min = 0},
	{"filterPattern", SF_STR, .min = 0, .max = 1024},
	{"nextToken", SF_STR, .min = 1},
	{"limit", SF_INT, .min = 1, .max = FLE_MAX_EVENTS},
	{"interleaved", SF_BOOL},
	{"unmask", SF_BOOL},
};
static const store_shape fle_s = {fle_f, ARRAY_SIZE(fle_f)};

static int64_t opt_int(const json_t *in, const char *key, int64_t dflt)
{
	const json_t *j = json_object_get(in, key);
	return j ? (int64_t)json_integer_value(j) : dflt;
}

int store_op_filter_log_events(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	store_verr v = STORE_VERR_INIT;
	json_t *in = NULL;
	char *group = NULL;
	fpattern pat = {0};
	lstreams ls = {0};
	fevent *ev = NULL;
	size_t nev = 0;
	ftoken tok = {0};
	store_shape_check(&fle_s, "", req, &in, &v);
	int rc = store_verr_finish(&v, err);
	if (!rc)
		rc = store_logs_request_group(in, &group, err);
	if (rc)
		goto out;
	const json_t *names = json_object_get(in, "logStreamNames");
	const char *prefix = cbl_json_str(in, "logStreamNamePrefix");
	if (names && prefix) {
		rc = cbl_error_set(err, CBL_EINVAL, "logStreamNames and logStreamNamePrefix are mutually "
						    "exclusive parameters.");
		goto out;
	}
	const char *t = cbl_json_str(in, "nextToken");
	if (t && ftoken_parse(t, &tok) < 0) {
		rc = cbl_error_set(err, CBL_EINVAL, "The specified nextToken is invalid.");
		goto out;
	}
	rc = fpattern_parse(cbl_json_str_or_empty(in, "filterPattern"), &pat, err);
	if (!rc)
		rc = load_streams(h, group, prefix, names, &ls, err);
	if (!rc)
		rc = collect(&ls, &pat, &tok, opt_int(in, "startTime", INT64_MIN),
			     opt_int(in, "endTime", INT64_MAX), &ev, &nev, err);
	if (rc)
		goto out;
	size_t limit = (size_t)opt_int(in, "limit", FLE_MAX_EVENTS), bytes = 0, n = 0;
	json_t *events = json_array();
	for (; n < nev && n < limit; n++) {
		if (bytes + ev[n].len + FLE_EVENT_OVERHEAD > FLE_MAX_BYTES && n > 0)
			break;
		bytes += ev[n].len + FLE_EVENT_OVERHEAD;
		json_array_append_new(events, fevent_json(&ls, &ev[n]));
	}
	*out = json_object();
	json_object_set_new(*out, "events", events);
	json_object_set_new(*out, "searchedLogStreams", json_array());
	if (n < nev) {
		const fevent *last = &ev[n - 1];
		json_object_set_new(*out, "nextToken",
				    json_sprintf("%lld/%zu/%s", (long long)last->ts, last->off,
						 ls.s[last->si].name));
	}
out:
	free(ev);
	lstreams_release(&ls);
	fpattern_release(&pat);
	free(group);
	json_decref(in);
	return rc;
}

/* ----------------------------------------------------- describe paging */

/* "<n>" tokens: the index of the next item of a listing. */
static int index_token(const json_t *in, size_t *pos, cbl_error **err)
{
	const char *t = cbl_json_str(in, "nextToken");
	*pos = 0;
	if (!t)
		return 0;
	char *end = NULL;
	unsigned long long v = strtoull(t, &end, 10);
	if (*t < '0' || *t > '9' || *end || v > 100000000)
		return cbl_error_set(err, CBL_EINVAL, "The specified nextToken is invalid.");
	*pos = (size_t)v;
	return 0;
}

/* ---------------------------------------------------- DescribeLogStreams */

typedef struct sinfo {
	size_t si;
	int64_t first, last; /* -1: no event yet */
} sinfo;

/* The times of a stream's first and last events. */
static int stream_times(lstream *s, sinfo *info, cbl_error **err)
{
	int rc = lstream_map(s, err);
	if (rc)
		return rc;
	info->first = info->last = -1;
	size_t end = s->map_len;
	if (!s->complete) /* an unfinished last line is no event yet */
		while (end > 0 && s->map[end - 1] != '\n')
			end--;
	if (!end)
		return 0;
	const char *nl = memchr(s->map, '\n', end);
	size_t l0 = nl ? (size_t)(nl - s->map) : end;
	int64_t t = store_logs_agent_time(s->map, l0);
	info->first = t >= 0 ? t : s->start_ms;
	/* the last event has the time of the last agent line */
	info->last = s->start_ms;
	for (size_t stop = end; stop > 0;) {
		size_t e = s->map[stop - 1] == '\n' ? stop - 1 : stop, b = e;
		while (b > 0 && s->map[b - 1] != '\n')
			b--;
		t = store_logs_agent_time(s->map + b, e - b);
		if (t >= 0) {
			info->last = t;
			break;
		}
		stop = b;
	}
	return 0;
}

static const store_field dls_f[] = {
	{"logGroupName", SF_STR, .min = 1, .max = 512, .pattern = store_logs_group_ok,
	 .pattern_text = "[\\.\\-_/#A-Za-z0-9]+"},
	{"logGroupIdentifier", SF_STR, .min = 1, .max = 2048},
	{"logStreamNamePrefix", SF_STR, .min = 1, .max = 512, .pattern = store_logs_stream_ok,
	 .pattern_text = "[^:*]*"},
	{"orderBy", SF_STR, .enumv = order_by_enum},
	{"descending", SF_BOOL},
	{"nextToken", SF_STR, .min = 1},
	{"limit", SF_INT, .min = 1, .max = DESCRIBE_MAX},
};
static const store_shape dls_s = {dls_f, ARRAY_SIZE(dls_f)};

static int sinfo_by_name(const void *a, const void *b)
{
	const sinfo *x = a, *y = b;
	return x->si < y->si ? -1 : x->si > y->si;
}

static int sinfo_by_time(const void *a, const void *b)
{
	const sinfo *x = a, *y = b;
	if (x->last != y->last)
		return x->last < y->last ? -1 : 1;
	return sinfo_by_name(a, b);
}

static json_t *stream_json(const lstream *s, const sinfo *info, const char *group)
{
	json_t *j = json_object();
	char *garn = log_arn(s->arn, group);
	json_object_set_new(j, "logStreamName", json_string(s->name));
	json_object_set_new(j, "creationTime", json_integer(s->created_ms));
	if (info->first >= 0) {
		json_object_set_new(j, "firstEventTimestamp", json_integer(info->first));
		json_object_set_new(j, "lastEventTimestamp", json_integer(info->last));
		json_object_set_new(j, "lastIngestionTime", json_integer(info->last));
	}
	json_object_set_new(j, "arn", json_sprintf("%s:log-stream:%s", garn, s->name));
	json_object_set_new(j, "storedBytes", json_integer(0));
	free(garn);
	return j;
}

int store_op_describe_log_streams(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	store_verr v = STORE_VERR_INIT;
	json_t *in = NULL;
	char *group = NULL;
	lstreams ls = {0};
	sinfo *info = NULL;
	size_t pos = 0;
	store_shape_check(&dls_s, "", req, &in, &v);
	int rc = store_verr_finish(&v, err);
	if (!rc)
		rc = store_logs_request_group(in, &group, err);
	if (!rc)
		rc = index_token(in, &pos, err);
	if (rc)
		goto out;
	const char *prefix = cbl_json_str(in, "logStreamNamePrefix");
	bool by_time = !strcmp(cbl_json_str_or_empty(in, "orderBy"), "LastEventTime");
	if (by_time && prefix) {
		rc = cbl_error_set(err, CBL_EINVAL, "Cannot order by LastEventTime with a logStreamNamePrefix.");
		goto out;
	}
	rc = load_streams(h, group, prefix, NULL, &ls, err);
	if (rc)
		goto out;
	/* the event times need the log files: all of them to order by time,
	 * else only the page's */
	info = cbl_xcalloc(ls.n ? ls.n : 1, sizeof(*info));
	for (size_t i = 0; i < ls.n && !rc; i++) {
		info[i] = (sinfo){.si = i, .first = -2};
		if (by_time)
			rc = stream_times(&ls.s[i], &info[i], err);
	}
	if (rc)
		goto out;
	if (ls.n > 1)
		qsort(info, ls.n, sizeof(*info), by_time ? sinfo_by_time : sinfo_by_name);
	bool desc = json_is_true(json_object_get(in, "descending"));
	size_t limit = (size_t)opt_int(in, "limit", DESCRIBE_MAX);
	json_t *arr = json_array();
	size_t i = pos;
	for (; i < ls.n && i - pos < limit && !rc; i++) {
		sinfo *x = &info[desc ? ls.n - 1 - i : i];
		if (x->first == -2)
			rc = stream_times(&ls.s[x->si], x, err);
		if (!rc)
			json_array_append_new(arr, stream_json(&ls.s[x->si], x, group));
	}
	if (rc) {
		json_decref(arr);
		goto out;
	}
	*out = json_object();
	json_object_set_new(*out, "logStreams", arr);
	if (i < ls.n)
		json_object_set_new(*out, "nextToken", json_sprintf("%zu", i));
out:
	free(info);
	lstreams_release(&ls);
	free(group);
	json_decref(in);
	return rc;
}

/* ----------------------------------------------------- DescribeLogGroups */

static const char *const log_group_class_enum[] = {"STANDARD", "INFREQUENT_ACCESS", "DELIVERY", NULL};

static const store_field dlg_f[] = {
	{"accountIdentifiers", SF_LIST_STR, .max = 20},
	{"logGroupNamePrefix", SF_STR, .min = 1, .max = 512, .pattern = store_logs_group_ok,
	 .pattern_text = "[\\.\\-_/#A-Za-z0-9]+"},
	{"logGroupNamePattern", SF_STR, .min = 0, .max = 512},
	{"nextToken", SF_STR, .min = 1},
	{"limit", SF_INT, .min = 1, .max = DESCRIBE_MAX},
	{"includeLinkedAccounts", SF_BOOL},
	{"logGroupClass", SF_STR, .enumv = log_group_class_enum},
	{"logGroupIdentifiers", SF_LIST_STR, .min = 1, .max = 50},
};
static const store_shape dlg_s = {dlg_f, ARRAY_SIZE(dlg_f)};

static json_t *group_json(sqlite3_stmt *st, bool pattern)
{
	const char *name = (const char *)sqlite3_column_text(st, 0);
	char *garn = log_arn((const char *)sqlite3_column_text(st, 2), name);
	json_t *j = json_object();
	json_object_set_new(j, "logGroupName", json_string(name));
	json_object_set_new(j, "creationTime", json_integer(sqlite3_column_int64(st, 1)));
	if (!pattern)
		json_object_set_new(j, "metricFilterCount", json_integer(0));
	json_object_set_new(j, "arn", json_sprintf("%s:*", garn));
	if (!pattern) {
		json_object_set_new(j, "storedBytes", json_integer(0));
		json_object_set_new(j, "logGroupClass", json_string("STANDARD"));
		json_object_set_new(j, "logGroupArn", json_string(garn));
	}
	free(garn);
	return j;
}

int store_op_describe_log_groups(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	store_verr v = STORE_VERR_INIT;
	json_t *in = NULL;
	sqlite3_stmt *st = NULL;
	size_t pos = 0;
	store_shape_check(&dlg_s, "", req, &in, &v);
	int rc = store_verr_finish(&v, err);
	if (!rc)
		rc = index_token(in, &pos, err);
	if (rc)
		goto out;
	const char *prefix = cbl_json_str(in, "logGroupNamePrefix");
	const char *pattern = cbl_json_str(in, "logGroupNamePattern");
	const json_t *ids = json_object_get(in, "logGroupIdentifiers");
	const char *cls = cbl_json_str(in, "logGroupClass");
	if (prefix && pattern) {
		rc = cbl_error_set(err, CBL_EINVAL, "LogGroupNamePrefix and LogGroupNamePattern are mutually "
						    "exclusive parameters.");
		goto out;
	}
	rc = store_prepare(h->db,
			   "SELECT s.group_name, MIN(s.created_ms), MIN(json_extract(b.record, '$.arn'))"
			   " FROM log_streams s LEFT JOIN builds b ON b.id = s.build_id"
			   " WHERE substr(s.group_name, 1, length(?1)) = ?1 AND instr(s.group_name, ?2) > 0"
			   " GROUP BY s.group_name ORDER BY s.group_name",
			   &st, err);
	if (rc)
		goto out;
	sqlite3_bind_text(st, 1, prefix ? prefix : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, pattern ? pattern : "", -1, SQLITE_STATIC);
	size_t limit = (size_t)opt_int(in, "limit", DESCRIBE_MAX), seen = 0;
	json_t *arr = json_array();
	int s;
	bool more = false;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		if ((ids && !in_names(ids, name)) || (cls && strcmp(cls, "STANDARD")))
			continue;
		if (seen++ < pos)
			continue;
		if (json_array_size(arr) == limit) {
			more = true;
			break;
		}
		json_array_append_new(arr, group_json(st, pattern != NULL));
	}
	if (s != SQLITE_ROW && s != SQLITE_DONE) {
		json_decref(arr);
		rc = store_sql_error(h->db, err, "cannot read the log groups");
		goto out;
	}
	*out = json_object();
	json_object_set_new(*out, "logGroups", arr);
	if (more)
		json_object_set_new(*out, "nextToken", json_sprintf("%zu", pos + limit));
out:
	sqlite3_finalize(st);
	json_decref(in);
	return rc;
}
