"""The convolutional VAE exercise: the reference passes, each realistic mistake is named."""

from __future__ import annotations

import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from check_cells import assert_check_cell_agrees
from keras import layers, ops

from vaetp import calls, conv_checks
from vaetp.calls import AnswerMismatch
from course_paths import master_sizes

SIZES = master_sizes()
LATENT, BUDGET = SIZES["latent_dim"], SIZES["conv_budget"]


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
    z = m if outputs == "z = z_mean" else Sampling()(*((lv, m) if outputs == "swapped" else (m, lv)))
    if outputs == "z first":
        return keras.Model(enc_in, [z, m, lv])
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


def test_the_record_counts_the_reference_models_parameters_as_keras_does(reference_record, reference):
    sizes = [reference[0].count_params(), reference[1].count_params()]
    assert (count(reference_record, "encoder"), count(reference_record, "decoder")) == \
        ((sizes[0], 2), (sizes[1], 3))
    if LATENT == 2:  # the TP's latent size
        assert sizes == [69_076, 65_089]
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
    total = encoder(dense=512).count_params() + decoder().count_params()  # 1,692,101 for 2-d codes
    message = mistake(conv_checks.check_conv_budget, encoder(dense=512), decoder())
    assert f"{total:,} parameters" in message and f"{BUDGET:,}" in message
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
    assert f"returns one array ((5, {LATENT}))" in message and "[z_mean, z_log_var, z]" in message
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


def test_a_student_who_calls_sampling_on_log_var_then_mean_loses_one_point_and_is_told():
    """Sampling(z_log_var, z_mean): the shapes are right and the budget holds; only the hidden
    check fails, and it names the order."""
    conv_encoder, conv_decoder = encoder(outputs="swapped"), decoder()
    record = conv_checks.extract_conv_vae(conv_encoder, conv_decoder, LATENT)
    conv_checks.check_conv_shapes(record, record, LATENT)
    conv_checks.check_conv_budget(record, record, LATENT, BUDGET)
    message = mistake(conv_checks.check_conv_outputs_are_probabilities, conv_encoder, conv_decoder)
    assert "calls Sampling on (z_log_var, z_mean)" in message and "(z_mean, z_log_var)" in message


def test_a_student_who_returns_z_first_is_told_the_order():
    message = mistake(conv_checks.check_conv_outputs_are_probabilities,
                      encoder(outputs="z first"), decoder())
    assert "sampled z as output 0" in message and "[z_mean, z_log_var, z], in that order" in message


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
    assert "3 problems to fix" in capsys.readouterr().out  # one per graded test, hidden included


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
    """The graded tests' verdicts; the student's check cell must say the same."""
    found = {}
    for name, check in verdicts(record).items():
        try:
            check()
            found[name] = ""
        except AnswerMismatch as err:
            found[name] = str(err)
    assert_check_cell_agrees({k: v for k, v in found.items() if v}, conv_checks.check_conv_vae,
                             record, record, LATENT, BUDGET)
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
        f"conv_checks.check_conv_shapes(record, None, {LATENT})\n"
        "try:\n"
        f"    conv_checks.check_conv_budget(record, None, {LATENT}, {BUDGET})\n"
        "except calls.AnswerMismatch as err:\n"
        "    print('judged:', err)\n"
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    total = encoder(dense=512).count_params() + decoder().count_params()
    assert f"judged: the two models have {total:,} parameters" in done.stdout


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


# --------------------------------------------------------------------------------------------
# The judge runs the models in NumPy: its layers match Keras'
# --------------------------------------------------------------------------------------------

def _small_encoder(*blocks):
    enc_in = keras.Input((28, 28, 1))
    h = enc_in
    for block in blocks:
        h = block(h)
    h = layers.Flatten()(h)
    m, lv = layers.Dense(LATENT)(h), layers.Dense(LATENT)(h)
    return keras.Model(enc_in, [m, lv, Sampling()(m, lv)])


@pytest.mark.parametrize("blocks", [
    pytest.param(lambda: [layers.Conv2D(4, 5, strides=3, padding="same", activation="tanh")],
                 id="conv-5-stride-3-same"),
    pytest.param(lambda: [layers.Conv2D(4, 4, strides=2, activation="elu"),
                          layers.MaxPooling2D(), layers.BatchNormalization()],
                 id="conv-valid-maxpool-batchnorm"),
    pytest.param(lambda: [layers.Conv2D(3, 3, padding="same"), layers.LeakyReLU(),
                          layers.AveragePooling2D(3), layers.Dropout(0.3)],
                 id="leaky-avgpool-dropout"),
])
@pytest.mark.parametrize("decoder_end", [
    pytest.param(lambda h: layers.Conv2DTranspose(1, 3, strides=4, padding="same",
                                                  activation="sigmoid")(h), id="convT-k3-s4-same"),
    pytest.param(lambda h: layers.Conv2D(1, 3, padding="same", activation="sigmoid")(
        layers.UpSampling2D(4)(h)), id="upsampling-conv"),
    pytest.param(lambda h: layers.Activation("sigmoid")(layers.Conv2DTranspose(
        1, 2, strides=4)(h)), id="convT-k2-s4-valid"),
])
def test_the_judge_computes_what_keras_computes(blocks, decoder_end):
    dec_in = keras.Input((LATENT,))
    h = layers.Reshape((7, 7, 2))(layers.Dense(98, activation="softplus")(dec_in))
    conv_decoder = keras.Model(dec_in, decoder_end(h))
    record = conv_checks.extract_conv_vae(_small_encoder(*blocks()), conv_decoder, LATENT, seed=8)
    assert judged(record) == {"shapes": "", "budget": "", "hidden": ""}


def test_the_probe_puts_the_students_weights_back(reference):
    before = [w.copy() for m in reference for w in m.get_weights()]
    conv_checks.extract_conv_vae(*reference, LATENT, seed=5)
    after = [w for m in reference for w in m.get_weights()]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def test_a_model_with_a_layer_the_judge_cannot_run_is_told_which():
    conv_encoder = _small_encoder(layers.Conv2D(4, 3, dilation_rate=2))
    message = mistake(conv_checks.check_conv_shapes, conv_encoder, decoder())
    assert "cannot run conv_encoder: it uses dilated or grouped convolutions" in message


# --------------------------------------------------------------------------------------------
# Forged records: made-up numbers, counts and layers pass no test
# --------------------------------------------------------------------------------------------

def forged_old_style(seed):
    """The attack on the former record: outputs made up, counts and classes asserted."""
    rng = np.random.default_rng(0)
    record = calls.CallRecord(conv_checks.EXERCISE, seed=seed)
    record.facts["latent_dim"] = LATENT
    layer_list = [["Conv2D", 320], ["Dense", 6], ["Sampling", 0]]
    record.facts["encoder"] = {"status": "ok", "type": "Functional", "outputs": 3, "losses": 1,
                               "params": 1000, "convolutions": 1, "layers": layer_list}
    record.facts["decoder"] = {"status": "ok", "type": "Functional", "params": 1000,
                               "convolutions": 1, "layers": [["Conv2DTranspose", 10]]}
    for call in ("encoder", "encoder_again"):
        mean = rng.normal(size=(5, LATENT))
        for i, out in enumerate([mean, np.zeros((5, LATENT)), mean + rng.normal(size=(5, LATENT))]):
            record.calls[f"{call}[{i}]"] = calls.Call(output=out)
    record.calls["decoder"] = calls.Call(output=np.full((5, 28, 28, 1), 0.5))
    return record


def test_a_record_of_made_up_numbers_and_counts_passes_nothing():
    found = judged(calls.from_bytes(calls.to_bytes(forged_old_style(3)), conv_checks.EXERCISE))
    assert all(found.values()), found


def test_a_made_up_record_with_a_small_program_passes_nothing(reference_record):
    """The attacker copies a real program of a small model, keeps outputs made up."""
    record = forged_old_style(reference_record.seed)
    for role in ("encoder", "decoder"):
        record.facts[role]["program"] = reference_record.facts[role]["program"]
    found = judged(calls.from_bytes(calls.to_bytes(record), conv_checks.EXERCISE))
    assert all(found.values()), found
    assert "not what its layers compute" in found["shapes"]


def test_a_real_record_whose_program_claims_fewer_parameters_passes_no_budget():
    """The attacker records a real model over the budget, then edits its program to shrink the
    Dense layer after Flatten: the judge's outputs no longer match the record's."""
    import copy
    import json

    record = conv_checks.extract_conv_vae(encoder(dense=512), decoder(), LATENT, seed=11)
    forged = copy.deepcopy(record)
    text = json.dumps(forged.facts["encoder"]["program"]).replace("[3136, 512]", "[3136, 4]")
    forged.facts["encoder"]["program"] = json.loads(text.replace('"units": 512', '"units": 4'))
    found = judged(calls.from_bytes(calls.to_bytes(forged), conv_checks.EXERCISE))
    assert found["budget"] and found["shapes"], found


def test_a_real_record_replayed_for_another_seed_passes_nothing(reference_record):
    record = conv_checks.extract_conv_vae(encoder(), decoder(), LATENT, seed=1)
    record.seed = 2
    found = judged(record)
    assert all(found.values()), found


def test_a_program_with_a_convolution_its_outputs_never_use_passes_no_budget():
    """The attacker records an MLP 'convolutional' VAE (no convolution: the budget test fails),
    then adds to its program a Conv2D branch that no output uses: a Keras model never holds one,
    so the judge refuses the program."""
    import copy

    record = conv_checks.extract_conv_vae(encoder(convolutions=False), decoder(convolutions=False),
                                          LATENT, seed=12)
    forged = copy.deepcopy(record)
    program = forged.facts["encoder"]["program"]
    first_input = program["inputs"][0]
    program["steps"].append({"name": "fake_conv", "class": "Conv2D",
                             "args": {"filters": 4, "kernel_size": [3, 3], "strides": [2, 2],
                                      "padding": "same", "activation": "relu"},
                             "weights": [[3, 3, 1, 4], [4]], "leaf": 99, "calls": [[first_input]]})
    found = judged(calls.from_bytes(calls.to_bytes(forged), conv_checks.EXERCISE))
    assert found["budget"], found
    assert "never use" in found["budget"], found


def test_a_made_up_encoder_program_beside_a_real_decoder_passes_no_budget(reference_record):
    """The attacker keeps a real record of an MLP encoder with a flat output mistake (so the
    shapes check fails), and swaps in the reference encoder's program, which has convolutions:
    the encoder's outputs are not that program's, so the budget is not granted either."""
    import copy

    record = conv_checks.extract_conv_vae(encoder(convolutions=False),
                                          decoder(convolutions=False, end="flat"), LATENT,
                                          seed=reference_record.seed)
    forged = copy.deepcopy(record)
    forged.facts["encoder"]["program"] = reference_record.facts["encoder"]["program"]
    found = judged(calls.from_bytes(calls.to_bytes(forged), conv_checks.EXERCISE))
    assert found["budget"], found
