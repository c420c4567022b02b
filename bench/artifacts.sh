#!/usr/bin/env bash
# Artifact packaging speed: codebuild-local packaging a node_modules-like tree
# (default 10,000 files, ~130 MB) as a ZIP artifact, against `zip -qr` of the
# same tree, in the same run.  Prints both wall times (median of RUNS), the
# ratio, both output sizes and the size ratio.
# Targets (issue "parallel artifact packaging"): time <= 0.6x zip -qr's,
# output no more than 5% larger (<= 1.05x).
#
# The codebuild-local side is the real path: `codebuild-local run -a OUT TREE`
# (--sandbox none --source-mode mount) with a buildspec (kept outside the tree) whose artifacts
# are files: ['**/*'], so the time includes starting the binary, a
# one-command build, collecting the file list and writing artifacts.zip
# (sha256/md5 included).
#
# The tree is generated offline and deterministically (seeded, /usr/bin/python3):
# packages under node_modules/ (some scoped, some nested) with package.json,
# README.md, LICENSE, JS sources, .d.ts, source maps, minified bundles, a few
# large bundles and some incompressible binaries (.node/.png/.woff2/.wasm), of
# lognormal sizes scaled to the byte total.  NPM_TREE=1 uses real packages
# instead (`npm install` into a temp dir: needs the npm registry; the file count
# and size are then whatever those packages are).
#
# Usage: bench/artifacts.sh [BIN] [RUNS]
# Environment: BENCH_FILES (10000), BENCH_BYTES (130000000), NPM_TREE=1,
#              BENCH_KEEP=1 (keep the work directory and print it).
# Not a test: `make bench` runs it, `make test` does not.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(dirname "$here")
BIN=${1:-$root/build/codebuild-local}
RUNS=${2:-3}
FILES=${BENCH_FILES:-10000}
BYTES=${BENCH_BYTES:-130000000}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

if [ ! -x "$BIN" ]; then
  echo "building $BIN" >&2
  make -C "$root" "${BIN#"$root"/}" >&2
fi
BIN=$(abs_path "$BIN")
# No sandbox and the tree itself as the source: this measures packaging, not
# the sandbox's setup or the snapshot copy (bench/sandbox.sh, bench/snapshot.sh).
help=$("$BIN" run --help 2>&1 || true)
runopts=()
if grep -q -- '--sandbox' <<<"$help"; then runopts+=(--sandbox none); fi
if grep -q -- '--source-mode' <<<"$help"; then runopts+=(--source-mode mount); fi
command -v zip >/dev/null || { echo "bench/artifacts.sh: zip is not installed" >&2; exit 2; }

work=$(mktemp -d)
if [ "${BENCH_KEEP:-}" = 1 ]; then
  echo "work directory: $work"
else
  trap 'rm -rf "$work"' EXIT
fi
tree=$work/tree
mkdir -p "$tree"

if [ "${NPM_TREE:-}" = 1 ]; then
  echo "tree: npm install (real packages)"
  (cd "$tree" && echo '{"name":"bench","version":"1.0.0","private":true}' > package.json &&
   npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
     typescript webpack eslint @babel/core @babel/preset-env rxjs lodash moment \
     date-fns react-dom express >/dev/null)
else
  "$PY" - "$tree" "$FILES" "$BYTES" <<'PY'
# Seeded generator of a node_modules-like tree: same arguments, same bytes.
import json, os, random, sys
root, nfiles, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(20240601)
KW = ("function return const let var if else for while this new typeof undefined null true "
      "false module exports require async await class extends import from export default try "
      "catch throw Object Array String Promise prototype length push call apply arguments").split()
PUNCT = ["(", ")", "{", "}", ";", ",", ".", " = ", " === ", " !== ", " && ", " || ", " + ",
         "[", "]", ": ", " => ", "\n", "\n  ", "\n    ", " "]
ENGLISH = ("the a of to and in is for with that this on be it as are by an use or can from "
           "install npm package module options default value returns function callback error "
           "version license copyright permission software provided without warranty any").split()
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
LOWER = "abcdefghijklmnopqrstuvwxyz"

def word(r, lo=3, hi=10):
    return "".join(r.choices(LOWER, k=r.randint(lo, hi)))

class Pkg:
    """Per-package vocabulary: identifiers and a phrase pool with a Zipf-like
    distribution, so the files of one package share a style as real code
    does (JS compresses to ~30% with deflate -6, like real packages)."""
    def __init__(self, r, path):
        self.path = path
        self.idents = [word(r, 2, 14) for _ in range(200)]
        self.vocab = KW + self.idents + PUNCT * 3
        self.phr = ["".join(r.choices(self.vocab, k=r.randint(1, 6))) for _ in range(3000)]
        self.w = [1.0 / (i + 1) ** 0.5 for i in range(3000)]
        self.mvocab = KW + self.idents + PUNCT + list(LOWER + LOWER.upper() + "_$") * 2

def code(r, pk, n, minified):
    vocab = pk.mvocab if minified else pk.vocab
    out, size = [], 0
    while size < n:
        s = ("".join(r.choices(pk.phr, pk.w, k=400 if minified else 512)) +
             "".join(r.choices(vocab, k=384 if minified else 256)) +
             "".join(" %d" % r.randrange(100000) for _ in range(16)))
        out.append(s)
        size += len(s)
    return "".join(out)[:n].encode()

def prose(r, pk, n):
    words = ENGLISH + pk.idents[:20]
    out, size = [], 0
    while size < n:
        s = " ".join(r.choices(words, k=1024)) + "\n\n## " + word(r) + "\n"
        out.append(s)
        size += len(s)
    return "".join(out)[:n].encode()

def sourcemap(r, pk, n):
    head = '{"version":3,"sources":["../src/index.ts"],"names":[],"mappings":"'
    segs = ",".join("".join(r.choices(B64, k=r.randint(4, 8))) for _ in range(max(1, n // 12)))
    body = head + segs + '","sourcesContent":["'
    return (body.encode() + code(r, pk, max(0, n - len(body)), False))[:n]

npkg = max(1, nfiles // 25)
pkgs = []
for i in range(npkg):
    name = word(rng, 3, 12)
    if rng.random() < 0.15:
        name = "@" + word(rng, 3, 8) + "/" + name
    parent = pkgs[rng.randrange(len(pkgs))] + "/" if pkgs and rng.random() < 0.1 else ""
    pkgs.append(parent + "node_modules/" + name)
plan = []  # (relpath, package index, kind, size)
for i, p in enumerate(pkgs):
    plan.append((p + "/package.json", i, "json", rng.randint(400, 3000)))
    plan.append((p + "/LICENSE", i, "license", 1100))
    plan.append((p + "/README.md", i, "md", int(rng.lognormvariate(8.0, 1.0))))
DIRS = ["lib", "dist", "src", "lib/internal", "build", "esm", "cjs", "types", ""]
KINDS = [(0.50, "js", ".js", 8.2, 1.2), (0.65, "js", ".d.ts", 7.2, 1.0),
         (0.78, "map", ".js.map", 8.5, 1.2), (0.88, "min", ".min.js", 8.8, 1.3),
         (0.94, "md", ".md", 7.5, 1.0), (0.98, "json", ".json", 7.0, 1.2),
         (1.00, "bin", None, 9.5, 1.5)]
while len(plan) < nfiles:
    i = rng.randrange(len(pkgs))
    d = rng.choice(DIRS)
    x = rng.random()
    _, kind, ext, mu, sigma = next(k for k in KINDS if x < k[0])
    if ext is None:
        ext = rng.choice([".node", ".png", ".woff2", ".wasm"])
    size = 0 if rng.random() < 0.02 else min(int(rng.lognormvariate(mu, sigma)), 3_000_000)
    plan.append((pkgs[i] + "/" + (d + "/" if d else "") + word(rng, 2, 12) + ext, i, kind, size))
for k in range(8):  # a few large bundles
    i = rng.randrange(len(pkgs))
    plan[rng.randrange(3 * npkg, len(plan))] = (
        pkgs[i] + "/dist/bundle%d.js" % k, i, "js" if k % 3 else "min",
        rng.randint(2_000_000, 6_000_000))
fixed = sum(s for _, _, k, s in plan if k in ("license", "json"))
scale = (total - fixed) / sum(s for _, _, k, s in plan if k not in ("license", "json"))
cache = {}
seen, nbytes = set(), 0
for rel, i, kind, size in plan:
    if rel in seen:
        rel = rel + ".%d" % len(seen)
    seen.add(rel)
    r = random.Random(rng.getrandbits(64))
    if i not in cache:
        cache[i] = Pkg(random.Random(i * 7919 + 17), pkgs[i])
    pk = cache[i]
    if kind not in ("license", "json"):
        size = int(size * scale)
    if kind in ("js", "min"):
        data = code(r, pk, size, kind == "min")
    elif kind == "map":
        data = sourcemap(r, pk, size)
    elif kind == "md":
        data = prose(r, pk, size)
    elif kind == "json":
        data = json.dumps({"name": pk.path.rsplit("node_modules/", 1)[1], "version": "%d.%d.%d" % (
            r.randrange(10), r.randrange(30), r.randrange(30)),
            "description": " ".join(r.choices(ENGLISH, k=12)), "main": "lib/index.js",
            "dependencies": {word(r): "^%d.%d.0" % (r.randrange(9), r.randrange(20))
                             for _ in range(r.randrange(8))},
            "keywords": r.choices(ENGLISH + pk.idents, k=10), "license": "MIT"}, indent=2).encode()
        if len(data) < size:
            data += b"\n" + prose(r, pk, size - len(data))
    elif kind == "license":
        data = ("MIT License\n\nCopyright (c) %d %s\n\nPermission is hereby granted, free of "
                "charge, to any person obtaining a copy of this software and associated "
                "documentation files (the \"Software\"), to deal in the Software without "
                "restriction, including without limitation the rights to use, copy, modify, "
                "merge, publish, distribute, sublicense, and/or sell copies of the Software.\n"
                % (2000 + r.randrange(24), word(r))).encode()
    else:
        data = r.randbytes(size)
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, (1700000000, 1700000000))
    nbytes += len(data)
PY
fi
# the buildspec is a file of the source (-b names one inside it)
cat > "$tree/buildspec.yml" <<'YML'
version: 0.2
phases:
  build:
    commands:
      - "true"
artifacts:
  files:
    - '**/*'
YML
nfiles=$(find "$tree" -type f | wc -l)
nbytes=$(find "$tree" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d", s}')
export CODEBUILD_LOCAL_HOME=$work/state

run_zip() { rm -f "$work/zip.zip"; (cd "$tree" && zip -qr "$work/zip.zip" . 2>"$work/zip.err"); }
run_cbl() {
  rm -rf "$work/out"
  "$BIN" run "${runopts[@]}" -a "$work/out" "$tree" \
    >"$work/cbl.log" 2>&1 || {
    echo "codebuild-local run failed:" >&2; tail -20 "$work/cbl.log" >&2; exit 1; }
}

# warm-up: page cache, dynamic loader
run_zip
run_cbl
load=$(cut -d' ' -f1 /proc/loadavg)
TIMEFORMAT='%3R %3U %3S'  # wall, user, sys of the command and its children
: > "$work/t_zip"; : > "$work/t_cbl"
for _ in $(seq "$RUNS"); do
  { time run_zip; } 2>> "$work/t_zip"
  { time run_cbl; } 2>> "$work/t_cbl"
done
zt=$(awk '{print $1}' "$work/t_zip" | median)
ct=$(awk '{print $1}' "$work/t_cbl" | median)
zc=$(awk '{print $2 + $3}' "$work/t_zip" | median)
cc=$(awk '{print $2 + $3}' "$work/t_cbl" | median)
zs=$(stat -c %s "$work/zip.zip")
cs=$(stat -c %s "$work/out/artifacts.zip")
check="not run (no unzip)"
if command -v unzip >/dev/null; then
  if unzip -tqq "$work/out/artifacts.zip" >/dev/null 2>&1; then check="ok"; else check="FAILED"; fi
fi
entries=$(grep -o 'Found [0-9]* file(s)' "$work/cbl.log" | grep -o '[0-9]*' || echo "?")

awk -v f="$nfiles" -v b="$nbytes" -v n="$RUNS" -v zt="$zt" -v ct="$ct" -v zc="$zc" -v cc="$cc" \
    -v zs="$zs" -v cs="$cs" -v cpus="$(nproc)" -v load="$load" -v chk="$check" -v ent="$entries" 'BEGIN {
  tr = ct / zt; sr = cs / zs
  printf "tree:                    %d files, %.1f MB\n", f, b / 1e6
  printf "cpus:                    %d (load average before the runs: %s)\n", cpus, load
  printf "runs:                    %d, medians\n", n
  printf "                         wall s    cpu s        bytes\n"
  printf "zip -qr:                 %6.3f   %6.3f   %10d\n", zt, zc, zs
  printf "codebuild-local run -a:  %6.3f   %6.3f   %10d  (%s entries; unzip -t %s)\n", ct, cc, cs, ent, chk
  printf "time ratio:              %.2fx  (target <= 0.60x: %s)\n", tr, tr <= 0.60 ? "met" : "NOT met"
  printf "size ratio:              %.3fx (target <= 1.05x: %s)\n", sr, sr <= 1.05 ? "met" : "NOT met"
}'
