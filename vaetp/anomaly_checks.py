"""Anomaly detection with the VAE (section 17), the score: `anomaly_scores`.

    anomaly_scores(stats_encoder, decoder, x)   -> one negative ELBO per image, shape (n,),
                                                   with the mean code z_mean (deterministic)

(The detection score, `roc_auc`, is in vaetp/roc_checks.py.)

`anomaly_scores` is called with *grader* models whose weights come from the probe seed
(`grader_weights`, numpy), so the judge recomputes the expected scores without Keras. Each batch
is scored twice: a score that changes between calls decoded a sampled z.

While it is recorded, the notebook's `kl_divergence` and `reconstruction_loss` are replaced by
the grader's *stand-ins* (`stand_in_loss_functions`): two functions of the same arguments whose
coefficients come from the probe seed, and which are *not* the TP's losses. So a mistake in
either loss costs points in its own exercise only, and the kernel holds no copy of the TP's
answers to take (they live in `vaetp.grading.reference`, which a graded kernel cannot import).
A score is right when it is stand-in reconstruction + stand-in KL (the student called the two
functions) or the TP's reconstruction + KL (the student wrote the formulas out). The checks
name the usual mistakes: a term missing, the mean BCE where the TP sums, arguments swapped, the
ELBO's sign.
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

#: The names in the notebook that the stand-ins replace while `anomaly_scores` is recorded.
LOSS_NAMES = ("reconstruction_loss", "kl_divergence")

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


def stand_in_weights(seed: int, latent_dim: int, original_dim: int) -> dict[str, np.ndarray]:
    """The stand-ins' coefficients, from the probe seed (known to the judge, not to a student
    who writes a notebook in advance)."""
    rng = np.random.default_rng([seed, 19])
    d, pixels = int(latent_dim), int(original_dim)
    weights = {"kl_mean": rng.uniform(0.3, 2, d), "kl_var": rng.uniform(0.3, 2, d),
               "kl_log_var": rng.uniform(0.3, 2, d), "rec_error": rng.uniform(0.5, 2, pixels),
               "rec_level": rng.uniform(0.5, 2, pixels)}
    return {k: v.astype("float32") for k, v in weights.items()}


def stand_in_kl(xp: Any, w: dict[str, np.ndarray], z_mean: Any, z_log_var: Any) -> Any:
    """The stand-in for `kl_divergence` (xp: `keras.ops` in the kernel, NumPy in the judge)."""
    return xp.sum(w["kl_mean"] * xp.square(z_mean) + w["kl_var"] * xp.exp(z_log_var)
                  - w["kl_log_var"] * z_log_var, axis=-1)


def stand_in_reconstruction(xp: Any, w: dict[str, np.ndarray], x: Any, x_decoded: Any) -> Any:
    """The stand-in for `reconstruction_loss` (not symmetric in its arguments, as the BCE)."""
    return xp.sum(w["rec_error"] * xp.square(x - x_decoded) + w["rec_level"] * x_decoded,
                  axis=-1)


def _families(seed: int, latent_dim: int, original_dim: int) -> list[tuple[Any, Any]]:
    """Every (reconstruction, kl) pair a right score may use, in NumPy float64: the stand-ins
    (the student called the notebook's functions), the TP's (the student wrote the formulas
    out), and the two mixes."""
    w = {k: v.astype("float64") for k, v in stand_in_weights(seed, latent_dim, original_dim).items()}

    def recon(x: Any, p: Any) -> np.ndarray:
        return stand_in_reconstruction(np, w, np.asarray(x, "float64"), np.asarray(p, "float64"))

    def kl(m: Any, v: Any) -> np.ndarray:
        return stand_in_kl(np, w, np.asarray(m, "float64"), np.asarray(v, "float64"))

    return [(recon, kl), (reconstruction_reference, kl_reference),
            (reconstruction_reference, kl), (recon, kl_reference)]


def extract_anomaly_scores(function: Any, latent_dim: int, original_dim: int,
                           seed: int = 0) -> CallRecord:
    """Record `anomaly_scores` with the grader models (runs student code: kernel side)."""
    record = calls.start("anomaly_scores", function, seed, latent_dim=int(latent_dim),
                         original_dim=int(original_dim))
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
    with stand_in_loss_functions(function, stand_in_weights(seed, d, pixels)):
        for name, batch in SCORE_CALLS.items():
            record.calls[name] = calls.run(function, stats_encoder, decoder, batches[batch].copy())
    return record


@contextlib.contextmanager
def stand_in_loss_functions(function: Any, weights: dict[str, np.ndarray]) -> Iterator[None]:
    """While `anomaly_scores` is recorded, the notebook's `kl_divergence` and
    `reconstruction_loss` (defined or not) are the grader's stand-ins, callable with the
    student's own argument names; they are put back afterwards. (An `anomaly_scores` that writes
    the formulas out is judged on the TP's formulas.)"""
    from keras import ops

    def kl(z_mean: Any, z_log_var: Any) -> Any:
        return stand_in_kl(ops, weights, ops.convert_to_tensor(z_mean, "float32"),
                           ops.convert_to_tensor(z_log_var, "float32"))

    def reconstruction(x: Any, x_decoded: Any) -> Any:
        return stand_in_reconstruction(ops, weights, ops.convert_to_tensor(x, "float32"),
                                       ops.convert_to_tensor(x_decoded, "float32"))

    names = getattr(function, "__globals__", None)
    if not isinstance(names, dict):
        yield
        return
    missing = object()
    saved = {name: names.get(name, missing) for name in LOSS_NAMES}
    for name, stand_in in (("kl_divergence", kl), ("reconstruction_loss", reconstruction)):
        mine = saved[name]
        names[name] = _with_signature_of(mine, stand_in) if callable(mine) else stand_in
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is missing:
                names.pop(name, None)
            else:
                names[name] = value


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


def _scores_record(anomaly_scores: Any, latent_dim: int, original_dim: int) -> CallRecord:
    return calls.function_record(anomaly_scores, "anomaly_scores", SCORES_CELL,
                                 extract_anomaly_scores, latent_dim=latent_dim,
                                 original_dim=original_dim)


def _batch(record: CallRecord, call: str) -> np.ndarray:
    return anomaly_inputs(record.seed, int(record.facts["original_dim"]))[SCORE_CALLS[call]]


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


def _candidates(recon: np.ndarray, kl: np.ndarray, swapped_recon: np.ndarray,
                swapped_kl: np.ndarray, pixels: int) -> dict[str, np.ndarray]:
    return {
        "it is the reconstruction term only: add the KL term, kl_divergence(z_mean, z_log_var)":
            recon,
        "it is the KL term only: add the reconstruction term, reconstruction_loss(x, x_decoded)":
            kl,
        f"the reconstruction term is the mean cross-entropy over the pixels: multiply it by "
        f"original_dim ({pixels}), as reconstruction_loss does": recon / pixels + kl,
        "reconstruction_loss takes (x, x_decoded): the arguments are swapped":
            swapped_recon + kl,
        "kl_divergence takes (z_mean, z_log_var): the arguments are swapped": recon + swapped_kl,
        "that is the ELBO: the score is its negative, reconstruction + KL, so that a higher "
        "score means a less likely image": -(recon + kl),
        "the KL term is subtracted: the score adds it, reconstruction + KL": recon - kl,
    }


def _score_mistake(record: CallRecord, out: np.ndarray, x: np.ndarray) -> str:
    d = int(record.facts["latent_dim"])
    z_mean, z_log_var, decoded = _parts(record.seed, d, x)
    pixels = x.shape[1]
    for recon_of, kl_of in _families(record.seed, d, pixels):
        recon, kl = recon_of(x, decoded), kl_of(z_mean, z_log_var)
        candidates = _candidates(recon, kl, recon_of(decoded, x), kl_of(z_log_var, z_mean), pixels)
        for message, value in candidates.items():
            loose = "swapped" in message and "reconstruction" in message  # float32 clipping at 1e-7
            if np.allclose(out, value, rtol=2e-2 if loose else 1e-3, atol=1e-2):
                return message
    recon_of, kl_of = _families(record.seed, d, pixels)[0]
    right = recon_of(x, decoded)[0] + kl_of(z_mean, z_log_var)[0]
    return (f"the first image scores {out[0]:.5g} instead of {right:.5g}, that is "
            "reconstruction_loss(x, x_decoded) + kl_divergence(z_mean, z_log_var) where z_mean "
            "and z_log_var come from the stats_encoder given as argument and x_decoded is what "
            "the decoder given as argument makes of z_mean (while your function is checked, "
            "`reconstruction_loss` and `kl_divergence` are the grader's stand-ins, so that a "
            "mistake in them is not counted twice)")


def _compare_scores(record: CallRecord, call: str, again: str | None = None) -> None:
    x = _batch(record, call)
    d = int(record.facts["latent_dim"])
    z_mean, z_log_var, decoded = _parts(record.seed, d, x)
    refs = [recon_of(x, decoded) + kl_of(z_mean, z_log_var)
            for recon_of, kl_of in _families(record.seed, d, x.shape[1])]
    out = _values(record, call, refs[0])
    if not np.all(np.isfinite(out)):
        raise AnswerMismatch(f"{_what(record, call)} returns inf or nan.")
    if again is not None and record.call(again).ok:
        if not np.allclose(out, _values(record, again, refs[0]), rtol=1e-5, atol=1e-4):
            raise AnswerMismatch("anomaly_scores gives different scores for the same images on "
                                 "two calls: use z_mean, not a sampled z: the score must not "
                                 "change from one call to the next.")
    if not any(np.allclose(out, ref, rtol=1e-3, atol=1e-2) for ref in refs):
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
    """The student's check cell for `anomaly_scores`: every property the grader checks."""
    record = calls.live_or_recorded(
        anomaly_scores, lambda f: extract_anomaly_scores(f, latent_dim, original_dim))
    verdicts = calls.run_verdicts({
        "one score per image": lambda: check_anomaly_scores_shape(record, latent_dim, original_dim),
        "reconstruction + KL with z_mean": lambda: check_anomaly_scores_values(record, latent_dim,
                                                                               original_dim),
        "noise images, scored twice, and a single image":
            lambda: check_anomaly_scores_noise(record, latent_dim, original_dim),
    })
    calls.print_verdicts("Checking anomaly_scores:", verdicts,
                         "All checks passed: each score is the reconstruction loss of the image decoded at "
                         "z_mean plus its KL: the negative ELBO with z_mean in place of a sample of z.")
