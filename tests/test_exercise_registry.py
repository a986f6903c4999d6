"""Each exercise is declared once (vaetp/exercises.py): its declaration matches the master's
cells and the function that records it, and the grader's probe is one typed call built from it."""

from __future__ import annotations

import ast
import inspect

import nbformat
import pytest

from course_paths import MASTER, master_sizes
from vaetp import exercises
from vaetp.grading import exercises as grading

DECLARED = {e.name: e for e in exercises.EXERCISES}


def master_graded_cells() -> dict[str, str]:
    """grade id -> source of the master's graded test cells."""
    return {c.metadata["nbgrader"]["grade_id"]: c.source
            for c in nbformat.read(MASTER, as_version=4).cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}


@pytest.mark.parametrize("name", list(DECLARED))
def test_the_declared_extract_takes_the_declared_names_and_parameters(name):
    """The probe calls `extract(*names, **parameters, seed=...)`: a declaration whose names or
    parameters do not fit the function's signature is named here, not at grading time."""
    exercise = DECLARED[name]
    signature = inspect.signature(exercises.extract_function(exercise))
    sizes = {p: master_sizes()[p] for p in exercise.parameters}
    signature.bind(*([None] * len(exercise.names)), **sizes, seed=0)  # raises TypeError if not


@pytest.mark.parametrize("name", list(DECLARED))
def test_the_graded_cells_of_an_exercise_use_only_the_names_the_judge_gives(name):
    """A graded cell runs in the judge with the exercise's checks module, its record, its
    other notebook names and the parameters: nothing else."""
    exercise = DECLARED[name]
    given = set(grading.judge_names(exercise, None, master_sizes())) | {"globals"}
    cells = {g: src for g, src in master_graded_cells().items() if g.startswith(exercise.test_prefix)}
    assert cells, f"{name}: no graded cell of the master starts with {exercise.test_prefix!r}"
    for grade_id, source in cells.items():
        used = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
        assert used <= given, f"{grade_id} uses {used - given}, which the judge does not give"


def test_every_graded_cell_belongs_to_one_exercise():
    for grade_id in master_graded_cells():
        owners = [e.name for e in exercises.EXERCISES if grade_id.startswith(e.test_prefix)]
        assert len(owners) == 1, f"{grade_id}: exercises {owners} (vaetp/exercises.py)"


def test_the_probe_is_one_call_with_literals_only():
    """Nothing of the notebook's is written into the probe: the exercise's name, the master's
    integers and the seed, as Python literals."""
    probe = grading.probe(DECLARED["generate_digits"], master_sizes(), 123456789)
    tree = ast.parse(probe)
    (call,) = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
               and getattr(n.func, "attr", "") == "record_bytes"]
    name, sizes = call.args[1:]
    assert ast.literal_eval(name) == "generate_digits"
    assert ast.literal_eval(sizes) == {k: master_sizes()[k] for k in ("latent_dim", "original_dim")}
    assert [(k.arg, ast.literal_eval(k.value)) for k in call.keywords] == [("seed", 123456789)]


def test_an_exercise_that_is_not_declared_cannot_be_recorded():
    with pytest.raises(KeyError, match="no exercise named 'os.system'"):
        exercises.record_bytes({}, "os.system", {}, seed=0)


@pytest.mark.parametrize("name", list(DECLARED))
def test_a_notebook_without_the_answer_passes_none_of_its_graded_cells(name):
    """Recorded in a kernel where the notebook's names are missing, read back by the judge
    (NumPy only): every graded cell of the exercise fails, with a plain sentence."""
    exercise = DECLARED[name]
    blob = exercises.record_bytes({}, name, master_sizes(), seed=5)
    names = grading.judge_names(exercise, blob, master_sizes())
    for grade_id, source in master_graded_cells().items():
        if grade_id.startswith(exercise.test_prefix):
            with pytest.raises(AssertionError) as failed:
                exec(source, dict(names))  # noqa: S102 - the master's graded cell
            assert str(failed.value) and "Traceback" not in str(failed.value), grade_id
