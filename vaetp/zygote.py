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

Protocol on FD (a Unix socket): each request is one JSON line with two descriptors attached
(SCM_RIGHTS): a control socket for this child and the write end of the kernel's stderr pipe.
On the control socket the child writes `pid <n>\\n`, reads `go\\n`, then writes
`kernel <host pid>\\n` or `error <message>\\n`.
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


def _join_sandbox(sandbox_pid: int, uid: int, gid: int) -> None:
    """Enter every namespace of the sandbox's first process; keep no privilege."""
    def ns(name: str) -> int:
        return os.open(f"/proc/{sandbox_pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)

    inner_user = ns("user")
    others = {name: ns(name) for name in ("mnt", "net", "ipc", "uts", "cgroup", "pid")}
    import fcntl

    try:
        outer_user = fcntl.ioctl(inner_user, NS_GET_PARENT)
    except OSError:
        outer_user = None
    if outer_user is not None:  # the namespace that owns the sandbox's mounts
        try:
            _setns(outer_user, CLONE_NEWUSER, "user")
        except OSError:
            if os.geteuid() != 0:  # root may enter the other namespaces from the host's
                raise
        os.close(outer_user)
    _setns(others["mnt"], CLONE_NEWNS, "mnt")  # also moves the root and cwd to the sandbox's
    _setns(others["net"], CLONE_NEWNET, "net")
    _setns(others["ipc"], CLONE_NEWIPC, "ipc")
    _setns(others["uts"], CLONE_NEWUTS, "uts")
    _setns(others["cgroup"], CLONE_NEWCGROUP, "cgroup")
    _setns(others["pid"], CLONE_NEWPID, "pid")  # for the child forked next
    if outer_user is not None:
        _setns(inner_user, CLONE_NEWUSER, "inner user")
    for fd in (inner_user, *others.values()):
        os.close(fd)
    os.chdir("/")
    try:
        os.setgroups([])
    except OSError:  # bubblewrap denied setgroups in an unprivileged namespace
        pass
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    _drop_capabilities()
    _check(_prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")


def _run_kernel(request: dict, stderr_fd: int) -> None:
    """In the sandbox: the kernel, as `python -m ipykernel_launcher -f CONNECTION` would run."""
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(stderr_fd, 2)
    os.closerange(3, 1 << 16)
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as Python sets it at start-up
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    os.umask(0o022)
    sys.path[0] = request["cwd"]  # `python -m` puts the start folder first
    sys.argv = [request["launcher"], *request["argv"]]
    for module in ("matplotlib",):  # caches of the zygote's set-up folders, not the kernel's
        loaded = sys.modules.get(module)
        for name in ("get_configdir", "get_cachedir"):
            cache_clear = getattr(getattr(loaded, name, None), "cache_clear", None)
            if cache_clear is not None:
                cache_clear()
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
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        control.sendall(f"pid {os.getpid()}\n".encode())
        reply = control.recv(16)
        if reply != b"go\n":
            os._exit(2)
        _join_sandbox(request["sandbox_pid"], request["uid"], request["gid"])
        kernel = os.fork()
        if kernel == 0:
            control.close()
            _run_kernel(request, stderr_fd)
        control.sendall(f"kernel {kernel}\n".encode())
        os._exit(0)
    except BaseException as err:  # noqa: BLE001 - reported to the grader, which falls back
        try:
            control.sendall(f"error {type(err).__name__}: {err}\n".encode()[:4000])
        finally:
            os._exit(1)


def _receive(server: socket.socket) -> tuple[dict, list[int]] | None:
    fds = array.array("i")
    data, ancdata, _, _ = server.recvmsg(65536, socket.CMSG_SPACE(2 * fds.itemsize))
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


def serve(fd: int) -> None:
    server = socket.socket(fileno=fd)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # never outlives the grader
    if os.getppid() == 1:
        os._exit(0)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # kernels whose first parent exited are reaped here
    preload()
    leaked = sorted(m for m in sys.modules if m.startswith("vaetp.grading"))
    if leaked:  # every kernel would inherit the grader's package: refuse to serve
        server.sendall(f"refused: {', '.join(leaked)} imported".encode())
        os._exit(1)
    server.sendall(b"ready\n")
    while True:
        readable, _, _ = select.select([server], [], [], 1.0)
        while True:  # reap the kernels that ended
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        if not readable:
            continue
        received = _receive(server)
        if received is None:  # the grader is gone
            os._exit(0)
        request, fds = received
        if len(fds) != 2:
            for extra in fds:
                os.close(extra)
            continue
        control_fd, stderr_fd = fds
        pid = os.fork()
        if pid == 0:
            server.close()
            _child(request, socket.socket(fileno=control_fd), stderr_fd)
        os.close(control_fd)
        os.close(stderr_fd)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
