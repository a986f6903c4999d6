"""The two loss terms as exercises (sections 8 and 12): `kl_divergence` and `reconstruction_loss`.

The TP's solutions pass; each usual mistake is named in plain words and costs the test that it
is about; records judged in another process give the same verdicts as the live functions.
"""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest
from check_cells import assert_check_cell_agrees
from course_paths import ROOT, SOLUTIONS
from keras import ops

from vaetp import calls, loss_checks

LATENT, PIXELS = 2, 784
KL_TESTS = {"shape": loss_checks.check_kl_shape, "values": loss_checks.check_kl_values,
            "wide": loss_checks.check_kl_wide}
RECON_TESTS = {"shape": loss_checks.check_reconstruction_shape,
               "values": loss_checks.check_reconstruction_values,
               "wide": loss_checks.check_reconstruction_wide}


def solution(name):
    namespace = {"keras": keras, "ops": ops, "original_dim": PIXELS, "latent_dim": LATENT}
    exec((SOLUTIONS / name).read_text(), namespace)  # noqa: S102
    return namespace


def failures(tests, function, dim):
    """The graded tests' failures; the student's check cell must say the same."""
    found = {}
    for name, check in tests.items():
        try:
            check(function, dim)
        except AssertionError as err:
            found[name] = str(err)
    check_cell = (loss_checks.check_kl_divergence if tests is KL_TESTS
                  else loss_checks.check_reconstruction_loss)
    assert_check_cell_agrees(found, check_cell, function, dim)
    return found


def test_the_tps_kl_divergence_passes_every_test_at_any_latent_size():
    kl = solution("kl_divergence.py")["kl_divergence"]
    for dim in (1, 2, 10):
        assert failures(KL_TESTS, kl, dim) == {}


@pytest.mark.parametrize(("wrong", "failed", "words"), [
    (lambda m, v: 0.5 * ops.sum(1 + v - ops.square(m) - ops.exp(v), axis=-1),
     {"values", "wide"}, "the sign is flipped"),
    (lambda m, v: -0.5 * ops.sum(1 + v - ops.square(m) - ops.exp(0.5 * v), axis=-1),
     {"values", "wide"}, "not exp(z_log_var / 2)"),
    (lambda m, v: -ops.sum(1 + v - ops.square(m) - ops.exp(v), axis=-1),
     {"values"}, "the factor 1/2 is missing"),
    (lambda m, v: -0.5 * ops.mean(1 + v - ops.square(m) - ops.exp(v), axis=-1),
     {"values"}, "it averages over the latent coordinates"),
    (lambda m, v: ops.mean(-0.5 * ops.sum(1 + v - ops.square(m) - ops.exp(v), axis=-1)),
     {"shape"}, "returns one number for a batch of 16 images"),
    (lambda m, v: -0.5 * (1 + v - ops.square(m) - ops.exp(v)),
     {"shape"}, "one per coordinate"),
    (lambda m, v: -0.5 * ops.sum(v - ops.square(m) - ops.exp(v), axis=-1),
     {"values", "wide"}, "not 0, when z_mean = 0"),
], ids=["sign", "sigma", "no-half", "mean-over-coordinates", "batch-mean", "per-coordinate",
        "no-one"])
def test_a_student_with_a_wrong_kl_is_told_the_mistake_and_loses_only_its_tests(wrong, failed, words):
    found = failures(KL_TESTS, wrong, LATENT)
    assert set(found) == failed, found
    assert any(words in message for message in found.values()), found


def test_a_missing_or_crashing_kl_is_named(capsys):
    assert "there is no `kl_divergence`" in failures(KL_TESTS, None, LATENT)["shape"]
    assert "raised NameError" in failures(KL_TESTS, lambda m, v: undefined_name, LATENT)["values"]  # noqa: F821
    loss_checks.check_kl_divergence(None, LATENT)
    assert "3 problems to fix" in capsys.readouterr().out  # one per graded test, hidden included


def test_the_tps_reconstruction_loss_passes_every_test():
    assert failures(RECON_TESTS, solution("reconstruction_loss.py")["reconstruction_loss"], PIXELS) == {}


def manual_bce(x, x_decoded):
    p = ops.clip(x_decoded, 1e-7, 1 - 1e-7)
    return -ops.sum(x * ops.log(p) + (1 - x) * ops.log(1 - p), axis=-1)


@pytest.mark.parametrize(("wrong", "failed", "words"), [
    (lambda x, p: keras.losses.binary_crossentropy(x, p), {"values"}, "multiply by original_dim (784)"),
    (lambda x, p: PIXELS * keras.losses.binary_crossentropy(p, x), {"values", "wide"},
     "the arguments are swapped"),
    (lambda x, p: ops.mean(PIXELS * keras.losses.binary_crossentropy(x, p)), {"shape"},
     "returns one number for a batch of 8"),
    (lambda x, p: ops.sum(ops.square(x - p), axis=-1), {"values", "wide"}, "it is a squared error"),
    (lambda x, p: -manual_bce(x, p), {"values", "wide"}, "the sign is flipped"),
], ids=["mean-bce", "swapped", "batch-mean", "squared-error", "negative"])
def test_a_student_with_a_wrong_reconstruction_loss_is_told(wrong, failed, words):
    found = failures(RECON_TESTS, wrong, PIXELS)
    assert set(found) == failed, found
    assert any(words in message for message in found.values()), found


def test_a_hand_written_cross_entropy_passes():
    assert failures(RECON_TESTS, manual_bce, PIXELS) == {}


def test_a_record_is_judged_like_the_live_function_without_keras(tmp_path):
    kl = solution("kl_divergence.py")["kl_divergence"]
    wrong = lambda m, v: -ops.sum(1 + v - ops.square(m) - ops.exp(v), axis=-1)  # noqa: E731
    for function in (kl, wrong):
        record = calls.from_bytes(calls.to_bytes(loss_checks.extract_kl(function, LATENT, seed=0)),
                                  "kl_divergence")
        assert failures(KL_TESTS, record, LATENT) == failures(KL_TESTS, function, LATENT)
    blob = tmp_path / "kl.npz"
    blob.write_bytes(calls.to_bytes(loss_checks.extract_kl(wrong, LATENT, seed=9)))
    script = (
        "import sys, pathlib\n"
        "from vaetp import calls, loss_checks\n"
        f"r = calls.from_bytes(pathlib.Path({str(blob)!r}).read_bytes(), 'kl_divergence')\n"
        "loss_checks.check_kl_shape(r, 2)\n"
        "try:\n    loss_checks.check_kl_values(r, 2)\nexcept AssertionError as e:\n    print(e)\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow')]\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "the factor 1/2 is missing" in done.stdout


def test_the_inputs_come_from_the_seed():
    a, b = loss_checks.kl_inputs(3, LATENT), loss_checks.kl_inputs(3, LATENT)
    assert all(np.array_equal(a[k][0], b[k][0]) for k in a)
    assert not np.array_equal(loss_checks.kl_inputs(4, LATENT)["typical"][0], a["typical"][0])


def test_a_numpy_kl_is_told_that_the_sampling_layer_needs_keras_ops():
    def numpy_kl(m, v):
        m, v = np.asarray(m), np.asarray(v)
        return -0.5 * np.sum(1 + v - m**2 - np.exp(v), axis=-1)

    found = failures(KL_TESTS, numpy_kl, LATENT)
    assert set(found) == {"shape"} and "write it with keras.ops" in found["shape"]


def test_a_kl_written_with_tensorflow_functions_passes_on_tensorflow():
    """tf.reduce_sum / tf.exp work where the TP calls the KL (the Sampling layer, traced by
    TensorFlow): the check does not call them NumPy, nor refuse them."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("a TensorFlow-backend answer")
    import tensorflow as tf

    def tf_kl(m, v):
        return -0.5 * tf.reduce_sum(1 + v - tf.square(m) - tf.exp(v), axis=-1)

    assert failures(KL_TESTS, tf_kl, LATENT) == {}


def test_a_numpy_reconstruction_loss_is_told_before_vae_fit_crashes():
    """It gives the right numbers on arrays, but `fit` traces the loss with symbolic tensors
    (`Cannot convert a symbolic tf.Tensor to a numpy array`): the shape test says so, once."""
    def numpy_bce(x, p):
        x, p = np.asarray(x, "float64"), np.clip(np.asarray(p, "float64"), 1e-7, 1 - 1e-7)
        return -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=-1)

    found = failures(RECON_TESTS, numpy_bce, PIXELS)
    assert set(found) == {"shape"}, found
    assert "inside vae.fit" in found["shape"] and "keras.losses.binary_crossentropy" in found["shape"]
