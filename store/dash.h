/* store/dash.h - the read models of the dashboard (server/dashboard.c):
 * project summaries, a project's builds a page at a time, duration trends
 * and a build's log read from a byte offset.  Plain SQL over the builds
 * table (no API shapes): every list is keyset-paged, so the 100th page of
 * a project with 10,000 builds costs what the first does.
 *
 * Thread safety: like the rest of the store, any thread. */
#ifndef STORE_DASH_H
#define STORE_DASH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/error.h"

/* Every project (stored or seen in a build), by name: *out = [{"name",
 * "builds" (count), "lastStatus" (null when none), "lastId", "lastNumber",
 * "successRate" (0..100 over its last 100 complete builds, null if none),
 * "medianMs" (of those builds' durations, null if none)}]. */
int store_dash_projects(const char *home, json_t **out, cbl_error **err);

/* One page of a project's builds, newest first: at most limit (1..500)
 * builds numbered below `before` (0 = from the newest), of one status
 * (NULL = any; else a StatusType).  *out = {"builds": [{"id", "number",
 * "status", "complete", "sourceVersion", "initiator", "startMs",
 * "durationMs" (null while running)}], "next": number to pass as before for
 * the next page, or null}.  CBL_EINVAL for a bad status or limit. */
int store_dash_builds(const char *home, const char *project, const char *status, int64_t before,
		      int limit, json_t **out, cbl_error **err);

/* The last `limit` complete builds of a project, oldest first:
 * *out = [{"number", "startMs", "durationMs", "status"}]. */
int store_dash_trend(const char *home, const char *project, int limit, json_t **out,
		     cbl_error **err);

/* Appends to out the whole lines of a build's log (the GetLogEvents
 * stream) from byte `offset`, at most max bytes of them (a longer line
 * comes whole); the last unfinished line too once the build is complete.
 * *complete = whether the build was complete before the read (so an empty
 * read of a complete build is the end of the stream).  A build without a
 * log yet reads as empty.  CBL_ENOENT for an unknown build. */
int store_dash_log_read(const char *home, const char *build_id, int64_t offset, size_t max,
			cbl_buf *out, bool *complete, cbl_error **err);

/* The build's "codebuildLocal" object (resource use, per phase, cost,
 * right-sizing advice) from its build.json: the database's copy is the
 * API's, without it.  *out NULL when the record has none (yet); CBL_ENOENT
 * for an unknown build, CBL_EIO when build.json cannot be read. */
int store_dash_build_local(const char *home, const char *build_id, json_t **out, cbl_error **err);

#endif
