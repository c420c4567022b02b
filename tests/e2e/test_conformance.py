"""Runs every case of ../shared/conformance/ (see its README) against the binary."""
import re
import shlex

import pytest

from conftest import SHARED, copy_case, needs_shared

pytestmark = needs_shared

CASES = sorted(p for p in (SHARED / "conformance").glob("*/") if (p / "expect").exists()) \
    if (SHARED / "conformance").exists() else []


@pytest.mark.parametrize("sandbox", ["namespaces", "none"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_conformance(case, sandbox, cbl, tmp_path):
    src = copy_case(case, tmp_path / "src" / case.name)
    lines = (case / "expect").read_text().splitlines()
    args = []
    for line in lines:
        if line.startswith("args "):
            args = shlex.split(line[5:])
    p = cbl("run", "--sandbox", sandbox, *args, cwd=src)
    out = p.output
    for line in lines:
        if not line.strip():
            continue
        kind, _, rest = line.partition(" ")
        if kind == "exit":
            if rest != "any":
                assert p.returncode == int(rest), f"{case.name}: exit {p.returncode}, want {rest}\n{out}"
        elif kind == "has":
            assert rest in out, f"{case.name}: output lacks {rest!r}\n{out}"
        elif kind == "lacks":
            assert rest not in out, f"{case.name}: output has {rest!r}\n{out}"
        elif kind == "re":
            assert re.search(rest, out), f"{case.name}: no match for /{rest}/\n{out}"
        elif kind == "args":
            pass
        else:
            pytest.fail(f"unknown expect line {line!r}")


def test_all_cases_found():
    assert len(CASES) >= 12, f"conformance cases missing under {SHARED}"
