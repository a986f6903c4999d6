"""What the judge expects of a model exercise, computed from the grader's own weights: judge side
only. Like `vaetp.grading.reference`, this module is hidden from a graded kernel (the sandbox
mounts an empty folder over `vaetp/grading`), so a submission cannot call it to make a record of
its own (a red-team review did, through the VAE's expected codes and their KL)."""

from __future__ import annotations

import numpy as np

from vaetp.grading import reference


def encoder_codes(x: np.ndarray, weights: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """z_mean, z_log_var and the mean KL of the TP's encoder (Dense relu, then two Dense heads)
    with `weights` ({"hidden", "z_mean", "z_log_var"}: [kernel, bias]) on the images `x`."""
    w = {k: [np.asarray(a, "float64") for a in v] for k, v in weights.items()}
    h = np.maximum(np.asarray(x, "float64") @ w["hidden"][0] + w["hidden"][1], 0)
    mean = h @ w["z_mean"][0] + w["z_mean"][1]
    log_var = h @ w["z_log_var"][0] + w["z_log_var"][1]
    return {"mean": mean, "log_var": log_var, "kl": np.float64(reference.kl(mean, log_var).mean())}
