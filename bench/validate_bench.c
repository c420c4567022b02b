/* bench/validate_bench.c - the cost of the model-driven request validation
 * (store_api_validate) per request, against the one cost every request
 * already pays before it: parsing its JSON body (json_loadb).  Prints one
 * line per request kind: microseconds per validation, per parse, and their
 * ratio.  Run by bench/validate.sh. */
#include "store/api.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const struct {
	const char *name, *target, *body;
} cases[] = {
	{"BatchGetBuilds (10 ids, bench/api.sh's request)", STORE_TARGET_CODEBUILD "BatchGetBuilds",
	 "{\"ids\": [\"p0:0b6d7f0e-1c1a-4d4a-9a54-000000000001\", \"p1:0b6d7f0e-1c1a-4d4a-9a54-000000000002\","
	 " \"p2:0b6d7f0e-1c1a-4d4a-9a54-000000000003\", \"p3:0b6d7f0e-1c1a-4d4a-9a54-000000000004\","
	 " \"p4:0b6d7f0e-1c1a-4d4a-9a54-000000000005\", \"p5:0b6d7f0e-1c1a-4d4a-9a54-000000000006\","
	 " \"p6:0b6d7f0e-1c1a-4d4a-9a54-000000000007\", \"p7:0b6d7f0e-1c1a-4d4a-9a54-000000000008\","
	 " \"p8:0b6d7f0e-1c1a-4d4a-9a54-000000000009\", \"p9:0b6d7f0e-1c1a-4d4a-9a54-000000000010\"]}"},
	{"StartBuild (8 overrides)", STORE_TARGET_CODEBUILD "StartBuild",
	 "{\"projectName\": \"my-project\", \"sourceVersion\": \"main\", \"environmentTypeOverride\": "
	 "\"LINUX_CONTAINER\", \"computeTypeOverride\": \"BUILD_GENERAL1_SMALL\", \"gitCloneDepthOverride\": 1,"
	 " \"timeoutInMinutesOverride\": 30, \"queuedTimeoutInMinutesOverride\": 60, \"environmentVariablesOverride\":"
	 " [{\"name\": \"A\", \"value\": \"1\", \"type\": \"PLAINTEXT\"}, {\"name\": \"B\", \"value\": \"/p\", \"type\":"
	 " \"PARAMETER_STORE\"}], \"logsConfigOverride\": {\"cloudWatchLogs\": {\"status\": \"ENABLED\"}}}"},
	{"CreateProject (full)", STORE_TARGET_CODEBUILD "CreateProject",
	 "{\"name\": \"my-project\", \"description\": \"d\", \"source\": {\"type\": \"GITHUB\", \"location\":"
	 " \"https://git.example.com/o/r.git\", \"gitCloneDepth\": 1, \"buildspec\": \"buildspec.yml\"},"
	 " \"artifacts\": {\"type\": \"NO_ARTIFACTS\"}, \"cache\": {\"type\": \"LOCAL\", \"modes\":"
	 " [\"LOCAL_SOURCE_CACHE\", \"LOCAL_CUSTOM_CACHE\"]}, \"environment\": {\"type\": \"LINUX_CONTAINER\","
	 " \"image\": \"aws/codebuild/standard:7.0\", \"computeType\": \"BUILD_GENERAL1_SMALL\","
	 " \"environmentVariables\": [{\"name\": \"A\", \"value\": \"1\"}]}, \"serviceRole\": \"arn:aws:iam::1:role/r\","
	 " \"timeoutInMinutes\": 60, \"tags\": [{\"key\": \"team\", \"value\": \"web\"}],"
	 " \"logsConfig\": {\"cloudWatchLogs\": {\"status\": \"ENABLED\", \"groupName\": \"g\"}}}"},
};

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		size_t len = strlen(cases[c].body);
		json_t *req = json_loadb(cases[c].body, len, 0, NULL);
		cbl_error *err = NULL;
		if (!req || store_api_validate(cases[c].target, req, &err)) {
			fprintf(stderr, "validate_bench: %s: %s\n", cases[c].name, err ? err->msg : "bad JSON");
			return 1;
		}
		double t0 = now_s();
		for (long i = 0; i < n; i++)
			store_api_validate(cases[c].target, req, NULL);
		double tv = (now_s() - t0) / (double)n * 1e6;
		t0 = now_s();
		for (long i = 0; i < n; i++)
			json_decref(json_loadb(cases[c].body, len, 0, NULL));
		double tp = (now_s() - t0) / (double)n * 1e6;
		printf("%-50s validate %.2f us, parse %.2f us: ratio %.2f\n", cases[c].name, tv, tp, tv / tp);
		json_decref(req);
	}
	return 0;
}
