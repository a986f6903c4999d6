"""Does a freed model give its memory back? The kernel's resident memory as the TP trains models.

    VAE_TP_MNIST=/path/to/mnist.npz python bench/model_memory.py

Trains, in one process, what the TP trains up to section 17 (1 epoch each, the notebook's
compile settings): the main VAE, three beta VAEs, then deletes those three and runs the garbage
collector, then the anomaly VAE on a copy of the training images without the 9s, then one
`predict` on the 10,000 validation images. Prints the resident memory (MB) after each step and
the process's peak. Three variants, each in a fresh process: the default allocator; the same
with glibc's `malloc_trim(0)` after the collection; and `MALLOC_ARENA_MAX=2` in the
environment. docs/performance.md, "One student's whole TP", quotes the run of 2026-11-30.
"""

from __future__ import annotations

import ctypes
import gc
import os
import re
import subprocess
import sys

VARIANTS = {"default": {}, "malloc_trim": {}, "MALLOC_ARENA_MAX=2": {"MALLOC_ARENA_MAX": "2"}}


def resident(field: str = "VmRSS") -> int:
    status = open("/proc/self/status").read()
    return int(re.search(rf"{field}:\s+(\d+)", status).group(1)) // 1024


def one(variant: str) -> None:
    from vaetp import quiet_start  # noqa: F401

    import keras
    from keras import layers, ops

    from vaetp import data

    (x_train, y_train), _ = data.load_mnist(quiet=True)
    x_train = x_train.reshape(-1, 784).astype("float32")
    x_train /= 255
    (x_fit, y_fit), (x_val, _) = data.hold_out(x_train, y_train, 10_000)
    steps = [("data", resident())]

    class Sampling(layers.Layer):
        def __init__(self, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, mean, log_var):
            self.add_loss(ops.mean(-0.5 * ops.sum(1 + log_var - mean**2 - ops.exp(log_var), -1)))
            return mean + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mean), seed=self.seed_generator)

    def loss(x, x_decoded):
        return 784 * keras.losses.binary_crossentropy(x, x_decoded)

    def vae():
        images = keras.Input((784,))
        hidden = layers.Dense(512, activation="relu")(images)
        z = Sampling(42)(layers.Dense(2)(hidden), layers.Dense(2)(hidden))
        decoded = layers.Dense(784, activation="sigmoid")(layers.Dense(512, activation="relu")(z))
        model = keras.Model(images, decoded)
        model.compile("adam", loss, metrics=[loss], jit_compile=True, steps_per_execution=100)
        return model

    def train(model, x, validation=True):
        model.fit(data.batches(x, 100, seed=1), epochs=1, verbose=0,
                  validation_data=data.batches(x_val, 1000, shuffle=False) if validation else None)
        return model

    main = train(vae(), x_fit)
    steps.append(("main VAE", resident()))
    betas = [train(vae(), x_fit) for _ in range(3)]
    steps.append(("three beta VAEs", resident()))
    del betas
    gc.collect()
    if variant == "malloc_trim":
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    steps.append(("beta VAEs freed", resident()))
    normal = x_fit[y_fit != 9]
    anomaly = train(vae(), normal, validation=False)
    steps.append(("anomaly VAE", resident()))
    anomaly.predict(x_val, verbose=0)
    steps.append(("predict", resident()))
    del main
    print("| " + variant + " | " + " | ".join(f"{mb:,}" for _, mb in steps)
          + f" | {resident('VmHWM'):,} |", flush=True)


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        one(sys.argv[2])
        return 0
    print("| allocator | data | main VAE | three beta VAEs | beta VAEs freed | anomaly VAE | "
          "predict | peak |")
    print("| --- | " + " | ".join("---:" for _ in range(7)) + " |")
    for variant, env in VARIANTS.items():
        subprocess.run([sys.executable, __file__, "--one", variant], env={**os.environ, **env},
                       stderr=subprocess.DEVNULL, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
