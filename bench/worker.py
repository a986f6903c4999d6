"""One peer of the benchmark, run in its own process by bench/bench.py.

    python bench/worker.py notebook   # the master notebook's own model and `fit` cell
    python bench/worker.py plain      # a plain Keras 3 fit of the same model (the baseline)
    python bench/worker.py torch      # the same model in PyTorch eager (bench/torch_vae.py)
    python bench/worker.py gemm       # the sgemm rate and the model's GEMMs alone, in NumPy

The Keras peers run on the backend named by KERAS_BACKEND. Protocol: the worker writes JSON
lines to its standard output ({"ready": ...} once, then one {"epoch": ...} per epoch) and
reads one line from its standard input before each epoch, so that bench.py can run the peers'
epochs in turn: every peer's epoch k runs under the same machine load as the others' epoch k.
Everything else the code prints goes to standard error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MASTER = ROOT / "source" / "vae" / "vae_tp.ipynb"
BATCH = 100

_PROTOCOL = None


def send(message: dict) -> None:
    _PROTOCOL.write(json.dumps(message) + "\n")
    _PROTOCOL.flush()


def wait_for_go() -> None:
    line = sys.stdin.readline()
    if line.strip() != "go":
        sys.exit(0)


class EpochClock:
    """Wall and process CPU seconds of one epoch (CPU summed over the process's threads)."""

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> dict:
        return {"wall": time.perf_counter() - self.wall, "cpu": time.process_time() - self.cpu}


def mnist():
    import numpy as np

    path = os.environ.get("VAE_TP_MNIST", "")
    with np.load(path) as d:
        x_train = d["x_train"].reshape(-1, 784).astype("float32") / 255.0
        x_test = d["x_test"].reshape(-1, 784).astype("float32") / 255.0
    return x_train, x_test


def dense_shapes(model) -> list[list[int]]:
    """(inputs, units) of every Dense layer under `model`, for the FLOP count."""
    import keras

    shapes = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Dense):
            shapes.append([int(d) for d in layer.kernel.shape])
    return shapes


def keras_callback(info: dict):
    import keras

    clock = EpochClock()

    class Step(keras.callbacks.Callback):
        """Waits for bench.py before each epoch, reports the epoch's times and losses after."""

        def on_epoch_begin(self, epoch, logs=None):
            wait_for_go()
            clock.start()

        def on_epoch_end(self, epoch, logs=None):
            result = clock.stop()
            logs = logs or {}
            send({"epoch": epoch, **result, "loss": float(logs.get("loss", "nan")),
                  "val_loss": float(logs.get("val_loss", "nan"))})

    return Step()


# --------------------------------------------------------------------------------------------
# (a) the notebook's own model and training call


def notebook_cells() -> tuple[list, object]:
    """The master's code cells before the cell `fit`, and the cell `fit` itself."""
    import nbformat

    nb = nbformat.read(MASTER, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    ids = [c.get("id") for c in code]
    if "fit" not in ids:
        raise SystemExit(f"{MASTER}: no code cell with id 'fit'")
    at = ids.index("fit")
    return code[:at], code[at]


def run_notebook(args) -> None:
    """Executes the master's cells up to `compile` as the notebook does (solution included),
    then its `fit` cell with `epochs` set to the number bench.py asks for. The only change to
    the call is one more callback, which times the epochs."""
    os.environ.pop("VAE_TP_FAST", None)  # the TP's full data: 60,000 training images
    os.environ.setdefault("MPLBACKEND", "Agg")
    before, fit = notebook_cells()
    work = ROOT / "build" / "bench" / "kernel"
    work.mkdir(parents=True, exist_ok=True)
    os.chdir(work)  # the notebook's relative paths (weights/) land in build/
    ns = {"__name__": "__main__"}
    # bench.py --variant: other compile settings than the notebook's, to compare them.
    override = json.loads(os.environ.get("VAE_BENCH_COMPILE", "") or "null")
    started = time.perf_counter()
    for cell in before:
        if cell.get("id") == "compile" and override is not None:
            ns["vae"].compile = with_settings(ns["vae"].compile, override)
        exec(compile(cell.source, f"<cell {cell.get('id')}>", "exec"), ns)
    vae = ns["vae"]
    info = {"setup_s": time.perf_counter() - started, "cells": [c.get("id") for c in before],
            "fit_cell": fit.source, "compile": compile_settings(vae),
            "dense": dense_shapes(vae), "train_images": len(ns["x_fit"]),
            "val_images": len(ns["x_val"]), "batch_size": ns["batch_size"]}
    fit_method = vae.fit

    def timed_fit(*a, **kw):
        kw["callbacks"] = list(kw.get("callbacks") or []) + [keras_callback(info)]
        return fit_method(*a, **kw)

    vae.fit = timed_fit
    ns["epochs"] = args.epochs
    send({"ready": True, "info": info})
    exec(compile(fit.source, "<cell fit>", "exec"), ns)


def with_settings(compile_method, override: dict):
    def compile_with(*a, **kw):
        return compile_method(*a, **{**kw, **override})

    return compile_with


def compile_settings(model) -> dict:
    return {"jit_compile": getattr(model, "jit_compile", None),
            "steps_per_execution": getattr(model, "steps_per_execution", None)}


# --------------------------------------------------------------------------------------------
# (b) a plain Keras fit: what a Keras user writes, with no speed setting


def run_plain(args) -> None:
    import keras
    from keras import layers, ops

    x_train, x_test = mnist()
    keras.utils.set_random_seed(42)

    class Sampling(layers.Layer):
        def __init__(self, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, z_mean, z_log_var):
            epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
            kl = -0.5 * ops.sum(1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)
            self.add_loss(ops.mean(kl))
            return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    inputs = keras.Input(shape=(784,))
    h = layers.Dense(512, activation="relu")(inputs)
    z_mean, z_log_var = layers.Dense(2)(h), layers.Dense(2)(h)
    encoder = keras.Model(inputs, Sampling(seed=42)(z_mean, z_log_var))
    latent = keras.Input(shape=(2,))
    outputs = layers.Dense(784, activation="sigmoid")(layers.Dense(512, activation="relu")(latent))
    decoder = keras.Model(latent, outputs)
    vae = keras.Model(inputs, decoder(encoder(inputs)))

    def reconstruction_loss(x, x_decoded):
        return 784 * keras.losses.binary_crossentropy(x, x_decoded)

    vae.compile(optimizer="adam", loss=reconstruction_loss)
    info = {"compile": compile_settings(vae), "dense": dense_shapes(vae),
            "train_images": len(x_train), "val_images": len(x_test), "batch_size": BATCH}
    send({"ready": True, "info": info})
    vae.fit(x_train, x_train, epochs=args.epochs, batch_size=BATCH,
            validation_data=(x_test, x_test), verbose=0, callbacks=[keras_callback(info)])


# --------------------------------------------------------------------------------------------
# (c) PyTorch eager


def run_torch(args) -> None:
    import torch

    from torch_vae import train

    x_train, x_test = mnist()
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "train_images": len(x_train), "val_images": len(x_test), "batch_size": BATCH}
    send({"ready": True, "info": info})
    clock = EpochClock()

    def before_epoch(epoch):
        wait_for_go()
        clock.start()

    def after_epoch(epoch, loss, val_loss):
        send({"epoch": epoch, **clock.stop(), "loss": loss, "val_loss": val_loss})

    train(x_train, x_test, epochs=args.epochs, batch_size=BATCH, seed=42,
          before_epoch=before_epoch, after_epoch=after_epoch)


# --------------------------------------------------------------------------------------------
# (d) the GEMM bound's measurements


def run_gemm(args) -> None:
    """Per round: the best sgemm rate on large square matrices (NumPy's BLAS), the time of one
    epoch's GEMMs alone at the model's own shapes (batches of 100), and the memory bandwidth of
    a large copy (for the optimizer's memory traffic)."""
    import numpy as np

    rng = np.random.default_rng(0)
    n = 2048
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    dense = [(784, 512), (512, 2), (512, 2), (2, 512), (512, 784)]
    w = [rng.random(s, dtype=np.float32) for s in dense]
    acts_in = [rng.random((BATCH, s[0]), dtype=np.float32) for s in dense]
    grads_out = [rng.random((BATCH, s[1]), dtype=np.float32) for s in dense]

    def model_gemms(train_steps: int, val_steps: int) -> None:
        for _ in range(train_steps):
            for i, _s in enumerate(dense):
                acts_in[i] @ w[i]  # forward
                acts_in[i].T @ grads_out[i]  # weight gradient
                if i:  # input gradient (none for the first layer: its input is the data)
                    grads_out[i] @ w[i].T
        for _ in range(val_steps):
            for i, _s in enumerate(dense):
                acts_in[i] @ w[i]

    src = rng.random(16 * 2**20, dtype=np.float32)
    dst = np.empty_like(src)
    np.matmul(a, b, out=c)
    model_gemms(20, 0)
    send({"ready": True, "info": {"numpy": np.__version__, "sgemm_n": n}})
    clock = EpochClock()
    for epoch in range(args.epochs):
        wait_for_go()
        clock.start()
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            np.matmul(a, b, out=c)
            best = min(best, time.perf_counter() - t)
        t = time.perf_counter()
        model_gemms(args.train_images // BATCH, args.val_images // BATCH)
        shapes = time.perf_counter() - t
        copy = float("inf")
        for _ in range(5):  # memory bandwidth: a 64 MB copy reads and writes 64 MB
            t = time.perf_counter()
            np.copyto(dst, src)
            copy = min(copy, time.perf_counter() - t)
        send({"epoch": epoch, **clock.stop(), "sgemm_gflops": 2 * n**3 / best / 1e9,
              "model_gemms_s": shapes, "copy_gb_s": 2 * src.nbytes / copy / 1e9})


def main() -> None:
    global _PROTOCOL
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", choices=["notebook", "plain", "torch", "gemm"])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--train-images", type=int, default=60_000)
    parser.add_argument("--val-images", type=int, default=10_000)
    args = parser.parse_args()
    # The protocol keeps the real standard output; prints of the code under test go to stderr.
    _PROTOCOL = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.path.insert(0, str(Path(__file__).parent))
    {"notebook": run_notebook, "plain": run_plain, "torch": run_torch, "gemm": run_gemm}[args.peer](args)
    sys.stdin.readline()  # "quit"


if __name__ == "__main__":
    main()
