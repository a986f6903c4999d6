"""The spec of the decoder the students build, and checks that explain what is wrong with theirs.

This module is the single source of truth for "the right decoder": the student notebook's
check cell, the graded (visible and hidden) nbgrader tests and the pytest suite all call it.
Each `check_*` function tests one part of the spec and raises `DecoderMismatch` (an
`AssertionError`) whose message names the mistake in plain words, e.g. "your hidden layer has
256 units; the TP asks for 512". The checks look at what the decoder computes, not how it was
written, so a `Sequential` model, other layer names or a subclassed layer pass as long as they
compute sigmoid(relu(z W1 + b1) W2 + b2) with the TP's sizes.

Every check judges a `DecoderData` (`vaetp.decoder_data`): the decoder's weights and what it
computes on chosen latent vectors, as plain numbers. Given a live Keras model, a check first
records it (in the same process: the student's check cell); when a notebook is graded, the
record is made inside the student's sandboxed kernel and judged by `vaetp.grading.judge`, in
a process that never ran the student's code.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vaetp.calls import AnswerMismatch, Verdict, print_verdicts, run_verdicts
from vaetp.decoder_data import DecoderData, extract, first_line, probe_latents, projection


@dataclass(frozen=True)
class DecoderSpec:
    """The decoder of the TP: latent vector -> Dense(intermediate_dim, relu) ->
    Dense(original_dim, sigmoid). Its sizes have no defaults: they come from the master's
    parameters cell (`from_parameters`), in the check cell as in the grader."""

    latent_dim: int
    hidden_units: int
    output_units: int
    hidden_activation: str = "relu"
    output_activation: str = "sigmoid"

    @classmethod
    def from_parameters(cls, parameters: dict[str, Any]) -> "DecoderSpec":
        """The spec from the notebook's own parameters (`latent_dim`, `intermediate_dim`,
        `original_dim`): the one place the exercise's sizes come from."""
        return cls(latent_dim=int(parameters["latent_dim"]),
                   hidden_units=int(parameters["intermediate_dim"]),
                   output_units=int(parameters["original_dim"]))

    @property
    def hidden_params(self) -> int:
        return (self.latent_dim + 1) * self.hidden_units

    @property
    def output_params(self) -> int:
        return (self.hidden_units + 1) * self.output_units

    @property
    def n_params(self) -> int:
        return self.hidden_params + self.output_params


#: Where the decoder is written (tests/test_repository.py checks it against the master).
CELL = "the exercise cell of section 10"


class DecoderMismatch(AnswerMismatch):
    """The decoder differs from the TP's spec; the message says how, in plain words (the one
    check type, `vaetp.calls.AnswerMismatch`, under the decoder's name)."""


class _Recorded:
    """Stands for the encoder when a check judges a record: the record already holds what
    decoder(encoder(inputs)) gave in the kernel where it was made."""

    def __repr__(self) -> str:
        return "RECORDED"


RECORDED = _Recorded()


def as_data(decoder: Any, encoder: Any, spec: DecoderSpec) -> DecoderData:
    """The decoder as a record: itself if it already is one, else recorded now, here."""
    if isinstance(decoder, DecoderData):
        return decoder
    return extract(decoder, None if encoder is RECORDED else encoder,
                   latent_dim=spec.latent_dim, original_dim=spec.output_units)


# --------------------------------------------------------------------------------------------
# Looking inside a decoder: which affine (Dense-like) layers it has, what it computes.
# --------------------------------------------------------------------------------------------

_erf = np.vectorize(__import__("math").erf, otypes=[float])

SIGMOID_TWICE = "sigmoid, applied twice"
_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear (no activation)": lambda a: a,
    "relu": lambda a: np.maximum(a, 0.0),
    "sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)),
    "tanh": np.tanh,
    "softmax": lambda a: np.exp(a - a.max(-1, keepdims=True))
    / np.exp(a - a.max(-1, keepdims=True)).sum(-1, keepdims=True),
    "softplus": lambda a: np.logaddexp(0.0, a),
    "elu": lambda a: np.where(a > 0, a, np.expm1(np.minimum(a, 0.0))),
    "selu": lambda a: 1.0507009873554805
    * np.where(a > 0, a, 1.6732632423543772 * np.expm1(np.minimum(a, 0.0))),
    "leaky_relu": lambda a: np.where(a > 0, a, 0.2 * a),
    "LeakyReLU (slope 0.3)": lambda a: np.where(a > 0, a, 0.3 * a),
    "swish": lambda a: a / (1.0 + np.exp(-a)),
    "relu6": lambda a: np.clip(a, 0.0, 6.0),
    "hard_sigmoid": lambda a: np.clip(a + 3.0, 0.0, 6.0) / 6.0,
    "gelu": lambda a: 0.5 * a * (1.0 + _erf(a / np.sqrt(2.0))),
    "exponential": lambda a: np.exp(np.minimum(a, 80.0)),
    # a mistake, not an activation: a sigmoid on the output Dense and another one after it
    SIGMOID_TWICE: lambda a: 1.0 / (1.0 + np.exp(-1.0 / (1.0 + np.exp(-a)))),
}
_SPEC_NAMES = {"linear (no activation)": "linear", "leaky_relu": "leaky_relu"}


@dataclass(frozen=True)
class AffineLayer:
    """One Dense-like layer found in the decoder: its weights and, once known, its activation."""

    name: str
    kernel: np.ndarray  # (inputs, units)
    bias: np.ndarray | None
    index: int = -1  # the layer's place in the record (names are the student's: never trusted)

    @property
    def inputs(self) -> int:
        return int(self.kernel.shape[0])

    @property
    def units(self) -> int:
        return int(self.kernel.shape[1])

    @property
    def n_params(self) -> int:
        return self.kernel.size + (0 if self.bias is None else self.bias.size)

    def apply(self, x: np.ndarray) -> np.ndarray:
        y = x @ self.kernel
        return y if self.bias is None else y + self.bias


@dataclass(frozen=True)
class Anatomy:
    """What a decoder is made of and computes, as far as the checks need to know."""

    input_dim: int | None
    layers: tuple[AffineLayer, ...]
    activations: tuple[str, ...] | None  # one per layer; None if no standard combination fits
    n_params: int


def _require_model(data: DecoderData) -> None:
    if data.kind == "missing":
        raise DecoderMismatch(
            f"there is no `decoder` yet: write it in {CELL} and run "
            "that cell, then run this cell again."
        )
    if data.kind != "model":
        raise DecoderMismatch(
            f"`decoder` is a {data.type_name}, not a Keras model: wrap your layers in "
            "keras.Model(latent_inputs, outputs, name='decoder')."
        )


def _declared_input_dim(data: DecoderData, spec: DecoderSpec) -> int | None:
    """The last dimension of the decoder's declared input, or None if it declares none."""
    if data.declared_input is None:
        return None
    if data.n_inputs != 1:
        raise DecoderMismatch(
            f"your decoder has {data.n_inputs} inputs; the TP's decoder has one: the latent "
            "vector z."
        )
    shape = data.declared_input
    if len(shape) != 2:
        raise DecoderMismatch(
            f"your decoder takes inputs of shape {shape}; the TP asks for (None, "
            f"{spec.latent_dim}): a batch of latent vectors, one per image."
        )
    return shape[1]


def _affine_layers(data: DecoderData) -> list[AffineLayer]:
    """Every layer that owns a 2-D weight (a kernel), with its bias, in call order."""
    found: list[AffineLayer] = []
    for index, layer in enumerate(data.layers):
        kernels = [w for w in layer.weights if w.ndim == 2]
        if not kernels:
            continue
        if len(kernels) != 1:
            raise DecoderMismatch(
                f"layer {layer.name!r} holds {len(kernels)} weight matrices; the TP's decoder is "
                "made of plain Dense layers."
            )
        biases = [w for w in layer.weights if w.ndim == 1 and w.shape[0] == kernels[0].shape[1]]
        found.append(AffineLayer(layer.name, kernels[0].astype("float64"),
                                 biases[0].astype("float64") if biases else None, index))
    return _in_call_order(found)


def _in_call_order(layers: list[AffineLayer]) -> list[AffineLayer]:
    """Chain layers by matching sizes (out of one = in of the next); keep found order on ties."""
    if len(layers) < 2:
        return layers
    outputs = {layer.units for layer in layers}
    starts = [layer for layer in layers if layer.inputs not in outputs] or layers[:1]
    chain = [starts[0]]
    rest = [layer for layer in layers if layer is not starts[0]]
    while rest:
        nxt = next((layer for layer in rest if layer.inputs == chain[-1].units), rest[0])
        chain.append(nxt)
        rest.remove(nxt)
    return chain


def _identify_activations(
    layers: Sequence[AffineLayer], z: np.ndarray, out: np.ndarray
) -> tuple[str, ...] | None:
    """Find the activation after each layer that reproduces the decoder's output, if any."""
    if not layers or len(layers) > 3 or out.shape[-1] != layers[-1].units:
        return None
    names = list(_ACTIVATIONS)
    # Try the spec's combination first, then the others.
    preferred = ["relu", "sigmoid"] + [n for n in names if n not in ("relu", "sigmoid")]
    for combo in itertools.product(preferred, repeat=len(layers)):
        x = z.astype("float64")
        for layer, act in zip(layers, combo):
            x = _ACTIVATIONS[act](layer.apply(x.astype("float64")))
        if x.shape == out.shape and np.allclose(x, out, rtol=1e-3, atol=1e-4):
            return combo
    return None


def anatomy(decoder: Any, spec: DecoderSpec) -> Anatomy:
    """Open the decoder up: its input size, its Dense-like layers and their activations."""
    data = as_data(decoder, None, spec)
    _require_model(data)
    input_dim = _declared_input_dim(data, spec)
    if data.build_error:
        raise DecoderMismatch(
            f"calling your decoder on a batch of {spec.latent_dim}-d latent vectors failed "
            f"({data.build_error})."
        )
    layers = _affine_layers(data)
    if input_dim is None and layers:
        input_dim = layers[0].inputs
    activations = None
    if layers and data.z is not None and data.y is not None and data.y.ndim == 2:
        activations = _identify_activations(layers, data.z.astype("float64"),
                                            data.y.astype("float64"))
    if data.z is not None and not np.array_equal(
            data.z, probe_latents(data.seed, int(data.z.shape[-1])) if data.z.ndim == 2 else None):
        raise DecoderMismatch("the grader could not use this record: it was not made on the "
                              "latent vectors the grader chose.")
    _require_live_weights(layers, data)
    n_params = sum(w.size for layer in data.layers for w in layer.weights)
    return Anatomy(input_dim, tuple(layers), activations, int(n_params))


def _require_live_weights(layers: Sequence[AffineLayer], data: DecoderData) -> None:
    """A decoder whose weight matrices are constant (all zero, say) gives the same image for
    every latent vector: it cannot be told from numbers written by hand, and it cannot learn
    (every hidden unit gets the same gradient). Keras draws a new decoder's weights at random."""
    flat = [layer for layer in layers if float(np.ptp(layer.kernel)) == 0.0]
    if flat:
        raise DecoderMismatch(
            f"every weight of the matrix of layer {flat[0].name!r} is the same number "
            f"({float(flat[0].kernel.flat[0]):.3g}): your decoder then gives the same image for "
            "every latent vector and cannot learn. Keep Dense's default (random) "
            "kernel_initializer and do not set the weights by hand.")
    if data.y is not None and data.y.ndim == 2 and len(data.y) > 1 \
            and float(np.max(np.ptp(data.y.astype("float64"), axis=0))) < 1e-6:
        raise DecoderMismatch(
            "your decoder gives the same image for every latent vector: its output does not "
            "depend on z. Keep Dense's default (random) initializers and do not set the weights "
            "by hand.")


_first_line = first_line


def _describe_layers(layers: Sequence[AffineLayer]) -> str:
    if not layers:
        return "no Dense layer"
    sizes = " -> ".join([str(layers[0].inputs)] + [str(layer.units) for layer in layers])
    word = "layer" if len(layers) == 1 else "layers"
    return f"{len(layers)} Dense {word} ({sizes})"


def _shape_text(spec: DecoderSpec) -> str:
    return (
        f"a hidden Dense layer of {spec.hidden_units} units with {spec.hidden_activation}, then "
        f"an output Dense layer of {spec.output_units} units with {spec.output_activation}"
    )


def _activation_name(name: str) -> str:
    return _SPEC_NAMES.get(name, name)


# --------------------------------------------------------------------------------------------
# The checks: one per part of the spec, each raising DecoderMismatch with a plain message.
# --------------------------------------------------------------------------------------------


def _quietly(check: Callable[..., None]) -> Callable[..., None]:
    """Run a check with warnings silenced: nbgrader scores a test cell that writes to stderr
    as failed, and a Keras warning about the student's model must not cost a point."""

    @functools.wraps(check)
    def run(*args: Any, **kwargs: Any) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check(*args, **kwargs)

    return run



@_quietly
def check_input_shape(decoder: Any, spec: DecoderSpec) -> None:
    """The decoder takes a batch of latent vectors: input shape (None, latent_dim)."""
    found = anatomy(decoder, spec).input_dim
    if found != spec.latent_dim:
        raise DecoderMismatch(
            f"your decoder takes inputs of shape (None, {found}); the TP asks for (None, "
            f"{spec.latent_dim}): one latent vector of latent_dim = {spec.latent_dim} numbers "
            "per image, the size of the encoder's output."
        )


def _two_layers(decoder: Any, spec: DecoderSpec) -> Anatomy:
    found = anatomy(decoder, spec)
    if len(found.layers) != 2:
        raise DecoderMismatch(
            f"your decoder has {_describe_layers(found.layers)}; the TP asks for 2: "
            f"{_shape_text(spec)}."
        )
    return found


def _units_and_bias(layer: Any, which: str, units: int, why: str) -> None:
    """The `which` layer (hidden, output) has `units` units and a bias."""
    if layer.units != units:
        raise DecoderMismatch(
            f"your {which} layer has {layer.units} units; the TP asks for {units}{why}.")
    if layer.bias is None:
        raise DecoderMismatch(f"your {which} layer has no bias; keep Dense's default use_bias=True.")


@_quietly
def check_hidden_layer(decoder: Any, spec: DecoderSpec) -> None:
    """First layer: Dense with `hidden_units` units and the relu activation."""
    found = _two_layers(decoder, spec)
    _units_and_bias(found.layers[0], "hidden", spec.hidden_units,
                    " (the parameter intermediate_dim)")
    if found.activations is None:
        raise DecoderMismatch(
            "your decoder computes something other than Dense -> activation -> Dense -> "
            f"activation; the TP asks for {_shape_text(spec)}."
        )
    act = _activation_name(found.activations[0])
    if act != spec.hidden_activation:
        raise DecoderMismatch(
            f"your hidden layer's activation is {act}; the TP asks for "
            f"{spec.hidden_activation} (activation='{spec.hidden_activation}')."
        )


@_quietly
def check_output_layer(decoder: Any, spec: DecoderSpec) -> None:
    """Last layer: Dense with one unit per pixel (784) and the sigmoid activation."""
    found = anatomy(decoder, spec)
    if not found.layers:
        raise DecoderMismatch(f"your decoder has no Dense layer; the TP asks for {_shape_text(spec)}.")
    data = as_data(decoder, None, spec)
    if data.y is not None and data.y.ndim != 2:
        shape = ("None",) + tuple(str(d) for d in data.y.shape[1:])
        raise DecoderMismatch(
            f"your decoder's output has shape ({', '.join(shape)}); the TP asks for (None, "
            f"{spec.output_units}): a flat vector of pixels per image, as the images are "
            "flattened for the loss. Remove the Reshape (or Flatten's opposite) at the end.")
    _units_and_bias(found.layers[-1], "output", spec.output_units,
                    ", one per pixel of a 28 x 28 image")
    if found.activations is None:
        raise DecoderMismatch(
            "your decoder's output could not be matched to Dense layers followed by a standard "
            f"activation; the TP asks for {_shape_text(spec)}."
        )
    act = _activation_name(found.activations[-1])
    if act == SIGMOID_TWICE and spec.output_activation == "sigmoid":
        raise DecoderMismatch(
            "your decoder applies the sigmoid twice: activation=\"sigmoid\" on the output Dense "
            "layer and another sigmoid after it. Keep one: twice, every pixel stays between 0.5 "
            "and 0.73, never a black pixel.")
    if act != spec.output_activation:
        raise DecoderMismatch(
            f"your output layer uses {act}; the TP asks for {spec.output_activation}, so that "
            "every pixel is a probability in (0, 1), as the binary cross-entropy expects."
        )


@_quietly
def check_parameter_count(decoder: Any, spec: DecoderSpec) -> None:
    """The spec's parameter count, all of them, trainable or not (403,728 at the TP's sizes:
    1,536 in the hidden layer, 402,192 in the output layer). A wrong input size is the input-shape test's mistake, not this one's: the
    count expected is that of the TP's layers on the decoder's own input size."""
    found_anatomy = anatomy(decoder, spec)
    found = found_anatomy.n_params
    if found_anatomy.input_dim and found_anatomy.input_dim != spec.latent_dim:
        spec = dataclasses.replace(spec, latent_dim=found_anatomy.input_dim)
    if found != spec.n_params:
        raise DecoderMismatch(
            f"your decoder has {found:,} parameters; the TP's has {spec.n_params:,} = "
            f"{spec.hidden_params:,} (hidden: {spec.latent_dim} x {spec.hidden_units} weights + "
            f"{spec.hidden_units} biases) + {spec.output_params:,} (output: {spec.hidden_units} x "
            f"{spec.output_units} + {spec.output_units})."
        )


@_quietly
def check_composition(decoder: Any, encoder: Any, spec: DecoderSpec) -> None:
    """decoder(encoder(inputs)) builds, with an output of shape (None, 784)."""
    data = as_data(decoder, encoder, spec)
    anatomy(data, spec)  # a model, with weights that compute something
    if data.composition_shape is None:
        error = data.composition_error or "it was not tried"
        raise DecoderMismatch(
            "decoder(encoder(inputs)) fails: the decoder cannot take the encoder's output "
            f"z, of shape (None, {spec.latent_dim}) ({error})."
        )
    shape = data.composition_shape
    if shape != (None, spec.output_units):
        raise DecoderMismatch(
            f"decoder(encoder(inputs)) has shape {shape}; the VAE needs (None, "
            f"{spec.output_units}): one reconstructed image per input image."
        )


# --------------------------------------------------------------------------------------------
# Deeper checks, used by the graded notebook's hidden tests: the decoder computes the TP's
# function with its own weights, and every weight can learn.
# --------------------------------------------------------------------------------------------


def _tp_forward(layers: Sequence[AffineLayer], z: np.ndarray) -> tuple[np.ndarray, ...]:
    a1 = layers[0].apply(z)
    h = np.maximum(a1, 0.0)
    y = 1.0 / (1.0 + np.exp(-layers[1].apply(h)))
    return a1, h, y


@_quietly
def check_computes_tp_function(decoder: Any, spec: DecoderSpec) -> None:
    """On random latent vectors, the output is sigmoid(relu(z W1 + b1) W2 + b2) computed with the
    decoder's own weights, to float32 precision."""
    data = as_data(decoder, None, spec)
    found = _two_layers(data, spec)
    if data.y is None or data.z is None:
        raise DecoderMismatch(f"calling your decoder on random latent vectors failed "
                              f"({data.call_error or 'no output'}).")
    layers = found.layers
    if layers[0].inputs != data.z.shape[1] or data.y.shape != (data.z.shape[0], layers[1].units) \
            or layers[0].bias is None or layers[1].bias is None:
        raise DecoderMismatch(f"your decoder is not {_shape_text(spec)}.")
    expected = _tp_forward(layers, data.z.astype("float64"))[2]
    gap = float(np.max(np.abs(expected - data.y.astype("float64"))))
    if not gap <= 1e-4:
        raise DecoderMismatch(
            "on random latent vectors, your decoder's output differs from "
            "sigmoid(relu(z W1 + b1) W2 + b2) computed with its own weights (largest "
            f"difference {gap:.2g}): something else than Dense -> relu -> Dense -> sigmoid is "
            "in the way (a Dropout, a noise layer, a Lambda?)."
        )


@_quietly
def check_every_weight_learns(decoder: Any, spec: DecoderSpec) -> None:
    """Every weight is trainable and receives the gradient that the TP's function gives it."""
    data = as_data(decoder, None, spec)
    found = _two_layers(data, spec)
    frozen = [f"{layer.name}" for layer in data.layers
              if not all(layer.trainable)]
    if frozen:
        raise DecoderMismatch(
            f"the weights of {', '.join(repr(n) for n in frozen)} are frozen (trainable=False): "
            "training could never change them. Leave every layer of the decoder trainable.")
    if data.grad_error or data.y is None or data.z is None:
        raise DecoderMismatch("no gradient could be computed through your decoder "
                              f"({data.grad_error or data.call_error or 'no output'}).")
    layers = found.layers
    a1, h, y = _tp_forward(layers, data.z.astype("float64"))
    r = projection(data.seed, y.shape[1]).astype("float64")
    d2 = r * y * (1.0 - y)
    d1 = (d2 @ layers[1].kernel.T) * (a1 > 0)
    expected = {(0, 2): data.z.T @ d1, (0, 1): d1.sum(0), (1, 2): h.T @ d2, (1, 1): d2.sum(0)}
    for k, affine in enumerate(layers):
        layer = data.layers[affine.index]
        for w, g in zip(layer.weights, layer.grads or [None] * len(layer.weights)):
            want = expected.get((k, w.ndim))
            if want is None or want.shape != w.shape:
                continue
            if g is None or not np.any(g):
                raise DecoderMismatch(
                    f"no gradient reaches the weights of {layer.name!r}: training could never "
                    "change them (a stop_gradient, or a layer used outside the model?).")
            scale = float(np.max(np.abs(want))) or 1.0
            if float(np.max(np.abs(g - want))) > 1e-3 * scale + 1e-6:
                raise DecoderMismatch(
                    f"the gradient reaching {layer.name!r} is not the one of "
                    "sigmoid(relu(z W1 + b1) W2 + b2): something in your decoder changes the "
                    "gradients.")


#: The parts of the spec, in the order a student should fix them (and the nbgrader split).
CHECKS: dict[str, Callable[..., None]] = {
    "input shape": check_input_shape,
    "hidden layer": check_hidden_layer,
    "output layer": check_output_layer,
    "parameter count": check_parameter_count,
    "composition with the encoder": check_composition,
    # the hidden test's properties (its inputs stay the grader's): a student told "passed"
    # keeps the points
    "computes the TP's function": check_computes_tp_function,
    "every weight learns": check_every_weight_learns,
}


def _passed_text(name: str, spec: DecoderSpec) -> str:
    return {
        "input shape": f"(None, {spec.latent_dim})",
        "hidden layer": f"Dense {spec.hidden_units}, {spec.hidden_activation}",
        "output layer": f"Dense {spec.output_units}, {spec.output_activation}",
        "parameter count": f"{spec.n_params:,}",
        "composition with the encoder": f"decoder(encoder(inputs)) has shape (None, {spec.output_units})",
        "computes the TP's function": "sigmoid(relu(z W1 + b1) W2 + b2) with its own weights",
        "every weight learns": "every weight is trainable and gets the TP's gradient",
    }[name]


def run_checks(decoder: Any, encoder: Any, spec: DecoderSpec) -> list[Verdict]:
    """Run every check and collect the verdicts instead of stopping at the first failure."""
    data = as_data(decoder, encoder, spec)
    try:
        _require_model(data)
    except DecoderMismatch as err:
        return [Verdict("decoder", False, str(err))]

    def run(name: str, check: Callable[..., None]) -> Callable[[], str]:
        def one() -> str:
            args = (data, RECORDED) if check is check_composition else (data,)
            check(*args, spec=spec)
            return _passed_text(name, spec)
        return one

    return run_verdicts({name: run(name, check) for name, check in CHECKS.items()
                         if not (check is check_composition and encoder is None)})


SUCCESS = "All checks passed: your decoder matches the TP. Carry on to the VAE."


#: The encoder's names that the VAE and the latent scatter need, by the layer that made them.
ENCODER_NAMES = {"inputs": None, "h": "encoder_hidden", "z_mean": "z_mean",
                 "z_log_var": "z_log_var", "z": None}


def overwritten_encoder_names(namespace: dict[str, Any]) -> list[str]:
    """The encoder's names that now hold something else (the exercise cell reused them)."""
    encoder = namespace.get("encoder")
    if encoder is None or not hasattr(encoder, "inputs") or not hasattr(encoder, "get_layer"):
        return []
    try:
        expected = {"inputs": encoder.inputs[0], "z": encoder.outputs[0]}
    except (AttributeError, ValueError, IndexError):
        return []
    for name, layer in ENCODER_NAMES.items():
        if layer is not None:
            try:
                expected[name] = encoder.get_layer(layer).output
            except (AttributeError, ValueError):
                continue
    return [name for name in ENCODER_NAMES if name in expected and name in namespace
            and namespace[name] is not expected[name]]


def check_decoder(decoder: Any, encoder: Any, spec: DecoderSpec,
                  namespace: dict[str, Any] | None = None) -> None:
    """Print a plain-language verdict on each part of the spec (the student's check cell);
    with the notebook's `namespace`, also say if the encoder's names were overwritten."""
    results = run_checks(decoder, encoder, spec)
    reused = overwritten_encoder_names(namespace or {})
    if reused:
        names = ", ".join(f"`{n}`" for n in reused)
        results.append(Verdict("the encoder's names", False, (
            f"your code reused {names}, which the encoder cells defined: the VAE and the latent "
            "scatter below need the encoder's. Rename yours in the exercise cell (e.g. "
            "`latent_inputs`, `x`), then run the encoder cells (section 7) and the exercise "
            "cell again.")))
    if encoder is None and namespace is not None and "encoder" not in namespace:
        results.append(Verdict("the encoder", False, (
            "there is no `encoder`: run the cells of sections 7 to 9 first, then this one.")))
    print_verdicts("Checking your decoder against the TP:", results, SUCCESS)


def _table(rows: Sequence[tuple[int, int, str, int]], total: int) -> str:
    lines = [f"Dense {inputs:>3} -> {units:<3} {act:<8} {n:>9,} parameters"
             for inputs, units, act, n in rows]
    return "\n".join(lines + [f"Total{'':>22}{total:>9,} parameters"]) + "\n"


def spec_table(spec: DecoderSpec) -> str:
    """What `parameter_table` prints for the TP's decoder: the notebook's stored output, which
    `make generate` writes from the parameters cell and nbval compares with the live table."""
    return _table([(spec.latent_dim, spec.hidden_units, spec.hidden_activation, spec.hidden_params),
                   (spec.hidden_units, spec.output_units, spec.output_activation,
                    spec.output_params)], spec.n_params)


def parameter_table(decoder: Any, spec: DecoderSpec) -> None:
    """Print the decoder's Dense layers and their parameter counts (a name-free summary), or
    why there is none to print."""
    try:
        found = anatomy(decoder, spec)
    except DecoderMismatch as err:
        print(f"No table: {err}")
        return
    acts = found.activations or ("?",) * len(found.layers)
    print(_table([(layer.inputs, layer.units, _activation_name(act), layer.n_params)
                  for layer, act in zip(found.layers, acts)], found.n_params), end="")
