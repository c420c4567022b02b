"""Shared fixtures for end-to-end tests: they drive the real binary."""
import os
import pwd
import shutil
import subprocess
import tempfile
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

    def argv(self, args):
        return [str(BIN), *[str(a) for a in args]]

    def own(self, path):
        """Makes path (a tree) the runner's: a no-op as root."""
        return path

    def __call__(self, *args, cwd=None, timeout=120, env=None, check=None):
        p = subprocess.run(
            self.argv(args),
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
        return self.own(d)


@pytest.fixture
def cbl(home, tmp_path):
    assert BIN.exists(), f"{BIN} is not built"
    return Runner(home, tmp_path)


# ---- rootless: the same runner as a normal user --------------------------------

ROOTLESS_USER = "cbl-rootless"


def rootless_user():
    """The normal user the rootless tests run the binary as (created with
    useradd -m when absent); skips where that cannot be done."""
    if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("useradd"):
        pytest.skip("rootless: needs root to create a user and setpriv to become it")
    try:
        return pwd.getpwnam(ROOTLESS_USER)
    except KeyError:
        subprocess.run(["useradd", "-m", ROOTLESS_USER], check=True, capture_output=True)
        return pwd.getpwnam(ROOTLESS_USER)


def chown_tree(path, uid, gid):
    os.chown(path, uid, gid, follow_symlinks=False)
    for d, dirs, files in os.walk(path):
        for n in dirs + files:
            os.chown(os.path.join(d, n), uid, gid, follow_symlinks=False)


class UserRunner(Runner):
    """Runs the binary as ROOTLESS_USER (setpriv), with a state directory and
    a work directory it owns under /var/tmp (pytest's tmp_path is root's
    0700 directory).  tmp_path is that work directory."""

    def __init__(self, pw):
        self.pw = pw
        base = Path(tempfile.mkdtemp(prefix="cbl-rootless-", dir="/var/tmp"))
        os.chmod(base, 0o755)
        super().__init__(base / "state", base / "work")
        self.base = base
        for d in (self.home, self.tmp_path):
            d.mkdir()
        chown_tree(base, pw.pw_uid, pw.pw_gid)

    def argv(self, args):
        return ["setpriv", "--reuid", str(self.pw.pw_uid), "--regid", str(self.pw.pw_gid), "--init-groups",
                *super().argv(args)]

    def env(self, extra=None):
        env = super().env(extra)
        env.update(HOME=self.pw.pw_dir, USER=self.pw.pw_name, LOGNAME=self.pw.pw_name)
        return env

    def own(self, path):
        chown_tree(path, self.pw.pw_uid, self.pw.pw_gid)
        return path

    def cleanup(self):
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(params=["root", "user"])
def cbl_as(request, home, tmp_path):
    """cbl, once as root and once as a normal user (rootless)."""
    assert BIN.exists(), f"{BIN} is not built"
    if request.param == "root":
        yield Runner(home, tmp_path)
        return
    r = UserRunner(rootless_user())
    try:
        yield r
    finally:
        r.cleanup()


def copy_case(src: Path, dst: Path):
    shutil.copytree(src, dst)
    return dst
