"""The TP's answers, as the judge computes them: the KL divergence, the reconstruction loss and
the ROC AUC, in NumPy (float64).

Only the judge and the student's own check cells (outside grading) call these. The graded
kernel never can: the sandbox hides the whole `vaetp.grading` package from it
(`vaetp.grading.sandbox.grader_only_paths`), so a submission cannot import a reference answer
and hand its values over as its own. The exercise modules import this module lazily, inside the
checks, never at import time, because the grading kernel imports them to record the student's
work.
"""

from __future__ import annotations

import numpy as np

#: Keras clips probabilities to [EPSILON, 1 - EPSILON] in binary_crossentropy.
EPSILON = 1e-7


def kl(z_mean: np.ndarray, z_log_var: np.ndarray) -> np.ndarray:
    """KL( N(z_mean, diag exp(z_log_var)) || N(0, I) ), one value per row."""
    m, v = np.asarray(z_mean, "float64"), np.asarray(z_log_var, "float64")
    return 0.5 * np.sum(np.square(m) + np.exp(v) - 1.0 - v, axis=-1)


def bce_sum(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The sum over the pixels of the binary cross-entropies (Keras' clipping included), i.e.
    original_dim * binary_crossentropy(x, p), one value per row."""
    x = np.asarray(x, "float64")
    p = np.clip(np.asarray(p, "float64"), EPSILON, 1 - EPSILON)
    return -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=-1)


def auc(normal: np.ndarray, anomaly: np.ndarray, tie: float = 0.5) -> float:
    """P(anomaly score > normal score) + tie * P(equal): the ROC AUC, ties counting `tie`."""
    normal, anomaly = np.asarray(normal, "float64"), np.asarray(anomaly, "float64")
    greater = np.mean(anomaly[:, None] > normal[None, :])
    return float(greater + tie * np.mean(anomaly[:, None] == normal[None, :]))
