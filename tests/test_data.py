"""How students and instructors get MNIST, online or not, and what they see when it goes wrong."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from vaetp.data import (
    KERAS_URL,
    SAMPLE_PATH,
    MnistError,
    MnistFileError,
    MnistNotFoundError,
    SampleDataWarning,
    load_mnist,
    prepare,
)
from vaetp.settings import MNIST_ENV

ROOT = Path(__file__).resolve().parents[1]
FULL_MNIST = ROOT.parent / "shared/data/mnist.npz"
needs_full_mnist = pytest.mark.skipif(
    not FULL_MNIST.is_file(), reason=f"the full MNIST is not at {FULL_MNIST} on this machine"
)


@pytest.fixture(autouse=True)
def no_outside_mnist(monkeypatch, tmp_path):
    """Each test starts with no VAE_TP_MNIST and an empty Keras home (never the real ~/.keras)."""
    monkeypatch.delenv(MNIST_ENV, raising=False)
    keras_home = tmp_path / "keras_home"
    keras_home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(keras_home))


def write_mnist(path: Path, n_train: int = 30, n_test: int = 20, **replace) -> Path:
    """A small file shaped like mnist.npz; `replace` swaps arrays (None drops the key)."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }
    arrays.update(replace)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


# --- the normal cases --------------------------------------------------------------------------


@needs_full_mnist
def test_student_with_variable_on_the_full_file_gets_all_of_mnist(monkeypatch, capsys):
    monkeypatch.setenv(MNIST_ENV, str(FULL_MNIST))

    (x_train, y_train), (x_test, y_test) = load_mnist()

    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(y_train).tolist() == counts
    out = capsys.readouterr().out
    assert f"MNIST: 60,000 training and 10,000 test images from {FULL_MNIST}" in out


def test_sample_warns_and_has_every_class(monkeypatch, capsys):
    monkeypatch.setenv(MNIST_ENV, " Sample ")

    with pytest.warns(SampleDataWarning, match=f"not the full data set.*{MNIST_ENV}"):
        (x_train, y_train), (x_test, y_test) = load_mnist()

    assert x_train.shape == (2000, 28, 28) and x_test.shape == (500, 28, 28)
    assert y_train.shape == (2000,) and y_test.shape == (500,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(y_train, minlength=10).tolist() == [200] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [50] * 10
    assert "bundled sample" in capsys.readouterr().out


def test_sample_warning_is_shown_again_when_the_cell_is_run_again():
    # Outside pytest's own warning capture: Python's default shows a warning once per line.
    code = (
        "from vaetp.data import load_mnist\n"
        "for _ in range(2):\n"
        "    load_mnist('sample', quiet=True)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("SampleDataWarning") == 2, result.stderr


def test_explicit_source_wins_over_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(MNIST_ENV, "sample")
    mine = write_mnist(tmp_path / "mine.npz", n_train=30, n_test=20)

    with warnings.catch_warnings():
        warnings.simplefilter("error", SampleDataWarning)  # the sample must not be touched
        (x_train, _), (x_test, _) = load_mnist(mine, quiet=True)

    assert len(x_train) == 30 and len(x_test) == 20


def test_keras_cache_is_used_when_present_without_downloading(monkeypatch, tmp_path, capsys):
    cache = write_mnist(Path(os.environ["KERAS_HOME"]) / "datasets" / "mnist.npz", n_train=40)
    monkeypatch.setattr("vaetp.data._download", lambda *a: pytest.fail("tried to download"))

    (x_train, _), _ = load_mnist()

    assert len(x_train) == 40
    assert str(cache) in capsys.readouterr().out


def test_keras_cache_defaults_to_home_dot_keras(monkeypatch, tmp_path):
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    write_mnist(tmp_path / ".keras" / "datasets" / "mnist.npz", n_train=50)
    monkeypatch.setattr("vaetp.data._download", lambda *a: pytest.fail("tried to download"))

    (x_train, _), _ = load_mnist(quiet=True)

    assert len(x_train) == 50


def test_variable_may_name_a_folder_holding_mnist_npz_or_use_tilde(monkeypatch, tmp_path):
    write_mnist(tmp_path / "shared" / "mnist.npz", n_train=60)
    monkeypatch.setenv("HOME", str(tmp_path))

    for value in (str(tmp_path / "shared"), "~/shared/mnist.npz"):
        monkeypatch.setenv(MNIST_ENV, value)
        (x_train, _), _ = load_mnist(quiet=True)
        assert len(x_train) == 60


def test_quiet_prints_nothing(capsys):
    with pytest.warns(SampleDataWarning):
        load_mnist("sample", quiet=True)
    assert capsys.readouterr().out == ""


# --- what goes wrong ---------------------------------------------------------------------------


def test_missing_path_named_by_the_variable(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere" / "mnist.npz"
    monkeypatch.setenv(MNIST_ENV, str(missing))

    with pytest.raises(MnistNotFoundError) as excinfo:
        load_mnist()

    message = str(excinfo.value)
    assert str(missing) in message and MNIST_ENV in message and "sample" in message


def test_no_file_no_cache_no_network_says_what_to_do(monkeypatch):
    import keras

    offline = Exception(
        f"URL fetch failure on {KERAS_URL}: None -- [Errno -3] Temporary failure in name resolution"
    )

    def no_network(*args, **kwargs):
        raise offline

    monkeypatch.setattr(keras.datasets.mnist, "load_data", no_network)

    with pytest.raises(MnistNotFoundError) as excinfo:
        load_mnist()

    message = str(excinfo.value)
    assert "could not be downloaded" in message
    assert KERAS_URL in message
    assert f"export {MNIST_ENV}=/path/to/mnist.npz" in message
    assert f"{MNIST_ENV}=sample" in message
    assert excinfo.value.__cause__ is offline


def _truncated(path: Path) -> None:
    data = SAMPLE_PATH.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damaged(path: Path) -> None:
    data = bytearray(SAMPLE_PATH.read_bytes())
    middle = len(data) // 3
    data[middle : middle + 64] = bytes(64)  # a copy that went wrong half way: CRC/zlib error
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("spoil", [_truncated, _damaged], ids=["truncated", "damaged"])
def test_broken_copy_gives_mnist_file_error_naming_the_path(monkeypatch, tmp_path, spoil):
    broken = tmp_path / "mnist.npz"
    spoil(broken)
    monkeypatch.setenv(MNIST_ENV, str(broken))

    with pytest.raises(MnistFileError) as excinfo:
        load_mnist()

    message = str(excinfo.value)
    assert str(broken) in message
    assert "not a valid .npz file (truncated or corrupt?)" in message
    assert MNIST_ENV in message  # the fix: point the variable at a good copy
    assert excinfo.value.__cause__ is not None


@pytest.mark.parametrize(
    "content",
    [b"", b"<html>404 Not Found</html>\n" * 20, "npy"],
    ids=["empty", "html-page", "single-npy-array"],
)
def test_garbage_file_gives_mnist_file_error(tmp_path, content):
    garbage = tmp_path / "mnist.npz"
    if content == "npy":
        with garbage.open("wb") as f:
            np.save(f, np.zeros((3, 28, 28), np.uint8))
    else:
        garbage.write_bytes(content)

    with pytest.raises(MnistFileError, match=str(garbage)) as excinfo:
        load_mnist(garbage)

    assert "allow_pickle" not in str(excinfo.value)  # numpy's hint is the wrong advice here


def test_npz_with_a_missing_key(tmp_path):
    incomplete = write_mnist(tmp_path / "mnist.npz", x_test=None)

    with pytest.raises(MnistFileError, match="lacks the key 'x_test'") as excinfo:
        load_mnist(incomplete)

    assert str(incomplete) in str(excinfo.value)


@pytest.mark.parametrize(
    ("replace", "complaint"),
    [
        (
            {"x_train": np.zeros((30, 28, 28), np.float32)},
            r"x_train has shape \(30, 28, 28\) and dtype float32",
        ),
        ({"x_train": np.zeros((30, 784), np.uint8)}, r"x_train has shape \(30, 784\)"),
        ({"y_test": np.zeros(20, np.int64)}, r"y_test has shape \(20,\) and dtype int64"),
        ({"y_train": np.zeros(29, np.uint8)}, "30 images but y_train 29 labels"),
        ({"y_test": np.full(20, 10, np.uint8)}, "labels outside 0..9"),
    ],
    ids=["float-pixels", "flat-images", "int64-labels", "length-mismatch", "label-10"],
)
def test_wrong_dtype_or_shape_is_explained(tmp_path, replace, complaint):
    wrong = write_mnist(tmp_path / "mnist.npz", **replace)

    with pytest.raises(MnistFileError, match=complaint) as excinfo:
        load_mnist(wrong)

    assert str(wrong) in str(excinfo.value)


def test_every_failure_is_an_mnist_error():
    assert issubclass(MnistFileError, MnistError) and issubclass(MnistNotFoundError, MnistError)
    assert issubclass(MnistError, RuntimeError)


# --- preprocessing and the bundled sample ------------------------------------------------------


def test_prepare_scales_and_flattens():
    images = np.zeros((2, 28, 28), np.uint8)
    images[0, 0, 0], images[1, 27, 27], images[1, 0, 1] = 255, 51, 255

    rows = prepare(images)

    assert rows.shape == (2, 784) and rows.dtype == np.float32
    assert rows[0, 0] == 1.0 and rows[1, 783] == pytest.approx(0.2) and rows[1, 1] == 1.0
    assert rows.min() >= 0.0 and rows.max() <= 1.0
    with pytest.raises(ValueError, match="already prepared"):
        prepare(rows.reshape(2, 28, 28))


@needs_full_mnist
def test_bundled_sample_is_what_the_script_makes_from_the_full_file():
    script_path = ROOT / "tools" / "make_mnist_sample.py"
    spec = importlib.util.spec_from_file_location("make_mnist_sample", script_path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    (x_train, y_train), (x_test, y_test) = load_mnist(FULL_MNIST, quiet=True)

    expected = script.make_sample(x_train, y_train, x_test, y_test)

    with np.load(SAMPLE_PATH, allow_pickle=False) as bundled:
        assert sorted(bundled.files) == sorted(expected)
        for key, array in expected.items():
            assert bundled[key].dtype == array.dtype, key
            np.testing.assert_array_equal(bundled[key], array, err_msg=key)
    assert SAMPLE_PATH.stat().st_size < 1_000_000


def test_sample_attribution_is_shipped():
    notice = (SAMPLE_PATH.parent / "MNIST_SAMPLE.md").read_text(encoding="utf-8")
    assert "LeCun" in notice and "CC BY-SA 3.0" in notice


def test_a_graded_notebook_gets_the_bundled_sample_whatever_the_setting(monkeypatch, capsys):
    """In a grading sandbox (VAE_TP_GRADING=1) no grade depends on the data: the sample is used."""
    monkeypatch.setenv("VAE_TP_GRADING", "1")
    monkeypatch.setenv("VAE_TP_MNIST", "/nonexistent/mnist.npz")
    from vaetp import data

    (x_train, _), (x_test, _) = data.load_mnist()
    assert (len(x_train), len(x_test)) == (2_000, 500)
    assert "Grading: the MNIST sample" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------
# data.batches: how the notebook feeds fit
# ----------------------------------------------------------------------------------------------

def test_batches_give_every_image_once_per_epoch_as_input_and_target():
    from vaetp.data import batches

    x = np.arange(250 * 4, dtype="float32").reshape(250, 4)
    dataset = batches(x, 100, seed=1)
    pairs = list(dataset.as_numpy_iterator())
    assert [len(inputs) for inputs, _ in pairs] == [100, 100, 50]
    for inputs, targets in pairs:
        np.testing.assert_array_equal(inputs, targets)  # an autoencoder's target is its input
    seen = np.concatenate([inputs for inputs, _ in pairs])
    np.testing.assert_array_equal(np.sort(seen[:, 0]), x[:, 0])


def test_batches_reshuffle_each_epoch_reproducibly_and_keep_order_without_shuffle():
    from vaetp.data import batches

    x = np.arange(300, dtype="float32").reshape(300, 1)
    first = [b[:, 0].tolist() for b, _ in batches(x, 100, seed=7).as_numpy_iterator()]
    dataset = batches(x, 100, seed=7)
    epoch1 = [b[:, 0].tolist() for b, _ in dataset.as_numpy_iterator()]
    epoch2 = [b[:, 0].tolist() for b, _ in dataset.as_numpy_iterator()]
    assert epoch1 == first and epoch1 != epoch2  # same seed, same orders; a new order per epoch
    ordered = [b[:, 0].tolist() for b, _ in batches(x, 100, shuffle=False).as_numpy_iterator()]
    assert sum(ordered, []) == list(range(300))


def test_batches_of_some_rows_are_those_of_the_copied_rows_without_the_copy():
    """Section 17 trains on the images that are not 9s: `rows=` gives the batches of
    `x[rows]`, epoch after epoch, gathered from `x` itself."""
    from vaetp.data import batches

    x = np.arange(500 * 3, dtype="float32").reshape(500, 3)
    rows = np.flatnonzero(np.arange(500) % 7 != 3)[:317]
    copied = batches(x[rows], 50, seed=5)
    gathered = batches(x, 50, seed=5, rows=rows)
    for _ in range(2):  # two epochs: the same new order in both
        for (a, _), (b, _) in zip(copied.as_numpy_iterator(), gathered.as_numpy_iterator(), strict=True):
            np.testing.assert_array_equal(a, b)
    ordered = np.concatenate([b for b, _ in batches(x, 100, shuffle=False, rows=rows).as_numpy_iterator()])
    np.testing.assert_array_equal(ordered, x[rows])


def test_batches_refuse_rows_that_are_a_mask_or_out_of_range():
    from vaetp.data import batches

    x = np.zeros((10, 2), "float32")
    with pytest.raises(ValueError, match="np.flatnonzero"):
        batches(x, 5, rows=np.arange(10) > 4)
    with pytest.raises(ValueError, match="outside the 10 images"):
        batches(x, 5, rows=np.array([0, 10]))
    with pytest.raises(ValueError, match="got no images"):
        batches(x, 5, rows=np.array([], dtype=int))


def test_batches_turn_off_tf_data_autotuning():
    """The cause of the stalled epochs (docs/performance.md, "Stalled epochs")."""
    from vaetp.data import batches

    options = batches(np.zeros((10, 2), "float32"), 5).options()
    assert options.autotune.enabled is False


def test_batches_read_the_images_in_place_so_a_training_holds_no_second_copy():
    """The notebook's 188 MB of training images are not copied into TensorFlow per `fit`: each
    batch is gathered from the array itself (a change to the array shows in the next batch)."""
    from vaetp.data import batches

    x = np.zeros((20, 28, 28, 1), dtype="float32")  # images as the convolutional VAE takes them
    dataset = batches(x, 10, shuffle=False)
    x[:] = 1.0
    inputs, targets = next(dataset.as_numpy_iterator())
    assert inputs.shape == (10, 28, 28, 1) and dataset.element_spec[0].shape.as_list() == [None, 28, 28, 1]
    assert inputs.min() == 1.0 and targets.min() == 1.0


# ----------------------------------------------------------------------------------------------
# data.hold_out: the validation set
# ----------------------------------------------------------------------------------------------

def test_hold_out_keeps_the_last_images_for_validation_without_copying():
    from vaetp.data import hold_out

    x, y = np.arange(60_000 * 2, dtype="float32").reshape(60_000, 2), np.arange(60_000) % 10
    (x_fit, y_fit), (x_val, y_val) = hold_out(x, y, 10_000)
    assert (len(x_fit), len(x_val)) == (50_000, 10_000)
    np.testing.assert_array_equal(np.concatenate([x_fit, x_val]), x)
    np.testing.assert_array_equal(np.concatenate([y_fit, y_val]), y)
    assert np.shares_memory(x_fit, x) and np.shares_memory(x_val, x)


def test_hold_out_of_the_bundled_sample_keeps_a_sixth():
    """The sample has 2,000 training images: 10,000 cannot be held out, a sixth is."""
    from vaetp.data import hold_out

    (x_fit, _), (x_val, _) = hold_out(np.zeros((2_000, 784)), np.zeros(2_000), 10_000)
    assert (len(x_fit), len(x_val)) == (1_667, 333)
    with pytest.raises(ValueError, match="labels"):
        hold_out(np.zeros((10, 784)), np.zeros(9), 2)


def test_batches_of_raw_pixels_are_refused_with_the_fix():
    """uint8 images 0-255 would train on a meaningless loss without a word."""
    from vaetp.data import batches

    with pytest.raises(ValueError, match="divide them by 255"):
        batches(np.zeros((10, 784), dtype="uint8"), 5)
    with pytest.raises(ValueError, match="no images"):
        batches(np.zeros((0, 784), dtype="float32"), 5)


def test_hold_out_of_no_image_says_which_parameter():
    from vaetp.data import hold_out

    with pytest.raises(ValueError, match="validation_images is 0"):
        hold_out(np.zeros((600, 784)), np.zeros(600), 0)
