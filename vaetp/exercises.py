"""The graded exercises, declared once: what each records in the student's kernel, and how.

Each `Exercise` names the master's cells it belongs to (its answer cell's grade id, the common
prefix of its graded tests' grade ids), the notebook names it records, the parameters of the
master's parameters cell it needs, and the function that records it (`<module>.<extract>`).
Everything else is derived from this table: the grader's probe and the judge's names
(`vaetp.grading.exercises`), the report's and the class report's columns, the tests' lists.

Recording (`record_bytes`) runs in the student's kernel, when the notebook is graded: it calls
`vaetp.<module>.<extract>(<the notebook's names>, <parameters by name>, seed=<the grader's>)`,
a typed call (the names and the parameters are bound by keyword, so an extract whose signature
does not match its declaration fails at once, and `tests/test_exercise_registry.py` checks
every one), and returns the record as bytes. Reading it back (`read_record`) is NumPy only.

To add an exercise: see docs/instructor.md, "To change an exercise, or add one".
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

#: Record formats: a function's calls (`vaetp.calls.CallRecord`), or the decoder's weights and
#: outputs (`vaetp.decoder_data.DecoderData`).
CALLS, DECODER = "calls", "decoder"


@dataclass(frozen=True)
class Exercise:
    name: str  # the exercise's record, and its name in messages and reports
    test_prefix: str  # the grade ids of its graded tests start with it
    answer_cell: str  # the grade id of the master's solution cell it is answered in
    module: str  # vaetp.<module> holds its extract and the checks its graded cells call
    extract: str  # the kernel-side function that records it
    names: tuple[str, ...]  # the notebook's names passed to the extract (the first is judged)
    parameters: tuple[str, ...] = ()  # the master's parameters passed to it, by name
    record: str = CALLS
    #: Later exercises build on what this one defines: after it is recorded, a missing or
    #: unusable one is replaced by the grader's stand-in (`vaetp.stand_ins`).
    stand_in: bool = False


EXERCISES = (
    Exercise("kl_divergence", "test_kl_", "kl_exercise", "loss_checks", "extract_kl",
             ("kl_divergence",), ("latent_dim",), stand_in=True),
    Exercise("decoder", "test_decoder_", "decoder_exercise", "decoder_data", "extract",
             ("decoder",), ("latent_dim", "original_dim"), record=DECODER, stand_in=True),
    Exercise("vae", "test_vae_", "vae_exercise", "vae_checks", "extract_vae",
             ("vae", "encoder", "decoder"), ("original_dim",)),
    Exercise("reconstruction_loss", "test_reconstruction_", "reconstruction_exercise",
             "loss_checks", "extract_reconstruction", ("reconstruction_loss",), ("original_dim",)),
    Exercise("generate_digits", "test_generation_", "generate_exercise", "generation_checks",
             "extract_generation", ("generate_digits",), ("latent_dim", "original_dim")),
    Exercise("anomaly_scores", "test_anomaly_scores_", "anomaly_exercise", "anomaly_checks",
             "extract_anomaly_scores", ("anomaly_scores",), ("latent_dim", "original_dim")),
    Exercise("roc_auc", "test_roc_auc_", "anomaly_exercise", "roc_checks", "extract_roc_auc",
             ("roc_auc",)),
    Exercise("conv_vae", "test_conv_", "conv_exercise", "conv_checks", "extract_conv_vae",
             ("conv_encoder", "conv_decoder"), ("latent_dim",)),
)


def by_name(name: str) -> Exercise:
    found = next((e for e in EXERCISES if e.name == name), None)
    if found is None:
        raise KeyError(f"no exercise named {name!r} (vaetp/exercises.py)")
    return found


def extract_function(exercise: Exercise) -> Any:
    return getattr(importlib.import_module(f"vaetp.{exercise.module}"), exercise.extract)


def record_bytes(namespace: dict[str, Any], name: str, parameters: dict[str, int],
                 seed: int) -> bytes:
    """Kernel side: record the exercise `name` from the notebook's `namespace` on the inputs
    of `seed`, as bytes (the probe hands only these to the grader)."""
    from vaetp import calls

    exercise = by_name(name)
    values = [namespace.get(n) for n in exercise.names]
    sizes = {p: int(parameters[p]) for p in exercise.parameters}
    extract = extract_function(exercise)
    if exercise.record == DECODER:
        from vaetp import decoder_data

        return decoder_data.to_bytes(extract(*values, **sizes, seed=int(seed)))
    with calls.keeping_random_state(*values):
        return calls.to_bytes(extract(*values, **sizes, seed=int(seed)))


def read_record(exercise: Exercise, blob: bytes) -> Any:
    """Judge side (NumPy only): the record from its bytes, refused if malformed."""
    if exercise.record == DECODER:
        from vaetp import decoder_data

        return decoder_data.from_bytes(blob)
    from vaetp import calls

    return calls.from_bytes(blob, exercise.name)


def missing_record(exercise: Exercise) -> Any:
    """The record of an exercise whose names are not in the notebook (judged as missing)."""
    if exercise.record == DECODER:
        from vaetp.decoder_data import DecoderData

        return DecoderData("missing")
    from vaetp import calls

    return calls.CallRecord(exercise.name, calls.MISSING)
