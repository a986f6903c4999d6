"""The graded exercises: where each one's record is made in the kernel, and how it is read.

An exercise's graded test cells share a grade-id prefix (`test_decoder_...`). When grading
reaches the first of them, the grader sends the exercise's *probe* to the student's kernel: a
few lines that record what the exercise built (`vaetp.decoder_data.extract`) and display the
record under a private MIME type, as base64. Only that record leaves the kernel. The judge
(`vaetp.grading.judge`) then runs the graded cells' code, taken from the gradebook, against
the record, in a process that never ran student code.

To add an exercise: give its graded cells a common prefix; write a module `vaetp/<name>_checks.py`
with an `extract_...` that calls the student's function on inputs chosen from a seed
(`vaetp.calls.run`) and `check_*` functions that accept the live function or its record (see
vaetp/loss_checks.py); then add a `_function_exercise(...)` below. The decoder, recorded as
weights and outputs, has its own record format (vaetp/decoder_data.py). When later exercises
build on what it defines, give it `stand_in=True` and a stand-in in `vaetp.stand_ins`, so that a
student who skips it loses its points only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MIME = "application/x-vaetp-record+base64"


@dataclass(frozen=True)
class Exercise:
    name: str
    test_prefix: str
    probe: Callable[[dict[str, int], int], str]  # (parameters, seed) -> code for the kernel
    namespace: Callable[[bytes | None, dict[str, int]], dict[str, Any]]  # judge side
    answer_cell: str = ""  # the grade id of the solution cell the student answers it in
    #: Later exercises build on what this one defines: after it is recorded, a missing or
    #: unusable one is replaced by the grader's stand-in (`vaetp.stand_ins`).
    stand_in: bool = False


def _decoder_probe(parameters: dict[str, int], seed: int) -> str:
    return f"""\
def _vaetp_record():
    import base64
    from IPython.display import display
    from vaetp import decoder_data
    names = get_ipython().user_ns
    record = decoder_data.extract(names.get("decoder"), None,
                                  latent_dim={int(parameters["latent_dim"])},
                                  original_dim={int(parameters["original_dim"])}, seed={int(seed)})
    display({{"{MIME}": base64.b64encode(decoder_data.to_bytes(record)).decode()}}, raw=True)
_vaetp_record()
del _vaetp_record
"""


def _decoder_namespace(blob: bytes | None, parameters: dict[str, int]) -> dict[str, Any]:
    from vaetp import checks
    from vaetp.decoder_data import DecoderData, from_bytes

    record = DecoderData("missing") if blob is None else from_bytes(blob)
    return {"checks": checks, "decoder": record, "encoder": checks.RECORDED,
            "decoder_spec": checks.DecoderSpec.from_parameters(parameters), **parameters}


#: The parameters a stand-in is built from (`vaetp.stand_ins.put_in_place`).
STAND_IN_PARAMETERS = ("latent_dim", "intermediate_dim", "original_dim")


def stand_in_note(exercise: Exercise) -> str:
    """What the feedback adds to the first failed test of an exercise others build on."""
    return (f" (The later exercises that use your `{exercise.name}` were graded with a stand-in "
            "of the grader's wherever yours was missing or could not run, so this mistake costs "
            "only this exercise's points.)")


def stand_in_code(exercise: Exercise, parameters: dict[str, int]) -> str:
    """The kernel code that puts the exercise's stand-in in place, where the notebook's own is
    missing or unusable (run right after the exercise is recorded)."""
    sizes = {k: int(parameters[k]) for k in STAND_IN_PARAMETERS}
    return f"""\
def _vaetp_stand_in():
    from vaetp import stand_ins
    stand_ins.put_in_place(get_ipython().user_ns, {exercise.name!r}, {sizes!r})
_vaetp_stand_in()
del _vaetp_stand_in
"""


def _function_probe(module: str, extract: str, names: tuple[str, ...],
                    parameters: tuple[str, ...]) -> Callable[[dict[str, int], int], str]:
    """The probe of a function exercise: `module.extract(<the notebook's names>, <parameters>,
    seed=...)`, a `vaetp.calls.CallRecord`, displayed as bytes."""

    def probe(values: dict[str, int], seed: int) -> str:
        args = [f"names.get({n!r})" for n in names]
        args += [str(int(values[p])) for p in parameters]
        return f"""\
def _vaetp_record():
    import base64
    from IPython.display import display
    from vaetp import calls, {module}
    names = get_ipython().user_ns
    with calls.keeping_random_state({", ".join(f"names.get({n!r})" for n in names)}):
        record = {module}.{extract}({", ".join(args)}, seed={int(seed)})
    display({{"{MIME}": base64.b64encode(calls.to_bytes(record)).decode()}}, raw=True)
_vaetp_record()
del _vaetp_record
"""

    return probe


def _function_namespace(module: str, record_name: str, names: tuple[str, ...]
                        ) -> Callable[[bytes | None, dict[str, int]], dict[str, Any]]:
    """The judge's names for a function exercise: the module, the record under the first of
    `names` (the others, which only the live check needs, are placeholders), the parameters."""

    def namespace(blob: bytes | None, parameters: dict[str, int]) -> dict[str, Any]:
        import importlib

        from vaetp import calls

        record = calls.CallRecord(record_name, calls.MISSING) if blob is None else \
            calls.from_bytes(blob, record_name)
        found: dict[str, Any] = {n: None for n in names[1:]}
        found[names[0]] = record
        return {module: importlib.import_module(f"vaetp.{module}"), **found, **parameters}

    return namespace


def _function_exercise(name: str, prefix: str, module: str, extract: str, names: tuple[str, ...],
                       parameters: tuple[str, ...], record_name: str, answer_cell: str,
                       stand_in: bool = False) -> Exercise:
    return Exercise(name, prefix, _function_probe(module, extract, names, parameters),
                    _function_namespace(module, record_name, names), answer_cell, stand_in)


EXERCISES = (
    _function_exercise("kl_divergence", "test_kl_", "loss_checks", "extract_kl",
                       ("kl_divergence",), ("latent_dim",), "kl_divergence", "kl_exercise",
                       stand_in=True),
    Exercise("decoder", "test_decoder_", _decoder_probe, _decoder_namespace, "decoder_exercise",
             stand_in=True),
    _function_exercise("vae", "test_vae_", "vae_checks", "extract_vae",
                       ("vae", "encoder", "decoder"), ("original_dim",), "vae", "vae_exercise"),
    _function_exercise("reconstruction_loss", "test_reconstruction_", "loss_checks",
                       "extract_reconstruction", ("reconstruction_loss",), ("original_dim",),
                       "reconstruction_loss", "reconstruction_exercise"),
    _function_exercise("generate_digits", "test_generation_", "generation_checks",
                       "extract_generation", ("generate_digits",), ("latent_dim", "original_dim"),
                       "generate_digits", "generate_exercise"),
    _function_exercise("anomaly_scores", "test_anomaly_scores_", "anomaly_checks",
                       "extract_anomaly_scores", ("anomaly_scores",),
                       ("latent_dim", "original_dim"), "anomaly_scores", "anomaly_exercise"),
    _function_exercise("roc_auc", "test_roc_auc_", "roc_checks", "extract_roc_auc",
                       ("roc_auc",), (), "roc_auc", "anomaly_exercise"),
    _function_exercise("conv_vae", "test_conv_", "conv_checks", "extract_conv_vae",
                       ("conv_encoder", "conv_decoder"), ("latent_dim",), "conv_vae",
                       "conv_exercise"),
)


def exercise_of(grade_id: str) -> Exercise | None:
    return next((e for e in EXERCISES if grade_id.startswith(e.test_prefix)), None)
