"""Importing submissions into nbgrader's submitted/ folder, never overwriting one silently.

A folder of submissions holds either nbgrader's layout `<student>/vae/vae_tp.ipynb` (with an
optional timestamp.txt) or a flat set of `<student>.ipynb` files (e.g. downloaded from an LMS;
the file's modification time becomes the submission time).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

from vaetp.grading.layout import ASSIGNMENT, NOTEBOOK

STUDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")


class SubmissionRefused(ValueError):
    """A folder of submissions that cannot be imported as it is; the message says why."""


def _utc_timestamp(seconds: float) -> str:
    stamp = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def find_submissions(source: Path) -> dict[str, tuple[Path, str]]:
    """{student: (notebook, timestamp)} from nbgrader's layout or a flat folder of notebooks."""
    found: dict[str, tuple[Path, str]] = {}
    for entry in sorted(source.iterdir()):
        if entry.is_dir() and (entry / ASSIGNMENT / NOTEBOOK).is_file():
            student, notebook = entry.name, entry / ASSIGNMENT / NOTEBOOK
            stamp_file = entry / ASSIGNMENT / "timestamp.txt"
            stamp = (stamp_file.read_text().strip() if stamp_file.is_file()
                     else _utc_timestamp(notebook.stat().st_mtime))
        elif entry.is_file() and entry.suffix == ".ipynb":
            student, notebook = entry.stem, entry
            stamp = _utc_timestamp(entry.stat().st_mtime)
        else:
            print(f"ignored (neither <student>/{ASSIGNMENT}/{NOTEBOOK} nor <student>.ipynb): {entry}")
            continue
        if not STUDENT_RE.match(student):
            raise SubmissionRefused(f"{entry}: '{student}' is not a usable student id (letters, digits, _ . @ -)")
        if student in found:
            raise SubmissionRefused(f"two submissions for the student '{student}' in {source}")
        found[student] = (notebook, stamp)
    return found


def import_submissions(course: Path, source: Path, force: bool) -> tuple[list[str], list[str]]:
    """Copy submissions into submitted/; return (new students, replaced students)."""
    found = find_submissions(source)
    if not found:
        raise SubmissionRefused(f"no submission in {source}")
    new, replaced, conflicts = [], [], []
    for student, (notebook, _) in found.items():
        dst = course / "submitted" / student / ASSIGNMENT / NOTEBOOK
        if not dst.exists():
            new.append(student)
        elif dst.read_bytes() != notebook.read_bytes():
            conflicts.append(student)
    if conflicts and not force:
        raise SubmissionRefused(
            "refused: these students already have a different notebook in "
            f"{course / 'submitted'}: {', '.join(conflicts)}.\nNothing was imported. To replace "
            "their submissions (and regrade them), run again with --force (make ... FORCE=1)."
        )
    for student in new + conflicts:
        notebook, stamp = found[student]
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(notebook, folder / NOTEBOOK)
        (folder / "timestamp.txt").write_text(stamp + "\n", encoding="utf-8")
        print(f"{'replaced' if student in conflicts else 'imported'} {student}: {notebook}")
        if student in conflicts:
            replaced.append(student)
    unchanged = len(found) - len(new) - len(replaced)
    if unchanged:
        print(f"{unchanged} submission(s) already in submitted/, unchanged")
    return new, replaced
