"""`replay`: a build of `serve` (standing in for CodeBuild: it speaks the same
protocol) reproduced from its batch-get-builds output, from the API itself
(--from-aws with a profile of a test ~/.aws/credentials), and from a Build
record written by hand in the documented shape; the comparison names the
first divergent command when the local source differs on purpose."""
import json
import os
import subprocess

import pytest

from test_server import AKID, SECRET, aws, start_server

BUILDSPEC = """version: 0.2
phases:
  install:
    commands:
      - echo "installing for $GREETING"
  build:
    commands:
      - echo "source version $CODEBUILD_SOURCE_VERSION"
      - test -f ok.txt
      - echo "secondary $(cat $CODEBUILD_SRC_DIR_extra/extra.txt)"
      - echo "built $(cat ok.txt)"
      - test "$TOKEN" = t0k3n-value && echo "token ok"
"""


def git(cwd, *args):
    return subprocess.run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repos(tmp_path):
    main = tmp_path / "app"
    main.mkdir()
    git(main, "init", "-q", "-b", "main")
    (main / "buildspec.yml").write_text(BUILDSPEC)
    (main / "ok.txt").write_text("v1\n")
    git(main, "add", ".")
    git(main, "commit", "-qm", "one")
    # a pull request's head: refs/pull/7/head
    git(main, "checkout", "-qb", "pr7")
    (main / "ok.txt").write_text("v2\n")
    git(main, "commit", "-qam", "two")
    git(main, "update-ref", "refs/pull/7/head", "pr7")
    git(main, "checkout", "-q", "main")
    extra = tmp_path / "extra"
    extra.mkdir()
    git(extra, "init", "-q", "-b", "main")
    (extra / "extra.txt").write_text("from extra\n")
    git(extra, "add", ".")
    git(extra, "commit", "-qm", "extra")
    return main, extra


SECRETS = {"parameter-store": {"/app/token": "t0k3n-value"}}


@pytest.fixture
def secrets(tmp_path):
    f = tmp_path / "secrets.json"
    f.write_text(json.dumps(SECRETS))
    return f


@pytest.fixture
def api(home, secrets):
    s = start_server(home, "--max-builds", "2", "--secrets-file", str(secrets))
    yield s
    s.stop()


def cli(url, *args, **kw):
    p = aws(url, "codebuild", *args, **kw)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout) if p.stdout.strip() else {}


def cloud_build(api, repos):
    """A build started over the API with overrides, pr/7 and a secondary source."""
    main, extra = repos
    cli(api.url, "create-project", "--name", "app",
        "--source", json.dumps({"type": "GITHUB", "location": f"file://{main}"}),
        "--secondary-sources", json.dumps([{"type": "GITHUB", "location": f"file://{extra}",
                                            "sourceIdentifier": "extra"}]),
        "--artifacts", "type=NO_ARTIFACTS",
        "--environment", json.dumps({"type": "LINUX_CONTAINER", "image": "host",
                                     "computeType": "BUILD_GENERAL1_SMALL",
                                     "environmentVariables": [{"name": "GREETING", "value": "project"},
                                                              {"name": "TOKEN", "value": "/app/token",
                                                               "type": "PARAMETER_STORE"}]}),
        "--service-role", "arn:aws:iam::000000000000:role/codebuild")
    b = cli(api.url, "start-build", "--project-name", "app", "--source-version", "pr/7",
            "--environment-variables-override", "name=GREETING,value=override,type=PLAINTEXT")["build"]
    for _ in range(600):
        out = cli(api.url, "batch-get-builds", "--ids", b["id"])
        if out["builds"][0]["buildComplete"]:
            return out
        import time
        time.sleep(0.1)
    raise AssertionError("the build did not end")


def statuses(cmp):
    return {r["phaseType"]: (r["cloud"] or {}).get("status") for r in cmp["phases"]}


def test_replay_batch_get_builds_output(api, repos, cbl, tmp_path, secrets):
    out = cloud_build(api, repos)
    build = out["builds"][0]
    assert build["buildStatus"] == "SUCCEEDED", build
    f = tmp_path / "builds.json"
    f.write_text(json.dumps(out))
    # the parameter-store variable is named up front; its value comes from a secrets file
    p = cbl("replay", f)
    assert p.returncode == 2 and "secret: PARAMETER_STORE TOKEN (parameter /app/token)" in p.stdout, p.output
    p = cbl("replay", f, "--json", "--secrets-file", secrets)
    assert p.returncode == 0, p.output
    cmp = json.loads(p.stdout)
    assert cmp["sameStatus"] and cmp["local"]["status"] == "SUCCEEDED"
    assert all(r["same"] for r in cmp["phases"] if r["phaseType"] not in ("QUEUED",)), cmp["phases"]
    # the text view: the table and the verdict, and the local build ran pr/7's commit
    p = cbl("replay", f, "--secrets-file", secrets)
    assert p.returncode == 0, p.output
    assert "token ok" in p.output and "t0k3n-value" not in p.output
    assert "Reproduced: the cloud build ended SUCCEEDED, the local one SUCCEEDED." in p.stdout
    assert "built v2" in p.output and "installing for override" in p.output
    assert "source version pr/7" in p.output
    assert "secondary from extra" in p.output


def aws_home(tmp_path):
    home = tmp_path / "userhome"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(
        f"[default]\naws_access_key_id = WRONG\naws_secret_access_key = wrong\n\n"
        f"[replayer]\naws_access_key_id = {AKID}\naws_secret_access_key = {SECRET}\n")
    (home / ".aws" / "config").write_text("[profile replayer]\nregion = us-east-1\n")
    return {"HOME": str(home), "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
            "AWS_CONFIG_FILE": str(home / ".aws" / "config"), "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}


def test_replay_from_aws_with_a_profile(api, repos, cbl, tmp_path, secrets):
    build = cloud_build(api, repos)["builds"][0]
    env = aws_home(tmp_path)
    p = cbl("replay", "--from-aws", build["id"], "--profile", "replayer", "--endpoint-url", api.url, "--json",
            "--secrets-file", secrets, env=env)
    assert p.returncode == 0, p.output
    cmp = json.loads(p.stdout)
    assert cmp["sameStatus"] and cmp["logCompared"]
    assert cmp["firstDivergentCommand"] is None, cmp
    assert cmp["firstDivergentLine"] is None, cmp
    # the default profile's keys are wrong: the server says so, and nothing runs
    p = cbl("replay", "--from-aws", build["id"], "--endpoint-url", api.url, env=env)
    assert p.returncode == 2, p.output
    assert "UnrecognizedClientException" in p.stderr or "InvalidSignatureException" in p.stderr, p.output


def test_a_local_source_that_differs_names_the_first_divergent_command(api, repos, cbl, tmp_path, secrets):
    build = cloud_build(api, repos)["builds"][0]
    main, _ = repos
    local = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(main), str(local))
    git(local, "checkout", "-q", "pr7")
    os.remove(local / "ok.txt")  # on purpose: `test -f ok.txt` now fails
    env = aws_home(tmp_path)
    p = cbl("replay", "--from-aws", build["id"], "--profile", "replayer", "--endpoint-url", api.url,
            "--source", local, "--json", "--secrets-file", secrets, env=env)
    assert p.returncode == 1, p.output
    cmp = json.loads(p.stdout)
    assert not cmp["sameStatus"]
    dc = cmp["firstDivergentCommand"]
    assert dc["cloud"]["command"] == "test -f ok.txt" and dc["cloud"]["exitStatus"] == 0, dc
    assert dc["local"]["command"] == "test -f ok.txt" and dc["local"]["exitStatus"] == 1, dc
    assert dc["cloud"]["phase"] == "BUILD"
    assert statuses(cmp)["BUILD"] == "SUCCEEDED"
    build_row = [r for r in cmp["phases"] if r["phaseType"] == "BUILD"][0]
    assert build_row["local"]["status"] == "FAILED" and not build_row["same"]


def documented_shape_record(src):
    """A Build in the shape of the AWS CLI documentation's batch-get-builds
    example (our own values), with fields `serve` never produces."""
    return {"builds": [{
        "id": "codebuild-demo-project:e9c4f4df-3f43-41d2-ab3a-60fe2EXAMPLE",
        "arn": "arn:aws:codebuild:us-west-2:123456789012:build/codebuild-demo-project:e9c4f4df-3f43-41d2-ab3a-60fe2EXAMPLE",
        "buildNumber": 4, "startTime": 1498500917.0, "endTime": 1498500984.0,
        "currentPhase": "COMPLETED", "buildStatus": "FAILED", "sourceVersion": "main",
        "resolvedSourceVersion": git(src, "rev-parse", "main"),
        "projectName": "codebuild-demo-project",
        "phases": [
            {"phaseType": "SUBMITTED", "phaseStatus": "SUCCEEDED", "durationInSeconds": 0},
            {"phaseType": "PROVISIONING", "phaseStatus": "SUCCEEDED", "durationInSeconds": 25},
            {"phaseType": "DOWNLOAD_SOURCE", "phaseStatus": "SUCCEEDED", "durationInSeconds": 2},
            {"phaseType": "INSTALL", "phaseStatus": "SUCCEEDED", "durationInSeconds": 0},
            {"phaseType": "PRE_BUILD", "phaseStatus": "SUCCEEDED", "durationInSeconds": 0},
            {"phaseType": "BUILD", "phaseStatus": "FAILED", "durationInSeconds": 3,
             "contexts": [{"statusCode": "COMMAND_EXECUTION_ERROR",
                           "message": "Error while executing command: make. Reason: exit status 2"}]},
            {"phaseType": "POST_BUILD", "phaseStatus": "SUCCEEDED", "durationInSeconds": 0},
            {"phaseType": "UPLOAD_ARTIFACTS", "phaseStatus": "SUCCEEDED", "durationInSeconds": 0},
            {"phaseType": "FINALIZING", "phaseStatus": "SUCCEEDED", "durationInSeconds": 4},
            {"phaseType": "COMPLETED"}],
        "source": {"type": "GITHUB", "location": f"file://{src}", "gitCloneDepth": 1,
                   "buildspec": "version: 0.2\nphases:\n  build:\n    commands:\n      - echo building\n"
                                "      - exit 2\n",
                   "reportBuildStatus": False, "insecureSsl": False},
        "secondarySources": [], "secondarySourceVersions": [],
        "artifacts": {"location": "arn:aws:s3:::codebuild-123456789012-output-bucket/codebuild-demo-project"},
        "cache": {"type": "NO_CACHE"},
        "environment": {"type": "LINUX_CONTAINER", "image": "host", "computeType": "BUILD_GENERAL1_SMALL",
                        "environmentVariables": [{"name": "STAGE", "value": "test", "type": "PLAINTEXT"}],
                        "privilegedMode": False, "imagePullCredentialsType": "CODEBUILD"},
        "serviceRole": "arn:aws:iam::123456789012:role/service-role/codebuild-demo-service-role",
        "logs": {"groupName": "/aws/codebuild/codebuild-demo-project",
                 "streamName": "e9c4f4df-3f43-41d2-ab3a-60fe2EXAMPLE",
                 "deepLink": "https://console.aws.amazon.com/cloudwatch/home?region=us-west-2#logEvent:"},
        "timeoutInMinutes": 60, "queuedTimeoutInMinutes": 480, "buildComplete": True,
        "initiator": "MyDemoUser",
        "encryptionKey": "arn:aws:kms:us-west-2:123456789012:alias/aws/s3",
        "vpcConfig": {"vpcId": "vpc-0123", "subnets": ["subnet-0123"], "securityGroupIds": ["sg-0123"]},
        "networkInterface": {"subnetId": "subnet-0123", "networkInterfaceId": "eni-0123"},
        "fileSystemLocations": [], "reportArns": [], "exportedEnvironmentVariables": [],
        "debugSession": {"sessionEnabled": False}, "buildBatchArn": None,
    }], "buildsNotFound": []}


def test_a_record_written_by_hand_replays(cbl, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    git(src, "init", "-q", "-b", "main")
    (src / "README").write_text("x\n")
    git(src, "add", ".")
    git(src, "commit", "-qm", "x")
    f = tmp_path / "record.json"
    f.write_text(json.dumps(documented_shape_record(src)))
    log = tmp_path / "cloud.log"
    log.write_text("[Container] 2017/06/26 18:15:42 Entering phase BUILD\n"
                   "[Container] 2017/06/26 18:15:42 Running command echo building\n"
                   "building\n\n"
                   "[Container] 2017/06/26 18:15:42 Running command exit 2\n"
                   "[Container] 2017/06/26 18:15:42 Command did not exit successfully exit 2 exit status 2\n")
    p = cbl("replay", f, "--log", log)
    assert p.returncode == 1, p.output
    assert "note: the build ran in a VPC" in p.stdout
    assert "note: artifacts went to S3" in p.stdout
    assert "Reproduced: the cloud build ended FAILED, the local one FAILED." in p.stdout
    assert "Every command had the same outcome." in p.stdout, p.stdout
    assert "The commands' output is the same." in p.stdout, p.stdout


def test_secrets_are_named_before_anything_runs(cbl, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    git(src, "init", "-q", "-b", "main")
    (src / "README").write_text("x\n")
    git(src, "add", ".")
    git(src, "commit", "-qm", "x")
    rec = documented_shape_record(src)
    rec["builds"][0]["environment"]["environmentVariables"] += [
        {"name": "TOKEN", "value": "/app/token", "type": "PARAMETER_STORE"},
        {"name": "DBPASS", "value": "prod/db:password", "type": "SECRETS_MANAGER"}]
    f = tmp_path / "record.json"
    f.write_text(json.dumps(rec))
    p = cbl("replay", f)
    assert p.returncode == 2, p.output
    assert "secret: PARAMETER_STORE TOKEN (parameter /app/token)" in p.stdout
    assert "--secrets-file" in p.stderr
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({"parameter-store": {"/app/token": "t0k"}}))
    p = cbl("replay", f, "--secrets-file", secrets)
    assert p.returncode == 2, p.output
    assert "SECRETS_MANAGER DBPASS (secret prod/db:password) is not in" in p.stderr
    assert "Entering phase" not in p.output  # nothing ran


def test_a_record_that_cannot_be_read_is_named_without_a_position(cbl, tmp_path):
    """jansson reports an open failure at -1:-1: no position then, only the
    system's reason; a syntax error keeps its line:column."""
    missing = tmp_path / "missing.json"
    p = cbl("replay", missing)
    assert p.returncode == 2, p.output
    assert f"cannot open '{missing}': No such file or directory" in p.stderr, p.stderr
    assert ":-1:-1:" not in p.stderr, p.stderr
    p = cbl("replay", tmp_path)
    assert p.returncode == 2 and f"cannot read '{tmp_path}': Is a directory" in p.stderr, p.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"builds": [\n  {"id": }\n')
    p = cbl("replay", bad)
    assert p.returncode == 2 and f"{bad}:2:10: unexpected token" in p.stderr, p.output
    p = cbl("webhook", "test", "--filter-groups", f"file://{missing}", "--event", "PUSH", "--head-ref", "refs/heads/main")
    assert p.returncode == 2, p.output
    assert f"--filter-groups: cannot open '{missing}': No such file or directory" in p.stderr, p.stderr


def test_a_record_the_user_may_not_read(tmp_path):
    from conftest import UserRunner, rootless_user
    r = UserRunner(rootless_user())
    try:
        secret = r.tmp_path / "root-only.json"
        secret.write_text("{}")
        os.chmod(secret, 0o600)  # root's: the user cannot open it
        p = r("replay", secret)
        assert p.returncode == 2, p.output
        assert f"cannot open '{secret}': Permission denied" in p.stderr, p.stderr
    finally:
        r.cleanup()


def test_credential_chain_errors(cbl, tmp_path):
    env = aws_home(tmp_path)
    (tmp_path / "userhome" / ".aws" / "config").write_text(
        "[profile sso]\nsso_start_url = https://example.invalid/start\nsso_region = us-east-1\n")
    p = cbl("replay", "--from-aws", "x:y", "--profile", "sso", "--endpoint-url", "http://127.0.0.1:9", env=env)
    assert p.returncode == 2 and "uses SSO (sso_start_url)" in p.stderr, p.output
    p = cbl("replay", "--from-aws", "x:y", "--profile", "nope", "--endpoint-url", "http://127.0.0.1:9", env=env)
    assert p.returncode == 2 and "could not be found" in p.stderr, p.output


def test_the_client_retries_throttling_and_5xx(cbl, tmp_path):
    """A stand-in answering ThrottlingException, then a 503, then the Build:
    the SDKs' retries (backoff with jitter) get through; every request
    carries a SigV4 Authorization that signs X-Amz-Target and Content-Type."""
    import http.server
    import threading

    record = {"builds": [{
        "id": "pj:11111111-2222-3333-4444-555555555555", "projectName": "pj", "buildStatus": "SUCCEEDED",
        "source": {"type": "NO_SOURCE", "buildspec": "version: 0.2\nphases:\n  build:\n    commands:\n"
                                                     "      - echo retried\n"},
        "environment": {"type": "LINUX_CONTAINER", "image": "host", "computeType": "BUILD_GENERAL1_SMALL"},
        "logs": {"groupName": "/aws/codebuild/pj", "streamName": "11111111-2222-3333-4444-555555555555"},
        "phases": [{"phaseType": "BUILD", "phaseStatus": "SUCCEEDED", "durationInSeconds": 1}]}]}
    seen = []

    class H(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
            target = self.headers["X-Amz-Target"]
            seen.append((target, self.headers["Authorization"]))
            n = sum(1 for t, _ in seen if t == target)
            if target.endswith("BatchGetBuilds") and n == 1:
                code, body = 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
            elif target.endswith("BatchGetBuilds") and n == 2:
                code, body = 503, {"__type": "ServiceUnavailableException", "message": "try later"}
            elif target.endswith("BatchGetBuilds"):
                code, body = 200, record
            elif target.endswith("GetLogEvents") and req.get("nextToken") == "f/1":
                code, body = 200, {"events": [], "nextForwardToken": "f/1", "nextBackwardToken": "b/1"}
            elif target.endswith("GetLogEvents"):
                code, body = 200, {"events": [{"timestamp": 1, "message": "retried\n"}],
                                   "nextForwardToken": "f/1", "nextBackwardToken": "b/1"}
            else:
                code, body = 400, {"__type": "ResourceNotFoundException", "message": "no"}
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        p = cbl("replay", "--from-aws", "pj:11111111-2222-3333-4444-555555555555", "--endpoint-url",
                f"http://127.0.0.1:{srv.server_address[1]}", "--json",
                env={"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "eu-west-1"})
    finally:
        srv.shutdown()
    assert p.returncode == 0, p.output
    assert [t for t, _ in seen].count("CodeBuild_20161006.BatchGetBuilds") == 3
    for _, auth in seen:
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert "/eu-west-1/" in auth
        assert "SignedHeaders=content-type;host;x-amz-date;x-amz-target" in auth
    cmp = json.loads(p.stdout)
    assert cmp["logCompared"] and cmp["firstDivergentLine"] is None, cmp
