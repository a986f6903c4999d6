"""The grading settings an instructor tunes, and their environment overrides, read here only.

Each setting is a traitlets option of nbgrader's configuration, set in the course's
`nbgrader_config.py` (for example `c.SandboxSettings.memory_mb = 4096`, `c.Execute.timeout = 60`).
An environment variable of `OVERRIDES` replaces it for one run, without editing the file
(`VAE_TP_CELL_TIMEOUT=30 make autograde`, `make autograde SANDBOX=off`): `nbgrader_config.py`
calls `apply_environment(c)` last, and a grading process outside nbgrader (the test suite, a
benchmark) gets the same through `configuration()`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from traitlets import Bool, Integer, Unicode
from traitlets.config import Configurable

OFF_VALUES = {"0", "off", "no", "false", "none"}


def _on(value: str) -> bool:
    return value.strip().lower() not in OFF_VALUES


def _mode(value: str) -> str:
    return "off" if value.strip().lower() in OFF_VALUES else "bubblewrap"


#: Environment variable -> (configurable, trait, parser).
OVERRIDES: dict[str, tuple[str, str, Callable[[str], Any]]] = {
    "VAE_TP_GRADING_JOBS": ("GradingRound", "jobs", int),
    "VAE_TP_SHIP_SOLUTIONS": ("GradingRound", "ship_solutions", _on),
    "VAE_TP_STUCK_HELP": ("GradingRound", "stuck_help", str),
    "VAE_TP_CELL_TIMEOUT": ("Execute", "timeout", int),
    "VAE_TP_NOTEBOOK_TIMEOUT": ("GradingExecute", "notebook_timeout", int),
    "VAE_TP_SANDBOX": ("SandboxSettings", "mode", _mode),
    "VAE_TP_SANDBOX_MEMORY_MB": ("SandboxSettings", "memory_mb", int),
    "VAE_TP_SANDBOX_PROCESSES": ("SandboxSettings", "processes", int),
    "VAE_TP_SANDBOX_FILE_MB": ("SandboxSettings", "file_mb", int),
    "VAE_TP_SANDBOX_DISK_MB": ("SandboxSettings", "disk_mb", int),
    "VAE_TP_SANDBOX_CPU_SECONDS": ("SandboxSettings", "cpu_seconds", int),
    "VAE_TP_ZYGOTE": ("SandboxSettings", "warm_start", _on),
}


def apply_environment(config: Any) -> Any:
    """Set in `config` (a traitlets Config) every setting whose environment variable is set;
    a value that does not parse stops with the variable's name."""
    for name, (section, trait, parse) in OVERRIDES.items():
        raw = os.environ.get(name, "").strip()
        if not raw:
            continue
        try:
            value = parse(raw)
        except ValueError:
            raise SystemExit(f"{name}={raw!r} is not a valid value for {section}.{trait}: "
                             "give a whole number (or off/on), or unset it") from None
        setattr(config[section], trait, value)
    return config


class GradingRound(Configurable):
    """The instructor's round (`tools/grade.py`), in nbgrader_config.py (`c.GradingRound.<name>`)
    or, for one run, with the environment variables of `OVERRIDES`; a command-line option, when
    given, wins over both."""

    jobs = Integer(1, help="notebooks `autograde` grades at once (--jobs; VAE_TP_GRADING_JOBS)"
                   ).tag(config=True)
    ship_solutions = Bool(True, help="`release` ships solutions/ for the `%load` lines "
                          "(self-study); False for a graded run (--no-solutions; "
                          "VAE_TP_SHIP_SOLUTIONS=0)").tag(config=True)
    stuck_help = Unicode("", help="without solutions, what each exercise tells a stuck student "
                         "(--stuck; VAE_TP_STUCK_HELP; empty: the default sentence)"
                         ).tag(config=True)


def grading_round(course: Any = None) -> GradingRound:
    """This process's `GradingRound` settings (`configuration(course)`)."""
    return GradingRound(config=configuration(course))


def configuration(course: Any = None) -> Any:
    """The configuration of this process: nbgrader's (its nbgrader_config.py, overrides
    included) when nbgrader is running; else the nbgrader_config.py of the `course` folder, if
    given (the instructor's commands); else the environment's overrides alone."""
    from pathlib import Path

    from traitlets.config import Application, Config
    from traitlets.config.loader import PyFileConfigLoader

    if Application.initialized():
        return Application.instance().config
    if course is not None and (Path(course) / "nbgrader_config.py").is_file():
        return apply_environment(PyFileConfigLoader("nbgrader_config.py",
                                                    path=str(course)).load_config())
    return apply_environment(Config())
