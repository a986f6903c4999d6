"""The detection score of section 17, as an exercise: `roc_auc(normal_scores, anomaly_scores)`.

The ROC AUC of detecting anomalies by a *higher* score: the probability that a random anomaly
scores higher than a random normal image, ties counting one half (the Mann-Whitney statistic).
The function is called on score arrays chosen from a seed (`roc_inputs`): separated, reversed,
overlapping, and (hidden test) with ties; the checks judge what it returned (`vaetp.calls`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vaetp import calls
from vaetp.calls import AnswerMismatch, CallRecord

ROC_CELL = "the exercise cell of section 17"

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
    """The TP's AUC (`vaetp.grading.reference`): judge side only, hidden from a graded kernel."""
    from vaetp.grading import reference

    return reference.auc(normal, anomaly, tie)


def extract_roc_auc(function: Any, seed: int = 0) -> CallRecord:
    """Record `roc_auc` on `roc_inputs(seed)` (kernel side)."""
    record = calls.start("roc_auc", function, seed)
    if record.status == calls.OK:
        for name, (normal, anomaly) in roc_inputs(seed).items():
            record.calls[name] = calls.run(function, normal.copy(), anomaly.copy())
    return record


def _roc_record(roc_auc: Any) -> CallRecord:
    return calls.function_record(roc_auc, "roc_auc", ROC_CELL, extract_roc_auc)


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
    """The student's check cell for `roc_auc`: every property the grader checks."""
    record = calls.live_or_recorded(roc_auc, extract_roc_auc)
    verdicts = calls.run_verdicts({
        "the probability that an anomaly scores higher": lambda: check_roc_auc_values(record),
        "equal scores count one half": lambda: check_roc_auc_ties(record),
    })
    calls.print_verdicts("Checking roc_auc:", verdicts,
                         "All checks passed: your roc_auc measures how well the scores detect "
                         "anomalies.")
