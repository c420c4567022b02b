#!/usr/bin/env python3
"""Prints C functions longer than a limit: funclen.py [--max N] FILES..."""
import re, sys
args = sys.argv[1:]
limit = 120
if args and args[0] == "--max":
    limit = int(args[1]); args = args[2:]
bad = 0
for path in args:
    lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
    start = None; name = None
    for i, l in enumerate(lines):
        if start is None and l.startswith("{") and i > 0:
            # find the signature above
            j = i - 1
            while j > 0 and not re.match(r"^[A-Za-z_]", lines[j]):
                j -= 1
            m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", lines[j])
            if m and "=" not in lines[j].split("(")[0]:
                start = j; name = m.group(1)
        elif start is not None and l.startswith("}"):
            n = i - start + 1
            if n > limit:
                print(f"{path}:{start+1}: {name} {n} lines"); bad += 1
            start = None
sys.exit(1 if bad else 0)
