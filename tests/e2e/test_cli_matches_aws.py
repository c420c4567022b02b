"""Our API subcommands print what `aws` prints: the same operations against
the same state, once through `codebuild-local <command>` and once through
Debian's /usr/bin/aws against `serve` (its default configuration: timestamps
in ISO 8601), compared as JSON."""
import json
import time

import pytest

from test_server import aws, client, start_server

BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - echo one
      - echo two
artifacts:
  files: [buildspec.yml]
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from conftest import Runner
    tmp = tmp_path_factory.mktemp("cmp")
    home = tmp / "state"
    home.mkdir()
    cbl = Runner(home, tmp)
    src = cbl.project("src", BUILDSPEC)
    server = start_server(home)
    try:
        cb = client(server.url)
        cb.create_project(name="my-project", source={"type": "NO_SOURCE", "location": f"file://{src}"},
                          artifacts={"type": "NO_ARTIFACTS"},
                          environment={"type": "LINUX_CONTAINER", "image": "host",
                                       "computeType": "BUILD_GENERAL1_SMALL"},
                          serviceRole="arn:aws:iam::000000000000:role/codebuild")
        ids = []
        for _ in range(2):
            bid = cb.start_build(projectName="my-project")["build"]["id"]
            deadline = time.time() + 60
            while not cb.batch_get_builds(ids=[bid])["builds"][0]["buildComplete"]:
                assert time.time() < deadline
                time.sleep(0.05)
            ids.append(bid)
    except BaseException:
        server.stop()  # a failed setup leaves no server behind
        raise
    yield cbl, server, ids
    assert server.stop() == 0, server.stderr


def ours(cbl, *args):
    p = cbl(*args, check=0)
    return json.loads(p.stdout) if p.stdout.strip() else None


def theirs(server, *args):
    p = aws(server.url, *args)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout) if p.stdout.strip() else None


@pytest.mark.parametrize("args", [
    ["list-projects"],
    ["batch-get-projects", "--names", "my-project", "missing"],
    ["list-builds-for-project", "--project-name", "my-project"],
    ["list-builds-for-project", "--project-name", "my-project", "--sort-order", "ASCENDING"],
    ["list-builds"],
    ["batch-get-builds", "--ids", "{0}", "{1}", "my-project:00000000-0000-0000-0000-000000000000"],
])
def test_codebuild_commands_print_what_aws_prints(world, args):
    cbl, server, ids = world
    args = [a.format(*ids) for a in args]
    mine = ours(cbl, *args)
    assert mine == theirs(server, "codebuild", *args)
    if args[0] == "batch-get-builds":
        # the comparison is not vacuous: records with ISO timestamps
        assert len(mine["builds"]) == 2 and mine["builds"][0]["startTime"].count("T") == 1


def test_logs_get_log_events_prints_what_aws_prints(world):
    cbl, server, ids = world
    stream = ids[0].split(":")[1]
    args = ["logs", "get-log-events", "--log-group-name", "/aws/codebuild/my-project",
            "--log-stream-name", stream, "--start-from-head"]
    mine = ours(cbl, *args)
    assert mine == theirs(server, *args)
    assert any(e["message"] == "one\n" for e in mine["events"])


def test_wire_timestamps_on_request(world):
    cbl, server, ids = world
    rec = ours(cbl, "batch-get-builds", "--ids", ids[0], "--cli-timestamp-format", "wire")["builds"][0]
    assert isinstance(rec["startTime"], float)
