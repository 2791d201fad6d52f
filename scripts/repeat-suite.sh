#!/usr/bin/env bash
# Runs the nextest part of the test command (scripts/test.sh) N times in a row (default 5)
# to show that a green run is green every time: builds once, then prints each run's wall
# time and result and a final "K of N green" line. Exit status is non-zero if any run failed.
#
#   scripts/repeat-suite.sh [N] [nextest arguments...]
#   scripts/repeat-suite.sh 3 -p keylime-e2e -p keylime-interop   # a part of the suite
#
# Each run's output is kept in target/repeat-suite/run-<i>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-5}
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N] [nextest arguments...]" >&2; exit 2; }
shift $(( $# > 0 ? 1 : 0 ))
scope=("$@")
[ ${#scope[@]} -gt 0 ] || scope=(--workspace)

command -v cargo-nextest >/dev/null 2>&1 || { echo "cargo-nextest is not installed" >&2; exit 1; }
./scripts/ensure-databases.sh

echo "==> building binaries and tests once"
cargo build --workspace --bins --locked
cargo nextest run --locked --no-run "${scope[@]}"

logs=target/repeat-suite
mkdir -p "$logs"
green=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  if cargo nextest run --locked --no-fail-fast "${scope[@]}" >"$logs/run-$i.log" 2>&1; then
    result=green
    green=$((green + 1))
  else
    result=FAILED
  fi
  secs=$(( $(date +%s) - start ))
  summary=$(grep -E '^ +Summary ' "$logs/run-$i.log" | tail -n1 | sed -E 's/^ +//' || true)
  printf 'run %d of %d: %s in %dm%02ds  %s\n' "$i" "$runs" "$result" $((secs / 60)) $((secs % 60)) "$summary"
  if [ "$result" = FAILED ]; then
    grep -E '^ +(FAIL|TIMEOUT|SIGSEGV|SIGABRT) ' "$logs/run-$i.log" | sort -u | sed 's/^/    /' || true
  fi
done
echo "$green of $runs green"
[ "$green" -eq "$runs" ]
