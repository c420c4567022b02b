"""GetMetricStatistics through `serve` for bench/metrics.sh: one request of
the query protocol (the AWS CLI v2's and boto3's for CloudWatch), signed
once by botocore and replayed N times on one keep-alive connection; the
same for the baseline, CodeBuild's ListProjects (the server's floor: one
signed request, one tiny query).  Prints per-request latencies in
microseconds, one request kind per line: "<kind> <p50> <p99> <max>"."""
import datetime
import http.client
import json
import os
import sys
import time
import urllib.parse

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AKID, SECRET, REGION = os.environ["AKID"], os.environ["SECRET"], os.environ["REGION"]


def signed(url, service, body, headers):
    req = AWSRequest(method="POST", url=url + "/", data=body.encode(), headers=headers)
    SigV4Auth(Credentials(AKID, SECRET), service, REGION).add_auth(req)
    h = dict(req.headers.items())
    h["Host"] = url.split("//", 1)[1]
    return h


def replay(url, body, headers, n, check):
    host = url.split("//", 1)[1]
    conn = http.client.HTTPConnection(host, timeout=30)
    lat = []
    for i in range(n):
        t0 = time.perf_counter_ns()
        conn.request("POST", "/", body=body.encode(), headers=headers)
        r = conn.getresponse()
        data = r.read()
        lat.append((time.perf_counter_ns() - t0) // 1000)
        if i == 0:
            check(r.status, data)
    conn.close()
    lat.sort()
    return lat[len(lat) // 2], lat[min(len(lat) - 1, (len(lat) * 99 + 99) // 100 - 1)], lat[-1]


def main(url, n):
    n = int(n)
    end = datetime.datetime.now(datetime.timezone.utc)
    start = end - datetime.timedelta(days=30)
    form = {"Action": "GetMetricStatistics", "Version": "2010-08-01", "Namespace": "AWS/CodeBuild",
            "MetricName": "Duration", "StartTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "EndTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "Period": "86400",
            "Statistics.member.1": "Sum", "Statistics.member.2": "Average",
            "Statistics.member.3": "SampleCount"}
    body = urllib.parse.urlencode(form)
    hdrs = signed(url, "monitoring", body, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})

    def check_cw(status, data):
        assert status == 200 and b"<SampleCount>" in data, (status, data[:300])
    # and through boto3's own client, once: 30 daily datapoints with builds
    s = boto3.session.Session(aws_access_key_id=AKID, aws_secret_access_key=SECRET, region_name=REGION)
    cw = s.client("cloudwatch", endpoint_url=url)
    got = cw.get_metric_statistics(Namespace="AWS/CodeBuild", MetricName="Duration", StartTime=start,
                                   EndTime=end, Period=86400, Statistics=["SampleCount"])
    total = sum(d["SampleCount"] for d in got["Datapoints"])
    print(f"check datapoints={len(got['Datapoints'])} builds={total:.0f}", flush=True)
    print("GetMetricStatistics %d %d %d" % replay(url, body, hdrs, n, check_cw), flush=True)
    # the same window's percentiles (ExtendedStatistics): every sample kept and sorted
    form = {k: v for k, v in form.items() if not k.startswith("Statistics.")}
    form.update({"ExtendedStatistics.member.1": "p50", "ExtendedStatistics.member.2": "p90",
                 "ExtendedStatistics.member.3": "p99"})
    ebody = urllib.parse.urlencode(form)
    ehdrs = signed(url, "monitoring", ebody, {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})

    def check_ext(status, data):
        assert status == 200 and b"<key>p99</key>" in data, (status, data[:300])
    print("ExtendedStatistics %d %d %d" % replay(url, ebody, ehdrs, n, check_ext), flush=True)
    jbody = json.dumps({})
    jh = signed(url, "codebuild", jbody, {"Content-Type": "application/x-amz-json-1.1",
                                         "X-Amz-Target": "CodeBuild_20161006.ListProjects"})

    def check_lp(status, data):
        assert status == 200 and b"projects" in data, (status, data[:300])
    print("ListProjects %d %d %d" % replay(url, jbody, jh, n, check_lp), flush=True)


main(*sys.argv[1:])
