"""Batch builds (issue 18): build-list, build-matrix, build-graph and
build-fanout run by `run`, their records, artifacts and the API."""
import json
import zipfile

import pytest


def batch_of(p):
    """The final {"buildBatch": ...} of a `run --json` of a batch."""
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    assert lines and "buildBatch" in lines[-1], p.output
    return lines[-1]["buildBatch"], lines[:-1]


def groups(batch):
    return {g["identifier"]: g for g in batch["buildGroups"]}


def status(g):
    return g.get("currentBuildSummary", {}).get("buildStatus")


def build_of(cbl, g):
    arn = g["currentBuildSummary"]["arn"]
    out = cbl("batch-get-builds", "--ids", arn.split("build/", 1)[1], check=0)
    return json.loads(out.stdout)["builds"][0]


LIST = """version: 0.2
batch:
  build-list:
    - identifier: good
      env:
        variables:
          WHO: first
    - identifier: flaky
      ignore-failure: true
      debug-session: true
      env:
        type: ARM_CONTAINER
        variables:
          WHO: second
          FAIL: "yes"
phases:
  build:
    commands:
      - echo "I am $CODEBUILD_BATCH_BUILD_IDENTIFIER, $WHO"
      - test -z "$FAIL"
"""


def test_build_list_with_an_ignored_failure(cbl):
    src = cbl.project("blist", LIST)
    p = cbl("run", "--json", src, check=0)
    b, events = batch_of(p)
    assert b["buildBatchStatus"] == "SUCCEEDED" and b["complete"] is True
    assert [ph["phaseType"] for ph in b["phases"]] == ["SUBMITTED", "DOWNLOAD_BATCHSPEC", "IN_PROGRESS", "SUCCEEDED"]
    assert b["id"].startswith("blist:") and b["arn"].endswith(":build-batch/" + b["id"])
    assert b["buildBatchNumber"] == 1
    g = groups(b)
    assert status(g["good"]) == "SUCCEEDED" and status(g["flaky"]) == "FAILED"
    assert g["flaky"]["ignoreFailure"] is True
    # each build's own record names the batch, and its variables reached it
    good = build_of(cbl, g["good"])
    assert good["buildBatchArn"] == b["arn"]
    logs = [e["line"] for e in events if e.get("event") == "log" and e.get("identifier") == "good"]
    assert "I am good, first" in logs
    logs = [e["line"] for e in events if e.get("event") == "log" and e.get("identifier") == "flaky"]
    assert "I am flaky, second" in logs
    # what a local build cannot do is said in its log
    warned = [e["message"] for e in events if e.get("event") == "warning" and e.get("identifier") == "flaky"]
    assert any("env.type ARM_CONTAINER is not applied" in w for w in warned), warned
    assert any("debug-session has no Session Manager" in w for w in warned), warned
    # every build event carries its identifier
    assert all("identifier" in e for e in events if e.get("event") not in ("batch-phase",))
    # the same failure without ignore-failure fails the batch (exit 1)
    src2 = cbl.project("blist2", LIST.replace("ignore-failure: true", "ignore-failure: false"))
    p = cbl("run", "--json", src2, check=1)
    assert batch_of(p)[0]["buildBatchStatus"] == "FAILED"


MATRIX = """version: 0.2
batch:
  build-matrix:
    static:
      ignore-failure: false
    dynamic:
      buildspec:
        - one.yml
        - two.yml
      env:
        variables:
          FLAVOR:
            - salt
            - pepper
            - cumin
phases:
  build:
    commands:
      - echo never runs as a batch build
"""


def spec(name):
    return f"""version: 0.2
phases:
  build:
    commands:
      - echo "{name} $FLAVOR $CODEBUILD_BATCH_BUILD_IDENTIFIER" > out.txt
      - cat out.txt
artifacts:
  files:
    - out.txt
"""


def test_dynamic_matrix_crosses_buildspecs_and_variables(cbl, tmp_path):
    src = cbl.project("matrix", MATRIX, {"one.yml": spec("one"), "two.yml": spec("two")})
    art = tmp_path / "art"
    p = cbl("run", "--json", "-a", art, src, check=0)
    b, events = batch_of(p)
    g = groups(b)
    assert len(g) == 6 and all(status(x) == "SUCCEEDED" for x in g.values())
    seen = set()
    for ident in g:
        z = zipfile.ZipFile(art / ident / "artifacts.zip")
        name, flavor, who = z.read("out.txt").decode().split()
        assert who == ident
        seen.add((name, flavor))
    assert seen == {(n, f) for n in ("one", "two") for f in ("salt", "pepper", "cumin")}
    # the documented naming: matrix_1 .. matrix_6, buildspec outermost
    assert sorted(g) == [f"matrix_{i}" for i in range(1, 7)]
    assert zipfile.ZipFile(art / "matrix_4" / "artifacts.zip").read("out.txt").decode().startswith("two salt")


def test_matrix_combined_artifacts_have_a_folder_per_identifier(cbl, tmp_path):
    src = cbl.project("combine", MATRIX, {"one.yml": spec("one"), "two.yml": spec("two")})
    art = tmp_path / "art"
    p = cbl("run", "--json", "--combine-artifacts", "-a", art, src, check=0)
    b, _ = batch_of(p)
    assert "COMBINE_ARTIFACTS" in [ph["phaseType"] for ph in b["phases"]]
    assert b["buildBatchConfig"]["combineArtifacts"] is True
    z = zipfile.ZipFile(art / "artifacts.zip")
    names = sorted(z.namelist())
    assert names == sorted(f"matrix_{i}/out.txt" for i in range(1, 7)), names
    assert z.read("matrix_2/out.txt").decode().split() == ["one", "pepper", "matrix_2"]


GRAPH = """version: 0.2
batch:
  fast-fail: {ff}
  build-graph:
    - identifier: A
    - identifier: B
      depend-on: [A]
      env:
        variables:
          SLOW: "yes"
    - identifier: C
      depend-on: [A]
      env:
        variables:
          FAIL: "yes"
    - identifier: D
      depend-on: [B, C]
phases:
  build:
    commands:
      - echo "$CODEBUILD_BATCH_BUILD_IDENTIFIER ran" >> {log}
      - if [ -n "$SLOW" ]; then sleep {slow}; fi
      - test -z "$FAIL"
"""


def test_graph_failure_never_starts_the_dependents(cbl, tmp_path):
    log = tmp_path / "ran.log"
    src = cbl.project("graph", GRAPH.format(ff="false", log=log, slow=1))
    p = cbl("run", "--json", "--sandbox", "none", src, check=1)
    b, _ = batch_of(p)
    g = groups(b)
    assert b["buildBatchStatus"] == "FAILED"
    assert status(g["A"]) == "SUCCEEDED" and status(g["B"]) == "SUCCEEDED" and status(g["C"]) == "FAILED"
    assert "currentBuildSummary" not in g["D"]
    assert g["D"]["dependsOn"] == ["B", "C"]
    ran = log.read_text().split("\n")
    assert "D ran" not in ran and {"A ran", "B ran", "C ran"} <= set(ran)
    # A ran before both of its dependents
    assert ran.index("A ran") < min(ran.index("B ran"), ran.index("C ran"))


def test_graph_fast_fail_stops_the_running_builds(cbl, tmp_path):
    log = tmp_path / "ran.log"
    src = cbl.project("graphff", GRAPH.format(ff="true", log=log, slow=60))
    p = cbl("run", "--json", "--sandbox", "none", src, check=1, timeout=50)
    b, _ = batch_of(p)
    g = groups(b)
    assert b["buildBatchStatus"] == "FAILED"
    assert status(g["C"]) == "FAILED" and status(g["B"]) == "STOPPED"
    assert "currentBuildSummary" not in g["D"]
    assert "D ran" not in log.read_text()


def test_validate_rejects_cycles_and_unknown_ids(cbl, tmp_path):
    src = cbl.project("cycle", """version: 0.2
batch:
  build-graph:
    - identifier: a
      depend-on: [b]
    - identifier: b
      depend-on: [a, nope]
phases:
  build:
    commands: [true]
""")
    p = cbl("validate", src)
    assert p.returncode == 2, p.output
    assert "buildspec.yml:7:19: error: batch.build-graph: depend-on closes a cycle (a -> b -> a)" in p.output
    assert "buildspec.yml:7:22: error: batch.build-graph: depend-on names 'nope'" in p.output
    # and `run` of it fails (YAML_FILE_ERROR, exit 2) before any command runs
    p = cbl("run", src, check=2)
    assert "closes a cycle (a -> b -> a)" in p.output and "Running command" not in p.output


def test_batch_build_alone_and_no_batch(cbl):
    src = cbl.project("alone", LIST)
    p = cbl("run", "--json", "--batch-build", "flaky", src, check=1)
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    assert "I am flaky, second" in [e.get("line") for e in lines]
    assert "buildBatchArn" not in lines[-1]["build"]
    assert not [e for e in lines if e.get("event") == "warning" and "defines a batch" in e["message"]]
    p = cbl("run", "--batch-build", "nosuch", src, check=2)
    assert "the batch has no build 'nosuch' (its builds: good, flaky)" in p.output
    p = cbl("run", "--json", "--no-batch", src, check=0)
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    assert "I am , " in [e.get("line") for e in lines]
    assert [e for e in lines if e.get("event") == "warning" and "defines a batch: this build runs its "
            "top-level phases only" in e["message"]]


FANOUT = """version: 0.2
batch:
  fast-fail: false
  build-fanout:
    parallelism: 4
    ignore-failure: false
phases:
  build:
    commands:
      - |
        codebuild-tests-run \\
          --test-command 'sh run.sh' \\
          --files-search "codebuild-glob-search 'tests/**/*_test.sh'" \\
          --sharding-strategy '{strategy}'
reports:
  unit:
    files:
      - junit.xml
"""

RUN_SH = """set -e
n=0
echo '<testsuite name="shard">' > junit.xml
for f in "$@"; do
  echo "RAN $f"
  echo "<testcase name=\\"$f\\"/>" >> junit.xml
  n=$((n+1))
done
echo '</testsuite>' >> junit.xml
echo "SHARD $CODEBUILD_BATCH_SHARD_NUMBER/$CODEBUILD_BATCH_SHARD_COUNT has $n, env lists $(printf '%s\\n' "$CODEBUILD_CURRENT_SHARD_FILES" | wc -l)"
"""


@pytest.mark.parametrize("strategy", ["equal-distribution", "stability"])
def test_fanout_splits_forty_tests_across_four_shards(cbl, strategy):
    files = {f"tests/{'sub/' if i % 3 == 0 else ''}t{i:02d}_test.sh": "" for i in range(40)}
    files["tests/README.md"] = "not a test"
    files["run.sh"] = RUN_SH
    src = cbl.project("fanout", FANOUT.format(strategy=strategy), files)
    p = cbl("run", "--json", src, check=0, timeout=300)
    b, events = batch_of(p)
    g = groups(b)
    assert sorted(g) == ["shard_1", "shard_2", "shard_3", "shard_4"]
    assert all(status(x) == "SUCCEEDED" for x in g.values())
    ran = [(e["identifier"], e["line"][4:]) for e in events if e.get("event") == "log" and e["line"].startswith("RAN ")]
    assert sorted(f for _, f in ran) == sorted(k for k in files if k.endswith("_test.sh"))
    per = {}
    for ident, _ in ran:
        per[ident] = per.get(ident, 0) + 1
    assert set(per) == set(g), per  # every shard ran some
    if strategy == "equal-distribution":
        assert sorted(per.values()) == [10, 10, 10, 10]
    says = [e["line"] for e in events if e.get("event") == "log" and e["line"].startswith("SHARD ")]
    assert len(says) == 4
    for line in says:
        _, which, _, n, _, _, listed = line.split()
        assert which.endswith("/4") and n.rstrip(",") == listed
    # each shard its own report
    arns = [build_of(cbl, x)["reportArns"] for x in g.values()]
    assert all(len(a) == 1 for a in arns) and len({a[0] for a in arns}) == 4


API_SPEC = """version: 0.2
batch:
  build-graph:
    - identifier: first
    - identifier: slow
      depend-on: [first]
      env:
        variables:
          NAP: "{nap}"
    - identifier: flaky
      depend-on: [first]
      env:
        variables:
          FAIL_IF_MISSING: "yes"
phases:
  build:
    commands:
      - sleep ${{NAP:-0}}
      - if [ -n "$FAIL_IF_MISSING" ]; then test -e {flag}; fi
      - echo "$CODEBUILD_BATCH_BUILD_IDENTIFIER done"
"""


@pytest.fixture
def api(home, cbl):
    from test_server import start_server
    s = start_server(home)
    yield s
    assert s.stop() == 0, s.stderr


def aws_json(url, *args):
    from test_server import aws
    p = aws(url, "codebuild", *args)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout) if p.stdout.strip() else None


def wait_batch(url, bid, timeout=120, until=lambda b: b["complete"]):
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        b = aws_json(url, "batch-get-build-batches", "--ids", bid)["buildBatches"][0]
        if until(b):
            return b
        time.sleep(0.2)
    raise AssertionError("batch did not get there")


def test_api_start_poll_stop_retry_with_the_aws_cli(api, cbl, tmp_path):
    src = cbl.project("apibatch", API_SPEC.format(nap=0, flag="flag"))
    flag = src / "flag"  # in the source: the build's snapshot of it sees it
    aws_json(api.url, "create-project", "--name", "batchy",
             "--source", f"type=NO_SOURCE,location=file://{src}",
             "--artifacts", "type=NO_ARTIFACTS",
             "--environment", "type=LINUX_CONTAINER,image=host,computeType=BUILD_GENERAL1_SMALL",
             "--service-role", "arn:aws:iam::000000000000:role/cb",
             "--build-batch-config", "serviceRole=arn:aws:iam::000000000000:role/cb,timeoutInMins=30")
    # a batch that fails (flaky needs a file that is not there), polled to its end
    env = "name=WHO,value=api,type=PLAINTEXT"
    started = aws_json(api.url, "start-build-batch", "--project-name", "batchy",
                       "--environment-variables-override", env)["buildBatch"]
    assert started["id"].startswith("batchy:") and started["buildBatchStatus"] == "IN_PROGRESS"
    assert started["buildBatchNumber"] == 1
    b = wait_batch(api.url, started["id"])
    g = groups(b)
    assert b["buildBatchStatus"] == "FAILED"
    assert status(g["first"]) == "SUCCEEDED" and status(g["slow"]) == "SUCCEEDED"
    assert status(g["flaky"]) == "FAILED"
    assert b["buildBatchConfig"]["timeoutInMins"] == 30
    slow_arn = g["slow"]["currentBuildSummary"]["arn"]
    # the lists see it
    assert aws_json(api.url, "list-build-batches")["ids"] == [b["id"]]
    assert aws_json(api.url, "list-build-batches-for-project", "--project-name", "batchy",
                    "--filter", "status=FAILED")["ids"] == [b["id"]]
    assert aws_json(api.url, "list-build-batches-for-project", "--project-name", "batchy",
                    "--filter", "status=SUCCEEDED")["ids"] == []
    # retried with the flag present: only what failed runs again
    flag.write_text("")
    r = aws_json(api.url, "retry-build-batch", "--id", b["id"], "--retry-type", "RETRY_FAILED_BUILDS")["buildBatch"]
    assert r["id"] == b["id"]
    b = wait_batch(api.url, b["id"], until=lambda x: x["complete"] and x["buildBatchStatus"] != "FAILED")
    g = groups(b)
    assert b["buildBatchStatus"] == "SUCCEEDED", json.dumps(b["phases"])
    assert status(g["flaky"]) == "SUCCEEDED" and len(g["flaky"]["priorBuildSummaryList"]) == 1
    assert g["flaky"]["priorBuildSummaryList"][0]["buildStatus"] == "FAILED"
    assert g["slow"]["currentBuildSummary"]["arn"] == slow_arn and g["slow"]["priorBuildSummaryList"] == []
    # a long batch, stopped while it runs
    (src / "buildspec.yml").write_text(API_SPEC.format(nap=60, flag="flag"))
    started = aws_json(api.url, "start-build-batch", "--project-name", "batchy")["buildBatch"]
    wait_batch(api.url, started["id"], until=lambda x: status(groups(x)["slow"]) == "IN_PROGRESS")
    stopped = aws_json(api.url, "stop-build-batch", "--id", started["id"])["buildBatch"]
    assert stopped["buildBatchStatus"] == "STOPPED" and stopped["complete"] is True
    assert status(groups(stopped)["slow"]) == "STOPPED"
    assert stopped["phases"][-1]["phaseType"] == "STOPPED"
    build = build_of(cbl, groups(stopped)["slow"])
    assert build["buildStatus"] == "STOPPED" and build["buildBatchArn"] == stopped["arn"]
    # delete: the batch and its builds
    d = aws_json(api.url, "delete-build-batch", "--id", stopped["id"])
    assert d["statusCode"] == "BATCH_DELETED" and len(d["buildsDeleted"]) == 3
    nf = aws_json(api.url, "batch-get-build-batches", "--ids", stopped["id"])
    assert nf["buildBatches"] == [] and nf["buildBatchesNotFound"] == [stopped["id"]]


def test_interrupt_stops_every_build_and_leaves_no_process(cbl, tmp_path):
    import os
    import signal
    import subprocess
    import time
    from conftest import BIN
    marker = f"{os.getpid()}{int(time.time() * 1000) % 100000}"
    src = cbl.project("stopme", f"""version: 0.2
batch:
  build-list:
    - identifier: one
    - identifier: two
    - identifier: three
phases:
  build:
    commands:
      - sleep 7{marker}
""")
    p = subprocess.Popen([str(BIN), "run", "--json", "--max-parallel", "2", str(src)], env=cbl.env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = set()
    for line in p.stdout:
        e = json.loads(line)
        if e.get("event") == "command-start":
            started.add(e["identifier"])
        if len(started) == 2:
            break
    assert subprocess.run(["pgrep", "-f", f"sleep 7{marker}"], capture_output=True).returncode == 0
    p.send_signal(signal.SIGINT)
    rest = p.stdout.read()
    assert p.wait(timeout=30) == 5, p.stderr.read()
    b = json.loads(rest.strip().splitlines()[-1])["buildBatch"]
    g = groups(b)
    assert b["buildBatchStatus"] == "STOPPED" and b["phases"][-1]["phaseType"] == "STOPPED"
    assert sorted(status(x) for x in g.values() if status(x)) == ["STOPPED", "STOPPED"]
    assert [i for i, x in g.items() if not status(x)] == ["three"]
    # the sandboxes and their commands are gone with the batch
    assert subprocess.run(["pgrep", "-f", f"sleep 7{marker}"], capture_output=True).returncode == 1


def test_terminal_view_redraws_one_line_per_build(cbl):
    import os
    import pty
    import subprocess
    from conftest import BIN
    src = cbl.project("tty", LIST)
    mfd, sfd = pty.openpty()
    env = cbl.env({"NO_COLOR": "1"})
    p = subprocess.Popen([str(BIN), "run", str(src)], env=env, stdin=subprocess.DEVNULL, stdout=sfd,
                         stderr=sfd)
    os.close(sfd)
    out = b""
    while True:
        try:
            chunk = os.read(mfd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    assert p.wait(timeout=60) == 0
    text = out.decode(errors="replace")
    assert "\x1b[2A" in text  # the two lines are redrawn in place
    assert "\x1b[" + "32m" not in text  # NO_COLOR
    import re
    plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    finals = [ln for ln in plain.replace("\r", "\n").splitlines() if "SUCCEEDED" in ln or "FAILED" in ln]
    assert any(ln.split()[1:3] == ["good", "SUCCEEDED"] for ln in finals), finals
    assert any(ln.split()[1:3] == ["flaky", "FAILED"] for ln in finals), finals
    # the failing build's log, up to the phase that failed
    assert "flaky FAILED (tty:" in text and "test -z \"$FAIL\"" in text
    assert "Batch tty:" in text and " SUCCEEDED in " in text


def test_api_restrictions_and_combined_artifacts_from_the_project(api, cbl):
    src = cbl.project("restrict", MATRIX, {"one.yml": spec("one"), "two.yml": spec("two")})
    common = ["--source", f"type=NO_SOURCE,location=file://{src}", "--artifacts", "type=NO_ARTIFACTS",
              "--environment", "type=LINUX_CONTAINER,image=host,computeType=BUILD_GENERAL1_SMALL",
              "--service-role", "arn:aws:iam::000000000000:role/cb"]
    aws_json(api.url, "create-project", "--name", "small", *common, "--build-batch-config",
             '{"serviceRole": "arn:aws:iam::000000000000:role/cb", "restrictions": {"maximumBuildsAllowed": 4}}')
    b = aws_json(api.url, "start-build-batch", "--project-name", "small")["buildBatch"]
    b = wait_batch(api.url, b["id"])
    assert b["buildBatchStatus"] == "FAILED" and b["buildGroups"] == []
    failed = [p for p in b["phases"] if p.get("phaseStatus") == "FAILED"]
    assert "more than the project allows (maximumBuildsAllowed 4)" in failed[0]["contexts"][0]["message"]
    # the override lifts it and combines the artifacts
    b = aws_json(api.url, "start-build-batch", "--project-name", "small", "--build-batch-config-override",
                 '{"combineArtifacts": true, "restrictions": {"maximumBuildsAllowed": 6, '
                 '"computeTypesAllowed": ["BUILD_GENERAL1_SMALL"]}}')["buildBatch"]
    b = wait_batch(api.url, b["id"])
    assert b["buildBatchStatus"] == "SUCCEEDED", json.dumps(b["phases"])
    z = zipfile.ZipFile(b["artifacts"]["location"] + "/artifacts.zip")
    assert len(z.namelist()) == 6


def test_start_build_batch_of_a_git_source(cbl, tmp_path):
    import subprocess
    import time
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "buildspec.yml").write_text("""version: 0.2
batch:
  build-list:
    - identifier: one
    - identifier: two
      buildspec: other.yml
phases:
  build:
    commands:
      - echo "main $CODEBUILD_BATCH_BUILD_IDENTIFIER"
""")
    (repo / "other.yml").write_text("version: 0.2\nphases:\n  build:\n    commands:\n"
                                    "      - echo \"other $CODEBUILD_BATCH_BUILD_IDENTIFIER\"\n")
    git = ["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "batch"], check=True)
    cbl("create-project", "--name", "gitbatch", "--source", f"type=GITHUB,location=file://{repo}",
        "--artifacts", "type=NO_ARTIFACTS",
        "--environment", "type=LINUX_CONTAINER,image=host,computeType=BUILD_GENERAL1_SMALL", check=0)
    b = json.loads(cbl("start-build-batch", "--project-name", "gitbatch", check=0).stdout)["buildBatch"]
    deadline = time.time() + 120
    while not b["complete"] and time.time() < deadline:
        time.sleep(0.2)
        b = json.loads(cbl("batch-get-build-batches", "--ids", b["id"], check=0).stdout)["buildBatches"][0]
    assert b["buildBatchStatus"] == "SUCCEEDED", json.dumps(b["phases"])
    logs = {}
    for ident, g in groups(b).items():
        build = build_of(cbl, g)
        assert build["source"]["location"] == f"file://{repo}"
        ev = json.loads(cbl("logs", "get-log-events", "--log-group-name", build["logs"]["groupName"],
                            "--log-stream-name", build["logs"]["streamName"], check=0).stdout)["events"]
        logs[ident] = [e["message"].strip() for e in ev]
    assert "main one" in logs["one"] and "other two" in logs["two"], json.dumps(logs, indent=1)
