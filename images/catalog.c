/* images/catalog.c - the curated CodeBuild images and their runtime
 * versions (images/catalog.json, embedded at build time), the
 * runtime-versions check, and the host's runtimes for the "host" image.
 *
 * The JSON is linked into the binary with the assembler's .incbin (the path
 * is relative to the directory make runs in, the repository root), so a
 * clean checkout and `make install` need no data file at run time.
 *
 * Version forms (reference buildspec.md 8.4): an exact key ("3.11",
 * "corretto17", "18"), "<prefix>.x" (the newest key that is prefix or starts
 * with "prefix."), "latest" (the newest key).  "Newest" compares digit runs
 * as numbers (strverscmp: 3.14 > 3.9).
 */
#include "images/images_internal.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/buf.h"
#include "util/json.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/banned.h"

__asm__(".pushsection .rodata\n"
	".global images_catalog_json_start\n"
	".type images_catalog_json_start, @object\n"
	".balign 16\n"
	"images_catalog_json_start:\n"
	".incbin \"images/catalog.json\"\n"
	".global images_catalog_json_end\n"
	"images_catalog_json_end:\n"
	".byte 0\n"
	".popsection\n");
extern const char images_catalog_json_start[];
extern const char images_catalog_json_end[];

typedef struct curated_runtime {
	char *name;
	cbl_strv versions;
	char *def;
} curated_runtime;

struct images_curated {
	char *name;
	cbl_strv aliases;
	char *location;
	cbl_strv runtime_names;
	curated_runtime *rt;
	size_t nrt;
	char *arch;      /* "amd64", "arm64"; NULL = unknown */
	char *os;        /* "Ubuntu 22.04", ...; NULL = unknown */
	bool maintained;
	cbl_strv users;  /* the image's own, else the catalog's "users" */
};

struct images_catalog {
	images_curated *img;
	size_t n;
	cbl_strv endpoint_from, endpoint_to;
};

static const char *const empty_list[] = {NULL};

/* The strings of a JSON array appended to out. */
static void push_strings(cbl_strv *out, json_t *arr)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
		if (json_is_string(v))
			cbl_strv_push(out, json_string_value(v));
}

void images_catalog_free(images_catalog *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++) {
		images_curated *ci = &c->img[i];
		free(ci->name);
		free(ci->location);
		free(ci->arch);
		free(ci->os);
		cbl_strv_release(&ci->users);
		cbl_strv_release(&ci->aliases);
		cbl_strv_release(&ci->runtime_names);
		for (size_t j = 0; j < ci->nrt; j++) {
			free(ci->rt[j].name);
			cbl_strv_release(&ci->rt[j].versions);
			free(ci->rt[j].def);
		}
		free(ci->rt);
	}
	free(c->img);
	cbl_strv_release(&c->endpoint_from);
	cbl_strv_release(&c->endpoint_to);
	free(c);
}

int images_catalog_parse(const char *json, size_t len, images_catalog **out, cbl_error **err)
{
	json_error_t je;
	json_t *j = json_loadb(json, len, 0, &je);
	images_catalog *c = NULL;
	int rc = 0;
	*out = NULL;
	if (!json_is_object(j)) {
		rc = cbl_error_set(err, CBL_EINVAL, "image catalog: line %d: %s", je.line,
				   j ? "not an object" : je.text);
		goto out;
	}
	c = cbl_xcalloc(1, sizeof(*c));
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(j, "endpoints"), k, v)
		if (json_is_string(v)) {
			cbl_strv_push(&c->endpoint_from, k);
			cbl_strv_push(&c->endpoint_to, json_string_value(v));
		}
	json_t *imgs = json_object_get(j, "images");
	if (!json_is_array(imgs)) {
		rc = cbl_error_set(err, CBL_EINVAL, "image catalog: no images array");
		goto out;
	}
	c->img = cbl_xcalloc(json_array_size(imgs) + 1, sizeof(*c->img));
	size_t i;
	json_t *im;
	json_array_foreach(imgs, i, im) {
		const char *name = cbl_json_str(im, "name");
		if (!name) {
			rc = cbl_error_set(err, CBL_EINVAL, "image catalog: image %zu has no name", i);
			goto out;
		}
		images_curated *ci = &c->img[c->n++];
		ci->name = cbl_xstrdup(name);
		const char *loc = cbl_json_str(im, "location");
		ci->location = loc ? cbl_xstrdup(loc) : NULL;
		const char *arch = cbl_json_str(im, "arch");
		ci->arch = arch ? cbl_xstrdup(arch) : NULL;
		ci->maintained = json_is_true(json_object_get(im, "maintained"));
		const char *os = cbl_json_str(im, "os");
		ci->os = os ? cbl_xstrdup(os) : NULL;
		push_strings(&ci->aliases, json_object_get(im, "aliases"));
		/* every curated Dockerfile has `RUN useradd codebuild-user`: the
		 * catalog says so once ("users"), an image may say otherwise */
		json_t *users = json_object_get(im, "users");
		push_strings(&ci->users, users ? users : json_object_get(j, "users"));
		json_t *rts = json_object_get(im, "runtimes");
		ci->rt = cbl_xcalloc(json_object_size(rts) + 1, sizeof(*ci->rt));
		const char *rk;
		json_t *rv;
		json_object_foreach(rts, rk, rv) {
			curated_runtime *r = &ci->rt[ci->nrt++];
			r->name = cbl_xstrdup(rk);
			cbl_strv_push(&ci->runtime_names, rk);
			size_t x;
			json_t *xv;
			json_array_foreach(json_object_get(rv, "versions"), x, xv)
				if (json_is_string(xv))
					cbl_strv_push(&r->versions, json_string_value(xv));
			const char *d = cbl_json_str(rv, "default");
			r->def = d ? cbl_xstrdup(d) : NULL;
		}
	}
	*out = c;
	c = NULL;
out:
	images_catalog_free(c);
	json_decref(j);
	return rc;
}

int images_catalog_default(images_catalog **out, cbl_error **err)
{
	size_t len = (size_t)(images_catalog_json_end - images_catalog_json_start);
	int rc = images_catalog_parse(images_catalog_json_start, len, out, err);
	if (rc)
		cbl_error_wrap(err, "built-in images/catalog.json");
	return rc;
}

/* "public.ecr.aws/codebuild/x:1" and "aws/codebuild/x:1" name the same image;
 * so do the docker-normalized forms of either. */
static bool same_name(const char *a, const char *b)
{
	if (!strcmp(a, b))
		return true;
	images_ref ra, rb;
	bool same = false;
	if (images_ref_parse(a, &ra, NULL))
		return false;
	if (!images_ref_parse(b, &rb, NULL)) {
		char *x = images_ref_string(&ra), *y = images_ref_string(&rb);
		same = !strcmp(x, y);
		free(x);
		free(y);
		images_ref_release(&rb);
	}
	images_ref_release(&ra);
	return same;
}

const images_curated *images_catalog_find(const images_catalog *c, const char *image)
{
	if (!c || !image)
		return NULL;
	for (size_t i = 0; i < c->n; i++) {
		const images_curated *ci = &c->img[i];
		if (!strcmp(ci->name, image))
			return ci;
		for (size_t a = 0; a < ci->aliases.n; a++)
			if (!strcmp(ci->aliases.v[a], image))
				return ci;
	}
	for (size_t i = 0; i < c->n; i++) {
		const images_curated *ci = &c->img[i];
		if (same_name(ci->name, image) || (ci->location && same_name(ci->location, image)))
			return ci;
		for (size_t a = 0; a < ci->aliases.n; a++)
			if (same_name(ci->aliases.v[a], image))
				return ci;
	}
	return NULL;
}

const char *images_catalog_endpoint(const images_catalog *c, const char *domain)
{
	for (size_t i = 0; c && i < c->endpoint_from.n; i++)
		if (!strcmp(c->endpoint_from.v[i], domain))
			return c->endpoint_to.v[i];
	return domain;
}

const char *images_curated_name(const images_curated *ci) { return ci->name; }
const char *images_curated_location(const images_curated *ci) { return ci->location; }
const char *images_curated_os(const images_curated *ci) { return ci->os; }
const char *images_curated_arch(const images_curated *ci) { return ci->arch; }
bool images_curated_maintained(const images_curated *ci) { return ci->maintained; }
size_t images_catalog_count(const images_catalog *c) { return c->n; }
const images_curated *images_catalog_at(const images_catalog *c, size_t i)
{
	return i < c->n ? &c->img[i] : NULL;
}

const char *const *images_curated_runtimes(const images_curated *ci)
{
	return ci->runtime_names.n ? (const char *const *)ci->runtime_names.v : empty_list;
}

static const curated_runtime *find_rt(const images_curated *ci, const char *runtime)
{
	for (size_t i = 0; i < ci->nrt; i++)
		if (!strcmp(ci->rt[i].name, runtime))
			return &ci->rt[i];
	return NULL;
}

const char *const *images_curated_versions(const images_curated *ci, const char *runtime)
{
	const curated_runtime *r = find_rt(ci, runtime);
	if (!r)
		return NULL;
	return r->versions.n ? (const char *const *)r->versions.v : empty_list;
}

const char *images_curated_default(const images_curated *ci, const char *runtime)
{
	const curated_runtime *r = find_rt(ci, runtime);
	return r ? r->def : NULL;
}

const char *const *images_curated_users(const images_curated *ci)
{
	return ci->users.n ? (const char *const *)ci->users.v : empty_list;
}

bool images_curated_has_user(const images_curated *ci, const char *user)
{
	for (size_t i = 0; i < ci->users.n; i++)
		if (!strcmp(ci->users.v[i], user))
			return true;
	return false;
}

void images_catalog_with_user(const images_catalog *c, const char *user, cbl_strv *out)
{
	images_platform host;
	images_platform_host(&host);
	for (int pass = 0; c && pass < 2; pass++)
		for (size_t i = 0; i < c->n; i++) {
			const images_curated *ci = &c->img[i];
			if (ci->maintained == (pass == 0) && (!ci->arch || !strcmp(ci->arch, host.arch)) &&
			    images_curated_has_user(ci, user))
				cbl_strv_push(out, ci->name);
		}
	images_platform_release(&host);
}

void images_catalog_having(const images_catalog *c, const char *runtime, const char *version, cbl_strv *out)
{
	images_platform host;
	images_platform_host(&host);
	/* two passes: the maintained images first */
	for (int pass = 0; c && pass < 2; pass++)
		for (size_t i = 0; i < c->n; i++) {
			const images_curated *ci = &c->img[i];
			if (ci->maintained != (pass == 0) || (ci->arch && strcmp(ci->arch, host.arch)))
				continue;
			if (images_runtime_check(ci, runtime, version, NULL, NULL) == 0)
				cbl_strv_push(out, ci->name);
		}
	images_platform_release(&host);
}

static void join(cbl_buf *b, const char *const *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cbl_buf_printf(b, "%s%s", i ? ", " : "", v[i]);
}

/* Picks the key a version form means among keys, or NULL. */
static const char *pick(const char *const *keys, size_t n, const char *want)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(keys[i], want))
			return keys[i];
	size_t wl = strlen(want);
	bool latest = !strcmp(want, "latest");
	bool dotx = wl > 2 && !strcmp(want + wl - 2, ".x");
	if (!latest && !dotx)
		return NULL;
	const char *best = NULL;
	size_t pl = dotx ? wl - 2 : 0;
	for (size_t i = 0; i < n; i++) {
		const char *k = keys[i];
		if (dotx && !(strlen(k) >= pl && !strncmp(k, want, pl) && (k[pl] == '\0' || k[pl] == '.')))
			continue;
		if (!best || strverscmp(k, best) > 0)
			best = k;
	}
	return best;
}

/* ---- the host ------------------------------------------------------------ */

static const struct host_rt {
	const char *runtime;
	const char *cmd;
	const char *arg;
	bool major_only;
} host_rts[] = {
	{"nodejs", "node", "--version", true},
	{"python", "python3", "--version", false},
	{"java", "java", "-version", true},
	{"golang", "go", "version", false},
	{"ruby", "ruby", "--version", false},
	{"php", "php", "--version", false},
	{"dotnet", "dotnet", "--version", false},
	{"rust", "rustc", "--version", false},
	{"docker", "docker", "--version", true},
};

static const struct host_rt *host_rt_find(const char *runtime)
{
	for (size_t i = 0; i < ARRAY_SIZE(host_rts); i++)
		if (!strcmp(host_rts[i].runtime, runtime))
			return &host_rts[i];
	return NULL;
}

static char *path_lookup(const char *cmd)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path;;) {
		const char *e = strchr(p, ':');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l) {
			char *f = cbl_xasprintf("%.*s/%s", (int)l, p, cmd);
			struct stat st;
			if (stat(f, &st) == 0 && S_ISREG(st.st_mode) && access(f, X_OK) == 0)
				return f;
			free(f);
		}
		if (!e)
			return NULL;
		p = e + 1;
	}
}

void images_host_runtimes(cbl_strv *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(host_rts); i++) {
		char *f = path_lookup(host_rts[i].cmd);
		if (f)
			cbl_strv_push(out, host_rts[i].runtime);
		free(f);
	}
}

/* Where the version number starts in `X --version` output. */
static const char *version_start(const char *runtime, const char *output)
{
	const char *p = output;
	if (!strcmp(runtime, "java")) {
		/* openjdk version "17.0.9" / java version "1.8.0_392" */
		const char *q = strstr(output, "version \"");
		if (q)
			p = q + 9;
	} else if (!strcmp(runtime, "golang")) {
		const char *q = strstr(output, "go1.");
		if (q)
			p = q + 2;
	}
	while (*p && !(*p >= '0' && *p <= '9'))
		p++;
	return *p ? p : NULL;
}

char *images_host_parse_version(const char *runtime, const char *output)
{
	const struct host_rt *h = host_rt_find(runtime);
	if (!h || !output)
		return NULL;
	const char *p = version_start(runtime, output);
	if (!p)
		return NULL;
	unsigned long major = strtoul(p, (char **)&p, 10), minor = 0;
	bool has_minor = false;
	if (*p == '.' && p[1] >= '0' && p[1] <= '9') {
		minor = strtoul(p + 1, (char **)&p, 10);
		has_minor = true;
	}
	if (!strcmp(runtime, "java") && major == 1 && has_minor)
		return cbl_xasprintf("%lu", minor); /* 1.8 = 8 */
	if (h->major_only || !has_minor)
		return cbl_xasprintf("%lu", major);
	return cbl_xasprintf("%lu.%lu", major, minor);
}

char *images_host_parse_full_version(const char *runtime, const char *output)
{
	if (!host_rt_find(runtime) || !output)
		return NULL;
	const char *p = version_start(runtime, output);
	if (!p)
		return NULL;
	size_t n = 0;
	while ((p[n] >= '0' && p[n] <= '9') || (p[n] == '.' && p[n + 1] >= '0' && p[n + 1] <= '9'))
		n++;
	if (!strcmp(runtime, "java") && !strncmp(p, "1.", 2) && n > 2) {
		p += 2; /* 1.8.0 = 8.0 */
		n -= 2;
	}
	return cbl_xstrndup(p, n);
}

/* Runs `path arg` with stdout and stderr captured (4 KiB, 5 s at most). */
static int run_capture(const char *path, const char *arg, char **out)
{
	int pfd[2];
	*out = NULL;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	char *argv[] = {(char *)path, (char *)arg, NULL};
	extern char **environ;
	pid_t pid;
	int rc = posix_spawn(&pid, path, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (rc) {
		close(pfd[0]);
		return -1;
	}
	cbl_buf b = CBL_BUF_INIT;
	char buf[1024];
	int64_t left_ms = 5000;
	while (b.len < 4096 && left_ms > 0) {
		struct pollfd p = {pfd[0], POLLIN, 0};
		int pr = poll(&p, 1, 100);
		if (pr < 0 && errno != EINTR)
			break;
		if (pr <= 0) {
			left_ms -= 100;
			continue;
		}
		ssize_t r = read(pfd[0], buf, sizeof(buf));
		if (r <= 0)
			break;
		cbl_buf_append(&b, buf, (size_t)r);
	}
	close(pfd[0]);
	if (left_ms <= 0)
		kill(pid, SIGKILL);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*out = cbl_buf_detach(&b);
	return 0;
}

/* `X --version` of the host's runtime: its output (caller frees). */
static int host_probe(const char *runtime, char **out, cbl_error **err)
{
	const struct host_rt *h = host_rt_find(runtime);
	*out = NULL;
	if (!h)
		return cbl_error_set(err, CBL_ENOENT, "no host detection for runtime '%s'", runtime);
	char *path = path_lookup(h->cmd);
	if (!path)
		return cbl_error_set(err, CBL_ENOENT, "%s is not on this host's PATH", h->cmd);
	char *txt = NULL;
	int rc = run_capture(path, h->arg, &txt);
	if (rc || !version_start(runtime, txt)) {
		rc = cbl_error_set(err, CBL_EIO, "could not read the version of %s (%s %s)", runtime, path, h->arg);
		free(txt);
		free(path);
		return rc;
	}
	free(path);
	*out = txt;
	return 0;
}

int images_host_runtime_version(const char *runtime, char **out, cbl_error **err)
{
	char *txt = NULL;
	int rc = host_probe(runtime, &txt, err);
	*out = rc ? NULL : images_host_parse_version(runtime, txt);
	free(txt);
	return rc;
}

/* The leading letters of a version form: "corretto" of corretto17. */
static size_t dist_prefix(const char *want)
{
	size_t n = 0;
	while ((want[n] >= 'a' && want[n] <= 'z') || (want[n] >= 'A' && want[n] <= 'Z'))
		n++;
	return want[n] >= '0' && want[n] <= '9' ? n : 0;
}

/* The rule of images.h: want's components (its distribution prefix and a
 * trailing ".x" dropped) are the leading components of have, compared
 * whole (3.1 is not a prefix of 3.11.7). */
bool images_host_version_matches(const char *have, const char *want)
{
	if (!strcmp(want, "latest"))
		return true;
	const char *w = want + dist_prefix(want);
	size_t wl = strlen(w);
	if (wl > 2 && !strcmp(w + wl - 2, ".x"))
		wl -= 2;
	if (!wl || !(w[0] >= '0' && w[0] <= '9'))
		return false;
	return !strncmp(have, w, wl) && (have[wl] == '\0' || have[wl] == '.');
}

int images_host_choose(const char *runtime, const char *version, images_host_choice *out, cbl_error **err)
{
	char *txt = NULL;
	memset(out, 0, sizeof(*out));
	cbl_strv have = CBL_STRV_INIT;
	images_host_runtimes(&have);
	bool found = false;
	for (size_t i = 0; i < have.n; i++)
		found |= !strcmp(have.v[i], runtime);
	cbl_strv_release(&have);
	if (!found)
		return 0;
	int rc = host_probe(runtime, &txt, err);
	if (rc)
		return rc;
	out->have = images_host_parse_full_version(runtime, txt);
	out->key = images_host_parse_version(runtime, txt);
	out->match = images_host_version_matches(out->have, version);
	size_t pl = dist_prefix(version);
	if (out->match && pl) {
		/* corretto17 on an OpenJDK 17: matched, but another distribution */
		char *dist = cbl_xstrndup(version, pl);
		out->other_dist = !strcasestr(txt, dist);
		free(dist);
	}
	free(txt);
	return 0;
}

void images_host_choice_release(images_host_choice *c)
{
	free(c->have);
	free(c->key);
	memset(c, 0, sizeof(*c));
}

int images_runtime_check(const images_curated *ci, const char *runtime, const char *version,
			 char **out_version, cbl_error **err)
{
	cbl_buf list = CBL_BUF_INIT;
	int rc = 0;
	if (out_version)
		*out_version = NULL;
	if (!runtime || !version)
		return cbl_error_set(err, CBL_EINVAL, "runtime-versions: empty runtime or version");
	if (!ci) {
		images_host_choice ch;
		rc = images_host_choose(runtime, version, &ch, err);
		if (rc)
			goto out;
		if (!ch.have) {
			cbl_strv have = CBL_STRV_INIT;
			images_host_runtimes(&have);
			join(&list, (const char *const *)have.v, have.n);
			rc = cbl_error_set(err, CBL_EINVAL,
					   "Unknown runtime named '%s'. This build image has the following runtimes: %s",
					   runtime, have.n ? list.ptr : "(none)");
			cbl_strv_release(&have);
		} else if (!ch.match) {
			rc = cbl_error_set(err, CBL_EINVAL,
					   "Unknown runtime version named '%s' of %s. This build image has the following "
					   "versions: %s",
					   version, runtime, ch.key);
		} else if (out_version) {
			*out_version = ch.key;
			ch.key = NULL;
		}
		images_host_choice_release(&ch);
		goto out;
	}
	const curated_runtime *r = find_rt(ci, runtime);
	if (!r) {
		join(&list, (const char *const *)ci->runtime_names.v, ci->runtime_names.n);
		rc = cbl_error_set(err, CBL_EINVAL,
				   "Unknown runtime named '%s'. This build image has the following runtimes: %s", runtime,
				   ci->runtime_names.n ? list.ptr : "(none)");
		goto out;
	}
	const char *k = pick((const char *const *)r->versions.v, r->versions.n, version);
	if (!k) {
		join(&list, (const char *const *)r->versions.v, r->versions.n);
		rc = cbl_error_set(err, CBL_EINVAL,
				   "Unknown runtime version named '%s' of %s. This build image has the following "
				   "versions: %s",
				   version, runtime, r->versions.n ? list.ptr : "(none)");
		goto out;
	}
	if (out_version)
		*out_version = cbl_xstrdup(k);
out:
	cbl_buf_release(&list);
	return rc;
}
