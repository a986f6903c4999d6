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
