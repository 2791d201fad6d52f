#!/usr/bin/env bash
# IMA verification throughput, ours against upstream Keylime 7.14.3, on the same files in one
# run: generates an ima-ng measurement list and a runtime policy (gen_ima), times one
# attestation covering the whole list through keylime_ima (ima_throughput) and through
# upstream's Python verifier code (upstream_ima.py, in the venv of
# scripts/upstream-keylime.sh), and prints both figures in entries/s per core and the ratio.
#
#   ENTRIES        entries in the list (default 100000)
#   POLICY_PATHS   paths in the runtime policy (default 100000)
#   BENCH_CPU      CPU both sides are pinned to with taskset (default 1; "" = no pinning)
#   BENCH_OUT      keep the generated files and JSON results here (default: a temporary dir)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ENTRIES="${ENTRIES:-100000}"
POLICY_PATHS="${POLICY_PATHS:-100000}"
BENCH_CPU="${BENCH_CPU-1}"

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

log "preparing upstream Keylime 7.14.3"
venv="$(bash "$root/scripts/upstream-keylime.sh" | tail -n 1)"
[ -x "$venv/bin/python" ] || { echo "no Python in $venv" >&2; exit 1; }

pin=()
if [ -n "$BENCH_CPU" ] && command -v taskset >/dev/null 2>&1; then
  pin=(taskset -c "$BENCH_CPU")
fi

log "generating $ENTRIES entries and a $POLICY_PATHS-path policy in $out"
"$bin/gen_ima" --out "$out" --entries "$ENTRIES" --policy-paths "$POLICY_PATHS" >/dev/null

files=(--log "$out/ascii_runtime_measurements" --policy "$out/runtime_policy.json"
  --expected "$out/expected.json" --bank sha256)

log "timing ours"
"${pin[@]}" "$bin/ima_throughput" "${files[@]}" >"$out/ours.json"
log "timing upstream"
# upstream warns about its missing configuration files on stderr; shown only on failure
if ! "${pin[@]}" "$venv/bin/python" "$root/bench/upstream_ima.py" "${files[@]}" \
  >"$out/upstream.json" 2>"$out/upstream.stderr"; then
  cat "$out/upstream.stderr" >&2
  exit 1
fi

python3 "$root/bench/compare.py" ima "$out/ours.json" "$out/upstream.json"
