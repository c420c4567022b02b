/* store/store.h - where builds live on disk, and their records.
 *
 * Layout under the state directory (design.md):
 *   builds/<project>/<uuid>/build.json   the Build record (CodeBuild API shape)
 *   builds/<project>/<uuid>/build.log    the log stream
 *   builds/<project>/.counter            last build number (flock-protected)
 *
 * Records are written atomically (temp file + rename), so a reader never sees
 * a half-written record.  JSON files now; SQLite arrives with the API issue.
 * Thread safety: functions are reentrant; concurrent builds of one project
 * get distinct build numbers through the counter file's lock.
 */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"
#include "util/strv.h"

/* $CODEBUILD_LOCAL_HOME, else ${XDG_DATA_HOME:-$HOME/.local/share}/codebuild-local.
 * Caller frees. */
char *store_default_home(void);

/* True if name is a valid CodeBuild project name: [A-Za-z0-9][A-Za-z0-9_-]{1,254}. */
bool store_project_name_valid(const char *name);
/* Turns a directory base name into a valid project name (caller frees). */
char *store_project_name_from_dir(const char *dir);

/* Allocates the next build number of a project (1, 2, 3, ...). */
int store_next_build_number(const char *home, const char *project, int64_t *out, cbl_error **err);

/* Creates builds/<project>/<uuid>/ and returns its path (caller frees). */
int store_build_dir_create(const char *home, const char *project, const char *uuid, char **out,
			   cbl_error **err);

/* Writes the record atomically into the build's directory; durable = fsync
 * before publishing (the final record). */
int store_build_save(const char *build_dir, json_t *record, bool durable, cbl_error **err);

/* Loads the record of build id "<project>:<uuid>".  CBL_ENOENT if unknown.
 * *out is a new reference. */
int store_build_load(const char *home, const char *build_id, json_t **out, cbl_error **err);

/* Path of a build's log given its id (caller frees), or CBL_ENOENT. */
int store_build_log_path(const char *home, const char *build_id, char **out, cbl_error **err);

#endif
