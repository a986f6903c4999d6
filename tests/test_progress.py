"""An instructor's autograding round reads as one line per student and a short summary, with
nbgrader's own log kept in a file (vaetp.grading.progress; the whole round: test_grading.py)."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

from vaetp.grading import progress

NBGRADER_LOG = """\
[AutogradeApp | INFO] Copying /c/submitted/alice/vae/timestamp.txt -> /c/autograded/alice/vae/timestamp.txt
[AutogradeApp | WARNING] Attribute 'checksum' for cell test_decoder_shape has changed! (should be: 1a, got: 2b)
[AutogradeApp | WARNING] Attribute 'checksum' for cell test_kl_shape has changed! (should be: 3c, got: 4d)
/v/lib/python3.11/site-packages/nbgrader/api.py:12: SAWarning: relationship 'x' will copy column
I0000 00:00:1796045735.253665   17464 port.cc:153] oneDNN custom operations are on. You may see
[AutogradeApp | INFO] Writing 1234 bytes to /c/autograded/alice/vae/vae_tp.ipynb
[AutogradeApp | ERROR] There was an error processing assignment: /c/submitted/bob/vae
Traceback (most recent call last):
ValueError: the notebook is not valid JSON
"""


def test_the_known_false_alarms_are_counted_once_and_errors_shown_as_they_are():
    summary = progress.summarise_log(NBGRADER_LOG)
    assert summary[0].startswith("2 x nbgrader warned that the checksum of a hidden test cell "
                                 "changed: expected")
    assert summary[1].startswith("1 x SQLAlchemy notices")
    assert summary[2].startswith("1 x TensorFlow start-up notices")
    assert summary[3] == "3 error line(s) from nbgrader, the first ones:"
    assert summary[4:] == [
        "  [AutogradeApp | ERROR] There was an error processing assignment: /c/submitted/bob/vae",
        "  Traceback (most recent call last):",
        "  ValueError: the notebook is not valid JSON"]
    assert progress.summarise_log("[AutogradeApp | INFO] Skipping existing assignment") == []


def test_each_round_gets_its_own_log_folder(tmp_path):
    first = progress.log_folder(tmp_path)
    second = progress.log_folder(tmp_path)
    assert first.parent == tmp_path / "logs" and first.name.startswith("autograde-")
    assert second != first and first.is_dir() and second.is_dir()


def _log(path: Path, *lines: str) -> None:
    with path.open("a") as fh:
        fh.write("".join(line + "\n" for line in lines))


def _graded(student: str) -> tuple[str, str]:
    return (f"[AutogradeApp | INFO] Autograding /c/autograded/{student}/vae/vae_tp.ipynb",
            f"[AutogradeApp | INFO] Writing 537947 bytes to /c/autograded/{student}/vae/vae_tp.ipynb")


def test_a_student_is_reported_once_when_nbgrader_writes_the_graded_notebook(tmp_path):
    """nbgrader writes a student's notebook twice: sanitized (not done yet), then graded after
    "Autograding" (done); each student's seconds count from the previous student of the same
    job."""
    logs, out = [tmp_path / "job-1.log", tmp_path / "job-2.log"], io.StringIO()
    watch = progress.RoundProgress([["alice", "carol"], ["bob"]], logs,
                                   points=lambda s: {"alice": "27 / 27 autograded points"}.get(s),
                                   out=out, interval=3600).start()
    try:
        assert watch.poll() == []  # no log yet
        _log(logs[1], "[AutogradeApp | INFO] Writing 294632 bytes to /c/autograded/bob/vae/vae_tp.ipynb")
        assert watch.poll() == []  # bob's sanitized copy: not graded yet
        time.sleep(0.05)
        _log(logs[0], *_graded("alice"))
        assert watch.poll() == ["alice"]
        assert watch.poll() == []  # once
        time.sleep(0.1)
        with logs[0].open("a") as fh:  # a line half written when the grader looks
            fh.write(_graded("carol")[0] + "\n" + _graded("carol")[1][:30])
        _log(logs[1], *_graded("bob"))
        assert watch.poll() == ["bob"]
        with logs[0].open("a") as fh:
            fh.write(_graded("carol")[1][30:] + "\n")
        assert watch.poll() == ["carol"]
    finally:
        watch.stop()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[1/3] alice: 27 / 27 autograded points (") and lines[0].endswith(" s)")
    assert lines[1].startswith("[2/3] bob: points not read (")
    assert lines[2].startswith("[3/3] carol: ")
    # carol's seconds run from alice's end (the same job), bob's from the round's start
    assert watch.done["carol"] < watch.done["bob"]


def test_hand_marks_the_grader_removed_are_shown_to_the_instructor():
    """vaetp/grading/handmarks.py logs a changed answer whose mark it removed: the instructor
    must read it (and grade that answer again), whatever else the log holds."""
    changed = ("carol: the answer to question_overfitting changed since it was graded by hand: "
               "its mark (0.5) and comment are removed; grade it again in the Formgrader")
    summary = progress.summarise_log(NBGRADER_LOG + f"[AutogradeApp | WARNING] {changed}\n")
    assert "hand marks: 1 question(s) to look at again in the Formgrader:" in summary
    assert "  " + changed in summary
