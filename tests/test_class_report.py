"""An instructor reads what the class got wrong before the next lecture (`make report`,
vaetp.grading.class_report). The whole round, with exact counts for the simulated class, is in
test_grading.py; here, the report's rules on small made-up results."""

from __future__ import annotations

import csv

from test_sanitize import live_html_problems

from vaetp.grading import class_report
from vaetp.grading.class_report import ClassData, answer_kind, groups, normalise
from vaetp.grading.csp import FEEDBACK_POLICY


def test_one_mistake_is_one_group_whatever_the_numbers():
    a = normalise("your decoder has 202,256 parameters; the TP's has 403,728 = 1,536 + 402,192.")
    b = normalise("your decoder has 804,112 parameters; the TP's has 403,728 = 1,536 + 402,192.")
    assert a == b == "your decoder has # parameters; the TP's has # = # + #."
    assert normalise("kl -0.5 and 1e-3,  not  2.5") == "kl # and #, not #"
    assert normalise("the layer conv2d_3 and `x_decoded`") == "the layer conv2d_3 and `x_decoded`"


def test_an_answer_cell_is_told_loaded_edited_written_or_as_released():
    released = "# %load ../solutions/kl_divergence.py\ndef kl_divergence(z_mean, z_log_var):\n    ...\n"
    solution = ("# Solution (generated)\ndef kl_divergence(z_mean, z_log_var):\n"
                "    return -0.5 * ops.sum(1 + z_log_var, axis=-1)\n")
    solutions = {"kl_divergence.py": solution}
    loaded = "# %load ../solutions/kl_divergence.py\n" + solution
    assert answer_kind(released, released, solutions) == "unanswered"
    assert answer_kind(loaded, released, solutions) == "loaded"
    assert answer_kind(loaded.replace("-0.5", "0.5"), released, solutions) == "loaded+edited"
    assert answer_kind("def kl_divergence(a, b):\n    return 0\n", released, solutions) == "written"
    assert answer_kind(None, released, solutions) == "missing"


def _class() -> ClassData:
    evil = '"><img src=x onerror=alert(1)>'
    return ClassData(
        students=["ana", "ben", "cyd", evil],
        tests=[("decoder", "test_decoder_hidden_layer", 1.0), ("decoder", "test_decoder_count", 2.0)],
        questions=[("question_overfitting", 1.0)],
        scores={"ana": {"test_decoder_hidden_layer": 1, "test_decoder_count": 2,
                        "question_overfitting": 1},
                "ben": {"test_decoder_hidden_layer": 0, "test_decoder_count": 0,
                        "question_overfitting": None},
                "cyd": {"test_decoder_hidden_layer": 0, "test_decoder_count": 1,
                        "question_overfitting": 0},
                evil: {"test_decoder_hidden_layer": 0, "test_decoder_count": 0}},
        kinds={"decoder": {"ana": "loaded", "ben": "written", "cyd": "written",
                           evil: "unanswered"}},
        messages={"test_decoder_hidden_layer": {
            "ben": "your hidden layer has 256 units; the TP asks for 512.",
            "cyd": "your hidden layer has 128 units; the TP asks for 512.",
            evil: "`decoder` is a <script>alert(1)</script>, not a Keras model."}},
        look=[(evil, "timed out <b>x</b>")])


def test_failures_are_grouped_most_frequent_first_with_their_students():
    data = _class()
    found = groups(data, "test_decoder_hidden_layer", 1.0)
    assert [(g.message, g.students) for g in found] == [
        ("your hidden layer has # units; the TP asks for #.", ["ben", "cyd"]),
        ("`decoder` is a <script>alert(#)</script>, not a Keras model.", [data.students[3]])]
    # a partial score is a failure; a student with no message lost the points ungraded
    partial = groups(data, "test_decoder_count", 2.0)
    assert [len(g.students) for g in partial] == [3]
    assert partial[0].message == "(no message: not graded)"


def test_the_page_shows_student_made_text_inert_and_runs_no_script():
    page = class_report.render_html(_class())
    assert f'content="{FEEDBACK_POLICY}"' in page
    assert not live_html_problems(page.split("<body>", 1)[1])
    assert "&lt;script&gt;alert(#)&lt;/script&gt;" in page
    assert "2 of 4 failed" not in page and "3 of 4 failed" in page  # hidden layer: ben, cyd, evil
    assert "1 of 3</td>" not in page and "2 of 4</td>" in page  # questions: 2 graded of 4
    assert "0.50 / 1" in page  # their mean


def test_the_csv_has_one_row_per_mistake_and_per_answer_kind(tmp_path):
    path = tmp_path / "report.csv"
    class_report.write_csv(_class(), path)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0] == {"kind": "failed test", "exercise": "decoder",
                       "test": "test_decoder_hidden_layer",
                       "what": "your hidden layer has # units; the TP asks for #.",
                       "students": "2", "who": "ben cyd"}
    kinds = {r["what"]: int(r["students"]) for r in rows if r["kind"] == "answer cell"}
    assert kinds == {"loaded": 1, "written": 2, "unanswered": 1}


def test_tests_nobody_failed_take_one_line_so_that_the_mistakes_stand_out():
    data = _class()
    data.tests.append(("decoder", "test_decoder_input_shape", 1.0))
    for student in data.students:
        data.scores.setdefault(student, {})["test_decoder_input_shape"] = 1
    page = class_report.render_html(data)
    assert "<p class='passed'>Passed by every student: test_decoder_input_shape.</p>" in page
    assert "<h3>test_decoder_input_shape" not in page
    assert "<h3>test_decoder_hidden_layer (decoder, 1 point): 3 of 4 failed</h3>" in page
