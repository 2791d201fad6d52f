#!/usr/bin/env bash
# Installs schemathesis (the property-based API fuzzer the test suite runs against the real
# registrar and verifier with their OpenAPI descriptions) from PyPI into a virtualenv.
# Idempotent: a complete venv is recognised by its marker file and left alone. The path of
# the `schemathesis` executable is the last line printed on stdout.
#
#   KEYLIME_SCHEMATHESIS_VENV   where the venv lives (default ~/.cache/keylime-schemathesis/4.32.5)
#   PYTHON                      interpreter for the venv (default: python3 on PATH)
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5
VENV="${KEYLIME_SCHEMATHESIS_VENV:-$HOME/.cache/keylime-schemathesis/$SCHEMATHESIS_VERSION}"

# schemathesis and everything it pulls in, pinned to the versions the suite has run with.
PINS=(
  "schemathesis==$SCHEMATHESIS_VERSION"
  "anyio==4.16.0"
  "certifi==2026.10.19.post1"
  "charset-normalizer==3.5.3"
  "click==8.5.1"
  "graphql-core==3.3.2"
  "harfile==0.6.0"
  "hypothesis==6.170.27"
  "hypothesis-graphql==0.13.5"
  "idna==3.21"
  "iniconfig==2.3.1"
  "jsonschema_rs==0.60.3"
  "markdown-it-py==4.3.0"
  "MarkupSafe==3.0.4"
  "mdurl==0.1.2"
  "packaging==26.4"
  "pluggy==1.7.0"
  "Pygments==2.21.0"
  "pyrate-limiter==4.6.0"
  "pytest==9.2.0"
  "PyYAML==6.0.4"
  "requests==2.34.2"
  "rich==15.0.0"
  "sortedcontainers==2.4.0"
  "typing_extensions==4.16.0"
  "urllib3==2.8.0"
  "Werkzeug==3.1.9"
)

mkdir -p "$(dirname "$VENV")"
# One builder at a time: test processes may run this script concurrently.
exec 9>"$VENV.lock"
flock 9

want_marker="$(printf '%s\n' "${PINS[@]}")"
marker="$VENV/.keylime-schemathesis-complete"
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want_marker" ] \
  && "$VENV/bin/schemathesis" --version >/dev/null 2>&1; then
  echo "$VENV/bin/schemathesis"
  exit 0
fi

log() { echo "==> $*" >&2; }

if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  log "installing Debian package python3-venv"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq -o DPkg::Lock::Timeout=300 >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
    python3-venv >&2
fi

PY="${PYTHON:-python3}"
log "creating $VENV with $PY"
rm -rf "$VENV"
"$PY" -m venv "$VENV" >&2
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${PINS[@]}" >&2
"$VENV/bin/schemathesis" --version >&2
printf '%s\n' "${PINS[@]}" >"$marker"
log "schemathesis $SCHEMATHESIS_VERSION ready"
echo "$VENV/bin/schemathesis"
