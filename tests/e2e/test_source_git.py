"""`codebuild-local run GIT-URL`: sources cloned from a real git smart-HTTP
server on 127.0.0.1 (git http-backend), the way CodeBuild clones them."""
import os
import shutil
import re
import subprocess

import pytest

from gitserver import GitServer

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=main",
       "-c", "protocol.file.allow=always"]

BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - echo "CHECK commits=$(git rev-list --count HEAD) head=$(git rev-parse HEAD)"
      - echo "CHECK resolved=$CODEBUILD_RESOLVED_SOURCE_VERSION version=$CODEBUILD_SOURCE_VERSION"
      - echo "CHECK file=$(cat version.txt)"
      - echo "CHECK sub=$(cat lib/lib.txt 2>/dev/null || echo none)"
"""


def git(*args, cwd=None):
    return subprocess.run(GIT + list(args), cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    root = tmp_path_factory.mktemp("repos")
    lib = root / "lib.git"
    work = root / "work-lib"
    git("init", "-q", str(work))
    (work / "lib.txt").write_text("lib v1\n")
    git("add", ".", cwd=work)
    git("commit", "-q", "-m", "lib", cwd=work)
    git("clone", "-q", "--bare", str(work), str(lib))
    app = root / "work-app"
    git("init", "-q", str(app))
    (app / "buildspec.yml").write_text(BUILDSPEC)
    shas = {}
    for i in range(1, 6):
        (app / "version.txt").write_text(f"main {i}\n")
        git("add", ".", cwd=app)
        git("commit", "-q", "-m", f"c{i}", cwd=app)
        shas[i] = git("rev-parse", "HEAD", cwd=app)
    git("tag", "-a", "v1.0", "-m", "v1.0", shas[3], cwd=app)
    git("checkout", "-q", "-b", "feature", cwd=app)
    (app / "version.txt").write_text("feature\n")
    git("commit", "-q", "-am", "f1", cwd=app)
    shas["feature"] = git("rev-parse", "HEAD", cwd=app)
    git("checkout", "-q", "main", cwd=app)
    git("update-ref", "refs/pull/7/head", shas["feature"], cwd=app)
    bare = root / "app.git"
    git("clone", "-q", "--bare", "--mirror", str(app), str(bare))
    git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=bare)
    # a repository with a submodule, relative URL
    sm = root / "work-sm"
    git("init", "-q", str(sm))
    (sm / "buildspec.yml").write_text(BUILDSPEC)
    (sm / "version.txt").write_text("with submodule\n")
    git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "lib", cwd=sm)
    git("config", "-f", ".gitmodules", "submodule.lib.url", "../lib.git", cwd=sm)
    git("add", ".", cwd=sm)
    git("commit", "-q", "-m", "sm", cwd=sm)
    git("clone", "-q", "--bare", str(sm), str(root / "sm.git"))
    with GitServer(root) as srv:
        yield srv, shas, root


def check(p, key):
    m = re.search(rf"^CHECK (?:\S+=\S* )*{key}=(\S*)", p.output, re.M)
    assert m, p.output
    return m.group(1)


def test_default_branch_depth_1(cbl, repos):
    srv, shas, _ = repos
    p = cbl("run", srv.url("app.git"), check=0)
    assert check(p, "commits") == "1"
    assert check(p, "head") == shas[5] and check(p, "resolved") == shas[5]
    assert check(p, "file") == "main"
    assert "Cloning http://127.0.0.1:" in p.output
    assert re.search(r"CODEBUILD_SRC_DIR=/codebuild/output/src\d+/src", p.output)


def test_depth_n_and_full(cbl, repos):
    srv, shas, _ = repos
    p = cbl("run", "--clone-depth", "3", srv.url("app.git"), check=0)
    assert check(p, "commits") == "3"
    p = cbl("run", "--clone-depth", "0", srv.url("app.git"), check=0)
    assert check(p, "commits") == "5"


@pytest.mark.parametrize("version,expect", [
    ("feature", "feature"), ("v1.0", "c3"), ("refs/pull/7/head", "feature"), ("pr/7", "feature"),
])
def test_versions(cbl, repos, version, expect):
    srv, shas, _ = repos
    p = cbl("run", "--source-version", version, srv.url("app.git"), check=0)
    want = shas["feature"] if expect == "feature" else shas[3]
    assert check(p, "head") == want
    assert check(p, "version") == version


def test_commit_sha_and_branch_sha(cbl, repos):
    srv, shas, _ = repos
    p = cbl("run", "--source-version", shas[2], srv.url("app.git"), check=0)
    assert check(p, "head") == shas[2] and check(p, "commits") == "1"
    p = cbl("run", "--source-version", f"main^{{{shas[4]}}}", srv.url("app.git"), check=0)
    assert check(p, "head") == shas[4]


def test_submodules(cbl, repos):
    srv, _, _ = repos
    p = cbl("run", "--fetch-submodules", srv.url("sm.git"), check=0)
    assert check(p, "sub") == "lib"
    p = cbl("run", srv.url("sm.git"), check=0)
    assert check(p, "sub") == "none"


def test_unknown_ref_fails_download_source(cbl, repos):
    srv, _, _ = repos
    p = cbl("run", "--source-version", "no-such-branch", srv.url("app.git"), check=1)
    assert "Phase complete: DOWNLOAD_SOURCE State: FAILED" in p.output
    assert re.search(r"Phase context status code: CLIENT_ERROR Message: .*no-such-branch", p.output)
    assert "Entering phase" not in p.output


def test_unreachable_and_missing_repo(cbl, repos):
    srv, _, _ = repos
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = cbl("run", f"http://127.0.0.1:{port}/app.git", check=1, timeout=60)
    assert re.search(r"CLIENT_ERROR Message: cannot reach http://127\.0\.0\.1:\d+/app\.git", p.output), p.output
    p = cbl("run", srv.url("nope.git"), check=1)
    assert "CLIENT_ERROR Message: repository not found" in p.output


def test_file_url_and_record(cbl, repos):
    _, shas, root = repos
    p = cbl("run", "--sandbox", "none", "--clone-depth", "2", f"file://{root}/app.git", check=0)
    assert check(p, "commits") == "2"
    rec_id = re.search(r"Build (\S+:[0-9a-f-]{36}) ", p.output).group(1)
    assert rec_id.startswith("app:")
    import json
    rec = json.loads(cbl("batch-get-builds", "--ids", rec_id, check=0).stdout)["builds"][0]
    assert rec["resolvedSourceVersion"] == shas[5]
    assert rec["source"]["gitCloneDepth"] == 2 and rec["source"]["location"] == f"file://{root}/app.git"


@pytest.mark.parametrize("sandbox", ["namespaces", "none"])
def test_git_credential_helper(cbl, tmp_path, sandbox):
    home = tmp_path / "home"
    home.mkdir()
    (home / ".git-credentials").write_text("http://bob:s3cret-token@127.0.0.1%3a9\n")
    src = cbl.project("credhelper", """version: 0.2
env:
  git-credential-helper: yes
phases:
  build:
    commands:
      - printf 'protocol=http\\nhost=127.0.0.1:9\\n\\n' | git credential fill | sed -n 's/^username=/CHECK user=/p'
""")
    p = cbl("run", "--sandbox", sandbox, src, env={"HOME": str(home)}, check=0)
    assert "CHECK user=bob" in p.output, p.output
    src2 = cbl.project("nohelper", "version: 0.2\nenv:\n  git-credential-helper: yes\nphases:\n  build:\n    commands:\n      - 'true'\n")
    p = cbl("run", "--sandbox", sandbox, src2, env={"HOME": str(tmp_path)}, check=0)
    assert "there is no ~/.git-credentials" in p.output


# --- local repositories: file:// read straight from the source's objects ---

LOCAL_BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - |
        echo "CHECK objects=$(git cat-file --batch-all-objects --batch-check='%(objectname) %(objecttype)' | sort | md5sum | cut -c1-32)"
        echo "CHECK shallow=$(sort .git/shallow 2>/dev/null | md5sum | cut -c1-32) commits=$(git rev-list --all | wc -l)"
        git fsck --connectivity-only >/dev/null 2>&1 && git fsck >/dev/null 2>&1 && echo "CHECK fsck=ok"
        echo "CHECK head=$(git rev-parse HEAD) resolved=$CODEBUILD_RESOLVED_SOURCE_VERSION"
        echo "CHECK status=$(git status --porcelain | wc -l) files=$(git ls-files | wc -l)"
"""


def md5(text):
    import hashlib
    return hashlib.md5(text.encode()).hexdigest()


def clone_facts(d):
    """What LOCAL_BUILDSPEC prints, for a clone made here with git."""
    objs = subprocess.run(["git", "-C", str(d), "cat-file", "--batch-all-objects",
                           "--batch-check=%(objectname) %(objecttype)"],
                          check=True, capture_output=True, text=True).stdout
    shallow = d / ".git" / "shallow"
    lines = sorted(shallow.read_text().splitlines()) if shallow.exists() else []
    commits = git("-C", str(d), "rev-list", "--all").splitlines()
    return {"objects": md5("".join(sorted(objs.splitlines(keepends=True)))),
            "shallow": md5("".join(l + "\n" for l in lines)), "commits": str(len(commits))}


@pytest.fixture(scope="module")
def local_repos(tmp_path_factory):
    """A repository like a project's mirror: 8 commits of 60 files, a
    release tag, a pull request with its head and merge refs; a copy lacks
    the one blob only refs/pull/1150/merge reaches (the issue's mirror)."""
    root = tmp_path_factory.mktemp("local")
    work = root / "work"
    git("init", "-q", str(work))
    (work / "buildspec.yml").write_text(LOCAL_BUILDSPEC)
    shas = {}
    for i in range(1, 9):
        for d in range(6):
            (work / f"pkg{d}").mkdir(exist_ok=True)
            for f in range(10):
                if (d + f + i) % 3 == 0 or i == 1:
                    (work / f"pkg{d}" / f"f{f}.go").write_text(f"package p{d} // {f} rev {i}\n")
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", f"c{i}", cwd=work)
        shas[i] = git("rev-parse", "HEAD", cwd=work)
    git("tag", "-a", "v1.21.0", "-m", "v1.21.0", shas[5], cwd=work)
    git("checkout", "-q", "-b", "pr", shas[6], cwd=work)
    (work / "pr.txt").write_text("the pull request\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "pr", cwd=work)
    git("update-ref", "refs/pull/1150/head", "HEAD", cwd=work)
    git("checkout", "-q", "--detach", "main", cwd=work)
    git("merge", "-q", "--no-ff", "pr", "-m", "merge 1150", cwd=work)
    (work / "merge-only.txt").write_text("only the merge has this\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "--amend", "-m", "merge 1150", cwd=work)
    git("update-ref", "refs/pull/1150/merge", "HEAD", cwd=work)
    git("checkout", "-q", "main", cwd=work)
    git("branch", "-D", "pr", cwd=work)
    blob = git("rev-parse", "refs/pull/1150/merge:merge-only.txt", cwd=work)
    for name in ("app.git", "mirror.git"):
        git("clone", "-q", "--mirror", str(work), str(root / name))
    loose = root / "mirror.git" / "objects" / blob[:2] / blob[2:]
    assert loose.is_file()
    loose.unlink()
    return root, shas, blob


def test_file_url_tag_from_a_mirror_lacking_another_refs_blob(cbl, local_repos, tmp_path):
    root, shas, _ = local_repos
    url = f"file://{root}/mirror.git"
    p = cbl("run", "--sandbox", "none", "--source-version", "v1.21.0", url, check=0)
    g = tmp_path / "g"
    subprocess.run(["git", "-c", "advice.detachedHead=false", "clone", "-q", "--depth", "1", "--no-tags",
                    "--branch", "v1.21.0", url, str(g)], check=True)
    want = clone_facts(g)
    assert check(p, "objects") == want["objects"]
    assert check(p, "shallow") == want["shallow"] and check(p, "commits") == want["commits"] == "1"
    assert check(p, "fsck") == "ok"
    assert check(p, "head") == shas[5] and check(p, "resolved") == shas[5]
    assert check(p, "status") == "0"
    assert check(p, "files") == str(len(git("-C", str(g), "ls-files").splitlines()))


def test_file_url_depth_3_like_git_clone(cbl, local_repos, tmp_path):
    root, shas, _ = local_repos
    url = f"file://{root}/app.git"
    p = cbl("run", "--sandbox", "none", "--clone-depth", "3", url, check=0)
    g = tmp_path / "g"
    subprocess.run(["git", "clone", "-q", "--depth", "3", "--no-tags", url, str(g)], check=True)
    want = clone_facts(g)
    assert check(p, "objects") == want["objects"]
    assert check(p, "shallow") == want["shallow"] and check(p, "commits") == want["commits"] == "3"
    assert check(p, "fsck") == "ok" and check(p, "head") == shas[8]


def test_file_url_missing_object_inside_the_window(cbl, local_repos):
    root, _, blob = local_repos
    url = f"file://{root}/mirror.git"
    p = cbl("run", "--sandbox", "none", "--source-version", "refs/pull/1150/merge", url, check=1)
    assert "Phase complete: DOWNLOAD_SOURCE State: FAILED" in p.output
    assert re.search(rf"CLIENT_ERROR Message: the source repository {re.escape(url)} lacks object {blob} "
                     rf"\(needed for refs/pull/1150/merge at depth 1\)", p.output), p.output
    # the pull request's head does not need it
    p = cbl("run", "--sandbox", "none", "--source-version", "pr/1150", url, check=0)
    assert check(p, "fsck") == "ok"


def test_local_paths_stay_directory_sources(cbl, local_repos, tmp_path):
    # only file:// is cloned; a path (a work tree, a bare repository) is a
    # directory source, snapshotted as it is (runner_source_is_url)
    root, _, _ = local_repos
    work = tmp_path / "checkout"
    git("clone", "-q", str(root / "app.git"), str(work))
    (work / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    commands:\n"
                                        "      - echo \"CHECK untracked=$(cat untracked.txt)\"\n")
    (work / "untracked.txt").write_text("here\n")
    p = cbl("run", "--sandbox", "none", work, check=0)
    assert check(p, "untracked") == "here" and "Cloning" not in p.output
    # a buildspec path names a file in the source: a copy of the bare
    # repository holds one
    bare = tmp_path / "bare.git"
    shutil.copytree(root / "app.git", bare)
    (bare / "bs.yml").write_text("version: 0.2\nphases:\n  build:\n    commands:\n"
                                 "      - echo \"CHECK objects=$(test -d objects && echo yes) head=$(cat HEAD)\"\n")
    p = cbl("run", "--sandbox", "none", "-b", "bs.yml", bare, check=0)
    assert check(p, "head") == "ref:" and check(p, "objects") == "yes" and "Cloning" not in p.output
