"""Load MNIST online or offline, with errors a student can act on.

`load_mnist()` returns exactly what `keras.datasets.mnist.load_data()` returns, but looks for
a local copy first, so the TP also runs on machines without internet (an offline JupyterHub,
CI). Where the data come from, in this order:

1. the `source` argument, else the environment variable `VAE_TP_MNIST`: a path to an
   `mnist.npz`, or the word `sample` for the small sample bundled with this package;
2. the Keras cache file `$KERAS_HOME/datasets/mnist.npz` (`~/.keras` by default), read
   directly with numpy so that a good copy from elsewhere is accepted too;
3. the normal Keras download.

Every file is checked (keys, shapes, dtypes, labels) before it is used, and a bad or missing
file raises an `MnistError` that names the file and says how to fix it.
"""

from __future__ import annotations

import os
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from vaetp.settings import MNIST_ENV, grading

__all__ = [
    "KERAS_URL",
    "SAMPLE_PATH",
    "MnistError",
    "MnistFileError",
    "MnistNotFoundError",
    "SampleDataWarning",
    "batches",
    "hold_out",
    "load_mnist",
    "prepare",
]

#: The small MNIST sample shipped with the package (see MNIST_SAMPLE.md next to it).
SAMPLE_PATH = Path(__file__).with_name("mnist_sample.npz")

#: Where Keras downloads MNIST from; also the file to fetch by hand for an offline machine.
KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"

#: The value of `VAE_TP_MNIST` (or `source`) that selects the bundled sample.
SAMPLE_KEYWORD = "sample"

_KEYS = ("x_train", "y_train", "x_test", "y_test")

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class MnistError(RuntimeError):
    """Base class: MNIST could not be loaded (the message says why and what to do)."""


class MnistNotFoundError(MnistError):
    """No MNIST file where one was named, or none at all (no copy, no cache, no download)."""


class MnistFileError(MnistError):
    """A file was found but is not a usable MNIST .npz (corrupt, truncated, wrong content)."""


class SampleDataWarning(UserWarning):
    """The bundled sample is in use: the code runs, but the TP's results will not match."""


# Show the sample warning every time, not only once per line: a student who re-runs a
# notebook cell must still be told. A filter the user adds later still takes precedence.
warnings.simplefilter("always", SampleDataWarning)


def load_mnist(source: str | os.PathLike[str] | None = None, *, quiet: bool = False) -> Arrays:
    """MNIST as `((x_train, y_train), (x_test, y_test))`, uint8, like Keras' `load_data()`.

    `source` (else `$VAE_TP_MNIST`) is a path to an .npz file or `"sample"`; without either,
    the Keras cache file is used if present, else Keras downloads the data. Prints where the
    data came from unless `quiet`. Raises `MnistNotFoundError` or `MnistFileError`.
    """
    if source is None and grading():
        # A graded notebook runs only up to its graded cells, and no grade depends on the
        # data: the small bundled sample saves every submission the full file's loading.
        data = _read_npz(SAMPLE_PATH)
        print("Grading: the MNIST sample bundled with vaetp stands in for the data set "
              "(grades depend on your code, not on the data).")
        return data
    chosen, origin = _named_source(source)
    if chosen is not None:
        if chosen.strip().lower() == SAMPLE_KEYWORD:
            data = _read_npz(SAMPLE_PATH)
            (x_train, _), (x_test, _) = data
            warnings.warn(
                f"Using the bundled MNIST sample ({len(x_train):,} training / {len(x_test):,} "
                "test digits), not the full data set: results will not match the TP. "
                f"Set {MNIST_ENV} to the full mnist.npz.",
                SampleDataWarning,
                stacklevel=2,
            )
            _report(data, f"the bundled sample {SAMPLE_PATH}", quiet)
            return data
        path = _existing_file(chosen, origin)
        data = _read_npz(path)
        _report(data, str(path), quiet)
        return data

    cache = _keras_cache_file()
    if cache.is_file():
        data = _read_npz(cache)
        _report(data, f"{cache} (Keras cache)", quiet)
        return data

    data = _download(cache)
    _report(data, f"the Keras download ({KERAS_URL})", quiet)
    return data


def prepare(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, 28, 28) → float32 rows (N, 784) in [0, 1], the TP's preprocessing.

    Refuses anything but uint8 so that images prepared twice (divided by 255 again) fail loudly.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"prepare() expects raw MNIST images, uint8 of shape (N, 28, 28); got "
            f"{images.dtype} of shape {images.shape} (already prepared?)"
        )
    return images.reshape(len(images), 28 * 28).astype(np.float32) / np.float32(255.0)


def hold_out(x: np.ndarray, y: np.ndarray, count: int) -> Arrays:
    """`((x_fit, y_fit), (x_val, y_val))`: the last `count` images (at most a sixth of them, for
    small samples) held out of training as validation images. Views, not copies."""
    if len(x) != len(y):
        raise ValueError(f"hold_out() got {len(x):,} images but {len(y):,} labels")
    if int(count) < 1:
        raise ValueError(f"hold_out() holds out at least 1 image; validation_images is {count}")
    count = min(int(count), len(x) // 6)
    if count < 1:
        raise ValueError(f"hold_out() needs at least 6 images to hold some out; got {len(x)}")
    return (x[:-count], y[:-count]), (x[-count:], y[-count:])


# --------------------------------------------------------------------------------------------
# Where the file is


# `fit` warns that its default `shuffle=True` is ignored for every tf.data input; the batches
# below are shuffled already, so students would only see noise in the training cells.
warnings.filterwarnings("ignore", message="`shuffle=True` was passed, but will be ignored",
                        category=UserWarning)


def batches(x, batch_size: int, *, shuffle: bool = True, seed: int | None = None, rows=None):
    """The pairs (x, x) in batches of `batch_size`, for `fit`: an autoencoder's target is its input.

    `model.fit(batches(x, 100, seed=42), epochs=...)` trains as `model.fit(x, x, batch_size=100,
    epochs=...)` does: each epoch visits the images once, in a new order if `shuffle` (the
    orders are reproducible with `seed`). It is the same kind of tf.data pipeline that Keras
    builds from NumPy arrays (shuffled indices, then one gather per batch) with two changes:

    - the images stay where they are: each batch is gathered from the NumPy array itself, where
      Keras (and `tf.convert_to_tensor`) would first copy the whole array into TensorFlow's
      memory (188 MB for MNIST's training images, once per `fit`: docs/performance.md);
    - tf.data's autotuning is off. With it on, starting an epoch drops the previous epoch's
      iterator, and that sometimes waits for tf.data's autotuning thread to wake from a timed
      sleep (up to 60 s) while the CPU sits idle; it happens more often when several kernels
      train on one machine (docs/performance.md, "Stalled epochs").

    `rows` (indices into `x`) trains on those images only, without copying them:
    `batches(x, 100, rows=r, seed=42)` gives the same batches as `batches(x[r], 100, seed=42)`,
    each gathered from `x` (section 17's training on 45,012 images would otherwise copy 141 MB).

    Keras takes a tf.data pipeline on every backend, so the notebook still runs with
    KERAS_BACKEND=jax. Images that are not contiguous float32 are converted once, here; a
    float32 array is read as it is when `fit` iterates, so do not change it in place meanwhile.
    """
    import tensorflow as tf

    given = np.asarray(x)
    if not np.issubdtype(given.dtype, np.floating):
        raise ValueError(f"batches() expects images scaled to [0, 1] as floats; got {given.dtype} "
                         "(raw MNIST pixels are uint8 0-255: divide them by 255 first, as in "
                         "section 4)")
    images = np.ascontiguousarray(given, dtype="float32")  # a copy only if not float32 already
    if rows is not None:
        rows = np.asarray(rows)
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
            raise ValueError(f"batches(rows=...) expects a 1-D array of image indices; got "
                             f"{rows.dtype} of shape {rows.shape} (np.flatnonzero(mask) turns a "
                             "boolean mask into indices)")
        if len(rows) and (rows.min() < -len(images) or rows.max() >= len(images)):
            raise ValueError(f"batches(rows=...) has indices outside the {len(images):,} images")
    count = len(images) if rows is None else len(rows)
    if count == 0:
        raise ValueError("batches() got no images: check the slice that selected them")
    order = tf.data.Dataset.range(count)
    if shuffle:
        order = order.shuffle(count, seed=seed, reshuffle_each_iteration=True)

    def gather(indices: np.ndarray) -> np.ndarray:
        return images[indices if rows is None else rows[indices]]

    @tf.autograph.experimental.do_not_convert  # plain TensorFlow calls: nothing to convert
    def pair(indices):
        batch = tf.numpy_function(gather, [indices], tf.float32, stateful=False)
        batch.set_shape((None,) + images.shape[1:])
        return batch, batch

    options = tf.data.Options()
    options.autotune.enabled = False
    # As Keras does: no graph rewrites.
    options.experimental_optimization.apply_default_optimizations = False
    return order.batch(batch_size).map(pair).prefetch(2).with_options(options)


def _named_source(source: str | os.PathLike[str] | None) -> tuple[str | None, str]:
    """The source the user named (argument first, then the variable) and how they named it."""
    if source is not None:
        return os.fspath(source), "load_mnist(source=...)"
    value = os.environ.get(MNIST_ENV, "").strip()
    if value:
        return value, f"the environment variable {MNIST_ENV}"
    return None, ""


def _existing_file(value: str, origin: str) -> Path:
    """The .npz named by `value` (a folder holding mnist.npz is accepted), or MnistNotFoundError."""
    path = Path(value).expanduser()
    shown = f"{value!r}" if str(path.absolute()) == value else f"{value!r} ({path.absolute()})"
    if path.is_dir():
        if (path / "mnist.npz").is_file():
            return path / "mnist.npz"
        raise MnistNotFoundError(
            f"{origin} names the folder {shown}, which holds no mnist.npz. "
            f"Point {MNIST_ENV} at the mnist.npz file itself, "
            f"or set {MNIST_ENV}={SAMPLE_KEYWORD} to use the small bundled sample."
        )
    if not path.exists():
        raise MnistNotFoundError(
            f"MNIST file not found: {shown}, named by {origin}, does not exist. "
            f"Check the path (a relative path starts from the current folder, {Path.cwd()}; "
            "in Jupyter, the notebook's folder), "
            f"set {MNIST_ENV} to the full path of a good mnist.npz, "
            f"or set {MNIST_ENV}={SAMPLE_KEYWORD} to use the small bundled sample."
        )
    return path


def _keras_cache_file() -> Path:
    """Where Keras keeps its MNIST download: `$KERAS_HOME/datasets/mnist.npz` (~/.keras)."""
    home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return Path(home).expanduser() / "datasets" / "mnist.npz"


def _download(cache: Path) -> Arrays:
    """Keras' own download; without network, MnistNotFoundError with the ways out."""
    try:
        import keras  # lazy: TensorFlow is slow to import and not needed for local files

        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as err:  # no network, proxy, firewall, disk full: all end the same way
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MnistNotFoundError(
            f"MNIST could not be downloaded (Keras said: {reason}).\n"
            f"{MNIST_ENV} is not set and there is no Keras cache file {cache}.\n"
            "Two ways out:\n"
            f"  1. On a machine with internet, download\n"
            f"       {KERAS_URL}\n"
            "     copy it to this machine and point the variable at it, e.g.\n"
            f"       export {MNIST_ENV}=/path/to/mnist.npz\n"
            f"     (or, in the notebook, %env {MNIST_ENV}=/path/to/mnist.npz).\n"
            "     Instructors on an offline JupyterHub: one shared, readable copy for everyone,\n"
            f"     with {MNIST_ENV} set in the students' environment.\n"
            f"  2. Set {MNIST_ENV}={SAMPLE_KEYWORD} to use the small sample bundled with vaetp:\n"
            "     enough to run the notebook, not to reproduce the TP's results."
        ) from err
    return (x_train, y_train), (x_test, y_test)


def _report(data: Arrays, where: str, quiet: bool) -> None:
    """One line telling the student how many images were loaded and from where."""
    if not quiet:
        (x_train, _), (x_test, _) = data
        print(f"MNIST: {len(x_train):,} training and {len(x_test):,} test images from {where}")


# --------------------------------------------------------------------------------------------
# What is in the file


def _read_npz(path: Path) -> Arrays:
    """Read and check one MNIST .npz; anything wrong becomes MnistFileError naming the file."""
    fix = (
        f"Copy or download the file again ({KERAS_URL}), "
        f"or point {MNIST_ENV} at a good copy."
    )
    try:
        loaded = np.load(path, allow_pickle=False)
    except (PermissionError, IsADirectoryError) as err:
        raise MnistFileError(f"MNIST file {path} could not be read ({err}). {fix}") from err
    except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError) as err:
        raise MnistFileError(
            f"MNIST file {path} is not a valid .npz file (truncated or corrupt?): "
            f"{_what_numpy_said(err)}. {fix}"
        ) from err
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise MnistFileError(
            f"MNIST file {path} holds a single array, not an .npz archive with the keys "
            f"{', '.join(_KEYS)}. {fix}"
        )
    with loaded as f:
        missing = [key for key in _KEYS if key not in f.files]
        if missing:
            keys = ", ".join(repr(k) for k in missing)
            raise MnistFileError(
                f"MNIST file {path} lacks the key{'s' if len(missing) > 1 else ''} {keys} "
                f"(it has: {', '.join(f.files) or 'nothing'}). {fix}"
            )
        arrays: dict[str, np.ndarray] = {}
        for key in _KEYS:
            try:
                arrays[key] = f[key]
            except (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, KeyError) as err:
                raise MnistFileError(
                    f"MNIST file {path}: the array {key!r} cannot be read, the file is not a "
                    f"valid .npz file (truncated or corrupt?): {_what_numpy_said(err)}. {fix}"
                ) from err

    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) == 0:
            raise MnistFileError(
                f"MNIST file {path}: x_{split} has shape {x.shape} and dtype {x.dtype}, "
                f"expected (N, 28, 28) uint8 with N > 0. {fix}"
            )
        if y.dtype != np.uint8 or y.ndim != 1:
            raise MnistFileError(
                f"MNIST file {path}: y_{split} has shape {y.shape} and dtype {y.dtype}, "
                f"expected (N,) uint8. {fix}"
            )
        if len(x) != len(y):
            raise MnistFileError(
                f"MNIST file {path}: x_{split} holds {len(x):,} images but y_{split} "
                f"{len(y):,} labels; they must match. {fix}"
            )
        if y.max() > 9:
            raise MnistFileError(
                f"MNIST file {path}: y_{split} holds labels outside 0..9 "
                f"(up to {int(y.max())}). {fix}"
            )
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _what_numpy_said(err: BaseException) -> str:
    """numpy's reason, in words for a student (its pickle hint would be the wrong advice)."""
    text = str(err).strip().rstrip(".")
    if "pickle" in text.lower():
        return "it is not a NumPy or zip file at all (an HTML error page, or another format?)"
    if isinstance(err, EOFError) or not text:
        return f"the file ends too early{f' ({text})' if text else ''}"
    return text
