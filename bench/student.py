"""What one student costs a hub: the whole TP in one kernel, as a student runs it.

    python bench/student.py                      # `make bench-student`: N = 1, 2, 4, 8 at once
    python bench/student.py --students 1 2       # some N only
    python bench/student.py --fast               # fast mode (VAE_TP_FAST=1), for a quick try
    python bench/student.py --memory-limit-mb M  # each kernel in a cgroup of M MB (as a spawner)
    python bench/student.py --students 1 --record images/full_run   # the README's run

With --record DIR (one student alone, full mode), the run is also the TP's reference run: the
figures already in DIR (the README's) are replaced by this run's, the executed notebook and
every figure go to build/bench/student-1-0/, and
DIR/run.json keeps the measurements with the text each numbered cell printed (the training log,
the tables, the ROC AUCs). The numbers quoted in the notebook's prose, the README and the docs
are checked against that file (tests/test_numbers.py), so that they all come from this one run.

One *run* is the student notebook with every exercise's `%load` line run (the solutions, as a
stuck student would), executed cell by cell in one fresh python3 kernel, in full mode unless
--fast. While it runs, the kernel process is sampled every 0.2 s from /proc: resident memory
(RSS) and private memory (Private_Clean + Private_Dirty of smaps_rollup: what is the kernel's
own, not TensorFlow's shared libraries). Reported per run: wall time, the kernel's CPU seconds,
its peak RSS (the kernel's high-water mark, VmHWM) and peak private memory; and per section of
the notebook (its "## N." headings): wall time, CPU seconds and peak RSS while that section ran;
and per code cell (run.json's "cells", and a table of the cells during which RSS rose 20 MB or
more): its RSS before, its peak while it ran, and its RSS after. A run that stops early reports
the cell and the kernel's exception in one line (a missing MNIST file, for example).

For each N, N runs start at once (one process each, alone in its kernel) and the table gives
the median over the N runs, and the slowest. With --memory-limit-mb, each kernel is moved into
a cgroup-v1 memory cgroup of that size (needs root and /sys/fs/cgroup/memory, as a spawner's
limit), and a run killed by it is reported as such. Results: build/bench/student.json, and
Markdown tables on stdout (docs/performance.md, "One student's whole TP"). Uses VAE_TP_MNIST
when set (the full MNIST, as a hub would), else Keras' cache or download.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "vae_tp.ipynb"
TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE = 0.2
CGROUP = Path("/sys/fs/cgroup/memory")


def sections(nb: nbformat.NotebookNode) -> list[str]:
    """The section each cell belongs to: the last '## N. Title' heading above it."""
    found, current = [], "0. Title"
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^## (\d+)\. (.+)$", cell.source, re.M)
            if match:
                current = f"{match.group(1)}. {match.group(2)[:40]}"
        found.append(current)
    return found


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / TICKS


def memory(pid: int) -> tuple[int, int, int]:
    """(RSS, peak RSS, private) in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) * 1024
    hwm = int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) * 1024
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    private = sum(int(re.search(rf"{k}:\s+(\d+)", rollup).group(1)) * 1024
                  for k in ("Private_Clean", "Private_Dirty"))
    return rss, hwm, private


class Sampler(threading.Thread):
    """Peak RSS and private memory of one process, since the last `reset`."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.running = pid, True
        self.peak_rss = self.peak_private = self.section_rss = 0

    def run(self) -> None:
        while self.running:
            try:
                rss, _, private = memory(self.pid)
            except (OSError, AttributeError):
                return
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_private = max(self.peak_private, private)
            self.section_rss = max(self.section_rss, rss)
            time.sleep(SAMPLE)


def limit_memory(pid: int, megabytes: int, tag: str) -> Path:
    group = CGROUP / f"vaetp-bench-student-{tag}"
    group.mkdir(exist_ok=True)
    (group / "memory.limit_in_bytes").write_text(str(megabytes * 2**20))
    (group / "cgroup.procs").write_text(str(pid))
    return group


#: The cells whose printed text the prose quotes (run.json, "printed").
QUOTED_CELLS = ("training-plan", "fit", "latent-scatter", "beta-experiment", "anomaly-scores",
                "anomaly-per-digit", "conv-training", "test-set")


def printed(nb: nbformat.NotebookNode) -> dict[str, str]:
    """What each of QUOTED_CELLS printed (stdout), by cell id."""
    found = {}
    for cell in nb.cells:
        if cell.get("id") in QUOTED_CELLS:
            found[cell.id] = "".join(o.get("text", "") for o in cell.get("outputs", [])
                                     if o.get("output_type") == "stream" and o.get("name") == "stdout")
    return found


def numbers(printed_text: dict[str, str]) -> dict:
    """The numbers the prose quotes, read from what the cells printed (the same digits)."""
    found: dict = {}
    fit = printed_text.get("fit", "")
    epochs = [dict((k, float(v)) for k, v in re.findall(r"(\w+): ([\d.]+)", line))
              for line in fit.splitlines() if "val_loss" in line]
    if epochs:
        found["epochs"] = len(epochs)
        found["last_epoch"] = epochs[-1]
        found["val_loss_by_epoch"] = [e["val_loss"] for e in epochs]
    scatter = printed_text.get("latent-scatter", "")
    match = re.search(r"square: (\d+)%", scatter)
    if match:
        found["inside_grid_percent"] = int(match.group(1))
        found["inside_grid_percent_by_digit"] = {
            int(d): int(v) for d, v in re.findall(r"(\d): (\d+)%", scatter.split("by digit:")[1])}
    found["beta"] = {row[0]: [float(v) for v in row[1:]] for row in (
        re.findall(r"^ *([\d.]+) +([\d.]+) +([\d.]+) +([\d.]+)$",
                   printed_text.get("beta-experiment", ""), re.M))}
    found["roc_auc"] = {name: float(v) for name, v in re.findall(
        r"ROC AUC, (.+?) against .+?: ([\d.]+)", printed_text.get("anomaly-scores", ""))}
    found["digits"] = {int(d): {"images": int(n.replace(",", "")), "mean_score": float(m)}
                       for d, n, m in re.findall(r"^ +(\d) +([\d,]+) +([\d.]+)",
                                                 printed_text.get("anomaly-per-digit", ""), re.M)}
    conv = printed_text.get("conv-training", "")
    match = re.search(r"Convolutional VAE, ([\d,]+) parameters: validation loss ([\d.]+)", conv)
    if match:
        found["conv"] = {"parameters": int(match.group(1).replace(",", "")),
                         "val_loss": float(match.group(2))}
    match = re.search(r"MLP VAE, ([\d,]+) parameters", conv)
    if match:
        found["mlp_parameters"] = int(match.group(1).replace(",", ""))
    test = printed_text.get("test-set", "")
    match = re.search(r"MLP VAE: +([\d.]+).*\n.*convolutional VAE: +([\d.]+).*\n.*: ([\d.]+)", test)
    if match:
        found["test"] = {"mlp_loss": float(match.group(1)), "conv_loss": float(match.group(2)),
                         "roc_auc": float(match.group(3))}
    return found


def one_run(fast: bool, memory_limit_mb: int | None, tag: str, record: Path | None = None) -> dict:
    """The whole notebook in one kernel (this process drives it); the measurements."""
    sys.path.insert(0, str(ROOT / "tools"))
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError
    from run_notebook import load_solutions

    nb = load_solutions(nbformat.read(NOTEBOOK, as_version=4), NOTEBOOK.parent)
    where = sections(nb)
    work = ROOT / "build" / "bench" / f"student-{tag}"
    work.mkdir(parents=True, exist_ok=True)
    os.environ["MPLBACKEND"] = "Agg"
    os.environ.pop("VAE_TP_FIGURES", None)
    if record is not None:
        os.environ["VAE_TP_FIGURES"] = str(work / "figures")
    os.environ.pop("VAE_TP_FAST", None)
    if fast:
        os.environ["VAE_TP_FAST"] = "1"
    client = NotebookClient(nb, timeout=3600, kernel_name="python3",
                            resources={"metadata": {"path": str(work)}})
    result: dict = {"sections": {}, "cells": [], "killed": None}
    group = None
    started = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        if memory_limit_mb:
            group = limit_memory(pid, memory_limit_mb, tag)
        sampler = Sampler(pid)
        sampler.start()
        try:
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                section = result["sections"].setdefault(
                    where[index], {"seconds": 0.0, "cpu_seconds": 0.0, "peak_rss_mb": 0.0})
                rss_before = memory(pid)[0]
                t0, c0 = time.perf_counter(), cpu_seconds(pid)
                sampler.section_rss = rss_before
                client.execute_cell(cell, index)
                seconds, cpu = time.perf_counter() - t0, cpu_seconds(pid) - c0
                rss_after = memory(pid)[0]  # a short cell may fall between two samples
                peak = max(sampler.section_rss, rss_after)
                section["seconds"] += seconds
                section["cpu_seconds"] += cpu
                section["peak_rss_mb"] = max(section["peak_rss_mb"], peak / 2**20)
                result["cells"].append({
                    "id": cell.get("id"), "section": where[index], "seconds": seconds,
                    "cpu_seconds": cpu, "rss_before_mb": rss_before / 2**20,
                    "peak_rss_mb": peak / 2**20, "rss_after_mb": rss_after / 2**20})
            result["cpu_seconds"] = cpu_seconds(pid)
            result["peak_rss_mb"] = memory(pid)[1] / 2**20
        except (DeadKernelError, CellExecutionError, OSError) as err:
            # A cell's error carries the kernel's exception (a missing MNIST file, for example):
            # the reason, kept for the report in one line.
            reason = " ".join(f"{getattr(err, 'ename', '')}: {getattr(err, 'evalue', '')}".split())
            reason = reason[:400] if getattr(err, "ename", None) else ""
            result["killed"] = (f"{type(err).__name__} in section {where[index]}, cell "
                                f"{cell.get('id')}" + (f": {reason}" if reason else ""))
            result.setdefault("cpu_seconds", None)
            result.setdefault("peak_rss_mb", sampler.peak_rss / 2**20)
        finally:
            sampler.running = False
    result["seconds"] = time.perf_counter() - started
    result["peak_private_mb"] = sampler.peak_private / 2**20
    if record is not None:
        nbformat.write(nb, work / NOTEBOOK.name)
        result["printed"] = printed(nb)
    if group is not None:
        result["memory_limit_mb"] = memory_limit_mb
        result["cgroup_failcnt"] = int((group / "memory.failcnt").read_text())
        try:
            group.rmdir()
        except OSError:
            pass
    return result


def at_once(n: int, fast: bool, memory_limit_mb: int | None, record: Path | None = None) -> list[dict]:
    command = [sys.executable, __file__, "--one"] + (["--fast"] if fast else [])
    if record is not None:
        command += ["--record", str(record)]
    if memory_limit_mb:
        command += ["--memory-limit-mb", str(memory_limit_mb)]
    procs = [subprocess.Popen(command + ["--tag", f"{n}-{i}"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for i in range(n)]
    return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def table(results: dict[int, list[dict]]) -> str:
    lines = ["| students at once | wall (s), median / slowest | kernel CPU-s, median | "
             "peak RSS (GiB), max | peak private (GiB), max | killed |",
             "| --- | --- | --- | --- | --- | --- |"]
    for n, runs in results.items():
        wall = [r["seconds"] for r in runs]
        cpu = [r["cpu_seconds"] for r in runs if r.get("cpu_seconds") is not None]
        lines.append(f"| {n} | {statistics.median(wall):.0f} / {max(wall):.0f} | "
                     f"{f'{statistics.median(cpu):.0f}' if cpu else '-'} | "
                     f"{max(r['peak_rss_mb'] for r in runs) / 1024:.2f} | "
                     f"{max(r['peak_private_mb'] for r in runs) / 1024:.2f} | "
                     f"{sum(1 for r in runs if r['killed'])} |")
    stopped = [f"- {n} at once, run {i + 1}: {r['killed']}" for n, runs in results.items()
               for i, r in enumerate(runs) if r["killed"]]
    if stopped:
        lines += ["", "Runs that did not reach the end:", *stopped]
    first = next(iter(results.values()))[0]
    lines += ["", "| section (the first run) | wall (s) | kernel CPU-s | peak RSS (GiB) |",
              "| --- | --- | --- | --- |"]
    for name, s in first["sections"].items():
        lines.append(f"| {name} | {s['seconds']:.1f} | {s['cpu_seconds']:.1f} | "
                     f"{s['peak_rss_mb'] / 1024:.2f} |")
    return "\n".join(lines + ["", cell_table(first)])


def cell_table(run: dict, threshold_mb: float = 20.0) -> str:
    """The cells during which the kernel's resident memory rose by `threshold_mb` or more: its
    RSS before the cell, its peak while the cell ran and its RSS after (MB)."""
    lines = [f"| cell (the first run; RSS rising {threshold_mb:.0f} MB or more) | section | "
             "wall (s) | RSS before (MB) | peak (MB) | after (MB) | kept (MB) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for c in run.get("cells", []):
        if c["peak_rss_mb"] - c["rss_before_mb"] >= threshold_mb:
            lines.append(f"| {c['id']} | {c['section'].split('.')[0]} | {c['seconds']:.1f} | "
                         f"{c['rss_before_mb']:.0f} | {c['peak_rss_mb']:.0f} | "
                         f"{c['rss_after_mb']:.0f} | {c['rss_after_mb'] - c['rss_before_mb']:+.0f} |")
    return "\n".join(lines)


def write_record(folder: Path, run: dict) -> None:
    """FOLDER/run.json: the reference run's measurements and printed text."""
    import platform

    import keras
    import tensorflow as tf

    record = {
        "what": "the student notebook, every solution %load'ed, full mode, one kernel alone "
                "(python bench/student.py --students 1 --record " + str(folder) + ")",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.python_version()}",
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "mnist": os.environ.get("VAE_TP_MNIST", "(Keras cache or download)"),
        **{k: run[k] for k in ("seconds", "cpu_seconds", "peak_rss_mb", "peak_private_mb",
                               "killed", "sections", "cells", "printed")},
        "numbers": numbers(run["printed"]),
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    drawn = ROOT / "build" / "bench" / "student-1-0" / "figures"
    for figure in sorted(folder.glob("*.png")):  # the figures the README shows, from this run
        shutil.copyfile(drawn / figure.name, figure)
    print(f"reference run recorded in {folder / 'run.json'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--memory-limit-mb", type=int)
    parser.add_argument("--record", type=Path, help="one student, full mode: the reference run "
                        "(figures and run.json into this folder)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="1-0", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.record is not None and not args.one and (args.fast or args.students != [1]
                                                     or args.memory_limit_mb):
        parser.error("--record is for one student alone, full mode: --students 1, no --fast")
    if args.one:
        print(json.dumps(one_run(args.fast, args.memory_limit_mb, args.tag, args.record)))
        return 0
    results = {n: at_once(n, args.fast, args.memory_limit_mb, args.record) for n in args.students}
    if args.record is not None:
        write_record(args.record, results[1][0])
    out = ROOT / "build" / "bench" / "student.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"fast": args.fast, "memory_limit_mb": args.memory_limit_mb,
                               "results": results}, indent=1))
    print(f"The whole TP per student ({'fast mode' if args.fast else 'full mode'}"
          f"{f', each kernel limited to {args.memory_limit_mb} MB' if args.memory_limit_mb else ''}):")
    print(table(results))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
