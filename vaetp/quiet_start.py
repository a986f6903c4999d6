"""Import TensorFlow without its start-up log lines: `from vaetp import quiet_start`, before Keras.

While TensorFlow loads, its C++ libraries write a few informational lines to the process's
standard error, whatever `TF_CPP_MIN_LOG_LEVEL` says, because they are logged before its
logging is set up (abseil's "WARNING: All log messages before absl::InitializeLog() is called
are written to STDERR", then lines such as "I0000 ... oneDNN custom operations are on" or
"Could not find cuda drivers"; abseil-cpp pull requests 1718 and 1957). Jupyter shows them as a
red block under the first code cell, which students read as an error.

Importing this module imports TensorFlow once, with file descriptor 2 sent to a file
(`$TMPDIR/vaetp-tensorflow-import-*.log`), then writes back to `sys.stderr` every line but those
informational ones: a warning or an error printed while TensorFlow loads still shows. If the
import kills the process (an illegal instruction, a crash in a library), the file stays where it
is, with what TensorFlow printed. If TensorFlow is already imported (a warm grading kernel, a
second run of the cell) the module does nothing but the settings below.

It also sets `TF_CPP_MIN_LOG_LEVEL=2` unless set (TensorFlow's C++ errors show, its
informational lines and warnings do not), and TensorFlow's Python logger to errors: the later
sections train new models in a loop, and TensorFlow's "retracing" warnings about that are
expected there, not a student's mistake.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile

#: The start-up lines dropped: abseil's notice, and informational (I...) log lines.
NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
                   r"|I\d{4} [\d:.]+ +\d+ \S+:\d+\] )")


def kept_lines(text: str) -> str:
    """`text` without the start-up noise (NOISE)."""
    return "".join(line for line in text.splitlines(True) if not NOISE.match(line))


def import_tensorflow() -> None:
    """Import TensorFlow with its start-up lines filtered out of standard error."""
    if "tensorflow" in sys.modules:
        return
    try:
        sys.stderr.flush()
        log = tempfile.NamedTemporaryFile(prefix="vaetp-tensorflow-import-", suffix=".log",
                                          delete=False)
        saved = os.dup(2)
    except OSError:  # no temporary folder, no descriptor: import as usual
        import tensorflow  # noqa: F401
        return
    with log:
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            rest = kept_lines(log.read().decode("utf-8", errors="replace"))
            if rest:
                sys.stderr.write(rest)
                sys.stderr.flush()
    os.unlink(log.name)


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import_tensorflow()
logging.getLogger("tensorflow").setLevel(logging.ERROR)
