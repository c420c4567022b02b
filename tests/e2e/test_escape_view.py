"""Attack tests (issue 13): what a build can see of the host.

A build gets what a CodeBuild container gets: the host image's programs and
configuration, not the host's people, services or secrets, and nothing of
the runner's state.  Each attack runs as a build, as root and as a normal
user (cbl-escape-view, created here if absent, running the binary through
setpriv with a state directory it owns), prints a line proving it ran, and
the test then checks the host side: the secret is absent from the output
and from every file under the state directory, the host's files unchanged.

The state directories live under /var/lib (not under a private directory
such as /tmp or /home), so what hides them is the sandbox's mask of the
runner's own state, not the accident of their place.
"""
import hashlib
import io
import json
import os
import pwd
import re
import secrets
import shutil
import sqlite3
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import BIN, FUSE_OVERLAYFS

sys.path.insert(0, os.path.dirname(__file__))
import registry as R  # noqa: E402

USER = "cbl-escape-view"
SUBMOUNT = Path("/opt/cbl-test-submount")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("useradd"),
    reason="needs root (a normal user is created and used through setpriv)")


def _chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for d, dirs, files in os.walk(path):
        for n in dirs + files:
            os.chown(os.path.join(d, n), uid, gid, follow_symlinks=False)


@pytest.fixture(scope="module")
def host():
    """The host: a normal user with secrets in its home, secrets of root's,
    a file in /tmp, a bind mount at /opt, a place for the state outside
    every private directory.  Everything planted is removed afterwards."""
    rnd = secrets.token_hex(6)
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", USER], check=True, capture_output=True)
    pw = pwd.getpwnam(USER)
    ns = SimpleNamespace(uid=pw.pw_uid, gid=pw.pw_gid, user_home=Path(pw.pw_dir), rnd=rnd, undo=[])
    ns.base = Path("/var/lib") / ("cbl-escape-view-" + rnd)
    ns.base.mkdir(mode=0o755)
    os.chmod(ns.base, 0o755)
    ns.undo.append(lambda: shutil.rmtree(ns.base, ignore_errors=True))

    # root's secrets (only when the host has none: a real one is never read)
    ns.root_aws = Path("/root/.aws/credentials")
    ns.root_aws_secret = None
    if not ns.root_aws.exists():
        made_dir = not ns.root_aws.parent.exists()
        ns.root_aws.parent.mkdir(mode=0o700, exist_ok=True)
        ns.root_aws_secret = "cbl-root-aws-" + rnd
        ns.root_aws.write_text("[default]\naws_secret_access_key = %s\n" % ns.root_aws_secret)
        ns.undo.append(lambda: ns.root_aws.unlink())
        if made_dir:
            ns.undo.append(lambda: ns.root_aws.parent.rmdir())

    # the user's own
    ns.user_aws_secret = "cbl-user-aws-" + rnd
    ns.user_ssh_secret = "cbl-user-ssh-" + rnd
    aws = ns.user_home / ".aws"
    ssh = ns.user_home / ".ssh"
    for d in (aws, ssh):
        d.mkdir(mode=0o700, exist_ok=True)
        os.chown(d, ns.uid, ns.gid)
    ns.user_aws = aws / ("credentials")
    ns.user_ssh = ssh / ("id_ed25519")
    if ns.user_aws.exists() or ns.user_ssh.exists():
        pytest.skip("%s already has credentials: not overwritten" % USER)
    ns.user_aws.write_text("[default]\naws_secret_access_key = %s\n" % ns.user_aws_secret)
    ns.user_ssh.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n%s\n" % ns.user_ssh_secret)
    for f in (ns.user_aws, ns.user_ssh):
        os.chmod(f, 0o600)
        os.chown(f, ns.uid, ns.gid)
    ns.undo += [lambda: ns.user_aws.unlink(), lambda: ns.user_ssh.unlink()]

    # a file in the host's /tmp, readable by anyone on the host
    ns.tmp_secret = "cbl-tmp-" + rnd
    ns.tmp_file = Path("/tmp") / ("cbl-escape-view-" + rnd)
    ns.tmp_file.write_text(ns.tmp_secret + "\n")
    os.chmod(ns.tmp_file, 0o644)
    ns.undo.append(lambda: ns.tmp_file.unlink())

    # a submount: a bind mount at /opt, as a separate /opt or /srv would be
    src = ns.base / "submount-src"
    src.mkdir()
    (src / "marker").write_text("submount-" + rnd + "\n")
    SUBMOUNT.mkdir(exist_ok=True)
    subprocess.run(["mount", "--bind", str(src), str(SUBMOUNT)], check=True)
    ns.undo.append(lambda: SUBMOUNT.rmdir())
    ns.undo.append(lambda: subprocess.run(["umount", str(SUBMOUNT)], check=True))
    ns.submount_marker = "submount-" + rnd
    try:
        yield ns
    finally:
        for f in reversed(ns.undo):
            try:
                f()
            except OSError:
                pass


class Mode:
    """Runs the binary as root or as the test user, with its own state."""

    def __init__(self, host, name):
        self.host = host
        self.name = name
        self.user = name.startswith("user")
        self.prefix = []
        self.setpriv = ["--reuid", USER, "--regid", USER, "--init-groups"]
        self.state = host.base / (name + "-state")
        self.src = host.base / (name + "-src")
        for d in (self.state, self.src):
            d.mkdir(exist_ok=True)
            if self.user:
                os.chown(d, host.uid, host.gid)

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["CODEBUILD_LOCAL_HOME"] = str(self.state)
        env.pop("NO_COLOR", None)
        if self.user:
            env.update(HOME=str(self.host.user_home), USER=USER, LOGNAME=USER)
        return env

    def argv(self, args):
        cmd = [str(BIN), *[str(a) for a in args]]
        if self.user:
            cmd = self.prefix + ["setpriv", *self.setpriv] + cmd
        return cmd

    def __call__(self, *args, check=None, timeout=120):
        p = subprocess.run(self.argv(args), cwd=str(self.host.base), env=self.env(), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        p.output = p.stdout + p.stderr
        if check is not None:
            assert p.returncode == check, f"exit {p.returncode}, want {check}\n{p.output}"
        return p

    def owned(self, path):
        if self.user:
            _chown_tree(path, self.host.uid, self.host.gid)
        return path

    def project(self, name, commands, tail=""):
        """A source directory whose build runs commands (shell lines); tail:
        more of the buildspec (artifacts:, cache:)."""
        d = self.src / name
        d.mkdir(exist_ok=True)
        spec = "version: 0.2\nphases:\n  build:\n    commands:\n"
        for c in commands:
            spec += "      - |\n" + "".join("        %s\n" % line for line in c.splitlines())
        (d / "buildspec.yml").write_text(spec + tail)
        return self.owned(d)

    def attack(self, name, commands, *run_opts, check=0, tail=""):
        """Runs the attack's build (run_opts before the source); asserts it
        ran: its marker line, which only the command's output has."""
        src = self.project(name, ["printf 'ATTACK %s ran\\n' " + name] + commands, tail)
        p = self("run", *run_opts, src, check=check)
        assert re.search(r"^ATTACK %s ran$" % re.escape(name), p.output, re.M), p.output
        return p

    def assert_nowhere(self, p, *secrets_):
        """The host side: none of secrets in the output, nor in any file
        under the state directory (logs, records, the database)."""
        for s in secrets_:
            if s is None:
                continue
            assert s not in p.output, f"{s} leaked into the build's output"
            for d, _, files in os.walk(self.state):
                for n in files:
                    f = os.path.join(d, n)
                    if os.path.islink(f) or not os.path.isfile(f):
                        continue
                    with open(f, "rb") as fh:
                        assert s.encode() not in fh.read(), f"{s} leaked into {f}"


@pytest.fixture(params=["root", "user", "user-fuse"])
def mode(request, host):
    """root; the normal user as this machine's /dev/fuse has it (Debian's
    0600: a read-only host root); the user with a /dev/fuse of the test's own
    it may open (0666: the host's / overlaid by fuse-overlayfs), so that both
    of a normal user's roots meet every attack whatever the machine's mode."""
    m = Mode(host, request.param)
    if request.param == "user-fuse":
        if not any(os.path.isfile(f) for f in FUSE_OVERLAYFS):
            pytest.skip("needs fuse-overlayfs (scripts/install-deps.sh)")
        m.prefix = request.getfixturevalue("fuse_node")(0o666)
    return m


def lines(p, prefix):
    return re.findall(r"^%s (.*)$" % re.escape(prefix), p.output, re.M)


# ---- the host's secrets ---------------------------------------------------------


def test_shadow_and_host_keys_are_masked(mode):
    keys = [k for k in Path("/etc/ssh").glob("ssh_host_*_key")] if Path("/etc/ssh").is_dir() else []
    p = mode.attack("shadow", [
        'echo "SHADOW $(cat /etc/shadow 2>/dev/null | wc -c) $(cat /etc/gshadow 2>/dev/null | wc -c)"',
        'echo "KEYS $(cat /etc/ssh/ssh_host_*_key 2>/dev/null | wc -c)"',
        'echo "SUDOERS $(ls -A /etc/sudoers.d 2>/dev/null | wc -l)"',
    ])
    # the host has something to hide (its size, never its content, is read here)
    assert os.path.getsize("/etc/shadow") > 0
    assert lines(p, "SHADOW") == ["0 0"], p.output
    if keys and any(os.path.getsize(k) for k in keys):
        assert lines(p, "KEYS") == ["0"], p.output
    assert lines(p, "SUDOERS") == ["0"], p.output


def test_homes_and_credentials_are_absent(mode, host):
    p = mode.attack("homes", [
        "for f in /root/.aws/credentials %s %s; do\n"
        '  if [ -e "$f" ]; then echo "FOUND $f: $(cat "$f" 2>&1)"; else echo "ABSENT $f"; fi\n'
        "done" % (host.user_aws, host.user_ssh),
        # /home holds nothing but the curated images' build user's empty home
        'echo "HOME $HOME: $(ls -A /root | wc -l) in /root, $(ls -A /home | grep -vxc codebuild-user) in /home, '
        '$(ls -A /home/codebuild-user 2>/dev/null | wc -l) in /home/codebuild-user"',
    ])
    assert lines(p, "FOUND") == [], p.output
    assert len(lines(p, "ABSENT")) == 3, p.output
    assert lines(p, "HOME") == ["/root: 0 in /root, 0 in /home, 0 in /home/codebuild-user"], p.output
    mode.assert_nowhere(p, host.root_aws_secret, host.user_aws_secret, host.user_ssh_secret)
    # the planted files are still there, untouched
    assert host.user_aws.read_text().endswith(host.user_aws_secret + "\n")


def test_host_tmp_run_and_srv_are_private(mode, host):
    p = mode.attack("tmp", [
        'if [ -e %s ]; then echo "FOUND $(cat %s)"; else echo "ABSENT tmp"; fi' % (host.tmp_file, host.tmp_file),
        'echo "EMPTY $(ls -A /run /srv /mnt /media /var/tmp 2>/dev/null | grep -v ":$" | grep -c .)"',
        "echo inside > /tmp/cbl-escape-view-written",
    ])
    assert lines(p, "ABSENT") == ["tmp"] and not lines(p, "FOUND"), p.output
    assert lines(p, "EMPTY") == ["0"], p.output
    mode.assert_nowhere(p, host.tmp_secret)
    assert not os.path.exists("/tmp/cbl-escape-view-written")


# ---- the runner's state -------------------------------------------------------------


def test_state_db_and_other_builds_are_absent(mode):
    victim_secret = "cbl-victim-" + secrets.token_hex(6)
    victim = mode.project("victim", ["echo %s | tr a-z A-Z; echo %s" % (victim_secret, victim_secret)])
    v = mode("run", victim, check=0)
    log = re.search(r"^Log:\s+(\S+)$", v.output, re.M).group(1)
    assert victim_secret in Path(log).read_text()
    db = mode.state / "codebuild-local.db"
    assert db.exists()
    p = mode.attack("state", [
        "for f in %s %s %s; do\n"
        '  if [ -e "$f" ]; then echo "FOUND $f"; else echo "ABSENT $f"; fi\n'
        "done" % (log, db, mode.state / "images"),
        'echo "STATE $(ls -A %s 2>/dev/null | wc -l)"' % mode.state,
        "cat %s 2>/dev/null | grep -c %s || true" % (log, victim_secret[:8]),
    ])
    assert lines(p, "FOUND") == [], p.output
    assert len(lines(p, "ABSENT")) == 3 and lines(p, "STATE") == ["0"], p.output
    assert victim_secret not in p.output
    # the host side: the database still opens, the victim's log is intact
    con = sqlite3.connect(str(db))
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    con.close()
    assert victim_secret in Path(log).read_text()


def test_cache_dir_elsewhere_is_absent(mode):
    cache = mode.host.base / (mode.name + "-cache")
    cache.mkdir(exist_ok=True)
    (cache / "planted").write_text("cache-" + mode.host.rnd)
    mode.owned(cache / "planted")
    p = mode.attack("cache", [
        'if [ -e %s/planted ]; then echo "FOUND cache"; else echo "ABSENT cache"; fi' % cache,
    ], "--cache-dir", cache)
    assert lines(p, "ABSENT") == ["cache"] and not lines(p, "FOUND"), p.output


# ---- what the runner reads of the build's view ------------------------------------------
# (not root, the view is the sandbox's overlay read through a descriptor)


def test_cached_directory_turned_into_a_link_saves_nothing_of_the_host(mode, host):
    """The build makes node_modules, a cache path in its source, a link to a
    host directory the runner can read (the user's ~/.aws): the save must not
    walk it, or the next build would read the host's files from its cache."""
    tail = "cache:\n  paths:\n    - 'node_modules/**/*'\n"
    p1 = mode.attack("cachelink", ["rm -rf node_modules; ln -s %s node_modules" % host.user_aws.parent], tail=tail)
    p = mode.attack("cachelink", ['echo "CACHED $(cat node_modules/credentials 2>/dev/null | wc -c)"'], tail=tail)
    assert lines(p, "CACHED") == ["0"], p.output
    mode.assert_nowhere(p, host.user_aws_secret)
    assert host.user_aws.read_text().endswith(host.user_aws_secret + "\n")
    assert "Cache save node_modules/**/*: not saved: no files matched the cache paths" in p1.output, p1.output


def test_artifact_links_out_of_the_view_are_not_followed(mode, host):
    """Links in the build's output to a host file the runner can read, by
    an absolute path and by climbing out with '..': skipped, not packaged."""
    out = mode.src / "artlinks-out"
    out.mkdir(exist_ok=True)
    mode.owned(out)
    tail = "artifacts:\n  files:\n    - 'dist/**/*'\n"
    climb = "../" * 16 + str(host.user_aws).lstrip("/")
    p = mode.attack("artlinks", [
        "mkdir -p dist && echo ok > dist/ok.txt",
        "ln -s %s dist/abs && ln -s %s dist/absdir && ln -s %s dist/climb" % (
            host.user_aws, host.user_aws.parent, climb),
    ], "-a", out, tail=tail)
    for link in ("abs", "absdir", "climb"):
        assert re.search(r"Skipping symlink dist/%s: target (is outside the source directory|does not exist)"
                         % link, p.output), p.output
    with zipfile.ZipFile(out / "artifacts.zip") as z:
        assert z.namelist() == ["dist/ok.txt"]
    assert host.user_aws_secret.encode() not in (out / "artifacts.zip").read_bytes()
    mode.assert_nowhere(p, host.user_aws_secret)


# ---- what the build is shown ----------------------------------------------------------


def test_host_submount_is_shown(mode, host):
    """A bind mount of a directory of the root's filesystem (its source
    /var/lib/X/submount-src beside the state directory, which the view masks:
    the runner's lookup lists /var/lib/X): shown at its mount point, and its
    source too (through fuse-overlayfs both were one directory to the daemon,
    and one name was lost)."""
    p = mode.attack("submount", [
        'echo "SEEN $(cat %s/marker)"' % SUBMOUNT,
        'echo "LISTED $(ls %s | grep -c submount-src)"' % host.base,
        "(echo from-build > %s/new) 2>/dev/null; echo tried" % SUBMOUNT,
        'echo "SOURCE $(cat %s/submount-src/marker 2>/dev/null || echo hidden)"' % host.base,
        'echo "AGAIN $(cat %s/marker)"' % SUBMOUNT,
    ])
    assert lines(p, "SEEN") == [host.submount_marker], p.output
    assert lines(p, "AGAIN") == [host.submount_marker], p.output
    # the source directory is not private: shown as on the host
    assert lines(p, "LISTED") == ["1"], p.output
    assert lines(p, "SOURCE") == [host.submount_marker], p.output
    # as root an overlay (writes vanish), unprivileged read-only: never the host's
    assert not (host.base / "submount-src" / "new").exists()


def test_runner_binary_is_reachable(mode):
    p = mode.attack("hashfiles", [
        'echo "TOOL $(command -v codebuild-hash-files)"',
        'echo "HASH $(codebuild-hash-files buildspec.yml | wc -c)"',
    ])
    assert lines(p, "TOOL") == ["/codebuild/readonly/bin/codebuild-hash-files"], p.output
    assert lines(p, "HASH") == ["65"], p.output


def test_mount_read_write_and_read_only(mode):
    d = mode.host.base / (mode.name + "-shared")
    d.mkdir(exist_ok=True)
    (d / "in.txt").write_text("from-host\n")
    mode.owned(d)
    p = mode.attack("mount", [
        'echo "RW $(cat /data/in.txt)"; echo from-build > /data/out.txt',
        'echo "RO $(cat /ro/in.txt)"; (echo x > /ro/new.txt) 2>/dev/null && echo "RO wrote" || echo "RO refused"',
        'echo "FILE $(cat /etc/cbl-one-file)"',
    ], "--mount", "%s:/data" % d, "--mount", "%s:/ro:ro" % d, "--mount", "%s/in.txt:/etc/cbl-one-file:ro" % d)
    src = mode.src / "mount"
    assert lines(p, "RW") == ["from-host"], p.output
    assert lines(p, "RO") == ["from-host", "refused"], p.output
    assert lines(p, "FILE") == ["from-host"], p.output
    assert (d / "out.txt").read_text() == "from-build\n", "a read-write mount reaches the host"
    assert not (d / "new.txt").exists(), "a read-only mount does not"
    for bad, why in ((f"{d}:/proc/x", "/proc"), (f"{d}:/codebuild/x", "/codebuild"), (f"{d}:/a/../etc", ".."),
                     (f"{d}:rel", "absolute"), ("/no/such/cbl:/x", "/no/such/cbl"), (str(d), "SRC:DST"),
                     (f"{d}:/", "/")):
        p = mode("run", "--mount", bad, src, check=2)
        assert why in p.output, p.output
    p = mode("run", "--sandbox", "none", "--mount", f"{d}:/data", src, check=2)
    assert "--mount needs the sandbox" in p.output


# ---- images as root --------------------------------------------------------------------


def _layout(path, entries):
    """An OCI layout whose one layer holds entries (tarfile.TarInfo, data)."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.PAX_FORMAT) as t:
        for ti, data in entries:
            ti.mtime, ti.uid, ti.gid = 1700000000, 0, 0
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    raw = bio.getvalue()
    lay = R.Layout(str(path))
    ld, ln = lay.blob(raw)
    cfg = {"architecture": R.host_arch(), "os": "linux", "config": {"Env": ["PATH=/bin"]},
           "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}
    cd, cn = lay.blob(json.dumps(cfg).encode())
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ln}]}
    md, mn = lay.blob(json.dumps(man).encode())
    lay.tag({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn}, "v1")
    for d, dirs, files in os.walk(path):
        for n in dirs:
            os.chmod(os.path.join(d, n), 0o755)
        for n in files:
            os.chmod(os.path.join(d, n), 0o644)
    os.chmod(path, 0o755)


def _ti(name, kind, mode=0o755, **kw):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode = kind, mode
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


@pytest.fixture(scope="module")
def evil_image(host):
    """A busybox image with a setuid-root `id` and a block device node
    b 7,0 (the host's loop0) at /lo0 and /dev/lo0."""
    path = host.base / "evil-layout"
    busybox = Path(R.BUSYBOX).read_bytes()
    ident = Path(shutil.which("id")).read_bytes()
    _layout(path, [
        (_ti("bin", tarfile.DIRTYPE), None),
        (_ti("bin/busybox", tarfile.REGTYPE, size=len(busybox)), busybox),
        (_ti("bin/sh", tarfile.SYMTYPE, 0o777, linkname="busybox"), None),
        (_ti("bin/suid-id", tarfile.REGTYPE, 0o4755, size=len(ident)), ident),
        (_ti("dev", tarfile.DIRTYPE), None),
        (_ti("dev/lo0", tarfile.BLKTYPE, 0o666, devmajor=7, devminor=0), None),
        (_ti("lo0", tarfile.BLKTYPE, 0o666, devmajor=7, devminor=0), None),
        (_ti("etc", tarfile.DIRTYPE), None),
        (_ti("etc/passwd", tarfile.REGTYPE, 0o644, size=30), b"root:x:0:0:root:/root:/bin/sh\n"),
        (_ti("tmp", tarfile.DIRTYPE, 0o1777), None),
    ])
    return path


def _rootfs(mode, name):
    return Path(json.loads(mode("images", "inspect", "--offline", name, check=0).stdout)["rootfs"])


def test_imported_block_device_node_is_skipped(mode, evil_image):
    p = mode("images", "import", "--name", "local/escape-view:dev", evil_image, check=0)
    assert re.search(r"warning: .*2 device node\(s\).*lo0 \(block 7,0\)", p.output), p.output
    root = _rootfs(mode, "local/escape-view:dev")
    assert (root / "bin" / "busybox").exists(), "the rest of the image is there"
    assert not os.path.lexists(root / "lo0") and not os.path.lexists(root / "dev" / "lo0")
    # and in a build: nothing to open
    p = mode.attack("blockdev", [
        'if [ -b /lo0 ] || [ -b /dev/lo0 ]; then echo "FOUND node"; else echo "ABSENT node"; fi',
    ], "-i", "local/escape-view:dev")
    assert lines(p, "ABSENT") == ["node"] and not lines(p, "FOUND"), p.output


def test_store_setuid_binary_is_out_of_a_local_users_reach(host, evil_image):
    root_mode = Mode(host, "root")
    root_mode("images", "import", "--name", "local/escape-view:suid", evil_image, check=0)
    store = root_mode.state / "images"
    assert os.stat(store).st_mode & 0o777 == 0o700
    suid = _rootfs(root_mode, "local/escape-view:suid") / "bin" / "suid-id"
    st = os.stat(suid)
    assert st.st_mode & stat.S_ISUID and st.st_uid == 0, "the setuid bit is kept, behind the store"
    # everything above the store is open to the user: only its mode stops them
    for parent in store.parents:
        assert os.stat(parent).st_mode & 0o005 == 0o005 or parent == Path("/")
    p = subprocess.run(["setpriv", "--reuid", USER, "--regid", USER, "--init-groups", "/bin/sh", "-c",
                        "printf 'ATTACK %s ran\\n' suid; exec " + str(suid) + " -u"],
                       capture_output=True, text=True, timeout=30)
    out = p.stdout + p.stderr
    assert re.search(r"^ATTACK suid ran$", out, re.M), out
    assert p.returncode != 0 and "Permission denied" in out, out
    assert not re.search(r"^0$", p.stdout, re.M), "a local user ran a setuid-root binary from the store"
