"""The VAE's assembly, as an exercise: `vae`, the model from images through the encoder's sample
to the decoder's reconstruction.

Judged on numbers only the real VAE produces. The probe (`extract_vae`, kernel side):

- sets the grader's weights into the encoder's three Dense layers (`grader_encoder_weights`,
  drawn from the probe's secret seed: a z_log_var head that makes sigma tiny on coordinate 0,
  about 1 on the others), and makes the decoder compute the grader's own function
  (`grader_decoder_weights`: sigmoid(z A + c), which the judge can invert) in place of the
  student's layers, for the time of the probe. So a wrong decoder (section 10) costs no VAE
  point: the VAE is judged on *calling* `decoder`, not on what the decoder computes;
- calls `vae` twice on secret images (`vae_inputs`) and keeps the outputs and the values of the
  losses each call added; then puts every weight and the decoder back.

The judge recomputes z_mean and z_log_var of those images in NumPy from the known weights and
the TP's encoder (Dense(intermediate_dim, relu), two Dense(latent_dim) heads), recovers from
each output the code z the decoder was given, and checks:

- `check_vae_shapes`: (N, original_dim) out, for images in, and proof that the images went
  through the encoder (a decodable output or the KL of these images among the losses);
- `check_vae_uses_encoder_and_decoder`: the output is the decoder's, of a z whose coordinate 0
  (sigma ~ 6e-6) equals the encoder's z_mean, and whose other coordinates are sampled;
- `check_vae_samples_and_adds_kl` (hidden): the two calls decode different samples,
  epsilon = (z - z_mean) / sigma looks like N(0, 1), and each call adds exactly one loss (when
  the output cannot be decoded, the loss must be the KL of the known z_mean and z_log_var).

What the kernel says about its models (which weights the VAE holds) only chooses the words of a
failure: no test passes on it. The sizes of the encoder (intermediate_dim, latent_dim) are read
from the encoder in the kernel and bounded; any size gives a reference that only a forward pass
with the secret weights can match.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vaetp import calls
from vaetp.calls import AnswerMismatch, CallRecord

CELL = "the exercise cell of section 11"
N_IMAGES = 64
#: z_log_var of coordinate 0 (sigma = exp(-12) ~ 6e-6: z_0 = z_mean_0 up to 3e-5).
PINNED_LOG_VAR = -24.0
#: Bounds on the encoder's sizes read in the kernel.
MAX_LATENT, MAX_HIDDEN = 64, 4096
#: A decoded logit is explained when the fit leaves at most this (plus, for a pixel p, what
#: float32 rounding of p can change in its logit: FLOAT32_LOGIT / (p (1 - p))).
FIT = 1e-3
FLOAT32_LOGIT = 4 * 2.0 ** -24
#: z_0 equals z_mean_0 up to this (float32 forward pass, sigma ~ 6e-6).
PINNED = 2e-3
BUILD = "keras.Model(inputs, decoder(encoder(inputs)))"


def vae_inputs(seed: int, original_dim: int) -> np.ndarray:
    return np.random.default_rng([seed, 11]).random((N_IMAGES, int(original_dim))).astype("float32")


def grader_encoder_weights(seed: int, original_dim: int, intermediate_dim: int,
                           latent_dim: int) -> dict[str, list[np.ndarray]]:
    """Kernel and bias of the encoder's hidden layer and of its two heads, drawn from the seed."""
    p, i, d = int(original_dim), int(intermediate_dim), int(latent_dim)
    rng = np.random.default_rng([int(seed), 11, 1])
    hidden = [rng.normal(0, 2 / math.sqrt(p), (p, i)), rng.uniform(0, 0.5, i)]
    mean = [rng.normal(0, 1.5 / math.sqrt(i), (i, d)), rng.normal(0, 0.5, d)]
    log_var_bias = rng.uniform(-0.5, 0.5, d)
    log_var_bias[0] = PINNED_LOG_VAR
    log_var = [rng.normal(0, 0.2 / math.sqrt(i), (i, d)), log_var_bias]
    return {name: [w.astype("float32") for w in pair]
            for name, pair in (("hidden", hidden), ("z_mean", mean), ("z_log_var", log_var))}


def grader_decoder_weights(seed: int, latent_dim: int, original_dim: int
                           ) -> tuple[np.ndarray, np.ndarray]:
    """The grader's decoder during the probe: pixels = sigmoid(z A + c), A of full rank."""
    rng = np.random.default_rng([int(seed), 11, 2])
    a = rng.normal(0, 0.3, (int(latent_dim), int(original_dim))).astype("float32")
    return a, rng.uniform(-1, 1, int(original_dim)).astype("float32")


# --------------------------------------------------------------------------------------------
# The probe (kernel side: runs student code)
# --------------------------------------------------------------------------------------------

def _paths(variables: list[Any]) -> list[str]:
    return [str(getattr(v, "path", getattr(v, "name", "?"))) for v in variables]


def _encoder_layers(encoder: Any, original_dim: int) -> dict[str, Any]:
    """The encoder's hidden Dense layer and its two heads (by name, else in order)."""
    from keras import layers

    dense = [layer for layer in encoder._flatten_layers(include_self=False, recursive=True)
             if isinstance(layer, layers.Dense)]
    hidden = [layer for layer in dense if layer.kernel.shape[0] == int(original_dim)]
    if len(hidden) != 1:
        raise ValueError(f"{len(hidden)} Dense layers take the {original_dim} pixels; the TP's "
                         "encoder has one")
    width = int(hidden[0].kernel.shape[1])
    heads = [layer for layer in dense if layer is not hidden[0] and layer.kernel.shape[0] == width]
    named = {layer.name: layer for layer in heads}
    if "z_mean" in named and "z_log_var" in named:
        heads = [named["z_mean"], named["z_log_var"]]
    if len(heads) != 2 or heads[0].kernel.shape != heads[1].kernel.shape:
        raise ValueError("the TP's encoder has two Dense heads, z_mean and z_log_var, after its "
                         "hidden layer")
    return {"hidden": hidden[0], "z_mean": heads[0], "z_log_var": heads[1]}


def _weight_owners(record: CallRecord, vae: Any, encoder: Any, decoder: Any) -> None:
    """Which of the VAE's weights are the encoder's and the decoder's: words for a failure only."""
    try:
        owners = {}
        for owner, model in (("encoder", encoder), ("decoder", decoder)):
            for v in getattr(model, "weights", []) or []:
                owners[id(v)] = owner
        vae_weights = list(vae.weights)
        mine = {id(v) for v in vae_weights}
        record.facts["weights"] = {
            "decoder": sum(owners.get(id(v)) == "decoder" for v in vae_weights),
            "other": _paths([v for v in vae_weights if id(v) not in owners])[:20],
            "decoder_missing": _paths([v for v in getattr(decoder, "weights", []) or []
                                       if id(v) not in mine])[:20],
        }
    except Exception:  # noqa: BLE001
        record.facts["weights"] = {}


def _losses(vae: Any) -> calls.Call:
    try:
        values = [float(np.asarray(_numpy(loss)).reshape(-1)[0]) for loss in vae.losses]
    except Exception as err:  # noqa: BLE001
        return calls.Call(error=f"{type(err).__name__}: {calls.first_line(err)}")
    return calls.Call(output=np.asarray(values, "float64"))


def extract_vae(vae: Any, encoder: Any, decoder: Any, original_dim: int, seed: int = 0) -> CallRecord:
    """Record the student's `vae` with the grader's weights (runs student code: kernel side)."""
    import keras

    record = calls.start("vae", vae, seed)
    if record.status != calls.OK:
        return record
    if not hasattr(vae, "trainable_weights"):
        record.status, record.type_name = calls.NOT_CALLABLE, type(vae).__name__
        return record
    facts = record.facts
    facts["encoder_found"], facts["decoder_found"] = encoder is not None, decoder is not None
    try:
        facts["input_shape"] = [None if d is None else int(d) for d in vae.inputs[0].shape]
    except Exception:  # noqa: BLE001 - a subclassed model has no declared input
        facts["input_shape"] = None
    _weight_owners(record, vae, encoder, decoder)
    if encoder is None or not isinstance(decoder, keras.layers.Layer):
        return record
    try:
        found = _encoder_layers(encoder, original_dim)
    except Exception as err:  # noqa: BLE001
        facts["encoder_error"] = calls.first_line(err)[:300]
        return record
    width, d = (int(n) for n in found["z_mean"].kernel.shape)
    if not (0 < width <= MAX_HIDDEN and 2 <= d <= MAX_LATENT):
        facts["encoder_error"] = f"sizes {width} and {d} out of the TP's range"
        return record
    facts.update(intermediate_dim=width, latent_dim=d)
    weights = grader_encoder_weights(seed, original_dim, width, d)
    a, c = (keras.ops.convert_to_tensor(w) for w in grader_decoder_weights(seed, d, original_dim))

    def grader_decoder(inputs: Any, *args: Any, **kwargs: Any) -> Any:
        return keras.ops.sigmoid(keras.ops.matmul(inputs, a) + c)

    saved = {name: layer.get_weights() for name, layer in found.items()}
    had_call = "call" in vars(decoder)
    previous = vars(decoder).get("call")
    try:
        for name, layer in found.items():
            layer.set_weights(weights[name])
        decoder.call = grader_decoder  # the VAE calls `decoder`: it computes the grader's function
        x = vae_inputs(seed, original_dim)
        for name in ("first", "second"):
            record.calls[name] = calls.run(vae, x)
            record.calls[f"{name}_losses"] = _losses(vae)
    finally:
        if had_call:
            decoder.call = previous
        else:
            vars(decoder).pop("call", None)
        for name, layer in found.items():
            layer.set_weights(saved[name])
    return record


def _numpy(value: Any) -> Any:
    from keras import ops

    return ops.convert_to_numpy(value)


# --------------------------------------------------------------------------------------------
# The judge's side: NumPy only
# --------------------------------------------------------------------------------------------

def _record(vae: Any, encoder: Any, decoder: Any, original_dim: int) -> CallRecord:
    record = calls.live_or_recorded(vae, lambda v: extract_vae(v, encoder, decoder, original_dim))
    if record.status == calls.MISSING:
        raise AnswerMismatch(f"there is no `vae`: build it in {CELL} and run that cell.")
    if record.status == calls.NOT_CALLABLE:
        raise AnswerMismatch(f"`vae` is a {record.type_name}, not a Keras model: build it with "
                             "keras.Model(inputs, ...).")
    return record


def _sizes(record: CallRecord) -> tuple[int, int] | None:
    try:
        width, d = int(record.facts["intermediate_dim"]), int(record.facts["latent_dim"])
    except (KeyError, TypeError, ValueError):
        return None
    return (width, d) if 0 < width <= MAX_HIDDEN and 2 <= d <= MAX_LATENT else None


def _truth(record: CallRecord, original_dim: int) -> dict[str, np.ndarray] | None:
    """z_mean, z_log_var and the mean KL of the secret images under the grader's weights."""
    sizes = _sizes(record)
    if sizes is None:
        return None
    from vaetp.grading import expected  # judge side: hidden from a graded kernel

    return expected.encoder_codes(vae_inputs(record.seed, original_dim),
                                  grader_encoder_weights(record.seed, original_dim, *sizes))


def _decoded(record: CallRecord, call: str, original_dim: int) -> np.ndarray | None:
    """The code z each image of the call was decoded from by the grader's decoder, or None when
    the output is not the decoder's (another shape, new layers, numbers made up)."""
    sizes, found = _sizes(record), record.call(call)
    if sizes is None or not found.ok:
        return None
    out = np.asarray(found.output, "float64")
    if out.shape != (N_IMAGES, int(original_dim)) or not np.all((out > 0) & (out < 1)):
        return None
    a, c = (np.asarray(w, "float64") for w in grader_decoder_weights(record.seed, sizes[1],
                                                                      original_dim))
    logits = np.log(out) - np.log1p(-out) - c
    # A float32 output near 1 (or 0) fixes its logit only to about 2^-24 / (1 - p): the fit
    # allows that much more on such pixels, and weighs each pixel by what it can tell.
    slack = FIT + FLOAT32_LOGIT / (out * (1 - out))
    z = np.stack([np.linalg.lstsq(a.T / s[:, None], (row / s), rcond=None)[0]
                  for row, s in zip(logits, slack)])
    return z if np.all(np.abs(z @ a - logits) <= slack) else None


def _pinned(z: np.ndarray | None, truth: dict[str, np.ndarray] | None) -> bool:
    """The decoded code's coordinate 0 is the encoder's z_mean of the secret images."""
    return z is not None and truth is not None and bool(
        np.abs(z[:, 0] - truth["mean"][:, 0]).max() <= PINNED)


def _losses_of(record: CallRecord, call: str) -> np.ndarray | None:
    found = record.call(f"{call}_losses")
    return np.asarray(found.output, "float64").reshape(-1) if found.ok else None


def _adds_the_kl(record: CallRecord, truth: dict[str, np.ndarray] | None) -> bool:
    """Some loss of the first call is the KL of the secret images' z_mean and z_log_var."""
    losses = _losses_of(record, "first")
    return truth is not None and losses is not None and bool(
        np.any(np.isclose(losses, truth["kl"], rtol=1e-3, atol=1e-4)))


def _not_the_decoders(record: CallRecord) -> str:
    """Why an output is not the decoder's, in the kernel's words (they only choose the words)."""
    weights = record.facts.get("weights") or {}
    if not record.facts.get("encoder_found") or not record.facts.get("decoder_found"):
        return "there is no `encoder` or no `decoder`: run sections 7 to 10 first."
    if record.facts.get("encoder_error"):
        return (f"the grader could not set its weights into your encoder "
                f"({record.facts['encoder_error']}): run the encoder cells of section 7 as given.")
    if weights.get("other"):
        return (f"your VAE has weights of its own ({', '.join(weights['other'][:3])}): it created "
                f"new layers instead of calling the encoder and the decoder. Build it as {BUILD}.")
    if weights.get("decoder_missing") and not weights.get("decoder"):
        return f"your VAE never calls the decoder: its output must be decoder(encoder(inputs))."
    return (f"your VAE's output is not the decoder's reconstruction of the encoder's code for "
            f"the grader's images: build it as {BUILD}.")


# --------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------

def check_vae_shapes(vae: Any, encoder: Any, decoder: Any, original_dim: int) -> None:
    """The VAE maps a batch of images to a batch of images: (None, original_dim) both ways."""
    record = _record(vae, encoder, decoder, original_dim)
    declared = record.facts.get("input_shape")
    if isinstance(declared, list) and declared[1:] != [original_dim]:
        raise AnswerMismatch(f"your VAE's input has shape {tuple(declared)}; it takes images, "
                             f"(None, {original_dim}): start it from the encoder's `inputs`.")
    out = calls.output_of(record, "first", f"vae on a batch of {N_IMAGES} images")
    if out.shape != (N_IMAGES, original_dim):
        raise AnswerMismatch(f"vae on {N_IMAGES} images returns shape {out.shape}, not "
                             f"({N_IMAGES}, {original_dim}): its output must be the decoder's "
                             "reconstruction of the images.")
    truth = _truth(record, original_dim)
    if not (_pinned(_decoded(record, "first", original_dim), truth) or _adds_the_kl(record, truth)):
        raise AnswerMismatch("your VAE's output does not come from the grader's images through "
                             f"the encoder: {_not_the_decoders(record)}")


def check_vae_uses_encoder_and_decoder(vae: Any, encoder: Any, decoder: Any, original_dim: int) -> None:
    """The VAE is made of the encoder and the decoder themselves: its output is the decoder's, of
    the encoder's sample z."""
    record = _record(vae, encoder, decoder, original_dim)
    truth = _truth(record, original_dim)
    z = _decoded(record, "first", original_dim)
    if truth is None or z is None:
        raise AnswerMismatch(_not_the_decoders(record))
    if not _pinned(z, truth):
        raise AnswerMismatch("your VAE decodes a code that is not the encoder's for its input "
                             f"images: build it as {BUILD}.")
    sigma = np.exp(0.5 * truth["log_var"][:, 1:])
    if np.all(np.abs(z[:, 1:] - truth["mean"][:, 1:]) <= 1e-3 * sigma):
        raise AnswerMismatch("your VAE never uses z_log_var: it decodes z_mean, not the sample z. "
                             "Decode the encoder's output: decoder(encoder(inputs)).")


def check_vae_samples_and_adds_kl(vae: Any, encoder: Any, decoder: Any, original_dim: int) -> None:
    """Hidden: two calls on the same images decode different samples z = z_mean + sigma * eps,
    and each call adds one loss, the KL."""
    record = _record(vae, encoder, decoder, original_dim)
    first = calls.output_of(record, "first", "vae")
    second = calls.output_of(record, "second", "vae")
    if first.shape == second.shape and np.allclose(first, second, atol=1e-7):
        raise AnswerMismatch("your VAE gives the same output twice for the same images: it must "
                             "decode the random sample z, drawn anew on each call.")
    losses = [_losses_of(record, call) for call in ("first", "second")]
    if any(found is None or found.size != 1 for found in losses):
        counts = ["?" if found is None else found.size for found in losses]
        raise AnswerMismatch(f"each call of your VAE should add exactly one loss, the KL term of "
                             f"the Sampling layer; it added {counts[0]}. Call the encoder once.")
    if not all(np.all(np.isfinite(found)) for found in losses):
        raise AnswerMismatch("the loss your VAE adds is not finite: check kl_divergence "
                             "(section 8).")
    truth = _truth(record, original_dim)
    codes = [_decoded(record, call, original_dim) for call in ("first", "second")]
    if truth is not None and all(_pinned(z, truth) for z in codes):
        # the outputs prove the run: judge the sample itself (a wrong kl_divergence costs the KL
        # exercise, not this test)
        sigma = np.exp(0.5 * truth["log_var"][:, 1:])
        eps = [(z[:, 1:] - truth["mean"][:, 1:]) / sigma for z in codes]
        if np.allclose(eps[0], eps[1], atol=1e-3):
            raise AnswerMismatch("your VAE decodes the same z twice for the same images: it must "
                                 "decode the random sample z, drawn anew on each call.")
        pooled = np.concatenate(eps).reshape(-1)
        if abs(pooled.mean()) > 0.5 or not 0.6 <= pooled.std() <= 1.5:
            raise AnswerMismatch(
                f"the codes your VAE decodes are not z_mean + sigma * epsilon with epsilon from "
                f"N(0, 1) (epsilon has mean {pooled.mean():.2f} and standard deviation "
                f"{pooled.std():.2f}): decode the Sampling layer's output, decoder(encoder(inputs)).")
        return
    if truth is None or not all(np.isclose(found[0], truth["kl"], rtol=1e-3, atol=1e-4)
                                for found in losses):
        raise AnswerMismatch("the loss your VAE adds is not the KL of the encoder's z_mean and "
                             "z_log_var for its input images: the loss must come from the "
                             "encoder's Sampling layer, called once on the VAE's inputs.")


def check_vae(vae: Any, encoder: Any, decoder: Any, original_dim: int) -> None:
    """The student's check cell: every property the grader checks."""
    record = calls.live_or_recorded(vae, lambda v: extract_vae(v, encoder, decoder, original_dim))
    verdicts = calls.run_verdicts({
        "images in, images out": lambda: check_vae_shapes(record, encoder, decoder, original_dim),
        "built from the encoder and the decoder":
            lambda: check_vae_uses_encoder_and_decoder(record, encoder, decoder, original_dim),
        "a new sample z on each call, and one KL loss per call":
            lambda: check_vae_samples_and_adds_kl(record, encoder, decoder, original_dim),
    })
    calls.print_verdicts("Checking vae:", verdicts,
                         "All checks passed: your VAE chains the encoder and the decoder.")
