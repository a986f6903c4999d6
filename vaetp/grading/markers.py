"""The markers of the master notebook and of the `%load` line, parsed in this one place.

- nbgrader's regions: `### BEGIN SOLUTION` / `### END SOLUTION` (the exercise's solution) and
  `### BEGIN HIDDEN TESTS` / `### END HIDDEN TESTS` (graded tests that exist only in the
  master);
- the `%load` line an exercise cell offers: `# %load ../solutions/NAME.py` (commented in the
  release; IPython leaves it, commented, above the file it loaded).

Used by tools/generate.py (solutions/ from the master), the release audit, the grading report
(how a decoder cell was made), the grader (hidden tests never reach a student's feedback),
tools/run_notebook.py and the tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SOLUTION = ("BEGIN SOLUTION", "END SOLUTION")
HIDDEN_TESTS = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
ALL = (*SOLUTION, *HIDDEN_TESTS)

#: `# %load PATH` or `%load PATH` alone on a line (group 1: PATH).
LOAD_LINE_RE = re.compile(r"^#?[ \t]*%load[ \t]+(\S+)[ \t]*$", re.MULTILINE)
#: The commented line of the release, which points into ../solutions/ (group 1: NAME.py).
SOLUTION_LOAD_RE = re.compile(r"^# %load \.\./solutions/(\S+\.py)[ \t]*$", re.MULTILINE)


def _region_re(begin: str, end: str) -> re.Pattern[str]:
    return re.compile(rf"^[ \t]*### {begin}[ \t]*\n(.*?)^[ \t]*### {end}[ \t]*(?:\n|$)",
                      re.S | re.M)


def regions(source: str, kind: tuple[str, str]) -> list[str]:
    """The text between each BEGIN/END pair of `kind` in a cell's source."""
    return [m.group(1) for m in _region_re(*kind).finditer(source)]


def strip(source: str, kind: tuple[str, str]) -> str:
    """The source without its `kind` regions (markers included)."""
    return _region_re(*kind).sub("", source).rstrip() + ("\n" if source.endswith("\n") else "")


def distinctive_lines(sources: Iterable[str], kind: tuple[str, str], minimum: int = 20) -> list[str]:
    """The lines of `kind` regions long enough to tell a leak from a coincidence."""
    return sorted({line.strip() for source in sources for region in regions(source, kind)
                   for line in region.splitlines() if len(line.strip()) >= minimum})


def load_target(source: str) -> str | None:
    """The PATH of the first `%load PATH` line of a cell, commented or not."""
    match = LOAD_LINE_RE.search(source)
    return match.group(1) if match else None
