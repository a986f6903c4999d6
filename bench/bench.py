"""Benchmark of the TP's training, side by side with what a user would pick instead.

    python bench/bench.py                 # `make bench`: the two per-epoch tables and the extras
    python bench/bench.py --full          # `make bench-full`: also the 50-epoch validation loss

Peers, each in its own process (bench/worker.py), all started before any is timed:

- notebook (TF / JAX): the master notebook's own cells up to `compile`, then its `fit` cell,
  on the TensorFlow and the JAX backends of Keras 3;
- Keras plain (TF / JAX): the same model in a plain Keras fit on NumPy arrays, without the
  course's settings;
- PyTorch eager: the same model, loss and optimizer (bench/torch_vae.py);
- GEMM bound: the model's FLOPs per epoch divided by the sgemm rate measured in the same run,
  and the floor at the model's own shapes (the same GEMMs at batch 100, plus Adam's memory
  traffic at the measured copy bandwidth).

Two tables, every peer at the same core count: "one core" (each process pinned to core 0 with
taskset, one thread) and "all cores" (no pinning, each framework's default threads). The GEMM
bound is measured under the same layout. The peers run their epochs in turn (epoch k of every
peer, then epoch k+1), so each has the machine, or its core, while it is timed. Reported per
peer: the median wall time per epoch after the warm-up (no epoch is filtered out), the epochs
longer than twice that median ("stalled"), the process CPU time and the CPU time other
processes used meanwhile. The tables are printed and written to build/bench/bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from vaetp.threads import thread_environment  # noqa: E402

OUT = ROOT / "build" / "bench"
WORKER = ROOT / "bench" / "worker.py"
COURSE_PYTHON = ROOT / ".venv" / "bin" / "python"
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
MNIST_ENV = "VAE_TP_MNIST"


# --------------------------------------------------------------------------------------------
# machine


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal
    return total - idle, total


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "platform": platform.platform()}


# --------------------------------------------------------------------------------------------
# FLOPs


def gemm_flops(dense: list[list[int]], train_images: int, val_images: int,
               input_dim: int = 784) -> dict:
    """FLOPs of the matrix products one epoch needs: per training image, forward (2mn per
    Dense layer of m inputs and n units), weight gradient (2mn) and input gradient (2mn, but
    none for the first layer, whose input is the data); per validation image, forward only.
    Biases, activations, the loss and Adam are not counted (they are not GEMMs)."""
    macs = sum(m * n for m, n in dense)
    first = sum(m * n for m, n in dense if m == input_dim)
    train = train_images * (6 * macs - 2 * first)  # first: the layer(s) fed by the data
    val = val_images * 2 * macs
    return {"train": train, "validation": val, "total": train + val,
            "issue_convention": 6 * macs * train_images + val}


# --------------------------------------------------------------------------------------------
# the peers


class Peer:
    def __init__(self, name: str, kind: str, python: Path, env: dict, epochs: int, log: Path,
                 prefix: list[str] | None = None):
        self.name, self.kind, self.epochs = name, kind, epochs
        self.results: list[dict] = []
        self.error: str | None = None
        self.info: dict = {}
        self.log_path = log
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            [*(prefix or []), str(python), str(WORKER), kind, "--epochs", str(epochs)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            env=env, cwd=ROOT)

    def read(self) -> dict | None:
        line = self.proc.stdout.readline()
        if not line:
            self.error = f"worker exited (code {self.proc.poll()}); see {self.log_path}"
            return None
        return json.loads(line)

    def ready(self) -> bool:
        message = self.read()
        if message is not None:
            self.info = message.get("info", {})
        return message is not None

    def epoch(self) -> dict | None:
        busy0, total0 = cpu_jiffies()
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        result = self.read()
        busy1, total1 = cpu_jiffies()
        if result is None:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        # CPU seconds that other processes used during this epoch (all cores).
        result["others_cpu"] = max(0.0, (busy1 - busy0) / ticks - result["cpu"])
        result["load"] = load()[0]
        self.results.append(result)
        return result

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=60)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
        self.log.close()


def peer_specs(args) -> list[tuple[str, str, Path, str]]:
    """(name, worker kind, python, KERAS_BACKEND) of each peer this run can start."""
    specs = [("notebook (TF)", "notebook", COURSE_PYTHON, "tensorflow"),
             ("Keras plain (TF)", "plain", COURSE_PYTHON, "tensorflow")]
    if BENCH_PYTHON.exists():
        specs += [("notebook (JAX)", "notebook", BENCH_PYTHON, "jax"),
                  ("Keras plain (JAX)", "plain", BENCH_PYTHON, "jax"),
                  ("PyTorch eager", "torch", BENCH_PYTHON, "")]
    for variant in args.variant or []:  # NAME:BACKEND={"jit_compile": ...}
        label, settings = variant.split("=", 1)
        name, backend = label.split(":")
        python = COURSE_PYTHON if backend == "tensorflow" else BENCH_PYTHON
        specs.append((f"{name} ({backend})", "notebook", python, backend, json.loads(settings)))
    specs.append(("GEMM bound", "gemm", COURSE_PYTHON, ""))
    if args.only:
        specs = [s for s in specs if s[0] in args.only or s[1] == "gemm"]
    return [s if len(s) == 5 else (*s, None) for s in specs]


#: The two tables: every peer pinned to one core with one thread, and every peer on all cores
#: with its framework's default threads. Peers run their epochs in turn, so each has the
#: machine (or its core) to itself while it is timed.
LAYOUTS = {
    "one core": {"pin": "0", "threads": 1},
    "all cores": {"pin": None, "threads": 0},
}
THREADS = 1  # of the layout being run


def thread_env(env: dict, threads: int) -> dict:
    """Caps every framework and BLAS of a peer at `threads` threads (0: their defaults). JAX has
    no thread-count setting (XLA ignores an `intra_op_parallelism_threads` flag): the one-core
    table pins every peer to one core instead, which holds for all of them."""
    if threads:
        env.update(thread_environment(threads))  # the variables the course sets per hub kernel
        if threads == 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    return env


def worker_env(backend: str) -> dict:
    env = thread_env(dict(os.environ), THREADS)
    env.pop("VAE_TP_FAST", None)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["PYTHONUNBUFFERED"] = "1"
    if backend:
        env["KERAS_BACKEND"] = backend
    return env


def busy_cores(seconds: float) -> float:
    """Cores busy (all processes) over the next `seconds`."""
    busy0, total0 = cpu_jiffies()
    time.sleep(seconds)
    busy1, total1 = cpu_jiffies()
    return (busy1 - busy0) / max(1, total1 - total0) * (os.cpu_count() or 1)


def wait_until_quiet(limit_s: float, threshold: float = 0.3) -> float:
    """Waits (at most `limit_s`) until other processes use less than `threshold` cores;
    returns the seconds waited. Our own idle workers use none."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit_s:
        if busy_cores(0.5) < threshold:
            break
    return time.perf_counter() - start


def run_peers(args, epochs: int, layout: str) -> list[Peer]:
    global THREADS
    THREADS = LAYOUTS[layout]["threads"]
    pin = LAYOUTS[layout]["pin"]
    prefix = ["taskset", "-c", pin] if pin is not None and shutil.which("taskset") else None
    logs = OUT / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    peers = []
    for name, kind, python, backend, settings in peer_specs(args):
        slug = "".join(c if c.isalnum() else "_" for c in f"{layout} {name}".lower())
        env = worker_env(backend)
        if settings is not None:
            env["VAE_BENCH_COMPILE"] = json.dumps(settings)
        peers.append(Peer(name, kind, python, env, epochs, logs / f"{slug}.log", prefix))
    # Start-up (imports, graph building, data loading) of all peers at once, untimed.
    for peer in list(peers):
        if not peer.ready():
            print(f"  {peer.name}: did not start: {peer.error}", file=sys.stderr)
    alive = [p for p in peers if p.error is None]
    for k in range(epochs):
        for peer in alive:
            if peer.error is not None:
                continue
            waited = wait_until_quiet(args.quiet_wait)
            result = peer.epoch()
            if result is None:
                print(f"  {peer.name}: failed: {peer.error}", file=sys.stderr)
                continue
            result["waited_s"] = waited
        row = "  ".join(f"{p.name} {p.results[-1]['wall']:.2f}s"
                        for p in alive if p.error is None and len(p.results) == k + 1)
        print(f"  epoch {k + 1} (load {load()[0]}): {row}", flush=True)
    for peer in peers:
        peer.close()
    return peers


def summarise(peers: list[Peer], warmup: int) -> dict:
    """Per peer, the median of every epoch after the warm-up: none is filtered out. An epoch
    longer than twice the peer's median is counted as stalled."""
    gemm = next((p for p in peers if p.kind == "gemm" and p.results), None)
    notebook = next((p for p in peers if p.kind == "notebook" and p.info.get("dense")), None)
    dense = notebook.info["dense"] if notebook else [[784, 512], [512, 2], [512, 2], [2, 512], [512, 784]]
    train_images = notebook.info["train_images"] if notebook else 60_000
    val_images = notebook.info["val_images"] if notebook else 10_000
    batch = notebook.info.get("batch_size", 100) if notebook else 100
    flops = gemm_flops(dense, train_images, val_images)
    parameters = sum(m * n + n for m, n in dense)
    summary = {"flops_per_epoch": flops, "dense_layers": dense, "parameters": parameters, "peers": {}}
    for peer in peers:
        timed = peer.results[warmup:]
        entry = {"kind": peer.kind, "error": peer.error, "info": peer.info, "epochs": peer.results,
                 "timed_epochs": len(timed)}
        if timed:
            median = statistics.median(r["wall"] for r in timed)
            entry.update({
                "wall_s": median, "min_wall_s": min(r["wall"] for r in timed),
                "max_wall_s": max(r["wall"] for r in timed),
                "stalled_epochs": sum(r["wall"] > 2 * median for r in timed),
                "cpu_s": statistics.median(r["cpu"] for r in timed),
                "others_cpu_s": statistics.median(r["others_cpu"] for r in timed),
                "first_epoch_s": peer.results[0]["wall"]})
            if "val_loss" in timed[-1]:
                entry["last_val_loss"] = timed[-1]["val_loss"]
                entry["last_loss"] = timed[-1]["loss"]
        if peer.kind == "gemm" and timed:
            rate = statistics.median(r["sgemm_gflops"] for r in timed)
            entry["sgemm_gflops"] = rate
            entry["sgemm_gflops_best"] = max(r["sgemm_gflops"] for r in timed)
            # The bound: the epoch's GEMM FLOPs at the sgemm rate of the same round.
            entry["wall_s"] = statistics.median(flops["total"] / (r["sgemm_gflops"] * 1e9) for r in timed)
            entry["model_gemms_s"] = statistics.median(r["model_gemms_s"] for r in timed)
            # Adam reads parameters, gradients and both moments and writes three of them back:
            # 7 float32 per parameter and step, at the copy bandwidth measured in the same round.
            bandwidth = statistics.median(r["copy_gb_s"] for r in timed) * 1e9
            steps = train_images // batch
            entry["copy_gb_s"] = bandwidth / 1e9
            entry["adam_traffic_s"] = steps * 7 * 4 * parameters / bandwidth
            entry["floor_s"] = entry["model_gemms_s"] + entry["adam_traffic_s"]
        summary["peers"][peer.name] = entry
    return summary


# --------------------------------------------------------------------------------------------
# the extras: start-up, the notebook in fast mode, grading


def timed_command(command: list[str], env: dict | None = None, cwd: Path = ROOT,
                  timeout: int = 600) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    return time.perf_counter() - start, done


def import_times(reps: int) -> dict:
    """Seconds for a fresh interpreter to import each framework (median of `reps`)."""
    cases = {"python (nothing)": (COURSE_PYTHON, "pass", ""),
             "import tensorflow": (COURSE_PYTHON, "import tensorflow", ""),
             "import keras (TF backend)": (COURSE_PYTHON, "import keras", "tensorflow")}
    if BENCH_PYTHON.exists():
        cases["import keras (JAX backend)"] = (BENCH_PYTHON, "import keras; import jax.numpy", "jax")
        cases["import torch"] = (BENCH_PYTHON, "import torch", "")
    out = {}
    for name, (python, code, backend) in cases.items():
        times = []
        for _ in range(reps):
            seconds, done = timed_command([str(python), "-c", code], env=worker_env(backend))
            if done.returncode:
                break
            times.append(seconds)
        out[name] = statistics.median(times) if times else None
    return out


def kernel_start(reps: int) -> float | None:
    """Seconds to start a python3 Jupyter kernel and run one empty cell (median of `reps`)."""
    code = ("import time; from jupyter_client.manager import start_new_kernel\n"
            "t = time.perf_counter(); km, kc = start_new_kernel(kernel_name='python3')\n"
            "kc.execute_interactive('pass', timeout=60); print(time.perf_counter() - t)\n"
            "kc.stop_channels(); km.shutdown_kernel(now=True)\n")
    times = []
    for _ in range(reps):
        _, done = timed_command([str(COURSE_PYTHON), "-c", code], env=worker_env("tensorflow"))
        if done.returncode:
            return None
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def cell_seconds(nb_path: Path) -> dict[str, float]:
    """Seconds each cell of an executed notebook took, from nbclient's timing metadata."""
    import nbformat
    from datetime import datetime

    out = {}
    for cell in nbformat.read(nb_path, as_version=4).cells:
        timing = cell.get("metadata", {}).get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if cell.cell_type == "code" and start and end:
            parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
            out[cell.get("id")] = (parse(end) - parse(start)).total_seconds()
    return out


def notebook_fast_run(python: Path, backend: str, out_dir: Path) -> dict:
    """Wall time of `VAE_TP_FAST=1 python tools/run_notebook.py notebooks/vae_tp.ipynb` (the
    student notebook with the solution loaded) and where the time goes."""
    env = worker_env(backend)
    env["VAE_TP_FAST"] = "1"
    env["PATH"] = str(python.parent) + os.pathsep + env.get("PATH", "")
    # nbconvert's templates are in the course venv (the bench venv only links its packages).
    env["JUPYTER_PATH"] = str(COURSE_PYTHON.parents[1] / "share" / "jupyter")
    seconds, done = timed_command([str(python), "tools/run_notebook.py", "notebooks/vae_tp.ipynb",
                                   "--out", str(out_dir)], env=env)
    result = {"wall_s": seconds, "ok": done.returncode == 0}
    if done.returncode:
        result["error"] = (done.stdout + done.stderr)[-2000:]
        return result
    cells = cell_seconds(out_dir / "vae_tp.ipynb")
    result["cells_s"] = sum(cells.values())
    result["fit_cell_s"] = cells.get("fit")
    result["imports_cell_s"] = cells.get("imports")
    result["outside_cells_s"] = seconds - result["cells_s"]  # interpreter, kernel, HTML export
    result["slowest_cells"] = dict(sorted(cells.items(), key=lambda kv: -kv[1])[:6])
    return result


def grading(students: int) -> dict:
    """Seconds per submission of `tools/grade.py autograde` (nbgrader autograde, grading
    mode) on a scratch course holding `students` copies of a correct submission."""
    import nbformat

    sys.path.insert(0, str(ROOT / "tools"))
    from run_notebook import load_solutions

    grade = ROOT / "tools" / "grade.py"
    if not grade.exists():
        return {"method": "tools/grade.py not found", "seconds_per_submission": None}
    env = worker_env("tensorflow")
    env["PATH"] = str(COURSE_PYTHON.parent) + os.pathsep + env.get("PATH", "")
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        course, subs = Path(tmp) / "course", Path(tmp) / "submissions"
        subs.mkdir()
        seconds, done = timed_command([str(COURSE_PYTHON), str(grade), "--course", str(course),
                                       "release"], env=env)
        if done.returncode:
            return {"method": "tools/grade.py release failed", "error": (done.stdout + done.stderr)[-2000:]}
        student_nb = ROOT / "notebooks" / "vae_tp.ipynb"
        solved = load_solutions(nbformat.read(student_nb, as_version=4), student_nb.parent)
        for i in range(students):
            nbformat.write(solved, subs / f"student{i + 1}.ipynb")
        seconds, done = timed_command([str(COURSE_PYTHON), str(grade), "--course", str(course),
                                       "autograde", "--submissions", str(subs)], env=env, timeout=900)
        result = {"method": f"tools/grade.py autograde (nbgrader autograde), {students} correct "
                            "submissions, grading mode", "submissions": students, "wall_s": seconds,
                  "seconds_per_submission": seconds / students, "ok": done.returncode == 0}
        if done.returncode:
            result["error"] = (done.stdout + done.stderr)[-2000:]
        return result


# --------------------------------------------------------------------------------------------
# report


def ratio(a, b):
    return a / b if a and b else None


def table(summary: dict) -> str:
    peers = {k: v for k, v in summary["peers"].items() if v.get("wall_s")}
    gemm = peers.get("GEMM bound", {})
    bound, floor = gemm.get("wall_s"), gemm.get("floor_s")
    torch_s = peers.get("PyTorch eager", {}).get("wall_s")
    lines = ["| peer | s/epoch (median) | x GEMM bound | x floor at batch 100 | x PyTorch eager "
             "| min / max s/epoch | stalled epochs (> 2x median) | CPU s/epoch | others' CPU s "
             "| first epoch s | val loss |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def fmt(v, spec=".2f"):
        return "" if v is None else format(v, spec)

    for name, e in peers.items():
        if e["kind"] == "gemm":
            continue
        lines.append(f"| {name} | {fmt(e['wall_s'])} | {fmt(ratio(e['wall_s'], bound))} "
                     f"| {fmt(ratio(e['wall_s'], floor))} | {fmt(ratio(e['wall_s'], torch_s))} "
                     f"| {fmt(e.get('min_wall_s'))} / {fmt(e.get('max_wall_s'))} "
                     f"| {e.get('stalled_epochs', 0)} / {e['timed_epochs']} | {fmt(e.get('cpu_s'))} "
                     f"| {fmt(e.get('others_cpu_s'))} | {fmt(e.get('first_epoch_s'))} "
                     f"| {fmt(e.get('last_val_loss'), '.1f')} |")
    if bound:
        lines.append(f"| GEMM bound ({gemm['sgemm_gflops']:.0f} GFLOP/s) | {fmt(bound)} | 1.00 "
                     f"| {fmt(ratio(bound, floor))} | {fmt(ratio(bound, torch_s))} | | | | | | |")
    if floor:
        lines.append(f"| floor: the GEMMs at batch 100 + Adam's memory traffic | {fmt(floor)} "
                     f"| {fmt(ratio(floor, bound))} | 1.00 | {fmt(ratio(floor, torch_s))} | | | | | | |")
    return "\n".join(lines)


def extras_text(summary: dict) -> str:
    lines = []
    for layout, t in summary["tables"].items():
        g = t["peers"].get("GEMM bound", {})
        f = t["flops_per_epoch"]
        if g.get("sgemm_gflops"):
            lines.append(
                f"{layout}: GEMM bound {f['total'] / 1e9:.0f} GFLOP per epoch ({f['train'] / 1e9:.0f} "
                f"training + {f['validation'] / 1e9:.0f} validation) at {g['sgemm_gflops']:.0f} GFLOP/s "
                f"(NumPy sgemm 2048^2, median of rounds; best {g['sgemm_gflops_best']:.0f}) = "
                f"{g['wall_s']:.2f} s. Floor {g['floor_s']:.2f} s: the same GEMMs at the model's "
                f"shapes (batch 100) in NumPy {g['model_gemms_s']:.2f} s + Adam's memory traffic "
                f"(7 x 4 bytes x {t['parameters']:,} parameters x 600 steps at {g['copy_gb_s']:.1f} GB/s) "
                f"{g['adam_traffic_s']:.2f} s.")
        stalled = {n: e.get("stalled_epochs", 0) for n, e in t["peers"].items() if e.get("stalled_epochs")}
        lines.append(f"{layout}: stalled epochs (> 2x the peer's median): "
                     + (", ".join(f"{n} {k}" for n, k in stalled.items()) if stalled else "none") + ".")
    imports = summary.get("imports_s") or {}
    if imports:
        lines.append("Start-up: " + ", ".join(f"{k} {v:.1f} s" for k, v in imports.items() if v)
                     + (f", Jupyter kernel start {summary['kernel_start_s']:.1f} s"
                        if summary.get("kernel_start_s") else "") + ".")
    for key, label in (("notebook_fast_tf", "TF"), ("notebook_fast_jax", "JAX")):
        n = summary.get(key)
        if n and n.get("ok"):
            lines.append(f"Notebook in fast mode ({label}): {n['wall_s']:.1f} s wall; cells "
                         f"{n['cells_s']:.1f} s, of which fit {n['fit_cell_s']:.1f} s and imports "
                         f"{n['imports_cell_s']:.1f} s; outside the cells (interpreter, kernel "
                         f"start, HTML export) {n['outside_cells_s']:.1f} s.")
        elif n:
            lines.append(f"Notebook in fast mode ({label}): FAILED, see bench.json")
    gr = summary.get("grading")
    if gr and gr.get("seconds_per_submission"):
        lines.append(f"Grading: {gr['seconds_per_submission']:.1f} s per submission ({gr['method']}; "
                     f"{gr['wall_s']:.1f} s in all{'' if gr.get('ok') else ', FAILED'}).")
    elif gr:
        lines.append(f"Grading: not measured ({gr.get('method')}).")
    lines.append(f"Machine load (1-min average): {summary['load_before']} before, "
                 f"{summary['load_after']} after; others' CPU s = CPU seconds other processes "
                 "used during the peer's epoch (2 cores = 2 s per wall second).")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per peer")
    parser.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    parser.add_argument("--tables", nargs="+", choices=list(LAYOUTS), default=None,
                        help="which tables (default: both; with --full: one core)")
    parser.add_argument("--full", action="store_true",
                        help="train 50 epochs and report the validation loss (make bench-full)")
    parser.add_argument("--only", nargs="*", help="peer names to run (GEMM bound always runs)")
    parser.add_argument("--variant", action="append", metavar='NAME:BACKEND={"jit_compile": true}',
                        help="one more notebook peer with other compile settings (to compare)")
    parser.add_argument("--quiet-wait", type=float, default=2,
                        help="seconds to wait, at most, for a quiet machine before each epoch")
    parser.add_argument("--no-extras", action="store_true", help="per-epoch tables only")
    parser.add_argument("--out", type=Path, default=OUT / "bench.json")
    args = parser.parse_args()
    if not os.environ.get(MNIST_ENV):
        print(f"note: {MNIST_ENV} is not set; the workers need the full MNIST file.", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    summary = {"command": " ".join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
               "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
               "load_before": load(), "tables": {}}
    if args.full:
        args.warmup, args.epochs = 1, 49
    tables = args.tables or (["one core"] if args.full else list(LAYOUTS))
    warmup = args.warmup
    epochs = warmup + args.epochs
    for layout in tables:
        print(f"Table '{layout}': {warmup} warm-up + {args.epochs} timed epochs per peer, peers in "
              f"turn (load {load()[0]})", flush=True)
        peers = run_peers(args, epochs, layout)
        result = summarise(peers, warmup)
        result["table"] = table(result)
        summary["tables"][layout] = result
    summary["warmup_epochs"] = warmup
    if not args.no_extras:
        print("Start-up times...", flush=True)
        summary["imports_s"] = import_times(3)
        summary["kernel_start_s"] = kernel_start(3)
        print("The notebook in fast mode...", flush=True)
        summary["notebook_fast_tf"] = notebook_fast_run(COURSE_PYTHON, "tensorflow", OUT / "run-tf")
        if BENCH_PYTHON.exists():
            summary["notebook_fast_jax"] = notebook_fast_run(BENCH_PYTHON, "jax", OUT / "run-jax")
    summary["load_after"] = load()
    summary["bench_wall_s"] = time.perf_counter() - started
    summary["extras"] = extras_text(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8")
    cores = os.cpu_count()
    for layout, result in summary["tables"].items():
        how = ("every peer pinned to one core (taskset), one thread" if layout == "one core"
               else f"every peer on all {cores} cores, its framework's default threads")
        print(f"\nTable '{layout}': {how}; the GEMM bound at the same thread count.\n")
        print(result["table"])
    print()
    print(summary["extras"])
    print(f"\nBench took {summary['bench_wall_s']:.0f} s; JSON: {args.out}")
    failed = [f"{layout}: {name}" for layout, t in summary["tables"].items()
              for name, e in t["peers"].items() if e.get("error")]
    if failed:
        print(f"FAILED peers: {', '.join(failed)} (logs in build/bench/logs/)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
