"""The instructor's day with nbgrader, one subcommand per step (see docs/instructor.md).

    python tools/grade.py release   [--no-solutions]      # release/vae/ (+ release/solutions/)
    python tools/grade.py zip                             # vae_release.zip, for an LMS
    python tools/grade.py autograde [--submissions DIR] [--student ID] [--force]
    python tools/grade.py feedback  [--student ID]        # feedback/<student>/vae/vae_tp.html
    python tools/grade.py grades                          # grades.csv and grading_report.csv
    python tools/grade.py example-class [--out DIR]       # 3 simulated submissions, for a try

Every step runs the real nbgrader on a course folder: this repository by default, or the
folder given by --course (or the environment variable VAE_TP_COURSE), which `release` sets up
with a copy of nbgrader_config.py and of the master notebook if it has none.

Solutions: `release` copies solutions/*.py to release/solutions/, next to release/vae/, where
the student notebook's `# %load ../solutions/NAME.py` line finds them (the TP's own practice,
for self-study). VAE_TP_SHIP_SOLUTIONS=0 or --no-solutions turns that off for a graded run;
`release` then checks that no solution code and no hidden test is anywhere in release/.

Submissions (`autograde --submissions DIR`): DIR holds either nbgrader's layout
`<student>/vae/vae_tp.ipynb` (with an optional timestamp.txt) or a flat set of
`<student>.ipynb` files (e.g. downloaded from an LMS; the file's modification time becomes the
submission time). They are copied to submitted/<student>/vae/; a student whose submitted/
notebook exists and differs is refused unless --force (then that student is regraded).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat

from vaetp.grading import release as release_audit
from vaetp.grading import report
from vaetp.grading import layout
from vaetp.grading.csp import protect_feedback_page
from vaetp.grading.layout import autograded, students
from vaetp.grading.submissions import SubmissionRefused, import_submissions as _import
from vaetp.grading.submissions import repair_submitted

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import generate  # noqa: E402  (tools/generate.py: the solutions derived from the master)

ASSIGNMENT = generate.ASSIGNMENT  # "vae"
NOTEBOOK = generate.MASTER.name  # "vae_tp.ipynb"
NOTEBOOK_ID = Path(NOTEBOOK).stem
SHIP_ENV = "VAE_TP_SHIP_SOLUTIONS"
ZIP_NAME = f"{ASSIGNMENT}_release.zip"
GRADES_CSV = "grades.csv"
REPORT_CSV = "grading_report.csv"


class Refused(SystemExit):
    """A step that would overwrite someone's files, or found a problem: exit 2 with the reason."""

    def __init__(self, message: str):
        print(message, file=sys.stderr)
        super().__init__(2)


# --------------------------------------------------------------------------------------------
# The course folder and nbgrader
# --------------------------------------------------------------------------------------------


def course_dir(value: str | None) -> Path:
    return Path(value or os.environ.get("VAE_TP_COURSE") or ROOT).resolve()


def nbgrader(course: Path, *args: str, check: bool = True) -> int:
    """Run `nbgrader ARGS` on the course (its nbgrader_config.py is read from the course folder)."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    command = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}"]
    print("$ nbgrader " + " ".join(args), flush=True)
    done = subprocess.run(command, cwd=course, env=env)
    if check and done.returncode != 0:
        raise SystemExit(f"nbgrader {args[0]} failed (exit {done.returncode}); see its log above.")
    return done.returncode


def ensure_course(course: Path) -> None:
    """A course folder other than the repository gets the config and the master, if it lacks them."""
    if course == ROOT:
        return
    for rel in ("nbgrader_config.py", f"source/{ASSIGNMENT}/{NOTEBOOK}"):
        src, dst = ROOT / rel, course / rel
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
            print(f"course {course}: copied {rel} from the repository")
        elif dst.read_bytes() != src.read_bytes():
            print(f"note: {dst} differs from the repository's {rel}; using the course's copy")


def master(course: Path) -> nbformat.NotebookNode:
    return nbformat.read(layout.master(course), as_version=4)


def course_id(course: Path) -> str:
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return config.CourseDirectory.get("course_id", "default_course")


# --------------------------------------------------------------------------------------------
# release, zip
# --------------------------------------------------------------------------------------------


def ship_solutions_default() -> bool:
    return os.environ.get(SHIP_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


def cmd_release(course: Path, ship: bool) -> int:
    ensure_course(course)
    print(f"Release of '{ASSIGNMENT}' in {course / 'release'}; solutions "
          f"{'shipped (self-study)' if ship else 'NOT shipped (graded run)'}")
    # --force: replace the previous release/vae/ (generated output, never edited by hand).
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force", "--log-level=WARN")
    target = course / "release" / "solutions"
    if ship:
        target.mkdir(parents=True, exist_ok=True)
        for name, text in generate.solutions(master(course)).items():
            (target / name).write_text(text, encoding="utf-8")
            print(f"wrote release/solutions/{name} (found by the notebook's `%load ../solutions/{name}`)")
    elif target.exists():
        shutil.rmtree(target)
        print("removed release/solutions/ of the previous release (solutions are off)")
    problems = release_audit.audit_release(course / "release", master(course), ship)
    for problem in problems:
        print("LEAK: " + problem, file=sys.stderr)
    if problems:
        return 1
    released = course / "release" / ASSIGNMENT / NOTEBOOK
    if course == ROOT or released.read_bytes() == generate.STUDENT.read_bytes():
        same = released.read_bytes() == generate.STUDENT.read_bytes()
        print(f"release/{ASSIGNMENT}/{NOTEBOOK} is {'identical to' if same else 'DIFFERENT from'} "
              f"notebooks/{NOTEBOOK}" + ("" if same else ": run `make generate` and commit"))
    print("checked: no hidden test" + ("" if ship else " and no solution code") + " in release/")
    return 0


def cmd_zip(course: Path) -> int:
    release = course / "release"
    folder = release / ASSIGNMENT
    if not (folder / NOTEBOOK).is_file():
        raise Refused(f"no release in {folder}: run the release step first (make release)")
    target = course / ZIP_NAME
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    files += sorted(p for p in (release / "solutions").glob("*.py"))
    if target.exists():
        print(f"replacing {target} (generated by this step)")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(release).as_posix())
            print(f"  {path.relative_to(release).as_posix()}")
    print(f"wrote {target}: unzip it into one folder; the notebook is {ASSIGNMENT}/{NOTEBOOK}")
    return 0


# --------------------------------------------------------------------------------------------
# autograde
# --------------------------------------------------------------------------------------------


def import_submissions(course: Path, source: Path, force: bool) -> tuple[list[str], list[str]]:
    try:
        return _import(course, source, force)
    except SubmissionRefused as err:
        raise Refused(str(err)) from None


def needs_grading(course: Path, student: str, force: bool) -> bool:
    """nbgrader's own rule (converters/base.py): graded again if forced, never graded, or
    submitted after the graded copy's timestamp."""
    from nbgrader.coursedir import CourseDirectory

    dest = course / "autograded" / student / ASSIGNMENT
    if force or not dest.exists():
        return True
    coursedir = CourseDirectory(root=str(course))
    new = coursedir.get_existing_timestamp(str(course / "submitted" / student / ASSIGNMENT))
    old = coursedir.get_existing_timestamp(str(dest))
    return new is not None and old is not None and new > old


def autograde_commands(course: Path, who: list[str], jobs: int, force: bool
                       ) -> tuple[list[list[str]], list[list[str]]]:
    """The `nbgrader autograde` commands of a round: `jobs` processes, each on its share of the
    students (the others excluded). Each notebook runs in its own kernel, so the grades do not
    depend on `jobs`, only the time does. Returns (shares, commands)."""
    jobs = max(1, min(jobs, len(who)))
    everyone = students(course)
    shares = [who[k::jobs] for k in range(jobs)]
    commands = []
    for share in shares:
        if len(share) == 1:
            choose = [f"--student={share[0]}"]
        else:
            choose = [f"--CourseDirectory.student_id_exclude="
                      + ",".join(s for s in everyone if s not in share)]
        commands.append([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT,
                         *(["--force"] if force else []), *choose,
                         f"--CourseDirectory.root={course}"])
    return shares, commands


def graded_points(course: Path, student: str) -> str | None:
    """'27 / 27 autograded points' from the gradebook (None while nbgrader is still writing)."""
    from nbgrader.api import Gradebook

    for _ in range(10):
        try:
            with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
                found = gradebook.find_submission_notebook(NOTEBOOK_ID, ASSIGNMENT, student)
                return f"{found.code_score:g} / {found.max_code_score:g} autograded points"
        except Exception:  # noqa: BLE001 - a gradebook another job is writing: try again
            time.sleep(0.3)
    return None


def autograde_round(course: Path, phases: list[tuple[list[str], bool, int]]) -> int:
    """Grade the phases in turn ((students, force, jobs) each): one line per student as they
    finish, a progress bar on a terminal, nbgrader's log in <course>/logs/, summarised at the
    end."""
    from vaetp.grading import progress

    folder = progress.log_folder(course)
    print(f"nbgrader's log of this round: {folder}/", flush=True)
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    failed = 0
    for phase, (who, force, jobs) in enumerate(phases, start=1):
        who = [s for s in who if needs_grading(course, s, force)]
        if not who:
            continue
        shares, commands = autograde_commands(course, who, jobs, force)
        logs = [folder / f"phase-{phase}-job-{k}.log" for k in range(1, len(commands) + 1)]
        watch = progress.RoundProgress(shares, logs, lambda s: graded_points(course, s)).start()
        try:
            failed |= progress.run_logged(commands, logs, course, env)
        finally:
            watch.stop()
    text = "\n".join(log.read_text(encoding="utf-8", errors="replace")
                     for log in sorted(folder.glob("*.log")))
    for line in progress.summarise_log(text):
        print(line)
    return failed


def repair_class(course: Path, who: list[str]) -> None:
    """Make every submission gradable before nbgrader sees it (vaetp.grading.submissions
    .repair_notebook): one broken notebook must not stop the class."""
    released = course / "release" / ASSIGNMENT / NOTEBOOK
    if not released.is_file():
        print(f"note: no release in {released.parent}, so broken submissions are not repaired; "
              "run the release step (make release) first", file=sys.stderr)
        return
    release_nb = nbformat.read(released, as_version=4)
    for student in who:
        try:
            notes = repair_submitted(course, student, release_nb)
        except OSError as err:
            print(f"{student}: could not repair the submission ({err})", file=sys.stderr)
            continue
        if notes:
            print(f"{student}: repaired before grading: {'; '.join(notes)}")


def cmd_autograde(course: Path, source: Path | None, student: str | None, force: bool,
                  jobs: int = 1) -> int:
    from vaetp.grading import sandbox

    ensure_course(course)
    try:
        sandbox.check_available()
    except sandbox.SandboxUnavailable as err:
        raise Refused(f"refused: {err}") from None
    if sandbox.mode() == "off":
        print(f"WARNING: grading WITHOUT a sandbox ({sandbox.SANDBOX_ENV}=off): submissions can "
              "read and change this machine's files; the report and grades.csv say so.",
              file=sys.stderr)
    if not (course / "gradebook.db").exists():
        raise Refused(f"no gradebook in {course}: run the release step first (make release)")
    replaced: list[str] = []
    if source is not None and source.resolve() != (course / "submitted").resolve():
        _, replaced = import_submissions(course, source.resolve(), force)
    everyone = students(course)
    if not everyone:
        raise Refused(f"no submission in {course / 'submitted'}")
    todo = [student] if student else everyone
    repair_class(course, todo)
    before = {s: autograded(course, s).stat().st_mtime if autograded(course, s).exists() else None
              for s in todo}
    start = time.perf_counter()
    if student:
        phases = [([student], force, 1)]
    elif force and source is None:  # regrade everyone
        phases = [(everyone, True, jobs)]
    else:
        # a replaced submission may not be newer: force its regrade; then the others (only the
        # new ones: nbgrader skips those already graded and unchanged)
        phases = [(replaced, True, jobs), ([s for s in everyone if s not in replaced], False, jobs)]
    failed = autograde_round(course, phases)
    seconds = time.perf_counter() - start
    graded = [s for s in todo if autograded(course, s).exists()
              and autograded(course, s).stat().st_mtime != before[s]]
    missing = [s for s in todo if not autograded(course, s).exists()]
    per = f", {seconds / len(graded):.1f} s per submission" if graded else ""
    print(f"autograded {len(graded)} submission(s) in {seconds:.1f} s{per}; "
          f"{len(todo) - len(graded) - len(missing)} already graded and unchanged")
    if missing:
        print(f"NOT GRADED (see nbgrader's log, named above): {', '.join(missing)}",
              file=sys.stderr)
        return 1
    return 1 if failed else 0


# --------------------------------------------------------------------------------------------
# feedback
# --------------------------------------------------------------------------------------------


def cmd_feedback(course: Path, student: str | None) -> int:
    extra = [f"--student={student}"] if student else []
    # --force: feedback is always rebuilt from the autograded notebooks (nothing else writes it).
    # check=False: one notebook nbgrader cannot render must not stop the others' feedback
    nbgrader(course, "generate_feedback", ASSIGNMENT, "--force", *extra, check=False)
    # Defence in depth behind the sanitizer: no script runs in a feedback page (vaetp.grading.csp).
    pages = sorted((course / "feedback").glob(f"*/{ASSIGNMENT}/*.html"))
    for page in pages if not student else [p for p in pages if p.parts[-3] == student]:
        page.write_text(protect_feedback_page(page.read_text(encoding="utf-8")), encoding="utf-8")
    missing = [s for s in ([student] if student else students(course))
               if not (course / "feedback" / s / ASSIGNMENT / NOTEBOOK).with_suffix(".html").is_file()]
    if missing:
        print(f"no feedback for: {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"feedback: {course / 'feedback'}/<student>/{ASSIGNMENT}/{Path(NOTEBOOK).stem}.html")
    return 0


# --------------------------------------------------------------------------------------------
# grades: nbgrader's export, plus how the decoder cell was made and per-test scores
# --------------------------------------------------------------------------------------------


def cmd_grades(course: Path) -> int:
    grades_csv = course / GRADES_CSV
    nbgrader(course, "export", f"--to={grades_csv}", "--log-level=WARN")
    solutions = generate.solutions(master(course))
    kinds = {}
    for s in students(course):
        try:
            kinds[s] = report.decoder_cell_kind(nbformat.read(
                course / "submitted" / s / ASSIGNMENT / NOTEBOOK, as_version=4), solutions)
        except Exception:  # noqa: BLE001 - a notebook nobody could read (not autograded yet)
            kinds[s] = "unreadable"
    with grades_csv.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    fields = list(rows[0].keys()) if rows else ["student_id"]
    sandboxes = {s: report.grading_sandbox(course, s) for s in students(course)}
    with grades_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields + ["decoder_cell", "sandbox"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "decoder_cell": kinds.get(row["student_id"], ""),
                             "sandbox": sandboxes.get(row["student_id"], "")})
    names, scores, max_score, auto_max = report.cell_scores(course, course_id(course))
    unsandboxed = sorted(s for s, mode in sandboxes.items() if mode != "bubblewrap")
    if unsandboxed:
        print(f"WARNING: graded without a sandbox: {', '.join(unsandboxed)}", file=sys.stderr)
    report_csv = course / REPORT_CSV
    with report_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student_id", "score", "max_score", *names, "decoder_cell", "sandbox",
                         "notes"])
        for student in sorted(scores):
            cells = [scores[student].get(name) for name in names]
            total = sum(x or 0 for x in cells)
            writer.writerow([student, f"{total:g}", f"{max_score:g}", *[
                "" if x is None else f"{x:g}" for x in cells], kinds.get(student, ""),
                sandboxes.get(student, ""),
                report.notes(course, student, kinds.get(student), scores[student],
                             course_id(course))])
    print(f"wrote {grades_csv} (nbgrader export + decoder_cell, sandbox) and {report_csv} "
          "(per test, notes)")
    with report_csv.open(encoding="utf-8") as fh:
        print(fh.read(), end="")
    return 0


# --------------------------------------------------------------------------------------------
# example-class: a tiny class for docs/instructor.md's walkthrough
# --------------------------------------------------------------------------------------------


def cmd_example_class(course: Path, out: Path) -> int:
    """Three submissions made from the release: alice %loads every solution, bob writes a decoder
    with 256 hidden units, carol hands the release in unsolved."""
    import simulated_class  # tools/simulated_class.py: the simulated students

    released = course / "release" / ASSIGNMENT / NOTEBOOK
    if not released.is_file():
        raise Refused(f"no release in {released.parent}: run the release step first (make release)")
    release_nb = nbformat.read(released, as_version=4)
    corpus = {s.name: s for s in simulated_class.build(release_nb, generate.solutions(master(course)))}
    total = sum(simulated_class.graded_tests(release_nb).values())
    out.mkdir(parents=True, exist_ok=True)
    for student, case in (("alice", "loaded"), ("bob", "hidden256"), ("carol", "unsolved")):
        path = out / f"{student}.ipynb"
        if path.exists():
            raise Refused(f"{path} exists: give another --out, or remove it yourself")
        nbformat.write(corpus[case].notebook, path)
        print(f"wrote {path}: {corpus[case].why}, expected {corpus[case].total} / {total}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--course", help="course folder (default: $VAE_TP_COURSE, else the repository)")
    sub = parser.add_subparsers(dest="step", required=True)
    rel = sub.add_parser("release", help="nbgrader generate_assignment, + solutions unless turned off")
    rel.add_argument("--no-solutions", action="store_true",
                     help=f"do not ship solutions/ (same as {SHIP_ENV}=0)")
    sub.add_parser("zip", help=f"zip release/ into {ZIP_NAME} for an LMS")
    auto = sub.add_parser("autograde", help="import submissions, then nbgrader autograde")
    auto.add_argument("--submissions", type=Path, help="folder of submissions to import first")
    auto.add_argument("--student", help="only this student")
    auto.add_argument("--force", action="store_true",
                      help="replace differing submissions already imported; regrade")
    auto.add_argument("--no-sandbox", action="store_true",
                      help="grade WITHOUT the bubblewrap sandbox (same as VAE_TP_SANDBOX=off); "
                           "the report and grades.csv say so")
    auto.add_argument("--jobs", type=int, default=int(os.environ.get("VAE_TP_GRADING_JOBS", "1")),
                      help="notebooks graded at once (default 1, or $VAE_TP_GRADING_JOBS)")
    fb = sub.add_parser("feedback", help="nbgrader generate_feedback (HTML per student)")
    fb.add_argument("--student", help="only this student")
    sub.add_parser("grades", help=f"nbgrader export to {GRADES_CSV}, + {REPORT_CSV}")
    ex = sub.add_parser("example-class", help="write a tiny class of 3 submissions (walkthrough)")
    ex.add_argument("--out", type=Path, default=ROOT / "build" / "example_class")
    args = parser.parse_args(argv)
    course = course_dir(args.course)
    if args.step == "release":
        return cmd_release(course, ship_solutions_default() and not args.no_solutions)
    if args.step == "zip":
        return cmd_zip(course)
    if args.step == "autograde":
        if args.no_sandbox:
            os.environ["VAE_TP_SANDBOX"] = "off"
        return cmd_autograde(course, args.submissions, args.student, args.force, args.jobs)
    if args.step == "feedback":
        return cmd_feedback(course, args.student)
    if args.step == "example-class":
        return cmd_example_class(course, args.out)
    return cmd_grades(course)


if __name__ == "__main__":
    sys.exit(main())
