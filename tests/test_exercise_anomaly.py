"""The anomaly detection exercises, `anomaly_scores` and `roc_auc`: the TP's solutions pass,
each usual mistake is named."""

from __future__ import annotations


import keras
import numpy as np
import pytest
from check_cells import assert_check_cell_agrees
from keras import ops

from vaetp import anomaly_checks as anomaly
from vaetp import calls, roc_checks
from vaetp.calls import AnswerMismatch
from course_paths import master_sizes

SIZES = master_sizes()
LATENT, PIXELS = SIZES["latent_dim"], SIZES["original_dim"]
original_dim = PIXELS  # the notebook globals the solutions read

SCORE_CHECKS = {
    "shape": anomaly.check_anomaly_scores_shape,
    "values": anomaly.check_anomaly_scores_values,
    "noise": anomaly.check_anomaly_scores_noise,
}
ROC_CHECKS = {"values": roc_checks.check_roc_auc_values, "ties": roc_checks.check_roc_auc_ties}


# The notebook's loss functions (sections 8 and 12) and the TP's solutions.

def reconstruction_loss(x, x_decoded):
    return original_dim * keras.losses.binary_crossentropy(x, x_decoded)


def kl_divergence(z_mean, z_log_var):
    return -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def anomaly_scores(stats_encoder, decoder, x):
    z_mean, z_log_var = stats_encoder.predict(x, verbose=0)
    x_decoded = decoder.predict(z_mean, verbose=0)
    scores = reconstruction_loss(x, x_decoded) + kl_divergence(z_mean, z_log_var)
    return ops.convert_to_numpy(scores)


def roc_auc(normal_scores, anomaly_scores):
    greater = (anomaly_scores[:, None] > normal_scores[None, :]).mean()
    ties = (anomaly_scores[:, None] == normal_scores[None, :]).mean()
    return greater + 0.5 * ties


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(42)


def judge(checks, record, *args):
    found = {}
    for name, check in checks.items():
        try:
            check(record, *args)
        except AnswerMismatch as err:
            found[name] = str(err)
    return found


def score_failures(function, seed=0):
    """The graded tests' failures; the student's check cell must say the same (same record)."""
    record = anomaly.extract_anomaly_scores(function, LATENT, PIXELS, seed=seed)
    found = judge(SCORE_CHECKS, record, LATENT, PIXELS)
    assert_check_cell_agrees(found, anomaly.check_anomaly_scores_all, record, LATENT, PIXELS)
    return found


def roc_failures(function, seed=0):
    record = roc_checks.extract_roc_auc(function, seed=seed)
    found = judge(ROC_CHECKS, record)
    assert_check_cell_agrees(found, roc_checks.check_roc_auc, record)
    return found


def scores_with(combine):
    """A student's anomaly_scores that combines the parts in its own way."""
    def student(stats_encoder, decoder, x):
        z_mean, z_log_var = stats_encoder.predict(x, verbose=0)
        x_decoded = decoder.predict(z_mean, verbose=0)
        return ops.convert_to_numpy(combine(x, x_decoded, z_mean, z_log_var))
    return student


# --------------------------------------------------------------------------------------------
# anomaly_scores
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_tps_anomaly_scores_pass_every_check_for_any_probe_seed(seed):
    assert score_failures(anomaly_scores, seed) == {}


def test_the_anomaly_scores_check_cell_says_all_passed(capsys):
    anomaly.check_anomaly_scores_all(anomaly_scores, LATENT, PIXELS)
    out = capsys.readouterr().out
    assert "All checks passed" in out and "✘" not in out


@pytest.mark.parametrize(
    ("combine", "words"),
    [
        (lambda x, d, m, v: ops.mean(reconstruction_loss(x, d) + kl_divergence(m, v)),
         "do not average over the batch"),
        (lambda x, d, m, v: ops.stack([reconstruction_loss(x, d), kl_divergence(m, v)]),
         "returns the two terms apart, shape (2, 16)"),
        (lambda x, d, m, v: ops.squeeze(reconstruction_loss(x, d) + kl_divergence(m, v)),
         "returns a bare number; return shape (1,)"),
    ],
    ids=["batch-mean", "two-terms", "squeezed"],
)
def test_a_student_with_the_wrong_shape_of_scores_loses_only_the_shape_test(combine, words):
    found = score_failures(scores_with(combine))
    assert list(found) == ["shape"], found
    assert words in found["shape"]


@pytest.mark.parametrize(
    ("combine", "words"),
    [
        (lambda x, d, m, v: reconstruction_loss(x, d), "add the KL term"),
        (lambda x, d, m, v: kl_divergence(m, v), "add the reconstruction term"),
        (lambda x, d, m, v: keras.losses.binary_crossentropy(x, d) + kl_divergence(m, v),
         "multiply it by original_dim (784)"),
        (lambda x, d, m, v: reconstruction_loss(d, x) + kl_divergence(m, v),
         "reconstruction_loss takes (x, x_decoded): the arguments are swapped"),
        (lambda x, d, m, v: reconstruction_loss(x, d) + kl_divergence(v, m),
         "kl_divergence takes (z_mean, z_log_var): the arguments are swapped"),
        (lambda x, d, m, v: -(reconstruction_loss(x, d) + kl_divergence(m, v)), "that is the ELBO"),
        (lambda x, d, m, v: reconstruction_loss(x, d) - kl_divergence(m, v),
         "the KL term is subtracted"),
    ],
    ids=["no-kl", "no-reconstruction", "mean-bce", "swapped-reconstruction", "swapped-kl",
         "elbo-sign", "kl-subtracted"],
)
def test_a_student_with_the_wrong_score_is_told_which_term_is_wrong(combine, words):
    found = score_failures(scores_with(combine))
    assert "values" in found and "shape" not in found, found
    assert words in found["values"]


def test_a_student_who_decodes_a_sampled_z_is_told_to_use_z_mean():
    def sampled(stats_encoder, decoder, x):
        z_mean, z_log_var = stats_encoder.predict(x, verbose=0)
        z = z_mean + ops.exp(0.5 * z_log_var) * keras.random.normal(ops.shape(z_mean))
        x_decoded = decoder.predict(z, verbose=0)
        return ops.convert_to_numpy(reconstruction_loss(x, x_decoded)
                                    + kl_divergence(z_mean, z_log_var))

    found = score_failures(sampled)
    assert set(found) == {"values", "noise"}, found
    assert "use z_mean, not a sampled z" in found["values"]


def test_a_student_who_uses_the_global_models_is_told_to_use_the_arguments():
    inputs = keras.Input((PIXELS,))
    stats = keras.Model(inputs, [keras.layers.Dense(LATENT)(inputs),
                                 keras.layers.Dense(LATENT)(inputs)])
    trained = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(PIXELS, "sigmoid")])

    def global_models(stats_encoder, decoder, x):
        return anomaly_scores(stats, trained, x)

    found = score_failures(global_models)
    assert "stats_encoder given as argument" in found["values"], found


def test_a_student_whose_function_raises_fails_every_scores_check_with_the_error():
    def broken(stats_encoder, decoder, x):
        z_mean, z_log_var, z = stats_encoder.predict(x, verbose=0)
        return z

    found = score_failures(broken)
    assert set(found) == set(SCORE_CHECKS)
    assert "raised ValueError" in found["shape"]


def test_the_scores_check_cell_names_the_failed_check(capsys):
    anomaly.check_anomaly_scores_all(scores_with(lambda x, d, m, v: reconstruction_loss(x, d)),
                                     LATENT, PIXELS)
    out = capsys.readouterr().out
    assert "✘ reconstruction + KL with z_mean" in out and "add the KL term" in out


# --------------------------------------------------------------------------------------------
# roc_auc
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_tps_roc_auc_passes_every_check_for_any_probe_seed(seed):
    assert roc_failures(roc_auc, seed) == {}


def test_a_student_who_ranks_the_scores_passes():
    def ranks(normal_scores, anomaly_scores):
        scores = np.concatenate([normal_scores, anomaly_scores])
        order = scores.argsort(kind="stable")
        rank = np.empty(len(scores))
        rank[order] = np.arange(1, len(scores) + 1)
        for value in np.unique(scores):  # average ranks of ties
            rank[scores == value] = rank[scores == value].mean()
        n, m = len(normal_scores), len(anomaly_scores)
        return (rank[n:].sum() - m * (m + 1) / 2) / (n * m)

    assert roc_failures(ranks) == {}


def test_the_roc_check_cell_says_all_passed(capsys):
    roc_checks.check_roc_auc(roc_auc)
    assert "All checks passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("function", "words", "not_an_auc"),
    [
        (lambda normal, anom: (anom[:, None] < normal[None, :]).mean()
         + 0.5 * (anom[:, None] == normal[None, :]).mean(),
         "you computed the AUC of the other direction", False),
        (lambda normal, anom: roc_auc(anom, normal), "you computed the AUC of the other direction",
         False),
        (lambda normal, anom: (anom[:, None] > normal[None, :])
         + 0.5 * (anom[:, None] == normal[None, :]),
         "returns an array of shape (20, 30); return one number, the AUC: average it", False),
        (lambda normal, anom: np.concatenate([anom > (normal.mean() + anom.mean()) / 2,
                                              normal <= (normal.mean() + anom.mean()) / 2]).mean(),
         "the accuracy at one threshold", True),
        (lambda normal, anom: 100 * roc_auc(normal, anom), "not a percentage", False),
        (lambda normal, anom: 0.5, "returns 0.5 whatever the scores", True),
    ],
    ids=["other-direction", "swapped-arguments", "comparison-table", "accuracy", "percentage",
         "constant"],
)
def test_a_student_with_a_wrong_auc_is_told_what_it_computed(function, words, not_an_auc):
    found = roc_failures(function)
    assert "values" in found and (not_an_auc or list(found) == ["values"]), found
    assert words in found["values"]


@pytest.mark.parametrize(
    ("function", "words"),
    [
        (lambda normal, anom: (anom[:, None] > normal[None, :]).mean(), "counts a tie as 0"),
        (lambda normal, anom: (anom[:, None] >= normal[None, :]).mean(), "counts a tie as 1"),
    ],
    ids=["strict", "greater-or-equal"],
)
def test_a_student_who_does_not_count_ties_as_one_half_fails_only_the_ties_test(function, words):
    found = roc_failures(function)
    assert list(found) == ["ties"], found
    assert words in found["ties"] and "count 1/2" in found["ties"]


def test_a_missing_roc_auc_is_named():
    with pytest.raises(AnswerMismatch, match="there is no `roc_auc`"):
        roc_checks.check_roc_auc_values(None)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------

def test_records_read_back_from_bytes_are_judged_the_same():
    no_kl = scores_with(lambda x, d, m, v: reconstruction_loss(x, d))
    for function in (anomaly_scores, no_kl):
        record = anomaly.extract_anomaly_scores(function, LATENT, PIXELS, seed=4)
        again = calls.from_bytes(calls.to_bytes(record), "anomaly_scores")
        assert judge(SCORE_CHECKS, again, LATENT, PIXELS) == judge(SCORE_CHECKS, record, LATENT,
                                                                   PIXELS)
    strict = lambda normal, anom: (anom[:, None] > normal[None, :]).mean()  # noqa: E731
    for function in (roc_auc, strict):
        record = roc_checks.extract_roc_auc(function, seed=4)
        again = calls.from_bytes(calls.to_bytes(record), "roc_auc")
        assert judge(ROC_CHECKS, again) == judge(ROC_CHECKS, record)


def test_the_judge_reads_the_records_without_keras(tmp_path):
    from course_paths import run_without_keras

    scores = tmp_path / "scores.npz"
    scores.write_bytes(calls.to_bytes(anomaly.extract_anomaly_scores(anomaly_scores, LATENT,
                                                                     PIXELS, seed=3)))
    roc = tmp_path / "roc.npz"
    roc.write_bytes(calls.to_bytes(roc_checks.extract_roc_auc(roc_auc, seed=3)))
    script = (
        "import sys, pathlib\n"
        "from vaetp import calls, anomaly_checks as a, roc_checks as roc\n"
        f"s = calls.from_bytes(pathlib.Path({str(scores)!r}).read_bytes(), 'anomaly_scores')\n"
        f"r = calls.from_bytes(pathlib.Path({str(roc)!r}).read_bytes(), 'roc_auc')\n"
        "for c in (a.check_anomaly_scores_shape, a.check_anomaly_scores_values, "
        "a.check_anomaly_scores_noise):\n"
        f"    c(s, {LATENT}, {PIXELS})\n"
        "roc.check_roc_auc_values(r); roc.check_roc_auc_ties(r)\n"
    )
    run_without_keras(script)


STUDENT_CELLS = """
def reconstruction_loss(y_true, y_pred, per_pixel=False):
    bce = keras.losses.binary_crossentropy(y_true, y_pred)
    return bce if per_pixel else 784 * bce

def kl_divergence(mu, log_var):
    return -0.5 * ops.sum(1 + log_var - ops.square(mu) - ops.exp(log_var), axis=-1)

def anomaly_scores(stats_encoder, decoder, x):
    m, v = stats_encoder.predict(x, verbose=0)
    xd = decoder.predict(m, verbose=0)
    return ops.convert_to_numpy(reconstruction_loss(y_true=x, y_pred=xd) + kl_divergence(mu=m, log_var=v))
"""


def test_a_student_whose_right_helpers_have_other_argument_names_keeps_full_marks():
    namespace = {"keras": keras, "ops": ops}
    exec(STUDENT_CELLS, namespace)  # noqa: S102 - the student's cells, in their own globals
    assert score_failures(namespace["anomaly_scores"]) == {}
    assert namespace["reconstruction_loss"].__code__.co_varnames[:2] == ("y_true", "y_pred")


def test_a_wrong_helper_is_not_charged_again_in_the_anomaly_score():
    namespace = {"keras": keras, "ops": ops}
    exec(STUDENT_CELLS.replace("784 * bce", "bce"), namespace)  # noqa: S102 - the mean BCE
    assert score_failures(namespace["anomaly_scores"]) == {}
