"""Anomaly detection with the VAE (section 17), the score: `anomaly_scores`.

    anomaly_scores(stats_encoder, decoder, x)   -> one negative ELBO per image, shape (n,),
                                                   with the mean code z_mean (deterministic)

(The detection score, `roc_auc`, is in vaetp/roc_checks.py.)

`anomaly_scores` is called with *grader* models whose weights come from the probe seed
(`grader_weights`, numpy), so the judge recomputes the expected scores without Keras. Each batch
is scored twice: a score that changes between calls decoded a sampled z. While it is recorded,
the notebook's `kl_divergence` and `reconstruction_loss` are the TP's (`tp_loss_functions`): a
mistake there costs points in its own exercise only. The checks name the
usual mistakes: a term missing, the mean BCE where the TP sums, arguments swapped, the ELBO's
sign.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from vaetp import calls
from vaetp.calls import AnswerMismatch, CallRecord
from vaetp.loss_checks import kl_reference, per_image_values, reconstruction_reference

SCORES_CELL = "the exercise cell of section 17"


# --------------------------------------------------------------------------------------------
# anomaly_scores
# --------------------------------------------------------------------------------------------

def grader_weights(seed: int, latent_dim: int, original_dim: int) -> dict[str, np.ndarray]:
    """Weights of the grader stats_encoder (x -> z_mean, z_log_var) and decoder (z -> sigmoid)."""
    rng = np.random.default_rng([seed, 16])
    d, pixels = int(latent_dim), int(original_dim)
    scale = 1 / math.sqrt(0.2 * pixels)  # x @ N(0, scale) is about N(0, 1) on typical images
    # z_mean ~ N(0, 4) and log σ² around -3 make the KL term a few percent of the score, so that
    # a missing or subtracted KL term is told apart from the right score.
    weights = {
        "mean_kernel": rng.normal(0, 4 * scale, (pixels, d)), "mean_bias": rng.normal(0, 0.5, d),
        "log_var_kernel": rng.normal(0, scale / 2, (pixels, d)),
        "log_var_bias": rng.uniform(-4, -2, d),
        "decoder_kernel": rng.normal(0, 0.35 / math.sqrt(d), (d, pixels)),
        "decoder_bias": rng.normal(0, 0.5, pixels),
    }
    return {k: v.astype("float32") for k, v in weights.items()}


def anomaly_inputs(seed: int, original_dim: int) -> dict[str, np.ndarray]:
    """Image batches: MNIST-like (most pixels 0, some grey or 1), one image, uniform noise."""
    rng = np.random.default_rng([seed, 17])
    pixels = int(original_dim)

    def images(n: int) -> np.ndarray:
        ink = rng.random((n, pixels)) < 0.3
        level = np.where(rng.random((n, pixels)) < 0.5, 1.0, rng.random((n, pixels)))
        return np.where(ink, level, 0.0).astype("float32")

    return {"typical": images(16), "single": images(1),
            "noise": rng.random((32, pixels)).astype("float32")}


#: call name -> the batch of `anomaly_inputs` it scores.
SCORE_CALLS = {"typical": "typical", "typical_again": "typical", "single": "single",
               "noise": "noise", "noise_again": "noise"}


def _sigmoid(a: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-a))


def _parts(seed: int, latent_dim: int, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """z_mean, z_log_var and the decoded z_mean, in float64."""
    w = {k: v.astype("float64") for k, v in grader_weights(seed, latent_dim, x.shape[1]).items()}
    x = x.astype("float64")
    z_mean = x @ w["mean_kernel"] + w["mean_bias"]
    z_log_var = x @ w["log_var_kernel"] + w["log_var_bias"]
    return z_mean, z_log_var, _sigmoid(z_mean @ w["decoder_kernel"] + w["decoder_bias"])


def scores_reference(seed: int, latent_dim: int, x: np.ndarray) -> np.ndarray:
    calls.not_inside_student_code("scores_reference")
    z_mean, z_log_var, decoded = _parts(seed, latent_dim, x)
    return reconstruction_reference(x, decoded) + kl_reference(z_mean, z_log_var)


def extract_anomaly_scores(function: Any, latent_dim: int, original_dim: int,
                           seed: int = 0) -> CallRecord:
    """Record `anomaly_scores` with the grader models (runs student code: kernel side)."""
    record = calls.start("anomaly_scores", function, seed)
    record.facts.update(latent_dim=int(latent_dim), original_dim=int(original_dim))
    if record.status != calls.OK:
        return record
    import keras

    d, pixels = int(latent_dim), int(original_dim)
    w = grader_weights(seed, d, pixels)
    means, log_vars = keras.layers.Dense(d), keras.layers.Dense(d)
    inputs = keras.Input((pixels,))
    stats_encoder = keras.Model(inputs, [means(inputs), log_vars(inputs)], name="stats_encoder")
    decoded = keras.layers.Dense(pixels, activation="sigmoid")
    decoder = keras.Sequential([keras.Input((d,)), decoded], name="decoder")
    for layer, name in ((means, "mean"), (log_vars, "log_var"), (decoded, "decoder")):
        layer.set_weights([w[f"{name}_kernel"], w[f"{name}_bias"]])
    batches = anomaly_inputs(seed, original_dim)
    with tp_loss_functions(function, pixels):
        for name, batch in SCORE_CALLS.items():
            record.calls[name] = calls.run(function, stats_encoder, decoder, batches[batch].copy())
    return record


@contextlib.contextmanager
def tp_loss_functions(function: Any, original_dim: int) -> Iterator[None]:
    """While `anomaly_scores` is recorded, a `kl_divergence` or `reconstruction_loss` of the
    notebook that fails its own exercise is replaced by the TP's: that mistake is graded there,
    not a second time here. A correct one is kept, whatever its argument names. (An
    `anomaly_scores` that writes the formulas out is judged on them.)"""
    from keras import losses, ops

    def tp_kl(z_mean: Any, z_log_var: Any) -> Any:
        return -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)

    def tp_reconstruction(x: Any, x_decoded: Any) -> Any:
        return original_dim * losses.binary_crossentropy(x, x_decoded)

    names = getattr(function, "__globals__", None)
    if not isinstance(names, dict):
        yield
        return
    replaced = {}
    for name, tp, judge in (("kl_divergence", tp_kl, _kl_is_right),
                            ("reconstruction_loss", tp_reconstruction, _reconstruction_is_right)):
        mine = names.get(name)
        if callable(mine) and not judge(mine, original_dim):
            replaced[name] = mine
            names[name] = _with_signature_of(mine, tp)
    try:
        yield
    finally:
        names.update(replaced)


def _with_signature_of(student: Any, tp: Any) -> Any:
    """`tp`, callable with the student's argument names and defaults (first two arguments)."""
    try:
        signature = inspect.signature(student)
    except (TypeError, ValueError):
        return tp

    def stand_in(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            first, second = list(bound.arguments.values())[:2]
        except (TypeError, ValueError):
            return tp(*args, **kwargs)
        return tp(first, second)

    return stand_in


def _kl_is_right(function: Any, original_dim: int) -> bool:
    from keras import ops

    m = np.random.default_rng(1).normal(size=(8, 3)).astype("float32")
    v = np.random.default_rng(2).uniform(-2, 1, size=(8, 3)).astype("float32")
    found = calls.run(function, ops.convert_to_tensor(m), ops.convert_to_tensor(v))
    return found.ok and found.output.shape == (8,) and np.allclose(found.output, kl_reference(m, v), rtol=1e-3)


def _reconstruction_is_right(function: Any, original_dim: int) -> bool:
    from keras import ops

    rng = np.random.default_rng(3)
    x = (rng.random((4, original_dim)) < 0.3).astype("float32")
    p = rng.uniform(0.05, 0.95, (4, original_dim)).astype("float32")
    found = calls.run(function, ops.convert_to_tensor(x), ops.convert_to_tensor(p))
    return found.ok and found.output.shape == (4,) and np.allclose(
        found.output, reconstruction_reference(x, p), rtol=1e-3)


def _scores_record(anomaly_scores: Any, latent_dim: int, original_dim: int) -> CallRecord:
    record = calls.live_or_recorded(
        anomaly_scores, lambda f: extract_anomaly_scores(f, latent_dim, original_dim))
    calls.require_function(record, "anomaly_scores", SCORES_CELL, latent_dim=latent_dim,
                           original_dim=original_dim)
    return record


def _batch(record: CallRecord, call: str) -> np.ndarray:
    return anomaly_inputs(record.seed, int(record.facts.get("original_dim", 0)))[SCORE_CALLS[call]]


def _what(record: CallRecord, call: str) -> str:
    n = len(_batch(record, call))
    return f"anomaly_scores on {'one image' if n == 1 else f'a batch of {n} images'}"


def _values(record: CallRecord, call: str, ref: np.ndarray) -> np.ndarray:
    """The per-image scores, whatever their shape (the shape test judges that)."""
    n, what = len(ref), _what(record, call)
    out = calls.output_of(record, call, what)
    if out.size == n:
        return out.reshape(n)
    if out.ndim == 2 and n in out.shape and 2 in out.shape:  # the two terms side by side
        return out.sum(axis=0 if out.shape[0] == 2 else 1)
    return per_image_values(out, ref, what)


def _score_mistake(record: CallRecord, out: np.ndarray, x: np.ndarray) -> str:
    d = int(record.facts.get("latent_dim", 0))
    z_mean, z_log_var, decoded = _parts(record.seed, d, x)
    recon, kl = reconstruction_reference(x, decoded), kl_reference(z_mean, z_log_var)
    pixels = x.shape[1]
    candidates = {
        "it is the reconstruction term only: add the KL term, kl_divergence(z_mean, z_log_var)":
            recon,
        "it is the KL term only: add the reconstruction term, reconstruction_loss(x, x_decoded)":
            kl,
        f"the reconstruction term is the mean cross-entropy over the pixels: multiply it by "
        f"original_dim ({pixels}), as reconstruction_loss does": recon / pixels + kl,
        "reconstruction_loss takes (x, x_decoded): the arguments are swapped":
            reconstruction_reference(decoded, x) + kl,
        "kl_divergence takes (z_mean, z_log_var): the arguments are swapped":
            recon + kl_reference(z_log_var, z_mean),
        "that is the ELBO: the score is its negative, reconstruction + KL, so that a higher "
        "score means a less likely image": -(recon + kl),
        "the KL term is subtracted: the score adds it, reconstruction + KL": recon - kl,
    }
    for message, value in candidates.items():
        loose = "swapped" in message and "reconstruction" in message  # float32 clipping at 1e-7
        if np.allclose(out, value, rtol=2e-2 if loose else 1e-3, atol=1e-2):
            return message
    return (f"the first image scores {out[0]:.5g} instead of {recon[0] + kl[0]:.5g}, that is "
            "reconstruction_loss(x, x_decoded) + kl_divergence(z_mean, z_log_var) where z_mean "
            "and z_log_var come from the stats_encoder given as argument and x_decoded is what "
            "the decoder given as argument makes of z_mean")


def _compare_scores(record: CallRecord, call: str, again: str | None = None) -> None:
    x = _batch(record, call)
    ref = scores_reference(record.seed, int(record.facts.get("latent_dim", 0)), x)
    out = _values(record, call, ref)
    if not np.all(np.isfinite(out)):
        raise AnswerMismatch(f"{_what(record, call)} returns inf or nan.")
    if again is not None and record.call(again).ok:
        if not np.allclose(out, _values(record, again, ref), rtol=1e-5, atol=1e-4):
            raise AnswerMismatch("anomaly_scores gives different scores for the same images on "
                                 "two calls: use z_mean, not a sampled z: the score must not "
                                 "change from one call to the next.")
    if not np.allclose(out, ref, rtol=1e-3, atol=1e-2):
        raise AnswerMismatch(f"anomaly_scores: {_score_mistake(record, out, x)}.")


def check_anomaly_scores_shape(anomaly_scores: Any, latent_dim: int, original_dim: int) -> None:
    """One score per image: shape (n,), for a batch of 16 and for one image."""
    record = _scores_record(anomaly_scores, latent_dim, original_dim)
    for call in ("typical", "single"):
        n, what = len(_batch(record, call)), _what(record, call)
        out = calls.output_of(record, call, what)
        if out.shape == (n,):
            continue
        if out.ndim == 0 and n == 1:
            raise AnswerMismatch(f"{what} returns a bare number; return shape (1,), one score "
                                 "per image (do not squeeze).")
        if out.size == 1:
            raise AnswerMismatch(f"{what} returns one number; return one score per image, shape "
                                 f"({n},): do not average over the batch.")
        if out.shape == (n, 1):
            raise AnswerMismatch(f"{what} has shape ({n}, 1); return shape ({n},).")
        if out.ndim == 2 and n in out.shape and 2 in out.shape:
            raise AnswerMismatch(f"{what} returns the two terms apart, shape {out.shape}: add "
                                 "them, reconstruction + KL, one score per image.")
        raise AnswerMismatch(f"{what} has shape {out.shape}; the TP asks for ({n},).")


def check_anomaly_scores_values(anomaly_scores: Any, latent_dim: int, original_dim: int) -> None:
    """reconstruction_loss + kl_divergence with the mean code, the same on every call."""
    _compare_scores(_scores_record(anomaly_scores, latent_dim, original_dim),
                    "typical", "typical_again")


def check_anomaly_scores_noise(anomaly_scores: Any, latent_dim: int, original_dim: int) -> None:
    """Hidden: the scores of uniform-noise images (scored twice), and of one image."""
    record = _scores_record(anomaly_scores, latent_dim, original_dim)
    _compare_scores(record, "noise", "noise_again")
    _compare_scores(record, "single")


def check_anomaly_scores_all(anomaly_scores: Any, latent_dim: int, original_dim: int) -> None:
    """The student's check cell for `anomaly_scores`."""
    record = calls.live_or_recorded(
        anomaly_scores, lambda f: extract_anomaly_scores(f, latent_dim, original_dim))
    verdicts = calls.run_verdicts({
        "one score per image": lambda: check_anomaly_scores_shape(record, latent_dim, original_dim),
        "reconstruction + KL with z_mean": lambda: check_anomaly_scores_values(record, latent_dim,
                                                                               original_dim),
    })
    calls.print_verdicts("Checking anomaly_scores:", verdicts,
                         "All checks passed: your scores are the negative ELBO of each image.")
