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

MARKER=.keylime-schemathesis-complete
# shellcheck source=lib/pinned-venv.sh
. "$(dirname "$0")/lib/pinned-venv.sh"

venv_lock
if venv_current "$VENV/bin/schemathesis" --version; then
  echo "$VENV/bin/schemathesis"
  exit 0
fi

python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
venv_build "${PYTHON:-python3}"
"$VENV/bin/schemathesis" --version >&2
venv_mark_complete
log "schemathesis $SCHEMATHESIS_VERSION ready"
echo "$VENV/bin/schemathesis"
