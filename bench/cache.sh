#!/usr/bin/env bash
# Build cache speed (issue 7), at the module level: bench/cache_bench.c
# (linked against build/libcodebuild-local.a with the Makefile's own flags)
# drives cache/ on a generated node_modules-like tree (default 10,000 files,
# ~130 MB; a ~10 MB, ~770-file tree for the size comparison), against
# `tar -cf - DIR | zstd -T0 -3 > /dev/null` of the same tree in the same run.
#
# Prints medians of RUNS (default 3) and ratios:
#   - save, sandbox: the first save of a build whose overlay upper dir holds
#     the tree (renames + SHA-256 of the new content + listing), with the
#     default durability (syncfs of the freshly written tree: the worst case)
#     and without;  target <= 1.0x tar|zstd;
#   - save, sandbox, one file added: a hit, then a save of the old snapshot
#     (hard links; directories re-created) plus one new file;
#   - save, no sandbox: the first save copies the tree (reflink where the
#     filesystem can) and hashes it;
#   - restore, sandbox: cache_restore (lookup + overlay dirs) and, as root,
#     the overlay mount itself, for 10 MB and 130 MB (target < 50 ms,
#     independent of size);  restore, no sandbox: the copy.
# And, at the end, the restore inside a real sandboxed build (as root).
#
# The tree is generated offline and deterministically (seeded, /usr/bin/python3):
# packages with package.json, README, LICENSE, JS-like text of lognormal
# sizes (windows of a vocabulary-built text pool) and ~10% incompressible
# binaries.  mtimes are fixed (1985-10-26, as npm sets them).
#
# Usage: bench/cache.sh [RUNS]
# Environment: BENCH_FILES (10000), BENCH_BYTES (130000000), BENCH_BIN (the
#              binary for the build-level restore; build/codebuild-local), BENCH_DIR (where, default /var/tmp;
#              the work directory goes; default $TMPDIR or /tmp), BENCH_KEEP=1.
# Not a test: `make bench` can run it, `make test` does not.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
root=$(dirname "$here")
RUNS=${1:-3}
FILES=${BENCH_FILES:-10000}
BYTES=${BENCH_BYTES:-130000000}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
command -v zstd >/dev/null || { echo "bench/cache.sh: zstd is not installed" >&2; exit 2; }

# not /tmp: a build sees a private /tmp, and the build-level part reads the trees
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/cbl-cache-bench.XXXXXX")
if [ "${BENCH_KEEP:-}" = 1 ]; then
  echo "work directory: $work"
else
  trap 'rm -rf "$work"' EXIT
fi

make -s -C "$root" build/libcodebuild-local.a
flags() { make -s --no-print-directory -C "$root" --eval 'print-%: ; @echo $($*)' "print-$1"; }
# shellcheck disable=SC2046
(cd "$root" && cc $(flags CFLAGS) -o "$work/cache_bench" bench/cache_bench.c build/libcodebuild-local.a $(flags LDLIBS))
B=$work/cache_bench

gen() { # gen DIR FILES BYTES
  "$PY" - "$1" "$2" "$3" <<'PY'
import os, random, sys
root, nfiles, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(20240607)
words = ("function return const let var if else for while this new typeof undefined null true "
         "false module exports require async await class extends import from export default try "
         "catch throw Object Array String Promise prototype length push call apply arguments").split()
words += ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz_$", k=rng.randint(2, 12))) for _ in range(3000)]
punct = ["(", ")", "{", "}", ";", ",", ".", " = ", " === ", " && ", " || ", "[", "]", ": ", " => ",
         "\n", "\n  ", " "]
pool = "".join(rng.choice(words) + rng.choice(punct) for _ in range(1_200_000)).encode()[:8_000_000]
npkg = max(1, nfiles // 25)
pkgs = ["node_modules/" + ("@s%d/" % rng.randrange(40) if rng.random() < 0.15 else "") +
        "pkg%04d" % i for i in range(npkg)]
plan = []
for p in pkgs:
    plan += [(p + "/package.json", "text", rng.randint(400, 3000)), (p + "/LICENSE", "text", 1100),
             (p + "/README.md", "text", int(rng.lognormvariate(8.0, 1.0)))]
dirs = ["lib", "dist", "src", "lib/internal", "esm", "cjs", "types", ""]
while len(plan) < nfiles:
    p = rng.choice(pkgs)
    d = rng.choice(dirs)
    binary = rng.random() < 0.10
    ext = rng.choice([".node", ".wasm", ".png"]) if binary else rng.choice([".js", ".d.ts", ".js.map", ".min.js"])
    size = min(int(rng.lognormvariate(8.4, 1.3)), 3_000_000)
    plan.append((p + "/" + (d + "/" if d else "") + "f%05d" % len(plan) + ext, "bin" if binary else "text", size))
scale = total / sum(s for _, _, s in plan)
mtime = 499162500  # 1985-10-26T08:15:00Z, npm's fixed mtime
for rel, kind, size in plan:
    size = int(size * scale)
    if kind == "bin":
        data = rng.randbytes(size)
    else:
        off = rng.randrange(0, max(1, len(pool) - size))
        data = pool[off:off + size]
        while len(data) < size:
            data += pool[:size - len(data)]
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, (mtime, mtime))
PY
}

echo "cache.sh: generating trees in $work"
gen "$work/big" "$FILES" "$BYTES"
gen "$work/small" $((FILES / 13)) $((BYTES / 13))
size_of() { find "$1/node_modules" -type f -printf "%s\n" | awk "{s += \$1} END {print s}"; }
count_of() { find "$1/node_modules" -type f | wc -l; }
big_mb=$(( $(size_of "$work/big") / 1000000 )); big_n=$(count_of "$work/big")
small_mb=$(( $(size_of "$work/small") / 1000000 )); small_n=$(count_of "$work/small")
echo "cache.sh: big tree $big_n files, $big_mb MB; small tree $small_n files, $small_mb MB"
tar -cf - -C "$work/big" node_modules > /dev/null # page cache

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
: > "$work/t.tar"; : > "$work/t.ovl"; : > "$work/t.ovl.nd"; : > "$work/t.copy"; : > "$work/t.inc"
for run in $(seq "$RUNS"); do
  t0=$(now_us)
  tar -cf - -C "$work/big" node_modules | zstd -T0 -3 -q > /dev/null
  t1=$(now_us); echo $((t1 - t0)) >> "$work/t.tar"

  # the build has just written the tree (dirty in the page cache), as npm would
  for durable in 1 0; do
    rm -rf "$work/run" "$work/store"
    mkdir -p "$work/run"
    cp -a "$work/big/node_modules" "$work/run/"
    line=$("$B" save-overlay "$work/store" bench "$work/run" "$durable")
    s=$(echo "$line" | field seconds)
    echo "$s" | awk '{printf "%d\n", $1 * 1e6}' >> "$work/t.ovl$([ "$durable" = 1 ] || echo .nd)"
    echo "  run $run save, sandbox, durable=$durable: ${s}s  ($(echo "$line" | sed -n 's/.*log="\(.*\)"/\1/p'))"
  done

  # the next build adds one file: old snapshot hard-linked + the new file
  line=$("$B" save-overlay-change "$work/store" bench)
  s=$(echo "$line" | field seconds)
  echo "$s" | awk '{printf "%d\n", $1 * 1e6}' >> "$work/t.inc"
  echo "  run $run save, sandbox, one file added: ${s}s"

  rm -rf "$work/store"
  line=$("$B" save-copy "$work/store" bench "$work/big" 1)
  s=$(echo "$line" | field seconds)
  echo "$s" | awk '{printf "%d\n", $1 * 1e6}' >> "$work/t.copy"
  echo "  run $run save, no sandbox: ${s}s"
  echo "  run $run tar | zstd -T0 -3: $(( (t1 - t0) / 1000 )) ms"
done

# restore: entries for both sizes in one store
rm -rf "$work/rstore"
"$B" save-copy "$work/rstore" big "$work/big" 1 > /dev/null
"$B" save-copy "$work/rstore" small "$work/small" 1 > /dev/null
: > "$work/r.ovl.big"; : > "$work/r.ovl.small"; : > "$work/r.copy.big"; : > "$work/r.copy.small"
: > "$work/r.mnt.big"; : > "$work/r.mnt.small"
# a build starts on a quiet disk: flush what the saves above wrote first
sync
for run in $(seq "$RUNS"); do
  for sz in big small; do
    line=$("$B" restore-overlay "$work/rstore" "$sz")
    s=$(echo "$line" | field seconds); m=$(echo "$line" | field mount_seconds)
    awk -v s="$s" -v m="$m" 'BEGIN { printf "%d\n", (s + (m > 0 ? m : 0)) * 1e6 }' >> "$work/r.ovl.$sz"
    awk -v m="$m" 'BEGIN { printf "%d\n", (m > 0 ? m : 0) * 1e6 }' >> "$work/r.mnt.$sz"
  done
done
for run in $(seq "$RUNS"); do
  for sz in big small; do
    rm -rf "$work/dest"
    line=$("$B" restore-copy "$work/rstore" "$sz" "$work/dest")
    echo "$line" | field seconds | awk '{printf "%d\n", $1 * 1e6}' >> "$work/r.copy.$sz"
  done
done

tar_us=$(median < "$work/t.tar"); ovl=$(median < "$work/t.ovl"); ovl_nd=$(median < "$work/t.ovl.nd")
copy=$(median < "$work/t.copy"); inc=$(median < "$work/t.inc")
rob=$(median < "$work/r.ovl.big"); ros=$(median < "$work/r.ovl.small")
rcb=$(median < "$work/r.copy.big"); rcs=$(median < "$work/r.copy.small")
mounted=$(median < "$work/r.mnt.big")
echo
awk -v tar="$tar_us" -v ovl="$ovl" -v nd="$ovl_nd" -v copy="$copy" -v inc="$inc" -v rob="$rob" -v ros="$ros" \
    -v rcb="$rcb" -v rcs="$rcs" -v n="$big_n" -v mb="$big_mb" -v sn="$small_n" -v smb="$small_mb" \
    -v runs="$RUNS" -v mounted="$mounted" 'BEGIN {
  printf "tree:                              %d files, %d MB (small: %d files, %d MB); median of %d runs\n", n, mb, sn, smb, runs
  printf "tar -cf - | zstd -T0 -3:           %7.1f ms\n", tar / 1000
  printf "save, sandbox (overlay upper):     %7.1f ms  = %.2fx tar|zstd (durable: syncfs)   target <= 1.0x\n", ovl / 1000, ovl / tar
  printf "save, sandbox, not durable:        %7.1f ms  = %.2fx tar|zstd\n", nd / 1000, nd / tar
  printf "save, sandbox, one file added:     %7.1f ms  (every unchanged file hard-linked, every directory re-created)\n", inc / 1000
  printf "save, no sandbox (copy + hash):    %7.1f ms  = %.2fx tar|zstd\n", copy / 1000, copy / tar
  if (mounted > 0)
    printf "restore, sandbox, %3d MB:          %7.2f ms  (lookup + overlay dirs + overlay mount: %.2f ms)   target < 50 ms\n", mb, rob / 1000, mounted / 1000
  else
    printf "restore, sandbox, %3d MB:          %7.2f ms  (lookup + overlay dirs; not root: no mount timed)\n", mb, rob / 1000
  printf "restore, sandbox, %3d MB:          %7.2f ms  -> %.2fx the %d MB restore\n", smb, ros / 1000, rob / ros, mb
  printf "restore, no sandbox (copy), %3d MB: %6.1f ms\n", mb, rcb / 1000
  printf "restore, no sandbox (copy), %3d MB: %6.1f ms\n", smb, rcs / 1000
}'

# ---------------------------------------------------------------------------
# A real sandboxed build (root only): `codebuild-local run` of a buildspec
# whose cache path lies outside the source (an overlay mount), once to fill
# the cache with the tree, then RUNS more builds that restore it.  The restore
# time is read from the build's own log: from "Expanded cache path" to
# "Registering with agent" (lookup, overlay dirs, the mount into the running
# sandbox, the log lines).  Target < 50 ms, the same for both sizes.
BIN=${BENCH_BIN:-$root/build/codebuild-local}
if [ "$(id -u)" = 0 ] && [ -x "$BIN" ]; then
  for sz in big small; do
    src="$work/src-$sz"; mkdir -p "$src"
    cat > "$src/buildspec.yml" <<YML
version: 0.2
phases:
  build:
    commands:
      - test -d /root/.bench-cache/node_modules || cp -a $work/$sz/node_modules /root/.bench-cache/
cache:
  paths:
    - /root/.bench-cache/**/*
YML
    export CODEBUILD_LOCAL_HOME="$work/state-$sz"
    "$BIN" run "$src" > "$work/first-$sz.log" 2>&1 || { cat "$work/first-$sz.log"; exit 1; }
    : > "$work/b.$sz"
    for run in $(seq "$RUNS"); do
      "$BIN" run "$src" > "$work/run.log" 2>&1 || { cat "$work/run.log"; exit 1; }
      grep -qE "Cache restore /root/.bench-cache/\\*\\*/\\*: (hit|restored)" "$work/run.log" || { cat "$work/run.log"; exit 1; }
      "$PY" - "$work/run.log" >> "$work/b.$sz" <<'PY'
import re, sys
t = {}
for line in open(sys.argv[1]):
    m = re.match(r"\[Container\] \S+ (\d+):(\d+):(\d+)\.(\d+) (.*)", line)
    if not m:
        continue
    us = ((int(m.group(1)) * 60 + int(m.group(2))) * 60 + int(m.group(3))) * 1000000 + int(m.group(4))
    msg = m.group(5)
    if msg.startswith("Expanded cache path") and "a" not in t:
        t["a"] = us
    if msg.startswith("Registering with agent"):
        t["b"] = us
print(t["b"] - t["a"])
PY
    done
    unset CODEBUILD_LOCAL_HOME
  done
  bb=$(median < "$work/b.big"); bs=$(median < "$work/b.small")
  awk -v bb="$bb" -v bs="$bs" -v mb="$big_mb" -v smb="$small_mb" 'BEGIN {
    printf "restore in a sandboxed build, %3d MB: %6.2f ms   target < 50 ms\n", mb, bb / 1000
    printf "restore in a sandboxed build, %3d MB: %6.2f ms   (%.2fx the %d MB restore)\n", smb, bs / 1000, bb / bs, mb
  }'
else
  echo "restore in a sandboxed build: skipped (needs root and $BIN)"
fi
