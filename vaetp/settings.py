"""Environment variables that change how the TP runs, read in one place.

`VAE_TP_FAST=1` shortens training for CI and autograding (the TP's full run is 50 epochs);
`VAE_TP_MNIST` names the MNIST file (see `vaetp.data`); `VAE_TP_FIGURES` names a folder
where every figure of the TP is also saved as a PNG (used by `make run`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

FAST_ENV = "VAE_TP_FAST"
MNIST_ENV = "VAE_TP_MNIST"
FIGURES_ENV = "VAE_TP_FIGURES"

#: Training length in fast mode: enough to see the loss fall and every figure drawn.
FAST_EPOCHS = 2
FAST_TRAIN_IMAGES = 5_000
FAST_VALIDATION_IMAGES = 2_000
#: The later trainings (beta, anomaly detection, convolutional VAE) in fast mode.
FAST_EXTRA_EPOCHS = 1
FAST_EXTRA_TRAIN_IMAGES = 2_000
FAST_EXTRA_VALIDATION_IMAGES = 1_000

_TRUE = {"1", "true", "yes", "on"}


GRADING_ENV = "VAE_TP_GRADING"


def grading() -> bool:
    """True inside a grading sandbox (the grader sets `VAE_TP_GRADING=1`): skip what no grade
    depends on."""
    return os.environ.get(GRADING_ENV, "").strip().lower() in _TRUE


def fast_mode() -> bool:
    """True when `VAE_TP_FAST` is set to 1/true/yes/on (any case)."""
    return os.environ.get(FAST_ENV, "").strip().lower() in _TRUE


@dataclass(frozen=True)
class TrainingPlan:
    """How long to train: the TP's values, or the shortened ones of fast mode."""

    epochs: int
    train_images: int | None  # None: the whole training set
    validation_images: int | None
    fast: bool

    @property
    def speed_options(self) -> dict[str, object]:
        """`compile` options of the TP's trainings: run 100 batches per call of the compiled
        training step and, in a full run, compile it with XLA (in fast mode, compiling with XLA
        takes longer than the short trainings it would speed up)."""
        return {"jit_compile": not self.fast, "steps_per_execution": 100}

    def describe(self) -> str:
        if not self.fast:
            return f"Full run: {self.epochs} epochs on every training image."
        return (
            f"Fast mode ({FAST_ENV}=1): {self.epochs} epochs on {self.train_images:,} training "
            f"and {self.validation_images:,} validation images. Unset {FAST_ENV} for the TP's full run."
        )


def training_plan(epochs: int, *, extra: bool = False) -> TrainingPlan:
    """The TP's `epochs` unchanged, or the fast-mode plan when `VAE_TP_FAST` is on. `extra`:
    one of the later trainings (beta, anomaly, convolutional VAE), shorter still in fast mode."""
    if fast_mode() and extra:
        return TrainingPlan(min(epochs, FAST_EXTRA_EPOCHS), FAST_EXTRA_TRAIN_IMAGES,
                            FAST_EXTRA_VALIDATION_IMAGES, True)
    if fast_mode():
        return TrainingPlan(min(epochs, FAST_EPOCHS), FAST_TRAIN_IMAGES, FAST_VALIDATION_IMAGES, True)
    return TrainingPlan(epochs, None, None, False)


def figures_dir() -> Path | None:
    """Folder named by `VAE_TP_FIGURES` (created on demand), or None when unset."""
    value = os.environ.get(FIGURES_ENV, "").strip()
    if not value:
        return None
    path = Path(value)
    path.mkdir(parents=True, exist_ok=True)
    return path
