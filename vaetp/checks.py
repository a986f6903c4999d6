"""The spec of the decoder the students build, and checks that explain what is wrong with theirs.

This module is the single source of truth for "the right decoder": the student notebook's
check cell, the graded (visible and hidden) nbgrader tests and the pytest suite all call it.
Each `check_*` function tests one part of the spec and raises `DecoderMismatch` (an
`AssertionError`) whose message names the mistake in plain words, e.g. "your hidden layer has
256 units; the TP asks for 512". The checks look at what the decoder computes, not how it was
written, so a `Sequential` model, other layer names or a subclassed layer pass as long as they
compute sigmoid(relu(z W1 + b1) W2 + b2) with the TP's sizes.
"""

from __future__ import annotations

import functools
import itertools
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DecoderSpec:
    """The decoder of the TP: latent vector -> Dense(512, relu) -> Dense(784, sigmoid)."""

    latent_dim: int = 2
    hidden_units: int = 512
    hidden_activation: str = "relu"
    output_units: int = 784
    output_activation: str = "sigmoid"

    @property
    def hidden_params(self) -> int:
        return (self.latent_dim + 1) * self.hidden_units

    @property
    def output_params(self) -> int:
        return (self.hidden_units + 1) * self.output_units

    @property
    def n_params(self) -> int:
        return self.hidden_params + self.output_params


SPEC = DecoderSpec()


class DecoderMismatch(AssertionError):
    """The decoder differs from the TP's spec; the message says how, in plain words."""


# --------------------------------------------------------------------------------------------
# Looking inside a decoder: which affine (Dense-like) layers it has, what it computes.
# --------------------------------------------------------------------------------------------

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
    "swish": lambda a: a / (1.0 + np.exp(-a)),
}
_SPEC_NAMES = {"linear (no activation)": "linear", "leaky_relu": "leaky_relu"}


@dataclass(frozen=True)
class AffineLayer:
    """One Dense-like layer found in the decoder: its weights and, once known, its activation."""

    name: str
    kernel: np.ndarray  # (inputs, units)
    bias: np.ndarray | None

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


def _is_keras_layer(obj: Any) -> bool:
    import keras

    return isinstance(obj, keras.layers.Layer)


def _require_model(decoder: Any) -> None:
    if decoder is None:
        raise DecoderMismatch(
            "there is no `decoder` yet: write it in the exercise cell (or uncomment its "
            "`%load` line and run the cell twice), then run this cell again."
        )
    if not _is_keras_layer(decoder):
        kind = type(decoder).__name__
        raise DecoderMismatch(
            f"`decoder` is a {kind}, not a Keras model: wrap your layers in "
            "keras.Model(latent_inputs, outputs, name='decoder')."
        )


def _declared_input_dim(decoder: Any) -> int | None:
    """The last dimension of the decoder's declared input, or None if it declares none."""
    try:
        inputs = decoder.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs:
        return None
    if len(inputs) != 1:
        raise DecoderMismatch(
            f"your decoder has {len(inputs)} inputs; the TP's decoder has one: the latent "
            "vector z."
        )
    shape = tuple(inputs[0].shape)
    if len(shape) != 2:
        raise DecoderMismatch(
            f"your decoder takes inputs of shape {shape}; the TP asks for (None, "
            f"{SPEC.latent_dim}): a batch of latent vectors, one per image."
        )
    return None if shape[1] is None else int(shape[1])


def _affine_layers(decoder: Any) -> list[AffineLayer]:
    """Every layer that owns a 2-D weight (a kernel), with its bias, in call order."""
    found: list[AffineLayer] = []
    sublayers = decoder._flatten_layers(include_self=True, recursive=True)
    for layer in sublayers:
        if list(layer._flatten_layers(include_self=False, recursive=False)):
            continue  # a container: its own weights are those of its sublayers
        weights = [np.asarray(w.numpy()) for w in layer.weights]
        kernels = [w for w in weights if w.ndim == 2]
        if not kernels:
            continue
        if len(kernels) != 1:
            raise DecoderMismatch(
                f"layer {layer.name!r} holds {len(kernels)} weight matrices; the TP's decoder is "
                "made of plain Dense layers."
            )
        biases = [w for w in weights if w.ndim == 1 and w.shape[0] == kernels[0].shape[1]]
        found.append(AffineLayer(layer.name, kernels[0], biases[0] if biases else None))
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


def _probe(decoder: Any, input_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Run the decoder on fixed random latent vectors spread well beyond N(0, I)."""
    import keras

    z = np.random.default_rng(0).normal(0.0, 3.0, size=(64, input_dim)).astype("float32")
    try:
        out = decoder(z, training=False)
    except TypeError:
        out = decoder(z)
    return z, np.asarray(keras.ops.convert_to_numpy(out), dtype="float64")


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


def anatomy(decoder: Any, spec: DecoderSpec = SPEC) -> Anatomy:
    """Open the decoder up: its input size, its Dense-like layers and their activations."""
    _require_model(decoder)
    input_dim = _declared_input_dim(decoder)
    if not decoder.built or not decoder.weights:
        try:  # an unbuilt Sequential or subclassed model: build it on the TP's latent size
            _probe(decoder, input_dim or spec.latent_dim)
        except Exception as err:  # noqa: BLE001 - any failure is the student's to see
            raise DecoderMismatch(
                f"calling your decoder on a batch of {spec.latent_dim}-d latent vectors failed "
                f"({type(err).__name__}: {_first_line(err)})."
            ) from err
    layers = _affine_layers(decoder)
    if input_dim is None and layers:
        input_dim = layers[0].inputs
    activations = None
    if layers and input_dim is not None:
        try:
            z, out = _probe(decoder, input_dim)
        except Exception:  # noqa: BLE001 - reported by the checks as "does not compute"
            z, out = np.empty((0,)), np.empty((0,))
        activations = _identify_activations(layers, z, out)
    return Anatomy(input_dim, tuple(layers), activations, int(decoder.count_params()))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_line(err: BaseException) -> str:
    """The line of an error message that says what went wrong (Keras wraps it in a preamble)."""
    lines = [line.strip() for line in _ANSI.sub("", str(err)).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Exception encountered when calling")]
    return lines[0] if lines else type(err).__name__


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
def check_input_shape(decoder: Any, spec: DecoderSpec = SPEC) -> None:
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


@_quietly
def check_hidden_layer(decoder: Any, spec: DecoderSpec = SPEC) -> None:
    """First layer: Dense with `hidden_units` units and the relu activation."""
    found = _two_layers(decoder, spec)
    hidden = found.layers[0]
    if hidden.units != spec.hidden_units:
        raise DecoderMismatch(
            f"your hidden layer has {hidden.units} units; the TP asks for {spec.hidden_units} "
            "(the parameter intermediate_dim)."
        )
    if hidden.bias is None:
        raise DecoderMismatch("your hidden layer has no bias; keep Dense's default use_bias=True.")
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
def check_output_layer(decoder: Any, spec: DecoderSpec = SPEC) -> None:
    """Last layer: Dense with one unit per pixel (784) and the sigmoid activation."""
    found = anatomy(decoder, spec)
    if not found.layers:
        raise DecoderMismatch(f"your decoder has no Dense layer; the TP asks for {_shape_text(spec)}.")
    output = found.layers[-1]
    if output.units != spec.output_units:
        raise DecoderMismatch(
            f"your output layer has {output.units} units; the TP asks for {spec.output_units}, "
            "one per pixel of a 28 x 28 image."
        )
    if output.bias is None:
        raise DecoderMismatch("your output layer has no bias; keep Dense's default use_bias=True.")
    if found.activations is None:
        raise DecoderMismatch(
            "your decoder's output could not be matched to Dense layers followed by a standard "
            f"activation; the TP asks for {_shape_text(spec)}."
        )
    act = _activation_name(found.activations[-1])
    if act != spec.output_activation:
        raise DecoderMismatch(
            f"your output layer uses {act}; the TP asks for {spec.output_activation}, so that "
            "every pixel is a probability in (0, 1), as the binary cross-entropy expects."
        )


@_quietly
def check_parameter_count(decoder: Any, spec: DecoderSpec = SPEC) -> None:
    """403,728 trainable parameters: 1,536 in the hidden layer, 402,192 in the output layer."""
    found = anatomy(decoder, spec).n_params
    if found != spec.n_params:
        raise DecoderMismatch(
            f"your decoder has {found:,} parameters; the TP's has {spec.n_params:,} = "
            f"{spec.hidden_params:,} (hidden: {spec.latent_dim} x {spec.hidden_units} weights + "
            f"{spec.hidden_units} biases) + {spec.output_params:,} (output: {spec.hidden_units} x "
            f"{spec.output_units} + {spec.output_units})."
        )


@_quietly
def check_composition(decoder: Any, encoder: Any, spec: DecoderSpec = SPEC) -> None:
    """decoder(encoder(inputs)) builds, with an output of shape (None, 784)."""
    import keras

    _require_model(decoder)
    if not _is_keras_layer(encoder):
        raise DecoderMismatch("`encoder` is not a Keras model: run the encoder cells above first.")
    inputs = keras.Input(shape=(spec.output_units,))
    try:
        outputs = decoder(encoder(inputs))
    except Exception as err:  # noqa: BLE001 - any failure is the student's to see
        raise DecoderMismatch(
            "decoder(encoder(inputs)) fails: the decoder cannot take the encoder's output "
            f"z, of shape (None, {spec.latent_dim}) ({type(err).__name__}: {_first_line(err)})."
        ) from err
    shape = tuple(outputs.shape)
    if shape != (None, spec.output_units):
        raise DecoderMismatch(
            f"decoder(encoder(inputs)) has shape {shape}; the VAE needs (None, "
            f"{spec.output_units}): one reconstructed image per input image."
        )


#: The parts of the spec, in the order a student should fix them (and the nbgrader split).
CHECKS: dict[str, Callable[..., None]] = {
    "input shape": check_input_shape,
    "hidden layer": check_hidden_layer,
    "output layer": check_output_layer,
    "parameter count": check_parameter_count,
    "composition with the encoder": check_composition,
}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: passed, or the plain-language reason it failed."""

    name: str
    passed: bool
    message: str


def _passed_text(name: str, spec: DecoderSpec) -> str:
    return {
        "input shape": f"(None, {spec.latent_dim})",
        "hidden layer": f"Dense {spec.hidden_units}, {spec.hidden_activation}",
        "output layer": f"Dense {spec.output_units}, {spec.output_activation}",
        "parameter count": f"{spec.n_params:,}",
        "composition with the encoder": f"decoder(encoder(inputs)) has shape (None, {spec.output_units})",
    }[name]


def run_checks(decoder: Any, encoder: Any = None, spec: DecoderSpec = SPEC) -> list[CheckResult]:
    """Run every check and collect the results instead of stopping at the first failure."""
    try:
        _require_model(decoder)
    except DecoderMismatch as err:
        return [CheckResult("decoder", False, str(err))]
    results = []
    for name, check in CHECKS.items():
        args = (decoder, encoder) if check is check_composition else (decoder,)
        if check is check_composition and encoder is None:
            continue
        try:
            check(*args, spec=spec)
        except DecoderMismatch as err:
            results.append(CheckResult(name, False, str(err)))
        except Exception as err:  # noqa: BLE001 - report, never crash the check cell
            message = f"could not be checked: {type(err).__name__}: {_first_line(err)}"
            results.append(CheckResult(name, False, message))
        else:
            results.append(CheckResult(name, True, _passed_text(name, spec)))
    return results


SUCCESS = "All checks passed: your decoder matches the TP. Carry on to the VAE."


def check_decoder(decoder: Any, encoder: Any = None, spec: DecoderSpec = SPEC) -> None:
    """Print a plain-language verdict on each part of the spec (the student's check cell)."""
    results = run_checks(decoder, encoder, spec)
    print("Checking your decoder against the TP:")
    for result in results:
        mark = "✔" if result.passed else "✘"
        print(f"  {mark} {result.name}: {result.message}")
    failed = sum(not r.passed for r in results)
    if failed:
        plural = "s" if failed > 1 else ""
        print(f"{failed} problem{plural} to fix: edit the exercise cell, run it, then run this cell.")
    else:
        print(SUCCESS)


def parameter_table(decoder: Any, spec: DecoderSpec = SPEC) -> None:
    """Print the decoder's Dense layers and their parameter counts (a name-free summary)."""
    found = anatomy(decoder, spec)
    acts = found.activations or ("?",) * len(found.layers)
    for layer, act in zip(found.layers, acts):
        print(
            f"Dense {layer.inputs:>3} -> {layer.units:<3} {_activation_name(act):<8}"
            f" {layer.n_params:>9,} parameters"
        )
    print(f"Total{'':>22}{found.n_params:>9,} parameters")
