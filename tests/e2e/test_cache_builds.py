"""The build cache through real builds: restore and save, keys and fallback
keys, --no-cache, a runner killed while saving, a full disk, two builds at
once.  Each test runs as root and as a normal user (cbl-rootless, created if
absent, through setpriv, with a state directory it owns): not root, the
cached directories outside the source are overlays in the sandbox's user
namespace, with the same guarantees."""
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import time

import pytest

from conftest import BIN, needs_shared


@pytest.fixture
def cbl(cbl_as):
    """Every test of this file as root and as a normal user."""
    return cbl_as

BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - echo "CHECK m2=$(cat /root/.m2/repo/lib.jar 2>/dev/null || echo none) node=$(cat node_modules/dep/index.js 2>/dev/null || echo none)"
      - mkdir -p /root/.m2/repo node_modules/dep
      - echo "$STAMP" > /root/.m2/repo/lib.jar
      - echo "$STAMP" > node_modules/dep/index.js
      - if [ -n "$BIG" ]; then head -c $BIG /dev/urandom > node_modules/dep/big.bin; fi
cache:
  key: deps-$(codebuild-hash-files package.json)
  fallback-keys:
    - deps-
  paths:
    - /root/.m2/**/*
    - node_modules/**/*
"""


def check(p):
    m = re.search(r"^CHECK m2=(\S+) node=(\S+)$", p.output, re.M)
    assert m, p.output
    return m.group(1), m.group(2)


@pytest.fixture
def app(cbl):
    return cbl.project("app", BUILDSPEC, {"package.json": '{"v": 1}\n'})


def build(cbl, app, stamp, *args, check_rc=0, env=None):
    e = {"STAMP": stamp}
    e.update(env or {})
    # -e puts STAMP in the build; the env of the runner carries test hooks
    return cbl("run", "-e", f"STAMP={stamp}", *(["-e", f"BIG={e['BIG']}"] if "BIG" in e else []),
               *args, app, check=check_rc, env={k: v for k, v in e.items() if k.startswith("CODEBUILD_")})


def test_second_build_restores_what_the_first_saved(cbl, app):
    p = build(cbl, app, "one")
    assert check(p) == ("none", "none")
    assert re.search(r"Cache restore /root/\.m2/\*\*/\*: miss", p.output)
    assert re.search(r"Cache save /root/\.m2/\*\*/\*: saved under key deps-[0-9a-f]{64}", p.output), p.output
    assert not (app / "node_modules").exists()   # the working tree is untouched (snapshot)
    p = build(cbl, app, "two")
    assert check(p) == ("one", "one")
    assert re.search(r"Cache restore /root/\.m2/\*\*/\*: hit on key deps-[0-9a-f]{64} .*overlay", p.output)
    # a keyed entry is immutable: the second build's changes are not saved under it
    assert "cache key already exists, not saved" in p.output
    assert check(build(cbl, app, "three")) == ("one", "one")


def test_changed_key_falls_back_to_a_prefix(cbl, app):
    build(cbl, app, "one")
    (app / "package.json").write_text('{"v": 2}\n')
    p = build(cbl, app, "two")
    assert check(p) == ("one", "one"), "the fallback key deps- found the old entry"
    assert re.search(r"Cache restore /root/\.m2/\*\*/\*: restored from fallback key deps-", p.output), p.output
    assert re.search(r"Cache save /root/\.m2/\*\*/\*: saved under key deps-", p.output)
    assert check(build(cbl, app, "three")) == ("two", "two")  # the new key's own entry


def test_no_cache_restores_and_saves_nothing(cbl, app):
    build(cbl, app, "one")
    p = build(cbl, app, "two", "--no-cache")
    assert check(p) == ("none", "none")
    assert "Skip cache due to: --no-cache" in p.output
    assert check(build(cbl, app, "three")) == ("one", "one")


def test_cache_dir_option(cbl, app):
    d = cbl.tmp_path / "elsewhere"
    build(cbl, app, "one", "--cache-dir", d)
    assert (d / "objects").is_dir() and any((d / "objects").iterdir())
    assert check(build(cbl, app, "two")) == ("none", "none")  # not in the default store
    assert check(build(cbl, app, "three", "--cache-dir", d)) == ("one", "one")


@pytest.mark.parametrize("point", ["stage-begin", "stage-file", "staged", "synced", "object-published"])
def test_runner_killed_during_save_keeps_the_previous_snapshot(cbl, app, point):
    build(cbl, app, "good")
    (app / "package.json").write_text('{"v": 2}\n')   # a new key: this save would publish
    p = build(cbl, app, "killed", check_rc=-9, env={"CODEBUILD_LOCAL_TEST_KILL_IN_CACHE_SAVE": point})
    (app / "package.json").write_text('{"v": 1}\n')
    assert check(build(cbl, app, "after")) == ("good", "good")
    # nothing half-written is ever restored: under the new key, either the
    # killed build's complete save (published before the kill) or a fallback
    (app / "package.json").write_text('{"v": 2}\n')
    got = check(build(cbl, app, "later"))
    assert got in (("good", "good"), ("killed", "killed")), got
    assert got == ("good", "good") or point == "object-published"


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_full_disk_during_save_is_a_warning(cbl, app):
    d = cbl.tmp_path / "small"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(d)], check=True)
    cbl.own(d)
    try:
        build(cbl, app, "small", "--cache-dir", d)
        (app / "package.json").write_text('{"v": 2}\n')
        p = build(cbl, app, "huge", "--cache-dir", d, env={"BIG": "4000000"})
        assert "Build app" in p.output and "SUCCEEDED" in p.output, "a cache failure does not fail the build"
        assert re.search(r"WARNING: cache: save failed \(.*(No space left|ENOSPC)", p.output, re.I), p.output
        (app / "package.json").write_text('{"v": 1}\n')
        assert check(build(cbl, app, "after", "--cache-dir", d)) == ("small", "small")
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)


def test_two_builds_at_once_leave_exactly_one_save(cbl):
    spec = BUILDSPEC.replace("  key: deps-$(codebuild-hash-files package.json)\n  fallback-keys:\n    - deps-\n", "")
    spec = spec.replace("      - echo \"$STAMP\" > node_modules/dep/index.js\n",
                        "      - echo \"$STAMP\" > node_modules/dep/index.js\n"
                        "      - for i in $(seq 50); do echo \"$STAMP $i\" > /root/.m2/repo/f$i; done\n")
    app = cbl.project("pair", spec)
    procs = [subprocess.Popen(cbl.argv(["run", "-e", f"STAMP={s}", app]), env=cbl.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for s in ("a", "b")]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    spec_read = spec.replace("      - mkdir -p /root/.m2/repo node_modules/dep\n",
                             "      - cat /root/.m2/repo/f* | md5sum\n      - exit 0\n")
    (app / "buildspec.yml").write_text(spec_read)
    p = cbl("run", "-e", "STAMP=r", app, check=0)
    m2, node = check(p)
    assert m2 in ("a", "b") and node == m2, p.output
    digest = hashlib.md5("".join(f"{m2} {i}\n" for i in sorted(range(1, 51), key=str)).encode()).hexdigest()
    assert digest in p.output, "the cache is exactly one build's save"


def _seed_node_buildspec():
    import test_seed  # the guide's buildspecs, read from ../shared
    return test_seed.by_marker("npm run test:integration")


def _npm_tarball(path, name, version, body):
    """An npm package tarball (package/ prefix) for a file: dependency."""
    with tarfile.open(path, "w:gz") as t:
        for rel, data in (("package/package.json", json.dumps({"name": name, "version": version,
                                                                 "main": "index.js"})),
                          ("package/index.js", body)):
            b = data.encode()
            info = tarfile.TarInfo(rel)
            info.size = len(b)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(b))


@needs_shared
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed")
def test_seed_node_cache_and_a_path_outside_the_source_restore(cbl):
    """The seed guide's multi-stage Node buildspec with its node_modules/**/*
    cache, plus npm's own cache outside the source (/root/.npm): the second
    build starts with both."""
    from conftest import ROOT
    src = cbl.tmp_path / "node"
    shutil.copytree(ROOT / "examples" / "node", src)
    pkg = json.loads((src / "package.json").read_text())
    pkg["dependencies"] = {"left-pad-local": "file:vendor/left-pad-local-1.0.0.tgz"}
    (src / "package.json").write_text(json.dumps(pkg, indent=2) + "\n")
    (src / "vendor").mkdir()
    _npm_tarball(src / "vendor" / "left-pad-local-1.0.0.tgz", "left-pad-local", "1.0.0",
                 "module.exports = (s, n) => String(s).padStart(n);\n")
    spec = _seed_node_buildspec()
    assert "    - 'node_modules/**/*'" in spec and "      - npm install\n" in spec
    spec = spec.replace("      - npm install\n",
                        "      - echo \"BEFORE node_modules=$(ls node_modules 2>/dev/null | tr '\\n' ' ')"
                        "npm=$(ls /root/.npm 2>/dev/null | wc -l)\"\n      - npm install\n")
    spec = spec.replace("    - 'node_modules/**/*'", "    - 'node_modules/**/*'\n    - '/root/.npm/**/*'")
    (src / "buildspec.yml").write_text(spec)
    cbl.own(src)
    npm_env = ["-e", "npm_config_audit=false", "-e", "npm_config_fund=false", "-e", "npm_config_offline=true",
               "-e", "npm_config_update_notifier=false", "-e", "npm_config_cache=/root/.npm"]

    def run():
        p = cbl("run", *npm_env, src, timeout=300)
        assert p.returncode == 0, p.output
        assert "integration tests passed" in p.output
        m = re.search(r"^BEFORE node_modules=(.*)npm=(\d+)$", p.output, re.M)
        assert m, p.output
        return p, m.group(1).split(), int(m.group(2))

    p, mods, npm = run()
    assert mods == [] and npm == 0, p.output
    assert "WARNING: cache" not in p.output, p.output
    assert re.search(r"Cache save node_modules/\*\*/\*: saved \(\d+ files", p.output), p.output
    assert re.search(r"Cache save /root/\.npm/\*\*/\*: saved \(\d+ files", p.output), p.output
    assert not (src / "node_modules").exists(), "the working tree is untouched (snapshot)"
    p, mods, npm = run()
    assert "left-pad-local" in mods, p.output
    assert npm > 0, p.output
    assert re.search(r"Cache restore node_modules/\*\*/\*: restored \(\d+ files.*copy", p.output), p.output
    assert re.search(r"Cache restore /root/\.npm/\*\*/\*: restored \(\d+ files.*overlay", p.output), p.output
