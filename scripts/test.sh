#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit, integration and end-to-end tests
# (swtpm as the TPM, SQLite, PostgreSQL and MariaDB for real, real TLS on loopback).
# Installs what is missing first. Exit status is non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
./scripts/ensure-databases.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> building binaries (end-to-end tests start them)"
cargo build --workspace --bins --locked

# Modules of one crate must not import each other in a cycle (tools/import-cycles; the
# few cycles kept on purpose are listed with their reasons in its allowed-cycles.txt).
echo "==> import cycles between modules"
cargo run --locked -q -p keylime-import-cycles --bin import-cycles -- .

# A short run of every fuzz target (the long runs are scripts/fuzz.sh with more seconds);
# the committed seeds and crash reproducers run with the tests below, in keylime-fuzz's
# tests. Before the tests, so the run closes on nextest's summary.
echo "==> fuzzing (${KEYLIME_FUZZ_SECONDS:-5}s per target)"
./scripts/fuzz.sh "${KEYLIME_FUZZ_SECONDS:-5}"

echo "==> tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  # Doctests first (nextest does not run them), so the run closes on nextest's summary.
  cargo test --workspace --doc --locked
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi
