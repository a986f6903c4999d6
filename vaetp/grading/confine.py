"""Set a sandbox's resource bounds, then exec its command (bubblewrap).

    python -m vaetp.grading.confine --memory-mb N --processes N --file-mb N --cpu-seconds N \
        [--cgroup NAME] -- COMMAND...

rlimits apply to everyone: RLIMIT_AS (memory), RLIMIT_NPROC (processes and threads of this
user; root is exempt, hence the cgroup), RLIMIT_FSIZE, RLIMIT_CPU, and no core files. As root,
`--cgroup NAME` also creates NAME in the cgroup-v1 `pids` and `memory` hierarchies (where they
are mounted and writable), sets `pids.max` and `memory.limit_in_bytes`, and moves this
process into it before the exec: every process of the sandbox then counts there.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import sys
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _cgroup_dirs(name: str) -> list[Path]:
    return [CGROUP_ROOT / controller / name for controller in ("pids", "memory")]


def join_cgroup(name: str, processes: int, memory_mb: int, pid: int = 0) -> list[str]:
    """Create the cgroup(s), set their bounds, move process `pid` in (0: this process); return
    what was set."""
    done = []
    for folder in _cgroup_dirs(name):
        if not folder.parent.is_dir() or not os.access(folder.parent, os.W_OK):
            continue
        try:
            folder.mkdir(exist_ok=True)
            if folder.parent.name == "pids":
                (folder / "pids.max").write_text(str(processes))
            else:
                limit = str(memory_mb * 2**20)
                (folder / "memory.limit_in_bytes").write_text(limit)
                swap = folder / "memory.memsw.limit_in_bytes"
                if swap.exists():
                    swap.write_text(limit)
            (folder / "cgroup.procs").write_text(str(pid or os.getpid()))
            done.append(folder.parent.name)
        except OSError:
            continue
    return done


def remove_cgroup(name: str) -> None:
    """Kill what is left in the cgroup(s) and remove them (called by the grader afterwards)."""
    for folder in _cgroup_dirs(name):
        if not folder.is_dir():
            continue
        for _ in range(50):
            try:
                pids = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
            except OSError:
                break
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)
        try:
            folder.rmdir()
        except OSError:
            pass


def _tasks_of(uid: int) -> int:
    """Threads currently owned by `uid` (its real uid), from /proc."""
    count = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                count += int(fields["Threads"])
        except (OSError, KeyError, ValueError):
            continue
    return count


def set_rlimits(memory_mb: int, processes: int, file_mb: int, cpu_seconds: int,
                pid: int = 0) -> None:
    """Set the bounds of process `pid` (0: this process)."""
    def cap(which: int, value: int) -> None:
        soft, hard = resource.prlimit(pid, which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.prlimit(pid, which, (value, value))

    cap(resource.RLIMIT_AS, memory_mb * 2**20)
    # RLIMIT_NPROC counts every process and thread of the user: leave the user's own room.
    cap(resource.RLIMIT_NPROC, processes + (_tasks_of(os.getuid()) if os.geteuid() else 0))
    cap(resource.RLIMIT_FSIZE, file_mb * 2**20)
    cap(resource.RLIMIT_CPU, cpu_seconds)
    cap(resource.RLIMIT_CORE, 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--processes", type=int, required=True)
    parser.add_argument("--file-mb", type=int, required=True)
    parser.add_argument("--cpu-seconds", type=int, required=True)
    parser.add_argument("--cgroup")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command")
    if args.cgroup:
        join_cgroup(args.cgroup, args.processes, args.memory_mb)
    set_rlimits(args.memory_mb, args.processes, args.file_mb, args.cpu_seconds)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
