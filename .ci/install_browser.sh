#!/usr/bin/env bash
# Headless Chromium (Debian packages) + Playwright for Python, for the `browser` test marker.
#
#   bash .ci/install_browser.sh          # idempotent: installs only what is missing
#
# Chromium comes from apt (`chromium`, `chromium-driver`); Playwright's Python package goes into the
# project venv (.venv, or $CHIMERA_VENV). Playwright's own browser download (`playwright install`) is
# never used: the tests launch /usr/bin/chromium through `executable_path`.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CHIMERA_VENV:-$REPO/.venv}"
PLAYWRIGHT_VERSION="1.65.2"

log() { echo "install_browser: $*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else log "not root and no sudo: cannot apt-get install"; fi
fi

if command -v chromium >/dev/null 2>&1 && [ -x /usr/bin/chromium ] && command -v chromedriver >/dev/null 2>&1; then
  log "chromium already installed: $(chromium --version 2>/dev/null || echo '?')"
else
  log "installing chromium and chromium-driver from apt"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
  log "installed: $(chromium --version 2>/dev/null || echo '?')"
fi

if [ ! -x "$VENV/bin/python" ]; then
  log "no virtualenv at $VENV (create it first: python3.11 -m venv .venv && .venv/bin/pip install -e '.[dev]')"
  exit 1
fi
have="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("playwright"))' 2>/dev/null || true)"
if [ "$have" = "$PLAYWRIGHT_VERSION" ]; then
  log "playwright $have already in $VENV"
else
  log "installing playwright==$PLAYWRIGHT_VERSION into $VENV"
  "$VENV/bin/python" -m pip install -q "playwright==$PLAYWRIGHT_VERSION"
fi
log "ready: CHIMERA_CHROMIUM=/usr/bin/chromium"
