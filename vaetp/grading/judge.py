"""The judge: graded tests run here, on records, in a process that never ran student code.

    python -m vaetp.grading.judge JOB_FOLDER      # prints {"verdicts": {...}} as JSON

JOB_FOLDER holds `job.json` (the notebook's parameters from the master, each graded test
cell's code from the gradebook, hidden tests included, and the seed the student's inputs were
chosen from: a record made for another seed is refused) and one `<exercise>.npz` record per
exercise that the student's kernel handed over. Each test cell's code is run with `exec` in a
fresh namespace holding the record (e.g. `decoder`), the `checks` module and the parameters; a
test passes when its code raises nothing. A failed test's verdict is the exception's message
alone, never a traceback, so the feedback shows the plain sentence and no test code.

The grader starts the judge in the same kind of sandbox as the kernels (read-only environment,
the job folder read-only, no network) with a time limit. The judge imports NumPy and
`vaetp.checks`, never TensorFlow: a record is numbers, and nothing in it is executed.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

from vaetp.grading.exercises import EXERCISES, exercise_of, judge_names

#: The ename of a test that could not judge the record (broken or forged record, grader bug).
GRADING_ERROR = "GradingError"
#: The ename of a test whose exercise handed no record (kernel died, timed out, sabotaged).
NO_RECORD = "NothingToGrade"


def _message(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:1000] if len(text) > 1000 else text


def judge(job: dict[str, Any], folder: Path) -> dict[str, dict[str, Any]]:
    parameters = {k: int(v) for k, v in job["parameters"].items()}
    namespaces: dict[str, dict[str, Any] | tuple[str, str]] = {}
    for exercise in EXERCISES:
        path = folder / f"{exercise.name}.npz"
        if not path.is_file():
            why = job.get("missing", {}).get(exercise.name, "your notebook did not hand your "
                                                               "work to the grader")
            namespaces[exercise.name] = (NO_RECORD, f"the grader received nothing to grade from "
                                                    f"your notebook for the {exercise.name}: {why}.")
            continue
        blob = path.read_bytes()
        try:
            names = judge_names(exercise, blob, parameters)
            seeds = {getattr(v, "seed", None) for v in names.values() if hasattr(v, "seed")}
            if "seed" in job and seeds - {None, int(job["seed"])}:
                raise ValueError("it was made on inputs chosen for another student or run")
            namespaces[exercise.name] = names
        except Exception as err:  # noqa: BLE001 - a broken record fails its tests, with why
            namespaces[exercise.name] = (GRADING_ERROR, f"the grader could not read what your "
                                                        f"notebook handed over for the "
                                                        f"{exercise.name} ({_message(err)}).")
    verdicts = {}
    for test in job["tests"]:
        grade_id, source = test["grade_id"], test["source"]
        exercise = exercise_of(grade_id)
        names = namespaces.get(exercise.name) if exercise else None
        if names is None or isinstance(names, tuple):
            ename, message = names or (GRADING_ERROR, f"no exercise is known for {grade_id}.")
            verdicts[grade_id] = {"passed": False, "ename": ename, "message": message}
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compile(source, f"<graded test {grade_id}>", "exec"), dict(names))  # noqa: S102
        except AssertionError as err:
            verdicts[grade_id] = {"passed": False, "ename": type(err).__name__,
                                  "message": _message(err)}
        except Exception as err:  # noqa: BLE001
            verdicts[grade_id] = {"passed": False, "ename": GRADING_ERROR,
                                  "message": f"the test could not run on your work "
                                             f"({type(err).__name__}: {_message(err)})."}
        else:
            verdicts[grade_id] = {"passed": True, "ename": "", "message": ""}
    return verdicts


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    job = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    print(json.dumps({"verdicts": judge(job, folder)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
