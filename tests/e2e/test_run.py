"""End-to-end behaviour of `codebuild-local run`: phases, command model,
environment, records, timeouts and stops."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import BIN


def phases_of(record):
    return {p["phaseType"]: p for p in record["phases"]}


def last_record(cbl, p):
    m = re.search(r"Build (\S+:[0-9a-f-]{36}) ", p.output)
    assert m, p.output
    out = cbl("batch-get-builds", "--ids", m.group(1), check=0)
    data = json.loads(out.stdout)
    assert data["buildsNotFound"] == []
    return data["builds"][0]


def test_success_record_shape(cbl):
    src = cbl.project("shape", """version: 0.2
phases:
  build:
    commands:
      - echo hi
""")
    p = cbl("run", src, check=0)
    r = last_record(cbl, p)
    assert r["id"].startswith("shape:") and len(r["id"]) == len("shape:") + 36
    assert r["arn"] == f"arn:aws:codebuild:us-east-1:000000000000:build/{r['id']}"
    assert r["buildNumber"] == 1
    assert r["buildStatus"] == "SUCCEEDED" and r["currentPhase"] == "COMPLETED"
    assert r["buildComplete"] is True and r["endTime"] >= r["startTime"]
    types = [ph["phaseType"] for ph in r["phases"]]
    assert types == ["SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL",
                     "PRE_BUILD", "BUILD", "POST_BUILD", "UPLOAD_ARTIFACTS", "FINALIZING",
                     "COMPLETED"]
    assert set(r["phases"][-1]) == {"phaseType", "startTime"}
    for ph in r["phases"][:-1]:
        assert ph["phaseStatus"] == "SUCCEEDED"
        assert isinstance(ph["durationInSeconds"], int)
    assert phases_of(r)["BUILD"]["contexts"] == [{"statusCode": "", "message": ""}]
    assert r["logs"]["groupName"] == "/aws/codebuild/shape"
    assert r["logs"]["streamName"] == r["id"].split(":")[1]
    assert r["environment"]["computeType"] == "BUILD_GENERAL1_SMALL"
    assert r["environment"]["image"] == "host"
    assert r["timeoutInMinutes"] == 60
    # a second build gets the next number
    p2 = cbl("run", src, check=0)
    assert last_record(cbl, p2)["buildNumber"] == 2


def test_batch_get_builds_not_found(cbl):
    p = cbl("batch-get-builds", "--ids", "nope:00000000-0000-0000-0000-000000000000", check=0)
    data = json.loads(p.stdout)
    assert data == {"builds": [], "buildsNotFound": ["nope:00000000-0000-0000-0000-000000000000"]}


def test_failure_contexts_and_log_lines(cbl):
    src = cbl.project("fail", """version: 0.2
phases:
  build:
    commands:
      - echo start
      - sh -c 'exit 3'
""")
    p = cbl("run", src, check=1)
    assert "Command did not exit successfully sh -c 'exit 3' exit status 3" in p.output
    assert "Phase complete: BUILD State: FAILED" in p.output
    assert ("Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing "
            "command: sh -c 'exit 3'. Reason: exit status 3") in p.output
    assert "Entering phase POST_BUILD" in p.output
    assert "Phase complete: UPLOAD_ARTIFACTS State: SUCCEEDED" in p.output
    r = last_record(cbl, p)
    assert r["buildStatus"] == "FAILED"
    assert phases_of(r)["BUILD"]["contexts"][0]["statusCode"] == "COMMAND_EXECUTION_ERROR"
    assert phases_of(r)["POST_BUILD"]["phaseStatus"] == "SUCCEEDED"


def test_success_log_lines(cbl):
    src = cbl.project("loglines", """version: 0.2
phases:
  pre_build:
    commands:
      - echo one
  build:
    commands:
      - echo two
      - echo three
""")
    p = cbl("run", src, check=0)
    out = p.stdout
    srcdir = re.search(r"CODEBUILD_SRC_DIR=(/codebuild/output/src\d+/src)$", out, re.M).group(1)
    for line in ["Phase is DOWNLOAD_SOURCE",
                 f"YAML location is {srcdir}/buildspec.yml", "Processing environment variables",
                 "No runtime version selected in buildspec.", f"Moving to directory {srcdir}",
                 "Phases found in YAML: 2", " PRE_BUILD: 1 commands", " BUILD: 2 commands",
                 "Phase complete: DOWNLOAD_SOURCE State: SUCCEEDED",
                 "Entering phase INSTALL", "Phase complete: INSTALL State: SUCCEEDED"]:
        assert line in out, line
    # success context: two spaces and a trailing space, exactly as the service
    assert re.search(r"^\[Container\] \S+ \S+ Phase context status code:  Message: $", out, re.M)
    # command output is raw, followed by one empty line
    assert "\ntwo\n\n" in out
    assert "Entering phase UPLOAD_ARTIFACTS" not in out
    for line in out.splitlines():
        if line.startswith("[Container]"):
            assert re.match(r"\[Container\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6} ", line), line


def test_on_failure_continue_and_abort(cbl):
    src = cbl.project("cont", """version: 0.2
phases:
  install:
    on-failure: CONTINUE
    commands:
      - false
  pre_build:
    commands:
      - echo "CHECK pre runs, succeeding=$CODEBUILD_BUILD_SUCCEEDING"
""")
    p = cbl("run", src, check=1)
    assert "CHECK pre runs, succeeding=0" in p.output
    src = cbl.project("abort", """version: 0.2
phases:
  build:
    on-failure: ABORT
    commands:
      - false
  post_build:
    commands:
      - echo "CHECK post must not run"
""")
    p = cbl("run", src, check=1)
    assert "CHECK post must not run" not in p.output
    assert "UPLOAD_ARTIFACTS" not in p.output


def test_on_failure_retry(cbl):
    src = cbl.project("retry", """version: 0.2
phases:
  build:
    on-failure: RETRY-2
    commands:
      - n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count
      - test "$(cat count)" -ge 3
""")
    p = cbl("run", "--source-mode", "mount", src, check=0)
    assert (src / "count").read_text().strip() == "3"
    assert p.output.count("Entering phase BUILD") == 1
    src = cbl.project("retryre", """version: 0.2
phases:
  build:
    on-failure: RETRY-5-exit status 9
    commands:
      - n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count
      - exit 4
""")
    cbl("run", "--source-mode", "mount", src, check=1)
    assert (src / "count").read_text().strip() == "1", "regex does not match: no retry"


def test_finally_runs_and_failing_finally_fails_phase(cbl):
    src = cbl.project("fin", """version: 0.2
phases:
  build:
    commands:
      - echo ok
    finally:
      - echo "CHECK finally 1"
      - false
      - echo "CHECK finally 3 must not run"
""")
    p = cbl("run", src, check=1)
    assert "CHECK finally 1" in p.output
    assert "CHECK finally 3 must not run" not in p.output
    assert "Phase complete: BUILD State: FAILED" in p.output


def test_environment_variables(cbl, tmp_path):
    src = cbl.project("envs", """version: 0.2
env:
  variables:
    FROM_SPEC: spec
    BOTH: spec
    LITERAL: "$PATH:/x"
phases:
  build:
    commands:
      - env | grep -E '^(CODEBUILD_|AWS_|FROM_|BOTH|LITERAL|FILE_)' | sort
""")
    envfile = tmp_path / "vars.env"
    envfile.write_text("# comment\n\nFILE_VAR=\"quoted stays\"\nBOTH=file\n")
    p = cbl("run", "--env-file", envfile, "-e", "BOTH=cli", "--source-version", "main", src, check=0)
    env = dict(l.split("=", 1) for l in p.stdout.splitlines() if re.match(r"^[A-Z_]+=", l))
    r = last_record(cbl, p)
    assert env["CODEBUILD_BUILD_ID"] == r["id"]
    assert env["CODEBUILD_BUILD_ARN"] == r["arn"]
    assert env["CODEBUILD_BUILD_NUMBER"] == "1"
    assert env["CODEBUILD_BUILD_SUCCEEDING"] == "1"
    assert re.fullmatch(r"/codebuild/output/src\d+/src", env["CODEBUILD_SRC_DIR"])
    assert env["CODEBUILD_LOG_PATH"] == r["logs"]["streamName"]
    assert env["CODEBUILD_SOURCE_VERSION"] == "main"
    assert re.fullmatch(r"\d{13}", env["CODEBUILD_START_TIME"])
    assert env["CODEBUILD_BUILD_IMAGE"] == "host"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["CODEBUILD_INITIATOR"]
    assert env["FROM_SPEC"] == "spec"
    assert env["LITERAL"] == "$PATH:/x", "buildspec values are literal"
    assert env["FILE_VAR"] == '"quoted stays"', "env files do no quote processing"
    assert env["BOTH"] == "cli", "-e beats --env-file beats the buildspec"


def test_parameter_store_masked(cbl, tmp_path):
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"parameter-store": {"/app/token": "tok-123456"}}))
    src = cbl.project("ssm", """version: 0.2
env:
  parameter-store:
    TOKEN: /app/token
phases:
  build:
    commands:
      - echo "token is $TOKEN"
      - test "$TOKEN" = tok-123456 && echo CHECK resolved
""")
    p = cbl("run", "--secrets-file", secrets, src, check=0)
    assert "tok-123456" not in p.output
    assert "token is ***" in p.output and "CHECK resolved" in p.output
    assert "Decrypting parameter store environment variables" in p.output
    r = last_record(cbl, p)
    log = open(r["logs"]["deepLink"][len("file://"):]).read()
    assert "tok-123456" not in log and "token is ***" in log


def test_missing_parameter_without_secrets_file(cbl):
    src = cbl.project("nossm", """version: 0.2
env:
  parameter-store:
    TOKEN: /x/y
phases:
  build:
    commands:
      - echo never
""")
    p = cbl("run", src, check=1)
    assert "Phase complete: DOWNLOAD_SOURCE State: FAILED" in p.output
    assert "/x/y" in p.output and "--secrets-file" in p.output
    assert "Entering phase" not in p.output


def test_exported_variables(cbl):
    src = cbl.project("exp", """version: 0.2
env:
  exported-variables:
    - RESULT
    - NEVER_SET
phases:
  build:
    commands:
      - RESULT="built ok"
""")
    p = cbl("run", src, check=0)
    r = last_record(cbl, p)
    assert r["exportedEnvironmentVariables"] == [
        {"name": "RESULT", "value": "built ok"}, {"name": "NEVER_SET", "value": ""}]


def test_shell_bash_and_line_4(cbl):
    src = cbl.project("bash", """version: 0.2
env:
  shell: bash
phases:
  build:
    commands:
      - echo "CHECK bash=${BASH_VERSION:+yes}"
      - '[[ 1 == 1 ]] && echo CHECK double-brackets'
      - nosuchcommand-abc
""")
    p = cbl("run", src, check=1)
    assert "CHECK bash=yes" in p.output and "CHECK double-brackets" in p.output
    assert re.search(r"script\.sh: line 4: nosuchcommand-abc: command not found", p.output)
    assert "exit status 127" in p.output


def test_version_01_and_block_scalar(cbl):
    src = cbl.project("v01", """version: 0.1
environment_variables:
  plaintext:
    OLD: style
phases:
  build:
    commands:
      - cd /tmp
      - echo "CHECK $(pwd) $OLD"
      - |
        false
        echo "CHECK block scalar is one command"
""")
    p = cbl("run", src, check=0)
    assert re.search(r"CHECK /codebuild/output/src\d+/src style", p.output), p.output
    assert "CHECK block scalar is one command" in p.output


def test_missing_buildspec(cbl, tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    p = cbl("run", d, check=2)
    # the service's words, then the path it looked for: the build's and this machine's
    assert re.search(r"Phase context status code: YAML_FILE_ERROR Message: YAML file does not exist: "
                     r"/codebuild/output/src\d+/src/buildspec\.yml \(on this machine: "
                     + re.escape(str(d / "buildspec.yml")) + r"\)$", p.output, re.M), p.output
    p = cbl("run", "-b", "ci/nope.yml", d, check=2)
    assert re.search(r"YAML file does not exist: /codebuild/output/src\d+/src/ci/nope\.yml \(on this machine: "
                     + re.escape(str(d / "ci" / "nope.yml")) + r"\)$", p.output, re.M), p.output


def test_invalid_buildspec_exit_2_with_position(cbl):
    src = cbl.project("bad", """version: 0.2
phases:
  build:
    commands:
      - echo fine
  postbuild:
    commands:
      - echo x
""")
    p = cbl("run", src, check=2)
    assert re.search(r"buildspec\.yml:6:\d+", p.output), p.output
    assert "YAML_FILE_ERROR" in p.output
    assert "Entering phase" not in p.output


@pytest.mark.parametrize("sandbox", ["namespaces", "none"])
def test_timeout_kills_everything(cbl, tmp_path, sandbox):
    src = cbl.project("tmo", """version: 0.2
phases:
  build:
    commands:
      - (while true; do touch "$CODEBUILD_SRC_DIR/bg-alive"; sleep 0.1; done) &
      - setsid sh -c 'while true; do sleep 1; done' &
      - sleep 60
  post_build:
    commands:
      - echo "CHECK post must not run"
""")
    marker = src / "bg-alive"
    t0 = time.time()
    p = cbl("run", "--sandbox", sandbox, "--source-mode", "mount", "--timeout", "2s", src, check=4)
    assert time.time() - t0 < 15
    assert "Phase complete: BUILD State: TIMED_OUT" in p.output
    assert "CHECK post must not run" not in p.output
    r = last_record(cbl, p)
    assert r["buildStatus"] == "TIMED_OUT"
    assert phases_of(r)["BUILD"]["phaseStatus"] == "TIMED_OUT"
    marker.unlink()
    time.sleep(0.5)
    assert not marker.exists(), "a background job survived the build"


@pytest.mark.parametrize("sandbox", ["namespaces", "none"])
def test_ctrl_c_stops(cbl, tmp_path, sandbox):
    src = cbl.project("stop", """version: 0.2
phases:
  build:
    commands:
      - (while true; do touch "$CODEBUILD_SRC_DIR/alive"; sleep 0.1; done) &
      - echo CHECK started; sleep 60
""")
    marker = src / "alive"
    proc = subprocess.Popen([str(BIN), "run", "--sandbox", sandbox, "--source-mode", "mount", str(src)],
                            env=cbl.env(),
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 20
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    t0 = time.time()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    assert time.time() - t0 < 2.0
    assert proc.returncode == 5, out
    assert "Phase complete: BUILD State: STOPPED" in out
    marker.unlink()
    time.sleep(0.5)
    assert not marker.exists(), "a process of the build survived the stop"


def test_json_events(cbl):
    src = cbl.project("json", """version: 0.2
phases:
  build:
    commands:
      - echo hello
""")
    p = cbl("run", "--json", src, check=0)
    events = [json.loads(l) for l in p.stdout.splitlines()]
    kinds = [e.get("event") for e in events[:-1]]
    assert "phase-start" in kinds and "command-start" in kinds and "command-exit" in kinds
    assert {"event": "log", "line": "hello"}.items() <= next(
        e for e in events if e.get("line") == "hello").items()
    assert events[-1]["build"]["buildStatus"] == "SUCCEEDED"


def test_background_output_and_stdin(cbl):
    src = cbl.project("bg", """version: 0.2
phases:
  build:
    commands:
      - (sleep 0.2; echo CHECK from background) &
      - sleep 0.6
      - cat; echo "CHECK stdin is empty"
""")
    p = cbl("run", src, check=0, timeout=30)
    assert "CHECK from background" in p.output
    assert "CHECK stdin is empty" in p.output


def test_help_everywhere(cbl):
    for sub in ("run", "validate", "batch-get-builds"):
        p = cbl(sub, "--help", check=0)
        assert "usage: codebuild-local " + sub in p.stdout
    p = cbl("--help", check=0)
    assert "run" in p.stdout and "validate" in p.stdout
    p = cbl("no-such-command", check=2)
    assert "unknown command" in p.stderr
    p = cbl("run", "--no-such-flag", check=2)


def test_did_you_mean(cbl):
    # one line, the nearest name and where the help is: never the usage
    cases = [
        (("runn",), "unknown command 'runn'", "did you mean 'run'? (see 'codebuild-local --help')"),
        (("version",), "unknown command 'version'", "did you mean '--version'?"),
        (("valdiate",), "unknown command 'valdiate'", "did you mean 'validate'?"),
        (("run", "--netwrk", "none"), "run: unknown option '--netwrk'",
         "did you mean '--network'? (see 'codebuild-local run --help')"),
        (("run", "--buildpsec", "x.yml"), "run: unknown option '--buildpsec'", "did you mean '--buildspec'?"),
        (("validate", "--stirct"), "validate: unknown option '--stirct'",
         "did you mean '--strict'? (see 'codebuild-local validate --help')"),
        (("images", "pul", "x"), "unknown images command 'pul'", "did you mean 'pull'?"),
        (("cache", "lss"), "unknown cache subcommand 'lss'", "did you mean 'ls'?"),
        (("list-projects", "--sort-byy", "NAME"), "unknown option '--sort-byy'", "did you mean '--sort-by'?"),
    ]
    for args, first, second in cases:
        p = cbl(*args, check=2)
        lines = p.stderr.splitlines()
        assert lines == [f"codebuild-local: error: {first}", lines[1]] and lines[1].startswith(second), \
            (args, p.stderr)
        assert "usage:" not in p.output
    p = cbl("frobnicate", check=2)
    assert p.stderr == "codebuild-local: error: unknown command 'frobnicate' (see 'codebuild-local --help')\n"
    p = cbl("run", "--json=yes", check=2)
    assert p.stderr == ("codebuild-local: error: run: option '--json' takes no value "
                        "(see 'codebuild-local run --help')\n")
    p = cbl("run", "-i", check=2)
    assert p.stderr == "codebuild-local: error: run: option '-i' needs a value (see 'codebuild-local run --help')\n"


def host_version(cmd, *args):
    """The host runtime's whole version as it prints it, or None."""
    try:
        out = subprocess.run([cmd, *args], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    m = re.search(r"(\d+(?:\.\d+)*)", out.stdout + out.stderr)
    return m.group(1) if m else None


HOST_RT = "version: 0.2\nphases:\n  install:\n    runtime-versions:\n{rt}  build:\n    commands:\n      - echo built\n"


def test_host_runtime_mismatch_names_the_images_and_the_flag(cbl):
    node = host_version("node", "--version")
    if not node:
        pytest.skip("no node on this host")
    want = "12" if not node.startswith("12.") else "14"
    src = cbl.project("hostrt", HOST_RT.format(rt=f"      nodejs: {want}\n"))
    p = cbl("run", src, check=2)
    m = re.search(r"YAML_FILE_ERROR Message: Unknown runtime version named '(\d+)' of nodejs\. This build image "
                  r"has the following versions: (\d+)\. (.*)$", p.output, re.M)
    assert m and m.group(1) == want and m.group(2) == node.split(".")[0], p.output
    hint = m.group(3)
    if os.uname().machine == "x86_64":
        assert hint.startswith(f"nodejs {want} is in aws/codebuild/standard:5.0 (-i aws/codebuild/standard:5.0)"), hint
    assert hint.endswith(f"; --host-runtimes goes on with the host's nodejs {node}"), hint
    assert "echo built" not in p.output
    # --host-runtimes: the mismatch is logged and the build goes on with the host's
    p = cbl("run", "--host-runtimes", src, check=0)
    assert f"[codebuild-local] WARNING: nodejs {want} requested, host has {node} (--host-runtimes)" in p.output
    assert "Running command echo built" in p.output


def test_host_runtimes_log_the_version_they_give(cbl):
    py = host_version("python3", "--version")
    node = host_version("node", "--version")
    rts = f"      python: latest\n      nodejs: {node.split('.')[0]}.x\n" if node else "      python: latest\n"
    rts += "      cobolscript: 9\n"
    src = cbl.project("hostlog", HOST_RT.format(rt=rts))
    p = cbl("run", src, check=2)
    assert ("Unknown runtime named 'cobolscript'. This build image has the following runtimes: " in p.output)
    assert "No curated image has cobolscript 9; --host-runtimes goes on without cobolscript" in p.output
    p = cbl("run", "--host-runtimes", src, check=0)
    assert f"[codebuild-local] python latest: the host's python {py}" in p.output, p.output
    if node:
        assert f"[codebuild-local] nodejs {node.split('.')[0]}.x: the host's nodejs {node}" in p.output
    assert "[codebuild-local] WARNING: cobolscript 9 requested, host has none (--host-runtimes)" in p.output


def test_host_java_from_another_distribution(cbl):
    out = subprocess.run(["sh", "-c", "java -version 2>&1"], capture_output=True, text=True).stdout
    m = re.search(r'version "(?:1\.)?(\d+)[^"]*"', out)
    if not m or "corretto" in out.lower():
        pytest.skip("needs a java that is not Corretto")
    major = m.group(1)
    src = cbl.project("hostjava", HOST_RT.format(rt=f"      java: corretto{major}\n"))
    p = cbl("run", src, check=0)
    assert re.search(rf"\[codebuild-local\] java corretto{major}: the host's java {major}[.\d_]*, not corretto "
                     r"\(another distribution of the same version\)", p.output), p.output


def test_compute_type_says_how_its_limits_are_enforced(cbl):
    if os.geteuid() != 0:
        pytest.skip("the limits are enforced by the sandbox as root")
    src = cbl.project("limits", "version: 0.2\nphases:\n  build:\n    commands:\n      - nproc\n")
    p = cbl("run", "--compute-type", "BUILD_GENERAL1_MEDIUM", src, check=0)
    assert re.search(r"\[codebuild-local\] Compute type BUILD_GENERAL1_MEDIUM: "
                     r"memory 7 GB via (cgroup v2 memory\.max|cgroup v1 memory\.limit_in_bytes|RLIMIT_AS), "
                     r"4 vCPUs via CPU affinity( \(this machine has \d+\))?, "
                     r"processes 32768 via (cgroup v2 pids\.max|cgroup v1 pids\.max|RLIMIT_NPROC)$",
                     p.output, re.M), p.output
    p = cbl("run", src, check=0)
    assert "Compute type BUILD_GENERAL1_SMALL (the default): its 3 GB memory limit is not enforced" in p.output
