"""The sandbox: Linux namespaces, a throw-away root, no orphans, limits."""
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import BIN, fuse_usable


def pgrep(pattern):
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [l for l in out.stdout.split() if l]


def test_host_untouched_and_processes_hidden(cbl):
    src = cbl.project("iso", """version: 0.2
phases:
  build:
    commands:
      - echo x > /usr/local/bin/cbl-sandbox-test && echo foo > /etc/cbl-sandbox-foo
      - mkdir -p /var/lib/cbl-sandbox-dpkg && touch /var/lib/cbl-sandbox-dpkg/status
      - echo "CHECK wrote $(cat /usr/local/bin/cbl-sandbox-test)"
      - echo "CHECK procs=$(ps -e --no-headers | wc -l) pid1=$(cat /proc/1/comm) host=$(hostname)"
      - echo "CHECK uid=$(id -u) home=$HOME"
      - echo private > /tmp/cbl-sandbox-tmp && echo src-write > written-in-build.txt
""")
    p = cbl("run", src, check=0)
    assert "CHECK wrote x" in p.output
    m = re.search(r"CHECK procs=(\d+) pid1=(\S+) host=(\S+)", p.output)
    assert m and int(m.group(1)) <= 5, p.output
    assert m.group(2) == "codebuild-local" and m.group(3) == "codebuild-local"
    assert "CHECK uid=0 home=/root" in p.output
    for path in ("/usr/local/bin/cbl-sandbox-test", "/etc/cbl-sandbox-foo", "/var/lib/cbl-sandbox-dpkg",
                 "/tmp/cbl-sandbox-tmp"):
        assert not os.path.exists(path), f"{path} leaked to the host"
    # snapshot mode (the default): the working tree is never changed
    assert not (src / "written-in-build.txt").exists()


def test_seccomp_and_hostname(cbl):
    src = cbl.project("seccomp", """version: 0.2
phases:
  build:
    commands:
      - mkdir -p /mnt/x && (mount -t tmpfs none /mnt/x 2>&1 || echo CHECK mount denied)
      - getent hosts "$(hostname)" >/dev/null && echo CHECK hostname resolves
      - grep -q NoNewPrivs:.*1 /proc/self/status && echo CHECK no new privs
""")
    p = cbl("run", src, check=0)
    assert re.search(r"^CHECK mount denied", p.output, re.M), p.output
    assert re.search(r"^CHECK hostname resolves", p.output, re.M), p.output
    assert re.search(r"^CHECK no new privs", p.output, re.M), p.output
    hosts = open("/etc/hosts").read()
    assert "codebuild-local" not in hosts, "the host's /etc/hosts was modified"


def test_network_none_cannot_reach_host_loopback(cbl):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    stop = threading.Event()

    def serve():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
                c.sendall(b"hello\n")
                c.close()
            except OSError:
                pass
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        spec = f"""version: 0.2
phases:
  build:
    commands:
      - /usr/bin/python3 -c "import socket; s=socket.create_connection(('127.0.0.1', {port}), 2); print('CHECK got', s.recv(10))" || echo CHECK unreachable
      - /usr/bin/python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print('CHECK own loopback works')"
"""
        src = cbl.project("net", spec)
        p = cbl("run", "--network", "host", src, check=0)
        assert re.search(r"^CHECK got b'hello", p.output, re.M), "--network host reaches the host"
        for mode in ("default", "none"):  # the default: own namespace behind a NAT (test_escape_net.py)
            p = cbl("run", "--network", mode, src, check=0)
            assert re.search(r"^CHECK unreachable", p.output, re.M), p.output
            assert not re.search(r"^CHECK got", p.output, re.M)
            assert re.search(r"^CHECK own loopback works", p.output, re.M)
    finally:
        stop.set()
        t.join()
        srv.close()


DAEMONS = """version: 0.2
phases:
  build:
    commands:
      - sleep {tag}1 &
      - setsid sleep {tag}2 &
      - sh -c '(sleep {tag}3 &) &'
      - nohup sleep {tag}4 > /dev/null 2>&1 &
      - echo CHECK daemons started; touch "$CODEBUILD_SRC_DIR/started"
      - sleep {wait}
"""


def test_daemons_gone_after_build(cbl):
    tag = "1037."
    src = cbl.project("daemons", DAEMONS.format(tag=tag, wait=0))
    cbl("run", src, check=0)
    time.sleep(0.3)
    assert pgrep(f"sleep {tag}") == []


def test_daemons_gone_when_runner_is_killed(cbl):
    tag = "2039."
    src = cbl.project("killed", DAEMONS.format(tag=tag, wait=300))
    proc = subprocess.Popen([str(BIN), "run", "--source-mode", "mount", str(src)], env=cbl.env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while not (src / "started").exists() and time.time() < deadline:
        time.sleep(0.05)
    assert pgrep(f"sleep {tag}"), "daemons did not start"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 2
    while pgrep(f"sleep {tag}") and time.time() < deadline:
        time.sleep(0.05)
    assert pgrep(f"sleep {tag}") == [], "a process of the build survived SIGKILL of the runner"


def test_memory_limit(cbl):
    src = cbl.project("oom", """version: 0.2
phases:
  build:
    commands:
      - /usr/bin/python3 -c "b = bytearray(1600 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); print('CHECK allocated')"
""")
    p = cbl("run", "--compute-type", "BUILD_LAMBDA_1GB", src, timeout=300)
    if "no writable memory cgroup on this host" in p.output:
        # the RLIMIT_AS fallback still stops the hog, without the OOM wording
        assert p.returncode == 1 and not re.search(r"^CHECK allocated", p.output, re.M), p.output
        pytest.skip("no writable memory cgroup on this host: only the rlimit fallback was tested")
    assert p.returncode == 1, p.output
    assert not re.search(r"^CHECK allocated", p.output, re.M)
    assert "out of memory" in p.output and "BUILD_LAMBDA_1GB" in p.output


def test_nproc_and_run_as(cbl):
    src = cbl.project("runas", """version: 0.2
phases:
  pre_build:
    commands:
      - echo "CHECK nproc=$(nproc)"
  build:
    run-as: nobody
    commands:
      - echo "CHECK uid=$(id -u)"
""")
    p = cbl("run", src, check=0)
    assert f"CHECK nproc={min(2, os.cpu_count())}" in p.output
    if os.geteuid() == 0:
        assert "CHECK uid=65534" in p.output


def test_sandbox_none_says_so(cbl):
    src = cbl.project("nosb", "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"CHECK $CODEBUILD_SRC_DIR\"\n")
    p = cbl("run", "--sandbox", "none", src, check=0)
    assert "WARNING: no sandbox" in p.output
    assert re.search(r"^CHECK /.+/builds/nosb/[0-9a-f-]{36}/src$", p.output, re.M), p.output
    p = cbl("run", "--sandbox", "none", "--source-mode", "mount", src, check=0)
    assert re.search(rf"^CHECK {re.escape(str(src))}$", p.output, re.M), p.output
    p = cbl("run", "--sandbox", "none", "--network", "none", src, check=2)
    assert "--network none needs the sandbox" in p.output
    p = cbl("run", "--sandbox", "bogus", src, check=2)


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/usr/bin/setpriv"),
                    reason="needs root to drop to an unprivileged user")
def test_unprivileged_user_namespace():
    """As a normal user: a user namespace, the host root read-only (or, where
    the kernel lets the user open /dev/fuse, overlaid by fuse-overlayfs:
    writable, nothing reaching the host), private /tmp."""
    import shutil
    import tempfile
    base = tempfile.mkdtemp(prefix="cbl-unpriv-")
    try:
        os.chmod(base, 0o777)
        src = os.path.join(base, "src")
        os.mkdir(src)
        with open(os.path.join(src, "buildspec.yml"), "w") as f:
            f.write("""version: 0.2
phases:
  build:
    commands:
      - echo "CHECK uid=$(id -u) procs=$(ps -e --no-headers | wc -l)"
      - touch /usr/cbl-unpriv-test 2>/dev/null || echo CHECK usr read-only
      - echo hi > /tmp/x && echo CHECK tmp writable
      - echo out > built.txt
      - echo "CHECK vlimit=$(ulimit -v)"
""")
        os.chmod(src, 0o777)
        env = dict(os.environ, HOME=base, CODEBUILD_LOCAL_HOME=os.path.join(base, "state"))
        # the default network: rootless slirp4netns opens /dev/net/tun, 0666 as Debian's udev makes it
        if os.path.exists("/dev/net/tun") and os.stat("/dev/net/tun").st_mode & 0o666 != 0o666:
            os.chmod("/dev/net/tun", 0o666)
        setpriv = ["--reuid=65534", "--regid=65534", "--clear-groups"]
        fuse = fuse_usable(*setpriv)
        p = subprocess.run(["setpriv", *setpriv, str(BIN), "run", src], env=env, capture_output=True, text=True,
                           timeout=120)
        out = p.stdout + p.stderr
        assert p.returncode == 0, out
        m = re.search(r"CHECK uid=0 procs=(\d+)", out)
        assert m and int(m.group(1)) <= 5, out
        said = re.findall(r"^CHECK .*$", out, re.M)  # the lines printed (not the commands logged)
        assert "CHECK tmp writable" in said, out
        assert not os.path.exists("/usr/cbl-unpriv-test"), "a build's write reached the host"
        if fuse:
            assert "CHECK usr read-only" not in said, out
            assert "the host's / is writable through fuse-overlayfs" in out, out
        else:
            assert "CHECK usr read-only" in said, out
            assert "not root: the sandbox shows the host's / read-only" in out, out
        if "no writable memory cgroup on this host" in out:
            assert "CHECK vlimit=3145728" in out, "RLIMIT_AS fallback (3 GB of BUILD_GENERAL1_SMALL)"
        assert not os.path.exists(os.path.join(src, "built.txt")), "snapshot: tree untouched"
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("sandbox", ["namespaces", "none"])
def test_snapshot_and_mount_modes(cbl, tmp_path, sandbox):
    spec = """version: 0.2
phases:
  build:
    commands:
      - rm keep.txt && echo rewritten > data.txt && mkdir -p new/deep && echo n > new/deep/f
      - test ! -e keep.txt && echo CHECK deleted
      - rm -rf sub
artifacts:
  files:
    - data.txt
    - new/**/*
"""
    src = cbl.project("modes", spec, files={"keep.txt": "keep\n", "data.txt": "orig\n",
                                             "sub/x.txt": "x\n"})
    out = tmp_path / "out"
    p = cbl("run", "--sandbox", sandbox, "-a", out, src, check=0)
    assert re.search(r"^CHECK deleted", p.output, re.M)
    assert (src / "keep.txt").read_text() == "keep\n"
    assert (src / "data.txt").read_text() == "orig\n"
    assert (src / "sub" / "x.txt").exists() and not (src / "new").exists()
    # the artifact holds what the build made, not the working tree
    listing = subprocess.run(["unzip", "-p", str(out / "artifacts.zip"), "data.txt"],
                             capture_output=True, text=True).stdout
    assert listing == "rewritten\n"
    p = cbl("run", "--sandbox", sandbox, "--source-mode", "mount", src, check=0)
    assert not (src / "keep.txt").exists() and (src / "data.txt").read_text() == "rewritten\n"
    assert (src / "new" / "deep" / "f").exists() and not (src / "sub").exists()


@pytest.mark.parametrize("sandbox", ["namespaces", "none"])
def test_git_tracked_only_and_untracked_warning(cbl, sandbox):
    src = cbl.project("tracked", """version: 0.2
phases:
  build:
    commands:
      - "ls -a | sort | tr '\\\\n' ' ' | sed 's/^/CHECK files= /'; echo"
      - echo "CHECK content=$(cat committed.txt)"
""", files={"committed.txt": "v1\n"})
    git = ["git", "-C", str(src), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(src)], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "c1"], check=True)
    (src / "committed.txt").write_text("v2-modified\n")
    (src / "untracked.txt").write_text("u\n")
    p = cbl("run", "--sandbox", sandbox, src, check=0)
    assert "1 untracked and 1 modified file(s)" in p.output
    assert "CHECK content=v2-modified" in p.output and "untracked.txt" in p.output
    p = cbl("run", "--sandbox", sandbox, "--git-tracked-only", src, check=0)
    assert "CHECK content=v1" in p.output
    files = re.search(r"^CHECK files= (.*)$", p.output, re.M).group(1).split()
    assert "untracked.txt" not in files and "buildspec.yml" in files
    assert "untracked and" not in p.output
    assert (src / "committed.txt").read_text() == "v2-modified\n"
