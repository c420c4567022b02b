"""Queued builds outlive `serve`: killed with SIGKILL (or stopped) while builds
wait in its queue, the server leaves them QUEUED - reads of the store in
between do not finish them as FAULT - and the next server runs them, in
their order, one at a time as --max-builds says; a queued build whose request
cannot be run any more ends FAILED with the reason."""
import json
import signal
import time
from datetime import timedelta

from test_api_builds import create_project, wait_build
from test_server import clean_aws_env, client, start_server  # noqa: F401 (a fixture)

SLEEPY = [{"name": "SLEEP", "value": "3", "type": "PLAINTEXT"}]


def build_dir(home, build_id):
    project, uuid = build_id.split(":")
    return home / "builds" / project / uuid


def phase_start(build, phase):
    return next(p["startTime"] for p in build["phases"] if p["phaseType"] == phase)


def test_queued_builds_survive_a_killed_server(home, cbl, clean_aws_env):
    s = start_server(home, "--max-builds", "1")
    try:
        create_project(s.url, cbl)
        cb = client(s.url)
        running = cb.start_build(projectName="my-project", environmentVariablesOverride=SLEEPY)["build"]
        queued = [cb.start_build(projectName="my-project")["build"] for _ in range(4)]
        # StartBuild answers QUEUED (the documented example): the records say which run
        ids_now = [running["id"]] + [b["id"] for b in queued]
        now = cb.batch_get_builds(ids=ids_now)["builds"]
        assert now[0]["currentPhase"] != "QUEUED", now[0]
        assert all(b["currentPhase"] == "QUEUED" for b in now[1:])
    finally:
        s.proc.kill()  # SIGKILL: no chance to tidy up
        s.stop()
    assert s.proc.returncode == -signal.SIGKILL

    # the server is gone: the store, read meanwhile, keeps the queue as it was
    ids = [b["id"] for b in queued]
    p = cbl("batch-get-builds", "--ids", *ids)
    assert p.returncode == 0, p.stderr
    between = json.loads(p.stdout)["builds"]
    assert [(b["buildStatus"], b["currentPhase"]) for b in between] == [("IN_PROGRESS", "QUEUED")] * 4
    # one queued build's request is damaged meanwhile: it cannot be run any more
    (build_dir(home, ids[3]) / "launch.json").write_text("{not json")

    s = start_server(home, "--max-builds", "1")
    try:
        done = [wait_build(s.url, i, timeout=120) for i in [running["id"], *ids]]
        assert [b["buildStatus"] for b in done[:4]] == ["SUCCEEDED"] * 4, done
        # the build that was running went on while no server ran
        assert done[0]["phases"][-1]["phaseType"] == "COMPLETED"
        # the queue ran in its order, one at a time (--max-builds 1)
        starts = [phase_start(b, "PROVISIONING") for b in done[1:4]]
        assert starts == sorted(starts)
        # (the build still running from before the restart counts against
        # --max-builds: the queue waits for it)
        for a, b in zip(done[0:3], done[1:4]):
            assert phase_start(b, "PROVISIONING") >= a["endTime"] - timedelta(milliseconds=10)
        # the damaged one ended with the reason
        bad = done[4]
        assert bad["buildStatus"] == "FAILED" and bad["buildComplete"]
        q = next(p for p in bad["phases"] if p["phaseType"] == "QUEUED")
        assert q["phaseStatus"] == "FAILED"
        assert "cannot run this queued build any more" in q["contexts"][0]["message"]
        assert "launch.json" in q["contexts"][0]["message"]
        assert [p["phaseType"] for p in bad["phases"]] == ["SUBMITTED", "QUEUED"]
    finally:
        assert s.stop() == 0, s.stderr


def test_queued_builds_survive_a_stopped_server(home, cbl, clean_aws_env):
    s = start_server(home, "--max-builds", "1")
    try:
        create_project(s.url, cbl)
        cb = client(s.url)
        first = cb.start_build(projectName="my-project", environmentVariablesOverride=SLEEPY)["build"]
        second = cb.start_build(projectName="my-project")["build"]
        assert second["currentPhase"] == "QUEUED"
    finally:
        assert s.stop() == 0, s.stderr  # SIGINT
    time.sleep(0.5)
    s = start_server(home, "--max-builds", "1")
    try:
        assert wait_build(s.url, first["id"], timeout=60)["buildStatus"] == "SUCCEEDED"
        assert wait_build(s.url, second["id"], timeout=60)["buildStatus"] == "SUCCEEDED"
    finally:
        assert s.stop() == 0, s.stderr
