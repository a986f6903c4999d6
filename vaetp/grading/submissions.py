"""Importing submissions into nbgrader's submitted/ folder, never overwriting one silently.

A download of submissions (a folder, or a zip file) holds Moodle's names
(`Ana Lopez_101_assignsubmission_file_/vae_tp.ipynb`, mapped to student ids by a roster: see
vaetp.grading.moodle), nbgrader's layout `<student>/vae/vae_tp.ipynb` (with an optional
timestamp.txt), or a flat set of `<student>.ipynb` files. The submission time is timestamp.txt,
else the zip entry's date, else the file's modification time.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from vaetp.grading import moodle
from vaetp.grading.layout import ASSIGNMENT, NOTEBOOK


class SubmissionRefused(ValueError):
    """A folder of submissions that cannot be imported as it is; the message says why."""


def find_submissions(source: Path, roster: list[moodle.Student] | None = None,
                     zone: dt.tzinfo | None = None) -> dict[str, tuple[bytes, str, str]]:
    """{student: (notebook bytes, timestamp, where it was in the download)}."""
    zone = zone or dt.datetime.now().astimezone().tzinfo
    try:
        found = moodle.find_download(source, roster, zone)
        return {f.student: (f.entry.read(), f.stamp_text or moodle.utc_text(f.entry.stamp), f.label)
                for f in found}
    except moodle.MoodleError as err:
        raise SubmissionRefused(str(err)) from None
    except OSError as err:
        raise SubmissionRefused(f"{source}: cannot read it ({err.strerror or err}): check the "
                                "path and its permissions") from None


def import_submissions(course: Path, source: Path, force: bool,
                       roster: list[moodle.Student] | None = None,
                       zone: dt.tzinfo | None = None) -> tuple[list[str], list[str]]:
    """Copy submissions into submitted/; return (new students, replaced students)."""
    found = find_submissions(source, roster, zone)
    if not found:
        raise SubmissionRefused(f"no submission in {source}")
    new, replaced, conflicts = [], [], []
    for student, (data, _, _) in found.items():
        dst = course / "submitted" / student / ASSIGNMENT / NOTEBOOK
        # a notebook the grader repaired is compared as it was handed in
        handed_in = dst.with_name(dst.name + ORIGINAL_SUFFIX)
        if not dst.exists():
            new.append(student)
        elif (handed_in if handed_in.exists() else dst).read_bytes() != data:
            conflicts.append(student)
    if conflicts and not force:
        raise SubmissionRefused(
            "refused: these students already have a different notebook in "
            f"{course / 'submitted'}: {', '.join(conflicts)}. Nothing was imported. To replace "
            "their submissions (and regrade them), run again with --force (make ... FORCE=1)."
        )
    for student in new + conflicts:
        data, stamp, label = found[student]
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True, exist_ok=True)
        (folder / NOTEBOOK).write_bytes(data)
        (folder / (NOTEBOOK + ORIGINAL_SUFFIX)).unlink(missing_ok=True)  # a new one: repair anew
        (folder / "timestamp.txt").write_text(stamp + "\n", encoding="utf-8")
        if student in conflicts:  # rare, and it replaces someone's work: one line each
            print(f"replaced {student}: {label} (submitted {stamp})")
            replaced.append(student)
    if new:  # one line for the class, not one per student
        shown = ", ".join(sorted(new)[:8]) + (f" and {len(new) - 8} more" if len(new) > 8 else "")
        print(f"imported {len(new)} new submission(s) into {course / 'submitted'}: {shown}")
    unchanged = len(found) - len(new) - len(replaced)
    if unchanged:
        print(f"{unchanged} submission(s) already in submitted/, unchanged")
    return new, replaced


# --------------------------------------------------------------------------------------------
# Repairing a submission from the release before nbgrader sees it
# --------------------------------------------------------------------------------------------

#: The student's file as handed in, kept next to a repaired notebook (what import compares).
ORIGINAL_SUFFIX = ".as-submitted"
#: The notebook metadata key holding what the repair did (one phrase per kind).
REPAIR_KEY = "vaetp_repaired"


def _nbgrader_id(cell: dict) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell, dict) else None
    grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
    return grade_id if isinstance(grade_id, str) else None


def _same_role(cell: dict, released: dict) -> bool:
    mine, theirs = cell.get("metadata", {}).get("nbgrader", {}), released.metadata.nbgrader
    return cell.get("cell_type") == released.cell_type and all(
        mine.get(k) == theirs.get(k) for k in ("grade", "solution", "locked", "points", "task"))


def repair_notebook(raw: bytes, release: "nbformat.NotebookNode"):
    """(notebook, notes): the submission made gradable against the release it answers.

    - not a notebook (invalid JSON, or not nbformat 4): the release itself, unanswered;
    - every cell of the release that nbgrader tracks (exercise, check, test, question) is there
      exactly once, in the release's order, with the release's role (its nbgrader metadata and
      cell type): a deleted one is put back from the release, a duplicate becomes an ordinary
      cell (its code still runs, it is graded once), a reordered one goes back in place, one
      whose role was changed (a test made a solution) gets its role back (nbgrader then puts
      its read-only source back too);
    - the student's own cells stay after the tracked cell they followed;
    - the kernelspec is the release's.
    Each kind of repair adds one phrase to `notes`; no repair, no note.
    """
    import copy
    import json
    import uuid

    import nbformat

    notes: list[str] = []
    try:
        json.loads(raw.decode("utf-8", errors="replace"))
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # noqa: BLE001 - anything that is not a notebook
        why = type(err).__name__
        if isinstance(err, json.JSONDecodeError):
            why = f"invalid JSON at line {err.lineno}"
        elif isinstance(err, nbformat.ValidationError):
            why = "not valid nbformat"
        nb = copy.deepcopy(release)
        return nb, [f"not a readable notebook ({why}): graded as the release, unanswered"]
    released = [(c.metadata.nbgrader["grade_id"], c) for c in release.cells
                if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")]
    known = dict(released)
    kept: dict[str, nbformat.NotebookNode] = {}
    after: dict[str | None, list] = {None: []}
    anchor: str | None = None
    duplicates, unknown, roles, order = [], [], [], []
    for cell in nb.cells:
        grade_id = _nbgrader_id(cell)
        if grade_id in known and grade_id not in kept:
            if not _same_role(cell, known[grade_id]):
                roles.append(grade_id)
                fixed = copy.deepcopy(known[grade_id])
                fixed.source = cell.source if cell.cell_type == known[grade_id].cell_type \
                    else known[grade_id].source
                cell = fixed
            kept[grade_id] = cell
            order.append(grade_id)
            anchor = grade_id
            after.setdefault(anchor, [])
            continue
        if "nbgrader" in cell.metadata:  # a copy of a tracked cell, or a made-up one: ordinary now
            (duplicates if grade_id in known else unknown).append(grade_id or "(no id)")
            cell.metadata.pop("nbgrader", None)
        after[anchor].append(cell)
    missing_tests, missing_other = [], []
    cells = list(after[None])
    for grade_id, original in released:
        if grade_id in kept:
            cells.append(kept[grade_id])
        else:
            cells.append(copy.deepcopy(original))
            (missing_tests if original.metadata.nbgrader.get("grade") and original.cell_type == "code"
             else missing_other).append(grade_id)
        cells += after.get(grade_id, [])
    seen_ids: set[str] = set()
    for cell in cells:  # nbformat wants unique cell ids
        if cell.get("id") in seen_ids or not cell.get("id"):
            cell["id"] = uuid.uuid4().hex[:8]
        seen_ids.add(cell["id"])
    nb.cells = cells
    if order != [g for g, _ in released if g in kept]:
        notes.append("cells put back in the release's order")
    if missing_tests:
        notes.append("deleted test cell(s) put back and run: " + " ".join(missing_tests))
    if missing_other:
        notes.append("deleted cell(s) put back from the release: " + " ".join(missing_other))
    if duplicates:
        notes.append("duplicated cell(s) graded once, the copies run as ordinary cells: "
                     + " ".join(sorted(set(duplicates))))
    if unknown:
        notes.append("cell(s) marked for grading that the release does not have, run as "
                     "ordinary cells: " + " ".join(unknown))
    if roles:
        notes.append("cell role(s) changed, restored from the release: " + " ".join(roles))
    if nb.metadata.get("kernelspec") != release.metadata.get("kernelspec"):
        was = (nb.metadata.get("kernelspec") or {}).get("name", "none")
        notes.append(f"kernelspec '{was}' replaced by the release's")
        nb.metadata["kernelspec"] = copy.deepcopy(release.metadata.get("kernelspec"))
    return nb, notes


def repair_submitted(course: Path, student: str, release: "nbformat.NotebookNode") -> list[str]:
    """Repair submitted/<student>/vae/vae_tp.ipynb in place (see repair_notebook), once: the
    file as handed in is kept next to it (ORIGINAL_SUFFIX), and the notes in its metadata.
    Idempotent: a repaired notebook is left as it is; returns the notes."""
    import nbformat

    path = course / "submitted" / student / ASSIGNMENT / NOTEBOOK
    original = path.with_name(path.name + ORIGINAL_SUFFIX)
    if original.exists():  # repaired before (the grader wrote both files)
        try:
            return list(nbformat.read(path, as_version=4).metadata.get(REPAIR_KEY, []))
        except Exception:  # noqa: BLE001 - repaired file damaged since: repair again
            pass
    raw = original.read_bytes() if original.exists() else path.read_bytes()
    nb, notes = repair_notebook(raw, release)
    if not notes:
        return []
    if not original.exists():
        original.write_bytes(raw)
    nb.metadata[REPAIR_KEY] = notes
    stat = path.stat()
    nbformat.write(nb, path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return notes


def repair_notes(course: Path, student: str) -> list[str]:
    """What repair_submitted did to this student's notebook (for the report)."""
    import nbformat

    path = course / "submitted" / student / ASSIGNMENT / NOTEBOOK
    try:
        return list(nbformat.read(path, as_version=4).metadata.get(REPAIR_KEY, []))
    except Exception:  # noqa: BLE001
        return ["submitted notebook unreadable"]
