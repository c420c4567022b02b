/* tests/unit/test_spec.c - the buildspec parser (spec/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spec/spec.h"
#include "spec/spec_internal.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/error.h"

#include "tap.h"

#include "util/banned.h"

/* helpers ------------------------------------------------------------------- */

typedef struct result {
	int rc;
	spec_buildspec *bs;
	spec_diags d;
	cbl_error *err;
} result;

static result parse_n(const char *yaml, size_t len, bool strict)
{
	result r = {0};
	spec_parse_opts o = SPEC_PARSE_OPTS_INIT;
	spec_diags init = SPEC_DIAGS_INIT;
	o.strict = strict;
	r.d = init;
	r.rc = spec_parse_buffer(&r.bs, &r.d, "buildspec.yml", yaml, len, &o, &r.err);
	return r;
}

static result parse(const char *yaml) { return parse_n(yaml, strlen(yaml), false); }
static result parse_strict(const char *yaml) { return parse_n(yaml, strlen(yaml), true); }

static void done(result *r)
{
	spec_buildspec_free(r->bs);
	spec_diags_release(&r->d);
	cbl_error_free(r->err);
	memset(r, 0, sizeof(*r));
}

static void dump(const result *r)
{
	for (size_t i = 0; i < r->d.n; i++) {
		cbl_buf b = CBL_BUF_INIT;
		spec_diag_format(&r->d, &r->d.items[i], &b);
		printf("#     %s\n", cbl_buf_cstr(&b));
		cbl_buf_release(&b);
	}
}

/* A diagnostic of severity sev on line (0 = any) whose message contains sub. */
static const spec_diag *find(const result *r, spec_severity sev, int line, const char *sub)
{
	for (size_t i = 0; i < r->d.n; i++) {
		const spec_diag *g = &r->d.items[i];
		if (g->severity == sev && (line == 0 || g->line == line) && strstr(g->msg, sub))
			return g;
	}
	return NULL;
}

#define has_err(r, line, sub) (find((r), SPEC_DIAG_ERROR, (line), (sub)) != NULL)
#define has_warn(r, line, sub) (find((r), SPEC_DIAG_WARNING, (line), (sub)) != NULL)

#define ok_parse(r, name)                                                           \
	do {                                                                        \
		ok((r).rc == 0 && (r).bs && (r).d.nerrors == 0, "%s parses", name); \
		if ((r).rc != 0)                                                    \
			dump(&(r));                                                 \
	} while (0)

#define ok_diag(r, sev, line, sub, ...)                                            \
	do {                                                                       \
		bool f_ = find(&(r), (sev), (line), (sub)) != NULL;                \
		ok(f_, __VA_ARGS__);                                               \
		if (!f_)                                                           \
			dump(&(r));                                                \
	} while (0)

#define ok_err(r, line, sub, ...) ok_diag(r, SPEC_DIAG_ERROR, line, sub, __VA_ARGS__)
#define ok_warn(r, line, sub, ...) ok_diag(r, SPEC_DIAG_WARNING, line, sub, __VA_ARGS__)

#define ok_rejected(r, name)                                                                \
	do {                                                                                \
		ok((r).rc == CBL_ESPEC && (r).bs == NULL && (r).d.nerrors > 0, "%s rejected", name); \
	} while (0)

/* tests ------------------------------------------------------------------------ */

static void test_minimal(void)
{
	result r = parse("version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n");
	ok_parse(r, "minimal 0.2");
	if (r.bs) {
		is_int(r.bs->version, SPEC_VERSION_0_2, "version 0.2");
		ok(r.bs->has_phases, "has_phases");
		ok(r.bs->phases[SPEC_PHASE_BUILD].present, "build present");
		ok(!r.bs->phases[SPEC_PHASE_INSTALL].present, "install absent");
		is_int(r.bs->phases[SPEC_PHASE_BUILD].commands.n, 1, "one command");
		is_str(r.bs->phases[SPEC_PHASE_BUILD].commands.items[0].s, "echo hi", "command text");
		is_int(r.bs->phases[SPEC_PHASE_BUILD].commands.items[0].pos.line, 5, "command line");
		is_int(r.bs->phases[SPEC_PHASE_BUILD].commands.items[0].pos.col, 9, "command col");
		is_int(r.bs->phases[SPEC_PHASE_BUILD].pos.line, 3, "phase key line");
		is_str(r.bs->file, "buildspec.yml", "file name kept");
		is_int(r.d.n, 0, "no diagnostics");
		is_str(r.d.file, "buildspec.yml", "diags->file set");
		ok(r.err == NULL, "no error");
	}
	done(&r);
}

static const char full_yaml[] =
	"version: 0.2\n"                                         /* 1 */
	"run-as: builder\n"                                      /* 2 */
	"env:\n"                                                 /* 3 */
	"  shell: bash\n"                                        /* 4 */
	"  variables:\n"                                         /* 5 */
	"    JAVA_HOME: \"/usr/lib/jvm/java-8\"\n"               /* 6 */
	"    COUNT: 3.10\n"                                      /* 7 */
	"    FLAG: yes\n"                                        /* 8 */
	"  parameter-store:\n"                                   /* 9 */
	"    LOGIN_PASSWORD: /CodeBuild/dockerLoginPassword\n"   /* 10 */
	"  secrets-manager:\n"                                   /* 11 */
	"    TOKEN: \"prod/db:password:AWSCURRENT\"\n"          /* 12 */
	"  exported-variables:\n"                                /* 13 */
	"    - IMAGE_TAG\n"                                      /* 14 */
	"    - JAVA_HOME\n"                                      /* 15 */
	"  git-credential-helper: yes\n"                         /* 16 */
	"proxy:\n"                                               /* 17 */
	"  upload-artifacts: yes\n"                              /* 18 */
	"  logs: on\n"                                           /* 19 */
	"phases:\n"                                              /* 20 */
	"  install:\n"                                           /* 21 */
	"    run-as: root\n"                                     /* 22 */
	"    on-failure: ABORT\n"                                /* 23 */
	"    runtime-versions:\n"                                /* 24 */
	"      java: corretto17\n"                               /* 25 */
	"      python: \"3.10\"\n"                               /* 26 */
	"    commands:\n"                                        /* 27 */
	"      - echo install\n"                                 /* 28 */
	"    finally:\n"                                         /* 29 */
	"      - echo install-finally\n"                         /* 30 */
	"  pre_build:\n"                                         /* 31 */
	"    on-failure: CONTINUE\n"                             /* 32 */
	"    commands:\n"                                        /* 33 */
	"      - echo pre\n"                                     /* 34 */
	"  build:\n"                                             /* 35 */
	"    on-failure: RETRY-2-^timeout\n"                     /* 36 */
	"    commands:\n"                                        /* 37 */
	"      - echo build\n"                                   /* 38 */
	"      - make all\n"                                     /* 39 */
	"  post_build:\n"                                        /* 40 */
	"    commands:\n"                                        /* 41 */
	"      - echo post\n"                                    /* 42 */
	"    finally:\n"                                         /* 43 */
	"      - echo bye\n"                                     /* 44 */
	"reports:\n"                                             /* 45 */
	"  unit-tests:\n"                                        /* 46 */
	"    files:\n"                                           /* 47 */
	"      - '**/*.xml'\n"                                   /* 48 */
	"    base-directory: build/test-results\n"               /* 49 */
	"    discard-paths: yes\n"                               /* 50 */
	"    file-format: junitxml\n"                            /* 51 */
	"  coverage:\n"                                          /* 52 */
	"    files: [coverage.xml]\n"                            /* 53 */
	"    file-format: CoberturaXml\n"                        /* 54 */
	"artifacts:\n"                                           /* 55 */
	"  files:\n"                                             /* 56 */
	"    - target/app.jar\n"                                 /* 57 */
	"    - appspec.yml\n"                                    /* 58 */
	"  name: app-$(date +%Y-%m-%d)\n"                        /* 59 */
	"  discard-paths: no\n"                                  /* 60 */
	"  base-directory: out\n"                                /* 61 */
	"  exclude-paths:\n"                                     /* 62 */
	"    - '**/*.tmp'\n"                                     /* 63 */
	"  enable-symlinks: true\n"                              /* 64 */
	"  s3-prefix: builds\n"                                  /* 65 */
	"  secondary-artifacts:\n"                               /* 66 */
	"    docs:\n"                                            /* 67 */
	"      files:\n"                                         /* 68 */
	"        - '**/*'\n"                                     /* 69 */
	"      base-directory: site\n"                           /* 70 */
	"      name: docs\n"                                     /* 71 */
	"      discard-paths: yes\n"                             /* 72 */
	"    bin:\n"                                             /* 73 */
	"      files: [bin/tool]\n"                              /* 74 */
	"cache:\n"                                               /* 75 */
	"  key: npm-$(codebuild-hash-files package-lock.json)\n" /* 76 */
	"  fallback-keys:\n"                                     /* 77 */
	"    - npm-\n"                                           /* 78 */
	"    - base\n"                                           /* 79 */
	"  action: restore\n"                                    /* 80 */
	"  paths:\n"                                             /* 81 */
	"    - '/root/.npm/**/*'\n";                             /* 82 */

static void test_full(void)
{
	result r = parse(full_yaml);
	ok_parse(r, "full buildspec");
	spec_buildspec *b = r.bs;
	if (!b) {
		done(&r);
		return;
	}
	is_int(r.d.n, 0, "full buildspec has no diagnostics");
	is_str(b->run_as, "builder", "run-as");
	is_str(b->env.shell, "bash", "env.shell");
	is_int(b->env.variables.n, 3, "3 variables");
	is_str(b->env.variables.items[0].key, "JAVA_HOME", "variable order kept");
	is_str(b->env.variables.items[0].value, "/usr/lib/jvm/java-8", "quoted value");
	is_int(b->env.variables.items[0].pos.line, 6, "variable position");
	is_str(b->env.variables.items[1].value, "3.10", "number keeps source text");
	is_str(b->env.variables.items[2].value, "yes", "boolean keeps source text");
	is_int(b->env.parameter_store.n, 1, "parameter-store");
	is_str(b->env.parameter_store.items[0].key, "LOGIN_PASSWORD", "parameter-store key");
	is_str(b->env.parameter_store.items[0].value, "/CodeBuild/dockerLoginPassword", "parameter-store value");
	is_int(b->env.secrets_manager.n, 1, "secrets-manager");
	is_str(b->env.secrets_manager.items[0].value, "prod/db:password:AWSCURRENT", "secrets-manager value");
	is_int(b->env.exported_variables.n, 2, "exported-variables");
	is_str(b->env.exported_variables.items[1].s, "JAVA_HOME", "exported-variables[1]");
	ok(b->env.git_credential_helper, "git-credential-helper");
	ok(b->proxy.upload_artifacts, "proxy.upload-artifacts");
	ok(b->proxy.logs, "proxy.logs (on)");

	const spec_phase *in = &b->phases[SPEC_PHASE_INSTALL];
	ok(in->present, "install present");
	is_str(in->run_as, "root", "phase run-as");
	is_int(in->on_failure.kind, SPEC_ON_FAILURE_ABORT, "on-failure ABORT");
	is_int(in->on_failure.pos.line, 23, "on-failure position");
	is_int(in->runtime_versions.n, 2, "runtime-versions");
	is_str(in->runtime_versions.items[0].key, "java", "runtime name");
	is_str(in->runtime_versions.items[0].value, "corretto17", "runtime version");
	is_str(in->runtime_versions.items[1].value, "3.10", "quoted runtime version");
	is_str(in->commands.items[0].s, "echo install", "install command");
	is_int(in->finally.n, 1, "install finally");
	is_str(in->finally.items[0].s, "echo install-finally", "finally text");
	is_int(b->phases[SPEC_PHASE_PRE_BUILD].on_failure.kind, SPEC_ON_FAILURE_CONTINUE, "on-failure CONTINUE");
	const spec_phase *bu = &b->phases[SPEC_PHASE_BUILD];
	is_int(bu->on_failure.kind, SPEC_ON_FAILURE_RETRY, "on-failure RETRY-2-regex");
	is_int(bu->on_failure.retry_count, 2, "retry count 2");
	is_str(bu->on_failure.retry_regex, "^timeout", "retry regex");
	is_int(bu->commands.n, 2, "build commands");
	ok(bu->run_as == NULL, "build run-as inherits");
	is_int(b->phases[SPEC_PHASE_POST_BUILD].finally.n, 1, "post_build finally");

	is_int(b->nreports, 2, "two report groups");
	is_str(b->reports[0].group, "unit-tests", "report group name");
	is_int(b->reports[0].pos.line, 46, "report group position");
	is_str(b->reports[0].files.items[0].s, "**/*.xml", "report files");
	is_str(b->reports[0].base_directory, "build/test-results", "report base-directory");
	ok(b->reports[0].discard_paths, "report discard-paths");
	is_int(b->reports[0].format, SPEC_REPORT_JUNITXML, "file-format case-insensitive");
	is_int(b->reports[1].format, SPEC_REPORT_COBERTURAXML, "CoberturaXml");
	ok(spec_report_format_is_coverage(b->reports[1].format), "coverage format");
	is_str(b->reports[1].files.items[0].s, "coverage.xml", "flow list");

	const spec_artifacts *a = &b->artifacts;
	ok(a->present, "artifacts present");
	ok(a->primary.identifier == NULL, "primary has no identifier");
	is_int(a->primary.files.n, 2, "artifact files");
	is_str(a->primary.files.items[0].s, "target/app.jar", "artifact file 0");
	is_str(a->primary.name, "app-$(date +%Y-%m-%d)", "artifact name");
	ok(!a->primary.discard_paths, "discard-paths no");
	is_str(a->primary.base_directory, "out", "base-directory");
	is_str(a->primary.exclude_paths.items[0].s, "**/*.tmp", "exclude-paths");
	ok(a->primary.enable_symlinks, "enable-symlinks");
	is_str(a->primary.s3_prefix, "builds", "s3-prefix");
	ok(a->primary.type == NULL, "no type");
	is_int(a->nsecondary, 2, "two secondary artifacts");
	is_str(a->secondary[0].identifier, "docs", "secondary id");
	is_str(a->secondary[0].base_directory, "site", "secondary base-directory");
	is_str(a->secondary[0].name, "docs", "secondary name");
	ok(a->secondary[0].discard_paths, "secondary discard-paths");
	is_str(a->secondary[1].files.items[0].s, "bin/tool", "secondary files");

	ok(b->cache.present, "cache present");
	is_str(b->cache.key, "npm-$(codebuild-hash-files package-lock.json)", "cache.key");
	is_int(b->cache.fallback_keys.n, 2, "fallback-keys");
	is_int(b->cache.action, SPEC_CACHE_ACTION_RESTORE, "cache.action restore");
	is_str(b->cache.paths.items[0].s, "/root/.npm/**/*", "cache.paths");
	ok(b->batch.present == false, "no batch");
	done(&r);
}

static void test_batch(void)
{
	result r = parse("version: 0.2\n"
			 "batch:\n"
			 "  fast-fail: true\n"
			 "  build-graph:\n"
			 "    - identifier: build1\n"
			 "      buildspec: ci/one.yml\n"
			 "      debug-session: yes\n"
			 "      ignore-failure: no\n"
			 "      env:\n"
			 "        compute-type: BUILD_GENERAL1_LARGE\n"
			 "        image: aws/codebuild/standard:7.0\n"
			 "        privileged-mode: true\n"
			 "        type: LINUX_CONTAINER\n"
			 "        variables:\n"
			 "          MODE: fast\n"
			 "    - identifier: build2\n"
			 "      ignore-failure: true\n"
			 "      depend-on:\n"
			 "        - build1\n"
			 "phases:\n"
			 "  build:\n"
			 "    commands: [make]\n");
	ok_parse(r, "build-graph");
	if (r.bs) {
		const spec_batch *b = &r.bs->batch;
		ok(b->present, "batch present");
		is_int(b->pos.line, 2, "batch position");
		ok(b->fast_fail, "fast-fail");
		is_int(b->kind, SPEC_BATCH_GRAPH, "kind graph");
		is_int(b->ntasks, 2, "two tasks");
		is_str(b->tasks[0].identifier, "build1", "identifier");
		is_str(b->tasks[0].buildspec, "ci/one.yml", "task buildspec");
		ok(b->tasks[0].debug_session, "debug-session");
		ok(!b->tasks[0].ignore_failure, "ignore-failure no");
		is_str(b->tasks[0].env.compute_type, "BUILD_GENERAL1_LARGE", "task compute-type");
		is_str(b->tasks[0].env.image, "aws/codebuild/standard:7.0", "task image");
		ok(b->tasks[0].env.privileged_mode, "privileged-mode");
		is_str(b->tasks[0].env.type, "LINUX_CONTAINER", "task env type");
		is_str(b->tasks[0].env.variables.items[0].value, "fast", "task variables");
		is_int(b->tasks[1].pos.line, 16, "task position");
		ok(b->tasks[1].ignore_failure, "ignore-failure yes");
		is_str(b->tasks[1].depend_on.items[0].s, "build1", "depend-on");
	}
	done(&r);

	r = parse("version: 0.2\n"
		  "batch:\n"
		  "  build-list:\n"
		  "    - identifier: a\n"
		  "      env:\n"
		  "        variables: {X: 1}\n"
		  "    - identifier: b\n");
	ok_parse(r, "build-list without phases");
	ok_warn(r, 1, "no 'phases' section", "batch without phases is a warning");
	if (r.bs) {
		is_int(r.bs->batch.kind, SPEC_BATCH_LIST, "kind list");
		is_int(r.bs->batch.ntasks, 2, "list tasks");
		ok(!r.bs->has_phases, "has_phases false");
	}
	done(&r);

	r = parse("version: 0.2\n"
		  "batch:\n"
		  "  build-matrix:\n"
		  "    static:\n"
		  "      ignore-failure: true\n"
		  "      env:\n"
		  "        privileged-mode: true\n"
		  "        type: ARM_CONTAINER\n"
		  "    dynamic:\n"
		  "      buildspec:\n"
		  "        - matrix1.yml\n"
		  "        - matrix2.yml\n"
		  "      env:\n"
		  "        compute-type: [BUILD_GENERAL1_SMALL, BUILD_GENERAL1_LARGE]\n"
		  "        image:\n"
		  "          - img1\n"
		  "        variables:\n"
		  "          MY_VAR:\n"
		  "            - V1\n"
		  "            - V2\n"
		  "            - V3\n"
		  "phases: {build: {commands: [true]}}\n");
	ok_parse(r, "build-matrix");
	if (r.bs) {
		const spec_batch *b = &r.bs->batch;
		is_int(b->kind, SPEC_BATCH_MATRIX, "kind matrix");
		ok(b->matrix_ignore_failure, "static.ignore-failure");
		ok(b->matrix_static_env.privileged_mode, "static.env.privileged-mode");
		is_str(b->matrix_static_env.type, "ARM_CONTAINER", "static.env.type");
		is_int(b->matrix_buildspecs.n, 2, "dynamic.buildspec");
		is_int(b->matrix_compute_types.n, 2, "dynamic.env.compute-type");
		is_str(b->matrix_images.items[0].s, "img1", "dynamic.env.image");
		is_int(b->nmatrix_vars, 1, "one matrix variable");
		is_str(b->matrix_vars[0].name, "MY_VAR", "matrix variable name");
		is_int(b->matrix_vars[0].values.n, 3, "matrix variable values");
		is_str(r.bs->phases[SPEC_PHASE_BUILD].commands.items[0].s, "true", "flow mapping phases");
	}
	done(&r);

	r = parse("version: 0.2\nbatch:\n  build-fanout:\n    parallelism: 5\n    ignore-failure: yes\n"
		  "phases:\n  build:\n    commands:\n      - codebuild-tests-run --test-command 'pytest'\n");
	ok_parse(r, "build-fanout");
	if (r.bs) {
		is_int(r.bs->batch.kind, SPEC_BATCH_FANOUT, "kind fanout");
		is_int(r.bs->batch.fanout_parallelism, 5, "parallelism");
		ok(r.bs->batch.fanout_ignore_failure, "fanout ignore-failure");
		spec_batch_plan *p = NULL;
		ok(spec_batch_plan_new(&p, r.bs, NULL) == 0 && p->n == 5 && p->builds[4].shard == 5 &&
			   !strcmp(p->builds[4].identifier, "shard_5"),
		   "fanout expands to shard_1..shard_5");
		spec_batch_plan_free(p);
	}
	done(&r);

	r = parse("version: 0.2\nbatch:\n  build-fanout:\n    parallelism: 0\nphases: {build: {commands: [x]}}\n");
	ok_err(r, 4, "parallelism must be an integer of at least 1", "parallelism 0 rejected");
	done(&r);

	r = parse("version: 0.2\n"
		  "phases: {build: {commands: [x]}}\n"
		  "batch:\n"
		  "  build-list:\n"
		  "    - identifier: a\n"
		  "  build-matrix:\n"
		  "    dynamic: {buildspec: [a.yml]}\n");
	ok_err(r, 3, "more than one build type (build-list and build-matrix)", "two batch kinds: error at batch line");
	done(&r);

	r = parse("version: 0.2\nbatch:\n  fast-fail: false\n  build-list:\nphases: {build: {commands: [x]}}\n");
	ok_err(r, 4, "batch.build-list must be a list of builds, not null", "build-list null");
	done(&r);

	r = parse("version: 0.2\nbatch:\n  build-list:\n    - identifier: a\n    - identified: b\n      buildspec: x.yml\n"
		  "phases: {build: {commands: [x]}}\n");
	ok_err(r, 5, "batch.build-list[1] has no identifier (required)", "missing identifier at item line");
	ok_warn(r, 5, "did you mean 'identifier'", "identified -> identifier hint");
	done(&r);

	r = parse("version: 0.2\nbatch:\n  build-list:\n    - identifier: a\n      depend-on: [b]\n"
		  "phases: {build: {commands: [x]}}\n");
	ok_parse(r, "depend-on in build-list");
	ok_warn(r, 5, "only used in build-graph", "depend-on in build-list warns");
	done(&r);

	r = parse("version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n    - identifier: b\n"
		  "      depend-on: [a, c]\n    - identifier: a\nphases: {build: {commands: [x]}}\n");
	ok_err(r, 6, "depend-on names 'c', which is not a build of this graph", "unknown dependency is an error");
	ok_err(r, 7, "identifier 'a' is used more than once (also at line 4)", "duplicate identifier is an error");
	done(&r);

	r = parse("version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n      depend-on: [c]\n"
		  "    - identifier: b\n      depend-on: [a]\n    - identifier: c\n      depend-on:\n        - b\n"
		  "phases: {build: {commands: [x]}}\n");
	ok_err(r, 7, "depend-on closes a cycle (a -> c -> b -> a)", "a cycle is an error where it closes");
	done(&r);

	r = parse("version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n      depend-on: [a]\n"
		  "phases: {build: {commands: [x]}}\n");
	ok_err(r, 5, "closes a cycle (a -> a)", "a self-dependency is a cycle");
	done(&r);

	r = parse("version: 0.2\nbatch:\n  build-graph:\n    - identifier: A\n    - identifier: B\n      depend-on: [A]\n"
		  "    - identifier: C\n      depend-on: [A]\n    - identifier: D\n      depend-on: [B, C]\n"
		  "      ignore-failure: true\nphases: {build: {commands: [x]}}\n");
	ok_parse(r, "a diamond graph");
	if (r.bs) {
		spec_batch_plan *p = NULL;
		ok(spec_batch_plan_new(&p, r.bs, NULL) == 0, "diamond expands");
		is_int(p ? p->n : 0, 4, "four builds");
		const spec_batch_build *d = spec_batch_plan_find(p, "D");
		ok(d && d->ndepend_on == 2 && !strcmp(d->depend_on[1], "C") && d->ignore_failure, "D depends on B and C");
		spec_batch_plan_free(p);
	}
	done(&r);

	r = parse("version: 0.2\nbatch:\n  build-matrix:\n    static: {ignore-failure: true, env: {variables: {S: s}}}\n"
		  "    dynamic:\n      buildspec: [a.yml, b.yml]\n      env:\n        variables:\n          V: [1, 2, 3]\n"
		  "phases: {build: {commands: [x]}}\n");
	ok_parse(r, "a 2x3 matrix");
	if (r.bs) {
		spec_batch_plan *p = NULL;
		ok(spec_batch_plan_new(&p, r.bs, NULL) == 0, "matrix expands");
		is_int(p ? p->n : 0, 6, "six builds");
		if (p && p->n == 6) {
			is_str(p->builds[4].identifier, "matrix_5", "generated identifier");
			is_str(p->builds[4].buildspec, "b.yml", "buildspec crossed");
			is_str(p->builds[4].label, "buildspec=b.yml V=2", "label");
			ok(p->builds[4].variables.n == 2 && !strcmp(p->builds[4].variables.items[1].value, "2") &&
				   !strcmp(p->builds[4].variables.items[0].value, "s"),
			   "static and dynamic variables");
			ok(p->builds[0].ignore_failure, "static ignore-failure");
		}
		spec_batch_plan_free(p);
	}
	done(&r);

	r = parse("version: 0.2\nbatch:\n  fast-fail: true\nphases: {build: {commands: [x]}}\n");
	ok_parse(r, "batch without a build type");
	ok_warn(r, 2, "batch declares none of", "no batch type warns");
	done(&r);

	r = parse("version: 0.2\nbatch:\n  build-list: [{identifier: a}]\n  fast-fail: maybe\n"
		  "phases: {build: {commands: [x]}}\n");
	ok_err(r, 4, "batch.fast-fail must be a boolean", "fast-fail bad boolean");
	done(&r);
}

static void test_versions(void)
{
	result r = parse("version: \"0.2\"\nphases: {build: {commands: [a]}}\n");
	ok_parse(r, "quoted version");
	done(&r);

	r = parse("version: 0.1\nphases:\n  build:\n    commands:\n      - a\n");
	ok_parse(r, "version 0.1");
	if (r.bs)
		is_int(r.bs->version, SPEC_VERSION_0_1, "0.1 parsed");
	done(&r);

	r = parse("phases:\n  build:\n    commands: [a]\n");
	ok_rejected(r, "missing version");
	ok_err(r, 1, "missing required 'version'", "missing version message");
	done(&r);

	r = parse("version: 2.0\nphases:\n  build:\n    commands: [a]\n");
	ok_rejected(r, "version 2.0");
	const spec_diag *g = find(&r, SPEC_DIAG_ERROR, 1, "unsupported version '2.0' (expected 0.1 or 0.2)");
	ok(g != NULL, "version 2.0 message");
	if (g)
		is_int(g->col, 10, "unsupported version points at the value");
	done(&r);

	r = parse("version: 0.3\nphases: {build: {commands: [a]}}\n");
	ok_err(r, 1, "unsupported version '0.3'", "version 0.3 rejected");
	done(&r);

	r = parse("version: [0.2]\nphases: {build: {commands: [a]}}\n");
	ok_err(r, 1, "version must be 0.1 or 0.2, not a list", "version list rejected");
	done(&r);

	r = parse("version: 0.20\nphases: {build: {commands: [a]}}\n");
	ok_parse(r, "version 0.20 is the float 0.2");
	done(&r);
}

static void test_v01(void)
{
	result r = parse("version: 0.1\n"
			 "environment_variables:\n"
			 "  plaintext:\n"
			 "    JAVA_HOME: \"/usr/lib/jvm/java-8-openjdk-amd64\"\n"
			 "    N: 1\n"
			 "phases:\n"
			 "  install:\n"
			 "    commands:\n"
			 "      - apt-get update -y\n"
			 "artifacts:\n"
			 "  type: zip\n"
			 "  files:\n"
			 "    - target/x.jar\n");
	ok_parse(r, "0.1 environment_variables");
	if (r.bs) {
		is_int(r.bs->env.variables.n, 2, "plaintext into env.variables");
		is_str(r.bs->env.variables.items[0].key, "JAVA_HOME", "plaintext key");
		is_str(r.bs->env.variables.items[0].value, "/usr/lib/jvm/java-8-openjdk-amd64", "plaintext value");
		is_str(r.bs->artifacts.primary.type, "zip", "0.1 artifacts.type");
		is_int(r.d.n, 0, "0.1 buildspec without diagnostics");
	}
	done(&r);

	r = parse("version: 0.1\nphases:\n  build:\n    commands: [a]\n    finally: [b]\n");
	ok_warn(r, 5, "finally is a version 0.2 key", "finally in 0.1 warns");
	done(&r);
}

static void test_phase_names(void)
{
	result r = parse("version: 0.2\nphases:\n  pre-build:\n    commands: [a]\n  build:\n    commands: [b]\n");
	ok_rejected(r, "phase pre-build");
	const spec_diag *g = find(&r, SPEC_DIAG_ERROR, 3, "Invalid buildspec phase name");
	ok(g != NULL, "unknown phase name error at line 3");
	if (g) {
		is_str(g->msg,
		       "Invalid buildspec phase name: pre-build. Expecting: build,install,post_build,pre_build (did you mean 'pre_build'?)",
		       "service-style message with hint");
		is_int(g->col, 3, "phase name column");
	}
	done(&r);

	r = parse("version: 0.2\nphases:\n  POSTBUILD:\n    commands: [a]\n");
	ok_err(r, 3, "did you mean 'post_build'", "POSTBUILD -> post_build");
	done(&r);

	r = parse("version: 0.2\nphases:\n  deploy:\n    commands: [a]\n");
	g = find(&r, SPEC_DIAG_ERROR, 3, "Invalid buildspec phase name: deploy.");
	ok(g && !strstr(g->msg, "did you mean"), "no hint for an unrelated name");
	done(&r);

	r = parse("version: 0.2\nphases:\n  pre_build:\n    echo hi\n  post_build:\n    - echo x\n");
	ok_err(r, 3, "phase 'pre_build' must be a mapping", "phase scalar -> error");
	ok_err(r, 5, "phase 'post_build' must be a mapping", "phase list -> error");
	done(&r);

	r = parse("version: 0.2\nphases:\n");
	ok_err(r, 2, "phases must be a mapping", "phases null -> error");
	done(&r);

	r = parse("version: 0.2\nphases: [build]\n");
	ok_err(r, 2, "phases must be a mapping", "phases list -> error");
	done(&r);

	r = parse("version: 0.2\nenv:\n  variables:\n    A: b\n");
	ok_rejected(r, "no phases");
	ok_err(r, 1, "no 'phases' section (required)", "no phases message");
	done(&r);
}

static void test_empty_phases(void)
{
	result r = parse("version: 0.2\nphases:\n  install:\n  build:\n    commands: [a]\n");
	ok_parse(r, "empty phase");
	ok_warn(r, 3, "phase 'install' is empty", "empty phase warns");
	if (r.bs)
		ok(r.bs->phases[SPEC_PHASE_INSTALL].present, "empty phase is present");
	done(&r);

	r = parse_strict("version: 0.2\nphases:\n  install:\n  build:\n    commands: [a]\n");
	ok_rejected(r, "empty phase under strict");
	ok_err(r, 3, "phase 'install' is empty", "empty phase is an error under strict");
	done(&r);

	r = parse("version: 0.2\nphases:\n  post_build:\n    run-as: x\n");
	ok_parse(r, "phase without commands");
	ok_warn(r, 3, "phase 'post_build' has no commands", "no commands warns");
	done(&r);

	r = parse_strict("version: 0.2\nphases:\n  post_build:\n    run-as: x\n");
	ok_err(r, 3, "phase 'post_build' has no commands", "no commands is an error under strict");
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    finally:\n      - echo only-finally\n");
	ok_parse(r, "finally only");
	ok(!has_warn(&r, 0, "has no commands"), "finally counts as commands");
	done(&r);

	r = parse("version: 0.2\nphases:\n  install:\n    runtime-versions:\n      nodejs: 18\n");
	ok_parse(r, "install with runtime-versions only");
	is_int(r.d.n, 0, "no warning for install with only runtime-versions");
	done(&r);
}

static void test_commands(void)
{
	result r = parse("version: 0.2\n"
			 "phases:\n"
			 "  build:\n"
			 "    commands:\n"
			 "      - echo a\n"
			 "      - echo b\n"
			 "      - echo c: d\n"
			 "      - [x]\n");
	ok_rejected(r, "mapping command");
	const spec_diag *g = find(&r, SPEC_DIAG_ERROR, 7, "commands[2]");
	ok(g != NULL, "mapping command error at the item line");
	if (g) {
		is_str(g->msg, "phases.build.commands[2] is a mapping, not a string: quote the command (it contains ': ')",
		       "mapping command message");
		is_int(g->col, 9, "mapping command column");
	}
	ok_err(r, 8, "phases.build.commands[3] must be a string, not a list", "list command");
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    commands: make all\n");
	ok_parse(r, "commands as one string");
	ok_warn(r, 4, "phases.build.commands is a single string, not a list", "scalar commands warns");
	if (r.bs) {
		is_int(r.bs->phases[SPEC_PHASE_BUILD].commands.n, 1, "scalar commands: one command");
		is_str(r.bs->phases[SPEC_PHASE_BUILD].commands.items[0].s, "make all", "scalar command text");
	}
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    commands:\n  post_build:\n    commands: []\n");
	ok_parse(r, "null commands");
	ok_warn(r, 4, "phases.build.commands is empty (null)", "null commands warns");
	ok_warn(r, 6, "phases.post_build.commands is an empty list", "empty list warns");
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    commands:\n      - # nothing yet\n      - echo a\n      -\n");
	ok_parse(r, "null items");
	ok_warn(r, 5, "phases.build.commands[0] is empty (null); skipped", "null item warns at its line");
	ok_warn(r, 7, "phases.build.commands[2] is empty (null)", "bare dash warns");
	if (r.bs)
		is_int(r.bs->phases[SPEC_PHASE_BUILD].commands.n, 1, "null items skipped");
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    commands:\n      mkdir: x\n");
	ok_err(r, 4, "phases.build.commands must be a list of strings, not a mapping", "commands mapping");
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    commands:\n      - 42\n      - true\n      - 'it''s'\n");
	ok_parse(r, "scalar command types");
	if (r.bs) {
		is_str(r.bs->phases[SPEC_PHASE_BUILD].commands.items[0].s, "42", "number command kept as text");
		is_str(r.bs->phases[SPEC_PHASE_BUILD].commands.items[1].s, "true", "bool command kept as text");
		is_str(r.bs->phases[SPEC_PHASE_BUILD].commands.items[2].s, "it's", "single-quote escape");
	}
	done(&r);
}

static void test_block_scalars(void)
{
	result r = parse("version: 0.2\n"
			 "phases:\n"
			 "  build:\n"
			 "    commands:\n"
			 "      - |\n"
			 "        if [ -f x ]; then\n"
			 "          echo yes\n"
			 "        fi\n"
			 "      - >\n"
			 "        docker build\n"
			 "        -t app .\n"
			 "      - |+\n"
			 "        keep\n"
			 "\n"
			 "      - |-\n"
			 "        strip\n"
			 "      - \"tab\\there\"\n"
			 "    finally:\n"
			 "      - |\n"
			 "        echo done\n");
	ok_parse(r, "block scalars");
	if (r.bs) {
		const spec_strlist *c = &r.bs->phases[SPEC_PHASE_BUILD].commands;
		is_int(c->n, 5, "each block scalar is one command");
		is_str(c->items[0].s, "if [ -f x ]; then\n  echo yes\nfi", "literal block: one trailing newline stripped");
		is_int(c->items[0].pos.line, 5, "block scalar position");
		is_str(c->items[1].s, "docker build -t app .", "folded block");
		is_str(c->items[2].s, "keep\n", "|+ keeps the extra newline");
		is_str(c->items[3].s, "strip", "|- strip");
		is_str(c->items[4].s, "tab\there", "tab escape in double quotes");
		is_str(r.bs->phases[SPEC_PHASE_BUILD].finally.items[0].s, "echo done", "block scalar in finally");
	}
	done(&r);

	/* CRLF line ends, no final newline, document start marker, tab inside a scalar */
	const char crlf[] = "---\r\nversion: 0.2\r\nphases:\r\n  build:\r\n    commands:\r\n      - |\r\n"
			    "        echo one\r\n        echo\ttwo\r\n      - echo three";
	r = parse(crlf);
	ok_parse(r, "CRLF, --- and no final newline");
	if (r.bs) {
		is_str(r.bs->phases[SPEC_PHASE_BUILD].commands.items[0].s, "echo one\necho\ttwo", "CRLF folded to LF");
		is_str(r.bs->phases[SPEC_PHASE_BUILD].commands.items[1].s, "echo three", "last line without newline");
		is_int(r.bs->phases[SPEC_PHASE_BUILD].commands.items[1].pos.line, 9, "CRLF line numbers");
	}
	done(&r);
}

static void test_on_failure(void)
{
	static const struct {
		const char *in;
		int kind, count;
		const char *regex;
	} good[] = {
		{"ABORT", SPEC_ON_FAILURE_ABORT, 0, NULL},
		{"CONTINUE", SPEC_ON_FAILURE_CONTINUE, 0, NULL},
		{"RETRY", SPEC_ON_FAILURE_RETRY, 3, NULL},
		{"RETRY-0", SPEC_ON_FAILURE_RETRY, 0, NULL},
		{"RETRY-5", SPEC_ON_FAILURE_RETRY, 5, NULL},
		{"RETRY-100", SPEC_ON_FAILURE_RETRY, 100, NULL},
		{"RETRY-.*timeout.*", SPEC_ON_FAILURE_RETRY, 3, ".*timeout.*"},
		{"RETRY-2-^Error [0-9]+$", SPEC_ON_FAILURE_RETRY, 2, "^Error [0-9]+$"},
		{"RETRY-10-a-b", SPEC_ON_FAILURE_RETRY, 10, "a-b"},
		{"RETRY-abc", SPEC_ON_FAILURE_RETRY, 3, "abc"},
		{"RETRY-(a|b)+[[:space:]]*x{2,5}", SPEC_ON_FAILURE_RETRY, 3, "(a|b)+[[:space:]]*x{2,5}"},
		{"RETRY-1-[]a]+\\.(b?)*", SPEC_ON_FAILURE_RETRY, 1, "[]a]+\\.(b?)*"},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		spec_on_failure of;
		bool okp = spec_parse_on_failure(good[i].in, &of, NULL);
		ok(okp && (int)of.kind == good[i].kind && of.retry_count == good[i].count &&
			   ((!of.retry_regex && !good[i].regex) ||
			    (of.retry_regex && good[i].regex && !strcmp(of.retry_regex, good[i].regex))),
		   "on-failure %s", good[i].in);
		free(of.retry_regex);
	}
	static const char *const bad[] = {"SOMETIMES", "abort", "RETRY-", "RETRY-101", "RETRY-3-", "RETRY-(",
					  "RETRY-[a", "RETRY-x{1000}{1000}", "RETRY5", "",
					  /* glibc regcomp expands these exponentially (fuzzer find: OOM) */
					  "RETRY-a++++++++++++++++++++++++++++++++",
					  "RETRY-((((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		spec_on_failure of;
		bool okp = spec_parse_on_failure(bad[i], &of, NULL);
		ok(!okp, "on-failure '%s' rejected", bad[i]);
		if (okp)
			free(of.retry_regex);
	}

	result r = parse("version: 0.2\nphases:\n  build:\n    commands: [\"echo fine\"]\n    on-failure: SOMETIMES\n");
	ok_rejected(r, "on-failure SOMETIMES");
	const spec_diag *g = find(&r, SPEC_DIAG_ERROR, 5, "invalid on-failure value");
	ok(g != NULL, "on-failure error at line 5");
	if (g) {
		is_str(g->msg,
		       "invalid on-failure value 'SOMETIMES' (expected ABORT, CONTINUE, RETRY, RETRY-<count>, RETRY-<regex> or RETRY-<count>-<regex>)",
		       "on-failure message");
		is_int(g->col, 17, "on-failure column is the value's");
	}
	ok(r.err && r.err->line == 5 && r.err->col == 17 && r.err->code == CBL_ESPEC, "err has the position");
	ok(r.err && r.err->file && !strcmp(r.err->file, "buildspec.yml"), "err has the file");
	ok(r.err && g && !strcmp(r.err->msg, g->msg), "err msg is the message text");
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    commands: [a]\n    on-failure: RETRY-2-(\n");
	ok_err(r, 5, "the regex does not compile", "bad regex explained");
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    commands: [a]\n    on-failure: [ABORT]\n");
	ok_err(r, 5, "on-failure must be one of", "on-failure list rejected");
	done(&r);
}

static void test_conformance_c09(void)
{
	const char *shared = tap_shared();
	if (!shared) {
		skip("conformance c09: no ../shared here (CBL_SHARED)");
		return;
	}
	char *path = cbl_xasprintf("%s/conformance/c09-invalid-type/buildspec.yml", shared);
	spec_buildspec *bs = NULL;
	spec_diags d = SPEC_DIAGS_INIT;
	cbl_error *err = NULL;
	int rc = spec_parse_file(&bs, &d, path, "buildspec.yml", NULL, &err);
	is_int(rc, CBL_ESPEC, "c09-invalid-type rejected");
	ok(err && err->line == 5, "c09 error at line 5");
	cbl_buf b = CBL_BUF_INIT;
	if (d.n)
		spec_diag_format(&d, &d.items[0], &b);
	ok(!strncmp(cbl_buf_cstr(&b), "buildspec.yml:5:", 16), "c09 diag formats as buildspec.yml:5:COL");
	cbl_buf_release(&b);
	spec_buildspec_free(bs);
	spec_diags_release(&d);
	cbl_error_free(err);
	free(path);
}

static void test_runtime_versions(void)
{
	result r = parse("version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: 3.10\n"
			 "      golang: 1.20\n      dotnet: 6.0\n      nodejs: '3.10'\n    commands: [a]\n");
	ok_parse(r, "float runtime versions");
	ok_warn(r, 5, "CodeBuild reads as 3.1", "python: 3.10 warns (reads as 3.1)");
	ok_warn(r, 6, "reads as 1.2", "golang: 1.20 warns");
	ok(!has_warn(&r, 7, "reads as"), "6.0 does not warn");
	ok(!has_warn(&r, 8, "reads as"), "quoted does not warn");
	if (r.bs)
		is_str(r.bs->phases[SPEC_PHASE_INSTALL].runtime_versions.items[0].value, "3.10",
		       "source text kept");
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    runtime-versions:\n      python: 3.12\n    commands: [a]\n");
	ok_parse(r, "runtime-versions in build");
	ok_warn(r, 4, "only used in the install phase", "runtime-versions outside install warns");
	done(&r);

	r = parse("version: 0.2\nphases:\n  install:\n    runtime-versions:\n    commands: [a]\n");
	ok_err(r, 4, "must name at least one runtime", "empty runtime-versions rejected");
	done(&r);

	r = parse("version: 0.2\nphases:\n  install:\n    runtime-versions: {}\n    commands: [a]\n");
	ok_err(r, 4, "must name at least one runtime", "{} runtime-versions rejected");
	done(&r);

	r = parse("version: 0.2\nphases:\n  install:\n    runtime-versions:\n      - python: 3.12\n    commands: [a]\n");
	ok_err(r, 4, "runtime-versions must be a mapping", "list runtime-versions rejected");
	done(&r);
}

static void test_type_errors(void)
{
	result r = parse("version: 0.2\nphases:\n  build:\n    commands: [a]\ncache:\n  - node_modules/**/*\n");
	ok_err(r, 5, "cache must be a mapping", "cache list");
	done(&r);

	r = parse("version: 0.2\nenv:\n  variables:\n    secrets-manager:\n      TOKEN: x\n"
		  "phases:\n  build:\n    commands: [a]\n");
	const spec_diag *g = find(&r, SPEC_DIAG_ERROR, 4, "env.variables.secrets-manager must be a string, not a mapping");
	ok(g != NULL, "env variable mapping error");
	if (g)
		is_int(g->col, 5, "env variable error column");
	ok_warn(r, 4, "belongs directly under env", "misplaced env key hint");
	done(&r);

	r = parse("version: 0.2\nenv: [a]\nproxy: x\nartifacts: [a]\nreports: x\nbatch: [x]\n"
		  "phases:\n  build:\n    commands: [a]\n");
	ok_err(r, 2, "env must be a mapping, not a list", "env list");
	ok_err(r, 3, "proxy must be a mapping, not a string", "proxy string");
	ok_err(r, 4, "artifacts must be a mapping", "artifacts list");
	ok_err(r, 5, "reports must be a mapping", "reports string");
	ok_err(r, 6, "batch must be a mapping", "batch list");
	done(&r);

	r = parse("version: 0.2\nrun-as: [a]\nenv:\n  shell: {a: b}\n  variables: [A]\n  parameter-store: x\n"
		  "  exported-variables: {A: b}\nphases:\n  build:\n    run-as: [x]\n    commands: [a]\n");
	ok_err(r, 2, "run-as must be a string, not a list", "run-as list");
	ok_err(r, 4, "env.shell must be a string, not a mapping", "shell mapping");
	ok_err(r, 5, "env.variables must be a mapping of NAME: value, not a list", "variables list");
	ok_err(r, 6, "env.parameter-store must be a mapping", "parameter-store string");
	ok_err(r, 7, "env.exported-variables must be a list of strings, not a mapping", "exported mapping");
	ok_err(r, 10, "phases.build.run-as must be a string", "phase run-as list");
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    commands: [a]\n"
		  "artifacts:\n  files: [a]\n  discard-paths: maybe\n  enable-symlinks: [yes]\n"
		  "reports:\n  g:\n    files: [x]\n    discard-paths: 1\n    file-format: JUNIT\n  h: [x]\n");
	g = find(&r, SPEC_DIAG_ERROR, 7, "artifacts.discard-paths must be a boolean (yes/no/true/false/on/off), not 'maybe'");
	ok(g != NULL, "bad boolean");
	if (g)
		is_int(g->col, 18, "bad boolean column is the value's");
	ok_err(r, 8, "artifacts.enable-symlinks must be a boolean", "boolean list");
	ok_err(r, 12, "reports.g.discard-paths must be a boolean", "numeric boolean");
	ok_err(r, 13, "reports.g.file-format 'JUNIT' is not valid (expected one of CUCUMBERJSON, JUNITXML", "bad file-format");
	ok_err(r, 14, "reports.h must be a mapping", "report group list");
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    commands: [a]\nreports:\n  g:\n    base-directory: x\n");
	ok_err(r, 6, "reports.g.files is required", "report files required");
	done(&r);

	/* every boolean spelling */
	static const char *const yes[] = {"yes", "Yes", "TRUE", "true", "on", "On"};
	static const char *const no[] = {"no", "NO", "false", "False", "off", "OFF"};
	bool all = true;
	for (size_t i = 0; i < 6; i++) {
		char *y = cbl_xasprintf("version: 0.2\nphases: {build: {commands: [a]}}\nenv:\n  git-credential-helper: %s\n"
					"proxy: {logs: %s}\n", yes[i], no[i]);
		r = parse(y);
		if (!r.bs || !r.bs->env.git_credential_helper || r.bs->proxy.logs)
			all = false;
		done(&r);
		free(y);
	}
	ok(all, "yes/no/true/false/on/off in any case");
}

static void test_unknown_keys(void)
{
	result r = parse("versions: 0.2\nversion: 0.2\nphases:\n  build:\n    comands: [a]\n    finaly: [b]\n"
			 "  install:\n    runtime-verions:\n      python: 3.12\n    commands: [x]\n"
			 "artifacts:\n  files: [a]\n  colour: red\n");
	ok_parse(r, "unknown keys are warnings");
	ok_warn(r, 1, "unknown key 'versions' at the top level (did you mean 'version'?)", "versions -> version");
	ok_warn(r, 5, "unknown key 'comands' in phases.build (did you mean 'commands'?)", "comands -> commands");
	ok_warn(r, 6, "unknown key 'finaly' in phases.build (did you mean 'finally'?)", "finaly -> finally");
	ok_warn(r, 8, "did you mean 'runtime-versions'", "runtime-verions -> runtime-versions");
	ok_warn(r, 13, "unknown key 'colour' in artifacts", "unknown artifacts key");
	ok_warn(r, 4, "phase 'build' has no commands", "typo leaves the phase without commands");
	done(&r);

	r = parse_strict("version: 0.2\nphases:\n  build:\n    commands: [a]\n    finaly: [b]\n");
	ok_rejected(r, "unknown key under strict");
	ok_err(r, 5, "unknown key 'finaly'", "unknown key is an error under strict");
	done(&r);

	r = parse("version: 0.2\nphases:\nbuild:\n  commands: [a]\n");
	ok_warn(r, 3, "phases belong under 'phases:'", "phase at top level hint");
	done(&r);
}

static void test_strict_counts(void)
{
	/* strict turns exactly the warnings into errors, with the same messages */
	const char *y = "version: 0.2\nfoo: 1\nphases:\n  install:\n  build:\n    commands: make\n"
			"artifacts:\n  files: x\ncache:\n  paths:\n";
	result a = parse(y), b = parse_strict(y);
	ok(a.rc == 0 && a.d.nwarnings == 5, "5 warnings by default (%zu)", a.d.nwarnings);
	ok(b.rc == CBL_ESPEC && b.d.nerrors == a.d.nwarnings && b.d.nwarnings == 0, "the same 5 are errors under strict");
	bool same = a.d.n == b.d.n;
	for (size_t i = 0; same && i < a.d.n; i++)
		same = !strcmp(a.d.items[i].msg, b.d.items[i].msg) && a.d.items[i].line == b.d.items[i].line;
	ok(same, "same messages and positions");
	done(&a);
	done(&b);
}

/* One line per shape: the text after "version: 0.2\nphases: {build: {commands: [a]}}\n"
 * (so it starts on line 3) and the diagnostic it must produce. */
static void test_shapes(void)
{
	static const struct {
		const char *yaml;
		spec_severity sev;
		int line;
		const char *msg;
	} cases[] = {
		{"env:\n", SPEC_DIAG_WARNING, 3, "env is empty (null)"},
		{"env:\n  variables:\n    my-var: x\n", SPEC_DIAG_WARNING, 5, "'my-var' is not a valid shell variable name"},
		{"env:\n  variables:\n", SPEC_DIAG_WARNING, 4, "env.variables is empty (null)"},
		{"env:\n  shell: powershell.exe\n", SPEC_DIAG_WARNING, 4, "is a Windows shell"},
		{"env:\n  git-credential-helper: sometimes\n", SPEC_DIAG_ERROR, 4, "env.git-credential-helper must be a boolean"},
		{"env:\n  secrets-manager: [a]\n", SPEC_DIAG_ERROR, 4, "env.secrets-manager must be a mapping of NAME: value, not a list"},
		{"env:\n  variables:\n    A: [1]\n", SPEC_DIAG_ERROR, 5, "env.variables.A must be a string, not a list"},
		{"env:\n  varaibles: {A: b}\n", SPEC_DIAG_WARNING, 4, "unknown key 'varaibles' in env (did you mean 'variables'?)"},
		{"environment_variables:\n", SPEC_DIAG_WARNING, 3, "environment_variables is empty (null)"},
		{"environment_variables: [a]\n", SPEC_DIAG_ERROR, 3, "environment_variables must be a mapping, not a list"},
		{"environment_variables:\n  plaintext: {A: b}\n", SPEC_DIAG_WARNING, 3, "version 0.2 uses env.variables"},
		{"environment_variables:\n  plain: {A: b}\n", SPEC_DIAG_WARNING, 4, "unknown key 'plain' in environment_variables"},
		{"proxy:\n", SPEC_DIAG_WARNING, 3, "proxy is empty (null)"},
		{"proxy:\n  upload: yes\n", SPEC_DIAG_WARNING, 4, "unknown key 'upload' in proxy"},
		{"proxy:\n  logs: 2\n", SPEC_DIAG_ERROR, 4, "proxy.logs must be a boolean (yes/no/true/false/on/off), not '2'"},
		{"run-as:\n", SPEC_DIAG_WARNING, 3, "run-as is empty (null); ignored"},
		{"reports:\n", SPEC_DIAG_WARNING, 3, "reports is empty (null)"},
		{"reports:\n  g:\n    files: [a]\n    file-format: [JUNITXML]\n", SPEC_DIAG_ERROR, 6, "reports.g.file-format must be a string, not a list"},
		{"reports:\n  g:\n    files: [a]\n    format: JUNITXML\n", SPEC_DIAG_WARNING, 6, "unknown key 'format' in reports.g"},
		{"reports:\n  g:\n    files:\n", SPEC_DIAG_ERROR, 5, "reports.g.files is empty (null)"},
		{"reports: {a: {files: [x]}, b: {files: [x]}, c: {files: [x]}, d: {files: [x]}, e: {files: [x]}, f: {files: [x]}}\n",
		 SPEC_DIAG_WARNING, 3, "at most 5 per project"},
		{"cache:\n", SPEC_DIAG_WARNING, 3, "cache is empty (null)"},
		{"cache:\n  paths: [x]\n  action: [save]\n", SPEC_DIAG_ERROR, 5, "cache.action must be restore or save, not a list"},
		{"cache:\n  paths: [x]\n  pahts: [y]\n", SPEC_DIAG_WARNING, 5, "unknown key 'pahts' in cache (did you mean 'paths'?)"},
		{"cache:\n  paths: [x]\n  fallback-keys: [a]\n", SPEC_DIAG_WARNING, 5, "cache.fallback-keys is ignored without cache.key"},
		{"artifacts:\n  files: [a]\n  secondary-artifacts:\n", SPEC_DIAG_WARNING, 5, "artifacts.secondary-artifacts is empty (null)"},
		{"artifacts:\n  files: [a]\n  secondary-artifacts: [a]\n", SPEC_DIAG_ERROR, 5, "artifacts.secondary-artifacts must be a mapping"},
		{"artifacts:\n  files: [a]\n  type: zip\n", SPEC_DIAG_WARNING, 5, "artifacts.type is a version 0.1 key"},
		{"artifacts:\n  files: [a]\n  exclude-paths: x\n", SPEC_DIAG_WARNING, 5, "artifacts.exclude-paths is a single string"},
		{"artifacts:\n  files: [{a: b}]\n", SPEC_DIAG_ERROR, 4, "artifacts.files[0] must be a string, not a mapping"},
		{"artifacts:\n  files: [a]\n  name: {a: b}\n", SPEC_DIAG_ERROR, 5, "artifacts.name must be a string, not a mapping"},
		{"artifacts:\n  files: [a]\n  secondary-artifacts:\n    s:\n      files: [b]\n      secondary-artifacts: {}\n",
		 SPEC_DIAG_WARNING, 8, "unknown key 'secondary-artifacts' in artifacts.secondary-artifacts.s"},
		{"batch:\n", SPEC_DIAG_WARNING, 3, "batch is empty (null)"},
		{"batch:\n  build-list: [x]\n", SPEC_DIAG_ERROR, 4, "batch.build-list[0] must be a mapping with an identifier, not a string"},
		{"batch:\n  build-list:\n    - identifier: a\n      env: [x]\n", SPEC_DIAG_ERROR, 6, "batch.build-list[0].env must be a mapping, not a list"},
		{"batch:\n  build-list:\n    - identifier: a\n      env:\n", SPEC_DIAG_WARNING, 6, "batch.build-list[0].env is empty (null)"},
		{"batch:\n  build-list:\n    - identifier: a\n      env: {imag: x}\n", SPEC_DIAG_WARNING, 6, "did you mean 'image'"},
		{"batch:\n  build-graph: {a: b}\n", SPEC_DIAG_ERROR, 4, "batch.build-graph must be a list of builds, not a mapping"},
		{"batch:\n  build-matrix: [a]\n", SPEC_DIAG_ERROR, 4, "batch.build-matrix must be a mapping (static:, dynamic:), not a list"},
		{"batch:\n  build-matrix:\n    statik: {}\n", SPEC_DIAG_WARNING, 5, "unknown key 'statik' in batch.build-matrix (did you mean 'static'?)"},
		{"batch:\n  build-matrix:\n    static: [a]\n", SPEC_DIAG_ERROR, 5, "batch.build-matrix.static must be a mapping, not a list"},
		{"batch:\n  build-matrix:\n    static:\n      buildspec: x.yml\n", SPEC_DIAG_WARNING, 6, "unknown key 'buildspec' in batch.build-matrix.static"},
		{"batch:\n  build-matrix:\n    dynamic:\n      env: [a]\n", SPEC_DIAG_ERROR, 6, "batch.build-matrix.dynamic.env must be a mapping, not a list"},
		{"batch:\n  build-matrix:\n    dynamic:\n      env:\n        variables: [a]\n", SPEC_DIAG_ERROR, 7, "batch.build-matrix.dynamic.env.variables must be a mapping of NAME: [values], not a list"},
		{"batch:\n  build-matrix:\n    dynamic:\n      env:\n        images: [a]\n", SPEC_DIAG_WARNING, 7, "did you mean 'image'"},
		{"batch:\n  build-fanout: [a]\n", SPEC_DIAG_ERROR, 4, "batch.build-fanout must be a mapping (parallelism:), not a list"},
		{"batch:\n  build-fanout:\n    ignore-failure: yes\n", SPEC_DIAG_ERROR, 4, "batch.build-fanout.parallelism is required"},
		{"batch:\n  build-fanout:\n    parallelism: [2]\n", SPEC_DIAG_ERROR, 5, "batch.build-fanout.parallelism must be an integer, not a list"},
		{"batch:\n  build-fanout:\n    parallelism: 2\n    paralelism: 3\n", SPEC_DIAG_WARNING, 6, "did you mean 'parallelism'"},
		{"batch:\n  build-fanout:\n    parallelism: -1\n", SPEC_DIAG_ERROR, 5, "must be an integer of at least 1, not '-1'"},
		{"batch:\n  buildlist: []\n", SPEC_DIAG_WARNING, 4, "unknown key 'buildlist' in batch (did you mean 'build-list'?)"},
		{"<<: {env: {variables: {M: merged}}}\n", SPEC_DIAG_WARNING, 0, "env.variables.M"},
		{"x: {<<: 5}\n", SPEC_DIAG_WARNING, 3, "unknown key 'x'"},
		/* identifiers and group names are names, never paths */
		{"artifacts:\n  files: [a]\n  secondary-artifacts:\n    ../../victimdir:\n      files: [b]\n",
		 SPEC_DIAG_ERROR, 6, "artifact identifier '../../victimdir' is not valid"},
		{"artifacts:\n  files: [a]\n  secondary-artifacts:\n    /tmp/escaped:\n      files: [b]\n",
		 SPEC_DIAG_ERROR, 6, "artifact identifier '/tmp/escaped' is not valid"},
		{"artifacts:\n  files: [a]\n  secondary-artifacts:\n    a.b:\n      files: [b]\n",
		 SPEC_DIAG_ERROR, 6, "artifact identifier 'a.b' is not valid"},
		{"reports:\n  ../../x:\n    files: [a]\n", SPEC_DIAG_ERROR, 4,
		 "report group '../../x' is not a valid report group name or ARN"},
		{"reports:\n  arn:aws:codebuild:us-east-1:1:report-group/../x:\n    files: [a]\n", SPEC_DIAG_ERROR, 4,
		 "is not a valid report group name or ARN"},
		{"artifacts:\n  files: [a]\n  name: ../../out\n", SPEC_DIAG_WARNING, 5,
		 "artifacts.name '../../out' leads outside the artifacts directory"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *y = cbl_xasprintf("version: 0.2\nphases: {build: {commands: [a]}}\n%s", cases[i].yaml);
		result r = parse(y);
		if (cases[i].line == 0 && !strcmp(cases[i].msg, "env.variables.M")) {
			/* a merge at the top level brings env in */
			ok(r.bs && r.bs->env.variables.n == 1 && !strcmp(r.bs->env.variables.items[0].value, "merged"),
			   "top-level merge key");
		} else {
			ok_diag(r, cases[i].sev, cases[i].line, cases[i].msg, "shape %zu: %s", i, cases[i].msg);
		}
		done(&r);
		free(y);
	}

	result r = parse("version: 0.1\nenv:\n  variables: {A: b}\nphases:\n  build:\n    commands: [a]\n    on-failure: ABORT\n");
	ok_warn(r, 2, "env is a version 0.2 key", "env in 0.1 warns");
	ok_warn(r, 7, "on-failure is a version 0.2 key", "on-failure in 0.1 warns");
	done(&r);
}

static void test_names(void)
{
	ok(spec_identifier_valid("docs") && spec_identifier_valid("build-output_1") &&
		   spec_identifier_valid("A9"),
	   "identifiers: letters, digits, '-', '_'");
	ok(!spec_identifier_valid("") && !spec_identifier_valid("..") && !spec_identifier_valid("a/b") &&
		   !spec_identifier_valid("../../victimdir") && !spec_identifier_valid("a.zip"),
	   "identifiers: never a path or a dotted name");
	char long_id[200];
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[127] = '\0';
	ok(spec_identifier_valid(long_id), "identifiers: 127 characters");
	long_id[127] = 'a';
	long_id[128] = '\0';
	ok(!spec_identifier_valid(long_id), "identifiers: not 128");
	ok(spec_report_group_valid("my-group_1") &&
		   spec_report_group_valid("arn:aws:codebuild:us-east-1:123456789012:report-group/g-1"),
	   "report groups: a name or an ARN");
	ok(!spec_report_group_valid("a/b") && !spec_report_group_valid("arn:aws:codebuild:x:1:report-group/a/../b") &&
		   !spec_report_group_valid("arn:aws:s3:::bucket"),
	   "report groups: never a path");
	ok(spec_artifact_name_escapes("../x") && spec_artifact_name_escapes("a/../../x") &&
		   spec_artifact_name_escapes("/abs") && spec_artifact_name_escapes(".."),
	   "artifact names that climb out");
	ok(!spec_artifact_name_escapes("builds/1/app") && !spec_artifact_name_escapes("a..b"),
	   "artifact names below the directory");
}

static void test_duplicates(void)
{
	result r = parse("version: 0.2\nenv:\n  variables:\n    A: one\n    B: two\n    A: three\n"
			 "phases:\n  build:\n    commands: [first]\n  build:\n    commands: [second]\n");
	ok_parse(r, "duplicate keys");
	ok_warn(r, 6, "duplicate key 'A' in env.variables (first at line 4)", "duplicate variable warns");
	ok_warn(r, 10, "duplicate key 'build' in phases", "duplicate phase warns");
	if (r.bs) {
		is_int(r.bs->env.variables.n, 2, "duplicate replaced, not appended");
		is_str(r.bs->env.variables.items[0].key, "A", "duplicate keeps the first position");
		is_str(r.bs->env.variables.items[0].value, "three", "later value wins");
		is_str(r.bs->phases[SPEC_PHASE_BUILD].commands.items[0].s, "second", "later phase wins");
	}
	done(&r);
}

static void test_artifacts(void)
{
	result r = parse("version: 0.2\nphases: {build: {commands: [a]}}\n"
			 "artifacts:\n  secondary-artifacts:\n    one:\n      files: [a]\n");
	ok_err(r, 3, "artifacts.files is required, even when only secondary-artifacts are defined",
	       "secondary-only artifacts rejected");
	done(&r);
	{ /* a run's parse leaves it to UPLOAD_ARTIFACTS, as the service does */
		const char *y = "version: 0.2\nphases: {build: {commands: [a]}}\n"
				"artifacts:\n  secondary-artifacts:\n    one:\n      files: [a]\n";
		spec_parse_opts o = SPEC_PARSE_OPTS_INIT;
		o.upload_time = true;
		r = (result){0};
		r.d = (spec_diags)SPEC_DIAGS_INIT;
		r.rc = spec_parse_buffer(&r.bs, &r.d, "buildspec.yml", y, strlen(y), &o, &r.err);
		ok(r.rc == 0 && r.d.n == 0, "upload_time: no diagnostic");
		ok(r.bs && r.bs->artifacts.primary_files_missing, "upload_time: flagged for the runner");
		done(&r);
	}

	r = parse("version: 0.2\nphases: {build: {commands: [a]}}\nartifacts:\n  type: NO_ARTIFACTS\n");
	ok_parse(r, "NO_ARTIFACTS without files");
	ok_warn(r, 3, "artifacts has no 'files'", "NO_ARTIFACTS warns");
	done(&r);

	r = parse("version: 0.2\nphases: {build: {commands: [a]}}\nartifacts:\n  name: x\n");
	ok_err(r, 3, "artifacts.files is required", "artifacts without files");
	done(&r);

	r = parse("version: 0.2\nphases: {build: {commands: [a]}}\nartifacts:\n  files:\n  base-directory: x\n");
	ok_err(r, 4, "artifacts.files is empty (null)", "files null rejected");
	done(&r);

	r = parse("version: 0.2\nphases: {build: {commands: [a]}}\nartifacts:\n  files: '**/*'\n");
	ok_parse(r, "files scalar");
	ok_warn(r, 4, "artifacts.files is a single string", "files scalar warns");
	if (r.bs)
		is_str(r.bs->artifacts.primary.files.items[0].s, "**/*", "scalar files as one element");
	done(&r);

	r = parse("version: 0.2\nphases: {build: {commands: [a]}}\nartifacts:\n");
	ok_parse(r, "null artifacts");
	ok_warn(r, 3, "artifacts is empty", "null artifacts warns");
	if (r.bs)
		ok(!r.bs->artifacts.present, "null artifacts not present");
	done(&r);

	r = parse("version: 0.2\nphases: {build: {commands: [a]}}\nartifacts:\n  files: [a]\n"
		  "  secondary-artifacts:\n    s1:\n      name: x\n    s2: [a]\n");
	ok_err(r, 6, "artifacts.secondary-artifacts.s1.files is required", "secondary without files");
	ok_err(r, 8, "artifacts.secondary-artifacts.s2 must be a mapping", "secondary list");
	done(&r);
}

static void test_cache(void)
{
	result r = parse("version: 0.2\nphases: {build: {commands: [a]}}\ncache:\n  paths:\n    # - x\n");
	ok_parse(r, "cache.paths null");
	ok_warn(r, 4, "cache.paths is empty (null)", "null paths warns");
	done(&r);

	r = parse("version: 0.2\nphases: {build: {commands: [a]}}\ncache:\n  key: k\n");
	ok_err(r, 3, "cache.paths is required", "cache without paths");
	done(&r);

	r = parse("version: 0.2\nphases: {build: {commands: [a]}}\ncache:\n  paths: [x]\n  key: k\n"
		  "  fallback-keys: [a, b, c, d, e, f]\n  action: both\n");
	ok_err(r, 6, "cache.fallback-keys has 6 entries; at most 5", "more than 5 fallback keys");
	ok_err(r, 7, "cache.action 'both' is not valid (expected restore or save)", "bad action");
	done(&r);

	r = parse("version: 0.2\nphases: {build: {commands: [a]}}\ncache:\n  paths: x\n  action: save\n");
	ok_parse(r, "cache save");
	if (r.bs) {
		is_int(r.bs->cache.action, SPEC_CACHE_ACTION_SAVE, "action save");
		is_int(r.bs->cache.pos.line, 3, "cache position");
	}
	done(&r);

	r = parse("version: 0.2\nphases: {build: {commands: [a]}}\ncache: node_modules\n");
	ok_err(r, 3, "cache must be a mapping (with paths:), not a string", "cache string");
	done(&r);
}

static void test_env_warnings(void)
{
	result r = parse("version: 0.2\nenv:\n  variables:\n    CODEBUILD_X: 1\n  exported-variables: IMAGE\n"
			 "  shell: /bin/bash\nphases: {build: {commands: [a]}}\n");
	ok_parse(r, "env warnings");
	ok_warn(r, 4, "reserved", "CODEBUILD_ variable warns");
	ok_warn(r, 5, "env.exported-variables is a single string", "scalar exported-variables warns");
	ok_warn(r, 6, "env.shell '/bin/bash' is not one of", "unusual shell warns");
	if (r.bs)
		is_str(r.bs->env.exported_variables.items[0].s, "IMAGE", "scalar exported-variables as one");
	done(&r);

	r = parse("version: 0.2\nenv:\n  exported-variables:\n    - AWS_REGION\n    - OK\n"
		  "phases: {build: {commands: [a]}}\n");
	ok_warn(r, 4, "starts with AWS_", "AWS_ export warns");
	done(&r);

	r = parse("version: 0.2\nenv:\n  variables:\n    EMPTY:\n    Q: ''\nphases: {build: {commands: [a]}}\n");
	ok_parse(r, "null variable value");
	if (r.bs) {
		is_str(r.bs->env.variables.items[0].value, "", "null value is the empty string");
		is_str(r.bs->env.variables.items[1].value, "", "quoted empty string");
	}
	ok_warn(r, 4, "env.variables.EMPTY is empty (null)", "null value warns");
	done(&r);
}

static void test_anchors(void)
{
	result r = parse("version: 0.2\n"
			 "x-defaults:\n"
			 "  common-vars: &vars\n"
			 "    REGION: eu-west-1\n"
			 "    STAGE: dev\n"
			 "  more-vars: &more\n"
			 "    STAGE: prod\n"
			 "    EXTRA: 1\n"
			 "  setup: &setup\n"
			 "    - echo setup\n"
			 "    - echo more\n"
			 "env:\n"
			 "  variables:\n"
			 "    <<: [*vars, *more]\n"
			 "    OWN: x\n"
			 "    REGION: us-east-1\n"
			 "phases:\n"
			 "  install:\n"
			 "    commands: *setup\n"
			 "  build: &b\n"
			 "    commands:\n"
			 "      - echo build\n"
			 "  post_build: *b\n");
	ok_parse(r, "anchors, aliases and merge keys");
	ok_warn(r, 2, "unknown key 'x-defaults'", "extension key warns only");
	if (r.bs) {
		const spec_kvlist *v = &r.bs->env.variables;
		const char *region = NULL, *stage = NULL, *extra = NULL, *own = NULL;
		for (size_t i = 0; i < v->n; i++) {
			if (!strcmp(v->items[i].key, "REGION"))
				region = v->items[i].value;
			if (!strcmp(v->items[i].key, "STAGE"))
				stage = v->items[i].value;
			if (!strcmp(v->items[i].key, "EXTRA"))
				extra = v->items[i].value;
			if (!strcmp(v->items[i].key, "OWN"))
				own = v->items[i].value;
		}
		is_int(v->n, 4, "merged variables");
		is_str(region, "us-east-1", "explicit key beats merged");
		is_str(stage, "dev", "earlier merge source wins");
		is_str(extra, "1", "later merge source fills gaps");
		is_str(own, "x", "own key kept");
		is_int(r.bs->phases[SPEC_PHASE_INSTALL].commands.n, 2, "alias list");
		is_str(r.bs->phases[SPEC_PHASE_POST_BUILD].commands.items[0].s, "echo build", "alias phase");
	}
	ok(!has_warn(&r, 0, "duplicate"), "merge overrides are not duplicate warnings");
	done(&r);

	r = parse("version: 0.2\nbase: &base\n  commands: [echo base]\n  on-failure: ABORT\n"
		  "phases:\n  build:\n    <<: *base\n    commands: [echo own]\n");
	ok_parse(r, "merge key into a phase");
	if (r.bs) {
		is_str(r.bs->phases[SPEC_PHASE_BUILD].commands.items[0].s, "echo own", "own commands win");
		is_int(r.bs->phases[SPEC_PHASE_BUILD].on_failure.kind, SPEC_ON_FAILURE_ABORT, "merged on-failure");
	}
	done(&r);

	/* an anchor redefined inside its own collection: the later definition wins */
	r = parse("version: 0.2\nx: &a [&a inner]\nphases:\n  build:\n    commands: [*a]\n");
	ok_parse(r, "anchor redefined inside its collection");
	if (r.bs)
		is_str(r.bs->phases[SPEC_PHASE_BUILD].commands.items[0].s, "inner", "later anchor definition wins");
	done(&r);

	r = parse("version: 0.2\nx: &a [*a]\nphases:\n  build:\n    commands: [a]\n");
	ok_err(r, 2, "refers to a node that contains it", "self-referencing alias rejected");
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    <<: [a, b]\n    commands: [x]\n");
	ok_err(r, 4, "merge key '<<' in phases.build: list item must be a mapping", "merge of scalars rejected");
	done(&r);
}

static void test_hostile(void)
{
	/* billion laughs */
	const char *bomb = "version: 0.2\n"
			   "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
			   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
			   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
			   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
			   "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
			   "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
			   "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
			   "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
			   "phases:\n  build:\n    commands: *h\n";
	result r = parse(bomb);
	ok_rejected(r, "alias bomb");
	ok_err(r, 0, "more than 100000 nodes", "alias bomb message");
	done(&r);

	/* merge-key bomb */
	cbl_buf b = CBL_BUF_INIT;
	cbl_buf_puts(&b, "version: 0.2\nm0: &m0 {k: v}\n");
	for (int i = 1; i < 20; i++)
		cbl_buf_printf(&b, "m%d: &m%d {<<: [*m%d, *m%d, *m%d, *m%d], k%d: v}\n", i, i, i - 1, i - 1, i - 1, i - 1, i);
	cbl_buf_puts(&b, "phases:\n  build:\n    <<: *m19\n    commands: [a]\n");
	r = parse(cbl_buf_cstr(&b));
	ok_rejected(r, "merge-key bomb");
	cbl_buf_release(&b);
	done(&r);

	/* deep nesting */
	cbl_buf_puts(&b, "version: 0.2\nphases: {build: {commands: [a]}}\nx: ");
	for (int i = 0; i < 200; i++)
		cbl_buf_putc(&b, '[');
	for (int i = 0; i < 200; i++)
		cbl_buf_putc(&b, ']');
	cbl_buf_putc(&b, '\n');
	r = parse(cbl_buf_cstr(&b));
	ok_err(r, 3, "deeper than 64 levels", "deep nesting rejected");
	cbl_buf_release(&b);
	done(&r);

	/* the limit is 64 nested collections, scalars not counted */
	for (int depth = 63; depth <= 64; depth++) {
		cbl_buf_puts(&b, "version: 0.2\nphases: {build: {commands: [a]}}\nx: ");
		for (int i = 0; i < depth; i++)
			cbl_buf_putc(&b, '[');
		cbl_buf_putc(&b, 'v');
		for (int i = 0; i < depth; i++)
			cbl_buf_putc(&b, ']');
		cbl_buf_putc(&b, '\n');
		r = parse(cbl_buf_cstr(&b));
		if (depth == 63)
			ok_parse(r, "64 nested collections (mapping + 63 lists)");
		else
			ok_err(r, 3, "deeper than 64 levels", "65 nested collections rejected");
		cbl_buf_release(&b);
		done(&r);
	}

	/* nesting through aliases counts too */
	cbl_buf_puts(&b, "version: 0.2\nphases: {build: {commands: [a]}}\nx: &deep ");
	for (int i = 0; i < 40; i++)
		cbl_buf_putc(&b, '[');
	for (int i = 0; i < 40; i++)
		cbl_buf_putc(&b, ']');
	cbl_buf_puts(&b, "\ny: ");
	for (int i = 0; i < 30; i++)
		cbl_buf_putc(&b, '[');
	cbl_buf_puts(&b, "*deep");
	for (int i = 0; i < 30; i++)
		cbl_buf_putc(&b, ']');
	cbl_buf_putc(&b, '\n');
	r = parse(cbl_buf_cstr(&b));
	ok_err(r, 0, "deeper than 64 levels (counting aliases)", "nesting through an alias rejected");
	cbl_buf_release(&b);
	done(&r);

	/* very deep nesting: libyaml must not recurse either */
	for (int i = 0; i < 100000; i++)
		cbl_buf_putc(&b, '[');
	r = parse(cbl_buf_cstr(&b));
	ok_rejected(r, "100000 open brackets");
	cbl_buf_release(&b);
	done(&r);

	/* recursive alias */
	r = parse("version: 0.2\nphases: &p\n  build:\n    commands: [a]\n    x: *p\n");
	ok(r.rc == CBL_ESPEC, "recursive alias rejected or unloadable");
	done(&r);

	/* NUL byte, invalid UTF-8, NUL escapes */
	const char nul[] = "version: 0.2\nphases:\n  build:\n    commands: [\"a\0b\"]\n";
	r = parse_n(nul, sizeof(nul) - 1, false);
	ok_rejected(r, "raw NUL byte");
	ok_err(r, 4, "YAML syntax error", "raw NUL is a YAML error on its line");
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    commands: [\"a\\0b\"]\n");
	ok_err(r, 4, "contains a NUL character", "escaped NUL rejected");
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    commands: [\"caf\xff\"]\n");
	ok_err(r, 4, "YAML syntax error: invalid", "invalid UTF-8 rejected");
	done(&r);

	r = parse_n("", 0, false);
	ok_err(r, 1, "the buildspec is empty", "empty input");
	done(&r);

	r = parse("# only a comment\n");
	ok_rejected(r, "comment only");
	done(&r);

	r = parse("- version: 0.2\n");
	ok_err(r, 1, "the buildspec must be a mapping", "root list");
	done(&r);

	r = parse("just text\n");
	ok_err(r, 1, "the buildspec must be a mapping", "root scalar");
	done(&r);

	/* huge input: many commands */
	cbl_buf_puts(&b, "version: 0.2\nphases:\n  build:\n    commands:\n");
	for (int i = 0; i < 20000; i++)
		cbl_buf_printf(&b, "      - echo %d\n", i);
	r = parse(cbl_buf_cstr(&b));
	ok_parse(r, "20000 commands");
	if (r.bs)
		is_int(r.bs->phases[SPEC_PHASE_BUILD].commands.n, 20000, "all commands kept");
	cbl_buf_release(&b);
	done(&r);

	/* thousands of problems: diagnostics are capped */
	cbl_buf_puts(&b, "version: 0.2\nphases:\n  build:\n    commands:\n");
	for (int i = 0; i < 3000; i++)
		cbl_buf_puts(&b, "      - a: b\n");
	r = parse(cbl_buf_cstr(&b));
	ok_rejected(r, "3000 errors");
	ok(r.d.n <= 1001, "diagnostics capped (%zu)", r.d.n);
	ok_warn(r, 0, "too many problems", "cap is announced");
	cbl_buf_release(&b);
	done(&r);

	/* a key that is a mapping */
	r = parse("version: 0.2\n? {a: b}\n: c\nphases: {build: {commands: [a]}}\n");
	ok_err(r, 2, "has a mapping as a key", "mapping key rejected");
	done(&r);

	/* control characters in keys are escaped in messages */
	r = parse("version: 0.2\n\"a\\e[31mb\": 1\nphases: {build: {commands: [a]}}\n");
	ok_warn(r, 2, "unknown key 'a\\x1b[31mb'", "escape byte shown escaped");
	done(&r);
}

/* Inputs the fuzzer found (tests/fuzz/fuzz_spec.c), kept as regressions. */
static const char fuzz_oom_regex[] =
	"RETRY-6000000000000000\347\347\347\347\347\347\347\347++++++++++++++++++"
	"+++++++++++++++++++\347\347\347\347\347\347\347\347\347\347\347\347\347"
	"\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347"
	"\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347"
	"\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347"
	"\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347"
	"\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347\347"
	"\347\347\347\347\347\347\347\347\34700000any problems{000o many \220\215"
	"\220\235\223\232\222\215{{{{{{{{{ env:\012  . ild-liste ";

/* glibc regcomp spent ~30 s in its epsilon closure on `*+++++++++++++` */
static const char fuzz_timeout_regex[] =
	"RETRY-:i\024+++++++,2++++++++\253++0++p++\377\377\377\377\377\377\377*++"
	"+++++++++++nyste ";

static void test_fuzz_regressions(void)
{
	/* glibc regcomp exhausted memory on stacked '+' in a RETRY-<regex> */
	spec_on_failure of;
	ok(!spec_parse_on_failure(fuzz_oom_regex, &of, NULL), "fuzz oom-c3270c19: stacked repetitions refused");
	result r = parse_n(fuzz_oom_regex, sizeof(fuzz_oom_regex) - 1, false);
	ok_rejected(r, "fuzz oom-c3270c19 as a buildspec");
	done(&r);
	ok(!spec_parse_on_failure(fuzz_timeout_regex, &of, NULL), "fuzz timeout-59beb6a4: stacked repetitions refused");
	r = parse_n(fuzz_timeout_regex, sizeof(fuzz_timeout_regex) - 1, false);
	ok_rejected(r, "fuzz timeout-59beb6a4 as a buildspec");
	done(&r);
	/* the same shape, as valid UTF-8, in a buildspec */
	r = parse("version: 0.2\nphases:\n  build:\n    commands: [a]\n"
		  "    on-failure: RETRY-6000000x++++++++++++++++++++++++++++++++++++++\n");
	ok_err(r, 5, "repeats a repetition", "fuzz oom-c3270c19 as on-failure");
	done(&r);
}

static void test_yaml_errors(void)
{
	result r = parse("version: 0.2\nphases:\n  build:\n    commands:\n      - echo a\n     - echo b\n");
	ok_rejected(r, "bad indentation");
	ok(r.d.n == 1 && r.d.nerrors == 1, "one error for a YAML syntax error");
	ok_err(r, 6, "YAML syntax error: ", "syntax error at the problem line");
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    commands:\n\t- echo\n");
	const spec_diag *g = find(&r, SPEC_DIAG_ERROR, 5, "YAML syntax error: found character that cannot start any token");
	ok(g != NULL, "tab indentation error at line 5");
	if (g) {
		is_int(g->col, 1, "tab error column");
		ok(strstr(g->msg, "while scanning for the next token") != NULL, "context included");
	}
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    commands: [a\n");
	ok_rejected(r, "unclosed flow sequence");
	done(&r);

	r = parse("version: 0.2\nenv: *nope\nphases: {build: {commands: [a]}}\n");
	ok_err(r, 2, "YAML syntax error: found undefined alias", "undefined alias");
	done(&r);

	r = parse("version: 0.2\nphases:\n  build:\n    commands:\n      - a: b: c\n");
	ok_err(r, 5, "mapping values are not allowed in this context", "mapping values not allowed");
	done(&r);
}

static void test_documents(void)
{
	result r = parse("version: 0.2\nphases: {build: {commands: [first]}}\n---\nversion: 0.1\n");
	ok_parse(r, "two documents");
	ok_warn(r, 3, "more than one YAML document", "second document warns");
	if (r.bs)
		is_str(r.bs->phases[SPEC_PHASE_BUILD].commands.items[0].s, "first", "first document used");
	done(&r);
}

static void test_diag_api(void)
{
	result r = parse("version: 0.2\nphases:\n  build:\n    commands: [a]\n    on-failure: NOPE\n  deploy: {}\n"
			 "cache: [x]\n  \n");
	ok_rejected(r, "several errors");
	bool sorted = true;
	for (size_t i = 1; i < r.d.n; i++)
		if (r.d.items[i].line < r.d.items[i - 1].line)
			sorted = false;
	ok(sorted && r.d.n >= 3, "diags sorted by line");
	ok(r.err && r.err->line == 5, "err is the first error");
	cbl_buf b = CBL_BUF_INIT;
	spec_diag_format(&r.d, &r.d.items[0], &b);
	is_str(cbl_buf_cstr(&b),
	       "buildspec.yml:5:17: error: invalid on-failure value 'NOPE' (expected ABORT, CONTINUE, RETRY, RETRY-<count>, RETRY-<regex> or RETRY-<count>-<regex>)",
	       "spec_diag_format");
	cbl_buf_release(&b);
	done(&r);

	r = parse("version: 0.2\nphases: {build: {commands: [a]}}\nfoo: 1\n");
	spec_diag_format(&r.d, &r.d.items[0], &b);
	is_str(cbl_buf_cstr(&b), "buildspec.yml:3:1: warning: unknown key 'foo' at the top level", "warning format");
	cbl_buf_release(&b);
	done(&r);

	/* diags may be NULL */
	spec_buildspec *bs = NULL;
	cbl_error *err = NULL;
	const char *bad = "version: 9\nphases: {build: {commands: [a]}}\n";
	int rc = spec_parse_buffer(&bs, NULL, "x.yml", bad, strlen(bad), NULL, &err);
	ok(rc == CBL_ESPEC && bs == NULL && err && err->line == 1 && !strcmp(err->file, "x.yml"),
	   "NULL diags: err still tells");
	cbl_error_free(err);

	err = NULL;
	rc = spec_parse_file(&bs, NULL, "/nonexistent/buildspec.yml", NULL, NULL, &err);
	is_int(rc, CBL_ENOENT, "missing file is CBL_ENOENT");
	cbl_error_free(err);

	is_str(spec_phase_yaml_name(SPEC_PHASE_PRE_BUILD), "pre_build", "yaml phase name");
	is_str(spec_phase_api_name(SPEC_PHASE_POST_BUILD), "POST_BUILD", "api phase name");
	is_str(spec_report_format_name(SPEC_REPORT_VISUALSTUDIOTRX), "VISUALSTUDIOTRX", "report format name");
	ok(!spec_report_format_is_coverage(SPEC_REPORT_CUCUMBERJSON), "test format is not coverage");
	is_str(spec_did_you_mean("pre-build", (const char *const[]){"install", "pre_build", NULL}), "pre_build",
	       "did you mean folds - and _");
	ok(spec_did_you_mean("zzz", (const char *const[]){"install", NULL}) == NULL, "no far-fetched hint");
}

int main(void)
{
	test_minimal();
	test_full();
	test_batch();
	test_versions();
	test_v01();
	test_phase_names();
	test_empty_phases();
	test_commands();
	test_block_scalars();
	test_on_failure();
	test_conformance_c09();
	test_runtime_versions();
	test_type_errors();
	test_unknown_keys();
	test_names();
	test_duplicates();
	test_strict_counts();
	test_shapes();
	test_artifacts();
	test_cache();
	test_env_warnings();
	test_anchors();
	test_hostile();
	test_fuzz_regressions();
	test_yaml_errors();
	test_documents();
	test_diag_api();
	return tap_done();
}
