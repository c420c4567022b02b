"""Report auto-discover (docs/fidelity.md 6.1-7, T21): in UPLOAD_ARTIFACTS,
after the artifacts, every file under the source that parses as a supported
report format becomes part of the report of <project>-<FORMAT>-AutoDiscovered;
CODEBUILD_CONFIG_AUTO_DISCOVER=false (as the build's shell last had it) turns
it off."""
import json
import re


from test_fidelity import agent_lines, stored_log
from test_server import aws, start_server

JUNIT = ("<testsuites><testsuite name='s'>"
         "<testcase classname='app.A' name='ok' time='0.1'/>"
         "<testcase classname='app.A' name='bad'><failure message='boom'>trace</failure></testcase>"
         "<testcase classname='app.B' name='skip'><skipped/></testcase>"
         "</testsuite></testsuites>")

BLOCK = ["[Container] Set report auto-discover timeout to 5 seconds",
         "[Container] Expanding base directory path:  .", "[Container] Assembling file list",
         "[Container] Expanding .", "[Container] Expanding file paths for base directory .",
         "[Container] Assembling file list", "[Container] Expanding **/*"]
TOOK = re.compile(r"\[Container\] Report auto-discover file discovery took \d+\.\d{6} seconds$")


def upload_lines(p, cbl):
    lines = agent_lines(stored_log(cbl, p))
    # after POST_BUILD's two lines (no artifacts: nothing of theirs)
    start = next(i for i, ln in enumerate(lines) if ln.startswith("[Container] Phase complete: POST_BUILD")) + 2
    end = next(i for i, ln in enumerate(lines) if ln.startswith("[Container] Phase complete: UPLOAD_ARTIFACTS"))
    return lines[start:end]


def test_junit_left_in_the_source_is_discovered(cbl, tmp_path):
    """A JUnit file the build writes, no reports: section: the group
    <project>-JUNITXML-AutoDiscovered with its cases, listed over the API;
    a symlink to a JUnit file outside is not followed, a FIFO is not opened
    (nothing blocks), a pom.xml or an empty JSON array is no report, and a file a buildspec group reads is left to it."""
    outside = tmp_path / "outside.xml"
    outside.write_text(JUNIT.replace("app.A", "outside.X"))
    src = cbl.project("adisc", f"""version: 0.2
phases:
  build:
    commands:
      - mkdir -p build/test-results claimed
      - printf '%s' "{JUNIT}" > build/test-results/TEST-app.xml
      - printf '%s' "{JUNIT}" > claimed/mine.xml
      - ln -s {outside} build/test-results/link.xml
      - mkfifo build/test-results/TEST-fifo.xml
      - test -L build/test-results/link.xml && test -p build/test-results/TEST-fifo.xml && echo ATTACKS' 'IN PLACE
      - printf '<project><modelVersion>4.0.0</modelVersion></project>' > pom.xml
      - printf '[]' > empty.json
reports:
  mine:
    files: ['claimed/*.xml']
""")
    p = cbl("run", "--sandbox", "none", "--reports", tmp_path / "rep", src, check=0)
    # the attacks were there: a symlink to a report outside, a FIFO (no reader: never opened)
    assert "\nATTACKS IN PLACE\n" in p.output, p.output
    got = upload_lines(p, cbl)
    # after the buildspec group's lines (its files are read first)
    assert "[Container] [codebuild-local] Report adisc-mine FAILED" in " ".join(got[:got.index(BLOCK[0])]), got
    ours = [ln for ln in got[got.index(BLOCK[0]):] if "[codebuild-local]" not in ln]
    assert ours[:len(BLOCK)] == BLOCK, got
    assert re.match(r"\[Container\] Found \d+ file\(s\)$", ours[len(BLOCK)]), got
    assert TOOK.match(ours[len(BLOCK) + 1]) and len(ours) == len(BLOCK) + 2, got
    assert "No matching auto-discover" not in p.output
    group = "adisc-JUNITXML-AutoDiscovered"
    rep = json.loads((tmp_path / "rep" / group / "report.json").read_text())["reports"][0]
    assert rep["type"] == "TEST" and rep["status"] == "FAILED", rep
    assert rep["reportGroupArn"].endswith(f":report-group/{group}"), rep
    assert rep["testSummary"]["total"] == 3, rep  # one file: not the symlink's, not the claimed one
    assert rep["testSummary"]["statusCounts"]["FAILED"] == 1, rep
    cases = json.loads((tmp_path / "rep" / group / "test-cases.json").read_text())["testCases"]
    assert sorted(c["name"] for c in cases) == ["bad", "ok", "skip"], cases
    assert all(c["prefix"].startswith("app.") for c in cases), cases
    assert sorted(d.name for d in (tmp_path / "rep").iterdir()) == sorted(["adisc-mine", group])
    assert not any("CUCUMBER" in ln or "COBERTURA" in ln for ln in got), got
    # the same report path as the buildspec's groups: the API lists it
    server = start_server(cbl.home)
    try:
        r = aws(server.url, "codebuild", "list-report-groups")
        assert r.returncode == 0, r.stderr
        arns = json.loads(r.stdout)["reportGroups"]
        assert any(a.endswith(f":report-group/{group}") for a in arns), arns
        r = aws(server.url, "codebuild", "list-reports-for-report-group", "--report-group-arn",
                rep["reportGroupArn"])
        assert r.returncode == 0 and json.loads(r.stdout)["reports"] == [rep["arn"]], r.stdout + r.stderr
    finally:
        assert server.stop() == 0, server.stderr


def test_disabled_by_an_export_in_the_buildspec(cbl, tmp_path):
    """CODEBUILD_CONFIG_AUTO_DISCOVER=false set by a command: nothing printed,
    nothing created."""
    src = cbl.project("adoff", f"""version: 0.2
phases:
  build:
    commands:
      - printf '%s' "{JUNIT}" > junit.xml
      - export CODEBUILD_CONFIG_AUTO_DISCOVER=false
""")
    p = cbl("run", "--sandbox", "none", "--reports", tmp_path / "rep", src, check=0)
    assert "Build adoff:" in p.output and "SUCCEEDED" in p.output, p.output
    assert upload_lines(p, cbl) == [], p.output
    assert "auto-discover" not in p.output and "AutoDiscovered" not in p.output, p.output
    assert not (tmp_path / "rep").exists() or not any((tmp_path / "rep").iterdir())


def test_no_match_prints_the_documented_lines(cbl, tmp_path):
    """Nothing to discover (the default sandbox): the service's lines, as in
    its logs (reference 4.2), and no report."""
    src = cbl.project("adnone", """version: 0.2
phases:
  build:
    commands:
      - echo '<notes/>' > notes.xml
""")
    p = cbl("run", "--reports", tmp_path / "rep", src, check=0)
    got = upload_lines(p, cbl)
    assert got[:len(BLOCK)] == BLOCK, got
    assert re.match(r"\[Container\] Found \d+ file\(s\)$", got[len(BLOCK)]), got
    assert got[len(BLOCK) + 1] == "[Container] No matching auto-discover report paths found", got
    assert TOOK.match(got[len(BLOCK) + 2]) and len(got) == len(BLOCK) + 3, got
    assert "AutoDiscovered" not in p.output


COBERTURA = ("<coverage line-rate='0.5' branch-rate='0' version='7'><packages><package name='p'><classes>"
             "<class name='c' filename='app/c.py'><lines><line number='1' hits='1'/><line number='2' hits='0'/>"
             "</lines></class></classes></package></packages></coverage>")


def test_the_dir_variable_and_a_coverage_format(cbl, tmp_path):
    """CODEBUILD_CONFIG_AUTO_DISCOVER_DIR (a glob, set in the project's
    variables here) narrows the search: a Cobertura file there becomes
    <project>-COBERTURAXML-AutoDiscovered, a JUnit file elsewhere is not read."""
    src = cbl.project("addir", f"""version: 0.2
env:
  variables:
    CODEBUILD_CONFIG_AUTO_DISCOVER_DIR: 'output/*xml'
phases:
  build:
    commands:
      - mkdir -p output elsewhere
      - printf '%s' "{COBERTURA}" > output/coverage.xml
      - printf '%s' "{JUNIT}" > elsewhere/junit.xml
""")
    p = cbl("run", "--sandbox", "none", "--reports", tmp_path / "rep", src, check=0)
    got = upload_lines(p, cbl)
    assert "[Container] Expanding output/*xml" in got and "[Container] Expanding **/*" not in got, got
    assert sorted(d.name for d in (tmp_path / "rep").iterdir()) == ["addir-COBERTURAXML-AutoDiscovered"], got
    rep = json.loads((tmp_path / "rep" / "addir-COBERTURAXML-AutoDiscovered" / "report.json").read_text())
    rep = rep["reports"][0]
    assert rep["type"] == "CODE_COVERAGE", rep
    assert rep["codeCoverageSummary"]["linesCovered"] == 1 and rep["codeCoverageSummary"]["linesMissed"] == 1, rep
