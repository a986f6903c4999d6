"""Question 5's model answer, measured: other scores from the anomaly VAE of the reference run.

    VAE_TP_MNIST=/path/to/mnist.npz python bench/anomaly_question.py

Runs the student notebook's cells (every solution `%load`'ed, full mode) in this process, up to
the per-digit table of section 17, without the main VAE's 50 epochs and the beta experiment
(the anomaly VAE does not depend on them: it starts from the trial VAE's recorded untrained
weights). It first checks that the anomaly VAE is the reference run's: the 9s' ROC AUC and the
per-digit mean scores must equal those of `images/full_run/run.json`. Then it prints the ROC AUC
of the 9s against the other validation digits for scores that need no new training: the
notebook's score, its two terms apart, and the score divided by the image's ink (the sum of its
pixels), which discounts how much there is to draw.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from run_notebook import load_solutions  # noqa: E402

#: Cells not needed for section 17 (the main VAE's training and what shows it, the beta runs).
SKIPPED = {"fit", "loss-curves", "save-weights", "reconstructions", "latent-scatter", "mosaic",
           "generate-show", "beta-experiment", "beta-figures"}
LAST = "anomaly-per-digit"


def main() -> int:
    os.environ.pop("VAE_TP_FAST", None)
    os.environ.setdefault("MPLBACKEND", "Agg")
    shared = ROOT.parent / "shared" / "data" / "mnist.npz"
    if not os.environ.get("VAE_TP_MNIST") and shared.exists():
        os.environ["VAE_TP_MNIST"] = str(shared)
    student = ROOT / "notebooks" / "vae_tp.ipynb"
    nb = load_solutions(nbformat.read(student, as_version=4), student.parent)
    names: dict = {}
    os.chdir(student.parent)
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.get("id") in SKIPPED:
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith("%"))
        exec(compile(source, cell.get("id", "cell"), "exec"), names)  # noqa: S102 - our notebook
        if cell.get("id") == LAST:
            break
    np = names["np"]
    x_eval, y_eval, digit_scores = names["x_eval"], names["y_eval"], names["digit_scores"]
    roc_auc, nine = names["roc_auc"], names["anomaly_digit"]
    reference = json.loads((ROOT / "images" / "full_run" / "run.json").read_text())["numbers"]
    means = {str(d): round(float(digit_scores[y_eval == d].mean()), 1) for d in range(10)}
    same = {d: (means[d], v["mean_score"]) for d, v in reference["digits"].items()}
    auc = round(roc_auc(digit_scores[y_eval != nine], digit_scores[y_eval == nine]), 3)
    if auc != reference["roc_auc"]["9s"] or any(a != b for a, b in same.values()):
        print(f"not the reference run's anomaly VAE: AUC {auc} against {reference['roc_auc']['9s']}; "
              f"mean scores (here, reference) {same}")
        return 1
    print(f"The reference run's anomaly VAE (AUC of the {nine}s {auc}, the same per-digit means).")
    z_mean, z_log_var = names["stats_encoder"].predict(x_eval, verbose=0)
    decoded = names["trial_decoder"].predict(z_mean, verbose=0)
    ops = names["ops"]
    recon = ops.convert_to_numpy(names["reconstruction_loss"](x_eval, decoded))
    kl = ops.convert_to_numpy(names["kl_divergence"](z_mean, z_log_var))
    ink = x_eval.sum(axis=1)
    scores = {"the notebook's score (reconstruction + KL)": digit_scores,
              "the reconstruction term alone": recon, "the KL term alone": kl,
              "the score divided by the ink (sum of the pixels)": digit_scores / ink}
    print(f"ROC AUC of the {int((y_eval == nine).sum()):,} validation {nine}s against the "
          f"{int((y_eval != nine).sum()):,} other validation digits:")
    for name, score in scores.items():
        print(f"  {name}: {roc_auc(score[y_eval != nine], score[y_eval == nine]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
