"""`KeepHandMarks`: a regrade keeps a hand mark only while the answer it marks is unchanged.

nbgrader keeps every hand mark (`Grade.manual_score`) and comment through a regrade, whatever the
student handed in since, and sends every marked question back to "needs manual grading" even
when its answer did not change. This autograde step, right after nbgrader's `SaveAutoGrades`
(and before `SanitizeOutputs`, which rewrites the answers as inert HTML), does instead, for
each answer graded by hand (a cell that is both a solution and a grade cell: the questions):

- the answer is the one graded (nbgrader's checksum of the cell equals the one recorded when
  it was last autograded): its mark and comment stay, and it is not flagged again;
- the answer changed: its mark and comment are removed and it is flagged for hand grading again
  (an answer changed back to the release's stub is an automatic 0, "No response.", as always);
- no record (graded before this step existed): nbgrader's own behaviour, the mark is kept and
  flagged for a look; the log says so.

The checksums of the answers as autograded are kept in `hand_graded_answers/<student>.json` in
the course folder (one file per student, so graders running at once never share one), never in
the gradebook, which holds nbgrader's tables only.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

RECORD_FOLDER = "hand_graded_answers"


def is_hand_graded(cell: NotebookNode) -> bool:
    """A cell graded by hand: the student's answer is the graded cell (nbgrader's written or
    coding free-response)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade") and meta.get("solution") and meta.get("grade_id"))


def record_path(course: Path, student: str, folder: str = RECORD_FOLDER) -> Path:
    return Path(course) / folder / f"{student}.json"


def read_record(path: Path) -> dict[str, str]:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(found, dict) else {}


def write_record(path: Path, record: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


class KeepHandMarks(NbGraderPreprocessor):
    """Hand marks kept on unchanged answers, removed (and flagged) on changed ones."""

    record_folder = Unicode(
        RECORD_FOLDER, help="Folder of the course (relative to its root) where the checksum of "
                            "each answer graded by hand is kept, one file per student."
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: Any):
        from nbgrader.api import Gradebook
        from nbgrader.coursedir import CourseDirectory

        info = resources["nbgrader"]
        self._student, self._notebook = info["student"], info["notebook"]
        self._assignment = info["assignment"]
        root = Path(CourseDirectory(config=self.config).root)
        path = record_path(root, self._student, self.record_folder)
        self._old = read_record(path)
        self._new: dict[str, str] = {}
        self._changed: list[str] = []
        with Gradebook(info["db_url"]) as gb:
            self._gb = gb
            nb, resources = super().preprocess(nb, resources)
            gb.db.commit()
        # answers of other notebooks or assignments stay as they were recorded
        mine = f"{self._assignment}/{self._notebook}/"
        write_record(path, {**{k: v for k, v in self._old.items() if not k.startswith(mine)},
                            **self._new})
        return nb, resources

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int):
        from nbgrader.utils import compute_checksum

        if not is_hand_graded(cell):
            return cell, resources
        grade_id = cell.metadata.nbgrader["grade_id"]
        key = f"{self._assignment}/{self._notebook}/{grade_id}"
        now = compute_checksum(cell)
        self._new[key] = now
        grade = self._gb.find_grade(grade_id, self._notebook, self._assignment, self._student)
        comment = self._gb.find_comment(grade_id, self._notebook, self._assignment, self._student)
        marked = grade.manual_score is not None or bool(comment.manual_comment)
        if not marked:
            return cell, resources
        before = self._old.get(key)
        if before is None:
            self.log.warning("%s: %s was graded by hand before this grader kept answers' "
                             "checksums; its mark is kept and flagged for a look in the "
                             "Formgrader", self._student, grade_id)
        elif before == now:
            if grade.manual_score is not None:
                grade.needs_manual_grade = False  # the mark is the answer's: nothing to redo
        else:
            self.log.warning("%s: the answer to %s changed since it was graded by hand: its "
                             "mark (%s) and comment are removed; grade it again in the "
                             "Formgrader", self._student, grade_id, grade.manual_score)
            grade.manual_score = None
            grade.extra_credit = None
            comment.manual_comment = None
            grade.needs_manual_grade = grade.auto_score is None
            self._changed.append(grade_id)
        return cell, resources
