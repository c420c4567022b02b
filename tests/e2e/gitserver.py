#!/usr/bin/python3
"""A git smart-HTTP server on 127.0.0.1 for tests (a helper, not a test file).

It runs `git http-backend` as a CGI program for every request, serving every
repository under --root (GIT_PROJECT_ROOT, GIT_HTTP_EXPORT_ALL), so the
smart protocol is the real one: GET info/refs?service=git-upload-pack and
POST git-upload-pack (protocol v2 too: the client's Git-Protocol header is
passed through as GIT_PROTOCOL).  Pushes are refused.

    /usr/bin/python3 tests/e2e/gitserver.py --root DIR --port-file F [--auth user:pass]

It binds an ephemeral port (or --port), writes the number to --port-file
atomically once it is listening, and serves until SIGTERM / SIGINT.
With --auth every request without those Basic credentials gets a 401.

From Python tests: `with GitServer(root) as srv: srv.url("repo.git")`.
"""
import argparse
import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GIT = "/usr/bin/git"
PYTHON = "/usr/bin/python3"


def _read_chunked(rfile):
    body = bytearray()
    while True:
        line = rfile.readline(65537)
        if not line:
            break
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            # trailers up to the blank line
            while True:
                t = rfile.readline(65537)
                if not t or t in (b"\r\n", b"\n"):
                    break
            break
        body += rfile.read(size)
        rfile.readline(3)  # CRLF after the chunk
    return bytes(body)


class Handler(BaseHTTPRequestHandler):
    server_version = "cbl-gitserver/1"
    protocol_version = "HTTP/1.0"  # one request per connection: simple and enough

    def log_message(self, fmt, *args):  # quiet unless asked
        if self.server.verbose:
            sys.stderr.write("gitserver: " + (fmt % args) + "\n")

    def _authorized(self):
        want = self.server.auth
        if not want:
            return True
        got = self.headers.get("Authorization", "")
        if not got.startswith("Basic "):
            return False
        try:
            return base64.b64decode(got[6:].strip()).decode() == want
        except Exception:
            return False

    def _cgi(self, method):
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "13")
            self.end_headers()
            self.wfile.write(b"unauthorized\n")
            return
        path, _, query = self.path.partition("?")
        if method == "POST":
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = _read_chunked(self.rfile)
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        else:
            body = b""
        env = {
            "PATH": "/usr/bin:/bin",
            "GIT_PROJECT_ROOT": self.server.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            "HOME": self.server.root,
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.0",
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
        }
        if self.server.auth:
            env["REMOTE_USER"] = self.server.auth.split(":", 1)[0]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        p = subprocess.run([GIT, "http-backend"], input=body, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = p.stdout
        sep = out.find(b"\r\n\r\n")
        seplen = 4
        if sep < 0:
            sep = out.find(b"\n\n")
            seplen = 2
        if p.returncode != 0 and sep < 0:
            self.send_error(500, "git http-backend failed: " + p.stderr.decode(errors="replace")[:200])
            return
        head, payload = out[:sep], out[sep + seplen:]
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            if not line.strip():
                continue
            k, _, v = line.partition(":")
            if k.strip().lower() == "status":
                status = int(v.strip().split()[0])
            else:
                headers.append((k.strip(), v.strip()))
        self.send_response(status)
        for k, v in headers:
            if k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        self._cgi("GET")

    def do_POST(self):
        self._cgi("POST")


def serve(root, port=0, port_file=None, auth=None, verbose=False):
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.root = os.path.abspath(root)
    srv.auth = auth
    srv.verbose = verbose
    if port_file:
        tmp = "%s.tmp.%d" % (port_file, os.getpid())
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(tmp, port_file)
    return srv


class GitServer:
    """Runs this file as a child process; for Python tests."""

    def __init__(self, root, auth=None):
        self.root, self.auth, self.proc, self.port = str(root), auth, None, None
        self._tmp = None

    def __enter__(self):
        self._tmp = tempfile.mkdtemp(prefix="gitserver-")
        pf = os.path.join(self._tmp, "port")
        cmd = [PYTHON, os.path.abspath(__file__), "--root", self.root, "--port-file", pf]
        if self.auth:
            cmd += ["--auth", self.auth]
        self.proc = subprocess.Popen(cmd)
        deadline = time.time() + 10
        while not os.path.exists(pf):
            if self.proc.poll() is not None or time.time() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("gitserver did not start")
            time.sleep(0.02)
        with open(pf) as f:
            self.port = int(f.read())
        return self

    def url(self, repo):
        return "http://127.0.0.1:%d/%s" % (self.port, repo)

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True, help="directory holding the repositories")
    ap.add_argument("--port", type=int, default=0, help="port (default: ephemeral)")
    ap.add_argument("--port-file", help="write the bound port here once listening")
    ap.add_argument("--auth", help="user:pass required as HTTP Basic credentials")
    ap.add_argument("-v", "--verbose", action="store_true", help="log requests to stderr")
    a = ap.parse_args()
    srv = serve(a.root, a.port, a.port_file, a.auth, a.verbose)

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Exit when the parent dies (the C tests kill us explicitly, but a crashed
    # test must not leave a server behind).
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                stop(None, None)
                return

    threading.Thread(target=watch, daemon=True).start()
    try:
        srv.serve_forever(poll_interval=0.1)
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
