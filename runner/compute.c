/* runner/compute.c - CodeBuild compute types (reference buildspec.md §8.1,
 * the user guide's figures) and what they mean for a local build's limits. */
#include "runner/runner_internal.h"

#include <string.h>
#include <strings.h>

#include "util/array.h"

#include "util/banned.h"

static const runner_compute compute_types[] = {
	{"BUILD_GENERAL1_SMALL", 3, 2},
	{"BUILD_GENERAL1_MEDIUM", 7, 4},
	{"BUILD_GENERAL1_LARGE", 15, 8},
	{"BUILD_GENERAL1_XLARGE", 70, 36},
	{"BUILD_GENERAL1_2XLARGE", 145, 72},
	/* Lambda compute: the name gives the memory; vCPUs are not published */
	{"BUILD_LAMBDA_1GB", 1, 0},
	{"BUILD_LAMBDA_2GB", 2, 0},
	{"BUILD_LAMBDA_4GB", 4, 0},
	{"BUILD_LAMBDA_8GB", 8, 0},
	{"BUILD_LAMBDA_10GB", 10, 0},
};

const runner_compute *runner_compute_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(compute_types); i++)
		if (!strcasecmp(compute_types[i].name, name))
			return &compute_types[i];
	return NULL;
}

const runner_compute *runner_compute_at(size_t i)
{
	return i < ARRAY_SIZE(compute_types) ? &compute_types[i] : NULL;
}

const char *runner_compute_names(void)
{
	return "BUILD_GENERAL1_SMALL, BUILD_GENERAL1_MEDIUM, BUILD_GENERAL1_LARGE, "
	       "BUILD_GENERAL1_XLARGE, BUILD_GENERAL1_2XLARGE, BUILD_LAMBDA_1GB, BUILD_LAMBDA_2GB, "
	       "BUILD_LAMBDA_4GB, BUILD_LAMBDA_8GB, BUILD_LAMBDA_10GB";
}
