"""`data.batches` reads batches in place: the same training as a pipeline over a copied tensor?

    VAE_TP_MNIST=/path/to/mnist.npz python bench/batches_copy.py

Trains the main model's shapes (784-512-2-512-784, the notebook's compile settings) for 3
epochs on the 50,000 training images, twice with each pipeline, alternating, in one process:
`data.batches` (each batch gathered from the NumPy array by `tf.numpy_function`) and the
pipeline it replaced (the whole array converted to a tensor first, then `tf.gather` per batch).
Prints each run's wall and CPU seconds, validation losses and the resident memory after it.
Same seed, same batches: the losses must agree. docs/performance.md quotes the run of
2026-11-30.
"""

from __future__ import annotations

import gc
import re
import time

import numpy as np


def resident() -> int:
    return int(re.search(r"VmRSS:\s+(\d+)", open("/proc/self/status").read()).group(1)) // 1024


def copied_batches(x, batch_size, *, shuffle=True, seed=None):
    """The previous `data.batches`: the whole array copied into a tensor, gathered per batch."""
    import tensorflow as tf

    images = tf.convert_to_tensor(np.asarray(x, dtype="float32"))
    order = tf.data.Dataset.range(int(images.shape[0]))
    if shuffle:
        order = order.shuffle(int(images.shape[0]), seed=seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.apply_default_optimizations = False

    def pair(indices):
        batch = tf.gather(images, indices)
        return batch, batch

    return order.batch(batch_size).map(pair).prefetch(2).with_options(options)


def main() -> int:
    from vaetp import quiet_start  # noqa: F401

    import keras
    from keras import layers

    from vaetp import data

    (x_train, y_train), _ = data.load_mnist(quiet=True)
    x_train = x_train.reshape(-1, 784).astype("float32")
    x_train /= 255
    (x_fit, _), (x_val, _) = data.hold_out(x_train, y_train, 10_000)
    print(f"| pipeline | wall (s) | CPU (s) | validation losses | resident MB after |\n"
          f"| --- | ---: | ---: | --- | ---: |\n| (before training) | | | | {resident():,} |")
    for name, batches in [("in place", data.batches), ("copied", copied_batches),
                          ("copied", copied_batches), ("in place", data.batches)]:
        keras.utils.set_random_seed(1)
        images = keras.Input((784,))
        hidden = layers.Dense(512, activation="relu")(layers.Dense(2)(layers.Dense(512, activation="relu")(images)))
        model = keras.Model(images, layers.Dense(784, activation="sigmoid")(hidden))
        model.compile("adam", "binary_crossentropy", jit_compile=True, steps_per_execution=100)
        wall, cpu = time.perf_counter(), time.process_time()
        history = model.fit(batches(x_fit, 100, seed=1), epochs=3, verbose=0,
                            validation_data=batches(x_val, 1000, shuffle=False))
        losses = ", ".join(f"{v:.4f}" for v in history.history["val_loss"])
        print(f"| {name} | {time.perf_counter() - wall:.1f} | {time.process_time() - cpu:.1f} | "
              f"{losses} | {resident():,} |", flush=True)
        del model
        gc.collect()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
