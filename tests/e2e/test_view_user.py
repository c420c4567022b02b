"""Issue 15, item 5: `run-as: codebuild-user` (the curated images' build user) works
on the host image: the build's view has the user (uid and gid 1000, as `useradd
codebuild-user` gives on the images' bases) and an empty home, the host's files do not
change."""
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import BIN

SPEC = """version: 0.2
phases:
  install:
    commands:
      - echo "CHECK id=$(id codebuild-user)"
      - echo "CHECK home=$(stat -c '%U:%G %a' /home/codebuild-user)"
      - echo "CHECK empty=$(ls -A /home/codebuild-user | wc -l)"
  build:
    run-as: codebuild-user
    commands:
      - echo "CHECK user=$(id -un) uid=$(id -u) gid=$(id -g)"
      - touch /home/codebuild-user/mine && echo CHECK home-writable
      - cd /tmp && pwd > /dev/null
      - echo "CHECK carried=$(pwd)"
  post_build:
    commands:
      - echo "CHECK after=$(id -un)"
"""


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def host_has(db, name):
    with open(db) as f:
        return any(line.split(":")[0] == name for line in f)


@pytest.mark.skipif(os.geteuid() != 0, reason="run-as is applied as root only")
def test_run_as_codebuild_user_on_the_host_image(cbl):
    if host_has("/etc/passwd", "codebuild-user"):
        pytest.skip("this host has a codebuild-user of its own (the view keeps it)")
    before = {f: digest(f) for f in ("/etc/passwd", "/etc/group")}
    home_before = os.path.exists("/home/codebuild-user")
    src = cbl.project("runas", SPEC)
    p = cbl("run", src, check=0)
    out = p.output
    assert "CHECK id=uid=1000(codebuild-user) gid=1000(codebuild-user) groups=1000(codebuild-user)" in out, out
    assert "CHECK home=codebuild-user:codebuild-user 750" in out, out
    assert "CHECK empty=0" in out, out
    # the phase runs as the user (its name, even where the host has another user 1000)
    assert "CHECK user=codebuild-user uid=1000 gid=1000" in out, out
    assert "CHECK home-writable" in out, out
    # the shell's state (its directory) carries across the user's commands
    assert "CHECK carried=/tmp" in out, out
    assert "run-as" not in out.split("Entering phase BUILD")[1].split("CHECK user")[0], out
    assert "CHECK after=root" in out, out
    # the host: its user and group databases unchanged, no home made
    assert {f: digest(f) for f in before} == before
    assert os.path.exists("/home/codebuild-user") == home_before


def test_validate_counts_the_view_user(cbl):
    src = cbl.project("runas-v", SPEC)
    p = cbl("validate", src, check=0)
    assert "warning:" not in p.output, p.output


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root to drop to an unprivileged user")
def test_view_user_unprivileged():
    """As a normal user: the view has the user too (generated files bound over
    /etc/passwd and /etc/group); run-as is not applied there (only root is mapped)."""
    if host_has("/etc/passwd", "codebuild-user"):
        pytest.skip("this host has a codebuild-user of its own")
    base = tempfile.mkdtemp(prefix="cbl-viewuser-")
    try:
        os.chmod(base, 0o777)
        src = os.path.join(base, "src")
        os.mkdir(src)
        with open(os.path.join(src, "buildspec.yml"), "w") as f:
            f.write(SPEC)
        subprocess.run(["chown", "-R", "65534:65534", base], check=True)
        env = dict(os.environ, HOME=base, CODEBUILD_LOCAL_HOME=os.path.join(base, "state"))
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(BIN),
                            "run", "--network", "none", src], env=env, capture_output=True, text=True,
                           timeout=120)
        out = p.stdout + p.stderr
        assert p.returncode == 0, out
        assert "CHECK id=uid=1000(codebuild-user) gid=1000(codebuild-user)" in out, out
        assert "CHECK empty=0" in out, out
        assert re.search(r"run-as 'codebuild-user' is not applied: the sandbox maps only the invoking user", out), out
    finally:
        shutil.rmtree(base, ignore_errors=True)
