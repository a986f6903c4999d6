"""A class of simulated students, built from the real release: every way a submission can go wrong.

`build(release_notebook, solution_text)` returns one `Student` per case: the notebook a student
would hand in (the release, edited the way that student did), the score expected on each of
the five graded tests, how the decoder cell was made (the %load report) and words that the
student's feedback HTML must show. tests/test_grading.py grades them with the real nbgrader.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import nbformat

#: The graded test cells, in notebook order, and their nbgrader grade ids.
TESTS = ("input_shape", "hidden_layer", "output_layer", "parameter_count", "composition")
GRADE_IDS = tuple(f"test_decoder_{name}" for name in TESTS)
EXERCISE_ID = "decoder-exercise"
LOAD_LINE = "# %load ../solutions/decoder_vae.py"


@dataclass
class Student:
    name: str
    why: str
    notebook: nbformat.NotebookNode
    scores: tuple[int, int, int, int, int]  # expected, in the order of TESTS
    decoder_cell: str  # expected kind (tools/grade.py decoder_cell_kind)
    feedback: list[str] = field(default_factory=list)  # must appear in the feedback HTML
    notes: list[str] = field(default_factory=list)  # must appear in the report's notes

    @property
    def total(self) -> int:
        return sum(self.scores)


def decoder_code(latent: str = "latent_dim", hidden: int | None = 512, hidden_act: str = "relu",
                 out_act: str = "sigmoid", name: str = "decoder") -> str:
    """A hand-written functional decoder, with the TP's sizes unless told otherwise."""
    lines = [f"z_in = keras.Input(shape=({latent},))"]
    last = "z_in"
    if hidden is not None:
        lines.append(f'hidden = layers.Dense({hidden}, activation="{hidden_act}")(z_in)')
        last = "hidden"
    lines.append(f'image = layers.Dense(784, activation="{out_act}")({last})')
    lines.append(f'{name} = keras.Model(z_in, image, name="decoder")')
    return "\n".join(lines) + "\n"


SEQUENTIAL = """\
decoder = keras.Sequential(
    [
        keras.Input(shape=(2,)),
        layers.Dense(intermediate_dim, activation=keras.activations.relu, name="h1"),
        layers.Dense(original_dim, activation="sigmoid", name="pixels"),
    ],
    name="my_decoder",
)
"""

SYNTAX_ERROR = """\
z_in = keras.Input(shape=(latent_dim,)
hidden = layers.Dense(512, activation="relu")(z_in)
decoder = keras.Model(z_in, layers.Dense(784, activation="sigmoid")(hidden))
"""

ENDLESS_LOOP = """\
import time

step = 0
while step < 10:  # the student forgot `step += 1`
    time.sleep(0.05)
""" + decoder_code()

KERNEL_DIES = decoder_code() + """\
import os

os._exit(1)
"""

CHECKER_OVERWRITTEN = decoder_code(hidden=256) + """\
# make the tests pass whatever the decoder
checks.check_hidden_layer = lambda *args, **kwargs: None
checks.check_parameter_count = lambda *args, **kwargs: None
"""

GIGANTIC_OUTPUT = decoder_code() + """\
for i in range(50_000):
    print(f"debug {i}: " + "#" * 200)
print("x" * 2_000_000)
"""


def _cell(nb: nbformat.NotebookNode, cell_id: str) -> nbformat.NotebookNode:
    return next(cell for cell in nb.cells if cell.get("id") == cell_id)


def _with(release: nbformat.NotebookNode, code: str | None = None, *, keep_load_line: bool = True,
          edit=None) -> nbformat.NotebookNode:
    nb = copy.deepcopy(release)
    if code is not None:
        head = LOAD_LINE + "\n" if keep_load_line else ""
        _cell(nb, EXERCISE_ID).source = head + code
    if edit is not None:
        edit(nb)
    return nb


def _delete_hidden_layer_test(nb: nbformat.NotebookNode) -> None:
    nb.cells = [cell for cell in nb.cells if cell.get("id") != "test-decoder-hidden-layer"]


def _edit_hidden_layer_test(nb: nbformat.NotebookNode) -> None:
    _cell(nb, "test-decoder-hidden-layer").source = "# my decoder is fine\npass\n"


def build(release: nbformat.NotebookNode, solution: str) -> list[Student]:
    """The corpus. `solution` is solutions/decoder_vae.py as shipped (what %load pulls in)."""
    loaded = LOAD_LINE + "\n" + solution  # what IPython leaves in the cell after `%load`
    loaded_256 = loaded.replace("(intermediate_dim,", "(256,")
    assert loaded_256 != loaded
    hidden_msg = "your hidden layer has 256 units; the TP asks for 512"
    return [
        Student("hand", "correct decoder written by hand", _with(release, decoder_code()),
                (1, 1, 1, 1, 1), "written"),
        Student("loaded", "correct decoder pulled in with %load", _with(release, loaded,
                keep_load_line=False),
                (1, 1, 1, 1, 1), "loaded"),
        Student("sequential", "functionally equal: Sequential, other names",
                _with(release, SEQUENTIAL, keep_load_line=False), (1, 1, 1, 1, 1), "written"),
        Student("unsolved", "release handed in as is", _with(release), (0, 0, 0, 0, 0),
                "unsolved", ["there is no `decoder` yet"]),
        Student("hidden256", "256 hidden units", _with(release, decoder_code(hidden=256)),
                (1, 0, 1, 0, 1), "written", [hidden_msg, "your decoder has 202,256 parameters"]),
        Student("relu_output", "relu on the output layer",
                _with(release, decoder_code(out_act="relu")), (1, 1, 0, 1, 1), "written",
                ["your output layer uses relu; the TP asks for sigmoid"]),
        Student("softmax_output", "softmax on the output layer",
                _with(release, decoder_code(out_act="softmax")), (1, 1, 0, 1, 1), "written",
                ["your output layer uses softmax; the TP asks for sigmoid"]),
        Student("latent3", "latent input of 3", _with(release, decoder_code(latent="3")),
                (0, 1, 1, 0, 0), "written",
                ["your decoder takes inputs of shape (None, 3); the TP asks for (None, 2)"]),
        Student("no_hidden", "no hidden layer", _with(release, decoder_code(hidden=None)),
                (1, 0, 1, 0, 1), "written", ["your decoder has 1 Dense layer (2 -> 784)"]),
        Student("syntax_error", "syntax error in the decoder cell",
                _with(release, SYNTAX_ERROR), (0, 0, 0, 0, 0), "written",
                ["SyntaxError", "there is no `decoder` yet"]),
        Student("never_defined", "the decoder is built but never named `decoder`",
                _with(release, decoder_code(name="my_decoder")), (0, 0, 0, 0, 0), "written",
                ["there is no `decoder` yet"]),
        Student("endless_loop", "an endless loop before the decoder, in its cell",
                _with(release, ENDLESS_LOOP), (0, 0, 0, 0, 0), "written",
                ["ran longer than the grading limit"], ["timed out: 1 cell(s) decoder-exercise"]),
        Student("kernel_dies", "os._exit in the decoder cell",
                _with(release, KERNEL_DIES), (0, 0, 0, 0, 0), "written",
                ["the Python kernel died while running this cell"],
                ["kernel died: 1 cell(s) decoder-exercise", "not run:"]),
        Student("deleted_test", "%load, edited to 256 units, then deleted the failing test cell",
                _with(release, loaded_256, keep_load_line=False,
                      edit=_delete_hidden_layer_test),
                (1, 0, 1, 0, 1), "loaded+edited", [hidden_msg],
                ["deleted test cell(s) put back and run: test_decoder_hidden_layer"]),
        Student("edited_test", "256 units, and the failing read-only test cell edited to pass",
                _with(release, decoder_code(hidden=256), edit=_edit_hidden_layer_test),
                (1, 0, 1, 0, 1), "written", [hidden_msg],
                ["read-only cell(s) edited, restored before grading: test_decoder_hidden_layer"]),
        Student("checker_overwritten", "256 units, and checks.check_* replaced by no-ops",
                _with(release, CHECKER_OVERWRITTEN), (1, 0, 1, 0, 1), "written", [hidden_msg]),
        Student("gigantic_output", "correct decoder, then ~12 MB of prints",
                _with(release, GIGANTIC_OUTPUT), (1, 1, 1, 1, 1), "written",
                ["Output truncated"]),
    ]
