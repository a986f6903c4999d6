"""An instructor grades a class with cheaters, spies and bombs in it: a whole nbgrader round.

One module-scoped run does what docs/instructor.md tells an instructor to do, with the real
nbgrader, through the bubblewrap sandbox, in a scratch course folder: release (with solutions,
then without), zip, autograde Moodle's "Download all submissions" zip with a roster and a due
date, feedback, grades, report; then a resubmission refused, forced, regraded; then every answer
graded by hand (as the Formgrader stores it), a late resubmission that changes one answer, and
the grades exported for Moodle. The class (tests/simulated_class.py) is built from that
release: every way a student notebook can go wrong and every trick we could think of, each
with its exact expected score on each graded test of each exercise. Canaries in source/ and in
another student's folder, a listening socket on the loopback, the gradebook, the repository's
git status and the host's processes are checked around the round.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
import socket
import threading

import simulated_class

from vaetp.grading import markers
from vaetp.grading import release as release_audit

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
GRADE = ROOT / "tools" / "grade.py"
NOTEBOOK = Path("vae") / "vae_tp.ipynb"
#: Seconds per cell in the test run: long enough for any cell of a fast-mode run on a loaded
#: 2-core machine, short enough that the endless loop costs little.
CELL_TIMEOUT = "30"
JOBS = "2"
RESUBMITTER = "unsolved"  # hands in a correct notebook after the first round
LATE_STUDENT = "sequential"  # hands in after the due date
#: After hand grading, RESUBMITTER hands in again, late: the answer to question 1 (hand-graded)
#: as before, a new answer to CHANGED_ANSWER.
KEPT_ANSWER, CHANGED_ANSWER = "question_overfitting", "question_latent_space"
DUE_DATE = "2026-12-04 23:59 UTC"
ON_TIME, LATE = (2026, 12, 4, 18, 0, 0), (2026, 12, 5, 9, 15, 0)
CANARY_OWNER = "hand"  # the spy targets a canary next to this student's submission
#: Every graded cell's points: the autograded tests and the questions graded by hand.
MAX_SCORE = sum(cell.metadata["nbgrader"]["points"]
                for cell in nbformat.read(ROOT / "source" / NOTEBOOK, as_version=4).cells
                if cell.metadata.get("nbgrader", {}).get("grade"))


def grader_files() -> dict[str, str]:
    """A hash of every file the grader runs or reads in the repository, and `git status` of
    them (the whole repository is clean in CI; here, only what grading could touch counts)."""
    found = {}
    for top in ("vaetp", "tools", "source", "nbgrader_config.py"):
        paths = [ROOT / top] if (ROOT / top).is_file() else sorted((ROOT / top).rglob("*"))
        for path in paths:
            if path.is_file() and "__pycache__" not in path.parts and "node_modules" not in path.parts:
                found[str(path.relative_to(ROOT))] = hashlib.sha256(path.read_bytes()).hexdigest()
    found["git status"] = subprocess.run(
        ["git", "status", "--porcelain", "--", "vaetp", "tools", "source", "nbgrader_config.py"],
        cwd=ROOT, capture_output=True, text=True).stdout
    return found


#: This module's grading round: in its cgroups' names and its sandboxes' environment
#: (vaetp.grading.sandbox.ROUND_ENV), so that the checks below see only what this round
#: started, never another grading running on the same machine.
ROUND = f"test{os.getpid()}x{int(time.time())}"


def sandbox_processes() -> list[str]:
    """Processes left over from this round's sandboxes: bubblewrap, graded kernels, the fork
    bomb (each carries the round's tag in its environment or its command line)."""
    left = []
    tag = f"VAE_TP_ROUND={ROUND}".encode()
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = path.read_bytes()
            environ = (path.parent / "environ").read_bytes()
        except OSError:
            continue
        if tag in environ or ROUND.encode() in command:
            left.append(command.replace(b"\0", b" ").decode(errors="replace")[:120])
    return left


class Listener:
    """A TCP socket on the loopback that counts connections (nobody should reach it)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port, self.hits, self.running = self.sock.getsockname()[1], 0, True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
                self.hits += 1
                conn.close()
            except OSError:
                continue

    def close(self) -> None:
        self.running = False
        self.thread.join(2)
        self.sock.close()


def grade(course: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["VAE_TP_CELL_TIMEOUT"] = CELL_TIMEOUT
    env["VAE_TP_ROUND"] = ROUND
    env.pop("VAE_TP_SHIP_SOLUTIONS", None)
    # The grades depend on the decoder's architecture only, not on the data: the notebooks
    # train on the MNIST sample bundled with vaetp (2,000 images), which halves the time of a
    # round. docs/instructor.md gives the timings of a real round, on the full MNIST.
    env["VAE_TP_MNIST"] = os.environ.get("VAE_TP_GRADING_TEST_MNIST", "sample")
    done = subprocess.run([sys.executable, str(GRADE), "--course", str(course), *args],
                          env=env, capture_output=True, text=True)
    if check and done.returncode != 0:
        pytest.fail(f"grade.py {' '.join(args)} failed ({done.returncode}):\n"
                    f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


def release_text(course: Path) -> dict[str, str]:
    """Every file of release/ as text (a notebook as its cells' sources)."""
    texts = {}
    for path in sorted(p for p in (course / "release").rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ipynb":
            text = "\n".join(cell.source for cell in nbformat.reads(text, as_version=4).cells)
        texts[path.relative_to(course / "release").as_posix()] = text
    return texts


def participants(names) -> dict[str, int]:
    """Moodle's participant number of each student (its download names carry it)."""
    return {name: 101 + i for i, name in enumerate(sorted(names))}


def full_name(name: str) -> tuple[str, str]:
    """A student's first and last names in the roster (and so in Moodle's download names)."""
    return re.sub(r"[^A-Za-z0-9]+", " ", name).strip().title(), "Tester"


def write_roster(path: Path, names) -> None:
    """The roster an instructor exports from Moodle: one row per student."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student_id", "participant_id", "first_name", "last_name", "email"])
        for name, number in participants(names).items():
            writer.writerow([name, number, *full_name(name), f"{name}@example.edu"])


def moodle_download(path: Path, notebooks: dict[str, bytes],
                    dates: dict[str, tuple[int, ...]]) -> Path:
    """Moodle's "Download all submissions" zip: a folder per student named after them
    (`<full name>_<participant>_assignsubmission_file_/`), each file dated by Moodle."""
    numbers = participants(notebooks)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in notebooks.items():
            folder = f"{' '.join(full_name(name))}_{numbers[name]}_assignsubmission_file_"
            archive.writestr(zipfile.ZipInfo(f"{folder}/vae_tp.ipynb",
                                             date_time=dates.get(name, ON_TIME)), data)
    return path


def hand_grade_everyone(course: Path) -> dict[str, dict[str, float]]:
    """What the Formgrader stores when a TA grades every answer waiting for it: full points,
    but half on question 1 for the student 'hand' (the Moodle file shows it). Returns the marks
    given."""
    from nbgrader.api import Gradebook

    given: dict[str, dict[str, float]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "vae-tp") as gb:
        for submission in gb.find_assignment("vae").submissions:
            for grade in submission.notebooks[0].grades:
                if grade.needs_manual_grade:
                    points = grade.max_score / 2 if (submission.student.id, grade.name) == (
                        "hand", KEPT_ANSWER) else grade.max_score
                    grade.manual_score, grade.needs_manual_grade = points, False
                    given.setdefault(submission.student.id, {})[grade.name] = points
        gb.db.commit()
    return given


def hand_marks(course: Path, student: str) -> dict[str, tuple[float | None, bool]]:
    """(manual score, needs manual grading) of each question of a student, in the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "vae-tp") as gb:
        notebook = gb.find_submission_notebook("vae_tp", "vae", student)
        return {g.name: (g.manual_score, g.needs_manual_grade) for g in notebook.grades
                if g.name.startswith("question_")}


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["student_id"]: row for row in csv.DictReader(fh)}


def snapshot(course: Path, students: list[str]) -> dict[str, str]:
    """Hash and mtime of every file of these students in submitted/, autograded/, feedback/."""
    found = {}
    for step in ("submitted", "autograded", "feedback"):
        for student in students:
            for path in sorted((course / step / student).rglob("*")):
                if path.is_file():
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                    found[str(path.relative_to(course))] = f"{digest} {path.stat().st_mtime_ns}"
    return found


@pytest.fixture(scope="module")
def round_(tmp_path_factory):
    """A whole grading round, with every intermediate result the tests look at."""
    tmp = tmp_path_factory.mktemp("grading")
    course = tmp / "course"
    out: dict = {"course": course}

    # 1. Release for self-study: solutions shipped next to the assignment folder, then zipped.
    grade(course, "release")
    out["with_solutions"] = release_text(course)
    out["released_notebook"] = (course / "release" / NOTEBOOK).read_text(encoding="utf-8")
    loads = re.findall(r"^# %load (\S+)$", out["with_solutions"]["vae/vae_tp.ipynb"], re.M)
    out["load_targets"] = [(course / "release" / "vae" / load).resolve() for load in loads]
    out["load_resolves"] = all(target.is_file() for target in out["load_targets"])
    grade(course, "zip")
    with zipfile.ZipFile(course / "vae_release.zip") as archive:
        out["zip"] = sorted(archive.namelist())
    release_nb = nbformat.read(course / "release" / NOTEBOOK, as_version=4)
    solutions = simulated_class.solutions_in(course / "release" / "solutions")

    # 2. Release for a graded run: no solutions.
    done = grade(course, "release", "--no-solutions")
    out["release_log"] = done.stdout
    out["without_solutions"] = release_text(course)

    # 3. The class hands in on Moodle; the instructor downloads all submissions (a zip, a folder
    #    per student named after them), exports the roster, and sets the due date. The
    #    spy knows the exact paths of two canaries: one in source/, one next to another
    #    student's submission; the network case knows a port listening on the loopback.
    canaries = [course / "source" / "vae" / "canary.txt",
                course / "submitted" / CANARY_OWNER / "vae" / "canary.txt"]
    for canary in canaries:
        canary.parent.mkdir(parents=True, exist_ok=True)
        canary.write_text(simulated_class.CANARY_SECRET + "\n")
    listener = Listener()
    corpus = simulated_class.build(release_nb, solutions, tuple(map(str, canaries)),
                                   listener.port)
    handed_in = {}
    for student in corpus:
        simulated_class.write_submission(student, tmp / "handed-in.ipynb")
        handed_in[student.name] = (tmp / "handed-in.ipynb").read_bytes()
    download = moodle_download(tmp / "download.zip", handed_in, {LATE_STUDENT: LATE})
    write_roster(course / "roster.csv", handed_in)
    out["corpus"] = {student.name: student for student in corpus}

    out["files_before"] = grader_files()
    out["canary_atimes"] = [c.stat().st_atime_ns for c in canaries]
    start = time.perf_counter()
    done = grade(course, "autograde", "--submissions", str(download), "--duedate", DUE_DATE,
                 "--zip-timezone", "UTC", "--jobs", JOBS, check=False)
    out["autograde_seconds"] = time.perf_counter() - start
    out["canary_atimes_after"] = [c.stat().st_atime_ns for c in canaries]
    out["network_hits"] = listener.hits
    listener.close()
    out["files_after"] = grader_files()
    probe = time.perf_counter()
    subprocess.run(["true"], check=True, timeout=10)
    out["host_probe_seconds"] = time.perf_counter() - probe
    time.sleep(1)
    out["processes_after"] = sandbox_processes()
    out["cgroups_left"] = sorted(p.name for c in ("pids", "memory")
                                 for p in Path(f"/sys/fs/cgroup/{c}").glob(f"vaetp-{ROUND}-*"))
    out["autograde"] = done
    grade(course, "feedback")
    grade(course, "grades")
    out["grades"] = read_csv(course / "grades.csv")
    out["report"] = read_csv(course / "grading_report.csv")
    out["total_seconds"] = time.perf_counter() - start
    started = time.perf_counter()
    out["class_report_run"] = grade(course, "report")
    out["class_report_seconds"] = time.perf_counter() - started
    with (course / "class_report.csv").open(newline="", encoding="utf-8") as fh:
        out["class_report"] = list(csv.DictReader(fh))
    out["class_report_page"] = (course / "class_report.html").read_text(encoding="utf-8")

    # 4. One student resubmits a correct notebook, and the instructor downloads the whole class
    #    again: refused without --force, then that student alone is regraded.
    others = [s.name for s in corpus if s.name != RESUBMITTER]
    before = snapshot(course, others)
    out["before_refusal"] = snapshot(course, [RESUBMITTER])
    handed_in[RESUBMITTER] = nbformat.writes(out["corpus"]["hand"].notebook).encode()
    second = moodle_download(tmp / "second.zip", handed_in,
                             {LATE_STUDENT: LATE, RESUBMITTER: (2026, 12, 4, 20, 0, 0)})
    out["refused"] = grade(course, "autograde", "--submissions", str(second), check=False)
    out["after_refusal"] = snapshot(course, [RESUBMITTER])
    start = time.perf_counter()
    grade(course, "autograde", "--submissions", str(second), "--force")
    out["regrade_seconds"] = time.perf_counter() - start
    grade(course, "feedback", "--student", RESUBMITTER)
    grade(course, "grades")
    out["others_before"], out["others_after"] = before, snapshot(course, others)
    out["report_after"] = read_csv(course / "grading_report.csv")

    # 5. A TA grades every answer by hand; then a student hands in again, late, with one answer
    #    changed: only that answer goes back to hand grading, and the Moodle export waits for it.
    out["hand_marks"] = hand_grade_everyone(course)
    out["marks_before_resubmission"] = hand_marks(course, RESUBMITTER)
    changed = nbformat.reads(handed_in[RESUBMITTER].decode(), as_version=4)
    for cell in changed.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == CHANGED_ANSWER:
            cell.source = "The 4s and the 9s overlap in the latent space: they are written alike."
    handed_in[RESUBMITTER] = nbformat.writes(changed).encode()
    third = moodle_download(tmp / "third.zip", handed_in,
                            {LATE_STUDENT: LATE, RESUBMITTER: (2026, 12, 6, 8, 0, 0)})
    grade(course, "autograde", "--submissions", str(third), "--force")
    out["marks_after_resubmission"] = hand_marks(course, RESUBMITTER)
    out["export_waiting"] = grade(course, "export-moodle", check=False)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "vae-tp") as gb:  # the TA marks it
        mark = gb.find_grade(CHANGED_ANSWER, "vae_tp", "vae", RESUBMITTER)
        mark.manual_score, mark.needs_manual_grade = 0.5, False
        gb.db.commit()
    out["hand_marks"][RESUBMITTER][CHANGED_ANSWER] = 0.5
    grade(course, "feedback")
    grade(course, "grades")
    out["grades_final"] = read_csv(course / "grades.csv")
    grade(course, "export-moodle")
    with (course / "moodle_grades.csv").open(newline="", encoding="utf-8") as fh:
        out["moodle"] = list(csv.reader(fh))
    return out


# --------------------------------------------------------------------------------------------


def test_release_ships_solutions_where_the_load_line_finds_them(round_):
    course, texts = round_["course"], round_["with_solutions"]
    shipped = {f"solutions/{p.name}": p for p in (ROOT / "solutions").glob("*.py")}
    assert set(texts) == {"vae/vae_tp.ipynb", *shipped}
    for name, path in shipped.items():
        assert texts[name] == path.read_text(), name
    # every exercise's %load line finds its file, and every shipped file is some exercise's
    assert round_["load_resolves"], round_["load_targets"]
    assert sorted(round_["load_targets"]) == sorted((course / "release" / name).resolve() for name in shipped)
    # the zip for an LMS: the same, plus what a laptop needs (tests/test_student_zip.py)
    assert [n for n in round_["zip"] if not n.startswith("vae/vaetp/")] == sorted(
        [*shipped, "vae/vae_tp.ipynb", "README.md", "requirements.txt"])
    assert "vae/vaetp/__init__.py" in round_["zip"]


def test_release_is_the_committed_student_notebook(round_):
    # the release with solutions; the one without rewrites its *Stuck?* hints
    # (tests/test_release_without_solutions.py)
    released = round_["released_notebook"]
    assert released == (ROOT / "notebooks" / "vae_tp.ipynb").read_text(encoding="utf-8")


def test_release_without_solutions_has_no_solution_and_no_hidden_test(round_):
    texts = round_["without_solutions"]
    assert set(texts) == {"vae/vae_tp.ipynb"}
    master = (ROOT / "source" / NOTEBOOK).read_text(encoding="utf-8")
    nb = nbformat.reads(master, as_version=4)
    secret = []
    for cell in nb.cells:
        for begin, end in (("BEGIN SOLUTION", "END SOLUTION"),
                           ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")):
            for region in re.findall(rf"### {begin}\n(.*?)### {end}", cell.source, re.S):
                secret += [line.strip() for line in region.splitlines() if len(line.strip()) > 15]
    assert len(secret) >= 10
    text = texts["vae/vae_tp.ipynb"]
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "check_every_weight_learns"):
        assert marker not in text
    leaked = [line for line in secret if line in text]
    assert not leaked
    answers = release_audit.secret_lines(nb)["model answer"]
    assert len(answers) >= 8 and not [line for line in answers if line in text]
    assert "checked: no hidden test and no solution code" in round_["release_log"]


def test_every_submission_is_graded_and_the_run_finishes(round_):
    done, course = round_["autograde"], round_["course"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in round_["corpus"]:
        assert (course / "autograded" / name / NOTEBOOK).is_file(), name


def test_the_class_report_counts_each_tests_failures_as_the_grader_scored_them(round_):
    """`make report` after `make grades`: for every autograded test, the students it lists as
    failing are exactly those whose score on it is below its points, grouped by mistake, and
    the page shows nothing a student made as live HTML."""
    from test_sanitize import live_html_problems

    rows, report = round_["class_report"], round_["report"]
    release_nb = nbformat.read(round_["course"] / "release" / NOTEBOOK, as_version=4)
    tests = simulated_class.graded_tests(release_nb)
    for test, points in tests.items():
        failing = sorted(name for name, row in report.items()
                         if row.get(test) not in (None, "") and float(row[test]) < points)
        listed = sorted(who for r in rows if r["kind"] == "failed test" and r["test"] == test
                        for who in r["who"].split())
        assert listed == failing, test
        counts = [int(r["students"]) for r in rows if r["kind"] == "failed test" and r["test"] == test]
        assert counts == sorted(counts, reverse=True), test  # most frequent mistake first
    # the hidden layer of 256 units: one group, whatever each student's numbers
    hidden = [r for r in rows if r["test"] == "test_decoder_hidden_layer"
              and r["what"].startswith("your hidden layer has # units")]
    assert len(hidden) == 1 and int(hidden[0]["students"]) >= 2, hidden
    kinds = [r for r in rows if r["kind"] == "answer cell" and r["exercise"] == "decoder"]
    assert sum(int(r["students"]) for r in kinds) == len(report)
    assert not live_html_problems(round_["class_report_page"].split("<body>", 1)[1])
    assert round_["class_report_seconds"] < 30


def test_the_round_reads_as_one_line_per_student_and_a_short_summary(round_):
    """The instructor's terminal shows each student as graded, with the points the gradebook
    has; nbgrader's forty lines per notebook go to <course>/logs/, its known false alarms
    summed up in one line each."""
    out, corpus = round_["autograde"].stdout, round_["corpus"]
    lines = re.findall(r"^\[(\d+)/(\d+)\] (\S+): (.+) \((\d+\.\d) s\)$", out, re.M)
    assert sorted(name for _, _, name, _, _ in lines) == sorted(corpus), out[-3000:]
    assert {int(total) for _, total, _, _, _ in lines} == {len(corpus)}
    release_nb = nbformat.read(round_["course"] / "release" / NOTEBOOK, as_version=4)
    most = sum(simulated_class.graded_tests(release_nb).values())
    for _, _, name, points, _ in lines:
        assert points == f"{corpus[name].total:g} / {most:g} autograded points", (name, points)
    log = re.search(r"^nbgrader's log of this round: (\S+)/$", out, re.M)
    assert log and Path(log.group(1)).parent == round_["course"] / "logs"
    logs = sorted(Path(log.group(1)).glob("*.log"))
    assert len(logs) == int(JOBS)  # one per job
    assert "Attribute 'checksum'" in "".join(p.read_text() for p in logs)
    assert "Attribute 'checksum'" not in out
    assert len(re.findall(r"nbgrader warned that the checksum", out)) == 1
    assert len(out.splitlines()) < len(corpus) + 30, out[-3000:]


def test_every_student_gets_the_expected_score_on_each_test(round_):
    report = round_["report"]
    expected = {name: student.scores for name, student in round_["corpus"].items()}
    found = {name: {test: int(float(report[name][test])) for test in scores}
             for name, scores in expected.items()}
    wrong = {name: (f"expected {expected[name]}", f"got {found[name]}")
             for name in expected if expected[name] != found[name]}
    assert not wrong, json.dumps(wrong, indent=1)


def test_nbgrader_export_has_every_student_with_the_right_total(round_):
    grades = round_["grades"]
    for name, student in round_["corpus"].items():
        row = grades[name]
        assert float(row["score"]) == student.total, name
        assert float(row["max_score"]) == MAX_SCORE
        assert row["decoder_cell"] == student.decoder_cell, name
        assert row["sandbox"] == "bubblewrap", name


def test_report_tells_loaded_from_written_and_what_the_grader_did(round_):
    report = round_["report"]
    for name, student in round_["corpus"].items():
        assert report[name]["decoder_cell"] == student.decoder_cell, name
        for note in student.notes:
            assert note in report[name]["notes"], (name, report[name]["notes"])
    assert report["hand"]["notes"] == ""


def _plain(path: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


def test_feedback_html_shows_the_plain_message_of_each_failed_test(round_):
    course = round_["course"]
    for name, student in round_["corpus"].items():
        if name == RESUBMITTER:
            continue  # regraded later: its feedback is the correct notebook's
        page = course / "feedback" / name / "vae" / "vae_tp.html"
        assert page.is_file(), name
        text = _plain(page)
        for words in student.feedback:
            assert words in text, (name, words)
        nb = nbformat.read(course / "autograded" / name / NOTEBOOK, as_version=4)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
            if grade_id.startswith("test_") and errors:
                # the plain sentence, alone: no traceback, no test code, no grader path
                assert len(errors) == 1 and errors[0].traceback == [
                    f"\x1b[0;31m{errors[0].ename}\x1b[0m: {errors[0].evalue}"], (name, grade_id)
                # the feedback shows the sentence itself, without the exception's class name
                assert errors[0].evalue in text, (name, grade_id)
                assert f"{errors[0].ename}: {errors[0].evalue}" not in text, (name, grade_id)
        for words in student.never:
            assert words not in page.read_text(encoding="utf-8"), (name, words)
        assert page.stat().st_size < 3_000_000, name


def test_resubmission_is_refused_without_force_then_regraded_alone(round_):
    refused = round_["refused"]
    assert refused.returncode == 2
    assert "--force" in refused.stderr and RESUBMITTER in refused.stderr
    assert round_["after_refusal"] == round_["before_refusal"]
    row = round_["report_after"][RESUBMITTER]
    assert row["score"] == str(round_["corpus"]["hand"].total) and row["decoder_cell"] == "written"
    assert round_["others_after"] == round_["others_before"]
    for name in round_["corpus"]:
        if name != RESUBMITTER:
            assert round_["report_after"][name] == round_["report"][name], name


def test_moodles_download_brings_each_students_name_and_time_and_the_due_date(round_):
    """Imported from Moodle's zip with the roster: the gradebook has each student's name, the
    time Moodle recorded, and the due date; the one student who handed in after it is late."""
    grades = round_["grades"]
    assert sorted(grades) == sorted(round_["corpus"])
    for name, row in grades.items():
        assert (row["first_name"], row["last_name"]) == full_name(name), name
        assert row["email"] == f"{name}@example.edu", name
        assert row["duedate"].startswith("2026-12-04 23:59"), row["duedate"]
        expected = "2026-12-05 09:15:00" if name == LATE_STUDENT else "2026-12-04 18:00:00"
        assert row["timestamp"].startswith(expected), (name, row["timestamp"])
    late = sorted(n for n, row in grades.items() if row["timestamp"] > row["duedate"])
    assert late == [LATE_STUDENT]


def test_a_late_resubmission_keeps_the_mark_of_its_unchanged_answer_only(round_):
    """After hand grading, RESUBMITTER hands in again, late, with question 1's answer as before
    and a new answer to another question: question 1 keeps the TA's mark, the new answer waits
    for hand grading, and the Moodle export says whose answer it waits for."""
    before, after = round_["marks_before_resubmission"], round_["marks_after_resubmission"]
    assert before[KEPT_ANSWER] == (1.0, False)
    assert before[CHANGED_ANSWER][1] is False and not before[CHANGED_ANSWER][0]  # as released
    assert after[KEPT_ANSWER] == (1.0, False)
    assert after[CHANGED_ANSWER] == (None, True)
    assert {k: v for k, v in after.items() if k != CHANGED_ANSWER} == \
        {k: v for k, v in before.items() if k != CHANGED_ANSWER}
    waiting = round_["export_waiting"]
    assert waiting.returncode == 2 and RESUBMITTER in waiting.stderr
    assert len(waiting.stderr.strip().splitlines()) == 1 and "Traceback" not in waiting.stderr
    final = round_["grades_final"][RESUBMITTER]
    assert final["timestamp"] > final["duedate"]  # the resubmission is late


def test_the_moodle_file_has_the_whole_class_column_by_column(round_):
    """`make export-moodle` at the end of the round: Moodle's header, one row per roster student
    in the roster's order, the email Moodle matches on, and each total: the autograded points
    the simulated class expects plus the marks the TA gave by hand."""
    rows, corpus, marks = round_["moodle"], round_["corpus"], round_["hand_marks"]
    header, body = rows[0], rows[1:]
    assert header == ["Email address", "VAE TP"]
    assert {len(row) for row in rows} == {2}
    roster_order = list(participants(corpus))
    assert [row[0] for row in body] == [f"{name}@example.edu" for name in roster_order]
    autograded = {name: student.total for name, student in corpus.items()}
    autograded[RESUBMITTER] = corpus["hand"].total  # graded on the notebook handed in again
    assert marks["hand"][KEPT_ANSWER] == 0.5 and marks[RESUBMITTER] == {
        KEPT_ANSWER: 1.0, CHANGED_ANSWER: 0.5}
    for name, (email, value) in zip(roster_order, body):
        assert re.fullmatch(r"\d+(\.\d+)?", value), (name, value)
        expected = autograded[name] + sum(marks.get(name, {}).values())
        assert float(value) == expected, (name, value, expected)
        assert float(value) == float(round_["grades_final"][name]["score"]), name


def test_no_hidden_test_and_no_grader_internals_reach_a_feedback_page(round_):
    course = round_["course"]
    master = nbformat.read(ROOT / "source" / NOTEBOOK, as_version=4)
    hidden = markers.distinctive_lines([cell.source for cell in master.cells], markers.HIDDEN_TESTS)
    assert hidden
    for name in round_["corpus"]:
        text = html.unescape((course / "feedback" / name / NOTEBOOK).with_suffix(".html")
                             .read_text(encoding="utf-8"))
        leaked = [line for line in hidden if line in text]
        assert not leaked, (name, leaked)
        # (a student's own cells may show their own tracebacks; the graded cells show one line,
        # checked by test_feedback_html_shows_the_plain_message_of_each_failed_test)
        # (the spy's and the vandal's own code and prints name these paths themselves)
        internals = [] if name in ("spy-course-files", "tamper-checker") else [
            "vaetp/checks.py", "vaetp/grading", str(course)]
        for words in ("BEGIN HIDDEN TESTS", *internals):
            assert words not in text, (name, words)


def test_the_spy_read_no_canary_and_wrote_no_gradebook(round_):
    course = round_["course"]
    secret = simulated_class.CANARY_SECRET
    for step in ("autograded", "feedback"):
        for path in (course / step).rglob("*"):
            if path.is_file() and path.suffix in (".ipynb", ".html"):
                assert secret not in path.read_text(encoding="utf-8", errors="replace"), path
    import sqlite3

    with sqlite3.connect(course / "gradebook.db") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master")}
    assert "pwned" not in tables and "submitted_notebook" in tables


def test_nothing_outside_the_sandbox_was_reached_or_changed(round_):
    assert round_["network_hits"] == 0
    changed = {k for k in round_["files_after"] if round_["files_after"][k] != round_["files_before"].get(k)}
    assert not changed, f"the round changed the repository: {sorted(changed)}"
    assert round_["cgroups_left"] == []


def test_every_kernel_of_the_class_started_warm(round_):
    """The class is graded with kernels forked by the zygote (TensorFlow already imported), each
    in its own sandbox (tests/test_sandbox.py checks such a kernel sees what a cold one sees)."""
    starts = {path.parent.parent.name: nbformat.read(path, as_version=4).metadata.get(
                  "vaetp_grading", {}).get("start")
              for path in (round_["course"] / "autograded").glob(f"*/{NOTEBOOK}")}
    assert set(round_["corpus"]) <= set(starts)
    assert {name: start for name, start in starts.items() if start != "warm"} == {}


def test_the_host_survives_the_bombs(round_):
    assert round_["host_probe_seconds"] < 5
    assert round_["processes_after"] == []


def test_a_students_answer_to_a_question_reaches_the_formgrader_word_for_word(round_):
    """The questions are graded by hand: the answer reaches the Formgrader as its clean, inert
    rendering (vaetp.grading.sanitize), every word of it."""
    nb = nbformat.read(round_["course"] / "autograded" / "hand" / NOTEBOOK, as_version=4)
    answer = next(c for c in nb.cells if c.get("id") == "answer-overfitting")
    assert answer.source.startswith("<div>")
    assert html.unescape(re.sub(r"<[^>]+>", "", answer.source)).strip() == simulated_class.HAND_ANSWER
    assert MAX_SCORE == round_["corpus"]["hand"].total + 5  # five questions, one point each


# --- BEGIN broken notebooks: one bad submission never stops the others ---


def test_broken_notebooks_are_graded_each_with_its_note(round_):
    """An instructor grades a class with broken notebooks between honest students: each is
    graded (zero for what is missing, the rest as usual), with one note saying what was done."""
    broken = [name for name in round_["corpus"] if name.startswith("broken-") or name == "slow-output"]
    assert len(broken) >= 8
    for name in broken:
        row, student = round_["report"][name], round_["corpus"][name]
        assert row["sandbox"] == "bubblewrap", name
        assert student.notes and all(note in row["notes"] for note in student.notes), (name, row["notes"])
        assert float(row["score"]) == student.total, name
    assert float(round_["report"]["broken-truncated"]["score"]) == 0
    assert round_["autograde"].returncode == 0
# --- END broken notebooks ---
