/* Unit tests for runner/launch.c's one mapping of a Project and a StartBuild
 * request to runner_opts (runner_launch_opts), and its launch.json round
 * trip (runner_launch_save / runner_launch_load). */
#include "tests/unit/tap.h"
#include "runner/launch.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[] = "/tmp/cbl-launch-XXXXXX";

static json_t *parse(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	if (!j)
		printf("# bad test JSON: %s: %s\n", je.text, text);
	return j;
}

/* A project: NO_SOURCE at a directory, unless the test adds to it. */
static json_t *project(const char *extra)
{
	json_t *p = parse("{\"name\": \"demo\","
			  " \"source\": {\"type\": \"NO_SOURCE\", \"location\": \"file:///src/demo\"},"
			  " \"artifacts\": {\"type\": \"NO_ARTIFACTS\"},"
			  " \"environment\": {\"type\": \"LINUX_CONTAINER\", \"image\": \"host\","
			  "   \"computeType\": \"BUILD_GENERAL1_SMALL\", \"environmentVariables\": []},"
			  " \"timeoutInMinutes\": 60}");
	if (extra) {
		json_t *x = parse(extra);
		json_object_update(p, x);
		json_decref(x);
	}
	return p;
}

typedef struct mapped {
	runner_opts o;
	runner_launch_mem mem;
	cbl_error *err;
	int rc;
} mapped;

static void map(mapped *m, const char *proj_extra, const char *request)
{
	json_t *proj = project(proj_extra), *req = request ? parse(request) : NULL;
	runner_launch_info info = {.dir = g_dir, .home = "/state", .region = "eu-west-1",
				   .uuid = "0123abcd-0000-4000-8000-000000000000", .number = 7};
	m->mem = (runner_launch_mem)RUNNER_LAUNCH_MEM_INIT;
	m->err = NULL;
	m->rc = runner_launch_opts(&m->o, &m->mem, proj, req, &info, &m->err);
	/* the options borrow from the JSON: keep it as long as the memory */
	json_t *keepj = json_pack("[oo]", proj, req ? req : json_null());
	m->mem.doc = keepj;
}

static void unmap(mapped *m)
{
	runner_launch_mem_release(&m->mem);
	cbl_error_free(m->err);
}

/* Expects the mapping to fail with CBL_EINVAL and a message holding want. */
static void fails(const char *proj_extra, const char *request, const char *want, const char *what)
{
	mapped m;
	map(&m, proj_extra, request);
	ok(m.rc == CBL_EINVAL && m.err && strstr(m.err->msg, want), "%s: InvalidInput '%s'", what, want);
	if (m.err && !strstr(m.err->msg, want))
		printf("#   message: %s\n", m.err->msg);
	unmap(&m);
}

static const char *env_at(const char *const *v, size_t i)
{
	for (size_t k = 0; v && v[k]; k++)
		if (k == i)
			return v[k];
	return NULL;
}

static void test_defaults(void)
{
	mapped m;
	map(&m, NULL, NULL);
	is_int(m.rc, 0, "a NO_SOURCE project at a directory maps");
	is_str(m.o.source_dir, "/src/demo", "file:// location: a directory");
	ok(!m.o.git_url && !m.o.buildspec, "no git URL, the source's buildspec.yml");
	is_str(m.o.project_name, "demo", "project name");
	is_str(m.o.image, "host", "image");
	is_str(m.o.compute_type, "BUILD_GENERAL1_SMALL", "compute type");
	is_int(m.o.timeout_ms, 60 * 60000, "timeoutInMinutes");
	is_int(m.o.clone_depth, 0, "no clone depth without git");
	ok(m.o.no_buildspec_cache && !m.o.source_cache && !m.o.no_cache, "no cache by default: NO_CACHE");
	ok(!m.o.packaging_none, "ZIP packaging by default");
	ok(!m.o.env_overrides && !m.o.project_env, "no variables");
	is_str(m.o.region, "eu-west-1", "region from the launcher");
	is_str(m.o.home, "/state", "state directory from the launcher");
	is_str(m.o.uuid, "0123abcd-0000-4000-8000-000000000000", "build uuid");
	is_int(m.o.number, 7, "build number");
	ok(!m.o.on_event && !m.o.payload && m.o.sandbox == RUNNER_SANDBOX_NAMESPACES, "the rest untouched");
	ok(!m.o.privileged, "not privileged by default");
	unmap(&m);

	map(&m, "{\"timeoutInMinutes\": \"x\", \"environment\": {\"privilegedMode\": true}}", "{}");
	is_int(m.rc, 0, "privilegedMode and no image/compute type");
	ok(m.o.privileged, "privilegedMode: a privileged build");
	ok(!m.o.image && !m.o.compute_type, "the runner's defaults (host, SMALL)");
	is_int(m.o.timeout_ms, 60 * 60000, "a non-integer timeout: 60 minutes");
	unmap(&m);
}

static void test_overrides(void)
{
	mapped m;
	map(&m, "{\"environment\": {\"privilegedMode\": true}}", "{\"privilegedModeOverride\": false}");
	ok(m.rc == 0 && !m.o.privileged, "privilegedModeOverride false beats the project's privilegedMode");
	unmap(&m);
	map(&m, NULL, "{\"privilegedModeOverride\": true}");
	ok(m.rc == 0 && m.o.privileged, "privilegedModeOverride true");
	unmap(&m);
	map(&m, NULL,
	    "{\"imageOverride\": \"aws/codebuild/standard:7.0\", \"computeTypeOverride\": \"BUILD_GENERAL1_LARGE\","
	    " \"timeoutInMinutesOverride\": 5, \"buildspecOverride\": \"ci/build.yml\","
	    " \"sourceVersion\": \"ignored-without-git\", \"gitCloneDepthOverride\": 3}");
	is_int(m.rc, 0, "overrides map");
	is_str(m.o.image, "aws/codebuild/standard:7.0", "imageOverride");
	is_str(m.o.compute_type, "BUILD_GENERAL1_LARGE", "computeTypeOverride");
	is_int(m.o.timeout_ms, 5 * 60000, "timeoutInMinutesOverride");
	is_str(m.o.buildspec, "ci/build.yml", "buildspecOverride: a path in the source");
	ok(!m.o.source_version && m.o.clone_depth == 0, "sourceVersion and depth only for git sources");
	unmap(&m);

	map(&m, "{\"environment\": {\"image\": \"host\", \"environmentVariables\": ["
		"{\"name\": \"A\", \"value\": \"1\", \"type\": \"PLAINTEXT\"}, {\"name\": \"B\", \"value\": \"x=y\"}]}}",
	    "{\"environmentVariablesOverride\": [{\"name\": \"A\", \"value\": \"2\"},"
	    " {\"name\": \"C\", \"value\": \"\", \"type\": \"PLAINTEXT\"}]}");
	is_int(m.rc, 0, "environment variables map");
	is_str(env_at(m.o.project_env, 0), "A=1", "project variable");
	is_str(env_at(m.o.project_env, 1), "B=x=y", "project variable without type");
	ok(!env_at(m.o.project_env, 2), "two project variables");
	is_str(env_at(m.o.env_overrides, 0), "A=2", "override variable");
	is_str(env_at(m.o.env_overrides, 1), "C=", "empty override value");
	unmap(&m);

	map(&m, NULL, "{\"buildspecOverride\": \"\", \"imageOverride\": null}");
	ok(m.rc == 0 && !m.o.buildspec && !strcmp(m.o.image, "host"), "empty/null overrides keep the project's");
	unmap(&m);
}

static void test_inline_buildspec(void)
{
	const char *yml = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n";
	json_t *req = json_pack("{ss}", "buildspecOverride", yml);
	char *reqs = json_dumps(req, 0);
	json_decref(req);
	mapped m;
	map(&m, "{\"source\": {\"type\": \"NO_SOURCE\"}}", reqs);
	is_int(m.rc, 0, "inline buildspec override, no location");
	char *want = cbl_path_join(g_dir, "buildspec-inline.yml"), *data = NULL;
	size_t len = 0;
	is_str(m.o.buildspec, want, "written to the build's directory");
	ok(cbl_read_file(want, 0, &data, &len, NULL) == 0 && !strcmp(data, yml), "with the YAML text");
	free(data);
	free(want);
	want = cbl_path_join(g_dir, "nosource");
	struct stat st;
	is_str(m.o.source_dir, want, "no location: an empty source directory");
	ok(stat(want, &st) == 0 && S_ISDIR(st.st_mode), "which exists");
	free(want);
	unmap(&m);
	free(reqs);

	map(&m, "{\"source\": {\"type\": \"NO_SOURCE\", \"buildspec\": \"version: 0.2\"}}", NULL);
	ok(m.rc == 0 && strstr(m.o.buildspec, "buildspec-inline.yml"), "the project's inline buildspec");
	unmap(&m);
	fails("{\"source\": {\"type\": \"NO_SOURCE\"}}", NULL, "a NO_SOURCE project needs a buildspec",
	      "NO_SOURCE without location or buildspec");
}

static void test_git(void)
{
	const char *gitproj = "{\"source\": {\"type\": \"GITHUB\", \"location\": \"https://example.com/r.git\","
			      " \"gitSubmodulesConfig\": {\"fetchSubmodules\": true}}, \"sourceVersion\": \"main\"}";
	mapped m;
	map(&m, gitproj, NULL);
	is_int(m.rc, 0, "a git project maps");
	is_str(m.o.git_url, "https://example.com/r.git", "git URL");
	ok(!m.o.source_dir, "no directory");
	is_int(m.o.clone_depth, 1, "CodeBuild's default depth 1");
	ok(m.o.fetch_submodules, "project's submodules config");
	is_str(m.o.source_version, "main", "project's sourceVersion");
	unmap(&m);

	map(&m, gitproj, "{\"sourceVersion\": \"pr/4\", \"gitCloneDepthOverride\": 0,"
			 " \"gitSubmodulesConfigOverride\": {\"fetchSubmodules\": false}}");
	is_str(m.o.source_version, "pr/4", "sourceVersion override");
	is_int(m.o.clone_depth, 0, "gitCloneDepthOverride 0: full history");
	ok(!m.o.fetch_submodules, "gitSubmodulesConfigOverride");
	unmap(&m);

	map(&m, "{\"source\": {\"type\": \"CODECOMMIT\", \"location\": \"file:///repos/r\", \"gitCloneDepth\": 25}}",
	    "{\"sourceVersion\": \"\"}");
	is_str(m.o.git_url, "file:///repos/r", "file:// of a git type stays a URL (a clone)");
	is_int(m.o.clone_depth, 25, "project's gitCloneDepth");
	ok(!m.o.source_version, "empty sourceVersion: none");
	unmap(&m);

	map(&m, NULL, "{\"sourceTypeOverride\": \"GITLAB\", \"sourceLocationOverride\": \"git@host:g/r.git\"}");
	ok(m.rc == 0 && !strcmp(m.o.git_url, "git@host:g/r.git") && !m.o.source_dir, "source type and location overrides");
	unmap(&m);

	map(&m, "{\"source\": {\"type\": \"GITHUB\", \"location\": \"https://h/r\"}}",
	    "{\"sourceTypeOverride\": \"NO_SOURCE\", \"sourceLocationOverride\": \"file:///other\"}");
	ok(m.rc == 0 && !m.o.git_url && !strcmp(m.o.source_dir, "/other") && m.o.clone_depth == 0,
	   "override to NO_SOURCE at a directory");
	unmap(&m);
}

static void test_secondary(void)
{
	const char *secs = "{\"secondarySources\": ["
			   " {\"type\": \"GITHUB\", \"location\": \"https://h/a.git\", \"sourceIdentifier\": \"a\"},"
			   " {\"type\": \"GITHUB\", \"location\": \"file:///repos/b\", \"sourceIdentifier\": \"b\"},"
			   " {\"type\": \"S3\", \"location\": \"file:///data/c\", \"sourceIdentifier\": \"c\"},"
			   " {\"type\": \"NO_SOURCE\", \"location\": \"/data/d\", \"sourceIdentifier\": \"d\"}],"
			   " \"secondarySourceVersions\": [{\"sourceIdentifier\": \"a\", \"sourceVersion\": \"v1\"},"
			   " {\"sourceIdentifier\": \"c\", \"sourceVersion\": \"ignored\"}]}";
	mapped m;
	map(&m, secs, "{\"secondarySourcesVersionOverride\": [{\"sourceIdentifier\": \"b\", \"sourceVersion\": \"dev\"}]}");
	is_int(m.rc, 0, "secondary sources map");
	is_int(m.o.n_secondary, 4, "four");
	if (m.o.n_secondary == 4) {
		const runner_secondary_source *s = m.o.secondary;
		ok(!strcmp(s[0].id, "a") && !strcmp(s[0].git_url, "https://h/a.git") && !s[0].dir, "git secondary");
		is_str(s[0].version, "v1", "its version from the project");
		is_str(s[1].git_url, "file:///repos/b", "file:// git secondary: a clone");
		is_str(s[1].version, "dev", "secondarySourcesVersionOverride");
		ok(!s[2].git_url && !strcmp(s[2].dir, "/data/c") && !s[2].version, "non-git: a directory, no version");
		is_str(s[3].dir, "/data/d", "a plain path");
	}
	is_int(m.o.clone_depth, 1, "git secondaries of a directory primary: depth 1");
	unmap(&m);

	map(&m, "{\"secondarySources\": [{\"type\": \"GITHUB\", \"location\": \"https://h/a.git\","
		" \"sourceIdentifier\": \"a\"}], \"secondarySourceVersions\": [{\"sourceIdentifier\": \"a\","
		" \"sourceVersion\": \"v1\"}]}",
	    "{\"secondarySourcesVersionOverride\": [{\"sourceIdentifier\": \"a\", \"sourceVersion\": \"v2\"}]}");
	is_str(m.o.n_secondary ? m.o.secondary[0].version : NULL, "v2", "the override beats the project");
	unmap(&m);
	fails("{\"secondarySources\": [{\"type\": \"GITHUB\", \"location\": \"https://h/a.git\"}]}", NULL,
	      "secondary source 0 needs a sourceIdentifier", "secondary without identifier");
}

static void test_cache_and_artifacts(void)
{
	static const struct {
		const char *cache;
		bool no_buildspec_cache, source_cache;
	} cases[] = {
		{"{\"cache\": {\"type\": \"NO_CACHE\"}}", true, false},
		{"{\"cache\": {\"type\": \"S3\", \"location\": \"b/p\"}}", false, false},
		{"{\"cache\": {\"type\": \"LOCAL\", \"modes\": [\"LOCAL_SOURCE_CACHE\"]}}", true, true},
		{"{\"cache\": {\"type\": \"LOCAL\", \"modes\": [\"LOCAL_CUSTOM_CACHE\"]}}", false, false},
		{"{\"cache\": {\"type\": \"LOCAL\", \"modes\": [\"LOCAL_DOCKER_LAYER_CACHE\", \"LOCAL_SOURCE_CACHE\","
		 " \"LOCAL_CUSTOM_CACHE\"]}}", false, true},
		{"{\"cache\": {\"type\": \"LOCAL\"}}", true, false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		mapped m;
		map(&m, cases[i].cache, NULL);
		ok(m.rc == 0 && m.o.no_buildspec_cache == cases[i].no_buildspec_cache &&
		   m.o.source_cache == cases[i].source_cache && !m.o.no_cache, "cache %s", cases[i].cache);
		unmap(&m);
	}
	mapped m;
	map(&m, "{\"artifacts\": {\"type\": \"S3\", \"packaging\": \"NONE\"}}", NULL);
	ok(m.rc == 0 && m.o.packaging_none, "artifacts packaging NONE");
	unmap(&m);
	map(&m, "{\"artifacts\": {\"type\": \"S3\", \"packaging\": \"ZIP\"}}", NULL);
	ok(m.rc == 0 && !m.o.packaging_none, "artifacts packaging ZIP");
	unmap(&m);
}

static void test_invalid(void)
{
	fails(NULL, "{\"timeoutInMinutesOverride\": 2}", "timeoutInMinutesOverride must be an integer from 5 to 2160",
	      "timeout below 5");
	fails(NULL, "{\"timeoutInMinutesOverride\": 2161}", "timeoutInMinutesOverride", "timeout above 2160");
	fails(NULL, "{\"timeoutInMinutesOverride\": \"10\"}", "timeoutInMinutesOverride", "timeout not an integer");
	fails("{\"timeoutInMinutes\": 0}", NULL, "timeoutInMinutes must be a positive number", "project timeout 0");
	fails("{\"source\": {\"type\": \"GITHUB\", \"location\": \"https://h/r\"}}", "{\"gitCloneDepthOverride\": -1}",
	      "gitCloneDepthOverride must be an integer from 0 to 1000000", "negative depth override");
	fails("{\"source\": {\"type\": \"GITHUB\", \"location\": \"https://h/r\", \"gitCloneDepth\": -2}}", NULL,
	      "gitCloneDepth must be from 0 to 1000000", "negative project depth");
	fails("{\"source\": {\"type\": \"GITHUB\", \"location\": \"https://h/r\"}}", "{\"sourceVersion\": 3}",
	      "sourceVersion must be a string", "sourceVersion not a string");
	fails(NULL, "{\"imageOverride\": 1}", "imageOverride must be a string", "imageOverride not a string");
	fails(NULL, "{\"privilegedModeOverride\": \"true\"}", "privilegedModeOverride must be a boolean",
	      "privilegedModeOverride not a boolean");
	fails(NULL, "{\"computeTypeOverride\": []}", "computeTypeOverride must be a string", "compute type not a string");
	fails(NULL, "{\"sourceTypeOverride\": 5}", "sourceTypeOverride must be a string", "type override not a string");
	fails(NULL, "{\"sourceTypeOverride\": \"S3\"}", "source type S3 cannot be built locally", "S3 source");
	fails("{\"source\": {\"type\": \"CODEPIPELINE\"}}", NULL, "CODEPIPELINE cannot be built locally",
	      "CODEPIPELINE source");
	fails("{\"source\": {\"type\": \"GITHUB\"}}", NULL, "source type GITHUB needs a location", "git without location");
	fails("{\"source\": {\"type\": \"GITHUB\", \"location\": \"/no/such/repo\"}}", NULL, "needs a git URL",
	      "git type at a plain path");
	fails(NULL, "{\"environmentVariablesOverride\": {\"A\": \"1\"}}", "environmentVariablesOverride must be a list",
	      "variables not a list");
	fails(NULL, "{\"environmentVariablesOverride\": [{\"name\": \"X\", \"value\": \"/p\", \"type\": \"FOO\"}]}",
	      "type FOO is not one of PLAINTEXT, PARAMETER_STORE, SECRETS_MANAGER", "unknown variable type");
	{
		mapped m;
		map(&m, "{\"environment\": {\"environmentVariables\": [{\"name\": \"S\", \"value\": \"id:k\","
			" \"type\": \"SECRETS_MANAGER\"}]}}",
		    "{\"environmentVariablesOverride\": [{\"name\": \"X\", \"value\": \"/p\", \"type\": "
		    "\"PARAMETER_STORE\"}]}");
		is_int(m.rc, 0, "secret variables map");
		is_str(env_at(m.o.project_secrets, 0), "S S=id:k", "a project SECRETS_MANAGER variable to resolve");
		is_str(env_at(m.o.override_secrets, 0), "P X=/p", "a PARAMETER_STORE override to resolve");
		ok(!env_at(m.o.project_env, 0) && !env_at(m.o.env_overrides, 0), "neither is a plain variable");
		unmap(&m);
	}
	fails(NULL, "{\"environmentVariablesOverride\": [{\"name\": \"X\"}]}", "[0] needs a name and a value",
	      "variable without value");
	fails(NULL, "{\"environmentVariablesOverride\": [{\"name\": \"\", \"value\": \"v\"}]}",
	      "needs a name and a value", "variable with an empty name");
	fails(NULL, "{\"environmentVariablesOverride\": [{\"name\": \"A=B\", \"value\": \"v\"}]}", "invalid name 'A=B'",
	      "variable name with '='");
	fails("{\"name\": null}", NULL, "the project has no name", "project without a name");

	runner_opts o;
	runner_launch_mem mem = RUNNER_LAUNCH_MEM_INIT;
	runner_launch_info info = {.dir = g_dir};
	cbl_error *err = NULL;
	json_t *proj = project(NULL), *arr = json_array();
	ok(runner_launch_opts(&o, &mem, proj, arr, &info, &err) == CBL_EINVAL, "a request that is no object");
	cbl_error_clear(&err);
	ok(runner_launch_opts(&o, &mem, arr, NULL, &info, &err) == CBL_EINVAL, "a project that is no object");
	cbl_error_clear(&err);
	runner_launch_mem_release(&mem);
	json_decref(arr);
	json_decref(proj);
}

static void test_launch_file(void)
{
	json_t *proj = project("{\"source\": {\"type\": \"GITHUB\", \"location\": \"https://h/r\"},"
			       " \"environment\": {\"image\": \"img\", \"environmentVariables\": [{\"name\": \"P\","
			       " \"value\": \"1\"}]}}");
	json_t *req = parse("{\"projectName\": \"demo\", \"sourceVersion\": \"v9\", \"timeoutInMinutesOverride\": 30,"
			    " \"environmentVariablesOverride\": [{\"name\": \"E\", \"value\": \"2\"}]}");
	runner_launch_info info = {.dir = g_dir, .home = "/state", .region = "ap-south-1",
				   .uuid = "0123abcd-0000-4000-8000-000000000001", .number = 12};
	cbl_error *err = NULL;
	is_int(runner_launch_save(proj, req, &info, &err), 0, "launch.json saved");
	json_decref(proj);
	json_decref(req);
	runner_opts o;
	runner_launch_mem mem = RUNNER_LAUNCH_MEM_INIT;
	is_int(runner_launch_load(&o, &mem, g_dir, &err), 0, "launch.json loaded and mapped");
	is_str(o.git_url, "https://h/r", "source from the saved project");
	is_str(o.source_version, "v9", "override from the saved request");
	is_int(o.timeout_ms, 30 * 60000, "timeout override");
	is_str(o.image, "img", "image");
	is_str(env_at(o.project_env, 0), "P=1", "project variable");
	is_str(env_at(o.env_overrides, 0), "E=2", "override variable");
	is_str(o.uuid, "0123abcd-0000-4000-8000-000000000001", "uuid");
	is_int(o.number, 12, "number");
	is_str(o.region, "ap-south-1", "region");
	is_str(o.home, "/state", "home");
	runner_launch_mem_release(&mem);

	char *path = cbl_path_join(g_dir, "launch.json");
	unlink(path);
	free(path);
	ok(runner_launch_load(&o, &mem, g_dir, &err) == CBL_EINVAL && strstr(err->msg, "launch.json"),
	   "no launch.json: an error naming it");
	cbl_error_clear(&err);
	runner_launch_mem_release(&mem);
}

/* The options are what runner_build_new takes: the compute type is checked
 * there (the launcher hears of it through the runner's ready pipe). */
static void test_runner_takes_them(void)
{
	char *home = cbl_path_join(g_dir, "home");
	json_t *proj = project(NULL);
	json_object_set_new(json_object_get(proj, "source"), "location", json_sprintf("file://%s", g_dir));
	json_t *req = parse("{\"computeTypeOverride\": \"BUILD_BOGUS\"}");
	runner_launch_info info = {.dir = g_dir, .home = home, .uuid = "0123abcd-0000-4000-8000-000000000002",
				   .number = 3};
	runner_opts o;
	runner_launch_mem mem = RUNNER_LAUNCH_MEM_INIT;
	runner_build *b = NULL;
	cbl_error *err = NULL;
	is_int(runner_launch_opts(&o, &mem, proj, req, &info, &err), 0, "an unknown compute type maps");
	ok(runner_build_new(&b, &o, &err) == CBL_EINVAL && strstr(err->msg, "compute type 'BUILD_BOGUS' is not supported by codebuild-local"),
	   "runner_build_new refuses it");
	cbl_error_clear(&err);
	runner_launch_mem_release(&mem);
	json_object_del(req, "computeTypeOverride");
	is_int(runner_launch_opts(&o, &mem, proj, req, &info, &err), 0, "mapped");
	is_int(runner_build_new(&b, &o, &err), 0, "runner_build_new takes the options");
	if (b) {
		is_str(runner_build_id(b), "demo:0123abcd-0000-4000-8000-000000000002", "the launcher's id");
		ok(!strncmp(runner_build_dir(b), home, strlen(home)), "under the launcher's state directory");
	}
	runner_build_free(b);
	cbl_error_clear(&err);
	runner_launch_mem_release(&mem);
	json_decref(req);
	json_decref(proj);
	free(home);
}

/* the network: the default, a vpcConfig flagged (reported as not applied) */
static void test_network(void)
{
	mapped m;
	map(&m, NULL, NULL);
	ok(m.rc == 0 && m.o.network == RUNNER_NETWORK_DEFAULT && !m.o.vpc_config, "default network, no VPC");
	unmap(&m);
	map(&m, "{\"vpcConfig\": {\"vpcId\": \"vpc-1\", \"subnets\": [\"subnet-1\"], "
		"\"securityGroupIds\": [\"sg-1\"]}}", "{}");
	ok(m.rc == 0 && m.o.network == RUNNER_NETWORK_DEFAULT && m.o.vpc_config,
	   "a vpcConfig: flagged, the network stays the default");
	unmap(&m);
	map(&m, "{\"vpcConfig\": {}}", NULL);
	ok(m.rc == 0 && !m.o.vpc_config, "an empty vpcConfig is no VPC");
	unmap(&m);
}

static void test_is_url(void)
{
	ok(runner_source_is_url("https://h/r.git"), "https URL");
	ok(runner_source_is_url("file:///x"), "file URL");
	ok(runner_source_is_url("git@github.com:o/r.git"), "scp-like");
	ok(!runner_source_is_url("/some/dir"), "a path");
	ok(!runner_source_is_url("."), "the current directory");
}

int main(void)
{
	if (!mkdtemp(g_dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_defaults();
	test_overrides();
	test_inline_buildspec();
	test_git();
	test_secondary();
	test_cache_and_artifacts();
	test_invalid();
	test_launch_file();
	test_runner_takes_them();
	test_network();
	test_is_url();
	cbl_rm_rf(g_dir, NULL);
	return tap_done();
}
