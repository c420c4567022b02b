#!/usr/bin/env bash
# Cost of the sandbox: the trivial 4-phase build (commands `true`) with the
# sandbox on and its default network (its own network namespace behind the
# slirp4netns NAT), with --network host (no network namespace), with
# --network none (a namespace, loopback only), off (--sandbox none), and
# `bash -c 'true; true; true; true'`, N runs each (default 20), interleaved.
# Prints medians, what each adds per build over --sandbox none, and ratios.
# Target (issue 13): the whole sandbox, NAT included, adds under 15 ms per
# build over --sandbox none (10 ms without a network namespace, "Sandbox").
# Usage: bench/sandbox.sh [BIN] [N]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${1:-build/codebuild-local}
N=${2:-20}
BIN=$(abs_path "$BIN")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trivial_buildspec "$work/src"
export CODEBUILD_LOCAL_HOME="$work/state"

"$BIN" run "$work/src" >/dev/null 2>&1 || { echo "the sandboxed build fails here:"; "$BIN" run "$work/src"; exit 1; }
"$BIN" run --sandbox none "$work/src" >/dev/null 2>&1
modes=(nat host none off)
declare -A args=([nat]="" [host]="--network host" [none]="--network none" [off]="--sandbox none")
for m in "${modes[@]}" bash; do : > "$work/$m"; done
for _ in $(seq "$N"); do
  for m in "${modes[@]}"; do
    # shellcheck disable=SC2086
    t0=$(now_us); "$BIN" run ${args[$m]} "$work/src" >/dev/null 2>&1; t1=$(now_us); echo $((t1 - t0)) >> "$work/$m"
  done
  t0=$(now_us); bash -c 'true; true; true; true'; t1=$(now_us); echo $((t1 - t0)) >> "$work/bash"
done
nat=$(median < "$work/nat"); host=$(median < "$work/host"); none=$(median < "$work/none")
off=$(median < "$work/off"); b=$(median < "$work/bash")
awk -v nat="$nat" -v host="$host" -v none="$none" -v off="$off" -v b="$b" -v n="$N" 'BEGIN {
  printf "runs:                                  %d each\n", n
  printf "sandbox, default network (netns + NAT): %.2f ms (median)\n", nat / 1000
  printf "sandbox, --network host:               %.2f ms (median)\n", host / 1000
  printf "sandbox, --network none (netns):       %.2f ms (median)\n", none / 1000
  printf "sandbox off (--sandbox none):          %.2f ms (median)\n", off / 1000
  printf "bash -c baseline:                      %.2f ms (median)\n", b / 1000
  printf "sandbox adds (default network):        %.2f ms per build (target < 15 ms)\n", (nat - off) / 1000
  printf "sandbox adds (--network host):         %.2f ms per build\n", (host - off) / 1000
  printf "sandbox adds (--network none):         %.2f ms per build\n", (none - off) / 1000
  printf "network namespace + NAT cost:          %.2f ms over --network host\n", (nat - host) / 1000
  printf "ratios:                                default/off %.2fx, host/off %.2fx, none/off %.2fx, default/bash %.1fx\n", nat / off, host / off, none / off, nat / b
}'
