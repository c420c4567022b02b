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


# ---- /dev/fuse: whether a normal user's build overlays the host's / --------------

FUSE_OVERLAYFS = ("/usr/bin/fuse-overlayfs", "/bin/fuse-overlayfs", "/usr/local/bin/fuse-overlayfs")


def fuse_usable(*setpriv, prefix=()):
    """Whether a normal user's build gets the host's / writable through
    fuse-overlayfs, asked of the kernel the way sandbox/fuse.c asks: the
    program installed, and /dev/fuse opened read-write as that user (setpriv's
    arguments, as the test runs the binary: its mode, ACL and the user's
    groups all count).  A machine may lend /dev/fuse to everyone (0666): the
    tests expect what this says, not what a default Debian has."""
    if not any(os.path.isfile(p) and os.access(p, os.X_OK) for p in FUSE_OVERLAYFS):
        return False
    p = subprocess.run([*prefix, "setpriv", *setpriv, "/usr/bin/python3", "-c",
                        "import os; os.close(os.open('/dev/fuse', os.O_RDWR))"], capture_output=True)
    return p.returncode == 0


@pytest.fixture
def fuse_node():
    """fuse_node(mode) -> an argv prefix that runs its command in a private
    mount namespace whose /dev/fuse is a node of the same device with that
    mode (0o666: a machine that lends it to every user, 0o600: one that does
    not), so that both cases are tested on any machine without touching the
    host's /dev/fuse, which other tests and users share."""
    if not os.path.exists("/dev/fuse") or not shutil.which("unshare") or os.geteuid() != 0:
        pytest.skip("needs root, unshare and /dev/fuse to give a test its own /dev/fuse")
    rdev = os.stat("/dev/fuse").st_rdev
    dirs = []

    def make(mode):
        d = tempfile.mkdtemp(prefix="cbl-fuse-node-")
        dirs.append(d)
        script = ('mount -t tmpfs -o mode=0700 none "$0" && mknod -m %o "$0/fuse" c %d %d && '
                  'mount --bind "$0/fuse" /dev/fuse && exec "$@"') % (mode, os.major(rdev), os.minor(rdev))
        return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, d]
    yield make
    for d in dirs:
        os.rmdir(d)


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
