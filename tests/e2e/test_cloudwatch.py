"""CloudWatch on `serve`: namespace AWS/CodeBuild over the store's builds,
through the query protocol (Debian's AWS CLI v2 and boto3) and the JSON
protocol (a request signed by botocore)."""
import datetime
import json

import pytest

from test_server import aws, clean_aws_env, client, raw, start_server  # noqa: F401

NS = "AWS/CodeBuild"


def spec(ok):
    return f"version: 0.2\nphases:\n  build:\n    commands:\n      - \"{'true' if ok else 'false'}\"\n"


@pytest.fixture
def stored(cbl, home):
    """alpha: 2 succeeded, 1 failed; beta: 1 succeeded, 2 failed."""
    for project, oks in (("alpha", (True, True, False)), ("beta", (True, False, False))):
        for i, ok in enumerate(oks):
            src = cbl.project(f"{project}{i}", spec(ok))
            cbl("run", "--project", project, src, check=0 if ok else 1)
    s = start_server(home)
    yield s
    assert s.stop() == 0, s.stderr


def window():
    now = datetime.datetime.now(datetime.timezone.utc)
    # one period of two hours holds every build
    start = now.replace(minute=0, second=0, microsecond=0) - datetime.timedelta(hours=1)
    return start, start + datetime.timedelta(hours=2)


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_cli_get_metric_statistics(stored):
    start, end = window()
    for project, failed, n in (("alpha", 1, 3), ("beta", 2, 3)):
        p = aws(stored.url, "cloudwatch", "get-metric-statistics", "--namespace", NS, "--metric-name",
                "FailedBuilds", "--dimensions", f"Name=ProjectName,Value={project}", "--start-time",
                iso(start), "--end-time", iso(end), "--period", "7200", "--statistics", "Sum", "Average",
                "SampleCount", "Maximum")
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        assert out["Label"] == "FailedBuilds"
        [dp] = out["Datapoints"]
        assert (dp["Sum"], dp["SampleCount"], dp["Maximum"]) == (failed, n, 1.0), dp
        assert dp["Average"] == pytest.approx(failed / n) and dp["Unit"] == "Count"
    # no dimension: every project
    p = aws(stored.url, "cloudwatch", "get-metric-statistics", "--namespace", NS, "--metric-name", "Builds",
            "--start-time", iso(start), "--end-time", iso(end), "--period", "7200", "--statistics", "Sum")
    assert json.loads(p.stdout)["Datapoints"][0]["Sum"] == 6.0, p.stdout
    # the durations: seconds, an average over the builds
    p = aws(stored.url, "cloudwatch", "get-metric-statistics", "--namespace", NS, "--metric-name",
            "BuildDuration", "--dimensions", "Name=ProjectName,Value=alpha", "--start-time", iso(start),
            "--end-time", iso(end), "--period", "7200", "--statistics", "Average", "Maximum")
    [dp] = json.loads(p.stdout)["Datapoints"]
    assert 0 < dp["Average"] <= dp["Maximum"] < 60 and dp["Unit"] == "Seconds"


def test_cli_get_metric_data_and_list_metrics(stored):
    start, end = window()
    queries = [
        {"Id": "ok", "MetricStat": {"Metric": {"Namespace": NS, "MetricName": "SucceededBuilds",
                                               "Dimensions": [{"Name": "ProjectName", "Value": "alpha"}]},
                                    "Period": 7200, "Stat": "Sum"}},
        {"Id": "bad", "MetricStat": {"Metric": {"Namespace": NS, "MetricName": "FailedBuilds",
                                                "Dimensions": [{"Name": "ProjectName", "Value": "beta"}]},
                                     "Period": 7200, "Stat": "Average"}},
    ]
    p = aws(stored.url, "cloudwatch", "get-metric-data", "--start-time", iso(start), "--end-time", iso(end),
            "--metric-data-queries", json.dumps(queries))
    assert p.returncode == 0, p.stderr
    res = {r["Id"]: r for r in json.loads(p.stdout)["MetricDataResults"]}
    assert res["ok"]["Values"] == [2.0] and res["ok"]["StatusCode"] == "Complete"
    assert res["bad"]["Values"] == [pytest.approx(2 / 3)]
    assert res["ok"]["Timestamps"][0].startswith(start.strftime("%Y-%m-%dT%H:00:00"))
    p = aws(stored.url, "cloudwatch", "list-metrics", "--namespace", NS, "--metric-name", "FailedBuilds")
    assert p.returncode == 0, p.stderr
    dims = sorted(json.dumps(m["Dimensions"]) for m in json.loads(p.stdout)["Metrics"])
    assert dims == sorted(["[]", json.dumps([{"Name": "ProjectName", "Value": "alpha"}]),
                           json.dumps([{"Name": "ProjectName", "Value": "beta"}])])
    p = aws(stored.url, "cloudwatch", "list-metrics", "--namespace", NS, "--dimensions",
            "Name=ProjectName,Value=beta")
    names = {m["MetricName"] for m in json.loads(p.stdout)["Metrics"]}
    assert {"Builds", "SucceededBuilds", "FailedBuilds", "Duration", "BuildDuration", "QueuedDuration",
            "CPUUtilized", "MemoryUtilized"} <= names


def test_cli_errors_are_cloudwatch_errors(stored):
    start, end = window()
    p = aws(stored.url, "cloudwatch", "get-metric-statistics", "--namespace", "AWS/EC2", "--metric-name",
            "CPUUtilization", "--start-time", iso(start), "--end-time", iso(end), "--period", "60",
            "--statistics", "Sum")
    assert p.returncode != 0 and "InvalidParameterValue" in p.stderr and "AWS/CodeBuild" in p.stderr
    p = aws(stored.url, "cloudwatch", "get-metric-statistics", "--namespace", NS, "--metric-name", "Builds",
            "--start-time", iso(end), "--end-time", iso(start), "--period", "60", "--statistics", "Sum")
    assert p.returncode != 0 and "StartTime must be less than" in p.stderr
    p = aws(stored.url, "cloudwatch", "list-metrics", secret="wrong")
    assert p.returncode != 0 and "Signature" in p.stderr, p.stderr


def test_boto3_and_the_json_protocol(stored, clean_aws_env):
    start, end = window()
    cw = client(stored.url, "cloudwatch")
    out = cw.get_metric_statistics(Namespace=NS, MetricName="SucceededBuilds",
                                   Dimensions=[{"Name": "ProjectName", "Value": "beta"}], StartTime=start,
                                   EndTime=end, Period=7200, Statistics=["Sum", "Average"])
    [dp] = out["Datapoints"]
    assert dp["Sum"] == 1.0 and dp["Average"] == pytest.approx(1 / 3)
    assert dp["Timestamp"] == start
    got = cw.get_metric_data(StartTime=start, EndTime=end, MetricDataQueries=[
        {"Id": "n", "MetricStat": {"Metric": {"Namespace": NS, "MetricName": "Builds"}, "Period": 7200,
                                   "Stat": "SampleCount"}}])
    assert got["MetricDataResults"][0]["Values"] == [6.0]
    assert len(cw.list_metrics(Namespace=NS, MetricName="Builds")["Metrics"]) == 3
    # CloudWatch's JSON protocol (what newer SDKs can speak), signed for "monitoring"
    body = json.dumps({"Namespace": NS, "MetricName": "FailedBuilds", "StartTime": start.timestamp(),
                       "EndTime": end.timestamp(), "Period": 7200, "Statistics": ["Sum"],
                       "Dimensions": [{"Name": "ProjectName", "Value": "beta"}]})
    st, _, res = raw(stored.url, "GraniteServiceVersion20100801.GetMetricStatistics", body, service="monitoring")
    assert st == 200 and res["Datapoints"][0]["Sum"] == 2.0, res
    st, _, res = raw(stored.url, "GraniteServiceVersion20100801.GetMetricStatistics", body, service="codebuild")
    assert st == 400 and "monitoring" in res.get("message", ""), res
