"""Regenerate `vaetp/mnist_sample.npz`, the small MNIST sample bundled for offline tests.

Deterministic: from each split, the first `per_class` digits of every class (in the original
order), kept in their original order: 200 per class from the training set (2,000 digits) and
50 per class from the test set (500 digits). Same keys and dtypes as the full `mnist.npz`.

    python tools/make_mnist_sample.py [--source ../shared/data/mnist.npz]
                                      [--out vaetp/mnist_sample.npz]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "mnist.npz"
DEFAULT_OUT = ROOT / "vaetp" / "mnist_sample.npz"

TRAIN_PER_CLASS = 200
TEST_PER_CLASS = 50


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first `per_class` items of each class 0..9, sorted into original order."""
    chosen = []
    for digit in range(10):
        found = np.flatnonzero(labels == digit)[:per_class]
        if len(found) < per_class:
            raise ValueError(f"only {len(found)} digits of class {digit}, {per_class} needed")
        chosen.append(found)
    return np.sort(np.concatenate(chosen))


def make_sample(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> dict[str, np.ndarray]:
    """The sample's arrays, keyed like mnist.npz, drawn from the full data set."""
    train = first_per_class(y_train, TRAIN_PER_CLASS)
    test = first_per_class(y_test, TEST_PER_CLASS)
    return {
        "x_train": np.ascontiguousarray(x_train[train]),
        "y_train": np.ascontiguousarray(y_train[train]),
        "x_test": np.ascontiguousarray(x_test[test]),
        "y_test": np.ascontiguousarray(y_test[test]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="full mnist.npz")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="sample to write")
    args = parser.parse_args()

    from vaetp.data import load_mnist  # checks the source file's keys, shapes and dtypes

    (x_train, y_train), (x_test, y_test) = load_mnist(args.source, quiet=True)
    sample = make_sample(x_train, y_train, x_test, y_test)
    np.savez_compressed(args.out, **sample)
    print(
        f"Wrote {args.out}: {len(sample['x_train']):,} training and {len(sample['x_test']):,} "
        f"test digits, {args.out.stat().st_size:,} bytes"
    )


if __name__ == "__main__":
    main()
