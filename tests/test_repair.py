"""An instructor grades a class with broken notebooks in it: each is repaired from the release
before nbgrader sees it, with one note per kind of repair (the whole round: tests/test_grading.py)."""

from __future__ import annotations

import nbformat
import pytest
from course_paths import ROOT

import simulated_class
from vaetp.grading.submissions import repair_notebook, repair_submitted

RELEASE = nbformat.read(ROOT / "notebooks" / "vae_tp.ipynb", as_version=4)
TRACKED = [c.metadata.nbgrader["grade_id"] for c in RELEASE.cells
           if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")]


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    corpus = simulated_class.build(RELEASE, simulated_class.solutions_in(ROOT / "solutions"))
    folder = tmp_path_factory.mktemp("inbox")
    found = {}
    for student in corpus:
        if student.name.startswith("broken-") or student.name in ("hand", "deleted-test"):
            path = folder / f"{student.name}.ipynb"
            simulated_class.write_submission(student, path)
            found[student.name] = (student, path.read_bytes())
    return found


def tracked(nb):
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")]


def test_each_broken_notebook_is_repaired_with_its_note(broken):
    assert len([n for n in broken if n.startswith("broken-")]) >= 7
    for name, (student, raw) in broken.items():
        nb, notes = repair_notebook(raw, RELEASE)
        nbformat.validate(nb)
        # every tracked cell once, in the release's order, with the release's role
        assert tracked(nb) == TRACKED, name
        roles = {c.metadata.nbgrader["grade_id"]: c.metadata.nbgrader for c in RELEASE.cells
                 if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")}
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            if meta:
                assert {k: meta.get(k) for k in ("grade", "solution", "locked", "points")} == {
                    k: roles[meta["grade_id"]].get(k) for k in ("grade", "solution", "locked", "points")}, name
        assert nb.metadata.kernelspec == RELEASE.metadata.kernelspec, name
        for note in student.notes:
            assert note in "; ".join(notes), (name, notes)
    assert repair_notebook(broken["hand"][1], RELEASE)[1] == []  # an intact notebook: no note


def test_a_truncated_upload_is_graded_as_the_release_and_named(broken):
    nb, notes = repair_notebook(broken["broken-truncated"][1], RELEASE)
    assert [c.source for c in nb.cells] == [c.source for c in RELEASE.cells]
    assert len(notes) == 1 and notes[0].startswith("not a readable notebook (invalid JSON at line ")


def test_repairing_twice_changes_nothing_and_reimport_sees_the_original(broken, tmp_path):
    from vaetp.grading.submissions import ORIGINAL_SUFFIX, import_submissions

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    raw = broken["broken-first-test-deleted"][1]
    (inbox / "ann.ipynb").write_bytes(raw)
    course = tmp_path / "course"
    import_submissions(course, inbox, force=False)
    first = repair_submitted(course, "ann", RELEASE)
    path = course / "submitted" / "ann" / "vae" / "vae_tp.ipynb"
    repaired = path.read_bytes()
    assert repair_submitted(course, "ann", RELEASE) == first and path.read_bytes() == repaired
    assert path.with_name(path.name + ORIGINAL_SUFFIX).read_bytes() == raw
    # the same inbox imported again: nothing new, nothing refused
    assert import_submissions(course, inbox, force=False) == ([], [])


def test_made_up_nbgrader_cells_become_ordinary_cells():
    import copy

    nb = copy.deepcopy(RELEASE)
    extra = nbformat.v4.new_code_cell("x = 1")
    extra.metadata["nbgrader"] = {"grade": True, "grade_id": ["not", "a", "string"], "points": 100}
    nameless = nbformat.v4.new_code_cell("y = 2")
    nameless.metadata["nbgrader"] = {"grade": True, "points": 5}
    nb.cells[3:3] = [extra, nameless]
    repaired, notes = repair_notebook(nbformat.writes(nb).encode(), RELEASE)
    assert tracked(repaired) == TRACKED
    assert [c.source for c in repaired.cells if c.source in ("x = 1", "y = 2")] == ["x = 1", "y = 2"]
    assert notes == ["cell(s) marked for grading that the release does not have, run as "
                     "ordinary cells: (no id) (no id)"], notes
