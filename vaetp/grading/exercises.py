"""The graded exercises: where each one's record is made in the kernel, and how it is read.

An exercise's graded test cells share a grade-id prefix (`test_decoder_...`). When grading
reaches the first of them, the grader sends the exercise's *probe* to the student's kernel: a
few lines that record what the exercise built (`vaetp.decoder_data.extract`) and display the
record under a private MIME type, as base64. Only that record leaves the kernel. The judge
(`vaetp.grading.judge`) then runs the graded cells' code, taken from the gradebook, against
the record, in a process that never ran student code.

To add an exercise: give its graded cells a common prefix, write its record (extract / to_bytes
/ from_bytes, like vaetp/decoder_data.py) and checks that accept the record, and add an
`Exercise` below whose `probe` calls the extract and whose `namespace` binds the names the
graded cells use.
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


def _decoder_probe(parameters: dict[str, int], seed: int) -> str:
    return f"""\
def _vaetp_record():
    import base64
    from IPython.display import display
    from vaetp import decoder_data
    names = get_ipython().user_ns
    record = decoder_data.extract(names.get("decoder"), names.get("encoder"),
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


EXERCISES = (Exercise("decoder", "test_decoder_", _decoder_probe, _decoder_namespace),)


def exercise_of(grade_id: str) -> Exercise | None:
    return next((e for e in EXERCISES if grade_id.startswith(e.test_prefix)), None)
