"""The convolutional VAE, an open exercise: `conv_encoder` and `conv_decoder`, built freely.

    conv_encoder(images (batch, 28, 28, 1))  -> [z_mean, z_log_var, z], each (batch, latent_dim)
    conv_decoder(z (batch, latent_dim))      -> images (batch, 28, 28, 1), pixels in (0, 1)

with at least one Conv2D or Conv2DTranspose (nested models and Sequential allowed) and at most
`conv_budget` parameters in the two models together. The probe (`extract_conv_vae`) calls both
models on inputs chosen from a seed (`conv_inputs`: 5 uniform images, 5 latent vectors drawn
from N(0, 9) to reach far), the encoder twice, and keeps the outputs, the parameter counts and
the classes of all the layers (`vaetp.calls`). The `check_*` functions take the live models
(the student's check cell) or the record (the judge), and raise `AnswerMismatch` with the
mistake in plain words: flat inputs or outputs, an encoder that returns only z, no convolution,
too many parameters (and which layer holds them), a decoder without its sigmoid, a z that is
not sampled.
"""

from __future__ import annotations

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


def _describe(model: Any) -> dict[str, Any]:
    """Parameter count and leaf layers ([class, parameters]) of a model, nested ones included."""
    from keras import layers

    facts: dict[str, Any] = {"params": None, "params_error": "", "layers": [], "convolutions": 0}
    try:
        facts["params"] = int(model.count_params())
    except Exception as err:  # noqa: BLE001
        facts["params_error"] = _error(err)
    try:
        for layer in model._flatten_layers(include_self=False, recursive=True):
            if isinstance(layer, layers.InputLayer) or list(
                    layer._flatten_layers(include_self=False, recursive=False)):
                continue  # containers: their layers are listed themselves
            if isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose)):
                facts["convolutions"] += 1
            if len(facts["layers"]) < MAX_LAYERS:
                try:
                    count = int(layer.count_params())
                except Exception:  # noqa: BLE001 - an unbuilt layer
                    count = 0
                facts["layers"].append([type(layer).__name__[:80], count])
    except Exception as err:  # noqa: BLE001
        facts["params_error"] = facts["params_error"] or _error(err)
    return facts


def extract_conv_vae(conv_encoder: Any, conv_decoder: Any, latent_dim: int,
                     seed: int = 0) -> CallRecord:
    """Record both models on `conv_inputs(seed, latent_dim)` (runs student code: kernel side)."""
    record = CallRecord(EXERCISE, seed=seed)
    record.facts["latent_dim"] = int(latent_dim)
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
        facts.update(_describe(model))
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


def check_conv_shapes(conv_encoder: Any, conv_decoder: Any, latent_dim: int) -> None:
    """The encoder maps 5 images (28, 28, 1) to three (5, latent_dim) arrays; the decoder maps
    5 latent vectors to 5 images (28, 28, 1)."""
    record = _record(conv_encoder, conv_decoder, latent_dim)
    _encoder_outputs(record, latent_dim)
    _decoder_output(record, latent_dim)


def check_conv_budget(conv_encoder: Any, conv_decoder: Any, latent_dim: int,
                      conv_budget: int) -> None:
    """At least one Conv2D or Conv2DTranspose, and at most `conv_budget` parameters in all."""
    record = _record(conv_encoder, conv_decoder, latent_dim)
    models = _models(record)
    if not sum(int(f.get("convolutions") or 0) for f in models.values()):
        names = sorted({str(c) for f in models.values() for c, _ in f.get("layers", [])})
        raise AnswerMismatch(f"neither model has a convolution (their layers: {', '.join(names)}): "
                             "use layers.Conv2D in the encoder or layers.Conv2DTranspose in "
                             "the decoder.")
    counts = {}
    for role, facts in models.items():
        if facts.get("params") is None:
            raise AnswerMismatch(f"the parameters of {ROLES[role]} could not be counted "
                                 f"({facts.get('params_error') or 'unknown error'}).")
        counts[role] = int(facts["params"])
    total = sum(counts.values())
    if total <= int(conv_budget):
        return
    layers = [(int(p), str(c), ROLES[r]) for r, f in models.items() for c, p in f.get("layers", [])]
    count, name, role = max(layers) if layers else (0, "?", "?")
    raise AnswerMismatch(
        f"the two models have {total:,} parameters (encoder {counts['encoder']:,}, decoder "
        f"{counts['decoder']:,}), over the budget of {int(conv_budget):,}. The largest layer is a "
        f"{name} in {role}, with {count:,}. The usual fix: fewer units in the Dense layer right "
        "after Flatten (or before Reshape), or more stride (strides=2) so that the feature maps "
        "it sees are smaller.")


def check_conv_outputs_are_probabilities(conv_encoder: Any, conv_decoder: Any,
                                         latent_dim: int) -> None:
    """Hidden: decoded pixels are finite and within [0, 1] even for latent vectors far from the
    origin; the encoder's z is sampled (it differs from z_mean and between two calls) while
    z_mean is the same on both calls; the encoder adds a loss (the KL of `Sampling`)."""
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
        return  # wrong outputs cost the shapes check, not this one
    if not np.allclose(z_mean, z_mean_again, rtol=1e-5, atol=1e-6):
        raise AnswerMismatch("conv_encoder's z_mean changes between two calls on the same images: "
                             "z_mean must depend on the image only (no sampling before it).")
    if np.allclose(z, z_mean, rtol=1e-5, atol=1e-6):
        raise AnswerMismatch("conv_encoder's z equals z_mean: z must be sampled, "
                             "z = Sampling()(z_mean, z_log_var).")
    if np.allclose(z, z_again, rtol=1e-5, atol=1e-6):
        raise AnswerMismatch("conv_encoder's z is the same on two calls on the same images: "
                             "draw new noise on every call, as the Sampling layer does.")
    if record.facts.get("encoder", {}).get("losses") == 0:
        raise AnswerMismatch("conv_encoder adds no KL term to the loss: draw z with the "
                             "notebook's Sampling layer, which adds it.")


def check_conv_vae(conv_encoder: Any, conv_decoder: Any, latent_dim: int,
                   conv_budget: int) -> None:
    """The student's check cell: every visible check, in plain words."""
    record = _record(conv_encoder, conv_decoder, latent_dim)
    verdicts = calls.run_verdicts({
        "shapes: images (28, 28, 1) -> [z_mean, z_log_var, z] -> images":
            lambda: check_conv_shapes(record, record, latent_dim),
        f"a convolution, and at most {int(conv_budget):,} parameters":
            lambda: check_conv_budget(record, record, latent_dim, conv_budget),
    })
    calls.print_verdicts("Checking conv_encoder and conv_decoder:", verdicts,
                         "All checks passed: your convolutional VAE has the right shapes and "
                         "fits the budget.")
