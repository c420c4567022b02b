"""CloudWatch Logs over the builds' logs: FilterLogEvents (filter patterns,
interleaving, time window, nextToken, stream selection), DescribeLogStreams,
DescribeLogGroups, driven by boto3 and `/usr/bin/aws logs tail --follow` on a
running build started against `serve`; `codebuild-local logs tail` too."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from test_api_builds import create_project, wait_build
from test_server import AKID, REGION, SECRET, aws, client, raw, start_server

AWS = "/usr/bin/aws"

SLOW = """version: 0.2
phases:
  build:
    commands:
      - for i in $(seq 1 40); do echo "tick-$i"; sleep 0.25; done
      - echo "ERROR disk full"
      - echo "WARN low memory"
      - echo "ERROR retried ok"
"""

QUICK = """version: 0.2
phases:
  build:
    commands:
      - echo "ERROR Exception in thread main"
      - echo "ERROR timeout"
      - echo "WARN Exception ignored"
      - echo "INFO all good"
"""


@pytest.fixture
def api(home, cbl):
    s = start_server(home, "--max-builds", "2")
    yield s
    assert s.stop() == 0, s.stderr


def aws_env():
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/nonexistent"),
        "LANG": "C.UTF-8",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
        "AWS_ACCESS_KEY_ID": AKID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": REGION,
    }


def all_events(logs, group, stream):
    """Every line of a stream, by GetLogEvents from the head (the reference)."""
    out, tok = [], None
    while True:
        kw = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if tok:
            kw["nextToken"] = tok
        r = logs.get_log_events(**kw)
        out += r["events"]
        if r["nextForwardToken"] == tok:
            return out
        tok = r["nextForwardToken"]


def build_of(url, name):
    b = client(url).start_build(projectName=name)["build"]
    return b["id"]


def test_aws_logs_tail_follow_shows_every_line_once_in_order(api, cbl):
    create_project(api.url, cbl, name="tailp", buildspec=SLOW)
    # the tail starts before the build: the project's group is there already
    tail = subprocess.Popen(
        [AWS, "logs", "tail", "/aws/codebuild/tailp", "--follow", "--since", "10m",
         "--endpoint-url", api.url],
        env=aws_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1)
        assert tail.poll() is None, tail.communicate()
        bid = build_of(api.url, "tailp")
        # the build runs about 10 s: the tail polls every 5 s meanwhile
        b = wait_build(api.url, bid, timeout=120)
        assert b["buildStatus"] == "SUCCEEDED"
        time.sleep(7)  # one more poll after the build's last line
        assert tail.poll() is None, "aws logs tail --follow ended by itself"
    finally:
        tail.send_signal(signal.SIGINT)
        out, err = tail.communicate(timeout=30)
    assert tail.returncode in (0, 130), (tail.returncode, err)
    stream = b["logs"]["streamName"]
    got = []
    for line in out.splitlines():
        ts, name, *msg = line.split(" ", 2)
        assert name == stream, line
        got.append(msg[0] if msg else "")
    want = [e["message"].rstrip() for e in
            all_events(client(api.url, service="logs"), "/aws/codebuild/tailp", stream)]
    assert got == want, "\n".join(got)
    ticks = [m for m in got if m.startswith("tick-")]
    assert ticks == [f"tick-{i}" for i in range(1, 41)]
    assert any("Phase complete: BUILD State: SUCCEEDED" in m for m in got)


def test_filter_log_events_patterns(api, cbl):
    create_project(api.url, cbl, name="filt", buildspec=QUICK)
    b = wait_build(api.url, build_of(api.url, "filt"))
    logs = client(api.url, service="logs")
    g = "/aws/codebuild/filt"

    def msgs(pattern, **kw):
        r = logs.filter_log_events(logGroupName=g, filterPattern=pattern, **kw)
        for e in r["events"]:
            assert e["logStreamName"] == b["logs"]["streamName"]
            assert re.fullmatch(r"\d{56}", e["eventId"]), e["eventId"]
        return [e["message"].rstrip("\n") for e in r["events"] if "Running command" not in e["message"]]

    assert msgs("ERROR") == ["ERROR Exception in thread main", "ERROR timeout"]
    assert msgs("ERROR Exception") == ["ERROR Exception in thread main"]
    assert msgs('"in thread"') == ["ERROR Exception in thread main"]
    # and the agent's report auto-discover line, as on the service
    got = msgs("?timeout ?ignored")
    assert got[:2] == ["ERROR timeout", "WARN Exception ignored"], got
    assert len(got) == 3 and got[2].startswith("[Container] ") and got[2].endswith(" Set report auto-discover timeout to 5 seconds"), got
    assert msgs("Exception -WARN") == ["ERROR Exception in thread main"]
    assert msgs("error") == []  # terms are case-sensitive
    every = logs.filter_log_events(logGroupName=g)["events"]
    assert [e["message"] for e in every] == [
        e["message"] for e in all_events(logs, g, b["logs"]["streamName"])]
    assert logs.filter_log_events(logGroupName=g, filterPattern='""')["events"] == every
    # JSON and space-delimited patterns: refused, not silently matched
    for bad in ['{ $.level = "error" }', "[ip, user]", '"unterminated']:
        with pytest.raises(logs.exceptions.InvalidParameterException):
            logs.filter_log_events(logGroupName=g, filterPattern=bad)


def test_filter_log_events_interleaves_pages_and_windows(api, cbl):
    create_project(api.url, cbl, name="multi", buildspec=QUICK)
    ids = [build_of(api.url, "multi") for _ in range(2)]
    builds = [wait_build(api.url, i) for i in ids]
    streams = sorted(b["logs"]["streamName"] for b in builds)
    logs = client(api.url, service="logs")
    g = "/aws/codebuild/multi"
    every = logs.filter_log_events(logGroupName=g)["events"]
    assert {e["logStreamName"] for e in every} == set(streams)
    keys = [(e["timestamp"], e["logStreamName"]) for e in every]
    assert keys == sorted(keys)  # interleaved by time
    assert len({e["eventId"] for e in every}) == len(every)
    # pages of 3 by nextToken give the same events, each once
    paged, tok = [], None
    while True:
        kw = {"logGroupName": g, "limit": 3}
        if tok:
            kw["nextToken"] = tok
        r = logs.filter_log_events(**kw)
        assert len(r["events"]) <= 3
        paged += r["events"]
        tok = r.get("nextToken")
        if not tok:
            break
    assert [e["eventId"] for e in paged] == [e["eventId"] for e in every]
    # the paginator too
    pg = [e for p in logs.get_paginator("filter_log_events").paginate(
        logGroupName=g, PaginationConfig={"PageSize": 4}) for e in p["events"]]
    assert [e["eventId"] for e in pg] == [e["eventId"] for e in every]
    # stream selection
    one = logs.filter_log_events(logGroupName=g, logStreamNames=[streams[0]])["events"]
    assert one and {e["logStreamName"] for e in one} == {streams[0]}
    pre = logs.filter_log_events(logGroupName=g, logStreamNamePrefix=streams[1][:30])["events"]
    assert pre and {e["logStreamName"] for e in pre} == {streams[1]}
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=g, logStreamNames=[streams[0]], logStreamNamePrefix="a")
    # the time window: startTime inclusive, endTime inclusive
    t = sorted({e["timestamp"] for e in every})
    mid = t[len(t) // 2]
    win = logs.filter_log_events(logGroupName=g, startTime=mid, endTime=mid)["events"]
    assert win and all(e["timestamp"] == mid for e in win)
    assert len(win) == sum(1 for e in every if e["timestamp"] == mid)
    later = logs.filter_log_events(logGroupName=g, startTime=t[-1] + 1)["events"]
    assert later == []
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.filter_log_events(logGroupName="/aws/codebuild/nope")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName=g, nextToken="garbage")


def test_describe_log_streams_and_groups(api, cbl):
    create_project(api.url, cbl, name="desc", buildspec=QUICK)
    create_project(api.url, cbl, name="other", buildspec=QUICK)
    builds = [wait_build(api.url, build_of(api.url, "desc")) for _ in range(3)]
    wait_build(api.url, build_of(api.url, "other"))
    logs = client(api.url, service="logs")
    g = "/aws/codebuild/desc"
    names = sorted(b["logs"]["streamName"] for b in builds)
    s = logs.describe_log_streams(logGroupName=g)["logStreams"]
    assert [x["logStreamName"] for x in s] == names
    for x in s:
        assert x["arn"] == f"arn:aws:logs:{REGION}:000000000000:log-group:{g}:log-stream:{x['logStreamName']}"
        assert x["firstEventTimestamp"] <= x["lastEventTimestamp"]
        assert x["storedBytes"] == 0
    desc = logs.describe_log_streams(logGroupName=g, descending=True)["logStreams"]
    assert [x["logStreamName"] for x in desc] == names[::-1]
    # newest first: the last build started is the last event
    by_time = logs.describe_log_streams(logGroupName=g, orderBy="LastEventTime", descending=True)
    assert by_time["logStreams"][0]["logStreamName"] == builds[-1]["logs"]["streamName"]
    pre = logs.describe_log_streams(logGroupName=g, logStreamNamePrefix=names[1])["logStreams"]
    assert [x["logStreamName"] for x in pre] == [names[1]]
    with pytest.raises(logs.exceptions.InvalidParameterException) as e:
        logs.describe_log_streams(logGroupName=g, orderBy="LastEventTime", logStreamNamePrefix="a")
    assert "Cannot order by LastEventTime with a logStreamNamePrefix." in str(e.value)
    paged = [x["logStreamName"] for p in logs.get_paginator("describe_log_streams").paginate(
        logGroupName=g, PaginationConfig={"PageSize": 2}) for x in p["logStreams"]]
    assert paged == names
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.describe_log_streams(logGroupName="/aws/codebuild/nope")

    groups = logs.describe_log_groups()["logGroups"]
    assert [x["logGroupName"] for x in groups] == ["/aws/codebuild/desc", "/aws/codebuild/other"]
    x = groups[0]
    assert x["arn"] == f"arn:aws:logs:{REGION}:000000000000:log-group:{g}:*"
    # logGroupArn is newer than boto3 1.26's model: read it raw
    st, _, body = raw(api.url, "Logs_20140328.DescribeLogGroups", "{}", service="logs")
    assert st == 200 and body["logGroups"][0]["logGroupArn"] == \
        f"arn:aws:logs:{REGION}:000000000000:log-group:{g}"
    assert x["creationTime"] > 0 and x["metricFilterCount"] == 0
    assert [x["logGroupName"] for x in logs.describe_log_groups(
        logGroupNamePrefix="/aws/codebuild/o")["logGroups"]] == ["/aws/codebuild/other"]
    paged = [x["logGroupName"] for p in logs.get_paginator("describe_log_groups").paginate(
        PaginationConfig={"PageSize": 1}) for x in p["logGroups"]]
    assert paged == ["/aws/codebuild/desc", "/aws/codebuild/other"]
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.describe_log_groups(limit=51)


def test_cli_logs_tail(api, cbl, home):
    create_project(api.url, cbl, name="clitail", buildspec=QUICK)
    b = wait_build(api.url, build_of(api.url, "clitail"))
    p = cbl("logs", "tail", "/aws/codebuild/clitail", "--since", "10m", check=0)
    want = [e["message"].rstrip() for e in all_events(
        client(api.url, service="logs"), "/aws/codebuild/clitail", b["logs"]["streamName"])]
    got = [line.split(" ", 2)[2] if line.count(" ") >= 2 else "" for line in p.stdout.splitlines()]
    assert got == want
    # --follow: stops on SIGINT with status 0, every line once
    f = subprocess.Popen(cbl.argv(["logs", "tail", "/aws/codebuild/clitail", "--follow"]),
                         env=cbl.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    assert f.poll() is None
    f.send_signal(signal.SIGINT)
    out, err = f.communicate(timeout=20)
    assert f.returncode == 0, err
    assert [line.split(" ", 2)[2] if line.count(" ") >= 2 else "" for line in out.splitlines()] == want
    p = cbl("logs", "tail", "/aws/codebuild/nope", check=1)
    assert "The specified log group does not exist." in p.stderr


def test_cli_faces_print_what_aws_prints(api, cbl):
    create_project(api.url, cbl, name="faces", buildspec=QUICK)
    for _ in range(2):
        wait_build(api.url, build_of(api.url, "faces"))
    g = "/aws/codebuild/faces"
    for args in (["logs", "filter-log-events", "--log-group-name", g, "--filter-pattern", "?ERROR ?WARN"],
                 ["logs", "filter-log-events", "--log-group-name", g],
                 ["logs", "describe-log-streams", "--log-group-name", g, "--order-by", "LastEventTime",
                  "--descending"],
                 ["logs", "describe-log-groups", "--log-group-name-prefix", "/aws/codebuild/f"]):
        ours = cbl(*args, check=0)
        theirs = aws(api.url, *args)
        assert theirs.returncode == 0, theirs.stderr
        mine = json.loads(ours.stdout)
        # AWS CLI 2.9's model predates logGroupClass and logGroupArn: it drops them
        for x in mine.get("logGroups", []):
            assert x.pop("logGroupClass") == "STANDARD" and x.pop("logGroupArn")
        assert mine == json.loads(theirs.stdout), args
    bad = ["logs", "describe-log-streams", "--log-group-name", g, "--order-by", "LastEventTime",
           "--log-stream-name-prefix", "x"]
    ours, theirs = cbl(*bad, check=2), aws(api.url, *bad)
    assert theirs.returncode == 254
    assert ours.stderr.strip() == theirs.stderr.strip()
