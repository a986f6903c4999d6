"""A student unzips `vae_release.zip` on a laptop, follows its README (a clean virtual
environment, `pip install -r requirements.txt`) and runs the notebook: it runs to the end in fast
mode, with the solutions loaded as a stuck student's `%load` lines would, and with nothing of this
repository on the path.

Needs PyPI (or pip's cache) for the install, as the student does. MNIST: VAE_TP_MNIST when set
(CI's copy, offline), else the sample bundled in the zip's helper package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
from run_notebook import load_solutions  # noqa: E402


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{argv}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_a_student_runs_the_zip_in_a_clean_virtual_environment(tmp_path):
    course, laptop = tmp_path / "course", tmp_path / "laptop"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("VAE_TP_SHIP_SOLUTIONS", None)
    for step in ("release", "zip"):
        run([sys.executable, str(REPO / "tools" / "grade.py"), "--course", str(course), step],
            env=env, timeout=300)
    with zipfile.ZipFile(course / "vae_release.zip") as archive:
        archive.extractall(laptop)

    # the README's two set-up lines, in a clean environment (no PYTHONPATH, no repository)
    student_env = {k: v for k, v in os.environ.items()
                   if k not in ("PYTHONPATH", "VIRTUAL_ENV", "VAE_TP_SANDBOX")}
    student_env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    run([sys.executable, "-m", "venv", ".venv"], cwd=laptop, env=student_env, timeout=300)
    python = laptop / ".venv" / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", "-r", "requirements.txt"],
        cwd=laptop, env=student_env, timeout=1500)

    # the notebook, each exercise's %load line run (a student who is stuck everywhere)
    notebook = laptop / "vae" / "vae_tp.ipynb"
    loaded = load_solutions(nbformat.read(notebook, as_version=4), notebook.parent)
    nbformat.write(loaded, laptop / "vae" / "loaded.ipynb")
    student_env.update(VAE_TP_FAST="1", MPLBACKEND="Agg",
                       VAE_TP_MNIST=os.environ.get("VAE_TP_MNIST", "sample"))
    run([str(laptop / ".venv" / "bin" / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.timeout=900", "--output", "executed.ipynb", "loaded.ipynb"],
        cwd=laptop / "vae", env=student_env, timeout=1800)
    executed = nbformat.read(laptop / "vae" / "executed.ipynb", as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors[0]
    # the kernel imported the zip's helper package, not an installed one
    helper = run([str(python), "-c", "import vaetp; print(vaetp.__file__)"],
                 cwd=laptop / "vae", env=student_env).stdout.strip()
    assert Path(helper).resolve().is_relative_to((laptop / "vae" / "vaetp").resolve())
    checks = [o for c in executed.cells for o in c.get("outputs", [])
              if "All checks passed" in o.get("text", "")]
    assert len(checks) >= 7, len(checks)
