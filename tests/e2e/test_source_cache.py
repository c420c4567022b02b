"""`codebuild-local run --source-cache GIT-URL` (LOCAL_SOURCE_CACHE): the git
objects of a source are kept in <cache dir>/git between builds, so a later
build fetches only what is new.  A real git smart-HTTP server on 127.0.0.1
(git http-backend) serves the repositories."""
import hashlib
import os
import re
import subprocess

import pytest

from conftest import BIN
from gitserver import GitServer

GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=main"]

BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - echo "CHECK commits=$(git rev-list --count HEAD) head=$(git rev-parse HEAD)"
      - echo "CHECK file=$(cat version.txt) lib=$(cat $CODEBUILD_SRC_DIR_lib/lib.txt 2>/dev/null || echo none)"
      - git fsck >/dev/null 2>&1 && echo "CHECK fsck=ok" || echo "CHECK fsck=bad"
"""

USED = re.compile(r"Source cache: used \((\d+) objects cached\); (\d+) objects \(([^)]*)\) from the server")
EMPTY = re.compile(r"Source cache: empty for this repository; (\d+) objects \(([^)]*)\) from the server")


def git(*args, cwd=None):
    return subprocess.run(GIT + list(args), cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def check(p, key):
    m = re.search(rf"^CHECK (?:\S+=\S* )*{key}=(\S*)", p.output, re.M)
    assert m, p.output
    return m.group(1)


def store_key(url):
    # the URL without credentials, scheme and host lower-cased (source/cache.c)
    return hashlib.sha256(url.rstrip("/").encode()).hexdigest()


@pytest.fixture
def repos(tmp_path):
    """app: 300 files and a buildspec; lib: one file.  A fresh server per
    test: the tests push commits."""
    root = tmp_path / "repos"
    root.mkdir()
    work = tmp_path / "work"
    git("init", "-q", str(work))
    for d in range(15):
        (work / f"d{d}").mkdir()
        for f in range(20):
            (work / f"d{d}" / f"f{f}.txt").write_text(f"file {d}/{f}\n" + "x" * (f * 40) + "\n")
    (work / "buildspec.yml").write_text(BUILDSPEC)
    (work / "version.txt").write_text("one\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "one", cwd=work)
    git("init", "-q", "--bare", str(root / "app.git"))
    git("push", "-q", str(root / "app.git"), "main", cwd=work)
    lib = tmp_path / "lib"
    git("init", "-q", str(lib))
    (lib / "lib.txt").write_text("lib one\n")
    git("add", "-A", cwd=lib)
    git("commit", "-q", "-m", "lib", cwd=lib)
    git("init", "-q", "--bare", str(root / "lib.git"))
    git("push", "-q", str(root / "lib.git"), "main", cwd=lib)

    def commit(text):
        (work / "version.txt").write_text(text + "\n")
        git("commit", "-q", "-am", text, cwd=work)
        git("push", "-q", str(root / "app.git"), "main", cwd=work)
        return git("rev-parse", "HEAD", cwd=work)

    with GitServer(root) as srv:
        yield srv, commit


def test_second_build_fetches_only_what_is_new(cbl, repos):
    srv, commit = repos
    url = srv.url("app.git")
    p = cbl("run", "--source-cache", url, check=0)
    m = EMPTY.search(p.output)
    assert m, p.output
    cold = int(m.group(1))
    assert cold >= 300
    assert check(p, "file") == "one" and check(p, "commits") == "1" and check(p, "fsck") == "ok"
    store = cbl.home / "cache" / "git" / store_key(url)
    assert (store / "objects" / "pack").is_dir() and list((store / "objects" / "pack").glob("*.idx"))

    head = commit("two")
    p = cbl("run", "--source-cache", url, check=0)
    m = USED.search(p.output)
    assert m, p.output
    cached, got = int(m.group(1)), int(m.group(2))
    assert cached >= cold
    assert 0 < got <= 6, p.output  # commit, root tree, blob
    assert check(p, "file") == "two" and check(p, "head") == head
    assert check(p, "commits") == "1" and check(p, "fsck") == "ok"
    # the line comes after the clone, before the build
    assert p.output.index("Source cache: used") < p.output.index("Checked out commit")

    # depth 3 from a store that holds depth 1 of two commits: deepened, exact
    commit("three")
    p = cbl("run", "--source-cache", "--clone-depth", "3", url, check=0)
    assert USED.search(p.output), p.output
    assert check(p, "commits") == "3" and check(p, "file") == "three" and check(p, "fsck") == "ok"


def test_cache_dir_no_cache_and_off(cbl, repos, tmp_path):
    srv, _ = repos
    url = srv.url("app.git")
    p = cbl("run", url, check=0)
    assert "Source cache" not in p.output
    assert not (cbl.home / "cache" / "git").exists()
    p = cbl("run", "--source-cache", "--no-cache", url, check=0)
    assert "Source cache" not in p.output
    assert not (cbl.home / "cache" / "git").exists()
    cdir = tmp_path / "elsewhere"
    p = cbl("run", "--source-cache", "--cache-dir", cdir, url, check=0)
    assert EMPTY.search(p.output), p.output
    assert (cdir / "git" / store_key(url)).is_dir()
    # credentials in the URL name the same store
    authed = url.replace("http://", "http://user:tok3n@")
    p = cbl("run", "--source-cache", "--cache-dir", cdir, authed, check=0)
    assert USED.search(p.output), p.output
    assert "tok3n" not in p.output


def test_damaged_store_is_rebuilt(cbl, repos):
    srv, commit = repos
    url = srv.url("app.git")
    cbl("run", "--source-cache", url, check=0)
    store = cbl.home / "cache" / "git" / store_key(url)
    for pack in (store / "objects" / "pack").glob("*.pack"):
        os.chmod(pack, 0o644)
        with open(pack, "r+b") as f:
            f.truncate(64)
    commit("two")
    p = cbl("run", "--source-cache", url, check=0)
    assert re.search(r"Source cache: rebuilt \(it was damaged: pack-[0-9a-f]+ is damaged\)", p.output), p.output
    assert check(p, "file") == "two" and check(p, "fsck") == "ok"
    p = cbl("run", "--source-cache", url, check=0)
    m = USED.search(p.output)
    assert m and int(m.group(2)) == 0, p.output


def test_secondary_source(cbl, repos):
    srv, _ = repos
    args = ["run", "--source-cache", "--secondary-source", f"lib={srv.url('lib.git')}", srv.url("app.git")]
    p = cbl(*args, check=0)
    assert re.search(r"Source cache: empty for this repository; \d+ objects .* \(secondary source lib\)", p.output), \
        p.output
    assert check(p, "lib") == "lib"
    p = cbl(*args, check=0)
    assert re.search(r"Source cache: used \(\d+ objects cached\); 0 objects .* \(secondary source lib\)", p.output), \
        p.output
    assert check(p, "lib") == "lib"


def test_two_builds_at_once(cbl, repos):
    srv, commit = repos
    url = srv.url("app.git")
    cbl("run", "--source-cache", url, check=0)
    head = commit("two")
    procs = [subprocess.Popen([str(BIN), "run", "--source-cache", url], env=cbl.env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    for pr in procs:
        out, _ = pr.communicate(timeout=120)
        assert pr.returncode == 0, out
        assert f"head={head}" in out and "fsck=ok" in out, out
    p = cbl("run", "--source-cache", url, check=0)
    m = USED.search(p.output)
    assert m and int(m.group(2)) == 0, p.output


def test_cache_ls_and_prune_cover_the_source_cache(cbl, repos):
    import os
    import time
    srv, _ = repos
    url = srv.url("app.git")
    cbl("run", "--source-cache", url, check=0)
    key = store_key(url)
    p = cbl("cache", "ls", check=0)
    assert "SOURCE CACHE" in p.stdout and key[:12] in p.stdout, p.stdout
    store = cbl.home / "cache" / "git" / key
    # a recent store survives --older-than; an old one goes
    p = cbl("cache", "prune", "--older-than", "1h", check=0)
    assert "Removed 0 source cache repositories" in p.stdout and store.is_dir()
    old = time.time() - 7200
    os.utime(store, (old, old))
    p = cbl("cache", "prune", "--older-than", "1h", check=0)
    assert "Removed 1 source cache repository" in p.stdout, p.stdout
    assert not store.exists()
    p = cbl("run", "--source-cache", url, check=0)
    assert "Source cache: empty for this repository" in p.output


def test_local_repository_is_read_directly(cbl, repos, tmp_path):
    # a file:// source needs no cache: its objects are copied straight from
    # its object database, and the log says so
    cdir = tmp_path / "cache"
    url = f"file://{tmp_path}/repos/app.git"
    p = cbl("run", "--sandbox", "none", "--source-cache", "--cache-dir", cdir, url, check=0)
    m = re.search(r"Source cache: not used \(a local repository: its objects are read directly\); "
                  r"(\d+) objects \(([^)]*)\) copied", p.output)
    assert m, p.output
    assert int(m.group(1)) > 300           # 300 files, their trees, the commit
    assert check(p, "commits") == "1" and check(p, "fsck") == "ok"
    assert not (cdir / "git" / store_key(url)).exists()
