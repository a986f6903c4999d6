"""A student who skips an exercise loses its points only: when grading, a missing or unusable
`kl_divergence` or `decoder` is replaced, after its exercise is recorded, by the grader's
stand-in (vaetp.stand_ins), so that the encoder, the VAE and the convolutional VAE can still be
built and judged. (tests/test_grading.py grades a student who skips each exercise.)"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import ops  # noqa: E402

from vaetp import stand_ins  # noqa: E402
from vaetp.grading import reference  # noqa: E402
from vaetp.grading.exercises import EXERCISES, stand_in_code  # noqa: E402

SIZES = {"latent_dim": 2, "intermediate_dim": 16, "original_dim": 784}


def right_kl(z_mean, z_log_var):
    return -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def test_a_notebook_without_kl_divergence_gets_a_stand_in_that_is_not_the_kl():
    names: dict = {}
    assert stand_ins.put_in_place(names, "kl_divergence", SIZES)
    rng = np.random.default_rng(0)
    m, v = rng.normal(size=(5, 2)).astype("float32"), rng.normal(size=(5, 2)).astype("float32")
    out = ops.convert_to_numpy(names["kl_divergence"](ops.convert_to_tensor(m), ops.convert_to_tensor(v)))
    assert out.shape == (5,) and np.all(np.isfinite(out))
    assert not np.allclose(out, reference.kl(m, v), rtol=0.1)  # gives nothing of the answer away


def test_a_working_kl_divergence_is_kept_even_a_wrong_one():
    wrong = lambda m, v: -right_kl(m, v)  # noqa: E731 - the sign flipped: its own test's mistake
    for mine in (right_kl, wrong):
        names = {"kl_divergence": mine}
        assert not stand_ins.put_in_place(names, "kl_divergence", SIZES)
        assert names["kl_divergence"] is mine


@pytest.mark.parametrize("broken", [
    None, "not a function", lambda m, v: ops.mean(right_kl(m, v)),  # one number per batch
    lambda m, v: 1 / 0,
])
def test_a_kl_divergence_the_encoder_cannot_use_is_replaced(broken):
    names = {"kl_divergence": broken}
    assert stand_ins.put_in_place(names, "kl_divergence", SIZES)
    assert names["kl_divergence"] is not broken


def test_a_notebook_without_a_usable_decoder_gets_one_of_the_tps_shapes():
    wrong_input = keras.Sequential([keras.Input((3,)), keras.layers.Dense(784)])
    for broken in (None, wrong_input, lambda z: z):
        names = {"decoder": broken}
        assert stand_ins.put_in_place(names, "decoder", SIZES)
        decoder = names["decoder"]
        out = ops.convert_to_numpy(decoder(ops.zeros((4, 2))))
        assert out.shape == (4, 784) and np.all((out >= 0) & (out <= 1))
        assert decoder.name == "decoder" and decoder.count_params() == 3 * 16 + 17 * 784


def test_a_decoder_of_the_right_shapes_is_kept_even_a_wrong_one():
    relu_output = keras.Sequential([keras.Input((2,)), keras.layers.Dense(256, activation="relu"),
                                    keras.layers.Dense(784, activation="relu")])
    names = {"decoder": relu_output}
    assert not stand_ins.put_in_place(names, "decoder", SIZES)
    assert names["decoder"] is relu_output


def test_the_stand_ins_are_declared_once_on_the_exercises_others_build_on():
    assert [e.name for e in EXERCISES if e.stand_in] == ["kl_divergence", "decoder"]
    with pytest.raises(ValueError, match="no stand-in"):
        stand_ins.put_in_place({}, "vae", SIZES)


def test_the_grader_runs_the_stand_in_code_on_the_kernels_names():
    """The code the grader sends after the decoder is recorded, run as a kernel would."""
    decoder = next(e for e in EXERCISES if e.name == "decoder")
    names: dict = {}

    class Shell:
        user_ns = names

    exec(stand_in_code(decoder, {**SIZES, "beta": 1}), {"get_ipython": lambda: Shell})
    assert names["decoder"].output_shape == (None, 784)
