"""The notebook's first code cell: TensorFlow starts without a red block of log lines."""

from __future__ import annotations

import os
import subprocess
import sys

from vaetp.quiet_start import kept_lines

# What TensorFlow 2.21 writes to stderr while it loads on a CPU machine (2026-11-30).
START_UP = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1796078264.324100   30235 port.cc:153] oneDNN custom operations are on. You "
    "may see slightly different numerical results due to floating-point round-off errors.\n"
    "I0000 00:00:1796078264.324400   30235 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.\n"
)


def test_the_start_up_lines_are_dropped_and_warnings_and_errors_kept():
    warning = "W0000 00:00:1796078264.5   30235 cpu_feature_guard.cc:1] This build lacks AVX2.\n"
    error = "E0000 00:00:1796078264.6   30235 dso_loader.cc:2] libfoo.so: cannot open file\n"
    other = "Illegal instruction: your CPU is too old\n"
    assert kept_lines(START_UP) == ""
    assert kept_lines(START_UP + warning + error + other) == warning + error + other


def test_a_kernel_importing_it_first_starts_tensorflow_without_a_word_on_stderr():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    code = "from vaetp import quiet_start\nimport keras\nprint(keras.backend.backend())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "tensorflow"
    assert done.stderr == ""
