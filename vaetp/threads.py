"""Threads per kernel from the CPU share a JupyterHub spawner gives each student.

A hub node runs many kernels at once. TensorFlow, XLA and the BLAS libraries each start as
many threads as the node has cores, in every kernel: 8 kernels on 2 cores then run 16 or more
compute threads that wait on one another at every barrier. Measured on a 2-core node with 8
kernels training (`make bench-concurrency`, docs/jupyterhub.md), giving each kernel as many
threads as its CPU share (here 1) keeps the machine busy and the epochs even.

Use it in `jupyterhub_config.py`, where the hub's Python can import `vaetp`:

    from vaetp.threads import spawner_environment
    c.Spawner.cpu_limit = 1                         # the share each student gets
    c.Spawner.environment.update(spawner_environment())

Each variable is a callable that JupyterHub calls with the spawner when a server starts, so it
follows `cpu_limit` (also when a profile or a group sets it). Kernels inherit the server's
environment, and TensorFlow, XLA and the BLAS libraries read these variables when they start.
Without a `cpu_limit`, the variables say "all the node's cores", which is the libraries' own
default.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

__all__ = ["VARIABLES", "spawner_environment", "thread_environment", "threads_for"]

#: What each variable controls. TF_NUM_INTRAOP_THREADS also sizes XLA's CPU thread pool.
VARIABLES = {
    "TF_NUM_INTRAOP_THREADS": "threads inside one TensorFlow/XLA operation",
    "TF_NUM_INTEROP_THREADS": "TensorFlow operations run at the same time",
    "OMP_NUM_THREADS": "OpenMP (oneDNN, NumPy's BLAS)",
    "OPENBLAS_NUM_THREADS": "OpenBLAS (NumPy)",
    "MKL_NUM_THREADS": "MKL, where installed",
}


def threads_for(cpu_limit: float | None, cores: int | None = None) -> int:
    """Threads for one kernel: its CPU share rounded down, at least 1, at most the node's cores.
    No share (None or 0): all the node's cores."""
    cores = cores or os.cpu_count() or 1
    if not cpu_limit or cpu_limit <= 0:
        return cores
    return max(1, min(cores, math.floor(cpu_limit)))


def thread_environment(cpu_limit: float | None, cores: int | None = None) -> dict[str, str]:
    """The environment variables that give a kernel `threads_for(cpu_limit, cores)` threads."""
    threads = str(threads_for(cpu_limit, cores))
    return {name: threads for name in VARIABLES}


def spawner_environment() -> dict[str, Callable[[object], str]]:
    """For `c.Spawner.environment.update(...)`: each value is computed from the spawner's
    `cpu_limit` when a user's server starts."""

    def variable(name: str) -> Callable[[object], str]:
        def value(spawner) -> str:
            return thread_environment(getattr(spawner, "cpu_limit", None))[name]

        return value

    return {name: variable(name) for name in VARIABLES}
