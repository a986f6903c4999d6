"""The instructor's commands (release, zip, import, autograde, feedback, grades, report,
example-class, formgrader, export-moodle) on this repository's course: `python tools/grade.py
--help`, or the Makefile's targets. They live in the package, `vaetp/grading/cli.py`."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("VAE_TP_REPOSITORY", str(ROOT))  # the course files are this checkout's
sys.path.insert(0, str(ROOT))  # the package of this checkout, even where it is not installed

from vaetp.grading.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
