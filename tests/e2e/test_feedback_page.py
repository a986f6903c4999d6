"""A student opens their feedback page in Chromium at 1280 px and can read it.

A scratch course releases the TP without solutions, and two students hand it in: bob (from the
example class: a decoder of 256 hidden units, so two failed tests with long messages) and dora,
who answered question 1 (not graded yet) and whose notebook, as handed in, shows a figure 2,400
pixels wide in a cell the grader does not run. Both are autograded through the sandbox and get
their feedback (tools/grade.py). Each page is opened from disk, as a student does, in Debian's
Chromium at 1280 x 900, and must show:

- each failed test's sentence whole, wrapped inside the page (no horizontal scroll, no part of
  the message past the right edge), without an exception's class name;
- contents entries named after what they are (no "Test cell", "Written response", "Comment");
- every image, the TP's diagrams and the student's own figure, within the page's width;
- dora's own figure, under "as handed in, not re-run by the grader";
- "not graded yet", at the top and under question 1, instead of a 0.

Then the instructor's class report (`make report`) of the two, in the same browser.

Screenshots go to build/e2e/screenshots/feedback-*.png and class-report.png (or the folder VAE_TP_E2E_SCREENSHOTS
names); they stay out of the repository.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from e2e_support import CHROMIUM_ARGS, run_grade

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from vaetp.grading.execute import AS_SUBMITTED_NOTE, SKIP_TAG  # noqa: E402
from vaetp.grading.feedback import cell_titles  # noqa: E402

CHROMIUM = os.environ.get("VAE_TP_CHROMIUM", "/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 900
NOTEBOOK = Path("vae") / "vae_tp.ipynb"
GENERIC = {"Test cell", "Written response", "Comment", "Coding free-response", "Task"}
FIGURE_CELL = "loss-curves"  # a figure the grader does not draw (tagged skip-when-grading)
ANSWER = "The two curves stay close: the gap is a few nats, so the VAE does not overfit."


def screenshot_dir() -> Path:
    path = Path(os.environ.get("VAE_TP_E2E_SCREENSHOTS", REPO / "build" / "e2e" / "screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def wide_png(width: int = 2400, height: int = 300) -> str:
    """A PNG wider than any screen, as a student's figure saved at a high dpi would be."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width / 100, height / 100), dpi=100)
    ax.plot(range(50), [x ** 0.5 for x in range(50)], label="my training loss")
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def doras_notebook(release: Path, solutions: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(release, as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and cell.cell_type == "code":
            name = {"kl_exercise": "kl_divergence", "decoder_exercise": "decoder_vae",
                    "vae_exercise": "vae_model", "reconstruction_exercise": "reconstruction_loss",
                    "generate_exercise": "generate_digits", "anomaly_exercise": "anomaly_detection",
                    "conv_exercise": "conv_vae"}.get(meta.get("grade_id"))
            if name:
                cell.source = (solutions / f"{name}.py").read_text(encoding="utf-8")
        if meta.get("grade_id") == "question_overfitting":
            cell.source = ANSWER
        if cell.get("id") == FIGURE_CELL:
            assert SKIP_TAG in cell.metadata.get("tags", []), "pick a cell the grader skips"
            cell.outputs = [nbformat.v4.new_output(
                "display_data", {"image/png": wide_png(), "text/plain": "<Figure>"})]
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """bob and dora, autograded through the sandbox, with their feedback, grades and the class
    report."""
    tmp = tmp_path_factory.mktemp("feedback")
    course, inbox, example = tmp / "course", tmp / "inbox", tmp / "example"
    run_grade(course, "release", "--no-solutions")
    run_grade(course, "example-class", "--out", str(example))
    inbox.mkdir()
    shutil.copy(example / "bob.ipynb", inbox / "bob.ipynb")
    nbformat.write(doras_notebook(course / "release" / NOTEBOOK, REPO / "solutions"),
                   inbox / "dora.ipynb")
    run_grade(course, "autograde", "--submissions", str(inbox), timeout=600)
    run_grade(course, "feedback")
    run_grade(course, "grades")
    run_grade(course, "report")
    return course


def test_a_student_reads_the_whole_feedback_page_at_1280_pixels(course):
    from playwright.sync_api import sync_playwright

    titles = cell_titles(nbformat.read(REPO / "source" / NOTEBOOK, as_version=4))
    shots = screenshot_dir()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            found = {}
            for student in ("bob", "dora"):
                path = (course / "feedback" / student / NOTEBOOK).with_suffix(".html")
                page.goto(path.as_uri(), wait_until="load")
                found[student] = page.evaluate("""() => ({
                    scrollWidth: document.documentElement.scrollWidth,
                    messages: [...document.querySelectorAll('.vaetp-message')].map(m => ({
                        text: m.innerText, scroll: m.scrollWidth, client: m.clientWidth,
                        right: m.getBoundingClientRect().right})),
                    toc: [...document.querySelectorAll('#toc li')].map(li => li.innerText),
                    links: [...document.querySelectorAll('#toc li a')].map(a => a.innerText),
                    images: [...document.images].map(i => ({
                        right: i.getBoundingClientRect().right, natural: i.naturalWidth,
                        width: i.getBoundingClientRect().width})),
                    pending: [...document.querySelectorAll('.vaetp-pending')].map(e => e.innerText),
                    notes: [...document.querySelectorAll('.vaetp-as-submitted')].map(e => e.innerText),
                })""")
                page.screenshot(path=str(shots / f"feedback-{student}-top.png"))
                first = page.query_selector(".vaetp-message")
                if first is not None:
                    first.scroll_into_view_if_needed()
                    page.screenshot(path=str(shots / f"feedback-{student}-failed-test.png"))
                wide = page.query_selector(f"#cell-id\\={FIGURE_CELL} img")
                if wide is not None:
                    wide.scroll_into_view_if_needed()
                    page.screenshot(path=str(shots / f"feedback-{student}-own-figure.png"))
        finally:
            browser.close()

    for student, seen in found.items():
        assert seen["scrollWidth"] <= WIDTH, f"{student}: the page scrolls sideways ({seen['scrollWidth']} px)"
        # contents: one entry per graded cell, each named after what it is
        assert len(seen["links"]) >= 33, seen["links"]
        generic = [text for text in seen["links"] if text.strip() in GENERIC]
        assert not generic, f"{student}: contents entries without a name: {generic}"
        assert titles["test_decoder_hidden_layer"] in seen["links"]
        assert titles["question_overfitting"] in seen["links"]
        # images: the diagrams and the student's own figures, within the page
        assert len(seen["images"]) >= 2, seen["images"]
        too_wide = [i for i in seen["images"] if i["right"] > WIDTH or i["width"] > WIDTH]
        assert not too_wide, f"{student}: images past the page's edge: {too_wide}"

    bob = found["bob"]
    assert len(bob["messages"]) == 2, bob["messages"]  # hidden layer, parameter count
    for message in bob["messages"]:
        assert message["scroll"] <= message["client"] and message["right"] <= WIDTH, message
        assert "Mismatch" not in message["text"] and "Error:" not in message["text"], message
    texts = " ".join(m["text"] for m in bob["messages"])
    assert "your hidden layer has 256 units; the TP asks for 512 (the parameter intermediate_dim)." in texts
    assert "+ 402,192 (output: 512 x 784 + 784)." in texts  # the end of the longest message
    assert not bob["pending"]

    dora = found["dora"]
    assert not dora["messages"], dora["messages"]  # every exercise right
    assert dora["pending"] and "1 question is not graded yet" in dora["pending"][0]
    entry = next(t for t in dora["toc"] if t.startswith(titles["question_overfitting"]))
    assert "not graded yet" in entry and "Score: 0.0" not in entry, entry
    assert AS_SUBMITTED_NOTE.strip() in dora["notes"]
    assert any(i["natural"] == 2400 for i in dora["images"]), dora["images"]


def test_an_instructor_reads_the_class_report_at_1280_pixels(course):
    """`make report` opened from disk in Chromium, as the instructor does before the next
    lecture: bob's two mistakes each in their group with his name and a link to his feedback
    that opens, dora's question counted as not graded yet, the figures within the page, no
    sideways scroll, and no script (the page carries the feedback's policy)."""
    from playwright.sync_api import sync_playwright

    page_path = course / "class_report.html"
    shots = screenshot_dir()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.goto(page_path.as_uri(), wait_until="load")
            seen = page.evaluate("""() => ({
                scrollWidth: document.documentElement.scrollWidth,
                headings: [...document.querySelectorAll('h2, h3')].map(h => h.innerText),
                rows: [...document.querySelectorAll('tr')].map(r => r.innerText),
                links: [...document.querySelectorAll('a[href]')].map(a => a.href),
                images: [...document.images].map(i => ({
                    right: i.getBoundingClientRect().right, natural: i.naturalWidth})),
                scripts: document.scripts.length,
            })""")
            page.screenshot(path=str(shots / "class-report.png"))
            feedback = next(link for link in seen["links"] if "feedback/bob/" in link)
            page.goto(feedback, wait_until="load")
            opened = page.evaluate("() => document.querySelectorAll('.vaetp-message').length")
        finally:
            browser.close()

    assert seen["scrollWidth"] <= WIDTH, seen["scrollWidth"]
    assert seen["scripts"] == 0
    assert {"Exercises", "Tests, by mistake", "Questions graded by hand"} <= set(seen["headings"])
    mistakes = [row for row in seen["rows"] if "bob" in row and "#" in row]
    assert len(mistakes) == 2, seen["rows"]  # the hidden layer and the parameter count
    assert any("your hidden layer has # units" in row for row in mistakes), mistakes
    assert opened == 2  # the link opens bob's feedback, on his two failed tests
    assert seen["images"] and all(i["natural"] > 0 and i["right"] <= WIDTH for i in seen["images"])
    question = next(row for row in seen["rows"] if row.startswith("question_overfitting"))
    # bob left it as released (0, graded by nbgrader); dora's answer is not graded yet
    assert question.split("\t")[1] == "1 of 2", question
