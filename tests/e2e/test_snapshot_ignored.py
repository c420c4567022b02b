"""Issue 15, item 3: the snapshot of a git working tree shows what a push would build:
tracked files with their working-tree changes and untracked files that are not ignored,
never what git ignores (a host `npm install`'s node_modules); `--source-mode all` keeps
the ignored files. The overlay hides them with whiteouts, the copy skips them."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import BIN

SPEC = """version: 0.2
phases:
  build:
    commands:
      - test -e node_modules/left-pad/marker.js && echo CHECK marker-present || echo CHECK marker-absent
      - test -e .env && echo CHECK env-present || echo CHECK env-absent
      - test -e app/node_modules && echo CHECK nested-present || echo CHECK nested-absent
      - if test -e notes.txt && test -e app/new.js; then echo CHECK untracked-present; fi
      - echo "CHECK tracked=$(cat index.js)"
      - mkdir -p node_modules && echo built > node_modules/from-build.txt
"""


def git(src, *args):
    subprocess.run(["git", "-C", str(src), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                   check=True, capture_output=True)


def make_repo(cbl, name="ign"):
    """A repository after a host `npm install`: an ignored node_modules (a marker and
    many files), an ignored .env, an ignored node_modules inside a new directory,
    untracked files that are not ignored, a tracked file modified."""
    src = cbl.project(name, SPEC, files={".gitignore": "node_modules/\n.env\n", "index.js": "v1\n"})
    subprocess.run(["git", "init", "-q", str(src)], check=True)
    git(src, "add", ".")
    git(src, "commit", "-q", "-m", "c1")
    (src / "index.js").write_text("v2\n")
    pkg = src / "node_modules" / "left-pad"
    pkg.mkdir(parents=True)
    (pkg / "marker.js").write_text("module.exports = 1\n")
    for i in range(300):
        (pkg / f"f{i}.js").write_text("x\n")
    (src / ".env").write_text("SECRET=1\n")
    (src / "notes.txt").write_text("untracked\n")
    (src / "app" / "node_modules" / "dep").mkdir(parents=True)
    (src / "app" / "node_modules" / "dep" / "i.js").write_text("d\n")
    (src / "app" / "new.js").write_text("new\n")
    return src


def checks(out):
    return set(re.findall(r"^CHECK (\S+)$", out, re.M))


@pytest.mark.parametrize("sandbox", ["namespaces", "none"])
def test_ignored_files_left_out_by_default_and_kept_with_all(cbl, sandbox):
    src = make_repo(cbl)
    p = cbl("run", "--sandbox", sandbox, src, check=0)
    got = checks(p.output)
    assert {"marker-absent", "env-absent", "nested-absent", "untracked-present", "tracked=v2"} <= got, p.output
    # the log: how many, a few names, the flag that brings them back
    assert ("[codebuild-local] Source snapshot: 3 git-ignored paths left out as a cloud build would not have "
            "them (.env, app/node_modules/, node_modules/); --source-mode all keeps them") in p.output, p.output
    # what git ignores is not counted as untracked; the untracked files are
    assert "2 untracked and 1 modified file(s)" in p.output, p.output
    # the working tree is untouched, the build's node_modules went nowhere
    assert (src / "node_modules" / "left-pad" / "marker.js").exists()
    assert not (src / "node_modules" / "from-build.txt").exists()

    p = cbl("run", "--sandbox", sandbox, "--source-mode", "all", src, check=0)
    got = checks(p.output)
    assert {"marker-present", "env-present", "nested-present", "untracked-present", "tracked=v2"} <= got, p.output
    assert "Source snapshot: git-ignored files kept (--source-mode all)" in p.output
    assert "left out" not in p.output
    assert not (src / "node_modules" / "from-build.txt").exists()

    # mount mode: the directory itself, everything in it
    p = cbl("run", "--sandbox", sandbox, "--source-mode", "mount", src, check=0)
    assert "marker-present" in checks(p.output)
    assert "Source snapshot" not in p.output
    (src / "node_modules" / "from-build.txt").unlink()


def test_source_mode_takes_all(cbl):
    src = cbl.project("modes", "version: 0.2\nphases:\n  build:\n    commands: [true]\n")
    p = cbl("run", "--source-mode", "every", src, check=2)
    assert "--source-mode takes snapshot, all or mount, got 'every'" in p.output
    p = cbl("run", "--help", check=0)
    assert "all: the same view with the" in p.output


def test_not_a_repository_keeps_everything(cbl):
    src = cbl.project("plain", SPEC, files={".gitignore": "node_modules/\n", "index.js": "v1\n"})
    (src / "node_modules" / "left-pad").mkdir(parents=True)
    (src / "node_modules" / "left-pad" / "marker.js").write_text("1\n")
    p = cbl("run", src, check=0)
    assert "marker-present" in checks(p.output)
    assert "Source snapshot" not in p.output


def test_secondary_source_leaves_ignored_out(cbl):
    src = cbl.project("prim", """version: 0.2
phases:
  build:
    commands:
      - test -e "$CODEBUILD_SRC_DIR_lib/node_modules/left-pad/marker.js" && echo CHECK lib-marker-present || echo CHECK lib-marker-absent
      - test -e "$CODEBUILD_SRC_DIR_lib/notes.txt" && echo CHECK lib-untracked-present
""")
    lib = make_repo(cbl, "lib")
    p = cbl("run", "--secondary-source", f"lib={lib}", src, check=0)
    assert {"lib-marker-absent", "lib-untracked-present"} <= checks(p.output), p.output
    assert "Source snapshot of secondary source lib: 3 git-ignored paths left out" in p.output


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root to drop to an unprivileged user")
def test_ignored_files_left_out_unprivileged(cbl):
    """As a normal user (the snapshot is a copy there): the same view."""
    base = tempfile.mkdtemp(prefix="cbl-ign-")
    try:
        os.chmod(base, 0o777)
        src = make_repo(cbl)
        dst = os.path.join(base, "src")
        shutil.copytree(src, dst, symlinks=True)
        subprocess.run(["chown", "-R", "65534:65534", base], check=True)
        env = dict(os.environ, HOME=base, CODEBUILD_LOCAL_HOME=os.path.join(base, "state"),
                   GIT_CONFIG_NOSYSTEM="1")
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(BIN),
                            "run", "--network", "none", dst], env=env, capture_output=True, text=True,
                           timeout=120)
        out = p.stdout + p.stderr
        assert p.returncode == 0, out
        assert {"marker-absent", "env-absent", "nested-absent", "untracked-present"} <= checks(out), out
        assert "3 git-ignored paths left out" in out
    finally:
        shutil.rmtree(base, ignore_errors=True)
