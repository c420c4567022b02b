"""Attacks on `codebuild-local serve` by hostile clients, on 127.0.0.1 only,
with bounded counts and times (the issue's figures):

- slowloris: 300 connections that trickle a request head one byte every
  3 s; legitimate requests (new connections and kept-alive ones) are still
  answered within 1 s each, and the server cuts the trickling connections
  once their head is overdue;
- 200 concurrent 8 MB bodies without a valid key: answered on their head,
  bodies never read, the server's peak RSS (VmHWM from /proc) under 256 MB;
  the same with a known key and a wrong signature (bodies that must be read
  to check the signature): the body budget holds memory under 256 MB too;
- a signature that does not cover X-Amz-Target (or Content-Type), or names
  a header the request lacks, is refused: a request signed for
  BatchGetBuilds replayed as BatchDeleteBuilds deletes nothing.

Each attack first proves it ran (the server held the connections, answered
the requests, logged the replayed target)."""
import json
import os
import socket
import threading
import time
import urllib.request

import pytest

from conftest import BIN
from test_server import AKID, REGION, SECRET, clean_aws_env, client, start_server  # noqa: F401 (a fixture)

SLOW_CONNS = 300
BIG_CONNS = 200
BIG_BODY = 8 * 1000 * 1000  # under the 8 MiB limit: a body the server would accept
RSS_LIMIT_KB = 256 * 1024


def server_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def proc_status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def host_port(url):
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    return host, int(port)


def timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


@pytest.fixture
def srv(home, clean_aws_env):
    # an AddressSanitizer build keeps 256 MB of freed memory in quarantine
    # by default: bounded here so that RSS measures the server, not ASan
    asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "quarantine_size_mb=16"]))
    s = start_server(home, env_extra={"ASAN_OPTIONS": asan})
    yield s
    assert s.stop() == 0, s.stderr


@pytest.fixture(params=[[], ["--threads", "2"]], ids=["thread-per-connection", "two-polling-threads"])
def srv_modes(request, home, clean_aws_env):
    s = start_server(home, *request.param)
    yield s
    assert s.stop() == 0, s.stderr


def test_slowloris_does_not_keep_legitimate_requests_out(srv_modes):
    srv = srv_modes
    host, port = host_port(srv.url)
    pid = srv.proc.pid
    fds_before = server_fds(pid)
    socks = []
    for _ in range(SLOW_CONNS):
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        socks.append(s)
    for s in socks:
        s.setblocking(False)
    cut_at = {}
    t_start = time.monotonic()
    stop = threading.Event()

    def trickle():
        while not stop.is_set() and len(cut_at) < len(socks):
            for i, s in enumerate(socks):
                if i in cut_at:
                    continue
                try:
                    if s.recv(1) == b"":
                        cut_at[i] = time.monotonic() - t_start
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    cut_at[i] = time.monotonic() - t_start
                    continue
                try:
                    s.send(b"a")
                except OSError:
                    cut_at[i] = time.monotonic() - t_start
            stop.wait(3)

    t = threading.Thread(target=trickle)
    t.start()
    try:
        # the attack runs: the server holds every trickling connection
        time.sleep(1)
        held = server_fds(pid) - fds_before
        assert held >= SLOW_CONNS, f"the server holds {held} sockets, not the {SLOW_CONNS} attackers"
        assert not cut_at, "connections cut before their head was overdue"
        kept = client(srv.url)
        kept.list_projects()
        latencies = []
        # legitimate requests throughout the attack (10 s head timeout + slack)
        while time.monotonic() - t_start < 13:
            latencies.append(timed(kept.list_projects))  # a kept-alive connection
            fresh = client(srv.url)  # (the SDK's own set-up is not the server's time)
            latencies.append(timed(fresh.list_projects))  # a new connection
            time.sleep(0.2)
        assert len(latencies) >= 40
        assert max(latencies) < 1.0, sorted(latencies)[-5:]
    finally:
        stop.set()
        t.join(timeout=20)
        for s in socks:
            s.close()
    # and the server cut the trickling connections once their head was overdue
    assert len(cut_at) == SLOW_CONNS, f"{SLOW_CONNS - len(cut_at)} trickling connections still open"
    assert 9 <= min(cut_at.values()) and max(cut_at.values()) < 13.5, sorted(cut_at.values())
    srv.stop()
    assert f"closed" in srv.stderr and "too slow to send a request" in srv.stderr


def test_connection_cap_is_cleared_when_slow_clients_fill_it(home, clean_aws_env):
    """More trickling connections than the cap: the server holds no more than
    the cap allows one address (3/4 of it), refuses the rest at once, and - more than half its slots waiting
    for a head - cuts the waiting ones after 2 s instead of the usual 10, so
    a legitimate client gets in within seconds, not after the attack."""
    cap = 64
    s = start_server(home, "--max-connections", str(cap))
    try:
        host, port = host_port(s.url)
        fds_before = server_fds(s.proc.pid)
        socks = []
        t0 = time.monotonic()
        for _ in range(3 * cap):
            c = socket.create_connection((host, port), timeout=5)
            try:
                c.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            except OSError:
                pass  # refused at the cap
            socks.append(c)
        time.sleep(0.3)
        held = server_fds(s.proc.pid) - fds_before
        # the attack ran: its address holds all it may (3/4 of the cap), no more
        per_ip = cap - cap // 4
        assert per_ip - 4 <= held <= per_ip, held
        answered_at = None
        while time.monotonic() - t0 < 8:
            try:
                client(s.url).list_projects()
                answered_at = time.monotonic() - t0
                break
            except Exception:  # refused while the cap is full
                time.sleep(0.2)
        assert answered_at is not None and answered_at < 4, answered_at
        # every trickling connection was cut or refused: once fewer than half
        # the slots wait, the rest are cut at the usual header timeout (10 s
        # from their connection, plus the reaper's tick)
        deadline = t0 + 13
        for c in socks:
            c.settimeout(max(0.5, deadline - time.monotonic()))
            try:
                assert c.recv(1) == b""
            except ConnectionResetError:
                pass
            c.close()
    finally:
        assert s.stop() == 0, s.stderr


def big_body_attack(url, headers_for, expect):
    """BIG_CONNS connections at once, each declaring and sending a BIG_BODY
    body; returns (answers, peak RSS of the server in kB)."""
    host, port = host_port(url)
    barrier = threading.Barrier(BIG_CONNS)
    answers = [None] * BIG_CONNS
    chunk = b"a" * 65536

    def attack(i):
        s = socket.create_connection((host, port), timeout=30)
        try:
            head = "".join(f"{k}: {v}\r\n" for k, v in headers_for(i).items())
            s.sendall(f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\n{head}"
                      f"Content-Length: {BIG_BODY}\r\n\r\n".encode())
            barrier.wait(timeout=60)  # every connection open before any body
            sent = 0
            try:
                while sent < BIG_BODY:
                    n = min(len(chunk), BIG_BODY - sent)
                    s.sendall(chunk[:n])
                    sent += n
            except OSError:
                pass  # the server answered and closed without reading
            data = b""
            try:
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    data += d
                    if b"\r\n\r\n" in data:
                        hdr, _, rest = data.partition(b"\r\n\r\n")
                        cl = [l for l in hdr.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                        if cl and len(rest) >= int(cl[0].split(b":")[1]):
                            break
            except OSError:
                pass
            answers[i] = data
        finally:
            s.close()

    return answers, attack


def run_big_body_attack(srv, headers_for):
    answers, attack = big_body_attack(srv.url, headers_for, None)
    pid = srv.proc.pid
    peak = [proc_status_kb(pid, "VmRSS")]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak.append(proc_status_kb(pid, "VmRSS"))
            done.wait(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=attack, args=(i,)) for i in range(BIG_CONNS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    sampler.join()
    hwm = proc_status_kb(pid, "VmHWM")
    print(f"server peak RSS {max(max(peak), hwm)} kB")
    return answers, max(max(peak), hwm)


def error_type(answer):
    if not answer or b"\r\n\r\n" not in answer:
        return None
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["__type"]


def test_unauthenticated_large_bodies_are_not_read(srv):
    answers, peak_kb = run_big_body_attack(
        srv, lambda i: {"Content-Type": "application/x-amz-json-1.1",
                        "X-Amz-Target": "CodeBuild_20161006.ListProjects"}
        | ({} if i % 2 else {"Authorization": "AWS4-HMAC-SHA256 Credential=AKIDNOBODY/20260101/"
                             "us-east-1/codebuild/aws4_request, SignedHeaders=host;x-amz-date, "
                             "Signature=" + "0" * 64, "X-Amz-Date": "20260101T000000Z"}))
    # the attack ran: every connection was answered, on its head
    got = [error_type(a) for a in answers]
    assert got.count((400, "MissingAuthenticationTokenException")) == BIG_CONNS // 2, got
    assert got.count((400, "UnrecognizedClientException")) == BIG_CONNS // 2, got
    # 200 x 8 MB = 1.6 GB declared; none of it held
    assert peak_kb < RSS_LIMIT_KB, f"server RSS peaked at {peak_kb} kB"
    # and the server still answers
    assert client(srv.url).list_projects()["projects"] == []


def test_signed_large_bodies_stay_within_the_budget(srv):
    # a known key, a signature that will not match: the body has to be read
    # to find out, so only the budget keeps memory bounded
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    answers, peak_kb = run_big_body_attack(
        srv, lambda i: {"Content-Type": "application/x-amz-json-1.1",
                        "X-Amz-Target": "CodeBuild_20161006.ListProjects", "X-Amz-Date": now,
                        "Authorization": f"AWS4-HMAC-SHA256 Credential={AKID}/{now[:8]}/{REGION}/"
                        "codebuild/aws4_request, SignedHeaders=content-type;host;x-amz-date;"
                        "x-amz-target, Signature=" + "0" * 64})
    got = [error_type(a) for a in answers]
    read = got.count((400, "InvalidSignatureException"))
    throttled = got.count((400, "ThrottlingException"))
    # the attack ran: some bodies were read whole and checked, the rest refused
    assert read >= 1 and read + throttled == BIG_CONNS, got
    assert peak_kb < RSS_LIMIT_KB, f"server RSS peaked at {peak_kb} kB"
    assert client(srv.url).list_projects()["projects"] == []


# ---- replay with another target ------------------------------------------------


def signed_request(url, target, body, signed_target=True, signed_type=True, extra_signed=None):
    """Signed by botocore; the target / content type are added after signing
    when they should not be covered."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {}
    if signed_type:
        headers["Content-Type"] = "application/x-amz-json-1.1"
    if signed_target:
        headers["X-Amz-Target"] = target
    if extra_signed:
        headers.update(extra_signed)
    req = AWSRequest(method="POST", url=url + "/", data=body.encode(), headers=headers)
    SigV4Auth(Credentials(AKID, SECRET), "codebuild", REGION).add_auth(req)
    out = dict(req.headers.items())
    out["Content-Type"] = "application/x-amz-json-1.1"
    out["X-Amz-Target"] = target
    return out


def send(url, headers, body):
    r = urllib.request.Request(url + "/", data=body.encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_target_swap_replay_is_refused(cbl, tmp_path, clean_aws_env):
    src = tmp_path / "src"
    src.mkdir()
    (src / "buildspec.yml").write_text("version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n")
    p = cbl("run", "--sandbox", "none", "--project", "victim", str(src), check=0)
    assert p.returncode == 0, p.stderr
    srv = start_server(cbl.home)
    try:
        ids = client(srv.url).list_builds_for_project(projectName="victim")["ids"]
        assert len(ids) == 1
        body = json.dumps({"ids": ids})
        get, delete = "CodeBuild_20161006.BatchGetBuilds", "CodeBuild_20161006.BatchDeleteBuilds"
        # the control: signed with its target, the request is good
        status, out = send(srv.url, signed_request(srv.url, get, body), body)
        assert status == 200 and [b["id"] for b in out["builds"]] == ids
        # the signature covers the target: swapping it breaks the signature
        h = signed_request(srv.url, get, body)
        h["X-Amz-Target"] = delete
        assert send(srv.url, h, body)[1]["__type"] == "InvalidSignatureException"
        # a signature made without the target (or the content type) is refused
        # whatever target comes with it
        for kw in ({"signed_target": False}, {"signed_type": False}):
            status, out = send(srv.url, signed_request(srv.url, delete, body, **kw), body)
            assert (status, out["__type"]) == (400, "InvalidSignatureException"), out
            assert "must be a 'SignedHeader'" in out["message"]
        # a header named in SignedHeaders must be in the request
        h = signed_request(srv.url, get, body, extra_signed={"X-Amz-Meta": "x"})
        del h["X-Amz-Meta"]
        status, out = send(srv.url, h, body)
        assert (status, out["__type"]) == (400, "InvalidSignatureException")
        assert "x-amz-meta" in out["message"]
        # nothing was deleted
        assert [b["id"] for b in client(srv.url).batch_get_builds(ids=ids)["builds"]] == ids
    finally:
        assert srv.stop() == 0
    # the replays reached the server and were refused there
    assert srv.stderr.count(f"POST {delete} 400") == 3, srv.stderr
