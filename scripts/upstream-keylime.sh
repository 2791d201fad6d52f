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

mkdir -p "$(dirname "$VENV")"
# One builder at a time: test processes run this script concurrently.
exec 9>"$VENV.lock"
flock 9

# The marker records what was installed: a change of the list rebuilds the venv.
want_marker="$(printf '%s\n' "${PINS[@]}")"
marker="$VENV/.keylime-upstream-complete"
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want_marker" ] \
  && "$VENV/bin/python" -c 'import keylime.tenant, keylime.cloud_verifier_tornado, gpg' 2>/dev/null; then
  echo "$VENV"
  exit 0
fi

log() { echo "==> $*" >&2; }

# Debian packages: the interpreter's venv module, GPGME's binding, tools upstream runs.
need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
[ -d /usr/lib/python3/dist-packages/gpg ] || need_pkgs+=(python3-gpg)
have tpm2_eventlog || need_pkgs+=(tpm2-tools)
ldconfig -p 2>/dev/null | grep -q 'libefivar\.so\.1' || need_pkgs+=(libefivar1)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need_pkgs+=(python3-venv)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  log "installing Debian packages: ${need_pkgs[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq -o DPkg::Lock::Timeout=300 >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
    "${need_pkgs[@]}" >&2
fi

PY="${PYTHON:-/usr/bin/python3}"
log "creating $VENV with $PY"
rm -rf "$VENV"
"$PY" -m venv "$VENV" >&2
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${PINS[@]}" >&2

# GPGME's binding from Debian, visible in the venv without the rest of dist-packages.
site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
ln -sfn /usr/lib/python3/dist-packages/gpg "$site/gpg"

"$VENV/bin/python" -c 'import keylime.tenant, keylime.cloud_verifier_tornado, keylime.web.registrar_server, gpg' >&2
for cmd in keylime_verifier keylime_registrar keylime_tenant; do
  [ -x "$VENV/bin/$cmd" ] || { echo "$VENV/bin/$cmd missing after install" >&2; exit 1; }
done
printf '%s\n' "${PINS[@]}" >"$marker"
log "upstream Keylime $KEYLIME_VERSION ready"
echo "$VENV"
