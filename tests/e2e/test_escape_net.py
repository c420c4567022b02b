"""Attacks on the network boundary (issue 13), as a malicious pull request's
buildspec would try them.  By default a build has its own network namespace
with outbound access through slirp4netns: it must not reach the host's
loopback services, abstract unix sockets or network configuration, and it
still reaches the host's other addresses and a resolver.  `--network host`
is the explicit opt-in that gives the host's loopback back; `--network none`
is loopback only.

Each attack prints "ATTACK <name> ran" before trying, so a blocked attack is
told from one that never ran; the test then checks the host side (the
server's accepted connections, `ip addr`).  Every test runs as root and as a
normal user (cbl-escape-net, created here, the binary run through setpriv
with a state directory it owns), since the two build different sandboxes
(no user namespace as root; an unprivileged user namespace otherwise)."""
import os
import pwd
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import uuid

import pytest

from conftest import BIN

USER = "cbl-escape-net"
PY = "/usr/bin/python3"

pytestmark = pytest.mark.skipif(shutil.which("slirp4netns") is None, reason="slirp4netns is not installed")


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def escape_user():
    """The normal user, created when absent.  Rootless slirp4netns opens
    /dev/net/tun, which Debian's udev rule (50-udev-default.rules) makes 0666;
    a machine without udev may have 0600: given the same mode here."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return None
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", USER], check=True)
        pw = pwd.getpwnam(USER)
    if os.path.exists("/dev/net/tun") and os.stat("/dev/net/tun").st_mode & 0o666 != 0o666:
        os.chmod("/dev/net/tun", 0o666)
    return pw


class Who:
    """Runs builds as root or as the normal user, each in its own base
    directory (sources and the state directory), readable by that user."""

    def __init__(self, name, pw):
        self.name = name
        self.pw = pw
        self.base = tempfile.mkdtemp(prefix="cbl-escape-net-")
        os.chmod(self.base, 0o755)
        if pw:
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self.n = 0

    def run(self, spec, *args, timeout=120):
        """spec: (buildspec text, {file name: content}) from spec()."""
        self.n += 1
        src = os.path.join(self.base, f"src{self.n}")
        os.mkdir(src)
        text, files = spec
        with open(os.path.join(src, "buildspec.yml"), "w") as f:
            f.write(text)
        for name, content in files.items():
            with open(os.path.join(src, name), "w") as f:
                f.write(content)
        env = dict(os.environ, CODEBUILD_LOCAL_HOME=os.path.join(self.base, "state"))
        env.pop("NO_COLOR", None)
        cmd = [str(BIN), "run", *args, src]
        if self.pw:
            for root, dirs, files in os.walk(src):
                for x in [root] + [os.path.join(root, d) for d in dirs + files]:
                    os.chown(x, self.pw.pw_uid, self.pw.pw_gid)
            env["HOME"] = self.pw.pw_dir
            cmd = ["setpriv", "--reuid", USER, "--regid", USER, "--init-groups", *cmd]
        p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout, cwd=self.base)
        p.output = p.stdout + p.stderr
        return p

    def close(self):
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(params=["root", "user"])
def who(request, escape_user):
    if os.geteuid() != 0:
        if request.param == "root":
            pytest.skip("needs root")
        w = Who("user", None)  # already a normal user
    elif request.param == "user":
        if escape_user is None:
            pytest.skip("needs setpriv to drop to a normal user")
        w = Who("user", escape_user)
    else:
        w = Who("root", None)
    yield w
    w.close()


class Server:
    """A listener that counts what it accepted and greets each peer."""

    def __init__(self, family, addr, greeting=b"HOST-SECRET-SERVICE\n"):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_INET:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(addr)
        if family == socket.AF_UNIX and not addr.startswith("\0"):
            os.chmod(addr, 0o777)  # the normal user may connect: only the boundary stops it
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.accepted = 0
        self.greeting = greeting
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            try:
                c.sendall(self.greeting)
            except OSError:
                pass
            c.close()

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()


def ran(p, name):
    assert re.search(rf"^ATTACK {name} ran$", p.output, re.M), f"the attack {name} did not run:\n{p.output}"


def result(p, name):
    m = re.search(rf"^RESULT {name} (.*)$", p.output, re.M)
    assert m, f"no result for {name}:\n{p.output}"
    return m.group(1)


def tcp_attack(name, host, port):
    """A script: connect, print what the service said."""
    return name, f"""import socket
print('ATTACK {name} ran', flush=True)
try:
    s = socket.create_connection(({host!r}, {port}), 3)
    print('RESULT {name} reached', s.recv(64))
except OSError as e:
    print('RESULT {name} blocked', e)
"""


def unix_attack(name, path):
    return name, f"""import socket
print('ATTACK {name} ran', flush=True)
s = socket.socket(socket.AF_UNIX)
try:
    s.connect({path!r})
    print('RESULT {name} reached', s.recv(64))
except OSError as e:
    print('RESULT {name} blocked', e)
"""


def spec(*steps):
    """A buildspec running each step: (name, python script) or a shell command."""
    text = "version: 0.2\nphases:\n  build:\n    commands:\n"
    files = {}
    for st in steps:
        if isinstance(st, tuple):
            files[st[0] + ".py"] = st[1]
            text += f"      - {PY} {st[0]}.py\n"
        else:
            text += f"      - {st}\n"
    return text, files


def host_address():
    """A non-loopback IPv4 address of this machine, or None."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                         text=True).stdout
    m = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
    return m.group(1) if m else None


# ------------------------------------------------------------------ the attacks

def test_host_loopback_tcp_unreachable_by_default(who):
    """A service on the host's 127.0.0.1 (as `serve` is): not from the build,
    neither directly nor through slirp's gateway (10.0.2.2 maps to the host's
    loopback without --disable-host-loopback) or its DNS address."""
    srv = Server(socket.AF_INET, ("127.0.0.1", 0))
    port = srv.sock.getsockname()[1]
    try:
        p = who.run(spec(tcp_attack("lo", "127.0.0.1", port), tcp_attack("gw", "10.0.2.2", port),
                         tcp_attack("dnsaddr", "10.0.2.3", port)))
        for name in ("lo", "gw", "dnsaddr"):
            ran(p, name)
            assert result(p, name).startswith("blocked"), p.output
        assert "HOST-SECRET-SERVICE" not in p.output
        assert srv.accepted == 0, "the host's loopback service accepted a connection from the build"
        assert p.returncode == 0, p.output
    finally:
        srv.close()


def test_host_loopback_tcp_reachable_with_network_host(who):
    srv = Server(socket.AF_INET, ("127.0.0.1", 0))
    port = srv.sock.getsockname()[1]
    try:
        p = who.run(spec(tcp_attack("lo", "127.0.0.1", port)), "--network", "host")
        ran(p, "lo")
        assert result(p, "lo").startswith("reached"), p.output
        assert srv.accepted >= 1
        assert "--network host: the build shares this machine's network" in p.output
    finally:
        srv.close()


def test_host_abstract_unix_socket_unreachable(who):
    """Abstract unix sockets belong to a network namespace: the build's own
    one has none of the host's (by default and with --network none)."""
    name = "\0cbl-escape-net-" + uuid.uuid4().hex
    srv = Server(socket.AF_UNIX, name)
    try:
        for args in ((), ("--network", "none")):
            p = who.run(spec(unix_attack("abstract", name)), *args)
            ran(p, "abstract")
            assert result(p, "abstract").startswith("blocked"), (args, p.output)
        assert srv.accepted == 0, "the host's abstract socket accepted a connection from the build"
        p = who.run(spec(unix_attack("abstract", name)), "--network", "host")
        ran(p, "abstract")
        assert result(p, "abstract").startswith("reached") and srv.accepted == 1, \
            "with --network host the abstract socket is the host's (the attack works where it should)"
    finally:
        srv.close()


def test_host_unix_socket_path_with_network_none(who):
    """A unix socket in a host path (where daemons keep theirs: /run) with
    --network none.  A path socket is reached through the filesystem, not
    the network namespace: it is out of reach only when the path is not in
    the build's view: /run is private (an empty tmpfs) for root and normal
    users alike."""
    d = tempfile.mkdtemp(prefix="cbl-escape-net-", dir="/run" if os.access("/run", os.W_OK) else None)
    os.chmod(d, 0o755)
    path = os.path.join(d, "daemon.sock")
    srv = Server(socket.AF_UNIX, path)
    try:
        p = who.run(spec(unix_attack("pathsock", path)), "--network", "none")
        ran(p, "pathsock")
        assert result(p, "pathsock").startswith("blocked"), p.output
        assert srv.accepted == 0
    finally:
        srv.close()
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("network", ["default", "none"])
def test_ip_addr_add_does_not_reach_the_host(who, network):
    addr = "10.9.9.9"
    before = subprocess.run(["ip", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True).stdout
    assert addr not in before, "left over from an earlier run: ip addr del 10.9.9.9/32 dev lo"
    p = who.run(spec("echo 'ATTACK ipaddr ran'",
                     f"ip addr add {addr}/32 dev lo; echo \"RESULT ipaddr rc=$?\"",
                     f"ip -o addr show dev lo | grep -q '{addr}/' && echo 'CHECK inside has it' || true"),
                "--network", network)
    ran(p, "ipaddr")
    result(p, "ipaddr")
    after = subprocess.run(["ip", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True).stdout
    if addr in after:
        subprocess.run(["ip", "addr", "del", f"{addr}/32", "dev", "lo"])
    assert addr not in after, f"the build added {addr} to the host's lo:\n{p.output}"


def test_outbound_tcp_to_a_host_address_through_the_nat(who):
    """What the build may reach: the host's non-loopback addresses, through
    slirp4netns, as from a docker bridge."""
    addr = host_address()
    if not addr:
        pytest.skip("no non-loopback IPv4 address on this machine")
    srv = Server(socket.AF_INET, (addr, 0), greeting=b"HELLO-THROUGH-NAT\n")
    port = srv.sock.getsockname()[1]
    try:
        p = who.run(spec(tcp_attack("out", addr, port)))
        ran(p, "out")
        assert result(p, "out").startswith("reached") and "HELLO-THROUGH-NAT" in p.output, p.output
        assert srv.accepted == 1
        p = who.run(spec(tcp_attack("out", addr, port)), "--network", "none")
        assert result(p, "out").startswith("blocked"), "--network none has no way out"
    finally:
        srv.close()


def dns_query(name):
    """A DNS query for name (A), as bytes, with id 0x1234."""
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", 1, 1)


def host_resolver_answers():
    ns = None
    for line in open("/etc/resolv.conf"):
        f = line.split()
        if len(f) >= 2 and f[0] == "nameserver" and "." in f[1]:
            ns = f[1]
            break
    if not ns:
        return False
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(dns_query("localhost"), (ns, 53))
        return s.recv(512)[:2] == b"\x12\x34"
    except OSError:
        return False
    finally:
        s.close()


def test_names_resolve_inside(who):
    """/etc/hosts names resolve, and the resolver named in /etc/resolv.conf
    (the NAT's forwarder, whatever the host's is, e.g. 127.0.0.53) answers."""
    code = """import socket, struct
print('ATTACK dns ran', flush=True)
ns = [l.split()[1] for l in open('/etc/resolv.conf') if l.startswith('nameserver')][0]
print('CHECK resolver', ns)
q = struct.pack('>HHHHHH', 0x1234, 0x0100, 1, 0, 0, 0) + bytes([9]) + b'localhost' + bytes([0]) + struct.pack('>HH', 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
try:
    s.sendto(q, (ns, 53))
    r = s.recv(512)
    print('RESULT dns answered', r[:2] == bytes([0x12, 0x34]))
except OSError as e:
    print('RESULT dns none', e)
"""
    p = who.run(spec(("dns", code), "getent hosts localhost | sed 's/^/CHECK hosts /'"))
    ran(p, "dns")
    assert "CHECK resolver 10.0.2.3" in p.output, p.output
    assert re.search(r"^CHECK hosts (127\.0\.0\.1|::1)\s+localhost", p.output, re.M), p.output
    if not host_resolver_answers():
        pytest.skip("the host's own resolver does not answer here: nothing to forward to")
    assert result(p, "dns") == "answered True", p.output
    with open("/etc/resolv.conf") as f:
        assert "10.0.2.3" not in f.read(), "the host's resolv.conf was changed"


def test_project_vpc_config_is_reported_not_applied(cbl, tmp_path):
    """A project's vpcConfig has no local equivalent: the launched build runs
    with the default network and its log says the VPC is not applied."""
    import json
    import time
    text, files = spec(tcp_attack("lo", "127.0.0.1", 9))
    src = cbl.project("vpc", text, files=files)
    doc = {"name": "vpc", "source": {"type": "NO_SOURCE", "location": f"file://{src}"},
           "artifacts": {"type": "NO_ARTIFACTS"},
           "environment": {"type": "LINUX_CONTAINER", "image": "host", "computeType": "BUILD_GENERAL1_SMALL"},
           "vpcConfig": {"vpcId": "vpc-0abc", "subnets": ["subnet-1"], "securityGroupIds": ["sg-1"]}}
    f = tmp_path / "vpc.json"
    f.write_text(json.dumps(doc))
    assert cbl("create-project", "--cli-input-json", f"file://{f}").returncode == 0
    p = cbl("start-build", "--project-name", "vpc", check=0)
    bid = json.loads(p.stdout)["build"]["id"]
    deadline = time.time() + 60
    while time.time() < deadline:
        b = json.loads(cbl("batch-get-builds", "--ids", bid, check=0).stdout)["builds"][0]
        if b["buildComplete"]:
            break
        time.sleep(0.1)
    assert b["buildStatus"] == "SUCCEEDED", b
    ev = json.loads(cbl("logs", "get-log-events", "--log-group-name", b["logs"]["groupName"],
                        "--log-stream-name", b["logs"]["streamName"], "--start-from-head", check=0).stdout)
    log = "".join(e["message"] for e in ev["events"])
    assert "the project's vpcConfig is not applied" in log, log
    assert re.search(r"RESULT lo blocked", log), "the default network: not the host's loopback"


class FakeResolver:
    """A DNS server on a loopback address (as systemd-resolved's 127.0.0.53):
    A queries get 10.11.12.13, anything else an empty NOERROR answer."""

    def __init__(self, addr):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((addr, 53))
        self.sock.settimeout(0.2)
        self.asked = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                q, peer = self.sock.recvfrom(512)
            except OSError:
                continue
            i, labels = 12, []
            while i < len(q) and q[i]:
                labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace"))
                i += 1 + q[i]
            qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
            self.asked.append(".".join(labels))
            question = q[12:i + 5]
            if qtype == 1:
                answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([10, 11, 12, 13])
                head = struct.pack(">HHHHHH", struct.unpack(">H", q[:2])[0], 0x8180, 1, 1, 0, 0)
            else:
                answer = b""
                head = struct.pack(">HHHHHH", struct.unpack(">H", q[:2])[0], 0x8180, 1, 0, 0, 0)
            self.sock.sendto(head + question + answer, peer)

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root (a private mount namespace)")
def test_names_resolve_through_a_loopback_resolver(cbl, tmp_path):
    """The host's resolv.conf names a loopback resolver, unreachable from the
    build's namespace: the build asks the NAT's forwarder (10.0.2.3), which
    asks it.  The runner runs in a private mount namespace whose
    /etc/resolv.conf names 127.0.0.153 (a fake resolver of the test)."""
    try:
        res = FakeResolver("127.0.0.153")
    except OSError as e:
        pytest.skip(f"cannot serve DNS on 127.0.0.153: {e}")
    try:
        conf = tmp_path / "resolv.conf"
        conf.write_text("nameserver 127.0.0.153\noptions timeout:2\n")
        src = cbl.project("dns", spec("cat /etc/resolv.conf | sed 's/^/CHECK conf /'",
                                      "getent ahostsv4 cbl-dns-test.example | sed 's/^/CHECK /'")[0])
        p = subprocess.run(["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"',
                            str(conf), str(BIN), "run", str(src)], env=cbl.env(), capture_output=True,
                           text=True, timeout=120)
        out = p.stdout + p.stderr
        assert "CHECK conf nameserver 10.0.2.3" in out and "CHECK conf options timeout:2" in out, out
        assert re.search(r"^CHECK 10\.11\.12\.13\s+\S+\s+cbl-dns-test\.example", out, re.M), out
        assert "cbl-dns-test.example" in res.asked
    finally:
        res.close()
