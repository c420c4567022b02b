/* spec/runtimes.c - the images' runtimes.yml (see spec.h). */
#include "spec/spec_internal.h"
#include "util/alloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

static void parse_versions(spec_ctx *c, spec_runtime *rt, const spec_pair *vp, const char *path)
{
	spec_map vm = {0};
	if (!spec_is_map(vp->val)) {
		spec_err(c, spec_val_pos(vp), "%s must be a mapping of versions, not %s", path, spec_kind(vp->val));
		return;
	}
	spec_map_get(c, vp->val, path, &vm);
	for (size_t i = 0; i < vm.n; i++) {
		const spec_pair *v = &vm.p[i];
		char *vpath = cbl_xasprintf("%s.%s", path, v->disp);
		spec_strlist cmds = {0};
		if (spec_is_map(v->val)) {
			spec_map cm = {0};
			spec_map_get(c, v->val, vpath, &cm);
			const spec_pair *cp = spec_map_find(&cm, "commands");
			if (cp) {
				char *cpath = cbl_xasprintf("%s.commands", vpath);
				spec_get_strlist(c, cp, cpath, SPEC_LIST_SCALAR_OK | SPEC_LIST_COMMANDS, &cmds);
				free(cpath);
			}
			spec_map_release(&cm);
		} else if (!spec_is_null(v->val)) {
			spec_err(c, spec_val_pos(v), "%s must be a mapping with commands:, not %s", vpath,
				 spec_kind(v->val));
		}
		if (spec_name_is(v, "default")) {
			rt->has_default = true;
			spec_strlist_release(&rt->default_commands);
			rt->default_commands = cmds;
		} else {
			SPEC_PUSH(rt->versions, rt->n);
			spec_runtime_version *rv = &rt->versions[rt->n++];
			rv->key = cbl_xstrdup(v->name);
			rv->commands = cmds;
		}
		free(vpath);
	}
	spec_map_release(&vm);
}

static void walk(spec_ctx *c, yaml_node_t *root, spec_runtimes *out)
{
	spec_map top = {0}, rm = {0};
	if (!spec_is_map(root)) {
		spec_err(c, spec_node_pos(root), "runtimes.yml must be a mapping with runtimes:, not %s",
			 spec_kind(root));
		return;
	}
	spec_map_get(c, root, "", &top);
	const spec_pair *rp = spec_map_find(&top, "runtimes");
	if (!rp || !spec_is_map(rp->val)) {
		spec_err(c, rp ? spec_val_pos(rp) : spec_node_pos(root), "runtimes.yml has no runtimes: mapping");
		goto out;
	}
	spec_map_get(c, rp->val, "runtimes", &rm);
	for (size_t i = 0; i < rm.n; i++) {
		const spec_pair *r = &rm.p[i];
		SPEC_PUSH(out->items, out->n);
		spec_runtime *rt = &out->items[out->n++];
		memset(rt, 0, sizeof(*rt));
		rt->name = cbl_xstrdup(r->name);
		if (!spec_is_map(r->val))
			continue;
		spec_map m = {0};
		char *path = cbl_xasprintf("runtimes.%s", r->disp);
		spec_map_get(c, r->val, path, &m);
		const spec_pair *vp = spec_map_find(&m, "versions");
		if (vp) {
			char *vpath = cbl_xasprintf("%s.versions", path);
			parse_versions(c, rt, vp, vpath);
			free(vpath);
		}
		spec_map_release(&m);
		free(path);
	}
out:
	spec_map_release(&rm);
	spec_map_release(&top);
}

int spec_runtimes_parse(spec_runtimes **out, const char *name, const char *data, size_t len, cbl_error **err)
{
	spec_diags diags = SPEC_DIAGS_INIT;
	spec_buildspec dummy = {0};
	spec_ctx c = {0};
	yaml_parser_t parser;
	yaml_document_t doc;
	bool have_doc = false;
	int rc = 0;
	spec_runtimes *r = cbl_xcalloc(1, sizeof(*r));
	c.diags = &diags;
	c.bs = &dummy;
	if (len > SPEC_MAX_FILE) {
		rc = cbl_error_set(err, CBL_ESPEC, "%s is larger than %u bytes", name, SPEC_MAX_FILE);
		goto out;
	}
	if (!yaml_parser_initialize(&parser)) {
		rc = cbl_error_set(err, CBL_ENOMEM, "cannot initialize the YAML parser");
		goto out;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	if (spec_load_yaml(&c, &parser, &doc, data, len)) {
		have_doc = true;
		c.doc = &doc;
		yaml_node_t *root = yaml_document_get_root_node(&doc);
		if (!root)
			spec_err(&c, (spec_pos){1, 1}, "runtimes.yml is empty");
		else if (spec_check_graph(&c, root))
			walk(&c, root, r);
	}
	yaml_parser_delete(&parser);
	if (c.nerrors) {
		for (size_t i = 0; i < diags.n; i++)
			if (diags.items[i].severity == SPEC_DIAG_ERROR) {
				rc = cbl_error_set_at(err, CBL_ESPEC, name, diags.items[i].line, diags.items[i].col,
						      "%s", diags.items[i].msg);
				break;
			}
		if (!rc)
			rc = cbl_error_set(err, CBL_ESPEC, "%s is not valid", name);
	}
out:
	if (have_doc)
		yaml_document_delete(&doc);
	spec_diags_release(&diags);
	if (rc) {
		spec_runtimes_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void spec_runtimes_free(spec_runtimes *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		spec_runtime *rt = &r->items[i];
		for (size_t j = 0; j < rt->n; j++) {
			free(rt->versions[j].key);
			spec_strlist_release(&rt->versions[j].commands);
		}
		free(rt->versions);
		spec_strlist_release(&rt->default_commands);
		free(rt->name);
	}
	free(r->items);
	free(r);
}

const spec_runtime *spec_runtimes_find(const spec_runtimes *r, const char *name)
{
	for (size_t i = 0; r && i < r->n; i++)
		if (!strcmp(r->items[i].name, name))
			return &r->items[i];
	return NULL;
}

/* Orders version keys by their numbers ("3.9" < "3.10", "corretto8" <
 * "corretto17"): the digits runs compared as numbers, the rest as text. */
static int vercmp(const char *a, const char *b)
{
	while (*a && *b) {
		if (isdigit((unsigned char)*a) && isdigit((unsigned char)*b)) {
			char *ea, *eb;
			unsigned long long x = strtoull(a, &ea, 10), y = strtoull(b, &eb, 10);
			if (x != y)
				return x < y ? -1 : 1;
			a = ea;
			b = eb;
		} else {
			if (*a != *b)
				return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
			a++;
			b++;
		}
	}
	return *a ? 1 : *b ? -1 : 0;
}

const spec_runtime_version *spec_runtime_select(const spec_runtime *rt, const char *version)
{
	const spec_runtime_version *best = NULL;
	size_t vl = strlen(version);
	bool latest = !strcmp(version, "latest");
	bool major_x = vl > 2 && !strcmp(version + vl - 2, ".x");
	for (size_t i = 0; i < rt->n; i++) {
		const spec_runtime_version *v = &rt->versions[i];
		if (!strcmp(v->key, version))
			return v;
		bool match = latest;
		if (major_x) {
			/* "18.x" takes 18, 18.1, ...; "3.x" takes 3.9, 3.10, ... */
			size_t ml = vl - 2;
			match = !strncmp(v->key, version, ml) && (v->key[ml] == '\0' || v->key[ml] == '.');
		}
		if (match && (!best || vercmp(v->key, best->key) > 0))
			best = v;
	}
	return best;
}
