"""Shared set-up of the test suite: where the data comes from, and paths to the course files.

The tests never touch the network: they read the full MNIST from ../shared/data/mnist.npz
(as CI provides it) or, on a machine without it, the sample bundled with vaetp.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from course_paths import COURSE, ROOT, SHARED_MNIST  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))  # run_notebook.py and generate.py are importable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if not os.environ.get("VAE_TP_MNIST"):
    os.environ["VAE_TP_MNIST"] = str(SHARED_MNIST) if SHARED_MNIST.exists() else "sample"


def pytest_report_header(config):  # noqa: ARG001 - pytest hook signature
    return [f"MNIST for the notebook tests: VAE_TP_MNIST={os.environ['VAE_TP_MNIST']}",
            f"course under test: {COURSE}"]
