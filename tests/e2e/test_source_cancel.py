"""A clone that does not progress must not hold a build past its timeout or
a stop: the build timeout covers DOWNLOAD_SOURCE, and Ctrl-C during a clone
ends the build STOPPED, promptly, with the phase marked as the service
marks it."""
import json
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import BIN


@pytest.fixture
def stalled_server():
    """Accepts connections on 127.0.0.1, reads the request, never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns = []
    stop = threading.Event()

    def serve():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            conns.append(c)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}/app.git"
    stop.set()
    t.join()
    for c in conns:
        c.close()
    srv.close()


def record(output):
    m = re.search(r"^Record: (.+)$", output, re.M)
    assert m, output
    with open(m.group(1)) as f:
        return json.load(f)


def phase(rec, name):
    return next(p for p in rec["phases"] if p["phaseType"] == name)


def test_timeout_covers_the_clone(cbl, stalled_server):
    t0 = time.monotonic()
    p = cbl("run", "--timeout", "2s", stalled_server, check=4, timeout=60)
    assert time.monotonic() - t0 < 30
    rec = record(p.output)
    assert rec["buildStatus"] == "TIMED_OUT"
    ds = phase(rec, "DOWNLOAD_SOURCE")
    assert ds["phaseStatus"] == "TIMED_OUT"
    assert ds["contexts"][0]["statusCode"] == "BUILD_TIMED_OUT"
    assert not any(p["phaseType"] == "BUILD" for p in rec["phases"])


def test_ctrl_c_during_clone_stops_the_build(cbl, stalled_server):
    proc = subprocess.Popen([str(BIN), "run", stalled_server], env=cbl.env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.0)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 10, "the stop waited for the clone"
    assert proc.returncode == 5, out
    rec = record(out)
    assert rec["buildStatus"] == "STOPPED"
    ds = phase(rec, "DOWNLOAD_SOURCE")
    assert ds["phaseStatus"] == "STOPPED"
    assert ds["contexts"][0]["statusCode"] == "BUILD_STOPPED"
