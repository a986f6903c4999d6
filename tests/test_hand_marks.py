"""Hand marks are never lost on an unchanged answer, never kept on a changed one, and a question
nobody graded yet is never shown as a 0.

A scratch course goes through the instructor's steps with tools/grade.py (release, autograde,
hand grading as the Formgrader stores it, feedback, grades, a resubmission regraded with
--force). To keep it to seconds, the course's autograde runs nbgrader's SaveAutoGrades and the
course's own steps after it, without executing the notebooks: the graded tests are not what this
file is about (tests/test_grading.py grades a whole class through the sandbox).
"""

from __future__ import annotations

import csv
import html
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

#: A grading round of its own: eight steps of tools/grade.py, about 1.5 minutes on 2 cores.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
GRADE = ROOT / "tools" / "grade.py"
NOTEBOOK = Path("vae") / "vae_tp.ipynb"
ASSIGNMENT, NOTEBOOK_ID, COURSE_ID = "vae", "vae_tp", "vae-tp"
#: Autograde without running the notebooks: nbgrader scores, the course keeps marks, cleans.
NO_EXECUTION = """
c.Autograde.autograde_preprocessors = [
    "nbgrader.preprocessors.SaveAutoGrades",
    "vaetp.grading.handmarks.KeepHandMarks",
    "vaetp.grading.sanitize.SanitizeOutputs",
]
"""
sys.path.insert(0, str(ROOT))
from vaetp.grading.feedback import cell_titles  # noqa: E402

#: What the feedback calls the two questions ("Question 1: Compare the training ...").
TITLES = cell_titles(nbformat.read(ROOT / "source" / NOTEBOOK, as_version=4))
Q1, Q2 = TITLES["question_overfitting"], TITLES["question_latent_space"]
ANSWERS = {"question_overfitting": "The two curves stay close: no overfitting.",
           "question_latent_space": "The 4s and the 9s overlap: they are written alike."}


def grade(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("VAE_TP_SHIP_SOLUTIONS", None)
    done = subprocess.run([sys.executable, str(GRADE), "--course", str(course), *args],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (f"grade.py {' '.join(args)} failed ({done.returncode}):\n"
                                  f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def answered(release: Path, answers: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.read(release, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def hand_grade(course: Path, student: str, grade_id: str, points: float, comment: str) -> None:
    """What the Formgrader stores when the instructor types a score and a comment."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        grade = gb.find_grade(grade_id, NOTEBOOK_ID, ASSIGNMENT, student)
        grade.manual_score = points
        grade.needs_manual_grade = False
        gb.find_comment(grade_id, NOTEBOOK_ID, ASSIGNMENT, student).manual_comment = comment
        gb.db.commit()


def stored(course: Path, student: str, grade_id: str) -> tuple[float | None, bool, str | None]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        grade = gb.find_grade(grade_id, NOTEBOOK_ID, ASSIGNMENT, student)
        comment = gb.find_comment(grade_id, NOTEBOOK_ID, ASSIGNMENT, student)
        return grade.manual_score, grade.needs_manual_grade, comment.manual_comment


def page_text(course: Path, student: str) -> str:
    page = (course / "feedback" / student / NOTEBOOK).with_suffix(".html")
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text("utf-8"))))


def heading_of(text: str, title: str) -> str:
    """The words after a graded cell's title in its heading (its score, or 'not graded yet')."""
    at = text.index(title, text.index("(Top)"))  # the cell's heading, not the contents entry
    return text[at + len(title):at + len(title) + 120]


def report(course: Path) -> dict[str, dict[str, str]]:
    with (course / "grading_report.csv").open(newline="", encoding="utf-8") as fh:
        return {row["student_id"]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hand-marks")
    course = tmp / "course"
    grade(course, "release", "--no-solutions")
    with (course / "nbgrader_config.py").open("a", encoding="utf-8") as fh:
        fh.write(NO_EXECUTION)
    release = course / "release" / NOTEBOOK
    inbox = tmp / "inbox"
    inbox.mkdir()
    # ana answers two questions; ben leaves every question as released
    nbformat.write(answered(release, ANSWERS), inbox / "ana.ipynb")
    nbformat.write(answered(release, {}), inbox / "ben.ipynb")
    grade(course, "autograde", "--submissions", str(inbox))
    return {"course": course, "release": release, "tmp": tmp}


def test_a_question_not_graded_yet_reads_not_graded_yet_not_0(course):
    course_dir = course["course"]
    hand_grade(course_dir, "ana", "question_overfitting", 0.0, "The gap is not zero: look again.")
    done = grade(course_dir, "feedback")
    text = page_text(course_dir, "ana")
    # one question graded (a real 0), one not graded yet
    assert "1 question is not graded yet" in text, text[:2000]
    assert heading_of(text, Q2).lstrip().startswith(
        "not graded yet"), heading_of(text, Q2)
    assert heading_of(text, Q1).lstrip().startswith(
        "Score: 0.0 / 1.0")
    assert "ana (question_latent_space)" in done.stderr, done.stderr
    # ben answered nothing: his questions are 0 ("No response."), nothing waits for a grader
    assert "not graded yet" not in page_text(course_dir, "ben")


def test_the_report_tells_an_unmarked_question_from_a_marked_0(course):
    course_dir = course["course"]
    done = grade(course_dir, "grades")
    rows = report(course_dir)
    assert rows["ana"]["question_overfitting"] == "0"
    assert rows["ana"]["question_latent_space"] == "not graded"
    assert rows["ben"]["question_latent_space"] == "0"
    assert "ana (question_latent_space)" in done.stderr
    with (course_dir / "grades.csv").open(newline="", encoding="utf-8") as fh:
        grades = {row["student_id"]: row for row in csv.DictReader(fh)}
    assert grades["ana"]["not_graded"] == "1" and grades["ben"]["not_graded"] == "0"


def test_a_forced_regrade_keeps_the_marks_of_unchanged_answers_only(course):
    course_dir, tmp = course["course"], course["tmp"]
    hand_grade(course_dir, "ana", "question_overfitting", 1.0, "Right: the curves stay close.")
    hand_grade(course_dir, "ana", "question_latent_space", 0.5, "Which digits, and why?")
    # ana resubmits: question 1 as before, question 2 rewritten
    second = tmp / "second"
    second.mkdir()
    nbformat.write(answered(course["release"], {
        **ANSWERS, "question_latent_space": "4 and 9, 3 5 and 8: similar strokes."}),
        second / "ana.ipynb")
    done = grade(course_dir, "autograde", "--submissions", str(second), "--force")
    # the unchanged answer keeps its mark and comment, and is not sent back to hand grading
    assert stored(course_dir, "ana", "question_overfitting") == (
        1.0, False, "Right: the curves stay close.")
    # the changed answer loses the old mark and comment, and waits for a grader again
    assert stored(course_dir, "ana", "question_latent_space") == (None, True, None)
    assert "ana: the answer to question_latent_space changed" in done.stdout + done.stderr
    grade(course_dir, "feedback", "--student", "ana")
    text = page_text(course_dir, "ana")
    assert heading_of(text, Q2).lstrip().startswith(
        "not graded yet")
    assert "Which digits, and why?" not in text  # the old comment is gone with the old mark
    assert "Right: the curves stay close." in text


def test_regrading_everyone_unchanged_sends_no_mark_back_to_hand_grading(course):
    course_dir = course["course"]
    hand_grade(course_dir, "ana", "question_latent_space", 1.0, "Yes.")
    grade(course_dir, "autograde", "--force")
    assert stored(course_dir, "ana", "question_overfitting")[:2] == (1.0, False)
    assert stored(course_dir, "ana", "question_latent_space")[:2] == (1.0, False)
    grade(course_dir, "grades")
    row = report(course_dir)["ana"]
    assert (row["question_overfitting"], row["question_latent_space"]) == ("1", "1")
