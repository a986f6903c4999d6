"""One set of numbers: what the notebook's prose, the README and the docs quote about the TP's
results comes from its reference run, `images/full_run/run.json` (`make reference-run`:
bench/student.py --record, the student notebook with every solution loaded, in full mode, in
one kernel alone; its figures are the README's).

When the reference run is recorded again, these tests name each sentence that now quotes a
stale number, with the text it should read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN = json.loads((ROOT / "images" / "full_run" / "run.json").read_text(encoding="utf-8"))
NUMBERS = RUN["numbers"]
MASTER = ROOT / "source" / "vae" / "vae_tp.ipynb"


def flat(text: str) -> str:
    """Prose with its line breaks and Markdown quote marks taken out."""
    return re.sub(r"\s+", " ", re.sub(r"^> ?", "", text, flags=re.M))


def master_cell(cell_id: str) -> str:
    nb = nbformat.read(MASTER, as_version=4)
    return flat(next(c.source for c in nb.cells if c.get("id") == cell_id))


def document(name: str) -> str:
    return flat((ROOT / name).read_text(encoding="utf-8"))


def section(number: str) -> dict:
    """The reference run's measurements of section `number` (time, CPU, memory)."""
    return next(v for k, v in RUN["sections"].items() if k.split(".")[0] == number)


def quotes() -> list[tuple[str, str]]:
    """(where, the text it must contain), each text made from the reference run."""
    n, last = NUMBERS, NUMBERS["last_epoch"]
    val, val_rec = last["val_loss"], last["val_reconstruction_loss"]
    train, train_rec = last["loss"], last["reconstruction_loss"]
    beta = {float(b): v for b, v in n["beta"].items()}
    digits = {int(d): v["mean_score"] for d, v in n["digits"].items()}
    nines = n["digits"]["9"]["images"]
    others = sum(v["images"] for d, v in n["digits"].items() if d != "9")
    inside = n["inside_grid_percent_by_digit"]
    by_epoch = n["val_loss_by_epoch"]
    rest = {d: s for d, s in digits.items() if d not in (1, 7, 9)}
    assert all(digits[9] < s for s in rest.values()) and digits[1] < digits[7] < digits[9]
    train_by_epoch = [float(v) for v in re.findall(r" - loss: ([\d.]+)", RUN["printed"]["fit"])]
    # the last epoch whose validation loss is below its training loss, plus one
    crossing = max(i for i, (t, v) in enumerate(zip(train_by_epoch, by_epoch)) if v < t) + 2
    wall, cpu, peak = RUN["seconds"], RUN["cpu_seconds"], RUN["peak_rss_mb"] / 1024
    return [
        ("master:md-title", f"({wall:.0f} s in the TP's reference run"),
        ("master:md-loss-curves", f"ends around {round(val, -1):.0f} nats per image"),
        ("master:answer-overfitting",
         f"validation loss of {val:.1f} nats, of which {val_rec:.1f} are reconstruction and "
         f"{val - val_rec:.1f} (about {100 * (val - val_rec) / val:.0f}%) KL; training ends at "
         f"{train:.1f} ({train_rec:.1f} + {train - train_rec:.1f})"),
        ("master:answer-latent-space",
         f"{n['inside_grid_percent']}% of the codes fall inside the square that holds 81%"),
        ("master:answer-latent-space",
         f"the 0s, 1s and 7s ({inside['0']}%, {inside['1']}% and {inside['7']}% inside)"),
        ("master:answer-beta",
         f"$\\beta = 0.1$ gives reconstruction {beta[0.1][0]:.1f}, KL {beta[0.1][1]:.1f}; "
         f"$\\beta = 1$ gives {beta[1.0][0]:.1f} and {beta[1.0][1]:.1f}; $\\beta = 5$ gives "
         f"{beta[5.0][0]:.1f} and {beta[5.0][1]:.1f}"),
        ("master:answer-beta",
         f"smallest for $\\beta = 1$ ({beta[1.0][2]:.1f}, against {beta[0.1][2]:.1f} and "
         f"{beta[5.0][2]:.1f})"),
        ("master:answer-anomaly",
         f"AUC {n['roc_auc']['uniform noise']:.3f}), the 9s not at all: {n['roc_auc']['9s']:.3f}"),
        ("master:answer-anomaly", f"On {nines:,} 9s and {others:,} other validation digits"),
        ("master:answer-anomaly",
         f"The 1s, thin strokes, score {digits[1]:.1f} nats on average, the 7s {digits[7]:.1f}; "
         f"the 9s ({digits[9]:.1f}) score below all seven other digits (from {min(rest.values()):.1f} "
         f"for the {min(rest, key=rest.get)}s to {max(rest.values()):.1f} for the "
         f"{max(rest, key=rest.get)}s)"),
        ("master:answer-overfitting",
         f"the curves cross near epoch {crossing}, and the validation loss is flat over the last "
         f"epochs (best {min(by_epoch):.1f} at epoch {by_epoch.index(min(by_epoch)) + 1})"),
        ("README.md", f"ROC AUC of the 9s {n['test']['roc_auc']:.3f} on the test set"),
        ("master:md-conv",
         f"({n['conv']['parameters']:,} parameters, about a sixth of the MLP VAE's "
         f"{n['mlp_parameters']:,}) reached a validation loss of {n['conv']['val_loss']:.1f} nats "
         f"after 5 epochs in the reference run, where the MLP VAE had {by_epoch[4]:.1f} after 5 "
         f"epochs and {by_epoch[9]:.1f} after 10"),
        ("README.md", f"the TP's reference run ({wall:.0f} s on a 2-core machine"),
        ("README.md", f"{wall:.0f} s wall, {cpu:.0f} CPU-seconds, peak {peak:.2f} GiB"),
        ("README.md", f"test loss {n['test']['mlp_loss']:.1f} nats (validation {val:.1f})"),
        ("README.md",
         f"The main VAE's training is {section('13')['seconds']:.0f} s of it, the $\\beta$ "
         f"experiment {section('16')['seconds']:.0f} s, the convolutional VAE "
         f"{section('18')['seconds']:.0f} s, the anomaly VAE {section('17')['seconds']:.0f} s"),
        ("docs/performance.md", f"| 1 | {wall:.0f} / {wall:.0f} | {cpu:.0f} | {peak:.2f} |"),
        ("docs/jupyterhub.md", f"one student alone, {wall:.0f} s wall and {cpu:.0f} CPU-seconds"),
        ("docs/jupyterhub.md", f"peaks at **{peak:.2f} GiB**"),
    ]


@pytest.mark.parametrize("where, text", quotes(), ids=lambda v: v[:60] if isinstance(v, str) else v)
def test_the_prose_quotes_the_reference_run(where, text):
    found = master_cell(where.split(":", 1)[1]) if where.startswith("master:") else document(where)
    assert text in found, f"{where} should say: {text!r} (images/full_run/run.json)"


def test_the_reference_run_is_whole_and_recent_enough_to_quote():
    """A run that died, or that ran a notebook other than the TP's in full mode, is no reference."""
    assert RUN["killed"] is None
    assert NUMBERS["epochs"] == 50 and len(NUMBERS["beta"]) == 3 and len(NUMBERS["digits"]) == 10
    assert "training: 50,000 images, validation: 10,000, test: 10,000" in RUN["printed"]["training-plan"]
    sections = [name.split(".")[0] for name in RUN["sections"]]
    assert sections[-1] == "19"


def test_the_readme_shows_the_figures_of_the_reference_run():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"\(images/full_run/([\w.]+\.png)\)", readme))
    on_disk = {p.name for p in (ROOT / "images" / "full_run").glob("*.png")}
    assert shown and shown == on_disk, (shown, on_disk)
