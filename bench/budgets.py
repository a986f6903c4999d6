"""The TP's time budgets, measured: the whole notebook in fast mode and in full, per cell.

    python bench/budgets.py [--repeat 3] [--full [--out build/run-full]]

Runs the student notebook headless with every solution %load'ed (tools/run_notebook.py), in
fast mode (`VAE_TP_FAST=1`, `--repeat` times, median) and, with `--full`, once for the TP's
full run. Prints each run's wall time against its budget (fast mode: 30 s; full run: 10 min
on a 2-core machine) and, for the full run, the cells that take the most time (the trainings).
Uses the MNIST of VAE_TP_MNIST, else ../shared/data/mnist.npz when present, else the bundled
sample (which changes the timings: say so when quoting them). Grading's budget (5 s per
submission) is `bench/grading.py`'s.
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


def run(fast: bool, out: Path) -> tuple[float, nbformat.NotebookNode]:
    env = dict(os.environ)
    env.pop("VAE_TP_FIGURES", None)
    if fast:
        env["VAE_TP_FAST"] = "1"
    else:
        env.pop("VAE_TP_FAST", None)
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "tools" / "run_notebook.py"),
                    str(ROOT / "notebooks" / "vae_tp.ipynb"), "--out", str(out)],
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
    args = parser.parse_args(argv)
    shared = ROOT.parent / "shared" / "data" / "mnist.npz"
    if not os.environ.get("VAE_TP_MNIST") and shared.exists():
        os.environ["VAE_TP_MNIST"] = str(shared)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vaetp-budgets-") as tmp:
        fast = [run(True, Path(tmp) / f"fast{k}")[0] for k in range(args.repeat)]
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
    if slow is not None:
        print("\nThe full run's longest cells:\n")
        print("| cell | s |")
        print("|---|---:|")
        for seconds, cell_id in cell_seconds(slow)[:8]:
            print(f"| `{cell_id}` | {seconds:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
