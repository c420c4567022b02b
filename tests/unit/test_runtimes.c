/* tests/unit/test_runtimes.c - the images' runtimes.yml (spec/runtimes.c). */
#include "spec/spec.h"
#include "tests/unit/tap.h"

#include <stdlib.h>
#include <string.h>

static const char doc[] = "version: 0.1\n"
			  "runtimes:\n"
			  "  java:\n"
			  "    versions:\n"
			  "      corretto8:\n"
			  "        commands: [export J=8]\n"
			  "      corretto17:\n"
			  "        commands:\n"
			  "          - export J=17\n"
			  "  python:\n"
			  "    versions:\n"
			  "      \"3.9\": {commands: [export P=3.9]}\n"
			  "      \"3.10\": &p310\n"
			  "        commands: [export P=3.10]\n"
			  "      \"3.11\": *p310\n"
			  "      default:\n"
			  "        commands:\n"
			  "          - pyenv install $VERSION\n"
			  "  nodejs:\n"
			  "    versions:\n"
			  "      \"18\": {commands: [n 18]}\n"
			  "      \"20\": {commands: [n 20]}\n";

int main(void)
{
	spec_runtimes *r = NULL;
	cbl_error *e = NULL;
	ok(spec_runtimes_parse(&r, "runtimes.yml", doc, strlen(doc), &e) == 0, "a runtimes.yml parses");
	is_int((int)r->n, 3, "three runtimes");
	const spec_runtime *py = spec_runtimes_find(r, "python");
	ok(py && py->n == 3 && py->has_default, "python: three versions and a default");
	ok(!spec_runtimes_find(r, "ruby"), "an unknown runtime is not found");
	is_str(py->default_commands.items[0].s, "pyenv install $VERSION", "the default's commands");
	is_str(py->versions[2].commands.items[0].s, "export P=3.10", "an alias reuses a version's commands");

	const spec_runtime_version *v = spec_runtime_select(py, "3.10");
	ok(v && !strcmp(v->key, "3.10"), "an exact key");
	v = spec_runtime_select(py, "3.x");
	ok(v && !strcmp(v->key, "3.11"), "3.x is the newest 3 (numbers, not text: 3.11 > 3.9)");
	v = spec_runtime_select(py, "latest");
	ok(v && !strcmp(v->key, "3.11"), "latest is the newest key");
	ok(!spec_runtime_select(py, "3.8"), "a version the image lacks: none (the default applies)");
	ok(!spec_runtime_select(py, "3.1"), "3.1 is not a prefix match of 3.10/3.11");
	const spec_runtime *java = spec_runtimes_find(r, "java");
	v = spec_runtime_select(java, "latest");
	ok(v && !strcmp(v->key, "corretto17"), "corretto17 is newer than corretto8");
	const spec_runtime *node = spec_runtimes_find(r, "nodejs");
	v = spec_runtime_select(node, "18.x");
	ok(v && !strcmp(v->key, "18"), "18.x takes 18");
	spec_runtimes_free(r);

	static const char *const bad[] = {
		"- a list\n",
		"version: 0.1\n",
		"runtimes: [python]\n",
		"runtimes:\n  python:\n    versions: [3.9]\n",
		"runtimes:\n  python:\n    versions:\n      \"3.9\": [x]\n",
		"runtimes: {python: {versions: {\"3.9\": {commands: [a, [b]]}}}}\n",
		"runtimes: &a\n  x: *a\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		r = NULL;
		int rc = spec_runtimes_parse(&r, "runtimes.yml", bad[i], strlen(bad[i]), &e);
		ok(rc == CBL_ESPEC && e && !r, "malformed runtimes.yml %zu is refused", i);
		if (e && i == 3)
			ok(e->line == 3, "with the position of the problem (line %d)", e->line);
		cbl_error_clear(&e);
		spec_runtimes_free(r);
	}
	return tap_done();
}
