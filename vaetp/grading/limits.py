"""`GradingLimitOutput`: nbgrader's LimitOutput (lines per cell) plus a bound on characters.

A submission can print megabytes on a few lines; the autograded notebook, the Formgrader and
the feedback would carry them all. Text outputs beyond `max_chars` are cut, with a note.
"""

from __future__ import annotations

from typing import Any

from nbformat import NotebookNode
from nbgrader.preprocessors import LimitOutput
from traitlets import Integer


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
