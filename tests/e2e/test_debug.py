"""Debugging a build: run --debug opens a shell at a failing command (in a
real pseudo-terminal, driven with the pty module), codebuild-breakpoint and
codebuild-resume, and attach / exec into a build started over the API with
`aws codebuild start-build --debug-session-enabled`; only the build's user
(or root) may enter it."""
import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import termios
import time

import pytest

from conftest import BIN, rootless_user
from test_server import aws, client, start_server

FAILING = """version: 0.2
run-as: codebuild-user
phases:
  build:
    commands:
      - export FOO=from-an-earlier-command
      - mkdir -p /tmp/sub && cd /tmp/sub
      - echo "SAW pwd=$(pwd) foo=$FOO uid=$(id -u)"; false
      - echo never-here
"""

BREAKPOINT = """version: 0.2
phases:
  build:
    commands:
      - export FOO=bp-value
      - codebuild-breakpoint
      - echo "after-bp $FOO"
"""


class Pty:
    """A program on a pseudo-terminal of its own, as a user at a terminal."""

    def __init__(self, argv, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execvpe(argv[0], argv, env)
        self.buf = b""

    def expect(self, pattern, timeout=30):
        """Reads until the regex matches the output so far; returns the match."""
        rx = re.compile(pattern.encode())
        end = time.time() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                return m
            left = end - time.time()
            r, _, _ = select.select([self.fd], [], [], max(0, left))
            if not r:
                raise AssertionError(f"timed out waiting for {pattern!r}; got:\n{self.text()}")
            try:
                d = os.read(self.fd, 4096)
            except OSError:
                d = b""
            if not d:
                raise AssertionError(f"EOF waiting for {pattern!r}; got:\n{self.text()}")
            self.buf += d

    def send(self, s):
        os.write(self.fd, s.encode())

    def wait(self, timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            r, _, _ = select.select([self.fd], [], [], 0.2)
            if r:
                try:
                    d = os.read(self.fd, 4096)
                    self.buf += d
                except OSError:
                    pass
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                try:
                    while True:
                        d = os.read(self.fd, 4096)
                        if not d:
                            break
                        self.buf += d
                except OSError:
                    pass
                os.close(self.fd)
                return os.waitstatus_to_exitcode(st)
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"did not end; got:\n{self.text()}")

    def text(self):
        return self.buf.decode(errors="replace")


def test_debug_shell_at_the_failing_command(cbl_as):
    cbl = cbl_as
    src = cbl.project("dbg", FAILING)
    t = Pty(cbl.argv(["run", "--debug", src]), cbl.env())
    # what the failing command saw
    saw = t.expect(r"SAW pwd=(\S+) foo=(\S+) uid=(\d+)")
    t.expect(r"\[codebuild-local BUILD: [^\]]*false\] \$ ")
    # the marker is computed by the shell: the echo of the typed line cannot match it
    t.send('echo "SH$((1+1)) pwd=$(pwd) foo=$FOO uid=$(id -u)"\n')
    sh = t.expect(r"SH2 pwd=(\S+) foo=(\S+) uid=(\d+)")
    assert sh.groups() == saw.groups(), t.text()
    assert saw.group(2) == b"from-an-earlier-command"
    assert saw.group(1).endswith(b"/sub")
    assert saw.group(3) != b"0"  # run-as applied, to the shell as well
    t.send("exit\n")
    assert t.wait() == 1, t.text()
    out = t.text()
    assert "never-here" not in out.replace("echo never-here", "")
    assert "FAILED" in out


def test_breakpoint_pauses_and_codebuild_resume_continues(cbl):
    src = cbl.project("bp", BREAKPOINT)
    t = Pty(cbl.argv(["run", "-d", src]), cbl.env())
    t.expect(r"\[codebuild-local BUILD: codebuild-breakpoint\] \$ ")
    assert "after-bp bp-value" not in t.text()  # paused: the next command has not run
    t.send('echo "V$((2+3)) $FOO"\n')
    t.expect(r"V5 bp-value")
    # the shell's terminal follows the size of ours
    fcntl.ioctl(t.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    for i in range(40):
        t.send('echo "SZ$((1+%d)) $(stty size)"\n' % i)
        m = t.expect(r"SZ%d (\d+ \d+)" % (i + 1))
        if m.group(1) == b"33 101":
            break
        time.sleep(0.25)
    assert m.group(1) == b"33 101", t.text()
    t.send("codebuild-resume\n")
    assert t.wait() == 0, t.text()
    assert "after-bp bp-value" in t.text()
    assert "SUCCEEDED" in t.text()


def test_breakpoint_is_a_noop_without_debug(cbl):
    src = cbl.project("bp", BREAKPOINT)
    p = cbl("run", src, check=0)
    assert "after-bp bp-value" in p.stdout
    assert "paused" not in p.output


def test_debug_without_a_terminal_waits_and_says_how_to_attach(cbl):
    src = cbl.project("dbg", FAILING.replace("run-as: codebuild-user\n", ""))
    run = subprocess.Popen(cbl.argv(["run", "--debug", src]), env=cbl.env(), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        build_id = None
        for line in run.stdout:
            lines.append(line)
            m = re.search(r"codebuild-local attach (\S+);", line)
            if m:
                build_id = m.group(1)
            if "codebuild-resume inside" in line:
                break
        assert build_id, "".join(lines)
        e = cbl("exec", build_id, "--", "sh", "-c", 'echo "pwd=$(pwd) foo=$FOO"; exit 7')
        assert e.returncode == 7, e.output
        assert "pwd=/tmp/sub foo=from-an-earlier-command" in e.stdout, e.output
        assert run.poll() is None  # still paused
        cbl("exec", build_id, "--", "codebuild-resume", check=0)
        rest = run.stdout.read()
        assert run.wait(timeout=60) == 1, rest
        assert "Build resumed" in rest
        assert "never-here" not in rest.replace("Running command echo never-here", "")
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


@pytest.fixture
def api(home, cbl):
    s = start_server(home)
    yield s
    assert s.stop() == 0, s.stderr


def wait_for(pred, timeout=60, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def build_log(home, build_id):
    project, uuid = build_id.split(":", 1)
    p = home / "builds" / project / uuid / "build.log"
    return p.read_text() if p.exists() else ""


def other_user():
    """A second normal user, who must not enter the build."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root to create a second user")
    return rootless_user()


def test_attach_and_exec_on_a_build_started_over_the_api(api, cbl, home):
    src = cbl.project("api-dbg", BREAKPOINT)
    client(api.url).create_project(
        name="api-dbg",
        source={"type": "NO_SOURCE", "location": f"file://{src}"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "LINUX_CONTAINER", "image": "host", "computeType": "BUILD_GENERAL1_SMALL"},
        serviceRole="arn:aws:iam::000000000000:role/codebuild",
    )
    p = aws(api.url, "codebuild", "start-build", "--project-name", "api-dbg", "--debug-session-enabled")
    assert p.returncode == 0, p.stderr
    build = json.loads(p.stdout)["build"]
    bid = build["id"]
    wait_for(lambda: "Build paused at a breakpoint" in build_log(home, bid), what="the pause")
    rec = client(api.url).batch_get_builds(ids=[bid])["builds"][0]
    assert rec["debugSession"]["sessionEnabled"] is True
    assert not rec["buildComplete"]

    # exec: the build's environment and carried variables; its exit status
    e = cbl("exec", bid, "--", "sh", "-c", 'echo "foo=$FOO"; exit 3')
    assert e.returncode == 3, e.output
    assert "foo=bp-value" in e.stdout

    # attach: a shell on a terminal; leaving it does not resume the build
    t = Pty(cbl.argv(["attach", bid]), cbl.env())
    t.expect(r"\[codebuild-local BUILD: codebuild-breakpoint\] \$ ")
    t.send('echo "A$((4+4)) $FOO $(id -u)"\n')
    t.expect(r"A8 bp-value 0")
    t.send("exit 4\n")
    assert t.wait() == 4, t.text()
    assert not client(api.url).batch_get_builds(ids=[bid])["builds"][0]["buildComplete"]

    # another normal user is refused, even where the socket is reachable:
    # the runner checks who connects
    pw = other_user()
    project, uuid = bid.split(":", 1)
    bdir = home / "builds" / project / uuid
    chain = [home.parent.parent.parent, home.parent.parent, home.parent, home, home / "builds", bdir.parent, bdir]
    modes = {d: d.stat().st_mode for d in chain}
    sock = bdir / "debug.sock"
    smode = sock.stat().st_mode
    try:
        for d in chain:
            os.chmod(d, modes[d] | 0o011)
        os.chmod(sock, 0o666)
        env = cbl.env({"HOME": pw.pw_dir, "USER": pw.pw_name})
        r = subprocess.run(["setpriv", "--reuid", str(pw.pw_uid), "--regid", str(pw.pw_gid), "--init-groups",
                            str(BIN), "exec", bid, "--", "sh", "-c", "echo got-in"],
                           env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "got-in" not in r.stdout, r.stdout + r.stderr
        assert f"permission denied: only the user who started the build (uid {os.geteuid()})" in r.stderr, r.stderr
        # and with the directory as it is (0700): refused before the socket
        for d in chain:
            os.chmod(d, modes[d])
        os.chmod(sock, smode)
        os.chmod(home.parent.parent.parent, modes[home.parent.parent.parent] | 0o011)
        r = subprocess.run(["setpriv", "--reuid", str(pw.pw_uid), "--regid", str(pw.pw_gid), "--init-groups",
                            str(BIN), "attach", bid], env=env, capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        assert r.returncode != 0 and "permission denied" in r.stderr, r.stderr
    finally:
        for d in chain:
            os.chmod(d, modes[d])
        if sock.exists():
            os.chmod(sock, smode)

    # codebuild-resume through exec: the build goes on and succeeds
    cbl("exec", bid, "--", "codebuild-resume", check=0)
    b = wait_for(lambda: (lambda r: r if r["buildComplete"] else None)(
        client(api.url).batch_get_builds(ids=[bid])["builds"][0]), what="the build's end")
    assert b["buildStatus"] == "SUCCEEDED"
    assert "after-bp bp-value" in build_log(home, bid)
    # the socket is gone with the build
    assert not sock.exists()
    gone = cbl("exec", bid, "--", "true")
    assert gone.returncode != 0 and "not running" in gone.stderr


RUNNING = """version: 0.2
phases:
  build:
    commands:
      - export STAGE=running-now
      - echo ready-for-exec; sleep 30
"""


def test_exec_into_a_running_build(cbl_as):
    """Not paused: exec runs next to the command that runs (as root and as
    a normal user, whose sandbox is a user namespace)."""
    src = cbl_as.project("live", RUNNING)
    run = subprocess.Popen(cbl_as.argv(["run", src]), env=cbl_as.env(), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in run.stdout:
            if "ready-for-exec" in line and "Running command" not in line:
                break
        builds = cbl_as.home / "builds" / "live"
        bid = "live:" + next(builds.iterdir()).name
        e = cbl_as("exec", bid, "--", "sh", "-c", 'echo "stage=$STAGE"; ps -e -o comm= | grep -c sleep')
        assert e.returncode == 0, e.output
        assert e.stdout.splitlines() == ["stage=running-now", "1"], e.output
        assert run.poll() is None
    finally:
        run.kill()
        run.wait()
