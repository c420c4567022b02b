"""codebuild-local images: pulls from a real registry on 127.0.0.1 (Debian's
docker-registry, anonymous and with token auth), images pushed with skopeo
from small busybox root filesystems built here, offline imports, ls/rm/prune."""
import base64
import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import registry as R  # noqa: E402

pytestmark = pytest.mark.skipif(
    not all(os.path.exists(p) for p in (R.REGISTRY, R.SKOPEO, R.OPENSSL, R.ZSTD, R.BUSYBOX)),
    reason="needs docker-registry, skopeo, openssl, zstd and busybox-static")

ARCH = R.host_arch()
OTHER = "arm64" if ARCH != "arm64" else "amd64"


def _rand(n, seed):
    out, h = bytearray(), seed.encode()
    while len(out) < n:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:n])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One anonymous registry with every test image pushed once."""
    work = tmp_path_factory.mktemp("images")
    reg = R.Registry(str(work))
    lay = R.Layout(str(work / "layout"))
    base = R.base_entries("cblmulti") + [
        ("opt", "d", None), ("opt/old", "d", None), ("opt/old/a", "f", b"a"), ("opt/old/b", "f", b"b"),
        ("var", "d", None), ("var/lib", "d", None), ("var/lib/x", "f", b"x"), ("var/lib/y", "f", b"y"),
    ]
    big = _rand(1536 * 1024, "big")
    l2 = [("opt/old/c", "f", b"c"), ("opt/old/.wh..wh..opq", "f", b""), ("var/lib/.wh.x", "f", b""),
          ("etc/added", "f", b"from layer 2\n")]
    l3 = [("usr", "d", None), ("usr/share", "d", None), ("usr/share/big.bin", "f", big)]
    multi = lay.image([(base, "gzip"), (l2, "zstd"), (l3, None)], arch=ARCH, env=["PATH=/bin", "IMG=multi"],
                      workdir="/opt", user="0:0")
    lay.tag(multi, "multi1")
    # v2 shares the base layer
    multi2 = lay.image([(base, "gzip"), ([("etc/v2", "f", b"2")], "gzip")], arch=ARCH)
    lay.tag(multi2, "multi2")
    a = lay.image([(R.base_entries("cbl-" + ARCH), "gzip")], arch=ARCH)
    b = lay.image([(R.base_entries("cbl-" + OTHER), "gzip")], arch=OTHER, variant="v8" if OTHER == "arm64" else None)
    lay.multi([b, a], "multiarch")
    corrupt = lay.image([([("etc", "d", None), ("etc/os-release", "f", b"ID=corrupt\n"),
                          ("data.bin", "f", _rand(200000, "corrupt"))], "gzip")], arch=ARCH)
    lay.tag(corrupt, "corrupt")
    reg.push(lay.path, "multi1", "test/multi:v1")
    reg.push(lay.path, "multi2", "test/multi:v2")
    reg.push(lay.path, "multiarch", "test/multiarch:v1", all_platforms=True)
    reg.push(lay.path, "corrupt", "test/corrupt:v1")
    w = SimpleNamespace(reg=reg, layout=lay.path, work=work, big=big)
    yield w
    reg.stop()


def root_of(cbl, name):
    p = cbl("images", "ls", "--json", check=0)
    items = {i["name"]: i for i in json.loads(p.stdout)}
    assert name in items, p.stdout
    hexd = items[name]["digest"].split(":")[1]
    return Path(cbl.home) / "images" / "roots" / hexd, items[name]


def registry_manifest_layers(w, ref):
    repo, tag = ref.rsplit(":", 1)
    import urllib.request
    req = urllib.request.Request("http://%s/v2/%s/manifests/%s" % (w.reg.host, repo, tag),
                                 headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                                                    "application/vnd.docker.distribution.manifest.v2+json"})
    return json.loads(urllib.request.urlopen(req).read())


def test_pull_multilayer_whiteouts(cbl, world):
    ref = "%s/test/multi:v1" % world.reg.host
    p = cbl("images", "pull", ref, check=0)
    assert "sha256:" in p.stdout
    root, info = root_of(cbl, ref)
    assert (root / "etc/os-release").read_text().startswith("ID=cblmulti")
    assert (root / "bin/busybox").stat().st_size > 100000 and os.readlink(root / "bin/sh") == "busybox"
    # opaque directory: the lower layer's a and b are gone, the layer's own c stays
    assert sorted(os.listdir(root / "opt/old")) == ["c"]
    # .wh.x removed x only
    assert sorted(os.listdir(root / "var/lib")) == ["y"]
    assert (root / "etc/added").read_text() == "from layer 2\n"  # the zstd layer
    assert (root / "usr/share/big.bin").read_bytes() == world.big  # the uncompressed layer
    assert not list(root.rglob(".wh.*"))
    meta = json.loads((root.parent / (root.name + ".json")).read_text())
    assert meta["env"] == ["PATH=/bin", "IMG=multi"] and meta["working_dir"] == "/opt" and meta["user"] == "0:0"
    assert info["unpacked"] and info["size"] >= len(world.big)
    # every blob in the store is the one the registry has, verified
    man = registry_manifest_layers(world, "test/multi:v1")
    for layer in man["layers"]:
        blob = Path(cbl.home) / "images/blobs/sha256" / layer["digest"].split(":")[1]
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == layer["digest"].split(":")[1]
    # a second pull downloads nothing new and keeps the same root
    before = root.stat().st_ino
    cbl("images", "pull", ref, check=0)
    assert root.stat().st_ino == before
    out = cbl("images", "ls", check=0).stdout
    assert ref in out and "LAST USED" in out
    # what the runner gets: the root and the config (Entrypoint ignored)
    info = json.loads(cbl("images", "inspect", "--offline", ref, check=0).stdout)
    assert info["rootfs"] == str(root) and info["kind"] == "image" and info["pulled"] is False
    assert info["env"] == ["PATH=/bin", "IMG=multi"] and info["workingDir"] == "/opt" and info["user"] == "0:0"
    assert info["architecture"] == ARCH
    p = cbl("images", "inspect", "--offline", "%s/test/multi:absent" % world.reg.host, check=2)
    assert "not in the local store" in p.stderr
    info = json.loads(cbl("images", "inspect", str(root), check=0).stdout)
    assert info["kind"] == "directory" and info["rootfs"] == str(root)
    assert json.loads(cbl("images", "inspect", "host", check=0).stdout)["kind"] == "host"


def test_manifest_list_picks_host_platform(cbl, world):
    ref = "%s/test/multiarch:v1" % world.reg.host
    cbl("images", "pull", ref, check=0)
    root, _ = root_of(cbl, ref)
    assert (root / "etc/os-release").read_text().startswith("ID=cbl-%s\n" % ARCH)
    # another platform on request, stored under the same name (it replaces the host's)
    cbl("images", "pull", "--platform", "linux/" + OTHER, ref, check=0)
    root2, _ = root_of(cbl, ref)
    assert (root2 / "etc/os-release").read_text().startswith("ID=cbl-%s\n" % OTHER)
    p = cbl("images", "pull", "--platform", "linux/s390x", ref, check=2)
    assert "no linux/s390x variant" in p.stderr and ARCH in p.stderr


def test_corrupt_blob_is_refused_and_nothing_stored(cbl, world):
    man = registry_manifest_layers(world, "test/corrupt:v1")
    digest = man["layers"][0]["digest"]
    data = Path(world.reg.blob_data(digest))
    orig = data.read_bytes()
    tampered = bytearray(orig)
    tampered[len(tampered) // 2] ^= 0xFF
    data.write_bytes(bytes(tampered))
    try:
        p = cbl("images", "pull", "%s/test/corrupt:v1" % world.reg.host, check=3)
    finally:
        data.write_bytes(orig)
    assert "digest mismatch" in p.stderr and digest in p.stderr and "nothing stored" in p.stderr
    blobs = Path(cbl.home) / "images/blobs/sha256"
    hexd = digest.split(":")[1]
    assert not (blobs / hexd).exists() and not (blobs / (hexd + ".part")).exists()
    assert json.loads(cbl("images", "ls", "--json", check=0).stdout) == []
    assert not [d for d in os.listdir(Path(cbl.home) / "images/roots")]
    # with the registry healed the same pull works
    cbl("images", "pull", "%s/test/corrupt:v1" % world.reg.host, check=0)


def _big_layer(world):
    man = registry_manifest_layers(world, "test/multi:v1")
    return max(man["layers"], key=lambda l: l["size"])["digest"]


def test_interrupted_pull_resumes_on_next_pull(cbl, world):
    digest = _big_layer(world)
    proxy = R.Proxy(world.reg.host, cut={digest: 0.5})
    try:
        ref = "%s/test/multi:v1" % proxy.host
        p = cbl("images", "pull", "--retries", "0", ref, check=3)
        assert "interrupted" in p.stderr and "resumes" in p.stderr, p.stderr
        part = Path(cbl.home) / "images/blobs/sha256" / (digest.split(":")[1] + ".part")
        have = part.stat().st_size
        assert 0 < have < len(world.big) + 4096
        cbl("images", "pull", ref, check=0)
        ranges = [rg for (m, path, rg, st) in proxy.log if path.endswith(digest) and m == "GET"]
        assert ranges == [None, "bytes=%d-" % have], proxy.log
        assert not part.exists()
        root, _ = root_of(cbl, ref)
        assert (root / "usr/share/big.bin").read_bytes() == world.big
    finally:
        proxy.stop()


def test_interrupted_download_is_retried_within_one_pull(cbl, world):
    digest = _big_layer(world)
    proxy = R.Proxy(world.reg.host, cut={digest: 0.3})
    try:
        ref = "%s/test/multi:v1" % proxy.host
        cbl("images", "pull", ref, check=0)
        statuses = [(rg is not None, st) for (m, path, rg, st) in proxy.log if path.endswith(digest) and m == "GET"]
        assert statuses == [(False, 200), (True, 206)], proxy.log
    finally:
        proxy.stop()


def test_shared_layers_rm_and_prune(cbl, world):
    v1, v2 = "%s/test/multi:v1" % world.reg.host, "%s/test/multi:v2" % world.reg.host
    cbl("images", "pull", v1, check=0)
    cbl("images", "pull", v2, check=0)
    m1 = registry_manifest_layers(world, "test/multi:v1")
    m2 = registry_manifest_layers(world, "test/multi:v2")
    shared = m1["layers"][0]["digest"]
    assert shared == m2["layers"][0]["digest"]
    blobs = Path(cbl.home) / "images/blobs/sha256"
    only1 = m1["layers"][2]["digest"].split(":")[1]
    p = cbl("images", "rm", v1, check=0)
    assert "removed" in p.stdout
    assert (blobs / shared.split(":")[1]).exists(), "a layer v2 uses stays"
    assert not (blobs / only1).exists(), "v1's own layer goes"
    names = [i["name"] for i in json.loads(cbl("images", "ls", "--json", check=0).stdout)]
    assert names == [v2]
    cbl("images", "rm", v1, check=2)
    (blobs / ("0" * 64 + ".part")).write_bytes(b"partial")
    p = cbl("images", "prune", check=0)
    assert "reclaimed" in p.stdout and not (blobs / ("0" * 64 + ".part")).exists()
    cbl("images", "rm", v2, check=0)
    assert os.listdir(blobs) == [] and os.listdir(Path(cbl.home) / "images/roots") == []


def test_unknown_tag_and_bad_reference(cbl, world):
    p = cbl("images", "pull", "%s/test/multi:nope" % world.reg.host, check=2)
    assert "not found" in p.stderr
    p = cbl("images", "pull", "Bad//Ref", check=2)
    assert "invalid reference" in p.stderr


# ---- token auth ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenworld(tmp_path_factory, world):
    work = tmp_path_factory.mktemp("token")
    ts = R.TokenServer(str(work), users={"alice": "s3cret"}, protected=("private/",))
    reg = R.Registry(str(work), token=ts)
    reg.push(world.layout, "multi2", "public/app:v1", creds="alice:s3cret")
    reg.push(world.layout, "multi2", "private/app:v1", creds="alice:s3cret")
    yield SimpleNamespace(ts=ts, reg=reg)
    reg.stop()
    ts.stop()


def test_token_auth_anonymous(cbl, tokenworld):
    tw = tokenworld
    tw.ts.requests.clear()
    ref = "%s/public/app:v1" % tw.reg.host
    cbl("images", "pull", ref, check=0)
    root, _ = root_of(cbl, ref)
    assert (root / "etc/v2").read_text() == "2"
    paths = [p for p, auth in tw.ts.requests]
    assert paths and all(a is None for _, a in tw.ts.requests)
    assert "scope=repository%3Apublic%2Fapp%3Apull" in paths[0] and "service=cbl-test-registry" in paths[0]


def test_token_auth_with_credentials(cbl, tokenworld, tmp_path):
    tw = tokenworld
    ref = "%s/private/app:v1" % tw.reg.host
    p = cbl("images", "pull", ref, check=2)
    assert "refused anonymous access" in p.stderr
    p = cbl("images", "pull", "-u", "alice", "--password", "wrong", ref, check=2)
    assert "refused the credentials" in p.stderr
    tw.ts.requests.clear()
    p = subprocess.run([str(cbl_bin()), "images", "pull", "-u", "alice", "--password-stdin", ref],
                       input="s3cret\n", capture_output=True, text=True, env=cbl.env(), timeout=60)
    assert p.returncode == 0, p.stderr
    assert any(a and a.startswith("Basic ") for _, a in tw.ts.requests)
    # docker's config.json "auths"
    cfg = tmp_path / "dockercfg"
    cfg.mkdir()
    (cfg / "config.json").write_text(json.dumps({"auths": {tw.reg.host: {
        "auth": base64.b64encode(b"alice:s3cret").decode()}}}))
    cbl("images", "rm", ref, check=0)
    cbl("images", "pull", ref, env={"DOCKER_CONFIG": str(cfg)}, check=0)


def test_token_realm_must_be_https_off_loopback(cbl, tokenworld, tmp_path):
    fake = SimpleNamespace(realm="http://cbl-test.invalid/token", service="cbl-svc", issuer="cbl-issuer", cert=tokenworld.ts.cert)
    reg = R.Registry(str(tmp_path), token=fake)
    try:
        p = cbl("images", "pull", "%s/any/thing:v1" % reg.host, check=2)
        assert "is not https" in p.stderr
    finally:
        reg.stop()


def cbl_bin():
    from conftest import BIN
    return BIN


# ---- import ----------------------------------------------------------------------


def test_import_docker_archive(cbl, world, tmp_path):
    tar = tmp_path / "saved.tar"
    # (docker archives cannot carry zstd layers: the gzip-only image)
    subprocess.run([R.SKOPEO, "copy", "--quiet", "oci:%s:multi2" % world.layout,
                    "docker-archive:%s:saved/app:1.0" % tar], check=True, capture_output=True,
                   env=dict(os.environ, HOME=str(tmp_path)))
    with tarfile.open(tar) as t:
        assert "manifest.json" in t.getnames()
    p = cbl("images", "import", tar, check=0)
    assert "docker.io/saved/app:1.0" in p.stdout
    root, _ = root_of(cbl, "docker.io/saved/app:1.0")
    assert (root / "etc/v2").read_text() == "2"
    assert sorted(os.listdir(root / "opt/old")) == ["a", "b"]
    # offline use is a store hit: the same name resolves without a registry
    out = cbl("images", "ls", check=0).stdout
    assert "docker.io/saved/app:1.0" in out


def test_import_oci_layout_dir_and_tar(cbl, world, tmp_path):
    # an OCI layout with several images: --name picks by tag
    p = cbl("images", "import", world.layout, check=2)
    assert "--name" in p.stderr
    p = cbl("images", "import", "--name", "local/oci:multi2", world.layout, check=0)
    root, _ = root_of(cbl, "docker.io/local/oci:multi2")
    assert (root / "etc/v2").exists()
    # a single-image layout as a tar, made by skopeo
    one = tmp_path / "one"
    subprocess.run([R.SKOPEO, "copy", "--quiet", "oci:%s:corrupt" % world.layout, "oci:%s:v1" % one], check=True,
                   capture_output=True, env=dict(os.environ, HOME=str(tmp_path)))
    tar = tmp_path / "one.tar"
    with tarfile.open(tar, "w") as t:
        t.add(one, arcname=".")
    p = cbl("images", "import", tar, check=2)
    assert "does not name its image" in p.stderr
    cbl("images", "import", "--name", "aws/codebuild/standard:7.0", tar, check=0)
    root, _ = root_of(cbl, "aws/codebuild/standard:7.0")
    assert (root / "etc/os-release").read_text() == "ID=corrupt\n"
    # a tampered blob in a layout is refused, nothing named
    bad = tmp_path / "bad"
    subprocess.run(["cp", "-a", str(one), str(bad)], check=True)
    layer = max((bad / "blobs/sha256").iterdir(), key=lambda f: f.stat().st_size)
    b = bytearray(layer.read_bytes())
    b[100] ^= 1
    layer.write_bytes(bytes(b))
    fresh = {"CODEBUILD_LOCAL_HOME": str(tmp_path / "fresh")}  # (the store already has the good blob)
    p = cbl("images", "import", "--name", "bad/img:1", bad, env=fresh, check=3)
    assert "digest mismatch" in p.stderr
    assert json.loads(cbl("images", "ls", "--json", env=fresh, check=0).stdout) == []
    assert not (tmp_path / "fresh/images/blobs/sha256" / layer.name).exists()
