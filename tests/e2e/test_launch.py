"""start-build, stop-build, retry-build (the launcher): builds of a project
run in the background as their own processes; the CLI answers with the Build
as soon as the runner has written its first record."""
import json
import subprocess
import time

import pytest

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=main"]

BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - echo "greeting=$GREETING env=$ENVIRONMENT"
      - sleep ${SLEEP:-0}
artifacts:
  files: [buildspec.yml]
"""


def out_json(p):
    assert p.returncode == 0, p.output
    return json.loads(p.stdout)


def aws_error(p, op, typ):
    line = f"An error occurred ({typ}) when calling the {op} operation: "
    assert line in p.stderr, p.output
    return p.stderr.split(line, 1)[1].strip()


def create(cbl, tmp_path, name, source, env=None, **extra):
    doc = {
        "name": name,
        "source": source,
        "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": {"type": "LINUX_CONTAINER", "image": "host", "computeType": "BUILD_GENERAL1_SMALL",
                        "environmentVariables": env or []},
    }
    doc.update(extra)
    f = tmp_path / f"{name}.json"
    f.write_text(json.dumps(doc))
    out_json(cbl("create-project", "--cli-input-json", f"file://{f}"))


def wait_done(cbl, build_id, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        b = out_json(cbl("batch-get-builds", "--ids", build_id))["builds"][0]
        if b["buildComplete"]:
            return b
        time.sleep(0.1)
    raise AssertionError(f"{build_id} did not finish")


def log_text(cbl, b):
    ev = out_json(cbl("logs", "get-log-events", "--log-group-name", b["logs"]["groupName"],
                      "--log-stream-name", b["logs"]["streamName"], "--start-from-head"))["events"]
    return "".join(e["message"] for e in ev)


@pytest.fixture
def src(cbl):
    return cbl.project("src", BUILDSPEC)


def test_start_build_runs_in_the_background(cbl, tmp_path, src):
    create(cbl, tmp_path, "demo", {"type": "NO_SOURCE", "location": f"file://{src}"},
           env=[{"name": "ENVIRONMENT", "value": "staging", "type": "PLAINTEXT"}])
    t0 = time.time()
    b = out_json(cbl("start-build", "--project-name", "demo", "--environment-variables-override",
                     "name=GREETING,value=hi,type=PLAINTEXT", "name=SLEEP,value=1"))["build"]
    assert time.time() - t0 < 1.0, "start-build waited for the build"
    assert b["buildStatus"] == "IN_PROGRESS" and not b["buildComplete"]
    assert b["projectName"] == "demo" and b["buildNumber"] == 1 and b["id"].startswith("demo:")
    done = wait_done(cbl, b["id"])
    assert done["buildStatus"] == "SUCCEEDED"
    assert [p["phaseType"] for p in done["phases"]][-1] == "COMPLETED"
    assert "greeting=hi env=staging" in log_text(cbl, done)
    assert done["artifacts"]["location"].endswith("artifacts.zip")
    ids = out_json(cbl("list-builds-for-project", "--project-name", "demo"))["ids"]
    assert ids == [b["id"]]


def test_failed_build_reports_its_phases(cbl, tmp_path):
    create(cbl, tmp_path, "failing", {"type": "NO_SOURCE", "buildspec":
                                      "version: 0.2\nphases:\n  build:\n    commands:\n      - exit 3\n"})
    b = out_json(cbl("start-build", "--project-name", "failing"))["build"]
    done = wait_done(cbl, b["id"])
    assert done["buildStatus"] == "FAILED"
    ph = {p["phaseType"]: p for p in done["phases"]}
    assert ph["BUILD"]["phaseStatus"] == "FAILED"
    assert ph["BUILD"]["contexts"][0]["statusCode"] == "COMMAND_EXECUTION_ERROR"


def test_buildspec_override_and_git_source(cbl, tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(GIT + ["init", "-q", str(repo)], check=True)
    (repo / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    commands:\n"
                                        "      - echo \"file=$(cat v.txt)\"\n")
    shas = []
    for v in ("one", "two"):
        (repo / "v.txt").write_text(v + "\n")
        subprocess.run(GIT + ["add", "."], cwd=repo, check=True)
        subprocess.run(GIT + ["commit", "-q", "-m", v], cwd=repo, check=True)
        shas.append(subprocess.run(GIT + ["rev-parse", "HEAD"], cwd=repo, check=True,
                                   capture_output=True, text=True).stdout.strip())
    create(cbl, tmp_path, "gitproj", {"type": "GITHUB", "location": f"file://{repo}", "gitCloneDepth": 1})
    b = out_json(cbl("start-build", "--project-name", "gitproj", "--source-version", shas[0]))["build"]
    done = wait_done(cbl, b["id"])
    assert done["buildStatus"] == "SUCCEEDED", done
    assert done["resolvedSourceVersion"] == shas[0]
    assert "file=one" in log_text(cbl, done)
    inline = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo overridden-$(cat v.txt)\n"
    b = out_json(cbl("start-build", "--project-name", "gitproj", "--buildspec-override", inline))["build"]
    done = wait_done(cbl, b["id"])
    assert "overridden-two" in log_text(cbl, done)
    # the service shows an inline buildspec at this path (reference §1.1)
    assert "YAML location is /codebuild/readonly/buildspec.yml" in log_text(cbl, done)


def test_stop_build(cbl, tmp_path, src):
    create(cbl, tmp_path, "stoppable", {"type": "NO_SOURCE", "location": f"file://{src}"})
    b = out_json(cbl("start-build", "--project-name", "stoppable", "--environment-variables-override",
                     "name=SLEEP,value=60"))["build"]
    deadline = time.time() + 30
    while time.time() < deadline:  # until the sleep runs
        cur = out_json(cbl("batch-get-builds", "--ids", b["id"]))["builds"][0]
        if cur["currentPhase"] == "BUILD":
            break
        time.sleep(0.05)
    t0 = time.time()
    s = out_json(cbl("stop-build", "--id", b["id"]))["build"]
    assert time.time() - t0 < 10
    assert s["buildStatus"] == "STOPPED" and s["buildComplete"]
    ph = {p["phaseType"]: p for p in s["phases"]}
    assert ph["BUILD"]["phaseStatus"] == "STOPPED"
    # stopping a finished build changes nothing
    again = out_json(cbl("stop-build", "--id", b["id"]))["build"]
    assert again["buildStatus"] == "STOPPED"


def test_retry_build(cbl, tmp_path, src):
    create(cbl, tmp_path, "retried", {"type": "NO_SOURCE", "location": f"file://{src}"})
    b = out_json(cbl("start-build", "--project-name", "retried", "--environment-variables-override",
                     "name=GREETING,value=again"))["build"]
    wait_done(cbl, b["id"])
    r = out_json(cbl("retry-build", "--id", b["id"]))["build"]
    assert r["id"] != b["id"] and r["buildNumber"] == b["buildNumber"] + 1
    done = wait_done(cbl, r["id"])
    assert done["buildStatus"] == "SUCCEEDED" and "greeting=again" in log_text(cbl, done)
    # a `run` build was not started by StartBuild
    p = cbl("run", "--project", "retried", "--sandbox", "none", src, check=0)
    run_id = [w for w in p.output.split() if w.startswith("retried:")][0]
    msg = aws_error(cbl("retry-build", "--id", run_id, check=2), "RetryBuild", "InvalidInputException")
    assert "not started by StartBuild" in msg


def test_start_build_errors(cbl, tmp_path, src):
    p = cbl("start-build", "--project-name", "nope", check=1)
    aws_error(p, "StartBuild", "ResourceNotFoundException")
    create(cbl, tmp_path, "errs", {"type": "NO_SOURCE", "location": f"file://{src}"})
    p = cbl("start-build", "--project-name", "errs", "--timeout-in-minutes-override", "2", check=2)
    assert "timeoutInMinutesOverride" in aws_error(p, "StartBuild", "InvalidInputException")
    p = cbl("start-build", "--project-name", "errs", "--environment-variables-override",
            "name=X,value=/p,type=FOO", check=2)
    assert "FOO" in aws_error(p, "StartBuild", "InvalidInputException")
    p = cbl("stop-build", "--id", "errs:00000000-0000-0000-0000-000000000000", check=1)
    aws_error(p, "StopBuild", "ResourceNotFoundException")
    # a source the runner refuses: the error comes back, no build is left behind
    create(cbl, tmp_path, "gone", {"type": "NO_SOURCE", "location": f"file://{tmp_path}/missing"})
    p = cbl("start-build", "--project-name", "gone", check=2)
    assert "missing" in aws_error(p, "StartBuild", "InvalidInputException")
    assert out_json(cbl("list-builds-for-project", "--project-name", "gone"))["ids"] == []


CACHED = """version: 0.2
phases:
  build:
    commands:
      - echo "seen=$(cat /root/.dl/x 2>/dev/null || echo none)"
      - mkdir -p /root/.dl && echo "$STAMP" > /root/.dl/x
cache:
  paths: ['/root/.dl/**/*']
"""


@pytest.mark.parametrize("cache,used", [
    (None, False),
    ({"type": "NO_CACHE"}, False),
    ({"type": "LOCAL", "modes": ["LOCAL_SOURCE_CACHE"]}, False),
    ({"type": "LOCAL", "modes": ["LOCAL_CUSTOM_CACHE"]}, True),
    ({"type": "S3", "location": "bucket/prefix"}, True),
])
def test_project_cache_type_decides_whether_the_buildspec_cache_is_used(cbl, tmp_path, cache, used):
    src = cbl.project("cached", CACHED)
    extra = {"cache": cache} if cache else {}
    create(cbl, tmp_path, "cached", {"type": "NO_SOURCE", "location": f"file://{src}"}, **extra)
    for stamp in ("first", "second"):
        b = out_json(cbl("start-build", "--project-name", "cached", "--environment-variables-override",
                         f"name=STAMP,value={stamp}"))["build"]
        text = log_text(cbl, wait_done(cbl, b["id"]))
    assert ("seen=first" in text) == used, text
    assert ("Skip cache due to: the project's cache type" in text) == (not used)


def test_local_source_cache_mode_keeps_the_git_objects(cbl, tmp_path):
    from gitserver import GitServer
    work = tmp_path / "work"
    subprocess.run(GIT + ["init", "-q", str(work)], check=True)
    (work / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    commands:\n      - echo built\n")
    subprocess.run(GIT + ["add", "."], cwd=work, check=True)
    subprocess.run(GIT + ["commit", "-q", "-m", "one"], cwd=work, check=True)
    root = tmp_path / "srv"
    root.mkdir()
    subprocess.run(GIT + ["clone", "-q", "--bare", str(work), str(root / "app.git")], check=True)
    with GitServer(root) as srv:
        create(cbl, tmp_path, "srccache", {"type": "GITHUB", "location": srv.url("app.git")},
               cache={"type": "LOCAL", "modes": ["LOCAL_SOURCE_CACHE"]})
        texts = []
        for _ in range(2):
            b = out_json(cbl("start-build", "--project-name", "srccache"))["build"]
            done = wait_done(cbl, b["id"])
            assert done["buildStatus"] == "SUCCEEDED"
            texts.append(log_text(cbl, done))
    assert "Source cache: empty for this repository" in texts[0], texts[0]
    assert "Source cache: used" in texts[1], texts[1]
