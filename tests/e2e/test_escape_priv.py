"""Attacks on the sandbox's privilege boundary (issue 13): what a build's root
could do to the host and to the runner, and can no longer do.

Each attack is a buildspec a malicious pull request could carry.  It first
prints "ATTACK-RAN <name>" (proof that it ran), then the test checks the host
side for the absence of its effect.  Every test runs twice: as root (the
build's root is a container's root: default capabilities, seccomp, masked
/proc) and as a normal user (an unprivileged user namespace), the user
created here (`useradd -m cbl-escape-priv`) and the binary run through
`setpriv` with a state directory it owns."""
import glob
import os
import pwd
import re
import shutil
import sqlite3
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import BIN

USER = "cbl-escape-priv"
# CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE
# NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP: what docker gives a container
DEFAULT_CAPS = 0xA80425FB
CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_SYS_TIME = 12, 21, 19, 25


@pytest.fixture(scope="module")
def escape_user():
    """The normal user, created when missing (needs root)."""
    if os.geteuid() != 0:
        return None  # we are a normal user already
    if not shutil.which("setpriv") or not shutil.which("useradd"):
        pytest.skip("needs setpriv and useradd to drop to a normal user")
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", USER], check=True, capture_output=True)
        return pwd.getpwnam(USER)


class Build:
    """Runs `codebuild-local run` on a one-file project, as root or as the
    normal user, with a state directory of its own."""

    def __init__(self, mode, user):
        self.mode = mode
        self.user = user if mode == "user" and os.geteuid() == 0 else None
        self.base = tempfile.mkdtemp(prefix="cbl-escape-priv-")
        os.chmod(self.base, 0o755)
        self.state = os.path.join(self.base, "state")
        os.mkdir(self.state)
        self.n = 0
        if self.user:
            os.chown(self.base, self.user.pw_uid, self.user.pw_gid)
            os.chown(self.state, self.user.pw_uid, self.user.pw_gid)

    def env(self, extra=None):
        env = dict(os.environ, CODEBUILD_LOCAL_HOME=self.state, AWS_CONFIG_FILE="/dev/null")
        env.pop("NO_COLOR", None)
        if self.user:
            env["HOME"] = self.user.pw_dir
            env["USER"] = env["LOGNAME"] = USER
        env.update(extra or {})
        return env

    def cmd(self, *args):
        argv = [str(BIN), *[str(a) for a in args]]
        if self.user:
            argv = ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--init-groups",
                    *argv]
        return argv

    def run(self, buildspec, *args, env=None, timeout=120):
        self.n += 1
        src = os.path.join(self.base, f"src{self.n}")
        os.mkdir(src)
        with open(os.path.join(src, "buildspec.yml"), "w") as f:
            f.write(buildspec)
        if self.user:
            for p in (src, os.path.join(src, "buildspec.yml")):
                os.chown(p, self.user.pw_uid, self.user.pw_gid)
        p = subprocess.run(self.cmd("run", *args, src), env=self.env(env), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout, cwd=self.base)
        p.output = p.stdout + p.stderr
        return p

    def record(self, p):
        m = re.search(r"^Record: (\S+)", p.output, re.M)
        assert m, p.output
        import json
        with open(m.group(1)) as f:
            return json.load(f)

    def cleanup(self):
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(params=["root", "user"])
def build(request, escape_user):
    if request.param == "root" and os.geteuid() != 0:
        pytest.skip("the root mode needs the tests to run as root")
    b = Build(request.param, escape_user)
    yield b
    b.cleanup()


def buildspec(*commands):
    lines = "".join(f"      - {json_quote(c)}\n" for c in commands)
    return f"version: 0.2\nphases:\n  build:\n    commands:\n{lines}"


def json_quote(s):
    """A YAML double-quoted scalar (JSON's escapes are YAML's)."""
    import json
    return json.dumps(s)


def ran(p, name):
    assert re.search(rf"^ATTACK-RAN {name}$", p.output, re.M), f"the {name} attack did not run:\n{p.output}"


def said(p, text):
    """A line of the build's output starting with text (not the log's echo
    of the command that would print it)."""
    return re.search(rf"^{re.escape(text)}", p.output, re.M) is not None


def status_field(p, name):
    m = re.search(rf"^{name}:\s*([0-9a-f]+)$", p.output, re.M)
    assert m, p.output
    return int(m.group(1), 16)


def test_root_has_only_the_default_capabilities(build):
    p = build.run(buildspec("echo ATTACK-RAN caps; grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status",
                            "id -u"))
    assert p.returncode == 0, p.output
    ran(p, "caps")
    for f in ("CapInh", "CapPrm", "CapEff", "CapBnd"):
        assert status_field(p, f) == DEFAULT_CAPS, f"{f}:\n{p.output}"
    assert status_field(p, "CapAmb") == 0
    assert build.record(p)["environment"]["privilegedMode"] is False


@pytest.fixture
def loop_device():
    """A host block device backed by a file we can read afterwards:
    (backing file, major, minor); None where losetup cannot make one."""
    if os.geteuid() != 0 or not shutil.which("losetup"):
        yield None
        return
    fd, backing = tempfile.mkstemp(prefix="cbl-escape-loop-")
    os.write(fd, b"\0" * 65536)
    os.close(fd)
    p = subprocess.run(["losetup", "-f", "--show", backing], capture_output=True, text=True)
    if p.returncode != 0:
        os.unlink(backing)
        yield None
        return
    dev = p.stdout.strip()
    st = os.stat(dev)
    try:
        yield backing, os.major(st.st_rdev), os.minor(st.st_rdev)
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True)
        os.unlink(backing)


def test_device_nodes_do_not_reach_host_devices(build, loop_device):
    major, minor = (loop_device[1], loop_device[2]) if loop_device else (7, 0)
    marker = "CBL-ESCAPE-PRIV-BLOCK-" + uuid.uuid4().hex[:8]
    write = f"echo {marker} | dd of=$N conv=notrunc,fsync 2>&1 && echo WROTE-BLOCK $N"
    p = build.run(buildspec(
        "echo ATTACK-RAN mknod",
        f"for N in /lo0 /tmp/lo0 /dev/shm/lo0; do (mknod $N b {major} {minor} && {write}) 2>&1; done; true",
        # a character device made where it would work: /dev/null's numbers
        "for N in /cnull /tmp/cnull; do (mknod $N c 1 3 && echo x > $N && echo OPENED-CHAR $N) 2>&1; done; true"))
    assert p.returncode == 0, p.output
    ran(p, "mknod")
    assert not said(p, "WROTE-BLOCK") and not said(p, "OPENED-CHAR"), p.output
    if loop_device:
        with open(loop_device[0], "rb") as f:
            assert marker.encode() not in f.read(), "the marker reached the host's block device"


def read_sysctl(name):
    with open(f"/proc/sys/{name}") as f:
        return f.read()


def test_sysctls_are_read_only(build):
    names = ("kernel/printk_ratelimit", "kernel/core_pattern")
    before = {n: read_sysctl(n) for n in names}
    try:
        p = build.run(buildspec(
            "echo ATTACK-RAN sysctl",
            "(echo 77 > /proc/sys/kernel/printk_ratelimit) 2>&1; true",
            "(echo '|/bin/sh -c \"touch /tmp/cbl-escape-priv-core\"' > /proc/sys/kernel/core_pattern) 2>&1; true",
            "grep -E ' /proc/(sys|sysrq-trigger|irq|bus) ' /proc/self/mountinfo"))
        assert p.returncode == 0, p.output
        ran(p, "sysctl")
        for n in names:
            assert read_sysctl(n) == before[n], f"the host's {n} changed"
        assert re.search(r" /proc/sys ro,", p.output), p.output
    finally:
        for n in names:
            if read_sysctl(n) != before[n] and os.geteuid() == 0:
                with open(f"/proc/sys/{n}", "w") as f:
                    f.write(before[n])


def host(*argv):
    return subprocess.run(argv, capture_output=True, text=True).stdout


def test_host_network_configuration_untouched(build):
    addr, chain = "10.213.14.1", "CBLESCAPEPRIV"
    has_iptables = os.geteuid() == 0 and shutil.which("iptables") and \
        subprocess.run(["iptables", "-S"], capture_output=True).returncode == 0
    try:
        p = build.run(buildspec(
            "echo ATTACK-RAN net",
            f"ip addr add {addr}/32 dev lo 2>&1; iptables -N {chain} 2>&1; true",
            "grep -E '^CapEff:' /proc/self/status"))
        assert p.returncode == 0, p.output
        ran(p, "net")
        assert addr not in host("ip", "addr", "show", "dev", "lo")
        if has_iptables:
            assert chain not in host("iptables", "-S")
        # whatever network the build has: no CAP_NET_ADMIN over it
        assert not status_field(p, "CapEff") & (1 << CAP_NET_ADMIN)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["ip", "addr", "del", f"{addr}/32", "dev", "lo"], capture_output=True)
            if has_iptables:
                subprocess.run(["iptables", "-X", chain], capture_output=True)


def test_clock_cannot_be_set(build):
    wall, mono = time.time(), time.monotonic()
    # set to the current time: had it worked, the host would not notice
    p = build.run(buildspec(
        "echo ATTACK-RAN clock",
        "date -s \"@$(date +%s)\" >/dev/null 2>date.err; cat date.err",
        "/usr/bin/python3 -c 'import time; time.clock_settime(time.CLOCK_REALTIME, time.time())' 2>&1 | tail -1",
        "true"))
    assert p.returncode == 0, p.output
    ran(p, "clock")
    assert "cannot set date: Operation not permitted" in p.output, p.output
    assert "PermissionError: [Errno 1] Operation not permitted" in p.output, p.output
    assert abs((time.time() - wall) - (time.monotonic() - mono)) < 2, "the host's clock moved"


def files_containing(root, needle):
    hits = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as f:
                    if needle in f.read():
                        hits.append(path)
            except OSError:
                pass
    return hits


def test_runner_environment_not_readable(build):
    marker = "cbl-escape-priv-" + uuid.uuid4().hex
    p = build.run(buildspec(
        "echo ATTACK-RAN environ",
        "cat /proc/1/environ 2>&1 | tr '\\0' '\\n'; true",
        "for e in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $e; done 2>/dev/null; env; true"),
        env={"AWS_SECRET_ACCESS_KEY": marker, "CBL_ESCAPE_MARKER": marker})
    assert p.returncode == 0, p.output
    ran(p, "environ")
    assert "/proc/1/environ: Permission denied" in p.output, p.output
    assert marker not in p.output
    assert not files_containing(build.state, marker.encode()), "the marker is in the state directory"


def test_runner_descriptors_not_reachable(build):
    p = build.run(buildspec(
        "echo ATTACK-RAN fds",
        "ls -l /proc/1/fd 2>&1; for f in /proc/1/fd/*; do readlink $f; done 2>&1; true",
        # what broke every later command when the state database was fd 3
        "for f in /proc/1/fd/*; do (printf 'garbage-garbage-garbage' >> $f && echo WROTE $f) 2>&1; done; true",
        "echo AFTER-FDS"))
    assert p.returncode == 0, p.output
    ran(p, "fds")
    assert said(p, "AFTER-FDS") and not said(p, "WROTE "), p.output
    assert ".db" not in p.output, p.output
    # the state database still opens, and the runner still uses it
    dbs = glob.glob(os.path.join(build.state, "*.db"))
    assert dbs, os.listdir(build.state)
    with sqlite3.connect(dbs[0]) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    q = subprocess.run(build.cmd("list-builds"), env=build.env(), capture_output=True, text=True, timeout=60)
    assert q.returncode == 0, q.stdout + q.stderr


def test_pid1_cannot_be_traced(build):
    attach = ("import ctypes; l = ctypes.CDLL(None, use_errno=True); "
              "print('PTRACE-ATTACH', l.ptrace(16, 1, 0, 0), ctypes.get_errno())")
    p = build.run(buildspec(
        "echo ATTACK-RAN ptrace",
        "timeout 10 strace -p 1 -e trace=none -o /dev/null 2>&1; true",
        "timeout 20 gdb -p 1 -batch -ex 'info proc' 2>&1 | grep -iE 'ptrace|attach' | head -3; true",
        f"/usr/bin/python3 -c \"{attach}\"",
        "(head -c 64 /proc/1/mem >/dev/null && echo READ-MEM) 2>&1; true",
        "echo AFTER-PTRACE"))
    assert p.returncode == 0, p.output
    ran(p, "ptrace")
    assert "strace: attach: ptrace(PTRACE_SEIZE, 1): Operation not permitted" in p.output, p.output
    assert "PTRACE-ATTACH -1 1" in p.output, p.output
    assert not said(p, "READ-MEM")
    # PID 1 went on serving the build: the command after the attacks ran
    assert said(p, "AFTER-PTRACE")


def test_privileged_build_has_full_power_and_says_so(build):
    p = build.run(buildspec(
        "echo ATTACK-RAN privileged",
        "grep -E '^(CapEff|Seccomp):' /proc/self/status",
        "(mkdir -p /tmp/cbl && mount -t tmpfs none /tmp/cbl && echo MOUNTED) 2>&1; true"), "--privileged")
    assert p.returncode == 0, p.output
    ran(p, "privileged")
    assert "WARNING: privileged mode" in p.output, p.output
    caps = status_field(p, "CapEff")
    assert caps & (1 << CAP_SYS_ADMIN) and caps & (1 << CAP_NET_ADMIN), p.output
    assert status_field(p, "Seccomp") == 0
    assert said(p, "MOUNTED")
    assert build.record(p)["environment"]["privilegedMode"] is True
    # the init stays out of reach even then
    q = build.run(buildspec("echo ATTACK-RAN privileged-environ", "tr '\\0' '\\n' < /proc/1/environ; true"),
                  "--privileged", env={"CBL_ESCAPE_MARKER": "cbl-escape-priv-privileged-marker"})
    ran(q, "privileged-environ")
    assert "cbl-escape-priv-privileged-marker" not in q.output


ENGINE_STEPS = (
    # what a container engine (dockerd) does to the kernel to run a container
    "unshare --mount --uts --ipc --net --pid --fork true && echo ENGINE-NAMESPACES",
    "mkdir -p /tmp/o/l /tmp/o/u /tmp/o/w /tmp/o/m && mount -t overlay overlay "
    "-o lowerdir=/tmp/o/l,upperdir=/tmp/o/u,workdir=/tmp/o/w /tmp/o/m && echo ENGINE-OVERLAY",
    "ip link add cblbr0 type bridge && ip link set cblbr0 up && echo ENGINE-BRIDGE",
    "ip link add cblve0 type veth peer name cblve1 && echo ENGINE-VETH",
)


def test_privileged_build_can_do_what_a_container_engine_needs(build):
    """privilegedMode exists for docker-in-docker builds: such a build can
    create namespaces, overlay mounts, a bridge and veth pairs (dockerd's
    kernel needs; no Docker engine runs on this machine to try the real
    one), and none of it reaches the host.  The same steps fail in a
    non-privileged build."""
    steps = ("echo ATTACK-RAN engine",) + tuple(f"({s}) 2>&1; true" for s in ENGINE_STEPS)
    p = build.run(buildspec(*steps), "--privileged")
    assert p.returncode == 0, p.output
    ran(p, "engine")
    for word in ("NAMESPACES", "OVERLAY", "BRIDGE", "VETH"):
        assert said(p, f"ENGINE-{word}"), (word, p.output)
    links = host("ip", "-o", "link", "show")
    assert "cblbr0" not in links and "cblve0" not in links, "the build's links reached the host"
    q = build.run(buildspec(*steps))
    assert q.returncode == 0, q.output
    ran(q, "engine")
    for word in ("NAMESPACES", "OVERLAY", "BRIDGE", "VETH"):
        assert not said(q, f"ENGINE-{word}"), (word, q.output)
