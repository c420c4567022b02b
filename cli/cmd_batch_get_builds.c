/* cli/cmd_batch_get_builds.c - `codebuild-local batch-get-builds --ids ID...`,
 * printing what `aws codebuild batch-get-builds` prints. */
#include "cli/cli.h"
#include "store/store.h"

#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static const char bgb_usage[] =
	"usage: codebuild-local batch-get-builds --ids ID [ID...]\n"
	"\n"
	"Prints {\"builds\": [...], \"buildsNotFound\": [...]} like `aws codebuild\n"
	"batch-get-builds`; each build is the record of the CodeBuild API's Build shape.\n"
	"IDs are <project>:<uuid>, as `run` prints them.\n";

int cmd_batch_get_builds(int argc, char **argv)
{
	json_t *builds = json_array(), *missing = json_array();
	char *home = store_default_home();
	int rc = CLI_EXIT_USAGE, nids = 0;
	bool in_ids = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(bgb_usage, stdout);
			rc = CLI_EXIT_OK;
			goto out;
		}
		if (!strcmp(argv[i], "--ids")) {
			in_ids = true;
			continue;
		}
		if (!strncmp(argv[i], "--ids=", 6) || (in_ids && argv[i][0] != '-')) {
			const char *id = !strncmp(argv[i], "--ids=", 6) ? argv[i] + 6 : argv[i];
			json_t *rec = NULL;
			cbl_error *err = NULL;
			nids++;
			if (store_build_load(home, id, &rec, &err) == 0) {
				json_array_append_new(builds, rec);
			} else {
				if (err->code != CBL_ENOENT)
					cli_report(err);
				json_array_append_new(missing, json_string(id));
			}
			cbl_error_free(err);
			continue;
		}
		cli_error("unexpected argument '%s'", argv[i]);
		fputs(bgb_usage, stderr);
		goto out;
	}
	if (!nids) {
		cli_error("--ids needs at least one build id");
		fputs(bgb_usage, stderr);
		goto out;
	}
	json_t *outj = json_object();
	json_object_set(outj, "builds", builds);
	json_object_set(outj, "buildsNotFound", missing);
	char *s = json_dumps(outj, JSON_INDENT(4) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(outj);
	rc = CLI_EXIT_OK;
out:
	json_decref(builds);
	json_decref(missing);
	free(home);
	return rc;
}
