#!/usr/bin/env bash
# Measured-boot verification time per log, ours against upstream Keylime 7.14.3, on the same
# real UEFI event logs from the shared test data (read in place) in one run: parse+replay and
# parse+replay+policy (built-in `example` policy, reference state made from each log) through
# keylime_eventlog (eventlog_throughput) and through upstream's Python path (upstream_mb.py:
# tpm2_eventlog, libefivar enrichment, elchecking), printing µs per log and the ratios.
#
#   MB_LOGS     space-separated logs (default: the list below, relative to the test data)
#   TESTDATA    the shared test data directory (default: ../shared/testdata beside the repo)
#   BENCH_CPU   CPU both sides are pinned to with taskset (default 1; "" = no pinning)
#   BENCH_OUT   keep the JSON results here (default: a temporary dir)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TESTDATA="${TESTDATA:-$root/../shared/testdata}"
BENCH_CPU="${BENCH_CPU-1}"

# Real logs both sides parse; the first six are accepted by the example policy against
# their own reference state (upstream's and ours), the others are timed for parse+replay.
default_logs=(
  eventlog/keylime/mb_log.bin
  eventlog/keylime-tests/mb_log.bin
  eventlog/keylime/binary_bios_measurements-secureboot
  eventlog/keylime-tests/mb_log_secureboot.bin
  eventlog/python3-uefi-eventlog/css-flex14vm4-bootlog.bin
  eventlog/tpm2-tools/event-bootorder.bin
  eventlog/keylime/binary_bios_measurements
  eventlog/rust-keylime/uefi_log.bin
  eventlog/go-tpm-tools/rhel8-uefi.bin
  eventlog/go-tpm-tools/ubuntu-2104-no-dbx.bin
  eventlog/go-attestation/coreos_36_shielded_vm_no_secure_boot_eventlog
)
if [ -n "${MB_LOGS:-}" ]; then
  read -r -a rel_logs <<<"$MB_LOGS"
else
  rel_logs=("${default_logs[@]}")
fi
logs=()
for rel in "${rel_logs[@]}"; do
  f="$TESTDATA/$rel"
  [ -f "$f" ] || { echo "missing event log $f" >&2; exit 1; }
  logs+=("$f")
done

if [ -n "${BENCH_OUT:-}" ]; then
  out="$BENCH_OUT"
  mkdir -p "$out"
else
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
fi

log() { echo "==> $*" >&2; }

log "building the benchmarks (release)"
(cd "$root" && cargo build --release --quiet -p keylime-bench --bins)
bin="${CARGO_TARGET_DIR:-$root/target}/release"

log "preparing upstream Keylime 7.14.3 (with tpm2-tools and libefivar1)"
venv="$(bash "$root/scripts/upstream-keylime.sh" | tail -n 1)"
[ -x "$venv/bin/python" ] || { echo "no Python in $venv" >&2; exit 1; }
command -v tpm2_eventlog >/dev/null || { echo "tpm2_eventlog (tpm2-tools) missing" >&2; exit 1; }

pin=()
if [ -n "$BENCH_CPU" ] && command -v taskset >/dev/null 2>&1; then
  pin=(taskset -c "$BENCH_CPU")
fi

log "timing ours on ${#logs[@]} logs"
"${pin[@]}" "$bin/eventlog_throughput" --bank sha256 "${logs[@]}" >"$out/ours.json"
log "timing upstream on ${#logs[@]} logs"
# upstream warns about its missing configuration files on stderr; shown only on failure
if ! "${pin[@]}" "$venv/bin/python" "$root/bench/upstream_mb.py" --bank sha256 "${logs[@]}" \
  >"$out/upstream.json" 2>"$out/upstream.stderr"; then
  cat "$out/upstream.stderr" >&2
  exit 1
fi

python3 "$root/bench/compare.py" mb "$out/ours.json" "$out/upstream.json"
