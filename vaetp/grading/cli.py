"""The instructor's day with nbgrader, one subcommand per step (see docs/instructor.md).

`tools/grade.py` (and the Makefile's targets, which call it) runs this module's `main`; so does
the `vae-tp-grade` command of an environment where the course is installed (`pip install -e .`):

    python tools/grade.py release   [--no-solutions [--stuck TEXT]]  # release/vae/ (+ solutions/)
    python tools/grade.py zip                             # vae_release.zip, for an LMS
    python tools/grade.py import    --submissions DIR|ZIP [--roster CSV] [--duedate D] [--force]
    python tools/grade.py autograde [--submissions DIR|ZIP] [--roster CSV] [--student ID] [--force]
    python tools/grade.py feedback  [--student ID]        # feedback/<student>/vae/vae_tp.html
    python tools/grade.py grades                          # grades.csv and grading_report.csv
    python tools/grade.py example-class [--out DIR]       # 3 simulated submissions, for a try
    python tools/grade.py formgrader [--port N]           # JupyterLab on the course, Formgrader's URL
    python tools/grade.py export-moodle [--identifier email|idnumber|username] [--per-exercise]

Every step runs the real nbgrader on a course folder: the repository by default, or the folder
given by --course (or the environment variable VAE_TP_COURSE), which `release` sets up with a
copy of nbgrader_config.py and of the master notebook if it has none. The repository (where the
master, nbgrader_config.py and requirements.txt are) is the folder this package sits in, or
VAE_TP_REPOSITORY.

Solutions: `release` copies solutions/*.py to release/solutions/, next to release/vae/, where
the student notebook's `# %load ../solutions/NAME.py` line finds them (the TP's own practice,
for self-study). --no-solutions (or c.GradingRound.ship_solutions = False in the course's
nbgrader_config.py, or VAE_TP_SHIP_SOLUTIONS=0) turns that off for a graded run;
`release` then checks that no solution code and no hidden test is anywhere in release/, and
the notebook's "*Stuck?*" hints (uncomment the `%load` line) say what to do in this course
instead (--stuck TEXT, or c.GradingRound.stuck_help, or VAE_TP_STUCK_HELP).

Submissions (`import` or `autograde --submissions DIR|ZIP`): Moodle's "Download all
submissions" zip (or the folder it unzips to), with a roster mapping Moodle's names to student
ids (--roster, by default roster.csv in the course folder; vaetp.grading.moodle); or nbgrader's
layout `<student>/vae/vae_tp.ipynb` (with an optional timestamp.txt); or a flat set of
`<student>.ipynb` files. The submission time is timestamp.txt, else the zip entry's date, else
the file's modification time. They are copied to submitted/<student>/vae/; a student whose
submitted/ notebook exists and differs is refused unless --force (then that student is regraded).
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
from vaetp.grading import example_class, feedback, report
from vaetp.grading import layout
from vaetp.grading.release import solution_files
from vaetp.grading import moodle
from vaetp.grading.csp import protect_feedback_page
from vaetp.grading.settings import grading_round
from vaetp.grading.layout import autograded, students
from vaetp.grading.submissions import SubmissionRefused, import_submissions as _import
from vaetp.grading.submissions import repair_submitted

#: The repository: the folder this package sits in (a checkout, installed with `pip install -e`),
#: or VAE_TP_REPOSITORY (`repository()` checks it holds the course's files).
REPOSITORY_ENV = "VAE_TP_REPOSITORY"
ROOT = Path(os.environ.get(REPOSITORY_ENV) or Path(__file__).resolve().parents[2]).resolve()

ASSIGNMENT, NOTEBOOK, NOTEBOOK_ID = layout.ASSIGNMENT, layout.NOTEBOOK, layout.NOTEBOOK_ID
#: The committed student notebook, that a release of the repository's master must equal.
STUDENT = ROOT / "notebooks" / NOTEBOOK
ZIP_NAME = f"{ASSIGNMENT}_release.zip"
GRADES_CSV = "grades.csv"
ROSTER_CSV = "roster.csv"
MOODLE_CSV = "moodle_grades.csv"
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
        if not dst.exists() and not src.is_file():
            raise Refused(f"{course} has no {rel}, and {src} does not exist to copy it from: "
                          f"set {REPOSITORY_ENV} to the course's repository (a checkout)")
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


def cmd_release(course: Path, ship: bool, stuck: str | None = None) -> int:
    ensure_course(course)
    print(f"Release of '{ASSIGNMENT}' in {course / 'release'}; solutions "
          f"{'shipped (self-study)' if ship else 'NOT shipped (graded run)'}")
    # --force: replace the previous release/vae/ (generated output, never edited by hand).
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force", "--log-level=WARN")
    target = course / "release" / "solutions"
    if ship:
        target.mkdir(parents=True, exist_ok=True)
        for name, text in solution_files(master(course)).items():
            (target / name).write_text(text, encoding="utf-8")
            print(f"wrote release/solutions/{name} (found by the notebook's `%load ../solutions/{name}`)")
    elif target.exists():
        shutil.rmtree(target)
        print("removed release/solutions/ of the previous release (solutions are off)")
    released = course / "release" / ASSIGNMENT / NOTEBOOK
    hints = 0
    if not ship:  # no "*Stuck?* uncomment the %load line": the course's own words instead
        nb = nbformat.read(released, as_version=4)
        hints = release_audit.without_solution_hints(
            nb, stuck or grading_round(course).stuck_help or release_audit.DEFAULT_STUCK_HELP)
        nbformat.write(nb, released)
        print(f"release/{ASSIGNMENT}/{NOTEBOOK}: {hints} cell(s) now say what to do when stuck "
              "(--stuck TEXT or c.GradingRound.stuck_help gives the course's words) instead of "
              "`%load`")
    problems = release_audit.audit_release(course / "release", master(course), ship)
    for problem in problems:
        print("LEAK: " + problem, file=sys.stderr)
    if problems:
        return 1
    if not ship:
        print(f"release/{ASSIGNMENT}/{NOTEBOOK} is notebooks/{NOTEBOOK} without its `%load` "
              "hints (solutions are off)")
    elif STUDENT.is_file() and (course == ROOT or released.read_bytes() == STUDENT.read_bytes()):
        same = released.read_bytes() == STUDENT.read_bytes()
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
    import vaetp

    files = release_audit.student_zip_files(
        release, ASSIGNMENT, Path(vaetp.__file__).resolve().parent,
        (ROOT / "requirements.txt").read_text(encoding="utf-8"))
    if target.exists():
        print(f"replacing {target} (generated by this step)")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files:
            archive.writestr(name, content)
    shown = sorted({name if not name.startswith(f"{ASSIGNMENT}/vaetp/")
                    else f"{ASSIGNMENT}/vaetp/ (the helper package the notebook imports)"
                    for name, _ in files})
    for name in shown:
        print(f"  {name}")
    print(f"wrote {target}: students unzip it into one folder and follow its README.md "
          f"(set-up, then {ASSIGNMENT}/{NOTEBOOK})")
    return 0


# --------------------------------------------------------------------------------------------
# autograde
# --------------------------------------------------------------------------------------------


def roster_path(course: Path, value: Path | None) -> Path | None:
    """The roster given, else the course's roster.csv if there is one."""
    if value is not None:
        return value
    default = course / ROSTER_CSV
    return default if default.is_file() else None


def load_roster(course: Path, value: Path | None) -> list[moodle.Student] | None:
    path = roster_path(course, value)
    if path is None:
        return None
    try:
        return moodle.read_roster(path)
    except moodle.MoodleError as err:
        raise Refused(str(err)) from None


def zip_zone(name: str | None):
    """The time zone of the zip's dates (Moodle's): a name such as Europe/Paris, else this machine's."""
    import datetime as dt
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not name:
        return dt.datetime.now().astimezone().tzinfo
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Refused(f"time zone '{name}' unknown: give a name such as Europe/Paris or UTC") from None


def import_submissions(course: Path, source: Path, force: bool, roster: Path | None = None,
                       duedate: str | None = None, zone: str | None = None
                       ) -> tuple[list[str], list[str]]:
    """Import a download into submitted/; with a roster, its names go into the gradebook; with
    a due date, it becomes the assignment's (nbgrader's duedate)."""
    import datetime as dt

    students_ = load_roster(course, roster)
    try:
        due = moodle.parse_due_date(duedate) if duedate else None
        tz = zip_zone(zone)
        if source.is_file():
            print(f"submission times: the zip's dates, read as {zone or 'this machine'}'s local "
                  f"time ({dt.datetime.now(tz):%Z %z}; MOODLE_TZ=... for Moodle's zone if it differs)")
        result = _import(course, source, force, students_, tz)
    except (SubmissionRefused, moodle.MoodleError) as err:
        raise Refused(str(err)) from None
    if students_ is not None:
        moodle.register_students(course, course_id(course), students_)
        print(f"gradebook: {len(students_)} student(s) of the roster {roster_path(course, roster)}, "
              "with their names")
    if due is not None:
        moodle.set_due_date(course, course_id(course), due)
        print(f"gradebook: '{ASSIGNMENT}' is due {due:%Y-%m-%d %H:%M} UTC; a later submission "
              "is recorded as late (nbgrader's timestamp against this due date)")
    return result


def cmd_import(course: Path, source: Path | None, force: bool, roster: Path | None, duedate: str | None,
               zone: str | None) -> int:
    if source is None:
        raise Refused("nothing to import: give the submissions, SUBMISSIONS=<Moodle's zip or a folder>")
    ensure_course(course)
    if not (course / "gradebook.db").exists():
        raise Refused(f"no gradebook in {course}: run the release step first (make release)")
    import_submissions(course, source.resolve(), force, roster, duedate, zone)
    return 0


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
                  jobs: int = 1, roster: Path | None = None, duedate: str | None = None,
                  zone: str | None = None) -> int:
    from vaetp.grading import sandbox

    ensure_course(course)
    try:
        sandbox.check_available(course)
    except sandbox.SandboxUnavailable as err:
        raise Refused(f"refused: {err}") from None
    if sandbox.mode(course) == "off":
        print(f"WARNING: grading WITHOUT a sandbox (SandboxSettings.mode = 'off' in "
              f"nbgrader_config.py, or {sandbox.SANDBOX_ENV}=off): submissions can "
              "read and change this machine's files; the report and grades.csv say so.",
              file=sys.stderr)
    if not (course / "gradebook.db").exists():
        raise Refused(f"no gradebook in {course}: run the release step first (make release)")
    replaced: list[str] = []
    if source is not None and source.resolve() != (course / "submitted").resolve():
        _, replaced = import_submissions(course, source.resolve(), force, roster, duedate, zone)
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
    pending = feedback.ungraded_questions(course, course_id(course), ASSIGNMENT, NOTEBOOK_ID)
    pending = {s: n for s, n in pending.items() if not student or s == student}
    if pending:
        print(f"WARNING: {len(pending)} student(s) have questions not graded yet; their feedback "
              "says so at the top and 'not graded yet' under each: "
              + "; ".join(f"{s} ({' '.join(n)})" for s, n in sorted(pending.items()))
              + ". Grade them in the Formgrader, then run the feedback step again.",
              file=sys.stderr)
    return 0


# --------------------------------------------------------------------------------------------
# grades: nbgrader's export, plus how the decoder cell was made and per-test scores
# --------------------------------------------------------------------------------------------


def cmd_grades(course: Path) -> int:
    grades_csv = course / GRADES_CSV
    nbgrader(course, "export", f"--to={grades_csv}", "--log-level=WARN")
    solutions = solution_files(master(course))
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
    names, scores, max_score, auto_max = report.cell_scores(course, course_id(course))
    with grades_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields + ["decoder_cell", "sandbox", "not_graded"])
        writer.writeheader()
        for row in rows:
            unmarked = [n for n, x in scores.get(row["student_id"], {}).items() if x is None]
            writer.writerow({**row, "decoder_cell": kinds.get(row["student_id"], ""),
                             "sandbox": sandboxes.get(row["student_id"], ""),
                             "not_graded": len(unmarked) if row["student_id"] in scores else ""})
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
                report.NOT_GRADED if x is None else f"{x:g}" for x in cells], kinds.get(student, ""),
                sandboxes.get(student, ""),
                report.notes(course, student, kinds.get(student), scores[student],
                             course_id(course))])
    pending = {s: [n for n, x in scores[s].items() if x is None] for s in sorted(scores)}
    pending = {s: names_ for s, names_ in pending.items() if names_}
    if pending:
        print(f"WARNING: questions not graded yet (counted 0 in {GRADES_CSV}'s score, "
              f"'{report.NOT_GRADED}' in {REPORT_CSV}): "
              + "; ".join(f"{s} ({' '.join(n)})" for s, n in pending.items())
              + ". Grade them in the Formgrader, then run the grades and feedback steps again.",
              file=sys.stderr)
    print(f"wrote {grades_csv} (nbgrader export + decoder_cell, sandbox) and {report_csv} "
          "(per test, notes)")
    with report_csv.open(encoding="utf-8") as fh:
        print(fh.read(), end="")
    return 0


def cmd_report(course: Path) -> int:
    """class_report.html and class_report.csv (vaetp.grading.class_report)."""
    from vaetp.grading import class_report

    if not (course / "gradebook.db").exists() or not (course / "release" / ASSIGNMENT).is_dir():
        raise Refused(f"no graded course in {course}: release, autograde and grades first "
                      "(make release, make autograde, make grades)")
    if not (course / REPORT_CSV).exists():
        raise Refused(f"no {REPORT_CSV} in {course}: run the grades step first (make grades)")
    start = time.perf_counter()
    page, table = class_report.write_report(course, solution_files(master(course)),
                                            course_id(course))
    print(f"wrote {page} and {table} in {time.perf_counter() - start:.1f} s")
    return 0


# --------------------------------------------------------------------------------------------
# formgrader: JupyterLab on the course folder, for grading by hand
# --------------------------------------------------------------------------------------------

EXCHANGE_DIR = "exchange"


def formgrader_command(course: Path, port: int, as_root: bool, extra: list[str] = ()) -> list[str]:
    """The command that serves the course's Formgrader: the course environment's JupyterLab, run
    from the course folder (nbgrader reads nbgrader_config.py there), with the course's
    jupyter_server_config.json (the Content-Security-Policy extension, vaetp.grading.csp), and a
    course-local exchange folder, so that nbgrader finds an exchange and shows no warning (the
    Release and Collect buttons then use that folder, which no student sees)."""
    command = [str(Path(sys.executable).parent / "jupyter"), "lab",
               f"--config={ROOT / 'jupyter_server_config.json'}",
               f"--ServerApp.root_dir={course}", f"--ServerApp.port={port}",
               "--ServerApp.port_retries=0", "--ServerApp.default_url=/formgrader",
               f"--Exchange.root={course / EXCHANGE_DIR}"]
    return command + (["--allow-root"] if as_root else []) + list(extra)


def cmd_formgrader(course: Path, port: int, extra: list[str], print_only: bool) -> int:
    import secrets

    import shlex

    command = formgrader_command(course, port, os.geteuid() == 0, extra)
    if print_only:
        print(shlex.join(command))
        return 0
    if not Path(command[0]).is_file():
        raise Refused(f"{command[0]} not found: this environment has no JupyterLab; run make setup")
    if not (course / "gradebook.db").exists():
        raise Refused(f"no gradebook in {course}: release and autograde first (make release, "
                      "make autograde)")
    (course / EXCHANGE_DIR).mkdir(exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.setdefault("VAE_TP_FAST", "1")  # the Formgrader's Autograde button grades in fast mode
    token = env.setdefault("JUPYTER_TOKEN", secrets.token_urlsafe(24))
    print(f"Formgrader: http://localhost:{port}/formgrader?token={token}\n"
          f"  (Manual Grading > {ASSIGNMENT} > {NOTEBOOK_ID}; stop the server with Ctrl-C twice)",
          flush=True)
    os.chdir(course)
    os.execve(command[0], command, env)
    return 1  # not reached


# --------------------------------------------------------------------------------------------
# export-moodle: the CSV file of Moodle's grade import
# --------------------------------------------------------------------------------------------


def cmd_export_moodle(course: Path, roster: Path | None, out: Path | None, identifier: str,
                      item: str, per_exercise: bool, missing_zero: bool, partial: bool,
                      out_of: float | None) -> int:
    students_ = load_roster(course, roster)
    if students_ is None:
        raise Refused(f"no roster: Moodle finds students by their email, ID number or username, "
                      f"which the roster gives; put it at {course / ROSTER_CSV} or give ROSTER=...")
    if not (course / "gradebook.db").exists():
        raise Refused(f"no gradebook in {course}: release and autograde first (make release, "
                      "make autograde)")
    try:
        scores, parts, max_score = moodle.gradebook_scores(course, course_id(course))
        if out_of:
            scores = {s: moodle.Scores(v.total * out_of / max_score, v.parts, v.needs_hand_grading)
                      for s, v in scores.items()}
        rows = moodle.moodle_csv_rows(students_, scores, parts, identifier=identifier, item=item,
                                      per_part=per_exercise, missing_as_zero=missing_zero,
                                      partial=partial)
    except moodle.MoodleError as err:
        raise Refused(str(err)) from None
    target = out or course / MOODLE_CSV
    moodle.write_csv(target, rows)
    absent = [s.student_id for s in students_ if s.student_id not in scores]
    print(f"wrote {target}: {len(students_)} student(s), {len(absent)} without a submission "
          f"({'0' if missing_zero else 'empty: no grade'}); '{item}' out of "
          f"{out_of or max_score:g}")
    print(f"In Moodle: Grades > Import > CSV file, upload it (encoding UTF-8, separator comma), "
          f"then map from '{rows[0][0]}' to '{moodle.IDENTIFIERS[identifier].lower()}' "
          f"(user{identifier}) and '{item}' to the assignment's grade item.")
    return 0


# --------------------------------------------------------------------------------------------
# example-class: a tiny class for docs/instructor.md's walkthrough
# --------------------------------------------------------------------------------------------


def cmd_example_class(course: Path, out: Path) -> int:
    """Three submissions made from the release (vaetp.grading.example_class)."""
    released = course / "release" / ASSIGNMENT / NOTEBOOK
    if not released.is_file():
        raise Refused(f"no release in {released.parent}: run the release step first (make release)")
    release_nb = nbformat.read(released, as_version=4)
    students = example_class.build(release_nb, solution_files(master(course)))
    paths = [out / f"{student.name}.ipynb" for student in students]
    for path in paths:
        if path.exists():
            raise Refused(f"{path} exists: give another --out, or remove it yourself")
    out.mkdir(parents=True, exist_ok=True)
    for student, path in zip(students, paths):
        nbformat.write(student.notebook, path)
        print(f"wrote {path}: {student.why}, expected {student.expected} / {student.out_of} "
              "on the autograded tests")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--course", help="course folder (default: $VAE_TP_COURSE, else the repository)")
    sub = parser.add_subparsers(dest="step", required=True)
    rel = sub.add_parser("release", help="nbgrader generate_assignment, + solutions unless turned off")
    rel.add_argument("--no-solutions", action="store_true",
                     help="do not ship solutions/ (same as c.GradingRound.ship_solutions = "
                          "False, or VAE_TP_SHIP_SOLUTIONS=0)")
    rel.add_argument("--stuck", help="without solutions: what the notebook tells a stuck "
                     "student to do, in place of the `%%load` hint (or c.GradingRound.stuck_help; default: "
                     "read the check cell's message, then ask your teaching assistant)")
    sub.add_parser("zip", help=f"zip release/ into {ZIP_NAME} for an LMS")
    def download_options(sub_parser):
        sub_parser.add_argument("--roster", type=Path,
                                help=f"CSV mapping Moodle's students to student ids (default: "
                                     f"{ROSTER_CSV} in the course folder, if there is one)")
        sub_parser.add_argument("--duedate", help="the assignment's due date, e.g. "
                                "'2026-12-04 23:59 Europe/Paris' (nbgrader's duedate)")
        sub_parser.add_argument("--zip-timezone", help="time zone of the zip's dates (Moodle's "
                                "server), e.g. Europe/Paris (default: this machine's)")

    imp = sub.add_parser("import", help="import submissions (Moodle's zip or a folder), no grading")
    imp.add_argument("--submissions", type=Path, help="Moodle's zip, or a folder of submissions")
    imp.add_argument("--force", action="store_true", help="replace differing submissions")
    download_options(imp)
    auto = sub.add_parser("autograde", help="import submissions, then nbgrader autograde")
    auto.add_argument("--submissions", type=Path,
                      help="Moodle's zip, or a folder of submissions, to import first")
    download_options(auto)
    auto.add_argument("--student", help="only this student")
    auto.add_argument("--force", action="store_true",
                      help="replace differing submissions already imported; regrade")
    auto.add_argument("--no-sandbox", action="store_true",
                      help="grade WITHOUT the bubblewrap sandbox (same as VAE_TP_SANDBOX=off); "
                           "the report and grades.csv say so")
    auto.add_argument("--jobs", type=int, default=None,
                      help="notebooks graded at once (default: c.GradingRound.jobs, 1)")
    fb = sub.add_parser("feedback", help="nbgrader generate_feedback (HTML per student)")
    fb.add_argument("--student", help="only this student")
    sub.add_parser("grades", help=f"nbgrader export to {GRADES_CSV}, + {REPORT_CSV}")
    sub.add_parser("report", help="class_report.html and .csv: what the class got wrong "
                                  "(after grades)")
    ex = sub.add_parser("example-class", help="write a tiny class of 3 submissions (walkthrough)")
    ex.add_argument("--out", type=Path, default=ROOT / "build" / "example_class")
    fg = sub.add_parser("formgrader", help="JupyterLab on the course folder; prints the Formgrader's URL")
    fg.add_argument("--port", type=int, default=8888)
    fg.add_argument("--print-command", action="store_true", help="print the command, start nothing")
    fg.add_argument("extra", nargs="*", help="more options for jupyter lab (after --)")
    mo = sub.add_parser("export-moodle", help=f"the CSV of Moodle's grade import ({MOODLE_CSV})")
    mo.add_argument("--roster", type=Path, help=f"default: {ROSTER_CSV} in the course folder")
    mo.add_argument("--out", type=Path, help=f"default: {MOODLE_CSV} in the course folder")
    mo.add_argument("--identifier", default="email", choices=sorted(moodle.IDENTIFIERS),
                    help="the roster column Moodle finds users by (default email)")
    mo.add_argument("--item", default="VAE TP", help="the grade column's name (default 'VAE TP')")
    mo.add_argument("--per-exercise", action="store_true", help="one more column per exercise")
    mo.add_argument("--missing-zero", action="store_true",
                    help="0 for a student without a submission (default: empty, no grade)")
    mo.add_argument("--partial", action="store_true",
                    help="export although some answers are not graded by hand yet")
    mo.add_argument("--out-of", type=float, help="scale the total to this maximum (e.g. 20)")
    args = parser.parse_args(argv)
    course = course_dir(args.course)
    # nbgrader's gradebook calls `alembic`, which is in this environment's bin/
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    if args.step == "release":
        return cmd_release(course, grading_round(course).ship_solutions and not args.no_solutions,
                           args.stuck)
    if args.step == "zip":
        return cmd_zip(course)
    if args.step == "autograde":
        if args.no_sandbox:
            os.environ["VAE_TP_SANDBOX"] = "off"
        jobs = args.jobs if args.jobs is not None else grading_round(course).jobs
        return cmd_autograde(course, args.submissions, args.student, args.force, jobs,
                             args.roster, args.duedate, args.zip_timezone)
    if args.step == "import":
        return cmd_import(course, args.submissions, args.force, args.roster, args.duedate,
                          args.zip_timezone)
    if args.step == "formgrader":
        return cmd_formgrader(course, args.port, args.extra, args.print_command)
    if args.step == "export-moodle":
        return cmd_export_moodle(course, args.roster, args.out, args.identifier, args.item,
                                 args.per_exercise, args.missing_zero, args.partial, args.out_of)
    if args.step == "feedback":
        return cmd_feedback(course, args.student)
    if args.step == "example-class":
        return cmd_example_class(course, args.out)
    if args.step == "report":
        return cmd_report(course)
    return cmd_grades(course)


if __name__ == "__main__":
    sys.exit(main())
