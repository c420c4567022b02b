/* cli/cmd_start_build.c - `start-build`, `stop-build`, `retry-build`: the
 * AWS CLI's flags and output, through the launcher (runner/launch.h) as
 * the HTTP server does it.  start-build returns once the build's runner has
 * written its first record; the build goes on in the background. */
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "store/api.h"
#include "runner/launch.h"
#include "util/array.h"

#include <errno.h>
#include <stdlib.h>

#include "util/banned.h"


/* One launcher per command: builds run as `codebuild-local run` processes of
 * this same binary, detached, so the command can return at once. */
static int launch(const char *home, const char *target, json_t *req, json_t **out, cbl_error **err)
{
	char *exe = realpath("/proc/self/exe", NULL);
	if (!exe)
		return cbl_error_set_errno(err, CBL_EIO, errno, "cannot find this program");
	runner_launcher_opts lo = {.home = home, .exe = exe};
	runner_launcher *l = NULL;
	int rc = runner_launcher_new(&l, &lo, err);
	if (rc == 0)
		rc = runner_launcher_dispatch(l, target, req, out, err);
	runner_launcher_free(l);
	free(exe);
	return rc;
}

static const cli_api_arg start_args[] = {
	{"project-name", "projectName", CA_STR, "the project, required"},
	{"source-version", "sourceVersion", CA_STR, "git: branch, tag, commit, pr/N, branch^{SHA}"},
	{"environment-variables-override", "environmentVariablesOverride", CA_LIST_STRUCT,
	 "name=N,value=V,type=PLAINTEXT ... (beat the project's and the buildspec's)"},
	{"buildspec-override", "buildspecOverride", CA_STR, "a buildspec path in the source, or inline YAML"},
	{"timeout-in-minutes-override", "timeoutInMinutesOverride", CA_INT, "5 to 2160"},
	{"image-override", "imageOverride", CA_STR, "build image"},
	{"compute-type-override", "computeTypeOverride", CA_STR, "BUILD_GENERAL1_SMALL, ..."},
	{"git-clone-depth-override", "gitCloneDepthOverride", CA_INT, "0 = full history"},
	{"privileged-mode-override", "privilegedModeOverride", CA_BOOL,
	 "the build's root keeps every capability, no seccomp filter (docker-in-docker)"},
	{"source-type-override", "sourceTypeOverride", CA_STR, "GITHUB, ..., NO_SOURCE"},
	{"source-location-override", "sourceLocationOverride", CA_STR, "git URL or file:// directory"},
	{"secondary-sources-version-override", "secondarySourcesVersionOverride", CA_LIST_STRUCT,
	 "sourceIdentifier=ID,sourceVersion=V ..."},
	{"idempotency-token", "idempotencyToken", CA_STR, "accepted, not used"},
};
static const cli_api_cmd start_cmd = {
	"start-build", STORE_TARGET_CODEBUILD "StartBuild",
	"Starts a build of a project (aws codebuild start-build) and prints {\"build\": {...}}\n"
	"as soon as the build is under way; it runs on in the background (follow it with\n"
	"batch-get-builds or logs get-log-events).",
	start_args, ARRAY_SIZE(start_args), NULL, launch,
};

static const cli_api_arg id_args[] = {
	{"id", "id", CA_STR, "build id <project>:<uuid> (or its ARN), required"},
	{"idempotency-token", "idempotencyToken", CA_STR, "accepted, not used"},
};
static const cli_api_cmd stop_cmd = {
	"stop-build", STORE_TARGET_CODEBUILD "StopBuild",
	"Stops a running build (aws codebuild stop-build): every process of the build ends\n"
	"and it is recorded STOPPED; prints {\"build\": {...}}.",
	id_args, 1, NULL, launch,
};
static const cli_api_cmd retry_cmd = {
	"retry-build", STORE_TARGET_CODEBUILD "RetryBuild",
	"Starts a new build with the settings of a build that start-build started\n"
	"(aws codebuild retry-build); prints {\"build\": {...}} of the new build.",
	id_args, ARRAY_SIZE(id_args), NULL, launch,
};

int cmd_start_build(int argc, char **argv) { return cli_api_run(&start_cmd, argc, argv); }
int cmd_stop_build(int argc, char **argv) { return cli_api_run(&stop_cmd, argc, argv); }
int cmd_retry_build(int argc, char **argv) { return cli_api_run(&retry_cmd, argc, argv); }
