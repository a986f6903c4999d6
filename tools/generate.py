"""Generate every artefact that derives from the master notebook, or check that they are fresh.

    python tools/generate.py           # write them
    python tools/generate.py --check   # exit 1, naming the stale files, if any differ
    python tools/generate.py --root DIR  # the same for a copy of the course in DIR

The master notebook source/vae/vae_tp.ipynb (the instructor version, with the solution between
nbgrader's BEGIN/END SOLUTION markers) is the one source. From it come:

- its image attachments, refreshed from images/*.svg (the notebook stays self-contained, so
  its figures show in JupyterLab, Colab, nbgrader releases and feedback HTML alike);
- its stored outputs that show sizes (the decoder's parameter table, which nbval compares with
  what the student's decoder prints), computed from its parameters cell (`vaetp.course`);
- notebooks/vae_tp.ipynb, the student notebook: nbgrader's own release of the master
  (`nbgrader generate_assignment`, run in a scratch course folder with this repository's
  nbgrader_config.py);
- solutions/*.py, one per exercise cell: the solution region, under the file name that the
  cell's `# %load ../solutions/NAME.py` line asks for;
- the counts of docs/instructor.md's "What is graded" (points, test cells, exercises,
  questions), from the master's graded cells and `vaetp/exercises.py`: the line after the
  marker `WHAT_IS_GRADED_MARKER`.
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
from dataclasses import dataclass
from pathlib import Path

import nbformat

from vaetp import checks
from vaetp.course import parameters_of
from vaetp.grading import layout
from vaetp.grading.release import solution_files

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT, NOTEBOOK = layout.ASSIGNMENT, layout.NOTEBOOK  # "vae", "vae_tp.ipynb"
MASTER = layout.master(ROOT)
STUDENT = ROOT / "notebooks" / NOTEBOOK
IMAGES = ROOT / "images"
SOLUTIONS = ROOT / "solutions"


@dataclass(frozen=True)
class Course:
    """Where the generator reads and writes: this repository, or a copy of its course files
    (`--root`: source/, images/, nbgrader_config.py), such as a test's variant of the master."""

    root: Path

    @property
    def master(self) -> Path:
        return self.root / MASTER.relative_to(ROOT)

    @property
    def student(self) -> Path:
        return self.root / STUDENT.relative_to(ROOT)

    @property
    def images(self) -> Path:
        return self.root / IMAGES.relative_to(ROOT)

    @property
    def solutions(self) -> Path:
        return self.root / SOLUTIONS.relative_to(ROOT)

    @property
    def backups(self) -> Path:
        return self.root / "build" / "generate-backups"


REPOSITORY = Course(ROOT)
#: Stored outputs written from the parameters cell: cell id -> its text, from the parameters.
SIZED_OUTPUTS = {
    "decoder-parameters": lambda p: checks.spec_table(checks.DecoderSpec.from_parameters(p)),
}

ATTACHMENT_RE = re.compile(r"\]\(attachment:([^)\s]+)\)")
MIME = {".svg": "image/svg+xml", ".png": "image/png"}


def notebook_text(nb: nbformat.NotebookNode) -> str:
    """Serialise a notebook the way Jupyter does (1-space indent, trailing newline)."""
    return nbformat.writes(nb) + "\n"


def with_fresh_attachments(nb: nbformat.NotebookNode, images: Path = IMAGES
                           ) -> nbformat.NotebookNode:
    """Set each markdown cell's attachments to the `images` files its text refers to."""
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
            path = images / name
            if not path.exists():
                raise SystemExit(f"the master's cell {cell.id} shows attachment:{name}, but "
                                 f"{path} does not exist.")
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            attachments[name] = {MIME[path.suffix]: data}
        cell["attachments"] = attachments
    return nb


def with_sized_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Set the stored outputs of `SIZED_OUTPUTS`'s cells from the parameters cell."""
    parameters = parameters_of(nb)
    for cell in nb.cells:
        if cell.get("id") in SIZED_OUTPUTS:
            text = SIZED_OUTPUTS[cell.id](parameters)
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    return nb


def release(master_text: str, config: Path = ROOT / "nbgrader_config.py") -> str:
    """The student notebook: nbgrader's release of the master, made in a scratch course."""
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp)
        source = course / "source" / ASSIGNMENT
        source.mkdir(parents=True)
        (source / MASTER.name).write_text(master_text, encoding="utf-8")
        shutil.copy(config, course / "nbgrader_config.py")
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


NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                "ten", "eleven", "twelve"]
WHAT_IS_GRADED_MARKER = ("<!-- `make generate` writes the next line from the master and "
                         "vaetp/exercises.py -->")


def what_is_graded(master: nbformat.NotebookNode) -> str:
    """The counts of what is graded: the master's autograded test cells and their points, the
    declared exercises, the questions graded by hand."""
    from vaetp.exercises import EXERCISES

    tests, questions = [], []
    for cell in master.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            (questions if meta.get("solution") else tests).append(int(meta["points"]))
    if set(questions) - {1}:
        raise SystemExit("a question graded by hand is worth other than one point: reword "
                         "docs/instructor.md's 'What is graded' and generate.what_is_graded")
    word = dict(enumerate(NUMBER_WORDS)).get
    return (f"**What is graded.** {sum(tests)} points in {len(tests)} autograded test cells over "
            f"{word(len(EXERCISES), len(EXERCISES))} exercises, plus "
            f"{word(len(questions), len(questions))} questions of one point graded by hand "
            f"({sum(tests) + len(questions)} in all):")


def with_what_is_graded(doc: str, master: nbformat.NotebookNode) -> str:
    lines = doc.split("\n")
    if WHAT_IS_GRADED_MARKER not in lines:
        raise SystemExit(f"docs/instructor.md lost the line {WHAT_IS_GRADED_MARKER}: put it back "
                         "above the 'What is graded' sentence")
    lines[lines.index(WHAT_IS_GRADED_MARKER) + 1] = what_is_graded(master)
    return "\n".join(lines)


def expected_files(course: Course = REPOSITORY) -> dict[Path, str]:
    """Every generated file and the text it must have."""
    master = nbformat.read(course.master, as_version=4)
    master = with_sized_outputs(with_fresh_attachments(master, course.images))
    master_text = notebook_text(master)
    files = {course.master: master_text,
             course.student: release(master_text, course.root / "nbgrader_config.py")}
    for name, text in solution_files(master).items():
        files[course.solutions / name] = text
    instructor = course.root / "docs" / "instructor.md"
    if instructor.is_file():  # a copy of the course without docs/ (a test's variant) has none
        files[instructor] = with_what_is_graded(instructor.read_text(encoding="utf-8"), master)
    return files


def has_work_in_it(path: Path, course: Course = REPOSITORY) -> bool:
    """A notebook that was run or edited in Jupyter (outputs, execution counts): never generated."""
    if path.suffix != ".ipynb" or not path.exists():
        return False
    nb = nbformat.read(path, as_version=4)
    return any(cell.get("outputs") or cell.get("execution_count") for cell in nb.cells
               if cell.cell_type == "code" and path != course.master)


def back_up(path: Path, course: Course = REPOSITORY) -> Path:
    """Copy a file about to be overwritten to build/generate-backups/, with a timestamp."""
    course.backups.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = course.backups / f"{path.stem}.{stamp}{path.suffix}"
    shutil.copy2(path, target)
    return target


def _show(path: Path, course: Course = REPOSITORY) -> str:
    return str(path.relative_to(course.root)) if path.is_relative_to(course.root) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the course folder (default: this repository)")
    args = parser.parse_args(argv)
    course = Course(args.root.resolve())
    files = expected_files(course)
    stale = [path for path, text in files.items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    orphans = [path for path in course.solutions.glob("*.py") if path not in files]
    if args.check:
        for path in stale:
            print(f"stale: {_show(path, course)}")
        for path in orphans:
            print(f"not generated from the master: {_show(path, course)}")
        if stale or orphans:
            print("Run `make generate` and commit the result.")
            return 1
        print(f"fresh: {len(files)} generated files match {_show(course.master, course)}")
        return 0
    for path in stale:
        if has_work_in_it(path, course):  # someone ran the generated notebook: keep their work
            print(f"{_show(path, course)} holds outputs (someone worked in it): saved a copy to "
                  f"{_show(back_up(path, course), course)}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path], encoding="utf-8")
        print(f"wrote {_show(path, course)}")
    for path in orphans:
        print(f"warning: {_show(path, course)} is not generated from the master (left as is)")
    if not stale:
        print("everything was already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
