"""What the class got wrong, for the instructor, before the next lecture (`make report`).

Built after `make grades`, from the grader's own results only: the scores nbgrader saved in the
gradebook, the messages the judge wrote in each autograded notebook's test cells, the notes of
`grading_report.csv`, and how each answer cell compares with the release and the solutions.
Nothing a student wrote is shown but their id, escaped; the page runs no script and carries the
feedback pages' Content-Security-Policy.

- Per exercise: the distribution of points (a figure), and how many students pulled the
  solution in with `%load`, left the answer cell as released, or wrote their own.
- Per test that someone failed (the others in one line): how many failed, grouped by
  mistake: the message with its numbers replaced by `#` (so that "202,256 parameters" and "804,112 parameters" are one group), most frequent first,
  with the students of each group and a link to one of their feedback pages.
- Hand-graded questions: how many are graded, and their mean.
- At the top, the submissions that need a look: not graded, timed out, flagged, repaired.

`write_report(course, ...)` writes `class_report.html` and `class_report.csv` in the course.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from vaetp.grading.csp import FEEDBACK_POLICY
from vaetp.grading.layout import ASSIGNMENT, NOTEBOOK

#: The grader's own errors in a test cell (report.GRADER_ERRORS), shown as their names say.
GRADER_ERRORS = {"CellTimeoutError": "the notebook ran past its time",
                 "KernelDied": "the kernel died", "OutputTooLarge": "an output was too large",
                 "NotRunByGrader": "not run"}
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?(?![\w])", re.I)
_LOAD = re.compile(r"^#\s*%load\s+\S*?([\w-]+)\.py\s*$")


def normalise(message: str) -> str:
    """One mistake, one group: numbers become `#`, spaces are collapsed."""
    return " ".join(_NUMBER.sub("#", message).split())


def _code_lines(text: str) -> list[str]:
    lines = (line.rstrip() for line in text.splitlines())
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def answer_kind(cell_source: str | None, released: str, solutions: dict[str, str]) -> str:
    """How an answer cell was made: "missing" (no such cell), "unanswered" (as released),
    "loaded" (the `%load` line, then the solution unchanged), "loaded+edited", or "written"."""
    if cell_source is None:
        return "missing"
    if cell_source.strip() == released.strip():
        return "unanswered"
    first = cell_source.strip().splitlines()[0] if cell_source.strip() else ""
    found = _LOAD.match(first)
    if found:
        solution = solutions.get(found.group(1) + ".py", solutions.get(found.group(1)))
        if solution is not None and _code_lines(cell_source) == _code_lines(solution):
            return "loaded"
        return "loaded+edited"
    return "written"


@dataclass
class ClassData:
    students: list[str]
    tests: list[tuple[str, str, float]]  # (exercise, grade id, points), notebook order
    questions: list[tuple[str, float]]  # (grade id, points) of the hand-graded cells
    scores: dict[str, dict[str, float | None]]  # student -> grade id -> score (None: ungraded)
    kinds: dict[str, dict[str, str]]  # exercise -> student -> answer kind
    messages: dict[str, dict[str, str]]  # grade id -> student -> message of a failed test
    look: list[tuple[str, str]] = field(default_factory=list)  # (student, why)


def _failures(path: Path) -> dict[str, str]:
    """grade id -> the message of each failed test cell of an autograded notebook."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found = {}
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or not meta.get("grade"):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                name = str(output.get("ename", ""))
                text = GRADER_ERRORS.get(name) or str(output.get("evalue", "")).strip() or name
                found[str(meta.get("grade_id"))] = text.splitlines()[0][:500] if text else name
                break
    return found


def collect(course: Path, solutions: dict[str, str], course_id: str) -> ClassData:
    """Everything the report shows, from the gradebook, the autograded and submitted notebooks,
    the release and grading_report.csv."""
    from nbgrader.api import Gradebook

    from vaetp.grading import report
    from vaetp.grading.exercises import EXERCISES, exercise_of
    from vaetp.grading.layout import NOTEBOOK_ID

    names, scores, _, _ = report.cell_scores(course, course_id)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id) as gb:
        cells = {c.name: c for c in gb.find_notebook(NOTEBOOK_ID, ASSIGNMENT).grade_cells}
        kinds_of_cell = {name: cells[name].cell_type for name in names}
        points = {name: float(cells[name].max_score) for name in names}
        flagged = []
        for student in sorted(scores):
            try:
                if gb.find_submission_notebook(NOTEBOOK_ID, ASSIGNMENT, student).flagged:
                    flagged.append(student)
            except Exception:  # noqa: BLE001 - no such submission notebook
                pass
    tests = [(exercise_of(n).name if exercise_of(n) else "other", n, points[n])
             for n in names if kinds_of_cell[n] == "code"]
    questions = [(n, points[n]) for n in names if kinds_of_cell[n] != "code"]
    students = sorted(scores)

    release = json.loads((course / "release" / ASSIGNMENT / NOTEBOOK).read_text(encoding="utf-8"))
    released = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id"): "".join(c["source"])
                for c in release["cells"]}
    kinds: dict[str, dict[str, str]] = {e.name: {} for e in EXERCISES}
    messages: dict[str, dict[str, str]] = defaultdict(dict)
    look: list[tuple[str, str]] = [(s, "flagged in the Formgrader") for s in flagged]
    for student in students:
        try:
            submitted = json.loads((course / "submitted" / student / ASSIGNMENT / NOTEBOOK)
                                   .read_text(encoding="utf-8"))
            sources = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id"):
                       "".join(c.get("source", "")) for c in submitted.get("cells", [])}
        except (OSError, ValueError, AttributeError, TypeError):
            sources = {}
        for exercise in EXERCISES:
            kinds[exercise.name][student] = answer_kind(
                sources.get(exercise.answer_cell), released.get(exercise.answer_cell, ""),
                solutions)
        graded = course / "autograded" / student / ASSIGNMENT / NOTEBOOK
        if not graded.exists():
            look.append((student, "not graded"))
        for grade_id, message in _failures(graded).items():
            messages[grade_id][student] = message
    report_csv = course / "grading_report.csv"
    if report_csv.exists():
        with report_csv.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row.get("notes") and row["notes"] != "no submission":
                    look.append((row["student_id"], row["notes"]))
    return ClassData(students, tests, questions, scores, kinds, dict(messages), look)


@dataclass
class Group:
    message: str
    students: list[str]


def groups(data: ClassData, grade_id: str, max_points: float) -> list[Group]:
    """The failures of one test, one group per mistake, most frequent first (a student who
    lost the points with no message is grouped as such)."""
    found: dict[str, list[str]] = defaultdict(list)
    for student in data.students:
        score = data.scores.get(student, {}).get(grade_id)
        if score is not None and score >= max_points:
            continue
        message = data.messages.get(grade_id, {}).get(student)
        found[normalise(message) if message else "(no message: not graded)"].append(student)
    return sorted((Group(m, s) for m, s in found.items()),
                  key=lambda g: (-len(g.students), g.message))


def _figure(data: ClassData) -> str:
    """The distribution of points of each exercise, as an inline PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exercises = list(dict.fromkeys(e for e, _, _ in data.tests))
    fig, axes = plt.subplots(1, len(exercises), figsize=(2.0 * len(exercises), 2.2),
                             squeeze=False)
    for ax, exercise in zip(axes[0], exercises):
        tests = [(g, p) for e, g, p in data.tests if e == exercise]
        most = sum(p for _, p in tests)
        totals = [sum(data.scores.get(s, {}).get(g) or 0 for g, _ in tests)
                  for s in data.students]
        counts = Counter(totals)
        xs = sorted(set(counts) | {0, most})
        ax.bar([str(f"{x:g}") for x in xs], [counts.get(x, 0) for x in xs], color="#4c72b0")
        ax.set_title(exercise, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel(f"points / {most:g}", fontsize=7)
    axes[0][0].set_ylabel("students", fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _feedback_link(student: str) -> str:
    return f"feedback/{quote(student)}/{ASSIGNMENT}/{quote(Path(NOTEBOOK).stem)}.html"


def render_html(data: ClassData, title: str = "What the class got wrong") -> str:
    e = html.escape
    n = len(data.students)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
             f"<meta http-equiv=\"Content-Security-Policy\" content=\"{FEEDBACK_POLICY}\">"
             f"<title>{e(title)}</title><style>"
             "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;"
             "padding:.25em .5em;text-align:left;vertical-align:top}"
             "td.students{font-size:85%;color:#444}img{max-width:100%}"
             ".look{background:#fff4e5}</style></head><body>",
             f"<h1>{e(title)}</h1><p>{n} students. Built from the grader's results "
             "(gradebook, autograded notebooks, grading_report.csv).</p>"]
    if data.look:
        parts.append("<h2>Submissions to look at</h2><table class='look'><tr><th>student</th>"
                     "<th>why</th></tr>")
        parts += [f"<tr><td>{e(s)}</td><td>{e(why)}</td></tr>" for s, why in data.look]
        parts.append("</table>")
    parts.append("<h2>Exercises</h2>")
    if n:
        parts.append(f"<img alt='points per exercise' src='data:image/png;base64,{_figure(data)}'>")
    parts.append("<table><tr><th>exercise</th><th>mean points</th><th>loaded the solution</th>"
                 "<th>edited the loaded solution</th><th>wrote their own</th>"
                 "<th>left as released</th></tr>")
    for exercise in dict.fromkeys(ex for ex, _, _ in data.tests):
        tests = [(g, p) for ex, g, p in data.tests if ex == exercise]
        most = sum(p for _, p in tests)
        mean = sum(sum(data.scores.get(s, {}).get(g) or 0 for g, _ in tests)
                   for s in data.students) / max(n, 1)
        kinds = Counter(data.kinds.get(exercise, {}).values())
        parts.append(f"<tr><td>{e(exercise)}</td><td>{mean:.2f} / {most:g}</td>"
                     f"<td>{kinds['loaded']}</td><td>{kinds['loaded+edited']}</td>"
                     f"<td>{kinds['written']}</td><td>{kinds['unanswered'] + kinds['missing']}"
                     "</td></tr>")
    parts.append("</table><h2>Tests, by mistake</h2>")
    passed = [grade_id for _, grade_id, points in data.tests if not groups(data, grade_id, points)]
    if passed:  # one line for the tests nobody failed, so that the mistakes stand out
        parts.append(f"<p class='passed'>Passed by every student: {e(', '.join(passed))}.</p>")
    for exercise, grade_id, points in data.tests:
        found = groups(data, grade_id, points)
        if not found:
            continue
        failed = sum(len(g.students) for g in found)
        parts.append(f"<h3>{e(grade_id)} ({e(exercise)}, {points:g} point"
                     f"{'s' if points != 1 else ''}): {failed} of {n} failed</h3>")
        parts.append("<table><tr><th>students</th><th>mistake (numbers as #)</th>"
                     "<th>who</th></tr>")
        for group in found:
            example = group.students[0]
            parts.append(f"<tr><td>{len(group.students)}</td><td>{e(group.message)} "
                         f"(<a href='{e(_feedback_link(example))}'>{e(example)}'s feedback</a>)"
                         f"</td><td class='students'>{e(', '.join(group.students))}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Questions graded by hand</h2><table><tr><th>question</th><th>graded</th>"
                 "<th>mean of those graded</th></tr>")
    for grade_id, points in data.questions:
        marks = [data.scores.get(s, {}).get(grade_id) for s in data.students]
        marked = [m for m in marks if m is not None]
        mean = f"{sum(marked) / len(marked):.2f} / {points:g}" if marked else "-"
        parts.append(f"<tr><td>{e(grade_id)}</td><td>{len(marked)} of {n}</td>"
                     f"<td>{mean}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)


def write_csv(data: ClassData, path: Path) -> None:
    """One row per (test, mistake) and per (exercise, answer kind)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["kind", "exercise", "test", "what", "students", "who"])
        for exercise, grade_id, points in data.tests:
            for group in groups(data, grade_id, points):
                writer.writerow(["failed test", exercise, grade_id, group.message,
                                 len(group.students), " ".join(group.students)])
        for exercise, by_student in data.kinds.items():
            for kind, count in sorted(Counter(by_student.values()).items()):
                who = " ".join(s for s, k in by_student.items() if k == kind)
                writer.writerow(["answer cell", exercise, "", kind, count, who])


def write_report(course: Path, solutions: dict[str, str], course_id: str) -> tuple[Path, Path]:
    data = collect(course, solutions, course_id)
    page, table = course / "class_report.html", course / "class_report.csv"
    page.write_text(render_html(data), encoding="utf-8")
    write_csv(data, table)
    return page, table
