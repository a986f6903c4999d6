"""Moodle in and out: its "Download all submissions" zip, a roster, and its grade import CSV.

In. A Moodle assignment's download names each student's files after the student:
`Ana Lopez_101_assignsubmission_file_/vae_tp.ipynb` (one folder per student, Moodle's default)
or `Ana Lopez_101_assignsubmission_file_vae_tp.ipynb` ("Download submissions in folders" off):
the full name (Moodle writes `_` in a name as a space), the participant number Moodle gives
the student in that assignment, and the submission plugin. With blind marking the name is
`Participant`. The roster (a CSV file, see `read_roster`) says which student id each one is.

Submission time. Moodle's zip holds no timestamp file; each entry's date is the date of the
stored file Moodle packed (its upload). A zip date is a local time without a time zone, so it
is read in the time zone given (Moodle's; by default this machine's); an "extended timestamp"
field (UTC), when the zip has one, is used instead. An unzipped folder gives the files'
modification times, which `unzip` restores from the zip and a later copy may not.

Out. `moodle_csv_rows` builds the file that Moodle's "Import grades > CSV file" reads: one
row per roster student, the identifier column Moodle maps users from (email, ID number or
username), one column per grade item; see docs/instructor.md, "Moodle".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import struct
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vaetp.grading.layout import ASSIGNMENT, NOTEBOOK, NOTEBOOK_ID

STUDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$")
#: `<full name>_<participant>_assignsubmission_<plugin>_<rest>`: rest is "" for a folder (some
#: Moodle versions write no last `_`), else the file's own name (folders off).
MOODLE_NAME = re.compile(
    r"^(?P<name>[^_/]+)_(?P<participant>\d+)_assignsubmission_(?P<plugin>[a-z0-9]+)(?:_(?P<rest>.*))?$",
    re.S)
#: Roster columns (the header's names, any order, any case); only student_id is required.
ROSTER_COLUMNS = ("student_id", "participant_id", "first_name", "last_name", "email",
                  "idnumber", "username")
#: The names Moodle's own exports give these columns (Grades > Export > Plain text file, the
#: participants page), read as the roster's: such an export plus a student_id column is a roster.
ALIASES = {"first name": "first_name", "last name": "last_name", "email address": "email",
           "id number": "idnumber", "identifier": "participant_id"}
#: How Moodle's import form calls the user fields a file can be mapped from.
IDENTIFIERS = {"email": "Email address", "idnumber": "ID number", "username": "Username"}


class MoodleError(ValueError):
    """A file from (or for) Moodle that cannot be used as it is; the message says the fix."""


# --------------------------------------------------------------------------------------------
# The roster
# --------------------------------------------------------------------------------------------
# A CSV file, one row per student: student_id (the id nbgrader uses: folder names, gradebook),
# participant_id (the number in Moodle's download names, e.g. 101: optional, the full name is
# used where it is empty), first_name, last_name, email, idnumber, username (Moodle's).


@dataclass(frozen=True)
class Student:
    student_id: str
    participant_id: str = ""
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    idnumber: str = ""
    username: str = ""


def read_roster(path: Path) -> list[Student]:
    """The roster's students, in the file's order. A CSV file (comma or semicolon, UTF-8 with or
    without BOM) whose header names some of ROSTER_COLUMNS; student_id is required and unique,
    participant_id (the number in Moodle's download names) unique where given."""
    if not path.is_file():
        raise MoodleError(f"roster {path} not found: give the CSV file that maps Moodle's "
                          "students to student ids (ROSTER=..., see docs/instructor.md)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise MoodleError(f"roster {path} is not UTF-8 text: save it as CSV UTF-8") from None
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    fields = {}
    for name in reader.fieldnames or []:
        key = " ".join((name or "").split()).lower()
        fields[ALIASES.get(key, key.replace(" ", "_"))] = name
    if "student_id" not in fields:
        raise MoodleError(f"roster {path} has no student_id column: its first line must name "
                          f"the columns, among {', '.join(ROSTER_COLUMNS)}")
    students: list[Student] = []
    seen: dict[str, dict[str, int]] = {"student_id": {}, "participant_id": {}}
    for line, row in enumerate(reader, start=2):
        values = {key: (row.get(fields[key]) or "").strip() for key in ROSTER_COLUMNS if key in fields}
        if values.get("participant_id", "").lower().startswith("participant"):
            values["participant_id"] = values["participant_id"].split()[-1]  # "Participant 101"
        if not any(values.values()):
            continue
        student = Student(**values)
        if not STUDENT_RE.match(student.student_id):
            raise MoodleError(f"roster {path}, line {line}: '{student.student_id}' is not a "
                              "usable student id (letters, digits, _ . @ -, first a letter or digit)")
        for key in seen:
            value = getattr(student, key)
            if value and value in seen[key]:
                raise MoodleError(f"roster {path}, lines {seen[key][value]} and {line}: the same "
                                  f"{key} '{value}' twice: keep one row per student")
            seen[key][value] = line
        students.append(student)
    if not students:
        raise MoodleError(f"roster {path} lists no student")
    return students


def _name_key(text: str) -> str:
    """A name compared without case, accents, `_` (Moodle writes a space) or extra spaces."""
    text = unicodedata.normalize("NFKD", text.replace("_", " "))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.casefold().split())


def match_student(name: str, participant: str, roster: list[Student]) -> Student | None:
    """The roster's student for a Moodle download name: by participant number where the roster
    has one, else by full name (first last, or last first; case and accents aside); None when
    nobody matches.
    Raises MoodleError when several students have that name."""
    for student in roster:
        if student.participant_id and student.participant_id == participant:
            return student
    key = _name_key(name)
    found = [s for s in roster if not s.participant_id and key in {
        _name_key(f"{s.first_name} {s.last_name}"), _name_key(f"{s.last_name} {s.first_name}")}]
    if len(found) > 1:
        raise MoodleError(f"'{name}' (Moodle participant {participant}) is the name of "
                          f"{len(found)} students of the roster ({', '.join(s.student_id for s in found)}): "
                          "give each of them their participant_id in the roster")
    return found[0] if found else None


# --------------------------------------------------------------------------------------------
# Reading a download: a zip as Moodle gives it, or the folder it unzips to
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One file of a download: its path inside it, its bytes (read on demand), its time."""
    path: str  # POSIX, relative to the download's top
    read: Callable[[], bytes]
    stamp: dt.datetime  # aware, UTC


def _extended_time(extra: bytes) -> dt.datetime | None:
    """The modification time of a zip entry's "extended timestamp" field (0x5455), if any."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4:pos + 4 + size]
        if tag == 0x5455 and len(body) >= 5 and body[0] & 1:
            return dt.datetime.fromtimestamp(struct.unpack_from("<I", body, 1)[0], dt.timezone.utc)
        pos += 4 + size
    return None


def zip_entry_time(info: zipfile.ZipInfo, zone: dt.tzinfo) -> dt.datetime:
    """When the entry's file was last changed, in UTC (see the module's docstring)."""
    try:
        return _extended_time(info.extra) or \
            dt.datetime(*info.date_time, tzinfo=zone).astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):
        raise MoodleError(f"the zip entry {info.filename} has no valid date ({info.date_time}): "
                          "import the zip Moodle gave, not one made again by another tool") from None


def read_download(source: Path, zone: dt.tzinfo) -> list[Entry]:
    """Every file of a download (a zip file or a folder), with its time."""
    if not source.exists():
        raise MoodleError(f"{source} does not exist: give the folder of submissions, or the .zip "
                          "that Moodle's \"Download all submissions\" gave")
    if source.is_dir():
        return [Entry(path.relative_to(source).as_posix(), path.read_bytes,
                      dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc))
                for path in sorted(source.rglob("*")) if path.is_file()]
    if not zipfile.is_zipfile(source):
        with source.open("rb") as fh:
            if fh.read(4) == b"PK\x03\x04":
                raise MoodleError(f"{source} is a damaged zip file (cut short?): download it again")
        raise MoodleError(f"{source} is neither a folder nor a zip file: give the .zip that "
                          "Moodle's \"Download all submissions\" gave (or the folder it unzips to)")
    try:
        archive = zipfile.ZipFile(source)
        infos = [info for info in archive.infolist() if not info.is_dir()]
        damaged = archive.testzip()  # reads every entry: the first whose checksum is wrong
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as err:
        raise MoodleError(f"{source} is a damaged zip file ({err}): download it again") from None
    if damaged:
        raise MoodleError(f"{source} is a damaged zip file ({damaged} does not read back as it "
                          "was written): download it again")
    for info in infos:
        parts = PurePosixPath(info.filename).parts
        if info.filename.startswith("/") or ".." in parts:
            raise MoodleError(f"{source}: the entry '{info.filename}' points outside the zip: "
                              "this is not a Moodle download; download it again from Moodle")
    return [Entry(info.filename, lambda info=info: archive.read(info), zip_entry_time(info, zone))
            for info in infos]


def _ignorable(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


@dataclass(frozen=True)
class Found:
    """One student's submission in a download."""
    student: str
    label: str  # what to name in messages: the path in the download
    entry: Entry
    stamp_text: str | None = None  # a timestamp.txt found with it (nbgrader's layout)


def utc_text(stamp: dt.datetime) -> str:
    """nbgrader's timestamp format (timestamp.txt)."""
    return stamp.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def collect(entries: list[Entry], source: Path, roster: list[Student] | None) -> list[Found]:
    """The submissions in a download's files: Moodle's names (which need the roster), nbgrader's
    layout `<student>/vae/vae_tp.ipynb` (+ timestamp.txt) or `<student>.ipynb`. Raises
    MoodleError on a name nobody in the roster has, a Moodle submission without a notebook or
    with two, and two submissions for one student; prints what it ignores."""
    moodle: dict[str, list[tuple[Entry, dict[str, str]]]] = {}
    found: list[Found] = []
    by_path = {e.path: e for e in entries}
    for entry in entries:
        if _ignorable(entry.path):
            continue
        top, _, inner = entry.path.partition("/")
        match = MOODLE_NAME.match(top)
        if match:
            if match["plugin"] != "file":
                print(f"ignored (Moodle's {match['plugin']} submission, not a file): {entry.path}")
                continue
            moodle.setdefault(match["participant"], []).append((entry, match.groupdict()))
        elif inner == f"{ASSIGNMENT}/{NOTEBOOK}":
            stamp = by_path.get(f"{top}/{ASSIGNMENT}/timestamp.txt")
            found.append(Found(top, entry.path, entry,
                               stamp.read().decode("utf-8", "replace").strip() if stamp else None))
        elif not inner and top.endswith(".ipynb"):
            found.append(Found(top[:-len(".ipynb")], entry.path, entry))
        elif inner != f"{ASSIGNMENT}/timestamp.txt":
            print(f"ignored (neither Moodle's <name>_<number>_assignsubmission_file_..., nor "
                  f"<student>/{ASSIGNMENT}/{NOTEBOOK}, nor <student>.ipynb): {entry.path}")
    if not moodle and not found:
        nested = sorted({e.path.split("/")[0] for e in entries
                         if len(e.path.split("/")) > 2 and MOODLE_NAME.match(e.path.split("/")[1])})
        if nested:
            raise MoodleError(f"{source}: Moodle's download is one folder down, in "
                              f"{source / nested[0]}: give that folder (or the zip itself)")
    if moodle and roster is None:
        example = next(iter(moodle.values()))[0][0].path
        raise MoodleError(f"{source} holds Moodle's download names ({example}, ...): give the "
                          "roster that maps them to student ids (ROSTER=roster.csv, see "
                          "docs/instructor.md)")
    for participant, files in sorted(moodle.items(), key=lambda item: int(item[0])):
        found.append(_moodle_submission(participant, files, source, roster or []))
    for item in found:
        if not STUDENT_RE.match(item.student):
            raise MoodleError(f"{source}: {item.label}: '{item.student}' is not a usable student "
                              "id (letters, digits, _ . @ -): rename it, or use a roster")
    known = {s.student_id for s in roster} if roster is not None else None
    seen: dict[str, str] = {}
    for item in found:
        if known is not None and item.student not in known:
            raise MoodleError(f"{source}: {item.label}: the student '{item.student}' is not in "
                              "the roster: add them to it, or remove the file")
        if item.student in seen:
            raise MoodleError(f"{source}: two submissions for the student '{item.student}': "
                              f"{seen[item.student]} and {item.label}; keep one of them")
        seen[item.student] = item.label
    return found


def _moodle_submission(participant: str, files: list[tuple[Entry, dict[str, str]]], source: Path,
                       roster: list[Student]) -> Found:
    name = files[0][1]["name"]
    top = files[0][0].path.split("/")[0]
    student = match_student(name, participant, roster)
    if student is None:
        raise MoodleError(f"{source}: {top}: '{name}' (Moodle participant {participant}) is not "
                          f"in the roster: add a row for them (student_id, participant_id "
                          f"{participant}, first_name, last_name, email)")
    notebooks = [entry for entry, _ in files if entry.path.endswith(".ipynb")
                 and ".ipynb_checkpoints" not in entry.path]
    others = [entry.path for entry, _ in files if entry not in notebooks]
    if not notebooks:
        raise MoodleError(f"{source}: {top}: no notebook (.ipynb) from {name}, only "
                          f"{', '.join(others)}: ask {student.student_id} for the notebook, or "
                          "remove these files to grade the others")
    if len(notebooks) > 1:
        raise MoodleError(f"{source}: two notebooks from {name} ({student.student_id}): "
                          f"{notebooks[0].path} and {notebooks[1].path}; keep the one to grade")
    for path in others:
        print(f"ignored (not a notebook) from {student.student_id}: {path}")
    return Found(student.student_id, notebooks[0].path, notebooks[0])


def find_download(source: Path, roster: list[Student] | None, zone: dt.tzinfo) -> list[Found]:
    return collect(read_download(source, zone), source, roster)


# --------------------------------------------------------------------------------------------
# The gradebook: names from the roster, the due date
# --------------------------------------------------------------------------------------------


def gradebook_url(course: Path) -> str:
    return f"sqlite:///{course / 'gradebook.db'}"


def register_students(course: Path, course_id: str, roster: list[Student]) -> None:
    """Every roster student in the gradebook, with their names and email (what `nbgrader db
    student import` does): nbgrader's export and the Formgrader then show them."""
    from nbgrader.api import Gradebook

    with Gradebook(gradebook_url(course), course_id) as gb:
        for s in roster:
            gb.update_or_create_student(s.student_id, first_name=s.first_name or None,
                                        last_name=s.last_name or None, email=s.email or None)


def parse_due_date(text: str) -> dt.datetime:
    """'2026-12-04 23:59 Europe/Paris' (or +0100, or UTC) -> naive UTC, as nbgrader stores it."""
    from dateutil.tz import gettz
    from nbgrader.utils import parse_utc

    parts = text.split()
    zone = parts[-1] if len(parts) == 3 else ""
    if not zone or (gettz(zone) is None and not re.fullmatch(r"[+-]\d{4}", zone)):
        raise MoodleError(f"due date '{text}': write it as 'YYYY-MM-DD HH:MM ZONE', e.g. "
                          "'2026-12-04 23:59 Europe/Paris' (the zone is needed)")
    try:
        return parse_utc(text)
    except (ValueError, OverflowError):
        raise MoodleError(f"due date '{text}' is not a date: write it as 'YYYY-MM-DD HH:MM "
                          "ZONE', e.g. '2026-12-04 23:59 Europe/Paris'") from None


def set_due_date(course: Path, course_id: str, due: dt.datetime) -> None:
    """nbgrader's own due date of the assignment; autograde compares each timestamp with it."""
    from nbgrader.api import Gradebook

    with Gradebook(gradebook_url(course), course_id) as gb:
        gb.update_or_create_assignment(ASSIGNMENT, duedate=due)


# --------------------------------------------------------------------------------------------
# Out: the CSV file of Moodle's grade import
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scores:
    total: float
    parts: dict[str, float]
    needs_hand_grading: bool


def gradebook_scores(course: Path, course_id: str) -> tuple[dict[str, Scores], list[str], float]:
    """({student: Scores}, the part names in order, the maximum total) from the gradebook: the
    total is nbgrader export's score (hand marks included, late penalty taken off, never below
    0); the parts are the exercises (their test cells) and the questions graded by hand."""
    from nbgrader.api import Gradebook

    from vaetp.grading.exercises import EXERCISES, exercise_of

    parts = [e.name for e in EXERCISES] + ["questions"]
    scores: dict[str, Scores] = {}
    with Gradebook(gradebook_url(course), course_id) as gb:
        try:
            assignment = gb.find_assignment(ASSIGNMENT)
        except Exception:  # noqa: BLE001 - nbgrader's MissingEntry
            raise MoodleError(f"no assignment '{ASSIGNMENT}' in {course / 'gradebook.db'}: "
                              "release and autograde first (make release, make autograde)") from None
        max_score = assignment.max_score
        for sub in gb.assignment_submissions(ASSIGNMENT):
            per = dict.fromkeys(parts, 0.0)
            for grade in gb.find_submission_notebook(NOTEBOOK_ID, ASSIGNMENT, sub.student.id).grades:
                exercise = exercise_of(grade.name)
                per[exercise.name if exercise else "questions"] += grade.score or 0.0
            total = max(0.0, sub.score - (sub.late_submission_penalty or 0.0))
            scores[sub.student.id] = Scores(total, per, bool(sub.needs_manual_grade))
    return scores, parts, max_score


def number(value: float) -> str:
    """A grade as Moodle reads it: a plain decimal point, no thousands separator, no exponent."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def moodle_csv_rows(roster: list[Student], scores: dict[str, Scores], parts: list[str], *,
                    identifier: str = "email", item: str = "VAE TP", per_part: bool = False,
                    missing_as_zero: bool = False, partial: bool = False) -> list[list[str]]:
    """The header and one row per roster student, in the roster's order. Raises MoodleError on
    gradebook students the roster lacks, roster students without the identifier, and (unless
    partial) submissions with answers still to grade by hand."""
    if identifier not in IDENTIFIERS:
        raise MoodleError(f"identifier '{identifier}': choose one of {', '.join(IDENTIFIERS)}")
    known = {s.student_id for s in roster}
    unknown = sorted(set(scores) - known)
    if unknown:
        raise MoodleError(f"{len(unknown)} student(s) of the gradebook are not in the roster: "
                          f"{', '.join(unknown)}; add them to the roster (or remove their "
                          "submissions) and export again")
    lacking = [s.student_id for s in roster if not getattr(s, identifier)]
    if lacking:
        raise MoodleError(f"no {identifier} in the roster for: {', '.join(lacking)}; Moodle "
                          f"finds each student by it: fill it in, or choose another identifier")
    ungraded = sorted(s for s, v in scores.items() if v.needs_hand_grading)
    if ungraded and not partial:
        raise MoodleError(f"answers still to grade by hand for: {', '.join(ungraded)}; grade them "
                          "in the Formgrader (make formgrader), or export what there is with "
                          "PARTIAL=1")
    header = [IDENTIFIERS[identifier], item] + ([f"{item}: {p}" for p in parts] if per_part else [])
    rows = [header]
    for student in roster:
        got = scores.get(student.student_id)
        if got is None:
            blank = "0" if missing_as_zero else ""
            values = [blank] * (1 + (len(parts) if per_part else 0))
        else:
            values = [number(got.total)] + ([number(got.parts[p]) for p in parts] if per_part else [])
        rows.append([getattr(student, identifier), *values])
    return rows


def write_csv(path: Path, rows: list[list[str]]) -> None:
    """UTF-8 without BOM, comma separated, "\\n" line ends, quotes only where a value needs them."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
