"""A class of simulated students, built from the real release: every way a submission can go
wrong, and every way a hostile one can try to cheat, spy or break the grader.

`build(release_notebook, solution_text)` returns one `Student` per case: the notebook a student
would hand in (the release, edited the way that student did), the score expected on each of
the six graded tests, how the decoder cell was made (the %load report) and words that the
student's feedback HTML must show (or must never show). tests/test_grading.py grades them with
the real nbgrader, through the sandbox; `tools/grade.py example-class` hands three of them to
an instructor for a try.

    python tools/simulated_class.py --out DIR     # writes DIR/<name>.ipynb, one per student

so that a TA can open any of them (e.g. `cheat-empties-later-cells.ipynb`) and see the trick.
The spy reads canary files by their exact paths (`build(..., canaries=...)`): the grading
test puts canaries in source/ and in another student's folder, and checks that no feedback
ever shows their secret.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import nbformat

#: The graded test cells, in notebook order, their nbgrader grade ids and points.
TESTS = ("input_shape", "hidden_layer", "output_layer", "parameter_count", "composition",
         "computes_and_learns")
GRADE_IDS = tuple(f"test_decoder_{name}" for name in TESTS)
POINTS = (1, 1, 1, 1, 1, 2)
FULL = POINTS
CANARY_SECRET = "CANARY-7f3a9c-do-not-leak"
#: What the student "hand" answers to question 1 (graded by hand in the Formgrader).
HAND_ANSWER = ("The two losses end close to each other, so the VAE does not overfit much; "
               "validation is computed after the epoch, with better weights.")
EXERCISE_ID = "decoder-exercise"
LOAD_LINE = "# %load ../solutions/decoder_vae.py"


@dataclass
class Student:
    name: str
    why: str
    notebook: nbformat.NotebookNode
    scores: tuple[int, ...]  # expected, in the order of TESTS
    decoder_cell: str  # expected kind (tools/grade.py decoder_cell_kind)
    feedback: list[str] = field(default_factory=list)  # must appear in the feedback HTML
    notes: list[str] = field(default_factory=list)  # must appear in the report's notes
    never: list[str] = field(default_factory=list)  # must not appear in the feedback

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


SUBCLASSED = """\
class Decoder(keras.Model):
    def __init__(self):
        super().__init__(name="decoder")
        self.hidden = layers.Dense(intermediate_dim, activation="relu")
        self.pixels = layers.Dense(original_dim, activation="sigmoid")

    def call(self, z):
        return self.pixels(self.hidden(z))


decoder = Decoder()
"""

SEPARATE_ACTIVATIONS = """\
decoder = keras.Sequential([
    keras.Input(shape=(latent_dim,)),
    layers.Dense(intermediate_dim), layers.Activation("relu"),
    layers.Dense(original_dim), layers.Activation("sigmoid"),
])
"""

UNBUILT_FUNCTIONS = """\
decoder = keras.Sequential([
    layers.Dense(intermediate_dim, activation=keras.activations.relu),
    layers.Dense(original_dim, activation=ops.sigmoid),
])
"""

FROZEN = decoder_code() + "decoder.layers[1].trainable = False\n"

STOP_GRADIENT = """\
z_in = keras.Input(shape=(latent_dim,))
hidden = layers.Dense(intermediate_dim, activation="relu")(z_in)
hidden = layers.Lambda(lambda t: ops.stop_gradient(t))(hidden)
decoder = keras.Model(z_in, layers.Dense(original_dim, activation="sigmoid")(hidden))
"""

EMPTIES_LATER_CELLS = decoder_code(hidden=256) + """\
# every later cell (the graded tests too) becomes empty, so nothing can fail
get_ipython().input_transformers_post.append(lambda lines: [])
"""

RELOAD_NOOP = """\
import importlib
importlib.reload = lambda module: module
for name in dir(checks):
    if name.startswith("check_"):
        setattr(checks, name, lambda *args, **kwargs: None)
decoder = None
"""

FORGED_RECORD = decoder_code(hidden=256) + """\
import vaetp.decoder_data
vaetp.decoder_data.to_bytes = lambda record: b"all tests passed"
"""

FORGED_CORRECT_RECORD = """\
decoder = None
# No decoder at all: the recording function replaced by one that builds, in NumPy, the record a
# correct decoder would give (found by the red team; see docs/instructor.md, Security model).
import numpy as np, vaetp.decoder_data as dd
def _forge(dec, enc=None, *, latent_dim=2, original_dim=784, seed=0):
    rng = np.random.default_rng(1)
    W1, b1 = rng.normal(size=(2, 512)), np.zeros(512)
    W2, b2 = rng.normal(size=(512, 784)) * 0.05, np.zeros(784)
    z = dd.probe_latents(seed, 2).astype("float64")
    a1 = z @ W1 + b1; h = np.maximum(a1, 0); y = 1 / (1 + np.exp(-(h @ W2 + b2)))
    r = dd.projection(seed, 784).astype("float64")
    d2 = r * y * (1 - y); d1 = (d2 @ W2.T) * (a1 > 0)
    f = lambda *a: [x.astype("float32") for x in a]
    rec = dd.DecoderData("model", type_name="Functional", declared_input=(None, 2), seed=seed,
                         y=y.astype("float32"), z=z, composition_shape=(None, 784))
    rec.layers = [dd.LayerData("h", f(W1, b1), [True, True], f(z.T @ d1, d1.sum(0))),
                  dd.LayerData("o", f(W2, b2), [True, True], f(h.T @ d2, d2.sum(0)))]
    return rec
dd.extract = _forge
"""

OUTPUT_FLOOD = decoder_code() + """\
from IPython.display import display
blob = "iVBORw0KGgo" + "A" * 5_000_000
for _ in range(8):
    display({"image/png": blob}, raw=True)  # 40 MB of 'images'
"""

FAKE_SUCCESS = """\
decoder = None
from IPython.display import display
display({"text/plain": "All checks passed"}, raw=True)
print("Graded test: OK")
"""

SPY = decoder_code() + """\
import glob, os, sqlite3
seen = []
for pattern in CANARIES + [
        "../../../source/vae/vae_tp.ipynb", "../../*/vae/vae_tp.ipynb", "../../../gradebook.db",
        "/root/*", "/home/*/*", "/work/*/*", "/etc/passwd", "/etc/shadow"]:
    for path in glob.glob(pattern):
        try:
            seen.append(path + ": " + open(path, errors="replace").read(200))
        except OSError as err:
            seen.append(path + ": " + str(err))
try:
    sqlite3.connect("../../../gradebook.db").execute("create table pwned (x)")
    seen.append("wrote the gradebook")
except Exception as err:
    seen.append("gradebook: " + str(err))
print("\\n".join(seen) or "found nothing")
"""

TAMPER = decoder_code(hidden=256) + """\
import pathlib, vaetp.checks
target = pathlib.Path(vaetp.checks.__file__)
try:
    with open(target, "a") as fh:
        fh.write("\\ndef check_hidden_layer(*a, **k):\\n    pass\\n")
    print("rewrote", target)
except OSError as err:
    print("could not rewrite the checker:", err)
"""

NETWORK = decoder_code() + """\
import socket, urllib.request
for host, port in [("127.0.0.1", CANARY_PORT), ("pypi.org", 443)]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print("reached", host, port)
    except OSError as err:
        print("no network:", host, err)
"""

MEMORY_BOMB = decoder_code() + """\
def eat():
    blocks = []
    while True:
        blocks.append(np.ones(2**27))  # 1 GB at a time, touched
try:
    eat()
except MemoryError:
    print("the memory bound stopped me")
"""

FORK_BOMB = """\
import subprocess
subprocess.Popen(["bash", "-c", ":(){ :|:& };:"])
import time
time.sleep(5)
decoder = None
"""

DISK_BOMB = decoder_code() + """\
for folder in (".", "/tmp"):
    try:
        with open(folder + "/filler", "wb") as fh:
            for _ in range(4096):
                fh.write(b"x" * 2**20)
    except OSError as err:
        print("disk bound in", folder, ":", type(err).__name__)
"""

XSS = decoder_code() + """\
from IPython.display import HTML, Javascript, display
display(HTML('<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'))
display(Javascript("window.__pwned = 3"))
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


def _answer_question(nb: nbformat.NotebookNode) -> None:
    _cell(nb, "answer-overfitting").source = HAND_ANSWER


def _delete_hidden_layer_test(nb: nbformat.NotebookNode) -> None:
    nb.cells = [cell for cell in nb.cells if cell.get("id") != "test-decoder-hidden-layer"]


def _edit_hidden_layer_test(nb: nbformat.NotebookNode) -> None:
    _cell(nb, "test-decoder-hidden-layer").source = "# my decoder is fine\npass\n"


def build(release: nbformat.NotebookNode, solution: str, canaries: tuple[str, ...] = (),
          canary_port: int = 8000) -> list[Student]:
    """The class. `solution` is solutions/decoder_vae.py as shipped (what %load pulls in);
    `canaries`: files the spy tries to read by their exact path (the grading test puts them in
    source/ and in another student's folder); `canary_port`: a port on the grading host's
    loopback that the network case tries to reach."""
    spy = SPY.replace("CANARIES", repr(list(canaries)))
    network = NETWORK.replace("CANARY_PORT", str(int(canary_port)))
    loaded = LOAD_LINE + "\n" + solution  # what IPython leaves in the cell after `%load`
    loaded_256 = loaded.replace("(intermediate_dim,", "(256,")
    assert loaded_256 != loaded
    hidden_msg = "your hidden layer has 256 units; the TP asks for 512"
    nothing = "the grader received nothing to grade from your notebook"
    h256 = (1, 0, 1, 0, 1, 2)
    zero = (0, 0, 0, 0, 0, 0)
    return [
        # Right answers, written every way the TP allows: full marks.
        Student("hand", "correct decoder written by hand, and an answer to question 1",
                _with(release, decoder_code(), edit=_answer_question), FULL, "written"),
        Student("loaded", "correct decoder pulled in with %load", _with(release, loaded,
                keep_load_line=False), FULL, "loaded"),
        Student("sequential", "functionally equal: Sequential, other names",
                _with(release, SEQUENTIAL, keep_load_line=False), FULL, "written"),
        Student("subclassed", "a keras.Model subclass", _with(release, SUBCLASSED), FULL, "written"),
        Student("separate-activations", "Activation layers after linear Dense layers",
                _with(release, SEPARATE_ACTIVATIONS), FULL, "written"),
        Student("unbuilt-functions", "unbuilt Sequential, activations given as functions",
                _with(release, UNBUILT_FUNCTIONS), FULL, "written"),
        # Honest mistakes: partial credit, each named in plain words.
        Student("unsolved", "release handed in as is", _with(release), zero,
                "unsolved", ["there is no `decoder` yet"]),
        Student("hidden256", "256 hidden units", _with(release, decoder_code(hidden=256)),
                h256, "written", [hidden_msg, "your decoder has 202,256 parameters"]),
        Student("relu-output", "relu on the output layer",
                _with(release, decoder_code(out_act="relu")), (1, 1, 0, 1, 1, 0), "written",
                ["your output layer uses relu; the TP asks for sigmoid"]),
        Student("softmax-output", "softmax on the output layer",
                _with(release, decoder_code(out_act="softmax")), (1, 1, 0, 1, 1, 0), "written",
                ["your output layer uses softmax; the TP asks for sigmoid"]),
        Student("latent3", "latent input of 3", _with(release, decoder_code(latent="3")),
                (0, 1, 1, 1, 0, 2), "written",
                ["your decoder takes inputs of shape (None, 3); the TP asks for (None, 2)"]),
        Student("no-hidden", "no hidden layer", _with(release, decoder_code(hidden=None)),
                (1, 0, 1, 0, 1, 0), "written", ["your decoder has 1 Dense layer (2 -> 784)"]),
        Student("frozen-layer", "right layers, the hidden one frozen (trainable=False)",
                _with(release, FROZEN), (1, 1, 1, 1, 1, 0), "written", ["are frozen"]),
        Student("stop-gradient", "right function, no gradient through the hidden layer",
                _with(release, STOP_GRADIENT), (1, 1, 1, 1, 1, 0), "written",
                ["no gradient reaches"]),
        Student("syntax-error", "syntax error in the decoder cell",
                _with(release, SYNTAX_ERROR), zero, "written",
                ["SyntaxError", "there is no `decoder` yet"]),
        Student("never-defined", "the decoder is built but never named `decoder`",
                _with(release, decoder_code(name="my_decoder")), zero, "written",
                ["there is no `decoder` yet"]),
        Student("endless-loop", "an endless loop before the decoder, in its cell",
                _with(release, ENDLESS_LOOP), zero, "written",
                ["ran longer than the grading limit"], ["timed out: 1 cell(s) decoder-exercise"]),
        Student("kernel-dies", "os._exit in the decoder cell",
                _with(release, KERNEL_DIES), zero, "written",
                ["the Python kernel died while running this cell", nothing],
                ["kernel died: 1 cell(s) decoder-exercise"]),
        Student("deleted-test", "%load, edited to 256 units, then deleted the failing test cell",
                _with(release, loaded_256, keep_load_line=False,
                      edit=_delete_hidden_layer_test),
                h256, "loaded+edited", [hidden_msg],
                ["deleted test cell(s) put back and run: test_decoder_hidden_layer"]),
        Student("edited-test", "256 units, and the failing read-only test cell edited to pass",
                _with(release, decoder_code(hidden=256), edit=_edit_hidden_layer_test),
                h256, "written", [hidden_msg],
                ["read-only cell(s) edited, restored before grading: test_decoder_hidden_layer"]),
        Student("gigantic-output", "correct decoder, then ~12 MB of prints",
                _with(release, GIGANTIC_OUTPUT), FULL, "written", ["the grader dropped"]),
        # Cheating in the kernel: a trick can withhold the record (0), never raise the score.
        Student("cheat-checks-replaced", "256 units, and checks.check_* replaced by no-ops",
                _with(release, CHECKER_OVERWRITTEN), h256, "written", [hidden_msg]),
        Student("cheat-empties-later-cells", "256 units, then an input transformer that empties "
                "every later cell (the graded tests included)", _with(release, EMPTIES_LATER_CELLS),
                zero, "written", [nothing]),
        Student("cheat-reload-noop", "no decoder; importlib.reload and every check made no-ops",
                _with(release, RELOAD_NOOP), zero, "unsolved", ["there is no `decoder` yet"]),
        Student("cheat-forged-record", "256 units, and the record replaced by a forged one",
                _with(release, FORGED_RECORD), zero, "written",
                ["the grader could not read what your notebook handed over"]),
        Student("cheat-forged-correct-record", "no decoder; the recording code replaced by one "
                "that computes, in NumPy, what a correct decoder would hand over: a known limit, "
                "flagged for a human", _with(release, FORGED_CORRECT_RECORD), FULL, "unsolved", [],
                ["full marks, yet the exercise cell holds no decoder"]),
        Student("output-flood", "correct decoder, then 40 MB of image outputs",
                _with(release, OUTPUT_FLOOD), FULL, "written", ["the grader dropped"]),
        Student("cheat-fake-success", "no decoder; prints a fake success",
                _with(release, FAKE_SUCCESS), zero, "unsolved", ["there is no `decoder` yet"]),
        # Spying and tampering: the sandbox shows nothing, keeps nothing, reaches nothing.
        Student("spy-course-files", "correct decoder, then reads source/, the other students, "
                "the gradebook, homes and the repository, and prints what it found",
                _with(release, spy), FULL, "written", ["gradebook: "], [], [CANARY_SECRET]),
        Student("tamper-checker", "256 units, then appends to vaetp/checks.py",
                _with(release, TAMPER), h256, "written", ["could not rewrite the checker"]),
        Student("network", "correct decoder, then tries the network", _with(release, network),
                FULL, "written", ["no network: 127.0.0.1", "no network: pypi.org"]),
        Student("xss-output", "correct decoder, then HTML and JavaScript outputs with scripts",
                _with(release, XSS), FULL, "written", ["output removed by the grader"], [],
                ["<img src=x onerror", "<script>window.__pwned"]),
        # Bombs: bounded, graded, and the others' grades unharmed.
        Student("memory-bomb", "correct decoder, then allocates memory until stopped",
                _with(release, MEMORY_BOMB), FULL, "written", ["the memory bound stopped me"]),
        Student("disk-bomb", "correct decoder, then writes 4 GB files", _with(release, DISK_BOMB),
                FULL, "written", ["disk bound in . :", "disk bound in /tmp :"]),
        Student("fork-bomb", "no decoder; a shell fork bomb", _with(release, FORK_BOMB), zero,
                "unsolved"),
    ]


def main(argv: list[str] | None = None) -> int:
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description="Write the simulated class as notebooks.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--release", type=Path, default=Path("notebooks/vae_tp.ipynb"))
    parser.add_argument("--solution", type=Path, default=Path("solutions/decoder_vae.py"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    release = nbformat.read(args.release, as_version=4)
    for student in build(release, args.solution.read_text(encoding="utf-8")):
        path = args.out / f"{student.name}.ipynb"
        if path.exists():
            print(f"kept {path} (exists)")
            continue
        nbformat.write(student.notebook, path)
        print(f"wrote {path}: {student.why}; expected {student.total} / {sum(POINTS)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
