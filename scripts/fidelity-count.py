#!/usr/bin/python3
"""Counts the reference's [doc] and [obs] statements and the rows of
docs/fidelity.md, and checks that they agree.

    fidelity-count.py [--shared DIR] [--list | --pytest-ids] [--table FILE]

The reference is DIR/reference/*.md (DIR: --shared, else $CBL_SHARED, else
../shared beside the checkout). A statement is one [doc ...] or [obs ...] tag
(the tag's first word is `doc` or `obs`: `[doc]`, `[doc S2]`, `[obs 2020]`,
`[doc, obs]`, `[doc/API]`; not `[doc-2022]`, `[src]`, `[inferred]`) outside
the legend that explains the tags. Its id is the number of the section it is
in and its rank there (`4.2-3`), its text what precedes the tag on its line
(or, for a tag alone on its line, the section's title). Tags before the
first numbered section (the preamble, its legend) are no statements.

The table's rows are `| id | statement | section | status | test |` (rows
with ids of our own, `T1`, `E1`, are checked the same way but not counted:
the log templates of 4.2 and the failure examples of 4.4); status is
`matched`, `differs: <why>` or `not applicable locally: <why>`. A `matched`
row names one or more tests (`tests/e2e/test_x.py::test_y`,
`tests/unit/test_x.c::test_y`, parametrised ids allowed), each of which must
exist. Exit 0 when the ids agree and every named test exists, else 1 with
one line per problem.
"""
import argparse
import ast
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAG = re.compile(r"\[(?:doc|obs)(?:[ ,/+][^\]\n]*)?\]")
HEAD = re.compile(r"^#{2,6}\s+(\d+(?:\.\d+)*)\.?\s+(.*)")
STATUSES = ("matched", "differs:", "not applicable locally")
TEST_ID = re.compile(r"(tests/(?:e2e|unit)/[\w./-]+\.(?:py|c))::(\w+)(\[[^\]\s]*\])?")


def shared_dir(arg=None):
    if arg:
        return Path(arg)
    if os.environ.get("CBL_SHARED"):
        return Path(os.environ["CBL_SHARED"])
    return ROOT.parent / "shared"


def _legend(line, m):
    """True for a tag that only names the tag (the legend, `[doc] / [obs]`)."""
    before, after = line[: m.start()], line[m.end():]
    return before.endswith("**") or after.startswith(" / ") or before.endswith("/ ")


def _clean(text):
    text = re.sub(r"\*\*|`", "", text)
    text = re.sub(r"^\s*(?:[-*]|\d+\.|\|)\s*", "", text)
    text = re.sub(r"\s*\|\s*", " | ", text).strip(" |")
    return re.sub(r"\s+", " ", text).strip()


def _continued(lines, i):
    """The lines of the sentence that lines[i] continues (a wrapped bullet or
    paragraph), joined; "" when lines[i] starts its own item."""
    if re.match(r"^\s*(?:[-*]|\d+\.|\||#)", lines[i]):
        return ""
    k = i
    while k > 0 and lines[k - 1].strip() and not lines[k - 1].startswith(("#", "|", "```")):
        k -= 1
        if re.match(r"^\s*(?:[-*]|\d+\.)\s", lines[k]):
            break
    joined = " ".join(ln.strip() for ln in lines[k:i])
    tags = list(TAG.finditer(joined))  # only what follows an earlier statement
    return joined[tags[-1].end():] if tags else joined


def statements(ref_dir):
    """[(id, section, text)] for every [doc]/[obs] statement, in file order."""
    out = []
    for md in sorted(Path(ref_dir).glob("*.md")):
        lines = md.read_text(encoding="utf-8").splitlines()
        section, title, rank, fence = None, "", {}, False
        prefix = "" if md.name == "buildspec.md" else md.stem + ":"
        for i, line in enumerate(lines):
            if line.startswith("```"):
                fence = not fence
            if fence:
                continue
            h = HEAD.match(line)
            if h:
                section, title = h.group(1), re.sub(r"\*\*|`", "", h.group(2)).strip()
                continue
            if section is None:  # the preamble and its legend of the tags
                continue
            start = 0
            for m in TAG.finditer(line):
                if _legend(line, m):
                    continue
                text = _clean((_continued(lines, i) if start == 0 else "") + " " + line[start: m.start()])
                start = m.end()
                if len(text) < 3:  # a tag alone on its line covers the section
                    text = f"(the section) {title}"
                key = prefix + section
                rank[key] = rank.get(key, 0) + 1
                out.append((f"{key}-{rank[key]}", key, text))
    return out


STATEMENT_ID = re.compile(r"^[\w:]*\d[\d.]*-\d+$")
EXTRA_ID = re.compile(r"^[A-Z]\d+$")  # rows of our own (the log templates, the failure examples)


def table_rows(path):
    """{id: (status, tests, line)} from the fidelity table (statement rows and
    rows of our own, `T1`, `E1`), and parse problems."""
    rows, problems = {}, []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if not line.startswith("|") or len(cells) < 5 or not (STATEMENT_ID.match(cells[0]) or EXTRA_ID.match(cells[0])):
            continue
        sid, status, tests = cells[0], cells[-2], cells[-1]
        if sid in rows:
            problems.append(f"{path}:{n}: {sid} appears twice")
        if not status.startswith(STATUSES):
            problems.append(f"{path}:{n}: {sid}: status '{status}' is none of {', '.join(STATUSES)}")
        rows[sid] = (status, TEST_ID.findall(tests), n)
    return rows, problems


_defs = {}


def _defined(file, name):
    p = ROOT / file
    if p not in _defs:
        if not p.is_file():
            _defs[p] = set()
        elif p.suffix == ".py":
            tree = ast.parse(p.read_text(encoding="utf-8"))
            _defs[p] = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        else:
            _defs[p] = set(re.findall(r"^(?:static\s+)?void\s+(\w+)\s*\(", p.read_text(), re.M))
    return name in _defs[p]


def check(shared, table):
    ref = Path(shared) / "reference"
    stmts = statements(ref)
    rows, problems = table_rows(table)
    ids = [s[0] for s in stmts]
    for sid in ids:
        if sid not in rows:
            problems.append(f"{table}: no row for {sid}")
    for sid in rows:
        if sid not in ids and not EXTRA_ID.match(sid):
            problems.append(f"{table}:{rows[sid][2]}: {sid} is no statement of the reference")
    for sid, (status, tests, n) in rows.items():
        if status.startswith("matched") and not tests:
            problems.append(f"{table}:{n}: {sid} is matched but names no test")
        for file, name, param in tests:
            if not _defined(file, name):
                problems.append(f"{table}:{n}: {sid}: no test {file}::{name}")
            elif "test_conformance.py" in file and param:
                case = re.sub(r"-(namespaces|none)$", "", param[1:-1])
                if not (Path(shared) / "conformance" / case).is_dir():
                    problems.append(f"{table}:{n}: {sid}: no conformance case {case}")
    return stmts, rows, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared")
    ap.add_argument("--table", default=str(ROOT / "docs" / "fidelity.md"))
    ap.add_argument("--list", action="store_true", help="print the statements")
    ap.add_argument("--pytest-ids", action="store_true",
                    help="print the e2e tests the matched rows name, as pytest node ids "
                         "(pytest $(fidelity-count.py --pytest-ids) runs them)")
    a = ap.parse_args()
    shared = shared_dir(a.shared)
    if not (shared / "reference").is_dir():
        print(f"no reference in {shared}", file=sys.stderr)
        return 2
    if a.list:
        for sid, sec, text in statements(shared / "reference"):
            print(f"{sid}\t{sec}\t{text}")
        return 0
    stmts, rows, problems = check(shared, a.table)
    if a.pytest_ids:
        ids = sorted({f"{f}::{n}{p}" for st, tests, _ in rows.values() if st.startswith("matched")
                      for f, n, p in tests if f.endswith(".py")})
        print("\n".join(ids))
        return 0
    stmt_rows = {k: v for k, v in rows.items() if STATEMENT_ID.match(k)}
    counts = {s: sum(1 for r in stmt_rows.values() if r[0].startswith(s)) for s in STATUSES}
    print(f"statements: {len(stmts)}  rows: {len(stmt_rows)}  " +
          "  ".join(f"{k.rstrip(':')}: {v}" for k, v in counts.items()))
    for p in problems:
        print(p)
    return 1 if problems or len(stmts) != len(stmt_rows) else 0


if __name__ == "__main__":
    sys.exit(main())
