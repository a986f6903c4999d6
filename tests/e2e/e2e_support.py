"""Helpers of the end-to-end tests: servers on loopback, bounded waits, clean process trees."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

LOOPBACK = "127.0.0.1"

# Debian's Chromium, headless; without the network flags it tries to reach Google's hosts.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports on loopback.

    Every socket stays bound until all are chosen: asking for one port at a time can hand the same
    port back twice (a CI run once gave the hub and its proxy's API the same one).
    """
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((LOOPBACK, 0))
        return [sock.getsockname()[1] for sock in sockets]


def free_port() -> int:
    return free_ports(1)[0]


class Process:
    """A child process in its own session (so the whole tree can be stopped), logging to a file."""

    def __init__(self, name: str, argv: list[str], log: Path, **kwargs):
        self.name = name
        self.log = log
        self._log_file = open(log, "ab")
        self.popen = subprocess.Popen(argv, stdout=self._log_file, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the process group, then SIGKILL what is left of it."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._log_file.close()


def wait_http(url: str, process: Process | None = None, timeout: float = 90,
              ok=(200, 302), **kwargs) -> requests.Response:
    """Poll `url` until it answers with a status in `ok`; fail early if `process` dies."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise RuntimeError(f"{process.name} exited ({process.popen.returncode}):\n{process.tail()}")
        try:
            response = requests.get(url, timeout=5, allow_redirects=False, **kwargs)
            if response.status_code in ok:
                return response
            last = f"HTTP {response.status_code}"
        except requests.RequestException as error:
            last = repr(error)
        time.sleep(0.5)
    tail = process.tail() if process is not None else ""
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s (last: {last})\n{tail}")


def wait_until(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextlib.contextmanager
def jupyter_lab(root: Path, tmp_path: Path, log: Path, settings: Path | None = None,
                port: int | None = None, env: dict[str, str] | None = None):
    """`jupyter lab` on the loopback (on `port`, else a free one), serving `root` as an
    instructor runs it there (the formgrader included), with a fresh user's config. Yields
    (base URL, token); the server's log is left at `log`. `env`: more variables for the server
    and its kernels (None as a value removes one)."""
    port, token = port or free_port(), secrets.token_hex(16)
    extra = env or {}
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(settings or tmp_path / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"), TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONUNBUFFERED="1")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    jupyter_bin = str(Path(sys.executable).with_name("jupyter"))
    process = Process("jupyter lab", [
        jupyter_bin, "lab", "--no-browser", f"--ServerApp.ip={LOOPBACK}", f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.allow_remote_access=False",
    ] + (["--allow-root"] if os.geteuid() == 0 else []), log, env=env, cwd=root)
    base = f"http://{LOOPBACK}:{port}"
    try:
        wait_http(f"{base}/api/status?token={token}", process, timeout=90)
        yield base, token
    finally:
        process.stop()


GRADE = Path(__file__).resolve().parents[2] / "tools" / "grade.py"


def run_grade(course: Path, *args: str, timeout: float = 420) -> str:
    """`tools/grade.py --course COURSE ARGS...`, as an instructor runs it (the venv first on PATH,
    solutions off unless asked, the MNIST sample bundled with vaetp: no grade depends on the
    data); fails the test with the command's output if it fails or runs past `timeout`."""
    import pytest

    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("VAE_TP_SHIP_SOLUTIONS", None)
    env["VAE_TP_MNIST"] = os.environ.get("VAE_TP_E2E_MNIST", "sample")
    try:
        done = subprocess.run([sys.executable, str(GRADE), "--course", str(course), *args],
                              env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"grade.py {' '.join(args)} ran past {timeout} s:\n{error.stdout}")
    if done.returncode != 0:
        pytest.fail(f"grade.py {' '.join(args)} failed ({done.returncode}):\n"
                    f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout
