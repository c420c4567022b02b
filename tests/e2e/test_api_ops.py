"""The operations added to the model's coverage: report group CRUD and
DeleteReport, webhooks, source credentials, InvalidateProjectCache,
ListCuratedEnvironmentImages -- through `serve` with /usr/bin/aws and boto3,
and through the CLI faces; the rest of the model answers
UnknownOperationException and is named in the README."""
import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT, Runner
from test_api_validation import MODELS
from test_cache_cli import make_entry
from test_server import aws, clean_aws_env, client, raw, start_server  # noqa: F401 (fixture)

ARN = "arn:aws:codebuild:us-east-1:000000000000"
PROJECT = "opsapp"
BUILDSPEC = """version: 0.2
phases:
  build:
    commands:
      - 'true'
reports:
  unit:
    files: [junit.xml]
    file-format: JUNITXML
  pre:
    files: [junit.xml]
    file-format: JUNITXML
"""
JUNIT = """<?xml version="1.0"?>
<testsuites><testsuite name="s" tests="2">
<testcase classname="a.T" name="ok" time="0.01"/>
<testcase classname="a.T" name="bad" time="0.02"><failure message="no"/></testcase>
</testsuite></testsuites>
"""
ENV = "type=LINUX_CONTAINER,image=host,computeType=BUILD_GENERAL1_SMALL"


@pytest.fixture
def world(tmp_path, clean_aws_env):
    home = tmp_path / "state"
    home.mkdir()
    cbl = Runner(home, tmp_path)
    server = start_server(home)
    w = type("World", (), {})()
    w.cbl, w.home, w.server, w.tmp = cbl, home, server, tmp_path
    yield w
    assert server.stop() == 0, server.stderr


def ok(w, *args):
    p = aws(w.server.url, "codebuild", *args)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout) if p.stdout.strip() else {}


def fails(w, exc, *args):
    p = aws(w.server.url, "codebuild", *args)
    assert p.returncode != 0 and f"({exc})" in p.stderr, (p.stdout, p.stderr)
    return p.stderr


def create_project(w, name):
    ok(w, "create-project", "--name", name, "--source", "type=NO_SOURCE,buildspec=version: 0.2",
       "--artifacts", "type=NO_ARTIFACTS", "--environment", ENV,
       "--service-role", f"{ARN.replace(':codebuild:us-east-1', ':iam:')}:role/cb")


# ---- report groups ------------------------------------------------------------


def test_report_group_crud_and_builds_join_it(world):
    w = world
    g = ok(w, "create-report-group", "--name", f"{PROJECT}-pre", "--type", "TEST",
           "--export-config", "exportConfigType=NO_EXPORT", "--tags", "key=team,value=web")["reportGroup"]
    garn = f"{ARN}:report-group/{PROJECT}-pre"
    assert g["arn"] == garn and g["type"] == "TEST" and g["status"] == "ACTIVE"
    assert g["exportConfig"] == {"exportConfigType": "NO_EXPORT"} and g["tags"] == [{"key": "team", "value": "web"}]
    assert list(g) == ["arn", "name", "type", "exportConfig", "created", "lastModified", "tags", "status"]
    fails(w, "ResourceAlreadyExistsException", "create-report-group", "--name", f"{PROJECT}-pre",
          "--type", "TEST", "--export-config", "exportConfigType=NO_EXPORT")

    # a build's report for <project>-pre joins the group created above
    src = w.cbl.project(PROJECT, BUILDSPEC, {"junit.xml": JUNIT})
    w.cbl("run", "--sandbox", "none", src, check=0)  # a failed test case is not a failed build
    got = ok(w, "batch-get-report-groups", "--report-group-arns", garn)["reportGroups"][0]
    assert got["created"] == g["created"] and got["tags"] == g["tags"]
    reports = ok(w, "list-reports-for-report-group", "--report-group-arn", garn)["reports"]
    assert len(reports) == 1

    cb = client(w.server.url)
    upd = cb.update_report_group(arn=garn, tags=[{"key": "team", "value": "api"}])["reportGroup"]
    assert upd["tags"] == [{"key": "team", "value": "api"}] and upd["lastModified"] >= upd["created"]
    with pytest.raises(cb.exceptions.ResourceNotFoundException):
        cb.update_report_group(arn=f"{ARN}:report-group/nope", tags=[])

    # a group with reports is kept unless deleteReports
    err = fails(w, "InvalidInputException", "delete-report-group", "--arn", garn)
    assert "contains 1 report" in err
    unit = f"{ARN}:report-group/{PROJECT}-unit"
    unit_reports = ok(w, "list-reports-for-report-group", "--report-group-arn", unit)["reports"]
    ok(w, "delete-report", "--arn", unit_reports[0])
    assert ok(w, "batch-get-reports", "--report-arns", unit_reports[0])["reportsNotFound"] == unit_reports
    assert ok(w, "describe-test-cases", "--report-arn", reports[0])["testCases"]
    cb.delete_report_group(arn=garn, deleteReports=True)
    left = ok(w, "batch-get-report-groups", "--report-group-arns", garn)
    assert left["reportGroups"] == [] and left["reportGroupsNotFound"] == [garn]
    assert ok(w, "batch-get-reports", "--report-arns", reports[0])["reportsNotFound"] == reports
    # the CLI face
    w.cbl("create-report-group", "--name", "face-group", "--type", "CODE_COVERAGE",
          "--export-config", "exportConfigType=NO_EXPORT", check=0)
    p = w.cbl("delete-report-group", "--arn", f"{ARN}:report-group/face-group", check=0)
    assert p.stdout == ""


# ---- webhooks -------------------------------------------------------------------


def test_webhooks(world):
    w = world
    create_project(w, "hooked")
    fails(w, "ResourceNotFoundException", "create-webhook", "--project-name", "ghost")
    hook = ok(w, "create-webhook", "--project-name", "hooked", "--build-type", "BUILD",
              "--filter-groups", '[[{"type": "EVENT", "pattern": "PUSH"}]]')["webhook"]
    assert hook["payloadUrl"] == "/webhooks/hooked" and len(hook["secret"]) == 64
    assert hook["filterGroups"] == [[{"type": "EVENT", "pattern": "PUSH"}]]
    fails(w, "ResourceAlreadyExistsException", "create-webhook", "--project-name", "hooked")
    proj = ok(w, "batch-get-projects", "--names", "hooked")["projects"][0]
    assert proj["webhook"]["filterGroups"] == hook["filterGroups"]
    assert "secret" not in proj["webhook"]  # shown once
    assert hook["secret"] not in json.dumps(proj)

    cb = client(w.server.url)
    upd = cb.update_webhook(projectName="hooked", branchFilter="^main$", rotateSecret=True)["webhook"]
    assert upd["branchFilter"] == "^main$" and upd["secret"] != hook["secret"]
    assert upd["filterGroups"] == hook["filterGroups"]
    # UpdateProject keeps it
    ok(w, "update-project", "--name", "hooked", "--description", "d")
    proj = ok(w, "batch-get-projects", "--names", "hooked")["projects"][0]
    assert proj["webhook"]["branchFilter"] == "^main$" and "secret" not in proj["webhook"]
    ok(w, "delete-webhook", "--project-name", "hooked")
    assert "webhook" not in ok(w, "batch-get-projects", "--names", "hooked")["projects"][0]
    with pytest.raises(cb.exceptions.ResourceNotFoundException):
        cb.delete_webhook(projectName="hooked")
    with pytest.raises(cb.exceptions.ResourceNotFoundException):
        cb.update_webhook(projectName="hooked", branchFilter="x")


# ---- source credentials ---------------------------------------------------------


@pytest.fixture
def open_world(clean_aws_env):
    """A state directory every user may traverse (under a fresh 0755
    directory of the system's temporary area), so only the credentials
    file's own mode keeps other users out."""
    top = Path(tempfile.mkdtemp(prefix="cbl-creds-"))
    os.chmod(top, 0o755)
    home = top / "state"
    home.mkdir(mode=0o755)
    server = start_server(home)
    w = type("World", (), {})()
    w.cbl, w.home, w.server, w.tmp = Runner(home, top), home, server, top
    yield w
    assert server.stop() == 0, server.stderr
    shutil.rmtree(top)


def test_source_credentials_are_never_returned_nor_readable(open_world):
    w = open_world
    token = "ghp_cblTestTokenValue1234567890"
    arn = ok(w, "import-source-credentials", "--token", token, "--server-type", "GITHUB",
             "--auth-type", "PERSONAL_ACCESS_TOKEN")["arn"]
    assert arn == f"{ARN}:token/github"
    cb = client(w.server.url)
    cb.import_source_credentials(token="user-pass", serverType="BITBUCKET", authType="BASIC_AUTH",
                                 username="me")
    infos = cb.list_source_credentials()["sourceCredentialsInfos"]
    assert sorted((i["serverType"], i["authType"]) for i in infos) == [
        ("BITBUCKET", "BASIC_AUTH"), ("GITHUB", "PERSONAL_ACCESS_TOKEN")]
    listed = aws(w.server.url, "codebuild", "list-source-credentials")
    assert token not in listed.stdout and "user-pass" not in listed.stdout
    fails(w, "ResourceAlreadyExistsException", "import-source-credentials", "--token", "t2",
          "--server-type", "GITHUB", "--auth-type", "PERSONAL_ACCESS_TOKEN", "--no-should-overwrite")
    fails(w, "InvalidInputException", "import-source-credentials", "--token", "t", "--server-type",
          "GITLAB", "--auth-type", "BASIC_AUTH")
    fails(w, "InvalidInputException", "import-source-credentials", "--token", "t", "--server-type",
          "GITLAB", "--auth-type", "OAUTH")

    f = w.home / "source-credentials.json"
    st = f.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.getuid()
    # attack: another user reads it (the directories are open, so only the
    # file's mode stands in the way; a 0644 file beside it proves the reader
    # gets that far)
    os.chmod(w.home, 0o755)
    probe = w.home / "probe.txt"
    probe.write_text("visible\n")
    os.chmod(probe, 0o644)

    def as_nobody(path):
        return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat",
                               str(path)], capture_output=True, text=True)

    assert as_nobody(probe).stdout == "visible\n"
    p = as_nobody(f)
    assert p.returncode != 0 and "Permission denied" in p.stderr and token not in p.stdout

    assert ok(w, "delete-source-credentials", "--arn", arn) == {"arn": arn}
    fails(w, "ResourceNotFoundException", "delete-source-credentials", "--arn", arn)
    assert token not in f.read_text()
    # the CLI face
    p = w.cbl("list-source-credentials", check=0)
    assert [i["serverType"] for i in json.loads(p.stdout)["sourceCredentialsInfos"]] == ["BITBUCKET"]


def test_credentials_file_mode_whatever_the_umask(tmp_path, clean_aws_env):
    home = tmp_path / "state"
    home.mkdir()
    old = os.umask(0)
    try:
        server = start_server(home)
    finally:
        os.umask(old)
    try:
        status, _, body = raw(server.url, "CodeBuild_20161006.ImportSourceCredentials", json.dumps(
            {"token": "secret-token", "serverType": "GITLAB", "authType": "PERSONAL_ACCESS_TOKEN"}))
        assert status == 200, body
        assert stat.S_IMODE((home / "source-credentials.json").stat().st_mode) == 0o600
    finally:
        assert server.stop() == 0


# ---- cache, curated images -------------------------------------------------------


def test_invalidate_project_cache(world):
    w = world
    for name in ("web", "api"):
        create_project(w, name)
    web, _ = make_entry(w.home / "cache", "web", None, 2)
    web_key, _ = make_entry(w.home / "cache", "web", "npm-1", 1)
    api, _ = make_entry(w.home / "cache", "api", None, 1)
    scopes = [e["scope"] for e in json.loads(w.cbl("cache", "ls", "--json", check=0).stdout)]
    assert scopes == ["api", "web", "web"]
    assert ok(w, "invalidate-project-cache", "--project-name", "web") == {}
    scopes = [e["scope"] for e in json.loads(w.cbl("cache", "ls", "--json", check=0).stdout)]
    assert scopes == ["api"]
    objs = w.home / "cache" / "objects"
    assert not (objs / web).exists() and not (objs / web_key).exists() and (objs / api).exists()
    fails(w, "ResourceNotFoundException", "invalidate-project-cache", "--project-name", "ghost")
    w.cbl("invalidate-project-cache", "--project-name", "api", check=0)
    assert json.loads(w.cbl("cache", "ls", "--json", check=0).stdout or "[]") == []


def test_list_curated_environment_images(world):
    w = world
    got = ok(w, "list-curated-environment-images")
    if not (MODELS / "codebuild.service-2.json").is_file():
        pytest.skip("no ../shared/reference/models")
    model = json.loads((MODELS / "codebuild.service-2.json").read_text())["shapes"]
    platforms = {p["platform"]: p for p in got["platforms"]}
    assert set(platforms) <= set(model["PlatformType"]["enum"]) and "UBUNTU" in platforms
    names = set()
    for p in got["platforms"]:
        for lang in p["languages"]:
            assert lang["language"] in model["LanguageType"]["enum"]
            for im in lang["images"]:
                assert set(im) == {"name", "description", "versions"} and im["versions"]
                names.add(im["name"])
    base = {i["name"] for l in platforms["UBUNTU"]["languages"] if l["language"] == "BASE" for i in l["images"]}
    assert "aws/codebuild/standard:7.0" in base
    catalog = json.loads((ROOT / "images" / "catalog.json").read_text())["images"]
    assert names == {i["name"] for i in catalog}
    assert client(w.server.url).list_curated_environment_images() ["platforms"] == got["platforms"]
    assert json.loads(w.cbl("list-curated-environment-images", check=0).stdout) == got


# ---- what is still unsupported -----------------------------------------------------


def test_unsupported_operations_are_named_in_the_readme(world):
    w = world
    model = json.loads((ROOT / "store" / "model" / "codebuild.json").read_text())
    readme = (ROOT / "README.md").read_text()
    missing = []
    unsupported = 0
    for op in sorted(model["operations"]):
        status, _, body = raw(w.server.url, f"CodeBuild_20161006.{op}", "{}")
        if body.get("__type") == "UnknownOperationException":
            unsupported += 1
            assert status == 400
            if f"`{op}`" not in readme:
                missing.append(op)
    assert unsupported > 0 and not missing, missing


# ---- the faces print what aws prints ------------------------------------------------


def test_faces_print_what_aws_prints(world):
    w = world
    w.cbl("create-report-group", "--name", "cmp-group", "--type", "TEST", "--export-config",
          "exportConfigType=NO_EXPORT", "--tags", "key=a,value=b", check=0)
    w.cbl("import-source-credentials", "--token", "t0ken", "--server-type", "GITLAB", "--auth-type",
          "PERSONAL_ACCESS_TOKEN", check=0)
    for args in (["list-curated-environment-images"], ["list-source-credentials"],
                 ["batch-get-report-groups", "--report-group-arns", f"{ARN}:report-group/cmp-group"]):
        mine = json.loads(w.cbl(*args, check=0).stdout)
        assert mine == ok(w, *args), args
