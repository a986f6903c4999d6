"""A tiny class of three submissions, made from the release, for an instructor's first round
(`tools/grade.py example-class`, docs/instructor.md):

- alice pulls every solution in with `%load`: full marks on the autograded tests;
- bob does the same, but his decoder's hidden layer has another width than `intermediate_dim`:
  he loses the hidden-layer and parameter-count tests;
- carol hands the release in unsolved: no autograded point.

`solved(release, solutions)` is also the start of every simulated student of the test suite
(tests/simulated_class.py).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import nbformat

from vaetp.course import parameters_of
from vaetp.grading import markers

DECODER_CELL = "decoder-exercise"
#: The tests that a wrong hidden width fails (one mistake, two properties: the layer, the count).
WIDTH_TESTS = ("test_decoder_hidden_layer", "test_decoder_parameter_count")


@dataclass
class ExampleStudent:
    name: str
    why: str
    notebook: nbformat.NotebookNode
    expected: int  # autograded points
    out_of: int


def graded_tests(release: nbformat.NotebookNode) -> dict[str, int]:
    """The release's graded test cells (grade id: points), in notebook order."""
    return {c.metadata["nbgrader"]["grade_id"]: int(c.metadata["nbgrader"]["points"])
            for c in release.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}


def exercise_cells(release: nbformat.NotebookNode) -> dict[str, str]:
    """Each exercise cell's id and the solution file its `%load` line names."""
    found = {}
    for cell in release.cells:
        match = markers.SOLUTION_LOAD_RE.search(cell.source)
        if cell.cell_type == "code" and match:
            found[cell.get("id")] = match.group(1)
    return found


def cell(nb: nbformat.NotebookNode, cell_id: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.get("id") == cell_id)


def solved(release: nbformat.NotebookNode, solutions: dict[str, str]) -> nbformat.NotebookNode:
    """The release with every exercise answered as `%load` answers it: the load line, then the
    solution file's text."""
    notebook = copy.deepcopy(release)
    for cell_id, name in exercise_cells(release).items():
        if name not in solutions:
            raise KeyError(f"no solutions/{name} for the exercise cell {cell_id}: run "
                           "`make generate`, then the release step again")
        cell(notebook, cell_id).source = f"# %load ../solutions/{name}\n" + solutions[name]
    return notebook


def wrong_width(intermediate_dim: int) -> int:
    """A hidden width that the TP does not ask for: 256, or 128 where the TP asks for 256."""
    return 256 if int(intermediate_dim) != 256 else 128


def build(release: nbformat.NotebookNode, solutions: dict[str, str],
          parameters: dict[str, int] | None = None) -> list[ExampleStudent]:
    """alice, bob and carol. `parameters`: the master's (for bob's wrong width); by default read
    from the release's own parameters cell, which the release copies from the master."""
    parameters = parameters or parameters_of(release)
    tests = graded_tests(release)
    total = sum(tests.values())
    alice = solved(release, solutions)
    width = wrong_width(parameters["intermediate_dim"])
    bob = copy.deepcopy(alice)
    decoder = cell(bob, DECODER_CELL)
    changed = decoder.source.replace("(intermediate_dim,", f"({width},")
    if changed == decoder.source:
        raise ValueError("the decoder's solution has no `Dense(intermediate_dim, ...)` to change")
    decoder.source = changed
    return [
        ExampleStudent("alice", "every exercise pulled in with %load", alice, total, total),
        ExampleStudent("bob", f"the same, but a decoder with {width} hidden units", bob,
                       total - sum(tests[t] for t in WIDTH_TESTS), total),
        ExampleStudent("carol", "the release handed in unsolved", copy.deepcopy(release), 0, total),
    ]
