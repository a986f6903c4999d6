"""Many students on one hub node: N notebook kernels train the TP's VAE at the same time.

    python bench/concurrency.py                   # `make bench-concurrency`: N = 1, 2, 4, 8
    python bench/concurrency.py --counts 8 --settings default per-kernel --epochs 4

Each kernel is a real Jupyter kernel (jupyter_client, the python3 kernel of the course
environment), started with the environment a JupyterHub spawner would give it:

- `per-kernel`: the course's thread settings for a CPU share of cores / N
  (`vaetp.threads.thread_environment`, what `c.Spawner.cpu_limit` gives on a hub);
- `default`: no thread variable, every library's default (all the node's cores per kernel).

Every kernel runs the master notebook's code cells up to `compile` as a student would, then
its `fit` cell with `epochs` set here; one callback, added to the call, writes each epoch's
wall and CPU time to a file. All kernels are ready before any `fit` starts. The first epoch
(XLA compilation) is not timed. Reported per run: the aggregate training throughput (timed
images / the time from the first timed epoch's start to the last one's end), each student's
median and worst s/epoch, the epochs longer than twice the run's median ("slow epochs"), the
cores the machine was busy meanwhile, and the peak memory of a kernel. The table is printed
and written with every epoch to build/bench/concurrency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from bench import cpu_jiffies, machine  # noqa: E402
from worker import notebook_cells  # noqa: E402

from vaetp.threads import VARIABLES, thread_environment, threads_for  # noqa: E402

OUT = ROOT / "build" / "bench"

TIMING_CELL = """
import json as _json, time as _time
import keras as _keras
class _EpochLog(_keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self._t, self._c, self._s = _time.perf_counter(), _time.process_time(), _time.time()
    def on_epoch_end(self, epoch, logs=None):
        with open({log!r}, "a") as f:
            f.write(_json.dumps({{"epoch": epoch, "start": self._s, "end": _time.time(),
                                 "wall": _time.perf_counter() - self._t,
                                 "cpu": _time.process_time() - self._c,
                                 "val_loss": float((logs or {{}}).get("val_loss", "nan"))}}) + "\\n")
_fit = vae.fit
def _timed_fit(*a, **kw):
    kw["callbacks"] = list(kw.get("callbacks") or []) + [_EpochLog()]
    return _fit(*a, **kw)
vae.fit = _timed_fit
epochs = {epochs}
"""

PROBE_CELL = """
import collections as _c, os as _os, json as _json
_names = _c.Counter(open(f"/proc/self/task/{_t}/comm").read().strip() for _t in _os.listdir("/proc/self/task"))
print("VAETP_THREADS " + _json.dumps({"xla_eigen": _names.get("tf_XLAEigen", 0), "threads": sum(_names.values()),
                                     "train_images": len(x_fit)}))
"""


EXTRA_ENV: dict[str, str] = {}  # --env: another setting to compare
CPU_CGROUP = Path("/sys/fs/cgroup/cpu")  # cgroup v1 cpu controller (--quota)


class CpuQuota:
    """A cgroup v1 CFS quota of `share` cores for one kernel: how DockerSpawner, SystemdSpawner
    and KubeSpawner enforce `c.Spawner.cpu_limit` (needs root and the cpu controller)."""

    def __init__(self, name: str, share: float, period_us: int = 100_000):
        self.path = CPU_CGROUP / name
        self.path.mkdir(exist_ok=True)
        (self.path / "cpu.cfs_period_us").write_text(str(period_us))
        (self.path / "cpu.cfs_quota_us").write_text(str(int(share * period_us)))

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def throttled_s(self) -> float:
        stat = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
        return int(stat.get("throttled_time", 0)) / 1e9

    def remove(self) -> None:
        try:
            for pid in (self.path / "cgroup.procs").read_text().split():
                (CPU_CGROUP / "cgroup.procs").write_text(pid)
            self.path.rmdir()
        except OSError:
            pass


def kernel_env(setting: str, share: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES and k != "XLA_FLAGS"}
    env.pop("VAE_TP_FAST", None)
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"})
    if setting == "per-kernel":
        env.update(thread_environment(share))
        env["CPU_LIMIT"] = f"{share:g}"  # what JupyterHub's spawner sets besides
    env.update(EXTRA_ENV)
    return env


def peak_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Student(threading.Thread):
    """One kernel: start, run the cells before `fit`, wait for the go, run `fit`."""

    def __init__(self, index: int, env: dict, work: Path, epochs: int, go: threading.Event,
                 ready: threading.Barrier, quota: "CpuQuota | None" = None):
        super().__init__(daemon=True)
        self.quota = quota
        self.index, self.env, self.work, self.epochs = index, env, work, epochs
        self.go, self.ready = go, ready
        self.log = work / f"epochs-{index}.jsonl"
        self.error: str | None = None
        self.rss_mib: float | None = None
        self.probe: dict = {}

    def run_cell(self, client, source: str, timeout: float = 900) -> str:
        out: list[str] = []

        def hook(msg):
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                out.append("\n".join(content.get("traceback", [])))
                self.error = f"{content['ename']}: {content['evalue']}"

        reply = client.execute_interactive(source, timeout=timeout, output_hook=hook)
        if reply["content"]["status"] != "ok" and not self.error:
            self.error = reply["content"].get("evalue", "error")
        return "".join(out)

    def run(self) -> None:
        from jupyter_client import KernelManager

        manager = KernelManager(kernel_name="python3")
        try:
            manager.start_kernel(env=self.env, cwd=str(self.work))
            if self.quota is not None:
                self.quota.add(manager.provisioner.process.pid)
            client = manager.blocking_client()
            client.start_channels()
            client.wait_for_ready(timeout=120)
            before, fit = notebook_cells()
            for cell in before:
                self.run_cell(client, cell.source)
                if self.error:
                    raise RuntimeError(f"cell {cell.get('id')}: {self.error}")
            self.run_cell(client, TIMING_CELL.format(log=str(self.log), epochs=self.epochs))
            self.ready.wait()
            self.go.wait()
            self.run_cell(client, fit.source, timeout=3600)
            for line in self.run_cell(client, PROBE_CELL).splitlines():
                if line.startswith("VAETP_THREADS "):
                    self.probe = json.loads(line.split(" ", 1)[1])
            pid = getattr(getattr(manager, "provisioner", None), "process", None)
            if pid is not None:
                self.rss_mib = peak_rss_mib(pid.pid)
            client.stop_channels()
        except Exception as err:  # noqa: BLE001 - reported in the table
            self.error = self.error or f"{type(err).__name__}: {err}"
            try:
                self.ready.abort()
            except threading.BrokenBarrierError:
                pass
        finally:
            manager.shutdown_kernel(now=True)

    def epochs_done(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


def run_case(count: int, setting: str, epochs: int, quota: bool = False) -> dict:
    cores = os.cpu_count() or 1
    share = cores / count
    quotas = [CpuQuota(f"vae-bench-{os.getpid()}-{i}", share) for i in range(count)] if quota else []
    with tempfile.TemporaryDirectory(prefix="vae-concurrency-") as tmp:
        work = Path(tmp)
        go, ready = threading.Event(), threading.Barrier(count + 1)
        students = [Student(i, kernel_env(setting, share), work, epochs, go, ready,
                            quotas[i] if quotas else None) for i in range(count)]
        for s in students:
            s.start()
        try:
            ready.wait(timeout=1800)
        except threading.BrokenBarrierError:
            pass
        busy0, total0 = cpu_jiffies()
        started = time.time()
        go.set()
        for s in students:
            s.join()
        busy1, total1 = cpu_jiffies()
        logs = [s.epochs_done() for s in students]
    throttled = [q.throttled_s() for q in quotas]
    for q in quotas:
        q.remove()
    errors = [s.error for s in students if s.error]
    timed = [e for log in logs for e in log if e["epoch"] >= 1]
    result = {"kernels": count, "setting": setting, "share": share, "quota": quota,
              "throttled_s": throttled,
              "threads": threads_for(share, cores) if setting == "per-kernel" else cores,
              "epochs": logs, "errors": errors,
              "rss_mib": [s.rss_mib for s in students], "probe": [s.probe for s in students],
              "busy_cores": (busy1 - busy0) / max(1, total1 - total0) * cores,
              "wall_s": time.time() - started}
    train_images = next((p["train_images"] for p in result["probe"] if p), 0)
    if timed:
        walls = [e["wall"] for e in timed]
        median = statistics.median(walls)
        window = max(e["end"] for e in timed) - min(e["start"] for e in timed)
        per_student = [statistics.median([e["wall"] for e in log if e["epoch"] >= 1])
                       for log in logs if any(e["epoch"] >= 1 for e in log)]
        result.update({
            "images_per_s": len(timed) * train_images / window,
            "median_s": median, "worst_s": max(walls),
            "student_medians_s": per_student,
            "slow_epochs": sum(w > 2 * median for w in walls), "timed_epochs": len(walls),
            "cpu_per_epoch_s": statistics.median(e["cpu"] for e in timed),
            "val_loss": statistics.median(log[-1]["val_loss"] for log in logs if log),
        })
    return result


def table(results: list[dict]) -> str:
    best = max((r.get("images_per_s", 0) for r in results if r["kernels"] <= 2 and r["setting"] == "per-kernel"),
               default=0)
    lines = ["| kernels | threads per kernel | images/s (all kernels) | vs best of N = 1, 2 "
             "| s/epoch median | worst epoch | slow epochs (> 2x median) | cores busy | CPU s/epoch "
             "| peak memory per kernel |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if "images_per_s" not in r:
            lines.append(f"| {r['kernels']} | {r['setting']} | failed: {'; '.join(r['errors'])[:200]} |")
            continue
        threads = f"{r['threads']} ({r['setting']}{', CPU quota' if r.get('quota') else ''})"
        rss = [m for m in r["rss_mib"] if m]
        memory = f"{max(rss) / 1024:.2f} GiB" if rss else "n/a"
        versus = f"{r['images_per_s'] / best:.0%}" if best else "n/a"
        lines.append(
            f"| {r['kernels']} | {threads} | {r['images_per_s']:,.0f} | {versus} | "
            f"{r['median_s']:.2f} | {r['worst_s']:.2f} | {r['slow_epochs']} / {r['timed_epochs']} | "
            f"{r['busy_cores']:.2f} | {r['cpu_per_epoch_s']:.2f} | {memory} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="*", default=[1, 2, 4, 8], help="kernels at once")
    parser.add_argument("--settings", nargs="+", default=["per-kernel"],
                        choices=["per-kernel", "default"], help="thread settings to compare")
    parser.add_argument("--default-at", type=int, nargs="*", default=[8],
                        help="also run these counts with the libraries' default threads")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per kernel (the first is not timed)")
    parser.add_argument("--quota", nargs="*", type=int, default=[], metavar="N",
                        help="also run these counts with each kernel held to its share by a cgroup "
                             "CPU quota, as container spawners do (needs root)")
    parser.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE",
                        help="more environment variables for every kernel (to compare settings)")
    parser.add_argument("--out", type=Path, default=OUT / "concurrency.json")
    args = parser.parse_args()
    EXTRA_ENV.update(item.split("=", 1) for item in args.env)
    if not os.environ.get("VAE_TP_MNIST"):
        print("note: VAE_TP_MNIST is not set: the kernels train on the small bundled sample.")
    cases = [(n, s) for s in args.settings for n in args.counts]
    cases = [(n, s, False) for n, s in cases]
    cases += [(n, "default", False) for n in args.default_at if (n, "default", False) not in cases]
    if args.quota and not (os.geteuid() == 0 and (CPU_CGROUP / "cpu.cfs_quota_us").exists()):
        print("note: --quota needs root and the cgroup v1 cpu controller; skipped.")
        args.quota = []
    cases += [(n, s, True) for n in args.quota for s in ("per-kernel", "default")]
    results = []
    for count, setting, quota in cases:
        print(f"{count} kernel(s), {setting} threads{', CPU quota' if quota else ''} ...", flush=True)
        result = run_case(count, setting, args.epochs, quota)
        results.append(result)
        print(f"  {result.get('images_per_s', 0):,.0f} images/s, median "
              f"{result.get('median_s', float('nan')):.2f} s/epoch, worst "
              f"{result.get('worst_s', float('nan')):.2f} s, errors: {result['errors'] or 'none'}",
              flush=True)
    text = table(results)
    print("\nMany students on one node (" + f"{os.cpu_count()} cores, {args.epochs - 1} timed epochs per kernel):\n")
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"),
                                    "results": results, "table": text}, indent=1))
    print(f"\nwritten: {args.out}")
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
