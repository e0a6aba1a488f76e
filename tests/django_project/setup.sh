#!/usr/bin/env bash
# Creates the venv of one Django series with the exact pins of its requirements file:
#
#   DJANGO_SERIES=5.2 (default)  .venv    requirements.txt    (Django 5.2 LTS)
#   DJANGO_SERIES=6              .venv-6  requirements-6.txt  (Django 6.x, Python >= 3.12)
#
# Idempotent: does nothing when the venv already has exactly those versions. Safe to run from
# several test processes at once (one flock per venv). Progress goes to stderr; the last
# (only) line on stdout is the venv's python.
#
#   PYTHON=/usr/bin/python3 tests/django_project/setup.sh   # pick the interpreter (default python3)
#   DJANGO_SERIES=6 tests/django_project/setup.sh           # finds a Python >= 3.12 by itself:
#       PYTHON when it is >= 3.12, else python3.13 / python3.12 on PATH, else pyenv's 3.13 or
#       3.12 (`pyenv prefix`), else python3 when it is >= 3.12; fails when there is none (it
#       never downloads a Python).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SERIES="${DJANGO_SERIES:-5.2}"

log() { printf '[django setup %s] %s\n' "$SERIES" "$*" >&2; }

case "$SERIES" in
  5.2 | 5)
    VENV="$HERE/.venv"
    REQ="$HERE/requirements.txt"
    LOCK="$HERE/.venv.lock"
    MIN_PY="3.10"
    ;;
  6 | 6.*)
    VENV="$HERE/.venv-6"
    REQ="$HERE/requirements-6.txt"
    LOCK="$HERE/.venv-6.lock"
    MIN_PY="3.12"
    ;;
  *)
    log "DJANGO_SERIES must be 5.2 or 6, got '$SERIES'"
    exit 1
    ;;
esac
VPY="$VENV/bin/python"

# Exit 0 when "$1" runs and is at least Python $MIN_PY.
py_at_least() {
  "$1" -c "import sys; sys.exit(0 if sys.version_info[:2] >= tuple(map(int, '$MIN_PY'.split('.'))) else 1)" \
    >/dev/null 2>&1
}

# The interpreter to build the venv with (printed on stdout), or exit 1 with the reason.
pick_python() {
  if [ "$MIN_PY" != "3.12" ]; then
    # 5.2: PYTHON or python3, as before.
    echo "${PYTHON:-python3}"
    return 0
  fi
  local tried=() candidate pyenv prefix
  if [ -n "${PYTHON:-}" ]; then
    if py_at_least "$PYTHON"; then
      echo "$PYTHON"
      return 0
    fi
    tried+=("PYTHON=$PYTHON")
  fi
  for candidate in python3.13 python3.12; do
    # A pyenv shim is on PATH even when that version is not selected: run it to know.
    if command -v "$candidate" >/dev/null 2>&1 && py_at_least "$candidate"; then
      command -v "$candidate"
      return 0
    fi
    tried+=("$candidate")
  done
  pyenv="$(command -v pyenv 2>/dev/null || true)"
  if [ -z "$pyenv" ] && [ -x "${PYENV_ROOT:-${HOME:-}/.pyenv}/bin/pyenv" ]; then
    pyenv="${PYENV_ROOT:-${HOME:-}/.pyenv}/bin/pyenv"
  fi
  if [ -n "$pyenv" ]; then
    for candidate in 3.13 3.12; do
      prefix="$("$pyenv" prefix "$candidate" 2>/dev/null | head -n1 || true)"
      if [ -n "$prefix" ] && py_at_least "$prefix/bin/python3"; then
        echo "$prefix/bin/python3"
        return 0
      fi
      tried+=("pyenv $candidate")
    done
  else
    tried+=("pyenv (not installed)")
  fi
  if command -v python3 >/dev/null 2>&1 && py_at_least python3; then
    command -v python3
    return 0
  fi
  tried+=("python3")
  log "Django $SERIES needs Python >= $MIN_PY and none was found (tried: ${tried[*]});" \
    "install python3.12 or newer, or set PYTHON=/path/to/python3.12+"
  return 1
}

# One setup per venv at a time (the Rust tests may start several at once).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$LOCK"
  flock 9
fi

# Exit 0 when the venv's python is new enough, every `name==version` pin of the requirements
# file is installed in it, and Django, psycopg, PyMySQL, redis and django_redis import.
venv_ok() {
  [ -x "$VPY" ] || return 1
  py_at_least "$VPY" || return 1
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
# The binary builds must load, and django_redis's client must import with this redis-py.
import django, psycopg, pymysql, redis, django_redis, django_redis.client  # noqa: E401
PYEOF
}

if venv_ok; then
  log "venv up to date: $VENV"
else
  PY="$(pick_python)" || exit 1
  if ! "$PY" --version >/dev/null 2>&1; then
    log "no python: '$PY' not found (set PYTHON=...)"
    exit 1
  fi
  if ! py_at_least "$PY"; then
    log "$PY is $("$PY" --version 2>&1); Django $SERIES needs Python >= $MIN_PY (set PYTHON=...)"
    exit 1
  fi
  make_venv() {
    "$PY" -m venv --clear "$VENV"
  }
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
