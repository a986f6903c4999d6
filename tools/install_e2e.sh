#!/usr/bin/env bash
# Install what the end-to-end tests (tests/e2e/, `make e2e`) need, from the package registries:
#   - Debian's Chromium (Playwright drives /usr/bin/chromium: its own browser download is not used);
#   - JupyterHub and Playwright into the course's .venv (requirements-e2e.txt);
#   - configurable-http-proxy, JupyterHub's proxy, into tools/e2e/node_modules (package-lock.json).
# Idempotent; needs root for apt-get (CI runs as root). VENV overrides the environment (.venv).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"

if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/bwrap ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install_e2e: chromium or bubblewrap is missing; as root: apt-get install chromium bubblewrap" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium bubblewrap >/dev/null
fi

"$VENV/bin/python" -m pip install --quiet -r requirements-e2e.txt

if [ ! -x tools/e2e/node_modules/.bin/configurable-http-proxy ]; then
    command -v npm >/dev/null || { echo "install_e2e: npm is missing (Node.js 20 or later)" >&2; exit 1; }
    npm ci --prefix tools/e2e --no-audit --no-fund --loglevel=error
fi

echo "e2e dependencies: $(/usr/bin/chromium --version 2>/dev/null | head -1);" \
     "$("$VENV/bin/python" -c 'import jupyterhub; print("JupyterHub", jupyterhub.__version__)');" \
     "configurable-http-proxy $(tools/e2e/node_modules/.bin/configurable-http-proxy --version)"
