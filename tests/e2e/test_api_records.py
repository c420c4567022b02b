"""The Build record as the service writes it, for builds started over the
API against `serve` with boto3 (issue 16, item 2): every field from the
project and the request, not from what the local run made of them.  Each
record is walked against the service model's Build shape (member names,
enums, types), and the StartBuild answer against the shape of aws-cli's
documented start-build example (our own fixtures below, not its text)."""
import json
import subprocess
import time

import pytest

from conftest import SHARED, needs_shared
from test_server import AKID, SECRET, start_server

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=main"]
ROLE = "arn:aws:iam::123456789012:role/service-role/cb-role"
INLINE = """version: 0.2
phases:
  build:
    commands:
      - echo "who=$CODEBUILD_INITIATOR"
      - echo "parn=$CODEBUILD_PROJECT_ARN"
      - echo "logpath=$CODEBUILD_LOG_PATH"
      - echo "stage=$STAGE extra=$EXTRA"
      - sleep ${SLEEP:-0}
"""

# The members a QUEUED build answered by StartBuild carries in aws-cli's
# documented start-build example (its shape; values are ours).
DOC_START_KEYS = {"serviceRole", "buildStatus", "buildComplete", "projectName", "timeoutInMinutes",
                  "source", "queuedTimeoutInMinutes", "encryptionKey", "currentPhase", "startTime",
                  "environment", "phases", "logs", "artifacts", "cache", "id", "initiator", "arn"}


def boto(url, service="codebuild", region="us-east-1"):
    import boto3
    from botocore.config import Config
    s = boto3.session.Session(aws_access_key_id=AKID, aws_secret_access_key=SECRET, region_name=region)
    return s.client(service, endpoint_url=url, config=Config(retries={"max_attempts": 1}))


@pytest.fixture
def srv(home):
    s = start_server(home, "--max-builds", "1", "--identity",
                     f"{AKID}=arn:aws:iam::123456789012:user/team/alice")
    yield s
    assert s.stop() == 0, s.stderr


def wait(cb, bid, timeout=90):
    end = time.time() + timeout
    while time.time() < end:
        b = cb.batch_get_builds(ids=[bid])["builds"][0]
        if b["buildComplete"]:
            return b
        time.sleep(0.1)
    raise AssertionError("build did not finish")


def log_of(url, b, region="us-east-1"):
    logs = boto(url, "logs", region)
    ev = logs.get_log_events(logGroupName=b["logs"]["groupName"], logStreamName=b["logs"]["streamName"],
                             startFromHead=True)["events"]
    return "".join(e["message"] for e in ev)


# ---- the model walk -----------------------------------------------------------

def model():
    return json.loads((SHARED / "reference" / "models" / "codebuild.service-2.json").read_text())


def walk(m, shape_name, value, path="build"):
    """Every member of value is a member of the model's shape, of its type
    and (strings) in its enum."""
    shape = m["shapes"][shape_name]
    t = shape["type"]
    if t == "structure":
        assert isinstance(value, dict), path
        for k, v in value.items():
            assert k in shape["members"], f"{path}.{k} is not in the model's {shape_name}"
            walk(m, shape["members"][k]["shape"], v, f"{path}.{k}")
    elif t == "list":
        assert isinstance(value, list), path
        for i, v in enumerate(value):
            walk(m, shape["member"]["shape"], v, f"{path}[{i}]")
    elif t == "string":
        assert isinstance(value, str), path
        if "enum" in shape:
            assert value in shape["enum"], f"{path} = {value!r} not in {shape['enum']}"
    elif t == "boolean":
        assert isinstance(value, bool), path
    elif t in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), path
    elif t == "timestamp":
        assert isinstance(value, (int, float)) or hasattr(value, "year"), path


def walk_build(b):
    walk(model(), "Build", b)


# ---- tests --------------------------------------------------------------------

@needs_shared
def test_record_from_project_and_request(srv, cbl, tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(GIT + ["init", "-q", str(repo)], check=True)
    (repo / "buildspec.yml").write_text(INLINE)
    subprocess.run(GIT + ["add", "."], cwd=repo, check=True)
    subprocess.run(GIT + ["commit", "-q", "-m", "one"], cwd=repo, check=True)
    cb = boto(srv.url)
    cb.create_project(
        name="recs", serviceRole=ROLE,
        source={"type": "GITHUB", "location": f"file://{repo}", "gitCloneDepth": 1},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "LINUX_CONTAINER", "image": "host", "computeType": "BUILD_GENERAL1_SMALL",
                     "environmentVariables": [{"name": "STAGE", "value": "dev", "type": "PLAINTEXT"},
                                              {"name": "KEEP", "value": "k", "type": "PLAINTEXT"}]},
        logsConfig={"cloudWatchLogs": {"status": "ENABLED", "groupName": "team/builds",
                                       "streamName": "recs-logs"}},
        queuedTimeoutInMinutes=30, timeoutInMinutes=20)
    over = [{"name": "STAGE", "value": "prod", "type": "PLAINTEXT"},
            {"name": "EXTRA", "value": "x", "type": "PLAINTEXT"}]
    spec = INLINE.replace("who=", "over-who=")
    a = cb.start_build(projectName="recs", environmentVariablesOverride=over, buildspecOverride=spec,
                       privilegedModeOverride=False, sourceVersion="main",
                       timeoutInMinutesOverride=15)["build"]
    walk_build(a)
    b = wait(cb, a["id"])
    assert b["buildStatus"] == "SUCCEEDED", b
    walk_build(b)
    # source: the project's type and location, the buildspec text as given
    assert b["source"]["type"] == "GITHUB"
    assert b["source"]["location"] == f"file://{repo}"
    assert b["source"]["buildspec"] == spec
    assert b["sourceVersion"] == "main"
    assert b["serviceRole"] == ROLE
    env = b["environment"]
    assert env["environmentVariables"] == [
        {"name": "KEEP", "value": "k", "type": "PLAINTEXT"},
        {"name": "STAGE", "value": "prod", "type": "PLAINTEXT"},
        {"name": "EXTRA", "value": "x", "type": "PLAINTEXT"}]
    assert env["privilegedMode"] is False and env["image"] == "host"
    assert b["timeoutInMinutes"] == 15 and b["queuedTimeoutInMinutes"] == 30
    # logs: the project's group, its stream name as a prefix
    uuid = b["id"].split(":", 1)[1]
    assert b["logs"]["groupName"] == "team/builds"
    assert b["logs"]["streamName"] == f"recs-logs/{uuid}"
    assert b["logs"]["cloudWatchLogsArn"] == \
        f"arn:aws:logs:us-east-1:123456789012:log-group:team/builds:log-stream:recs-logs/{uuid}"
    text = log_of(srv.url, b)
    assert "stage=prod extra=x" in text
    assert f"logpath=recs-logs/{uuid}" in text
    # the caller's identity: an IAM user's name; the ARNs in its account
    assert b["initiator"] == "alice" and "over-who=alice" in text
    assert b["arn"] == f"arn:aws:codebuild:us-east-1:123456789012:build/{b['id']}"
    assert "parn=arn:aws:codebuild:us-east-1:123456789012:project/recs" in text
    # the new log operations find the project's group
    logs = boto(srv.url, "logs")
    ev = logs.filter_log_events(logGroupName="team/builds", filterPattern='"stage=prod"')["events"]
    assert [e["logStreamName"] for e in ev] == [f"recs-logs/{uuid}"]
    assert [s["logStreamName"] for s in logs.describe_log_streams(logGroupName="team/builds")["logStreams"]] \
        == [f"recs-logs/{uuid}"]


@needs_shared
def test_start_answer_and_queued_record(srv, cbl, tmp_path):
    src = cbl.project("qsrc", INLINE)
    cb = boto(srv.url)
    cb.create_project(name="qq", serviceRole=ROLE, source={"type": "NO_SOURCE", "buildspec": INLINE},
                      artifacts={"type": "NO_ARTIFACTS"},
                      environment={"type": "LINUX_CONTAINER", "image": "host",
                                   "computeType": "BUILD_GENERAL1_SMALL", "privilegedMode": False},
                      cache={"type": "LOCAL", "modes": ["LOCAL_CUSTOM_CACHE"]})
    del src
    slow = [{"name": "SLEEP", "value": "3", "type": "PLAINTEXT"}]
    first = cb.start_build(projectName="qq", environmentVariablesOverride=slow)["build"]
    second = cb.start_build(projectName="qq", privilegedModeOverride=True, sourceVersion="v9",
                            queuedTimeoutInMinutesOverride=7,
                            encryptionKeyOverride="arn:aws:kms:us-east-1:123456789012:key/k1")["build"]
    for ans in (first, second):
        # aws-cli's documented start-build answer: QUEUED, SUBMITTED done, QUEUED open
        walk_build(ans)
        assert ans["currentPhase"] == "QUEUED" and ans["buildStatus"] == "IN_PROGRESS"
        assert ans["buildComplete"] is False and "endTime" not in ans
        assert [p["phaseType"] for p in ans["phases"]] == ["SUBMITTED", "QUEUED"]
        assert ans["phases"][0]["phaseStatus"] == "SUCCEEDED"
        assert set(ans["phases"][1]) == {"phaseType", "startTime"}
        missing = DOC_START_KEYS - set(ans)
        assert not missing, missing
    # the queued one, read back while it waits: complete
    q = cb.batch_get_builds(ids=[second["id"]])["builds"][0]
    assert q["currentPhase"] == "QUEUED"
    walk_build(q)
    assert q["sourceVersion"] == "v9"
    assert q["timeoutInMinutes"] == 60 and q["queuedTimeoutInMinutes"] == 7
    assert q["artifacts"] == {"location": ""}
    assert q["cache"] == {"type": "LOCAL", "modes": ["LOCAL_CUSTOM_CACHE"]}
    assert q["encryptionKey"] == "arn:aws:kms:us-east-1:123456789012:key/k1"
    assert q["environment"]["privilegedMode"] is True
    assert q["source"] == {"type": "NO_SOURCE", "buildspec": INLINE, "insecureSsl": False}
    assert q["serviceRole"] == ROLE and q["initiator"] == "alice"
    assert q["logs"]["groupName"] == "/aws/codebuild/qq"
    done = wait(cb, second["id"])
    assert done["buildStatus"] == "SUCCEEDED"
    assert done["environment"]["privilegedMode"] is True
    assert done["source"]["buildspec"] == INLINE and "location" not in done["source"]
    wait(cb, first["id"])


@needs_shared
def test_region_of_the_signature_and_an_assumed_role(home, cbl):
    s = start_server(home, "--identity",
                     f"{AKID}=arn:aws:sts::210987654321:assumed-role/Deployer/ci-session")
    try:
        cb = boto(s.url, region="eu-west-1")
        cb.create_project(name="eu", serviceRole=ROLE, source={"type": "NO_SOURCE", "buildspec": INLINE},
                          artifacts={"type": "NO_ARTIFACTS"},
                          environment={"type": "LINUX_CONTAINER", "image": "host",
                                       "computeType": "BUILD_GENERAL1_SMALL"})
        # the project's ARN too
        assert cb.batch_get_projects(names=["eu"])["projects"][0]["arn"] == \
            "arn:aws:codebuild:eu-west-1:210987654321:project/eu"
        a = cb.start_build(projectName="eu")["build"]
        assert a["arn"] == f"arn:aws:codebuild:eu-west-1:210987654321:build/{a['id']}"
        b = wait(cb, a["id"])
        assert b["arn"] == a["arn"]
        assert b["initiator"] == "Deployer/ci-session"
        assert b["logs"]["cloudWatchLogsArn"].startswith("arn:aws:logs:eu-west-1:210987654321:log-group:")
        text = log_of(s.url, b, "eu-west-1")
        assert "who=Deployer/ci-session" in text
        assert "parn=arn:aws:codebuild:eu-west-1:210987654321:project/eu" in text
    finally:
        assert s.stop() == 0, s.stderr


def test_project_arn_of_a_run_build(cbl, tmp_path):
    """`run` has no project on the service: its implicit project (named
    after the directory, as list-projects shows it) gives the ARN."""
    d = cbl.project("runarn", INLINE)
    p = cbl("run", d, "--sandbox", "none", check=0)
    assert "parn=arn:aws:codebuild:us-east-1:000000000000:project/runarn" in p.stdout


SECRET_SPEC = """version: 0.2
phases:
  build:
    commands:
      - echo "pw=$DBPW token=$TOKEN"
      - echo "lens=${#DBPW},${#TOKEN}"
"""


def test_secrets_file_resolves_project_and_override_secrets(home, cbl, tmp_path):
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"parameter-store": {"/app/db/password": "s3cr3t-pw"},
                                   "secrets-manager": {"prod/db": json.dumps({"password": "tok-9876"})}}))
    s = start_server(home, "--secrets-file", str(secrets))
    try:
        cb = boto(s.url)
        cb.create_project(
            name="sec", serviceRole=ROLE, source={"type": "NO_SOURCE", "buildspec": SECRET_SPEC},
            artifacts={"type": "NO_ARTIFACTS"},
            environment={"type": "LINUX_CONTAINER", "image": "host", "computeType": "BUILD_GENERAL1_SMALL",
                         "environmentVariables": [{"name": "DBPW", "value": "/app/db/password",
                                                   "type": "PARAMETER_STORE"},
                                                  {"name": "TOKEN", "value": "plain", "type": "PLAINTEXT"}]})
        over = [{"name": "TOKEN", "value": "prod/db:password", "type": "SECRETS_MANAGER"}]
        b = wait(cb, cb.start_build(projectName="sec", environmentVariablesOverride=over)["build"]["id"])
        assert b["buildStatus"] == "SUCCEEDED", b
        text = log_of(s.url, b)
        # resolved (their lengths), masked as in `run`
        assert "lens=9,8" in text, text
        assert "pw=*** token=***" in text
        assert "s3cr3t-pw" not in text and "tok-9876" not in text
        # the record names the references, never the values
        assert b["environment"]["environmentVariables"] == [
            {"name": "DBPW", "value": "/app/db/password", "type": "PARAMETER_STORE"},
            {"name": "TOKEN", "value": "prod/db:password", "type": "SECRETS_MANAGER"}]
        rec = json.dumps(b, default=str)
        assert "s3cr3t-pw" not in rec and "tok-9876" not in rec
        # an unknown parameter fails the build as the service does, naming it
        bad = [{"name": "DBPW", "value": "/nope", "type": "PARAMETER_STORE"}]
        f = wait(cb, cb.start_build(projectName="sec", environmentVariablesOverride=bad)["build"]["id"])
        assert f["buildStatus"] == "FAILED"
        ctx = [c for p in f["phases"] for c in p.get("contexts", []) if c["statusCode"]]
        assert ctx and ctx[0]["statusCode"] == "Decrypted Variables Error" and "/nope" in ctx[0]["message"]
        for p in home.rglob("*"):
            if p.is_file():
                data = p.read_bytes()
                assert b"s3cr3t-pw" not in data and b"tok-9876" not in data, p
    finally:
        assert s.stop() == 0, s.stderr


def test_idempotency_token(srv, cbl):
    cb = boto(srv.url)
    cb.create_project(name="idem", serviceRole=ROLE, source={"type": "NO_SOURCE", "buildspec": INLINE},
                      artifacts={"type": "NO_ARTIFACTS"},
                      environment={"type": "LINUX_CONTAINER", "image": "host",
                                   "computeType": "BUILD_GENERAL1_SMALL"})
    a = cb.start_build(projectName="idem", idempotencyToken="tok-1")["build"]
    b = cb.start_build(projectName="idem", idempotencyToken="tok-1")["build"]
    assert a["id"] == b["id"]
    with pytest.raises(cb.exceptions.InvalidInputException) as e:
        cb.start_build(projectName="idem", idempotencyToken="tok-1", sourceVersion="other")
    assert "tok-1" in str(e.value)
    c = cb.start_build(projectName="idem", idempotencyToken="tok-2")["build"]
    assert c["id"] != a["id"]
    for x in (a, c):
        wait(cb, x["id"])
    # a retry is a new build
    r = cb.retry_build(id=a["id"])["build"]
    assert r["id"] not in (a["id"], c["id"])
    wait(cb, r["id"])
    assert cb.list_builds_for_project(projectName="idem")["ids"].__len__() == 3
