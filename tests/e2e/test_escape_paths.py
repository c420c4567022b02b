"""Attacks on the paths the runner reads and writes in a build's view (issue 13).

A build controls its view of the source, its scratch directory
(/codebuild/output/tmp) and the files it leaves for the runner.  The runner
must never follow a path the build controls to a host file, wait forever on
one, name an output after a path the build chose, or keep the build's
secrets on disk.  Each attack is what a malicious pull request could carry;
each first prints a marker (ATTACK-RAN <name>) proving it ran, then the test
checks the host side.

Every test runs as root and as a normal user (cbl-escape-paths, created
here; the binary runs through setpriv with a state directory it owns).
Races are repeated and must succeed 0 times.
"""
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BIN

USER = "cbl-escape-paths"
RACE_BUILDS = 20


@pytest.fixture(scope="module")
def escape_user():
    """The normal user the rootless runs use (created when missing)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", USER], check=True, capture_output=True)
        return pwd.getpwnam(USER)


class Actor:
    """Runs the binary as root or as the test user, in a work directory of
    its own: sources, a state directory, and a host directory (0700) the
    build never sees (the sandbox's /tmp is private)."""

    def __init__(self, who, user):
        self.who = who
        self.user = user if who == "user" else None
        self.work = Path(tempfile.mkdtemp(prefix="cbl-escape-"))
        self.state = self.work / "state"
        self.host = self.work / "host"
        self.state.mkdir()
        self.host.mkdir(mode=0o700)
        os.chmod(self.work, 0o755)
        self.own(self.work)

    def own(self, path):
        """Gives path (recursively) to the user the runner runs as."""
        if not self.user:
            return
        path = Path(path)
        paths = [path] + (list(path.rglob("*")) if path.is_dir() and not path.is_symlink() else [])
        for p in paths:
            os.lchown(p, self.user.pw_uid, self.user.pw_gid)

    def env(self, extra=None):
        env = dict(os.environ)
        env["CODEBUILD_LOCAL_HOME"] = str(self.state)
        env["AWS_CONFIG_FILE"] = "/dev/null"
        env.pop("AWS_PROFILE", None)
        env.pop("NO_COLOR", None)
        if self.user:
            env["HOME"] = self.user.pw_dir
            env["USER"] = env["LOGNAME"] = USER
        if extra:
            env.update(extra)
        return env

    def argv(self, args):
        cmd = [str(BIN), *[str(a) for a in args]]
        if self.user:
            cmd = ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}", "--init-groups",
                   "--", *cmd]
        return cmd

    def __call__(self, *args, timeout=120, check=None, env=None):
        p = subprocess.run(self.argv(args), cwd=self.work, env=self.env(env), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        p.output = p.stdout + p.stderr
        if check is not None:
            assert p.returncode == check, f"exit {p.returncode}, want {check}\n{p.output}"
        return p

    def popen(self, *args, env=None):
        return subprocess.Popen(self.argv(args), cwd=self.work, env=self.env(env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def project(self, name, buildspec, files=None):
        d = self.work / name
        d.mkdir(parents=True, exist_ok=True)
        if buildspec is not None:
            (d / "buildspec.yml").write_text(buildspec)
        for rel, content in (files or {}).items():
            f = d / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(content)
        self.own(d)
        return d

    def host_file(self, rel, content, mode=0o600):
        """A file of the host (the runner's user may read it; the build must not)."""
        f = self.host / rel
        f.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        f.write_text(content)
        os.chmod(f, mode)
        self.own(self.host)
        return f

    def cleanup(self):
        shutil.rmtree(self.work, ignore_errors=True)


@pytest.fixture(params=["root", "user"])
def actor(request, escape_user):
    if request.param == "user" and not escape_user:
        pytest.skip("the rootless runs need root to create the test user")
    if request.param == "user" and not shutil.which("setpriv"):
        pytest.skip("setpriv is not installed")
    a = Actor(request.param, escape_user)
    yield a
    a.cleanup()


def files_containing(root, needle):
    """Every file under root whose bytes contain needle."""
    hits = []
    for dirpath, dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            try:
                if os.path.islink(p) or not os.path.isfile(p):
                    continue
                with open(p, "rb") as f:
                    if needle.encode() in f.read():
                        hits.append(p)
            except OSError:
                pass
    return hits


def marker(p, name):
    assert f"ATTACK-RAN {name}" in p.output, f"the attack did not run:\n{p.output}"


# ---------------------------------------------------------------- scratch files

CHMOD_RACE = r"""version: 0.2
phases:
  install:
    on-failure: CONTINUE
    commands:
      - |
        python3 - <<'PY' >/dev/null 2>&1 &
        import os, time
        t, v = "/codebuild/output/tmp/", os.environ["VICTIM"]
        end = time.time() + 120
        while time.time() < end:
            for f in ("script.sh", "values.sh", "env.sh", "dir.txt"):
                try:
                    os.symlink(v, t + f + ".x")
                    os.rename(t + f + ".x", t + f)
                except OSError:
                    pass
        PY
      - sleep 0.2; echo "ATTACK-RAN script-chmod"
PHASES
artifacts:
  files: [buildspec.yml]
  name: art-$(echo x)
"""


def test_script_symlink_swap_never_chmods_a_host_file(actor):
    """script.sh (and its siblings) swapped for a symlink to a host file: the
    runner publishes by rename and sets modes by descriptor."""
    phases = "".join(f"""  {ph}:
    on-failure: CONTINUE
    commands:
{"".join("      - 'true'" + chr(10) for _ in range(5))}    finally:
{"".join("      - 'true'" + chr(10) for _ in range(5))}""" for ph in ("pre_build", "build", "post_build"))
    victim = actor.host_file("victim.key", "host private key\n", 0o600)
    before = victim.stat()
    src = actor.project("chmod", CHMOD_RACE.replace("PHASES\n", phases))
    ran = 0
    for _ in range(RACE_BUILDS):
        p = actor("run", "--timeout", "2", "-e", f"VICTIM={victim}", "-a", actor.work / "out", src, timeout=180)
        ran += "ATTACK-RAN script-chmod" in p.output
        st = victim.stat()
        assert (st.st_mode & 0o7777) == 0o600, f"host file mode changed to {oct(st.st_mode)}\n{p.output}"
        assert victim.read_text() == "host private key\n"
        assert (st.st_uid, st.st_gid) == (before.st_uid, before.st_gid)
    assert ran == RACE_BUILDS, "the racing attack did not run in every build"


# ------------------------------------------------------------------- artifacts

EXCHANGE_RACE = r"""version: 0.2
phases:
  build:
    commands:
      - mkdir -p d && for i in $(seq 1 40); do echo build-own > d/f$i.txt; done
      - ln -sfn "$HOSTDIR" e
      - |
        python3 - <<'PY' >/dev/null 2>&1 &
        import ctypes, os, time
        libc = ctypes.CDLL(None, use_errno=True)
        end = time.time() + 60
        while time.time() < end:
            libc.renameat2(-100, b"d", -100, b"e", 2)  # RENAME_EXCHANGE
        PY
      - sleep 0.2; echo "ATTACK-RAN artifact-exchange"
artifacts:
  files: ['d/**/*']
"""


def test_artifact_rename_exchange_never_packages_host_files(actor):
    """The artifact tree's directory exchanged with a symlink to a host
    directory (renameat2 RENAME_EXCHANGE) while it is packaged."""
    secret = "HOST-ONLY-" + os.urandom(6).hex()
    hostdir = actor.host / "private"
    for i in range(1, 41):
        actor.host_file(f"private/f{i}.txt", secret + "\n")
    src = actor.project("exchange", EXCHANGE_RACE)
    out = actor.work / "out"
    ran = 0
    for n in range(RACE_BUILDS):
        p = actor("run", "--timeout", "2", "-e", f"HOSTDIR={hostdir}", "-a", out, src, timeout=180)
        ran += "ATTACK-RAN artifact-exchange" in p.output
        assert secret not in p.output
        assert not files_containing(actor.work / "out", secret), f"build {n}: a host file was packaged"
        assert not files_containing(actor.state, secret), f"build {n}: a host file reached the state dir"
    assert ran == RACE_BUILDS, "the racing attack did not run in every build"


def test_artifact_base_directory_symlink_out_selects_nothing(actor):
    secret = "HOST-ONLY-" + os.urandom(6).hex()
    actor.host_file("basedir/s.txt", secret)
    src = actor.project("baselink", """version: 0.2
phases:
  build:
    commands:
      - ln -sfn "$HOSTDIR" out && echo "ATTACK-RAN base-directory-symlink"
artifacts:
  base-directory: out
  files: ['**/*']
""")
    p = actor("run", "-e", f"HOSTDIR={actor.host / 'basedir'}", "-a", actor.work / "out", src)
    marker(p, "base-directory-symlink")
    assert "no matching artifact paths found" in p.output, p.output
    assert not files_containing(actor.work / "out", secret)


REPORT_FIFO = r"""version: 0.2
phases:
  build:
    commands:
      - mkdir -p reports
      - echo '<testsuite name="s" tests="1"><testcase classname="c" name="ok"/></testsuite>' > reports/a.xml
      - mkfifo reports/b.xml
      - echo '<testsuite name="t" tests="0"/>' > reports/c.xml && mkfifo reports/c.alt
      - |
        python3 - <<'PY' >/dev/null 2>&1 &
        import ctypes, time
        libc = ctypes.CDLL(None, use_errno=True)
        end = time.time() + 120
        while time.time() < end:
            libc.renameat2(-100, b"reports/c.xml", -100, b"reports/c.alt", 2)  # RENAME_EXCHANGE
        PY
      - sleep 0.2; echo "ATTACK-RAN report-fifo"
reports:
  grp:
    files: ['reports/*.xml']
artifacts:
  files: ['reports/*']
"""


def test_fifo_report_files_never_hang_the_runner(actor):
    """FIFOs in place of report and artifact files (one planted, one swapped
    in and out in a loop): the runner finishes, well within --timeout."""
    src = actor.project("fifo", REPORT_FIFO)
    for _ in range(5):
        t0 = time.time()
        p = actor("run", "--timeout", "1", "-a", actor.work / "out", src, timeout=90)
        took = time.time() - t0
        marker(p, "report-fifo")
        assert took < 60, f"the runner took {took:.0f}s"
        assert "Phase complete: UPLOAD_ARTIFACTS" in p.output, p.output
        assert re.search(r"^Build \S+ (SUCCEEDED|FAILED) ", p.output, re.M), p.output


# ------------------------------------------------------------------- buildspec

def check_no_leak(actor, p, needle):
    assert needle not in p.output, p.output
    hits = files_containing(actor.state, needle)
    assert not hits, f"{needle!r} is in {hits}"


def test_buildspec_outside_the_source_is_never_read(actor):
    secret = "SHADOWMARK" + os.urandom(6).hex()
    shadow = actor.host_file("shadow", f"root:$6${secret}$x:19000:0:99999:7:::\nbin:*:{secret}:0:99999:7:::\n")
    readable = os.access(shadow, os.R_OK) if not actor.user else True  # the user owns it
    assert readable
    print("ATTACK-RAN buildspec: the runner's user can read", shadow)
    # a source whose buildspec.yml is a symlink to it (absolute, then relative)
    for name, target in (("abs", str(shadow)), ("rel", os.path.relpath(shadow, actor.work / "bs-rel"))):
        src = actor.project(f"bs-{name}", None)
        (src / "buildspec.yml").symlink_to(target)
        actor.own(src)
        p = actor("run", src, check=2)
        assert "YAML_FILE_ERROR" in p.output and "outside the source directory" in p.output, p.output
        check_no_leak(actor, p, secret)
    # -b: an absolute path elsewhere, a relative one climbing out
    src = actor.project("bs-b", "version: 0.2\nphases:\n  build:\n    commands:\n      - echo ok\n")
    for arg in (str(shadow), os.path.relpath(shadow, src)):
        p = actor("run", "-b", arg, src, check=2)
        assert "YAML_FILE_ERROR" in p.output and "outside the source directory" in p.output, p.output
        check_no_leak(actor, p, secret)
    # a FIFO as the buildspec: refused at once
    fifo = src / "fifo.yml"
    os.mkfifo(fifo)
    actor.own(fifo)
    p = actor("run", "-b", "fifo.yml", src, check=2, timeout=60)
    assert "not a regular file" in p.output, p.output
    # StartBuild's buildspecOverride: a path elsewhere, then a path in the source
    doc = {"name": "override", "source": {"type": "NO_SOURCE", "location": f"file://{src}"},
           "artifacts": {"type": "NO_ARTIFACTS"},
           "environment": {"type": "LINUX_CONTAINER", "image": "host", "computeType": "BUILD_GENERAL1_SMALL"}}
    pj = actor.work / "override.json"
    pj.write_text(json.dumps(doc))
    actor.own(pj)
    actor("create-project", "--cli-input-json", f"file://{pj}", check=0)
    targets = [str(shadow)] + (["/etc/shadow"] if os.geteuid() == 0 and not actor.user else [])
    for target in targets:
        b = json.loads(actor("start-build", "--project-name", "override", "--buildspec-override", target,
                             check=0).stdout)["build"]
        done = wait_done(actor, b["id"])
        assert done["buildStatus"] == "FAILED", [(ph["phaseType"], ph.get("phaseStatus"), ph.get("contexts"))
                                                 for ph in done["phases"]]
        ctx = [c for ph in done["phases"] for c in ph.get("contexts", []) if c.get("statusCode")]
        assert any(c["statusCode"] == "YAML_FILE_ERROR" and "outside the source" in c["message"] for c in ctx), ctx
        assert not files_containing(actor.state, secret)
        if target == "/etc/shadow":
            with open("/etc/shadow") as f:
                hashes = [ln.split(":")[1] for ln in f if len(ln.split(":")) > 2 and len(ln.split(":")[1]) > 3]
            for h in hashes:
                assert not files_containing(actor.state, h), "a line of /etc/shadow reached the state dir"
    b = json.loads(actor("start-build", "--project-name", "override", "--buildspec-override", "buildspec.yml",
                         check=0).stdout)["build"]
    assert wait_done(actor, b["id"])["buildStatus"] == "SUCCEEDED"


def wait_done(actor, build_id, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        b = json.loads(actor("batch-get-builds", "--ids", build_id, check=0).stdout)["builds"][0]
        if b["buildComplete"]:
            return b
        time.sleep(0.2)
    raise AssertionError(f"{build_id} did not finish")


# ------------------------------------------------------------------ identifiers

IDENT = """version: 0.2
phases:
  build:
    commands:
      - echo "ATTACK-RAN identifier"
artifacts:
  files: [buildspec.yml]
  secondary-artifacts:
    ../../victimdir:
      files: [buildspec.yml]
    ../../../../../tmp/escaped:
      files: [buildspec.yml]
"""


def test_identifiers_are_names_never_paths(actor):
    victim = actor.work / "victimdir"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep")
    actor.own(victim)
    out = actor.work / "o1" / "o2"
    escaped = Path("/tmp/escaped.zip")
    before = escaped.stat().st_mtime_ns if escaped.exists() else None
    src = actor.project("ident", IDENT)
    for strict in ([], ["--strict"]):
        p = actor("validate", *strict, "-b", src / "buildspec.yml", check=2)
        assert re.search(r"buildspec\.yml:9:5: error: artifact identifier '\.\./\.\./victimdir' is not valid",
                         p.output), p.output
        assert "buildspec.yml:11:5: error: artifact identifier" in p.output, p.output
    print("ATTACK-RAN identifier: validate refused it")
    for packaging in ("NONE", "ZIP"):
        p = actor("run", "-a", out, "--artifacts-packaging", packaging, src, check=2)
        assert "artifact identifier '../../victimdir' is not valid" in p.output, p.output
        assert sorted(os.listdir(victim)) == ["keep.txt"] and (victim / "keep.txt").read_text() == "keep"
        after = escaped.stat().st_mtime_ns if escaped.exists() else None
        assert after == before, "/tmp/escaped.zip was written"
    # a name that climbs out, from a variable: checked once expanded
    src = actor.project("esc-name", """version: 0.2
phases:
  build:
    commands:
      - echo "ATTACK-RAN artifact-name"
artifacts:
  files: [buildspec.yml]
  name: $ESCAPE
""")
    target = actor.work / f"escaped-name-{os.getpid()}"
    rel = os.path.relpath(target, out)
    p = actor("run", "-e", f"ESCAPE={rel}", "-a", out, src, check=0)
    marker(p, "artifact-name")
    assert "would leave" in p.output, p.output
    assert not target.exists()
    # report group names: a path is refused at validate time
    src = actor.project("esc-report", """version: 0.2
phases:
  build:
    commands:
      - echo "ATTACK-RAN report-group"
reports:
  ../../../grp:
    files: ['*.xml']
""")
    p = actor("validate", "-b", src / "buildspec.yml", check=2)
    assert "buildspec.yml:7:3: error: report group '../../../grp' is not valid" in p.output.replace(
        "is not a valid report group name or ARN", "is not valid"), p.output


# --------------------------------------------------------------------- secrets

SECRET_SPEC = """version: 0.2
env:
  parameter-store:
    DB_PASS: /app/db/password
  secrets-manager:
    API_KEY: prod/api:key
phases:
  build:
    commands:
      - echo "ATTACK-RAN secrets len=${#DB_PASS}/${#API_KEY}"
      - export CARRIED=yes
      - echo "carried=$CARRIED"; grep -c -e "$DB_PASS" -e "$API_KEY" /codebuild/output/tmp/env.sh || echo NOT-IN-ENV-SH
      - sleep ${SLEEP:-0}
"""


def secrets_file(actor, pw, key):
    f = actor.host_file("secrets.json", json.dumps({
        "parameter-store": {"/app/db/password": pw},
        "secrets-manager": {"prod/api": json.dumps({"key": key})}}))
    return f


def test_secrets_never_rest_on_disk(actor):
    pw, key = "pw-" + os.urandom(8).hex(), "key-" + os.urandom(8).hex()
    sf = secrets_file(actor, pw, key)
    src = actor.project("secrets", SECRET_SPEC)
    p = actor("run", "--secrets-file", sf, src, check=0)
    assert f"ATTACK-RAN secrets len={len(pw)}/{len(key)}" in p.output, p.output
    assert "carried=yes" in p.output and "NOT-IN-ENV-SH" in p.output, p.output
    for s in (pw, key):
        assert s not in p.output
        assert not files_containing(actor.state, s), f"the secret rests in {files_containing(actor.state, s)}"
    # the scratch directory is private while the build runs
    src2 = actor.project("scratch-mode", """version: 0.2
phases:
  build:
    commands:
      - echo "ATTACK-RAN scratch-mode"
      - sleep 3
""")
    proc = actor.popen("run", src2)
    try:
        mode = None
        deadline = time.time() + 30
        while time.time() < deadline and mode is None:
            for tmp in actor.state.glob("builds/scratch-mode/*/tmp"):
                mode = tmp.stat().st_mode & 0o7777
            time.sleep(0.05)
        assert mode == 0o700, f"scratch mode {oct(mode) if mode is not None else None}"
    finally:
        proc.communicate(timeout=60)


def test_secrets_gone_after_the_runner_is_killed(actor):
    pw, key = "pw-" + os.urandom(8).hex(), "key-" + os.urandom(8).hex()
    sf = secrets_file(actor, pw, key)
    src = actor.project("killed", SECRET_SPEC)
    proc = actor.popen("run", "--secrets-file", sf, "-e", "SLEEP=60", src)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if "Running command sleep" in line:
                break
        text = "".join(seen)
        assert "ATTACK-RAN secrets" in text and "NOT-IN-ENV-SH" in text, text
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGKILL)  # setpriv execs the runner: the same pid
    finally:
        proc.kill()
        proc.wait(timeout=30)
    for s in (pw, key):
        assert not files_containing(actor.state, s), f"the secret rests in {files_containing(actor.state, s)}"
    # crash recovery (any later command) sweeps the dead build's scratch
    dirs = list(actor.state.glob("builds/killed/*"))
    assert len(dirs) == 1
    bid = f"killed:{dirs[0].name}"
    b = json.loads(actor("batch-get-builds", "--ids", bid, check=0).stdout)["builds"][0]
    assert b["buildStatus"] == "FAULT", b
    assert not (dirs[0] / "tmp").exists(), "the dead build's scratch is left behind"


# ----------------------------------------------------------------------- cache

def test_cache_paths_never_follow_a_planted_symlink(actor):
    spec = """version: 0.2
phases:
  build:
    commands:
      - echo "ATTACK-RAN cache $(ls -ld node_modules | cut -c1)"
      - mkdir -p node_modules && echo cached > node_modules/a.txt || true
cache:
  paths: ['node_modules/**/*']
"""
    victim = actor.host / "victim"
    victim.mkdir()
    secret = "HOST-ONLY-" + os.urandom(6).hex()
    actor.host_file("secretdir/s.txt", secret)
    src = actor.project("cached", spec)
    p = actor("run", "--project", "cache-attack", src, check=0)
    marker(p, "cache")
    # restore into a source whose node_modules is a symlink to a host directory
    shutil.rmtree(src / "node_modules", ignore_errors=True)
    (src / "node_modules").symlink_to(victim)
    p = actor("run", "--project", "cache-attack", src, check=0)
    marker(p, "cache")
    assert os.listdir(victim) == [], "the cache was restored into a host directory"
    # save from a source whose node_modules is a symlink to host secrets
    (src / "node_modules").unlink()
    (src / "node_modules").symlink_to(actor.host / "secretdir")
    p = actor("run", "--project", "cache-attack2", src, check=0)
    marker(p, "cache")
    assert not files_containing(actor.state, secret), "a host file was saved into the cache"
