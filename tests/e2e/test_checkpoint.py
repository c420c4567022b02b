"""Phase checkpoints: kept at the end of a successful phase, `run --from-phase`
starting on the newest matching one above the working tree as it is now, a
clear reason when none matches, nothing for builds with secrets unless asked,
and `cache ls` / `cache prune` showing and pruning them."""
import json
import os
import pathlib
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FUSE_OVERLAYFS, Runner, UserRunner, fuse_usable, rootless_user

BUILDSPEC = """version: 0.2
phases:
  install:
    commands:
      - mkdir -p node_modules/dep && echo from-install > node_modules/dep/index.js
      - export INSTALLED_BY=install-phase
      - mkdir -p sub && cd sub
  build:
    commands:
      - echo "dep=$(cat ../node_modules/dep/index.js) var=$INSTALLED_BY pwd=$(pwd) wt=$(cat ../wt.txt)"
      - echo changed-by-build > ../node_modules/dep/index.js
"""


def git_project(cbl, name, buildspec=BUILDSPEC):
    src = cbl.project(name, buildspec, {"wt.txt": "v1\n", ".gitignore": "node_modules/\n",
                                        "node_modules/dep/index.js": "from-the-host\n"})
    subprocess.run(["git", "init", "-q", str(src)], check=True)
    return src


def saw(p):
    line = [l for l in p.stdout.splitlines() if l.startswith("dep=")]
    assert line, p.output
    return line[0]


def checkpoints(home):
    root = home / "cache" / "checkpoints"
    return sorted(p for p in root.glob("*/*/*") if not p.name.startswith(".")) if root.exists() else []


@pytest.fixture
def root_only():
    if os.geteuid() != 0:
        pytest.skip("root's checkpoints (the normal user's tests below make their user as root)")


def test_from_phase_starts_on_the_checkpoint(cbl, home, root_only):
    src = git_project(cbl, "app")
    full = cbl("run", src, check=0)
    assert "Checkpoint of INSTALL kept" in full.output
    first = saw(full)
    assert first.startswith("dep=from-install var=install-phase pwd=/codebuild/output/src")
    assert first.endswith("/sub wt=v1")
    assert len(checkpoints(home)) == 1  # none after BUILD: no later phase has commands
    layer = checkpoints(home)[0] / "layer"
    assert (layer / "node_modules" / "dep" / "index.js").read_text() == "from-install\n"

    # the working tree changes; INSTALL does not run again
    (src / "wt.txt").write_text("v2\n")
    p = cbl("run", "--from-phase", "BUILD", src, check=0)
    assert "Running command mkdir -p node_modules" not in p.output
    assert "Restored from the checkpoint, not run" in p.output
    assert saw(p) == first.replace("wt=v1", "wt=v2")  # same variables, directory, source path
    # immutable: what the restored BUILD changed is not in the checkpoint
    assert (layer / "node_modules" / "dep" / "index.js").read_text() == "from-install\n"
    assert (src / "node_modules" / "dep" / "index.js").read_text() == "from-the-host\n"
    assert len(checkpoints(home)) == 1  # none after BUILD: no later phase has commands

    # this build's own CODEBUILD_* values, not the checkpoint's
    rec = json.loads(cbl("run", "--from-phase", "BUILD", "--json", src).stdout.splitlines()[-1])["build"]
    assert rec["buildStatus"] == "SUCCEEDED"


def test_no_matching_checkpoint_says_why(cbl, home, root_only):
    src = git_project(cbl, "app2")
    p = cbl("run", "--from-phase", "BUILD", src)
    assert p.returncode == 1
    assert "no checkpoint of project app2 yet" in p.output
    cbl("run", src, check=0)
    (src / "buildspec.yml").write_text(BUILDSPEC.replace("install-phase", "changed"))
    p = cbl("run", "--from-phase", "BUILD", src)
    assert p.returncode == 1
    assert "differs in: INSTALL" in p.output, p.output
    assert "dep=" not in p.stdout
    # a different image: the environment's part
    (src / "buildspec.yml").write_text(BUILDSPEC)
    p = cbl("run", "--from-phase", "BUILD", "-e", "EXTRA=1", src)
    assert p.returncode == 1 and "differs in: environment" in p.output, p.output
    bad = cbl("run", "--from-phase", "LATER", src)
    assert bad.returncode == 2 and "--from-phase takes" in bad.output
    # a source no checkpoint layer can go under: said, never run without it
    for opts in (["--source-mode", "mount"], ["--sandbox", "none"]):
        p = cbl("run", "--from-phase", "BUILD", *opts, src)
        assert p.returncode == 1 and "checkpoints need a local source directory" in p.output, p.output
        assert "dep=" not in p.stdout


def test_secrets_need_checkpoint_secrets(cbl, home, tmp_path, root_only):
    spec = BUILDSPEC.replace("phases:", "env:\n  parameter-store:\n    TOKEN: /app/token\nphases:")
    src = git_project(cbl, "sec", spec)
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"parameter-store": {"/app/token": "s3cr3t-value"}}))
    p = cbl("run", "--secrets-file", secrets, src, check=0)
    assert "No checkpoint: the build has secrets" in p.output
    assert checkpoints(home) == []
    p = cbl("run", "--secrets-file", secrets, "--checkpoint-secrets", src, check=0)
    assert len(checkpoints(home)) == 1
    for f in checkpoints(home)[0].rglob("*"):
        if f.is_file():
            assert b"s3cr3t-value" not in f.read_bytes(), f


def test_cache_ls_and_prune_show_checkpoints(cbl, home, root_only):
    src = git_project(cbl, "lsapp")
    cbl("run", src, check=0)
    cbl("run", src, check=0)
    assert len(checkpoints(home)) == 2
    ls = cbl("cache", "ls", check=0)
    assert "PHASE CHECKPOINTS" in ls.stdout and "lsapp" in ls.stdout and "(replaced)" in ls.stdout
    pr = cbl("cache", "prune", check=0)
    assert "Removed 1 phase checkpoint" in pr.stdout
    assert len(checkpoints(home)) == 1
    cbl("run", "--from-phase", "BUILD", src, check=0)  # the one kept still starts builds


OUTSIDE = """version: 0.2
phases:
  install:
    commands:
      - echo "root-before=[$(ls -A /root | tr '\\n' ' ')]"
      - mkdir -p /usr/local/bin ~/.cache && printf '#!/bin/sh\\necho tool-ran\\n' > /usr/local/bin/cbl-ckpt-tool
      - chmod 755 /usr/local/bin/cbl-ckpt-tool && echo cached-in-home > ~/.cache/cbl-ckpt-x
      - rm -f /etc/issue && cp /bin/true /usr/local/bin/cbl-ckpt-suid && chmod 4755 /usr/local/bin/cbl-ckpt-suid
  build:
    commands:
      - echo "outside=$(cbl-ckpt-tool) home=$(cat ~/.cache/cbl-ckpt-x) root=[$(ls -A /root | tr '\\n' ' ')]"
      - test ! -e /etc/issue && echo issue-deleted
      - echo changed-by-build > ~/.cache/cbl-ckpt-x
"""


def test_changes_outside_the_source_are_kept(cbl, home, root_only):
    """An INSTALL that installs a tool under /usr/local/bin and writes in
    ~/.cache: `run --from-phase BUILD` sees both, the host sees neither, and
    the host's /root stays hidden from the build."""
    assert not os.path.exists("/usr/local/bin/cbl-ckpt-tool")
    assert os.listdir(os.path.expanduser("~root")), "the host's /root has files the build must not see"
    issue = os.path.exists("/etc/issue")
    src = git_project(cbl, "outside", OUTSIDE)
    full = cbl("run", src, check=0)
    assert "Checkpoint of INSTALL kept" in full.output, full.output
    # the build's /root starts empty: the host's is not shown
    assert "root-before=[]" in full.stdout, full.output
    line = [l for l in full.stdout.splitlines() if l.startswith("outside=")]
    assert line == ["outside=tool-ran home=cached-in-home root=[.cache ]"], full.output
    layer = checkpoints(home)[0] / "root-layer"
    assert (layer / "usr" / "local" / "bin" / "cbl-ckpt-tool").is_file()
    assert (layer / "root" / ".cache" / "cbl-ckpt-x").read_text() == "cached-in-home\n"
    # a setuid file the build made is kept as it is, in directories only
    # root may enter
    suid = layer / "usr" / "local" / "bin" / "cbl-ckpt-suid"
    assert suid.stat().st_mode & 0o4000
    assert any(d.stat().st_mode & 0o077 == 0 for d in suid.parents if str(d).startswith(str(home)))
    # nothing reached the host
    assert os.path.exists("/etc/issue") == issue
    assert not os.path.exists("/usr/local/bin/cbl-ckpt-tool")
    assert not os.path.exists(os.path.expanduser("~root/.cache/cbl-ckpt-x"))

    p = cbl("run", "--from-phase", "BUILD", src, check=0)
    assert "Restored from the checkpoint, not run" in p.output
    assert "Running command mkdir -p /usr/local/bin" not in p.output
    assert "installed packages, /root) too" in p.output, p.output
    line = [l for l in p.stdout.splitlines() if l.startswith("outside=")]
    assert line == ["outside=tool-ran home=cached-in-home root=[.cache ]"], p.output
    if issue:  # a deletion outside the source is kept too
        assert "issue-deleted" in p.stdout, p.output
    # the checkpoint is a read-only layer: BUILD's change is not in it
    assert (layer / "root" / ".cache" / "cbl-ckpt-x").read_text() == "cached-in-home\n"
    assert not os.path.exists("/usr/local/bin/cbl-ckpt-tool")
    assert len(checkpoints(home)) == 1


# ---- a normal user's checkpoints: the sandbox's layers, copied in its user
# namespace (the runner cannot read them itself)

USER_SPEC = """version: 0.2
phases:
  install:
    commands:
      - mkdir -p node_modules/dep && echo from-install > node_modules/dep/index.js
      - rm gone.txt
      - mkdir -p ~/.npm && echo npm-cache > ~/.npm/entry
      - echo in-tmp > /tmp/cbl-ckpt-tmp && mkdir -p /home/cbl-ckpt && echo in-home > /home/cbl-ckpt/f
      - export INSTALLED_BY=install-phase
  build:
    commands:
      - echo "dep=$(cat node_modules/dep/index.js) npm=$(cat ~/.npm/entry) tmp=$(cat /tmp/cbl-ckpt-tmp) home=$(cat /home/cbl-ckpt/f) gone=$(test -e gone.txt && echo present || echo deleted) var=$INSTALLED_BY"
      - echo "host-only=$(cat node_modules/host-only.js 2>/dev/null || echo absent)"
      - echo changed-by-build > node_modules/dep/index.js && echo changed > /tmp/cbl-ckpt-tmp && echo changed > ~/.npm/entry
"""


@pytest.fixture
def user():
    u = UserRunner(rootless_user())
    yield u
    u.cleanup()


def busybox_image(user, name):
    """A busybox image (tests/e2e/registry.py's layout) imported as name by
    the normal user; skips without busybox-static.  Returns the import."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import registry as R
    if not os.path.exists(R.BUSYBOX):
        pytest.skip("needs busybox-static")
    applets = ["cat", "echo", "mkdir", "rm", "test", "ls", "stat", "id"]
    entries = R.base_entries("cbltest") + [("bin/" + a, "l", "busybox") for a in applets] + \
        [("root", "d", None), ("usr", "d", None), ("usr/local", "d", None)]
    lay = R.Layout(str(user.tmp_path / "oci"))
    lay.tag(lay.image([(entries, "none")], arch=R.host_arch()), "v1")
    user.own(user.tmp_path / "oci")
    return user("images", "import", "--name", name, user.tmp_path / "oci", check=0)


def user_project(user, name, spec, files=None):
    src = user.project(name, spec, {"gone.txt": "tracked\n", ".gitignore": "node_modules/\n",
                                    "node_modules/dep/index.js": "from-the-host\n", **(files or {})})
    subprocess.run(["git", "init", "-q", str(src)], check=True)
    return user.own(src)


def test_a_normal_user_gets_checkpoints(user):
    """As a normal user: the source's changes (node_modules, a deletion) and
    what INSTALL wrote in /root (~/.npm), /tmp and /home are there for BUILD
    under --from-phase, and what BUILD writes stays out of the checkpoint."""
    src = user_project(user, "nu", USER_SPEC, {"node_modules/host-only.js": "host\n"})
    full = user("run", src, check=0)
    assert "Checkpoint of INSTALL kept" in full.output, full.output
    want = "dep=from-install npm=npm-cache tmp=in-tmp home=in-home gone=deleted var=install-phase"
    assert saw(full) == want, full.output
    cps = checkpoints(user.home)
    assert len(cps) == 1
    cp = cps[0]
    assert json.loads((cp / "meta.json").read_text())["takenAs"] == "user"
    assert (cp / "layer" / "node_modules" / "dep" / "index.js").read_text() == "from-install\n"
    # made where the snapshot left the git-ignored host copy out: opaque,
    # so the host's node_modules never shows through on a restore
    assert os.getxattr(cp / "layer" / "node_modules", "user.overlay.opaque") == b"y"
    wh = os.lstat(cp / "layer" / "gone.txt")  # a whiteout: the deletion
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert (cp / "private" / "root" / ".npm" / "entry").read_text() == "npm-cache\n"
    assert (cp / "private" / "tmp" / "cbl-ckpt-tmp").read_text() == "in-tmp\n"
    assert (cp / "private" / "home" / "cbl-ckpt" / "f").read_text() == "in-home\n"

    (src / "wt.txt").write_text("v2\n")
    p = user("run", "--from-phase", "BUILD", src, check=0)
    assert "Restored from the checkpoint, not run" in p.output, p.output
    assert "Running command mkdir -p node_modules" not in p.output
    assert saw(p) == want, p.output
    assert "host-only=absent" in p.stdout, p.output
    assert "and the contents of /tmp, /root, /home as the phase left them" in p.output, p.output
    # immutable: the restored BUILD's writes went to its own layers
    assert (cp / "layer" / "node_modules" / "dep" / "index.js").read_text() == "from-install\n"
    assert (cp / "private" / "tmp" / "cbl-ckpt-tmp").read_text() == "in-tmp\n"
    assert (cp / "private" / "root" / ".npm" / "entry").read_text() == "npm-cache\n"
    assert (src / "node_modules" / "dep" / "index.js").read_text() == "from-the-host\n"
    assert (src / "gone.txt").read_text() == "tracked\n"
    assert len(checkpoints(user.home)) == 1
    # cache prune removes what a newer checkpoint replaced, files of the
    # user's subordinate ids included
    user("run", src, check=0)
    assert len(checkpoints(user.home)) == 2
    assert "Removed 1 phase checkpoint" in user("cache", "prune", check=0).stdout
    assert len(checkpoints(user.home)) == 1


def subid_base(name):
    for line in Path("/etc/subuid").read_text().splitlines():
        f = line.split(":")
        if f[0] == name:
            return int(f[1])
    return None


IDS_SPEC = """version: 0.2
phases:
  install:
    run-as: codebuild-user
    commands:
      - echo only-codebuild-user > /tmp/cbl-owned && chmod 600 /tmp/cbl-owned
      - mkdir -p /tmp/cbl-private && chmod 700 /tmp/cbl-private && echo deep > /tmp/cbl-private/f && chmod 600 /tmp/cbl-private/f
  build:
    commands:
      - echo "owned=$(stat -c '%U %a' /tmp/cbl-owned) $(cat /tmp/cbl-owned) deep=$(stat -c '%U %a' /tmp/cbl-private/f)"
"""


def test_a_normal_users_checkpoint_keeps_owners(user):
    """With subordinate ids, a 0600 file codebuild-user (run-as) wrote is
    kept with its owner and mode, and BUILD sees it so."""
    base = subid_base(user.pw.pw_name)
    if base is None:
        pytest.skip(f"{user.pw.pw_name} has no subordinate ids")
    src = user_project(user, "ids", IDS_SPEC)
    full = user("run", src, check=0)
    assert "Checkpoint of INSTALL kept" in full.output, full.output
    cp = checkpoints(user.home)[0]
    f = os.lstat(cp / "private" / "tmp" / "cbl-owned")
    assert (f.st_uid, stat.S_IMODE(f.st_mode)) == (base + 999, 0o600)  # ids 1.. map onto the range
    d = os.lstat(cp / "private" / "tmp" / "cbl-private")
    assert (d.st_uid, stat.S_IMODE(d.st_mode)) == (base + 999, 0o700)
    p = user("run", "--from-phase", "BUILD", src, check=0)
    line = [l for l in p.stdout.splitlines() if l.startswith("owned=")]
    assert line == ["owned=codebuild-user 600 only-codebuild-user deep=codebuild-user 600"], p.output
    # pruned whole, the subordinate ids' 0700 directory included
    user("run", src, check=0)
    assert "Removed 1 phase checkpoint" in user("cache", "prune", check=0).stdout
    left = [str(x) for x in (user.home / "cache" / "checkpoints").rglob("*") if "cbl-private" in str(x)]
    assert len(left) == 2, left  # the newest checkpoint's directory and file only
    # a normal user's checkpoint is not root's to start on (and the other
    # way round): said, never used
    root = Runner(user.home, user.tmp_path)
    p = root("run", "--from-phase", "BUILD", src)
    assert p.returncode == 1, p.output
    assert "was taken by a normal user's build; a build run as root cannot start on it" in p.output, p.output
    assert "owned=" not in p.stdout
    # and one root took (its takenAs) is not the normal user's to start on
    newest = max(checkpoints(user.home), key=lambda c: json.loads((c / "meta.json").read_text())["created"])
    meta = json.loads((newest / "meta.json").read_text())
    meta["takenAs"] = "root"
    (newest / "meta.json").write_text(json.dumps(meta))
    p = user("run", "--from-phase", "BUILD", src)
    assert p.returncode == 1, p.output
    assert "was taken by a build run as root; a build run as a normal user cannot start on it" in p.output, p.output
    assert "owned=" not in p.stdout


ATTACK_SPEC = """version: 0.2
phases:
  install:
    commands:
      - mkdir -p node_modules
      - ln -s SECRET node_modules/secret-link && ln -s READABLE node_modules/readable-link
      - ln -s SECRET /tmp/secret-link && ln -s READABLE /tmp/readable-link && ln -s / /tmp/root-link
      - mkfifo node_modules/fifo /tmp/fifo
      - echo planted
  build:
    commands:
      - ls -l node_modules/ /tmp/
"""


def test_a_normal_users_checkpoint_copies_links_as_links(user, tmp_path):
    """A hostile INSTALL plants symlinks to a host file the user cannot read
    and to one it can (in its own home on the host, outside the build), in
    the source and in /tmp, and FIFOs: the checkpoint holds the links as
    links, none of the targets' content, and the FIFOs hang nothing."""
    tag = os.urandom(8).hex()
    secret = Path("/var/lib") / f"cbl-ckpt-secret-{tag}"
    secret.write_text(f"host-secret-{tag}\n")
    os.chmod(secret, 0o600)
    readable = Path(user.pw.pw_dir) / f"cbl-ckpt-readable-{tag}"
    readable.write_text(f"users-own-{tag}\n")
    user.own(readable)
    try:
        spec = ATTACK_SPEC.replace("SECRET", str(secret)).replace("READABLE", str(readable))
        src = user_project(user, "atk", spec)
        full = user("run", src, check=0, timeout=60)
        assert "planted" in full.stdout, full.output  # the attack ran
        assert "Checkpoint of INSTALL kept" in full.output, full.output
        cp = checkpoints(user.home)[0]
        for d in (cp / "layer" / "node_modules", cp / "private" / "tmp"):
            assert os.readlink(d / "secret-link") == str(secret)
            assert os.readlink(d / "readable-link") == str(readable)
            assert not os.path.lexists(d / "fifo")
        assert os.readlink(cp / "private" / "tmp" / "root-link") == "/"
        for f in cp.rglob("*"):
            if f.is_file() and not f.is_symlink():
                data = f.read_bytes()
                assert tag.encode() not in data or f.name == "env.sh", f
        # the restored build gets the links, still links
        p = user("run", "--from-phase", "BUILD", src, check=0, timeout=60)
        assert "secret-link -> " + str(secret) in p.stdout, p.output
    finally:
        secret.unlink()
        readable.unlink()


IMAGE_SPEC = """version: 0.2
phases:
  install:
    commands:
      - mkdir -p /usr/local/bin node_modules && echo image-tool > /usr/local/bin/tool && rm /etc/os-release
      - echo in-root > /root/r && echo in-tmp > /tmp/t && echo nm > node_modules/x
  build:
    commands:
      - echo "img=$(cat /usr/local/bin/tool) root=$(cat /root/r) tmp=$(cat /tmp/t) osr=$(test -e /etc/os-release && echo present || echo deleted) nm=$(cat node_modules/x)"
      - echo changed > /usr/local/bin/tool
"""


def test_a_normal_users_image_build_keeps_the_roots_changes(user):
    """With an image (-i) the root is an overlay in the user namespace: its
    upper layer (a tool in /usr/local/bin, a deletion, /root) is kept as
    root-layer/, /tmp as private/tmp, and BUILD gets both back."""
    imp = busybox_image(user, "cbl-ckpt/busybox:v1")
    src = user_project(user, "img", IMAGE_SPEC)
    full = user("run", "-i", "cbl-ckpt/busybox:v1", src, check=0)
    assert "Checkpoint of INSTALL kept" in full.output, full.output + imp.output
    want = "img=image-tool root=in-root tmp=in-tmp osr=deleted nm=nm"
    assert [l for l in full.stdout.splitlines() if l.startswith("img=")] == [want], full.output
    cp = checkpoints(user.home)[0]
    assert (cp / "root-layer" / "usr" / "local" / "bin" / "tool").read_text() == "image-tool\n"
    assert (cp / "root-layer" / "root" / "r").read_text() == "in-root\n"
    wh = os.lstat(cp / "root-layer" / "etc" / "os-release")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert (cp / "private" / "tmp" / "t").read_text() == "in-tmp\n"
    p = user("run", "-i", "cbl-ckpt/busybox:v1", "--from-phase", "BUILD", src, check=0)
    assert "Restored from the checkpoint, not run" in p.output, p.output
    assert [l for l in p.stdout.splitlines() if l.startswith("img=")] == [want], p.output
    assert (cp / "root-layer" / "usr" / "local" / "bin" / "tool").read_text() == "image-tool\n"
    user("images", "prune")


FUSE_SPEC = """version: 0.2
phases:
  install:
    commands:
      - mkdir -p /usr/local/bin /opt/cbl-ckpt-x && echo fuse-tool > /usr/local/bin/cbl-ckpt-tool && chmod 755 /usr/local/bin/cbl-ckpt-tool
      - echo in-opt > /opt/cbl-ckpt-x/f && rm /etc/debian_version && echo in-root > /root/r
      - ln -s SECRET /usr/local/cbl-ckpt-leak && echo planted
  build:
    commands:
      - echo "tool=$(cbl-ckpt-tool 2>&1 | head -c 0; cat /usr/local/bin/cbl-ckpt-tool) opt=$(cat /opt/cbl-ckpt-x/f) deb=$(test -e /etc/debian_version && echo present || echo deleted) root=$(cat /root/r) leak=$(readlink /usr/local/cbl-ckpt-leak)"
      - echo "leaked=$(cat /usr/local/cbl-ckpt-leak 2>/dev/null | wc -c)"
      - echo changed > /usr/local/bin/cbl-ckpt-tool && rm -r /opt/cbl-ckpt-x && echo new > /usr/local/bin/cbl-ckpt-new
"""


def fuse_user(user, fuse_node, mode=0o666):
    if not any(os.path.isfile(f) for f in FUSE_OVERLAYFS):
        pytest.skip("needs fuse-overlayfs (scripts/install-deps.sh)")
    if not os.path.exists("/etc/debian_version"):
        pytest.skip("needs a Debian host (/etc/debian_version is the file deleted)")
    prefix = fuse_node(mode)
    base = getattr(user, "plain_argv", user.argv)
    user.plain_argv = base
    user.argv = lambda args: [*prefix, *base(args)]  # the binary sees the test's /dev/fuse
    setpriv = ["--reuid", str(user.pw.pw_uid), "--regid", str(user.pw.pw_gid), "--init-groups"]
    assert fuse_usable(*setpriv, prefix=prefix) == (mode == 0o666)


def test_a_normal_users_fuse_root_changes_are_kept(user, fuse_node):
    """A normal user whose host / is fuse-overlayfs (a machine that lends
    /dev/fuse to everyone: the test's own 0666 node): what INSTALL changed
    on / (a tool in /usr/local/bin, /opt, the deletion of a host file) is
    kept as fuse-overlayfs's upper layer and given back to fuse-overlayfs
    as a lower layer; a link INSTALL planted to a host file the user cannot
    read is kept as a link, none of its content; BUILD's writes stay out of
    the checkpoint."""
    fuse_user(user, fuse_node)
    tag = os.urandom(8).hex()
    secret = Path("/var/lib") / f"cbl-ckpt-fuse-secret-{tag}"
    secret.write_text(f"host-secret-{tag}\n")
    os.chmod(secret, 0o600)
    try:
        src = user_project(user, "fz", FUSE_SPEC.replace("SECRET", str(secret)))
        full = user("run", src, check=0, timeout=120)
        assert "planted" in full.stdout, full.output  # the attack ran
        assert "Checkpoint of INSTALL kept" in full.output, full.output
        assert "not kept" not in full.output and "fuse-overlayfs (not implemented" not in full.output, full.output
        want = f"tool=fuse-tool opt=in-opt deb=deleted root=in-root leak={secret}"
        line = [l for l in full.stdout.splitlines() if l.startswith("tool=")]
        assert line == [want], full.output
        cp = checkpoints(user.home)[0]
        meta = json.loads((cp / "meta.json").read_text())
        assert meta["takenAs"] == "user" and meta["rootLayerFormat"] == "fuse-overlayfs", meta
        rl = cp / "root-layer"
        assert (rl / "usr" / "local" / "bin" / "cbl-ckpt-tool").read_text() == "fuse-tool\n"
        assert (rl / "opt" / "cbl-ckpt-x" / "f").read_text() == "in-opt\n"
        # the deletion, as fuse-overlayfs wrote it: a whiteout device or a .wh. file
        wh = rl / "etc" / "debian_version"
        assert (os.path.lexists(wh) and stat.S_ISCHR(os.lstat(wh).st_mode) and os.lstat(wh).st_rdev == 0) or \
            os.path.lexists(rl / "etc" / ".wh.debian_version"), list((rl / "etc").iterdir())
        assert os.readlink(rl / "usr" / "local" / "cbl-ckpt-leak") == str(secret)
        for f in cp.rglob("*"):
            if f.is_file() and not f.is_symlink():
                assert tag.encode() not in f.read_bytes() or f.name == "env.sh", f
        assert (cp / "private" / "root" / "r").read_text() == "in-root\n"

        p = user("run", "--from-phase", "BUILD", src, check=0, timeout=120)
        assert "Restored from the checkpoint, not run" in p.output, p.output
        assert "Running command mkdir -p /usr/local/bin" not in p.output
        line = [l for l in p.stdout.splitlines() if l.startswith("tool=")]
        assert line == [want], p.output
        assert [l for l in p.stdout.splitlines() if l.startswith("leaked=")] == ["leaked=0"], p.output
        assert "the changes outside the source (installed packages, /root) too" in p.output, p.output
        # immutable: BUILD's writes went to its own upper layer
        assert (rl / "usr" / "local" / "bin" / "cbl-ckpt-tool").read_text() == "fuse-tool\n"
        assert (rl / "opt" / "cbl-ckpt-x" / "f").read_text() == "in-opt\n"
        assert not os.path.lexists(rl / "usr" / "local" / "bin" / "cbl-ckpt-new")
        assert os.path.exists("/etc/debian_version") and not os.path.exists("/usr/local/bin/cbl-ckpt-tool")
        assert len(checkpoints(user.home)) == 1

        # where the user may not open /dev/fuse, / would be read-only: said, never started on
        fuse_user(user, fuse_node, 0o600)
        p = user("run", "--from-phase", "BUILD", src, check=1, timeout=120)
        assert "changed the host's / through fuse-overlayfs, which this build cannot use" in p.output, p.output
        assert "tool=" not in p.stdout
        # nor a kernel overlay's layer to fuse-overlayfs (a meta.json without the format)
        fuse_user(user, fuse_node)
        del meta["rootLayerFormat"]
        (cp / "meta.json").write_text(json.dumps(meta))
        p = user("run", "--from-phase", "BUILD", src, check=1, timeout=120)
        assert "keeps its changes outside the source in the kernel's overlay's format, and this build's root " \
            "is fuse-overlayfs" in p.output, p.output
        assert "tool=" not in p.stdout
    finally:
        secret.unlink()


def _deletable():
    """A host file under /etc a build can delete (a whiteout in root-layer/)
    and a directory of /etc with files it can replace (an opaque one)."""
    f = next((p for p in ("/etc/issue", "/etc/debian_version", "/etc/hostname", "/etc/adduser.conf")
              if os.path.isfile(p)), None)
    d = next((p for p in ("/etc/default", "/etc/cron.d", "/etc/apt/apt.conf.d")
              if os.path.isdir(p) and os.listdir(p)), None)
    if not f or not d:
        pytest.skip("no host file and directory under /etc to delete and replace")
    return f, d


PRIVATE = """version: 0.2
phases:
  install:
    commands:
      - echo in-tmp > /tmp/x && mkdir -p /home/u /var/tmp/v && echo in-home > /home/u/y && echo in-run > /run/z
      - echo in-var-tmp > /var/tmp/v/w && chmod 640 /home/u/y
      - rm -f DELETED && rm -rf REPLACED && mkdir REPLACED && echo only > REPLACED/only
  pre_build:
    run-as: codebuild-user
    commands:
      - echo as-user > /home/codebuild-user/cu && id -u
  build:
    commands:
      - echo "saw tmp=$(cat /tmp/x) home=$(cat /home/u/y) run=$(cat /run/z) vt=$(cat /var/tmp/v/w) cu=$(cat /home/codebuild-user/cu) cu-owner=$(stat -c %u /home/codebuild-user/cu) mode=$(stat -c %a /home/u/y) tmp-mode=$(stat -c %a /tmp)"
      - test ! -e DELETED && echo deleted-stays-deleted
      - echo "replaced=[$(ls -A REPLACED | tr '\\n' ' ')]"
      - echo by-build > /tmp/x && rm /home/u/y && echo new > /run/new
  post_build:
    commands:
      - echo post
"""


def test_private_directories_are_kept(cbl, home, root_only):
    """INSTALL writes /tmp, /home, /run and /var/tmp, deletes a host file and
    replaces a directory; PRE_BUILD (as codebuild-user) writes its home: the
    checkpoint keeps it all (private/<name>/), `--from-phase BUILD` sees it
    all as the phase left it, and what BUILD writes stays out of the
    checkpoint."""
    deleted, replaced = _deletable()
    entries = sorted(os.listdir(replaced))
    spec = PRIVATE.replace("DELETED", deleted).replace("REPLACED", replaced)
    src = git_project(cbl, "priv", spec)
    full = cbl("run", src, check=0)
    assert "Checkpoint of PRE_BUILD kept" in full.output, full.output
    want = [l for l in full.stdout.splitlines() if l.startswith("saw ")]
    assert want == ["saw tmp=in-tmp home=in-home run=in-run vt=in-var-tmp cu=as-user cu-owner=1000 mode=640 "
                    "tmp-mode=1777"], full.output
    ckpt = [c for c in checkpoints(home) if json.loads((c / "meta.json").read_text())["phase"] == "PRE_BUILD"]
    assert len(ckpt) == 1
    priv = ckpt[0] / "private"
    assert (priv / "tmp" / "x").read_text() == "in-tmp\n"
    assert (priv / "home" / "u" / "y").read_text() == "in-home\n"
    assert (priv / "home" / "codebuild-user" / "cu").stat().st_uid == 1000
    assert (priv / "run" / "z").read_text() == "in-run\n"
    assert (priv / "var-tmp" / "v" / "w").read_text() == "in-var-tmp\n"
    assert not (priv / "root").exists()  # /root is in root-layer/, once
    # nothing reached the host
    assert os.path.exists(deleted) and sorted(os.listdir(replaced)) == entries

    p = cbl("run", "--from-phase", "BUILD", src, check=0)
    assert "Restored from the checkpoint, not run" in p.output
    assert "Running command echo in-tmp" not in p.output
    assert "the contents of /tmp" in p.output and "/home" in p.output, p.output
    assert "/tmp's and /home's" not in p.output
    got = [l for l in p.stdout.splitlines() if l.startswith("saw ")]
    assert got == want, p.output
    assert "deleted-stays-deleted" in p.stdout, p.output
    assert "replaced=[only ]" in p.stdout, p.output
    assert p.returncode == 0, p.output
    # BUILD's writes are not in the checkpoint
    assert (priv / "tmp" / "x").read_text() == "in-tmp\n"
    assert (priv / "home" / "u" / "y").read_text() == "in-home\n"
    assert not (priv / "run" / "new").exists()
    assert not (ckpt[0] / "root-layer" / "tmp").exists()
    assert os.path.exists(deleted) and sorted(os.listdir(replaced)) == entries


LEAKY = """version: 0.2
phases:
  install:
    commands:
      - ln -s /etc/shadow /tmp/leak && ln -s HOSTFILE /home/l && mkfifo /tmp/fifo /home/fifo
      - mkdir -p /tmp/d && ln -s /etc /tmp/d/etc-link
      - (while :; do echo spin >> /tmp/d/grow; sleep 0.05; done) &
  build:
    commands:
      - echo "leak=$(readlink /tmp/leak) l=$(readlink /home/l) fifo=$(test -e /tmp/fifo && echo kept || echo gone)"
"""


def test_private_symlinks_are_kept_never_followed(cbl, home, tmp_path, root_only):
    """Attack: INSTALL plants symlinks in /tmp and /home to /etc/shadow and to
    a host file the build cannot read, and FIFOs.  The checkpoint keeps the
    links as links (the runner reads /proc/<init>/root, where an absolute
    link would resolve on the host) and no content of their targets, and
    the runner does not block on the FIFOs."""
    secret = tmp_path / "host-only"  # the build's /tmp is its own: unreachable
    secret.write_text("host-secret-8d1f0c\n")
    secret.chmod(0o600)
    with open("/etc/shadow", "rb") as f:
        shadow = f.read()
    spec = LEAKY.replace("HOSTFILE", str(secret))
    src = git_project(cbl, "leaky", spec)
    full = cbl("run", src, check=0, timeout=90)
    assert "Checkpoint of INSTALL kept" in full.output, full.output
    priv = checkpoints(home)[0] / "private"
    assert os.readlink(priv / "tmp" / "leak") == "/etc/shadow"
    assert os.readlink(priv / "home" / "l") == str(secret)
    assert os.readlink(priv / "tmp" / "d" / "etc-link") == "/etc"
    assert not os.path.lexists(priv / "tmp" / "fifo") and not os.path.lexists(priv / "home" / "fifo")
    lines = [l for l in shadow.splitlines() if l.strip()]
    for f in checkpoints(home)[0].rglob("*"):
        if f.is_file() and not f.is_symlink():
            data = f.read_bytes()
            assert b"host-secret-8d1f0c" not in data, f
            assert not any(l in data for l in lines if b":" in l and len(l) > 8), f
    p = cbl("run", "--from-phase", "BUILD", src, check=0, timeout=90)
    assert f"leak=/etc/shadow l={secret} fifo=gone" in p.stdout, p.output
    assert secret.read_text() == "host-secret-8d1f0c\n"


def remove_store(store):
    """Removes a cache store once the spare a restored build makes at its
    end (a detached process working in the store's tmp/) is done."""
    import shutil
    import time
    tmp = os.path.join(store, "tmp")
    for _ in range(100):
        if not os.path.isdir(tmp) or not os.listdir(tmp):
            break
        time.sleep(0.1)
    time.sleep(0.2)
    shutil.rmtree(store, ignore_errors=True)


def spares(home):
    root = home / "cache" / "checkpoints"
    return sorted(root.glob("*/*/.spare-*")) if root.exists() else []


def test_spares_claimed_by_one_build_each(cbl, home, root_only):
    """The checkpoint's spare (a writable copy of root-layer/ beside it) is
    made with it; two `--from-phase BUILD` runs started together both
    succeed with the checkpoint's view (one takes the spare, the other
    copies the layer); neither changes the checkpoint; `cache ls` counts the
    spare and `cache prune` removes it with its checkpoint."""
    issue = os.path.exists("/etc/issue")
    src = git_project(cbl, "spare", OUTSIDE)
    cbl("run", src, check=0)
    ckpt = checkpoints(home)[0]
    assert [s.name.startswith(f".spare-{ckpt.name}.") for s in spares(home)] == [True]
    tool = ckpt / "root-layer" / "usr" / "local" / "bin" / "cbl-ckpt-tool"
    before = tool.read_bytes()
    ls = cbl("cache", "ls", check=0).stdout
    assert "spare" in ls, ls

    procs = [subprocess.Popen(cbl.argv(["run", "--from-phase", "BUILD", src]), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=cbl.env())
             for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out
        assert "outside=tool-ran home=cached-in-home root=[.cache ]" in out, out
        if issue:
            assert "issue-deleted" in out, out
    assert sum("its ready copy is the build's upper layer" in o for o in outs) >= 1, outs
    assert tool.read_bytes() == before
    assert (ckpt / "root-layer" / "root" / ".cache" / "cbl-ckpt-x").read_text() == "cached-in-home\n"
    assert not os.path.exists("/usr/local/bin/cbl-ckpt-tool")

    # a newer checkpoint of the key: the older one and its spare pruned
    cbl("run", src, check=0)
    assert len(checkpoints(home)) == 2
    cbl("cache", "prune", check=0)
    left = checkpoints(home)
    assert len(left) == 1 and left[0].name != ckpt.name
    assert not [s for s in spares(home) if s.name.startswith(f".spare-{ckpt.name}.")]
    assert [s for s in spares(home) if s.name.startswith(f".spare-{left[0].name}.")]


def test_spare_on_the_filesystem_of_root_is_hidden(cbl, root_only):
    """A cache store on the filesystem of / (where overlayfs refuses the
    checkpoint's layer as a lower one): the spare is the build's upper layer,
    and the build sees neither the store nor the spare (the store is
    masked)."""
    import tempfile
    # not under /tmp, /var/tmp or /home, which the build has private anyway
    if not os.path.isdir("/var/cache") or os.stat("/var/cache").st_dev != os.stat("/").st_dev:
        pytest.skip("/var/cache is not on the filesystem of /")
    store = tempfile.mkdtemp(prefix="cbl-ckpt-store-", dir="/var/cache")
    try:
        spec = OUTSIDE + f"      - echo \"store=$(ls -A {store} | wc -l) $(test -d {store} && echo there)\"\n"
        src = git_project(cbl, "spareroot", spec)
        cbl("run", "--cache-dir", store, src, check=0)
        assert [p.name for p in pathlib.Path(store).glob("checkpoints/*/*/.spare-*")], "no spare"
        p = cbl("run", "--cache-dir", store, "--from-phase", "BUILD", src, check=0)
        assert "its ready copy is the build's upper layer" in p.output, p.output
        assert "outside=tool-ran home=cached-in-home root=[.cache ]" in p.stdout, p.output
        assert "store=0 there" in p.stdout, p.output  # an empty directory: the mask
    finally:
        remove_store(store)


def test_no_spare_ready_still_restores_everything(cbl, home, root_only):
    """No spare ready (taken by another build, or removed): the layer is
    copied at the start (store on the filesystem of /) or stacked read-only
    (another filesystem), with the same view: installed files, deletions."""
    import shutil
    import tempfile
    issue = os.path.exists("/etc/issue")
    stores = [str(home / "cache")]
    if os.path.isdir("/dev/shm") and os.stat("/dev/shm").st_dev != os.stat("/").st_dev:
        stores.append(tempfile.mkdtemp(prefix="cbl-ckpt-", dir="/dev/shm"))
    try:
        for i, store in enumerate(stores):
            src = git_project(cbl, f"nospare{i}", OUTSIDE)
            cbl("run", "--cache-dir", store, src, check=0)
            for s in pathlib.Path(store).glob("checkpoints/*/*/.spare-*"):
                shutil.rmtree(s)
            p = cbl("run", "--cache-dir", store, "--from-phase", "BUILD", src, check=0)
            assert "its ready copy" not in p.output
            assert "outside=tool-ran home=cached-in-home root=[.cache ]" in p.stdout, p.output
            if issue:
                assert "issue-deleted" in p.stdout, p.output
    finally:
        for store in stores[1:]:
            remove_store(store)


# ---- a restored build keeps checkpoints too: its own upper layer flattened
# onto the restored checkpoint's layers

CHAIN_SPEC = """version: 0.2
phases:
  install:
    commands:
      - mkdir -p out/keep out/nested/deep out/opq && echo install-keep > out/keep/a.txt
      - echo install-over > out/over.txt && echo install-del > out/del.txt && echo install-n > out/nested/deep/n.txt
      - echo install-old > out/opq/old.txt && echo install-home > ~/.cbl-chain-install
      - export FROM_INSTALL=install-var
  build:
    commands:
      - echo build-new > out/new.txt && echo build-b > out/nested/deep/b.txt && echo build-over > out/over.txt
      - rm out/del.txt wt-del.txt && rm -rf out/opq && mkdir out/opq && echo build-fresh > out/opq/fresh.txt
      - echo build-home > ~/.cbl-chain-build
  post_build:
    commands:
      - echo "post=$(cd out && find . -type f | sort | tr '\\n' ' ')over=$(cat out/over.txt) wt-del=$(test -e wt-del.txt && echo present || echo deleted) wt=$(cat wt.txt) home=$(cat ~/.cbl-chain-install ~/.cbl-chain-build | tr '\\n' ' ')var=$FROM_INSTALL"
"""

CHAIN_WANT = ("post=./keep/a.txt ./nested/deep/b.txt ./nested/deep/n.txt ./new.txt ./opq/fresh.txt ./over.txt "
              "over=build-over wt-del=deleted wt=v1 home=install-home build-home var=install-var")


def tree_state(root):
    """Every entry under root: its type and content (a file's text, a
    link's target, a directory's opaque mark)."""
    out = {}
    for p in sorted(pathlib.Path(root).rglob("*")):
        st = os.lstat(p)
        rel = str(p.relative_to(root))
        if stat.S_ISREG(st.st_mode):
            out[rel] = ("file", p.read_bytes(), stat.S_IMODE(st.st_mode), st.st_uid)
        elif stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", os.readlink(p))
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", sorted(os.listxattr(p, follow_symlinks=False)), stat.S_IMODE(st.st_mode))
        else:
            out[rel] = ("other", st.st_mode, st.st_rdev)
    return out


def by_phase(home):
    return {json.loads((c / "meta.json").read_text())["phase"]: c for c in checkpoints(home)}


def chain(run, home, src, opaque_attr, store_args=(), stacked=False):
    """Full run; the full run's BUILD checkpoint removed; `--from-phase
    BUILD` keeps its own; `--from-phase POST_BUILD` starts on that one and
    sees INSTALL's then BUILD's state."""
    import shutil
    full = run("run", *store_args, src, check=0)
    post = [l for l in full.stdout.splitlines() if l.startswith("post=")]
    assert post == [CHAIN_WANT], full.output
    cps = by_phase(home)
    assert set(cps) == {"INSTALL", "BUILD"}, cps
    shutil.rmtree(cps["BUILD"])
    install_before = tree_state(cps["INSTALL"])

    p = run("run", *store_args, "--from-phase", "BUILD", src, check=0)
    assert "Restored from the checkpoint, not run" in p.output, p.output
    assert not stacked or "its ready copy" not in p.output, p.output
    assert "Checkpoint of BUILD kept" in p.output, p.output
    cps = by_phase(home)
    assert set(cps) == {"INSTALL", "BUILD"}, cps
    assert tree_state(cps["INSTALL"]) == install_before  # the restored one unchanged
    bid = json.loads((cps["BUILD"] / "meta.json").read_text())["buildId"]
    layer = cps["BUILD"] / "layer"
    # flattened: INSTALL's untouched files, BUILD's, the deletions kept as
    # whiteouts, BUILD's new out/opq opaque over INSTALL's
    assert (layer / "out" / "keep" / "a.txt").read_text() == "install-keep\n"
    assert (layer / "out" / "nested" / "deep" / "n.txt").read_text() == "install-n\n"
    assert (layer / "out" / "nested" / "deep" / "b.txt").read_text() == "build-b\n"
    assert (layer / "out" / "over.txt").read_text() == "build-over\n"
    for gone in ("out/del.txt", "wt-del.txt"):
        wh = os.lstat(layer / gone)
        assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0, gone
    assert sorted(x.name for x in (layer / "out" / "opq").iterdir()) == ["fresh.txt"]
    assert os.getxattr(layer / "out" / "opq", opaque_attr) == b"y"

    p = run("run", *store_args, "--from-phase", "POST_BUILD", src, check=0)
    assert f"on the checkpoint of BUILD from build {bid}" in p.output, p.output
    assert "Running command echo build-new" not in p.output
    post = [l for l in p.stdout.splitlines() if l.startswith("post=")]
    assert post == [CHAIN_WANT], p.output
    assert tree_state(cps["INSTALL"]) == install_before
    ls = [l.split() for l in run("cache", "ls", *store_args, check=0).stdout.splitlines()]
    assert [f for f in ls if f[:2] == [src.name, "INSTALL"]], ls
    assert [f for f in ls if f[:2] == [src.name, "BUILD"] and bid in f], ls


CHAIN_FILES = {"wt.txt": "v1\n", "wt-del.txt": "working-tree\n"}


def test_a_restored_build_keeps_checkpoints(cbl, home, root_only):
    src = cbl.project("chain", CHAIN_SPEC, CHAIN_FILES)
    subprocess.run(["git", "init", "-q", str(src)], check=True)
    chain(cbl, home, src, "trusted.overlay.opaque")
    assert (src / "wt-del.txt").read_text() == "working-tree\n"


def test_a_restored_build_keeps_checkpoints_stacked_root_layer(cbl, home, tmp_path, root_only):
    """No spare ready and the store on another filesystem than /: the
    checkpoint's root-layer/ is stacked read-only below the build's upper
    layer, and the new checkpoint holds both."""
    import shutil
    import tempfile
    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat("/").st_dev:
        pytest.skip("no /dev/shm on another filesystem than /")
    store = tempfile.mkdtemp(prefix="cbl-chain-", dir="/dev/shm")
    orig = cbl

    def run(*args, **kw):
        for s in pathlib.Path(store).glob("checkpoints/*/*/.spare-*"):
            shutil.rmtree(s)  # never ready: stacked
        return orig(*args, **kw)
    try:
        src = cbl.project("chainro", CHAIN_SPEC, CHAIN_FILES)
        subprocess.run(["git", "init", "-q", str(src)], check=True)
        home2 = tmp_path / "h2"  # checkpoints(home2): the store's
        home2.mkdir()
        os.symlink(store, home2 / "cache")
        chain(run, home2, src, "trusted.overlay.opaque", ("--cache-dir", store), stacked=True)
    finally:
        remove_store(store)


def test_a_normal_users_restored_build_keeps_checkpoints(user):
    src = user_project(user, "chainu", CHAIN_SPEC, CHAIN_FILES)
    chain(user, user.home, src, "user.overlay.opaque")
    assert (src / "wt-del.txt").read_text() == "working-tree\n"


SUBID_CHAIN_SPEC = """version: 0.2
phases:
  install:
    commands:
      - mkdir -p sec && echo only-codebuild-user > sec/f && chmod 600 sec/f && chown -R codebuild-user sec && chmod 700 sec
  build:
    commands:
      - echo from-build > sec/g && chown codebuild-user sec/g && chmod 600 sec/g
  post_build:
    run-as: codebuild-user
    commands:
      - echo "sec=$(cat sec/f sec/g | tr '\\n' ' ')owner=$(stat -c '%U %a' sec/f)"
"""


def test_a_normal_users_restored_build_flattens_subordinate_id_files(user):
    """INSTALL leaves a 0600 file of codebuild-user (one of the user's
    subordinate ids) in a 0700 directory of it, which the runner can neither
    read nor link (protected_hardlinks); the restored BUILD adds one beside
    it: its checkpoint holds both (the old one linked in the sandbox's user
    namespace), and POST_BUILD as codebuild-user reads them."""
    base = subid_base(user.pw.pw_name)
    if base is None:
        pytest.skip(f"{user.pw.pw_name} has no subordinate ids")
    import shutil
    src = user_project(user, "chainids", SUBID_CHAIN_SPEC)
    want = "sec=only-codebuild-user from-build owner=codebuild-user 600"
    full = user("run", src, check=0)
    assert [l for l in full.stdout.splitlines() if l.startswith("sec=")] == [want], full.output
    cps = by_phase(user.home)
    shutil.rmtree(cps["BUILD"])
    old = cps["INSTALL"] / "layer" / "sec" / "f"
    st = os.lstat(old)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (base + 999, 0o600)
    before = tree_state(cps["INSTALL"])
    p = user("run", "--from-phase", "BUILD", src, check=0)
    assert "Checkpoint of BUILD kept" in p.output, p.output
    cps = by_phase(user.home)
    new = cps["BUILD"] / "layer" / "sec" / "f"
    nst = os.lstat(new)
    assert (nst.st_uid, stat.S_IMODE(nst.st_mode)) == (base + 999, 0o600)
    # linked, in the sandbox's user namespace (the runner itself may not:
    # protected_hardlinks, a file it cannot read)
    assert nst.st_ino == st.st_ino
    assert tree_state(cps["INSTALL"]) == before
    p = user("run", "--from-phase", "POST_BUILD", src, check=0)
    assert [l for l in p.stdout.splitlines() if l.startswith("sec=")] == [want], p.output


IMAGE_CHAIN_SPEC = """version: 0.2
phases:
  install:
    commands:
      - mkdir -p /usr/local/bin /usr/local/lib && echo image-tool > /usr/local/bin/tool && echo lib > /usr/local/lib/l
      - rm /etc/os-release && echo in-root > /root/r
  build:
    commands:
      - echo build-tool > /usr/local/bin/b && echo changed > /root/r && rm /usr/local/lib/l
  post_build:
    commands:
      - echo "img=$(cat /usr/local/bin/tool)+$(cat /usr/local/bin/b) root=$(cat /root/r) osr=$(test -e /etc/os-release && echo present || echo deleted) lib=$(test -e /usr/local/lib/l && echo present || echo deleted)"
"""


def test_a_normal_users_restored_image_build_flattens_the_root_layer(user):
    """With an image, a restored build's root overlay stacks the
    checkpoint's root-layer/ below its own upper layer: its checkpoint holds
    both (INSTALL's tool and deletion, BUILD's file, change and deletion)."""
    import shutil
    busybox_image(user, "cbl-ckpt/chain:v1")
    src = user_project(user, "imgchain", IMAGE_CHAIN_SPEC)
    want = "img=image-tool+build-tool root=changed osr=deleted lib=deleted"
    full = user("run", "-i", "cbl-ckpt/chain:v1", src, check=0)
    assert [l for l in full.stdout.splitlines() if l.startswith("img=")] == [want], full.output
    cps = by_phase(user.home)
    shutil.rmtree(cps["BUILD"])
    before = tree_state(cps["INSTALL"])
    p = user("run", "-i", "cbl-ckpt/chain:v1", "--from-phase", "BUILD", src, check=0)
    assert "Checkpoint of BUILD kept" in p.output, p.output
    rl = by_phase(user.home)["BUILD"] / "root-layer"
    assert (rl / "usr" / "local" / "bin" / "tool").read_text() == "image-tool\n"
    assert (rl / "usr" / "local" / "bin" / "b").read_text() == "build-tool\n"
    assert (rl / "root" / "r").read_text() == "changed\n"
    for gone in ("etc/os-release", "usr/local/lib/l"):
        wh = os.lstat(rl / gone)
        assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0, gone
    assert tree_state(cps["INSTALL"]) == before
    p = user("run", "-i", "cbl-ckpt/chain:v1", "--from-phase", "POST_BUILD", src, check=0)
    assert [l for l in p.stdout.splitlines() if l.startswith("img=")] == [want], p.output
    user("images", "prune")


FUSE_CHAIN_SPEC = """version: 0.2
phases:
  install:
    commands:
      - mkdir -p /opt/cbl-fz/keep /opt/cbl-fz/opq && echo install-keep > /opt/cbl-fz/keep/a && echo install-old > /opt/cbl-fz/opq/old
      - echo install-del > /opt/cbl-fz/del && rm /etc/debian_version
  build:
    commands:
      - echo build-new > /opt/cbl-fz/keep/b && rm /opt/cbl-fz/del && rm -rf /opt/cbl-fz/opq && mkdir /opt/cbl-fz/opq
      - echo fresh > /opt/cbl-fz/opq/fresh
  post_build:
    commands:
      - echo "post=$(ls /opt/cbl-fz/keep | tr '\\n' ,) opq=$(ls /opt/cbl-fz/opq | tr '\\n' ,) del=$(test -e /opt/cbl-fz/del && echo present || echo deleted) deb=$(test -e /etc/debian_version && echo present || echo deleted)"
"""


def test_a_normal_users_restored_fuse_build_flattens_the_root_layer(user, fuse_node):
    """Through fuse-overlayfs: a restored BUILD's checkpoint holds INSTALL's
    root changes under its own (fuse-overlayfs's forms: a directory BUILD
    replaced stays opaque, the deletions stay deleted), so POST_BUILD under
    --from-phase sees exactly INSTALL's then BUILD's state."""
    import shutil
    fuse_user(user, fuse_node)
    want = "post=a,b, opq=fresh, del=deleted deb=deleted"
    src = user_project(user, "fzc", FUSE_CHAIN_SPEC)
    full = user("run", src, check=0, timeout=120)
    assert [l for l in full.stdout.splitlines() if l.startswith("post=")] == [want], full.output
    cps = by_phase(user.home)
    assert set(cps) == {"INSTALL", "BUILD"}, cps
    shutil.rmtree(cps["BUILD"])
    install_before = tree_state(cps["INSTALL"])
    p = user("run", "--from-phase", "BUILD", src, check=0, timeout=120)
    assert "Checkpoint of BUILD kept" in p.output, p.output
    cps = by_phase(user.home)
    assert tree_state(cps["INSTALL"]) == install_before  # the restored one unchanged
    rl = cps["BUILD"] / "root-layer"
    assert (rl / "opt" / "cbl-fz" / "keep" / "a").read_text() == "install-keep\n"  # from INSTALL's layer
    assert (rl / "opt" / "cbl-fz" / "keep" / "b").read_text() == "build-new\n"
    assert not (rl / "opt" / "cbl-fz" / "opq" / "old").exists()
    p = user("run", "--from-phase", "POST_BUILD", src, check=0, timeout=120)
    assert "Restored from the checkpoint, not run" in p.output, p.output
    assert [l for l in p.stdout.splitlines() if l.startswith("post=")] == [want], p.output
    assert os.path.exists("/etc/debian_version") and not os.path.exists("/opt/cbl-fz")
