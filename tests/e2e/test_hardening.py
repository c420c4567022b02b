"""Regression tests from the review of the runner and the sandbox: what a
hostile or careless build must not be able to do to the runner or the host."""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import BIN


def test_planted_symlinks_in_scratch_are_not_followed(cbl, tmp_path):
    secret = tmp_path / "host-secret"
    secret.write_text("HOST-ONLY-SECRET-CONTENT\n")
    src = cbl.project("symlink", f"""version: 0.2
phases:
  build:
    commands:
      - ln -sf {secret} /codebuild/output/tmp/dir.txt; exit 0
      - ln -sf {secret} /codebuild/output/tmp/values.out; exit 0
      - sed -n 3p /codebuild/output/tmp/script.sh
""")
    p = cbl("run", src, timeout=60)
    assert "HOST-ONLY-SECRET-CONTENT" not in p.output, p.output


def test_flooding_background_job_cannot_hold_the_build(cbl):
    src = cbl.project("flood", """version: 0.2
phases:
  build:
    commands:
      - (while :; do echo spam; done) &
      - sleep 1
""")
    t0 = time.time()
    p = cbl("run", "--timeout", "5s", src, timeout=60)
    assert time.time() - t0 < 30, "the runner hung behind a flooding background job"
    assert p.returncode in (0, 4), p.output[-2000:]


def test_expansion_obeys_the_timeout(cbl):
    src = cbl.project("slowname", """version: 0.2
phases:
  build:
    commands:
      - echo hi
artifacts:
  files:
    - buildspec.yml
  name: x$(sleep 60)
""")
    t0 = time.time()
    p = cbl("run", "--timeout", "3s", src, timeout=60)
    assert time.time() - t0 < 20
    assert p.returncode == 4, p.output
    assert "Phase complete: UPLOAD_ARTIFACTS State: TIMED_OUT" in p.output


@pytest.mark.parametrize("sandbox", ["namespaces", "none"])
def test_own_session_and_no_leaked_fds(cbl, sandbox):
    src = cbl.project("fds", """version: 0.2
phases:
  build:
    commands:
      - echo "CHECK fds=$(ls /proc/self/fd | sort -n | tr '\\n' ',')"
      - test "$(ps -o sid= -p $$ | tr -d ' ')" = "$$" && echo CHECK own session
      - (exec 3</dev/tty) 2>/dev/null || echo CHECK no controlling tty
""")
    r, w = os.pipe()
    try:
        p = subprocess.run([str(BIN), "run", "--sandbox", sandbox, str(src)], env=cbl.env(),
                           capture_output=True, text=True, timeout=60, pass_fds=(w,))
    finally:
        os.close(r)
        os.close(w)
    out = p.stdout + p.stderr
    fds = re.search(r"^CHECK fds=(\S*)", out, re.M).group(1).strip(",").split(",")
    assert str(w) not in fds, out
    assert re.search(r"^CHECK own session", out, re.M), out
    assert re.search(r"^CHECK no controlling tty", out, re.M), out


def test_multiline_secret_and_phase_context_masked(cbl, tmp_path):
    secrets = tmp_path / "s.json"
    secrets.write_text(json.dumps({"parameter-store": {
        "/pw": "hunter2xyz", "/key": "-----BEGIN KEY-----\nTOPSECRETLINE1\nTOPSECRETLINE2\n-----END KEY-----"}}))
    src = cbl.project("mask", """version: 0.2
env:
  parameter-store:
    PW: /pw
    KEY: /key
phases:
  build:
    commands:
      - printf '%s\\n' "$KEY"
      - test "$PW" = hunter2xyz && false
""")
    p = cbl("run", "--secrets-file", secrets, "--json", src)
    assert p.returncode == 1
    for s in ("hunter2xyz", "TOPSECRETLINE1", "TOPSECRETLINE2"):
        assert s not in p.output, s
    rec = json.loads(p.stdout.splitlines()[-1])["build"]
    assert "hunter2xyz" not in json.dumps(rec)


def test_exit_status_above_128_is_an_exit_status(cbl):
    src = cbl.project("e143", "version: 0.2\nphases:\n  build:\n    commands:\n      - exit 143\n")
    p = cbl("run", src, check=1)
    assert "Reason: exit status 143" in p.output
    src = cbl.project("sig", "version: 0.2\nphases:\n  build:\n    commands:\n      - kill -TERM $$\n")
    p = cbl("run", src, check=1)
    assert "Reason: signal: terminated" in p.output


def test_report_group_name_is_never_a_path(cbl, tmp_path):
    target = tmp_path / "pwned"
    src = cbl.project("rg", f"""version: 0.2
phases:
  build:
    commands:
      - echo '<testsuite><testcase name="a"/></testsuite>' > r.xml
reports:
  "x/../../../../../../../../../..{target}":
    files:
      - r.xml
""")
    # refused with the buildspec (exit 2), as `validate` refuses it
    p = cbl("run", src, check=2)
    assert not target.exists()
    assert "is not a valid report group name" in p.output


def test_base_directory_outside_the_source_is_refused(cbl, tmp_path):
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "secret.txt").write_text("host file\n")
    src = cbl.project("outside", f"""version: 0.2
phases:
  build:
    commands:
      - echo hi
artifacts:
  files:
    - '**/*'
  base-directory: $CODEBUILD_SRC_DIR/../../../../../../../../..{host}
""")
    p = cbl("run", "-a", tmp_path / "o", src, check=1)
    assert "is outside CODEBUILD_SRC_DIR" in p.output
    assert not (tmp_path / "o" / "artifacts.zip").exists()


def test_commas_and_colons_in_paths(cbl, tmp_path):
    src = tmp_path / "a,b:c"
    src.mkdir()
    (src / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    commands:\n      - echo CHECK ok > out.txt; cat out.txt\n")
    p = cbl("run", src, env={"CODEBUILD_LOCAL_HOME": str(tmp_path / "st,ate:x")}, check=0)
    assert re.search(r"^CHECK ok", p.output, re.M)
    assert not (src / "out.txt").exists()
