"""A whole assignment on a real JupyterHub with the nbgrader exchange.

The test (as root) creates three Unix users (one instructor, two students, unique names), starts
JupyterHub on 127.0.0.1 (configurable-http-proxy from npm, DummyAuthenticator, the default
LocalProcessSpawner, which runs each user's server as that Unix user), with a shared exchange
directory and a per-user nbgrader configuration, then carries out the assignment through the
hub's REST API and the users' own servers:

- instructor, in a terminal of their JupyterLab server: `nbgrader generate_assignment` and
  `release_assignment` (the course folder is a copy of this repository's source/ and
  nbgrader_config.py, as docs/jupyterhub.md describes);
- students, through nbgrader's Lab extension handlers of their servers (the Assignments tab's
  HTTP API): fetch; student 1 solves the exercise (the cell `%load` produces, written through the
  Contents API), student 2 leaves the release untouched; both submit;
- instructor: `collect`, `autograde`, `generate_feedback`, `release_feedback`, `export`;
- students: fetch feedback.

It asserts the grades, the feedback files, and that a student can read neither the other's
submission nor their files. A second test starts a kernel in a student's server, as JupyterLab
does, and checks that it trains with the threads the course gives a server's CPU share
(`c.Spawner.cpu_limit`, vaetp.threads), not one per core of the node. Everything is bounded in time; users, processes and directories are
removed at the end.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
from e2e_support import LOOPBACK, Process, free_ports, wait_http, wait_until

REPO = Path(__file__).resolve().parents[2]
COURSE_ID = "vae-tp"
ASSIGNMENT = "vae"
NOTEBOOK = "vae_tp.ipynb"
EXERCISE_ID = "decoder-exercise"
POINTS = 27  # autograded: the tests of the eight graded exercises (hidden ones included)
MAX_SCORE = 32  # and five questions of one point, graded by hand
CPU_SHARE = 1  # c.Spawner.cpu_limit: each user's share of the node's cores
PROXY = REPO / "tools" / "e2e" / "node_modules" / ".bin" / "configurable-http-proxy"
COURSE_VENV = Path(sys.prefix)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates Unix users for the hub")


# ----------------------------------------------------------------------------------------------
# The course environment, as the users' servers see it
# ----------------------------------------------------------------------------------------------

def python_usable_by(user: str, python: Path, env: dict[str, str] | None = None) -> bool:
    assignments = [f"{key}={value}" for key, value in (env or {}).items()]
    result = subprocess.run(["runuser", "-u", user, "--", "env", *assignments, str(python), "-c",
                             "import nbgrader, vaetp"], capture_output=True, timeout=120)
    return result.returncode == 0


def shared_environment(base: Path, probe_user: str) -> tuple[Path, dict[str, str]]:
    """A Python environment the users can run, with the course's packages. Returns its bin/
    folder and the environment variables it needs.

    The course venv itself when its interpreter is usable by other users. Otherwise (here, the
    venv's interpreter is pyenv's, under /root, which other users cannot enter) a venv made
    from a copy of that same interpreter (its standard library, without site-packages: about
    50 MB), which adds the course venv's site-packages: the same Python and the same packages.
    (The system's /usr/bin/python3.11 is not the same: soupsieve fails on it, so nbconvert's
    feedback does.) A real hub installs the course environment where users can read it
    (docs/jupyterhub.md)."""
    if python_usable_by(probe_user, COURSE_VENV / "bin" / "python"):
        return COURSE_VENV / "bin", {}
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    source, python = Path(sys.base_prefix), base / "python"
    (python / "bin").mkdir(parents=True)
    (python / "lib").mkdir()
    shutil.copy2(Path(sys._base_executable).resolve(), python / "bin" / version)
    for library in (source / "lib").glob("libpython*.so*"):
        shutil.copy2(library, python / "lib" / library.name)
    shutil.copytree(source / "lib" / version, python / "lib" / version, symlinks=True,
                    ignore=shutil.ignore_patterns("site-packages", "test", "__pycache__", "config-*",
                                                  "idlelib", "tkinter", "turtledemo", "ensurepip"))
    (python / "lib" / version / "site-packages").mkdir()
    # The interpreter finds its libpython by an absolute RUNPATH under /root: LD_LIBRARY_PATH wins.
    env = {"LD_LIBRARY_PATH": str(python / "lib")}
    venv = base / "venv"
    subprocess.run([str(python / "bin" / version), "-m", "venv", "--without-pip", str(venv)],
                   check=True, timeout=120, env=dict(os.environ, **env))
    site_packages = COURSE_VENV / "lib" / version / "site-packages"
    (venv / "lib" / version / "site-packages" / "zz_vae_course.pth").write_text(
        f"import site; site.addsitedir({str(site_packages)!r})\n")
    # The course venv's Jupyter data and config (kernels, server extensions, Lab extensions).
    for sub in ("share/jupyter", "etc/jupyter"):
        (venv / sub).parent.mkdir(parents=True, exist_ok=True)
        if (COURSE_VENV / sub).exists():
            (venv / sub).symlink_to(COURSE_VENV / sub)
    # Its console scripts (jupyter, nbgrader, jupyterhub-singleuser...), with this interpreter.
    for script in (COURSE_VENV / "bin").iterdir():
        target = venv / "bin" / script.name
        if target.exists() or target.is_symlink() or not script.is_file():
            continue
        with open(script, "rb") as f:
            first = f.readline()
        if first.startswith(b"#!") and b"python" in first:
            target.write_bytes(b"#!" + str(venv / "bin" / "python").encode() + b"\n"
                               + script.read_bytes()[len(first):])
            target.chmod(0o755)
    if not python_usable_by(probe_user, venv / "bin" / "python", env):
        pytest.fail(f"could not make a Python environment usable by {probe_user}")
    return venv / "bin", env


# ----------------------------------------------------------------------------------------------
# Unix users
# ----------------------------------------------------------------------------------------------

class Users:
    def __init__(self, home_base: Path):
        self.home_base = home_base
        self.created: list[str] = []

    def add(self, name: str) -> Path:
        home = self.home_base / name
        subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/bash",
                        "--user-group", name], check=True, timeout=30)
        self.created.append(name)
        home.chmod(0o700)
        return home

    def remove_all(self) -> None:
        for name in reversed(self.created):
            subprocess.run(["pkill", "-KILL", "-u", name], timeout=30)  # this test's users only
            subprocess.run(["userdel", "--remove", name], capture_output=True, timeout=30)
            subprocess.run(["groupdel", name], capture_output=True, timeout=30)


# ----------------------------------------------------------------------------------------------
# Talking to the hub and to the users' servers
# ----------------------------------------------------------------------------------------------

class Hub:
    def __init__(self, url: str, api_token: str):
        self.url = url
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"token {api_token}"
        self.tokens: dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        response = self.api.request(method, f"{self.url}/hub/api{path}", timeout=60, **kwargs)
        assert response.status_code < 400, f"{method} {path}: {response.status_code} {response.text}"
        return response

    def start_server(self, user: str, timeout: float = 120) -> None:
        self.request("POST", f"/users/{user}/server")

        def ready():
            model = self.request("GET", f"/users/{user}").json()
            server = model.get("servers", {}).get("", {})
            return server.get("ready")
        wait_until(ready, timeout, f"{user}'s server to start")
        token = self.request("POST", f"/users/{user}/tokens",
                             json={"note": "vae e2e", "expires_in": 3600}).json()["token"]
        self.tokens[user] = token

    def server(self, user: str) -> "UserServer":
        return UserServer(f"{self.url}/user/{user}", self.tokens[user])


class UserServer:
    """A user's Jupyter server, reached through the hub's proxy with the user's own token."""

    def __init__(self, url: str, token: str):
        self.url = url
        self.token = token
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"

    def call(self, method: str, path: str, timeout: float = 120, **kwargs) -> requests.Response:
        response = self.http.request(method, f"{self.url}{path}", timeout=timeout, **kwargs)
        assert response.status_code < 400, f"{method} {path}: {response.status_code} {response.text[:2000]}"
        return response

    def run(self, command: str, timeout: float = 300) -> tuple[int, str]:
        """Run a shell command in a JupyterLab terminal of this server; return (status, output)."""
        import websocket

        name = self.call("POST", "/api/terminals").json()["name"]
        ws_url = self.url.replace("http://", "ws://") + f"/terminals/websocket/{name}"
        ws = websocket.create_connection(ws_url, header=[f"Authorization: token {self.token}"],
                                         timeout=timeout)
        marker = secrets.token_hex(4)
        try:
            # stty -echo: the output is the command's, not the typed line.
            ws.send(json.dumps(["stdin", f"stty -echo; {command}; echo \"@@{marker}@@$?@@\"\r"]))
            output = ""
            deadline = time.monotonic() + timeout
            pattern = re.compile(rf"@@{marker}@@(\d+)@@")
            while time.monotonic() < deadline:
                message = json.loads(ws.recv())
                if message[0] == "stdout":
                    output += message[1]
                    found = pattern.search(output)
                    if found:
                        return int(found.group(1)), output[: found.start()]
            raise TimeoutError(f"{command!r} did not finish in {timeout} s:\n{output[-3000:]}")
        finally:
            ws.close()
            self.http.delete(f"{self.url}/api/terminals/{name}", timeout=30)

    def execute(self, code: str, timeout: float = 300) -> str:
        """Start a kernel on this server (as JupyterLab does: POST /api/kernels), run `code` in
        it over the kernel's websocket, return what it printed; the kernel is shut down after."""
        import websocket

        kernel = self.call("POST", "/api/kernels", json={"name": "python3"}).json()["id"]
        ws_url = self.url.replace("http://", "ws://") + f"/api/kernels/{kernel}/channels"
        ws = websocket.create_connection(ws_url, header=[f"Authorization: token {self.token}"],
                                         timeout=timeout)
        msg_id, printed = secrets.token_hex(8), []
        try:
            ws.send(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": secrets.token_hex(8),
                           "username": "", "version": "5.3", "date": ""},
                "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
                "content": {"code": code, "silent": False, "store_history": False,
                            "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                message = json.loads(ws.recv())
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = message["msg_type"], message["content"]
                if kind == "stream":
                    printed.append(content["text"])
                elif kind == "error":
                    raise AssertionError("\n".join(content["traceback"]))
                elif kind == "status" and content["execution_state"] == "idle":
                    return "".join(printed)
            raise TimeoutError(f"the kernel did not finish in {timeout} s:\n{''.join(printed)[-3000:]}")
        finally:
            ws.close()
            self.http.delete(f"{self.url}/api/kernels/{kernel}", timeout=30)

    def check(self, command: str, timeout: float = 300) -> str:
        status, output = self.run(command, timeout)
        assert status == 0, f"{command!r} exited with {status}:\n{output[-4000:]}"
        return output

    def assignments(self, action: str) -> list[dict]:
        """nbgrader's Assignments tab: POST /assignments/<fetch|submit|fetch_feedback>; returns
        the assignment list it answers with."""
        result = self.call("POST", f"/assignments/{action}",
                           data={"course_id": COURSE_ID, "assignment_id": ASSIGNMENT}).json()
        assert result.get("success"), f"{action}: {result.get('value', result)}"
        return result["value"]


# ----------------------------------------------------------------------------------------------
# The fixture: users, exchange, configuration, hub
# ----------------------------------------------------------------------------------------------

@pytest.fixture
def hub():
    suffix = secrets.token_hex(2)
    names = {"instructor": f"vae-instructor-{suffix}", "student1": f"vae-student1-{suffix}",
             "student2": f"vae-student2-{suffix}"}
    # Not under pytest's tmp_path: the users must be able to enter it.
    base = Path(tempfile.mkdtemp(prefix="vae-e2e-hub-", dir="/tmp"))
    base.chmod(0o755)
    users = Users(base / "home")
    (base / "home").mkdir(mode=0o755)
    processes: list[Process] = []
    logs = REPO / "build" / "e2e"
    logs.mkdir(parents=True, exist_ok=True)
    try:
        homes = {role: users.add(name) for role, name in names.items()}
        bin_dir, python_env = shared_environment(base, names["student1"])

        # The exchange: world-writable with the sticky bit, like /srv/nbgrader/exchange.
        exchange = base / "exchange"
        exchange.mkdir()
        exchange.chmod(0o1777)
        # The configuration every user's server reads (JUPYTER_CONFIG_PATH): course and exchange.
        shared_config = base / "etc-jupyter"
        shared_config.mkdir()
        (shared_config / "nbgrader_config.py").write_text(
            "c = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
            f"c.Exchange.root = {str(exchange)!r}\n")
        # Terminals: a plain (non-login) bash, which keeps the server's PATH (the course's
        # environment first); a login shell would reset PATH from /etc/profile.
        (shared_config / "jupyter_server_config.py").write_text(
            "c = get_config()  # noqa: F821\n"
            "c.ServerApp.terminado_settings = {'shell_command': ['/bin/bash']}\n")
        # The instructor's course folder: the course's nbgrader_config.py and source/.
        course = homes["instructor"] / COURSE_ID
        shutil.copytree(REPO / "source", course / "source",
                        ignore=shutil.ignore_patterns("weights", ".ipynb_checkpoints", "__pycache__"))
        shutil.copy(REPO / "nbgrader_config.py", course / "nbgrader_config.py")
        jupyter_dir = homes["instructor"] / ".jupyter"
        jupyter_dir.mkdir()
        (jupyter_dir / "nbgrader_config.py").write_text(
            "c = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.root = {str(course)!r}\n")
        subprocess.run(["chown", "-R", f"{names['instructor']}:{names['instructor']}", str(course),
                        str(jupyter_dir)], check=True)

        hub_port, api_port, internal_port = free_ports(3)
        api_token = secrets.token_hex(32)
        env_path = f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"
        spawner_env = {
            "PATH": env_path,
            "JUPYTER_CONFIG_PATH": str(shared_config),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            **python_env,
        }
        if os.environ.get("VAE_TP_MNIST"):
            spawner_env["VAE_TP_MNIST"] = os.environ["VAE_TP_MNIST"]
        config = base / "jupyterhub_config.py"
        config.write_text(f"""
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = "http://{LOOPBACK}:{hub_port}"
c.JupyterHub.hub_bind_url = "http://{LOOPBACK}:{internal_port}"
c.ConfigurableHTTPProxy.api_url = "http://{LOOPBACK}:{api_port}"
c.ConfigurableHTTPProxy.command = [{str(PROXY)!r}]
c.ConfigurableHTTPProxy.pid_file = {str(base / 'proxy.pid')!r}
c.JupyterHub.db_url = "sqlite:///{base / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = {str(base / 'jupyterhub_cookie_secret')!r}
c.JupyterHub.pid_file = {str(base / 'jupyterhub.pid')!r}
c.JupyterHub.cleanup_servers = True
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {secrets.token_hex(8)!r}
c.Authenticator.allowed_users = {set(names.values())!r}
c.Authenticator.admin_users = {{{names['instructor']!r}}}
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [{str(bin_dir / 'jupyterhub-singleuser')!r}]
c.Spawner.default_url = "/lab"
c.Spawner.ip = "{LOOPBACK}"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.environment = {spawner_env!r}
# The course's threads per kernel, from the CPU share (docs/jupyterhub.md, "Many students").
from vaetp.threads import spawner_environment
c.Spawner.cpu_limit = {CPU_SHARE}
c.Spawner.environment.update(spawner_environment())
c.JupyterHub.services = [{{"name": "vae-e2e", "api_token": {api_token!r}}}]
c.JupyterHub.load_roles = [{{
    "name": "vae-e2e-driver",
    "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"],
    "services": ["vae-e2e"],
}}]
""")
        env = dict(os.environ, PATH=f"{COURSE_VENV / 'bin'}:{os.environ.get('PATH', '')}")
        hub_process = Process("jupyterhub", [str(COURSE_VENV / "bin" / "python"), "-m", "jupyterhub",
                                             "-f", str(config)], base / "jupyterhub.log", env=env, cwd=base)
        processes.append(hub_process)
        url = f"http://{LOOPBACK}:{hub_port}"
        wait_http(f"{url}/hub/api", hub_process, timeout=90)
        yield {"hub": Hub(url, api_token), "names": names, "homes": homes, "exchange": exchange,
               "course": course, "base": base}
    finally:
        for process in processes:
            process.stop(timeout=20)
        if (base / "jupyterhub.log").exists():
            shutil.copy(base / "jupyterhub.log", logs / "jupyterhub.log")
        users.remove_all()
        shutil.rmtree(base, ignore_errors=True)


def solve(notebook: dict) -> dict:
    """What the student's %load does: the exercise cell becomes the %load line plus the file
    (tools/run_notebook.py's substitution, with the repository's notebooks/ as the folder)."""
    import nbformat
    from run_notebook import load_solutions

    solved = load_solutions(nbformat.from_dict(notebook), REPO / "notebooks")
    exercise = next((c for c in solved.cells if c.get("id") == EXERCISE_ID), None)
    assert exercise is not None, f"no cell {EXERCISE_ID!r} in the released notebook"
    assert exercise.source.startswith("# %load ../solutions/decoder_vae.py\n")
    return solved


def test_assignment_round_trip_on_jupyterhub(hub):
    started = time.perf_counter()
    api, names, homes, exchange = hub["hub"], hub["names"], hub["homes"], hub["exchange"]
    instructor, student1, student2 = names["instructor"], names["student1"], names["student2"]
    for user in names.values():
        api.start_server(user)
    teacher, alice, bob = api.server(instructor), api.server(student1), api.server(student2)
    # The servers run as the Unix users.
    for user, server in ((instructor, teacher), (student1, alice), (student2, bob)):
        assert server.check("id -un").strip().splitlines()[-1] == user

    # 1. The instructor generates and releases the assignment.
    teacher.check(f"cd ~/{COURSE_ID} && nbgrader generate_assignment {ASSIGNMENT} --force "
                  f"&& nbgrader release_assignment {ASSIGNMENT} --force")
    assert (exchange / COURSE_ID / "outbound" / ASSIGNMENT / NOTEBOOK).exists()

    # 2. Both students fetch it (the Assignments tab).
    for server in (alice, bob):
        listed = server.assignments("fetch")
        assert any(a["assignment_id"] == ASSIGNMENT and a["status"] == "fetched" for a in listed), listed
    nb_path = f"/api/contents/{ASSIGNMENT}/{NOTEBOOK}"
    released = alice.call("GET", nb_path).json()["content"]
    assert "raise NotImplementedError" in json.dumps(released) or "YOUR CODE HERE" in json.dumps(released)

    # 3. Student 1 solves the exercise; student 2 submits the untouched release. Both submit.
    alice.call("PUT", nb_path, json={"type": "notebook", "format": "json", "content": solve(released)})
    for server in (alice, bob):
        listed = server.assignments("submit")
        assert any(a["assignment_id"] == ASSIGNMENT and a["status"] == "submitted" for a in listed), listed

    # 4. A student can read neither the other's submission nor their files.
    inbound = exchange / COURSE_ID / "inbound"
    status, output = bob.run(f"ls {inbound}")
    assert status != 0 and "Permission denied" in output, output
    submission = next(p for p in inbound.iterdir() if p.name.startswith(f"{student1}+{ASSIGNMENT}+"))
    guessed = "+".join(submission.name.split("+")[:3])  # without nbgrader's random suffix
    status, output = bob.run(f"cat '{inbound / guessed / NOTEBOOK}'")
    assert status != 0, "student 2 read student 1's submission"
    status, output = bob.run(f"cat {homes['student1']}/{ASSIGNMENT}/{NOTEBOOK}")
    assert status != 0 and "Permission denied" in output, output

    # 5. The instructor collects, autogrades (fast mode), generates and releases feedback, exports.
    teacher.check(f"cd ~/{COURSE_ID} && nbgrader collect {ASSIGNMENT} && nbgrader autograde {ASSIGNMENT}",
                  timeout=600)
    teacher.check(f"cd ~/{COURSE_ID} && nbgrader generate_feedback {ASSIGNMENT} "
                  f"&& nbgrader release_feedback {ASSIGNMENT} && nbgrader export --to grades.csv",
                  timeout=300)
    grades_text = teacher.call("GET", f"/api/contents/{COURSE_ID}/grades.csv").json()["content"]
    grades = {row["student_id"]: row for row in csv.DictReader(io.StringIO(grades_text))}
    assert set(grades) == {student1, student2}, grades_text
    assert float(grades[student1]["score"]) == POINTS, grades_text
    assert float(grades[student1]["max_score"]) == MAX_SCORE, grades_text
    assert float(grades[student2]["score"]) == 0, grades_text
    # Graded through the bubblewrap sandbox, as the unprivileged instructor, each kernel forked
    # warm by the zygote into its sandbox (unprivileged: through the sandbox's user namespace).
    for student in (student1, student2):
        autograded = json.loads((homes["instructor"] / COURSE_ID / "autograded" / student / ASSIGNMENT / NOTEBOOK)
                                .read_text())
        assert autograded["metadata"]["vaetp_grading"]["sandbox"] == "bubblewrap", student
        assert autograded["metadata"]["vaetp_grading"]["start"] == "warm", student

    # 6. Each student fetches their feedback, which shows their own score.
    for role, server, score in (("student1", alice, POINTS), ("student2", bob, 0)):
        user = names[role]
        server.assignments("fetch_feedback")
        folders = server.call("GET", f"/api/contents/{ASSIGNMENT}/feedback").json()["content"]
        assert len(folders) == 1, folders  # feedback/<timestamp>/
        html_model = server.call(
            "GET", f"/api/contents/{folders[0]['path']}/{Path(NOTEBOOK).stem}.html").json()
        html = html_model["content"]
        assert re.search(rf"Score:\s*{score}(\.0)?\s*/\s*{MAX_SCORE}(\.0)?", html), \
            f"{user}'s feedback does not show {score} / {MAX_SCORE}"
        html_path = homes[role] / html_model["path"]
        assert pwd.getpwuid(html_path.stat().st_uid).pw_name == user
    print(f"\nJupyterHub round trip: {time.perf_counter() - started:.0f} s")


# What a kernel reports about its threads once Keras has trained (XLA on the CPU included).
THREAD_PROBE = """
import collections, json, os
import numpy as np
import keras
x = np.random.default_rng(0).random((400, 784), dtype="float32")
model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dense(784, activation="sigmoid")])
model.compile("adam", "binary_crossentropy", jit_compile=True, steps_per_execution=2)
model.fit(x, x, batch_size=100, epochs=1, verbose=0)
names = collections.Counter(open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task"))
print("PROBE " + json.dumps({"env": {k: os.environ.get(k) for k in
      ("CPU_LIMIT", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
      "xla_threads": names.get("tf_XLAEigen", 0), "cores": os.cpu_count()}))
"""


def test_a_students_kernel_gets_threads_for_its_cpu_share(hub):
    """The hub gives each server a CPU share (c.Spawner.cpu_limit); a kernel the student starts in
    JupyterLab trains with that many threads, not one per core of the node."""
    api, student = hub["hub"], hub["names"]["student2"]
    if student not in api.tokens:
        api.start_server(student)
    output = api.server(student).execute(THREAD_PROBE, timeout=300)
    probe = json.loads(next(line for line in output.splitlines() if line.startswith("PROBE "))[6:])
    expected = str(max(1, min(probe["cores"], CPU_SHARE)))
    assert probe["env"]["CPU_LIMIT"] is not None and float(probe["env"]["CPU_LIMIT"]) == CPU_SHARE, probe
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        assert probe["env"][name] == expected, (name, probe)
    # XLA's CPU thread pool follows TF_NUM_INTRAOP_THREADS (by default: one thread per core).
    assert probe["xla_threads"] == int(expected), probe
