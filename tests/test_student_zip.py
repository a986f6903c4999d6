"""The zip an instructor hands out on an LMS (`make release-zip`) runs on a student's laptop: it
carries the notebook, the helper package the notebook imports, the pinned requirements and a
README. (tests/e2e/test_student_zip_laptop.py installs it in a clean virtual environment and runs
the notebook.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from vaetp.grading import release

ROOT = Path(__file__).resolve().parents[1]


def grade(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VAE_TP_SHIP_SOLUTIONS", None)
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "grade.py"), "--course",
                           str(course), *args], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


@pytest.fixture(scope="module")
def unzipped(tmp_path_factory) -> Path:
    course = tmp_path_factory.mktemp("course")
    grade(course, "release")
    done = grade(course, "zip")
    assert "README.md" in done.stdout
    folder = tmp_path_factory.mktemp("laptop")
    with zipfile.ZipFile(course / "vae_release.zip") as archive:
        archive.extractall(folder)
    return folder


def test_the_zip_holds_the_notebook_solutions_readme_requirements_and_helper_package(unzipped):
    names = {p.relative_to(unzipped).as_posix() for p in unzipped.rglob("*") if p.is_file()}
    shipped = {f"solutions/{p.name}" for p in (ROOT / "solutions").glob("*.py")}
    assert {n for n in names if not n.startswith("vae/vaetp/")} == {
        "vae/vae_tp.ipynb", "README.md", "requirements.txt", *shipped}
    assert (unzipped / "vae" / "vae_tp.ipynb").read_bytes() == \
        (ROOT / "notebooks" / "vae_tp.ipynb").read_bytes()
    # the helper package, without the instructor's grader (and without caches)
    helper = {n.removeprefix("vae/vaetp/") for n in names if n.startswith("vae/vaetp/")}
    assert {"__init__.py", "data.py", "checks.py", "plots.py", "mnist_sample.npz",
            "grading/reference.py"} <= helper
    assert not [n for n in helper if n.startswith("grading/") and
                n.removeprefix("grading/") not in release.STUDENT_GRADING_MODULES]
    assert not [n for n in helper if "__pycache__" in n or n.endswith(".pyc")]


def test_the_zips_requirements_are_the_courses_pins_for_the_notebook(unzipped):
    pins = [line for line in (unzipped / "requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    course = (ROOT / "requirements.txt").read_text().splitlines()
    assert pins == course[:course.index(release.GRADING_REQUIREMENTS_MARKER)][-len(pins):]
    assert {p.split("==")[0] for p in pins} >= {"tensorflow", "keras", "numpy", "matplotlib",
                                                "jupyterlab", "ipykernel"}
    assert "nbgrader" not in "\n".join(pins)


def test_the_notebook_imports_the_helper_package_from_its_own_folder(unzipped):
    """Every `vaetp` module the notebook imports is found next to it, in the zip's copy (the
    folder JupyterLab starts the kernel in), with no install step."""
    nb = nbformat.read(unzipped / "vae" / "vae_tp.ipynb", as_version=4)
    modules = sorted({m for c in nb.cells if c.cell_type == "code"
                      for line in re.findall(r"^from vaetp import (.+)$", c.source, re.M)
                      for m in line.split(", ")})
    assert len(modules) >= 5, modules
    script = ("import vaetp, vaetp.grading.reference\n"
              f"from vaetp import {', '.join(modules)}\n"
              "print(vaetp.__file__)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", script], cwd=unzipped / "vae", env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert Path(done.stdout.strip()).resolve() == (unzipped / "vae" / "vaetp" / "__init__.py").resolve()


def test_the_readme_says_how_to_set_up_run_and_hand_in(unzipped):
    readme = (unzipped / "README.md").read_text()
    for step in ("python3 -m venv .venv", "-m pip install -r requirements.txt",
                 "jupyter lab vae/vae_tp.ipynb", "VAE_TP_MNIST", "Hand in `vae/vae_tp.ipynb`"):
        assert step in readme, step


def test_requirements_without_the_grading_marker_are_refused_by_name():
    with pytest.raises(ValueError, match="grading and tests"):
        release.student_requirements("numpy==2\n")
