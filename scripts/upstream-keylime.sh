#!/usr/bin/env bash
# Installs upstream Keylime 7.14.3 (the Python verifier, registrar and tenant) from PyPI into
# a virtualenv, for the interoperability tests. Idempotent: a complete venv is recognised by
# its marker file and left alone. The venv's path is the last line printed on stdout.
#
#   KEYLIME_UPSTREAM_VENV   where the venv lives (default ~/.cache/keylime-upstream/7.14.3)
#   PYTHON                  interpreter for the venv (default: Debian's /usr/bin/python3)
#
# The wheel declares no dependencies, so they are listed here, pinned to versions the tests
# have run with. `gpg` (GPGME's binding, imported by upstream's policy signing module) has
# no usable wheel on PyPI: Debian's python3-gpg is linked into the venv, which is why the venv
# uses Debian's interpreter. Debian packages upstream calls at run time are installed when
# missing: tpm2-tools (tpm2_eventlog for measured boot) and libefivar1 (device paths).
set -euo pipefail

KEYLIME_VERSION=7.14.3
VENV="${KEYLIME_UPSTREAM_VENV:-$HOME/.cache/keylime-upstream/$KEYLIME_VERSION}"

# Runtime dependencies of keylime 7.14.3 (from its imports), pinned.
PINS=(
  "keylime==$KEYLIME_VERSION"
  "cryptography==50.0.2"
  "tornado==6.6.1"
  "SQLAlchemy==2.1.9"
  "alembic==1.20.1"
  "PyYAML==6.0.4"
  "requests==2.34.2"
  "packaging==26.4"
  "psutil==7.2.2"
  "lark==1.3.1"
  "pyasn1==0.6.5"
  "pyasn1_modules==0.4.2"
  "Jinja2==3.1.6"
  "jsonschema==4.26.0"
  "typing_extensions==4.16.0"
  "pyzmq==27.3.0"
)

MARKER=.keylime-upstream-complete
# shellcheck source=lib/pinned-venv.sh
. "$(dirname "$0")/lib/pinned-venv.sh"

venv_lock
if venv_current "$VENV/bin/python" -c 'import keylime.tenant, keylime.cloud_verifier_tornado, gpg'; then
  echo "$VENV"
  exit 0
fi

# Debian packages: the interpreter's venv module, GPGME's binding, tools upstream runs.
need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
[ -d /usr/lib/python3/dist-packages/gpg ] || need_pkgs+=(python3-gpg)
have tpm2_eventlog || need_pkgs+=(tpm2-tools)
ldconfig -p 2>/dev/null | grep -q 'libefivar\.so\.1' || need_pkgs+=(libefivar1)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need_pkgs+=(python3-venv)
apt_install "${need_pkgs[@]}"

venv_build "${PYTHON:-/usr/bin/python3}"

# GPGME's binding from Debian, visible in the venv without the rest of dist-packages.
site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
ln -sfn /usr/lib/python3/dist-packages/gpg "$site/gpg"

"$VENV/bin/python" -c 'import keylime.tenant, keylime.cloud_verifier_tornado, keylime.web.registrar_server, gpg' >&2
for cmd in keylime_verifier keylime_registrar keylime_tenant; do
  [ -x "$VENV/bin/$cmd" ] || { echo "$VENV/bin/$cmd missing after install" >&2; exit 1; }
done
venv_mark_complete
log "upstream Keylime $KEYLIME_VERSION ready"
echo "$VENV"
