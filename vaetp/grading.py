"""nbgrader preprocessors that keep autograding bounded and fair, whatever a submission does.

nbgrader_config.py puts them in place of nbgrader's own `Execute` and `LimitOutput` (by name,
so this module is imported only when a notebook is autograded):

- `GradingExecute` runs a submission like nbgrader's `Execute` (a cell that runs longer than
  `timeout` seconds is interrupted and gets an error), and adds two bounds:
  * a time limit for the whole notebook (`notebook_timeout`): once it is spent, the remaining
    cells are not run;
  * a kernel that dies (`os._exit`, a crash, out of memory) no longer aborts the grading of the
    submission (nbgrader would then drop the student's autograded notebook and feedback): the
    cell where it died and every later cell are not run.
  A cell that is not run gets an error output that says why, in plain words, so that a graded
  test cell it blocks scores 0 (nbgrader gives full points to a test cell without an error)
  and the student's feedback tells what happened.
- `GradingLimitOutput` is nbgrader's `LimitOutput` (at most `max_lines` lines per cell) plus a
  bound on characters (`max_chars`), for a gigantic output written on few lines.

None of this is imported by the students' notebook.
"""

from __future__ import annotations

import math
import time
from typing import Any

from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute, LimitOutput
from traitlets import Integer

#: The `ename` of the error output put in a cell that was not run (or did not finish).
NOT_RUN = "NotRunByGrader"
TIMEOUT = "CellTimeoutError"
KERNEL_DIED = "KernelDied"


def _error(ename: str, message: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=message,
                        traceback=[f"\x1b[0;31m{ename}\x1b[0m: {message}"])


class GradingExecute(Execute):
    """nbgrader's Execute, with a time limit per notebook and survival of a dead kernel."""

    notebook_timeout = Integer(
        600, help="Seconds for the whole notebook; later cells are not run (0: no limit)."
    ).tag(config=True)

    _deadline: float | None = None
    _stop_reason: str | None = None

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None):
        self._deadline = (time.monotonic() + self.notebook_timeout
                          if self.notebook_timeout and self.notebook_timeout > 0 else None)
        self._stop_reason = None
        limit = self.timeout
        self.error_on_timeout = {
            "ename": TIMEOUT,
            "evalue": "",
            "traceback": [f"\x1b[0;31m{TIMEOUT}\x1b[0m: this cell ran longer than the grading "
                          f"limit ({limit} s per cell, {self.notebook_timeout} s per notebook) "
                          "and was interrupted; an endless loop?"],
        }
        return super().preprocess(nb, resources, km)

    def _get_timeout(self, cell: NotebookNode | None) -> int | None:
        timeout = super()._get_timeout(cell)
        if self._deadline is None or cell is None:
            return timeout
        left = max(1, math.ceil(self._deadline - time.monotonic()))
        return left if timeout is None else min(timeout, left)

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int):
        if cell.cell_type != "code" or not cell.source.strip():
            return super().preprocess_cell(cell, resources, index)
        if self._stop_reason is None and self._deadline is not None \
                and time.monotonic() >= self._deadline:
            self._stop_reason = (f"not run: the notebook used up its grading time "
                                 f"({self.notebook_timeout} s) before this cell.")
        if self._stop_reason is not None:
            cell.outputs = [_error(NOT_RUN, self._stop_reason)]
            cell.execution_count = None
            return cell, self.resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self.log.warning("The kernel died in cell %s; the later cells are not run", index)
            cell.outputs.append(_error(
                KERNEL_DIED,
                "the Python kernel died while running this cell (os._exit, a crash or out of "
                "memory), so it did not finish and no later cell could run.",
            ))
            self._stop_reason = ("not run: the Python kernel died in an earlier cell, so this "
                                 "cell could not run.")
            return cell, self.resources


class GradingLimitOutput(LimitOutput):
    """nbgrader's LimitOutput (lines per cell), plus at most `max_chars` characters per output."""

    max_chars = Integer(
        20_000, help="Maximum number of characters kept per text output (-1: no limit)."
    ).tag(config=True)

    def _cut(self, text: str) -> str:
        if self.max_chars < 0 or len(text) <= self.max_chars:
            return text
        return (text[: self.max_chars] + f"\n... Output truncated: {len(text):,} characters, "
                f"the first {self.max_chars:,} kept ...\n")

    def preprocess_cell(self, cell: NotebookNode, resources: Any, cell_index: int):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if cell.cell_type != "code":
            return cell, resources
        for output in cell.outputs:
            if output.output_type == "stream":
                output.text = self._cut(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                for mime, value in list(output.get("data", {}).items()):
                    if isinstance(value, str) and mime.startswith("text/"):
                        output.data[mime] = self._cut(value)
        return cell, resources
