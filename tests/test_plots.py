"""Figures: saved where `make run` asks, and the model drawing degrades to one helpful line."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from vaetp import plots, settings


@pytest.fixture(autouse=True)
def no_windows(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")


def test_figures_are_saved_when_the_folder_is_set(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_TP_FIGURES", str(tmp_path / "figs"))
    plots.loss_curves({"loss": [200.0, 170.0], "val_loss": [190.0, 165.0]})
    grid = np.linspace(-1.6, 1.6, 3)
    plots.digit_mosaic(np.random.default_rng(0).random((9, 784)), grid)
    plots.latent_scatter(np.zeros((20, 2)), np.arange(20) % 10)
    assert {p.name for p in (tmp_path / "figs").iterdir()} == {
        "loss_curves.png", "generated_mosaic.png", "latent_scatter.png"}


def test_no_folder_no_files(monkeypatch):
    monkeypatch.delenv("VAE_TP_FIGURES", raising=False)
    assert settings.figures_dir() is None


def test_model_drawing_without_graphviz_prints_how_to_get_it(monkeypatch, capsys):
    monkeypatch.setattr(plots.shutil, "which", lambda name: None)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])
    assert plots.draw_model(model) is None
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "graphviz" in out[0].lower() and "pydot" in out[0]


@pytest.mark.skipif(not plots.graphviz_available(), reason="Graphviz's dot is not installed")
def test_model_drawing_with_graphviz(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_TP_FIGURES", str(tmp_path))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)], name="tiny")
    image = plots.draw_model(model)
    assert image is not None and image.data[:4] == b"\x89PNG"
    assert (tmp_path / "model_tiny.png").exists()


@pytest.mark.parametrize(("value", "fast"), [("1", True), ("true", True), ("", False), ("0", False)])
def test_fast_mode_switch(monkeypatch, value, fast):
    monkeypatch.setenv("VAE_TP_FAST", value)
    plan = settings.training_plan(50)
    assert plan.fast is fast
    assert plan.epochs == (settings.FAST_EPOCHS if fast else 50)
    assert (plan.train_images is None) is (not fast)


def test_fast_mode_compiles_without_xla_and_the_full_run_with_it(monkeypatch):
    """In fast mode compiling with XLA takes longer than the short trainings it speeds up."""
    monkeypatch.setenv("VAE_TP_FAST", "1")
    assert settings.training_plan(50).speed_options == {"jit_compile": False, "steps_per_execution": 100}
    monkeypatch.setenv("VAE_TP_FAST", "")
    assert settings.training_plan(50).speed_options == {"jit_compile": True, "steps_per_execution": 100}


def test_the_loss_curves_show_the_two_terms_apart_when_logged(monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.delenv("VAE_TP_FIGURES", raising=False)
    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(plt.gcf()))
    plots.loss_curves({"loss": [200.0, 170.0], "reconstruction_loss": [195.0, 164.0],
                       "val_loss": [190.0, 165.0], "val_reconstruction_loss": [185.0, 159.5]})
    figure = shown[-1]
    assert len(figure.axes) == 2
    kl = [line for line in figure.axes[1].lines if line.get_label() == "KL, training"][0]
    assert list(kl.get_ydata()) == [5.0, 6.0]


def test_the_fast_mode_sizes_quoted_in_the_notebook_and_readme_are_the_settings():
    """Fast mode's sizes are set once (vaetp/settings.py); the prose that quotes them follows."""
    import re

    import nbformat

    from course_paths import MASTER, ROOT

    said = (f"{settings.FAST_EPOCHS} epochs on {settings.FAST_TRAIN_IMAGES:,}",
            f"{settings.FAST_EXTRA_EPOCHS} epoch on {settings.FAST_EXTRA_TRAIN_IMAGES:,}")
    master = " ".join(c.source for c in nbformat.read(MASTER, as_version=4).cells)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for text in (re.sub(r"\s+", " ", master), re.sub(r"\s+", " ", readme)):
        assert all(s in text for s in said), said
