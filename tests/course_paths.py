"""Paths to the course's files, for the tests (a module of its own: `conftest` is ambiguous
once tests/e2e/ has a conftest.py too)."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist.npz"
#: The course the tests read: this repository, or a generated variant of it given by
#: VAE_TP_TEST_COURSE (tests/test_variants.py runs the exercise, judge and check tests on copies
#: of the course whose master has other sizes).
COURSE = Path(os.environ.get("VAE_TP_TEST_COURSE") or ROOT).resolve()
MASTER = COURSE / "source" / "vae" / "vae_tp.ipynb"
STUDENT = COURSE / "notebooks" / "vae_tp.ipynb"
SOLUTIONS = COURSE / "solutions"


def master_sizes() -> dict[str, int]:
    """The master's parameters cell (`latent_dim`, `intermediate_dim`, ...): the tests' fixtures
    take their sizes from it, never from numbers of their own."""
    from vaetp.course import master_parameters

    return master_parameters(MASTER)


def run_without_keras(script: str) -> None:
    """Run `script` in a fresh Python, as the judge runs, and fail unless it succeeds without
    having imported Keras or TensorFlow (the judge reads records, it never runs a model)."""
    import subprocess
    import sys

    check = "\nimport sys\nassert not [m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow')]\n"
    done = subprocess.run([sys.executable, "-c", script + check], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
