/* store/webhooks.c - CreateWebhook, UpdateWebhook, DeleteWebhook (store/api.h).
 *
 * A webhook is kept where the service shows it: the project's `webhook`
 * member (Webhook shape, model member order), so BatchGetProjects returns
 * it.  Nothing is registered with a repository host: every webhook is what
 * the service calls a manual one, whose payloadUrl and secret the caller
 * sets up on the host.  payloadUrl names "/webhooks/<project>" (relative to
 * the server's address), but `serve` takes no deliveries: events are
 * simulated with `run --webhook-event` and the filter groups, stored as
 * given, are evaluated offline by `webhook test` (runner/webhook.c).  The secret (32 random bytes, hex) is answered by CreateWebhook and
 * by an UpdateWebhook with rotateSecret, never by BatchGetProjects. */
#include "store/store_internal.h"
#include "util/alloc.h"
#include "util/array.h"
#include "util/json.h"
#include "util/time.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util/banned.h"

/* Members of the Webhook shape a request may set, in the model's order. */
static const char *const settable[] = {"branchFilter", "filterGroups", "buildType", "manualCreation",
				       "scopeConfiguration", "pullRequestBuildPolicy"};

static int new_secret(char hex[65], cbl_error **err)
{
	unsigned char raw[32];
	size_t got = 0;
	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return cbl_error_set_errno(err, CBL_EIO, errno, "cannot make a webhook secret");
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(hex + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

/* The Webhook in model order from the current one and the request. */
static json_t *webhook_record(const char *project, const json_t *cur, const json_t *req,
			      const char *secret)
{
	json_t *w = json_object();
	char *url = cbl_xasprintf("/webhooks/%s", project);
	json_object_set_new(w, "url", json_string(url));
	json_object_set_new(w, "payloadUrl", json_string(url));
	free(url);
	if (secret)
		json_object_set_new(w, "secret", json_string(secret));
	else if (json_object_get(cur, "secret"))
		json_object_set(w, "secret", json_object_get(cur, "secret"));
	for (size_t i = 0; i < ARRAY_SIZE(settable); i++) {
		json_t *v = json_object_get(req, settable[i]);
		if (!v || json_is_null(v))
			v = json_object_get(cur, settable[i]);
		if (v && !json_is_null(v))
			json_object_set(w, settable[i], v);
		if (i == 3) {
			json_t *t = json_object_get(cur, "lastModifiedSecret");
			if (secret)
				json_object_set_new(w, "lastModifiedSecret", store_json_time(cbl_now_us() / 1000));
			else if (t)
				json_object_set(w, "lastModifiedSecret", t);
		}
	}
	json_object_set_new(w, "status", json_string("ACTIVE"));
	/* the order: pullRequestBuildPolicy after status */
	json_t *prb = json_object_get(w, "pullRequestBuildPolicy");
	if (prb) {
		json_incref(prb);
		json_object_del(w, "pullRequestBuildPolicy");
		json_object_set_new(w, "pullRequestBuildPolicy", prb);
	}
	return w;
}

static int no_webhook(const char *project, cbl_error **err)
{
	return cbl_error_set(err, CBL_ENOENT,
			     "Webhook cannot be found for project: arn:aws:codebuild:%s:%s:project/%s",
			     STORE_DEFAULT_REGION, STORE_DEFAULT_ACCOUNT, project);
}

enum wh_op { WH_CREATE, WH_UPDATE, WH_DELETE };

static int change(store_db *h, json_t *req, enum wh_op op, json_t **out, cbl_error **err)
{
	const char *name = cbl_json_str_or_empty(req, "projectName");
	json_t *rec = NULL, *w = NULL;
	char secret[65];
	bool rotate = op == WH_CREATE || json_is_true(json_object_get(req, "rotateSecret"));
	int rc = rotate ? new_secret(secret, err) : 0;
	if (!rc)
		rc = store_begin(h->db, err);
	if (rc)
		return rc;
	rc = store_db_project_get(h, name, &rec, err);
	if (rc == CBL_ENOENT) {
		cbl_error_clear(err);
		rc = store_project_not_found(name, err);
	}
	if (rc)
		goto out;
	json_t *cur = json_object_get(rec, "webhook");
	if (op == WH_CREATE && cur)
		rc = cbl_error_set(err, CBL_EEXIST,
				   "Webhook already exists for project: arn:aws:codebuild:%s:%s:project/%s",
				   STORE_DEFAULT_REGION, STORE_DEFAULT_ACCOUNT, name);
	else if (op != WH_CREATE && !cur)
		rc = no_webhook(name, err);
	if (rc)
		goto out;
	if (op == WH_DELETE) {
		json_object_del(rec, "webhook");
	} else {
		w = webhook_record(name, cur, req, rotate ? secret : NULL);
		json_object_set(rec, "webhook", w);
	}
	rc = store_db_project_replace(h, rec, err);
	if (!rc)
		rc = store_commit(h->db, err);
	if (rc)
		goto out;
	if (op == WH_DELETE) {
		*out = json_object();
	} else {
		json_t *shown = json_deep_copy(w);
		if (!rotate)
			json_object_del(shown, "secret");
		*out = json_pack("{s:o}", "webhook", shown);
	}
out:
	store_rollback(h->db);
	json_decref(rec);
	json_decref(w);
	return rc;
}

int store_op_create_webhook(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	return change(h, req, WH_CREATE, out, err);
}

int store_op_update_webhook(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	return change(h, req, WH_UPDATE, out, err);
}

int store_op_delete_webhook(store_db *h, json_t *req, json_t **out, cbl_error **err)
{
	return change(h, req, WH_DELETE, out, err);
}
