#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (every one, or those named) for SECONDS_PER_TARGET seconds
# each (default 60), one at a time, and prints per target the executions run, the corpus
# size and any crash. Exit status is non-zero if any target crashed (panic, timeout, OOM).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Installs cargo-fuzz when missing. Runs on the stable toolchain: RUSTC_BOOTSTRAP=1 lets it
# accept the flags cargo-fuzz passes. Built without a sanitizer by default (every crate
# fuzzed forbids unsafe code, so AddressSanitizer adds cost and finds nothing);
# FUZZ_SANITIZER=address turns it on. Everything it writes is under target/fuzz: the build,
# the working corpora (corpus/<target>, kept between runs), crash artifacts
# (artifacts/<target>/) and logs (logs/<target>.log).
#
# Seeds: fuzz/seeds/<target>/ (small generated inputs, committed) and, copied at run time,
# the matching real files of the shared test data (KEYLIME_TESTDATA, default
# ../shared/testdata beside the repository root).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=60
if [ "$#" -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
testdata=${KEYLIME_TESTDATA:-$root/../shared/testdata}
sanitizer=${FUZZ_SANITIZER:-none}
out=$root/target/fuzz

if ! [ -d "$testdata" ]; then
  echo "fuzz.sh: shared test data not found at $testdata (set KEYLIME_TESTDATA)" >&2
  exit 2
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi

echo "==> building ${#targets[@]} fuzz targets (sanitizer: $sanitizer)"
cargo fuzz build --fuzz-dir fuzz --sanitizer "$sanitizer" --target-dir "$out"
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=$out/$triple/release

# The test-data folders (and file filter) that seed each target.
testdata_dirs() {
  case "$1" in
    tpm_quote_string | attestation_quote) echo quotes ;;
    ima_parse | ima_check) echo ima ;;
    ima_policy) echo policy keys ;;
    ima_allowlist) echo policy ;;
    eventlog_parse | eventlog_mb_check) echo eventlog ;;
    eventlog_refstate) echo mbpolicy ;;
    pki_ek_cert) echo certs ;;
  esac
}

# Copies the test-data seeds of target $1 into directory $2 (flattened names). ima_check
# reads a flags byte first, so its seeds get one prepended (cycling through the flags).
copy_testdata() {
  local target=$1 dest=$2 n=0
  for dir in $(testdata_dirs "$target"); do
    while IFS= read -r -d '' f; do
      # the event-log folder also holds other tools' expected outputs (JSON, YAML)
      case "$target:$f" in
        eventlog_parse:*/expected/* | eventlog_mb_check:*/expected/*) continue ;;
        eventlog_parse:*.json | eventlog_mb_check:*.json) continue ;;
      esac
      local name=${f#"$testdata"/}
      name=${name//\//__}
      if [ "$target" = ima_check ]; then
        { printf "\\x$(printf %02x $((n % 16)))"; cat "$f"; } >"$dest/$name"
      else
        cp "$f" "$dest/$name"
      fi
      n=$((n + 1))
    done < <(find "$testdata/$dir" -type f -print0)
  done
}

summary=()
failed=0
mkdir -p "$out/logs"
for target in "${targets[@]}"; do
  corpus=$out/corpus/$target
  artifacts=$out/artifacts/$target
  seeds=$(mktemp -d)
  mkdir -p "$corpus" "$artifacts"
  copy_testdata "$target" "$seeds"
  log=$out/logs/$target.log
  echo "==> fuzzing $target for ${seconds}s"
  status=0
  "$bin_dir/$target" "$corpus" "$root/fuzz/seeds/$target" "$seeds" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
  rm -rf "$seeds"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ -z "$execs" ]; then
    execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
  fi
  files=$(find "$corpus" -type f | wc -l)
  if [ "$status" -eq 0 ]; then
    result=ok
  else
    failed=1
    result="CRASH (exit $status): $(ls "$artifacts" | head -3 | tr '\n' ' ')see $log"
    grep -m1 -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" || true
  fi
  summary+=("$(printf '%-20s %12s execs  %6s corpus files  %s' "$target" "${execs:-?}" "$files" "$result")")
done

echo "==> fuzz summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit "$failed"
