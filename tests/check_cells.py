"""A student's check cell says what the graded tests say: a student told "All checks passed"
keeps the points, and a failed test's message is in the check cell's output, word for word
(the hidden tests hide their inputs, the grader's seed, not what they check)."""

from __future__ import annotations

import contextlib
import io
from typing import Any, Callable


def check_cell_output(check_cell: Callable[..., None], *args: Any) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        check_cell(*args)
    return out.getvalue()


def assert_check_cell_agrees(found: dict[str, str], check_cell: Callable[..., None],
                             *args: Any) -> None:
    """`found`: the graded tests' failures (test -> message) on the same answer and seed."""
    text = check_cell_output(check_cell, *args)
    if found:
        assert "All checks passed" not in text, (found, text)
        for message in found.values():
            assert message in text, (message, text)
    else:
        assert "All checks passed" in text, text
