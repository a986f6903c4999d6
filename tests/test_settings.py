"""An instructor tunes the grading in nbgrader_config.py, or for one run with an environment
variable: both reach the grader, the variable wins, and only vaetp/grading/settings.py reads it."""

from __future__ import annotations

import re
import shutil

import pytest

from course_paths import ROOT
from vaetp.grading import sandbox, settings


@pytest.fixture
def course(tmp_path, monkeypatch):
    for name in settings.OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    return tmp_path


def set_in_config(course, line: str) -> None:
    path = course / "nbgrader_config.py"
    path.write_text(path.read_text() + "\n" + line + "\n")


def test_the_courses_sandbox_settings_reach_the_grader(course):
    assert sandbox.SandboxSettings.current(course).limits() == sandbox.Limits()  # the defaults
    set_in_config(course, "c.SandboxSettings.memory_mb = 2048\nc.SandboxSettings.mode = 'off'")
    found = sandbox.SandboxSettings.current(course)
    assert found.limits().memory_mb == 2048 and sandbox.mode(course) == "off"


def test_an_environment_variable_overrides_the_config_for_one_run(course, monkeypatch):
    set_in_config(course, "c.SandboxSettings.memory_mb = 2048")
    monkeypatch.setenv("VAE_TP_SANDBOX_MEMORY_MB", "1024")
    monkeypatch.setenv("VAE_TP_ZYGOTE", "off")
    found = sandbox.SandboxSettings.current(course)
    assert found.memory_mb == 1024 and found.warm_start is False


def test_the_cell_time_limit_is_a_setting_with_its_override(course, monkeypatch):
    from traitlets.config.loader import PyFileConfigLoader

    def timeout() -> int:
        return PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config().Execute.timeout

    assert timeout() == 60
    monkeypatch.setenv("VAE_TP_CELL_TIMEOUT", "30")
    assert timeout() == 30


def test_a_value_that_does_not_parse_names_the_variable(course, monkeypatch):
    monkeypatch.setenv("VAE_TP_SANDBOX_DISK_MB", "lots")
    with pytest.raises(SystemExit, match="VAE_TP_SANDBOX_DISK_MB='lots' is not a valid value"):
        sandbox.SandboxSettings.current(course)


def test_only_the_settings_module_reads_the_overrides():
    readers: dict[str, list[str]] = {}
    for path in (ROOT / "vaetp").rglob("*.py"):
        text = path.read_text()
        for name in settings.OVERRIDES:
            # a read: environ.get("NAME"...) or environ["NAME"] not assigned (the CLI's
            # --no-sandbox sets VAE_TP_SANDBOX for nbgrader, which reads it here)
            if re.search(rf"environ\.get\(\s*[\"']{name}[\"']", text) or \
                    re.search(rf"environ\[[\"']{name}[\"']\](?!\s*=[^=])", text):
                readers.setdefault(name, []).append(path.name)
    assert readers == {}, f"read elsewhere than vaetp/grading/settings.py: {readers}"


def test_the_round_settings_come_from_the_config_then_the_environment(course, monkeypatch):
    """jobs, shipping solutions and the stuck sentence: nbgrader_config.py's GradingRound, an
    environment variable for one run (the command-line options win over both, in cli.py)."""
    found = settings.grading_round(course)
    assert (found.jobs, found.ship_solutions, found.stuck_help) == (1, True, "")
    set_in_config(course, "c.GradingRound.jobs = 2\nc.GradingRound.ship_solutions = False\n"
                          "c.GradingRound.stuck_help = 'ask on the forum'")
    found = settings.grading_round(course)
    assert (found.jobs, found.ship_solutions, found.stuck_help) == (2, False, "ask on the forum")
    monkeypatch.setenv("VAE_TP_GRADING_JOBS", "3")
    monkeypatch.setenv("VAE_TP_SHIP_SOLUTIONS", "1")
    assert settings.grading_round(course).jobs == 3 and settings.grading_round(course).ship_solutions


def test_a_graded_release_follows_the_courses_config(course, monkeypatch, capsys):
    """With ship_solutions = False in the course's nbgrader_config.py, `release` makes a graded
    release (no solutions/); autograde grades c.GradingRound.jobs notebooks at once, unless
    --jobs says otherwise."""
    from vaetp.grading import cli

    seen = {}
    monkeypatch.setattr(cli, "cmd_release", lambda c, ship, stuck=None: seen.update(ship=ship) or 0)
    set_in_config(course, "c.GradingRound.ship_solutions = False")
    assert cli.main(["--course", str(course), "release"]) == 0
    assert seen == {"ship": False}
    monkeypatch.setattr(cli, "cmd_autograde", lambda c, s, st, f, jobs, *rest: seen.update(jobs=jobs) or 0)
    set_in_config(course, "c.GradingRound.jobs = 2")
    assert cli.main(["--course", str(course), "autograde"]) == 0 and seen["jobs"] == 2
    assert cli.main(["--course", str(course), "autograde", "--jobs", "1"]) == 0 and seen["jobs"] == 1
