/* server/events.c - see server/events.h. */
#include "server/events.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/curl.h"
#include "util/fs.h"
#include "util/spawn.h"
#include "util/time.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/banned.h"

struct server_events {
	server_events_opts o;
	char **arns, **urls; /* the topics' mapping */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

static void say(const server_events *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const server_events *e, const char *fmt, ...)
{
	if (!e->o.log)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	e->o.log(line, e->o.log_payload);
}

static size_t discard(char *p, size_t size, size_t n, void *u)
{
	(void)p;
	(void)u;
	return size * n;
}

/* POSTs body to url: 0 on a 2xx, else -1 with why in msg. */
static int post(const char *url, const char *body, char *msg, size_t msg_size)
{
	CURL *c = curl_easy_init();
	if (!c) {
		snprintf(msg, msg_size, "libcurl: cannot make a handle");
		return -1;
	}
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	int ret = 0;
	if (rc != CURLE_OK) {
		snprintf(msg, msg_size, "%s", curl_easy_strerror(rc));
		ret = -1;
	} else if (status < 200 || status > 299) {
		snprintf(msg, msg_size, "HTTP %ld", status);
		ret = -1;
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return ret;
}

extern char **environ;

/* Runs `/bin/sh -c command` with body on its stdin (and in
 * $CODEBUILD_LOCAL_NOTIFICATION): 0 when it exits 0, else -1 with why. */
static int run_command(const char *command, const char *body, char *msg, size_t msg_size)
{
	int in[2];
	if (pipe2(in, O_CLOEXEC) < 0) {
		snprintf(msg, msg_size, "pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawnattr_t at;
	cbl_spawnattr_clean(&at, 0);
	cbl_strv env = CBL_STRV_INIT;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "AWS_", 4)) /* serve's keys are not the command's */
			cbl_strv_push(&env, *e);
	cbl_strv_pushf(&env, "CODEBUILD_LOCAL_NOTIFICATION=%s", body);
	char *argv[] = {(char *)"sh", (char *)"-c", (char *)command, NULL};
	pid_t pid = -1;
	int rc = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, env.v);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	cbl_strv_release(&env);
	close(in[0]);
	if (rc == 0)
		cbl_write_all(in[1], body, strlen(body));
	close(in[1]);
	if (rc) {
		snprintf(msg, msg_size, "cannot run /bin/sh: %s", strerror(rc));
		return -1;
	}
	int ws = 0;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
		return 0;
	snprintf(msg, msg_size, "the command %s %d", WIFEXITED(ws) ? "exited" : "was killed by signal",
		 WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
	return -1;
}

/* Delivers body to where (a URL, or "exec:COMMAND"). */
static int deliver_one(const char *where, const char *body, char *msg, size_t msg_size)
{
	if (!strncmp(where, "exec:", 5))
		return run_command(where + 5, body, msg, msg_size);
	return post(where, body, msg, msg_size);
}

static const char *url_of(const server_events *e, const char *dest)
{
	if (!strcmp(dest, "events"))
		return e->o.events_url;
	for (size_t i = 0; i < e->o.n_topics; i++)
		if (!strcmp(e->arns[i], dest))
			return e->urls[i];
	return NULL;
}

/* One pass over the queues' heads: delivered, retried later, or (an
 * action nothing maps) dropped with a line saying so. */
static void deliver(server_events *e)
{
	store_outbox_item *items = NULL;
	size_t n = 0;
	cbl_error *err = NULL;
	for (int round = 0; round < 100; round++) {
		if (store_outbox_heads(e->o.home, cbl_now_us() / 1000, &items, &n, &err) < 0) {
			say(e, "events: %s", err->msg);
			cbl_error_free(err);
			return;
		}
		bool progress = false;
		for (size_t i = 0; i < n; i++) {
			const char *url = url_of(e, items[i].dest);
			char why[256] = "";
			int64_t retry = 0;
			if (!url && !strcmp(items[i].dest, "events"))
				continue; /* no webhook: they wait for one */
			if (!url)
				say(e, "alarm action %s: no --sns-topic maps it: notification dropped", items[i].dest);
			else if (deliver_one(url, items[i].body, why, sizeof(why)) < 0) {
				int a = items[i].attempts < 6 ? items[i].attempts : 6;
				retry = cbl_now_us() / 1000 + (1000LL << a > 60000 ? 60000 : 1000LL << a);
				say(e, "events: delivery to %s failed (%s): retried in %lld s", url, why,
				    (long long)(retry - cbl_now_us() / 1000 + 999) / 1000);
			}
			if (store_outbox_done(e->o.home, items[i].seq, retry, &err) < 0) {
				say(e, "events: %s", err->msg);
				cbl_error_free(err);
				err = NULL;
			}
			progress |= !retry;
		}
		store_outbox_items_free(items, n);
		if (!progress || e->stop)
			return;
	}
}

static void *run(void *arg)
{
	server_events *e = arg;
	pthread_mutex_lock(&e->mu);
	while (!e->stop) {
		pthread_mutex_unlock(&e->mu);
		cbl_error *err = NULL;
		if (store_alarms_evaluate(e->o.home, cbl_now_us() / 1000, &err) < 0) {
			say(e, "alarms: %s", err->msg);
			cbl_error_free(err);
		}
		deliver(e);
		pthread_mutex_lock(&e->mu);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = ts.tv_nsec + (int64_t)e->o.interval_ms * 1000000;
		ts.tv_sec += ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		if (!e->stop)
			pthread_cond_timedwait(&e->cv, &e->mu, &ts);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

static bool is_http_url(const char *u)
{
	return !strncmp(u, "http://", 7) || !strncmp(u, "https://", 8);
}

int server_events_start(const server_events_opts *o, server_events **out, cbl_error **err)
{
	server_events *e = cbl_xcalloc(1, sizeof(*e));
	e->o = *o;
	if (!e->o.interval_ms)
		e->o.interval_ms = 1000;
	e->arns = cbl_xcalloc(o->n_topics + 1, sizeof(char *));
	e->urls = cbl_xcalloc(o->n_topics + 1, sizeof(char *));
	int rc = 0;
	if (o->events_url && !is_http_url(o->events_url))
		rc = cbl_error_set(err, CBL_EINVAL, "--events-webhook %s: want an http:// or https:// URL", o->events_url);
	for (size_t i = 0; !rc && i < o->n_topics; i++) {
		const char *eq = strchr(o->topics[i], '=');
		if (!eq || strncmp(o->topics[i], "arn:", 4) ||
		    (!is_http_url(eq + 1) && (strncmp(eq + 1, "exec:", 5) || !eq[6]))) {
			rc = cbl_error_set(err, CBL_EINVAL,
					   "--sns-topic %s: want ARN=URL or ARN=exec:COMMAND "
					   "(arn:aws:sns:REGION:ACCOUNT:TOPIC=http://...)",
					   o->topics[i]);
			break;
		}
		e->arns[i] = cbl_xstrndup(o->topics[i], (size_t)(eq - o->topics[i]));
		e->urls[i] = cbl_xstrdup(eq + 1);
	}
	if (!rc && (o->events_url || o->n_topics)) /* (exec: alone needs none; loading is cheap) */
		rc = cbl_curl_load(err);
	if (!rc && o->events_url)
		rc = store_events_enable(o->home, err);
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	if (!rc && pthread_create(&e->thread, NULL, run, e) != 0)
		rc = cbl_error_set(err, CBL_EIO, "cannot start the events thread");
	if (rc) {
		e->thread = 0;
		server_events_stop(e);
		return rc;
	}
	*out = e;
	return 0;
}

void server_events_stop(server_events *e)
{
	if (!e)
		return;
	if (e->thread) {
		pthread_mutex_lock(&e->mu);
		e->stop = true;
		pthread_cond_signal(&e->cv);
		pthread_mutex_unlock(&e->mu);
		pthread_join(e->thread, NULL);
	}
	for (size_t i = 0; i < e->o.n_topics; i++) {
		free(e->arns[i]);
		free(e->urls[i]);
	}
	free(e->arns);
	free(e->urls);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cv);
	free(e);
}
