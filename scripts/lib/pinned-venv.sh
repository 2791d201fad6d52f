# Shared by the scripts that install a pinned Python tool into a cached virtualenv
# (upstream-keylime.sh, schemathesis.sh). Source it after setting:
#   VENV    the venv's path
#   PINS    array of `name==version` requirements (the marker records them: a change of the
#           list rebuilds the venv)
#   MARKER  the marker file's name inside the venv

log() { echo "==> $*" >&2; }

# Takes the venv's lock for the rest of the script: test processes may install
# concurrently, and only one of them builds.
venv_lock() {
  mkdir -p "$(dirname "$VENV")"
  exec 9>"$VENV.lock"
  flock 9
}

# True when the venv was completed with exactly PINS and the check command ("$@") succeeds
# inside it.
venv_current() {
  local marker="$VENV/$MARKER"
  [ -f "$marker" ] && [ "$(cat "$marker")" = "$(printf '%s\n' "${PINS[@]}")" ] \
    && "$@" >/dev/null 2>&1
}

# Installs the named Debian packages (as root, or with sudo).
apt_install() {
  [ "$#" -gt 0 ] || return 0
  log "installing Debian packages: $*"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq -o DPkg::Lock::Timeout=300 >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 "$@" >&2
}

# Recreates the venv with interpreter $1 and installs PINS into it.
venv_build() {
  log "creating $VENV with $1"
  rm -rf "$VENV"
  "$1" -m venv "$VENV" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${PINS[@]}" >&2
}

# Records the venv as complete.
venv_mark_complete() {
  printf '%s\n' "${PINS[@]}" >"$VENV/$MARKER"
}
