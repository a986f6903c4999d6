"""A class of simulated students, built from the real release: every way a submission can go
wrong, and every way a hostile one can try to cheat, spy or break the grader.

`build(release_notebook, solutions)` returns one `Student` per case: the notebook a student
would hand in (the release with every exercise %load'ed, then edited the way that student
did), the points expected on each graded test (by grade id), how the decoder cell was made
(the %load report) and words that the student's feedback HTML must show (or must never show).
Every graded test of every exercise has at least one student who fails it. tests/test_grading.py grades them with
the real nbgrader, through the sandbox; `tools/grade.py example-class` hands an instructor three
submissions made the same way (vaetp.grading.example_class).

    python tests/simulated_class.py --out DIR     # writes DIR/<name>.ipynb, one per student

so that a TA can open any of them (e.g. `cheat-empties-later-cells.ipynb`) and see the trick.
The spy reads canary files by their exact paths (`build(..., canaries=...)`): the grading
test puts canaries in source/ and in another student's folder, and checks that no feedback
ever shows their secret.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import nbformat

from vaetp.grading import example_class
from vaetp.grading.example_class import cell as _cell, exercise_cells, graded_tests, solved as _solved
from vaetp.course import parameters_of
from vaetp.grading.exercises import EXERCISES

CANARY_SECRET = "CANARY-7f3a9c-do-not-leak"
#: What the student "hand" answers to question 1 (graded by hand in the Formgrader).
HAND_ANSWER = ("The two losses end close to each other, so the VAE does not overfit much; "
               "validation is computed after the epoch, with better weights.")
EXERCISE_ID = "decoder-exercise"
#: Written where a student's hidden layer has the wrong width; `build` puts the number in (a
#: width the release's parameters do not ask for: example_class.wrong_width).
WRONG_WIDTH = "WRONG_WIDTH"
LOAD_LINE = "# %load ../solutions/decoder_vae.py"


@dataclass
class Student:
    name: str
    why: str
    notebook: nbformat.NotebookNode
    scores: dict[str, int]  # expected points on each graded test, by grade id
    decoder_cell: str  # expected kind (vaetp.grading.report.decoder_cell_kind)
    feedback: list[str] = field(default_factory=list)  # must appear in the feedback HTML
    notes: list[str] = field(default_factory=list)  # must appear in the report's notes
    never: list[str] = field(default_factory=list)  # must not appear in the feedback

    @property
    def total(self) -> int:
        return sum(self.scores.values())


def decoder_code(latent: str = "latent_dim", hidden: str | None = "intermediate_dim",
                 hidden_act: str = "relu", out_act: str = "sigmoid", name: str = "decoder") -> str:
    """A hand-written functional decoder, with the TP's sizes (the parameters cell's names)
    unless told otherwise."""
    lines = [f"z_in = keras.Input(shape=({latent},))"]
    last = "z_in"
    if hidden is not None:
        lines.append(f'hidden = layers.Dense({hidden}, activation="{hidden_act}")(z_in)')
        last = "hidden"
    lines.append(f'image = layers.Dense(original_dim, activation="{out_act}")({last})')
    lines.append(f'{name} = keras.Model(z_in, image, name="decoder")')
    return "\n".join(lines) + "\n"


SEQUENTIAL = """\
decoder = keras.Sequential(
    [
        keras.Input(shape=(latent_dim,)),
        layers.Dense(intermediate_dim, activation=keras.activations.relu, name="h1"),
        layers.Dense(original_dim, activation="sigmoid", name="pixels"),
    ],
    name="my_decoder",
)
"""

SYNTAX_ERROR = """\
z_in = keras.Input(shape=(latent_dim,)
hidden = layers.Dense(intermediate_dim, activation="relu")(z_in)
decoder = keras.Model(z_in, layers.Dense(original_dim, activation="sigmoid")(hidden))
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

CHECKER_OVERWRITTEN = decoder_code(hidden=WRONG_WIDTH) + """\
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

EMPTIES_LATER_CELLS = decoder_code(hidden=WRONG_WIDTH) + """\
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

FORGED_RECORD = decoder_code(hidden=WRONG_WIDTH) + """\
import vaetp.decoder_data
vaetp.decoder_data.to_bytes = lambda record: b"all tests passed"
"""

FORGED_CORRECT_RECORD = """\
decoder = None
# No decoder at all: the recording function replaced by one that builds, in NumPy, the record a
# correct decoder would give (found by the red team; see docs/instructor.md, Security model).
import numpy as np, vaetp.decoder_data as dd
def _forge(dec, enc=None, *, latent_dim, original_dim, seed=0):
    rng, width = np.random.default_rng(1), intermediate_dim  # the notebook's sizes
    W1, b1 = rng.normal(size=(latent_dim, width)), np.zeros(width)
    W2, b2 = rng.normal(size=(width, original_dim)) * 0.05, np.zeros(original_dim)
    z = dd.probe_latents(seed, latent_dim).astype("float64")
    a1 = z @ W1 + b1; h = np.maximum(a1, 0); y = 1 / (1 + np.exp(-(h @ W2 + b2)))
    r = dd.projection(seed, original_dim).astype("float64")
    d2 = r * y * (1 - y); d1 = (d2 @ W2.T) * (a1 > 0)
    f = lambda *a: [x.astype("float32") for x in a]
    rec = dd.DecoderData("model", type_name="Functional", declared_input=(None, latent_dim),
                         seed=seed, y=y.astype("float32"), z=z,
                         composition_shape=(None, original_dim))
    rec.layers = [dd.LayerData("h", f(W1, b1), [True, True], f(z.T @ d1, d1.sum(0))),
                  dd.LayerData("o", f(W2, b2), [True, True], f(h.T @ d2, d2.sum(0)))]
    return rec
dd.extract = _forge
"""

CONSTANT_DECODER_RECORD = """\
decoder = None
# No decoder: the recording function replaced by one that hands over a decoder of zero weights,
# whose every output is 0.5 whatever z is: shapes, sizes and outputs all 'consistent'.
import numpy as np, vaetp.decoder_data as dd
def _forge(dec, enc=None, *, latent_dim, original_dim, seed=0):
    f, width = (lambda *shape: np.zeros(shape, "float32")), intermediate_dim
    z = dd.probe_latents(seed, latent_dim)
    rec = dd.DecoderData("model", type_name="Functional", declared_input=(None, latent_dim),
                         seed=seed, z=z, y=np.full((len(z), original_dim), 0.5, "float32"),
                         composition_shape=(None, original_dim))
    hidden, output = [f(latent_dim, width), f(width)], [f(width, original_dim), f(original_dim)]
    # two empty layers that bear the names of the real ones, in front of them
    rec.layers = [dd.LayerData("h", [], []), dd.LayerData("o", [], []),
                  dd.LayerData("h", hidden, [True, True], [f(latent_dim, width), f(width)]),
                  dd.LayerData("o", output, [True, True], [f(width, original_dim), f(original_dim)])]
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

TAMPER = decoder_code(hidden=WRONG_WIDTH) + """\
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
conv_encoder = conv_decoder = None
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


KL_PRINTS = """\
def kl_divergence(z_mean, z_log_var):
    print("x" * 1_000_000)  # printed on every call, the grader's probe calls included
    return -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
"""

# Wrong answers to the other exercises (each student gets every other exercise right).
KL_RIGHT = "def kl_divergence(z_mean, z_log_var):\n    return -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)\n"
KL_SIGN = "def kl_divergence(z_mean, z_log_var):\n    return 0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)\n"
KL_BATCH_MEAN = "def kl_divergence(z_mean, z_log_var):\n    kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)\n    return ops.mean(kl)\n"
KL_SIGMA = "def kl_divergence(z_mean, z_log_var):\n    return -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(0.5 * z_log_var), axis=-1)\n"
VAE_Z_MEAN = 'vae = keras.Model(inputs, decoder(z_mean), name="vae_mlp")\n'
VAE_ENCODER_TWICE = """\
class TwiceVAE(keras.Model):
    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder

    def call(self, x):
        self.codes = self.encoder(x)  # kept to look at them
        return self.decoder(self.encoder(x))


vae = TwiceVAE(encoder, decoder, name="vae_mlp")
"""
VAE_NEW_LAYERS = """\
hidden = layers.Dense(intermediate_dim, activation="relu")(encoder(inputs))
vae = keras.Model(inputs, layers.Dense(original_dim, activation="sigmoid")(hidden), name="vae_mlp")
"""
HOOKED_RECORD = KL_SIGN + """\
# An IPython hook that runs before every cell: when the grader's probe for the KL comes, it shows
# a record of its own first, made (with the package's public input function) for the seed it
# reads in the probe: a KL of 0 for every image.
import base64, re
import numpy as np
from IPython.display import display
from vaetp import calls, loss_checks
_MIME = "application/x-vaetp-record+base64"  # the record MIME type, as the grader shows it
def _hook(info):
    code = getattr(info, "raw_cell", "") or ""
    found = re.search(r"record_bytes\\(.*'kl_divergence'.*seed=(\\d+)", code)
    if not found:
        return
    seed = int(found.group(1))
    record = calls.CallRecord("kl_divergence", calls.OK, "function", seed)
    for name, (m, v) in loss_checks.kl_inputs(seed, latent_dim).items():
        record.calls[name] = calls.Call(output=np.zeros(len(m), "float32"))
    display({_MIME: base64.b64encode(calls.to_bytes(record)).decode()}, raw=True)
get_ipython().events.register("pre_run_cell", _hook)
"""

REFERENCE_LEAK = """\
# The TP's own answers, taken from the package instead of written.
from vaetp import loss_checks, roc_checks
def reconstruction_loss(x, x_decoded):
    return loss_checks.reconstruction_reference(ops.convert_to_numpy(x), ops.convert_to_numpy(x_decoded))
"""

REFERENCE_LEAK_ROC = """\


# (after the %load'ed solution) roc_auc replaced by vaetp's reference answer
from vaetp import roc_checks
def roc_auc(normal_scores, anomalous_scores):
    return roc_checks.auc_reference(np.asarray(normal_scores), np.asarray(anomalous_scores))
"""

PRECOMPUTED_RECORD = """\
# Answers computed at home, with the solution, for the inputs of the seed the grader used to
# derive from the student's name; the recording replaced by one that hands them over.
import hashlib, numpy as np
from vaetp import calls, loss_checks
def _precomputed(function, original_dim, seed=0):
    guessed = int(hashlib.sha256(b"cheat-precomputed/vae/vae_tp").hexdigest()[:8], 16)
    record = calls.CallRecord("reconstruction_loss", calls.OK, "function", seed)
    for name, (x, p) in loss_checks.reconstruction_inputs(guessed, original_dim).items():
        x, p = x.astype("float64"), np.clip(p.astype("float64"), 1e-7, 1 - 1e-7)
        record.calls[name] = calls.Call(output=-np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=-1))
    record.facts["original_dim"] = original_dim
    return record
loss_checks.extract_reconstruction = _precomputed
def reconstruction_loss(x, x_decoded):
    return ops.zeros(ops.shape(x)[:1])
"""

VAE_MADE_UP = """\
# No VAE: the recording replaced by one that hands over made-up numbers: images in (0, 1) that
# differ between the two calls, one finite loss per call, and the facts of a right VAE.
import numpy as np
from vaetp import calls, vae_checks
def _made_up(vae, encoder, decoder, original_dim, seed=0):
    rng = np.random.default_rng(seed)
    x = vae_checks.vae_inputs(seed, original_dim)
    record = calls.CallRecord("vae", calls.OK, "Functional", seed)
    for name in ("first", "second"):
        record.calls[name] = calls.Call(output=rng.random((len(x), original_dim)).astype("float32"))
        record.calls[name + "_losses"] = calls.Call(output=np.array([3.5]))
    record.facts.update(encoder_found=True, decoder_found=True, input_shape=[None, original_dim],
                        intermediate_dim=intermediate_dim, latent_dim=latent_dim)
    return record
vae_checks.extract_vae = _made_up
vae = None
"""

GEN_MADE_UP = """\
# No generate_digits: the recording replaced by one that writes N(0, I) draws where the grader's
# former decoder put z (the first pixels), 0.5 elsewhere; the same draws for the same seed.
import numpy as np
from vaetp import calls, generation_checks
def _made_up(function, latent_dim, original_dim, seed=0):
    record = calls.CallRecord("generate_digits", calls.OK, "function", seed)
    for i, (call, which) in enumerate(generation_checks.ORDER):
        n = 3 if call == "three" else generation_checks.BATCH
        images = np.full((n, original_dim), 0.5, "float32")
        draw = np.random.default_rng(100 + i if which is None else hash(which) % 1000)
        images[:, :latent_dim] = draw.normal(size=(n, latent_dim))
        record.calls[call] = calls.Call(output=images.reshape(n, 28, 28))
    return record
generation_checks.extract_generation = _made_up
def generate_digits(decoder, n, seed=None):
    return None
"""

CONV_DEAD_BRANCH = """\
# The MLP above has no convolution (the budget test fails): the recording wrapped so that the
# encoder's program also lists a Conv2D that no output uses.
from vaetp import conv_checks
_real = conv_checks.extract_conv_vae
def _with_a_convolution(encoder, decoder, latent_dim, seed=0):
    record = _real(encoder, decoder, latent_dim, seed=seed)
    program = record.facts["encoder"].get("program")
    if program:
        program["steps"].append({"name": "conv", "class": "Conv2D", "leaf": 99,
                                 "args": {"filters": 4, "kernel_size": [3, 3], "strides": [2, 2],
                                          "padding": "same", "activation": "relu"},
                                 "weights": [[3, 3, 1, 4], [4]], "calls": [[program["inputs"][0]]]})
    return record
conv_checks.extract_conv_vae = _with_a_convolution
"""

KL_THROUGH_GRADER_CODE = """\
# KL without writing the formula: the grader's own expected VAE codes (vae_checks._truth), fed one
# row at a time through patched input and weight generators (found by a red-team review).
import numpy as np, keras
from vaetp import vae_checks as _V, calls as _C

def kl_divergence(z_mean, z_log_var):
    if isinstance(z_mean, keras.KerasTensor):  # symbolic: the Sampling layer, while building
        return keras.ops.sum(z_mean * 0, axis=-1)
    m = np.asarray(keras.ops.convert_to_numpy(z_mean), "float64")
    v = np.asarray(keras.ops.convert_to_numpy(z_log_var), "float64")
    saved = _V.vae_inputs, _V.grader_encoder_weights
    out = []
    try:
        for i in range(len(m)):
            _V.vae_inputs = lambda seed, od: np.ones((1, od))
            _V.grader_encoder_weights = lambda seed, od, w, d, i=i: {
                "hidden": [np.zeros((od, w)), np.ones(w)],
                "z_mean": [np.zeros((w, d)), m[i]], "z_log_var": [np.zeros((w, d)), v[i]]}
            rec = _C.CallRecord("vae", facts={"intermediate_dim": 1, "latent_dim": m.shape[1]})
            out.append(_V._truth(rec, 1)["kl"])
    finally:
        _V.vae_inputs, _V.grader_encoder_weights = saved
    return np.asarray(out, "float32")
"""

VAE_THROUGH_GRADER_CODE = """\
# No VAE: a pre_run_cell hook answers the grader's VAE probe with a record made from the
# grader's own helpers (vae_checks._truth, grader_decoder_weights) (a red-team review).
import base64, re, numpy as np
from IPython.display import display
from vaetp import vae_checks as _V, calls as _C

def _forge_vae(info):
    src = getattr(info, "raw_cell", "") or ""
    if "_vaetp_record" not in src or "'vae'" not in src:
        return
    seed = int(re.search(r"seed=(\\d+)", src).group(1))
    rec = _C.CallRecord("vae", seed=seed, type_name="Functional",
                        facts={"intermediate_dim": intermediate_dim, "latent_dim": latent_dim,
                               "encoder_found": True, "decoder_found": True,
                               "input_shape": [None, original_dim]})
    t = _V._truth(rec, original_dim)
    a, c = (w.astype("float64")
            for w in _V.grader_decoder_weights(seed, latent_dim, original_dim))
    rng = np.random.default_rng()
    for name in ("first", "second"):
        z = t["mean"] + np.exp(0.5 * t["log_var"]) * rng.normal(size=t["mean"].shape)
        rec.calls[name] = _C.Call(output=(1 / (1 + np.exp(-(z @ a + c)))).astype("float32"))
        rec.calls[name + "_losses"] = _C.Call(output=np.array([t["kl"]]))
    display({"application/x-vaetp-record+base64": base64.b64encode(_C.to_bytes(rec)).decode()},
            raw=True)

get_ipython().events.register("pre_run_cell", _forge_vae)
vae = None
"""

MARKDOWN_BOMB = '''\
# Markdown that nbconvert's maths rules take hours to render (quadratic), made at grading time
from IPython.display import Markdown, display
display(Markdown("\\\\begin{a}" * 210_000))
'''

ANOMALY_MADE_UP = """\
def anomaly_scores(stats_encoder, decoder, x):
    return np.zeros(len(x))


def roc_auc(normal_scores, anomalous_scores):
    normal = np.asarray(normal_scores)[None, :]
    anomalous = np.asarray(anomalous_scores)[:, None]
    return float(np.mean(anomalous > normal) + 0.5 * np.mean(anomalous == normal))


# the scores' record replaced by made-up scores around the size of a right one
from vaetp import calls, anomaly_checks
def _made_up(function, latent_dim, original_dim, seed=0):
    record = calls.CallRecord("anomaly_scores", calls.OK, "function", seed)
    batches = anomaly_checks.anomaly_inputs(seed, original_dim)
    rng = np.random.default_rng(seed)
    for call, batch in anomaly_checks.SCORE_CALLS.items():
        record.calls[call] = calls.Call(output=rng.uniform(100, 800, len(batches[batch])))
    return record
anomaly_checks.extract_anomaly_scores = _made_up
"""

RECON_MEAN = "def reconstruction_loss(x, x_decoded):\n    return keras.losses.binary_crossentropy(x, x_decoded)\n"
RECON_SWAPPED = "def reconstruction_loss(x, x_decoded):\n    return original_dim * keras.losses.binary_crossentropy(x_decoded, x)\n"
RECON_BATCH_MEAN = "def reconstruction_loss(x, x_decoded):\n    return ops.mean(original_dim * keras.losses.binary_crossentropy(x, x_decoded))\n"
GEN_FLAT = "def generate_digits(decoder, n, seed=None):\n    return decoder.predict(keras.random.normal((n, latent_dim), seed=seed), verbose=0)\n"
GEN_FIXED_SEED = "def generate_digits(decoder, n, seed=SEED):\n    z = keras.random.normal((n, latent_dim), seed=seed)\n    return decoder.predict(z, verbose=0).reshape(n, 28, 28)\n"
GEN_UNIFORM = "def generate_digits(decoder, n, seed=None):\n    z = keras.random.uniform((n, latent_dim), seed=seed)\n    return decoder.predict(z, verbose=0).reshape(n, 28, 28)\n"
GEN_GLOBAL_DECODER = "trained_decoder = decoder\n\ndef generate_digits(decoder, n, seed=None):\n    z = keras.random.normal((n, latent_dim), seed=seed)\n    return trained_decoder.predict(z, verbose=0).reshape(n, 28, 28)\n"
ROC = """

def roc_auc(normal_scores, anomaly_scores):
    normal, anomalous = np.asarray(normal_scores)[None, :], np.asarray(anomaly_scores)[:, None]
    return float(np.mean(anomalous > normal) + 0.5 * np.mean(anomalous == normal))
"""
SCORES = """\
def anomaly_scores(stats_encoder, decoder, x):
    z_mean, z_log_var = stats_encoder.predict(x, verbose=0)
    x_decoded = decoder.predict(z_mean, verbose=0)
    return ops.convert_to_numpy(reconstruction_loss(x, x_decoded) + kl_divergence(z_mean, z_log_var))
"""
ANOMALY_RECON_ONLY = SCORES.replace(" + kl_divergence(z_mean, z_log_var)", "") + ROC
ANOMALY_SAMPLED_Z = SCORES.replace(
    "decoder.predict(z_mean, verbose=0)",
    "decoder.predict(z_mean + np.exp(0.5 * z_log_var) * np.random.normal(size=z_mean.shape), verbose=0)") + ROC
ANOMALY_BATCH_MEAN = SCORES.replace("return ops.convert_to_numpy(", "return np.mean(ops.convert_to_numpy(") \
    .replace("z_log_var))\n", "z_log_var)))\n") + ROC
ROC_REVERSED = SCORES + ROC.replace("anomalous > normal", "anomalous < normal")
ROC_STRICT = SCORES + ROC.replace(" + 0.5 * np.mean(anomalous == normal)", "")
CONV_DECODER = """
z_in = keras.Input(shape=(latent_dim,))
c = layers.Dense(7 * 7 * 32, activation="relu")(z_in)
c = layers.Reshape((7, 7, 32))(c)
c = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(c)
c = layers.Conv2DTranspose(16, 3, strides=2, padding="same", activation="relu")(c)
conv_decoder = keras.Model(z_in, layers.Conv2DTranspose(1, 3, padding="same", activation="sigmoid")(c))
"""
CONV_ENCODER = """\
img = keras.Input(shape=(28, 28, 1))
c = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(img)
c = layers.Flatten()(layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(c))
c = layers.Dense(HIDDEN, activation="relu")(c)
zm, zv = layers.Dense(latent_dim)(c), layers.Dense(latent_dim)(c)
conv_encoder = keras.Model(img, [zm, zv, Sampling(name="z")(zm, zv)])
"""
CONV_TOO_BIG = CONV_ENCODER.replace("HIDDEN", "512") + CONV_DECODER
CONV_SAMPLING_SWAPPED = CONV_ENCODER.replace("HIDDEN", "16").replace(
    'Sampling(name="z")(zm, zv)', 'Sampling(name="z")(zv, zm)') + CONV_DECODER
CONV_NO_SIGMOID = CONV_ENCODER.replace("HIDDEN", "16") + CONV_DECODER.replace(', activation="sigmoid")(c))', ')(c))')
CONV_FLAT_OUTPUT = CONV_ENCODER.replace("HIDDEN", "16") + CONV_DECODER.replace(
    'layers.Conv2DTranspose(1, 3, padding="same", activation="sigmoid")(c))',
    'layers.Reshape((original_dim,))(layers.Conv2DTranspose(1, 3, padding="same", activation="sigmoid")(c)))')
CONV_MLP = """\
img = keras.Input(shape=(28, 28, 1))
c = layers.Dense(128, activation="relu")(layers.Flatten()(img))
zm, zv = layers.Dense(latent_dim)(c), layers.Dense(latent_dim)(c)
conv_encoder = keras.Model(img, [zm, zv, Sampling(name="z")(zm, zv)])
z_in = keras.Input(shape=(latent_dim,))
c = layers.Dense(original_dim, activation="sigmoid")(layers.Dense(128, activation="relu")(z_in))
conv_decoder = keras.Model(z_in, layers.Reshape((28, 28, 1))(c))
"""


def _answer_question(nb: nbformat.NotebookNode) -> None:
    _cell(nb, "answer-overfitting").source = HAND_ANSWER


def _delete_hidden_layer_test(nb: nbformat.NotebookNode) -> None:
    nb.cells = [cell for cell in nb.cells if cell.get("id") != "test-decoder-hidden-layer"]


def _edit_hidden_layer_test(nb: nbformat.NotebookNode) -> None:
    _cell(nb, "test-decoder-hidden-layer").source = "# my decoder is fine\npass\n"


# --- BEGIN broken notebooks (one bad submission never stops the others) ---
#: Notebook metadata key: write_submission() cuts the written file to this many bytes (a
#: truncated upload: invalid JSON).
TRUNCATE_KEY = "simulated_truncate_at"

HOLDS_OUTPUT = decoder_code() + """\
import time
# the kernel's output thread is busy for 40 s, as on a loaded machine: the kernel replies after
# 20 s (its two flushes give up after 10 s each), and its outputs come 20 s after the reply,
# past the grader's 10 s wait for them
get_ipython().kernel.iopub_thread.schedule(lambda: time.sleep(40))
"""


def write_submission(student: "Student", path) -> None:
    """Write a student's notebook as they would hand it in (cut short if the case says so)."""
    from pathlib import Path

    text = nbformat.writes(student.notebook)
    cut = student.notebook.metadata.get(TRUNCATE_KEY)
    Path(path).write_bytes(text.encode("utf-8")[:cut] if cut else text.encode("utf-8"))


def _delete_cells(*cell_ids: str):
    def edit(nb: nbformat.NotebookNode) -> None:
        nb.cells = [cell for cell in nb.cells if cell.get("id") not in cell_ids]
    return edit


def _duplicate_cells(*cell_ids: str):
    def edit(nb: nbformat.NotebookNode) -> None:
        cells = []
        for cell in nb.cells:
            cells.append(cell)
            if cell.get("id") in cell_ids:
                twin = copy.deepcopy(cell)
                twin["id"] = cell["id"] + "-copy"
                cells.append(twin)
        nb.cells = cells
    return edit


def _swap_cells(first: str, second: str):
    def edit(nb: nbformat.NotebookNode) -> None:
        i = next(k for k, c in enumerate(nb.cells) if c.get("id") == first)
        j = next(k for k, c in enumerate(nb.cells) if c.get("id") == second)
        nb.cells[i], nb.cells[j] = nb.cells[j], nb.cells[i]
    return edit


def _test_made_solution(nb: nbformat.NotebookNode) -> None:
    cell = _cell(nb, "test-decoder-hidden-layer")
    cell.metadata.nbgrader.update(grade=False, solution=True, locked=False)
    cell.metadata.nbgrader.pop("points", None)
    cell.source = "# my answer: no test here\npass\n"


def _other_kernel(nb: nbformat.NotebookNode) -> None:
    nb.metadata["kernelspec"] = {"name": "evil", "display_name": "Evil", "language": "python"}


def _truncated(nb: nbformat.NotebookNode) -> None:
    nb.metadata[TRUNCATE_KEY] = len(nbformat.writes(nb).encode("utf-8")) // 2


def broken_students(nb, score, full, h256, hidden_msg) -> list["Student"]:
    """Notebooks broken by hand or by an upload, between honest students: each is graded (zero
    for what is missing, the rest as usual) with one note in grading_report.csv."""
    return [
        Student("broken-truncated", "the upload was cut in half: not valid JSON",
                nb(edit=_truncated), score("test_"), "unsolved", ["there is no `decoder` yet"],
                ["not a readable notebook (invalid JSON"]),
        Student("broken-first-test-deleted", "deleted the first graded test of the KL exercise "
                "(nbgrader alone crashed on the check cell before it)",
                nb(edit=_delete_cells("test-kl-shape")), full, "loaded", [],
                ["deleted test cell(s) put back and run: test_kl_shape"]),
        Student("broken-exercise-deleted", "deleted the generation exercise cell and its check",
                nb(edit=_delete_cells("generate-exercise", "generate-check")),
                score("test_generation_"), "loaded", [],
                ["deleted cell(s) put back from the release: generate_exercise generate_check"]),
        Student("broken-duplicated", "the decoder cell and a decoder test, each duplicated",
                nb(edit=_duplicate_cells("decoder-exercise", "test-decoder-hidden-layer")), full,
                "loaded", [], ["duplicated cell(s) graded once, the copies run as ordinary cells: "
                               "decoder_exercise test_decoder_hidden_layer"]),
        Student("broken-reordered", "two KL tests swapped",
                nb(edit=_swap_cells("test-kl-shape", "test-kl-wide")), full, "loaded", [],
                ["cells put back in the release's order"]),
        Student("broken-test-made-solution", "a wrong hidden width, and the failing test turned "
                "into a solution cell holding `pass`", nb(decoder_code(hidden=WRONG_WIDTH),
                                                          edit=_test_made_solution),
                h256, "written", [hidden_msg],
                ["cell role(s) changed, restored from the release: test_decoder_hidden_layer"]),
        Student("broken-kernelspec", "another kernel named in the notebook's metadata",
                nb(edit=_other_kernel), full, "loaded", [],
                ["kernelspec 'evil' replaced by the release's"]),
        Student("slow-output", "correct decoder, then the kernel's output thread held for 40 s "
                "(the cell's outputs come late, as on a loaded machine)", nb(HOLDS_OUTPUT), full,
                "written", ["outputs did not reach the grader within"],
                ["timed out: 1 cell(s) decoder-exercise"]),
    ]
# --- END broken notebooks ---


def build(release: nbformat.NotebookNode, solutions: dict[str, str], canaries: tuple[str, ...] = (),
          canary_port: int = 8000) -> list[Student]:
    """The class. `solutions`: solutions/*.py as shipped, by file name (what %load pulls in).
    Every student answers every exercise with its %load'ed solution, except the one that the
    case is about. `canaries`: files the spy tries to read by their exact path (the grading
    test puts them in source/ and in another student's folder); `canary_port`: a port on the
    grading host's loopback that the network case tries to reach."""
    tests = graded_tests(release)
    cells = exercise_cells(release)
    sizes = parameters_of(release)  # the master's, copied into the release
    d, h, o = sizes["latent_dim"], sizes["intermediate_dim"], sizes["original_dim"]
    width = example_class.wrong_width(h)

    def loaded(cell_id: str) -> str:
        name = cells[cell_id]
        return f"# %load ../solutions/{name}\n" + solutions[name]

    solved = _solved(release, solutions)

    def nb(code: str | None = None, *, keep_load_line: bool = True, edit=None, cell: str = EXERCISE_ID,
           base: nbformat.NotebookNode = solved) -> nbformat.NotebookNode:
        notebook = copy.deepcopy(base)
        if code is not None:
            code = code.replace(WRONG_WIDTH, str(width))
            head = f"# %load ../solutions/{cells[cell]}\n" if keep_load_line else ""
            _cell(notebook, cell).source = head + code
        if edit is not None:
            edit(notebook)
        return notebook

    def kl_in_the_imports_cell(notebook: nbformat.NotebookNode) -> None:
        _cell(notebook, "imports").source += "\n\n" + KL_RIGHT
        _cell(notebook, "kl-exercise").source = _cell(release, "kl-exercise").source

    def markdown_bomb_answer(notebook: nbformat.NotebookNode) -> None:
        _cell(notebook, "answer-overfitting").source = "\\begin{a}" * 20_000
        _cell(notebook, "imports").source += "\n\n" + MARKDOWN_BOMB

    def score(*zero: str, decoder: tuple[int, ...] | None = None, **points: int) -> dict[str, int]:
        """Expected points: full, but 0 on the tests whose id starts with one of `zero`, the
        decoder's six tests passed (nonzero: the test's points, read from the release) or
        failed (0) as given, and `points` by grade id."""
        found = {t: (0 if t.startswith(zero) else p) for t, p in tests.items()} if zero else dict(tests)
        if decoder is not None:
            ids = [t for t in tests if t.startswith("test_decoder_")]
            found.update({t: tests[t] if passed else 0 for t, passed in zip(ids, decoder)})
        found.update(points)
        return found

    spy = SPY.replace("CANARIES", repr(list(canaries)))
    network = NETWORK.replace("CANARY_PORT", str(int(canary_port)))
    loaded_decoder = loaded(EXERCISE_ID)
    example_bob = next(s for s in example_class.build(release, solutions) if s.name == "bob")
    assert example_bob.expected == sum(score(decoder=(1, 0, 1, 0, 1, 2)).values())
    loaded_wrong = loaded_decoder.replace("(intermediate_dim,", f"({width},")
    assert loaded_wrong != loaded_decoder
    hidden_msg = f"your hidden layer has {width} units; the TP asks for {h}"
    nothing = "the grader received nothing to grade from your notebook"
    full = score()
    h256 = score(decoder=(1, 0, 1, 0, 1, 2))
    # no decoder: the VAE is judged with the grader's stand-in decoder (vaetp.stand_ins)
    no_decoder = score("test_decoder_")
    STAND_IN_TOLD = "were graded with a stand-in of the grader's wherever yours was missing"

    def skips(cell_id: str) -> Student:
        """Leaves one exercise cell as released, answers every other: loses that one's points."""
        grade_id = _cell(release, cell_id).metadata["nbgrader"]["grade_id"]
        prefixes = tuple(e.test_prefix for e in EXERCISES if e.answer_cell == grade_id)
        assert prefixes, cell_id
        # an exercise others build on: its feedback says the later ones used a stand-in
        told = [STAND_IN_TOLD] if any(e.stand_in for e in EXERCISES
                                      if e.answer_cell == grade_id) else []
        return Student(f"skips-{cell_id.removesuffix('-exercise')}",
                       f"skips the exercise of {cell_id}, answers every other: loses its points only",
                       nb(_cell(release, cell_id).source, keep_load_line=False, cell=cell_id),
                       score(*prefixes), "unsolved" if cell_id == EXERCISE_ID else "loaded", told)
    after_kl = {t: (p if t.startswith("test_kl_") else 0) for t, p in tests.items()}
    return [
        # Right answers, written every way the TP allows: full marks.
        Student("hand", "correct decoder written by hand, and an answer to question 1",
                nb(decoder_code(), edit=_answer_question), full, "written"),
        Student("loaded", "every exercise pulled in with %load", nb(), full, "loaded"),
        Student("sequential", "functionally equal: Sequential, other names",
                nb(SEQUENTIAL, keep_load_line=False), full, "written"),
        Student("subclassed", "a keras.Model subclass", nb(SUBCLASSED), full, "written"),
        Student("separate-activations", "Activation layers after linear Dense layers",
                nb(SEPARATE_ACTIVATIONS), full, "written"),
        Student("unbuilt-functions", "unbuilt Sequential, activations given as functions",
                nb(UNBUILT_FUNCTIONS), full, "written"),
        # Honest mistakes in the decoder: partial credit, each named in plain words.
        Student("unsolved", "release handed in as is", copy.deepcopy(release), score("test_"),
                "unsolved", ["there is no `decoder` yet", "there is no `kl_divergence`"]),
        # A mistake counts once: each exercise skipped, every other one right.
        *[skips(cell_id) for cell_id in cells],
        Student("hidden-width", f"{width} hidden units", nb(decoder_code(hidden=WRONG_WIDTH)),
                h256, "written",
                [hidden_msg, f"your decoder has {d * width + width + width * o + o:,} parameters"]),
        Student("example-bob", "bob of the instructor's example class (vaetp.grading.example_class)",
                example_bob.notebook, h256, "loaded+edited", [hidden_msg]),
        Student("relu-output", "relu on the output layer", nb(decoder_code(out_act="relu")),
                score(decoder=(1, 1, 0, 1, 1, 0)), "written",
                ["your output layer uses relu; the TP asks for sigmoid"]),
        Student("sigmoid-twice", "the output Dense's sigmoid, then another Activation(\"sigmoid\")",
                nb(decoder_code().replace("image, name=", 'layers.Activation("sigmoid")(image), name=')),
                score(decoder=(1, 1, 0, 1, 1, 0)), "written", ["your decoder applies the sigmoid twice"]),
        Student("softmax-output", "softmax on the output layer",
                nb(decoder_code(out_act="softmax")), score(decoder=(1, 1, 0, 1, 1, 0)), "written",
                ["your output layer uses softmax; the TP asks for sigmoid"]),
        Student("latent-plus-one", "latent input one wider than the TP's (the VAE is judged "
                "with the grader's stand-in decoder)", nb(decoder_code(latent="latent_dim + 1")), score(decoder=(0, 1, 1, 1, 0, 2)),
                "written", [f"your decoder takes inputs of shape (None, {d + 1}); the TP asks for "
                            f"(None, {d})"]),
        Student("no-hidden", "no hidden layer", nb(decoder_code(hidden=None)),
                score(decoder=(1, 0, 1, 0, 1, 0)), "written", [f"your decoder has 1 Dense layer ({d} -> {o})"]),
        Student("frozen-layer", "right layers, the hidden one frozen (trainable=False)",
                nb(FROZEN), score(decoder=(1, 1, 1, 1, 1, 0)), "written", ["are frozen"]),
        Student("stop-gradient", "right function, no gradient through the hidden layer",
                nb(STOP_GRADIENT), score(decoder=(1, 1, 1, 1, 1, 0)), "written", ["no gradient reaches"]),
        Student("syntax-error", "syntax error in the decoder cell", nb(SYNTAX_ERROR), no_decoder,
                "written", ["SyntaxError", "there is no `decoder` yet"]),
        Student("never-defined", "the decoder is built but never named `decoder`",
                nb(decoder_code(name="my_decoder")), no_decoder, "written", ["there is no `decoder` yet"]),
        Student("endless-loop", "an endless loop before the decoder, in its cell",
                nb(ENDLESS_LOOP), no_decoder, "written",
                ["ran longer than the grading limit"], ["timed out: 1 cell(s) decoder-exercise"]),
        Student("kernel-dies", "os._exit in the decoder cell", nb(KERNEL_DIES), after_kl, "written",
                ["the Python kernel died while running this cell", nothing],
                ["kernel died: 1 cell(s) decoder-exercise"]),
        Student("deleted-test", f"%load, edited to {width} units, then deleted the failing test cell",
                nb(loaded_wrong, keep_load_line=False, edit=_delete_hidden_layer_test),
                h256, "loaded+edited", [hidden_msg],
                ["deleted test cell(s) put back and run: test_decoder_hidden_layer"]),
        Student("edited-test", f"{width} units, and the failing read-only test cell edited to pass",
                nb(decoder_code(hidden=WRONG_WIDTH), edit=_edit_hidden_layer_test), h256, "written",
                [hidden_msg], ["read-only cell(s) edited, restored before grading: test_decoder_hidden_layer"]),
        Student("gigantic-output", "correct decoder, then ~12 MB of prints", nb(GIGANTIC_OUTPUT),
                full, "written", ["the grader dropped"]),
        # Honest mistakes in the other exercises: one test lost per mistake where the mistake
        # is one thing (a scale, a shape, a seed), more where the formula is wrong.
        Student("kl-sign", "KL with its sign flipped", nb(KL_SIGN, cell="kl-exercise"),
                score(test_kl_values=0, test_kl_wide=0), "loaded", ["the sign is flipped"]),
        Student("kl-batch-mean", "KL averaged over the batch (one number)",
                nb(KL_BATCH_MEAN, cell="kl-exercise"), score(test_kl_shape=0), "loaded",
                ["returns one number for a batch of 16 images"]),
        Student("kl-sigma", "exp(z_log_var / 2) for the variance", nb(KL_SIGMA, cell="kl-exercise"),
                score(test_kl_values=0, test_kl_wide=0), "loaded", ["not exp(z_log_var / 2)"]),
        Student("vae-z-mean", "the VAE decodes z_mean (no sampling, no KL)",
                nb(VAE_Z_MEAN, cell="vae-exercise"),
                score(test_vae_uses_encoder_and_decoder=0, test_vae_samples_and_adds_kl=0), "loaded",
                ["your VAE never uses z_log_var"]),
        Student("vae-encoder-only", "the VAE stops at the encoder's sample",
                nb('vae = keras.Model(inputs, encoder(inputs), name="vae_mlp")\n', cell="vae-exercise"),
                score(test_vae_shapes=0, test_vae_uses_encoder_and_decoder=0), "loaded",
                [f"returns shape (64, {d})"]),
        Student("vae-encoder-twice", "a subclassed VAE that calls the encoder twice (two KL terms)",
                nb(VAE_ENCODER_TWICE, cell="vae-exercise"), score(test_vae_samples_and_adds_kl=0),
                "loaded", ["it added 2. Call the encoder once"]),
        Student("vae-new-layers", "the VAE builds new decoder layers instead of calling `decoder`",
                nb(VAE_NEW_LAYERS, cell="vae-exercise"), score(test_vae_uses_encoder_and_decoder=0),
                "loaded", ["your VAE has weights of its own"]),
        Student("recon-mean", "the mean BCE, not multiplied by original_dim",
                nb(RECON_MEAN, cell="reconstruction-exercise"), score(test_reconstruction_values=0),
                "loaded", [f"multiply by original_dim ({o})"]),
        Student("recon-swapped", "binary_crossentropy(x_decoded, x)",
                nb(RECON_SWAPPED, cell="reconstruction-exercise"),
                score(test_reconstruction_values=0, test_reconstruction_wide=0), "loaded",
                ["the arguments are swapped"]),
        Student("recon-batch-mean", "the reconstruction loss averaged over the batch",
                nb(RECON_BATCH_MEAN, cell="reconstruction-exercise"),
                score(test_reconstruction_shape=0), "loaded", ["returns one number for a batch of 8"]),
        Student("gen-flat", f"generated images left flat, (n, {o})", nb(GEN_FLAT, cell="generate-exercise"),
                score(test_generation_shape=0), "loaded", ["shape (3, 28, 28)"]),
        Student("gen-fixed-seed", "a fixed seed by default: the same digits on every call",
                nb(GEN_FIXED_SEED, cell="generate-exercise"), score(test_generation_seeds=0),
                "loaded", ["two calls give the same digits"]),
        Student("gen-uniform", "z drawn from a uniform distribution",
                nb(GEN_UNIFORM, cell="generate-exercise"), score(test_generation_from_prior=0), "loaded",
                ["uniform"]),
        Student("gen-global-decoder", "decodes with the trained decoder, not the one given (its "
                "images prove nothing the grader can check, so every generation test fails)",
                nb(GEN_GLOBAL_DECODER, cell="generate-exercise"), score("test_generation_"),
                "loaded", ["use the decoder passed as argument"]),
        Student("anomaly-recon-only", "the anomaly score without the KL term",
                nb(ANOMALY_RECON_ONLY, cell="anomaly-exercise"),
                score(test_anomaly_scores_values=0, test_anomaly_scores_noise=0), "loaded",
                ["add the KL term"]),
        Student("anomaly-sampled-z", "the anomaly score decodes a sampled z",
                nb(ANOMALY_SAMPLED_Z, cell="anomaly-exercise"),
                score(test_anomaly_scores_values=0, test_anomaly_scores_noise=0), "loaded",
                ["use z_mean, not a sampled z"]),
        Student("anomaly-batch-mean", "one anomaly score for the whole batch",
                nb(ANOMALY_BATCH_MEAN, cell="anomaly-exercise"), score(test_anomaly_scores_shape=0),
                "loaded", ["do not average over the batch"]),
        Student("roc-reversed", "the AUC of the other direction",
                nb(ROC_REVERSED, cell="anomaly-exercise"), score(test_roc_auc_values=0), "loaded",
                ["the AUC of the other direction"]),
        Student("roc-strict", "ties counted as 0 in the AUC", nb(ROC_STRICT, cell="anomaly-exercise"),
                score(test_roc_auc_ties=0), "loaded", []),
        Student("conv-mlp", "a 'convolutional' VAE without a convolution",
                nb(CONV_MLP, cell="conv-exercise"), score(test_conv_budget=0), "loaded",
                ["neither model has a convolution"]),
        Student("conv-too-big", "a Dense(512) after Flatten: over the parameter budget",
                nb(CONV_TOO_BIG, cell="conv-exercise"), score(test_conv_budget=0), "loaded",
                [f"over the budget of {sizes['conv_budget']:,}"]),
        Student("conv-no-sigmoid", "the convolutional decoder ends without a sigmoid",
                nb(CONV_NO_SIGMOID, cell="conv-exercise"), score(test_conv_outputs=0), "loaded", []),
        Student("conv-sampling-swapped", "the convolutional encoder calls Sampling(z_log_var, z_mean)",
                nb(CONV_SAMPLING_SWAPPED, cell="conv-exercise"), score(test_conv_outputs=0), "loaded",
                ["conv_encoder calls Sampling on (z_log_var, z_mean)"]),
        Student("conv-flat-output", "the convolutional decoder returns flat vectors",
                nb(CONV_FLAT_OUTPUT, cell="conv-exercise"), score(test_conv_shapes=0), "loaded",
                [f"conv_decoder returns flat vectors of {o} pixels"]),
        # Cheating in the kernel: a trick can withhold the record (0), never raise the score.
        Student("cheat-checks-replaced", f"{width} units, and checks.check_* replaced by no-ops",
                nb(CHECKER_OVERWRITTEN), h256, "written", [hidden_msg]),
        Student("cheat-empties-later-cells", f"{width} units, then an input transformer that empties "
                "every later cell (the graded tests and the other exercises included)",
                nb(EMPTIES_LATER_CELLS), after_kl, "written", [nothing]),
        Student("cheat-reload-noop", "no decoder; importlib.reload and every check made no-ops",
                nb(RELOAD_NOOP), no_decoder, "unsolved", ["there is no `decoder` yet"]),
        Student("cheat-forged-record", f"{width} units, and the record replaced by a forged one",
                nb(FORGED_RECORD), score("test_decoder_"), "written",
                ["the grader could not read what your notebook handed over"]),
        Student("cheat-forged-correct-record", "no decoder; the recording code replaced by one "
                "that computes, in NumPy, what a correct decoder would hand over: a known limit, "
                "as much work as the answer (the VAE is judged with the grader's stand-in "
                "decoder)", nb(FORGED_CORRECT_RECORD), full, "unsolved", []),
        Student("answer-in-another-cell", "the KL written at the end of the imports cell, its "
                "answer cell left as released: full marks, flagged for a human",
                nb(edit=kl_in_the_imports_cell), full, "loaded", [],
                ["LOOK: points on exercises whose answer cell is exactly as released: "
                 "kl_divergence (3)"]),
        # Forging, each alone (docs/instructor.md, Security model): what the grader judges is
        # what the student's code computes on the grader's secret inputs, or nothing.
        Student("cheat-constant-decoder", "no decoder; a forged record of zero weights (every "
                "output 0.5), with two empty layers named like the real ones in front",
                nb(CONSTANT_DECODER_RECORD), no_decoder, "unsolved",
                ["every weight of the matrix of layer"]),
        Student("cheat-hooked-record", "KL with its sign flipped, and a pre_run_cell hook that "
                "shows a forged KL record before the grader's", nb(HOOKED_RECORD, cell="kl-exercise"),
                score(test_kl_values=0, test_kl_wide=0), "loaded", []),
        Student("cheat-reference-leak", "reconstruction_loss and roc_auc taken from vaetp's "
                "reference answers", nb(REFERENCE_LEAK, cell="reconstruction-exercise",
                                        base=nb(solutions["anomaly_detection.py"] + REFERENCE_LEAK_ROC,
                                                cell="anomaly-exercise")),
                score("test_reconstruction_", "test_roc_auc_"), "loaded",
                ["raised ImportError: cannot import name 'reference'"]),
        Student("cheat-precomputed", "the reconstruction loss's record precomputed at home for "
                "the seed a student could derive from their name",
                nb(PRECOMPUTED_RECORD, cell="reconstruction-exercise"),
                score(test_reconstruction_values=0, test_reconstruction_wide=0), "loaded", []),
        Student("cheat-vae-made-up", "no VAE; its record made up (images, a loss per call, the "
                "facts of a right VAE)", nb(VAE_MADE_UP, cell="vae-exercise"), score("test_vae_"),
                "loaded", []),
        Student("cheat-generation-made-up", "no generate_digits; its record made up (normal "
                "draws where the former grader decoder put z)",
                nb(GEN_MADE_UP, cell="generate-exercise"), score("test_generation_"), "loaded", []),
        Student("cheat-conv-dead-branch", "an MLP 'convolutional' VAE whose record claims a "
                "Conv2D that no output uses: the program is refused, every conv test fails",
                nb(CONV_MLP + CONV_DEAD_BRANCH, cell="conv-exercise"), score("test_conv_"),
                "loaded", ["never use"]),
        Student("cheat-anomaly-made-up", "anomaly_scores and roc_auc answered, the scores' record "
                "replaced by made-up scores of the right shapes", nb(ANOMALY_MADE_UP,
                                                                     cell="anomaly-exercise"),
                score(test_anomaly_scores_values=0, test_anomaly_scores_noise=0), "loaded", []),
        Student("cheat-kl-through-grader-code", "kl_divergence made of the grader's expected VAE "
                "codes, patched to compute any KL (it cannot run: the VAEs are judged with the "
                "grader's stand-in KL)", nb(KL_THROUGH_GRADER_CODE, cell="kl-exercise"),
                score("test_kl_"), "loaded",
                ["cannot import name 'expected'"]),
        Student("cheat-vae-through-grader-code", "no VAE; a hook answers the VAE probe with a "
                "record made of the grader's expected codes", nb(VAE_THROUGH_GRADER_CODE,
                                                                 cell="vae-exercise"),
                score("test_vae_"), "loaded", []),
        Student("markdown-bomb", "correct answers, a 1.9 MB markdown output that takes hours to "
                "render, and the same in an answer", nb(edit=markdown_bomb_answer), full, "loaded",
                []),
        Student("output-flood", "correct decoder, then 40 MB of image outputs", nb(OUTPUT_FLOOD),
                full, "written", ["the grader dropped"]),
        Student("probe-flood", "a correct KL that prints 1 MB on every call, while it is recorded "
                "too (only the record leaves a probe)", nb(KL_PRINTS, cell="kl-exercise"), full,
                "loaded"),
        Student("cheat-fake-success", "no decoder; prints a fake success", nb(FAKE_SUCCESS),
                no_decoder, "unsolved", ["there is no `decoder` yet"]),
        # Spying and tampering: the sandbox shows nothing, keeps nothing, reaches nothing.
        Student("spy-course-files", "correct decoder, then reads source/, the other students, "
                "the gradebook, homes and the repository, and prints what it found",
                nb(spy), full, "written", ["gradebook: "], [], [CANARY_SECRET]),
        Student("tamper-checker", f"{width} units, then appends to vaetp/checks.py", nb(TAMPER), h256,
                "written", ["could not rewrite the checker"]),
        Student("network", "correct decoder, then tries the network", nb(network), full, "written",
                ["no network: 127.0.0.1", "no network: pypi.org"]),
        Student("xss-output", "correct decoder, then HTML and JavaScript outputs with scripts",
                nb(XSS), full, "written", ["output removed by the grader"], [],
                ["<img src=x onerror", "<script>window.__pwned"]),
        # Bombs: bounded, graded, and the others' grades unharmed.
        Student("memory-bomb", "correct decoder, then allocates memory until stopped",
                nb(MEMORY_BOMB), full, "written", ["the memory bound stopped me"]),
        Student("disk-bomb", "correct decoder, then writes 4 GB files", nb(DISK_BOMB), full,
                "written", ["disk bound in . :", "disk bound in /tmp :"]),
        Student("fork-bomb", "a shell fork bomb in the last exercise cell, no convolutional VAE",
                nb(FORK_BOMB, cell="conv-exercise"), score("test_conv_"), "loaded"),
    ] + broken_students(nb, score, full, h256, hidden_msg)


def solutions_in(folder) -> dict[str, str]:
    """solutions/*.py by file name."""
    from pathlib import Path

    return {p.name: p.read_text(encoding="utf-8") for p in sorted(Path(folder).glob("*.py"))}


def main(argv: list[str] | None = None) -> int:
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description="Write the simulated class as notebooks.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--release", type=Path, default=Path("notebooks/vae_tp.ipynb"))
    parser.add_argument("--solutions", type=Path, default=Path("solutions"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    release = nbformat.read(args.release, as_version=4)
    total = sum(graded_tests(release).values())
    for student in build(release, solutions_in(args.solutions)):
        path = args.out / f"{student.name}.ipynb"
        if path.exists():
            print(f"kept {path} (exists)")
            continue
        write_submission(student, path)
        print(f"wrote {path}: {student.why}; expected {student.total} / {total}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
