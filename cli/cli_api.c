/* cli/cli_api.c - the AWS CLI's argument conventions for the API commands
 * (cli/cli_api.h): flags from a table, shorthand syntax, --cli-input-json,
 * file:// values, auto-pagination, JSON output and error lines. */
#include "cli/cli.h"
#include "cli/cli_api.h"
#include "store/api.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/array.h"
#include "util/fs.h"
#include "util/strv.h"
#include "util/suggest.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/banned.h"

/* ---------------------------------------------------------------- shorthand */

/* Member types the shorthand cannot tell from the text (the AWS CLI takes
 * them from the model; these are the ones of the commands here). */
static const char *const bool_members[] = {
	"fetchSubmodules", "insecureSsl", "reportBuildStatus", "privilegedMode", "encryptionDisabled",
	"overrideArtifactName", "badgeEnabled", "startFromHead", "combineArtifacts", "unmask", NULL,
};
static const char *const int_members[] = {
	"gitCloneDepth", "timeoutInMinutes", "queuedTimeoutInMinutes", "concurrentBuildLimit",
	"limit", "timeoutInMins", "autoRetryLimit", "startTime", "endTime", "timeoutInMinutesOverride",
	"gitCloneDepthOverride", "queuedTimeoutInMinutesOverride", NULL,
};
static const char *const list_members[] = {
	"modes", "subnets", "securityGroupIds", "environmentVariables", "environmentVariablesOverride",
	"secondarySourcesVersionOverride", NULL,
};

static bool member_in(const char *k, const char *const *set)
{
	for (size_t i = 0; set[i]; i++)
		if (!strcmp(k, set[i]))
			return true;
	return false;
}

static json_t *typed(const char *key, json_t *v)
{
	if (key && json_is_string(v)) {
		const char *s = json_string_value(v);
		if (member_in(key, bool_members) && (!strcmp(s, "true") || !strcmp(s, "false"))) {
			json_t *b = json_boolean(!strcmp(s, "true"));
			json_decref(v);
			v = b;
		} else if (member_in(key, int_members) && *s) {
			char *end = NULL;
			errno = 0;
			long long n = strtoll(s, &end, 10);
			if (!*end && !errno) {
				json_decref(v);
				v = json_integer(n);
			}
		}
	}
	if (key && member_in(key, list_members) && !json_is_array(v)) {
		json_t *l = json_array();
		json_array_append_new(l, v);
		v = l;
	}
	return v;
}

typedef struct sh_parser {
	const char *p;
	const char *error;
} sh_parser;

static json_t *sh_struct(sh_parser *s, char end);
static json_t *sh_list(sh_parser *s);

static json_t *sh_scalar(sh_parser *s, const char *stops)
{
	cbl_buf b = CBL_BUF_INIT;
	if (*s->p == '\'' || *s->p == '"') {
		char q = *s->p++;
		while (*s->p && *s->p != q) {
			if (*s->p == '\\' && (s->p[1] == q || s->p[1] == '\\'))
				s->p++;
			cbl_buf_putc(&b, *s->p++);
		}
		if (*s->p != q) {
			s->error = "unterminated quoted value";
			cbl_buf_release(&b);
			return NULL;
		}
		s->p++;
	} else {
		while (*s->p && !strchr(stops, *s->p))
			cbl_buf_putc(&b, *s->p++);
	}
	json_t *v = json_stringn(cbl_buf_cstr(&b), b.len);
	cbl_buf_release(&b);
	if (!v)
		s->error = "value is not valid UTF-8";
	return v;
}

static json_t *sh_item(sh_parser *s, const char *stops)
{
	if (*s->p == '{') {
		s->p++;
		json_t *o = sh_struct(s, '}');
		if (o && *s->p == '}')
			s->p++;
		else if (o) {
			s->error = "expected '}'";
			json_decref(o);
			o = NULL;
		}
		return o;
	}
	if (*s->p == '[') {
		s->p++;
		return sh_list(s);
	}
	return sh_scalar(s, stops);
}

static json_t *sh_list(sh_parser *s)
{
	json_t *l = json_array();
	while (*s->p != ']') {
		json_t *v = sh_item(s, ",]");
		if (!v) {
			json_decref(l);
			return NULL;
		}
		json_array_append_new(l, v);
		if (*s->p == ',')
			s->p++;
		else if (*s->p != ']') {
			s->error = "expected ',' or ']'";
			json_decref(l);
			return NULL;
		}
	}
	s->p++;
	return l;
}

/* After "key=": a value, or for a list member a comma-separated list of
 * bare values ("modes=A,B"). */
static json_t *sh_value(sh_parser *s, const char *key, char end)
{
	char stops[3] = {',', end, '\0'};
	json_t *v = sh_item(s, stops);
	if (!v || !json_is_string(v) || !member_in(key, list_members))
		return v;
	json_t *list = NULL;
	while (*s->p == ',') {
		const char *q = s->p + 1;
		bool next_key = false;
		while (*q && *q != ',' && *q != end && !next_key)
			next_key = *q++ == '=';
		if (next_key || s->p[1] == '{' || s->p[1] == '[')
			break;
		s->p++;
		json_t *next = sh_scalar(s, stops);
		if (!next)
			break;
		if (!list) {
			list = json_array();
			json_array_append_new(list, v);
			v = list;
		}
		json_array_append_new(list, next);
	}
	return v;
}

static json_t *sh_struct(sh_parser *s, char end)
{
	json_t *o = json_object();
	while (*s->p && *s->p != end) {
		while (*s->p == ' ')
			s->p++;
		const char *k = s->p;
		while (*s->p && *s->p != '=' && *s->p != ',' && *s->p != end)
			s->p++;
		if (*s->p != '=' || s->p == k) {
			s->error = "expected key=value";
			json_decref(o);
			return NULL;
		}
		char *key = cbl_xstrndup(k, (size_t)(s->p - k));
		s->p++;
		json_t *v = sh_value(s, key, end);
		if (!v) {
			free(key);
			json_decref(o);
			return NULL;
		}
		json_object_set_new(o, key, typed(key, v));
		free(key);
		if (*s->p == ',')
			s->p++;
		else if (*s->p != end) {
			s->error = "expected ','";
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

/* ---------------------------------------------------------------- values */

static int read_param_file(const char *value, char **out, cbl_error **err)
{
	size_t len;
	return cbl_read_file(value + 7, 0, out, &len, err);
}

/* A structure or list given as JSON, shorthand or file://. */
static int parse_struct_value(const char *flag, const char *value, json_t **out)
{
	char *buf = NULL;
	cbl_error *e = NULL;
	if (!strncmp(value, "file://", 7)) {
		if (read_param_file(value, &buf, &e)) {
			cli_error("--%s: %s", flag, e->msg);
			cbl_error_free(e);
			return -1;
		}
		value = buf;
	}
	const char *t = value;
	while (*t == ' ' || *t == '\n' || *t == '\t' || *t == '\r')
		t++;
	if (*t == '{' || *t == '[') {
		json_error_t je;
		*out = json_loads(t, 0, &je);
		if (!*out)
			cli_error("--%s: invalid JSON: %s (line %d, column %d)", flag, je.text, je.line,
				  je.column);
	} else {
		sh_parser s = {value, NULL};
		*out = sh_struct(&s, '\0');
		if (!*out)
			cli_error("--%s: error parsing shorthand syntax near '%.20s': %s", flag, s.p,
				  s.error ? s.error : "syntax error");
	}
	free(buf);
	return *out ? 0 : -1;
}

static int convert(const cli_api_arg *a, char **vals, int nvals, json_t **out)
{
	switch (a->kind) {
	case CA_STR:
		if (!strncmp(vals[0], "file://", 7)) {
			char *buf = NULL;
			cbl_error *e = NULL;
			if (read_param_file(vals[0], &buf, &e)) {
				cli_error("--%s: %s", a->flag, e->msg);
				cbl_error_free(e);
				return -1;
			}
			*out = json_string(buf);
			free(buf);
		} else {
			*out = json_string(vals[0]);
		}
		if (!*out)
			cli_error("--%s: value is not valid UTF-8", a->flag);
		return *out ? 0 : -1;
	case CA_INT: {
		char *end = NULL;
		errno = 0;
		long long n = strtoll(vals[0], &end, 10);
		if (!*vals[0] || *end || errno) {
			cli_error("--%s: invalid integer '%s'", a->flag, vals[0]);
			return -1;
		}
		*out = json_integer(n);
		return 0;
	}
	case CA_BOOL:
		*out = json_true();
		return 0;
	case CA_STRUCT:
		if (parse_struct_value(a->flag, vals[0], out))
			return -1;
		if (!json_is_object(*out)) {
			cli_error("--%s: expected a structure", a->flag);
			json_decref(*out);
			return -1;
		}
		return 0;
	case CA_LIST_STRUCT:
	case CA_LIST_STR:
		break;
	}
	if (nvals == 1 && (vals[0][0] == '[' || !strncmp(vals[0], "file://", 7))) {
		if (parse_struct_value(a->flag, vals[0], out))
			return -1;
		if (!json_is_array(*out)) {
			cli_error("--%s: expected a list", a->flag);
			json_decref(*out);
			return -1;
		}
		return 0;
	}
	json_t *l = json_array();
	for (int i = 0; i < nvals; i++) {
		json_t *v = NULL;
		if (a->kind == CA_LIST_STR)
			v = json_string(vals[i]);
		else if (parse_struct_value(a->flag, vals[i], &v) == 0 && !json_is_object(v)) {
			cli_error("--%s: expected a structure", a->flag);
			json_decref(v);
			v = NULL;
		}
		if (!v) {
			json_decref(l);
			return -1;
		}
		json_array_append_new(l, v);
	}
	*out = l;
	return 0;
}

/* ---------------------------------------------------------------- command */

static void usage(const cli_api_cmd *cmd, FILE *f)
{
	fprintf(f, "usage: codebuild-local %s", cmd->name);
	for (size_t i = 0; i < cmd->nargs; i++) {
		const cli_api_arg *a = &cmd->args[i];
		if (a->kind == CA_BOOL)
			fprintf(f, " [--%s | --no-%s]", a->flag, a->flag);
		else
			fprintf(f, " [--%s VALUE%s]", a->flag,
				a->kind == CA_LIST_STR || a->kind == CA_LIST_STRUCT ? "..." : "");
	}
	fprintf(f, " [--cli-input-json JSON|file://FILE]%s\n\n%s\n\n", cmd->paginate ? " [--no-paginate]" : "",
		cmd->summary);
	for (size_t i = 0; i < cmd->nargs; i++)
		fprintf(f, "  --%-28s %s\n", cmd->args[i].flag, cmd->args[i].help);
	fprintf(f, "  --%-28s %s\n", "cli-input-json", "the whole request in the API's JSON shape (inline or "
							 "file://FILE); flags override its members");
	if (cmd->paginate)
		fprintf(f, "  --%-28s %s\n", "no-paginate",
			"one page and its nextToken (default: every page, merged, as the AWS CLI does)");
	fprintf(f,
		"\nStructures take the AWS CLI's shorthand (key=value,key=value, {...} and [...] nest)\n"
		"or JSON; any value may be file://FILE.  Output: the response as `aws` prints it:\n"
		"timestamps in ISO 8601, local time, or epoch seconds with\n"
		"--cli-timestamp-format wire (or cli_timestamp_format = wire in the AWS CLI's\n"
		"config file, $AWS_CONFIG_FILE or ~/.aws/config, profile $AWS_PROFILE).\n"
		"Exit status: 0 success, 2 usage or invalid input, 1 other service errors\n"
		"(e.g. ResourceNotFoundException), 3 internal failure.\n");
}

static int exit_for(int code)
{
	switch (code) {
	case CBL_EINVAL:
		return CLI_EXIT_USAGE;
	case CBL_ENOENT:
	case CBL_EEXIST:
	case CBL_ELIMIT:
		return CLI_EXIT_FAILED;
	default:
		return CLI_EXIT_FAULT;
	}
}

/* An option the command does not have: one line, and the nearest one. */
static void unknown_option(const cli_api_cmd *cmd, const char *name, size_t n)
{
	static const char *const common[] = {"--cli-input-json", "--no-paginate", "--cli-timestamp-format", "--help"};
	cbl_strv names = CBL_STRV_INIT;
	for (size_t i = 0; i < cmd->nargs; i++) {
		char *f = cbl_xasprintf("--%s", cmd->args[i].flag);
		cbl_strv_push(&names, f);
		free(f);
	}
	for (size_t i = 0; i < ARRAY_SIZE(common); i++)
		cbl_strv_push(&names, common[i]);
	char *word = cbl_xasprintf("--%.*s", (int)n, name);
	cli_unknown("unknown option", word, cbl_suggest(word, (const char *const *)names.v, names.n), cmd->name);
	free(word);
	cbl_strv_release(&names);
}

static const cli_api_arg *find_arg(const cli_api_cmd *cmd, const char *name, size_t n, bool *negated)
{
	*negated = false;
	for (int pass = 0; pass < 2; pass++) {
		const char *nm = name;
		size_t len = n;
		if (pass == 1) {
			if (n <= 3 || strncmp(name, "no-", 3))
				break;
			nm += 3;
			len -= 3;
		}
		for (size_t i = 0; i < cmd->nargs; i++) {
			const cli_api_arg *a = &cmd->args[i];
			if (strlen(a->flag) == len && !strncmp(a->flag, nm, len) &&
			    (pass == 0 || a->kind == CA_BOOL)) {
				*negated = pass == 1;
				return a;
			}
		}
	}
	return NULL;
}

/* ------------------------------------------------------------- timestamps */

/* The AWS CLI (v2) prints timestamps as ISO 8601 in local time unless
 * cli_timestamp_format = wire (or --cli-timestamp-format wire) says to keep
 * the wire's epoch seconds.  Its config file: $AWS_CONFIG_FILE, else
 * ~/.aws/config; its profile: $AWS_PROFILE, else default. */
static char *config_timestamp_format(void)
{
	const char *file = getenv("AWS_CONFIG_FILE");
	const char *home = getenv("HOME");
	char *path = file && *file ? cbl_xstrdup(file) : home && *home ? cbl_path_join(home, ".aws/config") : NULL;
	const char *profile = getenv("AWS_PROFILE");
	char *want = profile && *profile && strcmp(profile, "default") ? cbl_xasprintf("[profile %s]", profile)
								     : cbl_xstrdup("[default]");
	char *data = NULL, *found = NULL;
	size_t len = 0;
	if (path && cbl_read_file(path, 1 << 20, &data, &len, NULL) == 0) {
		bool in = false;
		for (char *line = data; line && *line;) {
			char *nl = strchr(line, '\n');
			if (nl)
				*nl = '\0';
			while (*line == ' ' || *line == '\t')
				line++;
			size_t l = strlen(line);
			while (l && (line[l - 1] == ' ' || line[l - 1] == '\r' || line[l - 1] == '\t'))
				line[--l] = '\0';
			if (*line == '[') {
				in = !strcmp(line, want);
			} else if (in && !strncmp(line, "cli_timestamp_format", 20)) {
				char *v = line + 20;
				while (*v == ' ' || *v == '\t')
					v++;
				if (*v == '=') {
					v++;
					while (*v == ' ' || *v == '\t')
						v++;
					free(found);
					found = cbl_xstrdup(v);
				}
			}
			line = nl ? nl + 1 : NULL;
		}
	}
	free(data);
	free(path);
	free(want);
	return found;
}

/* Members of the CodeBuild model whose shape is a timestamp. */
static bool timestamp_member(const char *k)
{
	static const char *const names[] = {"created", "endTime", "expired", "lastModified",
					    "lastModifiedSecret", "requestTime", "requestedOn",
					    "startTime", "submitTime", NULL};
	return member_in(k, names);
}

/* 1795637915.774 -> "2026-11-25T20:18:35.774000+00:00", as Python's
 * datetime.isoformat() of botocore's local-time datetime. */
static json_t *iso_time(double v)
{
	long long us = (long long)(v * 1e6 + (v >= 0 ? 0.5 : -0.5));
	time_t sec = (time_t)(us / 1000000);
	long frac = (long)(us % 1000000);
	if (frac < 0) {
		frac += 1000000;
		sec--;
	}
	struct tm tm;
	localtime_r(&sec, &tm);
	char buf[64], off[40];
	size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	if (frac)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, ".%06ld", frac);
	long g = tm.tm_gmtoff;
	snprintf(off, sizeof(off), "%c%02ld:%02ld", g < 0 ? '-' : '+', labs(g) / 3600, labs(g) % 3600 / 60);
	snprintf(buf + n, sizeof(buf) - n, "%s", off);
	return json_string(buf);
}

static void iso_timestamps(json_t *j)
{
	if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v)
			iso_timestamps(v);
		return;
	}
	if (!json_is_object(j))
		return;
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v) {
		if (json_is_number(v) && timestamp_member(k))
			json_object_set_new(j, k, iso_time(json_number_value(v)));
		else
			iso_timestamps(v);
	}
}

static int parse_args(const cli_api_cmd *cmd, int argc, char **argv, json_t *flags, json_t **input,
		      bool *no_paginate, bool *help, char **ts_format)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			*help = true;
			return 0;
		}
		if (strncmp(arg, "--", 2)) {
			cli_error("unexpected argument '%s'", arg);
			return -1;
		}
		const char *name = arg + 2, *eq = strchr(name, '=');
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		if (cmd->paginate && nlen == 11 && !strncmp(name, "no-paginate", 11) && !eq) {
			*no_paginate = true;
			continue;
		}
		if (nlen == 20 && !strncmp(name, "cli-timestamp-format", 20)) {
			const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
			if (!v || (strcmp(v, "iso8601") && strcmp(v, "wire"))) {
				cli_error("--cli-timestamp-format takes iso8601 or wire");
				return -1;
			}
			free(*ts_format);
			*ts_format = cbl_xstrdup(v);
			continue;
		}
		if (nlen == 14 && !strncmp(name, "cli-input-json", 14)) {
			const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
			if (!v) {
				cli_error("--cli-input-json needs a value");
				return -1;
			}
			json_decref(*input);
			*input = NULL;
			if (parse_struct_value("cli-input-json", v, input))
				return -1;
			if (!json_is_object(*input)) {
				cli_error("--cli-input-json: expected a JSON object");
				return -1;
			}
			continue;
		}
		bool negated;
		const cli_api_arg *a = find_arg(cmd, name, nlen, &negated);
		if (!a) {
			unknown_option(cmd, name, nlen);
			return -2;
		}
		json_t *v = NULL;
		if (a->kind == CA_BOOL) {
			if (eq) {
				cli_error("--%s takes no value", a->flag);
				return -1;
			}
			v = json_boolean(!negated);
		} else {
			char *one[1];
			char **vals = one;
			int nvals = 0;
			if (eq) {
				one[0] = (char *)(eq + 1);
				nvals = 1;
			} else if (a->kind == CA_LIST_STR || a->kind == CA_LIST_STRUCT) {
				vals = argv + i + 1;
				while (i + 1 + nvals < argc && strncmp(argv[i + 1 + nvals], "--", 2))
					nvals++;
				i += nvals;
			} else if (i + 1 < argc) {
				one[0] = argv[++i];
				nvals = 1;
			}
			if (!nvals) {
				cli_error("--%s needs a value", a->flag);
				return -1;
			}
			if (convert(a, vals, nvals, &v))
				return -1;
		}
		json_object_set_new(flags, a->member, v);
	}
	return 0;
}

static void print_json(json_t *j)
{
	if (json_is_object(j) && !json_object_size(j))
		return; /* the AWS CLI prints nothing for an empty response */
	char *s = json_dumps(j, JSON_INDENT(4) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(13));
	if (s)
		printf("%s\n", s);
	free(s);
}

int cli_api_run(const cli_api_cmd *cmd, int argc, char **argv)
{
	json_t *flags = json_object(), *input = NULL, *req = NULL, *res = NULL;
	bool no_paginate = false, help = false;
	char *home = NULL, *ts_format = NULL;
	cbl_error *err = NULL;
	int rc = CLI_EXIT_USAGE;
	int pr = parse_args(cmd, argc, argv, flags, &input, &no_paginate, &help, &ts_format);
	if (pr) {
		if (pr == -1) /* -2: said with its pointer to --help */
			fprintf(stderr, "(see 'codebuild-local %s --help')\n", cmd->name);
		goto out;
	}
	if (help) {
		usage(cmd, stdout);
		rc = CLI_EXIT_OK;
		goto out;
	}
	req = input ? json_incref(input) : json_object();
	json_object_update(req, flags);
	home = store_default_home();
	bool all_pages = cmd->paginate && !no_paginate && !json_object_get(req, "nextToken");
	int (*dispatch)(const char *, const char *, json_t *, json_t **, cbl_error **) =
		cmd->dispatch ? cmd->dispatch : store_api_dispatch;
	if (store_api_validate(cmd->target, req, &err) || dispatch(home, cmd->target, req, &res, &err))
		goto fail;
	while (all_pages && json_is_string(json_object_get(res, "nextToken"))) {
		json_t *next = NULL;
		json_t *tok = json_object_get(res, "nextToken");
		if (json_equal(tok, json_object_get(req, "nextToken"))) {
			cli_error("the same next token was received twice: %s", json_string_value(tok));
			rc = CLI_EXIT_FAULT;
			goto out;
		}
		json_object_set(req, "nextToken", tok);
		if (dispatch(home, cmd->target, req, &next, &err))
			goto fail;
		json_array_extend(json_object_get(res, cmd->paginate), json_object_get(next, cmd->paginate));
		json_t *nt = json_object_get(next, "nextToken");
		if (nt)
			json_object_set(res, "nextToken", nt);
		else
			json_object_del(res, "nextToken");
		json_decref(next);
	}
	if (!ts_format)
		ts_format = config_timestamp_format();
	if (!strncmp(cmd->target, STORE_TARGET_CODEBUILD, strlen(STORE_TARGET_CODEBUILD)) && (!ts_format || strcmp(ts_format, "wire")))
		iso_timestamps(res);
	print_json(res);
	rc = CLI_EXIT_OK;
	goto out;
fail:
	fprintf(stderr, "An error occurred (%s) when calling the %s operation: %s\n",
		store_api_error_type(cmd->target, err->code), store_api_operation(cmd->target), err->msg);
	rc = exit_for(err->code);
out:
	cbl_error_free(err);
	json_decref(flags);
	json_decref(input);
	json_decref(req);
	json_decref(res);
	free(home);
	free(ts_format);
	return rc;
}
