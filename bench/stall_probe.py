"""Find stalled epochs and what a stalled process waits for (the stall investigation's tool).

    python bench/stall_probe.py --kind plain          # plain Keras fit on NumPy arrays
    python bench/stall_probe.py --kind notebook       # the master notebook's own fit cell
    python bench/stall_probe.py --kind plain --gdb    # and the threads' stacks during a stall

N bench workers (bench/worker.py) take their epochs in turn, as in `make bench`, so only one
trains at a time. While a worker trains, its threads' states are read every 20 ms from /proc.
An epoch is "idle" for the share of samples in which none of its threads was runnable; a
stalled epoch is mostly idle although nothing else runs. With --gdb, the first time a worker
has had no runnable thread for half a second, `gdb` prints every thread's stack to
build/bench/stall-<worker>-<epoch>.txt (needs gdb and ptrace rights; the dump itself pauses
the worker, so that epoch's time is not comparable).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "bench" / "worker.py"
OUT = ROOT / "build" / "bench"


def thread_states(pid: int) -> list[str]:
    states = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        states.append(stat[stat.rindex(")") + 2])
    return states


def run_epoch(proc: subprocess.Popen, dump: Path | None) -> dict:
    samples: list[bool] = []
    done = threading.Event()

    def sample() -> None:
        quiet = 0
        while not done.is_set():
            runnable = "R" in thread_states(proc.pid)
            samples.append(runnable)
            quiet = 0 if runnable else quiet + 1
            if dump is not None and quiet == 25 and not dump.exists():
                stacks = subprocess.run(["gdb", "-p", str(proc.pid), "-batch", "-ex", "thread apply all bt 25"],
                                        capture_output=True, text=True).stdout
                dump.write_text(stacks)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    result = json.loads(proc.stdout.readline())
    done.set()
    sampler.join()
    result["idle"] = samples.count(False) / max(1, len(samples))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=["plain", "notebook"], default="plain")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--gdb", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", KERAS_BACKEND="tensorflow")
    env.pop("VAE_TP_FAST", None)
    procs = [subprocess.Popen([sys.executable, str(WORKER), args.kind, "--epochs", str(args.epochs)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, env=env, cwd=ROOT) for _ in range(args.workers)]
    for proc in procs:
        json.loads(proc.stdout.readline())  # ready
    timed = []
    for epoch in range(args.epochs):
        for i, proc in enumerate(procs):
            dump = OUT / f"stall-{i}-{epoch}.txt" if args.gdb else None
            r = run_epoch(proc, dump)
            if epoch:
                timed.append(r)
            print(f"worker {i} epoch {epoch}: wall {r['wall']:6.2f} s, CPU {r['cpu']:5.2f} s, "
                  f"no thread runnable {r['idle']:4.0%}" + (f"  (stacks: {dump})" if dump and dump.exists() else ""),
                  flush=True)
    for proc in procs:
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        proc.wait(timeout=60)
    median = statistics.median(r["wall"] for r in timed)
    stalled = [r for r in timed if r["wall"] > 2 * median]
    print(f"{args.kind}: median {median:.2f} s per epoch; stalled epochs (> 2x the median): "
          f"{len(stalled)} of {len(timed)}; epochs with no runnable thread for more than half "
          f"their time: {sum(r['idle'] > 0.5 for r in timed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
