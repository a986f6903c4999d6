"""The hub's pre_spawn_hook: a student's server starts with ~/solutions where %load finds it."""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace

from vaetp.hub import link_solutions


def spawner(name: str = "student1") -> SimpleNamespace:
    return SimpleNamespace(user=SimpleNamespace(name=name), log=logging.getLogger("test-hub"))


def shared_solutions(tmp_path):
    folder = tmp_path / "opt" / "solutions"
    folder.mkdir(parents=True)
    (folder / "decoder_vae.py").write_text("decoder = ...\n")
    return folder


def test_a_students_first_server_gets_the_solutions_link(tmp_path):
    solutions, home = shared_solutions(tmp_path), tmp_path / "home"
    home.mkdir()
    assert link_solutions(spawner(), str(solutions), str(home)) == "linked"
    assert os.readlink(home / "solutions") == str(solutions)
    (home / "vae").mkdir()  # where nbgrader's fetch puts the notebook: ../solutions from there
    assert (home / "vae" / ".." / "solutions" / "decoder_vae.py").read_text() == "decoder = ...\n"
    assert link_solutions(spawner(), str(solutions), str(home)) == "already linked"


def test_a_students_own_solutions_folder_is_never_replaced(tmp_path, caplog):
    solutions, home = shared_solutions(tmp_path), tmp_path / "home"
    (home / "solutions").mkdir(parents=True)
    (home / "solutions" / "mine.py").write_text("my work\n")
    with caplog.at_level(logging.INFO, logger="test-hub"):
        outcome = link_solutions(spawner(), str(solutions), str(home))
    assert outcome.startswith("not linked") and "left as it is" in caplog.text
    assert (home / "solutions" / "mine.py").read_text() == "my work\n"
    other = tmp_path / "home2"
    other.mkdir()
    (other / "solutions").symlink_to(tmp_path)  # a link of the student's own, elsewhere
    assert link_solutions(spawner(), str(solutions), str(other)).startswith("not linked")
    assert os.readlink(other / "solutions") == str(tmp_path)


def test_a_hub_without_the_solutions_installed_says_so_and_starts_the_server(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    outcome = link_solutions(spawner(), str(tmp_path / "missing"), str(home))
    assert "does not exist" in outcome and not (home / "solutions").exists()


def test_a_home_that_is_a_link_is_refused(tmp_path):
    solutions, real = shared_solutions(tmp_path), tmp_path / "real"
    real.mkdir()
    (tmp_path / "home").symlink_to(real)
    try:
        link_solutions(spawner(), str(solutions), str(tmp_path / "home"))
    except OSError:
        pass
    else:
        raise AssertionError("a home that is a symbolic link was followed")
    assert not (real / "solutions").exists()
