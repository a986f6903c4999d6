"""The convolutional VAE exercise: the reference passes, each realistic mistake is named."""

from __future__ import annotations

import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers, ops

from vaetp import calls, conv_checks
from vaetp.calls import AnswerMismatch

LATENT, BUDGET = 2, 300_000


class Sampling(layers.Layer):
    """The notebook's layer: z = mu + sigma * epsilon, and the KL added to the loss."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, z_mean, z_log_var):
        epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
        self.add_loss(ops.mean(kl))
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def encoder(dense=16, outputs="all", flat=False, convolutions=True):
    """The reference encoder, or one mistake made on it."""
    enc_in = keras.Input((784,) if flat else (28, 28, 1))
    h = enc_in
    if convolutions and not flat:
        h = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(h)
        h = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Dense(dense, activation="relu")(h if flat else layers.Flatten()(h))
    m, lv = layers.Dense(LATENT)(h), layers.Dense(LATENT)(h)
    z = m if outputs == "z = z_mean" else Sampling()(m, lv)
    return keras.Model(enc_in, z if outputs == "only z" else [m, lv, z])


def decoder(out_act="sigmoid", end="conv", convolutions=True):
    """The reference decoder, or one mistake made on it."""
    dec_in = keras.Input((LATENT,))
    if not convolutions:
        h = layers.Dense(64, activation="relu")(dec_in)
        out = layers.Dense(784, activation=out_act)(h)
        return keras.Model(dec_in, out if end == "flat" else layers.Reshape((28, 28, 1))(out))
    h = layers.Dense(7 * 7 * 64, activation="relu")(dec_in)
    h = layers.Reshape((7, 7, 64))(h)
    h = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(h)
    out = layers.Conv2DTranspose(1, 3, padding="same", activation=out_act)(h)
    if end == "flat":
        return keras.Model(dec_in, layers.Flatten()(out))
    if end == "no channel":
        return keras.Model(dec_in, layers.Reshape((28, 28))(out))
    return keras.Model(dec_in, out)


@pytest.fixture(scope="module")
def reference():
    return encoder(), decoder()


@pytest.fixture(scope="module")
def reference_record(reference):
    return conv_checks.extract_conv_vae(*reference, LATENT)


def mistake(check, enc, dec):
    """The message a student gets from `check` (AssertionError when the check passes)."""
    record = conv_checks.extract_conv_vae(enc, dec, LATENT)
    args = (record, record, LATENT) + ((BUDGET,) if check is conv_checks.check_conv_budget else ())
    with pytest.raises(AnswerMismatch) as err:
        check(*args)
    return str(err.value)


def verdicts(record):
    return {
        "shapes": lambda: conv_checks.check_conv_shapes(record, record, LATENT),
        "budget": lambda: conv_checks.check_conv_budget(record, record, LATENT, BUDGET),
        "hidden": lambda: conv_checks.check_conv_outputs_are_probabilities(record, record, LATENT),
    }


# --------------------------------------------------------------------------------------------
# The reference, and equivalent builds
# --------------------------------------------------------------------------------------------

def test_reference_solution_passes_every_check(reference, capsys):
    conv_encoder, conv_decoder = reference
    conv_checks.check_conv_shapes(conv_encoder, conv_decoder, LATENT)
    conv_checks.check_conv_budget(conv_encoder, conv_decoder, LATENT, BUDGET)
    conv_checks.check_conv_outputs_are_probabilities(conv_encoder, conv_decoder, LATENT)
    conv_checks.check_conv_vae(conv_encoder, conv_decoder, LATENT, BUDGET)
    assert "All checks passed" in capsys.readouterr().out


def count(record, role):
    """(parameters, convolutions) of a recorded model, as the judge counts them."""
    found = conv_checks.program_parameters(record.facts[role]["program"])
    return sum(p for p, _, _ in found), sum(k in conv_checks.CONVOLUTIONS for _, k, _ in found)


def test_reference_has_134_165_parameters(reference_record, reference):
    assert (count(reference_record, "encoder"), count(reference_record, "decoder")) == \
        ((69_076, 2), (65_089, 3))
    assert [reference[0].count_params(), reference[1].count_params()] == [69_076, 65_089]
    assert "Sampling" in conv_checks._classes(reference_record.facts["encoder"]["program"])


def test_a_student_with_nested_sequential_models_passes(reference):
    """Unbuilt Sequential blocks inside a functional encoder, a Sequential decoder."""
    blocks = keras.Sequential([layers.Conv2D(16, 3, strides=2, activation="relu"),
                               layers.Conv2D(32, 3, strides=2, activation="relu"),
                               layers.Flatten()])
    enc_in = keras.Input((28, 28, 1))
    h = blocks(enc_in)
    m, lv = layers.Dense(LATENT)(h), layers.Dense(LATENT)(h)
    conv_encoder = keras.Model(enc_in, [m, lv, Sampling()(m, lv)])
    conv_decoder = keras.Sequential([layers.Dense(7 * 7 * 8, activation="relu"),
                                     layers.Reshape((7, 7, 8)),
                                     layers.Conv2DTranspose(1, 4, strides=4, activation="sigmoid")])
    record = conv_checks.extract_conv_vae(conv_encoder, conv_decoder, LATENT)
    for check in verdicts(record).values():
        check()
    assert count(record, "encoder") == (conv_encoder.count_params(), 2)
    assert count(record, "decoder") == (conv_decoder.count_params(), 1)


# --------------------------------------------------------------------------------------------
# Each mistake, and what the student is told
# --------------------------------------------------------------------------------------------

def test_a_student_with_a_dense_512_after_flatten_is_told_the_count_and_the_culprit():
    message = mistake(conv_checks.check_conv_budget, encoder(dense=512), decoder())
    assert "1,692,101 parameters" in message and "300,000" in message
    assert "largest layer is a Dense in conv_encoder, with 1,606,144" in message
    assert "after Flatten" in message and "stride" in message


def test_a_student_who_builds_an_mlp_is_told_to_add_a_convolution():
    conv_encoder, conv_decoder = encoder(convolutions=False), decoder(convolutions=False)
    message = mistake(conv_checks.check_conv_budget, conv_encoder, conv_decoder)
    assert "neither model has a convolution" in message and "Conv2D" in message
    assert "Dense, Flatten, Reshape, Sampling" in message
    conv_checks.check_conv_shapes(conv_encoder, conv_decoder, LATENT)  # one mistake, one check


def test_a_student_whose_decoder_returns_flat_pixels_is_told_to_reshape():
    message = mistake(conv_checks.check_conv_shapes, encoder(), decoder(end="flat"))
    assert "784 pixels" in message and "Reshape((28, 28, 1))" in message


def test_a_student_whose_decoder_drops_the_channel_axis_is_told_so():
    message = mistake(conv_checks.check_conv_shapes, encoder(), decoder(end="no channel"))
    assert "without the channel axis" in message


def test_a_student_whose_encoder_returns_only_z_is_told_to_return_three_outputs():
    conv_encoder = encoder(outputs="only z")
    message = mistake(conv_checks.check_conv_shapes, conv_encoder, decoder())
    assert "returns one array ((5, 2))" in message and "[z_mean, z_log_var, z]" in message
    # one mistake costs one check: the hidden check does not judge that encoder again
    conv_checks.check_conv_outputs_are_probabilities(conv_encoder, decoder(), LATENT)


def test_a_student_whose_encoder_takes_flat_vectors_is_told_to_reshape_x_train():
    message = mistake(conv_checks.check_conv_shapes, encoder(flat=True), decoder())
    assert "shape (28, 28, 1)" in message and "x.reshape(-1, 28, 28, 1)" in message


def test_a_student_whose_decoder_ends_without_a_sigmoid_is_told_so_by_the_hidden_check():
    conv_encoder, conv_decoder = encoder(), decoder(out_act=None)
    conv_checks.check_conv_shapes(conv_encoder, conv_decoder, LATENT)
    message = mistake(conv_checks.check_conv_outputs_are_probabilities, conv_encoder, conv_decoder)
    assert 'activation="sigmoid"' in message


def test_a_student_whose_z_is_not_sampled_is_told_so_by_the_hidden_check():
    message = mistake(conv_checks.check_conv_outputs_are_probabilities,
                      encoder(outputs="z = z_mean"), decoder())
    assert "z equals z_mean" in message and "Sampling" in message


@pytest.mark.parametrize("conv_encoder, expected", [
    pytest.param(None, "there is no `conv_encoder`", id="missing"),
    pytest.param(lambda x: x, "`conv_encoder` is not a Keras model (it is a function)",
                 id="function"),
    pytest.param(3, "`conv_encoder` is not a Keras model (it is a int)", id="int"),
])
def test_a_missing_or_non_model_encoder_is_recorded_and_named(conv_encoder, expected, reference,
                                                               capsys):
    record = conv_checks.extract_conv_vae(conv_encoder, reference[1], LATENT)
    blob = calls.to_bytes(record)
    for check in verdicts(calls.from_bytes(blob, conv_checks.EXERCISE)).values():
        with pytest.raises(AnswerMismatch, match=re.escape(expected)):
            check()
    conv_checks.check_conv_vae(conv_encoder, reference[1], LATENT, BUDGET)
    assert "2 problems to fix" in capsys.readouterr().out


def test_an_encoder_that_crashes_is_recorded_not_raised(reference):
    class Broken(keras.Model):
        def call(self, x):
            raise RuntimeError("my bug")

    message = mistake(conv_checks.check_conv_shapes, Broken(), reference[1])
    assert "RuntimeError: my bug" in message


# --------------------------------------------------------------------------------------------
# The record: bytes round trip, and a judge without Keras
# --------------------------------------------------------------------------------------------

def judged(record):
    found = {}
    for name, check in verdicts(record).items():
        try:
            check()
            found[name] = ""
        except AnswerMismatch as err:
            found[name] = str(err)
    return found


@pytest.mark.parametrize("build", [
    pytest.param(lambda: (encoder(), decoder()), id="reference"),
    pytest.param(lambda: (encoder(dense=512), decoder(out_act=None)), id="two-mistakes"),
])
def test_a_record_is_judged_the_same_after_bytes(build):
    record = conv_checks.extract_conv_vae(*build(), LATENT, seed=3)
    again = calls.from_bytes(calls.to_bytes(record), conv_checks.EXERCISE)
    assert again.facts == record.facts and again.seed == 3
    assert judged(again) == judged(record)
    for name, call in record.calls.items():
        assert call.error == again.calls[name].error
        np.testing.assert_array_equal(call.output, again.calls[name].output)


def test_the_judge_imports_no_keras(tmp_path):
    record = conv_checks.extract_conv_vae(encoder(dense=512), decoder(), LATENT)
    (tmp_path / "record.npz").write_bytes(calls.to_bytes(record))
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from vaetp import calls, conv_checks\n"
        "record = calls.from_bytes(Path('record.npz').read_bytes(), conv_checks.EXERCISE)\n"
        "conv_checks.check_conv_shapes(record, None, 2)\n"
        "try:\n"
        "    conv_checks.check_conv_budget(record, None, 2, 300_000)\n"
        "except calls.AnswerMismatch as err:\n"
        "    print('judged:', err)\n"
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "judged: the two models have 1,692,101 parameters" in done.stdout


def test_a_notebook_without_a_record_is_told_to_build_the_encoder():
    """What the judge holds when the probe left nothing: a bare MISSING record."""
    record = calls.CallRecord(conv_checks.EXERCISE, calls.MISSING)
    for check in verdicts(record).values():
        with pytest.raises(AnswerMismatch, match="there is no `conv_encoder`"):
            check()


def test_a_student_whose_encoder_adds_noise_without_the_kl_is_told_by_the_hidden_check():
    enc_in = keras.Input((28, 28, 1))
    h = layers.Flatten()(layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(enc_in))
    m, lv = layers.Dense(LATENT)(h), layers.Dense(LATENT)(h)
    z = layers.GaussianNoise(1.0)(m, training=True)  # samples, but adds no KL term
    message = mistake(conv_checks.check_conv_outputs_are_probabilities,
                      keras.Model(enc_in, [m, lv, z]), decoder())
    assert "adds no KL term" in message
