#!/usr/bin/env bash
# Pull + unpack of a ~100 MB (unpacked; 3/4 of the files random bytes),
# 4-layer image from a registry on 127.0.0.1 (Debian's docker-registry):
# `codebuild-local images pull` vs
# `skopeo copy docker://... oci:DIR` + `umoci unpack`, N runs each (default 3,
# alternating, each from an empty store), medians and their ratio.
# Target (issue "Images"): <= 1.0.  Also prints the cost of resolving the
# image once it is unpacked (`images inspect --offline`, a whole process).
# Usage: bench/images.sh [BIN] [N] [MB]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${1:-build/codebuild-local}
N=${2:-3}
MB=${3:-100}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(abs_path "$BIN")
for t in docker-registry skopeo umoci; do
  command -v "$t" >/dev/null || { echo "bench/images.sh: $t is not installed" >&2; exit 1; }
done
work=$(mktemp -d /var/tmp/cbl-images-XXXXXX)
reg_pid=
cleanup() { [ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
export HOME="$work/home" XDG_RUNTIME_DIR="$work/home"
mkdir -p "$HOME"

# the image: 4 gzip layers of files, half random bytes, half repetitive text
/usr/bin/python3 - "$ROOT/tests/e2e" "$work/layout" "$MB" <<'PY'
import random, sys
sys.path.insert(0, sys.argv[1])
import registry as R
out, mb = sys.argv[2], int(sys.argv[3])
rnd = random.Random(7)
lay = R.Layout(out)
layers = [(R.base_entries("bench"), "gzip")]
per_layer = mb * 1000 * 1000 // 4
for l in range(4):
    ents, total, i = [("data%d" % l, "d", None)], 0, 0
    while total < per_layer:
        size = rnd.choice([4096, 16384, 65536, 262144, 1048576])
        if i % 4:
            data = rnd.randbytes(size)
        else:
            line = ("layer %d file %d " % (l, i)).encode() * 8 + b"\n"
            data = (line * (size // len(line) + 1))[:size]
        ents.append(("data%d/f%05d" % (l, i), "f", data))
        total += size
        i += 1
    if l == 0:
        layers[0] = (layers[0][0] + ents, "gzip")
    else:
        layers.append((ents, "gzip"))
lay.tag(lay.image(layers, arch=R.host_arch()), "v1")
PY
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 200); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.05; done
ref="127.0.0.1:$port/bench/big:v1"
skopeo copy --quiet --dest-tls-verify=false "oci:$work/layout:v1" "docker://$ref"
bytes=$(du -sb "$work/registry/docker/registry/v2/blobs" | cut -f1)

rootless=
[ "$(id -u)" = 0 ] || rootless=--rootless
: > "$work/cbl"; : > "$work/ref"
for i in $(seq "$N"); do
  rm -rf "$work/state" "$work/oci" "$work/root"
  sync
  t0=$(now_us)
  CODEBUILD_LOCAL_HOME="$work/state" "$BIN" images pull -q "$ref" >/dev/null
  t1=$(now_us); echo $((t1 - t0)) >> "$work/cbl"
  sync
  t0=$(now_us)
  skopeo copy --quiet --src-tls-verify=false "docker://$ref" "oci:$work/oci:v1"
  umoci unpack $rootless --image "$work/oci:v1" "$work/root" >/dev/null
  t1=$(now_us); echo $((t1 - t0)) >> "$work/ref"
done
# resolving the unpacked image again (what a second build pays), a whole process each
: > "$work/hit"
for i in $(seq 10); do
  t0=$(now_us)
  CODEBUILD_LOCAL_HOME="$work/state" "$BIN" images inspect --offline "$ref" >/dev/null
  t1=$(now_us); echo $((t1 - t0)) >> "$work/hit"
done
# a second build in the image: from starting `run` to its first command
# (the time of the --json stream's first command-start event).  Target < 20 ms.
mkdir -p "$work/src"
printf 'version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n' > "$work/src/buildspec.yml"
CODEBUILD_LOCAL_HOME="$work/state" "$BIN" run -i "$ref" "$work/src" >/dev/null 2>&1 ||
  { echo "bench/images.sh: a build in the image failed" >&2; exit 1; }
: > "$work/ttfc"
for i in $(seq 10); do
  t0=$(now_us)
  CODEBUILD_LOCAL_HOME="$work/state" "$BIN" run --json -i "$ref" "$work/src" > "$work/events" 2>/dev/null
  /usr/bin/python3 - "$t0" "$work/events" >> "$work/ttfc" <<'PY'
import datetime, json, sys
t0 = int(sys.argv[1])
for line in open(sys.argv[2]):
    ev = json.loads(line)
    if ev.get("event") == "command-start":
        t = datetime.datetime.strptime(ev["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        print(int(t.timestamp() * 1e6) - t0)
        break
PY
done
f=$(median < "$work/ttfc")
c=$(median < "$work/cbl"); r=$(median < "$work/ref"); h=$(median < "$work/hit")
unpacked=$(du -sb "$work/root/rootfs" | cut -f1)
awk -v c="$c" -v r="$r" -v h="$h" -v f="$f" -v n="$N" -v b="$bytes" -v u="$unpacked" 'BEGIN {
  printf "image: 4 gzip layers, %.1f MB in the registry, %.1f MB unpacked; %d runs each (medians)\n", b / 1e6, u / 1e6, n
  printf "codebuild-local images pull (pull + unpack): %8.1f ms\n", c / 1000
  printf "skopeo copy + umoci unpack:                  %8.1f ms\n", r / 1000
  printf "ratio:                                       %8.2f (target <= 1.0)\n", c / r
  printf "already unpacked: images inspect --offline:  %8.1f ms (whole process)\n", h / 1000
  printf "second build, start to first command:        %8.1f ms (target < 20, 10 runs, median)\n", f / 1000
}'
