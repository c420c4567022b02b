/* Unit tests for server/query.c: CloudWatch's query protocol, form to the
 * JSON protocol's shapes and back to XML. */
#include "server/query.h"
#include "tests/unit/tap.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void test_parse(void)
{
	const char *form = "Action=GetMetricStatistics&Version=2010-08-01&Namespace=AWS%2FCodeBuild"
			   "&MetricName=FailedBuilds&Dimensions.member.1.Name=ProjectName"
			   "&Dimensions.member.1.Value=my+project&Dimensions.member.2.Name=BuildId"
			   "&Dimensions.member.2.Value=a%3Ab&Statistics.member.1=Sum&Statistics.member.2=Average"
			   "&Period=60&StartTime=2026-12-06T00%3A00%3A00Z";
	const char *target = NULL;
	json_t *req = NULL;
	cbl_error *err = NULL;
	ok(server_query_parse(form, strlen(form), &target, &req, &err) == 0, "a GetMetricStatistics form parses");
	ok(target && !strcmp(target, "GraniteServiceVersion20100801.GetMetricStatistics"), "its target");
	ok(!strcmp(json_string_value(json_object_get(req, "Namespace")), "AWS/CodeBuild"), "%%-decoded");
	json_t *dims = json_object_get(req, "Dimensions");
	ok(json_array_size(dims) == 2, "Dimensions.member.N is a list");
	ok(!strcmp(json_string_value(json_object_get(json_array_get(dims, 0), "Value")), "my project"),
	   "'+' is a space");
	ok(!strcmp(json_string_value(json_object_get(json_array_get(dims, 1), "Value")), "a:b"), "second member");
	json_t *stats = json_object_get(req, "Statistics");
	ok(json_array_size(stats) == 2 && !strcmp(json_string_value(json_array_get(stats, 1)), "Average"),
	   "a list of strings");
	ok(!json_object_get(req, "Action") && !json_object_get(req, "Version"), "Action and Version are not parameters");
	json_decref(req);

	const char *nested = "Action=GetMetricData&MetricDataQueries.member.1.Id=q"
			     "&MetricDataQueries.member.1.MetricStat.Metric.MetricName=Builds"
			     "&MetricDataQueries.member.1.MetricStat.Metric.Dimensions.member.1.Name=ProjectName"
			     "&MetricDataQueries.member.1.MetricStat.Period=300";
	ok(server_query_parse(nested, strlen(nested), &target, &req, &err) == 0, "nested lists parse");
	json_t *q = json_array_get(json_object_get(req, "MetricDataQueries"), 0);
	json_t *metric = json_object_get(json_object_get(q, "MetricStat"), "Metric");
	ok(!strcmp(json_string_value(json_object_get(metric, "MetricName")), "Builds"), "structure in a list");
	ok(json_array_size(json_object_get(metric, "Dimensions")) == 1, "list in a structure in a list");
	json_decref(req);

	static const char *const bad[] = {
		"Action=PutMetricData&Namespace=x",             /* not served */
		"Namespace=x",                                   /* no Action */
		"Action=ListMetrics&Dimensions.member.0.Name=x", /* index 0 */
		"Action=ListMetrics&Dimensions.member.x.Name=x", /* not an index */
		"Action=ListMetrics&A=1&A.B=2",                  /* a value and a structure */
		"Action=ListMetrics&A=1&A=2",                    /* twice */
		"Action=ListMetrics&A=%zz",                      /* bad escape */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		req = NULL;
		int rc = server_query_parse(bad[i], strlen(bad[i]), &target, &req, &err);
		ok(rc == CBL_EINVAL && err && !req, "refused: %s (%s)", bad[i], err ? err->msg : "-");
		cbl_error_free(err);
		err = NULL;
	}
	ok(server_query_is_form("application/x-www-form-urlencoded; charset=utf-8"), "form content type");
	ok(!server_query_is_form("application/x-amz-json-1.1") && !server_query_is_form(NULL), "other types");
}

static void test_xml(void)
{
	json_t *resp = json_pack("{s:s, s:[{s:f, s:f, s:s}], s:o}", "Label", "FailedBuilds", "Datapoints",
				 "Timestamp", 1796515200.0, "Sum", 2.5, "Unit", "Count", "Empty", json_null());
	size_t len = 0;
	char *x = server_query_response("GraniteServiceVersion20100801.GetMetricStatistics", resp, "rid-1", &len);
	ok(len == strlen(x), "length");
	ok(strstr(x, "<GetMetricStatisticsResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\">") != NULL,
	   "the response element and namespace");
	ok(strstr(x, "<GetMetricStatisticsResult><Label>FailedBuilds</Label><Datapoints><member>") != NULL,
	   "result, a list's members");
	ok(strstr(x, "<Timestamp>2026-12-06T00:00:00.000Z</Timestamp>") != NULL, "epoch seconds become ISO 8601");
	ok(strstr(x, "<Sum>2.5</Sum>") != NULL && !strstr(x, "Empty"), "numbers; nulls left out");
	ok(strstr(x, "<RequestId>rid-1</RequestId>") != NULL, "request id");
	free(x);
	json_decref(resp);
	x = server_query_error("InvalidParameterValue", "bad <thing> & more", true, "rid-2", &len);
	ok(strstr(x, "<Type>Sender</Type><Code>InvalidParameterValue</Code>") != NULL, "error code");
	ok(strstr(x, "bad &lt;thing&gt; &amp; more") != NULL, "the message escaped");
	free(x);
}

int main(void)
{
	test_parse();
	test_xml();
	return tap_done();
}
