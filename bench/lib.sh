# bench/lib.sh - helpers shared by the benchmark scripts (sourced).

# now_us: wall clock in microseconds
now_us() { local t; t=$(date +%s%N); echo $((t / 1000)); }

# median < file-of-numbers
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# abs_path PATH: PATH made absolute
abs_path() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }

# trivial_buildspec DIR: the 4-phase buildspec whose commands are `true`
trivial_buildspec() {
  mkdir -p "$1"
  cat > "$1/buildspec.yml" <<'YML'
version: 0.2
phases:
  install:
    commands:
      - true
  pre_build:
    commands:
      - true
  build:
    commands:
      - true
  post_build:
    commands:
      - true
YML
}
