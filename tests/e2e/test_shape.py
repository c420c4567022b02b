"""The code's shape (the architecture issue's acceptance): no library function
over 120 lines, runner.c a state machine under 1,000 lines, no circle of calls
between the files of a module, and the faces include only public headers."""
import glob
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIB_DIRS = ["util", "spec", "source", "sandbox", "runner", "store", "artifacts", "cache", "images", "server", "cli"]


def test_no_function_over_120_lines():
    files = [f for d in LIB_DIRS for f in sorted(glob.glob(str(ROOT / d / "*.c")))]
    assert len(files) > 50
    p = subprocess.run(["/usr/bin/python3", str(ROOT / "scripts/funclen.py"), "--max", "120", *files],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout


def test_funclen_finds_a_long_function(tmp_path):
    # the checker itself can fail
    src = tmp_path / "long.c"
    src.write_text("int f(void)\n{\n" + "\tx();\n" * 130 + "}\n")
    p = subprocess.run(["/usr/bin/python3", str(ROOT / "scripts/funclen.py"), "--max", "120", str(src)],
                       capture_output=True, text=True)
    assert p.returncode == 1 and "f 133 lines" in p.stdout


def test_runner_c_is_the_state_machine():
    lines = (ROOT / "runner/runner.c").read_text().count("\n")
    assert lines < 1000
    p = subprocess.run(["/usr/bin/python3", str(ROOT / "scripts/funclen.py"), "--max", "80",
                        str(ROOT / "runner/runner.c")], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout


def test_no_call_cycle_between_a_modules_files():
    obj = Path(os.environ["CBL_BIN"]).parent / "obj"
    for mod in ["util", "spec", "source", "sandbox", "runner", "store", "artifacts", "cache", "images", "server"]:
        d = obj / mod
        assert d.is_dir(), d
        p = subprocess.run(["/usr/bin/python3", str(ROOT / "scripts/modgraph.py"), str(d)],
                           capture_output=True, text=True, check=True)
        # objects of files that no longer exist (a stale build tree) are not the code's
        cycles = [l for l in p.stdout.splitlines() if l.startswith("CYCLE:")
                  and all((ROOT / mod / (f.strip() + ".c")).exists()
                          for f in l[len("CYCLE:"):].split("->"))]
        assert not cycles, mod + ":\n" + p.stdout


def test_faces_include_only_public_headers():
    for f in glob.glob(str(ROOT / "cli/*.[ch]")) + glob.glob(str(ROOT / "server/*.[ch]")):
        for inc in re.findall(r'#include "([^"]+)"', Path(f).read_text()):
            assert not inc.endswith("_internal.h") or inc.startswith(Path(f).parent.name + "/"), (f, inc)


def test_source_and_sandbox_know_nothing_of_builds():
    for d in ["source", "sandbox"]:
        for f in glob.glob(str(ROOT / d / "*.[ch]")):
            text = Path(f).read_text()
            assert "runner_build" not in text and '#include "runner/' not in text, f


def test_libcurl_has_one_table():
    # one dlopen table for libcurl (util/curl.h), used by images/, remote/ and server/:
    # a second copy drifts (a missing curl_global_init, a function one copy lacks)
    owners = [f for f in glob.glob(str(ROOT / "*/*.[ch]"))
              if (f.endswith(".c") and '"libcurl.so' in Path(f).read_text())
              or re.search(r"#define curl_easy_init\b", Path(f).read_text())]
    assert sorted(Path(f).relative_to(ROOT).as_posix() for f in owners) == ["util/curl.c", "util/curl.h"]
