"""The convolutional VAE, an open exercise: `conv_encoder` and `conv_decoder`, built freely.

    conv_encoder(images (batch, 28, 28, 1))  -> [z_mean, z_log_var, z], each (batch, latent_dim)
    conv_decoder(z (batch, latent_dim))      -> images (batch, 28, 28, 1), pixels in (0, 1)

with at least one Conv2D or Conv2DTranspose (nested models and Sequential allowed) and at most
`conv_budget` parameters in the two models together.

The probe (`extract_conv_vae`, kernel side) writes each model as a *program*
(`describe_model`: its layers, limited to the classes in `KNOWN`, with the part of their config
the judge reads, how they are connected, and the shapes of their weights), sets the grader's
secret weights (`grader_weights`, drawn from the probe's seed) into every layer that holds
weights, calls both models on inputs chosen from the seed (`conv_inputs`: 5 uniform images,
5 latent vectors drawn from N(0, 9) to reach far), the encoder twice, and puts the student's
weights back. The judge runs the programs in NumPy with the same secret weights
(`run_program`: Dense, Conv2D, Conv2DTranspose, pooling, ...) and accepts the record only when
the recorded outputs are the programs' outputs: z_mean and z_log_var to float32 precision, z
as z_mean + sigma * epsilon with a plausible epsilon. So the parameter count, the convolutions
and the outputs it judges are those of a model that computes what the record shows, not
numbers the kernel asserts. The `check_*` functions take the live models (the student's check
cell) or the record (the judge), and raise `AnswerMismatch` with the mistake in plain words:
flat inputs or outputs, an encoder that returns only z, no convolution, too many parameters (and
which layer holds them), a decoder without its sigmoid, a z that is not sampled.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from vaetp import calls
from vaetp.calls import AnswerMismatch, CallRecord

EXERCISE = "conv_vae"
CELL = "the exercise cell of section 18"
N = 5
IMAGE = (28, 28, 1)
ENCODER_OUTPUTS = ("z_mean", "z_log_var", "z")
MAX_OUTPUTS = 8
MAX_LAYERS = 200
NOT_A_MODEL = "not a model"
ROLES = {"encoder": "conv_encoder", "decoder": "conv_decoder"}


def conv_inputs(seed: int, latent_dim: int) -> dict[str, np.ndarray]:
    """The grader's batches: 5 images uniform in [0, 1], and 5 latent vectors from N(0, 9)."""
    rng = np.random.default_rng([seed, 20])
    return {"images": rng.uniform(0, 1, (N, *IMAGE)).astype("float32"),
            "latents": rng.normal(0, 3, (N, int(latent_dim))).astype("float32")}


# --------------------------------------------------------------------------------------------
# The models as programs: a small description the kernel writes, which the judge runs in NumPy
# with the grader's secret weights (so the outputs, the parameters and the convolutions it
# counts are those of a model that really computes what the record shows)
# --------------------------------------------------------------------------------------------

#: The layers the judge can run, and the part of their config it reads.
KNOWN = {
    "InputLayer": (), "Dropout": (), "SpatialDropout2D": (), "Sampling": (),
    "GaussianNoise": ("stddev",),
    "Dense": ("units", "activation", "use_bias"),
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "activation", "use_bias",
               "dilation_rate", "groups", "data_format"),
    "Conv2DTranspose": ("filters", "kernel_size", "strides", "padding", "activation", "use_bias",
                        "dilation_rate", "output_padding", "data_format"),
    "Flatten": ("data_format",), "Reshape": ("target_shape",), "Activation": ("activation",),
    "ReLU": ("max_value", "negative_slope", "threshold"), "LeakyReLU": ("negative_slope",),
    "MaxPooling2D": ("pool_size", "strides", "padding", "data_format"),
    "AveragePooling2D": ("pool_size", "strides", "padding", "data_format"),
    "UpSampling2D": ("size", "interpolation", "data_format"),
    "BatchNormalization": ("axis", "epsilon", "center", "scale"),
}
CONVOLUTIONS = ("Conv2D", "Conv2DTranspose")
MAX_PROGRAM = 300


class Unsupported(ValueError):
    """A model the judge cannot run: a layer outside `KNOWN`, or a use of one it does not know."""


def _json(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return str(value.get("class_name", "?"))[:40]
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)[:40]


def _tensors(args: Any) -> list[list[Any]]:
    """The [layer, node, tensor] references in a layer call's serialized arguments."""
    if isinstance(args, dict):
        if args.get("class_name") == "__keras_tensor__":
            return [list(args["config"]["keras_history"])]
        return [t for v in args.values() for t in _tensors(v)]
    if isinstance(args, (list, tuple)):
        return [t for v in args for t in _tensors(v)]
    return []


def Functional() -> type:  # noqa: N802 - the class, imported late (kernel side only)
    try:
        from keras.src.models.functional import Functional as found
    except ImportError:  # another Keras: a model without a graph fails in get_config
        from keras import Model as found
    return found


def describe_model(model: Any, leaves: list[Any] | None = None) -> dict[str, Any]:
    """The program of a Keras model (kernel side). `leaves` collects the layers holding weights,
    in the order the judge numbers them."""
    import keras

    leaves = [] if leaves is None else leaves
    if not isinstance(model, (keras.Sequential, Functional())):
        raise Unsupported(f"a {type(model).__name__} model (subclassed); build it with "
                          "keras.Model(inputs, outputs) or keras.Sequential")
    config = model.get_config()
    by_name = {layer.name: layer for layer in model.layers}
    steps = []
    for entry in config["layers"]:
        name = entry.get("name") or entry["config"].get("name")
        step: dict[str, Any] = {"name": str(name)[:80], "class": "InputLayer"}
        layer = by_name.get(name)
        if entry.get("class_name") == "InputLayer":
            pass
        elif layer is None:
            raise Unsupported(f"a layer {name!r} the grader cannot find")
        elif isinstance(layer, keras.Model):
            step["class"] = "Sequential" if isinstance(layer, keras.Sequential) else "Functional"
            step["model"] = describe_model(layer, leaves)
        else:
            step["class"] = type(layer).__name__[:80]
            step["args"] = {k: _json(entry["config"].get(k)) for k in KNOWN.get(step["class"], ())}
            weights = layer.get_weights()
            if weights:
                step["weights"] = [list(w.shape) for w in weights]
                step["leaf"] = len(leaves)
                leaves.append(layer)
        if "inbound_nodes" in entry:
            step["calls"] = [_tensors(node.get("args", [])) for node in entry["inbound_nodes"]]
        steps.append(step)
        if len(leaves) > MAX_PROGRAM or len(steps) > MAX_PROGRAM:
            raise Unsupported("more layers than the grader reads")
    program: dict[str, Any] = {"kind": "sequential" if isinstance(model, keras.Sequential) else
                               "functional", "steps": steps}
    if program["kind"] == "functional":
        program["inputs"] = _refs(config.get("input_layers"))
        program["outputs"] = _refs(config.get("output_layers"))
        program["single_output"] = bool(config.get("output_layers")) and \
            not isinstance(config["output_layers"][0], (list, tuple))
    return program


def _refs(found: Any) -> list[list[Any]]:
    if not found:
        return []
    return [list(found)] if not isinstance(found[0], (list, tuple)) else [list(r) for r in found]


def grader_weights(seed: int, leaf: int, shapes: list[list[int]], kind: str) -> list[np.ndarray]:
    """The secret weights of the `leaf`-th layer holding weights (kernel: scaled normal)."""
    rng = np.random.default_rng([int(seed), 20, 1, int(leaf)])
    found = []
    for i, shape in enumerate(shapes):
        shape = tuple(int(n) for n in shape)
        if not shape or any(n <= 0 for n in shape) or math.prod(shape) > 4 * 2**20:
            raise Unsupported("a weight of a shape the grader does not read")
        if kind == "BatchNormalization":  # gamma, beta, moving mean, moving variance
            low, high = [(0.5, 1.5), (-0.3, 0.3), (-0.3, 0.3), (0.5, 2.0)][min(i, 3)]
            found.append(rng.uniform(low, high, shape))
        elif len(shape) == 1:
            found.append(rng.normal(0, 0.1, shape))
        else:
            fan_in = math.prod(shape[:-1]) if kind != "Conv2DTranspose" else \
                shape[0] * shape[1] * shape[3]
            found.append(rng.normal(0, 1.2 / math.sqrt(max(fan_in, 1)), shape))
    return [w.astype("float32") for w in found]


def set_grader_weights(leaves: list[Any], program_weights: list[tuple[list, str]],
                       seed: int) -> None:
    for leaf, (layer, (shapes, kind)) in enumerate(zip(leaves, program_weights)):
        layer.set_weights(grader_weights(seed, leaf, shapes, kind))


def program_leaves(program: dict[str, Any]) -> list[tuple[list, str]]:
    found = []
    for step in program.get("steps", []):
        if "model" in step:
            found += program_leaves(step["model"])
        elif "weights" in step:
            found.append((step["weights"], step["class"]))
    return found


_ACTIVATIONS = {
    "linear": lambda x: x, None: lambda x: x, "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-np.clip(x, -500, 500))), "tanh": np.tanh,
    "softplus": lambda x: np.logaddexp(0, x), "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "silu": lambda x: x / (1 + np.exp(-np.clip(x, -500, 500))),
    "swish": lambda x: x / (1 + np.exp(-np.clip(x, -500, 500))),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
}


def _activation(name: Any) -> Callable[[np.ndarray], np.ndarray]:
    if name not in _ACTIVATIONS:
        raise Unsupported(f"the activation {name!r}")
    return _ACTIVATIONS[name]


def _pair(value: Any) -> tuple[int, int]:
    value = value if isinstance(value, (list, tuple)) else [value, value]
    return int(value[0]), int(value[1])


def _same_padding(size: int, k: int, s: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def conv2d(x: np.ndarray, kernel: np.ndarray, strides: tuple[int, int], padding: str) -> np.ndarray:
    """Keras' Conv2D (channels last, no dilation): x (n, h, w, c), kernel (kh, kw, c, f)."""
    kh, kw = kernel.shape[:2]
    if padding == "same":
        (t, b), (left, r) = _same_padding(x.shape[1], kh, strides[0]), _same_padding(x.shape[2], kw, strides[1])
        x = np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)))
    elif padding != "valid":
        raise Unsupported(f"padding {padding!r}")
    oh, ow = (x.shape[1] - kh) // strides[0] + 1, (x.shape[2] - kw) // strides[1] + 1
    if oh <= 0 or ow <= 0:
        raise Unsupported("a convolution larger than its input")
    out = np.zeros((x.shape[0], oh, ow, kernel.shape[3]))
    for a in range(kh):
        for b in range(kw):
            patch = x[:, a:a + strides[0] * (oh - 1) + 1:strides[0], b:b + strides[1] * (ow - 1) + 1:strides[1]]
            out += patch @ kernel[a, b]
    return out


def conv2d_transpose(x: np.ndarray, kernel: np.ndarray, strides: tuple[int, int], padding: str,
                     output_padding: Any = None) -> np.ndarray:
    """Keras' Conv2DTranspose (channels last): x (n, h, w, c), kernel (kh, kw, f, c)."""
    if output_padding is not None:
        raise Unsupported("output_padding")
    kh, kw = kernel.shape[:2]
    (sh, sw), (n, h, w, _) = strides, x.shape
    full = np.zeros((n, (h - 1) * sh + kh, (w - 1) * sw + kw, kernel.shape[2]))
    for a in range(kh):
        for b in range(kw):
            full[:, a:a + sh * (h - 1) + 1:sh, b:b + sw * (w - 1) + 1:sw] += x @ kernel[a, b].T
    if padding == "same":
        oh, ow = h * sh, w * sw
        top, left = max(kh - sh, 0) // 2, max(kw - sw, 0) // 2
    elif padding == "valid":
        oh, ow = h * sh + max(kh - sh, 0), w * sw + max(kw - sw, 0)
        top = left = 0
    else:
        raise Unsupported(f"padding {padding!r}")
    grown = np.zeros((n, max(full.shape[1], top + oh), max(full.shape[2], left + ow), full.shape[3]))
    grown[:, :full.shape[1], :full.shape[2]] = full
    return grown[:, top:top + oh, left:left + ow]


def _pool(x: np.ndarray, args: dict[str, Any], how: Callable[..., np.ndarray]) -> np.ndarray:
    ph, pw = _pair(args.get("pool_size") or 2)
    sh, sw = _pair(args.get("strides") or (ph, pw))
    if args.get("padding", "valid") != "valid":
        raise Unsupported("pooling with padding='same'")
    oh, ow = (x.shape[1] - ph) // sh + 1, (x.shape[2] - pw) // sw + 1
    parts = [x[:, a:a + sh * (oh - 1) + 1:sh, b:b + sw * (ow - 1) + 1:sw]
             for a in range(ph) for b in range(pw)]
    return how(np.stack(parts), axis=0)


class Sample:
    """The output of a Sampling layer: z = mean + exp(log_var / 2) * epsilon, epsilon unknown."""

    def __init__(self, mean: np.ndarray, log_var: np.ndarray):
        self.mean, self.log_var = mean, log_var


def _layer(step: dict[str, Any], inputs: list[Any], weights: list[np.ndarray]) -> Any:
    kind, args = step["class"], step.get("args", {})
    if kind == "Sampling":
        if len(inputs) != 2 or any(isinstance(v, Sample) for v in inputs):
            raise Unsupported("a Sampling layer not called on (z_mean, z_log_var)")
        return Sample(*inputs)
    if kind == "GaussianNoise" and len(inputs) == 1 and not isinstance(inputs[0], Sample):
        pass
    elif len(inputs) != 1 or isinstance(inputs[0], Sample):
        raise Unsupported(f"a {kind} layer on the output of Sampling or on several inputs")
    x = inputs[0]
    if args.get("data_format") not in (None, "channels_last"):
        raise Unsupported("data_format='channels_first'")
    if kind in ("InputLayer", "Dropout", "SpatialDropout2D"):
        return x
    if kind == "GaussianNoise":  # noise without a KL term: a sample, judged as one
        return Sample(x, np.full_like(x, 2 * math.log(max(float(args.get("stddev") or 0), 1e-30))))
    if kind == "Dense":
        y = x @ weights[0] + (weights[1] if args.get("use_bias", True) and len(weights) > 1 else 0)
        return _activation(args.get("activation"))(y)
    if kind in CONVOLUTIONS:
        if _pair(args.get("dilation_rate") or 1) != (1, 1) or int(args.get("groups") or 1) != 1:
            raise Unsupported("dilated or grouped convolutions")
        strides = _pair(args.get("strides") or 1)
        if kind == "Conv2D":
            y = conv2d(x, weights[0], strides, args.get("padding", "valid"))
        else:
            y = conv2d_transpose(x, weights[0], strides, args.get("padding", "valid"),
                                 args.get("output_padding"))
        y = y + (weights[1] if args.get("use_bias", True) and len(weights) > 1 else 0)
        return _activation(args.get("activation"))(y)
    if kind == "Flatten":
        return x.reshape(len(x), -1)
    if kind == "Reshape":
        return x.reshape(len(x), *[int(n) for n in args["target_shape"]])
    if kind == "Activation":
        return _activation(args.get("activation"))(x)
    if kind == "ReLU":
        if args.get("threshold") not in (None, 0, 0.0):
            raise Unsupported("ReLU with a threshold")
        slope = float(args.get("negative_slope") or 0)
        y = np.where(x > 0, x, slope * x)
        return y if args.get("max_value") is None else np.minimum(y, float(args["max_value"]))
    if kind == "LeakyReLU":
        slope = args.get("negative_slope")
        return np.where(x > 0, x, (0.3 if slope is None else float(slope)) * x)
    if kind == "MaxPooling2D":
        return _pool(x, args, np.max)
    if kind == "AveragePooling2D":
        return _pool(x, args, np.mean)
    if kind == "UpSampling2D":
        if args.get("interpolation", "nearest") != "nearest":
            raise Unsupported("UpSampling2D other than nearest")
        sh, sw = _pair(args.get("size") or 2)
        return x.repeat(sh, axis=1).repeat(sw, axis=2)
    if kind == "BatchNormalization":
        if args.get("axis", -1) not in (-1, [-1], x.ndim - 1, [x.ndim - 1]):
            raise Unsupported("BatchNormalization on another axis than the last")
        w = list(weights)
        gamma = w.pop(0) if args.get("scale", True) else 1.0
        beta = w.pop(0) if args.get("center", True) else 0.0
        mean, var = w
        return (x - mean) / np.sqrt(var + float(args.get("epsilon") or 1e-3)) * gamma + beta
    raise Unsupported(f"a {kind} layer")


def run_program(program: dict[str, Any], inputs: list[Any], seed: int) -> list[Any]:
    """The model's outputs on `inputs`, computed in NumPy with the grader's secret weights."""

    def apply(step: dict[str, Any], values: list[Any]) -> list[Any]:
        if "model" in step:
            return run_program(step["model"], values, seed)
        weights = []
        if "weights" in step:
            weights = [w.astype("float64") for w in
                       grader_weights(seed, int(step.get("leaf", -1)), step["weights"],
                                      step["class"])]
        return [_layer(step, values, weights)]

    steps = program.get("steps", [])
    if program.get("kind") == "sequential":
        values = list(inputs)
        for step in steps:
            if step["class"] != "InputLayer":
                values = apply(step, values)
        return values
    known: dict[tuple[str, int, int], Any] = {}
    for (name, node, tensor), value in zip(program.get("inputs", []), inputs):
        known[(str(name), int(node), int(tensor))] = value
    for step in steps:
        if step["class"] == "InputLayer":
            continue
        for node, refs in enumerate(step.get("calls", [])):
            try:
                values = [known[(str(n), int(i), int(t))] for n, i, t in refs]
            except (KeyError, TypeError, ValueError) as err:
                raise Unsupported("a layer called on a tensor the grader cannot follow") from err
            for tensor, value in enumerate(apply(step, values)):
                known[(step["name"], node, tensor)] = value
    try:
        outputs = [known[(str(n), int(i), int(t))] for n, i, t in program.get("outputs", [])]
    except (KeyError, TypeError, ValueError) as err:
        raise Unsupported("an output the grader cannot follow") from err
    unused = _unused_steps(program)
    if unused:  # a Keras model holds only the layers its outputs need: this program was edited
        raise Unsupported(f"a layer its outputs never use ({unused[0]})")
    return outputs


def _unused_steps(program: dict[str, Any]) -> list[str]:
    """The names of a functional program's layers that no output depends on."""
    steps = {str(step.get("name")): step for step in program.get("steps", [])}
    used: set[str] = set()
    todo = [str(ref[0]) for ref in program.get("outputs", []) if ref]
    while todo:
        name = todo.pop()
        if name in used:
            continue
        used.add(name)
        for refs in steps.get(name, {}).get("calls", []) or []:
            todo += [str(ref[0]) for ref in refs if ref]
    return [name for name, step in steps.items()
            if step.get("class") != "InputLayer" and name not in used]


def program_parameters(program: dict[str, Any]) -> list[tuple[int, str, int]]:
    """(parameters, class, number of dimensions of the first weight) of each leaf layer."""
    found = []
    for step in program.get("steps", []):
        if "model" in step:
            found += program_parameters(step["model"])
        elif "weights" in step:
            shapes = step["weights"]
            found.append((sum(math.prod(int(n) for n in s) for s in shapes), step["class"],
                          len(shapes[0]) if shapes else 0))
    return found


# --------------------------------------------------------------------------------------------
# The probe (kernel side: runs student code, needs Keras)
# --------------------------------------------------------------------------------------------

def _error(err: BaseException) -> str:
    return f"{type(err).__name__}: {calls.first_line(err)}"


def _record_outputs(record: CallRecord, name: str, model: Any, x: np.ndarray) -> int:
    """Call `model` once; keep each output as `name[i]` (or the error as `name`). Returns the
    number of outputs, 0 on error."""
    from keras import ops

    try:
        out = model(ops.convert_to_tensor(x))
    except Exception as err:  # noqa: BLE001 - student code
        record.calls[name] = calls.Call(error=_error(err))
        return 0
    parts = list(out.values()) if isinstance(out, dict) else out
    parts = list(parts) if isinstance(parts, (list, tuple)) else [parts]
    for i, part in enumerate(parts[:MAX_OUTPUTS]):
        record.calls[f"{name}[{i}]"] = calls.run(lambda p=part: p)
    return len(parts)


def extract_conv_vae(conv_encoder: Any, conv_decoder: Any, latent_dim: int,
                     seed: int = 0) -> CallRecord:
    """Record both models, with the grader's weights, on `conv_inputs(seed, latent_dim)` (runs
    student code: kernel side)."""
    record = CallRecord(EXERCISE, seed=seed)
    inputs = conv_inputs(seed, latent_dim)
    import keras

    for role, model in (("encoder", conv_encoder), ("decoder", conv_decoder)):
        facts: dict[str, Any] = {"status": calls.OK, "type": type(model).__name__[:80]}
        record.facts[role] = facts
        if model is None:
            facts["status"] = calls.MISSING
            continue
        if not isinstance(model, keras.layers.Layer):
            facts["status"] = NOT_A_MODEL
            continue
        leaves: list[Any] = []
        saved = None
        try:
            if not model.built:  # an unbuilt Sequential: its weights exist after a first call
                calls.run(model, keras.ops.convert_to_tensor(
                    inputs["images" if role == "encoder" else "latents"]))
            facts["program"] = describe_model(model, leaves)
            saved = [layer.get_weights() for layer in leaves]
            set_grader_weights(leaves, program_leaves(facts["program"]), seed)
        except Exception as err:  # noqa: BLE001 - the checks say why the grader cannot run it
            facts["program_error"] = calls.first_line(err)[:300]
            facts.pop("program", None)
        try:
            if role == "encoder":
                facts["outputs"] = _record_outputs(record, "encoder", model, inputs["images"])
                try:  # the losses the call added: the KL term of the Sampling layer
                    facts["losses"] = len(model.losses)
                except Exception:  # noqa: BLE001
                    facts["losses"] = None
                if facts["outputs"]:
                    _record_outputs(record, "encoder_again", model, inputs["images"])
                else:  # does it take flat vectors instead?
                    flat = _record_outputs(record, "encoder_flat", model,
                                           inputs["images"].reshape(N, -1))
                    facts["flat_input"] = flat > 0
            else:
                record.calls["decoder"] = calls.run(model,
                                                    keras.ops.convert_to_tensor(inputs["latents"]))
        finally:
            if saved is not None:
                for layer, weights in zip(leaves, saved):
                    layer.set_weights(weights)
    return record


# --------------------------------------------------------------------------------------------
# The checks (judge side: NumPy only)
# --------------------------------------------------------------------------------------------

def _record(conv_encoder: Any, conv_decoder: Any, latent_dim: int) -> CallRecord:
    for obj in (conv_encoder, conv_decoder):
        if isinstance(obj, CallRecord):
            return obj
    with calls.keeping_random_state(conv_encoder, conv_decoder):
        return extract_conv_vae(conv_encoder, conv_decoder, latent_dim)


def _models(record: CallRecord) -> dict[str, dict[str, Any]]:
    """Each model's facts, failing in plain words when one is missing or not a model."""
    found = {}
    for role, name in ROLES.items():
        facts = record.facts.get(role)
        facts = facts if isinstance(facts, dict) else {}
        status = facts.get("status", calls.MISSING)
        if status == calls.MISSING:
            raise AnswerMismatch(f"there is no `{name}`: build it in {CELL} and run that cell.")
        if status != calls.OK:
            raise AnswerMismatch(f"`{name}` is not a Keras model (it is a {facts.get('type')}): "
                                 f"build it with keras.Model(inputs, outputs) in {CELL}.")
        found[role] = facts
    return found


def _encoder_outputs(record: CallRecord, latent_dim: int,
                     call: str = "encoder") -> list[np.ndarray]:
    """The encoder's three outputs, each (5, latent_dim), or a plain failure."""
    facts = _models(record)["encoder"]
    count, d = int(facts.get("outputs") or 0), int(latent_dim)
    if count == 0:
        if facts.get("flat_input"):
            raise AnswerMismatch("conv_encoder takes flat vectors of 784 pixels; the encoder must "
                                 "take images of shape (28, 28, 1): use keras.Input((28, 28, 1)) "
                                 "and reshape x_train with x.reshape(-1, 28, 28, 1).")
        raise AnswerMismatch(f"conv_encoder raised {record.call(call).error} on a batch of "
                             f"{N} images of shape {IMAGE}.")
    outputs = [calls.output_of(record, f"{call}[{i}]", f"conv_encoder's output {i}")
               for i in range(min(count, MAX_OUTPUTS))]
    if count != 3:
        shapes = ", ".join(str(o.shape) for o in outputs)
        what = "one array" if count == 1 else f"{count} arrays"
        raise AnswerMismatch(f"conv_encoder returns {what} ({shapes}); it must return three, "
                             "[z_mean, z_log_var, z]: keras.Model(inputs, [z_mean, z_log_var, z]).")
    for name, out in zip(ENCODER_OUTPUTS, outputs):
        if out.shape == (N, d):
            continue
        if out.ndim == 2 and out.shape[0] == N:
            raise AnswerMismatch(f"conv_encoder's {name} has {out.shape[1]} coordinates per image, "
                                 f"not latent_dim = {d}: its Dense layer needs {d} units.")
        raise AnswerMismatch(f"conv_encoder's {name} has shape {out.shape} for {N} images; "
                             f"expected ({N}, {d}): Flatten the feature maps before the Dense "
                             "layers that give z_mean and z_log_var.")
    return outputs


def _decoder_output(record: CallRecord, latent_dim: int) -> np.ndarray:
    _models(record)
    out = calls.output_of(record, "decoder",
                          f"conv_decoder on {N} latent vectors of shape ({N}, {int(latent_dim)})")
    if out.shape == (N, *IMAGE):
        return out
    if out.shape == (N, 784):
        raise AnswerMismatch("conv_decoder returns flat vectors of 784 pixels; it must return "
                             "images of shape (28, 28, 1): end it with layers.Reshape((28, 28, 1)) "
                             "or a Conv2DTranspose with 1 filter.")
    if out.shape == (N, 28, 28):
        raise AnswerMismatch("conv_decoder returns images of shape (28, 28) without the channel "
                             "axis; return (28, 28, 1): use layers.Reshape((28, 28, 1)).")
    if out.shape[:3] == (N, 28, 28) and out.ndim == 4:
        raise AnswerMismatch(f"conv_decoder returns {out.shape[3]} channels per pixel; MNIST has "
                             "one: the last Conv2DTranspose (or Conv2D) needs 1 filter.")
    raise AnswerMismatch(f"conv_decoder returns shape {out.shape} for {N} latent vectors; "
                         f"expected ({N}, 28, 28, 1).")


def _program(record: CallRecord, role: str) -> dict[str, Any]:
    facts = _models(record)[role]
    program = facts.get("program")
    if not isinstance(program, dict):
        raise AnswerMismatch(
            f"the grader cannot read {ROLES[role]} ({facts.get('program_error') or 'no record'}): "
            f"build it with keras.Model(inputs, outputs) or keras.Sequential, from Keras layers "
            f"it knows ({', '.join(sorted(k for k in KNOWN if k != 'InputLayer'))}).")
    return program


def _judged(record: CallRecord, role: str, latent_dim: int) -> list[Any]:
    """The model's outputs on the grader's inputs, computed by the judge with its own weights."""
    program = _program(record, role)
    x = conv_inputs(record.seed, latent_dim)["images" if role == "encoder" else "latents"]
    try:
        return run_program(program, [x.astype("float64")], record.seed)
    except Unsupported as err:
        raise AnswerMismatch(
            f"the grader cannot run {ROLES[role]}: it uses {err}. Build it from Keras layers it "
            f"knows ({', '.join(sorted(k for k in KNOWN if k != 'InputLayer'))}).") from err
    except Exception as err:  # noqa: BLE001 - a program that does not run (a forged one)
        raise AnswerMismatch(f"the grader cannot run {ROLES[role]} as recorded "
                             f"({type(err).__name__}): run its cell again.") from err


def _close(found: np.ndarray, want: np.ndarray) -> bool:
    return found.shape == want.shape and bool(np.all(np.isfinite(found))) and bool(
        np.allclose(found, want, rtol=1e-3, atol=1e-4 * max(1.0, float(np.abs(want).max()))))


def _epsilon(z: np.ndarray, sample: Sample) -> np.ndarray | None:
    """epsilon = (z - mean) / sigma of a sampled output, or None if z has another shape."""
    if z.shape != sample.mean.shape:
        return None
    with np.errstate(all="ignore"):
        return (z - sample.mean) / np.exp(0.5 * sample.log_var)


def _sampled_from(found: np.ndarray, sample: Sample) -> bool:
    """Whether `found` can be the sample z = mean + sigma * epsilon of the judged `sample`:
    every epsilon within 7, and spread as a N(0, 1) draw is (a sigma made huge by a forged
    program would make every epsilon near 0)."""
    eps = _epsilon(found, sample)
    return eps is not None and bool(np.all(np.abs(eps) < 7)) and float(np.std(eps)) > 0.05


def _differ(role: str) -> AnswerMismatch:
    return AnswerMismatch(
        f"{ROLES[role]}'s outputs are not what its layers compute (the grader recomputes them "
        "with weights of its own): use Keras' layers as they are, no custom layer or change "
        "after the model is built.")


def _verified(record: CallRecord, latent_dim: int) -> dict[str, list[Any]]:
    """Each model's judged outputs, after checking that the recorded ones are theirs: every
    deterministic output to float32 precision, every sampled one as mean + sigma * epsilon with
    |epsilon| < 7 (a proof that the record holds the models' own outputs on the grader's inputs)."""
    judged = {role: _judged(record, role, latent_dim) for role in ROLES}
    facts = _models(record)["encoder"]
    count = int(facts.get("outputs") or 0)
    if count != len(judged["encoder"]):
        raise _differ("encoder")
    for call in ("encoder", "encoder_again"):
        for i, want in enumerate(judged["encoder"][:MAX_OUTPUTS]):
            found = calls.output_of(record, f"{call}[{i}]", f"conv_encoder's output {i}")
            if isinstance(want, Sample):
                if not _sampled_from(found, want):
                    raise _differ("encoder")
            elif not _close(found, want):
                raise _differ("encoder")
    decoded = judged["decoder"]
    if len(decoded) != 1 or isinstance(decoded[0], Sample) or not _close(
            calls.output_of(record, "decoder", "conv_decoder"), decoded[0]):
        raise _differ("decoder")
    if not any(not isinstance(v, Sample) for v in judged["encoder"]):
        raise AnswerMismatch("conv_encoder returns only sampled values: return "
                             "[z_mean, z_log_var, z], keras.Model(inputs, [z_mean, z_log_var, z]).")
    return judged


def check_conv_shapes(conv_encoder: Any, conv_decoder: Any, latent_dim: int) -> None:
    """The encoder maps 5 images (28, 28, 1) to three (5, latent_dim) arrays; the decoder maps
    5 latent vectors to 5 images (28, 28, 1); both are the outputs of the models' layers."""
    record = _record(conv_encoder, conv_decoder, latent_dim)
    _encoder_outputs(record, latent_dim)
    _decoder_output(record, latent_dim)
    _verified(record, latent_dim)


def check_conv_budget(conv_encoder: Any, conv_decoder: Any, latent_dim: int,
                      conv_budget: int) -> None:
    """At least one Conv2D or Conv2DTranspose (a 4-D kernel), and at most `conv_budget`
    parameters in all, counted from the weights of the models the judge ran."""
    record = _record(conv_encoder, conv_decoder, latent_dim)
    layers = {role: program_parameters(_program(record, role)) for role in ROLES}
    if not any(kind in CONVOLUTIONS and dims == 4 for found in layers.values()
               for _, kind, dims in found):
        names = sorted({step for role in ROLES for step in _classes(_program(record, role))})
        raise AnswerMismatch(f"neither model has a convolution (their layers: {', '.join(names)}): "
                             "use layers.Conv2D in the encoder or layers.Conv2DTranspose in "
                             "the decoder.")
    counts = {role: sum(p for p, _, _ in found) for role, found in layers.items()}
    total = sum(counts.values())
    if total > int(conv_budget):
        count, name, role = max((p, kind, ROLES[r]) for r, found in layers.items()
                                for p, kind, _ in found)
        raise AnswerMismatch(
            f"the two models have {total:,} parameters (encoder {counts['encoder']:,}, decoder "
            f"{counts['decoder']:,}), over the budget of {int(conv_budget):,}. The largest layer "
            f"is a {name} in {role}, with {count:,}. The usual fix: fewer units in the Dense layer "
            "right after Flatten (or before Reshape), or more stride (strides=2) so that the "
            "feature maps it sees are smaller.")
    _verified_any_shape(record, latent_dim)


def _classes(program: dict[str, Any]) -> list[str]:
    found = []
    for step in program.get("steps", []):
        if "model" in step:
            found += _classes(step["model"])
        elif step.get("class") != "InputLayer":
            found.append(str(step.get("class")))
    return found


def _verified_any_shape(record: CallRecord, latent_dim: int) -> None:
    """`_verified`, for a check that does not judge the outputs' shapes: a mistake of shape
    costs the shapes check only, but the record must still be the models' own outputs."""
    try:
        _encoder_outputs(record, latent_dim)
        _decoder_output(record, latent_dim)
    except AnswerMismatch:
        judged = {role: _judged(record, role, latent_dim) for role in ROLES}
        decoded = judged["decoder"]
        found = record.call("decoder")
        if not (found.ok and len(decoded) == 1 and not isinstance(decoded[0], Sample)
                and _close(np.asarray(found.output, "float64"), decoded[0])):
            raise _differ("decoder") from None
        # each model's own outputs prove its program: the encoder's too, or its program (and
        # the layers counted from it) could be made up beside a real decoder
        recorded = [(record.call(f"encoder[{i}]"), want)
                    for i, want in enumerate(judged["encoder"][:MAX_OUTPUTS])]
        if not recorded or not all(
                got.ok and (_sampled_from(np.asarray(got.output, "float64"), want)
                            if isinstance(want, Sample)
                            else _close(np.asarray(got.output, "float64"), want))
                for got, want in recorded):
            raise _differ("encoder") from None
        return
    _verified(record, latent_dim)


def check_conv_outputs_are_probabilities(conv_encoder: Any, conv_decoder: Any,
                                         latent_dim: int) -> None:
    """Hidden: decoded pixels are finite and within [0, 1] even for latent vectors far from the
    origin; the encoder's z is sampled (it differs from z_mean and between two calls) while
    z_mean is the same on both calls; z is drawn from the z_mean and z_log_var the encoder
    returns, in that order; the encoder adds a loss (the KL of `Sampling`)."""
    record = _record(conv_encoder, conv_decoder, latent_dim)
    _models(record)
    out = calls.output_of(record, "decoder", "conv_decoder")  # any shape: that is another check
    if not np.all(np.isfinite(out)):
        raise AnswerMismatch("conv_decoder returns inf or nan on latent vectors far from the "
                             "origin.")
    if out.min() < 0 or out.max() > 1:
        raise AnswerMismatch(f"conv_decoder returns pixels from {out.min():.3g} to "
                             f"{out.max():.3g}; they are probabilities, within (0, 1): end the "
                             "decoder with activation=\"sigmoid\".")
    try:
        z_mean, _, z = _encoder_outputs(record, latent_dim)
        z_mean_again, _, z_again = _encoder_outputs(record, latent_dim, "encoder_again")
    except AnswerMismatch:
        _verified_any_shape(record, latent_dim)
        return  # wrong outputs cost the shapes check, not this one
    judged = _verified(record, latent_dim)
    sample = judged["encoder"][2]
    if not isinstance(sample, Sample):
        where = [i for i, v in enumerate(judged["encoder"]) if isinstance(v, Sample)]
        if where:
            raise AnswerMismatch(f"conv_encoder returns its sampled z as output {where[0]}: return "
                                 "[z_mean, z_log_var, z], in that order.")
        raise AnswerMismatch("conv_encoder's z equals z_mean: z must be sampled, "
                             "z = Sampling()(z_mean, z_log_var).")
    eps, eps_again = _epsilon(z, sample), _epsilon(z_again, sample)
    if np.allclose(z, z_again, rtol=1e-5, atol=1e-6) or np.allclose(eps, eps_again, atol=1e-3):
        raise AnswerMismatch("conv_encoder's z is the same on two calls on the same images: "
                             "draw new noise on every call, as the Sampling layer does.")
    if record.facts.get("encoder", {}).get("losses") == 0:
        raise AnswerMismatch("conv_encoder adds no KL term to the loss: draw z with the "
                             "notebook's Sampling layer, which adds it.")
    z_mean_judged, z_log_var_judged = judged["encoder"][0], judged["encoder"][1]
    plain = not isinstance(z_mean_judged, Sample) and not isinstance(z_log_var_judged, Sample)
    if not (plain and _close(sample.mean, z_mean_judged)
            and _close(sample.log_var, z_log_var_judged)):
        if plain and _close(sample.mean, z_log_var_judged) and _close(sample.log_var, z_mean_judged):
            raise AnswerMismatch("conv_encoder calls Sampling on (z_log_var, z_mean): call it on "
                                 "(z_mean, z_log_var), in that order; swapped, z is drawn around "
                                 "z_log_var and the KL term is not your encoder's.")
        raise AnswerMismatch("conv_encoder's z is not drawn from the z_mean and z_log_var it "
                             "returns: return [z_mean, z_log_var, Sampling()(z_mean, z_log_var)].")


def check_conv_vae(conv_encoder: Any, conv_decoder: Any, latent_dim: int,
                   conv_budget: int) -> None:
    """The student's check cell: every property the grader checks, in plain words."""
    record = _record(conv_encoder, conv_decoder, latent_dim)
    verdicts = calls.run_verdicts({
        "shapes: images (28, 28, 1) -> [z_mean, z_log_var, z] -> images":
            lambda: check_conv_shapes(record, record, latent_dim),
        f"a convolution, and at most {int(conv_budget):,} parameters":
            lambda: check_conv_budget(record, record, latent_dim, conv_budget),
        "pixels in [0, 1], z sampled, the KL added by the encoder":
            lambda: check_conv_outputs_are_probabilities(record, record, latent_dim),
    })
    calls.print_verdicts("Checking conv_encoder and conv_decoder:", verdicts,
                         "All checks passed: your convolutional VAE has the right shapes, fits the "
                         "budget, outputs probabilities and samples z with the KL term.")
