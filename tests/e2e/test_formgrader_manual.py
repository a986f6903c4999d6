"""An instructor grades a student's answer to a question by hand in nbgrader's Formgrader, in a
real browser (Debian's Chromium driven by Playwright), and the point reaches the gradebook and
the exported grades (docs/instructor.md, step 5, "Grade the questions by hand"), and stays
through a regrade of the unchanged notebook.

A scratch course gets a release without solutions and one submission: the simulated student
"hand" (tests/simulated_class.py), who solves every exercise and answers question 1 (the markdown
answer cell `answer-overfitting`, grade id `question_overfitting`, 1 point) with
`simulated_class.HAND_ANSWER`. tools/grade.py autogrades it (the real nbgrader, bubblewrap
sandbox) and exports the grades once before any manual grading. A Jupyter server (JupyterLab +
nbgrader's formgrader) then serves the course folder on 127.0.0.1, from the course folder, as in
test_formgrader_xss.py.

In the browser the instructor goes where docs/instructor.md sends them: Formgrader (Manage
Assignments) > Manual Grading > vae > vae_tp > Show All Names > hand. On the submission's page
the answer cell `question_overfitting` shows the student's text as written; the instructor types 1
in its score box and Tab (to the next box), types a comment in the comment box and Escape (the
Formgrader's keyboard shortcuts), and the Formgrader saves each (the test waits for the PUT of each to
/formgrader/api/grade/ and /formgrader/api/comment/). The page is loaded again and shows both.
Offline, as here: MathJax comes from the Jupyter server (jupyter_server_mathjax, under the
course's Content-Security-Policy), so the Formgrader's set-up finishes (its keyboard shortcuts
need it), the page shows no error, and the TP's formulas are laid out by the browser as MathML
(the sanitizer stores them so). Then:

- the gradebook (nbgrader.api.Gradebook on the course's gradebook.db) has manual_score 1 for
  that grade, no longer needing a manual grade, and the comment;
- `tools/grade.py grades` exports, for that student, a score one point above the export made
  before (the autograded score, which is full marks on the autograded tests), out of the same
  max_score;
- a forced regrade (`autograde --force`, the notebook unchanged) keeps the mark and the comment,
  without sending the question back to manual grading, and the feedback shows the point.

A screenshot of the graded cell goes to build/e2e/screenshots/formgrader-manual-grade.png (or
the folder VAE_TP_E2E_SCREENSHOTS names); the server's log to build/e2e/.
"""

from __future__ import annotations

import csv
import html
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest
from e2e_support import CHROMIUM_ARGS, run_grade, jupyter_lab

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
import simulated_class  # noqa: E402  (tests/simulated_class.py, the suite's test data)
sys.path.insert(0, str(REPO))
from vaetp.grading.sanitize import sanitize_markdown  # noqa: E402

CHROMIUM = os.environ.get("VAE_TP_CHROMIUM", "/usr/bin/chromium")
ASSIGNMENT = "vae"
NOTEBOOK = "vae_tp.ipynb"
NOTEBOOK_ID = "vae_tp"
STUDENT = "hand"
ANSWER_CELL = "answer-overfitting"
GRADE_ID = "question_overfitting"
POINTS = 1
COMMENT = "Right: the gap stays small, and validation is measured after the epoch's updates."
# Bounds: each grade.py step, the server's start, each page's load.
STEP_TIMEOUT_S = 420
PAGE_TIMEOUT_MS = 60_000
OUT = REPO / "build" / "e2e"


def screenshot_dir() -> Path:
    """VAE_TP_E2E_SCREENSHOTS, as test_lab_browser.py (default build/e2e/screenshots)."""
    path = Path(os.environ.get("VAE_TP_E2E_SCREENSHOTS", REPO / "build" / "e2e" / "screenshots"))
    path = path if path.is_absolute() else REPO / path
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------------------------
# The course: release, one submission, autograde, a first export
# ----------------------------------------------------------------------------------------------

def grade(course: Path, *args: str) -> str:
    return run_grade(course, *args, timeout=STEP_TIMEOUT_S)


def exported(course: Path) -> dict[str, str]:
    """The student's row of grades.csv (nbgrader export, + decoder_cell and sandbox)."""
    with (course / "grades.csv").open(newline="", encoding="utf-8") as fh:
        rows = [row for row in csv.DictReader(fh) if row["student_id"] == STUDENT]
    assert len(rows) == 1, f"grades.csv has {len(rows)} row(s) for {STUDENT}"
    return rows[0]


@pytest.fixture
def graded_course(tmp_path):
    """A scratch course with the student "hand" autograded and the grades exported once.
    Yields (course, the export's row for hand before manual grading, timings)."""
    started = time.perf_counter()
    course = tmp_path / "course"
    course.mkdir()
    # The simulated class %load's the solutions as shipped: take them from a release with
    # solutions, then release for a graded run (as tests/test_grading.py does).
    grade(course, "release")
    solutions = simulated_class.solutions_in(course / "release" / "solutions")
    grade(course, "release", "--no-solutions")
    release_nb = nbformat.read(course / "release" / ASSIGNMENT / NOTEBOOK, as_version=4)
    student = next(s for s in simulated_class.build(release_nb, solutions) if s.name == STUDENT)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    nbformat.write(student.notebook, inbox / f"{STUDENT}.ipynb")
    prepared = time.perf_counter()
    grade(course, "autograde", "--submissions", str(inbox))
    graded = time.perf_counter()
    grade(course, "grades")
    before = exported(course)
    timings = {"release": prepared - started, "autograde": graded - prepared,
               "grades": time.perf_counter() - graded}
    yield course, student, before, timings


@pytest.fixture
def jupyter(graded_course, tmp_path):
    """JupyterLab and the formgrader on 127.0.0.1, in the course folder (as an instructor runs
    `jupyter lab` there). Yields (base URL, token)."""
    course = graded_course[0]
    log = tmp_path / "jupyter-formgrader-manual.log"
    # the course's server configuration: the Formgrader's pages under its CSP (docs/instructor.md)
    (tmp_path / "jupyter-config").mkdir(exist_ok=True)
    shutil.copy(REPO / "jupyter_server_config.json",
                tmp_path / "jupyter-config" / "jupyter_server_config.json")
    try:
        with jupyter_lab(course, tmp_path, log) as server:
            yield server
    finally:
        if log.exists():
            OUT.mkdir(parents=True, exist_ok=True)
            shutil.copy(log, OUT / "jupyter-formgrader-manual.log")


@pytest.fixture
def page(jupyter):
    from playwright.sync_api import sync_playwright

    base, _ = jupyter
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      device_scale_factor=1)
        context.set_default_timeout(PAGE_TIMEOUT_MS)

        def route(route):  # the server only (no network here: nothing else is asked for)
            url = route.request.url
            if url.startswith(base + "/") or url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                route.abort()

        context.route("**/*", route)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.e2e_errors = errors  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            try:  # the page as it was at the end (at a failure), for the CI log's reader
                OUT.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(OUT / "formgrader-manual-last-page.png"), timeout=10_000)
            except Exception:
                pass
            context.close()
            browser.close()


# ----------------------------------------------------------------------------------------------
# The test
# ----------------------------------------------------------------------------------------------

def wait_formgrader_ready(page) -> None:
    """Until the Formgrader's scripts have loaded the submission's grades and comments (the
    score and comment boxes save on change only then) and finished their set-up, keyboard
    shortcuts included (`formgrader.loaded`: after MathJax, which the server serves)."""
    page.wait_for_function(
        "() => window.formgrader && formgrader.loaded && formgrader.grades"
        " && formgrader.grades.loaded && formgrader.comments && formgrader.comments.loaded",
        timeout=PAGE_TIMEOUT_MS)


def answer_cell(page):
    """The Formgrader's panel of the graded answer cell (its score box has the grade id as id)."""
    return page.locator(".nbgrader_cell").filter(has=page.locator(f"input.score#{GRADE_ID}"))


def show_cell(page, cell) -> None:
    """Scroll so that the cell is near the top, below the Formgrader's fixed navigation bar."""
    cell.scroll_into_view_if_needed()
    page.evaluate("el => window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - 140)",
                  cell.element_handle())
    page.wait_for_timeout(300)


def shrink_png(path: Path, max_bytes: int = 280_000) -> None:
    """A palette PNG, as test_lab_browser.py does (the README's screenshots stay small)."""
    from PIL import Image

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                 dither=Image.Dither.NONE).save(path, optimize=True)
    assert path.stat().st_size < max_bytes, f"{path} is {path.stat().st_size} bytes"


def test_instructor_grades_an_answer_by_hand_in_the_formgrader(graded_course, jupyter, page):
    from nbgrader.api import Gradebook

    started = time.perf_counter()
    course, student, before, timings = graded_course
    base, token = jupyter
    db_url = f"sqlite:///{course / 'gradebook.db'}"

    # What the autograder left: the answer verbatim, its grade waiting for the instructor, full
    # marks on the autograded tests.
    autograded = nbformat.read(course / "autograded" / STUDENT / ASSIGNMENT / NOTEBOOK, as_version=4)
    answer = next(c for c in autograded.cells if c.get("id") == ANSWER_CELL)
    assert answer.metadata["nbgrader"]["grade_id"] == GRADE_ID
    assert answer.source == sanitize_markdown(simulated_class.HAND_ANSWER)  # its clean rendering
    with Gradebook(db_url) as gradebook:
        pending = gradebook.find_grade(GRADE_ID, NOTEBOOK_ID, ASSIGNMENT, STUDENT)
        assert pending.needs_manual_grade and pending.manual_score is None
        assert pending.max_score == POINTS
        submission = gradebook.find_submission_notebook(NOTEBOOK_ID, ASSIGNMENT, STUDENT)
        submission_id = submission.id
        auto_score, max_code_score = submission.code_score, submission.max_code_score
        max_score = submission.max_score
    assert auto_score == max_code_score == student.total, \
        f"{STUDENT}: autograded {auto_score} / {max_code_score}, expected full marks {student.total}"
    assert float(before["score"]) == auto_score, before
    assert float(before["max_score"]) == max_score, before

    # 1. The Formgrader (this logs the browser in: the token in the URL sets the session
    #    cookie), then Manual Grading > vae > vae_tp > the student's submission.
    page.goto(f"{base}/formgrader?token={token}", wait_until="load")
    page.wait_for_url("**/formgrader/manage_assignments")
    page.locator(".nav a", has_text="Manual Grading").first.click()
    page.wait_for_url("**/formgrader/gradebook")
    page.locator("#main-table").get_by_role("link", name=ASSIGNMENT, exact=True).click()
    page.wait_for_url(f"**/formgrader/gradebook/{ASSIGNMENT}")
    page.locator("#main-table").get_by_role("link", name=NOTEBOOK_ID, exact=True).click()
    page.wait_for_url(f"**/formgrader/gradebook/{ASSIGNMENT}/{NOTEBOOK_ID}")
    submissions = page.locator("#main-table a.name-hidden")
    submissions.first.wait_for()
    assert submissions.count() == 1, page.inner_text("#main-table")
    page.locator("#toggle_names").click()  # "Show All Names": the student's id, not a number
    page.locator("#main-table a.name-shown").get_by_text(STUDENT, exact=True).click()
    page.wait_for_url(f"**/formgrader/submissions/{submission_id}/")
    page.wait_for_selector("#notebook-container .cell")
    wait_formgrader_ready(page)

    # 2. The answer cell, with the student's words as written, and nothing scored yet.
    cell = answer_cell(page)
    assert cell.count() == 1
    shown = cell.locator(".text_cell_render").inner_text()
    assert " ".join(shown.split()) == simulated_class.HAND_ANSWER, shown
    assert "Student's answer" in cell.locator(".panel-heading").inner_text()
    score = cell.locator("input.score")
    comment = cell.locator("textarea.comment")
    assert score.input_value() == "" and comment.input_value() == ""
    assert "needs_manual_grade" in (score.get_attribute("class") or "")
    show_cell(page, cell)

    # The release's formulas, laid out by the browser as MathML (no script, no CDN).
    laid_out = page.evaluate(
        "() => [...document.querySelectorAll('#notebook-container math')].filter(m =>"
        " getComputedStyle(m).display.includes('math') && m.getBoundingClientRect().width > 0)"
        ".length")
    assert laid_out >= 100, laid_out
    assert page.evaluate("() => window.MathJax && MathJax.loaded === true")

    # 3. Type the point, then Tab: the Formgrader moves to the comment box and saves the score
    #    on change, when the score box loses the focus...
    def put(kind: str):
        return lambda r: (r.request.method == "PUT"
                          and f"/formgrader/api/{kind}/" in r.url)

    with page.expect_response(put("grade"), timeout=PAGE_TIMEOUT_MS) as saved:
        score.click()
        score.press_sequentially(str(POINTS))
        page.keyboard.press("Tab")
    response = saved.value
    assert response.ok, f"saving the score: HTTP {response.status} {response.text()[:500]}"
    body = response.json()
    assert body["name"] == GRADE_ID and float(body["manual_score"]) == POINTS, body
    # (Tab is the Formgrader's: the focus went to the page's next score or comment box)
    moved = page.evaluate("() => [document.activeElement.classList.contains('tabbable'),"
                          " document.activeElement.id, document.activeElement.className]")
    assert moved[0] and moved[1] != GRADE_ID, moved
    # ... then type a comment and Escape: the comment is saved too.
    with page.expect_response(put("comment"), timeout=PAGE_TIMEOUT_MS) as saved:
        comment.click()
        page.keyboard.type(COMMENT)
        page.keyboard.press("Escape")
    response = saved.value
    assert response.ok, f"saving the comment: HTTP {response.status} {response.text()[:500]}"
    assert response.json()["manual_comment"] == COMMENT, response.json()

    # 4. The page loaded again shows what was saved.
    page.reload(wait_until="load")
    wait_formgrader_ready(page)
    cell = answer_cell(page)
    assert float(cell.locator("input.score").input_value()) == POINTS
    assert cell.locator("textarea.comment").input_value() == COMMENT
    assert "needs_manual_grade" not in (cell.locator("input.score").get_attribute("class") or "")
    show_cell(page, cell)
    shot = screenshot_dir() / "formgrader-manual-grade.png"
    page.screenshot(path=str(shot))
    shrink_png(shot)
    errors = page.e2e_errors  # type: ignore[attr-defined]
    assert not errors, f"errors in the Formgrader's page: {errors}"
    browser_s = time.perf_counter() - started

    # 5. The gradebook has the point and the comment.
    with Gradebook(db_url) as gradebook:
        graded = gradebook.find_grade(GRADE_ID, NOTEBOOK_ID, ASSIGNMENT, STUDENT)
        assert graded.manual_score == POINTS, graded.to_dict()
        assert graded.auto_score is None and not graded.needs_manual_grade, graded.to_dict()
        assert graded.score == POINTS
        note = gradebook.find_comment(GRADE_ID, NOTEBOOK_ID, ASSIGNMENT, STUDENT)
        assert note.manual_comment == COMMENT
        total = gradebook.find_submission_notebook(NOTEBOOK_ID, ASSIGNMENT, STUDENT).score
    assert total == auto_score + POINTS

    # 6. The export counts it: one point above the autograded score, out of the same maximum.
    grade(course, "grades")
    after = exported(course)
    assert float(after["score"]) == float(before["score"]) + POINTS, (before, after)
    assert float(after["max_score"]) == float(before["max_score"]) == max_score, (before, after)

    # 7. A forced regrade of the unchanged notebook keeps the mark, and the feedback shows it.
    grade(course, "autograde", "--force")
    with Gradebook(db_url) as gradebook:
        graded = gradebook.find_grade(GRADE_ID, NOTEBOOK_ID, ASSIGNMENT, STUDENT)
        assert graded.manual_score == POINTS and not graded.needs_manual_grade, graded.to_dict()
        assert gradebook.find_comment(GRADE_ID, NOTEBOOK_ID, ASSIGNMENT,
                                      STUDENT).manual_comment == COMMENT
    grade(course, "feedback")
    feedback = (course / "feedback" / STUDENT / ASSIGNMENT / NOTEBOOK).with_suffix(".html")
    page_text = html.unescape(feedback.read_text(encoding="utf-8"))
    assert "not graded yet" not in page_text and COMMENT in page_text

    print(f"\n{STUDENT}: {before['score']} -> {after['score']} / {after['max_score']} after "
          f"{GRADE_ID} graded by hand; screenshot {shot}; timings (s): "
          + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
          + f", browser {browser_s:.0f}, total {time.perf_counter() - started:.0f}")
