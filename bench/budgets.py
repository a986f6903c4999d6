"""The TP's time budgets, measured: the whole notebook in fast mode and in full, per cell.

    python bench/budgets.py [--repeat 3] [--full [--out build/run-full]] [--baseline REV]

Runs the student notebook headless with every solution %load'ed (tools/run_notebook.py;
in fast mode with --notebook-only: no figure files or HTML copy, as a student or nbval runs it), in
fast mode (`VAE_TP_FAST=1`, `--repeat` times, median) and, with `--full`, once for the TP's
full run. Prints each run's wall time against its budget (fast mode: 30 s; full run: 10 min
on a 2-core machine) and, for the full run, the cells that take the most time (the trainings).
Uses the MNIST of VAE_TP_MNIST, else ../shared/data/mnist.npz when present, else the bundled
sample (which changes the timings: say so when quoting them). Grading's budget (5 s per
submission) is `bench/grading.py`'s.

This VM's speed drifts by 20% or more from one hour to the next, so a change is judged with
--baseline REV: the fast-mode runs alternate between REV's notebook and package (a git
worktree) and this checkout's, in one run, and the table adds the ratio of their medians.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = {"fast": 30.0, "full": 600.0}


def run(fast: bool, out: Path, tree: Path = ROOT) -> tuple[float, nbformat.NotebookNode]:
    """One run of `tree`'s student notebook, with `tree`'s `vaetp` (this checkout's by default)."""
    env = dict(os.environ)
    env.pop("VAE_TP_FIGURES", None)
    env["PYTHONPATH"] = os.pathsep.join([str(tree)] + [p for p in [env.get("PYTHONPATH")] if p])
    if fast:
        env["VAE_TP_FAST"] = "1"
    else:
        env.pop("VAE_TP_FAST", None)
    start = time.perf_counter()
    # Fast mode is timed as a student or nbval runs it: the kernel's start and every cell, without
    # the figure files and the HTML copy that `make run` also writes. The full run keeps them.
    subprocess.run([sys.executable, str(ROOT / "tools" / "run_notebook.py"),
                    str(tree / "notebooks" / "vae_tp.ipynb"), "--out", str(out)]
                   + (["--notebook-only"] if fast else []),
                   env=env, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return seconds, nbformat.read(out / "vae_tp.ipynb", as_version=4)


def cell_seconds(nb: nbformat.NotebookNode) -> list[tuple[float, str]]:
    found = []
    for cell in nb.cells:
        timing = cell.get("metadata", {}).get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if start and end:
            seconds = (dt.datetime.fromisoformat(end.replace("Z", "+00:00"))
                       - dt.datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
            found.append((seconds, cell.get("id", "?")))
    return sorted(found, reverse=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="also time the full run (~8 min)")
    parser.add_argument("--out", type=Path, default=None,
                        help="keep the full run's executed notebook, HTML and figures here")
    parser.add_argument("--baseline", metavar="REV", default=None,
                        help="also time REV's notebook in fast mode, alternating with this one")
    args = parser.parse_args(argv)
    shared = ROOT.parent / "shared" / "data" / "mnist.npz"
    if not os.environ.get("VAE_TP_MNIST") and shared.exists():
        os.environ["VAE_TP_MNIST"] = str(shared)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vaetp-budgets-") as tmp:
        baseline = Path(tmp) / "baseline"
        if args.baseline:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(baseline),
                            args.baseline], check=True, capture_output=True)
        fast, before = [], []
        try:
            for k in range(args.repeat):
                if args.baseline:
                    before.append(run(True, Path(tmp) / f"before{k}", baseline)[0])
                fast.append(run(True, Path(tmp) / f"fast{k}")[0])
        finally:
            if args.baseline:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(baseline)], check=False, capture_output=True)
        if before:
            rows.append((f"fast mode at {args.baseline} (alternating)", statistics.median(before),
                         BUDGETS["fast"], f"median of {len(before)}: " + ", ".join(f"{s:.0f}" for s in before)))
        rows.append(("fast mode (VAE_TP_FAST=1)", statistics.median(fast), BUDGETS["fast"],
                     f"median of {len(fast)}: " + ", ".join(f"{s:.0f}" for s in fast)))
        slow = None
        if args.full:
            seconds, slow = run(False, args.out or Path(tmp) / "full")
            rows.append(("full run (the VAE's 50 epochs, five shorter trainings)", seconds, BUDGETS["full"], "one run"))
    print(f"\nThe whole notebook, every solution loaded; {os.cpu_count()} cores, "
          f"MNIST: {os.environ.get('VAE_TP_MNIST', 'sample')}\n")
    print("| run | wall time | budget | within | runs (s) |")
    print("|---|---:|---:|:---:|---|")
    for name, seconds, budget, note in rows:
        print(f"| {name} | {seconds:.0f} s | {budget:.0f} s | {'yes' if seconds <= budget else 'NO'} | {note} |")
    if before:
        ratio = statistics.median(fast) / statistics.median(before)
        pairs = ", ".join(f"{now / then:.2f}" for now, then in zip(fast, before))
        print(f"\nThis checkout / {args.baseline}: {ratio:.2f} (ratio of the medians; pair by pair: {pairs})")
    if slow is not None:
        print("\nThe full run's longest cells:\n")
        print("| cell | s |")
        print("|---|---:|")
        for seconds, cell_id in cell_seconds(slow)[:8]:
            print(f"| `{cell_id}` | {seconds:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
