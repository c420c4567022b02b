"""Source snapshots as a normal user (cbl-rootless through setpriv): the
sandbox mounts each local directory as an overlay in its user namespace, so
a build costs the same whatever the tree's size, never changes the working
tree, and the runner reads its results through a descriptor of that overlay.
Where the kernel refuses the overlay, a copy, said in the log."""
import os
import re
import subprocess
import zipfile

import pytest

from conftest import UserRunner, rootless_user


@pytest.fixture
def user():
    r = UserRunner(rootless_user())
    try:
        yield r
    finally:
        r.cleanup()


def mount_line(p, inner):
    """The build's mountinfo line for inner (printed by the build)."""
    for line in p.output.splitlines():
        f = line.split()
        if len(f) > 9 and f[4] == inner:
            return line
    return None


SPEC = """version: 0.2
phases:
  build:
    commands:
      - grep " $CODEBUILD_SRC_DIR " /proc/self/mountinfo
      - cat keep.txt
      - echo changed > edit.txt
      - rm gone.txt
      - mkdir -p dist && echo built > dist/out.txt
artifacts:
  files:
    - '**/*'
"""


def test_snapshot_is_an_overlay_in_the_user_namespace(user):
    src = user.project("app", SPEC, {"keep.txt": "kept\n", "edit.txt": "original\n", "gone.txt": "x\n"})
    before = {p.name: p.read_text() for p in src.iterdir() if p.is_file()}
    out = user.tmp_path / "out"
    p = user("run", "-a", out, src, check=0)
    inner = re.search(r"CODEBUILD_SRC_DIR=(\S+)", p.output).group(1)
    line = mount_line(p, inner)
    assert line and " - overlay overlay " in line and "userxattr" in line, p.output
    assert "lowerdir=%s," % src in line, line
    assert "WARNING: source snapshot" not in p.output
    # the working tree is as it was
    assert {p.name: p.read_text() for p in src.iterdir() if p.is_file()} == before
    assert not (src / "dist").exists()
    # no copy of the tree in the build's directory
    build_dir = re.search(r"^Record:\s+(\S+)/build\.json$", p.output, re.M).group(1)
    assert not os.path.exists(os.path.join(build_dir, "src"))
    # the artifacts are the build's view: its changes, read after the sandbox ended
    with zipfile.ZipFile(out / "artifacts.zip") as z:
        names = set(z.namelist())
        assert {"keep.txt", "edit.txt", "dist/out.txt", "buildspec.yml"} <= names, names
        assert "gone.txt" not in names
        assert z.read("edit.txt") == b"changed\n" and z.read("dist/out.txt") == b"built\n"


def test_secondary_directories_are_overlays_too(user):
    spec = """version: 0.2
phases:
  build:
    commands:
      - grep " $CODEBUILD_SRC_DIR_lib " /proc/self/mountinfo
      - echo new > $CODEBUILD_SRC_DIR_lib/new.txt
      - rm $CODEBUILD_SRC_DIR_lib/old.txt
      - echo primary > primary.txt
artifacts:
  files:
    - primary.txt
  secondary-artifacts:
    lib:
      files:
        - '**/*'
      base-directory: $CODEBUILD_SRC_DIR_lib
"""
    src = user.project("multi", spec)
    lib = user.project("lib", "version: 0.2\n", {"old.txt": "old\n"})
    out = user.tmp_path / "out"
    p = user("run", "-a", out, "--secondary-source", "lib=%s" % lib, src, check=0)
    inner = re.search(r"CODEBUILD_SRC_DIR_lib=(\S+)", p.output).group(1)
    line = mount_line(p, inner)
    assert line and " - overlay overlay " in line and "lowerdir=%s," % lib in line, p.output
    assert (lib / "old.txt").exists() and not (lib / "new.txt").exists()
    assert not (src / "primary.txt").exists()
    with zipfile.ZipFile(out / "lib.zip") as z:
        assert sorted(z.namelist()) == ["buildspec.yml", "new.txt"]
    with zipfile.ZipFile(out / "artifacts.zip") as z:
        assert z.namelist() == ["primary.txt"]


def test_a_refused_overlay_falls_back_to_a_copy(user):
    """A mount under the source: overlayfs refuses to clone such a layer in a
    user namespace.  The log says so and why; the build gets a copy."""
    src = user.project("mounted", SPEC, {"keep.txt": "kept\n", "edit.txt": "original\n", "gone.txt": "x\n"})
    sub = src / "sub"
    sub.mkdir()
    other = user.tmp_path / "other"
    other.mkdir()
    (other / "inner.txt").write_text("under a mount\n")
    user.own(other)
    user.own(sub)
    subprocess.run(["mount", "--bind", str(other), str(sub)], check=True)
    try:
        out = user.tmp_path / "out"
        p = user("run", "-a", out, src, check=0)
    finally:
        subprocess.run(["umount", str(sub)], check=False)
    assert re.search(r"WARNING: source snapshot of %s: the kernel refused an overlay in the user namespace "
                     r"\(mount an overlay of .*: .+\): the build gets a copy instead" % re.escape(str(src)),
                     p.output), p.output
    assert (src / "gone.txt").exists() and (src / "edit.txt").read_text() == "original\n"
    with zipfile.ZipFile(out / "artifacts.zip") as z:
        assert z.read("sub/inner.txt") == b"under a mount\n"
        assert z.read("edit.txt") == b"changed\n" and "gone.txt" not in z.namelist()
