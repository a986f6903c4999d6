"""Anomaly detection with the VAE, as two exercises: `anomaly_scores` and `roc_auc`.

    anomaly_scores(stats_encoder, decoder, x)   -> one negative ELBO per image, shape (n,),
                                                   with the mean code z_mean (deterministic)
    roc_auc(normal_scores, anomaly_scores)      -> P(a random anomaly scores higher than a
                                                   random normal image), ties counting 1/2

`anomaly_scores` is called with *grader* models whose weights come from the probe seed
(`grader_weights`, numpy), so the judge recomputes the expected scores without Keras. Each batch
is scored twice: a score that changes between calls decoded a sampled z. `roc_auc` is called on
score arrays chosen from the seed (`roc_inputs`). The checks name the usual mistakes: a term
missing, the mean BCE where the TP sums, arguments swapped, the ELBO's sign, the AUC of the other
direction, an accuracy at one threshold, ties not counting 1/2.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vaetp import calls
from vaetp.calls import AnswerMismatch, CallRecord
from vaetp.loss_checks import kl_reference, per_image_values, reconstruction_reference

SCORES_CELL = "the exercise cell of anomaly_scores"
ROC_CELL = "the exercise cell of roc_auc"


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
    for name, batch in SCORE_CALLS.items():
        record.calls[name] = calls.run(function, stats_encoder, decoder, batches[batch].copy())
    return record


def _scores_record(anomaly_scores: Any, latent_dim: int, original_dim: int) -> CallRecord:
    record = calls.live_or_recorded(
        anomaly_scores, lambda f: extract_anomaly_scores(f, latent_dim, original_dim))
    calls.require_function(record, "anomaly_scores", SCORES_CELL)
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
    return (f"the first image scores {out[0]:.5g} where reconstruction_loss(x, x_decoded) + "
            f"kl_divergence(z_mean, z_log_var) gives {recon[0] + kl[0]:.5g}, with z_mean and "
            "z_log_var from the stats_encoder given as argument and x_decoded from the decoder "
            "given as argument, applied to z_mean")


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


# --------------------------------------------------------------------------------------------
# roc_auc
# --------------------------------------------------------------------------------------------

def roc_inputs(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(normal_scores, anomaly_scores) pairs, of different sizes."""
    rng = np.random.default_rng([seed, 18])
    normal = rng.normal(0, 1, 30)
    pairs = {
        "separated": (normal, normal.max() + rng.uniform(0.1, 3, 20)),
        "reversed": (normal, normal.min() - rng.uniform(0.1, 3, 20)),
        "random": (rng.normal(0, 1, 40), rng.normal(0.8, 1, 25)),
        "ties": (rng.integers(0, 5, 30).astype(float), rng.integers(1, 6, 22).astype(float)),
        "all_equal": (np.full(12, 3.0), np.full(7, 3.0)),
    }
    return {k: (a.astype("float64"), b.astype("float64")) for k, (a, b) in pairs.items()}


def auc_reference(normal: np.ndarray, anomaly: np.ndarray, tie: float = 0.5) -> float:
    greater = np.mean(anomaly[:, None] > normal[None, :])
    return float(greater + tie * np.mean(anomaly[:, None] == normal[None, :]))


def extract_roc_auc(function: Any, seed: int = 0) -> CallRecord:
    """Record `roc_auc` on `roc_inputs(seed)` (kernel side)."""
    record = calls.start("roc_auc", function, seed)
    if record.status == calls.OK:
        for name, (normal, anomaly) in roc_inputs(seed).items():
            record.calls[name] = calls.run(function, normal.copy(), anomaly.copy())
    return record


def _roc_record(roc_auc: Any) -> CallRecord:
    record = calls.live_or_recorded(roc_auc, extract_roc_auc)
    calls.require_function(record, "roc_auc", ROC_CELL)
    return record


def _auc(record: CallRecord, call: str, table_ok: bool = False) -> float:
    """The one number returned; with `table_ok`, the mean of a table of pair comparisons (the
    values test names that mistake, so that the ties test can judge the comparisons)."""
    normal, anomaly = roc_inputs(record.seed)[call]
    what = f"roc_auc on {len(normal)} normal and {len(anomaly)} anomalous scores"
    out = calls.output_of(record, call, what)
    table = sorted(out.shape) == sorted((len(normal), len(anomaly)))
    if table and table_ok:
        return float(out.mean())
    if out.size != 1:
        hint = ": average it, the AUC is the mean of that comparison table" if table else ""
        raise AnswerMismatch(f"{what} returns an array of shape {out.shape}; return one number, "
                             f"the AUC{hint}.")
    return float(out.reshape(-1)[0])


def _threshold_accuracies(normal: np.ndarray, anomaly: np.ndarray) -> np.ndarray:
    """Accuracy and balanced accuracy of 'anomaly if score > t', for every threshold t."""
    values = np.unique(np.concatenate([normal, anomaly]))  # thresholds that split the scores:
    thresholds = np.concatenate([(values[1:] + values[:-1]) / 2, values[:-1]])
    tpr = (anomaly[None, :] > thresholds[:, None]).mean(axis=1)
    tnr = (normal[None, :] <= thresholds[:, None]).mean(axis=1)
    total = len(normal) + len(anomaly)
    return np.concatenate([(tpr * len(anomaly) + tnr * len(normal)) / total, (tpr + tnr) / 2])


def check_roc_auc_values(roc_auc: Any) -> None:
    """One number: 1 when every anomaly scores higher, 0 when every anomaly scores lower, and
    the Mann-Whitney probability on overlapping scores."""
    record = _roc_record(roc_auc)
    found = {call: _auc(record, call) for call in ("separated", "reversed", "random")}
    if len(set(found.values())) == 1:
        raise AnswerMismatch(f"roc_auc returns {found['random']:.4g} whatever the scores: it must "
                             "be 1 when every anomaly scores higher than every normal image, 0 "
                             "when every anomaly scores lower.")
    for call, value in found.items():
        normal, anomaly = roc_inputs(record.seed)[call]
        ref = auc_reference(normal, anomaly)
        if math.isclose(value, ref, abs_tol=1e-6):
            continue
        if math.isclose(value, 1 - ref, abs_tol=1e-6):
            raise AnswerMismatch(
                "a higher score must mean 'anomaly': you computed the AUC of the other direction "
                f"({value:.3g} instead of {ref:.3g}); the arguments are (normal_scores, "
                "anomaly_scores).")
        if math.isclose(value, 100 * ref, rel_tol=1e-6):
            raise AnswerMismatch("the AUC is a probability between 0 and 1, not a percentage.")
        if np.any(np.isclose(value, _threshold_accuracies(normal, anomaly), rtol=0, atol=1e-6)):
            raise AnswerMismatch(
                f"roc_auc gives {value:.4g}, the accuracy at one threshold; the AUC averages over "
                "all thresholds: it is the fraction of (anomaly, normal) pairs where the anomaly "
                f"scores higher ({ref:.4g} here).")
        raise AnswerMismatch(
            f"roc_auc gives {value:.4g} on {call} scores where the fraction of (anomaly, normal) "
            f"pairs with the anomaly scoring higher is {ref:.4g}.")


def check_roc_auc_ties(roc_auc: Any) -> None:
    """Hidden: equal scores count 1/2 (integer scores with ties, and all scores equal: 0.5).
    Only the ties are judged: the direction and the scale are the values test's."""
    record = _roc_record(roc_auc)
    for call in ("all_equal", "ties"):
        normal, anomaly = roc_inputs(record.seed)[call]
        value = _auc(record, call, table_ok=True)
        value = value / 100 if value > 1 + 1e-6 else value

        def auc(tie: float) -> tuple[float, float]:  # either direction
            return auc_reference(normal, anomaly, tie), 1 - auc_reference(normal, anomaly, 1 - tie)

        if any(math.isclose(value, a, abs_tol=1e-6) for a in auc(0.5)):
            continue
        where = ("when every score is equal, the AUC is 0.5" if call == "all_equal" else
                 f"on scores with ties it gives {value:.4g} instead of {auc(0.5)[0]:.4g}")
        for tie, words in ((0.0, "0"), (1.0, "1")):
            if any(math.isclose(value, a, abs_tol=1e-6) for a in auc(tie)):
                raise AnswerMismatch(f"roc_auc counts a tie as {words}; an anomaly and a normal "
                                     f"image with equal scores count 1/2 ({where}).")
        raise AnswerMismatch(f"roc_auc: {where}; a tie counts 1/2.")


def check_roc_auc(roc_auc: Any) -> None:
    """The student's check cell for `roc_auc`."""
    record = calls.live_or_recorded(roc_auc, extract_roc_auc)
    verdicts = calls.run_verdicts({
        "the probability that an anomaly scores higher": lambda: check_roc_auc_values(record),
    })
    calls.print_verdicts("Checking roc_auc:", verdicts,
                         "All checks passed: your roc_auc measures how well the scores detect "
                         "anomalies.")
