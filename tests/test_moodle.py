"""An instructor takes submissions from Moodle as it gives them, and gives Moodle the grades back.

In: the zip of Moodle's "Download all submissions" (or its folder), a roster, a due date; every
bad input stops with one plain line that names the file and the fix. Out: the CSV file of
Moodle's "Import grades > CSV file", checked column by column against the rules of Moodle's
importer (grade/import/csv/classes/load_data.php and lib/csvlib.class.php): UTF-8 (a BOM is
stripped, so none is needed), a header row, the same number of fields on every row, a
non-empty identifier on every row (a row whose user is not found aborts the whole import), a
grade that is empty or "-" (no grade) or a number with a decimal point, at most 100 by default.
No grading runs here (the whole round: tests/test_grading.py).
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

import nbformat
import pytest
from course_paths import ROOT

from vaetp.grading import cli as grade  # the instructor CLI (tools/grade.py runs it)
from vaetp.grading import moodle

RELEASE = nbformat.read(ROOT / "notebooks" / "vae_tp.ipynb", as_version=4)
PARIS = ZoneInfo("Europe/Paris")
ROSTER = """student_id,participant_id,first_name,last_name,email,idnumber
ana,101,Ana,Lopez,Ana.Lopez@example.edu,2026001
ben,102,Ben,Okafor,ben.okafor@example.edu,2026002
chloe,,Chloé,Martin,chloe.martin@example.edu,2026003
dan,104,Dan,Smith,dan.smith@example.edu,2026004
"""


def notebook(answer: str) -> bytes:
    """The release with one more cell, so that each student's file is their own."""
    nb = copy.deepcopy(RELEASE)
    nb.cells.append(nbformat.v4.new_markdown_cell(answer, id="student-note"))
    return nbformat.writes(nb).encode()


def moodle_zip(path: Path, files: dict[str, tuple[bytes, tuple[int, ...]]]) -> Path:
    """A zip as Moodle writes it: one entry per file, each dated (local time, no zone)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (data, when) in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=when), data)
    return path


@pytest.fixture(scope="module")
def empty_gradebook(tmp_path_factory) -> bytes:
    """A gradebook with the assignment and nothing else (made once: nbgrader's set-up of a new
    gradebook takes seconds)."""
    from nbgrader.api import Gradebook

    folder = tmp_path_factory.mktemp("gradebook")
    path = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", path)  # nbgrader calls alembic
        with Gradebook(moodle.gradebook_url(folder), "vae-tp") as gb:
            gb.update_or_create_assignment("vae")
    return (folder / "gradebook.db").read_bytes()


@pytest.fixture()
def course(tmp_path, monkeypatch, empty_gradebook):
    """A course folder with a gradebook, as `make release` leaves it, and a roster."""
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    folder = tmp_path / "course"
    folder.mkdir()
    (folder / "nbgrader_config.py").write_bytes((ROOT / "nbgrader_config.py").read_bytes())
    (folder / "source" / "vae").mkdir(parents=True)
    (folder / "source" / "vae" / "vae_tp.ipynb").write_bytes(
        (ROOT / "source" / "vae" / "vae_tp.ipynb").read_bytes())
    (folder / "gradebook.db").write_bytes(empty_gradebook)
    (folder / "roster.csv").write_text(ROSTER, encoding="utf-8")
    return folder


def download(tmp_path: Path, **extra: tuple[bytes, tuple[int, ...]]) -> Path:
    """Moodle's zip with folders: ana (and a PDF beside her notebook, and an online text),
    ben, and Chloé (no participant number in the roster: found by her name)."""
    files = {
        "Ana Lopez_101_assignsubmission_file_/vae_tp.ipynb": (notebook("ana"), (2026, 12, 4, 18, 30, 0)),
        "Ana Lopez_101_assignsubmission_file_/notes.pdf": (b"%PDF-1.4", (2026, 12, 4, 18, 31, 0)),
        "Ana Lopez_101_assignsubmission_onlinetext_/onlinetext.html": (b"<p>hi</p>", (2026, 12, 4, 18, 0, 0)),
        "Ben Okafor_102_assignsubmission_file_/vae_tp.ipynb": (notebook("ben"), (2026, 12, 5, 9, 15, 0)),
        "Chloe Martin_103_assignsubmission_file_/vae_tp (1).ipynb": (notebook("chloe"), (2026, 12, 3, 23, 59, 58)),
    }
    files.update(extra)
    return moodle_zip(tmp_path / "submissions.zip", files)


def refused(capsys, *argv: str) -> str:
    """Run tools/grade.py with argv; it must stop with exit status 2 and one plain line."""
    with pytest.raises(SystemExit) as stop:
        grade.main(list(argv))
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def stamp(course: Path, student: str) -> str:
    return (course / "submitted" / student / "vae" / "timestamp.txt").read_text().strip()


# --------------------------------------------------------------------------------------------
# In: Moodle's download
# --------------------------------------------------------------------------------------------


def test_an_instructor_imports_moodles_zip_with_a_roster_and_a_due_date(course, tmp_path, capsys):
    zipped = download(tmp_path)
    assert grade.main(["--course", str(course), "import", "--submissions", str(zipped),
                       "--duedate", "2026-12-04 23:59 Europe/Paris",
                       "--zip-timezone", "Europe/Paris"]) == 0
    out = capsys.readouterr().out
    for student, answer in (("ana", "ana"), ("ben", "ben"), ("chloe", "chloe")):
        assert (course / "submitted" / student / "vae" / "vae_tp.ipynb").read_bytes() == notebook(answer)
    assert not (course / "submitted" / "dan").exists()  # no submission
    # the submission time is the zip entry's date, read in Moodle's time zone
    assert stamp(course, "ana") == "2026-12-04 17:30:00.000000 UTC"
    assert stamp(course, "ben") == "2026-12-05 08:15:00.000000 UTC"
    assert stamp(course, "chloe") == "2026-12-03 22:59:58.000000 UTC"
    assert "ignored (not a notebook) from ana: Ana Lopez_101_assignsubmission_file_/notes.pdf" in out
    assert "ignored (Moodle's onlinetext submission, not a file)" in out
    from nbgrader.api import Gradebook

    with Gradebook(moodle.gradebook_url(course), "vae-tp") as gb:
        names = {s.id: (s.first_name, s.last_name, s.email) for s in gb.students}
        due = gb.find_assignment("vae").duedate
    assert names == {"ana": ("Ana", "Lopez", "Ana.Lopez@example.edu"),
                     "ben": ("Ben", "Okafor", "ben.okafor@example.edu"),
                     "chloe": ("Chloé", "Martin", "chloe.martin@example.edu"),
                     "dan": ("Dan", "Smith", "dan.smith@example.edu")}
    assert due == dt.datetime(2026, 12, 4, 22, 59)  # nbgrader's naive UTC
    # ben's 08:15 UTC on the 5th is after it: nbgrader will record him late, the others not
    assert dt.datetime(2026, 12, 5, 8, 15) > due > dt.datetime(2026, 12, 4, 17, 30)


def test_moodles_download_without_folders_imports_the_same(course, tmp_path):
    zipped = moodle_zip(tmp_path / "flat.zip", {
        "Ana Lopez_101_assignsubmission_file_vae_tp.ipynb": (notebook("ana"), (2026, 12, 4, 18, 30, 0)),
        "Ben Okafor_102_assignsubmission_file_vae_tp.ipynb": (notebook("ben"), (2026, 12, 5, 9, 15, 0)),
    })
    new, replaced = grade.import_submissions(course, zipped, False, course / "roster.csv",
                                             None, "UTC")
    assert (new, replaced) == (["ana", "ben"], [])
    assert stamp(course, "ana") == "2026-12-04 18:30:00.000000 UTC"


def test_blind_marking_names_are_found_by_participant_number(course, tmp_path):
    zipped = moodle_zip(tmp_path / "blind.zip", {
        "Participant_104_assignsubmission_file/vae_tp.ipynb": (notebook("dan"), (2026, 12, 4, 9, 0, 0))})
    assert grade.import_submissions(course, zipped, False, None, None, "UTC") == (["dan"], [])


def test_the_unzipped_folder_gives_the_dates_unzip_restored(course, tmp_path):
    folder = tmp_path / "unzipped" / "Ana Lopez_101_assignsubmission_file_"
    folder.mkdir(parents=True)
    path = folder / "vae_tp.ipynb"
    path.write_bytes(notebook("ana"))
    when = dt.datetime(2026, 12, 4, 17, 30, tzinfo=dt.timezone.utc).timestamp()
    os.utime(path, (when, when))
    grade.import_submissions(course, tmp_path / "unzipped", False, course / "roster.csv")
    assert stamp(course, "ana") == "2026-12-04 17:30:00.000000 UTC"


def test_a_zip_with_an_extended_timestamp_gives_that_utc_time(course, tmp_path):
    info = zipfile.ZipInfo("Ana Lopez_101_assignsubmission_file_/vae_tp.ipynb",
                           date_time=(2026, 12, 4, 1, 0, 0))
    utc = int(dt.datetime(2026, 12, 4, 17, 30, tzinfo=dt.timezone.utc).timestamp())
    info.extra = b"\x55\x54\x05\x00\x01" + utc.to_bytes(4, "little")
    with zipfile.ZipFile(tmp_path / "ut.zip", "w") as archive:
        archive.writestr(info, notebook("ana"))
    grade.import_submissions(course, tmp_path / "ut.zip", False, course / "roster.csv", None, "Asia/Tokyo")
    assert stamp(course, "ana") == "2026-12-04 17:30:00.000000 UTC"


def test_a_zip_entry_without_a_valid_date_is_named(tmp_path):
    info = zipfile.ZipInfo("Ana Lopez_101_assignsubmission_file_/vae_tp.ipynb")
    info.date_time = (1980, 0, 0, 0, 0, 0)  # what some tools write for "no date"
    with pytest.raises(moodle.MoodleError, match="has no valid date .* not one made again by another tool"):
        moodle.zip_entry_time(info, dt.timezone.utc)


def test_importing_the_same_zip_twice_changes_nothing_and_a_new_upload_is_refused(course, tmp_path, capsys):
    zipped = download(tmp_path)
    grade.import_submissions(course, zipped, False, course / "roster.csv")
    assert grade.import_submissions(course, zipped, False, course / "roster.csv") == ([], [])
    newer = moodle_zip(tmp_path / "again.zip", {
        "Ben Okafor_102_assignsubmission_file_/vae_tp.ipynb": (notebook("ben, take 2"), (2026, 12, 6, 10, 0, 0))})
    line = refused(capsys, "--course", str(course), "import", "--submissions", str(newer))
    assert line.startswith("refused: these students already have a different notebook") and "ben" in line
    grade.import_submissions(course, newer, True, course / "roster.csv", None, "UTC")
    assert stamp(course, "ben") == "2026-12-06 10:00:00.000000 UTC"


# Bad inputs: one plain line, naming the file and the fix


def test_a_student_missing_from_the_roster_is_named(course, tmp_path, capsys):
    zipped = download(tmp_path, **{"Eve Adams_105_assignsubmission_file_/vae_tp.ipynb":
                                   (notebook("eve"), (2026, 12, 4, 12, 0, 0))})
    line = refused(capsys, "--course", str(course), "import", "--submissions", str(zipped))
    assert line == (f"{zipped}: Eve Adams_105_assignsubmission_file_: 'Eve Adams' (Moodle "
                    "participant 105) is not in the roster: add a row for them (student_id, "
                    "participant_id 105, first_name, last_name, email)")
    assert not (course / "submitted").exists()  # nothing was imported


def test_two_notebooks_from_one_student_are_refused(course, tmp_path, capsys):
    zipped = download(tmp_path, **{"Ben Okafor_102_assignsubmission_file_/vae_tp-copy.ipynb":
                                   (notebook("ben 2"), (2026, 12, 5, 9, 16, 0))})
    line = refused(capsys, "--course", str(course), "import", "--submissions", str(zipped))
    assert line == (f"{zipped}: two notebooks from Ben Okafor (ben): Ben Okafor_102_"
                    "assignsubmission_file_/vae_tp.ipynb and Ben Okafor_102_assignsubmission_"
                    "file_/vae_tp-copy.ipynb; keep the one to grade")


def test_the_same_student_twice_in_a_download_is_refused(course, tmp_path, capsys):
    zipped = download(tmp_path, **{"ana.ipynb": (notebook("ana again"), (2026, 12, 4, 12, 0, 0))})
    line = refused(capsys, "--course", str(course), "import", "--submissions", str(zipped))
    assert line == (f"{zipped}: two submissions for the student 'ana': ana.ipynb and "
                    "Ana Lopez_101_assignsubmission_file_/vae_tp.ipynb; keep one of them")


def test_a_submission_that_is_not_a_notebook_is_refused(course, tmp_path, capsys):
    zipped = download(tmp_path, **{"Dan Smith_104_assignsubmission_file_/vae_tp.docx":
                                   (b"PK\x03\x04 word", (2026, 12, 4, 12, 0, 0))})
    line = refused(capsys, "--course", str(course), "import", "--submissions", str(zipped))
    assert line == (f"{zipped}: Dan Smith_104_assignsubmission_file_: no notebook (.ipynb) from "
                    "Dan Smith, only Dan Smith_104_assignsubmission_file_/vae_tp.docx: ask dan "
                    "for the notebook, or remove these files to grade the others")


def test_a_file_that_is_not_a_zip_and_a_missing_folder_are_named(course, tmp_path, capsys):
    fake = tmp_path / "submissions.zip"
    fake.write_text("<html>Moodle login page</html>")
    line = refused(capsys, "--course", str(course), "import", "--submissions", str(fake))
    assert line == (f"{fake} is neither a folder nor a zip file: give the .zip that Moodle's "
                    "\"Download all submissions\" gave (or the folder it unzips to)")
    line = refused(capsys, "--course", str(course), "import", "--submissions", str(tmp_path / "nope"))
    assert line == (f"{tmp_path / 'nope'} does not exist: give the folder of submissions, or the "
                    ".zip that Moodle's \"Download all submissions\" gave")
    corrupt = tmp_path / "corrupt.zip"
    with zipfile.ZipFile(corrupt, "w", zipfile.ZIP_STORED) as archive:  # stored: bytes as they are
        archive.writestr("Ana Lopez_101_assignsubmission_file_/vae_tp.ipynb", b"x" * 1000)
    corrupt.write_bytes(corrupt.read_bytes().replace(b"x" * 10, b"y" * 10, 1))  # changed after its checksum
    line = refused(capsys, "--course", str(course), "import", "--submissions", str(corrupt))
    assert line == (f"{corrupt} is a damaged zip file (Ana Lopez_101_assignsubmission_file_/"
                    "vae_tp.ipynb does not read back as it was written): download it again")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(download(tmp_path).read_bytes()[:-200])
    line = refused(capsys, "--course", str(course), "import", "--submissions", str(truncated))
    assert line.startswith(f"{truncated} ") and line.endswith("download it again"), line


def test_a_folder_holding_the_unzipped_download_points_one_folder_down(course, tmp_path, capsys):
    folder = tmp_path / "Downloads" / "VAE TP-123" / "Ana Lopez_101_assignsubmission_file_"
    folder.mkdir(parents=True)
    (folder / "vae_tp.ipynb").write_bytes(notebook("ana"))
    line = refused(capsys, "--course", str(course), "import", "--submissions", str(tmp_path / "Downloads"))
    assert line == (f"{tmp_path / 'Downloads'}: Moodle's download is one folder down, in "
                    f"{tmp_path / 'Downloads' / 'VAE TP-123'}: give that folder (or the zip itself)")


def test_moodle_names_without_a_roster_ask_for_one(course, tmp_path, capsys):
    (course / "roster.csv").unlink()
    zipped = download(tmp_path)
    line = refused(capsys, "--course", str(course), "import", "--submissions", str(zipped))
    assert line.startswith(f"{zipped} holds Moodle's download names (") and \
        line.endswith("give the roster that maps them to student ids (ROSTER=roster.csv, see "
                      "docs/instructor.md)")


def test_a_broken_roster_is_named_with_its_line(course, tmp_path, capsys):
    zipped = download(tmp_path)
    (course / "roster.csv").write_text(ROSTER + "ana,106,Ana,Other,ana2@example.edu,\n")
    line = refused(capsys, "--course", str(course), "import", "--submissions", str(zipped))
    assert line == (f"roster {course / 'roster.csv'}, lines 2 and 6: the same student_id 'ana' "
                    "twice: keep one row per student")
    (course / "roster.csv").write_text("name,email\nAna,ana@example.edu\n")
    line = refused(capsys, "--course", str(course), "import", "--submissions", str(zipped))
    assert line.startswith(f"roster {course / 'roster.csv'} has no student_id column")


def test_a_due_date_without_its_time_zone_is_refused(course, tmp_path, capsys):
    line = refused(capsys, "--course", str(course), "import", "--submissions",
                   str(download(tmp_path)), "--duedate", "2026-12-04 23:59")
    assert line == ("due date '2026-12-04 23:59': write it as 'YYYY-MM-DD HH:MM ZONE', e.g. "
                    "'2026-12-04 23:59 Europe/Paris' (the zone is needed)")


def test_the_command_line_never_shows_a_traceback(course, tmp_path):
    fake = tmp_path / "x.zip"
    fake.write_text("not a zip")
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "grade.py"), "--course", str(course),
                           "autograde", "--no-sandbox", "--submissions", str(fake)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.strip().endswith("is neither a folder nor a zip file: give the .zip that "
                                        "Moodle's \"Download all submissions\" gave (or the folder "
                                        "it unzips to)")


def test_a_roster_saved_by_a_spreadsheet_with_semicolons_and_bom_is_read(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_bytes("\ufeff".encode() + ROSTER.replace(",", ";").encode("utf-8"))
    students = moodle.read_roster(path)
    assert [s.student_id for s in students] == ["ana", "ben", "chloe", "dan"]
    assert students[2].first_name == "Chloé" and students[2].participant_id == ""


def test_moodles_own_export_with_a_student_id_column_is_a_roster(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("student_id,Identifier,First name,Last name,ID number,Email address\n"
                    "ana,Participant 101,Ana,Lopez,2026001,ana.lopez@example.edu\n")
    assert moodle.read_roster(path) == [moodle.Student(
        "ana", "101", "Ana", "Lopez", "ana.lopez@example.edu", "2026001")]


def test_a_name_two_roster_students_share_needs_their_participant_numbers():
    roster = [moodle.Student("ana1", first_name="Ana", last_name="Lopez"),
              moodle.Student("ana2", first_name="Ana", last_name="Lopez")]
    with pytest.raises(moodle.MoodleError, match="give each of them their participant_id"):
        moodle.match_student("Ana Lopez", "101", roster)
    assert moodle.match_student("LOPEZ Ana", "101", roster[:1]).student_id == "ana1"


# --------------------------------------------------------------------------------------------
# Out: the CSV file of Moodle's grade import
# --------------------------------------------------------------------------------------------


def gradebook_with_scores(course: Path, marks: dict[str, dict[str, float | None]]) -> None:
    """The gradebook after autograding and hand grading: the master's graded cells, and for each
    student the given points per cell (None: a question not graded by hand yet)."""
    from nbgrader.api import Gradebook

    master = nbformat.read(course / "source" / "vae" / "vae_tp.ipynb", as_version=4)
    cells = [c for c in master.cells if c.metadata.get("nbgrader", {}).get("grade")]
    with Gradebook(moodle.gradebook_url(course), "vae-tp") as gb:
        gb.update_or_create_notebook("vae_tp", "vae")
        for c in cells:
            gb.update_or_create_grade_cell(c.metadata.nbgrader["grade_id"], "vae_tp", "vae",
                                           max_score=c.metadata.nbgrader["points"],
                                           cell_type=c.cell_type)
        for student, points in marks.items():
            gb.update_or_create_student(student)
            gb.add_submission("vae", student, timestamp=dt.datetime(2026, 12, 4, 12))
            for c in cells:
                name = c.metadata.nbgrader["grade_id"]
                g = gb.find_grade(name, "vae_tp", "vae", student)
                value = points.get(name, 0.0)
                if c.cell_type == "markdown":
                    g.manual_score, g.needs_manual_grade = value, value is None
                else:
                    g.auto_score, g.needs_manual_grade = value, False
        gb.db.commit()


def full_marks(course: Path) -> dict[str, float]:
    master = nbformat.read(course / "source" / "vae" / "vae_tp.ipynb", as_version=4)
    return {c.metadata.nbgrader["grade_id"]: float(c.metadata.nbgrader["points"])
            for c in master.cells if c.metadata.get("nbgrader", {}).get("grade")}


def read_moodle_csv(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    text = raw.decode("utf-8")  # strict: UTF-8 or an error
    assert not text.startswith("\ufeff") and "\r" not in text and text.endswith("\n")
    return list(csv.reader(io.StringIO(text)))


def test_the_moodle_file_has_every_roster_student_and_their_total(course, capsys):
    marks = full_marks(course)
    ana = dict(marks)
    ben = dict(marks, test_decoder_hidden_layer=0.0, test_decoder_parameter_count=0.0,
               question_beta=0.5)
    gradebook_with_scores(course, {"ana": ana, "ben": ben})
    assert grade.main(["--course", str(course), "export-moodle"]) == 0
    assert "In Moodle: Grades > Import > CSV file" in capsys.readouterr().out
    rows = read_moodle_csv(course / "moodle_grades.csv")
    header, body = rows[0], rows[1:]
    # the header: names Moodle shows in its mapping form, none empty, none twice
    assert header == ["Email address", "VAE TP"]
    # the same number of fields on every row (else Moodle refuses the file: csvweirdcolumns)
    assert {len(row) for row in rows} == {2}
    # column 1, the identifier: every roster student once, in the roster's order, as written
    # there (Moodle matches emails exactly), never empty (an unknown user aborts the import)
    assert [row[0] for row in body] == ["Ana.Lopez@example.edu", "ben.okafor@example.edu",
                                        "chloe.martin@example.edu", "dan.smith@example.edu"]
    # column 2, the grade: a plain decimal number (point, no thousands separator) at most 100,
    # or empty for no grade (chloe and dan handed nothing in), never 0 for them
    assert [row[1] for row in body] == ["32", "29.5", "", ""]
    for value in (row[1] for row in body if row[1]):
        assert re.fullmatch(r"\d+(\.\d+)?", value) and float(value) <= 100


def test_per_exercise_columns_and_zero_for_no_submission_on_request(course):
    marks = full_marks(course)
    gradebook_with_scores(course, {"ana": marks, "ben": dict(marks, test_kl_shape=0.0)})
    assert grade.main(["--course", str(course), "export-moodle", "--identifier", "idnumber",
                       "--per-exercise", "--missing-zero", "--out-of", "20"]) == 0
    rows = read_moodle_csv(course / "moodle_grades.csv")
    header = rows[0]
    assert header[:2] == ["ID number", "VAE TP"] and len(header) == len(set(header)) == 2 + 9
    assert header[2:] == [f"VAE TP: {p}" for p in ("kl_divergence", "decoder", "vae",
                          "reconstruction_loss", "generate_digits", "anomaly_scores", "roc_auc",
                          "conv_vae", "questions")]
    by_id = {row[0]: row for row in rows[1:]}
    assert list(by_id) == ["2026001", "2026002", "2026003", "2026004"]
    assert by_id["2026001"][1:] == ["20", "3", "7", "3", "3", "3", "3", "2", "3", "5"]
    assert by_id["2026002"][1] == "19.38" and by_id["2026002"][2] == "2"  # 31 / 32 * 20
    assert by_id["2026003"][1:] == ["0"] * 10 and by_id["2026004"][1:] == ["0"] * 10


def test_students_the_roster_lacks_stop_the_export_with_their_list(course, capsys):
    gradebook_with_scores(course, {"ana": full_marks(course), "zoe": {}, "yann": {}})
    line = refused(capsys, "--course", str(course), "export-moodle")
    assert line == ("2 student(s) of the gradebook are not in the roster: yann, zoe; add them "
                    "to the roster (or remove their submissions) and export again")
    assert not (course / "moodle_grades.csv").exists()


def test_answers_not_graded_by_hand_stop_the_export_unless_partial(course, capsys):
    gradebook_with_scores(course, {"ana": full_marks(course),
                                   "ben": dict(full_marks(course), question_mosaic=None)})
    line = refused(capsys, "--course", str(course), "export-moodle")
    assert line == ("answers still to grade by hand for: ben; grade them in the Formgrader "
                    "(make formgrader), or export what there is with PARTIAL=1")
    assert grade.main(["--course", str(course), "export-moodle", "--partial"]) == 0
    assert read_moodle_csv(course / "moodle_grades.csv")[2] == ["ben.okafor@example.edu", "31"]


def test_a_roster_student_without_the_identifier_stops_the_export(course, capsys):
    (course / "roster.csv").write_text(ROSTER.replace("ben.okafor@example.edu", ""))
    gradebook_with_scores(course, {"ana": full_marks(course)})
    line = refused(capsys, "--course", str(course), "export-moodle")
    assert line == ("no email in the roster for: ben; Moodle finds each student by it: fill it "
                    "in, or choose another identifier")


def test_grades_are_written_with_a_decimal_point_whatever_the_value():
    assert [moodle.number(v) for v in (0.0, 32.0, 29.5, 19.375, 1 / 3, 100.0)] == \
        ["0", "32", "29.5", "19.38", "0.33", "100"]


def test_make_passes_the_moodle_options_on(tmp_path):
    from test_formgrader import make_dry_run

    out = " ".join(make_dry_run("import", f"COURSE={tmp_path}", "SUBMISSIONS=dl.zip", "ROSTER=r.csv",
                                "DUEDATE=2026-12-04 23:59 Europe/Paris", "MOODLE_TZ=UTC").split())
    assert (f'tools/grade.py --course {tmp_path} import --submissions "dl.zip" --roster "r.csv" '
            '--duedate "2026-12-04 23:59 Europe/Paris" --zip-timezone "UTC"') in out
    out = " ".join(make_dry_run("export-moodle", f"COURSE={tmp_path}", "IDENTIFIER=idnumber",
                                "PER_EXERCISE=1", "MISSING=0", "PARTIAL=1", "OUT_OF=20").split())
    assert (f"tools/grade.py --course {tmp_path} export-moodle --identifier idnumber "
            "--per-exercise --missing-zero --partial --out-of 20") in out
