"""The two terms of the VAE's loss, as exercises: `kl_divergence` and `reconstruction_loss`.

    kl_divergence(z_mean, z_log_var)      -> one KL per image, shape (batch,)
    reconstruction_loss(x, x_decoded)     -> original_dim * BCE per image, shape (batch,)

Each function is called on inputs chosen from a seed (`kl_inputs`, `reconstruction_inputs`)
and judged on what it returns (`vaetp.calls`). The `check_*` functions take the live function
(the student's check cell) or its record (the judge), and raise `AnswerMismatch` with the
mistake in plain words: a flipped sign, the missing 1/2, sigma instead of sigma squared, a mean
where the TP sums, one number for the whole batch, the arguments swapped.
"""

from __future__ import annotations

from typing import Any

import warnings

import numpy as np

from vaetp import calls
from vaetp.calls import AnswerMismatch, CallRecord

KL_CELL = "the exercise cell of section 8"
RECONSTRUCTION_CELL = "the exercise cell of section 12"


# --------------------------------------------------------------------------------------------
# The KL divergence
# --------------------------------------------------------------------------------------------

def kl_inputs(seed: int, latent_dim: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(z_mean, z_log_var) batches: the prior itself, typical codes, one image, wide codes."""
    rng = np.random.default_rng([seed, 8])
    d = int(latent_dim)
    batches = {
        "prior": (np.zeros((4, d)), np.zeros((4, d))),
        "typical": (rng.normal(0, 1, (16, d)), rng.uniform(-2, 1, (16, d))),
        "single": (rng.normal(0, 1, (1, d)), rng.uniform(-1, 1, (1, d))),
        "wide": (rng.normal(0, 3, (64, d)), rng.uniform(-8, 4, (64, d))),
    }
    return {k: (m.astype("float32"), v.astype("float32")) for k, (m, v) in batches.items()}


def kl_reference(z_mean: np.ndarray, z_log_var: np.ndarray) -> np.ndarray:
    """The TP's KL (`vaetp.grading.reference`): judge side only, hidden from a graded kernel."""
    from vaetp.grading import reference

    return reference.kl(z_mean, z_log_var)


def extract_kl(function: Any, latent_dim: int, seed: int = 0) -> CallRecord:
    """Record `kl_divergence` on `kl_inputs(seed, latent_dim)` (runs student code: kernel side)."""
    record = calls.start("kl_divergence", function, seed, latent_dim=int(latent_dim))
    return _record_pairs(record, function, kl_inputs(seed, latent_dim), int(latent_dim))


def _record_pairs(record: CallRecord, function: Any, inputs: dict[str, tuple[np.ndarray, ...]],
                  width: int) -> CallRecord:
    """The calls of a loss function of two tensors (KL, reconstruction) on the grader's pairs
    of inputs, and whether it also runs on symbolic tensors of that width."""
    if record.status == calls.OK:
        from keras import ops

        for name, (first, second) in inputs.items():
            record.calls[name] = calls.run(function, ops.convert_to_tensor(first),
                                           ops.convert_to_tensor(second))
        record.facts["symbolic_error"] = _symbolic_error(function, width)
    return record


def _symbolic_error(function: Any, width: int) -> str:
    """'' when `function` works on the symbolic tensors Keras traces it with (the Sampling layer
    while the encoder is built, the loss inside `fit`), else the first line of the error. The
    tracing is the backend's own: a `tf.function` on TensorFlow (so tf.* functions pass, as they
    do in the TP), `jax.eval_shape` on JAX, Keras symbolic inputs otherwise."""
    import keras

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            backend = keras.backend.backend()
            if backend == "tensorflow":
                import tensorflow as tf

                spec = tf.TensorSpec((None, int(width)), "float32")
                tf.function(lambda a, b: function(a, b)).get_concrete_function(spec, spec)
            elif backend == "jax":
                import jax

                shape = jax.ShapeDtypeStruct((8, int(width)), "float32")
                jax.eval_shape(lambda a, b: function(a, b), shape, shape)
            else:
                out = function(keras.Input((int(width),)), keras.Input((int(width),)))
                if not isinstance(out, keras.KerasTensor):
                    return f"it returns a {type(out).__name__}, not a Keras tensor"
    except Exception as err:  # noqa: BLE001 - student code
        return f"{type(err).__name__}: {calls.first_line(err)}"
    return ""


def _kl_record(kl_divergence: Any, latent_dim: int) -> CallRecord:
    return calls.function_record(kl_divergence, "kl_divergence", KL_CELL, extract_kl,
                                 latent_dim=latent_dim)


def _per_image(out: np.ndarray, n: int, d: int, what: str, sums: str) -> np.ndarray:
    if out.shape == (n,):
        return out
    if out.size == 1 and n > 1:
        raise AnswerMismatch(
            f"{what} returns one number for a batch of {n} images; return one value per image "
            f"({sums} only): the average over the batch is taken later, by the Sampling layer "
            "or by Keras.")
    if out.shape == (n, 1):
        raise AnswerMismatch(f"{what} has shape ({n}, 1); return shape ({n},): drop keepdims.")
    if out.shape[:1] == (n,) and out.ndim == 2 and out.shape[1] == d:
        raise AnswerMismatch(f"{what} returns {d} values per image, one per coordinate: "
                             f"{sums}.")
    raise AnswerMismatch(f"{what} has shape {out.shape}; the TP asks for one value per image, "
                         f"shape ({n},).")


def _output_per_image(record: CallRecord, call: str, name: str, inputs: Any, width: int,
                      how: str) -> np.ndarray:
    """The call's output as one value per image of the grader's batch (`inputs(seed, width)`),
    or the plain sentence that says what is wrong with its shape."""
    first, _ = inputs(record.seed, width)[call]
    what = f"{name} on a batch of {len(first)}"
    return _per_image(calls.output_of(record, call, what), len(first), width, what, how)


def _kl_output(record: CallRecord, call: str) -> np.ndarray:
    return _output_per_image(record, call, "kl_divergence", kl_inputs,
                             int(record.facts.get("latent_dim", 0)),
                             "sum over the latent coordinates, axis=-1,")


def _kl_mistake(out: np.ndarray, m: np.ndarray, v: np.ndarray) -> str | None:
    m, v = m.astype("float64"), v.astype("float64")
    ref = kl_reference(m, v)
    candidates = {
        "the sign is flipped: KL = -1/2 sum(1 + log σ² - μ² - σ²) is never negative": -ref,
        "the factor 1/2 is missing": 2 * ref,
        "σ² is exp(z_log_var), not exp(z_log_var / 2) (that is σ)":
            0.5 * np.sum(m**2 + np.exp(v / 2) - 1 - v, axis=-1),
        "it averages over the latent coordinates; the KL sums them": ref / m.shape[1],
        "the μ² term (z_mean squared) is missing": 0.5 * np.sum(np.exp(v) - 1 - v, axis=-1),
        "the log σ² term (z_log_var itself) is missing": 0.5 * np.sum(m**2 + np.exp(v) - 1, axis=-1),
        "the constant 1 is missing": 0.5 * np.sum(m**2 + np.exp(v) - v, axis=-1),
    }
    for message, value in candidates.items():
        if np.allclose(out, value, rtol=1e-3, atol=1e-4) and not np.allclose(value, ref):
            return message
    return None


def per_image_values(out: np.ndarray, ref: np.ndarray, what: str) -> np.ndarray:
    """The per-image values of an output whose *shape* may be wrong (that is the shape test's
    job): (n, 1) and (n, k) outputs are reduced; one number passes if it is the batch's mean or
    sum of the right values, so that one mistake costs one test."""
    n = len(ref)
    if out.shape == (n,):
        return out
    if out.ndim == 2 and out.shape[0] == n:
        return out.sum(axis=-1)
    if out.size == 1:
        value = float(out.reshape(-1)[0])
        if np.isclose(value, ref.mean(), rtol=1e-3) or np.isclose(value, ref.sum(), rtol=1e-3):
            return ref
        raise AnswerMismatch(f"{what} returns {value:.5g}, neither the mean ({ref.mean():.5g}) "
                             f"nor the sum of the right per-image values.")
    raise AnswerMismatch(f"{what} has shape {out.shape}; the TP asks for shape ({n},).")


def up_to_scale(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """`out` divided by its best positive scale against `ref`: the hidden tests judge the
    function's *form* on extreme inputs, and leave a constant factor (a mean for a sum, a
    missing 1/2 or original_dim) to the visible values test, so that it costs one test."""
    scale = float(np.dot(out, ref) / max(np.dot(ref, ref), 1e-300))
    return out / scale if scale > 0 and np.isfinite(scale) else out


def _compare_kl(record: CallRecord, call: str, rtol: float, any_scale: bool = False) -> None:
    m, v = kl_inputs(record.seed, int(record.facts.get("latent_dim", 0)))[call]
    ref = kl_reference(m, v)
    what = f"kl_divergence on a batch of {len(m)}"
    out = per_image_values(calls.output_of(record, call, what), ref, what)
    if np.allclose(up_to_scale(out, ref) if any_scale else out, ref, rtol=rtol, atol=1e-4):
        return
    i = int(np.argmax(np.abs(out - ref)))
    where = (f"for z_mean = {np.round(m[i].astype(float), 2).tolist()}, z_log_var = {np.round(v[i].astype(float), 2).tolist()} "
             f"it gives {out[i]:.4g} instead of {ref[i]:.4g}")
    mistake = _kl_mistake(out, m, v)
    if mistake:
        raise AnswerMismatch(f"kl_divergence: {mistake} ({where}).")
    raise AnswerMismatch(f"kl_divergence is not -1/2 sum_j (1 + log σ_j² - μ_j² - σ_j²): {where}.")


def check_kl_shape(kl_divergence: Any, latent_dim: int) -> None:
    """One KL per image: shape (batch,), for a batch of 16 and for a single image; and it works
    on symbolic Keras tensors, as the Sampling layer calls it."""
    _one_per_image_and_symbolic(
        _kl_record(kl_divergence, latent_dim), _kl_output, "kl_divergence", "traces it with",
        "the Sampling layer does, when the encoder is built: ",
        "keras.ops (ops.exp, ops.square, ops.sum)")


def _one_per_image_and_symbolic(record: CallRecord, output: Any, name: str, traced: str,
                                context: str, fix: str) -> None:
    """The shape of the outputs (`output` judges it) for a batch and for a single image, then
    whether the function ran on symbolic tensors (`name` and the sentence's parts are ours,
    never the record's)."""
    output(record, "typical")
    output(record, "single")
    symbolic = record.facts.get("symbolic_error")
    if symbolic:
        raise AnswerMismatch(
            f"{name} works on arrays, but not on the symbolic tensors that Keras {traced} "
            f"({context}{str(symbolic)[:200]}): write it with {fix}, which work on every tensor "
            "and every backend; NumPy functions need actual numbers.")


def check_kl_values(kl_divergence: Any, latent_dim: int) -> None:
    """Zero at the prior, and the closed form on typical codes."""
    record = _kl_record(kl_divergence, latent_dim)
    prior = calls.output_of(record, "prior", "kl_divergence at the prior").reshape(-1)
    if not np.allclose(prior, 0.0, atol=1e-5):
        mistake = ("check the constant 1 and the signs" if np.allclose(prior, prior[0]) else
                   "check the formula")
        raise AnswerMismatch(f"kl_divergence gives {prior[0]:.4g}, not 0, when z_mean = 0 and "
                             f"z_log_var = 0 (the code is then the prior itself): {mistake}.")
    _compare_kl(record, "typical", rtol=1e-4)


def check_kl_wide(kl_divergence: Any, latent_dim: int) -> None:
    """Hidden: the closed form, up to a constant factor, on codes far from the prior (|μ| up to
    10, σ² from 3e-4 to 55)."""
    record = _kl_record(kl_divergence, latent_dim)
    out = calls.output_of(record, "wide", "kl_divergence")
    if not np.all(np.isfinite(out)):
        raise AnswerMismatch("kl_divergence returns inf or nan for codes far from the prior.")
    _compare_kl(record, "wide", rtol=1e-3, any_scale=True)


def check_kl_divergence(kl_divergence: Any, latent_dim: int) -> None:
    """The student's check cell: every property the grader checks, in plain words (the hidden
    tests hide their inputs, not what they check)."""
    record = calls.live_or_recorded(kl_divergence, lambda f: extract_kl(f, latent_dim))
    verdicts = calls.run_verdicts({
        "one value per image": lambda: check_kl_shape(record, latent_dim),
        "the closed form (0 at the prior, and on typical codes)":
            lambda: check_kl_values(record, latent_dim),
        "codes far from the prior (|mean| up to 10, variances from 3e-4 to 55)":
            lambda: check_kl_wide(record, latent_dim),
    })
    calls.print_verdicts("Checking kl_divergence:", verdicts,
                         "All checks passed: your KL divergence matches the closed form.")


# --------------------------------------------------------------------------------------------
# The reconstruction loss
# --------------------------------------------------------------------------------------------

def reconstruction_inputs(seed: int, original_dim: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(x, x_decoded) batches: MNIST-like images (most pixels 0, some grey) and predictions."""
    rng = np.random.default_rng([seed, 12])
    n_pixels = int(original_dim)

    def images(n: int) -> np.ndarray:
        ink = rng.random((n, n_pixels)) < 0.3
        level = np.where(rng.random((n, n_pixels)) < 0.5, 1.0, rng.random((n, n_pixels)))
        return np.where(ink, level, 0.0)

    def predictions(n: int, low: float) -> np.ndarray:
        return rng.uniform(low, 1 - low, (n, n_pixels))

    batches = {
        "typical": (images(8), predictions(8, 0.05)),
        "single": (images(1), predictions(1, 0.05)),
        "wide": (images(64), 10 ** rng.uniform(-4, -0.3, (64, n_pixels))),
    }
    x, p = batches["wide"]
    batches["wide"] = (x, np.where(rng.random(p.shape) < 0.5, p, 1 - p))
    return {k: (x.astype("float32"), p.astype("float32")) for k, (x, p) in batches.items()}


def _bce_sum(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    from vaetp.grading import reference

    return reference.bce_sum(x, p)


def reconstruction_reference(x: np.ndarray, x_decoded: np.ndarray) -> np.ndarray:
    """original_dim * BCE per image, i.e. the sum of the pixels' binary cross-entropies."""
    return _bce_sum(x, x_decoded)


def extract_reconstruction(function: Any, original_dim: int, seed: int = 0) -> CallRecord:
    """Record `reconstruction_loss` on `reconstruction_inputs` (kernel side)."""
    record = calls.start("reconstruction_loss", function, seed, original_dim=int(original_dim))
    return _record_pairs(record, function, reconstruction_inputs(seed, original_dim),
                         int(original_dim))


def _reconstruction_record(reconstruction_loss: Any, original_dim: int) -> CallRecord:
    return calls.function_record(reconstruction_loss, "reconstruction_loss", RECONSTRUCTION_CELL,
                                 extract_reconstruction, original_dim=original_dim)


def _reconstruction_output(record: CallRecord, call: str) -> np.ndarray:
    return _output_per_image(record, call, "reconstruction_loss", reconstruction_inputs,
                             int(record.facts.get("original_dim", 0)),
                             "reduce over the pixels, axis=-1,")


def _compare_reconstruction(record: CallRecord, call: str, rtol: float,
                            any_scale: bool = False) -> None:
    d = int(record.facts.get("original_dim", 0))
    x, p = reconstruction_inputs(record.seed, d)[call]
    ref = reconstruction_reference(x, p)
    what = f"reconstruction_loss on a batch of {len(x)}"
    out = per_image_values(calls.output_of(record, call, what), ref, what)
    if np.allclose(up_to_scale(out, ref) if any_scale else out, ref, rtol=rtol, atol=1e-3):
        return
    candidates = {
        f"it is the mean over the pixels: multiply by original_dim ({d}) to get the sum, the "
        "scale of the KL term": ref / d,
        "the arguments are swapped: Keras losses take (y_true, y_pred), here (x, x_decoded)":
            _bce_sum(p, x),
        "the sign is flipped: a cross-entropy is positive": -ref,
        "it is a squared error; the TP's loss is the binary cross-entropy":
            np.sum((x.astype("float64") - p) ** 2, axis=-1),
        "it is a mean squared error; the TP's loss is the binary cross-entropy":
            np.mean((x.astype("float64") - p) ** 2, axis=-1),
    }
    for message, value in candidates.items():
        if np.allclose(out, value, rtol=2e-2, atol=1e-3):  # loose: float32 clipping at 1e-7
            raise AnswerMismatch(f"reconstruction_loss: {message}.")
    raise AnswerMismatch(
        f"reconstruction_loss gives {out[0]:.5g} for the first image, where "
        f"original_dim * binary_crossentropy(x, x_decoded) gives {ref[0]:.5g}.")


def check_reconstruction_shape(reconstruction_loss: Any, original_dim: int) -> None:
    """One loss per image: shape (batch,), for a batch of 8 and for a single image; and it
    works on the symbolic tensors `fit` traces the loss with."""
    _one_per_image_and_symbolic(
        _reconstruction_record(reconstruction_loss, original_dim), _reconstruction_output,
        "reconstruction_loss", "traces the loss with inside vae.fit", "",
        "keras.losses.binary_crossentropy or keras.ops")


def check_reconstruction_values(reconstruction_loss: Any, original_dim: int) -> None:
    """original_dim * BCE(x, x_decoded) per image, on MNIST-like images."""
    _compare_reconstruction(_reconstruction_record(reconstruction_loss, original_dim),
                            "typical", rtol=1e-4)


def check_reconstruction_wide(reconstruction_loss: Any, original_dim: int) -> None:
    """Hidden: predictions near 0 and 1 (1e-4 from either end), 64 images, up to a constant
    factor."""
    record = _reconstruction_record(reconstruction_loss, original_dim)
    out = calls.output_of(record, "wide", "reconstruction_loss")
    if not np.all(np.isfinite(out)):
        raise AnswerMismatch("reconstruction_loss returns inf or nan when predictions are near 0 "
                             "or 1: use keras.losses.binary_crossentropy, which clips them.")
    _compare_reconstruction(record, "wide", rtol=1e-3, any_scale=True)


def check_reconstruction_loss(reconstruction_loss: Any, original_dim: int) -> None:
    """The student's check cell: every property the grader checks."""
    record = calls.live_or_recorded(reconstruction_loss,
                                    lambda f: extract_reconstruction(f, original_dim))
    verdicts = calls.run_verdicts({
        "one value per image": lambda: check_reconstruction_shape(record, original_dim),
        "original_dim * binary cross-entropy": lambda: check_reconstruction_values(record, original_dim),
        "predictions near 0 and 1": lambda: check_reconstruction_wide(record, original_dim),
    })
    calls.print_verdicts("Checking reconstruction_loss:", verdicts,
                         "All checks passed: your reconstruction loss matches the TP.")
