"""The sandbox a submission's kernel runs in: bubblewrap, bounded, thrown away afterwards.

A graded kernel sees a root file system made of:

- the Python environment (the virtual environment, the interpreter it links to, the `vaetp`
  package, whose bundled MNIST sample stands in for the data set when grading) and `/usr`,
  read-only;
- its connection file, read-only;
- four empty, size-bounded tmpfs folders: its working folder (`/home/student/work`, also its
  `HOME`), `/tmp`, `/dev/shm`, and `/run/kernel` for its sockets. Everything else is
  read-only, the sandbox's own root (where bubblewrap makes `/etc`, `/run`, `/home`) and `/dev`
  included, so that no write goes unbounded.

The kernel holds no descriptor of the grader's: its stdin and stdout are `/dev/null`, its
stderr a pipe that the grader drains (the last 8 kB are kept for the log), and nothing else is
inherited. The grader's sockets to the kernel connect once, to sockets already listening, and
never reconnect; they accept no message over MAX_MESSAGE_BYTES (zmq closes the connection
before holding it). The host never removes or opens a path inside the sandbox after the kernel
started: its socket files vanish with its tmpfs.

Nothing else: no course folder, no repository, no home directory, no network (new network
namespace), no other process (new PID namespace), no capabilities and `no_new_privs`
(bubblewrap sets both), and no nested user namespace (`--disable-userns`: the kernel's
namespace code is out of a submission's reach). The grader reaches the kernel's IPC sockets through
`/proc/<sandbox pid>/root/run/kernel/`, so no host folder is writable from inside.

Bounds (`Limits`): address space (memory), processes and threads, file size and CPU time are
set by `vaetp.grading.confine` just before bubblewrap starts; as root, where a cgroup-v1 `pids`
or `memory` hierarchy is writable, the process and memory bounds are also set there (a root
sandbox ignores RLIMIT_NPROC). A kernel that passes a bound fails or is killed, and is
graded like a kernel that died.

Warm start (`Zygote`): TensorFlow's import is more than half of what grading one submission
costs, so each grading process keeps one zygote (`python -m vaetp.zygote`: the kernel's
environment, TensorFlow, Keras and ipykernel imported, nothing of the grader's). For each
submission, bubblewrap builds the sandbox as above around a small waiter (`WAITER`), the zygote
forks a child, the grader sets that child's rlimits and cgroup, and the child joins every
namespace of the sandbox, drops every privilege and becomes the kernel there (the zygote
module's doc has the steps). The kernel then sees what a kernel started inside the sandbox
sees. The waiter exits when the kernel does, and the sandbox goes with it. If the zygote
cannot start or a join fails, the grader says so in its log and starts kernels inside
bubblewrap as before (`VAE_TP_ZYGOTE=off` asks for that).

Without bubblewrap (`VAE_TP_SANDBOX=off`, an explicit switch), the kernel runs as a plain
process with the same environment variables and limits but none of the isolation; the
round is then marked unsandboxed in the report and grades.csv.
"""

from __future__ import annotations

import array
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.connect import channel_socket_types
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager
from traitlets import Any as AnyTrait
from traitlets import Bool, Enum, Integer, default
from traitlets.config import Configurable

SANDBOX_ENV = "VAE_TP_SANDBOX"
HOME = "/home/student"
WORK = f"{HOME}/work"
SOCKETS = "/run/kernel"
CONNECTION = "/run/grader/kernel.json"
#: The largest message the grader accepts from a kernel: the largest record (base64) and some
#: room. A larger one closes that channel before it is held in memory (zmq's MAXMSGSIZE).
MAX_MESSAGE_BYTES = 96 * 2**20
#: Messages the grader's iopub socket queues before zmq drops the next ones.
IOPUB_QUEUE = 64
#: The kernel's sockets, as the grader waits for them to listen (seconds).
SOCKET_WAIT = 60.0
#: The same for a kernel forked by the zygote (its imports are done): past this, the grader
#: starts that kernel inside bubblewrap instead, and the next ones too.
WARM_SOCKET_WAIT = 30.0


ZYGOTE_ENV = "VAE_TP_ZYGOTE"
#: What bubblewrap runs when the kernel comes from the zygote: it waits for the first process
#: that joins the sandbox (the kernel) and exits when that process does, so that the sandbox
#: (and bubblewrap, which the kernel manager watches) ends with the kernel.
WAITER = """
import os, select, sys, time
me = os.getpid()
deadline = time.monotonic() + 120
while True:
    pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) not in (1, me))
    if pids:
        break
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.005)
try:
    fd = os.pidfd_open(pids[0])
except OSError:
    sys.exit(0)
select.select([fd], [], [])
"""


#: An optional tag of one grading round (letters, digits, - and _): it is in the name of each
#: of that round's cgroups and in its sandboxes' environment, so that whoever started the round
#: (a test) can tell its own leftovers from another round's on the same machine.
ROUND_ENV = "VAE_TP_ROUND"


def round_tag() -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_-]", "", os.environ.get(ROUND_ENV, ""))[:40]


class SandboxUnavailable(RuntimeError):
    """Bubblewrap cannot run here; the message names the fix."""


@dataclass(frozen=True)
class Limits:
    """Bounds of one sandbox (`SandboxSettings.limits()`)."""

    memory_mb: int = 4096  # address space: TensorFlow alone reserves about 2.5 GB of it
    processes: int = 256  # processes and threads
    file_mb: int = 256  # largest file
    disk_mb: int = 512  # each tmpfs (work folder, /tmp)
    cpu_seconds: int = 900

    @classmethod
    def from_env(cls) -> "Limits":
        """This process's limits: nbgrader's configuration, then the environment's overrides
        (`vaetp.grading.settings`)."""
        return SandboxSettings.current().limits()


class SandboxSettings(Configurable):
    """What an instructor tunes of the sandbox, in nbgrader_config.py (`c.SandboxSettings.<name>`)
    or, for one run, with the environment variables of `vaetp.grading.settings.OVERRIDES`."""

    mode = Enum(["bubblewrap", "off"], "bubblewrap",
                help="'off' grades without the sandbox (the report and grades.csv say so); "
                     "VAE_TP_SANDBOX=off").tag(config=True)
    memory_mb = Integer(Limits.memory_mb, help="address space of a graded kernel, in MB "
                        "(TensorFlow alone reserves about 2.5 GB of it)").tag(config=True)
    processes = Integer(Limits.processes, help="processes and threads of a graded kernel"
                        ).tag(config=True)
    file_mb = Integer(Limits.file_mb, help="the largest file a graded kernel may write, in MB"
                      ).tag(config=True)
    disk_mb = Integer(Limits.disk_mb, help="size of each tmpfs (work folder, /tmp), in MB"
                      ).tag(config=True)
    cpu_seconds = Integer(Limits.cpu_seconds, help="CPU time of a graded kernel").tag(config=True)
    warm_start = Bool(True, help="fork kernels from a zygote that imported TensorFlow once "
                      "(VAE_TP_ZYGOTE=off: every kernel starts cold)").tag(config=True)

    @classmethod
    def current(cls, course: Path | None = None) -> "SandboxSettings":
        """This process's settings (`vaetp.grading.settings.configuration`)."""
        from vaetp.grading.settings import configuration

        return cls(config=configuration(course))

    def limits(self) -> Limits:
        return Limits(self.memory_mb, self.processes, self.file_mb, self.disk_mb, self.cpu_seconds)


def mode(course: Path | None = None) -> str:
    """'bubblewrap', or 'off' when the instructor turned the sandbox off explicitly."""
    return SandboxSettings.current(course).mode


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def check_available(course: Path | None = None) -> None:
    """Raise SandboxUnavailable, with the fix, if a bubblewrap sandbox cannot start here."""
    import subprocess

    if mode(course) == "off":
        return
    bwrap = bwrap_path()
    if bwrap is None:
        raise SandboxUnavailable(
            "bubblewrap is not installed, and every submission is graded in its sandbox. "
            "Install it (Debian/Ubuntu: sudo apt-get install bubblewrap), or grade without a "
            f"sandbox on purpose with {SANDBOX_ENV}=off (make autograde SANDBOX=off): the "
            "report then says the round was unsandboxed.")
    done = subprocess.run([bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/",
                           "true"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SandboxUnavailable(
            "bubblewrap cannot create its namespaces here ("
            + (done.stderr.strip() or f"exit {done.returncode}") + "). Unprivileged user "
            "namespaces are probably off (sysctl kernel.unprivileged_userns_clone=1, or "
            "user.max_user_namespaces > 0); docs/instructor.md gives the alternatives "
            f"(a container, a separate Unix user), or grade without a sandbox with {SANDBOX_ENV}=off.")


def python_roots() -> list[str]:
    """Folders the kernel needs, read-only: the environment, the interpreter, the package."""
    import vaetp

    roots = {sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parents[1]),
             str(Path(vaetp.__file__).resolve().parent)}
    # site folders added by .pth files (a hub's shared environment); never the current folder,
    # which is the course folder when nbgrader runs
    roots |= {str(Path(p).resolve()) for p in sys.path
              if p and Path(p).is_dir() and Path(p).name in ("site-packages", "dist-packages")}
    # the shortest set of folders covering all (no folder bound inside another bound folder)
    ordered = sorted(roots, key=len)
    kept: list[str] = []
    for root in ordered:
        if not any(root == k or root.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(root)
    return [k for k in kept if not k.startswith("/usr/") and k != "/usr"]


def grader_only_paths() -> list[str]:
    """Folders a graded kernel must not see: the grader's own package, `vaetp.grading`, which
    holds the TP's reference answers (`vaetp.grading.reference`) and the judge. The sandbox
    mounts an empty, read-only folder over it."""
    import vaetp.grading

    return [str(Path(vaetp.grading.__file__).resolve().parent)]


def kernel_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The only environment variables a graded kernel gets (none of the instructor's)."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": HOME,
        "USER": "student",
        "LANG": "C.UTF-8",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "KERAS_HOME": f"{HOME}/.keras",
        "MPLCONFIGDIR": f"{HOME}/.matplotlib",
        "PYTHONDONTWRITEBYTECODE": "1",
        "VAE_TP_FAST": "1",
        "VAE_TP_GRADING": "1",
    }
    # the very vaetp the grader runs (bound read-only by python_roots), not the one an editable
    # install's finder may point at (another checkout, which the sandbox does not hold)
    import vaetp

    env["PYTHONPATH"] = str(Path(vaetp.__file__).resolve().parents[1])
    if round_tag():
        env[ROUND_ENV] = round_tag()  # so that a test finds its own round's processes
    for key in ("KERAS_BACKEND", "LD_LIBRARY_PATH"):  # part of the Python environment's set-up
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(extra or {})
    return env


def bwrap_command(command: list[str], *, connection_file: str | None, limits: Limits,
                  env: dict[str, str], readonly: list[tuple[str, str]] = (),
                  hidden: list[str] = (), workdir: str = WORK) -> list[str]:
    """bubblewrap's argv around `command`: the file system described in this module's doc."""
    size = str(limits.disk_mb * 2**20)
    args = [bwrap_path() or "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--clearenv", "--uid", "1000", "--gid", "1000", "--unshare-user", "--disable-userns",
            "--size", size, "--tmpfs", "/tmp",
            "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
            "--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/dev/shm"]
    for etc in ("/etc/ld.so.cache", "/etc/fonts", "/etc/localtime", "/etc/ssl/certs"):
        if os.path.exists(etc):
            args += ["--ro-bind", etc, etc]
    for root in python_roots():
        args += ["--ro-bind", root, root]
    for host, inside in readonly:
        args += ["--ro-bind", host, inside]
    for path in hidden:  # an empty, read-only folder in its place
        args += ["--size", "4096", "--tmpfs", path, "--remount-ro", path]
    if connection_file:
        args += ["--ro-bind", connection_file, CONNECTION,
                 "--size", str(2**20), "--tmpfs", SOCKETS]
    args += ["--size", size, "--tmpfs", HOME, "--dir", workdir, "--chdir", workdir]
    # Every writable mount is a sized tmpfs; the rest is read-only, the sandbox's own root
    # (where bubblewrap made /etc, /run, /home) and /dev (a tmpfs of device nodes) included.
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    return args + ["--", *command]


def confine_command(command: list[str], limits: Limits, cgroup_name: str | None) -> list[str]:
    """`python -m vaetp.grading.confine` (rlimits, cgroup) in front of `command`."""
    args = [sys.executable, "-m", "vaetp.grading.confine",
            "--memory-mb", str(limits.memory_mb), "--processes", str(limits.processes),
            "--file-mb", str(limits.file_mb), "--cpu-seconds", str(limits.cpu_seconds)]
    if cgroup_name:
        args += ["--cgroup", cgroup_name]
    return args + ["--", *command]


def _child_pid(pid: int, timeout: float = 10.0) -> int | None:
    """The first child of `pid` (bubblewrap's sandbox process), waiting for it to appear."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return None
        if children:
            return int(children[0])
        time.sleep(0.01)
    return None


def _read_only_python() -> Any:
    """For Popen's preexec_fn (root only): a mount namespace of the zygote's own where the Python
    environment and /usr are read-only bind mounts, so that the interpreter a forked kernel
    reaches through /proc/self/exe is on a read-only mount (its uid in the sandbox is root's)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child only calls it
    paths = [p.encode() for p in ["/usr", *python_roots()] if os.path.isdir(p)]
    ms_rdonly, ms_remount, ms_bind, ms_rec, ms_private = 1, 32, 4096, 16384, 1 << 18

    def mount(source: bytes | None, target: bytes, flags: int) -> None:
        if libc.mount(source, target, None, ctypes.c_ulong(flags), None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"mount {target.decode()}: {os.strerror(err)}")

    def setup() -> None:
        if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS
            err = ctypes.get_errno()
            raise OSError(err, f"unshare: {os.strerror(err)}")
        mount(None, b"/", ms_rec | ms_private)
        for path in paths:
            mount(path, path, ms_bind | ms_rec)
            mount(None, path, ms_remount | ms_bind | ms_rdonly)

    return setup


class Zygote:
    """The grading process's warm start for kernels (module doc, "Warm start"): one
    `python -m vaetp.zygote` process, started on first use, ended with the grader."""

    _instance: "Zygote | None" = None
    #: Why warm starts are off in this process (None: they are on).
    disabled: str | None = None
    START_TIMEOUT = 180.0
    FORK_TIMEOUT = 30.0

    @classmethod
    def get(cls) -> "Zygote | None":
        """The zygote, started if needed; None when warm starts are off (`disabled` says why)."""
        if not SandboxSettings.current().warm_start:
            return None
        if cls.disabled is not None:
            return None
        if cls._instance is None or cls._instance.process.poll() is not None:
            if cls._instance is not None:
                cls._instance.close()  # died (its parent thread ended): its socket and folder
            try:
                cls._instance = cls()
            except (OSError, RuntimeError, ValueError) as err:
                cls.disable(f"the zygote did not start: {err}")
                return None
        return cls._instance

    @classmethod
    def disable(cls, why: str) -> None:
        cls.disabled = why
        if cls._instance is not None:
            cls._instance.close()
            cls._instance = None

    def __init__(self) -> None:
        import atexit

        self.home = Path(tempfile.mkdtemp(prefix="vaetp-zygote-"))
        env = kernel_environment()
        # the imports' own set-up folders (Keras's, Matplotlib's): a scratch folder of the host
        env.update(HOME=str(self.home), KERAS_HOME=str(self.home / ".keras"),
                   MPLCONFIGDIR=str(self.home / ".matplotlib"))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.lock = threading.Lock()
        self.socket = ours
        log = self.home / "zygote.log"
        try:
            with open(log, "wb") as err:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "vaetp.zygote", str(theirs.fileno())],
                    pass_fds=[theirs.fileno()], env=env, cwd=self.home, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                    preexec_fn=_read_only_python() if os.geteuid() == 0 else None)
        except (OSError, subprocess.SubprocessError) as failed:
            ours.close()
            shutil.rmtree(self.home, ignore_errors=True)
            raise RuntimeError(f"the zygote did not start: {failed}") from failed
        finally:
            theirs.close()
        atexit.register(self.close)
        ours.settimeout(self.START_TIMEOUT)
        try:
            ready = ours.recv(4096)
        except OSError as err:
            ready = f"{err}".encode()
        if ready != b"ready":
            tail = log.read_bytes()[-500:].decode(errors="replace") if log.exists() else ""
            self.close()
            raise RuntimeError(f"{ready.decode(errors='replace')} {tail}".strip())

    def fork_kernel(self, request: dict, bounds: Any) -> tuple[int, int]:
        """Fork a kernel into the sandbox of `request["sandbox_pid"]`; `bounds(pid)` sets the
        child's rlimits and cgroup before it goes on. Returns a pidfd of the kernel and the
        read end of its stderr pipe."""
        control, child_control = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        read_end, write_end = os.pipe()
        try:
            with self.lock:
                self.socket.sendmsg([json.dumps(request).encode()], [
                    (socket.SOL_SOCKET, socket.SCM_RIGHTS,
                     array.array("i", [child_control.fileno(), write_end]))])
        except OSError:
            os.close(read_end)
            raise
        finally:
            child_control.close()
            os.close(write_end)
        try:
            control.settimeout(self.FORK_TIMEOUT)
            word, _, value = control.recv(4096).decode(errors="replace").partition(" ")
            if word != "pid":
                raise RuntimeError(f"the zygote's child said {word!r}")
            bounds(int(value))
            control.send(b"go")
            fds = array.array("i")
            data, ancdata, _, _ = control.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
            word, _, value = data.decode(errors="replace").partition(" ")
            if word != "kernel" or len(fds) != 1:
                for fd in fds:
                    os.close(fd)
                raise RuntimeError(value or "the zygote's child ended without a kernel")
            return fds[0], read_end
        except BaseException:
            os.close(read_end)
            raise
        finally:
            control.close()

    def close(self) -> None:
        try:
            self.socket.close()
        except OSError:
            pass
        if self.process.poll() is None:
            self.process.kill()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.home, ignore_errors=True)


def listening_sockets(pid: int) -> set[str]:
    """Paths of the Unix sockets listening in the network namespace of `pid` (inside paths)."""
    found = set()
    try:
        lines = Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        # Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = listening
        if len(fields) >= 8 and int(fields[3], 16) & 0x10000:
            found.add(fields[7])
    return found


class _SandboxSockets:
    """The grader's sockets to a sandboxed kernel: each connects once, to a socket already
    listening, and never reconnects (a reconnect would follow whatever the kernel put at that
    path since, a symlink to a socket of the host included); no message larger than
    MAX_MESSAGE_BYTES is ever held (zmq closes the connection first), and iopub queues at most
    IOPUB_QUEUE messages."""

    iopub_monitor: Any = None

    def _create_connected_socket(self, channel: str, identity: bytes | None = None):
        url = self._make_url(channel)  # type: ignore[attr-defined]
        sock = self.context.socket(channel_socket_types[channel])  # type: ignore[attr-defined]
        sock.linger = 0  # nothing is left to send once the grader closes: a dead kernel would hold close() for the whole linger
        if identity:
            sock.identity = identity
        manager = self if isinstance(self, SandboxedKernelManager) else getattr(self, "parent", None)
        if getattr(manager, "sandboxed", False):
            sock.setsockopt(zmq.RECONNECT_IVL, -1)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        if channel == "iopub":
            sock.setsockopt(zmq.RCVHWM, IOPUB_QUEUE)
            self.iopub_monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        sock.connect(url)
        return sock

    def iopub_lost(self) -> bool:
        """Whether the iopub connection was closed (a message over MAX_MESSAGE_BYTES)."""
        monitor = self.iopub_monitor
        try:
            return bool(monitor is not None and not monitor.closed
                        and monitor.get(zmq.EVENTS) & zmq.POLLIN)
        except zmq.ZMQError:
            return False


class SandboxedKernelClient(_SandboxSockets, AsyncKernelClient):
    """The client nbclient gets from SandboxedKernelManager (see _SandboxSockets)."""

    def stop_channels(self) -> None:
        super().stop_channels()
        if self.iopub_monitor is not None:
            self.iopub_monitor.close(linger=0)
            self.iopub_monitor = None


class SandboxedKernelManager(_SandboxSockets, AsyncKernelManager):
    """A kernel manager whose kernel runs in a fresh bubblewrap sandbox (see module doc)."""

    extra_env = AnyTrait(None, help="Extra environment variables for the kernel (dict).")

    @default("client_factory")
    def _client_factory_default(self) -> type:
        return SandboxedKernelClient
    #: The last bytes the sandbox wrote on its stderr (bubblewrap's and the kernel's start-up
    #: errors), for the grader's log; its stdout goes to /dev/null.
    stderr_tail: bytes = b""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.limits = Limits.from_env()
        self.sandboxed = mode() != "off"
        self.runtime = Path(tempfile.mkdtemp(prefix="vaetp-kernel-"))
        tag = f"{round_tag()}-" if round_tag() else ""
        self.cgroup = f"vaetp-{tag}{uuid.uuid4().hex[:12]}" if os.geteuid() == 0 else None
        self.connection_file = str(self.runtime / "kernel.json")
        self.transport = "ipc"
        self.ip = (SOCKETS if self.sandboxed else str(self.runtime)) + "/k"
        self._kernel_spec = KernelSpec(
            argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            display_name="Python 3 (graded, sandboxed)", language="python",
            interrupt_mode="message")

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        connection = CONNECTION if self.sandboxed else self.connection_file
        kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", connection,
                  *(extra_arguments or [])]
        env = kernel_environment(self.extra_env)
        if not self.sandboxed:
            workdir = self.runtime / "work"
            workdir.mkdir(exist_ok=True)
            env.update(HOME=str(workdir), KERAS_HOME=str(workdir / ".keras"),
                       MPLCONFIGDIR=str(workdir / ".matplotlib"))
            launcher = ["/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()),
                        "sh", "-c", f'cd "{workdir}" && exec "$@"', "sh", *kernel]
            return confine_command(launcher, self.limits, self.cgroup)
        self._cold_cmd = confine_command(
            bwrap_command(kernel, connection_file=self.connection_file, limits=self.limits,
                          env=env, hidden=grader_only_paths()), self.limits, self.cgroup)
        self._zygote = Zygote.get()
        if self._zygote is None:
            return self._cold_cmd
        import importlib.util

        self._warm_request = {
            "uid": 1000, "gid": 1000, "env": env, "cwd": WORK,
            "launcher": importlib.util.find_spec("ipykernel_launcher").origin,
            "argv": kernel[3:],
        }
        waiter = [sys.executable, "-S", "-c", WAITER]
        return confine_command(
            bwrap_command(waiter, connection_file=self.connection_file, limits=self.limits,
                          env=env, hidden=grader_only_paths()), self.limits, self.cgroup)

    _zygote: Zygote | None = None
    _cold_cmd: list[str] | None = None
    _warm_request: dict | None = None
    #: The kernel's pid (a pidfd) when it came from the zygote.
    kernel_pidfd: int | None = None
    #: How this kernel started: "warm" (forked by the zygote), "cold" (inside bubblewrap), "off".
    start: str = "cold"

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        await self._launch_sandbox(kernel_cmd, **kw)
        self.start = "cold" if self.sandboxed else "off"
        if not self.sandboxed:
            return
        if self._zygote is not None:
            failure = None
            try:
                self._fork_kernel()
                if await self._wait_for_sockets(WARM_SOCKET_WAIT):
                    self.start = "warm"
                    return
                failure = "the forked kernel did not open its sockets" + (
                    " (it ended)" if self._kernel_ended() else f" in {WARM_SOCKET_WAIT:.0f} s")
            except (OSError, RuntimeError, ValueError) as err:
                failure = str(err)
            # never a submission's fault: start this kernel, and the next ones, cold
            self.log.warning("Warm kernel start failed (%s); kernels start inside bubblewrap "
                             "from now on", failure)
            Zygote.disable(f"a warm start failed: {failure}")
            self._kill_sandbox()
            self.ip = f"{SOCKETS}/k"  # as the connection file has it (the kernel's view)
            await self._launch_sandbox(self._cold_cmd, **kw)
        await self._wait_for_sockets(SOCKET_WAIT)

    async def _wait_for_sockets(self, timeout: float) -> bool:
        """Wait until the kernel's sockets listen; False if it ended or `timeout` passed."""
        import asyncio

        process = self.provisioner.process  # type: ignore[union-attr]
        wanted = {f"{SOCKETS}/k-{port}" for port in self.ports}
        deadline = time.monotonic() + timeout
        while not wanted <= listening_sockets(self.sandbox_pid):  # type: ignore[arg-type]
            if process.poll() is not None or time.monotonic() >= deadline or self._kernel_ended():
                return False
            await asyncio.sleep(0.02)
        return True

    def _kernel_ended(self) -> bool:
        if self.kernel_pidfd is None:
            return False
        import select

        return bool(select.select([self.kernel_pidfd], [], [], 0)[0])

    def _fork_kernel(self) -> None:
        """The kernel from the zygote, in the sandbox bubblewrap just made."""
        from vaetp.grading.confine import join_cgroup, set_rlimits

        def bounds(pid: int) -> None:
            if self.cgroup:
                join_cgroup(self.cgroup, self.limits.processes, self.limits.memory_mb, pid=pid)
            set_rlimits(self.limits.memory_mb, self.limits.processes, self.limits.file_mb,
                        self.limits.cpu_seconds, pid=pid)

        # the waiter: the process of the sandbox a kernel would be, in every namespace a kernel
        # would be in (bubblewrap's init, its parent, is outside the innermost user namespace)
        waiter = _child_pid(self.sandbox_pid) if self.sandbox_pid else None
        if waiter is None:
            raise RuntimeError("the sandbox's waiter did not start")
        stat = Path(f"/proc/{waiter}/stat").read_text()
        request = dict(self._warm_request or {}, sandbox_pid=waiter,
                       sandbox_start=stat[stat.rindex(")") + 2:].split()[19])
        self.kernel_pidfd, stderr = self._zygote.fork_kernel(request, bounds)  # type: ignore[union-attr]
        threading.Thread(target=self._drain_stderr, args=(os.fdopen(stderr, "rb"),),
                         daemon=True).start()

    async def _launch_sandbox(self, kernel_cmd: list[str], **kw: Any) -> None:
        kw.pop("cwd", None)  # the kernel's folder is inside the sandbox
        kw["cwd"] = str(self.runtime)
        # Nothing of the grader's: no terminal, no log file, no other descriptor (Popen closes
        # every descriptor above 2 by default). stderr is a pipe the grader drains.
        kw.update(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        await super()._async_launch_kernel(kernel_cmd, **kw)
        process = self.provisioner.process  # type: ignore[union-attr]
        threading.Thread(target=self._drain_stderr, args=(process.stderr,), daemon=True).start()
        if self.sandboxed:
            child = _child_pid(self.provisioner.pid)  # type: ignore[union-attr]
            if child is None:
                raise SandboxUnavailable("the sandbox did not start: "
                                         + self.stderr_tail.decode(errors="replace")[-500:])
            self.sandbox_pid = child
            self.ip = f"/proc/{child}/root{SOCKETS}/k"

    _stderr_lock = threading.Lock()

    def _drain_stderr(self, pipe: Any) -> None:
        try:
            for chunk in iter(lambda: pipe.read1(65536), b""):
                with self._stderr_lock:
                    self.stderr_tail = (self.stderr_tail + chunk)[-8192:]
        except (OSError, ValueError):
            pass

    def cleanup_ipc_files(self) -> None:
        """The sockets vanish with the sandbox's tmpfs: the host removes no path inside it."""
        if not self.sandboxed:
            super().cleanup_ipc_files()

    sandbox_pid: int | None = None

    def _kill_sandbox(self) -> None:
        """SIGKILL the sandbox's first process (the init of its PID namespace: every process of
        the sandbox dies with it); bubblewrap, its parent, then reaps it and exits. Killing
        bubblewrap first would leave that init a zombie that nobody reaps, pinning the cgroup."""
        import signal

        if self.kernel_pidfd is not None:
            try:
                signal.pidfd_send_signal(self.kernel_pidfd, signal.SIGKILL)
            except OSError:
                pass
            os.close(self.kernel_pidfd)
            self.kernel_pidfd = None
        if self.sandbox_pid is None:
            return
        try:
            os.kill(self.sandbox_pid, signal.SIGKILL)
        except OSError:
            pass
        process = getattr(self.provisioner, "process", None)
        if process is not None:
            try:
                process.wait(timeout=5)
            except Exception:  # noqa: BLE001 - the provisioner kills it below anyway
                pass
        self.sandbox_pid = None

    async def _async_interrupt_kernel(self) -> None:
        """No interrupt for a kernel whose sandbox is gone: the message would wait forever for
        a peer (the grader's sockets never reconnect). jupyter_client interrupts before every
        shutdown, after the sandbox was killed when the shutdown is immediate."""
        if self.sandboxed and (self.sandbox_pid is None or self._kernel_ended()):
            return
        await super()._async_interrupt_kernel()

    interrupt_kernel = _async_interrupt_kernel  # bound at class level, as shutdown_kernel

    async def _async_shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
        if now:
            self._kill_sandbox()
        try:
            await super()._async_shutdown_kernel(now=now, restart=restart)
        finally:
            self.cleanup_sandbox()

    shutdown_kernel = _async_shutdown_kernel  # AsyncKernelManager binds its own at class level

    def cleanup_sandbox(self) -> None:
        """Kill what is left of the sandbox, remove its cgroup and runtime folder (idempotent)."""
        from vaetp.grading.confine import remove_cgroup

        self._kill_sandbox()
        if self.cgroup:
            remove_cgroup(self.cgroup)
        shutil.rmtree(self.runtime, ignore_errors=True)
