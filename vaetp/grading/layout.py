"""Where the course's files are: one assignment (`vae`), one notebook, nbgrader's folders."""

from __future__ import annotations

from pathlib import Path

ASSIGNMENT = "vae"
NOTEBOOK = "vae_tp.ipynb"
NOTEBOOK_ID = Path(NOTEBOOK).stem


def submitted(course: Path, student: str) -> Path:
    return course / "submitted" / student / ASSIGNMENT / NOTEBOOK


def autograded(course: Path, student: str) -> Path:
    return course / "autograded" / student / ASSIGNMENT / NOTEBOOK


def master(course: Path) -> Path:
    return course / "source" / ASSIGNMENT / NOTEBOOK


def students(course: Path) -> list[str]:
    """Students with a submitted notebook, sorted."""
    folder = course / "submitted"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / ASSIGNMENT / NOTEBOOK).is_file())
