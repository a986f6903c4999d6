"""A decoder as plain data: what the checks judge, and what leaves a student's kernel when graded.

`extract(decoder, encoder, ...)` runs where the decoder lives (the student's own check cell,
or the grading kernel inside its sandbox) and records, as NumPy arrays and short strings:

- the decoder's declared input shape, if it declares one;
- every leaf layer that owns weights: its name, and each weight's value and `trainable` flag;
- its outputs on latent vectors drawn from a seed, spread well beyond N(0, I);
- the gradient of a fixed random projection of those outputs with respect to every weight;
- what `decoder(encoder(x))` gives on a symbolic batch of images.

`to_bytes` / `from_bytes` move a `DecoderData` through an .npz archive: no pickle, bounded
sizes, every field validated, so that a hostile kernel can hand over only numbers. The checks
(`vaetp.checks`) recompute every verdict from these numbers: a report that claims a correct
decoder must hold the weights of one and outputs that those weights produce.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FORMAT = "vaetp-decoder-data/1"
#: Latent vectors probed: how many, and their spread (wide, so that every activation shows).
PROBE_ROWS = 64
PROBE_SCALE = 3.0
#: Bounds on what `from_bytes` accepts (a real decoder of the TP is about 3.3 MB).
MAX_BYTES = 64 * 2**20
MAX_ARRAYS = 64
MAX_ELEMENTS = 8 * 2**20


class DataError(ValueError):
    """The export is not a valid decoder record (a broken or forged file)."""


@dataclass
class LayerData:
    name: str
    weights: list[np.ndarray]
    trainable: list[bool]
    grads: list[np.ndarray | None] = field(default_factory=list)


@dataclass
class DecoderData:
    """Everything the checks need to know about a decoder, as numbers and short strings."""

    kind: str  # "missing", "not a model", "model"
    type_name: str = ""
    declared_input: tuple[int | None, ...] | None = None
    n_inputs: int = 1
    layers: list[LayerData] = field(default_factory=list)
    n_params: int = 0
    build_error: str = ""
    seed: int = 0
    z: np.ndarray | None = None
    y: np.ndarray | None = None
    call_error: str = ""
    grad_error: str = ""
    composition_shape: tuple[int | None, ...] | None = None
    composition_error: str = ""  # "" when it built; else what failed, in plain words


def probe_latents(seed: int, dim: int) -> np.ndarray:
    """The latent vectors a decoder is probed on (the same on both sides of the sandbox): wide
    normal draws, the last eighth of them 30 times wider still, so that activations that agree
    near 0 (relu and relu6, sigmoid and hard_sigmoid) part ways."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, PROBE_SCALE, size=(PROBE_ROWS, dim))
    z[-PROBE_ROWS // 8:] *= 30.0
    return z.astype("float32")


def projection(seed: int, units: int) -> np.ndarray:
    """The fixed random weights r of the scalar sum(y * r) whose gradient is recorded."""
    rng = np.random.default_rng(seed + 1)
    return rng.uniform(-1.0, 1.0, size=(PROBE_ROWS, units)).astype("float32")


def first_line(err: BaseException) -> str:
    """The line of an error message that says what went wrong (Keras wraps it in a preamble)."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Exception encountered when calling")]
    return (lines[0] if lines else type(err).__name__)[:300]


# --------------------------------------------------------------------------------------------
# Extraction (needs Keras; runs in the kernel that holds the decoder)
# --------------------------------------------------------------------------------------------


def _is_layer(obj: Any) -> bool:
    import keras

    return isinstance(obj, keras.layers.Layer)


def _call(decoder: Any, z: np.ndarray) -> Any:
    try:
        return decoder(z, training=False)
    except TypeError:
        return decoder(z)


def extract(decoder: Any, encoder: Any = None, *, latent_dim: int, original_dim: int,
            seed: int = 0) -> DecoderData:
    """Record `decoder` as data. Never raises for a broken decoder: the failure is recorded."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = _extract(decoder, encoder, latent_dim, original_dim, seed)
    data.seed = seed  # every record says which inputs it was made for (the judge checks it)
    return data


def _extract(decoder: Any, encoder: Any, latent_dim: int, original_dim: int,
             seed: int) -> DecoderData:
    import keras

    if decoder is None:
        return DecoderData("missing")
    if not _is_layer(decoder):
        return DecoderData("not a model", type_name=type(decoder).__name__)
    data = DecoderData("model", type_name=type(decoder).__name__, seed=seed)
    try:
        inputs = decoder.inputs
    except (AttributeError, ValueError):
        inputs = None
    if inputs:
        data.n_inputs = len(inputs)
        data.declared_input = tuple(None if d is None else int(d) for d in inputs[0].shape)
    declared = data.declared_input
    dim = declared[-1] if declared and len(declared) == 2 and declared[-1] else None
    if not decoder.built or not decoder.weights:
        try:  # an unbuilt Sequential or subclassed model: build it on the TP's latent size
            _call(decoder, np.zeros((1, dim or latent_dim), "float32"))
        except Exception as err:  # noqa: BLE001 - recorded for the student
            data.build_error = f"{type(err).__name__}: {first_line(err)}"
            return data
    for name, own in _leaf_weights(decoder):
        data.layers.append(LayerData(name, [np.asarray(w.numpy()) for w in own],
                                     [bool(w.trainable) for w in own]))
    data.n_params = int(sum(np.prod(w.shape) for w in decoder.weights))
    kernels = [w for layer in data.layers for w in layer.weights if w.ndim == 2]
    dim = dim or (int(kernels[0].shape[0]) if kernels else latent_dim)
    data.z = probe_latents(seed, dim)
    try:
        data.y = np.asarray(keras.ops.convert_to_numpy(_call(decoder, data.z)), "float32")
    except Exception as err:  # noqa: BLE001
        data.call_error = f"{type(err).__name__}: {first_line(err)}"
    if data.y is not None and data.y.ndim == 2 and data.y.shape[0] == PROBE_ROWS:
        _record_gradients(decoder, data)
    _record_composition(decoder, encoder, latent_dim, original_dim, data)
    return data


def _record_gradients(decoder: Any, data: DecoderData) -> None:
    """d sum(decoder(z) * r) / d w for every weight, with TensorFlow's tape (JAX: jax.grad;
    other backends: skip)."""
    import keras

    if keras.backend.backend() == "jax":
        _record_gradients_jax(decoder, data)
        return
    if keras.backend.backend() != "tensorflow":
        data.grad_error = "gradients are recorded on the TensorFlow and JAX backends only"
        return
    import tensorflow as tf

    r = tf.constant(projection(data.seed, data.y.shape[1]))
    ordered = [w for _, own in _leaf_weights(decoder) for w in own]
    try:
        with tf.GradientTape() as tape:
            tape.watch([w.value for w in ordered])
            scalar = tf.reduce_sum(tf.cast(_call(decoder, data.z), "float32") * r)
        grads = tape.gradient(scalar, [w.value for w in ordered])
    except Exception as err:  # noqa: BLE001
        data.grad_error = f"{type(err).__name__}: {first_line(err)}"
        return
    flat = [None if g is None else np.asarray(g, "float32") for g in grads]
    k = 0
    for layer in data.layers:
        layer.grads = flat[k:k + len(layer.weights)]
        k += len(layer.weights)


def _record_gradients_jax(decoder: Any, data: DecoderData) -> None:
    """The same gradients on the JAX backend, through the decoder's stateless call."""
    import jax
    import jax.numpy as jnp

    r = jnp.asarray(projection(data.seed, data.y.shape[1]))
    trainable = [w.value for w in decoder.trainable_variables]
    frozen = [w.value for w in decoder.non_trainable_variables]

    def scalar(values):
        outputs, _ = decoder.stateless_call(values, frozen, data.z)
        return jnp.sum(jnp.asarray(outputs, "float32") * r)

    try:
        grads = jax.grad(scalar)(trainable)
    except Exception as err:  # noqa: BLE001
        data.grad_error = f"{type(err).__name__}: {first_line(err)}"
        return
    by_id = {id(w): np.asarray(g, "float32") for w, g in zip(decoder.trainable_variables, grads)}
    ordered = [w for _, own in _leaf_weights(decoder) for w in own]
    flat = [by_id.get(id(w)) for w in ordered]
    k = 0
    for layer in data.layers:
        layer.grads = flat[k:k + len(layer.weights)]
        k += len(layer.weights)


def _leaf_weights(decoder: Any) -> list[tuple[str, list[Any]]]:
    """(name, weights) of every leaf layer that owns weights, and of the decoder itself when it
    owns weights outside its layers (a subclassed model's add_weight)."""
    found = []
    for layer in decoder._flatten_layers(include_self=True, recursive=True):
        if layer is decoder:
            inner = {id(v) for sub in decoder._flatten_layers(include_self=False)
                     for v in sub.weights}
            own = [w for w in decoder.weights if id(w) not in inner]
        elif list(layer._flatten_layers(include_self=False, recursive=False)):
            continue  # a container inside the decoder: its weights are its sublayers'
        else:
            own = list(layer.weights)
        if own:
            found.append((layer.name, own))
    return found


def _record_composition(decoder: Any, encoder: Any, latent_dim: int, original_dim: int,
                        data: DecoderData) -> None:
    """What `decoder(encoder(inputs))` gives on a symbolic batch of images. Without a usable
    `encoder` (the encoder cells failed, say, because another exercise is unanswered), the
    grader's stand-in is used: a Dense layer to `latent_dim`, the shape of the TP encoder's z,
    so that the decoder's points never depend on another exercise."""
    import keras

    if not _is_layer(encoder):
        encoder = keras.Sequential([keras.Input((original_dim,)),
                                    keras.layers.Dense(int(latent_dim))], name="grader_encoder")
    try:
        outputs = decoder(encoder(keras.Input(shape=(original_dim,))))
        data.composition_shape = tuple(None if d is None else int(d) for d in outputs.shape)
    except Exception as err:  # noqa: BLE001
        data.composition_error = f"{type(err).__name__}: {first_line(err)}"


# --------------------------------------------------------------------------------------------
# The .npz record: no pickle, bounded, validated
# --------------------------------------------------------------------------------------------


def to_bytes(data: DecoderData) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for i, layer in enumerate(data.layers):
        for j, w in enumerate(layer.weights):
            arrays[f"w{i}_{j}"] = np.asarray(w, "float32")
        for j, g in enumerate(layer.grads):
            if g is not None:
                arrays[f"g{i}_{j}"] = np.asarray(g, "float32")
        layers.append({"name": layer.name, "trainable": layer.trainable,
                       "n": len(layer.weights),
                       "grads": [g is not None for g in layer.grads]})
    if data.y is not None:
        arrays["y"] = np.asarray(data.y, "float32")
    meta = {
        "format": FORMAT, "kind": data.kind, "type_name": data.type_name,
        "declared_input": data.declared_input, "n_inputs": data.n_inputs, "layers": layers,
        "n_params": data.n_params, "build_error": data.build_error, "seed": data.seed,
        "z_dim": None if data.z is None else int(data.z.shape[1]),
        "call_error": data.call_error, "grad_error": data.grad_error,
        "composition_shape": data.composition_shape, "composition_error": data.composition_error,
    }
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta)), **arrays)
    return buffer.getvalue()


def _text(meta: dict, key: str) -> str:
    value = meta.get(key, "")
    if not isinstance(value, str):
        raise DataError(f"{key} is not text")
    return value[:500]


def _shape(value: Any) -> tuple[int | None, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > 8 or not all(
            v is None or (isinstance(v, int) and 0 <= v < 2**31) for v in value):
        raise DataError("a shape is not a list of sizes")
    return tuple(value)


def from_bytes(blob: bytes) -> DecoderData:
    """Parse a record made by `to_bytes`; raise DataError for anything else."""
    if len(blob) > MAX_BYTES:
        raise DataError(f"the record is larger than {MAX_BYTES // 2**20} MB")
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
        infos = archive.infolist()
    except zipfile.BadZipFile as err:
        raise DataError("not an .npz archive") from err
    if len(infos) > MAX_ARRAYS or sum(i.file_size for i in infos) > MAX_BYTES:
        raise DataError("too many or too large arrays")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except Exception as err:  # noqa: BLE001 - any parse failure is a broken record
        raise DataError(f"unreadable arrays ({type(err).__name__})") from err
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, ValueError) as err:
        raise DataError("no readable metadata") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError("not a decoder record of this version")
    for name, array in arrays.items():
        if array.dtype != np.float32 or array.size > MAX_ELEMENTS or array.ndim > 4:
            raise DataError(f"array {name!r} is not a float32 array of a sane size")
        if not np.all(np.isfinite(array)) and name != "y":
            raise DataError(f"array {name!r} holds NaN or infinity")
    kind = _text(meta, "kind")
    if kind not in ("missing", "not a model", "model"):
        raise DataError("unknown kind")
    data = DecoderData(kind, type_name=_text(meta, "type_name"),
                       declared_input=_shape(meta.get("declared_input")),
                       build_error=_text(meta, "build_error"), call_error=_text(meta, "call_error"),
                       grad_error=_text(meta, "grad_error"),
                       composition_shape=_shape(meta.get("composition_shape")),
                       composition_error=_text(meta, "composition_error"))
    for key in ("n_inputs", "n_params", "seed"):
        value = meta.get(key)
        if not isinstance(value, int) or not 0 <= value < 2**40:
            raise DataError(f"{key} is not a count")
        setattr(data, key, value)
    layers = meta.get("layers")
    if not isinstance(layers, list) or len(layers) > MAX_ARRAYS:
        raise DataError("layers is not a list")
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("n"), int):
            raise DataError("a layer is not described")
        n = layer["n"]
        trainable, has_grads = layer.get("trainable"), layer.get("grads", [])
        if not (isinstance(trainable, list) and len(trainable) == n
                and all(isinstance(t, bool) for t in trainable)
                and isinstance(has_grads, list) and len(has_grads) in (0, n)):
            raise DataError("a layer's flags do not match its weights")
        try:
            weights = [arrays[f"w{i}_{j}"] for j in range(n)]
            grads = [arrays[f"g{i}_{j}"] if has else None for j, has in enumerate(has_grads)]
        except KeyError as err:
            raise DataError("a weight or gradient is missing") from err
        for w, g in zip(weights, grads):
            if g is not None and g.shape != w.shape:
                raise DataError("a gradient does not have its weight's shape")
        data.layers.append(LayerData(_text(layer, "name"), weights, trainable, grads))
    z_dim = meta.get("z_dim")
    if z_dim is not None:
        if not isinstance(z_dim, int) or not 0 < z_dim <= 4096:
            raise DataError("z_dim is not a size")
        data.z = probe_latents(data.seed, z_dim)  # regenerated here, never taken from the record
    if "y" in arrays:
        data.y = arrays["y"]
    return data
