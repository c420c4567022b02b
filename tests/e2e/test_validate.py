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
    # --strict is the fidelity report: the warning makes it exit 1, not invalid
    p = cbl("validate", "--strict", "-i", "aws/codebuild/standard:7.0", src, check=1)
    assert re.search(r"buildspec\.yml:6:\d+: warning: .*finaly", p.output), p.output
    assert "nothing: 0 things a local run would fake or skip" in p.stdout, p.output


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


def host_node():
    import subprocess
    try:
        out = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError:
        return None
    m = re.search(r"(\d+(?:\.\d+)*)", out)
    return m.group(1) if m else None


def test_runtimes_checked_against_the_host_without_image(cbl):
    # run (host image) exits 2 on this; validate says so instead of "valid"
    node = host_node()
    src = cbl.project("rthost", """version: 0.2
phases:
  install:
    runtime-versions:
      cobolscript: 9
  build:
    commands:
      - make
""")
    p = cbl("validate", src, check=0)
    assert re.search(r"buildspec\.yml:5:7: warning: the host image \(run's default\): Unknown runtime named "
                     r"'cobolscript'\. This build image has the following runtimes: .*\. No curated image has "
                     r"cobolscript 9; --host-runtimes goes on without cobolscript$", p.stdout, re.M), p.output
    assert re.search(r"valid \(version 0\.2, 1 warning\)", p.stdout), p.output
    p = cbl("validate", "--strict", src, check=1)
    assert re.search(r"buildspec\.yml:5:7: differs: runtime-versions cobolscript 9: the host lacks it, run fails "
                     r"DOWNLOAD_SOURCE \(Unknown runtime named 'cobolscript'\. .*\(to do: pass -i with a curated "
                     r"image that has it, or run --host-runtimes to go on\)$", p.stdout, re.M), p.output
    assert "warning:" not in p.output, "the report says it once"
    p = cbl("validate", "-i", "host", src, check=2)
    assert "buildspec.yml:5:7: error: Unknown runtime named 'cobolscript'" in p.stderr, p.output
    assert "invalid for host (1 error against the image)" in p.stderr
    if node:
        (src / "buildspec.yml").write_text(f"version: 0.2\nphases:\n  install:\n    runtime-versions:\n"
                                           f"      nodejs: \"{node.split('.')[0]}.x\"\n      java: latest\n"
                                           f"  build:\n    commands: [make]\n")
        p = cbl("validate", src, check=0)
        assert "warning:" not in p.output and "valid (version 0.2, 0 warnings)" in p.stdout, p.output
        (src / "buildspec.yml").write_text("version: 0.2\nphases:\n  install:\n    runtime-versions:\n"
                                           "      nodejs: 4\n  build:\n    commands: [make]\n")
        p = cbl("validate", src, check=0)
        assert re.search(r"buildspec\.yml:5:7: warning: the host image \(run's default\): Unknown runtime version "
                         r"named '4' of nodejs\. This build image has the following versions: \d+\. No curated "
                         r"image has nodejs 4; --host-runtimes goes on with the host's nodejs "
                         + re.escape(node) + "$", p.stdout, re.M), p.output


def passwd_has(user):
    with open("/etc/passwd") as f:
        return any(line.split(":")[0] == user for line in f)


RUN_AS = """version: 0.2
run-as: {top}
phases:
  build:
    run-as: {phase}
    commands:
      - make
"""


def test_run_as_user_the_image_lacks(cbl, tmp_path):
    # the host image has the curated images' codebuild-user: the build's view adds it
    src = cbl.project("runas", RUN_AS.format(top="codebuild-user", phase="root"))
    p = cbl("validate", src, check=0)
    assert "warning:" not in p.output, p.output
    p = cbl("validate", "--strict", src, check=1)  # the host image is not a CodeBuild image
    assert "run-as" not in p.output and "differs: the host image" in p.stdout, p.output
    # a user neither the host nor the view has
    assert not passwd_has("cbl-nobody-here")
    (src / "buildspec.yml").write_text(RUN_AS.format(top="cbl-nobody-here", phase="root"))
    p = cbl("validate", src, check=0)
    assert ("buildspec.yml:2:9: warning: run-as 'cbl-nobody-here': the host image has no user 'cbl-nobody-here' "
            "(not in its /etc/passwd): the phase would fault") in p.stdout, p.output
    assert "valid (version 0.2, 1 warning)" in p.stdout
    p = cbl("validate", "--strict", src, check=1)
    assert "warning: run-as 'cbl-nobody-here'" in p.stdout, p.output
    (src / "buildspec.yml").write_text(RUN_AS.format(top="codebuild-user", phase="root"))
    # the curated images have codebuild-user (and root)
    p = cbl("validate", "-i", "aws/codebuild/standard:7.0", src, check=0)
    assert "warning:" not in p.output, p.output
    (src / "buildspec.yml").write_text(RUN_AS.format(top="root", phase="builder"))
    p = cbl("validate", "-i", "aws/codebuild/amazonlinux-x86_64-standard:6.0", src, check=0)
    assert ("buildspec.yml:5:13: warning: run-as 'builder': aws/codebuild/amazonlinux-x86_64-standard:6.0 has no "
            "user 'builder' (its users: root, codebuild-user)") in p.stdout, p.output
    # a directory image: its own /etc/passwd
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\nbuilder:x:1000:1000::/home/b:/bin/sh\n")
    p = cbl("validate", "-i", root, src, check=0)
    assert "warning:" not in p.output, p.output
    (src / "buildspec.yml").write_text(RUN_AS.format(top="root", phase="codebuild-user"))
    p = cbl("validate", "-i", root, src, check=0)
    assert f"buildspec.yml:5:13: warning: run-as 'codebuild-user': {root} has no user 'codebuild-user'" in p.stdout
    # a uid is not looked up
    (src / "buildspec.yml").write_text(RUN_AS.format(top="1000", phase="0"))
    p = cbl("validate", src, check=0)
    assert "warning:" not in p.output, p.output
