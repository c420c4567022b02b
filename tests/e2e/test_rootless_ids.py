"""A normal user's builds with the full id range (issue 14): the sandbox maps
the user's subordinate ids (newuidmap/newgidmap), so run-as switches to a
real uid, files keep distinct owners, apt's _apt sandbox works in a Debian
image whose root is a writable overlay (and whose changes vanish after the
build); the same open files limit, CODEBUILD_INITIATOR rule and HOME as
root's builds; a user without subordinate ids gets the single mapping and a
log line saying what it loses; a command failing on the read-only host root
gets one hint.

The users are created here: `useradd -m cbl-rootless-ids` (useradd gives it
65,536 subordinate ids) and `useradd -m -K SUB_UID_COUNT=0 -K
SUB_GID_COUNT=0 cbl-rootless-noids` (none); the binary runs through
`setpriv` (or `su`, where the test is about what a login session gives).
The Debian test image is built offline from Debian's packages by
debootstrap (minbase bookworm, from the mirror this machine's apt sources
name, read at test time), cached as one layer in tests/e2e/.debian-cache/
(git-ignored), and imported as an OCI layout."""
import hashlib
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import BIN, FUSE_OVERLAYFS, ROOT, fuse_usable

IDS_USER = "cbl-rootless-ids"
NOIDS_USER = "cbl-rootless-noids"
IMAGE = "cbl-test/debian:bookworm"
CACHE = ROOT / "tests" / "e2e" / ".debian-cache"
LAYER = CACHE / "bookworm-minbase.tar"
ONE_MAP = "only one id mapped"
HINT = "read-only for a normal user's build"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates users and runs the binary as them: needs root")


def subids(name, path):
    with open(path) as f:
        for line in f:
            parts = line.strip().split(":")
            if len(parts) == 3 and parts[0] == name:
                return int(parts[1]), int(parts[2])
    return None


def make_user(name, *extra):
    if not shutil.which("useradd") or not shutil.which("setpriv"):
        pytest.skip("needs useradd and setpriv to drop to a normal user")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "-m", *extra, name], check=True, capture_output=True)
        return pwd.getpwnam(name)


@pytest.fixture(scope="module")
def ids_user():
    u = make_user(IDS_USER)
    if not subids(IDS_USER, "/etc/subuid") or not subids(IDS_USER, "/etc/subgid"):
        pytest.fail(f"useradd gave {IDS_USER} no subordinate ids (/etc/subuid, /etc/subgid)")
    for helper in ("newuidmap", "newgidmap"):
        if not os.path.exists(f"/usr/bin/{helper}"):
            pytest.skip(f"{helper} is not installed (Debian's uidmap: scripts/install-deps.sh)")
    return u


@pytest.fixture(scope="module")
def noids_user():
    u = make_user(NOIDS_USER, "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0")
    assert not subids(NOIDS_USER, "/etc/subuid"), f"{NOIDS_USER} has subordinate uids"
    return u


class As:
    """Runs codebuild-local as a user (None: root), with a state directory
    of its own in a base directory it owns."""

    def __init__(self, user, base):
        self.user = user
        self.base = Path(tempfile.mkdtemp(prefix="cbl-rl-", dir=base))
        os.chmod(self.base, 0o755)
        self.state = self.base / "state"
        self.state.mkdir()
        self.n = 0
        self.prefix = []  # e.g. fuse_node's: the binary then sees a /dev/fuse of the test's
        if user:
            for p in (self.base, self.state):
                os.chown(p, user.pw_uid, user.pw_gid)

    def env(self, extra=None):
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "CODEBUILD_LOCAL_HOME": str(self.state), "AWS_CONFIG_FILE": "/dev/null", "LANG": "C.UTF-8"}
        if self.user:
            env.update(HOME=self.user.pw_dir, USER=self.user.pw_name, LOGNAME=self.user.pw_name)
        else:
            env["HOME"] = "/root"  # no USER: the rule then reads the password database
        env.update(extra or {})
        return env

    def argv(self, *args, login=False):
        argv = [str(BIN), *[str(a) for a in args]]
        if not self.user:
            return argv
        if login:
            # a login session's limits (pam_limits: 1024 soft open files)
            envs = " ".join(f"{k}={shlex_quote(v)}" for k, v in self.env().items())
            return ["su", "-s", "/bin/sh", self.user.pw_name, "-c",
                    f"echo SESSION-NOFILE=$(ulimit -n); exec env -i {envs} " + " ".join(map(shlex_quote, argv))]
        return [*self.prefix, "setpriv", *self.setpriv(), *argv]

    def setpriv(self):
        return [f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--init-groups"]

    def cli(self, *args, timeout=300):
        p = subprocess.run(self.argv(*args), env=self.env(), stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout, cwd=self.base)
        p.output = p.stdout + p.stderr
        return p

    def run(self, buildspec, *args, login=False, timeout=300):
        self.n += 1
        src = self.base / f"src{self.n}"
        src.mkdir()
        (src / "buildspec.yml").write_text(buildspec)
        if self.user:
            for p in (src, src / "buildspec.yml"):
                os.chown(p, self.user.pw_uid, self.user.pw_gid)
        p = subprocess.run(self.argv("run", *args, src, login=login), env=self.env(), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout, cwd=self.base)
        p.output = p.stdout + p.stderr
        return p

    def cleanup(self):
        if self.user:
            # roots unpacked with subordinate ids are removed the way they were made
            self.cli("images", "prune")
            subprocess.run(["rm", "-rf", str(self.base)], check=False)
        else:
            shutil.rmtree(self.base, ignore_errors=True)


def shlex_quote(s):
    import shlex
    return shlex.quote(str(s))


def buildspec(*commands, run_as=None, post=()):
    q = json.dumps
    text = "version: 0.2\n"
    if run_as:
        text += f"run-as: {run_as}\n"
    text += "phases:\n  build:\n    commands:\n" + "".join(f"      - {q(c)}\n" for c in commands)
    if post:
        text += "  post_build:\n    commands:\n" + "".join(f"      - {q(c)}\n" for c in post)
    return text


def said(p, key):
    """The value printed as KEY=value on a line of its own."""
    m = re.search(rf"^{re.escape(key)}=(.*)$", p.output, re.M)
    assert m, f"no {key}= in:\n{p.output}"
    return m.group(1)


@pytest.fixture
def user(ids_user):
    b = As(ids_user, "/tmp")
    yield b
    b.cleanup()


@pytest.fixture
def noids(noids_user):
    b = As(noids_user, "/tmp")
    yield b
    b.cleanup()


@pytest.fixture
def root():
    b = As(None, "/tmp")
    yield b
    b.cleanup()


# ---------------------------------------------------------------- the Debian test image

def debian_mirror():
    """The Debian mirror this machine's apt uses (never written down here)."""
    for path in ("/etc/apt/sources.list.d/debian.sources",):
        if os.path.exists(path):
            for line in open(path):
                if line.startswith("URIs:"):
                    return line.split()[1]
    if os.path.exists("/etc/apt/sources.list"):
        for line in open("/etc/apt/sources.list"):
            parts = line.split()
            if len(parts) > 2 and parts[0] == "deb":
                return parts[1]
    return None


def build_layer():
    """debootstrap --variant=minbase bookworm, as one tar layer with numeric owners."""
    if LAYER.exists():
        return
    mirror = debian_mirror()
    if not mirror:
        pytest.skip("no Debian mirror in this machine's apt sources")
    tool = shutil.which("debootstrap")
    if not tool:
        pytest.skip("debootstrap is not installed (scripts/install-deps.sh)")
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=CACHE))
    try:
        rootfs = work / "rootfs"
        p = subprocess.run([tool, "--variant=minbase", "bookworm", str(rootfs), mirror],
                           capture_output=True, text=True, timeout=1200)
        if p.returncode != 0:
            pytest.skip(f"debootstrap failed (no network?): {p.stdout[-500:]}{p.stderr[-500:]}")
        for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        tmp = work / "layer.tar"
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tmp), "."], check=True)
        os.rename(tmp, LAYER)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def oci_layout(out):
    """An OCI image layout of the cached layer, readable by everyone."""
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data):
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return {"digest": "sha256:" + d, "size": len(data)}

    h = hashlib.sha256()
    with open(LAYER, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    shutil.copyfile(LAYER, blobs / h.hexdigest())
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + h.hexdigest(),
             "size": LAYER.stat().st_size}
    config = put(json.dumps({"architecture": "amd64", "os": "linux",
                             "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
                             "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
    config["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = put(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "config": config, "layers": [layer]}).encode())
    manifest.update(mediaType="application/vnd.oci.image.manifest.v1+json",
                    annotations={"org.opencontainers.image.ref.name": "bookworm"})
    (out / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [manifest]}))
    (out / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    for dirpath, dirs, files in os.walk(out):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o644)


@pytest.fixture(scope="module")
def debian(tmp_path_factory):
    if os.uname().machine != "x86_64":
        pytest.skip("the test image's config says amd64")
    build_layer()
    d = Path(tempfile.mkdtemp(prefix="cbl-rl-oci-", dir="/tmp"))
    os.chmod(d, 0o755)
    oci_layout(d / "oci")
    yield d / "oci"
    shutil.rmtree(d, ignore_errors=True)


def imported(b, layout):
    p = b.cli("images", "import", "--name", IMAGE, layout)
    assert p.returncode == 0, p.output
    return p


# ---------------------------------------------------------------- the tests

def test_the_whole_range_is_mapped(user, ids_user):
    start, count = subids(IDS_USER, "/etc/subuid")
    p = user.run(buildspec("cat /proc/self/uid_map", "echo SETGROUPS=$(cat /proc/self/setgroups)"))
    assert p.returncode == 0, p.output
    assert re.search(rf"^\s*0\s+{ids_user.pw_uid}\s+1$", p.output, re.M), p.output
    assert re.search(rf"^\s*1\s+{start}\s+{count}$", p.output, re.M), p.output
    assert said(p, "SETGROUPS") == "allow"
    assert ONE_MAP not in p.output


def test_run_as_switches_user(user):
    p = user.run(buildspec("echo UID=$(id -u)", "echo NAME=$(id -un)", "echo GROUPS=$(id -G)", run_as="nobody"))
    assert p.returncode == 0, p.output
    assert said(p, "UID") == "65534" and said(p, "NAME") == "nobody"
    assert "is not applied" not in p.output


def test_files_keep_distinct_owners(user):
    p = user.run(buildspec("touch /tmp/a /tmp/b && chown 1234:2345 /tmp/a && chown nobody:nogroup /tmp/b",
                           "echo OWNERS=$(stat -c %u:%g /tmp/a) $(stat -c %U:%G /tmp/b)",
                           # a file made by another user keeps that user
                           "setpriv --reuid=4321 --regid=4321 --clear-groups touch /tmp/c",
                           "echo MADE=$(stat -c %u:%g /tmp/c)"))
    assert p.returncode == 0, p.output
    assert said(p, "OWNERS") == "1234:2345 nobody:nogroup"
    assert said(p, "MADE") == "4321:4321"


def test_image_keeps_its_owners_and_apt_installs_then_vanishes(user, ids_user, debian):
    imported(user, debian)
    p = user.run(buildspec("echo SHADOW=$(stat -c %U:%G /etc/shadow)",
                           "echo APT=$(id -u _apt)",
                           "apt-get update -q && apt-get install -y -q hello",
                           "echo HELLO=$(hello)",
                           "echo LISTS=$(stat -c %U /var/lib/apt/lists/partial)"),
                 "-i", IMAGE)
    assert p.returncode == 0, p.output
    assert said(p, "SHADOW") == "root:shadow", "the image's owners, as the image gives them"
    assert said(p, "HELLO") == "Hello, world!"
    assert said(p, "LISTS") == "_apt", "apt's sandbox user owns its download directory"
    assert "unsandboxed" not in p.output and "setgroups" not in p.output, p.output
    # gone with the build: the next one starts from the image again
    p = user.run(buildspec("echo AFTER=$(command -v hello || echo absent)",
                           "echo LOCAL=$(ls /usr/local/bin | wc -l)"), "-i", IMAGE)
    assert p.returncode == 0, p.output
    assert said(p, "AFTER") == "absent"
    # and the store's root never had it
    roots = list((user.state / "images" / "roots").glob("*/usr/bin"))
    assert roots and not any((r / "hello").exists() for r in roots)
    # the root's files belong to the user's range on the host
    start, count = subids(IDS_USER, "/etc/subuid")
    shadow = next((user.state / "images" / "roots").glob("*/etc/shadow"))
    st = os.lstat(shadow)
    assert st.st_uid == ids_user.pw_uid and start <= st.st_gid < start + count, (st.st_uid, st.st_gid)
    # removed the way it was made: nothing left behind
    p = user.cli("images", "rm", IMAGE)
    assert p.returncode == 0, p.output
    assert not list((user.state / "images" / "roots").iterdir())


def test_image_root_is_writable_everywhere(user, debian):
    imported(user, debian)
    p = user.run(buildspec("touch /usr/local/bin/x /etc/x /opt/x /var/x /root/x && echo WROTE=yes",
                           "rm -rf /usr/share/doc && mkdir /usr/share/doc && echo DIRS=yes"), "-i", IMAGE)
    assert p.returncode == 0, p.output
    assert said(p, "WROTE") == "yes" and said(p, "DIRS") == "yes"
    assert HINT not in p.output


def test_open_files_limit_like_roots(user, root):
    spec = buildspec("echo NOFILE=$(ulimit -n)")
    r = root.run(spec)
    assert r.returncode == 0, r.output
    # through su: the login session's pam_limits soft limit (1024 on Debian)
    u = user.run(spec, login=True)
    assert u.returncode == 0, u.output
    session = int(said(u, "SESSION-NOFILE"))
    hard = int(subprocess.run(["su", "-s", "/bin/sh", IDS_USER, "-c", "ulimit -Hn"], capture_output=True,
                              text=True).stdout.strip() or 0)
    assert int(said(u, "NOFILE")) == min(hard, 1048576) >= session
    root_hard = int(subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout.strip())
    assert int(said(r, "NOFILE")) == min(root_hard, 1048576)
    if hard == root_hard:
        assert said(u, "NOFILE") == said(r, "NOFILE")


def test_initiator_and_home_rule(user, root):
    spec = buildspec("echo INITIATOR=$CODEBUILD_INITIATOR", "echo HOME=$HOME",
                     "touch $HOME/x && echo HOMEW=yes")
    u = user.run(spec)
    r = root.run(spec)
    assert u.returncode == 0 and r.returncode == 0, u.output + r.output
    assert said(u, "INITIATOR") == IDS_USER
    assert said(r, "INITIATOR") == "root", "no $USER: the real uid's name"
    assert said(u, "HOME") == said(r, "HOME") == "/root"
    assert said(u, "HOMEW") == "yes"
    rec = json.loads(Path(re.search(r"^Record: (.+)$", u.output, re.M).group(1)).read_text())
    assert rec["initiator"] == IDS_USER


def test_read_only_host_root_says_why_once(user, fuse_node):
    # a machine whose /dev/fuse the user may not open (Debian's 0600): the test's own node
    user.prefix = fuse_node(0o600)
    assert not fuse_usable(*user.setpriv(), prefix=user.prefix)
    p0 = user.run(buildspec("true"))
    assert "/dev/fuse cannot be opened: Permission denied" in p0.output, "why the host root is read-only"
    p = user.run(buildspec("echo ok", "touch /usr/local/bin/x", post=("mkdir /etc/y",)))
    assert p.returncode == 1, p.output
    lines = p.output.splitlines()
    hints = [i for i, line in enumerate(lines) if HINT in line]
    assert len(hints) == 1, p.output
    assert "Command did not exit successfully touch /usr/local/bin/x" in lines[hints[0] - 1]
    assert "-i IMAGE" in lines[hints[0]] and "run as root" in lines[hints[0]]
    # a failure that is not about the root gets none
    p = user.run(buildspec("echo 'Permission denied: /home/x' && false"))
    assert p.returncode == 1 and HINT not in p.output, p.output


def test_files_of_other_ids_do_not_outlive_the_build(user):
    """A build may leave files of the user's other ids (unreadable to the
    user outside) in its scratch and its source: removed all the same."""
    import time
    p = user.run(buildspec("mkdir -p /codebuild/output/tmp/d && touch /codebuild/output/tmp/d/f",
                           "chown -R nobody /codebuild/output/tmp/d && chmod 700 /codebuild/output/tmp/d",
                           "mkdir d2 && touch d2/f && chown -R 1234 d2 && chmod 700 d2"))
    assert p.returncode == 0, p.output
    assert not list((user.state / "builds").glob("*/*/tmp")), "the build's scratch is gone"
    trash = user.state / "trash"
    for _ in range(50):
        if not trash.exists() or not list(trash.iterdir()):
            break
        time.sleep(0.1)
    assert not trash.exists() or not list(trash.iterdir()), list(trash.iterdir())


def test_host_root_writable_through_fuse_overlayfs(user, fuse_node):
    # a machine that lends /dev/fuse to every user (0666): the test's own node, the
    # host's /dev/fuse untouched
    if not any(os.path.isfile(f) for f in FUSE_OVERLAYFS):
        pytest.skip("needs fuse-overlayfs (scripts/install-deps.sh)")
    user.prefix = fuse_node(0o666)
    assert fuse_usable(*user.setpriv(), prefix=user.prefix)
    p = user.run(buildspec("echo ROOTFS=$(grep -E '^[0-9]+ [0-9]+ [^ ]+ [^ ]+ / ' /proc/self/mountinfo | tail -1 "
                           "| sed 's/.* - //; s/ .*//')",
                           "touch /usr/local/bin/cbl-fuse-x /etc/cbl-fuse-x /opt/cbl-fuse-x && echo WROTE=yes",
                           "echo DAEMON=$(ps -e -o comm= | grep -c fuse-overlayfs)",
                           "echo SHADOW=$(wc -c < /etc/shadow)", "echo HOMES=$(ls /home | grep -vxc codebuild-user)"))
    assert p.returncode == 0, p.output
    assert said(p, "ROOTFS") == "fuse.fuse-overlayfs"
    assert said(p, "WROTE") == "yes" and HINT not in p.output
    assert said(p, "DAEMON") == "0", "the daemon is out of the build's sight"
    assert said(p, "SHADOW") == "0" and said(p, "HOMES") == "0", "the host's secrets stay hidden"
    assert "writable through fuse-overlayfs" in p.output
    for f in ("/usr/local/bin/cbl-fuse-x", "/etc/cbl-fuse-x", "/opt/cbl-fuse-x"):
        assert not os.path.exists(f), f"{f} reached the host"
    assert not subprocess.run(["pgrep", "-u", IDS_USER, "fuse-overlayfs"], capture_output=True).stdout, \
        "no daemon outlives the build"


def test_host_root_as_this_machines_dev_fuse_allows(user):
    """This machine's own /dev/fuse, as it is: the build follows what the
    kernel answers the user (the two cases above, each forced)."""
    usable = fuse_usable(*user.setpriv())
    p = user.run(buildspec("touch /usr/local/bin/cbl-fuse-machine && echo WROTE=yes"))
    assert not os.path.exists("/usr/local/bin/cbl-fuse-machine"), "a build's write reached the host"
    if usable:
        assert p.returncode == 0 and said(p, "WROTE") == "yes", p.output
        assert "writable through fuse-overlayfs" in p.output and HINT not in p.output, p.output
    else:
        assert p.returncode == 1, p.output
        assert "/dev/fuse cannot be opened" in p.output or "fuse-overlayfs is not installed" in p.output, p.output
        assert HINT in p.output, p.output


def test_user_without_subordinate_ids_gets_one_id_and_says_so(noids):
    p = noids.run(buildspec("echo MAPLINES=$(wc -l < /proc/self/uid_map)",
                            "echo SETGROUPS=$(cat /proc/self/setgroups)", "echo UID=$(id -u)", run_as="nobody"))
    assert p.returncode == 0, p.output
    assert said(p, "MAPLINES") == "1" and said(p, "SETGROUPS") == "deny"
    assert said(p, "UID") == "0", "run-as is not applied"
    warn = [line for line in p.output.splitlines() if ONE_MAP in line]
    assert len(warn) == 1, p.output
    assert f"{NOIDS_USER} has no subordinate ids" in warn[0]
    assert "run-as is not applied" in warn[0] and "_apt" in warn[0] and "uidmap" in warn[0]
    assert "run-as 'nobody' is not applied" in p.output
