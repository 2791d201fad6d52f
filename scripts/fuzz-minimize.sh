#!/usr/bin/env bash
# Folds what scripts/fuzz.sh learned back into the committed seeds: for each target (all by
# default) the inputs of the working corpus target/fuzz/corpus/<target> that reach coverage
# fuzz/seeds/<target> does not are added to it (libFuzzer -merge=1, which keeps the fewest
# inputs), considering only inputs of at most MAX_SEED_BYTES (default 4096) and none
# byte-identical to a file of the shared test data (read in place, never committed). Run
# scripts/fuzz.sh first (it builds the targets and fills the working corpora).
#
#   scripts/fuzz-minimize.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
testdata=${KEYLIME_TESTDATA:-$root/../shared/testdata}
max=${MAX_SEED_BYTES:-4096}
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=$root/target/fuzz/$triple/release

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(sed -n 's/^name = "\(.*_.*\)"$/\1/p' fuzz/Cargo.toml)
fi
mapfile -t shared < <(find "$testdata" -type f -exec sha256sum {} + | cut -d' ' -f1 | sort -u)

for target in "${targets[@]}"; do
  seeds=fuzz/seeds/$target
  small=$(mktemp -d)
  find "$root/target/fuzz/corpus/$target" -type f -size -"$((max + 1))"c -exec cp -t "$small" {} +
  for f in "$small"/*; do
    [ -e "$f" ] || continue
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    if printf '%s\n' "${shared[@]}" | grep -qx "$sum"; then
      rm "$f"
    fi
  done
  before=$(find "$seeds" -type f | wc -l)
  "$bin_dir/$target" -merge=1 "$seeds" "$small" >/dev/null 2>&1
  rm -rf "$small"
  echo "$target: $before seeds, now $(find "$seeds" -type f | wc -l)" \
    "($(du -sk "$seeds" | cut -f1) KiB)"
done
