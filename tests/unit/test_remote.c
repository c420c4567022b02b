/* Unit tests for remote/ (the credential chain) and runner/replay.c (the
 * Build -> plan mapping, log normalisation and comparison). */
#include "tests/unit/tap.h"
#include "remote/remote.h"
#include "runner/replay.h"
#include "util/alloc.h"
#include "util/fs.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_dir[] = "/tmp/cbl-remote-XXXXXX";

static void put(const char *name, const char *text)
{
	char *p = cbl_path_join(g_dir, name);
	cbl_error *e = NULL;
	cbl_write_file_atomic(p, text, strlen(text), 0600, false, &e);
	cbl_error_free(e);
	free(p);
}

static void clean_env(void)
{
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_REGION");
	unsetenv("AWS_DEFAULT_REGION");
}

static void test_chain(void)
{
	char *creds = cbl_path_join(g_dir, "credentials"), *conf = cbl_path_join(g_dir, "config");
	setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
	setenv("AWS_CONFIG_FILE", conf, 1);
	put("credentials", "# keys\n[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key=sdef\n\n"
			     "[dev]\n  aws_access_key_id=AKDEV\naws_secret_access_key = sdev\naws_session_token = tok\n"
			     "[half]\naws_access_key_id = AKHALF\n");
	put("config", "[default]\nregion = eu-west-3\n[profile dev]\nregion=ap-south-1\n"
			"[profile cfgonly]\naws_access_key_id = AKCFG\naws_secret_access_key = scfg\n"
			"[profile sso]\nsso_session = corp\n[profile role]\nrole_arn = arn:aws:iam::1:role/r\n"
			"source_profile = default\n");
	remote_creds c;
	cbl_error *e = NULL;
	clean_env();
	ok(remote_creds_load(&c, NULL, NULL, &e) == 0 && !strcmp(c.access_key_id, "AKDEFAULT") &&
		   !strcmp(c.region, "eu-west-3"),
	   "no environment: the default profile, its region from the config file");
	remote_creds_release(&c);
	setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "senv", 1);
	ok(remote_creds_load(&c, NULL, "us-west-2", &e) == 0 && !strcmp(c.access_key_id, "AKENV") &&
		   !strcmp(c.region, "us-west-2") && !c.session_token,
	   "the environment's keys beat the files; the flag's region beats the profile's");
	remote_creds_release(&c);
	ok(remote_creds_load(&c, "dev", NULL, &e) == 0 && !strcmp(c.access_key_id, "AKDEV") &&
		   !strcmp(c.session_token, "tok") && !strcmp(c.region, "ap-south-1"),
	   "an explicit --profile beats the environment's keys");
	remote_creds_release(&c);
	clean_env();
	setenv("AWS_PROFILE", "cfgonly", 1);
	ok(remote_creds_load(&c, NULL, NULL, &e) == 0 && !strcmp(c.access_key_id, "AKCFG"),
	   "AWS_PROFILE names a profile whose keys are in the config file");
	remote_creds_release(&c);
	clean_env();
	ok(remote_creds_load(&c, "half", NULL, &e) < 0 && strstr(e->msg, "only one of"), "half a key pair: %s",
	   e ? e->msg : "");
	cbl_error_clear(&e);
	ok(remote_creds_load(&c, "sso", NULL, &e) < 0 && strstr(e->msg, "uses SSO (sso_session)") &&
		   strstr(e->msg, "export-credentials"),
	   "an SSO profile says how to get static keys");
	cbl_error_clear(&e);
	ok(remote_creds_load(&c, "role", NULL, &e) < 0 && strstr(e->msg, "an assumed role"), "role_arn: %s",
	   e ? e->msg : "");
	cbl_error_clear(&e);
	ok(remote_creds_load(&c, "nope", NULL, &e) == CBL_ENOENT && strstr(e->msg, "could not be found"),
	   "an unknown profile");
	cbl_error_clear(&e);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	ok(remote_creds_load(&c, NULL, NULL, &e) == CBL_ENOENT && strstr(e->msg, "no AWS credentials"),
	   "no credentials anywhere: %s", e ? e->msg : "");
	cbl_error_clear(&e);
	free(creds);
	free(conf);
}

static void test_plan(void)
{
	json_t *b = json_loads("{\"id\": \"app:1\", \"projectName\": \"app\", \"sourceVersion\": \"pr/7\","
			       " \"resolvedSourceVersion\": \"0123456789abcdef0123456789abcdef01234567\","
			       " \"initiator\": \"GitHub-Hookshot/abc\","
			       " \"source\": {\"type\": \"GITHUB\", \"location\": \"https://example.invalid/r.git\"},"
			       " \"secondarySourceVersions\": [{\"sourceIdentifier\": \"lib\", \"sourceVersion\": \"abc1234\"}],"
			       " \"environment\": {\"image\": \"host\", \"environmentVariables\": ["
			       "   {\"name\": \"A\", \"value\": \"1\", \"type\": \"PLAINTEXT\"},"
			       "   {\"name\": \"T\", \"value\": \"/p/t\", \"type\": \"PARAMETER_STORE\"}]},"
			       " \"vpcConfig\": {\"subnets\": [\"s\"]}}",
			       0, NULL);
	json_t *proj = json_loads("{\"name\": \"app\", \"source\": {\"type\": \"GITHUB\", \"buildspec\": \"ci/bs.yml\"}}",
				  0, NULL);
	runner_replay_plan p;
	cbl_error *e = NULL;
	ok(runner_replay_plan_new(&p, b, proj, &e) == 0, "a plan");
	is_str(json_string_value(json_object_get(p.request, "sourceVersion")),
	       "pr/7^{0123456789abcdef0123456789abcdef01234567}", "the exact commit, on what was asked");
	is_str(json_string_value(json_object_get(json_object_get(p.project, "source"), "buildspec")), "ci/bs.yml",
	       "the project's buildspec fills the record's gap");
	is_str(json_string_value(json_object_get(json_array_get(json_object_get(p.request,
					"secondarySourcesVersionOverride"), 0), "sourceVersion")),
	       "abc1234", "secondary sources at their resolved versions");
	ok(p.secret_names.n == 1 && strstr(p.secret_names.v[0], "PARAMETER_STORE T (parameter /p/t)"),
	   "secrets listed by name");
	ok(p.notes.n == 1 && strstr(p.notes.v[0], "VPC"), "the VPC noted");
	ok(cbl_env_get(&p.event_env, "CODEBUILD_SOURCE_VERSION") &&
		   !strcmp(cbl_env_get(&p.event_env, "CODEBUILD_SOURCE_VERSION"), "pr/7") &&
		   !strcmp(cbl_env_get(&p.event_env, "CODEBUILD_WEBHOOK_TRIGGER"), "pr/7"),
	   "the webhook build's source version and trigger");
	runner_replay_plan_release(&p);
	json_decref(b);
	json_decref(proj);
	json_t *bad = json_loads("{\"id\": \"x:1\"}", 0, NULL);
	ok(runner_replay_plan_new(&p, bad, NULL, &e) < 0 && strstr(e->msg, "no \"source\""), "no source: an error");
	cbl_error_clear(&e);
	json_decref(bad);
}

static void test_normalize_and_compare(void)
{
	const char *ids[] = {"app:1111", NULL};
	char *n = runner_replay_normalize("[Container] 2024/01/02 03:04:05.123 built app:1111 in "
					  "/codebuild/output/src123/src/github.com/x at 2024-01-02T03:04:05Z "
					  "id 0f8fad5b-d9cb-469f-a165-70867728950e",
					  ids);
	is_str(n, "[Container] <TIME> built <BUILD_ID> in <SRC> at <TIME> id <UUID>", "normalised");
	free(n);
	json_t *cloud = json_loads("{\"id\": \"a:1\", \"buildStatus\": \"FAILED\", \"phases\": ["
				   "{\"phaseType\": \"BUILD\", \"phaseStatus\": \"FAILED\", \"durationInSeconds\": 3}]}",
				   0, NULL);
	json_t *local = json_loads("{\"id\": \"a:2\", \"buildStatus\": \"FAILED\", \"phases\": ["
				   "{\"phaseType\": \"BUILD\", \"phaseStatus\": \"FAILED\", \"durationInSeconds\": 0}]}",
				   0, NULL);
	cbl_strv cl = CBL_STRV_INIT, ll = CBL_STRV_INIT;
	const char *c_lines[] = {"[Container] 2024/01/01 00:00:00 Entering phase BUILD",
				 "[Container] 2024/01/01 00:00:00 Running command make",
				 "cc -o a a.c", "",
				 "[Container] 2024/01/01 00:00:00 Running command make test",
				 "FAIL: t1",
				 "[Container] 2024/01/01 00:00:01 Command did not exit successfully make test exit status 2"};
	const char *l_lines[] = {"[Container] 2026/12/06 00:00:00.5 Entering phase BUILD",
				 "[Container] 2026/12/06 00:00:00.5 Running command make",
				 "cc -o a a.c",
				 "[Container] 2026/12/06 00:00:00.5 Command did not exit successfully make exit status 1"};
	for (size_t i = 0; i < sizeof(c_lines) / sizeof(*c_lines); i++)
		cbl_strv_push(&cl, c_lines[i]);
	for (size_t i = 0; i < sizeof(l_lines) / sizeof(*l_lines); i++)
		cbl_strv_push(&ll, l_lines[i]);
	json_t *cmp = runner_replay_compare(cloud, &cl, local, &ll);
	json_t *dc = json_object_get(cmp, "firstDivergentCommand");
	ok(json_is_true(json_object_get(cmp, "sameStatus")), "both FAILED");
	is_int(json_integer_value(json_object_get(dc, "index")), 1, "the first command differs (make)");
	is_int(json_integer_value(json_object_get(json_object_get(dc, "local"), "exitStatus")), 1, "locally exit 1");
	is_str(json_string_value(json_object_get(json_object_get(dc, "cloud"), "phase")), "BUILD", "in BUILD");
	json_t *dl = json_object_get(cmp, "firstDivergentLine");
	is_int(json_integer_value(json_object_get(dl, "index")), 2, "the output differs at its second line");
	ok(json_is_null(json_object_get(dl, "local")), "where the local log has ended");
	json_decref(cmp);
	json_decref(cloud);
	json_decref(local);
	cbl_strv_release(&cl);
	cbl_strv_release(&ll);
}

int main(void)
{
	if (!mkdtemp(g_dir))
		return 1;
	test_chain();
	test_plan();
	test_normalize_and_compare();
	cbl_error *e = NULL;
	cbl_rm_rf(g_dir, &e);
	cbl_error_free(e);
	return tap_done();
}
