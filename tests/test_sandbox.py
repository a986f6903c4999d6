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
    "descriptors": "descriptors()",
    "fill": "{folder: fill(folder) for folder in FILL}",
    "symlinks": "plant_symlinks(HOST_TRAP)",
    "interpreter": "change_interpreter()",
    "matplotlib backend": "__import__('matplotlib').get_backend()",
}
#: Each writable tmpfs of the sandbox is this big in this module's kernel.
DISK_MB = 16
#: Folders the kernel tries to fill past DISK_MB (the sandbox's own root, /etc, /run, /dev: none
#: writable; its work folder, /tmp, /dev/shm: each stops at DISK_MB).
FILL = ("/etc", "/run", "/", "/dev", "/home", ".", "/tmp", "/dev/shm")

SETUP = f"""
import json, os, socket, subprocess, sys
import vaetp
REPO = {str(ROOT / 'README.md')!r}
DISK_MB = {DISK_MB}
FILL = {FILL!r}
HOST_TRAP = HOST_TRAP_PATH
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
def descriptors():
    # every descriptor the kernel holds, and what it points at
    found = {{}}
    for fd in os.listdir('/proc/self/fd'):
        try:
            found[fd] = os.readlink('/proc/self/fd/' + fd)
        except OSError:
            pass
    return found
def fill(folder):
    # write up to twice the disk bound, 1 MB at a time; how many MB went in, and what stopped it
    written = 0
    try:
        with open(os.path.join(folder, 'filler'), 'wb') as fh:
            for _ in range(2 * DISK_MB):
                fh.write(b'x' * 2**20)
                fh.flush()
                written += 1
        return [written, 'not stopped']
    except OSError as err:
        return [written, err.strerror]
    finally:
        try:
            os.remove(os.path.join(folder, 'filler'))
        except OSError:
            pass
def plant_symlinks(trap):
    # replace /run (the grader reaches the sockets through /run/kernel) and the socket files
    # with symlinks to a folder of the host, and plant more in the work folder
    done = []
    ports = [v for k, v in json.load(open('/run/grader/kernel.json')).items() if k.endswith('_port')]
    for make in (lambda: os.rename('/run', '/run-old'), lambda: os.mkdir('/run'),
                 lambda: os.symlink(trap, '/run/kernel')):
        try:
            make()
            done.append('ok')
        except OSError as err:
            done.append(err.strerror)
    for port in ports:
        for path in ('/run/kernel/k-%d' % port, 'k-%d' % port):
            try:
                if os.path.lexists(path):
                    os.remove(path)
                os.symlink(os.path.join(trap, 'k-%d' % port), path)
                done.append('ok')
            except OSError as err:
                done.append(err.strerror)
    return done
def change_interpreter():
    # the interpreter's file, reached through /proc/self/exe (a warm kernel's is the zygote's):
    # set its mode to what it is, set an extended attribute, touch it
    results = []
    for change in (lambda: os.chmod('/proc/self/exe', os.stat('/proc/self/exe').st_mode & 0o7777),
                   lambda: os.setxattr('/proc/self/exe', 'user.vaetp', b'x'),
                   lambda: os.utime('/proc/self/exe')):
        try:
            change()
            results.append('changed')
        except OSError as err:
            results.append(err.strerror)
    return results
def try_memory():
    try:
        block = bytearray(8 * 2**30)
        return 'allocated 8 GB'
    except MemoryError:
        return 'MemoryError'
"""


@pytest.fixture(scope="module")
def host_trap(tmp_path_factory):
    """A folder of the host holding files named like a kernel's socket files (k-1, k-2, ...)."""
    trap = tmp_path_factory.mktemp("host-trap")
    for port in range(1, 30):
        (trap / f"k-{port}").write_text("host file\n")
    return trap


class RecordedStart(sandbox.SandboxedKernelManager):
    """The course's kernel manager, noting how each kernel started (warm or cold)."""

    starts: list[str] = []

    async def _async_launch_kernel(self, *args, **kwargs):
        await super()._async_launch_kernel(*args, **kwargs)
        RecordedStart.starts.append(self.start)


def probe_answers(host_trap, *, warm: bool) -> tuple[dict, str]:
    """Every probe's answer from one sandboxed kernel, and how that kernel started."""
    saved = {key: os.environ.get(key) for key in ("VAE_TP_SECRET_FOR_TEST", "VAE_TP_SANDBOX_DISK_MB",
                                                  sandbox.ZYGOTE_ENV)}
    os.environ["VAE_TP_SECRET_FOR_TEST"] = "instructor-token"
    os.environ["VAE_TP_SANDBOX_DISK_MB"] = str(DISK_MB)
    if not warm:
        os.environ[sandbox.ZYGOTE_ENV] = "off"
    try:
        cells = [nbformat.v4.new_code_cell(SETUP.replace("HOST_TRAP_PATH", repr(str(host_trap))))] + [
            nbformat.v4.new_code_cell(f"print(json.dumps({expr}))") for expr in PROBES.values()]
        nb = nbformat.v4.new_notebook(cells=cells)
        NotebookClient(nb, kernel_manager_class=RecordedStart, timeout=60).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    found = {}
    for name, cell in zip(PROBES, nb.cells[1:]):
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        found[name] = json.loads(text.strip().splitlines()[-1])
    return found, RecordedStart.starts[-1]


@pytest.fixture(scope="module")
def answers(host_trap):
    """The probes of a kernel started as grading starts it: warm, forked into the sandbox."""
    found, start = probe_answers(host_trap, warm=True)
    assert start == "warm", f"the kernel started {start}: {sandbox.Zygote.disabled}"
    return found


def test_a_warm_kernel_sees_what_a_kernel_started_inside_bubblewrap_sees(answers, host_trap):
    """The zygote's kernel (TensorFlow imported before the fork) is held exactly as a kernel
    that bubblewrap starts itself: same files, writes, network, identity, bounds, nothing more
    reachable, the same kinds of descriptors."""
    cold, start = probe_answers(host_trap, warm=False)
    assert start == "cold"

    def kinds(descriptors: dict) -> set[str]:
        return {target.split(":[")[0] for target in descriptors.values()
                if not target.startswith(("/home/student/", "/tmp/", "/proc/"))}

    def files(found: list[str]) -> list[str]:
        # what importing Keras and Matplotlib writes into an empty home (a cold kernel's own)
        return [f for f in found if not f.startswith(("/home/student/.keras/",
                                                      "/home/student/.matplotlib/"))]

    for name in PROBES:
        if name == "descriptors":
            assert kinds(answers[name]) == kinds(cold[name]), name
        elif name == "home":
            assert files(answers[name]) == files(cold[name]), name
        else:
            assert answers[name] == cold[name], name


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


def test_a_submission_cannot_change_the_interpreter_it_runs(answers):
    """The kernel's own executable is a file of the host (for a warm kernel, the zygote's): its
    mode, attributes and times stay out of reach (a read-only mount)."""
    assert answers["interpreter"] == ["Read-only file system"] * 3, answers["interpreter"]


def test_a_submission_holds_no_descriptor_of_the_grader(answers):
    held = answers["descriptors"]
    assert {"0", "1", "2"} <= set(held), held
    # stdin: /dev/null; ipykernel moves fds 1 and 2 onto pipes of its own and keeps copies of
    # the originals (/dev/null, and the grader's stderr pipe); the rest are the kernel's own
    # sockets, pipes, event descriptors and the files it opened inside the sandbox
    assert held["0"] == "/dev/null", held
    foreign = {fd: target for fd, target in held.items()
               if not target.startswith(("pipe:", "socket:", "anon_inode:", "/dev/null", "/dev/urandom"))
               and not target.startswith(("/home/student/", "/tmp/", "/run/kernel/", "/proc/"))}
    assert foreign == {}, foreign
    assert not [t for t in held.values() if t.startswith(("/dev/pts", "/dev/tty", "/dev/console"))]


def test_every_writable_folder_of_the_sandbox_is_bounded(answers):
    fill = answers["fill"]
    for folder in ("/etc", "/run", "/", "/dev", "/home"):
        assert fill[folder] == [0, "Read-only file system"], (folder, fill[folder])
    for folder in (".", "/tmp", "/dev/shm"):
        written, why = fill[folder]
        assert why == "No space left on device" and written <= DISK_MB, (folder, fill[folder])


def test_the_grader_follows_no_symlink_planted_in_the_sandbox(answers, host_trap):
    """A kernel plants symlinks to a host folder where the grader reaches its sockets; when the
    kernel is shut down, the grader removes nothing there (the host files are all still here)."""
    done = answers["symlinks"]
    assert done[0] == "Read-only file system", done  # /run cannot be replaced
    assert sorted(p.name for p in host_trap.iterdir()) == sorted(f"k-{port}" for port in range(1, 30))
    assert all(p.read_text() == "host file\n" for p in host_trap.iterdir())


def test_the_graders_sockets_never_reconnect_and_refuse_huge_messages():
    import zmq

    manager = sandbox.SandboxedKernelManager()
    try:
        client = manager.client()
        for connect in (client.connect_iopub, client.connect_shell, client.connect_stdin,
                        client.connect_control, client.connect_hb, manager.connect_control):
            sock = connect()
            try:
                assert sock.getsockopt(zmq.RECONNECT_IVL) == -1
                assert sock.getsockopt(zmq.MAXMSGSIZE) == sandbox.MAX_MESSAGE_BYTES
            finally:
                sock.close(linger=0)
    finally:
        manager.cleanup_sandbox()


LOG_FORGER = r"""
import json, os
reached, wrote = [], []
for fd, data in ((1, b'FORGED-STDOUT\n'), (2, b'FORGED-STDERR\n')):
    try:
        os.write(fd, data)
        wrote.append(fd)
    except OSError:
        pass
for fd in os.listdir('/proc/self/fd'):
    try:
        new = os.open('/proc/self/fd/' + fd, os.O_RDWR | os.O_NONBLOCK | os.O_APPEND)
    except OSError:
        continue
    try:
        text = os.read(new, 4096).decode(errors='replace')
    except OSError:
        text = ''
    try:
        os.write(new, b'FORGED-REOPEN\n')
    except OSError:
        pass
    os.close(new)
    reached.append(text)
print(json.dumps({'reached': reached, 'wrote': wrote}))
"""

RUN_FORGER = """
import json, sys
import nbformat
from nbclient import NotebookClient
from vaetp.grading import sandbox
print('CLASS-LIST: alice bob carol', flush=True)
print('CLASS-LIST on stderr', file=sys.stderr, flush=True)
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(sys.argv[1])])
NotebookClient(nb, kernel_manager_class=sandbox.SandboxedKernelManager, timeout=60).execute()
text = ''.join(o.get('text', '') for o in nb.cells[0].outputs if o.output_type == 'stream')
open(sys.argv[2], 'w').write(text)
print('graded', flush=True)
"""


def test_a_kernel_cannot_read_or_forge_the_graders_log(tmp_path):
    """An instructor runs `make autograde > log 2>&1`: a kernel that writes to its fds 1 and 2 and
    reopens every descriptor it holds through /proc/self/fd neither reads nor writes that log."""
    log, answer = tmp_path / "autograde.log", tmp_path / "answer.txt"
    with log.open("w") as fh:
        done = subprocess.run([sys.executable, "-c", RUN_FORGER, LOG_FORGER, str(answer)],
                              stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    text = log.read_text()
    assert done.returncode == 0, text[-3000:]
    assert "CLASS-LIST: alice bob carol" in text and "graded" in text
    assert "FORGED" not in text, text
    # (what it wrote into the kernel's own output pipes shows in its own output, as it should;
    # ipykernel forwards those pipes on its own thread, so their text may land inside the
    # printed line: read the JSON object where it starts, up to where it ends)
    output = answer.read_text()
    assert '{"reached"' in output, output
    found, _ = json.JSONDecoder().raw_decode(output, output.index('{"reached"'))
    assert found["wrote"] == [1, 2]  # its writes went to /dev/null and to the grader's pipe
    assert not [t for t in found["reached"] if "CLASS-LIST" in t], found


def test_one_huge_output_costs_the_grader_no_memory_and_stops_the_notebook():
    """A kernel prints 300 MB in one message: the grader closes the output channel before it
    holds the message (its peak memory stays where it was; without the bound it rose by about
    900 MB), marks the cell, and runs no later cell (bench/stream_flood.py)."""
    import re

    done = subprocess.run([sys.executable, str(ROOT / "bench" / "stream_flood.py"), "--messages", "1",
                           "--mb", "300"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    before, after = map(int, re.search(r"peak RSS (\d+) MB before the cell, (\d+) MB after",
                                       done.stdout).groups())
    assert after - before < 100, done.stdout
    assert "larger than 96 MB in one message" in done.stdout
    assert "not run: an earlier cell sent an output larger than 96 MB" in done.stdout


def test_a_warm_start_that_fails_starts_the_kernel_cold_and_says_so(monkeypatch, caplog):
    """A failure of the zygote is never a submission's: that kernel, and the next ones, start
    inside bubblewrap, and the grader's log says why."""
    def broken(self, request, bounds):
        raise RuntimeError("setns(mnt): Operation not permitted")

    sandbox.Zygote.get()  # started (or already running): the failure is in the fork
    monkeypatch.setattr(sandbox.Zygote, "fork_kernel", broken)
    monkeypatch.setattr(sandbox.Zygote, "disabled", None)
    monkeypatch.setattr(sandbox.Zygote, "_instance", sandbox.Zygote._instance)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    with caplog.at_level("WARNING"):
        NotebookClient(nb, kernel_manager_class=RecordedStart, timeout=60).execute()
    assert nb.cells[0].outputs[0]["text"] == "42\n"
    assert RecordedStart.starts[-1] == "cold"
    assert "Warm kernel start failed (setns(mnt): Operation not permitted)" in caplog.text
    assert sandbox.Zygote.get() is None  # the next kernels start cold too


def test_the_zygote_refuses_to_serve_a_process_that_imported_the_grader():
    """Everything the zygote imported is in every kernel's memory: it refuses to serve once the
    grader's package (the TP's reference answers) is among its modules, as in this process."""
    from vaetp import zygote

    assert "vaetp.grading" in (zygote.refusal() or "")
