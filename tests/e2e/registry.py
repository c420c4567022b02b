#!/usr/bin/python3
"""OCI registry helpers for the image tests (a helper, not a test file).

- Registry: Debian's distribution registry (/usr/bin/docker-registry) on
  127.0.0.1 with a private storage directory, anonymous or with token auth.
- TokenServer: the token service a registry with `auth: token` sends
  clients to.  It signs RS256 JWTs with the `openssl` CLI (no Python crypto
  library needed); the registry trusts the matching self-signed certificate.
- Proxy: a plain HTTP forwarder that can cut one blob download in half, to
  test resumed downloads.
- build_layout(): writes an OCI image layout (tar layers: plain, gzip or
  zstd; whiteouts; several platforms in one index) that `skopeo copy` pushes.

Everything binds 127.0.0.1 on ephemeral ports and is stopped by its owner.
"""
import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REGISTRY = "/usr/bin/docker-registry"
SKOPEO = "/usr/bin/skopeo"
OPENSSL = "/usr/bin/openssl"
ZSTD = "/usr/bin/zstd"
BUSYBOX = "/bin/busybox"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _wait_http(url, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # 401 is an answer too
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Registry:
    """docker-registry serve CONFIG on 127.0.0.1:<free port>."""

    def __init__(self, workdir, token=None):
        self.dir = os.path.join(workdir, "registry-%d" % free_port())
        self.storage = os.path.join(self.dir, "storage")
        os.makedirs(self.storage)
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        cfg = [
            "version: 0.1",
            "log:",
            "  level: error",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            "    rootdirectory: %s" % self.storage,
            "  delete:",
            "    enabled: true",
            "http:",
            "  addr: %s" % self.host,
        ]
        if token:
            cfg += [
                "auth:",
                "  token:",
                "    realm: %s" % token.realm,
                "    service: %s" % token.service,
                "    issuer: %s" % token.issuer,
                "    rootcertbundle: %s" % token.cert,
            ]
        self.config = os.path.join(self.dir, "config.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.log = open(os.path.join(self.dir, "registry.log"), "w")
        self.proc = subprocess.Popen([REGISTRY, "serve", self.config], stdout=self.log, stderr=subprocess.STDOUT)
        try:
            _wait_http("http://%s/v2/" % self.host)
        except Exception:
            self.stop()
            raise

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def blob_data(self, digest):
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.storage, "docker/registry/v2/blobs/sha256", hexd[:2], hexd, "data")

    def push(self, layout, tag, ref, all_platforms=False, creds=None):
        """skopeo copy oci:LAYOUT:TAG docker://HOST/REF"""
        cmd = [SKOPEO, "copy", "--quiet", "--dest-tls-verify=false"]
        if all_platforms:
            cmd.append("--all")
        if creds:
            cmd += ["--dest-creds", creds]
        cmd += ["oci:%s:%s" % (layout, tag), "docker://%s/%s" % (self.host, ref)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60,
                       env=dict(os.environ, HOME=self.dir, XDG_RUNTIME_DIR=self.dir))


# ---- token auth ------------------------------------------------------------


def _b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class TokenServer:
    """The token service of a registry with `auth: token`.

    users: {"name": "password"}; protected: repository prefixes that need a
    user (anonymous clients get pull on the rest).  Every request is
    recorded in .requests as (path+query, authorization header or None).
    """

    def __init__(self, workdir, users=None, protected=()):
        self.dir = os.path.join(workdir, "token-%d" % free_port())
        os.makedirs(self.dir)
        self.key = os.path.join(self.dir, "key.pem")
        self.cert = os.path.join(self.dir, "cert.pem")
        subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out",
                        self.cert, "-days", "2", "-subj", "/CN=cbl-token"], check=True, capture_output=True)
        der = subprocess.run([OPENSSL, "pkey", "-in", self.key, "-pubout", "-outform", "DER"], check=True,
                             capture_output=True).stdout
        # libtrust's key id: base32 of the first 240 bits of SHA-256(DER), in groups of 4
        b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
        self.kid = ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))
        self.users = users or {}
        self.protected = tuple(protected)
        self.service = "cbl-test-registry"
        self.issuer = "cbl-test-issuer"
        self.requests = []
        self.lock = threading.Lock()
        owner = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                owner._serve(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.realm = "http://127.0.0.1:%d/token" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def _sign(self, claims):
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        signing_input = (_b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())).encode()
        sig = subprocess.run([OPENSSL, "dgst", "-sha256", "-sign", self.key], input=signing_input, check=True,
                             capture_output=True).stdout
        return signing_input.decode() + "." + _b64url(sig)

    def _serve(self, h):
        u = urllib.parse.urlparse(h.path)
        q = urllib.parse.parse_qs(u.query)
        auth = h.headers.get("Authorization")
        with self.lock:
            self.requests.append((h.path, auth))
        user = None
        if auth and auth.startswith("Basic "):
            name, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            if self.users.get(name) != pw:
                h.send_response(401)
                h.end_headers()
                return
            user = name
        access = []
        for scope in q.get("scope", []):
            parts = scope.split(":")
            if len(parts) != 3 or parts[0] != "repository":
                continue
            repo, actions = parts[1], parts[2].split(",")
            if repo.startswith(self.protected) and not user:
                h.send_response(401)
                h.end_headers()
                return
            allowed = [a for a in actions if a == "pull" or (user and a in ("push", "delete"))]
            access.append({"type": "repository", "name": repo, "actions": allowed})
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": user or "", "aud": q.get("service", [""])[0], "exp": now + 600,
                  "nbf": now - 10, "iat": now, "jti": "%d-%d" % (now, len(self.requests)), "access": access}
        body = json.dumps({"token": self._sign(claims), "expires_in": 600}).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- a forwarding proxy that can cut a download ---------------------------------


class Proxy:
    """Forwards GET/HEAD to a registry.  cut: {blob digest: fraction} - the
    first GET of that blob sends only that fraction of the body, then drops
    the connection.  .log records (method, path, Range header, status)."""

    def __init__(self, upstream, cut=None):
        self.upstream = upstream
        self.cut = dict(cut or {})
        self.log = []
        self.lock = threading.Lock()
        owner = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10

            def log_message(self, *a):
                pass

            def handle(self):
                # a TLS hello (clients try https first on loopback): hang up
                # at once, as a plain-HTTP server that cannot parse it would
                if self.connection.recv(1, socket.MSG_PEEK) == b"\x16":
                    return
                super().handle()

            def do_GET(self):
                owner._forward(self, "GET")

            def do_HEAD(self):
                owner._forward(self, "HEAD")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.host = "127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def _forward(self, h, method):
        import http.client
        c = http.client.HTTPConnection(self.upstream, timeout=30)
        headers = {k: v for k, v in h.headers.items() if k.lower() in ("accept", "authorization", "range")}
        c.request(method, h.path, headers=headers)
        r = c.getresponse()
        body = r.read() if method == "GET" else b""
        digest = h.path.rsplit("/", 1)[-1] if "/blobs/" in h.path else None
        with self.lock:
            self.log.append((method, h.path, h.headers.get("Range"), r.status))
            frac = self.cut.pop(digest, None) if (digest and method == "GET" and r.status == 200) else None
        h.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() in ("content-type", "content-length", "docker-content-digest", "www-authenticate",
                             "content-range", "accept-ranges", "location"):
                h.send_header(k, v)
        h.send_header("Connection", "close")
        h.end_headers()
        if frac is not None:
            h.wfile.write(body[:int(len(body) * frac)])
            h.wfile.flush()
            h.connection.shutdown(socket.SHUT_RDWR)
            h.close_connection = True
            return
        h.wfile.write(body)
        h.close_connection = True
        c.close()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- OCI layouts -------------------------------------------------------------


def tar_layer(entries):
    """entries: (name, kind, data) with kind f (bytes), d, l (target), h (target), x (file path on disk)."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, data in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = 1700000000
            ti.uid = ti.gid = 0
            if kind == "d":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            elif kind == "l":
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, data, 0o777
                t.addfile(ti)
            elif kind == "h":
                ti.type, ti.linkname, ti.mode = tarfile.LNKTYPE, data, 0o644
                t.addfile(ti)
            elif kind == "x":
                with open(data, "rb") as f:
                    content = f.read()
                ti.size, ti.mode = len(content), 0o755
                t.addfile(ti, io.BytesIO(content))
            else:
                ti.size, ti.mode = len(data), 0o644
                t.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


def compress(raw, how):
    if how == "gzip":
        return gzip.compress(raw, compresslevel=1, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if how == "zstd":
        out = subprocess.run([ZSTD, "-q", "-c", "-1"], input=raw, check=True, capture_output=True).stdout
        return out, "application/vnd.oci.image.layer.v1.tar+zstd"
    return raw, "application/vnd.oci.image.layer.v1.tar"


class Layout:
    """An OCI image layout directory being written."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion": "1.0.0"}')
        self.index = []

    def blob(self, data):
        d = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.path, "blobs", "sha256", d), "wb") as f:
            f.write(data)
        return "sha256:" + d, len(data)

    def image(self, layers, arch="amd64", env=None, workdir=None, user=None, variant=None):
        """layers: [(entries, compression)].  Returns the manifest descriptor."""
        descs, diff_ids = [], []
        for entries, how in layers:
            raw = tar_layer(entries)
            diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
            data, mt = compress(raw, how)
            d, n = self.blob(data)
            descs.append({"mediaType": mt, "digest": d, "size": n})
        cfg = {"architecture": arch, "os": "linux",
               "config": {"Env": env or ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                          "Entrypoint": ["/bin/false"]},
               "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        if variant:
            cfg["variant"] = variant
        if workdir:
            cfg["config"]["WorkingDir"] = workdir
        if user:
            cfg["config"]["User"] = user
        cd, cn = self.blob(json.dumps(cfg).encode())
        man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
               "layers": descs}
        md, mn = self.blob(json.dumps(man).encode())
        desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
                "platform": {"architecture": arch, "os": "linux"}}
        if variant:
            desc["platform"]["variant"] = variant
        return desc

    def tag(self, desc, tag):
        d = dict(desc)
        d["annotations"] = {"org.opencontainers.image.ref.name": tag}
        self.index.append(d)
        self.write_index()

    def multi(self, descs, tag):
        """An index of several platform manifests, tagged."""
        idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descs}
        d, n = self.blob(json.dumps(idx).encode())
        self.index.append({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": n,
                           "annotations": {"org.opencontainers.image.ref.name": tag}})
        self.write_index()
        return d

    def write_index(self):
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": self.index}, f)


def host_arch():
    m = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def base_entries(os_id):
    """A tiny busybox root filesystem."""
    return [
        ("bin", "d", None),
        ("bin/busybox", "x", BUSYBOX),
        ("bin/sh", "l", "busybox"),
        ("etc", "d", None),
        ("etc/os-release", "f", ("ID=%s\nNAME=\"cbl test %s\"\n" % (os_id, os_id)).encode()),
        ("etc/passwd", "f", b"root:x:0:0:root:/root:/bin/sh\n"),
        ("tmp", "d", None),
    ]


def cleanup(path):
    shutil.rmtree(path, ignore_errors=True)
