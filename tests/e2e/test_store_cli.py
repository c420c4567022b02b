"""Projects, build history and logs through the CLI faces of the API
(create-project & co., list-builds*, batch-*-builds, logs get-log-events),
backed by the SQLite store."""
import json
import re
import os
import signal
import subprocess
import time

import pytest

from conftest import BIN

BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - echo line-one
      - echo line-two
      - echo line-three
"""


def out_json(p):
    assert p.returncode == 0, p.output
    return json.loads(p.stdout)


def aws_error(p, op, typ):
    line = f"An error occurred ({typ}) when calling the {op} operation: "
    assert line in p.stderr, p.output
    return p.stderr.split(line, 1)[1].strip()


def run_build(cbl, src, *extra):
    p = cbl("run", "--sandbox", "none", *extra, src, check=0)
    ids = [w for w in p.output.split() if w.count(":") == 1 and len(w.split(":")[1]) == 36]
    assert ids, p.output
    return ids[0]


def project_json(tmp_path, name, src):
    """A project in the AWS shape, as `aws codebuild create-project
    --cli-input-json file://project.json` takes it."""
    doc = {
        "name": name,
        "description": "seed-style project",
        "source": {"type": "NO_SOURCE", "location": f"file://{src}"},
        "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": {
            "type": "LINUX_CONTAINER",
            "image": "host",
            "computeType": "BUILD_GENERAL1_SMALL",
            "environmentVariables": [{"name": "ENVIRONMENT", "value": "staging", "type": "PLAINTEXT"}],
        },
        "serviceRole": "arn:aws:iam::000000000000:role/service-role/codebuild-my-project",
        "timeoutInMinutes": 30,
        "logsConfig": {"cloudWatchLogs": {"status": "ENABLED"}},
    }
    f = tmp_path / f"{name}.json"
    f.write_text(json.dumps(doc))
    return f


def test_projects_lifecycle(cbl, tmp_path):
    src = cbl.project("app", BUILDSPEC)
    f = project_json(tmp_path, "my-project", src)
    created = out_json(cbl("create-project", "--cli-input-json", f"file://{f}"))["project"]
    assert created["name"] == "my-project"
    assert created["arn"] == "arn:aws:codebuild:us-east-1:000000000000:project/my-project"
    assert created["source"] == {"type": "NO_SOURCE", "location": f"file://{src}", "insecureSsl": False}
    assert created["timeoutInMinutes"] == 30 and created["queuedTimeoutInMinutes"] == 480
    assert created["environment"]["environmentVariables"][0]["value"] == "staging"
    # timestamps as the AWS CLI prints them (ISO 8601, local time)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?[+-]\d\d:\d\d", created["created"])
    assert created["created"] == created["lastModified"]

    # shorthand, as the AWS CLI takes it
    out = out_json(cbl("create-project", "--name", "short-hand",
                       "--source", "type=GITHUB,location=file:///srv/repo.git,gitCloneDepth=1",
                       "--artifacts", "type=NO_ARTIFACTS",
                       "--environment", "type=LINUX_CONTAINER,image=host,computeType=BUILD_GENERAL1_SMALL,"
                                        "environmentVariables=[{name=A,value=b,type=PLAINTEXT}]",
                       "--tags", "key=team,value=build", "key=tier,value=1"))["project"]
    assert out["source"]["gitCloneDepth"] == 1
    assert out["environment"]["environmentVariables"] == [{"name": "A", "value": "b", "type": "PLAINTEXT"}]
    assert out["tags"] == [{"key": "team", "value": "build"}, {"key": "tier", "value": "1"}]

    assert out_json(cbl("list-projects")) == {"projects": ["my-project", "short-hand"]}
    assert out_json(cbl("list-projects", "--sort-by", "CREATED_TIME", "--sort-order", "DESCENDING"))[
        "projects"] == ["short-hand", "my-project"]
    got = out_json(cbl("batch-get-projects", "--names", "my-project", "nope"))
    assert got["projects"] == [created] and got["projectsNotFound"] == ["nope"]

    upd = out_json(cbl("update-project", "--name", "my-project", "--timeout-in-minutes", "45",
                       "--description", "changed"))["project"]
    assert upd["timeoutInMinutes"] == 45 and upd["description"] == "changed"
    assert upd["source"] == created["source"] and upd["created"] == created["created"]

    p = cbl("delete-project", "--name", "short-hand", check=0)
    assert p.stdout == "" and p.stderr == ""
    assert out_json(cbl("list-projects"))["projects"] == ["my-project"]


def test_project_errors(cbl, tmp_path):
    src = cbl.project("app", BUILDSPEC)
    f = project_json(tmp_path, "dup", src)
    cbl("create-project", "--cli-input-json", f"file://{f}", check=0)
    p = cbl("create-project", "--cli-input-json", f"file://{f}", check=1)
    assert aws_error(p, "CreateProject", "ResourceAlreadyExistsException") == \
        "Project already exists: arn:aws:codebuild:us-east-1:000000000000:project/dup"
    # flags override the file's members
    p = cbl("create-project", "--cli-input-json", f"file://{f}", "--timeout-in-minutes", "3000", check=2)
    assert aws_error(p, "CreateProject", "InvalidInputException") == (
        "1 validation error detected: Value '3000' at 'timeoutInMinutes' failed to satisfy "
        "constraint: Member must have value less than or equal to 2160")
    p = cbl("create-project", "--name", "x", check=2)
    msg = aws_error(p, "CreateProject", "InvalidInputException")
    # 'x' breaks two constraints of ProjectName (length >= 2, the pattern):
    # the service reports each, then the three missing members
    assert msg.startswith("5 validation errors detected: ") and "Value null at 'source'" in msg
    p = cbl("update-project", "--name", "ghost", check=1)
    assert aws_error(p, "UpdateProject", "ResourceNotFoundException") == \
        "Project cannot be found: arn:aws:codebuild:us-east-1:000000000000:project/ghost"
    p = cbl("delete-project", "--name", "ghost", check=1)
    aws_error(p, "DeleteProject", "ResourceNotFoundException")
    p = cbl("create-project", "--source", "type=GITHUB,location", check=2)
    assert "shorthand" in p.stderr
    p = cbl("list-projects", "--bogus", check=2)
    assert "unknown option '--bogus'" in p.stderr


def test_builds_history_and_logs(cbl):
    src = cbl.project("hist", BUILDSPEC)
    first = run_build(cbl, src)
    second = run_build(cbl, src)
    # the implicit project of `run`, with the directory as its source
    assert "hist" in out_json(cbl("list-projects"))["projects"]
    proj = out_json(cbl("batch-get-projects", "--names", "hist"))["projects"][0]
    assert proj["source"]["location"] == f"file://{src}"

    assert out_json(cbl("list-builds-for-project", "--project-name", "hist")) == {"ids": [second, first]}
    assert out_json(cbl("list-builds-for-project", "--project-name", "hist",
                        "--sort-order", "ASCENDING")) == {"ids": [first, second]}
    assert out_json(cbl("list-builds"))["ids"][:2] == [second, first]
    got = out_json(cbl("batch-get-builds", "--ids", first, second, "hist:" + "0" * 36))
    assert [b["buildNumber"] for b in got["builds"]] == [1, 2]
    assert got["buildsNotFound"] == ["hist:" + "0" * 36]
    rec = got["builds"][0]
    assert rec["buildStatus"] == "SUCCEEDED"

    # the log stream the record names, page by page
    group, stream = rec["logs"]["groupName"], rec["logs"]["streamName"]
    assert group == "/aws/codebuild/hist"
    page = out_json(cbl("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream,
                        "--start-from-head", "--limit", "3"))
    assert len(page["events"]) == 3
    assert page["events"][0]["message"].startswith("[Container] ")
    assert all(e["message"].endswith("\n") for e in page["events"])
    assert all(isinstance(e["timestamp"], int) for e in page["events"])
    messages = [e["message"] for e in page["events"]]
    token = page["nextForwardToken"]
    for _ in range(100):
        nxt = out_json(cbl("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream,
                           "--start-from-head", "--limit", "3", "--next-token", token))
        messages += [e["message"] for e in nxt["events"]]
        if nxt["nextForwardToken"] == token:
            assert nxt["events"] == []
            break
        token = nxt["nextForwardToken"]
    else:
        pytest.fail("the forward token never repeated")
    with open(cbl.home / "builds" / "hist" / stream / "build.log") as fh:
        assert messages == fh.readlines()
    assert "line-two\n" in messages
    # default: the tail of the stream
    tail = out_json(cbl("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream,
                        "--limit", "2"))
    assert [e["message"] for e in tail["events"]] == messages[-2:]
    p = cbl("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", "nope", check=1)
    assert aws_error(p, "GetLogEvents", "ResourceNotFoundException") == "The specified log stream does not exist."
    p = cbl("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream,
            "--limit", "0", check=2)
    aws_error(p, "GetLogEvents", "InvalidParameterException")

    # delete one build: its record, log and directory go; numbers are not reused
    deleted = out_json(cbl("batch-delete-builds", "--ids", first, "hist:" + "1" * 36))
    # the service answers with ARNs (aws-cli's documented example)
    assert deleted["buildsDeleted"] == [f"arn:aws:codebuild:us-east-1:000000000000:build/{first}"]
    assert deleted["buildsNotDeleted"] == [{"id": "hist:" + "1" * 36, "statusCode": "BUILD_NOT_FOUND"}]
    assert out_json(cbl("list-builds-for-project", "--project-name", "hist")) == {"ids": [second]}
    assert not (cbl.home / "builds" / "hist" / first.split(":")[1]).exists()
    third = run_build(cbl, src)
    assert out_json(cbl("batch-get-builds", "--ids", third))["builds"][0]["buildNumber"] == 3


def test_list_errors(cbl):
    p = cbl("list-builds-for-project", "--project-name", "ghost", check=1)
    assert aws_error(p, "ListBuildsForProject", "ResourceNotFoundException") == \
        "Project cannot be found: arn:aws:codebuild:us-east-1:000000000000:project/ghost"
    p = cbl("batch-get-builds", "--ids", "no-colon", check=2)
    assert aws_error(p, "BatchGetBuilds", "InvalidInputException") == "Invalid build ID provided: no-colon"
    p = cbl("batch-get-builds", check=2)
    assert "Value null at 'ids'" in aws_error(p, "BatchGetBuilds", "InvalidInputException")
    p = cbl("list-builds", "--next-token", "garbage", check=2)
    assert aws_error(p, "ListBuilds", "InvalidInputException") == "Invalid next token"


def test_killed_runner_shows_fault(cbl, tmp_path):
    mark = tmp_path / "started"
    src = cbl.project("crash", f"""version: 0.2
phases:
  build:
    commands:
      - echo $$ > {mark}.tmp; mv {mark}.tmp {mark}; sleep 60
""")
    proc = subprocess.Popen([str(BIN), "run", "--sandbox", "none", str(src)], env=cbl.env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(300):
            if mark.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert mark.exists(), "the build never reached its command"
        ids = out_json(cbl("list-builds-for-project", "--project-name", "crash"))["ids"]
        rec = out_json(cbl("batch-get-builds", "--ids", ids[0]))["builds"][0]
        assert rec["buildStatus"] == "IN_PROGRESS" and rec["buildComplete"] is False
        # running builds are not deleted
        nd = out_json(cbl("batch-delete-builds", "--ids", ids[0]))
        assert nd["buildsNotDeleted"] == [{"id": f"arn:aws:codebuild:us-east-1:000000000000:build/{ids[0]}", "statusCode": "BUILD_IN_PROGRESS"}]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if mark.exists():
            # the build's shell has a session of its own: the runner's death
            # leaves it behind
            try:
                os.killpg(int(mark.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
    rec = out_json(cbl("batch-get-builds", "--ids", ids[0]))["builds"][0]
    assert rec["buildStatus"] == "FAULT"
    assert rec["buildComplete"] is True and rec["currentPhase"] == "COMPLETED"
    assert rec["endTime"] >= rec["startTime"]
    build = [ph for ph in rec["phases"] if ph["phaseType"] == "BUILD"][0]
    assert build["phaseStatus"] == "FAULT"
    assert build["contexts"] == [{"statusCode": "INTERNAL_ERROR",
                                  "message": "Build runner exited unexpectedly"}]
    assert rec["phases"][-1] == {"phaseType": "COMPLETED", "startTime": rec["endTime"]}
    with open(cbl.home / "builds" / "crash" / ids[0].split(":")[1] / "build.json") as fh:
        assert json.load(fh)["buildStatus"] == "FAULT"
    # now it can go
    assert out_json(cbl("batch-delete-builds", "--ids", ids[0]))["buildsDeleted"] == [
        f"arn:aws:codebuild:us-east-1:000000000000:build/{ids[0]}"]


def test_help(cbl):
    for sub in ("create-project", "update-project", "delete-project", "batch-get-projects",
                "list-projects", "batch-get-builds", "list-builds", "list-builds-for-project",
                "batch-delete-builds"):
        p = cbl(sub, "--help", check=0)
        assert p.stdout.startswith("usage: codebuild-local " + sub), sub
        assert "--cli-input-json" in p.stdout
    p = cbl("logs", "get-log-events", "--help", check=0)
    assert p.stdout.startswith("usage: codebuild-local logs get-log-events")
    p = cbl("logs", "--help", check=0)
    assert "get-log-events" in p.stdout
    p = cbl("logs", "nope", check=2)
    assert "unknown logs command" in p.stderr
