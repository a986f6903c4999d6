"""An instructor changes a size in the master's parameters cell, runs `make generate`, and the
whole course follows: the stored parameter table, the check cells, the graded and hidden tests,
the stand-ins and the grader, with no other edit (docs/instructor.md, "To change an exercise").

Each variant is made as the docs say: a copy of the course's files (source/, images/,
nbgrader_config.py) whose master has one line of its parameters cell changed
(`vaetp.course.with_parameters`), then `tools/generate.py --root` on that copy. Then:

- the suite's exercise, judge and check tests run on the variant (VAE_TP_TEST_COURSE: their
  fixtures, solutions and graded cells are the variant's);
- the variant's master runs under nbval in fast mode: the master's own solutions pass every
  graded test, the hidden ones included, and the decoder's table matches the new sizes;
- the variant is released and a small class is graded with the real grader (sandbox, judge):
  right answers get full marks, and a decoder written with the old sizes as literals loses
  exactly the tests that its wrong size concerns.
"""

from __future__ import annotations

import copy
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import generate
import simulated_class
from course_paths import MASTER, ROOT, master_sizes
from vaetp import checks
from vaetp.course import master_parameters, with_parameters

pytestmark = pytest.mark.slow

#: The sizes of the course under test (the TP's 2 / 512 / 784, or those of a clone made by
#: `make test-variant`): each variant changes one of them.
BASE = master_sizes()


def _other(name: str, *choices: int) -> tuple[str, int]:
    return name, next(value for value in choices if value != BASE[name])


#: The two changes instructors make most: a larger latent space, a narrower MLP (or, where the
#: course under test already has that size, another one).
VARIANTS = {f"{name}-{value}": {name: value}
            for name, value in (_other("latent_dim", 10, 3), _other("intermediate_dim", 256, 128))}
#: Right answers, and honest skips: the simulated class's students whose code names the sizes
#: by their parameters (so their expected scores hold for any sizes).
SIZE_FREE = ("loaded", "sequential", "subclassed", "unsolved", "skips-kl", "skips-decoder")
OLD_SIZES = "tp-sizes-as-literals"  # the course's own sizes (2 / 512 / 784), typed as numbers


def make_variant(root: Path, changes: dict[str, int]) -> Path:
    """The documented change, done on a copy of the course: edit the parameters cell, generate."""
    for name in ("source", "images"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copy(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    master = root / MASTER.relative_to(ROOT)
    nbformat.write(with_parameters(nbformat.read(master, as_version=4), **changes), master)
    assert generate.main(["--root", str(root)]) == 0
    assert generate.main(["--root", str(root), "--check"]) == 0
    return master


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param)
    changes = VARIANTS[request.param]
    return {"root": root, "changes": changes, "master": make_variant(root, changes)}


def test_the_variant_has_the_new_sizes_and_the_stored_table_follows(variant):
    parameters = master_parameters(variant["master"])
    assert {k: parameters[k] for k in variant["changes"]} == variant["changes"]
    spec = checks.DecoderSpec.from_parameters(parameters)
    for path in (variant["master"], variant["root"] / "notebooks" / "vae_tp.ipynb"):
        nb = nbformat.read(path, as_version=4)
        table = next(c for c in nb.cells if c.get("id") == "decoder-parameters")
        if path == variant["master"]:  # nbgrader clears outputs in the release
            assert table.outputs[0]["text"] == checks.spec_table(spec)
    assert f"{spec.n_params:,}" in checks.spec_table(spec)
    assert spec.n_params != checks.DecoderSpec.from_parameters(master_parameters(MASTER)).n_params


def test_the_masters_own_solutions_pass_every_graded_test_of_the_variant(variant, tmp_path):
    """nbval runs the variant's master (solutions and hidden tests in it) in fast mode, and
    compares the decoder's printed table with the generated one."""
    path = tmp_path / "vae_tp.ipynb"
    path.write_bytes(variant["master"].read_bytes())
    env = {**os.environ, "VAE_TP_FAST": "1", "VAE_TP_FIGURES": str(tmp_path / "figures")}
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
               "--rootdir", str(tmp_path), "-c", os.devnull, str(path)]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " failed" not in done.stdout


#: The unit tests of the exercises, the judge and the check cells: sizes from the master.
UNIT_TESTS = ["tests/test_checks.py", "tests/test_judge.py", "tests/test_exercise_registry.py",
              "tests/test_stand_ins.py", *sorted(str(p.relative_to(ROOT))
                                                  for p in (ROOT / "tests").glob("test_exercise_*.py")
                                                  if p.name != "test_exercise_registry.py")]


def test_the_exercise_judge_and_check_tests_pass_on_the_variant(variant):
    env = {**os.environ, "VAE_TP_TEST_COURSE": str(variant["root"])}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m", "not slow",
               *UNIT_TESTS]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"course under test: {variant['root']}" in done.stdout  # the variant's, not ours
    assert " passed" in done.stdout and " failed" not in done.stdout


def grade(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VAE_TP_CELL_TIMEOUT": "30", "VAE_TP_MNIST": "sample",
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    env.pop("VAE_TP_SHIP_SOLUTIONS", None)
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "grade.py"), "--course",
                           str(course), *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"grade.py {args}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def old_sizes_student(release: nbformat.NotebookNode, changes: dict[str, int],
                      solved: simulated_class.Student) -> simulated_class.Student:
    """A decoder written with the course's sizes as numbers (2 -> 512 -> 784 in the TP): in
    the variant it is wrong in the one size that changed, and loses the tests about that size."""
    tests = simulated_class.graded_tests(release)
    ids = [t for t in tests if t.startswith("test_decoder_")]
    # the decoder's six tests: input shape, hidden layer, output layer, parameter count,
    # composition, computes-and-learns (2 points)
    decoder = {"latent_dim": (0, 1, 1, 1, 0, 2),  # the old input: its shape, no composition
               "intermediate_dim": (1, 0, 1, 0, 1, 2)}[next(iter(changes))]  # the old width
    scores = {**solved.scores, **{t: tests[t] if passed else 0 for t, passed in zip(ids, decoder)}}
    notebook = copy.deepcopy(solved.notebook)
    cell = next(c for c in notebook.cells if c.get("id") == simulated_class.EXERCISE_ID)
    d, h, o = BASE["latent_dim"], BASE["intermediate_dim"], BASE["original_dim"]
    cell.source = (simulated_class.LOAD_LINE + "\n"
                   + simulated_class.decoder_code(latent=str(d), hidden=str(h)))
    return simulated_class.Student(OLD_SIZES, f"the {d} -> {h} -> {o} decoder typed as numbers",
                                   notebook, scores, "written")


@pytest.fixture(scope="module")
def graded(variant):
    course = variant["root"]
    grade(course, "release")
    release = nbformat.read(course / "release" / "vae" / "vae_tp.ipynb", as_version=4)
    solutions = simulated_class.solutions_in(course / "release" / "solutions")
    corpus = {s.name: s for s in simulated_class.build(release, solutions) if s.name in SIZE_FREE}
    assert sorted(corpus) == sorted(SIZE_FREE)
    corpus[OLD_SIZES] = old_sizes_student(release, variant["changes"], corpus["loaded"])
    handed_in = course.parent / f"{course.name}-handed-in"
    handed_in.mkdir()
    for student in corpus.values():
        simulated_class.write_submission(student, handed_in / f"{student.name}.ipynb")
    grade(course, "autograde", "--submissions", str(handed_in), "--jobs", "2")
    grade(course, "feedback")
    grade(course, "grades")
    with (course / "grading_report.csv").open(newline="", encoding="utf-8") as fh:
        report = {row["student_id"]: row for row in csv.DictReader(fh)}
    return {"corpus": corpus, "report": report, "course": course, "release": release}


def test_a_class_graded_on_the_variant_gets_its_exact_scores(graded):
    wrong = {}
    for name, student in graded["corpus"].items():
        found = {t: int(float(graded["report"][name][t])) for t in student.scores}
        if found != student.scores:
            wrong[name] = {t: (student.scores[t], found[t]) for t in found
                           if found[t] != student.scores[t]}
    assert not wrong, f"(expected, got) per test: {wrong}"
    assert graded["corpus"]["loaded"].total == sum(
        simulated_class.graded_tests(graded["release"]).values())


def test_the_old_sizes_are_named_in_the_feedback(graded, variant):
    parameters = master_parameters(variant["master"])
    page = (graded["course"] / "feedback" / OLD_SIZES / "vae" / "vae_tp.html").read_text()
    if "latent_dim" in variant["changes"]:
        told = (f"your decoder takes inputs of shape (None, {BASE['latent_dim']}); the TP asks "
                f"for (None, {parameters['latent_dim']})")
    else:
        told = (f"your hidden layer has {BASE['intermediate_dim']} units; the TP asks for "
                f"{parameters['intermediate_dim']}")
    assert told in page
