"""The cache's command-line faces: hash-files (also as codebuild-hash-files),
cache ls / explain / prune.  Entries are laid out on disk in the store's
format (cache/cache.h) since builds only fill the cache once the runner
uses it."""
import hashlib
import json
import os
import subprocess
import time

from conftest import BIN


def expected_hash(root, rels):
    h = hashlib.sha256()
    for rel in sorted(rels):
        digest = hashlib.sha256((root / rel).read_bytes()).hexdigest()
        h.update(rel.encode() + b"\0" + digest.encode() + b"\n")
    return h.hexdigest()


def test_hash_files(cbl, tmp_path):
    src = cbl.project("h", "version: 0.2\n", {
        "package-lock.json": '{"lockfileVersion": 3}\n',
        "sub/a.lock": "a\n",
        "sub/deeper/b.lock": "b\n",
        "other.txt": "not hashed\n",
    })
    p = cbl("hash-files", "package-lock.json", "sub/**/*", cwd=src, check=0)
    want = expected_hash(src, ["package-lock.json", "sub/a.lock", "sub/deeper/b.lock"])
    assert p.stdout == want + "\n"
    # the order of the patterns does not matter, the files do
    p2 = cbl("hash-files", "sub/**/*", "package-lock.json", cwd=src, check=0)
    assert p2.stdout == p.stdout
    (src / "sub/a.lock").write_text("changed\n")
    p3 = cbl("hash-files", "package-lock.json", "sub/**/*", cwd=src, check=0)
    assert p3.stdout != p.stdout
    # nothing matched: no hash, exit 1
    p4 = cbl("hash-files", "*.nothing", cwd=src, check=1)
    assert p4.stdout == "" and "no file matched" in p4.stderr
    cbl("hash-files", cwd=src, check=2)


def test_codebuild_hash_files_name(cbl, tmp_path):
    src = cbl.project("n", "version: 0.2\n", {"package-lock.json": "{}\n"})
    link = tmp_path / "bin" / "codebuild-hash-files"
    link.parent.mkdir()
    link.symlink_to(BIN)
    p = subprocess.run([str(link), "package-lock.json"], cwd=src, capture_output=True, text=True,
                       env=cbl.env(), timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout == expected_hash(src, ["package-lock.json"]) + "\n"
    # through PATH, the way a buildspec key uses it
    env = cbl.env({"PATH": f"{link.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"})
    p = subprocess.run(["sh", "-c", 'echo "npm-$(codebuild-hash-files package-lock.json)"'], cwd=src,
                       capture_output=True, text=True, env=env, timeout=30)
    assert p.stdout.strip() == "npm-" + expected_hash(src, ["package-lock.json"])


def make_entry(cache, scope, key, files, age_s=0, paths=("node_modules/**/*",)):
    """Lays out one entry the way cache_save publishes it."""
    version = hashlib.sha256("".join(p + "\n" for p in sorted(set(paths))).encode()).hexdigest()
    obj = hashlib.sha256(f"{scope}/{key}/{files}".encode()).hexdigest()
    od = cache / "objects" / obj
    (od / "p0").mkdir(parents=True)
    size = 0
    for i in range(files):
        data = f"file {i} of {scope}\n" * 10
        (od / "p0" / f"f{i}").write_text(data)
        size += len(data)
    now = time.time()
    manifest = {"format": 1, "version": version, "scope": scope, "key": key, "paths": list(paths),
                "bases": [{"dir": "p0", "base": paths[0].split("/")[0], "patterns": ["**/*"],
                           "paths": list(paths), "files": files, "bytes": size}],
                "files": files, "bytes": size, "created_us": int(now * 1e6), "build": f"{scope}:1"}
    (od / "manifest.json").write_text(json.dumps(manifest))
    rd = cache / "refs" / scope / version
    rd.mkdir(parents=True, exist_ok=True)
    name = "default" if key is None else "k-" + "".join(
        c if c.isalnum() or c in "_-" else "%%%02X" % ord(c) for c in key)
    ref = rd / name
    ref.write_text(json.dumps({"format": 1, "object": obj, "key": key, "scope": scope, "version": version,
                               "created_us": int((now - age_s) * 1e6), "build": f"{scope}:1"}))
    os.utime(ref, (now - age_s, now - age_s))
    return obj, size


def test_cache_ls_and_prune(cbl, tmp_path):
    cache = tmp_path / "cache"
    p = cbl("cache", "ls", "--cache-dir", cache, check=0)
    assert "is empty" in p.stdout
    old, _ = make_entry(cache, "web", None, 3, age_s=10 * 86400)
    mid, mid_size = make_entry(cache, "web", "npm-abc.1", 2, age_s=3600)
    new, new_size = make_entry(cache, "api", None, 1)
    p = cbl("cache", "ls", "--cache-dir", cache, "--json", check=0)
    entries = json.loads(p.stdout)
    assert [(e["scope"], e["key"]) for e in entries] == [("api", None), ("web", None), ("web", "npm-abc.1")]
    assert entries[2]["files"] == 2 and entries[2]["bytes"] == mid_size
    assert entries[2]["paths"] == ["node_modules/**/*"]
    table = cbl("cache", "ls", "--cache-dir", cache, check=0).stdout
    assert "npm-abc.1" in table and "(rolling)" in table and "node_modules/**/*" in table

    # an orphan snapshot (a killed save) goes with any prune
    orphan = cache / "objects" / ("0" * 64)
    (orphan / "p0").mkdir(parents=True)
    p = cbl("cache", "prune", "--cache-dir", cache, "--older-than", "7d", check=0)
    assert "Removed 1 cache entry and 2 snapshots" in p.stdout, p.stdout
    assert not (cache / "objects" / old).exists() and not orphan.exists()
    assert (cache / "objects" / mid).exists()

    p = cbl("cache", "prune", "--cache-dir", cache, "--max-size", str(new_size + 10), check=0)
    assert "Removed 1 cache entry" in p.stdout
    left = json.loads(cbl("cache", "ls", "--cache-dir", cache, "--json", check=0).stdout)
    assert [e["scope"] for e in left] == ["api"]

    # the default cache dir is under CODEBUILD_LOCAL_HOME
    make_entry(cbl.home / "cache", "home-proj", None, 1)
    p = cbl("cache", "ls", "--json", check=0)
    assert [e["scope"] for e in json.loads(p.stdout)] == ["home-proj"]


def test_cache_explain(cbl, tmp_path):
    cache = tmp_path / "cache"
    p = cbl("cache", "explain", "--cache-dir", cache, "--project", "web", check=1)
    assert "no build of project 'web'" in p.stderr
    (cache / "explain").mkdir(parents=True, exist_ok=True)
    rec = {"format": 1, "project": "web", "build": "web:1234", "time": "2024-01-01T00:00:00.000Z",
           "scope": "web", "version": "ab" * 32, "key": "npm-2", "fallback_keys": ["npm-"],
           "action": "restore and save", "sandbox": True,
           "restore": {"result": "fallback", "matched_key": "npm-1", "object": "cd" * 32, "ms": 3},
           "save": {"result": "saved", "object": "ef" * 32, "ms": 210, "changed_files": 12},
           "paths": [{"paths": ["node_modules/**/*"], "base": "node_modules",
                      "target": "/codebuild/output/src1/src/node_modules", "mode": "overlay",
                      "restored": True, "restored_files": 1234, "restored_bytes": 5 << 20, "restore_ms": 3,
                      "saved_files": 1240, "saved_bytes": 6 << 20, "changed_files": 12}]}
    (cache / "explain" / "web.json").write_text(json.dumps(rec))
    p = cbl("cache", "explain", "--cache-dir", cache, "--project", "web", check=0)
    assert "Key:            npm-2" in p.stdout
    assert "Restore:        fallback on key npm-1" in p.stdout
    assert "Save:           saved" in p.stdout and "12 new or changed" in p.stdout
    assert "restored 1234 files, 5.0 MiB in 3 ms" in p.stdout
    # --project defaults to the current directory's name, like run
    d = tmp_path / "web"
    d.mkdir()
    p = cbl("cache", "explain", "--cache-dir", cache, "--json", cwd=d, check=0)
    assert json.loads(p.stdout)["build"] == "web:1234"


def test_cache_usage(cbl, tmp_path):
    cache = tmp_path / "cache"
    h = cbl("cache", "--help", check=0).stdout
    assert "cache ls" in h and "cache explain" in h and "cache prune" in h
    cbl("cache", check=2)
    cbl("cache", "frobnicate", "--cache-dir", cache, check=2)
    cbl("cache", "prune", "--older-than", "7", "--cache-dir", cache, check=2)
    cbl("cache", "prune", "--max-size", "lots", "--cache-dir", cache, check=2)
    cbl("cache", "ls", "--older-than", "7d", "--cache-dir", cache, check=2)
    p = cbl("--help", check=0)
    assert "cache" in p.stdout and "hash-files" in p.stdout
