"""`codebuild-local validate`: every problem, with file:line:col, exit 2 on errors."""
import re

from conftest import SHARED, needs_shared


def test_valid(cbl):
    src = cbl.project("ok", "version: 0.2\nphases:\n  build:\n    commands:\n      - make\n")
    p = cbl("validate", src, check=0)
    assert "valid" in p.stdout


@needs_shared
def test_conformance_invalid_type(cbl):
    p = cbl("validate", "-b", SHARED / "conformance/c09-invalid-type/buildspec.yml", check=2)
    assert re.search(r"buildspec\.yml:5:\d+: error: .*on-failure", p.output), p.output


def test_reports_every_error(cbl):
    src = cbl.project("many", """version: 0.2
phases:
  build:
    on-failure: SOMETIMES
    commands:
      - echo: not a string
  pre-build:
    commands: [x]
""")
    p = cbl("validate", src, check=2)
    lines = [l for l in p.stderr.splitlines() if ": error: " in l]
    assert len(lines) >= 3, p.output
    assert any(":4:" in l for l in lines) and any(":6:" in l for l in lines) \
        and any(":7:" in l for l in lines), p.output


def test_unknown_key_warns_strict_fails(cbl):
    src = cbl.project("typo", """version: 0.2
phases:
  build:
    commands:
      - make
    finaly:
      - echo x
""")
    p = cbl("validate", src, check=0)
    assert re.search(r"buildspec\.yml:6:\d+: warning: .*finaly", p.output), p.output
    p = cbl("validate", "--strict", src, check=2)
    assert re.search(r"buildspec\.yml:6:\d+: error: .*finaly", p.output), p.output


def test_missing_and_bad_version(cbl):
    src = cbl.project("nover", "phases:\n  build:\n    commands: [make]\n")
    p = cbl("validate", src, check=2)
    assert "version" in p.output
    src = cbl.project("badver", "version: 2.0\nphases:\n  build:\n    commands: [make]\n")
    p = cbl("validate", src, check=2)
    assert re.search(r"buildspec\.yml:1:\d+: error: .*version", p.output), p.output


def test_yaml_syntax_error(cbl):
    src = cbl.project("syntax", "version: 0.2\nphases:\n  build:\n    commands:\n      - \"echo unterminated\n")
    p = cbl("validate", src, check=2)
    assert re.search(r"buildspec\.yml:\d+:\d+: error: ", p.output), p.output


def test_missing_file(cbl, tmp_path):
    p = cbl("validate", tmp_path / "nothing-here", check=2)
    assert "buildspec.yml" in p.output
