"""The feedback page a student reads, rendered from an autograded notebook without a grading round
(vaetp/grading/feedback.py; in Chromium: tests/e2e/test_feedback_page.py; with the gradebook:
tests/test_hand_marks.py)."""

from __future__ import annotations

import html
import re

import nbformat
import pytest
from course_paths import MASTER

from vaetp.grading.feedback import FeedbackExporter, cell_titles

GENERIC = {"Test cell", "Written response", "Comment", "Coding free-response", "Task"}


@pytest.fixture(scope="module")
def titles() -> dict[str, str]:
    return cell_titles(nbformat.read(MASTER, as_version=4))


def test_every_graded_cell_of_the_tp_is_named_after_what_it_is(titles):
    master = nbformat.read(MASTER, as_version=4)
    graded = [c.metadata["nbgrader"]["grade_id"] for c in master.cells
              if c.metadata.get("nbgrader", {}).get("grade")
              or c.metadata.get("nbgrader", {}).get("solution")]  # not the locked check cells
    assert set(titles) == set(graded)
    assert len(set(titles.values())) == len(titles), "two cells with one name"
    assert titles["test_decoder_hidden_layer"] == (
        "10. The decoder, test: hidden layer: Dense(intermediate_dim), relu")
    assert titles["test_kl_wide"] == "8. The KL divergence, hidden test: codes far from the prior"
    assert titles["question_overfitting"] == (
        "Question 1: Compare the training and validation losses at the end of training.")
    assert titles["decoder_exercise"] == "10. The decoder, your answer"
    assert not set(titles.values()) & GENERIC


def _graded(grade_id: str, cell: nbformat.NotebookNode, **meta) -> nbformat.NotebookNode:
    cell.metadata["nbgrader"] = {"grade_id": grade_id, "schema_version": 3, "locked": False,
                                 **meta}
    return cell


def page(titles: dict[str, str], pending: bool) -> str:
    """A page as GenerateFeedback makes it, after GetGrades and FeedbackDetails."""
    failed = nbformat.v4.new_output(
        "error", ename="DecoderMismatch",
        evalue="your hidden layer has 256 units; the TP asks for 512 (the parameter "
               "intermediate_dim). " + "A long sentence that must wrap. " * 20,
        traceback=["\x1b[0;31mDecoderMismatch\x1b[0m: your hidden layer has 256 units"])
    cells = [
        _graded("test_decoder_hidden_layer", nbformat.v4.new_code_cell(
            "checks.check_hidden_layer(decoder, decoder_spec)", outputs=[failed]),
            grade=True, solution=False, points=1, score=0.0,
            title=titles["test_decoder_hidden_layer"]),
        _graded("question_overfitting", nbformat.v4.new_markdown_cell("The curves stay close."),
                grade=True, solution=True, points=1, score=0.0, comment=None,
                title=titles["question_overfitting"], **({"not_graded": True} if pending else {})),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    resources = {"nbgrader": {"notebook": "vae_tp", "score": 0, "max_score": 2,
                              "late_penalty": 0, "not_graded": int(pending),
                              "not_graded_points": float(pending)}}
    body, _ = FeedbackExporter().from_notebook_node(nb, resources=resources)
    return body


def text_of(body: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


def test_a_failed_test_shows_its_sentence_without_the_class_name(titles):
    body = page(titles, pending=False)
    message = re.search(r'<div class="[^"]*vaetp-message">(.*?)</div>', body, re.S)
    assert message, body[-3000:]
    words = text_of(message.group(1))
    assert "your hidden layer has 256 units; the TP asks for 512" in words
    assert "DecoderMismatch" not in text_of(body)
    # wrapped, within the page: the course's style, inline (the page's policy allows no file)
    assert "white-space: normal" in body and "overflow-wrap: anywhere" in body
    assert "img { max-width: 100%; height: auto; }" in body


def test_the_contents_name_each_test_and_question(titles):
    entries = re.findall(r'<li><a href="#[^"]+">([^<]*)</a>', page(titles, pending=False))
    assert [html.unescape(e) for e in entries] == [titles["test_decoder_hidden_layer"],
                                                   titles["question_overfitting"]]


def test_a_question_not_graded_yet_reads_not_graded_yet_not_a_score_of_0(titles):
    words = text_of(page(titles, pending=True))
    assert "1 question is not graded yet" in words
    assert f"{titles['question_overfitting']} ( not graded yet , out of 1.0)" in words
    assert "Score: 0.0 / 1.0 (Top) The curves stay close" not in words
    graded = text_of(page(titles, pending=False))
    assert "not graded yet" not in graded and "Score: 0.0 / 1.0" in graded


def test_the_page_runs_no_script(titles):
    body = page(titles, pending=True)
    assert "Content-Security-Policy" in body and "script-src 'none'" in body
    assert "<script" not in body.lower()
