#!/usr/bin/env bash
# Installs what the demo and the test suite need on a Debian machine, only what is missing.
# Safe to run again: it checks before it installs.
set -euo pipefail

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }

have swtpm || need_pkgs+=(swtpm)
have swtpm_setup || need_pkgs+=(swtpm-tools)
have tpm2_getcap || need_pkgs+=(tpm2-tools)
have curl || need_pkgs+=(curl)
have openssl || need_pkgs+=(openssl)
have psql || need_pkgs+=(postgresql-client)
have c++ || need_pkgs+=(g++) # libFuzzer, built by the fuzz targets (scripts/fuzz.sh)
# libfaketime, preloaded into the verifier by the clock-step fault test (never linked)
have faketime || need_pkgs+=(faketime)

if [ "${#need_pkgs[@]}" -gt 0 ]; then
  echo "==> installing Debian packages: ${need_pkgs[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

if ! have cargo; then
  echo "cargo is not installed: install the Rust toolchain (rustup) first" >&2
  exit 1
fi
