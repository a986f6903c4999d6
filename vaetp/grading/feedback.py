"""The feedback page a student reads (`make feedback`, `nbgrader generate_feedback`).

nbgrader's own feedback page names every graded cell "Test cell" or "Written response", shows a
failed test as its exception's class name and one unwrapped line, and shows a question not yet
graded by hand as "Score: 0.0 / 1.0". This course's page (`nbgrader_config.py` sets
`GenerateFeedback.exporter_class` and adds `FeedbackDetails` to `GenerateFeedback.preprocessors`):

- names each contents entry and each graded cell after what it is, from the master notebook:
  "10. The decoder, test: hidden layer: Dense(intermediate_dim), relu", "Question 1: Compare
  the training and validation losses ...", "8. The KL divergence, your answer";
- shows a failed test as its plain sentence (the error's message, without its class name),
  wrapped; the grader's own notes on a cell (not run, timed out, kernel died) likewise;
- says at the top how many questions are not graded yet, and "not graded yet" where their score
  would be, instead of a 0 (a question is not graded yet when the gradebook holds neither a
  hand mark nor an automatic score for it: an unanswered question is a 0, "No response.");
- fits the page: long lines wrap or scroll inside their box, images are at most the page's width.

The template (`templates/vaetp_feedback/index.html.j2`) extends nbgrader's; no script is added,
and the exporter puts the page's Content-Security-Policy in (`vaetp.grading.csp`), whether the
page is made by `make feedback`, `nbgrader generate_feedback` or the Formgrader's button.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import nbformat
from nbconvert.exporters import HTMLExporter
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import List
from traitlets.config import Config

TEMPLATE_DIR = Path(__file__).with_name("templates")
TEMPLATE_NAME = "vaetp_feedback"
NOT_GRADED = "not graded yet"
#: The grader's own errors on a cell that it did not (fully) run: their message is a sentence.
GRADER_ERRORS = ("NotRunByGrader", "CellTimeoutError", "KernelDied", "OutputTooLarge")

_TEST_COMMENT = re.compile(r"^#\s*Graded test \(([^)]*)\)(, run only when your notebook is graded)?:"
                           r"\s*(.*)$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$", re.M)
_QUESTION = re.compile(r"\*\*(Question\s+\d+)[^*]*\*\*\s*(.*)", re.S)


def _nbgrader_template_dir() -> str:
    import nbgrader

    return os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader",
                        "templates")


class FeedbackExporter(HTMLExporter):
    """nbgrader's feedback exporter with this course's template (which extends nbgrader's)."""

    def __init__(self, config: Config | None = None, **kwargs: Any):
        # GenerateFeedback puts `HTMLExporter.template_name = 'feedback'` in the config; this
        # class's own section comes first: the course's page, which extends that template.
        config = Config(copy.deepcopy(config)) if config is not None else Config()
        config.FeedbackExporter.template_name = TEMPLATE_NAME
        config.FeedbackExporter.extra_template_basedirs = [str(TEMPLATE_DIR),
                                                           _nbgrader_template_dir()]
        # where `{% extends 'feedback/index.html.j2' %}` finds nbgrader's page, and its
        # bootstrap.min.css (as GenerateFeedback gives it), however the exporter is made
        bootstrap = os.path.join(os.path.dirname(_nbgrader_template_dir()), "static",
                                 "node_modules", "bootstrap", "dist", "css")
        paths = list(config.HTMLExporter.get("extra_template_paths", []))
        config.FeedbackExporter.extra_template_paths = [
            *paths, *([bootstrap] if bootstrap not in paths else []), _nbgrader_template_dir()]
        super().__init__(config=config, **kwargs)

    def from_notebook_node(self, nb: nbformat.NotebookNode, resources: dict | None = None,
                           **kw: Any):
        """The page, with no script of its own and a policy that runs none
        (`csp.protect_feedback_page`), however it is made: `make feedback`, `nbgrader
        generate_feedback`, or the Formgrader's button."""
        from vaetp.grading.csp import protect_feedback_page

        page, resources = super().from_notebook_node(nb, resources, **kw)
        return protect_feedback_page(page), resources


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _section(heading: str, number: str | None) -> tuple[str, str | None]:
    """('8. The KL divergence', '8') from '### The KL divergence (exercise)' under '## 8. ...'."""
    text = re.sub(r"\s*\((open )?exercise\)\s*$", "", heading).strip()
    found = re.match(r"^(\d+)\.\s+", text)
    if found:
        return text, found.group(1)
    return (f"{number}. {text}" if number else text), number


def _opening(text: str, at_least: int = 40) -> str:
    """The first sentences of a text, as many as make `at_least` characters."""
    sentences = re.split(r"(?<=[.?!])\s", _one_line(text))
    words = ""
    for sentence in sentences:
        words = f"{words} {sentence}".strip()
        if len(words) >= at_least:
            break
    return words


def cell_titles(master: nbformat.NotebookNode) -> dict[str, str]:
    """{grade_id: what the cell is}, for every cell nbgrader tracks in the master: each graded
    test by its exercise (the section it is in) and the first comment of its code, each question
    by its number and first sentence, each exercise cell by its section."""
    titles: dict[str, str] = {}
    section, number = "", None
    question = ""
    for cell in master.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if cell.cell_type == "markdown" and not grade_id:
            for level, text in _HEADING.findall(cell.source):
                if text and not text.startswith("BEGIN"):
                    section, number = _section(text, number if len(level) > 2 else None)
            found = _QUESTION.search(cell.source)
            if found:
                question = f"{found.group(1)}: {_opening(found.group(2))}"
            continue
        if not grade_id:
            continue
        if meta.get("grade") and cell.cell_type == "code" and not meta.get("solution"):
            lines = cell.source.splitlines()
            found = _TEST_COMMENT.match(lines[0]) if lines else None
            if found:
                words = [found.group(3)]
                for line in lines[1:]:
                    if not line.startswith("#") or line.startswith("###"):
                        break
                    words.append(line.lstrip("#"))
                hidden = "hidden test" if found.group(2) else "test"
                titles[grade_id] = f"{section}, {hidden}: {_one_line(' '.join(words))}"
            else:
                titles[grade_id] = f"{section}, test {grade_id}"
        elif meta.get("grade") and cell.cell_type == "markdown":
            titles[grade_id] = question or f"Question {grade_id}"
        elif meta.get("solution"):
            titles[grade_id] = f"{section}, your answer"
    return titles


def not_graded(grade: Any) -> bool:
    """A graded cell that nobody graded yet: no hand mark, and no automatic score (nbgrader
    gives an automatic 0 to an answer left as released, and a score to every test)."""
    return grade.manual_score is None and grade.auto_score is None


class FeedbackDetails(NbGraderPreprocessor):
    """After nbgrader's GetGrades: each tracked cell's title (from the course's master) and,
    for the questions nobody graded yet, `not_graded`; the count in `resources`."""

    # HTMLExporter configures NbConvertBase.display_data_priority; as in nbgrader's GetGrades,
    # a configurable copy keeps traitlets from warning that this class ignores it
    display_data_priority = List(['text/html', 'application/pdf', 'text/latex', 'image/svg+xml',
                                  'image/png', 'image/jpeg', 'text/plain']).tag(config=True)

    def preprocess(self, nb: nbformat.NotebookNode, resources: dict):
        from nbgrader.api import Gradebook
        from nbgrader.coursedir import CourseDirectory

        info = resources["nbgrader"]
        self._titles: dict[str, str] = {}
        try:
            coursedir = CourseDirectory(config=self.config)
            master = Path(coursedir.format_path(coursedir.source_directory, ".",
                                                info["assignment"])) / f"{info['notebook']}.ipynb"
            self._titles = cell_titles(nbformat.read(master, as_version=4))
        except Exception as err:  # noqa: BLE001 - titles are a courtesy: the page is made anyway
            self.log.warning("feedback: no cell titles (%s)", err)
        with Gradebook(info["db_url"]) as gb:
            submission = gb.find_submission_notebook(info["notebook"], info["assignment"],
                                                     info["student"])
            self._pending = {g.name: g.max_score for g in submission.grades if not_graded(g)}
        nb, resources = super().preprocess(nb, resources)
        resources["nbgrader"]["not_graded"] = len(self._pending)
        resources["nbgrader"]["not_graded_points"] = sum(self._pending.values())
        return nb, resources

    def preprocess_cell(self, cell: nbformat.NotebookNode, resources: dict, index: int):
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta and meta.get("grade_id"):
            meta["title"] = self._titles.get(meta["grade_id"], "")
            if meta.get("grade") and meta["grade_id"] in self._pending:
                meta["not_graded"] = True
        return cell, resources


def ungraded_questions(course: Path, course_id: str, assignment: str,
                       notebook: str) -> dict[str, list[str]]:
    """{student: [grade ids not graded yet]} for every student with one or more."""
    from nbgrader.api import Gradebook

    found: dict[str, list[str]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id) as gb:
        for sub in gb.assignment_submissions(assignment):
            nb = gb.find_submission_notebook(notebook, assignment, sub.student.id)
            pending = [g.name for g in nb.grades if not_graded(g)]
            if pending:
                found[sub.student.id] = pending
    return found
