#!/usr/bin/env bash
# The cost of checking every request against the service model
# (store/validate.c, issue "API: ... input validation for every operation"):
# per request kind, the microseconds store_api_validate takes against the
# microseconds json_loadb takes to parse the same body (the baseline every
# request already pays), and their ratio; then what the validation of
# bench/api.sh's request costs out of that benchmark's per-request budget at
# its 5,000 requests/s target (200 us).  bench/api.sh measures the server
# with the checks in place.  Not part of `make test`.
# Usage: bench/validate.sh [ITERATIONS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-200000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$ROOT"
make -s build/libcodebuild-local.a
flags() { make -s --no-print-directory --eval 'print-%: ; @echo $($*)' "print-$1"; }
# shellcheck disable=SC2046
cc $(flags CFLAGS) -o "$work/validate_bench" bench/validate_bench.c build/libcodebuild-local.a $(flags LDLIBS)
out=$("$work/validate_bench" "$N")
echo "$out"
us=$(echo "$out" | awk '/BatchGetBuilds/ {for (i = 1; i <= NF; i++) if ($i == "validate") print $(i + 1)}')
awk -v us="$us" 'BEGIN { printf "BatchGetBuilds validation: %.2f us of the 200 us a request may take at 5,000 requests/s (ratio %.4f)\n", us, us / 200 }'
