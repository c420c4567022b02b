"""Reports over the API: two `run`s of a buildspec with a JUnit and a
Cobertura report group, then the report operations through our CLI faces,
Debian's AWS CLI (/usr/bin/aws) and boto3's paginators against `serve`, which
must all give the same answers."""
import json
import subprocess

import pytest

from conftest import BIN, Runner
from test_server import aws, client, start_server

PROJECT = "webapp"
ARN = "arn:aws:codebuild:us-east-1:000000000000"
UNIT = f"{ARN}:report-group/{PROJECT}-unit"
COV = f"{ARN}:report-group/{PROJECT}-coverage"

BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - 'true'
reports:
  unit:
    files: ['**/*.xml']
    base-directory: test-results
    file-format: JUNITXML
  coverage:
    files: [coverage.xml]
    file-format: COBERTURAXML
"""

JUNIT = """<?xml version="1.0"?>
<testsuites><testsuite name="calc" tests="5">
<testcase classname="app.CalcTest" name="test_add" time="0.010"/>
<testcase classname="app.CalcTest" name="test_div" time="0.020">
  <failure message="ZeroDivisionError">Traceback: division by zero</failure></testcase>
<testcase classname="app.CalcTest" name="test_mul" time="0.030"/>
<testcase classname="app.IoTest" name="test_read"><skipped message="no disk"/></testcase>
<testcase classname="app.IoTest" name="test_write" time="0.5"><error message="EACCES"/></testcase>
</testsuite></testsuites>
"""

COBERTURA = """<?xml version="1.0"?>
<coverage line-rate="0.6" branch-rate="0.5" version="7.2">
<packages><package name="app"><classes>
<class name="calc" filename="app/calc.py"><lines>
  <line number="1" hits="1"/><line number="2" hits="1"/><line number="3" hits="0"/>
  <line number="4" hits="1" branch="true" condition-coverage="50% (1/2)"/></lines></class>
<class name="io" filename="app/io.py"><lines><line number="1" hits="0"/><line number="2" hits="0"/></lines></class>
<class name="util" filename="app/util.py"><lines><line number="1" hits="3"/></lines></class>
</classes></package></packages></coverage>
"""

# the Debian AWS CLI's model predates these members: it drops them
NEWER_MEMBERS = {"testSuiteName"}


def strip_newer(v):
    if isinstance(v, dict):
        return {k: strip_newer(x) for k, x in v.items() if k not in NEWER_MEMBERS}
    if isinstance(v, list):
        return [strip_newer(x) for x in v]
    return v


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Two builds of one project (so each report group has two reports), and
    a server over the same state directory."""
    tmp = tmp_path_factory.mktemp("reports")
    home = tmp / "state"
    home.mkdir()
    cbl = Runner(home, tmp)
    src = cbl.project(PROJECT, BUILDSPEC, {"test-results/junit.xml": JUNIT, "coverage.xml": COBERTURA})
    builds = []
    for _ in range(2):
        p = cbl("run", "--sandbox", "none", src, check=0)
        ids = [w for w in p.output.split() if w.startswith(f"{PROJECT}:") and len(w.split(":")[1]) == 36]
        assert ids, p.output
        builds.append(ids[0])
    records = json.loads(cbl("batch-get-builds", "--ids", *builds, check=0).stdout)["builds"]
    server = start_server(home)
    cfg = tmp / "aws-config"
    cfg.write_text("[default]\ncli_timestamp_format = wire\n")
    w = type("World", (), {})()
    w.cbl, w.home, w.builds, w.records, w.server, w.cfg = cbl, home, builds, records, server, cfg
    yield w
    assert server.stop() == 0, server.stderr


def face(w, *args, check=0):
    # the same AWS CLI config as aws_json(): timestamps on the wire's form
    p = w.cbl(*args, check=check, env={"AWS_CONFIG_FILE": str(w.cfg)})
    return json.loads(p.stdout) if p.stdout.strip() else None


def aws_json(w, *args):
    p = aws(w.server.url, "codebuild", *args, extra_env={"AWS_CONFIG_FILE": str(w.cfg)})
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def report_arns(w, group):
    return face(w, "list-reports-for-report-group", "--report-group-arn", group)["reports"]


def test_builds_list_their_reports(world):
    w = world
    for rec in w.records:
        assert len(rec["reportArns"]) == 2
        assert rec["buildStatus"] == "SUCCEEDED"
    got = face(w, "batch-get-reports", "--report-arns", *[a for r in w.records for a in r["reportArns"]])
    assert got["reportsNotFound"] == []
    by_build = {}
    for rep in got["reports"]:
        by_build.setdefault(rep["executionId"], []).append(rep)
    assert sorted(by_build) == sorted(r["arn"] for r in w.records)
    unit = next(r for r in got["reports"] if r["reportGroupArn"] == UNIT)
    assert unit["type"] == "TEST" and unit["status"] == "FAILED" and unit["name"] == f"{PROJECT}-unit"
    assert unit["testSummary"] == {
        "total": 5,
        "statusCounts": {"SUCCEEDED": 2, "FAILED": 1, "ERROR": 1, "SKIPPED": 1, "UNKNOWN": 0},
        "durationInNanoSeconds": 560000000,
    }
    assert isinstance(unit["created"], float) and unit["expired"] - unit["created"] == 30 * 86400
    cov = next(r for r in got["reports"] if r["reportGroupArn"] == COV)
    assert cov["type"] == "CODE_COVERAGE" and cov["status"] == "SUCCEEDED"
    assert cov["codeCoverageSummary"]["linesCovered"] == 4 and cov["codeCoverageSummary"]["linesMissed"] == 3


def test_cli_faces(world):
    w = world
    assert face(w, "list-report-groups")["reportGroups"] == [COV, UNIT]
    assert face(w, "list-report-groups", "--sort-by", "NAME", "--sort-order", "DESCENDING")["reportGroups"] == [UNIT, COV]
    groups = face(w, "batch-get-report-groups", "--report-group-arns", UNIT, f"{UNIT}-x")
    assert [g["name"] for g in groups["reportGroups"]] == [f"{PROJECT}-unit"]
    assert groups["reportGroupsNotFound"] == [f"{UNIT}-x"]
    newest_first = report_arns(w, UNIT)
    assert newest_first == [w.records[1]["reportArns"][0], w.records[0]["reportArns"][0]]
    assert face(w, "list-reports-for-report-group", "--report-group-arn", UNIT, "--sort-order", "ASCENDING",
                "--page-size", "1")["reports"] == newest_first[::-1]
    assert face(w, "list-reports-for-report-group", "--report-group-arn", UNIT,
                "--filter", "status=SUCCEEDED")["reports"] == []
    assert len(face(w, "list-reports")["reports"]) == 4

    arn = newest_first[0]
    cases = face(w, "describe-test-cases", "--report-arn", arn)["testCases"]
    assert [(c["prefix"], c["name"], c["status"]) for c in cases] == [
        ("app.CalcTest", "test_div", "FAILED"), ("app.IoTest", "test_write", "ERROR"),
        ("app.CalcTest", "test_add", "SUCCEEDED"), ("app.CalcTest", "test_mul", "SUCCEEDED"),
        ("app.IoTest", "test_read", "SKIPPED")]
    assert cases[0]["message"].startswith("ZeroDivisionError") and cases[0]["testRawDataPath"] == "junit.xml"
    failed = face(w, "describe-test-cases", "--report-arn", arn, "--filter", "status=FAILED")["testCases"]
    assert [c["name"] for c in failed] == ["test_div"]
    io = face(w, "describe-test-cases", "--report-arn", arn, "--filter", "keyword=IoTest")["testCases"]
    assert [c["name"] for c in io] == ["test_write", "test_read"]
    paged = face(w, "describe-test-cases", "--report-arn", arn, "--page-size", "2")
    assert paged == {"testCases": cases}
    one = face(w, "describe-test-cases", "--report-arn", arn, "--page-size", "2", "--no-paginate")
    assert len(one["testCases"]) == 2 and one["nextToken"]

    carn = report_arns(w, COV)[0]
    files = face(w, "describe-code-coverages", "--report-arn", carn)["codeCoverages"]
    assert [(f["filePath"], f["lineCoveragePercentage"]) for f in files] == [
        ("app/calc.py", 75.0), ("app/io.py", 0.0), ("app/util.py", 100.0)]
    by_pct = face(w, "describe-code-coverages", "--report-arn", carn, "--sort-by", "LINE_COVERAGE_PERCENTAGE",
                  "--sort-order", "DESCENDING", "--min-line-coverage-percentage", "50")["codeCoverages"]
    assert [f["filePath"] for f in by_pct] == ["app/util.py", "app/calc.py"]
    trend = face(w, "get-report-group-trend", "--report-group-arn", UNIT, "--trend-field", "PASS_RATE")
    assert trend["stats"] == {"average": "40", "max": "40", "min": "40"} and len(trend["rawData"]) == 2


def test_aws_cli_prints_the_same(world):
    """Each command through /usr/bin/aws against serve prints what our face
    prints (timestamps as wire numbers; auto-pagination merged either way)."""
    w = world
    unit_arn = report_arns(w, UNIT)[0]
    cov_arn = report_arns(w, COV)[0]
    all_reports = [a for r in w.records for a in r["reportArns"]]
    cmds = [
        ["list-report-groups"],
        ["list-report-groups", "--sort-by", "CREATED_TIME", "--sort-order", "DESCENDING", "--page-size", "1"],
        ["list-reports", "--page-size", "3"],
        ["list-reports", "--filter", "status=FAILED"],
        ["list-reports-for-report-group", "--report-group-arn", UNIT, "--page-size", "1"],
        ["list-reports-for-report-group", "--report-group-arn", COV, "--sort-order", "ASCENDING"],
        ["batch-get-reports", "--report-arns", *all_reports, f"{unit_arn}-missing"],
        ["batch-get-report-groups", "--report-group-arns", UNIT, COV],
        ["describe-test-cases", "--report-arn", unit_arn, "--page-size", "2"],
        ["describe-test-cases", "--report-arn", unit_arn, "--filter", "status=SUCCEEDED,keyword=CalcTest"],
        ["describe-code-coverages", "--report-arn", cov_arn, "--page-size", "1"],
        ["describe-code-coverages", "--report-arn", cov_arn, "--sort-by", "LINE_COVERAGE_PERCENTAGE",
         "--max-line-coverage-percentage", "80"],
        ["get-report-group-trend", "--report-group-arn", COV, "--trend-field", "LINE_COVERAGE"],
    ]
    for cmd in cmds:
        ours = face(w, *cmd)
        theirs = aws_json(w, *cmd)
        assert theirs == strip_newer(ours), cmd


def test_aws_cli_errors_match(world):
    w = world
    cases = [
        (["describe-test-cases", "--report-arn", f"{ARN}:report/nope:1"], "DescribeTestCases",
         "ResourceNotFoundException", 254, 1),
        (["list-reports-for-report-group", "--report-group-arn", f"{UNIT}-nope"], "ListReportsForReportGroup",
         "ResourceNotFoundException", 254, 1),
        (["list-report-groups", "--sort-by", "SIZE"], "ListReportGroups", "InvalidInputException", 254, 2),
        (["describe-code-coverages", "--report-arn", "x", "--min-line-coverage-percentage", "150"],
         "DescribeCodeCoverages", "InvalidInputException", 254, 2),
    ]
    for cmd, op, typ, aws_rc, our_rc in cases:
        theirs = aws(w.server.url, "codebuild", *cmd)
        ours = w.cbl(*cmd)
        line = f"An error occurred ({typ}) when calling the {op} operation: "
        assert theirs.returncode == aws_rc and line in theirs.stderr, (cmd, theirs.stderr)
        assert ours.returncode == our_rc and line in ours.stderr, (cmd, ours.output)
        assert theirs.stderr.split(line, 1)[1].strip() == ours.stderr.split(line, 1)[1].strip(), cmd


def test_boto3_paginators(world):
    w = world
    cb = client(w.server.url)
    unit_arn = report_arns(w, UNIT)[0]
    cov_arn = report_arns(w, COV)[0]

    def pages(op, **kw):
        return list(cb.get_paginator(op).paginate(PaginationConfig={"PageSize": 1}, **kw))

    groups = pages("list_report_groups")
    assert len(groups) == 2 and [g for p in groups for g in p["reportGroups"]] == [COV, UNIT]
    reps = pages("list_reports_for_report_group", reportGroupArn=UNIT)
    assert [a for p in reps for a in p["reports"]] == report_arns(w, UNIT)
    assert [a for p in pages("list_reports") for a in p["reports"]] == face(w, "list-reports")["reports"]

    tc = pages("describe_test_cases", reportArn=unit_arn)
    assert len(tc) == 5
    ours = face(w, "describe-test-cases", "--report-arn", unit_arn)["testCases"]
    got = [c for p in tc for c in p["testCases"]]
    assert [(c["name"], c["status"], c["durationInNanoSeconds"]) for c in got] == \
        [(c["name"], c["status"], c["durationInNanoSeconds"]) for c in ours]
    assert abs(got[0]["expired"].timestamp() - ours[0]["expired"]) < 0.001  # a datetime, from a number

    cov = pages("describe_code_coverages", reportArn=cov_arn, sortBy="LINE_COVERAGE_PERCENTAGE", sortOrder="DESCENDING")
    assert [f["filePath"] for p in cov for f in p["codeCoverages"]] == ["app/util.py", "app/calc.py", "app/io.py"]

    got = cb.batch_get_reports(reportArns=[unit_arn])["reports"][0]
    assert got["testSummary"]["statusCounts"]["FAILED"] == 1 and got["created"].year >= 2024

    from botocore.exceptions import ClientError
    with pytest.raises(cb.exceptions.ResourceNotFoundException):
        cb.describe_test_cases(reportArn=f"{unit_arn}x")
    with pytest.raises(cb.exceptions.InvalidInputException):
        cb.describe_test_cases(reportArn=unit_arn, filter={"status": "PASSED"})
    with pytest.raises(ClientError) as e:
        cb.list_reports_for_report_group(reportGroupArn=UNIT, nextToken="garbage")
    assert e.value.response["Error"]["Code"] == "InvalidInputException"


def test_reports_outlive_their_build(world, tmp_path):
    """Deleting a build (its directory with it) keeps its reports, as the
    service keeps them in their report group.  Runs last: it deletes."""
    w = world
    victim = w.records[0]
    out = face(w, "batch-delete-builds", "--ids", victim["id"])
    assert out["buildsDeleted"] == [victim["arn"]]
    got = face(w, "batch-get-reports", "--report-arns", *victim["reportArns"])
    assert got["reportsNotFound"] == [] and len(got["reports"]) == 2
    cases = aws_json(w, "describe-test-cases", "--report-arn",
                     next(a for a in victim["reportArns"] if "-unit:" in a))["testCases"]
    assert len(cases) == 5


def test_help_names_the_flags():
    p = subprocess.run([str(BIN), "describe-code-coverages", "--help"], capture_output=True, text=True)
    assert p.returncode == 0
    for flag in ("--report-arn", "--sort-by", "--min-line-coverage-percentage", "--page-size", "--no-paginate"):
        assert flag in p.stdout
    p = subprocess.run([str(BIN), "--help"], capture_output=True, text=True)
    for cmd in ("list-report-groups", "list-reports-for-report-group", "batch-get-reports",
                "describe-test-cases", "describe-code-coverages"):
        assert cmd in p.stdout
