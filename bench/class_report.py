"""The class report's row of `make bench`: seconds for `make report` on a class of N students.

    python bench/class_report.py [--students 300] [--repeat 3]

Grades three students of the example class through the sandbox (`tools/grade.py release
--no-solutions`, `example-class`, `autograde`), then makes a class of N from them: each new
student is a copy of one of the three (their submitted, autograded and feedback folders, and in
the gradebook the same scores and comments, through nbgrader's API), as if N students had handed
in those three notebooks. Then `grades` (not timed), and `tools/grade.py report` (what `make
report` runs) is timed --repeat times, each a fresh process. Prints the median and every run.
Uses the MNIST file of VAE_TP_MNIST when set, else the bundled sample.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT, NOTEBOOK_ID, COURSE_ID = "vae", "vae_tp", "vae-tp"


def grade(course: Path, *args: str) -> float:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT)
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "tools" / "grade.py"), "--course", str(course),
                    *args], env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def replicate(course: Path, templates: list[str], students: int) -> list[str]:
    """Students copied from `templates`, in their folders and in the gradebook."""
    from nbgrader.api import Gradebook

    # nbgrader's own API warns about its autoflush while it adds a submission: not ours
    warnings.filterwarnings("ignore", message="Object of type")
    made = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", COURSE_ID) as gb:
        for i in range(students - len(templates)):
            source = templates[i % len(templates)]
            name = f"{source}-{i:04d}"
            for step in ("submitted", "autograded", "feedback"):
                if (course / step / source).is_dir():
                    shutil.copytree(course / step / source, course / step / name)
            gb.add_student(name, first_name=name, last_name="Copy")
            original = gb.find_submission_notebook(NOTEBOOK_ID, ASSIGNMENT, source)
            gb.add_submission(ASSIGNMENT, name,
                              timestamp=gb.find_submission(ASSIGNMENT, source).timestamp)
            copy = gb.find_submission_notebook(NOTEBOOK_ID, ASSIGNMENT, name)
            grades = {g.name: g for g in original.grades}
            for g in copy.grades:
                g.auto_score = grades[g.name].auto_score
                g.manual_score = grades[g.name].manual_score
                g.needs_manual_grade = grades[g.name].needs_manual_grade
            comments = {c.name: c for c in original.comments}
            for c in copy.comments:
                c.auto_comment = comments[c.name].auto_comment
                c.manual_comment = comments[c.name].manual_comment
            made.append(name)
        gb.db.commit()
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="vaetp-bench-report-"))
    try:
        course = tmp / "course"
        grade(course, "release", "--no-solutions")
        grade(course, "example-class", "--out", str(tmp / "class"))
        templates = sorted(p.stem for p in (tmp / "class").glob("*.ipynb"))
        grade(course, "autograde", "--submissions", str(tmp / "class"))
        replicate(course, templates, args.students)
        grade(course, "grades")
        runs = [grade(course, "report") for _ in range(args.repeat)]
        rows = sum(1 for _ in (course / "class_report.csv").open()) - 1
        print(f"| students | `make report` (median of {len(runs)}, s) | runs (s) | CSV rows |")
        print("| --- | --- | --- | --- |")
        print(f"| {args.students} | {statistics.median(runs):.1f} | "
              f"{', '.join(f'{r:.1f}' for r in runs)} | {rows} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
