"""A graded kernel's sandbox: what a submission can see, reach, write and use.

One kernel, started the way nbgrader's autograde starts it (SandboxedKernelManager through
nbclient), runs the probes a hostile student would; each test reads one probe's answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest
from course_paths import ROOT
from nbclient import NotebookClient

from vaetp.grading import sandbox

pytestmark = pytest.mark.skipif(sandbox.bwrap_path() is None, reason="needs bubblewrap (apt-get install bubblewrap)")

PROBES = {
    "root": "sorted(os.listdir('/'))",
    "repository": "os.path.exists(REPO)",
    "home": "visible_files(('/root', '/home', '/work', '/srv', '/etc', '/run', '/tmp'))",
    "write package": "try_write(os.path.join(os.path.dirname(vaetp.__file__), 'checks.py'))",
    "write env": "try_write(sys.prefix + '/pwned')",
    "write work": "try_write('here.txt')",
    "network": "try_connect()",
    "secret env": "os.environ.get('VAE_TP_SECRET_FOR_TEST')",
    "uid": "os.getuid()",
    "memory": "try_memory()",
    "nested namespace": "subprocess.run(['unshare', '-Ur', 'true'], capture_output=True).returncode",
    "no new privileges": "open('/proc/self/status').read().split('NoNewPrivs:')[1].split()[0]",
    "reference answers": "try_call('from vaetp.grading import reference; reference.kl([[0.0]], [[0.0]])')",
    "reference through a check module": "try_call('from vaetp import loss_checks; "
                                        "loss_checks.kl_reference([[0.0]], [[0.0]])')",
    "grading package": "sorted(os.listdir(os.path.join(os.path.dirname(vaetp.__file__), 'grading')))",
}

SETUP = f"""
import json, os, socket, subprocess, sys
import vaetp
REPO = {str(ROOT / 'README.md')!r}
def try_write(path):
    try:
        with open(path, 'a') as fh:
            fh.write('x')
        return 'written'
    except OSError as err:
        return type(err).__name__
def try_connect():
    try:
        socket.create_connection(('127.0.0.1', 22), timeout=1).close()
        return 'connected'
    except OSError as err:
        return type(err).__name__
def visible_files(tops):
    # files under these folders, outside the (read-only) Python environment
    env = tuple(p.rstrip('/') + '/' for p in (sys.prefix, sys.base_prefix, os.path.dirname(vaetp.__file__)))
    found = []
    for top in tops:
        for folder, dirs, files in os.walk(top):
            if (folder + '/').startswith(env):
                dirs[:] = []
                continue
            found += [os.path.join(folder, f) for f in files]
    return sorted(found)
def try_call(code):
    try:
        exec(code, {{}})
        return 'ran'
    except Exception as err:
        return type(err).__name__
def try_memory():
    try:
        block = bytearray(8 * 2**30)
        return 'allocated 8 GB'
    except MemoryError:
        return 'MemoryError'
"""


@pytest.fixture(scope="module")
def answers():
    os.environ["VAE_TP_SECRET_FOR_TEST"] = "instructor-token"
    try:
        cells = [nbformat.v4.new_code_cell(SETUP)] + [
            nbformat.v4.new_code_cell(f"print(json.dumps({expr}))") for expr in PROBES.values()]
        nb = nbformat.v4.new_notebook(cells=cells)
        NotebookClient(nb, kernel_manager_class=sandbox.SandboxedKernelManager, timeout=60).execute()
    finally:
        del os.environ["VAE_TP_SECRET_FOR_TEST"]
    found = {}
    for name, cell in zip(PROBES, nb.cells[1:]):
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        found[name] = json.loads(text.strip().splitlines()[-1])
    return found


def test_a_submission_sees_only_the_environment_and_empty_folders(answers):
    assert answers["repository"] is False
    # only the files the kernel needs (its connection file and sockets, the MNIST file, a few of
    # /etc) and what it wrote itself in its throwaway home
    assert set(answers["home"]) <= {"/run/grader/kernel.json",
                                    "/etc/ld.so.cache", "/etc/localtime", "here.txt"} | {
        f for f in answers["home"] if f.startswith(("/etc/fonts/", "/etc/ssl/certs/", "/home/student/", "/run/kernel/k-"))}, answers["home"]
    # the system's folders, plus the top folder of each read-only Python root (wherever the
    # course was cloned: /work here, another folder on the CI machine)
    python_tops = {root.strip("/").split("/")[0] for root in sandbox.python_roots()}
    assert set(answers["root"]) <= {"bin", "dev", "etc", "home", "lib", "lib64", "proc", "root",
                                    "run", "sbin", "srv", "tmp", "usr"} | python_tops, python_tops


def test_a_submission_writes_only_its_throwaway_folder(answers):
    assert answers["write package"] in ("OSError", "PermissionError")
    assert answers["write env"] in ("OSError", "PermissionError")
    assert answers["write work"] == "written"


def test_a_submission_has_no_network_no_secrets_no_root(answers):
    assert answers["network"] in ("OSError", "ConnectionRefusedError")
    assert answers["secret env"] is None
    assert answers["uid"] != 0 or os.geteuid() == 0  # uid 1000 inside; never root outside
    assert answers["uid"] == 1000
    assert answers["no new privileges"] == "1"
    assert answers["nested namespace"] != 0  # no user namespace inside the sandbox


def test_a_submission_cannot_reach_the_tps_reference_answers(answers):
    # the grader's package (the judge and the reference answers) is an empty folder in the sandbox
    assert answers["grading package"] == []
    assert answers["reference answers"] in ("ModuleNotFoundError", "ImportError")
    assert answers["reference through a check module"] in ("ModuleNotFoundError", "ImportError")


def test_a_memory_bomb_meets_the_bound(answers):
    assert answers["memory"] == "MemoryError"


def test_without_bubblewrap_grading_refuses_and_names_both_fixes():
    code = ("from vaetp.grading import sandbox\n"
            "try:\n    sandbox.check_available()\nexcept sandbox.SandboxUnavailable as e:\n    print(e)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PATH": "/nonexistent"})
    assert "apt-get install bubblewrap" in done.stdout
    assert "VAE_TP_SANDBOX=off" in done.stdout
