"""Paths to the course's files, for the tests (a module of its own: `conftest` is ambiguous
once tests/e2e/ has a conftest.py too)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"
MASTER = ROOT / "source" / "vae" / "vae_tp.ipynb"
STUDENT = ROOT / "notebooks" / "vae_tp.ipynb"
