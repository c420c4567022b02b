/* runner/prices.c - the price table: what a build of each compute type
 * costs per billing unit (runner/prices.json, embedded at build time; a file
 * named by CODEBUILD_LOCAL_PRICES replaces it), with the table's source and
 * date, which every cost figure carries along. */
#include "runner/runner_internal.h"
#include "util/alloc.h"
#include "util/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/banned.h"

__asm__(".pushsection .rodata\n"
	".global runner_prices_json_start\n"
	".type runner_prices_json_start, @object\n"
	".balign 16\n"
	"runner_prices_json_start:\n"
	".incbin \"runner/prices.json\"\n"
	".global runner_prices_json_end\n"
	"runner_prices_json_end:\n"
	".byte 0\n"
	".popsection\n");
extern const char runner_prices_json_start[];
extern const char runner_prices_json_end[];

int runner_prices_load(json_t **out, cbl_error **err)
{
	const char *path = getenv("CODEBUILD_LOCAL_PRICES");
	json_error_t je;
	json_t *t;
	if (path && *path) {
		int rc = cbl_json_load_file(&t, path, 0, NULL, err);
		if (rc == CBL_EINVAL) /* PATH:LINE:COL first */
			return rc;
		if (rc < 0)
			return cbl_error_wrap(err, "CODEBUILD_LOCAL_PRICES");
	} else {
		t = json_loadb(runner_prices_json_start,
			       (size_t)(runner_prices_json_end - runner_prices_json_start), 0, &je);
		if (!t)
			return cbl_error_set(err, CBL_EINTERNAL, "the embedded price table: %s", je.text);
		path = "the embedded price table";
	}
	json_t *types = json_object_get(t, "computeTypes");
	const char *k;
	json_t *v;
	int rc = 0;
	if (!json_is_object(types))
		rc = cbl_error_set(err, CBL_EINVAL, "%s: no \"computeTypes\" object", path);
	json_object_foreach(types, k, v)
	{
		const char *unit = json_string_value(json_object_get(v, "unit"));
		if (rc)
			break;
		if (!json_is_number(json_object_get(v, "price")) || json_number_value(json_object_get(v, "price")) < 0)
			rc = cbl_error_set(err, CBL_EINVAL, "%s: computeTypes.%s: \"price\" must be a number >= 0",
					   path, k);
		else if (!unit || (strcmp(unit, "minute") && strcmp(unit, "second")))
			rc = cbl_error_set(err, CBL_EINVAL,
					   "%s: computeTypes.%s: \"unit\" must be \"minute\" or \"second\"", path, k);
	}
	if (rc) {
		json_decref(t);
		return rc;
	}
	*out = t;
	return 0;
}

static json_t *price_of(const json_t *table, const char *compute_type)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)json_object_get(table, "computeTypes"), k, v)
	if (!strcasecmp(k, compute_type))
		return v;
	return NULL;
}

bool runner_prices_cost(const json_t *table, const char *compute_type, int64_t duration_us, double *cost)
{
	const json_t *p = price_of(table, compute_type);
	if (!p)
		return false;
	double price = json_number_value(json_object_get(p, "price"));
	/* a started unit is billed whole */
	int64_t unit_us = strcmp(json_string_value(json_object_get(p, "unit")), "second") ? 60000000 : 1000000;
	int64_t units = (duration_us + unit_us - 1) / unit_us;
	if (units < 1)
		units = 1;
	*cost = price * (double)units;
	return true;
}

bool runner_prices_per_minute(const json_t *table, const char *compute_type, double *per_minute)
{
	const json_t *p = price_of(table, compute_type);
	if (!p)
		return false;
	double price = json_number_value(json_object_get(p, "price"));
	*per_minute = strcmp(json_string_value(json_object_get(p, "unit")), "second") ? price : price * 60;
	return true;
}
