"""Threads per kernel on a shared hub node: what the spawner's CPU share turns into.

The end-to-end check, a kernel started through a real JupyterHub with `c.Spawner.cpu_limit`, is
tests/e2e/test_hub_roundtrip.py::test_a_students_kernel_gets_threads_for_its_cpu_share."""

from __future__ import annotations

import types

import pytest

from vaetp.threads import VARIABLES, spawner_environment, thread_environment, threads_for


@pytest.mark.parametrize(("cpu_limit", "cores", "threads"), [
    (1, 2, 1),        # a one-core share on a 2-core node
    (0.25, 2, 1),     # 8 students on 2 cores: still one thread, never zero
    (2.5, 8, 2),      # a fractional share rounds down
    (16, 8, 8),       # never more threads than the node has cores
    (None, 4, 4),     # no share: the libraries' default, one per core
    (0, 4, 4),
])
def test_a_cpu_share_becomes_a_thread_count(cpu_limit, cores, threads):
    assert threads_for(cpu_limit, cores) == threads


def test_every_library_gets_the_same_count():
    env = thread_environment(1, cores=2)
    assert set(env) == set(VARIABLES)
    assert set(env.values()) == {"1"}
    assert "TF_NUM_INTRAOP_THREADS" in env and "OMP_NUM_THREADS" in env


def test_the_spawner_environment_follows_each_spawners_cpu_limit():
    """JupyterHub calls each callable with the spawner: a profile with 2 cores gets 2 threads."""
    environment = spawner_environment()
    assert set(environment) == set(VARIABLES)
    small, large = types.SimpleNamespace(cpu_limit=1), types.SimpleNamespace(cpu_limit=2)
    for name, value in environment.items():
        assert callable(value)
        assert value(small) == "1"
        assert value(large) == str(threads_for(2))
