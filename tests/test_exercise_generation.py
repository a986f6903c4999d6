"""The `generate_digits` exercise: the TP's solution passes, each usual mistake is named."""

from __future__ import annotations


import keras
import numpy as np
import pytest
from check_cells import assert_check_cell_agrees

from vaetp import calls
from vaetp import generation_checks as gen
from vaetp.calls import AnswerMismatch

LATENT, PIXELS = 2, 784
latent_dim = LATENT  # the notebook global the solutions read

CHECKS = {
    "shape": gen.check_generation_shape,
    "seeds": gen.check_generation_seeds,
    "prior": gen.check_generation_from_prior,
}


def generate_digits(decoder, n, seed=None):
    """The TP's solution."""
    z = keras.random.normal((n, latent_dim), seed=seed)
    images = decoder.predict(z, verbose=0)
    return images.reshape(n, 28, 28)


def decode(decoder, z, n):
    return decoder.predict(z, verbose=0).reshape(n, 28, 28)


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(42)  # as the notebook does at the top


def record_of(function, seed=0):
    return gen.extract_generation(function, LATENT, PIXELS, seed=seed)


def failures(function, seed=0):
    """The graded tests' failures; at the public seed, the student's check cell must say the
    same."""
    record = record_of(function, seed)
    found = {}
    for name, check in CHECKS.items():
        try:
            check(record, LATENT, PIXELS)
        except AnswerMismatch as err:
            found[name] = str(err)
    if seed == 0:
        assert_check_cell_agrees(found, gen.check_generate_digits, record, LATENT, PIXELS)
    return found


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_tps_solution_passes_every_check_for_any_probe_seed(seed):
    assert failures(generate_digits, seed) == {}


def test_a_student_who_reads_latent_dim_from_the_decoder_passes():
    def from_decoder(decoder, n, seed=None):
        z = keras.random.normal((n, decoder.inputs[0].shape[-1]), seed=seed)
        return decode(decoder, z, n)

    assert failures(from_decoder) == {}


def test_a_student_who_uses_numpy_generators_passes():
    def with_numpy(decoder, n, seed=None):
        z = np.random.default_rng(seed).standard_normal((n, latent_dim))
        return decode(decoder, z, n)

    assert failures(with_numpy) == {}


def test_the_check_cell_says_all_passed(capsys):
    gen.check_generate_digits(generate_digits, LATENT, PIXELS)
    out = capsys.readouterr().out
    assert "All checks passed" in out and "✘" not in out


@pytest.mark.parametrize(
    ("returned", "words"),
    [
        (lambda images, n: images.reshape(n, PIXELS), "reshape them to images, shape (3, 28, 28)"),
        (lambda images, n: images.reshape(n, 28, 28, 1), "drop the channel axis"),
        (lambda images, n: images[:1], "returns 1 images instead of 3"),
    ],
    ids=["rows-of-pixels", "channel-axis", "one-image"],
)
def test_a_student_with_the_wrong_shape_is_told_which(returned, words):
    def wrong(decoder, n, seed=None):
        return returned(decoder.predict(keras.random.normal((n, latent_dim), seed=seed),
                                        verbose=0), n)

    found = failures(wrong)
    assert "shape" in found and words in found["shape"], found


def test_a_student_who_returns_rows_of_pixels_loses_only_the_shape_test():
    def rows(decoder, n, seed=None):
        return decoder.predict(keras.random.normal((n, latent_dim), seed=seed), verbose=0)

    assert list(failures(rows)) == ["shape"]


def test_a_student_whose_function_raises_is_shown_the_error():
    def broken(decoder, n, seed=None):
        raise ValueError("no decoder here")

    found = failures(broken)
    assert "raised ValueError: no decoder here" in found["shape"], found
    assert set(found) == {"shape", "seeds", "prior"}


def test_a_student_who_fixes_the_seed_inside_the_function_is_told_to_draw_fresh_z():
    def fixed(decoder, n, seed=None):
        return decode(decoder, keras.random.normal((n, latent_dim), seed=1234), n)

    found = failures(fixed)
    assert list(found) == ["seeds"]
    assert "with seed=None, two calls give the same digits" in found["seeds"]


def test_a_student_who_ignores_the_seed_is_told_to_pass_it():
    def unseeded(decoder, n, seed=None):
        return decode(decoder, keras.random.normal((n, latent_dim)), n)

    found = failures(unseeded)
    assert list(found) == ["seeds"]
    assert "pass `seed` to keras.random.normal" in found["seeds"]


def test_a_student_whose_seed_does_not_decide_z_is_told_so():
    def one_seed(decoder, n, seed=None):
        return decode(decoder, keras.random.normal((n, latent_dim),
                                                   seed=None if seed is None else 7), n)

    found = failures(one_seed)
    assert list(found) == ["seeds"]
    assert "two different seeds give the same digits" in found["seeds"]


def test_a_student_who_draws_z_from_a_uniform_distribution_is_told_to_use_the_normal():
    def uniform(decoder, n, seed=None):
        return decode(decoder, keras.random.uniform((n, latent_dim), seed=seed), n)

    found = failures(uniform)
    assert list(found) == ["prior"]
    assert "z looks uniform" in found["prior"] and "keras.random.normal" in found["prior"]


@pytest.mark.parametrize(
    ("draw", "words"),
    [
        (lambda n, seed: keras.random.normal((n, latent_dim), stddev=0.5, seed=seed),
         "standard deviation 0.4"),
        (lambda n, seed: keras.random.normal((n, latent_dim), seed=seed) ** 2, "mean 1"),
        (lambda n, seed: keras.ops.repeat(keras.random.normal((1, latent_dim), seed=seed), n, 0),
         "decoded from the same z"),
        (lambda n, seed: keras.ops.repeat(keras.random.normal((n, 1), seed=seed), latent_dim, 1),
         "coordinates are correlated (correlation 1.00)"),
    ],
    ids=["half-scale", "squared", "one-code-repeated", "one-number-per-image"],
)
def test_a_student_who_draws_z_from_another_distribution_is_told_how_it_differs(draw, words):
    def wrong(decoder, n, seed=None):
        return decode(decoder, draw(n, seed), n)

    found = failures(wrong)
    assert list(found) == ["prior"], found
    assert words in found["prior"]


def test_a_student_who_uses_the_global_trained_decoder_is_told_to_use_the_argument():
    trained = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(PIXELS, "sigmoid")])

    def global_decoder(decoder, n, seed=None):
        return decode(trained, keras.random.normal((n, latent_dim), seed=seed), n)

    found = failures(global_decoder)
    # images the grader's decoder cannot explain prove nothing: no test can pass on them, and
    # the check cell says so (it used to say "All checks passed")
    assert list(found) == ["shape", "seeds", "prior"]
    assert all("use the decoder passed as argument" in m for m in found.values())


def test_a_missing_function_is_named():
    with pytest.raises(AnswerMismatch, match="there is no `generate_digits`"):
        gen.check_generation_shape(None, LATENT, PIXELS)


def test_the_check_cell_names_the_failed_check(capsys):
    def rows(decoder, n, seed=None):
        return decoder.predict(keras.random.normal((n, latent_dim), seed=seed), verbose=0)

    gen.check_generate_digits(rows, LATENT, PIXELS)
    out = capsys.readouterr().out
    assert "✘ n images of 28 x 28 pixels" in out and "1 problem to fix" in out


def test_a_record_read_back_from_bytes_is_judged_the_same():
    def uniform(decoder, n, seed=None):
        return decode(decoder, keras.random.uniform((n, latent_dim), seed=seed), n)

    for function in (generate_digits, uniform):
        record = record_of(function, seed=5)
        again = calls.from_bytes(calls.to_bytes(record), "generate_digits")
        assert again.facts == record.facts and again.seed == 5
        for check in CHECKS.values():
            verdicts = []
            for judged in (record, again):
                try:
                    check(judged, LATENT, PIXELS)
                    verdicts.append("")
                except AnswerMismatch as err:
                    verdicts.append(str(err))
            assert verdicts[0] == verdicts[1]


def test_the_judge_reads_a_record_without_keras(tmp_path):
    from course_paths import run_without_keras

    path = tmp_path / "record.npz"
    path.write_bytes(calls.to_bytes(record_of(generate_digits, seed=3)))
    script = (
        "import sys, pathlib\n"
        "from vaetp import calls, generation_checks as g\n"
        f"r = calls.from_bytes(pathlib.Path({str(path)!r}).read_bytes(), 'generate_digits')\n"
        "for c in (g.check_generation_shape, g.check_generation_seeds, "
        "g.check_generation_from_prior):\n"
        "    c(r, 2, 784)\n"
    )
    run_without_keras(script)


def test_a_student_who_draws_a_truncated_normal_fails_the_hidden_test():
    def truncated(decoder, n, seed=None):
        z = keras.random.truncated_normal((n, LATENT), seed=seed)
        return decoder.predict(z, verbose=0).reshape(n, 28, 28)

    keras.utils.set_random_seed(42)
    with pytest.raises(AssertionError, match="not a truncated or uniform one"):
        gen.check_generation_from_prior(truncated, LATENT, PIXELS)


# --------------------------------------------------------------------------------------------
# Reseeding the global generators
# --------------------------------------------------------------------------------------------

def test_a_student_who_reseeds_numpy_is_told_not_to():
    def reseeding(decoder, n, seed=None):
        if seed is not None:
            np.random.seed(seed)
        return decode(decoder, np.random.standard_normal((n, latent_dim)), n)

    found = failures(reseeding)
    assert list(found) == ["seeds"], found
    assert "do not reseed the global generators" in found["seeds"]


def test_a_student_who_calls_set_random_seed_with_keras_draws_is_told_not_to():
    def reseeding(decoder, n, seed=None):
        if seed is not None:
            keras.utils.set_random_seed(seed)
        return decode(decoder, keras.random.normal((n, latent_dim), seed=seed), n)

    found = failures(reseeding)
    assert list(found) == ["seeds"], found
    assert "no keras.utils.set_random_seed" in found["seeds"]


# --------------------------------------------------------------------------------------------
# Forged records: made-up numbers pass no test
# --------------------------------------------------------------------------------------------

def judged(record):
    found = {}
    for name, check in CHECKS.items():
        try:
            check(record, LATENT, PIXELS)
            found[name] = ""
        except AnswerMismatch as err:
            found[name] = str(err)
    return found


def forged_record(seed, images_of):
    """A record built by hand, as an attacker would: every call the probe makes, with the
    attacker's images, the sizes claimed in the facts."""
    record = calls.CallRecord("generate_digits", seed=seed,
                              facts={"latent_dim": LATENT, "original_dim": PIXELS})
    for i, (call, _) in enumerate(gen.ORDER):
        n = 3 if call == "three" else gen.BATCH
        record.calls[call] = calls.Call(output=images_of(call, n, i))
    return calls.from_bytes(calls.to_bytes(record), "generate_digits")


def test_a_record_of_normal_draws_in_the_first_pixels_passes_nothing():
    """The old attack: the grader decoder was the identity on z, so N(0, I) draws written into
    the first pixels, 0.5 elsewhere, passed every test."""
    def images(call, n, i):
        rng = np.random.default_rng({"seeded_b": 0}.get(call, i))
        out = np.full((n, PIXELS), 0.5)
        out[:, :LATENT] = rng.standard_normal((n, LATENT))
        return out.reshape(n, 28, 28)

    found = judged(forged_record(7, images))
    assert all(found.values()), found
    assert all("use the decoder passed as argument" in m for m in found.values())


def test_a_record_made_with_the_public_functions_and_a_guessed_decoder_passes_nothing():
    """An attacker who reads the probe's seed and calls vaetp's own extract, with a function
    of theirs that draws N(0, I) codes and decodes them with a decoder of their making."""
    fake = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(PIXELS)])
    fake.layers[0].set_weights(list(gen.grader_decoder_weights(0, LATENT, PIXELS)))  # seed 0

    def attacker(decoder, n, seed=None):
        return decode(fake, np.random.default_rng(seed).standard_normal((n, LATENT)), n)

    record = gen.extract_generation(attacker, LATENT, PIXELS, seed=123_456)
    found = judged(calls.from_bytes(calls.to_bytes(record), "generate_digits"))
    assert all(found.values()), found


def test_a_record_of_constant_or_random_images_passes_nothing():
    for images in (lambda call, n, i: np.full((n, 28, 28), 0.5),
                   lambda call, n, i: np.random.default_rng(i).random((n, 28, 28))):
        found = judged(forged_record(3, images))
        assert all(found.values()), found


def test_a_record_that_claims_other_sizes_is_judged_with_the_tps():
    record = record_of(generate_digits, seed=4)
    record.facts.update(latent_dim=1, original_dim=2)
    with pytest.raises(AnswerMismatch, match="latent_dim = 1; the TP's is 2"):
        gen.check_generation_shape(record, LATENT, PIXELS)
    record.facts.pop("latent_dim")
    record.facts.pop("original_dim")
    assert judged(record) == {"shape": "", "seeds": "", "prior": ""}
