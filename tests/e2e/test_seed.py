"""The three buildspecs of the operations guide (../shared/seed/), read from the
guide itself and run on the matching example projects."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, SHARED, needs_shared

pytestmark = needs_shared

SEED_FILES = sorted((SHARED / "seed").glob("*")) if (SHARED / "seed").exists() else []


def seed_buildspecs():
    text = "".join(p.read_text() for p in SEED_FILES)
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    return [b for b in blocks if "phases:" in b]


def example(tmp_path, name, buildspec):
    dst = tmp_path / name
    shutil.copytree(ROOT / "examples" / name, dst)
    (dst / "buildspec.yml").write_text(buildspec)
    return dst


def by_marker(marker):
    for b in seed_buildspecs():
        if marker in b:
            return b
    pytest.fail(f"no seed buildspec containing {marker!r}")


def test_seed_has_three_buildspecs():
    assert len(seed_buildspecs()) == 3


@pytest.fixture(scope="module")
def venv():
    """python / pip / pytest for the Python example: a venv over Debian's python3,
    which the test mounts into the build (--mount)."""
    import tempfile
    (ROOT / "build").mkdir(exist_ok=True)
    base = tempfile.mkdtemp(prefix="e2e-venv-", dir=ROOT / "build")
    d = os.path.join(base, "v")
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", d], check=True)
    yield d
    shutil.rmtree(base, ignore_errors=True)


def zip_listing(path):
    out = subprocess.run(["unzip", "-Z1", str(path)], capture_output=True, text=True, check=True)
    return sorted(out.stdout.split())


def test_seed_python(cbl, tmp_path, venv):
    src = example(tmp_path, "python", by_marker("pytest tests/"))
    path = f"{venv}/bin:/usr/bin:/bin"
    # the venv is shown to the build where it is (the checkout may lie
    # under /tmp or /var/tmp, which are the build's own)
    p = cbl("run", "-a", tmp_path / "out", "-e", "PIP_NO_INDEX=1", "-e",
            "PIP_DISABLE_PIP_VERSION_CHECK=1", "--mount", f"{venv}:{venv}", cwd=src, env={"PATH": path},
            timeout=300)
    assert p.returncode == 0, p.output
    assert "Selecting 'python' runtime version '3.11' based on manual selections..." in p.output
    assert "1 passed" in p.output
    assert "Phase complete: BUILD State: SUCCEEDED" in p.output
    assert zip_listing(tmp_path / "out" / "artifacts.zip") == ["lib/app/__init__.py"]
    # the guide's cache of pip's downloads: looked up, then saved for the next build
    assert "Cache restore /root/.cache/pip/**/*: miss" in p.output
    assert "Cache save /root/.cache/pip/**/*: " in p.output


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed")
def test_seed_node(cbl, tmp_path):
    src = example(tmp_path, "node", by_marker("npm run test:integration"))
    p = cbl("run", "-a", tmp_path / "out", "-e", "npm_config_audit=false", "-e", "npm_config_fund=false",
            "-e", "npm_config_offline=true", "-e", "npm_config_update_notifier=false", cwd=src,
            timeout=300)
    assert p.returncode == 0, p.output
    for phase in ("INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD"):
        assert f"Phase complete: {phase} State: SUCCEEDED" in p.output
    assert "integration tests passed" in p.output
    assert zip_listing(tmp_path / "out" / "artifacts.zip") == ["index.html", "index.js"]
    assert "Report node-test_report SUCCEEDED: 1 test: 1 succeeded" in p.output


def test_seed_docker_fails_cleanly(cbl, tmp_path):
    src = example(tmp_path, "docker", by_marker("docker build"))
    p = cbl("run", "-e", "AWS_ACCOUNT_ID=123456789012", "-e", "ECR_REPOSITORY=app",
            "-e", "AWS_ACCESS_KEY_ID=", "-e", "AWS_SECRET_ACCESS_KEY=",
            "-e", "AWS_EC2_METADATA_DISABLED=true", cwd=src, timeout=300)
    assert p.returncode == 1, p.output
    assert re.search(r"Command did not exit successfully aws ecr get-login-password .* exit status \d+",
                     p.output), p.output
    assert "Phase complete: PRE_BUILD State: FAILED" in p.output
    assert "Phase context status code: COMMAND_EXECUTION_ERROR" in p.output
    # PRE_BUILD failure goes straight to FINALIZING, as on the service
    assert "Entering phase BUILD" not in p.output
    assert "Building Docker image" not in p.output
    assert "UPLOAD_ARTIFACTS" not in p.output
