"""Builds inside a pulled image (`run -i REF`): the image's root filesystem is
the build's /, its Env the base environment, its User the default run-as;
runtime-versions are checked against the image (or the host)."""
import json
import os
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import registry as R  # noqa: E402

pytestmark = pytest.mark.skipif(
    not all(os.path.exists(p) for p in (R.REGISTRY, R.SKOPEO, R.BUSYBOX)) or os.geteuid() != 0,
    reason="needs docker-registry, skopeo, busybox-static and root")

APPLETS = ["cat", "id", "ls", "rm", "mkdir", "uname", "whoami", "env", "sleep", "true", "false"]


def tools():
    return [("bin/" + a, "l", "busybox") for a in APPLETS]


RUNTIMES = """version: 0.1
runtimes:
  python:
    versions:
      "3.11":
        commands:
          - export PYVER=3.11
      "3.12":
        commands:
          - echo "Installing Python version 3.12 ..."
          - export PYVER=3.12
      default:
        commands:
          - echo "Installing custom Python version $VERSION ..."
          - export PYVER=custom-$VERSION
  nodejs:
    versions:
      "20":
        commands:
          - export NODEVER=20
"""


@pytest.fixture(scope="module")
def reg(tmp_path_factory):
    work = tmp_path_factory.mktemp("imgbuild")
    r = R.Registry(str(work))
    try:
        lay = R.Layout(str(work / "layout"))
        arch = R.host_arch()
        base = R.base_entries("cblbuild") + tools() + [
            ("etc/group", "f", b"root:x:0:\nbuilder:x:1000:\n"),
            ("home", "d", None), ("root", "d", None)]
        img = lay.image([(base, "gzip")], arch=arch, env=["PATH=/bin", "IMG_VAR=from-image", "SHARED=image"])
        lay.tag(img, "plain")
        passwd = b"root:x:0:0:root:/root:/bin/sh\nbuilder:x:1000:1000:b:/home/builder:/bin/sh\n"
        user = lay.image([(base + [("etc/passwd", "f", passwd), ("home/builder", "d", None)], "gzip")],
                         arch=arch, env=["PATH=/bin"], user="builder")
        lay.tag(user, "user")
        rt = lay.image([(base + [("codebuild", "d", None), ("codebuild/image", "d", None),
                                 ("codebuild/image/config", "d", None),
                                 ("codebuild/image/config/runtimes.yml", "f", RUNTIMES.encode())], "gzip")],
                       arch=arch, env=["PATH=/bin"])
        lay.tag(rt, "runtimes")
        r.push(lay.path, "plain", "test/build:v1")
        r.push(lay.path, "user", "test/build:user")
        r.push(lay.path, "runtimes", "test/build:runtimes")
    except BaseException:
        r.stop()  # a failed setup leaves no registry behind
        raise
    yield r
    r.stop()


BUILDSPEC = """version: 0.2
env:
  variables:
    SHARED: buildspec
phases:
  build:
    commands:
      - cat /etc/os-release
      - echo "img=$IMG_VAR shared=$SHARED uid=$(id -u) src=$CODEBUILD_SRC_DIR"
      - cat input.txt
      - echo made > made.txt
artifacts:
  files: [made.txt]
"""


def test_build_runs_in_the_image(cbl, reg, tmp_path):
    src = cbl.project("app", BUILDSPEC, {"input.txt": "from the source\n"})
    ref = f"{reg.host}/test/build:v1"
    p = cbl("run", "-i", ref, "-a", tmp_path / "out", src, check=0)
    assert "ID=cblbuild" in p.output            # the image's, not the host's
    assert re.search(r"^img=from-image shared=buildspec uid=0 src=/codebuild/output/src\d+/src$",
                     p.output, re.M), p.output
    assert "from the source" in p.output
    assert "Pulled image" in p.output
    assert (tmp_path / "out" / "artifacts.zip").exists()
    rec = json.loads(Path(re.search(r"^Record: (.+)$", p.output, re.M).group(1)).read_text())
    assert rec["environment"]["image"] == ref
    # the second build uses the unpacked root as it is
    p = cbl("run", "-i", ref, src, check=0)
    assert "Using image" in p.output and "Pulled image" not in p.output
    assert "ID=cblbuild" in p.output


def test_image_user_is_the_default_run_as(cbl, reg):
    src = cbl.project("user", "version: 0.2\nphases:\n  build:\n    commands:\n"
                              "      - echo \"who=$(whoami)\"\n")
    p = cbl("run", "-i", f"{reg.host}/test/build:user", src, check=0)
    assert "who=builder" in p.output, p.output


def test_unknown_image_fails_provisioning(cbl, reg):
    src = cbl.project("missing", BUILDSPEC, {"input.txt": "x\n"})
    p = cbl("run", "-i", f"{reg.host}/test/nope:v1", src, check=1)
    rec = json.loads(Path(re.search(r"^Record: (.+)$", p.output, re.M).group(1)).read_text())
    prov = next(x for x in rec["phases"] if x["phaseType"] == "PROVISIONING")
    assert prov["phaseStatus"] == "FAILED"
    assert prov["contexts"][0]["statusCode"] == "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE"
    assert not any(x["phaseType"] == "BUILD" for x in rec["phases"])


def test_image_needs_the_sandbox(cbl, reg):
    src = cbl.project("nosb", BUILDSPEC)
    p = cbl("run", "--sandbox", "none", "-i", f"{reg.host}/test/build:v1", src, check=2)
    assert "needs the sandbox" in p.output


def test_runtime_versions_in_an_image_without_runtimes(cbl, reg):
    src = cbl.project("rt", "version: 0.2\nphases:\n  install:\n    runtime-versions:\n"
                            "      python: 3.12\n  build:\n    commands:\n      - echo built\n")
    p = cbl("run", "-i", f"{reg.host}/test/build:v1", src, check=0)
    assert "Skipping install of runtimes. Runtime version selection is not supported by this build image" \
        in p.output


def test_unknown_runtime_on_the_host_fails_download_source(cbl):
    src = cbl.project("rt2", "version: 0.2\nphases:\n  install:\n    runtime-versions:\n"
                             "      cobolscript: 9\n  build:\n    commands:\n      - echo never\n")
    p = cbl("run", src, check=2)  # exit 2: the buildspec asks for what the image lacks
    assert "Phase complete: DOWNLOAD_SOURCE State: FAILED" in p.output
    assert re.search(r"YAML_FILE_ERROR Message: Unknown runtime named 'cobolscript'\. "
                     r"This build image has the following runtimes: ", p.output), p.output
    assert "echo never" not in p.output


RT = "version: 0.2\nphases:\n  install:\n    runtime-versions:\n      python: {py}\n      nodejs: {node}\n" \
     "  build:\n    commands:\n      - x\n"


def test_validate_runtimes_against_a_curated_image(cbl, tmp_path):
    d = tmp_path / "v"
    d.mkdir()
    (d / "buildspec.yml").write_text(RT.format(py="3.12", node="20"))
    cbl("validate", "-i", "aws/codebuild/amazonlinux2-x86_64-standard:5.0", d, check=0)
    (d / "buildspec.yml").write_text(RT.format(py="3.99", node="20"))
    p = cbl("validate", "-i", "aws/codebuild/amazonlinux2-x86_64-standard:5.0", d, check=2)
    assert re.search(r"buildspec\.yml:5:7: error: Unknown runtime version named '3\.99' of python\. "
                     r"This build image has the following versions: .*3\.12", p.output), p.output
    (d / "buildspec.yml").write_text(RT.format(py="3.12", node="20").replace("nodejs", "cobol"))
    p = cbl("validate", "-i", "aws/codebuild/amazonlinux2-x86_64-standard:5.0", d, check=2)
    assert "Unknown runtime named 'cobol'. This build image has the following runtimes: " in p.output
    # an image outside the catalog cannot be checked offline: said, not failed
    p = cbl("validate", "-i", "example.invalid/own/image:1", d, check=0)
    assert "cannot be checked offline" in p.output


def rt_build(cbl, reg, name, versions):
    spec = "version: 0.2\nphases:\n  install:\n    runtime-versions:\n"
    spec += "".join(f"      {k}: \"{v}\"\n" for k, v in versions.items())
    spec += "  build:\n    commands:\n      - echo \"py=$PYVER node=$NODEVER\"\n"
    return cbl.project(name, spec)


def test_runtime_selection_runs_the_image_runtimes_file(cbl, reg):
    ref = f"{reg.host}/test/build:runtimes"
    p = cbl("run", "-i", ref, rt_build(cbl, reg, "sel", {"python": "3.x", "nodejs": "20"}), check=0)
    assert "Selecting 'python' runtime version '3.x' based on manual selections..." in p.output
    assert "[codebuild-local] python 3.x is 3.12" in p.output   # what the form chose
    assert "nodejs 20 is" not in p.output                          # an exact key says it itself
    assert "Running command export PYVER=3.12" in p.output
    assert "Installing Python version 3.12 ..." in p.output
    assert "py=3.12 node=20" in p.output          # the exports carried into BUILD
    ds = p.output.split("Phase complete: DOWNLOAD_SOURCE")[0]
    assert "Running command export NODEVER=20" in ds  # they ran in DOWNLOAD_SOURCE
    p = cbl("run", "-i", ref, rt_build(cbl, reg, "custom", {"python": "3.9"}), check=0)
    assert "Installing custom Python version 3.9 ..." in p.output and "py=custom-3.9" in p.output
    assert ("[codebuild-local] python 3.9 is not among the image's versions: its default commands install "
            "it (VERSION=3.9)") in p.output
    p = cbl("run", "-i", ref, rt_build(cbl, reg, "latest", {"python": "latest"}), check=0)
    assert "[codebuild-local] python latest is 3.12" in p.output and "py=3.12" in p.output


def test_runtime_selection_errors_name_what_the_image_has(cbl, reg):
    ref = f"{reg.host}/test/build:runtimes"
    p = cbl("run", "-i", ref, rt_build(cbl, reg, "badv", {"nodejs": "18"}), check=2)
    assert ("YAML_FILE_ERROR Message: Unknown runtime version named '18' of nodejs. "
            "This build image has the following versions: 20") in p.output
    p = cbl("run", "-i", ref, rt_build(cbl, reg, "badr", {"ruby": "3.2"}), check=2)
    assert ("Unknown runtime named 'ruby'. This build image has the following runtimes: python, nodejs"
            in p.output)


def test_a_directory_as_the_image(cbl, tmp_path):
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    import shutil
    shutil.copy(R.BUSYBOX, root / "bin" / "busybox")
    for a in ["sh"] + APPLETS:
        os.symlink("busybox", root / "bin" / a)
    (root / "etc" / "os-release").write_text("ID=dirimage\n")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    src = cbl.project("dirimg", "version: 0.2\nphases:\n  build:\n    commands:\n"
                                "      - cat /etc/os-release\n      - echo x > /etc/written\n")
    p = cbl("run", "-i", str(root), src, check=0)
    assert "ID=dirimage" in p.output
    assert not (root / "etc" / "written").exists()  # the directory is a read-only lower layer


def test_prune_leaves_a_root_in_use_alone(cbl, reg):
    import subprocess
    import time
    from conftest import BIN
    ref = f"{reg.host}/test/build:v1"
    src = cbl.project("busy", "version: 0.2\nphases:\n  build:\n    commands:\n"
                              "      - sleep 3\n      - cat /etc/os-release\n")
    cbl("images", "pull", ref, check=0)
    roots = Path(cbl.home) / "images" / "roots"
    before = sorted(p.name for p in roots.iterdir())
    proc = subprocess.Popen([str(BIN), "run", "-i", ref, str(src)], env=cbl.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 20
    log = Path(cbl.home) / "builds"
    while time.time() < deadline and not any("Running command sleep" in f.read_text()
                                             for f in log.glob("*/*/build.log")):
        time.sleep(0.05)
    cbl("images", "rm", ref, check=0)
    cbl("images", "prune", check=0)
    assert sorted(p.name for p in roots.iterdir()) == before, "a root in use was removed"
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "ID=cblbuild" in out, out
    cbl("images", "prune", check=0)
    assert not any(roots.iterdir()), "the root is pruned once the build is over"
