#!/usr/bin/env bash
# Create/refresh the project's virtual environment and the system libraries it needs.
# Idempotent: re-installs only when pyproject.toml or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
# --browser (make ui-check): also a real browser for the page test: Debian's chromium + chromium-driver and
# selenium < 4.52 (4.52 needs a certifi release newer than some package indexes carry).
BROWSER=0
[ "${1:-}" = "--browser" ] && BROWSER=1

# System libraries for headless OpenGL rendering (pyrender via EGL + Mesa llvmpipe); pyrender imports pyglet,
# whose X11 code needs libXrender even headless. The same list is in Dockerfiles/pipeline.Dockerfile.
# apt_install REQUIRED PKG...: install the Debian packages that are missing (as root); without root, name them
# and fail when REQUIRED is 1 (else only warn).
apt_install() {
  local required=$1 p missing=""
  shift
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  [ -n "$missing" ] || return 0
  if [ "$(id -u)" = 0 ]; then
    echo "bootstrap: apt-get install$missing"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing) >/dev/null
  else
    echo "bootstrap: missing system packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
    [ "$required" = 1 ] && exit 1
  fi
  return 0
}
APT_PKGS="libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libglib2.0-0 libxrender1"
# shellcheck disable=SC2086
apt_install 0 $APT_PKGS

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
stamp="$VENV/.facet-stamp"
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing the project into $VENV (torch 2.14.1 + torchvision 0.29.1 pinned)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[all,dev]" 2>&1 \
    | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -c "import facet_lib, torch, torchvision, open_clip, kfp, kserve" \
    || { echo "bootstrap: install check failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi

if [ "$BROWSER" = 1 ]; then
  apt_install 1 chromium chromium-driver
  "$VENV/bin/python" -c "import selenium" 2>/dev/null \
    || { "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt "selenium>=4.20,<4.52" 2>&1 \
      | grep -v "^WARNING: Location" || true; }
  "$VENV/bin/python" -c "import selenium" || { echo "bootstrap: selenium install failed" >&2; exit 1; }
fi
