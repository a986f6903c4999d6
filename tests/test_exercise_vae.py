"""The VAE's assembly as an exercise (section 11): the TP's `vae` passes, a VAE that decodes
z_mean, builds its own layers or stops at the encoder is told so."""

from __future__ import annotations

import keras
import pytest
from keras import layers, ops

from vaetp import calls, vae_checks

PIXELS, LATENT = 784, 2
TESTS = {"shapes": vae_checks.check_vae_shapes,
         "uses": vae_checks.check_vae_uses_encoder_and_decoder,
         "samples": vae_checks.check_vae_samples_and_adds_kl}


class Sampling(layers.Layer):
    """The notebook's sampling layer, with the TP's KL."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1)

    def call(self, z_mean, z_log_var):
        kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
        self.add_loss(ops.mean(kl))
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps


@pytest.fixture(scope="module")
def tp():
    inputs = keras.Input((PIXELS,))
    h = layers.Dense(64, activation="relu")(inputs)
    z_mean, z_log_var = layers.Dense(LATENT, name="z_mean")(h), layers.Dense(LATENT, name="z_log_var")(h)
    encoder = keras.Model(inputs, Sampling(name="z")(z_mean, z_log_var), name="encoder")
    z_in = keras.Input((LATENT,))
    decoder = keras.Model(z_in, layers.Dense(PIXELS, activation="sigmoid")(layers.Dense(64)(z_in)))
    return {"inputs": inputs, "z_mean": z_mean, "encoder": encoder, "decoder": decoder}


def failures(vae, tp):
    found = {}
    for name, check in TESTS.items():
        try:
            check(vae, tp["encoder"], tp["decoder"], PIXELS)
        except AssertionError as err:
            found[name] = str(err)
    return found


def test_the_tps_vae_passes_and_so_does_decoding_z_directly(tp):
    vae = keras.Model(tp["inputs"], tp["decoder"](tp["encoder"](tp["inputs"])))
    assert failures(vae, tp) == {}
    z = tp["encoder"].outputs[0]  # the encoder's own sample tensor: the same graph
    assert failures(keras.Model(tp["inputs"], tp["decoder"](z)), tp) == {}


def test_a_vae_that_decodes_z_mean_is_told_it_never_samples(tp):
    found = failures(keras.Model(tp["inputs"], tp["decoder"](tp["z_mean"])), tp)
    assert set(found) == {"uses", "samples"}
    assert "never uses z_log_var" in found["uses"]


def test_a_vae_with_layers_of_its_own_loses_one_test(tp):
    hidden = layers.Dense(32, activation="relu")(tp["encoder"](tp["inputs"]))
    found = failures(keras.Model(tp["inputs"], layers.Dense(PIXELS, activation="sigmoid")(hidden)), tp)
    assert set(found) == {"uses"} and "weights of its own" in found["uses"]


def test_a_vae_that_stops_at_the_encoder_is_told_its_shape(tp):
    found = failures(keras.Model(tp["inputs"], tp["encoder"](tp["inputs"])), tp)
    assert set(found) == {"shapes", "uses"} and "returns shape (5, 2)" in found["shapes"]


def test_a_vae_that_calls_the_encoder_twice_adds_the_kl_twice(tp):
    twice = tp["decoder"](tp["encoder"](tp["inputs"]) + 0 * tp["encoder"](tp["inputs"]))
    found = failures(keras.Model(tp["inputs"], twice), tp)
    assert set(found) == {"samples"} and "it added 2" in found["samples"]


def test_no_vae_and_a_record_read_back(tp, capsys):
    assert "there is no `vae`" in failures(None, tp)["shapes"]
    vae = keras.Model(tp["inputs"], tp["decoder"](tp["z_mean"]))
    record = vae_checks.extract_vae(vae, tp["encoder"], tp["decoder"], PIXELS, seed=2)
    again = calls.from_bytes(calls.to_bytes(record), "vae")
    assert failures(again, {"encoder": None, "decoder": None}) == failures(vae, tp)
    vae_checks.check_vae(vae, tp["encoder"], tp["decoder"], PIXELS)
    assert "1 problem to fix" in capsys.readouterr().out
