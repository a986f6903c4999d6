"""End-to-end tests of the course where its users use it.

- test_lab_browser.py: JupyterLab 4 in Debian's Chromium, driven by Playwright.
- test_hub_roundtrip.py: a real JupyterHub with the nbgrader exchange, one instructor, two students.

They need what `tools/install_e2e.sh` installs (Chromium, Playwright, JupyterHub, the proxy) and
run with `make e2e`, which sets VAE_TP_E2E=1. A plain `pytest` (`make test`) skips them with a
reason; with VAE_TP_E2E=1 a missing dependency is an error, so that CI never passes an e2e run
that did not run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("VAE_TP_CHROMIUM", "/usr/bin/chromium"))
PROXY = REPO / "tools" / "e2e" / "node_modules" / ".bin" / "configurable-http-proxy"


def missing_dependencies() -> list[str]:
    missing = []
    for module in ("playwright", "jupyterhub"):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"Python package {module!r}")
    if not CHROMIUM.exists():
        missing.append(str(CHROMIUM))
    if not PROXY.exists() and shutil.which("configurable-http-proxy") is None:
        missing.append("configurable-http-proxy")
    return missing


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    e2e_items = [item for item in items if here in Path(str(item.fspath)).parents]
    for item in e2e_items:
        item.add_marker(pytest.mark.e2e)
    if not e2e_items:
        return
    if os.environ.get("VAE_TP_E2E") != "1":
        skip = pytest.mark.skip(reason="end-to-end test: run it with `make e2e` (after tools/install_e2e.sh)")
        for item in e2e_items:
            item.add_marker(skip)
        return
    missing = missing_dependencies()
    if missing:
        raise pytest.UsageError("VAE_TP_E2E=1 but the e2e dependencies are missing: "
                                + ", ".join(missing) + ". Run tools/install_e2e.sh.")


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: end-to-end test in a browser or on JupyterHub (make e2e)")
