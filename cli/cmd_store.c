/* cli/cmd_store.c - `codebuild-local store recover`: a new database from
 * the builds' own files when the old one is damaged (store/store.h,
 * store_recover). */
#include "cli/cli.h"
#include "store/store.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static const char store_usage[] =
	"usage: codebuild-local store recover\n"
	"\n"
	"The state directory's database ($CODEBUILD_LOCAL_HOME/codebuild-local.db: projects,\n"
	"build history, log and report indexes).\n"
	"\n"
	"  recover   rebuilds the database when it is damaged (a command says so): the\n"
	"            file (and its -wal, -shm) is moved aside as\n"
	"            codebuild-local.db.damaged-<UTC time>, and a new one is made from\n"
	"            every builds/<project>/<uuid>/build.json (records, logs, exported\n"
	"            variables, reports, build numbers).  Projects come back from the\n"
	"            damaged file when SQLite can still read them, else as the newest\n"
	"            build started through the API recorded them (launch.json), else as\n"
	"            the implicit project of their builds; report groups made with\n"
	"            create-report-group and no build are lost.  Stop `serve` and any\n"
	"            build using the state directory first.\n"
	"\n"
	"Exit status: 0 done, 2 usage, 3 the database could not be rebuilt.\n";

int cmd_store(int argc, char **argv); /* called from cli/main.c */

int cmd_store(int argc, char **argv)
{
	static const struct option opts[] = {
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int opt;
	optind = 1;
	while ((opt = cli_getopt("store", argc, argv, "h", opts)) != -1) {
		if (opt == 'h') {
			fputs(store_usage, stdout);
			return CLI_EXIT_OK;
		}
		return CLI_EXIT_USAGE; /* said in one line by cli_getopt */
	}
	if (optind != argc - 1 || strcmp(argv[optind], "recover")) {
		cli_error(optind >= argc ? "store needs a subcommand: recover"
					 : "unknown store subcommand '%s' (there is: recover)",
			  argv[optind < argc ? optind : 0]);
		fputs(store_usage, stderr);
		return CLI_EXIT_USAGE;
	}
	char *home = store_default_home();
	store_recover_report rep = {0};
	cbl_error *err = NULL;
	int rc = CLI_EXIT_OK;
	if (store_recover(home, &rep, &err) < 0) {
		cli_report_clear(&err);
		rc = CLI_EXIT_FAULT;
	} else {
		if (rep.damaged_path)
			printf("the old database is kept as %s\n", rep.damaged_path);
		printf("recovered %zu build%s and %zu project%s (%zu read back from the old "
		       "database, %zu from a build's launch.json, the others implicit)\n",
		       rep.builds, rep.builds == 1 ? "" : "s", rep.projects,
		       rep.projects == 1 ? "" : "s", rep.projects_salvaged,
		       rep.projects_from_launches);
	}
	store_recover_report_release(&rep);
	free(home);
	return rc;
}
