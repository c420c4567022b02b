"""The fidelity sweep: every [doc]/[obs] statement of the reference has a row
in docs/fidelity.md, `validate --strict` reports what a local run fakes, and
the log hides what the service hides."""
import csv
import json
import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, SHARED, needs_shared

SCRIPT = ROOT / "scripts" / "fidelity-count.py"
needs_reference = pytest.mark.skipif(not (SHARED / "reference").is_dir(), reason=f"no reference in {SHARED}")


def count(*args):
    return subprocess.run(["/usr/bin/python3", str(SCRIPT), "--shared", str(SHARED), *args],
                          capture_output=True, text=True, timeout=60)


@needs_reference
def test_fidelity_table_covers_every_statement():
    p = count()
    assert p.returncode == 0, p.stdout + p.stderr
    m = re.match(r"statements: (\d+)  rows: (\d+)  matched: (\d+)", p.stdout)
    assert m and m.group(1) == m.group(2), p.stdout
    listed = count("--list").stdout.splitlines()
    assert len(listed) == int(m.group(1)) and len(listed) > 100, p.stdout


@needs_reference
def test_fidelity_count_catches_gaps(tmp_path):
    """The check fails on a missing row, an unknown id and a test that does not exist."""
    table = (ROOT / "docs" / "fidelity.md").read_text()
    first = re.search(r"^\| (1\.1-1) \|.*$", table, re.M)
    bad = tmp_path / "fidelity.md"
    bad.write_text(table.replace(first.group(0), "| 99.9-1 | x | 99.9 | matched | "
                                 "tests/e2e/test_fidelity.py::test_that_does_not_exist |"))
    p = count("--table", bad)
    assert p.returncode == 1, p.stdout
    assert "no row for 1.1-1" in p.stdout
    assert "99.9-1 is no statement of the reference" in p.stdout
    assert "no test tests/e2e/test_fidelity.py::test_that_does_not_exist" in p.stdout


# ------------------------------------------------------------ validate --strict

def seed_buildspecs():
    text = "".join(p.read_text() for p in sorted((SHARED / "seed").glob("*")))
    return [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "phases:" in b]


def wild_valid():
    with open(SHARED / "wild-buildspecs" / "INDEX.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [r["file"] for r in rows if r["yaml_ok"] == "yes" and "INVALID:" not in r["notes"]]


def strict(cbl, path, *args):
    p = cbl("validate", "--strict", *args, "-b", path, check=None)
    return p


@needs_shared
def test_strict_report_on_the_seed_and_the_wild(cbl, tmp_path):
    seeds = seed_buildspecs()
    assert len(seeds) == 3
    files = []
    for i, text in enumerate(seeds):
        f = tmp_path / f"seed{i}.yml"
        f.write_text(text)
        files.append(f)
    wild = wild_valid()
    assert len(wild) == 151
    files += [SHARED / "wild-buildspecs" / w for w in wild]
    for f in files:
        p = strict(cbl, f)
        assert p.returncode in (0, 1), (f, p.output)
        assert p.stderr == "", (f, p.stderr)
        assert re.search(r": (nothing: )?\d+ things? a local run would fake or skip$", p.stdout, re.M), (f, p.output)
        n = int(re.search(r"(\d+) things? a local run", p.stdout).group(1))
        lines = [ln for ln in p.stdout.splitlines() if " differs: " in ln]
        assert len(lines) == n and (p.returncode == 1) == bool(n or "warning:" in p.stdout), (f, p.output)
        for ln in lines:
            assert re.match(re.escape(str(f)) + r"(:\d+:\d+)?: differs: .+ \(to do: .+\)$", ln), ln


# (line:col, the finding's start): runtime findings depend on the host's
# runtimes, so only their subject is fixed
EXPECTED = {
    "022.yml": [("1:1", "the host image: the build runs on this machine's programs"),
                ("8:5", "secrets-manager: no secrets file, so nothing resolves them"),
                ("19:7", "runtime-versions python 3.11: "),
                ("31:1", "cache: kept in this machine's cache store, not in the project's S3 bucket")],
    # its batch (a build-graph of tasks with their own images) runs as the
    # service's would: nothing of it is a finding
    "054.yml": [("1:1", "the host image"),
                ("13:5", "parameter-store and secrets-manager: no secrets file"),
                ("24:7", "runtime-versions java openjdk11: ")],
    "090.yml": [("2:1", "the host image"),
                ("17:7", "runtime-versions python 3.9: "),
                ("46:9", "webhook variables (CODEBUILD_WEBHOOK_*) are empty"),
                ("53:1", "artifacts: written to the build's directory (or -a DIR), not uploaded to S3")],
    "111.yml": [("2:1", "the host image"),
                ("10:7", "runtime-versions nodejs 12.x: "),
                ("21:9", "webhook variables (CODEBUILD_WEBHOOK_*) are empty"),
                ("44:1", "artifacts: written to the build's directory"),
                ("49:1", "cache: kept in this machine's cache store")],
    "121.yml": [("1:1", "the host image"),
                ("2:1", "batch: build-matrix: its 16 builds are named matrix_1 .. matrix_16, our naming"),
                ("35:7", "runtime-versions nodejs 10: ")],
    "130.yml": [("1:1", "the host image"),
                ("8:3", "git-credential-helper: the build's git gets this user's ~/.git-credentials"),
                ("64:5", "secrets-manager: no secrets file"),
                ("171:7", "runtime-versions nodejs 20: ")],
    "180.yml": [("1:1", "the host image"),
                ("3:1", "batch: build-fanout: its 3 builds are named shard_1 .. shard_3, our naming")],
}


@needs_shared
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_strict_report_findings(cbl, name):
    p = strict(cbl, SHARED / "wild-buildspecs" / name)
    assert p.returncode == 1, p.output
    got = re.findall(r"^.*?:(\d+:\d+): differs: (.*)$", p.stdout, re.M)
    assert len(got) == len(EXPECTED[name]), p.stdout
    for (pos, what), (epos, estart) in zip(got, EXPECTED[name]):
        assert pos == epos and what.startswith(estart), (pos, what, epos, estart)
        assert re.search(r" \(to do: [^)]", what), what


def test_strict_exits_0_when_nothing_is_faked(cbl, tmp_path):
    src = cbl.project("clean", "version: 0.2\nphases:\n  build:\n    commands:\n      - make\n")
    p = cbl("validate", "--strict", "-i", "aws/codebuild/standard:7.0", src, check=0)
    assert "nothing: 0 things a local run would fake or skip" in p.stdout, p.output
    # secrets: faked without a secrets file; resolved from one, not
    (src / "buildspec.yml").write_text("version: 0.2\nenv:\n  parameter-store:\n    PW: /app/pw\n"
                                       "  secrets-manager:\n    TOK: prod/api:token\n"
                                       "phases:\n  build:\n    commands:\n      - make\n")
    p = cbl("validate", "--strict", "-i", "aws/codebuild/standard:7.0", src, check=1)
    assert ("buildspec.yml:4:5: differs: parameter-store and secrets-manager: no secrets file, so nothing "
            "resolves them") in p.stdout, p.output
    secrets = tmp_path / "s.json"
    secrets.write_text(json.dumps({"parameter-store": {"/app/pw": "x"}}))
    p = cbl("validate", "--strict", "-i", "aws/codebuild/standard:7.0", "--secrets-file", secrets, src, check=1)
    assert "buildspec.yml:6:5: differs: secrets-manager TOK: " in p.stdout, p.output
    assert ":4:5: differs" not in p.stdout
    secrets.write_text(json.dumps({"parameter-store": {"/app/pw": "x"},
                                   "secrets-manager": {"prod/api": json.dumps({"token": "t"})}}))
    p = cbl("validate", "--strict", "-i", "aws/codebuild/standard:7.0", "--secrets-file", secrets, src, check=0)
    assert "differs" not in p.stdout, p.output


# ------------------------------------------------------------------ masking

KEY_A = "AKIAQ7EXAMPLE0KEY123"       # shaped like an access key id
KEY_S = "ASIAZZ9EXAMPLE000000"       # a temporary one
PLAIN_ID = "my-odd-key-id-77"         # AWS_ACCESS_KEY_ID's value, any shape


def test_masking_plants_each_kind(cbl, tmp_path):
    secrets = tmp_path / "s.json"
    secrets.write_text(json.dumps({
        "parameter-store": {"/app/pw": "ps-Secret-9931"},
        "secrets-manager": {"prod/db": json.dumps({"password": "sm-Json-4417"}), "plain": "sm-Whole-5523"}}))
    src = cbl.project("mask", f"""version: 0.2
env:
  parameter-store:
    PW: /app/pw
  secrets-manager:
    DBPW: prod/db:password
    WHOLE: plain
phases:
  build:
    commands:
      - echo "pw=$PW db=$DBPW whole=$WHOLE id=$AWS_ACCESS_KEY_ID"
      - echo "inline {KEY_A} and x{KEY_S}y and ps-Secret-9931 in the command text"
      - echo "url=https://{KEY_A}:s@example.invalid/"
      - test "$PW" = ps-Secret-9931 && test "$DBPW" = sm-Json-4417 && echo CHECK resolved
      - echo "{KEY_A}" >&2 && false
""")
    p = cbl("run", "--secrets-file", secrets, "-e", f"AWS_ACCESS_KEY_ID={PLAIN_ID}", "--json", src, check=1)
    planted = ["ps-Secret-9931", "sm-Json-4417", "sm-Whole-5523", PLAIN_ID, KEY_A, KEY_S]
    events = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith("{")]
    rec = events[-1]["build"]
    log = Path(rec["logs"]["deepLink"][len("file://"):]).read_text()
    assert "CHECK resolved" in log, "the values reached the commands"
    for s in planted:
        assert s not in p.output, s
        assert s not in log, s
        assert s not in json.dumps(rec["phases"]), s  # the phase contexts quote the log
    for s in planted[:3]:  # the record may list plaintext overrides, as the service's does
        assert s not in json.dumps(rec), s
    assert 'Running command echo "inline *** and x***y and *** in the command text"' in log
    assert "\ninline *** and x***y and *** in the command text\n" in log
    assert "pw=*** db=*** whole=*** id=***" in log
    assert "url=https://***:s@example.invalid/" in log
    assert re.search(r'Command did not exit successfully echo "\*\*\*" >&2 && false exit status 1', log), log


# ------------------------------------------------------- errors at their moment

def test_secondary_artifacts_without_primary_files_fail_at_upload(cbl):
    """The service parses this buildspec, runs every phase, and fails
    UPLOAD_ARTIFACTS (reference §4.3, §5.3); validate says so up front."""
    src = cbl.project("seconly", """version: 0.2
phases:
  build:
    commands:
      - echo CHECK built > out.txt
artifacts:
  secondary-artifacts:
    one:
      files:
        - out.txt
""")
    p = cbl("run", src, check=1)
    lines = [re.sub(r"^\[Container\] \S+ \S+ ", "", ln) for ln in p.stdout.splitlines()]
    i = lines.index("Phase complete: POST_BUILD State: SUCCEEDED")
    assert lines[i + 1:i + 4] == ["Phase context status code:  Message: ",
                                  "Phase complete: UPLOAD_ARTIFACTS State: FAILED",
                                  "Phase context status code: CLIENT_ERROR Message: no definition for primary "
                                  "artifacts in buildspec"], p.stdout
    assert "Running command echo CHECK built > out.txt" in p.stdout
    p = cbl("validate", src, check=2)
    assert "buildspec.yml:6:1: error: artifacts.files is required, even when only secondary-artifacts are defined" \
        in p.stderr, p.output


# ------------------------------------------------------------------ the log

def agent_lines(text):
    """The log without timestamps: agent lines as `[Container] <message>`."""
    return [re.sub(r"^\[Container\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6} ", "[Container] ", ln)
            for ln in text.splitlines()]


def stored_log(cbl, p):
    m = re.search(r"^Log:\s+(\S+)$", p.output, re.M)
    return Path(m.group(1)).read_text()


def test_log_templates_where_the_service_prints_them(cbl, tmp_path):
    """The 4.2 template table: each line at the moment the service prints it."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "x.txt").write_text("x")
    src = cbl.project("tmpl", """version: 0.2
phases:
  install:
    runtime-versions:
      python: latest
  build:
    commands:
      - echo CHECK one > out.txt
    finally:
      - echo CHECK fin
cache:
  paths:
    - 'cached/**/*'
artifacts:
  files:
    - out.txt
""")
    p = cbl("run", "--secondary-source", f"lib={lib}", src, check=0)
    lines = agent_lines(stored_log(cbl, p))
    srcdir = re.search(r"^\[Container\] CODEBUILD_SRC_DIR=(\S+)$", "\n".join(lines), re.M).group(1)
    # the service's first line, then ours: what really runs the build
    assert lines[0] == "[Container] Running on CodeBuild On-demand", lines[0]
    assert re.match(r"\[Container\] \[codebuild-local\] codebuild-local \S+ \(image host, ", lines[1]), lines[1]
    want = ["[Container] Waiting for agent ping", "[Container] Waiting for DOWNLOAD_SOURCE",
            "[Container] Phase is DOWNLOAD_SOURCE", f"[Container] CODEBUILD_SRC_DIR={srcdir}",
            re.compile(r"\[Container\] CODEBUILD_SRC_DIR_lib=/codebuild/output/src\d+/src/s3/01$"),
            re.compile(r"\[Container\] YAML location is /codebuild/output/src\d+/src/s3/00/buildspec\.yml$"),
            "[Container] No commands found for phase name: install",
            "[Container] Processing environment variables",
            "[Container] Selecting 'python' runtime version 'latest' based on manual selections...",
            f"[Container] Moving to directory {srcdir}",
            "[Container] Expanded cache path cached/**/*",
            "[Container] Registering with agent", "[Container] Phases found in YAML: 2",
            "[Container]  INSTALL: 0 commands", "[Container]  BUILD: 1 commands",
            "[Container] Phase complete: DOWNLOAD_SOURCE State: SUCCEEDED",
            "[Container] Phase context status code:  Message: ",
            "[Container] Entering phase INSTALL", "[Container] Phase complete: INSTALL State: SUCCEEDED",
            "[Container] Phase context status code:  Message: ",
            "[Container] Entering phase PRE_BUILD", "[Container] Phase complete: PRE_BUILD State: SUCCEEDED",
            "[Container] Phase context status code:  Message: ",
            "[Container] Entering phase BUILD", "[Container] Running command echo CHECK one > out.txt", "",
            "[Container] Running command echo CHECK fin", "CHECK fin", "",
            "[Container] Phase complete: BUILD State: SUCCEEDED",
            "[Container] Phase context status code:  Message: ",
            "[Container] Entering phase POST_BUILD", "[Container] Phase complete: POST_BUILD State: SUCCEEDED",
            "[Container] Phase context status code:  Message: ",
            "[Container] Expanding base directory path: .", "[Container] Assembling file list",
            "[Container] Expanding .", "[Container] Expanding file paths for base directory .",
            "[Container] Assembling file list", "[Container] Expanding out.txt", "[Container] Found 1 file(s)",
            "[Container] Preparing to copy secondary artifacts",
            "[Container] No secondary artifacts defined in buildspec",
            # report auto-discover (T21): two spaces after "path:"
            "[Container] Set report auto-discover timeout to 5 seconds",
            "[Container] Expanding base directory path:  .", "[Container] Assembling file list",
            "[Container] Expanding .", "[Container] Expanding file paths for base directory .",
            "[Container] Assembling file list", "[Container] Expanding **/*",
            re.compile(r"\[Container\] Found \d+ file\(s\)$"),
            "[Container] No matching auto-discover report paths found",
            re.compile(r"\[Container\] Report auto-discover file discovery took \d+\.\d{6} seconds$"),
            "[Container] Phase complete: UPLOAD_ARTIFACTS State: SUCCEEDED",
            "[Container] Phase context status code:  Message: "]
    # in this order, nothing else between but lines of our own ([codebuild-local] ...:
    # the local cache's in place of the S3 cache's, docs/fidelity.md T12)
    def own(ln):
        return ln.startswith("[Container] [codebuild-local] ")
    at = 1
    for w in want:
        while at < len(lines) and own(lines[at]):
            at += 1
        ok = at < len(lines) and (w.match(lines[at]) if isinstance(w, re.Pattern) else lines[at] == w)
        assert ok, f"{w!r} expected at line {at}:\n" + "\n".join(lines)
        at += 1
    # after UPLOAD_ARTIFACTS only the cache save (ours saves at the end, the
    # service's S3 upload starts with POST_BUILD: docs/fidelity.md T19)
    assert all(ln.startswith("[Container] [codebuild-local] Cache save ") for ln in lines[at:]), lines[at:]
    assert not any("Entering phase UPLOAD_ARTIFACTS" in ln or "FINALIZING" in ln for ln in lines)


def failure_tail(cbl, name, buildspec, check):
    src = cbl.project(name, buildspec)
    p = cbl("run", src, check=check)
    return agent_lines(stored_log(cbl, p))


def test_log_failure_examples_byte_for_byte(cbl):
    """Section 4.4's three failure examples, apart from timestamps and paths."""
    # a PRE_BUILD failure: the log ends at the context line
    lines = failure_tail(cbl, "e1", """version: 0.2
phases:
  pre_build:
    commands:
      - sh -c 'exit 1' | cat && exit 1
  build:
    commands:
      - echo never
""", 1)
    assert lines[-4:] == [
        "",
        "[Container] Command did not exit successfully sh -c 'exit 1' | cat && exit 1 exit status 1",
        "[Container] Phase complete: PRE_BUILD State: FAILED",
        "[Container] Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: "
        "sh -c 'exit 1' | cat && exit 1. Reason: exit status 1"], lines
    # PWD: bash's message at line 4 of the script, then POST_BUILD
    lines = failure_tail(cbl, "e2", "version: 0.2\nenv:\n  shell: bash\nphases:\n  build:\n    commands:\n"
                                    "      - PWD\n", 1)
    i = lines.index("[Container] Running command PWD")
    assert lines[i:i + 9] == [
        "[Container] Running command PWD",
        "/codebuild/output/tmp/script.sh: line 4: PWD: command not found",
        "",
        "[Container] Command did not exit successfully PWD exit status 127",
        "[Container] Phase complete: BUILD State: FAILED",
        "[Container] Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: "
        "PWD. Reason: exit status 127",
        "[Container] Entering phase POST_BUILD",
        "[Container] Phase complete: POST_BUILD State: SUCCEEDED",
        "[Container] Phase context status code:  Message: "], lines
    # an artifact path that does not exist
    lines = failure_tail(cbl, "e3", "version: 0.2\nphases:\n  build:\n    commands:\n      - 'true'\n"
                                    "artifacts:\n  files:\n    - imagedefinitions.json\n", 1)
    assert lines[-4:] == [
        "[Container] Expanding imagedefinitions.json",
        "[Container] Skipping invalid file path imagedefinitions.json",
        "[Container] Phase complete: UPLOAD_ARTIFACTS State: FAILED",
        "[Container] Phase context status code: CLIENT_ERROR Message: no matching artifact paths found"], lines


def test_command_with_colon_space_must_be_quoted(cbl):
    """Reference §1.9: `- echo a: b` is a mapping in YAML, not a command."""
    src = cbl.project("colon", "version: 0.2\nphases:\n  build:\n    commands:\n      - echo a: b\n")
    p = cbl("validate", src, check=2)
    assert ("buildspec.yml:5:9: error: phases.build.commands[0] is a mapping, not a string: quote the command "
            "(it contains ': ')") in p.stderr, p.output
    (src / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    commands:\n      - 'echo CHECK a: b'\n")
    p = cbl("run", src, check=0)
    assert "\nCHECK a: b\n" in p.stdout


# ------------------------------------------------- the environment variables page

def test_current_environment_variables_page(cbl):
    """The variables of the current documentation page (which has moved on
    from the reference's 2022 copy: CODEBUILD_PROJECT_ARN), each as the page
    describes it (docs/fidelity.md V rows)."""
    src = cbl.project("envpage", "version: 0.2\nphases:\n  build:\n    commands:\n      - env | sort\n")
    p = cbl("run", src, check=0)
    env = dict(ln.split("=", 1) for ln in p.stdout.splitlines() if re.match(r"^[A-Z][A-Z0-9_]*=", ln))
    rec = json.loads(Path(re.search(r"^Record:\s+(\S+)$", p.output, re.M).group(1)).read_text())
    region, account = rec["arn"].split(":")[3:5]
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == region
    assert env["CODEBUILD_BUILD_ARN"] == rec["arn"] and env["CODEBUILD_BUILD_ID"] == rec["id"]
    assert env["CODEBUILD_BUILD_ID"] == f"envpage:{env['CODEBUILD_LOG_PATH']}"
    assert env["CODEBUILD_PROJECT_ARN"] == f"arn:aws:codebuild:{region}:{account}:project/envpage"
    assert env["CODEBUILD_BUILD_IMAGE"] and env["CODEBUILD_BUILD_NUMBER"] == "1"
    assert env["CODEBUILD_BUILD_SUCCEEDING"] == "1" and env["CODEBUILD_INITIATOR"]
    assert re.fullmatch(r"arn:aws:kms:[^:]+:\d{12}:alias/aws/s3", env["CODEBUILD_KMS_KEY_ID"])
    assert re.fullmatch(r"/codebuild/output/src\d+/src", env["CODEBUILD_SRC_DIR"])
    assert re.fullmatch(r"\d{13}", env["CODEBUILD_START_TIME"]) and env["HOME"] == "/root"
    assert env["OLDPWD"] == "/codebuild/readonly", "as in real env dumps (reference §2.1)"
    # only set when public builds are on, or for a webhook / batch build: none here
    for name in env:
        assert not name.startswith("CODEBUILD_WEBHOOK_"), name
    assert "CODEBUILD_PUBLIC_BUILD_URL" not in env and "CODEBUILD_BATCH_BUILD_IDENTIFIER" not in env


def test_strict_report_with_the_project(cbl, tmp_path):
    """--project NAME: what the stored project holds that a local build does
    without, and its image instead of the host's."""
    doc = {"name": "vpcproj",
           "source": {"type": "NO_SOURCE", "buildspec": "version: 0.2\nphases:\n  build:\n    commands: [make]\n"},
           "artifacts": {"type": "S3", "location": "my-bucket"},
           "cache": {"type": "S3", "location": "my-bucket/cache"},
           "environment": {"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                           "computeType": "BUILD_GENERAL1_SMALL",
                           "environmentVariables": [{"name": "PW", "value": "/app/pw", "type": "PARAMETER_STORE"}]},
           "serviceRole": "arn:aws:iam::123456789012:role/r",
           "vpcConfig": {"vpcId": "vpc-0123", "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"]},
           "logsConfig": {"s3Logs": {"status": "ENABLED", "location": "my-bucket/logs"}},
           "fileSystemLocations": [{"type": "EFS", "location": "fs-1.efs.us-east-1.amazonaws.com:/",
                                    "mountPoint": "/mnt/efs", "identifier": "efs1"}],
           "buildBatchConfig": {"serviceRole": "arn:aws:iam::123456789012:role/r"}}
    f = tmp_path / "p.json"
    f.write_text(json.dumps(doc))
    cbl("create-project", "--cli-input-json", f"file://{f}", check=0)
    src = cbl.project("withproj", "version: 0.2\nphases:\n  build:\n    commands:\n      - make\n")
    p = cbl("validate", "--strict", "--project", "vpcproj", src, check=1)
    got = [ln.split(" differs: ", 1)[1] for ln in p.stdout.splitlines() if " differs: " in ln]
    starts = ["project vpcproj: vpcConfig vpc-0123: the build is not placed in the VPC",
              "project vpcproj: environment variables of type PARAMETER_STORE / SECRETS_MANAGER: no secrets file",
              "project vpcproj: artifacts type S3 (my-bucket): written to the build's directory, not uploaded",
              "project vpcproj: cache type S3: kept in this machine's cache store, not in S3",
              "project vpcproj: logsConfig s3Logs: the log is not written to S3",
              "project vpcproj: fileSystemLocations: EFS file systems are not mounted"]
    assert len(got) == len(starts), p.stdout
    for g, s in zip(got, starts):
        assert g.startswith(s), (g, s)
    assert "the host image" not in p.stdout, "the project names a CodeBuild image"
    assert re.search(r"buildspec\.yml: differs: project vpcproj: vpcConfig .* \(to do: .+\)$", p.stdout, re.M)
    p = cbl("validate", "--strict", "--project", "nope", src, check=2)
    assert "Project cannot be found" in p.stderr


BATCH_SPEC = """version: 0.2
batch:
  build-list:
    - identifier: plain
    - identifier: arm
      debug-session: true
      env:
        type: ARM_CONTAINER
phases:
  build:
    commands:
      - echo "$CODEBUILD_BATCH_BUILD_IDENTIFIER" > out.txt
reports:
  unit:
    files: [junit.xml]
artifacts:
  files: [out.txt]
  secondary-artifacts:
    extra:
      files: [out.txt]
"""


def test_strict_report_of_a_batch_and_a_webhook(cbl):
    """Batch builds run locally: --strict names only what the local batch does
    otherwise (a task's env.type and debug-session, the combined zip without
    secondary artifacts, batchReportMode REPORT_AGGREGATED_BATCH), never that
    the batch is not run. The project's webhook, stored by `create-webhook`,
    is a finding: no event is delivered locally; `webhook test` and `run
    --webhook-event` simulate one."""
    src = cbl.project("batchhook", BATCH_SPEC)
    p = cbl("validate", "--strict", "-i", "aws/codebuild/standard:7.0", src, check=1)
    got = re.findall(r"^.*?/buildspec\.yml:(\d+:\d+): differs: (batch.*)$", p.stdout, re.M)
    assert [pos for pos, _ in got] == ["5:7", "5:7", "16:1"], p.stdout
    assert got[0][1].startswith("batch task arm: env.type ARM_CONTAINER is not applied: the build is a "
                                "LINUX_CONTAINER on this machine's architecture"), got
    assert got[1][1].startswith("batch task arm: debug-session: there is no Session Manager session"), got
    assert got[2][1].startswith("batch: combined artifacts (run --combine-artifacts, the project's "
                                "combineArtifacts) hold each build's primary artifact only"), got
    assert "not run" not in p.stdout and "CODEBUILD_BATCH_BUILD_IDENTIFIER is empty" not in p.stdout, p.stdout
    # a fanout: its generated names, and its helpers only on the host image
    fan = cbl.project("fan", "version: 0.2\nbatch:\n  build-fanout:\n    parallelism: 2\n"
                      "phases:\n  build:\n    commands:\n      - echo $CODEBUILD_BATCH_BUILD_IDENTIFIER\n")
    p = cbl("validate", "--strict", "-i", "aws/codebuild/standard:7.0", fan, check=1)
    got = re.findall(r"^.*?/buildspec\.yml:(\d+:\d+): differs: (.*)$", p.stdout, re.M)
    assert [g[1].split(" (to do")[0] for g in got] == [
        "batch: build-fanout: its 2 builds are named shard_1 .. shard_2, our naming (the service documents none "
        "for generated builds)",
        "batch: build-fanout: codebuild-tests-run and codebuild-glob-search are on the PATH of host-image builds "
        "only, not in the image aws/codebuild/standard:7.0"], p.stdout
    assert [g[0] for g in got] == ["2:1", "2:1"]
    # the project: its batch settings and its webhook, made with the CLI faces
    cbl("create-project", "--name", "hooked", "--source", f"type=NO_SOURCE,buildspec={BATCH_SPEC}",
        "--artifacts", "type=NO_ARTIFACTS",
        "--environment", "type=LINUX_CONTAINER,image=aws/codebuild/standard:7.0,computeType=BUILD_GENERAL1_SMALL",
        "--service-role", "arn:aws:iam::123456789012:role/r",
        "--build-batch-config", json.dumps({"serviceRole": "arn:aws:iam::123456789012:role/r",
                                            "combineArtifacts": False,
                                            "batchReportMode": "REPORT_AGGREGATED_BATCH"}), check=0)
    p = cbl("validate", "--strict", "--project", "hooked", src, check=1)
    assert "webhook" not in p.stdout, p.stdout
    hook = cbl("create-webhook", "--project-name", "hooked", "--filter-groups",
               '[[{"type": "EVENT", "pattern": "PUSH"}], [{"type": "EVENT", "pattern": "PULL_REQUEST_CREATED"}]]',
               check=0)
    assert json.loads(hook.stdout)["webhook"]["payloadUrl"] == "/webhooks/hooked"
    p = cbl("validate", "--strict", "--project", "hooked", src, check=1)
    lines = [ln.split(f"{src}/", 1)[-1] for ln in p.stdout.splitlines() if " differs: " in ln]
    # combineArtifacts is off: the secondary artifacts stay in each build's folder, no finding
    assert not [ln for ln in lines if "combined artifacts" in ln], p.stdout
    assert [ln for ln in lines if ln.startswith("buildspec.yml:2:1: differs: batch: the project's batchReportMode "
                                                "REPORT_AGGREGATED_BATCH is not applied: each build of the batch "
                                                "keeps its own reports")], p.stdout
    hooks = [ln for ln in lines if "webhook" in ln]
    assert hooks == [
        "buildspec.yml: differs: project hooked: webhook (2 filter groups): webhooks are not delivered locally: "
        "no repository event reaches this machine, so no push or pull request starts a build (to do: simulate an "
        "event: `codebuild-local webhook test --project hooked --event EVENT ...` says whether it would start a "
        "build, `codebuild-local run --webhook-event EVENT ...` runs that build with its CODEBUILD_WEBHOOK_* "
        "variables)"], p.stdout
    # what the finding says to do works: webhook test reads the stored filter groups
    t = cbl("webhook", "test", "--project", "hooked", "--source", src, "--event", "PUSH", "--head-ref", "main",
            check=None)
    assert t.returncode == 0, t.output
    # deleted, the webhook is no finding any more
    cbl("delete-webhook", "--project-name", "hooked", check=0)
    p = cbl("validate", "--strict", "--project", "hooked", src, check=1)
    assert "webhook" not in p.stdout, p.stdout


# ------------------------------------------------------- artifact names (§1.3, §5.2)

def test_project_artifact_name_unless_override(cbl, tmp_path):
    """artifacts/name of the buildspec names the output only with the
    project's overrideArtifactName; otherwise the project's name does."""
    from test_launch import out_json, wait_done
    src = tmp_path / "src"
    src.mkdir()
    (src / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    commands:\n      - echo x > out.txt\n"
                                       "artifacts:\n  files: [out.txt]\n  name: bs-$CODEBUILD_BUILD_NUMBER.zip\n")
    locations = {}
    for override in (False, True):
        name = f"art{int(override)}"
        doc = {"name": name, "source": {"type": "NO_SOURCE", "location": f"file://{src}"},
               "artifacts": {"type": "S3", "location": "bucket", "name": "project-name.zip",
                             "overrideArtifactName": override},
               "environment": {"type": "LINUX_CONTAINER", "image": "host", "computeType": "BUILD_GENERAL1_SMALL"}}
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps(doc))
        out_json(cbl("create-project", "--cli-input-json", f"file://{f}"))
        b = out_json(cbl("start-build", "--project-name", name))["build"]
        done = wait_done(cbl, b["id"])
        assert done["buildStatus"] == "SUCCEEDED", done
        locations[override] = done["artifacts"]
    assert locations[False]["location"].endswith("/project-name.zip"), locations
    assert locations[False]["overrideArtifactName"] is False
    assert locations[True]["location"].endswith("/bs-1.zip"), locations
    assert locations[True]["overrideArtifactName"] is True
    # run has no project: the buildspec's name, evaluated
    p = cbl("run", src, check=0)
    assert "Artifact name resolved to bs-" in p.output


def test_invalid_phase_name_fails_download_source_in_the_agents_words(cbl):
    """A 2020 log: the context message is the agent's own text; our position
    and hint come on the line before it."""
    src = cbl.project("badphase", "version: 0.2\nphases:\n  install:\n    commands: [a]\n  artifacts:\n"
                                  "    files: ['**/*']\n")
    p = cbl("run", src, check=2)
    lines = agent_lines(stored_log(cbl, p))
    assert lines[-3:] == [
        "[Container] buildspec.yml:5:3: error: Invalid buildspec phase name: artifacts. Expecting: "
        "build,install,post_build,pre_build",
        "[Container] Phase complete: DOWNLOAD_SOURCE State: FAILED",
        "[Container] Phase context status code: YAML_FILE_ERROR Message: Invalid buildspec phase name: artifacts. "
        "Expecting: build,install,post_build,pre_build"], lines
    assert re.search(r"^\[Container\] YAML location is /codebuild/output/src\d+/src/buildspec\.yml$",
                     "\n".join(lines), re.M)


def test_fidelity_count_extraction_rules(tmp_path):
    """What counts as a statement: [doc ...] and [obs ...] tags after the
    first numbered section, outside code blocks, one per tag."""
    ref = tmp_path / "shared" / "reference"
    ref.mkdir(parents=True)
    (ref / "buildspec.md").write_text("""# Title

| tag | meaning |
| **[doc]** | legend, not a statement [obs] / [src] |

## 1. Keys

### 1.1 First

- One thing, wrapped
  over two lines. [doc] Another thing. [obs 2020]
- Not counted. [inferred] [doc-2022] [src]
```
[Container] a log line [doc]
```

### 1.2 Second

[doc/API]

| key | x | Table row. [doc, obs] |
""")
    (ref / "README.md").write_text("Every statement is tagged [doc] / [obs] / [src].\n")
    p = subprocess.run(["/usr/bin/python3", str(SCRIPT), "--shared", str(tmp_path / "shared"), "--list"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    got = [ln.split("\t") for ln in p.stdout.splitlines()]
    assert got == [["1.1-1", "1.1", "One thing, wrapped over two lines."],
                   ["1.1-2", "1.1", "Another thing."],
                   ["1.2-1", "1.2", "(the section) Second"],
                   ["1.2-2", "1.2", "key | x | Table row."]], got
    table = tmp_path / "t.md"
    table.write_text("| id | s | sec | status | test |\n| --- | --- | --- | --- | --- |\n"
                     "| 1.1-1 | a | 1.1 | matched | tests/e2e/test_fidelity.py::test_fidelity_count_extraction_rules |\n"
                     "| 1.1-2 | b | 1.1 | differs: why | |\n"
                     "| 1.2-1 | c | 1.2 | not applicable locally: why | |\n"
                     "| 1.2-2 | d | 1.2 | matched | |\n")
    p = subprocess.run(["/usr/bin/python3", str(SCRIPT), "--shared", str(tmp_path / "shared"), "--table", table],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "1.2-2 is matched but names no test" in p.stdout, p.stdout
