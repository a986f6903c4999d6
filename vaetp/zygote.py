"""A warm start for graded kernels: Python, TensorFlow and ipykernel imported once, then forked
into each submission's sandbox.

    python -m vaetp.zygote FD

Importing TensorFlow and Keras takes a graded kernel about 3 CPU-seconds, more than half of
what grading one submission costs. This process imports them once, with the kernel's
environment, and then, for each submission, forks a child that joins the namespaces of that
submission's bubblewrap sandbox (already started by the grader, its file system made by
bubblewrap exactly as for a kernel started inside it) and becomes the submission's kernel
there.

Mechanism only, no policy: the grader (`vaetp.grading.sandbox`) decides the sandbox, the
bounds (it sets the child's rlimits and cgroup before letting it go on) and the kernel's
environment. This module never imports `vaetp.grading`: everything imported here is in the
kernel's memory, and the grader's package holds the TP's reference answers.

The child, in order: a new session; waits for the grader's "go" (rlimits and cgroup set); joins
the sandbox's user namespace (the outer one, where bubblewrap set up the mounts), its mount,
network, IPC, UTS and cgroup namespaces, its PID namespace (for its own child), then the inner
user namespace the sandbox's processes run in (bubblewrap's `--disable-userns`); drops every
capability (bounding set, ambient, permitted), takes the sandbox's uid and gid, sets
`no_new_privs`; forks the kernel (which is then a process of the sandbox's PID namespace and
dies with it), reports the kernel's pid, and exits. The kernel closes every descriptor but
0 (/dev/null), 1 (/dev/null) and 2 (the grader's stderr pipe), takes the kernel environment,
and runs ipykernel's launcher.

Protocol on FD (a SOCK_SEQPACKET Unix socket): each request is one JSON message with two
descriptors attached (SCM_RIGHTS): a control socket for this child (SOCK_SEQPACKET too) and the
write end of the kernel's stderr pipe. On the control socket the child sends `pid <n>`,
receives `go`, then sends `kernel <host pid>` with a pidfd of the kernel attached, or
`error <message>`.

The interpreter: a forked kernel's `/proc/self/exe` is the zygote's, a file of the host. The
grader starts the zygote (as root) in a mount namespace of its own where the Python
environment and `/usr` are read-only bind mounts, and the zygote refuses to serve if its
executable is writable by its own user (a kernel of the sandbox could otherwise change its
mode: the sandbox maps its uid onto the grader's).
"""

from __future__ import annotations

import array
import ctypes
import json
import os
import select
import signal
import socket
import sys

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NS_GET_PARENT = 0xB702
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_CHILD_SUBREAPER = 36
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
SYS_capset = 126  # x86_64


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _setns(fd: int, kind: int, what: str) -> None:
    _check(_libc.setns(fd, kind), f"setns({what})")


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    return _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                       ctypes.c_ulong(0), ctypes.c_ulong(0))


def _drop_capabilities() -> None:
    """Empty bounding, ambient, inheritable, permitted and effective sets."""
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last + 1):
        _check(_prctl(PR_CAPBSET_DROP, cap), f"drop capability {cap}")
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header = Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (Data * 2)()
    _check(_libc.syscall(SYS_capset, ctypes.byref(header), ctypes.byref(data)), "capset")


def _start_time(pid: int) -> str:
    """Field 22 of /proc/<pid>/stat: with the pid, names one process for its whole life."""
    stat = open(f"/proc/{pid}/stat").read()
    return stat[stat.rindex(")") + 2:].split()[19]


def _join_sandbox(sandbox_pid: int, start_time: str, uid: int, gid: int) -> None:
    """Enter every namespace of the sandbox's waiter; keep no privilege. Any failure raises:
    the grader then starts the kernel inside bubblewrap instead."""
    import fcntl

    try:
        os.setgroups([])  # while in the host's namespace (unprivileged: not allowed, and moot)
    except OSError:
        if os.geteuid() == 0:
            raise

    def ns(name: str) -> int:
        return os.open(f"/proc/{sandbox_pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)

    inner_user = ns("user")
    others = {name: ns(name) for name in ("mnt", "net", "ipc", "uts", "cgroup", "pid")}
    if _start_time(sandbox_pid) != start_time:  # the waiter ended and its pid was reused
        raise RuntimeError("the sandbox's waiter is gone")
    outer_user = fcntl.ioctl(inner_user, NS_GET_PARENT)  # owns the sandbox's mounts
    _setns(outer_user, CLONE_NEWUSER, "user")
    _setns(others["mnt"], CLONE_NEWNS, "mnt")  # also moves the root and cwd to the sandbox's
    _setns(others["net"], CLONE_NEWNET, "net")
    _setns(others["ipc"], CLONE_NEWIPC, "ipc")
    _setns(others["uts"], CLONE_NEWUTS, "uts")
    _setns(others["cgroup"], CLONE_NEWCGROUP, "cgroup")
    _setns(others["pid"], CLONE_NEWPID, "pid")  # for the child forked next
    _setns(inner_user, CLONE_NEWUSER, "inner user")  # where the sandbox's processes run
    for fd in (outer_user, inner_user, *others.values()):
        os.close(fd)
    os.chdir("/")
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    _drop_capabilities()
    _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")


def _close_all_from(first: int) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    top = max(soft, hard) if hard != resource.RLIM_INFINITY else soft
    os.closerange(first, min(max(top, 1 << 16), 1 << 22))


def _run_kernel(request: dict, stderr_fd: int) -> None:
    """In the sandbox: the kernel, as `python -m ipykernel_launcher -f CONNECTION` would run."""
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(stderr_fd, 2)
    _close_all_from(3)
    os.setsid()
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as Python sets it at start-up
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    os.umask(0o022)
    del sys.path[0]  # the zygote's start folder (`python -m`); ipykernel's launcher drops it too
    sys.argv = [request["launcher"], *request["argv"]]
    # what the imports read from the zygote's set-up folders: the kernel's own instead
    matplotlib = sys.modules.get("matplotlib")
    for name in ("get_configdir", "get_cachedir"):
        cache_clear = getattr(getattr(matplotlib, name, None), "cache_clear", None)
        if cache_clear is not None:
            cache_clear()
    if matplotlib is not None:
        # Matplotlib read MPLBACKEND when the zygote imported it, before ipykernel sets the
        # inline backend for the kernel: take it as a cold kernel's import would (plt.show()
        # then shows the figure in the cell's outputs)
        backend = os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
        matplotlib.rcParams["backend"] = backend
    keras_config = sys.modules.get("keras.src.backend.config")
    if keras_config is not None and hasattr(keras_config, "_KERAS_DIR"):
        keras_config._KERAS_DIR = os.environ.get("KERAS_HOME", keras_config._KERAS_DIR)
    code = 0
    try:
        from ipykernel import kernelapp

        kernelapp.launch_new_instance()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # noqa: BLE001 - the kernel failed to start: its traceback on stderr
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        import atexit

        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _child(request: dict, control: socket.socket, stderr_fd: int) -> None:
    """The forked child: wait for the grader, join the sandbox, fork the kernel, report."""
    try:
        os.setsid()
        control.send(f"pid {os.getpid()}".encode())
        if control.recv(16) != b"go":
            os._exit(2)
        _join_sandbox(request["sandbox_pid"], request["sandbox_start"], request["uid"],
                      request["gid"])
        kernel = os.fork()
        if kernel == 0:
            _run_kernel(request, stderr_fd)
        pidfd = os.pidfd_open(kernel)  # the grader's handle on the kernel: never a reused pid
        control.sendmsg([f"kernel {kernel}".encode()],
                        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [pidfd]))])
        os._exit(0)
    except BaseException as err:  # noqa: BLE001 - reported to the grader, which falls back
        try:
            control.send(f"error {type(err).__name__}: {err}".encode()[:4000])
        finally:
            os._exit(1)


def _receive(server: socket.socket) -> tuple[dict, list[int]] | None:
    fds = array.array("i")
    data, ancdata, _, _ = server.recvmsg(1 << 20, socket.CMSG_SPACE(4 * fds.itemsize))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    if not data:
        return None
    return json.loads(data), list(fds)


def preload() -> None:
    """What every graded kernel imports: TensorFlow through Keras, NumPy, ipykernel."""
    import numpy  # noqa: F401

    import keras  # noqa: F401
    import tensorflow  # noqa: F401
    from ipykernel import kernelapp  # noqa: F401
    from keras import layers, ops  # noqa: F401


def refusal() -> str | None:
    """Why this process must not fork kernels, or None."""
    leaked = sorted(m for m in sys.modules if m.startswith("vaetp.grading"))
    if leaked:  # every kernel would inherit the grader's package
        return f"{', '.join(leaked)} imported"
    exe = os.stat("/proc/self/exe")
    read_only = bool(os.statvfs("/proc/self/exe").f_flag & os.ST_RDONLY)
    if exe.st_uid == os.geteuid() and not read_only:
        # a kernel would own the interpreter through /proc/self/exe (its uid is ours)
        return (f"the interpreter {os.readlink('/proc/self/exe')} belongs to uid {exe.st_uid}, "
                "the grading user, on a writable mount")
    return None


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def serve(fd: int) -> None:
    server = socket.socket(fileno=fd)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # never outlives the grader
    if os.getppid() == 1:
        os._exit(0)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # kernels whose first parent exited are reaped here
    preload()
    why = refusal()
    if why:
        server.send(f"refused: {why}".encode())
        os._exit(1)
    # a kernel that ends is reaped at once (its sandbox's PID namespace waits for that)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_write)
    server.send(b"ready")
    while True:
        readable, _, _ = select.select([server, wake_read], [], [], 5.0)
        try:
            while os.read(wake_read, 512):
                pass
        except BlockingIOError:
            pass
        _reap()
        if server not in readable:
            continue
        try:
            received = _receive(server)
        except (OSError, ValueError) as err:
            print(f"zygote: a request could not be read: {err}", file=sys.stderr, flush=True)
            continue
        if received is None:  # the grader is gone
            os._exit(0)
        request, fds = received
        if len(fds) != 2:
            for extra in fds:
                os.close(extra)
            continue
        control_fd, stderr_fd = fds
        try:
            pid = os.fork()
        except OSError as err:
            print(f"zygote: fork failed: {err}", file=sys.stderr, flush=True)
            pid = -1
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.close(wake_read)
            os.close(wake_write)
            server.close()
            _child(request, socket.socket(fileno=control_fd), stderr_fd)
        os.close(control_fd)
        os.close(stderr_fd)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
