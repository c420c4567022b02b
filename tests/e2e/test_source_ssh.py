"""Git sources over SSH: a real OpenSSH server on 127.0.0.1 (Debian's sshd,
started by the test with its own host key and authorized key), the client
key offered through ssh-agent, the host checked against ~/.ssh/known_hosts."""
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

SSHD = "/usr/sbin/sshd"
GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=main"]

pytestmark = pytest.mark.skipif(not os.path.exists(SSHD) or os.geteuid() != 0,
                                reason="needs Debian's openssh-server and root (sshd logs in as root)")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def ssh_env(tmp_path_factory):
    d = tmp_path_factory.mktemp("ssh")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client")], check=True)
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    port = free_port()
    (d / "sshd_config").write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host
AuthorizedKeysFile {d}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile {d}/sshd.pid
""")
    os.makedirs("/run/sshd", exist_ok=True)
    sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=open(d / "sshd.log", "w"))
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        # the repository
        work = d / "work"
        subprocess.run(GIT + ["init", "-q", str(work)], check=True)
        (work / "buildspec.yml").write_text(
            "version: 0.2\nphases:\n  build:\n    commands:\n"
            "      - echo \"CHECK file=$(cat f.txt) commits=$(git rev-list --count HEAD)\"\n")
        for i in (1, 2):
            (work / "f.txt").write_text(f"v{i}\n")
            subprocess.run(GIT + ["add", "."], cwd=work, check=True)
            subprocess.run(GIT + ["commit", "-q", "-m", f"c{i}"], cwd=work, check=True)
        subprocess.run(GIT + ["clone", "-q", "--bare", str(work), str(d / "app.git")], check=True)
        # the client's HOME: known_hosts with the server's key
        home = d / "home"
        (home / ".ssh").mkdir(parents=True)
        hostkey = (d / "host.pub").read_text().split()
        (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {hostkey[0]} {hostkey[1]}\n")
        agent = subprocess.run(["ssh-agent", "-s"], check=True, capture_output=True, text=True).stdout
        env = dict(re.findall(r"(SSH_AUTH_SOCK|SSH_AGENT_PID)=([^;]+);", agent))
        subprocess.run(["ssh-add", "-q", str(d / "client")], env={**os.environ, **env}, check=True,
                       capture_output=True)
    except BaseException:
        sshd.terminate()  # a failed setup leaves no server behind
        sshd.wait()
        raise
    yield {"url": f"ssh://root@127.0.0.1:{port}{d}/app.git", "home": str(home), "env": env, "dir": d}
    sshd.terminate()
    sshd.wait()
    subprocess.run(["kill", env["SSH_AGENT_PID"]], check=False)


def test_clone_over_ssh_with_agent(cbl, ssh_env):
    env = {**ssh_env["env"], "HOME": ssh_env["home"]}
    p = cbl("run", ssh_env["url"], env=env, check=0)
    assert re.search(r"^CHECK file=v2 commits=1$", p.output, re.M), p.output
    assert "libgit2 cannot fetch shallow over SSH" in p.output


def test_ssh_without_a_key_is_an_auth_failure(cbl, ssh_env):
    env = {"HOME": ssh_env["home"], "SSH_AUTH_SOCK": str(ssh_env["dir"] / "no-agent.sock")}
    p = cbl("run", ssh_env["url"], env=env, check=1)
    assert "DOWNLOAD_SOURCE State: FAILED" in p.output
    assert re.search(r"CLIENT_ERROR Message: .*(authentication|agent)", p.output), p.output


def test_ssh_unknown_host_key_is_refused(cbl, ssh_env, tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "known_hosts").write_text("")
    env = {**ssh_env["env"], "HOME": str(home)}
    p = cbl("run", ssh_env["url"], env=env, check=1)
    assert "DOWNLOAD_SOURCE State: FAILED" in p.output
    assert "CHECK file=" not in p.output
    assert re.search(r"CLIENT_ERROR Message: .*(host|known)", p.output, re.I), p.output
