#!/usr/bin/env bash
# Fuzzes one libFuzzer target: the buildspec parser (fuzz_spec), the images'
# runtimes.yml parser (fuzz_runtimes, seeded like fuzz_spec), a report
# parser (fuzz_report_<format>) or the API request validator (fuzz_validate,
# seeded from tests/fuzz/validate/).
# Usage: scripts/fuzz.sh BIN SECONDS
#   BIN      a libFuzzer binary built from tests/fuzz/<name>.c (make fuzz)
#   SECONDS  total fuzzing time (default 60)
# fuzz_spec: seeds build-fuzz/corpus from every *.yml / *.yaml in the
# repository and in ${CBL_SHARED:-../shared} (conformance cases and wild
# buildspecs), with tests/fuzz/buildspec.dict; findings go to
# build-fuzz/artifacts/ (turn them into regression tests in
# tests/unit/test_spec.c).
# fuzz_report_*: seeds build-fuzz/corpus-<name> from tests/fixtures/reports/
# (every format's fixtures: wrong-format inputs exercise the error paths),
# with tests/fuzz/report_xml.dict or report_json.dict; findings go to
# build-fuzz/artifacts-<name>/ (regression tests in tests/unit/test_reports.c).
# Keeps what libFuzzer adds to the corpus between runs, and exits non-zero
# when libFuzzer finds a crash, leak, timeout or OOM.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ]; then
  echo "usage: $0 BIN [SECONDS]" >&2
  exit 2
fi
bin=$1
secs=${2:-60}
shared=${CBL_SHARED:-../shared}
name=$(basename "$bin")

if [ ! -x "$bin" ]; then
  echo "fuzz.sh: $bin is not an executable (build it with 'make fuzz')" >&2
  exit 2
fi

# Seed files are copied under a content-addressed name, so re-runs do not
# duplicate seeds and libFuzzer's own corpus files stay alongside.
seeds=0
seed() {
  local sum
  sum=$(sha1sum < "$1" | cut -c1-16)
  [ -e "$corpus/seed-$sum" ] || cp "$1" "$corpus/seed-$sum"
  seeds=$((seeds + 1))
}

dict=()
case "$name" in
fuzz_validate)
  # a byte choosing the operation, then a JSON request body
  corpus=build-fuzz/corpus-$name
  artifacts=build-fuzz/artifacts-$name
  mkdir -p "$corpus" "$artifacts"
  while IFS= read -r -d '' f; do
    seed "$f"
  done < <(find tests/fuzz/validate -type f -print0)
  ;;
fuzz_report_*)
  corpus=build-fuzz/corpus-$name
  artifacts=build-fuzz/artifacts-$name
  mkdir -p "$corpus" "$artifacts"
  while IFS= read -r -d '' f; do
    seed "$f"
  done < <(find tests/fixtures/reports -type f -print0)
  case "$name" in
  fuzz_report_cucumber | fuzz_report_simplecov) d=tests/fuzz/report_json.dict ;;
  *) d=tests/fuzz/report_xml.dict ;;
  esac
  [ -f "$d" ] && dict=(-dict="$d")
  ;;
*)
  # fuzz_spec, and fuzz_runtimes (the images' runtimes.yml): YAML seeds
  if [ "$name" = fuzz_spec ]; then
    corpus=build-fuzz/corpus
    artifacts=build-fuzz/artifacts
  else
    corpus=build-fuzz/corpus-$name
    artifacts=build-fuzz/artifacts-$name
  fi
  mkdir -p "$corpus" "$artifacts"
  roots=(.)
  for d in "$shared/conformance" "$shared/wild-buildspecs"; do
    [ -d "$d" ] && roots+=("$d")
  done
  while IFS= read -r -d '' f; do
    seed "$f"
  done < <(find "${roots[@]}" \
    \( -path ./build -o -path ./build-san -o -path ./build-fuzz -o -path ./.git -o -path ./fuzz-corpus \) -prune \
    -o -type f \( -name '*.yml' -o -name '*.yaml' \) -print0 2>/dev/null)
  [ -f tests/fuzz/buildspec.dict ] && dict=(-dict=tests/fuzz/buildspec.dict)
  ;;
esac
echo "fuzz.sh: $name: $seeds seed files, corpus $(find "$corpus" -type f | wc -l) inputs, ${secs}s"

before=$(find "$artifacts" -type f | wc -l)
"$bin" "$corpus" "${dict[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
  -detect_leaks=1 -max_len=16384 -artifact_prefix="$artifacts/" -print_final_stats=1
rc=$?
after=$(find "$artifacts" -type f | wc -l)

if [ $rc -ne 0 ] || [ "$after" -gt "$before" ]; then
  echo "fuzz.sh: $name: libFuzzer exited $rc; new findings in $artifacts/:" >&2
  ls -t "$artifacts" | head -n 5 >&2
  [ $rc -ne 0 ] && exit $rc
  exit 1
fi
echo "fuzz.sh: $name: no crash in ${secs}s"
