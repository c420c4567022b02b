"""The sandbox API on `serve` (StartSandbox, BatchGetSandboxes, ListSandboxes,
ListSandboxesForProject, StopSandbox, StartCommandExecution,
BatchGetCommandExecutions, ListCommandExecutionsForSandbox).

Debian's AWS CLI v2.9 and boto3 1.26 predate these operations, so this test
alone uses the AWS CLI v1 found on PATH (a newer botocore model that has
them) and boto3 from that same Python installation; it skips without one."""
import json
import os
import shutil
import subprocess
import time

import pytest

from test_server import AKID, REGION, SECRET, client, start_server


def cli_v1():
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = os.path.join(d, "aws")
        if not os.access(p, os.X_OK):
            continue
        v = subprocess.run([p, "--version"], capture_output=True, text=True)
        if (v.stdout + v.stderr).startswith("aws-cli/1."):
            return p
    pytest.skip("no AWS CLI v1 on PATH (its botocore model has the sandbox API)")


def python_of(aws):
    """The interpreter of that CLI (and its boto3): its script's #! line,
    through pyenv's shim when it is one."""
    real = aws
    with open(aws, "rb") as f:
        first = f.readline()
    if b"bash" in first and shutil.which("pyenv"):
        real = subprocess.run(["pyenv", "which", "aws"], capture_output=True, text=True).stdout.strip()
    with open(real, "rb") as f:
        line = f.readline().decode().strip()
    assert line.startswith("#!"), line
    return line[2:].split()[0]


def env():
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/nonexistent"),
         "LANG": "C.UTF-8", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
         "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "", "AWS_ACCESS_KEY_ID": AKID,
         "AWS_SECRET_ACCESS_KEY": SECRET}
    for k in ("PYENV_ROOT", "PYENV_VERSION"):
        if k in os.environ:
            e[k] = os.environ[k]
    return e


def v1(aws, url, *args):
    p = subprocess.run([aws, *args, "--endpoint-url", url, "--region", REGION, "--output", "json"], env=env(),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout) if p.stdout.strip() else None


BOTO3 = r"""
import json, sys, time, boto3
url, sid, ids = sys.argv[1], sys.argv[2], sys.argv[3:]
cb = boto3.client("codebuild", endpoint_url=url, region_name="us-east-1")
end = time.time() + 120
while True:
    r = cb.batch_get_command_executions(sandboxId=sid, commandExecutionIds=ids)
    if all(c["status"] in ("SUCCEEDED", "FAILED") for c in r["commandExecutions"]) or time.time() > end:
        break
    time.sleep(0.2)
listed = cb.list_command_executions_for_sandbox(sandboxId=sid, sortOrder="ASCENDING")
sb = cb.batch_get_sandboxes(ids=[sid, "nope:0"])
print(json.dumps({"got": r, "listed": listed, "sandboxes": sb}, default=str))
"""


@pytest.fixture
def api(home, cbl):
    s = start_server(home)
    yield s
    assert s.stop() == 0, s.stderr


def test_sandbox_start_two_commands_status_output_stop(api, cbl, home):
    aws = cli_v1()
    py = python_of(aws)
    src = cbl.project("sbx-src", "version: 0.2\nphases:\n  build:\n    commands:\n      - echo project-buildspec\n",
                      {"data.txt": "from-the-source\n"})
    client(api.url).create_project(
        name="sbx", source={"type": "NO_SOURCE", "location": f"file://{src}"}, artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "LINUX_CONTAINER", "image": "host", "computeType": "BUILD_GENERAL1_SMALL",
                     "environmentVariables": [{"name": "GREETING", "value": "hi-from-project"}]},
        serviceRole="arn:aws:iam::000000000000:role/codebuild")
    sb = v1(aws, api.url, "codebuild", "start-sandbox", "--project-name", "sbx")["sandbox"]
    sid = sb["id"]
    assert sid.startswith("sbx:") and sb["arn"].endswith(f":sandbox/{sid}")
    assert sb["status"] in ("QUEUED", "PREPARING", "READY")

    def status():
        return v1(aws, api.url, "codebuild", "batch-get-sandboxes", "--ids", sid)["sandboxes"][0]["status"]

    end = time.time() + 60
    while status() != "READY":
        assert time.time() < end, "the sandbox never became READY"
        time.sleep(0.2)

    c1 = v1(aws, api.url, "codebuild", "start-command-execution", "--sandbox-id", sid, "--command",
            'echo "hello $GREETING"; pwd; echo to-stderr >&2')["commandExecution"]
    c2 = v1(aws, api.url, "codebuild", "start-command-execution", "--sandbox-id", sid, "--command",
            'id -u; exit 3', "--type", "SHELL")["commandExecution"]
    assert c1["status"] in ("SUBMITTED", "IN_PROGRESS") and c1["sandboxId"] == sid

    p = subprocess.run([py, "-c", BOTO3, api.url, sid, c1["id"], c2["id"]], env=env(), capture_output=True,
                       text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    got = {c["id"]: c for c in out["got"]["commandExecutions"]}
    one, two = got[c1["id"]], got[c2["id"]]
    assert one["status"] == "SUCCEEDED" and one["exitCode"] == "0", one
    assert "hello hi-from-project" in one["standardOutputContent"]
    assert "/codebuild/output/src" in one["standardOutputContent"]
    assert "to-stderr" in one["standardErrContent"]
    assert two["status"] == "FAILED" and two["exitCode"] == "3", two
    assert two["standardOutputContent"].strip() == "0"
    assert [c["id"] for c in out["listed"]["commandExecutions"]] == [c1["id"], c2["id"]]
    assert out["sandboxes"]["sandboxesNotFound"] == ["nope:0"]
    assert out["sandboxes"]["sandboxes"][0]["currentSession"]["currentPhase"] == "BUILD"

    assert sid in v1(aws, api.url, "codebuild", "list-sandboxes")["ids"]
    assert v1(aws, api.url, "codebuild", "list-sandboxes-for-project", "--project-name", "sbx")["ids"] == [sid]
    assert v1(aws, api.url, "codebuild", "list-sandboxes-for-project", "--project-name", "other")["ids"] == []
    # the commands' output is in the sandbox's log
    project, uuid = sid.split(":", 1)
    log = (home / "builds" / project / uuid / "build.log").read_text()
    assert "Running command echo \"hello $GREETING\"" in log and "hello hi-from-project" in log
    assert "project-buildspec" not in log  # a sandbox runs no buildspec of the project

    stopped = v1(aws, api.url, "codebuild", "stop-sandbox", "--id", sid)["sandbox"]
    assert stopped["id"] == sid
    end = time.time() + 30
    while status() != "STOPPED":
        assert time.time() < end
        time.sleep(0.2)
    bad = subprocess.run([aws, "codebuild", "start-command-execution", "--sandbox-id", sid, "--command", "true",
                          "--endpoint-url", api.url, "--region", REGION], env=env(), capture_output=True, text=True)
    assert bad.returncode != 0 and "STOPPED" in bad.stderr


def test_cli_faces(cbl, home):
    """The same operations as codebuild-local subcommands (no server)."""
    src = cbl.project("face-src", "version: 0.2\nphases:\n  build:\n    commands:\n      - echo never\n")
    proj = {"name": "face", "source": {"type": "NO_SOURCE", "location": f"file://{src}"},
            "artifacts": {"type": "NO_ARTIFACTS"},
            "environment": {"type": "LINUX_CONTAINER", "image": "host", "computeType": "BUILD_GENERAL1_SMALL"},
            "serviceRole": "arn:aws:iam::000000000000:role/codebuild"}
    f = home.parent / "face.json"
    f.write_text(json.dumps(proj))
    cbl("create-project", "--cli-input-json", f"file://{f}", check=0)
    sid = json.loads(cbl("start-sandbox", "--project-name", "face", check=0).stdout)["sandbox"]["id"]
    c = json.loads(cbl("start-command-execution", "--sandbox-id", sid, "--command", "echo face-$((6*7))",
                       check=0, timeout=360).stdout)["commandExecution"]
    got = json.loads(cbl("batch-get-command-executions", "--sandbox-id", sid, "--command-execution-ids", c["id"],
                         check=0).stdout)["commandExecutions"][0]
    assert got["status"] == "SUCCEEDED" and got["standardOutputContent"] == "face-42\n", got
    listed = json.loads(cbl("list-command-executions-for-sandbox", "--sandbox-id", sid, check=0).stdout)
    assert [x["id"] for x in listed["commandExecutions"]] == [c["id"]]
    assert json.loads(cbl("list-sandboxes-for-project", "--project-name", "face", check=0).stdout)["ids"] == [sid]
    cbl("stop-sandbox", "--id", sid, check=0)
    end = time.time() + 30
    while json.loads(cbl("batch-get-sandboxes", "--ids", sid, check=0).stdout)["sandboxes"][0]["status"] != "STOPPED":
        assert time.time() < end
        time.sleep(0.2)
    missing = cbl("start-command-execution", "--sandbox-id", "face:nope", "--command", "true")
    assert missing.returncode != 0 and "does not exist" in missing.output
