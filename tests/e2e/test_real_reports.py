"""Reports written by the real tools, inside builds, read as the tools count them.

Each test makes a small project (a few source files with a known number of
lines and tests), runs the real test or coverage tool in a build whose
`reports:` section points at the tool's output, and checks the parsed report
against the tool's own totals: its summary files (Istanbul's
coverage-summary.json, jest's --json, coverage.py's json), the totals in its
XML (Cobertura lines-valid, Clover project <metrics>, JaCoCo's report
counters, JUnit root attributes) or its console summary — and against what
the hand-made project says they must be.

The npm tools are installed once from the npm registry into
tests/e2e/.npm-cache/ (git-ignored) at pinned versions that run on Debian 12's
node 18, and copied into each project as its node_modules (the build sees the
project, not the host's checkout).  Debian's tools (pytest, coverage.py, go +
gotestsum, maven + surefire + JaCoCo + ant) come from scripts/install-deps.sh.
A tool that cannot be had here is a skip that says which and why.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

NPM_DIR = ROOT / "tests" / "e2e" / ".npm-cache"
# versions that run on node 18 (Debian 12's nodejs) as well as on newer ones
NPM_TOOLS = {
    "mocha": "10.8.2",
    "mocha-junit-reporter": "2.2.1",
    "jest": "29.7.0",
    "jest-junit": "16.0.0",
    "nyc": "17.1.0",
    "c8": "10.1.3",
}


# ------------------------------------------------------------------ helpers

@pytest.fixture(scope="session")
def node_tools():
    """node_modules holding NPM_TOOLS, installed once (then reused)."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("node/npm are not installed (scripts/install-deps.sh installs Debian's)")
    key = hashlib.sha256(json.dumps(NPM_TOOLS, sort_keys=True).encode()).hexdigest()[:16]
    proj = NPM_DIR / f"tools-{key}"
    done = proj / "node_modules" / ".cbl-installed"
    if not done.exists():
        shutil.rmtree(proj, ignore_errors=True)
        proj.mkdir(parents=True)
        (proj / "package.json").write_text(json.dumps(
            {"name": "cbl-report-tools", "version": "1.0.0", "private": True,
             "dependencies": NPM_TOOLS}, indent=2))
        p = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts",
             "--cache", str(NPM_DIR / "npm"), "--prefix", str(proj)],
            capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            pytest.skip("npm install of " + " ".join(f"{k}@{v}" for k, v in NPM_TOOLS.items())
                        + f" failed (no npm registry here?): {p.stderr.strip()[-400:]}")
        done.write_text(key)
    return proj / "node_modules"


def with_node_modules(src, node_modules):
    subprocess.run(["cp", "-a", str(node_modules), str(src / "node_modules")], check=True)


@pytest.fixture(autouse=True)
def drop_node_modules(tmp_path):
    """The projects' copies of node_modules (8,000 files each) go when the
    test ends, not when pytest rotates its temporary directories."""
    yield
    for d in tmp_path.glob("*/node_modules"):
        shutil.rmtree(d, ignore_errors=True)


def run_build(cbl, src, tmp_path, check=0, timeout=300):
    """Runs the build; returns (process, reports dir, artifacts dir)."""
    rdir, adir = tmp_path / "reports-out", tmp_path / "artifacts-out"
    p = cbl("run", "--reports", rdir, "-a", adir, "--artifacts-packaging", "NONE", src,
            check=check, timeout=timeout)
    return p, rdir, adir / "artifacts"


def report(rdir, group):
    return json.loads((rdir / group / "report.json").read_text())["reports"][0]


def summary_line(p, group):
    line = next((l for l in p.output.splitlines() if l.startswith(f"Report {group} ")), None)
    assert line, f"no summary for {group}\n{p.output}"
    return line


def no_warnings(p):
    assert "WARNING" not in p.output and "warning:" not in p.output, p.output


def check_tests(rep, total, succeeded, failed, skipped, errors=0):
    ts = rep["testSummary"]
    got = (ts["total"], ts["statusCounts"]["SUCCEEDED"], ts["statusCounts"]["FAILED"],
           ts["statusCounts"]["SKIPPED"], ts["statusCounts"]["ERROR"])
    assert got == (total, succeeded, failed, skipped, errors), (got, rep)
    assert rep["status"] == ("FAILED" if failed or errors else "SUCCEEDED")


def check_coverage(rep, lines_covered, lines_total, branches_covered=None, branches_total=None):
    cs = rep["codeCoverageSummary"]
    assert (cs["linesCovered"], cs["linesCovered"] + cs["linesMissed"]) == (lines_covered, lines_total), cs
    assert abs(cs["lineCoveragePercentage"] - 100.0 * lines_covered / lines_total) < 0.01, cs
    if branches_total is not None:
        got = (cs["branchesCovered"], cs["branchesCovered"] + cs["branchesMissed"])
        assert got == (branches_covered, branches_total), cs


def istanbul_totals(path):
    """Istanbul's json-summary: (lines covered, lines, branches covered, branches)."""
    t = json.loads(Path(path).read_text())["total"]
    return t["lines"]["covered"], t["lines"]["total"], t["branches"]["covered"], t["branches"]["total"]


def cobertura_totals(path):
    r = ET.parse(path).getroot()
    return (int(r.get("lines-covered")), int(r.get("lines-valid")),
            int(r.get("branches-covered")), int(r.get("branches-valid")))


def clover_totals(path):
    m = ET.parse(path).getroot().find("project/metrics")
    return (int(m.get("coveredstatements")), int(m.get("statements")),
            int(m.get("coveredconditionals")), int(m.get("conditionals")))


def junit_root(path):
    """The tool's own totals: the root's attributes, or the sum over its
    <testsuite>s when the root <testsuites> has none (pytest)."""
    r = ET.parse(path).getroot()
    keys = ("tests", "failures", "errors", "skipped")
    if r.tag == "testsuites" and r.get("tests") is None:
        return {k: sum(int(s.get(k, 0)) for s in r.findall("testsuite")) for k in keys}
    return {k: int(r.get(k, 0)) for k in keys}


# ----------------------------------------------------------- the projects

# 3 source files in 3 directories (so Istanbul writes 3 packages); the
# numbers below are what every line-counting tool must agree on.
JS_SOURCES = {
    "index.js": "const m = require('./src/math');\n"
                "module.exports = function main() {\n"
                "  return m.add(1, 2);\n"
                "};\n",
    "src/math.js": "function add(a, b) {\n"
                   "  return a + b;\n"
                   "}\n"
                   "\n"
                   "function sign(x) {\n"
                   "  if (x > 0) {\n"
                   "    return 1;\n"
                   "  } else if (x < 0) {\n"
                   "    return -1;\n"
                   "  }\n"
                   "  return 0;\n"
                   "}\n"
                   "\n"
                   "function unused(x) {\n"
                   "  if (x) {\n"
                   "    return 1;\n"
                   "  }\n"
                   "  return 2;\n"
                   "}\n"
                   "\n"
                   "module.exports = { add, sign, unused };\n",
    "src/util/str.js": "function upper(s) {\n"
                       "  return s.toUpperCase();\n"
                       "}\n"
                       "function never(s) {\n"
                       "  return s + s;\n"
                       "}\n"
                       "module.exports = { upper, never };\n",
}

# Istanbul's line count: index.js 3 + math.js 10 + str.js 3 lines with
# statements; the tests leave out 'return -1', unused()'s three lines and
# never()'s one.  unused()'s 'if' never runs: Istanbul's Clover writes it
# as <line count="0" type="cond" truecount="0" falsecount="2"/>, which
# must count as a line not run with two branches not taken.
JS_LINES = (11, 16)

# 7 tests: 5 pass, 1 fails, 1 is pending (mocha) / skipped (jest)
MOCHA_TESTS = {
    "test/math.test.js": "const assert = require('assert');\n"
                         "const { add, sign } = require('../src/math');\n"
                         "describe('math', function () {\n"
                         "  it('adds', function () { assert.strictEqual(add(1, 2), 3); });\n"
                         "  it('signs positive', function () { assert.strictEqual(sign(5), 1); });\n"
                         "  it('signs zero', function () { assert.strictEqual(sign(0), 0); });\n"
                         "  it('fails', function () { assert.strictEqual(add(1, 1), 3); });\n"
                         "  it.skip('is pending', function () {});\n"
                         "});\n",
    "test/other.test.js": "const assert = require('assert');\n"
                          "const { upper } = require('../src/util/str');\n"
                          "describe('other', function () {\n"
                          "  it('uppers', function () { assert.strictEqual(upper('a'), 'A'); });\n"
                          "  it('runs main', function () { assert.strictEqual(require('../index')(), 3); });\n"
                          "});\n",
    ".mocharc.json": json.dumps({"spec": ["test/**/*.test.js"], "reporter": "mocha-junit-reporter",
                                 "reporter-option": ["mochaFile=reports/mocha.xml", "includePending=true"]}),
}

COVERAGE_GROUPS = """  cobertura:
    files:
      - coverage/cobertura-coverage.xml
    file-format: COBERTURAXML
  clover:
    files:
      - coverage/clover.xml
    file-format: CLOVERXML
"""


def check_istanbul_coverage(p, rdir, adir, name, lines_covered, lines_total):
    """Cobertura and Clover of an Istanbul-based tool against its own totals."""
    own = istanbul_totals(adir / "coverage" / "coverage-summary.json")
    assert own[:2] == (lines_covered, lines_total), f"the tool itself counts {own}"
    assert cobertura_totals(adir / "coverage" / "cobertura-coverage.xml") == own
    assert clover_totals(adir / "coverage" / "clover.xml") == own
    for g in ("cobertura", "clover"):
        rep = report(rdir, f"{name}-{g}")
        assert rep["type"] == "CODE_COVERAGE" and rep["status"] == "SUCCEEDED"
        check_coverage(rep, *own)
        files = json.loads((rdir / f"{name}-{g}" / "code-coverages.json").read_text())["codeCoverages"]
        assert len(files) == 3, [f["filePath"] for f in files]
        assert "line coverage" in summary_line(p, f"{name}-{g}")


# -------------------------------------------------------------- the tests

def test_mocha_junit_and_nyc_cobertura_clover(cbl, tmp_path, node_tools):
    src = cbl.project("nycmocha", """version: 0.2
phases:
  build:
    commands:
      - npx nyc --all --include index.js --include 'src/**' --reporter=cobertura --reporter=clover --reporter=json-summary --reporter=text-summary mocha || echo "mocha exited $?"
reports:
  mocha:
    files:
      - reports/mocha.xml
""" + COVERAGE_GROUPS + """artifacts:
  files:
    - coverage/*
    - reports/*
""", files={**JS_SOURCES, **MOCHA_TESTS})
    with_node_modules(src, node_tools)
    p, rdir, adir = run_build(cbl, src, tmp_path)
    assert "mocha exited 1" in p.output, p.output
    no_warnings(p)

    own = junit_root(adir / "reports" / "mocha.xml")
    assert own == {"tests": 7, "failures": 1, "errors": 0, "skipped": 1}, own
    rep = report(rdir, "nycmocha-mocha")
    check_tests(rep, 7, 5, 1, 1)
    assert "7 tests: 5 succeeded, 1 failed, 0 errors, 1 skipped" in summary_line(p, "nycmocha-mocha")
    check_istanbul_coverage(p, rdir, adir, "nycmocha", *JS_LINES)


def test_jest_junit_and_coverage(cbl, tmp_path, node_tools):
    tests = {
        "__tests__/math.test.js": "const { add, sign } = require('../src/math');\n"
                                  "describe('math', () => {\n"
                                  "  test('adds', () => { expect(add(1, 2)).toBe(3); });\n"
                                  "  test('signs positive', () => { expect(sign(5)).toBe(1); });\n"
                                  "  test('signs zero', () => { expect(sign(0)).toBe(0); });\n"
                                  "  test('fails', () => { expect(add(1, 1)).toBe(3); });\n"
                                  "  test.skip('is skipped', () => {});\n"
                                  "});\n",
        "__tests__/other.test.js": "const { upper } = require('../src/util/str');\n"
                                   "test('uppers', () => { expect(upper('a')).toBe('A'); });\n"
                                   "test('runs main', () => { expect(require('../index')()).toBe(3); });\n",
        "package.json": json.dumps({"name": "jestproj", "version": "1.0.0", "private": True, "jest": {
            "collectCoverageFrom": ["index.js", "src/**/*.js"],
            "coverageReporters": ["cobertura", "clover", "json-summary", "text-summary"]}}),
    }
    src = cbl.project("jestproj", """version: 0.2
env:
  variables:
    JEST_JUNIT_OUTPUT_DIR: reports
    JEST_JUNIT_OUTPUT_NAME: jest-junit.xml
phases:
  build:
    commands:
      - npx jest --ci --coverage --reporters=default --reporters=jest-junit --json --outputFile=reports/jest.json || echo "jest exited $?"
reports:
  jest:
    files:
      - reports/jest-junit.xml
""" + COVERAGE_GROUPS + """artifacts:
  files:
    - coverage/*
    - reports/*
""", files={**JS_SOURCES, **tests})
    with_node_modules(src, node_tools)
    p, rdir, adir = run_build(cbl, src, tmp_path)
    assert "jest exited 1" in p.output, p.output
    no_warnings(p)

    own = json.loads((adir / "reports" / "jest.json").read_text())
    assert (own["numTotalTests"], own["numPassedTests"], own["numFailedTests"], own["numPendingTests"]) \
        == (7, 5, 1, 1), own
    rep = report(rdir, "jestproj-jest")
    check_tests(rep, own["numTotalTests"], own["numPassedTests"], own["numFailedTests"],
                own["numPendingTests"])
    cases = json.loads((rdir / "jestproj-jest" / "test-cases.json").read_text())["testCases"]
    failed = [c for c in cases if c["status"] == "FAILED"]
    assert len(failed) == 1 and failed[0]["name"] == "math fails" and "toBe" in failed[0]["message"]
    check_istanbul_coverage(p, rdir, adir, "jestproj", *JS_LINES)


def test_c8_cobertura_clover(cbl, tmp_path, node_tools):
    # c8 counts from V8's byte ranges: every line of a loaded file, blank ones
    # included, so its totals differ from nyc's; the report follows c8's own.
    src = cbl.project("c8proj", """version: 0.2
phases:
  build:
    commands:
      - npx c8 --all --include index.js --include 'src/**' --reporter=cobertura --reporter=clover --reporter=json-summary --reporter=text-summary mocha || echo "mocha exited $?"
reports:
""" + COVERAGE_GROUPS + """artifacts:
  files:
    - coverage/*
""", files={**JS_SOURCES, **MOCHA_TESTS})
    with_node_modules(src, node_tools)
    p, rdir, adir = run_build(cbl, src, tmp_path)
    assert "mocha exited 1" in p.output, p.output
    no_warnings(p)
    lc, lt, _, _ = istanbul_totals(adir / "coverage" / "coverage-summary.json")
    # every line of the three files (4 + 21 + 7); c8 10.1.3 counts 21 run
    assert (lc, lt) == (21, 32), (lc, lt)
    check_istanbul_coverage(p, rdir, adir, "c8proj", lc, lt)


# Istanbul's own library (the istanbul-lib-report and istanbul-reports that
# nyc installs) with its documented "nested" summarizer: Cobertura
# <package>s inside <classes>; Clover <package>s inside <package>s, and,
# because lib/ has no file of its own but two sub-directories, the writer
# closes <project> early and the rest of the packages land directly under
# <coverage>.
NESTED_REPORT_JS = """\
const fs = require('fs');
const libCoverage = require('istanbul-lib-coverage');
const libReport = require('istanbul-lib-report');
const reports = require('istanbul-reports');
const map = libCoverage.createCoverageMap(JSON.parse(fs.readFileSync('coverage/coverage-final.json')));
const context = libReport.createContext({dir: 'nested', coverageMap: map, defaultSummarizer: 'nested'});
for (const r of ['cobertura', 'clover', 'json-summary']) reports.create(r).execute(context);
"""


def test_istanbul_nested_summarizer_layouts(cbl, tmp_path, node_tools):
    files = {**JS_SOURCES, **MOCHA_TESTS, "nested.js": NESTED_REPORT_JS,
             "lib/a/x.js": "exports.x = function () {\n  return 1;\n};\n",
             "lib/b/y.js": "exports.y = function () {\n  return 2;\n};\n"}
    src = cbl.project("nested", """version: 0.2
phases:
  build:
    commands:
      - npx nyc --all --include index.js --include 'src/**' --include 'lib/**' --reporter=json mocha || true
      - node nested.js
reports:
  cobertura:
    files:
      - nested/cobertura-coverage.xml
    file-format: COBERTURAXML
  clover:
    files:
      - nested/clover.xml
    file-format: CLOVERXML
artifacts:
  files:
    - nested/*
""", files=files)
    with_node_modules(src, node_tools)
    p, rdir, adir = run_build(cbl, src, tmp_path)
    no_warnings(p)
    clover = ET.parse(adir / "nested" / "clover.xml").getroot()
    assert clover.find("package") is not None, "Istanbul wrote <package>s outside <project>"
    cob = ET.parse(adir / "nested" / "cobertura-coverage.xml").getroot()
    assert cob.find("packages/package/classes/package") is not None, "<package> inside <classes>"
    own = istanbul_totals(adir / "nested" / "coverage-summary.json")
    # JS_LINES plus lib/a/x.js and lib/b/y.js: 2 lines each, none run
    # (nothing requires them; nyc --all counts them)
    assert own[:2] == (JS_LINES[0], JS_LINES[1] + 4), own
    assert cobertura_totals(adir / "nested" / "cobertura-coverage.xml") == own
    for g in ("cobertura", "clover"):
        rep = report(rdir, f"nested-{g}")
        check_coverage(rep, *own)
        files = json.loads((rdir / f"nested-{g}" / "code-coverages.json").read_text())["codeCoverages"]
        assert len(files) == 5, [f["filePath"] for f in files]


def test_coverage_with_unreadable_lines_is_a_warning(cbl, tmp_path, node_tools):
    """nyc's real Cobertura and Clover with their line elements removed: the
    files' own totals still count 16 lines, which the report must not pass
    off as 0% without a word."""
    src = cbl.project("nolines", """version: 0.2
phases:
  build:
    commands:
      - npx nyc --all --include index.js --include 'src/**' --reporter=cobertura --reporter=clover mocha || true
      - sed -i -e '/<line /d' coverage/cobertura-coverage.xml coverage/clover.xml
      - sed -i -e '/<file /,/<\\/file>/d' coverage/clover.xml
      - grep -c '<line ' coverage/cobertura-coverage.xml coverage/clover.xml || true
reports:
""" + COVERAGE_GROUPS, files={**JS_SOURCES, **MOCHA_TESTS})
    with_node_modules(src, node_tools)
    p, rdir, _ = run_build(cbl, src, tmp_path)
    n = JS_LINES[1]
    for g, what in (("cobertura", f'lines-valid="{n}"'), ("clover", f"{n} statements")):
        line = summary_line(p, f"nolines-{g}")
        assert "line coverage 0.00% (0/0)" in line, line
        warn = [l for l in p.output.splitlines() if "WARNING" in l and f"report nolines-{g}:" in l]
        assert len(warn) == 1, p.output
        assert f"coverage/{'cobertura-coverage' if g == 'cobertura' else 'clover'}.xml:" in warn[0]
        assert what in warn[0], warn[0]
        # and under the report's line in the run summary
        lines = p.output.splitlines()
        after = lines[lines.index(line) + 1]
        assert what in after, after


def test_pytest_junit_and_coverage_py(cbl, tmp_path):
    if not os.path.exists("/usr/bin/python3-coverage"):
        pytest.skip("python3-coverage is not installed (scripts/install-deps.sh installs it)")
    src = cbl.project("pyproj", """version: 0.2
phases:
  build:
    commands:
      - /usr/bin/python3-coverage run --branch --source=calc -m pytest -p no:cacheprovider --junitxml=reports/pytest.xml tests || echo "pytest exited $?"
      - /usr/bin/python3-coverage xml -o reports/coverage.xml
      - /usr/bin/python3-coverage json -o reports/coverage.json
reports:
  pytest:
    files:
      - reports/pytest.xml
  cov:
    files:
      - reports/coverage.xml
    file-format: COBERTURAXML
artifacts:
  files:
    - reports/*
""", files={
        "calc/__init__.py": "",
        "calc/ops.py": "def add(a, b):\n"
                       "    return a + b\n"
                       "\n"
                       "\n"
                       "def sign(x):\n"
                       "    if x > 0:\n"
                       "        return 1\n"
                       "    if x < 0:\n"
                       "        return -1\n"
                       "    return 0\n"
                       "\n"
                       "\n"
                       "def unused():\n"
                       "    return 42\n",
        "tests/test_ops.py": "import os, sys\n"
                             "sys.path.insert(0, os.getcwd())\n"
                             "import pytest\n"
                             "from calc.ops import add, sign\n"
                             "\n"
                             "def test_add():\n    assert add(1, 2) == 3\n\n"
                             "def test_sign():\n    assert sign(5) == 1\n\n"
                             "def test_fails():\n    assert add(1, 1) == 3\n\n"
                             "@pytest.mark.skip(reason='not yet')\n"
                             "def test_skipped():\n    pass\n\n"
                             "@pytest.fixture\n"
                             "def broken():\n    raise RuntimeError('fixture breaks')\n\n"
                             "def test_error(broken):\n    pass\n",
    })
    p, rdir, adir = run_build(cbl, src, tmp_path)
    no_warnings(p)
    # pytest's own console summary
    m = re.search(r"=+ (.*?) in [\d.]+s", p.output)
    assert m, p.output
    said = {k: int(n) for n, k in re.findall(r"(\d+) (\w+)", m.group(1))}
    assert said == {"failed": 1, "passed": 2, "skipped": 1, "error": 1}, said
    rep = report(rdir, "pyproj-pytest")
    check_tests(rep, 5, said["passed"], said["failed"], said["skipped"], said["error"])
    assert junit_root(adir / "reports" / "pytest.xml") == {"tests": 5, "failures": 1, "errors": 1,
                                                          "skipped": 1}

    own = json.loads((adir / "reports" / "coverage.json").read_text())["totals"]
    # ops.py: 10 statements (3 defs, 7 in the bodies); add(1, 2) and sign(5)
    # run the defs, 'return a + b', 'if x > 0' and 'return 1'; of the four
    # branches (two per if) only x > 0 -> 'return 1' is taken
    assert (own["covered_lines"], own["num_statements"]) == (6, 10), own
    assert (own["covered_branches"], own["num_branches"]) == (1, 4), own
    rep = report(rdir, "pyproj-cov")
    check_coverage(rep, own["covered_lines"], own["num_statements"],
                   own["covered_branches"], own["num_branches"])
    r = ET.parse(adir / "reports" / "coverage.xml").getroot()
    assert (int(r.get("lines-covered")), int(r.get("lines-valid"))) == (6, 10)


def test_gotestsum_junit(cbl, tmp_path):
    missing = [t for t in ("go", "gotestsum") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (Debian's golang-go and gotestsum; "
                    "scripts/install-deps.sh installs them)")
    src = cbl.project("goproj", """version: 0.2
env:
  variables:
    GOFLAGS: -mod=mod
    GOPROXY: "off"
    GOTOOLCHAIN: local
phases:
  build:
    commands:
      - export GOCACHE=$CODEBUILD_SRC_DIR/.gocache GOPATH=$CODEBUILD_SRC_DIR/.gopath
      - gotestsum --junitfile reports/go.xml ./... || echo "gotestsum exited $?"
reports:
  go:
    files:
      - reports/go.xml
""", files={
        "go.mod": "module example.com/calc\n\ngo 1.19\n",
        "calc/calc.go": "package calc\n\n"
                        "func Add(a, b int) int {\n\treturn a + b\n}\n\n"
                        "func Sign(x int) int {\n\tif x > 0 {\n\t\treturn 1\n\t}\n"
                        "\tif x < 0 {\n\t\treturn -1\n\t}\n\treturn 0\n}\n",
        "calc/calc_test.go": "package calc\n\nimport \"testing\"\n\n"
                             "func TestAdd(t *testing.T) {\n\tif Add(1, 2) != 3 {\n\t\tt.Fatal(\"add\")\n\t}\n}\n\n"
                             "func TestFails(t *testing.T) {\n\tif Add(1, 1) != 3 {\n"
                             "\t\tt.Errorf(\"1+1 = %d, want 3\", Add(1, 1))\n\t}\n}\n\n"
                             "func TestSkip(t *testing.T) {\n\tt.Skip(\"not yet\")\n}\n\n"
                             "func TestSign(t *testing.T) {\n"
                             "\tfor _, c := range []struct{ in, want int }{{1, 1}, {-1, -1}} {\n"
                             "\t\tc := c\n\t\tt.Run(\"case\", func(t *testing.T) {\n"
                             "\t\t\tif Sign(c.in) != c.want {\n\t\t\t\tt.Fatal(\"sign\")\n\t\t\t}\n"
                             "\t\t})\n\t}\n}\n",
    })
    p, rdir, _ = run_build(cbl, src, tmp_path)
    no_warnings(p)
    # gotestsum's own summary: "DONE 6 tests, 1 skipped, 1 failure in 0.5s"
    m = re.search(r"DONE (\d+) tests?((?:, \d+ \w+)*) in ", p.output)
    assert m, p.output
    said = {k.rstrip("s"): int(n) for n, k in re.findall(r"(\d+) (\w+)", m.group(2))}
    total = int(m.group(1))
    # 4 top-level tests and 2 subtests, each a <testcase>
    assert (total, said) == (6, {"skipped": 1, "failure": 1}), (total, said)
    rep = report(rdir, "goproj-go")
    check_tests(rep, total, total - 2, said["failure"], said["skipped"])
    assert "TestFails" in p.output.split("Report goproj-go", 1)[1]


JACOCO_JARS = ["org.jacoco.agent.rt.jar", "org.jacoco.core.jar", "org.jacoco.report.jar",
               "org.jacoco.ant.jar", "asm.jar", "asm-commons.jar", "asm-tree.jar"]


def test_maven_surefire_and_jacoco(cbl, tmp_path):
    """Surefire's XML from Debian's maven run offline against Debian's own
    repository, and JaCoCo's XML from Debian's libjacoco-java: Debian ships
    no jacoco-maven-plugin and its org.jacoco.agent.rt.jar has no
    Premain-Class, so the test makes a manifest-only agent jar that names it
    and its class path, and writes the XML with JaCoCo's Ant task."""
    needs = {"mvn": shutil.which("mvn"), "ant": shutil.which("ant"), "java": shutil.which("java"),
             "/etc/maven/settings-debian.xml": os.path.exists("/etc/maven/settings-debian.xml"),
             "surefire 2.22.3": os.path.isdir(
                 "/usr/share/maven-repo/org/apache/maven/plugins/maven-surefire-plugin/2.22.3")}
    needs.update({j: os.path.exists(f"/usr/share/java/{j}") for j in JACOCO_JARS})
    missing = [k for k, v in needs.items() if not v]
    if missing:
        pytest.skip("not installed: " + ", ".join(missing) + " (maven, maven-debian-helper, "
                    "libsurefire-java, junit4, libjacoco-java, ant; scripts/install-deps.sh)")
    pom = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>example</groupId>
  <artifactId>calc</artifactId>
  <version>1.0</version>
  <properties>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
    <maven.compiler.release>11</maven.compiler.release>
    <jacocoArgLine></jacocoArgLine>
  </properties>
  <dependencies>
    <dependency>
      <groupId>junit</groupId>
      <artifactId>junit</artifactId>
      <version>4.x</version>
      <scope>test</scope>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin><artifactId>maven-resources-plugin</artifactId><version>3.3.0</version></plugin>
      <plugin><artifactId>maven-compiler-plugin</artifactId><version>3.10.1</version></plugin>
      <plugin>
        <artifactId>maven-surefire-plugin</artifactId>
        <version>2.22.3</version>
        <configuration>
          <testFailureIgnore>true</testFailureIgnore>
          <argLine>${jacocoArgLine}</argLine>
        </configuration>
      </plugin>
    </plugins>
  </build>
</project>
"""
    ant = """<project name="jacoco-report" default="report" xmlns:jacoco="antlib:org.jacoco.ant">
  <taskdef uri="antlib:org.jacoco.ant" resource="org/jacoco/ant/antlib.xml">
    <classpath>
      <fileset dir="/usr/share/java">
""" + "".join(f'        <include name="{j}"/>\n' for j in JACOCO_JARS) + """      </fileset>
    </classpath>
  </taskdef>
  <target name="report">
    <mkdir dir="target/site/jacoco"/>
    <jacoco:report>
      <executiondata><file file="target/jacoco.exec"/></executiondata>
      <structure name="calc">
        <classfiles><fileset dir="target/classes"/></classfiles>
        <sourcefiles encoding="UTF-8"><fileset dir="src/main/java"/></sourcefiles>
      </structure>
      <xml destfile="target/site/jacoco/jacoco.xml"/>
    </jacoco:report>
  </target>
</project>
"""
    src = cbl.project("mvnproj", """version: 0.2
phases:
  build:
    commands:
      - mvn -B -s /etc/maven/settings-debian.xml -o test "-DjacocoArgLine=-javaagent:$CODEBUILD_SRC_DIR/jacocoagent.jar=destfile=$CODEBUILD_SRC_DIR/target/jacoco.exec,includes=calc.*"
      - ant -q -f jacoco-report.xml
reports:
  surefire:
    files:
      - 'TEST-*.xml'
    base-directory: target/surefire-reports
  jacoco:
    files:
      - target/site/jacoco/jacoco.xml
    file-format: JACOCOXML
artifacts:
  files:
    - target/site/jacoco/jacoco.xml
    - target/surefire-reports/*.xml
""", files={
        "pom.xml": pom,
        "jacoco-report.xml": ant,
        "src/main/java/calc/Calc.java": "package calc;\n\n"
                                        "public class Calc {\n"
                                        "    public static int add(int a, int b) {\n        return a + b;\n    }\n\n"
                                        "    public static int sign(int x) {\n"
                                        "        if (x > 0) {\n            return 1;\n        }\n"
                                        "        return x < 0 ? -1 : 0;\n    }\n\n"
                                        "    public static int unused(int x) {\n"
                                        "        int y = x * 2;\n        return y + 1;\n    }\n}\n",
        "src/test/java/calc/CalcTest.java": "package calc;\n\n"
                                            "import static org.junit.Assert.assertEquals;\n\n"
                                            "import org.junit.Ignore;\nimport org.junit.Test;\n\n"
                                            "public class CalcTest {\n"
                                            "    @Test\n    public void adds() {\n        assertEquals(3, Calc.add(1, 2));\n    }\n\n"
                                            "    @Test\n    public void signs() {\n        assertEquals(1, Calc.sign(5));\n    }\n\n"
                                            "    @Test\n    public void fails() {\n        assertEquals(3, Calc.add(1, 1));\n    }\n\n"
                                            "    @Ignore(\"not yet\")\n    @Test\n    public void skipped() {\n    }\n}\n",
    })
    cp = " ".join(f"/usr/share/java/{j}" for j in ("org.jacoco.agent.rt.jar", "org.jacoco.core.jar",
                                                     "asm.jar", "asm-commons.jar", "asm-tree.jar"))
    with zipfile.ZipFile(src / "jacocoagent.jar", "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n"
                   "Premain-Class: org.jacoco.agent.rt.internal.PreMain\n"
                   f"Class-Path: {cp}\n\n")
    p, rdir, adir = run_build(cbl, src, tmp_path, timeout=600)
    no_warnings(p)
    # maven's own summary
    m = re.findall(r"Tests run: (\d+), Failures: (\d+), Errors: (\d+), Skipped: (\d+)\s*$", p.output, re.M)
    assert m, p.output
    total, failures, errors, skipped = map(int, m[-1])
    assert (total, failures, errors, skipped) == (4, 1, 0, 1)
    assert junit_root(adir / "target" / "surefire-reports" / "TEST-calc.CalcTest.xml") == {
        "tests": 4, "failures": 1, "errors": 0, "skipped": 1}
    rep = report(rdir, "mvnproj-surefire")
    check_tests(rep, total, total - failures - errors - skipped, failures, skipped, errors)
    assert "at CalcTest.java:" in p.output.split("Report mvnproj-surefire", 1)[1]

    root = ET.parse(adir / "target" / "site" / "jacoco" / "jacoco.xml").getroot()
    own = {c.get("type"): (int(c.get("covered")), int(c.get("covered")) + int(c.get("missed")))
           for c in root.findall("counter")}
    # add, sign's first two lines and the class line; unused's two lines and
    # the implicit constructor (line 3) never run; sign's ?: half taken
    assert own["LINE"] == (3, 7) and own["BRANCH"] == (1, 4), own
    rep = report(rdir, "mvnproj-jacoco")
    check_coverage(rep, *own["LINE"], *own["BRANCH"])
    files = json.loads((rdir / "mvnproj-jacoco" / "code-coverages.json").read_text())["codeCoverages"]
    assert [f["filePath"] for f in files] == ["calc/Calc.java"]
