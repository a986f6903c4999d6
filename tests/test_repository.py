"""What a maintainer promises: every referenced file exists, generated files are fresh,
the conda and pip environments pin the same packages."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from course_paths import MASTER, ROOT, STUDENT, master_sizes

NOTEBOOKS = [MASTER, STUDENT]
MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)")
HTML_IMAGE = re.compile(r"<img[^>]*\ssrc=[\"']([^\"']+)")
LOAD = re.compile(r"^#?\s*%load\s+(\S+)", re.MULTILINE)


def markdown_images(nb):
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for ref in MARKDOWN_IMAGE.findall(cell.source) + HTML_IMAGE.findall(cell.source):
                yield cell, ref


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_image_a_notebook_shows_exists(path):
    nb = nbformat.read(path, as_version=4)
    refs = list(markdown_images(nb))
    assert refs, "the TP's diagrams are missing"
    for cell, ref in refs:
        if ref.startswith("attachment:"):
            name = ref.split(":", 1)[1]
            attachment = cell.get("attachments", {}).get(name)
            assert attachment, f"{path.name}: cell {cell.id} shows {ref} but has no such attachment"
            data = base64.b64decode(next(iter(attachment.values())))
            assert data == (ROOT / "images" / name).read_bytes(), f"{name} differs from images/{name}"
        else:
            assert not ref.startswith(("http:", "https:")), f"{ref}: the course must work offline"
            assert (path.parent / ref).exists(), f"{path.name}: {ref} does not exist"


def test_the_diagrams_are_svg_drawn_for_the_course():
    for name in ("vae.svg", "reparameterization.svg"):
        text = (ROOT / "images" / name).read_text(encoding="utf-8")
        assert text.lstrip().startswith(("<?xml", "<svg")) and "<title>" in text
        assert "href=\"http" not in text, f"{name} must not load anything from the web"


def test_png_renderings_of_the_diagrams_are_fresh():
    """JupyterLab shows PNG attachments, not SVG ones: each PNG records the SVG it came from."""
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "render_images.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_notebooks_embed_no_svg_attachment():
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            for name, bundle in cell.get("attachments", {}).items():
                assert "image/svg+xml" not in bundle, f"{path.name}: {name} (JupyterLab 4 shows no SVG attachment)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_percent_load_path_resolves_from_the_notebook_folder(path):
    nb = nbformat.read(path, as_version=4)
    loads = [ref for c in nb.cells if c.cell_type == "code" for ref in LOAD.findall(c.source)]
    assert loads, "the exercise must offer its solution with %load"
    for ref in loads:
        assert ref.startswith("../solutions/")
        # The student notebook sits in notebooks/, where Jupyter starts its kernel.
        assert (STUDENT.parent / ref).resolve().is_file(), ref


def test_generated_files_are_fresh():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "generate.py"), "--check"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_student_notebook_has_no_solution_and_no_hidden_test():
    text = STUDENT.read_text(encoding="utf-8")
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "check_every_weight_learns", 'name="decoder_output"'):
        assert marker not in text
    exercises = [c for c in nbformat.read(STUDENT, as_version=4).cells
                 if "%load ../solutions/" in c.source]
    assert [c.id for c in exercises] == ["kl-exercise", "decoder-exercise", "vae-exercise",
                                         "reconstruction-exercise", "generate-exercise",
                                         "anomaly-exercise", "conv-exercise"]
    for exercise in exercises:
        # the %load line, then a comment: no `raise` in the stub (JupyterLab ignores `%load`
        # in a cell that ends in an error), no code that would hide a missing answer
        load, *rest = exercise.source.strip().splitlines()
        assert load.startswith("# %load ../solutions/") and load.endswith(".py"), exercise.id
        assert rest == ["# YOUR CODE HERE (see the instructions above)"], (exercise.id, rest)


def course_copy(root: Path) -> Path:
    """A copy of the course's files, for `tools/generate.py --root` (never the repository's)."""
    for name in ("source", "images", "notebooks", "solutions"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copy(ROOT / "nbgrader_config.py", root / "nbgrader_config.py")
    return root


def test_stale_student_notebook_is_detected(tmp_path, capsys):
    import generate

    course = course_copy(tmp_path)
    student = course / "notebooks" / "vae_tp.ipynb"
    student.write_text(STUDENT.read_text().replace("Variational", "Variatonal"))
    assert generate.main(["--root", str(course), "--check"]) == 1
    assert "stale: notebooks/vae_tp.ipynb" in capsys.readouterr().out


def requirement_pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip().lstrip("- ").strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_conda_environment_and_pip_requirements_pin_the_same_packages():
    req = requirement_pins((ROOT / "requirements.txt").read_text().splitlines())
    env_text = (ROOT / "environment.yml").read_text()
    pip_section = env_text.split("- pip:", 1)[1].splitlines()
    env = requirement_pins(pip_section)
    assert req and req == env
    for needed in ("graphviz", "python="):
        assert needed in env_text
    assert "pydot" in req


def test_readme_commands_exist_in_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-zA-Z][\w-]*):", makefile, re.MULTILINE))
    readme = (ROOT / "README.md").read_text()
    used = set(re.findall(r"`make ([a-z][\w-]*)", readme))
    assert {"lab", "test", "run"} <= used
    assert used <= targets, f"README mentions targets the Makefile lacks: {used - targets}"


def test_trained_weights_and_run_outputs_are_git_ignored():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "build/" in ignored and "notebooks/weights/" in ignored


def test_generate_keeps_a_copy_of_a_student_notebook_someone_worked_in(tmp_path):
    import generate

    course = course_copy(tmp_path)
    worked = nbformat.read(STUDENT, as_version=4)
    exercise = next(c for c in worked.cells if c.id == "decoder-exercise")
    exercise.source = "decoder = my_own_decoder()"
    exercise.execution_count = 3
    target = course / "notebooks" / "vae_tp.ipynb"
    nbformat.write(worked, target)
    assert generate.main(["--root", str(course)]) == 0
    (backup,) = (course / "build" / "generate-backups").iterdir()
    assert "my_own_decoder" in backup.read_text()
    assert target.read_text() == STUDENT.read_text()


def test_every_graded_exercise_names_an_answer_cell_and_tests_of_the_master():
    """vaetp/exercises.py declares, for each exercise, the master's solution cell the
    student answers it in and the prefix of its graded tests: an exercise renamed in the master
    without it (or the other way round) is caught here, with the one place to edit."""
    from vaetp.grading.exercises import EXERCISES

    cells = [c.metadata.get("nbgrader", {}) for c in nbformat.read(MASTER, as_version=4).cells]
    answers = {m.get("grade_id") for m in cells if m.get("solution") and not m.get("grade")}
    tests = [m.get("grade_id", "") for m in cells if m.get("grade") and not m.get("solution")]
    for exercise in EXERCISES:
        assert exercise.answer_cell in answers, (
            f"{exercise.name}: no solution cell {exercise.answer_cell!r} in the master; fix "
            "answer_cell in vaetp/exercises.py")
        assert any(t.startswith(exercise.test_prefix) for t in tests), (
            f"{exercise.name}: no graded test starts with {exercise.test_prefix!r}; fix "
            "test_prefix in vaetp/exercises.py")


@pytest.mark.parametrize(("fake", "words"), [
    ('[ "$1" = "--version" ] && echo "Python 3.10.12"; exit 1',
     "The course needs Python 3.11 or later; {python} is Python 3.10.12. Run make PYTHON=python3.11"),
    ('case "$2" in *version_info*) exit 0;; esac; exit 1',
     "{python} cannot create a virtual environment: install it first (Debian/Ubuntu: apt-get "
     "install python3-venv)."),
], ids=["python-3.10", "no-venv"])
def test_make_setup_names_the_fix_for_an_old_python_or_a_missing_venv(tmp_path, fake, words):
    python = tmp_path / "python3"
    python.write_text("#!/bin/sh\n" + fake + "\n")
    python.chmod(0o755)
    done = subprocess.run(["make", "-s", "-C", str(ROOT), "setup", f"PYTHON={python}",
                           f"VENV={tmp_path / 'venv'}"], capture_output=True, text=True)
    assert done.returncode != 0
    assert words.format(python=python) in done.stdout, done.stdout + done.stderr
    assert not (tmp_path / "venv").exists()


def test_the_package_installs_with_its_grading_subpackage_and_templates():
    """A plain (non-editable) install has vaetp.grading and the feedback template."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]
    on_disk = sorted(str(p.parent.relative_to(ROOT)).replace("/", ".")
                     for p in (ROOT / "vaetp").rglob("__init__.py"))
    assert sorted(packages) == on_disk
    data = project["tool"]["setuptools"]["package-data"]["vaetp"]
    assert "grading/templates/*/*" in data
    assert project["project"]["requires-python"] == ">=3.11"


def test_the_docs_give_the_simulated_class_its_real_size():
    """Wherever the README or the docs give the simulated class's size, it is the number of
    students tests/simulated_class.py builds (written as "simulated class (N students")."""
    sys.path.insert(0, str(ROOT / "tools"))
    import simulated_class

    solutions = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "solutions").glob("*.py")}
    size = len(simulated_class.build(nbformat.read(STUDENT, as_version=4), solutions))
    found = {}
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = " ".join(path.read_text(encoding="utf-8").split())
        found[path.name] = [int(n) for n in re.findall(r"simulated class \((\d+) students", text)]
        # no other way of giving the size that this test would not see
        assert not re.findall(r"\b\d+ (?:simulated students|submissions including)", text), path
    assert sum(found.values(), []), found
    assert {n for ns in found.values() for n in ns} == {size}, (found, size)


def test_the_documented_mem_limit_holds_the_measured_peak_of_the_whole_tp():
    """docs/jupyterhub.md's mem_limit is above the peak memory of a whole TP that `make
    bench-student` measured (docs/performance.md), with room for the server."""
    hub = (ROOT / "docs" / "jupyterhub.md").read_text(encoding="utf-8")
    perf = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    limits = set(re.findall(r'mem_limit` \| `"([\d.]+)G"`', hub))
    assert len(limits) == 1, limits
    limit = float(limits.pop())
    assert f'mem_limit = "{limit:g}G"' in hub
    section = perf[perf.index("## One student's whole TP"):]
    section = section[:section.index("\n## ")]
    header = next(line for line in section.splitlines() if line.startswith("| students at once"))
    column = [c.strip() for c in header.split("|")].index("peak RSS (GiB), max")
    rows = [line for line in section.splitlines()
            if re.match(r"^\| \d+ \| ", line)]
    peaks = [float(line.split("|")[column]) for line in rows]
    assert peaks and limit >= 1.05 * max(peaks), (limit, peaks)


def test_make_test_without_bubblewrap_stops_first_with_the_command_to_run(tmp_path):
    """Not root and no bubblewrap: `make test` stops before pytest, with one line that names
    the package to install (the grading tests would fail with nbgrader's message otherwise)."""
    fake_id = tmp_path / "id"
    fake_id.write_text("#!/bin/sh\necho 1000\n")
    fake_id.chmod(0o755)
    done = subprocess.run(["make", "-s", "-C", str(ROOT), "system-deps", f"PATH={tmp_path}"],
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert done.stdout.strip() == (
        "The tests grade notebooks in a bubblewrap sandbox, which is not installed: run sudo "
        "apt-get install bubblewrap graphviz (Debian/Ubuntu), then make test again."), done.stdout
    # with both installed (this machine), nothing is done and nothing is said
    here = subprocess.run(["make", "-s", "-C", str(ROOT), "system-deps"], capture_output=True,
                          text=True)
    assert here.returncode == 0 and here.stdout == ""


def test_the_instructor_cli_is_in_the_package_and_imports_no_script_of_tools():
    """`vae-tp-grade` (vaetp.grading.cli) runs from an installed environment: it needs nothing
    of tools/, which only holds entry points and the test suite's simulated class."""
    script = ("import sys\n"
              "sys.path = [p for p in sys.path if not p.rstrip('/').endswith('tools')]\n"
              "import vaetp.grading.cli\n"
              "tools = {p.stem for p in __import__('pathlib').Path('tools').glob('*.py')}\n"
              "assert not tools & set(sys.modules), tools & set(sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    grade_py = (ROOT / "tools" / "grade.py").read_text()
    assert "from vaetp.grading.cli import main" in grade_py and len(grade_py.splitlines()) < 25


def test_the_example_class_expects_what_the_simulated_class_proves():
    """alice full marks, bob two tests fewer, carol nothing: bob is graded in the grading round
    as the simulated student `example-bob`, with these points."""
    from vaetp.grading import example_class
    from vaetp.grading.release import solution_files

    release = nbformat.read(STUDENT, as_version=4)
    students = example_class.build(release, solution_files(nbformat.read(MASTER, as_version=4)))
    total = sum(example_class.graded_tests(release).values())
    assert [(s.name, s.expected, s.out_of) for s in students] == [
        ("alice", total, total), ("bob", total - 2, total), ("carol", 0, total)]
    width = example_class.wrong_width(master_sizes()["intermediate_dim"])
    assert f"Dense({width}," in example_class.cell(students[1].notebook, "decoder-exercise").source


def test_the_docs_say_what_the_master_grades():
    """docs/instructor.md's counts of what is graded are generated from the master and
    vaetp/exercises.py (`make generate`); its table has one row per declared exercise, and the
    README's first paragraph counts the exercises and the questions: a test, an exercise or a
    point added in the master without them is named here."""
    import generate
    from vaetp.grading.exercises import EXERCISES

    master = nbformat.read(MASTER, as_version=4)
    instructor = (ROOT / "docs" / "instructor.md").read_text()
    assert generate.what_is_graded(master) in instructor.splitlines(), "run `make generate`"
    table = re.findall(r"^\| [^|]*\(`(test_[a-z_]+_)`\)", instructor, re.MULTILINE)
    assert table == [e.test_prefix for e in EXERCISES], (
        "docs/instructor.md's table of what is graded: one row per exercise of "
        "vaetp/exercises.py, in its order")
    questions = sum(1 for c in master.cells if c.metadata.get("nbgrader", {}).get("grade")
                    and c.metadata["nbgrader"].get("solution"))
    words = dict(enumerate(generate.NUMBER_WORDS))
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"in {words[len(EXERCISES)]} graded exercises" in readme and \
        f"answer {words[questions]} questions" in readme, \
        "README.md's first paragraph counts the exercises and the questions"


def test_each_exercise_cell_named_in_a_message_is_the_masters():
    """The checks tell a student where to write an answer ('the exercise cell of section 8'):
    each such constant names the section of its exercise's answer cell in the master."""
    from vaetp import anomaly_checks, conv_checks, generation_checks, loss_checks, roc_checks
    from vaetp import vae_checks

    from vaetp import checks

    named = {"kl_exercise": loss_checks.KL_CELL, "decoder_exercise": checks.CELL,
             "reconstruction_exercise": loss_checks.RECONSTRUCTION_CELL,
             "vae_exercise": vae_checks.CELL, "generate_exercise": generation_checks.GENERATION_CELL,
             "anomaly_exercise": anomaly_checks.SCORES_CELL,
             "conv_exercise": conv_checks.CELL}
    roc = roc_checks.ROC_CELL
    section, found = None, {}
    for cell in nbformat.read(MASTER, as_version=4).cells:
        heading = re.match(r"## (\d+)\.", cell.source) if cell.cell_type == "markdown" else None
        section = int(heading.group(1)) if heading else section
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in named:
            found[grade_id] = section
    for grade_id, text in named.items():
        assert f"section {found[grade_id]}" in text, (
            f"{text!r} should name section {found[grade_id]}, where the master's {grade_id} is: "
            "edit that constant in vaetp/")
    assert roc == anomaly_checks.SCORES_CELL  # roc_auc is answered in the same cell


def test_a_change_of_points_is_one_edit_in_the_master_then_make_generate(tmp_path):
    """An instructor makes the KL's hidden test worth 2 points: after `make generate`, the
    student notebook and the docs' counts say so, and nothing else needs an edit to be fresh."""
    import generate

    course = course_copy(tmp_path)
    shutil.copytree(ROOT / "docs", course / "docs")
    master = course / "source" / "vae" / "vae_tp.ipynb"
    nb = nbformat.read(master, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_kl_wide")
    cell.metadata["nbgrader"]["points"] = 2
    nbformat.write(nb, master)
    assert generate.main(["--root", str(course)]) == 0
    assert generate.main(["--root", str(course), "--check"]) == 0
    student = nbformat.read(course / "notebooks" / "vae_tp.ipynb", as_version=4)
    points = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"]
              for c in student.cells if c.metadata.get("nbgrader", {}).get("grade")}
    assert points["test_kl_wide"] == 2
    before = generate.what_is_graded(nbformat.read(MASTER, as_version=4))
    after = generate.what_is_graded(nbformat.read(master, as_version=4))
    assert after in (course / "docs" / "instructor.md").read_text().splitlines() and after != before
