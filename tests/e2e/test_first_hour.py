"""The first hour, scripted: `run` in a terminal (a pty) through a green build, a
failing command, a buildspec error, a missing buildspec, a long silent command and
mistyped flags and commands, checking what the screen shows.

The screen is the pty's output replayed by a small terminal model (text, CR, LF, and
the CSI sequences the view uses: erase-to-end-of-line and colours), so a line redrawn
in place counts once, as a person would see it."""
import os
import re
import select
import subprocess
import time

from conftest import BIN

CONTAINER = re.compile(r"\[Container\] \d{4}/\d\d/\d\d")


def screen(raw):
    """The lines a terminal shows after raw (bytes) was written to it."""
    text = raw.decode("utf-8", "replace")
    lines, col, i = [""], 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "\x1b":
            m = re.match(r"\x1b\[([0-9;?]*)([A-Za-z])", text[i:])
            if m:
                if m.group(2) == "K":
                    lines[-1] = lines[-1][:col]
                i += m.end()
                continue
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append("")
            col = 0
        else:
            line = lines[-1].ljust(col)
            lines[-1] = line[:col] + ch + line[col + 1:]
            col += 1
        i += 1
    while lines and not lines[-1]:
        lines.pop()
    return lines


class Tty:
    """One command run on a pseudo-terminal: its raw output, screen and exit status."""

    def __init__(self, cbl, *args, timeout=120, env=None):
        master, slave = os.openpty()
        e = cbl.env(env)
        e["TERM"] = "xterm"
        p = subprocess.Popen([str(BIN), *[str(a) for a in args]], stdin=slave, stdout=slave,
                             stderr=slave, env=e, close_fds=True, start_new_session=True)
        os.close(slave)
        chunks, deadline = [], time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                r, _, _ = select.select([master], [], [], 0.5)
                if not r:
                    if p.poll() is not None:
                        break
                    continue
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the other side is closed
                    break
                if not data:
                    break
                chunks.append((time.monotonic(), data))
        finally:
            os.close(master)
        self.rc = p.wait(timeout=30)
        self.chunks = chunks
        self.raw = b"".join(d for _, d in chunks)
        self.lines = screen(self.raw)
        self.text = "\n".join(self.lines)

    def count(self, needle):
        return sum(needle in line for line in self.lines)

    def __repr__(self):
        return f"exit {self.rc}, screen:\n" + self.text


GREEN = """version: 0.2
phases:
  install:
    runtime-versions:
      python: latest
  build:
    commands:
      - echo "hello from the build"
  post_build:
    commands:
      - echo "post build ran"
"""

FAILING = """version: 0.2
phases:
  pre_build:
    commands:
      - echo "CHECK before"
  build:
    commands:
      - echo "CHECK about to fail"
      - exit 3
      - echo "CHECK never"
  post_build:
    commands:
      - echo "CHECK post_build still runs"
"""

# a warning (unknown key) and an error (an unquoted command with ': ')
SPEC_ERROR = """version: 0.2
phases:
  build:
    commands:
      - echo fine
    finaly: [x]
  post_build:
    commands:
      - echo result: done
"""

SILENT = """version: 0.2
phases:
  build:
    commands:
      - echo "CHECK start"
      - sleep 4
      - echo "CHECK end"
"""


def no_raw_agent_lines(t):
    assert not CONTAINER.search(t.text), t
    assert "[codebuild-local]" not in t.text, t


def test_green_build(cbl):
    t = Tty(cbl, "run", cbl.project("green", GREEN))
    assert t.rc == 0, t
    assert t.count("▸ BUILD") == 1 and t.count("$ echo \"hello from the build\"") == 1, t
    assert t.count("hello from the build") == 2, t  # the command and its output
    assert re.search(r"^✓ BUILD \d+\.\d\ds$", t.text, re.M), t
    assert re.search(r"^✓ POST_BUILD \d+\.\d\ds$", t.text, re.M), t
    # phases without commands are not listed (INSTALL has runtime-versions only)
    for quiet in ("DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD", "UPLOAD_ARTIFACTS"):
        assert quiet not in t.text, t
    assert re.search(r"^Build green:[0-9a-f-]+ SUCCEEDED in", t.text, re.M), t
    no_raw_agent_lines(t)


def test_failing_command(cbl):
    t = Tty(cbl, "run", cbl.project("failing", FAILING))
    assert t.rc == 1, t
    assert t.count("✗ exit status 3") == 1, t
    assert t.count("✗ BUILD FAILED") == 1, t
    assert "COMMAND_EXECUTION_ERROR: Error while executing command: exit 3. Reason: exit status 3" in t.text, t
    assert "CHECK never" not in t.text.replace('echo "CHECK never"', ""), t
    assert t.count("CHECK post_build still runs") == 2, t
    assert re.search(r"^✓ PRE_BUILD", t.text, re.M) and re.search(r"^✓ POST_BUILD", t.text, re.M), t
    # the order a person reads: the failure, then POST_BUILD
    assert t.text.index("✗ BUILD FAILED") < t.text.index("▸ POST_BUILD"), t
    no_raw_agent_lines(t)


def test_buildspec_error_shown_once(cbl):
    t = Tty(cbl, "run", cbl.project("specerr", SPEC_ERROR))
    assert t.rc == 2, t
    err = "buildspec.yml:9:9: error: phases.post_build.commands[0] is a mapping, not a string"
    assert t.count("phases.post_build.commands[0] is a mapping") == 1, t
    assert t.count(err) == 1, t
    assert t.count("finaly") == 1, t
    assert re.search(r"^  warning: buildspec\.yml:6:5: unknown key 'finaly'", t.text, re.M), t
    assert "warning: buildspec.yml:6:5: warning:" not in t.text, t
    assert re.search(r"^✗ DOWNLOAD_SOURCE FAILED \d+\.\d\ds  YAML_FILE_ERROR$", t.text, re.M), t
    assert "▸ BUILD" not in t.text, t
    no_raw_agent_lines(t)


def test_missing_buildspec_names_the_path(cbl):
    src = cbl.project("nobs", GREEN)
    t = Tty(cbl, "run", "-b", "ci/nope.yml", src)
    assert t.rc == 2, t
    m = re.search(r"YAML_FILE_ERROR: YAML file does not exist: /codebuild/output/src\d+/src/ci/nope\.yml "
                  r"\(on this machine: (.+)\)$", t.text, re.M)
    assert m and m.group(1) == str(src / "ci" / "nope.yml"), t
    assert t.count("YAML file does not exist") == 1, t
    no_raw_agent_lines(t)


def test_timer_on_a_silent_command(cbl):
    t = Tty(cbl, "run", cbl.project("silent", SILENT))
    assert t.rc == 0, t
    # drawn while the command was silent, redrawn in place: several timer frames in
    # the stream, a single line on the screen with the command's whole time
    frames = re.findall(rb"\r\x1b\[K {4}(?:\x1b\[[0-9;]*m)?\xe2\x80\xa6 (\d+)s", t.raw)
    assert b"2" in frames or b"3" in frames, t.raw
    assert len(frames) >= 2, t.raw
    timers = [line for line in t.lines if "…" in line]
    assert len(timers) == 1, t
    assert re.fullmatch(r" {4}… [45]\.\ds", timers[0]), t
    at = t.lines.index(timers[0])
    assert t.lines[at - 1] == "  $ sleep 4", t
    # none for the quick commands
    assert t.lines[at + 1] == '  $ echo "CHECK end"', t
    # the first frame came after 2 s of silence, not before
    start = next(ts for ts, d in t.chunks if b"sleep 4" in d)
    first = next(ts for ts, d in t.chunks if "…".encode() in d)
    assert first - start >= 2.0, (first - start)


def test_unknown_flag_is_one_line_and_a_suggestion(cbl):
    t = Tty(cbl, "run", "--netwrk", "none", ".")
    assert t.rc == 2, t
    assert t.lines == ["codebuild-local: error: run: unknown option '--netwrk'",
                       "did you mean '--network'? (see 'codebuild-local run --help')"], t


def test_unknown_command_is_one_line_and_a_suggestion(cbl):
    t = Tty(cbl, "runn")
    assert t.rc == 2, t
    assert t.lines == ["codebuild-local: error: unknown command 'runn'",
                       "did you mean 'run'? (see 'codebuild-local --help')"], t
    t = Tty(cbl, "version")
    assert t.rc == 2 and "did you mean '--version'?" in t.text, t
    t = Tty(cbl, "frobnicate")
    assert t.rc == 2, t
    assert t.lines == ["codebuild-local: error: unknown command 'frobnicate' (see 'codebuild-local --help')"], t


def test_no_color_and_colour_show_the_same_screen(cbl):
    src = cbl.project("colours", FAILING)
    coloured = Tty(cbl, "run", src)
    plain = Tty(cbl, "run", src, env={"NO_COLOR": "1"})
    assert b"\x1b[31" in coloured.raw and b"\x1b[31" not in plain.raw
    # (the summary's measured resource use differs from run to run)
    strip = lambda t: [re.sub(r"\d+\.\d\ds|[0-9a-f]{8}-[0-9a-f-]{27}", "#", l) for l in t.lines
                       if not l.startswith(("Resources: ", "  by phase: "))]
    assert strip(coloured) == strip(plain), (coloured, plain)
