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
APT_PKGS="libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libglib2.0-0 libxrender1"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "bootstrap: apt-get install$missing"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing) >/dev/null
  else
    echo "bootstrap: missing system packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
  fi
fi

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
  BROWSER_PKGS="chromium chromium-driver"
  missing=""
  for p in $BROWSER_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
      echo "bootstrap: apt-get install$missing"
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing) >/dev/null
    else
      echo "bootstrap: missing system packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
      exit 1
    fi
  fi
  "$VENV/bin/python" -c "import selenium" 2>/dev/null \
    || { "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt "selenium>=4.20,<4.52" 2>&1 \
      | grep -v "^WARNING: Location" || true; }
  "$VENV/bin/python" -c "import selenium" || { echo "bootstrap: selenium install failed" >&2; exit 1; }
fi
