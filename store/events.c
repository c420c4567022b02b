/* store/events.c - the durable outbox: the EventBridge events of the
 * builds ("CodeBuild Build State Change", "CodeBuild Build Phase Change",
 * in their documented shape) and the alarms' notifications, written in the
 * transaction that saves what they report, delivered in order by `serve`
 * (server/events.c) and deleted once delivered: none is lost to a
 * restart.  The builds' events are queued from the first
 * serve --events-webhook on (store_events_enable); without a consumer the
 * outbox keeps the newest STORE_OUTBOX_MAX. */
#include "store/store.h"
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/time.h"

#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

#define STORE_OUTBOX_MAX 10000

static const char sql_outbox_ins[] =
	"INSERT INTO event_outbox(dest, created_ms, body, next_ms) VALUES(?1, ?2, ?3, 0)";
static const char sql_outbox_trim[] = "DELETE FROM event_outbox WHERE seq <= ?1 - " "10000";

int store_db_outbox_put(store_db *h, const char *dest, json_t *body, cbl_error **err)
{
	char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	sqlite3_stmt *st = NULL;
	int rc = store_stmt(h, sql_outbox_ins, &st, err);
	if (!rc) {
		sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, cbl_now_us() / 1000);
		sqlite3_bind_text(st, 3, text ? text : "{}", -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = store_sql_error(h->db, err, "cannot queue an event");
	}
	store_stmt_done(st);
	free(text);
	sqlite3_int64 seq = sqlite3_last_insert_rowid(h->db);
	if (!rc && seq % 100 == 0 && seq > STORE_OUTBOX_MAX) {
		rc = store_stmt(h, sql_outbox_trim, &st, err);
		if (!rc) {
			sqlite3_bind_int64(st, 1, seq);
			sqlite3_step(st);
		}
		store_stmt_done(st);
	}
	return rc;
}

/* The envelope EventBridge puts around a CodeBuild event. */
static json_t *envelope(const json_t *rec, const char *type, json_t *detail)
{
	const char *arn = cbl_json_str_or_empty(rec, "arn");
	char region[64] = "us-east-1", account[32] = "000000000000";
	/* arn:aws:codebuild:<region>:<account>:build/... */
	const char *p = arn, *f[5] = {0};
	for (int i = 0; i < 5 && p; i++) {
		p = strchr(p, ':');
		f[i] = p ? ++p : NULL;
	}
	if (f[2] && f[3] && f[4]) {
		snprintf(region, sizeof(region), "%.*s", (int)(f[3] - f[2] - 1), f[2]);
		snprintf(account, sizeof(account), "%.*s", (int)(f[4] - f[3] - 1), f[3]);
	}
	char id[37], now[32];
	cbl_uuid4(id);
	cbl_format_iso_time(now, cbl_now_us());
	now[19] = 'Z'; /* EventBridge's times have no fraction */
	now[20] = 0;
	json_t *e = json_object();
	json_object_set_new(e, "version", json_string("0"));
	json_object_set_new(e, "id", json_string(id));
	json_object_set_new(e, "detail-type", json_string(type));
	json_object_set_new(e, "source", json_string("aws.codebuild"));
	json_object_set_new(e, "account", json_string(account));
	json_object_set_new(e, "time", json_string(now));
	json_object_set_new(e, "region", json_string(region));
	json_t *res = json_array();
	json_array_append_new(res, json_string(arn));
	json_object_set_new(e, "resources", res);
	json_object_set_new(e, "detail", detail);
	return e;
}

/* "additional-information": the record's fields the service copies there. */
static json_t *additional(const json_t *rec)
{
	json_t *a = json_object();
	static const char *const keys[] = {"artifact", "environment", "timeout-in-minutes", "build-complete",
					   "initiator", "build-start-time", "source", "source-version",
					   "logs", "phases"};
	static const char *const from[] = {"artifacts", "environment", "timeoutInMinutes", "buildComplete",
					   "initiator", "startTime", "source", "sourceVersion",
					   "logs", "phases"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(rec, from[i]);
		if (v)
			json_object_set(a, keys[i], v);
	}
	return a;
}

static json_t *state_detail(const json_t *rec)
{
	json_t *d = json_object();
	json_object_set_new(d, "build-status", json_string(cbl_json_str_or_empty(rec, "buildStatus")));
	json_object_set_new(d, "project-name", json_string(cbl_json_str_or_empty(rec, "projectName")));
	json_object_set_new(d, "build-id", json_string(cbl_json_str_or_empty(rec, "arn")));
	json_object_set_new(d, "additional-information", additional(rec));
	json_object_set_new(d, "current-phase", json_string(cbl_json_str_or_empty(rec, "currentPhase")));
	json_object_set_new(d, "current-phase-context", json_string("[]"));
	json_object_set_new(d, "version", json_string("1"));
	return d;
}

static json_t *phase_detail(const json_t *rec, const json_t *ph)
{
	json_t *d = json_object();
	char t[32];
	json_object_set_new(d, "completed-phase", json_string(cbl_json_str_or_empty(ph, "phaseType")));
	json_object_set_new(d, "project-name", json_string(cbl_json_str_or_empty(rec, "projectName")));
	json_object_set_new(d, "build-id", json_string(cbl_json_str_or_empty(rec, "arn")));
	json_t *ctx = json_object_get(ph, "contexts");
	char *ctxs = ctx ? json_dumps(ctx, JSON_COMPACT) : NULL;
	json_object_set_new(d, "completed-phase-context", json_string(ctxs ? ctxs : "[]"));
	free(ctxs);
	json_object_set_new(d, "additional-information", additional(rec));
	json_object_set_new(d, "completed-phase-status",
			    json_string(cbl_json_str(ph, "phaseStatus") ? cbl_json_str(ph, "phaseStatus") : "SUCCEEDED"));
	json_object_set_new(d, "completed-phase-duration-seconds",
			    json_integer(json_integer_value(json_object_get(ph, "durationInSeconds"))));
	json_object_set_new(d, "version", json_string("1"));
	cbl_format_iso_time(t, store_json_time_ms(json_object_get(ph, "startTime")) * 1000);
	json_object_set_new(d, "completed-phase-start", json_string(t));
	cbl_format_iso_time(t, store_json_time_ms(json_object_get(ph, "endTime")) * 1000);
	json_object_set_new(d, "completed-phase-end", json_string(t));
	return d;
}

static size_t ended_phases(const json_t *rec)
{
	size_t n = 0, i;
	json_t *ph;
	json_array_foreach(json_object_get(rec, "phases"), i, ph)
	if (json_object_get(ph, "endTime"))
		n++;
	return n;
}

static int state_event(store_db *h, const json_t *rec, cbl_error **err)
{
	json_t *e = envelope(rec, "CodeBuild Build State Change", state_detail(rec));
	int rc = store_db_outbox_put(h, "events", e, err);
	json_decref(e);
	return rc;
}

static const char sql_events_on[] = "SELECT 1 FROM settings WHERE key = 'events' AND value = '1'";

int store_db_events_build(store_db *h, const json_t *old, const json_t *rec, cbl_error **err)
{
	/* nothing queued for a store no webhook was ever set for */
	sqlite3_stmt *on = NULL;
	bool enabled = store_stmt(h, sql_events_on, &on, NULL) == 0 && sqlite3_step(on) == SQLITE_ROW;
	store_stmt_done(on);
	if (!enabled)
		return 0;
	/* the service tells of a build's start and of its end: its status
	 * while it runs (FAILED from a failed phase on) waits for the end */
	bool done = json_is_true(json_object_get(rec, "buildComplete"));
	bool changed = !old || (done && !json_is_true(json_object_get(old, "buildComplete")));
	/* a new build's state first; an end's after its last phases */
	int rc = !old && changed ? state_event(h, rec, err) : 0;
	size_t from = old ? ended_phases(old) : 0, i;
	json_t *ph;
	/* the phases that ended since the last save, in order */
	json_array_foreach(json_object_get(rec, "phases"), i, ph)
	{
		if (rc || !json_object_get(ph, "endTime"))
			continue;
		if (from) {
			from--;
			continue;
		}
		json_t *e = envelope(rec, "CodeBuild Build Phase Change", phase_detail(rec, ph));
		rc = store_db_outbox_put(h, "events", e, err);
		json_decref(e);
	}
	if (!rc && old && changed)
		rc = state_event(h, rec, err);
	return rc;
}
