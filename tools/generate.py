"""Generate every artefact that derives from the master notebook, or check that they are fresh.

    python tools/generate.py           # write them
    python tools/generate.py --check   # exit 1, naming the stale files, if any differ

The master notebook source/vae/vae_tp.ipynb (the instructor version, with the solution between
nbgrader's BEGIN/END SOLUTION markers) is the one source. From it come:

- its image attachments, refreshed from images/*.svg (the notebook stays self-contained, so
  its figures show in JupyterLab, Colab, nbgrader releases and feedback HTML alike);
- notebooks/vae_tp.ipynb, the student notebook: nbgrader's own release of the master
  (`nbgrader generate_assignment`, run in a scratch course folder with this repository's
  nbgrader_config.py);
- solutions/*.py, one per exercise cell: the solution region, under the file name that the
  cell's `# %load ../solutions/NAME.py` line asks for.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from vaetp.grading import markers

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "vae"
MASTER = ROOT / "source" / ASSIGNMENT / "vae_tp.ipynb"
STUDENT = ROOT / "notebooks" / "vae_tp.ipynb"
IMAGES = ROOT / "images"
SOLUTIONS = ROOT / "solutions"

ATTACHMENT_RE = re.compile(r"\]\(attachment:([^)\s]+)\)")
MIME = {".svg": "image/svg+xml", ".png": "image/png"}


def notebook_text(nb: nbformat.NotebookNode) -> str:
    """Serialise a notebook the way Jupyter does (1-space indent, trailing newline)."""
    return nbformat.writes(nb) + "\n"


def with_fresh_attachments(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Set each markdown cell's attachments to the images/ files its text refers to."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        names = ATTACHMENT_RE.findall(cell.source)
        if not names:
            cell.pop("attachments", None)
            continue
        attachments = {}
        for name in names:
            path = IMAGES / name
            if not path.exists():
                raise SystemExit(f"{MASTER.relative_to(ROOT)}: cell {cell.id} shows "
                                 f"attachment:{name}, but images/{name} does not exist.")
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            attachments[name] = {MIME[path.suffix]: data}
        cell["attachments"] = attachments
    return nb


def release(master_text: str) -> str:
    """The student notebook: nbgrader's release of the master, made in a scratch course."""
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp)
        source = course / "source" / ASSIGNMENT
        source.mkdir(parents=True)
        (source / MASTER.name).write_text(master_text, encoding="utf-8")
        shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")
        env = dict(os.environ)
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        command = [sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT,
                   "--force", "--log-level=WARN", f"--CourseDirectory.root={course}"]
        done = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True)
        released = course / "release" / ASSIGNMENT / MASTER.name
        if done.returncode != 0 or not released.exists():
            raise SystemExit(f"nbgrader generate_assignment failed:\n{done.stdout}\n{done.stderr}")
        nb = nbformat.read(released, as_version=4)
    return notebook_text(nb)


def solutions(nb: nbformat.NotebookNode) -> dict[str, str]:
    """solutions/NAME.py for each exercise cell that offers `# %load ../solutions/NAME.py`."""
    files = {}
    for cell in nb.cells:
        if not cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        load = markers.SOLUTION_LOAD_RE.search(cell.source)
        region = markers.regions(cell.source, markers.SOLUTION)
        if load is None or not region:
            continue
        header = (f"# Solution to the exercise '{cell.metadata['nbgrader']['grade_id']}' "
                  "(generated from the master notebook).\n")
        files[load.group(1)] = header + region[0].rstrip() + "\n"
    return files


def expected_files() -> dict[Path, str]:
    """Every generated file and the text it must have."""
    master = with_fresh_attachments(nbformat.read(MASTER, as_version=4))
    master_text = notebook_text(master)
    files = {MASTER: master_text, STUDENT: release(master_text)}
    for name, text in solutions(master).items():
        files[SOLUTIONS / name] = text
    return files


BACKUPS = ROOT / "build" / "generate-backups"


def has_work_in_it(path: Path) -> bool:
    """A notebook that was run or edited in Jupyter (outputs, execution counts): never generated."""
    if path.suffix != ".ipynb" or not path.exists():
        return False
    nb = nbformat.read(path, as_version=4)
    return any(cell.get("outputs") or cell.get("execution_count") for cell in nb.cells
               if cell.cell_type == "code" and path != MASTER)


def back_up(path: Path) -> Path:
    """Copy a file about to be overwritten to build/generate-backups/, with a timestamp."""
    BACKUPS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = BACKUPS / f"{path.stem}.{stamp}{path.suffix}"
    shutil.copy2(path, target)
    return target


def _show(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args()
    files = expected_files()
    stale = [path for path, text in files.items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    orphans = [path for path in SOLUTIONS.glob("*.py") if path not in files]
    if args.check:
        for path in stale:
            print(f"stale: {_show(path)}")
        for path in orphans:
            print(f"not generated from the master: {_show(path)}")
        if stale or orphans:
            print("Run `make generate` and commit the result.")
            return 1
        print(f"fresh: {len(files)} generated files match source/{ASSIGNMENT}/{MASTER.name}")
        return 0
    for path in stale:
        if has_work_in_it(path):  # someone ran the generated notebook: keep their work
            print(f"{_show(path)} holds outputs (someone worked in it): saved a copy to "
                  f"{_show(back_up(path))}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path], encoding="utf-8")
        print(f"wrote {_show(path)}")
    for path in orphans:
        print(f"warning: {_show(path)} is not generated from the master (left as is)")
    if not stale:
        print("everything was already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
