"""The grading row of `make bench`: seconds per submission, sandboxed and not, on this machine.

    python bench/grading.py [--students N] [--jobs 1 2]

Builds a scratch course (release without solutions), a class of N submissions that each
hold a correct decoder written by hand (the common case), and times `tools/grade.py autograde`
on it: with the bubblewrap sandbox and warm kernel starts (the default), with the sandbox and
every kernel started inside bubblewrap (`VAE_TP_ZYGOTE=off`, the grader before warm starts),
and with `--no-sandbox`, for each JOBS value, alternating the variants in one run. `--baseline REV` also times the grader of an earlier
revision (default d0deabe, before the sandbox: every submission trained for 2 epochs in an
unsandboxed kernel) on the same class, from a git worktree of that revision. Prints a Markdown table with the wall-clock seconds per
submission and the projected time for a class of 300. Uses the MNIST file of VAE_TP_MNIST
when set (as an instructor would), else the bundled sample.
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
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
from vaetp.grading import example_class  # noqa: E402
from vaetp.grading.release import solution_files  # noqa: E402


def grade(course: Path, *args: str, sandbox: bool | str = True, root: Path = ROOT) -> float:
    env = dict(os.environ)
    if sandbox == "cold":
        env["VAE_TP_ZYGOTE"] = "off"
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if root != ROOT:  # an earlier revision: its own vaetp first on the path
        env["PYTHONPATH"] = str(root)
    command = [sys.executable, str(root / "tools" / "grade.py"), "--course", str(course), *args]
    if not sandbox:
        command.append("--no-sandbox")
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=8)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--sandboxed-only", action="store_true",
                        help="time the sandboxed grader only (not also --no-sandbox)")
    parser.add_argument("--baseline", nargs="?", const="d0deabe", default=None,
                        help="also time the grader of this earlier revision (default d0deabe)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="vaetp-bench-grading-"))
    try:
        template = tmp / "template"
        subprocess.run([sys.executable, str(ROOT / "tools" / "grade.py"), "--course",
                        str(template), "release", "--no-solutions"], check=True,
                       capture_output=True)
        release = nbformat.read(template / "release" / "vae" / "vae_tp.ipynb", as_version=4)
        master = nbformat.read(ROOT / "source" / "vae" / "vae_tp.ipynb", as_version=4)
        # alice of the example class: every exercise %load'ed, full marks
        hand = example_class.build(release, solution_files(master))[0]
        inbox = tmp / "inbox"
        inbox.mkdir()
        for k in range(args.students):
            nbformat.write(hand.notebook, inbox / f"student{k:03d}.ipynb")
        results: dict[tuple[bool | str, int], list[float]] = {}
        for _ in range(args.repeat):
            for jobs in args.jobs:
                for sandbox in (True, "cold") if args.sandboxed_only else (True, "cold", False):
                    course = tmp / f"course-{jobs}-{sandbox}"
                    shutil.rmtree(course, ignore_errors=True)
                    shutil.copytree(template, course)
                    seconds = grade(course, "autograde", "--submissions", str(inbox),
                                    "--jobs", str(jobs), sandbox=sandbox)
                    results.setdefault((sandbox, jobs), []).append(seconds / args.students)
        if args.baseline:
            old = tmp / "baseline"
            subprocess.run(["git", "worktree", "add", "--detach", str(old), args.baseline],
                           cwd=ROOT, check=True, capture_output=True)
            try:
                course = tmp / "course-baseline"
                subprocess.run([sys.executable, str(old / "tools" / "grade.py"), "--course",
                                str(course), "release", "--no-solutions"], check=True,
                               capture_output=True, env={**os.environ, "PYTHONPATH": str(old)})
                # the same decoder, in that revision's own release (its graded cells differ)
                old_release = nbformat.read(course / "release" / "vae" / "vae_tp.ipynb", as_version=4)
                code = next(c for c in hand.notebook.cells if c.get("id") == "decoder-exercise").source
                next(c for c in old_release.cells if c.get("id") == "decoder-exercise").source = code
                old_inbox = tmp / "inbox-baseline"
                old_inbox.mkdir()
                for k in range(args.students):
                    nbformat.write(old_release, old_inbox / f"student{k:03d}.ipynb")
                for jobs in args.jobs:
                    shutil.rmtree(course / "submitted", ignore_errors=True)
                    shutil.rmtree(course / "autograded", ignore_errors=True)
                    (course / "gradebook.db").unlink(missing_ok=True)
                    subprocess.run([sys.executable, str(old / "tools" / "grade.py"), "--course",
                                    str(course), "release", "--no-solutions"], check=True,
                                   capture_output=True, env={**os.environ, "PYTHONPATH": str(old)})
                    seconds = grade(course, "autograde", "--submissions", str(old_inbox),
                                    "--jobs", str(jobs), sandbox=True, root=old)
                    results[("baseline", jobs)] = [seconds / args.students]
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT,
                               capture_output=True)
        print(f"\nGrading: {args.students} submissions with a correct decoder, "
              f"MNIST: {os.environ.get('VAE_TP_MNIST', 'sample')}, {os.cpu_count()} cores\n")
        print("| grading | JOBS | s per submission (median) | a class of 300 |")
        print("|---|---:|---:|---:|")
        names = {True: "sandboxed (bubblewrap), warm kernel starts",
                 "cold": "sandboxed, kernels started inside bubblewrap (VAE_TP_ZYGOTE=off)",
                 False: "unsandboxed (--no-sandbox)",
                 "baseline": f"before the sandbox ({args.baseline}, unsandboxed, trains 2 epochs)"}
        order = {True: 0, "cold": 1, False: 2, "baseline": 3}
        for (variant, jobs), values in sorted(results.items(), key=lambda kv: (kv[0][1], order[kv[0][0]])):
            per = statistics.median(values)
            print(f"| {names[variant]} | {jobs} | {per:.1f} | {300 * per / 60:.0f} min |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
