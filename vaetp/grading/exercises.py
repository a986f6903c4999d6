"""The graded exercises, on the grader's side: the probe sent to the student's kernel, and the
names the judge runs an exercise's graded cells with. The exercises themselves are declared once,
in `vaetp.exercises` (kernel side too: the probe calls its `record_bytes`).

An exercise's graded test cells share a grade-id prefix (`test_decoder_...`). When grading
reaches the first of them, the grader sends the exercise's *probe* to the student's kernel: one
typed call, `vaetp.exercises.record_bytes(<the notebook's names>, <exercise>, <parameters>,
<seed>)`, whose record is displayed under a private MIME type, as base64. Only that record
leaves the kernel. The judge (`vaetp.grading.judge`) then runs the graded cells' code, taken
from the gradebook, against the record, in a process that never ran student code.
"""

from __future__ import annotations

from typing import Any

from vaetp.exercises import DECODER, EXERCISES, Exercise, missing_record, read_record

__all__ = ["EXERCISES", "Exercise", "MIME", "exercise_of", "judge_names", "probe",
           "stand_in_code", "stand_in_note"]

MIME = "application/x-vaetp-record+base64"


def probe(exercise: Exercise, parameters: dict[str, int], seed: int) -> str:
    """The kernel code that records `exercise` on the inputs of `seed` and displays the record.
    Its only values are the exercise's name, integers and the MIME type, written by `repr`."""
    sizes = {p: int(parameters[p]) for p in exercise.parameters}
    return f"""\
def _vaetp_record():
    import base64
    from IPython.display import display
    from vaetp import exercises
    blob = exercises.record_bytes(get_ipython().user_ns, {exercise.name!r}, {sizes!r}, seed={int(seed)!r})
    display({{{MIME!r}: base64.b64encode(blob).decode()}}, raw=True)
_vaetp_record()
del _vaetp_record
"""


def judge_names(exercise: Exercise, blob: bytes | None, parameters: dict[str, int]
                ) -> dict[str, Any]:
    """The names an exercise's graded cells run with in the judge: its checks module, its record
    under the first of its notebook names (the others, which only a live check needs, stand for
    the record), and the parameters."""
    import importlib

    record = missing_record(exercise) if blob is None else read_record(exercise, blob)
    if exercise.record == DECODER:
        from vaetp import checks

        return {"checks": checks, "decoder": record, "encoder": checks.RECORDED,
                "decoder_spec": checks.DecoderSpec.from_parameters(parameters), **parameters}
    found: dict[str, Any] = {n: None for n in exercise.names[1:]}
    found[exercise.names[0]] = record
    return {exercise.module: importlib.import_module(f"vaetp.{exercise.module}"), **found,
            **parameters}


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


def exercise_of(grade_id: str) -> Exercise | None:
    return next((e for e in EXERCISES if grade_id.startswith(e.test_prefix)), None)
