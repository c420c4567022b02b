"""`run --remote PROJECT` against `serve` standing in for CodeBuild: the
local buildspec and HEAD go to StartBuild, the log streams live, the exit
status is the one a local run of the same build has, and Ctrl-C ends the
remote build STOPPED on the server."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import BIN
from test_server import AKID, SECRET, aws, start_server


def git(cwd, *args):
    return subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def api(home):
    s = start_server(home)
    yield s
    s.stop()


@pytest.fixture
def checkout(tmp_path, api):
    """The project's repository (its source) and a local clone of it."""
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    (origin / "data.txt").write_text("pushed data\n")
    (origin / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    commands:\n      - exit 9\n")
    git(origin, "add", ".")
    git(origin, "commit", "-qm", "one")
    p = aws(api.url, "codebuild", "create-project", "--name", "app",
            "--source", json.dumps({"type": "GITHUB", "location": f"file://{origin}"}),
            "--artifacts", "type=NO_ARTIFACTS",
            "--environment", "type=LINUX_CONTAINER,image=host,computeType=BUILD_GENERAL1_SMALL",
            "--service-role", "arn:aws:iam::000000000000:role/codebuild")
    assert p.returncode == 0, p.stderr
    local = tmp_path / "local"
    git(tmp_path, "clone", "-q", str(origin), str(local))
    return local


def remote_env(cbl):
    env = cbl.env({"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                   "AWS_REGION": "us-east-1"})
    return env


def run_remote(cbl, api, local, *extra):
    return subprocess.run([str(BIN), "run", "--remote", "app", "--endpoint-url", api.url, *extra, str(local)],
                          env=remote_env(cbl), capture_output=True, text=True, timeout=120)


BS_OK = """version: 0.2
phases:
  install:
    commands:
      - echo "line 1 $GREETING"
  build:
    commands:
      - for i in 2 3 4 5; do echo "line $i"; done
      - cat data.txt
"""


def test_remote_build_streams_its_log_and_matches_a_local_run(cbl, api, checkout):
    (checkout / "buildspec.yml").write_text(BS_OK)  # the local buildspec, not committed: it goes as override
    p = run_remote(cbl, api, checkout, "-e", "GREETING=hi")
    assert p.returncode == 0, p.stdout + p.stderr
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("line ")]
    assert lines == ["line 1 hi", "line 2", "line 3", "line 4", "line 5"], p.stdout
    assert "pushed data" in p.stdout
    assert "Running command cat data.txt" in p.stdout
    assert "SUCCEEDED (remote)" in p.stderr
    local = cbl("run", "-e", "GREETING=hi", checkout)
    assert local.returncode == p.returncode


def test_remote_failure_has_runs_exit_status(cbl, api, checkout):
    (checkout / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    commands:\n      - echo boom\n"
                                            "      - exit 3\n")
    p = run_remote(cbl, api, checkout)
    local = cbl("run", checkout)
    assert p.returncode == local.returncode == 1, p.stdout + p.stderr
    assert "Command did not exit successfully exit 3 exit status 3" in p.stdout
    assert "FAILED (remote)" in p.stderr


def test_an_unpushed_head_is_refused(cbl, api, checkout):
    (checkout / "new.txt").write_text("x\n")
    git(checkout, "add", ".")
    git(checkout, "commit", "-qm", "local only")
    p = run_remote(cbl, api, checkout)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "is on no remote branch" in p.stderr and "git push first" in p.stderr
    out = json.loads(aws(api.url, "codebuild", "list-builds-for-project", "--project-name", "app").stdout)
    assert out["ids"] == []  # nothing was started


def test_ctrl_c_stops_the_remote_build(cbl, api, checkout):
    (checkout / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    commands:\n"
                                            "      - echo waiting\n      - sleep 60\n")
    proc = subprocess.Popen([str(BIN), "run", "--remote", "app", "--endpoint-url", api.url, str(checkout)],
                            env=remote_env(cbl), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "Running command sleep 60" in line:
                break
            assert time.time() < deadline, "".join(seen)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 5, err
    ids = json.loads(aws(api.url, "codebuild", "list-builds-for-project", "--project-name", "app").stdout)["ids"]
    b = json.loads(aws(api.url, "codebuild", "batch-get-builds", "--ids", ids[0]).stdout)["builds"][0]
    assert b["buildStatus"] == "STOPPED", b
    assert "stopping remote build" in err


def test_remote_flag_errors(cbl, checkout):
    p = cbl("run", "--endpoint-url", "http://127.0.0.1:9", checkout)
    assert p.returncode == 2 and "go with --remote" in p.stderr
    p = cbl("run", "--remote", "app", "--endpoint-url", "ftp://x", checkout,
            env={"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"})
    assert p.returncode == 2 and "http:// or https://" in p.stderr
