"""An instructor types `make formgrader` to grade the questions by hand: JupyterLab from the course
environment, on the course folder, with the course's server configuration (the CSP extension),
as root or not, and the Formgrader's page without the "exchange directory does not exist" box."""

from __future__ import annotations

import http.cookiejar
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from course_paths import ROOT

from vaetp.grading import cli as grade  # the instructor CLI (tools/grade.py runs it)


def test_the_command_is_the_course_environments_jupyterlab_on_the_course_folder(tmp_path):
    command = grade.formgrader_command(tmp_path, 8890, as_root=False)
    assert command[:2] == [str(Path(sys.executable).parent / "jupyter"), "lab"]
    assert Path(command[0]).is_file()  # the environment's own jupyter, not one from PATH
    assert f"--config={ROOT / 'jupyter_server_config.json'}" in command  # the CSP extension
    assert f"--ServerApp.root_dir={tmp_path}" in command
    assert "--ServerApp.port=8890" in command and "--ServerApp.port_retries=0" in command
    assert "--ServerApp.default_url=/formgrader" in command
    # a course-local exchange folder: nbgrader finds one, and shows no warning
    assert f"--Exchange.root={tmp_path / 'exchange'}" in command
    assert "--allow-root" not in command


def test_as_root_the_command_allows_it_and_extra_options_come_last(tmp_path):
    command = grade.formgrader_command(tmp_path, 8890, as_root=True, extra=["--no-browser"])
    assert command[-2:] == ["--allow-root", "--no-browser"]


def test_the_cli_prints_the_command_it_would_run(tmp_path, capsys):
    assert grade.main(["--course", str(tmp_path), "formgrader", "--port", "8899",
                       "--print-command"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == shlex.join(grade.formgrader_command(tmp_path, 8899, os.geteuid() == 0))


def test_without_a_gradebook_it_says_what_to_do_first(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        grade.main(["--course", str(tmp_path), "formgrader"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"no gradebook in {tmp_path}: release and autograde first (make release, make autograde)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_formgrader_starts_and_serves_its_page_without_an_exchange_warning(tmp_path, monkeypatch):
    course = tmp_path / "course"
    (course / "source" / "vae").mkdir(parents=True)
    (course / "nbgrader_config.py").write_bytes((ROOT / "nbgrader_config.py").read_bytes())
    (course / "source" / "vae" / "vae_tp.ipynb").write_bytes(
        (ROOT / "source" / "vae" / "vae_tp.ipynb").read_bytes())
    env = dict(os.environ, JUPYTER_TOKEN="test-token",
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    from nbgrader.api import Gradebook

    monkeypatch.setenv("PATH", env["PATH"])  # the gradebook calls alembic
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "vae-tp") as gb:
        gb.update_or_create_assignment("vae")
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "tools" / "grade.py"), "--course", str(course),
             "formgrader", "--port", str(port), "--", "--no-browser"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        url = f"http://localhost:{port}/formgrader?token=test-token"
        page, deadline = None, time.monotonic() + 90
        while page is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with opener.open(url, timeout=10) as response:
                    page = (response.status, response.url, response.read().decode())
            except OSError:
                time.sleep(0.5)
        text = log.read_text()
        assert page is not None, text
        status, landed, html = page
        assert status == 200 and landed.endswith("/formgrader/manage_assignments")
        assert "Manage Assignments" in html
        assert "warning-exchange" not in html and "does not exist" not in html
        assert text.splitlines()[0] == f"Formgrader: {url}"  # the URL it printed is the one
        assert "vaetp.grading.csp | extension was successfully loaded" in text
        assert (course / "exchange").is_dir()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def make_dry_run(*args: str) -> str:
    """What `make ARGS` would run (make -n), with the course environment already set up."""
    done = subprocess.run(["make", "-n", "-s", *args, f"VENV={Path(sys.executable).parents[1]}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.replace("\\\n", " ")


def test_make_formgrader_runs_the_formgrader_step_on_the_course(tmp_path):
    out = make_dry_run("formgrader", f"COURSE={tmp_path}", "PORT=9000", "LAB_ARGS=--no-browser")
    assert f"tools/grade.py --course {tmp_path} formgrader --port 9000 -- --no-browser" in out
