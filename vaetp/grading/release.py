"""The release: the solution files it ships, and its audit (no solution unless shipped on
purpose, no hidden test in release/)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from vaetp.grading import markers


def solution_files(nb: nbformat.NotebookNode) -> dict[str, str]:
    """solutions/NAME.py for each exercise cell of the master that offers
    `# %load ../solutions/NAME.py`: the cell's solution region, under that name."""
    files = {}
    for cell in nb.cells:
        if not cell.metadata.get("nbgrader", {}).get("solution"):
            continue
        load = markers.SOLUTION_LOAD_RE.search(cell.source)
        region = markers.regions(cell.source, markers.SOLUTION)
        if load is None or not region:
            continue
        header = (f"# Solution to the exercise '{cell.metadata['nbgrader']['grade_id']}' "
                  "(generated from the master notebook).\n")
        files[load.group(1)] = header + region[0].rstrip() + "\n"
    return files


def secret_lines(nb: nbformat.NotebookNode) -> dict[str, list[str]]:
    """Distinctive lines (20+ characters) of the master's solutions (code regions, and the
    model answers of the manually graded markdown cells) and hidden tests."""
    sources = [cell.source for cell in nb.cells]
    answers = sorted({line.strip() for cell in nb.cells if cell.cell_type == "markdown"
                      and cell.metadata.get("nbgrader", {}).get("solution")
                      for line in cell.source.splitlines() if len(line.strip()) >= 20})
    return {"solution": markers.distinctive_lines(sources, markers.SOLUTION),
            "model answer": answers,
            "hidden test": markers.distinctive_lines(sources, markers.HIDDEN_TESTS)}


def audit_release(release: Path, master_nb: nbformat.NotebookNode, ship: bool) -> list[str]:
    """Problems of release/: nbgrader markers, hidden tests, solution code (outside solutions/
    when they are shipped, anywhere when not)."""
    secrets = secret_lines(master_nb)
    problems = []
    for path in sorted(p for p in release.rglob("*") if p.is_file()):
        rel = path.relative_to(release)
        shipped_solution = ship and rel.parts[0] == "solutions"
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            text = path.read_bytes().decode("latin-1")
        if path.suffix == ".ipynb":  # look at the cells' text, as JSON escapes quotes
            nb = nbformat.reads(text, as_version=4)
            text = "\n".join(cell.source for cell in nb.cells)
        for marker in markers.ALL:
            if marker in text and not shipped_solution:
                problems.append(f"release/{rel}: contains the marker '### {marker}'")
        for kind, lines in secrets.items():
            if kind != "hidden test" and shipped_solution:
                continue
            for line in lines:
                if line in text:
                    problems.append(f"release/{rel}: contains {kind} code: {line!r}")
    return problems


# --------------------------------------------------------------------------------------------
# A release without solutions says what to do when stuck in that course, not `%load`
# --------------------------------------------------------------------------------------------

#: The course's own words for a student who is stuck, when no solution is shipped (the default
#: of `tools/grade.py release --no-solutions`; `--stuck TEXT` or VAE_TP_STUCK_HELP replace it).
DEFAULT_STUCK_HELP = ("read the check cell's message again: it names what to change. Still "
                      "stuck? Ask your teaching assistant.")
NO_SOLUTIONS = ("This release comes without the solutions: the commented `%load` line at the top "
                "of the exercise cell finds no file here, leave it as it is.")
#: From "*Stuck?*" to the end of its paragraph: the TP's `%load` hint.
_STUCK = re.compile(r"\*Stuck\?\*.*?(?=\n[ \t]*\n|\Z)", re.S)
_SOLUTION_FILE = re.compile(r"`solutions/[\w.-]+\.py`")


def stuck_paragraph(help_text: str) -> str:
    help_text = " ".join(help_text.split())
    return f"*Stuck?* {help_text[:1].upper() + help_text[1:]} {NO_SOLUTIONS}"


def without_solution_hints(nb: nbformat.NotebookNode, help_text: str = DEFAULT_STUCK_HELP) -> int:
    """Rewrite, in place, the markdown cells of a release without solutions that point to them:
    each "*Stuck?* ... `%load` ..." paragraph becomes the course's `help_text`, and a file of
    solutions/ named elsewhere becomes "the course's solution". Only cells nbgrader does not
    track (no checksum, no grade) are touched. Returns how many cells changed."""
    changed = 0
    for cell in nb.cells:
        if cell.cell_type != "markdown" or "nbgrader" in cell.get("metadata", {}):
            continue
        source = _STUCK.sub(lambda _: stuck_paragraph(help_text), cell.source)
        source = _SOLUTION_FILE.sub("the course's solution", source)
        if source != cell.source:
            cell.source = source
            changed += 1
    return changed


# --------------------------------------------------------------------------------------------
# The student zip: the release plus what the notebook imports, for a laptop
# --------------------------------------------------------------------------------------------

#: requirements.txt's lines above this one are what a student's laptop needs.
GRADING_REQUIREMENTS_MARKER = "# --- grading and tests ---"
#: The only modules of `vaetp.grading` a student's notebook uses (its check cells compare with
#: the TP's answers); the rest is the instructor's grader.
STUDENT_GRADING_MODULES = ("__init__.py", "reference.py", "expected.py")
STUDENT_README = Path(__file__).with_name("templates") / "student_zip" / "README.md"


def student_requirements(requirements: str) -> str:
    """The lines of the course's requirements.txt above the grading marker, with a header."""
    head, marker, _ = requirements.partition(GRADING_REQUIREMENTS_MARKER)
    if not marker:
        raise ValueError(f"requirements.txt has no line '{GRADING_REQUIREMENTS_MARKER}'")
    pins = [line for line in head.splitlines() if line.strip() and not line.startswith("#")]
    return ("# What the TP's notebook needs, pinned to the versions the course is tested with.\n"
            "# python -m pip install -r requirements.txt\n" + "\n".join(pins) + "\n")


def helper_package_files(package: Path) -> list[tuple[Path, str]]:
    """(file, path under the package) of the helper package a student's notebook imports:
    everything but the grader (`vaetp/grading` except STUDENT_GRADING_MODULES) and caches."""
    found = []
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        if not path.is_file() or "__pycache__" in rel.parts or path.suffix == ".pyc":
            continue
        if rel.parts[0] == "grading" and (len(rel.parts) > 2 or rel.name not in STUDENT_GRADING_MODULES):
            continue
        found.append((path, rel.as_posix()))
    return found


def student_zip_files(release: Path, assignment: str, package: Path,
                      requirements: str) -> list[tuple[str, bytes]]:
    """(name in the zip, content) of the student zip: the released assignment folder with the
    helper package beside the notebook (`<assignment>/vaetp/`, where `import vaetp` finds it
    from the notebook's folder), release/solutions/*.py if shipped, the student README and the
    student requirements."""
    folder = release / assignment
    files = [(p.relative_to(release).as_posix(), p.read_bytes())
             for p in sorted(folder.rglob("*")) if p.is_file()]
    files += [(f"{assignment}/vaetp/{rel}", p.read_bytes())
              for p, rel in helper_package_files(package)]
    files += [(p.relative_to(release).as_posix(), p.read_bytes())
              for p in sorted((release / "solutions").glob("*.py"))]
    files += [("README.md", STUDENT_README.read_bytes()),
              ("requirements.txt", student_requirements(requirements).encode())]
    return files
