"""Minimal reproduction of the stalled Keras-on-TensorFlow epochs, for an upstream report.

    python bench/stall_repro.py                  # plain Keras fit on NumPy arrays: some epochs stall
    python bench/stall_repro.py --no-autotune    # the same data as a tf.data pipeline, autotuning off

No course code: N processes each train a small Keras model with `fit` on NumPy arrays, with validation data
(Keras builds a tf.data pipeline with autotuned prefetch). The processes take their epochs in
turn, as several notebook kernels do when they share a machine, so one trains while the
others wait before their next epoch. An epoch is "stalled" when its wall time exceeds twice its
process CPU time: the machine is idle, nothing else runs, yet the epoch does not progress.

Seen with TensorFlow 2.21 / Keras 3.15 on a 2-core VM: the stalled process's main thread is in
`tensorflow::data::RootDataset::Iterator::~Iterator` (Keras drops the previous epoch's iterator
when the next epoch starts), waiting for tf.data's autotuning thread, which sleeps in
`Model::OptimizeLoop`'s timed wait; its period doubles up to 60 s, which bounds the stalls.
With `options.autotune.enabled = False` on the same pipeline, no epoch stalls.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def worker(epochs: int, autotune: bool) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    x = np.random.default_rng(0).random((60_000, 784), dtype=np.float32)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(512, activation="relu"),
                              keras.layers.Dense(784, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy", jit_compile=True, steps_per_execution=100)
    val = x[:10_000]
    data: dict = {"x": x, "y": x, "batch_size": 100, "validation_data": (val, val)}
    if not autotune:
        import tensorflow as tf

        options = tf.data.Options()
        options.autotune.enabled = False
        def pipeline(images, shuffle):
            ds = tf.data.Dataset.from_tensor_slices((images, images))
            return (ds.shuffle(len(images)) if shuffle else ds).batch(100).prefetch(2).with_options(options)

        data = {"x": pipeline(x, True), "validation_data": pipeline(val, False)}
    out = os.fdopen(os.dup(1), "w")

    class Turns(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            sys.stdin.readline()  # wait for our turn
            self.wall, self.cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            out.write(json.dumps({"wall": time.perf_counter() - self.wall,
                                  "cpu": time.process_time() - self.cpu}) + "\n")
            out.flush()

    model.fit(**data, epochs=epochs, verbose=0, callbacks=[Turns()])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--no-autotune", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.epochs, not args.no_autotune)
        return 0
    command = [sys.executable, __file__, "--worker", "--epochs", str(args.epochs)]
    command += ["--no-autotune"] if args.no_autotune else []
    procs = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(args.processes)]
    stalled = timed = 0
    for epoch in range(args.epochs):
        for i, p in enumerate(procs):
            p.stdin.write("go\n")
            p.stdin.flush()
            r = json.loads(p.stdout.readline())
            stall = epoch > 0 and r["wall"] > 2 * r["cpu"]
            stalled += stall
            timed += epoch > 0
            print(f"process {i} epoch {epoch}: wall {r['wall']:6.2f} s, CPU {r['cpu']:5.2f} s"
                  + ("   <- stalled" if stall else ""), flush=True)
    for p in procs:
        p.wait()
    print(f"stalled epochs: {stalled} of {timed} (after the first epoch of each process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
