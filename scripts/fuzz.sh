#!/usr/bin/env bash
# Fuzzes the buildspec parser.
# Usage: scripts/fuzz.sh BIN SECONDS
#   BIN      a libFuzzer binary built from tests/fuzz/fuzz_spec.c (make fuzz)
#   SECONDS  total fuzzing time (default 60)
# Seeds build-fuzz/corpus from every *.yml / *.yaml in the repository and in
# ${CBL_SHARED:-../shared} (conformance cases and wild buildspecs), keeps
# what libFuzzer adds to the corpus between runs, and exits non-zero when
# libFuzzer finds a crash, leak, timeout or OOM (the input is kept in
# build-fuzz/artifacts/; turn it into a regression test in
# tests/unit/test_spec.c).
set -uo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ]; then
  echo "usage: $0 BIN [SECONDS]" >&2
  exit 2
fi
bin=$1
secs=${2:-60}
shared=${CBL_SHARED:-../shared}
corpus=build-fuzz/corpus
artifacts=build-fuzz/artifacts
mkdir -p "$corpus" "$artifacts"

if [ ! -x "$bin" ]; then
  echo "fuzz.sh: $bin is not an executable (build it with 'make fuzz')" >&2
  exit 2
fi

# Seed corpus: copy each YAML file under a content-addressed name, so re-runs
# do not duplicate seeds and libFuzzer's own corpus files stay alongside.
seeds=0
roots=(.)
for d in "$shared/conformance" "$shared/wild-buildspecs"; do
  [ -d "$d" ] && roots+=("$d")
done
while IFS= read -r -d '' f; do
  sum=$(sha1sum < "$f" | cut -c1-16)
  [ -e "$corpus/seed-$sum" ] || cp "$f" "$corpus/seed-$sum"
  seeds=$((seeds + 1))
done < <(find "${roots[@]}" \
  \( -path ./build -o -path ./build-san -o -path ./build-fuzz -o -path ./.git -o -path ./fuzz-corpus \) -prune \
  -o -type f \( -name '*.yml' -o -name '*.yaml' \) -print0 2>/dev/null)
echo "fuzz.sh: $seeds seed files, corpus $(find "$corpus" -type f | wc -l) inputs, ${secs}s"

dict=()
[ -f tests/fuzz/buildspec.dict ] && dict=(-dict=tests/fuzz/buildspec.dict)

before=$(find "$artifacts" -type f | wc -l)
"$bin" "$corpus" "${dict[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
  -detect_leaks=1 -max_len=16384 -artifact_prefix="$artifacts/" -print_final_stats=1
rc=$?
after=$(find "$artifacts" -type f | wc -l)

if [ $rc -ne 0 ] || [ "$after" -gt "$before" ]; then
  echo "fuzz.sh: libFuzzer exited $rc; new findings in $artifacts/:" >&2
  ls -t "$artifacts" | head -n 5 >&2
  [ $rc -ne 0 ] && exit $rc
  exit 1
fi
echo "fuzz.sh: no crash in ${secs}s"
