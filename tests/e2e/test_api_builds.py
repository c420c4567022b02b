"""Builds over the API: the operations guide's CLI commands and boto3 snippet
(../shared/seed/), run as written against `codebuild-local serve` except for
the endpoint, the region and test credentials; stop-build, retry-build, and
the bounded pool (QUEUED builds)."""
import json
import re
import subprocess
import time

import pytest

from conftest import SHARED, needs_shared
from test_server import AKID, REGION, SECRET, aws, client, start_server

SEED = sorted((SHARED / "seed").glob("*")) if (SHARED / "seed").exists() else []

BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - echo "deploying to $ENVIRONMENT"
      - sleep ${SLEEP:-0}
artifacts:
  files: [buildspec.yml]
"""


def seed_text():
    assert SEED, f"the operations guide is not under {SHARED}/seed"
    return SEED[0].read_text()


def seed_block(lang):
    blocks = re.findall(rf"```{lang}\n(.*?)```", seed_text(), re.S)
    assert blocks, f"no {lang} block in the guide"
    return blocks


@pytest.fixture
def api(home, cbl):
    s = start_server(home, "--max-builds", "2")
    yield s
    assert s.stop() == 0, s.stderr


def create_project(url, cbl, name="my-project", buildspec=BUILDSPEC):
    src = cbl.project(f"src-{name}", buildspec)
    client(url).create_project(
        name=name,
        source={"type": "NO_SOURCE", "location": f"file://{src}"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "LINUX_CONTAINER", "image": "host", "computeType": "BUILD_GENERAL1_SMALL"},
        serviceRole="arn:aws:iam::000000000000:role/codebuild",
    )
    return src


def ok(p):
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout) if p.stdout.strip() else None


def wait_build(url, build_id, timeout=60):
    cb = client(url)
    deadline = time.time() + timeout
    while time.time() < deadline:
        b = cb.batch_get_builds(ids=[build_id])["builds"][0]
        if b["buildComplete"]:
            return b
        time.sleep(0.1)
    raise AssertionError("build did not finish")


@needs_shared
def test_seed_cli_commands(api, cbl):
    create_project(api.url, cbl)
    cmds = [line for line in seed_block("bash")[0].replace("\\\n", " ").splitlines()
            if line.startswith("aws ")]
    assert [c.split()[1:3] for c in cmds] == [
        ["codebuild", "start-build"], ["codebuild", "batch-get-builds"],
        ["codebuild", "list-builds-for-project"], ["codebuild", "list-projects"],
        ["logs", "get-log-events"]]

    def run(cmd, **subst):
        for k, v in subst.items():
            cmd = cmd.replace(f"<{k}>", v)
        return ok(aws(api.url, *cmd.split()[1:]))

    build = run(cmds[0])["build"]
    assert build["projectName"] == "my-project" and build["buildStatus"] == "IN_PROGRESS"
    deadline = time.time() + 60
    while True:
        b = run(cmds[1], **{"build-id": build["id"]})["builds"][0]
        if b["buildStatus"] != "IN_PROGRESS" or time.time() > deadline:
            break
        time.sleep(0.1)
    assert b["buildStatus"] == "SUCCEEDED"
    assert b["endTime"] >= b["startTime"]  # the CLI prints them as ISO 8601 text
    assert build["id"] in run(cmds[2])["ids"]
    assert "my-project" in run(cmds[3])["projects"]
    events = run(cmds[4], **{"stream-name": b["logs"]["streamName"]})["events"]
    assert any("deploying to" in e["message"] for e in events)


@needs_shared
def test_seed_boto3_snippet(api, cbl, tmp_path):
    create_project(api.url, cbl)
    code = seed_block("python")[0]
    assert "boto3.client('codebuild')" in code
    # the endpoint, the region and test credentials are all that changes
    code = code.replace("boto3.client('codebuild')",
                        f"boto3.client('codebuild', endpoint_url={api.url!r}, region_name={REGION!r}, "
                        f"aws_access_key_id={AKID!r}, aws_secret_access_key={SECRET!r})")
    f = tmp_path / "snippet.py"
    f.write_text(code)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_CONFIG_FILE": "/dev/null",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"}
    p = subprocess.run(["/usr/bin/python3", str(f)], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert re.search(r"^Build ID: my-project:[0-9a-f-]{36}$", p.stdout, re.M), p.stdout
    assert "Status: SUCCEEDED" in p.stdout
    # boto3 turns the epoch-second timestamps into datetimes: a timedelta
    assert re.search(r"^Duration: \d+:\d\d:\d\d(\.\d+)?$", p.stdout, re.M), p.stdout
    art = re.search(r"^Artifacts: (.+)$", p.stdout, re.M)
    assert art and art.group(1).endswith("artifacts.zip"), p.stdout
    # the override reached the build
    bid = re.search(r"^Build ID: (\S+)$", p.stdout, re.M).group(1)
    b = client(api.url).batch_get_builds(ids=[bid])["builds"][0]
    ev = client(api.url, service="logs").get_log_events(
        logGroupName=b["logs"]["groupName"], logStreamName=b["logs"]["streamName"])["events"]
    assert any("deploying to staging" in e["message"] for e in ev)


def test_failed_build_is_reported_failed_with_phases(api, cbl):
    create_project(api.url, cbl, "broken", "version: 0.2\nphases:\n  build:\n    commands:\n      - false\n")
    bid = client(api.url).start_build(projectName="broken")["build"]["id"]
    b = wait_build(api.url, bid)
    assert b["buildStatus"] == "FAILED"
    ph = {p["phaseType"]: p for p in b["phases"]}
    assert ph["BUILD"]["phaseStatus"] == "FAILED"
    assert ph["BUILD"]["contexts"][0]["statusCode"] == "COMMAND_EXECUTION_ERROR"
    assert ph["POST_BUILD"]["phaseStatus"] == "SUCCEEDED"


def test_aws_stop_build_stops_a_running_build(api, cbl):
    create_project(api.url, cbl)
    b = ok(aws(api.url, "codebuild", "start-build", "--project-name", "my-project",
               "--environment-variables-override", "name=SLEEP,value=120,type=PLAINTEXT"))["build"]
    cb = client(api.url)
    deadline = time.time() + 30
    while cb.batch_get_builds(ids=[b["id"]])["builds"][0]["currentPhase"] != "BUILD":
        assert time.time() < deadline
        time.sleep(0.05)
    s = ok(aws(api.url, "codebuild", "stop-build", "--id", b["id"]))["build"]
    if s["buildStatus"] == "IN_PROGRESS":  # the answer may come before the runner's end
        s = wait_build(api.url, b["id"])
    assert s["buildStatus"] == "STOPPED"
    assert {p["phaseType"]: p.get("phaseStatus") for p in s["phases"]}["BUILD"] == "STOPPED"


def test_retry_build(api, cbl):
    create_project(api.url, cbl)
    cb = client(api.url)
    first = cb.start_build(projectName="my-project")["build"]
    wait_build(api.url, first["id"])
    again = ok(aws(api.url, "codebuild", "retry-build", "--id", first["id"]))["build"]
    assert again["id"] != first["id"] and again["buildNumber"] == first["buildNumber"] + 1
    assert wait_build(api.url, again["id"])["buildStatus"] == "SUCCEEDED"


def test_pool_queues_builds_beyond_max_builds(home, cbl):
    s = start_server(home, "--max-builds", "1")
    try:
        create_project(s.url, cbl)
        cb = client(s.url)
        env = [{"name": "SLEEP", "value": "2", "type": "PLAINTEXT"}]
        a = cb.start_build(projectName="my-project", environmentVariablesOverride=env)["build"]
        b = cb.start_build(projectName="my-project", environmentVariablesOverride=env)["build"]
        # StartBuild answers QUEUED either way (aws-cli's documented example);
        # the first one runs at once, the second waits
        assert a["currentPhase"] == b["currentPhase"] == "QUEUED"
        assert cb.batch_get_builds(ids=[a["id"]])["builds"][0]["currentPhase"] != "QUEUED"
        assert cb.batch_get_builds(ids=[b["id"]])["builds"][0]["currentPhase"] == "QUEUED"
        assert b["currentPhase"] == "QUEUED" and b["buildStatus"] == "IN_PROGRESS"
        assert [p["phaseType"] for p in b["phases"]] == ["SUBMITTED", "QUEUED"]
        assert wait_build(s.url, a["id"])["buildStatus"] == "SUCCEEDED"
        done = wait_build(s.url, b["id"])
        assert done["buildStatus"] == "SUCCEEDED"
        assert done["startTime"] >= a["startTime"]
        # a queued build that is stopped never starts
        c = cb.start_build(projectName="my-project", environmentVariablesOverride=env)["build"]
        d = cb.start_build(projectName="my-project", environmentVariablesOverride=env)["build"]
        assert d["currentPhase"] == "QUEUED"
        stopped = cb.stop_build(id=d["id"])["build"]
        assert stopped["buildStatus"] == "STOPPED" and stopped["buildComplete"]
        assert wait_build(s.url, c["id"])["buildStatus"] == "SUCCEEDED"
        assert cb.batch_get_builds(ids=[d["id"]])["builds"][0]["buildStatus"] == "STOPPED"
    finally:
        assert s.stop() == 0, s.stderr


def test_start_build_errors_raise_the_sdk_exceptions(api, cbl):
    cb = client(api.url)
    with pytest.raises(cb.exceptions.ResourceNotFoundException):
        cb.start_build(projectName="missing")
    create_project(api.url, cbl)
    # botocore checks ranges but not enums: the runner refuses this one
    with pytest.raises(cb.exceptions.InvalidInputException) as e:
        cb.start_build(projectName="my-project", computeTypeOverride="BUILD_GIGANTIC")
    assert "BUILD_GIGANTIC" in str(e.value)
    assert cb.list_builds_for_project(projectName="my-project")["ids"] == []
    with pytest.raises(cb.exceptions.ResourceNotFoundException):
        cb.stop_build(id="my-project:00000000-0000-0000-0000-000000000000")
