#!/usr/bin/env bash
# Creates tests/django_project/.venv with the pinned Django and psycopg from requirements.txt.
# Idempotent: does nothing when the venv already has exactly those versions. Safe to run from
# several test processes at once (flock). Progress goes to stderr; the last (only) line on
# stdout is the venv's python.
#
#   PYTHON=/usr/bin/python3 tests/django_project/setup.sh   # pick the interpreter (default python3)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
REQ="$HERE/requirements.txt"
PY="${PYTHON:-python3}"
VPY="$VENV/bin/python"

log() { printf '[django setup] %s\n' "$*" >&2; }

# One setup at a time (the Rust tests may start several at once).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$HERE/.venv.lock"
  flock 9
fi

# Exit 0 when every `name==version` pin in requirements.txt is installed in the venv and
# Django and psycopg import.
venv_ok() {
  [ -x "$VPY" ] || return 1
  "$VPY" - "$REQ" <<'PYEOF' >/dev/null 2>&1
import re, sys
from importlib.metadata import version, PackageNotFoundError
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s;]+)", line)
    if not m:
        sys.exit(f"unpinned requirement: {line}")
    name, _, want = m.groups()
    try:
        have = version(name)
    except PackageNotFoundError:
        sys.exit(f"{name} missing")
    if have != want:
        sys.exit(f"{name} {have} != {want}")
import django, psycopg  # noqa: E401 (the binary build must load)
PYEOF
}

make_venv() {
  "$PY" -m venv --clear "$VENV"
}

if venv_ok; then
  log "venv up to date: $VENV"
else
  if ! "$PY" --version >/dev/null 2>&1; then
    log "no python: '$PY' not found (set PYTHON=...)"
    exit 1
  fi
  log "creating venv at $VENV with $("$PY" --version 2>&1) ($(command -v "$PY"))"
  if ! make_venv >&2; then
    # Debian's python3 lacks ensurepip until python3-venv is installed.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      log "python -m venv failed; installing python3-venv"
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y -qq python3-venv >&2 \
        || { apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2; }
      make_venv >&2
    else
      log "python -m venv failed (install python3-venv)"
      exit 1
    fi
  fi
  log "installing $(grep -v '^\s*#' "$REQ" | xargs)"
  "$VPY" -m pip install --disable-pip-version-check --no-input -q -r "$REQ" >&2
  if ! venv_ok; then
    log "venv check failed after install"
    "$VPY" -m pip list >&2 || true
    exit 1
  fi
  log "venv ready"
fi

echo "$VPY"
