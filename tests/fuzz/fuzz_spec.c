/* tests/fuzz/fuzz_spec.c - libFuzzer entry for the buildspec parser.
 *
 * Each input is parsed twice (default and strict); every diagnostic is
 * formatted and every string of the result is read, then everything is
 * freed (LeakSanitizer checks the rest).  Invariants that must hold for any
 * input abort the run: the result/diagnostics/error agree with the return
 * code, diagnostics are sorted, and strict turns exactly the warnings into
 * errors.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec.h"
#include "spec/spec_internal.h"
#include "util/buf.h"
#include "util/error.h"

#include "util/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                       \
	do {                              \
		if (!(cond))              \
			__builtin_trap(); \
	} while (0)

static size_t touch_str(const char *s) { return s ? strlen(s) : 0; }

static size_t touch_strlist(const spec_strlist *l)
{
	size_t n = 0;
	for (size_t i = 0; i < l->n; i++) {
		CHECK(l->items[i].s != NULL);
		n += touch_str(l->items[i].s);
	}
	return n;
}

static size_t touch_kvlist(const spec_kvlist *l)
{
	size_t n = 0;
	for (size_t i = 0; i < l->n; i++) {
		CHECK(l->items[i].key && l->items[i].value);
		n += touch_str(l->items[i].key) + touch_str(l->items[i].value);
	}
	return n;
}

static size_t touch_artifact(const spec_artifact *a)
{
	return touch_str(a->identifier) + touch_strlist(&a->files) + touch_str(a->name) +
	       touch_str(a->base_directory) + touch_strlist(&a->exclude_paths) + touch_str(a->s3_prefix) +
	       touch_str(a->type);
}

static size_t touch_env(const spec_batch_env *e)
{
	return touch_str(e->compute_type) + touch_str(e->image) + touch_str(e->type) + touch_kvlist(&e->variables);
}

static size_t touch(const spec_buildspec *bs)
{
	size_t n = touch_str(bs->file) + touch_str(bs->run_as) + touch_str(bs->env.shell);
	n += touch_kvlist(&bs->env.variables) + touch_kvlist(&bs->env.parameter_store) +
	     touch_kvlist(&bs->env.secrets_manager) + touch_strlist(&bs->env.exported_variables);
	for (int i = 0; i < SPEC_PHASE_COUNT; i++) {
		const spec_phase *p = &bs->phases[i];
		CHECK(p->present || (p->commands.n == 0 && p->finally.n == 0));
		CHECK(p->on_failure.retry_count >= 0 && p->on_failure.retry_count <= 100);
		n += touch_str(p->run_as) + touch_str(p->on_failure.retry_regex) + touch_kvlist(&p->runtime_versions) +
		     touch_strlist(&p->commands) + touch_strlist(&p->finally);
	}
	for (size_t i = 0; i < bs->nreports; i++) {
		CHECK(bs->reports[i].group != NULL);
		n += touch_str(bs->reports[i].group) + touch_strlist(&bs->reports[i].files) +
		     touch_str(bs->reports[i].base_directory) +
		     touch_str(spec_report_format_name(bs->reports[i].format));
	}
	n += touch_artifact(&bs->artifacts.primary);
	for (size_t i = 0; i < bs->artifacts.nsecondary; i++) {
		CHECK(bs->artifacts.secondary[i].identifier != NULL);
		n += touch_artifact(&bs->artifacts.secondary[i]);
	}
	n += touch_strlist(&bs->cache.paths) + touch_str(bs->cache.key) + touch_strlist(&bs->cache.fallback_keys);
	CHECK(bs->cache.fallback_keys.n <= 5);
	for (size_t i = 0; i < bs->batch.ntasks; i++) {
		const spec_batch_task *t = &bs->batch.tasks[i];
		CHECK(t->identifier != NULL);
		n += touch_str(t->identifier) + touch_str(t->buildspec) + touch_env(&t->env) +
		     touch_strlist(&t->depend_on);
	}
	n += touch_env(&bs->batch.matrix_static_env) + touch_strlist(&bs->batch.matrix_buildspecs) +
	     touch_strlist(&bs->batch.matrix_compute_types) + touch_strlist(&bs->batch.matrix_images);
	for (size_t i = 0; i < bs->batch.nmatrix_vars; i++)
		n += touch_str(bs->batch.matrix_vars[i].name) + touch_strlist(&bs->batch.matrix_vars[i].values);
	CHECK(bs->batch.kind != SPEC_BATCH_FANOUT || bs->batch.fanout_parallelism >= 1);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t counts[2][2] = {{0}};
	bool truncated = false;

	for (int strict = 0; strict < 2; strict++) {
		spec_buildspec *bs = NULL;
		spec_diags d = SPEC_DIAGS_INIT;
		cbl_error *err = NULL;
		spec_parse_opts o = SPEC_PARSE_OPTS_INIT;
		o.strict = strict;

		int rc = spec_parse_buffer(&bs, &d, "fuzz.yml", (const char *)data, size, &o, &err);
		CHECK(rc == 0 || rc == CBL_ESPEC);
		CHECK((rc == 0) == (bs != NULL));
		CHECK((rc == 0) == (err == NULL));
		CHECK((rc == 0) == (d.nerrors == 0));
		CHECK(d.n == d.nerrors + d.nwarnings);
		CHECK(d.file && !strcmp(d.file, "fuzz.yml"));
		if (err)
			CHECK(err->code == CBL_ESPEC && err->msg && err->file);
		cbl_buf b = CBL_BUF_INIT;
		for (size_t i = 0; i < d.n; i++) {
			CHECK(d.items[i].msg != NULL);
			if (strstr(d.items[i].msg, "too many problems"))
				truncated = true;
			if (i > 0 && d.items[i].line > 0)
				CHECK(d.items[i - 1].line > 0 && d.items[i - 1].line <= d.items[i].line);
			spec_diag_format(&d, &d.items[i], &b);
			cbl_buf_putc(&b, '\n');
		}
		cbl_buf_release(&b);
		if (bs)
			(void)touch(bs);
		counts[strict][0] = d.nerrors;
		counts[strict][1] = d.nwarnings;
		if (strict)
			CHECK(d.nwarnings == 0 || truncated);
		spec_buildspec_free(bs);
		spec_diags_release(&d);
		cbl_error_free(err);
	}
	/* strict turns exactly the warnings into errors */
	if (!truncated)
		CHECK(counts[1][0] == counts[0][0] + counts[0][1]);

	/* the on-failure grammar on its own */
	if (size < 512) {
		char *s = malloc(size + 1);
		if (s) {
			memcpy(s, data, size);
			s[size] = '\0';
			spec_on_failure of;
			if (spec_parse_on_failure(s, &of, NULL)) {
				CHECK(of.kind != SPEC_ON_FAILURE_UNSET);
				free(of.retry_regex);
			}
			free(s);
		}
	}
	return 0;
}
