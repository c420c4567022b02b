/* spec/model.c - names of the enums and freeing of spec_buildspec. */
#include "spec/spec_internal.h"
#include "util/array.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/banned.h"

static const char *const yaml_names[SPEC_PHASE_COUNT] = {"install", "pre_build", "build", "post_build"};
static const char *const api_names[SPEC_PHASE_COUNT] = {"INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD"};

const char *spec_phase_yaml_name(spec_phase_id id)
{
	return (unsigned)id < SPEC_PHASE_COUNT ? yaml_names[id] : "?";
}

const char *spec_phase_api_name(spec_phase_id id)
{
	return (unsigned)id < SPEC_PHASE_COUNT ? api_names[id] : "?";
}

static const char *const format_names[] = {
	[SPEC_REPORT_JUNITXML] = "JUNITXML",
	[SPEC_REPORT_CUCUMBERJSON] = "CUCUMBERJSON",
	[SPEC_REPORT_NUNITXML] = "NUNITXML",
	[SPEC_REPORT_NUNIT3XML] = "NUNIT3XML",
	[SPEC_REPORT_TESTNGXML] = "TESTNGXML",
	[SPEC_REPORT_VISUALSTUDIOTRX] = "VISUALSTUDIOTRX",
	[SPEC_REPORT_CLOVERXML] = "CLOVERXML",
	[SPEC_REPORT_COBERTURAXML] = "COBERTURAXML",
	[SPEC_REPORT_JACOCOXML] = "JACOCOXML",
	[SPEC_REPORT_SIMPLECOV] = "SIMPLECOV",
};

#define NFORMATS ARRAY_SIZE(format_names)

const char *spec_report_format_name(spec_report_format f)
{
	return (unsigned)f < NFORMATS ? format_names[f] : "?";
}

bool spec_report_format_is_coverage(spec_report_format f)
{
	return f == SPEC_REPORT_CLOVERXML || f == SPEC_REPORT_COBERTURAXML || f == SPEC_REPORT_JACOCOXML ||
	       f == SPEC_REPORT_SIMPLECOV;
}

static bool name_char(char c, bool dash)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       (dash && c == '-');
}

bool spec_identifier_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n < 1 || n > 127)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!name_char(id[i], true))
			return false;
	return true;
}

bool spec_report_group_valid(const char *key)
{
	if (!key)
		return false;
	const char *nm = key;
	if (!strncmp(key, "arn:", 4)) {
		const char *g = strstr(key, ":report-group/");
		if (!g)
			return false;
		nm = g + strlen(":report-group/");
	}
	size_t n = strlen(nm);
	if (n < 1 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!name_char(nm[i], true))
			return false;
	return true;
}

bool spec_artifact_name_escapes(const char *name)
{
	if (!name)
		return false;
	if (name[0] == '/')
		return true;
	for (const char *p = name; *p;) {
		const char *e = strchr(p, '/');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == 2 && p[0] == '.' && p[1] == '.')
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}

bool spec_report_format_parse(const char *s, spec_report_format *out)
{
	for (size_t i = 0; i < NFORMATS; i++) {
		if (!strcasecmp(s, format_names[i])) {
			*out = (spec_report_format)i;
			return true;
		}
	}
	return false;
}

void spec_artifact_release(spec_artifact *a)
{
	free(a->identifier);
	spec_strlist_release(&a->files);
	free(a->name);
	free(a->base_directory);
	spec_strlist_release(&a->exclude_paths);
	free(a->s3_prefix);
	free(a->type);
	memset(a, 0, sizeof(*a));
}

void spec_batch_env_release(spec_batch_env *e)
{
	free(e->compute_type);
	free(e->image);
	free(e->type);
	spec_kvlist_release(&e->variables);
	memset(e, 0, sizeof(*e));
}

static void batch_release(spec_batch *b)
{
	for (size_t i = 0; i < b->ntasks; i++) {
		spec_batch_task *t = &b->tasks[i];
		free(t->identifier);
		free(t->buildspec);
		spec_batch_env_release(&t->env);
		spec_strlist_release(&t->depend_on);
	}
	free(b->tasks);
	spec_batch_env_release(&b->matrix_static_env);
	spec_strlist_release(&b->matrix_buildspecs);
	spec_strlist_release(&b->matrix_compute_types);
	spec_strlist_release(&b->matrix_images);
	for (size_t i = 0; i < b->nmatrix_vars; i++) {
		free(b->matrix_vars[i].name);
		spec_strlist_release(&b->matrix_vars[i].values);
	}
	free(b->matrix_vars);
	memset(b, 0, sizeof(*b));
}

void spec_buildspec_free(spec_buildspec *bs)
{
	if (!bs)
		return;
	free(bs->file);
	free(bs->run_as);
	free(bs->env.shell);
	spec_kvlist_release(&bs->env.variables);
	spec_kvlist_release(&bs->env.parameter_store);
	spec_kvlist_release(&bs->env.secrets_manager);
	spec_strlist_release(&bs->env.exported_variables);
	batch_release(&bs->batch);
	for (int i = 0; i < SPEC_PHASE_COUNT; i++) {
		spec_phase *ph = &bs->phases[i];
		free(ph->run_as);
		free(ph->on_failure.retry_regex);
		spec_kvlist_release(&ph->runtime_versions);
		spec_strlist_release(&ph->commands);
		spec_strlist_release(&ph->finally);
	}
	for (size_t i = 0; i < bs->nreports; i++) {
		free(bs->reports[i].group);
		spec_strlist_release(&bs->reports[i].files);
		free(bs->reports[i].base_directory);
	}
	free(bs->reports);
	spec_artifact_release(&bs->artifacts.primary);
	for (size_t i = 0; i < bs->artifacts.nsecondary; i++)
		spec_artifact_release(&bs->artifacts.secondary[i]);
	free(bs->artifacts.secondary);
	spec_strlist_release(&bs->cache.paths);
	free(bs->cache.key);
	spec_strlist_release(&bs->cache.fallback_keys);
	free(bs);
}
