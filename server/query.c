/* server/query.c - see server/query.h.  libxml2 writes the XML and
 * unescapes the form; jansson holds the shapes in between. */
#include "server/query.h"
#include "store/api.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/time.h"

#include <libxml/uri.h>
#include <libxml/xmlwriter.h>
#include <stdlib.h>
#include <string.h>

#include "util/banned.h"

#define XMLNS "http://monitoring.amazonaws.com/doc/2010-08-01/"

static const char *const actions[][2] = {
	{"GetMetricStatistics", STORE_TARGET_CLOUDWATCH "GetMetricStatistics"},
	{"GetMetricData", STORE_TARGET_CLOUDWATCH "GetMetricData"},
	{"ListMetrics", STORE_TARGET_CLOUDWATCH "ListMetrics"},
	{"PutMetricAlarm", STORE_TARGET_CLOUDWATCH "PutMetricAlarm"},
	{"DescribeAlarms", STORE_TARGET_CLOUDWATCH "DescribeAlarms"},
	{"DeleteAlarms", STORE_TARGET_CLOUDWATCH "DeleteAlarms"},
	{"SetAlarmState", STORE_TARGET_CLOUDWATCH "SetAlarmState"},
};

bool server_query_is_form(const char *ct)
{
	static const char form[] = "application/x-www-form-urlencoded";
	return ct && !strncasecmp(ct, form, sizeof(form) - 1) && (!ct[sizeof(form) - 1] || ct[sizeof(form) - 1] == ';');
}

/* %-decoded, '+' as a space; NULL when malformed. */
static bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static char *unescape(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '%' && (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2])))
			return NULL;
	char *t = cbl_xstrndup(s, n);
	for (char *p = t; *p; p++)
		if (*p == '+')
			*p = ' ';
	char *u = xmlURIUnescapeString(t, 0, NULL);
	free(t);
	if (!u)
		return NULL;
	char *r = cbl_xstrdup(u);
	xmlFree(u);
	return r;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* The child of cur named name: an object or array (want_array) made
 * when missing; NULL when it is something else. */
static json_t *child_of(json_t *cur, const char *name, bool want_array)
{
	json_t *c = json_object_get(cur, name);
	if (!c) {
		c = want_array ? json_array() : json_object();
		json_object_set_new(cur, name, c);
	}
	return (want_array ? json_is_array(c) : json_is_object(c)) ? c : NULL;
}

/* Puts value at the dotted key path under root; "Name.member.N" is the
 * N-th (1-based) item of the list Name. */
static int put_path(json_t *root, const char *key, const char *value, cbl_error **err)
{
	char *k = cbl_xstrdup(key), *segs[32], *save = NULL;
	size_t n = 0;
	for (char *t = strtok_r(k, ".", &save); t && n < 32; t = strtok_r(NULL, ".", &save))
		segs[n++] = t;
	json_t *cur = root;
	int rc = 0;
	for (size_t i = 0; i < n && !rc;) {
		bool list = i + 1 < n && !strcmp(segs[i + 1], "member");
		if (!list && i == n - 1) {
			if (json_object_get(cur, segs[i]))
				rc = cbl_error_set(err, CBL_EINVAL, "The parameter %s is given twice", key);
			else
				json_object_set_new(cur, segs[i], json_string(value));
			break;
		}
		if (!list) {
			cur = child_of(cur, segs[i], false);
			i++;
		} else {
			json_t *arr = child_of(cur, segs[i], true);
			long idx = i + 2 < n && all_digits(segs[i + 2]) ? strtol(segs[i + 2], NULL, 10) : 0;
			if (!arr || idx < 1 || idx > 1000) {
				cur = NULL;
				break;
			}
			while (json_array_size(arr) < (size_t)idx)
				json_array_append_new(arr, json_null());
			if (i + 2 == n - 1) {
				json_array_set_new(arr, (size_t)idx - 1, json_string(value));
				break;
			}
			if (json_is_null(json_array_get(arr, (size_t)idx - 1)))
				json_array_set_new(arr, (size_t)idx - 1, json_object());
			cur = json_array_get(arr, (size_t)idx - 1);
			if (!json_is_object(cur))
				cur = NULL;
			i += 3;
		}
		if (!cur)
			break;
	}
	if (!rc && (!cur || n == 32))
		rc = cbl_error_set(err, CBL_EINVAL, "The parameter %s is malformed or conflicts with another", key);
	free(k);
	return rc;
}

int server_query_parse(const char *body, size_t len, const char **target, json_t **request, cbl_error **err)
{
	json_t *req = json_object();
	const char *action = NULL;
	int rc = 0;
	*target = NULL;
	for (size_t i = 0; i < len && !rc;) {
		size_t j = i;
		while (j < len && body[j] != '&')
			j++;
		const char *eq = memchr(body + i, '=', j - i);
		if (j > i) {
			char *k = unescape(body + i, (size_t)((eq ? eq : body + j) - (body + i)));
			char *v = eq ? unescape(eq + 1, (size_t)(body + j - eq - 1)) : cbl_xstrdup("");
			if (!k || !v)
				rc = cbl_error_set(err, CBL_EINVAL, "The request body is not a valid form");
			else if (!strcmp(k, "Action"))
				json_object_set_new(req, "Action", json_string(v));
			else if (strcmp(k, "Version"))
				rc = put_path(req, k, v, err);
			free(k);
			free(v);
		}
		i = j + 1;
	}
	action = json_string_value(json_object_get(req, "Action"));
	for (size_t i = 0; !rc && action && i < sizeof(actions) / sizeof(actions[0]); i++)
		if (!strcmp(actions[i][0], action))
			*target = actions[i][1];
	if (!rc && !*target)
		rc = cbl_error_set(err, CBL_EINVAL, "Operation %s is not supported by codebuild-local",
				   action ? action : "(no Action)");
	if (rc) {
		json_decref(req);
		return rc;
	}
	json_object_del(req, "Action");
	*request = req;
	return 0;
}

static bool is_time_key(const char *k)
{
	size_t n = strlen(k);
	return (n >= 9 && !strcmp(k + n - 9, "Timestamp")) || !strcmp(k, "Timestamps");
}

static void write_value(xmlTextWriterPtr w, const json_t *v, bool time);

/* The answers' maps (a datapoint's ExtendedStatistics): entry, key, value. */
static bool is_map_key(const char *k)
{
	return !strcmp(k, "ExtendedStatistics");
}

static void write_map(xmlTextWriterPtr w, const json_t *v)
{
	const char *k;
	json_t *c;
	json_object_foreach((json_t *)v, k, c)
	{
		xmlTextWriterStartElement(w, BAD_CAST "entry");
		xmlTextWriterWriteElement(w, BAD_CAST "key", BAD_CAST k);
		xmlTextWriterStartElement(w, BAD_CAST "value");
		write_value(w, c, false);
		xmlTextWriterEndElement(w);
		xmlTextWriterEndElement(w);
	}
}

static void write_members(xmlTextWriterPtr w, const char *name, const json_t *v, bool time)
{
	xmlTextWriterStartElement(w, BAD_CAST name);
	if (json_is_object(v) && is_map_key(name)) {
		write_map(w, v);
	} else if (json_is_array(v)) {
		size_t i;
		json_t *item;
		json_array_foreach(v, i, item)
		{
			xmlTextWriterStartElement(w, BAD_CAST "member");
			write_value(w, item, time);
			xmlTextWriterEndElement(w);
		}
	} else {
		write_value(w, v, time);
	}
	xmlTextWriterEndElement(w);
}

static void write_value(xmlTextWriterPtr w, const json_t *v, bool time)
{
	char buf[64];
	if (json_is_object(v)) {
		const char *k;
		json_t *c;
		json_object_foreach((json_t *)v, k, c)
		{
			if (!json_is_null(c))
				write_members(w, k, c, is_time_key(k));
		}
	} else if (json_is_string(v)) {
		xmlTextWriterWriteString(w, BAD_CAST json_string_value(v));
	} else if (json_is_number(v) && time) {
		cbl_format_iso_time(buf, (int64_t)(json_number_value(v) * 1e6));
		xmlTextWriterWriteString(w, BAD_CAST buf);
	} else if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
		xmlTextWriterWriteString(w, BAD_CAST buf);
	} else if (json_is_real(v)) {
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
		xmlTextWriterWriteString(w, BAD_CAST buf);
	} else if (json_is_boolean(v)) {
		xmlTextWriterWriteString(w, BAD_CAST(json_is_true(v) ? "true" : "false"));
	}
}

static char *finish(xmlBufferPtr b, xmlTextWriterPtr w, size_t *len)
{
	xmlTextWriterEndDocument(w);
	xmlFreeTextWriter(w);
	char *out = cbl_xstrdup((const char *)xmlBufferContent(b));
	*len = strlen(out);
	xmlBufferFree(b);
	return out;
}

char *server_query_response(const char *target, const json_t *response, const char *request_id, size_t *len)
{
	const char *dot = strrchr(target, '.');
	const char *op = dot ? dot + 1 : target;
	char *resp_el = cbl_xasprintf("%sResponse", op), *res_el = cbl_xasprintf("%sResult", op);
	xmlBufferPtr b = xmlBufferCreate();
	xmlTextWriterPtr w = xmlNewTextWriterMemory(b, 0);
	xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL);
	xmlTextWriterStartElement(w, BAD_CAST resp_el);
	xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns", BAD_CAST XMLNS);
	xmlTextWriterStartElement(w, BAD_CAST res_el);
	if (response)
		write_value(w, response, false);
	xmlTextWriterEndElement(w);
	xmlTextWriterStartElement(w, BAD_CAST "ResponseMetadata");
	xmlTextWriterWriteElement(w, BAD_CAST "RequestId", BAD_CAST request_id);
	xmlTextWriterEndElement(w);
	xmlTextWriterEndElement(w);
	free(resp_el);
	free(res_el);
	return finish(b, w, len);
}

char *server_query_error(const char *code, const char *message, bool sender, const char *request_id, size_t *len)
{
	xmlBufferPtr b = xmlBufferCreate();
	xmlTextWriterPtr w = xmlNewTextWriterMemory(b, 0);
	xmlTextWriterStartDocument(w, NULL, "UTF-8", NULL);
	xmlTextWriterStartElement(w, BAD_CAST "ErrorResponse");
	xmlTextWriterWriteAttribute(w, BAD_CAST "xmlns", BAD_CAST XMLNS);
	xmlTextWriterStartElement(w, BAD_CAST "Error");
	xmlTextWriterWriteElement(w, BAD_CAST "Type", BAD_CAST(sender ? "Sender" : "Receiver"));
	xmlTextWriterWriteElement(w, BAD_CAST "Code", BAD_CAST code);
	xmlTextWriterWriteElement(w, BAD_CAST "Message", BAD_CAST(message ? message : ""));
	xmlTextWriterEndElement(w);
	xmlTextWriterWriteElement(w, BAD_CAST "RequestId", BAD_CAST request_id);
	xmlTextWriterEndElement(w);
	return finish(b, w, len);
}
