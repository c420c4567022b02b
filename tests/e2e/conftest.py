"""Shared fixtures for end-to-end tests: they drive the real binary."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CBL_BIN", ROOT / "build" / "codebuild-local"))
SHARED = Path(os.environ.get("CBL_SHARED", ROOT.parent / "shared"))
# ../shared beside the project (the conformance suites, the operations guide,
# the reference models): a clone of the project alone has none, and the tests
# that read it skip; a file missing from a present one is a failure.
NO_SHARED = f"no ../shared here ({SHARED}; set CBL_SHARED)"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=NO_SHARED)


@pytest.fixture
def home(tmp_path):
    """A private state directory for each test."""
    h = tmp_path / "state"
    h.mkdir()
    return h


class Runner:
    def __init__(self, home, tmp_path):
        self.home = home
        self.tmp_path = tmp_path

    def env(self, extra=None):
        env = dict(os.environ)
        env["CODEBUILD_LOCAL_HOME"] = str(self.home)
        env.pop("NO_COLOR", None)
        # the API faces read the AWS CLI's config (cli_timestamp_format):
        # none of the user's leaks into a test
        env["AWS_CONFIG_FILE"] = "/dev/null"
        env.pop("AWS_PROFILE", None)
        if extra:
            env.update(extra)
        return env

    def __call__(self, *args, cwd=None, timeout=120, env=None, check=None):
        p = subprocess.run(
            [str(BIN), *[str(a) for a in args]],
            cwd=str(cwd) if cwd else None,
            env=self.env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        p.output = p.stdout + p.stderr
        if check is not None:
            assert p.returncode == check, f"exit {p.returncode}, want {check}\n{p.output}"
        return p

    def project(self, name, buildspec, files=None):
        """Creates a source directory with a buildspec (and other files)."""
        d = self.tmp_path / name
        d.mkdir(parents=True, exist_ok=True)
        (d / "buildspec.yml").write_text(buildspec)
        for rel, content in (files or {}).items():
            f = d / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(content)
        return d


@pytest.fixture
def cbl(home, tmp_path):
    assert BIN.exists(), f"{BIN} is not built"
    return Runner(home, tmp_path)


def copy_case(src: Path, dst: Path):
    shutil.copytree(src, dst)
    return dst
