"""The grading report: how each decoder cell was made, what the grader did, per-test scores."""

from __future__ import annotations

from pathlib import Path

import nbformat

from vaetp.grading import markers
from vaetp.grading.layout import ASSIGNMENT, NOTEBOOK, NOTEBOOK_ID, autograded

EXERCISE_ID = "decoder_exercise"
STUB_MARK = "decoder = None"
#: What the report writes for a question nobody graded yet (a marked 0 is written 0).
NOT_GRADED = "not graded"
GRADER_ERRORS = {"CellTimeoutError": "timed out", "KernelDied": "kernel died",
                 "OutputTooLarge": "output over the message bound",
                 "NotRunByGrader": "not run"}


def _code_lines(text: str) -> list[str]:
    """The code of a cell: no blank lines, no comment lines, no trailing spaces."""
    lines = (line.rstrip() for line in text.splitlines())
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def exercise_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") == EXERCISE_ID or cell.get("id") == "decoder-exercise":
            return cell
    return None


def decoder_cell_kind(nb: nbformat.NotebookNode, solutions: dict[str, str]) -> str:
    """How the student's decoder cell was made: one of
    loaded           `# %load ../solutions/NAME.py` at the top, then that file, unchanged;
    loaded+edited    the `# %load` line at the top (IPython leaves it there), then the file
                     edited (its header comment or half of its code lines are still there);
    written          the student's own code;
    written=solution the student's own code, identical to the solution (no %load line);
    unsolved         the release's stub is still there (decoder = None);
    missing          no decoder exercise cell in the notebook.
    """
    cell = exercise_cell(nb)
    if cell is None:
        return "missing"
    lines = cell.source.strip().splitlines()
    code = _code_lines(cell.source)
    if not code or any(STUB_MARK in line for line in code):
        return "unsolved"
    load = markers.LOAD_LINE_RE.match(lines[0]) if lines and lines[0].startswith("#") else None
    if any(code == _code_lines(text) for text in solutions.values()):
        return "loaded" if load else "written=solution"
    if load:
        # %load leaves the `# %load` line on top, then the file, which starts with its header
        # comment; a student who kept the commented line and wrote their own code has neither
        # the header nor most of the solution's lines.
        text = solutions.get(Path(load.group(1)).name, "")
        header = text.splitlines()[0] if text else None
        wanted = set(_code_lines(text))
        if (header and header in cell.source) or (wanted and len(wanted & set(code)) * 2 >= len(wanted)):
            return "loaded+edited"
    return "written"


def grading_notes(course: Path, student: str) -> str:
    """What the grader did to this submission beyond running it (for the instructor)."""
    from nbgrader.utils import compute_checksum, is_grade, is_locked, is_solution

    from vaetp.grading.submissions import REPAIR_KEY

    notes = []
    try:
        submitted = nbformat.read(course / "submitted" / student / ASSIGNMENT / NOTEBOOK,
                                  as_version=4)
    except Exception:  # noqa: BLE001 - never repaired (graded outside tools/grade.py)
        return "the submitted notebook cannot be read; run make autograde again to repair it"
    notes += list(submitted.metadata.get(REPAIR_KEY, []))
    edited = [cell.metadata.nbgrader["grade_id"] for cell in submitted.cells
              if (is_grade(cell) or is_locked(cell)) and not is_solution(cell)
              and "checksum" in cell.metadata.nbgrader
              and compute_checksum(cell) != cell.metadata.nbgrader["checksum"]]
    if edited:
        notes.append("read-only cell(s) edited, restored before grading: " + " ".join(edited))
    path = autograded(course, student)
    if not path.exists():
        return "; ".join(notes + ["not autograded"])
    nb = nbformat.read(path, as_version=4)
    present = {cell.metadata.get("nbgrader", {}).get("grade_id") for cell in submitted.cells}
    restored = [cell.metadata.nbgrader["grade_id"] for cell in nb.cells
                if is_grade(cell) and cell.metadata.nbgrader["grade_id"] not in present]
    if restored and not any(n.startswith("deleted test cell(s) put back") for n in notes):
        notes.append("deleted test cell(s) put back and run: " + " ".join(restored))
    for ename, words in GRADER_ERRORS.items():
        cells = [cell.get("id", "?") for cell in nb.cells if cell.cell_type == "code" and any(
            o.get("output_type") == "error" and o.get("ename") == ename for o in cell.outputs)]
        if cells:
            shown = " ".join(cells[:3]) + (f" (+{len(cells) - 3})" if len(cells) > 3 else "")
            notes.append(f"{words}: {len(cells)} cell(s) {shown}")
    return "; ".join(notes)


def cell_scores(course: Path, course_id: str) -> tuple[
        list[str], dict[str, dict[str, float | None]], float, float]:
    """The graded cells in notebook order, each student's score on each (None: a question not
    graded yet, which is not a 0), the maximum score and the maximum of the autograded cells
    (the questions are graded by hand)."""
    from nbgrader.api import Gradebook

    from vaetp.grading.feedback import not_graded

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id) as gb:
        notebook = gb.find_notebook(NOTEBOOK_ID, ASSIGNMENT)
        names = [cell.name for cell in notebook.grade_cells]
        max_score = sum(cell.max_score for cell in notebook.grade_cells)
        auto_max = sum(cell.max_score for cell in notebook.grade_cells if cell.cell_type == "code")
        order = {cell.name: i for i, cell in enumerate(notebook.source_cells)}
        names.sort(key=lambda name: order.get(name, 0))
        scores: dict[str, dict[str, float | None]] = {}
        for sub in gb.assignment_submissions(ASSIGNMENT):
            nb = gb.find_submission_notebook(NOTEBOOK_ID, ASSIGNMENT, sub.student.id)
            scores[sub.student.id] = {g.name: None if not_graded(g) else g.score
                                      for g in nb.grades}
    return names, scores, max_score, auto_max


def answered_as_released(course: Path, student: str, course_id: str) -> set[str]:
    """The answer (solution) cells of a submission that are exactly as released: nbgrader's own
    checksum of the cell equals the one the gradebook recorded at release (the notebook's copy
    of that checksum is the student's and is never read)."""
    from nbgrader.api import Gradebook
    from nbgrader.utils import compute_checksum

    path = course / "submitted" / student / ASSIGNMENT / NOTEBOOK
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001 - unreadable: the repair notes say so
        return set()
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id) as gb:
        notebook = gb.find_notebook(NOTEBOOK_ID, ASSIGNMENT)
        released = {cell.name: cell.checksum for cell in notebook.source_cells}
    found = set()
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if isinstance(grade_id, str) and released.get(grade_id) \
                and compute_checksum(cell) == released[grade_id]:
            found.add(grade_id)
    return found


def points_without_an_answer(course: Path, student: str, scores: dict[str, float | None],
                             course_id: str) -> list[str]:
    """The exercises that earned points although the student's answer cell for them is exactly
    as released: the points came from somewhere else in the notebook (a forged record, a hook)
    or from a grader bug. Judged from nbgrader's checksums, never from how a cell looks."""
    from vaetp.grading.exercises import EXERCISES

    untouched = answered_as_released(course, student, course_id)
    found = []
    for exercise in EXERCISES:
        points = sum(v or 0 for k, v in scores.items() if k.startswith(exercise.test_prefix))
        if points > 0 and exercise.answer_cell in untouched:
            found.append(f"{exercise.name} ({points:g})")
    return found


def grading_sandbox(course: Path, student: str) -> str:
    """'bubblewrap', 'UNSANDBOXED' or 'not graded', from the autograded notebook's metadata."""
    path = autograded(course, student)
    if not path.exists():
        return "not graded"
    mode = nbformat.read(path, as_version=4).metadata.get("vaetp_grading", {}).get("sandbox")
    return "bubblewrap" if mode == "bubblewrap" else "UNSANDBOXED"


def notes(course: Path, student: str, kind: str | None, scores: dict[str, float | None],
          course_id: str) -> str:
    """The report's notes column: what the grader did, and what a human should look at."""
    if kind is None:
        return "no submission"
    found = grading_notes(course, student)
    odd = points_without_an_answer(course, student, scores, course_id)
    if odd:
        flag = ("LOOK: points on exercises whose answer cell is exactly as released: "
                + ", ".join(odd))
        found = f"{flag}; {found}" if found else flag
    return found
