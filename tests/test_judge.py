"""The judge grades a record of the decoder, never the kernel: forged or broken records gain nothing."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from vaetp import checks, decoder_data
from vaetp.course import master_parameters
from vaetp.grading.judge import GRADING_ERROR, NO_RECORD, judge
from course_paths import MASTER, master_sizes

SIZES = master_sizes()
LATENT, HIDDEN, PIXELS = SIZES["latent_dim"], SIZES["intermediate_dim"], SIZES["original_dim"]
SPEC = checks.DecoderSpec.from_parameters(SIZES)
WIDTH = 256 if HIDDEN != 256 else 128  # a wrong hidden width

TESTS = ["test_decoder_input_shape", "test_decoder_hidden_layer", "test_decoder_output_layer",
         "test_decoder_parameter_count", "test_decoder_composition",
         "test_decoder_computes_and_learns"]


def graded_sources(prefix="test_decoder_"):
    import nbformat

    nb = nbformat.read(MASTER, as_version=4)
    return [{"grade_id": c.metadata["nbgrader"]["grade_id"], "source": c.source}
            for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"
            and c.metadata["nbgrader"]["grade_id"].startswith(prefix)]


def decoder(hidden=HIDDEN, trainable=True, latent=LATENT):
    z = keras.Input(shape=(latent,))
    h = layers.Dense(hidden, activation="relu", trainable=trainable)(z)
    return keras.Model(z, layers.Dense(PIXELS, activation="sigmoid")(h))


def encoder():
    x = keras.Input(shape=(PIXELS,))
    return keras.Model(x, layers.Dense(LATENT)(layers.Dense(HIDDEN, activation="relu")(x)))


def verdicts(tmp_path, blob):
    if blob is not None:
        (tmp_path / "decoder.npz").write_bytes(blob)
    job = {"parameters": master_parameters(MASTER), "tests": graded_sources(),
           "missing": {"decoder": "the kernel died"}}
    return judge(job, tmp_path)


def record(model, seed=7):
    return decoder_data.to_bytes(extract(model, encoder(), seed=seed))


def extract(model, enc, seed):
    return decoder_data.extract(model, enc, latent_dim=LATENT, original_dim=PIXELS, seed=seed)


def test_the_graded_tests_are_the_masters_and_use_its_parameters():
    assert [t["grade_id"] for t in graded_sources()] == TESTS
    found = master_parameters(MASTER)
    assert set(found) == {"batch_size", "original_dim", "intermediate_dim", "latent_dim", "epochs",
                          "validation_images", "beta_epochs", "anomaly_digit", "anomaly_epochs",
                          "conv_budget", "conv_epochs"}  # `betas`, a list, is not a size
    assert all(type(v) is int for v in found.values())


def test_the_parameters_cell_is_read_as_python_computes_it():
    import nbformat

    from vaetp.course import parameters_cell

    namespace: dict = {}
    exec(parameters_cell(nbformat.read(MASTER, as_version=4)).source, namespace)  # noqa: S102
    assert all(namespace[k] == v for k, v in master_parameters(MASTER).items())


def test_every_graded_test_of_the_master_belongs_to_an_exercise():
    from vaetp.grading.exercises import exercise_of

    assert all(exercise_of(t["grade_id"]) for t in graded_sources(prefix="test_"))


def test_a_correct_decoder_passes_every_test(tmp_path):
    assert all(v["passed"] for v in verdicts(tmp_path, record(decoder())).values())


def test_a_frozen_layer_fails_only_the_hidden_test(tmp_path):
    found = verdicts(tmp_path, record(decoder(trainable=False)))
    assert [t for t in TESTS if not found[t]["passed"]] == ["test_decoder_computes_and_learns"]
    assert "frozen" in found["test_decoder_computes_and_learns"]["message"]


def test_no_record_fails_every_test_with_the_reason(tmp_path):
    found = verdicts(tmp_path, None)
    assert {v["ename"] for v in found.values()} == {NO_RECORD}
    assert all("the kernel died" in v["message"] for v in found.values())


@pytest.mark.parametrize("blob", [b"all tests passed", b"PK\x03\x04" + b"\0" * 100, b""],
                         ids=["text", "broken-zip", "empty"])
def test_a_forged_record_fails_every_test(tmp_path, blob):
    found = verdicts(tmp_path, blob)
    assert not any(v["passed"] for v in found.values())
    assert {v["ename"] for v in found.values()} == {GRADING_ERROR}


def test_a_record_whose_outputs_do_not_follow_its_weights_fails(tmp_path):
    """Claiming the right weights is not enough: the outputs must be what they compute."""
    data = extract(decoder(hidden=WIDTH), encoder(), seed=3)
    right = extract(decoder(), encoder(), seed=3)
    right.y = data.y  # the right weights, with the outputs of another decoder
    found = verdicts(tmp_path, decoder_data.to_bytes(right))
    assert not found["test_decoder_hidden_layer"]["passed"]
    assert not found["test_decoder_computes_and_learns"]["passed"]


def test_a_record_is_judged_like_the_live_decoder_and_its_inputs_come_from_the_seed():
    model, enc = decoder(hidden=WIDTH), encoder()
    back = decoder_data.from_bytes(decoder_data.to_bytes(extract(model, enc, seed=11)))
    np.testing.assert_array_equal(back.z, decoder_data.probe_latents(11, LATENT))
    live = [(r.name, r.passed, r.message) for r in checks.run_checks(model, enc, SPEC)]
    assert [(r.name, r.passed, r.message)
            for r in checks.run_checks(back, checks.RECORDED, SPEC)] == live
    assert [name for name, passed, _ in live if not passed] == ["hidden layer", "parameter count"]


def test_oversized_or_pickled_records_are_refused():
    with pytest.raises(decoder_data.DataError):
        decoder_data.from_bytes(b"x" * (decoder_data.MAX_BYTES + 1))
    import io

    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array([{"a": 1}], dtype=object))
    with pytest.raises(decoder_data.DataError):
        decoder_data.from_bytes(buffer.getvalue())


def test_changing_latent_dim_in_the_master_changes_the_exercise(tmp_path):
    """An instructor sets a larger latent_dim in the master's parameters cell: the graded tests
    then ask for a decoder of that input size, with no other edit (tests/test_variants.py does
    the whole course)."""
    import nbformat

    from vaetp.course import with_parameters

    wider = LATENT + 8
    variant = tmp_path / "vae_tp.ipynb"
    nbformat.write(with_parameters(nbformat.read(MASTER, as_version=4), latent_dim=wider), variant)
    parameters = master_parameters(variant)
    assert parameters["latent_dim"] == wider

    def run(model):
        folder = tmp_path / f"job{id(model)}"
        folder.mkdir()
        blob = decoder_data.to_bytes(decoder_data.extract(model, None, latent_dim=wider,
                                                          original_dim=PIXELS, seed=5))
        (folder / "decoder.npz").write_bytes(blob)
        tests = [t for t in graded_sources() if t["grade_id"] != "test_decoder_composition"]
        return judge({"parameters": parameters, "tests": tests}, folder)

    assert all(v["passed"] for v in run(decoder(latent=wider)).values())
    found = run(decoder())  # the master's decoder no longer fits
    assert f"(None, {wider})" in found["test_decoder_input_shape"]["message"]
    # one mistake, one test: the parameter count is that of the TP's layers on its own input
    assert [t for t, v in found.items() if not v["passed"]] == ["test_decoder_input_shape"]


def test_a_record_made_for_another_seed_is_refused(tmp_path):
    """The grader tells the judge each student's seed: a record copied from a classmate, or made
    on inputs of the student's choosing, is not judged."""
    (tmp_path / "decoder.npz").write_bytes(record(decoder(), seed=7))
    job = {"parameters": master_parameters(MASTER), "tests": graded_sources(), "seed": 8}
    found = judge(job, tmp_path)
    assert {v["ename"] for v in found.values()} == {GRADING_ERROR}
    assert all("another student or run" in v["message"] for v in found.values())
    job["seed"] = 7
    assert all(v["passed"] for v in judge(job, tmp_path).values())
