"""Secondary sources (`--secondary-source ID=DIR|URL[@VERSION]`): every source
in a numbered folder as on the service (primary in src/s3/00, secondaries in
s3/01, ...), each at CODEBUILD_SRC_DIR_<id>, in the record's secondarySources
and secondarySourceVersions; local directories are snapshots (or mounts),
git URLs are shallow clones from a real smart-HTTP server on 127.0.0.1."""
import json
import re
import subprocess
import zipfile

import pytest

from gitserver import GitServer

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=main"]

BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - echo "CHECK src=$CODEBUILD_SRC_DIR"
      - echo "CHECK lib=$CODEBUILD_SRC_DIR_lib"
      - echo "CHECK libver=$CODEBUILD_SOURCE_VERSION_lib"
      - echo "CHECK liburl=$CODEBUILD_SOURCE_REPO_URL_lib"
      - echo "CHECK libfile=$(cat $CODEBUILD_SRC_DIR_lib/lib.txt)"
      - echo "CHECK libcommits=$(cd $CODEBUILD_SRC_DIR_lib && git rev-list --count HEAD 2>/dev/null || echo none)"
      - echo "CHECK app=$(cat app.txt)"
      - echo rewritten > $CODEBUILD_SRC_DIR_lib/lib.txt
      - rm -f $CODEBUILD_SRC_DIR_lib/extra.txt app.txt
      - mkdir -p $CODEBUILD_SRC_DIR_lib/out && echo built > $CODEBUILD_SRC_DIR_lib/out/result.txt
artifacts:
  files: ['**/*']
  base-directory: $CODEBUILD_SRC_DIR_lib/out
"""


def git(*args, cwd=None):
    return subprocess.run(GIT + list(args), cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def check(p, key):
    m = re.search(rf"^CHECK {key}=(.*)$", p.output, re.M)
    assert m, p.output
    return m.group(1)


def record(p):
    m = re.search(r"^Record: (.+)$", p.output, re.M)
    assert m, p.output
    with open(m.group(1)) as f:
        return json.load(f)


@pytest.fixture
def sources(cbl, tmp_path):
    app = cbl.project("app", BUILDSPEC, {"app.txt": "app\n"})
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "lib.txt").write_text("lib v1\n")
    (lib / "extra.txt").write_text("extra\n")
    return app, lib


@pytest.mark.parametrize("sandbox", ["namespaces", "none"])
def test_local_secondary_snapshot(cbl, sources, tmp_path, sandbox):
    app, lib = sources
    out = tmp_path / "out"
    p = cbl("run", "--sandbox", sandbox, "--secondary-source", f"lib={lib}", "-a", out, app, check=0)
    src, libdir = check(p, "src"), check(p, "lib")
    assert src.endswith("/s3/00") and libdir.endswith("/s3/01")
    assert src[:-len("/s3/00")] == libdir[:-len("/s3/01")]
    if sandbox == "namespaces":
        assert re.fullmatch(r"/codebuild/output/src\d+/src/s3/00", src)
    assert f"CODEBUILD_SRC_DIR_lib={libdir}" in p.output
    assert check(p, "libfile") == "lib v1" and check(p, "app") == "app"
    # snapshots: neither tree changed
    assert (lib / "lib.txt").read_text() == "lib v1\n" and (lib / "extra.txt").exists()
    assert not (lib / "out").exists() and (app / "app.txt").exists()
    # artifacts from the secondary source's tree
    with zipfile.ZipFile(out / "artifacts.zip") as z:
        assert z.namelist() == ["result.txt"] and z.read("result.txt") == b"built\n"
    rec = record(p)
    assert rec["secondarySources"] == [
        {"type": "NO_SOURCE", "location": str(lib), "sourceIdentifier": "lib"}]
    assert rec["secondarySourceVersions"] == []  # not a repository: no version
    if sandbox == "namespaces":
        assert "Expanded to " + libdir + "/out" in p.output


def test_local_secondary_mount(cbl, sources, tmp_path):
    app, lib = sources
    p = cbl("run", "--source-mode", "mount", "--secondary-source", f"lib={lib}",
            "-a", tmp_path / "out", app, check=0)
    assert check(p, "lib").endswith("/s3/01")
    assert (lib / "lib.txt").read_text() == "rewritten\n" and not (lib / "extra.txt").exists()
    assert (lib / "out" / "result.txt").read_text() == "built\n"
    assert not (app / "app.txt").exists()
    assert zipfile.ZipFile(tmp_path / "out" / "artifacts.zip").namelist() == ["result.txt"]


def test_local_secondary_repository_version(cbl, sources):
    app, lib = sources
    git("init", "-q", str(lib))
    git("remote", "add", "origin", "https://user:pw@example.invalid/org/lib.git", cwd=lib)
    git("add", ".", cwd=lib)
    git("commit", "-q", "-m", "lib", cwd=lib)
    sha = git("rev-parse", "HEAD", cwd=lib)
    p = cbl("run", "--secondary-source", f"lib={lib}", app, check=0)
    assert check(p, "libver") == sha
    assert check(p, "liburl") == "https://***@example.invalid/org/lib.git"
    rec = record(p)
    assert rec["secondarySourceVersions"] == [{"sourceIdentifier": "lib", "sourceVersion": sha}]


@pytest.fixture(scope="module")
def libserver(tmp_path_factory):
    root = tmp_path_factory.mktemp("repos")
    work = root / "work-lib"
    git("init", "-q", str(work))
    for i in (1, 2, 3):
        (work / "lib.txt").write_text(f"lib v{i}\n")
        git("add", ".", cwd=work)
        git("commit", "-q", "-m", f"v{i}", cwd=work)
        if i == 2:
            git("tag", "v2", cwd=work)
    git("clone", "-q", "--bare", str(work), str(root / "lib.git"))
    with GitServer(root) as srv:
        yield srv


def test_git_secondary_with_version(cbl, sources, libserver):
    app, _ = sources
    url = libserver.url("lib.git")
    p = cbl("run", "--secondary-source", f"lib={url}@v2", app, check=0)
    assert check(p, "libfile") == "lib v2"
    assert check(p, "libcommits") == "1"          # depth 1, as git_clone_depth
    assert check(p, "libver") == "v2" and check(p, "liburl") == url
    rec = record(p)
    assert rec["secondarySources"][0]["location"] == url
    assert rec["secondarySources"][0]["gitCloneDepth"] == 1
    assert rec["secondarySourceVersions"] == [{"sourceIdentifier": "lib", "sourceVersion": "v2"}]
    p = cbl("run", "--clone-depth", "0", "--secondary-source", f"lib={url}", app, check=0)
    assert check(p, "libfile") == "lib v3" and check(p, "libcommits") == "3"


def test_git_primary_and_local_secondary(cbl, tmp_path, libserver, sources):
    _, lib = sources
    spec_repo = tmp_path / "primary"
    git("init", "-q", str(spec_repo))
    (spec_repo / "buildspec.yml").write_text(BUILDSPEC)
    (spec_repo / "app.txt").write_text("from git\n")
    git("add", ".", cwd=spec_repo)
    git("commit", "-q", "-m", "p", cwd=spec_repo)
    p = cbl("run", "--secondary-source", f"lib={lib}", f"file://{spec_repo}", check=0)
    assert check(p, "app") == "from git" and check(p, "libfile") == "lib v1"
    assert check(p, "src").endswith("/s3/00")


def test_git_secondary_not_found(cbl, sources, libserver):
    app, _ = sources
    p = cbl("run", "--secondary-source", f"lib={libserver.url('nope.git')}", app, check=1)
    rec = record(p)
    ph = {x["phaseType"]: x for x in rec["phases"]}
    assert ph["DOWNLOAD_SOURCE"]["phaseStatus"] == "FAILED"
    ctx = ph["DOWNLOAD_SOURCE"]["contexts"][0]
    assert ctx["statusCode"] == "CLIENT_ERROR"
    assert ctx["message"].startswith("secondary source lib: repository not found")


@pytest.mark.parametrize("arg,msg", [
    ("lib", "expects ID=DIR or ID=URL"),
    ("bad-id={lib}", "invalid secondary source identifier 'bad-id'"),
    ("lib={lib}/missing", "secondary source 'lib'"),
])
def test_bad_secondary_arguments(cbl, sources, arg, msg):
    app, lib = sources
    p = cbl("run", "--secondary-source", arg.format(lib=lib), app, check=2)
    assert msg in p.output


def test_duplicate_identifier(cbl, sources):
    app, lib = sources
    p = cbl("run", "--secondary-source", f"lib={lib}", "--secondary-source", f"lib={lib}", app, check=2)
    assert "secondary source identifier 'lib' given twice" in p.output


def test_scratch_trees_removed_after_the_build(cbl, sources, libserver, home):
    """Clones and copies go to <home>/trash and a detached remover deletes
    them: nothing of them is left in the build's directory, and the trash
    empties by itself."""
    import time
    app, lib = sources
    p = cbl("run", "--sandbox", "none", "--secondary-source", f"lib={lib}",
            "--secondary-source", f"g={libserver.url('lib.git')}", app, check=0)
    build_dir = record(p)["id"].split(":")[1]
    assert not list(home.glob(f"builds/*/{build_dir}/sources"))
    deadline = time.time() + 30
    while list((home / "trash").iterdir()) and time.time() < deadline:
        time.sleep(0.05)
    assert not list((home / "trash").iterdir())
