"""A damaged database (garbage over it, or cut short) is detected by every
command with a message naming `codebuild-local store recover`, which keeps
the damaged file aside and rebuilds the database from each build's
build.json: the same build records, logs, build numbers, and the projects
(read back from the damaged file when SQLite can, else from a StartBuild's
launch.json, else the implicit project of `run`)."""
import json
import os
import sqlite3
import time

import pytest

from test_server import start_server
from test_store_cli import BUILDSPEC, out_json, project_json, run_build


def wait_complete(cbl, build_id, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        b = out_json(cbl("batch-get-builds", "--ids", build_id))["builds"][0]
        if b["buildComplete"]:
            return b
        time.sleep(0.1)
    raise AssertionError(f"{build_id} did not finish")


def snapshot(cbl):
    ids = out_json(cbl("list-builds"))["ids"]
    builds = out_json(cbl("batch-get-builds", "--ids", *ids))["builds"]
    projects = out_json(cbl("batch-get-projects", "--names", "described", "alpha"))["projects"]
    return ids, builds, projects


def damage(db, how):
    # the WAL's pages into the file first, so the file alone is the database
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = con.execute("PRAGMA page_size").fetchone()[0]
    # the schema's and the projects' pages, wherever the migrations put them
    # (the schema spills over page 1 once it has enough tables)
    kept_pages = {r[0] for r in con.execute(
        "SELECT pageno FROM dbstat WHERE name IN ('sqlite_schema', 'sqlite_master', 'projects')")}
    con.close()
    for extra in (db.parent / (db.name + "-wal"), db.parent / (db.name + "-shm")):
        extra.unlink(missing_ok=True)
    data = db.read_bytes()
    if how == "garbage":
        db.write_bytes(os.urandom(len(data)))
    elif how == "truncated":  # cut short: the header and the first pages stay
        db.write_bytes(data[: len(data) // 3])
    else:  # pages overwritten: every page but the schema's and the projects'
        out = bytearray(data)
        n = len(data) // page
        assert n > 2 * len(kept_pages), (n, kept_pages)
        for no in range(1, n + 1):
            if no not in kept_pages:
                out[(no - 1) * page:no * page] = os.urandom(page)
        db.write_bytes(bytes(out))
    return db.read_bytes()


@pytest.mark.parametrize("how", ["garbage", "truncated", "pages"])
def test_damaged_database_is_detected_and_recovered(cbl, tmp_path, how):
    src = cbl.project("alpha", BUILDSPEC)
    run_build(cbl, src, "--project", "alpha")
    run_build(cbl, src, "--project", "alpha")
    out_json(cbl("create-project", "--cli-input-json", f"file://{project_json(tmp_path, 'described', src)}"))
    started = out_json(cbl("start-build", "--project-name", "described"))["build"]
    wait_complete(cbl, started["id"])
    for _ in range(30):  # enough builds that the table spans several pages
        run_build(cbl, src, "--project", "alpha")
    ids, builds, projects = snapshot(cbl)
    assert len(ids) == 33 and {p["name"] for p in projects} == {"described", "alpha"}
    log = out_json(cbl("logs", "get-log-events", "--log-group-name", "/aws/codebuild/described",
                       "--log-stream-name", started["id"].split(":")[1]))
    assert any("line-two" in e["message"] for e in log["events"])

    db = cbl.home / "codebuild-local.db"
    damaged_bytes = damage(db, how)
    # every command says what is wrong and what to do
    failing = [["list-builds"], ["batch-get-builds", "--ids", ids[0]], ["list-projects"]]
    for args in failing[: 2 if how == "pages" else 3]:
        p = cbl(*args, check=3)
        assert "The database is damaged: `codebuild-local store recover` rebuilds it" in p.stderr

    # and so does serve, before it listens
    srv = start_server(cbl.home, expect_ready=False)
    assert srv.proc.returncode == 3, srv.stderr
    assert "`codebuild-local store recover` rebuilds it" in srv.stderr

    p = cbl("store", "recover", check=0)
    kept = [f for f in cbl.home.iterdir() if f.name.startswith("codebuild-local.db.damaged-")
            and not f.name.endswith(("-wal", "-shm"))]
    assert len(kept) == 1 and f"kept as {kept[0]}" in p.stdout
    assert kept[0].read_bytes() == damaged_bytes  # set aside untouched
    assert "recovered 33 builds and 2 projects" in p.stdout, p.stdout
    # where the projects came from: the damaged file when it can be read
    if how == "pages":
        assert "(2 read back from the old database, 0 from a build's launch.json" in p.stdout
    else:
        assert "(0 read back from the old database, 1 from a build's launch.json" in p.stdout

    ids2, builds2, projects2 = snapshot(cbl)
    assert sorted(ids2) == sorted(ids)
    assert sorted(builds2, key=lambda b: b["id"]) == sorted(builds, key=lambda b: b["id"])
    by_name = {p["name"]: p for p in projects}
    by_name2 = {p["name"]: p for p in projects2}
    # the project made with create-project comes back as it was (read back
    # from the damaged file, or from its build's launch.json)
    for key in ("source", "environment", "description", "serviceRole", "timeoutInMinutes", "arn"):
        assert by_name2["described"][key] == by_name["described"][key], key
    assert by_name2["alpha"]["source"] == by_name["alpha"]["source"]
    log2 = out_json(cbl("logs", "get-log-events", "--log-group-name", "/aws/codebuild/described",
                        "--log-stream-name", started["id"].split(":")[1]))
    assert log2["events"] == log["events"]
    # numbering goes on where it was
    last = max(b["buildNumber"] for b in builds if b["projectName"] == "alpha")
    new_id = run_build(cbl, src, "--project", "alpha")
    assert out_json(cbl("batch-get-builds", "--ids", new_id))["builds"][0]["buildNumber"] == last + 1


def test_recover_help_and_usage(cbl):
    p = cbl("store", "--help", check=0)
    assert p.returncode == 0 and "store recover" in p.stdout and "build.json" in p.stdout
    p = cbl("store", check=2)
    assert "store needs a subcommand: recover" in p.stderr
    p = cbl("store", "fix", check=2)
    assert "unknown store subcommand 'fix'" in p.stderr
