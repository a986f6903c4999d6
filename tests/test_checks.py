"""The decoder spec: the TP's solution passes, equivalent builds pass, each mistake is named."""

from __future__ import annotations

import keras
import pytest
from keras import layers

from vaetp import checks
from course_paths import master_sizes

SIZES = master_sizes()
LATENT, HIDDEN, PIXELS = SIZES["latent_dim"], SIZES["intermediate_dim"], SIZES["original_dim"]
SPEC = checks.DecoderSpec.from_parameters(SIZES)
WIDTH = 256 if HIDDEN != 256 else 128  # a wrong hidden width


@pytest.fixture(scope="module")
def encoder():
    """The TP's encoder, reduced to what composition needs: pixels -> hidden -> latent."""
    inputs = keras.Input(shape=(PIXELS,))
    hidden = layers.Dense(HIDDEN, activation="relu")(inputs)
    return keras.Model(inputs, layers.Dense(LATENT)(hidden), name="encoder")


def functional(hidden=HIDDEN, hidden_act="relu", out=PIXELS, out_act="sigmoid", latent=LATENT):
    latent_inputs = keras.Input(shape=(latent,), name="z_sampling")
    x = layers.Dense(hidden, activation=hidden_act)(latent_inputs)
    return keras.Model(latent_inputs, layers.Dense(out, activation=out_act)(x), name="decoder")


class SubclassedDecoder(keras.Model):
    def __init__(self):
        super().__init__(name="my_decoder")
        self.first = layers.Dense(HIDDEN, activation="relu")
        self.second = layers.Dense(PIXELS, activation="sigmoid")

    def call(self, z):
        return self.second(self.first(z))


def load_solution():
    """Run solutions/decoder_vae.py in a namespace like the notebook's, as %load would."""
    from course_paths import SOLUTIONS

    namespace = {"keras": keras, "layers": layers, "latent_dim": LATENT,
                 "intermediate_dim": HIDDEN, "original_dim": PIXELS}
    exec((SOLUTIONS / "decoder_vae.py").read_text(), namespace)  # noqa: S102
    return namespace["decoder"]


def failures(decoder, encoder):
    """What the check cell finds (every graded test's property, the hidden test's included)."""
    return {r.name: r.message for r in checks.run_checks(decoder, encoder, SPEC) if not r.passed}


def test_solution_file_passes_every_check(encoder, capsys):
    decoder = load_solution()
    assert failures(decoder, encoder) == {}
    checks.check_decoder(decoder, encoder, SPEC)
    assert checks.SUCCESS in capsys.readouterr().out


def test_the_specs_parameter_counts_are_those_keras_counts_for_the_masters_sizes():
    layers_counts = [layer.count_params() for layer in functional().layers if layer.weights]
    assert [SPEC.hidden_params, SPEC.output_params] == layers_counts
    assert SPEC.n_params == functional().count_params()
    if (LATENT, HIDDEN, PIXELS) == (2, 512, 784):  # the TP's sizes, as its prose quotes them
        assert SPEC.n_params == 403_728


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(functional, id="functional"),
        pytest.param(lambda: keras.Sequential([layers.Dense(HIDDEN, activation="relu"),
                                               layers.Dense(PIXELS, activation="sigmoid")]),
                     id="sequential-unbuilt"),
        pytest.param(lambda: keras.Sequential([keras.Input((LATENT,)), layers.Dense(HIDDEN),
                                               layers.ReLU(), layers.Dense(PIXELS),
                                               layers.Activation("sigmoid")], name="other_name"),
                     id="separate-activation-layers"),
        pytest.param(SubclassedDecoder, id="subclassed"),
    ],
)
def test_equivalent_builds_pass(build, encoder):
    assert failures(build(), encoder) == {}


@pytest.mark.parametrize(
    ("decoder", "failed", "words"),
    [
        (lambda: functional(hidden=WIDTH), "hidden layer",
         f"your hidden layer has {WIDTH} units; the TP asks for {HIDDEN}"),
        (lambda: functional(hidden_act=None), "hidden layer",
         "your hidden layer's activation is linear; the TP asks for relu"),
        (lambda: functional(out_act="relu"), "output layer",
         "your output layer uses relu; the TP asks for sigmoid"),
        (lambda: functional(out_act="softmax"), "output layer",
         "your output layer uses softmax; the TP asks for sigmoid"),
        (lambda: functional(out=10), "output layer",
         f"your output layer has 10 units; the TP asks for {PIXELS}"),
        (lambda: functional(latent=LATENT + 1), "input shape",
         f"your decoder takes inputs of shape (None, {LATENT + 1}); the TP asks for (None, {LATENT})"),
        (lambda: keras.Sequential([keras.Input((LATENT,)), layers.Dense(PIXELS, activation="sigmoid")]),
         "hidden layer", f"your decoder has 1 Dense layer ({LATENT} -> {PIXELS}); the TP asks for 2"),
        (lambda: keras.Sequential([keras.Input((LATENT,)), layers.Dense(HIDDEN, activation="relu"),
                                   layers.Dense(HIDDEN, activation="relu"),
                                   layers.Dense(PIXELS, activation="sigmoid")]),
         "hidden layer", f"your decoder has 3 Dense layers ({LATENT} -> {HIDDEN} -> {HIDDEN} -> {PIXELS})"),
        (lambda: functional(hidden_act="relu6"), "hidden layer",
         "your hidden layer's activation is relu6; the TP asks for relu"),
        (lambda: functional(hidden_act="gelu"), "hidden layer",
         "your hidden layer's activation is gelu; the TP asks for relu"),
        (lambda: functional(out_act="hard_sigmoid"), "output layer",
         "your output layer uses hard_sigmoid; the TP asks for sigmoid"),
        (lambda: keras.Sequential([keras.Input((LATENT,)), layers.Dense(HIDDEN, activation="relu"),
                                   layers.Dense(PIXELS, activation="sigmoid"),
                                   layers.Reshape((28, 28))]),
         "output layer", f"your decoder's output has shape (None, 28, 28); the TP asks for (None, {PIXELS})"),
        (lambda: keras.Sequential([keras.Input((LATENT,)), layers.Dense(HIDDEN, activation="relu"),
                                   layers.Dense(PIXELS, activation="sigmoid"),
                                   layers.Activation("sigmoid")]),
         "output layer", "your decoder applies the sigmoid twice"),
    ],
    ids=["256-hidden", "linear-hidden", "relu-output", "softmax-output", "10-outputs",
         "latent-3", "no-hidden-layer", "extra-layer", "relu6-hidden", "gelu-hidden",
         "hard-sigmoid-output", "reshaped-output", "sigmoid-twice"],
)
def test_wrong_decoder_is_named(decoder, failed, words, encoder):
    found = failures(decoder(), encoder)
    assert failed in found, found
    assert words in found[failed]


def test_a_double_sigmoid_is_the_output_layers_mistake_not_the_hidden_layers(encoder):
    """Dense(784, sigmoid) then Activation("sigmoid"): the hidden layer is right and is told so;
    the output layer is named, as any wrong output activation is (the hidden test's function and
    gradients differ too, as for softmax)."""
    decoder = keras.Sequential([keras.Input((LATENT,)), layers.Dense(HIDDEN, activation="relu"),
                                layers.Dense(PIXELS, activation="sigmoid"),
                                layers.Activation("sigmoid")])
    found = failures(decoder, encoder)
    assert set(found) == {"output layer", "computes the TP's function", "every weight learns"}, found
    assert "Keep one" in found["output layer"]


def test_parameter_count_message_gives_the_breakdown(encoder):
    found = failures(functional(hidden=WIDTH), encoder)
    wrong = checks.DecoderSpec(LATENT, WIDTH, PIXELS).n_params
    assert found["parameter count"].startswith(
        f"your decoder has {wrong:,} parameters; the TP's has {SPEC.n_params:,} = "
        f"{SPEC.hidden_params:,} (hidden: {LATENT} x {HIDDEN} weights")


def test_composition_names_the_shape(encoder):
    found = failures(functional(out=10), encoder)
    assert "decoder(encoder(inputs)) has shape (None, 10)" in found["composition with the encoder"]


@pytest.mark.parametrize(
    ("value", "words"),
    [(None, "there is no `decoder` yet"), (lambda z: z, "`decoder` is a function, not a Keras model")],
)
def test_missing_or_non_model_decoder(value, words, encoder, capsys):
    checks.check_decoder(value, encoder, SPEC)
    out = capsys.readouterr().out
    assert words in out
    assert "Traceback" not in out


def test_each_graded_check_raises_an_assertion_with_the_message():
    with pytest.raises(AssertionError, match=f"your hidden layer has {WIDTH} units"):
        checks.check_hidden_layer(functional(hidden=WIDTH), SPEC)
    with pytest.raises(checks.DecoderMismatch, match="the TP asks for sigmoid"):
        checks.check_output_layer(functional(out_act="relu"), SPEC)


def test_a_decoder_that_crashes_is_reported_not_raised(encoder, capsys):
    class Broken(keras.Model):
        def call(self, z):
            raise ValueError("boom")

    checks.check_decoder(Broken(), encoder, SPEC)
    out = capsys.readouterr().out
    assert "✘" in out and "boom" in out


def test_parameter_table(capsys):
    checks.parameter_table(functional(), SPEC)
    assert capsys.readouterr().out == checks.spec_table(SPEC)
    if (LATENT, HIDDEN, PIXELS) == (2, 512, 784):  # the table the notebook stores
        assert checks.spec_table(SPEC).splitlines() == [
            "Dense   2 -> 512 relu         1,536 parameters",
            "Dense 512 -> 784 sigmoid    402,192 parameters",
            "Total                        403,728 parameters",
        ]


def test_the_table_of_a_wrong_decoder_shows_its_own_sizes(capsys):
    checks.parameter_table(functional(hidden=WIDTH), SPEC)
    assert capsys.readouterr().out == checks.spec_table(checks.DecoderSpec(LATENT, WIDTH, PIXELS))


def test_a_wrong_input_size_costs_the_input_test_not_the_parameter_count(encoder):
    found = failures(functional(latent=LATENT + 1), encoder)
    assert set(found) == {"input shape", "composition with the encoder"}


def test_the_check_cell_says_when_the_encoders_names_were_overwritten(encoder, capsys):
    inputs = keras.Input(shape=(PIXELS,))
    h = layers.Dense(HIDDEN, activation="relu", name="encoder_hidden")(inputs)
    z_mean = layers.Dense(LATENT, name="z_mean")(h)
    z_log_var = layers.Dense(LATENT, name="z_log_var")(h)
    enc = keras.Model(inputs, z_mean)
    namespace = {"encoder": enc, "inputs": inputs, "h": h, "z_mean": z_mean,
                 "z_log_var": z_log_var, "z": z_mean}
    assert checks.overwritten_encoder_names(namespace) == []
    namespace["inputs"] = keras.Input(shape=(LATENT,))  # the copy-paste slip
    namespace["h"] = layers.Dense(HIDDEN)(namespace["inputs"])
    assert checks.overwritten_encoder_names(namespace) == ["inputs", "h"]
    checks.check_decoder(load_solution(), enc, SPEC, namespace)
    out = capsys.readouterr().out
    assert "your code reused `inputs`, `h`, which the encoder cells defined" in out


def test_the_check_cell_says_when_there_is_no_encoder(capsys):
    checks.check_decoder(load_solution(), None, SPEC, {"decoder": None})
    assert "there is no `encoder`: run the cells of sections 7 to 9 first" in capsys.readouterr().out
