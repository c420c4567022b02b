#!/usr/bin/env python3
"""Call edges between the object files of one module, and cycles: modgraph.py build/obj/runner"""
import subprocess, sys, glob, os, itertools
d = sys.argv[1]
defs, uses = {}, {}
for o in glob.glob(d + '/*.o'):
    f = os.path.basename(o)[:-2]
    out = subprocess.run(['nm', o], capture_output=True, text=True).stdout.split('\n')
    for l in out:
        p = l.split()
        if len(p) == 3 and p[1] in 'TDBR': defs[p[2]] = f
        if len(p) == 2 and p[0] == 'U': uses.setdefault(f, set()).add(p[1])
edges = {}
for f, us in uses.items():
    for u in us:
        if u in defs and defs[u] != f:
            edges.setdefault(f, {}).setdefault(defs[u], set()).add(u)
for f in sorted(edges):
    print(f, '->', ', '.join(f'{g}({len(s)})' for g, s in sorted(edges[f].items())))
# cycles via DFS
import collections
G = {f: set(e) for f, e in edges.items()}
cyc = set()
def dfs(start, node, path):
    for n in G.get(node, ()):
        if n == start: cyc.add(tuple(path))
        elif n not in path and len(path) < 6: dfs(start, n, path + [n])
for f in G: dfs(f, f, [f])
seen = set()
for c in cyc:
    k = frozenset(c)
    if k in seen: continue
    seen.add(k)
    print('CYCLE:', ' -> '.join(c + (c[0],)))
    for a, b in zip(c, c[1:] + (c[0],)):
        print('   ', a, '->', b, sorted(edges[a][b]))
