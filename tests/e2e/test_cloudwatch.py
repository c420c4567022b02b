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
    start = now.replace(minute=0, second=0, microsecond=0) - datetime.timedelta(hours=1)
    return start, start + datetime.timedelta(hours=2)


def total(points, stat):
    """Periods are aligned to the epoch, as CloudWatch's: the builds may
    straddle two of them."""
    return sum(p[stat] for p in points)


def aligned(t, period):
    return int(t.timestamp()) % period == 0


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
        dps = out["Datapoints"]
        assert (total(dps, "Sum"), total(dps, "SampleCount"), max(d["Maximum"] for d in dps)) == (failed, n, 1.0)
        assert all(d["Unit"] == "Count" for d in dps)
        # the average of each period is its sum over its samples
        assert all(d["Average"] == pytest.approx(d["Sum"] / d["SampleCount"]) for d in dps)
        if len(dps) == 1:
            assert dps[0]["Average"] == pytest.approx(failed / n)
    # no dimension: every project
    p = aws(stored.url, "cloudwatch", "get-metric-statistics", "--namespace", NS, "--metric-name", "Builds",
            "--start-time", iso(start), "--end-time", iso(end), "--period", "7200", "--statistics", "Sum")
    assert total(json.loads(p.stdout)["Datapoints"], "Sum") == 6.0, p.stdout
    # the durations: seconds, an average over the builds
    p = aws(stored.url, "cloudwatch", "get-metric-statistics", "--namespace", NS, "--metric-name",
            "BuildDuration", "--dimensions", "Name=ProjectName,Value=alpha", "--start-time", iso(start),
            "--end-time", iso(end), "--period", "7200", "--statistics", "Average", "Maximum")
    for dp in json.loads(p.stdout)["Datapoints"]:
        assert 0 < dp["Average"] <= dp["Maximum"] < 60 and dp["Unit"] == "Seconds"
    # the memory peak, and its share of the compute type's (SMALL: 3 GB)
    peaks = {}
    for metric in ("MemoryUtilized", "MemoryUtilizedPercent"):
        p = aws(stored.url, "cloudwatch", "get-metric-statistics", "--namespace", NS, "--metric-name", metric,
                "--dimensions", "Name=ProjectName,Value=beta", "--start-time", iso(start), "--end-time",
                iso(end), "--period", "7200", "--statistics", "Maximum")
        peaks[metric] = max(d["Maximum"] for d in json.loads(p.stdout)["Datapoints"])
    assert peaks["MemoryUtilized"] > 0
    assert peaks["MemoryUtilizedPercent"] == pytest.approx(peaks["MemoryUtilized"] / (3 * 1024) * 100)


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
    assert sum(res["ok"]["Values"]) == 2.0 and res["ok"]["StatusCode"] == "Complete"
    if len(res["bad"]["Values"]) == 1:
        assert res["bad"]["Values"] == [pytest.approx(2 / 3)]
    # newest first (TimestampDescending), on even hours (7200 s from the epoch)
    ts = [datetime.datetime.fromisoformat(t) for t in res["ok"]["Timestamps"]]
    assert ts == sorted(ts, reverse=True) and all(aligned(t, 7200) for t in ts)
    p = aws(stored.url, "cloudwatch", "list-metrics", "--namespace", NS, "--metric-name", "FailedBuilds")
    assert p.returncode == 0, p.stderr
    dims = sorted(json.dumps(m["Dimensions"]) for m in json.loads(p.stdout)["Metrics"])
    assert dims == sorted(["[]", json.dumps([{"Name": "ProjectName", "Value": "alpha"}]),
                           json.dumps([{"Name": "ProjectName", "Value": "beta"}])])
    p = aws(stored.url, "cloudwatch", "list-metrics", "--namespace", NS, "--dimensions",
            "Name=ProjectName,Value=beta")
    names = {m["MetricName"] for m in json.loads(p.stdout)["Metrics"]}
    assert {"Builds", "SucceededBuilds", "FailedBuilds", "Duration", "BuildDuration", "QueuedDuration",
            "CPUUtilized", "MemoryUtilized", "CPUUtilizedPercent", "MemoryUtilizedPercent"} <= names


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
    dps = out["Datapoints"]
    assert total(dps, "Sum") == 1.0 and all(aligned(d["Timestamp"], 7200) for d in dps)
    if len(dps) == 1:
        assert dps[0]["Average"] == pytest.approx(1 / 3)
    got = cw.get_metric_data(StartTime=start, EndTime=end, MetricDataQueries=[
        {"Id": "n", "MetricStat": {"Metric": {"Namespace": NS, "MetricName": "Builds"}, "Period": 7200,
                                   "Stat": "SampleCount"}}])
    assert sum(got["MetricDataResults"][0]["Values"]) == 6.0
    assert len(cw.list_metrics(Namespace=NS, MetricName="Builds")["Metrics"]) == 3
    # CloudWatch's JSON protocol (what newer SDKs can speak), signed for "monitoring"
    body = json.dumps({"Namespace": NS, "MetricName": "FailedBuilds", "StartTime": start.timestamp(),
                       "EndTime": end.timestamp(), "Period": 7200, "Statistics": ["Sum"],
                       "Dimensions": [{"Name": "ProjectName", "Value": "beta"}]})
    st, _, res = raw(stored.url, "GraniteServiceVersion20100801.GetMetricStatistics", body, service="monitoring")
    assert st == 200 and total(res["Datapoints"], "Sum") == 2.0, res
    st, _, res = raw(stored.url, "GraniteServiceVersion20100801.GetMetricStatistics", body, service="codebuild")
    assert st == 400 and "monitoring" in res.get("message", ""), res


WEEK = 7 * 86400


def week():
    """One period of a week, aligned to the epoch as CloudWatch's periods are:
    every build of the fixture is in it but on a run across its boundary."""
    now = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
    start = datetime.datetime.fromtimestamp(now - now % WEEK, datetime.timezone.utc)
    return start, start + datetime.timedelta(seconds=WEEK)


def test_cli_extended_statistics(stored):
    start, end = week()

    def ext(project, metric, *stats):
        p = aws(stored.url, "cloudwatch", "get-metric-statistics", "--namespace", NS, "--metric-name", metric,
                "--dimensions", f"Name=ProjectName,Value={project}", "--start-time", iso(start), "--end-time",
                iso(end), "--period", str(WEEK), "--extended-statistics", *stats)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)["Datapoints"]

    # alpha's FailedBuilds samples are 0, 0, 1; its SucceededBuilds 1, 1, 0 (nearest rank)
    dps = ext("alpha", "FailedBuilds", "p0", "p50", "p66", "p66.7", "p90", "p100")
    if len(dps) == 1:
        assert dps[0]["ExtendedStatistics"] == {"p0": 0.0, "p50": 0.0, "p66": 0.0, "p66.7": 1.0, "p90": 1.0,
                                                "p100": 1.0}, dps
        assert "Sum" not in dps[0] and dps[0]["Unit"] == "Count"
    # GetMetricData's Stat may be a percentile too
    queries = [{"Id": i, "MetricStat": {"Metric": {"Namespace": NS, "MetricName": "FailedBuilds", "Dimensions": [
        {"Name": "ProjectName", "Value": "alpha"}]}, "Period": WEEK, "Stat": st}}
        for i, st in (("a", "p66"), ("b", "p66.7"))]
    p = aws(stored.url, "cloudwatch", "get-metric-data", "--start-time", iso(start), "--end-time", iso(end),
            "--metric-data-queries", json.dumps(queries))
    assert p.returncode == 0, p.stderr
    res = {r["Id"]: r["Values"] for r in json.loads(p.stdout)["MetricDataResults"]}
    if len(res["a"]) == 1:
        assert res == {"a": [0.0], "b": [1.0]}, res
    dps = ext("alpha", "SucceededBuilds", "p33", "p34", "p99.9")
    if len(dps) == 1:
        assert dps[0]["ExtendedStatistics"] == {"p33": 0.0, "p34": 1.0, "p99.9": 1.0}, dps
    # durations: p50 <= p99 <= the maximum, p100 is it
    dps = ext("alpha", "Duration", "p50", "p99", "p100")
    p = aws(stored.url, "cloudwatch", "get-metric-statistics", "--namespace", NS, "--metric-name", "Duration",
            "--dimensions", "Name=ProjectName,Value=alpha", "--start-time", iso(start), "--end-time", iso(end),
            "--period", str(WEEK), "--statistics", "Maximum")
    maxima = {d["Timestamp"]: d["Maximum"] for d in json.loads(p.stdout)["Datapoints"]}
    assert dps and len(maxima) == len(dps)
    for d in dps:
        e = d["ExtendedStatistics"]
        assert 0 < e["p50"] <= e["p99"] <= e["p100"] == maxima[d["Timestamp"]], (d, maxima)
    # refused, with CloudWatch's code: both kinds at once, what is not a percentile
    for args in (("--statistics", "Sum", "--extended-statistics", "p90"), ("--extended-statistics", "tm90"),
                 ("--extended-statistics", "p101")):
        p = aws(stored.url, "cloudwatch", "get-metric-statistics", "--namespace", NS, "--metric-name", "Builds",
                "--start-time", iso(start), "--end-time", iso(end), "--period", str(WEEK), *args)
        assert p.returncode != 0 and "InvalidParameterValue" in p.stderr, (args, p.stderr)
        assert "ExtendedStatistics" in p.stderr, p.stderr


def test_boto3_extended_statistics_both_protocols(stored, clean_aws_env):
    start, end = week()
    cw = client(stored.url, "cloudwatch")
    dps = cw.get_metric_statistics(Namespace=NS, MetricName="FailedBuilds", StartTime=start, EndTime=end,
                                   Period=WEEK, ExtendedStatistics=["p50", "p90"])["Datapoints"]
    # every project: 3 failed of 6 builds
    if len(dps) == 1:
        assert dps[0]["ExtendedStatistics"] == {"p50": 0.0, "p90": 1.0}, dps
    assert all(set(d["ExtendedStatistics"]) == {"p50", "p90"} for d in dps) and dps
    body = json.dumps({"Namespace": NS, "MetricName": "FailedBuilds", "StartTime": start.timestamp(),
                       "EndTime": end.timestamp(), "Period": WEEK, "ExtendedStatistics": ["p33", "p50"],
                       "Dimensions": [{"Name": "ProjectName", "Value": "beta"}]})
    st, _, res = raw(stored.url, "GraniteServiceVersion20100801.GetMetricStatistics", body, service="monitoring")
    assert st == 200 and res["Datapoints"], res
    if len(res["Datapoints"]) == 1:
        assert res["Datapoints"][0]["ExtendedStatistics"] == {"p33": 0.0, "p50": 1.0}, res  # 0, 1, 1
