"""The release audit: no solution (unless shipped on purpose) and no hidden test in release/."""

from __future__ import annotations

from pathlib import Path

import nbformat

from vaetp.grading import markers


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
