"""UPLOAD_ARTIFACTS end to end: the files CodeBuild would upload, and reports."""
import json
import os
import re
import subprocess

from conftest import ROOT


def listing(path):
    out = subprocess.run(["unzip", "-Z1", str(path)], capture_output=True, text=True, check=True)
    return sorted(out.stdout.split())


def test_primary_and_secondary_zip(cbl, tmp_path):
    src = cbl.project("arts", """version: 0.2
phases:
  build:
    commands:
      - mkdir -p dist/sub docs && echo a > dist/a.txt && echo b > dist/sub/b.txt && echo d > docs/readme.md
      - echo x > dist/.hidden && echo v > version.txt
artifacts:
  files:
    - '**/*'
  base-directory: dist
  exclude-paths:
    - '**/.*'
  name: app-$CODEBUILD_BUILD_NUMBER
  secondary-artifacts:
    docs:
      files:
        - docs/*
        - version.txt
      discard-paths: yes
""")
    out = tmp_path / "out"
    p = cbl("run", "-a", out, src, check=0)
    assert listing(out / "artifacts.zip") == ["a.txt", "sub/b.txt"]
    assert listing(out / "docs.zip") == ["readme.md", "version.txt"]
    assert "Artifact name resolved to app-1" in p.output
    assert "Preparing to copy secondary artifacts" in p.output
    rec = json.loads(cbl("batch-get-builds", "--ids", p.output.split("Build ")[-1].split()[0],
                         check=0).stdout)["builds"][0]
    art = rec["artifacts"]
    # published under its resolved name too (the S3 key on the service), which the record names
    assert art["location"] == str(out / "app-1")
    assert (out / "app-1").read_bytes() == (out / "artifacts.zip").read_bytes()
    assert len(art["sha256sum"]) == 64 and len(art["md5sum"]) == 32
    assert art["overrideArtifactName"] is True
    sha = subprocess.run(["sha256sum", str(out / "artifacts.zip")], capture_output=True,
                         text=True).stdout.split()[0]
    assert art["sha256sum"] == sha
    assert rec["secondaryArtifacts"][0]["artifactIdentifier"] == "docs"


def test_no_match_fails_upload(cbl, tmp_path):
    src = cbl.project("nomatch", """version: 0.2
phases:
  build:
    commands:
      - echo building
artifacts:
  files:
    - imagedefinitions.json
""")
    p = cbl("run", "-a", tmp_path / "out", src, check=1)
    assert "Skipping invalid file path imagedefinitions.json" in p.output
    assert "Phase complete: UPLOAD_ARTIFACTS State: FAILED" in p.output
    assert ("Phase context status code: CLIENT_ERROR Message: no matching artifact paths found"
            in p.output)
    assert not (tmp_path / "out" / "artifacts.zip").exists()


def test_packaging_none_and_build_failure_still_uploads(cbl, tmp_path):
    src = cbl.project("none", """version: 0.2
phases:
  build:
    commands:
      - echo partial > out.txt
      - false
artifacts:
  files:
    - out.txt
""")
    out = tmp_path / "o"
    p = cbl("run", "-a", out, "--artifacts-packaging", "NONE", src, check=1)
    assert (out / "artifacts" / "out.txt").read_text() == "partial\n"
    assert "Phase complete: UPLOAD_ARTIFACTS State: SUCCEEDED" in p.output


def test_reports_from_real_pytest(cbl, tmp_path):
    src = cbl.project("rep", """version: 0.2
phases:
  build:
    commands:
      - /usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml=reports/junit.xml tests || true
reports:
  unit:
    files:
      - '**/*.xml'
    base-directory: reports
  broken:
    files:
      - broken.xml
""", files={
        "tests/test_x.py": "import pytest\n\ndef test_ok():\n    assert 1\n\n"
                           "def test_bad():\n    assert 1 == 2, 'one is not two'\n\n"
                           "@pytest.mark.skip\ndef test_skip():\n    pass\n",
        "broken.xml": "<testsuites><testsuite><testcase name='x'>",
    })
    rdir = tmp_path / "reports-out"
    p = cbl("run", "--reports", rdir, src, check=0)
    assert "Report rep-unit FAILED: 3 tests: 1 succeeded, 1 failed, 0 errors, 1 skipped" in p.output
    assert "test_bad" in p.output and "one is not two" in p.output
    assert "Report rep-broken FAILED" in p.output
    cases = json.loads((rdir / "rep-unit" / "test-cases.json").read_text())["testCases"]
    assert {c["status"] for c in cases} == {"SUCCEEDED", "FAILED", "SKIPPED"}
    rep = json.loads((rdir / "rep-unit" / "report.json").read_text())["reports"][0]
    assert rep["type"] == "TEST" and rep["testSummary"]["total"] == 3
    assert rep["executionId"].startswith("arn:aws:codebuild:us-east-1:000000000000:build/rep:")
    assert (rdir / "rep-unit" / "raw" / "junit.xml").exists()
    rec_id = p.output.split("Build ")[-1].split()[0]
    rec = json.loads(cbl("batch-get-builds", "--ids", rec_id, check=0).stdout)["builds"][0]
    assert len(rec["reportArns"]) == 2
    assert rec["buildStatus"] == "SUCCEEDED", "reports never fail the build"


def test_zip_is_deterministic(cbl, tmp_path):
    src = cbl.project("det", """version: 0.2
phases:
  build:
    commands:
      - echo same
artifacts:
  files:
    - buildspec.yml
""")
    cbl("run", "-a", tmp_path / "one", src, check=0)
    cbl("run", "-a", tmp_path / "two", src, check=0)
    assert (tmp_path / "one/artifacts.zip").read_bytes() == (tmp_path / "two/artifacts.zip").read_bytes()


def test_spaces_unicode_collisions_and_zip_slip(cbl, tmp_path):
    src = cbl.project("names", """version: 0.2
phases:
  build:
    commands:
      - mkdir -p "out/with space/sub" "out/ünïcödé" out/b
      - echo 1 > "out/with space/a file.txt" && echo 2 > "out/ünïcödé/名前.txt"
      - echo first > out/b/same.txt && echo second > "out/with space/sub/same.txt"
      - ln -s ../../../../etc/passwd out/b/escape || true
artifacts:
  files:
    - '**/*'
  base-directory: out
  secondary-artifacts:
    flat:
      files:
        - 'out/**/same.txt'
      discard-paths: yes
""")
    out = tmp_path / "o"
    cbl("run", "-a", out, src, check=0)
    names = listing(out / "artifacts.zip")
    assert "with space/a file.txt" not in names  # listing() splits on whitespace
    raw = subprocess.run(["unzip", "-Z1", str(out / "artifacts.zip")], capture_output=True,
                         text=True).stdout.splitlines()
    assert "with space/a file.txt" in raw and "ünïcödé/名前.txt" in raw
    assert not any(n.startswith("/") or ".." in n.split("/") for n in raw), "zip slip"
    assert "b/escape" not in raw, "a symlink leading out of the tree is not packaged"
    flat = subprocess.run(["unzip", "-Z1", str(out / "flat.zip")], capture_output=True,
                          text=True).stdout.splitlines()
    assert flat == ["same.txt"], "discard-paths collision: one entry"


FORMATS = [
    # (group, file-format, fixture, summary fragment)
    ("junit", "JUNITXML", "TEST-com.example.calc.CalculatorTest.xml", "tests:"),
    ("cucumber", "CUCUMBERJSON", "cucumber.json", "tests:"),
    ("testng", "TESTNGXML", "testng-results.xml", "tests:"),
    ("trx", "VISUALSTUDIOTRX", "results.trx", "tests:"),
    ("nunit", "NUNITXML", "nunit2.xml", "tests:"),
    ("nunit3", "NUNIT3XML", "nunit3.xml", "tests:"),
    ("clover", "CLOVERXML", "clover.xml", "line coverage"),
    ("cobertura", "COBERTURAXML", "cobertura-java.xml", "line coverage"),
    ("jacoco", "JACOCOXML", "jacoco.xml", "line coverage"),
    ("simplecov", "SIMPLECOV", "simplecov/.resultset.json", "line coverage"),
]


def test_every_report_format(cbl, tmp_path):
    import shutil
    fixtures = ROOT / "tests" / "fixtures" / "reports"
    groups = "\n".join(f"""  {g}:
    files:
      - 'reports/{g}/*'
      - 'reports/{g}/.*'
    file-format: {fmt}""" for g, fmt, _, _ in FORMATS)
    src = cbl.project("formats", "version: 0.2\nphases:\n  build:\n    commands:\n      - 'true'\nreports:\n" + groups + "\n")
    for g, _, fixture, _ in FORMATS:
        d = src / "reports" / g
        d.mkdir(parents=True)
        shutil.copy(fixtures / fixture, d / os.path.basename(fixture))
    rdir = tmp_path / "r"
    p = cbl("run", "--reports", rdir, src, check=0)
    for g, fmt, _, frag in FORMATS:
        line = next((l for l in p.output.splitlines() if l.startswith(f"Report formats-{g} ")), None)
        assert line and frag in line, f"{g}: {line}\n{p.output}"
        rep = json.loads((rdir / f"formats-{g}" / "report.json").read_text())["reports"][0]
        if frag == "tests:":
            assert rep["type"] == "TEST" and rep["testSummary"]["total"] > 0, (g, rep)
        else:
            assert rep["type"] == "CODE_COVERAGE", (g, rep)
            assert rep["codeCoverageSummary"]["linesCovered"] > 0, (g, rep)


def test_real_coverage_py_cobertura(cbl, tmp_path):
    import shutil
    if shutil.which("python3-coverage") is None and not os.path.exists("/usr/bin/python3-coverage"):
        import pytest
        pytest.skip("python3-coverage is not installed")
    src = cbl.project("cov", """version: 0.2
phases:
  build:
    commands:
      - /usr/bin/python3-coverage run --branch --source=. --omit=tests/* -m pytest -q -p no:cacheprovider tests
      - /usr/bin/python3-coverage xml -o coverage.xml
reports:
  cov:
    files:
      - coverage.xml
    file-format: COBERTURAXML
""", files={"app.py": "def f(x):\n    if x:\n        return 1\n    return 2\n",
            "tests/test_app.py": "import sys, os\nsys.path.insert(0, os.getcwd())\nfrom app import f\n\ndef test_f():\n    assert f(1) == 1\n"})
    p = cbl("run", src, check=0)
    m = re.search(r"Report cov-cov SUCCEEDED: line coverage ([\d.]+)% \((\d+)/(\d+)\)", p.output)
    assert m, p.output
    assert int(m.group(2)) == 3 and int(m.group(3)) == 4, "3 of app.py's 4 lines ran"
