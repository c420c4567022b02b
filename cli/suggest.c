/* cli/suggest.c - an unknown command or option is one line, then the
 * nearest known name (util/suggest.h) and where the help is; never the
 * whole usage. */
#include "cli/cli.h"
#include "util/alloc.h"
#include "util/suggest.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

void cli_unknown(const char *what, const char *word, const char *suggestion, const char *help_cmd)
{
	if (suggestion) {
		cli_error("%s '%s'", what, word);
		fprintf(stderr, "did you mean '%s'? (see 'codebuild-local %s%s--help')\n", suggestion,
			help_cmd ? help_cmd : "", help_cmd ? " " : "");
	} else {
		cli_error("%s '%s' (see 'codebuild-local %s%s--help')", what, word, help_cmd ? help_cmd : "",
			  help_cmd ? " " : "");
	}
}

/* The long options' names as "--name", for cli_suggest. */
static char **option_names(const struct option *longopts, size_t *n)
{
	size_t k = 0;
	while (longopts[k].name)
		k++;
	char **v = cbl_xcalloc(k + 1, sizeof(*v));
	for (size_t i = 0; i < k; i++)
		v[i] = cbl_xasprintf("--%s", longopts[i].name);
	*n = k;
	return v;
}

/* An unknown or ambiguous option, or a value given to one that takes
 * none, as getopt_long left it: said in one line plus the nearest option. */
static void say_bad_option(const char *cmd, int argc, char **argv, const struct option *longopts)
{
	const char *tok = optind - 1 < argc && optind > 0 ? argv[optind - 1] : "";
	if (strncmp(tok, "--", 2) || !tok[2]) {
		char shortopt[3] = {'-', (char)optopt, '\0'};
		char what[64];
		snprintf(what, sizeof(what), "%s: unknown option", cmd);
		cli_unknown(what, shortopt, NULL, cmd);
		return;
	}
	char *word = cbl_xstrndup(tok, strcspn(tok, "="));
	if (optopt) {
		/* a known long option: only its "=value" can be wrong */
		cli_error("%s: option '%s' takes no value (see 'codebuild-local %s --help')", cmd, word, cmd);
		free(word);
		return;
	}
	char what[64];
	size_t n = 0, n_prefix = 0;
	char **names = option_names(longopts, &n);
	for (size_t i = 0; i < n; i++)
		n_prefix += !strncmp(names[i], word, strlen(word));
	snprintf(what, sizeof(what), "%s: %s option", cmd, n_prefix > 1 ? "ambiguous" : "unknown");
	cli_unknown(what, word, n_prefix > 1 ? NULL : cbl_suggest(word, (const char *const *)names, n), cmd);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(word);
}

int cli_getopt(const char *cmd, int argc, char **argv, const char *shorts, const struct option *longopts)
{
	char opts[128];
	snprintf(opts, sizeof(opts), ":%s", shorts);
	opterr = 0;
	optopt = 0;
	int c = getopt_long(argc, argv, opts, longopts, NULL);
	if (c == ':') {
		cli_error("%s: option '%s' needs a value (see 'codebuild-local %s --help')", cmd,
			  optind - 1 < argc ? argv[optind - 1] : "?", cmd);
		return '?';
	}
	if (c == '?')
		say_bad_option(cmd, argc, argv, longopts);
	return c;
}
