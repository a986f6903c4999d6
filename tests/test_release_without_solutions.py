"""A graded release without solutions tells a stuck student what to do in that course, never
"uncomment the `%load` line" (which would fail there: no solutions/ folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
COURSE_HELP = "ask on the course forum, thread 'TP VAE', or at Thursday's office hours."


def test_a_release_without_solutions_says_what_to_do_when_stuck_instead_of_load(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VAE_TP_SHIP_SOLUTIONS", None)
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "grade.py"), "--course",
                           str(tmp_path), "release", "--no-solutions", "--stuck", COURSE_HELP],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    released = nbformat.read(tmp_path / "release" / "vae" / "vae_tp.ipynb", as_version=4)
    student = nbformat.read(ROOT / "notebooks" / "vae_tp.ipynb", as_version=4)
    hints = [c for c in student.cells if c.cell_type == "markdown" and "*Stuck?*" in c.source]
    assert len(hints) >= 7  # one per exercise
    prose = "\n".join(c.source for c in released.cells if c.cell_type == "markdown")
    assert prose.count("Ask on the course forum, thread 'TP VAE'") == len(hints)
    assert "Uncomment the `%load` line" not in prose and "`%load` as before" not in prose
    assert "solutions/" not in prose
    # the cells nbgrader tracks (exercises, tests, questions) are exactly the committed
    # release's: their checksums, kept in the gradebook, tell an unanswered exercise
    tracked = [(c.cell_type, c.source, c.metadata["nbgrader"]) for c in student.cells
               if "nbgrader" in c.metadata]
    assert tracked == [(c.cell_type, c.source, c.metadata["nbgrader"]) for c in released.cells
                       if "nbgrader" in c.metadata]
    assert not (tmp_path / "release" / "solutions").exists()
