"""The notebooks run, as students and instructors run them, in fast mode.

- nbval executes the student notebook with the solution pulled in as `%load` does, and the
  master notebook; only the outputs that are the spec (cells tagged `nbval-check-output`) are compared.
- nbclient executes both once more with a probe cell appended, to check what the TP teaches
  (the loss is 784·BCE + KL, sigma = exp(log_var / 2), any batch size, seeded runs).
- The student notebook as released stops at the exercise, and nowhere earlier.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from course_paths import MASTER, ROOT, STUDENT, master_sizes
from nbclient.exceptions import CellExecutionError
from run_notebook import execute, load_solutions

pytestmark = pytest.mark.slow

PROBE = r'''
import json as _json
import numpy as _np

_probe = {}
# Any batch size: one image, an odd batch.
_probe["one_image"] = list(encoder.predict(x_test[:1], verbose=0).shape)
_probe["seven_images"] = list(ops.shape(encoder(x_test[:7])))
# The spread of z around mu for one image is sigma = exp(log_var / 2).
_moments = keras.Model(inputs, [z_mean, z_log_var])
_mu, _log_var = [ops.convert_to_numpy(t)[0] for t in _moments(x_test[:1])]
_draws = encoder.predict(_np.repeat(x_test[:1], 20000, axis=0), batch_size=5000, verbose=0)
_probe["draw_mean"], _probe["mu"] = _draws.mean(0).tolist(), _mu.tolist()
_probe["draw_std"], _probe["sigma"] = _draws.std(0).tolist(), _np.exp(0.5 * _log_var).tolist()
# The compiled loss is exactly 784 * BCE + KL, averaged over the batch.
_x = x_test[:100]
_x_hat = vae(_x)
_loss = float(ops.convert_to_numpy(vae.compute_loss(x=_x, y=_x, y_pred=_x_hat)))
_mu_b, _lv_b = [ops.convert_to_numpy(t) for t in _moments(_x)]
_p = _np.clip(ops.convert_to_numpy(_x_hat), 1e-7, 1 - 1e-7)
_bce_sum = -(_x * _np.log(_p) + (1 - _x) * _np.log(1 - _p)).sum(1)
_kl = -0.5 * (1 + _lv_b - _mu_b**2 - _np.exp(_lv_b)).sum(1)
_probe["loss"], _probe["formula"] = _loss, float(_bce_sum.mean() + _kl.mean())
_probe["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
_probe["epochs"] = epochs
# Sections 16 and 17 retrain one model: restart puts back every variable exactly, and beta, a
# keras.Variable, reaches the compiled step (loss - reconstruction is beta * KL for any beta).
_probe["kl_by_beta"] = {}
for _beta in (0.1, 5.0):  # the trained anomaly VAE: a KL of a few nats
    kl_weight.assign(_beta)
    _r = trial_vae.evaluate(x_test[:500], x_test[:500], batch_size=100, verbose=0, return_dict=True)
    _probe["kl_by_beta"][str(_beta)] = (_r["loss"] - _r["reconstruction_loss"]) / _beta
restart(trial_vae, untrained)
_now = [v.numpy() for v in trial_vae.variables + trial_vae.optimizer.variables]
_probe["restart_exact"] = len(_now) == len(untrained) and all(
    _np.array_equal(a, b) for a, b in zip(_now, untrained))
_probe["kl_weight_after_restart"] = float(kl_weight.numpy())
print("PROBE" + _json.dumps(_probe))
'''


def fast_env(tmp: Path) -> dict[str, str]:
    return {"VAE_TP_FAST": "1", "VAE_TP_FIGURES": str(tmp / "figures")}


def run_with_probe(nb: nbformat.NotebookNode, tmp: Path, monkeypatch) -> tuple[nbformat.NotebookNode, dict]:
    for key, value in fast_env(tmp).items():
        monkeypatch.setenv(key, value)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    execute(nb, tmp)
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    line = next(line for line in text.splitlines() if line.startswith("PROBE"))
    return nb, json.loads(line[len("PROBE"):])


@pytest.fixture(scope="module")
def student_run(tmp_path_factory):
    """The student notebook after the student uncommented `%load` and ran the cell twice."""
    tmp = tmp_path_factory.mktemp("student")
    nb = load_solutions(nbformat.read(STUDENT, as_version=4), STUDENT.parent)
    with pytest.MonkeyPatch.context() as mp:
        return (tmp, *run_with_probe(nb, tmp, mp))


@pytest.fixture(scope="module")
def master_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("master")
    nb = nbformat.read(MASTER, as_version=4)
    with pytest.MonkeyPatch.context() as mp:
        return (tmp, *run_with_probe(nb, tmp, mp))


def stream_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.output_type == "stream")


def cell(nb, cell_id):
    return next(c for c in nb.cells if c.get("id") == cell_id)


def test_student_loads_the_solution_and_the_check_cell_says_it_is_right(student_run):
    _, nb, _ = student_run
    exercise = cell(nb, "decoder-exercise")
    assert exercise.source.startswith("# %load ../solutions/decoder_vae.py\n")
    assert "All checks passed: your decoder matches the TP." in stream_text(cell(nb, "decoder-check"))


def test_every_figure_of_the_tp_is_drawn(student_run):
    tmp, nb, _ = student_run
    names = {p.stem for p in (tmp / "figures").glob("*.png")}
    assert {"loss_curves", "reconstructions"} <= names
    # the scatter and the mosaic need a 2-D latent space: with other sizes the notebook skips them
    assert ({"latent_scatter", "generated_mosaic"} <= names) is (master_sizes()["latent_dim"] == 2)
    if plots_can_draw_models():
        assert {"model_encoder", "model_decoder"} <= names
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 5


def plots_can_draw_models() -> bool:
    from vaetp.plots import graphviz_available

    return graphviz_available()


def test_the_encoder_takes_any_batch_size(student_run):
    probe = student_run[2]
    latent_dim = master_sizes()["latent_dim"]
    assert probe["one_image"] == [1, latent_dim]
    assert probe["seven_images"] == [7, latent_dim]


def test_the_trial_vae_restarts_exactly_and_its_beta_reaches_the_compiled_step(student_run):
    """A student who reruns the beta experiment gets the same runs: `restart` puts back every
    variable of the model and of Adam; and the weight beta is read by the compiled step (a
    Python number would be frozen in it, and every run would train with the first beta)."""
    probe = student_run[2]
    assert probe["restart_exact"]
    assert probe["kl_weight_after_restart"] == 1.0
    kl_small, kl_large = probe["kl_by_beta"]["0.1"], probe["kl_by_beta"]["5.0"]
    assert kl_small > 0.5
    assert kl_large == pytest.approx(kl_small, rel=1e-2)  # a frozen beta: a factor 50 apart


def test_sampling_uses_sigma_equal_exp_half_log_var(student_run):
    probe = student_run[2]
    for std, sigma in zip(probe["draw_std"], probe["sigma"]):
        assert std == pytest.approx(sigma, rel=0.05)
    for mean, mu in zip(probe["draw_mean"], probe["mu"]):
        assert mean == pytest.approx(mu, abs=0.05 * max(probe["sigma"]))


def test_the_loss_is_784_bce_plus_kl(student_run):
    probe = student_run[2]
    assert probe["loss"] == pytest.approx(probe["formula"], rel=1e-4)


def test_fast_mode_trains_briefly_and_the_loss_falls(student_run):
    probe = student_run[2]
    assert probe["epochs"] == 2
    val = probe["history"]["val_loss"]
    assert len(val) == 2 and val[1] < val[0] < 300


def test_weights_are_saved_with_keras3_naming(student_run):
    tmp = student_run[0]
    assert (tmp / "weights" / "vae_mlp_mnist.weights.h5").stat().st_size > 1_000_000


def test_seeded_runs_give_the_same_numbers(student_run, master_run):
    """Master and student-with-solution are two runs of the same code: same seed, same losses."""
    assert student_run[2]["history"] == master_run[2]["history"]


def test_released_notebook_stops_right_after_the_first_exercise_with_a_plain_message(tmp_path, monkeypatch):
    """Run All on the release: the check cell says `kl_divergence` is missing, the first graded
    test stops the run with the same words, and no cell before it fails."""
    monkeypatch.setenv("VAE_TP_FAST", "1")
    nb = nbformat.read(STUDENT, as_version=4)
    with pytest.raises(CellExecutionError) as raised:
        execute(nb, tmp_path)
    assert raised.value.ename == "AnswerMismatch"
    assert "there is no `kl_divergence`" in raised.value.evalue
    assert "there is no `kl_divergence`" in stream_text(cell(nb, "kl-check"))
    errors = [c.id for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == ["test-kl-shape"]


def with_spec_outputs(student: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """nbgrader clears outputs on release: take the spec outputs from the master."""
    master = {c.id: c for c in nbformat.read(MASTER, as_version=4).cells}
    for c in student.cells:
        if c.cell_type == "code" and "nbval-check-output" in c.metadata.get("tags", []):
            c.outputs = master[c.id].outputs
            c.execution_count = master[c.id].execution_count
            assert c.outputs, f"the master stores no output for spec cell {c.id}"
    return student


def nbval(path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "VAE_TP_FAST": "1"}
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
               "--rootdir", str(path.parent), "-c", os.devnull, str(path)]
    return subprocess.run(command, cwd=path.parent, env=env, capture_output=True, text=True,
                          timeout=900)


def test_nbval_student_notebook_with_the_solution_loaded(tmp_path):
    nb = load_solutions(nbformat.read(STUDENT, as_version=4), STUDENT.parent)
    path = tmp_path / "vae_tp.ipynb"
    nbformat.write(with_spec_outputs(nb), path)
    done = nbval(path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout


def test_nbval_master_notebook(tmp_path):
    path = tmp_path / "vae_tp.ipynb"
    path.write_bytes(MASTER.read_bytes())
    done = nbval(path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_nbval_catches_a_wrong_parameter_count(tmp_path):
    """The stored spec output is really compared: a decoder with another hidden width fails
    nbval, and the diff shows the parameter counts the master's sizes give."""
    from vaetp.grading.example_class import wrong_width

    sizes = master_sizes()
    latent, hidden, pixels = sizes["latent_dim"], sizes["intermediate_dim"], sizes["original_dim"]
    nb = nbformat.read(MASTER, as_version=4)
    exercise = cell(nb, "decoder-exercise")
    changed = exercise.source.replace("Dense(intermediate_dim", f"Dense({wrong_width(hidden)}")
    assert changed != exercise.source
    exercise.source = changed
    path = tmp_path / "vae_tp.ipynb"
    nbformat.write(nb, path)
    done = nbval(path)
    assert done.returncode != 0
    expected = (f"{latent * hidden + hidden:,}", f"{hidden * pixels + pixels:,}")
    assert any(count in done.stdout for count in expected), done.stdout[-2000:]


def test_make_run_writes_the_executed_tp_and_its_figures(tmp_path):
    env = {**os.environ, "VAE_TP_FAST": "1"}
    command = [sys.executable, str(ROOT / "tools" / "run_notebook.py"), str(STUDENT),
               "--out", str(tmp_path / "run")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "vae_tp.ipynb").exists()
    assert (tmp_path / "run" / "vae_tp.html").stat().st_size > 100_000
    assert (tmp_path / "run" / "figures" / "loss_curves.png").exists()
    mosaic = tmp_path / "run" / "figures" / "generated_mosaic.png"
    assert mosaic.exists() is (master_sizes()["latent_dim"] == 2)  # 2-D codes only
